/*
 * test_raft_member.c — learners and the servers a membership change leaves
 * behind, in the simulated cluster of tests/lib/raft_sim.c: a learner gets
 * the log but never campaigns and is not counted in a quorum, a promotion
 * makes it count, leadership cannot go to a learner, a leader that removes
 * itself steps down once the change commits, and a removed server that comes
 * back is refused without raising anyone's term.  Also the configuration
 * encoding with learners, and that encodings from before learners still read.
 *
 * Replay one test with its seed: HSTORE_SEED=n HSTORE_TEST=name build/tests/test_raft_member
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "raftkv/conf_codec.h"
#include "raftkv/raft.h"
#include "tests/lib/raft_sim.h"

static sim *mk(int n, int slots, uint64_t def_seed, const char *name)
{
    sim_config c;
    sim_config_init(&c, n, sim_seed(def_seed, name));
    c.n_slots = slots;
    return sim_new(&c);
}

static raft_status status_of(sim *s, int i)
{
    raft_status st;
    sim_status(s, i, &st);
    return st;
}

static bool is_learner(const raft_conf *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->ids[i] == id)
            return c->learner[i];
    return false;
}

/* Proposes cmd at the leader and says whether it commits within ms. */
static bool commits_within(sim *s, uint64_t cmd, uint64_t ms)
{
    int l = sim_leader(s);
    uint64_t idx = 0;
    if (l < 0 || !sim_start(s, l, cmd, &idx, NULL))
        return false;
    sim_flush(s, l);
    for (uint64_t t = 0; t < ms; t += 50) {
        sim_run(s, 50);
        if (status_of(s, l).commit >= idx)
            return true;
    }
    return false;
}

static void test_learner_gets_log_never_campaigns(void **state)
{
    (void)state;
    sim *s = mk(3, 4, 31, "test_learner_gets_log_never_campaigns");
    sim_one(s, 1, 3, true);
    uint64_t il = sim_conf_change(s, RAFT_CONF_ADD_LEARNER, 3);
    assert_true(sim_wait(s, il, 4, 5000));
    raft_status st = status_of(s, 3);
    assert_int_equal(st.conf.n, 4);
    assert_true(is_learner(&st.conf, 4));
    assert_int_equal(raft_conf_voters(&st.conf), 3);
    /* It gets every command. */
    sim_one(s, 2, 4, true);
    /* The leader reports it as a learner. */
    st = status_of(s, sim_leader(s));
    bool seen = false;
    for (uint32_t i = 0; i < st.n_peers; i++)
        if (st.peers[i].id == 4) {
            seen = true;
            assert_true(st.peers[i].learner);
        }
    assert_true(seen);

    /* Cut off, it never campaigns: its term and role stay as they are. */
    uint64_t term = status_of(s, 3).term;
    sim_disconnect(s, 3);
    sim_run(s, 6000);
    st = status_of(s, 3);
    assert_int_equal(st.term, term);
    assert_int_equal(st.role, RAFT_FOLLOWER);
    /* Nor when the leader asks it to (TIMEOUT_NOW): transfer is refused. */
    sim_connect(s, 3);
    sim_one(s, 3, 4, true);
    int l = sim_leader(s);
    assert_int_equal(raft_transfer_leader(sim_raft(s, l), 4), RAFT_EINVAL);
    /* Promoting a voter, or adding the learner again, are refused. */
    raft_conf_change cc = {.type = RAFT_CONF_PROMOTE, .id = (uint64_t)l + 1};
    assert_int_equal(raft_propose_conf(sim_raft(s, l), &cc, NULL), RAFT_EINVAL);
    cc.type = RAFT_CONF_ADD_LEARNER;
    cc.id = 4;
    assert_int_equal(raft_propose_conf(sim_raft(s, l), &cc, NULL), RAFT_EINVAL);
    cc.type = RAFT_CONF_ADD;
    assert_int_equal(raft_propose_conf(sim_raft(s, l), &cc, NULL), RAFT_EINVAL);
    sim_free(s);
}

static void test_learner_not_counted_then_promoted(void **state)
{
    (void)state;
    sim *s = mk(3, 4, 32, "test_learner_not_counted_then_promoted");
    sim_one(s, 1, 3, true);
    uint64_t il = sim_conf_change(s, RAFT_CONF_ADD_LEARNER, 3);
    assert_true(sim_wait(s, il, 4, 5000));
    sim_one(s, 2, 4, true);

    /* Leader + learner are not a quorum of the three voters. */
    int l = sim_leader(s);
    int a = (l + 1) % 3, b = (l + 2) % 3;
    sim_disconnect(s, a);
    sim_disconnect(s, b);
    assert_false(commits_within(s, 3, 600));
    sim_connect(s, a);
    sim_connect(s, b);
    sim_one(s, 4, 4, true);

    /* Promoted, it counts: four voters, a quorum of three. */
    uint64_t ip = sim_conf_change(s, RAFT_CONF_PROMOTE, 3);
    assert_true(sim_wait(s, ip, 4, 5000));
    raft_status st = status_of(s, sim_leader(s));
    assert_false(is_learner(&st.conf, 4));
    assert_int_equal(raft_conf_voters(&st.conf), 4);
    l = sim_leader(s);
    if (l == 3) {
        /* the new voter won an election meanwhile: fine, count with it */
        sim_one(s, 5, 4, true);
    } else {
        int off = (l + 1) % 3; /* one of the first three voters, not the leader */
        sim_disconnect(s, off);
        assert_true(commits_within(s, 6, 3000));
        sim_connect(s, off);
    }
    /* It may now be handed leadership. */
    l = sim_leader(s);
    if (l != 3) {
        assert_int_equal(raft_transfer_leader(sim_raft(s, l), 4), RAFT_OK);
        sim_flush(s, l);
        sim_run(s, 1000);
        assert_int_equal(sim_leader(s), 3);
    }
    sim_one(s, 7, 4, true);
    sim_free(s);
}

static void test_remove_leader_steps_down_after_commit(void **state)
{
    (void)state;
    sim *s = mk(3, 3, 33, "test_remove_leader_steps_down_after_commit");
    sim_one(s, 1, 3, true);
    int old = sim_leader(s);
    uint64_t ir = sim_conf_change(s, RAFT_CONF_REMOVE, old);
    /* Until the removal commits it still leads (it must replicate it). */
    raft_status st = status_of(s, old);
    if (st.commit < ir)
        assert_int_equal(st.role, RAFT_LEADER);
    assert_true(sim_wait(s, ir, 2, 5000));
    sim_run(s, 3000);
    assert_int_not_equal(status_of(s, old).role, RAFT_LEADER);
    int nl = sim_leader(s);
    assert_true(nl >= 0 && nl != old);
    sim_one(s, 2, 2, true);
    sim_free(s);
}

/* A follower removed while it was cut off never hears of its removal.  When
 * it comes back its (pre-)votes are refused and no member's term rises. */
static void test_removed_server_cannot_disturb(void **state)
{
    (void)state;
    sim *s = mk(4, 4, 34, "test_removed_server_cannot_disturb");
    sim_one(s, 1, 4, true);
    int gone = (sim_leader(s) + 1) % 4;
    sim_disconnect(s, gone);
    uint64_t ir = sim_conf_change(s, RAFT_CONF_REMOVE, gone);
    assert_true(sim_wait(s, ir, 3, 5000));
    sim_one(s, 2, 3, true);
    sim_run(s, 4000); /* it times out alone, again and again */
    int l = sim_leader(s);
    uint64_t term = status_of(s, l).term;
    sim_connect(s, gone);
    sim_run(s, 8000);
    assert_int_equal(sim_leader(s), l);
    for (int i = 0; i < 4; i++)
        if (i != gone)
            assert_int_equal(status_of(s, i).term, term);
    assert_int_not_equal(status_of(s, gone).role, RAFT_LEADER);

    /* Even outside any leader lease (a transfer vote request straight to a
     * member), a stranger's higher term is not adopted and its vote is
     * refused, though its log is as up to date as the member's. */
    int m = (l + 1) % 4 == gone ? (l + 2) % 4 : (l + 1) % 4;
    raft_status ms = status_of(s, m);
    raft_msg v;
    memset(&v, 0, sizeof v);
    v.from = (uint64_t)gone + 1;
    v.to = (uint64_t)m + 1;
    v.term = ms.term + 5;
    v.index = ms.last_index; /* as up to date as the member */
    v.log_term = ms.term;
    v.transfer = true; /* would pass the lease check */
    v.type = RAFT_MSG_VOTE;
    assert_int_equal(raft_step(sim_raft(s, m), &v), RAFT_OK);
    assert_int_equal(status_of(s, m).term, ms.term);
    assert_int_not_equal(status_of(s, m).vote, v.from);
    v.type = RAFT_MSG_PREVOTE;
    assert_int_equal(raft_step(sim_raft(s, m), &v), RAFT_OK);
    assert_int_equal(status_of(s, m).term, ms.term);
    sim_run(s, 1000);
    assert_int_equal(sim_leader(s), l);
    sim_one(s, 3, 3, true);
    sim_free(s);
}

/* A learner added while one voter is cut off catches up and is promoted; the
 * cluster keeps committing throughout. */
static void test_learner_added_during_partition(void **state)
{
    (void)state;
    sim *s = mk(3, 4, 35, "test_learner_added_during_partition");
    sim_one(s, 1, 3, true);
    int off = (sim_leader(s) + 1) % 3;
    sim_disconnect(s, off);
    uint64_t il = sim_conf_change(s, RAFT_CONF_ADD_LEARNER, 3);
    assert_true(sim_wait(s, il, 3, 5000));
    sim_one(s, 2, 3, true);
    uint64_t ip = sim_conf_change(s, RAFT_CONF_PROMOTE, 3);
    assert_true(sim_wait(s, ip, 3, 5000));
    sim_one(s, 3, 3, true);
    sim_connect(s, off);
    sim_one(s, 4, 4, true);
    raft_status st = status_of(s, off);
    assert_int_equal(raft_conf_voters(&st.conf), 4);
    sim_free(s);
}

static void test_conf_codec_learners(void **state)
{
    (void)state;
    raft_conf c;
    memset(&c, 0, sizeof c);
    c.n = 3;
    for (uint32_t i = 0; i < 3; i++) {
        c.ids[i] = i + 1;
        snprintf(c.addrs[i], RAFT_ADDR_MAX, "10.0.0.%u:7000", i + 1);
    }
    c.learner[2] = true;
    bytes_w w = {0};
    assert_true(raft_conf_put(&w, &c));
    assert_true(w.len <= RAFT_CONF_ENC_MAX);
    bytes_r r = br_init(w.p, w.len);
    raft_conf d;
    assert_true(raft_conf_get(&r, &d));
    assert_int_equal(d.n, 3);
    assert_false(d.learner[0]);
    assert_false(d.learner[1]);
    assert_true(d.learner[2]);
    assert_string_equal(d.addrs[2], "10.0.0.3:7000");
    assert_int_equal(raft_conf_voters(&d), 2);
    bw_free(&w);

    /* The encoding from before learners: every member a voter. */
    uint8_t old[] = {1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 3, 'a', ':', '1'};
    r = br_init(old, sizeof old);
    assert_true(raft_conf_get(&r, &d));
    assert_int_equal(d.n, 1);
    assert_int_equal(d.ids[0], 7);
    assert_false(d.learner[0]);
    assert_string_equal(d.addrs[0], "a:1");

    /* Conf changes: the new types round-trip, unknown ones are refused. */
    raft_conf_change cc = {.type = RAFT_CONF_ADD_LEARNER, .id = 9};
    snprintf(cc.addr, sizeof cc.addr, "h:1");
    uint8_t cb[16 + RAFT_ADDR_MAX];
    size_t n = raft_conf_change_encode(&cc, cb, sizeof cb);
    raft_conf_change out;
    assert_int_equal(raft_conf_change_decode(cb, n, &out), RAFT_OK);
    assert_int_equal(out.type, RAFT_CONF_ADD_LEARNER);
    cc.type = RAFT_CONF_PROMOTE;
    n = raft_conf_change_encode(&cc, cb, sizeof cb);
    assert_int_equal(raft_conf_change_decode(cb, n, &out), RAFT_OK);
    assert_int_equal(out.type, RAFT_CONF_PROMOTE);
    cb[0] = 5;
    assert_int_equal(raft_conf_change_decode(cb, n, &out), RAFT_EINVAL);
}

/* The configuration a restart finds in the store: the snapshot's, with the
 * log's changes applied in order (what a node started without --cluster
 * uses). */
static void test_boot_conf_from_snapshot_and_log(void **state)
{
    (void)state;
    raft_boot b;
    memset(&b, 0, sizeof b);
    for (uint32_t i = 0; i < 3; i++) {
        b.snapshot.conf.ids[i] = i + 1;
        snprintf(b.snapshot.conf.addrs[i], RAFT_ADDR_MAX, "10.0.0.%u:7100", i + 1);
    }
    b.snapshot.conf.n = 3;
    raft_conf_change ch[3] = {
        {.type = RAFT_CONF_ADD_LEARNER, .id = 4, .addr = "10.0.0.4:7100"},
        {.type = RAFT_CONF_PROMOTE, .id = 4},
        {.type = RAFT_CONF_REMOVE, .id = 2},
    };
    uint8_t buf[4][128];
    raft_entry e[4];
    memset(e, 0, sizeof e);
    for (int i = 0; i < 4; i++) {
        e[i].index = (uint64_t)i + 1;
        e[i].term = 1;
        if (i == 1) { /* a command between the changes */
            e[i].type = RAFT_ENTRY_NORMAL;
            continue;
        }
        e[i].type = RAFT_ENTRY_CONF;
        e[i].data = buf[i];
        e[i].len = (uint32_t)raft_conf_change_encode(&ch[i < 1 ? 0 : i - 1], buf[i], sizeof buf[i]);
        assert_true(e[i].len > 0);
    }
    b.entries = e;
    b.n_entries = 4;
    raft_conf c;
    raft_boot_conf(&b, &c);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.ids[0], 1);
    assert_int_equal(c.ids[1], 3);
    assert_int_equal(c.ids[2], 4);
    assert_false(c.learner[2]);
    assert_string_equal(c.addrs[2], "10.0.0.4:7100");
    b.n_entries = 0;
    raft_boot_conf(&b, &c);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.ids[1], 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learner_gets_log_never_campaigns),
        cmocka_unit_test(test_learner_not_counted_then_promoted),
        cmocka_unit_test(test_remove_leader_steps_down_after_commit),
        cmocka_unit_test(test_removed_server_cannot_disturb),
        cmocka_unit_test(test_learner_added_during_partition),
        cmocka_unit_test(test_conf_codec_learners),
        cmocka_unit_test(test_boot_conf_from_snapshot_and_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
