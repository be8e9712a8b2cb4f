/*
 * raft_lease.c — read leases and the visible index (raft.h, "Read leases").
 *
 * Time: the caller's clock, given by raft_set_now(); the core compares only
 * its own readings.  A duration that crosses nodes is shrunk or stretched by
 * the drift bound d = drift_pct/100, each clock's rate being within d of
 * real time:
 *
 *   Leader lease.  Every APPEND carries lease_t = the leader's now; the
 *   answer echoes it.  With X the quorum-th largest of {now (self), the
 *   highest echo of each voter}, a quorum received an APPEND of this term
 *   after X, and a voter of any later leader votes only after it left this
 *   term.  So no later leader was elected before X, and as a new leader
 *   waits lease*(1+d) of its clock (>= lease real ms) before it grants or
 *   makes anything visible, the leader's lease X + lease*(1-d) (<= lease
 *   real ms after X) ends before any later leader acts.
 *
 *   Member lease.  An answer carries resp_t = the member's now.  The leader
 *   receives it at t_r with its own lease valid until L and grants
 *   R = L - t_r; the member holds resp_t + R*(1-d)/(1+d) of its clock, which
 *   ends in real time before t_r + R of the leader's (its answer left before
 *   t_r).  The leader counts the member as a holder until L.
 *
 *   Visible index.  V only advances to indexes that every member the leader
 *   counts as a holder has applied (as that member last reported, trusted up
 *   to its match index), so a holder has applied every V while it holds its
 *   lease.  A grant needs the member's reported applied >= V, and a new
 *   leader grants nothing before its own no-op is visible (V is then above
 *   anything an earlier term made visible).
 *
 *   Restarts.  A restarted member forgets its lease; its new answers carry
 *   larger resp_t (its clock does not go back), the leader keeps the applied
 *   index of the newest answer only, and a member takes no grant made on an
 *   answer older than its own start.
 */
#include <string.h>

#include "raftkv/raft_internal.h"

static uint64_t scale(uint64_t ms, uint64_t num, uint64_t den)
{
    return ms * num / den;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* ---- leader -------------------------------------------------------------- */

/* The leader's lease end from the echoes (0 when a quorum has not echoed). */
static uint64_t leader_lease_until(const raft *r)
{
    uint64_t v[RAFT_MAX_NODES];
    uint32_t n = 0;
    if (raft_is_voter(r, r->id))
        v[n++] = r->now;
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (raft_is_voter(r, r->prs[i].id))
            v[n++] = r->prs[i].lease_echo;
    uint64_t x;
    if (!raft_quorum_value(r, v, n, &x) || x == 0)
        return 0;
    return x + scale(r->cfg.lease_ms, 100 - r->cfg.drift_pct, 100);
}

/* May the leader hold or grant leases now (its wait is over, no transfer
 * runs, its no-op is visible, a quorum echoed recently)?  Its lease end. */
static uint64_t leader_lease_valid(const raft *r)
{
    if (!r->cfg.lease_ms || r->role != RAFT_LEADER || r->transferee)
        return 0;
    if (r->now < r->lead_wait_until || r->visible < r->lead_first)
        return 0;
    uint64_t l = leader_lease_until(r);
    return l > r->now ? l : 0;
}

/* History of V's target (commit capped by everyone's applied but the
 * holders'): lets the leader tell how long a holder has kept V back. */
static void target_note(raft *r, uint64_t v)
{
    unsigned cap = sizeof r->tgt_t / sizeof r->tgt_t[0];
    if (r->tgt_n) {
        unsigned last = (r->tgt_head + r->tgt_n - 1) % cap;
        if (v <= r->tgt_v[last])
            return;
        uint64_t gran = r->cfg.lease_ms / 16 ? r->cfg.lease_ms / 16 : 1;
        if (r->now < r->tgt_t[last] + gran) {
            r->tgt_v[last] = v;
            return;
        }
    }
    unsigned k;
    if (r->tgt_n < cap) {
        k = (r->tgt_head + r->tgt_n) % cap;
        r->tgt_n++;
    } else {
        k = r->tgt_head;
        r->tgt_head = (r->tgt_head + 1) % cap;
    }
    r->tgt_t[k] = r->now;
    r->tgt_v[k] = v;
}

/* The target as it was at time t (0 if none was noted by then; the oldest
 * entry when the ring overflowed, entries being >= lease_ms/16 apart). */
static uint64_t target_at(const raft *r, uint64_t t)
{
    unsigned cap = sizeof r->tgt_t / sizeof r->tgt_t[0];
    for (unsigned k = r->tgt_n; k-- > 0;) {
        unsigned at = (r->tgt_head + k) % cap;
        if (r->tgt_t[at] <= t)
            return r->tgt_v[at];
    }
    return r->tgt_n == cap ? r->tgt_v[r->tgt_head] : 0;
}

static uint64_t peer_applied(const raft_progress *p)
{
    return min64(p->applied, p->match);
}

static void leader_visible(raft *r)
{
    if (r->now < r->lead_wait_until)
        return; /* a lease of an earlier leader may still run */
    uint64_t tgt = min64(r->commit, r->applied_rep);
    target_note(r, tgt);
    if (r->now < r->gone_lease_until)
        return; /* a removed member may still serve reads */
    for (uint32_t i = 0; i < r->n_prs; i++) {
        const raft_progress *p = &r->prs[i];
        if (p->lease_until > r->now)
            tgt = min64(tgt, peer_applied(p));
    }
    if (tgt > r->visible) {
        r->visible = tgt;
        r->commit_pending = true; /* tell the members at the next ready */
    }
}

void raft_lease_become_leader(raft *r, uint64_t first)
{
    if (!r->cfg.lease_ms)
        return;
    r->lead_wait_until = r->now + scale(r->cfg.lease_ms, 100 + r->cfg.drift_pct, 100);
    r->lead_first = first;
    r->gone_lease_until = 0;
    r->tgt_head = r->tgt_n = 0;
    r->lease_until = 0;
}

void raft_lease_forget(raft *r, const raft_progress *p)
{
    if (p->lease_until > r->gone_lease_until)
        r->gone_lease_until = p->lease_until;
}

void raft_lease_fill_append(raft *r, raft_progress *p, raft_msg *m)
{
    if (!r->cfg.lease_ms)
        return;
    m->lease_t = r->now;
    m->visible = r->visible;
    m->grant_resp_t = p->grant_resp_t;
    m->grant_ms = p->grant_ms;
    if (r->visible > p->visible_sent)
        p->visible_sent = r->visible;
}

/* Should p hear of a new V at once: it holds a lease, or it holds the
 * entries and so can use V (a ReadIndex read waits for it). */
bool raft_lease_tell(const raft *r, const raft_progress *p)
{
    return r->cfg.lease_ms && p->visible_sent < r->visible &&
           (p->lease_until > r->now || p->match >= r->visible);
}

void raft_lease_on_resp(raft *r, raft_progress *p, const raft_msg *m)
{
    if (!r->cfg.lease_ms)
        return;
    if (m->lease_t > p->lease_echo && m->lease_t <= r->now)
        p->lease_echo = m->lease_t;
    /* Only the newest answer speaks for the member's applied index (an
     * older one may come from before a restart); equal times: the larger. */
    bool fresh = m->resp_t > p->resp_t || (m->resp_t == p->resp_t && m->applied > p->applied);
    if (!fresh)
        return;
    p->resp_t = m->resp_t;
    p->applied = m->applied;
    leader_visible(r);
    uint64_t l = leader_lease_valid(r);
    if (!l || m->resp_t == 0)
        return;
    uint64_t a = peer_applied(p);
    if (a < r->visible)
        return; /* not caught up with what is visible */
    if (a < target_at(r, r->now - min64(r->now, r->cfg.lease_ms / 4)))
        return; /* lagging: it would keep V back again */
    p->grant_resp_t = m->resp_t;
    p->grant_ms = l - r->now;
    if (l > p->lease_until)
        p->lease_until = l;
}

/* ---- follower ------------------------------------------------------------ */

static bool follower_lease_valid(const raft *r)
{
    return r->lease_until > r->now && r->lease_term == r->term && r->lease_leader == r->leader &&
           r->role == RAFT_FOLLOWER && r->leader != 0;
}

void raft_lease_become_follower(raft *r, uint64_t term, uint64_t leader)
{
    if (term > r->term || (leader != 0 && leader != r->lease_leader)) {
        r->lease_until = 0;
        r->lease_term = 0;
        r->lease_leader = 0;
        r->heard_lease_t = 0;
    }
}

void raft_lease_fill_resp(raft *r, raft_msg *o, uint64_t lease_t)
{
    if (!r->cfg.lease_ms)
        return;
    o->lease_t = lease_t;
    o->resp_t = r->now;
    o->applied = r->applied_rep;
    r->applied_sent = r->applied_rep;
}

void raft_lease_on_append(raft *r, const raft_msg *m)
{
    if (!r->cfg.lease_ms || r->leader != m->from || m->term != r->term || r->role != RAFT_FOLLOWER)
        return;
    if (r->lease_term != r->term || r->lease_leader != r->leader) {
        r->lease_until = 0;
        r->lease_term = r->term;
        r->lease_leader = r->leader;
        r->heard_lease_t = 0;
    }
    if (m->lease_t > r->heard_lease_t)
        r->heard_lease_t = m->lease_t;
    if (m->visible > r->v_heard)
        r->v_heard = m->visible;
    /* A grant made on an answer of this incarnation (sent after it started),
     * not from the future, never longer than a lease. */
    if (m->grant_ms && r->now_set && m->grant_ms <= r->cfg.lease_ms && m->grant_resp_t > r->born &&
        m->grant_resp_t <= r->now) {
        uint64_t d = r->cfg.drift_pct;
        uint64_t until = m->grant_resp_t + scale(m->grant_ms, 100 - d, 100 + d);
        if (until > r->lease_until)
            r->lease_until = until;
    }
    raft_lease_refresh(r);
}

/* ---- both ---------------------------------------------------------------- */

void raft_lease_refresh(raft *r)
{
    if (!r->cfg.lease_ms)
        return;
    if (r->role == RAFT_LEADER) {
        leader_visible(r);
        return;
    }
    uint64_t v = min64(r->v_heard, r->commit);
    if (v > r->visible)
        r->visible = v;
}

void raft_set_now(raft *r, uint64_t now_ms)
{
    if (!r->now_set) {
        r->now_set = true;
        r->born = now_ms;
        r->now = now_ms;
    } else if (now_ms > r->now) {
        r->now = now_ms;
    }
    raft_lease_refresh(r);
}

void raft_set_applied(raft *r, uint64_t index)
{
    if (index > r->applied || index <= r->applied_rep)
        return;
    r->applied_rep = index;
    if (!r->cfg.lease_ms)
        return;
    if (r->role == RAFT_LEADER) {
        leader_visible(r);
        return;
    }
    if (follower_lease_valid(r) && r->applied_rep > r->applied_sent) {
        /* V may wait for us: say so now, not at the next heartbeat (the
         * answer's shape is a heartbeat's: index 0). */
        raft_msg *o = raft_emit(r, RAFT_MSG_APPEND_RESP, r->leader, false);
        if (o)
            raft_lease_fill_resp(r, o, r->heard_lease_t);
    }
}

void raft_lease_get(const raft *r, raft_lease_info *out)
{
    memset(out, 0, sizeof *out);
    if (!r->cfg.lease_ms)
        return;
    out->visible = r->visible;
    if (r->role == RAFT_LEADER) {
        out->lease_until = leader_lease_valid(r);
        out->term = out->lease_until ? r->term : 0;
        for (uint32_t i = 0; i < r->n_prs; i++)
            if (r->prs[i].lease_until > r->now)
                out->holders++;
    } else if (follower_lease_valid(r)) {
        out->lease_until = r->lease_until;
        out->term = r->lease_term;
    }
}
