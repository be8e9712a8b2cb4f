/*
 * node_internal.h — what the files of node/ share and nothing outside sees:
 * the node's state (struct node), a request in flight (req), the loop's
 * limits, and the functions one file of the node calls in another.
 *
 * Where each concern lives:
 *   node.c         configuration, start and stop, status, the log and the
 *                  fatal stop every part uses;
 *   loop.c         the loop thread: poll, ticks, peer messages, ready batches
 *                  (persist, send, apply), membership and limits;
 *   request.c      requests in flight: preparation and validation, the
 *                  pending list and command table, proposals and read index
 *                  rounds, retries and deadlines, answering (req_finish);
 *   submit.c       requests from threads of this process (node_submit);
 *   client_port.c  requests from clients over TCP (frames in, answers out);
 *   snapshot.c     the fork-based snapshot pipeline, sending stored
 *                  snapshots, installing one;
 *   backup.c       a backup's snapshot, streamed to a client in ranges;
 *   report.c       open-file reports (HOLD commands);
 *   member.c       membership requests, promoting caught-up learners, the
 *                  peers of a joining node.
 * All of the state below belongs to the loop thread except what `mu` (and
 * rep.mu) guard.
 */
#ifndef HSTORE_NODE_INTERNAL_H
#define HSTORE_NODE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/net_util.h"
#include "net/transport.h"
#include "net/wire.h"
#include "node/metrics.h"
#include "node/node.h"
#include "node/watch_internal.h"
#include "raftkv/kv.h"
#include "raftkv/storage.h"

/* A request waits at most this long for its proposal or read index before
 * the node asks again (the first attempt may have been lost with a leader). */
#define RETRY_MS 1000
/* The stored commit index may lag the real one by this many entries; a
 * restarted node learns the rest from the leader before applying them. */
#define COMMIT_LAG 4096
/* The largest command: one part of a value (KV_PART_SIZE) with a path of
 * KV_PATH_MAX bytes and the envelope. */
#define NODE_MAX_ENTRY (KV_PART_SIZE + KV_PATH_MAX + 1024)
/* Ticks counted in one turn of the loop (see loop_main). */
#define MAX_TICKS_PER_TURN 2
/* Proposals taken in one turn of the loop, in bytes (at least one command):
 * four parts of an upload. */
#define NODE_TURN_BYTES (4u * NODE_MAX_ENTRY)
/* Niceness of the snapshot child and worker thread. */
#define SNAP_NICE 10
/* A snapshot child that writes nothing for this long is killed. */
#define SNAP_IDLE_MS 30000
/* A backup reading the stored snapshot holds off the next one this long
 * after each range it reads, while the log stays under twice the threshold
 * (backup.c). */
#define SNAP_PIN_MS 5000
/* After a failed snapshot attempt, wait this long before the next. */
#define SNAP_RETRY_MS 5000
/* How the disk writer ended a snapshot commit (persist_snap_result). */
enum { SNAP_COMMITTED = 0, SNAP_DROPPED, SNAP_STORE_FAILED };

enum { ORIGIN_LOCAL = 1, ORIGIN_NET = 2, ORIGIN_SELF = 3 };

/* Open-file reports (report.c). */
#define REPORT_CHECK_MS 20
#define REPORT_KEEPALIVE_MS (KV_HOLDER_TTL_NS / 1000000 / 4)

/* A membership request in flight (member.c). */
typedef struct member_op member_op;

typedef struct req {
    struct req *prev, *next; /* in n->pending */
    struct req *qnext;       /* in the submit queue */
    struct req *hnext;       /* in n->cmd_tab (commands with ids) */
    int origin;
    bool read;
    bool reg;    /* a REGISTER: client_id is a nonce, seq 0 */
    bool part;   /* an UPLOAD_PART: idempotent, outside the session */
    bool in_log; /* proposed as leader: in our log (no timed retry) */
    bool backup; /* a backup's BEGIN (backup.c): a read with no op */
    uint64_t client_id, seq;
    const uint8_t *op; /* read op (points into owned memory) */
    size_t op_len;
    uint8_t *cmd; /* command envelope (commands), built once */
    size_t cmd_len;
    uint64_t deadline_ms;
    uint64_t start_ns; /* entered the loop (metrics) */
    uint64_t last_try_ms;
    bool tried;
    uint64_t read_ctx; /* read batch this read waits on (0: not asked) */
    bool have_index;
    uint64_t read_index;
    bool lease_read;      /* served under this node's read lease (lease.c) */
    uint64_t vis_wait_ms; /* since when it waits for the visible index (0: not) */
    /* a command applied, its answer waiting for the visible index (lease.c) */
    bool ack_wait;
    uint64_t ack_index;
    uint8_t *ack_reply;
    size_t ack_len;
    /* ORIGIN_LOCAL */
    uint8_t *op_copy;
    pthread_cond_t cond;
    bool done, abandoned;
    int rc;
    uint8_t *reply;
    size_t reply_len;
    /* ORIGIN_NET */
    net_client_msg cmsg;
    uint64_t req_id;
} req;

/* The disk writer (persist.c).  q[k % RAFT_MAX_BATCHES] for popped <= k <
 * pushed holds the batches out, oldest first; the writer has written those
 * below `written`.  Counters and rc/err are guarded by mu. */
typedef struct persist_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* the loop pushed, or stop */
    pthread_cond_t wcv; /* the writer wrote */
    pthread_t thr;
    bool inited, started, stop;
    int efd; /* the writer wakes the loop */
    struct {
        raft_ready rd;
    } q[RAFT_MAX_BATCHES];
    uint64_t pushed, written, popped;
    int rc; /* first failure (then nothing more is written) */
    char err[512];
    /* A snapshot of the node's own to commit (persist_snap_commit): the
     * writer commits it once the batches pushed before it began are
     * written. */
    struct {
        bool pending, busy, done;
        int rc; /* SNAP_* (snapshot.c) */
        st_snap_writer *w;
        raft_conf conf;
        uint64_t index, after, us;
        char err[256];
    } sc;
} persist_state;

struct node {
    node_config cfg;
    char self_addr[RAFT_ADDR_MAX];
    raft *r;
    st_store *st;
    kv *kv;
    net_transport *tr;
    net_buf buf;
    int efd, tfd;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t mu; /* guards: queue, stop, status, local reqs' results */
    req *queue_head, *queue_tail;
    bool stop;
    bool failed;
    raft_status status; /* copy for node_status() */

    req pending;           /* sentinel of the list of in-flight requests */
    req **cmd_tab;         /* pending commands by (client id, seq): chained hash */
    size_t cmd_cap, cmd_n; /* buckets (a power of two, or 0), entries */
    uint64_t next_ctx;
    uint64_t last_applied_term;
    raft_hard_state hs_now, hs_saved; /* latest from the core; last written to storage */
    raft_conf conf_known;             /* conf the transport was set up for */
    raft_role last_role;
    uint64_t last_election_seq; /* raft_status.election last logged */
    uint64_t last_term, last_leader;
    char leader_caddr[RAFT_ADDR_MAX]; /* client address of last_leader, "" unknown */
    uint64_t msgs_bad;
    uint64_t msgs_forged; /* authenticated peer frames claiming another sender */
    /* background snapshot (snapshot.c) */
    struct {
        bool running;
        pthread_t thr;
        pid_t child;
        int fd; /* read end of the child's pipe */
        st_snap_writer *w;
        uint64_t index, term, start_ms, retry_ms, raw;
        uint64_t fork_us;         /* how long fork() held the loop */
        uint64_t pushed_at_start; /* batches pushed to the writer when it began */
        uint64_t want;            /* a backup wants a snapshot at this index or later */
        uint64_t pin_ms;          /* a backup reads the stored one until about then */
        raft_conf conf;           /* the configuration at index, stored with it */
        uint64_t stored;          /* bytes of the stored form, once finished */
        bool committing;          /* handed to the disk writer (persist_snap_commit) */
        int result;               /* its SNAP_* once known, else -1 */
        uint64_t commit_us;       /* how long the writer's commit took */
        char commit_err[256];
        bool done; /* worker finished (guarded by mu) */
        int rc;
        char err[256];
    } snap;
    uint64_t snap_state_bytes; /* state bytes in the latest snapshot (taken or installed) */
    uint8_t *chunk;            /* one snapshot chunk being sent */
    size_t chunk_cap;
    bool trace;                   /* HSTORE_TRACE set: see ntrace() */
    _Atomic uint64_t applied_pub; /* kv_applied_index, for other threads (may lag) */
    _Atomic uint64_t lease_until_pub, visible_pub; /* raft_lease_get, the same way */
    _Atomic bool holder_known;                     /* the state has a holder record of this node */
    /* The loop changes the state machine only under kv_rw's write lock;
     * other threads read it under the read lock when this node's lease lets
     * them (lease_local_read).  The loop's own reads take no lock. */
    pthread_rwlock_t kv_rw;
    /* node_set_changed's function, called by the loop under chg.mu */
    struct {
        pthread_mutex_t mu;
        _Atomic bool on;
        node_changed_fn fn;
        void *arg;
    } chg;
    /* open-file reports */
    struct {
        pthread_mutex_t mu; /* fn, arg, inflight (read by node_set_open_files) */
        node_open_fn fn;
        void *arg;
        bool inflight;        /* a HOLD of ours is pending */
        uint64_t client, seq; /* our session for HOLD commands */
        uint64_t check_ms, sent_ms;
        uint64_t *buf;
        size_t cap;
    } rep;
    kv_limits lim_seen; /* replicated limits last logged */
    bool lim_seen_set;
    struct {
        member_op *in;      /* handed in by other threads (guarded by mu) */
        bool closed;        /* the loop ended: no more (guarded by mu) */
        raft_conf hint;     /* node_join_hint's members (guarded by mu) ... */
        raft_conf hint_now; /* ... and the loop's copy */
        member_op *active;  /* being worked on by the loop */
        uint64_t conf_idx;  /* latest conf change proposed by this node as leader */
        bool member;        /* in the configuration, as last seen */
    } mem;
    persist_state pw;
    pthread_mutex_t st_mu;    /* the store: the loop and the disk writer (persist.c) */
    uint64_t stall_logged_ms; /* last "loop held" report (loop.c) */
    uint64_t turn_bytes;      /* bytes proposed in this loop turn */
    bool deferred;            /* commands wait for the next turn (NODE_TURN_BYTES) */
    bool peer_more;           /* peer messages wait for the next turn (recv_peers) */
    struct {
        double rate;        /* HSTORE_TEST_CLOCK_RATE (1: real time) */
        uint64_t base_ns;   /* CLOCK_MONOTONIC at start, for the rate */
        bool hold;          /* applying is held for waiting reads */
        uint64_t hold_ms;   /* since when */
        uint64_t warned_ms; /* last "reads have waited" log */
        raft_entry *kept;   /* committed entries kept while held (copies) */
        size_t n_kept, cap_kept;
    } lease;
    node_watch *watch;          /* recent changes (watch.c; its own lock) */
    node_metrics metrics;       /* counters (metrics.c; atomics) */
    net_transport_stats tstats; /* the transport's counters as last published (mu) */
};

/* ---- node.c: clock, log, fatal stop ---- */

static inline uint64_t now_ms(void)
{
    return net_now_ms();
}
/* Wall-clock time stamped on proposed commands (HSTORE_CLOCK_OFFSET_MS
 * shifts it in tests). */
int64_t node_realtime_ns(void);
void nlog(node *n, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ntrace(node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void node_fail(node *n, const char *what);
void node_wake(node *n);

/* ---- lease.c: read leases (see its header) ---- */

void lease_init(node *n);
void lease_free(node *n);
uint64_t lease_now_ms(const node *n);
bool lease_on(const node *n);
/* Tells node_set_changed's function what the last apply changed. */
void lease_changed(node *n);
/* This node's read lease is valid now. */
bool lease_valid(const node *n);
/* On any thread: answers the read op from this node's own state when its
 * lease allows (valid, and nothing applied here is still invisible); false
 * when the loop must serve it.  *rc is NODE_OK or NODE_ENOMEM. */
bool lease_local_read(node *n, const uint8_t *op, size_t len, uint8_t **reply, size_t *reply_len,
                      int *rc);
/* Each turn, before the core is stepped or ticked: its clock. */
void lease_turn(node *n);
/* After applying: the applied index to the core. */
void lease_applied(node *n);
/* Applies committed entries, or keeps copies while applying is held. */
int lease_apply(node *n, const raft_entry *ents, size_t cnt);
/* Applies whatever was kept (before a snapshot is installed). */
int lease_flush(node *n);
/* true: q's answer (reply, owned from now on) waits for the visible index. */
bool lease_hold_answer(node *n, req *q, uint64_t index, uint8_t *reply, size_t len);
/* Whether a read whose state is at applied may be answered now. */
bool lease_read_servable(node *n, req *q, uint64_t applied, uint64_t now);
/* Answers held commands whose index became visible; ends a hold.  -1 on a
 * failure to apply. */
int lease_release(node *n, uint64_t now);
/* loop.c: applies one committed entry (answers its waiting client). */
int node_apply_entry(node *n, const raft_entry *e);

/* ---- request.c ---- */

req *req_alloc(void);
void req_free(req *q);
/* Fills q from c (validation included); reg_nonce: a REGISTER whose client
 * id is a nonce and whose op is not looked at. */
int req_prepare(req *q, const node_cmd *c, bool reg_nonce, bool copy_op);
void req_start(node *n, req *q);
void req_try(node *n, req *q, uint64_t now);
void req_finish(node *n, req *q, int status, uint8_t *reply, size_t reply_len);
req *cmd_find(const node *n, uint64_t cid, uint64_t seq);
void issue_reads(node *n);
void serve_reads(node *n);
void retry_and_expire(node *n, uint64_t now);
void propose_deferred(node *n, uint64_t now);

/* ---- submit.c, client_port.c, report.c: the answer to each origin ---- */

void submit_answer(node *n, req *q, int status, uint8_t *reply, size_t reply_len);
void drain_local(node *n);
void client_answer(node *n, req *q, int status, uint8_t *reply, size_t reply_len);
void recv_clients(node *n);
void report_answer(node *n, req *q, int status, uint8_t *reply, size_t reply_len);
void report_open_files(node *n, uint64_t now);

/* ---- loop.c ---- */

void *loop_main(void *arg);
/* Finishes the oldest batches out whose write is done, in order (sends
 * what waited for the write, raft_advance); wait: first waits until every
 * batch out is written.  -1: a write failed and the node stopped. */
int ready_finish_written(node *n, bool wait);

/* ---- persist.c: the disk writer ---- */
int persist_start(node *n, char *err, size_t errlen);
void persist_free(node *n);
/* Hands a batch (the newest the core gave) to the writer. */
void persist_push(node *n, const raft_ready *rd);
/* The oldest batch out, once written: 1 and *rd; 0 when it is not written
 * yet (wait: block until it is) or none is out; -1 when a write failed
 * (message in err). */
int persist_pop(node *n, raft_ready *rd, bool wait, char *err, size_t errlen);
/* The snapshot w (finished) at index becomes the stored one, committed by
 * the disk writer once every batch pushed before `after` is written;
 * persist_snap_result: -1 while that is pending, else SNAP_* (err then has
 * the store's message for SNAP_STORE_FAILED, *us the commit's time);
 * persist_snap_cancel: the node stops (a pending commit is dropped, one
 * under way is waited for). */
void persist_snap_commit(node *n, st_snap_writer *w, const raft_conf *conf, uint64_t index,
                         uint64_t after);
int persist_snap_result(node *n, char *err, size_t errlen, uint64_t *us);
void persist_snap_cancel(node *n);
/* Batches out (pushed, not popped). */
static inline uint64_t persist_outstanding(node *n)
{
    return n->pw.pushed - n->pw.popped; /* both written by the loop thread only */
}
void log_changes(node *n);

/* ---- backup.c ---- */

void backup_request(node *n, net_client_msg *cm);
void backup_point(node *n, req *q, uint64_t applied);
void backup_answer(node *n, req *q, int status, uint8_t *reply);

/* ---- member.c ---- */

void member_request(node *n, net_client_msg *cm);
void member_turn(node *n, uint64_t now);
void member_stop(node *n);
/* The configuration the transport's peers follow: c, or while c is empty
 * the join hint. */
const raft_conf *member_peer_conf(node *n, const raft_conf *c);

/* ---- snapshot.c ---- */

int snapshot_install(node *n, const uint8_t *frame, size_t frame_len, uint64_t index, uint64_t term,
                     uint64_t *raw, char *err, size_t errlen);
bool snapshot_fill_chunk(node *n, raft_msg *m);
void maybe_snapshot(node *n);
void snapshot_cancel(node *n);

#endif
