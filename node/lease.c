/*
 * lease.c — the node's side of read leases (raft.h "Read leases"): its
 * clock, the rule that makes a read or a write's answer safe to return, and
 * the brief hold on applying that keeps reads from waiting for ever under a
 * stream of writes.
 *
 *   clock      lease_now_ms(): CLOCK_MONOTONIC in ms; the core gets it every
 *              turn (raft_set_now).  HSTORE_TEST_CLOCK_RATE (a test hook, e.g.
 *              1.05) makes this node's lease clock run that much fast or slow.
 *   applied    raft_set_applied() after every applied batch: the mount keeps
 *              no cache of its own beyond what the kernel is told to drop
 *              before the call returns (fs/), so applied is also "dropped".
 *   writes     the answer to a command waits until the visible index this
 *              node knows reaches the command's index (lease_hold_answer):
 *              by then every node holding a lease has applied it.
 *   reads      a node whose lease is valid answers from its own state, with
 *              no round trip; one without asks the leader (ReadIndex) and
 *              waits until it has applied the read index.  Either way the
 *              answer goes out only when the visible index known here has
 *              reached this node's applied index (the state answered from
 *              holds nothing another holder could still miss).
 *   hold       under a stream of writes the applied index can stay ahead of
 *              the visible one; a read that has waited LEASE_HOLD_AFTER_MS
 *              stops the applying of new entries (they are kept, copied,
 *              and applied in order once the reads are answered, or after
 *              LEASE_HOLD_MAX_MS) so the visible index catches up.
 *
 * With leases off (--lease-ms 0) reads use ReadIndex alone and nothing here
 * holds anything back.
 */
#include "node/node_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASE_HOLD_AFTER_MS 5   /* a read waits this long before applying stops */
#define LEASE_HOLD_MAX_MS 200   /* applying stops at most this long at a time */
#define LEASE_WAIT_WARN_MS 2000 /* a read waiting this long is logged */

void lease_init(node *n)
{
    n->lease.rate = 1.0;
    const char *r = getenv("HSTORE_TEST_CLOCK_RATE");
    if (r && *r) {
        char *end;
        double v = strtod(r, &end);
        if (*end == 0 && v > 0.01 && v < 100)
            n->lease.rate = v;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    n->lease.base_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t lease_now_ms(const node *n)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (n->lease.rate == 1.0)
        return ns / 1000000u;
    /* The test hook: this node's time runs at rate from its start on. */
    double d = (double)(ns - n->lease.base_ns) * n->lease.rate;
    return (n->lease.base_ns + (uint64_t)d) / 1000000u;
}

bool lease_on(const node *n)
{
    return n->cfg.lease_ms > 0;
}

void lease_turn(node *n)
{
    if (lease_on(n))
        raft_set_now(n->r, lease_now_ms(n));
}

/* The visible index this node knows (0 with leases off). */
static uint64_t visible(const node *n)
{
    raft_lease_info li;
    raft_lease_get(n->r, &li);
    return li.visible;
}

bool lease_valid(const node *n)
{
    if (!lease_on(n))
        return false;
    raft_lease_info li;
    raft_lease_get(n->r, &li);
    return li.lease_until && lease_now_ms(n) < li.lease_until;
}

bool lease_local_read(node *n, const uint8_t *op, size_t len, uint8_t **reply, size_t *reply_len,
                      int *rc)
{
    if (!lease_on(n) || !atomic_load(&n->lease_until_pub) || !kv_op_is_read(op, len))
        return false;
    uint64_t t0 = metrics_now_ns();
    pthread_rwlock_rdlock(&n->kv_rw);
    /* The state cannot change while the read lock is held, so the moment
     * of this check is the read's moment: the lease (its end as the loop
     * last learned it; a lease, once granted, stays good until its end
     * whatever the core learns later) says nothing visible anywhere is
     * missing here, and the visible index says nothing here is invisible. */
    uint64_t applied = kv_applied_index(n->kv);
    bool ok = lease_now_ms(n) < atomic_load(&n->lease_until_pub) &&
              applied <= atomic_load(&n->visible_pub);
    if (ok)
        *rc = kv_query(n->kv, op, len, reply, reply_len) == 0 ? NODE_OK : NODE_ENOMEM;
    pthread_rwlock_unlock(&n->kv_rw);
    if (ok) {
        metrics_inc(&n->metrics.lease_reads, 1);
        metrics_inc(&n->metrics.local_reads, 1);
        metrics_observe(&n->metrics.read_index, metrics_now_ns() - t0);
    }
    return ok;
}

void node_set_changed(node *n, node_changed_fn fn, void *arg)
{
    pthread_mutex_lock(&n->chg.mu);
    n->chg.fn = fn;
    n->chg.arg = arg;
    atomic_store(&n->chg.on, fn != NULL);
    pthread_mutex_unlock(&n->chg.mu);
}

uint64_t node_lease_left_ms(node *n)
{
    uint64_t until = atomic_load(&n->lease_until_pub), now = lease_now_ms(n);
    return until > now ? until - now : 0;
}

void lease_changed(node *n)
{
    if (!atomic_load(&n->chg.on))
        return;
    const uint64_t *inos;
    bool all;
    size_t cnt = kv_changed(n->kv, &inos, &all);
    if (!cnt && !all)
        return;
    bool names = kv_changed_names(n->kv);
    pthread_mutex_lock(&n->chg.mu);
    if (n->chg.fn)
        n->chg.fn(n->chg.arg, inos, cnt, all, names);
    pthread_mutex_unlock(&n->chg.mu);
}

void lease_applied(node *n)
{
    if (lease_on(n))
        raft_set_applied(n->r, kv_applied_index(n->kv));
}

bool lease_hold_answer(node *n, req *q, uint64_t index, uint8_t *reply, size_t len)
{
    if (q->ack_wait) {
        /* held already: this is a second copy of the same command (a retry
         * that also committed); the session gave it the same answer */
        free(reply);
        return true;
    }
    if (!lease_on(n) || visible(n) >= index)
        return false;
    q->ack_wait = true;
    q->ack_index = index;
    q->ack_reply = reply;
    q->ack_len = len;
    metrics_inc(&n->metrics.answers_held, 1);
    return true;
}

bool lease_read_servable(node *n, req *q, uint64_t applied, uint64_t now)
{
    if (!lease_on(n))
        return true;
    if (visible(n) >= applied) {
        q->vis_wait_ms = 0;
        return true;
    }
    if (!q->vis_wait_ms)
        q->vis_wait_ms = now ? now : 1;
    else if (now - q->vis_wait_ms >= LEASE_HOLD_AFTER_MS && !n->lease.hold) {
        n->lease.hold = true;
        n->lease.hold_ms = now;
    }
    return false;
}

/* Applies the entries kept while applying was held, in order. */
static int apply_kept(node *n)
{
    int rc = 0;
    for (size_t i = 0; i < n->lease.n_kept && rc == 0; i++) {
        raft_entry *e = &n->lease.kept[i];
        if (e->index > kv_applied_index(n->kv))
            rc = node_apply_entry(n, e);
    }
    for (size_t i = 0; i < n->lease.n_kept; i++)
        free(n->lease.kept[i].data);
    n->lease.n_kept = 0;
    lease_applied(n); /* whichever path applied them: the core must hear it */
    return rc;
}

int lease_apply(node *n, const raft_entry *ents, size_t cnt)
{
    bool hold = n->lease.hold && lease_on(n);
    if (hold && now_ms() - n->lease.hold_ms >= LEASE_HOLD_MAX_MS)
        hold = n->lease.hold = false; /* never longer than that */
    if (!hold && n->lease.n_kept && apply_kept(n) != 0)
        return -1;
    for (size_t i = 0; i < cnt; i++) {
        const raft_entry *e = &ents[i];
        if (e->index <= kv_applied_index(n->kv))
            continue;
        if (!hold) {
            if (node_apply_entry(n, e) != 0)
                return -1;
            continue;
        }
        if (n->lease.n_kept && n->lease.kept[n->lease.n_kept - 1].index >= e->index)
            continue; /* kept already */
        if (n->lease.n_kept == n->lease.cap_kept) {
            size_t cap = n->lease.cap_kept ? n->lease.cap_kept * 2 : 64;
            raft_entry *k = realloc(n->lease.kept, cap * sizeof *k);
            if (!k)
                return -1;
            n->lease.kept = k;
            n->lease.cap_kept = cap;
        }
        raft_entry c = *e;
        c.data = NULL;
        if (e->len) {
            c.data = malloc(e->len);
            if (!c.data)
                return -1;
            memcpy(c.data, e->data, e->len);
        }
        n->lease.kept[n->lease.n_kept++] = c;
    }
    return 0;
}

int lease_flush(node *n)
{
    n->lease.hold = false;
    return n->lease.n_kept ? apply_kept(n) : 0;
}

int lease_release(node *n, uint64_t now)
{
    if (!lease_on(n))
        return 0;
    uint64_t vis = visible(n);
    bool reads_waiting = false;
    uint64_t oldest = 0; /* the longest wait for the visible index, ms */
    req *q = n->pending.next;
    while (q != &n->pending) {
        req *nx = q->next;
        if (q->read && q->vis_wait_ms && now - q->vis_wait_ms > oldest)
            oldest = now - q->vis_wait_ms;
        if (q->ack_wait && vis >= q->ack_index) {
            uint8_t *r = q->ack_reply;
            q->ack_reply = NULL;
            q->ack_wait = false;
            req_finish(n, q, NODE_OK, r, q->ack_len);
        } else if (q->read && q->vis_wait_ms) {
            reads_waiting = true;
        }
        q = nx;
    }
    if (oldest >= LEASE_WAIT_WARN_MS && now - n->lease.warned_ms >= LEASE_WAIT_WARN_MS) {
        raft_lease_info li;
        raft_lease_get(n->r, &li);
        raft_status st;
        raft_status_get(n->r, &st);
        char peers[256] = "";
        size_t o = 0;
        for (uint32_t i = 0; i < st.n_peers && o < sizeof peers; i++) {
            const raft_peer_status *p = &st.peers[i];
            int w = snprintf(peers + o, sizeof peers - o,
                             " %" PRIu64 ":match=%" PRIu64 ",applied=%" PRIu64 "%s", p->id,
                             p->match, p->applied, p->lease_holder ? ",holder" : "");
            if (w < 0)
                break;
            o += (size_t)w;
        }
        nlog(n, 1,
             "reads have waited %" PRIu64 " ms for the visible index: visible %" PRIu64
             ", applied %" PRIu64 ", commit %" PRIu64 ", lease %s, %zu entries kept%s%s",
             oldest, li.visible, kv_applied_index(n->kv), st.commit,
             li.lease_until > lease_now_ms(n) ? "valid" : "none", n->lease.n_kept,
             st.role == RAFT_LEADER ? "; members" : "", st.role == RAFT_LEADER ? peers : "");
        n->lease.warned_ms = now;
    }
    /* Applying resumes once no read waits for the visible index (or the
     * hold has lasted long enough), with the kept entries first. */
    if (n->lease.hold && (!reads_waiting || now - n->lease.hold_ms >= LEASE_HOLD_MAX_MS))
        n->lease.hold = false;
    if (!n->lease.hold && n->lease.n_kept && apply_kept(n) != 0)
        return -1;
    return 0;
}

void lease_free(node *n)
{
    for (size_t i = 0; i < n->lease.n_kept; i++)
        free(n->lease.kept[i].data);
    free(n->lease.kept);
    n->lease.kept = NULL;
    n->lease.n_kept = n->lease.cap_kept = 0;
}
