#!/usr/bin/env bash
# Membership under load: a 3-node cluster grows to 5 (nodes 4 and 5 start
# with --join, catch up as learners from a snapshot and the log, and are
# promoted) and shrinks back to 3 by removing two nodes, the leader among
# them, while 5 clients append, put and get; the whole history must be
# linearizable and every acknowledged append present.
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
. "$(dirname "$0")/lib/member.sh"
cl_in_netns "$@"
cl_init
fx_init
cl_start 3 --snapshot-threshold 16384
cl_wait_leader 20 >/dev/null || cl_fail "no leader"
for k in $(seq 1 200); do hs put "pre$k" "v$k" >/dev/null || cl_fail "put pre$k"; done

fx_histclient_bg load --clients 5 --duration-ms 40000 --keys 5 --key-prefix g \
    --mix append=50,put=5,get=45
sleep 2
mb_join 4
mb_wait_role 4 voter 40 || fx_fail "node 4 never became a voter"
mb_join 5 2
mb_wait_role 5 voter 40 || fx_fail "node 5 never became a voter"
cl_log "members: $(mb_list | tr '\n' ';')"
# Node 5 has everything, snapshot included.
[ "$(HSTORE_CLUSTER=$(mb_spec 5) "$HSTORE" get pre200 2>/dev/null)" = v200 ] ||
    fx_fail "node 5 cannot read what was written before it joined"
sleep 2

# Shrink: remove the leader (it hands over first), then another node, so
# that 3 remain.
l=$(cl_wait_leader 10) || fx_fail "no leader with 5 nodes"
hs member remove "$l" --timeout 20 || fx_fail "removing the leader (node $l) failed"
mb_wait_role "$l" "" 10 || fx_fail "node $l still a member"
for v in 5 4 3 2 1; do
    [ "$v" != "$l" ] && [ -n "$(mb_role "$v")" ] && { other=$v; break; }
done
hs member remove "$other" --timeout 20 || fx_fail "removing node $other failed"
mb_wait_role "$other" "" 10 || fx_fail "node $other still a member"
n=$(mb_list | wc -l)
[ "$n" = 3 ] || fx_fail "$n members after the shrink, want 3"
cl_log "members: $(mb_list | tr '\n' ';')"
fx_histclient_wait load 90
cl_term "$l"
cl_term "$other"
hs put after-shrink yes >/dev/null || fx_fail "the 3 remaining nodes do not take writes"
cl_pass
