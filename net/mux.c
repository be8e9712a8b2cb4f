/*
 * mux.c — many client sessions over one connection per node (see mux.h).
 *
 * A session is idle, in flight (its request written or queued on node
 * `node`, an answer due by `attempt_end`), or parked until `retry_at` (after
 * a refusal, or when every node failed in a row).  Requests carry
 * req_id = attempt number << 16 | session, so an answer finds its session at
 * once and an answer to an earlier attempt is recognised and ignored.
 *
 * Where an attempt goes and what an answer means are retry.h's rules, the
 * same as the blocking client's: the mux's current leader guess `cur`, moved
 * by answers and, on silence or a lost connection, to the next node in the
 * spec.  A connection that fails is closed, and every session in flight on
 * it is sent again elsewhere at once (same client id and seq: the state
 * machine applies each command once).  Connecting is the one blocking step:
 * up to NET_RETRY_FIRST_MS per node, the first time and after a failure.
 * The connection itself (connect, handshake, sealing a request, opening the
 * reply frames) is client_conn.h's, shared with client.c; what is this
 * file's is the poll loop over all sessions and their timers.
 */
#include "net/mux.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/auth.h"
#include "net/client.h"
#include "net/client_conn.h"
#include "net/net_util.h"
#include "net/retry.h"
#include "net/wire.h"

enum { S_IDLE, S_FLIGHT, S_PARKED, S_DONE };

typedef struct mnode {
    net_cconn c;  /* address and connection (client_conn.h) */
    bool refused; /* the last handshake was refused: not authorized */
} mnode;

typedef struct msess {
    uint64_t client_id, next_seq, seq; /* client_id: the session, 0 = none yet */
    bool registering;                  /* the attempt in flight registers the session */
    uint64_t nonce;
    uint64_t req_id, attempts;
    int state, node, silent;
    bool read;
    uint8_t *op;
    size_t op_len, op_cap;
    uint64_t deadline, attempt_end, retry_at;
    int rc;
    uint8_t *reply;
    size_t reply_len;
} msess;

struct net_mux {
    mnode nodes[RAFT_MAX_NODES];
    int n, cur;
    int timeout_ms;
    msess *s;
    int n_sess, busy;
    int *done; /* finished, not yet reported */
    int n_done;
    net_buf enc;
    net_auth auth;
};

net_mux *net_mux_new(const char *spec, int timeout_ms, int n_sessions, char *err, size_t errlen)
{
    if (n_sessions < 1 || n_sessions > NET_MUX_MAX_SESSIONS) {
        net_seterr(err, errlen, "sessions must be 1 to %d", NET_MUX_MAX_SESSIONS);
        return NULL;
    }
    uint64_t ids[RAFT_MAX_NODES];
    char hosts[RAFT_MAX_NODES][NET_ADDR_MAX];
    int ports[RAFT_MAX_NODES];
    int n = net_parse_spec(spec, ids, hosts, ports, RAFT_MAX_NODES, err, errlen);
    if (n < 0)
        return NULL;
    net_mux *m = calloc(1, sizeof(*m));
    if (m) {
        m->s = calloc((size_t)n_sessions, sizeof(*m->s));
        m->done = calloc((size_t)n_sessions, sizeof(*m->done));
    }
    if (!m || !m->s || !m->done) {
        if (m) {
            free(m->s);
            free(m->done);
        }
        free(m);
        net_seterr(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        net_cconn_init(&m->nodes[i].c, ids[i], hosts[i], ports[i]);
    m->n = n;
    m->n_sess = n_sessions;
    m->timeout_ms = timeout_ms > 0 ? timeout_ms : NET_RETRY_TIMEOUT_MS;
    net_auth_get_default(&m->auth);
    for (int i = 0; i < n_sessions; i++)
        m->s[i].next_seq = 1; /* sessions register with their first command */
    return m;
}

void net_mux_free(net_mux *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++)
        net_cconn_close(&m->nodes[i].c);
    for (int i = 0; i < m->n_sess; i++) {
        free(m->s[i].op);
        free(m->s[i].reply);
    }
    free(m->s);
    free(m->done);
    net_buf_free(&m->enc);
    free(m);
}

static void finish(net_mux *m, int si, int rc)
{
    msess *s = &m->s[si];
    s->state = S_DONE;
    s->rc = rc;
    m->busy--;
    m->done[m->n_done++] = si;
}

static void park(net_mux *m, int si, int ms)
{
    msess *s = &m->s[si];
    s->state = S_PARKED;
    s->retry_at = net_now_ms() + (uint64_t)ms;
    (void)m;
}

static void next_node(net_mux *m, int si);

/* Sends session si's request to node s->node (connecting if needed). */
static void attempt(net_mux *m, int si)
{
    msess *s = &m->s[si];
    uint64_t now = net_now_ms();
    if (now >= s->deadline) {
        finish(m, si, NET_EUNAVAIL);
        return;
    }
    if (s->silent >= m->n) {
        /* Every node failed in a row: pause rather than spin. */
        s->silent = 0;
        park(m, si, NET_RETRY_BACKOFF_MS);
        return;
    }
    mnode *nd = &m->nodes[s->node];
    if (nd->c.fd < 0) {
        uint64_t end = now + (uint64_t)net_retry_cap_ms(now, s->deadline, NET_RETRY_FIRST_MS);
        int hrc = net_cconn_open(&nd->c, &m->auth, end);
        if (hrc != NET_EIO) {
            /* Connected: whether the node took the keys. */
            nd->refused = hrc == NET_EAUTH;
            bool all = true;
            for (int i = 0; i < m->n; i++)
                all = all && m->nodes[i].refused;
            if (all) {
                finish(m, si, NET_EAUTH);
                return;
            }
        }
        if (nd->c.fd < 0) {
            next_node(m, si);
            return;
        }
    }
    s->attempts++;
    s->req_id = s->attempts << 16 | (uint64_t)si;
    net_client_req q = {.client_id = s->client_id,
                        .seq = s->seq,
                        .req_id = s->req_id,
                        .flags = s->read ? NET_REQ_READ : 0,
                        .op = s->op,
                        .op_len = (uint32_t)s->op_len};
    if (s->registering)
        q = (net_client_req){.client_id = s->nonce, .req_id = s->req_id, .flags = NET_REQ_REGISTER};
    if (net_encode_client_req(&q, &m->enc) != NET_OK ||
        net_cconn_queue(&nd->c, &m->auth, &m->enc) != NET_OK) {
        finish(m, si, NET_ENOMEM);
        return;
    }
    s->state = S_FLIGHT;
    s->attempt_end = now + (uint64_t)net_retry_cap_ms(now, s->deadline, NET_RETRY_ATTEMPT_MS);
}

/* Moves session si to the next node after silence or a lost connection. */
static void next_node(net_mux *m, int si)
{
    msess *s = &m->s[si];
    int next = net_retry_next(s->node, m->n);
    if (m->cur == s->node)
        m->cur = next;
    s->node = next;
    s->silent++;
    attempt(m, si);
}

int net_mux_start(net_mux *m, int si, bool read, const void *op, size_t len)
{
    if (!m || si < 0 || si >= m->n_sess || (!op && len) || len > NET_MAX_PAYLOAD - 64)
        return NET_EINVAL;
    msess *s = &m->s[si];
    if (s->state == S_FLIGHT || s->state == S_PARKED)
        return NET_EINVAL;
    if (len > s->op_cap) {
        uint8_t *p = realloc(s->op, len);
        if (!p)
            return NET_ENOMEM;
        s->op = p;
        s->op_cap = len;
    }
    if (len)
        memcpy(s->op, op, len);
    s->op_len = len;
    free(s->reply);
    s->reply = NULL;
    s->reply_len = 0;
    s->read = read;
    /* A sequence number is spent once sent, whatever comes of it. */
    s->seq = read ? 0 : s->next_seq++;
    s->deadline = net_now_ms() + (uint64_t)m->timeout_ms;
    s->node = m->cur;
    s->silent = 0;
    /* A command on a session that has none registers one first (within the
     * same deadline). */
    s->registering = !read && s->client_id == 0;
    if (s->registering)
        s->nonce = net_random_id();
    m->busy++;
    attempt(m, si);
    return NET_OK;
}

static int find_node(const net_mux *m, uint64_t id)
{
    for (int i = 0; i < m->n; i++)
        if (m->nodes[i].c.id == id)
            return i;
    return -1;
}

static void on_reply(net_mux *m, int ni, const uint8_t *f, size_t flen)
{
    net_client_resp r;
    if (net_decode_client_resp(f, flen, &r) != NET_OK)
        return;
    int si = (int)(r.req_id & 0xffff);
    if (si >= m->n_sess)
        return;
    msess *s = &m->s[si];
    if (s->state != S_FLIGHT || s->req_id != r.req_id || s->node != ni)
        return; /* an answer to an earlier attempt */
    s->silent = 0;
    net_retry_step st = net_retry_answer(r.status, ni, r.leader_id ? find_node(m, r.leader_id) : -1,
                                         m->n, s->registering);
    if (st.node >= 0)
        m->cur = st.node;
    if (st.act != NET_RETRY_DONE) {
        s->node = st.node;
        if (st.act == NET_RETRY_NOW)
            attempt(m, si);
        else
            park(m, si, NET_RETRY_BACKOFF_MS);
        return;
    }
    if (st.rc == NET_ESESSION)
        s->client_id = 0; /* the next command registers a new session */
    if (st.rc != NET_OK) {
        finish(m, si, st.rc);
        return;
    }
    if (s->registering) {
        uint64_t id = net_retry_session_id(r.reply, r.reply_len);
        if (!id) {
            finish(m, si, NET_EUNAVAIL);
            return;
        }
        s->client_id = id;
        s->registering = false;
        attempt(m, si); /* now the command itself */
        return;
    }
    if (r.reply_len) {
        s->reply = malloc(r.reply_len);
        if (!s->reply) {
            finish(m, si, NET_ENOMEM);
            return;
        }
        memcpy(s->reply, r.reply, r.reply_len);
        s->reply_len = r.reply_len;
    }
    finish(m, si, NET_OK);
}

/* A connection failed: close it and send its sessions elsewhere. */
static void node_failed(net_mux *m, int ni)
{
    net_cconn_close(&m->nodes[ni].c);
    for (int i = 0; i < m->n_sess; i++)
        if (m->s[i].state == S_FLIGHT && m->s[i].node == ni)
            next_node(m, i);
}

static int take_done(net_mux *m, int *done, int max)
{
    int k = m->n_done < max ? m->n_done : max;
    memcpy(done, m->done, (size_t)k * sizeof(int));
    memmove(m->done, m->done + k, (size_t)(m->n_done - k) * sizeof(int));
    m->n_done -= k;
    return k;
}

int net_mux_wait(net_mux *m, int wait_ms, int *done, int max)
{
    if (!m || !done || max <= 0)
        return -1;
    uint64_t end = net_now_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
    for (;;) {
        if (m->n_done)
            return take_done(m, done, max);
        /* Timers: silent attempts move on, parked sessions resume. */
        uint64_t now = net_now_ms(), next = end;
        for (int i = 0; i < m->n_sess; i++) {
            msess *s = &m->s[i];
            if (s->state == S_FLIGHT && now >= s->attempt_end)
                next_node(m, i);
            else if (s->state == S_PARKED && now >= s->retry_at)
                attempt(m, i);
            if (s->state == S_FLIGHT && s->attempt_end < next)
                next = s->attempt_end;
            if (s->state == S_PARKED && s->retry_at < next)
                next = s->retry_at;
        }
        struct pollfd pf[RAFT_MAX_NODES];
        int idx[RAFT_MAX_NODES], np = 0;
        for (int i = 0; i < m->n; i++) {
            net_cconn *nc = &m->nodes[i].c;
            if (nc->fd < 0)
                continue;
            if (net_wbuf_pending(&nc->wb)) {
                int rc = net_wbuf_flush(&nc->wb, nc->fd);
                if (rc == NET_EIO) {
                    node_failed(m, i);
                    continue;
                }
            }
            pf[np] = (struct pollfd){
                .fd = nc->fd,
                .events = (short)(POLLIN | (net_wbuf_pending(&nc->wb) ? POLLOUT : 0))};
            idx[np++] = i;
        }
        if (m->n_done)
            return take_done(m, done, max);
        now = net_now_ms();
        int to = next > now ? (int)(next - now) : 0;
        if (np == 0 && m->busy == 0)
            return 0;
        int pr = poll(pf, (nfds_t)np, to);
        if (pr < 0 && errno != EINTR)
            return -1;
        for (int k = 0; k < np && pr > 0; k++) {
            if (!pf[k].revents)
                continue;
            int ni = idx[k];
            net_cconn *nc = &m->nodes[ni].c;
            if (pf[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                int rc = net_cconn_fill(nc, 4u << 20);
                const uint8_t *f;
                size_t plen;
                int frc;
                /* A refusal, or a frame altered in transit, drops the
                 * connection. */
                while ((frc = net_cconn_next(nc, &m->auth, &f, &plen)) == NET_OK)
                    on_reply(m, ni, f, plen);
                if (frc != NET_EAGAIN || (rc != NET_OK && rc != NET_EAGAIN))
                    node_failed(m, ni);
            }
        }
        if (m->n_done)
            return take_done(m, done, max);
        if (net_now_ms() >= end)
            return 0;
    }
}

int net_mux_result(const net_mux *m, int si, const uint8_t **reply, size_t *len)
{
    if (!m || si < 0 || si >= m->n_sess || m->s[si].state != S_DONE)
        return NET_EINVAL;
    if (reply)
        *reply = m->s[si].reply;
    if (len)
        *len = m->s[si].reply_len;
    return m->s[si].rc;
}

int net_mux_busy(const net_mux *m)
{
    return m ? m->busy : 0;
}
