/*
 * report.c — open-file reports (kv.h "Open files").  A mount registers a
 * function listing the inodes it holds open (node_set_open_files).  Every
 * REPORT_CHECK_MS the loop looks at its own holder record in the state
 * machine and proposes a HOLD command (its own session, one in flight at a
 * time) when: it has no record (just started, or expired), an orphan exists
 * that its last report does not cover, an inode it listed is no longer open
 * here, or REPORT_KEEPALIVE_MS passed since its last report.  The report
 * lists the open inodes that are orphans now, and covers up to the lower of
 * the applied index and the applied index at which the oldest open still in
 * progress started (the mount passes that), so no open that could have
 * found an orphan's name escapes the report.  Nothing is proposed while no
 * orphan exists except the keepalive, so opens never cost a replicated
 * round.
 */
#include "node/node_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raftkv/byte.h"

/* The answer to one of our own requests: the session of the reports opened,
 * or a report applied (or not: the next check sends another). */
void report_answer(node *n, req *q, int status, uint8_t *reply, size_t reply_len)
{
    if (q->reg) {
        /* the session of our reports (report_propose) */
        uint64_t id = status == NODE_OK ? kv_reply_session_id(reply, reply_len) : 0;
        if (id)
            n->rep.client = id;
        else
            nlog(n, 1, "cannot open the session of the open-file reports (%s)",
                 status == NODE_OK ? "bad reply" : "no answer in time");
    } else if (status != NODE_OK || kv_reply_status(reply, reply_len) != 0) {
        nlog(n, 1, "open-file report not applied (%s)",
             status == NODE_OK ? kv_strstatus(kv_reply_status(reply, reply_len))
                               : "no answer in time");
        if (status == NODE_OK && kv_reply_peek_status(reply, reply_len) == KV_ESESSION)
            n->rep.client = 0; /* the next report opens a new session */
    }
    pthread_mutex_lock(&n->rep.mu);
    n->rep.inflight = false;
    pthread_mutex_unlock(&n->rep.mu);
    free(reply);
    req_free(q);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Proposes HOLD (holder = this node) with the given list, as our own request
 * (rep.inflight is set by the caller; cleared here on failure). */
static void report_propose(node *n, uint64_t covered, const uint64_t *inos, size_t cnt,
                           uint32_t flags, uint64_t now)
{
    uint8_t *data = NULL;
    bool ok = false;
    if (cnt) {
        data = malloc(cnt * 8);
        if (!data)
            goto out;
        for (size_t i = 0; i < cnt; i++)
            byte_put64(data + i * 8, inos[i]);
    }
    kv_op op = {.type = KV_OP_HOLD,
                .holder = n->cfg.id,
                .off = covered,
                .data = data,
                .data_len = cnt * 8,
                .flags = flags};
    uint8_t *ob = NULL;
    size_t ol = 0;
    req *q = NULL;
    if (kv_op_encode(&op, &ob, &ol) != 0 || !(q = req_alloc()))
        goto out;
    q->origin = ORIGIN_SELF;
    q->deadline_ms = now + (uint64_t)n->cfg.op_timeout_ms;
    node_cmd c = {.op = ob, .len = ol};
    bool reg = !n->rep.client;
    if (reg) {
        /* Reports go through a session of their own (exactly once): open
         * it first; the report follows at the next check. */
        c.client_id = net_random_id();
    } else {
        c.client_id = n->rep.client;
        c.seq = ++n->rep.seq;
    }
    if (req_prepare(q, &c, reg, false) != NODE_OK) {
        req_free(q);
        goto out;
    }
    n->rep.sent_ms = now;
    ok = true;
    req_start(n, q); /* may finish it at once (clears inflight) */
out:
    free(ob);
    free(data);
    if (!ok) {
        pthread_mutex_lock(&n->rep.mu);
        n->rep.inflight = false;
        pthread_mutex_unlock(&n->rep.mu);
    }
}

/* On the loop, every turn: decides whether this node must report its open
 * files now (the header of this file says when). */
void report_open_files(node *n, uint64_t now)
{
    kv_holder_view v;
    kv_holder_get(n->kv, n->cfg.id, &v);
    atomic_store(&n->holder_known, v.known);
    if (now - n->rep.check_ms < REPORT_CHECK_MS)
        return;
    n->rep.check_ms = now;
    pthread_mutex_lock(&n->rep.mu);
    if (!n->rep.fn || n->rep.inflight) {
        pthread_mutex_unlock(&n->rep.mu);
        return;
    }
    bool must = !v.known || now - n->rep.sent_ms >= REPORT_KEEPALIVE_MS;
    if (!must && !v.uncovered && v.n_held == 0) {
        pthread_mutex_unlock(&n->rep.mu);
        return;
    }
    uint64_t since = UINT64_MAX;
    size_t cnt = n->rep.fn(n->rep.arg, n->rep.buf, n->rep.cap, &since);
    while (cnt > n->rep.cap) {
        size_t nc = cnt + cnt / 2 + 16;
        uint64_t *b = realloc(n->rep.buf, nc * sizeof *b);
        if (!b) {
            pthread_mutex_unlock(&n->rep.mu);
            return;
        }
        n->rep.buf = b;
        n->rep.cap = nc;
        since = UINT64_MAX;
        cnt = n->rep.fn(n->rep.arg, n->rep.buf, n->rep.cap, &since);
    }
    /* Only the open inodes that have lost their names matter. */
    size_t m = 0;
    for (size_t i = 0; i < cnt; i++)
        if (kv_is_orphan(n->kv, n->rep.buf[i]))
            n->rep.buf[m++] = n->rep.buf[i];
    qsort(n->rep.buf, m, sizeof *n->rep.buf, cmp_u64);
    size_t d = 0;
    for (size_t i = 0; i < m; i++)
        if (d == 0 || n->rep.buf[i] != n->rep.buf[d - 1])
            n->rep.buf[d++] = n->rep.buf[i];
    if (d > KV_HOLD_MAX)
        d = KV_HOLD_MAX;
    uint64_t covered = kv_applied_index(n->kv);
    if (since < covered)
        covered = since;
    /* Nothing to say when the list is the one in force and the coverage
     * would not grow (or nothing waits for it): opens or lookups in progress
     * can hold it back for a while, and a report per check would only
     * fill the log. */
    bool same = d == v.n_held && memcmp(n->rep.buf, v.held, d * sizeof *v.held) == 0;
    if (!must && same && (!v.uncovered || covered <= v.covered)) {
        pthread_mutex_unlock(&n->rep.mu);
        return;
    }
    n->rep.inflight = true;
    pthread_mutex_unlock(&n->rep.mu);
    report_propose(n, covered, n->rep.buf, d, 0, now);
}

void node_set_open_files(node *n, node_open_fn fn, void *arg)
{
    pthread_mutex_lock(&n->rep.mu);
    n->rep.fn = fn;
    n->rep.arg = arg;
    pthread_mutex_unlock(&n->rep.mu);
    if (fn)
        return;
    /* A report being proposed must not land after the mount's leaving. */
    uint64_t end = now_ms() + (uint64_t)n->cfg.op_timeout_ms + 1000;
    for (;;) {
        pthread_mutex_lock(&n->rep.mu);
        bool busy = n->rep.inflight;
        pthread_mutex_unlock(&n->rep.mu);
        pthread_mutex_lock(&n->mu);
        bool stopped = n->stop;
        pthread_mutex_unlock(&n->mu);
        if (!busy || stopped || now_ms() >= end)
            return;
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

bool node_open_files_known(node *n)
{
    return atomic_load(&n->holder_known);
}
