#!/usr/bin/env bash
# Limits through the mount: a file larger than --max-file-size gets EFBIG
# (whole-file writes, write-through writes, truncate); a store past
# --max-store-bytes gets ENOSPC, reported by write() or by close() for a
# whole-file write (the PUT is committed at close); nothing is left half
# written, and the cluster keeps serving.
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS" --max-file-size 1M --max-store-bytes 6M
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2) M3=$(fs_mnt 3)
read -r blocks bsize < <(stat -f -c '%b %S' "$M2")
cl_expect_eq "$((blocks * bsize))" $((6 * 1024 * 1024)) "statfs total with --max-store-bytes 6M"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$CL_DIR/2m"
head -c 1000000 /dev/urandom >"$CL_DIR/1m"

cl_log "EFBIG"
out=$(cp "$CL_DIR/2m" "$M1/big" 2>&1) && cl_fail "cp of a 2 MiB file succeeded with --max-file-size 1M"
echo "$out" | grep -q "File too large" || cl_fail "cp of a 2 MiB file: want EFBIG, got: $out"
out=$(truncate -s 2M "$M2/t" 2>&1) && cl_fail "truncate -s 2M succeeded"
echo "$out" | grep -q "File too large" || cl_fail "truncate -s 2M: want EFBIG, got: $out"
cp "$CL_DIR/1m" "$M3/ok" || cl_fail "cp of a 1,000,000-byte file"
out=$("$FS_CHECK" write_at "$M1/ok" 1048570 0123456789)
cl_expect_eq "$out" EFBIG "write-through write past the limit"
cmp -s "$CL_DIR/1m" "$M2/ok" || cl_fail "file changed by a refused write"

cl_log "ENOSPC"
rm -f "$M1/big" "$M2/t"
full=0
for i in $(seq 1 10); do
    if ! out=$(cp "$CL_DIR/1m" "$(fs_mnt $(( (i % 3) + 1 )))/f$i" 2>&1); then
        echo "$out" | grep -q "No space left on device" || cl_fail "cp f$i: want ENOSPC, got: $out"
        full=$i
        break
    fi
done 2>/dev/null
[ "$full" != 0 ] || cl_fail "10 MB stored with --max-store-bytes 6M"
cl_log "store full at file $full"
sz=$(stat -c %s "$M2/f$full" 2>/dev/null || echo none)
case "$sz" in 0 | none) ;; *) cl_fail "refused file f$full has $sz bytes (partial)" ;; esac
# Under 1 MiB (no EFBIG) but more than the space left: an O_APPEND write.
out=$(sh -c "head -c 700000 /dev/zero >>'$M2/app'" 2>&1) && cl_fail "append on a full store succeeded"
echo "$out" | grep -q "No space left on device" || cl_fail "append on a full store: want ENOSPC, got: $out"
rm "$M3/f1" || cl_fail "rm on a full store"
# An unlinked inode is freed once every node's open-file report shows that no
# node holds it (README, "Unlinking an open file"): wait, with a deadline,
# until statfs on the writing node shows the space back.
end=$(($(cl_now_ms) + 20000))
while :; do
    read -r avail bsize < <(stat -f -c '%a %S' "$M1")
    [ "$((avail * bsize))" -ge 1000000 ] && break
    [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "space of a removed file not back after 20 s (free $((avail * bsize)))"
    sleep 0.1
done
cp "$CL_DIR/1m" "$M1/again" || cl_fail "cp after freeing space"
cmp -s "$CL_DIR/1m" "$M2/again" || cl_fail "file written after freeing space differs"
cl_pass
