#!/usr/bin/env bash
# Freshness and whole-file atomicity across mounts.
#  - A loop writes increasing numbers to a file on node 1 and reads it on
#    node 2 (then node 3) right after each write returns: the read never
#    shows an older number (linearizable reads, no kernel cache).
#  - While node 1 rewrites a file with `printf ... > f` in a loop, readers on
#    nodes 2 and 3 never see it partial (O_TRUNC empties the file at open,
#    as on a local filesystem; the sequential writes from offset 0 that
#    follow are one PUT at close, so the new content appears all at once).
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2) M3=$(fs_mnt 3)
ROUNDS=${FS_FRESH_ROUNDS:-100}
[ "$CL_MODE" = long ] && ROUNDS=500

cl_log "freshness: $ROUNDS writes on node 1, each read at once on node 2 or 3"
for i in $(seq 1 "$ROUNDS"); do
    echo "$i" >"$M1/counter" || cl_fail "write $i on node 1"
    r=$M2
    [ $((i % 2)) = 0 ] && r=$M3
    got=$(cat "$r/counter") || cl_fail "read after write $i"
    [ "$got" = "$i" ] || cl_fail "read after write $i returned '$got' (stale)"
done

cl_log "freshness of metadata: a file created on node 3 is seen by node 1 at once"
for i in $(seq 1 20); do
    echo "$i" >"$M3/new$i" || cl_fail "create new$i on node 3"
    [ -e "$M1/new$i" ] || cl_fail "new$i not seen on node 1 right after its creation"
    rm "$M1/new$i" || cl_fail "rm new$i on node 1"
    [ -e "$M2/new$i" ] && cl_fail "new$i still seen on node 2 after rm on node 1"
done

cl_log "whole-file content appears at once: rewrites on node 1, readers on nodes 2 and 3"
PAD=$(head -c 6000 /dev/zero | tr '\0' 'x')
record() { printf 'BEGIN %06d %s END %06d\n' "$1" "$PAD" "$1"; }
want_len=$(record 1 | wc -c)
record 0 >"$M1/atomic" || cl_fail "first write of atomic"
stop=$CL_DIR/stop
reader() {
    local m=$1 out=$2 n=0 bad=0 c
    while [ ! -e "$stop" ]; do
        c=$(cat "$m/atomic" 2>&1; echo .)
        c=${c%.}
        n=$((n + 1))
        [ "$n" = 1 ] && : >"$out.started"
        [ -z "$c" ] && continue   # between the open's truncation and the close
        if [ "${#c}" != "$want_len" ] || [ "${c:0:6}" != "BEGIN " ] ||
            [ "${c:6:6}" != "${c:$((want_len - 7)):6}" ]; then
            bad=$((bad + 1))
            printf 'bad read (%d bytes): %.40s\n' "${#c}" "$c" >&2
        fi
    done
    echo "$n $bad" >"$out"
}
reader "$M2" "$CL_DIR/r2" &
r2=$!
reader "$M3" "$CL_DIR/r3" &
r3=$!
CL_ALL_PIDS+=($r2 $r3)
end=$(( $(cl_now_ms) + 60000 ))
while { [ ! -e "$CL_DIR/r2.started" ] || [ ! -e "$CL_DIR/r3.started" ]; } && [ "$(cl_now_ms)" -lt "$end" ]; do
    sleep 0.05
done
W=${FS_ATOMIC_WRITES:-60}
for k in $(seq 1 "$W"); do
    record "$k" >"$M1/atomic" || { touch "$stop"; cl_fail "rewrite $k on node 1"; }
done
touch "$stop"
wait "$r2" "$r3"
read -r n2 b2 <"$CL_DIR/r2"
read -r n3 b3 <"$CL_DIR/r3"
cl_log "readers: node 2 $n2 reads, node 3 $n3 reads, while node 1 rewrote $W times"
[ "$b2" = 0 ] && [ "$b3" = 0 ] || cl_fail "partial content seen: node 2 $b2, node 3 $b3"
[ "$n2" -gt 0 ] && [ "$n3" -gt 0 ] || cl_fail "readers did not run"
cl_expect_eq "$(cat "$M2/atomic")" "$(record "$W")" "final content on node 2"
cl_pass
