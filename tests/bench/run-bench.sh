#!/usr/bin/env bash
# run-bench.sh — `make bench`: hstore's numbers in one table.
#
# Starts a fresh 3-node cluster on loopback (data in a temporary directory on
# the real disk, under build/ unless BENCH_DIR says otherwise; mounts in a
# temporary directory), waits for a leader and the mounts, then measures:
#   - the disk's raw fdatasync latency of a 4 KiB append (for scale);
#   - `hstore bench` put at 1, 16 and 64 clients and linearizable get at 16
#     (16-byte keys, 256-byte values);
#   - through the mounts (build/bench_fs): small files (create, write 256 bytes,
#     close) from 1 and 8 writers on the leader's mount (8 writers in one
#     directory, and each in its own: creates in one directory serialize on the
#     kernel's directory lock) and 1 writer on a follower's; cat of a small
#     file on a follower's mount, cached and right after each change made
#     through the leader's mount (bench_fs catchanged); a 100 MiB file
#     written on the leader's mount and read on a follower's.  Beside each, the
#     same workload on a local directory of the same disk, with fsync before
#     close for writes (one durable disk write, the physical limit) and a plain
#     read for reads;
#   - large files: 200 MiB written by `dd bs=1M conv=fsync` through the
#     leader's mount and through a follower's mount, each read back with dd
#     through the third node's mount, and `hstore put`/`get` of a 100 MB
#     value; each beside the same dd on a local directory of the same disk
#     (conv=fsync for writes, a plain read for reads) with the ratio, and the
#     cluster's term before and after (an election would show as a change).
# It always stops the cluster (also on failure or interrupt), removes its
# temporary directories, and exits non-zero if any step failed or had errors.
#
# Environment: BENCH_ONLY (bigfile: only the large-file part),
#              BENCH_SCALE (multiplies operation counts, default 1),
#              BENCH_DIR (parent of the data directory, default REPO/build),
#              BENCH_PORT (first peer port, default: a free one from 21000 on).
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HSTORE=$REPO/bin/hstore
BENCH_FS=$REPO/build/bench_fs
SCALE=${BENCH_SCALE:-1}
ONLY=${BENCH_ONLY:-}
case $ONLY in ''|bigfile) ;; *) echo "bench: BENCH_ONLY must be empty or bigfile, not '$ONLY'" >&2; exit 1 ;; esac
PARENT=${BENCH_DIR:-$REPO/build}

die() { echo "bench: $*" >&2; exit 1; }
case $SCALE in ''|*[!0-9]*|0) die "BENCH_SCALE must be a positive integer, not '$SCALE'" ;; esac
[ -x "$HSTORE" ] || die "$HSTORE is missing: run make first"
[ -x "$BENCH_FS" ] || die "$BENCH_FS is missing: run make build/bench_fs first"
mkdir -p "$PARENT" || die "cannot create $PARENT"
FSTYPE=$(findmnt -n -o FSTYPE --target "$PARENT" 2>/dev/null || stat -f -c %T "$PARENT")
case $FSTYPE in
tmpfs|ramfs) die "$PARENT is on $FSTYPE, where fsync costs nothing; set BENCH_DIR to a directory on a real disk" ;;
esac

DIR=
MNT=
FAILED=0
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- cleanup: always, also on failure and interrupt -------------------------
cleanup() {
    local rc=$? pid id m
    trap - EXIT INT TERM
    if [ -n "$DIR" ] && [ -f "$DIR/pids" ]; then
        # `down` removes the pid file: keep a copy for what it could not stop.
        cp "$DIR/pids" "$DIR/pids.bench" 2>/dev/null
        timeout 30 "$HSTORE" down --dir "$DIR" --wait 10 >/dev/null 2>&1
        # Anything `down` could not stop: kill by recorded pid, if it is still ours.
        [ -f "$DIR/pids.bench" ] && while read -r id pid; do
            [ -n "$pid" ] || continue
            if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "hstore node --id $id "; then
                kill -9 "$pid" 2>/dev/null
            fi
        done <"$DIR/pids.bench"
    fi
    if [ -n "$MNT" ]; then
        for m in "$MNT"/*; do
            [ -d "$m" ] || continue
            if mountpoint -q "$m" 2>/dev/null; then
                timeout 10 fusermount3 -u -z "$m" 2>/dev/null || timeout 10 umount -l "$m" 2>/dev/null
            fi
            rmdir "$m" 2>/dev/null || echo "bench: could not remove mount point $m" >&2
        done
        rmdir "$MNT" 2>/dev/null || echo "bench: could not remove $MNT" >&2
    fi
    if [ -n "$DIR" ] && [ -d "$DIR" ]; then
        rm -rf "$DIR" || echo "bench: could not remove $DIR" >&2
    fi
    [ "$rc" -eq 0 ] && [ "$FAILED" -ne 0 ] && rc=1
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; FAILED=1; exit 130' INT TERM

DIR=$(mktemp -d "$PARENT/bench-run.XXXXXX") || die "cannot create a directory under $PARENT"
MNT=$(mktemp -d "${TMPDIR:-/tmp}/hstore-bench-mnt.XXXXXX") || die "cannot create a mount directory"
LOCAL=$DIR/local
mkdir -p "$LOCAL/sf1" "$LOCAL/sf8" "$LOCAL/sf8d" "$LOCAL/sff" || die "cannot create $LOCAL"

# ---- a free port range ------------------------------------------------------
port_used() { ss -Htanl 2>/dev/null | awk '{print $4}' | grep -q ":$1\$"; }
pick_port() {
    local p k busy
    for p in $(seq 21000 12 21600); do
        busy=0
        for k in 0 1 2 3 4 5; do port_used $((p + k)) && { busy=1; break; }; done
        [ $busy -eq 0 ] && { echo "$p"; return 0; }
    done
    return 1
}
PORT=${BENCH_PORT:-$(pick_port)} || die "no free ports from 21000 to 21605"

# ---- start the cluster --------------------------------------------------------
echo "bench: starting 3 nodes (data $DIR, mounts $MNT, ports $PORT..$((PORT + 5)))" >&2
if ! timeout 60 "$HSTORE" up -n 3 --dir "$DIR" --base-port "$PORT" --mount-root "$MNT" \
        --wait 30 >"$DIR/up.out" 2>&1; then
    cat "$DIR/up.out" >&2
    die "hstore up failed"
fi
for i in 1 2 3; do
    end=$(($(date +%s) + 20))
    until timeout 5 grep -qs "^id $i\$" "$MNT/$i/.hstore/status"; do
        [ "$(date +%s)" -lt "$end" ] || die "the mount of node $i did not answer within 20 s"
        sleep 0.1
    done
done

# leader_and_follower: sets LEADER and FOLLOWER from `hstore status`.
leader_and_follower() {
    local end st
    end=$(($(date +%s) + 20))
    while :; do
        st=$(timeout 10 "$HSTORE" status --dir "$DIR" 2>/dev/null)
        LEADER=$(echo "$st" | awk '$3 == "leader" { print $1; exit }')
        FOLLOWER=$(echo "$st" | awk '$3 == "follower" { print $1; exit }')
        [ -n "$LEADER" ] && [ -n "$FOLLOWER" ] && return 0
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}
leader_and_follower || die "no leader within 20 s"

# ---- running steps ------------------------------------------------------------
# json_get JSON KEY: the value of "KEY" in a flat JSON object.
json_get() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
# kv_get LINE KEY: the value of KEY=... in a line of bench_fs output.
kv_get() { printf '%s\n' "$1" | awk -v k="$2" '{ for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) { print a[2]; exit } } }'; }

# step NAME SECONDS CMD...: runs CMD with a deadline; its stdout lands in OUT.
# A failing step is reported on stderr (with the tail of its own stderr) and
# marks the run failed; its row still appears, marked FAILED.
OUT=
STEP_OK=1
step() {
    local name=$1 secs=$2 rc
    shift 2
    echo "bench: $name" >&2
    OUT=$(timeout "$secs" "$@" 2>"$DIR/step.err")
    rc=$?
    STEP_OK=1
    if [ $rc -ne 0 ]; then
        STEP_OK=0
        FAILED=1
        [ $rc -eq 124 ] && echo "bench: $name: no result within ${secs}s" >&2
        echo "bench: $name failed (exit $rc):" >&2
        tail -n 5 "$DIR/step.err" >&2
    fi
}

ROWS=()
fmt_rate() { awk -v r="$1" -v u="$2" 'BEGIN { if (r == "") print "-"; else printf "%.0f %s\n", r, u }'; }
fmt_rate1() { awk -v r="$1" -v u="$2" 'BEGIN { if (r == "") print "-"; else printf "%.1f %s\n", r, u }'; }
fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else if (v < 10) printf "%.3f\n", v; else printf "%.1f\n", v }'; }
# row NAME COUNT RATE P50 P99 MAX ERRORS [LOCAL_DESC LOCAL_RATE LOCAL_P50 LOCAL_P99]
row() {
    local line
    line=$(printf '%-44s %7s %14s %8s %8s %8s %6s' "$1" "$2" "$3" "$4" "$5" "$6" "$7")
    if [ $# -gt 7 ]; then
        line+=$(printf '  | %-18s %14s %8s %8s' "$8" "$9" "${10}" "${11}")
    fi
    ROWS+=("$line")
}

if [ "$ONLY" != bigfile ]; then
# ---- disk -----------------------------------------------------------------------
N_FSYNC=$((1000 * SCALE))
step "raw fdatasync on $DIR" 60 "$BENCH_FS" fsync "$DIR" "$N_FSYNC" --max-seconds 50
o=$OUT
row "raw fdatasync, 4 KiB append (disk)" "$N_FSYNC" "$(fmt_rate "$(kv_get "$o" per_sec)" /s)" \
    "$(fmt_ms "$(kv_get "$o" p50_ms)")" "$(fmt_ms "$(kv_get "$o" p99_ms)")" \
    "$(fmt_ms "$(kv_get "$o" max_ms)")" "$([ $STEP_OK = 1 ] && kv_get "$o" errors || echo FAILED)"

# ---- key-value: hstore bench ------------------------------------------------------
kv_bench() {   # kv_bench LABEL CLIENTS OPS WORKLOAD [EXTRA...]
    local label=$1 clients=$2 ops=$3 w=$4 errs
    shift 4
    step "$label" 150 "$HSTORE" bench --dir "$DIR" --clients "$clients" --ops "$ops" \
        --key-size 16 --value-size 256 --json "$@" "$w"
    errs=$(json_get "$OUT" errors)
    if [ -n "$errs" ] && [ "$errs" != 0 ]; then
        echo "bench: $label: $errs errors" >&2
        FAILED=1
    fi
    [ $STEP_OK = 1 ] || errs="${errs:-?} FAILED"
    row "$label" "$ops" "$(fmt_rate "$(json_get "$OUT" ops_per_sec)" ops/s)" \
        "$(fmt_ms "$(json_get "$OUT" p50_ms)")" "$(fmt_ms "$(json_get "$OUT" p99_ms)")" \
        "$(fmt_ms "$(json_get "$OUT" max_ms)")" "${errs:-FAILED}"
}
kv_bench "put, 1 client" 1 $((5000 * SCALE)) put
kv_bench "put, 16 clients" 16 $((40000 * SCALE)) put
kv_bench "put, 64 clients" 64 $((80000 * SCALE)) put
kv_bench "get (linearizable), 16 clients" 16 $((80000 * SCALE)) get --keys 10000

# ---- filesystem: bench_fs through the mounts, beside a local directory -----------
leader_and_follower || { echo "bench: no leader before the filesystem steps" >&2; FAILED=1; }
LM=$MNT/${LEADER:-1}
FM=$MNT/${FOLLOWER:-2}
for d in sf1 sf8 sf8d sff; do
    timeout 10 mkdir -p "$LM/$d" || { echo "bench: cannot mkdir $LM/$d" >&2; FAILED=1; }
done

# fs_pair LABEL COUNT UNIT HSTORE_CMD... -- LOCAL_DESC LOCAL_CMD...
fs_pair() {
    local label=$1 count=$2 unit=$3 a=() b=() desc ho hok lo lok
    shift 3
    while [ $# -gt 0 ] && [ "$1" != -- ]; do a+=("$1"); shift; done
    shift
    desc=$1
    shift
    b=("$@")
    step "$label" 150 "${a[@]}" --max-seconds 120
    ho=$OUT hok=$STEP_OK
    step "$label, local" 150 "${b[@]}" --max-seconds 120
    lo=$OUT lok=$STEP_OK
    local herr lerr
    herr=$(kv_get "$ho" errors)
    [ $hok = 1 ] || herr="${herr:-?} FAILED"
    [ $lok = 1 ] || desc="$desc FAILED"
    if [ "$unit" = MiB/s ]; then
        row "$label" "$count" "$(fmt_rate1 "$(kv_get "$ho" mb_per_sec)" MiB/s)" - - - "$herr" \
            "$desc" "$(fmt_rate1 "$(kv_get "$lo" mb_per_sec)" MiB/s)" - -
    else
        row "$label" "$count" "$(fmt_rate "$(kv_get "$ho" per_sec)" "$unit")" \
            "$(fmt_ms "$(kv_get "$ho" p50_ms)")" "$(fmt_ms "$(kv_get "$ho" p99_ms)")" \
            "$(fmt_ms "$(kv_get "$ho" max_ms)")" "$herr" \
            "$desc" "$(fmt_rate "$(kv_get "$lo" per_sec)" "$unit")" \
            "$(fmt_ms "$(kv_get "$lo" p50_ms)")" "$(fmt_ms "$(kv_get "$lo" p99_ms)")"
    fi
}
N_SF1=$((1000 * SCALE))
N_SF8=$((4000 * SCALE))
N_CAT=$((2000 * SCALE))
fs_pair "small files, 1 writer, leader (n$LEADER)" "$N_SF1" files/s \
    "$BENCH_FS" smallfiles "$LM/sf1" --files "$N_SF1" --threads 1 -- \
    "fsync before close" "$BENCH_FS" smallfiles "$LOCAL/sf1" --files "$N_SF1" --threads 1 --fsync
fs_pair "small files, 8 writers, leader (n$LEADER)" "$N_SF8" files/s \
    "$BENCH_FS" smallfiles "$LM/sf8" --files "$N_SF8" --threads 8 -- \
    "fsync before close" "$BENCH_FS" smallfiles "$LOCAL/sf8" --files "$N_SF8" --threads 8 --fsync
fs_pair "small files, 8 writers, 8 dirs, leader (n$LEADER)" "$N_SF8" files/s \
    "$BENCH_FS" smallfiles "$LM/sf8d" --files "$N_SF8" --threads 8 --dir-per-thread -- \
    "fsync before close" "$BENCH_FS" smallfiles "$LOCAL/sf8d" --files "$N_SF8" --threads 8 --fsync --dir-per-thread
fs_pair "small files, 1 writer, follower (n$FOLLOWER)" "$N_SF1" files/s \
    "$BENCH_FS" smallfiles "$FM/sff" --files "$N_SF1" --threads 1 -- \
    "fsync before close" "$BENCH_FS" smallfiles "$LOCAL/sff" --files "$N_SF1" --threads 1 --fsync
fs_pair "cat small file, follower (n$FOLLOWER)" "$N_CAT" reads/s \
    "$BENCH_FS" cat "$FM/sf1" --files "$N_SF1" --reads "$N_CAT" -- \
    "plain read" "$BENCH_FS" cat "$LOCAL/sf1" --files "$N_SF1" --reads "$N_CAT"
N_CHG=$((500 * SCALE))
fs_pair "cat after a change on n$LEADER, follower (n$FOLLOWER)" "$N_CHG" reads/s \
    "$BENCH_FS" catchanged "$LM" "$FM" --reps "$N_CHG" -- \
    "plain read" "$BENCH_FS" catchanged "$LOCAL" "$LOCAL" --reps "$N_CHG"
fs_pair "ls -l of $N_SF1 files, follower (n$FOLLOWER)" "20 passes" entries/s \
    "$BENCH_FS" lsl "$FM/sf1" --reps 20 -- \
    "plain" "$BENCH_FS" lsl "$LOCAL/sf1" --reps 20
fs_pair "cp -r of $N_SF1 small files, leader (n$LEADER)" "$N_SF1" files/s \
    "$BENCH_FS" copy "$LM/sf1" "$LM/cpl" --files "$N_SF1" -- \
    "no fsync" "$BENCH_FS" copy "$LOCAL/sf1" "$LOCAL/cpl" --files "$N_SF1"
fs_pair "cp -r of $N_SF1 small files, follower (n$FOLLOWER)" "$N_SF1" files/s \
    "$BENCH_FS" copy "$FM/sf1" "$FM/cpf" --files "$N_SF1" -- \
    "no fsync" "$BENCH_FS" copy "$LOCAL/sf1" "$LOCAL/cpf" --files "$N_SF1"
fs_pair "write 100 MiB file, leader (n$LEADER)" "100 MiB" MiB/s \
    "$BENCH_FS" seqwrite "$LM/big" --mb 100 -- \
    "fsync before close" "$BENCH_FS" seqwrite "$LOCAL/big" --mb 100 --fsync
fs_pair "read 100 MiB file, follower (n$FOLLOWER)" "100 MiB" MiB/s \
    "$BENCH_FS" seqread "$FM/big" -- \
    "plain read" "$BENCH_FS" seqread "$LOCAL/big"
fi

# ---- large files: dd through the mounts, hstore put/get -------------------------------
BIG_MB=$((200 * SCALE))
PUT_MB=$((100 * SCALE))
BIG_ROWS=()
leader_and_follower || { echo "bench: no leader before the large-file steps" >&2; FAILED=1; }
LEADER=${LEADER:-1}
FOLLOWER=${FOLLOWER:-2}
THIRD=$((6 - LEADER - FOLLOWER))
# max_term: the highest term any node reports.
max_term() {
    timeout 10 "$HSTORE" status --dir "$DIR" 2>/dev/null |
        awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^term=/) { t = substr($i, 6) + 0; if (t > m) m = t } } END { print m + 0 }'
}
now_ns() { date +%s%N; }
mibs() { awk -v b="$1" -v ns="$2" 'BEGIN { if (ns <= 0) print "-"; else printf "%.1f", b / 1048576 / (ns / 1e9) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.0f%%", 100 * a / b }'; }
# timed NAME SECONDS CMD...: runs CMD with a deadline; sets NS (elapsed) and TIMED_OK.
timed() {
    local name=$1 secs=$2 t0 rc
    shift 2
    echo "bench: $name" >&2
    t0=$(now_ns)
    timeout "$secs" "$@" 2>"$DIR/step.err"
    rc=$?
    NS=$(($(now_ns) - t0))
    TIMED_OK=1
    if [ $rc -ne 0 ]; then
        TIMED_OK=0
        FAILED=1
        echo "bench: $name failed (exit $rc):" >&2
        tail -n 5 "$DIR/step.err" >&2
    fi
}
big_row() {   # big_row NAME RATE TERMS LOCAL_DESC LOCAL_RATE OK
    local r=$2 q
    q=$(ratio "$2" "$5")
    [ "$6" = 1 ] || { r="FAILED"; q=-; }
    BIG_ROWS+=("$(printf '%-44s %12s %10s  | %-22s %10s %7s' "$1" "$r" "$3" "$4" "$5" "$q")")
}
SRC=$DIR/big.src
if head -c $((BIG_MB * 1048576)) /dev/urandom >"$SRC" && sync "$SRC"; then
    BYTES=$((BIG_MB * 1048576))
    timed "dd $BIG_MB MiB, local, conv=fsync" 300 dd if="$SRC" of="$LOCAL/big.dd" bs=1M conv=fsync status=none
    LOCAL_W=$(mibs $BYTES "$NS")
    timed "dd $BIG_MB MiB, local read" 300 dd if="$LOCAL/big.dd" of=/dev/null bs=1M status=none
    LOCAL_R=$(mibs $BYTES "$NS")
    for w in "$LEADER" "$FOLLOWER"; do
        role=leader
        [ "$w" = "$LEADER" ] || role=follower
        t_before=$(max_term)
        timed "dd $BIG_MB MiB through the $role's mount" 600 \
            dd if="$SRC" of="$MNT/$w/big$w" bs=1M conv=fsync status=none
        ok=$TIMED_OK
        rate=$(mibs $BYTES "$NS")
        t_after=$(max_term)
        [ "$t_before" = "$t_after" ] || echo "bench: the term changed during the write through node $w: $t_before -> $t_after" >&2
        big_row "write $BIG_MB MiB, dd bs=1M conv=fsync, $role (n$w)" "$rate" "$t_before->$t_after" \
            "dd conv=fsync, local" "$LOCAL_W" "$ok"
        t_before=$(max_term)
        timed "read $BIG_MB MiB through node $THIRD's mount" 600 \
            dd if="$MNT/$THIRD/big$w" of=/dev/null bs=1M status=none
        ok=$TIMED_OK
        rate=$(mibs $BYTES "$NS")
        t_after=$(max_term)
        if ! timeout 300 cmp -s "$SRC" "$MNT/$THIRD/big$w"; then
            echo "bench: big$w read through node $THIRD differs from what was written" >&2
            FAILED=1
            ok=0
        fi
        big_row "read $BIG_MB MiB, dd bs=1M, node $THIRD" "$rate" "$t_before->$t_after" \
            "dd, local (cached)" "$LOCAL_R" "$ok"
    done
    VAL=$DIR/big.val
    head -c $((PUT_MB * 1000 * 1000)) "$SRC" >"$VAL"
    PBYTES=$((PUT_MB * 1000 * 1000))
    timed "dd $PUT_MB MB, local, conv=fsync" 300 dd if="$VAL" of="$LOCAL/big.val" bs=1M conv=fsync status=none
    LOCAL_P=$(mibs $PBYTES "$NS")
    t_before=$(max_term)
    timed "hstore put of $PUT_MB MB" 600 "$HSTORE" put --dir "$DIR" --timeout 60 bigval <"$VAL"
    ok=$TIMED_OK
    rate=$(mibs $PBYTES "$NS")
    t_after=$(max_term)
    big_row "hstore put of a $PUT_MB MB value" "$rate" "$t_before->$t_after" \
        "dd conv=fsync, local" "$LOCAL_P" "$ok"
    t_before=$(max_term)
    timed "hstore get of $PUT_MB MB" 600 sh -c '"$1" get --dir "$2" --timeout 60 bigval >"$3"' \
        sh "$HSTORE" "$DIR" "$DIR/big.got"
    ok=$TIMED_OK
    rate=$(mibs $PBYTES "$NS")
    t_after=$(max_term)
    if ! cmp -s "$VAL" "$DIR/big.got"; then
        echo "bench: hstore get returned other bytes than were put" >&2
        FAILED=1
        ok=0
    fi
    big_row "hstore get of a $PUT_MB MB value" "$rate" "$t_before->$t_after" \
        "dd, local (cached)" "$LOCAL_R" "$ok"
    rm -f "$SRC" "$VAL" "$DIR/big.got" "$LOCAL/big.dd" "$LOCAL/big.val"
else
    echo "bench: cannot make the $BIG_MB MiB source file" >&2
    FAILED=1
fi

# ---- the table ------------------------------------------------------------------
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "hstore bench: 3 nodes on 127.0.0.1, data on $FSTYPE (under $PARENT), leader node $LEADER, follower node $FOLLOWER"
echo "BENCH_SCALE=$SCALE, $(nproc) CPUs, load average $LOAD_START at start, $LOAD_END at end, $(($(date +%s) - T_START)) s"
echo "keys 16 B, values 256 B, small files 256 B; latencies in ms; local = a directory on the same disk"
echo
if [ "$ONLY" != bigfile ]; then
    HEAD=$(printf '%-44s %7s %14s %8s %8s %8s %6s  | %-18s %14s %8s %8s' workload count hstore p50 p99 \
        max errors "local, same disk" rate p50 p99)
    printf '%s\n' "$HEAD"
    printf '%s\n' "$HEAD" | tr -c '\n' -
    printf '%s\n' "${ROWS[@]}"
    echo
fi
HEAD=$(printf '%-44s %12s %10s  | %-22s %10s %7s' "large files" "MiB/s" "term" "local, same disk" "MiB/s" ratio)
printf '%s\n' "$HEAD"
printf '%s\n' "$HEAD" | tr -c '\n' -
printf '%s\n' "${BIG_ROWS[@]}"
echo
if [ "$FAILED" -ne 0 ]; then
    echo "bench: some steps failed or had errors (see above)" >&2
    exit 1
fi
exit 0
