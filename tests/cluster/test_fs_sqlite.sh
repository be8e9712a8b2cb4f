#!/usr/bin/env bash
# SQLite on the mount, and shared mappings:
#  - a database created through node 1's mount switches to WAL mode (the
#    WAL index is a shared mapping of the -shm file, which works on a node),
#    is written in WAL mode, and after node 1 is done it is read and written
#    through node 2's mount, then again through node 1's: the database
#    stays usable and consistent (integrity_check), and it can go back to
#    rollback mode;
#  - a MAP_SHARED mapping of a file opened read-write: bytes stored through
#    it (msync) are in the file for every node, and a read-only shared
#    mapping shows the file;
#  - a file opened read-write (which goes through the node's page cache so
#    it can be mapped) still reads fresh: a change made on another node,
#    even one that keeps the size, is seen by the next read() of a
#    descriptor that was already open.
. "$(dirname "$0")/fs_lib.sh" "$@"
command -v sqlite3 >/dev/null || cl_fail "sqlite3 is not installed (make deps)"
cl_start 3 --op-timeout-ms "$OPT_MS"
fs_wait_mounts 20
M1=$(fs_mnt 1) M2=$(fs_mnt 2) M3=$(fs_mnt 3)

sql() { # sql MOUNT STATEMENTS: runs them, fails the test on any error
    local out
    out=$(sqlite3 -batch -bail "$1/db.sqlite" "$2" 2>&1) || cl_fail "sqlite3 on $1: $2: $out"
    echo "$out"
}

cl_log "create a database on node 1, switch it to WAL"
sql "$M1" "create table t(x integer); insert into t values(1);" >/dev/null
mode=$(sql "$M1" "pragma journal_mode=wal;")
cl_log "journal_mode=wal answered '$mode'"
cl_expect_eq "$mode" wal "journal mode after pragma journal_mode=wal"
sql "$M1" "insert into t values(2); insert into t values(3);" >/dev/null
cl_expect_eq "$(sql "$M1" "select sum(x) from t;")" 6 "sum on node 1 in WAL mode"

cl_log "node 2 reads and writes the database"
cl_expect_eq "$(sql "$M2" "select sum(x) from t;")" 6 "sum read on node 2"
sql "$M2" "insert into t values(10);" >/dev/null
cl_expect_eq "$(sql "$M2" "pragma integrity_check;")" ok "integrity on node 2"
cl_log "node 1 and node 3 again"
cl_expect_eq "$(sql "$M1" "select sum(x) from t;")" 16 "sum on node 1 after node 2's write"
sql "$M3" "insert into t values(100);" >/dev/null
cl_expect_eq "$(sql "$M1" "select count(*), sum(x) from t;")" "5|116" "rows on node 1"
cl_log "back to rollback mode"
cl_expect_eq "$(sql "$M2" "pragma journal_mode=delete;")" delete "journal mode back to delete"
sql "$M2" "insert into t values(1000);" >/dev/null
cl_expect_eq "$(sql "$M3" "select sum(x) from t; pragma integrity_check;")" "1116
ok" "sum and integrity on node 3"
[ -e "$M1/db.sqlite-wal" ] && cl_fail "the WAL file is left behind"

cl_log "shared mappings"
PY=$CL_DIR/map.py
cat >"$PY" <<'EOF'
import mmap, os, sys
p = sys.argv[1]
fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"." * 8192)
m = mmap.mmap(fd, 8192)                      # MAP_SHARED, read and write
m[0:5] = b"hello"
m[8187:8192] = b"world"
m.flush()
r = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)   # MAP_SHARED, read only
print(r[0:5].decode(), r[8187:].decode(), len(r))
r.close()
m.close()
os.close(fd)
EOF
out=$(python3 "$PY" "$M1/mapped" 2>&1) || cl_fail "shared mapping on node 1: $out"
cl_expect_eq "$out" "hello world 8192" "shared mappings on node 1"
got=$(head -c 5 "$M2/mapped"; tail -c 5 "$M2/mapped"; stat -c ' %s' "$M2/mapped")
cl_expect_eq "$got" "helloworld 8192" "mapped writes seen on node 2"

cl_log "read() on a read-write descriptor after another node's change"
cat >"$PY" <<'EOF'
import os, subprocess, sys
a, b = sys.argv[1], sys.argv[2]
fd = os.open(a, os.O_RDWR)
out = [os.pread(fd, 100, 0).decode()]
subprocess.run(["dd", "of=" + b, "conv=notrunc", "status=none"], input=b"NEWER", check=True)
out.append(os.pread(fd, 100, 0).decode())
subprocess.run(["sh", "-c", "printf '|tail' >>'%s'" % b], check=True)
out.append(os.pread(fd, 100, 0).decode())
os.close(fd)
print(" ".join(out))
EOF
printf 'older' >"$M1/rw" || cl_fail "write rw"
out=$(python3 "$PY" "$M1/rw" "$M2/rw" 2>&1) || cl_fail "fresh reads: $out"
cl_expect_eq "$out" "older NEWER NEWER|tail" "reads through an open read-write descriptor"
cl_pass
