/*
 * client.c — the blocking client: one call at a time, leader discovery,
 * retries and exactly-once ids for programs talking to an hstore cluster
 * (see client.h).
 *
 * One call is a loop of attempts until the overall deadline, following the
 * rules of retry.h (shared with mux.c).  Each attempt sends the request,
 * with a fresh req_id but the call's (client_id, seq), to one node over
 * that node's TCP connection and waits up to min(attempt timeout, time
 * left).  An attempt that got no answer closes that node's connection, so
 * nothing of it (a half-sent request, a late reply) is left to confuse the
 * next call.  A node that refuses connections fails fast.  Leader hints may
 * name a node the spec did not list: it is learnt from the hint's address.
 * The connection itself (connect, handshake, sealing a request, opening the
 * reply frames) is client_conn.h's, shared with mux.c; what is this file's
 * is the blocking wait for one exchange and the attempt loop around it.
 */
#include "net/client.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <poll.h>

#include "net/auth.h"
#include "net/client_conn.h"
#include "net/net_util.h"
#include "net/retry.h"

/* Room for the spec's nodes plus leaders learnt from hints (membership
 * changes may name nodes the spec did not). */
#define CLIENT_MAX_NODES (2 * RAFT_MAX_NODES)
/* A session unused this long is replaced by a fresh one before the next
 * command: the cluster may have expired it meanwhile, and a command sent on
 * an expired session fails (its outcome unknown to the caller). */
#define SESSION_IDLE_MS (10 * 60 * 1000)

typedef struct cnode {
    net_cconn c; /* address and connection (client_conn.h) */
    char addr[NET_ADDR_MAX + 8];
    bool answered; /* has answered this client at least once */
} cnode;

struct net_client {
    cnode nodes[CLIENT_MAX_NODES];
    int n, n_spec;
    int timeout_ms, attempt_ms;
    uint64_t client_id, next_seq, next_req; /* client_id: the session, 0 = none yet */
    uint64_t last_use_ms;                   /* last command on the session */
    uint64_t leader_hint;
    int cur; /* index of the node believed to lead */
    net_buf buf;
    net_auth auth;
    uint64_t last_status_auth, last_status_cut;
};

/* ---- spec parsing ---- */

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

int net_parse_spec(const char *spec, uint64_t *ids, char (*hosts)[NET_ADDR_MAX], int *ports,
                   int max, char *err, size_t errlen)
{
    if (!spec || !*spec) {
        net_seterr(err, errlen, "empty cluster spec (expected ID=HOST:PORT,...)");
        return -1;
    }
    int n = 0;
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        /* trim spaces */
        while (len && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        const char *eq = memchr(p, '=', len);
        const char *colon = NULL;
        for (size_t i = len; i > 0; i--)
            if (p[i - 1] == ':') {
                colon = p + i - 1;
                break;
            }
        uint64_t id = 0, port = 0;
        if (!eq || !colon || colon < eq || !parse_u64(p, (size_t)(eq - p), &id) || id == 0 ||
            !parse_u64(colon + 1, len - (size_t)(colon + 1 - p), &port) || port == 0 ||
            port > 65534 || colon == eq + 1 || (size_t)(colon - eq - 1) > NET_SPEC_HOST_MAX) {
            net_seterr(err, errlen,
                       "bad node '%.*s' in cluster spec (expected ID=HOST:PORT, "
                       "ID > 0, PORT < 65535, HOST at most %d bytes)",
                       (int)len, p, NET_SPEC_HOST_MAX);
            return -1;
        }
        if (n >= max) {
            net_seterr(err, errlen, "too many nodes in cluster spec (at most %d)", max);
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (ids[i] == id) {
                net_seterr(err, errlen, "node id %llu appears twice in cluster spec",
                           (unsigned long long)id);
                return -1;
            }
        ids[n] = id;
        size_t hl = (size_t)(colon - eq - 1);
        memcpy(hosts[n], eq + 1, hl);
        hosts[n][hl] = '\0';
        ports[n] = (int)port;
        n++;
        if (!end)
            break;
        p = end + 1;
    }
    return n;
}

/* ---- construction ---- */

static void set_node(cnode *nd, uint64_t id, const char *host, int port)
{
    net_cconn_init(&nd->c, id, host, port);
    snprintf(nd->addr, sizeof(nd->addr), "%s:%d", host, port);
}

net_client *net_client_new(const char *cluster_spec, int timeout_ms, char *err, size_t errlen)
{
    uint64_t ids[CLIENT_MAX_NODES];
    char hosts[CLIENT_MAX_NODES][NET_ADDR_MAX];
    int ports[CLIENT_MAX_NODES];
    int n = net_parse_spec(cluster_spec, ids, hosts, ports, RAFT_MAX_NODES, err, errlen);
    if (n < 0)
        return NULL;
    net_client *c = calloc(1, sizeof(*c));
    if (!c) {
        net_seterr(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        set_node(&c->nodes[i], ids[i], hosts[i], ports[i]);
    c->n = c->n_spec = n;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : NET_RETRY_TIMEOUT_MS;
    c->attempt_ms = NET_RETRY_ATTEMPT_MS;
    c->client_id = 0; /* registered with the first command */
    c->next_seq = 1;
    c->next_req = 1;
    net_auth_get_default(&c->auth);
    return c;
}

void net_client_free(net_client *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        net_cconn_close(&c->nodes[i].c);
    net_buf_free(&c->buf);
    free(c);
}

void net_client_set_timeout(net_client *c, int timeout_ms)
{
    if (c)
        c->timeout_ms = timeout_ms > 0 ? timeout_ms : NET_RETRY_TIMEOUT_MS;
}

void net_client_set_auth(net_client *c, const net_auth *a)
{
    if (!c || !a)
        return;
    c->auth = *a;
    for (int i = 0; i < c->n; i++)
        net_cconn_close(&c->nodes[i].c);
}

/* One request/response exchange with node i: the request encoded in c->buf
 * (without its trailer), sealed and sent on the node's connection.  On
 * NET_OK out holds the reply of the expected type with the expected req_id,
 * decoded by `check`; what it points to lives in the node's read buffer,
 * valid until the next exchange. */
typedef int (*check_fn)(const void *buf, size_t len, uint64_t req_id, void *out);

static int exchange(net_client *c, int i, uint64_t req_id, int wait_ms, check_fn check, void *out)
{
    net_cconn *nc = &c->nodes[i].c;
    uint64_t end = net_now_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : 1);
    for (int round = 0;; round++) {
        /* A connection kept from an earlier call may have been closed by the
         * node meanwhile (its idle timeout): then one fresh try. */
        bool reused = nc->fd >= 0 && round == 0;
        int rc = net_cconn_open(nc, &c->auth, end);
        if (rc != NET_OK)
            return rc == NET_EIO ? NET_EUNAVAIL : rc;
        if (net_cconn_queue(nc, &c->auth, &c->buf) != NET_OK) {
            net_cconn_close(nc);
            return NET_ENOMEM;
        }
        bool sent = net_cconn_flush_by(nc, end) == NET_OK;
        bool eof = false, got_any = false;
        while (sent) {
            const uint8_t *f;
            size_t plen;
            int frc;
            while ((frc = net_cconn_next(nc, &c->auth, &f, &plen)) == NET_OK) {
                got_any = true;
                /* A reply meant for an earlier attempt is skipped. */
                if (check(f, plen, req_id, out) == NET_OK)
                    return NET_OK;
            }
            if (frc == NET_EAUTH || frc == NET_EBUSY) {
                net_cconn_close(nc);
                return frc;
            }
            /* The stream ended (after the frames read with it), is not hstore
             * frames (or was altered in transit), or the attempt's time is up. */
            if (eof || frc != NET_EAGAIN || net_wait_fd(nc->fd, POLLIN, end) <= 0)
                break;
            rc = net_cconn_fill(nc, 1u << 20);
            eof = rc != NET_OK && rc != NET_EAGAIN;
        }
        net_cconn_close(nc);
        if (reused && !got_any && (eof || !sent) && net_now_ms() < end)
            continue;
        return NET_EUNAVAIL;
    }
}

static int check_client_resp(const void *buf, size_t len, uint64_t req_id, void *out)
{
    net_client_resp *r = out;
    int rc = net_decode_client_resp(buf, len, r);
    if (rc != NET_OK)
        return rc;
    return r->req_id == req_id ? NET_OK : NET_ETYPE;
}

static int check_status_resp(const void *buf, size_t len, uint64_t req_id, void *out)
{
    net_status_resp *r = out;
    int rc = net_decode_status_resp(buf, len, r);
    if (rc != NET_OK)
        return rc;
    return r->req_id == req_id ? NET_OK : NET_ETYPE;
}

static int check_snap_resp(const void *buf, size_t len, uint64_t req_id, void *out)
{
    net_snap_resp *r = out;
    int rc = net_decode_snap_resp(buf, len, r);
    if (rc != NET_OK)
        return rc;
    return r->req_id == req_id ? NET_OK : NET_ETYPE;
}

static int check_member_resp(const void *buf, size_t len, uint64_t req_id, void *out)
{
    net_member_resp *r = out;
    int rc = net_decode_member_resp(buf, len, r);
    if (rc != NET_OK)
        return rc;
    return r->req_id == req_id ? NET_OK : NET_ETYPE;
}

static int find_node(const net_client *c, uint64_t id)
{
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].c.id == id)
            return i;
    return -1;
}

/* Follows a leader hint; learns the node if the spec did not list it (its
 * address is the leader's client address host:port+1). */
static int hint_index(net_client *c, const net_client_resp *r)
{
    if (r->leader_id == 0)
        return -1;
    c->leader_hint = r->leader_id;
    int i = find_node(c, r->leader_id);
    if (i >= 0 || !r->leader_addr[0] || c->n >= CLIENT_MAX_NODES)
        return i;
    const char *colon = strrchr(r->leader_addr, ':');
    uint64_t port;
    if (!colon || colon == r->leader_addr || !parse_u64(colon + 1, strlen(colon + 1), &port) ||
        port < 2 || port > 65535)
        return -1;
    char host[NET_ADDR_MAX];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - r->leader_addr), r->leader_addr);
    set_node(&c->nodes[c->n], r->leader_id, host, (int)port - 1);
    return c->n++;
}

static void sleep_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One call: attempts at node after node until an answer ends it or the
 * deadline passes (the rules are retry.h's). */
static int do_call(net_client *c, uint8_t flags, uint64_t client_id, uint64_t seq, const void *op,
                   size_t len, uint64_t deadline, void **reply, size_t *reply_len)
{
    if (!c || (!op && len) || len > NET_MAX_PAYLOAD - 64 || !reply || !reply_len)
        return NET_EINVAL;
    *reply = NULL;
    *reply_len = 0;
    bool read = flags & NET_REQ_READ;
    int i = c->cur, silent = 0, refused = 0;
    for (;;) {
        uint64_t now = net_now_ms();
        if (now >= deadline)
            return NET_EUNAVAIL;
        if (silent >= c->n) {
            /* Every node failed in a row (refused, reset, silent): pause
             * rather than spin through refusals until the deadline. */
            sleep_ms(net_retry_cap_ms(now, deadline, NET_RETRY_BACKOFF_MS));
            silent = 0;
            continue;
        }
        /* A node that has never answered this client costs less than a
         * whole attempt (a fresh `hstore get` whose spec starts with a dead
         * node would otherwise always pay a second). */
        int cap = c->nodes[i].answered || c->attempt_ms < NET_RETRY_FIRST_MS ? c->attempt_ms
                                                                             : NET_RETRY_FIRST_MS;
        int wait = net_retry_cap_ms(now, deadline, cap);
        net_client_req q = {.client_id = client_id,
                            .seq = read ? 0 : seq,
                            .req_id = c->next_req++,
                            .flags = flags,
                            .op = op,
                            .op_len = (uint32_t)len};
        int rc = net_encode_client_req(&q, &c->buf);
        if (rc != NET_OK)
            return rc;
        net_client_resp r;
        rc = exchange(c, i, q.req_id, wait, check_client_resp, &r);
        if (rc == NET_ENOMEM)
            return rc;
        if (rc == NET_EAUTH && ++refused >= c->n)
            return NET_EAUTH; /* every node refused this client's secret */
        if (rc != NET_OK) {
            /* No answer: whatever hint we had pointed here; try the next. */
            i = net_retry_next(i, c->n);
            silent++;
            continue;
        }
        silent = 0;
        c->nodes[i].answered = true;
        net_retry_step st =
            net_retry_answer(r.status, i, hint_index(c, &r), c->n, flags & NET_REQ_REGISTER);
        if (st.node >= 0)
            c->cur = st.node;
        if (st.act == NET_RETRY_DONE) {
            if (st.rc == NET_OK && r.reply_len) {
                *reply = malloc(r.reply_len);
                if (!*reply)
                    return NET_ENOMEM;
                memcpy(*reply, r.reply, r.reply_len);
                *reply_len = r.reply_len;
            }
            return st.rc;
        }
        i = st.node;
        if (st.act == NET_RETRY_PAUSE)
            sleep_ms(net_retry_cap_ms(net_now_ms(), deadline, NET_RETRY_BACKOFF_MS));
    }
}

/* Registers a session when the client has none (or let it idle): a REGISTER
 * request with a random nonce, answered with the session id. */
static int ensure_session(net_client *c, uint64_t deadline)
{
    uint64_t now = net_now_ms();
    if (c->client_id && now - c->last_use_ms < SESSION_IDLE_MS)
        return NET_OK;
    void *rep = NULL;
    size_t rlen = 0;
    int rc = do_call(c, NET_REQ_REGISTER, net_random_id(), 0, NULL, 0, deadline, &rep, &rlen);
    if (rc != NET_OK)
        return rc;
    uint64_t id = net_retry_session_id(rep, rlen);
    free(rep);
    if (!id)
        return NET_EUNAVAIL;
    c->client_id = id; /* seqs go on: any seq is new to a new session */
    c->last_use_ms = now;
    return NET_OK;
}

int net_client_call(net_client *c, bool read, const void *op, size_t len, void **reply,
                    size_t *reply_len)
{
    if (!c)
        return NET_EINVAL;
    uint64_t deadline = net_now_ms() + (uint64_t)c->timeout_ms;
    if (read)
        return do_call(c, NET_REQ_READ, 0, 0, op, len, deadline, reply, reply_len);
    if (!reply || !reply_len)
        return NET_EINVAL;
    *reply = NULL;
    *reply_len = 0;
    int rc = ensure_session(c, deadline);
    if (rc != NET_OK)
        return rc;
    uint64_t seq = c->next_seq;
    rc = do_call(c, 0, c->client_id, seq, op, len, deadline, reply, reply_len);
    /* A sequence number is spent once sent, whatever came of it: reusing it
     * for a different command would make the state machine answer the new
     * command with the old one's cached reply. */
    if (rc != NET_EINVAL)
        c->next_seq++;
    c->last_use_ms = net_now_ms();
    if (rc == NET_ESESSION)
        c->client_id = 0; /* the next command registers a new session */
    return rc;
}

int net_client_call_seq(net_client *c, uint64_t seq, const void *op, size_t len, void **reply,
                        size_t *reply_len)
{
    if (!c || seq == 0)
        return NET_EINVAL;
    if (!c->client_id)
        return NET_ESESSION; /* a replay needs the session it was sent on */
    uint64_t deadline = net_now_ms() + (uint64_t)c->timeout_ms;
    int rc = do_call(c, 0, c->client_id, seq, op, len, deadline, reply, reply_len);
    if (rc == NET_ESESSION)
        c->client_id = 0;
    return rc;
}

int net_client_status(net_client *c, int i, raft_status *st, char *addr, size_t addrlen)
{
    if (!c || i < 0 || i >= c->n || !st)
        return NET_EINVAL;
    uint64_t req_id = c->next_req++;
    int rc = net_encode_status_req(req_id, &c->buf);
    if (rc != NET_OK)
        return rc;
    net_status_resp *r = malloc(sizeof(*r));
    if (!r)
        return NET_ENOMEM;
    rc = exchange(c, i, req_id, c->timeout_ms, check_status_resp, r);
    if (rc == NET_OK) {
        *st = r->st;
        if (addr && addrlen)
            snprintf(addr, addrlen, "%s", r->addr);
        if (r->st.leader)
            c->leader_hint = r->st.leader;
        c->last_status_auth = r->auth_rejected;
        c->last_status_cut = r->conns_cut;
    }
    free(r);
    return rc == NET_OK || rc == NET_EAUTH ? rc : NET_EUNAVAIL;
}

int net_client_snap(net_client *c, int i, net_snap_req *q, int wait_ms, net_snap_resp *r,
                    uint8_t *data)
{
    if (!c || i < 0 || i >= c->n || !q || !r || (q->len && !data))
        return NET_EINVAL;
    q->req_id = c->next_req++;
    int rc = net_encode_snap_req(q, &c->buf);
    if (rc != NET_OK)
        return rc;
    rc = exchange(c, i, q->req_id, wait_ms, check_snap_resp, r);
    if (rc == NET_OK && r->data_len > q->len)
        rc = NET_EMALFORMED;
    if (rc == NET_OK && r->data_len) {
        memcpy(data, r->data, r->data_len);
        r->data = data;
    }
    if (rc == NET_OK)
        c->nodes[i].answered = true;
    return rc == NET_OK || rc == NET_EAUTH || rc == NET_ENOMEM ? rc : NET_EUNAVAIL;
}

int net_client_member(net_client *c, int i, net_member_req *q, int wait_ms, net_member_resp *r)
{
    if (!c || i < 0 || i >= c->n || !q || !r)
        return NET_EINVAL;
    q->req_id = c->next_req++;
    int rc = net_encode_member_req(q, &c->buf);
    if (rc != NET_OK)
        return rc;
    rc = exchange(c, i, q->req_id, wait_ms, check_member_resp, r);
    return rc == NET_OK || rc == NET_EAUTH ? rc : NET_EUNAVAIL;
}

void net_client_status_counters(const net_client *c, uint64_t *auth_rejected, uint64_t *conns_cut)
{
    *auth_rejected = c ? c->last_status_auth : 0;
    *conns_cut = c ? c->last_status_cut : 0;
}

/* ---- accessors ---- */

int net_client_n_nodes(const net_client *c)
{
    return c ? c->n : 0;
}

uint64_t net_client_node_id(const net_client *c, int i)
{
    return c && i >= 0 && i < c->n ? c->nodes[i].c.id : 0;
}

const char *net_client_node_addr(const net_client *c, int i)
{
    return c && i >= 0 && i < c->n ? c->nodes[i].addr : NULL;
}

uint64_t net_client_id(const net_client *c)
{
    return c ? c->client_id : 0;
}

uint64_t net_client_next_seq(const net_client *c)
{
    return c ? c->next_seq : 0;
}

void net_client_set_session(net_client *c, uint64_t client_id, uint64_t next_seq)
{
    if (!c || client_id == 0 || next_seq == 0)
        return;
    c->client_id = client_id;
    c->next_seq = next_seq;
    c->last_use_ms = net_now_ms();
}

uint64_t net_client_leader_hint(const net_client *c)
{
    return c ? c->leader_hint : 0;
}
