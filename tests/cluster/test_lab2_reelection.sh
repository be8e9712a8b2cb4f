#!/usr/bin/env bash
# 6.824 (2017) lab 2 TestReElection2A with real processes and iptables:
# 3 nodes.  The leader is cut off: the other two elect a new leader within
# 5 s.  It comes back: still one leader (never two in one term).  Then two
# nodes are cut off, so no two can talk: after 2 s the remaining connected node
# is not leader (no leader without a quorum).  One comes back: a leader within
# 5 s; all back: one leader.  Writes succeed at the end and read back on every
# node.
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
cl_start 3
l1=$(fx_wait_leader_among "1 2 3" 15) || fx_fail "no initial leader within 15 s"
cl_log "leader $l1"
others() { local i s=""; for i in 1 2 3; do case " $* " in *" $i "*) ;; *) s+="$i " ;; esac; done; echo "$s"; }

fx_isolate "$l1"
t0=$(cl_now_ms)
l=$(fx_wait_leader_among "$(others "$l1")" 5) || fx_fail "no new leader among [$(others "$l1")] within 5 s of cutting off leader $l1"
cl_log "new leader $l after $(( $(cl_now_ms) - t0 )) ms"

fx_heal
sleep 1
l2=$(fx_wait_leader_among "1 2 3" 5) || fx_fail "no leader within 5 s after old leader $l1 rejoined"
fx_check_one_leader_per_term
cl_log "after the old leader rejoined: leader $l2"

l3=$(( l2 % 3 + 1 ))
rest=$(others "$l2" "$l3")
fx_partition "$l2" "$l3" "$rest"
sleep 2
[ -z "$(fx_leader_among "$rest")" ] || fx_fail "node $rest is leader with no quorum (nodes $l2 and $l3 cut off)"
fx_check_one_leader_per_term
cl_log "no leader among the connected [$rest] without a quorum (isolated $l2 says: $(fx_status_lines | awk -v i="$l2" '$1 == i { print $2 }'))"

fx_partition "$l2" "$l3 $rest"
t0=$(cl_now_ms)
l=$(fx_wait_leader_among "$l3 $rest" 5) || fx_fail "no leader among [$l3 $rest] within 5 s after $l3 came back"
cl_log "leader $l among [$l3 $rest] after $(( $(cl_now_ms) - t0 )) ms"

fx_heal
l=$(fx_wait_leader_among "1 2 3" 5) || fx_fail "no leader within 5 s after the full heal"
fx_check_one_leader_per_term
hs put --timeout 10 k v || fx_fail "put after the heal: exit $?"
for i in 1 2 3; do
    cl_wait_caught_up "$i" 10 || fx_fail "node $i did not catch up"
    fx_expect_eq "$(hs_via "$i" get --timeout 10 k)" v "get through node $i"
done
cl_pass
