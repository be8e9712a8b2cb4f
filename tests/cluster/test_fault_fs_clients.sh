#!/usr/bin/env bash
# Through the filesystem: 3 nodes with their mounts; 6 shell-loop clients, two
# on each node's mount, on 3 shared files, for 6 s (long mode: 20 s) while the
# server links are repartitioned every ~1 s:
#   append   printf %s TOKEN >> file    (O_APPEND write: one APPEND)
#   put      printf %s TOKEN | tee tmp; mv tmp file (an atomic replace the
#            way POSIX offers one: write a file aside, rename it over;
#            O_TRUNC + write alone is two steps, locally as here, and a
#            reader may see the file empty between them.  tee reports an
#            error of close(), where the content is committed)
#   get      one read(2) of the file    (dd bs=1M count=1: cat would read
#            twice, and two reads at two instants are not one operation)
# Tokens are unique per operation (fC_N.).  A call that fails (EIO without a
# quorum) is an unknown outcome for a write, nothing for a read.  Each
# operation's call and return times ($EPOCHREALTIME, CLOCK_REALTIME) go into
# the history; after a heal, the final contents read through every mount
# (all equal) are added, and lincheck checks it.  Also: no token appears twice
# in a final content, and one client's tokens appear in its order.
. "$(dirname "$0")/fs_lib.sh" "$@"
. "$(dirname "$0")/lib/faults.sh"
fx_init
secs=6; fx_mode_long && secs=20
cl_start 3 --op-timeout-ms 2000
fs_wait_mounts 20
fs_loop() {   # CLIENT NODE
    local c=$1 m hist=$CL_DIR/fs$1.hist n=0 f op t0 t1 rc out key tok end
    m=$(fs_mnt "$2")
    end=$(( $(cl_now_ms) + secs * 1000 ))
    RANDOM=$((FX_SEED + c))
    while [ "$(cl_now_ms)" -lt "$end" ]; do
        n=$((n + 1)); key=f$((RANDOM % 3)); f=$m/$key; tok=f${c}_$n.
        op=$((RANDOM % 100))
        if [ $op -lt 50 ]; then
            t0=$EPOCHREALTIME; printf %s "$tok" >>"$f" 2>/dev/null; rc=$?; t1=$EPOCHREALTIME
            if [ $rc = 0 ]; then echo "f$c append $key ${t0/./}000 ${t1/./}000 ok $tok -"
            else echo "f$c append $key ${t0/./}000 - unknown $tok -"; fi
        elif [ $op -lt 60 ]; then
            # tee, not a shell redirection: the content is committed at
            # close(), and bash does not check close() after a builtin's
            # redirection.
            t0=$EPOCHREALTIME
            printf %s "$tok" | tee "$m/.t$c" >/dev/null 2>&1 && mv -f "$m/.t$c" "$f" 2>/dev/null
            rc=$?; t1=$EPOCHREALTIME
            if [ $rc = 0 ]; then echo "f$c put $key ${t0/./}000 ${t1/./}000 ok $tok -"
            else echo "f$c put $key ${t0/./}000 - unknown $tok -"; fi
        else
            t0=$EPOCHREALTIME; out=$(dd if="$f" bs=1M count=1 status=none 2>"$CL_DIR/dd$c.err"); rc=$?; t1=$EPOCHREALTIME
            if [ $rc = 0 ]; then echo "f$c get $key ${t0/./}000 ${t1/./}000 ok - ${out:-%}"
            elif grep -q 'No such file' "$CL_DIR/dd$c.err"; then echo "f$c get $key ${t0/./}000 ${t1/./}000 ok - %"
            fi
        fi
    done >"$hist"
}
pids=""
for c in 1 2 3 4 5 6; do
    fs_loop "$c" $(( (c - 1) % 3 + 1 )) &
    pids+=" $!"; CL_ALL_PIDS+=($!)
done
sleep 1
fx_partitioner_start
end=$(( $(cl_now_ms) + 15000 + secs * 1000 ))
for p in $pids; do
    while kill -0 "$p" 2>/dev/null && [ "$(cl_now_ms)" -lt "$end" ]; do sleep 0.1; done
    kill -0 "$p" 2>/dev/null && fx_fail "a shell client on a mount did not finish (hung file operation?)"
done
wait $pids
fx_partitioner_stop
cl_wait_leader 10 >/dev/null || fx_fail "no leader after the heal"
# Every node back in touch first: a TCP connection attempt that the
# partition left in SYN retransmission reconnects only at its next retry,
# up to a few seconds after the heal, and a read through a node still cut off
# fails (EIO) after the 2 s operation timeout.
for i in 1 2 3; do
    cl_wait_caught_up "$i" 20 || fx_fail "node $i did not catch up within 20 s of the heal"
done
H=$CL_DIR/fs_final.hist
for k in f0 f1 f2; do
    first=""
    for i in 1 2 3; do
        t0=$EPOCHREALTIME; out=$(dd if="$(fs_mnt "$i")/$k" bs=1M count=1 status=none 2>/dev/null); rc=$?; t1=$EPOCHREALTIME
        [ $rc = 0 ] || [ ! -e "$(fs_mnt "$i")/$k" ] || fx_fail "final read of $k through mount $i failed"
        echo "final$i get $k ${t0/./}000 ${t1/./}000 ok - ${out:-%}" >>"$H"
        [ $i = 1 ] && first=$out
        [ "$out" = "$first" ] || fx_fail "final content of $k differs: mount 1 '$first', mount $i '$out'"
    done
    # Each token once; one client's tokens in its order.
    bad=$(printf %s "$first" | tr '.' '\n' | awk -F_ 'NF == 2 {
        if (seen[$0]++) { print "duplicate token " $0 "."; exit }
        c = $1; n = $2 + 0; if (n < last[c]) { print "wrong order: " $0 ". after " c "_" last[c] "."; exit } last[c] = n }')
    [ -z "$bad" ] || fx_fail "file $k: $bad (content '$first')"
done
cl_log "shell clients: $(cat "$CL_DIR"/fs?.hist | wc -l) operations ($(cat "$CL_DIR"/fs?.hist | grep -c ' unknown ') unknown)"
fx_lincheck "$CL_DIR"/fs?.hist "$H"
cl_pass
