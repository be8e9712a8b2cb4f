/*
 * raft_log.c — the in-memory Raft log of the core.
 *
 * The core holds every entry after the latest snapshot in one array; entry
 * k has index snap_index + 1 + k.  Entry data is copied into slabs: 1 MiB
 * anonymous mappings filled in log order (an entry above a quarter of that
 * gets a block of its own, its data starting on a page boundary).  A slab
 * counts the entries in it and is freed when the last one is dropped.
 * Compared with one malloc per entry this saves the allocator's per-block
 * overhead, and, more important for a long-running node, it keeps the log
 * out of the heap the state machine grows in: the log is freed in bulk at
 * every compaction, and small blocks freed among the state machine's
 * long-lived ones would leave holes the allocator cannot give back (tens of
 * MiB on a leader with a million keys).  Entries dropped
 * by truncation (§5.3: a conflicting suffix) or by compaction (§5 of the
 * paper, chapter 5 of the dissertation) hand their slab reference to the
 * "graveyard" (raft_defer_slab) because a ready batch or a queued message
 * may still point at their data.  A freed slab is kept for reuse, up to a
 * bound (slab_cache_put).
 */
#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "raftkv/raft_internal.h"

uint64_t raft_log_last(const raft *r)
{
    return r->log.snap_index + r->log.n;
}

uint64_t raft_log_last_term(const raft *r)
{
    return r->log.n ? r->log.e[r->log.n - 1].term : r->log.snap_term;
}

uint64_t raft_term_at(const raft *r, uint64_t index)
{
    if (index == r->log.snap_index)
        return r->log.snap_term;
    if (index < r->log.snap_index || index > raft_log_last(r))
        return 0;
    return r->log.e[index - r->log.snap_index - 1].term;
}

const raft_entry *raft_entry_at(const raft *r, uint64_t index)
{
    if (index <= r->log.snap_index || index > raft_log_last(r))
        return NULL;
    return &r->log.e[index - r->log.snap_index - 1];
}

#define SLAB_MAP ((size_t)1 << 20)
#define SLAB_OWN (SLAB_MAP / 4)
#define SLAB_PAGE ((size_t)4096)

/* Freed mapped slabs wait here, up to SLAB_CACHE_BYTES, for the next slab
 * of the same size: reusing one costs nothing, while unmapping one and
 * mapping a fresh one costs a TLB shootdown on every CPU and the kernel's
 * zeroing of every page (a compaction frees the slabs of a whole snapshot
 * interval at once, on the node's loop).  Process-wide, under a mutex:
 * tests run many cores in one process. */
#define SLAB_CACHE_N 32
#define SLAB_CACHE_BYTES ((size_t)32 << 20)
static pthread_mutex_t slab_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static raft_slab *slab_cache[SLAB_CACHE_N];
static size_t slab_cache_n, slab_cache_bytes;

static bool slab_cache_put(raft_slab *s)
{
    bool kept = false;
    pthread_mutex_lock(&slab_cache_mu);
    if (slab_cache_n < SLAB_CACHE_N && slab_cache_bytes + s->mapped <= SLAB_CACHE_BYTES) {
        slab_cache[slab_cache_n++] = s;
        slab_cache_bytes += s->mapped;
        kept = true;
    }
    pthread_mutex_unlock(&slab_cache_mu);
    return kept;
}

__attribute__((unused)) /* under AddressSanitizer slabs are malloc'ed */
static raft_slab *
slab_cache_get(size_t mapped)
{
    raft_slab *s = NULL;
    pthread_mutex_lock(&slab_cache_mu);
    for (size_t i = 0; i < slab_cache_n; i++) {
        if (slab_cache[i]->mapped == mapped) {
            s = slab_cache[i];
            slab_cache[i] = slab_cache[--slab_cache_n];
            slab_cache_bytes -= mapped;
            break;
        }
    }
    pthread_mutex_unlock(&slab_cache_mu);
    return s;
}

void raft_slab_release(raft_slab *s)
{
    if (!s || --s->live)
        return;
    if (!s->mapped)
        free(s);
    else if (!slab_cache_put(s))
        munmap(s, s->mapped);
}

/* A fresh slab of `bytes` (header included).  Mapped, not malloc'ed: a freed
 * slab goes back to the system at once, never a hole in the heap (see the
 * top of this file), and MADV_DONTFORK keeps it out of a forked child (the
 * node's snapshot encoder reads the state machine, never the log): the
 * parent's writes to it then never pay a copy-on-write fault while a child
 * lives, and fork() has fewer pages to share.  Under AddressSanitizer slabs
 * are malloc'ed, so that its leak checker sees them. */
static raft_slab *slab_map(size_t bytes)
{
#if defined(__SANITIZE_ADDRESS__)
    raft_slab *s = aligned_alloc(SLAB_PAGE, (bytes + SLAB_PAGE - 1) & ~(size_t)(SLAB_PAGE - 1));
    if (!s)
        return NULL;
    s->mapped = 0;
#else
    bytes = (bytes + SLAB_PAGE - 1) & ~(size_t)(SLAB_PAGE - 1);
    raft_slab *s = slab_cache_get(bytes);
    if (!s) {
        s = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                 -1, 0);
        if (s == MAP_FAILED)
            return NULL;
        madvise(s, bytes, MADV_DONTFORK);
        s->mapped = bytes;
    }
#endif
    s->live = 1;
    return s;
}

/* Room for len bytes of entry data; *slab gets the reference it holds. */
static uint8_t *slab_alloc(raft_log *l, size_t len, raft_slab **slab)
{
    if (len > SLAB_OWN) {
        /* Its data starts on a page of its own: storage writes whole pages
         * of it O_DIRECT (storage_blob.c), without a copy into the page
         * cache. */
        raft_slab *s = slab_map(SLAB_PAGE + len);
        if (!s)
            return NULL;
        s->used = s->cap = len;
        *slab = s;
        return (uint8_t *)s + SLAB_PAGE;
    }
    size_t need = (len + 7) & ~(size_t)7;
    if (!l->cur || l->cur->cap - l->cur->used < need) {
        raft_slab *s = slab_map(SLAB_MAP);
        if (!s)
            return NULL;
        s->used = 0;
        s->cap = SLAB_MAP - sizeof *s;
        /* live = 1: the log's, while current */
        raft_slab_release(l->cur);
        l->cur = s;
    }
    uint8_t *p = l->cur->mem + l->cur->used;
    l->cur->used += need;
    l->cur->live++;
    *slab = l->cur;
    return p;
}

int raft_log_append(raft *r, const raft_entry *es, size_t n)
{
    raft_log *l = &r->log;
    if (n == 0)
        return RAFT_OK;
    if (l->n + n > l->cap) {
        size_t cap = l->cap ? l->cap : 64;
        while (cap < l->n + n)
            cap *= 2;
        raft_entry *ne = realloc(l->e, cap * sizeof *ne);
        if (!ne)
            return RAFT_ENOMEM;
        l->e = ne;
        raft_slab **ns = realloc(l->sl, cap * sizeof *ns);
        if (!ns)
            return RAFT_ENOMEM; /* e grew: harmless, cap stays */
        l->sl = ns;
        l->cap = cap;
    }
    size_t k;
    for (k = 0; k < n; k++) {
        raft_entry *d = &l->e[l->n + k];
        *d = es[k];
        d->data = NULL;
        l->sl[l->n + k] = NULL;
        if (es[k].len) {
            d->data = slab_alloc(l, es[k].len, &l->sl[l->n + k]);
            if (!d->data)
                break;
            memcpy(d->data, es[k].data, es[k].len);
        }
        assert(d->index == raft_log_last(r) + 1 + k);
    }
    if (k < n) {
        for (size_t j = 0; j < k; j++)
            raft_slab_release(l->sl[l->n + j]);
        return RAFT_ENOMEM;
    }
    for (k = 0; k < n; k++)
        l->bytes += es[k].len;
    l->n += n;
    return RAFT_OK;
}

void raft_log_truncate(raft *r, uint64_t from)
{
    raft_log *l = &r->log;
    if (from <= l->snap_index)
        from = l->snap_index + 1;
    while (raft_log_last(r) >= from && l->n > 0) {
        raft_entry *e = &l->e[l->n - 1];
        l->bytes -= e->len;
        raft_defer_slab(r, l->sl[l->n - 1]);
        l->n--;
    }
    /* The persisted log must be rewritten from `from` on. */
    if (r->unstable > from)
        r->unstable = from;
    if (r->stable >= from)
        r->stable = from - 1;
}

void raft_log_compact(raft *r, uint64_t index, uint64_t term)
{
    raft_log *l = &r->log;
    if (index <= l->snap_index)
        return;
    size_t drop = index - l->snap_index;
    if (drop > l->n)
        drop = l->n;
    for (size_t k = 0; k < drop; k++) {
        l->bytes -= l->e[k].len;
        raft_defer_slab(r, l->sl[k]);
    }
    memmove(l->e, l->e + drop, (l->n - drop) * sizeof *l->e);
    memmove(l->sl, l->sl + drop, (l->n - drop) * sizeof *l->sl);
    l->n -= drop;
    l->snap_index = index;
    l->snap_term = term;
    if (r->unstable < index + 1)
        r->unstable = index + 1;
    if (r->stable < index)
        r->stable = index;
}

void raft_log_free(raft *r)
{
    for (size_t k = 0; k < r->log.n; k++)
        raft_slab_release(r->log.sl[k]);
    raft_slab_release(r->log.cur);
    free(r->log.e);
    free(r->log.sl);
    memset(&r->log, 0, sizeof r->log);
}

void raft_conf_at(const raft *r, uint64_t index, raft_conf *out, uint64_t *at)
{
    *out = r->snap.conf;
    *at = r->log.snap_index;
    uint64_t last = raft_log_last(r);
    if (index > last)
        index = last;
    for (uint64_t i = r->log.snap_index + 1; i <= index; i++) {
        const raft_entry *e = raft_entry_at(r, i);
        if (e->type != RAFT_ENTRY_CONF)
            continue;
        raft_conf_change cc;
        /* Entries were validated when proposed; a foreign one that does
         * not decode is skipped rather than trusted. */
        if (raft_conf_change_decode(e->data, e->len, &cc) != RAFT_OK)
            continue;
        raft_conf_apply(out, &cc);
        *at = i;
    }
}

/* §5.4.1: the candidate's log is at least as up-to-date as ours. */
bool raft_up_to_date(const raft *r, uint64_t last_index, uint64_t last_term)
{
    uint64_t t = raft_log_last_term(r);
    return last_term > t || (last_term == t && last_index >= raft_log_last(r));
}
