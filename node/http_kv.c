/*
 * http_kv.c — the key-value routes of the HTTP server: GET, PUT, POST
 * (append) and DELETE of /v1/kv/KEY and the listing GET /v1/kv/?prefix=P.
 * Each goes through node_submit like a request of the client port: reads
 * after a ReadIndex round (linearizable), commands through the log in a
 * session of the server's pool (exactly-once: node_submit retries a command
 * with the same (session, seq), and one session carries one command at a
 * time, so its seqs reach the state machine in order).
 *
 * Answers (README, HTTP API): values are bytes (application/octet-stream);
 * errors are JSON with the meaning of the command line's exit codes: 404
 * (exit 1), 400 / 413 / 507 (exit 2), 503 with Retry-After (exit 3: no
 * quorum within the deadline, the outcome of a write unknown).
 */
#include "node/http_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "raftkv/kv.h"

int http_shared_init(http_shared *s)
{
    memset(s, 0, sizeof *s);
    atomic_init(&s->conns_open, 0);
    return pthread_mutex_init(&s->mu, NULL) == 0 ? 0 : -1;
}

void http_shared_destroy(http_shared *s)
{
    free(s->free_sessions);
    pthread_mutex_destroy(&s->mu);
}

/* ---- the session pool ---- */

/* A session no other request uses until session_put.  NODE_OK or the
 * error of registering a new one. */
static int session_get(node_http *h, http_session *s)
{
    http_shared *sh = http_shared_of(h);
    pthread_mutex_lock(&sh->mu);
    bool have = sh->n_free > 0;
    if (have)
        *s = sh->free_sessions[--sh->n_free];
    pthread_mutex_unlock(&sh->mu);
    if (have)
        return NODE_OK;
    s->next_seq = 1;
    return node_register(node_http_node(h), 0, &s->id);
}

static void session_put(node_http *h, const http_session *s)
{
    http_shared *sh = http_shared_of(h);
    pthread_mutex_lock(&sh->mu);
    if (sh->n_free == sh->cap_free) {
        size_t cap = sh->cap_free ? 2 * sh->cap_free : 16;
        http_session *p = realloc(sh->free_sessions, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&sh->mu); /* the session is dropped: harmless */
            return;
        }
        sh->free_sessions = p;
        sh->cap_free = cap;
    }
    sh->free_sessions[sh->n_free++] = *s;
    pthread_mutex_unlock(&sh->mu);
}

/* ---- submitting ---- */

/* Answers a node_submit error; true when there was one. */
static bool node_error(http_resp *rs, int rc, bool write)
{
    switch (rc) {
    case NODE_OK: return false;
    case NODE_EINVAL: http_error(rs, 400, "bad_request", "the request is not valid"); break;
    case NODE_ESTOPPED:
        http_error(rs, 503, "unavailable", "the node is shutting down");
        rs->retry_after_s = 1;
        break;
    case NODE_ENOMEM: http_error(rs, 503, "unavailable", "out of memory"); break;
    default:
        http_error(rs, 503, "unavailable",
                   write ? "no quorum answered within the deadline: the outcome is unknown "
                           "(read before retrying a non-idempotent change)"
                         : "no quorum answered within the deadline");
        rs->retry_after_s = 1;
        break;
    }
    return true;
}

/* Answers a state machine's error status; true when there was one. */
static bool kv_error(http_resp *rs, int st, const char *key)
{
    if (st == 0)
        return false;
    switch (st) {
    case ENOENT: http_error(rs, 404, "not_found", "no such key: %s", key); break;
    case EFBIG: http_error(rs, 413, "too_large", "%s", kv_strstatus(st)); break;
    case ENOSPC: http_error(rs, 507, "no_space", "%s", kv_strstatus(st)); break;
    case KV_ESESSION:
    case KV_ESTALE:
    case KV_EREPLYGONE:
        http_error(rs, 503, "unavailable", "%s: the outcome is unknown", kv_strstatus(st));
        rs->retry_after_s = 1;
        break;
    default: http_error(rs, 400, "bad_request", "%s: %s", key, kv_strstatus(st)); break;
    }
    return true;
}

/* Runs op (a read, or a command in a pooled session).  true with *r
 * decoded (kv_reply_free it) and status 0; false with the error answered. */
static bool run(const http_req *rq, http_resp *rs, const kv_op *op, const char *key, kv_reply *r)
{
    memset(r, 0, sizeof *r);
    uint8_t *enc = NULL, *rep = NULL;
    size_t len = 0, rlen = 0;
    if (kv_op_encode(op, &enc, &len) != 0) {
        http_error(rs, 400, "bad_request", "the request cannot be encoded (too large?)");
        return false;
    }
    bool read = kv_op_is_read(enc, len);
    int rc;
    if (read) {
        rc = node_submit(rq->n, enc, len, true, 0, 0, 0, &rep, &rlen);
    } else {
        http_session s;
        rc = session_get(rq->h, &s);
        if (rc == NODE_OK) {
            rc = node_submit(rq->n, enc, len, false, s.id, s.next_seq++, 0, &rep, &rlen);
            /* A session the cluster dropped is not kept; otherwise next_seq
             * is past any seq sent, even one still in doubt. */
            if (!(rc == NODE_OK && kv_reply_peek_status(rep, rlen) == KV_ESESSION))
                session_put(rq->h, &s);
        }
    }
    free(enc);
    if (node_error(rs, rc, !read)) {
        free(rep);
        return false;
    }
    int drc = kv_reply_decode(rep, rlen, r);
    free(rep);
    if (drc != 0) {
        http_error(rs, 500, "internal", "malformed reply from the state machine");
        return false;
    }
    if (kv_error(rs, r->status, key)) {
        kv_reply_free(r);
        return false;
    }
    return true;
}

/* The key of /v1/kv/KEY; false (answered 400) when empty. */
static bool need_key(const http_req *rq, http_resp *rs)
{
    if (rq->rest[0])
        return true;
    http_error(rs, 400, "bad_request", "no key in the path (/v1/kv/KEY)");
    return false;
}

static void reply_written(http_resp *rs, const char *key, const kv_reply *r)
{
    hbuf b = {0};
    hbuf_puts(&b, "{\"key\":");
    hbuf_json_str(&b, key, strlen(key));
    if (r->has & KV_R_ATTR)
        hbuf_printf(&b, ",\"size\":%" PRIu64 ",\"version\":%" PRId64, r->attr.size,
                    r->attr.ctime_ns);
    hbuf_puts(&b, "}\n");
    http_reply_json(rs, 200, &b);
}

/* ---- the routes ---- */

static void list(const http_req *rq, http_resp *rs)
{
    const char *prefix = http_arg(rq, "prefix");
    if (!prefix)
        prefix = "";
    kv_op op = {.type = KV_OP_LIST, .path = prefix};
    kv_reply r;
    if (!run(rq, rs, &op, prefix, &r))
        return;
    hbuf b = {0};
    hbuf_puts(&b, "{\"prefix\":");
    hbuf_json_str(&b, prefix, strlen(prefix));
    hbuf_puts(&b, ",\"keys\":[");
    for (size_t i = 0; i < r.n_names; i++) {
        if (i)
            hbuf_puts(&b, ",");
        hbuf_json_str(&b, r.names[i], strlen(r.names[i]));
    }
    hbuf_puts(&b, "]}\n");
    kv_reply_free(&r);
    http_reply_json(rs, 200, &b);
}

static void kv_get(const http_req *rq, http_resp *rs, void *arg)
{
    (void)arg;
    if (!rq->rest[0]) {
        list(rq, rs);
        return;
    }
    kv_op op = {.type = KV_OP_GET, .path = rq->rest};
    kv_reply r;
    if (!run(rq, rs, &op, rq->rest, &r))
        return;
    uint8_t *data = r.data;
    size_t n = r.data_len;
    char *body = malloc(n ? n : 1);
    if (!body) {
        kv_reply_free(&r);
        http_error(rs, 503, "unavailable", "out of memory");
        return;
    }
    if (n)
        memcpy(body, data, n);
    kv_reply_free(&r);
    http_reply(rs, 200, "application/octet-stream", body, n);
}

static void kv_write(const http_req *rq, http_resp *rs, uint8_t type)
{
    if (!need_key(rq, rs))
        return;
    kv_op op = {.type = type, .path = rq->rest, .data = rq->body, .data_len = rq->body_len};
    kv_reply r;
    if (!run(rq, rs, &op, rq->rest, &r))
        return;
    reply_written(rs, rq->rest, &r);
    kv_reply_free(&r);
}

static void kv_put(const http_req *rq, http_resp *rs, void *arg)
{
    (void)arg;
    kv_write(rq, rs, KV_OP_PUT);
}

static void kv_append(const http_req *rq, http_resp *rs, void *arg)
{
    (void)arg;
    kv_write(rq, rs, KV_OP_APPEND);
}

static void kv_del(const http_req *rq, http_resp *rs, void *arg)
{
    (void)arg;
    if (!need_key(rq, rs))
        return;
    kv_op op = {.type = KV_OP_DEL, .path = rq->rest};
    kv_reply r;
    if (!run(rq, rs, &op, rq->rest, &r))
        return;
    kv_reply_free(&r);
    hbuf b = {0};
    hbuf_puts(&b, "{\"key\":");
    hbuf_json_str(&b, rq->rest, strlen(rq->rest));
    hbuf_puts(&b, ",\"deleted\":true}\n");
    http_reply_json(rs, 200, &b);
}

void http_kv_routes(node_http *h)
{
    node_http_route(h, "GET", "/v1/kv", 0, kv_get, NULL);
    node_http_route(h, "GET", "/v1/kv/", HTTP_ROUTE_PREFIX, kv_get, NULL);
    node_http_route(h, "PUT", "/v1/kv/", HTTP_ROUTE_PREFIX, kv_put, NULL);
    node_http_route(h, "POST", "/v1/kv/", HTTP_ROUTE_PREFIX, kv_append, NULL);
    node_http_route(h, "DELETE", "/v1/kv/", HTTP_ROUTE_PREFIX, kv_del, NULL);
}
