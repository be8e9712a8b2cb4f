#!/usr/bin/env bash
# A file written in order past the whole-file bound streams (its bytes go out
# as bounded parts while it is written) and still appears at once at close:
#  - while node 1 writes 40 MiB into a new file, nodes 2 and 3 see it empty;
#    after close every node reads exactly what was written;
#  - a write another node makes past the end while the stream runs is kept
#    (the stream's bytes land at their offsets, around it), as locally;
#  - fsync in the middle of a stream makes what was written so far visible,
#    and the rest follows at close;
#  - another descriptor on the writing node reads the stream's bytes back
#    before close (this node sees its own writes).
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms 60000
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2) M3=$(fs_mnt 3)
MB=40
SRC=$CL_DIR/src
head -c $((MB * 1024 * 1024)) /dev/urandom >"$SRC" || cl_fail "make the source file"
want=$(sha256sum <"$SRC" | awk '{print $1}')

# stream_py MNT NAME STEPS: writes SRC into MNT/NAME in 1 MiB writes with
# O_CREAT|O_TRUNC; STEPS is a list of "at=MIB:action" run once MIB were
# written (pause: write MNT/NAME.paused and wait for MNT/NAME.go; fsync;
# readback: open a second descriptor and compare the first MIB bytes).
stream_py() {
    python3 - "$1" "$2" "$SRC" "$CL_DIR" "$3" <<'PY'
import os, sys, time
mnt, name, src, cdir, steps = sys.argv[1:6]
acts = {}
for s in steps.split():
    at, act = s.split(":")
    acts.setdefault(int(at), []).append(act)
data = open(src, "rb").read()
path = os.path.join(mnt, name)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
mib = 1 << 20
for i in range(len(data) // mib):
    os.write(fd, data[i * mib:(i + 1) * mib])
    for act in acts.get(i + 1, []):
        if act == "pause":
            open(os.path.join(cdir, name + ".paused"), "w").close()
            go = os.path.join(cdir, name + ".go")
            deadline = time.time() + 120
            while not os.path.exists(go):
                if time.time() > deadline:
                    sys.exit("no go signal within 120 s")
                time.sleep(0.05)
        elif act == "fsync":
            os.fsync(fd)
        elif act == "readback":
            r = os.open(path, os.O_RDONLY)
            got = b""
            while len(got) < (i + 1) * mib:
                b = os.pread(r, (i + 1) * mib - len(got), len(got))
                if not b:
                    break
                got += b
            os.close(r)
            if got != data[:(i + 1) * mib]:
                sys.exit("readback of the first %d MiB on the writing node differs (%d bytes)" % (i + 1, len(got)))
os.close(fd)
PY
}

wait_file() {
    local end=$(($(cl_now_ms) + 120000))
    while [ ! -e "$1" ]; do
        [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "the writer did not reach its pause ($1) in 120 s"
        kill -0 "$2" 2>/dev/null || cl_fail "the writer exited before its pause ($1)"
        sleep 0.1
    done
}

cl_log "a $MB MiB stream on node 1 is invisible to nodes 2 and 3 until close"
stream_py "$M1" s1 "36:pause" &
w=$!
CL_ALL_PIDS+=($w)
wait_file "$CL_DIR/s1.paused" "$w"
for i in 2 3; do
    sz=$(stat -c %s "$(fs_mnt "$i")/s1") || cl_fail "stat s1 on node $i during the stream"
    cl_expect_eq "$sz" 0 "size of s1 on node $i while 36 MiB of it are streamed"
done
: >"$CL_DIR/s1.go"
wait "$w" || cl_fail "the writer of s1 failed"
for i in 2 3 1; do
    got=$(sha256sum <"$(fs_mnt "$i")/s1" | awk '{print $1}') || cl_fail "read s1 on node $i"
    cl_expect_eq "$got" "$want" "sha256 of s1 on node $i after close"
done

cl_log "a write past the end on node 2 during the stream is kept"
stream_py "$M1" s2 "36:pause" &
w=$!
CL_ALL_PIDS+=($w)
wait_file "$CL_DIR/s2.paused" "$w"
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"node2-tail", 50 << 20)
os.close(fd)' "$M2/s2" || cl_fail "pwrite past the end on node 2"
: >"$CL_DIR/s2.go"
wait "$w" || cl_fail "the writer of s2 failed"
cl_expect_eq "$(stat -c %s "$M3/s2")" $(((50 << 20) + 10)) "size of s2 on node 3"
got=$(head -c $((MB << 20)) "$M3/s2" | sha256sum | awk '{print $1}')
cl_expect_eq "$got" "$want" "the streamed bytes of s2 on node 3"
cl_expect_eq "$(tail -c 10 "$M3/s2")" "node2-tail" "node 2's write at 50 MiB in s2"
zeros=$(tail -c $(((10 << 20) + 10)) "$M3/s2" | head -c $((10 << 20)) | tr -d '\0' | wc -c)
cl_expect_eq "$zeros" 0 "non-zero bytes in the hole of s2"

cl_log "fsync in the middle of a stream, and a read back on the writing node"
stream_py "$M1" s3 "34:readback 36:fsync 36:pause" &
w=$!
CL_ALL_PIDS+=($w)
wait_file "$CL_DIR/s3.paused" "$w"
cl_expect_eq "$(stat -c %s "$M2/s3")" $((36 << 20)) "size of s3 on node 2 after the fsync at 36 MiB"
got=$(head -c $((36 << 20)) "$M2/s3" | sha256sum | awk '{print $1}')
cl_expect_eq "$got" "$(head -c $((36 << 20)) "$SRC" | sha256sum | awk '{print $1}')" \
    "the first 36 MiB of s3 on node 2 after the fsync"
: >"$CL_DIR/s3.go"
wait "$w" || cl_fail "the writer of s3 failed"
got=$(sha256sum <"$M2/s3" | awk '{print $1}')
cl_expect_eq "$got" "$want" "sha256 of s3 on node 2 after close"
cl_pass
