/*
 * raft.c — the Raft core's life cycle: construction from persisted state,
 * the ready/advance hand-off, ticks, dispatch of incoming messages by term
 * (Figure 3.1's "all servers" rules), proposals, and status.
 *
 * The algorithm itself lives in raft_election.c, raft_replication.c,
 * raft_read.c and raft_membership.c; raft_internal.h maps them.
 *
 * Memory: outgoing messages point at entry data of the log and at the
 * snapshot.  Anything the core lets go of goes to a graveyard and is freed at
 * the raft_advance() after the next raft_ready_get(), once no ready batch can
 * still refer to it.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raftkv/raft_internal.h"

/* ---- small helpers --------------------------------------------------------- */

/* splitmix64: tiny, good enough for timeouts and fully deterministic. */
uint64_t raft_rand(raft *r)
{
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* §3.4: randomized election timeouts in [e, 2e) make split votes rare. */
void raft_reset_timeout(raft *r)
{
    int e = r->cfg.election_ticks;
    r->timeout = e + (int)(raft_rand(r) % (uint64_t)e);
}

/* Graveyard entries are malloc'ed blocks (freed) or, tagged with bit 0 (a
 * malloc'ed pointer never has it), slab references (released). */
static void grave_release(void *p)
{
    uintptr_t u = (uintptr_t)p;
    if (u & 1u)
        raft_slab_release((raft_slab *)(u & ~(uintptr_t)1u));
    else
        free(p);
}

void raft_defer_slab(raft *r, raft_slab *s)
{
    if (s)
        raft_defer_free(r, (void *)((uintptr_t)s | 1u));
}

void raft_defer_free(raft *r, void *p)
{
    if (!p)
        return;
    if (r->n_grave == r->cap_grave) {
        size_t cap = r->cap_grave ? r->cap_grave * 2 : 64;
        void **ng = realloc(r->grave, cap * sizeof *ng);
        if (!ng) {
            /* Cannot defer: leak rather than risk a dangling pointer. */
            return;
        }
        r->grave = ng;
        r->cap_grave = cap;
    }
    r->grave[r->n_grave++] = p;
}

static void msgvec_free(raft_msgvec *v)
{
    for (size_t i = 0; i < v->n; i++) {
        raft_msg *m = &v->v[i];
        if (m->type == RAFT_MSG_PROPOSE)
            for (uint32_t k = 0; k < m->n_entries; k++)
                free(m->entries[k].data);
        free(m->entries);
    }
    free(v->v);
    memset(v, 0, sizeof *v);
}

/* Frees what the oldest outstanding batch pointed at and drops it. */
static void batch_release(raft *r)
{
    raft_batch *b = &r->bat[r->bat_head];
    free(b->entries);
    free(b->committed);
    msgvec_free(&b->msgs);
    msgvec_free(&b->after);
    free(b->rs);
    for (size_t i = 0; i < b->n_grave; i++)
        grave_release(b->grave[i]);
    free(b->grave);
    if (b->snap && r->cfg.external_snapshot && r->snap.data && r->snap.data == b->snapshot.data) {
        /* The caller has stored the received snapshot: it serves the bytes
         * from now on. */
        free(r->snap.data);
        r->snap.data = NULL;
    }
    memset(b, 0, sizeof *b);
    r->bat_head = (r->bat_head + 1) % RAFT_MAX_BATCHES;
    r->bat_n--;
}

/* Queue a message.  The pointer is valid until the next raft_emit.  Returns
 * NULL when out of memory: the message is dropped, which Raft tolerates. */
raft_msg *raft_emit(raft *r, int type, uint64_t to, bool after_persist)
{
    raft_msgvec *v = after_persist ? &r->after : &r->msgs;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        raft_msg *nv = realloc(v->v, cap * sizeof *nv);
        if (!nv)
            return NULL;
        v->v = nv;
        v->cap = cap;
    }
    raft_msg *m = &v->v[v->n++];
    memset(m, 0, sizeof *m);
    m->type = (uint8_t)type;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    return m;
}

/* ---- strings --------------------------------------------------------------- */

const char *raft_strerror(int rc)
{
    switch (rc) {
    case RAFT_OK: return "ok";
    case RAFT_ENOTLEADER: return "not the leader";
    case RAFT_ENOLEADER: return "no leader known";
    case RAFT_EBUSY: return "busy";
    case RAFT_EINVAL: return "invalid argument";
    case RAFT_ENOMEM: return "out of memory";
    case RAFT_ETOOBIG: return "entry too big";
    case RAFT_ECOMPACTED: return "index compacted";
    default: return "unknown error";
    }
}

const char *raft_role_name(raft_role role)
{
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRE_CANDIDATE: return "pre-candidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    default: return "?";
    }
}

const char *raft_msg_type_name(int type)
{
    static const char *names[] = {
        "?",           "PREVOTE",  "PREVOTE_RESP",  "VOTE",      "VOTE_RESP",      "APPEND",
        "APPEND_RESP", "SNAPSHOT", "SNAPSHOT_RESP", "READINDEX", "READINDEX_RESP", "TIMEOUT_NOW",
        "PROPOSE",
    };
    if (type <= 0 || type >= RAFT_MSG_TYPE_MAX)
        return "?";
    return names[type];
}

/* ---- construction ---------------------------------------------------------- */

void raft_config_init(raft_config *c)
{
    memset(c, 0, sizeof *c);
    c->election_ticks = 10;
    c->heartbeat_ticks = 1;
    c->pre_vote = true;
    c->check_quorum = true;
    c->max_inflight = 64;
    c->max_msg_bytes = 1u << 20;
    c->max_inflight_bytes = 8u << 20;
    c->max_entry_bytes = 64u << 20;
    c->snapshot_chunk = 1u << 20;
    c->drift_pct = 10;
    c->peer_acks = true;
}

static raft *fail(raft *r, const char **err, const char *why)
{
    if (err)
        *err = why;
    raft_free(r);
    return NULL;
}

raft *raft_new(const raft_config *cfg, const raft_boot *boot, const char **err)
{
    if (err)
        *err = NULL;
    if (!cfg || !boot)
        return fail(NULL, err, "missing config or boot state");
    if (cfg->id == 0)
        return fail(NULL, err, "node id must be non-zero");
    if (cfg->election_ticks < 2 || cfg->heartbeat_ticks < 1 ||
        cfg->heartbeat_ticks >= cfg->election_ticks)
        return fail(NULL, err, "need 1 <= heartbeat_ticks < election_ticks");
    if (cfg->max_inflight < 1 || cfg->max_msg_bytes < 1 || cfg->snapshot_chunk < 1 ||
        cfg->max_entry_bytes < 1 || cfg->max_inflight_bytes < 1)
        return fail(NULL, err,
                    "max_inflight, max_msg_bytes, max_inflight_bytes, "
                    "max_entry_bytes and snapshot_chunk must be positive");
    if (cfg->drift_pct >= 100)
        return fail(NULL, err, "drift_pct must be below 100");
    if (cfg->lease_ms > UINT32_MAX / 200)
        return fail(NULL, err, "lease_ms too large");
    const raft_snapshot *s = &boot->snapshot;
    if (s->conf.n > RAFT_MAX_NODES)
        return fail(NULL, err, "configuration too large");
    if (s->len && !s->data && !cfg->external_snapshot)
        return fail(NULL, err, "snapshot data missing");
    if (boot->n_entries && !boot->entries)
        return fail(NULL, err, "entries missing");

    raft *r = calloc(1, sizeof *r);
    if (!r)
        return fail(NULL, err, "out of memory");
    r->cfg = *cfg;
    r->id = cfg->id;
    r->rng = cfg->seed ^ (cfg->id * 0x2545f4914f6cdd1dULL);
    r->inflight_store = calloc((size_t)RAFT_MAX_NODES * cfg->max_inflight * 2, sizeof(uint64_t));
    if (!r->inflight_store)
        return fail(r, err, "out of memory");

    r->snap.index = s->index;
    r->snap.term = s->term;
    r->snap.conf = s->conf;
    r->snap.len = s->len;
    if (s->len && !cfg->external_snapshot) {
        r->snap.data = malloc(s->len);
        if (!r->snap.data)
            return fail(r, err, "out of memory");
        memcpy(r->snap.data, s->data, s->len);
    }
    r->log.snap_index = s->index;
    r->log.snap_term = s->term;
    r->stable = s->index;
    r->unstable = s->index + 1;

    uint64_t prev_term = s->term;
    for (size_t k = 0; k < boot->n_entries; k++) {
        const raft_entry *e = &boot->entries[k];
        if (e->index != s->index + 1 + k)
            return fail(r, err, "log entries are not contiguous after the snapshot");
        if (e->term < prev_term)
            return fail(r, err, "log entry terms decrease");
        if (e->len && !e->data)
            return fail(r, err, "log entry data missing");
        if (e->type > RAFT_ENTRY_CONF)
            return fail(r, err, "unknown log entry type");
        prev_term = e->term;
    }
    if (raft_log_append(r, boot->entries, boot->n_entries) != RAFT_OK)
        return fail(r, err, "out of memory");
    uint64_t last = raft_log_last(r);
    if (boot->hs.term < raft_log_last_term(r))
        return fail(r, err, "hard state term is older than the log");
    if (boot->hs.term > RAFT_TERM_MAX)
        return fail(r, err,
                    "hard state term is out of range (a term this large was never "
                    "reached by elections)");
    r->stable = last;
    r->unstable = last + 1;
    r->term = boot->hs.term;
    r->vote = boot->hs.vote;
    r->commit = boot->hs.commit;
    if (r->commit < s->index)
        r->commit = s->index;
    if (r->commit > last)
        r->commit = last;
    r->applied = s->index;
    r->hs_out = boot->hs;
    raft_conf_refresh(r);
    r->role = RAFT_FOLLOWER;
    raft_reset_timeout(r);
    return r;
}

void raft_free(raft *r)
{
    if (!r)
        return;
    raft_log_free(r);
    while (r->bat_n)
        batch_release(r);
    free(r->snap.data);
    free(r->inflight_store);
    free(r->reads);
    free(r->in_snap.buf);
    msgvec_free(&r->msgs);
    msgvec_free(&r->after);
    free(r->rs);
    for (size_t i = 0; i < r->n_grave; i++)
        grave_release(r->grave[i]);
    free(r->grave);
    free(r);
}

/* ---- inputs ---------------------------------------------------------------- */

void raft_tick(raft *r)
{
    r->heard_idle++;
    if (r->role == RAFT_LEADER)
        raft_tick_leader(r);
    else
        raft_tick_election(r);
    raft_lease_refresh(r);
}

static bool msg_valid(const raft *r, const raft_msg *m)
{
    if (!m || m->type < 1 || m->type >= RAFT_MSG_TYPE_MAX)
        return false;
    if (m->to != r->id || m->from == 0 || m->from == r->id)
        return false;
    if (m->n_entries && !m->entries)
        return false;
    if (m->chunk_len && !m->chunk)
        return false;
    if (m->conf.n > RAFT_MAX_NODES)
        return false;
    /* No term may exhaust the term space (see RAFT_TERM_MAX in raft.h). */
    if (m->term > RAFT_TERM_MAX || (m->term > r->term && m->term - r->term > RAFT_TERM_JUMP_MAX))
        return false;
    /* A leader's log never holds a term above its own. */
    if ((m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT) && m->log_term > m->term)
        return false;
    for (uint32_t k = 0; k < m->n_entries; k++) {
        const raft_entry *e = &m->entries[k];
        if (e->len && !e->data)
            return false;
        if (e->type > RAFT_ENTRY_CONF || e->len > r->cfg.max_entry_bytes)
            return false;
        if (m->type == RAFT_MSG_APPEND && (e->index != m->index + 1 + k || e->term > m->term))
            return false;
    }
    if (m->type == RAFT_MSG_SNAPSHOT &&
        (m->offset > m->snap_len || m->chunk_len > m->snap_len - m->offset))
        return false;
    return true;
}

static void handle_propose(raft *r, const raft_msg *m)
{
    if (r->role != RAFT_LEADER || r->transferee)
        return;
    for (uint32_t k = 0; k < m->n_entries; k++) {
        const raft_entry *e = &m->entries[k];
        if (e->type != RAFT_ENTRY_NORMAL)
            continue; /* conf changes are local-only */
        if (raft_append_local(r, RAFT_ENTRY_NORMAL, e->data, e->len, NULL) != RAFT_OK)
            return;
    }
}

int raft_step(raft *r, const raft_msg *m)
{
    if (!msg_valid(r, m))
        return RAFT_EINVAL;

    /* Figure 3.1, rules for all servers, with the pre-vote and check-quorum
     * refinements of §9.6. */
    if (m->term > r->term) {
        bool vote_req = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
        if (vote_req && !m->transfer && raft_in_lease(r)) {
            /* A leader was heard from within the election timeout: this
             * candidate is disruptive (e.g. it just rejoined), ignore it. */
            return RAFT_OK;
        }
        if (vote_req && raft_vote_from_stranger(r, m)) {
            /* Not a voter of ours and not ahead of us (e.g. a removed
             * server that missed its removal): refused in our own term,
             * which stays as it is. */
            bool real = m->type == RAFT_MSG_VOTE;
            raft_msg *o =
                raft_emit(r, real ? RAFT_MSG_VOTE_RESP : RAFT_MSG_PREVOTE_RESP, m->from, real);
            if (o)
                o->reject = true;
            return RAFT_OK;
        }
        if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* Pre-votes speak of a future term and change nothing. */
        } else {
            bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT ||
                               m->type == RAFT_MSG_TIMEOUT_NOW;
            int elapsed = r->elapsed;
            bool was_leader = r->role == RAFT_LEADER;
            raft_become_follower(r, m->term, from_leader ? m->from : 0);
            /* Figure 3.1: only hearing from the leader or granting a vote
             * restarts the election timer.  Merely seeing a higher term must
             * not: candidates with stale logs would otherwise keep the
             * up-to-date servers, the only ones that can win, from ever
             * timing out. */
            if (!from_leader && !was_leader)
                r->elapsed = elapsed;
        }
    } else if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT)) {
            /* A stale leader (e.g. after a partition healed) would otherwise
             * never learn the new term when pre-vote keeps our candidates
             * quiet: tell it. */
            raft_emit(r, RAFT_MSG_APPEND_RESP, m->from, false);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            raft_msg *o = raft_emit(r, RAFT_MSG_PREVOTE_RESP, m->from, false);
            if (o)
                o->reject = true;
        }
        return RAFT_OK;
    }

    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE: raft_handle_vote(r, m); break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP: raft_handle_vote_resp(r, m); break;
    case RAFT_MSG_APPEND:
    case RAFT_MSG_SNAPSHOT:
        if (r->role == RAFT_LEADER)
            break; /* same term, two leaders: impossible */
        if (r->role != RAFT_FOLLOWER || r->leader != m->from)
            raft_become_follower(r, m->term, m->from);
        r->elapsed = 0;
        r->heard_leader = m->from;
        r->heard_idle = 0;
        if (m->type == RAFT_MSG_SNAPSHOT)
            raft_handle_snapshot(r, m);
        else if (m->n_entries == 0 && m->index == 0 && m->log_term == 0)
            raft_handle_heartbeat(r, m);
        else
            raft_handle_append(r, m);
        if (m->type == RAFT_MSG_APPEND)
            raft_lease_on_append(r, m);
        break;
    case RAFT_MSG_APPEND_RESP:
        if (r->role == RAFT_LEADER)
            raft_handle_append_resp(r, m);
        else
            raft_handle_peer_ack(r, m);
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        if (r->role == RAFT_LEADER)
            raft_handle_snapshot_resp(r, m);
        break;
    case RAFT_MSG_READINDEX:
        if (r->role == RAFT_LEADER)
            raft_handle_readindex(r, m);
        break;
    case RAFT_MSG_READINDEX_RESP: raft_handle_readindex_resp(r, m); break;
    case RAFT_MSG_TIMEOUT_NOW: raft_handle_timeout_now(r, m); break;
    case RAFT_MSG_PROPOSE: handle_propose(r, m); break;
    default: return RAFT_EINVAL;
    }
    return RAFT_OK;
}

int raft_propose(raft *r, const uint8_t *data, size_t len, uint64_t *index, uint64_t *term)
{
    if (index)
        *index = 0;
    if (term)
        *term = 0;
    if (len && !data)
        return RAFT_EINVAL;
    if (len > r->cfg.max_entry_bytes)
        return RAFT_ETOOBIG;
    if (r->role == RAFT_LEADER) {
        if (r->transferee)
            return RAFT_EBUSY; /* §3.10: stop taking requests */
        int rc = raft_append_local(r, RAFT_ENTRY_NORMAL, data, len, index);
        if (rc == RAFT_OK && term)
            *term = r->term;
        return rc;
    }
    if (r->role != RAFT_FOLLOWER || r->leader == 0)
        return RAFT_ENOLEADER;
    raft_entry *e = calloc(1, sizeof *e);
    uint8_t *copy = len ? malloc(len) : NULL;
    if (!e || (len && !copy)) {
        free(e);
        free(copy);
        return RAFT_ENOMEM;
    }
    raft_msg *m = raft_emit(r, RAFT_MSG_PROPOSE, r->leader, false);
    if (!m) {
        free(e);
        free(copy);
        return RAFT_ENOMEM;
    }
    if (len)
        memcpy(copy, data, len);
    e->type = RAFT_ENTRY_NORMAL;
    e->len = (uint32_t)len;
    e->data = copy;
    e->term = r->term;
    m->entries = e;
    m->n_entries = 1;
    return RAFT_OK;
}

int raft_compact(raft *r, uint64_t index, uint8_t *data, size_t len, raft_conf *out_conf)
{
    if (index <= r->log.snap_index)
        return RAFT_ECOMPACTED;
    if (index > r->applied)
        return RAFT_EINVAL;
    if (r->cfg.external_snapshot ? data != NULL : (len && !data))
        return RAFT_EINVAL;
    raft_conf conf;
    uint64_t at;
    raft_conf_at(r, index, &conf, &at);
    uint64_t term = raft_term_at(r, index);
    raft_defer_free(r, r->snap.data);
    r->snap.index = index;
    r->snap.term = term;
    r->snap.conf = conf;
    r->snap.data = data;
    r->snap.len = len;
    raft_log_compact(r, index, term);
    if (out_conf)
        *out_conf = conf;
    return RAFT_OK;
}

int raft_conf_at_index(const raft *r, uint64_t index, raft_conf *out)
{
    if (index < r->log.snap_index || index > raft_log_last(r))
        return RAFT_EINVAL;
    uint64_t at;
    raft_conf_at(r, index, out, &at);
    return RAFT_OK;
}

/* ---- ready / advance ------------------------------------------------------- */

bool raft_has_ready(const raft *r)
{
    if (r->bat_n == RAFT_MAX_BATCHES)
        return false;
    return r->msgs.n || r->after.n || r->n_rs || r->send_pending || r->snap_pending ||
           r->read_pending || r->commit_pending || r->unstable <= raft_log_last(r) ||
           r->commit > r->applied || r->hs_out.term != r->term || r->hs_out.vote != r->vote ||
           r->hs_out.commit != r->commit;
}

static raft_entry *copy_range(const raft *r, uint64_t from, uint64_t to, size_t *n)
{
    *n = 0;
    if (from > to)
        return NULL;
    size_t cnt = (size_t)(to - from + 1);
    raft_entry *v = malloc(cnt * sizeof *v);
    if (!v)
        return NULL;
    memcpy(v, raft_entry_at(r, from), cnt * sizeof *v);
    *n = cnt;
    return v;
}

void raft_ready_get(raft *r, raft_ready *rd)
{
    assert(r->bat_n < RAFT_MAX_BATCHES);
    raft_batch *b = &r->bat[(r->bat_head + r->bat_n) % RAFT_MAX_BATCHES];
    memset(b, 0, sizeof *b);
    memset(rd, 0, sizeof *rd);
    raft_lease_refresh(r);
    if (r->role == RAFT_LEADER)
        raft_flush_appends(r);

    rd->hs.term = r->term;
    rd->hs.vote = r->vote;
    rd->hs.commit = r->commit;
    rd->hs_changed = memcmp(&rd->hs, &r->hs_out, sizeof rd->hs) != 0;
    r->hs_out = rd->hs;

    if (r->snap_pending) {
        b->snapshot = r->snap;
        rd->snapshot = &b->snapshot;
        b->snap = true;
        r->snap_pending = false;
    }

    uint64_t last = raft_log_last(r);
    if (r->unstable <= r->log.snap_index)
        r->unstable = r->log.snap_index + 1;
    b->entries = copy_range(r, r->unstable, last, &rd->n_entries);
    if (rd->n_entries == 0 && r->unstable <= last) {
        /* No memory for the copy: keep them for the next batch; nothing
         * that depends on them may be acknowledged yet. */
        last = r->unstable - 1;
        rd->hs.commit = r->commit < last ? r->commit : last;
        r->hs_out.commit = rd->hs.commit;
    }
    rd->entries = b->entries;
    b->last = last;
    b->last_term = raft_term_at(r, last);
    if (rd->n_entries)
        r->unstable = last + 1;

    uint64_t upto = r->commit < last ? r->commit : last;
    if (r->applied < r->log.snap_index)
        r->applied = r->log.snap_index;
    b->committed = copy_range(r, r->applied + 1, upto, &rd->n_committed);
    rd->committed = b->committed;
    if (rd->n_committed)
        r->applied = upto;

    /* Messages: the after-persist list is only valid if everything it speaks
     * of is in this batch; when entries had to be held back (no memory),
     * hold the promises back too. */
    b->msgs = r->msgs;
    memset(&r->msgs, 0, sizeof r->msgs);
    rd->msgs = b->msgs.v;
    rd->n_msgs = b->msgs.n;
    if (r->unstable > raft_log_last(r)) {
        b->after = r->after;
        memset(&r->after, 0, sizeof r->after);
        rd->msgs_after_persist = b->after.v;
        rd->n_msgs_after_persist = b->after.n;
    }

    b->rs = r->rs;
    rd->read_states = r->rs;
    rd->n_read_states = r->n_rs;
    r->rs = NULL;
    r->n_rs = r->cap_rs = 0;

    b->grave = r->grave;
    b->n_grave = r->n_grave;
    r->grave = NULL;
    r->n_grave = r->cap_grave = 0;
    r->bat_n++;
}

void raft_advance(raft *r, const raft_ready *rd)
{
    if (!r->bat_n)
        return;
    raft_batch *b = &r->bat[r->bat_head];
    assert(!rd || rd->entries == b->entries);
    (void)rd;
    if (b->last > r->stable && b->last <= raft_log_last(r) &&
        raft_term_at(r, b->last) == b->last_term)
        r->stable = b->last;
    batch_release(r);
    /* The leader counts its own log only once it is durable (§10.2.1);
     * so does a follower counting peer acknowledgements. */
    if (r->role == RAFT_LEADER && raft_maybe_commit(r))
        raft_commit_advanced(r);
    else if (r->role == RAFT_FOLLOWER)
        raft_peer_commit(r);
    raft_lease_refresh(r);
}

/* ---- introspection --------------------------------------------------------- */

void raft_status_get(const raft *r, raft_status *st)
{
    memset(st, 0, sizeof *st);
    st->id = r->id;
    st->role = r->role;
    st->term = r->term;
    st->vote = r->vote;
    st->leader = r->leader;
    st->commit = r->commit;
    st->applied = r->applied;
    st->first_index = r->log.snap_index + 1;
    st->last_index = raft_log_last(r);
    st->snapshot_index = r->snap.index;
    st->conf = r->conf;
    st->election = r->election;
    if (r->role == RAFT_LEADER) {
        st->n_peers = r->n_prs;
        for (uint32_t i = 0; i < r->n_prs; i++) {
            const raft_progress *p = &r->prs[i];
            st->peers[i].id = p->id;
            st->peers[i].match = p->match;
            st->peers[i].next = p->next;
            st->peers[i].state = p->state;
            st->peers[i].active = p->active || p->recent_active;
            st->peers[i].learner = !raft_is_voter(r, p->id);
            st->peers[i].applied = p->applied;
            st->peers[i].lease_holder = p->lease_until > r->now;
        }
    }
}

uint64_t raft_log_bytes(const raft *r)
{
    return r->log.bytes;
}

const char *raft_election_reason_name(raft_election_reason reason)
{
    switch (reason) {
    case RAFT_ELECTION_TIMEOUT: return "election timeout";
    case RAFT_ELECTION_TRANSFER: return "leader transfer";
    case RAFT_ELECTION_STEP_DOWN: return "check-quorum step-down";
    default: return "none";
    }
}
