/*
 * kv_internal.h — the state machine's structures and the functions its
 * files share (not public API: only raftkv/kv*.c include it).
 *
 * The files, one concern each:
 *   kv.c               life cycle, kv_apply (clock, sessions, dispatch by op)
 *   kv_inode.c         inode-number table, directory tables, file data,
 *                      inode life and links
 *   kv_namespace.c     paths and the commands on names and file contents
 *   kv_open.c          open files: HOLD reports, orphans, references
 *   kv_upload.c        chunked uploads
 *   kv_session.c       exactly-once sessions
 *   kv_read.c          reads (kv_query) and the reply builders
 *   kv_snapshot.c      the snapshot format and its writer
 *   kv_snapshot_read.c the snapshot reader and its checks
 *   kv_codec.c         the bytes of ops, commands and replies (kv_ops.h)
 *
 * Structures (chosen for memory: a million small files must stay within ~2x
 * their data):
 *   - kv_inode: attributes + a data representation; ~96 bytes.
 *       regular file, !chunked: `flat` holds bytes [0, cap); [cap, size) are
 *                 zeros (a truncate that grows allocates nothing).
 *       regular file, chunked:  `chunks` has cap pointers to KV_CHUNK_SIZE
 *                 blocks; NULL or past cap = a hole (zeros).  A file becomes
 *                 chunked once it outgrows one chunk, and stays chunked.
 *       symlink:  `flat` holds the target (size bytes).
 *       directory: `slots` is an open-addressing table (linear probing,
 *                 backward-shift deletion, no tombstones) of cap entries, size
 *                 = number of entries, x = parent inode number.
 *       fifo/device/socket: x = rdev.
 *     Invariant: bytes past the size inside allocated storage are zero, so
 *     growing a file never exposes old data.
 *   - kv_dentry: (name, inode pointer) in its directory's table.  Hard links
 *     are several dentries pointing at one inode.
 *   - an inode-number table (same open addressing) for [ino] ops.
 * Directory rename moves one dentry: O(1) whatever the subtree holds.
 * Anything walking the tree (LIST, snapshot checks) is iterative, because
 * renames can build trees deeper than PATH_MAX allows to name.
 *
 * Determinism: apply never looks at pointers, clocks or hash-table order
 * where the result would show: READDIR and LIST sort, snapshots are written
 * in inode-number and name order, sessions and references in apply order.
 */
#ifndef HSTORE_KV_INTERNAL_H
#define HSTORE_KV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "raftkv/kv.h"

typedef struct kv_inode kv_inode;

typedef struct kv_dentry {
    kv_inode *node;
    uint8_t namelen;
    char name[]; /* namelen bytes + NUL */
} kv_dentry;

struct kv_inode {
    uint64_t ino;
    uint64_t size;
    int64_t atime, mtime, ctime;
    uint32_t mode, uid, gid, nlink;
    uint32_t refs; /* open references, all holders */
    uint32_t cap;
    uint64_t x; /* dir: parent ino; device: rdev */
    union {
        uint8_t *flat;
        uint8_t **chunks;
        kv_dentry **slots;
    } u;
    uint8_t chunked;
    uint8_t held; /* in the orphan list: waits for the holders */
};

typedef struct kv_session {
    uint64_t client, seq;
    int64_t last_time;
    uint8_t *reply; /* NULL: reply not kept */
    uint32_t reply_len;
    struct kv_session *prev, *next; /* expiry order: head = least recent */
} kv_session;

typedef struct kv_ref {
    uint64_t holder, ino;
    uint32_t count;
} kv_ref;

/* A holder's report in force (see kv.h "Open files"). */
typedef struct kv_holder {
    uint64_t id;
    uint64_t covered;
    int64_t time;
    uint64_t *held; /* sorted, distinct */
    size_t n;
} kv_holder;

/* An inode that lost its last name while holders existed. */
typedef struct kv_orphan {
    uint64_t ino, at; /* at: index of the command that unlinked it */
} kv_orphan;

/* A value being uploaded in parts (UPLOAD_PART), not visible until its
 * UPLOAD_COMMIT.  data is an inode outside the inode table that only holds
 * the staged bytes. */
typedef struct kv_upload {
    uint64_t id;
    uint64_t total;    /* declared size of the whole value, 0 = not known yet */
    uint64_t got;      /* bytes of the distinct parts received */
    uint64_t reserved; /* space it holds: total if declared, else got */
    int64_t last_time; /* command time of the last part (expiry) */
    uint8_t *have;     /* bitmap: part i received */
    size_t have_cap;   /* bytes of have */
    kv_inode *data;
} kv_upload;

#define KV_TOUCH_MAX 8

struct kv {
    kv_limits lim;
    bool lim_set; /* lim comes from an applied SET_LIMITS */
    uint64_t applied;
    int64_t last_time;
    int64_t now;    /* time of the command being applied */
    int64_t sclock; /* session time (kv.h, Sessions) */
    uint64_t next_ino;
    kv_inode *root;
    kv_inode **itab; /* inode-number table */
    uint64_t icap, icount;
    uint64_t ndirs, nfiles, norphans;
    uint64_t bytes_used;
    uint64_t data_alloc;
    uint64_t meta_alloc;
    kv_session **stab; /* session table by client id */
    uint64_t scap, scount;
    kv_session *shead, *stail;
    kv_ref *refs;
    size_t nrefs, refcap;
    kv_holder *holders; /* sorted by id */
    size_t nholders;
    kv_orphan *orph; /* in unlink order (ascending at) */
    size_t norph, orphcap;
    kv_upload *ups; /* staged uploads, in the order they started */
    size_t nups;
    uint64_t staged; /* sum of their reserved bytes (counts against the space limit) */
    /* inodes the command being applied changed (kv_changed) */
    uint64_t touched[KV_TOUCH_MAX];
    unsigned n_touched;
    bool touched_all;   /* more than KV_TOUCH_MAX, or a whole new state */
    bool touched_names; /* a directory's entries changed (touch_dir) */
};

/* Stamps n's ctime (its version) with the command's time and notes the
 * change for kv_changed: every change of an inode's attributes or content
 * goes through here. */
static inline void touch(kv *k, kv_inode *n)
{
    n->ctime = k->now;
    for (unsigned i = 0; i < k->n_touched; i++)
        if (k->touched[i] == n->ino)
            return;
    if (k->n_touched < KV_TOUCH_MAX)
        k->touched[k->n_touched++] = n->ino;
    else
        k->touched_all = true;
}

#define KV_REFS_MAX 65536 /* (holder, inode) reference records */

#define CH ((uint64_t)KV_CHUNK_SIZE) /* file data chunk, as a 64-bit count */

/* kv_chunk.c: one zeroed chunk (CH bytes) or NULL; chunk_free(NULL) is a
 * no-op.  Thread-safe. */
uint8_t *chunk_alloc(void);
void chunk_free(uint8_t *c);

static inline bool is_dir(const kv_inode *n)
{
    return S_ISDIR(n->mode);
}

static inline bool is_reg(const kv_inode *n)
{
    return S_ISREG(n->mode);
}

static inline bool is_lnk(const kv_inode *n)
{
    return S_ISLNK(n->mode);
}

static inline uint64_t nchunks(uint64_t size)
{
    return (size + CH - 1) / CH;
}

/* Every change of a directory's entries goes through here. */
static inline void touch_dir(kv *k, kv_inode *d)
{
    k->touched_names = true;
    d->mtime = k->now;
    touch(k, d);
}

static inline uint64_t upload_nparts(uint64_t total)
{
    return (total + KV_PART_SIZE - 1) / KV_PART_SIZE;
}

/* ---- kv_inode.c: tables, directories, file data, inodes ----------------------------- */
uint64_t mix64(uint64_t x);
/* inode-number table */
kv_inode *itab_get(const kv *k, uint64_t ino);
/* 0, -1 out of memory, 1 duplicate */
int itab_put(kv *k, kv_inode *n);
void itab_del(kv *k, uint64_t ino);
kv_dentry **dir_find(const kv_inode *d, const char *name, size_t n);
/* Inserts a prepared dentry (its name must be absent).  0 or -1 (ENOMEM,
 * nothing changed). */
int dir_insert(kv *k, kv_inode *d, kv_dentry *e);
/* Removes the entry at slot (returned, not freed). */
kv_dentry *dir_remove(kv_inode *d, kv_dentry **slot);
kv_dentry *dentry_new(kv *k, const char *name, size_t n, kv_inode *node);
void dentry_free(kv *k, kv_dentry *e);
void data_read(const kv_inode *n, uint64_t off, size_t len, uint8_t *dst);
uint64_t data_blocks(const kv_inode *n);
void data_free(kv *k, kv_inode *n);
/* Makes [off, end) writable.  0 or -1 (ENOMEM; content unchanged, maybe more
 * zero-filled storage). */
int data_prepare(kv *k, kv_inode *n, uint64_t off, uint64_t end);
/* Writes len bytes at off (limits already checked).  0 or -1 (ENOMEM). */
int data_write(kv *k, kv_inode *n, uint64_t off, const uint8_t *src, size_t len);
void data_truncate(kv *k, kv_inode *n, uint64_t size);
/* Replaces the whole content.  0 or -1 (ENOMEM, old content kept). */
int data_set(kv *k, kv_inode *n, const uint8_t *src, size_t len);
/* EFBIG / ENOSPC for a regular file growing to newsize, else 0. */
int check_size(const kv *k, const kv_inode *n, uint64_t newsize);
void inode_destroy(kv *k, kv_inode *n);
/* status, *out = a new unlinked inode (nlink 0; registered in the table) */
int inode_new(kv *k, uint32_t mode, uint32_t uid, uint32_t gid, kv_inode **out);
/* Called when an inode lost a link: frees it once nothing names or holds it.
 * While holders exist, a non-directory becomes an orphan that waits for their
 * reports (the sweep frees it).  0, or -1 out of memory (then it is freed). */
int inode_unref_check(kv *k, kv_inode *n);
/* Frees an orphan once neither references nor the holders keep it. */
void orphan_release(kv *k, kv_inode *n);
/* Clears the set-id bits of a regular file changed by an unprivileged writer
 * (kv.h "Set-id bits"). */
void kill_privs(kv_inode *n, const kv_op *op);
/* Adds name -> child in d.  0 or -1 (ENOMEM, nothing changed). */
int link_child(kv *k, kv_inode *d, const char *name, size_t nlen, kv_inode *child);
/* Removes the entry at slot from d and drops the link it held.  0 or -1. */
int unlink_slot(kv *k, kv_inode *d, kv_dentry **slot);
/* The entries of d sorted by name (malloc'ed array; NULL when empty). */
kv_dentry **dir_sorted(const kv_inode *d, int *oom);

/* ---- kv_namespace.c: paths and the commands on names and contents ------------------- */
int resolve(const kv *k, uint64_t dir, const char *p, size_t len, kv_inode **out);
/* The inode an [ino] op addresses. */
int op_node(const kv *k, const kv_op *op, kv_inode **out);
void attr_of(const kv_inode *n, kv_attr *a);
/* Moves the staged content of an upload into n (replacing n's), without
 * copying. */
void data_take(kv *k, kv_inode *n, kv_inode *staged);
/* PUT, APPEND; with staged (UPLOAD_COMMIT) a PUT whose content is taken
 * from the staged inode instead of op->data. */
int op_put_ex(kv *k, const kv_op *op, kv_inode **res, bool append, kv_inode *staged);
/* PUT_IF: the whole content of inode op->ino, if its version (ctime) is
 * still op->off; with staged (UPLOAD_COMMIT of an inode) the content is
 * taken from the staged inode instead of op->data. */
int op_put_if(kv *k, const kv_op *op, kv_inode **res, kv_inode *staged);
int op_put(kv *k, const kv_op *op, kv_inode **res, bool append);
int op_del(kv *k, const kv_op *op, int kind);
/* CREATE, MKNOD, MKDIR, SYMLINK: a new name in an existing directory. */
int op_make(kv *k, const kv_op *op, kv_inode **res);
int op_write_at(kv *k, const kv_op *op, kv_inode **res);
/* WRITE_AT of the staged inode's bytes at op->off of inode op->ino (they are
 * moved, not copied, into an empty file at offset 0). */
int op_write_staged(kv *k, const kv_op *op, kv_inode *staged, kv_inode **res);
int op_truncate(kv *k, const kv_op *op, kv_inode **res);
int op_setattr(kv *k, const kv_op *op, kv_inode **res);
int op_link(kv *k, const kv_op *op, kv_inode **res);
int op_rename(kv *k, const kv_op *op, kv_inode **res);

/* ---- kv_open.c: open files ---------------------------------------------------------- */
int op_open_ref(kv *k, const kv_op *op, kv_inode **res);
int op_close_ref(kv *k, const kv_op *op);
int op_release_holder(kv *k, const kv_op *op);
int op_hold(kv *k, const kv_op *op);

/* ---- kv_read.c: reads and replies --------------------------------------------------- */
int reply_simple(int st, const kv_inode *n, uint8_t **out, size_t *len);
/* The totals and the replicated limits (STATFS, and the answer to SET_LIMITS). */
int reply_limits(const kv *k, uint8_t **out, size_t *len);

/* ---- kv_upload.c: chunked uploads --------------------------------------------------- */
kv_upload *upload_find(const kv *k, uint64_t id, size_t *at);
void upload_release(kv *k, kv_upload *u);
/* Abandoned uploads go after KV_UPLOAD_TTL_NS of session time (which one
 * proposer's fast clock cannot rush, see Sessions): decided from the log
 * alone, so every replica drops them at the same index. */
void upload_expire(kv *k);
/* Room for part index p in u's bitmap.  0 or -1 (ENOMEM). */
int upload_bits(kv_upload *u, uint64_t p);
/* A new staging for op's upload (op->len: declared size or 0).  status, or
 * -1 (ENOMEM). */
int upload_start(kv *k, const kv_op *op, kv_upload **out);
int op_upload_part(kv *k, const kv_op *op);
int op_upload_commit(kv *k, const kv_op *op, kv_inode **res);
int op_upload_write(kv *k, const kv_op *op, kv_inode **res);
int op_upload_abort(kv *k, const kv_op *op);
/* UPLOAD_PART is idempotent and bypasses the client's session: parts of one
 * upload are pipelined, may apply in any order and be re-sent after a leader
 * change, and none of that may make a later part look stale.  True when
 * opb is a part (then *rc is kv_apply's result). */
bool upload_part_apply(kv *k, const uint8_t *opb, size_t opl, uint8_t **reply, size_t *reply_len,
                       int *rc);

/* ---- kv.c --------------------------------------------------------------------------- */
kv *kv_alloc(const kv_limits *lim);

/* ---- kv_session.c: sessions --------------------------------------------------------- */
kv_session *sess_get(const kv *k, uint64_t client);
int sess_tab_put(kv *k, kv_session *s);
void sess_list_append(kv *k, kv_session *s);
void sess_expire(kv *k);
/* Records reply as client's last; 0 or -1 (ENOMEM). */
int sess_record(kv *k, uint64_t client, uint64_t seq, const uint8_t *reply, size_t len);
bool sess_answer(kv *k, uint64_t client, uint64_t seq, uint8_t **reply, size_t *reply_len, int *rc);
/* REGISTER: a new session named by this entry's index (unique, never
 * reused), with seq 0 and no reply yet. */
int apply_register(kv *k, uint64_t index, uint8_t **reply, size_t *reply_len);

/* ---- kv_snapshot.c, kv_snapshot_read.c: the snapshot format ------------------------ */

#define SNAP_MAGIC 0x53564b48u   /* "HKVS" */
#define SNAP_END 0x2e444e45u     /* "END." */
#define SNAP_UPLOADS 0x53505550u /* "PUPS": staged uploads, only when there are some */
#define SNAP_VERSION 3u
#define NO_CHUNK 0xffffffffu

/* ---- kv_codec.c ------------------------------------------------------------------- */

/* kv_reply_encode, except that when data_slot is non-NULL the r->data_len data
 * bytes are not copied: *data_slot is where the caller must write them (lets a
 * GET fill the reply straight from file chunks, without a second copy). */
int kv_reply_encode_ex(const kv_reply *r, uint8_t **out, size_t *out_len, uint8_t **data_slot);

#endif
