#!/usr/bin/env bash
# 6.824 (2017) lab 3 TestSnapshotSize ("snapshot size is reasonable"): 3 nodes,
# snapshot threshold 1000 bytes; one client session alternates put x / get x
# 800 times (the lab: 200 rounds of put 0, get, put 1, get).
# Every get must read the put before it (lincheck on the history, one client:
# a plain sequential check).  Then on every node: the Raft log holds at most
# 2 x 1000 bytes (+ fx_check_log_bounded's slack), and the snapshot holds the
# live state only (one key, one session), not history: at most FX_SNAP_MAX
# (default 500, the lab's bound) bytes uncompressed.
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
THR=1000
ops=800
cl_start 3 --snapshot-threshold "$THR"
cl_wait_leader 20 >/dev/null || fx_fail "no leader within 20 s"
fx_histclient size --clients 1 --ops "$ops" --duration-ms 120000 --keys 1 --key-prefix x \
    --mix put=50,get=50 --timeout-ms 5000
fx_histclient_verdict size $?
fx_check_log_bounded "$THR"
command -v sqlite3 >/dev/null || fx_fail "the sqlite3 tool is needed to read the snapshot size"
for i in 1 2 3; do
    raw=$(sqlite3 -readonly -cmd ".timeout 2000" "file:$CL_DIR/$i/hstore.db" "SELECT raw_len FROM snap;")
    [ -n "$raw" ] || fx_fail "node $i has no snapshot after $ops operations with threshold $THR"
    [ "$raw" -le "${FX_SNAP_MAX:-500}" ] ||
        fx_fail "node $i: snapshot of one key and one session is $raw bytes > ${FX_SNAP_MAX:-500}"
done
cl_pass
