/*
 * metrics.c — recording into a node's histograms and rendering all of its
 * metrics in the Prometheus text format (see metrics.h).
 */
#include "node/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "node/node_internal.h"

/* Bucket upper bounds in seconds: 100 us to 10 s. */
static const double bucket_s[METRICS_NBUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

uint64_t metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void metrics_observe(metrics_hist *h, uint64_t ns)
{
    double s = (double)ns / 1e9;
    int i = 0;
    while (i < METRICS_NBUCKETS && s > bucket_s[i])
        i++;
    atomic_fetch_add_explicit(&h->n[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void node_metrics_fs_op(node *n, unsigned op, const char *name, uint64_t ns)
{
    if (!n || op >= NODE_FS_OPS_MAX)
        return;
    if (!atomic_load_explicit(&n->metrics.fs_names[op], memory_order_relaxed))
        atomic_store(&n->metrics.fs_names[op], name);
    metrics_observe(&n->metrics.fs_ops[op], ns);
}

void metrics_head(hbuf *b, const char *name, const char *type, const char *help)
{
    hbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(hbuf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    metrics_head(b, name, type, help);
    hbuf_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* The samples of one histogram; labels "" or `op="x"` (no braces). */
static void hist_samples(hbuf *b, const char *name, const char *labels, const metrics_hist *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i <= METRICS_NBUCKETS; i++) {
        cum += atomic_load_explicit(&h->n[i], memory_order_relaxed);
        if (i < METRICS_NBUCKETS)
            hbuf_printf(b, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep, bucket_s[i],
                        cum);
        else
            hbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, cum);
    }
    double sum = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
    if (labels[0]) {
        hbuf_printf(b, "%s_sum{%s} %.9f\n", name, labels, sum);
        hbuf_printf(b, "%s_count{%s} %" PRIu64 "\n", name, labels, cum);
    } else {
        hbuf_printf(b, "%s_sum %.9f\n%s_count %" PRIu64 "\n", name, sum, name, cum);
    }
}

static void hist(hbuf *b, const char *name, const char *help, const metrics_hist *h)
{
    metrics_head(b, name, "histogram", help);
    hist_samples(b, name, "", h);
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long size = 0, res = 0;
    int got = fscanf(f, "%lu %lu", &size, &res);
    fclose(f);
    return got == 2 ? (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

void node_metrics_render(node *n, hbuf *b)
{
    raft_status st;
    node_status(n, &st);
    pthread_mutex_lock(&n->mu);
    net_transport_stats ts = n->tstats;
    pthread_mutex_unlock(&n->mu);
    node_metrics *m = &n->metrics;

    one(b, "hstore_node_id", "gauge", "This node's id.", n->cfg.id);
    one(b, "hstore_term", "gauge", "Current Raft term.", st.term);
    metrics_head(b, "hstore_role", "gauge", "1 for the node's current Raft role, else 0.");
    static const raft_role roles[] = {RAFT_FOLLOWER, RAFT_PRE_CANDIDATE, RAFT_CANDIDATE,
                                      RAFT_LEADER};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        hbuf_printf(b, "hstore_role{role=\"%s\"} %d\n", raft_role_name(roles[i]),
                    st.role == roles[i]);
    one(b, "hstore_leader_id", "gauge", "The leader this node knows (0: none).", st.leader);
    one(b, "hstore_commit_index", "gauge", "Highest log index known committed.", st.commit);
    one(b, "hstore_applied_index", "gauge", "Highest log index applied to the state machine.",
        node_applied_index(n));
    one(b, "hstore_last_index", "gauge", "Last index in this node's log.", st.last_index);
    one(b, "hstore_snapshot_index", "gauge", "Index of this node's latest snapshot.",
        st.snapshot_index);
    one(b, "hstore_leader_changes_total", "counter", "Times this node saw a new leader.",
        atomic_load(&m->leader_changes));
    one(b, "hstore_proposals_committed_total", "counter",
        "Commands submitted on this node that were applied.", atomic_load(&m->proposals_committed));
    one(b, "hstore_proposals_failed_total", "counter",
        "Commands submitted on this node that failed (deadline, shutdown).",
        atomic_load(&m->proposals_failed));
    hist(b, "hstore_read_index_seconds", "Linearizable reads, from arrival to answer.",
         &m->read_index);
    one(b, "hstore_lease_reads_total", "counter",
        "Reads answered from this node's state under its read lease (no round trip).",
        atomic_load(&m->lease_reads));
    one(b, "hstore_lease_local_reads_total", "counter",
        "Lease reads answered on the mount's own thread, without the node's loop.",
        atomic_load(&m->local_reads));
    one(b, "hstore_read_index_reads_total", "counter",
        "Reads answered after a ReadIndex round with the leader.", atomic_load(&m->index_reads));
    one(b, "hstore_answers_held_total", "counter",
        "Command answers that waited until every lease holder had applied the command.",
        atomic_load(&m->answers_held));
    uint64_t until = atomic_load(&n->lease_until_pub), now = lease_now_ms(n);
    metrics_head(b, "hstore_read_lease_remaining_seconds", "gauge",
                 "How long this node's read lease still runs (0: none).");
    hbuf_printf(b, "hstore_read_lease_remaining_seconds %.3f\n",
                until > now ? (double)(until - now) / 1000.0 : 0.0);
    one(b, "hstore_visible_index", "gauge",
        "Highest index this node knows every lease holder has applied.",
        atomic_load(&n->visible_pub));
    hist(b, "hstore_fsync_seconds", "Persisting one batch of log entries and state (one fsync).",
         &m->fsync);
    one(b, "hstore_snapshots_taken_total", "counter", "Snapshots this node took.",
        atomic_load(&m->snapshots_taken));
    one(b, "hstore_snapshot_taken_bytes_total", "counter", "Bytes stored by snapshots taken.",
        atomic_load(&m->snapshot_taken_bytes));
    hist(b, "hstore_snapshot_take_seconds", "Taking a snapshot, start to stored.",
         &m->snapshot_take);
    one(b, "hstore_snapshots_installed_total", "counter",
        "Snapshots installed from a leader or at start.", atomic_load(&m->snapshots_installed));
    one(b, "hstore_snapshot_installed_bytes_total", "counter",
        "State bytes read from installed snapshots.", atomic_load(&m->snapshot_installed_bytes));
    hist(b, "hstore_snapshot_install_seconds", "Installing a snapshot into the state machine.",
         &m->snapshot_install);
    one(b, "hstore_peer_messages_sent_total", "counter", "Raft messages sent to peers.",
        ts.peer_sent);
    one(b, "hstore_peer_messages_dropped_total", "counter",
        "Raft messages dropped at send (queue full, peer down).", ts.peer_send_dropped);
    one(b, "hstore_peer_messages_received_total", "counter", "Raft messages from peers.",
        ts.peer_recv);
    one(b, "hstore_client_connections_total", "counter", "Client port connections accepted.",
        ts.client_conns);
    one(b, "hstore_client_requests_total", "counter", "Requests on the client port.",
        ts.client_recv);
    metrics_head(b, "hstore_fuse_op_seconds", "histogram",
                 "FUSE operations of this node's mount, by operation.");
    for (unsigned i = 0; i < NODE_FS_OPS_MAX; i++) {
        const char *name = atomic_load(&m->fs_names[i]);
        if (!name)
            continue;
        char label[96];
        snprintf(label, sizeof label, "op=\"%s\"", name);
        hist_samples(b, "hstore_fuse_op_seconds", label, &m->fs_ops[i]);
    }
    one(b, "process_resident_memory_bytes", "gauge", "Resident memory of the node's process.",
        rss_bytes());
}
