/*
 * byte.h — the one byte codec of hstore: little-endian integers at a fixed
 * place (byte_put and byte_get), a growing writer and a bounds-checked reader.
 *
 * Every encoder (wire frames, kv operations and replies, kv snapshots, the
 * storage blobs, raft configurations) writes through these, so there is one
 * definition of how an integer or a length-prefixed string is laid out.
 *
 * bytes_w grows a malloc'ed buffer and remembers the first failure (out of
 * memory or a size overflow): the caller checks `oom` once at the end.  It
 * can also wrap a buffer the caller owns (p/len/cap set by the caller).
 * bytes_r checks bounds on every access and stays failed after the first
 * short read (`bad`), so decoders check once at the end.
 *
 * Header-only (static inline): used from the raft core's neighbours, net/,
 * and the tests, and costs nothing when a function is unused.
 */
#ifndef HSTORE_BYTE_H
#define HSTORE_BYTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixed places --------------------------------------------------------- */

static inline void byte_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void byte_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void byte_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t byte_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t byte_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t byte_get64(const uint8_t *p)
{
    return (uint64_t)byte_get32(p) | (uint64_t)byte_get32(p + 4) << 32;
}

/* ---- growing writer ------------------------------------------------------- */

typedef struct bytes_w {
    uint8_t *p;
    size_t len, cap;
    bool oom;   /* an allocation failed or a size overflowed: the result is void */
    bool fixed; /* p is the caller's memory, never grown: past cap is oom */
} bytes_w;

/* Room for n more bytes; false (and oom set) if there is none. */
static inline bool bw_reserve(bytes_w *w, size_t n)
{
    if (w->oom)
        return false;
    if (n > SIZE_MAX - w->len) {
        w->oom = true;
        return false;
    }
    if (w->len + n <= w->cap)
        return true;
    if (w->fixed) {
        w->oom = true;
        return false;
    }
    size_t nc = w->cap ? w->cap : 64;
    while (nc < w->len + n)
        nc = nc > SIZE_MAX / 2 ? w->len + n : nc * 2;
    uint8_t *np = realloc(w->p, nc);
    if (!np) {
        w->oom = true;
        return false;
    }
    w->p = np;
    w->cap = nc;
    return true;
}

/* n bytes appended and returned for the caller to fill; NULL on failure. */
static inline uint8_t *bw_room(bytes_w *w, size_t n)
{
    if (!bw_reserve(w, n))
        return NULL;
    uint8_t *q = w->p + w->len;
    w->len += n;
    return q;
}

static inline void bw_put(bytes_w *w, const void *b, size_t n)
{
    if (n == 0 || !bw_reserve(w, n))
        return;
    memcpy(w->p + w->len, b, n);
    w->len += n;
}

static inline void bw_u8(bytes_w *w, uint8_t v)
{
    bw_put(w, &v, 1);
}

static inline void bw_u16(bytes_w *w, uint16_t v)
{
    uint8_t *q = bw_room(w, 2);
    if (q)
        byte_put16(q, v);
}

static inline void bw_u32(bytes_w *w, uint32_t v)
{
    uint8_t *q = bw_room(w, 4);
    if (q)
        byte_put32(q, v);
}

static inline void bw_u64(bytes_w *w, uint64_t v)
{
    uint8_t *q = bw_room(w, 8);
    if (q)
        byte_put64(q, v);
}

static inline void bw_free(bytes_w *w)
{
    free(w->p);
    w->p = NULL;
    w->len = w->cap = 0;
    w->oom = false;
}

/* ---- bounds-checked reader ------------------------------------------------ */

typedef struct bytes_r {
    const uint8_t *p;
    size_t len, pos;
    bool bad; /* a read ran past the end: every later read fails too */
} bytes_r;

static inline bytes_r br_init(const void *p, size_t len)
{
    bytes_r r = {(const uint8_t *)p, len, 0, false};
    return r;
}

/* The next n bytes, or NULL (and bad set) if fewer are left. */
static inline const uint8_t *br_take(bytes_r *r, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *q = r->p + r->pos;
    r->pos += n;
    return q;
}

static inline void br_get(bytes_r *r, void *out, size_t n)
{
    const uint8_t *q = br_take(r, n);
    if (q)
        memcpy(out, q, n);
    else if (n)
        memset(out, 0, n);
}

static inline uint8_t br_u8(bytes_r *r)
{
    const uint8_t *q = br_take(r, 1);
    return q ? q[0] : 0;
}

static inline uint16_t br_u16(bytes_r *r)
{
    const uint8_t *q = br_take(r, 2);
    return q ? byte_get16(q) : 0;
}

static inline uint32_t br_u32(bytes_r *r)
{
    const uint8_t *q = br_take(r, 4);
    return q ? byte_get32(q) : 0;
}

static inline uint64_t br_u64(bytes_r *r)
{
    const uint8_t *q = br_take(r, 8);
    return q ? byte_get64(q) : 0;
}

static inline size_t br_left(const bytes_r *r)
{
    return r->bad ? 0 : r->len - r->pos;
}

#endif
