# cluster.sh — shell helpers for hstore's cluster tests: real `hstore node`
# processes on loopback, started, killed, paused and restarted by the test.
#
# Use from a test script:
#
#   #!/usr/bin/env bash
#   . "$(dirname "$0")/lib/cluster.sh"
#   cl_in_netns "$@"          # optional: re-run inside a private network namespace
#   cl_init
#   cl_start 3                # nodes 1..3, node args may follow: cl_start 3 --snapshot-threshold 4096
#   leader=$(cl_wait_leader 10) || cl_fail "no leader"
#   hs put k v                # the hstore binary, with HSTORE_CLUSTER set to the test cluster
#                             # and HSTORE_SECRET_FILE to its secret
#   cl_kill "$leader"; cl_restart "$leader"
#   cl_pass
#
# Addresses.  Inside a private network namespace (cl_in_netns; needs root and
# unshare) node i listens on 127.0.0.(10+i) port 7100/7101, so iptables rules
# can name a node by its address without touching the host's networking.
# Otherwise every node uses 127.0.0.1 with its own ports (a random free range).
#
# Teardown (an EXIT trap set by cl_init): kills every process the test started
# (SIGCONT first, so that paused ones die too), unmounts every mount it made
# (fusermount3 -u, then -uz), prints the end of each node's log when the test
# failed, and removes the temporary directory (kept when CL_KEEP=1).
#
# The cluster secret.  cl_init writes a fresh one to $CL_DIR/secret (mode
# 0600) and exports HSTORE_SECRET_FILE, so every node (--secret-file) and
# every client of the test (hstore, histclient, ...) authenticates with it.
#
# Everything waits with a deadline; nothing here sleeps unbounded.

set -u

CL_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CL_REPO=$(cd "$CL_LIB_DIR/../../.." && pwd)
HSTORE=${HSTORE:-$CL_REPO/bin/hstore}
CL_MODE=${HSTORE_TEST_MODE:-normal}
CL_NAME=$(basename "$0" .sh)

CL_DIR=""
CL_N=0
CL_SPEC=""
CL_NETNS=${CL_NETNS:-0}
CL_MOUNT=${CL_MOUNT:-0}      # 1: each node mounts its filesystem at $CL_DIR/mnt/ID
declare -a CL_PID=()         # CL_PID[i]: pid of node i ("" when not running)
declare -a CL_UNDERLAY=()    # CL_UNDERLAY[i]: 1 once node i's mount point is set up
declare -a CL_HOST=() CL_PORT=()
declare -a CL_NODE_ARGS=()   # extra arguments of every node
declare -a CL_NODE_EXTRA=()  # CL_NODE_EXTRA[i]: extra arguments of node i only (words)
declare -a CL_NODE_ENV=()    # CL_NODE_ENV[i]: VAR=VALUE words for node i's environment
declare -a CL_NODE_NOSPEC=() # CL_NODE_NOSPEC[i]=1: node i starts without --cluster
declare -a CL_ALL_PIDS=()    # every pid ever started (for teardown)
declare -a CL_MOUNTS=()      # every mount point used
CL_FAILED=1                  # cleared by cl_pass
CL_SECRET=""                 # the cluster secret file (cl_init)

cl_log() { printf '# %s %s: %s\n' "$(date +%H:%M:%S.%3N)" "$CL_NAME" "$*" >&2; }

cl_fail() {
    printf 'FAIL %s: %s\n' "$CL_NAME" "$*" >&2
    exit 1
}

cl_pass() {
    CL_FAILED=0
    printf 'PASS %s\n' "$CL_NAME"
    exit 0
}

cl_now_ms() { date +%s%3N; }

# cl_in_netns "$@": re-runs the calling script under `unshare -n` with the
# loopback interface up, when possible (root, unshare, ip).  Inside, CL_NETNS=1.
# Outside (not possible), the script goes on in the host namespace on 127.0.0.1.
cl_in_netns() {
    if [ "$CL_NETNS" = 1 ]; then
        ip link set lo up || cl_fail "cannot bring lo up in the network namespace"
        return 0
    fi
    if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null &&
        unshare -n true 2>/dev/null; then
        CL_NETNS=1 exec unshare -n -- env CL_NETNS=1 bash "$0" "$@"
    fi
    cl_log "no private network namespace (needs root and unshare): using 127.0.0.1"
    CL_NETNS=0
}

# True when running inside a private network namespace (iptables allowed).
cl_have_netns() { [ "$CL_NETNS" = 1 ]; }

cl_init() {
    [ -x "$HSTORE" ] || cl_fail "$HSTORE not built: run make"
    CL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hstore-$CL_NAME.XXXXXX") || cl_fail "mktemp"
    export HSTORE_DIR=$CL_DIR          # never touch the user's ~/.hstore
    trap cl_teardown EXIT
    CL_SECRET=$CL_DIR/secret
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$CL_SECRET" && echo >>"$CL_SECRET") ||
        cl_fail "cannot write the cluster secret"
    export HSTORE_SECRET_FILE=$CL_SECRET
    trap 'exit 130' INT TERM
}

# cl_mounted PATH: something is mounted at PATH (/proc/self/mountinfo
# writes a space in a path as \040).
cl_mounted() {
    local esc=${1//\\/\\134}
    esc=${esc// /\\040}
    grep -qsF " $esc " /proc/self/mountinfo
}

cl_teardown() {
    local rc=$? pid m i
    trap - EXIT
    for pid in "${CL_ALL_PIDS[@]+"${CL_ALL_PIDS[@]}"}"; do
        kill -CONT "$pid" 2>/dev/null
        kill -9 "$pid" 2>/dev/null
    done
    for pid in "${CL_ALL_PIDS[@]+"${CL_ALL_PIDS[@]}"}"; do
        wait "$pid" 2>/dev/null
    done
    local layer
    for m in "${CL_MOUNTS[@]+"${CL_MOUNTS[@]}"}"; do
        for layer in $(seq 1 32); do # the node's mount, dead ones of killed nodes under it, the underlay
            cl_mounted "$m" || break
            fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null ||
                umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
        done
    done
    if [ "$CL_FAILED" = 1 ] && [ -n "$CL_DIR" ]; then
        for i in $(seq 1 "$CL_N"); do
            if [ -f "$CL_DIR/$i/node.log" ]; then
                echo "---- last lines of node $i's log ($CL_DIR/$i/node.log)" >&2
                tail -n 25 "$CL_DIR/$i/node.log" >&2
            fi
        done
        [ "$rc" = 0 ] && rc=1
    fi
    if [ -n "$CL_DIR" ] && [ "${CL_KEEP:-0}" != 1 ]; then
        rm -rf "$CL_DIR"
    elif [ -n "$CL_DIR" ]; then
        echo "# kept $CL_DIR" >&2
    fi
    exit "$rc"
}

# A free range of 2*n ports on 127.0.0.1 (host namespace only).
cl_pick_base_port() {
    local n=$1 base p busy tries=0
    while [ $tries -lt 50 ]; do
        base=$((20000 + (RANDOM % 4000) * 10))
        busy=0
        for p in $(seq "$base" $((base + 2 * n))); do
            if ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then busy=1; break; fi
        done
        [ $busy = 0 ] && { echo "$base"; return 0; }
        tries=$((tries + 1))
    done
    cl_fail "no free port range found"
}

# cl_start N [node args...]: starts nodes 1..N of a new cluster.
# CL_START_ONLY="I J ...": start only those nodes now (the others later, with
# cl_start_node).
cl_start() {
    local n=$1 i base
    shift
    CL_N=$n
    CL_NODE_ARGS=("$@")
    [ "$CL_NETNS" = 1 ] || base=$(cl_pick_base_port "$n")
    CL_SPEC=""
    for i in $(seq 1 "$n"); do
        if [ "$CL_NETNS" = 1 ]; then
            CL_HOST[$i]=127.0.0.$((10 + i))
            CL_PORT[$i]=7100
        else
            CL_HOST[$i]=127.0.0.1
            CL_PORT[$i]=$((base + 2 * (i - 1)))
        fi
        CL_SPEC+="${CL_SPEC:+,}$i=${CL_HOST[$i]}:${CL_PORT[$i]}"
    done
    export HSTORE_CLUSTER=$CL_SPEC
    echo "$CL_SPEC" >"$CL_DIR/cluster"
    cl_log "cluster $CL_SPEC"
    for i in ${CL_START_ONLY:-$(seq 1 "$n")}; do cl_start_node "$i"; done
}

# cl_start_node I: starts node I (again) from its data directory.
cl_start_node() {
    local i=$1
    local -a margs=()
    mkdir -p "$CL_DIR/$i"
    if [ "$CL_MOUNT" = 1 ]; then
        if [ -z "${CL_UNDERLAY[$i]:-}" ]; then
            mkdir -p "$CL_DIR/mnt/$i"
            # Under the mount, a read-only empty filesystem: while a killed
            # node's dead mount is replaced, a client that reaches the bare
            # directory gets EROFS or ENOENT instead of writing to the local
            # disk (which the history would count as a write to the store).
            [ "$(id -u)" = 0 ] &&
                mount -t tmpfs -o ro,size=4k,mode=0555 hstore-underlay "$CL_DIR/mnt/$i" 2>/dev/null
            CL_UNDERLAY[$i]=1
            CL_MOUNTS+=("$CL_DIR/mnt/$i")
        fi
        margs=(--mount "$CL_DIR/mnt/$i")
    fi
    local -a extra=() envs=()
    read -ra extra <<<"${CL_NODE_EXTRA[$i]:-}"
    read -ra envs <<<"${CL_NODE_ENV[$i]:-}"
    local -a spec=(--cluster "$CL_SPEC")
    if [ "${CL_NODE_NOSPEC[$i]:-0}" = 1 ]; then
        spec=() # a restart that reads its members from DIR
    fi
    echo "==== start $(date +%H:%M:%S.%3N)" >>"$CL_DIR/$i/node.log"
    env "${envs[@]+"${envs[@]}"}" "$HSTORE" node --id "$i" "${spec[@]+"${spec[@]}"}" --data "$CL_DIR/$i" \
        --secret-file "$CL_SECRET" \
        "${margs[@]+"${margs[@]}"}" "${CL_NODE_ARGS[@]+"${CL_NODE_ARGS[@]}"}" \
        "${extra[@]+"${extra[@]}"}" >>"$CL_DIR/$i/node.log" 2>&1 &
    CL_PID[$i]=$!
    CL_ALL_PIDS+=($!)
}

cl_restart() { cl_start_node "$1"; }

# cl_pid_running PID: the process exists and is not a zombie (a process whose
# parent exited is reaped by init, perhaps not at once).
cl_pid_running() {
    [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

cl_alive() { [ -n "${CL_PID[$1]:-}" ] && kill -0 "${CL_PID[$1]}" 2>/dev/null; }

# cl_fuse_mounted PATH: a FUSE filesystem is mounted at PATH (the read-only
# underlay cl_start_node puts under a node's mount point does not count).
cl_fuse_mounted() { grep -s " $1 " /proc/self/mountinfo | grep -q ' - fuse'; }

# cl_kill I: kill -9 node I (a crash).
cl_kill() {
    local i=$1 pid=${CL_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -CONT "$pid" 2>/dev/null
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    CL_PID[$i]=""
    cl_log "killed node $i (pid $pid)"
}

# cl_term I [SECONDS]: SIGTERM node I and wait for it (SIGKILL after the deadline).
cl_term() {
    local i=$1 secs=${2:-10} pid=${CL_PID[$1]:-} end
    [ -n "$pid" ] || return 0
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
    end=$(($(cl_now_ms) + secs * 1000))
    while kill -0 "$pid" 2>/dev/null && [ "$(cl_now_ms)" -lt "$end" ]; do sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
        cl_log "node $i did not stop within ${secs}s of SIGTERM: SIGKILL"
        kill -9 "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    local rc=$?
    CL_PID[$i]=""
    cl_log "stopped node $i (pid $pid, exit $rc)"
    return 0
}

# cl_pause I: SIGSTOP node I and wait (30 s at most) until every thread of it
# is stopped: kill returns before the signal has taken effect.
cl_pause() {
    local pid=${CL_PID[$1]} end t st
    kill -STOP "$pid" || return 1
    end=$(($(cl_now_ms) + 30000))
    while :; do
        st=T
        for t in /proc/"$pid"/task/*/stat; do
            [ "$(sed 's/.*) //' "$t" 2>/dev/null | cut -d' ' -f1)" = T ] || { st=R; break; }
        done
        [ "$st" = T ] && break
        [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "node $1 (pid $pid) not stopped 30 s after SIGSTOP"
        sleep 0.01
    done
    cl_log "paused node $1"
}
cl_resume() { kill -CONT "${CL_PID[$1]}" && cl_log "resumed node $1"; }

# hs ARGS: the hstore binary against the test cluster.
hs() { "$HSTORE" "$@"; }

# cl_spec_first I: the SPEC with node I first, so that a new client talks to
# node I first (a follower forwards to the leader).
cl_spec_first() {
    local i=$1 j s="$1=${CL_HOST[$1]}:${CL_PORT[$1]}"
    for j in $(seq 1 "$CL_N"); do
        [ "$j" = "$i" ] || s+=",$j=${CL_HOST[$j]}:${CL_PORT[$j]}"
    done
    echo "$s"
}

# hs_via I ARGS: hstore with only node I in the SPEC: the request enters the
# cluster through node I whatever its role.
hs_via() {
    local i=$1
    shift
    HSTORE_CLUSTER="$i=${CL_HOST[$i]}:${CL_PORT[$i]}" "$HSTORE" "$@"
}

# cl_status: `hstore status` lines (1 s per node).
cl_status() { "$HSTORE" status --timeout 1 2>/dev/null; }

# cl_leader: id of the node that reports itself leader with the highest term
# (empty when none).
cl_leader() {
    cl_status | awk '$3 == "leader" { t = $4; sub("term=", "", t); if (t + 0 > best) { best = t + 0; id = $1 } }
                     END { if (id != "") print id }'
}

# cl_wait_leader [SECONDS] [EXCLUDE_ID]: waits for a leader (other than
# EXCLUDE_ID) and prints its id; returns 1 at the deadline.
cl_wait_leader() {
    local secs=${1:-10} not=${2:-} end l
    end=$(($(cl_now_ms) + secs * 1000))
    while [ "$(cl_now_ms)" -lt "$end" ]; do
        l=$(cl_leader)
        if [ -n "$l" ] && [ "$l" != "$not" ]; then
            echo "$l"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# cl_field I NAME: the value of NAME (term, commit, applied, leader, last,
# snapshot) in node I's status line; "unreachable" or empty if it did not answer.
cl_field() {
    local i=$1 name=$2
    "$HSTORE" status --timeout 1 2>/dev/null | awk -v id="$i" -v k="$name" '
        $1 == id { if ($3 == "unreachable") { print "unreachable"; exit }
                   for (f = 4; f <= NF; f++) { split($f, kv, "="); if (kv[1] == k) { print kv[2]; exit } } }'
}

# cl_wait_caught_up I [SECONDS]: waits until node I has applied at least the
# leader's commit index as it was when the wait began.
cl_wait_caught_up() {
    local i=$1 secs=${2:-20} end l target a
    l=$(cl_wait_leader "$secs") || return 1
    target=$(cl_field "$l" commit)
    end=$(($(cl_now_ms) + secs * 1000))
    while [ "$(cl_now_ms)" -lt "$end" ]; do
        a=$(cl_field "$i" applied)
        if [ -n "$a" ] && [ "$a" != unreachable ] && [ "$a" -ge "$target" ]; then return 0; fi
        sleep 0.2
    done
    cl_log "node $i applied ${a:-?} < leader commit $target after ${secs}s"
    return 1
}

# cl_expect_eq GOT WANT WHAT
cl_expect_eq() {
    [ "$1" = "$2" ] || cl_fail "$3: got '$1', want '$2'"
}

# cl_expect_rc WANT WHAT CMD...: runs CMD and checks its exit code.
cl_expect_rc() {
    local want=$1 what=$2 rc
    shift 2
    "$@" >/dev/null 2>&1
    rc=$?
    [ "$rc" = "$want" ] || cl_fail "$what: exit $rc, want $want (command: $*)"
}
