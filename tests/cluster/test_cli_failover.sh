#!/usr/bin/env bash
# kill -9 of the leader: a new leader within 5 s and operations go on; the
# killed node restarts from its data directory and catches up; `hstore watch`
# reports the change of leader.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
cl_start 3
old=$(cl_wait_leader 15) || cl_fail "no leader within 15 s"
hs put x a || cl_fail "put x"
for k in $(seq 1 20); do hs put "before/$k" "$k" || cl_fail "put before/$k"; done

# (The binary itself, not the hs function, so that $! is the watch process;
# --duration bounds it should the test die first.)
"$HSTORE" watch --interval 100 --duration 120 >"$CL_DIR/events" 2>&1 &
watch_pid=$!
CL_ALL_PIDS+=("$watch_pid")
end=$(( $(cl_now_ms) + 30000 ))
until grep -q "leader: node $old" "$CL_DIR/events"; do
    [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "watch did not show node $old leading within 30 s"
    sleep 0.1
done

t0=$(cl_now_ms)
cl_kill "$old"
new=$(cl_wait_leader 30 "$old") || cl_fail "no new leader within 30 s of killing leader $old"
cl_log "node $new leads $(( $(cl_now_ms) - t0 )) ms after node $old was killed"
# Its log says why it started the election.
grep -q "election: election timeout in term [0-9]*: no message from leader $old for [0-9]* ms" "$CL_DIR/$new/node.log" ||
    cl_fail "node $new's log does not say why it started an election: $(grep election: "$CL_DIR/$new/node.log")"

hs append x b || cl_fail "append after failover: exit $?"
# Bulk writes name a live node first: a new client tries the SPEC's first node
# first and spends a whole attempt timeout on it when it is down.
spec=$(cl_spec_first "$new")
for k in $(seq 1 30); do HSTORE_CLUSTER=$spec hs put "during/$k" "$k" || cl_fail "put during/$k"; done
cl_expect_eq "$(hs get x)" ab "x after failover"

# The killed node comes back from its data directory and catches up.
cl_log "restarting node $old"
cl_restart "$old"
cl_wait_caught_up "$old" 20 || cl_fail "node $old did not catch up within 20 s"
cl_log "node $old caught up"
cl_expect_eq "$(hs_via "$old" get x)" ab "x read through the restarted node"
cl_expect_eq "$(hs_via "$old" get during/30)" 30 "a key written while node $old was down"
cl_expect_eq "$(hs_via "$old" ls before/ | wc -l)" 20 "keys written before the crash"
cl_expect_eq "$(hs_via "$old" ls during/ | wc -l)" 30 "keys written during the outage"
# Its own state, not just forwarding: it has applied what the leader committed.
a=$(cl_field "$old" applied)
[ -n "$a" ] && [ "$a" != unreachable ] && [ "$a" -gt 50 ] || cl_fail "node $old applied only '$a' entries"

end=$(( $(cl_now_ms) + 30000 ))
until grep -q "leader: node $new" "$CL_DIR/events"; do
    [ "$(cl_now_ms)" -lt "$end" ] || break
    sleep 0.1
done
kill -TERM "$watch_pid"
wait "$watch_pid"
cat "$CL_DIR/events" >&2
grep -q "leader: node $old" "$CL_DIR/events" || cl_fail "watch did not show node $old leading"
grep -q "leader: node $new" "$CL_DIR/events" || cl_fail "watch did not show node $new taking over"
grep -q "node $old became unreachable" "$CL_DIR/events" || cl_fail "watch did not show node $old unreachable"
grep -q "node $old reachable again" "$CL_DIR/events" || cl_fail "watch did not show node $old back"
cl_pass
