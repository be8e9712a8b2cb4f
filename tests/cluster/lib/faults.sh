# faults.sh — network faults, crashes, pauses and the history-checked load of
# hstore's fault tests (test_fault_*.sh, test_lab2_*.sh, test_lab3_*.sh).
# Source it after lib/cluster.sh, then call fx_init after cl_in_netns/cl_init:
#
#   . "$(dirname "$0")/lib/cluster.sh"
#   . "$(dirname "$0")/lib/faults.sh"
#   cl_in_netns "$@"; cl_init; fx_init
#   cl_start 5
#   fx_partition "1 2" "3 4 5"      # server<->server links across groups cut
#   fx_isolate 3; fx_heal
#   fx_partitioner_start; ...; fx_partitioner_stop
#   fx_crash_all; fx_restart_all
#
# Network faults need the private network namespace of cl_in_netns: fx_init
# fails the test outside one (iptables would touch the host).  Every rule lives
# in two chains of this namespace, jumped to from INPUT (all traffic here is
# loopback, so every packet passes INPUT once):
#   HSTORE_FX    partition rules: DROP for each (a, b) server address pair in
#                different groups, both directions;
#   HSTORE_FXC   client rules: cuts of one client source address from chosen
#                nodes, and random loss of client<->node packets.
# A change rebuilds a chain and swaps it in one iptables-restore --noflush
# call, so a repartition is atomic: no instant with both or neither rule set.
# Partitions change server<->server paths only (as the 6.824 harness does);
# clients keep reaching every node unless a test cuts them (fx_cut_client) —
# a client gets its own source address with histclient --src or
# fx_src_spec ADDR (the "LOCAL;REMOTE" host form of a cluster spec).
#
# Seeds: FX_SEED (default: random) seeds bash's RANDOM for the partitioner and
# the fault injector; it is printed so that a run's fault sequence can be
# replayed (timing still varies).
#
# Teardown: background loops started here are added to CL_ALL_PIDS, so the
# cluster library's EXIT trap kills them; the namespace (and every rule in it)
# goes away with the unshare'd process.

FX_HISTCLIENT=${FX_HISTCLIENT:-$CL_REPO/build/histclient}
FX_LINCHECK=${FX_LINCHECK:-$CL_REPO/build/lincheck}
FX_PARTITIONER_PID=""
FX_PART_SPEC=""          # current partition, e.g. "1 2|3 4 5" ("" = healed)
FX_CLIENT_RULES=""       # lines of HSTORE_FXC
FX_SEED=${FX_SEED:-$(( (RANDOM << 15) | RANDOM ))}
FX_FAILS=0               # soft failures counted by fx_check (reported at the end)

fx_mode_long() { [ "$CL_MODE" = long ]; }

# fx_init: checks the tools, sets up the chains, prints the seed.
fx_init() {
    cl_have_netns || cl_fail "fault tests need a private network namespace (root + unshare)"
    command -v iptables-restore >/dev/null || cl_fail "iptables-restore not found (make deps)"
    local b
    for b in "$FX_HISTCLIENT" "$FX_LINCHECK"; do
        if [ ! -x "$b" ] || [ "$b" -ot "$CL_REPO/tests/cluster/histclient.c" ]; then
            make -s -C "$CL_REPO" build/histclient build/lincheck >/dev/null 2>&1 ||
                cl_fail "cannot build $b (make build/histclient build/lincheck)"
        fi
    done
    iptables -N HSTORE_FX 2>/dev/null
    iptables -N HSTORE_FXC 2>/dev/null
    iptables -C INPUT -j HSTORE_FX 2>/dev/null || iptables -A INPUT -j HSTORE_FX ||
        cl_fail "iptables does not work in the namespace"
    iptables -C INPUT -j HSTORE_FXC 2>/dev/null || iptables -A INPUT -j HSTORE_FXC
    RANDOM=$FX_SEED
    cl_log "fault seed FX_SEED=$FX_SEED (mode $CL_MODE)"
}

# fx_ip I: node I's address.
fx_ip() { echo "127.0.0.$((10 + $1))"; }

# fx_apply_partition SPEC: SPEC is groups separated by '|', e.g. "1 2|3 4 5".
# Nodes in different groups cannot exchange a packet; "" heals.
fx_apply_partition() {
    local spec=$1 rules="" a b ga gb i j
    local -a groups=()
    IFS='|' read -r -a groups <<<"$spec"
    for ((ga = 0; ga < ${#groups[@]}; ga++)); do
        for ((gb = 0; gb < ${#groups[@]}; gb++)); do
            [ "$ga" = "$gb" ] && continue
            for i in ${groups[$ga]}; do
                for j in ${groups[$gb]}; do
                    a=$(fx_ip "$i"); b=$(fx_ip "$j")
                    rules+="-A HSTORE_FX -s $a/32 -d $b/32 -j DROP"$'\n'
                done
            done
        done
    done
    printf '*filter\n-F HSTORE_FX\n%sCOMMIT\n' "$rules" | iptables-restore --noflush ||
        cl_fail "iptables-restore of partition '$spec' failed"
    FX_PART_SPEC=$spec
}

# fx_partition "G1" "G2" ...: each argument a group of node ids.
fx_partition() {
    local spec="" g
    for g in "$@"; do spec+="${spec:+|}$g"; done
    fx_apply_partition "$spec"
    cl_log "partition: ${spec//|/ / }"
}

# fx_isolate I: node I alone, the others together.
fx_isolate() {
    local i=$1 j rest=""
    for j in $(seq 1 "$CL_N"); do [ "$j" = "$i" ] || rest+="$j "; done
    fx_apply_partition "$i|$rest"
    cl_log "isolated node $i"
}

fx_heal() {
    fx_apply_partition ""
    cl_log "healed the network"
}

# fx_connected I: true unless I is cut off from a majority of the cluster by
# the current partition (the harness-side "connected" view of 6.824).
fx_group_of() {
    local i=$1 g
    local -a groups=()
    IFS='|' read -r -a groups <<<"$FX_PART_SPEC"
    for g in "${groups[@]}"; do
        case " $g " in *" $i "*) echo "$g"; return 0 ;; esac
    done
    seq -s ' ' 1 "$CL_N"
}

# ---- client-side rules ------------------------------------------------------

fx_apply_client_rules() {
    printf '*filter\n-F HSTORE_FXC\n%sCOMMIT\n' "$FX_CLIENT_RULES" | iptables-restore --noflush ||
        cl_fail "iptables-restore of the client rules failed"
}

# fx_src_spec SRC [NODES]: the cluster spec with every connection leaving from
# address SRC (for the hstore CLI: --cluster "$(fx_src_spec 127.0.0.101)").
# NODES (default all) limits the spec to those nodes.
fx_src_spec() {
    local src=$1 nodes=${2:-$(seq 1 "$CL_N")} i s=""
    for i in $nodes; do s+="${s:+,}$i=$src;${CL_HOST[$i]}:${CL_PORT[$i]}"; done
    echo "$s"
}

# fx_cut_client SRC "NODES": packets between client address SRC and NODES are dropped.
fx_cut_client() {
    local src=$1 i
    for i in $2; do
        FX_CLIENT_RULES+="-A HSTORE_FXC -s $src/32 -d $(fx_ip "$i")/32 -j DROP"$'\n'
        FX_CLIENT_RULES+="-A HSTORE_FXC -s $(fx_ip "$i")/32 -d $src/32 -j DROP"$'\n'
    done
    fx_apply_client_rules
    cl_log "client $src cut from nodes $2"
}

# fx_client_loss P: drops packets to and from every node's client port with
# probability P (TCP turns it into delays; past the client library's 1 s
# attempt timeout a request is resent to another node with the same seq).
fx_client_loss() {
    local p=$1 port
    port=$((${CL_PORT[1]} + 1))
    FX_CLIENT_RULES+="-A HSTORE_FXC -p tcp --dport $port -m statistic --mode random --probability $p -j DROP"$'\n'
    FX_CLIENT_RULES+="-A HSTORE_FXC -p tcp --sport $port -m statistic --mode random --probability $p -j DROP"$'\n'
    fx_apply_client_rules
    cl_log "client packets lost with probability $p"
}

# fx_peer_loss P: random loss of server<->server packets (added to HSTORE_FXC,
# so repartitions keep it).
fx_peer_loss() {
    local p=$1
    FX_CLIENT_RULES+="-A HSTORE_FXC -p tcp --dport ${CL_PORT[1]} -m statistic --mode random --probability $p -j DROP"$'\n'
    FX_CLIENT_RULES+="-A HSTORE_FXC -p tcp --sport ${CL_PORT[1]} -m statistic --mode random --probability $p -j DROP"$'\n'
    fx_apply_client_rules
    cl_log "peer packets lost with probability $p"
}

fx_clear_client_rules() {
    FX_CLIENT_RULES=""
    fx_apply_client_rules
}

# ---- message-level faults (the transport's injector) -------------------------

# fx_unreliable: the nodes started from now on drop 10 % of peer messages,
# duplicate 5 %, delay half of them by 1-26 ms (so they reorder) — the
# 6.824 unreliable network, on peer traffic.  Set before cl_start.  Every
# node gets seed FX_SEED (printed, for replay; the node does not log a seed it
# draws itself); their decisions still differ, as each node sends a different
# stream of messages.
fx_unreliable() {
    export HSTORE_NET_FAULTS="drop=0.1,dup=0.05,delay=0.5:1-26,seed=$FX_SEED"
    cl_log "unreliable network: HSTORE_NET_FAULTS=$HSTORE_NET_FAULTS"
}

# ---- crashes and pauses -------------------------------------------------------

# fx_crash_all: kill -9 of every node at once (all signals first, then the waits).
fx_crash_all() {
    local i pids=""
    for i in $(seq 1 "$CL_N"); do
        [ -n "${CL_PID[$i]:-}" ] || continue
        kill -CONT "${CL_PID[$i]}" 2>/dev/null
        kill -9 "${CL_PID[$i]}" 2>/dev/null
        pids+=" ${CL_PID[$i]}"
    done
    for i in $pids; do wait "$i" 2>/dev/null; done
    for i in $(seq 1 "$CL_N"); do CL_PID[$i]=""; done
    cl_log "crashed every node (kill -9:$pids)"
}

# fx_restart_all: starts every node that is not running, from its data directory.
fx_restart_all() {
    local i
    for i in $(seq 1 "$CL_N"); do cl_alive "$i" || cl_start_node "$i"; done
    cl_log "restarted every node"
}

fx_pause() { cl_pause "$1"; }
fx_resume() { cl_resume "$1"; }

# fx_lease_rounds ROUNDS LEASE_MS: the faults a cache inside the read lease
# must outlive, ROUNDS times: node 3 paused (SIGSTOP) for three leases, then
# the leader, then node 3 cut off for 2 s, with a leader found after each.
fx_lease_rounds() {
    local rounds=$1 pause_ms=$((3 * $2)) pause_s r L
    pause_s=$(awk -v m="$pause_ms" 'BEGIN { print m / 1000 }')
    for r in $(seq 1 "$rounds"); do
        cl_log "round $r: pause node 3 for $pause_ms ms"
        fx_pause 3; sleep "$pause_s"; fx_resume 3
        sleep 1
        L=$(cl_wait_leader 15) || fx_fail "round $r: no leader"
        cl_log "round $r: pause the leader (node $L) for $pause_ms ms"
        fx_pause "$L"; sleep "$pause_s"; fx_resume "$L"
        cl_wait_leader 15 >/dev/null || fx_fail "round $r: no leader after the leader's pause"
        sleep 1
        cl_log "round $r: cut node 3 off for 2 s"
        fx_isolate 3; sleep 2; fx_heal
        cl_wait_leader 15 >/dev/null || fx_fail "round $r: no leader after the heal"
        sleep 2
    done
}

# fx_wait_clients PID...: each client process ends within 30 s (after the
# test asked them to stop), else the test fails: a hung file operation.
fx_wait_clients() {
    local p end
    for p in "$@"; do
        end=$(($(cl_now_ms) + 30000))
        while kill -0 "$p" 2>/dev/null && [ "$(cl_now_ms)" -lt "$end" ]; do sleep 0.1; done
        kill -0 "$p" 2>/dev/null && fx_fail "a client did not finish (hung file operation?)"
    done
    wait "$@"
}

# ---- the partitioner of 6.824's GenericTest -------------------------------------

# fx_partitioner_start [MIN_MS] [MAX_MS]: in the background, every MIN..MAX ms
# (default 1000..1199) each node picks side 0 or 1 at random and the links
# across sides are cut (so 5/0, 4/1 and 3/2 splits all happen).
fx_partitioner_start() {
    local lo=${1:-1000} hi=${2:-1199}
    FX_PART_STOP=$CL_DIR/partitioner.stop
    rm -f "$FX_PART_STOP"
    (
        RANDOM=$((FX_SEED + 7))
        while [ ! -e "$FX_PART_STOP" ]; do
            local a="" b="" i
            for i in $(seq 1 "$CL_N"); do
                if [ $((RANDOM % 2)) = 0 ]; then a+="$i "; else b+="$i "; fi
            done
            fx_apply_partition "$a|$b"
            echo "# $(date +%H:%M:%S.%3N) partition [${a% }] [${b% }]" >>"$CL_DIR/partitions.log"
            local ms=$((lo + RANDOM % (hi - lo + 1))) end
            end=$(($(cl_now_ms) + ms))
            while [ "$(cl_now_ms)" -lt "$end" ] && [ ! -e "$FX_PART_STOP" ]; do sleep 0.05; done
        done
    ) &
    FX_PARTITIONER_PID=$!
    CL_ALL_PIDS+=("$FX_PARTITIONER_PID")
    cl_log "partitioner started (pid $FX_PARTITIONER_PID, every ${lo}-${hi} ms)"
}

# fx_partitioner_stop: stops the loop (within its 50 ms poll) and heals.
fx_partitioner_stop() {
    [ -n "$FX_PARTITIONER_PID" ] || return 0
    touch "$FX_PART_STOP"
    local end=$(($(cl_now_ms) + 5000))
    while kill -0 "$FX_PARTITIONER_PID" 2>/dev/null && [ "$(cl_now_ms)" -lt "$end" ]; do
        sleep 0.05
    done
    kill -9 "$FX_PARTITIONER_PID" 2>/dev/null
    wait "$FX_PARTITIONER_PID" 2>/dev/null
    FX_PARTITIONER_PID=""
    cl_log "partitioner stopped after $(grep -c partition "$CL_DIR/partitions.log" 2>/dev/null) partitions"
    fx_heal
}

# ---- leaders among connected nodes (for the lab 2 checks) --------------------------

# fx_status_lines: "ID ROLE TERM" for each node that answers.
fx_status_lines() {
    "$HSTORE" status --timeout 1 2>/dev/null | awk '$3 != "unreachable" {
        t = ""; for (f = 4; f <= NF; f++) if ($f ~ /^term=/) { t = $f; sub("term=", "", t) }
        print $1, $3, t }'
}

# fx_check_one_leader_per_term: fails if two nodes claim leadership of one term.
fx_check_one_leader_per_term() {
    local dup
    dup=$(fx_status_lines | awk '$2 == "leader" { n[$3]++; ids[$3] = ids[$3] " " $1 }
                                 END { for (t in n) if (n[t] > 1) print "term " t ":" ids[t] }')
    [ -z "$dup" ] || cl_fail "two leaders in one term: $dup"
}

# fx_leader_among "NODES": the leader (highest term) among NODES, or empty.
fx_leader_among() {
    local nodes=" $1 "
    fx_status_lines | awk -v set="$nodes" '$2 == "leader" && index(set, " " $1 " ") {
        if ($3 + 0 >= best) { best = $3 + 0; id = $1 } } END { if (id != "") print id }'
}

# fx_wait_leader_among "NODES" SECONDS: the lab's checkOneLeader over NODES:
# polls; fails on two leaders in one term; prints the leader.
fx_wait_leader_among() {
    local nodes=$1 secs=$2 end l
    end=$(($(cl_now_ms) + secs * 1000))
    while [ "$(cl_now_ms)" -lt "$end" ]; do
        fx_check_one_leader_per_term
        l=$(fx_leader_among "$nodes")
        [ -n "$l" ] && { echo "$l"; return 0; }
        sleep 0.2
    done
    return 1
}

# ---- histories -----------------------------------------------------------------------

# fx_lincheck FILE... : runs build/lincheck; fails the test (naming the files)
# if the history is not linearizable.
fx_lincheck() {
    local out rc
    out=$("$FX_LINCHECK" --timeout 120 "$@" 2>&1)
    rc=$?
    cl_log "lincheck: $(echo "$out" | head -n 1)"
    case $rc in
        0) return 0 ;;
        3) cl_fail "lincheck gave up at its time limit on $* (not a verdict; history kept)" ;;
        *) echo "$out" | head -n 40 >&2
           cl_fail "history NOT linearizable (lincheck exit $rc): $*" ;;
    esac
}

# fx_keep_artifacts: keep the test directory (histories, node logs) on failure.
# Set before cl_init so that the teardown keeps $CL_DIR when the test fails.
fx_keep_on_failure() {
    FX_ARTIFACTS=${FX_ARTIFACTS:-/tmp/hstore-fault-artifacts}
    mkdir -p "$FX_ARTIFACTS"
}

# fx_save_artifacts: copies histories and node logs of this run to
# $FX_ARTIFACTS/NAME.TIME/ and prints where (called on failure).
fx_save_artifacts() {
    [ -n "$CL_DIR" ] && [ -d "$CL_DIR" ] || return 0
    local dest=${FX_ARTIFACTS:-/tmp/hstore-fault-artifacts}/$CL_NAME.$(date +%H%M%S).$$
    mkdir -p "$dest"
    cp "$CL_DIR"/*.hist "$CL_DIR"/*.log "$CL_DIR"/*.out "$dest"/ 2>/dev/null
    local i
    for i in $(seq 1 "$CL_N"); do
        [ -f "$CL_DIR/$i/node.log" ] && cp "$CL_DIR/$i/node.log" "$dest/node$i.log"
    done
    echo "# histories and node logs kept in $dest" >&2
}

# Wraps cl_fail so that every failure keeps its evidence.
fx_fail() {
    fx_save_artifacts
    cl_fail "$@"
}

# ---- histclient runs ------------------------------------------------------------------

# fx_histclient OUT_PREFIX ARGS...: runs build/histclient in the foreground
# with the test cluster, history to $CL_DIR/OUT_PREFIX.hist, its stderr to
# $CL_DIR/OUT_PREFIX.out (echoed).  Returns its exit status.
fx_histclient() {
    local name=$1 rc
    shift
    "$FX_HISTCLIENT" --cluster "$CL_SPEC" --out "$CL_DIR/$name.hist" --seed "$FX_SEED" "$@" \
        2>"$CL_DIR/$name.out"
    rc=$?
    sed 's/^/#   /' "$CL_DIR/$name.out" | tail -n 30 >&2
    return $rc
}

# fx_histclient_bg OUT_PREFIX ARGS...: the same in the background; sets FX_HC_PID.
fx_histclient_bg() {
    local name=$1
    shift
    "$FX_HISTCLIENT" --cluster "$CL_SPEC" --out "$CL_DIR/$name.hist" --seed "$FX_SEED" "$@" \
        2>"$CL_DIR/$name.out" &
    FX_HC_PID=$!
    CL_ALL_PIDS+=("$FX_HC_PID")
}

# fx_histclient_wait OUT_PREFIX [SECONDS]: waits for the background run (killing
# it at the deadline, which fails the test), shows its output, checks its exit
# status and its history.
fx_histclient_wait() {
    local name=$1 secs=${2:-120} end rc
    end=$(($(cl_now_ms) + secs * 1000))
    while kill -0 "$FX_HC_PID" 2>/dev/null && [ "$(cl_now_ms)" -lt "$end" ]; do sleep 0.1; done
    if kill -0 "$FX_HC_PID" 2>/dev/null; then
        kill -9 "$FX_HC_PID" 2>/dev/null
        wait "$FX_HC_PID" 2>/dev/null
        fx_fail "histclient $name did not finish within ${secs}s (hang?)"
    fi
    wait "$FX_HC_PID"
    rc=$?
    sed 's/^/#   /' "$CL_DIR/$name.out" | tail -n 30 >&2
    fx_histclient_verdict "$name" "$rc"
}

# fx_histclient_verdict NAME RC: lab checks (exit status) and lincheck.
fx_histclient_verdict() {
    local name=$1 rc=$2
    case $rc in
        0) ;;
        1) fx_fail "histclient $name: lost, doubled or reordered appends, or a bad reply (see above; history $CL_DIR/$name.hist)" ;;
        3) fx_fail "histclient $name: final reads failed: the cluster did not recover (history $CL_DIR/$name.hist)" ;;
        *) fx_fail "histclient $name: exit $rc" ;;
    esac
    local out lrc
    out=$("$FX_LINCHECK" --timeout 120 "$CL_DIR/$name.hist" 2>&1)
    lrc=$?
    cl_log "lincheck $name: $(echo "$out" | head -n 1)"
    case $lrc in
        0) ;;
        3) fx_fail "lincheck gave up at its time limit on $CL_DIR/$name.hist" ;;
        *) echo "$out" | head -n 40 >&2
           fx_fail "history $name NOT linearizable (lincheck exit $lrc)" ;;
    esac
}

# ---- the 6.824 lab 3 GenericTest --------------------------------------------------------

# fx_generic_test [--servers N] [--clients C] [--unreliable] [--crash]
#   [--partitions] [--snapshot BYTES] [--rounds R] [--secs S] [--keys K]
#   [--mix MIX] [--dup P]
# 6.824 (2017) GenericTest with real processes: N (5) nodes; R rounds (normal
# mode 2, long 3) of S seconds (normal 5 as in the lab, long 8) of load by C client
# sessions over K keys (default C) with appends and gets; a partitioner
# reshuffling the server links every 1.0-1.2 s from 1 s into the round; a
# kill -9 of every node at once at a random point of the round (then 1 s down,
# then restart) while the clients keep writing; at the end of each round
# the partitioner stops, the network heals and histclient reads every key
# and checks each append exactly once and in order; every history goes
# through lincheck; with --snapshot, the Raft log stays bounded (see
# fx_check_log_bounded).
fx_generic_test() {
    local servers=5 clients=1 unreliable=0 crash=0 parts=0 snap=0 rounds secs keys="" mix="append=50,get=50" dup=0
    if fx_mode_long; then rounds=3; secs=8; else rounds=2; secs=5; fi
    while [ $# -gt 0 ]; do
        case $1 in
            --servers) servers=$2; shift ;;
            --clients) clients=$2; shift ;;
            --unreliable) unreliable=1 ;;
            --crash) crash=1 ;;
            --partitions) parts=1 ;;
            --snapshot) snap=$2; shift ;;
            --rounds) rounds=$2; shift ;;
            --secs) secs=$2; shift ;;
            --keys) keys=$2; shift ;;
            --mix) mix=$2; shift ;;
            --dup) dup=$2; shift ;;
            *) cl_fail "fx_generic_test: unknown option $1" ;;
        esac
        shift
    done
    [ -n "$keys" ] || keys=$clients
    local -a nargs=(--op-timeout-ms 3000)
    [ "$snap" -gt 0 ] && nargs+=(--snapshot-threshold "$snap")
    [ "$unreliable" = 1 ] && fx_unreliable
    cl_start "$servers" "${nargs[@]}"
    cl_wait_leader 20 >/dev/null || fx_fail "no leader within 20 s"
    local r crash_ms t0
    for r in $(seq 1 "$rounds"); do
        cl_log "round $r/$rounds: $clients clients, ${secs}s, unreliable=$unreliable crash=$crash partitions=$parts snapshot=$snap"
        t0=$(cl_now_ms)
        fx_histclient_bg "round$r" --clients "$clients" --duration-ms $((secs * 1000)) \
            --keys "$keys" --key-prefix "r${r}k" --mix "$mix" --timeout-ms 4000 \
            --dup "$dup" --name "r${r}c" --final-timeout-ms 40000
        if [ "$parts" = 1 ]; then
            sleep 1
            fx_partitioner_start
        fi
        if [ "$crash" = 1 ]; then
            # A random instant in the middle of the round.
            crash_ms=$((secs * 300 + RANDOM % (secs * 400 + 1)))
            fx_sleep_until $((t0 + crash_ms))
            fx_crash_all
            sleep 1
            fx_restart_all
        fi
        fx_sleep_until $((t0 + secs * 1000))
        [ "$parts" = 1 ] && fx_partitioner_stop
        fx_histclient_wait "round$r" 120
        [ "$snap" -gt 0 ] && fx_check_log_bounded "$snap"
    done
}

# fx_sleep_until MS: sleeps until cl_now_ms reaches MS (no-op if past).
fx_sleep_until() {
    local now
    now=$(cl_now_ms)
    [ "$1" -gt "$now" ] && sleep "$(awk -v ms=$(($1 - now)) 'BEGIN { printf "%.3f", ms / 1000 }')"
    return 0
}

# fx_check_log_bounded THRESHOLD: on every node, the Raft log kept beside the
# snapshot is bounded, as the lab's LogSize() <= 2*maxraftstate: the bytes of
# log entries in hstore.db (SQLite: sum(log.bytes), read with the sqlite3
# tool) at most 2*THRESHOLD + FX_LOG_SLACK (default 16 KiB: entries appended
# while a snapshot is being taken, one batch of a busy leader); and the main
# database file (log + hard state + the latest snapshot, in SQLite pages) at
# most FX_DB_SLACK (default 256 KiB) + 4*THRESHOLD.  The WAL file
# (hstore.db-wal) is SQLite's redo journal, reused in place: logged only.
fx_check_log_bounded() {
    local thr=$1 i db wal logb snap lim_db lim_log
    lim_db=$((${FX_DB_SLACK:-262144} + 4 * thr))
    lim_log=$((${FX_LOG_SLACK:-16384} + 2 * thr))
    for i in $(seq 1 "$CL_N"); do
        [ -f "$CL_DIR/$i/hstore.db" ] || continue
        db=$(stat -c %s "$CL_DIR/$i/hstore.db")
        wal=$(stat -c %s "$CL_DIR/$i/hstore.db-wal" 2>/dev/null || echo 0)
        logb=? snap=?
        if command -v sqlite3 >/dev/null; then
            logb=$(sqlite3 -readonly -cmd ".timeout 2000" "file:$CL_DIR/$i/hstore.db" \
                "SELECT coalesce(sum(bytes),0) FROM log;" 2>/dev/null | tail -n 1)
            snap=$(sqlite3 -readonly -cmd ".timeout 2000" "file:$CL_DIR/$i/hstore.db" \
                "SELECT raw_len || '/' || comp_len FROM snap;" 2>/dev/null | tail -n 1)
        fi
        cl_log "node $i: log ${logb:-?} bytes (limit $lim_log), snapshot raw/zstd ${snap:-none} bytes, hstore.db $db (limit $lim_db), wal $wal"
        [ "$db" -le "$lim_db" ] ||
            fx_fail "node $i: hstore.db is $db bytes > $lim_db (snapshot threshold $thr): the log was not trimmed"
        case $logb in
            '' | '?') ;;
            *) [ "$logb" -le "$lim_log" ] ||
                fx_fail "node $i: the Raft log holds $logb bytes > $lim_log (2 x snapshot threshold $thr + slack): logs were not trimmed" ;;
        esac
    done
}

# ---- single operations recorded into a history (shell clients) --------------------

# fx_ns: CLOCK_REALTIME in ns without a fork ($EPOCHREALTIME, microseconds).
fx_ns() { local t=$EPOCHREALTIME; echo "${t/./}000"; }

# fx_rec HIST CLIENT OP KEY VALUE CMD...: runs CMD (an hstore get/put/append,
# or any command with the same exit codes) and appends the operation to HIST
# with call and return times: exit 0 ok; exit 1 of a get: ok, reads "" (not
# found); exit 3: unknown; anything else: fail.  A get's result is CMD's
# stdout, also left in FX_OUT; the exit status in FX_RC.  KEY, VALUE and
# results must be made of [A-Za-z0-9._-] (written as is; "" as %).
fx_rec() {
    local hist=$1 client=$2 op=$3 key=$4 val=$5 t0 t1 st res=-
    shift 5
    t0=$EPOCHREALTIME
    FX_OUT=$("$@" 2>>"$CL_DIR/cli.err")
    FX_RC=$?
    t1=$EPOCHREALTIME
    case "$op.$FX_RC" in
        get.0) st=ok; res=${FX_OUT:-%} ;;
        get.1) st=ok; res=%; FX_OUT="" ;;
        *.0) st=ok ;;
        *.3) st=unknown ;;
        *) st=fail ;;
    esac
    [ "$op" = get ] && val=-
    [ -z "$val" ] && val=%
    if [ "$st" = unknown ]; then
        echo "$client $op $key ${t0/./}000 - unknown $val -" >>"$hist"
    else
        echo "$client $op $key ${t0/./}000 ${t1/./}000 $st $val $res" >>"$hist"
    fi
    return "$FX_RC"
}

# fx_expect_eq GOT WANT WHAT: like cl_expect_eq, keeping the evidence on failure.
fx_expect_eq() {
    [ "$1" = "$2" ] || fx_fail "$3: got '$1', want '$2'"
}
