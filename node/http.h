/*
 * http.h — the node's HTTP server (libmicrohttpd) on a port of its own:
 * `hstore node --http HOST:PORT`.
 *
 * Every request but the routes marked public needs `Authorization: Bearer
 * TOKEN`, the token derived from the cluster secret (net_auth_http_token);
 * a node without a secret (--insecure) asks for none.  A missing or wrong
 * token gets 401.  The server is bounded like the client port: at most
 * max_conns connections at once (one thread each, small stacks), an idle
 * connection is closed after timeout_s, a request body past max_body gets
 * 413 without being read; so a slow or huge client costs the node a
 * connection slot, never its loop.
 *
 * Routes: a table of (method, path) -> handler.  A path either matches
 * exactly or, with HTTP_ROUTE_PREFIX, as a prefix (the handler gets the rest
 * in rq->rest); an exact match wins over a prefix, a longer prefix over a
 * shorter.  A path that matches with another method gets 405.  Handlers run
 * on the connection's thread and may block (node_submit); they must fill
 * rs before returning.  Routes are added between node_http_new and
 * node_http_start.
 *
 * Errors are JSON: {"error": CODE, "message": TEXT} with the status
 * (http_error).  The built-in routes and their meanings are in README, HTTP
 * API.
 */
#ifndef HSTORE_NODE_HTTP_H
#define HSTORE_NODE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/http_util.h"
#include "node/node.h"

typedef struct node_http node_http;

typedef struct node_http_config {
    char host[256];  /* address to bind (IPv4 or name) */
    int port;        /* 1..65535 */
    int max_conns;   /* connections at once (default 256) */
    int timeout_s;   /* an idle connection is closed after this (default 30) */
    size_t max_body; /* largest request body (default 1 MiB: the largest value
                      * one command carries) */
} node_http_config;

void node_http_config_init(node_http_config *c);

/* One request, as a handler sees it.  Strings are NUL-terminated and live
 * until the handler returns. */
typedef struct http_req {
    const char *method;
    const char *path; /* percent-decoded */
    const char *rest; /* path past the route's prefix ("" for exact routes) */
    const uint8_t *body;
    size_t body_len;
    node *n;
    node_http *h;
    void *conn; /* the server's connection (http_arg, http_header) */
} http_req;

/* A query parameter (decoded) or a request header; NULL when absent. */
const char *http_arg(const http_req *rq, const char *name);
const char *http_header(const http_req *rq, const char *name);

/* A stream's next bytes: up to max into buf.  Returns the count, 0 when
 * there is nothing yet (it should first wait up to about a second for
 * something), or -1 at the end of the stream. */
typedef long (*http_stream_fn)(void *arg, char *buf, size_t max);

/* The answer a handler fills in.  The server frees body, and calls
 * stream_free(stream_arg) once the stream is done. */
typedef struct http_resp {
    int status;
    const char *type; /* Content-Type (default application/json) */
    char *body;       /* malloc'ed, or NULL */
    size_t len;
    int retry_after_s; /* > 0: a Retry-After header */
    const char *allow; /* a 405's Allow header (static string) */
    http_stream_fn stream;
    void (*stream_free)(void *arg);
    void *stream_arg;
} http_resp;

typedef void (*http_handler)(const http_req *rq, http_resp *rs, void *arg);

enum {
    HTTP_ROUTE_PREFIX = 1, /* path is a prefix */
    HTTP_ROUTE_PUBLIC = 2, /* no token needed */
};

/* Adds a route.  0, or -1 when the table is full or the server started. */
int node_http_route(node_http *h, const char *method, const char *path, unsigned flags,
                    http_handler fn, void *arg);

/* The server of node n with its built-in routes (status, kv, metrics, watch),
 * not yet listening.  NULL with a message in err. */
node_http *node_http_new(node *n, const node_http_config *cfg, char *err, size_t errlen);
/* Binds and starts serving.  0, or -1 with a message (port in use, ...). */
int node_http_start(node_http *h, char *err, size_t errlen);
/* Stops serving (open streams end) and frees h.  NULL is ignored. */
void node_http_stop(node_http *h);

/* The node the server belongs to, and the address it listens on. */
node *node_http_node(const node_http *h);

/* ---- answers ---- */

/* body (malloc'ed, taken over) as the answer. */
void http_reply(http_resp *rs, int status, const char *type, char *body, size_t len);
/* The text in b (taken over; b is emptied) as a JSON answer; 500 when b ran
 * out of memory. */
void http_reply_json(http_resp *rs, int status, hbuf *b);
/* {"error": code, "message": ...} with status. */
void http_error(http_resp *rs, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
