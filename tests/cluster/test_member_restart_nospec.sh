#!/usr/bin/env bash
# The configuration lives in the data directory: --cluster is needed only on
# the first start.  3 nodes started with --cluster take writes; a follower
# killed and restarted with only --id and --data (no snapshot yet, so its
# members come from those recorded at its first start) catches up and serves
# linearizable reads; the leader, killed and restarted the same way, comes
# back too and the cluster takes a write through it.  A new, empty data
# directory without --cluster is refused with a clear message, and no node
# is left running.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
cl_start 3
l=$(cl_wait_leader 20) || cl_fail "no leader"
"$HSTORE" put k1 v1 >/dev/null || cl_fail "put k1"
f=$((l % 3 + 1))

cl_kill "$f"
"$HSTORE" put k2 v2 >/dev/null || cl_fail "put k2 with node $f down"
CL_NODE_NOSPEC[$f]=1
cl_restart "$f"
cl_wait_caught_up "$f" 30 || cl_fail "node $f, restarted without --cluster, did not catch up"
cl_expect_eq "$(hs_via "$f" get k2)" v2 "k2 read through node $f"

cl_kill "$l"
nl=$(cl_wait_leader 30 "$l") || cl_fail "no new leader after killing leader $l"
CL_NODE_NOSPEC[$l]=1
cl_restart "$l"
cl_wait_caught_up "$l" 30 || cl_fail "old leader $l, restarted without --cluster, did not catch up"
hs_via "$l" put k3 v3 >/dev/null || cl_fail "put k3 through node $l"
for i in 1 2 3; do
    cl_expect_eq "$(hs_via "$i" get k3)" v3 "k3 read through node $i"
done

# A new directory has no members to read: refused, with the reason.
out=$("$HSTORE" node --id 9 --data "$CL_DIR/empty" --secret-file "$CL_SECRET" 2>&1)
rc=$?
[ "$rc" != 0 ] || cl_fail "a node with an empty data directory and no --cluster started"
echo "$out" | grep -q "no cluster configuration yet" || cl_fail "unclear refusal: $out"
cl_pass
