#!/usr/bin/env bash
# Nothing a client sends can stop a replica.  With --max-file-size 64G, a
# TRUNCATE to 64 GB and then a GET wrapped as a command (whose reply would be
# the whole 64 GB file, built by every replica at every replay) used to kill
# all three nodes, for good.  Now the read is refused before it is proposed,
# through every node; every node stays up and serving, also after all of them
# restart.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
. "$CL_LIB_DIR/raw.sh"
cl_start 3 --max-file-size 64G
cl_wait_leader 15 >/dev/null || cl_fail "no leader within 15 s"

sid=$(raw register) || cl_fail "cannot register a session"
hs put big x || cl_fail "put big"
cl_expect_eq "$(raw cmd "$sid" 2 truncate big $((64 << 30)))" 0 "TRUNCATE to 64 GB as a command"
seq=3
for i in 1 2 3; do
    cl_expect_eq "$(raw_via "$i" cmd "$sid" "$seq" get big)" refused "GET as a command via node $i"
    seq=$((seq + 1))
done

check_all_serving() {
    local what=$1 i
    for i in 1 2 3; do
        cl_alive "$i" || cl_fail "$what: node $i stopped"
    done
    cl_wait_leader 15 >/dev/null || cl_fail "$what: no leader"
    for i in 1 2 3; do
        hs_via "$i" put "after/$i" "v$i" || cl_fail "$what: put via node $i: exit $?"
        cl_wait_caught_up "$i" 20 || cl_fail "$what: node $i does not catch up"
        for j in 1 2 3; do
            cl_expect_eq "$(hs_via "$j" get "after/$i")" "v$i" "$what: after/$i read via node $j"
        done
        # the 64 GB file is there, sparse (no node allocated it)
        hs_via "$i" ls big | grep -qx big || cl_fail "$what: big missing via node $i"
    done
}
check_all_serving "after the poison requests"

for i in 1 2 3; do cl_kill "$i"; done
for i in 1 2 3; do cl_start_node "$i"; done
check_all_serving "after a restart of every node"
for i in 1 2 3; do
    grep -q "fatal" "$CL_DIR/$i/node.log" && cl_fail "node $i logged a fatal error"
done
cl_pass
