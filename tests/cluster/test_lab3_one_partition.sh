#!/usr/bin/env bash
# 6.824 (2017) lab 3 TestOnePartition, in three named parts, with real
# processes: 5 nodes; the old leader and one follower cut off (server links)
# from the other three.  Clients are pinned to one side by their own source
# address (client ckp1 127.0.0.101 reaches only the majority; ckp2a .102 and
# ckp2b .103 only the minority).
#   progress in majority:      ckp1 puts and reads (14) while partitioned;
#   no progress in minority:   a put (15) by ckp2a and a get by ckp2b, started
#                              in the minority, are still waiting 1 s later
#                              (and while ckp1 puts 16): the deposed leader
#                              neither commits nor serves a read;
#   completion after heal:     after the heal (servers and clients) and a 1 s
#                              settle, both finish within 3 s, and the final
#                              value is 15 (the minority put applied once,
#                              after 16).
# Every operation is recorded and the history goes through lincheck.
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
H=$CL_DIR/one_partition.hist
cl_start 5
leader=$(cl_wait_leader 20) || fx_fail "no leader within 20 s"
fx_rec "$H" ck put 1 13 hs put 1 13 || fx_fail "put 1=13: exit $FX_RC"

# make_partition: p1 = three non-leaders, p2 = one non-leader + the leader.
p1="" p2=""
for i in 1 2 3 4 5; do
    [ "$i" = "$leader" ] && continue
    if [ "$(echo $p1 | wc -w)" -lt 3 ]; then p1+="$i "; else p2+="$i "; fi
done
p2+="$leader"
fx_partition "$p1" "$p2"
fx_cut_client 127.0.0.101 "$p2"
fx_cut_client 127.0.0.102 "$p1"
fx_cut_client 127.0.0.103 "$p1"
S1=$(fx_src_spec 127.0.0.101) S2A=$(fx_src_spec 127.0.0.102) S2B=$(fx_src_spec 127.0.0.103)

cl_log "part 1: progress in majority [$p1]"
t0=$(cl_now_ms)
fx_rec "$H" ckp1 put 1 14 hs put --cluster "$S1" --timeout 15 1 14 ||
    fx_fail "progress in majority: put 1=14 in the majority failed (exit $FX_RC)"
fx_rec "$H" ckp1 get 1 - hs get --cluster "$S1" --timeout 15 1 || fx_fail "get in the majority: exit $FX_RC"
fx_expect_eq "$FX_OUT" 14 "progress in majority: get after put 14"
cl_log "PASS part 1 (progress in majority) in $(( $(cl_now_ms) - t0 )) ms"

cl_log "part 2: no progress in minority [$p2]"
t0=$(cl_now_ms)
( fx_rec "$CL_DIR/p2a.hist" ckp2a put 1 15 hs put --cluster "$S2A" --timeout 20 1 15
  echo "$FX_RC $(cl_now_ms)" >"$CL_DIR/p2a.done" ) &
pa=$!; CL_ALL_PIDS+=("$pa")
( fx_rec "$CL_DIR/p2b.hist" ckp2b get 1 - hs get --cluster "$S2B" --timeout 20 1
  echo "$FX_RC $(cl_now_ms) $FX_OUT" >"$CL_DIR/p2b.done" ) &
pb=$!; CL_ALL_PIDS+=("$pb")
sleep 1
[ -e "$CL_DIR/p2a.done" ] && fx_fail "no progress in minority: the put of 15 in the minority finished: $(cat "$CL_DIR/p2a.done")"
[ -e "$CL_DIR/p2b.done" ] && fx_fail "no progress in minority: the get in the minority finished: $(cat "$CL_DIR/p2b.done")"
fx_rec "$H" ckp1 get 1 - hs get --cluster "$S1" --timeout 15 1 || fx_fail "get in the majority: exit $FX_RC"
fx_expect_eq "$FX_OUT" 14 "get in the majority while the minority put waits"
fx_rec "$H" ckp1 put 1 16 hs put --cluster "$S1" --timeout 15 1 16 || fx_fail "put 16 in the majority: exit $FX_RC"
fx_rec "$H" ckp1 get 1 - hs get --cluster "$S1" --timeout 15 1 || fx_fail "get in the majority: exit $FX_RC"
fx_expect_eq "$FX_OUT" 16 "get in the majority after put 16"
[ -e "$CL_DIR/p2a.done" ] && fx_fail "no progress in minority: the minority put finished while partitioned: $(cat "$CL_DIR/p2a.done")"
[ -e "$CL_DIR/p2b.done" ] && fx_fail "no progress in minority: the minority get finished while partitioned: $(cat "$CL_DIR/p2b.done")"
cl_log "PASS part 2 (no progress in minority) after $(( $(cl_now_ms) - t0 )) ms partitioned"

cl_log "part 3: completion after heal"
fx_heal
fx_clear_client_rules
sleep 1
healed=$(cl_now_ms)
end=$((healed + 3000))
while { [ ! -e "$CL_DIR/p2a.done" ] || [ ! -e "$CL_DIR/p2b.done" ]; } && [ "$(cl_now_ms)" -lt "$end" ]; do sleep 0.05; done
[ -e "$CL_DIR/p2a.done" ] || fx_fail "completion after heal: the minority put did not finish within 3 s after the heal + 1 s"
[ -e "$CL_DIR/p2b.done" ] || fx_fail "completion after heal: the minority get did not finish within 3 s after the heal + 1 s"
wait "$pa" "$pb"
read -r rca ta <"$CL_DIR/p2a.done"
read -r rcb tb vb <"$CL_DIR/p2b.done"
[ "$rca" = 0 ] || fx_fail "completion after heal: the minority put of 15 exited $rca"
[ "$rcb" = 0 ] || fx_fail "completion after heal: the minority get exited $rcb"
cl_log "minority put done $((ta - healed)) ms, get ('$vb') $((tb - healed)) ms after the settle"
fx_rec "$H" ck get 1 - hs get --timeout 15 1 || fx_fail "final get: exit $FX_RC"
fx_expect_eq "$FX_OUT" 15 "final value (the minority put applied once, after 16)"
cl_log "PASS part 3 (completion after heal)"
cat "$CL_DIR/p2a.hist" "$CL_DIR/p2b.hist" >>"$H"
fx_lincheck "$H"
cl_pass
