/*
 * fs_attr.c — attributes of the mount's inodes: getattr (the root falls back
 * to the last attributes read while the store cannot answer), setattr (mode,
 * owner, times and size, after the content this node has buffered for the
 * file), statfs, and fs_attr turned into the struct stat of every reply.
 */
#include "fs/fs_internal.h"

void fs_attr_to_stat(const fs_attr *a, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = (ino_t)a->ino;
    st->st_mode = (mode_t)a->mode;
    st->st_nlink = (nlink_t)a->nlink;
    st->st_uid = (uid_t)a->uid;
    st->st_gid = (gid_t)a->gid;
    st->st_size = (off_t)a->size;
    st->st_rdev = (dev_t)a->rdev;
    st->st_blksize = FS_IO_SIZE;
    st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
    st->st_atim = a->atime;
    st->st_mtim = a->mtime;
    st->st_ctim = a->ctime;
}

/* Attributes for as long as fs_cache.c allows; the name (a lookup's) as
 * long when the kernel caches names (fs_cache_names), else not at all. */
void fs_entry_param(fs_mount *m, const fs_attr *a, struct fuse_entry_param *e, uint64_t *t0,
                    bool name)
{
    memset(e, 0, sizeof *e);
    e->ino = (fuse_ino_t)a->ino;
    e->generation = 1; /* inode numbers are never reused */
    fs_attr_to_stat(a, &e->attr);
    e->attr_timeout = fs_cache_timeout(m, a->ino, t0);
    e->entry_timeout = name && fs_cache_names(m) ? e->attr_timeout : 0;
}

void fs_reply_entry(fuse_req_t req, const fs_attr *a)
{
    fs_mount *m = req_mount(req);
    struct fuse_entry_param e;
    uint64_t t0;
    fs_entry_param(m, a, &e, &t0, false);
    fuse_reply_entry(req, &e);
    fs_cache_replied(m, a->ino, e.attr_timeout, t0);
}

/* a fresh from the store (cache: it may be cached), or not. */
static void reply_attr(fuse_req_t req, const fs_attr *a, bool cache)
{
    fs_mount *m = req_mount(req);
    struct stat st;
    fs_attr_to_stat(a, &st);
    uint64_t t0 = 0;
    double t = cache ? fs_cache_timeout(m, a->ino, &t0) : 0;
    fuse_reply_attr(req, &st, t);
    fs_cache_replied(m, a->ino, t, t0);
}

/* The root's attributes.  With default_permissions the kernel re-reads them
 * on every path walk when they are not cached, so without a quorum nothing under the
 * mount could be reached, not even the control view that tells why, and
 * every operation would pay the op timeout twice.  So the root alone is read
 * with a short deadline and falls back to the last attributes read from the
 * store when the store cannot answer in time. */
#define FS_ROOT_STAT_MS 300
static int root_getattr(fs_mount *m, fs_attr *a)
{
    int ms = m->opt.op_timeout_ms < FS_ROOT_STAT_MS ? m->opt.op_timeout_ms : FS_ROOT_STAT_MS;
    int rc = fs_kv_stat_within(&m->kv, "/", ms, a);
    pthread_mutex_lock(&m->rootmu);
    if (rc == 0) {
        m->root_attr = *a;
        m->have_root = true;
    } else if (rc == -EIO) {
        if (!m->have_root) {
            /* Never answered yet: a plain root directory. */
            memset(&m->root_attr, 0, sizeof m->root_attr);
            m->root_attr.ino = FS_ROOT_INO;
            m->root_attr.mode = S_IFDIR | 0755;
            m->root_attr.nlink = 2;
            m->root_attr.atime = m->root_attr.mtime = m->root_attr.ctime = m->start_time;
        }
        *a = m->root_attr;
        rc = 1; /* not from the store: never cached */
    }
    pthread_mutex_unlock(&m->rootmu);
    return rc;
}

/* The attributes of ino (stat and fstat on this node see the size of
 * content a handle here has pending).  An inode that is gone answers ESTALE,
 * not ENOENT: the kernel may ask for it between a lookup and an open
 * (permission checks), and ESTALE makes it look the name up again instead
 * of failing. */
static int getattr_ino(fs_mount *m, fuse_ino_t ino, fs_handle *h, fs_attr *a)
{
    int rc;
    if (ino == FS_ROOT_INO)
        return root_getattr(m, a);
    rc = fs_kv_stat(&m->kv, NULL, ino, a);
    if (rc == -ENOENT)
        rc = -ESTALE;
    if (rc == 0)
        fs_pending_size(m, ino, a);
    return rc;
}

void fs_ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    struct stat st;
    if (h != NULL && h->kind == FS_H_STATUS) {
        fs_ctl_handle_getattr(m, h, &st);
        fuse_reply_attr(req, &st, 0);
        return;
    }
    if (is_ctl_ino(ino)) {
        fs_ctl_getattr(m, ino, &st);
        fuse_reply_attr(req, &st, 0);
        return;
    }
    fs_attr a;
    int rc = getattr_ino(m, ino, h, &a);
    if (rc < 0)
        reply_err(req, rc);
    else
        reply_attr(req, &a, rc == 0);
}

void fs_ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                   struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    if (is_ctl_ino(ino)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    set_writer(req);
    /* Content buffered on this node for the file was written before this
     * call: commit it first, so its commit cannot undo the new attributes
     * (the mtime set by tar x, cp -p, cp -a) or come after a truncation. */
    int rc = fs_sync_others(m, ino, NULL);
    if (rc > 0)
        rc = 0;
    if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE))
        rc = fs_setattr_size(m, ino, h, attr->st_size);
    unsigned mask = 0;
    if (to_set & FUSE_SET_ATTR_MODE)
        mask |= FS_SET_MODE;
    if (to_set & FUSE_SET_ATTR_UID)
        mask |= FS_SET_UID;
    if (to_set & FUSE_SET_ATTR_GID)
        mask |= FS_SET_GID;
    if (to_set & FUSE_SET_ATTR_ATIME_NOW)
        mask |= FS_SET_ATIME_NOW;
    else if (to_set & FUSE_SET_ATTR_ATIME)
        mask |= FS_SET_ATIME;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW)
        mask |= FS_SET_MTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_MTIME)
        mask |= FS_SET_MTIME;
    if (rc == 0 && mask != 0)
        rc = fs_kv_setattr(&m->kv, NULL, ino, mask, (uint32_t)(attr->st_mode & 07777),
                           (uint32_t)attr->st_uid, (uint32_t)attr->st_gid, &attr->st_atim,
                           &attr->st_mtim);
    if (rc == -ENOENT && h == NULL)
        rc = -ESTALE; /* gone since the lookup: look again (getattr_ino) */
    fs_attr a;
    if (rc == 0)
        rc = getattr_ino(m, ino, h, &a);
    if (rc < 0)
        reply_err(req, rc);
    else
        reply_attr(req, &a, rc == 0);
}

void fs_ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
    fs_mount *m = req_mount(req);
    struct statvfs st;
    int rc = fs_kv_statfs(&m->kv, &st);
    if (rc < 0)
        reply_err(req, rc);
    else
        fuse_reply_statfs(req, &st);
}
