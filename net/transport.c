/*
 * transport.c — nanomsg sockets of one node (see transport.h for the shape).
 *
 * Why these socket types:
 *   - PULL/PUSH: Raft messages are one-way and idempotent; the core retries
 *     on its own timers, so a lost message costs a retry, while a blocked
 *     send would stall the whole loop.  One PUSH per peer keeps a slow or
 *     dead peer's queue from holding up the others (nanomsg would otherwise
 *     load-balance one PUSH across all its connections).
 *   - clients: plain TCP read and written by this thread (stream.h says
 *     why).  Every connection is registered, level-triggered, in one epoll
 *     set; the loop polls the epoll descriptor.  Requests become
 *     net_client_msg records in a queue; a reply names its connection by
 *     (generation << 32 | slot), so a reply for a connection that closed
 *     meanwhile — even if its slot was reused — is dropped, never misrouted.
 *
 * The fault injector sits in front of the real send: it decides drop /
 * duplicate / delay from its own seeded PRNG, and keeps delayed copies in a
 * binary min-heap ordered by release time (ties by arrival, so equal delays
 * keep their order).
 */
#include "net/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <nanomsg/tcp.h>
#include <sodium.h>

#include "net/stream.h"

/* Room for several full AppendEntries (1 MiB each by default) per peer
 * before sends start dropping. */
#define DEFAULT_SNDBUF (8 << 20)
#define DEFAULT_RECONNECT_MS 100
#define RECONNECT_MAX_MS 1000
#define LINGER_MS 50
#define RCVBUF (4 << 20)
/* Held-back messages beyond these limits are dropped rather than queued: a
 * test knob must not grow memory without bound. */
#define DELAY_MAX_MSGS 65536
#define DELAY_MAX_BYTES ((size_t)256 << 20)
/* Client connections: the defaults of net_client_limits, how much one may
 * have read per wake-up (fairness), how many read requests may wait to be
 * taken before reading pauses (back-pressure), and the queued reply bytes at
 * which a connection is written at once rather than at the flush. */
#define CLIENT_MAX_CONNS 4096
#define CLIENT_IDLE_MS 300000
#define CLIENT_HANDSHAKE_MS 5000
#define CLIENT_MEM_MAX ((size_t)128 << 20)
#define CLIENT_MAX_UNSENT ((size_t)64 << 20)
#define CLIENT_READ_BUDGET (1u << 20)
#define CLIENT_MAX_QUEUED 65536
#define CLIENT_FLUSH_AT (256u << 10)
/* Descriptors kept free for everything else the process opens. */
#define FD_RESERVE 256
/* A HELLO frame with its trailer, and the read budget before the handshake. */
#define HELLO_LEN (NET_HDR_LEN + NET_NONCE_LEN + NET_TRAILER_LEN)
/* At the connection limit, an authenticated connection idle this long may
 * give way to a new one. */
#define DISPLACE_IDLE_MS 1000
/* Peer replay window: senders remembered, and how long a sender must have
 * been silent before a frame of an OLDER epoch (a restart with the clock set
 * back) is taken from it. */
#define PEER_SENDERS 64
#define PEER_STALE_MS 10000
/* Rate limit of the log lines about refused input. */
#define LOG_EVERY_MS 1000
#define LISTEN_ID UINT64_MAX

typedef struct cconn {
    int fd;
    uint32_t slot, gen;
    net_rbuf rb;
    net_wbuf wb;
    bool want_out;              /* EPOLLOUT registered */
    bool dirty;                 /* in the flush list */
    bool authed;                /* handshake done: s holds the session */
    net_session s;
    uint64_t accepted_ms, last_ms;
    size_t mem;                 /* buffer bytes counted in the transport's mem */
} cconn;

typedef struct sender_state {
    uint64_t id, epoch, ctr, last_ms;
} sender_state;

typedef struct tpeer {
    uint64_t id;
    char host[NET_ADDR_MAX];
    int port;
    int sock;                   /* NN_PUSH, -1 if none */
} tpeer;

typedef struct held {
    uint64_t due;
    uint64_t order;
    uint64_t peer;
    void *buf;
    size_t len;
} held;

struct net_transport {
    uint64_t self_id;
    char host[NET_ADDR_MAX];    /* as configured */
    char ip[NET_ADDR_MAX];      /* numeric IPv4 of host, "" if it did not resolve */
    int port;
    int sndbuf, reconnect_ms;
    int pull;                   /* nanomsg socket, -1 if none */
    int pull_fd;
    int lfd, epfd;              /* client listener and epoll set, -1 if none */
    cconn **conns;              /* by slot; NULL = free */
    uint32_t n_slots, n_conns;
    uint32_t *dirty;            /* slots with queued replies */
    uint32_t n_dirty;
    uint32_t conn_gen;          /* last generation given to a connection */
    net_client_msg *q;          /* ring of read, untaken requests */
    size_t q_head, q_len, q_cap;
    tpeer peers[RAFT_MAX_NODES];
    int n_peers;

    net_faults faults;
    uint64_t rng;
    held *heap;
    size_t n_held, cap_held, held_bytes;
    uint64_t held_order;

    net_auth auth;
    uint64_t epoch, tx_ctr;     /* this node's peer-frame incarnation and counter */
    sender_state senders[PEER_SENDERS];
    net_client_limits lim;
    size_t mem;                 /* client buffers' bytes, all connections */
    uint64_t next_sweep;
    uint64_t log_ms, log_quiet; /* rate limit of refusal logs */
    net_buf ebuf;               /* HELLO_ACK / ERROR frames */

    net_transport_stats st;
};

/* nanomsg binds and local endpoints want an IP literal (or an interface
 * name), not a host name; resolve names once here. */
static bool resolve_ipv4(const char *host, char *out, size_t outlen)
{
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) == 1) {
        snprintf(out, outlen, "%s", host);
        return true;
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return false;
    const struct sockaddr_in *sa = (const struct sockaddr_in *)res->ai_addr;
    bool ok = inet_ntop(AF_INET, &sa->sin_addr, out, (socklen_t)outlen) != NULL;
    freeaddrinfo(res);
    return ok;
}

/* ---- PRNG for the fault injector (splitmix64) ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

int net_faults_parse(const char *spec, net_faults *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    if (!spec || !*spec)
        return NET_OK;
    char *copy = strdup(spec);
    if (!copy)
        return NET_ENOMEM;
    bool seeded = false;
    int rc = NET_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            net_seterr(err, errlen, "fault spec: '%s' is not key=value", tok);
            rc = NET_EINVAL;
            break;
        }
        *eq = '\0';
        const char *k = tok, *v = eq + 1;
        char *end = NULL;
        if (strcmp(k, "drop") == 0 || strcmp(k, "dup") == 0) {
            double p = strtod(v, &end);
            if (end == v || *end || !(p >= 0 && p <= 1)) {
                net_seterr(err, errlen, "fault spec: %s=%s is not a probability in [0,1]", k, v);
                rc = NET_EINVAL;
                break;
            }
            if (k[1] == 'r')
                f->drop = p;
            else
                f->dup = p;
        } else if (strcmp(k, "delay") == 0) {
            /* delay=P:MIN-MAX (milliseconds) */
            int lo = 0, hi = 0, n = 0;
            double p = strtod(v, &end);
            if (end == v || !(p >= 0 && p <= 1) || *end != ':' ||
                sscanf(end + 1, "%d-%d%n", &lo, &hi, &n) != 2 || end[1 + n] != '\0' || lo < 0 ||
                hi < lo || hi > 60000) {
                net_seterr(err, errlen, "fault spec: delay=%s is not P:MIN-MAX (ms, <= 60000)", v);
                rc = NET_EINVAL;
                break;
            }
            f->delay = p;
            f->delay_min_ms = lo;
            f->delay_max_ms = hi;
        } else if (strcmp(k, "seed") == 0) {
            f->seed = strtoull(v, &end, 0);
            if (end == v || *end) {
                net_seterr(err, errlen, "fault spec: seed=%s is not a number", v);
                rc = NET_EINVAL;
                break;
            }
            seeded = true;
        } else {
            net_seterr(err, errlen, "fault spec: unknown key '%s' (drop, dup, delay, seed)", k);
            rc = NET_EINVAL;
            break;
        }
    }
    free(copy);
    if (rc != NET_OK) {
        memset(f, 0, sizeof(*f));
        return rc;
    }
    f->on = true;
    if (!seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        f->seed = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec;
    }
    return NET_OK;
}

/* ---- sockets ---- */

static void sockopt(int s, int level, int opt, int val)
{
    /* Failures here only leave a default in place; nothing to recover. */
    (void)nn_setsockopt(s, level, opt, &val, sizeof(val));
}

/* Nagle's algorithm would hold a small message (a vote, a heartbeat, an
 * append response) back until the previous one is acknowledged: tens of
 * milliseconds on the commit path.  Must be set before bind/connect. */
static void nodelay(int s)
{
    sockopt(s, NN_TCP, NN_TCP_NODELAY, 1);
}

static int getfd(int s, int opt)
{
    int fd = -1;
    size_t sz = sizeof(fd);
    if (nn_getsockopt(s, NN_SOL_SOCKET, opt, &fd, &sz) < 0)
        return -1;
    return fd;
}

static int open_push(net_transport *t, tpeer *p)
{
    char rip[NET_ADDR_MAX], url[3 * NET_ADDR_MAX];
    int s = nn_socket(AF_SP, NN_PUSH);
    if (s < 0)
        return NET_EIO;
    sockopt(s, NN_SOL_SOCKET, NN_SNDBUF, t->sndbuf);
    sockopt(s, NN_SOL_SOCKET, NN_RECONNECT_IVL, t->reconnect_ms);
    sockopt(s, NN_SOL_SOCKET, NN_RECONNECT_IVL_MAX,
            t->reconnect_ms > RECONNECT_MAX_MS ? t->reconnect_ms : RECONNECT_MAX_MS);
    sockopt(s, NN_SOL_SOCKET, NN_LINGER, LINGER_MS);
    sockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, 0);
    nodelay(s);
    /* The remote host may be a name nanomsg resolves itself; the local end
     * must be an address (bound before connecting, so firewall rules and
     * partition tests can name this node by its address). */
    const char *remote = resolve_ipv4(p->host, rip, sizeof(rip)) ? rip : p->host;
    if (t->ip[0])
        snprintf(url, sizeof(url), "tcp://%s;%s:%d", t->ip, remote, p->port);
    else
        snprintf(url, sizeof(url), "tcp://%s:%d", remote, p->port);
    if (nn_connect(s, url) < 0) {
        nn_close(s);
        return NET_EIO;
    }
    p->sock = s;
    return NET_OK;
}

static int bind_sock(int s, const char *ip, int port)
{
    char url[2 * NET_ADDR_MAX];
    snprintf(url, sizeof(url), "tcp://%s:%d", ip, port);
    return nn_bind(s, url);
}

static int client_listen(net_transport *t, char *err, size_t errlen);
static void client_close_all(net_transport *t);

net_transport *net_transport_new(const net_transport_config *cfg, char *err, size_t errlen)
{
    if (!cfg || cfg->port <= 0 || cfg->port >= 65535 || cfg->n_peers < 0 ||
        cfg->n_peers > RAFT_MAX_NODES || !memchr(cfg->host, '\0', sizeof(cfg->host))) {
        net_seterr(err, errlen, "transport: bad configuration");
        return NULL;
    }
    net_transport *t = calloc(1, sizeof(*t));
    if (!t) {
        net_seterr(err, errlen, "transport: out of memory");
        return NULL;
    }
    t->pull = t->pull_fd = t->lfd = t->epfd = -1;
    t->self_id = cfg->self_id;
    snprintf(t->host, sizeof(t->host), "%s", cfg->host);
    t->port = cfg->port;
    t->sndbuf = cfg->sndbuf > 0 ? cfg->sndbuf : DEFAULT_SNDBUF;
    t->reconnect_ms = cfg->reconnect_ms > 0 ? cfg->reconnect_ms : DEFAULT_RECONNECT_MS;
    if (cfg->auth)
        t->auth = *cfg->auth;
    else
        net_auth_get_default(&t->auth);
    if (sodium_init() < 0) {
        net_seterr(err, errlen, "transport: libsodium cannot initialise");
        goto fail;
    }
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t->epoch = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    t->lim = cfg->limits;
    if (t->lim.max_conns <= 0)
        t->lim.max_conns = CLIENT_MAX_CONNS;
    if (t->lim.idle_ms <= 0)
        t->lim.idle_ms = CLIENT_IDLE_MS;
    if (t->lim.handshake_ms <= 0)
        t->lim.handshake_ms = CLIENT_HANDSHAKE_MS;
    if (t->lim.max_frame == 0 || t->lim.max_frame > NET_MAX_PAYLOAD)
        t->lim.max_frame = NET_MAX_PAYLOAD;
    if (t->lim.mem_max == 0)
        t->lim.mem_max = CLIENT_MEM_MAX;
    if (t->lim.mem_max < t->lim.max_frame + NET_HDR_LEN + NET_TRAILER_LEN)
        t->lim.mem_max = t->lim.max_frame + NET_HDR_LEN + NET_TRAILER_LEN;
    if (t->lim.max_unsent == 0)
        t->lim.max_unsent = CLIENT_MAX_UNSENT;
    if (!resolve_ipv4(t->host, t->ip, sizeof(t->ip))) {
        net_seterr(err, errlen, "transport: cannot resolve '%s' to an IPv4 address", t->host);
        goto fail;
    }

    const char *fspec = cfg->faults ? cfg->faults : getenv("HSTORE_NET_FAULTS");
    char ferr[160] = "";
    if (net_faults_parse(fspec, &t->faults, ferr, sizeof(ferr)) != NET_OK) {
        net_seterr(err, errlen, "transport: %s", ferr);
        goto fail;
    }
    if (t->faults.on) {
        t->rng = t->faults.seed;
        fprintf(stderr,
                "net: node %llu: fault injection ON: drop=%.3f dup=%.3f delay=%.3f:%d-%d seed=%llu\n",
                (unsigned long long)t->self_id, t->faults.drop, t->faults.dup, t->faults.delay,
                t->faults.delay_min_ms, t->faults.delay_max_ms,
                (unsigned long long)t->faults.seed);
    }

    t->pull = nn_socket(AF_SP, NN_PULL);
    if (t->pull < 0) {
        net_seterr(err, errlen, "transport: nn_socket: %s", nn_strerror(nn_errno()));
        goto fail;
    }
    sockopt(t->pull, NN_SOL_SOCKET, NN_RCVMAXSIZE, NET_HDR_LEN + NET_MAX_PAYLOAD);
    sockopt(t->pull, NN_SOL_SOCKET, NN_RCVBUF, RCVBUF);
    sockopt(t->pull, NN_SOL_SOCKET, NN_LINGER, LINGER_MS);
    nodelay(t->pull);
    if (bind_sock(t->pull, t->ip, t->port) < 0) {
        net_seterr(err, errlen, "transport: cannot listen for peers on %s:%d: %s", t->host, t->port,
               nn_strerror(nn_errno()));
        goto fail;
    }
    t->pull_fd = getfd(t->pull, NN_RCVFD);

    if (!cfg->no_client_socket && client_listen(t, err, errlen) != NET_OK)
        goto fail;
    if (t->pull_fd < 0) {
        net_seterr(err, errlen, "transport: cannot get a pollable descriptor");
        goto fail;
    }

    for (int i = 0; i < cfg->n_peers; i++) {
        if (cfg->peers[i].id == cfg->self_id)
            continue;
        if (net_transport_add_peer(t, &cfg->peers[i]) != NET_OK) {
            net_seterr(err, errlen, "transport: cannot set up peer %llu at %s:%d",
                   (unsigned long long)cfg->peers[i].id, cfg->peers[i].host, cfg->peers[i].port);
            goto fail;
        }
    }
    return t;

fail:
    net_transport_free(t);
    return NULL;
}

void net_transport_free(net_transport *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_peers; i++)
        if (t->peers[i].sock >= 0)
            nn_close(t->peers[i].sock);
    if (t->pull >= 0)
        nn_close(t->pull);
    client_close_all(t);
    for (size_t i = 0; i < t->n_held; i++)
        free(t->heap[i].buf);
    free(t->heap);
    net_buf_free(&t->ebuf);
    sodium_memzero(&t->auth, sizeof t->auth);
    free(t);
}

static tpeer *find_peer(net_transport *t, uint64_t id)
{
    for (int i = 0; i < t->n_peers; i++)
        if (t->peers[i].id == id)
            return &t->peers[i];
    return NULL;
}

int net_transport_add_peer(net_transport *t, const net_peer *p)
{
    if (!t || !p || p->id == 0 || p->id == t->self_id || p->port <= 0 || p->port > 65535 ||
        !memchr(p->host, '\0', sizeof(p->host)))
        return NET_EINVAL;
    tpeer *q = find_peer(t, p->id);
    if (q) {
        if (strcmp(q->host, p->host) == 0 && q->port == p->port)
            return NET_OK;
        /* readdressed: reconnect */
        if (q->sock >= 0)
            nn_close(q->sock);
        q->sock = -1;
    } else {
        if (t->n_peers >= RAFT_MAX_NODES)
            return NET_EINVAL;
        q = &t->peers[t->n_peers++];
        q->id = p->id;
        q->sock = -1;
    }
    snprintf(q->host, sizeof(q->host), "%s", p->host);
    q->port = p->port;
    int rc = open_push(t, q);
    if (rc != NET_OK) {
        *q = t->peers[--t->n_peers];
        return rc;
    }
    return NET_OK;
}

int net_transport_remove_peer(net_transport *t, uint64_t id)
{
    tpeer *q = t ? find_peer(t, id) : NULL;
    if (!q)
        return NET_EINVAL;
    if (q->sock >= 0)
        nn_close(q->sock);
    *q = t->peers[--t->n_peers];
    return NET_OK;
}

int net_transport_pollfds(net_transport *t, struct pollfd *fds, int max)
{
    net_transport_flush(t);
    int n = 0;
    if (n < max && t->pull_fd >= 0)
        fds[n++] = (struct pollfd){.fd = t->pull_fd, .events = POLLIN};
    if (n < max && t->epfd >= 0)
        fds[n++] = (struct pollfd){.fd = t->epfd, .events = POLLIN};
    return n;
}

bool net_transport_is_peer_fd(const net_transport *t, int fd) { return fd >= 0 && fd == t->pull_fd; }
bool net_transport_is_client_fd(const net_transport *t, int fd) { return fd >= 0 && fd == t->epfd; }

/* ---- peer traffic ---- */

static int raw_send(net_transport *t, uint64_t peer_id, const void *buf, size_t len)
{
    tpeer *p = find_peer(t, peer_id);
    if (!p || p->sock < 0)
        return NET_EINVAL;
    /* Sealed here, at the real send, so that the counter follows the order
     * frames leave in (the fault injector may hold some back). */
    void *msg = nn_allocmsg(len + NET_TRAILER_LEN, 0);
    if (!msg) {
        t->st.peer_send_dropped++;
        return NET_EAGAIN;
    }
    memcpy(msg, buf, len);
    net_trailer tr = {t->self_id, t->epoch, ++t->tx_ctr};
    net_seal_at(t->auth.peer, &tr, msg, len);
    if (nn_send(p->sock, &msg, NN_MSG, NN_DONTWAIT) < 0) {
        /* EAGAIN: queue full or no connection yet.  Either way Raft will
         * resend; blocking here would stall every other peer. */
        nn_freemsg(msg);
        t->st.peer_send_dropped++;
        return NET_EAGAIN;
    }
    t->st.peer_sent++;
    return NET_OK;
}

static void heap_swap(held *a, held *b)
{
    held x = *a;
    *a = *b;
    *b = x;
}
static bool heap_less(const held *a, const held *b)
{
    return a->due < b->due || (a->due == b->due && a->order < b->order);
}

static int hold(net_transport *t, uint64_t peer_id, const void *buf, size_t len, uint64_t due)
{
    if (t->n_held >= DELAY_MAX_MSGS || t->held_bytes + len > DELAY_MAX_BYTES) {
        t->st.fault_dropped++;
        return NET_OK;
    }
    if (t->n_held == t->cap_held) {
        size_t cap = t->cap_held ? 2 * t->cap_held : 64;
        held *h = realloc(t->heap, cap * sizeof(*h));
        if (!h)
            return NET_ENOMEM;
        t->heap = h;
        t->cap_held = cap;
    }
    void *copy = malloc(len ? len : 1);
    if (!copy)
        return NET_ENOMEM;
    memcpy(copy, buf, len);
    size_t i = t->n_held++;
    t->heap[i] = (held){.due = due, .order = t->held_order++, .peer = peer_id, .buf = copy,
                        .len = len};
    t->held_bytes += len;
    while (i > 0 && heap_less(&t->heap[i], &t->heap[(i - 1) / 2])) {
        heap_swap(&t->heap[i], &t->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    t->st.fault_delayed++;
    return NET_OK;
}

static held heap_pop(net_transport *t)
{
    held top = t->heap[0];
    t->heap[0] = t->heap[--t->n_held];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->n_held && heap_less(&t->heap[l], &t->heap[m]))
            m = l;
        if (r < t->n_held && heap_less(&t->heap[r], &t->heap[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(&t->heap[i], &t->heap[m]);
        i = m;
    }
    t->held_bytes -= top.len;
    return top;
}

int net_send_peer(net_transport *t, uint64_t peer_id, const void *buf, size_t len)
{
    if (!t || (!buf && len))
        return NET_EINVAL;
    tpeer *p = find_peer(t, peer_id);
    if (!p)
        return NET_EINVAL;
    if (!t->faults.on)
        return raw_send(t, peer_id, buf, len);

    net_faults *f = &t->faults;
    if (rng_unit(&t->rng) < f->drop) {
        t->st.fault_dropped++;
        return NET_OK;
    }
    int copies = 1;
    if (rng_unit(&t->rng) < f->dup) {
        copies = 2;
        t->st.fault_duplicated++;
    }
    int rc = NET_OK;
    for (int c = 0; c < copies; c++) {
        if (f->delay > 0 && rng_unit(&t->rng) < f->delay) {
            uint64_t span = (uint64_t)(f->delay_max_ms - f->delay_min_ms) + 1;
            uint64_t d = (uint64_t)f->delay_min_ms + rng_next(&t->rng) % span;
            int hrc = hold(t, peer_id, buf, len, net_now_ms() + d);
            if (hrc != NET_OK)
                rc = hrc;
        } else {
            int src = raw_send(t, peer_id, buf, len);
            if (c == 0)
                rc = src;
        }
    }
    return rc;
}

static void client_sweep(net_transport *t, uint64_t now);

void net_transport_tick(net_transport *t, uint64_t now_ms)
{
    if (!t)
        return;
    client_sweep(t, now_ms);
    while (t->n_held > 0 && t->heap[0].due <= now_ms) {
        held h = heap_pop(t);
        if (find_peer(t, h.peer))
            (void)raw_send(t, h.peer, h.buf, h.len);
        free(h.buf);
    }
}

uint64_t net_transport_next_deadline(const net_transport *t)
{
    if (t && t->q_len)
        return 0;
    return t && t->n_held ? t->heap[0].due : UINT64_MAX;
}

/* One line about refused input, at most every LOG_EVERY_MS. */
static void refusal_log(net_transport *t, const char *what, uint64_t count)
{
    uint64_t now = net_now_ms();
    if (t->log_ms && now - t->log_ms < LOG_EVERY_MS) {
        t->log_quiet++;
        return;
    }
    fprintf(stderr, "net: node %llu: refused %s (%llu so far; %llu other refusals not logged)\n",
            (unsigned long long)t->self_id, what, (unsigned long long)count,
            (unsigned long long)t->log_quiet);
    t->log_ms = now;
    t->log_quiet = 0;
}

/* The replay window of peer frames: a sender's frames must come with a newer
 * (epoch, counter) than the newest taken from it.  A sender silent for
 * PEER_STALE_MS may come back with an older epoch (restarted with its clock
 * set back): otherwise such a node would stay cut off until this one
 * restarts.  A replayed old frame is then accepted only while its true
 * sender is silent, and Raft takes duplicated and delayed messages safely. */
static bool sender_accept(net_transport *t, const net_trailer *tr)
{
    uint64_t now = net_now_ms();
    sender_state *s = NULL, *victim = &t->senders[0];
    for (int i = 0; i < PEER_SENDERS; i++) {
        sender_state *x = &t->senders[i];
        if (x->id == tr->sender) {
            s = x;
            break;
        }
        if (x->id == 0 || (victim->id != 0 && x->last_ms < victim->last_ms))
            victim = x;
    }
    if (!s) {
        *victim = (sender_state){tr->sender, tr->epoch, tr->ctr, now};
        return true;
    }
    bool ok = tr->epoch > s->epoch || (tr->epoch == s->epoch && tr->ctr > s->ctr) ||
              (tr->epoch < s->epoch && now - s->last_ms >= PEER_STALE_MS);
    if (!ok)
        return false;
    s->epoch = tr->epoch;
    s->ctr = tr->ctr;
    s->last_ms = now;
    return true;
}

int net_recv_peer(net_transport *t, void **buf, size_t *len, uint64_t *from)
{
    if (!t || !buf || !len || !from)
        return NET_EINVAL;
    for (int dropped = 0; dropped < 1024; dropped++) {
        void *m = NULL;
        int n = nn_recv(t->pull, &m, NN_MSG, NN_DONTWAIT);
        if (n < 0) {
            int e = nn_errno();
            return (e == EAGAIN || e == EINTR) ? NET_EAGAIN : NET_EIO;
        }
        net_trailer tr;
        if (net_open(t->auth.peer, m, (size_t)n, &tr) != NET_OK || tr.sender == 0) {
            t->st.peer_auth_failed++;
            refusal_log(t, "a peer frame whose MAC does not verify (wrong secret or forged)",
                        t->st.peer_auth_failed);
            nn_freemsg(m);
            continue;
        }
        if (!sender_accept(t, &tr)) {
            t->st.peer_replayed++;
            refusal_log(t, "a replayed peer frame (older than its sender's newest)",
                        t->st.peer_replayed);
            nn_freemsg(m);
            continue;
        }
        *buf = m;
        *len = (size_t)n - NET_TRAILER_LEN;
        *from = tr.sender;
        t->st.peer_recv++;
        return NET_OK;
    }
    return NET_EAGAIN;
}

void net_msg_free(void *buf)
{
    if (buf)
        nn_freemsg(buf);
}

/* ---- client traffic ---- */

static uint64_t conn_id(const cconn *c) { return (uint64_t)c->gen << 32 | c->slot; }

static cconn *conn_get(const net_transport *t, uint64_t id)
{
    uint32_t slot = (uint32_t)id;
    if (slot >= t->n_slots || !t->conns[slot] || t->conns[slot]->gen != (uint32_t)(id >> 32))
        return NULL;
    return t->conns[slot];
}

static void conn_close(net_transport *t, cconn *c)
{
    (void)epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    net_rbuf_free(&c->rb);
    net_wbuf_free(&c->wb);
    t->mem -= c->mem;
    t->conns[c->slot] = NULL;
    t->n_conns--;
    free(c);
}

/* Sends an ERROR frame (best effort, never blocking) on fd.  Its trailer is
 * zeros: clients take ERROR frames without a MAC (they carry no data). */
static void send_refusal(net_transport *t, int fd, uint8_t code)
{
    static const uint8_t zeros[NET_TRAILER_LEN];
    if (net_encode_error(code, &t->ebuf) != NET_OK)
        return;
    uint8_t *p = realloc(t->ebuf.p, t->ebuf.len + sizeof zeros);
    if (!p)
        return;
    t->ebuf.p = p;
    t->ebuf.cap = t->ebuf.len + sizeof zeros;
    memcpy(p + t->ebuf.len, zeros, sizeof zeros);
    t->ebuf.len += sizeof zeros;
    (void)send(fd, t->ebuf.p, t->ebuf.len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Closes c after telling it why (when nothing else waits to be sent on it,
 * so the ERROR frame cannot land inside another frame). */
static void conn_refuse(net_transport *t, cconn *c, uint8_t code)
{
    if (net_wbuf_pending(&c->wb) == 0)
        send_refusal(t, c->fd, code);
    conn_close(t, c);
}

/* Brings the memory count up to date with c's buffers; past the cap, closes
 * the connections that hold the most until under it.  False when c itself
 * was closed. */
static bool conn_account(net_transport *t, cconn *c)
{
    size_t m = c->rb.cap + c->wb.cap;
    t->mem = t->mem - c->mem + m;
    c->mem = m;
    uint64_t id = conn_id(c);
    while (t->mem > t->lim.mem_max) {
        cconn *hog = NULL;
        for (uint32_t i = 0; i < t->n_slots; i++)
            if (t->conns[i] && (!hog || t->conns[i]->mem > hog->mem))
                hog = t->conns[i];
        if (!hog || hog->mem == 0)
            break;
        t->st.client_mem_closed++;
        refusal_log(t, "a client connection over the client memory cap", t->st.client_mem_closed);
        conn_refuse(t, hog, NET_REFUSE_MEMORY);
    }
    return conn_get(t, id) != NULL;
}

/* Frees a connection's buffers when empty (from the once-a-second sweep, not
 * per request: giving the memory back and taking it again costs page faults
 * on every turn of a busy connection).  An idle connection holds none. */
static void conn_trim(net_transport *t, cconn *c)
{
    if (net_rbuf_buffered(&c->rb) == 0 && c->rb.cap)
        net_rbuf_free(&c->rb);
    if (net_wbuf_pending(&c->wb) == 0 && c->wb.cap)
        net_wbuf_free(&c->wb);
    (void)conn_account(t, c);
}

static void client_close_all(net_transport *t)
{
    for (uint32_t i = 0; i < t->n_slots; i++)
        if (t->conns[i])
            conn_close(t, t->conns[i]);
    for (size_t i = 0; i < t->q_len; i++)
        free(t->q[(t->q_head + i) % t->q_cap].body);
    free(t->q);
    free(t->conns);
    free(t->dirty);
    if (t->lfd >= 0)
        close(t->lfd);
    if (t->epfd >= 0)
        close(t->epfd);
    t->q = NULL;
    t->conns = NULL;
    t->dirty = NULL;
    t->q_len = t->q_cap = 0;
    t->n_slots = t->n_conns = t->n_dirty = 0;
    t->lfd = t->epfd = -1;
}

/* Room for max_conns connections within the descriptor limit (raising the
 * soft limit towards the hard one when needed). */
static void fit_fd_limit(net_transport *t)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)t->lim.max_conns + FD_RESERVE;
    if (rl.rlim_cur < want && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        struct rlimit nr = {cur, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &nr) == 0)
            rl.rlim_cur = cur;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        int fit = rl.rlim_cur > 2 * FD_RESERVE ? (int)(rl.rlim_cur - FD_RESERVE) : (int)rl.rlim_cur / 2;
        fprintf(stderr, "net: node %llu: descriptor limit %llu: at most %d client connections\n",
                (unsigned long long)t->self_id, (unsigned long long)rl.rlim_cur, fit);
        t->lim.max_conns = fit > 1 ? fit : 1;
    }
}

static int client_listen(net_transport *t, char *err, size_t errlen)
{
    fit_fd_limit(t);
    t->conns = calloc((size_t)t->lim.max_conns, sizeof(*t->conns));
    t->dirty = calloc((size_t)t->lim.max_conns, sizeof(*t->dirty));
    if (!t->conns || !t->dirty) {
        net_seterr(err, errlen, "transport: out of memory");
        return NET_ENOMEM;
    }
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->epfd < 0 || t->lfd < 0) {
        net_seterr(err, errlen, "transport: cannot create the client socket: %s", strerror(errno));
        return NET_EIO;
    }
    int one = 1;
    /* A node restarted right after a crash must get its port back although
     * old connections linger in TIME_WAIT. */
    (void)setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(t->port + 1))};
    if (inet_pton(AF_INET, t->ip, &a.sin_addr) != 1 ||
        bind(t->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(t->lfd, 1024) < 0) {
        net_seterr(err, errlen, "transport: cannot listen for clients on %s:%d: %s", t->host,
                   t->port + 1, strerror(errno));
        return NET_EIO;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTEN_ID};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->lfd, &ev) < 0) {
        net_seterr(err, errlen, "transport: epoll: %s", strerror(errno));
        return NET_EIO;
    }
    return NET_OK;
}

/* At the connection limit: closes the oldest connection that has not
 * authenticated, else the one idle longest if idle over DISPLACE_IDLE_MS.
 * False when every connection is authenticated and busy. */
static bool make_room(net_transport *t, uint64_t now)
{
    cconn *pre = NULL, *idle = NULL;
    for (uint32_t i = 0; i < t->n_slots; i++) {
        cconn *c = t->conns[i];
        if (!c)
            continue;
        if (!c->authed) {
            if (!pre || c->accepted_ms < pre->accepted_ms)
                pre = c;
        } else if (net_wbuf_pending(&c->wb) == 0 && (!idle || c->last_ms < idle->last_ms)) {
            idle = c;
        }
    }
    cconn *victim = pre;
    if (!victim && idle && now > idle->last_ms && now - idle->last_ms >= DISPLACE_IDLE_MS)
        victim = idle;
    if (!victim)
        return false;
    t->st.client_refused++;
    conn_refuse(t, victim, NET_REFUSE_BUSY);
    return true;
}

static void client_accept(net_transport *t)
{
    uint64_t now = net_now_ms();
    for (int i = 0; i < 64; i++) {
        int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;     /* EAGAIN, or an aborted connection: nothing to do */
        if (t->n_conns >= (uint32_t)t->lim.max_conns && !make_room(t, now)) {
            t->st.client_refused++;
            refusal_log(t, "a client connection: too many connections", t->st.client_refused);
            send_refusal(t, fd, NET_REFUSE_BUSY);
            close(fd);
            continue;
        }
        uint32_t slot = 0;
        while (slot < (uint32_t)t->lim.max_conns && t->conns[slot])
            slot++;
        cconn *c = slot < (uint32_t)t->lim.max_conns ? calloc(1, sizeof(*c)) : NULL;
        if (!c || net_tcp_prepare(fd) < 0) {
            /* No memory: the client sees the connection close and tries
             * another node or later. */
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->slot = slot;
        c->gen = ++t->conn_gen;
        c->accepted_ms = c->last_ms = now;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = conn_id(c)};
        if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c);
            close(fd);
            continue;
        }
        t->conns[slot] = c;
        t->n_conns++;
        if (slot >= t->n_slots)
            t->n_slots = slot + 1;
        t->st.client_conns++;
    }
}

static int queue_push(net_transport *t, net_client_msg m)
{
    if (t->q_len == t->q_cap) {
        size_t cap = t->q_cap ? 2 * t->q_cap : 256;
        net_client_msg *q = malloc(cap * sizeof(*q));
        if (!q)
            return NET_ENOMEM;
        for (size_t i = 0; i < t->q_len; i++)
            q[i] = t->q[(t->q_head + i) % t->q_cap];
        free(t->q);
        t->q = q;
        t->q_cap = cap;
        t->q_head = 0;
    }
    t->q[(t->q_head + t->q_len) % t->q_cap] = m;
    t->q_len++;
    return NET_OK;
}

static void mark_dirty(net_transport *t, cconn *c);

/* Appends frame buf/len to c's queue with the trailer of the session's next
 * reply. */
static int conn_put_sealed(net_transport *t, cconn *c, const void *buf, size_t len)
{
    static const uint8_t room[NET_TRAILER_LEN];
    if (net_wbuf_put(&c->wb, buf, len) != NET_OK)
        return NET_ENOMEM;
    if (net_wbuf_put(&c->wb, room, sizeof room) != NET_OK) {
        c->wb.len -= len;
        return NET_ENOMEM;
    }
    net_trailer tr = {t->self_id, 0, c->s.tx + 1};
    net_seal_at(c->s.kresp, &tr, c->wb.p + c->wb.len - NET_TRAILER_LEN - len, len);
    c->s.tx++;
    return NET_OK;
}

/* The first frame of a connection: a HELLO that verifies, answered with a
 * HELLO_ACK; anything else is refused as unauthenticated.  False when c was
 * closed. */
static bool client_handshake(net_transport *t, cconn *c, const uint8_t *f, size_t len)
{
    uint8_t cn[NET_NONCE_LEN], sn[NET_NONCE_LEN];
    net_trailer tr;
    if (net_open_hs(t->auth.req, NULL, 0, f, len, &tr) != NET_OK ||
        net_decode_hello(f, len - NET_TRAILER_LEN, cn) != NET_OK) {
        t->st.client_auth_failed++;
        refusal_log(t, "a client that did not authenticate (wrong or missing secret)",
                    t->st.client_auth_failed);
        conn_refuse(t, c, NET_REFUSE_AUTH);
        return false;
    }
    randombytes_buf(sn, sizeof sn);
    net_trailer at = {t->self_id, 0, 0};
    if (net_encode_hello_ack(t->self_id, sn, &t->ebuf) != NET_OK ||
        net_seal_hs(t->auth.resp, cn, sizeof cn, &at, &t->ebuf) != NET_OK ||
        net_wbuf_put(&c->wb, t->ebuf.p, t->ebuf.len) != NET_OK) {
        conn_close(t, c);
        return false;
    }
    memcpy(c->s.ctx, cn, NET_NONCE_LEN);
    memcpy(c->s.ctx + NET_NONCE_LEN, sn, NET_NONCE_LEN);
    c->s.tx = c->s.rx = 0;
    c->s.node_id = t->self_id;
    net_session_keys(&t->auth, &c->s);
    c->authed = true;
    mark_dirty(t, c);
    return true;
}

/* Reads what a connection has and queues its complete frames; closes it on
 * end of stream, error, bytes that are not hstore frames, or a frame that
 * does not verify. */
static void client_read(net_transport *t, cconn *c)
{
    int rc = net_rbuf_fill(&c->rb, c->fd, c->authed ? CLIENT_READ_BUDGET : HELLO_LEN);
    if (rc == NET_OK)
        c->last_ms = net_now_ms();
    if (!c->authed && net_rbuf_buffered(&c->rb) >= NET_HDR_LEN) {
        /* Anything but a HELLO first (a request from a client that skips
         * the handshake): not authenticated, refused at once. */
        const uint8_t *h = c->rb.p + c->rb.off;
        uint32_t magic = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                         (uint32_t)h[3] << 24;
        if (magic == NET_MAGIC && h[4] == NET_VERSION && h[5] != NET_MSG_HELLO) {
            t->st.client_auth_failed++;
            refusal_log(t, "a client that sent a request before authenticating",
                        t->st.client_auth_failed);
            conn_refuse(t, c, NET_REFUSE_AUTH);
            return;
        }
    }
    for (;;) {
        const uint8_t *f;
        size_t len;
        size_t max = c->authed ? NET_HDR_LEN + t->lim.max_frame + NET_TRAILER_LEN : HELLO_LEN;
        int frc = net_rbuf_frame(&c->rb, max, &f, &len);
        if (frc == NET_EAGAIN)
            break;
        if (frc == NET_ELENGTH && c->authed) {
            t->st.client_too_large++;
            refusal_log(t, "a client frame over --client-max-frame", t->st.client_too_large);
            conn_refuse(t, c, NET_REFUSE_TOO_LARGE);
            return;
        }
        if (frc == NET_ELENGTH) {
            /* Anything but a HELLO first: not authenticated. */
            t->st.client_auth_failed++;
            refusal_log(t, "a client that sent a request before authenticating",
                        t->st.client_auth_failed);
            conn_refuse(t, c, NET_REFUSE_AUTH);
            return;
        }
        if (frc != NET_OK) {
            t->st.client_conns_bad++;
            conn_close(t, c);
            return;
        }
        if (!c->authed) {
            if (!client_handshake(t, c, f, len))
                return;
            continue;
        }
        net_trailer tr;
        if (net_open(c->s.kreq, f, len, &tr) != NET_OK ||
            tr.ctr != c->s.rx + 1) {
            t->st.client_auth_failed++;
            refusal_log(t, "a client frame whose MAC or counter does not verify",
                        t->st.client_auth_failed);
            conn_refuse(t, c, NET_REFUSE_AUTH);
            return;
        }
        c->s.rx++;
        len -= NET_TRAILER_LEN;
        void *body = malloc(len);
        if (!body || queue_push(t, (net_client_msg){.body = body, .len = len,
                                                     .conn = conn_id(c)}) != NET_OK) {
            free(body);
            conn_close(t, c);
            return;
        }
        memcpy(body, f, len);
        t->st.client_recv++;
    }
    /* End of stream after the last complete frame: the client has gone (its
     * requests already read are still served; their replies are dropped). */
    if (rc == NET_EIO || rc == NET_ENOMEM) {
        conn_close(t, c);
        return;
    }
    (void)conn_account(t, c);
}

static void set_want_out(net_transport *t, cconn *c, bool on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u64 = conn_id(c)};
    if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = on;
}

/* Writes c's queued replies; false when c was closed. */
static bool client_write(net_transport *t, cconn *c)
{
    size_t before = net_wbuf_pending(&c->wb);
    int rc = net_wbuf_flush(&c->wb, c->fd);
    if (rc == NET_EIO) {
        conn_close(t, c);
        return false;
    }
    if (net_wbuf_pending(&c->wb) < before)
        c->last_ms = net_now_ms();
    set_want_out(t, c, rc == NET_EAGAIN);
    return true;
}

static void mark_dirty(net_transport *t, cconn *c)
{
    if (c->dirty)
        return;
    /* (A slot can appear twice when its connection closed and another took
     * it within one turn; the list is flushed before it overflows.) */
    if (t->n_dirty == (uint32_t)t->lim.max_conns)
        net_transport_flush(t);
    c->dirty = true;
    t->dirty[t->n_dirty++] = c->slot;
}

void net_transport_flush(net_transport *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->n_dirty; i++) {
        cconn *c = t->conns[t->dirty[i]];
        if (!c || !c->dirty)
            continue;
        c->dirty = false;
        client_write(t, c);
    }
    t->n_dirty = 0;
}

/* Closes connections past the idle or handshake timeout and frees the
 * buffers of quiet ones (once a second). */
static void client_sweep(net_transport *t, uint64_t now)
{
    if (t->epfd < 0 || now < t->next_sweep)
        return;
    t->next_sweep = now + 1000;
    for (uint32_t i = 0; i < t->n_slots; i++) {
        cconn *c = t->conns[i];
        if (!c)
            continue;
        uint64_t limit = c->authed ? (uint64_t)t->lim.idle_ms : (uint64_t)t->lim.handshake_ms;
        uint64_t quiet = now > c->last_ms ? now - c->last_ms : 0;
        if (quiet >= limit && net_wbuf_pending(&c->wb) == 0) {
            t->st.client_idle_closed++;
            conn_refuse(t, c, NET_REFUSE_IDLE);
        } else if (quiet >= 1000) {
            conn_trim(t, c);
        }
    }
}

/* One round of the epoll set without blocking. */
static void client_pump(net_transport *t)
{
    struct epoll_event ev[64];
    int n = epoll_wait(t->epfd, ev, 64, 0);
    for (int i = 0; i < n; i++) {
        uint64_t id = ev[i].data.u64;
        if (id == LISTEN_ID) {
            client_accept(t);
            continue;
        }
        cconn *c = conn_get(t, id);
        if (!c)
            continue;
        if ((ev[i].events & EPOLLOUT) && !client_write(t, c))
            continue;
        if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            if (t->q_len < CLIENT_MAX_QUEUED)
                client_read(t, c);
        }
    }
}

int net_recv_client(net_transport *t, net_client_msg *out)
{
    if (!t || !out)
        return NET_EINVAL;
    memset(out, 0, sizeof(*out));
    if (t->epfd < 0)
        return NET_EAGAIN;
    if (t->q_len == 0)
        client_pump(t);
    if (t->q_len == 0)
        return NET_EAGAIN;
    *out = t->q[t->q_head];
    t->q_head = (t->q_head + 1) % t->q_cap;
    t->q_len--;
    return NET_OK;
}

bool net_transport_client_pending(const net_transport *t) { return t && t->q_len > 0; }

int net_reply_client(net_transport *t, net_client_msg *req, const void *buf, size_t len)
{
    if (!t || !req || (!buf && len))
        return NET_EINVAL;
    cconn *c = conn_get(t, req->conn);
    int rc = NET_OK;
    if (c && net_wbuf_pending(&c->wb) + len + NET_TRAILER_LEN > t->lim.max_unsent) {
        /* Not reading its answers: cut it off rather than grow. */
        t->st.client_mem_closed++;
        refusal_log(t, "a client that does not read its replies (--client-max-unsent)",
                    t->st.client_mem_closed);
        conn_close(t, c);
        c = NULL;
    }
    if (!c) {
        rc = NET_EIO;
    } else if (conn_put_sealed(t, c, buf, len) != NET_OK) {
        rc = NET_ENOMEM;
    } else {
        if (!conn_account(t, c))
            rc = NET_EIO;
        else if (net_wbuf_pending(&c->wb) >= CLIENT_FLUSH_AT)
            client_write(t, c);
        else
            mark_dirty(t, c);
    }
    if (rc == NET_OK)
        t->st.client_replied++;
    else
        t->st.client_reply_failed++;
    net_client_msg_drop(req);
    return rc;
}

void net_client_msg_drop(net_client_msg *req)
{
    if (!req)
        return;
    free(req->body);
    req->body = NULL;
    req->len = 0;
    req->conn = 0;
}

bool net_transport_peer_connected(const net_transport *t, uint64_t peer_id)
{
    if (!t)
        return false;
    for (int i = 0; i < t->n_peers; i++)
        if (t->peers[i].id == peer_id && t->peers[i].sock >= 0) {
            uint64_t n = nn_get_statistic(t->peers[i].sock, NN_STAT_CURRENT_CONNECTIONS);
            return n != (uint64_t)-1 && n > 0;
        }
    return false;
}

void net_transport_get_stats(const net_transport *t, net_transport_stats *st)
{
    if (t && st)
        *st = t->st;
}

void net_transport_get_faults(const net_transport *t, net_faults *f)
{
    if (t && f)
        *f = t->faults;
}
