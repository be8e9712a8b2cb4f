#!/usr/bin/env bash
# run-ab-fs.sh — interleaved A/B runs of the mount's small-file workloads for
# two hstore binaries: A, B, A, B, ... each on a fresh 3-node cluster (`hstore
# up` with mounts, data under $AB_PARENT, default /var/tmp), each running
# build/bench_fs through the leader's and a follower's mounts:
#
#   smallfiles  1,000 files of 256 B written on the leader
#   cat         4,000 open+read+close of them on the follower
#   lsl         20 passes of readdir + lstat of every entry on the follower
#   copy        the 1,000 files copied within the leader's, then the
#               follower's mount
#
#   tests/bench/run-ab-fs.sh BIN_A BIN_B [ROUNDS]     (default 2 rounds)
#
# Prints one bench_fs line per step, prefixed with A or B and the step.
set -u
A=${1:?usage: run-ab-fs.sh BIN_A BIN_B [ROUNDS]}
B=${2:?usage: run-ab-fs.sh BIN_A BIN_B [ROUNDS]}
ROUNDS=${3:-2}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_FS=$REPO/build/bench_fs
[ -x "$BENCH_FS" ] || make -C "$REPO" build/bench_fs >/dev/null || exit 1
PARENT=${AB_PARENT:-/var/tmp}
PORT=${AB_PORT:-7650}
WORK=$(mktemp -d "$PARENT/hstore-abfs.XXXXXX") || exit 1
trap 'for b in "$A" "$B"; do "$b" down --dir "$WORK/c" --wait 5 >/dev/null 2>&1; done; rm -rf "$WORK"' EXIT

one() { # LABEL BIN
    local label=$1 bin=$2 d=$WORK/c st lead fol m
    "$bin" down --dir "$d" --wait 5 >/dev/null 2>&1
    rm -rf "$d"
    "$bin" up -n 3 --dir "$d" --base-port "$PORT" --mount-root "$d/mnt" --wait 30 >/dev/null 2>&1 ||
        { echo "$label: hstore up failed" >&2; return 1; }
    sleep 2
    st=$("$bin" status --dir "$d" 2>/dev/null)
    lead=$(echo "$st" | awk '$3 == "leader" { print $1 }')
    [ -n "$lead" ] || { echo "$label: no leader" >&2; return 1; }
    fol=$((lead % 3 + 1))
    m=$d/mnt
    mkdir -p "$m/$lead/sf1"
    "$BENCH_FS" smallfiles "$m/$lead/sf1" --files 1000 | sed "s/^/$label smallfiles-leader /"
    "$BENCH_FS" cat "$m/$fol/sf1" --files 1000 --reads 4000 | sed "s/^/$label cat-follower /"
    "$BENCH_FS" lsl "$m/$fol/sf1" --reps 20 | sed "s/^/$label lsl-follower /"
    "$BENCH_FS" copy "$m/$lead/sf1" "$m/$lead/cpl" --files 1000 | sed "s/^/$label copy-leader /"
    "$BENCH_FS" copy "$m/$fol/sf1" "$m/$fol/cpf" --files 1000 | sed "s/^/$label copy-follower /"
    "$bin" down --dir "$d" --wait 10 >/dev/null 2>&1
}
for r in $(seq 1 "$ROUNDS"); do
    one A "$A" || exit 1
    one B "$B" || exit 1
done
