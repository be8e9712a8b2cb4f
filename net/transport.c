/*
 * transport.c — a node's transport: its life cycle, the peer traffic over
 * nanomsg sockets and the fault injector in front of it (see transport.h
 * for the shape; the client port is transport_client.c).
 *
 * Why these socket types:
 *   - PULL/PUSH: Raft messages are one-way and idempotent; the core retries
 *     on its own timers, so a lost message costs a retry, while a blocked
 *     send would stall the whole loop.  One PUSH per peer keeps a slow or
 *     dead peer's queue from holding up the others (nanomsg would otherwise
 *     load-balance one PUSH across all its connections).
 *   - clients: plain TCP read and written by this thread (stream.h says
 *     why; transport_client.c).
 *
 * The fault injector sits in front of the real send: it decides drop /
 * duplicate / delay from its own seeded PRNG, and keeps delayed copies in a
 * binary min-heap ordered by release time (ties by arrival, so equal delays
 * keep their order).
 */
#include "net/transport.h"
#include "net/transport_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <nanomsg/tcp.h>
#include <sodium.h>

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

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

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
                "net: node %llu: fault injection ON: drop=%.3f dup=%.3f delay=%.3f:%d-%d "
                "seed=%llu\n",
                (unsigned long long)t->self_id, t->faults.drop, t->faults.dup, t->faults.delay,
                t->faults.delay_min_ms, t->faults.delay_max_ms, (unsigned long long)t->faults.seed);
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

    if (!cfg->no_client_socket && net_tp_client_listen(t, err, errlen) != NET_OK)
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
                       (unsigned long long)cfg->peers[i].id, cfg->peers[i].host,
                       cfg->peers[i].port);
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
    net_tp_client_close_all(t);
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

bool net_transport_is_peer_fd(const net_transport *t, int fd)
{
    return fd >= 0 && fd == t->pull_fd;
}

bool net_transport_is_client_fd(const net_transport *t, int fd)
{
    return fd >= 0 && fd == t->epfd;
}

/* ---- peer traffic ---- */

/* Seals msg (a frame of len bytes in a nanomsg message with room for the
 * trailer) and queues it to peer p; msg is taken whatever the outcome. */
static int seal_send(net_transport *t, tpeer *p, void *msg, size_t len)
{
    /* Sealed here, at the real send, so that the counter follows the order
     * frames leave in (the fault injector may hold some back). */
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

/* seal_send to peer_id; msg is taken whatever the outcome. */
static int raw_send_msg(net_transport *t, uint64_t peer_id, void *msg, size_t len)
{
    tpeer *p = find_peer(t, peer_id);
    if (!p || p->sock < 0) {
        nn_freemsg(msg);
        return NET_EINVAL;
    }
    return seal_send(t, p, msg, len);
}

static int raw_send(net_transport *t, uint64_t peer_id, const void *buf, size_t len)
{
    tpeer *p = find_peer(t, peer_id);
    if (!p || p->sock < 0)
        return NET_EINVAL;
    void *msg = nn_allocmsg(len + NET_TRAILER_LEN, 0);
    if (!msg) {
        t->st.peer_send_dropped++;
        return NET_EAGAIN;
    }
    memcpy(msg, buf, len);
    return seal_send(t, p, msg, len);
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
    t->heap[i] =
        (held){.due = due, .order = t->held_order++, .peer = peer_id, .buf = copy, .len = len};
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

void *net_peer_msg_alloc(size_t len)
{
    return len <= SIZE_MAX - NET_TRAILER_LEN ? nn_allocmsg(len + NET_TRAILER_LEN, 0) : NULL;
}

void net_peer_msg_free(void *msg)
{
    if (msg)
        nn_freemsg(msg);
}

int net_send_peer_msg(net_transport *t, uint64_t peer_id, void *msg, size_t len)
{
    if (!t || !msg)
        return NET_EINVAL;
    /* A message goes out at its allocated size: cut it to the frame (a
     * shrink keeps the memory in place). */
    void *exact = nn_reallocmsg(msg, len + NET_TRAILER_LEN);
    if (!exact) {
        nn_freemsg(msg);
        t->st.peer_send_dropped++;
        return NET_ENOMEM;
    }
    msg = exact;
    if (t->faults.on || atomic_load_explicit(&t->partitioned, memory_order_relaxed)) {
        /* the fault injector and the partition switch work on copies */
        int rc = net_send_peer(t, peer_id, msg, len);
        nn_freemsg(msg);
        return rc;
    }
    return raw_send_msg(t, peer_id, msg, len);
}

int net_send_peer(net_transport *t, uint64_t peer_id, const void *buf, size_t len)
{
    if (!t || (!buf && len))
        return NET_EINVAL;
    tpeer *p = find_peer(t, peer_id);
    if (!p)
        return NET_EINVAL;
    if (atomic_load_explicit(&t->partitioned, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&t->partition_dropped, 1, memory_order_relaxed);
        return NET_OK;
    }
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

void net_transport_tick(net_transport *t, uint64_t now_ms)
{
    if (!t)
        return;
    net_tp_client_sweep(t, now_ms);
    while (t->n_held > 0 && t->heap[0].due <= now_ms) {
        held h = heap_pop(t);
        if (atomic_load_explicit(&t->partitioned, memory_order_relaxed))
            atomic_fetch_add_explicit(&t->partition_dropped, 1, memory_order_relaxed);
        else if (find_peer(t, h.peer))
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
void net_tp_refusal_log(net_transport *t, const char *what, uint64_t count)
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
        if (atomic_load_explicit(&t->partitioned, memory_order_relaxed)) {
            atomic_fetch_add_explicit(&t->partition_dropped, 1, memory_order_relaxed);
            nn_freemsg(m);
            continue;
        }
        net_trailer tr;
        if (net_open(t->auth.peer, m, (size_t)n, &tr) != NET_OK || tr.sender == 0) {
            t->st.peer_auth_failed++;
            net_tp_refusal_log(t, "a peer frame whose MAC does not verify (wrong secret or forged)",
                               t->st.peer_auth_failed);
            nn_freemsg(m);
            continue;
        }
        if (!sender_accept(t, &tr)) {
            t->st.peer_replayed++;
            net_tp_refusal_log(t, "a replayed peer frame (older than its sender's newest)",
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

void net_transport_set_partitioned(net_transport *t, bool on)
{
    if (t)
        atomic_store(&t->partitioned, on);
}

bool net_transport_partitioned(const net_transport *t)
{
    return t && atomic_load(&((net_transport *)t)->partitioned);
}

uint64_t net_transport_partition_dropped(const net_transport *t)
{
    return t ? atomic_load(&((net_transport *)t)->partition_dropped) : 0;
}
