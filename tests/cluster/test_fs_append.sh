#!/usr/bin/env bash
# Three writers append numbered lines to one file at the same time, each
# through a different node's mount (every write on an O_APPEND descriptor is
# an APPEND in the state machine, whatever offset the kernel sends): every
# line appears exactly once, each writer's lines in order, and all three
# nodes read the same file.
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
N=${FS_APPEND_LINES:-150}
[ "$CL_MODE" = long ] && N=600
: >"$(fs_mnt 1)/log" || cl_fail "create log"

cl_log "3 writers x $N lines, concurrently through nodes 1, 2, 3"
pids=()
for w in 1 2 3; do
    (
        m=$(fs_mnt "$w")
        for i in $(seq 1 "$N"); do
            echo "w$w $i" >>"$m/log" || { echo "writer $w: append $i failed" >&2; exit 1; }
        done
    ) &
    pids+=($!)
    CL_ALL_PIDS+=($!)
done
for p in "${pids[@]}"; do wait "$p" || cl_fail "a writer failed"; done

for i in 1 2 3; do cp "$(fs_mnt "$i")/log" "$CL_DIR/log.$i" || cl_fail "read log on node $i"; done
cmp -s "$CL_DIR/log.1" "$CL_DIR/log.2" || cl_fail "log differs between nodes 1 and 2"
cmp -s "$CL_DIR/log.1" "$CL_DIR/log.3" || cl_fail "log differs between nodes 1 and 3"
cl_expect_eq "$(wc -l <"$CL_DIR/log.1")" $((3 * N)) "number of lines"
cl_expect_eq "$(sort "$CL_DIR/log.1" | uniq -d | wc -l)" 0 "duplicated lines"
for w in 1 2 3; do
    grep "^w$w " "$CL_DIR/log.1" | awk '{print $2}' >"$CL_DIR/seq.$w"
    seq 1 "$N" | cmp -s - "$CL_DIR/seq.$w" || cl_fail "writer $w's lines missing or out of order"
done
grep -Ev '^w[123] [0-9]+$' "$CL_DIR/log.1" | head -3 | grep -q . && cl_fail "torn or foreign line in the log"
cl_log "interleaving: $(awk '{print $1}' "$CL_DIR/log.1" | uniq | wc -l) runs of one writer"
cl_pass
