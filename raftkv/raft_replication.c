/*
 * raft_replication.c — log replication, commitment and InstallSnapshot.
 *
 * Leader side (§3.5, etcd's progress model): each follower is in PROBE (one
 * AppendEntries outstanding until it answers: used after a rejection or at
 * the start of a term), REPLICATE (optimistic pipelining: next advances as
 * soon as a message is sent, at most max_inflight messages and about
 * max_inflight_bytes of entry data unacknowledged)
 * or SNAPSHOT (the entries it needs were compacted: the snapshot goes out in
 * chunks of snapshot_chunk bytes, one at a time).  A rejection carries a
 * conflict hint (term of the conflicting entry and first index of that term
 * in the follower's log) so the leader skips a whole term per round trip
 * instead of one entry (§3.5 "the leader can decrement nextIndex" + 6.824).
 * Proposals are not sent at once: they set send_pending and go out, batched
 * up to max_msg_bytes per message, when the caller next takes a ready batch,
 * which gives group commit for free.
 *
 * Commitment (§3.6.2, Figure 8): the leader commits the highest index stored
 * on a majority only if that entry is of its own term.  Its own log counts
 * only once raft_advance() said it is durable (§10.2.1).
 *
 * Follower side: entries are checked against prev (index, term), conflicts
 * truncated, and the answer goes in msgs_after_persist: an acknowledgement
 * is a promise that the entries are on disk.
 *
 * Peer acknowledgements (raft_config.peer_acks, with read leases): a
 * follower sends its acknowledgement of a small batch to the other voters
 * too, and commits by itself the highest entry of the current term that it
 * and others, a quorum of the voters without the leader, hold durably; it
 * need not wait for the leader's next message to learn it.  Safe by the rule the leader commits by: within one
 * term only its leader appends, never overwriting its own entries, so two
 * acknowledgements of that term (up to i and up to j) hold the same
 * entries up to min(i, j), the leader's; an entry of the current term on a
 * quorum is committed (§3.6.2), and so is everything before it.  The leader
 * is not counted (its own copy may not be durable yet), and a follower
 * whose log holds a configuration change not known committed leaves it to
 * the leader (its quorum could be another's).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raftkv/raft_internal.h"

int raft_append_local(raft *r, uint8_t type, const uint8_t *data, size_t len, uint64_t *index)
{
    raft_entry e;
    memset(&e, 0, sizeof e);
    e.term = r->term;
    e.index = raft_log_last(r) + 1;
    e.type = type;
    e.len = (uint32_t)len;
    e.data = (uint8_t *)data;
    int rc = raft_log_append(r, &e, 1);
    if (rc != RAFT_OK)
        return rc;
    if (type == RAFT_ENTRY_CONF)
        raft_conf_refresh(r);
    r->send_pending = true;
    if (index)
        *index = e.index;
    return RAFT_OK;
}

/* ---- leader: sending --------------------------------------------------------- */

/* The window of a pipelined follower: a ring of (last index, bytes) pairs,
 * one per AppendEntries not yet acknowledged. */
static void inflight_add(raft *r, raft_progress *p, uint64_t last, uint64_t bytes)
{
    uint32_t cap = r->cfg.max_inflight;
    uint32_t k = (p->in_start + p->in_count) % cap;
    p->inflight[2 * k] = last;
    p->inflight[2 * k + 1] = bytes;
    p->in_count++;
    p->in_bytes += bytes;
}

static void inflight_free_to(raft *r, raft_progress *p, uint64_t index)
{
    uint32_t cap = r->cfg.max_inflight;
    while (p->in_count && p->inflight[2 * p->in_start] <= index) {
        p->in_bytes -= p->inflight[2 * p->in_start + 1];
        p->in_start = (p->in_start + 1) % cap;
        p->in_count--;
    }
}

static void inflight_reset(raft_progress *p)
{
    p->in_start = p->in_count = 0;
    p->in_bytes = 0;
}

/* The window is full: max_inflight messages, or max_inflight_bytes of entry
 * data (etcd's Inflights.Full).  An empty window always takes one message,
 * so an entry larger than the byte window still goes out, alone. */
static bool inflight_full(const raft *r, const raft_progress *p)
{
    return p->in_count >= r->cfg.max_inflight ||
           (p->in_count > 0 && p->in_bytes >= r->cfg.max_inflight_bytes);
}

static void become_probe(raft_progress *p, uint64_t next)
{
    p->state = PR_PROBE;
    p->next = next;
    p->paused = false;
    inflight_reset(p);
    p->hb_match = p->match;
    p->snap_sent_hb = 0;
}

/* InstallSnapshot in chunks, pipelined: up to min(max_inflight, 8) chunks beyond
 * what the follower confirmed are in flight.  The follower takes chunks in
 * order only and answers each with the number of bytes it holds; a gap makes
 * the leader rewind to that point.  A new snapshot (compaction) restarts the
 * transfer. */
static void send_snapshot(raft *r, raft_progress *p)
{
    if (p->state != PR_SNAPSHOT || p->snap_index != r->snap.index) {
        p->state = PR_SNAPSHOT;
        p->snap_index = r->snap.index;
        p->snap_offset = p->snap_acked = 0;
        p->snap_done_sent = false;
        p->snap_sent_hb = 0;
        inflight_reset(p);
    }
    uint64_t chunks = r->cfg.max_inflight < 8 ? r->cfg.max_inflight : 8;
    uint64_t window = chunks * r->cfg.snapshot_chunk;
    while (!p->snap_done_sent && p->snap_offset - p->snap_acked < window) {
        uint64_t off = p->snap_offset;
        uint64_t n = r->snap.len - off;
        if (n > r->cfg.snapshot_chunk)
            n = r->cfg.snapshot_chunk;
        raft_msg *m = raft_emit(r, RAFT_MSG_SNAPSHOT, p->id, false);
        if (!m)
            return;
        m->index = r->snap.index;
        m->log_term = r->snap.term;
        m->offset = off;
        m->snap_len = r->snap.len;
        m->chunk_len = (uint32_t)n;
        /* external snapshots: NULL, the caller fills the bytes */
        m->chunk = n && r->snap.data ? r->snap.data + off : NULL;
        m->done = off + n == r->snap.len;
        m->conf = r->snap.conf;
        p->snap_offset = off + n;
        p->snap_done_sent = m->done;
    }
}

static void snapshot_rewind(raft_progress *p, uint64_t to)
{
    p->snap_offset = to;
    p->snap_done_sent = false;
}

/* One AppendEntries to p if its state allows; with allow_empty an empty one
 * goes out even when there is nothing new (a probe). */
void raft_send_append(raft *r, raft_progress *p, bool allow_empty)
{
    if (p->state == PR_SNAPSHOT)
        return;
    if (p->state == PR_PROBE && p->paused)
        return;
    uint64_t last = raft_log_last(r);
    if (p->next > last + 1)
        p->next = last + 1;
    if (p->next < 1)
        p->next = 1;
    for (;;) {
        if (p->state == PR_REPLICATE && inflight_full(r, p))
            return;
        uint64_t prev = p->next - 1;
        if (prev < r->log.snap_index) {
            send_snapshot(r, p);
            return;
        }
        if (p->next > last && !allow_empty)
            return;
        /* Batch entries up to max_msg_bytes (at least one). */
        size_t n = 0, bytes = 0;
        while (p->next + n <= last) {
            const raft_entry *e = raft_entry_at(r, p->next + n);
            if (n > 0 && bytes + e->len > r->cfg.max_msg_bytes)
                break;
            bytes += e->len;
            n++;
        }
        raft_entry *es = NULL;
        if (n) {
            es = malloc(n * sizeof *es);
            if (!es)
                return;
            memcpy(es, raft_entry_at(r, p->next), n * sizeof *es);
        }
        raft_msg *m = raft_emit(r, RAFT_MSG_APPEND, p->id, false);
        if (!m) {
            free(es);
            return;
        }
        m->index = prev;
        m->log_term = raft_term_at(r, prev);
        m->commit = r->commit;
        m->entries = es;
        m->n_entries = (uint32_t)n;
        m->ctx = r->read_seq;
        raft_lease_fill_append(r, p, m);
        uint64_t usable = prev + n < r->commit ? prev + n : r->commit;
        if (usable > p->commit_sent)
            p->commit_sent = usable;
        if (p->state == PR_PROBE) {
            p->paused = true;
            return;
        }
        if (n == 0)
            return;
        p->next += n;
        inflight_add(r, p, p->next - 1, bytes);
        allow_empty = false;
        if (p->next > last)
            return;
    }
}

void raft_bcast_append(raft *r)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        raft_send_append(r, &r->prs[i], false);
}

static void send_commit(raft *r, raft_progress *p)
{
    raft_msg *m = raft_emit(r, RAFT_MSG_APPEND, p->id, false);
    if (!m)
        return;
    /* Heartbeat shape: no prev entry; commit only what p is known to hold. */
    m->commit = p->match < r->commit ? p->match : r->commit;
    m->ctx = r->read_seq;
    raft_lease_fill_append(r, p, m);
    p->commit_sent = m->commit;
}

void raft_flush_appends(raft *r)
{
    if (r->send_pending) {
        r->send_pending = false;
        raft_bcast_append(r);
    }
    if (r->read_pending) {
        r->read_pending = false;
        r->commit_pending = false;
        raft_bcast_heartbeat(r);
    }
    if (r->commit_pending) {
        /* Followers learn a new commit index at once rather than at the next
         * heartbeat: their state machines, and reads served from them, do
         * not lag by a heartbeat interval. */
        r->commit_pending = false;
        for (uint32_t i = 0; i < r->n_prs; i++) {
            raft_progress *p = &r->prs[i];
            uint64_t usable = p->match < r->commit ? p->match : r->commit;
            if (usable > p->commit_sent || raft_lease_tell(r, p))
                send_commit(r, p);
        }
    }
}

/* Heartbeat round: also the retransmission timer.  A peer that made no
 * progress for two rounds while it lacks entries (or snapshot bytes) lost a
 * message; it is sent again when it answers a heartbeat, so a peer that is
 * down costs one heartbeat per round and nothing more (etcd does the same). */
void raft_bcast_heartbeat(raft *r)
{
    uint64_t last = raft_log_last(r);
    for (uint32_t i = 0; i < r->n_prs; i++) {
        raft_progress *p = &r->prs[i];
        if (p->state == PR_SNAPSHOT) {
            p->snap_sent_hb++;
        } else if (p->match < last) {
            if (p->match != p->hb_match) {
                p->hb_match = p->match;
                p->snap_sent_hb = 0;
            } else if (p->state == PR_REPLICATE && ++p->snap_sent_hb >= 2) {
                /* the pipeline lost something: probe from what p holds */
                become_probe(p, p->match + 1);
                p->paused = true; /* until p answers this heartbeat */
            }
        }
        send_commit(r, p);
    }
}

/* ---- commitment ---------------------------------------------------------------- */

bool raft_maybe_commit(raft *r)
{
    uint64_t v[RAFT_MAX_NODES];
    uint32_t n = 0;
    if (raft_is_voter(r, r->id))
        v[n++] = r->stable;
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (raft_is_voter(r, r->prs[i].id))
            v[n++] = r->prs[i].match;
    uint64_t idx;
    if (!raft_quorum_value(r, v, n, &idx))
        return false;
    /* Figure 8: only entries of the current term are committed by counting. */
    if (idx <= r->commit || raft_term_at(r, idx) != r->term)
        return false;
    r->commit = idx;
    r->commit_pending = true;
    return true;
}

void raft_commit_advanced(raft *r)
{
    raft_read_on_commit(r);
    if (!raft_is_voter(r, r->id) && r->conf_index <= r->commit) {
        /* §4.2.2: the removal of this leader is committed: hand over to the
         * most up-to-date remaining member at once, then step down. */
        raft_progress *best = NULL;
        for (uint32_t i = 0; i < r->n_prs; i++)
            if (raft_is_voter(r, r->prs[i].id) && (!best || r->prs[i].match > best->match))
                best = &r->prs[i];
        if (best && best->match == raft_log_last(r))
            raft_emit(r, RAFT_MSG_TIMEOUT_NOW, best->id, false);
        raft_become_follower(r, r->term, 0);
    }
}

void raft_commit_to(raft *r, uint64_t index)
{
    uint64_t last = raft_log_last(r);
    if (index > last)
        index = last;
    if (index > r->commit)
        r->commit = index;
}

/* ---- leader: responses ----------------------------------------------------------- */

static void append_resp(raft *r, raft_progress *p, const raft_msg *m);

void raft_handle_append_resp(raft *r, const raft_msg *m)
{
    raft_progress *p = raft_progress_get(r, m->from);
    if (!p)
        return;
    append_resp(r, p, m);
    if (r->role == RAFT_LEADER)
        raft_lease_on_resp(r, p, m); /* p is still valid: no conf change here */
}

static void append_resp(raft *r, raft_progress *p, const raft_msg *m)
{
    p->recent_active = true;
    if (m->ctx)
        raft_read_ack(r, p, m->ctx);
    uint64_t last = raft_log_last(r);

    if (!m->reject && m->index == 0) {
        /* heartbeat answer: p is alive; resend what may have been lost */
        if (p->state == PR_PROBE && p->match < last) {
            p->paused = false;
            raft_send_append(r, p, true);
        } else if (p->state == PR_SNAPSHOT && p->snap_sent_hb >= 2) {
            p->snap_sent_hb = 0;
            snapshot_rewind(p, p->snap_acked);
            send_snapshot(r, p);
        }
        return;
    }
    if (m->reject) {
        if (m->hint_index == 0 && m->hint_term == 0) {
            /* The follower has no configuration yet (it is joining): it
             * needs a snapshot, even one of an empty state. */
            if (p->state != PR_SNAPSHOT)
                send_snapshot(r, p);
            return;
        }
        if (p->state == PR_REPLICATE) {
            if (m->index <= p->match)
                return; /* stale */
        } else if (p->state == PR_PROBE) {
            if (m->index != p->next - 1)
                return; /* stale */
        } else {
            return;
        }
        uint64_t next;
        if (m->hint_term == 0) {
            next = m->hint_index;
        } else {
            uint64_t j = m->index < last ? m->index : last;
            while (j > r->log.snap_index && raft_term_at(r, j) > m->hint_term)
                j--;
            next = raft_term_at(r, j) == m->hint_term ? j + 1 : m->hint_index;
        }
        if (next > m->index)
            next = m->index; /* always move back */
        if (next < p->match + 1)
            next = p->match + 1;
        become_probe(p, next);
        raft_send_append(r, p, true);
        return;
    }
    if (m->index > last)
        return; /* acknowledges entries we never had: bogus */
    if (m->index > p->match) {
        p->match = m->index;
        if (p->next < p->match + 1)
            p->next = p->match + 1;
        if (p->state == PR_PROBE) {
            p->state = PR_REPLICATE;
            p->next = p->match + 1;
            inflight_reset(p);
            p->paused = false;
        } else {
            inflight_free_to(r, p, m->index);
        }
        if (raft_maybe_commit(r))
            raft_commit_advanced(r);
        if (r->role != RAFT_LEADER)
            return;
        /* p may now use more of the commit index than it was told */
        if ((p->match < r->commit ? p->match : r->commit) > p->commit_sent)
            r->commit_pending = true;
        raft_transfer_check(r, p);
    } else if (p->state == PR_PROBE && m->index == p->next - 1) {
        p->paused = false;
    }
    raft_send_append(r, p, false);
}

void raft_handle_snapshot_resp(raft *r, const raft_msg *m)
{
    raft_progress *p = raft_progress_get(r, m->from);
    if (!p)
        return;
    p->recent_active = true;
    if (!m->reject && m->done) {
        if (m->index > raft_log_last(r))
            return;
        if (m->index > p->match)
            p->match = m->index;
        if (p->state == PR_SNAPSHOT || p->next <= p->match) {
            become_probe(p, p->match + 1);
            raft_send_append(r, p, true);
        }
        if (raft_maybe_commit(r))
            raft_commit_advanced(r);
        return;
    }
    if (p->state != PR_SNAPSHOT || m->index != p->snap_index || p->snap_index != r->snap.index)
        return;
    if (m->offset > r->snap.len)
        return;
    if (m->reject) {
        /* A gap, or the follower lost what it had (it restarted): go back
         * to what it holds. */
        p->snap_acked = m->offset;
        if (m->offset < p->snap_offset)
            snapshot_rewind(p, m->offset);
    } else if (m->offset > p->snap_acked) {
        p->snap_acked = m->offset;
        p->snap_sent_hb = 0;
    }
    if (p->snap_offset < p->snap_acked)
        snapshot_rewind(p, p->snap_acked);
    send_snapshot(r, p);
}

/* ---- follower ------------------------------------------------------------------- */

static void pack_fresh(raft *r);

/* Peer acknowledgements are configured, and read leases are on. */
static bool peer_acks_on(const raft *r)
{
    return r->cfg.peer_acks && r->cfg.lease_ms;
}

/* Only a batch of this many entries or fewer is acknowledged to peers: a
 * leader that sends so few has little traffic, and its next message, which
 * tells the commit, is a full message delay away.  A busy leader's larger
 * batches follow each other closely, each telling the commit of the one
 * before, and acknowledging them to peers too cost 7% more CPU per write at
 * 64 clients for nothing. */
#define PEER_ACK_MAX_ENTRIES 2

void raft_handle_heartbeat(raft *r, const raft_msg *m)
{
    raft_commit_to(r, m->commit);
    raft_msg *o = raft_emit(r, RAFT_MSG_APPEND_RESP, m->from, false);
    if (!o)
        return;
    o->ctx = m->ctx;
    raft_lease_fill_resp(r, o, m->lease_t);
}

static void reject_append(raft *r, const raft_msg *m)
{
    uint64_t last = raft_log_last(r);
    raft_msg *o = raft_emit(r, RAFT_MSG_APPEND_RESP, m->from, false);
    if (!o)
        return;
    o->reject = true;
    o->index = m->index;
    o->commit = last;
    o->ctx = m->ctx;
    raft_lease_fill_resp(r, o, m->lease_t);
    if (r->conf.n == 0)
        return; /* hint 0/0: send me a snapshot */
    if (m->index > last) {
        o->hint_index = last + 1;
        return;
    }
    uint64_t t = raft_term_at(r, m->index);
    uint64_t i = m->index;
    while (i > 1 && i - 1 > r->commit && i - 1 > r->log.snap_index && raft_term_at(r, i - 1) == t)
        i--;
    o->hint_term = t;
    o->hint_index = i;
}

void raft_handle_append(raft *r, const raft_msg *m)
{
    raft_msg trimmed;
    if (m->index < r->commit && m->index + m->n_entries > r->commit &&
        r->commit > r->log.snap_index) {
        /* The prefix up to our commit index matches the leader's (committed
         * entries are the same everywhere): use the rest instead of making
         * the leader back up and send it again. */
        uint64_t skip = r->commit - m->index;
        trimmed = *m;
        trimmed.index = r->commit;
        trimmed.log_term = raft_term_at(r, r->commit);
        trimmed.entries = m->entries + skip;
        trimmed.n_entries = m->n_entries - (uint32_t)skip;
        if (trimmed.entries[-1].term != trimmed.log_term)
            return; /* not our leader's log */
        m = &trimmed;
    }
    if (m->index < r->commit) {
        /* Everything up to our commit index matches the leader already. */
        raft_msg *o = raft_emit(r, RAFT_MSG_APPEND_RESP, m->from, true);
        if (o) {
            o->index = r->commit;
            o->ctx = m->ctx;
            raft_lease_fill_resp(r, o, m->lease_t);
        }
        return;
    }
    if (r->conf.n == 0 || raft_term_at(r, m->index) != m->log_term || m->index > raft_log_last(r)) {
        reject_append(r, m);
        return;
    }
    size_t k = 0;
    for (; k < m->n_entries; k++) {
        const raft_entry *e = &m->entries[k];
        if (e->index > raft_log_last(r))
            break;
        if (raft_term_at(r, e->index) != e->term) {
            assert(e->index > r->commit); /* committed entries never conflict */
            raft_log_truncate(r, e->index);
            break;
        }
    }
    bool conf = false;
    for (size_t j = 0; j < m->n_entries; j++)
        if (m->entries[j].type == RAFT_ENTRY_CONF)
            conf = true;
    if (k < m->n_entries && raft_log_append(r, m->entries + k, m->n_entries - k) != RAFT_OK) {
        raft_conf_refresh(r); /* a truncated conf entry no longer applies */
        return;               /* no memory: stay silent, the leader retries */
    }
    if (conf)
        raft_conf_refresh(r);
    else if (k < m->n_entries && r->conf_index >= m->entries[k].index)
        raft_conf_refresh(r);
    uint64_t last_new = m->index + m->n_entries;
    raft_commit_to(r, m->commit < last_new ? m->commit : last_new);
    raft_msg *o = raft_emit(r, RAFT_MSG_APPEND_RESP, m->from, true);
    if (o) {
        o->index = last_new;
        o->ctx = m->ctx;
        raft_lease_fill_resp(r, o, m->lease_t);
    }
    if (m->n_entries && peer_acks_on(r)) {
        pack_fresh(r);
        if (last_new > r->self_ack)
            r->self_ack = last_new;
    }
    if (m->n_entries && m->n_entries <= PEER_ACK_MAX_ENTRIES && peer_acks_on(r)) {
        /* The same acknowledgement to the other voters, once durable. */
        for (uint32_t i = 0; i < r->conf.n; i++) {
            uint64_t id = r->conf.ids[i];
            if (r->conf.learner[i] || id == r->id || id == m->from)
                continue;
            raft_msg *a = raft_emit(r, RAFT_MSG_APPEND_RESP, id, true);
            if (a)
                a->index = last_new;
        }
    }
}

/* ---- follower: peer acknowledgements ------------------------------------------- */

/* Forgets the acknowledgements of an earlier term. */
static void pack_fresh(raft *r)
{
    if (r->pack_term == r->term)
        return;
    r->pack_term = r->term;
    r->n_pack = 0;
    r->self_ack = 0;
}

void raft_handle_peer_ack(raft *r, const raft_msg *m)
{
    /* Same term (raft_step dropped older ones), from a voter that is not
     * the leader, of entries (heartbeat answers and apply reports carry
     * index 0). */
    if (!peer_acks_on(r) || r->role != RAFT_FOLLOWER || r->leader == 0 || m->from == r->leader ||
        m->from == r->id || m->reject || m->index == 0 || !raft_is_voter(r, m->from))
        return;
    pack_fresh(r);
    uint32_t i = 0;
    while (i < r->n_pack && r->pack_id[i] != m->from)
        i++;
    if (i == r->n_pack) {
        if (r->n_pack == RAFT_MAX_NODES)
            return;
        r->pack_id[r->n_pack] = m->from;
        r->pack_index[r->n_pack++] = 0;
    }
    if (m->index > r->pack_index[i])
        r->pack_index[i] = m->index;
    raft_peer_commit(r);
}

void raft_peer_commit(raft *r)
{
    if (!peer_acks_on(r) || r->role != RAFT_FOLLOWER || r->leader == 0 || r->pack_term != r->term ||
        r->conf_index > r->commit)
        return;
    uint64_t v[RAFT_MAX_NODES];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        uint64_t id = r->conf.ids[i];
        if (r->conf.learner[i] || id == r->leader)
            continue;
        uint64_t x = 0;
        if (id == r->id) {
            x = r->self_ack < r->stable ? r->self_ack : r->stable; /* durable */
        } else {
            for (uint32_t k = 0; k < r->n_pack; k++)
                if (r->pack_id[k] == id)
                    x = r->pack_index[k];
        }
        v[n++] = x;
    }
    uint64_t c;
    if (!raft_quorum_value(r, v, n, &c) || c <= r->commit || c > raft_log_last(r) ||
        c <= r->log.snap_index || raft_term_at(r, c) != r->term)
        return;
    r->commit = c;
}

static void snapshot_resp(raft *r, const raft_msg *m, uint64_t offset, bool done, bool reject,
                          bool after)
{
    raft_msg *o = raft_emit(r, RAFT_MSG_SNAPSHOT_RESP, m->from, after);
    if (!o)
        return;
    o->index = m->index;
    o->offset = offset;
    o->done = done;
    o->reject = reject;
}

static void restore(raft *r)
{
    /* §5.3 / Figure 5.3: discard the whole log and take the snapshot. */
    raft_log_truncate(r, r->log.snap_index + 1);
    r->log.snap_index = r->in_snap.index;
    r->log.snap_term = r->in_snap.log_term;
    raft_defer_free(r, r->snap.data);
    r->snap.index = r->in_snap.index;
    r->snap.term = r->in_snap.log_term;
    r->snap.conf = r->in_snap.conf;
    r->snap.data = r->in_snap.buf;
    r->snap.len = r->in_snap.len;
    r->in_snap.buf = NULL;
    r->commit = r->snap.index;
    r->applied = r->snap.index;
    r->stable = r->snap.index;
    r->unstable = r->snap.index + 1;
    r->snap_pending = true;
    raft_conf_refresh(r);
}

void raft_handle_snapshot(raft *r, const raft_msg *m)
{
    bool joining = r->conf.n == 0;
    if (m->index <= r->commit && !(joining && m->index >= r->commit)) {
        /* We already have all of it: let the leader move on. */
        snapshot_resp(r, m, m->snap_len, true, false, true);
        return;
    }
    bool same = r->in_snap.active && r->in_snap.from == m->from && r->in_snap.term == m->term &&
                r->in_snap.index == m->index && r->in_snap.len == m->snap_len;
    if (same && m->offset < r->in_snap.have) {
        /* a duplicate or a resend: say how far we are */
        snapshot_resp(r, m, r->in_snap.have, false, false, false);
        return;
    }
    if (same && m->offset > r->in_snap.have) {
        snapshot_resp(r, m, r->in_snap.have, false, true, false); /* gap */
        return;
    }
    if (!same) {
        if (m->offset != 0) {
            snapshot_resp(r, m, 0, false, true, false);
            return;
        }
        free(r->in_snap.buf);
        memset(&r->in_snap, 0, sizeof r->in_snap);
        r->in_snap.buf = m->snap_len ? malloc(m->snap_len) : NULL;
        if (m->snap_len && !r->in_snap.buf)
            return; /* no memory: leader resends */
        r->in_snap.active = true;
        r->in_snap.from = m->from;
        r->in_snap.term = m->term;
        r->in_snap.index = m->index;
        r->in_snap.log_term = m->log_term;
        r->in_snap.len = m->snap_len;
        r->in_snap.conf = m->conf;
        r->in_snap.have = 0;
    }
    if (m->chunk_len)
        memcpy(r->in_snap.buf + m->offset, m->chunk, m->chunk_len);
    r->in_snap.have = m->offset + m->chunk_len;
    if (r->in_snap.have < r->in_snap.len) {
        snapshot_resp(r, m, r->in_snap.have, false, false, false);
        return;
    }
    if (raft_term_at(r, m->index) == m->log_term && m->index <= raft_log_last(r) && !joining) {
        /* Our log already holds the snapshot's last entry: keep the log. */
        free(r->in_snap.buf);
        r->in_snap.buf = NULL;
        raft_commit_to(r, m->index);
    } else {
        restore(r);
    }
    memset(&r->in_snap, 0, sizeof r->in_snap);
    snapshot_resp(r, m, m->snap_len, true, false, true);
}
