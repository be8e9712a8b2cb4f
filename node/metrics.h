/*
 * metrics.h — a node's counters and latency histograms, for GET /metrics
 * (Prometheus text format, node_metrics_render).  Every counter is an
 * atomic incremented where the event happens (loop, request table,
 * snapshots) and read by the renderer without a lock; a histogram counts
 * observations per bucket (not cumulative; the renderer sums them).
 *
 * The mount records its FUSE operations through its backend
 * (fs/fs_node_backend.c -> node_metrics_fs_op), by an index of its own
 * choosing and the operation's name.
 */
#ifndef HSTORE_NODE_METRICS_H
#define HSTORE_NODE_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "node/http_util.h"
#include "node/node.h"

#define METRICS_NBUCKETS 15 /* upper bounds in metrics_bucket_s, then +Inf */
#define NODE_FS_OPS_MAX 32

typedef struct metrics_hist {
    _Atomic uint64_t n[METRICS_NBUCKETS + 1];
    _Atomic uint64_t sum_ns;
} metrics_hist;

typedef struct node_metrics {
    _Atomic uint64_t leader_changes;
    _Atomic uint64_t proposals_committed, proposals_failed;
    metrics_hist read_index;                   /* a linearizable read, in to answered */
    _Atomic uint64_t lease_reads, index_reads; /* reads answered under a lease / by ReadIndex */
    _Atomic uint64_t local_reads;              /* lease reads answered on the caller's thread */
    _Atomic uint64_t answers_held; /* command answers that waited for the visible index */
    metrics_hist fsync;            /* one persisted ready batch */
    _Atomic uint64_t snapshots_taken, snapshot_taken_bytes;
    metrics_hist snapshot_take; /* start to committed in the store */
    _Atomic uint64_t snapshots_installed, snapshot_installed_bytes;
    metrics_hist snapshot_install;
    _Atomic(const char *) fs_names[NODE_FS_OPS_MAX];
    metrics_hist fs_ops[NODE_FS_OPS_MAX];
} node_metrics;

/* CLOCK_MONOTONIC in ns. */
uint64_t metrics_now_ns(void);
void metrics_observe(metrics_hist *h, uint64_t ns);
static inline void metrics_inc(_Atomic uint64_t *c, uint64_t by)
{
    atomic_fetch_add_explicit(c, by, memory_order_relaxed);
}

/* One FUSE operation of the mount on node n: op < NODE_FS_OPS_MAX its
 * index, name a static string, ns how long it took. */
void node_metrics_fs_op(node *n, unsigned op, const char *name, uint64_t ns);

/* Appends every metric of node n to b in the Prometheus text format. */
void node_metrics_render(node *n, hbuf *b);

/* For other renderers (http.c): a metric's HELP and TYPE lines, and a
 * sample.  name and help are plain text without newlines. */
void metrics_head(hbuf *b, const char *name, const char *type, const char *help);

#endif
