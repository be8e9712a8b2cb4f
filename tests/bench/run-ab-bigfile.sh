#!/usr/bin/env bash
# run-ab-bigfile.sh — interleaved A/B runs of one large write through the
# mount for two hstore binaries: A, B, A, B, ... each on a fresh 3-node
# cluster (`hstore up`, data under $AB_PARENT, default /var/tmp), writing
# 200 MiB of random bytes with `dd bs=1M conv=fsync` through the leader's
# mount.  Prints per run the rate dd reports, the CPU time of the three node
# processes and of the children they waited for (snapshot encoders), from
# /proc/PID/stat, and the number of snapshots the nodes logged.
#
#   tests/bench/run-ab-bigfile.sh BIN_A BIN_B [ROUNDS] [MIB]
#
# Needs root (FUSE mounts).  Defaults: 3 rounds, 200 MiB.  AB_UP_ARGS adds
# options to `hstore up`.
set -u
A=${1:?usage: run-ab-bigfile.sh BIN_A BIN_B [ROUNDS] [MIB]}
B=${2:?usage: run-ab-bigfile.sh BIN_A BIN_B [ROUNDS] [MIB]}
ROUNDS=${3:-3}
MIB=${4:-200}
PARENT=${AB_PARENT:-/var/tmp}
PORT=${AB_PORT:-7700}
WORK=$(mktemp -d "$PARENT/hstore-abbig.XXXXXX") || exit 1
trap 'for b in "$A" "$B"; do "$b" down --dir "$WORK/c" --wait 5 >/dev/null 2>&1; done; rm -rf "$WORK"' EXIT
dd if=/dev/urandom of="$WORK/src" bs=1M count="$MIB" status=none || exit 1

node_ticks() { # user + system + waited-for children, of every node in DIR/pids
    local t=0 id pid f
    while read -r id pid; do
        f=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null) && t=$((t + f))
    done <"$WORK/c/pids"
    echo "$t"
}

run_one() { # run_one BIN: prints "MiB/s cpu_s snapshots"
    local bin=$1 leader t0 t1 s0 s1 out
    rm -rf "$WORK/c"
    local -a up_args=()
    read -ra up_args <<<"${AB_UP_ARGS:-}"
    timeout 60 "$bin" up -n 3 --dir "$WORK/c" --base-port "$PORT" --mount-root "$WORK/c/mnt" \
        --wait 30 "${up_args[@]}" >/dev/null 2>&1 || { echo "up failed" >&2; return 1; }
    leader=$(timeout 10 "$bin" status --dir "$WORK/c" 2>/dev/null | awk '$3 == "leader" { print $1 }')
    [ -n "$leader" ] || { echo "no leader" >&2; return 1; }
    t0=$(node_ticks)
    s0=$(date +%s.%N)
    out=$(timeout 600 dd if="$WORK/src" of="$WORK/c/mnt/$leader/big" bs=1M conv=fsync 2>&1) ||
        { echo "dd failed: $out" >&2; return 1; }
    s1=$(date +%s.%N)
    t1=$(node_ticks)
    local snaps
    snaps=$(cat "$WORK"/c/*/node.log | grep -c "snapshot taken")
    timeout 30 "$bin" down --dir "$WORK/c" --wait 10 >/dev/null 2>&1
    python3 -c 'import os,sys; hz=os.sysconf("SC_CLK_TCK"); mib,t0,t1,c0,c1,n=sys.argv[1:]; print(round(int(mib)/(float(t1)-float(t0)),1), round((int(c1)-int(c0))/hz,2), n)' \
        "$MIB" "$s0" "$s1" "$t0" "$t1" "$snaps"
}

for r in $(seq 1 "$ROUNDS"); do
    for side in A B; do
        bin=$A
        [ $side = B ] && bin=$B
        res=$(run_one "$bin") || exit 1
        echo "round $r $side: MiB/s node_cpu_s snapshots = $res"
    done
done
