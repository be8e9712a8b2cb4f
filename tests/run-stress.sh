#!/usr/bin/env bash
# Runs the whole `make test` N times in a row (default 3) while two busy loops
# keep both cores of a small machine loaded, so that no test can depend on how
# fast the machine is. Prints each run's time and result, then one closing line:
#   "stress: N of N runs passed"
# Each run's full output is kept in build/stress/run-K.log.
#   STRESS_LOAD  number of busy loops (default 2)
set -u
cd "$(dirname "$0")/.."
runs=${1:-3}
load=${STRESS_LOAD:-2}
case "$runs" in ''|*[!0-9]*) echo "stress: bad run count '$runs'" >&2; exit 2 ;; esac
mkdir -p build/stress

pids=()
stop_load() {
    for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]+"${pids[@]}"}"; do wait "$p" 2>/dev/null; done
    pids=()
}
trap stop_load EXIT
trap 'stop_load; exit 130' INT TERM
for _ in $(seq 1 "$load"); do
    yes >/dev/null &
    pids+=($!)
done
echo "stress: $runs runs of make test, load: $load busy loops (pids ${pids[*]-none})"

ok=0; lines=()
for r in $(seq 1 "$runs"); do
    log=build/stress/run-$r.log
    echo "=== stress run $r of $runs (log: $log)"
    start=$(date +%s%N)
    make --no-print-directory test >"$log" 2>&1
    rc=$?
    secs=$(( ($(date +%s%N) - start) / 1000000000 ))
    summary=$(grep -E '^(unit|unit \(ASan\+UBSan\)|cluster): [0-9]+ passed' "$log" | paste -sd ';' -)
    if [ "$rc" -eq 0 ]; then res=PASS; ok=$((ok + 1)); else res="FAIL (exit $rc)"; fi
    line=$(printf 'run %d: %-16s %5ds  %s' "$r" "$res" "$secs" "$summary")
    echo "--- $line"
    if [ "$rc" -ne 0 ]; then
        grep -E '^\[  FAILED  \]|^FAILED:|FAIL \(exit|^--- .*FAIL' "$log" | sort -u | sed 's/^/    /'
    fi
    lines+=("$line")
done
stop_load
echo
for l in "${lines[@]}"; do echo "$l"; done
echo "stress: $ok of $runs runs passed"
[ "$ok" -eq "$runs" ]
