/*
 * storage_internal.h — what the three files of the store share: the st_store
 * struct, its prepared statements and the helpers for errors, statements and
 * transactions.  Not for use outside raftkv/storage*.c.
 *
 *   storage.c       open, schema, identity, close; the background checkpointer;
 *                   the helpers declared here
 *   storage_log.c   the log and hard state: rows, conflicts, compaction,
 *                   loading at start and saving a ready batch
 *   storage_blob.c  the segment files holding the bytes of large entries
 *   storage_snap.c  snapshots: the background writer, installing a received
 *                   frame, reading the stored form back
 *   storage_snapfile.c  the files that hold snapshots' stored forms
 *
 * Layout of the database (schema version ST_SCHEMA_VERSION, 3):
 *   meta(key, value)                       node identity
 *   hs(id=1, term, vote, commit_idx, crc)  hard state
 *   log(first PK, last, bytes, seg, body)  the log, one row per saved batch:
 *        body = for each index first..last:
 *               term u64 | type u8 | len u32 | crc u32 | data[len]   (LE)
 *            or, when bit 31 of len is set (an entry of ST_BLOB_MIN bytes or
 *            more; len & 0x7fffffff is its length):
 *               term u64 | type u8 | len u32 | crc u32 | seg u32 | off u64
 *            its bytes at offset off of segment file seg (storage_blob.c)
 *        crc  = CRC32C(index u64 | term u64 | type u8 | data)
 *        seg  = the segment the row's large entries are in (all of a row's
 *               are in one), 0 when it has none; bytes counts them too;
 *               index log_seg(seg, first) WHERE seg > 0
 *        Rows with first <= the snapshot index are dead (a lazy compaction
 *        leaves them to the checkpointer): every reader skips them.
 *        Live rows in index order refer to segments in non-decreasing order
 *        (appends go to the newest segment, cuts drop a prefix or a suffix),
 *        which is what lets storage_blob.c find the segments none refers to.
 *   snap(id=1, idx, term, conf, raw_len, comp_len, nchunks, crc)
 *        conf = the raft_conf encoding of conf_codec.h, then its CRC32C u32
 *        the stored form (one zstd frame, comp_len bytes) is the file
 *        DIR/snap/NAME, cut into nchunks pieces of SNAP_PIECE bytes (the last
 *        may be shorter); meta row 'snap_file' holds
 *          NAME | 0 | CRC32C u32 of each piece | CRC32C u32 of all before
 *   snap_chunk(seq PK, crc, body)          earlier versions' stored form (one
 *        zstd frame cut into rows): converted into a file by st_open, empty
 *   snap_stage, snap_old                   earlier versions' leftovers, dropped
 */
#ifndef HSTORE_STORAGE_INTERNAL_H
#define HSTORE_STORAGE_INTERNAL_H

#include "raftkv/storage.h"

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define SEG_GONE_MAX 64 /* segments waiting to be deleted in the background */

/* Prepared statements of the store's connection (SQL in storage.c). */
enum {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_HS_GET,
    Q_HS_PUT,
    Q_LOG_INSERT,
    Q_LOG_ALL,
    Q_LOG_CONTAINING,
    Q_LOG_DEL_FROM,
    Q_LOG_BYTES_FROM,
    Q_LOG_DEL_UPTO,
    Q_LOG_BYTES_UPTO,
    Q_LOG_DEL_ALL,
    Q_LOG_DEL_ONE,
    Q_LOG_UPDATE,
    Q_LOG_TOTALS,
    Q_LOG_SEGS,
    Q_SNAP_GET,
    Q_SNAP_PUT,
    Q_CHUNK_DEL_ALL,
    Q_CHUNK_ALL,
    Q_META_GET,
    Q_META_PUT,
    Q_COUNT
};

#define SNAP_PIECE (1u << 20) /* bytes per checksummed piece of a snapshot file */
#define SNAP_GONE_MAX 4       /* replaced files waiting to be deleted */

/* A snapshot file: its name under DIR/snap, the CRC32C of each piece, its
 * length; fd while it is being written (else -1). */
typedef struct sto_snapf {
    int fd;
    bool direct, no_direct; /* fd is O_DIRECT now; the file system refuses it */
    char name[64];
    uint32_t *crcs;
    uint64_t n, cap, len, synced;
} sto_snapf;

/* Cached summary of what is stored; restored when a transaction rolls back. */
typedef struct st_cache {
    uint64_t last_index; /* last log index, or snap_index when the log is empty */
    uint64_t snap_index, snap_term;
    uint64_t log_bytes;
    uint64_t snap_comp; /* compressed snapshot bytes */
} st_cache;

struct st_store {
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT];
    int lock_fd;
    char dir[PATH_MAX];
    char path[PATH_MAX];
    st_cache c, saved;
    bool in_txn;
    bool bg_open; /* a background snapshot writer exists */
    /* Background checkpointer (storage.c). */
    pthread_mutex_t wmu; /* held by every write transaction */
    pthread_mutex_t cmu; /* guards ck_req / ck_stop */
    pthread_cond_t ccv;
    bool ck_req, ck_stop, ck_running, mutexes;
    bool ck_drop; /* dead log rows of a lazy compaction wait to be deleted */
    pthread_t ck_thr;
    sqlite3 *ckdb;
    /* Snapshot files (storage_snapfile.c): the stored snapshot's, the one
     * the transaction in progress makes current if it commits, and
     * st_snap_stored_read's descriptor of the current one with the last
     * piece it read and checked (a file: it may read while another thread
     * writes through db). */
    char snap_dir[PATH_MAX];
    sto_snapf cur, pend;
    int snap_fd;
    uint8_t *rpiece;
    size_t rpiece_len;
    uint64_t rpiece_no;
    /* Replaced snapshot files the checkpointer deletes (guarded by cmu; a
     * large file's unlink takes a while, kept off the committing thread),
     * cut down in steps first unless a reader was open on the store's
     * file; and the count of those readers (st_snap_reader_open). */
    char snap_gone[SNAP_GONE_MAX][64];
    bool snap_gone_cut[SNAP_GONE_MAX];
    int n_gone, snap_readers;
    /* Segment files of large entries (storage_blob.c): the one appended to
     * (0 and fd -1 until the first large entry after open), its length, the
     * number the next new one gets, and where the entries of the batch being
     * stored were written (handed out in order by sto_blob_next).  seg_dfd:
     * the same file opened O_DIRECT (-1 where the file system refuses it). */
    char blob_dir[PATH_MAX];
    uint32_t seg_cur, seg_next;
    int seg_fd, seg_dfd;
    uint64_t seg_end, blob_cursor;
    bool blob_gc; /* rows were dropped: look for unreferenced segments */
    /* Segments no row refers to any more, deleted by the checkpointer
     * (guarded by cmu): unlinking 64 MiB takes tens of ms, and the commit
     * that dropped them may be the loop's. */
    uint32_t seg_gone[SEG_GONE_MAX];
    int n_seg_gone;
};

/* ---- errors (storage.c) ---------------------------------------------------- */

/* Writes the message into err[errlen] (if err) and returns rc. */
__attribute__((format(printf, 4, 5))) int sto_fail(int rc, char *err, size_t errlen,
                                                   const char *fmt, ...);
/* The ST_E* code of an SQLite result code. */
int sto_map_sqlite(int rc);
/* An SQLite failure: code plus "FILE: what: sqlite's message". */
int sto_sqlfail(st_store *s, int rc, char *err, size_t errlen, const char *what);

/* ---- statements and transactions (storage.c) ------------------------------- */

/* Runs prepared statement q, which returns no rows (and resets it). */
int sto_step_done(st_store *s, int q, char *err, size_t errlen, const char *what);
/* Runs prepared statement q, which returns one integer, into *v. */
int sto_step_int(st_store *s, int q, uint64_t *v, char *err, size_t errlen, const char *what);
void sto_reset_q(st_store *s, int q);
int sto_exec_sql(st_store *s, const char *sql, char *err, size_t errlen);

/* A write transaction holds s->wmu and restores s->c when rolled back. */
int sto_txn_begin(st_store *s, char *err, size_t errlen);
void sto_txn_rollback(st_store *s);
int sto_txn_commit(st_store *s, char *err, size_t errlen);

/* ---- the background checkpointer (storage.c) -------------------------------- */

/* Wakes it for a checkpoint; with cleanup, also to delete the dead log rows
 * a lazy compaction left. */
void sto_ckpt_wake(st_store *s, bool cleanup);
void sto_ckpt_request(st_store *s);
/* Registers the WAL hook on s->db and starts the checkpointer thread (without
 * the thread, SQLite's own autocheckpoint takes over past a bound). */
void sto_ckpt_start(st_store *s);
void sto_ckpt_stop(st_store *s);
/* After a snapshot: its pages copied into the database file now, in the
 * background (inline when the checkpointer could not start). */
void sto_checkpoint_after_snapshot(st_store *s);

/* ---- log (storage_log.c) ----------------------------------------------------- */

/* Drops the log a snapshot at (index, term) covers, inside the caller's
 * transaction; lazy leaves the covered rows for the checkpointer. */
int sto_log_compact(st_store *s, uint64_t index, uint64_t term, bool lazy, char *err,
                    size_t errlen);

/* ---- segment files of large entries (storage_blob.c) ---------------------- */

#define ENT_BLOB_FLAG 0x80000000u /* bit of a record's len: bytes in a segment */
#define ENT_REF_LEN 12            /* seg u32 | off u64 */

/* True when an entry's bytes go to a segment file. */
static inline bool sto_is_blob(uint32_t len)
{
    return len >= ST_BLOB_MIN;
}

/* The room a large entry takes in its segment: each starts at a multiple of
 * ST_DIRECT_ALIGN, the alignment of O_DIRECT writes (of buffer, length and
 * offset), so that its whole pages can be written O_DIRECT
 * (storage_blob.c). */
#define ST_DIRECT_ALIGN 4096u
static inline uint64_t sto_blob_span(uint32_t len)
{
    return ((uint64_t)len + ST_DIRECT_ALIGN - 1) & ~(uint64_t)(ST_DIRECT_ALIGN - 1);
}
/* At open: finds the segment files, numbers the next one and deletes those
 * no live row refers to (left by a crash before a commit or an unlink). */
int sto_blob_open(st_store *s, char *err, size_t errlen);
void sto_blob_close(st_store *s);
/* Before the transaction of st_save_readies: appends the bytes of every
 * large entry of the batches to the open segment (a new one when it is full
 * or none is open) and fdatasyncs it.  sto_blob_next then gives, in the same
 * order, where each of them is. */
int sto_blob_write(st_store *s, const raft_ready *const *rds, size_t n, char *err, size_t errlen);
void sto_blob_next(st_store *s, uint32_t len, uint32_t *seg, uint64_t *off);
/* Reads len bytes of entry `index` at (seg, off) into dst; *fd caches the
 * open segment (seg *fd_seg) across calls: close it with sto_blob_read_end. */
int sto_blob_read(st_store *s, uint32_t seg, uint64_t off, uint32_t len, uint64_t index,
                  uint8_t *dst, int *fd, uint32_t *fd_seg, char *err, size_t errlen);
void sto_blob_read_end(int *fd);
/* After a commit that dropped rows: deletes the segments no live row refers
 * to any more.  Failures are only missed deletions (retried at next open). */
void sto_blob_gc(st_store *s);
/* Deletes the segments gc left to it (the checkpointer's thread, and
 * st_close). */
void sto_blob_reap(st_store *s);
/* Path of segment seg into buf (for messages). */
void sto_blob_path(const st_store *s, uint32_t seg, char *buf, size_t len);

/* ---- snapshots (storage_snap.c) --------------------------------------------- */

/* The stored snapshot's metadata into *snap (data NULL, len the length of
 * the stored form); a zero snapshot when none is stored. */
int sto_snap_load(st_store *s, raft_snapshot *snap, char *err, size_t errlen);
/* Stores a received snapshot (snap->data is a stored-form zstd frame) and
 * compacts the log, inside the caller's transaction. */
int sto_snap_install(st_store *s, const raft_snapshot *snap, char *err, size_t errlen);

/* ---- snapshot files (storage_snapfile.c) ------------------------------------ */

/* At st_open (s->c loaded): the file the store names, checked to be there
 * whole (ST_ECORRUPT naming it otherwise); files no row names deleted; a
 * snapshot stored in snap_chunk rows converted into a file. */
int sto_snap_open(st_store *s, char *err, size_t errlen);
/* At st_close: descriptors and buffers (a pending file is deleted, and the
 * replaced files the checkpointer did not get to). */
void sto_snap_close(st_store *s);
/* On the checkpointer's thread: deletes the replaced files (snap_gone). */
void sto_snap_reap(st_store *s);
/* The end of a write transaction: committed, the pending file becomes the
 * current one and the replaced file is deleted; rolled back, the pending
 * file is deleted.  Nothing when none is pending. */
void sto_snap_txn_end(st_store *s, bool committed);

/* A new file for the snapshot at (index, term), under a name no file has. */
int sto_snapf_create(st_store *s, uint64_t index, uint64_t term, sto_snapf *f, char *err,
                     size_t errlen);
/* Appends one piece (SNAP_PIECE bytes, the last may be shorter) in one
 * write call, with its CRC32C. */
int sto_snapf_piece(st_store *s, sto_snapf *f, const void *p, size_t n, char *err, size_t errlen);
/* fdatasync, close, fsync of the directory: durable under its name. */
int sto_snapf_finish(st_store *s, sto_snapf *f, char *err, size_t errlen);
/* Closes and deletes a file not handed to the store (nothing once handed). */
void sto_snapf_discard(st_store *s, sto_snapf *f);
/* Inside a write transaction: meta row 'snap_file' naming f, and f handed
 * to the store as the pending file (sto_snap_txn_end). */
int sto_snapf_record(st_store *s, sto_snapf *f, char *err, size_t errlen);
/* Piece `no` of file f (open as fd) into buf (SNAP_PIECE bytes), checked
 * against its CRC32C; *len its length.  ST_ECORRUPT naming the file. */
int sto_snapf_read(const st_store *s, int fd, const sto_snapf *f, uint64_t no, uint8_t *buf,
                   size_t *len, char *err, size_t errlen);
/* DIR/snap/NAME into p[n]. */
void sto_snapf_path(const st_store *s, const char *name, char *p, size_t n);

#endif
