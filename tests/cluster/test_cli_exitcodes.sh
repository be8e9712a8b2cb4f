#!/usr/bin/env bash
# Exit codes and messages of the command line: 0 success, 1 not found, 2 usage
# or invalid input, 3 unavailable; --help everywhere.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init

# Help: top level and every command, each with an example.
hs --help | grep -q "Usage: hstore COMMAND" || cl_fail "hstore --help"
for c in node up down put get append del ls status shell watch bench; do
    out=$(hs "$c" --help 2>&1) || cl_fail "hstore $c --help: exit $?"
    grep -qi "usage" <<<"$out" || cl_fail "hstore $c --help has no usage line"
    grep -q "hstore $c" <<<"$out" || cl_fail "hstore $c --help shows no example"
done
cl_expect_rc 2 "no command" hs
cl_expect_rc 2 "unknown command" hs frobnicate
cl_expect_rc 2 "unknown option" hs get --bogus k

# Usage errors (2) need no cluster.
cl_expect_rc 2 "get without KEY" hs get
cl_expect_rc 2 "get with two keys" hs get a b
cl_expect_rc 2 "put without KEY" hs put
cl_expect_rc 2 "put with three args" hs put a b c
cl_expect_rc 2 "bad --timeout" hs get k --timeout abc
cl_expect_rc 2 "zero --timeout" hs get k --timeout 0
cl_expect_rc 2 "--timeout without value" hs get k --timeout
cl_expect_rc 2 "bad SPEC" hs get k --cluster "nonsense"
cl_expect_rc 2 "up -n 0" hs up -n 0 --dir "$CL_DIR/up"
cl_expect_rc 2 "bench without workload" hs bench --clients 2
# No cluster anywhere: exit 2 and say what to do.
out=$(env -u HSTORE_CLUSTER HSTORE_DIR="$CL_DIR/empty" "$HSTORE" get k 2>&1)
rc=$?
cl_expect_eq "$rc" 2 "get with no cluster given"
grep -q -- "--cluster" <<<"$out" && grep -q "HSTORE_CLUSTER" <<<"$out" && grep -q "hstore up" <<<"$out" ||
    cl_fail "the no-cluster message does not say what to do: $out"

# Nothing listening: 3 within the timeout (+ margin).
cl_start 3
for i in 1 2 3; do cl_kill "$i"; done
t0=$(cl_now_ms)
cl_expect_rc 3 "put with every node down" hs put k v --timeout 1
cl_expect_rc 3 "get with every node down" hs get k --timeout 1
cl_expect_rc 3 "status with every node down" hs status --timeout 0.5
ms=$(( $(cl_now_ms) - t0 ))
cl_log "three calls with timeouts 1+1+0.5 s took $ms ms"
# (Only a call that does not give up at all fails here: a loaded machine may
# add seconds to process start-up.)
[ "$ms" -le 60000 ] || cl_fail "three calls with timeouts 1+1+0.5 s took $ms ms"

# With the cluster up: 0 and 1, and 2 for input the store refuses.
for i in 1 2 3; do cl_restart "$i"; done
cl_wait_leader 15 >/dev/null || cl_fail "no leader within 15 s"
cl_expect_rc 0 "put" hs put d/f v
cl_expect_rc 0 "get" hs get d/f
cl_expect_rc 1 "get of a missing key" hs get nosuch
cl_expect_rc 1 "del of a missing key" hs del nosuch
cl_expect_rc 2 "get of a directory" hs get d
cl_expect_rc 2 "put under a file" hs put d/f/g v
cl_expect_rc 2 "key with a .. component" hs put ../x v
cl_expect_rc 0 "ls of an unknown prefix" hs ls nothing/
cl_expect_eq "$(hs ls nothing/ | wc -l)" 0 "ls of an unknown prefix prints nothing"
# Paused (SIGSTOP) nodes are not dead: the client still gives up in time.
for i in 1 2 3; do cl_pause "$i"; done
t0=$(cl_now_ms)
cl_expect_rc 3 "put with every node paused" hs put k v --timeout 1.5
ms=$(( $(cl_now_ms) - t0 ))
cl_log "put with --timeout 1.5 against paused nodes: $ms ms"
[ "$ms" -ge 1500 ] || cl_fail "put with --timeout 1.5 gave up after $ms ms, before its timeout"
[ "$ms" -le 60000 ] || cl_fail "put with --timeout 1.5 took $ms ms against paused nodes"
for i in 1 2 3; do cl_resume "$i"; done
cl_pass
