# fs_lib.sh — shared pieces of the filesystem cluster tests (test_fs_*.sh):
# sources lib/cluster.sh, turns the mounts on, builds build/fs_check.
# Use:  . "$(dirname "$0")/fs_lib.sh" "$@"   then cl_start / fs_wait_mounts.
. "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"
cl_in_netns "$@"
CL_MOUNT=1
cl_init
FS_CHECK=$CL_REPO/build/fs_check
if [ ! -x "$FS_CHECK" ] || [ "$FS_CHECK" -ot "$CL_REPO/tests/cluster/fs_check.c" ]; then
    make -s -C "$CL_REPO" build/fs_check >/dev/null || cl_fail "cannot build build/fs_check"
fi
OPT_MS=3000

# fs_mnt I: node I's mount point.
fs_mnt() { echo "$CL_DIR/mnt/$1"; }

# fs_metric I NAME: node I's value of the metric NAME (the whole series name,
# labels included), from GET /metrics of a node started with
# --http 127.0.0.(10+I):7102 and the bearer token in $TOKEN; empty when the
# node does not answer.
fs_metric() {
    curl -s -m 2 -H "Authorization: Bearer $TOKEN" "http://127.0.0.$((10 + $1)):7102/metrics" |
        awk -v k="$2" '$1 == k { print $2 }'
}

# fs_start_lease_cluster: three nodes with mounts, read leases of LEASE_MS
# (set here: 500), a 3 s op timeout and their metrics on
# --http 127.0.0.(10+I):7102 (CL_NODE_ENV set before still applies); waits
# for the mounts and sets $TOKEN for fs_metric.
fs_start_lease_cluster() {
    local i
    LEASE_MS=500
    for i in 1 2 3; do CL_NODE_EXTRA[$i]="--http 127.0.0.$((10 + i)):7102"; done
    cl_start 3 --op-timeout-ms 3000 --lease-ms "$LEASE_MS"
    fs_wait_mounts 20
    TOKEN=$(hs http-token) || cl_fail "hstore http-token: exit $?"
}

# fs_wait_mounts [SECONDS]: every running node's mount answers (the control
# file is served locally, without a quorum) and the cluster has a leader.
fs_wait_mounts() {
    local secs=${1:-20} end i
    end=$(($(cl_now_ms) + secs * 1000))
    for i in $(seq 1 "$CL_N"); do
        cl_alive "$i" || continue
        until grep -qs "^id $i\$" "$(fs_mnt "$i")/.hstore/status"; do
            [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "mount of node $i not up within ${secs}s"
            sleep 0.1
        done
    done
    cl_wait_leader "$secs" >/dev/null || cl_fail "no leader within ${secs}s"
}
