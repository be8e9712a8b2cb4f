#!/usr/bin/env bash
# Pauses: SIGSTOP of the leader for longer than the election timeout, then
# SIGCONT — no split brain, no stale read.  5 nodes under load from 5
# history-recording sessions.  The leader L is stopped for 3 s (election
# timeout: at most 1 s): the others elect a new leader and take a new value of
# key p.  Right after SIGCONT, a client that can reach only L (source address
# 127.0.0.101) reads p again and again: each read must give the new value or
# fail, never the old one.  Throughout: never two leaders in one term.  All
# operations go into one history (CLOCK_REALTIME) for lincheck.  Repeated 2
# times (long mode: 5).
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
H=$CL_DIR/pause.hist
rounds=2; fx_mode_long && rounds=5
cl_start 5 --op-timeout-ms 2000
fx_wait_leader_among "1 2 3 4 5" 15 >/dev/null || fx_fail "no leader within 15 s"
fx_histclient_bg load --clients 5 --duration-ms $((rounds * 6000)) --keys 5 --key-prefix q \
    --mix append=50,get=50 --timeout-ms 4000 --clock realtime
for r in $(seq 1 "$rounds"); do
    L=$(fx_wait_leader_among "1 2 3 4 5" 10) || fx_fail "no leader before round $r"
    fx_rec "$H" ck put p "old$r" hs put --timeout 10 p "old$r" || fx_fail "put p old$r: exit $FX_RC"
    fx_pause "$L"
    others=$(for i in 1 2 3 4 5; do [ "$i" = "$L" ] || echo -n "$i "; done)
    t0=$(cl_now_ms)
    nl=$(fx_wait_leader_among "$others" 5) || fx_fail "round $r: no new leader within 5 s of pausing leader $L"
    cl_log "round $r: new leader $nl $(( $(cl_now_ms) - t0 )) ms after pausing $L"
    fx_rec "$H" ck put p "new$r" hs put --cluster "$(fx_src_spec 127.0.0.102 "$others")" --timeout 10 p "new$r" ||
        fx_fail "round $r: put p new$r while $L is paused: exit $FX_RC"
    fx_sleep_until $((t0 + 3000))
    fx_clear_client_rules
    fx_cut_client 127.0.0.101 "$others"
    fx_resume "$L"
    for k in 1 2 3 4; do
        if fx_rec "$H" ckL get p - hs get --cluster "$(fx_src_spec 127.0.0.101)" --timeout 1 p; then
            [ "$FX_OUT" = "new$r" ] || fx_fail "round $r: STALE READ: the resumed old leader $L answered p='$FX_OUT' after p='new$r' was acknowledged"
            cl_log "round $r: read through the resumed node $L: $FX_OUT"
        fi
        fx_check_one_leader_per_term
    done
    fx_clear_client_rules
done
fx_histclient_wait load 60
fx_lincheck "$H" "$CL_DIR/load.hist"
cl_pass
