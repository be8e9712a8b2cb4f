#!/usr/bin/env bash
# Without a quorum the mount answers EIO within the op timeout and never
# hangs; after the cluster heals the same mount serves the current data; a
# node stopped while the cluster has no quorum still unmounts cleanly.
. "$(dirname "$0")/fs_lib.sh" "$@"
OPT_MS=2000
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1)
echo before >"$M1/f" || cl_fail "first write"
cl_expect_eq "$(cat "$(fs_mnt 2)/f")" before "read on node 2"

cl_log "stop nodes 2 and 3: node 1 is a minority"
cl_kill 2
cl_kill 3
# For at most a lease (500 ms by default) node 1 may still answer reads
# from the read lease it held (nothing can be written meanwhile, so they are
# current); after that, no quorum means EIO.
sleep 1.5
timed() { # timed WHAT CMD...: runs CMD, which must fail with EIO, not hang
    local what=$1 t0 t1 out
    shift
    t0=$(cl_now_ms)
    # (timeout only catches a hang: a loaded machine may add seconds to the
    # op timeout, so the time is logged, not asserted)
    out=$(timeout 60 "$@" 2>&1) && cl_fail "$what succeeded without a quorum"
    t1=$(cl_now_ms)
    echo "$out" | grep -q "Input/output error" || cl_fail "$what: want EIO, got: $out"
    [ $((t1 - t0)) -ge "$OPT_MS" ] || cl_fail "$what gave up after $((t1 - t0)) ms, before the op timeout"
    cl_log "$what: EIO after $((t1 - t0)) ms"
}
timed "read" cat "$M1/f"
timed "write" sh -c "echo during >'$M1/f'"
timed "append" sh -c "echo during >>'$M1/f'"
timed "mkdir" mkdir "$M1/newdir"
timed "ls" ls "$M1/"
t0=$(cl_now_ms)
grep -q "^id 1$" "$M1/.hstore/status" || cl_fail "control view unavailable without a quorum"
cl_log "control view read without a quorum in $(( $(cl_now_ms) - t0 )) ms"

cl_log "restart nodes 2 and 3: node 1's mount serves the current data"
cl_restart 2
cl_restart 3
fs_wait_mounts 30
end=$(($(cl_now_ms) + 15000))
until got=$(cat "$M1/f" 2>/dev/null); do
    [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "node 1 does not serve reads after healing"
    sleep 0.2
done
case "$got" in
before | during) ;;   # "during" only if a timed-out write committed later
*) cl_fail "content after healing: '$got'" ;;
esac
echo after >"$M1/f" || cl_fail "write after healing"
cl_expect_eq "$(cat "$(fs_mnt 3)/f")" after "read on node 3 after healing"

cl_log "stop node 1 while it has no quorum: the unmount still completes"
cl_kill 2
cl_kill 3
( cat "$M1/f" >/dev/null 2>&1 ) &   # a request in flight during the stop
CL_ALL_PIDS+=($!)
sleep 0.2
t0=$(cl_now_ms)
cl_term 1 60
t1=$(cl_now_ms)
cl_fuse_mounted "$M1" && cl_fail "node 1's mount is still there after SIGTERM"
cl_log "stopped without a quorum in $((t1 - t0)) ms"
cl_pass
