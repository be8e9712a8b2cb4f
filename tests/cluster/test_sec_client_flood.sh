#!/usr/bin/env bash
# The client port is bounded.  While 8 connections each hold an unfinished
# 90 MiB request (first from clients without the secret, cut at the header;
# then from clients WITH the secret, cut by the memory cap), and while
# thousands of idle connections are held open, the node keeps serving other
# clients and its resident memory stays under 200 MB.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
ATTACK=$CL_REPO/build/sec_attack
[ -x "$ATTACK" ] || cl_fail "$ATTACK not built: run make"
RSS_MAX_KB=$((200 * 1024))
cl_start 3
leader=$(cl_wait_leader 15) || cl_fail "no leader"
target=$leader
caddr="${CL_HOST[$target]}:$((CL_PORT[$target] + 1))"
pid=${CL_PID[$target]}
hs put k v0 || cl_fail "first put"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }

# serve_check TAG: a write and a read through the target node, while the
# attack runs, and the node's RSS under the bound.
serve_check() {
    local tag=$1 r
    hs_via "$target" put "k-$tag" "v-$tag" --timeout 10 || cl_fail "$tag: put through node $target failed"
    cl_expect_eq "$(hs_via "$target" get "k-$tag" --timeout 10)" "v-$tag" "$tag: get through node $target"
    r=$(rss_kb)
    cl_log "$tag: node $target RSS ${r} kB"
    [ "$r" -lt "$RSS_MAX_KB" ] || cl_fail "$tag: node $target RSS ${r} kB >= $RSS_MAX_KB kB"
}

# run_attack TAG ARGS...: runs the attack in the background, checks service
# and memory while it holds its connections, then waits for it.
run_attack() {
    local tag=$1 apid out=$CL_DIR/attack-$1.out
    shift
    "$ATTACK" "$@" >"$out" 2>&1 &
    apid=$!
    CL_ALL_PIDS+=("$apid")
    sleep 3     # the attack has opened its connections and sent its bytes
    serve_check "$tag"
    wait "$apid" || cl_fail "$tag: the attack program failed: $(cat "$out")"
    cl_log "$tag: $(cat "$out")"
    serve_check "$tag-after"
}

# 1. Half frames without the secret: refused at the header (a request
#    before the handshake), nothing buffered.
run_attack half-noauth half-frames "$caddr" 8 90M 30M 4
grep -q "open 8 closed 8" "$CL_DIR/attack-half-noauth.out" ||
    cl_fail "the node did not close every unauthenticated half frame: $(cat "$CL_DIR/attack-half-noauth.out")"

# 2. Half frames with the secret: 8 x 30 MiB is over the 128 MiB cap of
#    client buffers, so the largest are cut.
run_attack half-auth half-frames "$caddr" 8 90M 30M 6 auth
closed=$(awk '{ print $4 }' "$CL_DIR/attack-half-auth.out")
[ "${closed:-0}" -ge 1 ] || cl_fail "no authenticated half frame was cut: $(cat "$CL_DIR/attack-half-auth.out")"

# 3. Thousands of idle connections, more than the node's limit: new clients
#    still get in (they displace connections that never authenticated).
run_attack idle idle "$caddr" 5000 6

r=$(cl_field "$target" conns_cut)
[ "${r:-0}" -gt 0 ] || cl_fail "node $target counted no cut connection (conns_cut=$r)"
cl_expect_eq "$(hs get k)" v0 "get k at the end"
cl_pass
