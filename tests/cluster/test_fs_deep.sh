#!/usr/bin/env bash
# Depth is unlimited, as on a local filesystem: only the path given to one
# system call is bounded.  A chain of directories whose path from the mount
# root is far longer than 4,096 bytes is built with cd and relative names on
# node 1; at the bottom a file is created, written, chmod'ed, linked, renamed
# and removed, from node 1 and from node 2 (which walks down the same way),
# and the whole chain is renamed and removed again.
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2)
D=${FS_DEEP_LEVELS:-40}
NAME=$(printf 'd%.0s' $(seq 1 200))   # 200 bytes per level: 40 levels are 8,040 bytes

# down MOUNT: cd to the bottom of the chain (in the calling shell).
down() {
    cd "$1" || return 1
    local i
    for i in $(seq 1 "$D"); do cd "$NAME" 2>/dev/null || return 1; done
}

cl_log "mkdir $D levels of 200-byte names on node 1 ($((D * 201)) bytes of path)"
(
    cd "$M1" || exit 1
    for i in $(seq 1 "$D"); do
        mkdir "$NAME" && cd "$NAME" || { echo "mkdir at level $i failed" >&2; exit 1; }
    done
    echo deep >f || exit 2
    chmod 640 f || exit 3
    [ "$(stat -c %a f)" = 640 ] || exit 4
    ln f g || exit 5
    mv g h || exit 6
    [ "$(stat -c %h f)" = 2 ] || exit 7
) || cl_fail "create/chmod/link/rename at the bottom on node 1 (step $?)"

cl_log "node 2 walks down and finds, changes and removes the same files"
(
    down "$M2" || exit 1
    [ "$(cat h)" = deep ] || exit 2
    echo more >>f || exit 3
    mkdir sub && mv f sub/f && mv sub/f . || exit 4
    rm h || exit 5
    [ "$(stat -c %h f)" = 1 ] || exit 6
    [ "$(cat f)" = "$(printf 'deep\nmore')" ] || exit 7
    rmdir sub || exit 8
) || cl_fail "walk/read/append/rename/remove at the bottom on node 2 (step $?)"

cl_log "symlink and mknod at the bottom; the chain renamed at its top"
(
    down "$M1" || exit 1
    ln -s f s || exit 2
    [ "$(readlink s)" = f ] || exit 3
    mkfifo p || exit 4
    rm s p f || exit 5
) || cl_fail "symlink/fifo at the bottom (step $?)"
mv "$M1/$NAME" "$M1/top" || cl_fail "rename of the chain"
cl_expect_eq "$(cd "$M2/top" && find . -type d | wc -l)" "$D" "directories in the chain seen from node 2"

cl_log "remove the chain bottom-up with relative names"
(
    cd "$M2/top" || exit 1
    for i in $(seq 2 "$D"); do cd "$NAME" || exit 2; done
    for i in $(seq 2 "$D"); do
        cd .. && rmdir "$NAME" || exit 3
    done
) || cl_fail "removing the chain (step $?)"
rmdir "$M1/top" || cl_fail "rmdir top"
cl_expect_eq "$(ls -A "$M2")" "" "empty root after removal"
cl_pass
