/*
 * test_wire.c — the wire codec: every message type round-trips field for
 * field; truncated, extended, corrupted, forged and random input is rejected
 * with an error code (never a crash, never an out-of-bounds read: the ASan
 * build checks that); decode failures are counted.
 *
 * Random tests print their seed; HSTORE_TEST_SEED=N replays one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "net/auth.h"
#include "net/wire.h"
#include "raftkv/crc32c.h"

/* ---- helpers ---- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    /* splitmix64: small, seedable, good enough for test data */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t test_seed(void)
{
    const char *s = getenv("HSTORE_TEST_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
    return seed;
}

static int rounds(int normal)
{
    const char *m = getenv("HSTORE_TEST_MODE");
    if (m && strcmp(m, "long") == 0)
        return normal * 20;
    if (m && strcmp(m, "asan") == 0)
        return normal / 4 > 0 ? normal / 4 : 1;
    return normal;
}

/* Builds a frame with a correct header and checksum around any payload, so
 * tests can reach the payload decoder with forged contents. */
static size_t mkframe(uint8_t type, const uint8_t *payload, size_t plen, uint8_t *out)
{
    uint32_t magic = NET_MAGIC, len = (uint32_t)plen, crc = crc32c(0, payload, plen);
    for (int i = 0; i < 4; i++) {
        out[i] = (uint8_t)(magic >> (8 * i));
        out[8 + i] = (uint8_t)(len >> (8 * i));
        out[12 + i] = (uint8_t)(crc >> (8 * i));
    }
    out[4] = NET_VERSION;
    out[5] = type;
    out[6] = out[7] = 0;
    if (plen)
        memcpy(out + NET_HDR_LEN, payload, plen);
    return NET_HDR_LEN + plen;
}

/* Recomputes the checksum of an encoded frame after a test edited its payload. */
static void refresh_crc(uint8_t *f, size_t len)
{
    uint32_t crc = crc32c(0, f + NET_HDR_LEN, len - NET_HDR_LEN);
    for (int i = 0; i < 4; i++)
        f[12 + i] = (uint8_t)(crc >> (8 * i));
}

/* Decodes with the decoder for `type`; returns its code and, when it
 * succeeded, re-encodes into *re (for the canonical-encoding check). */
static int decode_any(uint8_t type, const uint8_t *buf, size_t len, net_buf *re)
{
    int rc;
    switch (type) {
    case NET_MSG_RAFT: {
        raft_msg m;
        rc = net_decode_raft(buf, len, &m);
        if (rc == 0) {
            if (re)
                assert_int_equal(net_encode_raft(&m, re), 0);
            net_raft_msg_free(&m);
        }
        return rc;
    }
    case NET_MSG_CLIENT_REQ: {
        net_client_req q;
        rc = net_decode_client_req(buf, len, &q);
        if (rc == 0 && re)
            assert_int_equal(net_encode_client_req(&q, re), 0);
        return rc;
    }
    case NET_MSG_CLIENT_RESP: {
        net_client_resp s;
        rc = net_decode_client_resp(buf, len, &s);
        if (rc == 0 && re)
            assert_int_equal(net_encode_client_resp(&s, re), 0);
        return rc;
    }
    case NET_MSG_STATUS_REQ: {
        uint64_t id;
        rc = net_decode_status_req(buf, len, &id);
        if (rc == 0 && re)
            assert_int_equal(net_encode_status_req(id, re), 0);
        return rc;
    }
    case NET_MSG_STATUS_RESP: {
        net_status_resp *s = malloc(sizeof(*s));
        assert_non_null(s);
        rc = net_decode_status_resp(buf, len, s);
        if (rc == 0 && re)
            assert_int_equal(net_encode_status_resp(s, re), 0);
        free(s);
        return rc;
    }
    case NET_MSG_HELLO: {
        uint8_t nonce[NET_NONCE_LEN];
        rc = net_decode_hello(buf, len, nonce);
        if (rc == 0 && re)
            assert_int_equal(net_encode_hello(nonce, re), 0);
        return rc;
    }
    case NET_MSG_HELLO_ACK: {
        uint8_t nonce[NET_NONCE_LEN];
        uint64_t id;
        rc = net_decode_hello_ack(buf, len, &id, nonce);
        if (rc == 0 && re)
            assert_int_equal(net_encode_hello_ack(id, nonce, re), 0);
        return rc;
    }
    case NET_MSG_ERROR: {
        uint8_t code;
        rc = net_decode_error(buf, len, &code);
        if (rc == 0 && re)
            assert_int_equal(net_encode_error(code, re), 0);
        return rc;
    }
    case NET_MSG_SNAP_REQ: {
        net_snap_req q;
        rc = net_decode_snap_req(buf, len, &q);
        if (rc == 0 && re)
            assert_int_equal(net_encode_snap_req(&q, re), 0);
        return rc;
    }
    case NET_MSG_SNAP_RESP: {
        net_snap_resp s;
        rc = net_decode_snap_resp(buf, len, &s);
        if (rc == 0 && re)
            assert_int_equal(net_encode_snap_resp(&s, re), 0);
        return rc;
    }
    case NET_MSG_MEMBER_REQ: {
        net_member_req q;
        rc = net_decode_member_req(buf, len, &q);
        if (rc == 0 && re)
            assert_int_equal(net_encode_member_req(&q, re), 0);
        return rc;
    }
    case NET_MSG_MEMBER_RESP: {
        net_member_resp s;
        rc = net_decode_member_resp(buf, len, &s);
        if (rc == 0 && re)
            assert_int_equal(net_encode_member_resp(&s, re), 0);
        return rc;
    }
    default: fail_msg("bad type %d", type); return -1;
    }
}

static void assert_conf_equal(const raft_conf *a, const raft_conf *b)
{
    assert_int_equal(a->n, b->n);
    for (uint32_t i = 0; i < a->n; i++) {
        assert_int_equal(a->ids[i], b->ids[i]);
        assert_string_equal(a->addrs[i], b->addrs[i]);
    }
}

/* A message with every field set to a distinct value. */
static uint8_t ent_data[3][40];
static raft_entry ents[3];
static uint8_t chunk[333];

static void fill_conf(raft_conf *c, int n)
{
    memset(c, 0, sizeof(*c));
    c->n = (uint32_t)n;
    for (int i = 0; i < n; i++) {
        c->ids[i] = 100 + (uint64_t)i;
        snprintf(c->addrs[i], RAFT_ADDR_MAX, "127.0.0.%d:%d", i + 1, 7000 + 2 * i);
    }
}

static void full_raft_msg(raft_msg *m, uint8_t type)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = 0x0102030405060708ull;
    m->to = 2;
    m->term = 77;
    m->index = 1000;
    m->log_term = 76;
    m->commit = 999;
    m->reject = true;
    m->hint_term = 70;
    m->hint_index = 900;
    m->transfer = true;
    m->ctx = UINT64_MAX;
    for (int i = 0; i < 3; i++) {
        memset(ent_data[i], 'a' + i, sizeof(ent_data[i]));
        ents[i].term = 76 + (uint64_t)i;
        ents[i].index = 1001 + (uint64_t)i;
        ents[i].type = (uint8_t)i;
        ents[i].len = i == 1 ? 0 : (uint32_t)(10 * (i + 1));
        ents[i].data = i == 1 ? NULL : ent_data[i];
    }
    m->n_entries = 3;
    m->entries = ents;
    m->offset = 1 << 20;
    m->snap_len = 5 << 20;
    m->done = true;
    fill_conf(&m->conf, 5);
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)(i * 7);
    m->chunk_len = sizeof(chunk);
    m->chunk = chunk;
    m->lease_t = 0x1111222233334444ull;
    m->resp_t = 5;
    m->grant_resp_t = UINT64_MAX;
    m->grant_ms = 900;
    m->visible = 998;
    m->applied = 997;
}

static void full_status(net_status_resp *s)
{
    memset(s, 0, sizeof(*s));
    s->req_id = 4242;
    strcpy(s->addr, "10.0.0.3:7004");
    raft_status *st = &s->st;
    st->id = 3;
    st->role = RAFT_LEADER;
    st->term = 9;
    st->vote = 3;
    st->leader = 3;
    st->commit = 120;
    st->applied = 119;
    st->first_index = 50;
    st->last_index = 121;
    st->snapshot_index = 49;
    fill_conf(&st->conf, RAFT_MAX_NODES);
    st->n_peers = 4;
    for (int i = 0; i < 4; i++) {
        st->peers[i].id = (uint64_t)i + 1;
        st->peers[i].match = 100 + (uint64_t)i;
        st->peers[i].next = 101 + (uint64_t)i;
        st->peers[i].state = i % 3;
        st->peers[i].active = i & 1;
    }
}

/* One valid encoding of each message type, for the rejection tests. */

static size_t sample_frame(uint8_t type, net_buf *b)
{
    int rc = -1;
    switch (type) {
    case NET_MSG_RAFT: {
        raft_msg m;
        full_raft_msg(&m, RAFT_MSG_APPEND);
        rc = net_encode_raft(&m, b);
        break;
    }
    case NET_MSG_CLIENT_REQ: {
        net_client_req q = {.client_id = 5,
                            .seq = 6,
                            .req_id = 7,
                            .flags = NET_REQ_READ,
                            .op = (const uint8_t *)"GET key",
                            .op_len = 7};
        rc = net_encode_client_req(&q, b);
        break;
    }
    case NET_MSG_CLIENT_RESP: {
        net_client_resp s = {.req_id = 7,
                             .status = NET_ST_OK,
                             .leader_id = 2,
                             .reply = (const uint8_t *)"value",
                             .reply_len = 5};
        strcpy(s.leader_addr, "127.0.0.2:7001");
        rc = net_encode_client_resp(&s, b);
        break;
    }
    case NET_MSG_STATUS_REQ: rc = net_encode_status_req(99, b); break;
    case NET_MSG_STATUS_RESP: {
        net_status_resp s;
        full_status(&s);
        rc = net_encode_status_resp(&s, b);
        break;
    }
    case NET_MSG_HELLO: {
        uint8_t nonce[NET_NONCE_LEN];
        for (int i = 0; i < NET_NONCE_LEN; i++)
            nonce[i] = (uint8_t)(i * 13 + 1);
        rc = net_encode_hello(nonce, b);
        break;
    }
    case NET_MSG_HELLO_ACK: {
        uint8_t nonce[NET_NONCE_LEN];
        for (int i = 0; i < NET_NONCE_LEN; i++)
            nonce[i] = (uint8_t)(i * 29 + 3);
        rc = net_encode_hello_ack(7, nonce, b);
        break;
    }
    case NET_MSG_ERROR: rc = net_encode_error(NET_REFUSE_AUTH, b); break;
    case NET_MSG_SNAP_REQ: {
        net_snap_req q = {
            .req_id = 5, .kind = NET_SNAP_READ, .index = 77, .offset = 1 << 20, .len = 4096};
        rc = net_encode_snap_req(&q, b);
        break;
    }
    case NET_MSG_SNAP_RESP: {
        net_snap_resp s = {.req_id = 6,
                           .status = NET_ST_OK,
                           .index = 77,
                           .term = 3,
                           .total = 123456,
                           .data = chunk,
                           .data_len = 100};
        rc = net_encode_snap_resp(&s, b);
        break;
    }
    case NET_MSG_MEMBER_REQ: {
        net_member_req q = {.req_id = 7, .op = NET_MEMBER_ADD, .id = 4, .timeout_ms = 1000};
        snprintf(q.addr, sizeof q.addr, "127.0.0.1:7106");
        rc = net_encode_member_req(&q, b);
        break;
    }
    case NET_MSG_MEMBER_RESP: {
        net_member_resp r;
        memset(&r, 0, sizeof r);
        r.req_id = 8;
        r.leader_id = 1;
        snprintf(r.leader_addr, sizeof r.leader_addr, "127.0.0.1:7101");
        snprintf(r.msg, sizeof r.msg, "4 members");
        fill_conf(&r.conf, 4);
        r.conf.learner[3] = true;
        rc = net_encode_member_resp(&r, b);
        break;
    }
    }
    assert_int_equal(rc, 0);
    return b->len;
}

/* ---- round trips ---- */

static void test_raft_roundtrip_every_type(void **state)
{
    (void)state;
    net_buf b = {0};
    for (uint8_t t = 1; t < RAFT_MSG_TYPE_MAX; t++) {
        raft_msg in, out;
        full_raft_msg(&in, t);
        in.reject = t & 1;
        in.transfer = t & 2;
        in.done = t & 4;
        assert_int_equal(net_encode_raft(&in, &b), 0);
        assert_int_equal(net_frame_check(b.p, b.len, NULL), NET_MSG_RAFT);
        assert_int_equal(net_decode_raft(b.p, b.len, &out), 0);
        assert_int_equal(out.type, t);
        assert_int_equal(out.from, in.from);
        assert_int_equal(out.to, in.to);
        assert_int_equal(out.term, in.term);
        assert_int_equal(out.index, in.index);
        assert_int_equal(out.log_term, in.log_term);
        assert_int_equal(out.commit, in.commit);
        assert_int_equal(out.reject, in.reject);
        assert_int_equal(out.hint_term, in.hint_term);
        assert_int_equal(out.hint_index, in.hint_index);
        assert_int_equal(out.transfer, in.transfer);
        assert_int_equal(out.ctx, in.ctx);
        assert_int_equal(out.offset, in.offset);
        assert_int_equal(out.snap_len, in.snap_len);
        assert_int_equal(out.done, in.done);
        assert_conf_equal(&out.conf, &in.conf);
        assert_int_equal(out.n_entries, 3);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(out.entries[i].term, ents[i].term);
            assert_int_equal(out.entries[i].index, ents[i].index);
            assert_int_equal(out.entries[i].type, ents[i].type);
            assert_int_equal(out.entries[i].len, ents[i].len);
            if (ents[i].len)
                assert_memory_equal(out.entries[i].data, ents[i].data, ents[i].len);
            else
                assert_null(out.entries[i].data);
            /* zero-copy: entry bytes live in the input buffer */
            if (ents[i].len)
                assert_true(out.entries[i].data > b.p && out.entries[i].data < b.p + b.len);
        }
        assert_int_equal(out.chunk_len, sizeof(chunk));
        assert_memory_equal(out.chunk, chunk, sizeof(chunk));
        /* the read-lease fields travel with APPEND and APPEND_RESP only */
        bool lease = t == RAFT_MSG_APPEND || t == RAFT_MSG_APPEND_RESP;
        assert_int_equal(out.lease_t, lease ? in.lease_t : 0);
        assert_int_equal(out.resp_t, lease ? in.resp_t : 0);
        assert_int_equal(out.grant_resp_t, lease ? in.grant_resp_t : 0);
        assert_int_equal(out.grant_ms, lease ? in.grant_ms : 0);
        assert_int_equal(out.visible, lease ? in.visible : 0);
        assert_int_equal(out.applied, lease ? in.applied : 0);
        net_raft_msg_free(&out);
        assert_null(out.entries);
    }
    net_buf_free(&b);
}

static void test_raft_heartbeat_minimal(void **state)
{
    (void)state;
    raft_msg in = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 3, .commit = 4};
    raft_msg out;
    net_buf b = {0};
    assert_int_equal(net_encode_raft(&in, &b), 0);
    assert_int_equal(net_decode_raft(b.p, b.len, &out), 0);
    assert_int_equal(out.n_entries, 0);
    assert_null(out.entries);
    assert_null(out.chunk);
    assert_int_equal(out.conf.n, 0);
    assert_int_equal(out.commit, 4);
    assert_false(out.reject);
    net_raft_msg_free(&out);
    /* a heartbeat stays small: it is the most frequent message */
    assert_true(b.len < 160);
    net_buf_free(&b);
}

/* Read-lease fields: absent (the frame as before leases) when all are 0, one
 * fixed block after the chunk otherwise; the block is bounds-checked and
 * refused on message types that never carry it. */
static void test_raft_lease_fields(void **state)
{
    (void)state;
    net_buf b = {0};
    raft_msg in = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 3, .commit = 4};
    raft_msg out;
    assert_int_equal(net_encode_raft(&in, &b), 0);
    size_t plain = b.len;
    in.visible = 4; /* one field set: the whole block goes */
    assert_int_equal(net_encode_raft(&in, &b), 0);
    assert_int_equal(b.len, plain + 48);
    assert_int_equal(net_decode_raft(b.p, b.len, &out), 0);
    assert_int_equal(out.visible, 4);
    assert_int_equal(out.lease_t, 0);
    net_raft_msg_free(&out);

    in.type = RAFT_MSG_APPEND_RESP;
    in.lease_t = 1000;
    in.resp_t = 77777;
    in.grant_resp_t = 0;
    in.grant_ms = 0;
    in.applied = 3;
    assert_int_equal(net_encode_raft(&in, &b), 0);
    assert_int_equal(net_decode_raft(b.p, b.len, &out), 0);
    assert_int_equal(out.lease_t, 1000);
    assert_int_equal(out.resp_t, 77777);
    assert_int_equal(out.applied, 3);
    assert_int_equal(out.visible, 4);
    net_raft_msg_free(&out);

    /* the block cut short, with a header that agrees: truncated */
    uint8_t fr[512];
    size_t pl = b.len - NET_HDR_LEN;
    for (size_t cut = 1; cut <= 48; cut++) {
        size_t n = mkframe(NET_MSG_RAFT, b.p + NET_HDR_LEN, pl - cut, fr);
        assert_int_equal(net_decode_raft(fr, n, &out), NET_ETRUNC);
        assert_null(out.entries);
    }
    /* the lease flag on a type that never carries the block */
    memcpy(fr, b.p + NET_HDR_LEN, pl);
    fr[0] = RAFT_MSG_VOTE;
    uint8_t f2[512];
    size_t n = mkframe(NET_MSG_RAFT, fr, pl, f2);
    assert_int_equal(net_decode_raft(f2, n, &out), NET_EMALFORMED);
    /* a VOTE's lease fields are not encoded at all */
    in.type = RAFT_MSG_VOTE;
    assert_int_equal(net_encode_raft(&in, &b), 0);
    assert_int_equal(b.len, plain);
    net_buf_free(&b);
}

static void test_client_roundtrip(void **state)
{
    (void)state;
    net_buf b = {0};
    uint8_t op[1000];
    for (size_t i = 0; i < sizeof(op); i++)
        op[i] = (uint8_t)(i ^ 0x5a);
    for (int flags = 0; flags <= 1; flags++) {
        net_client_req q = {.client_id = 0xdeadbeefcafef00dull,
                            .seq = 12345,
                            .req_id = 678,
                            .flags = (uint8_t)flags,
                            .op = op,
                            .op_len = sizeof(op)},
                       r;
        assert_int_equal(net_encode_client_req(&q, &b), 0);
        assert_int_equal(net_frame_check(b.p, b.len, NULL), NET_MSG_CLIENT_REQ);
        assert_int_equal(net_decode_client_req(b.p, b.len, &r), 0);
        assert_int_equal(r.client_id, q.client_id);
        assert_int_equal(r.seq, q.seq);
        assert_int_equal(r.req_id, q.req_id);
        assert_int_equal(r.flags, q.flags);
        assert_int_equal(r.op_len, sizeof(op));
        assert_memory_equal(r.op, op, sizeof(op));
    }
    /* empty op */
    net_client_req q0 = {.client_id = 1, .seq = 2, .req_id = 3}, r0;
    assert_int_equal(net_encode_client_req(&q0, &b), 0);
    assert_int_equal(net_decode_client_req(b.p, b.len, &r0), 0);
    assert_int_equal(r0.op_len, 0);
    assert_null(r0.op);

    for (uint8_t st = 0; st < NET_ST_MAX; st++) {
        net_client_resp s = {.req_id = 1000 + st,
                             .status = st,
                             .leader_id = st,
                             .reply = op,
                             .reply_len = st * 100u},
                        r;
        snprintf(s.leader_addr, sizeof(s.leader_addr), st ? "node%d.example:%d" : "", st,
                 7001 + st);
        assert_int_equal(net_encode_client_resp(&s, &b), 0);
        assert_int_equal(net_decode_client_resp(b.p, b.len, &r), 0);
        assert_int_equal(r.req_id, s.req_id);
        assert_int_equal(r.status, st);
        assert_int_equal(r.leader_id, st);
        assert_string_equal(r.leader_addr, s.leader_addr);
        assert_int_equal(r.reply_len, s.reply_len);
        if (s.reply_len)
            assert_memory_equal(r.reply, op, s.reply_len);
    }
    net_buf_free(&b);
}

static void test_status_roundtrip(void **state)
{
    (void)state;
    net_buf b = {0};
    uint64_t id = 0;
    assert_int_equal(net_encode_status_req(0x1122334455667788ull, &b), 0);
    assert_int_equal(net_decode_status_req(b.p, b.len, &id), 0);
    assert_int_equal(id, 0x1122334455667788ull);

    net_status_resp in, out;
    full_status(&in);
    assert_int_equal(net_encode_status_resp(&in, &b), 0);
    assert_int_equal(net_decode_status_resp(b.p, b.len, &out), 0);
    assert_int_equal(out.req_id, in.req_id);
    assert_string_equal(out.addr, in.addr);
    const raft_status *a = &in.st, *c = &out.st;
    assert_int_equal(c->id, a->id);
    assert_int_equal(c->role, a->role);
    assert_int_equal(c->term, a->term);
    assert_int_equal(c->vote, a->vote);
    assert_int_equal(c->leader, a->leader);
    assert_int_equal(c->commit, a->commit);
    assert_int_equal(c->applied, a->applied);
    assert_int_equal(c->first_index, a->first_index);
    assert_int_equal(c->last_index, a->last_index);
    assert_int_equal(c->snapshot_index, a->snapshot_index);
    assert_conf_equal(&c->conf, &a->conf);
    assert_int_equal(c->n_peers, a->n_peers);
    for (uint32_t i = 0; i < a->n_peers; i++) {
        assert_int_equal(c->peers[i].id, a->peers[i].id);
        assert_int_equal(c->peers[i].match, a->peers[i].match);
        assert_int_equal(c->peers[i].next, a->peers[i].next);
        assert_int_equal(c->peers[i].state, a->peers[i].state);
        assert_int_equal(c->peers[i].active, a->peers[i].active);
    }
    net_buf_free(&b);
}

/* A backup's snapshot ranges: every field round trips; a chunk over
 * NET_SNAP_CHUNK_MAX or an unknown kind is refused by both sides. */
static void test_snap_roundtrip(void **state)
{
    (void)state;
    net_buf b = {0};
    net_snap_req q = {.req_id = 9, .kind = NET_SNAP_BEGIN, .index = 1, .offset = 2, .len = 3}, q2;
    assert_int_equal(net_encode_snap_req(&q, &b), 0);
    assert_int_equal(net_decode_snap_req(b.p, b.len, &q2), 0);
    assert_memory_equal(&q, &q2, sizeof q);
    q.kind = 3;
    assert_int_equal(net_encode_snap_req(&q, &b), NET_EINVAL);
    q.kind = NET_SNAP_READ;
    q.len = NET_SNAP_CHUNK_MAX + 1;
    assert_int_equal(net_encode_snap_req(&q, &b), NET_EINVAL);
    uint8_t *big = calloc(1, NET_SNAP_CHUNK_MAX + 1);
    assert_non_null(big);
    big[7] = 7;
    net_snap_resp s = {.req_id = 10,
                       .status = NET_ST_UNAVAILABLE,
                       .index = UINT64_MAX,
                       .term = 4,
                       .total = 5,
                       .data = big,
                       .data_len = NET_SNAP_CHUNK_MAX},
                  s2;
    assert_int_equal(net_encode_snap_resp(&s, &b), 0);
    assert_int_equal(net_decode_snap_resp(b.p, b.len, &s2), 0);
    assert_int_equal(s2.req_id, 10);
    assert_int_equal(s2.status, NET_ST_UNAVAILABLE);
    assert_true(s2.index == UINT64_MAX);
    assert_int_equal(s2.term, 4);
    assert_int_equal(s2.total, 5);
    assert_int_equal(s2.data_len, NET_SNAP_CHUNK_MAX);
    assert_memory_equal(s2.data, big, NET_SNAP_CHUNK_MAX);
    s.data_len = NET_SNAP_CHUNK_MAX + 1;
    assert_int_equal(net_encode_snap_resp(&s, &b), NET_EINVAL);
    free(big);
    net_buf_free(&b);
}

/* ---- rejection ---- */

static void test_truncated_rejected_at_every_length(void **state)
{
    (void)state;
    net_buf b = {0};
    for (uint8_t t = 1; t < NET_MSG_TYPE_MAX; t++) {
        size_t n = sample_frame(t, &b);
        /* a copy of exactly each prefix length, so ASan sees any over-read */
        for (size_t l = 0; l < n; l++) {
            uint8_t *p = malloc(l ? l : 1);
            assert_non_null(p);
            memcpy(p, b.p, l);
            int rc = decode_any(t, p, l, NULL);
            if (rc >= 0)
                fail_msg("type %d accepted a %zu-byte prefix of a %zu-byte frame", t, l, n);
            assert_true(rc == NET_ETRUNC);
            free(p);
        }
        /* one byte too many is just as wrong */
        uint8_t *p = malloc(n + 1);
        memcpy(p, b.p, n);
        p[n] = 0;
        assert_int_equal(decode_any(t, p, n + 1, NULL), NET_ELENGTH);
        free(p);
    }
    net_buf_free(&b);
}

static void test_flipped_byte_detected(void **state)
{
    (void)state;
    net_buf b = {0};
    for (uint8_t t = 1; t < NET_MSG_TYPE_MAX; t++) {
        size_t n = sample_frame(t, &b);
        for (size_t pos = 0; pos < n; pos++) {
            for (int bit = 0; bit < 8; bit += 3) {
                b.p[pos] ^= (uint8_t)(1 << bit);
                int rc = decode_any(t, b.p, n, NULL);
                if (rc >= 0)
                    fail_msg("type %d: flipping bit %d of byte %zu went unnoticed", t, bit, pos);
                /* in the payload, only the checksum can catch it */
                if (pos >= NET_HDR_LEN)
                    assert_int_equal(rc, NET_ECHECKSUM);
                if (pos >= 12 && pos < 16)
                    assert_int_equal(rc, NET_ECHECKSUM);
                if (pos < 4)
                    assert_int_equal(rc, NET_EMAGIC);
                if (pos == 4)
                    assert_int_equal(rc, NET_EVERSION);
                b.p[pos] ^= (uint8_t)(1 << bit);
            }
        }
        assert_int_equal(decode_any(t, b.p, n, NULL), 0);
    }
    net_buf_free(&b);
}

static void test_wrong_type_rejected(void **state)
{
    (void)state;
    net_buf b = {0};
    for (uint8_t t = 1; t < NET_MSG_TYPE_MAX; t++) {
        size_t n = sample_frame(t, &b);
        for (uint8_t u = 1; u < NET_MSG_TYPE_MAX; u++)
            if (u != t)
                assert_int_equal(decode_any(u, b.p, n, NULL), NET_ETYPE);
        /* an unknown type in the header */
        b.p[5] = NET_MSG_TYPE_MAX;
        assert_int_equal(net_frame_check(b.p, n, NULL), NET_ETYPE);
        b.p[5] = 0;
        assert_int_equal(net_frame_check(b.p, n, NULL), NET_ETYPE);
    }
    net_buf_free(&b);
}

/* Payload offsets in a RAFT frame (see wire.c): type 1, six u64, flags 1,
 * five u64 = 90 bytes, then the conf (conf_codec.h: count u32, then per
 * member id u64, address length u8, address), then the entry count. */
#define RAFT_CONF_OFF 90
#define RAFT_ENTRIES_OFF (RAFT_CONF_OFF + 4) /* after a conf of no members */

static void test_forged_counts_rejected(void **state)
{
    (void)state;
    uint8_t pl[256], fr[512];
    memset(pl, 0, sizeof(pl));
    pl[0] = RAFT_MSG_APPEND;
    /* conf count above RAFT_MAX_NODES */
    pl[RAFT_CONF_OFF] = RAFT_MAX_NODES + 1;
    size_t n = mkframe(NET_MSG_RAFT, pl, 200, fr);
    raft_msg m;
    assert_int_equal(net_decode_raft(fr, n, &m), NET_EMALFORMED);
    /* ... also when only its high byte is set */
    pl[RAFT_CONF_OFF] = 0;
    pl[RAFT_CONF_OFF + 3] = 0x80;
    n = mkframe(NET_MSG_RAFT, pl, 200, fr);
    assert_int_equal(net_decode_raft(fr, n, &m), NET_EMALFORMED);
    pl[RAFT_CONF_OFF + 3] = 0;

    /* entry count of 2^32-1 with a few bytes behind it: rejected before any
     * allocation (ASan would flag a multi-GiB calloc) */
    memset(pl + RAFT_ENTRIES_OFF, 0xff, 4);
    n = mkframe(NET_MSG_RAFT, pl, RAFT_ENTRIES_OFF + 4 + 40, fr);
    assert_int_equal(net_decode_raft(fr, n, &m), NET_EMALFORMED);
    assert_null(m.entries);

    /* count of 1 entry whose length claims more bytes than remain */
    memset(pl + RAFT_ENTRIES_OFF, 0, 4);
    pl[RAFT_ENTRIES_OFF] = 1;
    size_t e = RAFT_ENTRIES_OFF + 4;
    memset(pl + e, 0, 17); /* term, index, type NORMAL */
    pl[e + 17] = 0xff;
    pl[e + 18] = 0xff;
    pl[e + 19] = 0;
    pl[e + 20] = 0; /* len 65535 */
    n = mkframe(NET_MSG_RAFT, pl, e + 21 + 10, fr);
    assert_int_equal(net_decode_raft(fr, n, &m), NET_ETRUNC);

    /* an entry type the core does not know */
    pl[e + 16] = 9;
    pl[e + 17] = pl[e + 18] = 0;
    memset(pl + e + 21, 0, 4); /* chunk_len 0 */
    n = mkframe(NET_MSG_RAFT, pl, e + 25, fr);
    assert_int_equal(net_decode_raft(fr, n, &m), NET_EMALFORMED);
    pl[e + 16] = RAFT_ENTRY_NOOP;
    n = mkframe(NET_MSG_RAFT, pl, e + 25, fr);
    assert_int_equal(net_decode_raft(fr, n, &m), 0); /* the same frame, fixed, is fine */
    assert_int_equal(m.n_entries, 1);
    net_raft_msg_free(&m);

    /* unknown raft message type and unknown flag bits */
    pl[0] = RAFT_MSG_TYPE_MAX;
    n = mkframe(NET_MSG_RAFT, pl, e + 25, fr);
    assert_int_equal(net_decode_raft(fr, n, &m), NET_EMALFORMED);
    pl[0] = RAFT_MSG_VOTE;
    pl[49] = 0x80; /* flags byte: 1 + 6*8 */
    n = mkframe(NET_MSG_RAFT, pl, e + 25, fr);
    assert_int_equal(net_decode_raft(fr, n, &m), NET_EMALFORMED);

    /* a header that announces more than NET_MAX_PAYLOAD */
    uint8_t h[NET_HDR_LEN + 8];
    mkframe(NET_MSG_STATUS_REQ, pl, 8, h);
    h[11] = 0x7f;
    assert_int_equal(net_frame_check(h, sizeof(h), NULL), NET_ELENGTH);
    /* non-zero reserved flags */
    mkframe(NET_MSG_STATUS_REQ, pl, 8, h);
    h[6] = 1;
    assert_int_equal(net_frame_check(h, sizeof(h), NULL), NET_EMALFORMED);

    /* client response: leader address longer than NET_ADDR_MAX - 1, and
     * one with an embedded NUL */
    net_buf b = {0};
    net_client_resp s = {.req_id = 1, .leader_id = 2};
    strcpy(s.leader_addr, "abc");
    assert_int_equal(net_encode_client_resp(&s, &b), 0);
    b.p[NET_HDR_LEN + 17] = NET_ADDR_MAX; /* string length byte */
    refresh_crc(b.p, b.len);
    net_client_resp r;
    assert_true(net_decode_client_resp(b.p, b.len, &r) < 0);
    assert_int_equal(net_encode_client_resp(&s, &b), 0);
    b.p[NET_HDR_LEN + 19] = 0;
    refresh_crc(b.p, b.len);
    assert_int_equal(net_decode_client_resp(b.p, b.len, &r), NET_EMALFORMED);
    /* bad status, unknown request flag */
    assert_int_equal(net_encode_client_resp(&s, &b), 0);
    b.p[NET_HDR_LEN + 8] = NET_ST_MAX;
    refresh_crc(b.p, b.len);
    assert_int_equal(net_decode_client_resp(b.p, b.len, &r), NET_EMALFORMED);
    net_client_req q = {.client_id = 1}, qq;
    assert_int_equal(net_encode_client_req(&q, &b), 0);
    b.p[NET_HDR_LEN + 24] = 0x04; /* not a NET_REQ_* flag */
    refresh_crc(b.p, b.len);
    assert_int_equal(net_decode_client_req(b.p, b.len, &qq), NET_EMALFORMED);
    net_buf_free(&b);
}

/* A configuration that does not decode makes the whole frame malformed:
 * an address as long as RAFT_ADDR_MAX, an address holding a NUL, a member
 * count past the members present; in a RAFT frame and in a STATUS_RESP. */
static void test_malformed_conf_rejected(void **state)
{
    (void)state;
    net_buf b = {0};
    raft_msg in = {.type = RAFT_MSG_SNAPSHOT}, m;
    fill_conf(&in.conf, 2);
    size_t al = strlen(in.conf.addrs[0]);
    /* member 0: id at +4, address length at +12, address at +13 */
    size_t c = NET_HDR_LEN + RAFT_CONF_OFF;
    assert_int_equal(net_encode_raft(&in, &b), 0);
    assert_int_equal(b.p[c], 2);
    assert_int_equal(b.p[c + 12], al);
    assert_int_equal(net_decode_raft(b.p, b.len, &m), 0);
    assert_conf_equal(&m.conf, &in.conf);
    net_raft_msg_free(&m);

    b.p[c + 12] = RAFT_ADDR_MAX; /* too long to hold with its NUL */
    refresh_crc(b.p, b.len);
    assert_int_equal(net_decode_raft(b.p, b.len, &m), NET_EMALFORMED);
    assert_null(m.entries);
    assert_int_equal(m.conf.n, 0);

    assert_int_equal(net_encode_raft(&in, &b), 0);
    b.p[c + 13 + 2] = 0; /* a NUL inside the address */
    refresh_crc(b.p, b.len);
    assert_int_equal(net_decode_raft(b.p, b.len, &m), NET_EMALFORMED);

    assert_int_equal(net_encode_raft(&in, &b), 0);
    b.p[c] = 3; /* more members than the frame holds */
    refresh_crc(b.p, b.len);
    assert_int_equal(net_decode_raft(b.p, b.len, &m), NET_EMALFORMED);
    assert_int_equal(m.conf.n, 0);

    /* the status answer carries a conf too (after req_id, addr, ten fields) */
    net_status_resp st, out;
    full_status(&st);
    assert_int_equal(net_encode_status_resp(&st, &b), 0);
    size_t sc = NET_HDR_LEN + 8 + 1 + strlen(st.addr) + 8 + 1 + 8 * 8;
    assert_int_equal(b.p[sc], RAFT_MAX_NODES);
    b.p[sc + 12] = 0xff;
    refresh_crc(b.p, b.len);
    assert_int_equal(net_decode_status_resp(b.p, b.len, &out), NET_EMALFORMED);
    assert_int_equal(net_encode_status_resp(&st, &b), 0);
    b.p[sc + 1] = 1; /* a count of 2^8 + RAFT_MAX_NODES */
    refresh_crc(b.p, b.len);
    assert_int_equal(net_decode_status_resp(b.p, b.len, &out), NET_EMALFORMED);
    net_buf_free(&b);
}

static void test_encoder_rejects_unrepresentable(void **state)
{
    (void)state;
    net_buf b = {0};
    raft_msg m = {.type = RAFT_MSG_APPEND};
    m.conf.n = RAFT_MAX_NODES + 1;
    assert_int_equal(net_encode_raft(&m, &b), NET_EINVAL);
    assert_int_equal(b.len, 0);
    m.conf.n = 1;
    memset(m.conf.addrs[0], 'x', RAFT_ADDR_MAX); /* no terminator */
    assert_int_equal(net_encode_raft(&m, &b), NET_EINVAL);
    m.conf.n = 0;
    m.type = 0;
    assert_int_equal(net_encode_raft(&m, &b), NET_EINVAL);
    m.type = RAFT_MSG_APPEND;
    m.n_entries = 2; /* entries NULL */
    assert_int_equal(net_encode_raft(&m, &b), NET_EINVAL);
    net_client_req q = {.flags = 0x80};
    assert_int_equal(net_encode_client_req(&q, &b), NET_EINVAL);
    net_client_resp s = {.status = NET_ST_MAX};
    assert_int_equal(net_encode_client_resp(&s, &b), NET_EINVAL);
    net_buf_free(&b);
}

/* Random bytes: rejected.  Random payloads under a valid header and checksum
 * reach the field decoders; those that decode must re-encode to the very
 * same bytes (the encoding is canonical, so nothing was misread). */
static void test_random_input(void **state)
{
    (void)state;
    uint64_t seed = test_seed();
    rng_state = seed;
    printf("test_random_input: seed %llu (HSTORE_TEST_SEED to replay)\n", (unsigned long long)seed);
    int n = rounds(20000);
    uint8_t buf[600], fr[700];
    net_buf re = {0}, sample = {0};
    int accepted = 0;
    for (int i = 0; i < n; i++) {
        size_t len = rnd() % sizeof(buf);
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)rnd();
        uint8_t t = (uint8_t)(1 + rnd() % (NET_MSG_TYPE_MAX - 1));
        assert_true(decode_any(t, buf, len, NULL) < 0);
        /* mutate a valid sample, then give it a correct checksum */
        size_t sl = sample_frame(t, &sample);
        if (sl - NET_HDR_LEN > sizeof(buf))
            sl = NET_HDR_LEN + sizeof(buf);
        memcpy(buf, sample.p + NET_HDR_LEN, sl - NET_HDR_LEN);
        size_t pl = sl - NET_HDR_LEN;
        int muts = 1 + (int)(rnd() % 4);
        for (int k = 0; k < muts && pl; k++)
            buf[rnd() % pl] = (uint8_t)rnd();
        if (rnd() % 4 == 0)
            pl = rnd() % (pl + 1);
        size_t fl = mkframe(t, buf, pl, fr);
        int rc = decode_any(t, fr, fl, &re);
        if (rc == 0) {
            accepted++;
            assert_int_equal(re.len, fl);
            assert_memory_equal(re.p, fr, fl);
        } else {
            assert_true(rc == NET_ETRUNC || rc == NET_EMALFORMED);
        }
    }
    printf("test_random_input: %d rounds, %d mutated frames decoded canonically\n", n, accepted);
    net_buf_free(&re);
    net_buf_free(&sample);
}

static void test_errors_are_counted(void **state)
{
    (void)state;
    uint64_t before = net_wire_errors();
    uint64_t before_magic = net_wire_errors_by_code(NET_EMAGIC);
    uint8_t junk[32] = "definitely not an hstore frame";
    raft_msg m;
    assert_int_equal(net_decode_raft(junk, sizeof(junk), &m), NET_EMAGIC);
    assert_int_equal(net_frame_check(junk, 3, NULL), NET_ETRUNC);
    assert_int_equal(net_wire_errors(), before + 2);
    assert_int_equal(net_wire_errors_by_code(NET_EMAGIC), before_magic + 1);
    /* successes do not count */
    net_buf b = {0};
    uint64_t id;
    assert_int_equal(net_encode_status_req(1, &b), 0);
    assert_int_equal(net_decode_status_req(b.p, b.len, &id), 0);
    assert_int_equal(net_wire_errors(), before + 2);
    assert_string_equal(net_strerror(NET_ECHECKSUM), "checksum mismatch");
    net_buf_free(&b);
}

/* Membership frames: every field round-trips (learners included), and a
 * frame cut short or with an unknown op or status is refused. */
static void test_member_frames(void **state)
{
    (void)state;
    net_buf b = {0};
    net_member_req q = {.req_id = 7, .op = NET_MEMBER_ADD, .id = 4, .timeout_ms = 60000};
    snprintf(q.addr, sizeof q.addr, "127.0.0.1:7106");
    assert_int_equal(net_encode_member_req(&q, &b), NET_OK);
    net_member_req q2;
    assert_int_equal(net_decode_member_req(b.p, b.len, &q2), NET_OK);
    assert_int_equal(q2.req_id, 7);
    assert_int_equal(q2.op, NET_MEMBER_ADD);
    assert_int_equal(q2.id, 4);
    assert_int_equal(q2.timeout_ms, 60000);
    assert_string_equal(q2.addr, "127.0.0.1:7106");
    assert_int_not_equal(net_decode_member_req(b.p, b.len - 1, &q2), NET_OK);
    q.op = 9;
    assert_int_equal(net_encode_member_req(&q, &b), NET_EINVAL);

    net_member_resp r;
    memset(&r, 0, sizeof r);
    r.req_id = 8;
    r.status = NET_MST_NOT_LEADER;
    r.leader_id = 2;
    snprintf(r.leader_addr, sizeof r.leader_addr, "127.0.0.1:7103");
    snprintf(r.msg, sizeof r.msg, "node 1 is not the leader; node 2 is");
    fill_conf(&r.conf, 4);
    r.conf.learner[3] = true;
    assert_int_equal(net_encode_member_resp(&r, &b), NET_OK);
    net_member_resp r2;
    assert_int_equal(net_decode_member_resp(b.p, b.len, &r2), NET_OK);
    assert_int_equal(r2.status, NET_MST_NOT_LEADER);
    assert_int_equal(r2.leader_id, 2);
    assert_string_equal(r2.leader_addr, "127.0.0.1:7103");
    assert_string_equal(r2.msg, r.msg);
    assert_int_equal(r2.conf.n, 4);
    assert_true(r2.conf.learner[3]);
    assert_false(r2.conf.learner[0]);
    assert_int_not_equal(net_decode_member_resp(b.p, b.len - 1, &r2), NET_OK);
    r.status = NET_MST_MAX;
    assert_int_equal(net_encode_member_resp(&r, &b), NET_EINVAL);
    net_buf_free(&b);
}

static void test_large_entry(void **state)
{
    (void)state;
    /* several MiB in one entry: larger than nanomsg's default receive limit,
     * which the transport raises accordingly */
    size_t big = 6u << 20;
    uint8_t *data = malloc(big);
    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = (uint8_t)(i * 31 + 7);
    raft_entry e = {
        .term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL, .len = (uint32_t)big, .data = data};
    raft_msg in = {.type = RAFT_MSG_APPEND, .n_entries = 1, .entries = &e}, out;
    net_buf b = {0};
    assert_int_equal(net_encode_raft(&in, &b), 0);
    assert_int_equal(net_decode_raft(b.p, b.len, &out), 0);
    assert_int_equal(out.entries[0].len, big);
    assert_memory_equal(out.entries[0].data, data, big);
    net_raft_msg_free(&out);
    net_buf_free(&b);
    free(data);
}

/* ---- the MAC trailer (auth.h) ---- */

static void mkauth(net_auth *a, uint8_t fill)
{
    uint8_t secret[32];
    memset(secret, fill, sizeof secret);
    assert_int_equal(net_auth_from_secret(a, secret, sizeof secret), NET_OK);
}

/* A sealed frame verifies; changing any one byte of it (header, payload,
 * sender, epoch, counter or tag) makes it fail, and so do another key and
 * another purpose's key; the same for the handshake MAC, also with another
 * context. */
static void test_mac_tamper_and_wrong_key(void **state)
{
    (void)state;
    net_auth a, b, ins;
    mkauth(&a, 0x11);
    mkauth(&b, 0x22);
    net_auth_insecure(&ins);
    assert_true(a.secure);
    assert_false(ins.secure);
    assert_memory_not_equal(a.peer, a.req, NET_KEY_LEN);
    assert_memory_not_equal(a.req, a.resp, NET_KEY_LEN);
    for (int hs = 0; hs <= 1; hs++) {
        for (uint8_t type = 1; type < NET_MSG_TYPE_MAX; type++) {
            net_buf f = {0};
            sample_frame(type, &f);
            size_t flen = f.len;
            uint8_t ctx[NET_SESSION_CTX_LEN];
            memset(ctx, 0x5a, sizeof ctx);
            net_trailer tr = {3, 1234567, 42}, got;
#define OPEN(k, c, cl, p, l, t) (hs ? net_open_hs(k, c, cl, p, l, t) : net_open(k, p, l, t))
            if (hs)
                assert_int_equal(net_seal_hs(a.peer, ctx, sizeof ctx, &tr, &f), NET_OK);
            else
                assert_int_equal(net_seal(a.peer, &tr, &f), NET_OK);
            assert_int_equal(f.len, flen + NET_TRAILER_LEN);
            assert_int_equal(OPEN(a.peer, ctx, sizeof ctx, f.p, f.len, &got), NET_OK);
            assert_int_equal(got.sender, 3);
            assert_int_equal(got.epoch, 1234567);
            assert_int_equal(got.ctr, 42);
            /* the frame alone still decodes */
            assert_int_equal(decode_any(type, f.p, flen, NULL), 0);
            for (size_t i = 0; i < f.len; i++) {
                f.p[i] ^= 0x01;
                if (OPEN(a.peer, ctx, sizeof ctx, f.p, f.len, NULL) != NET_EAUTH)
                    fail_msg("%s, type %d: flipped byte %zu of %zu accepted",
                             hs ? "handshake" : "frame", type, i, f.len);
                f.p[i] ^= 0x01;
            }
            assert_int_equal(OPEN(b.peer, ctx, sizeof ctx, f.p, f.len, NULL), NET_EAUTH);
            assert_int_equal(OPEN(ins.peer, ctx, sizeof ctx, f.p, f.len, NULL), NET_EAUTH);
            assert_int_equal(OPEN(a.req, ctx, sizeof ctx, f.p, f.len, NULL), NET_EAUTH);
            if (hs) {
                ctx[0] ^= 1;
                assert_int_equal(OPEN(a.peer, ctx, sizeof ctx, f.p, f.len, NULL), NET_EAUTH);
                assert_int_equal(OPEN(a.peer, NULL, 0, f.p, f.len, NULL), NET_EAUTH);
                ctx[0] ^= 1;
            }
            /* truncated by a byte, or shorter than a trailer */
            assert_int_not_equal(OPEN(a.peer, ctx, sizeof ctx, f.p, f.len - 1, NULL), NET_OK);
            assert_int_equal(OPEN(a.peer, ctx, sizeof ctx, f.p, NET_TRAILER_LEN - 1, NULL),
                             NET_ETRUNC);
#undef OPEN
            net_buf_free(&f);
        }
    }
    /* Client sessions: keys differ per session (per nonce pair) and per
     * direction. */
    net_session s1, s2;
    memset(&s1, 0, sizeof s1);
    memset(&s2, 0, sizeof s2);
    s2.ctx[0] = 1;
    net_session_keys(&a, &s1);
    net_session_keys(&a, &s2);
    assert_memory_not_equal(s1.kreq, s2.kreq, NET_KEY_LEN);
    assert_memory_not_equal(s1.kreq, s1.kresp, NET_KEY_LEN);
}

/* The secret file: generated 0600 with 64 hex digits; the same file gives
 * the same keys; a file readable by others, too short or not hex is refused. */
static void test_secret_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/hstore-test-secret.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/secret", dir);
    assert_int_equal(net_auth_generate(path, err, sizeof err), NET_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sb.st_size, 65);
    net_auth a, b;
    assert_int_equal(net_auth_load(&a, path, err, sizeof err), NET_OK);
    assert_true(a.secure);
    /* generating again keeps the existing secret */
    assert_int_equal(net_auth_generate(path, err, sizeof err), NET_OK);
    assert_int_equal(net_auth_load(&b, path, err, sizeof err), NET_OK);
    assert_memory_equal(a.peer, b.peer, NET_KEY_LEN);
    chmod(path, 0644);
    assert_int_equal(net_auth_load(&b, path, err, sizeof err), NET_EINVAL);
    assert_non_null(strstr(err, "chmod 600"));
    static const char *bad[] = {"abcd\n", "zz00112233445566778899aabbccddeeff\n",
                                "00112233445566778899aabbccddeef\n", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unlink(path);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(bad[i], f);
        fclose(f);
        chmod(path, 0600);
        if (net_auth_load(&b, path, err, sizeof err) != NET_EINVAL)
            fail_msg("secret '%s' accepted", bad[i]);
    }
    unlink(path);
    assert_int_equal(net_auth_load(&b, path, err, sizeof err), NET_EIO);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_roundtrip_every_type),
        cmocka_unit_test(test_raft_heartbeat_minimal),
        cmocka_unit_test(test_raft_lease_fields),
        cmocka_unit_test(test_client_roundtrip),
        cmocka_unit_test(test_status_roundtrip),
        cmocka_unit_test(test_snap_roundtrip),
        cmocka_unit_test(test_truncated_rejected_at_every_length),
        cmocka_unit_test(test_flipped_byte_detected),
        cmocka_unit_test(test_wrong_type_rejected),
        cmocka_unit_test(test_forged_counts_rejected),
        cmocka_unit_test(test_malformed_conf_rejected),
        cmocka_unit_test(test_encoder_rejects_unrepresentable),
        cmocka_unit_test(test_random_input),
        cmocka_unit_test(test_errors_are_counted),
        cmocka_unit_test(test_mac_tamper_and_wrong_key),
        cmocka_unit_test(test_secret_file),
        cmocka_unit_test(test_large_entry),
        cmocka_unit_test(test_member_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
