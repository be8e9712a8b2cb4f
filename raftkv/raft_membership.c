/*
 * raft_membership.c — configurations and single-server membership changes.
 *
 * Dissertation §4.1: adding or removing one server at a time keeps every
 * majority of the old configuration overlapping every majority of the new,
 * so no joint consensus is needed.  A configuration takes effect as soon as
 * its entry is appended (not when committed), on the leader and on every
 * follower; truncating the entry reverts it.  At most one change may be
 * uncommitted, and a new leader proposes none before an entry of its own term
 * is committed (the fix to the single-server algorithm published on raft-dev,
 * 2015).  A leader that removed itself keeps leading until the change is
 * committed and then steps down (§4.2.2).
 *
 * Learners (raft.h, raft_conf) are members that get the log but are not
 * counted in any quorum.  A new server joins as a learner and is promoted
 * once it has caught up, so that adding it never leaves the cluster waiting
 * on a voter that is still copying the log (§4.2.1 calls such servers
 * non-voting members).
 *
 * The leader keeps one progress slot per member other than itself, learners
 * included.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raftkv/byte.h"
#include "raftkv/raft_internal.h"

int raft_conf_find(const raft_conf *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->ids[i] == id)
            return (int)i;
    return -1;
}

const char *raft_conf_change_name(int type)
{
    switch (type) {
    case RAFT_CONF_ADD: return "add";
    case RAFT_CONF_REMOVE: return "remove";
    case RAFT_CONF_ADD_LEARNER: return "add learner";
    case RAFT_CONF_PROMOTE: return "promote";
    default: return "?";
    }
}

uint32_t raft_conf_voters(const raft_conf *c)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < c->n && i < RAFT_MAX_NODES; i++)
        if (!c->learner[i])
            v++;
    return v;
}

void raft_boot_conf(const raft_boot *b, raft_conf *out)
{
    *out = b->snapshot.conf;
    for (size_t i = 0; i < b->n_entries; i++) {
        raft_conf_change cc;
        if (b->entries[i].type == RAFT_ENTRY_CONF &&
            raft_conf_change_decode(b->entries[i].data, b->entries[i].len, &cc) == 0)
            raft_conf_apply(out, &cc);
    }
}

int raft_conf_apply(raft_conf *c, const raft_conf_change *cc)
{
    int at = raft_conf_find(c, cc->id);
    if (cc->type == RAFT_CONF_ADD || cc->type == RAFT_CONF_ADD_LEARNER) {
        if (at >= 0 || c->n >= RAFT_MAX_NODES)
            return RAFT_EINVAL;
        c->ids[c->n] = cc->id;
        memcpy(c->addrs[c->n], cc->addr, RAFT_ADDR_MAX);
        c->addrs[c->n][RAFT_ADDR_MAX - 1] = 0;
        c->learner[c->n] = cc->type == RAFT_CONF_ADD_LEARNER;
        c->n++;
        return RAFT_OK;
    }
    if (cc->type == RAFT_CONF_PROMOTE) {
        if (at < 0 || !c->learner[at])
            return RAFT_EINVAL;
        c->learner[at] = false;
        return RAFT_OK;
    }
    if (cc->type == RAFT_CONF_REMOVE) {
        if (at < 0)
            return RAFT_EINVAL;
        for (uint32_t i = (uint32_t)at; i + 1 < c->n; i++) {
            c->ids[i] = c->ids[i + 1];
            memcpy(c->addrs[i], c->addrs[i + 1], RAFT_ADDR_MAX);
            c->learner[i] = c->learner[i + 1];
        }
        c->n--;
        c->ids[c->n] = 0;
        memset(c->addrs[c->n], 0, RAFT_ADDR_MAX);
        c->learner[c->n] = false;
        return RAFT_OK;
    }
    return RAFT_EINVAL;
}

bool raft_is_voter(const raft *r, uint64_t id)
{
    int at = raft_conf_find(&r->conf, id);
    return at >= 0 && !r->conf.learner[at];
}

int raft_quorum(const raft *r)
{
    return (int)raft_conf_voters(&r->conf) / 2 + 1;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

bool raft_quorum_value(const raft *r, uint64_t *v, uint32_t n, uint64_t *out)
{
    int q = raft_quorum(r);
    if ((int)n < q)
        return false;
    qsort(v, n, sizeof v[0], cmp_desc);
    *out = v[q - 1];
    return true;
}

raft_progress *raft_progress_get(raft *r, uint64_t id)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

void raft_progress_reset(raft *r, raft_progress *p, uint64_t next)
{
    uint64_t *inflight = p->inflight;
    uint64_t id = p->id;
    memset(p, 0, sizeof *p);
    p->id = id;
    p->inflight = inflight;
    p->next = next;
    p->state = PR_PROBE;
    p->recent_active = true; /* a new peer gets a full round before check-quorum */
    (void)r;
}

/* Make the progress table match r->conf (minus ourselves), keeping the
 * progress of members that stay. */
void raft_progress_sync(raft *r)
{
    raft_progress keep[RAFT_MAX_NODES];
    uint32_t nk = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        uint64_t id = r->conf.ids[i];
        if (id == r->id)
            continue;
        raft_progress *old = raft_progress_get(r, id);
        if (old) {
            keep[nk] = *old;
        } else {
            memset(&keep[nk], 0, sizeof keep[nk]);
            keep[nk].id = id;
            keep[nk].next = raft_log_last(r) + 1;
            keep[nk].state = PR_PROBE;
            keep[nk].recent_active = true;
        }
        nk++;
    }
    /* Inflight rings are slots of one store; hand them out again in order. */
    for (uint32_t i = 0; i < nk; i++) {
        keep[i].inflight = r->inflight_store + (size_t)i * r->cfg.max_inflight * 2;
        raft_progress *old = raft_progress_get(r, keep[i].id);
        if (old && old->inflight != keep[i].inflight) {
            /* Moving slots: drop the window (the peer is probed again). */
            keep[i].in_start = keep[i].in_count = 0;
            keep[i].in_bytes = 0;
            if (keep[i].state == PR_REPLICATE) {
                keep[i].state = PR_PROBE;
                keep[i].next = keep[i].match + 1;
                keep[i].paused = false;
            }
        }
    }
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (raft_conf_find(&r->conf, r->prs[i].id) < 0)
            raft_lease_forget(r, &r->prs[i]); /* it may still serve reads */
    memcpy(r->prs, keep, nk * sizeof keep[0]);
    r->n_prs = nk;
}

void raft_conf_refresh(raft *r)
{
    raft_conf_at(r, raft_log_last(r), &r->conf, &r->conf_index);
    if (r->role == RAFT_LEADER) {
        raft_progress_sync(r);
        if (r->transferee && !raft_is_voter(r, r->transferee))
            r->transferee = 0;
    }
}

int raft_propose_conf(raft *r, const raft_conf_change *cc, uint64_t *index)
{
    if (!cc)
        return RAFT_EINVAL;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_EBUSY;
    if (r->pending_conf > r->commit)
        return RAFT_EBUSY;
    if (cc->id == 0)
        return RAFT_EINVAL;
    raft_conf c = r->conf;
    if (raft_conf_apply(&c, cc) != RAFT_OK || raft_conf_voters(&c) == 0)
        return RAFT_EINVAL;
    uint8_t buf[16 + RAFT_ADDR_MAX];
    size_t len = raft_conf_change_encode(cc, buf, sizeof buf);
    assert(len > 0);
    uint64_t idx;
    int rc = raft_append_local(r, RAFT_ENTRY_CONF, buf, len, &idx);
    if (rc != RAFT_OK)
        return rc;
    r->pending_conf = idx;
    if (index)
        *index = idx;
    return RAFT_OK;
}

/* Encoding: type (1 byte), id (8 bytes little-endian), addr length (1 byte),
 * addr bytes. */
size_t raft_conf_change_encode(const raft_conf_change *cc, uint8_t *buf, size_t cap)
{
    size_t alen = strnlen(cc->addr, RAFT_ADDR_MAX - 1);
    size_t need = 1 + 8 + 1 + alen;
    if (cap < need)
        return 0;
    buf[0] = cc->type;
    byte_put64(buf + 1, cc->id);
    buf[9] = (uint8_t)alen;
    memcpy(buf + 10, cc->addr, alen);
    return need;
}

int raft_conf_change_decode(const uint8_t *buf, size_t len, raft_conf_change *cc)
{
    if (!buf || len < 10)
        return RAFT_EINVAL;
    memset(cc, 0, sizeof *cc);
    cc->type = buf[0];
    if (cc->type < RAFT_CONF_ADD || cc->type > RAFT_CONF_PROMOTE)
        return RAFT_EINVAL;
    cc->id = byte_get64(buf + 1);
    size_t alen = buf[9];
    if (alen >= RAFT_ADDR_MAX || len != 10 + alen || cc->id == 0)
        return RAFT_EINVAL;
    memcpy(cc->addr, buf + 10, alen);
    return RAFT_OK;
}
