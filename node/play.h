/*
 * play.h — the playground: the page every node serves at GET / (its files in
 * node/play/, compiled in: play_assets.h) and the routes under /v1/play/ the
 * page uses, for the HTTP server (node/http.c) to dispatch to.
 *
 *   GET  /v1/play/cluster            every member's status as this node gets
 *                                    it (its own directly, the others' over
 *                                    their client ports), JSON
 *   POST /v1/play/nodes/ID/ACTION    stop (SIGTERM), kill (SIGKILL), restart,
 *                                    partition or heal node ID, JSON
 *
 * The control routes act on the processes of a local cluster and answer 403
 * unless this node was started by `hstore up` (node/play_ctl.c has the rules).
 * The page's files need no token; the routes are behind the server's
 * authentication like every /v1/ route.
 *
 * Thread-safety: every call may come from any thread, at once.
 */
#ifndef HSTORE_NODE_PLAY_H
#define HSTORE_NODE_PLAY_H

#include <stdbool.h>
#include <stddef.h>

#include "node/http.h"
#include "node/node.h"

/* One answer: status, Content-Type and bytes.  body is malloc'ed (free with
 * play_reply_free) unless the bytes are a compiled-in file. */
typedef struct play_reply {
    int status;
    const char *type;
    const unsigned char *data;
    size_t len;
    char *body;
} play_reply;

void play_reply_free(play_reply *r);

/* GET of a page file (path "/", "/index.html" or "/play/..."): true with *r
 * filled; false when path is none of them. */
bool play_serve_file(const char *path, play_reply *r);

/* A request under /v1/play/ (path without the query string): true with *r
 * filled (an error is a JSON answer too); false when path is not under
 * /v1/play/. */
bool play_handle(node *n, const char *method, const char *path, play_reply *r);

/* Adds the page's files (public: GET /, /index.html, /play/...) and the
 * /v1/play/ routes to the node's HTTP server (node_http_new calls it). */
void play_routes(node_http *h);

/* Turns the control routes on for a node started by `hstore up` in up_dir
 * (the cluster directory): checks that up_dir holds a cluster and this
 * node's data directory, and starts the thread that applies the partition
 * switch (node/play_ctl.c).  Without a call, or with up_dir NULL, the control
 * routes answer 403.  0, or -1 with a message in err. */
int play_start(node *n, const char *up_dir, char *err, size_t errlen);
/* Stops that thread.  Before node_stop. */
void play_stop(void);

#endif
