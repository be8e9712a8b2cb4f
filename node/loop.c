/*
 * loop.c — the node's loop thread.  It alone touches the Raft core, the
 * SQLite store, the key-value state machine and the sockets, and sleeps in
 * poll() on:
 *   - the peer socket (Raft messages from other nodes),
 *   - the client socket (requests from `hstore` clients, client_port.c),
 *   - an eventfd (requests handed in by local threads, submit.c),
 *   - a timerfd (Raft ticks).
 *
 * Each turn of the loop (dissertation §10.2 for the ordering):
 *   1. take in everything that is waiting: peer messages are stepped into the
 *      core, client and local requests become proposals or read requests —
 *      all of them, so whatever arrived during the last fsync goes into the
 *      next batch together (group commit);
 *   2. while the core has a ready batch (handle_ready): send the messages
 *      that may go at once (the leader's AppendEntries: followers write while
 *      the leader writes, §10.2.1), persist hard state/entries/snapshot in
 *      one transaction (one fsync), send the messages that promise durable
 *      state, install a received snapshot, apply committed entries to the
 *      state machine and answer their waiting clients, note confirmed read
 *      indexes, advance;
 *   3. answer reads whose read index has been applied (ReadIndex, §6.4: never
 *      from local state without the leader's confirmation);
 *   4. take a snapshot when the log passed the threshold (snapshot.c);
 *   5. retry requests that got lost in a leader change, expire the ones past
 *      their deadline (request.c); report open files (report.c).
 *
 * Limits are replicated state (kv.h): the first leader proposes them from
 * its flags (propose_limits), once; check_limits logs the values in force.
 */
#include "node/node_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- applying ------------------------------------------------------------ */

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
        if (!lease_hold_answer(n, q, e->index, reply, rlen))
            req_finish(n, q, NODE_OK, reply, rlen);
        return;
    }
    free(reply);
}

int node_apply_entry(node *n, const raft_entry *e)
{
    n->last_applied_term = e->term;
    if (e->type != RAFT_ENTRY_NORMAL) {
        if (e->type == RAFT_ENTRY_CONF) {
            raft_conf_change cc;
            if (raft_conf_change_decode(e->data, e->len, &cc) == 0)
                nlog(n, 2, "membership: %s node %" PRIu64 "%s%s committed at index %" PRIu64,
                     raft_conf_change_name(cc.type), cc.id, cc.addr[0] ? " " : "", cc.addr,
                     e->index);
        }
        pthread_rwlock_wrlock(&n->kv_rw);
        kv_apply_skip(n->kv, e->index);
        pthread_rwlock_unlock(&n->kv_rw);
        watch_note(n->watch, e, NULL, 0);
        return 0;
    }
    uint8_t *reply = NULL;
    size_t rlen = 0;
    pthread_rwlock_wrlock(&n->kv_rw);
    int rc = kv_apply(n->kv, e->index, e->data, e->len, &reply, &rlen);
    pthread_rwlock_unlock(&n->kv_rw);
    if (rc < 0)
        return -1;
    lease_changed(n);
    watch_note(n->watch, e, rc == 0 ? reply : NULL, rlen);
    if (rc == 0)
        answer_command(n, e, reply, rlen);
    return 0;
}

/* ---- peers, limits, status ----------------------------------------------- */

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

/* A message carrying at least this many bytes of entries or snapshot is
 * encoded straight into the transport's message (net_send_peer_msg): one
 * copy of a large entry per follower instead of two. */
#define SEND_DIRECT_MIN (64u << 10)

/* Sends m encoded in place when it is large; false if it was not (too
 * small, or it did not fit the estimate): then it goes the usual way. */
static bool send_direct(node *n, const raft_msg *m)
{
    size_t bytes = m->chunk_len;
    for (uint32_t i = 0; i < m->n_entries; i++)
        bytes += m->entries[i].len + 32; /* an entry's fields take 21 */
    if (bytes < SEND_DIRECT_MIN)
        return false;
    size_t cap = bytes + 2 * sizeof m->conf + 4096; /* the fixed fields and the conf */
    void *msg = net_peer_msg_alloc(cap);
    if (msg == NULL)
        return false;
    net_buf b = {.p = msg, .cap = cap, .fixed = true};
    if (net_encode_raft(m, &b) != NET_OK) {
        net_peer_msg_free(msg);
        return false;
    }
    net_send_peer_msg(n->tr, m->to, msg, b.len);
    return true;
}

static void send_msgs(node *n, const raft_msg *msgs, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        raft_msg m = msgs[i];
        if (m.type == RAFT_MSG_SNAPSHOT && m.chunk_len && !m.chunk && !snapshot_fill_chunk(n, &m))
            continue;
        if (send_direct(n, &m))
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
    kv_op o = {.type = KV_OP_SET_LIMITS,
               .flags = KV_LIMITS_IF_UNSET,
               .len = n->cfg.max_file_size,
               .off = n->cfg.max_store_bytes};
    uint8_t *ob, *cmd;
    size_t ol, cl;
    if (kv_op_encode(&o, &ob, &ol) != 0)
        return;
    if (kv_cmd_encode(0, 0, node_realtime_ns(), ob, ol, &cmd, &cl) == 0) {
        if (raft_propose(n->r, cmd, cl, NULL, NULL) == RAFT_OK)
            nlog(n, 2,
                 "proposed the initial limits: max-file-size %" PRIu64 ", max-store-bytes %" PRIu64,
                 n->cfg.max_file_size, n->cfg.max_store_bytes);
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
        nlog(n, 1,
             "this node's --max-file-size %" PRIu64 " / --max-store-bytes %" PRIu64
             " differ from the cluster's replicated limits; the replicated ones are used "
             "(change them with `hstore limits set`)",
             n->cfg.max_file_size, n->cfg.max_store_bytes);
}

/* After every ready batch: logs what changed (elections, term, role,
 * leader), keeps the transport's peers and the status copy up to date, and
 * makes every waiting request try again when the leader changed. */
void log_changes(node *n)
{
    raft_status st;
    raft_status_get(n->r, &st);
    if (st.election.seq != n->last_election_seq) {
        const raft_election_event *e = &st.election;
        if (e->reason == RAFT_ELECTION_TIMEOUT && e->leader)
            nlog(n, 2,
                 "election: %s in term %" PRIu64 ": no message from leader %" PRIu64 " for %" PRId64
                 " ms",
                 raft_election_reason_name(e->reason), e->term, e->leader,
                 e->idle_ticks * n->cfg.tick_ms);
        else if (e->reason == RAFT_ELECTION_TIMEOUT)
            nlog(n, 2, "election: %s in term %" PRIu64 ": no leader heard from since start",
                 raft_election_reason_name(e->reason), e->term);
        else if (e->reason == RAFT_ELECTION_TRANSFER)
            nlog(n, 2,
                 "election: %s in term %" PRIu64 ": leader %" PRIu64 " hands over to this node",
                 raft_election_reason_name(e->reason), e->term, e->leader);
        else if (e->reason == RAFT_ELECTION_STEP_DOWN)
            nlog(n, 2,
                 "%s in term %" PRIu64 ": heard from %u of the voters (this node included) "
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
    if (st.leader != n->last_leader && st.leader)
        metrics_inc(&n->metrics.leader_changes, 1);
    n->last_term = st.term;
    n->last_role = st.role;
    n->last_leader = st.leader;
    sync_peers(n, member_peer_conf(n, &st.conf));
    pthread_mutex_lock(&n->mu);
    n->status = st;
    net_transport_get_stats(n->tr, &n->tstats);
    pthread_mutex_unlock(&n->mu);
    if (changed) {
        /* A new leader: requests waiting on the old one are retried now
         * (not an applied command whose answer waits, lease.c). */
        for (req *q = n->pending.next; q != &n->pending; q = q->next)
            if (!(q->read && q->have_index) && !q->ack_wait)
                q->tried = false;
    }
}

/* ---- ready batches ------------------------------------------------------- */

/* Applies rd's committed entries and answers their clients at once (the
 * answers are written now, not at the end of the loop turn). */
static int apply_committed(node *n, const raft_ready *rd)
{
    if (lease_apply(n, rd->committed, rd->n_committed) != 0) {
        node_fail(n, "out of memory applying a command");
        return -1;
    }
    lease_applied(n); /* (also after entries kept by a hold were applied) */
    if (rd->n_committed) {
        net_transport_flush(n->tr);
        check_limits(n);
    }
    return 0;
}

/* Releases the read states of a batch to their waiting readers (served
 * once the state machine has applied their index: serve_reads). */
static void take_read_states(node *n, const raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_read_states; i++) {
        for (req *q = n->pending.next; q != &n->pending; q = q->next)
            if (q->read && q->read_ctx == rd->read_states[i].ctx) {
                q->have_index = true;
                q->read_index = rd->read_states[i].index;
            }
    }
}

int ready_finish_written(node *n, bool wait)
{
    char err[512];
    bool any = false;
    for (;;) {
        raft_ready rd;
        int rc = persist_pop(n, &rd, wait, err, sizeof err);
        if (rc < 0) {
            node_fail(n, err);
            return -1;
        }
        if (rc == 0)
            break;
        send_msgs(n, rd.msgs_after_persist, rd.n_msgs_after_persist);
        raft_advance(n->r, &rd);
        any = true;
    }
    if (any)
        log_changes(n);
    return 0;
}

/* A batch with a snapshot from the leader: once every batch before it is
 * written, it is written here, on the loop (rare: a follower that fell
 * behind the leader's log), then installed before anything after it is
 * applied. */
static int ready_with_snapshot(node *n, raft_ready *rd)
{
    char err[512];
    send_msgs(n, rd->msgs, rd->n_msgs);
    if (ready_finish_written(n, true) != 0)
        return -1;
    if (lease_flush(n) != 0) { /* entries kept by a hold go before it */
        node_fail(n, "out of memory applying a command");
        return -1;
    }
    pthread_mutex_lock(&n->st_mu);
    int rc = st_save_ready(n->st, rd, err, sizeof err);
    pthread_mutex_unlock(&n->st_mu);
    if (rc != ST_OK) {
        node_fail(n, err);
        return -1;
    }
    send_msgs(n, rd->msgs_after_persist, rd->n_msgs_after_persist);
    /* the leader sent its stored form, now persisted as is */
    uint64_t raw = 0;
    if (snapshot_install(n, rd->snapshot->data, rd->snapshot->len, rd->snapshot->index,
                         rd->snapshot->term, &raw, err, sizeof err) != ST_OK) {
        node_fail(n, err);
        return -1;
    }
    nlog(n, 2,
         "snapshot installed from leader: index %" PRIu64 " term %" PRIu64
         ", %zu bytes received, %" PRIu64 " bytes of state",
         rd->snapshot->index, rd->snapshot->term, rd->snapshot->len, raw);
    if (apply_committed(n, rd) != 0)
        return -1;
    take_read_states(n, rd);
    raft_advance(n->r, rd);
    log_changes(n);
    return 0;
}

/* Works off every ready batch of the core (step 2 of the file comment).
 * A batch that must be written goes to the disk writer (persist.c) after
 * its messages are sent and its committed entries applied: they are
 * committed, so durable on a majority, and the leader counts its own copy
 * only once written (raft.h), so a leader's command commits on the
 * followers' writes without waiting for its own.  What must wait for the
 * write (votes, acks) goes out when the writer is done
 * (ready_finish_written).  A batch with nothing to write goes through the
 * writer too while earlier ones are being written, so that its promises
 * never overtake theirs.
 * -1: the node failed (node_fail) and the loop must end. */
static int handle_ready(node *n)
{
    if (ready_finish_written(n, false) != 0)
        return -1;
    while (raft_has_ready(n->r)) {
        raft_ready rd;
        raft_ready_get(n->r, &rd);
        ntrace(n, "ready: %zu msgs, %zu entries, %zu committed, %zu msgs after persist", rd.n_msgs,
               rd.n_entries, rd.n_committed, rd.n_msgs_after_persist);
        /* The commit index alone is not worth an fsync (raft.h: it may be
         * persisted lazily; a node that restarts with an older one learns
         * the newer one from the leader).  It rides along with a batch that
         * must be durable anyway (entries, a snapshot, a new term or vote),
         * and only once it is COMMIT_LAG behind: rewriting the row with
         * every batch would add a database page (4 KiB written and
         * checksummed into the WAL) to batches of a few hundred bytes. */
        if (rd.hs_changed)
            n->hs_now = rd.hs;
        bool vote_changed =
            n->hs_now.term != n->hs_saved.term || n->hs_now.vote != n->hs_saved.vote;
        bool must_sync = rd.n_entries || rd.snapshot || vote_changed;
        rd.hs_changed = must_sync && (vote_changed || rd.snapshot ||
                                      n->hs_now.commit >= n->hs_saved.commit + COMMIT_LAG);
        rd.hs = rd.hs_changed ? n->hs_now : n->hs_saved;
        if (rd.hs_changed)
            n->hs_saved = n->hs_now; /* written in order, before anything later */
        if (rd.snapshot) {
            if (ready_with_snapshot(n, &rd) != 0)
                return -1;
            continue;
        }
        if (!must_sync && persist_outstanding(n) == 0) {
            /* Nothing to persist: answer the clients first, then send (a
             * nanomsg send costs a thread hand-off, tens of microseconds,
             * that the answers need not wait for). */
            if (apply_committed(n, &rd) != 0)
                return -1;
            send_msgs(n, rd.msgs, rd.n_msgs);
            send_msgs(n, rd.msgs_after_persist, rd.n_msgs_after_persist);
            take_read_states(n, &rd);
            raft_advance(n->r, &rd);
            log_changes(n);
            continue;
        }
        /* The leader's AppendEntries go out before its own write, so
         * followers write in parallel with it (dissertation §10.2.1). */
        send_msgs(n, rd.msgs, rd.n_msgs);
        ntrace(n, "persist handed to the writer");
        persist_push(n, &rd);
        if (apply_committed(n, &rd) != 0)
            return -1;
        take_read_states(n, &rd);
        log_changes(n);
    }
    return 0;
}

/* ---- input --------------------------------------------------------------- */

/* Steps the waiting peer messages into the core (at most 4096 or
 * NODE_TURN_BYTES per call: a backlog of large AppendEntries is taken in
 * steps, with ticks, heartbeats and the ready work handled between them),
 * dropping malformed ones and ones whose sender is not the authenticated
 * peer.  Sets n->peer_more when it stopped with messages left. */
static void recv_peers(node *n)
{
    size_t bytes = 0;
    n->peer_more = false;
    for (int budget = 0; budget < 4096; budget++) {
        void *buf;
        size_t len;
        uint64_t from;
        if (bytes >= NODE_TURN_BYTES) {
            n->peer_more = true;
            return;
        }
        if (net_recv_peer(n->tr, &buf, &len, &from) != NET_OK)
            return;
        bytes += len;
        raft_msg m;
        int rc = net_decode_raft(buf, len, &m);
        if (rc == NET_OK && m.from != from) {
            /* Authenticated as one node, claiming to be another. */
            net_raft_msg_free(&m);
            n->msgs_forged++;
            if ((n->msgs_forged & (n->msgs_forged - 1)) == 0)
                nlog(n, 1,
                     "dropped a peer message from node %" PRIu64 " claiming to come from %" PRIu64
                     "; %" PRIu64 " so far",
                     from, m.from, n->msgs_forged);
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

/* ---- the loop ------------------------------------------------------------ */

/* A loop turn that held the loop for half an election timeout or more is
 * logged with where the time went (at most once a second): a leader's
 * held loop sends no heartbeats, a follower's answers nothing. */
static void report_stall(node *n, const uint64_t ph[6])
{
    uint64_t total = ph[5] - ph[0];
    uint64_t half = (uint64_t)n->cfg.tick_ms * (uint64_t)n->cfg.election_ticks / 2;
    if (total < half || ph[5] < n->stall_logged_ms + 1000)
        return;
    n->stall_logged_ms = ph[5];
    nlog(n, 1,
         "loop held %" PRIu64 " ms: input %" PRIu64 " ms, ticks and requests %" PRIu64
         " ms, ready %" PRIu64 " ms, reads and snapshot %" PRIu64 " ms, ready %" PRIu64 " ms",
         total, ph[1] - ph[0], ph[2] - ph[1], ph[3] - ph[2], ph[4] - ph[3], ph[5] - ph[4]);
}

/* The loop thread (node_start starts it; node_stop ends it). */
void *loop_main(void *arg)
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
        fds[nf++] = (struct pollfd){.fd = n->pw.efd, .events = POLLIN};
        nf += net_transport_pollfds(n->tr, fds + nf, 5);
        int timeout = n->deferred || n->peer_more ? 0 : -1;
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
        uint64_t ph[6] = {now, 0, 0, 0, 0, 0}; /* phase ends, for stall reports */
        lease_turn(n);
        net_transport_tick(n->tr, now);
        n->turn_bytes = 0;
        if (n->deferred)
            propose_deferred(n, now);
        bool ticked = false;
        bool peers_read = false;
        for (int i = 0; i < nf && pr > 0; i++) {
            if (!(fds[i].revents & POLLIN))
                continue;
            if (fds[i].fd == n->efd) {
                uint64_t v;
                if (read(n->efd, &v, sizeof v) < 0) { /* EAGAIN: nothing */
                }
                drain_local(n);
            } else if (fds[i].fd == n->tfd) {
                ticked = true;
            } else if (fds[i].fd == n->pw.efd) {
                uint64_t v; /* written batches: handle_ready finishes them */
                if (read(n->pw.efd, &v, sizeof v) < 0) { /* EAGAIN: nothing */
                }
            } else if (net_transport_is_peer_fd(n->tr, fds[i].fd) && !peers_read) {
                recv_peers(n);
                peers_read = true;
            } else if (net_transport_is_client_fd(n->tr, fds[i].fd)) {
                recv_clients(n);
            }
        }
        if (n->peer_more && !peers_read)
            recv_peers(n); /* left over by the last turn's budget */
        ph[1] = now_ms();
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
        member_turn(n, now);
        issue_reads(n);
        ph[2] = now_ms();
        if (handle_ready(n) != 0)
            break;
        ph[3] = now_ms();
        if (lease_release(n, now_ms()) != 0) {
            node_fail(n, "out of memory applying a command");
            break;
        }
        serve_reads(n);
        maybe_snapshot(n);
        ph[4] = now_ms();
        if (handle_ready(n) != 0)
            break;
        ph[5] = now_ms();
        report_stall(n, ph);
        atomic_store(&n->applied_pub, kv_applied_index(n->kv));
        if (lease_on(n)) {
            raft_lease_info li;
            raft_lease_get(n->r, &li);
            atomic_store(&n->lease_until_pub, li.lease_until);
            atomic_store(&n->visible_pub, li.visible);
        }
        report_open_files(n, now_ms());
    }
    /* Fail everything still waiting. */
    member_stop(n);
    drain_local(n);
    while (n->pending.next != &n->pending)
        req_finish(n, n->pending.next, NODE_ESTOPPED, NULL, 0);
    return NULL;
}
