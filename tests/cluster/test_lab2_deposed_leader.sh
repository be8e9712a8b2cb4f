#!/usr/bin/env bash
# A deposed leader in a minority never answers a read or acknowledges a write.
# 5 nodes under load from 5 history-recording sessions (histclient, reaching
# every node).  The leader L and one follower are cut off from the other three
# for a while; meanwhile clients that can reach only L (source address
# 127.0.0.101) and only the follower (.102) keep sending gets and appends with
# short deadlines: no append is ever acknowledged without a majority, and a
# get is answered only under a read lease still running from before the
# partition (--lease-ms 500: within LEASE_WINDOW_MS of the cut, after which
# every get fails with exit 3); what such a get returns must be linearizable
# (no write made visible in the majority is missed: lincheck).  The majority
# elects a new leader and keeps serving.  After the heal, everything is
# merged into one history (CLOCK_REALTIME) for lincheck.
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
H=$CL_DIR/minority.hist
secs=4; fx_mode_long && secs=10
cl_start 5 --op-timeout-ms 2000 --lease-ms 500
# A lease granted just before the cut ends within about a lease (500 ms)
# of it on the holder's clock; the margin covers clock rates and a busy
# machine's late answers, never a read taken long after.
LEASE_WINDOW_MS=1500
L=$(fx_wait_leader_among "1 2 3 4 5" 15) || fx_fail "no leader within 15 s"
fx_rec "$H" ck put m before hs put --timeout 10 m before || fx_fail "put m: exit $FX_RC"
fx_histclient_bg load --clients 5 --duration-ms $(( (secs + 4) * 1000 )) --keys 5 --key-prefix d \
    --mix append=50,get=50 --timeout-ms 4000 --clock realtime
sleep 1
F=$(( L % 5 + 1 ))
maj=$(for i in 1 2 3 4 5; do [ "$i" = "$L" ] || [ "$i" = "$F" ] || echo -n "$i "; done)
fx_partition "$L $F" "$maj"
t_cut=$(cl_now_ms)
fx_cut_client 127.0.0.101 "$F $maj"
fx_cut_client 127.0.0.102 "$L $maj"
SL=$(fx_src_spec 127.0.0.101) SF=$(fx_src_spec 127.0.0.102)
minority_client() {   # NAME SPEC
    local name=$1 spec=$2 end n=0
    end=$(( $(cl_now_ms) + secs * 1000 ))
    while [ "$(cl_now_ms)" -lt "$end" ]; do
        n=$((n + 1))
        local t0
        t0=$(cl_now_ms)
        if fx_rec "$CL_DIR/$name.hist" "$name" get m - hs get --cluster "$spec" --timeout 1 m; then
            if [ $((t0 - t_cut)) -gt "$LEASE_WINDOW_MS" ]; then
                echo "get answered '$FX_OUT' $((t0 - t_cut)) ms after the cut" >>"$CL_DIR/$name.bad"
            else
                echo x >>"$CL_DIR/$name.lease"
            fi
        fi
        if fx_rec "$CL_DIR/$name.hist" "$name" append m "$name.$n." hs append --cluster "$spec" --timeout 1 m "$name.$n."; then
            echo "append $name.$n. acknowledged" >>"$CL_DIR/$name.bad"
        fi
    done
}
minority_client mL "$SL" & p1=$!; CL_ALL_PIDS+=($p1)
minority_client mF "$SF" & p2=$!; CL_ALL_PIDS+=($p2)
sleep 0.5
fx_rec "$H" ck put m after hs put --cluster "$(fx_src_spec 127.0.0.103 "$maj")" --timeout 10 m after ||
    fx_fail "progress in the majority [$maj]: put m after: exit $FX_RC"
nl=$(fx_wait_leader_among "$maj" 5) || fx_fail "no leader in the majority [$maj] within 5 s"
cl_log "majority leader $nl; old leader $L says $(fx_status_lines | awk -v i="$L" '$1 == i { print $2 " term " $3 }')"
wait $p1 $p2
for c in mL mF; do
    [ -e "$CL_DIR/$c.bad" ] && fx_fail "a node of the minority answered too late or acknowledged a write: $(head -n 5 "$CL_DIR/$c.bad") (client $c; history $CL_DIR/$c.hist)"
done
cl_log "minority clients: $(cat "$CL_DIR"/mL.hist "$CL_DIR"/mF.hist | wc -l) operations; gets answered under a lease right after the cut: $(cat "$CL_DIR"/mL.lease "$CL_DIR"/mF.lease 2>/dev/null | wc -l), none later, no append"
fx_heal
fx_clear_client_rules
fx_check_one_leader_per_term
fx_rec "$H" mL get m - hs get --cluster "$SL" --timeout 10 m || fx_fail "get through the old leader after the heal: exit $FX_RC"
cl_log "m after the heal: $FX_OUT"
fx_histclient_wait load 60
cat "$CL_DIR/mL.hist" "$CL_DIR/mF.hist" >>"$H"
fx_lincheck "$H" "$CL_DIR/load.hist"
cl_pass
