#!/usr/bin/env bash
# The kernel's name cache (fs/fs_cache.c) never shows an old name.  A writer
# on node 1 replaces a file the way editors save (write tmp, rename it over
# cur), then creates the name n<i> and removes n<i-1>, and records i once
# all of that returned.  Readers on nodes 2 and 3 go by name every time:
# having read the acknowledged count a, they read cur (its content must be
# at least a, and never less than before: a stale name would lead to the
# replaced file), check that n<a-1> is gone and that n<a> exists (or n<a+1>,
# made before the next step removes n<a>, unless the count moved on).  Meanwhile node 3 is paused (SIGSTOP) for three
# leases, then the leader, then node 3 is cut off for 2 s.  On a kernel that
# can drop every cached name at once (Linux 6.16 and later) the readers'
# lookups must mostly be answered by the kernel (FUSE lookup requests on
# node 2 far fewer than names the reader resolved), so the run shows the
# cache in use.  Long mode: the faults 5 times.
. "$(dirname "$0")/fs_lib.sh" "$@"
. "$(dirname "$0")/lib/faults.sh"
fx_init
rounds=1; fx_mode_long && rounds=5
fs_start_lease_cluster
lookups() { fs_metric "$1" 'hstore_fuse_op_seconds_count{op="lookup"}'; }

ACK=$CL_DIR/acked
STOP=$CL_DIR/stop_clients
PY=$CL_DIR/names.py
cat >"$PY" <<'EOF'
import errno, os, sys, time
role, mnt, ack, stop = sys.argv[1:5]
def put_ack(i):
    with open(ack + ".tmp", "w") as f:
        f.write(str(i))
    os.replace(ack + ".tmp", ack)
def get_ack():
    with open(ack) as f:
        return int(f.read())
end = time.time() + 300
if role == "writer":
    i = 0
    with open(os.path.join(mnt, "cur"), "w") as f:
        f.write("0")
    open(os.path.join(mnt, "n0"), "w").close()
    put_ack(0)
    while not os.path.exists(stop) and time.time() < end:
        i += 1
        try:
            with open(os.path.join(mnt, "tmp"), "w") as f:
                f.write(str(i))
            os.rename(os.path.join(mnt, "tmp"), os.path.join(mnt, "cur"))
            open(os.path.join(mnt, "n%d" % i), "w").close()
            os.unlink(os.path.join(mnt, "n%d" % (i - 1)))
        except OSError as e:
            # a fault: the step may or may not have happened; start over
            # from a state every check accepts
            print("writer: step %d: %s" % (i, e), flush=True)
            while not os.path.exists(stop) and time.time() < end:
                try:
                    with open(os.path.join(mnt, "tmp"), "w") as f:
                        f.write(str(i))
                    os.rename(os.path.join(mnt, "tmp"), os.path.join(mnt, "cur"))
                    if not os.path.exists(os.path.join(mnt, "n%d" % i)):
                        open(os.path.join(mnt, "n%d" % i), "w").close()
                    for j in (i - 1, i - 2):
                        if j >= 0 and os.path.exists(os.path.join(mnt, "n%d" % j)):
                            os.unlink(os.path.join(mnt, "n%d" % j))
                    break
                except OSError as e2:
                    print("writer: retry of step %d: %s" % (i, e2), flush=True)
                    time.sleep(0.2)
        put_ack(i)
        time.sleep(0.02)
    print("acked %d" % i, flush=True)
else:
    prev, n, errs = 0, 0, 0
    while not os.path.exists(stop) and time.time() < end:
        a = get_ack()
        try:
            with open(os.path.join(mnt, "cur")) as f:
                v = int(f.read() or "-1")
            n += 1
            if v < a or v < prev:
                print("stale cur: read %d after %d was acknowledged (before: %d)" % (v, a, prev),
                      flush=True)
            prev = max(prev, v)
            if a >= 1 and os.path.exists(os.path.join(mnt, "n%d" % (a - 1))):
                print("stale name: n%d still there after %d was acknowledged" % (a - 1, a),
                      flush=True)
            n += 1
            # n<a> exists, or the next step made n<a+1> before it removed n<a>
            if (not os.path.exists(os.path.join(mnt, "n%d" % a)) and
                    not os.path.exists(os.path.join(mnt, "n%d" % (a + 1))) and get_ack() == a):
                print("stale name: n%d and n%d missing after %d was acknowledged" % (a, a + 1, a),
                      flush=True)
            n += 1
        except OSError as e:
            errs += 1
            print("error: %s" % e, flush=True)
            time.sleep(0.05)
    print("names %d errors %d" % (n, errs), flush=True)
EOF
l2=$(lookups 2)
python3 "$PY" writer "$(fs_mnt 1)" "$ACK" "$STOP" >"$CL_DIR/writer.out" 2>&1 &
wpid=$!; CL_ALL_PIDS+=("$wpid")
end=$(($(cl_now_ms) + 20000))
until [ -s "$ACK" ]; do
    [ "$(cl_now_ms)" -lt "$end" ] || fx_fail "the writer never started"
    sleep 0.1
done
python3 "$PY" reader "$(fs_mnt 2)" "$ACK" "$STOP" >"$CL_DIR/reader2.out" 2>&1 &
r2=$!; CL_ALL_PIDS+=("$r2")
python3 "$PY" reader "$(fs_mnt 3)" "$ACK" "$STOP" >"$CL_DIR/reader3.out" 2>&1 &
r3=$!; CL_ALL_PIDS+=("$r3")
sleep 2
fx_lease_rounds "$rounds" "$LEASE_MS"
: >"$STOP"
fx_wait_clients "$wpid" "$r2" "$r3"
acked=$(sed -n 's/^acked //p' "$CL_DIR/writer.out")
for i in 2 3; do
    bad=$(grep '^stale' "$CL_DIR/reader$i.out" | head -5)
    [ -z "$bad" ] || fx_fail "node $i: $bad"
done
read -r _ n2 _ e2 < <(grep '^names ' "$CL_DIR/reader2.out")
read -r _ n3 _ e3 < <(grep '^names ' "$CL_DIR/reader3.out")
l2=$(($(lookups 2) - l2))
cl_log "$acked steps acknowledged; names resolved: node 2 $n2 ($e2 errors), node 3 $n3 ($e3 errors); lookup requests on node 2: $l2"
[ "${acked:-0}" -gt 20 ] || fx_fail "only $acked steps were acknowledged"
[ "${n2:-0}" -gt 100 ] && [ "${n3:-0}" -gt 100 ] || fx_fail "too few names resolved ($n2, $n3)"
# Errors only while a reader's node had no quorum (paused or cut off).
[ "${e2:-0}" -lt $((n2 / 10)) ] || fx_fail "node 2: $e2 errors for $n2 names"
kmaj=$(uname -r | cut -d. -f1) kmin=$(uname -r | cut -d. -f2 | tr -dc 0-9)
if [ "$kmaj" -gt 6 ] || { [ "$kmaj" -eq 6 ] && [ "${kmin:-0}" -ge 16 ]; }; then
    [ "$l2" -lt $((n2 / 2)) ] ||
        fx_fail "the kernel cached no names: $l2 lookup requests for $n2 names on node 2"
else
    # no FUSE_NOTIFY_INC_EPOCH: every name goes to the node
    [ "$l2" -ge $((n2 / 2)) ] || fx_fail "names cached without a way to drop them: $l2 lookups for $n2 names"
fi
for i in 1 2 3; do
    v=$(cat "$(fs_mnt "$i")/cur") || fx_fail "final read through mount $i failed"
    [ "$v" -ge "$acked" ] || fx_fail "mount $i: cur holds $v < $acked acknowledged"
done
cl_pass
