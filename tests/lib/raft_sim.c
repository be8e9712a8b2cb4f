/*
 * raft_sim.c — the simulated cluster behind the Raft unit tests (see
 * raft_sim.h for what it models and checks).
 *
 * Event loop: the next event is either the earliest queued message or the
 * earliest node tick.  A delivered message goes to raft_step; after each
 * input the node's ready batches are carried out in the order raft.h
 * prescribes (send msgs, persist to the node's disk, send
 * msgs_after_persist, apply, advance), so a crash between events loses
 * exactly what was never persisted.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "raftkv/raft_internal.h"
#include "tests/lib/raft_sim.h"

typedef struct sim_disk {
    raft_hard_state hs;
    raft_snapshot snap; /* data owned */
    uint64_t snap_chain;
    raft_entry *log; /* data owned */
    uint64_t *chain;
    size_t n, cap;
} sim_disk;

typedef struct sim_node {
    raft *r;
    bool alive, crash_mid, connected;
    int group, restarts, installs;
    sim_disk d;
    uint64_t applied, hash, max_applied;
    uint64_t next_tick;
    raft_read_state *reads;
    int n_reads, cap_reads;
    /* async_persist: batches handed out whose write has not landed, oldest
     * first, and when each lands */
    raft_ready pend[RAFT_MAX_BATCHES];
    uint64_t pend_at[RAFT_MAX_BATCHES];
    int n_pend;
    uint64_t lead_term, lead_last, lead_last_term, lead_commit;
    /* read leases */
    uint64_t clock_off;
    int64_t clock_ppm;
    bool paused, hold_applied;
    uint64_t report_at;             /* a late raft_set_applied is due (0: none) */
    uint64_t last_visible;          /* for "never decreases", per incarnation */
    uint64_t seen_term, seen_until; /* the last valid lease seen */
} sim_node;

typedef struct qmsg {
    uint64_t at, seq;
    raft_msg m;
} qmsg;

typedef struct htent {
    uint64_t index, term, chain;
} htent;

struct sim {
    sim_config c;
    uint64_t rng, now, seq;
    sim_node nodes[SIM_MAX];
    qmsg *heap;
    size_t hn, hcap;
    bool blocked[SIM_MAX][SIM_MAX];
    bool reliable, long_reorder;
    int loss, dup;
    uint64_t delivered, by_type[RAFT_MSG_TYPE_MAX];
    uint64_t *g_chain, *g_term, *g_val;
    uint64_t *g_cterm, *g_eterm; /* per index: lowest term of a leader that
                                    * committed it, and the entry's term */
    uint64_t g_cmax;
    size_t g_cap;
    uint64_t g_max;
    uint64_t *g_leader;
    size_t gl_cap;
    htent *ht;
    size_t ht_cap, ht_n;
    bool failed;
    bool trace; /* HSTORE_SIM_TRACE=1: print every delivered message */
    qmsg *held; /* messages to paused nodes */
    size_t n_held, cap_held;
    uint64_t g_vmax, lease_viol;
};

static const char *g_test_name;
static uint64_t disk_last(const struct sim_disk *d); /* for the replay line only */

uint64_t sim_seed(uint64_t def, const char *test_name)
{
    g_test_name = test_name;
    const char *e = getenv("HSTORE_SEED");
    return e && *e ? strtoull(e, NULL, 0) : def;
}

void sim_fail(sim *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "raft_sim: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nraft_sim: seed=%llu at %llu ms; replay: HSTORE_SEED=%llu%s%s %s\n",
            (unsigned long long)s->c.seed, (unsigned long long)s->now,
            (unsigned long long)s->c.seed, g_test_name ? " HSTORE_TEST=" : "",
            g_test_name ? g_test_name : "", program_invocation_name);
    for (int i = 0; i < s->c.n_slots; i++) {
        sim_node *nd = &s->nodes[i];
        if (!nd->alive) {
            fprintf(stderr, "raft_sim:   node %d: down (disk last %llu)\n", i + 1,
                    (unsigned long long)disk_last(&nd->d));
            continue;
        }
        raft_status st;
        raft_status_get(nd->r, &st);
        fprintf(stderr,
                "raft_sim:   node %d: %s term %llu vote %llu leader %llu commit %llu applied %llu "
                "last %llu(t%llu) snap %llu conf %u%s\n",
                i + 1, raft_role_name(st.role), (unsigned long long)st.term,
                (unsigned long long)st.vote, (unsigned long long)st.leader,
                (unsigned long long)st.commit, (unsigned long long)nd->applied,
                (unsigned long long)st.last_index, (unsigned long long)raft_log_last_term(nd->r),
                (unsigned long long)st.snapshot_index, st.conf.n,
                nd->connected ? "" : " disconnected");
        for (uint32_t k = 0; k < st.n_peers; k++)
            fprintf(stderr, "raft_sim:     peer %llu match %llu next %llu state %d\n",
                    (unsigned long long)st.peers[k].id, (unsigned long long)st.peers[k].match,
                    (unsigned long long)st.peers[k].next, st.peers[k].state);
    }
    s->failed = true;
    fail_msg("raft simulation failed (seed %llu)", (unsigned long long)s->c.seed);
}

bool sim_failed(const sim *s)
{
    return s->failed;
}

/* ---- randomness and hashing ---------------------------------------------------- */

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t sim_rand(sim *s)
{
    return mix(s->rng += 0x9e3779b97f4a7c15ULL);
}

int sim_rand_int(sim *s, int n)
{
    return n <= 0 ? 0 : (int)(sim_rand(s) % (uint64_t)n);
}

static uint64_t entry_hash(uint64_t prev, const raft_entry *e)
{
    uint64_t h = mix(prev ^ mix(e->index) ^ mix(e->term * 31 + e->type));
    for (uint32_t i = 0; i < e->len; i++)
        h = (h ^ e->data[i]) * 0x100000001b3ULL;
    return mix(h ^ e->len);
}

static uint64_t entry_value(const raft_entry *e)
{
    if (e->type != RAFT_ENTRY_NORMAL)
        return SIM_NOOP;
    if (e->len == 8) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v |= (uint64_t)e->data[i] << (8 * i);
        return v;
    }
    return entry_hash(0, e);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q && n) {
        fprintf(stderr, "raft_sim: out of memory\n");
        abort();
    }
    return q;
}

/* ---- global facts for the safety checks ----------------------------------------- */

static void g_grow(sim *s, uint64_t index)
{
    if (index < s->g_cap)
        return;
    size_t cap = s->g_cap ? s->g_cap : 256;
    while (cap <= index)
        cap *= 2;
    s->g_chain = xrealloc(s->g_chain, cap * sizeof(uint64_t));
    s->g_term = xrealloc(s->g_term, cap * sizeof(uint64_t));
    s->g_val = xrealloc(s->g_val, cap * sizeof(uint64_t));
    s->g_cterm = xrealloc(s->g_cterm, cap * sizeof(uint64_t));
    s->g_eterm = xrealloc(s->g_eterm, cap * sizeof(uint64_t));
    memset(s->g_cterm + s->g_cap, 0, (cap - s->g_cap) * sizeof(uint64_t));
    memset(s->g_eterm + s->g_cap, 0, (cap - s->g_cap) * sizeof(uint64_t));
    memset(s->g_chain + s->g_cap, 0, (cap - s->g_cap) * sizeof(uint64_t));
    memset(s->g_term + s->g_cap, 0, (cap - s->g_cap) * sizeof(uint64_t));
    memset(s->g_val + s->g_cap, 0, (cap - s->g_cap) * sizeof(uint64_t));
    s->g_cap = cap;
}

/* State machine safety: whatever anyone applies at index must be the same. */
static void g_applied(sim *s, int i, uint64_t index, uint64_t term, uint64_t chain, uint64_t val,
                      bool from_snapshot)
{
    g_grow(s, index);
    if (s->g_chain[index] == 0 && !from_snapshot) {
        s->g_chain[index] = chain;
        s->g_term[index] = term;
        s->g_val[index] = val;
        if (index > s->g_max)
            s->g_max = index;
    } else if (s->g_chain[index] != 0 && s->g_chain[index] != chain) {
        sim_fail(s, "state machine safety: node %d applied a different state at index %llu", i + 1,
                 (unsigned long long)index);
    }
}

/* Log matching: two logs holding an entry with the same index and term hold
 * the same prefix (the hash chain covers every entry before it). */
static void ht_check(sim *s, int i, uint64_t index, uint64_t term, uint64_t chain)
{
    if (s->ht_n * 2 >= s->ht_cap) {
        size_t cap = s->ht_cap ? s->ht_cap * 2 : 1024;
        htent *nt = calloc(cap, sizeof *nt);
        if (!nt)
            abort();
        for (size_t k = 0; k < s->ht_cap; k++) {
            htent *e = &s->ht[k];
            if (!e->index)
                continue;
            size_t h = mix(e->index * 1000003 + e->term) & (cap - 1);
            while (nt[h].index)
                h = (h + 1) & (cap - 1);
            nt[h] = *e;
        }
        free(s->ht);
        s->ht = nt;
        s->ht_cap = cap;
    }
    size_t h = mix(index * 1000003 + term) & (s->ht_cap - 1);
    while (s->ht[h].index) {
        if (s->ht[h].index == index && s->ht[h].term == term) {
            if (s->ht[h].chain != chain)
                sim_fail(s, "log matching: node %d has a different log before (%llu, term %llu)",
                         i + 1, (unsigned long long)index, (unsigned long long)term);
            return;
        }
        h = (h + 1) & (s->ht_cap - 1);
    }
    s->ht[h].index = index;
    s->ht[h].term = term;
    s->ht[h].chain = chain;
    s->ht_n++;
}

/* ---- disk ------------------------------------------------------------------------ */

static uint64_t disk_last(const sim_disk *d)
{
    return d->snap.index + d->n;
}

static void disk_drop_from(sim_disk *d, uint64_t index)
{
    while (d->n && disk_last(d) >= index) {
        free(d->log[d->n - 1].data);
        d->n--;
    }
}

static void disk_drop_upto(sim_disk *d, uint64_t index)
{
    size_t k = 0;
    while (k < d->n && d->log[k].index <= index)
        free(d->log[k++].data);
    memmove(d->log, d->log + k, (d->n - k) * sizeof *d->log);
    memmove(d->chain, d->chain + k, (d->n - k) * sizeof *d->chain);
    d->n -= k;
}

static void disk_append(sim *s, int i, const raft_entry *es, size_t n)
{
    sim_disk *d = &s->nodes[i].d;
    if (n == 0)
        return;
    if (es[0].index <= d->snap.index || es[0].index > disk_last(d) + 1)
        sim_fail(s, "node %d: ready entries start at %llu, disk has (%llu, %llu]", i + 1,
                 (unsigned long long)es[0].index, (unsigned long long)d->snap.index,
                 (unsigned long long)disk_last(d));
    disk_drop_from(d, es[0].index);
    if (d->n + n > d->cap) {
        size_t cap = d->cap ? d->cap : 64;
        while (cap < d->n + n)
            cap *= 2;
        d->log = xrealloc(d->log, cap * sizeof *d->log);
        d->chain = xrealloc(d->chain, cap * sizeof *d->chain);
        d->cap = cap;
    }
    for (size_t k = 0; k < n; k++) {
        raft_entry *e = &d->log[d->n];
        *e = es[k];
        e->data = NULL;
        if (e->len) {
            e->data = xrealloc(NULL, e->len);
            memcpy(e->data, es[k].data, e->len);
        }
        uint64_t prev = d->n ? d->chain[d->n - 1] : d->snap_chain;
        d->chain[d->n] = entry_hash(prev, e);
        d->n++;
        ht_check(s, i, e->index, e->term, d->chain[d->n - 1]);
    }
}

static uint64_t snap_chain_of(sim *s, int i, const uint8_t *data, size_t len, uint64_t index)
{
    if (len < 16) {
        if (index == 0)
            return 0;
        sim_fail(s, "node %d: snapshot too short", i + 1);
    }
    uint64_t idx = 0, chain = 0;
    memcpy(&idx, data, 8);
    memcpy(&chain, data + 8, 8);
    if (idx != index)
        sim_fail(s, "node %d: snapshot data is for index %llu, not %llu", i + 1,
                 (unsigned long long)idx, (unsigned long long)index);
    for (size_t k = 16; k < len; k++)
        if (data[k] != (uint8_t)(index + k))
            sim_fail(s, "node %d: snapshot byte %zu corrupted", i + 1, k);
    return chain;
}

static void disk_set_snapshot(sim_disk *d, const raft_snapshot *sn, uint64_t chain)
{
    free(d->snap.data);
    d->snap = *sn;
    d->snap.data = NULL;
    if (sn->len) {
        d->snap.data = xrealloc(NULL, sn->len);
        memcpy(d->snap.data, sn->data, sn->len);
    }
    d->snap_chain = chain;
}

/* ---- network ---------------------------------------------------------------------- */

static bool link_ok(const sim *s, int a, int b)
{
    const sim_node *x = &s->nodes[a], *y = &s->nodes[b];
    return x->connected && y->connected && x->group == y->group && !s->blocked[a][b];
}

static bool q_less(const qmsg *a, const qmsg *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void q_push(sim *s, const qmsg *q)
{
    if (s->hn == s->hcap) {
        s->hcap = s->hcap ? s->hcap * 2 : 256;
        s->heap = xrealloc(s->heap, s->hcap * sizeof *s->heap);
    }
    size_t k = s->hn++;
    s->heap[k] = *q;
    while (k > 0) {
        size_t p = (k - 1) / 2;
        if (!q_less(&s->heap[k], &s->heap[p]))
            break;
        qmsg t = s->heap[k];
        s->heap[k] = s->heap[p];
        s->heap[p] = t;
        k = p;
    }
}

static qmsg q_pop(sim *s)
{
    qmsg top = s->heap[0];
    s->heap[0] = s->heap[--s->hn];
    size_t k = 0;
    for (;;) {
        size_t l = 2 * k + 1, r = l + 1, m = k;
        if (l < s->hn && q_less(&s->heap[l], &s->heap[m]))
            m = l;
        if (r < s->hn && q_less(&s->heap[r], &s->heap[m]))
            m = r;
        if (m == k)
            break;
        qmsg t = s->heap[k];
        s->heap[k] = s->heap[m];
        s->heap[m] = t;
        k = m;
    }
    return top;
}

static void msg_copy(raft_msg *dst, const raft_msg *src)
{
    *dst = *src;
    dst->entries = NULL;
    dst->chunk = NULL;
    if (src->n_entries) {
        dst->entries = xrealloc(NULL, src->n_entries * sizeof *dst->entries);
        for (uint32_t k = 0; k < src->n_entries; k++) {
            dst->entries[k] = src->entries[k];
            dst->entries[k].data = NULL;
            if (src->entries[k].len) {
                dst->entries[k].data = xrealloc(NULL, src->entries[k].len);
                memcpy(dst->entries[k].data, src->entries[k].data, src->entries[k].len);
            }
        }
    }
    if (src->chunk_len) {
        dst->chunk = xrealloc(NULL, src->chunk_len);
        memcpy(dst->chunk, src->chunk, src->chunk_len);
    }
}

static void msg_free(raft_msg *m)
{
    for (uint32_t k = 0; k < m->n_entries; k++)
        free(m->entries[k].data);
    free(m->entries);
    free(m->chunk);
}

static void net_send(sim *s, const raft_msg *m)
{
    int from = (int)m->from - 1, to = (int)m->to - 1;
    if (to < 0 || to >= s->c.n_slots || from < 0 || from >= s->c.n_slots)
        return;
    if (!link_ok(s, from, to))
        return;
    int copies = 1;
    if (s->dup && sim_rand_int(s, 100) < s->dup)
        copies = 2;
    for (int c = 0; c < copies; c++) {
        if (!s->reliable && sim_rand_int(s, 100) < 10)
            continue;
        if (s->loss && sim_rand_int(s, 100) < s->loss)
            continue;
        qmsg q;
        uint64_t delay =
            s->reliable ? 1 + (uint64_t)sim_rand_int(s, 3) : (uint64_t)sim_rand_int(s, 27);
        if (s->long_reorder && sim_rand_int(s, 900) < 600)
            delay += 200 + (uint64_t)sim_rand_int(s, 1 + sim_rand_int(s, 2001));
        q.at = s->now + delay;
        q.seq = s->seq++;
        msg_copy(&q.m, m);
        q_push(s, &q);
    }
}

/* ---- clocks ------------------------------------------------------------------------- */

uint64_t sim_clock(const sim *s, int i)
{
    const sim_node *nd = &s->nodes[i];
    int64_t skew = (int64_t)s->now * nd->clock_ppm / 1000000;
    return nd->clock_off + (uint64_t)((int64_t)s->now + skew);
}

/* Gives the node's clock to its core (the node loop does before each input). */
static void sync_clock(sim *s, int i)
{
    sim_node *nd = &s->nodes[i];
    if (s->c.lease_ms && nd->alive)
        raft_set_now(nd->r, sim_clock(s, i));
}

/* ---- nodes -------------------------------------------------------------------------- */

static void node_boot(sim *s, int i)
{
    sim_node *nd = &s->nodes[i];
    raft_config cfg;
    raft_config_init(&cfg);
    cfg.id = (uint64_t)i + 1;
    cfg.seed = mix(s->c.seed * 7919 + (uint64_t)i * 104729 + (uint64_t)nd->restarts);
    cfg.election_ticks = s->c.election_ticks;
    cfg.heartbeat_ticks = s->c.heartbeat_ticks;
    cfg.max_inflight = s->c.max_inflight;
    cfg.max_msg_bytes = s->c.max_msg_bytes;
    cfg.max_inflight_bytes = s->c.max_inflight_bytes;
    cfg.snapshot_chunk = s->c.snapshot_chunk;
    cfg.pre_vote = s->c.pre_vote;
    cfg.check_quorum = s->c.check_quorum;
    cfg.external_snapshot = s->c.external_snapshot;
    cfg.lease_ms = s->c.lease_ms;
    cfg.drift_pct = s->c.drift_pct;
    raft_boot boot;
    memset(&boot, 0, sizeof boot);
    boot.hs = nd->d.hs;
    boot.snapshot = nd->d.snap;
    boot.entries = nd->d.log;
    boot.n_entries = nd->d.n;
    const char *err = NULL;
    nd->r = raft_new(&cfg, &boot, &err);
    if (!nd->r)
        sim_fail(s, "node %d: raft_new failed: %s", i + 1, err ? err : "?");
    nd->alive = true;
    nd->crash_mid = false;
    nd->applied = nd->d.snap.index;
    nd->hash = nd->d.snap_chain;
    nd->lead_term = 0;
    nd->next_tick = s->now + 1 + (uint64_t)sim_rand_int(s, SIM_TICK_MS);
    nd->paused = false;
    nd->report_at = 0;
    nd->last_visible = 0;
    nd->seen_term = nd->seen_until = 0;
    sync_clock(s, i);
}

/* The node reports its applied index: at once, or (one batch in four) up to
 * 100 ms late, or not while held. */
static void report_applied(sim *s, int i, bool now)
{
    sim_node *nd = &s->nodes[i];
    if (!s->c.lease_ms || nd->hold_applied)
        return;
    if (!now && !nd->report_at && sim_rand_int(s, 4) == 0) {
        nd->report_at = s->now + 1 + (uint64_t)sim_rand_int(s, 100);
        return;
    }
    if (now || !nd->report_at) {
        nd->report_at = 0;
        sync_clock(s, i);
        raft_set_applied(nd->r, nd->applied);
    }
}

static void maybe_compact(sim *s, int i)
{
    sim_node *nd = &s->nodes[i];
    if (s->c.compact_every <= 0 || nd->n_pend ||
        nd->applied < nd->d.snap.index + (uint64_t)s->c.compact_every)
        return; /* (a snapshot covers only what is on the disk) */
    size_t len = 16 + s->c.snap_pad;
    uint8_t *data = xrealloc(NULL, len);
    memcpy(data, &nd->applied, 8);
    memcpy(data + 8, &nd->hash, 8);
    for (size_t k = 16; k < len; k++)
        data[k] = (uint8_t)(nd->applied + k);
    uint64_t index = nd->applied;
    size_t k = (size_t)(index - nd->d.snap.index - 1);
    if (k >= nd->d.n)
        sim_fail(s, "node %d applied %llu beyond its disk log", i + 1, (unsigned long long)index);
    raft_snapshot sn;
    memset(&sn, 0, sizeof sn);
    sn.index = index;
    sn.term = nd->d.log[k].term;
    sn.data = data;
    sn.len = len;
    int rc = raft_compact(nd->r, index, s->c.external_snapshot ? NULL : data, len, &sn.conf);
    if (rc != RAFT_OK || s->c.external_snapshot) {
        /* external: the disk keeps the bytes (copied below), the core none */
        if (rc == RAFT_OK)
            goto stored;
        free(data);
        sim_fail(s, "node %d: raft_compact(%llu): %s", i + 1, (unsigned long long)index,
                 raft_strerror(rc));
    }
stored:
    disk_drop_upto(&nd->d, index);
    disk_set_snapshot(&nd->d, &sn, nd->hash);
    if (s->c.external_snapshot)
        free(data);
}

/* Sends a batch's msgs, checking the persistence contract on the way. */
static void send_batch(sim *s, int i, const raft_ready *rd)
{
    sim_node *nd = &s->nodes[i];
    for (size_t k = 0; k < rd->n_msgs; k++) {
        /* The persistence contract: promises about durable state only
         * in msgs_after_persist. */
        const raft_msg *m = &rd->msgs[k];
        if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_VOTE_RESP ||
            (m->type == RAFT_MSG_APPEND_RESP && !m->reject && m->index != 0) ||
            (m->type == RAFT_MSG_SNAPSHOT_RESP && m->done))
            sim_fail(s, "node %d sends %s before persisting", i + 1, raft_msg_type_name(m->type));
        if (m->type == RAFT_MSG_APPEND && m->n_entries > 1) {
            /* Flow control: a message holds at most max_msg_bytes of
             * entries, unless it holds a single entry. */
            uint64_t bytes = 0;
            for (uint32_t e = 0; e < m->n_entries; e++)
                bytes += m->entries[e].len;
            if (bytes > s->c.max_msg_bytes)
                sim_fail(s, "node %d sends %u entries of %llu bytes in one message (cap %u)", i + 1,
                         (unsigned)m->n_entries, (unsigned long long)bytes,
                         (unsigned)s->c.max_msg_bytes);
        }
        if (m->type == RAFT_MSG_SNAPSHOT && s->c.external_snapshot) {
            /* The caller's part of external snapshots: fill the chunk
             * from the stored snapshot it names. */
            if (m->chunk)
                sim_fail(s, "node %d: external snapshot chunk filled by the core", i + 1);
            const raft_snapshot *ds = &nd->d.snap;
            if (ds->index != m->index || ds->len != m->snap_len ||
                m->offset + m->chunk_len > ds->len)
                sim_fail(s, "node %d sends snapshot %llu bytes it has not stored", i + 1,
                         (unsigned long long)m->index);
            raft_msg f = *m;
            f.chunk = m->chunk_len ? ds->data + m->offset : NULL;
            net_send(s, &f);
            continue;
        }
        net_send(s, m);
    }
}

/* Writes a batch to the node's disk and sends what waited for it. */
static void persist_batch(sim *s, int i, const raft_ready *rd)
{
    sim_node *nd = &s->nodes[i];
    if (rd->snapshot) {
        uint64_t chain =
            snap_chain_of(s, i, rd->snapshot->data, rd->snapshot->len, rd->snapshot->index);
        disk_drop_from(&nd->d, 0);
        disk_set_snapshot(&nd->d, rd->snapshot, chain);
    }
    disk_append(s, i, rd->entries, rd->n_entries);
    if (rd->hs_changed)
        nd->d.hs = rd->hs;
    if (nd->d.hs.commit > disk_last(&nd->d))
        sim_fail(s, "node %d: persisted commit %llu beyond its log", i + 1,
                 (unsigned long long)nd->d.hs.commit);
    for (size_t k = 0; k < rd->n_msgs_after_persist; k++)
        net_send(s, &rd->msgs_after_persist[k]);
}

/* Installs a batch's snapshot (once persisted) and applies its committed
 * entries; keeps its read states. */
static void apply_batch(sim *s, int i, const raft_ready *rd)
{
    sim_node *nd = &s->nodes[i];
    if (rd->snapshot) {
        nd->applied = rd->snapshot->index;
        nd->hash = nd->d.snap_chain;
        nd->installs++;
        if (nd->applied > 0)
            g_applied(s, i, nd->applied, rd->snapshot->term, nd->hash, 0, true);
        if (nd->applied > nd->max_applied)
            nd->max_applied = nd->applied;
    }
    for (size_t k = 0; k < rd->n_committed; k++) {
        const raft_entry *e = &rd->committed[k];
        if (e->index != nd->applied + 1)
            sim_fail(s, "node %d applied index %llu after %llu", i + 1,
                     (unsigned long long)e->index, (unsigned long long)nd->applied);
        nd->hash = entry_hash(nd->hash, e);
        nd->applied = e->index;
        g_applied(s, i, e->index, e->term, nd->hash, entry_value(e), false);
        if (nd->applied > nd->max_applied)
            nd->max_applied = nd->applied;
    }
    for (size_t k = 0; k < rd->n_read_states; k++) {
        if (nd->n_reads == nd->cap_reads) {
            nd->cap_reads = nd->cap_reads ? nd->cap_reads * 2 : 16;
            nd->reads = xrealloc(nd->reads, (size_t)nd->cap_reads * sizeof *nd->reads);
        }
        nd->reads[nd->n_reads++] = rd->read_states[k];
    }
    if (rd->snapshot || rd->n_committed)
        report_applied(s, i, false);
}

/* async_persist: the oldest pending write lands. */
static void land_oldest(sim *s, int i)
{
    sim_node *nd = &s->nodes[i];
    raft_ready rd = nd->pend[0];
    memmove(nd->pend, nd->pend + 1, (size_t)(nd->n_pend - 1) * sizeof nd->pend[0]);
    memmove(nd->pend_at, nd->pend_at + 1, (size_t)(nd->n_pend - 1) * sizeof nd->pend_at[0]);
    nd->n_pend--;
    persist_batch(s, i, &rd);
    sync_clock(s, i);
    raft_advance(nd->r, &rd);
}

static void process(sim *s, int i)
{
    sim_node *nd = &s->nodes[i];
    sync_clock(s, i);
    while (nd->alive && raft_has_ready(nd->r)) {
        raft_ready rd;
        sync_clock(s, i);
        raft_ready_get(nd->r, &rd);
        send_batch(s, i, &rd);
        if (nd->crash_mid) {
            sim_crash(s, i);
            return;
        }
        bool writes = rd.snapshot || rd.n_entries || rd.hs_changed;
        if (s->c.async_persist && !rd.snapshot && (writes || nd->n_pend)) {
            /* Pipelined: applied now, written later, in order. */
            apply_batch(s, i, &rd);
            uint64_t at = s->now + 1 + (uint64_t)sim_rand_int(s, 30);
            if (nd->n_pend && at < nd->pend_at[nd->n_pend - 1])
                at = nd->pend_at[nd->n_pend - 1];
            nd->pend[nd->n_pend] = rd;
            nd->pend_at[nd->n_pend++] = at;
            continue;
        }
        /* A snapshot is installed only once everything before it landed. */
        while (nd->n_pend)
            land_oldest(s, i);
        persist_batch(s, i, &rd);
        apply_batch(s, i, &rd);
        raft_advance(nd->r, &rd);
        maybe_compact(s, i);
    }
}

/* Election safety, leader append-only and leader completeness for node i. */
static void check_node(sim *s, int i)
{
    sim_node *nd = &s->nodes[i];
    if (!nd->alive)
        return;
    raft *r = nd->r;
    if (r->role != RAFT_LEADER)
        return;
    uint64_t t = r->term;
    if (t >= s->gl_cap) {
        size_t cap = s->gl_cap ? s->gl_cap : 64;
        while (cap <= t)
            cap *= 2;
        s->g_leader = xrealloc(s->g_leader, cap * sizeof *s->g_leader);
        memset(s->g_leader + s->gl_cap, 0, (cap - s->gl_cap) * sizeof *s->g_leader);
        s->gl_cap = cap;
    }
    if (s->g_leader[t] && s->g_leader[t] != (uint64_t)i + 1)
        sim_fail(s, "election safety: nodes %llu and %d both lead term %llu",
                 (unsigned long long)s->g_leader[t], i + 1, (unsigned long long)t);
    s->g_leader[t] = (uint64_t)i + 1;
    uint64_t last = raft_log_last(r);
    if (nd->lead_term != t) {
        /* New leader: it must hold every entry committed in a lower term
         * (Leader Completeness; by log matching the newest one suffices). */
        for (uint64_t c = s->g_cmax; c > r->log.snap_index; c--) {
            if (!s->g_cterm[c] || s->g_cterm[c] >= t)
                continue;
            uint64_t et = s->g_eterm[c] ? s->g_eterm[c] : s->g_term[c];
            if (!et)
                continue;
            if (raft_term_at(r, c) != et)
                sim_fail(s,
                         "leader completeness: leader %d of term %llu lacks index %llu "
                         "committed in term %llu",
                         i + 1, (unsigned long long)t, (unsigned long long)c,
                         (unsigned long long)s->g_cterm[c]);
            break;
        }
        nd->lead_term = t;
        nd->lead_commit = r->commit;
    } else if (last < nd->lead_last || (nd->lead_last > r->log.snap_index &&
                                        raft_term_at(r, nd->lead_last) != nd->lead_last_term)) {
        sim_fail(s, "leader append-only: leader %d of term %llu changed its log at %llu", i + 1,
                 (unsigned long long)t, (unsigned long long)nd->lead_last);
    }
    if (r->commit > nd->lead_commit) {
        g_grow(s, r->commit);
        for (uint64_t c = nd->lead_commit + 1; c <= r->commit; c++) {
            uint64_t et = raft_term_at(r, c);
            if (s->g_eterm[c] && et && s->g_eterm[c] != et)
                sim_fail(s, "two leaders committed different entries at index %llu",
                         (unsigned long long)c);
            if (et)
                s->g_eterm[c] = et;
            if (!s->g_cterm[c] || t < s->g_cterm[c])
                s->g_cterm[c] = t;
        }
        if (r->commit > s->g_cmax)
            s->g_cmax = r->commit;
        nd->lead_commit = r->commit;
    }
    nd->lead_last = last;
    nd->lead_last_term = raft_log_last_term(r);
}

static void lease_violation(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lease_violation(sim *s, const char *fmt, ...)
{
    s->lease_viol++;
    if (s->c.lease_soft)
        return;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sim_fail(s, "read lease: %s", buf);
}

/* The read-lease invariants (raft_sim.h).  Running nodes read their clocks
 * first; a paused one is judged by what it last computed, against its clock
 * that runs on. */
static void check_leases(sim *s)
{
    if (!s->c.lease_ms)
        return;
    raft_lease_info li[SIM_MAX];
    for (int i = 0; i < s->c.n_slots; i++) {
        sim_node *nd = &s->nodes[i];
        if (!nd->alive)
            continue;
        if (!nd->paused)
            sync_clock(s, i);
        raft_lease_get(nd->r, &li[i]);
        if (li[i].visible < nd->last_visible)
            lease_violation(s, "node %d: visible index went back from %llu to %llu", i + 1,
                            (unsigned long long)nd->last_visible,
                            (unsigned long long)li[i].visible);
        if (li[i].visible > nd->r->commit)
            lease_violation(s, "node %d: visible index %llu above its commit %llu", i + 1,
                            (unsigned long long)li[i].visible, (unsigned long long)nd->r->commit);
        nd->last_visible = li[i].visible;
        if (li[i].visible > s->g_vmax)
            s->g_vmax = li[i].visible;
    }
    for (int i = 0; i < s->c.n_slots; i++) {
        sim_node *nd = &s->nodes[i];
        if (!nd->alive)
            continue;
        uint64_t now = sim_clock(s, i);
        if (li[i].lease_until <= now)
            continue;
        if (li[i].term != nd->r->term)
            lease_violation(s, "node %d holds a lease of term %llu in term %llu", i + 1,
                            (unsigned long long)li[i].term, (unsigned long long)nd->r->term);
        if (nd->seen_term && nd->seen_term != li[i].term && nd->seen_until > now)
            lease_violation(s, "node %d holds leases of terms %llu and %llu", i + 1,
                            (unsigned long long)nd->seen_term, (unsigned long long)li[i].term);
        nd->seen_term = li[i].term;
        nd->seen_until = li[i].lease_until;
        if (nd->r->applied_rep < s->g_vmax)
            lease_violation(s,
                            "node %d (%s) holds a lease until %llu (now %llu) but applied %llu < "
                            "visible %llu",
                            i + 1, raft_role_name(nd->r->role),
                            (unsigned long long)li[i].lease_until, (unsigned long long)now,
                            (unsigned long long)nd->r->applied_rep, (unsigned long long)s->g_vmax);
    }
}

void sim_check(sim *s)
{
    for (int i = 0; i < s->c.n_slots; i++)
        check_node(s, i);
    check_leases(s);
}

/* One event: the earliest message or tick. */
static void sim_event(sim *s)
{
    uint64_t t_tick = UINT64_MAX;
    int who = -1;
    for (int i = 0; i < s->c.n_slots; i++)
        if (s->nodes[i].alive && !s->nodes[i].paused && s->nodes[i].next_tick < t_tick) {
            t_tick = s->nodes[i].next_tick;
            who = i;
        }
    uint64_t t_disk = UINT64_MAX;
    int dwho = -1;
    for (int i = 0; i < s->c.n_slots; i++)
        if (s->nodes[i].alive && !s->nodes[i].paused && s->nodes[i].n_pend &&
            s->nodes[i].pend_at[0] < t_disk) {
            t_disk = s->nodes[i].pend_at[0];
            dwho = i;
        }
    uint64_t t_rep = UINT64_MAX;
    int rwho = -1;
    for (int i = 0; i < s->c.n_slots; i++)
        if (s->nodes[i].alive && !s->nodes[i].paused && s->nodes[i].report_at &&
            s->nodes[i].report_at < t_rep) {
            t_rep = s->nodes[i].report_at;
            rwho = i;
        }
    if (rwho >= 0 && t_rep <= t_tick && t_rep <= t_disk && (!s->hn || t_rep < s->heap[0].at)) {
        if (t_rep > s->now)
            s->now = t_rep;
        report_applied(s, rwho, true);
        process(s, rwho);
        if (s->c.check_every_step)
            check_leases(s);
        return;
    }
    if (dwho >= 0 && t_disk <= t_tick && (!s->hn || t_disk < s->heap[0].at)) {
        if (t_disk > s->now)
            s->now = t_disk;
        land_oldest(s, dwho);
        process(s, dwho);
        if (s->nodes[dwho].alive && !s->nodes[dwho].n_pend)
            maybe_compact(s, dwho);
        if (s->c.check_every_step) {
            check_node(s, dwho);
            check_leases(s);
        }
        return;
    }
    if (s->hn && s->heap[0].at <= t_tick) {
        qmsg q = q_pop(s);
        s->now = q.at;
        int to = (int)q.m.to - 1, from = (int)q.m.from - 1;
        if (s->trace)
            fprintf(stderr, "%6llu %s %llu->%llu t%llu i%llu lt%llu c%llu n%u rej%d %s\n",
                    (unsigned long long)s->now, raft_msg_type_name(q.m.type),
                    (unsigned long long)q.m.from, (unsigned long long)q.m.to,
                    (unsigned long long)q.m.term, (unsigned long long)q.m.index,
                    (unsigned long long)q.m.log_term, (unsigned long long)q.m.commit, q.m.n_entries,
                    q.m.reject, s->nodes[to].alive && link_ok(s, from, to) ? "" : "(lost)");
        if (s->nodes[to].alive && s->nodes[to].paused) {
            /* a stopped process: the message waits in its socket */
            if (s->n_held == s->cap_held) {
                s->cap_held = s->cap_held ? s->cap_held * 2 : 64;
                s->held = xrealloc(s->held, s->cap_held * sizeof *s->held);
            }
            s->held[s->n_held++] = q;
            return;
        }
        if (s->nodes[to].alive && link_ok(s, from, to)) {
            s->delivered++;
            s->by_type[q.m.type]++;
            sync_clock(s, to);
            raft_step(s->nodes[to].r, &q.m);
            process(s, to);
            if (s->c.check_every_step) {
                check_node(s, to);
                check_leases(s);
            }
        }
        msg_free(&q.m);
        return;
    }
    if (who < 0) {
        s->now++;
        return;
    }
    s->now = t_tick;
    s->nodes[who].next_tick += SIM_TICK_MS;
    sync_clock(s, who);
    raft_tick(s->nodes[who].r);
    process(s, who);
    if (s->c.check_every_step) {
        check_node(s, who);
        check_leases(s);
    }
}

/* ---- public API ------------------------------------------------------------------------ */

void sim_config_init(sim_config *c, int n, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    c->n_slots = n;
    c->seed = seed;
    c->election_ticks = 20;
    c->heartbeat_ticks = 4;
    c->max_inflight = 8;
    c->max_msg_bytes = 64 * 1024;
    c->max_inflight_bytes = 256 * 1024;
    c->snapshot_chunk = 64;
    c->pre_vote = true;
    c->check_quorum = true;
    c->snap_pad = 200;
    c->check_every_step = true;
    c->drift_pct = 10;
    c->clock_drift_pct = 10;
}

sim *sim_new(const sim_config *c)
{
    sim *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->c = *c;
    if (s->c.n_slots < s->c.n)
        s->c.n_slots = s->c.n;
    s->rng = c->seed;
    s->reliable = true;
    const char *tr = getenv("HSTORE_SIM_TRACE");
    s->trace = tr && *tr == '1';
    raft_conf conf;
    memset(&conf, 0, sizeof conf);
    for (int i = 0; i < c->n; i++) {
        conf.ids[i] = (uint64_t)i + 1;
        snprintf(conf.addrs[i], RAFT_ADDR_MAX, "node%d", i + 1);
    }
    conf.n = (uint32_t)c->n;
    for (int i = 0; i < s->c.n_slots && s->c.lease_ms; i++) {
        /* clocks agree on nothing but their rates, roughly */
        sim_node *nd = &s->nodes[i];
        nd->clock_off = sim_rand(s) % 1000000000ULL;
        int64_t spread = (int64_t)s->c.clock_drift_pct * 10000;
        nd->clock_ppm = spread ? (int64_t)(sim_rand(s) % (uint64_t)(2 * spread + 1)) - spread : 0;
    }
    for (int i = 0; i < s->c.n_slots; i++) {
        sim_node *nd = &s->nodes[i];
        nd->connected = true;
        if (i < c->n)
            nd->d.snap.conf = conf; /* joiners boot with no configuration */
        node_boot(s, i);
    }
    return s;
}

void sim_free(sim *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->c.n_slots; i++) {
        sim_node *nd = &s->nodes[i];
        raft_free(nd->r);
        disk_drop_from(&nd->d, 0);
        free(nd->d.log);
        free(nd->d.chain);
        free(nd->d.snap.data);
        free(nd->reads);
    }
    for (size_t k = 0; k < s->hn; k++)
        msg_free(&s->heap[k].m);
    free(s->heap);
    for (size_t k = 0; k < s->n_held; k++)
        msg_free(&s->held[k].m);
    free(s->held);
    free(s->g_chain);
    free(s->g_term);
    free(s->g_val);
    free(s->g_cterm);
    free(s->g_eterm);
    free(s->g_leader);
    free(s->ht);
    free(s);
}

uint64_t sim_now(const sim *s)
{
    return s->now;
}

void sim_run(sim *s, uint64_t ms)
{
    uint64_t end = s->now + ms;
    while (s->now < end) {
        /* stop exactly at end if the next event is later */
        uint64_t next = UINT64_MAX;
        for (int i = 0; i < s->c.n_slots; i++) {
            const sim_node *nd = &s->nodes[i];
            if (!nd->alive || nd->paused)
                continue;
            if (nd->next_tick < next)
                next = nd->next_tick;
            if (nd->report_at && nd->report_at < next)
                next = nd->report_at;
            if (nd->n_pend && nd->pend_at[0] < next)
                next = nd->pend_at[0];
        }
        if (s->hn && s->heap[0].at < next)
            next = s->heap[0].at;
        if (next > end) {
            s->now = end;
            break;
        }
        sim_event(s);
    }
}

bool sim_run_until(sim *s, uint64_t max_ms, bool (*pred)(sim *, void *), void *arg)
{
    uint64_t end = s->now + max_ms;
    while (!pred(s, arg)) {
        if (s->now >= end)
            return false;
        sim_run(s, 1);
    }
    return true;
}

void sim_disconnect(sim *s, int i)
{
    s->nodes[i].connected = false;
}
void sim_connect(sim *s, int i)
{
    s->nodes[i].connected = true;
}
bool sim_connected(const sim *s, int i)
{
    return s->nodes[i].connected;
}

void sim_partition(sim *s, const int *group)
{
    for (int i = 0; i < s->c.n_slots; i++)
        s->nodes[i].group = group[i];
}

void sim_heal(sim *s)
{
    for (int i = 0; i < s->c.n_slots; i++) {
        s->nodes[i].group = 0;
        s->nodes[i].connected = true;
    }
    memset(s->blocked, 0, sizeof s->blocked);
}

void sim_block(sim *s, int from, int to, bool blocked)
{
    s->blocked[from][to] = blocked;
}

void sim_crash(sim *s, int i)
{
    sim_node *nd = &s->nodes[i];
    if (!nd->alive)
        return;
    raft_free(nd->r);
    nd->r = NULL;
    nd->alive = false;
    nd->n_pend = 0; /* the writes still pending are lost */
}

void sim_crash_mid_batch(sim *s, int i)
{
    s->nodes[i].crash_mid = true;
}
void sim_cancel_crash(sim *s, int i)
{
    s->nodes[i].crash_mid = false;
}

void sim_restart(sim *s, int i)
{
    sim_crash(s, i);
    s->nodes[i].restarts++;
    node_boot(s, i);
}

bool sim_alive(const sim *s, int i)
{
    return s->nodes[i].alive;
}

void sim_set_reliable(sim *s, bool reliable)
{
    s->reliable = reliable;
}
void sim_set_loss(sim *s, int pct)
{
    s->loss = pct;
}
void sim_set_dup(sim *s, int pct)
{
    s->dup = pct;
}
void sim_set_long_reordering(sim *s, bool on)
{
    s->long_reorder = on;
}

raft *sim_raft(sim *s, int i)
{
    sync_clock(s, i); /* the caller is about to call into the core */
    return s->nodes[i].alive ? s->nodes[i].r : NULL;
}

void sim_status(sim *s, int i, raft_status *st)
{
    if (s->nodes[i].alive)
        raft_status_get(s->nodes[i].r, st);
    else
        memset(st, 0, sizeof *st);
}

uint64_t sim_msg_count(const sim *s)
{
    return s->delivered;
}
uint64_t sim_msg_count_type(const sim *s, int type)
{
    return s->by_type[type];
}

int sim_leader(sim *s)
{
    int best = -1;
    uint64_t bt = 0;
    for (int i = 0; i < s->c.n_slots; i++) {
        sim_node *nd = &s->nodes[i];
        if (!nd->alive || !nd->connected || nd->r->role != RAFT_LEADER)
            continue;
        if (nd->r->term > bt) {
            bt = nd->r->term;
            best = i;
        }
    }
    return best;
}

int sim_check_one_leader(sim *s)
{
    for (int k = 0; k < 10; k++) {
        sim_run(s, 500);
        int l = sim_leader(s);
        if (l >= 0)
            return l;
    }
    return -1;
}

bool sim_no_leader(sim *s)
{
    return sim_leader(s) < 0;
}

uint64_t sim_agreed_term(sim *s)
{
    uint64_t t = 0;
    for (int i = 0; i < s->c.n_slots; i++) {
        sim_node *nd = &s->nodes[i];
        if (!nd->alive || !nd->connected)
            continue;
        if (t == 0)
            t = nd->r->term;
        else if (nd->r->term != t)
            return 0;
    }
    return t;
}

int sim_n_committed(sim *s, uint64_t index, uint64_t *val)
{
    int n = 0;
    for (int i = 0; i < s->c.n_slots; i++)
        if (s->nodes[i].max_applied >= index)
            n++;
    if (val)
        *val = (n && index < s->g_cap) ? s->g_val[index] : 0;
    return n;
}

uint64_t sim_max_committed(const sim *s)
{
    return s->g_max;
}

bool sim_start(sim *s, int i, uint64_t cmd, uint64_t *index, uint64_t *term)
{
    sim_node *nd = &s->nodes[i];
    if (!nd->alive || nd->r->role != RAFT_LEADER)
        return false;
    sync_clock(s, i);
    uint8_t buf[8];
    for (int k = 0; k < 8; k++)
        buf[k] = (uint8_t)(cmd >> (8 * k));
    uint64_t idx = 0, t = 0;
    if (raft_propose(nd->r, buf, 8, &idx, &t) != RAFT_OK)
        return false;
    if (index)
        *index = idx;
    if (term)
        *term = t;
    return true;
}

uint64_t sim_one(sim *s, uint64_t cmd, int expected, bool retry)
{
    uint64_t idx = sim_try_one(s, cmd, expected, retry, 10000);
    if (!idx)
        sim_fail(s, "one(%llu) failed to reach agreement on %d nodes", (unsigned long long)cmd,
                 expected);
    return idx;
}

uint64_t sim_try_one(sim *s, uint64_t cmd, int expected, bool retry, uint64_t max_ms)
{
    uint64_t t0 = s->now;
    int start = 0;
    while (s->now - t0 < max_ms) {
        uint64_t idx = 0;
        for (int k = 0; k < s->c.n_slots; k++) {
            int i = (start + k) % s->c.n_slots;
            if (s->nodes[i].connected && sim_start(s, i, cmd, &idx, NULL)) {
                sim_flush(s, i);
                start = i;
                break;
            }
        }
        if (idx) {
            uint64_t t1 = s->now;
            while (s->now - t1 < 2000) {
                uint64_t v;
                int n = sim_n_committed(s, idx, &v);
                if (n >= expected && v == cmd)
                    return idx;
                sim_run(s, 20);
            }
            if (!retry)
                break;
            start = (start + 1) % s->c.n_slots; /* as the lab: try the next one */
        } else {
            sim_run(s, 50);
        }
    }
    return 0;
}

bool sim_wait(sim *s, uint64_t index, int n, uint64_t max_ms)
{
    uint64_t end = s->now + max_ms;
    while (sim_n_committed(s, index, NULL) < n) {
        if (s->now >= end)
            return false;
        sim_run(s, 10);
    }
    return true;
}

int sim_n_reads(const sim *s, int i)
{
    return s->nodes[i].n_reads;
}
raft_read_state sim_read(const sim *s, int i, int k)
{
    return s->nodes[i].reads[k];
}
int sim_n_installs(const sim *s, int i)
{
    return s->nodes[i].installs;
}
uint64_t sim_applied(const sim *s, int i)
{
    return s->nodes[i].applied;
}

uint64_t sim_conf_change(sim *s, int type, int slot)
{
    raft_conf_change cc;
    memset(&cc, 0, sizeof cc);
    cc.type = (uint8_t)type;
    cc.id = (uint64_t)slot + 1;
    snprintf(cc.addr, sizeof cc.addr, "node%d", slot + 1);
    for (int tries = 0; tries < 100; tries++) {
        int l = sim_leader(s);
        uint64_t idx;
        if (l >= 0 && raft_propose_conf(sim_raft(s, l), &cc, &idx) == RAFT_OK) {
            sim_flush(s, l);
            return idx;
        }
        sim_run(s, 100);
    }
    sim_fail(s, "conf change on node %d never accepted", slot + 1);
    return 0;
}

void sim_flush(sim *s, int i)
{
    process(s, i);
    if (s->c.check_every_step) {
        check_node(s, i);
        check_leases(s);
    }
}

/* ---- read leases ------------------------------------------------------------------------ */

void sim_pause(sim *s, int i, bool paused)
{
    sim_node *nd = &s->nodes[i];
    if (nd->paused == paused)
        return;
    nd->paused = paused;
    if (paused)
        return;
    /* resumed: the held messages arrive, in order; ticks start again */
    size_t keep = 0;
    for (size_t k = 0; k < s->n_held; k++) {
        if ((int)s->held[k].m.to - 1 == i) {
            s->held[k].at = s->now + 1;
            s->held[k].seq = s->seq++;
            q_push(s, &s->held[k]);
        } else {
            s->held[keep++] = s->held[k];
        }
    }
    s->n_held = keep;
    nd->next_tick = s->now + 1;
}

bool sim_paused(const sim *s, int i)
{
    return s->nodes[i].paused;
}

void sim_hold_applied(sim *s, int i, bool hold)
{
    sim_node *nd = &s->nodes[i];
    nd->hold_applied = hold;
    if (!hold && nd->alive) {
        report_applied(s, i, true);
        process(s, i);
    }
}

void sim_set_clock_rate(sim *s, int i, int64_t ppm)
{
    /* keep the clock's current reading: it must not jump */
    sim_node *nd = &s->nodes[i];
    uint64_t before = sim_clock(s, i);
    nd->clock_ppm = ppm;
    uint64_t after = sim_clock(s, i);
    nd->clock_off += before - after;
}

void sim_lease(sim *s, int i, raft_lease_info *out)
{
    memset(out, 0, sizeof *out);
    if (!s->nodes[i].alive)
        return;
    if (!s->nodes[i].paused)
        sync_clock(s, i);
    raft_lease_get(s->nodes[i].r, out);
}

bool sim_has_lease(sim *s, int i)
{
    raft_lease_info li;
    sim_lease(s, i, &li);
    return li.lease_until > sim_clock(s, i);
}

uint64_t sim_reported(const sim *s, int i)
{
    return s->nodes[i].alive ? s->nodes[i].r->applied_rep : 0;
}

uint64_t sim_visible_max(const sim *s)
{
    return s->g_vmax;
}

uint64_t sim_lease_violations(const sim *s)
{
    return s->lease_viol;
}
