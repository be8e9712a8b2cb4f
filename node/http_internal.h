/*
 * http_internal.h — what the files of the HTTP server share (http.c, the
 * server and routes; http_kv.c, the key-value routes): the state they keep
 * besides the route table, and the functions one calls in the other.
 */
#ifndef HSTORE_NODE_HTTP_INTERNAL_H
#define HSTORE_NODE_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "node/http.h"

/* A session of the exactly-once table, taken by one request at a time (so
 * its seqs reach the state machine in order). */
typedef struct http_session {
    uint64_t id, next_seq;
} http_session;

typedef struct http_shared {
    atomic_int conns_open;
    pthread_mutex_t mu; /* guards the session pool */
    http_session *free_sessions;
    size_t n_free, cap_free;
} http_shared;

/* A streamed response in flight (http.c). */
typedef struct http_stream_ctx {
    node_http *h;
    http_stream_fn fn;
    void (*free_fn)(void *);
    void *arg;
} http_stream_ctx;

int http_shared_init(http_shared *s);
void http_shared_destroy(http_shared *s);
http_shared *http_shared_of(node_http *h);
bool http_stopping(const node_http *h);

/* http_kv.c: adds the /v1/kv routes; http_watch.c: /v1/watch. */
void http_kv_routes(node_http *h);
void http_watch_routes(node_http *h);
/* http_members.c: /v1/members and /v1/transfer. */
void http_member_routes(node_http *h);

#endif
