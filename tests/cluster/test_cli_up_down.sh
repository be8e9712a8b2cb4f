#!/usr/bin/env bash
# `hstore up` starts a local cluster in the background and says how to reach
# it; a second `up` prints its status and exits 0; client commands find it through DIR;
# `hstore down` stops it, keeps the data, and a new `up` serves it again.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
# Clients find the cluster AND its secret (DIR/secret, written by up) in DIR.
unset HSTORE_CLUSTER HSTORE_SECRET_FILE
dir=$CL_DIR/up
port=7300
stop_all() { "$HSTORE" down --dir "$dir" --wait 5 >/dev/null 2>&1; }
trap 'cl_rc=$?; stop_all; (exit $cl_rc); cl_teardown' EXIT

out=$(hs up -n 3 --dir "$dir" --base-port $port --no-mount --wait 20 2>&1) || cl_fail "up: exit $?: $out"
echo "$out" >&2
spec="1=127.0.0.1:$port,2=127.0.0.1:$((port + 2)),3=127.0.0.1:$((port + 4))"
grep -q "export HSTORE_CLUSTER=$spec" <<<"$out" || cl_fail "up did not print the export line for $spec"
cl_expect_eq "$(cat "$dir/cluster")" "$spec" "DIR/cluster"
cl_expect_eq "$(wc -l <"$dir/pids")" 3 "DIR/pids lines"
while read -r id pid; do
    cl_pid_running "$pid" || cl_fail "node $id (pid $pid) is not running"
    CL_ALL_PIDS+=("$pid")
    [ -s "$dir/$id/node.log" ] || cl_fail "node $id has no log in $dir/$id/node.log"
done <"$dir/pids"

# Again: already running, nothing changes; its status, exit 0.
before=$(cat "$dir/pids")
out2=$(hs up -n 3 --dir "$dir" --base-port $port --no-mount 2>&1)
rc=$?
cl_expect_eq "$rc" 0 "second up"
grep -q "already running" <<<"$out2" || cl_fail "second up did not say the cluster is running: $out2"
grep -q "leads" <<<"$out2" || cl_fail "second up did not print the cluster's status: $out2"
cl_expect_eq "$(cat "$dir/pids")" "$before" "pids after a second up"

[ "$(stat -c %a "$dir/secret")" = 600 ] || cl_fail "DIR/secret is not mode 600"
[ "$(tr -d '\n' <"$dir/secret" | wc -c)" = 64 ] || cl_fail "DIR/secret is not 64 hex digits"

# Clients find it through --dir / HSTORE_DIR.
HSTORE_DIR=$dir hs put greeting hello || cl_fail "put via HSTORE_DIR"
cl_expect_eq "$(hs get --dir "$dir" greeting)" hello "get via --dir"
cl_expect_eq "$(HSTORE_DIR=$dir hs status | grep -vc '^limits ')" 3 "status lines"

# down: every node stops, the data stays.
pids=$(awk '{ print $2 }' "$dir/pids")
out=$(hs down --dir "$dir" 2>&1) || cl_fail "down: exit $?"
grep -q "stopped 3 nodes" <<<"$out" || cl_fail "down said: $out"
for p in $pids; do
    cl_pid_running "$p" && cl_fail "pid $p still runs after down"
done
[ ! -e "$dir/pids" ] || cl_fail "down left $dir/pids"
cl_expect_rc 3 "get after down" env HSTORE_DIR="$dir" "$HSTORE" get greeting --timeout 1

# A different cluster in the same DIR is refused; the same one resumes.
cl_expect_rc 2 "up -n 5 over a 3-node DIR" hs up -n 5 --dir "$dir" --base-port $port --no-mount
hs up -n 3 --dir "$dir" --base-port $port --no-mount >/dev/null 2>&1 || cl_fail "second up: exit $?"
while read -r id pid; do CL_ALL_PIDS+=("$pid"); done <"$dir/pids"
cl_expect_eq "$(HSTORE_DIR=$dir hs get greeting)" hello "value after down and up"
hs down --dir "$dir" >/dev/null 2>&1 || cl_fail "down (2)"

# With FUSE mounts: up mounts every node, down unmounts them.
if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
    out=$(hs up -n 3 --dir "$dir" --base-port $port --mount-root "$CL_DIR/mnt" 2>&1) ||
        cl_fail "up with mounts: exit $?: $out"
    while read -r id pid; do CL_ALL_PIDS+=("$pid"); done <"$dir/pids"
    for i in 1 2 3; do
        CL_MOUNTS+=("$CL_DIR/mnt/$i")
        grep -qs " $CL_DIR/mnt/$i " /proc/self/mountinfo || cl_fail "node $i is not mounted at $CL_DIR/mnt/$i"
    done
    grep -q "mount $CL_DIR/mnt/1" <<<"$out" || cl_fail "up did not print the mounts"
    hs down --dir "$dir" >/dev/null 2>&1 || cl_fail "down with mounts"
    for i in 1 2 3; do
        grep -qs " $CL_DIR/mnt/$i " /proc/self/mountinfo && cl_fail "$CL_DIR/mnt/$i still mounted after down"
    done

    # A node killed -9 and started again by up: a reader that keeps reading
    # a file through that node's mount gets "Transport endpoint is not
    # connected" until the new mount is up, then the file; never the file of
    # the same name in the bare directory under the mount.
    echo bare >"$CL_DIR/mnt/3/f"
    hs up -n 3 --dir "$dir" --base-port $port --mount-root "$CL_DIR/mnt" >/dev/null 2>&1 ||
        cl_fail "up with mounts (2): exit $?"
    while read -r id pid; do CL_ALL_PIDS+=("$pid"); done <"$dir/pids"
    echo store >"$CL_DIR/mnt/1/f" || cl_fail "write through mount 1"
    for round in 1 2 3; do
        stop=$CL_DIR/stop_reader
        rm -f "$stop"
        (while [ ! -e "$stop" ]; do cat "$CL_DIR/mnt/3/f" 2>/dev/null; done >"$CL_DIR/reads") &
        rpid=$!; CL_ALL_PIDS+=("$rpid")
        sleep 0.3
        p3=$(awk '$1 == 3 { print $2 }' "$dir/pids")
        kill -9 "$p3"
        sleep 1
        hs up -n 3 --dir "$dir" --base-port $port --mount-root "$CL_DIR/mnt" >/dev/null 2>&1 ||
            cl_fail "up after kill -9 of node 3: exit $?"
        while read -r id pid; do CL_ALL_PIDS+=("$pid"); done <"$dir/pids"
        sleep 0.5
        : >"$stop"
        wait "$rpid"
        grep -q '^store$' "$CL_DIR/reads" || cl_fail "round $round: the reader never read the file"
        ! grep -q '^bare$' "$CL_DIR/reads" || cl_fail "round $round: a reader reached the bare directory under node 3's mount while it restarted"
    done
    hs down --dir "$dir" >/dev/null 2>&1 || cl_fail "down with mounts (2)"
fi
cl_pass
