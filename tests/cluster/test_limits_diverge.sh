#!/usr/bin/env bash
# Nodes started with different limit flags cannot diverge: the limits are
# replicated state (set once by the first leader, changed by `hstore limits
# set`), so every replica decides a 2,000-byte put alike.  Node 1 runs with
# --max-file-size 1K, the others with the default; each node's content is
# checked through that node's own read.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
CL_NODE_EXTRA[1]="--max-file-size 1K"
cl_start 3
cl_wait_leader 15 >/dev/null || cl_fail "no leader within 15 s"

v=$(head -c 2000 /dev/zero | tr '\0' 'v')
# same_everywhere KEY WHAT: every node's own read gives the same answer.
same_everywhere() {
    local key=$1 what=$2 i first="" got
    hs put barrier "$RANDOM" || cl_fail "$what: put barrier"
    for i in 1 2 3; do
        cl_wait_caught_up "$i" 20 || cl_fail "$what: node $i does not catch up"
        got=$(hs_via "$i" get "$key" 2>/dev/null; echo "rc=$?")
        [ -n "$first" ] || first=$got
        [ "$got" = "$first" ] || cl_fail "$what: node $i differs from node 1"
    done
    echo "$first"
}

# Whatever the first leader seeded, one put decides alike everywhere.
hs put first "$v"
rc=$?
[ "$rc" = 0 ] || [ "$rc" = 2 ] || cl_fail "put first: exit $rc"
same_everywhere first "the seeded limits" >/dev/null
line=$(hs status | grep '^limits ') || cl_fail "status shows no limits line"
cl_log "status: $line"

# A 1K limit for the whole cluster: refused everywhere.
out=$(hs limits set max-file-size=1K) || cl_fail "limits set 1K: exit $?"
cl_expect_eq "$out" "max-file-size=1024 max-store-bytes=0" "limits after set"
cl_expect_rc 2 "put of 2,000 bytes past a 1K limit" hs put small "$v"
cl_expect_eq "$(same_everywhere small "under 1K")" "rc=1" "every node's read of the refused put"

# A 1M limit: accepted everywhere, node 1's flag notwithstanding.
out=$(hs limits set max-file-size=1M) || cl_fail "limits set 1M: exit $?"
cl_expect_eq "$out" "max-file-size=1048576 max-store-bytes=0" "limits after the second set"
hs put big "$v" || cl_fail "put of 2,000 bytes under a 1M limit: exit $?"
cl_expect_eq "$(same_everywhere big "under 1M")" "${v}rc=0" "every node's read of the put"
cl_expect_eq "$(hs status | grep '^limits ')" "limits max-file-size=1048576 max-store-bytes=0" \
    "status line of the limits"
grep -q "differ from the cluster's replicated limits" "$CL_DIR/1/node.log" ||
    cl_fail "node 1 did not warn that its flag differs"

# After a restart of every node the replicated limits still hold.
for i in 1 2 3; do cl_kill "$i"; done
for i in 1 2 3; do cl_start_node "$i"; done
cl_wait_leader 15 >/dev/null || cl_fail "no leader after the restart"
hs put big2 "$v" || cl_fail "put after the restart: exit $?"
cl_expect_eq "$(same_everywhere big2 "after the restart")" "${v}rc=0" "every node's read after the restart"
cl_expect_rc 2 "limits set above 1T" hs limits set max-file-size=2T
cl_pass
