#!/usr/bin/env bash
# Renaming a directory that holds 1,000 files is one atomic step: while node
# 3 moves it back and forth, node 2 lists it over and over and sees either
# the whole directory (1,000 entries) or no directory at that name — never a
# part of it, never both names at once in one listing of the parent.
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2) M3=$(fs_mnt 3)
N=${FS_RENAME_FILES:-1000}

cl_log "create $N files in $M1/p/d1 (8 parallel writers)"
mkdir -p "$M1/p/d1" || cl_fail "mkdir"
seq 1 "$N" | xargs -P 8 -n 50 sh -c 'for i; do echo "$i" > "$0/f$i" || exit 1; done' "$M1/p/d1" ||
    cl_fail "creating the files"
cl_expect_eq "$(ls "$M2/p/d1" | wc -l)" "$N" "files listed on node 2"

stop=$CL_DIR/stop
observer() {
    local n=0 bad=0 l c1 c2
    while [ ! -e "$stop" ]; do
        l=$(ls "$M2/p")
        case "$l" in
        d1 | d2) ;;
        *) bad=$((bad + 1)); echo "parent listing: $(echo $l)" >&2 ;;
        esac
        for d in d1 d2; do
            c1=$(ls "$M2/p/$d" 2>/dev/null | wc -l)
            if [ "$c1" != 0 ] && [ "$c1" != "$N" ]; then
                bad=$((bad + 1))
                echo "listing of $d had $c1 entries" >&2
            fi
        done
        n=$((n + 1))
        [ "$n" = 1 ] && : >"$CL_DIR/obs.started"
    done
    echo "$n $bad" >"$CL_DIR/obs"
}
observer &
obs=$!
CL_ALL_PIDS+=($obs)
end=$(( $(cl_now_ms) + 60000 ))
while [ ! -e "$CL_DIR/obs.started" ] && [ "$(cl_now_ms)" -lt "$end" ]; do sleep 0.05; done
R=${FS_RENAMES:-20}
for k in $(seq 1 "$R"); do
    mv "$M3/p/d1" "$M3/p/d2" || { touch "$stop"; cl_fail "rename $k d1 -> d2"; }
    sleep 0.05
    mv "$M3/p/d2" "$M3/p/d1" || { touch "$stop"; cl_fail "rename $k d2 -> d1"; }
    sleep 0.05
done
touch "$stop"
wait "$obs"
read -r n bad <"$CL_DIR/obs"
cl_log "observer on node 2: $n rounds while node 3 renamed the directory $((2 * R)) times"
[ "$bad" = 0 ] || cl_fail "$bad observations of a partial or doubled directory"
[ "$n" -gt 0 ] || cl_fail "observer did not run"
cl_expect_eq "$(cat "$M1/p/d1/f$N")" "$N" "a file's content after the renames"
cl_expect_eq "$(ls "$M1/p/d1" | wc -l)" "$N" "files after the renames"
cl_pass
