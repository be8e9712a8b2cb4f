#!/usr/bin/env bash
# The HTTP API of every node (--http), with curl: the bearer token is
# required (401 without it or with a wrong one, 200 with `hstore
# http-token`'s); keys put, appended, read, listed and deleted through
# different nodes agree with `hstore get`, binary values included; 404, 400,
# 405 and 413 where they belong; a server-sent-events watch sees a put made
# through the command line; a half-sent request does not stop the server;
# /metrics of every node passes a strict Prometheus text-format check
# (lib/promcheck.py, itself shown to refuse broken input) and counts the
# FUSE operations of a file written and read through a mount; the
# membership routes list the members and transfer leadership; and the minority
# side of a partition answers 503 with Retry-After, then serves again after
# the heal.
. "$(dirname "$0")/lib/cluster.sh"
. "$(dirname "$0")/lib/faults.sh"
cl_in_netns "$@"
cl_init
fx_init
command -v curl >/dev/null || cl_fail "curl not found"
PROMCHECK=$CL_REPO/tests/cluster/lib/promcheck.py
for i in 1 2 3; do CL_NODE_EXTRA[$i]="--http 127.0.0.$((10 + i)):7102"; done
CL_MOUNT=1
cl_start 3 --op-timeout-ms 2000
leader=$(cl_wait_leader 15) || cl_fail "no leader within 15 s"
url() { echo "http://127.0.0.$((10 + $1)):7102$2"; }
TOKEN=$(hs http-token) || cl_fail "hstore http-token: exit $?"
[ ${#TOKEN} = 64 ] || cl_fail "token '$TOKEN' is not 64 hex digits"
AUTH="Authorization: Bearer $TOKEN"
# req NODE METHOD PATH [curl args]: prints the status code; the body goes to
# $CL_DIR/body, the headers to $CL_DIR/hdr.
req() {
    local n=$1 m=$2 p=$3
    shift 3
    curl -s --max-time 30 -o "$CL_DIR/body" -D "$CL_DIR/hdr" -w '%{http_code}' -X "$m" \
        -H "$AUTH" "$@" "$(url "$n" "$p")"
}
json() { python3 -c "import json,sys; d=json.load(open('$CL_DIR/body')); print($1)"; }

# ---- the token ----
for i in 1 2 3; do
    code=$(curl -s --max-time 10 -o "$CL_DIR/body" -w '%{http_code}' "$(url "$i" /v1/status)")
    cl_expect_eq "$code" 401 "node $i: status without a token"
    cl_expect_eq "$(json 'd["error"]')" unauthorized "node $i: the 401's JSON"
    code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' \
        -H "Authorization: Bearer ${TOKEN%?}0" "$(url "$i" /v1/status)")
    [ "${TOKEN: -1}" = 0 ] || cl_expect_eq "$code" 401 "node $i: status with a wrong token"
    cl_expect_eq "$(req "$i" GET /v1/status)" 200 "node $i: status with the token"
    cl_expect_eq "$(json 'd["id"]')" "$i" "node $i: its id in /v1/status"
    cl_expect_eq "$(json 'len(d["members"])')" 3 "node $i: members in /v1/status"
done
req "$leader" GET /v1/status >/dev/null
cl_expect_eq "$(json 'd["role"]')" leader "the leader's role in /v1/status"
cl_expect_eq "$(json 'all("match" in m for m in d["members"])')" True \
    "the leader shows every member's match index"

# ---- keys through different nodes ----
cl_log "keys through different nodes"
cl_expect_eq "$(req 1 PUT /v1/kv/h/a --data-binary hello)" 200 "PUT through node 1"
cl_expect_eq "$(json 'd["size"]')" 5 "size after the PUT"
cl_expect_eq "$(req 2 POST /v1/kv/h/a --data-binary ' world')" 200 "POST (append) through node 2"
cl_expect_eq "$(req 3 GET /v1/kv/h/a)" 200 "GET through node 3"
cl_expect_eq "$(cat "$CL_DIR/body")" "hello world" "value read through node 3"
grep -qi '^content-type: application/octet-stream' "$CL_DIR/hdr" || cl_fail "GET is not octet-stream"
cl_expect_eq "$(hs get h/a)" "hello world" "hstore get of a key written over HTTP"
hs put h/b from-cli || cl_fail "hstore put h/b"
cl_expect_eq "$(req 2 GET /v1/kv/h/b)" 200 "GET of a key the CLI wrote"
cl_expect_eq "$(cat "$CL_DIR/body")" from-cli "value the CLI wrote, read over HTTP"
head -c 70000 /dev/urandom >"$CL_DIR/bin.in"
printf '\0\n\r\0' >>"$CL_DIR/bin.in"
cl_expect_eq "$(req 3 PUT /v1/kv/h/bin --data-binary "@$CL_DIR/bin.in")" 200 "PUT of binary bytes"
cl_expect_eq "$(req 1 GET /v1/kv/h/bin)" 200 "GET of binary bytes"
cmp -s "$CL_DIR/body" "$CL_DIR/bin.in" || cl_fail "binary value changed through HTTP"
hs get h/bin >"$CL_DIR/bin.cli" || cl_fail "hstore get h/bin"
cmp -s "$CL_DIR/bin.cli" "$CL_DIR/bin.in" || cl_fail "binary value differs read by hstore get"
cl_expect_eq "$(req 1 GET '/v1/kv/?prefix=h/')" 200 "list"
cl_expect_eq "$(json '" ".join(d["keys"])')" "h/a h/b h/bin" "keys under h/"
cl_expect_eq "$(req 2 GET '/v1/kv?prefix=nothing')" 200 "empty list"
cl_expect_eq "$(json 'len(d["keys"])')" 0 "keys under a prefix nothing has"
cl_expect_eq "$(req 3 DELETE /v1/kv/h/a)" 200 "DELETE through node 3"
hs get h/a >/dev/null 2>&1
cl_expect_eq "$?" 1 "hstore get of a key deleted over HTTP"

# ---- errors ----
cl_log "errors"
cl_expect_eq "$(req 1 GET /v1/kv/h/a)" 404 "GET of a deleted key"
cl_expect_eq "$(json 'd["error"]')" not_found "the 404's JSON"
cl_expect_eq "$(req 2 DELETE /v1/kv/no/such)" 404 "DELETE of a missing key"
cl_expect_eq "$(req 1 PUT /v1/kv/ --data x)" 400 "PUT without a key"
cl_expect_eq "$(req 1 PUT /v1/kv/h/b/c --data x)" 400 "PUT under a file"
cl_expect_eq "$(req 1 PUT /v1/kv/h%00x --data x)" 400 "a NUL byte in the key"
cl_expect_eq "$(req 1 PATCH /v1/kv/h/b)" 405 "PATCH"
cl_expect_eq "$(req 1 GET /v1/nothing)" 404 "an unknown path"
head -c $((1024 * 1024 + 1)) /dev/zero >"$CL_DIR/big"
cl_expect_eq "$(req 2 PUT /v1/kv/h/big --data-binary "@$CL_DIR/big")" 413 "PUT past 1 MiB"
cl_expect_eq "$(req 2 PUT /v1/kv/h/big -H 'Transfer-Encoding: chunked' \
    --data-binary "@$CL_DIR/big")" 413 "chunked PUT past 1 MiB"
cl_expect_eq "$(req 2 GET /v1/kv/h/big)" 404 "nothing of the refused PUT is stored"

# ---- a half-sent request holds a connection, not the server ----
cl_log "a half-sent request holds a connection, not the server"
exec 7<>/dev/tcp/127.0.0.11/7102 || cl_fail "cannot connect to node 1's HTTP port"
printf 'PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab' >&7
cl_expect_eq "$(req 1 GET /v1/status)" 200 "status while another request is half sent"
exec 7>&-

# ---- watch ----
cl_log "watch"
curl -sN --max-time 60 -H "$AUTH" "$(url 2 '/v1/watch?prefix=w/')" >"$CL_DIR/sse" &
sse_pid=$!
CL_ALL_PIDS+=("$sse_pid")
deadline=$(( $(cl_now_ms) + 10000 ))
until grep -q '^: watching' "$CL_DIR/sse"; do
    [ "$(cl_now_ms)" -lt "$deadline" ] || cl_fail "the watch stream did not open"
    sleep 0.1
done
hs put other x || cl_fail "put other"
hs put w/k 1 || cl_fail "put w/k"
deadline=$(( $(cl_now_ms) + 10000 ))
until grep -q '"key":"w/k"' "$CL_DIR/sse"; do
    [ "$(cl_now_ms)" -lt "$deadline" ] || cl_fail "the watch did not see the put: $(cat "$CL_DIR/sse")"
    sleep 0.1
done
kill "$sse_pid" 2>/dev/null
grep -q '"key":"other"' "$CL_DIR/sse" && cl_fail "the watch of prefix w/ showed key other"
grep -q '^event: change' "$CL_DIR/sse" || cl_fail "no 'event: change' line"
# from an index: everything since, and a lost event for what no node kept
cl_expect_eq "$(curl -s --max-time 3 -H "$AUTH" "$(url 1 '/v1/watch?from=1&prefix=h/')" \
    | grep -c '"key":"h/a"')" 3 "put, append and delete of h/a replayed from index 1"

# ---- metrics ----
cl_log "metrics"
deadline=$(( $(cl_now_ms) + 20000 ))
until echo through-the-mount >"$CL_DIR/mnt/1/m" 2>/dev/null; do
    [ "$(cl_now_ms)" -lt "$deadline" ] || cl_fail "cannot write through node 1's mount"
    sleep 0.2
done
cl_expect_eq "$(cat "$CL_DIR/mnt/1/m")" through-the-mount "a file read back through the mount"
python3 - "$PROMCHECK" <<'PY' || cl_fail "promcheck accepts broken input"
import subprocess, sys, tempfile
bad = [
    'x 1\n',                                                   # no TYPE
    '# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx{a="b"} 2\n',   # not together
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 0\nh_count 1\n',
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0\nh_count 3\n',
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 0\nh_count 1\n',
    '# TYPE c counter\nc -1\n',
    '# TYPE g gauge\ng one\n',
    '# TYPE g gauge\ng{a="b} 1\n',
    '# TYPE g gauge\ng 1',
]
for t in bad:
    with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as f:
        f.write(t)
    if subprocess.run([sys.argv[1], f.name], capture_output=True).returncode == 0:
        print('accepted:', repr(t)); sys.exit(1)
PY
for i in 1 2 3; do
    cl_expect_eq "$(req "$i" GET /metrics)" 200 "node $i: /metrics"
    grep -qi '^content-type: text/plain; version=0.0.4' "$CL_DIR/hdr" ||
        cl_fail "node $i: /metrics content type"
    cp "$CL_DIR/body" "$CL_DIR/metrics.$i"
    out=$(python3 "$PROMCHECK" "$CL_DIR/metrics.$i" hstore_term hstore_role hstore_commit_index \
        hstore_applied_index hstore_last_index hstore_snapshot_index hstore_leader_changes_total \
        hstore_proposals_committed_total hstore_proposals_failed_total hstore_read_index_seconds \
        hstore_fsync_seconds hstore_snapshots_taken_total hstore_snapshot_taken_bytes_total \
        hstore_snapshot_take_seconds hstore_snapshots_installed_total hstore_peer_messages_sent_total \
        hstore_peer_messages_dropped_total hstore_client_connections_total \
        hstore_http_connections hstore_fuse_op_seconds process_resident_memory_bytes) ||
        cl_fail "node $i: /metrics: $out"
done
mval() { awk -v n="$2" '$1 == n { print $2 }' "$CL_DIR/metrics.$1"; }
cl_expect_eq "$(mval "$leader" 'hstore_role{role="leader"}')" 1 "the leader's role metric"
committed=0
for i in 1 2 3; do committed=$((committed + $(mval "$i" hstore_proposals_committed_total))); done
[ "$committed" -ge 4 ] || cl_fail "only $committed proposals committed over HTTP counted"
[ "$(mval 1 process_resident_memory_bytes)" -gt 0 ] || cl_fail "RSS metric is 0"
[ "$(mval "$leader" hstore_fsync_seconds_count)" -gt 0 ] || cl_fail "no fsync observed"
for op in write read; do
    [ "$(mval 1 "hstore_fuse_op_seconds_count{op=\"$op\"}")" -gt 0 ] 2>/dev/null ||
        cl_fail "node 1's mount: no FUSE $op counted"
done

# ---- members ----
cl_log "members"
cl_expect_eq "$(req 2 GET /v1/members)" 200 "member list"
cl_expect_eq "$(json '" ".join(str(m["id"]) for m in d["members"])')" "1 2 3" "members listed"
cl_expect_eq "$(req "$leader" DELETE /v1/members/9)" 404 "removing a node that is not a member"
cl_expect_eq "$(req "$leader" DELETE /v1/members/x)" 400 "removing a bad id"
cl_expect_eq "$(req "$leader" POST /v1/members --data 'nonsense')" 400 "adding without ID=HOST:PORT"
T2=$(( leader % 3 + 1 ))
cl_expect_eq "$(req "$T2" POST "/v1/transfer/$T2")" 421 "a transfer asked of a follower"
cl_expect_eq "$(json 'd["leader"]')" "$leader" "the 421 names the leader"
cl_expect_eq "$(req "$leader" POST "/v1/transfer/$T2")" 200 "transfer to node $T2 over HTTP"
leader=$(cl_wait_leader 15) || cl_fail "no leader after the transfer"
cl_expect_eq "$leader" "$T2" "the leader after the transfer"

# ---- the minority side of a partition ----
F=$(( leader % 3 + 1 ))
fx_isolate "$F"
code=$(req "$F" PUT /v1/kv/p/x --data v)
cl_log "PUT on isolated node $F: $code $(cat "$CL_DIR/body")"
cl_expect_eq "$code" 503 "PUT on the minority side"
grep -qi '^retry-after: [0-9]' "$CL_DIR/hdr" || cl_fail "503 without Retry-After"
cl_expect_eq "$(json 'd["error"]')" unavailable "the 503's JSON"
cl_expect_eq "$(req "$F" GET /v1/kv/h/b)" 503 "GET on the minority side"
grep -qi '^retry-after: [0-9]' "$CL_DIR/hdr" || cl_fail "503 of a GET without Retry-After"
fx_heal
deadline=$(( $(cl_now_ms) + 30000 ))
until [ "$(req "$F" PUT /v1/kv/p/x --data after)" = 200 ]; do
    [ "$(cl_now_ms)" -lt "$deadline" ] || cl_fail "node $F does not serve PUT after the heal"
    sleep 0.5
done
cl_expect_eq "$(hs get p/x)" after "the value put after the heal"
cl_pass
