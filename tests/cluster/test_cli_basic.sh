#!/usr/bin/env bash
# A 3-node cluster answers put/get/append/del/ls through every node; values
# are binary-safe through stdin; the shell and status work; bench runs.
. "$(dirname "$0")/lib/cluster.sh"
cl_in_netns "$@"
cl_init
cl_start 3
leader=$(cl_wait_leader 15) || cl_fail "no leader within 15 s"
cl_log "leader is node $leader"

# Every node takes every kind of request (followers forward to the leader).
for i in 1 2 3; do
    hs_via "$i" put "k$i" "v$i" || cl_fail "put through node $i: exit $?"
    hs_via "$i" append "k$i" "+a$i" || cl_fail "append through node $i: exit $?"
done
for i in 1 2 3; do
    for j in 1 2 3; do
        got=$(hs_via "$i" get "k$j") || cl_fail "get k$j through node $i: exit $?"
        cl_expect_eq "$got" "v$j+a$j" "get k$j through node $i"
    done
    cl_expect_eq "$(hs_via "$i" ls | tr '\n' ' ')" "k1 k2 k3 " "ls through node $i"
done
hs_via 2 put dir/a 1 && hs_via 3 put dir/b 2 || cl_fail "put dir/a, dir/b"
cl_expect_eq "$(hs_via 1 ls dir/ | tr '\n' ' ')" "dir/a dir/b " "ls dir/"
hs_via 2 del k1 || cl_fail "del k1 through node 2: exit $?"
cl_expect_rc 1 "get of a deleted key" hs_via 3 get k1
cl_expect_rc 1 "del of a missing key" hs_via 1 del k1
cl_expect_eq "$(hs_via 3 ls | tr '\n' ' ')" "dir/a dir/b k2 k3 " "ls after del"

# Binary-safe values through stdin and stdout: every byte value, NULs,
# no trailing newline, and an empty value.
head -c 300000 /dev/urandom >"$CL_DIR/blob"
printf '\000\001\377\n\r' >>"$CL_DIR/blob"
hs put blob <"$CL_DIR/blob" || cl_fail "put blob from stdin"
for i in 1 2 3; do
    hs_via "$i" get blob >"$CL_DIR/blob.$i" || cl_fail "get blob through node $i"
    cmp -s "$CL_DIR/blob" "$CL_DIR/blob.$i" || cl_fail "blob read through node $i differs"
done
printf 'tail\000bytes' | hs append blob || cl_fail "append from stdin"
{ cat "$CL_DIR/blob"; printf 'tail\000bytes'; } >"$CL_DIR/blob.want"
hs get blob | cmp -s - "$CL_DIR/blob.want" || cl_fail "appended blob differs"
hs put empty </dev/null || cl_fail "put of an empty value"
cl_expect_eq "$(hs get empty | wc -c)" 0 "empty value"
hs put -- dash -5 || cl_fail "put of a value starting with -"
cl_expect_eq "$(hs get dash)" "-5" "value starting with -"

# The shell, fed from a pipe.
out=$(printf 'put s1 "hello world"\nAPPEND s1 "\\x21"\nGET s1\nget nosuch\nLs s\nbogus\nQUIT\nGET s1\n' | hs shell 2>&1)
want=$'OK\nOK (12 bytes)\nhello world!\n(nil)\ns1\n(error) unknown command \'bogus\'; type HELP for the list'
cl_expect_eq "$out" "$want" "shell transcript"

# status: one line per node, exactly one leader, everybody agrees on it.
st=$(hs status) || cl_fail "status: exit $?"
cl_expect_eq "$(echo "$st" | grep -vc '^limits ')" 3 "status lines"
cl_expect_eq "$(echo "$st" | grep -c '^limits max-file-size=[0-9]* max-store-bytes=[0-9]*$')" 1 \
    "status line of the replicated limits"
cl_expect_eq "$(echo "$st" | awk '$3 == "leader"' | wc -l)" 1 "leaders in status"
l=$(echo "$st" | awk '$3 == "leader" { print $1 }')
for i in 1 2 3; do
    cl_expect_eq "$(echo "$st" | awk -v i=$i '$1 == i { for (f = 4; f <= NF; f++) if ($f ~ /^leader=/) print substr($f, 8) }')" \
        "$l" "leader known by node $i"
done

# bench: a short run with 4 sessions, JSON out, no errors.
js=$(hs bench --clients 4 --ops 200 --json put) || cl_fail "bench: exit $?"
echo "$js" | grep -q '"errors":0' || cl_fail "bench reported errors: $js"
echo "$js" | grep -q '"ops":200' || cl_fail "bench did not run 200 ops: $js"
cl_log "bench: $js"
cl_pass
