#!/usr/bin/env bash
# 70,000 new sessions cannot make a retry apply twice.  A client's append is
# applied; then 70,000 registrations (more than the 65,536 sessions kept)
# evict its session.  The retry of the append (same session and seq) is
# answered SESSION_EXPIRED and not applied; every node agrees and keeps
# serving.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
. "$CL_LIB_DIR/raw.sh"
cl_start 3
l=$(cl_wait_leader 15) || cl_fail "no leader within 15 s"

sid=$(raw register) || cl_fail "cannot register a session"
cl_expect_eq "$(raw cmd "$sid" 2 append log x)" 0 "the append"
cl_expect_eq "$(raw cmd "$sid" 2 append log x)" 0 "its retry before the flood (the stored reply)"
cl_expect_eq "$(hs get log)" x "the log before the flood"

got=$(raw_via "$l" flood 70000) || cl_fail "flood of registrations: $got answered"
cl_expect_eq "$got" 70000 "registrations answered"
cl_expect_eq "$(raw cmd "$sid" 2 append log x)" 1003 "the retry after the flood (SESSION_EXPIRED)"
cl_expect_eq "$(hs get log)" x "the log after the flood"
hs put barrier 1 || cl_fail "put after the flood: exit $?"
for i in 1 2 3; do
    cl_alive "$i" || cl_fail "node $i stopped"
    cl_wait_caught_up "$i" 30 || cl_fail "node $i does not catch up"
    cl_expect_eq "$(hs_via "$i" get log)" x "the log read via node $i"
done
cl_pass
