/*
 * raft_read.c — ReadIndex: linearizable reads without writing to the log
 * (dissertation §6.4).
 *
 *   1. The leader must have committed an entry of its current term (its
 *      no-op) so its commit index is at least that of any earlier leader;
 *      requests that arrive earlier wait for it.
 *   2. It records its commit index as the read index.
 *   3. It confirms it is still the leader by a heartbeat round: every
 *      AppendEntries carries ctx = read_seq, the number of the newest round,
 *      and followers echo it; a round is confirmed once a majority echoed a
 *      number >= its own.
 *   4. The read index goes back to the requester (a read state locally, or a
 *      READINDEX_RESP to a follower, §6.4.1), which serves the read once its
 *      state machine has applied that index.
 *
 * A deposed leader in a minority never gathers a majority of echoes, so its
 * requests are never answered; stepping down drops them (the caller has a
 * deadline).
 */
#include <string.h>
#include <stdlib.h>

#include "raftkv/raft_internal.h"

void raft_read_state_push(raft *r, uint64_t ctx, uint64_t index)
{
    if (r->n_rs == r->cap_rs) {
        size_t cap = r->cap_rs ? r->cap_rs * 2 : 8;
        raft_read_state *n = realloc(r->rs, cap * sizeof *n);
        if (!n)
            return; /* lost, like a lost message: the reader times out */
        r->rs = n;
        r->cap_rs = cap;
    }
    r->rs[r->n_rs].ctx = ctx;
    r->rs[r->n_rs].index = index;
    r->n_rs++;
}

static bool committed_in_term(const raft *r)
{
    return raft_term_at(r, r->commit) == r->term;
}

static void start_round(raft *r, raft_read_req *q)
{
    if (!r->read_pending) {
        r->read_seq++;
        r->read_pending = true;
    }
    q->seq = r->read_seq;
    q->index = r->commit;
}

static void release(raft *r)
{
    uint64_t v[RAFT_MAX_NODES];
    uint32_t n = 0;
    if (raft_is_voter(r, r->id))
        v[n++] = r->read_seq;
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (raft_is_voter(r, r->prs[i].id))
            v[n++] = r->prs[i].read_ack;
    uint64_t confirmed; /* the round a quorum acknowledged */
    if (!raft_quorum_value(r, v, n, &confirmed))
        return;
    size_t keep = 0;
    for (size_t i = 0; i < r->n_reads; i++) {
        raft_read_req *rq = &r->reads[i];
        if (rq->seq != 0 && rq->seq <= confirmed) {
            if (rq->from == r->id) {
                raft_read_state_push(r, rq->ctx, rq->index);
            } else {
                raft_msg *m = raft_emit(r, RAFT_MSG_READINDEX_RESP, rq->from, false);
                if (m) {
                    m->ctx = rq->ctx;
                    m->index = rq->index;
                }
            }
        } else {
            r->reads[keep++] = *rq;
        }
    }
    r->n_reads = keep;
}

int raft_read_request(raft *r, uint64_t ctx, uint64_t from)
{
    if (r->n_reads == r->cap_reads) {
        size_t cap = r->cap_reads ? r->cap_reads * 2 : 16;
        raft_read_req *n = realloc(r->reads, cap * sizeof *n);
        if (!n)
            return RAFT_ENOMEM;
        r->reads = n;
        r->cap_reads = cap;
    }
    raft_read_req *q = &r->reads[r->n_reads++];
    memset(q, 0, sizeof *q);
    q->ctx = ctx;
    q->from = from;
    if (committed_in_term(r)) {
        start_round(r, q);
        release(r); /* a one-member cluster confirms at once */
    }
    return RAFT_OK;
}

void raft_read_ack(raft *r, raft_progress *p, uint64_t ctx)
{
    if (ctx <= p->read_ack)
        return;
    p->read_ack = ctx;
    if (r->n_reads)
        release(r);
}

void raft_read_on_commit(raft *r)
{
    if (!r->n_reads || !committed_in_term(r))
        return;
    bool any = false;
    for (size_t i = 0; i < r->n_reads; i++)
        if (r->reads[i].seq == 0) {
            start_round(r, &r->reads[i]);
            any = true;
        }
    if (any)
        release(r);
}

void raft_read_drop(raft *r)
{
    r->n_reads = 0;
    r->read_pending = false;
}

void raft_handle_readindex(raft *r, const raft_msg *m)
{
    raft_read_request(r, m->ctx, m->from);
}

void raft_handle_readindex_resp(raft *r, const raft_msg *m)
{
    if (r->role != RAFT_FOLLOWER || m->from != r->leader || m->reject)
        return;
    raft_read_state_push(r, m->ctx, m->index);
}

int raft_read_index(raft *r, uint64_t ctx)
{
    if (r->role == RAFT_LEADER)
        return raft_read_request(r, ctx, r->id);
    if (r->role != RAFT_FOLLOWER || r->leader == 0)
        return RAFT_ENOLEADER;
    raft_msg *m = raft_emit(r, RAFT_MSG_READINDEX, r->leader, false);
    if (!m)
        return RAFT_ENOMEM;
    m->ctx = ctx;
    return RAFT_OK;
}
