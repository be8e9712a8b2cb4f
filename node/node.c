/*
 * node.c — one node's life: its configuration (defaults, the cluster spec),
 * start-up (the store, the state restored from the stored snapshot, the
 * Raft core, the transport, the loop thread), stop, and the status other
 * threads read.  Also the few helpers every file of node/ uses: the clock
 * stamped on commands, the log, and the fatal stop.
 *
 * How the node is laid out (node_internal.h has the map): one loop thread
 * (loop.c) owns the Raft core, the SQLite store, the key-value state
 * machine and the sockets; requests come from threads of this process
 * (submit.c) and from clients over TCP (client_port.c), and live in the
 * request table (request.c) until answered; snapshots are taken in a
 * forked child (snapshot.c); open files are reported to the state machine
 * (report.c).
 */
#include "node/node_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "net/client.h"

/* ---- clock, log, fatal stop ---------------------------------------------- */

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

int64_t node_realtime_ns(void)
{
    pthread_once(&g_clock_once, clock_offset_init);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + g_clock_offset_ns;
}

void nlog(node *n, int level, const char *fmt, ...)
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
    fprintf(stderr,
            "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s node=%" PRIu64 " term=%" PRIu64
            " role=%s %s\n",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000,
            lv[level < 0   ? 0
               : level > 3 ? 3
                           : level],
            n->cfg.id, st.term, raft_role_name(st.role), msg);
}

/* HSTORE_TRACE=1 in the environment: one line per step of every request
 * (client request in, ready batch, persist start and end, peer message in,
 * answer out) with a CLOCK_MONOTONIC timestamp in microseconds, so that the
 * logs of all nodes on one machine merge into one timeline (sort -n -k2):
 * where a request's time goes, hop by hop.  Off, it costs one branch. */
void ntrace(node *n, const char *fmt, ...)
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

/* A node that cannot persist or apply must not go on (it could acknowledge
 * what is not stored, or diverge): stop the loop and tell the process. */
void node_fail(node *n, const char *what)
{
    nlog(n, 0, "fatal: %s; stopping this node", what);
    pthread_mutex_lock(&n->mu);
    n->failed = true;
    n->stop = true;
    pthread_mutex_unlock(&n->mu);
    kill(getpid(), SIGTERM);
}

/* Wakes the loop from another thread (its eventfd).  A failed write needs
 * nothing: the counter is saturated, so the loop is awake anyway, and it
 * also wakes on its tick. */
void node_wake(node *n)
{
    uint64_t one = 1;
    if (write(n->efd, &one, sizeof one) < 0) {
        /* awake anyway */
    }
}

/* ---- configuration and status -------------------------------------------- */

void node_config_init(node_config *c)
{
    memset(c, 0, sizeof *c);
    c->tick_ms = 50;
    c->election_ticks = 10;
    c->lease_ms = -1;
    c->clock_drift_pct = 10;
    c->op_timeout_ms = 5000;
    c->max_file_size = 1ull << 30;
    c->snapshot_threshold = 32ull << 20;
    c->log_level = 2;
    net_auth_get_default(&c->auth);
}

/* The one reading of a cluster spec is net_parse_spec (clients use it
 * too); a node_peer holds what it accepts. */
int node_parse_cluster(const char *spec, node_peer *peers, int *n, char *err, size_t errlen)
{
    uint64_t ids[RAFT_MAX_NODES];
    char hosts[RAFT_MAX_NODES][NET_ADDR_MAX];
    int ports[RAFT_MAX_NODES];
    int cnt = net_parse_spec(spec, ids, hosts, ports, RAFT_MAX_NODES, err, errlen);
    *n = 0;
    if (cnt < 0)
        return -1;
    for (int i = 0; i < cnt; i++) {
        peers[i].id = ids[i];
        snprintf(peers[i].host, sizeof peers[i].host, "%s", hosts[i]);
        peers[i].port = ports[i];
    }
    *n = cnt;
    return 0;
}

const node_config *node_get_config(const node *n)
{
    return &n->cfg;
}

void node_set_partitioned(node *n, bool on)
{
    net_transport_set_partitioned(n->tr, on);
}

bool node_partitioned(node *n)
{
    return net_transport_partitioned(n->tr);
}

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

uint64_t node_applied_index(node *n)
{
    return atomic_load(&n->applied_pub);
}

/* ---- start / stop -------------------------------------------------------- */

static void node_free(node *n)
{
    if (!n)
        return;
    /* The writer first: the batches it may still be writing point into
     * the core. */
    persist_free(n);
    lease_free(n);
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
    watch_free(n->watch);
    pthread_mutex_destroy(&n->rep.mu);
    pthread_mutex_destroy(&n->st_mu);
    pthread_rwlock_destroy(&n->kv_rw);
    pthread_mutex_destroy(&n->chg.mu);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

/* Start, step 1: the store.  A corrupt or foreign directory stops the node
 * here, before any socket is opened. */
static int start_store(node *n, const node_config *cfg, char *err, size_t errlen)
{
    if (st_open(cfg->data_dir, &n->st, err, errlen) != ST_OK)
        return -1;
    if (st_check_identity(n->st, cfg->id, NULL, err, errlen) != ST_OK)
        return -1;
    return 0;
}

/* Start, step 1b: the members, when the caller gave none (no --cluster):
 * the configuration the store's snapshot and log hold, or else the members
 * recorded at the first start.  -1 with err when the store has neither (a
 * new directory: give --cluster or --join). */
static int start_members(node *n, char *err, size_t errlen)
{
    raft_boot boot;
    memset(&boot, 0, sizeof boot);
    if (st_load_stored(n->st, &boot, err, errlen) != ST_OK)
        return -1;
    raft_conf c;
    raft_boot_conf(&boot, &c);
    st_boot_free(&boot);
    if (c.n > 0) {
        n->cfg.n_peers = 0;
        for (uint32_t i = 0; i < c.n; i++) {
            node_peer *p = &n->cfg.peers[n->cfg.n_peers];
            const char *colon = strrchr(c.addrs[i], ':');
            if (!colon || colon == c.addrs[i])
                continue;
            p->id = c.ids[i];
            snprintf(p->host, sizeof p->host, "%.*s", (int)(colon - c.addrs[i]), c.addrs[i]);
            p->port = atoi(colon + 1);
            n->cfg.n_peers++;
        }
        return 0;
    }
    char spec[RAFT_MAX_NODES * (RAFT_ADDR_MAX + 24)];
    if (st_get_boot_members(n->st, spec, sizeof spec, err, errlen) != ST_OK)
        return -1;
    if (!spec[0]) {
        snprintf(err, errlen,
                 "%s holds no cluster configuration yet: give the members with --cluster on "
                 "the first start (or --join a running cluster)",
                 n->cfg.data_dir);
        return -1;
    }
    return node_parse_cluster(spec, n->cfg.peers, &n->cfg.n_peers, err, errlen) == 0 ? 0 : -1;
}

/* Start, step 2: the state machine from the stored snapshot, and the Raft
 * core from the stored hard state and log.  The snapshot stays in the store
 * (external snapshots): the core gets its length, the state machine reads
 * it as a stream (snapshot_install).  *boot_entries: log entries restored. */
static int start_state(node *n, const node_config *cfg, size_t *boot_entries, char *err,
                       size_t errlen)
{
    raft_boot boot;
    memset(&boot, 0, sizeof boot);
    if (st_load_stored(n->st, &boot, err, errlen) != ST_OK)
        return -1;
    /* The configuration comes from the store once there is one; a fresh
     * store starts from the cluster spec, or with none when joining. */
    if (boot.snapshot.conf.n == 0 && !cfg->join) {
        for (int i = 0; i < cfg->n_peers; i++) {
            boot.snapshot.conf.ids[i] = cfg->peers[i].id;
            snprintf(boot.snapshot.conf.addrs[i], RAFT_ADDR_MAX, "%.*s:%d", NET_SPEC_HOST_MAX,
                     cfg->peers[i].host, cfg->peers[i].port);
        }
        boot.snapshot.conf.n = (uint32_t)cfg->n_peers;
    }
    if (cfg->max_file_size > KV_MAX_FILE_SIZE_LIMIT) {
        st_boot_free(&boot);
        snprintf(err, errlen, "--max-file-size %" PRIu64 " is above the largest supported, %llu",
                 cfg->max_file_size, (unsigned long long)KV_MAX_FILE_SIZE_LIMIT);
        return -1;
    }
    if (n->cfg.max_file_size == 0)
        n->cfg.max_file_size = KV_DEFAULT_MAX_FILE_SIZE;
    /* The limits are replicated (kv.h): until the log sets them, the
     * defaults are in force on every replica, whatever its flags. */
    n->kv = kv_new(NULL);
    if (!n->kv) {
        st_boot_free(&boot);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (boot.snapshot.index > 0 &&
        snapshot_install(n, NULL, 0, boot.snapshot.index, boot.snapshot.term, NULL, err, errlen) !=
            ST_OK) {
        st_boot_free(&boot);
        return -1;
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
    rc_cfg.seed = cfg->id * 0x9E3779B97F4A7C15ull ^ (uint64_t)node_realtime_ns();
    rc_cfg.lease_ms = (uint32_t)n->cfg.lease_ms;
    rc_cfg.drift_pct = (uint32_t)n->cfg.clock_drift_pct;
    const char *rerr = NULL;
    n->hs_now = n->hs_saved = boot.hs;
    n->r = raft_new(&rc_cfg, &boot, &rerr);
    *boot_entries = boot.n_entries;
    st_boot_free(&boot);
    if (!n->r) {
        snprintf(err, errlen, "%s: cannot restore Raft state: %s", st_path(n->st),
                 rerr ? rerr : "?");
        return -1;
    }
    lease_turn(n);
    lease_applied(n); /* the state restored from the snapshot */
    return 0;
}

/* Start, step 3: the transport (peer and client ports) for self, the
 * eventfd local threads wake the loop with, and the tick timer. */
static int start_io(node *n, const node_config *cfg, const node_peer *self, char *err,
                    size_t errlen)
{
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
        return -1;
    raft_status_get(n->r, &n->status);
    n->conf_known = n->status.conf;

    n->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    n->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (n->efd < 0 || n->tfd < 0) {
        snprintf(err, errlen, "eventfd/timerfd: %s", strerror(errno));
        return -1;
    }
    struct itimerspec its = {
        .it_interval = {.tv_sec = n->cfg.tick_ms / 1000,
                        .tv_nsec = (n->cfg.tick_ms % 1000) * 1000000L},
        .it_value = {.tv_sec = n->cfg.tick_ms / 1000,
                     .tv_nsec = (n->cfg.tick_ms % 1000) * 1000000L},
    };
    timerfd_settime(n->tfd, 0, &its, NULL);
    return 0;
}

node *node_start(const node_config *cfg, char *err, size_t errlen)
{
    node *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->cfg = *cfg;
    n->efd = n->tfd = n->pw.efd = -1;
    const char *tr = getenv("HSTORE_TRACE");
    n->trace = tr && *tr && strcmp(tr, "0") != 0;
    pthread_mutex_init(&n->mu, NULL);
    pthread_mutex_init(&n->rep.mu, NULL);
    pthread_mutex_init(&n->st_mu, NULL);
    pthread_rwlockattr_t ra; /* the loop's applying must not wait behind a stream of readers */
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&n->kv_rw, &ra);
    pthread_mutex_init(&n->chg.mu, NULL);
    pthread_rwlockattr_destroy(&ra);
    /* A session of its own for open-file reports, new in every incarnation. */
    n->rep.client = 0; /* registered with the first report */
    n->pending.next = n->pending.prev = &n->pending;
    if (n->cfg.tick_ms <= 0)
        n->cfg.tick_ms = 50;
    if (n->cfg.election_ticks <= 0)
        n->cfg.election_ticks = 10;
    if (n->cfg.op_timeout_ms <= 0)
        n->cfg.op_timeout_ms = 5000;
    if (n->cfg.lease_ms < 0)
        n->cfg.lease_ms = n->cfg.tick_ms * n->cfg.election_ticks;
    if (n->cfg.clock_drift_pct <= 0 || n->cfg.clock_drift_pct >= 100)
        n->cfg.clock_drift_pct = 10;
    lease_init(n);

    /* The store first: a node started without --cluster finds its members
     * there. */
    if (start_store(n, cfg, err, errlen) != 0)
        goto fail;
    if (cfg->n_peers == 0 && start_members(n, err, errlen) != 0)
        goto fail;
    cfg = &n->cfg;
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
    snprintf(n->self_addr, sizeof n->self_addr, "%.*s:%d", NET_SPEC_HOST_MAX, self->host,
             self->port);
    /* The first members are recorded once, so that later starts need no
     * --cluster (a joining node has none: it learns them from the leader). */
    if (!cfg->join && st_set_boot_members(n->st, spec, err, errlen) != ST_OK)
        goto fail;

    size_t boot_entries = 0;
    if (start_state(n, cfg, &boot_entries, err, errlen) != 0 ||
        start_io(n, cfg, self, err, errlen) != 0 || persist_start(n, err, errlen) != 0)
        goto fail;
    n->watch = watch_new(kv_applied_index(n->kv));
    if (!n->watch) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

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
    node_wake(n);
    if (n->thread_started)
        pthread_join(n->thread, NULL);
    nlog(n, 2, "stopped");
    node_free(n);
}
