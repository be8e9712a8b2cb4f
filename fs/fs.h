/*
 * fs.h — the FUSE face of hstore: one node's mount of the replicated store.
 *
 * fs_start() mounts the namespace of the store behind a backend (fs_backend.h;
 * fs_node_backend.h gives one over a running node) at a directory with the
 * libfuse3 low-level API (kernel node ids are the store's inode numbers) and
 * runs the multi-threaded request loop in its own thread; it registers the
 * mount's open files with the backend (set_open_files), which fs_stop()
 * withdraws.  Every FUSE request becomes one state-machine operation submitted
 * through the backend (a linearizable read, or one replicated command that
 * is committed and applied before the system call returns).  fs_stop()
 * unmounts and joins; it never hangs, even when the cluster has no quorum
 * (requests in flight fail with EIO once their deadline passes).
 *
 * The semantics are described at the top of the file that implements them:
 * consistency and limits in fs/fs.c, which writes are buffered into one
 * whole-file PUT and which go write-through in fs/fs_file.c, unlink of an
 * open file in fs/fs_open.c, the control view in fs/fs_ctl.c.
 */
#ifndef HSTORE_FS_H
#define HSTORE_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/fs_backend.h"

typedef struct fs_options {
    int op_timeout_ms;       /* deadline of one operation; <= 0: the backend's default */
    uint64_t max_file_size;  /* EFBIG past this many bytes; 0: the backend's max_file_size */
    uint64_t whole_file_max; /* bytes of a whole-file write buffered in the handle: one
                                   PUT up to it, an upload in parts past it (fs_file.c);
                                   0: FS_WHOLE_FILE_MAX_DEFAULT (capped at max_file_size) */
    bool allow_other;        /* -o allow_other (root, or user_allow_other in fuse.conf) */
    uint64_t client_id;      /* exactly-once id of this mount; 0: a random 64-bit value */
    uid_t uid;               /* owner reported for the control view (.hstore) */
    gid_t gid;
    int max_threads;   /* FUSE worker threads; <= 0: 16 */
    bool debug;        /* libfuse debug output (-d) on stderr */
    int attr_cache_ms; /* longest the kernel keeps attributes, under the node's read
                          lease (fs_cache.c); 0: never (default FS_ATTR_CACHE_MS) */
} fs_options;

#define FS_ATTR_CACHE_MS 1000

#define FS_WHOLE_FILE_MAX_DEFAULT (32u * 1024 * 1024)

/* Defaults: everything 0 except uid/gid = the process's, allow_other = running as
 * root, attr_cache_ms = FS_ATTR_CACHE_MS. */
void fs_options_init(fs_options *o);

typedef struct fs_mount fs_mount;

/* Mounts the store behind b (copied; its context must outlive the mount: call
 * fs_stop() before node_stop()) at mountpoint (which must exist; a stale mount
 * left by a killed node there is detached first).  Returns once the kernel has
 * the mount, with the request loop running.  NULL with a message in err on
 * failure. */
fs_mount *fs_start(const fs_backend *b, const char *mountpoint, const fs_options *opt, char *err,
                   size_t errlen);

/* Unmounts (lazily, so a busy mount never blocks it), waits for the request
 * loop to end (at most about one op timeout, after which the FUSE connection
 * is aborted) and frees everything.  NULL is allowed. */
void fs_stop(fs_mount *m);

/* The mountpoint (absolute path) of a running mount. */
const char *fs_mountpoint(const fs_mount *m);

/* The absolute form of path with only its parent resolved, its last name
 * added as it is: what realpath() would give for a dead mount, which it
 * cannot stat (ENOTCONN).  False with errno set. */
bool fs_resolve_parent(const char *path, char *out, size_t cap);

/* The FUSE mounts at path (as /proc/self/mountinfo names it, escapes
 * undone; a stat of the path would ask a dead mount): how many, and the
 * device numbers of the last, the newest, in *maj and *min when not NULL
 * (left as they are when there is none). */
int fs_fuse_mounts_at(const char *path, unsigned *maj, unsigned *min);

#endif
