#!/usr/bin/env bash
# Forged peer frames from a process without the cluster secret change
# nothing: an APPEND_RESP with term 2^64-1, forged votes and a forged append
# (each claiming to come from a member, sent to every node, bare, MAC'ed with
# the insecure keys and with random keys) are dropped before decoding and
# counted; every node's term and commit index stay as they were and the
# cluster keeps serving.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
ATTACK=$CL_REPO/build/sec_attack
[ -x "$ATTACK" ] || cl_fail "$ATTACK not built: run make"
# A long election timeout: no election of its own during the test.
cl_start 3 --election-ticks 30
leader=$(cl_wait_leader 15) || cl_fail "no leader"
hs put before v1 || cl_fail "put before the attack"
for i in 1 2 3; do cl_wait_caught_up "$i" 20 || cl_fail "node $i did not catch up"; done

declare -a term0 commit0
for i in 1 2 3; do
    term0[$i]=$(cl_field "$i" term)
    commit0[$i]=$(cl_field "$i" commit)
    cl_log "node $i: term ${term0[$i]} commit ${commit0[$i]}"
done
[ "${term0[1]}" = "${term0[2]}" ] && [ "${term0[2]}" = "${term0[3]}" ] ||
    cl_fail "terms differ before the attack: ${term0[*]}"

for kind in term vote append; do
    for to in 1 2 3; do
        for from in 1 2 3; do
            [ "$from" = "$to" ] && continue
            "$ATTACK" forge-peer "${CL_HOST[$to]}:${CL_PORT[$to]}" "$from" "$to" "$kind" >&2 ||
                cl_fail "attack $kind $from->$to did not run"
        done
    done
done

# Every node counted the forged frames as unauthenticated.
for i in 1 2 3; do
    rej=$(cl_field "$i" auth_rejected)
    [ -n "$rej" ] && [ "$rej" != unreachable ] && [ "$rej" -gt 0 ] ||
        cl_fail "node $i did not count the forged frames (auth_rejected=$rej)"
    grep -q "refused a peer frame whose MAC does not verify" "$CL_DIR/$i/node.log" ||
        cl_fail "node $i did not log the forged frames"
done

# Nothing changed: same terms (no node adopted 2^64-1 or 2^64-2), the
# leader still leads, and the cluster serves reads and writes.
for i in 1 2 3; do
    t=$(cl_field "$i" term)
    cl_expect_eq "$t" "${term0[$i]}" "term of node $i after the forged frames"
done
cl_expect_eq "$(cl_leader)" "$leader" "leader after the forged frames"
hs put after v2 || cl_fail "put after the attack"
cl_expect_eq "$(hs get before)" v1 "get before"
cl_expect_eq "$(hs get after)" v2 "get after"
for i in 1 2 3; do
    cl_wait_caught_up "$i" 20 || cl_fail "node $i did not catch up after the attack"
    c=$(cl_field "$i" commit)
    [ "$c" -lt 1000 ] || cl_fail "node $i commit index jumped to $c (forged commit 1000)"
done
cl_pass
