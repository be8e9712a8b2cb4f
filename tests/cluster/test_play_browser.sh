#!/usr/bin/env bash
# The playground in a real headless browser (Debian's chromium driven by
# playwright-core: tests/cluster/play_browser.js): on a `hstore up` cluster
# the page shows three nodes and exactly one leader; its kill -9 button
# kills the leader and the page shows a new one; a key put through the
# page's key browser is read back by `hstore get`; the restart button brings
# the killed node back.  Screenshots of the run stay in
# tests/cluster/artifacts/test_play_browser/ (path printed).
# Skipped (exit 77, SKIP in run-all's summary) only when chromium cannot start.
. "$(dirname "$0")/lib/cluster.sh"
# The browser driver first, while the network is the host's (npm).
if [ "${CL_NETNS:-0}" != 1 ]; then
    make -s -C "$(dirname "$0")/../.." --no-print-directory playwright >&2 || cl_fail "make playwright failed"
fi
cl_in_netns "$@"
cl_init
unset HSTORE_CLUSTER HSTORE_SECRET_FILE
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir=$CL_DIR/up
port=7500
art=$here/artifacts/$CL_NAME
stop_all() { "$HSTORE" down --dir "$dir" --wait 5 >/dev/null 2>&1; }
trap 'cl_rc=$?; stop_all; (exit $cl_rc); cl_teardown' EXIT

command -v node >/dev/null || cl_fail "node (nodejs) is missing: make deps"
[ -d "$repo/build/playwright/node_modules/playwright-core" ] || cl_fail "playwright-core is not installed: make playwright"

out=$(hs up -n 3 --dir "$dir" --base-port $port --no-mount --wait 20 2>&1) || cl_fail "up: exit $?: $out"
while read -r id pid; do CL_ALL_PIDS+=("$pid"); done <"$dir/pids"
url=$(sed -n 's/^Playground: \(http:[^ ]*\)$/\1/p' <<<"$out")
[ -n "$url" ] || cl_fail "up did not print the playground's address: $out"
token=${url#*#token=}
[ "$token" = "$(hs http-token --dir "$dir")" ] || cl_fail "the token in $url is not hstore http-token's"
pages=()
for i in 1 2 3; do
    p=$(sed -n "s|^  node $i .* http \(http://[^ ]*/\) .*|\1|p" <<<"$out")
    [ -n "$p" ] || cl_fail "up did not print node $i's HTTP address"
    pages+=("$i=$p#token=$token")
done
[ "${pages[0]#1=}" = "$url" ] || cl_fail "the playground address $url is not node 1's page ${pages[0]}"

rm -rf "$art"
mkdir -p "$art"
key=play-key-$RANDOM
value="put through the page"
PLAY_DEADLINE_MS=30000 node "$here/play_browser.js" cluster "$art" "$key" "$value" "${pages[@]}" >"$art/run.log" 2>&1
rc=$?
cat "$art/run.log" >&2
while read -r id pid; do CL_ALL_PIDS+=("$pid"); done <"$dir/pids" # the restarted node
if [ "$rc" = 77 ]; then
    printf '\n########################################################\n' >&2
    printf '# SKIP %s: chromium cannot start (see above)\n' "$CL_NAME" >&2
    printf '########################################################\n\n' >&2
    CL_FAILED=0
    exit 77
fi
[ "$rc" = 0 ] || cl_fail "the browser run failed (exit $rc); screenshots in $art"
cl_log "screenshots of the run: $art"
cl_expect_eq "$(HSTORE_DIR=$dir hs get "$key")" "$value" "hstore get of the key put through the page"
old=$(tail -n 1 "$art/run.log" | sed -n 's/.*"old_leader":\([0-9]*\).*/\1/p')
[ -n "$old" ] || cl_fail "no summary line from the browser run"
pid=$(awk -v id="$old" '$1 == id { print $2 }' "$dir/pids")
kill -0 "$pid" 2>/dev/null || cl_fail "node $old (pid $pid) does not run after its restart from the page"
cl_pass
