/*
 * http.c — the HTTP server of a node (see http.h): libmicrohttpd in
 * thread-per-connection mode, the route table, the bearer-token check, the
 * request body (bounded), answers, and the status route.  The key-value,
 * watch and metrics routes live in http_kv.c, http_watch.c and
 * http_metrics.c.
 */
#include "node/http.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "node/http_internal.h"
#include "node/metrics.h"
#include "node/play.h"
#include "raftkv/kv_ops.h"

#define HTTP_MAX_ROUTES 64
#define HTTP_STACK_SIZE (256u * 1024u)

typedef struct route {
    char method[16];
    char path[128];
    size_t plen;
    unsigned flags;
    http_handler fn;
    void *arg;
} route;

struct node_http {
    node *n;
    node_http_config cfg;
    struct MHD_Daemon *d;
    route routes[HTTP_MAX_ROUTES];
    int n_routes;
    atomic_bool stopping;
    http_shared sh; /* state the route files share (http_internal.h) */
};

/* One request in progress on a connection. */
typedef struct conn_ctx {
    const route *rt;
    uint8_t *body;
    size_t len, cap;
    bool too_large;
} conn_ctx;

void node_http_config_init(node_http_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->max_conns = 256;
    c->timeout_s = 30;
    c->max_body = KV_PART_SIZE;
}

node *node_http_node(const node_http *h)
{
    return h->n;
}

http_shared *http_shared_of(node_http *h)
{
    return &h->sh;
}

bool http_stopping(const node_http *h)
{
    return atomic_load(&h->stopping);
}

const char *http_arg(const http_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(const http_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

/* ---- answers ---- */

void http_reply(http_resp *rs, int status, const char *type, char *body, size_t len)
{
    free(rs->body);
    rs->status = status;
    rs->type = type;
    rs->body = body;
    rs->len = len;
}

void http_reply_json(http_resp *rs, int status, hbuf *b)
{
    size_t len;
    char *p = hbuf_take(b, &len);
    if (!p) {
        http_error(rs, 500, "no_memory", "out of memory");
        return;
    }
    http_reply(rs, status, "application/json", p, len);
}

void http_error(http_resp *rs, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hbuf b = {0};
    hbuf_puts(&b, "{\"error\":");
    hbuf_json_str(&b, code, strlen(code));
    hbuf_puts(&b, ",\"message\":");
    hbuf_json_str(&b, msg, strlen(msg));
    hbuf_puts(&b, "}\n");
    size_t len;
    char *p = hbuf_take(&b, &len);
    http_reply(rs, status, "application/json", p, p ? len : 0);
    if (!p)
        rs->status = 500;
}

/* ---- routes ---- */

int node_http_route(node_http *h, const char *method, const char *path, unsigned flags,
                    http_handler fn, void *arg)
{
    if (h->d || h->n_routes == HTTP_MAX_ROUTES || strlen(method) >= sizeof h->routes[0].method ||
        strlen(path) >= sizeof h->routes[0].path)
        return -1;
    route *r = &h->routes[h->n_routes++];
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->plen = strlen(path);
    r->flags = flags;
    r->fn = fn;
    r->arg = arg;
    return 0;
}

static bool route_matches(const route *r, const char *url)
{
    if (r->flags & HTTP_ROUTE_PREFIX)
        return strncmp(url, r->path, r->plen) == 0;
    return strcmp(url, r->path) == 0;
}

/* The route for (method, url): exact first, then the longest prefix.  NULL
 * with *other set when only another method matches. */
static const route *route_find(const node_http *h, const char *method, const char *url, bool *other)
{
    const route *best = NULL;
    *other = false;
    for (int i = 0; i < h->n_routes; i++) {
        const route *r = &h->routes[i];
        if (!route_matches(r, url))
            continue;
        if (strcmp(r->method, method) != 0) {
            *other = true;
            continue;
        }
        if (!(r->flags & HTTP_ROUTE_PREFIX))
            return r;
        if (!best || r->plen > best->plen)
            best = r;
    }
    return best;
}

/* The methods url answers to, for a 405's Allow header. */
static void route_allow(const node_http *h, const char *url, char *out, size_t cap)
{
    out[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < h->n_routes; i++) {
        const route *r = &h->routes[i];
        if (!route_matches(r, url) || strstr(out, r->method))
            continue;
        int w = snprintf(out + len, cap - len, "%s%s", len ? ", " : "", r->method);
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
}

/* ---- the server ---- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    http_stream_ctx *s = cls;
    if (atomic_load(&s->h->stopping))
        return MHD_CONTENT_READER_END_OF_STREAM;
    long n = s->fn(s->arg, buf, max);
    if (n < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    return (ssize_t)n;
}

static void stream_done(void *cls)
{
    http_stream_ctx *s = cls;
    if (s->free_fn)
        s->free_fn(s->arg);
    free(s);
}

/* Sends rs on c.  MHD_YES or MHD_NO (the connection is then closed). */
static enum MHD_Result send_resp(node_http *h, struct MHD_Connection *c, http_resp *rs)
{
    struct MHD_Response *r = NULL;
    if (rs->stream) {
        http_stream_ctx *s = malloc(sizeof *s);
        if (s) {
            s->h = h;
            s->fn = rs->stream;
            s->free_fn = rs->stream_free;
            s->arg = rs->stream_arg;
            r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s,
                                                  stream_done);
            if (!r)
                free(s);
        }
        if (!r && rs->stream_free)
            rs->stream_free(rs->stream_arg);
        free(rs->body);
    } else {
        r = MHD_create_response_from_buffer(rs->len, rs->body ? rs->body : (void *)"",
                                            rs->body ? MHD_RESPMEM_MUST_FREE
                                                     : MHD_RESPMEM_PERSISTENT);
        if (!r)
            free(rs->body);
    }
    rs->body = NULL;
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rs->type ? rs->type : "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (rs->retry_after_s > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", rs->retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (rs->allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, rs->allow);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_error(node_http *h, struct MHD_Connection *c, int status,
                                  const char *code, const char *msg)
{
    http_resp rs = {0};
    http_error(&rs, status, code, "%s", msg);
    return send_resp(h, c, &rs);
}

static bool authorized(const node_http *h, struct MHD_Connection *c)
{
    const net_auth *a = &node_get_config(h->n)->auth;
    if (!a->secure)
        return true;
    const char *tok;
    size_t len;
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    return http_bearer(v, &tok, &len) && net_auth_http_token_ok(a, tok, len);
}

/* The first call of a request: find its route, check the token and the
 * declared body size.  MHD_YES to go on (ctx set), or an error is queued. */
static enum MHD_Result begin(node_http *h, struct MHD_Connection *c, const char *url,
                             const char *method, void **con_cls)
{
    bool other;
    const route *rt = route_find(h, method, url, &other);
    if (rt && !(rt->flags & HTTP_ROUTE_PUBLIC) && !authorized(h, c))
        return send_error(h, c, 401, "unauthorized",
                          "missing or wrong bearer token (Authorization: Bearer TOKEN; "
                          "`hstore http-token` prints it)");
    if (!rt && other) {
        char allow[128];
        route_allow(h, url, allow, sizeof allow);
        http_resp rs = {0};
        http_error(&rs, 405, "method_not_allowed", "%s is not allowed on %s", method, url);
        rs.allow = allow;
        return send_resp(h, c, &rs);
    }
    if (!rt)
        return send_error(h, c, 404, "no_route", "no such endpoint");
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t declared;
    if (cl && http_parse_u64(cl, &declared) == 0 && declared > h->cfg.max_body)
        return send_error(h, c, 413, "too_large", "request body too large");
    conn_ctx *x = calloc(1, sizeof *x);
    if (!x)
        return MHD_NO;
    x->rt = rt;
    *con_cls = x;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    node_http *h = cls;
    conn_ctx *x = *con_cls;
    if (!x && url[0] != '/')
        return send_error(h, c, 400, "bad_request", "bad path (a NUL byte in it?)");
    if (!x)
        return begin(h, c, url, method, con_cls);
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (x->too_large || x->len + n > h->cfg.max_body) {
            x->too_large = true;
            return MHD_YES;
        }
        if (x->len + n > x->cap) {
            size_t cap = x->cap ? x->cap : 4096;
            while (cap < x->len + n)
                cap *= 2;
            if (cap > h->cfg.max_body)
                cap = h->cfg.max_body;
            uint8_t *p = realloc(x->body, cap);
            if (!p)
                return MHD_NO;
            x->body = p;
            x->cap = cap;
        }
        memcpy(x->body + x->len, upload_data, n);
        x->len += n;
        return MHD_YES;
    }
    if (x->too_large)
        return send_error(h, c, 413, "too_large", "request body too large");
    http_req rq = {.method = method,
                   .path = url,
                   .rest = url + ((x->rt->flags & HTTP_ROUTE_PREFIX) ? x->rt->plen : strlen(url)),
                   .body = x->body ? x->body : (const uint8_t *)"",
                   .body_len = x->len,
                   .n = h->n,
                   .h = h,
                   .conn = c};
    http_resp rs = {.status = 500};
    x->rt->fn(&rq, &rs, x->rt->arg);
    return send_resp(h, c, &rs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    conn_ctx *x = *con_cls;
    if (x) {
        free(x->body);
        free(x);
        *con_cls = NULL;
    }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    (void)socket_context;
    node_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&h->sh.conns_open, 1);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        atomic_fetch_sub(&h->sh.conns_open, 1);
}

/* Percent-decoding of the path and the query arguments.  A %00 would cut
 * the string short (a key silently shortened), so such a text becomes the
 * single byte 0x01 instead: no path starts with it (400) and no key holds
 * it. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    size_t n = MHD_http_unescape(s);
    if (strlen(s) != n || strchr(s, '\x01')) {
        s[0] = '\x01';
        s[1] = '\0';
        return 1;
    }
    return n;
}

/* ---- GET /v1/status ---- */

static void get_status(const http_req *rq, http_resp *rs, void *arg)
{
    (void)arg;
    raft_status st;
    node_status(rq->n, &st);
    hbuf b = {0};
    hbuf_printf(&b,
                "{\"id\":%" PRIu64 ",\"role\":\"%s\",\"term\":%" PRIu64 ",\"leader\":%" PRIu64
                ",\"vote\":%" PRIu64 ",\"commit\":%" PRIu64 ",\"applied\":%" PRIu64
                ",\"first_index\":%" PRIu64 ",\"last_index\":%" PRIu64
                ",\"snapshot_index\":%" PRIu64 ",\"members\":[",
                st.id, raft_role_name(st.role), st.term, st.leader, st.vote, st.commit,
                node_applied_index(rq->n), st.first_index, st.last_index, st.snapshot_index);
    for (uint32_t i = 0; i < st.conf.n; i++) {
        hbuf_printf(&b, "%s{\"id\":%" PRIu64 ",\"addr\":", i ? "," : "", st.conf.ids[i]);
        hbuf_json_str(&b, st.conf.addrs[i], strnlen(st.conf.addrs[i], RAFT_ADDR_MAX));
        hbuf_printf(&b, ",\"self\":%s,\"leader\":%s,\"learner\":%s",
                    st.conf.ids[i] == st.id ? "true" : "false",
                    st.conf.ids[i] == st.leader ? "true" : "false",
                    st.conf.learner[i] ? "true" : "false");
        if (st.role == RAFT_LEADER && st.conf.ids[i] == st.id)
            hbuf_printf(&b, ",\"match\":%" PRIu64, st.last_index);
        for (uint32_t j = 0; j < st.n_peers && st.role == RAFT_LEADER; j++) {
            const raft_peer_status *p = &st.peers[j];
            if (p->id != st.conf.ids[i])
                continue;
            hbuf_printf(
                &b, ",\"match\":%" PRIu64 ",\"next\":%" PRIu64 ",\"state\":\"%s\",\"active\":%s",
                p->match, p->next,
                p->state == 1   ? "replicate"
                : p->state == 2 ? "snapshot"
                                : "probe",
                p->active ? "true" : "false");
        }
        hbuf_puts(&b, "}");
    }
    hbuf_puts(&b, "]}\n");
    http_reply_json(rs, 200, &b);
}

/* ---- GET /metrics ---- */

static void get_metrics(const http_req *rq, http_resp *rs, void *arg)
{
    (void)arg;
    hbuf b = {0};
    node_metrics_render(rq->n, &b);
    metrics_head(&b, "hstore_http_connections", "gauge", "Open connections of the HTTP port.");
    hbuf_printf(&b, "hstore_http_connections %d\n", atomic_load(&rq->h->sh.conns_open));
    size_t len;
    char *p = hbuf_take(&b, &len);
    if (!p) {
        http_error(rs, 500, "no_memory", "out of memory");
        return;
    }
    http_reply(rs, 200, "text/plain; version=0.0.4; charset=utf-8", p, len);
}

/* ---- start and stop ---- */

node_http *node_http_new(node *n, const node_http_config *cfg, char *err, size_t errlen)
{
    node_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->n = n;
    h->cfg = *cfg;
    node_http_config dflt;
    node_http_config_init(&dflt);
    if (h->cfg.max_conns <= 0)
        h->cfg.max_conns = dflt.max_conns;
    if (h->cfg.timeout_s <= 0)
        h->cfg.timeout_s = dflt.timeout_s;
    if (h->cfg.max_body == 0)
        h->cfg.max_body = dflt.max_body;
    if (http_shared_init(&h->sh) != 0) {
        free(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    node_http_route(h, "GET", "/v1/status", 0, get_status, NULL);
    node_http_route(h, "GET", "/metrics", 0, get_metrics, NULL);
    http_kv_routes(h);
    http_watch_routes(h);
    http_member_routes(h);
    play_routes(h);
    return h;
}

int node_http_start(node_http *h, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", h->cfg.port);
    int grc = getaddrinfo(h->cfg.host, port, &hints, &ai);
    if (grc != 0 || !ai) {
        snprintf(err, errlen, "http: cannot resolve %s: %s", h->cfg.host, gai_strerror(grc));
        return -1;
    }
    struct sockaddr_in sa;
    memcpy(&sa, ai->ai_addr, sizeof sa);
    freeaddrinfo(ai);
    /* poll(), not select(): the node may hold thousands of client
     * connections, and select() cannot wait on a descriptor past 1023. */
    h->d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL,
        (uint16_t)h->cfg.port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)h->cfg.max_conns,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->cfg.timeout_s, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)HTTP_STACK_SIZE, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_UNESCAPE_CALLBACK, unescape, h,
        MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "http: cannot listen on %s:%d (address in use?)", h->cfg.host,
                 h->cfg.port);
        return -1;
    }
    return 0;
}

void node_http_stop(node_http *h)
{
    if (!h)
        return;
    atomic_store(&h->stopping, true);
    if (h->d)
        MHD_stop_daemon(h->d);
    http_shared_destroy(&h->sh);
    free(h);
}
