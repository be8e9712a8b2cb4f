/*
 * test_raft_lease.c — read leases and the visible index of the Raft core in
 * the simulated cluster (raft.h "Read leases", tests/lib/raft_sim.h).
 *
 * Every node has its own clock (offset and rate drawn per seed, rates within
 * the assumed drift unless a test says otherwise) and reports its applied
 * index, sometimes late.  After every simulated event the harness checks that
 * a node whose lease is valid by its own clock has applied every index any
 * node ever made visible, that visible indexes never go back nor pass the
 * commit index, and that a lease is of the holder's current term.  The
 * scenarios below add what must happen on top: leases are granted and V
 * follows the commit index; a lost, paused, lagging or restarted holder
 * delays V once by about a lease; a new leader waits; a transfer stops
 * grants; and the checker does catch clocks that break the assumption.
 *
 * Lease 1000 ms (drift 10%): a leader lease lasts 900 ms of its clock after
 * the quorum's echo, a new leader waits 1100 ms, heartbeats every 200 ms.
 *
 * Replay one test with its seed: HSTORE_SEED=n HSTORE_TEST=name build/tests/test_raft_lease
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "raftkv/raft.h"
#include "tests/lib/raft_sim.h"

#define LEASE 1000

static uint64_t g_round;
static uint64_t g_last_seed;
static const char *g_last_name;
static bool g_round_ok;

static sim *mkl(int n, uint64_t def_seed, const char *name, int clock_drift)
{
    sim_config c;
    g_last_name = name;
    g_last_seed = sim_seed(def_seed + g_round * 7919, name);
    sim_config_init(&c, n, g_last_seed);
    c.lease_ms = LEASE;
    c.clock_drift_pct = clock_drift;
    return sim_new(&c);
}

static raft_lease_info lease_of(sim *s, int i)
{
    raft_lease_info li;
    sim_lease(s, i, &li);
    return li;
}

static uint64_t vis(sim *s, int i)
{
    return lease_of(s, i).visible;
}

/* Every live, connected node holds a lease. */
static bool all_hold(sim *s, void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++)
        if (sim_alive(s, i) && sim_connected(s, i) && !sim_has_lease(s, i))
            return false;
    return true;
}

static bool has_lease_pred(sim *s, void *arg)
{
    return sim_has_lease(s, *(int *)arg);
}

static bool no_lease_pred(sim *s, void *arg)
{
    return !sim_has_lease(s, *(int *)arg);
}

typedef struct vis_arg {
    int node;
    uint64_t index;
} vis_arg;

static bool visible_pred(sim *s, void *arg)
{
    vis_arg *a = arg;
    return vis(s, a->node) >= a->index;
}

/* A leader, and every node holding a lease. */
static int steady(sim *s, int n)
{
    int l = sim_check_one_leader(s);
    assert_true(l >= 0);
    sim_one(s, 1, n, true);
    if (!sim_run_until(s, 5000, all_hold, &n))
        sim_fail(s, "not every node got a lease");
    return sim_leader(s);
}

/* Proposes cmd on the leader l (no waiting). */
static uint64_t put(sim *s, int l, uint64_t cmd)
{
    uint64_t idx = 0;
    if (!sim_start(s, l, cmd, &idx, NULL))
        sim_fail(s, "node %d does not take a proposal", l + 1);
    sim_flush(s, l);
    return idx;
}

/* ---- scenarios --------------------------------------------------------------- */

static void test_lease_steady_state(void **state)
{
    (void)state;
    for (int n = 3; n <= 5; n += 2) {
        sim *s = mkl(n, 1, "test_lease_steady_state", 10);
        int l = steady(s, n);
        assert_int_equal(lease_of(s, l).holders, (uint32_t)n - 1);
        /* V follows the commit index on the leader and on every holder, at
         * once (well before the next heartbeat, 200 ms away) */
        for (uint64_t k = 0; k < 20; k++) {
            uint64_t idx = sim_one(s, 100 + k, n, true);
            for (int i = 0; i < n; i++) {
                vis_arg a = {i, idx};
                if (!sim_run_until(s, 100, visible_pred, &a))
                    sim_fail(s, "node %d: visible %llu stays below %llu", i + 1,
                             (unsigned long long)vis(s, i), (unsigned long long)idx);
            }
        }
        /* what the visible index adds to a write: from the proposal to the
         * leader's commit, and to its V (printed, not asserted) */
        uint64_t to_commit = 0, to_visible = 0;
        for (uint64_t k = 0; k < 20; k++) {
            uint64_t t0 = sim_now(s), idx = put(s, l, 300 + k);
            raft_status st;
            do {
                sim_run(s, 1);
                sim_status(s, l, &st);
            } while (st.commit < idx && sim_now(s) - t0 < 1000);
            to_commit += sim_now(s) - t0;
            vis_arg a = {l, idx};
            while (!visible_pred(s, &a) && sim_now(s) - t0 < 1000)
                sim_run(s, 1);
            to_visible += sim_now(s) - t0;
        }
        if (g_round == 0)
            printf("%d nodes: proposal to commit %.1f ms, to visible %.1f ms (links 1-3 ms)\n", n,
                   (double)to_commit / 20, (double)to_visible / 20);
        /* and leases keep being renewed */
        sim_run(s, 3 * LEASE);
        assert_true(all_hold(s, &n));
        assert_int_equal(sim_leader(s), l);
        assert_int_equal(sim_lease_violations(s), 0);
        sim_free(s);
    }
}

/* A holder cut off: V waits for its lease to end, once, then goes on. */
static void test_lease_partitioned_follower(void **state)
{
    (void)state;
    sim *s = mkl(3, 2, "test_lease_partitioned_follower", 10);
    int l = steady(s, 3);
    int f = (l + 1) % 3;
    sim_disconnect(s, f);
    uint64_t t0 = sim_now(s);
    uint64_t idx = put(s, l, 7);
    vis_arg a = {l, idx};
    if (!sim_run_until(s, 3 * LEASE, visible_pred, &a))
        sim_fail(s, "visible index never passed the cut-off holder");
    uint64_t waited = sim_now(s) - t0;
    /* at most about one lease (its lease: <= 900 leader ms plus drift) */
    if (waited > LEASE + LEASE / 4)
        sim_fail(s, "V waited %llu ms for a lost holder", (unsigned long long)waited);
    assert_false(sim_has_lease(s, f));
    /* later writes do not wait for it at all */
    t0 = sim_now(s);
    idx = put(s, l, 8);
    a.index = idx;
    assert_true(sim_run_until(s, 300, visible_pred, &a));
    /* back: it catches up and is a holder again */
    sim_connect(s, f);
    assert_true(sim_run_until(s, 3000, has_lease_pred, &f));
    assert_true(sim_reported(s, f) >= idx);
    assert_int_equal(sim_lease_violations(s), 0);
    sim_free(s);
}

/* A holder stopped (SIGSTOP): its clock and lease run on, messages to it
 * wait; V advances once its lease ended, and stale grants that reach it
 * after it resumes give it nothing. */
static void test_lease_paused_follower(void **state)
{
    (void)state;
    sim *s = mkl(3, 3, "test_lease_paused_follower", 10);
    int l = steady(s, 3);
    int f = (l + 2) % 3;
    sim_pause(s, f, true);
    uint64_t idx = put(s, l, 9);
    vis_arg a = {l, idx};
    if (!sim_run_until(s, 3 * LEASE, visible_pred, &a))
        sim_fail(s, "visible index never passed the paused holder");
    for (uint64_t k = 0; k < 5; k++)
        put(s, l, 20 + k);
    sim_run(s, 2 * LEASE); /* longer than the lease: it has run out */
    assert_false(sim_has_lease(s, f));
    sim_pause(s, f, false);
    sim_run(s, 5);
    int m = 3;
    assert_true(sim_run_until(s, 5000, all_hold, &m));
    assert_int_equal(sim_lease_violations(s), 0);
    sim_free(s);
}

/* The old leader and one follower cut off; the majority elects a leader that
 * waits out every earlier lease before making anything visible. */
static void test_lease_partitioned_old_leader(void **state)
{
    (void)state;
    sim *s = mkl(5, 4, "test_lease_partitioned_old_leader", 10);
    int l = steady(s, 5);
    int f = (l + 1) % 5;
    int group[SIM_MAX] = {0};
    group[l] = group[f] = 1;
    sim_partition(s, group);
    uint64_t v_old = vis(s, (l + 2) % 5);
    /* the old leader keeps writing into its minority */
    for (uint64_t k = 0; k < 3; k++)
        put(s, l, 30 + k);
    int nl = -1;
    uint64_t end = sim_now(s) + 10000;
    while (sim_now(s) < end && nl < 0) {
        sim_run(s, 1);
        for (int i = 0; i < 5; i++)
            if (i != l && i != f) {
                raft_status st;
                sim_status(s, i, &st);
                if (st.role == RAFT_LEADER)
                    nl = i;
            }
    }
    assert_true(nl >= 0);
    uint64_t elected = sim_clock(s, nl);
    uint64_t idx = put(s, nl, 40);
    /* during its wait: commits, but nothing new is visible, no lease */
    while (sim_clock(s, nl) < elected + LEASE) {
        sim_run(s, 10);
        raft_lease_info li = lease_of(s, nl);
        assert_int_equal(li.lease_until, 0);
        assert_int_equal(li.holders, 0);
        assert_true(li.visible <= (v_old > idx ? v_old : idx - 1));
        assert_true(li.visible < idx);
    }
    vis_arg a = {nl, idx};
    assert_true(sim_run_until(s, 2 * LEASE, visible_pred, &a));
    /* the old side's leases are long over */
    assert_false(sim_has_lease(s, l));
    assert_false(sim_has_lease(s, f));
    sim_heal(s);
    int n = 5;
    assert_true(sim_run_until(s, 5000, all_hold, &n));
    assert_int_equal(sim_lease_violations(s), 0);
    sim_free(s);
}

/* A leader transfer: the old leader's lease ends at once, grants stop, and
 * the new leader waits before it grants. */
static void test_lease_leader_transfer(void **state)
{
    (void)state;
    sim *s = mkl(3, 5, "test_lease_leader_transfer", 10);
    int l = steady(s, 3);
    int t = (l + 1) % 3;
    assert_int_equal(raft_transfer_leader(sim_raft(s, l), (uint64_t)t + 1), RAFT_OK);
    assert_int_equal(lease_of(s, l).lease_until, 0);
    sim_flush(s, l);
    sim_run(s, 500);
    assert_int_equal(sim_leader(s), t);
    int n = 3;
    assert_true(sim_run_until(s, 5000, all_hold, &n));
    uint64_t idx = sim_one(s, 50, 3, true);
    vis_arg a = {l, idx};
    assert_true(sim_run_until(s, 1000, visible_pred, &a));
    assert_int_equal(sim_lease_violations(s), 0);
    sim_free(s);
}

/* Clocks at the edges of the assumed bound, in every pairing of fast and
 * slow, with a holder lost while writes go on. */
static void test_lease_clock_rates(void **state)
{
    (void)state;
    static const int64_t rates[][3] = {
        {100000, -100000, 0},  {-100000, 100000, 100000}, {100000, 100000, -100000},
        {-100000, -100000, 0}, {0, -100000, 100000},
    };
    for (size_t k = 0; k < sizeof rates / sizeof rates[0]; k++) {
        sim *s = mkl(3, 6 + k, "test_lease_clock_rates", 0);
        for (int i = 0; i < 3; i++)
            sim_set_clock_rate(s, i, rates[k][i]);
        int l = steady(s, 3);
        for (int f = 0; f < 3; f++) {
            if (f == l)
                continue;
            sim_disconnect(s, f);
            for (uint64_t c = 0; c < 10; c++) {
                put(s, l, 60 + c);
                sim_run(s, 150);
            }
            sim_connect(s, f);
            int n = 3;
            assert_true(sim_run_until(s, 5000, all_hold, &n));
        }
        assert_int_equal(sim_lease_violations(s), 0);
        sim_free(s);
    }
}

/* A holder crashes and restarts at once (its clock does not go back). */
static void test_lease_restart_holder(void **state)
{
    (void)state;
    sim *s = mkl(3, 7, "test_lease_restart_holder", 10);
    int l = steady(s, 3);
    int f = (l + 1) % 3;
    for (uint64_t k = 0; k < 5; k++)
        sim_one(s, 70 + k, 3, true);
    sim_set_long_reordering(s, true); /* answers of its first life arrive late */
    sim_restart(s, f);
    assert_false(sim_has_lease(s, f));
    uint64_t idx = put(s, l, 80);
    vis_arg a = {l, idx};
    assert_true(sim_run_until(s, 4 * LEASE, visible_pred, &a));
    sim_set_long_reordering(s, false);
    int n = 3;
    assert_true(sim_run_until(s, 8000, all_hold, &n));
    assert_int_equal(sim_lease_violations(s), 0);
    sim_free(s);
}

/* ---- the core's rules, one at a time ------------------------------------------ */

/* The leader's lease needs a quorum of echoes (itself counted). */
static void test_lease_needs_quorum_of_echoes(void **state)
{
    (void)state;
    for (int cut = 2; cut <= 3; cut++) {
        /* exact clocks: 900 ms after the last quorum echo is 900 ms */
        sim *s = mkl(5, 8, "test_lease_needs_quorum_of_echoes", 0);
        int l = steady(s, 5);
        /* the answers of `cut` followers stop reaching the leader (they
         * still hear it, so nobody campaigns) */
        for (int k = 1; k <= cut; k++)
            sim_block(s, (l + k) % 5, l, true);
        sim_run(s, 950); /* > 900 ms, < an election timeout */
        raft_status st;
        sim_status(s, l, &st);
        assert_int_equal(st.role, RAFT_LEADER);
        if (cut == 2)
            assert_true(sim_has_lease(s, l)); /* self + 2 of 5 */
        else
            assert_false(sim_has_lease(s, l)); /* self + 1 of 5 */
        assert_int_equal(sim_lease_violations(s), 0);
        sim_free(s);
    }
}

/* No lease, no grant and no advance of V during a new leader's wait. */
static void test_lease_new_leader_waits(void **state)
{
    (void)state;
    sim *s = mkl(3, 9, "test_lease_new_leader_waits", 10);
    int l = steady(s, 3);
    uint64_t idx0 = sim_one(s, 90, 3, true);
    vis_arg a0 = {l, idx0};
    assert_true(sim_run_until(s, 1000, visible_pred, &a0));
    sim_crash(s, l);
    int nl = -1;
    uint64_t end = sim_now(s) + 10000;
    while (sim_now(s) < end && nl < 0) {
        sim_run(s, 1);
        int x = sim_leader(s);
        if (x >= 0 && x != l)
            nl = x;
    }
    assert_true(nl >= 0);
    uint64_t v0 = vis(s, nl);
    uint64_t elected = sim_clock(s, nl);
    uint64_t idx = put(s, nl, 91);
    bool committed = false;
    while (sim_clock(s, nl) < elected + LEASE + LEASE / 10 - 20) {
        sim_run(s, 5);
        raft_status st;
        sim_status(s, nl, &st);
        committed |= st.commit >= idx;
        for (int i = 0; i < 3; i++)
            if (sim_alive(s, i))
                assert_false(sim_has_lease(s, i));
        assert_int_equal(lease_of(s, nl).holders, 0);
        assert_int_equal(vis(s, nl), v0);
    }
    assert_true(committed); /* writes commit; they are just not visible yet */
    vis_arg a = {nl, idx};
    assert_true(sim_run_until(s, 500, visible_pred, &a));
    assert_true(sim_run_until(s, 1000, has_lease_pred, &nl));
    sim_restart(s, l);
    assert_int_equal(sim_lease_violations(s), 0);
    sim_free(s);
}

/* A leader transferring leadership grants nothing: holders' leases run out. */
static void test_lease_no_grants_during_transfer(void **state)
{
    (void)state;
    sim *s = mkl(3, 10, "test_lease_no_grants_during_transfer", 10);
    int l = steady(s, 3);
    int t = (l + 1) % 3, o = (l + 2) % 3;
    sim_disconnect(s, t); /* the transfer cannot finish */
    sim_run(s, 10);
    assert_int_equal(raft_transfer_leader(sim_raft(s, l), (uint64_t)t + 1), RAFT_OK);
    sim_flush(s, l);
    assert_int_equal(lease_of(s, l).lease_until, 0);
    /* a grant made before the transfer may still arrive with the next
     * heartbeat; after that nothing extends the lease */
    sim_run(s, 250);
    raft_lease_info before = lease_of(s, o);
    assert_true(before.lease_until > 0);
    sim_run(s, 400); /* two more heartbeats */
    raft_lease_info after = lease_of(s, o);
    assert_true(after.lease_until <= before.lease_until);
    assert_true(sim_run_until(s, LEASE, no_lease_pred, &o));
    /* the transfer gives up after an election timeout: grants resume */
    assert_true(sim_run_until(s, 4000, has_lease_pred, &o));
    assert_int_equal(sim_leader(s), l);
    assert_int_equal(sim_lease_violations(s), 0);
    sim_free(s);
}

/* A holder that keeps V back (it applies but does not report) for more than
 * a quarter lease is not renewed; once it catches up it is again. */
static void test_lease_lagging_holder_not_renewed(void **state)
{
    (void)state;
    sim *s = mkl(3, 11, "test_lease_lagging_holder_not_renewed", 10);
    int l = steady(s, 3);
    int f = (l + 1) % 3;
    sim_hold_applied(s, f, true);
    uint64_t t0 = sim_now(s);
    uint64_t idx = sim_one(s, 95, 3, true);
    vis_arg a = {l, idx};
    assert_true(sim_run_until(s, 3 * LEASE, visible_pred, &a));
    uint64_t waited = sim_now(s) - t0;
    if (waited > LEASE + LEASE / 2)
        sim_fail(s, "V waited %llu ms for a lagging holder", (unsigned long long)waited);
    assert_false(sim_has_lease(s, f));
    assert_true(lease_of(s, l).holders == 1);
    /* still lagging: writes no longer wait for it */
    t0 = sim_now(s);
    idx = put(s, l, 96);
    a.index = idx;
    assert_true(sim_run_until(s, 300, visible_pred, &a));
    assert_false(sim_has_lease(s, f));
    sim_hold_applied(s, f, false);
    assert_true(sim_run_until(s, 2000, has_lease_pred, &f));
    assert_int_equal(sim_lease_violations(s), 0);
    sim_free(s);
}

/* A follower's side of a grant, on a bare core: a grant counts only from
 * its current leader, made on an answer of this incarnation (after its first
 * clock reading), not from its future, at most a lease long, shrunk by the
 * drift bound; a new term drops it.  Its answers echo lease_t and carry its
 * clock and its reported applied index. */
static raft *bare_follower(uint32_t lease_ms)
{
    raft_config cfg;
    raft_config_init(&cfg);
    cfg.id = 2;
    cfg.lease_ms = lease_ms;
    raft_boot b;
    memset(&b, 0, sizeof b);
    b.hs.term = 1;
    b.snapshot.conf.n = 3;
    for (int i = 0; i < 3; i++)
        b.snapshot.conf.ids[i] = (uint64_t)i + 1;
    raft *r = raft_new(&cfg, &b, NULL);
    assert_non_null(r);
    return r;
}

static raft_msg *last_resp(raft *r, raft_ready *rd)
{
    raft_ready_get(r, rd);
    raft_msg *m = NULL;
    for (size_t k = 0; k < rd->n_msgs; k++)
        if (rd->msgs[k].type == RAFT_MSG_APPEND_RESP)
            m = &rd->msgs[k];
    return m;
}

/* A message of type from `from` in term to the bare follower (2). */
static raft_msg to_2(int type, uint64_t from, uint64_t term)
{
    raft_msg m;
    memset(&m, 0, sizeof m);
    m.type = (uint8_t)type;
    m.from = from;
    m.to = 2;
    m.term = term;
    return m;
}

static void heartbeat(raft *r, uint64_t from, uint64_t term, uint64_t lease_t, uint64_t resp_t,
                      uint64_t ms)
{
    raft_msg m = to_2(RAFT_MSG_APPEND, from, term);
    m.lease_t = lease_t;
    m.grant_resp_t = resp_t;
    m.grant_ms = ms;
    assert_int_equal(raft_step(r, &m), RAFT_OK);
}

static void test_lease_follower_grant_rules(void **state)
{
    (void)state;
    raft *r = bare_follower(LEASE);
    raft_lease_info li;
    raft_set_now(r, 5000);              /* this incarnation starts at 5000 */
    heartbeat(r, 1, 2, 100, 4000, 800); /* an answer from before it started */
    raft_lease_get(r, &li);
    assert_int_equal(li.lease_until, 0);
    heartbeat(r, 1, 2, 101, 5000, 800); /* ... or from its very first instant */
    raft_lease_get(r, &li);
    assert_int_equal(li.lease_until, 0);
    raft_ready rd;
    raft_msg *o = last_resp(r, &rd);
    assert_non_null(o);
    assert_int_equal(o->lease_t, 101);
    assert_int_equal(o->resp_t, 5000);
    assert_int_equal(o->applied, 0); /* nothing reported yet: no guessing */
    raft_advance(r, &rd);

    raft_set_now(r, 5100);
    heartbeat(r, 1, 2, 102, 5050, 800);
    raft_lease_get(r, &li);
    assert_int_equal(li.lease_until, 5050 + 800 * 90 / 110);
    assert_int_equal(li.term, 2);
    heartbeat(r, 1, 2, 103, 6000, 800);       /* from its future */
    heartbeat(r, 1, 2, 104, 5060, LEASE + 1); /* longer than a lease */
    heartbeat(r, 1, 2, 105, 5010, 800);       /* older: ends earlier */
    raft_lease_get(r, &li);
    assert_int_equal(li.lease_until, 5050 + 800 * 90 / 110);
    o = last_resp(r, &rd);
    assert_int_equal(o->lease_t, 105);
    assert_int_equal(o->resp_t, 5100);
    raft_advance(r, &rd);
    raft_set_applied(r, 7); /* beyond what it was handed: ignored */
    o = last_resp(r, &rd);
    assert_null(o);
    raft_advance(r, &rd);

    /* its clock passes the end: no lease; a decrease of the clock is ignored */
    raft_set_now(r, 5050 + 800 * 90 / 110);
    raft_lease_get(r, &li);
    assert_int_equal(li.lease_until, 0);
    raft_set_now(r, 5100);
    raft_lease_get(r, &li);
    assert_int_equal(li.lease_until, 0);

    /* a new term drops a valid lease */
    raft_set_now(r, 5800);
    heartbeat(r, 1, 2, 106, 5700, 800);
    raft_lease_get(r, &li);
    assert_true(li.lease_until > 5800);
    heartbeat(r, 3, 3, 1, 0, 0);
    raft_lease_get(r, &li);
    assert_int_equal(li.lease_until, 0);
    raft_free(r);
}

/* An APPEND of term `term` from leader 1 to follower 2: entries
 * first..first+n-1 of that term after (index, log_term), commit 0. */
static void append_to_2(raft *r, uint64_t term, uint64_t index, uint64_t log_term, uint64_t first,
                        uint32_t n)
{
    raft_entry es[4];
    uint8_t b[4] = {1, 2, 3, 4};
    memset(es, 0, sizeof es);
    for (uint32_t k = 0; k < n; k++) {
        es[k].index = first + k;
        es[k].term = term;
        es[k].type = RAFT_ENTRY_NORMAL;
        es[k].len = 1;
        es[k].data = b + k;
    }
    raft_msg m = to_2(RAFT_MSG_APPEND, 1, term);
    m.index = index;
    m.log_term = log_term;
    m.entries = es;
    m.n_entries = n;
    assert_int_equal(raft_step(r, &m), RAFT_OK);
}

/* The acknowledgements it sends once durable: to whom, of what index. */
static int durable_acks(raft *r, uint64_t *to, uint64_t *index, int cap)
{
    int n = 0;
    while (raft_has_ready(r)) {
        raft_ready rd;
        raft_ready_get(r, &rd);
        for (size_t k = 0; k < rd.n_msgs_after_persist; k++)
            if (rd.msgs_after_persist[k].type == RAFT_MSG_APPEND_RESP && n < cap) {
                to[n] = rd.msgs_after_persist[k].to;
                index[n++] = rd.msgs_after_persist[k].index;
            }
        raft_advance(r, &rd);
    }
    return n;
}

static uint64_t commit_of(raft *r)
{
    raft_status st;
    raft_status_get(r, &st);
    return st.commit;
}

static void peer_ack(raft *r, uint64_t from, uint64_t term, uint64_t index)
{
    raft_msg m = to_2(RAFT_MSG_APPEND_RESP, from, term);
    m.index = index;
    assert_int_equal(raft_step(r, &m), RAFT_OK);
}

/* Peer acknowledgements on a bare follower (2 of 1, 2, 3; leader 1): its
 * acknowledgement of new entries goes, once durable, to the leader and to
 * 3; an acknowledgement from 3 commits what both hold durably, if of the
 * current term, before the leader says so; one from the leader, of an
 * older term's entry, or without leases commits nothing. */
static void test_lease_peer_acks(void **state)
{
    (void)state;
    raft *r = bare_follower(LEASE);
    raft_set_now(r, 1000);
    append_to_2(r, 1, 0, 0, 1, 1); /* entry 1, term 1 */
    append_to_2(r, 2, 1, 1, 2, 2); /* leader 1 again, term 2: entries 2, 3 */
    uint64_t to[8], idx[8];
    int n = durable_acks(r, to, idx, 8);
    /* term 1: to 1 and 3 (index 1); term 2: to 1 and 3 (index 3) */
    assert_int_equal(n, 4);
    assert_int_equal(to[2], 1);
    assert_int_equal(idx[2], 3);
    assert_int_equal(to[3], 3);
    assert_int_equal(idx[3], 3);
    assert_int_equal(commit_of(r), 0);
    peer_ack(r, 1, 2, 3); /* the leader's own word is not an acknowledgement */
    assert_int_equal(commit_of(r), 0);
    peer_ack(r, 3, 1, 1); /* an older term's: dropped */
    assert_int_equal(commit_of(r), 0);
    peer_ack(r, 3, 2, 1); /* entry 1 is of term 1: not counted by itself */
    assert_int_equal(commit_of(r), 0);
    peer_ack(r, 3, 2, 2); /* entry 2 (term 2) on 2 and 3: committed, and 1 */
    assert_int_equal(commit_of(r), 2);
    peer_ack(r, 3, 2, 3);
    assert_int_equal(commit_of(r), 3);
    /* not past what it holds durably itself */
    append_to_2(r, 2, 3, 2, 4, 1);
    peer_ack(r, 3, 2, 4);
    assert_int_equal(commit_of(r), 3);
    n = durable_acks(r, to, idx, 8); /* entry 4 durable: now it counts */
    assert_int_equal(commit_of(r), 4);
    raft_free(r);

    /* without leases: acknowledgements to the leader only, none counted */
    r = bare_follower(0);
    append_to_2(r, 2, 0, 0, 1, 2);
    n = durable_acks(r, to, idx, 8);
    assert_int_equal(n, 1);
    assert_int_equal(to[0], 1);
    peer_ack(r, 3, 2, 2);
    assert_int_equal(commit_of(r), 0);
    raft_free(r);
}

/* The checker is not vacuous: clocks far beyond the assumed drift (here the
 * cores assume none) let a holder outlive the leader's view of its lease,
 * and the checker sees a read lease on stale state in some seeds. */
static void test_lease_broken_clock_is_caught(void **state)
{
    (void)state;
    int caught = 0, seeds = 10;
    for (int k = 0; k < seeds; k++) {
        sim_config c;
        sim_config_init(&c, 3, 1000 + (uint64_t)k + g_round * 7919);
        c.lease_ms = LEASE;
        c.drift_pct = 0;
        c.clock_drift_pct = 40;
        c.lease_soft = true;
        sim *s = sim_new(&c);
        int l = sim_check_one_leader(s);
        if (l >= 0) {
            for (int f = 0; f < 3; f++) {
                l = sim_leader(s);
                if (f == l || l < 0)
                    continue;
                int n = 3;
                sim_run_until(s, 5000, all_hold, &n);
                sim_disconnect(s, f);
                for (uint64_t x = 0; x < 15; x++) {
                    if (sim_leader(s) >= 0)
                        sim_start(s, sim_leader(s), 200 + x, NULL, NULL);
                    sim_run(s, 100);
                }
                sim_connect(s, f);
            }
        }
        if (sim_lease_violations(s) > 0)
            caught++;
        sim_free(s);
    }
    if (caught == 0)
        fail_msg("no violation caught in %d seeds with clocks 40%% off", seeds);
    printf("broken clocks: violations caught in %d of %d seeds\n", caught, seeds);
}

/* ---- rounds ---------------------------------------------------------------------- */

static int rounds(void)
{
    const char *e = getenv("HSTORE_ROUNDS");
    if (e && *e)
        return atoi(e);
    const char *m = getenv("HSTORE_TEST_MODE");
    if (m && strcmp(m, "asan") == 0)
        return 1;
    if (m && strcmp(m, "long") == 0)
        return 50;
    return 4;
}

static void run_rounds(void **state)
{
    void (*fn)(void **) = (void (*)(void **))(*state);
    int n = rounds();
    g_round_ok = false;
    g_last_name = NULL;
    for (g_round = 0; g_round < (uint64_t)n; g_round++)
        fn(NULL);
    g_round_ok = true;
}

static int after_rounds(void **state)
{
    (void)state;
    if (!g_round_ok && g_last_name)
        fprintf(stderr, "replay: HSTORE_SEED=%llu HSTORE_TEST=%s %s\n",
                (unsigned long long)g_last_seed, g_last_name, program_invocation_name);
    return 0;
}

#define T(f)                                          \
    {                                                 \
#f, run_rounds, NULL, after_rounds, (void *)f \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_lease_steady_state),
        T(test_lease_partitioned_follower),
        T(test_lease_paused_follower),
        T(test_lease_partitioned_old_leader),
        T(test_lease_leader_transfer),
        T(test_lease_clock_rates),
        T(test_lease_restart_holder),
        T(test_lease_needs_quorum_of_echoes),
        T(test_lease_new_leader_waits),
        T(test_lease_no_grants_during_transfer),
        T(test_lease_lagging_holder_not_renewed),
        T(test_lease_follower_grant_rules),
        T(test_lease_peer_acks),
        T(test_lease_broken_clock_is_caught),
    };
    const char *only = getenv("HSTORE_TEST");
    if (only && *only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests_name("raft_lease", tests, NULL, NULL);
}
