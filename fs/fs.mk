# fs.mk — make fragment of the filesystem layer (included by the top-level Makefile).
#
# build/fs_solo: the FUSE layer over the state machine alone (no Raft, no
# network), for POSIX checks of fs/ (tests/cluster/test_fs_posix.sh).
# build/fs_check: precise syscall checks (renameat2 flags, O_EXCL, errno values)
# used by the filesystem cluster tests.

FS_SOLO_KV := build/obj/raftkv/kv.o build/obj/raftkv/kv_codec.o build/obj/raftkv/crc32c.o

build/fs_solo: tests/cluster/fs_solo.c $(FS_OBJ) $(FS_SOLO_KV) $(HDRS)
	@mkdir -p build
	$(CC) $(ALLCFLAGS) -o $@ tests/cluster/fs_solo.c $(FS_OBJ) $(FS_SOLO_KV) $(LDLIBS)

build/fs_check: tests/cluster/fs_check.c
	@mkdir -p build
	$(CC) $(ALLCFLAGS) -o $@ $<

.PHONY: fs-tools
fs-tools: build/fs_solo build/fs_check

# The filesystem cluster tests call build/fs_check.
test-cluster: build/fs_check
