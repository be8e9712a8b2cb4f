/*
 * storage_blob.c — the segment files that hold the bytes of large log
 * entries (ST_BLOB_MIN and up), outside the database.
 *
 * Why: SQLite stores a blob as a chain of pages, so an entry of 1 MiB is 256
 * page writes into the WAL and 256 more when the checkpointer copies them
 * into the database file, plus the overflow-page bookkeeping: CPU, not disk,
 * and three nodes on one machine pay it for every MiB a client writes.
 * Here the bytes of a whole batch go to the end of one append-only file in
 * a few pwritevs and one fdatasync, each entry at a multiple of 4 KiB so
 * that its whole pages can go O_DIRECT (write_entries); the row keeps
 * (segment, offset) and the entry's checksum (layout in
 * storage_internal.h).
 *
 * DIR/log-blobs/NNNNNNNN.seg, numbered upwards; one is appended to at a time
 * and a new one starts past ST_SEG_BYTES (and at every open, so nothing is
 * ever written after bytes a crash may have left).  A segment is deleted
 * once no live row refers to it, after the commit that dropped the last
 * such row (gc_scan), by the checkpointer's thread (sto_blob_reap).
 */
#include "raftkv/storage_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SEG_IOV 512             /* iovecs per pwritev */
#define SEG_CUT_STEP (16 << 20) /* a deleted segment is cut down this much at a time */

void sto_blob_path(const st_store *s, uint32_t seg, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%08u.seg", s->blob_dir, seg);
}

static int errno_code(int e)
{
    switch (e) {
    case ENOSPC:
    case EDQUOT: return ST_ENOSPC;
    case EROFS:
    case EACCES:
    case EPERM: return ST_EROFS;
    case ENOMEM: return ST_ENOMEM;
    default: return ST_EIO;
    }
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* The segment number of a file name "NNNNNNNN.seg", 0 if it is not one. */
static uint32_t seg_of_name(const char *name)
{
    size_t n = strlen(name);
    if (n < 5 || n > 14 || strcmp(name + n - 4, ".seg") != 0)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i + 4 < n; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    return v <= UINT32_MAX ? (uint32_t)v : 0;
}

/* What live rows refer to: the lowest segment, the highest other than the
 * open one, and whether any refers to the open one. */
static int live_segs(st_store *s, uint32_t *lo, uint32_t *hi, bool *cur_live)
{
    sqlite3_stmt *st = s->q[Q_LOG_SEGS];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)s->c.snap_index);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)s->seg_cur);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *lo = (uint32_t)sqlite3_column_int64(st, 0);
        *hi = (uint32_t)sqlite3_column_int64(st, 1);
        *cur_live = sqlite3_column_int64(st, 2) != 0;
    }
    sto_reset_q(s, Q_LOG_SEGS);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* Deletes the segments no live row refers to: below the lowest referred
 * to, between the highest older one and the open one (a suffix cut off
 * before the open one took the new entries), and the open one if nothing
 * refers to it.  Rows refer to segments in non-decreasing order and each
 * such pass leaves no gap, so these are all of them (but after a crash
 * between a commit and its pass, a gap waits for the snapshot to pass it).
 * With top, also returns the highest segment number found. */
/* Hands segment k to the checkpointer; false when its queue is full. */
static bool seg_queue(st_store *s, uint32_t k)
{
    pthread_mutex_lock(&s->cmu);
    bool ok = true;
    for (int i = 0; i < s->n_seg_gone; i++)
        if (s->seg_gone[i] == k)
            goto out; /* already waiting */
    if (s->n_seg_gone < SEG_GONE_MAX)
        s->seg_gone[s->n_seg_gone++] = k;
    else
        ok = false;
out:
    pthread_mutex_unlock(&s->cmu);
    return ok;
}

static void gc_scan(st_store *s, uint32_t *top)
{
    bool queued = false;
    uint32_t lo = 0, hi = 0;
    bool cur_live = false;
    bool known = live_segs(s, &lo, &hi, &cur_live) == 0;
    if (top && known && hi > *top)
        *top = hi; /* a missing file's number is not given out again */
    DIR *d = opendir(s->blob_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint32_t k = seg_of_name(de->d_name);
        if (k == 0)
            continue;
        if (top && k > *top)
            *top = k;
        if (!known)
            continue;
        bool keep = k == s->seg_cur ? cur_live : lo != 0 && k >= lo && k <= hi;
        if (keep)
            continue;
        if (k == s->seg_cur)
            sto_blob_close(s);
        /* At open, here; after a commit, by the checkpointer's thread. */
        if (!top && s->ck_running && seg_queue(s, k)) {
            queued = true;
            continue;
        }
        char p[PATH_MAX + 32];
        sto_blob_path(s, k, p, sizeof p);
        unlink(p);
    }
    closedir(d);
    if (queued)
        sto_ckpt_wake(s, true);
}

void sto_blob_reap(st_store *s)
{
    for (;;) {
        pthread_mutex_lock(&s->cmu);
        uint32_t k = s->n_seg_gone > 0 ? s->seg_gone[--s->n_seg_gone] : 0;
        pthread_mutex_unlock(&s->cmu);
        if (k == 0)
            return;
        char p[PATH_MAX + 32];
        sto_blob_path(s, k, p, sizeof p);
        /* Freeing all of a large file's blocks at once holds the journal
         * (the writer's next fdatasync would wait): cut it down in steps. */
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        struct stat sb;
        if (fd >= 0 && fstat(fd, &sb) == 0) {
            off_t sz = sb.st_size;
            while (sz > 0) {
                sz = sz > SEG_CUT_STEP ? sz - SEG_CUT_STEP : 0;
                if (ftruncate(fd, sz) != 0)
                    break;
            }
        }
        if (fd >= 0)
            close(fd);
        unlink(p);
    }
}

void sto_blob_gc(st_store *s)
{
    s->blob_gc = false;
    gc_scan(s, NULL);
}

int sto_blob_open(st_store *s, char *err, size_t errlen)
{
    s->seg_fd = -1;
    s->seg_cur = 0;
    s->seg_end = 0;
    if (snprintf(s->blob_dir, sizeof s->blob_dir, "%s/%s", s->dir, ST_BLOB_DIR) >=
        (int)sizeof s->blob_dir - 20)
        return sto_fail(ST_EINVAL, err, errlen, "%s: path too long", s->dir);
    uint32_t top = 0;
    gc_scan(s, &top);
    if (top == UINT32_MAX)
        return sto_fail(ST_ECORRUPT, err, errlen, "%s: segment numbers exhausted", s->blob_dir);
    s->seg_next = top + 1;
    return 0;
}

void sto_blob_close(st_store *s)
{
    if (s->seg_fd >= 0)
        close(s->seg_fd);
    if (s->seg_dfd >= 0)
        close(s->seg_dfd);
    s->seg_fd = -1;
    s->seg_dfd = -1;
    s->seg_cur = 0;
}

/* Starts a new segment: the directory made if needed, the file created, and
 * both made durable (their directory entries) before any row refers to it. */
static int seg_roll(st_store *s, char *err, size_t errlen)
{
    sto_blob_close(s);
    if (mkdir(s->blob_dir, 0755) == 0) {
        if (fsync_dir(s->dir) != 0)
            return sto_fail(errno_code(errno), err, errlen, "%s: fsync: %s", s->dir,
                            strerror(errno));
    } else if (errno != EEXIST) {
        return sto_fail(errno_code(errno), err, errlen, "%s: cannot create: %s", s->blob_dir,
                        strerror(errno));
    }
    char p[PATH_MAX + 32];
    sto_blob_path(s, s->seg_next, p, sizeof p);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return sto_fail(errno_code(errno), err, errlen, "%s: cannot create: %s", p,
                        strerror(errno));
    if (fsync_dir(s->blob_dir) != 0) {
        int e = errno;
        close(fd);
        unlink(p);
        return sto_fail(errno_code(e), err, errlen, "%s: fsync: %s", s->blob_dir, strerror(e));
    }
    s->seg_fd = fd;
    s->seg_dfd = open(p, O_WRONLY | O_DIRECT | O_CLOEXEC); /* -1: not here */
    s->seg_cur = s->seg_next++;
    s->seg_end = 0;
    return 0;
}

/* pwritev of all of iov[0..n) at off, through short writes. */
static int write_all(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwritev(fd, iov, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        off += (uint64_t)w;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* A run of iovecs written at consecutive offsets of one file. */
typedef struct seg_run {
    int fd;
    int k;
    uint64_t start, end;
    struct iovec iov[SEG_IOV];
} seg_run;

static int run_flush(seg_run *w)
{
    if (w->k == 0)
        return 0;
    int r = write_all(w->fd, w->iov, w->k, w->start);
    w->k = 0;
    return r;
}

static int run_add(seg_run *w, uint8_t *p, size_t len, uint64_t off)
{
    if (w->k > 0 && (off != w->end || w->k == SEG_IOV)) {
        int r = run_flush(w);
        if (r)
            return r;
    }
    if (w->k == 0)
        w->start = w->end = off;
    w->iov[w->k].iov_base = p;
    w->iov[w->k].iov_len = len;
    w->k++;
    w->end += len;
    return 0;
}

/* Writes the large entries of the batch from base on, each at the next
 * multiple of ST_DIRECT_ALIGN.  With direct, the whole pages of an entry whose
 * data starts on a page (the core's log puts them there) go O_DIRECT, from
 * its memory to the disk without a copy into the page cache (a fifth of
 * all CPU of a large write through the mount); the rest of it, and entries
 * elsewhere, go through the page cache (the padding is a hole). */
static int write_entries(st_store *s, const raft_ready *const *rds, size_t n, uint64_t base,
                         bool direct)
{
    seg_run *bw = malloc(sizeof *bw), *dw = malloc(sizeof *dw);
    int r = 0;
    if (bw == NULL || dw == NULL) {
        errno = ENOMEM;
        r = -1;
    } else {
        bw->fd = s->seg_fd;
        dw->fd = s->seg_dfd;
        bw->k = dw->k = 0;
    }
    uint64_t off = base;
    for (size_t b = 0; b < n && !r; b++) {
        for (size_t i = 0; i < rds[b]->n_entries && !r; i++) {
            const raft_entry *e = &rds[b]->entries[i];
            if (!sto_is_blob(e->len))
                continue;
            size_t pages = 0;
            if (direct && ((uintptr_t)e->data & (ST_DIRECT_ALIGN - 1)) == 0)
                pages = e->len & ~(size_t)(ST_DIRECT_ALIGN - 1);
            if (pages)
                r = run_add(dw, e->data, pages, off);
            if (!r && pages < e->len)
                r = run_add(bw, e->data + pages, e->len - pages, off + pages);
            off += sto_blob_span(e->len);
        }
    }
    if (!r)
        r = run_flush(dw);
    if (!r)
        r = run_flush(bw);
    int er = errno;
    free(bw);
    free(dw);
    errno = er;
    return r;
}

int sto_blob_write(st_store *s, const raft_ready *const *rds, size_t n, char *err, size_t errlen)
{
    uint64_t total = 0;
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < rds[b]->n_entries; i++)
            if (sto_is_blob(rds[b]->entries[i].len))
                total += sto_blob_span(rds[b]->entries[i].len);
    if (total == 0)
        return 0;
    if (s->seg_fd < 0 || s->seg_end >= ST_SEG_BYTES) {
        int r = seg_roll(s, err, errlen);
        if (r)
            return r;
    }
    uint64_t base = s->seg_end;
    int r = write_entries(s, rds, n, base, s->seg_dfd >= 0);
    if (r && errno == EINVAL && s->seg_dfd >= 0) {
        /* The file system takes O_DIRECT at open but not these writes:
         * through the page cache from now on. */
        close(s->seg_dfd);
        s->seg_dfd = -1;
        r = write_entries(s, rds, n, base, false);
    }
    if (!r)
        r = fdatasync(s->seg_fd);
    if (r) {
        int e = errno;
        char p[PATH_MAX + 32];
        sto_blob_path(s, s->seg_cur, p, sizeof p);
        /* What was written stays unreferenced; the next batch starts anew. */
        sto_blob_close(s);
        return sto_fail(errno_code(e), err, errlen, "%s: writing %llu bytes of log entries: %s", p,
                        (unsigned long long)total, strerror(e));
    }
    /* The bytes are on disk and the Raft core holds the entries: the pages
     * are read again only at the next start, so the cache lets them go. */
    posix_fadvise(s->seg_fd, (off_t)base, (off_t)total, POSIX_FADV_DONTNEED);
    s->seg_end = base + total;
    s->blob_cursor = base;
    return 0;
}

void sto_blob_next(st_store *s, uint32_t len, uint32_t *seg, uint64_t *off)
{
    *seg = s->seg_cur;
    *off = s->blob_cursor;
    s->blob_cursor += sto_blob_span(len);
}

void sto_blob_read_end(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int sto_blob_read(st_store *s, uint32_t seg, uint64_t off, uint32_t len, uint64_t index,
                  uint8_t *dst, int *fd, uint32_t *fd_seg, char *err, size_t errlen)
{
    char p[PATH_MAX + 32];
    sto_blob_path(s, seg, p, sizeof p);
    if (*fd < 0 || *fd_seg != seg) {
        sto_blob_read_end(fd);
        *fd = open(p, O_RDONLY | O_CLOEXEC);
        if (*fd < 0) {
            if (errno == ENOENT)
                return sto_fail(ST_ECORRUPT, err, errlen,
                                "%s: log entry %llu: segment file missing (its bytes are gone)", p,
                                (unsigned long long)index);
            return sto_fail(errno_code(errno), err, errlen, "%s: log entry %llu: cannot open: %s",
                            p, (unsigned long long)index, strerror(errno));
        }
        *fd_seg = seg;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(*fd, dst + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return sto_fail(ST_EIO, err, errlen, "%s: log entry %llu: read: %s", p,
                            (unsigned long long)index, strerror(errno));
        if (r == 0)
            return sto_fail(ST_ECORRUPT, err, errlen,
                            "%s: log entry %llu: segment file truncated (%u bytes at offset %llu, "
                            "%zu there)",
                            p, (unsigned long long)index, len, (unsigned long long)off, got);
        got += (size_t)r;
    }
    return 0;
}
