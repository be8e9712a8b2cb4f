/*
 * hotbuf.c — large buffers of the write path, kept out of fork() (hotbuf.h).
 *
 * Every buffer starts with a header of HDR bytes: its kind and, for a
 * mapping, the bytes usable after the header.  Freed mappings wait in a
 * small cache; the next request takes the smallest one that fits without
 * wasting more than half of it.  Under AddressSanitizer every buffer comes
 * from malloc, so that its leak checker sees them.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "node/hotbuf.h"

#define HDR ((size_t)16)
#define PAGE ((size_t)4096)
#define KIND_HEAP 0x68624831u
#define KIND_MAP 0x68624d31u
#define CACHE_SLOTS 32

typedef struct hdr {
    uint32_t kind;
    uint32_t pad;
    size_t cap; /* KIND_MAP: usable bytes after the header */
} hdr;

_Static_assert(sizeof(hdr) == HDR, "the header is HDR bytes");

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static hdr *cache[CACHE_SLOTS];
static size_t cached, cached_bytes;

static size_t map_bytes(const hdr *h)
{
    return h->cap + HDR;
}

static void *heap_alloc(size_t n)
{
    hdr *h = malloc(HDR + n);
    if (!h)
        return NULL;
    h->kind = KIND_HEAP;
    h->cap = n;
    return (uint8_t *)h + HDR;
}

#if defined(__SANITIZE_ADDRESS__)
static const size_t map_min = SIZE_MAX;
#else
static const size_t map_min = HOTBUF_MIN;
#endif

/* A cached mapping of at least n usable bytes (and at most about twice
 * that), or NULL. */
static hdr *cache_take(size_t n)
{
    pthread_mutex_lock(&cache_mu);
    size_t best = CACHE_SLOTS;
    for (size_t i = 0; i < cached; i++)
        if (cache[i]->cap >= n && cache[i]->cap / 2 <= n &&
            (best == CACHE_SLOTS || cache[i]->cap < cache[best]->cap))
            best = i;
    hdr *h = NULL;
    if (best != CACHE_SLOTS) {
        h = cache[best];
        cache[best] = cache[--cached];
        cached_bytes -= map_bytes(h);
    }
    pthread_mutex_unlock(&cache_mu);
    return h;
}

static void *map_alloc(size_t n)
{
    hdr *h = cache_take(n);
    if (h)
        return (uint8_t *)h + HDR;
    size_t bytes = (HDR + n + PAGE - 1) & ~(PAGE - 1);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, bytes, MADV_DONTFORK);
    h = p;
    h->kind = KIND_MAP;
    h->cap = bytes - HDR;
    return (uint8_t *)h + HDR;
}

void *hotbuf_alloc(size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    return n < map_min ? heap_alloc(n) : map_alloc(n);
}

void hotbuf_free(void *p)
{
    if (!p)
        return;
    hdr *h = (hdr *)((uint8_t *)p - HDR);
    if (h->kind == KIND_HEAP) {
        free(h);
        return;
    }
    size_t bytes = map_bytes(h);
    pthread_mutex_lock(&cache_mu);
    if (cached < CACHE_SLOTS && cached_bytes + bytes <= HOTBUF_KEEP_BYTES) {
        cache[cached++] = h;
        cached_bytes += bytes;
        h = NULL;
    }
    pthread_mutex_unlock(&cache_mu);
    if (h)
        munmap(h, bytes);
}

void *hotbuf_realloc(void *p, size_t n)
{
    if (!p)
        return hotbuf_alloc(n);
    if (n > SIZE_MAX / 2)
        return NULL;
    hdr *h = (hdr *)((uint8_t *)p - HDR);
    if (h->kind == KIND_MAP) {
        if (n <= h->cap)
            return p;
        size_t old = map_bytes(h), bytes = (HDR + n + PAGE - 1) & ~(PAGE - 1);
        void *q = mremap(h, old, bytes, MREMAP_MAYMOVE); /* keeps MADV_DONTFORK */
        if (q == MAP_FAILED)
            return NULL;
        h = q;
        h->cap = bytes - HDR;
        return (uint8_t *)h + HDR;
    }
    if (n < map_min) {
        hdr *g = realloc(h, HDR + n);
        if (!g)
            return NULL;
        g->cap = n;
        return (uint8_t *)g + HDR;
    }
    void *q = map_alloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, h->cap);
    free(h);
    return q;
}
