/*
 * raft_internal.h — the inside of the Raft core, shared by its raft_*.c files.
 *
 * Files and concerns:
 *   raft.c             construction, ready/advance, tick, step dispatch, status
 *   raft_log.c         the in-memory log (entries after the snapshot) and configurations
 *   raft_election.c    roles, pre-vote, vote, check-quorum, leader transfer (§3.4, §3.10, §9.6)
 *   raft_replication.c AppendEntries, commitment, InstallSnapshot chunks (§3.5, §3.6, §5.3)
 *   raft_read.c        ReadIndex (§6.4)
 *   raft_lease.c       read leases and the visible index (raft.h)
 *   raft_membership.c  single-server changes (§4.1) and the conf-change codec
 *
 * Invariants (checked by assert where cheap):
 *   log.snap_index <= applied <= commit <= last_index
 *   stable <= last_index, unstable <= last_index + 1, stable < unstable
 *   log.e[k].index == log.snap_index + 1 + k
 * Nothing here is visible outside raftkv/raft*.c except to the test harness.
 */
#ifndef HSTORE_RAFT_INTERNAL_H
#define HSTORE_RAFT_INTERNAL_H

#include "raftkv/raft.h"

/* Replication state of one peer as seen by the leader (etcd's Progress). */
enum { PR_PROBE = 0, PR_REPLICATE = 1, PR_SNAPSHOT = 2 };

typedef struct raft_progress {
    uint64_t id;
    uint64_t match, next;
    int state;
    bool paused;        /* PROBE: an append is outstanding, wait for its answer */
    bool recent_active; /* heard from during the current check-quorum round */
    bool active;        /* heard from during the previous round (for status) */
    uint64_t *inflight; /* ring of (last index, entry bytes) of each append in flight */
    uint32_t in_start, in_count;
    uint64_t in_bytes;     /* entry bytes of the appends in flight */
    uint64_t hb_match;     /* match at the previous heartbeat: no movement => resend */
    uint64_t snap_index;   /* PR_SNAPSHOT: snapshot being sent ... */
    uint64_t snap_offset;  /* ... the next byte to send ... */
    uint64_t snap_acked;   /* ... and the bytes the follower confirmed holding */
    bool snap_done_sent;   /* the last chunk is out */
    uint64_t snap_sent_hb; /* heartbeats without progress (retransmission timer) */
    uint64_t read_ack;     /* highest ReadIndex round this peer acknowledged */
    uint64_t commit_sent;  /* highest commit index this peer was told it may use */
    /* read leases (raft_lease.c), all in the leader's clock but resp_t */
    uint64_t lease_echo;   /* highest lease_t it echoed in this term */
    uint64_t resp_t;       /* newest resp_t it sent (its clock) ... */
    uint64_t applied;      /* ... and the applied index in that response */
    uint64_t grant_resp_t; /* the latest grant, sent with every append */
    uint64_t grant_ms;
    uint64_t lease_until;  /* how long it may serve reads, as the leader sees it */
    uint64_t visible_sent; /* highest visible index sent to it */
} raft_progress;

/* Entry data lives in slabs (raft_log.c): a block holds the data of many
 * consecutive entries and is freed when the last of them is dropped. */
typedef struct raft_slab {
    size_t used, cap;
    size_t live;   /* entries in it, plus 1 while it is the log's current slab */
    size_t mapped; /* bytes mapped (mmap'ed slab), 0 when malloc'ed */
    uint8_t mem[];
} raft_slab;

typedef struct raft_log {
    raft_entry *e;  /* e[k].index == snap_index + 1 + k */
    raft_slab **sl; /* sl[k]: the slab of e[k].data (NULL when len == 0) */
    size_t n, cap;
    raft_slab *cur; /* where the next small entries go */
    uint64_t snap_index, snap_term;
    uint64_t bytes; /* sum of data lengths */
} raft_log;

typedef struct raft_msgvec {
    raft_msg *v;
    size_t n, cap;
} raft_msgvec;

/* A ReadIndex request waiting for its heartbeat round. */
typedef struct raft_read_req {
    uint64_t ctx;
    uint64_t from;  /* requesting node (self for local reads) */
    uint64_t index; /* commit index when the round started */
    uint64_t seq;   /* heartbeat round; 0 = waiting for a commit in this term */
} raft_read_req;

/* One ready batch handed out and not yet advanced: what its raft_ready
 * points at, freed (or released) at its raft_advance(). */
typedef struct raft_batch {
    uint64_t last, last_term; /* the last entry it hands out (stable once advanced) */
    bool snap;
    raft_snapshot snapshot;
    raft_msgvec msgs, after;
    raft_entry *entries, *committed;
    raft_read_state *rs;
    void **grave;
    size_t n_grave;
} raft_batch;

struct raft {
    raft_config cfg;
    uint64_t id;
    uint64_t term, vote, leader;
    raft_role role;
    uint64_t rng;

    raft_log log;
    uint64_t commit;
    uint64_t applied;  /* last index handed out in ready.committed */
    uint64_t stable;   /* last index reported durable by raft_advance */
    uint64_t unstable; /* first index not yet handed out for persisting */

    raft_snapshot snap; /* the latest snapshot; data owned */
    bool snap_pending;  /* a received snapshot must go out in the next ready */

    raft_conf conf;        /* latest appended configuration (takes effect on append) */
    uint64_t conf_index;   /* the entry that set it, snap index when from the snapshot */
    uint64_t pending_conf; /* leader: no new conf change until commit >= this */

    raft_progress prs[RAFT_MAX_NODES];
    uint32_t n_prs;
    uint64_t *inflight_store;

    int elapsed; /* ticks since the last election reset / check-quorum */
    int hb_elapsed;
    int timeout; /* randomized election timeout in [e, 2e) */
    uint64_t granted[RAFT_MAX_NODES], refused[RAFT_MAX_NODES];
    uint32_t n_granted, n_refused;     /* pre-votes, or refusals of real votes */
    uint64_t vgranted[RAFT_MAX_NODES]; /* real votes granted in term vgranted_term */
    uint32_t n_vgranted;
    uint64_t vgranted_term;

    uint64_t transferee;
    int transfer_elapsed;

    /* why elections start (raft_status.election) */
    raft_election_event election;
    uint64_t heard_leader; /* the last leader a message came from (0: none yet) */
    int64_t heard_idle;    /* ticks since that message */

    raft_read_req *reads;
    size_t n_reads, cap_reads;
    uint64_t read_seq;

    /* follower: InstallSnapshot being assembled from chunks */
    struct {
        bool active;
        uint64_t from, term, index, log_term, len, have;
        raft_conf conf;
        uint8_t *buf;
    } in_snap;

    /* outputs waiting for the next ready */
    raft_msgvec msgs, after;
    raft_read_state *rs;
    size_t n_rs, cap_rs;
    raft_hard_state hs_out; /* hard state as last handed out */
    bool send_pending;      /* leader: entries proposed, to go out at the next ready */
    bool read_pending;      /* leader: a ReadIndex round must go out at the next ready */
    bool commit_pending;    /* leader: commit advanced, tell followers at the next ready */

    /* follower: peer acknowledgements of this term (raft_replication.c) */
    uint64_t pack_term;
    uint64_t pack_id[RAFT_MAX_NODES], pack_index[RAFT_MAX_NODES];
    uint32_t n_pack;
    uint64_t self_ack; /* the highest index it acknowledged to the leader */

    /* read leases (raft_lease.c) */
    uint64_t now;  /* the caller's clock (raft_set_now) */
    uint64_t born; /* the first value it gave (0: none yet) */
    bool now_set;
    uint64_t applied_rep;          /* applied index as reported (raft_set_applied) */
    uint64_t applied_sent;         /* follower: last applied_rep sent to the leader */
    uint64_t visible;              /* V (leader) or the V heard, capped at commit */
    uint64_t v_heard;              /* follower: largest V heard */
    uint64_t lease_until;          /* follower: its own read lease ... */
    uint64_t lease_term;           /* ... granted in this term ... */
    uint64_t lease_leader;         /* ... by this leader */
    uint64_t heard_lease_t;        /* follower: latest lease_t of lease_leader */
    uint64_t lead_wait_until;      /* leader: nothing of leases before this */
    uint64_t lead_first;           /* leader: index of its first entry (no-op) */
    uint64_t gone_lease_until;     /* leader: leases of members since removed */
    uint64_t tgt_t[32], tgt_v[32]; /* leader: when V's target reached what */
    unsigned tgt_head, tgt_n;

    /* memory freed while a ready might still point at it: released at advance */
    void **grave;
    size_t n_grave, cap_grave;

    /* the ready batches handed out and not yet advanced, oldest first
     * (bat[(bat_head + k) % RAFT_MAX_BATCHES], k < bat_n) */
    raft_batch bat[RAFT_MAX_BATCHES];
    unsigned bat_head, bat_n;
};

/* ---- raft.c ---- */
uint64_t raft_rand(raft *r);
void raft_defer_free(raft *r, void *p);
/* Like raft_defer_free for an entry's slab reference (released at advance). */
void raft_defer_slab(raft *r, raft_slab *s);
/* Drops one reference; frees the slab at the last. */
void raft_slab_release(raft_slab *s);
raft_msg *raft_emit(raft *r, int type, uint64_t to, bool after_persist);
void raft_reset_timeout(raft *r);

/* ---- raft_log.c ---- */
uint64_t raft_log_last(const raft *r);
uint64_t raft_log_last_term(const raft *r);
/* Term at index, 0 if unknown (compacted past or beyond the end). */
uint64_t raft_term_at(const raft *r, uint64_t index);
const raft_entry *raft_entry_at(const raft *r, uint64_t index);
/* Append copies of entries (data copied); RAFT_ENOMEM leaves the log unchanged. */
int raft_log_append(raft *r, const raft_entry *es, size_t n);
/* Drop every entry with index >= from (conflict resolution, §5.3). */
void raft_log_truncate(raft *r, uint64_t from);
/* Drop entries <= index (compaction), recording index/term as the new base. */
void raft_log_compact(raft *r, uint64_t index, uint64_t term);
void raft_log_free(raft *r);
/* Configuration in force at index (snapshot conf + conf entries <= index). */
void raft_conf_at(const raft *r, uint64_t index, raft_conf *out, uint64_t *at);
bool raft_up_to_date(const raft *r, uint64_t last_index, uint64_t last_term);

/* ---- raft_membership.c ---- */
int raft_conf_find(const raft_conf *c, uint64_t id);
int raft_conf_apply(raft_conf *c, const raft_conf_change *cc);
/* Recompute r->conf from the log and resync the leader's progress table. */
void raft_conf_refresh(raft *r);
void raft_progress_sync(raft *r);
raft_progress *raft_progress_get(raft *r, uint64_t id);
void raft_progress_reset(raft *r, raft_progress *p, uint64_t next);
bool raft_is_voter(const raft *r, uint64_t id);
int raft_quorum(const raft *r);
/* The quorum-th largest of the voters' values v[0..n) (what a quorum of
 * them reach) into *out; false when fewer than a quorum are given.  Sorts
 * v. */
bool raft_quorum_value(const raft *r, uint64_t *v, uint32_t n, uint64_t *out);

/* ---- raft_election.c ---- */
void raft_become_follower(raft *r, uint64_t term, uint64_t leader);
void raft_become_leader(raft *r);
void raft_campaign(raft *r, bool pre_vote, bool transfer);
void raft_handle_vote(raft *r, const raft_msg *m);
void raft_handle_vote_resp(raft *r, const raft_msg *m);
void raft_tick_election(raft *r);
void raft_tick_leader(raft *r);
void raft_handle_timeout_now(raft *r, const raft_msg *m);
void raft_transfer_check(raft *r, raft_progress *p);
bool raft_in_lease(const raft *r);
bool raft_promotable(const raft *r);
bool raft_vote_from_stranger(const raft *r, const raft_msg *m);

/* ---- raft_replication.c ---- */
void raft_send_append(raft *r, raft_progress *p, bool allow_empty);
void raft_bcast_append(raft *r);
void raft_bcast_heartbeat(raft *r);
void raft_flush_appends(raft *r);
void raft_handle_append(raft *r, const raft_msg *m);
void raft_handle_heartbeat(raft *r, const raft_msg *m);
void raft_handle_append_resp(raft *r, const raft_msg *m);
/* Follower: another voter's acknowledgement (raft_config.peer_acks). */
void raft_handle_peer_ack(raft *r, const raft_msg *m);
/* Follower: commits what it and a quorum of peers hold durably. */
void raft_peer_commit(raft *r);
void raft_handle_snapshot(raft *r, const raft_msg *m);
void raft_handle_snapshot_resp(raft *r, const raft_msg *m);
bool raft_maybe_commit(raft *r);
void raft_commit_to(raft *r, uint64_t index);
void raft_commit_advanced(raft *r);
int raft_append_local(raft *r, uint8_t type, const uint8_t *data, size_t len, uint64_t *index);

/* ---- raft_lease.c ---- */
void raft_lease_refresh(raft *r);
void raft_lease_become_leader(raft *r, uint64_t first);
void raft_lease_become_follower(raft *r, uint64_t term, uint64_t leader);
void raft_lease_forget(raft *r, const raft_progress *p);
void raft_lease_fill_append(raft *r, raft_progress *p, raft_msg *m);
void raft_lease_fill_resp(raft *r, raft_msg *o, uint64_t lease_t);
void raft_lease_on_append(raft *r, const raft_msg *m);
void raft_lease_on_resp(raft *r, raft_progress *p, const raft_msg *m);
bool raft_lease_tell(const raft *r, const raft_progress *p);

/* ---- raft_read.c ---- */
int raft_read_request(raft *r, uint64_t ctx, uint64_t from);
void raft_read_ack(raft *r, raft_progress *p, uint64_t ctx);
void raft_read_on_commit(raft *r);
void raft_read_drop(raft *r);
void raft_read_state_push(raft *r, uint64_t ctx, uint64_t index);
void raft_handle_readindex(raft *r, const raft_msg *m);
void raft_handle_readindex_resp(raft *r, const raft_msg *m);

#endif
