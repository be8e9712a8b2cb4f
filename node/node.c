/*
 * node.c — one hstore node at run time.
 *
 * A single loop thread owns the Raft core, the SQLite store, the key-value
 * state machine and the sockets.  It sleeps in poll() on:
 *   - the peer socket (Raft messages from other nodes),
 *   - the client socket (requests from `hstore` clients),
 *   - an eventfd (requests handed in by local threads: FUSE workers),
 *   - a timerfd (Raft ticks).
 *
 * Each turn of the loop (dissertation §10.2 for the ordering):
 *   1. take in everything that is waiting: peer messages are stepped into the
 *      core, client and local requests become proposals or read requests —
 *      all of them, so whatever arrived during the last fsync goes into the
 *      next batch together (group commit);
 *   2. while the core has a ready batch: send the messages that may go at once
 *      (the leader's AppendEntries: followers write while the leader writes,
 *      §10.2.1), persist hard state/entries/snapshot in one transaction (one
 *      fsync), send the messages that promise durable state, install a
 *      received snapshot, apply committed entries to the state machine and
 *      answer their waiting clients, note confirmed read indexes, advance;
 *   3. answer reads whose read index has been applied (ReadIndex, §6.4: never
 *      from local state without the leader's confirmation);
 *   4. take a snapshot when the log passed the threshold;
 *   5. retry requests that got lost in a leader change, expire the ones past
 *      their deadline.
 *
 * Exactly once: clients register a session (REGISTER, node_register or
 * NET_REQ_REGISTER) and every command carries (session id, seq); kv.c
 * remembers the last seq and reply per session, so a command re-proposed
 * after a lost reply or a leader change is applied once, and a command whose
 * session is gone is answered SESSION_EXPIRED without being applied.  A retry
 * that is already applied is answered from the session without a new log
 * entry.  Only well-formed write ops are proposed (prepare_req): a read op
 * sent as a command is refused before it can reach the log.
 *
 * Limits are replicated state (kv.h): the first leader proposes them from
 * its flags (propose_limits), once; check_limits logs the values in force.
 *
 * Snapshots (design).  A node holds its state once in memory: the Raft core
 * runs with raft_config.external_snapshot and keeps no snapshot bytes, the
 * store keeps the only copy, in stored form (one zstd frame in 1 MiB rows).
 *   - Taking one never stalls the loop for long.  When the log passes the
 *     threshold, maybe_snapshot() forks: the child is a frozen copy-on-write
 *     view of the state machine at the applied index, encodes it
 *     (kv_snapshot_write) into a pipe and exits.  A worker thread of the node
 *     reads the pipe and compresses into the store's background writer
 *     (st_bgsnap_*), which stages 1 MiB chunks in short transactions beside
 *     the loop's batches.  When the worker is done, a short step on the loop
 *     calls raft_compact(index, no bytes, stored length) and commits the
 *     staging (a table rename, the log prefix dropped).  A crash at any point
 *     leaves the previous snapshot in force (staging is dropped at start).
 *     Every wait has a deadline: the worker gives the child SNAP_IDLE_MS
 *     without output before killing it, and stopping the node kills the
 *     child and joins the worker.  The child dies with the node
 *     (PR_SET_PDEATHSIG) and closes every inherited descriptor, so it never
 *     holds the data directory's lock or sockets.  The child and the worker
 *     run at nice SNAP_NICE, and each node snapshots at its own point between
 *     3/4 of the threshold and all of it, so that the nodes of one machine
 *     do not all do this work at the same moment.
 *   - Sending one: the core's SNAPSHOT messages come without bytes;
 *     send_msgs() reads the range of the stored form (st_snap_stored_read),
 *     so followers receive the compressed frame.
 *   - Installing one: the received frame is decoded into the state machine
 *     as a stream (st_snap_reader) and stored as is (st_save_ready).
 *   - Start-up decodes the stored snapshot as a stream too: no buffer the
 *     size of the state is ever built.
 * After installing a snapshot, malloc_trim() gives the freed heap back to the
 * system (the state machine it replaced).  Taking one frees no heap: the
 * Raft log lives in slabs of its own (raft_log.c).
 *
 * Open files (kv.h "Open files").  A mount registers a function listing the
 * inodes it holds open (node_set_open_files).  Every REPORT_CHECK_MS the loop
 * looks at its own holder record in the state machine and proposes a HOLD
 * command (its own session, one in flight at a time) when: it has no record
 * (just started, or expired), an orphan exists that its last report does not
 * cover, an inode it listed is no longer open here, or REPORT_KEEPALIVE_MS
 * passed since its last report.  The report lists the open inodes that are
 * orphans now, and covers up to the lower of the applied index and the
 * applied index at which the oldest open still in progress started (the
 * mount passes that), so no open that could have found an orphan's name
 * escapes the report.  Nothing is proposed while no orphan exists except the
 * keepalive, so opens never cost a replicated round.
 */
#include "node/node.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <sys/resource.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net/transport.h"
#include "net/wire.h"
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
/* After a failed snapshot attempt, wait this long before the next. */
#define SNAP_RETRY_MS 5000

enum { ORIGIN_LOCAL = 1, ORIGIN_NET = 2, ORIGIN_SELF = 3 };

/* Open-file reports (see the file comment). */
#define REPORT_CHECK_MS 20
#define REPORT_KEEPALIVE_MS (KV_HOLDER_TTL_NS / 1000000 / 4)

typedef struct req {
    struct req *prev, *next;     /* in n->pending */
    struct req *qnext;           /* in the submit queue */
    struct req *hnext;           /* in n->cmd_tab (commands with ids) */
    int origin;
    bool read;
    bool reg;                    /* a REGISTER: client_id is a nonce, seq 0 */
    bool part;                   /* an UPLOAD_PART: idempotent, outside the session */
    bool in_log;                 /* proposed as leader: in our log (no timed retry) */
    uint64_t client_id, seq;
    const uint8_t *op;           /* read op (points into owned memory) */
    size_t op_len;
    uint8_t *cmd;                /* command envelope (commands), built once */
    size_t cmd_len;
    uint64_t deadline_ms;
    uint64_t last_try_ms;
    bool tried;
    uint64_t read_ctx;           /* read batch this read waits on (0: not asked) */
    bool have_index;
    uint64_t read_index;
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

    pthread_mutex_t mu;          /* guards: queue, stop, status, local reqs' results */
    req *queue_head, *queue_tail;
    bool stop;
    bool failed;
    raft_status status;          /* copy for node_status() */

    req pending;                 /* sentinel of the list of in-flight requests */
    req **cmd_tab;               /* pending commands by (client id, seq): chained hash */
    size_t cmd_cap, cmd_n;       /* buckets (a power of two, or 0), entries */
    uint64_t next_ctx;
    uint64_t last_applied_term;
    raft_hard_state hs_now, hs_saved;  /* latest from the core; last written to storage */
    raft_conf conf_known;        /* conf the transport was set up for */
    raft_role last_role;
    uint64_t last_election_seq;   /* raft_status.election last logged */
    uint64_t last_term, last_leader;
    char leader_caddr[RAFT_ADDR_MAX];  /* client address of last_leader, "" unknown */
    uint64_t msgs_bad;
    uint64_t msgs_forged;       /* authenticated peer frames claiming another sender */
    /* background snapshot (see the file comment) */
    struct {
        bool running;
        pthread_t thr;
        pid_t child;
        int fd;                  /* read end of the child's pipe */
        st_snap_writer *w;
        uint64_t index, term, start_ms, retry_ms, raw;
        uint64_t fork_us;          /* how long fork() held the loop */
        bool done;               /* worker finished (guarded by mu) */
        int rc;
        char err[256];
    } snap;
    uint8_t *chunk;              /* one snapshot chunk being sent */
    size_t chunk_cap;
    bool trace;                  /* HSTORE_TRACE set: see ntrace() */
    _Atomic uint64_t applied_pub;  /* kv_applied_index, for other threads (may lag) */
    _Atomic bool holder_known;     /* the state has a holder record of this node */
    /* open-file reports */
    struct {
        pthread_mutex_t mu;      /* fn, arg, inflight (read by node_set_open_files) */
        node_open_fn fn;
        void *arg;
        bool inflight;           /* a HOLD of ours is pending */
        uint64_t client, seq;    /* our session for HOLD commands */
        uint64_t check_ms, sent_ms;
        uint64_t *buf;
        size_t cap;
    } rep;
    kv_limits lim_seen;          /* replicated limits last logged */
    bool lim_seen_set;
    uint64_t turn_bytes;         /* bytes proposed in this loop turn */
    bool deferred;               /* commands wait for the next turn (NODE_TURN_BYTES) */
};

/* ---- small helpers ------------------------------------------------------------ */

static uint64_t now_ms(void) { return net_now_ms(); }

/* Test hook: HSTORE_CLOCK_OFFSET_MS (a signed number of milliseconds, read
 * once) shifts the time this node stamps on the commands it proposes, as if
 * its clock were wrong.  Only tests set it (a node an hour ahead must not
 * make any replica apply a command twice). */
static int64_t g_clock_offset_ns;
static pthread_once_t g_clock_once = PTHREAD_ONCE_INIT;
static void clock_offset_init(void)
{
    const char *e = getenv("HSTORE_CLOCK_OFFSET_MS");
    if (e && *e)
        g_clock_offset_ns = (int64_t)strtoll(e, NULL, 10) * 1000000;
}

static int64_t realtime_ns(void)
{
    pthread_once(&g_clock_once, clock_offset_init);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + g_clock_offset_ns;
}

static void nlog(node *n, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void nlog(node *n, int level, const char *fmt, ...)
{
    if (level > n->cfg.log_level)
        return;
    static const char *lv[] = {"error", "warn", "info", "debug"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    raft_status st;
    memset(&st, 0, sizeof st);
    if (n->r)
        raft_status_get(n->r, &st);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s node=%" PRIu64 " term=%" PRIu64
                    " role=%s %s\n",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, lv[level < 0 ? 0 : level > 3 ? 3 : level], n->cfg.id, st.term,
            raft_role_name(st.role), msg);
}

/* HSTORE_TRACE=1 in the environment: one line per step of every request
 * (client request in, ready batch, persist start and end, peer message in,
 * answer out) with a CLOCK_MONOTONIC timestamp in microseconds, so that the
 * logs of all nodes on one machine merge into one timeline (sort -n -k2):
 * where a request's time goes, hop by hop.  Off, it costs one branch. */
static void ntrace(node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ntrace(node *n, const char *fmt, ...)
{
    if (!n->trace)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "trace %" PRIu64 ".%03ld node=%" PRIu64 " %s\n",
            (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u, ts.tv_nsec % 1000,
            n->cfg.id, msg);
}

void node_config_init(node_config *c)
{
    memset(c, 0, sizeof *c);
    c->tick_ms = 50;
    c->election_ticks = 10;
    c->op_timeout_ms = 5000;
    c->max_file_size = 1ull << 30;
    c->snapshot_threshold = 32ull << 20;
    c->log_level = 2;
    net_auth_get_default(&c->auth);
}

int node_parse_cluster(const char *spec, node_peer *peers, int *n, char *err, size_t errlen)
{
    *n = 0;
    if (!spec || !*spec) {
        snprintf(err, errlen, "empty cluster spec (expected ID=HOST:PORT,ID=HOST:PORT,...)");
        return -1;
    }
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[256];
        if (len == 0 || len >= sizeof item) {
            snprintf(err, errlen, "bad cluster member '%.*s' (expected ID=HOST:PORT)", (int)len, p);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = 0;
        char *eq = strchr(item, '=');
        char *colon = strrchr(item, ':');
        if (!eq || !colon || colon < eq) {
            snprintf(err, errlen, "bad cluster member '%s' (expected ID=HOST:PORT)", item);
            return -1;
        }
        *eq = 0;
        *colon = 0;
        char *e1, *e2;
        errno = 0;
        unsigned long long id = strtoull(item, &e1, 10);
        long port = strtol(colon + 1, &e2, 10);
        if (errno || *e1 || e1 == item || id == 0 || *e2 || e2 == colon + 1 || port <= 0 ||
            port >= 65535 || !eq[1] || strlen(eq + 1) >= RAFT_ADDR_MAX - 8) {
            snprintf(err, errlen, "bad cluster member '%.*s' (expected ID=HOST:PORT, ID > 0, "
                     "PORT < 65535)", (int)len, p);
            return -1;
        }
        if (*n >= RAFT_MAX_NODES) {
            snprintf(err, errlen, "too many cluster members (at most %d)", RAFT_MAX_NODES);
            return -1;
        }
        for (int i = 0; i < *n; i++)
            if (peers[i].id == id) {
                snprintf(err, errlen, "node id %llu appears twice in the cluster spec", id);
                return -1;
            }
        peers[*n].id = id;
        snprintf(peers[*n].host, sizeof peers[*n].host, "%s", eq + 1);
        peers[*n].port = (int)port;
        (*n)++;
        if (!end)
            break;
        p = end + 1;
        if (!*p) {
            snprintf(err, errlen, "cluster spec ends with ',' (a member missing?)");
            return -1;
        }
    }
    return 0;
}

const node_config *node_get_config(const node *n) { return &n->cfg; }

bool node_failed(node *n)
{
    pthread_mutex_lock(&n->mu);
    bool f = n->failed;
    pthread_mutex_unlock(&n->mu);
    return f;
}

void node_status(node *n, raft_status *st)
{
    pthread_mutex_lock(&n->mu);
    *st = n->status;
    pthread_mutex_unlock(&n->mu);
}

/* A node that cannot persist or apply must not go on (it could acknowledge
 * what is not stored, or diverge): stop the loop and tell the process. */
static void node_fail(node *n, const char *what)
{
    nlog(n, 0, "fatal: %s; stopping this node", what);
    pthread_mutex_lock(&n->mu);
    n->failed = true;
    n->stop = true;
    pthread_mutex_unlock(&n->mu);
    kill(getpid(), SIGTERM);
}

/* ---- requests ------------------------------------------------------------------- */

/* Commands waiting for their entry to apply are found by (client id, seq)
 * in a hash table, not by walking every pending request: with thousands of
 * requests in flight, a walk per applied entry would cost more than the
 * entry. */
static size_t cmd_bucket(uint64_t cid, uint64_t seq, size_t cap)
{
    uint64_t h = (cid ^ (seq * 0x9E3779B97F4A7C15ull)) * 0xff51afd7ed558ccdull;
    return (size_t)(h >> 32) & (cap - 1);
}

static bool is_cmd(const req *q) { return !q->read && q->client_id; }

static void cmd_grow(node *n)
{
    size_t cap = n->cmd_cap ? 2 * n->cmd_cap : 256;
    req **t = calloc(cap, sizeof(*t));
    if (!t)
        return;     /* keep the old table: longer chains, still correct */
    for (size_t i = 0; i < n->cmd_cap; i++) {
        req *q = n->cmd_tab[i];
        while (q) {
            req *nx = q->hnext;
            size_t b = cmd_bucket(q->client_id, q->seq, cap);
            q->hnext = t[b];
            t[b] = q;
            q = nx;
        }
    }
    free(n->cmd_tab);
    n->cmd_tab = t;
    n->cmd_cap = cap;
}

static req *cmd_find(const node *n, uint64_t cid, uint64_t seq)
{
    if (!n->cmd_cap)
        return NULL;
    for (req *q = n->cmd_tab[cmd_bucket(cid, seq, n->cmd_cap)]; q; q = q->hnext)
        if (q->client_id == cid && q->seq == seq)
            return q;
    return NULL;
}

static void pending_add(node *n, req *q)
{
    q->next = &n->pending;
    q->prev = n->pending.prev;
    n->pending.prev->next = q;
    n->pending.prev = q;
    if (is_cmd(q)) {
        if (n->cmd_n >= n->cmd_cap)
            cmd_grow(n);
        if (n->cmd_cap) {
            size_t b = cmd_bucket(q->client_id, q->seq, n->cmd_cap);
            q->hnext = n->cmd_tab[b];
            n->cmd_tab[b] = q;
            n->cmd_n++;
        }
    }
}

static void pending_del(node *n, req *q)
{
    q->prev->next = q->next;
    q->next->prev = q->prev;
    q->prev = q->next = NULL;
    if (is_cmd(q) && n->cmd_cap) {
        for (req **pp = &n->cmd_tab[cmd_bucket(q->client_id, q->seq, n->cmd_cap)]; *pp;
             pp = &(*pp)->hnext)
            if (*pp == q) {
                *pp = q->hnext;
                n->cmd_n--;
                break;
            }
        q->hnext = NULL;
    }
}

static void req_free(req *q)
{
    free(q->cmd);
    free(q->op_copy);
    free(q->reply);
    pthread_cond_destroy(&q->cond);
    free(q);
}

/* Answers q and removes it.  status is NODE_OK (reply holds the state
 * machine's reply, ownership passes) or an error. */
static void req_finish(node *n, req *q, int status, uint8_t *reply, size_t reply_len)
{
    if (q->prev)
        pending_del(n, q);
    if (q->origin == ORIGIN_SELF) {
        if (q->reg) {
            /* the session of our reports (report_propose) */
            uint64_t id = status == NODE_OK ? kv_reply_session_id(reply, reply_len) : 0;
            if (id)
                n->rep.client = id;
            else
                nlog(n, 1, "cannot open the session of the open-file reports (%s)",
                     status == NODE_OK ? "bad reply" : "no answer in time");
        } else if (status != NODE_OK || kv_reply_status(reply, reply_len) != 0) {
            nlog(n, 1, "open-file report not applied (%s)",
                 status == NODE_OK ? kv_strstatus(kv_reply_status(reply, reply_len))
                                   : "no answer in time");
            if (status == NODE_OK && kv_reply_peek_status(reply, reply_len) == KV_ESESSION)
                n->rep.client = 0;   /* the next report opens a new session */
        }
        pthread_mutex_lock(&n->rep.mu);
        n->rep.inflight = false;
        pthread_mutex_unlock(&n->rep.mu);
        free(reply);
        req_free(q);
        return;
    }
    if (q->origin == ORIGIN_NET) {
        ntrace(n, "answer: req %" PRIu64 ", status %d", q->req_id, status);
        net_client_resp resp;
        memset(&resp, 0, sizeof resp);
        resp.req_id = q->req_id;
        resp.status = status == NODE_OK            ? NET_ST_OK
                      : status == NODE_ESTOPPED    ? NET_ST_SHUTTING_DOWN
                      : status == NODE_EINVAL      ? NET_ST_BAD_REQUEST
                                                   : NET_ST_UNAVAILABLE;
        resp.leader_id = n->last_leader;
        memcpy(resp.leader_addr, n->leader_caddr, sizeof resp.leader_addr);
        resp.reply = reply;
        resp.reply_len = (uint32_t)reply_len;
        uint8_t sid[8];
        if (status == NODE_OK && q->reg) {
            /* The session id itself, not the state machine's reply. */
            uint64_t id = kv_reply_session_id(reply, reply_len);
            for (int i = 0; i < 8; i++)
                sid[i] = (uint8_t)(id >> (8 * i));
            resp.reply = sid;
            resp.reply_len = 8;
            if (!id)
                resp.status = NET_ST_UNAVAILABLE;
        } else if (status == NODE_OK && !q->read &&
                   kv_reply_peek_status(reply, reply_len) == KV_ESESSION) {
            resp.status = NET_ST_SESSION_EXPIRED;
        }
        if (net_encode_client_resp(&resp, &n->buf) == NET_OK)
            net_reply_client(n->tr, &q->cmsg, n->buf.p, n->buf.len);
        else
            net_client_msg_drop(&q->cmsg);
        free(reply);
        req_free(q);
        return;
    }
    pthread_mutex_lock(&n->mu);
    if (q->abandoned) {
        pthread_mutex_unlock(&n->mu);
        free(reply);
        req_free(q);
        return;
    }
    q->rc = status;
    q->reply = reply;
    q->reply_len = reply_len;
    q->done = true;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&n->mu);
}

static req *req_alloc(void)
{
    req *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    return q;
}

/* Starts (or restarts) the work of a request: a proposal or a read. */
static void req_try(node *n, req *q, uint64_t now)
{
    q->last_try_ms = now;
    q->tried = true;
    if (q->read) {
        q->read_ctx = 0; /* joins the next read batch (issue_reads) */
        q->have_index = false;
        return;
    }
    uint8_t *reply = NULL;
    size_t rlen = 0;
    if (q->client_id && !q->part) {
        int s = kv_session_lookup(n->kv, q->client_id, q->seq, &reply, &rlen);
        if (s == KV_SESSION_APPLIED || s == KV_SESSION_STALE) {
            req_finish(n, q, NODE_OK, reply, rlen);
            return;
        }
        free(reply);
    }
    /* Bounded work per loop turn: past NODE_TURN_BYTES of proposals, the
     * rest wait for the next turn, so that a burst of large commands (the
     * parts of an upload) is persisted, sent and applied in steps, with
     * ticks, heartbeats and small requests handled in between. */
    if (n->turn_bytes && n->turn_bytes + q->cmd_len > NODE_TURN_BYTES &&
        q->cmd_len <= NODE_MAX_ENTRY) {
        q->tried = false;
        n->deferred = true;
        return;
    }
    n->turn_bytes += q->cmd_len;
    uint64_t idx = 0;
    int rc = raft_propose(n->r, q->cmd, q->cmd_len, &idx, NULL);
    /* Appended to our own log as leader: it commits unless the leadership
     * changes, and a change makes every request try again (log_changes).
     * Proposing it again on a timer would only add copies: with large
     * commands on a slow disk, copies that slow everything further. */
    q->in_log = rc == RAFT_OK && idx != 0;
    if (rc == RAFT_ETOOBIG) {
        uint8_t *r2 = NULL;
        size_t l2 = 0;
        if (kv_reply_encode_status(EFBIG, &r2, &l2) == 0)
            req_finish(n, q, NODE_OK, r2, l2);
        else
            req_finish(n, q, NODE_ENOMEM, NULL, 0);
        return;
    }
    /* RAFT_ENOLEADER and friends: retried after RETRY_MS or at a leader change. */
    if (rc != RAFT_OK)
        q->last_try_ms = now > RETRY_MS ? now - RETRY_MS + 100 : 0; /* retry soon */
}

/* One ReadIndex round for every read that is not waiting on one yet. */
static void issue_reads(node *n)
{
    uint64_t ctx = 0;
    for (req *q = n->pending.next; q != &n->pending; q = q->next) {
        if (!q->read || q->read_ctx || q->have_index)
            continue;
        if (!ctx)
            ctx = ++n->next_ctx;
        q->read_ctx = ctx;
    }
    if (ctx && raft_read_index(n->r, ctx) != RAFT_OK) {
        /* no leader known: leave them unasked; retried after a short while */
        uint64_t now = now_ms();
        for (req *q = n->pending.next; q != &n->pending; q = q->next)
            if (q->read_ctx == ctx) {
                q->read_ctx = 0;
                q->last_try_ms = now > RETRY_MS ? now - RETRY_MS + 100 : 0;
                q->tried = false;
            }
    }
}

static void serve_reads(node *n)
{
    uint64_t applied = kv_applied_index(n->kv);
    req *q = n->pending.next;
    while (q != &n->pending) {
        req *nx = q->next;
        if (q->read && q->have_index && q->read_index <= applied) {
            uint8_t *reply = NULL;
            size_t rlen = 0;
            if (kv_query(n->kv, q->op, q->op_len, &reply, &rlen) == 0)
                req_finish(n, q, NODE_OK, reply, rlen);
            else
                req_finish(n, q, NODE_ENOMEM, NULL, 0);
        }
        q = nx;
    }
}

/* How long a request waits before it is tried again: RETRY_MS, longer for
 * a large command forwarded to the leader (1 MiB: 5 s), which takes longer
 * to get through and costs the most to send twice. */
static uint64_t retry_ms(const req *q)
{
    return RETRY_MS * (1 + q->cmd_len / (256u * 1024u));
}

static void retry_and_expire(node *n, uint64_t now)
{
    req *q = n->pending.next;
    bool reads = false;
    while (q != &n->pending) {
        req *nx = q->next;
        if (now >= q->deadline_ms) {
            req_finish(n, q, NODE_ETIMEDOUT, NULL, 0);
        } else if (!q->tried || (!q->in_log && now - q->last_try_ms >= retry_ms(q))) {
            if (q->read && q->have_index) {
                /* waiting only for local apply: nothing to retry */
            } else {
                /* req_try may answer and free q (a retry found already
                 * applied): read what we need first. */
                bool is_read = q->read;
                req_try(n, q, now);
                reads |= is_read;
            }
        }
        q = nx;
    }
    if (reads)
        issue_reads(n);
}

/* A new request enters the loop. */
static void req_start(node *n, req *q)
{
    pending_add(n, q);
    req_try(n, q, now_ms());
}

/* ---- applying ---------------------------------------------------------------------- */

static void answer_command(node *n, const raft_entry *e, uint8_t *reply, size_t rlen)
{
    uint64_t cid, seq;
    int64_t t;
    const uint8_t *op;
    size_t oplen;
    if (kv_cmd_decode(e->data, e->len, &cid, &seq, &t, &op, &oplen) != 0 || !cid) {
        free(reply);
        return;
    }
    req *q = cmd_find(n, cid, seq);
    if (q) {
        req_finish(n, q, NODE_OK, reply, rlen);
        return;
    }
    free(reply);
}

static int apply_entry(node *n, const raft_entry *e)
{
    n->last_applied_term = e->term;
    if (e->type != RAFT_ENTRY_NORMAL) {
        if (e->type == RAFT_ENTRY_CONF) {
            raft_conf_change cc;
            if (raft_conf_change_decode(e->data, e->len, &cc) == 0)
                nlog(n, 2, "membership: %s node %" PRIu64 " (%s) committed at index %" PRIu64,
                     cc.type == RAFT_CONF_ADD ? "add" : "remove", cc.id, cc.addr, e->index);
        }
        kv_apply_skip(n->kv, e->index);
        return 0;
    }
    uint8_t *reply = NULL;
    size_t rlen = 0;
    int rc = kv_apply(n->kv, e->index, e->data, e->len, &reply, &rlen);
    if (rc < 0)
        return -1;
    if (rc == 0)
        answer_command(n, e, reply, rlen);
    return 0;
}

/* Keeps the transport's peers in step with the configuration in force. */
static void sync_peers(node *n, const raft_conf *c)
{
    if (c->n == n->conf_known.n &&
        memcmp(c->ids, n->conf_known.ids, sizeof c->ids[0] * c->n) == 0 &&
        memcmp(c->addrs, n->conf_known.addrs, sizeof c->addrs[0] * c->n) == 0)
        return;
    for (uint32_t i = 0; i < n->conf_known.n; i++) {
        bool keep = false;
        for (uint32_t j = 0; j < c->n; j++)
            keep |= c->ids[j] == n->conf_known.ids[i];
        if (!keep && n->conf_known.ids[i] != n->cfg.id)
            net_transport_remove_peer(n->tr, n->conf_known.ids[i]);
    }
    for (uint32_t j = 0; j < c->n; j++) {
        if (c->ids[j] == n->cfg.id)
            continue;
        net_peer p;
        memset(&p, 0, sizeof p);
        p.id = c->ids[j];
        const char *colon = strrchr(c->addrs[j], ':');
        if (!colon)
            continue;
        snprintf(p.host, sizeof p.host, "%.*s", (int)(colon - c->addrs[j]), c->addrs[j]);
        p.port = atoi(colon + 1);
        net_transport_add_peer(n->tr, &p);
    }
    n->conf_known = *c;
}

/* SNAPSHOT messages of the core come without bytes (external snapshots):
 * read them from the stored form.  false: drop this message (the core resends
 * after two heartbeats without progress). */
static bool fill_chunk(node *n, raft_msg *m)
{
    if (n->chunk_cap < m->chunk_len) {
        uint8_t *p = realloc(n->chunk, m->chunk_len);
        if (!p)
            return false;
        n->chunk = p;
        n->chunk_cap = m->chunk_len;
    }
    char err[512];
    if (st_snap_stored_read(n->st, m->index, m->offset, n->chunk, m->chunk_len, err,
                            sizeof err) != ST_OK) {
        nlog(n, 1, "cannot send snapshot bytes to node %" PRIu64 ": %s", m->to, err);
        return false;
    }
    m->chunk = n->chunk;
    return true;
}

static void send_msgs(node *n, const raft_msg *msgs, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        raft_msg m = msgs[i];
        if (m.type == RAFT_MSG_SNAPSHOT && m.chunk_len && !m.chunk && !fill_chunk(n, &m))
            continue;
        if (net_encode_raft(&m, &n->buf) != NET_OK) {
            nlog(n, 1, "cannot encode %s to node %" PRIu64, raft_msg_type_name(m.type), m.to);
            continue;
        }
        net_send_peer(n->tr, m.to, n->buf.p, n->buf.len);
    }
}

/* The limits are replicated state (kv.h): the first leader seeds them from
 * its flags, once; a SET_LIMITS that finds them set changes nothing. */
static void propose_limits(node *n)
{
    kv_limits cur;
    if (kv_get_limits(n->kv, &cur))
        return;
    kv_op o = {.type = KV_OP_SET_LIMITS, .flags = KV_LIMITS_IF_UNSET,
               .len = n->cfg.max_file_size, .off = n->cfg.max_store_bytes};
    uint8_t *ob, *cmd;
    size_t ol, cl;
    if (kv_op_encode(&o, &ob, &ol) != 0)
        return;
    if (kv_cmd_encode(0, 0, realtime_ns(), ob, ol, &cmd, &cl) == 0) {
        if (raft_propose(n->r, cmd, cl, NULL, NULL) == RAFT_OK)
            nlog(n, 2, "proposed the initial limits: max-file-size %" PRIu64
                       ", max-store-bytes %" PRIu64, n->cfg.max_file_size, n->cfg.max_store_bytes);
        free(cmd);
    }
    free(ob);
}

/* Logs the replicated limits when they change, with a warning when this
 * node's flags say otherwise (the replicated value is the one in force). */
static void check_limits(node *n)
{
    kv_limits l;
    bool set = kv_get_limits(n->kv, &l);
    if (!set || (n->lim_seen_set && memcmp(&l, &n->lim_seen, sizeof l) == 0))
        return;
    n->lim_seen = l;
    n->lim_seen_set = true;
    nlog(n, 2, "limits in force (replicated): max-file-size %" PRIu64 ", max-store-bytes %" PRIu64,
         l.max_file_size, l.max_total_bytes);
    if (l.max_file_size != n->cfg.max_file_size || l.max_total_bytes != n->cfg.max_store_bytes)
        nlog(n, 1, "this node's --max-file-size %" PRIu64 " / --max-store-bytes %" PRIu64
                   " differ from the cluster's replicated limits; the replicated ones are used "
                   "(change them with `hstore limits set`)",
             n->cfg.max_file_size, n->cfg.max_store_bytes);
}

static void log_changes(node *n)
{
    raft_status st;
    raft_status_get(n->r, &st);
    if (st.election.seq != n->last_election_seq) {
        const raft_election_event *e = &st.election;
        if (e->reason == RAFT_ELECTION_TIMEOUT && e->leader)
            nlog(n, 2, "election: %s in term %" PRIu64 ": no message from leader %" PRIu64
                 " for %" PRId64 " ms", raft_election_reason_name(e->reason), e->term, e->leader,
                 e->idle_ticks * n->cfg.tick_ms);
        else if (e->reason == RAFT_ELECTION_TIMEOUT)
            nlog(n, 2, "election: %s in term %" PRIu64 ": no leader heard from since start",
                 raft_election_reason_name(e->reason), e->term);
        else if (e->reason == RAFT_ELECTION_TRANSFER)
            nlog(n, 2, "election: %s in term %" PRIu64 ": leader %" PRIu64 " hands over to this node",
                 raft_election_reason_name(e->reason), e->term, e->leader);
        else if (e->reason == RAFT_ELECTION_STEP_DOWN)
            nlog(n, 2, "%s in term %" PRIu64 ": heard from %u of the voters (this node included) "
                 "within an election timeout, a quorum is %u",
                 raft_election_reason_name(e->reason), e->term, e->active, e->quorum);
        n->last_election_seq = st.election.seq;
    }
    if (st.term != n->last_term)
        nlog(n, 2, "term changed %" PRIu64 " -> %" PRIu64, n->last_term, st.term);
    if (st.role != n->last_role) {
        nlog(n, 2, "role changed %s -> %s", raft_role_name(n->last_role), raft_role_name(st.role));
        if (st.role == RAFT_CANDIDATE)
            nlog(n, 2, "election: campaigning in term %" PRIu64, st.term);
        if (st.role == RAFT_LEADER)
            propose_limits(n);
    }
    if (st.leader != n->last_leader)
        nlog(n, 2, "leader changed %" PRIu64 " -> %" PRIu64, n->last_leader, st.leader);
    bool changed = st.leader != n->last_leader || st.term != n->last_term;
    if (st.leader != n->last_leader) {
        /* Every reply carries the leader's client address (peer port + 1),
         * so clients go straight to it next time. */
        n->leader_caddr[0] = 0;
        for (uint32_t i = 0; st.leader && i < st.conf.n; i++) {
            const char *a = st.conf.addrs[i];
            const char *c = strrchr(a, ':');
            if (st.conf.ids[i] == st.leader && c)
                snprintf(n->leader_caddr, sizeof n->leader_caddr, "%.*s:%d", (int)(c - a), a,
                         atoi(c + 1) + 1);
        }
    }
    n->last_term = st.term;
    n->last_role = st.role;
    n->last_leader = st.leader;
    sync_peers(n, &st.conf);
    pthread_mutex_lock(&n->mu);
    n->status = st;
    pthread_mutex_unlock(&n->mu);
    if (changed) {
        /* A new leader: requests waiting on the old one are retried now. */
        for (req *q = n->pending.next; q != &n->pending; q = q->next)
            if (!(q->read && q->have_index))
                q->tried = false;
    }
}

/* Applies rd's committed entries and answers their clients at once (the
 * answers are written now, not at the end of the loop turn). */
static int apply_committed(node *n, const raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_committed; i++) {
        if (rd->committed[i].index <= kv_applied_index(n->kv))
            continue;
        if (apply_entry(n, &rd->committed[i]) != 0) {
            node_fail(n, "out of memory applying a command");
            return -1;
        }
    }
    if (rd->n_committed) {
        net_transport_flush(n->tr);
        check_limits(n);
    }
    return 0;
}

static int handle_ready(node *n)
{
    char err[512];
    while (raft_has_ready(n->r)) {
        raft_ready rd;
        raft_ready_get(n->r, &rd);
        ntrace(n, "ready: %zu msgs, %zu entries, %zu committed, %zu msgs after persist",
               rd.n_msgs, rd.n_entries, rd.n_committed, rd.n_msgs_after_persist);
        /* The commit index alone is not worth an fsync (raft.h: it may be
         * persisted lazily; a node that restarts with an older one learns
         * the newer one from the leader).  It rides along with a batch that
         * must be durable anyway (entries, a snapshot, a new term or vote),
         * and only once it is COMMIT_LAG behind.  Syncing it on its own
         * would double the fsyncs on the commit path: every batch would be
         * followed by one for its own commit. */
        if (rd.hs_changed)
            n->hs_now = rd.hs;
        bool must_sync = rd.n_entries || rd.snapshot || n->hs_now.term != n->hs_saved.term ||
                         n->hs_now.vote != n->hs_saved.vote;
        if (!must_sync) {
            /* Nothing to persist: answer the clients first, then send (a
             * nanomsg send costs a thread hand-off, tens of microseconds,
             * that the answers need not wait for). */
            if (apply_committed(n, &rd) != 0)
                return -1;
            send_msgs(n, rd.msgs, rd.n_msgs);
            send_msgs(n, rd.msgs_after_persist, rd.n_msgs_after_persist);
        } else {
            /* The leader's AppendEntries go out before its own write, so
             * followers write in parallel with it (dissertation §10.2.1). */
            send_msgs(n, rd.msgs, rd.n_msgs);
            /* The hard state row goes along when the term or vote changed,
             * and for the commit index only once it moved COMMIT_LAG on:
             * rewriting the row with every batch would add a database page
             * (4 KiB written and checksummed into the WAL) to batches of a
             * few hundred bytes. */
            rd.hs = n->hs_now;
            rd.hs_changed = n->hs_now.term != n->hs_saved.term ||
                            n->hs_now.vote != n->hs_saved.vote ||
                            n->hs_now.commit >= n->hs_saved.commit + COMMIT_LAG;
            if (!rd.hs_changed)
                rd.hs = n->hs_saved;
            ntrace(n, "persist start");
            int rc = st_save_ready(n->st, &rd, err, sizeof err);
            ntrace(n, "persist end");
            if (rc != ST_OK) {
                node_fail(n, err);
                return -1;
            }
            if (rd.hs_changed)
                n->hs_saved = n->hs_now;
            send_msgs(n, rd.msgs_after_persist, rd.n_msgs_after_persist);
            if (rd.snapshot) {
                /* the leader sent its stored form: decode it as a stream */
                st_snap_reader *sr = NULL;
                uint64_t raw = 0;
                int drc = st_snap_reader_open_frame(rd.snapshot->data, rd.snapshot->len, &sr,
                                                    err, sizeof err);
                if (drc == ST_OK) {
                    drc = kv_snapshot_read(n->kv, st_snap_read, sr) != 0 ? ST_ECORRUPT : ST_OK;
                    raw = st_snap_reader_bytes(sr);
                    int crc = st_snap_reader_close(sr, err, sizeof err);
                    if (drc == ST_OK)
                        drc = crc;
                    else if (crc == ST_OK)
                        snprintf(err, sizeof err, "the state in it is malformed");
                }
                if (drc != ST_OK || kv_applied_index(n->kv) != rd.snapshot->index) {
                    char msg[700];
                    snprintf(msg, sizeof msg,
                             "received snapshot at index %" PRIu64 " does not decode: %s",
                             rd.snapshot->index, drc != ST_OK ? err : "index mismatch");
                    node_fail(n, msg);
                    return -1;
                }
                n->last_applied_term = rd.snapshot->term;
                malloc_trim(0);
                nlog(n, 2, "snapshot installed from leader: index %" PRIu64 " term %" PRIu64
                           ", %zu bytes received, %" PRIu64 " bytes of state",
                     rd.snapshot->index, rd.snapshot->term, rd.snapshot->len, raw);
            }
            if (apply_committed(n, &rd) != 0)
                return -1;
        }
        for (size_t i = 0; i < rd.n_read_states; i++) {
            for (req *q = n->pending.next; q != &n->pending; q = q->next)
                if (q->read && q->read_ctx == rd.read_states[i].ctx) {
                    q->have_index = true;
                    q->read_index = rd.read_states[i].index;
                }
        }
        raft_advance(n->r, &rd);
        log_changes(n);
    }
    return 0;
}

static int pipe_write(void *arg, const void *buf, size_t len)
{
    int fd = *(int *)arg;
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The child: a frozen copy of the state machine; encodes it into fd. */
static void snapshot_child(node *n, int fd, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(3);
    /* Background work: the loops of this machine's nodes come first. */
    (void)setpriority(PRIO_PROCESS, 0, SNAP_NICE);
    /* Keep nothing of the node's: sockets, the store, the directory lock. */
    if (fd != 3) {
        if (dup2(fd, 3) < 0)
            _exit(4);
        fd = 3;
    }
    syscall(SYS_close_range, 4u, ~0u, 0u);
    for (int i = 0; i < 3; i++)
        if (i != 2)
            close(i);
    _exit(kv_snapshot_write(n->kv, pipe_write, &fd) == 0 ? 0 : 1);
}

static void snap_worker_done(node *n, int rc)
{
    pthread_mutex_lock(&n->mu);
    n->snap.rc = rc;
    n->snap.done = true;
    pthread_mutex_unlock(&n->mu);
    uint64_t one = 1;
    if (write(n->efd, &one, sizeof one) < 0) { /* the loop also wakes on its tick */ }
}

/* The worker thread: the child's bytes into the store's background writer. */
static void *snap_worker(void *arg)
{
    node *n = arg;
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SNAP_NICE);
    size_t cap = 1u << 20;
    uint8_t *buf = malloc(cap);
    int rc = buf ? 0 : -1;
    if (!buf)
        snprintf(n->snap.err, sizeof n->snap.err, "out of memory");
    while (!rc) {
        struct pollfd pfd = {.fd = n->snap.fd, .events = POLLIN};
        int pr = poll(&pfd, 1, SNAP_IDLE_MS);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            snprintf(n->snap.err, sizeof n->snap.err, "encoder silent for %d ms", SNAP_IDLE_MS);
            rc = -1;
            break;
        }
        ssize_t got = read(n->snap.fd, buf, cap);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(n->snap.err, sizeof n->snap.err, "pipe: %s", strerror(errno));
            rc = -1;
            break;
        }
        if (got == 0)
            break;
        n->snap.raw += (uint64_t)got;
        if (st_bgsnap_write(n->snap.w, buf, (size_t)got, n->snap.err, sizeof n->snap.err) != ST_OK)
            rc = -1;
    }
    free(buf);
    if (rc)
        kill(n->snap.child, SIGKILL);
    int ws = 0;
    while (waitpid(n->snap.child, &ws, 0) < 0 && errno == EINTR) {
    }
    if (!rc && !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0)) {
        snprintf(n->snap.err, sizeof n->snap.err, "encoder %s %d",
                 WIFEXITED(ws) ? "exited with" : "killed by signal",
                 WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
        rc = -1;
    }
    if (!rc && st_bgsnap_finish(n->snap.w, n->snap.err, sizeof n->snap.err) != ST_OK)
        rc = -1;
    snap_worker_done(n, rc);
    return NULL;
}

/* Ends a running snapshot that is no longer wanted (the node stops). */
static void snapshot_cancel(node *n)
{
    if (!n->snap.running)
        return;
    kill(n->snap.child, SIGKILL);
    pthread_join(n->snap.thr, NULL);
    close(n->snap.fd);
    st_bgsnap_abort(n->snap.w);
    n->snap.running = false;
}

/* The short step on the loop once the worker is done. */
static void snapshot_finish(node *n)
{
    pthread_mutex_lock(&n->mu);
    bool done = n->snap.done;
    int rc = n->snap.rc;
    pthread_mutex_unlock(&n->mu);
    if (!done)
        return;
    pthread_join(n->snap.thr, NULL);
    close(n->snap.fd);
    n->snap.running = false;
    uint64_t index = n->snap.index;
    if (rc) {
        st_bgsnap_abort(n->snap.w);
        n->snap.retry_ms = now_ms() + SNAP_RETRY_MS;
        nlog(n, 1, "snapshot at index %" PRIu64 " failed: %s; retrying in %d ms", index,
             n->snap.err, SNAP_RETRY_MS);
        return;
    }
    uint64_t stored = st_bgsnap_bytes(n->snap.w);
    raft_conf conf;
    int crc = raft_compact(n->r, index, NULL, (size_t)stored, &conf);
    if (crc != RAFT_OK) {
        /* a newer snapshot came from the leader meanwhile */
        st_bgsnap_abort(n->snap.w);
        nlog(n, 2, "snapshot at index %" PRIu64 " dropped: %s", index, raft_strerror(crc));
        return;
    }
    char err[512];
    uint64_t t0 = now_ms();
    if (st_bgsnap_commit(n->snap.w, &conf, err, sizeof err) != ST_OK) {
        node_fail(n, err);
        return;
    }
    uint64_t t1 = now_ms();
    nlog(n, 2, "snapshot taken at index %" PRIu64 " term %" PRIu64 ": %" PRIu64 " bytes, %" PRIu64
               " bytes stored, %" PRIu64 " ms in the background; the loop paused %" PRIu64
               " us to fork, %" PRIu64 " ms to commit",
         index, n->snap.term, n->snap.raw, stored, t0 - n->snap.start_ms, n->snap.fork_us,
         t1 - t0);
    /* The compaction makes no ready of its own: refresh the status copy now,
     * or an idle node would report its old snapshot index. */
    log_changes(n);
}

static void maybe_snapshot(node *n)
{
    if (n->snap.running) {
        snapshot_finish(n);
        return;
    }
    /* Each node snapshots at its own point, between 3/4 of the threshold
     * and all of it, by its id: nodes that apply the same log would
     * otherwise all snapshot at once, and on one machine (or one disk)
     * their background work would pile up together. */
    uint64_t thr = n->cfg.snapshot_threshold;
    thr -= thr / 4 * (n->cfg.id % 4) / 3;
    if (!n->cfg.snapshot_threshold || raft_log_bytes(n->r) < thr)
        return;
    uint64_t now = now_ms();
    if (now < n->snap.retry_ms)
        return;
    uint64_t index = kv_applied_index(n->kv);
    raft_status st;
    raft_status_get(n->r, &st);
    if (index <= st.snapshot_index)
        return;
    char err[512];
    st_snap_writer *w;
    if (st_bgsnap_begin(n->st, index, n->last_applied_term, &w, err, sizeof err) != ST_OK) {
        n->snap.retry_ms = now + SNAP_RETRY_MS;
        nlog(n, 1, "cannot start a snapshot at index %" PRIu64 ": %s", index, err);
        return;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        st_bgsnap_abort(w);
        n->snap.retry_ms = now + SNAP_RETRY_MS;
        nlog(n, 1, "cannot start a snapshot: pipe: %s", strerror(errno));
        return;
    }
    fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
    pid_t parent = getpid();
    struct timespec f0, f1;
    clock_gettime(CLOCK_MONOTONIC, &f0);
    pid_t pid = fork();
    clock_gettime(CLOCK_MONOTONIC, &f1);
    if (pid == 0)
        snapshot_child(n, fds[1], parent);   /* never returns */
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        st_bgsnap_abort(w);
        n->snap.retry_ms = now + SNAP_RETRY_MS;
        nlog(n, 1, "cannot start a snapshot: fork: %s", strerror(errno));
        return;
    }
    n->snap.child = pid;
    n->snap.fork_us = (uint64_t)((f1.tv_sec - f0.tv_sec) * 1000000 + (f1.tv_nsec - f0.tv_nsec) / 1000);
    n->snap.fd = fds[0];
    n->snap.w = w;
    n->snap.index = index;
    n->snap.term = n->last_applied_term;
    n->snap.start_ms = now;
    n->snap.raw = 0;
    n->snap.done = false;
    n->snap.rc = 0;
    n->snap.err[0] = 0;
    if (pthread_create(&n->snap.thr, NULL, snap_worker, n) != 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        close(fds[0]);
        st_bgsnap_abort(w);
        n->snap.retry_ms = now + SNAP_RETRY_MS;
        nlog(n, 1, "cannot start a snapshot: no worker thread");
        return;
    }
    n->snap.running = true;
}

/* ---- input ---------------------------------------------------------------------------- */

static void recv_peers(node *n)
{
    for (int budget = 0; budget < 4096; budget++) {
        void *buf;
        size_t len;
        uint64_t from;
        if (net_recv_peer(n->tr, &buf, &len, &from) != NET_OK)
            return;
        raft_msg m;
        int rc = net_decode_raft(buf, len, &m);
        if (rc == NET_OK && m.from != from) {
            /* Authenticated as one node, claiming to be another. */
            net_raft_msg_free(&m);
            n->msgs_forged++;
            if ((n->msgs_forged & (n->msgs_forged - 1)) == 0)
                nlog(n, 1, "dropped a peer message from node %" PRIu64 " claiming to come from %"
                     PRIu64 "; %" PRIu64 " so far", from, m.from, n->msgs_forged);
        } else if (rc == NET_OK) {
            ntrace(n, "peer in: %s from %" PRIu64 ", %u entries", raft_msg_type_name(m.type),
                   m.from, (unsigned)m.n_entries);
            if (m.to == n->cfg.id)
                raft_step(n->r, &m);
            net_raft_msg_free(&m);
        } else {
            n->msgs_bad++;
            if ((n->msgs_bad & (n->msgs_bad - 1)) == 0) /* 1, 2, 4, 8 ...: no log flood */
                nlog(n, 1, "dropped malformed peer message (%s); %" PRIu64 " so far",
                     net_strerror(rc), n->msgs_bad);
        }
        net_msg_free(buf);
    }
}

static void answer_status(node *n, net_client_msg *cm, uint64_t req_id)
{
    net_status_resp sr;
    memset(&sr, 0, sizeof sr);
    sr.req_id = req_id;
    snprintf(sr.addr, sizeof sr.addr, "%s", n->self_addr);
    raft_status_get(n->r, &sr.st);
    net_transport_stats ts;
    net_transport_get_stats(n->tr, &ts);
    sr.auth_rejected = ts.peer_auth_failed + ts.peer_replayed + ts.client_auth_failed +
                       n->msgs_forged;
    sr.conns_cut = ts.client_refused + ts.client_idle_closed + ts.client_mem_closed +
                   ts.client_too_large;
    if (net_encode_status_resp(&sr, &n->buf) == NET_OK)
        net_reply_client(n->tr, cm, n->buf.p, n->buf.len);
    else
        net_client_msg_drop(cm);
}

/* What may enter the loop (node_submit and the client port alike): a read
 * must be a read op; a command must be a well-formed write op with its
 * exactly-once ids (without them its reply could not be matched, nor a retry
 * recognised).  A read op sent as a command is refused here, before any
 * proposal: a committed read would make every replica build its reply at
 * every replay.  A REGISTER (seq 0) is the one command without a seq.  For a
 * command, q->cmd is built.  NODE_OK, NODE_EINVAL or NODE_ENOMEM. */
static int prepare_req(req *q, const uint8_t *op, size_t len)
{
    if (q->read)
        return kv_op_is_read(op, len) ? NODE_OK : NODE_EINVAL;
    kv_op o;
    if (!kv_op_is_write(op, len) || kv_op_decode(op, len, &o) != 0 || !q->client_id)
        return NODE_EINVAL;
    if (o.type == KV_OP_REGISTER) {
        if (q->seq)
            return NODE_EINVAL;
        q->reg = true;
    } else if (!q->seq) {
        return NODE_EINVAL;
    }
    return kv_cmd_encode(q->client_id, q->seq, realtime_ns(), op, len, &q->cmd, &q->cmd_len) == 0
               ? NODE_OK : NODE_ENOMEM;
}

/* The command of a REGISTER with nonce (seq 0). */
static int register_cmd(uint64_t nonce, uint8_t **cmd, size_t *cmd_len)
{
    if (!nonce)
        return NODE_EINVAL;
    kv_op o = {.type = KV_OP_REGISTER};
    uint8_t *ob;
    size_t ol;
    if (kv_op_encode(&o, &ob, &ol) != 0)
        return NODE_ENOMEM;
    int rc = kv_cmd_encode(nonce, 0, realtime_ns(), ob, ol, cmd, cmd_len);
    free(ob);
    return rc == 0 ? NODE_OK : NODE_ENOMEM;
}

static void recv_clients(node *n)
{
    for (int budget = 0; budget < 4096; budget++) {
        net_client_msg cm;
        if (net_recv_client(n->tr, &cm) != NET_OK)
            return;
        int type = net_frame_check(cm.body, cm.len, NULL);
        if (type == NET_MSG_STATUS_REQ) {
            uint64_t rid;
            if (net_decode_status_req(cm.body, cm.len, &rid) == NET_OK)
                answer_status(n, &cm, rid);
            else
                net_client_msg_drop(&cm);
            continue;
        }
        net_client_req cr;
        if (type != NET_MSG_CLIENT_REQ || net_decode_client_req(cm.body, cm.len, &cr) != NET_OK) {
            n->msgs_bad++;
            net_client_msg_drop(&cm);
            continue;
        }
        req *q = req_alloc();
        if (!q) {
            net_client_msg_drop(&cm);
            continue;
        }
        q->origin = ORIGIN_NET;
        q->cmsg = cm;
        q->req_id = cr.req_id;
        ntrace(n, "client in: req %" PRIu64 "%s", cr.req_id, (cr.flags & NET_REQ_READ) ? " (read)" : "");
        q->read = (cr.flags & NET_REQ_READ) != 0;
        q->reg = (cr.flags & NET_REQ_REGISTER) != 0;
        q->client_id = cr.client_id;
        q->seq = cr.seq;
        if (q->reg) {
            q->read = false;
            q->seq = 0;
        }
        q->deadline_ms = now_ms() + (uint64_t)n->cfg.op_timeout_ms;
        int crc = q->reg ? register_cmd(q->client_id, &q->cmd, &q->cmd_len)
                         : prepare_req(q, cr.op, cr.op_len);
        if (crc != NODE_OK) {
            req_finish(n, q, crc, NULL, 0);
            continue;
        }
        if (q->read) {
            q->op = cr.op;
            q->op_len = cr.op_len;
        }
        q->part = !q->read && kv_op_peek_type(cr.op, cr.op_len) == KV_OP_UPLOAD_PART;
        req_start(n, q);
    }
}

/* ---- open-file reports ----------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Proposes HOLD (holder = this node) with the given list, as our own request
 * (rep.inflight is set by the caller; cleared here on failure). */
static void report_propose(node *n, uint64_t covered, const uint64_t *inos, size_t cnt,
                           uint32_t flags, uint64_t now)
{
    uint8_t *data = NULL;
    bool ok = false;
    if (cnt) {
        data = malloc(cnt * 8);
        if (!data)
            goto out;
        for (size_t i = 0; i < cnt; i++)
            for (int b = 0; b < 8; b++)
                data[i * 8 + b] = (uint8_t)(inos[i] >> (8 * b));
    }
    kv_op op = {.type = KV_OP_HOLD, .holder = n->cfg.id, .off = covered, .data = data,
                .data_len = cnt * 8, .flags = flags};
    uint8_t *ob = NULL;
    size_t ol = 0;
    req *q = NULL;
    if (kv_op_encode(&op, &ob, &ol) != 0 || !(q = req_alloc()))
        goto out;
    q->origin = ORIGIN_SELF;
    q->deadline_ms = now + (uint64_t)n->cfg.op_timeout_ms;
    if (!n->rep.client) {
        /* Reports go through a session of their own (exactly once): open
         * it first; the report follows at the next check. */
        q->reg = true;
        if (getrandom(&q->client_id, sizeof q->client_id, 0) != (ssize_t)sizeof q->client_id)
            q->client_id = ((uint64_t)getpid() << 32) ^ (uint64_t)realtime_ns();
        q->client_id |= 1;
        if (register_cmd(q->client_id, &q->cmd, &q->cmd_len) != NODE_OK) {
            req_free(q);
            goto out;
        }
    } else {
        q->client_id = n->rep.client;
        q->seq = ++n->rep.seq;
        if (kv_cmd_encode(q->client_id, q->seq, realtime_ns(), ob, ol, &q->cmd, &q->cmd_len) != 0) {
            req_free(q);
            goto out;
        }
    }
    n->rep.sent_ms = now;
    ok = true;
    req_start(n, q);   /* may finish it at once (clears inflight) */
out:
    free(ob);
    free(data);
    if (!ok) {
        pthread_mutex_lock(&n->rep.mu);
        n->rep.inflight = false;
        pthread_mutex_unlock(&n->rep.mu);
    }
}

/* Decides whether this node must report its open files now (file comment). */
static void report_open_files(node *n, uint64_t now)
{
    kv_holder_view v;
    kv_holder_get(n->kv, n->cfg.id, &v);
    atomic_store(&n->holder_known, v.known);
    if (now - n->rep.check_ms < REPORT_CHECK_MS)
        return;
    n->rep.check_ms = now;
    pthread_mutex_lock(&n->rep.mu);
    if (!n->rep.fn || n->rep.inflight) {
        pthread_mutex_unlock(&n->rep.mu);
        return;
    }
    bool must = !v.known || now - n->rep.sent_ms >= REPORT_KEEPALIVE_MS;
    if (!must && !v.uncovered && v.n_held == 0) {
        pthread_mutex_unlock(&n->rep.mu);
        return;
    }
    uint64_t since = UINT64_MAX;
    size_t cnt = n->rep.fn(n->rep.arg, n->rep.buf, n->rep.cap, &since);
    while (cnt > n->rep.cap) {
        size_t nc = cnt + cnt / 2 + 16;
        uint64_t *b = realloc(n->rep.buf, nc * sizeof *b);
        if (!b) {
            pthread_mutex_unlock(&n->rep.mu);
            return;
        }
        n->rep.buf = b;
        n->rep.cap = nc;
        since = UINT64_MAX;
        cnt = n->rep.fn(n->rep.arg, n->rep.buf, n->rep.cap, &since);
    }
    /* Only the open inodes that have lost their names matter. */
    size_t m = 0;
    for (size_t i = 0; i < cnt; i++)
        if (kv_is_orphan(n->kv, n->rep.buf[i]))
            n->rep.buf[m++] = n->rep.buf[i];
    qsort(n->rep.buf, m, sizeof *n->rep.buf, cmp_u64);
    size_t d = 0;
    for (size_t i = 0; i < m; i++)
        if (d == 0 || n->rep.buf[i] != n->rep.buf[d - 1])
            n->rep.buf[d++] = n->rep.buf[i];
    if (d > KV_HOLD_MAX)
        d = KV_HOLD_MAX;
    uint64_t covered = kv_applied_index(n->kv);
    if (since < covered)
        covered = since;
    /* Nothing to say when the list is the one in force and the coverage
     * would not grow (or nothing waits for it): opens or lookups in progress
     * can hold it back for a while, and a report per check would only
     * fill the log. */
    bool same = d == v.n_held && memcmp(n->rep.buf, v.held, d * sizeof *v.held) == 0;
    if (!must && same && (!v.uncovered || covered <= v.covered)) {
        pthread_mutex_unlock(&n->rep.mu);
        return;
    }
    n->rep.inflight = true;
    pthread_mutex_unlock(&n->rep.mu);
    report_propose(n, covered, n->rep.buf, d, 0, now);
}

void node_set_open_files(node *n, node_open_fn fn, void *arg)
{
    pthread_mutex_lock(&n->rep.mu);
    n->rep.fn = fn;
    n->rep.arg = arg;
    pthread_mutex_unlock(&n->rep.mu);
    if (fn)
        return;
    /* A report being proposed must not land after the mount's leaving. */
    uint64_t end = now_ms() + (uint64_t)n->cfg.op_timeout_ms + 1000;
    for (;;) {
        pthread_mutex_lock(&n->rep.mu);
        bool busy = n->rep.inflight;
        pthread_mutex_unlock(&n->rep.mu);
        pthread_mutex_lock(&n->mu);
        bool stopped = n->stop;
        pthread_mutex_unlock(&n->mu);
        if (!busy || stopped || now_ms() >= end)
            return;
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

bool node_open_files_known(node *n)
{
    return atomic_load(&n->holder_known);
}

uint64_t node_applied_index(node *n)
{
    return atomic_load(&n->applied_pub);
}

static void drain_local(node *n)
{
    pthread_mutex_lock(&n->mu);
    req *q = n->queue_head;
    n->queue_head = n->queue_tail = NULL;
    pthread_mutex_unlock(&n->mu);
    while (q) {
        req *nx = q->qnext;
        q->qnext = NULL;
        req_start(n, q);
        q = nx;
    }
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* Commands left over by the previous turn's NODE_TURN_BYTES, first in line. */
static void propose_deferred(node *n, uint64_t now)
{
    n->deferred = false;
    req *q = n->pending.next;
    while (q != &n->pending && !n->deferred) {
        req *nx = q->next;
        if (!q->read && !q->tried)
            req_try(n, q, now);
        q = nx;
    }
}

static void *loop_main(void *arg)
{
    node *n = arg;
    struct pollfd fds[8];
    log_changes(n);
    for (;;) {
        pthread_mutex_lock(&n->mu);
        bool stop = n->stop;
        pthread_mutex_unlock(&n->mu);
        if (stop)
            break;
        int nf = 0;
        fds[nf++] = (struct pollfd){.fd = n->efd, .events = POLLIN};
        fds[nf++] = (struct pollfd){.fd = n->tfd, .events = POLLIN};
        nf += net_transport_pollfds(n->tr, fds + nf, 6);
        int timeout = n->deferred ? 0 : -1;
        uint64_t dl = net_transport_next_deadline(n->tr);
        if (dl != UINT64_MAX) {
            uint64_t now = now_ms();
            timeout = dl <= now ? 0 : (int)(dl - now);
        }
        int pr = poll(fds, (nfds_t)nf, timeout);
        if (pr < 0 && errno != EINTR) {
            node_fail(n, "poll failed");
            break;
        }
        uint64_t now = now_ms();
        net_transport_tick(n->tr, now);
        n->turn_bytes = 0;
        if (n->deferred)
            propose_deferred(n, now);
        bool ticked = false;
        for (int i = 0; i < nf && pr > 0; i++) {
            if (!(fds[i].revents & POLLIN))
                continue;
            if (fds[i].fd == n->efd) {
                uint64_t v;
                if (read(n->efd, &v, sizeof v) < 0) { /* EAGAIN: nothing */ }
                drain_local(n);
            } else if (fds[i].fd == n->tfd) {
                ticked = true;
            } else if (net_transport_is_peer_fd(n->tr, fds[i].fd)) {
                recv_peers(n);
            } else if (net_transport_is_client_fd(n->tr, fds[i].fd)) {
                recv_clients(n);
            }
        }
        /* Ticks after the messages that came with them: a loop that was held
         * up (a slow fsync, no CPU) first hears the heartbeats and answers
         * that arrived meanwhile, and counts at most MAX_TICKS_PER_TURN of
         * the time it missed, like etcd, which drops the ticks its busy node
         * cannot take.  Otherwise a node whose own disk stalled for an
         * election timeout would start an election (or, as leader, step
         * down for want of answers it had not read yet). */
        if (ticked) {
            uint64_t ticks = 0;
            if (read(n->tfd, &ticks, sizeof ticks) == sizeof ticks) {
                if (ticks > MAX_TICKS_PER_TURN)
                    ticks = MAX_TICKS_PER_TURN;
                for (uint64_t t = 0; t < ticks; t++)
                    raft_tick(n->r);
            }
            retry_and_expire(n, now);
        }
        /* Requests read earlier but left over by recv_clients' budget. */
        if (net_transport_client_pending(n->tr))
            recv_clients(n);
        issue_reads(n);
        if (handle_ready(n) != 0)
            break;
        serve_reads(n);
        maybe_snapshot(n);
        if (handle_ready(n) != 0)
            break;
        atomic_store(&n->applied_pub, kv_applied_index(n->kv));
        report_open_files(n, now_ms());
    }
    /* Fail everything still waiting. */
    drain_local(n);
    while (n->pending.next != &n->pending)
        req_finish(n, n->pending.next, NODE_ESTOPPED, NULL, 0);
    return NULL;
}

/* ---- start / stop / submit -------------------------------------------------------------------- */

static void node_free(node *n)
{
    if (!n)
        return;
    snapshot_cancel(n);
    free(n->chunk);
    if (n->tr)
        net_transport_free(n->tr);
    if (n->r)
        raft_free(n->r);
    if (n->kv)
        kv_free(n->kv);
    if (n->st)
        st_close(n->st);
    if (n->efd >= 0)
        close(n->efd);
    if (n->tfd >= 0)
        close(n->tfd);
    net_buf_free(&n->buf);
    free(n->cmd_tab);
    free(n->rep.buf);
    pthread_mutex_destroy(&n->rep.mu);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

node *node_start(const node_config *cfg, char *err, size_t errlen)
{
    node *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->cfg = *cfg;
    n->efd = n->tfd = -1;
    const char *tr = getenv("HSTORE_TRACE");
    n->trace = tr && *tr && strcmp(tr, "0") != 0;
    pthread_mutex_init(&n->mu, NULL);
    pthread_mutex_init(&n->rep.mu, NULL);
    /* A session of its own for open-file reports, new in every incarnation. */
    n->rep.client = 0;   /* registered with the first report */
    n->pending.next = n->pending.prev = &n->pending;
    if (n->cfg.tick_ms <= 0)
        n->cfg.tick_ms = 50;
    if (n->cfg.election_ticks <= 0)
        n->cfg.election_ticks = 10;
    if (n->cfg.op_timeout_ms <= 0)
        n->cfg.op_timeout_ms = 5000;

    const node_peer *self = NULL;
    char spec[RAFT_MAX_NODES * (RAFT_ADDR_MAX + 24)] = "";
    for (int i = 0; i < cfg->n_peers; i++) {
        if (cfg->peers[i].id == cfg->id)
            self = &cfg->peers[i];
        size_t l = strlen(spec);
        snprintf(spec + l, sizeof spec - l, "%s%" PRIu64 "=%s:%d", i ? "," : "", cfg->peers[i].id,
                 cfg->peers[i].host, cfg->peers[i].port);
    }
    if (!self) {
        snprintf(err, errlen, "node id %" PRIu64 " is not in the cluster spec", cfg->id);
        goto fail;
    }
    snprintf(n->self_addr, sizeof n->self_addr, "%.50s:%d", self->host, self->port);

    /* Storage first: a corrupt or foreign directory stops us before any socket. */
    int rc = st_open(cfg->data_dir, &n->st, err, errlen);
    if (rc != ST_OK)
        goto fail;
    if (st_check_identity(n->st, cfg->id, NULL, err, errlen) != ST_OK)
        goto fail;
    raft_boot boot;
    memset(&boot, 0, sizeof boot);
    /* The snapshot stays in the store (external snapshots): the core gets its
     * length, the state machine reads it as a stream below. */
    if (st_load_stored(n->st, &boot, err, errlen) != ST_OK)
        goto fail;
    if (boot.snapshot.conf.n == 0) {
        for (int i = 0; i < cfg->n_peers; i++) {
            boot.snapshot.conf.ids[i] = cfg->peers[i].id;
            snprintf(boot.snapshot.conf.addrs[i], RAFT_ADDR_MAX, "%.50s:%d", cfg->peers[i].host,
                     cfg->peers[i].port);
        }
        boot.snapshot.conf.n = (uint32_t)cfg->n_peers;
    }
    if (cfg->max_file_size > KV_MAX_FILE_SIZE_LIMIT) {
        st_boot_free(&boot);
        snprintf(err, errlen, "--max-file-size %" PRIu64 " is above the largest supported, %llu",
                 cfg->max_file_size, (unsigned long long)KV_MAX_FILE_SIZE_LIMIT);
        goto fail;
    }
    if (n->cfg.max_file_size == 0)
        n->cfg.max_file_size = KV_DEFAULT_MAX_FILE_SIZE;
    /* The limits are replicated (kv.h): until the log sets them, the
     * defaults are in force on every replica, whatever its flags. */
    n->kv = kv_new(NULL);
    if (!n->kv) {
        st_boot_free(&boot);
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (boot.snapshot.index > 0) {
        st_snap_reader *sr = NULL;
        int drc = st_snap_reader_open(n->st, &sr, err, errlen);
        if (drc == ST_OK) {
            drc = kv_snapshot_read(n->kv, st_snap_read, sr) != 0 ? ST_ECORRUPT : ST_OK;
            int crc = st_snap_reader_close(sr, err, errlen);
            if (drc != ST_OK && crc == ST_OK)
                snprintf(err, errlen, "%s: the snapshot at index %" PRIu64 " does not decode",
                         st_path(n->st), boot.snapshot.index);
            if (drc == ST_OK)
                drc = crc;
        }
        if (drc == ST_OK && kv_applied_index(n->kv) != boot.snapshot.index) {
            snprintf(err, errlen, "%s: the snapshot at index %" PRIu64 " holds the state at %" PRIu64,
                     st_path(n->st), boot.snapshot.index, kv_applied_index(n->kv));
            drc = ST_ECORRUPT;
        }
        if (drc != ST_OK) {
            st_boot_free(&boot);
            goto fail;
        }
        n->last_applied_term = boot.snapshot.term;
    }
    raft_config rc_cfg;
    raft_config_init(&rc_cfg);
    rc_cfg.id = cfg->id;
    rc_cfg.election_ticks = n->cfg.election_ticks;
    rc_cfg.heartbeat_ticks = 2;
    rc_cfg.external_snapshot = true;
    /* No entry or message large enough to hold up a heartbeat: entries carry
     * at most one part of a value (bigger ones are uploaded in parts, kv.h),
     * an AppendEntries at most 1 MiB of them, and a follower's window 4 MiB
     * (raft.h).  A bigger proposal gets EFBIG at once. */
    rc_cfg.max_entry_bytes = NODE_MAX_ENTRY;
    rc_cfg.max_msg_bytes = KV_PART_SIZE;
    rc_cfg.max_inflight_bytes = 4u * KV_PART_SIZE;
    rc_cfg.seed = cfg->id * 0x9E3779B97F4A7C15ull ^ (uint64_t)realtime_ns();
    const char *rerr = NULL;
    n->hs_now = n->hs_saved = boot.hs;
    n->r = raft_new(&rc_cfg, &boot, &rerr);
    size_t boot_entries = boot.n_entries;
    st_boot_free(&boot);
    if (!n->r) {
        snprintf(err, errlen, "%s: cannot restore Raft state: %s", st_path(n->st),
                 rerr ? rerr : "?");
        goto fail;
    }

    net_transport_config tc;
    memset(&tc, 0, sizeof tc);
    tc.self_id = cfg->id;
    snprintf(tc.host, sizeof tc.host, "%s", self->host);
    tc.port = self->port;
    tc.auth = &cfg->auth;
    tc.limits = cfg->client_limits;
    for (int i = 0; i < cfg->n_peers; i++) {
        if (cfg->peers[i].id == cfg->id)
            continue;
        net_peer *p = &tc.peers[tc.n_peers++];
        p->id = cfg->peers[i].id;
        snprintf(p->host, sizeof p->host, "%s", cfg->peers[i].host);
        p->port = cfg->peers[i].port;
    }
    n->tr = net_transport_new(&tc, err, errlen);
    if (!n->tr)
        goto fail;
    raft_status_get(n->r, &n->status);
    n->conf_known = n->status.conf;

    n->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    n->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (n->efd < 0 || n->tfd < 0) {
        snprintf(err, errlen, "eventfd/timerfd: %s", strerror(errno));
        goto fail;
    }
    struct itimerspec its = {
        .it_interval = {.tv_sec = n->cfg.tick_ms / 1000, .tv_nsec = (n->cfg.tick_ms % 1000) * 1000000L},
        .it_value = {.tv_sec = n->cfg.tick_ms / 1000, .tv_nsec = (n->cfg.tick_ms % 1000) * 1000000L},
    };
    timerfd_settime(n->tfd, 0, &its, NULL);

    nlog(n, 2, "started: %s, data %s, %zu log entries after snapshot %" PRIu64 ", cluster %s",
         n->self_addr, cfg->data_dir, boot_entries, n->status.snapshot_index, spec);
    if (pthread_create(&n->thread, NULL, loop_main, n) != 0) {
        snprintf(err, errlen, "cannot start the node thread");
        goto fail;
    }
    n->thread_started = true;
    return n;
fail:
    node_free(n);
    return NULL;
}

void node_stop(node *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->stop = true;
    pthread_mutex_unlock(&n->mu);
    uint64_t one = 1;
    if (write(n->efd, &one, sizeof one) < 0) { /* the loop also wakes on its tick */ }
    if (n->thread_started)
        pthread_join(n->thread, NULL);
    nlog(n, 2, "stopped");
    node_free(n);
}

/* Builds the request of one command or read.  NODE_OK or an error. */
static int req_make(const node_cmd *c, uint64_t deadline_ms, req **out)
{
    req *q = req_alloc();
    if (!q)
        return NODE_ENOMEM;
    q->origin = ORIGIN_LOCAL;
    q->read = c->read;
    q->client_id = c->read ? 0 : c->client_id;
    q->seq = c->read ? 0 : c->seq;
    q->deadline_ms = deadline_ms;
    int prc = prepare_req(q, c->op, c->len);
    if (prc != NODE_OK) {
        req_free(q);
        return prc;
    }
    if (c->read) {
        q->op_copy = malloc(c->len ? c->len : 1);
        if (!q->op_copy) {
            req_free(q);
            return NODE_ENOMEM;
        }
        memcpy(q->op_copy, c->op, c->len);
        q->op = q->op_copy;
        q->op_len = c->len;
    } else {
        q->part = kv_op_peek_type(c->op, c->len) == KV_OP_UPLOAD_PART;
    }
    *out = q;
    return NODE_OK;
}

int node_submit_many(node *n, node_cmd *cmds, size_t cnt, int timeout_ms)
{
    if (cnt == 0)
        return NODE_OK;
    if (timeout_ms <= 0)
        timeout_ms = n->cfg.op_timeout_ms;
    req **qs = calloc(cnt, sizeof *qs);
    if (!qs)
        return NODE_ENOMEM;
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    int rc = NODE_OK;
    for (size_t i = 0; i < cnt; i++) {
        cmds[i].rc = NODE_ENOMEM;
        cmds[i].reply = NULL;
        cmds[i].reply_len = 0;
    }
    for (size_t i = 0; i < cnt && rc == NODE_OK; i++)
        rc = req_make(&cmds[i], deadline, &qs[i]);
    if (rc != NODE_OK) {
        for (size_t i = 0; i < cnt; i++) {
            if (qs[i])
                req_free(qs[i]);
            cmds[i].rc = rc;
        }
        free(qs);
        return rc;
    }

    /* All of them enter the loop's queue together: they are proposed in one
     * turn (up to NODE_TURN_BYTES), share fsyncs and replication round
     * trips, and flow control (raft.h) paces them. */
    pthread_mutex_lock(&n->mu);
    if (n->stop) {
        pthread_mutex_unlock(&n->mu);
        for (size_t i = 0; i < cnt; i++) {
            req_free(qs[i]);
            cmds[i].rc = NODE_ESTOPPED;
        }
        free(qs);
        return NODE_ESTOPPED;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (n->queue_tail)
            n->queue_tail->qnext = qs[i];
        else
            n->queue_head = qs[i];
        n->queue_tail = qs[i];
    }
    pthread_mutex_unlock(&n->mu);
    uint64_t one = 1;
    if (write(n->efd, &one, sizeof one) < 0) { /* counter saturated: loop is awake anyway */ }

    /* The loop enforces the deadline; this wait has its own, a little later,
     * in case the loop is stuck (e.g. in a slow fsync). */
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    uint64_t wait_ms = (uint64_t)timeout_ms + 1000;
    dl.tv_sec += (time_t)(wait_ms / 1000);
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < cnt; i++) {
        req *q = qs[i];
        bool timed_out = false;
        while (!q->done && !timed_out)
            if (pthread_cond_timedwait(&q->cond, &n->mu, &dl) == ETIMEDOUT && !q->done)
                timed_out = true;
        if (timed_out) {
            q->abandoned = true; /* the loop frees it */
            cmds[i].rc = NODE_ETIMEDOUT;
            qs[i] = NULL;
            continue;
        }
        cmds[i].rc = q->rc;
        cmds[i].reply = q->reply;
        cmds[i].reply_len = q->reply_len;
        q->reply = NULL;
    }
    pthread_mutex_unlock(&n->mu);
    for (size_t i = 0; i < cnt; i++) {
        if (qs[i])
            req_free(qs[i]);
        if (cmds[i].rc != NODE_OK && rc == NODE_OK)
            rc = cmds[i].rc;
    }
    free(qs);
    return rc;
}

int node_submit(node *n, const uint8_t *op, size_t len, bool read, uint64_t client_id,
                uint64_t seq, int timeout_ms, uint8_t **reply, size_t *reply_len)
{
    node_cmd c = {.op = op, .len = len, .read = read, .client_id = client_id, .seq = seq};
    node_submit_many(n, &c, 1, timeout_ms);
    *reply = c.reply;
    *reply_len = c.reply_len;
    return c.rc;
}

int node_register(node *n, int timeout_ms, uint64_t *session_id)
{
    *session_id = 0;
    kv_op o = {.type = KV_OP_REGISTER};
    uint8_t *ob, *rep = NULL;
    size_t ol, rlen = 0;
    if (kv_op_encode(&o, &ob, &ol) != 0)
        return NODE_ENOMEM;
    /* The nonce only matches the reply to this call: random, never 0. */
    uint64_t nonce = 0;
    if (getrandom(&nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce)
        nonce = (uint64_t)realtime_ns() ^ ((uint64_t)syscall(SYS_gettid) << 40);
    if (!nonce)
        nonce = 1;
    int rc = node_submit(n, ob, ol, false, nonce, 0, timeout_ms, &rep, &rlen);
    free(ob);
    if (rc == NODE_OK) {
        *session_id = kv_reply_session_id(rep, rlen);
        if (!*session_id)
            rc = NODE_ENOMEM;
    }
    free(rep);
    return rc;
}
