/*
 * storage.c — opening the store: the data directory and its lock, the
 * checks on the file and the schema, identity, close.  (The log is in
 * storage_log.c, snapshots in storage_snap.c, the background checkpointer in
 * storage_ckpt.c; storage_internal.h has the layout of the database.)
 *
 * Why one log row per batch rather than per entry: a batch of 256 small
 * entries then costs one B-tree insert instead of 256, which keeps a batch
 * close to the price of the fsync that makes it durable.  A batch is what the
 * Raft core hands over in one ready (raft.h).
 *
 * Durability: WAL with synchronous=FULL: a COMMIT returns after the WAL is
 * fdatasync'ed, once per transaction.  The bytes of large entries are in
 * segment files (storage_blob.c), fdatasync'ed before that commit.
 */
#include "raftkv/storage_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define JOURNAL_SIZE_LIMIT (32 << 20) /* WAL shrinks back to this after a reset */

static const char *const q_sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_HS_GET] = "SELECT term, vote, commit_idx, crc FROM hs WHERE id = 1",
    [Q_HS_PUT] =
        "INSERT OR REPLACE INTO hs(id, term, vote, commit_idx, crc) VALUES (1, ?, ?, ?, ?)",
    [Q_LOG_INSERT] = "INSERT INTO log(first, last, bytes, body, seg) VALUES (?, ?, ?, ?, ?)",
    [Q_LOG_ALL] = "SELECT first, last, body, seg FROM log WHERE first > ?1 ORDER BY first",
    /* One seek: the last row starting at or before ?1 (rows never overlap),
     * if it reaches ?1.  "first <= ?1 AND last >= ?1" alone walked every
     * row before ?1, dead ones of a lazy compaction included: tens of ms
     * in each snapshot's commit. */
    [Q_LOG_CONTAINING] =
        "SELECT first, last, body, seg FROM (SELECT first, last, body, seg FROM log "
        "WHERE first <= ?1 ORDER BY first DESC LIMIT 1) WHERE last >= ?1",
    [Q_LOG_DEL_FROM] = "DELETE FROM log WHERE first >= ?",
    [Q_LOG_BYTES_FROM] = "SELECT coalesce(sum(bytes), 0) FROM log WHERE first >= ?",
    [Q_LOG_DEL_UPTO] = "DELETE FROM log WHERE last <= ?",
    /* Read from the index log_span (rows never overlap, so a row ending by
     * ?2 starts by ?2), not by walking the table's pages, bodies and all:
     * that took tens of ms in each snapshot's commit. */
    [Q_LOG_BYTES_UPTO] = "SELECT coalesce(sum(bytes), 0) FROM log "
                         "WHERE first > ?1 AND first <= ?2 AND last <= ?2",
    [Q_LOG_DEL_ALL] = "DELETE FROM log",
    [Q_LOG_DEL_ONE] = "DELETE FROM log WHERE first = ?",
    [Q_LOG_UPDATE] = "UPDATE log SET last = ?, bytes = ?, body = ? WHERE first = ?",
    [Q_LOG_TOTALS] = "SELECT coalesce(max(last), 0), coalesce(sum(bytes), 0), "
                     "coalesce(sum(last - first + 1), 0), coalesce(min(first), 0) FROM log "
                     "WHERE first > ?1",
    [Q_LOG_SEGS] =
        "SELECT coalesce(min(seg), 0), coalesce(max(CASE WHEN seg <> ?2 THEN seg END), 0), "
        "coalesce(max(seg = ?2), 0) FROM log WHERE first > ?1 AND seg > 0",
    [Q_SNAP_GET] = "SELECT idx, term, conf, raw_len, comp_len, nchunks, crc FROM snap WHERE id = 1",
    [Q_SNAP_PUT] =
        "INSERT OR REPLACE INTO snap(id, idx, term, conf, raw_len, comp_len, nchunks, crc) "
        "VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
    [Q_CHUNK_DEL_ALL] = "DELETE FROM snap_chunk",
    [Q_CHUNK_ALL] = "SELECT seq, crc, body FROM snap_chunk ORDER BY seq",
    [Q_META_GET] = "SELECT value FROM meta WHERE key = ?",
    [Q_META_PUT] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
};

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value) ;"
    "CREATE TABLE hs(id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL,"
    "  vote INTEGER NOT NULL, commit_idx INTEGER NOT NULL, crc INTEGER NOT NULL) ;"
    "CREATE TABLE log(first INTEGER PRIMARY KEY, last INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL, seg INTEGER NOT NULL DEFAULT 0, body BLOB NOT NULL) ;"
    "CREATE TABLE snap(id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL,"
    "  term INTEGER NOT NULL, conf BLOB NOT NULL, raw_len INTEGER NOT NULL,"
    "  comp_len INTEGER NOT NULL, nchunks INTEGER NOT NULL, crc INTEGER NOT NULL) ;"
    "CREATE TABLE snap_chunk(seq INTEGER PRIMARY KEY, crc INTEGER NOT NULL,"
    "  body BLOB NOT NULL) ;";

/* ---- errors, statements, transactions ------------------------------------- */

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

int sto_fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int sto_map_sqlite(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW: return ST_OK;
    case SQLITE_FULL: return ST_ENOSPC;
    case SQLITE_IOERR:
        if (rc == SQLITE_IOERR_NOMEM)
            return ST_ENOMEM;
        return ST_EIO;
    case SQLITE_READONLY:
    case SQLITE_PERM: return ST_EROFS;
    case SQLITE_CORRUPT: return ST_ECORRUPT;
    case SQLITE_NOTADB: return ST_ENOTDB;
    case SQLITE_NOMEM: return ST_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return ST_EBUSY;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISUSE: return ST_EINVAL;
    default: return ST_EIO;
    }
}

/* An SQLite failure: code plus "FILE: what: sqlite's message". */
int sto_sqlfail(st_store *s, int rc, char *err, size_t errlen, const char *what)
{
    int code = sto_map_sqlite(rc);
    if (code == ST_OK)
        code = ST_EIO;
    const char *m = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    if (rc == SQLITE_FULL)
        m = "disk full (database or WAL could not grow)";
    return sto_fail(code, err, errlen, "%s: %s: %s (%s)", s->path, what, m, st_strerror(code));
}

/* Runs a statement that returns no rows (resetting it after). */
int sto_step_done(st_store *s, int q, char *err, size_t errlen, const char *what)
{
    sqlite3_stmt *st = s->q[q];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return sto_sqlfail(s, rc, err, errlen, what);
    return 0;
}

/* Runs a statement returning one integer (resets it). */
int sto_step_int(st_store *s, int q, uint64_t *v, char *err, size_t errlen, const char *what)
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
        return sto_sqlfail(s, rc, err, errlen, what);
    return 0;
}

void sto_reset_q(st_store *s, int q)
{
    sqlite3_reset(s->q[q]);
    sqlite3_clear_bindings(s->q[q]);
}

int sto_exec_sql(st_store *s, const char *sql, char *err, size_t errlen)
{
    char *em = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &em);
    sqlite3_free(em);
    if (rc != SQLITE_OK)
        return sto_sqlfail(s, rc, err, errlen, sql);
    return 0;
}

int sto_txn_begin(st_store *s, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->wmu);
    int rc = sto_step_done(s, Q_BEGIN, err, errlen, "begin transaction");
    if (rc == 0) {
        s->in_txn = true;
        s->saved = s->c;
    } else {
        pthread_mutex_unlock(&s->wmu);
    }
    return rc;
}

void sto_txn_rollback(st_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(s->q[Q_ROLLBACK]);
        sqlite3_reset(s->q[Q_ROLLBACK]);
    }
    s->blob_gc = false;
    sto_snap_txn_end(s, false);
    if (s->in_txn) {
        s->c = s->saved;
        s->in_txn = false;
        pthread_mutex_unlock(&s->wmu);
    }
}

int sto_txn_commit(st_store *s, char *err, size_t errlen)
{
    int rc = sto_step_done(s, Q_COMMIT, err, errlen, "commit");
    if (rc != 0) {
        sto_txn_rollback(s);
        return rc;
    }
    s->in_txn = false;
    pthread_mutex_unlock(&s->wmu);
    /* Rows were dropped, durably now: their segments may go. */
    if (s->blob_gc)
        sto_blob_gc(s);
    sto_snap_txn_end(s, true);
    return 0;
}

/* ---- open / close -------------------------------------------------------- */

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
    case ENOSPC:
    case EDQUOT: return ST_ENOSPC;
    case EROFS:
    case EACCES:
    case EPERM: return ST_EROFS;
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
        return sto_fail(errno_code(errno), err, errlen, "%s: cannot open: %s", s->path,
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
        return 0; /* empty: a store whose creation did not finish */
    if (got < 0)
        return sto_fail(ST_EIO, err, errlen, "%s: cannot read header: %s", s->path, strerror(e));
    if (got < (ssize_t)sizeof h || memcmp(h, "SQLite format 3", 16) != 0)
        return sto_fail(ST_ENOTDB, err, errlen, "%s: not an SQLite database (bad file header)",
                        s->path);
    uint32_t page = (uint32_t)h[16] << 8 | h[17];
    if (page == 1)
        page = 65536;
    if (page < 512 || page > 65536 || (page & (page - 1)))
        return sto_fail(ST_ECORRUPT, err, errlen, "%s: corrupt header (page size %u)", s->path,
                        page);
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
        return sto_fail(ST_ECORRUPT, err, errlen,
                        "%s: database file truncated (%lld bytes, header says %llu)", s->path,
                        (long long)sb.st_size, (unsigned long long)npages * page);
    return 0;
}

static int pragma_int(st_store *s, const char *sql, int64_t *v, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sto_sqlfail(s, rc, err, errlen, sql);
    rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sto_sqlfail(s, rc, err, errlen, sql);
    return 0;
}

/* Checks application_id / user_version, creating the schema in a new file. */
static int check_schema(st_store *s, char *err, size_t errlen)
{
    int64_t app, ver, ntables;
    int r = pragma_int(s, "PRAGMA application_id", &app, err, errlen);
    if (!r)
        r = pragma_int(s, "PRAGMA user_version", &ver, err, errlen);
    if (!r)
        r = pragma_int(s, "SELECT count(*) FROM sqlite_master", &ntables, err, errlen);
    if (r)
        return r;
    if (app == 0 && ver == 0 && ntables == 0) {
        /* A new store.  page_size must precede the first table; the whole
         * schema appears in one transaction, so a crash leaves an empty file
         * that is simply initialised again. */
        r = sto_exec_sql(s, "PRAGMA page_size = 4096", err, errlen);
        if (!r)
            r = sto_exec_sql(s, "PRAGMA journal_mode = WAL", err, errlen);
        if (!r)
            r = sto_exec_sql(s, "BEGIN IMMEDIATE", err, errlen);
        if (r)
            return r;
        char sql[sizeof schema_sql + 128];
        snprintf(sql, sizeof sql, "%s PRAGMA application_id = %d; PRAGMA user_version = %d;",
                 schema_sql, ST_APPLICATION_ID, ST_SCHEMA_VERSION);
        r = sto_exec_sql(s, sql, err, errlen);
        if (!r)
            r = sto_exec_sql(s, "COMMIT", err, errlen);
        if (r)
            sto_exec_sql(s, "ROLLBACK", NULL, 0);
        return r;
    }
    if (app != ST_APPLICATION_ID)
        return sto_fail(ST_ESCHEMA, err, errlen,
                        "%s: not an hstore database (application_id 0x%llx, %lld tables)", s->path,
                        (unsigned long long)app, (long long)ntables);
    if (ver > ST_SCHEMA_VERSION)
        return sto_fail(ST_ESCHEMA, err, errlen,
                        "%s: schema version %lld is newer than this hstore supports (%d)", s->path,
                        (long long)ver, ST_SCHEMA_VERSION);
    if (ver == 1 || ver == 2) {
        /* Version 2 may keep dead log rows (first <= snapshot index) until
         * they are deleted in the background; version 1 files have none.
         * Version 3 adds the log's seg column (large entries in segment
         * files); the rows of older files, all inline, stay as they are.
         * Older builds refuse the file from now on, rather than misread
         * records whose bytes are elsewhere. */
        r = sto_exec_sql(s,
                         "BEGIN IMMEDIATE; ALTER TABLE log ADD COLUMN seg INTEGER NOT NULL "
                         "DEFAULT 0; PRAGMA user_version = 3; COMMIT",
                         err, errlen);
        if (r)
            sto_exec_sql(s, "ROLLBACK", NULL, 0);
        return r;
    }
    if (ver < ST_SCHEMA_VERSION)
        return sto_fail(ST_ESCHEMA, err, errlen,
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
    sto_reset_q(s, Q_SNAP_GET);
    if (rc != SQLITE_DONE)
        return sto_sqlfail(s, rc, err, errlen, "read snapshot metadata");
    st = s->q[Q_LOG_TOTALS];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)s->c.snap_index);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        s->c.last_index = (uint64_t)sqlite3_column_int64(st, 0);
        s->c.log_bytes = (uint64_t)sqlite3_column_int64(st, 1);
        rc = SQLITE_DONE;
    }
    sto_reset_q(s, Q_LOG_TOTALS);
    if (rc != SQLITE_DONE)
        return sto_sqlfail(s, rc, err, errlen, "read log summary");
    if (s->c.last_index < s->c.snap_index)
        s->c.last_index = s->c.snap_index;
    return 0;
}

/* SQLite's page cache, for the whole process, in a mapping that fork()
 * does not share (MADV_WIPEONFORK): a snapshot forks the node, and every
 * page the node writes afterwards faults once (a copy while the child
 * lives, and a TLB flush on every CPU).  The page cache, rewritten by every
 * batch of small entries, was the largest share of those faults.  A child
 * gets the mapping zeroed: the snapshot's child never uses SQLite, a
 * connection inherited across fork() is never usable anyway (SQLite's
 * rule), and a child that opens a store of its own finds the pool's free
 * list ending at its first slot, so SQLite takes its pages from the heap.
 * Room for both connections' caches (8 MiB and 2 MiB of 4 KiB pages, see
 * st_open and storage_ckpt.c); past it, the heap too.  Set before SQLite's
 * first use in the process, or not at all (a process that used SQLite
 * before keeps the heap).  Under AddressSanitizer pages stay on the heap,
 * where it checks their bounds. */
#define PAGE_POOL_PAGES 2560

static void page_pool_init(void)
{
#if !defined(__SANITIZE_ADDRESS__)
    int hdr = 0;
    if (sqlite3_config(SQLITE_CONFIG_PCACHE_HDRSZ, &hdr) != SQLITE_OK || hdr < 0)
        return;
    size_t slot = ((size_t)4096 + (size_t)hdr + 15) & ~(size_t)15;
    size_t bytes = slot * PAGE_POOL_PAGES;
    void *pool = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pool == MAP_FAILED)
        return;
    madvise(pool, bytes, MADV_WIPEONFORK);
    if (sqlite3_config(SQLITE_CONFIG_PAGECACHE, pool, (int)slot, PAGE_POOL_PAGES) != SQLITE_OK)
        munmap(pool, bytes);
#endif
}

int st_open(const char *dir, st_store **out, char *err, size_t errlen)
{
    *out = NULL;
    st_store *s = calloc(1, sizeof *s);
    if (!s)
        return sto_fail(ST_ENOMEM, err, errlen, "%s: out of memory", dir);
    s->lock_fd = -1;
    s->seg_fd = -1;
    s->seg_dfd = -1;
    s->snap_fd = -1;
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->cmu, NULL);
    pthread_cond_init(&s->ccv, NULL);
    s->mutexes = true;
    if (snprintf(s->dir, sizeof s->dir, "%s", dir) >= (int)sizeof s->dir ||
        snprintf(s->path, sizeof s->path, "%s/%s", dir, ST_DB_NAME) >= (int)sizeof s->path) {
        free(s);
        return sto_fail(ST_EINVAL, err, errlen, "%s: path too long", dir);
    }
    int r = 0;
    if (mkdir_p(dir) != 0) {
        r = sto_fail(errno_code(errno), err, errlen, "%s: cannot create directory: %s", dir,
                     strerror(errno));
        goto out_fail;
    }
    char lock[PATH_MAX + 16];
    snprintf(lock, sizeof lock, "%s/hstore.lock", dir);
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0 && (errno == EROFS || errno == EACCES))
        s->lock_fd = open(lock, O_RDONLY | O_CLOEXEC);
    if (s->lock_fd < 0) {
        r = sto_fail(errno_code(errno), err, errlen, "%s: cannot open lock file: %s", lock,
                     strerror(errno));
        goto out_fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        r = sto_fail(errno == EWOULDBLOCK ? ST_EBUSY : ST_EIO, err, errlen,
                     "%s: data directory in use by another hstore store (lock %s)", dir, lock);
        goto out_fail;
    }
    r = precheck_file(s, err, errlen);
    if (r)
        goto out_fail;
    static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
    pthread_once(&pool_once, page_pool_init);
    int rc = sqlite3_open_v2(
        s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        r = sto_sqlfail(s, rc, err, errlen, "open");
        goto out_fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        r = sto_fail(ST_EROFS, err, errlen, "%s: database is read-only", s->path);
        goto out_fail;
    }
    r = check_schema(s, err, errlen);
    /* Which segments rows refer to (storage_blob.c) is read from this index
     * of the few rows that have large entries, not from a scan of the log. */
    if (!r)
        r = sto_exec_sql(s, "CREATE INDEX IF NOT EXISTS log_seg ON log(seg, first) WHERE seg > 0",
                         err, errlen);
    /* The size of a log prefix (a snapshot's compaction) is summed from this
     * index, a few bytes a row. */
    if (!r)
        r = sto_exec_sql(s, "CREATE INDEX IF NOT EXISTS log_span ON log(first, last, bytes)", err,
                         errlen);
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
        r = sto_exec_sql(s, sql, err, errlen);
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
            r = sto_fail(ST_EIO, err, errlen, "%s: cannot switch the database to WAL mode",
                         s->path);
            goto out_fail;
        }
    }
    for (int i = 0; i < Q_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, q_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL);
        if (rc != SQLITE_OK) {
            r = sto_sqlfail(s, rc, err, errlen, "prepare statement");
            goto out_fail;
        }
    }
    r = load_cache(s, err, errlen);
    if (!r)
        r = sto_blob_open(s, err, errlen);
    if (r)
        goto out_fail;
    /* Tables an earlier version's background snapshot left behind; then the
     * snapshot files (storage_snapfile.c). */
    r = sto_exec_sql(s, "DROP TABLE IF EXISTS snap_stage; DROP TABLE IF EXISTS snap_old", err,
                     errlen);
    if (!r)
        r = sto_snap_open(s, err, errlen);
    if (r)
        goto out_fail;
    /* The hook replaces SQLite's own autocheckpoint (set to 0 above). */
    sto_ckpt_start(s);
    sto_ckpt_wake(s, true); /* dead log rows of a lazy compaction cut short by a stop */
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
    sto_ckpt_stop(s);
    sto_blob_reap(s); /* what the checkpointer had not deleted yet */
    sto_snap_close(s);
    if (s->db) {
        if (s->in_txn)
            sto_txn_rollback(s);
        for (int i = 0; i < Q_COUNT; i++)
            sqlite3_finalize(s->q[i]);
        /* Closing the last connection checkpoints and removes the WAL. */
        sqlite3_close_v2(s->db);
    }
    sto_blob_close(s);
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
    sto_reset_q(s, Q_META_GET);
    if (rc != SQLITE_DONE)
        return sto_sqlfail(s, rc, err, errlen, "read identity");
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
        return sto_fail(ST_EINVAL, err, errlen, "%s: node id 0 is not valid", s->path);
    sqlite3_int64 id = 0;
    bool found;
    int r = meta_get(s, "node_id", &id, NULL, 0, &found, err, errlen);
    if (r)
        return r;
    if (found) {
        size_t sl = strlen(cluster_spec) + 2;
        char *spec = malloc(sl < 4096 ? 4096 : sl + 1);
        if (!spec)
            return sto_fail(ST_ENOMEM, err, errlen, "%s: out of memory", s->path);
        bool f2;
        r = meta_get(s, "cluster", NULL, spec, sl < 4096 ? 4096 : sl + 1, &f2, err, errlen);
        if (!r && ((uint64_t)id != node_id || strcmp(spec, cluster_spec) != 0)) {
            if (!spec[0] && !cluster_spec[0])
                r = sto_fail(ST_EIDENTITY, err, errlen,
                             "%s: data directory belongs to node %llu, not node %llu: use that "
                             "node's id, or another --data directory",
                             s->path, (unsigned long long)id, (unsigned long long)node_id);
            else
                r = sto_fail(ST_EIDENTITY, err, errlen,
                             "%s: data directory belongs to node %llu of cluster '%s', not node "
                             "%llu of cluster '%s'",
                             s->path, (unsigned long long)id, spec, (unsigned long long)node_id,
                             cluster_spec);
        }
        free(spec);
        return r;
    }
    r = sto_txn_begin(s, err, errlen);
    if (r)
        return r;
    sqlite3_stmt *st = s->q[Q_META_PUT];
    sqlite3_bind_text(st, 1, "node_id", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)node_id);
    r = sto_step_done(s, Q_META_PUT, err, errlen, "record identity");
    if (!r) {
        sqlite3_bind_text(st, 1, "cluster", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, cluster_spec, -1, SQLITE_STATIC);
        r = sto_step_done(s, Q_META_PUT, err, errlen, "record identity");
    }
    if (!r)
        return sto_txn_commit(s, err, errlen);
    sto_txn_rollback(s);
    return r;
}

int st_get_boot_members(st_store *s, char *spec, size_t speclen, char *err, size_t errlen)
{
    bool found;
    if (spec && speclen)
        spec[0] = 0;
    return meta_get(s, "boot_members", NULL, spec, speclen, &found, err, errlen);
}

int st_set_boot_members(st_store *s, const char *spec, char *err, size_t errlen)
{
    char have[8];
    bool found;
    int r = meta_get(s, "boot_members", NULL, have, sizeof have, &found, err, errlen);
    if (r || found)
        return r;
    r = sto_txn_begin(s, err, errlen);
    if (r)
        return r;
    sqlite3_stmt *st = s->q[Q_META_PUT];
    sqlite3_bind_text(st, 1, "boot_members", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, spec, -1, SQLITE_STATIC);
    r = sto_step_done(s, Q_META_PUT, err, errlen, "record the first members");
    if (!r)
        return sto_txn_commit(s, err, errlen);
    sto_txn_rollback(s);
    return r;
}

/* ---- introspection ---------------------------------------------------------------- */

uint64_t st_last_index(const st_store *s)
{
    return s->c.last_index;
}
uint64_t st_first_index(const st_store *s)
{
    return s->c.snap_index + 1;
}
uint64_t st_snapshot_index(const st_store *s)
{
    return s->c.snap_index;
}
uint64_t st_snapshot_term(const st_store *s)
{
    return s->c.snap_term;
}
uint64_t st_log_bytes(const st_store *s)
{
    return s->c.log_bytes;
}
uint64_t st_snapshot_stored_bytes(const st_store *s)
{
    return s->c.snap_comp;
}
const char *st_path(const st_store *s)
{
    return s->path;
}
