/*
 * raft.h — the Raft consensus algorithm as a pure, deterministic state machine.
 *
 * The core never does I/O, never reads a clock, never calls rand(), owns no
 * threads and has no global state.  Time enters by raft_tick(), messages by
 * raft_step(), proposals by raft_propose() and friends.  What the caller must
 * do comes out as a "ready" batch (raft_ready) that the caller carries out in
 * this order and then acknowledges with raft_advance():
 *
 *   1. send rd.msgs               (may go out at once, even before step 2: the
 *                                  leader's AppendEntries/heartbeats/snapshot
 *                                  chunks; dissertation §10.2.1)
 *   2. persist rd.hs (if rd.hs_changed), rd.entries and rd.snapshot, durably
 *   3. send rd.msgs_after_persist (votes, append responses, vote requests ...:
 *                                  anything that promises something about the
 *                                  sender's durable state)
 *   4. install rd.snapshot into the state machine (if any), then apply
 *      rd.committed in order
 *   5. release rd.read_states to their waiting readers once the local state
 *      machine has applied rd.read_states[i].index
 *   6. raft_advance(r, &rd)
 *
 * Persistence contract: nothing is acknowledged to a peer, nor counted toward
 * a quorum, before the caller reports it durable by raft_advance().  The
 * leader counts its own log only after raft_advance() of the batch holding
 * the entries; its AppendEntries may leave before its own write.
 *
 * The caller may keep calling raft_step/raft_tick/raft_propose/... between
 * raft_ready_get() and raft_advance() (e.g. while a disk write is running);
 * what they produce goes into the next batch.  Up to RAFT_MAX_BATCHES
 * batches may be out at once (a pipeline: the caller sends the msgs and
 * applies the committed entries of a new batch while the writes of earlier
 * ones are still running; dissertation §10.2.1).  Batches are persisted,
 * their msgs_after_persist sent and raft_advance() called in the order they
 * were handed out.  Committed entries may be applied before their batch is
 * durable (they are durable on a majority), but a batch's snapshot must be
 * persisted and installed before any later batch's committed entries are
 * applied.
 *
 * Joining a running cluster: a new server boots with an empty configuration
 * (boot.snapshot.conf.n == 0).  It never starts elections; the leader sends it
 * a snapshot first (possibly one at index 0 with len 0: the empty initial
 * state, carrying the initial configuration) and then the log, in which it
 * finds the RAFT_ENTRY_CONF that added it.
 *
 * Memory: everything inside a raft_ready is owned by the core and stays valid
 * until raft_advance() (or raft_free()).  Inputs to raft_step()/raft_propose()
 * are copied; the caller keeps ownership of its buffers.
 *
 * Not thread-safe: one thread drives one core.
 */
#ifndef HSTORE_RAFT_H
#define HSTORE_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFT_MAX_NODES 9    /* largest configuration (voters and learners) */
#define RAFT_MAX_BATCHES 64 /* ready batches out at once (raft_ready_get) */
#define RAFT_ADDR_MAX 64    /* opaque address carried in a conf change */
/* Terms never wrap.  A message whose term is above RAFT_TERM_MAX, or more
 * than RAFT_TERM_JUMP_MAX above the node's own term, is ignored (RAFT_EINVAL):
 * a real term grows by one per election, so such a term can only come from a
 * broken or hostile sender, and adopting it would exhaust the term space for
 * good.  A node whose term reached RAFT_TERM_MAX no longer campaigns, and a
 * store whose hard state holds a larger term is refused at boot. */
#define RAFT_TERM_MAX (UINT64_MAX / 2)
#define RAFT_TERM_JUMP_MAX (1ull << 32)

/* Error codes: 0 is success, negative values below. */
enum {
    RAFT_OK = 0,
    RAFT_ENOTLEADER = -1, /* this node is not the leader (and could not forward) */
    RAFT_ENOLEADER = -2,  /* no leader known: try again later */
    RAFT_EBUSY = -3,      /* e.g. a conf change or transfer already in progress */
    RAFT_EINVAL = -4,     /* bad argument or malformed message */
    RAFT_ENOMEM = -5,
    RAFT_ETOOBIG = -6,    /* proposal larger than config.max_entry_bytes */
    RAFT_ECOMPACTED = -7, /* index already compacted into the snapshot */
};
const char *raft_strerror(int rc);

typedef enum { RAFT_FOLLOWER = 0, RAFT_PRE_CANDIDATE, RAFT_CANDIDATE, RAFT_LEADER } raft_role;
const char *raft_role_name(raft_role role);

/* ---- Log entries ---------------------------------------------------------- */

typedef enum {
    RAFT_ENTRY_NORMAL = 0, /* application command: opaque bytes */
    RAFT_ENTRY_NOOP = 1,   /* appended by a new leader (§8 of the paper) */
    RAFT_ENTRY_CONF = 2,   /* membership change, data = encoded raft_conf_change */
} raft_entry_type;

typedef struct raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* raft_entry_type */
    uint32_t len;
    uint8_t *data; /* len bytes (NULL when len == 0) */
} raft_entry;

/* Durable per-node state: must be persisted before messages that depend on it. */
typedef struct raft_hard_state {
    uint64_t term;
    uint64_t vote;   /* node id voted for in term, 0 = none */
    uint64_t commit; /* may be persisted lazily; never ahead of the log */
} raft_hard_state;

/* A cluster configuration: the members and their addresses (opaque to the
 * core; the node gives them meaning).  A member with learner[i] set is a
 * learner: it receives the log and snapshots like any follower, but it
 * neither votes nor campaigns, and it is not counted in any quorum (commit,
 * election, check-quorum, ReadIndex).  A zeroed learner[] means all voters. */
typedef struct raft_conf {
    uint32_t n;
    uint64_t ids[RAFT_MAX_NODES];
    char addrs[RAFT_MAX_NODES][RAFT_ADDR_MAX];
    bool learner[RAFT_MAX_NODES];
} raft_conf;

typedef enum {
    RAFT_CONF_ADD = 1,         /* add a voter */
    RAFT_CONF_REMOVE = 2,      /* remove a voter or a learner */
    RAFT_CONF_ADD_LEARNER = 3, /* add a learner */
    RAFT_CONF_PROMOTE = 4,     /* make a learner a voter (addr ignored) */
} raft_conf_change_type;

/* "add", "remove", "add learner", "promote" ("?" for anything else). */
const char *raft_conf_change_name(int type);

/* Voters in c (members that are not learners). */
uint32_t raft_conf_voters(const raft_conf *c);

/* One-server-at-a-time change (dissertation §4.1); takes effect on append.
 * Adding a learner changes no quorum; promoting one adds one voter, like
 * RAFT_CONF_ADD, so it too is one single-server step. */
typedef struct raft_conf_change {
    uint8_t type; /* raft_conf_change_type */
    uint64_t id;
    char addr[RAFT_ADDR_MAX];
} raft_conf_change;

/* Encode/decode a conf change as carried in a RAFT_ENTRY_CONF entry's data. */
size_t raft_conf_change_encode(const raft_conf_change *cc, uint8_t *buf, size_t cap);
int raft_conf_change_decode(const uint8_t *buf, size_t len, raft_conf_change *cc);

/* Snapshot: the state machine's bytes at (index, term) with the configuration
 * in force at that index. */
typedef struct raft_snapshot {
    uint64_t index;
    uint64_t term;
    raft_conf conf;
    uint8_t *data;
    size_t len;
} raft_snapshot;

/* ---- Messages ------------------------------------------------------------- */

typedef enum {
    RAFT_MSG_PREVOTE = 1,
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_VOTE,
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_APPEND, /* AppendEntries, also the heartbeat (n_entries 0) */
    RAFT_MSG_APPEND_RESP,
    RAFT_MSG_SNAPSHOT, /* one chunk of InstallSnapshot */
    RAFT_MSG_SNAPSHOT_RESP,
    RAFT_MSG_READINDEX, /* follower -> leader: please confirm a read index */
    RAFT_MSG_READINDEX_RESP,
    RAFT_MSG_TIMEOUT_NOW, /* leader transfer: start an election now */
    RAFT_MSG_PROPOSE,     /* follower -> leader: forwarded proposal entries */
    RAFT_MSG_TYPE_MAX
} raft_msg_type;

const char *raft_msg_type_name(int type);

/* One flat message; which fields matter depends on type (documented per field).
 * Every pointer inside refers to memory owned by whoever built the message
 * (the core for messages it emits, the caller for messages it passes to step). */
typedef struct raft_msg {
    uint8_t type;
    uint64_t from, to;
    uint64_t term;
    /* VOTE/PREVOTE: candidate's last log position.  APPEND: previous entry.
     * SNAPSHOT: snapshot's last index/term. */
    uint64_t index;
    uint64_t log_term;
    /* APPEND: leader's commit.  APPEND_RESP: follower's last index on reject.
     * A heartbeat is an APPEND with index 0, log_term 0 and no entries; its
     * commit is min(follower's match, commit); the answer is an APPEND_RESP
     * with index 0.  APPEND_RESP (success): index = last index known to match.
     * READINDEX_RESP: index = the read index. */
    uint64_t commit;
    /* *_RESP: true when the request was refused. */
    bool reject;
    /* APPEND_RESP on reject: conflict hint (term of the conflicting entry, and
     * the first index the follower has of that term) for fast backtracking;
     * hint_term 0 with hint_index = follower's last + 1 when its log is too
     * short; both 0 when it has no configuration yet and needs a snapshot. */
    uint64_t hint_term;
    uint64_t hint_index;
    /* VOTE: set when the election was triggered by TIMEOUT_NOW (leader
     * transfer), so it may disturb a live leader. */
    bool transfer;
    /* READINDEX/READINDEX_RESP: the reader's opaque context.  APPEND and
     * APPEND_RESP: the leader's ReadIndex round, echoed back (§6.4). */
    uint64_t ctx;
    /* APPEND/PROPOSE: entries.  PROPOSE carries RAFT_ENTRY_NORMAL entries
     * only (index/term ignored); conf changes are never forwarded. */
    uint32_t n_entries;
    raft_entry *entries;
    /* SNAPSHOT: chunk of the snapshot's bytes at offset; done on the last one;
     * conf is the snapshot's configuration; snap_len the total length.
     * SNAPSHOT_RESP: index of the snapshot, offset = next byte wanted, done
     * when installed (or not needed), reject when the chunk did not fit. */
    uint64_t offset;
    uint64_t snap_len;
    bool done;
    raft_conf conf;
    uint32_t chunk_len;
    uint8_t *chunk;
    /* Read leases (config.lease_ms > 0; all 0 otherwise, see raft_lease_get).
     * APPEND: lease_t = the leader's clock when it emitted the message;
     * visible = its visible index; grant_resp_t and grant_ms = the latest
     * read lease granted to the receiver (0 when none): the resp_t of the
     * receiver's APPEND_RESP it answers and how many leader milliseconds the
     * leader's own lease still had when that response arrived.
     * APPEND_RESP: lease_t = the lease_t of the APPEND it answers (or the
     * latest one heard, when sent because the applied index moved); resp_t =
     * the follower's clock when it emitted the response; applied = its
     * applied index as last reported by raft_set_applied(). */
    uint64_t lease_t;
    uint64_t resp_t;
    uint64_t grant_resp_t;
    uint64_t grant_ms;
    uint64_t visible;
    uint64_t applied;
} raft_msg;

/* ---- Configuration and construction -------------------------------------- */

typedef struct raft_config {
    uint64_t id;         /* this node, non-zero */
    int election_ticks;  /* election timeout, randomized in [e, 2e); default 10, >= 2 */
    int heartbeat_ticks; /* default 1; < election_ticks.  Also the retransmission
                                  * timer: a follower that made no progress for two
                                  * heartbeats is probed again */
    uint64_t seed;       /* PRNG seed: the only source of randomness */
    bool pre_vote;       /* default true (set by raft_config_init) */
    bool check_quorum;   /* default true */
    /* Flow control of replication, in messages and in bytes (like etcd's
     * MaxInflightMsgs, MaxSizePerMsg and MaxInflightBytes).  An AppendEntries
     * carries at most max_msg_bytes of entry data, but always at least one
     * entry; a follower in the pipelined state has at most max_inflight
     * AppendEntries and max_inflight_bytes of entry data unacknowledged (a
     * message is sent while the window holds less than max_inflight_bytes,
     * so the window can overshoot by one message).  Together with
     * max_entry_bytes this bounds what stands in a peer's queue in front of
     * a heartbeat. */
    uint32_t max_inflight;       /* append messages in flight per follower; default 64 */
    uint32_t max_msg_bytes;      /* bytes of entries per AppendEntries; default 1 MiB */
    uint64_t max_inflight_bytes; /* bytes of entries in flight per follower; default 8 MiB */
    uint32_t max_entry_bytes;    /* largest single proposal; default 64 MiB */
    uint32_t snapshot_chunk;     /* InstallSnapshot chunk size; default 1 MiB */
    /* External snapshots (default false).  The caller keeps the snapshot's
     * bytes (e.g. in its store) and the core holds only index, term, conf and
     * length, so a node never holds a second copy of its state in memory:
     *   - raft_new() and raft_compact() take data == NULL (data is ignored);
     *   - a SNAPSHOT message the core emits has chunk == NULL: before sending
     *     it the caller fills chunk with chunk_len bytes at offset of its
     *     snapshot at m->index (a message it cannot fill it drops: the core
     *     resends after two heartbeats without progress);
     *   - a snapshot received from the leader is handed out in a ready batch
     *     as usual; the core frees its bytes at that batch's raft_advance(),
     *     so the caller must have stored them by then. */
    bool external_snapshot;
    /* Read leases (raft_lease_get): the longest lease in the caller's
     * milliseconds (raft_set_now); 0, the default, turns them off, and then
     * messages carry no lease fields.  drift_pct: the assumed bound on how
     * far each node's clock rate may be from real time, in percent (default
     * 10, < 100); leases are shortened and waits lengthened by it. */
    uint32_t lease_ms;
    uint32_t drift_pct;
    /* Peer acknowledgements (default true; with read leases only): a
     * follower also sends its acknowledgement of a batch of one or two new
     * entries (a lightly loaded leader's) to the other voters, and takes as committed an entry of the current term that it
     * and enough of them (a quorum, the leader not counted) hold durably,
     * without waiting for the leader to say so: one message delay sooner,
     * which is what a write waits for when every lease holder must apply
     * it.  Not without leases: a ReadIndex read is at the leader's commit
     * index, and a follower could have applied, and shown, more; with
     * leases nothing is shown past the visible index, which never passes
     * the leader's commit. */
    bool peer_acks;
} raft_config;

/* Fills defaults; the caller then sets id and seed. */
void raft_config_init(raft_config *c);

/* What a node had persisted, handed back at start.  All pointers are the
 * caller's (copied by raft_new).  For a brand new cluster: zero hard state,
 * no snapshot (snapshot.index 0) with snapshot.conf = the initial members, no
 * entries. */
typedef struct raft_boot {
    raft_hard_state hs;
    raft_snapshot snapshot;    /* index 0 when none; conf always valid */
    const raft_entry *entries; /* the log after snapshot.index, in order */
    size_t n_entries;
} raft_boot;

/* The configuration a node booting from b will be in: the snapshot's, with
 * the log's configuration changes applied in order (n == 0: none stored). */
void raft_boot_conf(const raft_boot *b, raft_conf *out);

typedef struct raft raft;

/* Returns NULL on a bad config/boot (e.g. an entry index gap) or no memory;
 * *err (if not NULL) then says why. */
raft *raft_new(const raft_config *cfg, const raft_boot *boot, const char **err);
void raft_free(raft *r);

/* ---- Inputs --------------------------------------------------------------- */

/* One unit of logical time. */
void raft_tick(raft *r);

/* The caller's monotonic clock in milliseconds, the only real time the core
 * sees (used by read leases alone; ticks still drive elections).  Call it
 * before raft_tick(), raft_step() and raft_ready_get(); a value below an
 * earlier one is ignored.  The clock must not go back across a restart of
 * the process either (CLOCK_MONOTONIC within one boot). */
void raft_set_now(raft *r, uint64_t now_ms);

/* The caller's state machine has applied every committed entry up to index
 * AND dropped every cached copy of what they changed (e.g. the kernel's
 * caches): only then may reads be served from it under a lease.  Until the
 * first call the core assumes 0.  Values above what ready batches handed out,
 * or below an earlier one, are ignored.  A follower holding a lease tells its
 * leader at once (the visible index waits for it). */
void raft_set_applied(raft *r, uint64_t index);

/* Deliver a message from a peer.  Messages not addressed to this node, from
 * unknown terms, or malformed are ignored (RAFT_EINVAL). */
int raft_step(raft *r, const raft_msg *m);

/* Propose an application command (RAFT_EBUSY during a leader transfer).
 * On the leader the entry is appended at once and *index, *term (may be
 * NULL) say where; on a follower the proposal
 * is forwarded to the known leader (no delivery guarantee: the caller retries
 * with its own exactly-once ids) and *index is set to 0.  Returns
 * RAFT_ENOLEADER if no leader is known. */
int raft_propose(raft *r, const uint8_t *data, size_t len, uint64_t *index, uint64_t *term);

/* Propose a membership change (leader only).  RAFT_EBUSY while an earlier
 * change is not yet committed (or a leader transfer runs); RAFT_EINVAL when
 * the change does not apply (adding a member twice, removing or promoting a
 * non-member, promoting a voter, removing the last voter). */
int raft_propose_conf(raft *r, const raft_conf_change *cc, uint64_t *index);

/* Ask for a linearizable read point.  ctx is the caller's opaque id.  When the
 * leader has confirmed its leadership for a heartbeat round (ReadIndex,
 * dissertation §6.4), a raft_read_state {ctx, index} appears in a ready
 * batch; the read may be served once the local state machine has applied
 * index.  Works on followers (asks the leader).  RAFT_ENOLEADER if no leader
 * known.  A request may be silently lost (leader change); the caller keeps a
 * deadline. */
int raft_read_index(raft *r, uint64_t ctx);

/* Hand leadership to target (leader only; §3.10): the target is brought up
 * to date, then sent TIMEOUT_NOW.  Proposals get RAFT_EBUSY until it is done
 * or an election timeout passes.  RAFT_EINVAL for self, a non-member or a
 * learner, RAFT_EBUSY while a transfer to another target is running. */
int raft_transfer_leader(raft *r, uint64_t target);

/* The caller has a snapshot of its state machine as of applied index `index`
 * (<= applied).  The core takes ownership of data (malloc'ed, freed by the
 * core; with config.external_snapshot data must be NULL and len is the
 * length of the caller's stored bytes), drops its log up to index, and will
 * send this snapshot to followers that need entries before it. *out_conf receives the configuration at index
 * (to be stored with the snapshot).  Call it between raft_ready_get() calls,
 * never while filling a batch; later batches may still be out (what they
 * hold of the log stays valid until their raft_advance()), but every batch
 * that holds entries up to index must have been advanced.
 * On error (RAFT_ECOMPACTED: index <= current snapshot; RAFT_EINVAL: index
 * beyond applied) the caller keeps ownership of data. */
int raft_compact(raft *r, uint64_t index, uint8_t *data, size_t len, raft_conf *out_conf);

/* The configuration in force at index (snapshot index <= index <= last), the
 * one raft_compact(index) would report: a caller that stores its snapshot
 * before compacting takes it at the snapshot's start.  RAFT_OK, or
 * RAFT_EINVAL for an index outside that range. */
int raft_conf_at_index(const raft *r, uint64_t index, raft_conf *out);

/* ---- Output --------------------------------------------------------------- */

typedef struct raft_read_state {
    uint64_t ctx;
    uint64_t index;
} raft_read_state;

typedef struct raft_ready {
    bool hs_changed;
    raft_hard_state hs;
    /* Entries to persist.  If entries[0].index <= the last persisted index,
     * the persisted log from that index on must be replaced (conflict). */
    raft_entry *entries;
    size_t n_entries;
    /* A snapshot received from the leader: persist it, dropping the whole
     * persisted log (the core keeps none of it), before the entries of this
     * batch, which follow it; then install it before applying committed.
     * NULL when none.  Its data stays valid until raft_advance(). */
    raft_snapshot *snapshot;
    raft_msg *msgs; /* send now */
    size_t n_msgs;
    raft_msg *msgs_after_persist; /* send only after persisting this batch */
    size_t n_msgs_after_persist;
    raft_entry *committed; /* apply in order */
    size_t n_committed;
    raft_read_state *read_states;
    size_t n_read_states;
} raft_ready;

/* True when there is something to do (always false while RAFT_MAX_BATCHES
 * batches are out, i.e. handed out by raft_ready_get() and not yet
 * acknowledged by raft_advance()). */
bool raft_has_ready(const raft *r);
/* Fills *rd: a new batch, handed out after the ones still out. */
void raft_ready_get(raft *r, raft_ready *rd);
/* The oldest batch still out (rd) has been done: persisted, sent, applied.
 * Batches are acknowledged in the order they were handed out. */
void raft_advance(raft *r, const raft_ready *rd);

/* ---- Introspection -------------------------------------------------------- */

typedef struct raft_peer_status {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    int state;         /* 0 probe, 1 replicate (pipelined), 2 snapshot */
    bool active;       /* heard from within the last election timeout */
    bool learner;      /* a learner (not counted in quorums) */
    uint64_t applied;  /* read leases: its applied index as last reported */
    bool lease_holder; /* read leases: the leader counts it as a holder now */
} raft_peer_status;

/* Why the latest election started, or why a leader stepped down (the node
 * logs it).  seq counts these events, so a caller sees each one once. */
typedef enum raft_election_reason {
    RAFT_ELECTION_NONE = 0,
    RAFT_ELECTION_TIMEOUT,   /* nothing heard from a leader for an election timeout */
    RAFT_ELECTION_TRANSFER,  /* the leader asked (TIMEOUT_NOW: leader transfer) */
    RAFT_ELECTION_STEP_DOWN, /* leader: heard from fewer than a quorum (check-quorum) */
} raft_election_reason;

typedef struct raft_election_event {
    uint64_t seq; /* 0: none yet */
    raft_election_reason reason;
    uint64_t term;           /* the term it happened in (before any new campaign) */
    uint64_t leader;         /* TIMEOUT: last leader heard from (0: none ever);
                                  * TRANSFER: the leader that asked */
    int64_t idle_ticks;      /* TIMEOUT: ticks since its last message; -1: none ever */
    uint32_t active, quorum; /* STEP_DOWN: voters heard from (self included), needed */
} raft_election_event;

const char *raft_election_reason_name(raft_election_reason r);

typedef struct raft_status {
    uint64_t id;
    raft_role role;
    uint64_t term;
    uint64_t vote;
    uint64_t leader; /* 0 when unknown */
    uint64_t commit;
    uint64_t applied;     /* last index handed out in committed */
    uint64_t first_index; /* first index still in the log */
    uint64_t last_index;
    uint64_t snapshot_index;
    raft_conf conf;   /* the configuration in force (latest appended) */
    uint32_t n_peers; /* leader only: replication progress */
    raft_peer_status peers[RAFT_MAX_NODES];
    raft_election_event election; /* the latest election start or step-down */
} raft_status;

void raft_status_get(const raft *r, raft_status *st);

/* ---- Read leases (config.lease_ms > 0) -------------------------------------
 *
 * The leader holds a lease while a quorum of voters (itself included) has
 * echoed an AppendEntries it sent less than lease_ms*(100-drift_pct)/100 of
 * its clock ago.  A new leader holds none, grants none and does not move
 * the visible index (below) for lease_ms*(100+drift_pct)/100 of its clock
 * after its election, by when every lease of an earlier leader has ended;
 * it holds and grants none either before its own first entry (its no-op)
 * is visible, which puts the visible index above anything an earlier term
 * made visible.  A leader transferring leadership holds and grants none
 * from the moment the transfer starts (raft_transfer_leader) until it
 * gives up.  While it holds its lease the leader grants every member
 * (learners too) that has applied the visible index, and has not kept it
 * back for more than lease_ms/4, a read lease that ends before its own,
 * measured from the member's last response.
 *
 * The visible index V (leader) is the largest committed index that the
 * leader and every member it counts as a lease holder have applied
 * (raft_set_applied); it never decreases and the leader sends it with every
 * AppendEntries.  A follower's visible is the largest V it heard from its
 * leader, capped at its own commit index.
 *
 * Guarantee: if a node's clock reads now < lease_until, then at this moment
 * (and until its clock reaches lease_until) no node of the cluster, in any
 * term, has or will have a visible index above this node's applied index
 * as reported by raft_set_applied() (in particular applied >= visible here).
 * A read served from this node's state as of applied index a therefore
 * reflects every index that is visible anywhere; it is linearizable if the
 * caller (1) acknowledges a write only once the visible index it knows
 * reaches the write's index, and (2) returns such a read only once its own
 * visible index reaches a (then every later read on any lease holder sees at
 * least a).  A node without a lease uses raft_read_index() and the same rule
 * (2) for the read index.
 *
 * Clock assumption: every node's clock is monotonic and runs at a rate
 * within drift_pct percent of real time.  Clocks need not agree on their
 * values (no synchronisation): a node only ever compares its own readings,
 * and a duration measured on one node is shrunk or stretched by the drift
 * bound before another node relies on it.  A clock running faster or slower
 * than the bound can let a lease outlive the leader's view of it, and a read
 * on that node may then miss a write that was already acknowledged. */
typedef struct raft_lease_info {
    uint64_t lease_until; /* end of this node's read lease, its clock; 0: none */
    uint64_t term;        /* the term the lease was granted in (0: none) */
    uint64_t visible;     /* V on the leader, the V heard on a follower */
    uint32_t holders;     /* leader: members it counts as holding a lease now */
} raft_lease_info;

void raft_lease_get(const raft *r, raft_lease_info *out);

/* Bytes of entry data held in the log after the snapshot (for deciding when to
 * compact, like 6.824's maxraftstate). */
uint64_t raft_log_bytes(const raft *r);

#endif
