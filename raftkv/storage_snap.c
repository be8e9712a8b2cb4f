/*
 * storage_snap.c — snapshots in the store.  The stored form of a snapshot is
 * one zstd frame (with content checksum) cut into 1 MiB rows of snap_chunk;
 * the node keeps its snapshot only there (raft_config.external_snapshot):
 *
 *   taking one    the background writer (st_bgsnap_*): the node's snapshot
 *                 worker thread compresses the state, which a forked child
 *                 streams to it, into a staging table in short transactions
 *                 of its own connection; the node's loop then commits it in
 *                 one transaction by a table rename;
 *   installing    a frame received from the leader, checked to decompress
 *                 whole and stored as is, inside st_save_ready's transaction;
 *   reading       st_snap_stored_read serves ranges of the stored form (what a
 *                 leader sends), st_snap_reader streams the state back out.
 */
#include "raftkv/storage_internal.h"

#include "raftkv/byte.h"
#include "raftkv/conf_codec.h"
#include "raftkv/crc32c.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define SNAP_CHUNK (1u << 20) /* compressed bytes per snap_chunk row */
#define ZSTD_LEVEL 1          /* fast: the state streams through as it is encoded */

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

/* The snap row of a snapshot whose chunks are in snap_chunk, and the
 * compaction of the log it covers, inside the caller's transaction (lazy:
 * covered rows left to the checkpointer).  Updates the cache on success. */
static int snap_record(st_store *s, uint64_t index, uint64_t term, const raft_conf *conf,
                       uint64_t raw_len, uint64_t comp_len, uint64_t nchunks, bool lazy, char *err,
                       size_t errlen)
{
    int r;
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
        sqlite3_bind_int64(st, 6, (sqlite3_int64)nchunks);
        sqlite3_bind_int64(st, 7, snapmeta_crc(index, term, raw_len, comp_len, nchunks));
        r = sto_step_done(s, Q_SNAP_PUT, err, errlen, "store snapshot metadata");
    }
    bw_free(&cb);
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
    uint8_t *out; /* one compressed chunk being filled */
    size_t out_pos;
    uint64_t seq;
    uint64_t raw_len, comp_len;
    uint64_t index, term;
    bool staged, finished;
    sqlite3 *wdb; /* its own connection, for the staging table */
    sqlite3_stmt *ins;
};

static int bg_exec(st_snap_writer *w, const char *sql, char *err, size_t errlen)
{
    char *em = NULL;
    int rc = sqlite3_exec(w->wdb, sql, NULL, NULL, &em);
    sqlite3_free(em);
    if (rc != SQLITE_OK) {
        int code = sto_map_sqlite(rc);
        return sto_fail(code ? code : ST_EIO, err, errlen, "%s: background snapshot: %s: %s",
                        w->s->path, sql, sqlite3_errmsg(w->wdb));
    }
    return 0;
}

/* One compressed chunk into the staging table, in a short transaction of the
 * writer's own connection (taking the store's write mutex, so batches of the
 * caller's thread wait at most for one chunk).  No fsync here: the commit's
 * fsync of the WAL covers these frames too. */
static int stage_put(st_snap_writer *w, const void *body, size_t len, char *err, size_t errlen)
{
    st_store *s = w->s;
    pthread_mutex_lock(&s->wmu);
    int r = bg_exec(w, "BEGIN IMMEDIATE", err, errlen);
    if (!r && !w->staged) {
        r = bg_exec(w,
                    "CREATE TABLE IF NOT EXISTS snap_stage(seq INTEGER PRIMARY KEY,"
                    " crc INTEGER NOT NULL, body BLOB NOT NULL); DELETE FROM snap_stage",
                    err, errlen);
        if (!r && sqlite3_prepare_v2(w->wdb,
                                     "INSERT INTO snap_stage(seq, crc, body) "
                                     "VALUES (?, ?, ?)",
                                     -1, &w->ins, NULL) != SQLITE_OK)
            r = sto_fail(ST_EIO, err, errlen, "%s: background snapshot: prepare: %s", s->path,
                         sqlite3_errmsg(w->wdb));
        if (!r)
            w->staged = true;
    }
    if (!r) {
        sqlite3_bind_int64(w->ins, 1, (sqlite3_int64)w->seq);
        sqlite3_bind_int64(w->ins, 2, crc32c(0, body, len));
        sqlite3_bind_blob(w->ins, 3, body, (int)len, SQLITE_STATIC);
        int rc = sqlite3_step(w->ins);
        sqlite3_reset(w->ins);
        sqlite3_clear_bindings(w->ins);
        if (rc != SQLITE_DONE)
            r = sto_fail(sto_map_sqlite(rc) ? sto_map_sqlite(rc) : ST_EIO, err, errlen,
                         "%s: background snapshot: store chunk: %s", s->path,
                         sqlite3_errmsg(w->wdb));
    }
    if (!r)
        r = bg_exec(w, "COMMIT", err, errlen);
    if (r && !sqlite3_get_autocommit(w->wdb))
        sqlite3_exec(w->wdb, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&s->wmu);
    return r;
}

static int chunk_flush(st_snap_writer *w, char *err, size_t errlen)
{
    if (w->out_pos == 0)
        return 0;
    int r = stage_put(w, w->out, w->out_pos, err, errlen);
    if (r)
        return r;
    w->seq++;
    w->comp_len += w->out_pos;
    w->out_pos = 0;
    return 0;
}

/* Feeds input (or finishes the frame when end) through zstd into chunks. */
static int snap_pump(st_snap_writer *w, const void *buf, size_t len, bool end, char *err,
                     size_t errlen)
{
    ZSTD_inBuffer in = {buf, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->out, SNAP_CHUNK, w->out_pos};
        size_t left = ZSTD_compressStream2(w->cctx, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left))
            return sto_fail(ST_EIO, err, errlen, "%s: snapshot compression failed: %s", w->s->path,
                            ZSTD_getErrorName(left));
        w->out_pos = out.pos;
        if (w->out_pos == SNAP_CHUNK) {
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
    sqlite3_finalize(w->ins);
    sqlite3_close_v2(w->wdb);
    w->s->bg_open = false;
    free(w);
}

/* A writer with its compression context and chunk buffer; NULL when out of
 * memory. */
static st_snap_writer *writer_alloc(st_store *s, uint64_t index, uint64_t term)
{
    st_snap_writer *w = calloc(1, sizeof *w);
    if (w)
        w->out = malloc(SNAP_CHUNK);
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
    int rc = sqlite3_open_v2(s->path, &w->wdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(w->wdb, "PRAGMA synchronous = OFF; PRAGMA cache_size = -2048;", NULL,
                          NULL, NULL);
    if (rc != SQLITE_OK) {
        int code = sto_map_sqlite(rc) ? sto_map_sqlite(rc) : ST_EIO;
        sto_fail(code, err, errlen, "%s: background snapshot: open: %s", s->path,
                 w->wdb ? sqlite3_errmsg(w->wdb) : sqlite3_errstr(rc));
        writer_free(w);
        return code;
    }
    sqlite3_busy_timeout(w->wdb, 5000);
    sqlite3_wal_autocheckpoint(w->wdb, 0);
    s->bg_open = true;
    *out = w;
    return 0;
}

int st_bgsnap_write(st_snap_writer *w, const void *buf, size_t len, char *err, size_t errlen)
{
    if (!len)
        return 0;
    int r = snap_pump(w, buf, len, false, err, errlen);
    if (!r)
        sto_ckpt_request(w->s); /* keep the WAL the staging grows in short */
    return r;
}

int st_bgsnap_finish(st_snap_writer *w, char *err, size_t errlen)
{
    int r = snap_pump(w, NULL, 0, true, err, errlen);
    /* The last chunk's commit makes the whole staging durable (one fsync of
     * the WAL, here rather than in the commit on the owner's thread). */
    if (!r)
        r = bg_exec(w, "PRAGMA synchronous = FULL", err, errlen);
    if (!r)
        r = chunk_flush(w, err, errlen);
    if (!r)
        w->finished = true;
    return r;
}

int st_bgsnap_commit(st_snap_writer *w, const raft_conf *conf, char *err, size_t errlen)
{
    st_store *s = w->s;
    int r = 0;
    if (!w->finished || !w->staged)
        r = sto_fail(ST_EINVAL, err, errlen, "%s: background snapshot not finished", s->path);
    else if (!conf || conf->n > RAFT_MAX_NODES)
        r = sto_fail(ST_EINVAL, err, errlen, "%s: snapshot needs a valid configuration", s->path);
    else if (w->index <= s->c.snap_index)
        r = sto_fail(ST_EINVAL, err, errlen,
                     "%s: snapshot at index %llu is not newer than the "
                     "stored one (%llu)",
                     s->path, (unsigned long long)w->index, (unsigned long long)s->c.snap_index);
    if (!r) {
        /* The writer's connection is done: close it before the schema moves. */
        sqlite3_finalize(w->ins);
        w->ins = NULL;
        sqlite3_close_v2(w->wdb);
        w->wdb = NULL;
        r = sto_txn_begin(s, err, errlen);
        if (!r) {
            /* The staged chunks become the snapshot by a rename: no copy. */
            r = sto_exec_sql(s,
                             s->ck_running ? "DROP TABLE IF EXISTS snap_old;"
                                             "ALTER TABLE snap_chunk RENAME TO snap_old;"
                                             "ALTER TABLE snap_stage RENAME TO snap_chunk"
                                           : "DROP TABLE IF EXISTS snap_old; DROP TABLE snap_chunk;"
                                             "ALTER TABLE snap_stage RENAME TO snap_chunk",
                             err, errlen);
            if (!r)
                r = snap_record(s, w->index, w->term, conf, w->raw_len, w->comp_len, w->seq,
                                s->ck_running, err, errlen);
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
    return w->comp_len;
}

void st_bgsnap_abort(st_snap_writer *w)
{
    /* Staged chunks stay until the next background snapshot or st_open. */
    writer_free(w);
}

/* ---- reading the stored form ------------------------------------------------- */

struct st_snap_reader {
    st_store *s; /* NULL: a frame in memory */
    ZSTD_DCtx *d;
    const uint8_t *src;
    size_t src_len, src_pos;
    bool txn, rows_done;
    uint64_t seq, nchunks, comp_len, raw_len, seen, raw;
    size_t left; /* last zstd result: 0 once the frame (and its checksum) ended */
    int err;
    char msg[320];
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
    st_store *s = r->s;
    sqlite3_stmt *st = s->q[Q_CHUNK_ALL];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r->rows_done = true;
        return 0;
    }
    if (rc != SQLITE_ROW)
        return rd_fail(r, sto_map_sqlite(rc) ? sto_map_sqlite(rc) : ST_EIO,
                       "%s: read snapshot chunks: %s", s->path, sqlite3_errmsg(s->db));
    uint64_t cs = (uint64_t)sqlite3_column_int64(st, 0);
    uint32_t ccrc = (uint32_t)sqlite3_column_int64(st, 1);
    const void *body = sqlite3_column_blob(st, 2);
    size_t blen = (size_t)sqlite3_column_bytes(st, 2);
    if (cs != r->seq || !body || crc32c(0, body, blen) != ccrc)
        return rd_fail(r, ST_ECORRUPT, "%s: snapshot: chunk %llu %s", s->path,
                       (unsigned long long)r->seq, cs != r->seq ? "missing" : "checksum mismatch");
    r->seq++;
    r->seen += blen;
    r->src = body;
    r->src_len = blen;
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
            return rd_fail(r, ST_ECORRUPT, "%s: snapshot ends before the state does",
                           r->s ? r->s->path : "received snapshot");
        ZSTD_inBuffer in = {r->src, r->src_len, r->src_pos};
        size_t before = out.pos, ipos = in.pos;
        size_t ret = ZSTD_decompressStream(r->d, &out, &in);
        r->src_pos = in.pos;
        if (ZSTD_isError(ret))
            return rd_fail(r, ST_ECORRUPT, "%s: snapshot: %s",
                           r->s ? r->s->path : "received snapshot", ZSTD_getErrorName(ret));
        r->left = ret;
        if (out.pos > before || in.pos > ipos)
            continue;
        if (r->src_pos == r->src_len) {
            int g = rd_next(r);
            if (g < 0)
                return -1;
            if (g == 0)
                return rd_fail(r, ST_ECORRUPT, "%s: snapshot ends before the state does",
                               r->s ? r->s->path : "received snapshot");
        } else {
            return rd_fail(r, ST_ECORRUPT, "%s: snapshot: decompression stalled",
                           r->s ? r->s->path : "received snapshot");
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
    r = sto_exec_sql(s, "BEGIN", err, errlen);
    if (!r) {
        rd->txn = true;
        sqlite3_stmt *st = s->q[Q_SNAP_GET];
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            uint64_t idx = (uint64_t)sqlite3_column_int64(st, 0);
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
            r = rc == SQLITE_DONE
                    ? sto_fail(ST_EINVAL, err, errlen, "%s: no snapshot stored", s->path)
                    : sto_sqlfail(s, rc, err, errlen, "read snapshot metadata");
        }
        sto_reset_q(s, Q_SNAP_GET);
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
                rd_fail(r, ST_ECORRUPT, "%s: snapshot holds bytes after its frame",
                        r->s ? r->s->path : "received snapshot");
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
            rd_fail(r, ST_ECORRUPT, "%s: snapshot: %s", r->s ? r->s->path : "received snapshot",
                    ZSTD_getErrorName(ret));
            break;
        }
        r->left = ret;
        if (out.pos) {
            rd_fail(r, ST_ECORRUPT, "%s: snapshot holds bytes after the state",
                    r->s ? r->s->path : "received snapshot");
            break;
        }
        if (r->src_pos < r->src_len)
            continue;
        if (rd_next(r) <= 0)
            break;
    }
    if (!r->err && r->left != 0)
        rd_fail(r, ST_ECORRUPT, "%s: snapshot frame incomplete",
                r->s ? r->s->path : "received snapshot");
    if (!r->err && r->s && (r->seq != r->nchunks || r->seen != r->comp_len || r->raw != r->raw_len))
        rd_fail(r, ST_ECORRUPT, "%s: snapshot incomplete (%llu of %llu chunks, %llu of %llu bytes)",
                r->s->path, (unsigned long long)r->seq, (unsigned long long)r->nchunks,
                (unsigned long long)r->raw, (unsigned long long)r->raw_len);
    int rc = r->err;
    if (rc)
        sto_fail(rc, err, errlen, "%s", r->msg);
    if (r->s) {
        sto_reset_q(r->s, Q_CHUNK_ALL);
        if (r->txn)
            sto_exec_sql(r->s, "COMMIT", NULL, 0);
    }
    ZSTD_freeDCtx(r->d);
    free(r);
    return rc;
}

/* The connection st_snap_stored_read reads through: its own, so that it
 * may run on one thread while another saves batches through s->db (WAL
 * mode: a reader never waits for the writer). */
static int reader_conn_open(st_store *s, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(s->path, &s->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(s->rdb, 2000);
        rc = sqlite3_prepare_v2(s->rdb, "SELECT crc, body FROM snap_chunk WHERE seq = ?", -1,
                                &s->rq, NULL);
    }
    if (rc != SQLITE_OK) {
        sto_fail(ST_EIO, err, errlen, "%s: open a reader: %s", s->path,
                 s->rdb ? sqlite3_errmsg(s->rdb) : "out of memory");
        sqlite3_finalize(s->rq);
        sqlite3_close_v2(s->rdb);
        s->rq = NULL;
        s->rdb = NULL;
        return -1;
    }
    return 0;
}

void sto_reader_close(st_store *s)
{
    sqlite3_finalize(s->rq);
    sqlite3_close_v2(s->rdb);
    s->rq = NULL;
    s->rdb = NULL;
}

int st_snap_stored_read(st_store *s, uint64_t index, uint64_t off, void *buf, size_t len, char *err,
                        size_t errlen)
{
    if (index != s->c.snap_index || off > s->c.snap_comp || len > s->c.snap_comp - off)
        return sto_fail(ST_EINVAL, err, errlen,
                        "%s: bytes %llu+%zu of snapshot %llu not stored (stored: %llu, %llu bytes)",
                        s->path, (unsigned long long)off, len, (unsigned long long)index,
                        (unsigned long long)s->c.snap_index, (unsigned long long)s->c.snap_comp);
    if (!s->rq && reader_conn_open(s, err, errlen) != 0)
        return ST_EIO;
    uint8_t *dst = buf;
    while (len) {
        uint64_t seq = off / SNAP_CHUNK;
        size_t in = (size_t)(off % SNAP_CHUNK);
        sqlite3_stmt *st = s->rq;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            sqlite3_reset(st);
            if (rc == SQLITE_DONE)
                return sto_fail(ST_ECORRUPT, err, errlen,
                                "%s: snapshot at index %llu: chunk %llu missing", s->path,
                                (unsigned long long)index, (unsigned long long)seq);
            return sto_fail(ST_EIO, err, errlen, "%s: read snapshot chunk: %s", s->path,
                            sqlite3_errmsg(s->rdb));
        }
        uint32_t crc = (uint32_t)sqlite3_column_int64(st, 0);
        const uint8_t *body = sqlite3_column_blob(st, 1);
        size_t blen = (size_t)sqlite3_column_bytes(st, 1);
        bool bad = !body || crc32c(0, body, blen) != crc || in >= blen;
        size_t n = bad ? 0 : (blen - in < len ? blen - in : len);
        if (!bad)
            memcpy(dst, body + in, n);
        sqlite3_reset(st);
        if (bad)
            return sto_fail(ST_ECORRUPT, err, errlen, "%s: snapshot at index %llu: chunk %llu %s",
                            s->path, (unsigned long long)index, (unsigned long long)seq,
                            in >= blen && body ? "too short" : "checksum mismatch");
        dst += n;
        off += n;
        len -= n;
    }
    return 0;
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
    int r = sto_step_done(s, Q_CHUNK_DEL_ALL, err, errlen, "delete old snapshot");
    if (r)
        return r;
    const uint8_t *frame = snap->data;
    size_t len = snap->len;
    if (!len || !frame)
        return sto_fail(ST_EINVAL, err, errlen, "%s: empty snapshot frame", s->path);
    uint64_t raw = 0, seq = 0;
    r = frame_check(s->path, frame, len, &raw, err, errlen);
    for (size_t off = 0; off < len && !r; off += SNAP_CHUNK) {
        size_t n = len - off < SNAP_CHUNK ? len - off : SNAP_CHUNK;
        sqlite3_stmt *st = s->q[Q_CHUNK_INS];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        sqlite3_bind_int64(st, 2, crc32c(0, frame + off, n));
        sqlite3_bind_blob(st, 3, frame + off, (int)n, SQLITE_STATIC);
        r = sto_step_done(s, Q_CHUNK_INS, err, errlen, "store snapshot chunk");
        if (!r)
            seq++;
    }
    if (!r)
        r = snap_record(s, snap->index, snap->term, &snap->conf, raw, len, seq, false, err, errlen);
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
