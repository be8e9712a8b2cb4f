#!/usr/bin/env bash
# hstore backup and hstore restore, end to end:
#  1. keys through the CLI and files through a mount (nested directories,
#     modes, mtimes, a symlink, an 8 MiB file); with the writes stopped, a
#     backup from a follower; a new cluster restored from it (every node's
#     directory restored) shows every key and file exactly as before:
#     content, mode, mtime;
#  2. a second backup while two writers keep writing (sequential puts of new
#     keys through the CLI, appends to one file through a mount): the
#     cluster restored from it holds a prefix of each writer's writes that
#     includes every write acknowledged before the backup started;
#  3. a corrupt, a truncated and a foreign file, and a non-empty directory,
#     are refused with a clear error and leave nothing behind.
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1)

cl_log "keys through the CLI, files through node 1's mount"
for k in $(seq 1 40); do hs put "cli/k$k" "value $k" >/dev/null || cl_fail "put cli/k$k"; done
printf 'bin\0ary\n' | hs put cli/binary >/dev/null || cl_fail "put cli/binary"
mkdir -p "$M1/tree/a/b/c" "$M1/tree/empty" || cl_fail "mkdir"
head -c 8388608 /dev/urandom >"$CL_DIR/big.src"
cp "$CL_DIR/big.src" "$M1/tree/a/big.bin" || cl_fail "cp big"
for f in tree/one tree/a/two tree/a/b/three tree/a/b/c/four; do
    printf 'file %s\n' "$f" >"$M1/$f" || cl_fail "write $f"
done
ln -s a/b/three "$M1/tree/link" || cl_fail "symlink"
chmod 0600 "$M1/tree/one" && chmod 0755 "$M1/tree/a/two" && chmod 0640 "$M1/tree/a/b/three" &&
    chmod 0700 "$M1/tree/a/b" && chmod 0750 "$M1/tree/empty" || cl_fail "chmod"
touch -d "2001-02-03 04:05:06.123456789" "$M1/tree/one" &&
    touch -d "1999-12-31 23:59:59" "$M1/tree/a/big.bin" &&
    touch -d "2010-01-01 00:00:01" "$M1/tree/a/b/c" "$M1/tree/empty" || cl_fail "touch"

# listing DIR: every entry under DIR (the control directory aside): path,
# type, mode, size, mtime, and the content's checksum or the link's target.
listing() {
    (cd "$1" && find . -mindepth 1 -path ./.hstore -prune -o -print | LC_ALL=C sort |
        while read -r p; do
            if [ -L "$p" ]; then
                printf '%s link %s\n' "$p" "$(readlink "$p")"
            elif [ -f "$p" ]; then
                printf '%s %s %s\n' "$(stat -c '%n %F %a %s %y' "$p")" "$(md5sum <"$p" | cut -c1-32)"
            else
                stat -c '%n %F %a %y' "$p"
            fi
        done)
}
# keys: every key and its value's checksum, through the CLI.
keys() {
    hs ls | LC_ALL=C sort | while read -r k; do
        printf '%s %s\n' "$k" "$(hs get "$k" | md5sum | cut -c1-32)"
    done
}
want_files=$(listing "$M1")
want_keys=$(keys)
[ "$(printf '%s\n' "$want_keys" | grep -c '^cli/k')" = 40 ] || cl_fail "want 40 cli/ keys before the backup"
printf '%s\n' "$want_files" | grep -q 'big.bin regular file 644 8388608 1999-12-31' ||
    cl_fail "the big file's listing is not what was written: $(printf '%s\n' "$want_files" | grep big)"

leader=$(cl_wait_leader 10) || cl_fail "no leader"
from=1; [ "$leader" = 1 ] && from=2
out=$(hs backup --node "$from" "$CL_DIR/b1.hsb") || cl_fail "backup from node $from: exit $?"
cl_log "$out"
idx1=$(printf '%s\n' "$out" | sed -n 's/.* at index \([0-9]*\) .*/\1/p')
[ -n "$idx1" ] && [ -f "$CL_DIR/b1.hsb" ] && [ ! -e "$CL_DIR/b1.hsb.part" ] ||
    cl_fail "backup printed no index, or left no file / a .part file"
printf '%s\n' "$out" | grep -q "backup of node $from" || cl_fail "the backup did not come from node $from"

cl_log "a second backup while two writers write"
: >"$CL_DIR/ok.cli"
: >"$CL_DIR/ok.log"
cli_writer() {
    local k=0
    while [ ! -e "$CL_DIR/stop" ]; do
        k=$((k + 1))
        hs put "w/k$k" "$k" >/dev/null 2>&1 || break
        echo "$k" >>"$CL_DIR/ok.cli"
    done
}
log_writer() {
    local k=0 m
    m=$(fs_mnt 2)
    while [ ! -e "$CL_DIR/stop" ]; do
        k=$((k + 1))
        echo "line $k" >>"$m/tree/log.txt" 2>/dev/null || break
        echo "$k" >>"$CL_DIR/ok.log"
    done
}
cli_writer &
wp1=$!
log_writer &
wp2=$!
CL_ALL_PIDS+=("$wp1" "$wp2")
end=$(($(cl_now_ms) + 20000))
while [ "$(wc -l <"$CL_DIR/ok.cli")" -lt 20 ] || [ "$(wc -l <"$CL_DIR/ok.log")" -lt 20 ]; do
    [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "the writers made no progress in 20 s"
    sleep 0.1
done
acked_cli=$(wc -l <"$CL_DIR/ok.cli")
acked_log=$(wc -l <"$CL_DIR/ok.log")
out=$(hs backup "$CL_DIR/b2.hsb") || cl_fail "backup under writers: exit $?"
cl_log "$out (writers had $acked_cli and $acked_log writes acknowledged before it)"
idx2=$(printf '%s\n' "$out" | sed -n 's/.* at index \([0-9]*\) .*/\1/p')
[ -n "$idx2" ] && [ "$idx2" -gt "$idx1" ] || cl_fail "second backup index '$idx2' not after '$idx1'"
# Some more writes after the backup, so that the end state differs from it.
end=$(($(cl_now_ms) + 20000))
while [ "$(wc -l <"$CL_DIR/ok.cli")" -lt $((acked_cli + 10)) ]; do
    [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "the CLI writer stopped after the backup"
    sleep 0.1
done
touch "$CL_DIR/stop"
wait "$wp1" "$wp2"
total_cli=$(wc -l <"$CL_DIR/ok.cli")

cl_log "refusals: corrupt, truncated, foreign files; a non-empty directory"
cp "$CL_DIR/b1.hsb" "$CL_DIR/corrupt.hsb"
printf 'X' | dd of="$CL_DIR/corrupt.hsb" bs=1 seek=5000 conv=notrunc 2>/dev/null
head -c 100000 "$CL_DIR/b1.hsb" >"$CL_DIR/trunc.hsb"
expect_refused() {
    local file=$1 dir=$2 what=$3 err rc
    err=$(hs restore "$file" --data "$dir" 2>&1 >/dev/null)
    rc=$?
    [ "$rc" = 2 ] || cl_fail "restore of $what: exit $rc, want 2 ($err)"
    printf '%s\n' "$err" | grep -q "$4" || cl_fail "restore of $what: message '$err' does not say '$4'"
    cl_log "refused $what: $err"
}
expect_refused "$CL_DIR/corrupt.hsb" "$CL_DIR/r/x" "a corrupt file" corrupt
expect_refused "$CL_DIR/trunc.hsb" "$CL_DIR/r/x" "a truncated file" truncated
expect_refused "$CL_DIR/secret" "$CL_DIR/r/x" "a foreign file" "not an hstore backup"
mkdir -p "$CL_DIR/full" && echo x >"$CL_DIR/full/f"
expect_refused "$CL_DIR/b1.hsb" "$CL_DIR/full" "into a non-empty directory" "not empty"
[ ! -e "$CL_DIR/r" ] || cl_fail "a refused restore left $(find "$CL_DIR/r")"
[ "$(ls "$CL_DIR/full")" = f ] || cl_fail "a refused restore changed the non-empty directory"

# restore_cluster FILE: stops the running cluster, restores FILE into every
# node's directory and starts the nodes on them (same SPEC, same mounts).
restore_cluster() {
    local file=$1 i
    for i in 1 2 3; do
        cl_kill "$i"
        fusermount3 -uz "$(fs_mnt "$i")" 2>/dev/null
    done
    for i in 1 2 3; do
        rm -rf "$CL_DIR/old$i" && mv "$CL_DIR/$i" "$CL_DIR/old$i" || cl_fail "move node $i's directory"
        hs restore "$file" --data "$CL_DIR/$i" --id "$i" --cluster "$CL_SPEC" >"$CL_DIR/restore.out" 2>&1 ||
            cl_fail "restore into node $i's directory: $(cat "$CL_DIR/restore.out")"
    done
    cl_log "$(cat "$CL_DIR/restore.out")"
    for i in 1 2 3; do cl_start_node "$i"; done
    fs_wait_mounts 30
}

cl_log "a new cluster from the first backup"
restore_cluster "$CL_DIR/b1.hsb"
for i in 1 2 3; do
    s=$(cl_field "$i" snapshot)
    [ "$s" = "$idx1" ] || cl_fail "restored node $i reports snapshot index '$s', want $idx1"
done
cl_expect_eq "$(keys)" "$want_keys" "every key and value after the restore"
for i in 1 3; do
    got=$(listing "$(fs_mnt "$i")")
    [ "$got" = "$want_files" ] ||
        cl_fail "files through node $i's mount differ from the backup's: $(diff <(printf '%s\n' "$want_files") <(printf '%s\n' "$got") | head -20)"
done
cmp -s "$CL_DIR/big.src" "$(fs_mnt 2)/tree/a/big.bin" || cl_fail "the big file's content after the restore"
hs put after-restore 1 >/dev/null || cl_fail "put on the restored cluster"
cl_expect_eq "$(hs get after-restore)" 1 "a write on the restored cluster"

cl_log "a new cluster from the backup taken under writers"
restore_cluster "$CL_DIR/b2.hsb"
n=$(hs ls w/ | wc -l)
want=$(seq 1 "$n" | sed 's/^/w\/k/' | LC_ALL=C sort)
cl_expect_eq "$(hs ls w/ | LC_ALL=C sort)" "$want" "the CLI writer's keys are a prefix of its writes"
[ "$n" -ge "$acked_cli" ] || cl_fail "the backup has $n of the CLI writer's keys, $acked_cli were acknowledged before it"
[ "$n" -lt "$total_cli" ] || cl_fail "the backup has $n of the CLI writer's keys, all $total_cli it ever wrote"
m=$(wc -l <"$(fs_mnt 1)/tree/log.txt")
cl_expect_eq "$(cat "$(fs_mnt 1)/tree/log.txt")" "$(seq 1 "$m" | sed 's/^/line /')" \
    "the appended file is a prefix of the appends"
[ "$m" -ge "$acked_log" ] || cl_fail "the backup has $m appended lines, $acked_log were acknowledged before it"
cl_log "restored $n of $total_cli puts and $m appended lines ($acked_cli and $acked_log acknowledged before the backup)"
got=$(listing "$M1" | grep -v -e '^\./w' -e '^\./tree/log.txt' -e '^\./tree ')
cl_expect_eq "$got" "$(printf '%s\n' "$want_files" | grep -v '^\./tree ')" "the files of the first phase"
cl_pass
