/*
 * wire.c — encoder and bounds-checked decoder of hstore frames (see wire.h
 * for the layout).
 *
 * Both sides go through raftkv/byte.h and the raft_conf encoding of
 * raftkv/conf_codec.h; what is added here is the NET_E* code of a failure.
 * The encoder is byte.h's writer over the caller's net_buf, plus the first
 * NET_EINVAL (a value the wire cannot represent).  The decoder is byte.h's
 * reader over the payload, plus NET_EMALFORMED once a field is out of range:
 * every read first checks that the bytes exist, and once anything failed all
 * further reads return zeros, so a decode function reads its fields in order
 * and checks the error once (a short read is NET_ETRUNC).  A configuration
 * that does not decode (a count over RAFT_MAX_NODES, an address too long or
 * holding a NUL, or cut short inside a frame whose length is right) is
 * NET_EMALFORMED.  Counts are validated against the bytes left (times the
 * smallest possible element size) BEFORE anything is allocated, so a forged
 * count cannot make the decoder allocate gigabytes.
 */
#include "net/wire.h"
#include "net/wire_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "raftkv/byte.h"
#include "raftkv/conf_codec.h"
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

/* ---- writer ------------------------------------------------------------------ */

void net_buf_free(net_buf *b)
{
    if (!b)
        return;
    if (!b->fixed)
        free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* byte.h's writer over the caller's net_buf, and the first NET_EINVAL (a
 * value the wire cannot represent); running out of memory is the writer's
 * own oom flag. */
typedef struct wr {
    bytes_w b;
    net_buf *out;
    int err;
} wr;

static void w_fail(wr *w, int code)
{
    if (!w->err)
        w->err = code;
}

static void w8(wr *w, uint8_t v)
{
    bw_u8(&w->b, v);
}

static void w32(wr *w, uint32_t v)
{
    bw_u32(&w->b, v);
}

static void w64(wr *w, uint64_t v)
{
    bw_u64(&w->b, v);
}

static void wbytes(wr *w, const void *src, size_t n)
{
    if (n == 0)
        return;
    if (!src) {
        w_fail(w, NET_EINVAL);
        return;
    }
    bw_put(&w->b, src, n);
}

/* A short string from a fixed char[NET_ADDR_MAX] array: u8 length + bytes.
 * The array must hold a NUL terminator within its size. */
static void wstr(wr *w, const char *s, size_t max)
{
    const char *nul = memchr(s, '\0', max);
    if (!nul) {
        w_fail(w, NET_EINVAL);
        return;
    }
    size_t n = (size_t)(nul - s);
    w8(w, (uint8_t)n);
    wbytes(w, s, n);
}

static void frame_begin(wr *w, net_buf *out)
{
    w->out = out;
    w->err = 0;
    w->b = (bytes_w){.p = out->p, .len = 0, .cap = out->cap, .fixed = out->fixed};
    bw_room(&w->b, NET_HDR_LEN);
}

static int frame_end(wr *w, uint8_t type)
{
    if (w->err) {
        w->out->p = w->b.p; /* the writer may have moved the buffer */
        w->out->cap = w->b.cap;
        w->out->len = 0;
        return w->err;
    }
    return net_frame_seal(&w->b, w->out, type);
}

int net_frame_seal(bytes_w *bw, net_buf *b, uint8_t type)
{
    b->p = bw->p; /* the writer may have moved the buffer */
    b->cap = bw->cap;
    b->len = 0;
    if (bw->oom)
        return NET_ENOMEM;
    size_t plen = bw->len - NET_HDR_LEN;
    if (plen > NET_MAX_PAYLOAD)
        return NET_EINVAL;
    uint8_t *h = b->p;
    byte_put32(h, NET_MAGIC);
    h[4] = NET_VERSION;
    h[5] = type;
    byte_put16(h + 6, 0);
    byte_put32(h + 8, (uint32_t)plen);
    byte_put32(h + 12, crc32c(0, b->p + NET_HDR_LEN, plen));
    b->len = bw->len;
    return NET_OK;
}

/* ---- reader ------------------------------------------------------------------------ */

/* byte.h's reader over the payload, and NET_EMALFORMED once a field was out
 * of range (which also stops every later read); a read past the end is
 * NET_ETRUNC. */
typedef struct rd {
    bytes_r b;
    int err;
} rd;

static int rd_err(const rd *r)
{
    if (r->err)
        return r->err;
    return r->b.bad ? NET_ETRUNC : NET_OK;
}

/* A field out of range; the first failure (a short read included) wins. */
static void rd_fail(rd *r, int code)
{
    if (!r->b.bad)
        r->err = code;
    r->b.bad = true;
}

static const uint8_t *rd_take(rd *r, size_t n)
{
    return br_take(&r->b, n);
}

static uint8_t r8(rd *r)
{
    return br_u8(&r->b);
}

static uint32_t r32(rd *r)
{
    return br_u32(&r->b);
}

static uint64_t r64(rd *r)
{
    return br_u64(&r->b);
}

static bool rbool(rd *r)
{
    uint8_t v = r8(r);
    if (v > 1)
        rd_fail(r, NET_EMALFORMED);
    return v == 1;
}

/* Reads a u8-length string into dst[max] (NUL-terminated).  Embedded NULs and
 * strings that would not fit with their terminator are malformed. */
static void rstr(rd *r, char *dst, size_t max)
{
    dst[0] = '\0';
    uint8_t n = r8(r);
    if (r->b.bad)
        return;
    if ((size_t)n >= max) {
        rd_fail(r, NET_EMALFORMED);
        return;
    }
    const uint8_t *p = rd_take(r, n);
    if (!p)
        return;
    if (memchr(p, '\0', n)) {
        rd_fail(r, NET_EMALFORMED);
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
    if (r->b.bad)
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
    if (byte_get32(p) != NET_MAGIC)
        return NET_EMAGIC;
    net_hdr hh;
    hh.version = p[4];
    hh.type = p[5];
    hh.flags = byte_get16(p + 6);
    hh.len = byte_get32(p + 8);
    hh.crc = byte_get32(p + 12);
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
    r->err = 0;
    return net_frame_open(buf, len, want, &r->b);
}

int net_frame_open(const void *buf, size_t len, uint8_t want, bytes_r *r)
{
    net_hdr h;
    int rc = frame_check(buf, len, &h);
    if (rc < 0)
        return rc;
    if (h.type != want)
        return NET_ETYPE;
    *r = br_init((const uint8_t *)buf + NET_HDR_LEN, h.len);
    return NET_OK;
}

int net_wire_count_error(int rc)
{
    return count_err(rc);
}

/* The payload must be consumed exactly. */
static int close_payload(rd *r)
{
    int rc = rd_err(r);
    if (rc != NET_OK)
        return rc;
    if (br_left(&r->b) != 0)
        return NET_EMALFORMED;
    return NET_OK;
}

/* ---- shared pieces: conf and status ------------------------------------------------ */

/* conf_codec's encoding, refusing (NET_EINVAL) what it would not encode
 * faithfully: too many members, or an address without its terminator. */
static void w_conf(wr *w, const raft_conf *c)
{
    if (c->n > RAFT_MAX_NODES) {
        w_fail(w, NET_EINVAL);
        return;
    }
    for (uint32_t i = 0; i < c->n; i++)
        if (!memchr(c->addrs[i], '\0', RAFT_ADDR_MAX)) {
            w_fail(w, NET_EINVAL);
            return;
        }
    raft_conf_put(&w->b, c);
}

static void r_conf(rd *r, raft_conf *c)
{
    if (r->b.bad) {
        memset(c, 0, sizeof(*c));
        return;
    }
    if (!raft_conf_get(&r->b, c))
        r->err = NET_EMALFORMED;
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
        w_fail(w, NET_EINVAL);
        return;
    }
    w8(w, (uint8_t)s->n_peers);
    for (uint32_t i = 0; i < s->n_peers; i++) {
        const raft_peer_status *p = &s->peers[i];
        if (p->state < 0 || p->state > 255) {
            w_fail(w, NET_EINVAL);
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
    if (role > RAFT_LEADER)
        rd_fail(r, NET_EMALFORMED);
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
    if (r->b.bad)
        return;
    if (n > RAFT_MAX_NODES) {
        rd_fail(r, NET_EMALFORMED);
        return;
    }
    s->n_peers = n;
    for (uint32_t i = 0; i < n && !r->b.bad; i++) {
        raft_peer_status *p = &s->peers[i];
        p->id = r64(r);
        p->match = r64(r);
        p->next = r64(r);
        p->state = r8(r);
        p->active = rbool(r);
    }
}

/* ---- RAFT ------------------------------------------------------------------------------ */

/* RF_LEASE: the six read-lease fields (u64 each, raft.h order) follow the
 * chunk; APPEND and APPEND_RESP only, and only when one is set (with leases
 * off a frame is what it was before them). */
enum { RF_REJECT = 1, RF_TRANSFER = 2, RF_DONE = 4, RF_LEASE = 8, RF_ALL = 15 };
#define LEASE_TYPE(t) ((t) == RAFT_MSG_APPEND || (t) == RAFT_MSG_APPEND_RESP)
/* Smallest encoding of one entry: term, index, type, len. */
#define ENTRY_MIN 21u

int net_encode_raft(const raft_msg *m, net_buf *out)
{
    if (!m || !out)
        return NET_EINVAL;
    wr w;
    frame_begin(&w, out);
    if (m->type == 0 || m->type >= RAFT_MSG_TYPE_MAX || (m->n_entries && !m->entries))
        w_fail(&w, NET_EINVAL);
    w8(&w, m->type);
    w64(&w, m->from);
    w64(&w, m->to);
    w64(&w, m->term);
    w64(&w, m->index);
    w64(&w, m->log_term);
    w64(&w, m->commit);
    const uint64_t lf[6] = {m->lease_t,  m->resp_t,  m->grant_resp_t,
                            m->grant_ms, m->visible, m->applied};
    bool lease = LEASE_TYPE(m->type) && (lf[0] | lf[1] | lf[2] | lf[3] | lf[4] | lf[5]) != 0;
    w8(&w, (uint8_t)((m->reject ? RF_REJECT : 0) | (m->transfer ? RF_TRANSFER : 0) |
                     (m->done ? RF_DONE : 0) | (lease ? RF_LEASE : 0)));
    w64(&w, m->hint_term);
    w64(&w, m->hint_index);
    w64(&w, m->ctx);
    w64(&w, m->offset);
    w64(&w, m->snap_len);
    w_conf(&w, &m->conf);
    w32(&w, m->n_entries);
    for (uint32_t i = 0; i < m->n_entries && !w.err && !w.b.oom; i++) {
        const raft_entry *e = &m->entries[i];
        w64(&w, e->term);
        w64(&w, e->index);
        w8(&w, e->type);
        w32(&w, e->len);
        wbytes(&w, e->data, e->len);
    }
    w32(&w, m->chunk_len);
    wbytes(&w, m->chunk, m->chunk_len);
    for (int i = 0; lease && i < 6; i++)
        w64(&w, lf[i]);
    return frame_end(&w, NET_MSG_RAFT);
}

static int decode_raft(const void *buf, size_t len, raft_msg *m)
{
    rd r;
    int rc = open_payload(buf, len, NET_MSG_RAFT, &r);
    if (rc < 0)
        return rc;
    m->type = r8(&r);
    if (!r.b.bad && (m->type == 0 || m->type >= RAFT_MSG_TYPE_MAX))
        return NET_EMALFORMED;
    m->from = r64(&r);
    m->to = r64(&r);
    m->term = r64(&r);
    m->index = r64(&r);
    m->log_term = r64(&r);
    m->commit = r64(&r);
    uint8_t fl = r8(&r);
    if (!r.b.bad && (fl & ~RF_ALL))
        return NET_EMALFORMED;
    if (!r.b.bad && (fl & RF_LEASE) && !LEASE_TYPE(m->type))
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
    rc = rd_err(&r);
    if (rc != NET_OK)
        return rc;
    /* A count is believable only if that many minimal entries fit in what is
     * left; checked before the allocation it sizes. */
    if ((uint64_t)n * ENTRY_MIN > br_left(&r.b))
        return NET_EMALFORMED;
    if (n) {
        m->entries = calloc(n, sizeof(raft_entry));
        if (!m->entries)
            return NET_ENOMEM;
        m->n_entries = n;
    }
    for (uint32_t i = 0; i < n && !r.b.bad; i++) {
        raft_entry *e = &m->entries[i];
        e->term = r64(&r);
        e->index = r64(&r);
        e->type = r8(&r);
        if (e->type > RAFT_ENTRY_CONF)
            rd_fail(&r, NET_EMALFORMED);
        /* The core's entries are mutable in type only; the bytes stay in buf. */
        e->data = (uint8_t *)(uintptr_t)rblob(&r, &e->len);
    }
    m->chunk = (uint8_t *)(uintptr_t)rblob(&r, &m->chunk_len);
    uint64_t *lf[6] = {&m->lease_t,  &m->resp_t,  &m->grant_resp_t,
                       &m->grant_ms, &m->visible, &m->applied};
    for (int i = 0; (fl & RF_LEASE) && i < 6; i++)
        *lf[i] = r64(&r);
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
        w_fail(&w, NET_EINVAL);
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
        if (q->flags & ~NET_REQ_FLAGS)
            rd_fail(&r, NET_EMALFORMED);
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
        w_fail(&w, NET_EINVAL);
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
        if (s->status >= NET_ST_MAX)
            rd_fail(&r, NET_EMALFORMED);
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
