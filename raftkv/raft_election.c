/*
 * raft_election.c — roles and leader election.
 *
 * §3.4 of the dissertation: a follower that hears nothing for a randomized
 * election timeout starts an election.  With pre-vote (§9.6) it first asks
 * whether it could win, without raising its term, so a node that was
 * partitioned away cannot force a new term on a healthy cluster when it
 * returns.  With check-quorum a leader that has not heard from a majority
 * for an election timeout steps down, and a follower that heard from a leader
 * within the election timeout ignores (pre-)vote requests (the "leader lease"
 * of §9.6), unless the election comes from a leader transfer (§3.10).
 *
 * Persistence: a vote request promises the candidate's new term and vote are
 * durable, and a vote granted must survive a crash, so both go out only after
 * the batch holding the hard state is persisted (msgs_after_persist).
 */
#include <assert.h>
#include <string.h>

#include "raftkv/raft_internal.h"

bool raft_in_lease(const raft *r)
{
    return r->cfg.check_quorum && r->leader != 0 && r->elapsed < r->cfg.election_ticks;
}

static void reset_votes(raft *r)
{
    r->n_granted = r->n_refused = 0;
}

void raft_become_follower(raft *r, uint64_t term, uint64_t leader)
{
    raft_lease_become_follower(r, term, leader);
    if (term > r->term) {
        r->term = term;
        r->vote = 0;
    }
    if (r->role == RAFT_LEADER) {
        raft_read_drop(r);
        r->transferee = 0;
        r->send_pending = false;
        r->commit_pending = false;
    }
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    r->elapsed = 0;
    r->hb_elapsed = 0;
    reset_votes(r);
    raft_reset_timeout(r);
}

void raft_become_leader(raft *r)
{
    assert(r->role == RAFT_CANDIDATE);
    r->role = RAFT_LEADER;
    r->leader = r->id;
    r->transferee = 0;
    r->elapsed = 0;
    r->hb_elapsed = 0;
    r->n_prs = 0;
    raft_progress_sync(r);
    uint64_t next = raft_log_last(r) + 1;
    for (uint32_t i = 0; i < r->n_prs; i++)
        raft_progress_reset(r, &r->prs[i], next);
    /* §8 of the paper / §6.4: a no-op of the new term lets the leader learn
     * what is committed (Figure 8 forbids counting replicas of older terms),
     * and ReadIndex waits for it.  No conf change before it commits. */
    uint64_t idx = 0;
    if (raft_append_local(r, RAFT_ENTRY_NOOP, NULL, 0, &idx) != RAFT_OK) {
        /* No memory for the no-op: leading without it could never commit. */
        raft_become_follower(r, r->term, 0);
        return;
    }
    r->pending_conf = idx;
    raft_lease_become_leader(r, idx);
}

static void count_vote(raft *r, uint64_t from, bool granted)
{
    uint64_t *set = granted ? r->granted : r->refused;
    uint32_t *n = granted ? &r->n_granted : &r->n_refused;
    if (!raft_is_voter(r, from))
        return;
    for (uint32_t i = 0; i < r->n_granted; i++)
        if (r->granted[i] == from)
            return;
    for (uint32_t i = 0; i < r->n_refused; i++)
        if (r->refused[i] == from)
            return;
    if (*n < RAFT_MAX_NODES)
        set[(*n)++] = from;
}

/* Real votes are kept apart from pre-votes, per term: a vote granted in
 * our current term stays granted (the voter persisted it), so answers that
 * arrive after our election timer fired again still count. */
static void count_real_vote(raft *r, uint64_t from)
{
    if (r->vgranted_term != r->term) {
        r->vgranted_term = r->term;
        r->n_vgranted = 0;
    }
    if (!raft_is_voter(r, from))
        return;
    for (uint32_t i = 0; i < r->n_vgranted; i++)
        if (r->vgranted[i] == from)
            return;
    if (r->n_vgranted < RAFT_MAX_NODES)
        r->vgranted[r->n_vgranted++] = from;
}

static void check_votes(raft *r, bool transfer)
{
    int q = raft_quorum(r);
    if (r->role == RAFT_PRE_CANDIDATE) {
        if ((int)r->n_granted >= q)
            raft_campaign(r, false, transfer);
        else if ((int)r->n_refused > (int)raft_conf_voters(&r->conf) - q)
            raft_become_follower(r, r->term, 0);
        return;
    }
    if (r->vgranted_term == r->term && (int)r->n_vgranted >= q) {
        r->role = RAFT_CANDIDATE;
        raft_become_leader(r);
    } else if (r->role == RAFT_CANDIDATE &&
               (int)r->n_refused > (int)raft_conf_voters(&r->conf) - q) {
        raft_become_follower(r, r->term, 0);
    }
}

/* May this server start an election?  Members of the latest configuration
 * may.  So may a server whose own removal is the latest, still uncommitted,
 * configuration entry: it may hold entries no remaining member has (its log
 * can be the only up-to-date one), and refusing to campaign would leave the
 * others unable to win its vote (configurations take effect on append,
 * §4.1).  It counts votes by the new configuration, without itself. */
bool raft_promotable(const raft *r)
{
    if (raft_is_voter(r, r->id))
        return true;
    if (r->conf.n == 0 || r->conf_index <= r->commit || r->conf_index <= r->log.snap_index)
        return false;
    raft_conf prev;
    uint64_t at;
    raft_conf_at(r, r->conf_index - 1, &prev, &at);
    int k = raft_conf_find(&prev, r->id);
    return k >= 0 && !prev.learner[k];
}

void raft_campaign(raft *r, bool pre_vote, bool transfer)
{
    if (!raft_promotable(r))
        return; /* removed or still joining */
    if (r->term >= RAFT_TERM_MAX)
        return; /* the next term would leave the range */
    if (pre_vote && r->role == RAFT_PRE_CANDIDATE)
        r->n_refused = 0; /* same proposed term again: pre-votes already
                             * granted stay valid (they change no state), which
                             * matters when answers arrive late */
    else
        reset_votes(r);
    r->leader = 0;
    r->elapsed = 0;
    raft_reset_timeout(r);
    uint64_t term;
    if (pre_vote) {
        r->role = RAFT_PRE_CANDIDATE;
        term = r->term + 1;
    } else {
        r->role = RAFT_CANDIDATE;
        r->term++;
        r->vote = r->id;
        term = r->term;
    }
    if (pre_vote) {
        count_vote(r, r->id, true);
    } else {
        r->n_vgranted = 0;
        count_real_vote(r, r->id);
    }
    for (uint32_t i = 0; i < r->conf.n; i++) {
        uint64_t id = r->conf.ids[i];
        if (id == r->id || r->conf.learner[i])
            continue; /* learners do not vote */
        raft_msg *m = raft_emit(r, pre_vote ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE, id, !pre_vote);
        if (!m)
            continue;
        m->term = term;
        m->index = raft_log_last(r);
        m->log_term = raft_log_last_term(r);
        m->transfer = transfer;
    }
    check_votes(r, transfer);
}

/* A (pre-)vote request from a server that is not a voter of our latest
 * configuration, and whose log is not ahead of ours, is refused: a removed
 * server that never learnt of its removal (its log lacks the removal), or a
 * learner.  Refusing a vote is always safe.  A candidate whose log is ahead
 * may hold the entry that made it a voter, which we have not seen yet: it is
 * heard as usual, or a stale voter could keep the cluster from electing
 * anyone. */
bool raft_vote_from_stranger(const raft *r, const raft_msg *m)
{
    if (r->conf.n == 0 || raft_is_voter(r, m->from))
        return false;
    uint64_t t = raft_log_last_term(r);
    bool ahead = m->log_term > t || (m->log_term == t && m->index > raft_log_last(r));
    return !ahead;
}

void raft_handle_vote(raft *r, const raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    bool can;
    if (pre)
        can = m->term > r->term || r->vote == m->from || (r->vote == 0 && r->leader == 0);
    else
        can = r->vote == m->from || (r->vote == 0 && r->leader == 0);
    if (raft_vote_from_stranger(r, m))
        can = false;
    bool grant = can && raft_up_to_date(r, m->index, m->log_term);
    raft_msg *o = raft_emit(r, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, m->from, !pre);
    if (grant && !pre) {
        r->vote = m->from;
        r->elapsed = 0;
    }
    if (!o)
        return;
    o->reject = !grant;
    /* A granted pre-vote answers in the term the pre-candidate would use. */
    o->term = (pre && grant) ? m->term : r->term;
}

void raft_handle_vote_resp(raft *r, const raft_msg *m)
{
    if (m->type == RAFT_MSG_PREVOTE_RESP) {
        if (r->role != RAFT_PRE_CANDIDATE)
            return;
        if (!m->reject && m->term != r->term + 1)
            return;
        count_vote(r, m->from, !m->reject);
    } else {
        /* Our own vote in this term must be for ourselves and no leader may
         * be known for it; the role may already be pre-candidate again. */
        if (m->term != r->term || r->vote != r->id || r->role == RAFT_LEADER || r->leader != 0)
            return;
        if (m->reject) {
            if (r->role != RAFT_CANDIDATE)
                return;
            count_vote(r, m->from, false);
        } else {
            count_real_vote(r, m->from);
        }
    }
    check_votes(r, false);
}

/* Records why an election starts or a leader steps down. */
static void note_election(raft *r, raft_election_reason why, uint64_t leader, int64_t idle)
{
    raft_election_event *e = &r->election;
    uint64_t seq = e->seq + 1;
    memset(e, 0, sizeof *e);
    e->seq = seq;
    e->reason = why;
    e->term = r->term;
    e->leader = leader;
    e->idle_ticks = idle;
}

void raft_tick_election(raft *r)
{
    r->elapsed++;
    if (r->elapsed >= r->timeout && raft_promotable(r)) {
        r->elapsed = 0;
        /* A pre-candidate that times out again starts a new round too. */
        note_election(r, RAFT_ELECTION_TIMEOUT, r->heard_leader,
                      r->heard_leader ? r->heard_idle : -1);
        raft_campaign(r, r->cfg.pre_vote, false);
    }
}

void raft_tick_leader(raft *r)
{
    r->elapsed++;
    r->hb_elapsed++;
    if (r->transferee && ++r->transfer_elapsed >= r->cfg.election_ticks) {
        r->transferee = 0; /* §3.10: give up, resume taking requests */
    }
    if (r->elapsed >= r->cfg.election_ticks) {
        r->elapsed = 0;
        if (r->cfg.check_quorum) {
            int active = raft_is_voter(r, r->id) ? 1 : 0;
            for (uint32_t i = 0; i < r->n_prs; i++)
                if (r->prs[i].recent_active && raft_is_voter(r, r->prs[i].id))
                    active++;
            if (active < raft_quorum(r)) {
                /* §6.2: a leader cut off from a majority steps down so that
                 * clients find the real leader (and reads cannot go stale). */
                note_election(r, RAFT_ELECTION_STEP_DOWN, r->id, 0);
                r->election.active = (uint32_t)active;
                r->election.quorum = (uint32_t)raft_quorum(r);
                raft_become_follower(r, r->term, 0);
                return;
            }
        }
        for (uint32_t i = 0; i < r->n_prs; i++) {
            r->prs[i].active = r->prs[i].recent_active;
            r->prs[i].recent_active = false;
        }
    }
    if (r->hb_elapsed >= r->cfg.heartbeat_ticks) {
        r->hb_elapsed = 0;
        raft_bcast_heartbeat(r);
    }
}

void raft_handle_timeout_now(raft *r, const raft_msg *m)
{
    if (r->role == RAFT_LEADER)
        return;
    if (raft_promotable(r))
        note_election(r, RAFT_ELECTION_TRANSFER, m->from, 0);
    raft_campaign(r, false, true);
}

void raft_transfer_check(raft *r, raft_progress *p)
{
    if (r->transferee != p->id || p->match != raft_log_last(r))
        return;
    raft_emit(r, RAFT_MSG_TIMEOUT_NOW, p->id, false);
}

int raft_transfer_leader(raft *r, uint64_t target)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (target == r->id || !raft_is_voter(r, target))
        return RAFT_EINVAL;
    if (r->transferee)
        return r->transferee == target ? RAFT_OK : RAFT_EBUSY;
    raft_progress *p = raft_progress_get(r, target);
    if (!p)
        return RAFT_EINVAL;
    r->transferee = target;
    r->transfer_elapsed = 0;
    if (p->match == raft_log_last(r))
        raft_transfer_check(r, p);
    else
        raft_send_append(r, p, false);
    return RAFT_OK;
}
