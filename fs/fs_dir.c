/*
 * fs_dir.c — names and directories of the mount: lookup, readlink, mknod,
 * mkdir, symlink, link, unlink, rmdir, rename, and the listing of an open
 * directory.  A lookup is one linearizable read of (parent inode, name);
 * every change is one replicated command on (parent inode, name); a listing
 * is one linearizable read of the whole directory when it is opened or
 * rewound.  The control view's names refuse every change.
 */
#include "fs/fs_internal.h"

#include <stdio.h> /* RENAME_NOREPLACE, RENAME_EXCHANGE */
#include <stdlib.h>

#define FS_DIR_MAGIC 0x68736664u /* "hsfd" */

void fs_ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_mount *m = req_mount(req);
    if (is_ctl_name(parent, name)) {
        fs_ctl_reply_entry(req, m, FS_CTL_INO_DIR);
        return;
    }
    if (parent == FS_CTL_INO_DIR) {
        if (strcmp(name, FS_CTL_STATUS_NAME) == 0)
            fs_ctl_reply_entry(req, m, FS_CTL_INO_STATUS);
        else
            fuse_reply_err(req, ENOENT);
        return;
    }
    if (parent == FS_CTL_INO_STATUS) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    int rc = check_name(name);
    fs_attr a;
    fs_opening o;
    fs_opening_add(m, &o);
    if (rc == 0)
        rc = fs_kv_lookup(&m->kv, parent, name, &a);
    if (rc < 0) {
        fs_lookup_note(m, &o, 0, 0);
        reply_err(req, rc);
        return;
    }
    struct fuse_entry_param e;
    uint64_t t0;
    fs_entry_param(m, &a, &e, &t0, true);
    fs_lookup_note(m, &o, S_ISDIR(a.mode) ? 0 : a.ino, (uint64_t)(e.entry_timeout * 1000.0) + 1);
    fuse_reply_entry(req, &e);
    fs_cache_replied_name(m, a.ino, e.entry_timeout, e.attr_timeout, t0);
}

void fs_ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    /* Nothing is kept per kernel inode: the numbers are the store's. */
    fuse_reply_none(req);
}

void fs_ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    fuse_reply_none(req);
}

void fs_ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
    fs_mount *m = req_mount(req);
    if (is_ctl_ino(ino)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    char *buf = malloc(PATH_MAX + 1);
    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    int rc = fs_kv_readlink(&m->kv, ino, buf, PATH_MAX + 1);
    if (rc == -ENOENT)
        rc = -ESTALE; /* gone since the lookup: look again (fs_attr.c getattr_ino) */
    if (rc < 0)
        reply_err(req, rc);
    else
        fuse_reply_readlink(req, buf);
    free(buf);
}

void fs_ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    fs_mount *m = req_mount(req);
    int rc = check_mutable(parent, name, -EEXIST);
    fs_attr a;
    if (rc == 0) {
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        rc = fs_kv_mknod(&m->kv, parent, name, (uint32_t)mode, (uint64_t)rdev, ctx->uid, ctx->gid,
                         &a);
    }
    if (rc < 0)
        reply_err(req, rc);
    else
        fs_reply_entry(req, &a);
}

void fs_ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    fs_mount *m = req_mount(req);
    int rc = check_mutable(parent, name, -EEXIST);
    fs_attr a;
    if (rc == 0) {
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        rc = fs_kv_mkdir(&m->kv, parent, name, (uint32_t)(mode & 07777), ctx->uid, ctx->gid, &a);
    }
    if (rc < 0)
        reply_err(req, rc);
    else
        fs_reply_entry(req, &a);
}

void fs_ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_mount *m = req_mount(req);
    int rc = check_mutable(parent, name, -EISDIR);
    if (rc == 0)
        rc = fs_kv_unlink(&m->kv, parent, name);
    reply_err(req, rc);
}

void fs_ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_mount *m = req_mount(req);
    int rc = check_mutable(parent, name, -EBUSY);
    if (rc == 0)
        rc = fs_kv_rmdir(&m->kv, parent, name);
    reply_err(req, rc);
}

void fs_ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    fs_mount *m = req_mount(req);
    int rc = check_mutable(parent, name, -EEXIST);
    if (rc == 0 && strlen(link) >= PATH_MAX)
        rc = -ENAMETOOLONG;
    fs_attr a;
    if (rc == 0) {
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        rc = fs_kv_symlink(&m->kv, link, parent, name, ctx->uid, ctx->gid, &a);
    }
    if (rc < 0)
        reply_err(req, rc);
    else
        fs_reply_entry(req, &a);
}

void fs_ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                  const char *newname, unsigned int flags)
{
    fs_mount *m = req_mount(req);
    int rc = 0;
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
        rc = -EINVAL; /* RENAME_WHITEOUT: not for a replicated namespace */
    else if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
        rc = -EINVAL;
    else if (is_ctl_ino(parent) || is_ctl_ino(newparent) || is_ctl_name(parent, name) ||
             is_ctl_name(newparent, newname))
        rc = -EPERM;
    if (rc == 0)
        rc = check_name(name);
    if (rc == 0)
        rc = check_name(newname);
    if (rc == 0)
        rc = fs_kv_rename(&m->kv, parent, name, newparent, newname, flags);
    reply_err(req, rc);
}

void fs_ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    fs_mount *m = req_mount(req);
    int rc = is_ctl_ino(ino) ? -EPERM : check_mutable(newparent, newname, -EEXIST);
    fs_attr a;
    if (rc == 0)
        rc = fs_kv_link(&m->kv, ino, newparent, newname, &a);
    if (rc < 0)
        reply_err(req, rc);
    else
        fs_reply_entry(req, &a);
}

/* An open directory (fi->fh of opendir): the listing read at offset 0, in
 * fuse_add_direntry form. */
typedef struct fs_dirh {
    uint32_t magic;
    char *buf;
    size_t len;
    bool filled;
} fs_dirh;

static fs_dirh *dirh_of(struct fuse_file_info *fi)
{
    if (fi == NULL || fi->fh == 0)
        return NULL;
    fs_dirh *d = (fs_dirh *)(uintptr_t)fi->fh;
    return d->magic == FS_DIR_MAGIC ? d : NULL;
}

void fs_ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ino == FS_CTL_INO_STATUS) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    fs_dirh *d = calloc(1, sizeof *d);
    if (d == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    d->magic = FS_DIR_MAGIC;
    fi->fh = (uint64_t)(uintptr_t)d;
    if (fuse_reply_open(req, fi) == -ENOENT) {
        d->magic = 0;
        free(d);
    }
}

typedef struct dir_fill {
    fuse_req_t req;
    fs_dirh *d;
    size_t cap;
    bool root;
    bool oom;
} dir_fill;

/* Appends one entry; its offset is where the next one starts. */
static int dir_add(dir_fill *f, const char *name, uint64_t ino, uint32_t mode)
{
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = (ino_t)ino;
    st.st_mode = (mode_t)mode;
    size_t need = fuse_add_direntry(f->req, NULL, 0, name, NULL, 0);
    if (f->d->len + need > f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4096;
        while (cap < f->d->len + need)
            cap *= 2;
        char *b = realloc(f->d->buf, cap);
        if (b == NULL) {
            f->oom = true;
            return 1;
        }
        f->d->buf = b;
        f->cap = cap;
    }
    fuse_add_direntry(f->req, f->d->buf + f->d->len, need, name, &st, (off_t)(f->d->len + need));
    f->d->len += need;
    return 0;
}

static int readdir_cb(void *arg, const char *name, const fs_attr *a)
{
    dir_fill *f = arg;
    if (f->root && strcmp(name, FS_CTL_NAME) == 0)
        return 0; /* shadowed by the control view, never listed */
    return dir_add(f, name, a->ino, a->mode);
}

void fs_ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_dirh *d = dirh_of(fi);
    if (d == NULL) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (off == 0 || !d->filled) {
        /* The listing and the dots: one linearizable read, all entries at
         * once; later offsets are served from it. */
        free(d->buf);
        d->buf = NULL;
        d->len = 0;
        d->filled = false;
        dir_fill f = {.req = req, .d = d, .root = ino == FS_ROOT_INO};
        dir_add(&f, ".", ino, S_IFDIR);
        dir_add(&f, "..", ino == FS_CTL_INO_DIR ? FS_ROOT_INO : ino, S_IFDIR);
        int rc = 0;
        if (ino == FS_CTL_INO_DIR)
            dir_add(&f, FS_CTL_STATUS_NAME, FS_CTL_INO_STATUS, S_IFREG);
        else
            rc = fs_kv_readdir(&m->kv, ino, readdir_cb, &f);
        if (rc == 0 && f.oom)
            rc = -ENOMEM;
        if (rc < 0) {
            reply_err(req, rc);
            return;
        }
        d->filled = true;
    }
    if (off < 0 || (size_t)off >= d->len) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    size_t n = d->len - (size_t)off;
    fuse_reply_buf(req, d->buf + off, n < size ? n : size);
}

void fs_ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_dirh *d = dirh_of(fi);
    if (d != NULL) {
        d->magic = 0;
        free(d->buf);
        free(d);
    }
    fuse_reply_err(req, 0);
}

/* Directory changes are committed before their call returns: nothing to do. */
void fs_ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    fuse_reply_err(req, 0);
}
