#!/usr/bin/env bash
# POSIX behaviour of each filesystem operation through the mounts, with exact
# error codes (build/fs_check prints OK or the errno name of one call), the
# operations spread over different nodes; EACCES under default_permissions
# for a non-root user (needs root: the mounts then use allow_other).
#
# FS_POSIX_TARGET=solo runs the same checks against build/fs_solo (the FUSE
# layer over the bare state machine, no cluster); FS_SOLO_BIN picks another
# build of it (e.g. one with ASan).
. "$(dirname "$0")/fs_lib.sh" "$@"
if [ "${FS_POSIX_TARGET:-cluster}" = solo ]; then
    solo=${FS_SOLO_BIN:-$CL_REPO/build/fs_solo}
    [ -n "${FS_SOLO_BIN:-}" ] || make -s -C "$CL_REPO" build/fs_solo >/dev/null ||
        cl_fail "cannot build build/fs_solo"
    mkdir -p "$CL_DIR/solo"
    "$solo" "$CL_DIR/solo" >"$CL_DIR/solo.log" 2>&1 &
    CL_ALL_PIDS+=($!)
    CL_MOUNTS+=("$CL_DIR/solo")
    for _ in $(seq 1 100); do [ -e "$CL_DIR/solo/.hstore/status" ] && break; sleep 0.1; done
    M1=$CL_DIR/solo M2=$CL_DIR/solo M3=$CL_DIR/solo
else
    cl_start 3 --op-timeout-ms "$OPT_MS"
    fs_wait_mounts 20
    M1=$(fs_mnt 1) M2=$(fs_mnt 2) M3=$(fs_mnt 3)
fi
C=$FS_CHECK

# expect WANT CMD ARGS...: runs fs_check and compares the first word.
expect() {
    local want=$1 got
    shift
    got=$("$C" "$@" 2>&1 | awk '{print $1}')
    [ "$got" = "$want" ] || cl_fail "fs_check $*: got $got, want $want"
}
field() { "$C" stat "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }

cl_log "create, O_EXCL, open"
expect OK creat_excl "$M1/f"
expect EEXIST creat_excl "$M2/f"
expect ENOENT open_rd "$M3/missing"
expect ENOENT creat_excl "$M1/nodir/x"
expect ENOTDIR creat_excl "$M2/f/x"
expect ENOTDIR open_rd "$M3/f/x"
echo hello >"$M1/f"
expect OK open_trunc "$M2/f"
cl_expect_eq "$(cat "$M3/f" | wc -c)" 0 "size after open(O_TRUNC) without writes"

cl_log "names"
long=$(printf 'n%.0s' $(seq 1 256))
ok255=$(printf 'n%.0s' $(seq 1 255))
expect ENAMETOOLONG creat_excl "$M1/$long"
expect ENAMETOOLONG mkdir "$M2/$long"
expect ENAMETOOLONG open_rd "$M3/$long"
expect OK creat_excl "$M1/$ok255"
[ -e "$M2/$ok255" ] || cl_fail "255-byte name not seen on node 2"
expect OK unlink "$M3/$ok255"

cl_log "mkdir, rmdir, unlink"
expect OK mkdir "$M1/d"
expect EEXIST mkdir "$M2/d"
expect EEXIST mkdir "$M3/f"
expect ENOENT mkdir "$M1/nodir/d"
expect OK creat_excl "$M2/d/inner"
expect ENOTEMPTY rmdir "$M3/d"
expect ENOTDIR rmdir "$M1/f"
expect ENOENT rmdir "$M2/nothere"
expect EISDIR unlink "$M3/d"
expect EISDIR open_wr "$M1/d"
expect ENOENT unlink "$M2/nothere"
expect OK unlink "$M3/d/inner"
expect OK rmdir "$M1/d"
expect ENOENT rmdir "$M2/d"

cl_log "write at offsets, sparse files, truncate"
printf 'abcdef' >"$M1/w"
expect OK write_at "$M2/w" 2 XY
cl_expect_eq "$(cat "$M3/w")" abXYef "write at an offset"
expect OK write_at "$M3/w" 10 Z
cl_expect_eq "$(od -An -c "$M1/w" | tr -s ' ' | tr -d '\n')" " a b X Y e f \\0 \\0 \\0 \\0 Z" "sparse write"
expect OK truncate "$M1/w" 3
cl_expect_eq "$(cat "$M2/w")" abX "truncate down"
expect OK truncate "$M2/w" 5
cl_expect_eq "$(field "$M3/w" size)" 5 "size after truncate up"
expect EISDIR truncate "$M1/" 0
printf 'abc' | dd of="$M3/w" bs=1 seek=1 conv=notrunc 2>/dev/null || cl_fail "dd conv=notrunc"
cl_expect_eq "$(od -An -c "$M1/w" | tr -s ' ' | tr -d '\n')" " a a b c \\0" "dd conv=notrunc overwrite"
expect OK append "$M2/app" "line
" 5
cl_expect_eq "$(wc -l <"$M1/app")" 5 "O_APPEND writes"

cl_log "rename: plain, over a file, NOREPLACE, EXCHANGE, directories"
echo A >"$M1/ra"
echo B >"$M1/rb"
expect EEXIST rename_noreplace "$M2/ra" "$M2/rb"
expect OK rename_exchange "$M3/ra" "$M3/rb"
cl_expect_eq "$(cat "$M1/ra")$(cat "$M1/rb")" BA "contents after RENAME_EXCHANGE"
expect ENOENT rename_exchange "$M2/ra" "$M2/nothere"
expect OK rename "$M2/ra" "$M2/rb"
cl_expect_eq "$(cat "$M3/rb")" B "rename over an existing file"
[ -e "$M1/ra" ] && cl_fail "source still there after rename"
expect ENOENT rename "$M1/ra" "$M1/rc"
mkdir -p "$M1/da/sub" "$M1/db"
echo in >"$M1/da/sub/file"
expect EISDIR rename "$M2/rb" "$M2/da"
expect ENOTDIR rename "$M3/da" "$M3/rb"
expect EINVAL rename "$M1/da" "$M1/da/sub/x"
expect OK rename "$M2/da" "$M2/db"
cl_expect_eq "$(cat "$M3/db/sub/file")" in "directory moved over an empty directory"
mkdir "$M1/dc"
echo x >"$M1/dc/y"
expect ENOTEMPTY rename "$M2/db" "$M2/dc"
expect OK rename_noreplace "$M3/db" "$M3/dd"

cl_log "hard links, symlinks, fifos, devices"
echo linked >"$M1/l1"
expect OK link "$M2/l1" "$M2/l2"
expect EEXIST link "$M3/l1" "$M3/l2"
cl_expect_eq "$(field "$M1/l2" nlink)" 2 "nlink after link"
echo more >>"$M3/l2"
cl_expect_eq "$(cat "$M1/l1" | tr '\n' ' ')" "linked more " "hard links share data"
expect OK unlink "$M2/l1"
cl_expect_eq "$(field "$M3/l2" nlink)" 1 "nlink after unlink of one name"
expect EPERM link "$M1/dd" "$M1/dlink"
expect OK symlink "target/path" "$M1/sl"
expect EEXIST symlink "x" "$M2/sl"
cl_expect_eq "$("$C" readlink "$M3/sl")" "OK target/path" "readlink on node 3"
expect EINVAL readlink "$M1/l2"
expect OK mkfifo "$M2/fifo"
cl_expect_eq "$(stat -c %F "$M3/fifo")" fifo "fifo type on node 3"
expect OK mknod_chr "$M3/chr"
cl_expect_eq "$(stat -c '%F %t:%T' "$M1/chr")" "character special file 1:3" "device node on node 1"

cl_log "chmod, chown, utimens (same attributes on every node)"
expect OK chmod "$M1/l2" 640
cl_expect_eq "$(stat -c %a "$M2/l2")" 640 "mode after chmod"
chown 123:456 "$M2/l2" || cl_fail "chown"
cl_expect_eq "$(stat -c %u:%g "$M3/l2")" 123:456 "owner after chown"
expect OK utime_mtime "$M3/l2" 1000000000
cl_expect_eq "$(stat -c %Y "$M1/l2")" 1000000000 "mtime after utimensat"
expect OK utime_omit_mtime "$M1/l2" 1200000000
cl_expect_eq "$(stat -c '%X %Y' "$M2/l2")" "1000000000 1200000000" "UTIME_OMIT keeps atime"
before=$(date +%s)
expect OK utime_now "$M2/l2"
after=$(date +%s)
m=$(stat -c %Y "$M3/l2")
[ "$m" -ge $((before - 1)) ] && [ "$m" -le $((after + 1)) ] ||
    cl_fail "UTIME_NOW gave mtime $m, outside the call ($before..$after)"
cl_expect_eq "$(stat -c '%X %Y %Z' "$M1/l2")" "$(stat -c '%X %Y %Z' "$M3/l2")" "timestamps equal on nodes 1 and 3"

cl_log "unlink of an open file (POSIX on the node that holds it)"
expect OK unlink_open "$M1/opened"
[ -e "$M2/opened" ] && cl_fail "unlinked file still seen on node 2"

cl_log "statfs"
df -P "$M2" | tail -1 | grep -q . || cl_fail "df of the mount"
cl_expect_eq "$(stat -f -c %l "$M3")" 255 "name_max from statfs"

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    cl_log "EACCES for a non-root user under default_permissions"
    as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
    chmod 755 "$CL_DIR"   # mktemp -d made it 0700: let nobody reach the mounts
    [ -d "$CL_DIR/mnt" ] && chmod 755 "$CL_DIR/mnt"
    echo public >"$M1/public"
    chmod 644 "$M1/public"
    echo secret >"$M1/private"
    chmod 600 "$M1/private"
    mkdir -p "$M1/ro"
    chmod 755 "$M1/ro"
    got=$(as_nobody cat "$M2/public" 2>&1) ||
        cl_fail "nobody cannot read a 0644 file (mount without allow_other?): $got"
    cl_expect_eq "$got" public "nobody reads a 0644 file"
    cl_expect_eq "$(as_nobody "$C" open_rd "$M2/private")" EACCES "nobody opens a 0600 file"
    cl_expect_eq "$(as_nobody "$C" open_wr "$M3/public")" EACCES "nobody writes a 0644 file"
    cl_expect_eq "$(as_nobody "$C" creat_excl "$M3/ro/x")" EACCES "nobody creates in a 0755 root dir"
    cl_expect_eq "$(as_nobody "$C" unlink "$M2/public")" EACCES "nobody unlinks in a 0755 root dir"
    cl_expect_eq "$(as_nobody "$C" chmod "$M1/public" 777)" EPERM "nobody chmods root's file"
    chmod 777 "$M1/ro"
    cl_expect_eq "$(as_nobody "$C" creat_excl "$M2/ro/mine")" OK "nobody creates in a 0777 dir"
    cl_expect_eq "$(stat -c %u:%g "$M3/ro/mine")" 65534:65534 "owner of nobody's file"
else
    cl_log "not root (or no setpriv): EACCES checks skipped"
fi
cl_pass
