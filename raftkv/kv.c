/*
 * kv.c — hstore's replicated state machine: a filesystem-shaped key-value
 * store, exactly-once client sessions and the snapshot codec (API in kv.h).
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
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftkv/byte.h"
#include "raftkv/kv.h"
#include "raftkv/kv_internal.h"

typedef struct kv_inode kv_inode;

typedef struct kv_dentry {
    kv_inode *node;
    uint8_t namelen;
    char name[];            /* namelen bytes + NUL */
} kv_dentry;

struct kv_inode {
    uint64_t ino;
    uint64_t size;
    int64_t atime, mtime, ctime;
    uint32_t mode, uid, gid, nlink;
    uint32_t refs;          /* open references, all holders */
    uint32_t cap;
    uint64_t x;             /* dir: parent ino; device: rdev */
    union {
        uint8_t *flat;
        uint8_t **chunks;
        kv_dentry **slots;
    } u;
    uint8_t chunked;
    uint8_t held;           /* in the orphan list: waits for the holders */
};

typedef struct kv_session {
    uint64_t client, seq;
    int64_t last_time;
    uint8_t *reply;         /* NULL: reply not kept */
    uint32_t reply_len;
    struct kv_session *prev, *next;   /* expiry order: head = least recent */
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
    uint64_t *held;         /* sorted, distinct */
    size_t n;
} kv_holder;

/* An inode that lost its last name while holders existed. */
typedef struct kv_orphan {
    uint64_t ino, at;       /* at: index of the command that unlinked it */
} kv_orphan;

/* A value being uploaded in parts (UPLOAD_PART), not visible until its
 * UPLOAD_COMMIT.  data is an inode outside the inode table that only holds
 * the staged bytes. */
typedef struct kv_upload {
    uint64_t id;
    uint64_t total;         /* declared size of the whole value, 0 = not known yet */
    uint64_t got;           /* bytes of the distinct parts received */
    uint64_t reserved;      /* space it holds: total if declared, else got */
    int64_t last_time;      /* command time of the last part (expiry) */
    uint8_t *have;          /* bitmap: part i received */
    size_t have_cap;        /* bytes of have */
    kv_inode *data;
} kv_upload;

struct kv {
    kv_limits lim;
    bool lim_set;           /* lim comes from an applied SET_LIMITS */
    uint64_t applied;
    int64_t last_time;
    int64_t now;            /* time of the command being applied */
    int64_t sclock;         /* session time (kv.h, Sessions) */
    uint64_t next_ino;
    kv_inode *root;
    kv_inode **itab;        /* inode-number table */
    uint64_t icap, icount;
    uint64_t ndirs, nfiles, norphans;
    uint64_t bytes_used;
    uint64_t data_alloc;
    uint64_t meta_alloc;
    kv_session **stab;      /* session table by client id */
    uint64_t scap, scount;
    kv_session *shead, *stail;
    kv_ref *refs;
    size_t nrefs, refcap;
    kv_holder *holders;     /* sorted by id */
    size_t nholders;
    kv_orphan *orph;        /* in unlink order (ascending at) */
    size_t norph, orphcap;
    kv_upload *ups;         /* staged uploads, in the order they started */
    size_t nups;
    uint64_t staged;        /* sum of their reserved bytes (counts against the space limit) */
};

#define KV_REFS_MAX 65536

/* ---- hashing and tables ---------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

/* inode-number table */
static kv_inode *itab_get(const kv *k, uint64_t ino)
{
    if (!k->icap)
        return NULL;
    uint64_t m = k->icap - 1;
    for (uint64_t i = mix64(ino) & m;; i = (i + 1) & m) {
        kv_inode *n = k->itab[i];
        if (!n)
            return NULL;
        if (n->ino == ino)
            return n;
    }
}

static int itab_grow(kv *k)
{
    uint64_t nc = k->icap ? k->icap * 2 : 64;
    kv_inode **nt = calloc(nc, sizeof *nt);
    if (!nt)
        return -1;
    for (uint64_t i = 0; i < k->icap; i++) {
        kv_inode *n = k->itab[i];
        if (!n)
            continue;
        uint64_t j = mix64(n->ino) & (nc - 1);
        while (nt[j])
            j = (j + 1) & (nc - 1);
        nt[j] = n;
    }
    free(k->itab);
    k->meta_alloc += (nc - k->icap) * sizeof *nt;
    k->itab = nt;
    k->icap = nc;
    return 0;
}

/* 0, -1 out of memory, 1 duplicate */
static int itab_put(kv *k, kv_inode *n)
{
    if ((k->icount + 1) * 4 > k->icap * 3 && itab_grow(k) != 0)
        return -1;
    uint64_t m = k->icap - 1;
    uint64_t i = mix64(n->ino) & m;
    while (k->itab[i]) {
        if (k->itab[i]->ino == n->ino)
            return 1;
        i = (i + 1) & m;
    }
    k->itab[i] = n;
    k->icount++;
    return 0;
}

static void itab_del(kv *k, uint64_t ino)
{
    uint64_t m = k->icap - 1;
    uint64_t i = mix64(ino) & m;
    while (k->itab[i] && k->itab[i]->ino != ino)
        i = (i + 1) & m;
    if (!k->itab[i])
        return;
    k->itab[i] = NULL;
    k->icount--;
    /* backward-shift deletion keeps probe chains intact without tombstones */
    for (uint64_t j = (i + 1) & m; k->itab[j]; j = (j + 1) & m) {
        uint64_t h = mix64(k->itab[j]->ino) & m;
        /* move j to i if h is not cyclically in (i, j] */
        bool in = (i <= j) ? (h > i && h <= j) : (h > i || h <= j);
        if (!in) {
            k->itab[i] = k->itab[j];
            k->itab[j] = NULL;
            i = j;
        }
    }
}

/* ---- directories -------------------------------------------------------------- */

static bool is_dir(const kv_inode *n)
{
    return S_ISDIR(n->mode);
}
static bool is_reg(const kv_inode *n)
{
    return S_ISREG(n->mode);
}
static bool is_lnk(const kv_inode *n)
{
    return S_ISLNK(n->mode);
}

static kv_dentry **dir_find(const kv_inode *d, const char *name, size_t n)
{
    if (!d->cap)
        return NULL;
    uint64_t m = d->cap - 1;
    for (uint64_t i = hash_name(name, n) & m;; i = (i + 1) & m) {
        kv_dentry *e = d->u.slots[i];
        if (!e)
            return NULL;
        if (e->namelen == n && memcmp(e->name, name, n) == 0)
            return &d->u.slots[i];
    }
}

static int dir_grow(kv *k, kv_inode *d)
{
    uint32_t nc = d->cap ? d->cap * 2 : 4;
    if (nc < d->cap)
        return -1;
    kv_dentry **nt = calloc(nc, sizeof *nt);
    if (!nt)
        return -1;
    for (uint32_t i = 0; i < d->cap; i++) {
        kv_dentry *e = d->u.slots[i];
        if (!e)
            continue;
        uint64_t j = hash_name(e->name, e->namelen) & (nc - 1);
        while (nt[j])
            j = (j + 1) & (nc - 1);
        nt[j] = e;
    }
    free(d->u.slots);
    k->meta_alloc += (uint64_t)(nc - d->cap) * sizeof *nt;
    d->u.slots = nt;
    d->cap = nc;
    return 0;
}

/* Inserts a prepared dentry (its name must be absent).  0 or -1 (ENOMEM,
 * nothing changed). */
static int dir_insert(kv *k, kv_inode *d, kv_dentry *e)
{
    if ((d->size + 1) * 4 > (uint64_t)d->cap * 3 && dir_grow(k, d) != 0)
        return -1;
    uint64_t m = d->cap - 1;
    uint64_t i = hash_name(e->name, e->namelen) & m;
    while (d->u.slots[i])
        i = (i + 1) & m;
    d->u.slots[i] = e;
    d->size++;
    return 0;
}

/* Removes the entry at slot (returned, not freed). */
static kv_dentry *dir_remove(kv_inode *d, kv_dentry **slot)
{
    uint64_t m = d->cap - 1;
    uint64_t i = (uint64_t)(slot - d->u.slots);
    kv_dentry *e = d->u.slots[i];
    d->u.slots[i] = NULL;
    d->size--;
    for (uint64_t j = (i + 1) & m; d->u.slots[j]; j = (j + 1) & m) {
        kv_dentry *x = d->u.slots[j];
        uint64_t h = hash_name(x->name, x->namelen) & m;
        bool in = (i <= j) ? (h > i && h <= j) : (h > i || h <= j);
        if (!in) {
            d->u.slots[i] = x;
            d->u.slots[j] = NULL;
            i = j;
        }
    }
    return e;
}

static kv_dentry *dentry_new(kv *k, const char *name, size_t n, kv_inode *node)
{
    kv_dentry *e = malloc(sizeof *e + n + 1);
    if (!e)
        return NULL;
    e->node = node;
    e->namelen = (uint8_t)n;
    memcpy(e->name, name, n);
    e->name[n] = 0;
    k->meta_alloc += sizeof *e + n + 1;
    return e;
}

static void dentry_free(kv *k, kv_dentry *e)
{
    k->meta_alloc -= sizeof *e + e->namelen + 1;
    free(e);
}

/* ---- file data ---------------------------------------------------------------------- */

#define CH ((uint64_t)KV_CHUNK_SIZE)

static uint64_t nchunks(uint64_t size)
{
    return (size + CH - 1) / CH;
}

static void data_read(const kv_inode *n, uint64_t off, size_t len, uint8_t *dst)
{
    if (!n->chunked) {
        size_t have = off < n->cap ? (size_t)(n->cap - off) : 0;
        if (have > len)
            have = len;
        if (have)
            memcpy(dst, n->u.flat + off, have);
        if (len > have)
            memset(dst + have, 0, len - have);
        return;
    }
    while (len) {
        uint64_t ci = off / CH, co = off % CH;
        size_t piece = (size_t)(CH - co) < len ? (size_t)(CH - co) : len;
        if (ci < n->cap && n->u.chunks[ci])
            memcpy(dst, n->u.chunks[ci] + co, piece);
        else
            memset(dst, 0, piece);
        dst += piece;
        off += piece;
        len -= piece;
    }
}

static uint64_t data_blocks(const kv_inode *n)
{
    if (!is_reg(n) && !is_lnk(n))
        return 0;
    if (!n->chunked)
        return ((uint64_t)n->cap + 511) / 512;
    uint64_t c = 0;
    for (uint32_t i = 0; i < n->cap; i++)
        c += n->u.chunks[i] != NULL;
    return c * (CH / 512);
}

static void data_free(kv *k, kv_inode *n)
{
    if (n->chunked) {
        for (uint32_t i = 0; i < n->cap; i++)
            if (n->u.chunks[i]) {
                free(n->u.chunks[i]);
                k->data_alloc -= CH;
            }
        free(n->u.chunks);
        k->meta_alloc -= (uint64_t)n->cap * sizeof(uint8_t *);
    } else {
        free(n->u.flat);
        k->data_alloc -= n->cap;
    }
    n->u.flat = NULL;
    n->cap = 0;
    n->chunked = 0;
}

/* Makes [off, end) writable.  0 or -1 (ENOMEM; content unchanged, maybe more
 * zero-filled storage). */
static int data_prepare(kv *k, kv_inode *n, uint64_t off, uint64_t end)
{
    if (!n->chunked && end <= CH) {
        if (end <= n->cap)
            return 0;
        uint64_t nc = (uint64_t)n->cap * 2;
        if (nc > CH)
            nc = CH;
        if (n->cap == 0 || nc < end)
            nc = end;
        uint8_t *p = realloc(n->u.flat, nc);
        if (!p)
            return -1;
        memset(p + n->cap, 0, nc - n->cap);
        k->data_alloc += nc - n->cap;
        n->u.flat = p;
        n->cap = (uint32_t)nc;
        return 0;
    }
    if (!n->chunked) {
        /* convert: the flat buffer becomes chunk 0 */
        uint8_t **arr = calloc(1, sizeof *arr);
        if (!arr)
            return -1;
        if (n->cap) {
            uint8_t *c0 = realloc(n->u.flat, CH);
            if (!c0) {
                free(arr);
                return -1;
            }
            memset(c0 + n->cap, 0, CH - n->cap);
            k->data_alloc += CH - n->cap;
            arr[0] = c0;
        }
        k->meta_alloc += sizeof *arr;
        n->u.chunks = arr;
        n->cap = 1;
        n->chunked = 1;
    }
    uint64_t last = (end - 1) / CH;
    if (last >= UINT32_MAX)
        return -1;
    if (last >= n->cap) {
        uint64_t nc = (uint64_t)n->cap * 2;
        if (nc < last + 1)
            nc = last + 1;
        uint8_t **arr = realloc(n->u.chunks, nc * sizeof *arr);
        if (!arr)
            return -1;
        memset(arr + n->cap, 0, (nc - n->cap) * sizeof *arr);
        k->meta_alloc += (nc - n->cap) * sizeof *arr;
        n->u.chunks = arr;
        n->cap = (uint32_t)nc;
    }
    for (uint64_t i = off / CH; i <= last; i++) {
        if (n->u.chunks[i])
            continue;
        n->u.chunks[i] = calloc(1, CH);
        if (!n->u.chunks[i])
            return -1;
        k->data_alloc += CH;
    }
    return 0;
}

/* Writes len bytes at off (limits already checked).  0 or -1 (ENOMEM). */
static int data_write(kv *k, kv_inode *n, uint64_t off, const uint8_t *src, size_t len)
{
    if (len == 0)
        return 0;
    uint64_t end = off + len;
    if (data_prepare(k, n, off, end) != 0)
        return -1;
    if (!n->chunked) {
        memcpy(n->u.flat + off, src, len);
    } else {
        while (len) {
            uint64_t ci = off / CH, co = off % CH;
            size_t piece = (size_t)(CH - co) < len ? (size_t)(CH - co) : len;
            memcpy(n->u.chunks[ci] + co, src, piece);
            src += piece;
            off += piece;
            len -= piece;
        }
    }
    if (end > n->size) {
        k->bytes_used += end - n->size;
        n->size = end;
    }
    return 0;
}

static void data_truncate(kv *k, kv_inode *n, uint64_t size)
{
    if (size < n->size) {
        if (!n->chunked) {
            if (size < n->cap) {
                if (size == 0 || (n->cap > 256 && size < n->cap / 4)) {
                    uint8_t *p = size ? realloc(n->u.flat, size) : NULL;
                    if (size == 0)
                        free(n->u.flat);
                    if (size == 0 || p) {
                        k->data_alloc -= n->cap - size;
                        n->u.flat = p;
                        n->cap = (uint32_t)size;
                    } else {
                        memset(n->u.flat + size, 0, n->cap - size);
                    }
                } else {
                    memset(n->u.flat + size, 0, n->cap - size);
                }
            }
        } else {
            uint64_t keep = nchunks(size);
            for (uint64_t i = keep; i < n->cap; i++)
                if (n->u.chunks[i]) {
                    free(n->u.chunks[i]);
                    n->u.chunks[i] = NULL;
                    k->data_alloc -= CH;
                }
            if (size % CH && keep - 1 < n->cap && n->u.chunks[keep - 1])
                memset(n->u.chunks[keep - 1] + size % CH, 0, CH - size % CH);
        }
        k->bytes_used -= n->size - size;
    } else {
        k->bytes_used += size - n->size;
    }
    n->size = size;
}

/* Replaces the whole content.  0 or -1 (ENOMEM, old content kept). */
static int data_set(kv *k, kv_inode *n, const uint8_t *src, size_t len)
{
    kv_inode t;
    memset(&t, 0, sizeof t);
    t.mode = n->mode;
    if (len <= CH) {
        if (len) {
            t.u.flat = malloc(len);
            if (!t.u.flat)
                return -1;
            memcpy(t.u.flat, src, len);
            t.cap = (uint32_t)len;
            k->data_alloc += len;
        }
        t.size = len;
    } else {
        uint64_t saved = k->bytes_used;
        if (data_write(k, &t, 0, src, len) != 0) {
            data_free(k, &t);
            k->bytes_used = saved;
            return -1;
        }
        k->bytes_used = saved;
    }
    data_free(k, n);
    k->bytes_used = k->bytes_used - n->size + len;
    n->u = t.u;
    n->cap = t.cap;
    n->chunked = t.chunked;
    n->size = len;
    return 0;
}

/* EFBIG / ENOSPC for a regular file growing to newsize, else 0. */
static int check_size(const kv *k, const kv_inode *n, uint64_t newsize)
{
    if (newsize > k->lim.max_file_size)
        return EFBIG;
    uint64_t cur = n ? n->size : 0;
    if (k->lim.max_total_bytes && newsize > cur &&
        k->bytes_used + (newsize - cur) > k->lim.max_total_bytes)
        return ENOSPC;
    return 0;
}

/* ---- inodes --------------------------------------------------------------------------- */

static void inode_destroy(kv *k, kv_inode *n)
{
    if (is_dir(n)) {
        for (uint32_t i = 0; i < n->cap; i++)
            if (n->u.slots[i])
                dentry_free(k, n->u.slots[i]);
        free(n->u.slots);
        k->meta_alloc -= (uint64_t)n->cap * sizeof(kv_dentry *);
        k->ndirs--;
    } else {
        if (is_reg(n))
            k->nfiles--;
        if (is_reg(n) || is_lnk(n)) {
            k->bytes_used -= n->size;
            data_free(k, n);
        }
    }
    k->meta_alloc -= sizeof *n;
    free(n);
}

/* status, *out = a new unlinked inode (nlink 0; registered in the table) */
static int inode_new(kv *k, uint32_t mode, uint32_t uid, uint32_t gid, kv_inode **out)
{
    if (k->lim.max_inodes && k->icount >= k->lim.max_inodes)
        return ENOSPC;
    kv_inode *n = calloc(1, sizeof *n);
    if (!n)
        return -1;
    n->ino = k->next_ino;
    n->mode = mode;
    n->uid = uid;
    n->gid = gid;
    n->atime = n->mtime = n->ctime = k->now;
    if (itab_put(k, n) != 0) {
        free(n);
        return -1;
    }
    k->next_ino++;
    k->meta_alloc += sizeof *n;
    if (S_ISDIR(mode)) {
        k->ndirs++;
        n->nlink = 2;
    } else if (S_ISREG(mode))
        k->nfiles++;
    *out = n;
    return 0;
}

/* Called when an inode lost a link: frees it once nothing names or holds it.
 * While holders exist, a non-directory becomes an orphan that waits for their
 * reports (the sweep frees it).  0, or -1 out of memory (then it is freed). */
static int inode_unref_check(kv *k, kv_inode *n)
{
    if (n->nlink > 0)
        return 0;
    int rc = 0;
    if (!is_dir(n) && k->nholders > 0 && !n->held) {
        if (k->norph == k->orphcap) {
            size_t nc = k->orphcap ? k->orphcap * 2 : 16;
            kv_orphan *a = realloc(k->orph, nc * sizeof *a);
            if (a) {
                k->orph = a;
                k->orphcap = nc;
            } else {
                rc = -1;
            }
        }
        if (rc == 0) {
            k->orph[k->norph++] = (kv_orphan){n->ino, k->applied};
            n->held = 1;
        }
    }
    if (n->refs > 0 || n->held) {
        k->norphans++;
        return rc;
    }
    itab_del(k, n->ino);
    inode_destroy(k, n);
    return rc;
}

/* Frees an orphan once neither references nor the holders keep it. */
static void orphan_release(kv *k, kv_inode *n)
{
    if (n->nlink > 0 || n->refs > 0 || n->held)
        return;
    k->norphans--;
    itab_del(k, n->ino);
    inode_destroy(k, n);
}

/* Clears the set-id bits of a regular file changed by an unprivileged writer
 * (kv.h "Set-id bits"). */
static void kill_privs(kv_inode *n, const kv_op *op)
{
    if (!is_reg(n) || op->cuid == 0)
        return;
    n->mode &= ~(uint32_t)S_ISUID;
    if ((n->mode & S_ISGID) && ((n->mode & S_IXGRP) || op->cgid != n->gid))
        n->mode &= ~(uint32_t)S_ISGID;
}

static void touch_dir(kv *k, kv_inode *d)
{
    d->mtime = d->ctime = k->now;
}

/* Adds name -> child in d.  0 or -1 (ENOMEM, nothing changed). */
static int link_child(kv *k, kv_inode *d, const char *name, size_t nlen, kv_inode *child)
{
    kv_dentry *e = dentry_new(k, name, nlen, child);
    if (!e)
        return -1;
    if (dir_insert(k, d, e) != 0) {
        dentry_free(k, e);
        return -1;
    }
    if (is_dir(child)) {
        d->nlink++;
        child->x = d->ino;
    } else {
        child->nlink++;
    }
    touch_dir(k, d);
    return 0;
}

/* Removes the entry at slot from d and drops the link it held.  0 or -1. */
static int unlink_slot(kv *k, kv_inode *d, kv_dentry **slot)
{
    kv_dentry *e = dir_remove(d, slot);
    kv_inode *c = e->node;
    dentry_free(k, e);
    touch_dir(k, d);
    c->ctime = k->now;
    if (is_dir(c)) {
        d->nlink--;
        c->nlink = 0;
        c->x = 0;
    } else {
        c->nlink--;
    }
    return inode_unref_check(k, c);
}

/* ---- paths ------------------------------------------------------------------------------ */

/* Checks a whole path; then *p, *len describe it without the leading "/". */
static int path_check(const char **p, size_t *len)
{
    if (*len > KV_PATH_MAX)
        return ENAMETOOLONG;
    if (*len && memchr(*p, 0, *len))
        return EINVAL;
    if (*len && (*p)[0] == '/') {
        (*p)++;
        (*len)--;
    }
    const char *s = *p, *end = *p + *len;
    while (s < end) {
        const char *q = memchr(s, '/', (size_t)(end - s));
        size_t cl = q ? (size_t)(q - s) : (size_t)(end - s);
        if (cl == 0)
            return EINVAL;
        if ((cl == 1 && s[0] == '.') || (cl == 2 && s[0] == '.' && s[1] == '.'))
            return EINVAL;
        if (cl > KV_NAME_MAX)
            return ENAMETOOLONG;
        if (!q)
            break;
        s = q + 1;
        if (s == end)
            return EINVAL;    /* trailing "/" */
    }
    return 0;
}

/* Resolves a checked path's directory part.  With mk, missing directories are
 * created (mode 0755).  *name = NULL for the root. */
static int walk_parent(kv *k, kv_inode *start, const char *p, size_t len, bool mk, uint32_t uid,
                       uint32_t gid, kv_inode **dir, const char **name, size_t *nlen)
{
    kv_inode *d = start;
    *dir = d;
    *name = NULL;
    *nlen = 0;
    if (len == 0)
        return 0;
    if (!is_dir(d))
        return ENOTDIR;
    const char *s = p, *end = p + len;
    for (;;) {
        const char *q = memchr(s, '/', (size_t)(end - s));
        if (!q)
            break;
        size_t cl = (size_t)(q - s);
        kv_dentry **e = dir_find(d, s, cl);
        if (!e) {
            if (!mk)
                return ENOENT;
            kv_inode *nd;
            int st = inode_new(k, S_IFDIR | 0755, uid, gid, &nd);
            if (st)
                return st;
            if (link_child(k, d, s, cl, nd) != 0) {
                itab_del(k, nd->ino);
                inode_destroy(k, nd);
                return -1;
            }
            d = nd;
        } else {
            d = (*e)->node;
            if (!is_dir(d))
                return ENOTDIR;
        }
        s = q + 1;
    }
    *dir = d;
    *name = s;
    *nlen = (size_t)(end - s);
    return 0;
}

/* The inode a path starts from: dir, or the root for 0. */
static int start_of(const kv *k, uint64_t dir, kv_inode **out)
{
    *out = dir ? itab_get(k, dir) : k->root;
    return *out ? 0 : ENOENT;
}

/* Resolves (dir, path) to its directory and last name; *name = NULL when the
 * path is empty (*dir is then the start inode itself, of any type). */
static int resolve_parent(const kv *k, uint64_t dir, const char *p, size_t len, kv_inode **d,
                          const char **name, size_t *nlen)
{
    int st = path_check(&p, &len);
    if (st)
        return st;
    kv_inode *s;
    if ((st = start_of(k, dir, &s)))
        return st;
    return walk_parent((kv *)k, s, p, len, false, 0, 0, d, name, nlen);
}

static int resolve(const kv *k, uint64_t dir, const char *p, size_t len, kv_inode **out)
{
    kv_inode *d;
    const char *name;
    size_t nl;
    int st = resolve_parent(k, dir, p, len, &d, &name, &nl);
    if (st)
        return st;
    if (!name) {
        *out = d;
        return 0;
    }
    kv_dentry **e = dir_find(d, name, nl);
    if (!e)
        return ENOENT;
    *out = (*e)->node;
    return 0;
}

/* The inode an [ino] op addresses. */
static int op_node(const kv *k, const kv_op *op, kv_inode **out)
{
    if (op->ino) {
        *out = itab_get(k, op->ino);
        return *out ? 0 : ENOENT;
    }
    return resolve(k, op->dir, op->path, op->path_len, out);
}

static void attr_of(const kv_inode *n, kv_attr *a)
{
    memset(a, 0, sizeof *a);
    a->ino = n->ino;
    a->mode = n->mode;
    a->nlink = n->nlink;
    a->uid = n->uid;
    a->gid = n->gid;
    a->rdev = (S_ISCHR(n->mode) || S_ISBLK(n->mode)) ? n->x : 0;
    a->size = n->size;
    a->blocks = data_blocks(n);
    a->atime_ns = n->atime;
    a->mtime_ns = n->mtime;
    a->ctime_ns = n->ctime;
}

/* ---- commands that change the state ------------------------------------------------- */

/* Moves the staged content of an upload into n (replacing n's), without
 * copying. */
static void data_take(kv *k, kv_inode *n, kv_inode *staged)
{
    data_free(k, n);
    k->bytes_used = k->bytes_used - n->size + staged->size;
    n->u = staged->u;
    n->cap = staged->cap;
    n->chunked = staged->chunked;
    n->size = staged->size;
    staged->u.flat = NULL;
    staged->cap = 0;
    staged->chunked = 0;
    staged->size = 0;
}

static int put_content(kv *k, kv_inode *n, const kv_op *op, kv_inode *staged)
{
    if (!staged)
        return data_set(k, n, op->data, op->data_len);
    data_take(k, n, staged);
    return 0;
}

/* Each returns 0, a positive status, or -1 (out of memory).  *res is the inode
 * whose attributes the reply carries (NULL: status only). */

/* PUT, APPEND; with staged (UPLOAD_COMMIT) a PUT whose content is taken
 * from the staged inode instead of op->data. */
static int op_put_ex(kv *k, const kv_op *op, kv_inode **res, bool append, kv_inode *staged)
{
    kv_inode *n = NULL;
    uint64_t dlen = staged ? staged->size : op->data_len;
    if (append && op->ino) {
        n = itab_get(k, op->ino);
        if (!n)
            return ENOENT;
    } else {
        const char *p = op->path;
        size_t len = op->path_len;
        int st = path_check(&p, &len);
        if (st)
            return st;
        if (dlen > k->lim.max_file_size)
            return EFBIG;
        kv_inode *d, *start;
        const char *name;
        size_t nl;
        if ((st = start_of(k, op->dir, &start)))
            return st;
        st = walk_parent(k, start, p, len, true, op->uid, op->gid, &d, &name, &nl);
        if (st)
            return st;
        kv_dentry **e = name ? dir_find(d, name, nl) : NULL;
        if (!name) {
            n = d;   /* the start inode itself */
        } else if (!e) {
            if ((st = check_size(k, NULL, dlen)))
                return st;
            uint32_t mode = op->mode & 07777;
            if ((st = inode_new(k, S_IFREG | (mode ? mode : 0644), op->uid, op->gid, &n)))
                return st;
            if (put_content(k, n, op, staged) != 0 ||
                link_child(k, d, name, nl, n) != 0) {
                itab_del(k, n->ino);
                inode_destroy(k, n);
                return -1;
            }
            *res = n;
            return 0;
        } else {
            n = (*e)->node;
        }
    }
    if (is_dir(n))
        return EISDIR;
    if (!is_reg(n))
        return EINVAL;
    int st;
    if (append) {
        if (n->size > k->lim.max_file_size || op->data_len > k->lim.max_file_size - n->size)
            return EFBIG;
        if ((st = check_size(k, n, n->size + op->data_len)))
            return st;
        if (data_write(k, n, n->size, op->data, op->data_len) != 0)
            return -1;
    } else {
        if ((st = check_size(k, n, dlen)))
            return st;
        if (put_content(k, n, op, staged) != 0)
            return -1;
    }
    kill_privs(n, op);
    n->mtime = n->ctime = k->now;
    *res = n;
    return 0;
}

/* PUT_IF: the whole content of inode op->ino, if its version (ctime) is
 * still op->off. */
static int op_put_if(kv *k, const kv_op *op, kv_inode **res)
{
    kv_inode *n = itab_get(k, op->ino);
    if (!n)
        return ENOENT;
    if (is_dir(n))
        return EISDIR;
    if (!is_reg(n))
        return EINVAL;
    if ((uint64_t)n->ctime != op->off)
        return ECANCELED;
    int st = check_size(k, n, op->data_len);
    if (st)
        return st;
    if (data_set(k, n, op->data, op->data_len) != 0)
        return -1;
    kill_privs(n, op);
    n->mtime = n->ctime = k->now;
    *res = n;
    return 0;
}

static int op_put(kv *k, const kv_op *op, kv_inode **res, bool append)
{
    return op_put_ex(k, op, res, append, NULL);
}

static int op_del(kv *k, const kv_op *op, int kind)
{
    kv_inode *d;
    const char *name;
    size_t nl;
    int st = resolve_parent(k, op->dir, op->path, op->path_len, &d, &name, &nl);
    if (st)
        return st;
    if (!name)
        return d == k->root ? (kind == KV_OP_UNLINK ? EISDIR : EBUSY) : EINVAL;
    kv_dentry **e = dir_find(d, name, nl);
    if (!e)
        return ENOENT;
    kv_inode *c = (*e)->node;
    if (is_dir(c)) {
        if (kind == KV_OP_UNLINK)
            return EISDIR;
        if (c->size)
            return ENOTEMPTY;
    } else if (kind == KV_OP_RMDIR) {
        return ENOTDIR;
    }
    return unlink_slot(k, d, e);
}

/* CREATE, MKNOD, MKDIR, SYMLINK: a new name in an existing directory. */
static int op_make(kv *k, const kv_op *op, kv_inode **res)
{
    uint32_t mode;
    switch (op->type) {
    case KV_OP_CREATE: mode = S_IFREG | (op->mode & 07777); break;
    case KV_OP_MKDIR: mode = S_IFDIR | (op->mode & 07777); break;
    case KV_OP_SYMLINK:
        if (op->data_len == 0)
            return ENOENT;
        if (op->data_len > KV_PATH_MAX)
            return ENAMETOOLONG;
        if (memchr(op->data, 0, op->data_len))
            return EINVAL;
        mode = S_IFLNK | 0777;
        break;
    default: /* MKNOD */
        switch (op->mode & S_IFMT) {
        case 0: mode = S_IFREG | (op->mode & 07777); break;
        case S_IFREG: case S_IFIFO: case S_IFCHR: case S_IFBLK: case S_IFSOCK:
            mode = op->mode & (S_IFMT | 07777);
            break;
        default: return EINVAL;
        }
    }
    kv_inode *d;
    const char *name;
    size_t nl;
    int st = resolve_parent(k, op->dir, op->path, op->path_len, &d, &name, &nl);
    if (st)
        return st;
    if (!name && d != k->root)
        return EINVAL;   /* a new name is needed */
    kv_dentry **e = name ? dir_find(d, name, nl) : NULL;
    kv_inode *n = name ? (e ? (*e)->node : NULL) : d;
    if (n) {
        if (op->type != KV_OP_CREATE || (op->flags & KV_CREATE_EXCL))
            return EEXIST;
        if (is_dir(n))
            return EISDIR;
        if ((op->flags & KV_CREATE_TRUNC) && is_reg(n)) {
            data_truncate(k, n, 0);
            n->mtime = n->ctime = k->now;
        }
        *res = n;
        return 0;
    }
    if (S_ISLNK(mode) && (st = check_size(k, NULL, op->data_len)))
        return st == EFBIG ? ENAMETOOLONG : st;
    if ((st = inode_new(k, mode, op->uid, op->gid, &n)))
        return st;
    if (S_ISCHR(mode) || S_ISBLK(mode))
        n->x = op->rdev;
    if (S_ISLNK(mode)) {
        n->u.flat = malloc(op->data_len);
        if (!n->u.flat) {
            itab_del(k, n->ino);
            inode_destroy(k, n);
            return -1;
        }
        memcpy(n->u.flat, op->data, op->data_len);
        n->cap = (uint32_t)op->data_len;
        n->size = op->data_len;
        k->data_alloc += op->data_len;
        k->bytes_used += op->data_len;
    }
    if (link_child(k, d, name, nl, n) != 0) {
        itab_del(k, n->ino);
        if (is_dir(n))
            n->nlink = 0;
        inode_destroy(k, n);
        return -1;
    }
    *res = n;
    return 0;
}

static int op_write_at(kv *k, const kv_op *op, kv_inode **res)
{
    kv_inode *n;
    int st = op_node(k, op, &n);
    if (st)
        return st;
    if (is_dir(n))
        return EISDIR;
    if (!is_reg(n))
        return EINVAL;
    if (op->off > k->lim.max_file_size || op->data_len > k->lim.max_file_size - op->off)
        return EFBIG;
    uint64_t end = op->off + op->data_len;
    if (end > n->size && (st = check_size(k, n, end)))
        return st;
    if (op->data_len) {
        if (data_write(k, n, op->off, op->data, op->data_len) != 0)
            return -1;
        kill_privs(n, op);
        n->mtime = n->ctime = k->now;
    }
    *res = n;
    return 0;
}

static int set_size(kv *k, kv_inode *n, uint64_t size)
{
    if (is_dir(n))
        return EISDIR;
    if (!is_reg(n))
        return EINVAL;
    int st = check_size(k, n, size);
    if (st)
        return st;
    data_truncate(k, n, size);
    return 0;
}

static int op_truncate(kv *k, const kv_op *op, kv_inode **res)
{
    kv_inode *n;
    int st = op_node(k, op, &n);
    if (st)
        return st;
    if ((st = set_size(k, n, op->len)))
        return st;
    kill_privs(n, op);
    n->mtime = n->ctime = k->now;
    *res = n;
    return 0;
}

static int op_setattr(kv *k, const kv_op *op, kv_inode **res)
{
    kv_inode *n;
    int st = op_node(k, op, &n);
    if (st)
        return st;
    uint32_t v = op->flags;
    if (v & ~(uint32_t)63)
        return EINVAL;
    if (v & KV_SET_SIZE) {
        if ((st = set_size(k, n, op->len)))
            return st;
        if (!(v & KV_SET_MODE))
            kill_privs(n, op);
        n->mtime = k->now;
    }
    if (v & KV_SET_MODE)
        n->mode = (n->mode & S_IFMT) | (op->mode & 07777);
    if (v & KV_SET_UID)
        n->uid = op->uid;
    if (v & KV_SET_GID)
        n->gid = op->gid;
    if (v & KV_SET_ATIME)
        n->atime = op->atime_ns == KV_TIME_NOW ? k->now : op->atime_ns;
    if (v & KV_SET_MTIME)
        n->mtime = op->mtime_ns == KV_TIME_NOW ? k->now : op->mtime_ns;
    n->ctime = k->now;
    *res = n;
    return 0;
}

static int op_link(kv *k, const kv_op *op, kv_inode **res)
{
    kv_inode *s;
    int st = resolve(k, op->dir, op->path, op->path_len, &s);
    if (st)
        return st;
    if (is_dir(s))
        return EPERM;
    if (s->nlink == 0)
        return ENOENT;   /* an orphan gets no new name */
    kv_inode *d;
    const char *name;
    size_t nl;
    if ((st = resolve_parent(k, op->dir2, op->path2, op->path2_len, &d, &name, &nl)))
        return st;
    if (!name || dir_find(d, name, nl))
        return EEXIST;
    if (s->nlink >= UINT32_MAX - 1)
        return EMLINK;
    if (link_child(k, d, name, nl, s) != 0)
        return -1;
    s->ctime = k->now;
    *res = s;
    return 0;
}

/* Is a (a directory) d itself or an ancestor of d?  Walks parent numbers:
 * O(depth), iterative. */
static bool is_ancestor(const kv *k, const kv_inode *a, const kv_inode *d)
{
    for (;;) {
        if (d == a)
            return true;
        if (d->ino == KV_ROOT_INO)
            return false;
        d = itab_get(k, d->x);
        if (!d)
            return false;
    }
}

static int op_rename(kv *k, const kv_op *op, kv_inode **res)
{
    uint32_t fl = op->flags;
    if ((fl & ~3u) || fl == 3u)
        return EINVAL;
    kv_inode *sd, *dd;
    const char *sn, *dn;
    size_t sl, dl;
    int st = resolve_parent(k, op->dir, op->path, op->path_len, &sd, &sn, &sl);
    if (st)
        return st;
    if ((st = resolve_parent(k, op->dir2, op->path2, op->path2_len, &dd, &dn, &dl)))
        return st;
    if (!sn || !dn)
        return (sd == k->root && !sn) || (dd == k->root && !dn) ? EBUSY : EINVAL;
    if (!is_dir(sd) || !is_dir(dd))
        return ENOTDIR;
    kv_dentry **se = dir_find(sd, sn, sl);
    if (!se)
        return ENOENT;
    kv_inode *s = (*se)->node;
    kv_dentry **de = dir_find(dd, dn, dl);
    kv_inode *t = de ? (*de)->node : NULL;
    if ((fl & KV_RENAME_EXCHANGE) && !t)
        return ENOENT;
    if ((fl & KV_RENAME_NOREPLACE) && t)
        return EEXIST;
    if (t == s) {
        *res = s;
        return 0;   /* same inode: nothing to do (rename(2)) */
    }
    if (is_dir(s) && is_ancestor(k, s, dd))
        return EINVAL;
    if (fl & KV_RENAME_EXCHANGE) {
        if (is_dir(t) && is_ancestor(k, t, sd))
            return EINVAL;
        (*se)->node = t;
        (*de)->node = s;
        if (is_dir(s))
            s->x = dd->ino;
        if (is_dir(t))
            t->x = sd->ino;
        if (sd != dd && is_dir(s) != is_dir(t)) {
            if (is_dir(s)) {
                sd->nlink--;
                dd->nlink++;
            } else {
                dd->nlink--;
                sd->nlink++;
            }
        }
        touch_dir(k, sd);
        touch_dir(k, dd);
        s->ctime = t->ctime = k->now;
        *res = s;
        return 0;
    }
    if (t) {
        if (is_dir(s) && !is_dir(t))
            return ENOTDIR;
        if (!is_dir(s) && is_dir(t))
            return EISDIR;
        if (is_dir(t) && t->size)
            return ENOTEMPTY;
        /* the target's entry now names s; then s's old entry goes */
        (*de)->node = s;
        if (is_dir(t)) {
            dd->nlink--;
            t->nlink = 0;
            t->x = 0;
        } else {
            t->nlink--;
            t->ctime = k->now;
        }
        dentry_free(k, dir_remove(sd, se));
        if (inode_unref_check(k, t) != 0)
            return -1;
    } else {
        kv_dentry *ne = dentry_new(k, dn, dl, s);
        if (!ne)
            return -1;
        if (dir_insert(k, dd, ne) != 0) {
            dentry_free(k, ne);
            return -1;
        }
        se = dir_find(sd, sn, sl);   /* the insert may have moved it */
        assert(se != NULL);
        dentry_free(k, dir_remove(sd, se));
    }
    if (is_dir(s)) {
        s->x = dd->ino;
        if (sd != dd) {
            sd->nlink--;
            dd->nlink++;
        }
    }
    touch_dir(k, sd);
    touch_dir(k, dd);
    s->ctime = k->now;
    *res = s;
    return 0;
}

/* ---- open references --------------------------------------------------------------- */

static kv_ref *ref_find(const kv *k, uint64_t holder, uint64_t ino)
{
    for (size_t i = 0; i < k->nrefs; i++)
        if (k->refs[i].holder == holder && k->refs[i].ino == ino)
            return &k->refs[i];
    return NULL;
}

/* Removes ref i (swap with the last: deterministic, the array is state). */
static void ref_remove_at(kv *k, size_t i)
{
    k->refs[i] = k->refs[--k->nrefs];
}

static void inode_drop_refs(kv *k, uint64_t ino, uint32_t count)
{
    kv_inode *n = itab_get(k, ino);
    if (!n)
        return;
    n->refs -= count;
    orphan_release(k, n);
}

static int op_open_ref(kv *k, const kv_op *op, kv_inode **res)
{
    kv_inode *n;
    int st = op_node(k, op, &n);
    if (st)
        return st;
    if (n->refs == UINT32_MAX)
        return EMFILE;
    kv_ref *r = ref_find(k, op->holder, n->ino);
    if (!r) {
        if (k->nrefs >= KV_REFS_MAX)
            return EMFILE;
        if (k->nrefs == k->refcap) {
            size_t nc = k->refcap ? k->refcap * 2 : 16;
            kv_ref *a = realloc(k->refs, nc * sizeof *a);
            if (!a)
                return -1;
            k->refs = a;
            k->refcap = nc;
        }
        r = &k->refs[k->nrefs++];
        r->holder = op->holder;
        r->ino = n->ino;
        r->count = 0;
    }
    r->count++;
    n->refs++;
    *res = n;
    return 0;
}

static int op_close_ref(kv *k, const kv_op *op)
{
    kv_ref *r = ref_find(k, op->holder, op->ino);
    if (!r)
        return ENOENT;
    uint64_t ino = r->ino;
    if (--r->count == 0)
        ref_remove_at(k, (size_t)(r - k->refs));
    inode_drop_refs(k, ino, 1);
    return 0;
}

static int op_release_holder(kv *k, const kv_op *op)
{
    size_t j = 0;
    for (size_t i = 0; i < k->nrefs; i++) {
        kv_ref r = k->refs[i];
        if (r.holder == op->holder)
            inode_drop_refs(k, r.ino, r.count);
        else
            k->refs[j++] = r;
    }
    k->nrefs = j;
    return 0;
}

/* ---- holders and orphans (kv.h "Open files") ----------------------------------------- */

static kv_holder *holder_find(const kv *k, uint64_t id, size_t *pos)
{
    size_t lo = 0, hi = k->nholders;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (k->holders[mid].id == id) {
            if (pos)
                *pos = mid;
            return &k->holders[mid];
        }
        if (k->holders[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return NULL;
}

static bool u64_in(const uint64_t *a, size_t n, uint64_t v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] == v)
            return true;
        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static void holder_remove_at(kv *k, size_t i)
{
    free(k->holders[i].held);
    memmove(&k->holders[i], &k->holders[i + 1], (k->nholders - i - 1) * sizeof *k->holders);
    k->nholders--;
}

/* Drops holders not heard from for KV_HOLDER_TTL_NS, then frees every orphan
 * that all remaining holders have covered and none lists. */
static void orphans_sweep(kv *k)
{
    for (size_t i = 0; i < k->nholders;) {
        if (k->now - k->holders[i].time > (int64_t)KV_HOLDER_TTL_NS)
            holder_remove_at(k, i);
        else
            i++;
    }
    size_t j = 0;
    for (size_t i = 0; i < k->norph; i++) {
        kv_orphan o = k->orph[i];
        bool keep = false;
        for (size_t h = 0; h < k->nholders && !keep; h++) {
            const kv_holder *x = &k->holders[h];
            keep = x->covered < o.at || u64_in(x->held, x->n, o.ino);
        }
        if (keep) {
            k->orph[j++] = o;
            continue;
        }
        kv_inode *n = itab_get(k, o.ino);
        if (n) {
            n->held = 0;
            orphan_release(k, n);
        }
    }
    k->norph = j;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int op_hold(kv *k, const kv_op *op)
{
    if (op->holder == 0 || (op->flags & ~KV_HOLD_GONE) || op->data_len % 8 ||
        op->data_len / 8 > KV_HOLD_MAX || ((op->flags & KV_HOLD_GONE) && op->data_len))
        return EINVAL;
    size_t pos;
    kv_holder *h = holder_find(k, op->holder, &pos);
    if (op->flags & KV_HOLD_GONE) {
        if (h)
            holder_remove_at(k, pos);
        orphans_sweep(k);
        return 0;
    }
    size_t n = op->data_len / 8;
    uint64_t *held = NULL;
    if (n) {
        held = malloc(n * sizeof *held);
        if (!held)
            return -1;
        for (size_t i = 0; i < n; i++)
            held[i] = byte_get64(op->data + i * 8);
        qsort(held, n, sizeof *held, cmp_u64);
        size_t m = 1;
        for (size_t i = 1; i < n; i++)
            if (held[i] != held[m - 1])
                held[m++] = held[i];
        n = m;
    }
    if (!h) {
        if (k->nholders >= KV_HOLDERS_MAX) {
            free(held);
            return ENOSPC;
        }
        kv_holder *a = realloc(k->holders, (k->nholders + 1) * sizeof *a);
        if (!a) {
            free(held);
            return -1;
        }
        k->holders = a;
        memmove(&a[pos + 1], &a[pos], (k->nholders - pos) * sizeof *a);
        k->nholders++;
        h = &a[pos];
        memset(h, 0, sizeof *h);
        h->id = op->holder;
    }
    free(h->held);
    h->held = held;
    h->n = n;
    h->covered = op->off;
    h->time = k->now;
    orphans_sweep(k);
    return 0;
}

void kv_holder_get(const kv *k, uint64_t holder, kv_holder_view *v)
{
    memset(v, 0, sizeof *v);
    const kv_holder *h = holder_find(k, holder, NULL);
    uint64_t last = k->norph ? k->orph[k->norph - 1].at : 0;
    if (h) {
        v->known = true;
        v->covered = h->covered;
        v->time_ns = h->time;
        v->held = h->held;
        v->n_held = h->n;
        v->uncovered = k->norph > 0 && last > h->covered;
    } else {
        v->uncovered = k->norph > 0;
    }
}

bool kv_is_orphan(const kv *k, uint64_t ino)
{
    const kv_inode *n = itab_get(k, ino);
    return n && n->nlink == 0;
}

/* ---- reads ------------------------------------------------------------------------------ */

static int reply_simple(int st, const kv_inode *n, uint8_t **out, size_t *len)
{
    kv_reply r;
    memset(&r, 0, sizeof r);
    r.status = st;
    if (st == 0 && n) {
        r.has = KV_R_ATTR;
        attr_of(n, &r.attr);
    }
    return kv_reply_encode(&r, out, len);
}

/* attr + data_len bytes of n at off */
static int reply_data(const kv_inode *n, uint64_t off, size_t dlen, uint8_t **out, size_t *len)
{
    kv_reply r;
    memset(&r, 0, sizeof r);
    r.has = KV_R_ATTR | KV_R_DATA;
    attr_of(n, &r.attr);
    r.data_len = dlen;
    uint8_t *slot;
    if (kv_reply_encode_ex(&r, out, len, &slot) != 0)
        return -1;
    if (dlen) {
        if (is_reg(n))
            data_read(n, off, dlen, slot);
        else
            memcpy(slot, n->u.flat + off, dlen);
    }
    return 0;
}

static int cmp_dentry(const void *a, const void *b)
{
    const kv_dentry *x = *(const kv_dentry *const *)a, *y = *(const kv_dentry *const *)b;
    size_t n = x->namelen < y->namelen ? x->namelen : y->namelen;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    return (int)x->namelen - (int)y->namelen;
}

/* The entries of d sorted by name (malloc'ed array; NULL when empty). */
static kv_dentry **dir_sorted(const kv_inode *d, int *oom)
{
    *oom = 0;
    if (!d->size)
        return NULL;
    kv_dentry **a = malloc(d->size * sizeof *a);
    if (!a) {
        *oom = 1;
        return NULL;
    }
    size_t j = 0;
    for (uint32_t i = 0; i < d->cap; i++)
        if (d->u.slots[i])
            a[j++] = d->u.slots[i];
    qsort(a, j, sizeof *a, cmp_dentry);
    return a;
}

static int read_readdir(const kv *k, const kv_op *op, uint8_t **out, size_t *len)
{
    kv_inode *d;
    int st = resolve(k, op->dir, op->path, op->path_len, &d);
    if (st)
        return reply_simple(st, NULL, out, len);
    if (!is_dir(d))
        return reply_simple(ENOTDIR, NULL, out, len);
    int oom;
    kv_dentry **a = dir_sorted(d, &oom);
    if (oom)
        return -1;
    kv_dirent *ents = d->size ? malloc(d->size * sizeof *ents) : NULL;
    if (d->size && !ents) {
        free(a);
        return -1;
    }
    for (uint64_t i = 0; i < d->size; i++) {
        ents[i].name = a[i]->name;
        ents[i].ino = a[i]->node->ino;
        ents[i].mode = a[i]->node->mode;
    }
    kv_reply r;
    memset(&r, 0, sizeof r);
    r.has = KV_R_ATTR | KV_R_ENTRIES;
    attr_of(d, &r.attr);
    r.entries = ents;
    r.n_entries = (size_t)d->size;
    int rc = kv_reply_encode(&r, out, len);
    free(ents);
    free(a);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* LIST: an iterative walk (trees may be deeper than any recursion limit);
 * a subtree is entered only if a path in it can start with the prefix. */
static int read_list(const kv *k, const kv_op *op, uint8_t **out, size_t *len)
{
    const char *pre = op->path;
    size_t pl = op->path_len;
    if (pl && pre[0] == '/') {
        pre++;
        pl--;
    }
    struct frame { const kv_inode *d; size_t plen; uint32_t i; };
    struct frame *stack = NULL;
    size_t sn = 0, scap = 0;
    bytes_w path = {0}, strs = {0};
    size_t *offs = NULL, no = 0, ocap = 0;
    int rc = -1;
#define PUSH(dir, l)                                                            \
    do {                                                                        \
        if (sn == scap) {                                                       \
            size_t nc_ = scap ? scap * 2 : 32;                                  \
            struct frame *ns_ = realloc(stack, nc_ * sizeof *ns_);              \
            if (!ns_) goto done;                                                \
            stack = ns_;                                                        \
            scap = nc_;                                                         \
        }                                                                       \
        stack[sn].d = (dir);                                                    \
        stack[sn].plen = (l);                                                   \
        stack[sn].i = 0;                                                        \
        sn++;                                                                   \
    } while (0)
    PUSH(k->root, 0);
    while (sn) {
        struct frame *f = &stack[sn - 1];
        if (f->i >= f->d->cap) {
            sn--;
            continue;
        }
        kv_dentry *e = f->d->u.slots[f->i++];
        if (!e)
            continue;
        size_t base = f->plen;
        path.len = base;
        if (base)
            bw_u8(&path, '/');
        bw_put(&path, e->name, e->namelen);
        if (path.oom)
            goto done;
        size_t cl = path.len;
        const kv_inode *c = e->node;
        if (is_dir(c)) {
            /* descendants look like path + "/" + ...: compare what overlaps */
            size_t m = cl + 1 < pl ? cl + 1 : pl;
            bool ok = m <= cl ? memcmp(path.p, pre, m) == 0
                              : (memcmp(path.p, pre, cl) == 0 && pre[cl] == '/');
            if (ok && c->size)
                PUSH(c, cl);
        } else if ((is_reg(c) || is_lnk(c)) && cl >= pl && memcmp(path.p, pre, pl) == 0) {
            if (no == ocap) {
                size_t nc = ocap ? ocap * 2 : 64;
                size_t *a = realloc(offs, nc * sizeof *a);
                if (!a)
                    goto done;
                offs = a;
                ocap = nc;
            }
            offs[no++] = strs.len;
            bw_put(&strs, path.p, cl);
            bw_u8(&strs, 0);
            if (strs.oom)
                goto done;
        }
    }
#undef PUSH
    {
        const char **names = no ? malloc(no * sizeof *names) : NULL;
        if (no && !names)
            goto done;
        for (size_t i = 0; i < no; i++)
            names[i] = (const char *)strs.p + offs[i];
        if (no)
            qsort(names, no, sizeof *names, cmp_str);
        kv_reply r;
        memset(&r, 0, sizeof r);
        r.has = KV_R_NAMES;
        r.names = names;
        r.n_names = no;
        rc = kv_reply_encode(&r, out, len);
        free(names);
    }
done:
    free(stack);
    free(path.p);
    free(strs.p);
    free(offs);
    return rc;
}

/* The totals and the replicated limits (STATFS, and the answer to SET_LIMITS). */
static int reply_limits(const kv *k, uint8_t **out, size_t *len)
{
    kv_reply r;
    memset(&r, 0, sizeof r);
    r.has = KV_R_STATFS;
    r.statfs.bytes_used = k->bytes_used;
    r.statfs.bytes_limit = k->lim.max_total_bytes;
    r.statfs.files = k->icount;
    r.statfs.files_limit = k->lim.max_inodes;
    r.statfs.name_max = KV_NAME_MAX;
    r.statfs.max_file_size = k->lim.max_file_size;
    return kv_reply_encode(&r, out, len);
}

static int do_read(const kv *k, const kv_op *op, uint8_t **out, size_t *len)
{
    kv_inode *n;
    int st;
    switch (op->type) {
    case KV_OP_STAT:
        st = op_node(k, op, &n);
        return reply_simple(st, st ? NULL : n, out, len);
    case KV_OP_GET:
        if ((st = op_node(k, op, &n)))
            return reply_simple(st, NULL, out, len);
        if (is_dir(n))
            return reply_simple(EISDIR, NULL, out, len);
        if (!is_reg(n) && !is_lnk(n))
            return reply_data(n, 0, 0, out, len);
        if (n->size > KV_READ_MAX)
            return reply_simple(EFBIG, NULL, out, len);   /* read in ranges */
        return reply_data(n, 0, (size_t)n->size, out, len);
    case KV_OP_GETRANGE: {
        if ((st = op_node(k, op, &n)))
            return reply_simple(st, NULL, out, len);
        if (is_dir(n))
            return reply_simple(EISDIR, NULL, out, len);
        if (!is_reg(n))
            return reply_simple(EINVAL, NULL, out, len);
        uint64_t have = op->off < n->size ? n->size - op->off : 0;
        if (have > op->len)
            have = op->len;
        if (have > KV_READ_MAX)
            have = KV_READ_MAX;
        return reply_data(n, have ? op->off : 0, (size_t)have, out, len);
    }
    case KV_OP_READLINK:
        if ((st = resolve(k, op->dir, op->path, op->path_len, &n)))
            return reply_simple(st, NULL, out, len);
        if (!is_lnk(n))
            return reply_simple(EINVAL, NULL, out, len);
        return reply_data(n, 0, (size_t)n->size, out, len);
    case KV_OP_READDIR:
        return read_readdir(k, op, out, len);
    case KV_OP_LIST:
        return read_list(k, op, out, len);
    case KV_OP_STATFS:
        return reply_limits(k, out, len);
    default:
        return reply_simple(EINVAL, NULL, out, len);
    }
}

int kv_query(const kv *k, const uint8_t *op, size_t len, uint8_t **reply, size_t *reply_len)
{
    *reply = NULL;
    *reply_len = 0;
    kv_op o;
    if (kv_op_decode(op, len, &o) != 0)
        return kv_reply_encode_status(EBADMSG, reply, reply_len);
    if (!kv_op_is_read(op, len))
        return kv_reply_encode_status(EINVAL, reply, reply_len);
    return do_read(k, &o, reply, reply_len);
}

/* ---- chunked uploads (kv.h: UPLOAD_PART, UPLOAD_COMMIT, UPLOAD_ABORT) ---------------- */

static uint64_t upload_nparts(uint64_t total)
{
    return (total + KV_PART_SIZE - 1) / KV_PART_SIZE;
}

static kv_upload *upload_find(const kv *k, uint64_t id, size_t *at)
{
    for (size_t i = 0; i < k->nups; i++)
        if (k->ups[i].id == id) {
            if (at)
                *at = i;
            return &k->ups[i];
        }
    return NULL;
}

static void upload_release(kv *k, kv_upload *u)
{
    if (u->data) {
        data_free(k, u->data);
        free(u->data);
        k->meta_alloc -= sizeof *u->data;
    }
    free(u->have);
    k->staged -= u->reserved;
}

static void upload_drop_at(kv *k, size_t i)
{
    upload_release(k, &k->ups[i]);
    memmove(&k->ups[i], &k->ups[i + 1], (k->nups - i - 1) * sizeof *k->ups);
    if (--k->nups == 0) {
        free(k->ups);
        k->ups = NULL;
    }
}

/* Abandoned uploads go after KV_UPLOAD_TTL_NS of session time (which one
 * proposer's fast clock cannot rush, see Sessions): decided from the log
 * alone, so every replica drops them at the same index. */
static void upload_expire(kv *k)
{
    for (size_t i = 0; i < k->nups;) {
        if ((uint64_t)(k->sclock - k->ups[i].last_time) > KV_UPLOAD_TTL_NS)
            upload_drop_at(k, i);
        else
            i++;
    }
}

/* ENOSPC when n more bytes do not fit beside what is stored and staged. */
static int upload_space(const kv *k, uint64_t n)
{
    uint64_t have = k->bytes_used + k->staged;
    if (k->lim.max_total_bytes &&
        (have > k->lim.max_total_bytes || n > k->lim.max_total_bytes - have))
        return ENOSPC;
    return 0;
}

/* Room for part index p in u's bitmap.  0 or -1 (ENOMEM). */
static int upload_bits(kv_upload *u, uint64_t p)
{
    if (p / 8 < u->have_cap)
        return 0;
    size_t cap = u->have_cap ? u->have_cap : 8;
    while (cap <= p / 8)
        cap *= 2;
    uint8_t *b = realloc(u->have, cap);
    if (!b)
        return -1;
    memset(b + u->have_cap, 0, cap - u->have_cap);
    u->have = b;
    u->have_cap = cap;
    return 0;
}

/* A new staging for op's upload (op->len: declared size or 0).  status, or
 * -1 (ENOMEM). */
static int upload_start(kv *k, const kv_op *op, kv_upload **out)
{
    if (k->nups >= KV_UPLOADS_MAX)
        return EBUSY;
    int st = upload_space(k, op->len);
    if (st)
        return st;
    kv_upload *arr = realloc(k->ups, (k->nups + 1) * sizeof *arr);
    if (!arr)
        return -1;
    k->ups = arr;
    kv_upload *u = &arr[k->nups];
    memset(u, 0, sizeof *u);
    u->data = calloc(1, sizeof *u->data);
    if (!u->data)
        return -1;
    u->data->mode = S_IFREG;
    u->id = op->upload;
    u->total = u->reserved = op->len;
    k->meta_alloc += sizeof *u->data;
    k->staged += u->reserved;
    k->nups++;
    *out = u;
    return 0;
}

static int op_upload_part(kv *k, const kv_op *op)
{
    uint64_t total = op->len, off = op->off, n = op->data_len;
    if (total > k->lim.max_file_size || off > k->lim.max_file_size ||
        n > k->lim.max_file_size - off)
        return EFBIG;
    if (n == 0 || n > KV_PART_SIZE || off % KV_PART_SIZE ||
        (total && (off > total || n > total - off || (n != KV_PART_SIZE && off + n != total))))
        return EINVAL;
    kv_upload *u = upload_find(k, op->upload, NULL);
    if (!u) {
        int st = upload_start(k, op, &u);
        if (st)
            return st;
    } else if (u->total != total) {
        return EINVAL;
    }
    u->last_time = k->sclock;
    uint64_t part = off / KV_PART_SIZE;
    if (upload_bits(u, part) != 0)
        return -1;
    uint8_t bit = (uint8_t)(1u << (part % 8));
    if (u->have[part / 8] & bit)
        return 0;   /* a part sent again */
    if (!u->total) {
        int st = upload_space(k, n);
        if (st)
            return st;
    }
    /* staged bytes are not file bytes yet: bytes_used is untouched */
    uint64_t saved = k->bytes_used;
    int rc = data_write(k, u->data, off, op->data, (size_t)n);
    k->bytes_used = saved;
    if (rc != 0)
        return -1;
    u->have[part / 8] |= bit;
    u->got += n;
    if (!u->total) {
        u->reserved += n;
        k->staged += n;
    }
    return 0;
}

/* Every byte of [0, len) staged: the distinct parts (disjoint, inside
 * [0, size)) add up to len and size is len. */
static bool upload_complete(const kv_upload *u, uint64_t len)
{
    return u->got == len && u->data->size == len && (!u->total || u->total == len);
}

static int op_upload_commit(kv *k, const kv_op *op, kv_inode **res)
{
    size_t at;
    kv_upload *u = upload_find(k, op->upload, &at);
    if (!u)
        return KV_EUPLOAD;
    if (u->total && op->len != u->total)
        return EINVAL;
    if (!upload_complete(u, op->len))
        return KV_EUPLOAD;   /* parts missing: the staging stays */
    int st;
    if (op->ino) {
        /* PUT_IF's rule: only if the inode's version is still op->off */
        kv_inode *n = itab_get(k, op->ino);
        if (!n)
            st = ENOENT;
        else if (is_dir(n))
            st = EISDIR;
        else if (!is_reg(n))
            st = EINVAL;
        else if ((uint64_t)n->ctime != op->off)
            st = ECANCELED;
        else if (!(st = check_size(k, n, u->data->size))) {
            data_take(k, n, u->data);
            kill_privs(n, op);
            n->mtime = n->ctime = k->now;
            *res = n;
        }
    } else {
        kv_op put = *op;
        put.type = KV_OP_PUT;
        st = op_put_ex(k, &put, res, false, u->data);
        if (st < 0)
            return -1;
    }
    upload_drop_at(k, at);   /* committed, or refused for good */
    return st;
}

static int op_upload_abort(kv *k, const kv_op *op)
{
    size_t at;
    if (upload_find(k, op->upload, &at))
        upload_drop_at(k, at);
    return 0;
}

/* UPLOAD_PART is idempotent and bypasses the client's session: parts of one
 * upload are pipelined, may apply in any order and be re-sent after a leader
 * change, and none of that may make a later part look stale.  True when
 * opb is a part (then *rc is kv_apply's result). */
static bool upload_part_apply(kv *k, const uint8_t *opb, size_t opl, uint8_t **reply,
                              size_t *reply_len, int *rc)
{
    if (kv_op_peek_type(opb, opl) != KV_OP_UPLOAD_PART)
        return false;
    kv_op op;
    if (kv_op_decode(opb, opl, &op) != 0) {
        *rc = kv_reply_encode_status(EBADMSG, reply, reply_len);
        return true;
    }
    int st = op_upload_part(k, &op);
    *rc = st < 0 ? -1 : kv_reply_encode_status(st, reply, reply_len);
    return true;
}

/* ---- apply ----------------------------------------------------------------------------- */

/* SET_LIMITS: the replicated limits (kv.h).  Decided from the entry alone. */
static int apply_set_limits(kv *k, const kv_op *op, uint8_t **out, size_t *len)
{
    if (op->flags & ~KV_LIMITS_IF_UNSET)
        return reply_simple(EINVAL, NULL, out, len);
    uint64_t mfs = op->len ? op->len : KV_DEFAULT_MAX_FILE_SIZE;
    if (mfs > KV_MAX_FILE_SIZE_LIMIT)
        return reply_simple(EINVAL, NULL, out, len);
    if (!(op->flags & KV_LIMITS_IF_UNSET) || !k->lim_set) {
        k->lim.max_file_size = mfs;
        k->lim.max_total_bytes = op->off;
        k->lim.max_inodes = op->rdev;
        k->lim_set = true;
    }
    return reply_limits(k, out, len);
}

bool kv_get_limits(const kv *k, kv_limits *out)
{
    *out = k->lim;
    return k->lim_set;
}

static int do_write(kv *k, const kv_op *op, uint8_t **out, size_t *len)
{
    kv_inode *res = NULL;
    int st;
    switch (op->type) {
    case KV_OP_PUT: st = op_put(k, op, &res, false); break;
    case KV_OP_APPEND: st = op_put(k, op, &res, true); break;
    case KV_OP_DEL:
    case KV_OP_RMDIR:
    case KV_OP_UNLINK: st = op_del(k, op, op->type); break;
    case KV_OP_CREATE:
    case KV_OP_MKNOD:
    case KV_OP_MKDIR:
    case KV_OP_SYMLINK: st = op_make(k, op, &res); break;
    case KV_OP_WRITE_AT: st = op_write_at(k, op, &res); break;
    case KV_OP_TRUNCATE: st = op_truncate(k, op, &res); break;
    case KV_OP_RENAME: st = op_rename(k, op, &res); break;
    case KV_OP_SETATTR: st = op_setattr(k, op, &res); break;
    case KV_OP_LINK: st = op_link(k, op, &res); break;
    case KV_OP_OPEN_REF: st = op_open_ref(k, op, &res); break;
    case KV_OP_CLOSE_REF: st = op_close_ref(k, op); break;
    case KV_OP_RELEASE_HOLDER: st = op_release_holder(k, op); break;
    case KV_OP_HOLD: st = op_hold(k, op); break;
    case KV_OP_NOOP: st = 0; break;
    case KV_OP_SET_LIMITS: return apply_set_limits(k, op, out, len);
    case KV_OP_PUT_IF: st = op_put_if(k, op, &res); break;
    case KV_OP_UPLOAD_PART: st = op_upload_part(k, op); break;
    case KV_OP_UPLOAD_COMMIT: st = op_upload_commit(k, op, &res); break;
    case KV_OP_UPLOAD_ABORT: st = op_upload_abort(k, op); break;
    default:
        /* A read wrapped in a command: never executed (its reply could be
         * the size of a file, on every replica, at every replay). */
        st = EINVAL;
        break;
    }
    if (st < 0)
        return -1;
    return reply_simple(st, res, out, len);
}

/* sessions: table by client id + a list in expiry (least recently used) order */

static kv_session *sess_get(const kv *k, uint64_t client)
{
    if (!k->scap)
        return NULL;
    uint64_t m = k->scap - 1;
    for (uint64_t i = mix64(client) & m;; i = (i + 1) & m) {
        kv_session *s = k->stab[i];
        if (!s)
            return NULL;
        if (s->client == client)
            return s;
    }
}

static int sess_tab_put(kv *k, kv_session *s)
{
    if ((k->scount + 1) * 2 > k->scap) {
        uint64_t nc = k->scap ? k->scap * 2 : 64;
        kv_session **nt = calloc(nc, sizeof *nt);
        if (!nt)
            return -1;
        for (uint64_t i = 0; i < k->scap; i++) {
            kv_session *x = k->stab[i];
            if (!x)
                continue;
            uint64_t j = mix64(x->client) & (nc - 1);
            while (nt[j])
                j = (j + 1) & (nc - 1);
            nt[j] = x;
        }
        free(k->stab);
        k->stab = nt;
        k->scap = nc;
    }
    uint64_t m = k->scap - 1;
    uint64_t i = mix64(s->client) & m;
    while (k->stab[i]) {
        if (k->stab[i]->client == s->client)
            return 1;
        i = (i + 1) & m;
    }
    k->stab[i] = s;
    k->scount++;
    return 0;
}

static void sess_list_unlink(kv *k, kv_session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        k->shead = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        k->stail = s->prev;
    s->prev = s->next = NULL;
}

static void sess_list_append(kv *k, kv_session *s)
{
    s->prev = k->stail;
    s->next = NULL;
    if (k->stail)
        k->stail->next = s;
    else
        k->shead = s;
    k->stail = s;
}

static void sess_drop(kv *k, kv_session *s)
{
    uint64_t m = k->scap - 1;
    uint64_t i = mix64(s->client) & m;
    while (k->stab[i] != s)
        i = (i + 1) & m;
    k->stab[i] = NULL;
    k->scount--;
    for (uint64_t j = (i + 1) & m; k->stab[j]; j = (j + 1) & m) {
        uint64_t h = mix64(k->stab[j]->client) & m;
        bool in = (i <= j) ? (h > i && h <= j) : (h > i || h <= j);
        if (!in) {
            k->stab[i] = k->stab[j];
            k->stab[j] = NULL;
            i = j;
        }
    }
    sess_list_unlink(k, s);
    free(s->reply);
    free(s);
}

static void sess_expire(kv *k)
{
    while (k->shead && (uint64_t)(k->sclock - k->shead->last_time) > KV_SESSION_TTL_NS)
        sess_drop(k, k->shead);
    while (k->scount > KV_SESSION_MAX)
        sess_drop(k, k->shead);
}

/* Records reply as client's last; 0 or -1 (ENOMEM). */
static int sess_record(kv *k, uint64_t client, uint64_t seq, const uint8_t *reply, size_t len)
{
    kv_session *s = sess_get(k, client);
    uint8_t *copy = NULL;
    if (len <= KV_SESSION_REPLY_MAX) {
        copy = malloc(len ? len : 1);
        if (!copy)
            return -1;
        memcpy(copy, reply, len);
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) {
            free(copy);
            return -1;
        }
        s->client = client;
        if (sess_tab_put(k, s) != 0) {
            free(s);
            free(copy);
            return -1;
        }
    } else {
        sess_list_unlink(k, s);
        free(s->reply);
    }
    s->seq = seq;
    s->reply = copy;
    s->reply_len = copy ? (uint32_t)len : 0;
    s->last_time = k->sclock;
    sess_list_append(k, s);
    sess_expire(k);
    return 0;
}

static int sess_reply(const kv_session *s, uint8_t **out, size_t *len)
{
    if (!s->reply)
        return kv_reply_encode_status(KV_EREPLYGONE, out, len);
    *out = malloc(s->reply_len ? s->reply_len : 1);
    if (!*out)
        return -1;
    memcpy(*out, s->reply, s->reply_len);
    *len = s->reply_len;
    return 0;
}

int kv_session_lookup(const kv *k, uint64_t client_id, uint64_t seq, uint8_t **reply,
                      size_t *reply_len)
{
    *reply = NULL;
    *reply_len = 0;
    if (!client_id || !seq)
        return KV_SESSION_NEW;   /* seq 0: a REGISTER */
    const kv_session *s = sess_get(k, client_id);
    if (!s || seq > s->seq)
        return KV_SESSION_NEW;
    if (seq == s->seq)
        return sess_reply(s, reply, reply_len) == 0 ? KV_SESSION_APPLIED : -1;
    return kv_reply_encode_status(KV_ESTALE, reply, reply_len) == 0 ? KV_SESSION_STALE : -1;
}

/* REGISTER: a new session named by this entry's index (unique, never
 * reused), with seq 0 and no reply yet. */
static int apply_register(kv *k, uint64_t index, uint8_t **reply, size_t *reply_len)
{
    kv_session *old = sess_get(k, index);   /* only an id from an older format */
    if (old)
        sess_drop(k, old);
    kv_session *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->client = index;
    s->last_time = k->sclock;
    if (sess_tab_put(k, s) != 0) {
        free(s);
        return -1;
    }
    sess_list_append(k, s);
    sess_expire(k);
    uint8_t id[8];
    byte_put64(id, index);
    kv_reply r;
    memset(&r, 0, sizeof r);
    r.has = KV_R_DATA;
    r.data = id;
    r.data_len = 8;
    return kv_reply_encode(&r, reply, reply_len);
}

int kv_apply(kv *k, uint64_t index, const uint8_t *cmd, size_t len, uint8_t **reply,
             size_t *reply_len)
{
    *reply = NULL;
    *reply_len = 0;
    if (index <= k->applied)
        return 1;
    k->applied = index;
    uint64_t client, seq;
    int64_t t;
    const uint8_t *opb;
    size_t opl;
    if (kv_cmd_decode(cmd, len, &client, &seq, &t, &opb, &opl) != 0)
        return kv_reply_encode_status(EBADMSG, reply, reply_len);
    /* Times strictly increase: a proposer with a slow clock cannot make
     * mtime decrease, every replica clamps identically, and no two commands
     * share a time, so a ctime names one change of an inode (PUT_IF). */
    if (t <= k->last_time)
        t = k->last_time == INT64_MAX ? INT64_MAX : k->last_time + 1;
    k->last_time = k->now = t;
    /* Session time follows, but at most KV_SESSION_STEP_NS per command: one
     * proposer's clock far ahead cannot expire every session at once. */
    if (k->sclock == 0 || k->now - k->sclock <= (int64_t)KV_SESSION_STEP_NS)
        k->sclock = k->now;
    else
        k->sclock += (int64_t)KV_SESSION_STEP_NS;
    sess_expire(k);
    kv_op op;
    bool op_ok = kv_op_decode(opb, opl, &op) == 0;
    if (op_ok && op.type == KV_OP_REGISTER)
        return apply_register(k, index, reply, reply_len);
    upload_expire(k);
    int urc;
    if (upload_part_apply(k, opb, opl, reply, reply_len, &urc))
        return urc;
    if (client) {
        kv_session *s = sess_get(k, client);
        if (!s) {
            /* Expired, evicted or never registered: not applied, so a retry
             * of a command applied before its session went cannot apply
             * twice. */
            return kv_reply_encode_status(KV_ESESSION, reply, reply_len) == 0 ? 0 : -1;
        }
        if (seq == s->seq) {
            sess_list_unlink(k, s);
            s->last_time = k->sclock;
            sess_list_append(k, s);
            return sess_reply(s, reply, reply_len);
        }
        if (seq < s->seq)
            return kv_reply_encode_status(KV_ESTALE, reply, reply_len);
    }
    int rc;
    if (!op_ok)
        rc = kv_reply_encode_status(EBADMSG, reply, reply_len);
    else
        rc = do_write(k, &op, reply, reply_len);
    if (rc != 0)
        return -1;
    if (client && sess_record(k, client, seq, *reply, *reply_len) != 0) {
        free(*reply);
        *reply = NULL;
        return -1;
    }
    return 0;
}

void kv_apply_skip(kv *k, uint64_t index)
{
    if (index > k->applied)
        k->applied = index;
}

uint64_t kv_applied_index(const kv *k)
{
    return k->applied;
}
int64_t kv_last_time(const kv *k)
{
    return k->last_time;
}

void kv_get_stats(const kv *k, kv_stats *st)
{
    memset(st, 0, sizeof *st);
    st->applied_index = k->applied;
    st->last_time_ns = k->last_time;
    st->inodes = k->icount;
    st->dirs = k->ndirs;
    st->files = k->nfiles;
    st->orphans = k->norphans;
    st->bytes_used = k->bytes_used;
    st->data_alloc = k->data_alloc;
    st->meta_alloc = k->meta_alloc;
    st->sessions = k->scount;
    st->refs = k->nrefs;
    st->holders = k->nholders;
    st->session_time_ns = k->sclock;
    st->uploads = k->nups;
    st->staged_bytes = k->staged;
}

/* ---- life cycle --------------------------------------------------------------------- */

static kv *kv_alloc(const kv_limits *lim)
{
    kv *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    if (lim)
        k->lim = *lim;
    if (!k->lim.max_file_size)
        k->lim.max_file_size = KV_DEFAULT_MAX_FILE_SIZE;
    if (k->lim.max_file_size > KV_MAX_FILE_SIZE_LIMIT)
        k->lim.max_file_size = KV_MAX_FILE_SIZE_LIMIT;
    k->next_ino = KV_ROOT_INO;
    return k;
}

kv *kv_new(const kv_limits *limits)
{
    kv *k = kv_alloc(limits);
    if (!k)
        return NULL;
    kv_inode *root;
    uint64_t saved = k->lim.max_inodes;
    k->lim.max_inodes = 0;
    if (inode_new(k, S_IFDIR | 0755, 0, 0, &root) != 0) {
        kv_free(k);
        return NULL;
    }
    k->lim.max_inodes = saved;
    root->x = KV_ROOT_INO;
    k->root = root;
    return k;
}

static void kv_clear(kv *k)
{
    for (uint64_t i = 0; i < k->icap; i++)
        if (k->itab[i])
            inode_destroy(k, k->itab[i]);
    free(k->itab);
    while (k->shead) {
        kv_session *s = k->shead;
        k->shead = s->next;
        free(s->reply);
        free(s);
    }
    free(k->stab);
    free(k->refs);
    for (size_t i = 0; i < k->nholders; i++)
        free(k->holders[i].held);
    free(k->holders);
    free(k->orph);
    for (size_t i = 0; i < k->nups; i++)
        upload_release(k, &k->ups[i]);
    free(k->ups);
}

void kv_free(kv *k)
{
    if (!k)
        return;
    kv_clear(k);
    free(k);
}

/* ---- snapshots -------------------------------------------------------------------------
 *
 * Format (all little-endian):
 *   u32 magic "HKVS", u32 version 3, u64 applied, i64 last_time,
 *   (version 3) i64 session time, u8 limits set, u64 max_file_size,
 *   u64 max_total_bytes, u64 max_inodes,
 *   u64 next_ino,
 *   u64 n_inodes, then per inode in ascending number order:
 *     u64 ino, u32 mode, uid, gid, nlink, u64 rdev, u64 size, i64 atime, mtime,
 *     ctime, then: regular file: chunks holding a non-zero byte as (u32 index,
 *     min(CHUNK, size - index*CHUNK) bytes), ascending, ended by u32 ~0;
 *     symlink: size bytes of target; others nothing.
 *   u64 n_dirs, then per directory in ascending number order: u64 ino,
 *     u64 count, count x (u8 namelen, name, u64 child ino) sorted by name.
 *   u64 n_sessions, then in expiry order: u64 client, u64 seq, i64 last_time,
 *     u8 has_reply, [u32 len, bytes].
 *   u64 n_refs, then in table order: u64 holder, u64 ino, u32 count.
 *   (version 2 on) u64 n_holders, then by ascending id: u64 id, u64 covered,
 *     i64 time, u64 n, n x u64 held inode (ascending); u64 n_orphans, then in
 *     unlink order: u64 ino, u64 at.
 *   only when uploads are staged: u32 magic "PUPS", u64 count, then in the
 *     order they started: u64 id, u64 declared total (0: unknown), u64 got,
 *     i64 last_time, u64 size of the staged bytes, the bitmap of parts
 *     received ((size / part, rounded up, + 7) / 8 bytes), and the bytes as
 *     a regular file's chunks.
 *   u32 magic "END." (trailer).  Version 1 (no holders, no orphan list) is
 *   still read.
 * Chunks that are all zeros are omitted whether they are holes or written
 * zeros, so equal states give equal bytes.
 * Versions 1 and 2 (older builds) lack the session time and limits; they are
 * still read (kv_snapshot_read), never written.
 */

#define SNAP_MAGIC 0x53564b48u      /* "HKVS" */
#define SNAP_END 0x2e444e45u        /* "END." */
#define SNAP_UPLOADS 0x53505550u    /* "PUPS": staged uploads, only when there are some */
#define SNAP_VERSION 3u
#define NO_CHUNK 0xffffffffu

typedef struct snap_w {
    bytes_w b;
    kv_write_fn fn;
    void *arg;
    bool failed;
} snap_w;

static void sw_flush(snap_w *w)
{
    if (w->b.oom)
        w->failed = true;
    if (!w->failed && w->b.len && w->fn(w->arg, w->b.p, w->b.len) != 0)
        w->failed = true;
    w->b.len = 0;
}

static void sw_maybe_flush(snap_w *w)
{
    if (w->b.len >= KV_CHUNK_SIZE)
        sw_flush(w);
}

static int cmp_inode(const void *a, const void *b)
{
    uint64_t x = (*(const kv_inode *const *)a)->ino, y = (*(const kv_inode *const *)b)->ino;
    return x < y ? -1 : x > y;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static void snap_file(snap_w *w, const kv_inode *n)
{
    uint64_t nc = nchunks(n->size);
    for (uint64_t i = 0; i < nc && !w->failed; i++) {
        uint64_t L = n->size - i * CH < CH ? n->size - i * CH : CH;
        const uint8_t *src;
        size_t have;
        if (!n->chunked) {
            if (i > 0)
                break;   /* a flat buffer never holds more than chunk 0 */
            src = n->u.flat;
            have = n->cap < L ? n->cap : (size_t)L;
        } else {
            if (i >= n->cap || !n->u.chunks[i])
                continue;
            src = n->u.chunks[i];
            have = (size_t)L;
        }
        if (all_zero(src, have))
            continue;
        bw_u32(&w->b, (uint32_t)i);
        sw_flush(w);
        if (!w->failed && w->fn(w->arg, src, have) != 0)
            w->failed = true;
        if (L > have) {
            uint8_t *zeros = bw_room(&w->b, (size_t)(L - have));
            if (zeros)
                memset(zeros, 0, (size_t)(L - have));
        }
        sw_maybe_flush(w);
    }
    bw_u32(&w->b, NO_CHUNK);
}

static void snap_uploads(snap_w *w, const kv *k)
{
    if (!k->nups)
        return;   /* absent when none: snapshots without uploads read as before */
    bw_u32(&w->b, SNAP_UPLOADS);
    bw_u64(&w->b, k->nups);
    for (size_t i = 0; i < k->nups && !w->failed; i++) {
        const kv_upload *u = &k->ups[i];
        size_t nb = (size_t)((upload_nparts(u->data->size) + 7) / 8);
        bw_u64(&w->b, u->id);
        bw_u64(&w->b, u->total);
        bw_u64(&w->b, u->got);
        bw_u64(&w->b, (uint64_t)u->last_time);
        bw_u64(&w->b, u->data->size);
        bw_put(&w->b, u->have, nb);
        snap_file(w, u->data);
        sw_maybe_flush(w);
    }
}

int kv_snapshot_write(const kv *k, kv_write_fn fn, void *arg)
{
    snap_w w = {{0}, fn, arg, false};
    kv_inode **all = malloc((k->icount ? k->icount : 1) * sizeof *all);
    if (!all)
        return -1;
    size_t n = 0;
    for (uint64_t i = 0; i < k->icap; i++)
        if (k->itab[i])
            all[n++] = k->itab[i];
    qsort(all, n, sizeof *all, cmp_inode);
    bw_u32(&w.b, SNAP_MAGIC);
    bw_u32(&w.b, SNAP_VERSION);
    bw_u64(&w.b, k->applied);
    bw_u64(&w.b, (uint64_t)k->last_time);
    bw_u64(&w.b, (uint64_t)k->sclock);
    bw_u8(&w.b, k->lim_set);
    bw_u64(&w.b, k->lim.max_file_size);
    bw_u64(&w.b, k->lim.max_total_bytes);
    bw_u64(&w.b, k->lim.max_inodes);
    bw_u64(&w.b, k->next_ino);
    bw_u64(&w.b, n);
    for (size_t i = 0; i < n && !w.failed; i++) {
        const kv_inode *x = all[i];
        bw_u64(&w.b, x->ino);
        bw_u32(&w.b, x->mode);
        bw_u32(&w.b, x->uid);
        bw_u32(&w.b, x->gid);
        bw_u32(&w.b, x->nlink);
        bw_u64(&w.b, (S_ISCHR(x->mode) || S_ISBLK(x->mode)) ? x->x : 0);
        bw_u64(&w.b, x->size);
        bw_u64(&w.b, (uint64_t)x->atime);
        bw_u64(&w.b, (uint64_t)x->mtime);
        bw_u64(&w.b, (uint64_t)x->ctime);
        if (is_reg(x))
            snap_file(&w, x);
        else if (is_lnk(x))
            bw_put(&w.b, x->u.flat, (size_t)x->size);
        sw_maybe_flush(&w);
    }
    bw_u64(&w.b, k->ndirs);
    for (size_t i = 0; i < n && !w.failed; i++) {
        const kv_inode *d = all[i];
        if (!is_dir(d))
            continue;
        int oom;
        kv_dentry **a = dir_sorted(d, &oom);
        if (oom) {
            w.failed = true;
            break;
        }
        bw_u64(&w.b, d->ino);
        bw_u64(&w.b, d->size);
        for (uint64_t j = 0; j < d->size; j++) {
            bw_u8(&w.b, a[j]->namelen);
            bw_put(&w.b, a[j]->name, a[j]->namelen);
            bw_u64(&w.b, a[j]->node->ino);
            sw_maybe_flush(&w);
        }
        free(a);
    }
    free(all);
    bw_u64(&w.b, k->scount);
    for (const kv_session *s = k->shead; s && !w.failed; s = s->next) {
        bw_u64(&w.b, s->client);
        bw_u64(&w.b, s->seq);
        bw_u64(&w.b, (uint64_t)s->last_time);
        bw_u8(&w.b, s->reply != NULL);
        if (s->reply) {
            bw_u32(&w.b, s->reply_len);
            bw_put(&w.b, s->reply, s->reply_len);
        }
        sw_maybe_flush(&w);
    }
    bw_u64(&w.b, k->nrefs);
    for (size_t i = 0; i < k->nrefs; i++) {
        bw_u64(&w.b, k->refs[i].holder);
        bw_u64(&w.b, k->refs[i].ino);
        bw_u32(&w.b, k->refs[i].count);
        sw_maybe_flush(&w);
    }
    bw_u64(&w.b, k->nholders);
    for (size_t i = 0; i < k->nholders; i++) {
        const kv_holder *h = &k->holders[i];
        bw_u64(&w.b, h->id);
        bw_u64(&w.b, h->covered);
        bw_u64(&w.b, (uint64_t)h->time);
        bw_u64(&w.b, h->n);
        for (size_t j = 0; j < h->n; j++)
            bw_u64(&w.b, h->held[j]);
        sw_maybe_flush(&w);
    }
    bw_u64(&w.b, k->norph);
    for (size_t i = 0; i < k->norph; i++) {
        bw_u64(&w.b, k->orph[i].ino);
        bw_u64(&w.b, k->orph[i].at);
        sw_maybe_flush(&w);
    }
    snap_uploads(&w, k);
    bw_u32(&w.b, SNAP_END);
    sw_flush(&w);
    free(w.b.p);
    return w.failed ? -1 : 0;
}

static int buf_write(void *arg, const void *b, size_t n)
{
    bytes_w *w = arg;
    bw_put(w, b, n);
    return w->oom ? -1 : 0;
}

int kv_snapshot_encode(const kv *k, uint8_t **buf, size_t *len)
{
    bytes_w w = {0};
    *buf = NULL;
    *len = 0;
    if (kv_snapshot_write(k, buf_write, &w) != 0) {
        bw_free(&w);
        return -1;
    }
    *buf = w.p;
    *len = w.len;
    return 0;
}

/* decoding */

typedef struct snap_r {
    kv_read_fn fn;
    void *arg;
    bool bad;
} snap_r;

static void sr_get(snap_r *r, void *b, size_t n)
{
    if (r->bad) {
        memset(b, 0, n);
        return;
    }
    if (n && r->fn(r->arg, b, n) != 0) {
        r->bad = true;
        memset(b, 0, n);
    }
}
static uint8_t sr_u8(snap_r *r)
{
    uint8_t b[1];
    sr_get(r, b, 1);
    return b[0];
}

static uint32_t sr_u32(snap_r *r)
{
    uint8_t b[4];
    sr_get(r, b, 4);
    return byte_get32(b);
}
static uint64_t sr_u64(snap_r *r)
{
    uint8_t b[8];
    sr_get(r, b, 8);
    return byte_get64(b);
}

static kv_inode *find_sorted(kv_inode **a, size_t n, uint64_t ino)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid]->ino == ino)
            return a[mid];
        if (a[mid]->ino < ino)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool valid_type(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFIFO: case S_IFCHR: case S_IFBLK:
    case S_IFSOCK: return true;
    default: return false;
    }
}

static int cmp_ref(const void *a, const void *b)
{
    const kv_ref *x = a, *y = b;
    if (x->holder != y->holder)
        return x->holder < y->holder ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Reads one regular file's chunks into n. */
static bool snap_read_file(snap_r *r, kv *k, kv_inode *n, uint64_t size)
{
    uint64_t nc = nchunks(size);
    int64_t prev = -1;
    for (;;) {
        uint32_t idx = sr_u32(r);
        if (r->bad)
            return false;
        if (idx == NO_CHUNK)
            break;
        if ((int64_t)idx <= prev || idx >= nc)
            return false;
        prev = idx;
        uint64_t L = size - (uint64_t)idx * CH < CH ? size - (uint64_t)idx * CH : CH;
        if (size <= CH) {
            n->u.flat = malloc((size_t)L);
            if (!n->u.flat)
                return false;
            n->cap = (uint32_t)L;
            k->data_alloc += L;
            sr_get(r, n->u.flat, (size_t)L);
        } else {
            if (!n->chunked) {   /* a file past one chunk is always chunked here */
                n->u.chunks = calloc(1, sizeof *n->u.chunks);
                if (!n->u.chunks)
                    return false;
                n->cap = 1;
                n->chunked = 1;
                k->meta_alloc += sizeof *n->u.chunks;
            }
            if (data_prepare(k, n, (uint64_t)idx * CH, (uint64_t)idx * CH + L) != 0)
                return false;
            sr_get(r, n->u.chunks[idx], (size_t)L);
        }
        if (r->bad)
            return false;
    }
    n->size = size;
    k->bytes_used += size;
    return true;
}

static bool snap_read_uploads(snap_r *r, kv *n)
{
    uint64_t cnt = sr_u64(r);
    if (r->bad || cnt == 0 || cnt > KV_UPLOADS_MAX)
        return false;
    uint64_t saved_limit = n->lim.max_total_bytes;
    n->lim.max_total_bytes = 0;   /* what was staged stays staged */
    bool ok = true;
    for (uint64_t i = 0; i < cnt && ok; i++) {
        kv_op op;
        memset(&op, 0, sizeof op);
        op.upload = sr_u64(r);
        op.len = sr_u64(r);
        uint64_t got = sr_u64(r);
        int64_t last = (int64_t)sr_u64(r);
        uint64_t size = sr_u64(r);
        kv_upload *u;
        ok = !r->bad && op.len <= n->lim.max_file_size && size <= n->lim.max_file_size &&
             got <= size && size > 0 && (!op.len || size <= op.len) &&
             !upload_find(n, op.upload, NULL) && upload_start(n, &op, &u) == 0;
        if (!ok)
            break;
        u->last_time = last;
        uint64_t np = upload_nparts(size);
        ok = upload_bits(u, np) == 0;
        if (!ok)
            break;
        sr_get(r, u->have, (size_t)((np + 7) / 8));
        /* the part that ends the staged bytes is there, none past it */
        ok = !r->bad && (u->have[(np - 1) / 8] & (1u << ((np - 1) % 8))) &&
             !(np % 8 && (u->have[np / 8] >> (np % 8)));
        if (!ok)
            break;
        u->got = got;
        if (!op.len) {
            u->reserved = got;
            n->staged += got;
        }
        ok = snap_read_file(r, n, u->data, size);
        if (ok)
            n->bytes_used -= size;   /* staged, not stored */
    }
    n->lim.max_total_bytes = saved_limit;
    return ok;
}

int kv_snapshot_read(kv *k, kv_read_fn fn, void *arg)
{
    snap_r r = {fn, arg, false};
    kv *n = kv_alloc(&k->lim);
    if (!n)
        return -1;
    kv_inode **list = NULL;
    uint64_t *aux = NULL;   /* dirs: entries seen; others: links seen */
    size_t cnt = 0, lcap = 0;
    bool ok = false;
    if (sr_u32(&r) != SNAP_MAGIC)
        goto out;
    uint32_t version = sr_u32(&r);
    if (r.bad || version < 1 || version > SNAP_VERSION)
        goto out;
    n->applied = sr_u64(&r);
    n->last_time = (int64_t)sr_u64(&r);
    n->sclock = n->last_time;
    if (version >= 3) {
        n->sclock = (int64_t)sr_u64(&r);
        uint8_t set = sr_u8(&r);
        n->lim.max_file_size = sr_u64(&r);
        n->lim.max_total_bytes = sr_u64(&r);
        n->lim.max_inodes = sr_u64(&r);
        if (r.bad || set > 1 || n->lim.max_file_size == 0 ||
            n->lim.max_file_size > KV_MAX_FILE_SIZE_LIMIT || n->sclock > n->last_time)
            goto out;
        n->lim_set = set;
    }
    n->next_ino = sr_u64(&r);
    uint64_t ninodes = sr_u64(&r);
    if (r.bad || ninodes == 0 || n->next_ino <= KV_ROOT_INO)
        goto out;
    for (uint64_t i = 0; i < ninodes; i++) {
        kv_inode t;
        memset(&t, 0, sizeof t);
        t.ino = sr_u64(&r);
        t.mode = sr_u32(&r);
        t.uid = sr_u32(&r);
        t.gid = sr_u32(&r);
        t.nlink = sr_u32(&r);
        uint64_t rdev = sr_u64(&r);
        uint64_t size = sr_u64(&r);
        t.atime = (int64_t)sr_u64(&r);
        t.mtime = (int64_t)sr_u64(&r);
        t.ctime = (int64_t)sr_u64(&r);
        if (r.bad || !valid_type(t.mode) || (t.mode & ~(uint32_t)(S_IFMT | 07777)))
            goto out;
        if (t.ino == 0 || t.ino >= n->next_ino)
            goto out;
        if (cnt ? t.ino <= list[cnt - 1]->ino : (t.ino != KV_ROOT_INO || !S_ISDIR(t.mode)))
            goto out;
        if (rdev && !S_ISCHR(t.mode) && !S_ISBLK(t.mode))
            goto out;
        if (cnt == lcap) {
            size_t nc = lcap ? lcap * 2 : 256;
            kv_inode **nl = realloc(list, nc * sizeof *nl);
            uint64_t *na = realloc(aux, nc * sizeof *na);
            if (nl)
                list = nl;
            if (na)
                aux = na;
            if (!nl || !na)
                goto out;
            lcap = nc;
        }
        kv_inode *x = calloc(1, sizeof *x);
        if (!x)
            goto out;
        *x = t;
        if (itab_put(n, x) != 0) {
            free(x);
            goto out;
        }
        n->meta_alloc += sizeof *x;
        list[cnt] = x;
        aux[cnt] = 0;
        cnt++;
        if (S_ISDIR(t.mode)) {
            n->ndirs++;
            aux[cnt - 1] = size;   /* expected entry count, checked below */
        } else if (S_ISREG(t.mode)) {
            n->nfiles++;
            if (!snap_read_file(&r, n, x, size))
                goto out;
        } else if (S_ISLNK(t.mode)) {
            if (size == 0 || size > KV_PATH_MAX)
                goto out;
            x->u.flat = malloc((size_t)size);
            if (!x->u.flat)
                goto out;
            x->cap = (uint32_t)size;
            x->size = size;
            n->data_alloc += size;
            n->bytes_used += size;
            sr_get(&r, x->u.flat, (size_t)size);
            if (r.bad || memchr(x->u.flat, 0, (size_t)size))
                goto out;
        } else {
            if (size)
                goto out;
            x->x = rdev;
        }
    }
    n->root = list[0];
    n->root->x = KV_ROOT_INO;
    uint64_t ndirs = sr_u64(&r);
    if (r.bad || ndirs != n->ndirs)
        goto out;
    uint64_t prev_dir = 0;
    for (uint64_t i = 0; i < ndirs; i++) {
        uint64_t dino = sr_u64(&r);
        uint64_t count = sr_u64(&r);
        kv_inode *d = find_sorted(list, cnt, dino);
        if (r.bad || dino <= prev_dir || !d || !is_dir(d))
            goto out;
        prev_dir = dino;
        if (count > n->icount)
            goto out;
        for (uint64_t j = 0; j < count; j++) {
            char name[KV_NAME_MAX + 1];
            uint8_t nl = sr_u8(&r);
            sr_get(&r, name, nl);
            uint64_t cino = sr_u64(&r);
            if (r.bad || nl == 0 || memchr(name, '/', nl) || memchr(name, 0, nl))
                goto out;
            if ((nl == 1 && name[0] == '.') || (nl == 2 && name[0] == '.' && name[1] == '.'))
                goto out;
            kv_inode *c = find_sorted(list, cnt, cino);
            if (!c || c == n->root || dir_find(d, name, nl))
                goto out;
            kv_dentry *e = dentry_new(n, name, nl, c);
            if (!e)
                goto out;
            if (dir_insert(n, d, e) != 0) {
                dentry_free(n, e);
                goto out;
            }
            if (is_dir(c)) {
                if (c->x)
                    goto out;   /* a directory has one parent */
                c->x = d->ino;
            }
        }
    }
    /* counts: entries per directory, links per non-directory */
    for (size_t i = 0; i < cnt; i++) {
        kv_inode *d = list[i];
        if (!is_dir(d))
            continue;
        if (aux[i] != d->size)
            goto out;
        uint64_t sub = 0;
        for (uint32_t j = 0; j < d->cap; j++) {
            kv_dentry *e = d->u.slots[j];
            if (!e)
                continue;
            if (is_dir(e->node))
                sub++;
            else {
                kv_inode *c = e->node;
                size_t lo = 0, hi = cnt;   /* index of c in list */
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    if (list[mid]->ino < c->ino)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                aux[lo]++;
            }
        }
        if (d->nlink != 2 + sub && !(d->nlink == 0 && d->x == 0 && d != n->root))
            goto out;
        if (d->nlink == 0 && (d->size || sub))
            goto out;
    }
    for (size_t i = 0; i < cnt; i++)
        if (!is_dir(list[i]) && aux[i] != list[i]->nlink)
            goto out;
    /* every linked directory is reachable from the root (no cycles) */
    {
        uint64_t linked = 0, seen = 0;
        for (size_t i = 0; i < cnt; i++)
            if (is_dir(list[i]) && list[i]->nlink)
                linked++;
        kv_inode **stack = malloc((ndirs ? ndirs : 1) * sizeof *stack);
        if (!stack)
            goto out;
        size_t sp = 0;
        stack[sp++] = n->root;
        while (sp) {
            kv_inode *d = stack[--sp];
            seen++;
            for (uint32_t j = 0; j < d->cap; j++) {
                kv_dentry *e = d->u.slots[j];
                if (e && is_dir(e->node)) {
                    if (sp >= ndirs) {
                        free(stack);
                        goto out;
                    }
                    stack[sp++] = e->node;
                }
            }
        }
        free(stack);
        if (seen != linked)
            goto out;
    }
    uint64_t nsess = sr_u64(&r);
    if (r.bad || nsess > KV_SESSION_MAX)
        goto out;
    for (uint64_t i = 0; i < nsess; i++) {
        kv_session *s = calloc(1, sizeof *s);
        if (!s)
            goto out;
        s->client = sr_u64(&r);
        s->seq = sr_u64(&r);
        s->last_time = (int64_t)sr_u64(&r);
        uint8_t has = sr_u8(&r);
        if (r.bad || s->client == 0 || has > 1) {
            free(s);
            goto out;
        }
        if (has) {
            uint32_t l = sr_u32(&r);
            if (r.bad || l > KV_SESSION_REPLY_MAX) {
                free(s);
                goto out;
            }
            s->reply = malloc(l ? l : 1);
            if (!s->reply) {
                free(s);
                goto out;
            }
            s->reply_len = l;
            sr_get(&r, s->reply, l);
        }
        if (r.bad || sess_tab_put(n, s) != 0) {
            free(s->reply);
            free(s);
            goto out;
        }
        sess_list_append(n, s);
    }
    uint64_t nrefs = sr_u64(&r);
    if (r.bad || nrefs > KV_REFS_MAX)
        goto out;
    if (nrefs) {
        n->refs = malloc(nrefs * sizeof *n->refs);
        if (!n->refs)
            goto out;
        n->refcap = (size_t)nrefs;
    }
    for (uint64_t i = 0; i < nrefs; i++) {
        kv_ref *f = &n->refs[n->nrefs];
        f->holder = sr_u64(&r);
        f->ino = sr_u64(&r);
        f->count = sr_u32(&r);
        kv_inode *x = itab_get(n, f->ino);
        if (r.bad || !x || f->count == 0 || x->refs > UINT32_MAX - f->count)
            goto out;
        x->refs += f->count;
        n->nrefs++;
    }
    if (nrefs) {
        kv_ref *c = malloc(nrefs * sizeof *c);
        if (!c)
            goto out;
        memcpy(c, n->refs, nrefs * sizeof *c);
        qsort(c, (size_t)nrefs, sizeof *c, cmp_ref);
        bool dup = false;
        for (uint64_t i = 1; i < nrefs; i++)
            if (c[i].holder == c[i - 1].holder && c[i].ino == c[i - 1].ino)
                dup = true;
        free(c);
        if (dup)
            goto out;
    }
    if (version >= 2) {
        uint64_t nh = sr_u64(&r);
        if (r.bad || nh > KV_HOLDERS_MAX)
            goto out;
        if (nh) {
            n->holders = calloc((size_t)nh, sizeof *n->holders);
            if (!n->holders)
                goto out;
        }
        for (uint64_t i = 0; i < nh; i++) {
            kv_holder *h = &n->holders[i];
            h->id = sr_u64(&r);
            h->covered = sr_u64(&r);
            h->time = (int64_t)sr_u64(&r);
            uint64_t cnt_h = sr_u64(&r);
            if (r.bad || h->id == 0 || (i && h->id <= n->holders[i - 1].id) ||
                cnt_h > KV_HOLD_MAX)
                goto out;
            n->nholders++;
            if (cnt_h) {
                h->held = malloc((size_t)cnt_h * sizeof *h->held);
                if (!h->held)
                    goto out;
            }
            for (uint64_t j = 0; j < cnt_h; j++) {
                h->held[j] = sr_u64(&r);
                if (r.bad || (j && h->held[j] <= h->held[j - 1]))
                    goto out;
                h->n++;
            }
        }
        uint64_t no = sr_u64(&r);
        if (r.bad || no > n->icount)
            goto out;
        if (no) {
            n->orph = malloc((size_t)no * sizeof *n->orph);
            if (!n->orph)
                goto out;
            n->orphcap = (size_t)no;
        }
        for (uint64_t i = 0; i < no; i++) {
            kv_orphan o;
            o.ino = sr_u64(&r);
            o.at = sr_u64(&r);
            kv_inode *x = itab_get(n, o.ino);
            if (r.bad || !x || x->nlink || is_dir(x) || x->held || o.at > n->applied ||
                (i && o.at < n->orph[i - 1].at))
                goto out;
            x->held = 1;
            n->orph[n->norph++] = o;
        }
    }
    /* an unlinked inode must be held open */
    for (size_t i = 0; i < cnt; i++) {
        if (list[i]->nlink)
            continue;
        if (!list[i]->refs && !list[i]->held)
            goto out;
        n->norphans++;
    }
    uint32_t tail = sr_u32(&r);
    if (tail == SNAP_UPLOADS) {
        if (!snap_read_uploads(&r, n))
            goto out;
        tail = sr_u32(&r);
    }
    if (tail != SNAP_END || r.bad)
        goto out;
    ok = true;
out:
    free(list);
    free(aux);
    if (!ok) {
        kv_free(n);
        return -1;
    }
    /* swap the new state in, keep k's identity and limits */
    kv tmp = *k;
    *k = *n;
    *n = tmp;
    kv_free(n);
    return 0;
}

typedef struct buf_rd {
    const uint8_t *p;
    size_t len, pos;
} buf_rd;

static int buf_read(void *arg, void *b, size_t n)
{
    buf_rd *r = arg;
    if (n > r->len - r->pos)
        return -1;
    memcpy(b, r->p + r->pos, n);
    r->pos += n;
    return 0;
}

int kv_snapshot_decode(kv *k, const uint8_t *buf, size_t len)
{
    if (!buf)
        return -1;
    buf_rd r = {buf, len, 0};
    kv *t = kv_alloc(&k->lim);
    if (!t)
        return -1;
    /* decode aside first so that trailing garbage leaves k untouched */
    t->root = NULL;
    if (kv_snapshot_read(t, buf_read, &r) != 0 || r.pos != r.len) {
        kv_free(t);
        return -1;
    }
    kv tmp = *k;
    *k = *t;
    *t = tmp;
    kv_free(t);
    return 0;
}
