/*
 * fs_file.c — open files of the mount: open, create, read, write, flush,
 * fsync, release and truncation by handle, and the whole-file buffer that a
 * handle keeps.
 *
 * Which writes are buffered, which go write-through:
 *
 *   WHOLE-FILE (one conditional PUT at close):  a writable, non-O_APPEND
 *     handle on a regular file that this open created (O_CREAT on a new
 *     name, or O_EXCL) or truncated (O_TRUNC, committed as one command before
 *     open() returns, as on a local filesystem) starts in whole-file mode; a
 *     file that merely happens to be empty at open does not.  While its
 *     writes arrive in order from offset 0 they are kept in the handle, up
 *     to a bound (fs_options.whole_file_max, never more than max_file_size).
 *     At flush (every close()), fsync or release the content is committed as
 *     ONE PUT_IF carrying the inode version the handle started from: the
 *     state machine refuses it on every replica if the file changed since
 *     (another node appended, say), and the handle then writes its bytes at
 *     their offsets instead, so no acknowledged change is overwritten.  A
 *     reader on another node sees the file empty (after the O_TRUNC) or the
 *     new content, never a partial PUT.  close() and fsync return only after
 *     the commit and report its failure; a commit with no answer keeps its
 *     bytes and (client id, seq) in the handle and is sent again by the next
 *     fsync, flush or close (the session makes that exactly-once).  A read or
 *     fstat through the node sees the handle's own pending content.
 *
 *   STREAMING (a whole-file handle past its bound): rather than leaving
 *     whole-file mode, the handle streams.  Its buffered content goes out
 *     as the parts of one chunked upload (kv_ops.h UPLOAD_PART: bounded
 *     entries, sent FS_KV_UPLOAD_WINDOW at a time, so they share fsyncs and
 *     round trips and never starve a heartbeat), and from then on every
 *     FS_STREAM_SHIP bytes written in order go out the same way; the
 *     handle keeps only the bytes not yet shipped.  The commit (flush,
 *     fsync, close) freezes the content, ships its tail and sends ONE
 *     UPLOAD_WRITE that writes all of it at offset 0: a file of any size
 *     appears to other nodes at once, whole, at close, and if something
 *     changed the file meanwhile its bytes land at their offsets, as with
 *     the PUT_IF fallback.  The UPLOAD_WRITE is held like the PUT_IF (a
 *     retry after an unknown outcome resends it exactly once).  Reading
 *     the file through the writing handle first commits it.
 *
 *   WRITE-THROUGH (one WRITE_AT per write(), committed before it returns):
 *     everything else — a handle on an existing file opened without O_TRUNC,
 *     a write that does not start where the previous one ended (a seek, a
 *     sparse write, a rewrite), and everything after a whole-file handle
 *     made a commit.  When a whole-file handle leaves that mode (a seek, a
 *     rewrite) its content is first committed.  A flush or fsync that
 *     committed content also ends whole-file mode for that handle.
 *
 *   APPEND: every write on an O_APPEND descriptor is an APPEND command; the
 *     offset the kernel sends is ignored (it may be stale: another node may
 *     have appended since), the state machine appends at its own end.
 */
#include "fs/fs_internal.h"
#include "node/hotbuf.h"
#include "raftkv/kv_ops.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

/* Whether reads through h must come from its buffer (its own pending content). */
static bool handle_pending(const fs_handle *h)
{
    return h->whole && h->dirty;
}

/* Keeps h->pending (and the mount's count) in step with handle_pending(h).
 * Called with h->mu held. */
static void handle_sync_flag(fs_mount *m, fs_handle *h)
{
    bool p = handle_pending(h);
    atomic_store(&h->pend_len, (uint_least64_t)h->len);
    if (atomic_exchange(&h->pending, p) != p) {
        if (p)
            atomic_fetch_add(&m->npending, 1);
        else
            atomic_fetch_sub(&m->npending, 1);
    }
}

/* Leaves whole-file mode, forgetting the buffer.  Called with h->mu held. */
static void handle_drop_buffer(fs_mount *m, fs_handle *h)
{
    fs_stream_join(h);
    hotbuf_free(h->ship_buf);
    h->ship_buf = NULL;
    h->ship_cap = 0;
    h->whole = false;
    h->dirty = false;
    h->fallback = false;
    h->doubt = false;
    hotbuf_free(h->buf);
    h->buf = NULL;
    h->len = h->cap = h->done = h->doubt_len = 0;
    h->up_id = 0;
    h->up_base = h->up_len = 0;
    h->up_frozen = h->up_shipped = false;
    fs_kv_held_drop(&m->kv, &h->held);
    handle_sync_flag(m, h);
}

/* Bytes of a streaming handle shipped at a time once it streams. */
#define FS_STREAM_SHIP ((size_t)FS_KV_UPLOAD_WINDOW * KV_PART_SIZE)

/* A definite failure of a stream: the staging is dropped (best effort; an
 * abandoned one also expires), the error is sticky.  Called with h->mu. */
static int stream_fail(fs_mount *m, fs_handle *h, int rc)
{
    fs_stream_join(h);
    if (h->up_id)
        fs_kv_upload_abort(&m->kv, h->up_id);
    h->err = rc;
    handle_drop_buffer(m, h);
    return rc;
}

static void *ship_main(void *arg)
{
    fs_handle *h = arg;
    h->ship_rc =
        fs_kv_upload_parts(&h->ship_m->kv, h->up_id, 0, h->ship_base, h->ship_buf, h->ship_n);
    return NULL;
}

int fs_stream_join(fs_handle *h)
{
    if (!h->ship_busy)
        return 0;
    if (h->ship_threaded)
        pthread_join(h->ship_th, NULL);
    h->ship_busy = h->ship_threaded = false;
    return h->ship_rc;
}

/* The buffer being filled and the window's (or spare) buffer trade places. */
static void swap_buffers(fs_handle *h)
{
    char *b = h->buf;
    size_t c = h->cap;
    h->buf = h->ship_buf;
    h->cap = h->ship_cap;
    h->ship_buf = b;
    h->ship_cap = c;
}

/* The window in flight is done: 0, or its error.  After no quorum in time
 * (-EIO) or -ENOMEM its bytes go back in front of the buffer, to go again
 * (parts are idempotent); any other error fails the stream.  Called with
 * h->mu held. */
static int stream_settle(fs_mount *m, fs_handle *h)
{
    if (!h->ship_busy)
        return 0;
    int rc = fs_stream_join(h);
    if (rc == 0)
        return 0;
    if (rc != -EIO && rc != -ENOMEM)
        return stream_fail(m, h, rc);
    size_t keep = h->len - h->up_base, n = h->ship_n;
    if (h->ship_cap >= n + keep) { /* the window's buffer takes the rest too */
        memcpy(h->ship_buf + n, h->buf, keep);
        swap_buffers(h);
    } else {
        char *b = hotbuf_realloc(h->buf, n + keep);
        if (b == NULL)
            return stream_fail(m, h, -ENOMEM);
        memmove(b + n, b, keep);
        memcpy(b, h->ship_buf, n);
        h->buf = b;
        h->cap = n + keep;
    }
    h->up_base = h->ship_base;
    h->ship_n = 0;
    return rc;
}

/* Ships n bytes of data from up_base on, on this thread: 0, -EIO or -ENOMEM
 * (no quorum in time: the bytes stay here, to go again), or the stream's
 * failure.  Called with h->mu held. */
static int ship_now(fs_mount *m, fs_handle *h, const char *data, size_t n)
{
    int rc = fs_kv_upload_parts(&m->kv, h->up_id, 0, h->up_base, data, n);
    if (rc < 0 && rc != -EIO && rc != -ENOMEM)
        return stream_fail(m, h, rc);
    return rc;
}

/* Ships the full parts of the buffer (starting the stream if needed) and
 * keeps only the rest.  The parts go out on a thread of their own while the
 * next writes fill the buffer (the writer's copy overlaps replication and
 * the disks); at most one window is in flight, and the next ship, the
 * commit and every other use of the stream wait for it first.  Parts are
 * idempotent: after no quorum in time nothing has moved and the same bytes
 * go again next time.  Called with h->mu held. */
static int stream_ship(fs_mount *m, fs_handle *h)
{
    int rc = stream_settle(m, h);
    if (rc < 0)
        return rc;
    size_t n = (h->len - h->up_base) / KV_PART_SIZE * KV_PART_SIZE;
    if (n == 0)
        return 0;
    if (h->up_id == 0)
        h->up_id = fs_kv_upload_id();
    /* The full parts leave with the buffer; the rest (under a part) moves
     * to the spare buffer, which becomes the one being filled. */
    size_t rest = h->len - h->up_base - n;
    size_t want = FS_STREAM_SHIP + KV_PART_SIZE;
    if (h->ship_cap < want) {
        hotbuf_free(h->ship_buf);
        h->ship_buf = hotbuf_alloc(want);
        h->ship_cap = h->ship_buf ? want : 0;
    }
    if (h->ship_buf != NULL) {
        memcpy(h->ship_buf, h->buf + n, rest);
        swap_buffers(h);
        h->ship_base = h->up_base;
        h->ship_n = n;
        h->ship_m = m;
        h->up_base += n;
        h->ship_busy = true;
        h->ship_threaded = pthread_create(&h->ship_th, NULL, ship_main, h) == 0;
        if (h->ship_threaded)
            return 0;
        ship_main(h); /* no thread: ship it here, settled at once */
        return stream_settle(m, h);
    }
    /* No spare buffer: ship in place. */
    rc = ship_now(m, h, h->buf, n);
    if (rc < 0)
        return rc;
    memmove(h->buf, h->buf + n, rest);
    h->up_base += n;
    return 0;
}

/* The commit of a streaming handle: the content is frozen at its current
 * length, the tail is shipped, and one held UPLOAD_WRITE writes it all.
 * An unknown outcome keeps everything for the next try (-EIO until then).
 * Called with h->mu held. */
static int stream_commit(fs_mount *m, fs_handle *h)
{
    int src = stream_settle(m, h);
    if (src < 0)
        return src;
    if (!h->up_frozen) {
        h->up_frozen = true;
        h->up_len = h->len;
    }
    if (!h->up_shipped) {
        if (h->up_len > h->up_base) {
            int rc = ship_now(m, h, h->buf, h->up_len - h->up_base);
            if (rc < 0)
                return rc;
        }
        h->up_shipped = true;
    }
    int rc = fs_kv_upload_write_held(&m->kv, &h->held, h->up_id, h->ino, 0, h->up_len);
    if (rc == -EIO && h->held.seq != 0) {
        h->doubt = true;
        return rc;
    }
    h->doubt = false;
    if (rc == -ENOENT) {
        /* Removed on another node meanwhile: nobody can read it again. */
        rc = 0;
    }
    if (rc < 0)
        return stream_fail(m, h, rc);
    h->up_id = 0; /* applied: the staging is gone */
    handle_drop_buffer(m, h);
    return 0;
}

/* Commits the buffered whole-file content, then leaves whole-file mode.
 * Called with h->mu held.
 *
 * The file was empty at version h->ver (this handle created or truncated
 * it), so the fast path is one PUT_IF carrying that version: the state
 * machine replaces the content only if nothing changed the inode since.  If
 * something did (a write from another node, another descriptor), the PUT_IF
 * is refused on every replica alike and the content goes in as WRITE_AT at
 * its offsets, exactly what the write() calls would have done one by one.
 *
 * A command whose outcome is unknown (no quorum before the deadline) leaves
 * the handle as it was: the content stays buffered, the command keeps its
 * (client id, seq), and the next fsync/flush/close resends the same bytes
 * (the session makes that exactly-once); until then every fsync and close
 * reports EIO.  A definite failure (ENOSPC, EFBIG) is sticky: this and
 * every later fsync/flush report it.  Never 0 with data missing. */
static int handle_commit(fs_mount *m, fs_handle *h)
{
    if (h->err)
        return h->err;
    fs_kv_set_writer(h->cuid, h->cgid); /* whoever's request runs the commit */
    if (h->whole && h->dirty && h->up_id)
        return stream_commit(m, h);
    while (h->whole && h->dirty) {
        /* While in doubt, only the bytes sent then may be sent again. */
        size_t n = h->doubt ? h->doubt_len : h->len;
        fs_attr a;
        int rc;
        if (!h->fallback) {
            rc = fs_kv_put_if(&m->kv, &h->held, h->ino, h->ver, h->buf ? h->buf : "", n, &a);
            if (rc == -ECANCELED) {
                h->doubt = false;
                h->fallback = true;
                continue;
            }
        } else {
            ssize_t w = n > h->done ? fs_kv_write_at_held(&m->kv, &h->held, h->ino, h->done,
                                                          h->buf + h->done, n - h->done)
                                    : 0;
            rc = w < 0 ? (int)w : 0;
        }
        if (rc == -EIO && h->held.seq != 0) {
            h->doubt = true;
            h->doubt_len = n;
            return rc;
        }
        h->doubt = false;
        if (rc == -ENOENT) {
            /* The inode is gone (removed on another node): nobody can ever
             * read this content. */
            break;
        }
        if (rc < 0) {
            h->err = rc;
            handle_drop_buffer(m, h);
            return rc;
        }
        h->done = n;
        if (!h->fallback)
            h->ver = a.version; /* a next PUT_IF starts from our own */
        if (n == h->len)
            break;
    }
    if (h->whole)
        handle_drop_buffer(m, h);
    return 0;
}

static void handle_unpin(fs_mount *m, fs_handle *h)
{
    pthread_mutex_lock(&m->hmu);
    if (--h->pins == 0)
        pthread_cond_broadcast(&m->pincv);
    pthread_mutex_unlock(&m->hmu);
}

/* Commits the pending whole-file content of every handle on this mount that
 * has inode ino open, except `except` (which the caller may hold locked).
 * Called before anything on this node reads or changes that inode by other
 * means, so the buffered writes take effect in the order they were made, as
 * on a local filesystem.  Free when nothing is pending.  The caller must
 * not hold any handle's mu but except's.  Returns how many handles had
 * content committed, or the first error. */
#define FS_SYNC_BATCH 16
int fs_sync_others(fs_mount *m, uint64_t ino, const fs_handle *except)
{
    if (ino == 0 || atomic_load(&m->npending) == 0)
        return 0;
    int rc = 0, count = 0;
    for (;;) {
        fs_handle *list[FS_SYNC_BATCH];
        size_t n = 0;
        bool more = false;
        pthread_mutex_lock(&m->hmu);
        for (fs_handle *h = m->handles.next; h != &m->handles; h = h->next) {
            if (h == except || h->kind != FS_H_FILE || h->ino != ino || !atomic_load(&h->pending))
                continue;
            if (n == FS_SYNC_BATCH) {
                more = true;
                break;
            }
            h->pins++;
            list[n++] = h;
        }
        pthread_mutex_unlock(&m->hmu);
        for (size_t i = 0; i < n; i++) {
            pthread_mutex_lock(&list[i]->mu);
            int r = handle_commit(m, list[i]);
            pthread_mutex_unlock(&list[i]->mu);
            if (r < 0 && rc == 0)
                rc = r;
            count++;
            handle_unpin(m, list[i]);
        }
        if (!more || rc < 0)
            return rc < 0 ? rc : count;
    }
}

/* The size to report for inode ino: a handle on this node with pending
 * whole-file content shows that content's size (fstat and stat of a file
 * being written tell what the writer wrote, as locally). */
void fs_pending_size(fs_mount *m, uint64_t ino, fs_attr *a)
{
    if (ino == 0 || atomic_load(&m->npending) == 0)
        return;
    pthread_mutex_lock(&m->hmu);
    for (fs_handle *h = m->handles.next; h != &m->handles; h = h->next)
        if (h->kind == FS_H_FILE && h->ino == ino && atomic_load(&h->pending))
            a->size = (uint64_t)atomic_load(&h->pend_len);
    pthread_mutex_unlock(&m->hmu);
}

/* Makes room for n bytes in the whole-file buffer.  0 or -ENOMEM. */
static int handle_reserve(fs_handle *h, size_t n)
{
    if (n <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 4096;
    while (cap < n)
        cap *= 2;
    char *b = hotbuf_realloc(h->buf, cap);
    if (b == NULL)
        return -ENOMEM;
    h->buf = b;
    h->cap = cap;
    return 0;
}

/* truncate / ftruncate: buffered content (this handle's and, by then, other
 * descriptors') comes first, then the truncation is committed (fstat shows
 * it, the file can be mapped at its new size); the handle leaves whole-file
 * mode. */
int fs_setattr_size(fs_mount *m, fuse_ino_t ino, fs_handle *h, off_t size)
{
    if (size < 0)
        return -EINVAL;
    if ((uint64_t)size > m->max_file_size)
        return -EFBIG;
    int rc = 0;
    if (h != NULL && h->kind == FS_H_FILE) {
        pthread_mutex_lock(&h->mu);
        rc = handle_commit(m, h);
        if (rc == 0)
            rc = fs_kv_truncate(&m->kv, NULL, h->ino, (uint64_t)size);
        pthread_mutex_unlock(&h->mu);
        return rc;
    }
    return fs_kv_truncate(&m->kv, NULL, ino, (uint64_t)size);
}

/* Sets up the handle of a file just opened or created; a holds its
 * attributes (from STAT, TRUNCATE or CREATE).  fresh: this open created the
 * file or truncated it (its content is empty at version a->version), the
 * only case where whole-file mode gives a result the same system calls
 * could give on a local filesystem. */
static int open_common(fuse_req_t req, fs_mount *m, struct fuse_file_info *fi, const fs_attr *a,
                       bool fresh)
{
    int flags = fi->flags;
    bool writable = (flags & O_ACCMODE) != O_RDONLY;
    bool append = (flags & O_APPEND) != 0;

    if (S_ISDIR(a->mode))
        return -EISDIR;
    bool whole = S_ISREG(a->mode) && writable && !append && fresh;
    fs_handle *h = fs_handle_new(m, FS_H_FILE);
    if (h == NULL)
        return -ENOMEM;
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    h->cuid = ctx ? ctx->uid : 0;
    h->cgid = ctx ? ctx->gid : 0;
    h->append = append;
    h->writable = writable;
    h->whole = whole;
    h->ver = a->version;
    h->attr = *a;
    int rc = fs_handle_set_ino(m, h, a->ino);
    if (rc < 0) {
        fs_handle_free(m, h);
        return rc;
    }
    if (writable) /* its size now moves with what this handle writes */
        fs_cache_forget(m, a->ino);
    fi->fh = (uint64_t)(uintptr_t)h;
    /* direct_io (no page cache) for everything, except a regular file
     * opened read-write: that one goes through this node's page cache so
     * it can be mapped MAP_SHARED (the kernel refuses shared mappings of
     * direct_io files, and libfuse 3.14 cannot ask for
     * FUSE_DIRECT_IO_ALLOW_MMAP); that is what SQLite's WAL index (-shm)
     * and Python's default mmap need.  Such a file stays fresh for read():
     * with attr timeouts 0 and FUSE_CAP_AUTO_INVAL_DATA the kernel fetches
     * the attributes (a linearizable STAT) before every read and drops
     * its cached pages when the size or mtime changed; writes still go
     * through at once (no writeback cache).  Pages already mapped are
     * refreshed only at such a revalidation. */
    fi->direct_io = !(S_ISREG(a->mode) && (flags & O_ACCMODE) == O_RDWR);
    fi->keep_cache = 0;
    /* A read-only handle has nothing to commit at close() and no error to
     * report there (file locks are not implemented, so a FLUSH releases
     * none): the kernel skips the FLUSH, a round to this process fewer per
     * close. */
    fi->noflush = !writable;
    return 0;
}

void fs_ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    if (is_ctl_ino(ino)) {
        fs_ctl_open(req, m, ino, fi);
        return;
    }
    fs_opening o;
    int rc = fs_opening_begin(m, &o);
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    fs_attr a;
    rc = fs_kv_stat(&m->kv, NULL, ino, &a);
    if (rc == 0 && a.nlink == 0) {
        /* It lost its name after the lookup that led here: it is still
         * opened (as if the open had come first) when that lookup is recent,
         * since reports have not covered the unlink then; this open holds
         * coverage back to it from now on. */
        if (!fs_lookup_recent(m, ino, &o.since))
            rc = -ESTALE;
    }
    /* A freed inode, or an orphan without a recent lookup: ESTALE makes the
     * kernel look the name up again. */
    if (rc == -ENOENT)
        rc = -ESTALE;
    bool fresh = false;
    if (rc == 0 && (fi->flags & O_TRUNC) && S_ISREG(a.mode)) {
        /* O_TRUNC is committed here, before open() returns, as on a local
         * filesystem: a write another node makes after this open lands in
         * the truncated file and is kept.  Content still buffered on this
         * node for the file goes first. */
        rc = fs_sync_others(m, a.ino, NULL);
        /* (empty already: its STAT version is the one to start from) */
        if (rc > 0 || (rc == 0 && a.size != 0)) {
            set_writer(req);
            rc = fs_kv_truncate_attr(&m->kv, NULL, a.ino, 0, &a);
        }
        fresh = rc >= 0;
    }
    if (rc >= 0)
        rc = open_common(req, m, fi, &a, fresh);
    fs_opening_end(m, &o);
    if (rc < 0)
        reply_err(req, rc);
    else if (fuse_reply_open(req, fi) == -ENOENT)
        fs_handle_free(m, fh_of(fi)); /* the caller was interrupted */
}

void fs_ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                  struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    int rc = check_mutable(parent, name, -EEXIST);
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    fs_opening o;
    if ((rc = fs_opening_begin(m, &o)) < 0) {
        reply_err(req, rc);
        return;
    }
    fs_attr a;
    /* One command creates the file, or truncates it with O_TRUNC; with
     * O_EXCL or O_TRUNC it is empty at the version the reply carries. */
    bool excl = (fi->flags & O_EXCL) != 0, trunc = (fi->flags & O_TRUNC) != 0;
    set_writer(req);
    rc = fs_kv_create(&m->kv, parent, name, (uint32_t)(mode & 07777), ctx->uid, ctx->gid, excl,
                      trunc, &a);
    if (rc == 0)
        rc = open_common(req, m, fi, &a, excl || trunc);
    fs_opening_end(m, &o);
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    struct fuse_entry_param e;
    uint64_t t0;
    fs_entry_param(m, &a, &e, &t0, false);
    if (fuse_reply_create(req, &e, fi) == -ENOENT)
        fs_handle_free(m, fh_of(fi));
    else
        fs_cache_replied(m, a.ino, e.attr_timeout, t0);
}

void fs_ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (h == NULL) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (h->kind == FS_H_STATUS) {
        fs_ctl_read(req, h, size, off);
        return;
    }
    /* What this node's other descriptors wrote is read back, as locally. */
    int rc = fs_sync_others(m, h->ino, h);
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    pthread_mutex_lock(&h->mu);
    if (handle_pending(h) && h->up_id) {
        /* Most of a streamed file is no longer here: commit, then read. */
        rc = handle_commit(m, h);
        if (rc < 0) {
            pthread_mutex_unlock(&h->mu);
            reply_err(req, rc);
            return;
        }
    }
    if (handle_pending(h)) {
        size_t n = 0;
        if ((size_t)off < h->len) {
            n = h->len - (size_t)off;
            if (n > size)
                n = size;
        }
        fuse_reply_buf(req, n ? h->buf + off : NULL, n);
        pthread_mutex_unlock(&h->mu);
        return;
    }
    pthread_mutex_unlock(&h->mu);
    kv_reply r;
    ssize_t n = fs_kv_read_reply(&m->kv, h->ino, (uint64_t)off, size, &r);
    if (n < 0) {
        reply_err(req, (int)n);
        return;
    }
    fuse_reply_buf(req, n ? (const char *)r.data : NULL, (size_t)n);
    kv_reply_free(&r);
}

static int do_write(fs_mount *m, fs_handle *h, const char *data, size_t size, off_t off)
{
    /* Content this node's other descriptors buffered was written first. */
    int rc = fs_sync_others(m, h->ino, h);
    if (rc < 0)
        return rc;
    if (h->append) {
        /* The kernel's offset is its idea of the size, possibly stale: the
         * state machine appends at its own end. */
        ssize_t n = fs_kv_append(&m->kv, NULL, h->ino, data, size);
        if (n == -EIO) {
            pthread_mutex_lock(&h->mu);
            h->err = -EIO; /* outcome unknown: close must not say 0 */
            pthread_mutex_unlock(&h->mu);
        }
        return (int)n;
    }
    if ((uint64_t)off > m->max_file_size || size > m->max_file_size - (uint64_t)off)
        return -EFBIG;
    pthread_mutex_lock(&h->mu);
    if (h->whole && h->err == 0 && (size_t)off == h->len && !h->up_frozen) {
        /* In order: buffered, up to the bound; past it the handle streams
         * (ships its full parts, FS_STREAM_SHIP at a time once streaming). */
        size_t bound = h->up_id ? FS_STREAM_SHIP : m->whole_max;
        if (h->len - h->up_base + size > bound) {
            rc = stream_ship(m, h);
            if (rc < 0) {
                pthread_mutex_unlock(&h->mu);
                return rc;
            }
        }
        /* (after a ship less than a part is left; the slack only matters
         * for a bound below two parts) */
        if (h->whole && h->len - h->up_base + size <= bound + KV_PART_SIZE) {
            rc = handle_reserve(h, h->len - h->up_base + size);
            if (rc == 0) {
                memcpy(h->buf + (h->len - h->up_base), data, size);
                h->len += size;
                h->dirty = true;
                handle_sync_flag(m, h);
                rc = (int)size;
            }
            pthread_mutex_unlock(&h->mu);
            return rc;
        }
    }
    if (h->whole) {
        /* Out of order, too large a write, or a commit in doubt: commit
         * what we have, then go write-through. */
        rc = handle_commit(m, h);
        if (rc < 0) {
            pthread_mutex_unlock(&h->mu);
            return rc;
        }
    }
    /* Still under the handle's lock: two writes of one descriptor apply in
     * the order they came. */
    ssize_t n = fs_kv_write_at(&m->kv, NULL, h->ino, (uint64_t)off, data, size);
    if (n == -EIO)
        h->err = -EIO; /* outcome unknown: close must not say 0 */
    pthread_mutex_unlock(&h->mu);
    return (int)n;
}

void fs_ll_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
                 struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    if (h == NULL || h->kind != FS_H_FILE) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    set_writer(req);
    int rc = do_write(m, h, data, size, off);
    if (rc < 0)
        reply_err(req, rc);
    else
        fuse_reply_write(req, (size_t)rc);
}

/* flush (every close()) and fsync: pending whole-file content is committed
 * (a FLUSH with nothing written, like the first one of `echo x > f`,
 * commits nothing and keeps whole-file mode; write-through data is already
 * durable on a majority), and any failure not yet resolved is reported. */
static void reply_commit(fuse_req_t req, struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    int rc = 0;
    if (h != NULL && h->kind == FS_H_FILE) {
        pthread_mutex_lock(&h->mu);
        rc = handle_pending(h) ? handle_commit(m, h) : h->err;
        pthread_mutex_unlock(&h->mu);
    }
    reply_err(req, rc);
}

void fs_ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    reply_commit(req, fi);
}

void fs_ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    reply_commit(req, fi);
}

void fs_ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    if (h != NULL) {
        if (h->kind == FS_H_FILE) {
            /* Normally nothing is left (close() flushed); content whose
             * commit is still in doubt gets one last try. */
            pthread_mutex_lock(&h->mu);
            int rc = handle_pending(h) ? handle_commit(m, h) : 0;
            pthread_mutex_unlock(&h->mu);
            if (rc < 0)
                fprintf(stderr, "hstore fs: commit at release of inode %llu failed: %s\n",
                        (unsigned long long)h->ino, strerror(-rc));
        }
        fi->fh = 0;
        fs_handle_free(m, h);
    }
    fuse_reply_err(req, 0);
}
