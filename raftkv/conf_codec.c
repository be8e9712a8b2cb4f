/* conf_codec.c — see conf_codec.h. */
#include "raftkv/conf_codec.h"

/* In the address length byte: this member is a learner. */
#define CONF_LEARNER_BIT 0x80u

bool raft_conf_put(bytes_w *w, const raft_conf *c)
{
    if (c->n > RAFT_MAX_NODES) {
        w->oom = true;
        return false;
    }
    bw_u32(w, c->n);
    for (uint32_t i = 0; i < c->n; i++) {
        size_t al = strnlen(c->addrs[i], RAFT_ADDR_MAX - 1);
        bw_u64(w, c->ids[i]);
        bw_u8(w, (uint8_t)(al | (c->learner[i] ? CONF_LEARNER_BIT : 0)));
        bw_put(w, c->addrs[i], al);
    }
    return !w->oom;
}

bool raft_conf_get(bytes_r *r, raft_conf *c)
{
    memset(c, 0, sizeof *c);
    uint32_t n = br_u32(r);
    if (r->bad || n > RAFT_MAX_NODES) {
        r->bad = true;
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        c->ids[i] = br_u64(r);
        uint8_t lb = br_u8(r);
        size_t al = lb & (uint8_t)~CONF_LEARNER_BIT;
        c->learner[i] = (lb & CONF_LEARNER_BIT) != 0;
        const uint8_t *a = al < RAFT_ADDR_MAX ? br_take(r, al) : NULL;
        if (r->bad || !a || memchr(a, 0, al)) {
            r->bad = true;
            memset(c, 0, sizeof *c);
            return false;
        }
        memcpy(c->addrs[i], a, al);
    }
    c->n = n;
    return true;
}
