#!/usr/bin/env bash
# A commit that fails is never reported as done, and a retry completes it:
#  1. write 10 bytes (buffered for the whole-file PUT), cut the quorum
#     (nodes 2 and 3 paused), fsync -> EIO; restore it, fsync -> 0 and the
#     10 bytes are there on every node; write 1 byte, close -> 0, content
#     complete.  Run with node 1 as a follower and again as the leader (where
#     the PUT sits in its log while the quorum is cut).
#     Again with 34 MiB written in order (a stream: most of it already
#     shipped as parts when the quorum is cut).
#     And a stream whose window of parts is in flight when the quorum is
#     cut: later writes are buffered until the next window, whose write
#     reports EIO; after the heal fsync and close give 0 and every byte
#     written before the failed write is there, on every node.
#  2. close() after a failed commit reports EIO, never 0.
#  3. `: > f` (a truncation and no data): open(O_TRUNC) commits the
#     truncation, so without a quorum the redirection fails; with the quorum
#     cut after the open, close() returns 0 only if the truncation is
#     committed (the file is empty once the quorum is back).
. "$(dirname "$0")/fs_lib.sh" "$@"
OPT_MS=2000
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2)

# others I: the two nodes other than I.
others() { local j; for j in 1 2 3; do [ "$j" = "$1" ] || echo "$j"; done; }

# ready_all: every node's mount answers a linearizable read again.
ready_all() {
    local i end=$(($(cl_now_ms) + 30000))
    for i in 1 2 3; do
        until stat "$(fs_mnt "$i")/" >/dev/null 2>&1 && ls "$(fs_mnt "$i")/" >/dev/null 2>&1; do
            [ "$(cl_now_ms)" -lt "$end" ] || cl_fail "node $i does not answer after the heal"
            sleep 0.2
        done
    done
}

# The helper runs the system calls on node WHO's mount and pauses/resumes
# the two other nodes itself, so the cut falls exactly between two calls.
# It prints one line per call: the call and its result (OK or the errno name).
PY=$CL_DIR/commit.py
cat >"$PY" <<'EOF'
import errno, os, signal, sys, time
path, pids, opt_ms = sys.argv[1], [int(p) for p in sys.argv[2].split(",")], int(sys.argv[3])
mode = sys.argv[4]
def res(what, f):
    try:
        f()
        print(what, "OK", flush=True)
    except OSError as e:
        print(what, errno.errorcode.get(e.errno, str(e.errno)), flush=True)
def stopped(p):
    # kill() returns before the target is stopped: every thread must show T.
    d = "/proc/%d/task" % p
    for t in os.listdir(d):
        with open("%s/%s/stat" % (d, t)) as f:
            if f.read().rsplit(")", 1)[1].split()[0] != "T":
                return False
    return True
def cut():
    for p in pids: os.kill(p, signal.SIGSTOP)
    end = time.time() + 30
    while not all(stopped(p) for p in pids):
        if time.time() > end:
            print("cut: nodes not stopped after 30 s", flush=True)
            sys.exit(1)
        time.sleep(0.01)
def heal():
    for p in pids: os.kill(p, signal.SIGCONT)
def wait_ok(f, what):
    # after the heal: a new leader may take an election or two
    end = time.time() + 30
    while True:
        try:
            return f()
        except OSError as e:
            if e.errno != errno.EIO or time.time() > end:
                print(what, errno.errorcode.get(e.errno, str(e.errno)), flush=True)
                sys.exit(1)
            time.sleep(0.2)
if mode == "fsync":
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    res("write", lambda: os.write(fd, b"0123456789"))
    cut()
    res("fsync-cut", lambda: os.fsync(fd))
    res("fsync-cut-again", lambda: os.fsync(fd))
    heal()
    wait_ok(lambda: os.fsync(fd), "fsync-healed")
    print("fsync-healed OK", flush=True)
    res("write-1", lambda: os.pwrite(fd, b"B", 10))
    res("close", lambda: os.close(fd))
elif mode == "stream":
    src = sys.argv[5]
    data = os.urandom(34 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    def write_all():
        for i in range(34):
            os.write(fd, data[i << 20:(i + 1) << 20])
    res("write", write_all)
    cut()
    res("fsync-cut", lambda: os.fsync(fd))
    res("fsync-cut-again", lambda: os.fsync(fd))
    heal()
    wait_ok(lambda: os.fsync(fd), "fsync-healed")
    print("fsync-healed OK", flush=True)
    res("write-1", lambda: os.pwrite(fd, b"B", 34 << 20))
    res("close", lambda: os.close(fd))
    with open(src, "wb") as f:
        f.write(data + b"B")
elif mode == "window":
    # A window of parts in flight when the quorum goes: the writes that
    # follow succeed (buffered) until the next window waits for it and
    # reports EIO; nothing written before that write may be lost.
    src = sys.argv[5]
    data = os.urandom(60 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    def write_n(a, b):
        for i in range(a, b):
            os.write(fd, data[i << 20:(i + 1) << 20])
    res("write", lambda: write_n(0, 33))
    time.sleep(1)  # the first window (32 MiB) is staged
    cut()
    done, err = 33, None
    while done < 60 and err is None:
        try:
            os.write(fd, data[done << 20:(done + 1) << 20])
            done += 1
        except OSError as e:
            err = e.errno
    print("window-write", errno.errorcode.get(err, "none"), flush=True)
    print("window-written", done, flush=True)
    heal()
    wait_ok(lambda: os.fsync(fd), "fsync-healed")
    print("fsync-healed OK", flush=True)
    res("close", lambda: os.close(fd))
    with open(src, "wb") as f:
        f.write(data[:done << 20])
elif mode == "close":
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    res("write", lambda: os.write(fd, b"abcdef"))
    cut()
    res("close-cut", lambda: os.close(fd))
    heal()
elif mode == "trunc":
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    cut()
    res("close-trunc", lambda: os.close(fd))
    heal()
EOF

pids_of() { local j out=""; for j in $(others "$1"); do out+="${out:+,}${CL_PID[$j]}"; done; echo "$out"; }

run_fsync_case() { # WHO NAME [stream]
    local who=$1 name=$2 mode=${3:-fsync} m out
    m=$(fs_mnt "$who")
    out=$(python3 "$PY" "$m/$name" "$(pids_of "$who")" "$OPT_MS" "$mode" "$CL_DIR/$name.src") ||
        cl_fail "helper failed: $out"
    cl_log "node $who: $(echo $out)"
    echo "$out" | grep -qx "write OK" || cl_fail "write: $out"
    echo "$out" | grep -qx "fsync-cut EIO" || cl_fail "fsync without a quorum must give EIO: $out"
    echo "$out" | grep -qx "fsync-cut-again EIO" || cl_fail "second fsync without a quorum: $out"
    echo "$out" | grep -qx "fsync-healed OK" || cl_fail "fsync after the heal: $out"
    echo "$out" | grep -qx "write-1 OK" || cl_fail "write after the heal: $out"
    echo "$out" | grep -qx "close OK" || cl_fail "close: $out"
    ready_all
    local i
    for i in 1 2 3; do
        if [ "$mode" = stream ]; then
            cl_expect_eq "$(sha256sum <"$(fs_mnt "$i")/$name" | awk '{print $1}')" \
                "$(sha256sum <"$CL_DIR/$name.src" | awk '{print $1}')" "content of the stream on node $i"
        else
            cl_expect_eq "$(cat "$(fs_mnt "$i")/$name")" 0123456789B "content on node $i"
        fi
    done
}

leader=$(cl_wait_leader 20) || cl_fail "no leader"
follower=1
[ "$leader" = 1 ] && follower=2
cl_log "fsync after a failed commit, on follower $follower"
run_fsync_case "$follower" f1
leader=$(cl_wait_leader 20) || cl_fail "no leader"
cl_log "fsync after a failed commit, on leader $leader"
run_fsync_case "$leader" f2
leader=$(cl_wait_leader 20) || cl_fail "no leader"
follower=1
[ "$leader" = 1 ] && follower=2
cl_log "fsync after a failed commit of a stream, on follower $follower"
run_fsync_case "$follower" f3 stream

leader=$(cl_wait_leader 20) || cl_fail "no leader"
cl_log "a window of a stream in flight when the quorum goes, on node $leader"
out=$(python3 "$PY" "$(fs_mnt "$leader")/w1" "$(pids_of "$leader")" "$OPT_MS" window "$CL_DIR/w1.src") ||
    cl_fail "helper failed: $out"
cl_log "$(echo $out)"
echo "$out" | grep -qx "write OK" || cl_fail "write: $out"
echo "$out" | grep -qx "window-write EIO" || cl_fail "a write after a failed window must give EIO: $out"
echo "$out" | grep -qx "window-written 4[1-9]" ||
    cl_fail "writes after the cut are buffered while one window is in flight: $out"
echo "$out" | grep -qx "fsync-healed OK" || cl_fail "fsync after the heal: $out"
echo "$out" | grep -qx "close OK" || cl_fail "close: $out"
ready_all
for i in 1 2 3; do
    cl_expect_eq "$(sha256sum <"$(fs_mnt "$i")/w1" | awk '{print $1}')" \
        "$(sha256sum <"$CL_DIR/w1.src" | awk '{print $1}')" "content of w1 on node $i"
done

cl_log "close() after a failed commit"
out=$(python3 "$PY" "$M1/c" "$(pids_of 1)" "$OPT_MS" close) || cl_fail "helper failed: $out"
cl_log "$(echo $out)"
echo "$out" | grep -qx "close-cut EIO" || cl_fail "close without a quorum must give EIO: $out"
ready_all

cl_log "truncation without data"
printf 'old content\n' >"$M1/t" || cl_fail "write t"
out=$(python3 "$PY" "$M1/t" "$(pids_of 1)" "$OPT_MS" trunc) || cl_fail "helper failed: $out"
cl_log "$(echo $out)"
ready_all
case "$out" in
"close-trunc OK") cl_expect_eq "$(stat -c %s "$M2/t")" 0 "size after a truncation whose close returned 0" ;;
"close-trunc EIO") ;;
*) cl_fail "close after O_TRUNC: $out" ;;
esac
printf 'old content\n' >"$M1/t2" || cl_fail "write t2"
cl_pause 2
cl_pause 3
if sh -c ": >'$M1/t2'" 2>/dev/null; then
    cl_resume 2
    cl_resume 3
    cl_fail "': > t2' succeeded without a quorum"
fi
if sh -c ": >'$M1/t3'" 2>/dev/null; then
    cl_resume 2
    cl_resume 3
    cl_fail "': > t3' (a new file) succeeded without a quorum"
fi
cl_resume 2
cl_resume 3
ready_all
cl_pass
