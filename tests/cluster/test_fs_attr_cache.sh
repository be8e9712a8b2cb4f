#!/usr/bin/env bash
# The kernel's attribute cache (fs/fs_cache.c) never shows an old size.  A
# writer appends one byte at a time to a file through node 1's mount and
# records, after each append returns, how many it has had acknowledged.
# Readers on nodes 2 and 3 hold the file open and stat it through the open
# descriptor (no name lookup: the kernel answers from its cache when it
# may), over and over.  Each reader reads the acknowledged count before its
# stat starts: the size it sees must be at least that count, and never less
# than its previous size.  Meanwhile node 3 is paused (SIGSTOP) for three
# leases, then the leader, then node 3 is cut off for 2 s, so a reader's
# cache outlives nothing.  The readers' stats must mostly be answered by
# the kernel (FUSE getattr requests far fewer than stats on node 2), so the
# run shows the cache in use.  Long mode: the faults 5 times.
. "$(dirname "$0")/fs_lib.sh" "$@"
. "$(dirname "$0")/lib/faults.sh"
fx_init
rounds=1; fx_mode_long && rounds=5
fs_start_lease_cluster
getattrs() { fs_metric "$1" 'hstore_fuse_op_seconds_count{op="getattr"}'; }

F=probe
: >"$(fs_mnt 1)/$F" || cl_fail "cannot create the file"
ACK=$CL_DIR/acked
echo 0 >"$ACK"
STOP=$CL_DIR/stop_clients
writer() {
    local m n=0 end
    m=$(fs_mnt 1)
    end=$(( $(cl_now_ms) + 300000 ))
    while [ ! -e "$STOP" ] && [ "$(cl_now_ms)" -lt "$end" ]; do
        if printf x >>"$m/$F" 2>/dev/null; then
            n=$((n + 1))
            echo "$n" >"$ACK.tmp" && mv -f "$ACK.tmp" "$ACK"
        fi
        sleep 0.05 # a change every so often: most stats in between may be cached
    done
}
reader() { # NODE: fstat through a descriptor held open (fs_check watch_size)
    "$FS_CHECK" watch_size "$(fs_mnt "$1")/$F" "$ACK" "$STOP" | sed "s/^size/node $1: size/"
}
g2=$(getattrs 2)
writer &
wpid=$!; CL_ALL_PIDS+=("$wpid")
reader 2 >"$CL_DIR/reader2.out" &
r2=$!; CL_ALL_PIDS+=("$r2")
reader 3 >"$CL_DIR/reader3.out" &
r3=$!; CL_ALL_PIDS+=("$r3")
sleep 2
fx_lease_rounds "$rounds" "$LEASE_MS"
: >"$STOP"
fx_wait_clients "$wpid" "$r2" "$r3"
acked=$(<"$ACK")
for i in 2 3; do
    bad=$(grep -v '^stats ' "$CL_DIR/reader$i.out" | head -5)
    [ -z "$bad" ] || fx_fail "stale attributes: $bad"
done
s2=$(sed -n 's/^stats //p' "$CL_DIR/reader2.out")
s3=$(sed -n 's/^stats //p' "$CL_DIR/reader3.out")
g2=$(( $(getattrs 2) - g2 ))
cl_log "$acked appends acknowledged; stats: node 2 $s2, node 3 $s3; getattr requests on node 2: $g2"
[ "$acked" -gt 20 ] || fx_fail "only $acked appends were acknowledged"
[ "${s2:-0}" -gt 50 ] && [ "${s3:-0}" -gt 50 ] || fx_fail "too few stats ($s2, $s3)"
[ "$g2" -lt $((s2 / 2)) ] || fx_fail "the kernel cached nothing: $g2 getattr requests for $s2 stats on node 2"
for i in 1 2 3; do
    size=$(stat -c %s "$(fs_mnt "$i")/$F") || fx_fail "final stat through mount $i failed"
    [ "$size" -ge "$acked" ] || fx_fail "mount $i: final size $size < $acked acknowledged appends"
done
cl_pass
