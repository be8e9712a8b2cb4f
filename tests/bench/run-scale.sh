#!/usr/bin/env bash
# run-scale.sh — `make bench-scale`: how hstore's cost grows.
#
#   1. put throughput at 64 and 256 clients on 3 nodes, then on 5 nodes (each
#      a fresh cluster without mounts);
#   2. memory: a fresh 3-node cluster takes SCALE_KEYS (default 1,000,000)
#      puts of distinct 16-byte keys with 256-byte values from 64 clients;
#      then every node's resident memory (VmRSS, and its peak VmHWM) is set
#      against the raw data (keys + values), with the terms seen before and
#      after (a term change under load means an election) and the worst
#      latency.
# Data lives in a temporary directory on the real disk (under build/ unless
# BENCH_DIR says otherwise); every cluster is stopped and removed at the end,
# also on failure or interrupt.  Exits non-zero if a step failed.
#
# Environment: SCALE_KEYS (keys of the memory run), SCALE_OPS (ops of each
# throughput run, default 100000), BENCH_DIR, BENCH_PORT (first port, default
# a free one from 22000 on).
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HSTORE=$REPO/bin/hstore
PARENT=${BENCH_DIR:-$REPO/build}
KEYS=${SCALE_KEYS:-1000000}
OPS=${SCALE_OPS:-100000}
FAILED=0
DIRS=()

die() { echo "bench-scale: $*" >&2; exit 1; }
[ -x "$HSTORE" ] || die "$HSTORE is missing: run make first"
case $KEYS$OPS in *[!0-9]*) die "SCALE_KEYS and SCALE_OPS must be numbers" ;; esac
mkdir -p "$PARENT" || die "cannot create $PARENT"

cleanup() {
    local rc=$? d id pid
    trap - EXIT INT TERM
    for d in "${DIRS[@]}"; do
        [ -f "$d/pids" ] && cp "$d/pids" "$d/pids.keep"
        timeout 30 "$HSTORE" down --dir "$d" --wait 10 >/dev/null 2>&1
        [ -f "$d/pids.keep" ] && while read -r id pid; do
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "hstore node --id $id " &&
                kill -9 "$pid" 2>/dev/null
        done <"$d/pids.keep"
        rm -rf "$d"
    done
    [ "$rc" -eq 0 ] && [ "$FAILED" -ne 0 ] && rc=1
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench-scale: interrupted" >&2; FAILED=1; exit 130' INT TERM

port_used() { ss -Htanl 2>/dev/null | awk '{print $4}' | grep -q ":$1\$"; }
pick_port() {
    local p k busy
    for p in $(seq 22000 20 23000); do
        busy=0
        for k in $(seq 0 9); do port_used $((p + k)) && { busy=1; break; }; done
        [ $busy -eq 0 ] && { echo "$p"; return 0; }
    done
    return 1
}

# start N: a fresh cluster of N nodes; sets DIR.
start() {
    local port
    port=${BENCH_PORT:-$(pick_port)} || die "no free ports"
    DIR=$(mktemp -d "$PARENT/bench-scale.XXXXXX") || die "cannot create a directory under $PARENT"
    DIRS+=("$DIR")
    timeout 60 "$HSTORE" up -n "$1" --dir "$DIR" --base-port "$port" --no-mount --wait 30 \
        >"$DIR/up.out" 2>&1 || { cat "$DIR/up.out" >&2; die "hstore up -n $1 failed"; }
}
stop() { timeout 30 "$HSTORE" down --dir "$DIR" --wait 10 >/dev/null 2>&1; }

json_get() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
terms() { timeout 10 "$HSTORE" status --dir "$DIR" 2>/dev/null | sed -n 's/.*term=\([0-9]*\).*/\1/p' | sort -n | tail -1; }

ROWS=()
bench() {   # bench LABEL CLIENTS OPS [EXTRA...]
    local label=$1 c=$2 n=$3 out
    shift 3
    echo "bench-scale: $label" >&2
    out=$(timeout 600 "$HSTORE" bench --dir "$DIR" --clients "$c" --ops "$n" --key-size 16 \
        --value-size 256 --json "$@" put) || { echo "bench-scale: $label failed" >&2; FAILED=1; }
    LAST_TPUT=$(json_get "$out" ops_per_sec)
    LAST_MAX=$(json_get "$out" max_ms)
    LAST_ERR=$(json_get "$out" errors)
    [ "${LAST_ERR:-1}" = 0 ] || FAILED=1
    ROWS+=("$(printf '%-34s %9s %12s %9s %9s %7s' "$label" "$n" "${LAST_TPUT:-FAILED} ops/s" \
        "$(json_get "$out" p50_ms)" "$(json_get "$out" p99_ms)" "${LAST_ERR:-?}")")
}

for nodes in 3 5; do
    start "$nodes"
    bench "put, $nodes nodes, 64 clients" 64 "$OPS"
    eval "T${nodes}_64=\${LAST_TPUT:-0}"
    bench "put, $nodes nodes, 256 clients" 256 "$OPS"
    eval "T${nodes}_256=\${LAST_TPUT:-0}"
    stop
done

# ---- memory -----------------------------------------------------------------------
start 3
t0=$(terms)
bench "put $KEYS distinct keys, 64 clients" 64 "$KEYS" --keys "$KEYS"
t1=$(terms)
sleep 2      # let a snapshot that just started finish
MEM=()
while read -r id pid; do
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
    hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
    MEM+=("node $id: RSS $((rss / 1024)) MiB, peak $((hwm / 1024)) MiB")
    RSS_MAX=$(( ${RSS_MAX:-0} > rss ? ${RSS_MAX:-0} : rss ))
done <"$DIR/pids"
RAW_KIB=$(( KEYS * (16 + 256) / 1024 ))

echo
printf '%-34s %9s %12s %9s %9s %7s\n' workload ops throughput "p50 ms" "p99 ms" errors
printf '%s\n' "${ROWS[@]}"
echo
awk -v a="$T5_64" -v b="$T3_64" 'BEGIN { if (b > 0) printf "5 nodes / 3 nodes at 64 clients:  %.0f%%\n", 100 * a / b }'
awk -v a="$T3_256" -v b="$T3_64" 'BEGIN { if (b > 0) printf "3 nodes, 256 / 64 clients:        %.0f%%\n", 100 * a / b }'
echo "memory after $KEYS keys (raw keys + values: $((RAW_KIB / 1024)) MiB):"
printf '  %s\n' "${MEM[@]}"
awk -v r="$RSS_MAX" -v d="$RAW_KIB" 'BEGIN { printf "  largest RSS / raw data: %.2fx\n", r / d }'
echo "  term before the load ${t0:-?}, after ${t1:-?}; worst latency ${LAST_MAX:-?} ms"
