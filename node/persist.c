/*
 * persist.c — the node's disk writer: ready batches are written on a thread
 * of their own, so that the loop goes on sending heartbeats, reading acks
 * and answering clients while the disk works (dissertation §10.2.1).
 *
 * The loop hands every batch the core gives it to persist_push(), in the
 * core's order (raft.h: up to RAFT_MAX_BATCHES out at once).  The writer
 * takes all the batches waiting, writes those that hold something (entries,
 * a hard state) in one transaction with one fsync (st_save_readies: a
 * group commit), marks them done and wakes the loop through an eventfd.
 * The loop then finishes the oldest done batches in order (persist_pop):
 * sends what waited for the write (votes, acks), raft_advance().
 *
 * n->st_mu serialises the store between the two threads: the writer holds
 * it for a write and for the commit of a snapshot of the node's own
 * (persist_snap_commit); the loop for the rare things it does to the store
 * itself (installing a snapshot received from a leader, reading stored
 * snapshot chunks for a lagging follower or a backup, which that commit
 * replaces).
 *
 * A failed write is reported once to the loop, which stops the node
 * (node_fail): nothing of that batch or any later one is acknowledged.
 */
#include "node/node_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static bool snap_commit_due(const persist_state *p)
{
    return p->sc.pending && p->written >= p->sc.after && !p->rc;
}

/* The commit of a snapshot of the node's own, on the writer (called and
 * returning with p->mu): the store's transaction waits for the store's lock
 * and syncs, tens of milliseconds that every request in flight would wait
 * with if the loop did it.  The store's log must hold every entry up to the
 * snapshot's index before its prefix is dropped; those entries were all in
 * batches pushed before the snapshot began (an entry is applied only after
 * the batch that appended it was pushed), written by now.  A snapshot from
 * the leader stored meanwhile at this index or later wins: this one is
 * dropped. */
static void snap_commit(node *n)
{
    persist_state *p = &n->pw;
    p->sc.pending = false;
    p->sc.busy = true;
    st_snap_writer *w = p->sc.w;
    p->sc.w = NULL;
    pthread_mutex_unlock(&p->mu);
    char err[256] = "";
    uint64_t t0 = metrics_now_ns();
    int rc = SNAP_COMMITTED;
    pthread_mutex_lock(&n->st_mu);
    if (st_snapshot_index(n->st) >= p->sc.index) {
        st_bgsnap_abort(w);
        rc = SNAP_DROPPED;
    } else if (st_bgsnap_commit(w, &p->sc.conf, err, sizeof err) != ST_OK) {
        rc = SNAP_STORE_FAILED; /* the writer is freed either way */
    }
    pthread_mutex_unlock(&n->st_mu);
    uint64_t us = (metrics_now_ns() - t0) / 1000;
    pthread_mutex_lock(&p->mu);
    p->sc.busy = false;
    p->sc.done = true;
    p->sc.rc = rc;
    p->sc.us = us;
    snprintf(p->sc.err, sizeof p->sc.err, "%s", err);
    pthread_cond_broadcast(&p->wcv);
    uint64_t one = 1;
    if (write(p->efd, &one, sizeof one) < 0) { /* a full counter still wakes the loop */
    }
}

void persist_snap_commit(node *n, st_snap_writer *w, const raft_conf *conf, uint64_t index,
                         uint64_t after)
{
    persist_state *p = &n->pw;
    pthread_mutex_lock(&p->mu);
    p->sc.w = w;
    p->sc.conf = *conf;
    p->sc.index = index;
    p->sc.after = after;
    p->sc.done = false;
    p->sc.pending = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int persist_snap_result(node *n, char *err, size_t errlen, uint64_t *us)
{
    persist_state *p = &n->pw;
    pthread_mutex_lock(&p->mu);
    int rc = -1;
    if (p->sc.done) {
        rc = p->sc.rc;
        *us = p->sc.us;
        snprintf(err, errlen, "%s", p->sc.err);
        p->sc.done = false;
    } else if (p->rc && p->sc.pending) {
        /* the writer failed first (the node stops): never committed */
        p->sc.pending = false;
        st_bgsnap_abort(p->sc.w);
        p->sc.w = NULL;
        rc = SNAP_DROPPED;
        *us = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void persist_snap_cancel(node *n)
{
    persist_state *p = &n->pw;
    if (!p->inited)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->sc.pending) {
        p->sc.pending = false;
        st_bgsnap_abort(p->sc.w);
        p->sc.w = NULL;
    }
    while (p->sc.busy)
        pthread_cond_wait(&p->wcv, &p->mu); /* one store transaction */
    p->sc.done = false;
    pthread_mutex_unlock(&p->mu);
}

static void *writer_main(void *arg)
{
    node *n = arg;
    persist_state *p = &n->pw;
    const raft_ready *rds[RAFT_MAX_BATCHES];
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->written == p->pushed && !snap_commit_due(p))
            pthread_cond_wait(&p->cv, &p->mu);
        if (snap_commit_due(p)) {
            snap_commit(n);
            continue;
        }
        if (p->written == p->pushed)
            break; /* stopping, and nothing left to write */
        /* Everything waiting goes in one transaction.  The slots between
         * written and pushed are the loop's to read only: it writes a slot
         * before pushing it and reuses it only after popping it. */
        uint64_t from = p->written, to = p->pushed;
        size_t k = 0;
        for (uint64_t s = from; s < to; s++)
            rds[k++] = &p->q[s % RAFT_MAX_BATCHES].rd;
        pthread_mutex_unlock(&p->mu);

        char err[512] = "";
        pthread_mutex_lock(&n->st_mu);
        uint64_t t0 = metrics_now_ns();
        int rc = st_save_readies(n->st, rds, k, err, sizeof err);
        uint64_t ns = metrics_now_ns() - t0;
        pthread_mutex_unlock(&n->st_mu);

        pthread_mutex_lock(&p->mu);
        if (rc != ST_OK && !p->rc) {
            p->rc = rc;
            snprintf(p->err, sizeof p->err, "%s", err);
        }
        metrics_observe(&n->metrics.fsync, ns);
        p->written = to;
        pthread_cond_broadcast(&p->wcv);
        uint64_t one = 1;
        if (write(p->efd, &one, sizeof one) < 0) { /* a full counter still wakes the loop */
        }
        if (rc != ST_OK)
            break; /* nothing more is written after a failure */
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int persist_start(node *n, char *err, size_t errlen)
{
    persist_state *p = &n->pw;
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        snprintf(err, errlen, "eventfd: %m");
        return -1;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->wcv, NULL);
    p->inited = true;
    if (pthread_create(&p->thr, NULL, writer_main, n) != 0) {
        snprintf(err, errlen, "cannot start the disk writer thread");
        return -1;
    }
    p->started = true;
    return 0;
}

/* Lets the writer finish what was pushed, then joins it. */
static void persist_stop(node *n)
{
    persist_state *p = &n->pw;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thr, NULL);
        p->started = false;
    }
}

void persist_free(node *n)
{
    persist_state *p = &n->pw;
    persist_stop(n);
    if (p->sc.pending) {
        /* never due: the writer failed first */
        st_bgsnap_abort(p->sc.w);
        p->sc.w = NULL;
        p->sc.pending = false;
    }
    if (p->inited) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        pthread_cond_destroy(&p->wcv);
        p->inited = false;
    }
    if (p->efd >= 0)
        close(p->efd);
    p->efd = -1;
}

void persist_push(node *n, const raft_ready *rd)
{
    persist_state *p = &n->pw;
    pthread_mutex_lock(&p->mu);
    p->q[p->pushed % RAFT_MAX_BATCHES].rd = *rd;
    p->pushed++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int persist_pop(node *n, raft_ready *rd, bool wait, char *err, size_t errlen)
{
    persist_state *p = &n->pw;
    pthread_mutex_lock(&p->mu);
    while (wait && p->popped < p->pushed && p->written == p->popped && !p->rc)
        pthread_cond_wait(&p->wcv, &p->mu);
    int rc = 0;
    if (p->rc) {
        snprintf(err, errlen, "%s", p->err);
        rc = -1;
    } else if (p->popped < p->written) {
        *rd = p->q[p->popped % RAFT_MAX_BATCHES].rd;
        p->popped++;
        rc = 1;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}
