#!/usr/bin/env bash
# Open files and nodes that go away.  Node 2 and node 3 each hold open a file
# that node 1 then renames a new version over.  Node 3 is killed and never
# comes back: once it has not reported for the holder TTL (60 s of cluster
# time) the file it held is freed.  Node 2 stays up but idle all that time:
# its keepalive reports keep its file alive, and it still reads the old
# content through its descriptor; closing it frees the inode.
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2) M3=$(fs_mnt 3)

used_inodes() { stat -f -c '%c %d' "$1" | awk '{print $1 - $2}'; }
wait_used() {
    local end=$(($(cl_now_ms) + $3 * 1000)) u
    while :; do
        u=$(used_inodes "$1")
        [ "$u" = "$2" ] && return 0
        [ "$(cl_now_ms)" -lt "$end" ] || { cl_log "inodes in use: $u, expected $2"; return 1; }
        sleep 0.2
    done
}

echo "old g" >"$M1/g" && echo "old h" >"$M1/h" || cl_fail "create g and h"
base=$(used_inodes "$M1")
exec 7<"$M2/g" || cl_fail "open g on node 2"
exec 8<"$M3/h" || cl_fail "open h on node 3"
echo "new g" >"$M1/g.tmp" && mv "$M1/g.tmp" "$M1/g" || cl_fail "rename over g"
echo "new h" >"$M1/h.tmp" && mv "$M1/h.tmp" "$M1/h" || cl_fail "rename over h"
wait_used "$M1" "$((base + 2))" 20 || cl_fail "the two replaced inodes are not both kept"

cl_log "node 3 dies for good while holding the old h"
cl_kill 3
exec 8<&-
cl_log "waiting for the holder TTL (60 s of cluster time) to drop node 3"
wait_used "$M1" "$((base + 1))" 150 || cl_fail "the inode held by the lost node was never freed"
cl_expect_eq "$(cat <&7)" "old g" "old g through node 2's descriptor after a long idle time"
cl_expect_eq "$(used_inodes "$M1")" "$((base + 1))" "inodes in use while node 2 holds the old g"
exec 7<&-
wait_used "$M1" "$base" 20 || cl_fail "the old g was not freed after its last close"
cl_expect_eq "$(cat "$M2/g")" "new g" "g"
cl_pass
