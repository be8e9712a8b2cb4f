#!/usr/bin/env bash
# Large files flow without starving heartbeats.  200 MiB written with
# `dd bs=1M conv=fsync` through the leader's mount and through a follower's
# mount, read back from a third node, while a reader on another node keeps
# reading a small file: no EIO, no failed read, and no term change (no
# election).  Then `hstore put`/`get` of a 100 MB value (sha256 equal), and
# a put past --max-file-size gets EFBIG at once (exit 2, not a timeout).
# Prints the rates (numbers, not assertions).
. "$(dirname "$0")/fs_lib.sh" "$@"
MB=${FS_FLOW_MB:-200}
PUT_MB=${FS_FLOW_PUT_MB:-100}
cl_start 3 --max-file-size 256M
fs_wait_mounts 20
leader=$(cl_wait_leader 20) || cl_fail "no leader"
f1=$((leader % 3 + 1))
f2=$((f1 % 3 + 1))
cl_log "leader $leader, followers $f1 and $f2"

# terms: one line "id term" per node
terms() { cl_status | awk '$1 ~ /^[0-9]+$/ { t = $4; sub("term=", "", t); print $1, t }' | sort; }
before=$(terms)
[ "$(echo "$before" | wc -l)" = 3 ] || cl_fail "status of all nodes: $before"

head -c $((MB * 1024 * 1024)) /dev/urandom >"$CL_DIR/src" || cl_fail "make the source file"
want=$(sha256sum <"$CL_DIR/src" | awk '{print $1}')
printf 'small file\n' >"$(fs_mnt "$leader")/small" || cl_fail "write the small file"

# The reader: reads the small file through f2's mount until told to stop
# (with its own deadline), counting failures and wrong contents.
(
    end=$(($(cl_now_ms) + 600000))
    ok=0 bad=0
    while [ ! -e "$CL_DIR/stop_reader" ] && [ "$(cl_now_ms)" -lt "$end" ]; do
        if [ "$(cat "$(fs_mnt "$f2")/small" 2>>"$CL_DIR/reader.err")" = "small file" ]; then
            ok=$((ok + 1))
        else
            bad=$((bad + 1))
        fi
        sleep 0.05
    done
    echo "$ok $bad" >"$CL_DIR/reader.out"
) &
reader=$!
CL_ALL_PIDS+=("$reader")   # killed by the teardown if the test fails

rate() { awk -v mb="$1" -v ms="$2" 'BEGIN { printf "%.1f MiB/s", mb * 1000 / (ms + 1) }'; }
for w in "$leader" "$f1"; do
    t0=$(cl_now_ms)
    dd if="$CL_DIR/src" of="$(fs_mnt "$w")/big$w" bs=1M conv=fsync 2>"$CL_DIR/dd.err" ||
        cl_fail "dd of $MB MiB through node $w's mount: $(cat "$CL_DIR/dd.err")"
    t1=$(cl_now_ms)
    cl_log "dd of $MB MiB through node $w's mount: $((t1 - t0)) ms ($(rate "$MB" $((t1 - t0))))"
done
for w in "$leader" "$f1"; do
    t0=$(cl_now_ms)
    got=$(sha256sum <"$(fs_mnt "$f2")/big$w" | awk '{print $1}') || cl_fail "read big$w on node $f2"
    t1=$(cl_now_ms)
    cl_expect_eq "$got" "$want" "sha256 of big$w read on node $f2"
    cl_log "read of $MB MiB on node $f2: $((t1 - t0)) ms ($(rate "$MB" $((t1 - t0))))"
done
touch "$CL_DIR/stop_reader"
wait "$reader"
read -r ok bad <"$CL_DIR/reader.out"
cl_log "small-file reader on node $f2: $ok reads, $bad failed"
[ "$bad" = 0 ] || cl_fail "$bad small-file reads failed during the big writes: $(head -3 "$CL_DIR/reader.err")"
[ "$ok" -gt 0 ] || cl_fail "the small-file reader never read"

# hstore put/get of a 100 MB value, through a follower
head -c $((PUT_MB * 1000 * 1000)) "$CL_DIR/src" >"$CL_DIR/val"
want=$(sha256sum <"$CL_DIR/val" | awk '{print $1}')
t0=$(cl_now_ms)
hs_via "$f1" put --timeout 30 bigkey <"$CL_DIR/val" || cl_fail "hstore put of $PUT_MB MB (exit $?)"
t1=$(cl_now_ms)
cl_log "hstore put of $PUT_MB MB: $((t1 - t0)) ms"
t0=$(cl_now_ms)
got=$(hs_via "$f2" get --timeout 30 bigkey | sha256sum | awk '{print $1}')
t1=$(cl_now_ms)
cl_expect_eq "$got" "$want" "sha256 of hstore get of the $PUT_MB MB value"
cl_log "hstore get of $PUT_MB MB: $((t1 - t0)) ms"
# the same value from a pipe (size not known in advance)
cat "$CL_DIR/val" | hs put --timeout 30 bigkey2 || cl_fail "hstore put of $PUT_MB MB from a pipe"
cl_expect_eq "$(hs get --timeout 30 bigkey2 | sha256sum | awk '{print $1}')" "$want" "sha256 of bigkey2"
cl_expect_eq "$(stat -c %s "$(fs_mnt "$leader")/bigkey")" $((PUT_MB * 1000 * 1000)) "size of bigkey in the mount"

# past --max-file-size (256 MiB): EFBIG before anything is staged
truncate -s 300M "$CL_DIR/huge"
hs put --timeout 30 huge <"$CL_DIR/huge" 2>"$CL_DIR/put.err"
rc=$?
cl_expect_eq "$rc" 2 "exit code of a put past --max-file-size ($(cat "$CL_DIR/put.err"))"
grep -q "File too large" "$CL_DIR/put.err" || cl_fail "put past the limit: $(cat "$CL_DIR/put.err")"
hs get huge >/dev/null 2>&1
cl_expect_eq "$?" 1 "the refused value does not exist"
# and through a mount: EFBIG from dd
dd if=/dev/zero of="$(fs_mnt "$f1")/huge" bs=1M seek=256 count=1 2>"$CL_DIR/dd.err" &&
    cl_fail "dd past --max-file-size succeeded"
grep -q "File too large" "$CL_DIR/dd.err" || cl_fail "dd past the limit: $(cat "$CL_DIR/dd.err")"

after=$(terms)
cl_log "terms before: $(echo $before); after: $(echo $after)"
cl_expect_eq "$after" "$before" "terms of all nodes (an election happened during the large writes)"
cl_pass
