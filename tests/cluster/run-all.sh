#!/usr/bin/env bash
# Runs every executable tests/cluster/test_*.sh, each under `timeout`, and
# prints each test's name, result and seconds, then one closing line:
#   "cluster: N passed, N failed"
# Exits non-zero if any test failed.  A test that exits 77 was skipped (it
# could not run here, e.g. no browser); it is listed as SKIP, and the
# closing line then also counts the skipped, loudly.  HSTORE_TEST_MODE=long runs every test
# CL_ROUNDS times (default 3) instead of once, and also runs the long_*.sh
# scenarios, which are too heavy for this machine's make test (they are
# targets the product does not meet everywhere yet, or long soaks).
#   CL_TEST_TIMEOUT  seconds allowed per test run (default 300)
#   CL_ONLY          run only tests whose name contains this string
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
limit=${CL_TEST_TIMEOUT:-300}
rounds=1
[ "${HSTORE_TEST_MODE:-normal}" = long ] && rounds=${CL_ROUNDS:-3}
export HSTORE=${HSTORE:-$repo/bin/hstore}
if [ ! -x "$HSTORE" ]; then
    echo "cluster: $HSTORE is not built (run make)" >&2
    echo "cluster: 0 passed, 1 failed"
    exit 1
fi

passed=0; failed=0; skipped=0; results=()
scripts=("$here"/test_*.sh)
[ "${HSTORE_TEST_MODE:-normal}" = long ] && scripts+=("$here"/long_*.sh)
for t in "${scripts[@]}"; do
    [ -x "$t" ] || continue
    name=$(basename "$t" .sh)
    case "$name" in *"${CL_ONLY:-}"*) ;; *) continue ;; esac
    for r in $(seq 1 "$rounds"); do
        label=$name; [ "$rounds" -gt 1 ] && label="$name (round $r)"
        echo "=== $label"
        start=$(date +%s%N)
        timeout -k 10 "$limit" "$t"
        rc=$?
        secs=$(awk -v ns=$(( $(date +%s%N) - start )) 'BEGIN { printf "%.1f", ns / 1e9 }')
        if [ "$rc" -eq 0 ]; then
            passed=$((passed + 1)); res=PASS
        elif [ "$rc" -eq 77 ]; then
            skipped=$((skipped + 1)); res="SKIP (could not run here: see its output)"
        else
            failed=$((failed + 1)); res="FAIL (exit $rc$([ "$rc" -eq 124 ] && echo ": timed out after ${limit}s"))"
        fi
        line=$(printf '%-36s %-36s %7ss' "$label" "$res" "$secs")
        echo "--- $line"
        results+=("$line")
    done
done
echo
for l in "${results[@]+"${results[@]}"}"; do echo "$l"; done
if [ "$skipped" -gt 0 ]; then
    echo "cluster: $passed passed, $failed failed, $skipped SKIPPED (not run: see the SKIP lines)"
else
    echo "cluster: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
