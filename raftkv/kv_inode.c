/*
 * kv_inode.c — the storage of the namespace: the inode-number table, the
 * directory tables, file data (flat or in chunks), and the life of an
 * inode: creation, links, and freeing once nothing names or holds it.
 * The layouts are described in kv_internal.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftkv/kv.h"
#include "raftkv/kv_internal.h"

/* ---- hashing and tables ---------------------------------------------------- */

uint64_t mix64(uint64_t x)
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
kv_inode *itab_get(const kv *k, uint64_t ino)
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
int itab_put(kv *k, kv_inode *n)
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

void itab_del(kv *k, uint64_t ino)
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

kv_dentry **dir_find(const kv_inode *d, const char *name, size_t n)
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
int dir_insert(kv *k, kv_inode *d, kv_dentry *e)
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
kv_dentry *dir_remove(kv_inode *d, kv_dentry **slot)
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

kv_dentry *dentry_new(kv *k, const char *name, size_t n, kv_inode *node)
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

void dentry_free(kv *k, kv_dentry *e)
{
    k->meta_alloc -= sizeof *e + e->namelen + 1;
    free(e);
}

/* ---- file data ---------------------------------------------------------------------- */

void data_read(const kv_inode *n, uint64_t off, size_t len, uint8_t *dst)
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

uint64_t data_blocks(const kv_inode *n)
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

void data_free(kv *k, kv_inode *n)
{
    if (n->chunked) {
        for (uint32_t i = 0; i < n->cap; i++)
            if (n->u.chunks[i]) {
                chunk_free(n->u.chunks[i]);
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
int data_prepare(kv *k, kv_inode *n, uint64_t off, uint64_t end)
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
            uint8_t *c0 = chunk_alloc();
            if (!c0) {
                free(arr);
                return -1;
            }
            memcpy(c0, n->u.flat, n->cap);
            free(n->u.flat);
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
        n->u.chunks[i] = chunk_alloc();
        if (!n->u.chunks[i])
            return -1;
        k->data_alloc += CH;
    }
    return 0;
}

/* Writes len bytes at off (limits already checked).  0 or -1 (ENOMEM). */
int data_write(kv *k, kv_inode *n, uint64_t off, const uint8_t *src, size_t len)
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

void data_truncate(kv *k, kv_inode *n, uint64_t size)
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
                    chunk_free(n->u.chunks[i]);
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
int data_set(kv *k, kv_inode *n, const uint8_t *src, size_t len)
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
int check_size(const kv *k, const kv_inode *n, uint64_t newsize)
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

void inode_destroy(kv *k, kv_inode *n)
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
int inode_new(kv *k, uint32_t mode, uint32_t uid, uint32_t gid, kv_inode **out)
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
    n->atime = n->mtime = k->now;
    touch(k, n);
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
int inode_unref_check(kv *k, kv_inode *n)
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
void orphan_release(kv *k, kv_inode *n)
{
    if (n->nlink > 0 || n->refs > 0 || n->held)
        return;
    k->norphans--;
    itab_del(k, n->ino);
    inode_destroy(k, n);
}

/* Clears the set-id bits of a regular file changed by an unprivileged writer
 * (kv.h "Set-id bits"). */
void kill_privs(kv_inode *n, const kv_op *op)
{
    if (!is_reg(n) || op->cuid == 0)
        return;
    n->mode &= ~(uint32_t)S_ISUID;
    if ((n->mode & S_ISGID) && ((n->mode & S_IXGRP) || op->cgid != n->gid))
        n->mode &= ~(uint32_t)S_ISGID;
}

/* Adds name -> child in d.  0 or -1 (ENOMEM, nothing changed). */
int link_child(kv *k, kv_inode *d, const char *name, size_t nlen, kv_inode *child)
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
int unlink_slot(kv *k, kv_inode *d, kv_dentry **slot)
{
    kv_dentry *e = dir_remove(d, slot);
    kv_inode *c = e->node;
    dentry_free(k, e);
    touch_dir(k, d);
    touch(k, c);
    if (is_dir(c)) {
        d->nlink--;
        c->nlink = 0;
        c->x = 0;
    } else {
        c->nlink--;
    }
    return inode_unref_check(k, c);
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
kv_dentry **dir_sorted(const kv_inode *d, int *oom)
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
