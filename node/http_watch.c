/*
 * http_watch.c — GET /v1/watch?prefix=P[&from=INDEX]: the committed changes
 * of this node (watch.h) as server-sent events, so a client follows them
 * without polling.  Each change is one event:
 *
 *   id: 42
 *   event: change
 *   data: {"index":42,"op":"put","key":"a/b"}
 *
 * (key2 for rename and link; key null and ino for an op that named an
 * inode).  from defaults to the next change (or to Last-Event-ID + 1 when a
 * client reconnects).  A watcher asking for changes the ring no longer holds
 * gets `event: lost` with data {"from":F,"next":N} (the changes in [F, N)
 * are unknown to it) and goes on from N.  A comment line every
 * KEEPALIVE_MS keeps idle connections open.
 */
#include "node/http_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "node/watch.h"
#include "raftkv/kv.h"

#define WATCH_BATCH 64
#define KEEPALIVE_MS 15000

typedef struct watcher {
    node_http *h;
    char *prefix;
    uint64_t from;
    hbuf out;   /* formatted, not yet sent */
    size_t off; /* of out already sent */
    uint64_t idle_ms;
} watcher;

static const char *op_name(int op)
{
    switch (op) {
    case KV_OP_PUT: return "put";
    case KV_OP_APPEND: return "append";
    case KV_OP_DEL: return "delete";
    case KV_OP_CREATE: return "create";
    case KV_OP_MKNOD: return "mknod";
    case KV_OP_MKDIR: return "mkdir";
    case KV_OP_RMDIR: return "rmdir";
    case KV_OP_UNLINK: return "unlink";
    case KV_OP_WRITE_AT: return "write";
    case KV_OP_TRUNCATE: return "truncate";
    case KV_OP_RENAME: return "rename";
    case KV_OP_SETATTR: return "setattr";
    case KV_OP_SYMLINK: return "symlink";
    case KV_OP_LINK: return "link";
    case KV_OP_PUT_IF: return "put";
    case KV_OP_UPLOAD_COMMIT: return "put";
    case KV_OP_UPLOAD_WRITE: return "write";
    default: return "change";
    }
}

static void format_change(hbuf *b, const node_change *c)
{
    hbuf_printf(b, "id: %" PRIu64 "\nevent: change\ndata: {\"index\":%" PRIu64 ",\"op\":\"%s\"",
                c->index, c->index, op_name(c->op));
    hbuf_puts(b, ",\"key\":");
    if (c->key)
        hbuf_json_str(b, c->key, strlen(c->key));
    else
        hbuf_puts(b, "null");
    if (c->key2) {
        hbuf_puts(b, ",\"key2\":");
        hbuf_json_str(b, c->key2, strlen(c->key2));
    }
    if (!c->key)
        hbuf_printf(b, ",\"ino\":%" PRIu64, c->ino);
    hbuf_puts(b, "}\n\n");
}

static long watch_stream(void *arg, char *buf, size_t max)
{
    watcher *w = arg;
    if (w->off == w->out.len) {
        w->out.len = w->off = 0;
        if (w->out.oom)
            return -1;
        node_change ch[WATCH_BATCH];
        bool lost = false;
        uint64_t before = w->from;
        size_t n = node_watch_read(node_http_node(w->h), &w->from, w->prefix, ch, WATCH_BATCH, 1000,
                                   &lost);
        if (lost)
            hbuf_printf(&w->out,
                        "event: lost\ndata: {\"from\":%" PRIu64 ",\"next\":%" PRIu64 "}\n\n",
                        before, w->from);
        for (size_t i = 0; i < n; i++)
            format_change(&w->out, &ch[i]);
        node_changes_free(ch, n);
        if (w->out.len == 0) {
            w->idle_ms += 1000;
            if (w->idle_ms < KEEPALIVE_MS)
                return 0;
            hbuf_puts(&w->out, ": keepalive\n\n");
        }
        w->idle_ms = 0;
        if (w->out.oom)
            return -1;
    }
    size_t n = w->out.len - w->off;
    if (n > max)
        n = max;
    memcpy(buf, w->out.p + w->off, n);
    w->off += n;
    return (long)n;
}

static void watch_free_fn(void *arg)
{
    watcher *w = arg;
    hbuf_free(&w->out);
    free(w->prefix);
    free(w);
}

static void get_watch(const http_req *rq, http_resp *rs, void *arg)
{
    (void)arg;
    const char *prefix = http_arg(rq, "prefix");
    const char *from = http_arg(rq, "from");
    const char *last = http_header(rq, "Last-Event-ID");
    uint64_t f = 0;
    if (from && http_parse_u64(from, &f) != 0) {
        http_error(rs, 400, "bad_request", "from must be a log index (a decimal number)");
        return;
    }
    if (!from && last && http_parse_u64(last, &f) == 0)
        f++;
    else if (!from)
        f = node_watch_next(rq->n);
    watcher *w = calloc(1, sizeof *w);
    if (!w || !(w->prefix = strdup(prefix ? prefix : ""))) {
        free(w);
        http_error(rs, 503, "unavailable", "out of memory");
        return;
    }
    w->h = rq->h;
    w->from = f;
    /* A first comment line, so the client sees the stream open at once. */
    hbuf_printf(&w->out, ": watching from index %" PRIu64 "\n\n", f);
    rs->status = 200;
    rs->type = "text/event-stream";
    rs->stream = watch_stream;
    rs->stream_free = watch_free_fn;
    rs->stream_arg = w;
}

void http_watch_routes(node_http *h)
{
    node_http_route(h, "GET", "/v1/watch", 0, get_watch, NULL);
}
