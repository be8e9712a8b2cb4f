#!/usr/bin/env bash
# Clients without the cluster secret, or with another one, are refused:
# "not authorized" and exit code 4, for reads, writes and status, and the
# nodes count them; with the secret (--secret-file, HSTORE_SECRET_FILE or
# DIR/secret) everything works.  A node refuses to start without a secret
# unless --insecure is given.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
cl_start 3
cl_wait_leader 15 >/dev/null || cl_fail "no leader"
hs put k v1 || cl_fail "put with the secret"

wrong=$CL_DIR/wrong-secret
(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$wrong")

# expect_refused WHAT CMD...: exit 4 and "not authorized" on stderr.
expect_refused() {
    local what=$1 rc out
    shift
    out=$("$@" 2>&1 >/dev/null)
    rc=$?
    [ "$rc" = 4 ] || cl_fail "$what: exit $rc, want 4 (output: $out)"
    grep -q "not authorized" <<<"$out" || cl_fail "$what: no 'not authorized' in: $out"
}

# No secret at all (none named, none in the directory).
mv "$CL_DIR/secret" "$CL_DIR/secret.kept"
expect_refused "get without a secret" env -u HSTORE_SECRET_FILE "$HSTORE" get k --timeout 3
expect_refused "put without a secret" env -u HSTORE_SECRET_FILE "$HSTORE" put k2 x --timeout 3
expect_refused "status without a secret" env -u HSTORE_SECRET_FILE "$HSTORE" status --timeout 2
mv "$CL_DIR/secret.kept" "$CL_DIR/secret"
# The wrong secret, named three ways.
expect_refused "get with a wrong --secret-file" hs get k --secret-file "$wrong" --timeout 3
expect_refused "put with a wrong HSTORE_SECRET_FILE" env HSTORE_SECRET_FILE="$wrong" "$HSTORE" put k2 x --timeout 3
# Nothing was written by the refused put.
cl_expect_rc 1 "get k2 (the refused put did nothing)" hs get k2
# A secret file readable by others is refused as unsafe (usage error).
cp "$CL_SECRET" "$CL_DIR/open-secret" && chmod 644 "$CL_DIR/open-secret"
cl_expect_rc 2 "secret file with mode 644" hs get k --secret-file "$CL_DIR/open-secret"

# The right secret, three ways: --secret-file, the environment, DIR/secret.
cl_expect_eq "$(env -u HSTORE_SECRET_FILE "$HSTORE" get k --secret-file "$CL_SECRET")" v1 "get with --secret-file"
cl_expect_eq "$(hs get k)" v1 "get with HSTORE_SECRET_FILE"
cl_expect_eq "$(env -u HSTORE_SECRET_FILE "$HSTORE" get k)" v1 "get with DIR/secret"

# The nodes counted the refused clients and logged them.
total=0
for i in 1 2 3; do
    r=$(cl_field "$i" auth_rejected)
    total=$((total + ${r:-0}))
done
[ "$total" -gt 0 ] || cl_fail "no node counted a refused client"
grep -q "refused a client that did not authenticate" "$CL_DIR"/[123]/node.log ||
    cl_fail "no node logged a refused client"

# A node without a secret does not start unless --insecure.
out=$("$HSTORE" node --id 9 --cluster 9=127.0.0.1:7190 --data "$CL_DIR/nosecret" 2>&1)
rc=$?
cl_expect_eq "$rc" 2 "node without a secret: exit code"
grep -q "no cluster secret" <<<"$out" || cl_fail "node without a secret said: $out"
cl_pass
