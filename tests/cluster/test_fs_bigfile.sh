#!/usr/bin/env bash
# A 100 MB file copied in through node 1's mount reads back with the same
# sha256sum through nodes 2 and 3, and again on every node after all nodes
# were stopped and started (state rebuilt from the store: snapshot + log).
# Prints the copy and read rates (numbers, not assertions).
. "$(dirname "$0")/fs_lib.sh" "$@"
# (The op timeout is a deadline, not a speed: a loaded machine may take
# seconds for one 128 KiB write of the copy.)
cl_start 3 --op-timeout-ms 60000
fs_wait_mounts 20
MB=${FS_BIG_MB:-100}
head -c $((MB * 1024 * 1024)) /dev/urandom >"$CL_DIR/big" || cl_fail "make the source file"
want=$(sha256sum <"$CL_DIR/big" | awk '{print $1}')

t0=$(cl_now_ms)
cp "$CL_DIR/big" "$(fs_mnt 1)/big" || cl_fail "cp of $MB MB into node 1"
t1=$(cl_now_ms)
cl_log "copy in: $MB MB in $((t1 - t0)) ms ($(awk -v mb="$MB" -v ms=$((t1 - t0 + 1)) 'BEGIN { printf "%.1f", mb * 1000 / ms }') MB/s)"
for i in 2 3 1; do
    t0=$(cl_now_ms)
    got=$(sha256sum <"$(fs_mnt "$i")/big" | awk '{print $1}') || cl_fail "read on node $i"
    t1=$(cl_now_ms)
    cl_expect_eq "$got" "$want" "sha256 of the big file read on node $i"
    cl_log "read on node $i: $((t1 - t0)) ms"
done
cl_expect_eq "$(stat -c %s "$(fs_mnt 2)/big")" $((MB * 1024 * 1024)) "size on node 2"

cl_log "stop all nodes, start them again"
for i in 1 2 3; do cl_term "$i" 30; done
for i in 1 2 3; do
    cl_fuse_mounted "$(fs_mnt "$i")" && cl_fail "node $i left its mount behind after SIGTERM"
done
for i in 1 2 3; do cl_restart "$i"; done
fs_wait_mounts 60
for i in 3 2 1; do
    got=$(sha256sum <"$(fs_mnt "$i")/big" | awk '{print $1}') || cl_fail "read on node $i after restart"
    cl_expect_eq "$got" "$want" "sha256 of the big file on node $i after the restart"
done
cl_pass
