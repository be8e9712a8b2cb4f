#!/usr/bin/env bash
# Runs cmocka test binaries one after another and prints one closing line:
#   "<label>: N passed, N failed"
# A binary that crashes or exits non-zero without cmocka's summary counts as one failure.
set -u
label=$1; shift
passed=0; failed=0; bad=()
for bin in "$@"; do
  echo "=== $bin"
  out=$(mktemp)
  start=$(date +%s%N)
  "$bin" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  secs=$(( ($(date +%s%N) - start) / 1000000 ))
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
  rm -f "$out"
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); fi
  if [ "$rc" -ne 0 ]; then bad+=("$bin (exit $rc)"); fi
  echo "--- $bin: ${secs} ms"
done
for b in "${bad[@]+"${bad[@]}"}"; do echo "FAILED: $b"; done
echo "$label: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#bad[@]} -eq 0 ]
