#!/usr/bin/env bash
# kill -9 of every node at once, then a restart: every file whose close()
# returned 0 before the crash is there with its content, read through every
# node (durable = in a majority's fsync'ed log before close() returns).
# Also checks that a restarted node mounts over the dead mount its killed
# incarnation left behind.
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
mkdir "$(fs_mnt 1)/w" || cl_fail "mkdir"

cl_log "writers on nodes 1, 2, 3 create files; close() results recorded"
writer() {
    local i=$1 k=0 m
    m=$(fs_mnt "$i")
    while :; do
        k=$((k + 1))
        # A whole-file write (one PUT at close) and an append (write-through).
        # The file is written by tee, not by a shell redirection: bash does
        # not check close() for a builtin's redirection, and close() is where
        # the PUT happens and reports its error.
        if printf 'file %s %s\n' "$i" "$k" | tee "$m/w/f-$i-$k" >/dev/null 2>&1; then
            echo "f-$i-$k" >>"$CL_DIR/ok.$i"
        fi
        if echo "a $i $k" >>"$m/w/append-$i" 2>/dev/null; then
            echo "$k" >>"$CL_DIR/app.$i"
        fi
    done
}
wpids=()
for i in 1 2 3; do
    : >"$CL_DIR/ok.$i"
    : >"$CL_DIR/app.$i"
    writer "$i" 2>/dev/null &
    wpids+=($!)
    CL_ALL_PIDS+=($!)
done
sleep "${FS_CRASH_SECS:-4}"
end=$(( $(cl_now_ms) + 60000 ))
while [ "$(cat "$CL_DIR"/ok.* | wc -l)" -eq 0 ] && [ "$(cl_now_ms)" -lt "$end" ]; do sleep 0.2; done
cl_log "kill -9 of all three nodes"
for i in 1 2 3; do kill -9 "${CL_PID[$i]}" 2>/dev/null; done
for i in 1 2 3; do cl_kill "$i"; done
sleep 0.5
for p in "${wpids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
total=$(cat "$CL_DIR"/ok.* | wc -l)
[ "$total" -gt 0 ] || cl_fail "no write completed before the crash"
cl_log "$total files were closed successfully before the crash"

for i in 1 2 3; do cl_restart "$i"; done
fs_wait_mounts 60
for i in 1 2 3; do
    m=$(fs_mnt "$i")
    missing=0
    while read -r f; do
        set -- $(echo "$f" | tr '-' ' ')
        got=$(cat "$m/w/$f" 2>/dev/null)
        [ "$got" = "file $2 $3" ] || { missing=$((missing + 1)); echo "lost or wrong: $f: '$got'" >&2; }
    done < <(cat "$CL_DIR"/ok.*)
    [ "$missing" = 0 ] || cl_fail "$missing acknowledged files lost or wrong on node $i"
    for w in 1 2 3; do
        # Every acknowledged append is there, once, in order.  (An append
        # whose outcome was unknown at the crash may be there as well.)
        while read -r k; do
            grep -qx "a $w $k" "$m/w/append-$w" || cl_fail "acknowledged append $w/$k lost (node $i)"
        done <"$CL_DIR/app.$w"
        dup=$(sort "$m/w/append-$w" | uniq -d | wc -l)
        cl_expect_eq "$dup" 0 "duplicated appends of writer $w (node $i)"
    done
done
cl_pass
