#!/usr/bin/env bash
# An open file lives until its last close, on every node, whoever renames a
# new file over its name (the way editors and rsync save).  Node 1 writes a
# temporary file and renames it over `f` 300 times while `cat` loops on every
# node (node 1 included) read `f`: no read fails (no ENOENT, no ESTALE) and
# every read is one whole version.  Then the replaced inodes are freed once
# nobody holds them, a descriptor kept open on node 2 reads the old content
# after the rename, and a crash of node 2 while it holds a replaced inode does
# not leak it: the restarted node reports anew and the inode is freed.
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2) M3=$(fs_mnt 3)
R=${FS_RENAME_OVER:-300}
LINES=256

# used_inodes MOUNT: inodes in use in the store (orphans included).
used_inodes() { stat -f -c '%c %d' "$1" | awk '{print $1 - $2}'; }
# wait_used MOUNT N SECONDS: until the store holds N inodes.
wait_used() {
    local end=$(($(cl_now_ms) + $3 * 1000)) u
    while :; do
        u=$(used_inodes "$1")
        [ "$u" = "$2" ] && return 0
        [ "$(cl_now_ms)" -lt "$end" ] || { cl_log "inodes in use: $u, expected $2"; return 1; }
        sleep 0.1
    done
}
version() { yes "version $1 $(printf '%0100d' "$1")" | head -n "$LINES"; }

mkdir "$M1/d" || cl_fail "mkdir"
version 0 >"$M1/d/f" || cl_fail "first version"
base=$(used_inodes "$M1")

stop=$CL_DIR/stop
# reader I: cat loop on node I; writes "reads errors" to $CL_DIR/reader.I
reader() {
    local i=$1 m n=0 bad=0 out rc
    m=$(fs_mnt "$i")
    while [ ! -e "$stop" ]; do
        out=$(cat "$m/d/f" 2>"$CL_DIR/reader.$i.err.tmp")
        rc=$?
        n=$((n + 1))
        if [ "$rc" != 0 ]; then
            bad=$((bad + 1))
            echo "node $i read $n: cat exit $rc: $(cat "$CL_DIR/reader.$i.err.tmp")" >>"$CL_DIR/reader.$i.err"
        elif [ "$(printf '%s\n' "$out" | wc -l)" != "$LINES" ] ||
            [ "$(printf '%s\n' "$out" | sort -u | wc -l)" != 1 ]; then
            bad=$((bad + 1))
            echo "node $i read $n: partial or mixed content ($(printf '%s\n' "$out" | wc -l) lines)" \
                >>"$CL_DIR/reader.$i.err"
        fi
    done
    echo "$n $bad" >"$CL_DIR/reader.$i"
}
pids=()
for i in 1 2 3; do
    reader "$i" &
    pids+=($!)
    CL_ALL_PIDS+=($!)
done

cl_log "node 1 renames a new version over d/f $R times; cat loops on nodes 1, 2 and 3"
for k in $(seq 1 "$R"); do
    version "$k" >"$M1/d/.f.tmp" || { touch "$stop"; cl_fail "writing version $k"; }
    mv "$M1/d/.f.tmp" "$M1/d/f" || { touch "$stop"; cl_fail "rename $k"; }
done
touch "$stop"
for p in "${pids[@]}"; do wait "$p"; done
total_bad=0
for i in 1 2 3; do
    read -r n bad <"$CL_DIR/reader.$i"
    cl_log "node $i: $n reads, $bad failed"
    [ -s "$CL_DIR/reader.$i.err" ] && head -5 "$CL_DIR/reader.$i.err" >&2
    [ "$n" -gt 0 ] || cl_fail "reader on node $i did not run"
    total_bad=$((total_bad + bad))
done
[ "$total_bad" = 0 ] || cl_fail "$total_bad reads failed or saw partial content"
cl_expect_eq "$(head -n 1 "$M3/d/f" | cut -d' ' -f2)" "$R" "version after the renames"
wait_used "$M1" "$base" 20 || cl_fail "replaced inodes were not freed"

cl_log "a descriptor open on node 2 reads the old content after node 1 renames over it"
version 1000 >"$M1/d/g" || cl_fail "g"
base=$(used_inodes "$M1")
exec 7<"$M2/d/g" || cl_fail "open g on node 2"
version 1001 >"$M1/d/.g.tmp" && mv "$M1/d/.g.tmp" "$M1/d/g" || cl_fail "rename over g"
rm -f "$M3/d/f" || cl_fail "rm f"
wait_used "$M1" "$base" 20 || cl_fail "the replaced g is not kept alive (or f not freed)"
sleep 1   # a few report rounds: the inode must stay while node 2 holds it
cl_expect_eq "$(cat <&7 | sort -u)" "$(version 1000 | sort -u)" "old content through the open descriptor"
cl_expect_eq "$(used_inodes "$M1")" "$base" "inodes in use while node 2 holds the old g"

cl_log "node 2 crashes while holding it; after its restart the inode is freed"
cl_kill 2
sleep 1
cl_expect_eq "$(used_inodes "$M1")" "$base" "inodes in use while node 2 is down"
exec 7<&-
cl_restart 2
fs_wait_mounts 20
wait_used "$M1" "$((base - 1))" 20 || cl_fail "the inode held by the crashed node was not freed"
cl_expect_eq "$(head -n 1 "$M2/d/g" | cut -d' ' -f2)" 1001 "g after the restart"
cl_pass
