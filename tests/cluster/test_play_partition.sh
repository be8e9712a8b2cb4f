#!/usr/bin/env bash
# The playground's partition switch on a `hstore up` cluster: `up` records
# how it started each node (DIR/ID/cmdline, for the restart button) and
# passes --up-dir; DIR/ID/partition (what the page's partition button
# creates) cuts node ID off: a partitioned leader loses the lead, the others
# elect a new one and commit without it; removing the file (heal) lets it
# catch up.  The page's HTTP routes themselves are in test_play_browser.sh.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
unset HSTORE_CLUSTER HSTORE_SECRET_FILE
dir=$CL_DIR/up
port=7400
stop_all() { "$HSTORE" down --dir "$dir" --wait 5 >/dev/null 2>&1; }
trap 'cl_rc=$?; stop_all; (exit $cl_rc); cl_teardown' EXIT

out=$(hs up -n 3 --dir "$dir" --base-port $port --no-mount --wait 20 2>&1) || cl_fail "up: exit $?: $out"
while read -r id pid; do CL_ALL_PIDS+=("$pid"); done <"$dir/pids"
export HSTORE_DIR=$dir
CL_N=3

for i in 1 2 3; do
    f=$dir/$i/cmdline
    [ -f "$f" ] || cl_fail "up did not record $f"
    cl_expect_eq "$(stat -c %a "$f")" 600 "mode of $f"
    args=$(tr '\0' ' ' <"$f")
    case "$args" in
    "hstore node --id $i "*"--up-dir $dir "*) ;;
    *) cl_fail "$f holds: $args" ;;
    esac
done

old=$(cl_wait_leader 20) || cl_fail "no leader"
hs put before-partition 1 || cl_fail "put before the partition"
cl_log "partitioning the leader, node $old"
touch "$dir/$old/partition"
new=$(cl_wait_leader 30 "$old") || cl_fail "no new leader while node $old is cut off"
cl_log "node $new leads; node $old is cut off"
grep -q "partition switch on" "$dir/$old/node.log" || cl_fail "node $old did not log the switch"
hs put during-partition 2 || cl_fail "put during the partition"
c_new=$(cl_field "$new" commit)
c_old=$(cl_field "$old" commit)
[ -n "$c_old" ] && [ "$c_old" != unreachable ] || cl_fail "the cut-off node's client port does not answer: '$c_old'"
[ "$c_old" -lt "$c_new" ] || cl_fail "node $old committed $c_old >= $c_new while cut off"

cl_log "healing node $old"
rm "$dir/$old/partition"
cl_wait_caught_up "$old" 30 || cl_fail "node $old did not catch up after the heal"
grep -q "partition switch off" "$dir/$old/node.log" || cl_fail "node $old did not log the heal"
cl_expect_eq "$(hs get during-partition)" 2 "value written during the partition"
cl_pass
