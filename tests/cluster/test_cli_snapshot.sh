#!/usr/bin/env bash
# A node that was down while the others compacted their logs (small
# --snapshot-threshold) catches up by InstallSnapshot.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
cl_start 3 --snapshot-threshold 4096
leader=$(cl_wait_leader 15) || cl_fail "no leader within 15 s"
hs put first 1 || cl_fail "put first"
# A follower goes down.
down=1; [ "$leader" = 1 ] && down=2
cl_term "$down"
# Far more than the threshold while it is away: 300 puts of 200 bytes.
val=$(head -c 200 /dev/zero | tr '\0' v)
# (A SPEC that lists a live node first: a new client tries the first node first
# and waits a whole attempt timeout when it is down.)
spec=$(cl_spec_first "$leader")
for k in $(seq 1 300); do
    HSTORE_CLUSTER=$spec hs put "s/$k" "$val$k" >/dev/null || cl_fail "put s/$k: exit $?"
done
leader=$(cl_wait_leader 5) || cl_fail "no leader"
end=$(( $(cl_now_ms) + 30000 ))
while snap=$(cl_field "$leader" snapshot); ! { [ -n "$snap" ] && [ "$snap" != unreachable ] && [ "$snap" -gt 1 ]; } &&
    [ "$(cl_now_ms)" -lt "$end" ]; do sleep 0.2; done
[ -n "$snap" ] && [ "$snap" != unreachable ] && [ "$snap" -gt 1 ] ||
    cl_fail "leader $leader has not compacted (snapshot index '$snap')"
cl_log "leader $leader compacted up to $snap; restarting node $down"

cl_restart "$down"
cl_wait_caught_up "$down" 30 || cl_fail "node $down did not catch up within 30 s"
s=$(cl_field "$down" snapshot)
[ -n "$s" ] && [ "$s" != unreachable ] && [ "$s" -ge "$snap" ] ||
    cl_fail "node $down shows snapshot index '$s', want >= $snap (the leader's when it came back)"
grep -qi 'snapshot' "$CL_DIR/$down/node.log" ||
    cl_log "note: node $down's log does not mention the snapshot (status shows index $s)"
cl_expect_eq "$(hs_via "$down" get s/300)" "${val}300" "last key through node $down"
cl_expect_eq "$(hs_via "$down" get first)" 1 "first key through node $down"
cl_expect_eq "$(hs_via "$down" ls s/ | wc -l)" 300 "keys through node $down"

# And it is a full member again: the cluster survives losing another node.
other=$(cl_wait_leader 5) || cl_fail "no leader"
victim=""
for i in 1 2 3; do
    if [ "$i" != "$down" ] && [ "$i" != "$other" ]; then victim=$i; break; fi
done
[ -n "$victim" ] || for i in 1 2 3; do [ "$i" != "$down" ] && { victim=$i; break; }; done
cl_kill "$victim"
hs put after 1 || cl_fail "put with node $down as part of the majority"
cl_expect_eq "$(hs get after)" 1 "read after losing a node"
cl_pass
