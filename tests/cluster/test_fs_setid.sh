#!/usr/bin/env bash
# Set-user-ID and set-group-ID bits behave as on a local filesystem: a write
# or truncate by an unprivileged user (the owner or another one) clears them,
# root's writes keep them, chown clears them.  Every case runs in a local
# directory and in the mount (node 1 writes, node 2 reads the mode back), and
# the modes must be the same; the main cases are also checked against fixed
# values so that both cannot agree on keeping the bits.
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2)
LOCAL=$CL_DIR/local
mkdir -p "$LOCAL" "$M1/s" || cl_fail "mkdir"
chmod 755 "$CL_DIR" "$CL_DIR/mnt" "$LOCAL" "$M1/s" || cl_fail "chmod"

as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups -- sh -c "$*"; }

# prep DIR NAME OWNER MODE: a file with content, owner and mode.
prep() {
    printf 'abc' >"$1/$2" && chown "$3:$3" "$1/$2" && chmod "$4" "$1/$2"
}

# run_cases DIR: the cases; prints "name mode" lines (modes read back from RDIR).
run_cases() {
    local d=$1 r=$2
    prep "$d" append_other 1000 6777 && as 65534 "printf x >>'$d/append_other'"
    prep "$d" write_owner 1000 6777 && as 1000 "printf x | dd of='$d/write_owner' bs=1 seek=1 conv=notrunc status=none"
    prep "$d" replace_other 1000 6777 && as 65534 "printf new >'$d/replace_other'"
    prep "$d" write_root 1000 6777 && printf x >>"$d/write_root"
    prep "$d" trunc_other 1000 6777 && as 65534 "truncate -s 1 '$d/trunc_other'"
    prep "$d" sgid_nogx_other 1000 2666 && as 65534 "printf x >>'$d/sgid_nogx_other'"
    prep "$d" sgid_nogx_member 1000 2666 && as 1000 "printf x >>'$d/sgid_nogx_member'"
    prep "$d" chown_root 1000 6755 && chown 1001 "$d/chown_root"
    prep "$d" chmod_only 1000 6777 && chmod 6775 "$d/chmod_only"
    for f in append_other write_owner replace_other write_root trunc_other sgid_nogx_other \
        sgid_nogx_member chown_root chmod_only; do
        echo "$f $(stat -c %a "$r/$f")"
    done
}

cl_log "the cases in a local directory ($(stat -f -c %T "$LOCAL"))"
run_cases "$LOCAL" "$LOCAL" >"$CL_DIR/local.modes" 2>"$CL_DIR/local.err" ||
    cl_fail "local cases: $(cat "$CL_DIR/local.err")"
cl_log "the cases in the mount (written on node 1, read on node 2)"
run_cases "$M1/s" "$M2/s" >"$CL_DIR/mount.modes" 2>"$CL_DIR/mount.err" ||
    cl_fail "mount cases: $(cat "$CL_DIR/mount.err")"
paste "$CL_DIR/local.modes" "$CL_DIR/mount.modes" | awk '{printf "  %-18s local %5s  mount %5s\n", $1, $2, $4}' >&2
diff "$CL_DIR/local.modes" "$CL_DIR/mount.modes" >&2 || cl_fail "modes differ from the local filesystem"
mode() { awk -v f="$1" '$1 == f {print $2}' "$CL_DIR/mount.modes"; }
cl_expect_eq "$(mode append_other)" 777 "append by another user"
cl_expect_eq "$(mode write_owner)" 777 "write by the unprivileged owner"
cl_expect_eq "$(mode replace_other)" 777 "O_TRUNC rewrite by another user"
cl_expect_eq "$(mode trunc_other)" 777 "truncate by another user"
cl_expect_eq "$(mode write_root)" 6777 "write by root"
cl_expect_eq "$(cat "$M2/s/append_other")" abcx "content of the appended file"
cl_pass
