#!/usr/bin/env bash
# Durability: acknowledged writes all survive kill -9 of every node at once,
# repeated during heavy writes — 20 rounds in long mode, 5 in normal mode.
# 3 nodes; each round 10 history-recording sessions append (80 %) and read
# (20 %) on 10 keys for 3 s; at a random instant 0.5-2 s into the round every
# node is killed with SIGKILL at once and restarted 0-0.5 s later; the clients
# keep going.  After the round histclient reads every key: every acknowledged
# append must be there exactly once and in order, and the history must be
# linearizable.  At the end every key of every round is read again and must
# still hold what its round's final read saw (nothing lost by the later
# crashes).
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
rounds=5; fx_mode_long && rounds=20
cl_start 3 --op-timeout-ms 3000
cl_wait_leader 15 >/dev/null || fx_fail "no leader within 15 s"
for r in $(seq 1 "$rounds"); do
    t0=$(cl_now_ms)
    fx_histclient_bg "d$r" --clients 10 --duration-ms 3000 --keys 10 --key-prefix "d${r}k" \
        --mix append=80,get=20 --timeout-ms 5000 --name "d${r}c" --final-timeout-ms 30000
    fx_sleep_until $((t0 + 500 + RANDOM % 1500))
    fx_crash_all
    sleep "0.$((RANDOM % 5))"
    fx_restart_all
    fx_histclient_wait "d$r" 60
    cl_log "round $r/$rounds: $(tail -n 1 "$CL_DIR/d$r.out" | sed 's/^histclient: //')"
done
cl_log "re-reading every round's keys"
for r in $(seq 1 "$rounds"); do
    while read -r _ _ key _ _ st _ res; do
        [ "$st" = ok ] || continue
        [ "$res" = % ] && res=""
        got=$(hs get --timeout 10 "$key" | sed 's/;/%3B/g')
        [ "$got" = "$res" ] || fx_fail "key $key changed after later crashes: final read of round $r saw '$res', now '$got'"
    done < <(grep "^d${r}cfinal " "$CL_DIR/d$r.hist")
done
cl_pass
