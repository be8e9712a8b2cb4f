/*
 * storage_snap.c — snapshots in the store.  The stored form of a snapshot is
 * one zstd frame (with content checksum) in a file of its own
 * (storage_snapfile.c), named by the snap row's transaction; the node keeps
 * its snapshot only there (raft_config.external_snapshot):
 *
 *   taking one    the background writer (st_bgsnap_*): the node's snapshot
 *                 worker thread compresses the state, which a forked child
 *                 streams to it, into a new file in 1 MiB writes, synced at
 *                 the end; the node's loop then records it in one short
 *                 transaction (the log it covers compacted);
 *   installing    a frame received from the leader, checked to decompress
 *                 whole, written to a file as is and synced, then recorded
 *                 inside st_save_ready's transaction;
 *   reading       st_snap_stored_read (storage_snapfile.c) serves ranges of
 *                 the stored form (what a leader sends), st_snap_reader
 *                 streams the state back out.
 */
#include "raftkv/storage_internal.h"

#include "raftkv/byte.h"
#include "raftkv/conf_codec.h"
#include "raftkv/crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#define ZSTD_LEVEL 1 /* fast: the state streams through as it is encoded */

static uint32_t snapmeta_crc(uint64_t idx, uint64_t term, uint64_t raw, uint64_t comp,
                             uint64_t nchunks)
{
    uint8_t b[40];
    byte_put64(b, idx);
    byte_put64(b + 8, term);
    byte_put64(b + 16, raw);
    byte_put64(b + 24, comp);
    byte_put64(b + 32, nchunks);
    return crc32c(0, b, sizeof b);
}

/* Configuration blob: the raft_conf encoding of conf_codec.h, then a
 * CRC32C of it (u32).  Appends it to w; false when out of memory. */
static bool conf_blob_put(bytes_w *w, const raft_conf *c)
{
    size_t at = w->len;
    raft_conf_put(w, c);
    if (!w->oom)
        bw_u32(w, crc32c(0, w->p + at, w->len - at));
    return !w->oom;
}

static int conf_blob_get(const uint8_t *b, size_t len, raft_conf *c)
{
    memset(c, 0, sizeof *c);
    if (len < 8 || byte_get32(b + len - 4) != crc32c(0, b, len - 4))
        return -1;
    bytes_r r = br_init(b, len - 4);
    if (!raft_conf_get(&r, c) || br_left(&r) != 0) {
        memset(c, 0, sizeof *c);
        return -1;
    }
    return 0;
}

/* ---- metadata -------------------------------------------------------------- */

/* The snap row of a snapshot whose stored form is file f (written and
 * synced), the meta row naming f (handed to the store, made current by the
 * commit) and the compaction of the log it covers, inside the caller's
 * transaction (lazy: covered rows left to the checkpointer).  Updates the
 * cache on success. */
static int snap_record(st_store *s, uint64_t index, uint64_t term, const raft_conf *conf,
                       uint64_t raw_len, sto_snapf *f, bool lazy, char *err, size_t errlen)
{
    int r;
    uint64_t comp_len = f->len;
    bytes_w cb = {0};
    if (!conf_blob_put(&cb, conf)) {
        r = sto_fail(ST_ENOMEM, err, errlen, "%s: out of memory for a configuration", s->path);
    } else {
        sqlite3_stmt *st = s->q[Q_SNAP_PUT];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)term);
        sqlite3_bind_blob(st, 3, cb.p, (int)cb.len, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)raw_len);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)comp_len);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)f->n);
        sqlite3_bind_int64(st, 7, snapmeta_crc(index, term, raw_len, comp_len, f->n));
        r = sto_step_done(s, Q_SNAP_PUT, err, errlen, "store snapshot metadata");
    }
    bw_free(&cb);
    if (!r)
        r = sto_snapf_record(s, f, err, errlen);
    if (!r)
        r = sto_log_compact(s, index, term, lazy, err, errlen);
    if (!r) {
        s->c.snap_index = index;
        s->c.snap_term = term;
        s->c.snap_comp = comp_len;
    }
    return r;
}

/* ---- the background writer ----------------------------------------------------- */

struct st_snap_writer {
    st_store *s;
    ZSTD_CCtx *cctx;
    uint8_t *out; /* one compressed piece being filled */
    size_t out_pos;
    uint64_t raw_len;
    uint64_t index, term;
    bool finished;
    sto_snapf f; /* the file (deleted unless a commit takes it) */
};

/* A full piece (or the last) into the file: one write call.  Touches
 * nothing of the store but the writer's file, so it runs beside the
 * owner's saves without a lock. */
static int chunk_flush(st_snap_writer *w, char *err, size_t errlen)
{
    if (w->out_pos == 0)
        return 0;
    int r = sto_snapf_piece(w->s, &w->f, w->out, w->out_pos, err, errlen);
    if (!r)
        w->out_pos = 0;
    return r;
}

/* Feeds input (or finishes the frame when end) through zstd into pieces. */
static int snap_pump(st_snap_writer *w, const void *buf, size_t len, bool end, char *err,
                     size_t errlen)
{
    ZSTD_inBuffer in = {buf, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->out, SNAP_PIECE, w->out_pos};
        size_t left = ZSTD_compressStream2(w->cctx, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left))
            return sto_fail(ST_EIO, err, errlen, "%s: snapshot compression failed: %s", w->s->path,
                            ZSTD_getErrorName(left));
        w->out_pos = out.pos;
        if (w->out_pos == SNAP_PIECE) {
            int r = chunk_flush(w, err, errlen);
            if (r)
                return r;
        }
        if (end ? left == 0 : in.pos == in.size)
            break;
    }
    w->raw_len += len;
    return 0;
}

static void writer_free(st_snap_writer *w)
{
    if (!w)
        return;
    ZSTD_freeCCtx(w->cctx);
    free(w->out);
    sto_snapf_discard(w->s, &w->f);
    w->s->bg_open = false;
    free(w);
}

/* A writer with its compression context and piece buffer; NULL when out of
 * memory. */
static st_snap_writer *writer_alloc(st_store *s, uint64_t index, uint64_t term)
{
    st_snap_writer *w = calloc(1, sizeof *w);
    if (w)
        w->out = aligned_alloc(ST_DIRECT_ALIGN, SNAP_PIECE); /* on a page: O_DIRECT */
    if (w)
        w->cctx = ZSTD_createCCtx();
    if (!w || !w->out || !w->cctx) {
        if (w) {
            ZSTD_freeCCtx(w->cctx);
            free(w->out);
            free(w);
        }
        return NULL;
    }
    w->s = s;
    w->index = index;
    w->term = term;
    w->f.fd = -1;
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
    return w;
}

int st_bgsnap_begin(st_store *s, uint64_t index, uint64_t term, st_snap_writer **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (s->bg_open)
        return sto_fail(ST_EBUSY, err, errlen, "%s: a background snapshot is already running",
                        s->path);
    if (index == 0 || index <= s->c.snap_index)
        return sto_fail(ST_EINVAL, err, errlen,
                        "%s: snapshot at index %llu is not newer than the "
                        "stored one (%llu)",
                        s->path, (unsigned long long)index, (unsigned long long)s->c.snap_index);
    st_snap_writer *w = writer_alloc(s, index, term);
    if (!w)
        return sto_fail(ST_ENOMEM, err, errlen, "%s: out of memory for a snapshot writer", s->path);
    int r = sto_snapf_create(s, index, term, &w->f, err, errlen);
    if (r) {
        writer_free(w);
        return r;
    }
    s->bg_open = true;
    *out = w;
    return 0;
}

int st_bgsnap_write(st_snap_writer *w, const void *buf, size_t len, char *err, size_t errlen)
{
    if (!len)
        return 0;
    return snap_pump(w, buf, len, false, err, errlen);
}

int st_bgsnap_finish(st_snap_writer *w, char *err, size_t errlen)
{
    int r = snap_pump(w, NULL, 0, true, err, errlen);
    if (!r)
        r = chunk_flush(w, err, errlen);
    /* Durable here, on the writer's thread, rather than in the commit. */
    if (!r)
        r = sto_snapf_finish(w->s, &w->f, err, errlen);
    if (!r)
        w->finished = true;
    return r;
}

int st_bgsnap_commit(st_snap_writer *w, const raft_conf *conf, char *err, size_t errlen)
{
    st_store *s = w->s;
    int r = 0;
    if (!w->finished)
        r = sto_fail(ST_EINVAL, err, errlen, "%s: background snapshot not finished", s->path);
    else if (!conf || conf->n > RAFT_MAX_NODES)
        r = sto_fail(ST_EINVAL, err, errlen, "%s: snapshot needs a valid configuration", s->path);
    else if (w->index <= s->c.snap_index)
        r = sto_fail(ST_EINVAL, err, errlen,
                     "%s: snapshot at index %llu is not newer than the "
                     "stored one (%llu)",
                     s->path, (unsigned long long)w->index, (unsigned long long)s->c.snap_index);
    if (!r) {
        r = sto_txn_begin(s, err, errlen);
        if (!r) {
            /* The file becomes the snapshot by its record; the one it
             * replaces is deleted once this commits (sto_snap_txn_end). */
            r = snap_record(s, w->index, w->term, conf, w->raw_len, &w->f, s->ck_running, err,
                            errlen);
            if (!r)
                r = sto_txn_commit(s, err, errlen);
            else
                sto_txn_rollback(s);
        }
    }
    writer_free(w);
    if (!r) {
        if (s->ck_running)
            sto_ckpt_wake(s, true);
        else
            sto_checkpoint_after_snapshot(s);
    }
    return r;
}

uint64_t st_bgsnap_bytes(const st_snap_writer *w)
{
    return w->f.len;
}

void st_bgsnap_abort(st_snap_writer *w)
{
    /* Its file goes with it (or at the next st_open after a crash). */
    writer_free(w);
}

/* ---- reading the stored form ------------------------------------------------- */

struct st_snap_reader {
    st_store *s; /* NULL: a frame in memory */
    ZSTD_DCtx *d;
    const uint8_t *src;
    size_t src_len, src_pos;
    bool rows_done;
    int fd;         /* the stored snapshot's file, */
    sto_snapf f;    /* its description (a copy), */
    uint8_t *piece; /* the piece being decompressed */
    uint64_t seq, nchunks, comp_len, raw_len, seen, raw;
    size_t left; /* last zstd result: 0 once the frame (and its checksum) ended */
    int err;
    char where[PATH_MAX + 80]; /* for messages: the file, or "received snapshot" */
    char msg[PATH_MAX + 320];
};

__attribute__((format(printf, 3, 4))) static int rd_fail(st_snap_reader *r, int code,
                                                         const char *fmt, ...)
{
    if (!r->err) {
        r->err = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->msg, sizeof r->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Next piece of compressed input: 1, 0 at the end, -1 on error. */
static int rd_next(st_snap_reader *r)
{
    if (!r->s || r->rows_done)
        return 0;
    if (r->seq == r->f.n) {
        r->rows_done = true;
        return 0;
    }
    size_t n = 0;
    int c = sto_snapf_read(r->s, r->fd, &r->f, r->seq, r->piece, &n, r->msg, sizeof r->msg);
    if (c) {
        r->err = c;
        return -1;
    }
    r->seq++;
    r->seen += n;
    r->src = r->piece;
    r->src_len = n;
    r->src_pos = 0;
    return 1;
}

int st_snap_read(void *arg, void *buf, size_t n)
{
    st_snap_reader *r = arg;
    ZSTD_outBuffer out = {buf, n, 0};
    while (out.pos < out.size) {
        if (r->err)
            return -1;
        if (r->left == 0) /* the frame ended */
            return rd_fail(r, ST_ECORRUPT, "%s: snapshot ends before the state does", r->where);
        ZSTD_inBuffer in = {r->src, r->src_len, r->src_pos};
        size_t before = out.pos, ipos = in.pos;
        size_t ret = ZSTD_decompressStream(r->d, &out, &in);
        r->src_pos = in.pos;
        if (ZSTD_isError(ret))
            return rd_fail(r, ST_ECORRUPT, "%s: snapshot: %s", r->where, ZSTD_getErrorName(ret));
        r->left = ret;
        if (out.pos > before || in.pos > ipos)
            continue;
        if (r->src_pos == r->src_len) {
            int g = rd_next(r);
            if (g < 0)
                return -1;
            if (g == 0)
                return rd_fail(r, ST_ECORRUPT, "%s: snapshot ends before the state does", r->where);
        } else {
            return rd_fail(r, ST_ECORRUPT, "%s: snapshot: decompression stalled", r->where);
        }
    }
    r->raw += n;
    return 0;
}

static int reader_new(st_snap_reader **out, char *err, size_t errlen)
{
    *out = calloc(1, sizeof **out);
    if (*out)
        (*out)->d = ZSTD_createDCtx();
    if (!*out || !(*out)->d) {
        free(*out);
        *out = NULL;
        return sto_fail(ST_ENOMEM, err, errlen, "out of memory for a snapshot reader");
    }
    (*out)->left = 1;
    (*out)->fd = -1;
    snprintf((*out)->where, sizeof(*out)->where, "received snapshot");
    return 0;
}

int st_snap_reader_open(st_store *s, st_snap_reader **out, char *err, size_t errlen)
{
    *out = NULL;
    int r = reader_new(out, err, errlen);
    if (r)
        return r;
    st_snap_reader *rd = *out;
    rd->s = s;
    sqlite3_stmt *st = s->q[Q_SNAP_GET];
    int rc = sqlite3_step(st);
    uint64_t idx = 0;
    if (rc == SQLITE_ROW) {
        idx = (uint64_t)sqlite3_column_int64(st, 0);
        uint64_t term = (uint64_t)sqlite3_column_int64(st, 1);
        rd->raw_len = (uint64_t)sqlite3_column_int64(st, 3);
        rd->comp_len = (uint64_t)sqlite3_column_int64(st, 4);
        rd->nchunks = (uint64_t)sqlite3_column_int64(st, 5);
        uint32_t crc = (uint32_t)sqlite3_column_int64(st, 6);
        if (crc != snapmeta_crc(idx, term, rd->raw_len, rd->comp_len, rd->nchunks))
            r = sto_fail(ST_ECORRUPT, err, errlen,
                         "%s: snapshot at index %llu: metadata checksum mismatch", s->path,
                         (unsigned long long)idx);
    } else {
        r = rc == SQLITE_DONE ? sto_fail(ST_EINVAL, err, errlen, "%s: no snapshot stored", s->path)
                              : sto_sqlfail(s, rc, err, errlen, "read snapshot metadata");
    }
    sto_reset_q(s, Q_SNAP_GET);
    /* Its own descriptor and copy of the checksums: a snapshot committed
     * meanwhile deletes the file's name, not what this reader reads. */
    sto_snapf_path(s, s->cur.name, rd->where, sizeof rd->where);
    if (!r && (rd->nchunks != s->cur.n || rd->comp_len != s->cur.len || !s->cur.name[0]))
        r = sto_fail(ST_ECORRUPT, err, errlen,
                     "%s: snapshot at index %llu: the record of its file does not match it",
                     rd->where, (unsigned long long)idx);
    if (!r) {
        memcpy(rd->f.name, s->cur.name, sizeof rd->f.name);
        rd->f.n = s->cur.n;
        rd->f.len = s->cur.len;
        rd->f.crcs = malloc(rd->f.n ? rd->f.n * 4 : 4);
        rd->piece = malloc(SNAP_PIECE);
        if (!rd->f.crcs || !rd->piece)
            r = sto_fail(ST_ENOMEM, err, errlen, "%s: out of memory", rd->where);
        else if (rd->f.n)
            memcpy(rd->f.crcs, s->cur.crcs, rd->f.n * 4);
    }
    if (!r) {
        rd->fd = open(rd->where, O_RDONLY | O_CLOEXEC);
        if (rd->fd < 0)
            r = sto_fail(errno == ENOENT ? ST_ECORRUPT : ST_EIO, err, errlen,
                         "%s: cannot open the snapshot file: %s", rd->where, strerror(errno));
        else
            s->snap_readers++; /* its file is not cut down when replaced */
    }
    if (r) {
        st_snap_reader_close(rd, NULL, 0);
        *out = NULL;
    }
    return r;
}

int st_snap_reader_open_frame(const void *frame, size_t len, st_snap_reader **out, char *err,
                              size_t errlen)
{
    int r = reader_new(out, err, errlen);
    if (r)
        return r;
    (*out)->src = frame;
    (*out)->src_len = len;
    (*out)->comp_len = len;
    (*out)->seen = len;
    return 0;
}

uint64_t st_snap_reader_bytes(const st_snap_reader *r)
{
    return r->raw;
}

int st_snap_reader_close(st_snap_reader *r, char *err, size_t errlen)
{
    if (!r)
        return 0;
    /* The state decoder stops at its trailer: the rest of the frame must be
     * nothing but its end (zstd checks the content checksum there). */
    uint8_t scratch[64];
    while (!r->err) {
        if (r->left == 0) {
            if (r->src_pos < r->src_len) {
                rd_fail(r, ST_ECORRUPT, "%s: snapshot holds bytes after its frame", r->where);
                break;
            }
            int g = rd_next(r);
            if (g <= 0)
                break;
            continue;
        }
        ZSTD_outBuffer out = {scratch, sizeof scratch, 0};
        ZSTD_inBuffer in = {r->src, r->src_len, r->src_pos};
        size_t ret = ZSTD_decompressStream(r->d, &out, &in);
        r->src_pos = in.pos;
        if (ZSTD_isError(ret)) {
            rd_fail(r, ST_ECORRUPT, "%s: snapshot: %s", r->where, ZSTD_getErrorName(ret));
            break;
        }
        r->left = ret;
        if (out.pos) {
            rd_fail(r, ST_ECORRUPT, "%s: snapshot holds bytes after the state", r->where);
            break;
        }
        if (r->src_pos < r->src_len)
            continue;
        if (rd_next(r) <= 0)
            break;
    }
    if (!r->err && r->left != 0)
        rd_fail(r, ST_ECORRUPT, "%s: snapshot frame incomplete", r->where);
    if (!r->err && r->s && (r->seq != r->nchunks || r->seen != r->comp_len || r->raw != r->raw_len))
        rd_fail(r, ST_ECORRUPT, "%s: snapshot incomplete (%llu of %llu chunks, %llu of %llu bytes)",
                r->where, (unsigned long long)r->seq, (unsigned long long)r->nchunks,
                (unsigned long long)r->raw, (unsigned long long)r->raw_len);
    int rc = r->err;
    if (rc)
        sto_fail(rc, err, errlen, "%s", r->msg);
    if (r->fd >= 0) {
        close(r->fd);
        r->s->snap_readers--;
    }
    free(r->f.crcs);
    free(r->piece);
    ZSTD_freeDCtx(r->d);
    free(r);
    return rc;
}

/* ---- installing a received snapshot ------------------------------------------- */

/* Raw length of a zstd frame in memory, checking that it decompresses whole
 * and ends exactly at len (content checksum included). */
static int frame_check(const char *path, const uint8_t *frame, size_t len, uint64_t *raw_out,
                       char *err, size_t errlen)
{
    st_snap_reader *rd;
    int r = st_snap_reader_open_frame(frame, len, &rd, err, errlen);
    if (r)
        return r;
    uint8_t *scratch = malloc(1 << 16);
    uint64_t raw = 0;
    if (!scratch)
        rd_fail(rd, ST_ENOMEM, "out of memory");
    while (!rd->err && rd->left) {
        ZSTD_outBuffer out = {scratch, 1 << 16, 0};
        ZSTD_inBuffer in = {rd->src, rd->src_len, rd->src_pos};
        size_t ret = ZSTD_decompressStream(rd->d, &out, &in);
        if (ZSTD_isError(ret)) {
            rd_fail(rd, ST_ECORRUPT, "%s: received snapshot: %s", path, ZSTD_getErrorName(ret));
            break;
        }
        raw += out.pos;
        bool progress = out.pos || in.pos > rd->src_pos;
        rd->src_pos = in.pos;
        rd->left = ret;
        if (!progress)
            break;
    }
    free(scratch);
    rd->raw = raw;
    *raw_out = raw;
    return st_snap_reader_close(rd, err, errlen);
}

int sto_snap_install(st_store *s, const raft_snapshot *snap, char *err, size_t errlen)
{
    if (snap->index == 0)
        return sto_fail(ST_EINVAL, err, errlen, "%s: snapshot at index 0", s->path);
    if (snap->conf.n > RAFT_MAX_NODES)
        return sto_fail(ST_EINVAL, err, errlen, "%s: snapshot needs a valid configuration",
                        s->path);
    if (snap->index < s->c.snap_index)
        return sto_fail(ST_EINVAL, err, errlen,
                        "%s: snapshot at index %llu is older than the stored one (%llu)", s->path,
                        (unsigned long long)snap->index, (unsigned long long)s->c.snap_index);
    const uint8_t *frame = snap->data;
    size_t len = snap->len;
    if (!len || !frame)
        return sto_fail(ST_EINVAL, err, errlen, "%s: empty snapshot frame", s->path);
    uint64_t raw = 0;
    int r = frame_check(s->path, frame, len, &raw, err, errlen);
    if (r)
        return r;
    /* The file is durable before the transaction that names it commits; the
     * replaced one is deleted after (sto_snap_txn_end). */
    sto_snapf f;
    r = sto_snapf_create(s, snap->index, snap->term, &f, err, errlen);
    if (r)
        return r;
    for (size_t off = 0; off < len && !r; off += SNAP_PIECE)
        r = sto_snapf_piece(s, &f, frame + off, len - off < SNAP_PIECE ? len - off : SNAP_PIECE,
                            err, errlen);
    if (!r)
        r = sto_snapf_finish(s, &f, err, errlen);
    if (!r)
        r = snap_record(s, snap->index, snap->term, &snap->conf, raw, &f, false, err, errlen);
    sto_snapf_discard(s, &f); /* nothing once recorded */
    return r;
}

/* The stored snapshot's metadata, checked (sto_snap_load in storage_internal.h). */
int sto_snap_load(st_store *s, raft_snapshot *snap, char *err, size_t errlen)
{
    memset(snap, 0, sizeof *snap);
    sqlite3_stmt *st = s->q[Q_SNAP_GET];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sto_reset_q(s, Q_SNAP_GET);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        sto_reset_q(s, Q_SNAP_GET);
        return sto_sqlfail(s, rc, err, errlen, "read snapshot metadata");
    }
    uint64_t idx = (uint64_t)sqlite3_column_int64(st, 0);
    uint64_t term = (uint64_t)sqlite3_column_int64(st, 1);
    const uint8_t *cb = sqlite3_column_blob(st, 2);
    size_t cl = (size_t)sqlite3_column_bytes(st, 2);
    uint64_t raw_len = (uint64_t)sqlite3_column_int64(st, 3);
    uint64_t comp_len = (uint64_t)sqlite3_column_int64(st, 4);
    uint64_t nchunks = (uint64_t)sqlite3_column_int64(st, 5);
    uint32_t crc = (uint32_t)sqlite3_column_int64(st, 6);
    int bad = crc != snapmeta_crc(idx, term, raw_len, comp_len, nchunks) ||
              conf_blob_get(cb, cl, &snap->conf) != 0;
    sto_reset_q(s, Q_SNAP_GET);
    if (bad)
        return sto_fail(ST_ECORRUPT, err, errlen,
                        "%s: snapshot at index %llu: metadata checksum mismatch", s->path,
                        (unsigned long long)idx);
    if (raw_len > SIZE_MAX / 2)
        return sto_fail(ST_ECORRUPT, err, errlen,
                        "%s: snapshot at index %llu: size %llu impossible", s->path,
                        (unsigned long long)idx, (unsigned long long)raw_len);
    /* stored form: the caller reads the bytes with st_snap_reader */
    snap->index = idx;
    snap->term = term;
    snap->len = (size_t)comp_len;
    return 0;
}
