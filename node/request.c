/*
 * request.c — requests in flight, from whichever port they came: how one
 * enters (req_prepare, req_start), how it is tried (a proposal, or a read
 * that waits for a read index), retried and expired, found again when its
 * entry applies (the command table), and answered (req_finish).
 *
 * Exactly once: clients register a session (REGISTER, node_register or
 * NET_REQ_REGISTER) and every command carries (session id, seq); kv.c
 * remembers the last seq and reply per session, so a command re-proposed
 * after a lost reply or a leader change is applied once, and a command whose
 * session is gone is answered SESSION_EXPIRED without being applied.  A retry
 * that is already applied is answered from the session without a new log
 * entry.  Only well-formed write ops are proposed (req_prepare): a read op
 * sent as a command is refused before it can reach the log.
 *
 * Reads are linearizable (ReadIndex, dissertation §6.4): never answered from
 * local state before the leader confirmed a read index and this node applied
 * up to it.
 */
#include "node/hotbuf.h"
#include "node/node_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the pending list and the command table ------------------------------ */

/* Commands waiting for their entry to apply are found by (client id, seq)
 * in a hash table, not by walking every pending request: with thousands of
 * requests in flight, a walk per applied entry would cost more than the
 * entry. */
static size_t cmd_bucket(uint64_t cid, uint64_t seq, size_t cap)
{
    uint64_t h = (cid ^ (seq * 0x9E3779B97F4A7C15ull)) * 0xff51afd7ed558ccdull;
    return (size_t)(h >> 32) & (cap - 1);
}

static bool is_cmd(const req *q)
{
    return !q->read && q->client_id;
}

static void cmd_grow(node *n)
{
    size_t cap = n->cmd_cap ? 2 * n->cmd_cap : 256;
    req **t = calloc(cap, sizeof(*t));
    if (!t)
        return; /* keep the old table: longer chains, still correct */
    for (size_t i = 0; i < n->cmd_cap; i++) {
        req *q = n->cmd_tab[i];
        while (q) {
            req *nx = q->hnext;
            size_t b = cmd_bucket(q->client_id, q->seq, cap);
            q->hnext = t[b];
            t[b] = q;
            q = nx;
        }
    }
    free(n->cmd_tab);
    n->cmd_tab = t;
    n->cmd_cap = cap;
}

req *cmd_find(const node *n, uint64_t cid, uint64_t seq)
{
    if (!n->cmd_cap)
        return NULL;
    for (req *q = n->cmd_tab[cmd_bucket(cid, seq, n->cmd_cap)]; q; q = q->hnext)
        if (q->client_id == cid && q->seq == seq)
            return q;
    return NULL;
}

static void pending_add(node *n, req *q)
{
    q->next = &n->pending;
    q->prev = n->pending.prev;
    n->pending.prev->next = q;
    n->pending.prev = q;
    if (is_cmd(q)) {
        if (n->cmd_n >= n->cmd_cap)
            cmd_grow(n);
        if (n->cmd_cap) {
            size_t b = cmd_bucket(q->client_id, q->seq, n->cmd_cap);
            q->hnext = n->cmd_tab[b];
            n->cmd_tab[b] = q;
            n->cmd_n++;
        }
    }
}

static void pending_del(node *n, req *q)
{
    q->prev->next = q->next;
    q->next->prev = q->prev;
    q->prev = q->next = NULL;
    if (is_cmd(q) && n->cmd_cap) {
        for (req **pp = &n->cmd_tab[cmd_bucket(q->client_id, q->seq, n->cmd_cap)]; *pp;
             pp = &(*pp)->hnext)
            if (*pp == q) {
                *pp = q->hnext;
                n->cmd_n--;
                break;
            }
        q->hnext = NULL;
    }
}

/* ---- allocating and answering -------------------------------------------- */

void req_free(req *q)
{
    hotbuf_free(q->cmd);
    free(q->op_copy);
    free(q->reply);
    pthread_cond_destroy(&q->cond);
    free(q);
}

/* Answers q and removes it, by the way it came in (client_port.c,
 * submit.c, report.c).  status is NODE_OK (reply holds the state machine's
 * reply, ownership passes) or an error. */
void req_finish(node *n, req *q, int status, uint8_t *reply, size_t reply_len)
{
    if (q->prev)
        pending_del(n, q);
    free(q->ack_reply); /* an answer held for the visible index, not given */
    q->ack_reply = NULL;
    q->ack_wait = false;
    if (q->read && status == NODE_OK)
        metrics_observe(&n->metrics.read_index, metrics_now_ns() - q->start_ns);
    else if (!q->read)
        metrics_inc(
            status == NODE_OK ? &n->metrics.proposals_committed : &n->metrics.proposals_failed, 1);
    if (q->origin == ORIGIN_SELF)
        report_answer(n, q, status, reply, reply_len);
    else if (q->origin == ORIGIN_NET)
        client_answer(n, q, status, reply, reply_len);
    else
        submit_answer(n, q, status, reply, reply_len);
}

req *req_alloc(void)
{
    req *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    return q;
}

/* ---- trying, retrying, expiring ------------------------------------------ */

/* Starts (or restarts) the work of a request: a proposal or a read. */
void req_try(node *n, req *q, uint64_t now)
{
    q->last_try_ms = now;
    q->tried = true;
    if (q->read) {
        q->read_ctx = 0;
        q->vis_wait_ms = 0;
        /* Under a valid read lease the state here already holds every
         * visible write: no round trip (lease.c).  Otherwise it joins the
         * next ReadIndex batch (issue_reads). */
        q->lease_read = !q->backup && lease_valid(n);
        q->have_index = q->lease_read;
        q->read_index = 0;
        return;
    }
    uint8_t *reply = NULL;
    size_t rlen = 0;
    if (q->client_id && !q->part) {
        int s = kv_session_lookup(n->kv, q->client_id, q->seq, &reply, &rlen);
        if (s == KV_SESSION_APPLIED || s == KV_SESSION_STALE) {
            req_finish(n, q, NODE_OK, reply, rlen);
            return;
        }
        free(reply);
    }
    /* Bounded work per loop turn: past NODE_TURN_BYTES of proposals, the
     * rest wait for the next turn, so that a burst of large commands (the
     * parts of an upload) is persisted, sent and applied in steps, with
     * ticks, heartbeats and small requests handled in between. */
    if (n->turn_bytes && n->turn_bytes + q->cmd_len > NODE_TURN_BYTES &&
        q->cmd_len <= NODE_MAX_ENTRY) {
        q->tried = false;
        n->deferred = true;
        return;
    }
    n->turn_bytes += q->cmd_len;
    uint64_t idx = 0;
    int rc = raft_propose(n->r, q->cmd, q->cmd_len, &idx, NULL);
    /* Appended to our own log as leader: it commits unless the leadership
     * changes, and a change makes every request try again (log_changes).
     * Proposing it again on a timer would only add copies: with large
     * commands on a slow disk, copies that slow everything further. */
    q->in_log = rc == RAFT_OK && idx != 0;
    if (rc == RAFT_ETOOBIG) {
        uint8_t *r2 = NULL;
        size_t l2 = 0;
        if (kv_reply_encode_status(EFBIG, &r2, &l2) == 0)
            req_finish(n, q, NODE_OK, r2, l2);
        else
            req_finish(n, q, NODE_ENOMEM, NULL, 0);
        return;
    }
    /* RAFT_ENOLEADER and friends: retried after RETRY_MS or at a leader change. */
    if (rc != RAFT_OK)
        q->last_try_ms = now > RETRY_MS ? now - RETRY_MS + 100 : 0; /* retry soon */
}

/* One ReadIndex round for every read that is not waiting on one yet. */
void issue_reads(node *n)
{
    uint64_t ctx = 0;
    for (req *q = n->pending.next; q != &n->pending; q = q->next) {
        if (!q->read || q->read_ctx || q->have_index)
            continue;
        if (!ctx)
            ctx = ++n->next_ctx;
        q->read_ctx = ctx;
    }
    if (ctx && raft_read_index(n->r, ctx) != RAFT_OK) {
        /* no leader known: leave them unasked; retried after a short while */
        uint64_t now = now_ms();
        for (req *q = n->pending.next; q != &n->pending; q = q->next)
            if (q->read_ctx == ctx) {
                q->read_ctx = 0;
                q->last_try_ms = now > RETRY_MS ? now - RETRY_MS + 100 : 0;
                q->tried = false;
            }
    }
}

void serve_reads(node *n)
{
    uint64_t applied = kv_applied_index(n->kv);
    uint64_t now = now_ms();
    bool valid = lease_valid(n);
    req *q = n->pending.next;
    while (q != &n->pending) {
        req *nx = q->next;
        if (q->read && q->lease_read && !valid) {
            /* The lease ended before the answer could go: ask the leader. */
            q->lease_read = q->have_index = false;
            q->tried = false;
        } else if (q->read && q->have_index && q->read_index <= applied &&
                   !lease_read_servable(n, q, applied, now)) {
            /* waits for the visible index (lease.c) */
        } else if (q->read && q->have_index && q->read_index <= applied && q->backup) {
            backup_point(n, q, applied);
        } else if (q->read && q->have_index && q->read_index <= applied) {
            metrics_inc(q->lease_read ? &n->metrics.lease_reads : &n->metrics.index_reads, 1);
            uint8_t *reply = NULL;
            size_t rlen = 0;
            if (kv_query(n->kv, q->op, q->op_len, &reply, &rlen) == 0)
                req_finish(n, q, NODE_OK, reply, rlen);
            else
                req_finish(n, q, NODE_ENOMEM, NULL, 0);
        }
        q = nx;
    }
}

/* How long a request waits before it is tried again: RETRY_MS, longer for
 * a large command forwarded to the leader (1 MiB: 5 s), which takes longer
 * to get through and costs the most to send twice. */
static uint64_t retry_ms(const req *q)
{
    return RETRY_MS * (1 + q->cmd_len / (256u * 1024u));
}

void retry_and_expire(node *n, uint64_t now)
{
    req *q = n->pending.next;
    bool reads = false;
    while (q != &n->pending) {
        req *nx = q->next;
        if (now >= q->deadline_ms) {
            req_finish(n, q, NODE_ETIMEDOUT, NULL, 0);
        } else if (q->ack_wait) {
            /* applied: its answer waits for the visible index (lease.c) */
        } else if (!q->tried || (!q->in_log && now - q->last_try_ms >= retry_ms(q))) {
            if (q->read && q->have_index) {
                /* waiting only for local apply: nothing to retry */
            } else {
                /* req_try may answer and free q (a retry found already
                 * applied): read what we need first. */
                bool is_read = q->read;
                req_try(n, q, now);
                reads |= is_read;
            }
        }
        q = nx;
    }
    if (reads)
        issue_reads(n);
}

/* A new request enters the loop. */
void req_start(node *n, req *q)
{
    q->start_ns = metrics_now_ns();
    pending_add(n, q);
    req_try(n, q, now_ms());
}

/* ---- entering ------------------------------------------------------------ */

/* The one way into the loop, for every origin (submit.c, client_port.c,
 * report.c): fills q's kind, ids and command from c, and checks what may
 * enter.  A read must be a read op; a command must be a well-formed write op
 * with its exactly-once ids (without them its reply could not be matched,
 * nor a retry recognised).  A read op sent as a command is refused here,
 * before any proposal: a committed read would make every replica build its
 * reply at every replay.  A REGISTER (seq 0) is the one command without a
 * seq; reg_nonce asks for one whatever c->op holds (the client port's
 * REGISTER flag), with c->client_id as its nonce.  For a command, q->cmd is
 * built; for a read, q->op points at c->op, or at a copy (copy_op: the
 * caller's buffer does not outlive the call).  NODE_OK, NODE_EINVAL or
 * NODE_ENOMEM. */
int req_prepare(req *q, const node_cmd *c, bool reg_nonce, bool copy_op)
{
    q->read = c->read && !reg_nonce;
    q->client_id = q->read ? 0 : c->client_id;
    q->seq = q->read || reg_nonce ? 0 : c->seq;
    const uint8_t *op = c->op;
    size_t len = c->len;
    if (q->read) {
        if (!kv_op_is_read(op, len))
            return NODE_EINVAL;
        if (copy_op) {
            q->op_copy = malloc(len ? len : 1);
            if (!q->op_copy)
                return NODE_ENOMEM;
            memcpy(q->op_copy, op, len);
            op = q->op_copy;
        }
        q->op = op;
        q->op_len = len;
        return NODE_OK;
    }
    uint8_t *reg_op = NULL;
    if (reg_nonce) {
        kv_op r = {.type = KV_OP_REGISTER};
        if (kv_op_encode(&r, &reg_op, &len) != 0)
            return NODE_ENOMEM;
        op = reg_op;
    }
    kv_op o;
    int rc = NODE_OK;
    q->cmd_len = kv_cmd_size(len);
    if (!kv_op_is_write(op, len) || kv_op_decode(op, len, &o) != 0 || !q->client_id)
        rc = NODE_EINVAL;
    else if (o.type == KV_OP_REGISTER && q->seq)
        rc = NODE_EINVAL;
    else if (o.type != KV_OP_REGISTER && !q->seq)
        rc = NODE_EINVAL;
    else if (!(q->cmd = hotbuf_alloc(q->cmd_len)))
        rc = NODE_ENOMEM;
    else if (kv_cmd_encode_to(q->client_id, q->seq, node_realtime_ns(), op, len, q->cmd,
                              q->cmd_len) != 0)
        rc = NODE_EINVAL;
    if (rc == NODE_OK) {
        q->reg = o.type == KV_OP_REGISTER;
        q->part = o.type == KV_OP_UPLOAD_PART;
    }
    free(reg_op);
    return rc;
}

/* Commands left over by the previous turn's NODE_TURN_BYTES, first in line. */
void propose_deferred(node *n, uint64_t now)
{
    n->deferred = false;
    req *q = n->pending.next;
    while (q != &n->pending && !n->deferred) {
        req *nx = q->next;
        if (!q->read && !q->tried)
            req_try(n, q, now);
        q = nx;
    }
}
