#!/usr/bin/env bash
# `hstore up -n 5` on a running 3-node local cluster adds nodes 4 and 5 (they
# join, catch up and become voters); `hstore up -n 3` asks before removing
# them (and without a terminal wants --yes), then removes and stops them.
# The data stays readable throughout, and a `down`/`up` of the grown cluster
# serves it again.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
unset HSTORE_CLUSTER HSTORE_SECRET_FILE
dir=$CL_DIR/up
export HSTORE_DIR=$dir
port=7300
stop_all() { "$HSTORE" down --dir "$dir" --wait 5 >/dev/null 2>&1; }
trap 'cl_rc=$?; stop_all; (exit $cl_rc); cl_teardown' EXIT
track() { while read -r _ pid; do CL_ALL_PIDS+=("$pid"); done <"$dir/pids"; }

hs up -n 3 --dir "$dir" --base-port $port --no-mount --snapshot-threshold 16K --wait 20 \
    >/dev/null 2>&1 || cl_fail "up -n 3"
track
for k in $(seq 1 100); do hs put "k$k" "v$k" >/dev/null || cl_fail "put k$k"; done

out=$(hs up -n 5 --dir "$dir" 2>&1) || cl_fail "up -n 5: exit $?: $out"
echo "$out" | sed 's/^/#   /' >&2
track
cl_expect_eq "$(hs member list | awk '$3 == "voter"' | wc -l)" 5 "voters after up -n 5"
cl_expect_eq "$(wc -l <"$dir/pids")" 5 "DIR/pids lines after up -n 5"
grep -q "^5=127.0.0.1:$((port + 8))" <(tr ',' '\n' <"$dir/cluster") || cl_fail "DIR/cluster lacks node 5"
[ "$(HSTORE_CLUSTER="5=127.0.0.1:$((port + 8))" hs get k100)" = v100 ] || cl_fail "node 5 lacks k100"

# Shrinking asks; without a terminal it wants --yes and changes nothing.
cl_expect_rc 2 "up -n 3 without --yes and without a terminal" hs up -n 3 --dir "$dir" </dev/null
cl_expect_eq "$(hs member list | wc -l)" 5 "members after a refused shrink"
out=$(hs up -n 3 --dir "$dir" --yes 2>&1) || cl_fail "up -n 3 --yes: exit $?: $out"
echo "$out" | sed 's/^/#   /' >&2
cl_expect_eq "$(hs member list | wc -l)" 3 "members after up -n 3 --yes"
cl_expect_eq "$(wc -l <"$dir/pids")" 3 "DIR/pids lines after the shrink"
hs put after shrink >/dev/null || cl_fail "put after the shrink"
[ "$(hs get k50)" = v50 ] || cl_fail "k50 lost"

# Grow again, stop everything, start it again: the joined node comes back
# from its data directory.
hs up -n 4 --dir "$dir" >/dev/null 2>&1 || cl_fail "up -n 4"
track
hs down --dir "$dir" --wait 10 >/dev/null 2>&1 || cl_fail "down"
hs up --dir "$dir" --wait 20 >/dev/null 2>&1 || cl_fail "up after down"
track
cl_expect_eq "$(hs member list | awk '$3 == "voter"' | wc -l)" 4 "voters after down and up"
[ "$(hs get after)" = shrink ] || cl_fail "'after' lost after down and up"
cl_pass
