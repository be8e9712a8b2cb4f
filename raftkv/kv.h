/*
 * kv.h — hstore's replicated state machine: a key-value store whose namespace
 * is a filesystem, client sessions for exactly-once commands, and the
 * snapshot codec.  The operations it applies, their encodings and its
 * replies are in kv_ops.h (included here).
 *
 * Model.  A local filesystem's: inodes (type+mode, uid, gid, nlink, size,
 * atime/mtime/ctime in ns, rdev, data) and directory entries (parent
 * directory, name -> inode).  The root directory is inode 1.  Inode
 * numbers are handed out by a counter in the state and never reused, so an
 * inode number names one file for the life of the store (no ABA for handles).
 * File data lives in memory: a file of at most KV_CHUNK_SIZE bytes is one flat
 * buffer; a larger file is an array of KV_CHUNK_SIZE chunks, so WRITE_AT and
 * APPEND touch one chunk.  Holes (never-written ranges) read as zeros.
 *
 * Layers.  Callers build an operation (kv_op), encode it to bytes
 * (kv_op_encode).  Reads (kv_op_is_read) go to kv_query() on a state that a
 * ReadIndex round confirmed; everything else is wrapped into a command
 * envelope (kv_cmd_encode) carrying the client id, sequence number and the
 * proposer's clock, proposed through Raft and applied on every replica by
 * kv_apply().  Both return an encoded reply (kv_reply_decode to read it), so
 * the node can ship it over the network unchanged.
 *
 * Determinism.  kv_apply() depends only on the state and the command bytes:
 * no clock, no randomness, no allocation-address-dependent order.  Two
 * replicas fed the same commands hold identical states and produce identical
 * snapshot bytes.  A malformed command is applied as a no-op (it still
 * consumes its log index) with status EBADMSG.
 *
 * Timestamps.  A command's time_ns is chosen by the proposing node; apply uses
 * max(time_ns, last applied command time + 1 ns), so time strictly increases
 * from command to command on every replica and every replica computes
 * identical atime/mtime/ctime.  An inode's ctime is therefore also its
 * version: every command that changes the inode sets it to a value no other
 * command has (PUT_IF relies on this).
 *
 * Open files (POSIX: an inode lives until its last close, on any node).
 * Nodes with a mount are "holders": each reports, with a HOLD command, the
 * inodes it holds open that have no name any more, and the index up to which
 * the report is complete ("covered": every open on that node whose lookup saw
 * the state at an index below it is in the report).  An inode that loses its
 * last name while holders exist becomes an orphan (remembered with the index
 * U of the command that unlinked it) instead of being freed.  At every HOLD
 * the orphans are swept: an orphan is freed when every holder has covered
 * >= U and none lists it.  So no open costs a replicated round: only nodes
 * report, and only when there are orphans to decide (node/report.c).  Holders whose
 * last report is older than KV_HOLDER_TTL_NS of command time (a node gone
 * for good, or cut off that long) no longer count and are dropped; a node
 * that restarts reports anew, which replaces what its previous incarnation
 * held; a mount that stops cleanly reports KV_HOLD_GONE.  Everything is
 * decided from the log, so every replica frees the same orphan at the same
 * index.  While no holder exists, an unlinked inode is freed at once.
 *   The older, per-open way (OPEN_REF / CLOSE_REF / RELEASE_HOLDER: an inode
 *   is kept while a holder has a reference on it) is still applied, for logs
 *   written by older versions.  An inode kept alive either way ("orphan") is
 *   counted in STATFS files and bytes until freed.
 *
 * Memory.  Per small file: one inode record (88 bytes), one flat data buffer
 * of the file's size, one directory entry (9 bytes + name + NUL), and slots
 * in two open-addressing tables (load <= 3/4).  Measured (test_kv
 * test_small_file_memory, HSTORE_TEST_MODE=long): 1,000,000 files of 256
 * bytes in 1,000 directories take 436 bytes of RSS per file, 1.70x the raw
 * data; apply runs at ~660k PUT/s on one core and the snapshot encodes at
 * ~250 MB/s.  A node needs about 1.7x its data (small files) to 1.0x (large
 * files) in memory, plus the Raft log.
 *
 * Threads.  A kv is not thread-safe: one thread (the node loop) calls
 * everything, or the caller serializes.  The operation codecs (kv_ops.h)
 * are pure and thread-safe.
 */
#ifndef HSTORE_KV_H
#define HSTORE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftkv/kv_ops.h"

/* ---- Constants ------------------------------------------------------------- */

#define KV_CHUNK_SIZE (64u * 1024u) /* file data chunk */

/* Sessions (exactly-once; Raft dissertation §6.3).
 *   - A client registers first: a REGISTER command creates a session whose id
 *     is the log index of that command.  The client then sends its commands
 *     as (session id, seq) with increasing seqs.
 *   - A command whose session is not in the table (never registered, expired
 *     or evicted) is answered KV_ESESSION and NOT applied.  So a retry that
 *     arrives after its session is gone can never be applied a second time;
 *     the client learns that the outcome of that request is unknown and
 *     registers again.
 *   - Expiry is decided only from the log, so every replica drops the same
 *     sessions at the same index: a session not used for KV_SESSION_TTL_NS
 *     of session time is dropped, and at most KV_SESSION_MAX sessions are
 *     kept (past that the least recently used, by apply order, goes first).
 *     Session time is the commands' clamped time (see Timestamps) advancing
 *     by at most KV_SESSION_STEP_NS per command, so a proposer whose clock
 *     runs far ahead can only move it a second per command; and even a jump
 *     costs availability (KV_ESESSION answers), never a second apply.
 *   - client_id 0 means "no session": such a command is always applied and
 *     nothing is remembered (tests and idempotent internal commands). */
#define KV_SESSION_TTL_NS (3600ull * 1000000000ull) /* one hour */
/* Open-file holders (see "Open files"): a holder not heard from for this long
 * (command time) no longer keeps orphans alive; a live node reports at least
 * every quarter of it.  At most KV_HOLD_MAX inodes in one report, at most
 * KV_HOLDERS_MAX holders. */
#define KV_HOLDER_TTL_NS (60ull * 1000000000ull)
#define KV_HOLDERS_MAX 64
#define KV_SESSION_STEP_NS 1000000000ull /* one second per command */
#define KV_SESSION_MAX 65536
/* Replies larger than this are not kept in a session (only commands with big
 * replies - reads pushed through the log - exceed it); a duplicate then gets
 * KV_EREPLYGONE instead of the original reply. */
#define KV_SESSION_REPLY_MAX 4096

/* ---- The state machine ----------------------------------------------------------- */

typedef struct kv kv;

/* Limits are replicated state: they change what apply decides, so they live
 * in the log (SET_LIMITS) and in snapshots, and every replica applies the
 * same.  A node seeds them once: the first leader proposes SET_LIMITS with
 * KV_LIMITS_IF_UNSET from its flags.  Until a SET_LIMITS is applied, the
 * limits given to kv_new() are in force (the node gives the defaults). */
typedef struct kv_limits {
    uint64_t max_file_size;   /* EFBIG past it; 0 = KV_DEFAULT_MAX_FILE_SIZE */
    uint64_t max_total_bytes; /* ENOSPC past it (bytes_used); 0 = no limit */
    uint64_t max_inodes;      /* ENOSPC past it (root counts); 0 = no limit */
} kv_limits;

/* An empty store: only the root directory (mode 0755, uid/gid 0, times 0).
 * limits may be NULL (defaults): the limits in force until a SET_LIMITS is
 * applied (a max_file_size above KV_MAX_FILE_SIZE_LIMIT is lowered to it). */
kv *kv_new(const kv_limits *limits);
/* The limits in force; true when they come from an applied SET_LIMITS. */
bool kv_get_limits(const kv *k, kv_limits *out);
void kv_free(kv *k);

/* Applies the Raft log entry at index (a command from kv_cmd_encode).
 * index must be greater than kv_applied_index(); an index at or below it is
 * ignored (returns 1, no reply).  On 0, *reply (malloc'ed, caller frees) is the
 * encoded reply: the op's result, the stored reply of a duplicate, KV_ESTALE
 * for an older seq, EBADMSG for malformed bytes.
 * Returns -1 only when out of memory; the state may then be partly changed and
 * the node must stop (replicas could diverge).  Never fails on bad input. */
int kv_apply(kv *k, uint64_t index, const uint8_t *cmd, size_t len, uint8_t **reply,
             size_t *reply_len);
/* Advances the applied index over a log entry that is not a kv command
 * (no-op, configuration change).  Ignored if index <= kv_applied_index(). */
void kv_apply_skip(kv *k, uint64_t index);

/* Answers a read op (kv_op_is_read) from the current state, changing nothing
 * (atime is not updated: reads are not replicated).  Any other op, or
 * malformed bytes, gets EBADMSG/EINVAL in the reply.  0 with *reply
 * (malloc'ed), or -1 out of memory. */
int kv_query(const kv *k, const uint8_t *op, size_t len, uint8_t **reply, size_t *reply_len);

/* Has (client_id, seq) been applied already?
 *   KV_SESSION_APPLIED: yes, the last command of that client; *reply is a
 *                       malloc'ed copy of its reply (or a KV_EREPLYGONE reply);
 *   KV_SESSION_STALE:   older than the client's last seq (reply gone);
 *                       *reply holds a KV_ESTALE reply;
 *   KV_SESSION_NEW:     not applied (no session, or a higher seq): propose it;
 *                       *reply is NULL.
 *   -1: out of memory.
 * Lets the node answer a retry without a new log entry. */
enum { KV_SESSION_APPLIED = 0, KV_SESSION_NEW = 1, KV_SESSION_STALE = 2 };
int kv_session_lookup(const kv *k, uint64_t client_id, uint64_t seq, uint8_t **reply,
                      size_t *reply_len);

uint64_t kv_applied_index(const kv *k);

/* The inodes whose attributes or content the last kv_apply changed (those
 * a cache of them must forget): their count, with *inos pointing at them,
 * and *all set when they were too many to list or the last change was a
 * whole new state (kv_snapshot_read). */
size_t kv_changed(const kv *k, const uint64_t **inos, bool *all);
/* Whether the last kv_apply changed a name: added, removed or moved an entry
 * of a directory (or brought a whole new state). */
bool kv_changed_names(const kv *k);
/* Last applied command time (ns, clamped, never decreasing). */
int64_t kv_last_time(const kv *k);

typedef struct kv_stats {
    uint64_t applied_index;
    int64_t last_time_ns;
    uint64_t inodes; /* all inodes, root and orphans included */
    uint64_t dirs;
    uint64_t files;      /* regular files */
    uint64_t orphans;    /* unlinked, kept alive by references */
    uint64_t bytes_used; /* as kv_statfs.bytes_used */
    uint64_t data_alloc; /* bytes of data buffers allocated */
    uint64_t meta_alloc; /* approximate bytes of inodes, entries, tables */
    uint64_t sessions;
    uint64_t refs;           /* (holder, inode) reference records */
    uint64_t holders;        /* nodes that report open files */
    int64_t session_time_ns; /* session time (see Sessions) */
    uint64_t uploads;        /* staged uploads */
    uint64_t staged_bytes;   /* their declared sizes */
} kv_stats;

/* A holder's standing in the state (for the node deciding when to report).
 * known: the holder has a report in force; covered, time_ns: of that report;
 * uncovered: an orphan exists that the report does not cover yet; held, n_held:
 * the inodes it listed (valid until the next kv call that changes the state). */
typedef struct kv_holder_view {
    bool known;
    bool uncovered;
    uint64_t covered;
    int64_t time_ns;
    const uint64_t *held;
    size_t n_held;
} kv_holder_view;
void kv_holder_get(const kv *k, uint64_t holder, kv_holder_view *v);
/* True when ino is an inode with no name left (an orphan kept alive). */
bool kv_is_orphan(const kv *k, uint64_t ino);
void kv_get_stats(const kv *k, kv_stats *st);

/* ---- Snapshots ---------------------------------------------------------------------- */

/* The whole state: applied index, last command time, session time, the
 * replicated limits, inode counter, inodes with data, directory entries,
 * sessions (in expiry order), references, holders' reports and orphans
 * (format version 3; versions 1 and 2 still read).
 * The bytes are deterministic: equal states give equal bytes, whatever path
 * led there (holes and zero-filled ranges are encoded alike).
 *
 * Streaming form: write(arg, buf, n) is called with consecutive pieces (each at
 * most KV_CHUNK_SIZE + 8 KiB); a non-zero return aborts the
 * encoding, which then returns -1.  No buffer the size of the state is built. */
typedef int (*kv_write_fn)(void *arg, const void *buf, size_t n);
int kv_snapshot_write(const kv *k, kv_write_fn write, void *arg);
/* Buffer form: *buf malloc'ed, caller frees.  0 or -1 (ENOMEM). */
int kv_snapshot_encode(const kv *k, uint8_t **buf, size_t *len);

/* Streaming decode: read(arg, buf, n) must fill exactly n bytes and return 0,
 * or return non-zero (end of data / error), which fails the decode.  The
 * snapshot ends with a trailer magic; nothing past it is read (checksums are
 * storage's and the transport's job).  The new state is built aside and replaces k's only if the
 * whole snapshot is valid; otherwise -1 and k is untouched.  Snapshots of
 * format 3 carry the limits and session time; formats 1 and 2 (older builds)
 * are still read: k's limits are kept (not set), session time starts at the
 * snapshot's command time.  Any other format is refused.  The buffer form
 * also rejects bytes after the trailer. */
typedef int (*kv_read_fn)(void *arg, void *buf, size_t n);
int kv_snapshot_read(kv *k, kv_read_fn read, void *arg);
int kv_snapshot_decode(kv *k, const uint8_t *buf, size_t len);

#endif
