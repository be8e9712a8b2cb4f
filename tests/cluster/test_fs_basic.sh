#!/usr/bin/env bash
# The filesystem through three mounts: a file written on one node is read on
# the others at once; ls, mv, rm, mkdir -p, rm -r and cp -r of a tree from
# different nodes; identical attributes on every node; the key-value command
# line and the mounts are one namespace; the .hstore/status control view.
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2) M3=$(fs_mnt 3)

cl_log "echo on node 1, cat on nodes 2 and 3"
echo bar >"$M1/foo" || cl_fail "echo bar > node1/foo"
cl_expect_eq "$(cat "$M2/foo")" bar "cat on node 2"
cl_expect_eq "$(cat "$M3/foo")" bar "cat on node 3"
echo baz >>"$M3/foo" || cl_fail "echo baz >> node3/foo"
cl_expect_eq "$(cat "$M1/foo" | tr '\n' ' ')" "bar baz " "cat on node 1 after an append on node 3"
echo new >"$M2/foo" || cl_fail "echo new > node2/foo (O_TRUNC of an existing file)"
cl_expect_eq "$(cat "$M1/foo")" new "rewrite seen on node 1"

cl_log "attributes are identical on every node"
a1=$(stat -c '%i %s %a %u %g %h %Y.%y %Z' "$M1/foo")
for m in "$M2" "$M3"; do
    cl_expect_eq "$(stat -c '%i %s %a %u %g %h %Y.%y %Z' "$m/foo")" "$a1" "stat of foo on $m"
done

cl_log "mkdir -p, ls, mv, rm, rm -r from different nodes"
mkdir -p "$M1/a/b/c" || cl_fail "mkdir -p on node 1"
echo x >"$M2/a/b/c/f" || cl_fail "create in the new tree on node 2"
cl_expect_eq "$(ls "$M3/a/b/c")" f "ls on node 3"
mv "$M3/a/b/c/f" "$M3/a/g" || cl_fail "mv on node 3"
cl_expect_eq "$(ls "$M1/a" | tr '\n' ' ')" "b g " "ls after mv, node 1"
[ -e "$M2/a/b/c/f" ] && cl_fail "old name still there after mv"
cl_expect_eq "$(cat "$M2/a/g")" x "content after mv"
rm "$M1/a/g" || cl_fail "rm on node 1"
[ -e "$M3/a/g" ] && cl_fail "removed file still seen on node 3"
rmdir "$M2/a" 2>/dev/null && cl_fail "rmdir of a non-empty directory succeeded"
rm -r "$M2/a" || cl_fail "rm -r on node 2"
[ -e "$M1/a" ] && cl_fail "rm -r'd tree still seen on node 1"

cl_log "cp -r of a tree in on node 1, compared on nodes 2 and 3, moved and removed"
src=$CL_DIR/src
mkdir -p "$src/d1/d2" "$src/empty"
for i in $(seq 1 12); do head -c $((i * 997)) /dev/urandom >"$src/f$i"; done
for i in 1 2 3; do echo "n$i" >"$src/d1/g$i"; head -c 70000 /dev/urandom >"$src/d1/d2/big$i"; done
ln -s d1/g1 "$src/link"
cp -r "$src" "$M1/tree" || cl_fail "cp -r into node 1"
diff -r "$src" "$M2/tree" >/dev/null || cl_fail "tree read on node 2 differs from the source"
diff -r "$src" "$M3/tree" >/dev/null || cl_fail "tree read on node 3 differs from the source"
cl_expect_eq "$(readlink "$M3/tree/link")" d1/g1 "symlink read on node 3"
mv "$M2/tree" "$M2/tree2" || cl_fail "mv of the tree on node 2"
diff -r "$src" "$M3/tree2" >/dev/null || cl_fail "moved tree differs on node 3"
[ -e "$M1/tree" ] && cl_fail "old tree name still seen on node 1"
cp -r "$M3/tree2" "$CL_DIR/back" || cl_fail "cp -r out of node 3"
diff -r "$src" "$CL_DIR/back" >/dev/null || cl_fail "tree copied out differs"
rm -r "$M1/tree2" || cl_fail "rm -r of the tree on node 1"
cl_expect_eq "$(ls -A "$M2")" foo "root listing after rm -r (node 2)"

cl_log "one namespace with the command line"
hs put kvdir/key "from-cli" || cl_fail "hstore put kvdir/key"
cl_expect_eq "$(cat "$M3/kvdir/key")" from-cli "file made by hstore put, read on node 3"
printf 'via-mount' >"$M2/kvdir/m" || cl_fail "write kvdir/m on node 2"
cl_expect_eq "$(hs get kvdir/m)" via-mount "hstore get of a file written through a mount"

cl_log "control view"
grep -q '^id 2$' "$M2/.hstore/status" || cl_fail ".hstore/status of node 2 does not say id 2"
grep -Eq '^role (leader|follower)$' "$M1/.hstore/status" || cl_fail ".hstore/status has no role"
for f in term leader commit applied; do
    grep -Eq "^$f [0-9]+$" "$M3/.hstore/status" || cl_fail ".hstore/status has no $f line"
done
ls -A "$M1" | grep -q '^\.hstore$' && cl_fail ".hstore is listed by ls of the root"
echo x >"$M1/.hstore/new" 2>/dev/null && cl_fail "created a file in .hstore"
echo x >"$M1/.hstore/status" 2>/dev/null && cl_fail "wrote .hstore/status"
cl_pass
