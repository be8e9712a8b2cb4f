#!/usr/bin/env bash
# 6.824 (2017) lab 2 TestRejoin2B, black box: 3 nodes, one key r.
# append 101 on all; leader L1 cut off; a client that reaches only L1 appends
# x102, x103, x104 (they must not be acknowledged: L1 has no quorum); the
# other two append 103; their leader L2 is cut off and L1 rejoins the
# remaining node: append 104 (L1's divergent uncommitted entries must be
# overwritten: the other node's newer log wins); all rejoin: append 105.
# Every node must then read the same value: 101.103. first (the cut-off
# leader's entries never committed in place), then 104. and 105.; x-tokens,
# whose outcome the client saw as unknown, may follow 103. at most once each.
# The history of every operation (the refused ones as unknown) goes through
# lincheck.
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
H=$CL_DIR/rejoin.hist
cl_start 3 --op-timeout-ms 2000
l1=$(fx_wait_leader_among "1 2 3" 15) || fx_fail "no leader within 15 s"
fx_rec "$H" ck append r "101." hs append --timeout 10 r "101." || fx_fail "append 101: exit $FX_RC"

fx_isolate "$l1"
fx_cut_client 127.0.0.101 "$(for i in 1 2 3; do [ "$i" = "$l1" ] || echo "$i"; done)"
S=$(fx_src_spec 127.0.0.101)
iso_pids=""
for v in 102 103 104; do
    ( fx_rec "$CL_DIR/iso$v.hist" cki$v append r "x$v." hs append --cluster "$S" --timeout 3 r "x$v."
      echo "$FX_RC" >"$CL_DIR/iso$v.rc" ) &
    CL_ALL_PIDS+=($!); iso_pids+=" $!"
done
fx_rec "$H" ck append r "103." hs append --timeout 10 r "103." || fx_fail "append 103 with two of three nodes: exit $FX_RC"
rest=$(for i in 1 2 3; do [ "$i" = "$l1" ] || echo -n "$i "; done)
l2=$(fx_wait_leader_among "$rest" 5) || fx_fail "no leader among [$rest]"
wait $iso_pids
for v in 102 103 104; do
    rc=$(cat "$CL_DIR/iso$v.rc")
    [ "$rc" = 0 ] && fx_fail "the cut-off leader $l1 acknowledged append x$v"
    cat "$CL_DIR/iso$v.hist" >>"$H"
done
cl_log "cut-off leader $l1 acknowledged none of x102..x104 (exits: $(cat "$CL_DIR"/iso*.rc | tr '\n' ' '))"

third=$(for i in $rest; do [ "$i" = "$l2" ] || echo "$i"; done)
fx_clear_client_rules
fx_partition "$l2" "$l1 $third"
fx_rec "$H" ck append r "104." hs append --timeout 15 r "104." || fx_fail "append 104 with nodes $l1 and $third: exit $FX_RC"
fx_heal
fx_rec "$H" ck append r "105." hs append --timeout 15 r "105." || fx_fail "append 105 with all nodes: exit $FX_RC"
for i in 1 2 3; do
    cl_wait_caught_up "$i" 10 || fx_fail "node $i did not catch up"
    fx_rec "$H" ck$i get r - hs_via "$i" get --timeout 10 r || fx_fail "get through node $i: exit $FX_RC"
    [ $i = 1 ] && v1=$FX_OUT
    fx_expect_eq "$FX_OUT" "$v1" "value of r through node $i (node 1 read '$v1')"
done
# The entries L1 took while cut off were never committed where L1 put them
# (right after 101): the other nodes' newer log won.  The client gave up on
# them (outcome unknown), so the cluster may still apply them later — after
# 103, each at most once — if the request reaches a leader again (a node
# forwards requests it holds once it learns the new leader).
case $v1 in
    101.103.*) ;;
    *) fx_fail "r is '$v1': entries of the cut-off leader survived in its old log position (want 101.103. first)" ;;
esac
fx_expect_eq "$(printf %s "$v1" | tr '.' '\n' | grep -v '^x' | tr '\n' '.')" "101.103.104.105." "acknowledged appends in r ('$v1')"
for v in 102 103 104; do
    [ "$(printf %s "$v1" | tr '.' '\n' | grep -c "^x$v\$")" -le 1 ] || fx_fail "x$v applied twice: r is '$v1'"
done
[ "$v1" = "101.103.104.105." ] || cl_log "note: appends the cut-off leader held were applied later: r is '$v1'"
fx_check_one_leader_per_term
fx_lincheck "$H"
cl_pass
