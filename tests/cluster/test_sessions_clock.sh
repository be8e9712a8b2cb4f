#!/usr/bin/env bash
# A node whose clock is an hour ahead cannot make any replica apply a command
# twice.  Node 3 stamps its proposals an hour ahead (test hook
# HSTORE_CLOCK_OFFSET_MS).  A client's append is applied, then node 3
# proposes commands: the retry of the append (same session and seq) is
# answered from the session, not applied again.  Even after node 3 has pushed
# session time past an hour (thousands of its commands), the retry is answered
# SESSION_EXPIRED (the command is not applied), never applied a second time.
# Every node agrees, also after a restart of all of them.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
. "$CL_LIB_DIR/raw.sh"
CL_NODE_ENV[3]="HSTORE_CLOCK_OFFSET_MS=3600000"
# Session time starts at the first command's time.  Were node 3 the first
# leader, its first entry would start session time an hour ahead, and its
# commands would then never move it faster than real time.  So nodes 1 and 2
# elect a leader and commit a command first; node 3 joins after.
CL_START_ONLY="1 2" cl_start 3
cl_wait_leader 15 >/dev/null || cl_fail "no leader of nodes 1 and 2 within 15 s"
hs put first 1 || cl_fail "put through nodes 1 and 2: exit $?"
cl_start_node 3
cl_wait_caught_up 3 20 || cl_fail "node 3 does not catch up"

sid=$(raw_via 1 register) || cl_fail "cannot register a session"
cl_expect_eq "$(raw_via 1 cmd "$sid" 2 append log x)" 0 "the append"
for k in 1 2 3 4 5; do
    hs_via 3 put "ahead/$k" v || cl_fail "put through node 3: exit $?"
done
# The retry, through each node: the stored reply, nothing applied.
for i in 1 2 3; do
    cl_expect_eq "$(raw_via "$i" cmd "$sid" 2 append log x)" 0 "retry of the append via node $i"
done
cl_expect_eq "$(hs get log)" x "the log after the retries"

# Thousands of commands stamped an hour ahead: session time passes the hour.
out=$(HSTORE_CLUSTER="3=${CL_HOST[3]}:${CL_PORT[3]}" "$HSTORE" bench --clients 16 --ops 5000 \
      --json put) || cl_fail "bench through node 3: exit $?"
cl_log "bench through node 3: $out"
grep -q '"errors":0' <<<"$out" || cl_fail "bench through node 3 had errors: $out"
# A node answers a retry from the sessions it has applied (a stored reply is
# right at any replica that applied it), so node 1 must have applied the
# hour before its answer can be SESSION_EXPIRED.
# The leader's commit as `hstore status` last showed it can lag the bench's
# last command, so node 1 may still be applying the hour: until it has, the
# retry is answered from the session (0, nothing applied), which is right
# too; within the deadline it must become SESSION_EXPIRED.
cl_wait_caught_up 1 20 || cl_fail "node 1 does not catch up after the bench"
end=$(($(cl_now_ms) + 20000))
while :; do
    r=$(raw_via 1 cmd "$sid" 2 append log x)
    [ "$r" = 0 ] && [ "$(cl_now_ms)" -lt "$end" ] || break
    sleep 0.2
done
cl_expect_eq "$r" 1003 "retry after an hour of session time (SESSION_EXPIRED)"
cl_expect_eq "$(hs get log)" x "the log after the expired retry"

check_nodes() {
    local what=$1 i
    cl_wait_leader 15 >/dev/null || cl_fail "$what: no leader"
    hs put barrier 1 || cl_fail "$what: put barrier"
    for i in 1 2 3; do
        cl_alive "$i" || cl_fail "$what: node $i stopped"
        cl_wait_caught_up "$i" 20 || cl_fail "$what: node $i does not catch up"
        cl_expect_eq "$(hs_via "$i" get log)" x "$what: the log read via node $i"
    done
}
check_nodes "before the restart"
for i in 1 2 3; do cl_kill "$i"; done
for i in 1 2 3; do cl_start_node "$i"; done
check_nodes "after a restart of every node"
cl_expect_eq "$(raw_via 2 cmd "$sid" 2 append log x)" 1003 "retry after the restart"
cl_expect_eq "$(hs get log)" x "the log at the end"
cl_pass
