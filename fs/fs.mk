# fs.mk — make fragment of the filesystem layer (included by the top-level Makefile).
#
# build/fs_solo: the FUSE layer over the state machine alone (no Raft, no
# network), for POSIX checks of fs/ (tests/cluster/test_fs_posix.sh).  It is
# a backend of its own (fs/fs_backend.h), so it links fs/ without the node's.
# build/fs_check: precise syscall checks (renameat2 flags, O_EXCL, errno values)
# used by the filesystem cluster tests.

FS_SOLO_OBJ := $(filter-out build/obj/fs/fs_node_backend.o,$(FS_OBJ))

build/fs_solo: tests/cluster/fs_solo.c $(FS_SOLO_OBJ) build/libhstore.a $(HDRS)
	@mkdir -p build
	$(CC) $(ALLCFLAGS) -o $@ tests/cluster/fs_solo.c $(FS_SOLO_OBJ) build/libhstore.a $(LDLIBS)

build/fs_check: tests/cluster/fs_check.c
	@mkdir -p build
	$(CC) $(ALLCFLAGS) -o $@ $<

.PHONY: fs-tools
fs-tools: build/fs_solo build/fs_check

# The filesystem cluster tests call build/fs_check.
test-cluster: build/fs_check
