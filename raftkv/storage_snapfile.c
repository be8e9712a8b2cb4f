/*
 * storage_snapfile.c — the files that hold stored snapshots.
 *
 * The stored form of a snapshot (one zstd frame) is the file DIR/snap/NAME
 * (NAME is INDEX-TERM.zst), not rows of the database: it is written in
 * pieces of SNAP_PIECE bytes, one write call each (O_DIRECT for a whole
 * piece from a page-aligned buffer: snapf_write), fdatasync'ed and its
 * directory fsync'ed before the transaction that names it (the meta row
 * 'snap_file', with the CRC32C of each piece, beside the snap row) commits.
 * Its bytes are thus written once, not into the WAL and again into the
 * database by a checkpoint.  The file a commit replaced is deleted after
 * that commit (a descriptor open on it reads on); files no row names (a
 * crash before a commit) are deleted at st_open, which also converts a
 * snapshot stored by an earlier version in snap_chunk rows into a file, in
 * one transaction.  A named file that is missing or of the wrong length is
 * ST_ECORRUPT at st_open; a damaged piece is ST_ECORRUPT when read.
 */
#include "raftkv/storage_internal.h"

#include "raftkv/byte.h"
#include "raftkv/crc32c.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYNC_AHEAD (8u << 20) /* written bytes handed to writeback at a time */
#define CUT_STEP (16 << 20)   /* a replaced file is cut down this much at a time */
#define META_KEY "snap_file"

static int errno_st(int e)
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

void sto_snapf_path(const st_store *s, const char *name, char *p, size_t n)
{
    snprintf(p, n, "%s/%s", s->snap_dir, name);
}

static int fsync_dir(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return sto_fail(errno_st(e), err, errlen, "%s: fsync: %s", dir, strerror(e));
    }
    close(fd);
    return 0;
}

/* Frees f's description; deletes the file too when del. */
static void snapf_drop(st_store *s, sto_snapf *f, bool del)
{
    if (del && f->name[0]) {
        char p[PATH_MAX + 80];
        sto_snapf_path(s, f->name, p, sizeof p);
        unlink(p);
    }
    free(f->crcs);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

/* ---- writing ----------------------------------------------------------------- */

int sto_snapf_create(st_store *s, uint64_t index, uint64_t term, sto_snapf *f, char *err,
                     size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    char p[PATH_MAX + 80];
    int e = 0;
    for (unsigned k = 0; k < 1000; k++) {
        if (k)
            snprintf(f->name, sizeof f->name, "%llu-%llu.%u.zst", (unsigned long long)index,
                     (unsigned long long)term, k);
        else
            snprintf(f->name, sizeof f->name, "%llu-%llu.zst", (unsigned long long)index,
                     (unsigned long long)term);
        sto_snapf_path(s, f->name, p, sizeof p);
        f->fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        e = errno;
        if (f->fd >= 0 || e != EEXIST)
            break;
    }
    if (f->fd < 0) {
        f->name[0] = 0;
        return sto_fail(errno_st(e), err, errlen, "%s: cannot create a snapshot file: %s", p,
                        strerror(e));
    }
    return 0;
}

/* Turns O_DIRECT on or off for f's descriptor; false if refused. */
static bool snapf_direct(sto_snapf *f, bool on)
{
    int fl = fcntl(f->fd, F_GETFL);
    if (fl < 0 || fcntl(f->fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) != 0)
        return false;
    f->direct = on;
    return true;
}

/* Writes n bytes at off: whole pages from a page-aligned buffer O_DIRECT
 * (no copy into the page cache, as for log segments), the rest through the
 * page cache. */
static int snapf_write(sto_snapf *f, const uint8_t *b, size_t n, uint64_t off)
{
    while (n) {
        bool want = !f->no_direct && (((uintptr_t)b | n | off) & (ST_DIRECT_ALIGN - 1)) == 0;
        if (want != f->direct && !snapf_direct(f, want)) {
            f->no_direct = true;
            if (f->direct)
                return -1; /* cannot turn it off: a write would fail */
            continue;
        }
        ssize_t w = pwrite(f->fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EINVAL && f->direct) {
            /* the file system takes O_DIRECT, not these writes */
            f->no_direct = true;
            continue;
        }
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            return -1;
        }
        b += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int sto_snapf_piece(st_store *s, sto_snapf *f, const void *p, size_t n, char *err, size_t errlen)
{
    if (f->n == f->cap) {
        uint64_t cap = f->cap ? f->cap * 2 : 64;
        uint32_t *c = realloc(f->crcs, cap * sizeof *c);
        if (!c)
            return sto_fail(ST_ENOMEM, err, errlen, "%s: out of memory for a snapshot file",
                            s->path);
        f->crcs = c;
        f->cap = cap;
    }
    if (snapf_write(f, p, n, f->len) != 0) {
        int e = errno;
        char path[PATH_MAX + 80];
        sto_snapf_path(s, f->name, path, sizeof path);
        return sto_fail(errno_st(e), err, errlen, "%s: writing the snapshot: %s", path,
                        strerror(e));
    }
    f->crcs[f->n++] = crc32c(0, p, n);
    f->len += n;
    if (f->len - f->synced >= SYNC_AHEAD) {
        /* Start the writeback now, so that the fdatasync at the end finds
         * little to do and the disk is never handed the whole file at once. */
        sync_file_range(f->fd, (off_t)f->synced, (off_t)(f->len - f->synced),
                        SYNC_FILE_RANGE_WRITE);
        f->synced = f->len;
    }
    return 0;
}

int sto_snapf_finish(st_store *s, sto_snapf *f, char *err, size_t errlen)
{
    int rc = fdatasync(f->fd);
    int e = errno;
    if (close(f->fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    f->fd = -1;
    if (rc != 0) {
        char p[PATH_MAX + 80];
        sto_snapf_path(s, f->name, p, sizeof p);
        return sto_fail(errno_st(e), err, errlen, "%s: fdatasync: %s", p, strerror(e));
    }
    return fsync_dir(s->snap_dir, err, errlen);
}

void sto_snapf_discard(st_store *s, sto_snapf *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    snapf_drop(s, f, true);
}

/* ---- the row that names the file -------------------------------------------- */

int sto_snapf_record(st_store *s, sto_snapf *f, char *err, size_t errlen)
{
    size_t nl = strlen(f->name) + 1;
    size_t len = nl + 4 * (size_t)f->n + 4;
    uint8_t *b = malloc(len);
    if (!b)
        return sto_fail(ST_ENOMEM, err, errlen, "%s: out of memory for a snapshot file", s->path);
    memcpy(b, f->name, nl);
    for (uint64_t i = 0; i < f->n; i++)
        byte_put32(b + nl + 4 * i, f->crcs[i]);
    byte_put32(b + len - 4, crc32c(0, b, len - 4));
    sqlite3_stmt *st = s->q[Q_META_PUT];
    sqlite3_bind_text(st, 1, META_KEY, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, b, (int)len, SQLITE_STATIC);
    int r = sto_step_done(s, Q_META_PUT, err, errlen, "record the snapshot file");
    free(b);
    if (r)
        return r;
    /* A second snapshot in one transaction replaces the first at once. */
    snapf_drop(s, &s->pend, true);
    s->pend = *f;
    s->pend.fd = -1;
    memset(f, 0, sizeof *f);
    f->fd = -1;
    return 0;
}

/* The file the meta row names, into *f; *found false when there is none. */
static int record_get(st_store *s, sto_snapf *f, bool *found, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    sqlite3_stmt *st = s->q[Q_META_GET];
    sqlite3_bind_text(st, 1, META_KEY, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    int r = 0;
    if (rc == SQLITE_ROW) {
        const uint8_t *b = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        const uint8_t *nul = b && len > 4 ? memchr(b, 0, len - 4) : NULL;
        size_t nl = nul ? (size_t)(nul - b) + 1 : 0;
        if (!nul || nl < 2 || nl > sizeof f->name || (len - 4 - nl) % 4 != 0 ||
            byte_get32(b + len - 4) != crc32c(0, b, len - 4) || memchr(b, '/', nl)) {
            r = sto_fail(ST_ECORRUPT, err, errlen,
                         "%s: the record of the snapshot file is damaged (checksum mismatch)",
                         s->path);
        } else {
            memcpy(f->name, b, nl);
            f->n = f->cap = (len - 4 - nl) / 4;
            f->crcs = malloc(f->n ? f->n * 4 : 4);
            if (!f->crcs)
                r = sto_fail(ST_ENOMEM, err, errlen, "%s: out of memory", s->path);
            for (uint64_t i = 0; !r && i < f->n; i++)
                f->crcs[i] = byte_get32(b + nl + 4 * i);
        }
    } else if (rc != SQLITE_DONE) {
        r = sto_sqlfail(s, rc, err, errlen, "read the snapshot file's record");
    }
    sto_reset_q(s, Q_META_GET);
    return r;
}

void sto_snap_txn_end(st_store *s, bool committed)
{
    if (!s->pend.name[0])
        return;
    if (!committed) {
        snapf_drop(s, &s->pend, true);
        return;
    }
    if (s->snap_fd >= 0)
        close(s->snap_fd);
    s->snap_fd = -1;
    s->rpiece_no = UINT64_MAX;
    /* Durably replaced (the commit is on disk): the file goes, on the
     * checkpointer's thread when it runs. */
    bool queued = false;
    if (s->cur.name[0] && s->ck_running) {
        pthread_mutex_lock(&s->cmu);
        if (s->n_gone < SNAP_GONE_MAX) {
            memcpy(s->snap_gone[s->n_gone], s->cur.name, sizeof s->cur.name);
            s->snap_gone_cut[s->n_gone] = s->snap_readers == 0;
            s->n_gone++;
            queued = true;
        }
        pthread_mutex_unlock(&s->cmu);
    }
    snapf_drop(s, &s->cur, !queued);
    if (queued)
        sto_ckpt_wake(s, true);
    s->cur = s->pend;
    memset(&s->pend, 0, sizeof s->pend);
    s->pend.fd = -1;
}

/* ---- reading ------------------------------------------------------------------ */

int sto_snapf_read(const st_store *s, int fd, const sto_snapf *f, uint64_t no, uint8_t *buf,
                   size_t *len, char *err, size_t errlen)
{
    char p[PATH_MAX + 80];
    uint64_t off = no * (uint64_t)SNAP_PIECE;
    sto_snapf_path(s, f->name, p, sizeof p);
    if (no >= f->n || off >= f->len)
        return sto_fail(ST_ECORRUPT, err, errlen, "%s: no piece %llu in a snapshot of %llu bytes",
                        p, (unsigned long long)no, (unsigned long long)f->len);
    size_t n = f->len - off < SNAP_PIECE ? (size_t)(f->len - off) : SNAP_PIECE;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return sto_fail(errno_st(errno), err, errlen, "%s: read: %s", p, strerror(errno));
        if (r == 0)
            return sto_fail(ST_ECORRUPT, err, errlen,
                            "%s: snapshot file ends at byte %llu, the store says %llu", p,
                            (unsigned long long)(off + got), (unsigned long long)f->len);
        got += (size_t)r;
    }
    if (crc32c(0, buf, n) != f->crcs[no])
        return sto_fail(ST_ECORRUPT, err, errlen,
                        "%s: snapshot file, bytes %llu to %llu: checksum mismatch", p,
                        (unsigned long long)off, (unsigned long long)(off + n));
    *len = n;
    return 0;
}

int st_snap_stored_read(st_store *s, uint64_t index, uint64_t off, void *buf, size_t len, char *err,
                        size_t errlen)
{
    if (index != s->c.snap_index || off > s->c.snap_comp || len > s->c.snap_comp - off)
        return sto_fail(ST_EINVAL, err, errlen,
                        "%s: bytes %llu+%zu of snapshot %llu not stored (stored: %llu, %llu bytes)",
                        s->path, (unsigned long long)off, len, (unsigned long long)index,
                        (unsigned long long)s->c.snap_index, (unsigned long long)s->c.snap_comp);
    if (!len)
        return 0;
    char p[PATH_MAX + 80];
    sto_snapf_path(s, s->cur.name, p, sizeof p);
    if (s->snap_fd < 0) {
        s->snap_fd = open(p, O_RDONLY | O_CLOEXEC);
        if (s->snap_fd < 0)
            return sto_fail(errno == ENOENT ? ST_ECORRUPT : errno_st(errno), err, errlen,
                            "%s: cannot open the snapshot file: %s", p, strerror(errno));
        s->rpiece_no = UINT64_MAX;
    }
    if (!s->rpiece && !(s->rpiece = malloc(SNAP_PIECE)))
        return sto_fail(ST_ENOMEM, err, errlen, "%s: out of memory", p);
    uint8_t *dst = buf;
    while (len) {
        uint64_t no = off / SNAP_PIECE;
        size_t in = (size_t)(off % SNAP_PIECE);
        if (no != s->rpiece_no) {
            s->rpiece_no = UINT64_MAX;
            int r =
                sto_snapf_read(s, s->snap_fd, &s->cur, no, s->rpiece, &s->rpiece_len, err, errlen);
            if (r)
                return r;
            s->rpiece_no = no;
        }
        if (in >= s->rpiece_len)
            return sto_fail(ST_ECORRUPT, err, errlen, "%s: snapshot file too short", p);
        size_t n = s->rpiece_len - in < len ? s->rpiece_len - in : len;
        memcpy(dst, s->rpiece + in, n);
        dst += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* ---- at open and close ---------------------------------------------------------- */

/* Deletes the snapshot files no row names (s->cur is the one named). */
static void remove_strays(st_store *s)
{
    DIR *d = opendir(s->snap_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".zst") == 0 && strcmp(e->d_name, s->cur.name) != 0)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* An earlier version's snapshot, in snap_chunk rows of SNAP_PIECE bytes
 * (the last may be shorter), into a file: written and synced, then one
 * transaction records it and deletes the rows. */
static int convert_rows(st_store *s, char *err, size_t errlen)
{
    uint64_t nchunks = 0;
    sqlite3_stmt *st = s->q[Q_SNAP_GET];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        nchunks = (uint64_t)sqlite3_column_int64(st, 5);
    sto_reset_q(s, Q_SNAP_GET);
    if (rc != SQLITE_ROW)
        return sto_sqlfail(s, rc, err, errlen, "read snapshot metadata");
    sto_snapf f;
    int r = sto_snapf_create(s, s->c.snap_index, s->c.snap_term, &f, err, errlen);
    if (r)
        return r;
    st = s->q[Q_CHUNK_ALL];
    uint64_t seq = 0;
    bool short_seen = false;
    while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t cs = (uint64_t)sqlite3_column_int64(st, 0);
        uint32_t ccrc = (uint32_t)sqlite3_column_int64(st, 1);
        const void *body = sqlite3_column_blob(st, 2);
        size_t blen = (size_t)sqlite3_column_bytes(st, 2);
        if (cs != seq || !body || short_seen || blen > SNAP_PIECE || crc32c(0, body, blen) != ccrc)
            r = sto_fail(ST_ECORRUPT, err, errlen, "%s: snapshot at index %llu: chunk %llu %s",
                         s->path, (unsigned long long)s->c.snap_index, (unsigned long long)seq,
                         cs != seq ? "missing" : "damaged");
        else
            r = sto_snapf_piece(s, &f, body, blen, err, errlen);
        short_seen = blen < SNAP_PIECE;
        seq++;
    }
    if (!r && rc != SQLITE_DONE)
        r = sto_sqlfail(s, rc, err, errlen, "read snapshot chunks");
    sto_reset_q(s, Q_CHUNK_ALL);
    if (!r && (f.n != nchunks || f.len != s->c.snap_comp))
        r = sto_fail(ST_ECORRUPT, err, errlen,
                     "%s: snapshot at index %llu incomplete (%llu of %llu chunks, %llu of %llu "
                     "bytes)",
                     s->path, (unsigned long long)s->c.snap_index, (unsigned long long)f.n,
                     (unsigned long long)nchunks, (unsigned long long)f.len,
                     (unsigned long long)s->c.snap_comp);
    if (!r)
        r = sto_snapf_finish(s, &f, err, errlen);
    if (!r)
        r = sto_txn_begin(s, err, errlen);
    if (!r) {
        r = sto_step_done(s, Q_CHUNK_DEL_ALL, err, errlen, "delete snapshot chunks");
        if (!r)
            r = sto_snapf_record(s, &f, err, errlen);
        if (!r)
            r = sto_txn_commit(s, err, errlen);
        else
            sto_txn_rollback(s);
    }
    sto_snapf_discard(s, &f); /* nothing once recorded */
    return r;
}

int sto_snap_open(st_store *s, char *err, size_t errlen)
{
    s->cur.fd = s->pend.fd = -1;
    s->rpiece_no = UINT64_MAX;
    if (snprintf(s->snap_dir, sizeof s->snap_dir, "%s/snap", s->dir) >= (int)sizeof s->snap_dir)
        return sto_fail(ST_EINVAL, err, errlen, "%s: path too long", s->dir);
    if (mkdir(s->snap_dir, 0755) == 0) {
        int r = fsync_dir(s->dir, err, errlen);
        if (r)
            return r;
    } else if (errno != EEXIST) {
        return sto_fail(errno_st(errno), err, errlen, "%s: cannot create: %s", s->snap_dir,
                        strerror(errno));
    }
    bool found;
    int r = record_get(s, &s->cur, &found, err, errlen);
    if (r)
        return r;
    remove_strays(s);
    if (!found && s->c.snap_index)
        return convert_rows(s, err, errlen);
    if (found && !s->c.snap_index)
        return sto_fail(ST_ECORRUPT, err, errlen,
                        "%s: names snapshot file %s but holds no snapshot", s->path, s->cur.name);
    if (!found)
        return 0;
    char p[PATH_MAX + 80];
    sto_snapf_path(s, s->cur.name, p, sizeof p);
    struct stat sb;
    if (stat(p, &sb) != 0)
        return sto_fail(errno == ENOENT ? ST_ECORRUPT : errno_st(errno), err, errlen,
                        "%s: the snapshot file at index %llu: %s", p,
                        (unsigned long long)s->c.snap_index, strerror(errno));
    s->cur.len = s->c.snap_comp;
    if ((uint64_t)sb.st_size != s->c.snap_comp)
        return sto_fail(ST_ECORRUPT, err, errlen,
                        "%s: the snapshot file at index %llu is %lld bytes, the store says %llu", p,
                        (unsigned long long)s->c.snap_index, (long long)sb.st_size,
                        (unsigned long long)s->c.snap_comp);
    if (s->cur.n != (s->c.snap_comp + SNAP_PIECE - 1) / SNAP_PIECE)
        return sto_fail(ST_ECORRUPT, err, errlen,
                        "%s: the store holds %llu checksums for a snapshot file of %llu bytes", p,
                        (unsigned long long)s->cur.n, (unsigned long long)s->c.snap_comp);
    return 0;
}

void sto_snap_reap(st_store *s)
{
    for (;;) {
        char name[64];
        pthread_mutex_lock(&s->cmu);
        int k = --s->n_gone;
        if (k >= 0)
            memcpy(name, s->snap_gone[k], sizeof name);
        bool cut = k >= 0 && s->snap_gone_cut[k];
        if (k < 0)
            s->n_gone = 0;
        pthread_mutex_unlock(&s->cmu);
        if (k < 0)
            return;
        char p[PATH_MAX + 80];
        sto_snapf_path(s, name, p, sizeof p);
        /* Freeing a large file's blocks at once holds the filesystem's
         * journal for a while (the loop's next fdatasync would wait): cut it
         * down in steps.  Not under an open reader, which reads on through
         * the unlinked file. */
        int fd = cut ? open(p, O_WRONLY | O_CLOEXEC) : -1;
        struct stat sb;
        if (fd >= 0 && fstat(fd, &sb) == 0) {
            off_t sz = sb.st_size;
            while (sz > 0) {
                sz = sz > CUT_STEP ? sz - CUT_STEP : 0;
                if (ftruncate(fd, sz) != 0)
                    break;
            }
        }
        if (fd >= 0)
            close(fd);
        unlink(p);
    }
}

void sto_snap_close(st_store *s)
{
    for (int k = 0; k < s->n_gone && k < SNAP_GONE_MAX; k++) {
        char p[PATH_MAX + 80];
        sto_snapf_path(s, s->snap_gone[k], p, sizeof p);
        unlink(p);
    }
    s->n_gone = 0;
    if (s->snap_fd >= 0)
        close(s->snap_fd);
    s->snap_fd = -1;
    free(s->rpiece);
    s->rpiece = NULL;
    snapf_drop(s, &s->cur, false);
    snapf_drop(s, &s->pend, true);
}
