/*
 * fs_kv.h — the state-machine operations the FUSE layer needs, as plain C
 * calls: each one encodes a kv operation (raftkv/kv.h), submits it with
 * node_submit() (a linearizable read, or a replicated command with an
 * exactly-once (client id, seq) pair) and decodes the reply.
 *
 * Every function returns 0 (or a byte count) on success and a negative errno
 * on failure; -EIO means the deadline passed without an answer (no quorum:
 * the outcome of a command is then unknown).  Keeping this seam narrow lets
 * fs.c speak FUSE only, and keeps the wire format of kv operations in one
 * place.
 *
 * Exactly-once ids: a mount has a random 64-bit client id base.  Each
 * command borrows a "session" (client id = base + slot) from a small pool for
 * its whole life, so one client id never has two commands in flight and its
 * sequence numbers reach the state machine in order; a retry inside the
 * deadline (node_submit's job) reuses the same pair.  The pool grows to the
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

#include "raftkv/node.h"

typedef struct fs_attr {
    uint64_t ino;
    uint32_t mode;          /* type and permission bits */
    uint32_t nlink;
    uint32_t uid, gid;
    uint64_t size;
    uint64_t rdev;
    struct timespec atime, mtime, ctime;
} fs_attr;

/* setattr field mask */
enum {
    FS_SET_MODE = 1 << 0,
    FS_SET_UID = 1 << 1,
    FS_SET_GID = 1 << 2,
    FS_SET_ATIME = 1 << 3,      /* to the given time */
    FS_SET_ATIME_NOW = 1 << 4,  /* to the time the leader stamps on the command */
    FS_SET_MTIME = 1 << 5,
    FS_SET_MTIME_NOW = 1 << 6,
};

typedef struct fs_kv_session {
    uint64_t client_id;
    uint64_t next_seq;
} fs_kv_session;

typedef struct fs_kv {
    node *n;
    int timeout_ms;
    uint64_t client_base;
    uint64_t holder;            /* this node's id: the holder of open-file references */
    pthread_mutex_t mu;
    fs_kv_session *free_list;   /* stack of idle sessions */
    size_t n_free, cap_free;
    uint64_t n_sessions;        /* sessions ever made (slot numbers) */
} fs_kv;

int fs_kv_init(fs_kv *k, node *n, uint64_t client_base, uint64_t holder, int timeout_ms);
void fs_kv_destroy(fs_kv *k);

/* Ops that take (path, ino) address the inode when ino != 0 (an open file),
 * else the path. */

/* Reads (linearizable). */
int fs_kv_stat(fs_kv *k, const char *path, uint64_t ino, fs_attr *a);
/* STAT by path with its own deadline (ms). */
int fs_kv_stat_within(fs_kv *k, const char *path, int timeout_ms, fs_attr *a);
/* fn gets each entry (only ino and the type bits of mode are filled); a
 * non-zero return stops the walk. */
typedef int (*fs_kv_dirent_fn)(void *arg, const char *name, const fs_attr *a);
int fs_kv_readdir(fs_kv *k, const char *path, fs_kv_dirent_fn fn, void *arg);
/* Up to len bytes at off into buf; returns the count (0 at end of file). */
ssize_t fs_kv_read(fs_kv *k, const char *path, uint64_t ino, uint64_t off, size_t len,
                   char *buf);
/* The target into buf (NUL-terminated, truncated to size - 1). */
int fs_kv_readlink(fs_kv *k, const char *path, char *buf, size_t size);
int fs_kv_statfs(fs_kv *k, struct statvfs *st);

/* Commands (one replicated command each). */
/* CREATE: excl => EEXIST if it exists; trunc => an existing file is emptied. */
int fs_kv_create(fs_kv *k, const char *path, uint32_t mode, uint32_t uid, uint32_t gid,
                 bool excl, bool trunc, fs_attr *a);
int fs_kv_mknod(fs_kv *k, const char *path, uint32_t mode, uint64_t rdev, uint32_t uid,
                uint32_t gid);
int fs_kv_mkdir(fs_kv *k, const char *path, uint32_t mode, uint32_t uid, uint32_t gid);
int fs_kv_unlink(fs_kv *k, const char *path);
int fs_kv_rmdir(fs_kv *k, const char *path);
int fs_kv_symlink(fs_kv *k, const char *target, const char *path, uint32_t uid, uint32_t gid);
int fs_kv_link(fs_kv *k, const char *from, const char *to);
int fs_kv_rename(fs_kv *k, const char *from, const char *to, unsigned flags);
/* Writes return the byte count on success. */
ssize_t fs_kv_write_at(fs_kv *k, const char *path, uint64_t ino, uint64_t off,
                       const char *data, size_t len);
ssize_t fs_kv_append(fs_kv *k, const char *path, uint64_t ino, const char *data, size_t len);
/* Replaces the whole content (the file is created, mode/uid/gid, if missing). */
int fs_kv_put(fs_kv *k, const char *path, const char *data, size_t len, uint32_t mode,
              uint32_t uid, uint32_t gid);
int fs_kv_truncate(fs_kv *k, const char *path, uint64_t ino, uint64_t size);
int fs_kv_setattr(fs_kv *k, const char *path, uint64_t ino, unsigned mask, uint32_t mode,
                  uint32_t uid, uint32_t gid, const struct timespec *atime,
                  const struct timespec *mtime);
/* Open-file references (kv.h "Open files"): keep an unlinked inode alive
 * while this node holds it open. */
int fs_kv_open_ref(fs_kv *k, uint64_t ino);
int fs_kv_close_ref(fs_kv *k, uint64_t ino);
int fs_kv_release_holder(fs_kv *k);

#endif
