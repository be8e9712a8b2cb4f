#!/usr/bin/env bash
# The same append sent twice by a retrying client (same client id and seq)
# lands once; the same holds when the leader dies while appends are running.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
cl_start 3
cl_wait_leader 15 >/dev/null || cl_fail "no leader within 15 s"

# --test-resend: the client sends the command, gets its reply, then sends the
# very same (client id, seq) again, as after a lost reply.
hs put log "" || cl_fail "put log"
for k in 1 2 3 4 5; do
    hs append --test-resend log "<$k>" || cl_fail "append --test-resend <$k>: exit $?"
done
cl_expect_eq "$(hs get log)" "<1><2><3><4><5>" "appends resent with the same id"
# The resend also works through a follower.
l=$(cl_leader)
f=1; [ "$l" = 1 ] && f=2
hs_via "$f" append --test-resend log "<f>" || cl_fail "resend through follower $f"
cl_expect_eq "$(hs get log)" "<1><2><3><4><5><f>" "resend through a follower"

# Appends racing a leader crash: every append that exited 0 is there exactly
# once; an append that exited 3 (outcome unknown) is there at most once.
hs put race "" || cl_fail "put race"
(
    for k in $(seq 1 60); do
        hs append race "<$k>" --timeout 10 2>/dev/null
        echo "$k $?"
    done
) >"$CL_DIR/race.rc" &
appender=$!
sleep 0.5
l=$(cl_leader)
[ -n "$l" ] && cl_kill "$l"
wait "$appender"
cl_wait_leader 10 >/dev/null || cl_fail "no leader after the crash"
v=$(hs get race) || cl_fail "get race"
while read -r k rc; do
    n=$(grep -o "<$k>" <<<"$v" | wc -l)
    if [ "$rc" = 0 ]; then
        cl_expect_eq "$n" 1 "copies of acknowledged append <$k>"
    else
        [ "$n" -le 1 ] || cl_fail "append <$k> (exit $rc) landed $n times"
    fi
done <"$CL_DIR/race.rc"
cl_expect_eq "$(wc -l <"$CL_DIR/race.rc")" 60 "appends run"
cl_pass
