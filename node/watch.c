/*
 * watch.c — the ring of recent changes (see watch.h): watch_note on the
 * loop thread, node_watch_read on any other.
 */
#include "node/watch_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/node_internal.h"

struct node_watch {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    node_change ring[NODE_WATCH_RING];
    size_t head, n; /* oldest slot, count */
    uint64_t start; /* every change with index >= start is in the ring */
    uint64_t last;  /* the last index noted */
};

node_watch *watch_new(uint64_t applied)
{
    node_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->mu, NULL);
    w->start = applied + 1;
    w->last = applied;
    return w;
}

static void change_clear(node_change *c)
{
    free(c->key);
    free(c->key2);
    memset(c, 0, sizeof *c);
}

void watch_free(node_watch *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < NODE_WATCH_RING; i++)
        change_clear(&w->ring[i]);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* Whether op changes the state, and which of its paths it names. */
static bool is_change(int type)
{
    switch (type) {
    case KV_OP_PUT:
    case KV_OP_APPEND:
    case KV_OP_DEL:
    case KV_OP_CREATE:
    case KV_OP_MKNOD:
    case KV_OP_MKDIR:
    case KV_OP_RMDIR:
    case KV_OP_UNLINK:
    case KV_OP_WRITE_AT:
    case KV_OP_TRUNCATE:
    case KV_OP_RENAME:
    case KV_OP_SETATTR:
    case KV_OP_SYMLINK:
    case KV_OP_LINK:
    case KV_OP_PUT_IF:
    case KV_OP_UPLOAD_COMMIT:
    case KV_OP_UPLOAD_WRITE: return true;
    default: return false;
    }
}

static char *path_dup(const char *p, size_t len, uint64_t dir)
{
    if (dir || !p)
        return NULL;
    while (len && *p == '/') {
        p++;
        len--;
    }
    return strndup(p, len);
}

void watch_note(node_watch *w, const raft_entry *e, const uint8_t *reply, size_t rlen)
{
    if (!w)
        return;
    node_change c = {.index = e->index};
    bool keep = false;
    uint64_t cid, seq;
    int64_t t;
    const uint8_t *opb;
    size_t opl;
    kv_op op;
    if (e->type == RAFT_ENTRY_NORMAL && reply && kv_reply_peek_status(reply, rlen) == 0 &&
        kv_cmd_decode(e->data, e->len, &cid, &seq, &t, &opb, &opl) == 0 &&
        kv_op_decode(opb, opl, &op) == 0 && is_change(op.type)) {
        keep = true;
        c.op = op.type;
        bool by_ino = op.ino != 0 && op.type != KV_OP_RENAME && op.type != KV_OP_LINK;
        c.ino = op.ino;
        if (!by_ino)
            c.key = path_dup(op.path, op.path_len, op.dir);
        if (op.type == KV_OP_RENAME || op.type == KV_OP_LINK)
            c.key2 = path_dup(op.path2, op.path2_len, op.dir2);
    }
    pthread_mutex_lock(&w->mu);
    if (e->index != w->last + 1) {
        /* A snapshot moved the state past what was seen one by one. */
        w->start = e->index;
    }
    w->last = e->index;
    if (keep) {
        if (w->n == NODE_WATCH_RING) {
            node_change *old = &w->ring[w->head];
            if (old->index + 1 > w->start)
                w->start = old->index + 1;
            change_clear(old);
            w->head = (w->head + 1) % NODE_WATCH_RING;
            w->n--;
        }
        w->ring[(w->head + w->n) % NODE_WATCH_RING] = c;
        w->n++;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->mu);
}

static bool matches(const node_change *c, const char *prefix, size_t plen)
{
    if (plen == 0)
        return true;
    return (c->key && strncmp(c->key, prefix, plen) == 0) ||
           (c->key2 && strncmp(c->key2, prefix, plen) == 0);
}

/* Copies the matching changes from *from on; moves *from.  Under w->mu. */
static size_t collect(node_watch *w, uint64_t *from, const char *prefix, size_t plen,
                      node_change *out, size_t max, bool *lost)
{
    if (*from < w->start) {
        *lost = true;
        *from = w->start;
    }
    size_t got = 0;
    for (size_t i = 0; i < w->n && got < max; i++) {
        const node_change *c = &w->ring[(w->head + i) % NODE_WATCH_RING];
        if (c->index < *from)
            continue;
        *from = c->index + 1;
        if (!matches(c, prefix, plen))
            continue;
        node_change *o = &out[got];
        *o = *c;
        o->key = c->key ? strdup(c->key) : NULL;
        o->key2 = c->key2 ? strdup(c->key2) : NULL;
        got++;
    }
    if (got < max && *from <= w->last)
        *from = w->last + 1; /* looked at everything up to the last index */
    return got;
}

size_t node_watch_read(node *n, uint64_t *from, const char *prefix, node_change *out, size_t max,
                       int wait_ms, bool *lost)
{
    return watch_read(n->watch, from, prefix, out, max, wait_ms, lost);
}

size_t watch_read(node_watch *w, uint64_t *from, const char *prefix, node_change *out, size_t max,
                  int wait_ms, bool *lost)
{
    *lost = false;
    if (!w || max == 0)
        return 0;
    size_t plen = prefix ? strlen(prefix) : 0;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    size_t got = collect(w, from, prefix, plen, out, max, lost);
    while (got == 0 && !*lost && wait_ms > 0) {
        if (pthread_cond_timedwait(&w->cond, &w->mu, &dl) == ETIMEDOUT)
            wait_ms = 0;
        got = collect(w, from, prefix, plen, out, max, lost);
    }
    pthread_mutex_unlock(&w->mu);
    return got;
}

void node_changes_free(node_change *c, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++)
        change_clear(&c[i]);
}

uint64_t node_watch_next(node *n)
{
    node_watch *w = n->watch;
    if (!w)
        return 1;
    pthread_mutex_lock(&w->mu);
    uint64_t next = w->last + 1;
    pthread_mutex_unlock(&w->mu);
    return next;
}
