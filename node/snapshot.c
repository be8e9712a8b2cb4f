/*
 * snapshot.c — the node's snapshots: taking one in the background, sending
 * the stored one to a lagging follower, installing one.
 *
 * A node holds its state once in memory: the Raft core runs with
 * raft_config.external_snapshot and keeps no snapshot bytes, the store keeps
 * the only copy, in stored form (one zstd frame, a file of its own).
 *   - Taking one never stalls the loop for long.  When the log passes the
 *     threshold, maybe_snapshot() forks: the child is a frozen copy-on-write
 *     view of the state machine at the applied index, encodes it
 *     (kv_snapshot_write) into a pipe and exits.  A worker thread of the node
 *     reads the pipe and compresses into the store's background writer
 *     (st_bgsnap_*), which writes a new snapshot file beside the loop's
 *     batches and syncs it.  When the worker is done, the disk writer
 *     commits it (persist_snap_commit: a row names the file, the store's log
 *     prefix is dropped) once the batches pushed before the snapshot began
 *     are written, so the loop never waits for that transaction; then a
 *     short step on the loop calls raft_compact(index, no bytes, stored
 *     length).  Until then the core may still send the older snapshot,
 *     whose reads fail (st_snap_stored_read checks the index) and are
 *     retried.  A crash at any point leaves the previous snapshot in force
 *     (an unnamed file is deleted at start).
 *     Every wait has a deadline: the worker gives the child SNAP_IDLE_MS
 *     without output before killing it, and stopping the node kills the
 *     child and joins the worker.  The child dies with the node
 *     (PR_SET_PDEATHSIG) and closes every inherited descriptor, so it never
 *     holds the data directory's lock or sockets.  The child and the worker
 *     run at nice SNAP_NICE, and each node snapshots at its own point between
 *     3/4 of the threshold and all of it, so that the nodes of one machine
 *     do not all do this work at the same moment.  A backup (backup.c) can
 *     ask for one below the threshold: snap.want, an index the stored
 *     snapshot must reach; and while it reads the stored one (snap.pin_ms)
 *     the next is put off, up to twice the threshold.
 *   - Sending one: the core's SNAPSHOT messages come without bytes; the loop
 *     fills each chunk from the stored form (snapshot_fill_chunk,
 *     st_snap_stored_read), so followers receive the compressed frame.
 *   - Installing one (snapshot_install): a received frame, once persisted as
 *     is (st_save_ready), and the stored snapshot at start-up are decoded
 *     into the state machine as a stream (st_snap_reader): no buffer the
 *     size of the state is ever built.
 * After installing a snapshot, malloc_trim() gives the freed heap back to the
 * system (the state machine it replaced).  Taking one frees no heap: the
 * Raft log lives in slabs of its own (raft_log.c).
 */
#include "node/node_internal.h"

/* ioprio_set(2): glibc has no wrapper */
#define IOPRIO_WHO_THREAD 1   /* IOPRIO_WHO_PROCESS: with 0, the calling thread */
#define IOPRIO_IDLE (3 << 13) /* IOPRIO_CLASS_IDLE, level 0 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- installing ---------------------------------------------------------- */

/* The one way a snapshot enters the state machine: the stored one at
 * start-up (frame NULL), or the stored form a leader sent (frame, once
 * persisted).  Either is decoded as a stream, so no buffer the size of the
 * state is built, and must come out at index; term is the term of that
 * entry.  ST_OK (*raw, if raw is not NULL: bytes of state decoded), or an
 * error with err. */
int snapshot_install(node *n, const uint8_t *frame, size_t frame_len, uint64_t index, uint64_t term,
                     uint64_t *raw, char *err, size_t errlen)
{
    st_snap_reader *sr = NULL;
    uint64_t t0 = metrics_now_ns();
    int rc = frame ? st_snap_reader_open_frame(frame, frame_len, &sr, err, errlen)
                   : st_snap_reader_open(n->st, &sr, err, errlen);
    if (rc != ST_OK)
        return rc;
    pthread_rwlock_wrlock(&n->kv_rw);
    bool bad = kv_snapshot_read(n->kv, st_snap_read, sr) != 0;
    pthread_rwlock_unlock(&n->kv_rw);
    lease_changed(n);
    uint64_t bytes = st_snap_reader_bytes(sr);
    n->snap_state_bytes = bytes;
    if (raw)
        *raw = bytes;
    rc = st_snap_reader_close(sr, err, errlen);
    const char *where = frame ? "received snapshot" : st_path(n->st);
    if (rc == ST_OK && bad) {
        snprintf(err, errlen, "%s: the snapshot at index %" PRIu64 " does not decode", where,
                 index);
        rc = ST_ECORRUPT;
    } else if (rc == ST_OK && kv_applied_index(n->kv) != index) {
        snprintf(err, errlen, "%s: the snapshot at index %" PRIu64 " holds the state at %" PRIu64,
                 where, index, kv_applied_index(n->kv));
        rc = ST_ECORRUPT;
    }
    if (rc != ST_OK)
        return rc;
    n->last_applied_term = term;
    metrics_inc(&n->metrics.snapshots_installed, 1);
    metrics_inc(&n->metrics.snapshot_installed_bytes, bytes);
    metrics_observe(&n->metrics.snapshot_install, metrics_now_ns() - t0);
    /* Give the freed heap (the state machine replaced) back to the system. */
    malloc_trim(0);
    return ST_OK;
}

/* ---- sending ------------------------------------------------------------- */

/* SNAPSHOT messages of the core come without bytes (external snapshots):
 * read them from the stored form.  false: drop this message (the core resends
 * after two heartbeats without progress). */
bool snapshot_fill_chunk(node *n, raft_msg *m)
{
    if (n->chunk_cap < m->chunk_len) {
        uint8_t *p = realloc(n->chunk, m->chunk_len);
        if (!p)
            return false;
        n->chunk = p;
        n->chunk_cap = m->chunk_len;
    }
    char err[512];
    /* Under the store's lock: the disk writer may be replacing the stored
     * snapshot (persist_snap_commit). */
    pthread_mutex_lock(&n->st_mu);
    int rc =
        st_snap_stored_read(n->st, m->index, m->offset, n->chunk, m->chunk_len, err, sizeof err);
    pthread_mutex_unlock(&n->st_mu);
    if (rc != ST_OK) {
        nlog(n, 1, "cannot send snapshot bytes to node %" PRIu64 ": %s", m->to, err);
        return false;
    }
    m->chunk = n->chunk;
    return true;
}

/* ---- taking one ---------------------------------------------------------- */

/* The encoder's output into the pipe.  A page-aligned run (a chunk of a
 * large file, kv_chunk.c) is spliced in by reference, not copied: the
 * child never writes to the state it encodes, and the pipe keeps the pages
 * until the worker has read them. */
static int pipe_write(void *arg, const void *buf, size_t len)
{
    int fd = *(int *)arg;
    const uint8_t *p = buf;
    bool by_ref = ((uintptr_t)p & 4095) == 0 && len >= 16384;
    while (len) {
        ssize_t w;
        if (by_ref) {
            struct iovec iov = {(void *)p, len};
            w = vmsplice(fd, &iov, 1, 0);
            if (w < 0 && errno != EINTR) {
                by_ref = false; /* not spliceable: copy it */
                continue;
            }
        } else {
            w = write(fd, p, len);
        }
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
    node_wake(n);
}

/* The worker thread: the child's bytes into the store's background writer. */
static void *snap_worker(void *arg)
{
    node *n = arg;
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SNAP_NICE);
    /* Its writes too: the log's, whose fdatasync every commit waits for,
     * go first (an I/O scheduler with priorities, e.g. mq-deadline, serves
     * this thread's only when the disk has nothing else to do, or after a
     * few seconds). */
    (void)syscall(SYS_ioprio_set, IOPRIO_WHO_THREAD, 0, IOPRIO_IDLE);
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
void snapshot_cancel(node *n)
{
    if (!n->snap.running)
        return;
    if (n->snap.committing) {
        persist_snap_cancel(n);
    } else {
        kill(n->snap.child, SIGKILL);
        pthread_join(n->snap.thr, NULL);
        close(n->snap.fd);
        st_bgsnap_abort(n->snap.w);
    }
    n->snap.w = NULL;
    n->snap.committing = false;
    n->snap.running = false;
}

/* The short step on the loop once the worker is done. */
static void snapshot_finish(node *n)
{
    uint64_t index = n->snap.index;
    if (!n->snap.committing) {
        pthread_mutex_lock(&n->mu);
        bool done = n->snap.done;
        int rc = n->snap.rc;
        pthread_mutex_unlock(&n->mu);
        if (!done)
            return;
        pthread_join(n->snap.thr, NULL);
        close(n->snap.fd);
        if (rc) {
            st_bgsnap_abort(n->snap.w);
            n->snap.w = NULL;
            n->snap.running = false;
            n->snap.retry_ms = now_ms() + SNAP_RETRY_MS;
            nlog(n, 1, "snapshot at index %" PRIu64 " failed: %s; retrying in %d ms", index,
                 n->snap.err, SNAP_RETRY_MS);
            return;
        }
        /* The disk writer commits it (persist.c), not the loop. */
        n->snap.stored = st_bgsnap_bytes(n->snap.w);
        persist_snap_commit(n, n->snap.w, &n->snap.conf, index, n->snap.pushed_at_start);
        n->snap.w = NULL;
        n->snap.committing = true;
        n->snap.result = -1;
        return;
    }
    if (n->snap.result < 0)
        n->snap.result = persist_snap_result(n, n->snap.commit_err, sizeof n->snap.commit_err,
                                             &n->snap.commit_us);
    int rc = n->snap.result;
    if (rc < 0)
        return; /* next turn: the writer wakes the loop when it is done */
    if (rc == SNAP_COMMITTED) {
        /* The core drops its log up to index only once every batch that
         * holds those entries was advanced (raft_compact); they are
         * written, so this is at most a turn. */
        if (ready_finish_written(n, false) != 0)
            return;
        if (n->pw.popped < n->snap.pushed_at_start)
            return; /* next turn */
    }
    uint64_t commit_us = n->snap.commit_us;
    n->snap.committing = false;
    n->snap.running = false;
    if (rc == SNAP_STORE_FAILED) {
        node_fail(n, n->snap.commit_err);
        return;
    }
    if (rc == SNAP_DROPPED) {
        nlog(n, 2, "snapshot at index %" PRIu64 " dropped: a newer one is stored", index);
        return;
    }
    uint64_t t0 = metrics_now_ns();
    int crc = raft_compact(n->r, index, NULL, (size_t)n->snap.stored, NULL);
    uint64_t compact_us = (metrics_now_ns() - t0) / 1000;
    if (crc != RAFT_OK) {
        /* a newer snapshot from the leader is in the core: the loop
         * stores it (over this one) before applying anything after it */
        nlog(n, 2, "snapshot at index %" PRIu64 " stored, the core already past it: %s", index,
             raft_strerror(crc));
        return;
    }
    uint64_t t1 = now_ms();
    metrics_inc(&n->metrics.snapshots_taken, 1);
    metrics_inc(&n->metrics.snapshot_taken_bytes, n->snap.stored);
    metrics_observe(&n->metrics.snapshot_take, (t1 - n->snap.start_ms) * 1000000u);
    n->snap_state_bytes = n->snap.raw;
    nlog(n, 2,
         "snapshot taken at index %" PRIu64 " term %" PRIu64 ": %" PRIu64 " bytes, %" PRIu64
         " bytes stored, %" PRIu64 " ms in the background (%" PRIu64
         " us of it the disk writer's commit); the loop paused %" PRIu64 " us to fork, %" PRIu64
         " us to compact",
         index, n->snap.term, n->snap.raw, n->snap.stored, t1 - n->snap.start_ms, commit_us,
         n->snap.fork_us, compact_us);
    /* The compaction makes no ready of its own: refresh the status copy now,
     * or an idle node would report its old snapshot index. */
    log_changes(n);
}

/* On the loop, every turn: finishes a snapshot whose worker is done, or
 * starts one when the log passed this node's threshold. */
#define SNAP_LOG_MAX_FACTOR 8

void maybe_snapshot(node *n)
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
    /* Each snapshot rewrites the whole state, so with large files a fixed
     * threshold rewrites hundreds of MiB for every few written: a state
     * larger than the threshold lets the log grow up to three times its
     * size (so the snapshots of a growing state add up to about a third of
     * its final size; allowing once its size, they added up to twice, and
     * a 200 MiB file cost 343 MiB of snapshots on every node), but never
     * past SNAP_LOG_MAX_FACTOR times the threshold (the bound the log's
     * size, in memory and on disk, keeps). */
    if (3 * n->snap_state_bytes > thr)
        thr = 3 * n->snap_state_bytes < SNAP_LOG_MAX_FACTOR * thr ? 3 * n->snap_state_bytes
                                                                  : SNAP_LOG_MAX_FACTOR * thr;
    thr -= thr / 4 * (n->cfg.id % 4) / 3;
    if (n->snap.want && n->snap.want <= st_snapshot_index(n->st))
        n->snap.want = 0; /* a backup's wish (backup.c) is met */
    if (!n->snap.want && (!n->cfg.snapshot_threshold || raft_log_bytes(n->r) < thr))
        return;
    uint64_t now = now_ms();
    /* A backup is reading the stored snapshot: replacing it would make the
     * backup start again, so wait a little, within twice the threshold. */
    if (!n->snap.want && now < n->snap.pin_ms && raft_log_bytes(n->r) < 2 * thr)
        return;
    if (now < n->snap.retry_ms)
        return;
    uint64_t index = kv_applied_index(n->kv);
    raft_status st;
    raft_status_get(n->r, &st);
    if (index <= st.snapshot_index)
        return;
    raft_conf conf;
    if (raft_conf_at_index(n->r, index, &conf) != RAFT_OK)
        return;
    char err[512];
    st_snap_writer *w;
    pthread_mutex_lock(&n->st_mu);
    int brc = st_bgsnap_begin(n->st, index, n->last_applied_term, &w, err, sizeof err);
    pthread_mutex_unlock(&n->st_mu);
    if (brc != ST_OK) {
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
        snapshot_child(n, fds[1], parent); /* never returns */
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        st_bgsnap_abort(w);
        n->snap.retry_ms = now + SNAP_RETRY_MS;
        nlog(n, 1, "cannot start a snapshot: fork: %s", strerror(errno));
        return;
    }
    n->snap.child = pid;
    n->snap.fork_us =
        (uint64_t)((f1.tv_sec - f0.tv_sec) * 1000000 + (f1.tv_nsec - f0.tv_nsec) / 1000);
    n->snap.fd = fds[0];
    n->snap.w = w;
    n->snap.index = index;
    n->snap.term = n->last_applied_term;
    n->snap.start_ms = now;
    n->snap.pushed_at_start = n->pw.pushed;
    n->snap.conf = conf;
    n->snap.stored = 0;
    n->snap.committing = false;
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
