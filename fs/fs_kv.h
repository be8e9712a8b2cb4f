/*
 * fs_kv.h — the state-machine operations the FUSE layer needs, as plain C
 * calls: each one encodes a kv operation (raftkv/kv.h), submits it through
 * the mount's backend (fs/fs_backend.h: a linearizable read, or a replicated
 * command with an exactly-once (client id, seq) pair) and decodes the reply.
 *
 * Every function returns 0 (or a byte count) on success and a negative errno
 * on failure; -EIO means the deadline passed without an answer (no quorum:
 * the outcome of a command is then unknown).  Keeping this seam narrow lets
 * the other files of fs/ speak FUSE only, and keeps the wire format of kv
 * operations in one place.
 *
 * Exactly-once ids: a mount has a random 64-bit client id base.  Each
 * command borrows a "session" (client id = base + slot) from a small pool for
 * its whole life, so one client id never has two commands in flight and its
 * sequence numbers reach the state machine in order; a retry inside the
 * deadline (the backend's job) reuses the same pair.  The pool grows to the
 * number of FUSE threads that write at once.
 */
#ifndef HSTORE_FS_KV_H
#define HSTORE_FS_KV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include "fs/fs_backend.h"
#include "raftkv/kv_ops.h"

typedef struct fs_attr {
    uint64_t ino;
    uint32_t mode; /* type and permission bits */
    uint32_t nlink;
    uint32_t uid, gid;
    uint64_t size;
    uint64_t rdev;
    struct timespec atime, mtime, ctime;
    uint64_t version; /* ctime in ns: moves on with every change (PUT_IF) */
} fs_attr;

/* setattr field mask */
enum {
    FS_SET_MODE = 1 << 0,
    FS_SET_UID = 1 << 1,
    FS_SET_GID = 1 << 2,
    FS_SET_ATIME = 1 << 3,     /* to the given time */
    FS_SET_ATIME_NOW = 1 << 4, /* to the time the proposing node stamps on the command */
    FS_SET_MTIME = 1 << 5,
    FS_SET_MTIME_NOW = 1 << 6,
};

/* A session registered with the cluster (register_session); a slot whose
 * session expired is dropped, and one idle for FS_KV_SESSION_IDLE_MS is
 * replaced before use (the cluster may have expired it). */
typedef struct fs_kv_session {
    uint64_t client_id;
    uint64_t next_seq;
    uint64_t last_ms; /* CLOCK_MONOTONIC ms of its last command */
} fs_kv_session;
#define FS_KV_SESSION_IDLE_MS (10 * 60 * 1000)

typedef struct fs_kv {
    fs_backend b;
    int timeout_ms;
    uint64_t client_base;
    uint64_t holder; /* this node's id: the holder of open-file references */
    pthread_mutex_t mu;
    fs_kv_session *free_list; /* stack of idle sessions */
    size_t n_free, cap_free;
    uint64_t n_sessions; /* sessions ever made (slot numbers) */
} fs_kv;

/* A session held by one open file across calls, for a command whose outcome
 * is unknown (the deadline passed): the retry must carry the same (client
 * id, seq) and the same bytes, so the state machine applies it at most once.
 * Zero-initialize; fs_kv_held_drop() when done with it. */
typedef struct fs_kv_held {
    fs_kv_session s;
    bool have;    /* s is taken from the pool */
    uint64_t seq; /* != 0: the command sent with this seq is in doubt */
} fs_kv_held;
void fs_kv_held_drop(fs_kv *k, fs_kv_held *h);

int fs_kv_init(fs_kv *k, const fs_backend *b, uint64_t client_base, uint64_t holder,
               int timeout_ms);
void fs_kv_destroy(fs_kv *k);

/* Ops that take (path, ino) address the inode when ino != 0 (the mount
 * always passes an inode and path NULL), else the path from the root.  Ops
 * on names take (dir, name): the directory's inode and one name in it. */

/* The writer's credentials that the data-changing commands of this thread
 * carry from now on (kv.h "Set-id bits": uid 0 keeps set-id bits). */
void fs_kv_set_writer(uint32_t uid, uint32_t gid);

/* Reads (linearizable). */
int fs_kv_stat(fs_kv *k, const char *path, uint64_t ino, fs_attr *a);
/* The inode named name in directory dir. */
int fs_kv_lookup(fs_kv *k, uint64_t dir, const char *name, fs_attr *a);
/* STAT by path with its own deadline (ms). */
int fs_kv_stat_within(fs_kv *k, const char *path, int timeout_ms, fs_attr *a);
/* fn gets each entry (only ino and the type bits of mode are filled); a
 * non-zero return stops the walk. */
typedef int (*fs_kv_dirent_fn)(void *arg, const char *name, const fs_attr *a);
int fs_kv_readdir(fs_kv *k, uint64_t ino, fs_kv_dirent_fn fn, void *arg);
/* GETRANGE of inode ino: on >= 0 (the byte count) r->data holds the bytes,
 * the caller replies from it and frees r (kv_reply_free); no copy. */
ssize_t fs_kv_read_reply(fs_kv *k, uint64_t ino, uint64_t off, size_t len, kv_reply *r);
/* The target into buf (NUL-terminated, truncated to size - 1). */
int fs_kv_readlink(fs_kv *k, uint64_t ino, char *buf, size_t size);
int fs_kv_statfs(fs_kv *k, struct statvfs *st);

/* Commands (one replicated command each).  a (may be NULL) receives the
 * attributes of the inode acted on. */
/* CREATE: excl => EEXIST if it exists; trunc => an existing file is emptied. */
int fs_kv_create(fs_kv *k, uint64_t dir, const char *name, uint32_t mode, uint32_t uid,
                 uint32_t gid, bool excl, bool trunc, fs_attr *a);
int fs_kv_mknod(fs_kv *k, uint64_t dir, const char *name, uint32_t mode, uint64_t rdev,
                uint32_t uid, uint32_t gid, fs_attr *a);
int fs_kv_mkdir(fs_kv *k, uint64_t dir, const char *name, uint32_t mode, uint32_t uid, uint32_t gid,
                fs_attr *a);
int fs_kv_unlink(fs_kv *k, uint64_t dir, const char *name);
int fs_kv_rmdir(fs_kv *k, uint64_t dir, const char *name);
int fs_kv_symlink(fs_kv *k, const char *target, uint64_t dir, const char *name, uint32_t uid,
                  uint32_t gid, fs_attr *a);
/* A new name (dir, name) for inode ino. */
int fs_kv_link(fs_kv *k, uint64_t ino, uint64_t dir, const char *name, fs_attr *a);
int fs_kv_rename(fs_kv *k, uint64_t dir, const char *name, uint64_t dir2, const char *name2,
                 unsigned flags);
/* Writes return the byte count on success. */
ssize_t fs_kv_write_at(fs_kv *k, const char *path, uint64_t ino, uint64_t off, const char *data,
                       size_t len);
ssize_t fs_kv_append(fs_kv *k, const char *path, uint64_t ino, const char *data, size_t len);
/* Replaces the whole content (the file is created, mode/uid/gid, if missing). */
int fs_kv_put(fs_kv *k, const char *path, const char *data, size_t len, uint32_t mode, uint32_t uid,
              uint32_t gid);
/* Replaces the whole content of inode ino (a regular file). */
int fs_kv_put_ino(fs_kv *k, uint64_t ino, const char *data, size_t len);
/* Replaces the whole content of regular file ino if its version is still
 * version (kv.h PUT_IF): -ECANCELED when the inode changed since.  Run with
 * held: on -EIO the command stays in doubt and the next call (which must
 * pass the same bytes) retries it exactly once. */
int fs_kv_put_if(fs_kv *k, fs_kv_held *held, uint64_t ino, uint64_t version, const char *data,
                 size_t len, fs_attr *a);
/* UPLOAD_WRITE (kv_ops.h) of upload's staged [0, len) at off of ino, through
 * a held session (same retry rule): the bytes streamed as parts become
 * visible at once. */
int fs_kv_upload_write_held(fs_kv *k, fs_kv_held *held, uint64_t upload, uint64_t ino, uint64_t off,
                            uint64_t len);
/* WRITE_AT through a held session (same retry rule). */
ssize_t fs_kv_write_at_held(fs_kv *k, fs_kv_held *held, uint64_t ino, uint64_t off,
                            const char *data, size_t len);
int fs_kv_truncate(fs_kv *k, const char *path, uint64_t ino, uint64_t size);
/* TRUNCATE that also returns the attributes after it (a may be NULL). */
int fs_kv_truncate_attr(fs_kv *k, const char *path, uint64_t ino, uint64_t size, fs_attr *a);

/* Values past one part (KV_PART_SIZE) are uploaded in parts and committed at
 * once (kv.h UPLOAD_*); fs_kv_put does it by itself for a long value.
 *   fs_kv_upload_id:     a fresh random upload id;
 *   fs_kv_upload_parts:  len bytes at off (a multiple of KV_PART_SIZE), in
 *                        windows of FS_KV_UPLOAD_WINDOW parts submitted at
 *                        once (the parts of a window that timed out are sent
 *                        again, up to FS_KV_UPLOAD_TRIES tries: parts are
 *                        idempotent);
 *                        total is the whole value's size, or 0 when not
 *                        known yet;
 *   fs_kv_upload_abort:  drops the staging (an abandoned one also expires);
 *   fs_kv_put_large:     a new upload of the whole value, committed to path
 *                        as a PUT would (-EIO for KV_EUPLOAD: parts missing). */
#define FS_KV_UPLOAD_WINDOW 8
#define FS_KV_UPLOAD_TRIES 3
uint64_t fs_kv_upload_id(void);
int fs_kv_upload_parts(fs_kv *k, uint64_t upload, uint64_t total, uint64_t off, const char *data,
                       size_t len);
int fs_kv_upload_abort(fs_kv *k, uint64_t upload);
int fs_kv_put_large(fs_kv *k, const char *path, const char *data, size_t len, uint32_t mode,
                    uint32_t uid, uint32_t gid);
int fs_kv_setattr(fs_kv *k, const char *path, uint64_t ino, unsigned mask, uint32_t mode,
                  uint32_t uid, uint32_t gid, const struct timespec *atime,
                  const struct timespec *mtime);
/* This node leaves the open-file holders (kv.h "Open files"): at unmount. */
int fs_kv_hold_gone(fs_kv *k);

#endif
