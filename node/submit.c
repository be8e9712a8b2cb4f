/*
 * submit.c — requests from threads of this process (the FUSE workers, the
 * tools): node_submit, node_submit_many and node_register.  The calling
 * thread builds its requests (req_prepare), queues them under the node's
 * mutex, wakes the loop through its eventfd and waits on each request's
 * condition variable; the loop takes the queue in (drain_local) and, when
 * a request is answered, hands the result back (submit_answer).  A caller
 * that gives up on its deadline leaves the request to the loop to free.
 */
#include "node/node_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* On the loop: hands the answer to the waiting thread, or frees the request
 * when that thread gave up on it. */
void submit_answer(node *n, req *q, int status, uint8_t *reply, size_t reply_len)
{
    pthread_mutex_lock(&n->mu);
    if (q->abandoned) {
        pthread_mutex_unlock(&n->mu);
        free(reply);
        req_free(q);
        return;
    }
    q->rc = status;
    q->reply = reply;
    q->reply_len = reply_len;
    q->done = true;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&n->mu);
}

/* On the loop: the requests handed in since the last turn enter. */
void drain_local(node *n)
{
    pthread_mutex_lock(&n->mu);
    req *q = n->queue_head;
    n->queue_head = n->queue_tail = NULL;
    pthread_mutex_unlock(&n->mu);
    while (q) {
        req *nx = q->qnext;
        q->qnext = NULL;
        req_start(n, q);
        q = nx;
    }
}

/* Builds the request of one command or read.  NODE_OK or an error. */
static int req_make(const node_cmd *c, uint64_t deadline_ms, req **out)
{
    req *q = req_alloc();
    if (!q)
        return NODE_ENOMEM;
    q->origin = ORIGIN_LOCAL;
    q->deadline_ms = deadline_ms;
    int rc = req_prepare(q, c, false, true);
    if (rc != NODE_OK) {
        req_free(q);
        return rc;
    }
    *out = q;
    return NODE_OK;
}

int node_submit_many(node *n, node_cmd *cmds, size_t cnt, int timeout_ms)
{
    if (cnt == 0)
        return NODE_OK;
    if (timeout_ms <= 0)
        timeout_ms = n->cfg.op_timeout_ms;
    req **qs = calloc(cnt, sizeof *qs);
    if (!qs)
        return NODE_ENOMEM;
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    int rc = NODE_OK;
    for (size_t i = 0; i < cnt; i++) {
        cmds[i].rc = NODE_ENOMEM;
        cmds[i].reply = NULL;
        cmds[i].reply_len = 0;
    }
    for (size_t i = 0; i < cnt && rc == NODE_OK; i++)
        rc = req_make(&cmds[i], deadline, &qs[i]);
    if (rc != NODE_OK) {
        for (size_t i = 0; i < cnt; i++) {
            if (qs[i])
                req_free(qs[i]);
            cmds[i].rc = rc;
        }
        free(qs);
        return rc;
    }

    /* All of them enter the loop's queue together: they are proposed in one
     * turn (up to NODE_TURN_BYTES), share fsyncs and replication round
     * trips, and flow control (raft.h) paces them. */
    pthread_mutex_lock(&n->mu);
    if (n->stop) {
        pthread_mutex_unlock(&n->mu);
        for (size_t i = 0; i < cnt; i++) {
            req_free(qs[i]);
            cmds[i].rc = NODE_ESTOPPED;
        }
        free(qs);
        return NODE_ESTOPPED;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (n->queue_tail)
            n->queue_tail->qnext = qs[i];
        else
            n->queue_head = qs[i];
        n->queue_tail = qs[i];
    }
    pthread_mutex_unlock(&n->mu);
    node_wake(n);

    /* The loop enforces the deadline; this wait has its own, a little later,
     * in case the loop is stuck (e.g. in a slow fsync). */
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    uint64_t wait_ms = (uint64_t)timeout_ms + 1000;
    dl.tv_sec += (time_t)(wait_ms / 1000);
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < cnt; i++) {
        req *q = qs[i];
        bool timed_out = false;
        while (!q->done && !timed_out)
            if (pthread_cond_timedwait(&q->cond, &n->mu, &dl) == ETIMEDOUT && !q->done)
                timed_out = true;
        if (timed_out) {
            q->abandoned = true; /* the loop frees it */
            cmds[i].rc = NODE_ETIMEDOUT;
            qs[i] = NULL;
            continue;
        }
        cmds[i].rc = q->rc;
        cmds[i].reply = q->reply;
        cmds[i].reply_len = q->reply_len;
        q->reply = NULL;
    }
    pthread_mutex_unlock(&n->mu);
    for (size_t i = 0; i < cnt; i++) {
        if (qs[i])
            req_free(qs[i]);
        if (cmds[i].rc != NODE_OK && rc == NODE_OK)
            rc = cmds[i].rc;
    }
    free(qs);
    return rc;
}

int node_submit(node *n, const uint8_t *op, size_t len, bool read, uint64_t client_id, uint64_t seq,
                int timeout_ms, uint8_t **reply, size_t *reply_len)
{
    /* Under this node's lease a read is answered here, on the caller's
     * thread, with no hand-off to the loop (lease.c). */
    int lrc;
    if (read && lease_local_read(n, op, len, reply, reply_len, &lrc))
        return lrc;
    node_cmd c = {.op = op, .len = len, .read = read, .client_id = client_id, .seq = seq};
    node_submit_many(n, &c, 1, timeout_ms);
    *reply = c.reply;
    *reply_len = c.reply_len;
    return c.rc;
}

int node_register(node *n, int timeout_ms, uint64_t *session_id)
{
    *session_id = 0;
    kv_op o = {.type = KV_OP_REGISTER};
    uint8_t *ob, *rep = NULL;
    size_t ol, rlen = 0;
    if (kv_op_encode(&o, &ob, &ol) != 0)
        return NODE_ENOMEM;
    /* The nonce only matches the reply to this call (net_random_id: never 0). */
    int rc = node_submit(n, ob, ol, false, net_random_id(), 0, timeout_ms, &rep, &rlen);
    free(ob);
    if (rc == NODE_OK) {
        *session_id = kv_reply_session_id(rep, rlen);
        if (!*session_id)
            rc = NODE_ENOMEM;
    }
    free(rep);
    return rc;
}
