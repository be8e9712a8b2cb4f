/*
 * storage.c — one node's Raft state in SQLite (see storage.h for the API).
 *
 * Layout (schema version 1):
 *   meta(key, value)                       node identity
 *   hs(id=1, term, vote, commit_idx, crc)  hard state
 *   log(first PK, last, bytes, body)       the log, one row per saved batch:
 *        body = for each index first..last:
 *               term u64 | type u8 | len u32 | crc u32 | data[len]   (LE)
 *        crc  = CRC32C(index u64 | term u64 | type u8 | data)
 *   snap(id=1, idx, term, conf, raw_len, comp_len, nchunks, crc)
 *   snap_chunk(seq PK, crc, body)          one zstd frame cut into chunks
 *
 * Why one row per batch rather than per entry: a batch of 256 small entries
 * then costs one B-tree insert instead of 256, which keeps a batch close to
 * the price of the fsync that makes it durable (issue 3's target).  A batch
 * is what the Raft core hands over in one ready (raft.h), so rows only need
 * splitting when a conflicting suffix starts inside one (dissertation §3.5:
 * the follower deletes the conflicting entry and all that follow it) or a
 * snapshot ends inside one (§5: compaction drops the covered prefix); both
 * rewrite a single row as a contiguous slice of its body.
 *
 * Durability: WAL with synchronous=FULL: a COMMIT returns after the WAL is
 * fdatasync'ed, once per transaction.
 *
 * Checkpoints (copying the WAL into the database file, with an fsync of its
 * own) run on a background thread with its own connection, so a batch on the
 * node loop pays only for its WAL append and fdatasync, never for a
 * checkpoint.  SQLite can only start the WAL over once every frame has been
 * copied; under a steady stream of batches a concurrent checkpoint never
 * catches up exactly, so the thread copies the bulk concurrently and then
 * copies the small remaining tail while holding the store's write mutex
 * (a pause of one short checkpoint, once per few MiB of WAL).
 */
#include "raftkv/storage.h"

#include "raftkv/byte.h"
#include "raftkv/conf_codec.h"
#include "raftkv/crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>
#include <zstd.h>

#define ENT_HDR 17                      /* term 8, type 1, len 4, crc 4 */
#define SNAP_CHUNK (1u << 20)           /* compressed bytes per snap_chunk row */
#define ZSTD_LEVEL 1                    /* fast: snapshots are on the node loop */
#define CKPT_START_PAGES 1024          /* WAL pages that wake the checkpointer (4 MiB) */
#define CKPT_TAIL_PAGES 256            /* tail small enough to finish with the writer paused */
#define CKPT_HARD_PAGES 65536          /* writer checkpoints itself past this (256 MiB) */
#define CKPT_FALLBACK_PAGES 4096       /* autocheckpoint if the thread cannot start */
#define JOURNAL_SIZE_LIMIT (32 << 20)   /* WAL shrinks back to this after a reset */

enum {
    Q_BEGIN, Q_COMMIT, Q_ROLLBACK,
    Q_HS_GET, Q_HS_PUT,
    Q_LOG_INSERT, Q_LOG_ALL, Q_LOG_CONTAINING, Q_LOG_DEL_FROM, Q_LOG_BYTES_FROM,
    Q_LOG_DEL_UPTO, Q_LOG_BYTES_UPTO, Q_LOG_DEL_ALL, Q_LOG_DEL_ONE, Q_LOG_UPDATE, Q_LOG_RANGE, Q_LOG_TOTALS,
    Q_SNAP_GET, Q_SNAP_PUT, Q_CHUNK_INS, Q_CHUNK_DEL_ALL, Q_CHUNK_ALL, Q_CHUNK_GET,
    Q_META_GET, Q_META_PUT,
    Q_COUNT
};

static const char *const q_sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_HS_GET] = "SELECT term, vote, commit_idx, crc FROM hs WHERE id = 1",
    [Q_HS_PUT] = "INSERT OR REPLACE INTO hs(id, term, vote, commit_idx, crc) VALUES (1, ?, ?, ?, ?)",
    [Q_LOG_INSERT] = "INSERT INTO log(first, last, bytes, body) VALUES (?, ?, ?, ?)",
    [Q_LOG_ALL] = "SELECT first, last, body FROM log WHERE first > ?1 ORDER BY first",
    [Q_LOG_CONTAINING] = "SELECT first, last, body FROM log WHERE first <= ?1 AND last >= ?1",
    [Q_LOG_DEL_FROM] = "DELETE FROM log WHERE first >= ?",
    [Q_LOG_BYTES_FROM] = "SELECT coalesce(sum(bytes), 0) FROM log WHERE first >= ?",
    [Q_LOG_DEL_UPTO] = "DELETE FROM log WHERE last <= ?",
    [Q_LOG_BYTES_UPTO] = "SELECT coalesce(sum(bytes), 0) FROM log WHERE first > ?1 AND last <= ?2",
    [Q_LOG_DEL_ALL] = "DELETE FROM log",
    [Q_LOG_DEL_ONE] = "DELETE FROM log WHERE first = ?",
    [Q_LOG_UPDATE] = "UPDATE log SET last = ?, bytes = ?, body = ? WHERE first = ?",
    [Q_LOG_RANGE] = "SELECT first, last, body FROM log WHERE last >= ? AND first <= ? ORDER BY first",
    [Q_LOG_TOTALS] = "SELECT coalesce(max(last), 0), coalesce(sum(bytes), 0), "
                     "coalesce(sum(last - first + 1), 0), coalesce(min(first), 0) FROM log "
                     "WHERE first > ?1",
    [Q_SNAP_GET] = "SELECT idx, term, conf, raw_len, comp_len, nchunks, crc FROM snap WHERE id = 1",
    [Q_SNAP_PUT] = "INSERT OR REPLACE INTO snap(id, idx, term, conf, raw_len, comp_len, nchunks, crc) "
                   "VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
    [Q_CHUNK_INS] = "INSERT INTO snap_chunk(seq, crc, body) VALUES (?, ?, ?)",
    [Q_CHUNK_DEL_ALL] = "DELETE FROM snap_chunk",
    [Q_CHUNK_ALL] = "SELECT seq, crc, body FROM snap_chunk ORDER BY seq",
    [Q_CHUNK_GET] = "SELECT crc, body FROM snap_chunk WHERE seq = ?",
    [Q_META_GET] = "SELECT value FROM meta WHERE key = ?",
    [Q_META_PUT] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
};

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value) ;"
    "CREATE TABLE hs(id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL,"
    "  vote INTEGER NOT NULL, commit_idx INTEGER NOT NULL, crc INTEGER NOT NULL) ;"
    "CREATE TABLE log(first INTEGER PRIMARY KEY, last INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL, body BLOB NOT NULL) ;"
    "CREATE TABLE snap(id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL,"
    "  term INTEGER NOT NULL, conf BLOB NOT NULL, raw_len INTEGER NOT NULL,"
    "  comp_len INTEGER NOT NULL, nchunks INTEGER NOT NULL, crc INTEGER NOT NULL) ;"
    "CREATE TABLE snap_chunk(seq INTEGER PRIMARY KEY, crc INTEGER NOT NULL,"
    "  body BLOB NOT NULL) ;";

/* Cached summary of what is stored; restored when a transaction rolls back. */
typedef struct st_cache {
    uint64_t last_index;    /* last log index, or snap_index when the log is empty */
    uint64_t snap_index, snap_term;
    uint64_t log_bytes;
    uint64_t snap_comp;     /* compressed snapshot bytes */
} st_cache;

struct st_store {
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT];
    int lock_fd;
    char dir[PATH_MAX];
    char path[PATH_MAX];
    st_cache c, saved;
    bool in_txn;
    bool writer_open;
    bool bg_open;           /* a background snapshot writer exists */
    bool frames;            /* snapshots in ready batches come in stored form */
    /* Background checkpointer (see the file comment). */
    pthread_mutex_t wmu;    /* held by every write transaction */
    pthread_mutex_t cmu;    /* guards ck_req / ck_stop */
    pthread_cond_t ccv;
    bool ck_req, ck_stop, ck_running, mutexes;
    bool ck_drop;           /* snap_old (a replaced snapshot) waits to be dropped */
    pthread_t ck_thr;
    sqlite3 *ckdb;
};

struct st_snap_writer {
    st_store *s;
    ZSTD_CCtx *cctx;
    uint8_t *out;           /* one compressed chunk being filled */
    size_t out_pos;
    uint64_t seq;
    uint64_t raw_len, comp_len;
    uint64_t index, term;
    raft_conf conf;
    bool own_txn;           /* false inside st_save_ready's transaction */
    bool raw_frame;         /* chunks stored as given (already a zstd frame) */
    /* background writer (st_bgsnap_*): its own connection, staging table */
    bool bg, staged, finished;
    sqlite3 *wdb;
    sqlite3_stmt *ins;
};

/* ---- small helpers ---------------------------------------------------------- */

const char *st_strerror(int rc)
{
    switch (rc) {
    case ST_OK: return "ok";
    case ST_EIO: return "I/O error";
    case ST_ENOSPC: return "disk full";
    case ST_EROFS: return "read-only";
    case ST_ECORRUPT: return "corrupt store";
    case ST_ESCHEMA: return "unsupported schema";
    case ST_ENOTDB: return "not a database";
    case ST_EIDENTITY: return "identity mismatch";
    case ST_EINVAL: return "invalid argument";
    case ST_ENOMEM: return "out of memory";
    case ST_EBUSY: return "busy";
    default: return "unknown storage error";
    }
}

__attribute__((format(printf, 4, 5)))
static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int map_sqlite(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return ST_OK;
    case SQLITE_FULL: return ST_ENOSPC;
    case SQLITE_IOERR:
        if (rc == SQLITE_IOERR_NOMEM) return ST_ENOMEM;
        return ST_EIO;
    case SQLITE_READONLY: case SQLITE_PERM: return ST_EROFS;
    case SQLITE_CORRUPT: return ST_ECORRUPT;
    case SQLITE_NOTADB: return ST_ENOTDB;
    case SQLITE_NOMEM: return ST_ENOMEM;
    case SQLITE_BUSY: case SQLITE_LOCKED: return ST_EBUSY;
    case SQLITE_TOOBIG: case SQLITE_RANGE: case SQLITE_MISUSE: return ST_EINVAL;
    default: return ST_EIO;
    }
}

/* An SQLite failure: code plus "FILE: what: sqlite's message". */
static int sqlfail(st_store *s, int rc, char *err, size_t errlen, const char *what)
{
    int code = map_sqlite(rc);
    if (code == ST_OK)
        code = ST_EIO;
    const char *m = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    if (rc == SQLITE_FULL)
        m = "disk full (database or WAL could not grow)";
    return fail(code, err, errlen, "%s: %s: %s (%s)", s->path, what, m, st_strerror(code));
}

static uint32_t entry_crc(uint64_t index, uint64_t term, uint8_t type, const void *data,
                          uint32_t len)
{
    uint8_t h[17];
    byte_put64(h, index);
    byte_put64(h + 8, term);
    h[16] = type;
    uint32_t c = crc32c(0, h, sizeof h);
    return len ? crc32c(c, data, len) : c;
}

static uint32_t hs_crc(const raft_hard_state *hs)
{
    uint8_t b[24];
    byte_put64(b, hs->term);
    byte_put64(b + 8, hs->vote);
    byte_put64(b + 16, hs->commit);
    return crc32c(0, b, sizeof b);
}

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

/* Runs a statement that returns no rows (resetting it after). */
static int step_done(st_store *s, int q, char *err, size_t errlen, const char *what)
{
    sqlite3_stmt *st = s->q[q];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return sqlfail(s, rc, err, errlen, what);
    return 0;
}

/* Runs a statement returning one integer (resets it). */
static int step_int(st_store *s, int q, uint64_t *v, char *err, size_t errlen, const char *what)
{
    sqlite3_stmt *st = s->q[q];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *v = (uint64_t)sqlite3_column_int64(st, 0);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return sqlfail(s, rc, err, errlen, what);
    return 0;
}

static void reset_q(st_store *s, int q)
{
    sqlite3_reset(s->q[q]);
    sqlite3_clear_bindings(s->q[q]);
}

static int txn_begin(st_store *s, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->wmu);
    int rc = step_done(s, Q_BEGIN, err, errlen, "begin transaction");
    if (rc == 0) {
        s->in_txn = true;
        s->saved = s->c;
    } else {
        pthread_mutex_unlock(&s->wmu);
    }
    return rc;
}

static void txn_rollback(st_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(s->q[Q_ROLLBACK]);
        sqlite3_reset(s->q[Q_ROLLBACK]);
    }
    if (s->in_txn) {
        s->c = s->saved;
        s->in_txn = false;
        pthread_mutex_unlock(&s->wmu);
    }
}

static int txn_commit(st_store *s, char *err, size_t errlen)
{
    int rc = step_done(s, Q_COMMIT, err, errlen, "commit");
    if (rc != 0) {
        txn_rollback(s);
        return rc;
    }
    s->in_txn = false;
    pthread_mutex_unlock(&s->wmu);
    return 0;
}

/* ---- background checkpoints ----------------------------------------------------- */

/* Wakes the checkpointer for a checkpoint; with cleanup, also for the
 * deletions of a replaced snapshot and dead log rows (drop_old_snapshot). */
static void ckpt_wake(st_store *s, bool cleanup)
{
    if (!s->ck_running)
        return;
    pthread_mutex_lock(&s->cmu);
    if (cleanup)
        s->ck_drop = true;
    if (!s->ck_req) {
        s->ck_req = true;
        pthread_cond_signal(&s->ccv);
    }
    pthread_mutex_unlock(&s->cmu);
}

static void ckpt_request(st_store *s) { ckpt_wake(s, false); }

/* Called by SQLite in the writer after each commit with the WAL's size. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    st_store *s = arg;
    if (pages >= CKPT_HARD_PAGES || (!s->ck_running && pages >= CKPT_FALLBACK_PAGES))
        /* Safety valve: the writer holds wmu here, so this copies all. */
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    else if (pages >= CKPT_START_PAGES)
        ckpt_request(s);
    return SQLITE_OK;
}

/* One step of the checkpointer's clean-up: a short transaction under the
 * write mutex that deletes a few rows, so no batch of the node waits for a
 * whole table's pages to be freed.  log false: chunks of snap_old (the
 * snapshot a background commit replaced), and the table once it is empty;
 * log true: dead log rows (first <= snapshot index) left by a lazy
 * compaction, the index read under the mutex like every change of it.
 * 1: rows were deleted, call again; 0: none left (or an error: retried at the
 * next checkpoint); -1: the store is closing. */
static int cleanup_step(st_store *s, sqlite3 *db, bool log)
{
    pthread_mutex_lock(&s->cmu);
    bool stop = s->ck_stop;
    pthread_mutex_unlock(&s->cmu);
    if (stop)
        return -1;
    pthread_mutex_lock(&s->wmu);
    char sql[200];
    if (log)
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; DELETE FROM log WHERE first IN (SELECT first "
                 "FROM log WHERE first <= %llu ORDER BY first LIMIT 32); COMMIT",
                 (unsigned long long)s->c.snap_index);
    else
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; DELETE FROM snap_old WHERE seq IN "
                 "(SELECT seq FROM snap_old ORDER BY seq LIMIT 8); COMMIT");
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    bool more = rc == SQLITE_OK && sqlite3_changes(db) > 0;
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (!log && rc == SQLITE_OK && !more)
        sqlite3_exec(db, "DROP TABLE IF EXISTS snap_old", NULL, NULL, NULL);
    pthread_mutex_unlock(&s->wmu);
    return more ? 1 : 0;
}

/* Drops snap_old, then the dead log rows, in steps (cleanup_step). */
static void drop_old_snapshot(st_store *s, sqlite3 *db)
{
    int r = 1;
    for (int step = 0; step < 1000000 && r > 0; step++)
        r = cleanup_step(s, db, false);
    for (int step = 0; step < 1000000 && r >= 0; step++)
        if ((r = cleanup_step(s, db, true)) == 0)
            return;
}

static void *ckpt_main(void *arg)
{
    st_store *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->cmu);
        while (!s->ck_req && !s->ck_stop) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += 1;
            pthread_cond_timedwait(&s->ccv, &s->cmu, &dl);
        }
        bool stop = s->ck_stop;
        bool drop = s->ck_drop;
        s->ck_req = false;
        s->ck_drop = false;
        pthread_mutex_unlock(&s->cmu);
        if (stop)
            break;
        if (drop)
            drop_old_snapshot(s, s->ckdb);
        int log = 0, done = 0;
        /* Copy the bulk while the writer goes on. */
        for (int i = 0; i < 4; i++) {
            if (sqlite3_wal_checkpoint_v2(s->ckdb, "main", SQLITE_CHECKPOINT_PASSIVE, &log,
                                          &done) != SQLITE_OK || log - done <= CKPT_TAIL_PAGES)
                break;
        }
        /* Finish the tail with the writer paused so the WAL can restart. */
        if (log > done && log - done <= CKPT_TAIL_PAGES) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_nsec += 200 * 1000 * 1000;
            if (dl.tv_nsec >= 1000000000) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000;
            }
            if (pthread_mutex_timedlock(&s->wmu, &dl) == 0) {
                sqlite3_wal_checkpoint_v2(s->ckdb, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
                pthread_mutex_unlock(&s->wmu);
            }
        }
    }
    return NULL;
}

/* Starts the checkpointer; without it the writer checkpoints inline.
 * Its connection runs with synchronous=NORMAL: in WAL mode that still syncs
 * the WAL before each checkpoint and the database after it, so checkpoints
 * are as safe as before; what it drops is the fsync of its own small
 * transactions, the deletions of dead log rows and old snapshot chunks.  Those
 * hold the writer mutex, so their fsyncs would stall the node's loop; and
 * losing one in a crash only leaves rows that are dead anyway, deleted again
 * after the restart (the loop's next FULL commit syncs them with its own). */
static void ckpt_start(st_store *s)
{
    if (sqlite3_open_v2(s->path, &s->ckdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(s->ckdb, "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -2048;", NULL,
                     NULL, NULL) != SQLITE_OK) {
        sqlite3_close_v2(s->ckdb);
        s->ckdb = NULL;
        return;
    }
    sqlite3_busy_timeout(s->ckdb, 2000);
    sqlite3_wal_autocheckpoint(s->ckdb, 0);
    s->ck_running = true;
    if (pthread_create(&s->ck_thr, NULL, ckpt_main, s) != 0) {
        s->ck_running = false;
        sqlite3_close_v2(s->ckdb);
        s->ckdb = NULL;
    }
}

static void ckpt_stop(st_store *s)
{
    if (s->ck_running) {
        pthread_mutex_lock(&s->cmu);
        s->ck_stop = true;
        pthread_cond_signal(&s->ccv);
        pthread_mutex_unlock(&s->cmu);
        pthread_join(s->ck_thr, NULL);
        s->ck_running = false;
    }
    if (s->ckdb) {
        /* Not the last connection: the WAL stays for the writer. */
        sqlite3_close_v2(s->ckdb);
        s->ckdb = NULL;
    }
}

/* ---- log rows ----------------------------------------------------------------- */

typedef struct ent_view {
    uint64_t index, term;
    uint8_t type;
    uint32_t len;
    const uint8_t *data;
    size_t start, end;      /* byte range of this record in the row body */
} ent_view;

/* Parses and verifies the record of `index` at body[*off]. */
static int row_next(st_store *s, const uint8_t *body, size_t blen, size_t *off, uint64_t index,
                    ent_view *v, char *err, size_t errlen)
{
    size_t o = *off;
    if (blen - o < ENT_HDR)
        return fail(ST_ECORRUPT, err, errlen, "%s: log entry %llu: record truncated",
                    s->path, (unsigned long long)index);
    v->index = index;
    v->term = byte_get64(body + o);
    v->type = body[o + 8];
    v->len = byte_get32(body + o + 9);
    uint32_t crc = byte_get32(body + o + 13);
    if (v->len > blen - o - ENT_HDR)
        return fail(ST_ECORRUPT, err, errlen,
                    "%s: log entry %llu: malformed record (length %u past end of row)",
                    s->path, (unsigned long long)index, v->len);
    v->data = body + o + ENT_HDR;
    if (entry_crc(index, v->term, v->type, v->data, v->len) != crc)
        return fail(ST_ECORRUPT, err, errlen, "%s: log entry %llu: checksum mismatch",
                    s->path, (unsigned long long)index);
    v->start = o;
    v->end = o + ENT_HDR + v->len;
    *off = v->end;
    return 0;
}

/* Checks the row header (first, last) against the body length once parsed. */
static int row_end_check(st_store *s, uint64_t first, uint64_t last, size_t off, size_t blen,
                         char *err, size_t errlen)
{
    if (off != blen)
        return fail(ST_ECORRUPT, err, errlen,
                    "%s: log entries %llu..%llu: row has %zu stray bytes", s->path,
                    (unsigned long long)first, (unsigned long long)last, blen - off);
    return 0;
}

static int row_header(st_store *s, sqlite3_stmt *st, uint64_t *first, uint64_t *last,
                      const uint8_t **body, size_t *blen, char *err, size_t errlen)
{
    *first = (uint64_t)sqlite3_column_int64(st, 0);
    *last = (uint64_t)sqlite3_column_int64(st, 1);
    *body = sqlite3_column_blob(st, 2);
    *blen = (size_t)sqlite3_column_bytes(st, 2);
    if (*first == 0 || *last < *first || (*blen > 0 && !*body) ||
        (*last - *first) >= *blen / ENT_HDR + 1)
        return fail(ST_ECORRUPT, err, errlen, "%s: log row at index %llu: bad header (last %llu)",
                    s->path, (unsigned long long)*first, (unsigned long long)*last);
    return 0;
}

/* Keeps only the entries keep_lo..keep_hi of the row holding `at` (which
 * must exist): used to cut a row at a conflict or a snapshot boundary. */
static int row_cut(st_store *s, uint64_t at, uint64_t keep_lo, uint64_t keep_hi, char *err,
                   size_t errlen)
{
    sqlite3_stmt *st = s->q[Q_LOG_CONTAINING];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)at);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        reset_q(s, Q_LOG_CONTAINING);
        if (rc == SQLITE_DONE)
            return 0;   /* nothing stored there */
        return sqlfail(s, rc, err, errlen, "read log row");
    }
    uint64_t first, last;
    const uint8_t *body;
    size_t blen;
    int r = row_header(s, st, &first, &last, &body, &blen, err, errlen);
    if (r) {
        reset_q(s, Q_LOG_CONTAINING);
        return r;
    }
    if (keep_lo < first) keep_lo = first;
    if (keep_hi > last) keep_hi = last;
    size_t off = 0, cut_start = 0, cut_end = 0;
    uint64_t kept_bytes = 0, all_bytes = 0;
    for (uint64_t i = first; i <= last; i++) {
        ent_view v;
        r = row_next(s, body, blen, &off, i, &v, err, errlen);
        if (r) {
            reset_q(s, Q_LOG_CONTAINING);
            return r;
        }
        all_bytes += v.len;
        if (i == keep_lo) cut_start = v.start;
        if (i >= keep_lo && i <= keep_hi) {
            cut_end = v.end;
            kept_bytes += v.len;
        }
    }
    r = row_end_check(s, first, last, off, blen, err, errlen);
    if (r) {
        reset_q(s, Q_LOG_CONTAINING);
        return r;
    }
    /* Copy the kept slice: the statement's blob dies with the reset. */
    size_t klen = keep_hi >= keep_lo ? cut_end - cut_start : 0;
    uint8_t *keep = malloc(klen ? klen : 1);
    if (!keep) {
        reset_q(s, Q_LOG_CONTAINING);
        return fail(ST_ENOMEM, err, errlen, "%s: out of memory cutting a log row", s->path);
    }
    if (klen)
        memcpy(keep, body + cut_start, klen);
    reset_q(s, Q_LOG_CONTAINING);

    if (keep_lo == first && klen) {
        sqlite3_stmt *u = s->q[Q_LOG_UPDATE];
        sqlite3_bind_int64(u, 1, (sqlite3_int64)keep_hi);
        sqlite3_bind_int64(u, 2, (sqlite3_int64)kept_bytes);
        sqlite3_bind_blob(u, 3, keep, (int)klen, SQLITE_STATIC);
        sqlite3_bind_int64(u, 4, (sqlite3_int64)first);
        r = step_done(s, Q_LOG_UPDATE, err, errlen, "rewrite log row");
    } else {
        /* The row's key changes: delete it and insert the kept slice. */
        sqlite3_bind_int64(s->q[Q_LOG_DEL_ONE], 1, (sqlite3_int64)first);
        r = step_done(s, Q_LOG_DEL_ONE, err, errlen, "delete log row");
        if (!r && klen) {
            sqlite3_stmt *ins = s->q[Q_LOG_INSERT];
            sqlite3_bind_int64(ins, 1, (sqlite3_int64)keep_lo);
            sqlite3_bind_int64(ins, 2, (sqlite3_int64)keep_hi);
            sqlite3_bind_int64(ins, 3, (sqlite3_int64)kept_bytes);
            sqlite3_bind_blob(ins, 4, keep, (int)klen, SQLITE_STATIC);
            r = step_done(s, Q_LOG_INSERT, err, errlen, "insert log row");
        }
    }
    free(keep);
    if (!r)
        s->c.log_bytes -= all_bytes - kept_bytes;
    return r;
}

/* Deletes the stored log from index `from` on (conflicting suffix, §5.3). */
static int log_truncate_from(st_store *s, uint64_t from, char *err, size_t errlen)
{
    if (from > s->c.last_index)
        return 0;
    int r = row_cut(s, from, 0, from - 1, err, errlen);
    if (r)
        return r;
    uint64_t gone = 0;
    sqlite3_bind_int64(s->q[Q_LOG_BYTES_FROM], 1, (sqlite3_int64)from);
    r = step_int(s, Q_LOG_BYTES_FROM, &gone, err, errlen, "measure log suffix");
    if (r)
        return r;
    sqlite3_bind_int64(s->q[Q_LOG_DEL_FROM], 1, (sqlite3_int64)from);
    r = step_done(s, Q_LOG_DEL_FROM, err, errlen, "delete log suffix");
    if (r)
        return r;
    s->c.log_bytes -= gone;
    s->c.last_index = from - 1;
    return 0;
}

/* Term of the stored entry at index, 0 if it is not in the log. */
static int log_term_at(st_store *s, uint64_t index, uint64_t *term, char *err, size_t errlen)
{
    *term = 0;
    if (index <= s->c.snap_index || index > s->c.last_index)
        return 0;
    sqlite3_stmt *st = s->q[Q_LOG_CONTAINING];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        reset_q(s, Q_LOG_CONTAINING);
        return rc == SQLITE_DONE ? 0 : sqlfail(s, rc, err, errlen, "read log row");
    }
    uint64_t first, last;
    const uint8_t *body;
    size_t blen, off = 0;
    int r = row_header(s, st, &first, &last, &body, &blen, err, errlen);
    for (uint64_t i = first; !r && i <= index; i++) {
        ent_view v;
        r = row_next(s, body, blen, &off, i, &v, err, errlen);
        if (!r && i == index)
            *term = v.term;
    }
    reset_q(s, Q_LOG_CONTAINING);
    return r;
}

/* Drops the log a snapshot at (index, term) covers.  If the log holds that
 * entry with the same term, the entries after it stay (they extend the
 * snapshot); otherwise the whole log goes (dissertation §5.1, rule 6/7 of
 * InstallSnapshot). */
static int log_compact(st_store *s, uint64_t index, uint64_t term, bool lazy, char *err,
                       size_t errlen)
{
    uint64_t t;
    int r = log_term_at(s, index, &t, err, errlen);
    if (r)
        return r;
    if (index > s->c.snap_index && t == term && t != 0) {
        r = row_cut(s, index, index + 1, UINT64_MAX, err, errlen);
        if (r)
            return r;
        uint64_t gone = 0;
        sqlite3_bind_int64(s->q[Q_LOG_BYTES_UPTO], 1, (sqlite3_int64)s->c.snap_index);
        sqlite3_bind_int64(s->q[Q_LOG_BYTES_UPTO], 2, (sqlite3_int64)index);
        r = step_int(s, Q_LOG_BYTES_UPTO, &gone, err, errlen, "measure log prefix");
        if (r)
            return r;
        /* lazy: the rows stay, dead (every reader skips first <= snapshot
         * index), and the background thread deletes them in small steps */
        sqlite3_bind_int64(s->q[Q_LOG_DEL_UPTO], 1, (sqlite3_int64)index);
        r = lazy ? 0 : step_done(s, Q_LOG_DEL_UPTO, err, errlen, "delete log prefix");
        if (lazy)
            reset_q(s, Q_LOG_DEL_UPTO);
        if (r)
            return r;
        s->c.log_bytes -= gone;
    } else if (index != s->c.snap_index) {
        r = step_done(s, Q_LOG_DEL_ALL, err, errlen, "delete log");
        if (r)
            return r;
        s->c.log_bytes = 0;
        s->c.last_index = index;
    }
    if (s->c.last_index < index)
        s->c.last_index = index;
    return 0;
}

/* Appends entries (already checked consecutive) as one row. */
static int log_append(st_store *s, const raft_entry *e, size_t n, char *err, size_t errlen)
{
    size_t total = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        total += ENT_HDR + e[i].len;
        bytes += e[i].len;
    }
    if (total > (size_t)INT_MAX)
        return fail(ST_EINVAL, err, errlen, "%s: batch of %zu bytes too large for one row",
                    s->path, total);
    uint8_t *body = malloc(total);
    if (!body)
        return fail(ST_ENOMEM, err, errlen, "%s: out of memory for a batch of %zu bytes",
                    s->path, total);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        byte_put64(body + o, e[i].term);
        body[o + 8] = e[i].type;
        byte_put32(body + o + 9, e[i].len);
        byte_put32(body + o + 13, entry_crc(e[i].index, e[i].term, e[i].type, e[i].data, e[i].len));
        if (e[i].len)
            memcpy(body + o + ENT_HDR, e[i].data, e[i].len);
        o += ENT_HDR + e[i].len;
    }
    sqlite3_stmt *ins = s->q[Q_LOG_INSERT];
    sqlite3_bind_int64(ins, 1, (sqlite3_int64)e[0].index);
    sqlite3_bind_int64(ins, 2, (sqlite3_int64)e[n - 1].index);
    sqlite3_bind_int64(ins, 3, (sqlite3_int64)bytes);
    sqlite3_bind_blob(ins, 4, body, (int)total, SQLITE_STATIC);
    int r = step_done(s, Q_LOG_INSERT, err, errlen, "append log entries");
    free(body);
    if (!r) {
        s->c.log_bytes += bytes;
        s->c.last_index = e[n - 1].index;
    }
    return r;
}

/* ---- open / close -------------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
    char tmp[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int errno_code(int e)
{
    switch (e) {
    case ENOSPC: case EDQUOT: return ST_ENOSPC;
    case EROFS: case EACCES: case EPERM: return ST_EROFS;
    case ENOMEM: return ST_ENOMEM;
    default: return ST_EIO;
    }
}

/* SQLite's file header is big-endian (its format, not one of ours). */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the raw file before SQLite sees it, so that a foreign or truncated
 * file gets a precise message rather than "database disk image is
 * malformed" at some later read. */
static int precheck_file(st_store *s, char *err, size_t errlen)
{
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return fail(errno_code(errno), err, errlen, "%s: cannot open: %s", s->path,
                    strerror(errno));
    }
    struct stat sb;
    uint8_t h[100];
    ssize_t got = 0;
    if (fstat(fd, &sb) == 0 && sb.st_size > 0)
        got = pread(fd, h, sizeof h, 0);
    int e = errno;
    close(fd);
    if (sb.st_size == 0)
        return 0;   /* empty: a store whose creation did not finish */
    if (got < 0)
        return fail(ST_EIO, err, errlen, "%s: cannot read header: %s", s->path, strerror(e));
    if (got < (ssize_t)sizeof h || memcmp(h, "SQLite format 3", 16) != 0)
        return fail(ST_ENOTDB, err, errlen, "%s: not an SQLite database (bad file header)",
                    s->path);
    uint32_t page = (uint32_t)h[16] << 8 | h[17];
    if (page == 1)
        page = 65536;
    if (page < 512 || page > 65536 || (page & (page - 1)))
        return fail(ST_ECORRUPT, err, errlen, "%s: corrupt header (page size %u)", s->path, page);
    /* Pages may legitimately live only in the WAL; the size check applies
     * when there is no WAL to replay. */
    char wal[PATH_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", s->path);
    struct stat wb;
    bool have_wal = stat(wal, &wb) == 0 && wb.st_size > 0;
    uint32_t npages = be32(h + 28);
    bool npages_valid = npages && be32(h + 24) == be32(h + 92);
    if (!have_wal && ((uint64_t)sb.st_size % page != 0 ||
                      (npages_valid && (uint64_t)sb.st_size < (uint64_t)npages * page)))
        return fail(ST_ECORRUPT, err, errlen,
                    "%s: database file truncated (%lld bytes, header says %llu)", s->path,
                    (long long)sb.st_size, (unsigned long long)npages * page);
    return 0;
}

static int exec_sql(st_store *s, const char *sql, char *err, size_t errlen)
{
    char *em = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &em);
    sqlite3_free(em);
    if (rc != SQLITE_OK)
        return sqlfail(s, rc, err, errlen, sql);
    return 0;
}

static int pragma_int(st_store *s, const char *sql, int64_t *v, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sqlfail(s, rc, err, errlen, sql);
    rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sqlfail(s, rc, err, errlen, sql);
    return 0;
}

/* Checks application_id / user_version, creating the schema in a new file. */
static int check_schema(st_store *s, char *err, size_t errlen)
{
    int64_t app, ver, ntables;
    int r = pragma_int(s, "PRAGMA application_id", &app, err, errlen);
    if (!r) r = pragma_int(s, "PRAGMA user_version", &ver, err, errlen);
    if (!r) r = pragma_int(s, "SELECT count(*) FROM sqlite_master", &ntables, err, errlen);
    if (r)
        return r;
    if (app == 0 && ver == 0 && ntables == 0) {
        /* A new store.  page_size must precede the first table; the whole
         * schema appears in one transaction, so a crash leaves an empty file
         * that is simply initialised again. */
        r = exec_sql(s, "PRAGMA page_size = 4096", err, errlen);
        if (!r) r = exec_sql(s, "PRAGMA journal_mode = WAL", err, errlen);
        if (!r) r = exec_sql(s, "BEGIN IMMEDIATE", err, errlen);
        if (r)
            return r;
        char sql[sizeof schema_sql + 128];
        snprintf(sql, sizeof sql, "%s PRAGMA application_id = %d; PRAGMA user_version = %d;",
                 schema_sql, ST_APPLICATION_ID, ST_SCHEMA_VERSION);
        r = exec_sql(s, sql, err, errlen);
        if (!r) r = exec_sql(s, "COMMIT", err, errlen);
        if (r)
            exec_sql(s, "ROLLBACK", NULL, 0);
        return r;
    }
    if (app != ST_APPLICATION_ID)
        return fail(ST_ESCHEMA, err, errlen,
                    "%s: not an hstore database (application_id 0x%llx, %lld tables)", s->path,
                    (unsigned long long)app, (long long)ntables);
    if (ver > ST_SCHEMA_VERSION)
        return fail(ST_ESCHEMA, err, errlen,
                    "%s: schema version %lld is newer than this hstore supports (%d)", s->path,
                    (long long)ver, ST_SCHEMA_VERSION);
    if (ver == 1) {
        /* Version 2 may keep dead log rows (first <= snapshot index) until
         * they are deleted in the background; version 1 files have none, so
         * they are version 2 files as they stand.  Older builds refuse them
         * from now on, rather than misread such rows. */
        return exec_sql(s, "PRAGMA user_version = 2", err, errlen);
    }
    if (ver < ST_SCHEMA_VERSION)
        return fail(ST_ESCHEMA, err, errlen,
                    "%s: schema version %lld is older than %d and cannot be upgraded", s->path,
                    (long long)ver, ST_SCHEMA_VERSION);
    return 0;
}

static int load_cache(st_store *s, char *err, size_t errlen)
{
    memset(&s->c, 0, sizeof s->c);
    sqlite3_stmt *st = s->q[Q_SNAP_GET];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        s->c.snap_index = (uint64_t)sqlite3_column_int64(st, 0);
        s->c.snap_term = (uint64_t)sqlite3_column_int64(st, 1);
        s->c.snap_comp = (uint64_t)sqlite3_column_int64(st, 4);
        rc = SQLITE_DONE;
    }
    reset_q(s, Q_SNAP_GET);
    if (rc != SQLITE_DONE)
        return sqlfail(s, rc, err, errlen, "read snapshot metadata");
    st = s->q[Q_LOG_TOTALS];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)s->c.snap_index);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        s->c.last_index = (uint64_t)sqlite3_column_int64(st, 0);
        s->c.log_bytes = (uint64_t)sqlite3_column_int64(st, 1);
        rc = SQLITE_DONE;
    }
    reset_q(s, Q_LOG_TOTALS);
    if (rc != SQLITE_DONE)
        return sqlfail(s, rc, err, errlen, "read log summary");
    if (s->c.last_index < s->c.snap_index)
        s->c.last_index = s->c.snap_index;
    return 0;
}

int st_open(const char *dir, st_store **out, char *err, size_t errlen)
{
    *out = NULL;
    st_store *s = calloc(1, sizeof *s);
    if (!s)
        return fail(ST_ENOMEM, err, errlen, "%s: out of memory", dir);
    s->lock_fd = -1;
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->cmu, NULL);
    pthread_cond_init(&s->ccv, NULL);
    s->mutexes = true;
    if (snprintf(s->dir, sizeof s->dir, "%s", dir) >= (int)sizeof s->dir ||
        snprintf(s->path, sizeof s->path, "%s/%s", dir, ST_DB_NAME) >= (int)sizeof s->path) {
        free(s);
        return fail(ST_EINVAL, err, errlen, "%s: path too long", dir);
    }
    int r = 0;
    if (mkdir_p(dir) != 0) {
        r = fail(errno_code(errno), err, errlen, "%s: cannot create directory: %s", dir,
                 strerror(errno));
        goto out_fail;
    }
    char lock[PATH_MAX + 16];
    snprintf(lock, sizeof lock, "%s/hstore.lock", dir);
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0 && (errno == EROFS || errno == EACCES))
        s->lock_fd = open(lock, O_RDONLY | O_CLOEXEC);
    if (s->lock_fd < 0) {
        r = fail(errno_code(errno), err, errlen, "%s: cannot open lock file: %s", lock,
                 strerror(errno));
        goto out_fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        r = fail(errno == EWOULDBLOCK ? ST_EBUSY : ST_EIO, err, errlen,
                 "%s: data directory in use by another hstore store (lock %s)", dir, lock);
        goto out_fail;
    }
    r = precheck_file(s, err, errlen);
    if (r)
        goto out_fail;
    int rc = sqlite3_open_v2(s->path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        r = sqlfail(s, rc, err, errlen, "open");
        goto out_fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        r = fail(ST_EROFS, err, errlen, "%s: database is read-only", s->path);
        goto out_fail;
    }
    r = check_schema(s, err, errlen);
    if (r)
        goto out_fail;
    {
        /* An 8 MiB page cache: the writer appends, and the log is read back
         * only at start (the Raft core keeps the live log in memory), so a
         * larger cache would mostly hold pages just written, counted in every
         * node's memory. */
        char sql[512];
        snprintf(sql, sizeof sql,
                 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                 "PRAGMA journal_size_limit = %d; PRAGMA wal_autocheckpoint = 0;"
                 "PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY;"
                 "PRAGMA cell_size_check = ON; PRAGMA mmap_size = 0;",
                 JOURNAL_SIZE_LIMIT);
        r = exec_sql(s, sql, err, errlen);
        if (r)
            goto out_fail;
        int64_t mode = 0;
        /* journal_mode returns text; make sure WAL took (e.g. not on a
         * read-only medium). */
        sqlite3_stmt *st;
        rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &st, NULL);
        if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
            const char *m = (const char *)sqlite3_column_text(st, 0);
            mode = m && strcmp(m, "wal") == 0;
        }
        sqlite3_finalize(st);
        if (!mode) {
            r = fail(ST_EIO, err, errlen, "%s: cannot switch the database to WAL mode", s->path);
            goto out_fail;
        }
    }
    for (int i = 0; i < Q_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, q_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL);
        if (rc != SQLITE_OK) {
            r = sqlfail(s, rc, err, errlen, "prepare statement");
            goto out_fail;
        }
    }
    r = load_cache(s, err, errlen);
    if (r)
        goto out_fail;
    /* Leftovers of a background snapshot (st_bgsnap_*) cut short by a crash:
     * staged chunks never committed, or a replaced snapshot not yet dropped. */
    r = exec_sql(s, "DROP TABLE IF EXISTS snap_stage; DROP TABLE IF EXISTS snap_old", err, errlen);
    if (r)
        goto out_fail;
    /* The hook replaces SQLite's own autocheckpoint (set to 0 above). */
    sqlite3_wal_hook(s->db, wal_hook, s);
    ckpt_start(s);
    ckpt_wake(s, true);   /* dead log rows of a lazy compaction cut short by a stop */
    *out = s;
    return 0;

out_fail:
    st_close(s);
    return r;
}

void st_close(st_store *s)
{
    if (!s)
        return;
    ckpt_stop(s);
    if (s->db) {
        if (s->in_txn)
            txn_rollback(s);
        for (int i = 0; i < Q_COUNT; i++)
            sqlite3_finalize(s->q[i]);
        /* Closing the last connection checkpoints and removes the WAL. */
        sqlite3_close_v2(s->db);
    }
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (s->mutexes) {
        pthread_mutex_destroy(&s->wmu);
        pthread_mutex_destroy(&s->cmu);
        pthread_cond_destroy(&s->ccv);
    }
    free(s);
}

/* ---- identity ---------------------------------------------------------------- */

static int meta_get(st_store *s, const char *key, sqlite3_int64 *iv, char *sv, size_t svlen,
                    bool *found, char *err, size_t errlen)
{
    sqlite3_stmt *st = s->q[Q_META_GET];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        if (iv)
            *iv = sqlite3_column_int64(st, 0);
        if (sv && svlen) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            snprintf(sv, svlen, "%s", t ? t : "");
        }
        rc = SQLITE_DONE;
    }
    reset_q(s, Q_META_GET);
    if (rc != SQLITE_DONE)
        return sqlfail(s, rc, err, errlen, "read identity");
    return 0;
}

int st_get_identity(st_store *s, uint64_t *node_id, char *spec, size_t speclen, char *err,
                    size_t errlen)
{
    sqlite3_int64 id = 0;
    bool found;
    if (spec && speclen)
        spec[0] = 0;
    int r = meta_get(s, "node_id", &id, NULL, 0, &found, err, errlen);
    if (!r)
        r = meta_get(s, "cluster", NULL, spec, speclen, &found, err, errlen);
    if (node_id)
        *node_id = r ? 0 : (uint64_t)id;
    return r;
}

int st_check_identity(st_store *s, uint64_t node_id, const char *cluster_spec, char *err,
                      size_t errlen)
{
    if (!cluster_spec)
        cluster_spec = "";
    if (node_id == 0)
        return fail(ST_EINVAL, err, errlen, "%s: node id 0 is not valid", s->path);
    if (s->writer_open)
        return fail(ST_EBUSY, err, errlen, "%s: snapshot writer open", s->path);
    sqlite3_int64 id = 0;
    bool found;
    int r = meta_get(s, "node_id", &id, NULL, 0, &found, err, errlen);
    if (r)
        return r;
    if (found) {
        size_t sl = strlen(cluster_spec) + 2;
        char *spec = malloc(sl < 4096 ? 4096 : sl + 1);
        if (!spec)
            return fail(ST_ENOMEM, err, errlen, "%s: out of memory", s->path);
        bool f2;
        r = meta_get(s, "cluster", NULL, spec, sl < 4096 ? 4096 : sl + 1, &f2, err, errlen);
        if (!r && ((uint64_t)id != node_id || strcmp(spec, cluster_spec) != 0)) {
            if (!spec[0] && !cluster_spec[0])
                r = fail(ST_EIDENTITY, err, errlen,
                         "%s: data directory belongs to node %llu, not node %llu: use that "
                         "node's id, or another --data directory",
                         s->path, (unsigned long long)id, (unsigned long long)node_id);
            else
                r = fail(ST_EIDENTITY, err, errlen,
                         "%s: data directory belongs to node %llu of cluster '%s', not node "
                         "%llu of cluster '%s'", s->path, (unsigned long long)id, spec,
                         (unsigned long long)node_id, cluster_spec);
        }
        free(spec);
        return r;
    }
    r = txn_begin(s, err, errlen);
    if (r)
        return r;
    sqlite3_stmt *st = s->q[Q_META_PUT];
    sqlite3_bind_text(st, 1, "node_id", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)node_id);
    r = step_done(s, Q_META_PUT, err, errlen, "record identity");
    if (!r) {
        sqlite3_bind_text(st, 1, "cluster", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, cluster_spec, -1, SQLITE_STATIC);
        r = step_done(s, Q_META_PUT, err, errlen, "record identity");
    }
    if (!r)
        return txn_commit(s, err, errlen);
    txn_rollback(s);
    return r;
}

/* ---- snapshots ----------------------------------------------------------------- */

static int bg_exec(st_snap_writer *w, const char *sql, char *err, size_t errlen)
{
    char *em = NULL;
    int rc = sqlite3_exec(w->wdb, sql, NULL, NULL, &em);
    sqlite3_free(em);
    if (rc != SQLITE_OK) {
        int code = map_sqlite(rc);
        return fail(code ? code : ST_EIO, err, errlen, "%s: background snapshot: %s: %s",
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
        r = bg_exec(w, "CREATE TABLE IF NOT EXISTS snap_stage(seq INTEGER PRIMARY KEY,"
                       " crc INTEGER NOT NULL, body BLOB NOT NULL); DELETE FROM snap_stage",
                    err, errlen);
        if (!r && sqlite3_prepare_v2(w->wdb, "INSERT INTO snap_stage(seq, crc, body) "
                                             "VALUES (?, ?, ?)", -1, &w->ins, NULL) != SQLITE_OK)
            r = fail(ST_EIO, err, errlen, "%s: background snapshot: prepare: %s", s->path,
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
            r = fail(map_sqlite(rc) ? map_sqlite(rc) : ST_EIO, err, errlen,
                     "%s: background snapshot: store chunk: %s", s->path, sqlite3_errmsg(w->wdb));
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
    st_store *s = w->s;
    int r;
    if (w->bg) {
        r = stage_put(w, w->out, w->out_pos, err, errlen);
    } else {
        sqlite3_stmt *st = s->q[Q_CHUNK_INS];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)w->seq);
        sqlite3_bind_int64(st, 2, crc32c(0, w->out, w->out_pos));
        sqlite3_bind_blob(st, 3, w->out, (int)w->out_pos, SQLITE_STATIC);
        r = step_done(s, Q_CHUNK_INS, err, errlen, "store snapshot chunk");
    }
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
    ZSTD_inBuffer in = { buf, len, 0 };
    for (;;) {
        ZSTD_outBuffer out = { w->out, SNAP_CHUNK, w->out_pos };
        size_t left = ZSTD_compressStream2(w->cctx, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left))
            return fail(ST_EIO, err, errlen, "%s: snapshot compression failed: %s", w->s->path,
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
    if (w->bg) {
        sqlite3_finalize(w->ins);
        sqlite3_close_v2(w->wdb);
        w->s->bg_open = false;
    } else {
        w->s->writer_open = false;
    }
    free(w);
}

/* A writer with its compression context and chunk buffer (the shared part of
 * the foreground and background writers); NULL when out of memory. */
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

static int snap_begin(st_store *s, uint64_t index, uint64_t term, const raft_conf *conf,
                      bool own_txn, st_snap_writer **out, char *err, size_t errlen)
{
    *out = NULL;
    if (s->writer_open)
        return fail(ST_EBUSY, err, errlen, "%s: a snapshot writer is already open", s->path);
    if (index == 0)
        return fail(ST_EINVAL, err, errlen, "%s: snapshot at index 0", s->path);
    if (!conf || conf->n > RAFT_MAX_NODES)
        return fail(ST_EINVAL, err, errlen, "%s: snapshot needs a valid configuration", s->path);
    if (index < s->c.snap_index)
        return fail(ST_EINVAL, err, errlen,
                    "%s: snapshot at index %llu is older than the stored one (%llu)", s->path,
                    (unsigned long long)index, (unsigned long long)s->c.snap_index);
    st_snap_writer *w = writer_alloc(s, index, term);
    if (!w)
        return fail(ST_ENOMEM, err, errlen, "%s: out of memory for a snapshot writer", s->path);
    w->conf = *conf;
    w->own_txn = own_txn;
    /* Two compression threads when libzstd has them (ignored otherwise). */
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_nbWorkers, 2);
    s->writer_open = true;
    int r = own_txn ? txn_begin(s, err, errlen) : 0;
    if (!r)
        r = step_done(s, Q_CHUNK_DEL_ALL, err, errlen, "delete old snapshot");
    if (r) {
        if (own_txn)
            txn_rollback(s);
        writer_free(w);
        return r;
    }
    *out = w;
    return 0;
}

/* Finishes the frame, stores the metadata and compacts the log (inside the
 * writer's transaction; commits it when the writer owns it). */
static int snap_record(st_snap_writer *w, int r, char *err, size_t errlen);

static int snap_finish(st_snap_writer *w, char *err, size_t errlen)
{
    int r = w->raw_frame ? 0 : snap_pump(w, NULL, 0, true, err, errlen);
    if (!r)
        r = chunk_flush(w, err, errlen);
    return snap_record(w, r, err, errlen);
}

/* Metadata and log compaction of a snapshot whose chunks are stored (r: the
 * result so far); commits or rolls back when the writer owns the
 * transaction. */
static int snap_record(st_snap_writer *w, int r, char *err, size_t errlen)
{
    st_store *s = w->s;
    if (!r) {
        bytes_w cb = {0};
        if (!conf_blob_put(&cb, &w->conf)) {
            r = fail(ST_ENOMEM, err, errlen, "%s: out of memory for a configuration", s->path);
        } else {
            sqlite3_stmt *st = s->q[Q_SNAP_PUT];
            sqlite3_bind_int64(st, 1, (sqlite3_int64)w->index);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)w->term);
            sqlite3_bind_blob(st, 3, cb.p, (int)cb.len, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 4, (sqlite3_int64)w->raw_len);
            sqlite3_bind_int64(st, 5, (sqlite3_int64)w->comp_len);
            sqlite3_bind_int64(st, 6, (sqlite3_int64)w->seq);
            sqlite3_bind_int64(st, 7,
                               snapmeta_crc(w->index, w->term, w->raw_len, w->comp_len, w->seq));
            r = step_done(s, Q_SNAP_PUT, err, errlen, "store snapshot metadata");
        }
        bw_free(&cb);
    }
    if (!r)
        r = log_compact(s, w->index, w->term, w->bg && s->ck_running, err, errlen);
    if (!r) {
        s->c.snap_index = w->index;
        s->c.snap_term = w->term;
        s->c.snap_comp = w->comp_len;
    }
    if (w->own_txn) {
        if (!r)
            r = txn_commit(s, err, errlen);
        else
            txn_rollback(s);
    }
    return r;
}

/* After a snapshot: have its pages copied into the database file now, in
 * the background, rather than by whichever batch next crosses the threshold
 * (the data is already durable in the WAL). */
static void checkpoint_after_snapshot(st_store *s)
{
    if (s->ck_running)
        ckpt_request(s);
    else
        sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

int st_snap_begin(st_store *s, uint64_t index, uint64_t term, const raft_conf *conf,
                  st_snap_writer **out, char *err, size_t errlen)
{
    return snap_begin(s, index, term, conf, true, out, err, errlen);
}

int st_snap_write(st_snap_writer *w, const void *buf, size_t len, char *err, size_t errlen)
{
    if (!len)
        return 0;
    return snap_pump(w, buf, len, false, err, errlen);
}

int st_snap_commit(st_snap_writer *w, char *err, size_t errlen)
{
    st_store *s = w->s;
    int r = snap_finish(w, err, errlen);
    writer_free(w);
    if (!r)
        checkpoint_after_snapshot(s);
    return r;
}

void st_snap_abort(st_snap_writer *w)
{
    if (!w)
        return;
    st_store *s = w->s;
    if (w->own_txn)
        txn_rollback(s);
    writer_free(w);
}

int st_save_snapshot(st_store *s, const raft_snapshot *snap, char *err, size_t errlen)
{
    st_snap_writer *w;
    int r = st_snap_begin(s, snap->index, snap->term, &snap->conf, &w, err, errlen);
    if (r)
        return r;
    r = st_snap_write(w, snap->data, snap->len, err, errlen);
    if (r) {
        st_snap_abort(w);
        return r;
    }
    return st_snap_commit(w, err, errlen);
}

/* ---- snapshots in stored form ------------------------------------------------- */

struct st_snap_reader {
    st_store *s;            /* NULL: a frame in memory */
    ZSTD_DCtx *d;
    const uint8_t *src;
    size_t src_len, src_pos;
    bool txn, rows_done;
    uint64_t seq, nchunks, comp_len, raw_len, seen, raw;
    size_t left;            /* last zstd result: 0 once the frame (and its checksum) ended */
    int err;
    char msg[320];
};

__attribute__((format(printf, 3, 4)))
static int rd_fail(st_snap_reader *r, int code, const char *fmt, ...)
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
        return rd_fail(r, map_sqlite(rc) ? map_sqlite(rc) : ST_EIO, "%s: read snapshot chunks: %s",
                       s->path, sqlite3_errmsg(s->db));
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
    ZSTD_outBuffer out = { buf, n, 0 };
    while (out.pos < out.size) {
        if (r->err)
            return -1;
        if (r->left == 0)   /* the frame ended */
            return rd_fail(r, ST_ECORRUPT, "%s: snapshot ends before the state does",
                           r->s ? r->s->path : "received snapshot");
        ZSTD_inBuffer in = { r->src, r->src_len, r->src_pos };
        size_t before = out.pos, ipos = in.pos;
        size_t ret = ZSTD_decompressStream(r->d, &out, &in);
        r->src_pos = in.pos;
        if (ZSTD_isError(ret))
            return rd_fail(r, ST_ECORRUPT, "%s: snapshot: %s", r->s ? r->s->path : "received snapshot",
                           ZSTD_getErrorName(ret));
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
        return fail(ST_ENOMEM, err, errlen, "out of memory for a snapshot reader");
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
    r = exec_sql(s, "BEGIN", err, errlen);
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
                r = fail(ST_ECORRUPT, err, errlen,
                         "%s: snapshot at index %llu: metadata checksum mismatch", s->path,
                         (unsigned long long)idx);
        } else {
            r = rc == SQLITE_DONE ? fail(ST_EINVAL, err, errlen, "%s: no snapshot stored", s->path)
                                  : sqlfail(s, rc, err, errlen, "read snapshot metadata");
        }
        reset_q(s, Q_SNAP_GET);
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

uint64_t st_snap_reader_bytes(const st_snap_reader *r) { return r->raw; }

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
        ZSTD_outBuffer out = { scratch, sizeof scratch, 0 };
        ZSTD_inBuffer in = { r->src, r->src_len, r->src_pos };
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
        rd_fail(r, ST_ECORRUPT, "%s: snapshot frame incomplete", r->s ? r->s->path : "received snapshot");
    if (!r->err && r->s && (r->seq != r->nchunks || r->seen != r->comp_len || r->raw != r->raw_len))
        rd_fail(r, ST_ECORRUPT, "%s: snapshot incomplete (%llu of %llu chunks, %llu of %llu bytes)",
                r->s->path, (unsigned long long)r->seq, (unsigned long long)r->nchunks,
                (unsigned long long)r->raw, (unsigned long long)r->raw_len);
    int rc = r->err;
    if (rc)
        fail(rc, err, errlen, "%s", r->msg);
    if (r->s) {
        reset_q(r->s, Q_CHUNK_ALL);
        if (r->txn)
            exec_sql(r->s, "COMMIT", NULL, 0);
    }
    ZSTD_freeDCtx(r->d);
    free(r);
    return rc;
}

/* Stores a zstd frame as given, in SNAP_CHUNK rows, after checking that it
 * decompresses whole (which also gives its raw length). */
static int frame_store(st_snap_writer *w, const uint8_t *frame, size_t len, char *err,
                       size_t errlen)
{
    if (!len || !frame)
        return fail(ST_EINVAL, err, errlen, "%s: empty snapshot frame", w->s->path);
    st_snap_reader *rd;
    int r = st_snap_reader_open_frame(frame, len, &rd, err, errlen);
    if (r)
        return r;
    uint8_t *scratch = malloc(1 << 16);
    uint64_t raw = 0;
    if (!scratch)
        rd_fail(rd, ST_ENOMEM, "out of memory");
    while (!rd->err && rd->left) {
        ZSTD_outBuffer out = { scratch, 1 << 16, 0 };
        ZSTD_inBuffer in = { rd->src, rd->src_len, rd->src_pos };
        size_t ret = ZSTD_decompressStream(rd->d, &out, &in);
        if (ZSTD_isError(ret)) {
            rd_fail(rd, ST_ECORRUPT, "%s: received snapshot: %s", w->s->path, ZSTD_getErrorName(ret));
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
    r = st_snap_reader_close(rd, err, errlen);
    if (r)
        return r;
    w->raw_frame = true;
    w->raw_len = raw;
    for (size_t off = 0; off < len && !r; off += SNAP_CHUNK) {
        size_t n = len - off < SNAP_CHUNK ? len - off : SNAP_CHUNK;
        sqlite3_stmt *st = w->s->q[Q_CHUNK_INS];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)w->seq);
        sqlite3_bind_int64(st, 2, crc32c(0, frame + off, n));
        sqlite3_bind_blob(st, 3, frame + off, (int)n, SQLITE_STATIC);
        r = step_done(w->s, Q_CHUNK_INS, err, errlen, "store snapshot chunk");
        if (!r) {
            w->seq++;
            w->comp_len += n;
        }
    }
    return r;
}

void st_set_stored_snapshots(st_store *s, bool on) { s->frames = on; }

int st_snap_stored_read(st_store *s, uint64_t index, uint64_t off, void *buf, size_t len,
                        char *err, size_t errlen)
{
    if (index != s->c.snap_index || off > s->c.snap_comp || len > s->c.snap_comp - off)
        return fail(ST_EINVAL, err, errlen,
                    "%s: bytes %llu+%zu of snapshot %llu not stored (stored: %llu, %llu bytes)",
                    s->path, (unsigned long long)off, len, (unsigned long long)index,
                    (unsigned long long)s->c.snap_index, (unsigned long long)s->c.snap_comp);
    uint8_t *dst = buf;
    while (len) {
        uint64_t seq = off / SNAP_CHUNK;
        size_t in = (size_t)(off % SNAP_CHUNK);
        sqlite3_stmt *st = s->q[Q_CHUNK_GET];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            reset_q(s, Q_CHUNK_GET);
            if (rc == SQLITE_DONE)
                return fail(ST_ECORRUPT, err, errlen, "%s: snapshot at index %llu: chunk %llu missing",
                            s->path, (unsigned long long)index, (unsigned long long)seq);
            return sqlfail(s, rc, err, errlen, "read snapshot chunk");
        }
        uint32_t crc = (uint32_t)sqlite3_column_int64(st, 0);
        const uint8_t *body = sqlite3_column_blob(st, 1);
        size_t blen = (size_t)sqlite3_column_bytes(st, 1);
        bool bad = !body || crc32c(0, body, blen) != crc || in >= blen;
        size_t n = bad ? 0 : (blen - in < len ? blen - in : len);
        if (!bad)
            memcpy(dst, body + in, n);
        reset_q(s, Q_CHUNK_GET);
        if (bad)
            return fail(ST_ECORRUPT, err, errlen, "%s: snapshot at index %llu: chunk %llu %s",
                        s->path, (unsigned long long)index, (unsigned long long)seq,
                        in >= blen && body ? "too short" : "checksum mismatch");
        dst += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* ---- background snapshot writer ------------------------------------------------ */

int st_bgsnap_begin(st_store *s, uint64_t index, uint64_t term, st_snap_writer **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (s->bg_open)
        return fail(ST_EBUSY, err, errlen, "%s: a background snapshot is already running", s->path);
    if (index == 0 || index <= s->c.snap_index)
        return fail(ST_EINVAL, err, errlen, "%s: snapshot at index %llu is not newer than the "
                    "stored one (%llu)", s->path, (unsigned long long)index,
                    (unsigned long long)s->c.snap_index);
    st_snap_writer *w = writer_alloc(s, index, term);
    if (!w)
        return fail(ST_ENOMEM, err, errlen, "%s: out of memory for a snapshot writer", s->path);
    w->bg = true;
    int rc = sqlite3_open_v2(s->path, &w->wdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(w->wdb, "PRAGMA synchronous = OFF; PRAGMA cache_size = -2048;", NULL,
                          NULL, NULL);
    if (rc != SQLITE_OK) {
        int code = map_sqlite(rc) ? map_sqlite(rc) : ST_EIO;
        fail(code, err, errlen, "%s: background snapshot: open: %s", s->path,
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
        ckpt_request(w->s);   /* keep the WAL the staging grows in short */
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
        r = fail(ST_EINVAL, err, errlen, "%s: background snapshot not finished", s->path);
    else if (!conf || conf->n > RAFT_MAX_NODES)
        r = fail(ST_EINVAL, err, errlen, "%s: snapshot needs a valid configuration", s->path);
    else if (w->index <= s->c.snap_index)
        r = fail(ST_EINVAL, err, errlen, "%s: snapshot at index %llu is not newer than the "
                 "stored one (%llu)", s->path, (unsigned long long)w->index,
                 (unsigned long long)s->c.snap_index);
    else if (s->writer_open)
        r = fail(ST_EBUSY, err, errlen, "%s: a snapshot writer is open", s->path);
    if (!r) {
        w->conf = *conf;
        w->own_txn = true;
        /* The writer's connection is done: close it before the schema moves. */
        sqlite3_finalize(w->ins);
        w->ins = NULL;
        sqlite3_close_v2(w->wdb);
        w->wdb = NULL;
        r = txn_begin(s, err, errlen);
        if (!r) {
            /* The staged chunks become the snapshot by a rename: no copy. */
            r = exec_sql(s, s->ck_running
                                ? "DROP TABLE IF EXISTS snap_old;"
                                  "ALTER TABLE snap_chunk RENAME TO snap_old;"
                                  "ALTER TABLE snap_stage RENAME TO snap_chunk"
                                : "DROP TABLE IF EXISTS snap_old; DROP TABLE snap_chunk;"
                                  "ALTER TABLE snap_stage RENAME TO snap_chunk",
                         err, errlen);
            if (r)
                txn_rollback(s);
            else
                r = snap_record(w, 0, err, errlen);   /* commits or rolls back */
        }
    }
    writer_free(w);
    if (!r) {
        if (s->ck_running)
            ckpt_wake(s, true);
        else
            checkpoint_after_snapshot(s);
    }
    return r;
}

uint64_t st_bgsnap_bytes(const st_snap_writer *w) { return w->comp_len; }

void st_bgsnap_abort(st_snap_writer *w)
{
    /* Staged chunks stay until the next background snapshot or st_open. */
    writer_free(w);
}

/* Reads and decompresses the stored snapshot into *snap (data malloc'ed). */
static int snap_load(st_store *s, raft_snapshot *snap, bool with_data, char *err, size_t errlen)
{
    memset(snap, 0, sizeof *snap);
    sqlite3_stmt *st = s->q[Q_SNAP_GET];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        reset_q(s, Q_SNAP_GET);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        reset_q(s, Q_SNAP_GET);
        return sqlfail(s, rc, err, errlen, "read snapshot metadata");
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
    reset_q(s, Q_SNAP_GET);
    if (bad)
        return fail(ST_ECORRUPT, err, errlen,
                    "%s: snapshot at index %llu: metadata checksum mismatch", s->path,
                    (unsigned long long)idx);
    if (raw_len > SIZE_MAX / 2)
        return fail(ST_ECORRUPT, err, errlen, "%s: snapshot at index %llu: size %llu impossible",
                    s->path, (unsigned long long)idx, (unsigned long long)raw_len);
    if (!with_data) {
        /* stored form: the caller reads the bytes with st_snap_reader */
        snap->index = idx;
        snap->term = term;
        snap->len = (size_t)comp_len;
        return 0;
    }
    uint8_t *data = malloc(raw_len ? raw_len : 1);
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!data || !dctx) {
        free(data);
        ZSTD_freeDCtx(dctx);
        return fail(ST_ENOMEM, err, errlen, "%s: out of memory for a %llu-byte snapshot",
                    s->path, (unsigned long long)raw_len);
    }
    ZSTD_outBuffer out = { data, raw_len, 0 };
    uint64_t seq = 0, seen = 0;
    size_t left = 1;
    int r = 0;
    st = s->q[Q_CHUNK_ALL];
    while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t cs = (uint64_t)sqlite3_column_int64(st, 0);
        uint32_t ccrc = (uint32_t)sqlite3_column_int64(st, 1);
        const void *body = sqlite3_column_blob(st, 2);
        size_t blen = (size_t)sqlite3_column_bytes(st, 2);
        if (cs != seq || !body || crc32c(0, body, blen) != ccrc) {
            r = fail(ST_ECORRUPT, err, errlen,
                     "%s: snapshot at index %llu: chunk %llu %s", s->path,
                     (unsigned long long)idx, (unsigned long long)seq,
                     cs != seq ? "missing" : "checksum mismatch");
            break;
        }
        seq++;
        seen += blen;
        ZSTD_inBuffer in = { body, blen, 0 };
        while (in.pos < in.size) {
            left = ZSTD_decompressStream(dctx, &out, &in);
            if (ZSTD_isError(left)) {
                r = fail(ST_ECORRUPT, err, errlen, "%s: snapshot at index %llu: %s", s->path,
                         (unsigned long long)idx, ZSTD_getErrorName(left));
                break;
            }
            if (out.pos == out.size && in.pos < in.size && left != 0) {
                r = fail(ST_ECORRUPT, err, errlen,
                         "%s: snapshot at index %llu: longer than its recorded %llu bytes",
                         s->path, (unsigned long long)idx, (unsigned long long)raw_len);
                break;
            }
            if (left == 0)
                break;
        }
    }
    reset_q(s, Q_CHUNK_ALL);
    if (!r && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = sqlfail(s, rc, err, errlen, "read snapshot chunks");
    if (!r && (seq != nchunks || seen != comp_len || left != 0 || out.pos != raw_len))
        r = fail(ST_ECORRUPT, err, errlen,
                 "%s: snapshot at index %llu: incomplete (%llu of %llu chunks, %zu of %llu bytes)",
                 s->path, (unsigned long long)idx, (unsigned long long)seq,
                 (unsigned long long)nchunks, out.pos, (unsigned long long)raw_len);
    ZSTD_freeDCtx(dctx);
    if (r) {
        free(data);
        memset(snap, 0, sizeof *snap);
        return r;
    }
    snap->index = idx;
    snap->term = term;
    if (raw_len) {
        snap->data = data;
        snap->len = raw_len;
    } else {
        free(data);
    }
    return 0;
}

/* ---- load -------------------------------------------------------------------- */

static int hs_load(st_store *s, raft_hard_state *hs, char *err, size_t errlen)
{
    memset(hs, 0, sizeof *hs);
    sqlite3_stmt *st = s->q[Q_HS_GET];
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW) {
        hs->term = (uint64_t)sqlite3_column_int64(st, 0);
        hs->vote = (uint64_t)sqlite3_column_int64(st, 1);
        hs->commit = (uint64_t)sqlite3_column_int64(st, 2);
        if ((uint32_t)sqlite3_column_int64(st, 3) != hs_crc(hs))
            r = fail(ST_ECORRUPT, err, errlen, "%s: hard state: checksum mismatch", s->path);
    } else if (rc != SQLITE_DONE) {
        r = sqlfail(s, rc, err, errlen, "read hard state");
    }
    reset_q(s, Q_HS_GET);
    return r;
}

/* Reads rows overlapping [lo, hi] into one block: the entry array followed
 * by the entries' data (so one free releases it). */
static int log_read(st_store *s, uint64_t lo, uint64_t hi, bool whole, raft_entry **out,
                    size_t *n_out, char *err, size_t errlen)
{
    *out = NULL;
    *n_out = 0;
    uint64_t cnt, bytes;
    if (whole) {
        sqlite3_stmt *t = s->q[Q_LOG_TOTALS];
        sqlite3_bind_int64(t, 1, (sqlite3_int64)s->c.snap_index);
        int rc = sqlite3_step(t);
        cnt = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(t, 2) : 0;
        bytes = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(t, 1) : 0;
        reset_q(s, Q_LOG_TOTALS);
        if (rc != SQLITE_ROW)
            return sqlfail(s, rc, err, errlen, "read log summary");
    } else {
        cnt = hi - lo + 1;
        bytes = 0;   /* data is allocated per entry below */
    }
    if (cnt == 0)
        return 0;
    if (cnt > SIZE_MAX / sizeof(raft_entry) / 2 || bytes > SIZE_MAX / 2)
        return fail(ST_ECORRUPT, err, errlen, "%s: log summary impossible (%llu entries)",
                    s->path, (unsigned long long)cnt);
    size_t arr = (size_t)cnt * sizeof(raft_entry);
    uint8_t *blk = malloc(arr + (size_t)bytes + 1);
    if (!blk)
        return fail(ST_ENOMEM, err, errlen, "%s: out of memory loading %llu log entries",
                    s->path, (unsigned long long)cnt);
    raft_entry *e = (raft_entry *)blk;
    uint8_t *dp = blk + arr, *dend = blk + arr + bytes;
    size_t n = 0;
    int r = 0, rc;
    uint64_t expect = whole ? 0 : lo;
    sqlite3_stmt *st = s->q[whole ? Q_LOG_ALL : Q_LOG_RANGE];
    if (!whole) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)lo);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)hi);
    } else {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)s->c.snap_index);
    }
    while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t first, last;
        const uint8_t *body;
        size_t blen, off = 0;
        r = row_header(s, st, &first, &last, &body, &blen, err, errlen);
        if (!r && whole && expect == 0)
            expect = first;
        for (uint64_t i = first; !r && i <= last; i++) {
            ent_view v;
            r = row_next(s, body, blen, &off, i, &v, err, errlen);
            if (r || i < lo || i > hi)
                continue;
            if (i != expect) {
                r = fail(ST_ECORRUPT, err, errlen, "%s: log entry %llu missing (gap before %llu)",
                         s->path, (unsigned long long)expect, (unsigned long long)i);
                break;
            }
            if (n >= cnt || (whole && (size_t)(dend - dp) < v.len)) {
                r = fail(ST_ECORRUPT, err, errlen,
                         "%s: log entry %llu: log summary does not match its rows", s->path,
                         (unsigned long long)i);
                break;
            }
            e[n].index = i;
            e[n].term = v.term;
            e[n].type = v.type;
            e[n].len = v.len;
            e[n].data = NULL;
            if (v.len) {
                if (whole) {
                    e[n].data = dp;
                    dp += v.len;
                } else if (!(e[n].data = malloc(v.len))) {
                    r = fail(ST_ENOMEM, err, errlen, "%s: out of memory", s->path);
                    break;
                }
                memcpy(e[n].data, v.data, v.len);
            }
            n++;
            expect = i + 1;
        }
        if (!r)
            r = row_end_check(s, first, last, off, blen, err, errlen);
    }
    if (!whole)
        reset_q(s, Q_LOG_RANGE);
    else
        reset_q(s, Q_LOG_ALL);
    if (!r && rc != SQLITE_DONE)
        r = sqlfail(s, rc, err, errlen, "read log");
    if (!r && !whole && n != cnt)
        r = fail(ST_EINVAL, err, errlen, "%s: entries %llu..%llu are not all in the log",
                 s->path, (unsigned long long)lo, (unsigned long long)hi);
    if (r) {
        if (!whole)
            for (size_t i = 0; i < n; i++)
                free(e[i].data);
        free(blk);
        return r;
    }
    *out = e;
    *n_out = n;
    return 0;
}

static int load_boot(st_store *s, raft_boot *boot, bool with_data, char *err, size_t errlen)
{
    memset(boot, 0, sizeof *boot);
    /* One read transaction: hard state, snapshot and log from one moment. */
    int r = exec_sql(s, "BEGIN", err, errlen);
    if (r)
        return r;
    r = hs_load(s, &boot->hs, err, errlen);
    if (!r)
        r = snap_load(s, &boot->snapshot, with_data, err, errlen);
    raft_entry *e = NULL;
    size_t n = 0;
    if (!r)
        r = log_read(s, 0, UINT64_MAX, true, &e, &n, err, errlen);
    exec_sql(s, "COMMIT", NULL, 0);
    if (!r && n && e[0].index != boot->snapshot.index + 1)
        r = fail(ST_ECORRUPT, err, errlen,
                 "%s: log starts at index %llu but the snapshot ends at %llu", s->path,
                 (unsigned long long)e[0].index, (unsigned long long)boot->snapshot.index);
    boot->entries = e;
    boot->n_entries = n;
    if (r)
        st_boot_free(boot);
    return r;
}

int st_load(st_store *s, raft_boot *boot, char *err, size_t errlen)
{
    return load_boot(s, boot, true, err, errlen);
}

int st_load_stored(st_store *s, raft_boot *boot, char *err, size_t errlen)
{
    return load_boot(s, boot, false, err, errlen);
}

void st_boot_free(raft_boot *boot)
{
    if (!boot)
        return;
    free((void *)boot->entries);
    free(boot->snapshot.data);
    memset(boot, 0, sizeof *boot);
}

int st_read_entries(st_store *s, uint64_t lo, uint64_t hi, raft_entry **out, size_t *n,
                    char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (lo == 0 || hi < lo || lo <= s->c.snap_index || hi > s->c.last_index)
        return fail(ST_EINVAL, err, errlen, "%s: entries %llu..%llu are not in the log (%llu..%llu)",
                    s->path, (unsigned long long)lo, (unsigned long long)hi,
                    (unsigned long long)s->c.snap_index + 1, (unsigned long long)s->c.last_index);
    return log_read(s, lo, hi, false, out, n, err, errlen);
}

void st_entries_free(raft_entry *entries, size_t n)
{
    if (!entries)
        return;
    for (size_t i = 0; i < n; i++)
        free(entries[i].data);
    free(entries);
}

/* ---- save ------------------------------------------------------------------------ */

int st_save_ready(st_store *s, const raft_ready *rd, char *err, size_t errlen)
{
    if (s->writer_open)
        return fail(ST_EBUSY, err, errlen, "%s: a snapshot writer is open", s->path);
    if (!rd->hs_changed && rd->n_entries == 0 && !rd->snapshot)
        return 0;
    /* Validate before touching anything. */
    if (rd->n_entries) {
        const raft_entry *e = rd->entries;
        uint64_t floor = rd->snapshot ? rd->snapshot->index : s->c.snap_index;
        uint64_t top = rd->snapshot && rd->snapshot->index > s->c.last_index
                           ? rd->snapshot->index : s->c.last_index;
        if (e[0].index <= floor || e[0].index > top + 1)
            return fail(ST_EINVAL, err, errlen,
                        "%s: entries from index %llu do not fit the log (snapshot %llu, last %llu)",
                        s->path, (unsigned long long)e[0].index, (unsigned long long)floor,
                        (unsigned long long)top);
        for (size_t i = 1; i < rd->n_entries; i++)
            if (e[i].index != e[0].index + i)
                return fail(ST_EINVAL, err, errlen, "%s: entries not consecutive at index %llu",
                            s->path, (unsigned long long)e[i].index);
        for (size_t i = 0; i < rd->n_entries; i++)
            if (e[i].len && !e[i].data)
                return fail(ST_EINVAL, err, errlen, "%s: entry %llu has no data", s->path,
                            (unsigned long long)e[i].index);
    }
    int r = txn_begin(s, err, errlen);
    if (r)
        return r;
    if (rd->snapshot) {
        st_snap_writer *w;
        const raft_snapshot *sn = rd->snapshot;
        r = snap_begin(s, sn->index, sn->term, &sn->conf, false, &w, err, errlen);
        if (!r) {
            if (s->frames)
                r = frame_store(w, sn->data, sn->len, err, errlen);
            else
                r = snap_pump(w, sn->data, sn->len, false, err, errlen);
            if (!r)
                r = snap_finish(w, err, errlen);
            writer_free(w);
        }
    }
    if (!r && rd->hs_changed) {
        sqlite3_stmt *st = s->q[Q_HS_PUT];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)rd->hs.term);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)rd->hs.vote);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)rd->hs.commit);
        sqlite3_bind_int64(st, 4, hs_crc(&rd->hs));
        r = step_done(s, Q_HS_PUT, err, errlen, "store hard state");
    }
    if (!r && rd->n_entries &&
        (rd->entries[0].index <= s->c.snap_index || rd->entries[0].index > s->c.last_index + 1))
        r = fail(ST_EINVAL, err, errlen,
                 "%s: entries from index %llu leave a gap after the snapshot at %llu", s->path,
                 (unsigned long long)rd->entries[0].index, (unsigned long long)s->c.snap_index);
    if (!r && rd->n_entries) {
        r = log_truncate_from(s, rd->entries[0].index, err, errlen);
        if (!r)
            r = log_append(s, rd->entries, rd->n_entries, err, errlen);
    }
    if (r) {
        txn_rollback(s);
        return r;
    }
    r = txn_commit(s, err, errlen);
    if (!r && rd->snapshot)
        checkpoint_after_snapshot(s);
    return r;
}

/* ---- introspection ---------------------------------------------------------------- */

uint64_t st_last_index(const st_store *s) { return s->c.last_index; }
uint64_t st_first_index(const st_store *s) { return s->c.snap_index + 1; }
uint64_t st_snapshot_index(const st_store *s) { return s->c.snap_index; }
uint64_t st_snapshot_term(const st_store *s) { return s->c.snap_term; }
uint64_t st_log_bytes(const st_store *s) { return s->c.log_bytes; }
uint64_t st_snapshot_stored_bytes(const st_store *s) { return s->c.snap_comp; }
const char *st_path(const st_store *s) { return s->path; }

uint64_t st_disk_bytes(const st_store *s)
{
    uint64_t total = 0;
    struct stat sb;
    char p[PATH_MAX + 8];
    if (stat(s->path, &sb) == 0)
        total += (uint64_t)sb.st_size;
    snprintf(p, sizeof p, "%s-wal", s->path);
    if (stat(p, &sb) == 0)
        total += (uint64_t)sb.st_size;
    return total;
}

int st_checkpoint(st_store *s, char *err, size_t errlen)
{
    if (s->writer_open)
        return fail(ST_EBUSY, err, errlen, "%s: a snapshot writer is open", s->path);
    pthread_mutex_lock(&s->wmu);
    int rc = sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    pthread_mutex_unlock(&s->wmu);
    if (rc != SQLITE_OK)
        return sqlfail(s, rc, err, errlen, "checkpoint");
    return 0;
}
