/*
 * member.c — membership at run time: the requests that list, add and remove
 * members and hand leadership over (node.h, "Membership"), from threads of
 * this process or from the client port, and the leader's promotion of
 * learners that have caught up.
 *
 * Every request becomes a member_op that the loop works on once per turn
 * (member_turn) until it is done or its deadline passes; only the loop
 * touches the Raft core.  A new server is always added as a learner
 * (RAFT_CONF_ADD_LEARNER): it gets a snapshot and the log without counting
 * toward any quorum, so a cluster never waits on a member that is still
 * copying.  The leader promotes a learner (RAFT_CONF_PROMOTE) once its log is
 * within PROMOTE_LAG entries of the leader's; the promotion is one more
 * single-server change.  A new server starts from the leader's snapshot
 * (which carries the configuration), so a leader that has none takes one
 * first.  The leader removes itself only after handing
 * leadership to the most up-to-date voter: the new leader then removes it.
 */
#include "node/node_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A learner whose log is this close to the leader's is promoted. */
#define PROMOTE_LAG 128
/* Longest a client may ask the node to work on one request. */
#define MEMBER_MAX_MS 600000

enum { MOP_LIST = 1, MOP_ADD, MOP_REMOVE, MOP_TRANSFER };

struct member_op {
    member_op *next;
    int kind;
    uint64_t id;
    char addr[RAFT_ADDR_MAX];
    uint64_t deadline_ms;
    int phase; /* 0: not started; 1: proposed / transfer asked; 2: handing over */
    /* from the client port */
    bool net;
    net_client_msg cmsg;
    uint64_t req_id;
    /* from a thread (guarded by mu) */
    pthread_cond_t cond;
    bool done;
    int rc;
    node_member_result res;
};

static int conf_at(const raft_conf *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->ids[i] == id)
            return (int)i;
    return -1;
}

/* "host:port" with a port of 1..65534 (clients use port + 1). */
static bool addr_ok(const char *a)
{
    const char *c = strrchr(a, ':');
    if (!c || c == a || !memchr(a, 0, RAFT_ADDR_MAX))
        return false;
    char *end;
    long p = strtol(c + 1, &end, 10);
    return *end == 0 && p >= 1 && p <= 65534;
}

static void set_msg(member_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_msg(member_op *op, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->res.msg, sizeof op->res.msg, fmt, ap);
    va_end(ap);
}

static int to_net_status(int rc)
{
    switch (rc) {
    case NODE_OK: return NET_MST_OK;
    case NODE_ENOTLEADER: return NET_MST_NOT_LEADER;
    case NODE_EINVAL: return NET_MST_INVALID;
    case NODE_EBUSY: return NET_MST_BUSY;
    case NODE_ENOTMEMBER: return NET_MST_NOT_MEMBER;
    default: return NET_MST_UNAVAILABLE;
    }
}

/* Answers op (and frees it, or hands it back to its waiting thread). */
static void finish(node *n, member_op *op, int rc)
{
    raft_status st;
    raft_status_get(n->r, &st);
    op->res.conf = st.conf;
    op->res.leader_id = st.leader;
    if (st.leader && st.leader == n->last_leader)
        snprintf(op->res.leader_addr, sizeof op->res.leader_addr, "%s", n->leader_caddr);
    if (rc == NODE_ENOTLEADER && !op->res.msg[0]) {
        if (st.leader)
            set_msg(op, "node %" PRIu64 " is not the leader; node %" PRIu64 " is", n->cfg.id,
                    st.leader);
        else
            set_msg(op, "no leader known at node %" PRIu64 "; try again", n->cfg.id);
    }
    if (op->net) {
        net_member_resp r;
        memset(&r, 0, sizeof r);
        r.req_id = op->req_id;
        r.status = (uint8_t)to_net_status(rc);
        r.leader_id = op->res.leader_id;
        memcpy(r.leader_addr, op->res.leader_addr, sizeof r.leader_addr);
        memcpy(r.msg, op->res.msg, sizeof r.msg);
        r.msg[sizeof r.msg - 1] = 0;
        r.conf = op->res.conf;
        if (net_encode_member_resp(&r, &n->buf) == NET_OK)
            net_reply_client(n->tr, &op->cmsg, n->buf.p, n->buf.len);
        else
            net_client_msg_drop(&op->cmsg);
        free(op);
        return;
    }
    pthread_mutex_lock(&n->mu);
    op->rc = rc;
    op->done = true;
    pthread_cond_signal(&op->cond);
    pthread_mutex_unlock(&n->mu);
}

/* Proposes a conf change; RAFT_* code.  Logs it. */
static int propose(node *n, int type, uint64_t id, const char *addr)
{
    raft_conf_change cc;
    memset(&cc, 0, sizeof cc);
    cc.type = (uint8_t)type;
    cc.id = id;
    if (addr)
        snprintf(cc.addr, sizeof cc.addr, "%s", addr);
    uint64_t idx = 0;
    int rc = raft_propose_conf(n->r, &cc, &idx);
    if (rc == RAFT_OK) {
        n->mem.conf_idx = idx;
        nlog(n, 2, "membership: proposed %s node %" PRIu64 "%s%s at index %" PRIu64,
             raft_conf_change_name(type), id, addr ? " " : "", addr ? addr : "", idx);
    }
    return rc;
}

/* The voter other than this node with the longest log (0: none). */
static uint64_t best_voter(const raft_status *st, uint64_t self)
{
    uint64_t best = 0, best_match = 0;
    for (uint32_t i = 0; i < st->n_peers; i++) {
        const raft_peer_status *p = &st->peers[i];
        if (p->id == self || p->learner || !p->active)
            continue;
        if (!best || p->match > best_match) {
            best = p->id;
            best_match = p->match;
        }
    }
    return best;
}

static uint64_t match_of(const raft_status *st, uint64_t id)
{
    for (uint32_t i = 0; i < st->n_peers; i++)
        if (st->peers[i].id == id)
            return st->peers[i].match;
    return 0;
}

/* True while this leader has no snapshot to send a new server (it asks for
 * one; maybe_snapshot takes it). */
static bool need_snapshot(node *n, const raft_status *st)
{
    if (st->snapshot_index > 0)
        return false;
    uint64_t applied = kv_applied_index(n->kv);
    if (applied > 0 && n->snap.want < applied)
        n->snap.want = applied;
    return true;
}

/* One step of an ADD; true when op is finished. */
static bool step_add(node *n, member_op *op, const raft_status *st, uint64_t now)
{
    if (st->role != RAFT_LEADER) {
        finish(n, op, NODE_ENOTLEADER);
        return true;
    }
    int k = conf_at(&st->conf, op->id);
    if (k >= 0 && strcmp(st->conf.addrs[k], op->addr) != 0) {
        set_msg(op, "node %" PRIu64 " is already a member, at %s", op->id, st->conf.addrs[k]);
        finish(n, op, NODE_EINVAL);
        return true;
    }
    if (k >= 0 && !st->conf.learner[k] && st->commit >= n->mem.conf_idx) {
        set_msg(op, "node %" PRIu64 " (%s) is a voter", op->id, op->addr);
        finish(n, op, NODE_OK);
        return true;
    }
    if (k < 0 && op->phase == 0) {
        /* A new server starts from a snapshot, which carries the
         * configuration: a cluster that never took one takes one first. */
        if (need_snapshot(n, st))
            return false;
        int rc = propose(n, RAFT_CONF_ADD_LEARNER, op->id, op->addr);
        if (rc == RAFT_OK) {
            op->phase = 1;
        } else if (rc == RAFT_EINVAL) {
            set_msg(op, "cannot add node %" PRIu64 ": the cluster has %u members, the most is %d",
                    op->id, st->conf.n, RAFT_MAX_NODES);
            finish(n, op, NODE_EINVAL);
            return true;
        } else if (now >= op->deadline_ms) {
            set_msg(op, "another membership change or a leader transfer is under way; try again");
            finish(n, op, NODE_EBUSY);
            return true;
        }
        return false;
    }
    if (k < 0 && op->phase == 1 && st->commit >= n->mem.conf_idx) {
        set_msg(op, "node %" PRIu64 " was removed again meanwhile", op->id);
        finish(n, op, NODE_EINVAL);
        return true;
    }
    if (now >= op->deadline_ms) {
        set_msg(op,
                "node %" PRIu64 " is a learner, catching up (at index %" PRIu64 " of %" PRIu64
                "); the leader makes it a voter once it has",
                op->id, match_of(st, op->id), st->last_index);
        finish(n, op, NODE_ETIMEDOUT);
        return true;
    }
    return false;
}

/* One step of a REMOVE; true when op is finished. */
static bool step_remove(node *n, member_op *op, const raft_status *st, uint64_t now)
{
    if (st->role != RAFT_LEADER) {
        if (op->phase == 1) {
            /* Proposed, then deposed: the removal may or may not commit. */
            set_msg(op,
                    "leadership changed before the removal of node %" PRIu64
                    " was committed: see member list",
                    op->id);
            finish(n, op, NODE_ETIMEDOUT);
            return true;
        }
        if (op->phase == 2)
            set_msg(op, "node %" PRIu64 " handed leadership over; the new leader removes it",
                    n->cfg.id);
        finish(n, op, NODE_ENOTLEADER);
        return true;
    }
    int k = conf_at(&st->conf, op->id);
    if (op->phase == 1) {
        if (k < 0 && st->commit >= n->mem.conf_idx) {
            set_msg(op, "node %" PRIu64 " removed", op->id);
            finish(n, op, NODE_OK);
            return true;
        }
    } else if (k < 0) {
        set_msg(op, "node %" PRIu64 " is not a member", op->id);
        finish(n, op, NODE_ENOTMEMBER);
        return true;
    } else if (op->id == n->cfg.id) {
        /* The leader leaves: hand over first, the new leader removes it. */
        uint64_t to = best_voter(st, n->cfg.id);
        if (!to && raft_conf_voters(&st->conf) <= 1) {
            set_msg(op, "node %" PRIu64 " is the only voter; it cannot be removed", op->id);
            finish(n, op, NODE_EINVAL);
            return true;
        }
        if (to && raft_transfer_leader(n->r, to) == RAFT_OK && op->phase != 2) {
            op->phase = 2;
            nlog(n, 2, "membership: handing leadership to node %" PRIu64 " before leaving", to);
        }
    } else {
        int rc = propose(n, RAFT_CONF_REMOVE, op->id, NULL);
        if (rc == RAFT_OK) {
            op->phase = 1;
        } else if (rc == RAFT_EINVAL) {
            set_msg(op, "node %" PRIu64 " is the last voter; it cannot be removed", op->id);
            finish(n, op, NODE_EINVAL);
            return true;
        }
    }
    if (now >= op->deadline_ms) {
        if (op->phase == 1)
            set_msg(op, "the removal of node %" PRIu64 " is not committed yet (see member list)",
                    op->id);
        else
            set_msg(op, "another membership change or a leader transfer is under way; try again");
        finish(n, op, op->phase == 1 ? NODE_ETIMEDOUT : NODE_EBUSY);
        return true;
    }
    return false;
}

/* One step of a TRANSFER; true when op is finished. */
static bool step_transfer(node *n, member_op *op, const raft_status *st, uint64_t now)
{
    if (st->leader == op->id && (op->phase == 1 || op->id == n->cfg.id)) {
        set_msg(op, "node %" PRIu64 " leads, term %" PRIu64, op->id, st->term);
        finish(n, op, NODE_OK);
        return true;
    }
    if (op->phase == 0) {
        if (st->role != RAFT_LEADER) {
            finish(n, op, NODE_ENOTLEADER);
            return true;
        }
        int k = conf_at(&st->conf, op->id);
        if (k < 0) {
            set_msg(op, "node %" PRIu64 " is not a member", op->id);
            finish(n, op, NODE_ENOTMEMBER);
            return true;
        }
        if (st->conf.learner[k]) {
            set_msg(op, "node %" PRIu64 " is a learner; only a voter can lead", op->id);
            finish(n, op, NODE_EINVAL);
            return true;
        }
        int rc = raft_transfer_leader(n->r, op->id);
        if (rc == RAFT_OK) {
            op->phase = 1;
            nlog(n, 2, "membership: handing leadership to node %" PRIu64, op->id);
        } else if (rc == RAFT_EBUSY) {
            set_msg(op, "a leader transfer is under way; try again");
            finish(n, op, NODE_EBUSY);
            return true;
        }
    } else if (st->role != RAFT_LEADER && st->leader && st->leader != op->id) {
        set_msg(op, "node %" PRIu64 " was elected instead", st->leader);
        finish(n, op, NODE_EBUSY);
        return true;
    }
    if (now >= op->deadline_ms) {
        set_msg(op, "node %" PRIu64 " did not take over in time", op->id);
        finish(n, op, NODE_ETIMEDOUT);
        return true;
    }
    return false;
}

static bool step(node *n, member_op *op, const raft_status *st, uint64_t now)
{
    switch (op->kind) {
    case MOP_LIST:
        /* The leader's view: a follower's may lag (a removed node may never
         * learn of its removal). */
        if (st->role != RAFT_LEADER) {
            finish(n, op, NODE_ENOTLEADER);
            return true;
        }
        set_msg(op, "%u members", st->conf.n);
        finish(n, op, NODE_OK);
        return true;
    case MOP_ADD: return step_add(n, op, st, now);
    case MOP_REMOVE: return step_remove(n, op, st, now);
    case MOP_TRANSFER: return step_transfer(n, op, st, now);
    default: finish(n, op, NODE_EINVAL); return true;
    }
}

/* The leader promotes one learner whose log is close to its own. */
static void promote_learners(node *n, const raft_status *st)
{
    if (st->role != RAFT_LEADER || st->commit < n->mem.conf_idx)
        return;
    for (uint32_t i = 0; i < st->n_peers; i++) {
        const raft_peer_status *p = &st->peers[i];
        if (p->learner && p->match == 0)
            need_snapshot(n, st); /* a new leader may have none yet */
        if (!p->learner || !p->active || p->match == 0 || p->match + PROMOTE_LAG < st->last_index)
            continue;
        if (propose(n, RAFT_CONF_PROMOTE, p->id, NULL) == RAFT_OK)
            nlog(n, 2,
                 "membership: node %" PRIu64 " caught up (index %" PRIu64 " of %" PRIu64
                 "): promoting it to voter",
                 p->id, p->match, st->last_index);
        return;
    }
}

void member_turn(node *n, uint64_t now)
{
    pthread_mutex_lock(&n->mu);
    member_op *in = n->mem.in;
    n->mem.in = NULL;
    n->mem.hint_now = n->mem.hint;
    pthread_mutex_unlock(&n->mu);
    while (in) {
        member_op *next = in->next;
        in->next = n->mem.active;
        n->mem.active = in;
        in = next;
    }
    raft_status st;
    raft_status_get(n->r, &st);
    bool member = conf_at(&st.conf, n->cfg.id) >= 0;
    if (member != n->mem.member && st.conf.n) {
        if (n->mem.member)
            nlog(n, 1,
                 "membership: this node is no longer a member of the cluster; the others "
                 "refuse it: stop it");
        n->mem.member = member;
    }
    promote_learners(n, &st);
    for (member_op **pp = &n->mem.active; *pp;) {
        member_op *op = *pp, *next = op->next;
        raft_status_get(n->r, &st);
        if (step(n, op, &st, now)) {
            *pp = next; /* op is answered and gone */
            continue;
        }
        pp = &op->next;
    }
}

void member_stop(node *n)
{
    pthread_mutex_lock(&n->mu);
    member_op *in = n->mem.in;
    n->mem.in = NULL;
    n->mem.closed = true;
    pthread_mutex_unlock(&n->mu);
    while (in) {
        member_op *next = in->next;
        finish(n, in, NODE_ESTOPPED);
        in = next;
    }
    while (n->mem.active) {
        member_op *op = n->mem.active;
        n->mem.active = op->next;
        finish(n, op, NODE_ESTOPPED);
    }
}

const raft_conf *member_peer_conf(node *n, const raft_conf *c)
{
    return c->n == 0 && n->mem.hint_now.n ? &n->mem.hint_now : c;
}

/* ---- from the client port ----------------------------------------------- */

void member_request(node *n, net_client_msg *cm)
{
    net_member_req q;
    if (net_decode_member_req(cm->body, cm->len, &q) != NET_OK) {
        n->msgs_bad++;
        net_client_msg_drop(cm);
        return;
    }
    member_op *op = calloc(1, sizeof *op);
    if (!op) {
        net_client_msg_drop(cm);
        return;
    }
    op->net = true;
    op->cmsg = *cm;
    op->req_id = q.req_id;
    op->kind = q.op;
    op->id = q.id;
    memcpy(op->addr, q.addr, sizeof op->addr);
    uint64_t ms = q.timeout_ms ? q.timeout_ms : (uint64_t)n->cfg.op_timeout_ms;
    op->deadline_ms = now_ms() + (ms > MEMBER_MAX_MS ? MEMBER_MAX_MS : ms);
    if ((op->kind != MOP_LIST && op->id == 0) || (op->kind == MOP_ADD && !addr_ok(op->addr))) {
        set_msg(op, "bad request: a member needs an id above 0 and an address HOST:PORT");
        finish(n, op, NODE_EINVAL);
        return;
    }
    op->next = n->mem.active;
    n->mem.active = op;
}

/* ---- from threads ------------------------------------------------------- */

static int run(node *n, int kind, uint64_t id, const char *addr, int timeout_ms,
               node_member_result *res)
{
    if (res)
        memset(res, 0, sizeof *res);
    if ((kind != MOP_LIST && id == 0) || (kind == MOP_ADD && (!addr || !addr_ok(addr)))) {
        if (res)
            snprintf(res->msg, sizeof res->msg,
                     "a member needs an id above 0 and an address HOST:PORT");
        return NODE_EINVAL;
    }
    member_op *op = calloc(1, sizeof *op);
    if (!op)
        return NODE_ENOMEM;
    op->kind = kind;
    op->id = id;
    if (addr)
        snprintf(op->addr, sizeof op->addr, "%s", addr);
    if (timeout_ms <= 0)
        timeout_ms = n->cfg.op_timeout_ms;
    op->deadline_ms = now_ms() + (uint64_t)timeout_ms;
    pthread_cond_init(&op->cond, NULL);
    pthread_mutex_lock(&n->mu);
    if (n->mem.closed || n->stop) {
        pthread_mutex_unlock(&n->mu);
        pthread_cond_destroy(&op->cond);
        free(op);
        return NODE_ESTOPPED;
    }
    op->next = n->mem.in;
    n->mem.in = op;
    pthread_mutex_unlock(&n->mu);
    node_wake(n);
    /* The loop finishes every op by its deadline (it turns at least once a
     * tick) or when it stops (member_stop). */
    pthread_mutex_lock(&n->mu);
    while (!op->done)
        pthread_cond_wait(&op->cond, &n->mu);
    pthread_mutex_unlock(&n->mu);
    int rc = op->rc;
    if (res)
        *res = op->res;
    pthread_cond_destroy(&op->cond);
    free(op);
    return rc;
}

int node_member_list(node *n, node_member_result *res)
{
    return run(n, MOP_LIST, 0, NULL, 0, res);
}

int node_member_add(node *n, uint64_t id, const char *addr, int timeout_ms, node_member_result *res)
{
    return run(n, MOP_ADD, id, addr, timeout_ms, res);
}

int node_member_remove(node *n, uint64_t id, int timeout_ms, node_member_result *res)
{
    return run(n, MOP_REMOVE, id, NULL, timeout_ms, res);
}

int node_member_transfer(node *n, uint64_t id, int timeout_ms, node_member_result *res)
{
    return run(n, MOP_TRANSFER, id, NULL, timeout_ms, res);
}

void node_join_hint(node *n, const raft_conf *members)
{
    pthread_mutex_lock(&n->mu);
    n->mem.hint = *members;
    pthread_mutex_unlock(&n->mu);
    node_wake(n);
}
