#!/usr/bin/env bash
# 6.824 (2017) lab 3 TestSnapshotRPC (InstallSnapshot): 3 nodes with a
# snapshot threshold of 1000 bytes.  Node 3 is cut off while the majority
# {1,2} takes 50 puts (client pinned to {1,2} by its source address) and so
# compacts its log; the log stays bounded on every node.  Then {1,3} against
# {2}: node 3 can only catch up by InstallSnapshot (the leader no longer has
# the entries), and reads through {1,3} must see a=A, b=B, 0..49.  After a full
# heal, more puts and reads.  Every operation goes into a history for lincheck.
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
H=$CL_DIR/snaprpc.hist
THR=1000
cl_start 3 --snapshot-threshold "$THR"
cl_wait_leader 20 >/dev/null || fx_fail "no leader within 20 s"
fx_rec "$H" ck put a A hs put a A || fx_fail "put a: exit $FX_RC"
fx_rec "$H" ck get a - hs get a; fx_expect_eq "$FX_OUT" A "get a"

fx_partition "1 2" "3"
fx_cut_client 127.0.0.101 3
S=$(fx_src_spec 127.0.0.101 "1 2")
# One session for the 50 puts (hstore shell), recorded as one client's ops.
for i in $(seq 0 49); do
    fx_rec "$H" ck1 put "$i" "$i" hs put --cluster "$S" --timeout 15 "$i" "$i" ||
        fx_fail "put $i in the majority {1,2}: exit $FX_RC"
done
fx_rec "$H" ck1 put b B hs put --cluster "$S" --timeout 15 b B || fx_fail "put b: exit $FX_RC"
# (the compaction may finish in the background: wait for it, with a deadline)
end=$(( $(cl_now_ms) + 30000 ))
while snap=$(cl_field 1 snapshot); ! { [ -n "$snap" ] && [ "$snap" != unreachable ] && [ "$snap" -gt 10 ]; } &&
    [ "$(cl_now_ms)" -lt "$end" ]; do sleep 0.2; done
cl_log "node 1 snapshot index $snap, node 2 $(cl_field 2 snapshot), node 3 $(cl_field 3 snapshot) (last $(cl_field 3 last))"
[ -n "$snap" ] && [ "$snap" != unreachable ] && [ "$snap" -gt 10 ] ||
    fx_fail "node 1 has not compacted its log after 52 puts (snapshot index '$snap')"
fx_check_log_bounded "$THR"

fx_partition "1 3" "2"
fx_clear_client_rules
fx_cut_client 127.0.0.102 2
S=$(fx_src_spec 127.0.0.102 "1 3")
fx_rec "$H" ck2 put c C hs put --cluster "$S" --timeout 20 c C || fx_fail "put c through {1,3}: exit $FX_RC (node 3 never caught up?)"
fx_rec "$H" ck2 put d D hs put --cluster "$S" --timeout 20 d D || fx_fail "put d through {1,3}: exit $FX_RC"
for kv in a=A b=B 1=1 49=49; do
    fx_rec "$H" ck2 get "${kv%%=*}" - hs get --cluster "$S" --timeout 20 "${kv%%=*}" ||
        fx_fail "get ${kv%%=*} through {1,3}: exit $FX_RC"
    fx_expect_eq "$FX_OUT" "${kv#*=}" "get ${kv%%=*} through {1,3}"
done
s3=$(cl_field 3 snapshot)
cl_log "node 3 now has snapshot index $s3 (node 1: $(cl_field 1 snapshot))"
[ -n "$s3" ] && [ "$s3" != unreachable ] && [ "$s3" -ge "$snap" ] ||
    fx_fail "node 3 shows snapshot index '$s3' < $snap: it did not install the leader's snapshot"
fx_rec "$H" ck3 get 49 - hs_via 3 get --timeout 10 49
fx_expect_eq "$FX_OUT" 49 "get 49 entering through node 3"

fx_heal
fx_clear_client_rules
fx_rec "$H" ck put e E hs put --timeout 20 e E || fx_fail "put e after the heal: exit $FX_RC"
for kv in c=C e=E 1=1; do
    fx_rec "$H" ck get "${kv%%=*}" - hs get --timeout 20 "${kv%%=*}" || fx_fail "get ${kv%%=*}: exit $FX_RC"
    fx_expect_eq "$FX_OUT" "${kv#*=}" "get ${kv%%=*} after the heal"
done
fx_check_log_bounded "$THR"
fx_lincheck "$H"
cl_pass
