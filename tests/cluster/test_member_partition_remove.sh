#!/usr/bin/env bash
# Membership with a member cut off: a node is added (as a learner, then
# promoted) while one of the three members is partitioned away; then a node
# is removed while it is partitioned, so it never learns of its removal.
# When the network heals, the removed node cannot disturb the cluster: no
# member's term rises, the leader stays, and the removed node takes no
# part.  Also the leader transfer and the errors of `hstore member`.
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
. "$(dirname "$0")/lib/member.sh"
cl_in_netns "$@"
cl_init
fx_init
cl_start 3
l=$(cl_wait_leader 20) || cl_fail "no leader"
hs put a 1 >/dev/null || cl_fail "put a"

# Add node 4 while a follower is cut off: the leader and the other follower
# are a quorum of the three voters, and of the four once node 4 is promoted.
f=$(( l % 3 + 1 ))
others=""
for i in 1 2 3 4; do [ "$i" = "$f" ] || others+="$i "; done
fx_partition "$f" "$others"
mb_join 4 "$l"
mb_wait_role 4 voter 30 || fx_fail "node 4 never became a voter with node $f cut off"
hs put b 2 >/dev/null || fx_fail "no write with node $f cut off and node 4 added"
fx_heal
cl_wait_caught_up "$f" 20 || fx_fail "node $f did not catch up after the heal"

# Errors, with clear exit codes.
cl_expect_rc 2 "adding a member again at another address" hs member add 4=127.0.0.99:7100
cl_expect_rc 0 "adding a member again at the same address" hs member add "4=${CL_HOST[4]}:${CL_PORT[4]}"
cl_expect_rc 2 "removing a non-member" hs member remove 42
cl_expect_rc 2 "a bad member spec" hs member add nonsense
cl_expect_rc 2 "transfer to a non-member" hs transfer 42

# Leader transfer to node 4.
l=$(cl_wait_leader 10) || fx_fail "no leader"
if [ "$l" != 4 ]; then
    hs transfer 4 --timeout 10 >/dev/null || fx_fail "transfer to node 4 failed"
fi
l=$(cl_wait_leader 10) || fx_fail "no leader after the transfer"
[ "$l" = 4 ] || fx_fail "node $l leads after the transfer to node 4"

# Remove a follower while it is cut off: it never hears of it.
gone=$(( l % 4 + 1 ))
rest=""
for i in 1 2 3 4; do [ "$i" = "$gone" ] || rest+="$i "; done
fx_partition "$gone" "$rest"
hs member remove "$gone" --timeout 20 >/dev/null || fx_fail "removing node $gone failed"
mb_wait_role "$gone" "" 10 || fx_fail "node $gone still a member"
hs put c 3 >/dev/null || fx_fail "no write after removing node $gone"
sleep 3 # the removed node times out, again and again, alone
before=$(for i in $rest; do echo "$i=$(mb_term "$i")"; done | tr '\n' ' ')
fx_heal
cl_log "healed; terms before: $before"
sleep 6 # many election timeouts of the removed node
after=$(for i in $rest; do echo "$i=$(mb_term "$i")"; done | tr '\n' ' ')
cl_log "terms after: $after"
[ "$before" = "$after" ] || fx_fail "terms rose after the removed node $gone came back: $before -> $after"
l2=$(cl_wait_leader 10) || fx_fail "no leader after the heal"
[ "$l2" = "$l" ] || fx_fail "leader changed $l -> $l2 after the removed node came back"
# The removed node takes no part: it never leads, and is no member.
[ "$(cl_field "$gone" leader)" != "$gone" ] || fx_fail "the removed node $gone leads"
[ -z "$(mb_role "$gone")" ] || fx_fail "the removed node $gone is listed again"
hs put e 5 >/dev/null || fx_fail "no write after the removed node came back"
[ "$(hs get c)" = 3 ] || fx_fail "c lost"
cl_pass
