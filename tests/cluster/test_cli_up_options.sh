#!/usr/bin/env bash
# `hstore up` remembers how a cluster was started: a plain `up` after `down`
# mounts at the recorded --mount-root again and passes the recorded node
# options; an option that differs from a running cluster's is refused, naming
# it; `up` on a healthy running cluster prints its status and exits 0; a
# node killed -9 twice and restarted leaves one dead mount under its new one,
# not two; `down` after a node was killed -9 leaves no dead mount behind.  The
# mount root has a space in its name (the kernel writes it \040 in
# /proc/self/mountinfo).
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
unset HSTORE_CLUSTER
[ -e /dev/fuse ] && command -v fusermount3 >/dev/null || cl_fail "this test needs FUSE (/dev/fuse, fusermount3)"
dir=$CL_DIR/up
mnt="$CL_DIR/mount root"
port=7400
for i in 1 2 3; do CL_MOUNTS+=("$mnt/$i"); done
stop_all() { "$HSTORE" down --dir "$dir" --wait 5 >/dev/null 2>&1; }
trap 'cl_rc=$?; stop_all; (exit $cl_rc); cl_teardown' EXIT
track_pids() { while read -r id pid; do CL_ALL_PIDS+=("$pid"); done <"$dir/pids"; }
mounted() { cl_mounted "$1"; }
# mounts_at PATH: how many mounts /proc/self/mountinfo shows at PATH.
mounts_at() {
    local esc=${1// /\\040}
    grep -cF " $esc " /proc/self/mountinfo
}
# wait_file PATH WANT: PATH holds WANT within 30 s (a mount may take a moment to serve).
wait_file() {
    local end=$(( $(cl_now_ms) + 30000 ))
    until [ "$(cat "$1" 2>/dev/null)" = "$2" ]; do
        [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "$1 does not hold '$2' within 30 s: '$(cat "$1" 2>&1)'"
        sleep 0.1
    done
}

out=$(hs up -n 3 --dir "$dir" --base-port $port --mount-root "$mnt" --op-timeout-ms 7000 \
      --max-file-size 2m --election-ticks 12 --wait 30 2>&1) || cl_fail "first up: exit $?: $out"
track_pids
for i in 1 2 3; do mounted "$mnt/$i" || cl_fail "node $i is not mounted at $mnt/$i"; done
grep -q "^mount-root = $mnt\$" "$dir/options" || cl_fail "DIR/options lacks the mount root: $(cat "$dir/options")"
grep -q "^max-file-size = 2097152\$" "$dir/options" || cl_fail "DIR/options lacks max-file-size"
# The node options reach the nodes.
pid1=$(awk '$1 == 1 { print $2 }' "$dir/pids")
tr '\0' ' ' </proc/"$pid1"/cmdline | grep -q -- "--op-timeout-ms 7000 --max-file-size 2097152 --election-ticks 12" ||
    cl_fail "node 1 was not given the node options: $(tr '\0' ' ' </proc/"$pid1"/cmdline)"
echo hello >"$mnt/1/greeting" || cl_fail "write through the mount"
head -c 3000000 /dev/zero >"$mnt/1/big" 2>/dev/null && cl_fail "a 3 MB file passed --max-file-size 2m"

# Up twice on the healthy cluster: its status, exit 0, nothing restarted.
before=$(cat "$dir/pids")
out=$(hs up --dir "$dir" 2>&1) || cl_fail "up on the running cluster: exit $?: $out"
echo "$out" >&2
grep -q "already running" <<<"$out" || cl_fail "up on the running cluster did not say so: $out"
grep -q "mount $mnt/2" <<<"$out" || cl_fail "up on the running cluster did not print the mounts at $mnt"
cl_expect_eq "$(cat "$dir/pids")" "$before" "pids after up on a running cluster"
# The same options given again are not a difference.
hs up --dir "$dir" --mount-root "$mnt" --max-file-size 2M >/dev/null 2>&1 ||
    cl_fail "up with the recorded options again: exit $?"

# A different explicit option on the running cluster is refused, named.
out=$(hs up --dir "$dir" --mount-root "$CL_DIR/other" 2>&1)
cl_expect_eq "$?" 2 "up with another --mount-root while running"
grep -q -- "--mount-root" <<<"$out" || cl_fail "the refusal does not name --mount-root: $out"
out=$(hs up --dir "$dir" --op-timeout-ms 9000 2>&1)
cl_expect_eq "$?" 2 "up with another --op-timeout-ms while running"
grep -q -- "--op-timeout-ms" <<<"$out" || cl_fail "the refusal does not name --op-timeout-ms: $out"
out=$(hs up --dir "$dir" --snapshot-threshold 1m 2>&1)
cl_expect_eq "$?" 2 "up with a --snapshot-threshold the cluster was started without"
grep -q -- "--snapshot-threshold" <<<"$out" || cl_fail "the refusal does not name --snapshot-threshold: $out"
[ -e "$CL_DIR/other" ] && cl_fail "a refused up created $CL_DIR/other"

# Down, then a plain up: mounted at the recorded root again, same options.
hs down --dir "$dir" >/dev/null 2>&1 || cl_fail "down: exit $?"
for i in 1 2 3; do mounted "$mnt/$i" && cl_fail "$mnt/$i still mounted after down"; done
out=$(env -u HSTORE_DIR "$HSTORE" up --dir "$dir" --wait 30 2>&1) || cl_fail "plain up: exit $?: $out"
track_pids
echo "$out" >&2
for i in 1 2 3; do mounted "$mnt/$i" || cl_fail "after a plain up node $i is not mounted at $mnt/$i"; done
mounted /mnt/hstore/1 && grep -q "/mnt/hstore/1" "$dir/mounts" && cl_fail "plain up mounted at the default root"
grep -q "mount $mnt/1" <<<"$out" || cl_fail "plain up did not print the mounts at $mnt: $out"
wait_file "$mnt/3/greeting" hello
pid1=$(awk '$1 == 1 { print $2 }' "$dir/pids")
tr '\0' ' ' </proc/"$pid1"/cmdline | grep -q -- "--op-timeout-ms 7000" ||
    cl_fail "plain up did not pass the recorded node options"

# kill_node ID: kill -9 node ID and wait (up to 10 s) until it is gone.
kill_node() {
    local pid end
    pid=$(awk -v id="$1" '$1 == id { print $2 }' "$dir/pids")
    kill -9 "$pid"
    end=$(( $(cl_now_ms) + 10000 ))
    while cl_pid_running "$pid" && [ "$(cl_now_ms)" -lt "$end" ]; do sleep 0.05; done
}

# A node killed -9 leaves a dead mount; a plain up restarts it at its place.
kill_node 2
out=$(hs up --dir "$dir" --wait 30 2>&1) || cl_fail "up after kill -9 of node 2: exit $?: $out"
track_pids
grep -q "restarted 1 of the 3" <<<"$out" || cl_fail "up did not restart just node 2: $out"
wait_file "$mnt/2/greeting" hello
# Again: the new mount goes on top of the dead one, and the dead one of the
# first kill is detached first, so they do not pile up.
kill_node 2
out=$(hs up --dir "$dir" --wait 30 2>&1) || cl_fail "second up after kill -9 of node 2: exit $?: $out"
track_pids
wait_file "$mnt/2/greeting" hello
n=$(mounts_at "$mnt/2")
[ "$n" -le 2 ] || cl_fail "$n mounts at $mnt/2 after two kills and restarts: dead mounts pile up"
cl_expect_eq "$(grep -c "^$mnt/" "$dir/mounts")" 3 "recorded mounts under $mnt"

# Down after a kill -9: every recorded mount goes, dead or alive.
kill_node 3
mounted "$mnt/3" || cl_fail "expected a dead mount at $mnt/3 after kill -9"
hs down --dir "$dir" >/dev/null 2>&1 || cl_fail "down after kill -9: exit $?"
for i in 1 2 3; do mounted "$mnt/$i" && cl_fail "$mnt/$i still mounted after down (node 3 was killed -9)"; done
cl_pass
