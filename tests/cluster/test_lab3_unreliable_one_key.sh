#!/usr/bin/env bash
# 6.824 (2017) lab 3 TestUnreliableOneKey: concurrent appends to one key over
# an unreliable network.  3 nodes whose peer messages are lost, duplicated,
# delayed and reordered (transport fault injector); 5 client sessions each
# append 20 unique tokens (the lab: 10; long mode: 50) to the same key, and a third of
# the appends are sent twice with the same (client id, seq), as a client does
# whose reply was lost after the command ran.  Each token must appear exactly
# once, each client's in order (histclient's checks), and the history must be
# linearizable.
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
n=20; fx_mode_long && n=50
fx_unreliable
cl_start 3 --op-timeout-ms 3000
cl_wait_leader 20 >/dev/null || fx_fail "no leader within 20 s"
fx_histclient onekey --clients 5 --ops "$n" --duration-ms 60000 --keys 1 --key-prefix k \
    --mix append=100 --dup 0.33 --timeout-ms 5000
fx_histclient_verdict onekey $?
grep -q "append ok=$((5 * n)) " "$CL_DIR/onekey.out" ||
    cl_log "note: not every append was acknowledged (unknown outcomes are allowed but rare): $(tail -n 1 "$CL_DIR/onekey.out")"
cl_pass
