/*
 * test_raft_random.c — randomized safety run of the Raft core.
 *
 * Each seed builds a cluster of 3 to 7 nodes with random limits (in-flight
 * window, message size, snapshot chunk size, compaction interval, pre-vote
 * and check-quorum on or off) and drives it through a random schedule:
 * proposals on leaders and followers, partitions, one-way link cuts, crashes
 * (some in the middle of a ready batch) and restarts, message loss,
 * duplication and long reordering, ReadIndex requests and leader transfers.
 * The simulation checks election safety, leader append-only, log matching,
 * leader completeness and state-machine safety after every event; this file
 * adds that every read index covers every entry applied anywhere before the
 * read was asked, and that once everything is healed the cluster commits a
 * new entry on every node.  Half the seeds run with a pipelined disk: up to
 * RAFT_MAX_BATCHES ready batches out at once, committed entries applied
 * before their batch is written, writes landing later and lost by a crash.
 * Half of them (seed bit 2) run with read leases, node clocks of their own
 * and late applied reports, some crashes replaced by pauses (SIGSTOP), and
 * the simulation's lease invariants checked after every event.
 *
 * HSTORE_TEST_MODE: normal 10,000 seeds, asan 1,000, long 100,000.
 * HSTORE_SEEDS=n overrides the count; HSTORE_SEED=s runs seed s alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "raftkv/raft.h"
#include "tests/lib/raft_sim.h"

#define MAX_READS 256

typedef struct pending_read {
    int node;
    uint64_t ctx, bound;
} pending_read;

static void check_reads(sim *s, int n, const pending_read *pr, int n_pr)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < sim_n_reads(s, i); k++) {
            raft_read_state rs = sim_read(s, i, k);
            for (int j = 0; j < n_pr; j++)
                if (pr[j].ctx == rs.ctx) {
                    if (pr[j].node != i)
                        sim_fail(s, "read %llu released on node %d, asked on %d",
                                 (unsigned long long)rs.ctx, i + 1, pr[j].node + 1);
                    if (rs.index < pr[j].bound)
                        sim_fail(s, "stale read index %llu < %llu applied before the read",
                                 (unsigned long long)rs.index, (unsigned long long)pr[j].bound);
                }
        }
}

static void run_seed(uint64_t seed)
{
    sim_config c;
    uint64_t z = seed * 0x9e3779b97f4a7c15ULL + 12345;
#define R(n) ((int)((z = z * 6364136223846793005ULL + 1442695040888963407ULL) >> 33) % (n))
    sim_config_init(&c, 3 + R(5), seed);
    c.max_inflight = 1 + (uint32_t)R(8);
    c.max_msg_bytes = 8 + (uint32_t)R(200);
    c.max_inflight_bytes = 8 + (uint64_t)R(400);
    c.snapshot_chunk = 8 + (uint32_t)R(120);
    c.snap_pad = (uint32_t)R(300);
    c.compact_every = R(3) == 0 ? 0 : 3 + R(30);
    c.pre_vote = R(5) != 0;
    c.check_quorum = R(5) != 0;
    c.heartbeat_ticks = 2 + R(3);
    /* Membership changes need pre-vote and check-quorum: a removed server
     * that never learns of its removal would otherwise disrupt (§4.2.3). */
    bool members = c.pre_vote && c.check_quorum && R(2) == 0;
    if (members)
        c.n_slots = c.n + 2;
#undef R
    /* half the seeds keep snapshot bytes outside the core (not drawn from R:
     * the other choices of a seed stay what they were) */
    c.external_snapshot = (seed & 1) != 0;
    /* and half of them write through a pipelined disk (seed bit 1) */
    c.async_persist = (seed & 2) != 0;
    /* and half of all of them with read leases (seed bit 2), of 600-1300 ms */
    bool lease = (seed & 4) != 0;
    if (lease)
        c.lease_ms = 600 + 100 * (uint32_t)((seed >> 3) & 7);
    int n = c.n_slots;
    sim *s = sim_new(&c);
    pending_read reads[MAX_READS];
    int n_reads = 0;
    uint64_t val = 1;
    int steps = 150 + sim_rand_int(s, 150);
    for (int step = 0; step < steps; step++) {
        int what = sim_rand_int(s, 100);
        int i = sim_rand_int(s, n);
        if (what < 35) {
            /* proposals: on the leader, or forwarded by a follower */
            int k = 1 + sim_rand_int(s, 5);
            for (int j = 0; j < k; j++) {
                raft *r = sim_raft(s, i);
                if (!r)
                    break;
                /* mostly 8-byte values, sometimes bigger ones (batching by
                 * max_msg_bytes), sometimes empty commands */
                uint8_t b[300];
                size_t len = 8;
                int shape = sim_rand_int(s, 10);
                if (shape == 0)
                    len = 0;
                else if (shape == 1)
                    len = 9 + (size_t)sim_rand_int(s, 290);
                for (size_t q = 0; q < len; q++)
                    b[q] = (uint8_t)(val >> (8 * (q % 8)));
                val++;
                raft_propose(r, b, len, NULL, NULL);
            }
            sim_flush(s, i);
        } else if (what < 45) {
            int group[SIM_MAX];
            for (int q = 0; q < n; q++)
                group[q] = sim_rand_int(s, 2);
            sim_partition(s, group);
        } else if (what < 55) {
            sim_heal(s);
        } else if (what < 62) {
            /* crash: often the leader (Figure 8 schedules), sometimes in the
             * middle of its ready batch */
            int l = sim_leader(s);
            if (l >= 0 && sim_rand_int(s, 2))
                i = l;
            if (lease && sim_rand_int(s, 2)) {
                /* stopped, not dead: its clock and lease run on */
                sim_pause(s, i, !sim_paused(s, i));
            } else if (sim_rand_int(s, 2))
                sim_crash(s, i);
            else
                sim_crash_mid_batch(s, i);
        } else if (what < 72) {
            if (!sim_alive(s, i))
                sim_restart(s, i);
        } else if (what < 77) {
            sim_block(s, i, sim_rand_int(s, n), true);
        } else if (what < 82) {
            sim_set_loss(s, sim_rand_int(s, 4) * 10);
            sim_set_dup(s, sim_rand_int(s, 3) * 10);
            sim_set_long_reordering(s, sim_rand_int(s, 4) == 0);
            sim_set_reliable(s, sim_rand_int(s, 2));
        } else if (what < 92) {
            raft *r = sim_raft(s, i);
            if (r && n_reads < MAX_READS) {
                uint64_t ctx = (uint64_t)step * 100 + (uint64_t)i + 1;
                if (raft_read_index(r, ctx) == RAFT_OK) {
                    reads[n_reads].node = i;
                    reads[n_reads].ctx = ctx;
                    /* Without leases every applied state may have been
                     * shown; with them nothing past a visible index is
                     * (node/lease.c), and a follower may apply, by peer
                     * acknowledgements, past the leader's commit. */
                    reads[n_reads].bound = c.lease_ms ? sim_visible_max(s) : sim_max_committed(s);
                    n_reads++;
                }
                sim_flush(s, i);
            }
        } else if (what < 96 || !members) {
            int l = sim_leader(s);
            if (l >= 0) {
                raft_transfer_leader(sim_raft(s, l), (uint64_t)sim_rand_int(s, n) + 1);
                sim_flush(s, l);
            }
        } else {
            /* add a server that is not a member, or remove one */
            int l = sim_leader(s);
            if (l >= 0) {
                raft_status st;
                sim_status(s, l, &st);
                raft_conf_change cc;
                memset(&cc, 0, sizeof cc);
                cc.id = (uint64_t)i + 1;
                bool member = false, learner = false;
                for (uint32_t q = 0; q < st.conf.n; q++)
                    if (st.conf.ids[q] == cc.id) {
                        member = true;
                        learner = st.conf.learner[q];
                    }
                /* learners too: added as one, promoted or removed */
                bool coin = sim_rand_int(s, 2);
                if (member)
                    cc.type = learner && coin ? RAFT_CONF_PROMOTE : RAFT_CONF_REMOVE;
                else
                    cc.type = coin ? RAFT_CONF_ADD_LEARNER : RAFT_CONF_ADD;
                if (!member || st.conf.n > 1) {
                    raft_propose_conf(sim_raft(s, l), &cc, NULL);
                    sim_flush(s, l);
                }
            }
        }
        /* mostly short pauses (a few messages in flight), sometimes long ones */
        sim_run(s, sim_rand_int(s, 4) ? (uint64_t)sim_rand_int(s, 40)
                                      : (uint64_t)sim_rand_int(s, 1500));
    }
    check_reads(s, n, reads, n_reads);

    /* Heal everything: the cluster must make progress on every node. */
    sim_heal(s);
    for (int i = 0; i < n; i++)
        sim_pause(s, i, false);
    sim_set_reliable(s, true);
    sim_set_loss(s, 0);
    sim_set_dup(s, 0);
    sim_set_long_reordering(s, false);
    for (int i = 0; i < n; i++) {
        sim_cancel_crash(s, i);
        if (!sim_alive(s, i))
            sim_restart(s, i);
    }
    sim_run(s, 3000); /* let delayed messages drain and a leader emerge */
    int l = sim_check_one_leader(s);
    if (l < 0)
        sim_fail(s, "no leader after healing");
    /* every member of the leader's configuration must apply a new entry */
    sim_one(s, 0xfeedULL << 32 | seed, 1, true);
    l = sim_leader(s);
    raft_status st;
    sim_status(s, l, &st);
    int members_now = (int)st.conf.n;
    uint64_t idx = sim_one(s, 0xbeefULL << 32 | seed, members_now, true);
    if (!sim_wait(s, idx, members_now, 10000))
        sim_fail(s, "healed cluster did not converge");
    check_reads(s, n, reads, n_reads);
    sim_check(s);
    sim_free(s);
}

static void test_raft_random_safety(void **state)
{
    (void)state;
    const char *mode = getenv("HSTORE_TEST_MODE");
    uint64_t count = 10000;
    if (mode && strcmp(mode, "asan") == 0)
        count = 1000;
    if (mode && strcmp(mode, "long") == 0)
        count = 100000;
    const char *e = getenv("HSTORE_SEEDS");
    if (e && *e)
        count = strtoull(e, NULL, 0);
    uint64_t first = 1;
    const char *one = getenv("HSTORE_SEED");
    if (one && *one) {
        first = strtoull(one, NULL, 0);
        count = 1;
    }
    sim_seed(first, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t k = 0; k < count; k++)
        run_seed(first + k);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("raft random safety: %llu seeds (from %llu, 3-7 nodes, half with read leases) in "
           "%.1f s\n",
           (unsigned long long)count, (unsigned long long)first, secs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_random_safety),
    };
    return cmocka_run_group_tests_name("raft_random", tests, NULL, NULL);
}
