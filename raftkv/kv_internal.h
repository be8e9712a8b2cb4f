/*
 * kv_internal.h — byte helpers shared by kv.c and kv_codec.c (not public API).
 *
 * Every integer on the wire and in snapshots is fixed-width little-endian.
 * kv_wbuf grows a malloc'ed buffer and remembers an allocation failure (the
 * caller checks once at the end); kv_rbuf reads with a bounds check on every
 * access and stays failed after the first short read, so decoders check once.
 */
#ifndef HSTORE_KV_INTERNAL_H
#define HSTORE_KV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raftkv/kv.h"

typedef struct kv_wbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} kv_wbuf;

static inline bool kv_wb_reserve(kv_wbuf *w, size_t n)
{
    if (w->oom) return false;
    if (n > SIZE_MAX - w->len) { w->oom = true; return false; }
    if (w->len + n <= w->cap) return true;
    size_t nc = w->cap ? w->cap : 64;
    while (nc < w->len + n) nc = nc > SIZE_MAX / 2 ? w->len + n : nc * 2;
    uint8_t *np = realloc(w->p, nc);
    if (!np) { w->oom = true; return false; }
    w->p = np;
    w->cap = nc;
    return true;
}
static inline void kv_wb_put(kv_wbuf *w, const void *b, size_t n)
{
    if (n == 0 || !kv_wb_reserve(w, n)) return;
    memcpy(w->p + w->len, b, n);
    w->len += n;
}
static inline void kv_wb_u8(kv_wbuf *w, uint8_t v) { kv_wb_put(w, &v, 1); }
static inline void kv_wb_u16(kv_wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    kv_wb_put(w, b, 2);
}
static inline void kv_wb_u32(kv_wbuf *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
    kv_wb_put(w, b, 4);
}
static inline void kv_wb_u64(kv_wbuf *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    kv_wb_put(w, b, 8);
}

typedef struct kv_rbuf {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
} kv_rbuf;

static inline const uint8_t *kv_rb_take(kv_rbuf *r, size_t n)
{
    if (r->bad || n > r->len - r->pos) { r->bad = true; return NULL; }
    const uint8_t *q = r->p + r->pos;
    r->pos += n;
    return q;
}
static inline uint8_t kv_rb_u8(kv_rbuf *r)
{
    const uint8_t *q = kv_rb_take(r, 1);
    return q ? q[0] : 0;
}
static inline uint16_t kv_rb_u16(kv_rbuf *r)
{
    const uint8_t *q = kv_rb_take(r, 2);
    return q ? (uint16_t)(q[0] | (q[1] << 8)) : 0;
}
static inline uint32_t kv_rb_u32(kv_rbuf *r)
{
    const uint8_t *q = kv_rb_take(r, 4);
    uint32_t v = 0;
    if (q) for (int i = 0; i < 4; i++) v |= (uint32_t)q[i] << (8 * i);
    return v;
}
static inline uint64_t kv_rb_u64(kv_rbuf *r)
{
    const uint8_t *q = kv_rb_take(r, 8);
    uint64_t v = 0;
    if (q) for (int i = 0; i < 8; i++) v |= (uint64_t)q[i] << (8 * i);
    return v;
}
static inline size_t kv_rb_left(const kv_rbuf *r) { return r->bad ? 0 : r->len - r->pos; }

/* kv_reply_encode, except that when data_slot is non-NULL the r->data_len data
 * bytes are not copied: *data_slot is where the caller must write them (lets a
 * GET fill the reply straight from file chunks, without a second copy). */
int kv_reply_encode_ex(const kv_reply *r, uint8_t **out, size_t *out_len, uint8_t **data_slot);

#endif
