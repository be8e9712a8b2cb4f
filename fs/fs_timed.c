/*
 * fs_timed.c — the FUSE operations, each timed: a wrapper per operation
 * calls the handler (fs_ll_*, which replies before it returns) and tells
 * the backend how long it took (fs_backend_ops.observe), so the node can
 * count FUSE operations by type with their latency (GET /metrics).
 */
#include <time.h>

#include "fs/fs_internal.h"

enum {
    T_LOOKUP,
    T_GETATTR,
    T_SETATTR,
    T_READLINK,
    T_MKNOD,
    T_MKDIR,
    T_UNLINK,
    T_RMDIR,
    T_SYMLINK,
    T_RENAME,
    T_LINK,
    T_OPEN,
    T_READ,
    T_WRITE,
    T_FLUSH,
    T_RELEASE,
    T_FSYNC,
    T_OPENDIR,
    T_READDIR,
    T_RELEASEDIR,
    T_FSYNCDIR,
    T_STATFS,
    T_CREATE,
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void observe(fs_mount *m, unsigned op, const char *name, uint64_t t0)
{
    if (m->b.ops->observe)
        m->b.ops->observe(m->b.ctx, op, name, mono_ns() - t0);
}

/* A wrapper: PARAMS the handler's parameters, ARGS the call. */
#define TIMED(NAME, OP, PARAMS, ARGS) \
    static void timed_##NAME PARAMS   \
    {                                 \
        fs_mount *m = req_mount(req); \
        uint64_t t0 = mono_ns();      \
        fs_cache_begin(m);            \
        fs_ll_##NAME ARGS;            \
        observe(m, OP, #NAME, t0);    \
    }

TIMED(lookup, T_LOOKUP, (fuse_req_t req, fuse_ino_t p, const char *name), (req, p, name))
TIMED(getattr, T_GETATTR, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
      (req, ino, fi))
TIMED(setattr, T_SETATTR,
      (fuse_req_t req, fuse_ino_t ino, struct stat *a, int set, struct fuse_file_info *fi),
      (req, ino, a, set, fi))
TIMED(readlink, T_READLINK, (fuse_req_t req, fuse_ino_t ino), (req, ino))
TIMED(mknod, T_MKNOD, (fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode, dev_t rdev),
      (req, p, name, mode, rdev))
TIMED(mkdir, T_MKDIR, (fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode),
      (req, p, name, mode))
TIMED(unlink, T_UNLINK, (fuse_req_t req, fuse_ino_t p, const char *name), (req, p, name))
TIMED(rmdir, T_RMDIR, (fuse_req_t req, fuse_ino_t p, const char *name), (req, p, name))
TIMED(symlink, T_SYMLINK, (fuse_req_t req, const char *link, fuse_ino_t p, const char *name),
      (req, link, p, name))
TIMED(rename, T_RENAME,
      (fuse_req_t req, fuse_ino_t p, const char *name, fuse_ino_t np, const char *nn,
       unsigned int flags),
      (req, p, name, np, nn, flags))
TIMED(link, T_LINK, (fuse_req_t req, fuse_ino_t ino, fuse_ino_t np, const char *nn),
      (req, ino, np, nn))
TIMED(open, T_OPEN, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))
TIMED(read, T_READ,
      (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
      (req, ino, size, off, fi))
TIMED(write, T_WRITE,
      (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
       struct fuse_file_info *fi),
      (req, ino, buf, size, off, fi))
TIMED(flush, T_FLUSH, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))
TIMED(release, T_RELEASE, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
      (req, ino, fi))
TIMED(fsync, T_FSYNC, (fuse_req_t req, fuse_ino_t ino, int ds, struct fuse_file_info *fi),
      (req, ino, ds, fi))
TIMED(opendir, T_OPENDIR, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
      (req, ino, fi))
TIMED(readdir, T_READDIR,
      (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
      (req, ino, size, off, fi))
TIMED(releasedir, T_RELEASEDIR, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
      (req, ino, fi))
TIMED(fsyncdir, T_FSYNCDIR, (fuse_req_t req, fuse_ino_t ino, int ds, struct fuse_file_info *fi),
      (req, ino, ds, fi))
TIMED(statfs, T_STATFS, (fuse_req_t req, fuse_ino_t ino), (req, ino))
TIMED(create, T_CREATE,
      (fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode, struct fuse_file_info *fi),
      (req, p, name, mode, fi))

void fs_timed_ops(struct fuse_lowlevel_ops *o)
{
    o->lookup = timed_lookup;
    o->getattr = timed_getattr;
    o->setattr = timed_setattr;
    o->readlink = timed_readlink;
    o->mknod = timed_mknod;
    o->mkdir = timed_mkdir;
    o->unlink = timed_unlink;
    o->rmdir = timed_rmdir;
    o->symlink = timed_symlink;
    o->rename = timed_rename;
    o->link = timed_link;
    o->open = timed_open;
    o->read = timed_read;
    o->write = timed_write;
    o->flush = timed_flush;
    o->release = timed_release;
    o->fsync = timed_fsync;
    o->opendir = timed_opendir;
    o->readdir = timed_readdir;
    o->releasedir = timed_releasedir;
    o->fsyncdir = timed_fsyncdir;
    o->statfs = timed_statfs;
    o->create = timed_create;
}
