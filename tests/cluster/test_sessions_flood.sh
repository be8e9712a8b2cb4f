#!/usr/bin/env bash
# 70,000 new sessions cannot make a retry apply twice.  A client's append is
# applied; then 70,000 registrations (more than the 65,536 sessions kept)
# evict its session.  The retry of the append (same session and seq) is
# answered SESSION_EXPIRED and not applied; every node agrees and keeps
# serving.  A shell whose session was evicted reports "session expired" for
# its next command and goes on with a new session.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
. "$CL_LIB_DIR/raw.sh"
cl_start 3
l=$(cl_wait_leader 15) || cl_fail "no leader within 15 s"

# A long-lived client (the shell) with a session of its own.
mkfifo "$CL_DIR/sh.in"
hs shell <"$CL_DIR/sh.in" >"$CL_DIR/sh.out" 2>"$CL_DIR/sh.err" &
shpid=$!
CL_ALL_PIDS+=("$shpid")
exec 7>"$CL_DIR/sh.in"
echo "APPEND shlog a" >&7
end=$(($(cl_now_ms) + 10000))
until [ "$(hs get shlog 2>/dev/null)" = a ]; do
    [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "the shell's first append did not land"
    sleep 0.1
done

sid=$(raw register) || cl_fail "cannot register a session"
cl_expect_eq "$(raw cmd "$sid" 2 append log x)" 0 "the append"
cl_expect_eq "$(raw cmd "$sid" 2 append log x)" 0 "its retry before the flood (the stored reply)"
cl_expect_eq "$(hs get log)" x "the log before the flood"

got=$(raw_via "$l" flood 70000) || cl_fail "flood of registrations: $got answered"
cl_expect_eq "$got" 70000 "registrations answered"
# Through the node that answered the flood: a node answers a retry from the
# sessions it has applied, and a follower may not have applied the flood yet.
cl_expect_eq "$(raw_via "$l" cmd "$sid" 2 append log x)" 1003 "the retry after the flood (SESSION_EXPIRED)"
cl_expect_eq "$(hs get log)" x "the log after the flood"
hs put barrier 1 || cl_fail "put after the flood: exit $?"

# The shell's session was evicted too: its next command fails with a clear
# "session expired" (outcome unknown, not applied), the one after runs on a
# new session.
echo "APPEND shlog b" >&7
echo "APPEND shlog c" >&7
exec 7>&-
end=$(($(cl_now_ms) + 20000))
while kill -0 "$shpid" 2>/dev/null; do
    [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "the shell did not finish"
    sleep 0.1
done
grep -q "session expired" "$CL_DIR/sh.err" ||
    cl_fail "the shell did not report the expired session: $(cat "$CL_DIR/sh.err")"
cl_expect_eq "$(hs get shlog)" ac "the shell's appends (b refused with its expired session)"
for i in 1 2 3; do
    cl_alive "$i" || cl_fail "node $i stopped"
    cl_wait_caught_up "$i" 30 || cl_fail "node $i does not catch up"
    cl_expect_eq "$(hs_via "$i" get log)" x "the log read via node $i"
done
cl_pass
