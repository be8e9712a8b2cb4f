#!/usr/bin/env bash
# Concurrent writers on one file: the whole-file PUT at close never undoes a
# change committed after the open.  Each scenario runs twice, once with both
# "nodes" in a local directory (the reference: what the same system calls
# give on a local filesystem) and once on the mounts, and the results must
# be equal.
#  1. node 1 opens an existing file with O_TRUNC (`exec 3>f`), node 2 appends
#     to it, node 1 writes X and closes: the append is kept (Xppended-by-B).
#  2. node 1 opens an empty file without O_TRUNC (`exec 3<>g`), node 2
#     appends two lines, node 1 writes AB at offset 0: ABne1|line2|.
#  3. two descriptors on one file on one node, with and without O_TRUNC, in
#     both closing orders: BBAA.
#  4. two O_TRUNC opens on different nodes, interleaved writes.
#  5. the fast path still holds: with nobody else writing, a rewrite appears
#     all at once to a reader on another node, and a new file too.
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2) M3=$(fs_mnt 3)
LOCAL=$CL_DIR/local
mkdir -p "$LOCAL"

# show FILE: the content with newlines as '|'.
show() { tr '\n' '|' <"$1"; }

# Each scenario: NAME A B (A = node 1's view of the directory, B = node 2's).
s_trunc_append() {
    printf 'old\n' >"$1/f"
    exec 3>"$1/f"
    echo appended-by-B >>"$2/f" || cl_fail "append on B"
    printf X >&3
    exec 3>&-
    show "$2/f"
}
s_rdwr_append() {
    : >"$1/g"
    exec 3<>"$1/g"
    echo line1 >>"$2/g" || cl_fail "append 1 on B"
    echo line2 >>"$2/g" || cl_fail "append 2 on B"
    printf AB >&3
    exec 3>&-
    show "$2/g"
}
s_two_fds_rdwr() {
    : >"$1/h"
    exec 3<>"$1/h"
    exec 4<>"$1/h"
    printf AAAA >&3
    printf BB >&4
    exec 3>&- 4>&-
    show "$2/h"
}
s_two_fds_trunc() {   # 3 closed first
    printf 'previous content\n' >"$1/i"
    exec 3>"$1/i"
    exec 4>"$1/i"
    printf AAAA >&3
    printf BB >&4
    exec 3>&-
    exec 4>&-
    show "$2/i"
}
s_two_fds_trunc_rev() {   # 4 closed first
    printf 'previous content\n' >"$1/j"
    exec 3>"$1/j"
    exec 4>"$1/j"
    printf AAAA >&3
    printf BB >&4
    exec 4>&-
    exec 3>&-
    show "$2/j"
}
s_two_nodes_trunc() {
    printf 'previous content\n' >"$1/k"
    exec 3>"$1/k"
    exec 4>"$2/k"
    printf 'long line from A' >&4
    printf BB >&3
    exec 3>&-
    exec 4>&-
    show "$2/k"
}

for sf in s_trunc_append:f s_rdwr_append:g s_two_fds_rdwr:h s_two_fds_trunc:i \
    s_two_fds_trunc_rev:j s_two_nodes_trunc:k; do
    s=${sf%:*} f=${sf#*:}
    want=$("$s" "$LOCAL" "$LOCAL")
    got=$("$s" "$M1" "$M2")
    cl_log "$s: local '$want', mount '$got'"
    [ "$got" = "$want" ] || cl_fail "$s: the mount gives '$got', a local filesystem '$want'"
    cl_expect_eq "$(show "$M3/$f")" "$want" "$s seen on node 3"
done

cl_log "fast path: a rewrite with nobody else writing appears at once"
PAD=$(head -c 20000 /dev/zero | tr '\0' 'y')
printf 'first %s first\n' "$PAD" >"$M1/fast"
stop=$CL_DIR/stop
(
    bad=0
    while [ ! -e "$stop" ]; do
        c=$(cat "$M2/fast" 2>/dev/null)
        case "$c" in
        "" | "first $PAD first" | "secnd $PAD secnd") ;;
        *)
            bad=$((bad + 1))
            printf 'bad read (%d bytes): %.30s...%s\n' "${#c}" "$c" "${c: -10}" >&2
            ;;
        esac
    done
    echo "$bad" >"$CL_DIR/fastbad"
) &
rd=$!
CL_ALL_PIDS+=($rd)
for k in 1 2 3 4 5 6 7 8 9 10; do
    printf 'secnd %s secnd\n' "$PAD" >"$M1/fast" || cl_fail "rewrite $k"
    printf 'first %s first\n' "$PAD" >"$M1/fast" || cl_fail "rewrite $k"
done
touch "$stop"
wait "$rd"
cl_expect_eq "$(cat "$CL_DIR/fastbad")" 0 "partial reads of the rewritten file"
cl_expect_eq "$(cat "$M3/fast")" "first $PAD first" "final content of the rewritten file"
cl_pass
