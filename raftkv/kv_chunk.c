/*
 * kv_chunk.c — the memory of file data chunks (KV_CHUNK_SIZE bytes each).
 *
 * A file larger than one chunk is an array of chunks (kv_inode.c).  They
 * come from 2 MiB regions, aligned to 2 MiB and marked for transparent huge
 * pages: a large file then costs one page fault (and one zeroing) per 2 MiB
 * rather than 512, each expensive on a virtual machine, and fork() (the
 * snapshot encoder) copies one page-table entry per region instead of 512.
 * The place of the first chunk of each region holds its header (so a chunk
 * finds its region by masking its address; 1/32 of the region), the other
 * REGION_CHUNKS chunks are handed out.  A freed chunk is zeroed and kept in its region for the next one;
 * a region whose chunks are all free is unmapped, except for the last few
 * (REGION_SPARE), which wait for the next large file.  New regions are
 * made ahead of need by a thread of their own (see "ready" below).
 * Process-wide, under a mutex: the unit tests run several state machines in
 * one process.
 *
 * Under AddressSanitizer chunks are calloc'ed, so that its leak checker sees
 * them.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "raftkv/kv_internal.h"

#if defined(__SANITIZE_ADDRESS__)

uint8_t *chunk_alloc(void)
{
    return calloc(1, CH);
}

void chunk_free(uint8_t *c)
{
    free(c);
}

#else

#define REGION ((uintptr_t)2 << 20)
#define REGION_CHUNKS ((unsigned)(REGION / CH) - 1) /* the first holds the header */
#define REGION_SPARE 4

_Static_assert(REGION % CH == 0 && REGION / CH >= 2 && REGION / CH <= 33,
               "a region's free chunks fit a 32-bit mask");

typedef struct region {
    struct region *prev, *next; /* in the list of regions with a free chunk */
    uint32_t free_mask;         /* bit i: chunk i + 1 is free */
    uint32_t fresh_mask;        /* bit i: chunk i + 1 was never handed out (zero) */
} region;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static region *with_free; /* regions with at least one free chunk */
static unsigned spare;    /* regions with every chunk free */

#define ALL_FREE (REGION_CHUNKS == 32 ? UINT32_MAX : ((uint32_t)1 << REGION_CHUNKS) - 1)

static void list_remove(region *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        with_free = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void list_push(region *r)
{
    r->prev = NULL;
    r->next = with_free;
    if (with_free)
        with_free->prev = r;
    with_free = r;
}

/* A fresh region, 2 MiB-aligned, or NULL.  Its pages are zero; writing its
 * header faults the huge page in. */
static region *region_fresh(void)
{
    size_t span = 2 * REGION;
    uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t base = ((uintptr_t)p + REGION - 1) & ~(REGION - 1);
    size_t head = base - (uintptr_t)p, tail = span - head - REGION;
    if (head)
        munmap(p, head);
    if (tail)
        munmap((uint8_t *)base + REGION, tail);
    madvise((void *)base, REGION, MADV_HUGEPAGE);
    region *r = (region *)base;
    r->free_mask = r->fresh_mask = ALL_FREE;
    return r;
}

/* Regions made ahead of need by a thread of their own (filler_main): the
 * first touch of fresh memory is what a large write's apply paid most for
 * (a huge page costs milliseconds on a virtual machine), on the loop, in
 * the path of every acknowledgement.  Up to READY_MAX wait, populated, and
 * MADV_DONTFORK until taken: a snapshot's child forked meanwhile does not
 * share them, so the parent's first write does not copy them. */
#define READY_MAX 4
static region *ready[READY_MAX];
static unsigned nready;
static bool filler_on, filler_stop, filler_gone; /* gone: it ended, not joined yet */
static pthread_t filler;
static pthread_cond_t filler_cv = PTHREAD_COND_INITIALIZER;

static void *filler_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool_mu);
    for (;;) {
        while (nready >= READY_MAX && !filler_stop)
            pthread_cond_wait(&filler_cv, &pool_mu);
        if (filler_stop)
            break;
        pthread_mutex_unlock(&pool_mu);
        region *r = region_fresh();
        if (r) {
#ifdef MADV_POPULATE_WRITE
            madvise(r, REGION, MADV_POPULATE_WRITE); /* every page, huge or not */
#endif
            madvise(r, REGION, MADV_DONTFORK);
        }
        pthread_mutex_lock(&pool_mu);
        if (!r)
            break; /* no memory now: the next region_map starts another */
        ready[nready++] = r;
    }
    filler_gone = true;
    pthread_mutex_unlock(&pool_mu);
    return NULL;
}

/* At exit: the filler is stopped and joined, so that nothing of it is left
 * running (or reported as leaked) while the process ends.  A forked child
 * has none (fork_child). */
static void filler_end(void)
{
    pthread_mutex_lock(&pool_mu);
    bool mine = filler_on;
    filler_stop = true;
    pthread_cond_signal(&filler_cv);
    pthread_mutex_unlock(&pool_mu);
    if (mine)
        pthread_join(filler, NULL);
}

/* fork(): the pool is not changing while the child is made, and the child
 * has neither the filler nor the ready regions (MADV_DONTFORK). */
static void fork_prepare(void)
{
    pthread_mutex_lock(&pool_mu);
}
static void fork_parent(void)
{
    pthread_mutex_unlock(&pool_mu);
}
static void fork_child(void)
{
    nready = 0;
    filler_on = filler_gone = false;
    pthread_mutex_unlock(&pool_mu);
}

/* A region for chunk_alloc (called with pool_mu held), or NULL: a ready one
 * if any, and the filler is told to make the next. */
static region *region_map(void)
{
    region *r = NULL;
    if (nready) {
        r = ready[--nready];
        madvise(r, REGION, MADV_DOFORK); /* part of the state from now on */
    }
    if (filler_on && filler_gone && !filler_stop) {
        pthread_join(filler, NULL); /* it has ended (no memory then) */
        filler_on = filler_gone = false;
    }
    if (!filler_on && !filler_stop) {
        static bool hooked;
        if (!hooked) {
            hooked = atexit(filler_end) == 0 &&
                     pthread_atfork(fork_prepare, fork_parent, fork_child) == 0;
        }
        if (hooked)
            filler_on = pthread_create(&filler, NULL, filler_main, NULL) == 0;
    }
    pthread_cond_signal(&filler_cv);
    return r ? r : region_fresh();
}

uint8_t *chunk_alloc(void)
{
    pthread_mutex_lock(&pool_mu);
    region *r = with_free;
    if (!r) {
        r = region_map();
        if (!r) {
            pthread_mutex_unlock(&pool_mu);
            return NULL;
        }
        list_push(r);
    } else if (r->free_mask == ALL_FREE) {
        spare--;
    }
    unsigned i = (unsigned)__builtin_ctz(r->free_mask);
    uint32_t bit = (uint32_t)1 << i;
    bool fresh = r->fresh_mask & bit;
    r->free_mask &= ~bit;
    r->fresh_mask &= ~bit;
    if (!r->free_mask)
        list_remove(r);
    pthread_mutex_unlock(&pool_mu);
    uint8_t *c = (uint8_t *)r + (size_t)(i + 1) * CH;
    if (!fresh)
        memset(c, 0, CH);
    return c;
}

void chunk_free(uint8_t *c)
{
    if (!c)
        return;
    region *r = (region *)((uintptr_t)c & ~(REGION - 1));
    unsigned i = (unsigned)(((uintptr_t)c - (uintptr_t)r) / CH) - 1;
    pthread_mutex_lock(&pool_mu);
    if (!r->free_mask)
        list_push(r);
    r->free_mask |= (uint32_t)1 << i;
    if (r->free_mask == ALL_FREE) {
        if (spare < REGION_SPARE) {
            spare++;
        } else {
            list_remove(r);
            munmap(r, REGION);
        }
    }
    pthread_mutex_unlock(&pool_mu);
}

#endif
