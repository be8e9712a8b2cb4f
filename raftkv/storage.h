/*
 * storage.h — durable storage of one node's Raft state in SQLite.
 *
 * Everything a node must not forget lives in DIR/hstore.db: the hard state
 * (term, vote, commit), the log, the latest snapshot's index, term and
 * configuration, and the node's identity.  The database runs in WAL mode
 * with synchronous=FULL, so a successful save is on disk.  Two kinds of
 * bytes live in files beside it, each written whole and fdatasync'ed before
 * the transaction that refers to them commits: the bytes of large log
 * entries (ST_BLOB_MIN and up) go to append-only segment files in
 * DIR/log-blobs, the database row keeping the entry's header, checksum and
 * where its bytes are; and the latest snapshot (one zstd frame) is the file
 * DIR/snap/INDEX-TERM.zst that the database names.
 *
 * The node uses it like this (the loop thread, and its writer thread for
 * st_save_readies):
 *
 *   st_open(dir)              -> checks schema and locks the directory
 *   st_check_identity(...)    -> refuses a directory made for another node
 *   st_load_stored(&boot)     -> hard state, snapshot metadata, log after it:
 *                                raft_new(); the state through st_snap_reader
 *   loop: st_save_readies(rds) -> step 2 of the ready protocol (raft.h): one
 *                                transaction and one fsync for the batches
 *                                waiting, with a snapshot received from the
 *                                leader, if any
 *         st_bgsnap_*         -> a snapshot of its own, written by a worker
 *                                thread and committed by the loop
 *         st_snap_stored_read -> the stored form, for a follower that lags
 *   st_close()
 *
 * The code: storage.c (open, schema, identity, checkpointer), storage_log.c
 * (log, hard state, load and save), storage_blob.c (the segment files of
 * large entries), storage_snap.c (snapshots), storage_snapfile.c (snapshot
 * files);
 * storage_internal.h has the layout of the database.
 *
 * Integrity: every log entry carries a CRC32C over (index, term, type, data),
 * the hard state and the configuration carry one too, and each 1 MiB piece
 * of a snapshot file has one (plus zstd's own content checksum).  All are checked on every
 * read; a mismatch is ST_ECORRUPT with a message naming the file and the
 * index, never a silent skip.
 *
 * Errors: every call returns 0 or a negative ST_E* code and, when err is not
 * NULL, writes a one-line message (naming the file) into err[errlen].  A
 * failed save is rolled back whole: nothing of that batch is on disk and the
 * store stays usable (the caller should still stop acknowledging: a node that
 * cannot persist must not go on).
 *
 * Not thread-safe: one thread at a time uses one st_store (the caller
 * serialises its threads; the store runs one helper thread of its own for
 * WAL checkpoints, which never touches the caller's data), except for the
 * background snapshot writer's calls, made from one other thread, and
 * st_snap_stored_read, which reads the snapshot file through a descriptor of
 * its own and may run beside a save on another thread.  Two st_store (or two processes)
 * cannot open the same directory at once (ST_EBUSY).
 */
#ifndef HSTORE_STORAGE_H
#define HSTORE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftkv/raft.h"

/* Version of the database layout written by this build (PRAGMA user_version).
 * Version 3 added large entries kept in segment files; stores of versions 1
 * and 2 are upgraded in place at open (their rows stay as they are). */
#define ST_SCHEMA_VERSION 3
/* Marks a database as hstore's (PRAGMA application_id, "HSTR"). */
#define ST_APPLICATION_ID 0x48535452
/* File name of the database inside the data directory. */
#define ST_DB_NAME "hstore.db"
/* Log entries whose data is at least this many bytes keep their bytes in a
 * segment file (DIR/ST_BLOB_DIR/NNNNNNNN.seg) rather than in the database:
 * SQLite would write such an entry as one 4 KiB page at a time, twice (WAL,
 * then checkpoint), which costs more CPU than the disk takes to store it.
 * Smaller entries stay in the row, where a batch of them costs one insert. */
#define ST_BLOB_MIN (64 * 1024)
/* A segment takes appends until it holds this many bytes; the next batch
 * starts a new one.  A segment file is deleted once no log entry refers to
 * it (compacted into a snapshot, or cut off as a conflicting suffix). */
#define ST_SEG_BYTES (64u << 20)
/* Directory of the segment files inside the data directory. */
#define ST_BLOB_DIR "log-blobs"

enum {
    ST_OK = 0,
    ST_EIO = -1,       /* I/O error reading or writing the database */
    ST_ENOSPC = -2,    /* disk (or quota) full: nothing of the batch was stored */
    ST_EROFS = -3,     /* database or directory is read-only */
    ST_ECORRUPT = -4,  /* checksum mismatch, malformed record, truncated file */
    ST_ESCHEMA = -5,   /* newer schema, or a database that is not hstore's */
    ST_ENOTDB = -6,    /* the file is not an SQLite database at all */
    ST_EIDENTITY = -7, /* directory belongs to another node or cluster */
    ST_EINVAL = -8,    /* bad argument (e.g. entries leaving a gap in the log) */
    ST_ENOMEM = -9,
    ST_EBUSY = -10, /* directory in use by another store, or a background
                           snapshot writer is already open */
};

/* Short constant description of an ST_E* code. */
const char *st_strerror(int rc);

typedef struct st_store st_store;

/* ---- Open, identity, close ------------------------------------------------ */

/* Opens (creating DIR and DIR/hstore.db if needed) the store in DIR.  Checks
 * the file is an SQLite database (ST_ENOTDB), is hstore's and not of a newer
 * schema (ST_ESCHEMA), is not truncated (ST_ECORRUPT), is writable (ST_EROFS)
 * and is not open elsewhere (ST_EBUSY, through a lock on DIR/hstore.lock). */
int st_open(const char *dir, st_store **out, char *err, size_t errlen);

/* Binds the store to one node of one cluster.  The first call on a new store
 * records (node_id, cluster_spec) durably; later calls (any later run) must
 * pass the same pair, or get ST_EIDENTITY: a directory created for node 2 does
 * not start as node 3.  cluster_spec is any string naming the cluster (e.g. the
 * initial member list); NULL means "". */
int st_check_identity(st_store *s, uint64_t node_id, const char *cluster_spec, char *err,
                      size_t errlen);

/* The recorded identity: *node_id 0 and spec "" when none is recorded yet.
 * spec (may be NULL) receives at most speclen-1 bytes plus a NUL. */
int st_get_identity(st_store *s, uint64_t *node_id, char *spec, size_t speclen, char *err,
                    size_t errlen);

/* The members a node was first started with (its --cluster SPEC), recorded
 * once so that later starts need no --cluster: st_set_boot_members records
 * spec if none is recorded yet (else changes nothing); st_get_boot_members
 * gives "" when none is. */
int st_set_boot_members(st_store *s, const char *spec, char *err, size_t errlen);
int st_get_boot_members(st_store *s, char *spec, size_t speclen, char *err, size_t errlen);

/* Closes the store; checkpoints the WAL into the database file.  NULL is ok. */
void st_close(st_store *s);

/* ---- Start-up ------------------------------------------------------------- */

/* Fills *boot with what was persisted: hard state, the latest snapshot's
 * index, term and conf, and the log entries after it, in order, every
 * checksum verified.  The snapshot's bytes stay in the store:
 * boot->snapshot.data is NULL and .len is the length of its stored form (read
 * the state with st_snap_reader_open).  A fresh store gives a zero hard
 * state, snapshot index 0 with conf.n == 0 and len 0 (the caller then fills
 * boot->snapshot.conf with the initial configuration) and no entries.
 * Everything in *boot is allocated by the store: release it with
 * st_boot_free().  On error *boot is left empty (safe to st_boot_free). */
int st_load_stored(st_store *s, raft_boot *boot, char *err, size_t errlen);

/* Frees what st_load_stored() allocated and zeroes *boot.  NULL is ok. */
void st_boot_free(raft_boot *boot);

/* ---- Saving ----------------------------------------------------------------- */

/* Persists one ready batch (step 2 of the protocol in raft.h) in ONE
 * transaction with one fsync: rd->snapshot (if not NULL: a snapshot received
 * from a leader, in stored form as st_snap_stored_read gives it; it is
 * checked to decompress whole and stored as is, replacing the stored one,
 * which must not be newer (ST_EINVAL); the log is kept after it only if it
 * holds the entry at snapshot->index with the same term, otherwise all of it
 * is dropped), then
 * rd->hs (if rd->hs_changed), then rd->entries: the stored log from
 * entries[0].index on is deleted first (conflicting suffix) and the entries
 * appended.  Entries must be consecutive, start no later than last_index+1
 * and after the snapshot (else ST_EINVAL, nothing stored).  Returns 0 only
 * once all of it is durable.  The bytes of entries of ST_BLOB_MIN and more
 * are appended to the open segment file and fdatasync'ed first; only then
 * does the transaction whose rows refer to them commit, so a row never
 * points at bytes that are not on disk (a crash in between leaves bytes no
 * row refers to, dropped with their segment). */
int st_save_ready(st_store *s, const raft_ready *rd, char *err, size_t errlen);
/* Persists n batches, in order, in ONE transaction with one fsync (group
 * commit: the batches a writer thread found waiting behind its last write).
 * Each is stored as st_save_ready would; any error stores none of them. */
int st_save_readies(st_store *s, const raft_ready *const *rds, size_t n, char *err, size_t errlen);

/* ---- Snapshots kept by the store (raft_config.external_snapshot) ----------- *
 *
 * The stored form of a snapshot is one zstd frame (with content checksum),
 * in a file of its own.  The node keeps its snapshot only here: it serves
 * InstallSnapshot chunks from the stored form, sends the stored form itself
 * (so a follower receives compressed bytes), and reads the state back as a
 * stream, never as one buffer. */

/* len bytes at offset off of the stored form of the snapshot at index (the
 * one stored now; ST_EINVAL otherwise, or past its end).  Checksums
 * verified.  Reads the file through a descriptor of its own (see the top):
 * it may run while another thread saves batches, never while one commits or
 * installs a snapshot. */
int st_snap_stored_read(st_store *s, uint64_t index, uint64_t off, void *buf, size_t len, char *err,
                        size_t errlen);

/* Streaming reader of a snapshot's state bytes: either the stored snapshot
 * (its file, through a descriptor of its own: a snapshot committed while it
 * is open deletes the file's name, not what the reader reads) or a
 * stored-form frame in memory (the caller's buffer must outlive the reader).
 * st_snap_read(reader, buf, n) fills exactly n bytes and returns 0, or -1
 * (short, corrupt; the reason comes from close); its shape is kv_read_fn's.
 * st_snap_reader_close checks that the frame ends right after the bytes read
 * (content checksum included) and frees the reader: 0 or ST_ECORRUPT etc. */
typedef struct st_snap_reader st_snap_reader;
typedef struct st_snap_writer st_snap_writer;
int st_snap_reader_open(st_store *s, st_snap_reader **out, char *err, size_t errlen);
int st_snap_reader_open_frame(const void *frame, size_t len, st_snap_reader **out, char *err,
                              size_t errlen);
int st_snap_read(void *reader, void *buf, size_t n);
uint64_t st_snap_reader_bytes(const st_snap_reader *r);
int st_snap_reader_close(st_snap_reader *r, char *err, size_t errlen);

/* Background snapshot writer: compresses and stores a snapshot from another
 * thread while the owner's thread goes on saving batches.
 *   st_bgsnap_begin   (owner's thread) makes the writer and its new file
 *                     under DIR/snap; ST_EINVAL unless index > stored snapshot
 *   st_bgsnap_write   (one other thread) state bytes in any pieces: each
 *   st_bgsnap_finish  full 1 MiB compressed piece is written to the file
 *                     (no lock, nothing of the store touched); finish syncs
 *                     the file and its directory: not yet a snapshot
 *   st_bgsnap_commit  (owner's thread, after finish) one short transaction:
 *                     a row names the file, with metadata and conf, and the
 *                     log prefix goes (its rows deleted later by the store's
 *                     background thread in small steps); the replaced file
 *                     is deleted after the commit.  ST_EINVAL if a newer
 *                     snapshot was stored meanwhile (nothing changes).
 *   st_bgsnap_abort   (owner's thread, once the other thread stopped)
 * Commit and abort free the writer (and delete its file unless committed).
 * A crash at any point leaves the stored snapshot as it was (a file no row
 * names is deleted at the next st_open).  At most one background writer per
 * store; ordinary saving calls go on meanwhile. */
int st_bgsnap_begin(st_store *s, uint64_t index, uint64_t term, st_snap_writer **out, char *err,
                    size_t errlen);
int st_bgsnap_write(st_snap_writer *w, const void *buf, size_t len, char *err, size_t errlen);
int st_bgsnap_finish(st_snap_writer *w, char *err, size_t errlen);
int st_bgsnap_commit(st_snap_writer *w, const raft_conf *conf, char *err, size_t errlen);
/* Length of the stored form once finished (what raft_compact is told). */
uint64_t st_bgsnap_bytes(const st_snap_writer *w);
void st_bgsnap_abort(st_snap_writer *w);

/* ---- Reading and introspection ------------------------------------------- *
 * The node uses st_path; the rest is for tests and tools that check what a
 * store holds. */

/* Index of the last entry in the log, or the snapshot index if the log is
 * empty (0 for a fresh store). */
uint64_t st_last_index(const st_store *s);
/* Index of the first entry the log may hold: snapshot index + 1. */
uint64_t st_first_index(const st_store *s);
/* Index and term of the stored snapshot (0, 0 when none). */
uint64_t st_snapshot_index(const st_store *s);
uint64_t st_snapshot_term(const st_store *s);
/* Bytes of entry data in the log after the snapshot (as raft_log_bytes()),
 * those kept in segment files included. */
uint64_t st_log_bytes(const st_store *s);
/* Compressed size of the stored snapshot in bytes (0 when none). */
uint64_t st_snapshot_stored_bytes(const st_store *s);
/* Full path of the database file (for messages). */
const char *st_path(const st_store *s);

#endif
