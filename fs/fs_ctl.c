/*
 * fs_ctl.c — the control view of the mount: MOUNT/.hstore/status, a
 * read-only file whose text is generated at open from the backend's status()
 * (id, role, term, leader, commit and applied index, ...).  Lookup finds
 * /.hstore, readdir of the root does not list it, and nothing can be
 * created, removed or renamed under it.  It stays readable without a
 * quorum: the root directory's attributes (which the kernel checks on every
 * path walk) fall back to the last ones read when the store cannot answer —
 * the single exception to "every read is linearizable", and only for the
 * root's mode/owner/times while the cluster is unavailable.
 */
#include "fs/fs_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

static char *status_text(fs_mount *m, size_t *len)
{
    raft_status st;
    memset(&st, 0, sizeof st);
    m->b.ops->status(m->b.ctx, &st);
    char *t = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&t, &n);
    if (f == NULL)
        return NULL;
    fprintf(f, "id %llu\n", (unsigned long long)st.id);
    fprintf(f, "role %s\n", raft_role_name(st.role));
    fprintf(f, "term %llu\n", (unsigned long long)st.term);
    fprintf(f, "leader %llu\n", (unsigned long long)st.leader);
    fprintf(f, "commit %llu\n", (unsigned long long)st.commit);
    fprintf(f, "applied %llu\n", (unsigned long long)st.applied);
    fprintf(f, "first_index %llu\n", (unsigned long long)st.first_index);
    fprintf(f, "last_index %llu\n", (unsigned long long)st.last_index);
    fprintf(f, "snapshot_index %llu\n", (unsigned long long)st.snapshot_index);
    fprintf(f, "members");
    for (uint32_t i = 0; i < st.conf.n && i < RAFT_MAX_NODES; i++)
        fprintf(f, " %llu", (unsigned long long)st.conf.ids[i]);
    fprintf(f, "\nmount %s\nclient_id %016llx\n", m->mountpoint,
            (unsigned long long)m->opt.client_id);
    if (fclose(f) != 0) {
        free(t);
        return NULL;
    }
    *len = n;
    return t;
}

int fs_ctl_getattr(fs_mount *m, fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_uid = m->opt.uid;
    st->st_gid = m->opt.gid;
    st->st_atim = st->st_mtim = st->st_ctim = m->start_time;
    st->st_blksize = 4096;
    if (ino == FS_CTL_INO_DIR) {
        st->st_ino = (ino_t)FS_CTL_INO_DIR;
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
        return 0;
    }
    if (ino == FS_CTL_INO_STATUS) {
        size_t len = 0;
        char *t = status_text(m, &len);
        free(t);
        st->st_ino = (ino_t)FS_CTL_INO_STATUS;
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = (off_t)len;
        clock_gettime(CLOCK_REALTIME, &st->st_mtim);
        st->st_ctim = st->st_mtim;
        return 0;
    }
    return -ENOENT;
}

void fs_ctl_reply_entry(fuse_req_t req, fs_mount *m, fuse_ino_t ino)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = ino;
    e.generation = 1;
    fs_ctl_getattr(m, ino, &e.attr);
    fuse_reply_entry(req, &e);
}

/* open() of the control view: a status file holds the text generated now. */
void fs_ctl_open(fuse_req_t req, fs_mount *m, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ino == FS_CTL_INO_DIR) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, EACCES);
        return;
    }
    fs_handle *h = fs_handle_new(m, FS_H_STATUS);
    if (h == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    h->text = status_text(m, &h->text_len);
    if (h->text == NULL) {
        fs_handle_free(m, h);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 1;
    fuse_reply_open(req, fi);
}

/* fstat of an open status file: the size of the text it holds. */
void fs_ctl_handle_getattr(fs_mount *m, const fs_handle *h, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = (ino_t)FS_CTL_INO_STATUS;
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = (off_t)h->text_len;
    st->st_uid = m->opt.uid;
    st->st_gid = m->opt.gid;
    st->st_mtim = st->st_ctim = st->st_atim = m->start_time;
}

void fs_ctl_read(fuse_req_t req, const fs_handle *h, size_t size, off_t off)
{
    if ((size_t)off >= h->text_len) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    size_t n = h->text_len - (size_t)off;
    if (n > size)
        n = size;
    fuse_reply_buf(req, h->text + off, n);
}
