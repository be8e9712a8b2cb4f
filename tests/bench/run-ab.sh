#!/usr/bin/env bash
# run-ab.sh — interleaved A/B runs of `hstore bench` for two hstore binaries
# on the same machine, for a machine that others load too: A, B, A, B, ...
# each on a fresh 3-node cluster (`hstore up --no-mount`, data under
# $AB_PARENT, default /var/tmp), then the median of each side.
#
#   tests/bench/run-ab.sh BIN_A BIN_B [ROUNDS] [CLIENTS] [OPS] [WORKLOAD]
#
# Defaults: 5 rounds, 64 clients, 40000 ops, put (16-byte keys, 256-byte
# values, as `make bench`).  Prints one line per run and the medians of the
# throughput and of the CPU time the three node processes spent per 1000
# operations (user + system, from /proc/PID/stat, sampled just before and
# after the bench): on a machine others load, throughput swings with their
# load, CPU time per operation much less.  AB_UP_ARGS adds options to
# `hstore up` (for example "--snapshot-threshold 8M" to measure the tail
# latency with snapshots during the run).
set -u
A=${1:?usage: run-ab.sh BIN_A BIN_B [ROUNDS] [CLIENTS] [OPS] [WORKLOAD]}
B=${2:?usage: run-ab.sh BIN_A BIN_B [ROUNDS] [CLIENTS] [OPS] [WORKLOAD]}
ROUNDS=${3:-5}
CLIENTS=${4:-64}
OPS=${5:-40000}
WORKLOAD=${6:-put}
PARENT=${AB_PARENT:-/var/tmp}
PORT=${AB_PORT:-7600}
WORK=$(mktemp -d "$PARENT/hstore-ab.XXXXXX") || exit 1
trap 'for b in "$A" "$B"; do "$b" down --dir "$WORK/c" --wait 5 >/dev/null 2>&1; done; rm -rf "$WORK"' EXIT

node_ticks() {   # CPU clock ticks (user + system) of the nodes in DIR/pids
    local t=0 id pid f
    while read -r id pid; do
        f=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) && t=$((t + f))
    done <"$WORK/c/pids"
    echo "$t"
}

run_one() {   # run_one BIN: prints ops_per_sec p50 p99 errors node_cpu_ms_per_1000_ops
    local bin=$1 out t0 t1
    rm -rf "$WORK/c"
    local -a up_args=()
    read -ra up_args <<<"${AB_UP_ARGS:-}"
    timeout 60 "$bin" up -n 3 --dir "$WORK/c" --base-port "$PORT" --no-mount --wait 30 \
        "${up_args[@]}" >/dev/null 2>&1 || { echo "up failed" >&2; return 1; }
    t0=$(node_ticks)
    out=$(HSTORE_SECRET_FILE= timeout 300 "$bin" bench --dir "$WORK/c" --clients "$CLIENTS" \
        --ops "$OPS" --key-size 16 --value-size 256 --json "$WORKLOAD" 2>/dev/null)
    t1=$(node_ticks)
    timeout 30 "$bin" down --dir "$WORK/c" --wait 10 >/dev/null 2>&1
    python3 -c 'import json,sys,os; d=json.loads(sys.argv[1]); hz=os.sysconf("SC_CLK_TCK"); print(d["ops_per_sec"], d["p50_ms"], d["p99_ms"], d["errors"], round((int(sys.argv[3])-int(sys.argv[2]))*1000/hz*1000/int(sys.argv[4]), 2))' "$out" "$t0" "$t1" "$OPS"
}

declare -a ra=() rb=()
for r in $(seq 1 "$ROUNDS"); do
    for side in A B; do
        bin=$A; [ $side = B ] && bin=$B
        res=$(run_one "$bin") || exit 1
        echo "round $r $side: ops/s p50_ms p99_ms errors node_cpu_ms/1000ops = $res"
        if [ $side = A ]; then ra+=("$res"); else rb+=("$res"); fi
    done
done
python3 - "$(printf '%s\n' "${ra[@]}")" "$(printf '%s\n' "${rb[@]}")" <<'EOF'
import statistics, sys
a = [l.split() for l in sys.argv[1].splitlines()]
b = [l.split() for l in sys.argv[2].splitlines()]
for name, col, unit in (("throughput", 0, "ops/s"), ("p99", 2, "ms"), ("node CPU", 4, "ms/1000 ops")):
    ma = statistics.median(float(r[col]) for r in a)
    mb = statistics.median(float(r[col]) for r in b)
    print(f"{name}: median A {ma:.2f} {unit}, median B {mb:.2f} {unit}, B/A {mb / ma:.3f} ({(mb / ma - 1) * 100:+.1f}%)")
EOF
