/*
 * wire.c — encoder and bounds-checked decoder of hstore frames (see wire.h
 * for the layout).
 *
 * The decoder is a cursor (struct rd) over the payload with a sticky error:
 * every get_* first checks that the bytes exist, and once anything failed all
 * further reads return zeros, so a decode function reads its fields in order
 * and checks the error once.  Counts are validated against the bytes left
 * (times the smallest possible element size) BEFORE anything is allocated,
 * so a forged count cannot make the decoder allocate gigabytes.
 */
#include "net/wire.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "raftkv/crc32c.h"

/* ---- error accounting ------------------------------------------------------ */

static _Atomic uint64_t wire_errs[NET_ERR_COUNT];

static int count_err(int rc)
{
    if (rc < 0 && -rc < NET_ERR_COUNT)
        atomic_fetch_add_explicit(&wire_errs[-rc], 1, memory_order_relaxed);
    return rc;
}

uint64_t net_wire_errors(void)
{
    uint64_t n = 0;
    for (int i = 1; i < NET_ERR_COUNT; i++)
        n += atomic_load_explicit(&wire_errs[i], memory_order_relaxed);
    return n;
}

uint64_t net_wire_errors_by_code(int code)
{
    if (code >= 0 || -code >= NET_ERR_COUNT)
        return 0;
    return atomic_load_explicit(&wire_errs[-code], memory_order_relaxed);
}

const char *net_strerror(int rc)
{
    switch (rc) {
    case NET_OK: return "ok";
    case NET_ETRUNC: return "truncated message";
    case NET_EMAGIC: return "bad magic (not an hstore message)";
    case NET_EVERSION: return "unsupported wire version";
    case NET_ETYPE: return "unexpected message type";
    case NET_ELENGTH: return "length mismatch";
    case NET_ECHECKSUM: return "checksum mismatch";
    case NET_EMALFORMED: return "malformed message";
    case NET_ENOMEM: return "out of memory";
    case NET_EINVAL: return "invalid argument";
    case NET_EAGAIN: return "nothing to receive";
    case NET_EUNAVAIL: return "unavailable: no answer before the deadline, outcome unknown";
    case NET_EBADREQ: return "request rejected as malformed";
    case NET_EIO: return "socket error";
    case NET_ESESSION: return "session expired: the outcome of the request is unknown";
    case NET_EAUTH: return "not authorized (wrong or missing cluster secret)";
    case NET_EBUSY: return "the node refused the connection (over its client limits)";
    default: return "unknown error";
    }
}

/* ---- little-endian helpers ---------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- writer --------------------------------------------------------------------- */

void net_buf_free(net_buf *b)
{
    if (!b)
        return;
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

typedef struct wr {
    net_buf *b;
    int err;
} wr;

static uint8_t *wr_room(wr *w, size_t n)
{
    if (w->err)
        return NULL;
    net_buf *b = w->b;
    if (n > SIZE_MAX - b->len) {
        w->err = NET_EINVAL;
        return NULL;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            w->err = NET_ENOMEM;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    uint8_t *p = b->p + b->len;
    b->len += n;
    return p;
}

static void w8(wr *w, uint8_t v)
{
    uint8_t *p = wr_room(w, 1);
    if (p)
        *p = v;
}
static void w32(wr *w, uint32_t v)
{
    uint8_t *p = wr_room(w, 4);
    if (p)
        put32(p, v);
}
static void w64(wr *w, uint64_t v)
{
    uint8_t *p = wr_room(w, 8);
    if (p)
        put64(p, v);
}
static void wbytes(wr *w, const void *src, size_t n)
{
    if (n == 0)
        return;
    if (!src) {
        w->err = NET_EINVAL;
        return;
    }
    uint8_t *p = wr_room(w, n);
    if (p)
        memcpy(p, src, n);
}
/* A short string from a fixed char[NET_ADDR_MAX] array: u8 length + bytes.
 * The array must hold a NUL terminator within its size. */
static void wstr(wr *w, const char *s, size_t max)
{
    const char *nul = memchr(s, '\0', max);
    if (!nul) {
        w->err = NET_EINVAL;
        return;
    }
    size_t n = (size_t)(nul - s);
    w8(w, (uint8_t)n);
    wbytes(w, s, n);
}

static void frame_begin(wr *w, net_buf *out)
{
    w->b = out;
    w->err = 0;
    out->len = 0;
    wr_room(w, NET_HDR_LEN);
}

static int frame_end(wr *w, uint8_t type)
{
    if (w->err) {
        w->b->len = 0;
        return w->err;
    }
    net_buf *b = w->b;
    size_t plen = b->len - NET_HDR_LEN;
    if (plen > NET_MAX_PAYLOAD) {
        b->len = 0;
        return NET_EINVAL;
    }
    uint8_t *h = b->p;
    put32(h, NET_MAGIC);
    h[4] = NET_VERSION;
    h[5] = type;
    put16(h + 6, 0);
    put32(h + 8, (uint32_t)plen);
    put32(h + 12, crc32c(0, b->p + NET_HDR_LEN, plen));
    return NET_OK;
}

/* ---- reader ------------------------------------------------------------------------ */

typedef struct rd {
    const uint8_t *p;
    size_t left;
    int err;
} rd;

static const uint8_t *rd_take(rd *r, size_t n)
{
    if (r->err)
        return NULL;
    if (n > r->left) {
        r->err = NET_ETRUNC;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}
static uint8_t r8(rd *r)
{
    const uint8_t *p = rd_take(r, 1);
    return p ? *p : 0;
}
static uint32_t r32(rd *r)
{
    const uint8_t *p = rd_take(r, 4);
    return p ? get32(p) : 0;
}
static uint64_t r64(rd *r)
{
    const uint8_t *p = rd_take(r, 8);
    return p ? get64(p) : 0;
}
static bool rbool(rd *r)
{
    uint8_t v = r8(r);
    if (v > 1 && !r->err)
        r->err = NET_EMALFORMED;
    return v == 1;
}
/* Reads a u8-length string into dst[max] (NUL-terminated).  Embedded NULs and
 * strings that would not fit with their terminator are malformed. */
static void rstr(rd *r, char *dst, size_t max)
{
    dst[0] = '\0';
    uint8_t n = r8(r);
    if (r->err)
        return;
    if ((size_t)n >= max) {
        r->err = NET_EMALFORMED;
        return;
    }
    const uint8_t *p = rd_take(r, n);
    if (!p)
        return;
    if (memchr(p, '\0', n)) {
        r->err = NET_EMALFORMED;
        return;
    }
    memcpy(dst, p, n);
    dst[n] = '\0';
}
/* u32 length + bytes, returned as a pointer into the input. */
static const uint8_t *rblob(rd *r, uint32_t *len)
{
    uint32_t n = r32(r);
    *len = 0;
    if (r->err)
        return NULL;
    const uint8_t *p = rd_take(r, n);
    if (!p)
        return NULL;
    *len = n;
    return n ? p : NULL;
}

/* Header checks in the order that gives the most useful error: a frame that
 * is not ours says "magic" rather than "checksum". */
static int frame_check(const void *buf, size_t len, net_hdr *h)
{
    const uint8_t *p = buf;
    if (!buf || len < NET_HDR_LEN)
        return NET_ETRUNC;
    if (get32(p) != NET_MAGIC)
        return NET_EMAGIC;
    net_hdr hh;
    hh.version = p[4];
    hh.type = p[5];
    hh.flags = get16(p + 6);
    hh.len = get32(p + 8);
    hh.crc = get32(p + 12);
    if (hh.version != NET_VERSION)
        return NET_EVERSION;
    if (hh.type == 0 || hh.type >= NET_MSG_TYPE_MAX)
        return NET_ETYPE;
    if (hh.flags != 0)
        return NET_EMALFORMED;
    if (hh.len > NET_MAX_PAYLOAD)
        return NET_ELENGTH;
    if (len - NET_HDR_LEN < hh.len)
        return NET_ETRUNC;
    if (len - NET_HDR_LEN > hh.len)
        return NET_ELENGTH;
    if (crc32c(0, p + NET_HDR_LEN, hh.len) != hh.crc)
        return NET_ECHECKSUM;
    if (h)
        *h = hh;
    return hh.type;
}

int net_frame_check(const void *buf, size_t len, net_hdr *h)
{
    return count_err(frame_check(buf, len, h));
}

/* Checks the frame and its type, and positions r on the payload. */
static int open_payload(const void *buf, size_t len, uint8_t want, rd *r)
{
    net_hdr h;
    int rc = frame_check(buf, len, &h);
    if (rc < 0)
        return rc;
    if (h.type != want)
        return NET_ETYPE;
    r->p = (const uint8_t *)buf + NET_HDR_LEN;
    r->left = h.len;
    r->err = 0;
    return NET_OK;
}

/* The payload must be consumed exactly. */
static int close_payload(rd *r)
{
    if (r->err)
        return r->err;
    if (r->left != 0)
        return NET_EMALFORMED;
    return NET_OK;
}

/* ---- shared pieces: conf and status ------------------------------------------------ */

static void w_conf(wr *w, const raft_conf *c)
{
    if (c->n > RAFT_MAX_NODES) {
        w->err = w->err ? w->err : NET_EINVAL;
        return;
    }
    w8(w, (uint8_t)c->n);
    for (uint32_t i = 0; i < c->n; i++) {
        w64(w, c->ids[i]);
        wstr(w, c->addrs[i], RAFT_ADDR_MAX);
    }
}

static void r_conf(rd *r, raft_conf *c)
{
    memset(c, 0, sizeof(*c));
    uint8_t n = r8(r);
    if (r->err)
        return;
    if (n > RAFT_MAX_NODES) {
        r->err = NET_EMALFORMED;
        return;
    }
    c->n = n;
    for (uint32_t i = 0; i < n && !r->err; i++) {
        c->ids[i] = r64(r);
        rstr(r, c->addrs[i], RAFT_ADDR_MAX);
    }
}

static void w_status(wr *w, const raft_status *s)
{
    w64(w, s->id);
    w8(w, (uint8_t)s->role);
    w64(w, s->term);
    w64(w, s->vote);
    w64(w, s->leader);
    w64(w, s->commit);
    w64(w, s->applied);
    w64(w, s->first_index);
    w64(w, s->last_index);
    w64(w, s->snapshot_index);
    w_conf(w, &s->conf);
    if (s->n_peers > RAFT_MAX_NODES || (unsigned)s->role > RAFT_LEADER) {
        w->err = w->err ? w->err : NET_EINVAL;
        return;
    }
    w8(w, (uint8_t)s->n_peers);
    for (uint32_t i = 0; i < s->n_peers; i++) {
        const raft_peer_status *p = &s->peers[i];
        if (p->state < 0 || p->state > 255) {
            w->err = w->err ? w->err : NET_EINVAL;
            return;
        }
        w64(w, p->id);
        w64(w, p->match);
        w64(w, p->next);
        w8(w, (uint8_t)p->state);
        w8(w, p->active ? 1 : 0);
    }
}

static void r_status(rd *r, raft_status *s)
{
    memset(s, 0, sizeof(*s));
    s->id = r64(r);
    uint8_t role = r8(r);
    if (!r->err && role > RAFT_LEADER)
        r->err = NET_EMALFORMED;
    s->role = (raft_role)role;
    s->term = r64(r);
    s->vote = r64(r);
    s->leader = r64(r);
    s->commit = r64(r);
    s->applied = r64(r);
    s->first_index = r64(r);
    s->last_index = r64(r);
    s->snapshot_index = r64(r);
    r_conf(r, &s->conf);
    uint8_t n = r8(r);
    if (r->err)
        return;
    if (n > RAFT_MAX_NODES) {
        r->err = NET_EMALFORMED;
        return;
    }
    s->n_peers = n;
    for (uint32_t i = 0; i < n && !r->err; i++) {
        raft_peer_status *p = &s->peers[i];
        p->id = r64(r);
        p->match = r64(r);
        p->next = r64(r);
        p->state = r8(r);
        p->active = rbool(r);
    }
}

/* ---- RAFT ------------------------------------------------------------------------------ */

enum { RF_REJECT = 1, RF_TRANSFER = 2, RF_DONE = 4, RF_ALL = 7 };
/* Smallest encoding of one entry: term, index, type, len. */
#define ENTRY_MIN 21u

int net_encode_raft(const raft_msg *m, net_buf *out)
{
    if (!m || !out)
        return NET_EINVAL;
    wr w;
    frame_begin(&w, out);
    if (m->type == 0 || m->type >= RAFT_MSG_TYPE_MAX || (m->n_entries && !m->entries))
        w.err = NET_EINVAL;
    w8(&w, m->type);
    w64(&w, m->from);
    w64(&w, m->to);
    w64(&w, m->term);
    w64(&w, m->index);
    w64(&w, m->log_term);
    w64(&w, m->commit);
    w8(&w, (uint8_t)((m->reject ? RF_REJECT : 0) | (m->transfer ? RF_TRANSFER : 0) |
                     (m->done ? RF_DONE : 0)));
    w64(&w, m->hint_term);
    w64(&w, m->hint_index);
    w64(&w, m->ctx);
    w64(&w, m->offset);
    w64(&w, m->snap_len);
    w_conf(&w, &m->conf);
    w32(&w, m->n_entries);
    for (uint32_t i = 0; i < m->n_entries && !w.err; i++) {
        const raft_entry *e = &m->entries[i];
        w64(&w, e->term);
        w64(&w, e->index);
        w8(&w, e->type);
        w32(&w, e->len);
        wbytes(&w, e->data, e->len);
    }
    w32(&w, m->chunk_len);
    wbytes(&w, m->chunk, m->chunk_len);
    return frame_end(&w, NET_MSG_RAFT);
}

static int decode_raft(const void *buf, size_t len, raft_msg *m)
{
    rd r;
    int rc = open_payload(buf, len, NET_MSG_RAFT, &r);
    if (rc < 0)
        return rc;
    m->type = r8(&r);
    if (!r.err && (m->type == 0 || m->type >= RAFT_MSG_TYPE_MAX))
        return NET_EMALFORMED;
    m->from = r64(&r);
    m->to = r64(&r);
    m->term = r64(&r);
    m->index = r64(&r);
    m->log_term = r64(&r);
    m->commit = r64(&r);
    uint8_t fl = r8(&r);
    if (!r.err && (fl & ~RF_ALL))
        return NET_EMALFORMED;
    m->reject = fl & RF_REJECT;
    m->transfer = fl & RF_TRANSFER;
    m->done = fl & RF_DONE;
    m->hint_term = r64(&r);
    m->hint_index = r64(&r);
    m->ctx = r64(&r);
    m->offset = r64(&r);
    m->snap_len = r64(&r);
    r_conf(&r, &m->conf);
    uint32_t n = r32(&r);
    if (r.err)
        return r.err;
    /* A count is believable only if that many minimal entries fit in what is
     * left; checked before the allocation it sizes. */
    if ((uint64_t)n * ENTRY_MIN > r.left)
        return NET_EMALFORMED;
    if (n) {
        m->entries = calloc(n, sizeof(raft_entry));
        if (!m->entries)
            return NET_ENOMEM;
        m->n_entries = n;
    }
    for (uint32_t i = 0; i < n && !r.err; i++) {
        raft_entry *e = &m->entries[i];
        e->term = r64(&r);
        e->index = r64(&r);
        e->type = r8(&r);
        if (!r.err && e->type > RAFT_ENTRY_CONF)
            r.err = NET_EMALFORMED;
        /* The core's entries are mutable in type only; the bytes stay in buf. */
        e->data = (uint8_t *)(uintptr_t)rblob(&r, &e->len);
    }
    m->chunk = (uint8_t *)(uintptr_t)rblob(&r, &m->chunk_len);
    return close_payload(&r);
}

int net_decode_raft(const void *buf, size_t len, raft_msg *m)
{
    if (!m)
        return NET_EINVAL;
    memset(m, 0, sizeof(*m));
    int rc = decode_raft(buf, len, m);
    if (rc < 0) {
        net_raft_msg_free(m);
        memset(m, 0, sizeof(*m));
    }
    return count_err(rc);
}

void net_raft_msg_free(raft_msg *m)
{
    if (!m)
        return;
    free(m->entries);
    m->entries = NULL;
    m->n_entries = 0;
}

/* ---- CLIENT_REQ / CLIENT_RESP ------------------------------------------------------------ */

int net_encode_client_req(const net_client_req *q, net_buf *out)
{
    if (!q || !out)
        return NET_EINVAL;
    wr w;
    frame_begin(&w, out);
    if (q->flags & ~NET_REQ_FLAGS)
        w.err = NET_EINVAL;
    w64(&w, q->client_id);
    w64(&w, q->seq);
    w64(&w, q->req_id);
    w8(&w, q->flags);
    w32(&w, q->op_len);
    wbytes(&w, q->op, q->op_len);
    return frame_end(&w, NET_MSG_CLIENT_REQ);
}

int net_decode_client_req(const void *buf, size_t len, net_client_req *q)
{
    if (!q)
        return NET_EINVAL;
    memset(q, 0, sizeof(*q));
    rd r;
    int rc = open_payload(buf, len, NET_MSG_CLIENT_REQ, &r);
    if (rc == 0) {
        q->client_id = r64(&r);
        q->seq = r64(&r);
        q->req_id = r64(&r);
        q->flags = r8(&r);
        if (!r.err && (q->flags & ~NET_REQ_FLAGS))
            r.err = NET_EMALFORMED;
        q->op = rblob(&r, &q->op_len);
        rc = close_payload(&r);
    }
    if (rc < 0)
        memset(q, 0, sizeof(*q));
    return count_err(rc);
}

int net_encode_client_resp(const net_client_resp *s, net_buf *out)
{
    if (!s || !out)
        return NET_EINVAL;
    wr w;
    frame_begin(&w, out);
    if (s->status >= NET_ST_MAX)
        w.err = NET_EINVAL;
    w64(&w, s->req_id);
    w8(&w, s->status);
    w64(&w, s->leader_id);
    wstr(&w, s->leader_addr, NET_ADDR_MAX);
    w32(&w, s->reply_len);
    wbytes(&w, s->reply, s->reply_len);
    return frame_end(&w, NET_MSG_CLIENT_RESP);
}

int net_decode_client_resp(const void *buf, size_t len, net_client_resp *s)
{
    if (!s)
        return NET_EINVAL;
    memset(s, 0, sizeof(*s));
    rd r;
    int rc = open_payload(buf, len, NET_MSG_CLIENT_RESP, &r);
    if (rc == 0) {
        s->req_id = r64(&r);
        s->status = r8(&r);
        if (!r.err && s->status >= NET_ST_MAX)
            r.err = NET_EMALFORMED;
        s->leader_id = r64(&r);
        rstr(&r, s->leader_addr, NET_ADDR_MAX);
        s->reply = rblob(&r, &s->reply_len);
        rc = close_payload(&r);
    }
    if (rc < 0)
        memset(s, 0, sizeof(*s));
    return count_err(rc);
}

/* ---- STATUS_REQ / STATUS_RESP -------------------------------------------------------------- */

int net_encode_status_req(uint64_t req_id, net_buf *out)
{
    if (!out)
        return NET_EINVAL;
    wr w;
    frame_begin(&w, out);
    w64(&w, req_id);
    return frame_end(&w, NET_MSG_STATUS_REQ);
}

int net_decode_status_req(const void *buf, size_t len, uint64_t *req_id)
{
    if (!req_id)
        return NET_EINVAL;
    *req_id = 0;
    rd r;
    int rc = open_payload(buf, len, NET_MSG_STATUS_REQ, &r);
    if (rc == 0) {
        uint64_t id = r64(&r);
        rc = close_payload(&r);
        if (rc == 0)
            *req_id = id;
    }
    return count_err(rc);
}

int net_encode_status_resp(const net_status_resp *s, net_buf *out)
{
    if (!s || !out)
        return NET_EINVAL;
    wr w;
    frame_begin(&w, out);
    w64(&w, s->req_id);
    wstr(&w, s->addr, NET_ADDR_MAX);
    w_status(&w, &s->st);
    w64(&w, s->auth_rejected);
    w64(&w, s->conns_cut);
    return frame_end(&w, NET_MSG_STATUS_RESP);
}

int net_decode_status_resp(const void *buf, size_t len, net_status_resp *s)
{
    if (!s)
        return NET_EINVAL;
    memset(s, 0, sizeof(*s));
    rd r;
    int rc = open_payload(buf, len, NET_MSG_STATUS_RESP, &r);
    if (rc == 0) {
        s->req_id = r64(&r);
        rstr(&r, s->addr, NET_ADDR_MAX);
        r_status(&r, &s->st);
        s->auth_rejected = r64(&r);
        s->conns_cut = r64(&r);
        rc = close_payload(&r);
    }
    if (rc < 0)
        memset(s, 0, sizeof(*s));
    return count_err(rc);
}

/* ---- HELLO / HELLO_ACK / ERROR ------------------------------------------------------------- */

const char *net_refuse_str(int code)
{
    switch (code) {
    case NET_REFUSE_AUTH: return "not authorized (wrong or missing cluster secret)";
    case NET_REFUSE_BUSY: return "too many client connections";
    case NET_REFUSE_TOO_LARGE: return "frame over the node's size limit";
    case NET_REFUSE_MEMORY: return "the node's client memory cap was reached";
    case NET_REFUSE_IDLE: return "idle for too long";
    default: return "refused";
    }
}

int net_encode_hello(const uint8_t nonce[NET_NONCE_LEN], net_buf *out)
{
    if (!nonce || !out)
        return NET_EINVAL;
    wr w;
    frame_begin(&w, out);
    wbytes(&w, nonce, NET_NONCE_LEN);
    return frame_end(&w, NET_MSG_HELLO);
}

int net_decode_hello(const void *buf, size_t len, uint8_t nonce[NET_NONCE_LEN])
{
    if (!nonce)
        return NET_EINVAL;
    rd r;
    int rc = open_payload(buf, len, NET_MSG_HELLO, &r);
    if (rc == 0) {
        const uint8_t *p = rd_take(&r, NET_NONCE_LEN);
        rc = close_payload(&r);
        if (rc == 0)
            memcpy(nonce, p, NET_NONCE_LEN);
    }
    return count_err(rc);
}

int net_encode_hello_ack(uint64_t node_id, const uint8_t nonce[NET_NONCE_LEN], net_buf *out)
{
    if (!nonce || !out)
        return NET_EINVAL;
    wr w;
    frame_begin(&w, out);
    w64(&w, node_id);
    wbytes(&w, nonce, NET_NONCE_LEN);
    return frame_end(&w, NET_MSG_HELLO_ACK);
}

int net_decode_hello_ack(const void *buf, size_t len, uint64_t *node_id,
                         uint8_t nonce[NET_NONCE_LEN])
{
    if (!nonce || !node_id)
        return NET_EINVAL;
    rd r;
    int rc = open_payload(buf, len, NET_MSG_HELLO_ACK, &r);
    if (rc == 0) {
        uint64_t id = r64(&r);
        const uint8_t *p = rd_take(&r, NET_NONCE_LEN);
        rc = close_payload(&r);
        if (rc == 0) {
            *node_id = id;
            memcpy(nonce, p, NET_NONCE_LEN);
        }
    }
    return count_err(rc);
}

int net_encode_error(uint8_t code, net_buf *out)
{
    if (!out)
        return NET_EINVAL;
    wr w;
    frame_begin(&w, out);
    w8(&w, code);
    return frame_end(&w, NET_MSG_ERROR);
}

int net_decode_error(const void *buf, size_t len, uint8_t *code)
{
    if (!code)
        return NET_EINVAL;
    rd r;
    int rc = open_payload(buf, len, NET_MSG_ERROR, &r);
    if (rc == 0) {
        uint8_t c = r8(&r);
        rc = close_payload(&r);
        if (rc == 0 && (c == 0 || c >= NET_REFUSE_MAX))
            rc = NET_EMALFORMED;
        if (rc == 0)
            *code = c;
    }
    return count_err(rc);
}
