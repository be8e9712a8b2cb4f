#!/usr/bin/env bash
# Read leases through the mounts, under faults: 3 nodes, every node's mount
# read and written by two shell clients (append, replace by rename, and
# one-read(2) gets on 3 shared files) and read by a third that only reads
# (so reads go on while writes wait for a quorum), while the faults go by in
# turn:
#   - a follower (node 3 when it is one) paused (SIGSTOP) for three times
#     the lease, then resumed;
#   - the leader paused the same way (the others elect a new leader, which
#     waits out every lease the old one could have granted);
#   - node 3 (a follower then, else another follower) cut off by the
#     network for 2 s while its readers go on, then healed;
#   - a follower killed (kill -9) and restarted;
# and node 3's clock runs 5% fast and node 2's 5% slow the whole time
# (HSTORE_TEST_CLOCK_RATE, within the assumed 10% bound).  Every operation goes into one history
# (CLOCK_REALTIME), with the final contents read through every mount, and
# lincheck must find it linearizable.  The nodes must also have answered
# reads under their leases (counted in /metrics), so the run shows leases in
# use, not a fallback.  Long mode: the fault sequence 10 times.
# LEASE_TEST_CLOCK_RATE sets node 3's clock rate instead: at 0.3 (a clock
# far slower than the bound) node 3, resumed after its pause, still counts
# its lease valid, while the leader counted it out long before and made new
# writes visible; lincheck then finds stale reads (how the assumption fails
# when it is broken).
. "$(dirname "$0")/fs_lib.sh" "$@"
. "$(dirname "$0")/lib/faults.sh"
fx_init
rounds=1; fx_mode_long && rounds=10
CL_NODE_ENV[3]="HSTORE_TEST_CLOCK_RATE=${LEASE_TEST_CLOCK_RATE:-1.05}"
CL_NODE_ENV[2]="HSTORE_TEST_CLOCK_RATE=0.95"
fs_start_lease_cluster

lease_reads() { # the sum of every node's lease reads (nodes that answer)
    local i t=0 v
    for i in 1 2 3; do
        v=$(fs_metric "$i" hstore_lease_reads_total)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

STOP=$CL_DIR/stop_clients
for k in l0 l1 l2; do : >"$(fs_mnt 1)/$k" || cl_fail "cannot create $k"; done
fs_loop() {   # CLIENT NODE [ro: reads only]
    local c=$1 m hist=$CL_DIR/fs$1.hist n=0 f op t0 t1 rc out key tok end ro=${3:-}
    m=$(fs_mnt "$2")
    end=$(( $(cl_now_ms) + 600000 ))
    RANDOM=$((FX_SEED + c))
    while [ ! -e "$STOP" ] && [ "$(cl_now_ms)" -lt "$end" ]; do
        n=$((n + 1)); key=l$((RANDOM % 3)); f=$m/$key; tok=l${c}_$n.
        op=$((RANDOM % 100))
        [ -n "$ro" ] && op=99
        if [ $op -lt 35 ]; then
            t0=$EPOCHREALTIME; printf %s "$tok" >>"$f" 2>/dev/null; rc=$?; t1=$EPOCHREALTIME
            if [ $rc = 0 ]; then echo "l$c append $key ${t0/./}000 ${t1/./}000 ok $tok -"
            else echo "l$c append $key ${t0/./}000 - unknown $tok -"; fi
        elif [ $op -lt 40 ]; then
            t0=$EPOCHREALTIME
            printf %s "$tok" | tee "$m/.t$c" >/dev/null 2>&1 && mv -f "$m/.t$c" "$f" 2>/dev/null
            rc=$?; t1=$EPOCHREALTIME
            if [ $rc = 0 ]; then echo "l$c put $key ${t0/./}000 ${t1/./}000 ok $tok -"
            else echo "l$c put $key ${t0/./}000 - unknown $tok -"; fi
        else
            t0=$EPOCHREALTIME; out=$(dd if="$f" bs=1M count=1 status=none 2>"$CL_DIR/dd$c.err"); rc=$?; t1=$EPOCHREALTIME
            # The keys exist from the start (made below), so a read that
            # fails, ENOENT included, is no observation: while a killed
            # node's mount is replaced, a client can reach the mount point's
            # underlay for an instant.
            if [ $rc = 0 ]; then echo "l$c get $key ${t0/./}000 ${t1/./}000 ok - ${out:-%}"; fi
        fi
    done >"$hist"
}
pids=""
for c in 1 2 3 4 5 6 7 8 9; do
    ro=""
    [ "$c" -gt 6 ] && ro=ro # one reader per node that never waits on a write
    fs_loop "$c" $(( (c - 1) % 3 + 1 )) $ro &
    pids+=" $!"; CL_ALL_PIDS+=($!)
done
sleep 1
before=$(lease_reads)
pause_ms=$((3 * LEASE_MS))
for r in $(seq 1 "$rounds"); do
    L=$(cl_wait_leader 15) || fx_fail "round $r: no leader"
    F=3
    [ "$L" = 3 ] && F=$((r % 2 + 1))
    cl_log "round $r: pause follower $F for $pause_ms ms"
    fx_pause "$F"; sleep "$(awk -v m=$pause_ms 'BEGIN { print m / 1000 }')"; fx_resume "$F"
    sleep 1
    L=$(cl_wait_leader 15) || fx_fail "round $r: no leader after the follower's pause"
    cl_log "round $r: pause leader $L for $pause_ms ms"
    fx_pause "$L"; sleep "$(awk -v m=$pause_ms 'BEGIN { print m / 1000 }')"; fx_resume "$L"
    L=$(cl_wait_leader 15) || fx_fail "round $r: no leader after the leader's pause"
    sleep 1
    I=3
    [ "$L" = 3 ] && I=$((r % 2 + 1))
    fx_isolate "$I"; sleep 2; fx_heal
    L=$(cl_wait_leader 15) || fx_fail "round $r: no leader after the heal"
    sleep 1
    K=$((L % 3 + 1))
    cl_log "round $r: kill -9 follower $K and restart it"
    cl_kill "$K"; sleep 1; cl_restart "$K"
    fs_wait_mounts 30
    sleep 1
done
: >"$STOP"
end=$(( $(cl_now_ms) + 30000 ))
for p in $pids; do
    while kill -0 "$p" 2>/dev/null && [ "$(cl_now_ms)" -lt "$end" ]; do sleep 0.1; done
    kill -0 "$p" 2>/dev/null && fx_fail "a shell client on a mount did not finish (hung file operation?)"
done
wait $pids
cl_wait_leader 10 >/dev/null || fx_fail "no leader at the end"
for i in 1 2 3; do
    cl_wait_caught_up "$i" 20 || fx_fail "node $i did not catch up within 20 s"
done
after=$(lease_reads)
H=$CL_DIR/fs_final.hist
for k in l0 l1 l2; do
    first=""
    for i in 1 2 3; do
        t0=$EPOCHREALTIME; out=$(dd if="$(fs_mnt "$i")/$k" bs=1M count=1 status=none 2>/dev/null); rc=$?; t1=$EPOCHREALTIME
        [ $rc = 0 ] || [ ! -e "$(fs_mnt "$i")/$k" ] || fx_fail "final read of $k through mount $i failed"
        echo "final$i get $k ${t0/./}000 ${t1/./}000 ok - ${out:-%}" >>"$H"
        [ $i = 1 ] && first=$out
        [ "$out" = "$first" ] || fx_fail "final content of $k differs: mount 1 '$first', mount $i '$out'"
    done
done
ops=$(cat "$CL_DIR"/fs?.hist | wc -l)
gets=$(cat "$CL_DIR"/fs?.hist | grep -c ' get ')
cl_log "shell clients: $ops operations, $gets reads ($(cat "$CL_DIR"/fs?.hist | grep -c ' unknown ') unknown); lease reads counted by the nodes still up: $before before the faults, $after at the end"
[ "$after" -gt "$before" ] || fx_fail "no read was answered under a lease ($before -> $after)"
fx_lincheck "$CL_DIR"/fs?.hist "$H"
cl_pass
