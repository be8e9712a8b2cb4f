/*
 * kv_open.c — open files (kv.h "Open files"): holders' HOLD reports, the
 * orphans they keep alive and the sweep that frees them, and the older
 * per-open references (OPEN_REF, CLOSE_REF, RELEASE_HOLDER).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftkv/byte.h"
#include "raftkv/kv.h"
#include "raftkv/kv_internal.h"

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

int op_open_ref(kv *k, const kv_op *op, kv_inode **res)
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

int op_close_ref(kv *k, const kv_op *op)
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

int op_release_holder(kv *k, const kv_op *op)
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

int op_hold(kv *k, const kv_op *op)
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
