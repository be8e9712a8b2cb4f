# member.sh — helpers of the membership tests (test_member_*.sh), on top of
# cluster.sh: start a node that joins the running cluster, and read the
# configuration as `hstore member list` prints it.

# mb_join I [VIA]: starts node I with --join (asking node VIA, default 1) and
# an address of its own, as cl_start gives node I (netns: 127.0.0.(10+I));
# the clients' SPEC (HSTORE_CLUSTER) gets node I too.
mb_join() {
    local i=$1 via=${2:-1}
    if [ "$CL_NETNS" = 1 ]; then
        CL_HOST[$i]=127.0.0.$((10 + i))
        CL_PORT[$i]=7100
    else
        CL_HOST[$i]=127.0.0.1
        CL_PORT[$i]=$((CL_PORT[1] + 2 * (i - 1)))
    fi
    [ "$i" -gt "$CL_N" ] && CL_N=$i
    case ",$HSTORE_CLUSTER," in
        *",$i="*) ;;
        *) export HSTORE_CLUSTER="$HSTORE_CLUSTER,$i=${CL_HOST[$i]}:${CL_PORT[$i]}" ;;
    esac
    mkdir -p "$CL_DIR/$i"
    echo "==== start (join) $(date +%H:%M:%S.%3N)" >>"$CL_DIR/$i/node.log"
    "$HSTORE" node --id "$i" --addr "${CL_HOST[$i]}:${CL_PORT[$i]}" \
        --join "${CL_HOST[$via]}:${CL_PORT[$via]}" --data "$CL_DIR/$i" \
        --secret-file "$CL_SECRET" "${CL_NODE_ARGS[@]+"${CL_NODE_ARGS[@]}"}" \
        >>"$CL_DIR/$i/node.log" 2>&1 &
    CL_PID[$i]=$!
    CL_ALL_PIDS+=($!)
    cl_log "node $i joins via node $via (pid ${CL_PID[$i]})"
}

# mb_list: `hstore member list` (lines "ID ADDR voter|learner [leader]").
mb_list() { "$HSTORE" member list --timeout 2 2>/dev/null; }

# mb_role I: voter, learner or "" (not a member), as the cluster lists it.
mb_role() { mb_list | awk -v id="$1" '$1 == id { print $3 }'; }

# mb_wait_role I ROLE SECONDS: waits until node I is listed with ROLE
# ("" = not a member).  1 at the deadline.
mb_wait_role() {
    local i=$1 want=$2 secs=$3 end
    end=$(($(cl_now_ms) + secs * 1000))
    while [ "$(cl_now_ms)" -lt "$end" ]; do
        [ "$(mb_role "$i")" = "$want" ] && return 0
        sleep 0.2
    done
    cl_log "node $i is '$(mb_role "$i")', want '$want' after ${secs}s; members:"
    mb_list | sed 's/^/#   /' >&2
    return 1
}

# mb_spec IDS...: the client SPEC of the given nodes.
mb_spec() {
    local i s=""
    for i in "$@"; do s+="${s:+,}$i=${CL_HOST[$i]}:${CL_PORT[$i]}"; done
    echo "$s"
}

# mb_term I: node I's term (asked up to 5 times: a loaded node may miss one
# status deadline); "?" when it never answers.
mb_term() {
    local k t
    for k in 1 2 3 4 5; do
        t=$(cl_field "$1" term)
        case $t in '' | unreachable) sleep 0.2 ;; *) echo "$t"; return 0 ;; esac
    done
    echo "?"
}
