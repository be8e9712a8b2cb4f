/*
 * raft_sim.h — a deterministic simulated cluster of Raft cores for tests.
 *
 * N cores (ids 1..N, addressed here by slot 0..N-1) exchange messages over a
 * simulated network that can drop, delay, duplicate and reorder them and
 * partition any set of nodes.  Each node has a "disk" (hard state, log,
 * snapshot) that receives exactly what the ready/advance contract says must
 * be persisted; a crash throws away the core and everything not persisted,
 * and a restart boots a new core from the disk alone.  Time is simulated in
 * milliseconds; every node ticks every SIM_TICK_MS (50 ms) with its own
 * phase.  One seed drives everything.
 *
 * After every event the harness checks the Raft safety properties (Figure
 * 3.2 of the dissertation): election safety, leader append-only, log
 * matching (a hash chain per (index, term) on the persisted logs), leader
 * completeness (a new leader holds every entry applied anywhere) and state
 * machine safety (every node applies the same entry at each index, in
 * order).  A violation prints the seed, a one-line replay command and fails
 * the running cmocka test.
 *
 * Read leases (lease_ms > 0): every node has its own clock, offset + rate *
 * simulated time with the rate within clock_drift_pct of 1 (default: the
 * drift_pct the cores assume), given to its core by raft_set_now() before
 * each input; nodes report their applied index (raft_set_applied) as they
 * apply, one batch in four up to 100 ms late.  After every event the harness
 * checks: no node's visible index decreases or exceeds its commit index; a
 * node whose lease is valid by its own clock holds it from its current term;
 * and its reported applied index is at least every visible index any node
 * ever had (a stronger form of "known at that real time", valid because a
 * new leader makes nothing visible before all earlier leases ended).  A
 * paused node (sim_pause) keeps its clock and its lease, as a stopped
 * process keeps its kernel caches.  With lease_soft a violation is counted
 * (sim_lease_violations) instead of failing: for tests that break the clock
 * assumption on purpose.
 *
 * Commands are 8-byte values (sim_one/sim_start); value 0 is reserved for
 * no-op and configuration entries in sim_n_committed().
 */
#ifndef HSTORE_RAFT_SIM_H
#define HSTORE_RAFT_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "raftkv/raft.h"

#define SIM_MAX RAFT_MAX_NODES
#define SIM_TICK_MS 50
#define SIM_NOOP UINT64_MAX /* value reported for no-op / conf entries */

typedef struct sim_config {
    int n;       /* nodes in the initial configuration */
    int n_slots; /* slots created (>= n): extra ones may join later */
    uint64_t seed;
    int election_ticks;          /* default 20 (1-2 s) */
    int heartbeat_ticks;         /* default 4 (200 ms: 5 heartbeats/s per follower) */
    uint32_t max_inflight;       /* default 8 */
    uint32_t max_msg_bytes;      /* default 64 KiB */
    uint64_t max_inflight_bytes; /* default 256 KiB */
    uint32_t snapshot_chunk;     /* default 64 bytes: snapshots span several chunks */
    bool pre_vote, check_quorum;
    int compact_every;      /* snapshot once applied - snapshot >= this; 0 = never */
    uint32_t snap_pad;      /* extra bytes in each snapshot (default 200) */
    bool check_every_step;  /* safety checks after each event (default true) */
    bool external_snapshot; /* cores in raft_config.external_snapshot mode: the
                                  harness fills SNAPSHOT chunks from the sender's disk */
    bool async_persist;     /* a pipelined disk, as the node's writer thread: a batch
                                  is sent and its committed entries applied when it is
                                  handed out; its write lands 1-30 ms later (in order,
                                  up to RAFT_MAX_BATCHES out); a crash loses the writes
                                  still pending */
    uint32_t lease_ms;      /* read leases in the cores (0: off, the default) */
    uint32_t drift_pct;     /* the drift the cores assume (default 10) */
    int clock_drift_pct;    /* real spread of the node clocks' rates (default 10) */
    bool lease_soft;        /* count lease violations instead of failing */
} sim_config;

typedef struct sim sim;

void sim_config_init(sim_config *c, int n, uint64_t seed);
sim *sim_new(const sim_config *c);
void sim_free(sim *s);

/* Seed from HSTORE_SEED when set, else def.  Remembers the test's name for
 * the replay line. */
uint64_t sim_seed(uint64_t def, const char *test_name);

/* ---- time ---- */
uint64_t sim_now(const sim *s);
void sim_run(sim *s, uint64_t ms);
/* Runs until pred(s, arg) holds (checked after every event) or max_ms pass. */
bool sim_run_until(sim *s, uint64_t max_ms, bool (*pred)(sim *, void *), void *arg);

/* ---- faults ---- */
void sim_disconnect(sim *s, int i); /* lab's disconnect(i) */
void sim_connect(sim *s, int i);
bool sim_connected(const sim *s, int i);
void sim_partition(sim *s, const int *group);           /* group[i] per slot; same group talks */
void sim_heal(sim *s);                                  /* one group, everyone connected */
void sim_block(sim *s, int from, int to, bool blocked); /* one direction */
void sim_crash(sim *s, int i);
/* Crash in the middle of the next ready batch: its msgs go out, nothing of it
 * is persisted, msgs_after_persist never leave. */
void sim_crash_mid_batch(sim *s, int i);
void sim_cancel_crash(sim *s, int i); /* forget a pending sim_crash_mid_batch */
void sim_restart(sim *s, int i);
bool sim_alive(const sim *s, int i);
void sim_set_reliable(sim *s, bool reliable); /* unreliable: 10% loss, 0-26 ms delay */
void sim_set_loss(sim *s, int pct);
void sim_set_dup(sim *s, int pct);
void sim_set_long_reordering(sim *s, bool on);

/* ---- observation ---- */
raft *sim_raft(sim *s, int i); /* NULL when crashed */
void sim_status(sim *s, int i, raft_status *st);
uint64_t sim_msg_count(const sim *s); /* messages delivered so far */
uint64_t sim_msg_count_type(const sim *s, int type);
/* Leader of the highest term among connected live nodes, -1 if none. */
int sim_leader(sim *s);
/* lab checkOneLeader: polls up to 5 s; fails the test on two leaders in one
 * term (via the safety checks); returns -1 when no leader emerged. */
int sim_check_one_leader(sim *s);
bool sim_no_leader(sim *s);       /* no connected live node is leader */
uint64_t sim_agreed_term(sim *s); /* common term of connected nodes, 0 if they differ */
/* How many nodes have applied index (ever, across restarts); *val its value. */
int sim_n_committed(sim *s, uint64_t index, uint64_t *val);
/* Propose cmd on slot i if it is the leader: true with *index, *term.  The
 * node's ready batch is carried out at its next event (or sim_flush), so
 * proposals made back to back travel together, as they would in a node loop. */
bool sim_start(sim *s, int i, uint64_t cmd, uint64_t *index, uint64_t *term);
/* lab one(): for up to 10 s, propose on a connected leader and wait up to 2 s
 * for `expected` nodes to apply cmd at that index.  Returns the index, 0 on
 * failure. */
/* Carry out slot i's pending ready batches now (after direct raft_* calls). */
void sim_flush(sim *s, int i);
/* Proposes a configuration change of slot's server (type RAFT_CONF_*,
 * address "nodeN") on whichever node leads, retrying for 10 simulated
 * seconds; its log index (fails the test if never accepted). */
uint64_t sim_conf_change(sim *s, int type, int slot);
uint64_t sim_one(sim *s, uint64_t cmd, int expected, bool retry);
/* sim_one with a time budget of max_ms; 0 (no failure) when it runs out. */
uint64_t sim_try_one(sim *s, uint64_t cmd, int expected, bool retry, uint64_t max_ms);
/* Wait until n nodes applied index (lab wait()); 0 when it did not happen. */
bool sim_wait(sim *s, uint64_t index, int n, uint64_t max_ms);
uint64_t sim_max_committed(const sim *s);
/* Read states released to slot i: count, and the k-th one. */
int sim_n_reads(const sim *s, int i);
raft_read_state sim_read(const sim *s, int i, int k);
/* Snapshot installs (from the leader) and compactions seen by slot i. */
int sim_n_installs(const sim *s, int i);
uint64_t sim_applied(const sim *s, int i);

/* ---- read leases (lease_ms > 0) ---- */
/* Stops a node as SIGSTOP would: no ticks, no disk, messages to it held
 * until it resumes; its clock (and so its lease) runs on. */
void sim_pause(sim *s, int i, bool paused);
bool sim_paused(const sim *s, int i);
/* Stop (or resume) reporting the node's applied index to its core. */
void sim_hold_applied(sim *s, int i, bool hold);
/* The node's clock rate: 1 + ppm / 1e6. */
void sim_set_clock_rate(sim *s, int i, int64_t ppm);
uint64_t sim_clock(const sim *s, int i);
/* The node's lease state now (its clock given to its core first). */
void sim_lease(sim *s, int i, raft_lease_info *out);
/* True when the node's lease is valid by its own clock. */
bool sim_has_lease(sim *s, int i);
uint64_t sim_reported(const sim *s, int i); /* applied as reported to the core */
uint64_t sim_visible_max(const sim *s);     /* largest visible index ever */
uint64_t sim_lease_violations(const sim *s);

/* Fail (print seed + replay command, then fail the cmocka test). */
void sim_fail(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool sim_failed(const sim *s);
/* Full check of the safety properties now (also done after each event). */
void sim_check(sim *s);

/* Deterministic PRNG of the simulation (tests draw from it too). */
uint64_t sim_rand(sim *s);
int sim_rand_int(sim *s, int n); /* [0, n) */

#endif
