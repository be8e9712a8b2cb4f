#!/usr/bin/env bash
# Metadata that tools rely on, each compared with a local directory:
#  - mtimes set on a file being written survive the data committed after
#    them: `tar x`, `cp -p`, `cp -a`, and futimens() on an open descriptor
#    followed by close();
#  - fstat() and stat() of a file being written report what the writer wrote
#    or truncated (ftruncate(fd, 4096) before close), and Python's mmap of it
#    works (shared read-only, shared read-write, private);
#  - statfs reports the real limit: the machine's memory without
#    --max-store-bytes (test_fs_limits checks the configured limit).
. "$(dirname "$0")/fs_lib.sh" "$@"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2)
LOCAL=$CL_DIR/local
mkdir -p "$LOCAL"

cl_log "mtimes: tar x, cp -p, cp -a"
SRC=$CL_DIR/src
mkdir -p "$SRC/d/e"
i=0
for f in a d/b d/e/c; do
    i=$((i + 1))
    head -c $((i * 3000)) /dev/urandom >"$SRC/$f"
    touch -d "2001-02-0$i 04:05:06.123456789" "$SRC/$f"
done
touch -d "2002-01-01 00:00:00" "$SRC/d/e"
ln -s a "$SRC/link"
tar -C "$SRC" -cf "$CL_DIR/src.tar" .
# listing DIR: every entry's type, size (files only) and mtime, sorted.
listing() {
    (cd "$1" && find . -mindepth 1 | sort | while read -r p; do
        if [ -f "$p" ]; then stat -c '%n %F %s %y' "$p"; else stat -c '%n %F %y' "$p"; fi
    done)
}
mkdir -p "$LOCAL/tar" "$M1/tar"
tar -C "$LOCAL/tar" -xf "$CL_DIR/src.tar" || cl_fail "tar x locally"
tar -C "$M1/tar" -xf "$CL_DIR/src.tar" || cl_fail "tar x into the mount"
want=$(listing "$LOCAL/tar")
cl_expect_eq "$(listing "$M2/tar")" "$want" "tar x: listing on node 2 against a local directory"
cp -p "$SRC/a" "$LOCAL/cpp" && cp -p "$SRC/a" "$M1/cpp" || cl_fail "cp -p"
cl_expect_eq "$(stat -c '%s %y' "$M2/cpp")" "$(stat -c '%s %y' "$LOCAL/cpp")" "cp -p mtime"
cp -a "$SRC" "$LOCAL/cpa" && cp -a "$SRC" "$M1/cpa" || cl_fail "cp -a"
cl_expect_eq "$(listing "$M2/cpa")" "$(listing "$LOCAL/cpa")" "cp -a: listing on node 2"
cmp -s "$SRC/d/e/c" "$M2/cpa/d/e/c" || cl_fail "cp -a: content of d/e/c"

PY=$CL_DIR/meta.py
cat >"$PY" <<'EOF'
import mmap, os, sys
d, case = sys.argv[1], sys.argv[2]
if case == "futimens":
    p = os.path.join(d, "ft")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"data written before the times are set\n")
    os.utime(fd, ns=(1000000000123456789, 1000000000987654321))
    os.close(fd)
    st = os.stat(p)
    print(st.st_size, st.st_mtime_ns)
elif case == "fstat":
    p = os.path.join(d, "mm")
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"hello")
    out = [os.fstat(fd).st_size, os.stat(p).st_size]
    os.ftruncate(fd, 4096)
    out += [os.fstat(fd).st_size, os.stat(p).st_size]
    for acc in (mmap.ACCESS_READ, mmap.ACCESS_WRITE, mmap.ACCESS_COPY):
        m = mmap.mmap(fd, 0, access=acc)   # shared read-only, shared, private
        out += [len(m), m[:5].decode(), m[4095]]
        m.close()
    os.close(fd)
    print(*out)
EOF
cl_log "futimens before close"
want=$(python3 "$PY" "$LOCAL" futimens) || cl_fail "futimens locally"
got=$(python3 "$PY" "$M1" futimens) || cl_fail "futimens on the mount"
cl_expect_eq "$got" "$want" "size and mtime after futimens and close"
cl_expect_eq "$(stat -c %Y "$M2/ft")" 1000000000 "mtime seen on node 2"

cl_log "fstat and mmap of a file being written"
want=$(python3 "$PY" "$LOCAL" fstat 2>&1) || cl_fail "fstat locally: $want"
got=$(python3 "$PY" "$M1" fstat 2>&1) || cl_fail "fstat on the mount: $got"
cl_log "local: $want; mount: $got"
cl_expect_eq "$got" "$want" "sizes during the write, and the mapping"

cl_log "statfs: the machine's memory bounds the store"
mem=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) * 1024))
read -r blocks bsize < <(stat -f -c '%b %S' "$M2")
total=$((blocks * bsize))
cl_log "statfs total $total bytes, memory $mem bytes"
[ "$total" -gt 0 ] && [ "$total" -le $((mem + 4096)) ] ||
    cl_fail "statfs reports $total bytes on a machine with $mem bytes of memory"
cl_pass
