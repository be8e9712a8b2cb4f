/*
 * test_transport.c — the nanomsg transport on real loopback sockets: peers
 * exchange frames in order; outgoing connections start from the node's own
 * address; a peer that is down never blocks the sender; the TCP client
 * port answers requests out of order, each on its own connection, takes
 * bursts and large frames whole, drops replies for clients gone, and cuts off
 * a connection that sends something else than hstore frames; the fault
 * injector drops, duplicates and delays (reorders) at the configured rates.
 *
 * Ports are picked at random (seed printed) among free ones, so parallel
 * runs do not collide.  Every wait has a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <poll.h>
#include <sys/time.h>

#include "net/transport.h"
#include "tests/lib/testport.h"

/* ---- helpers ---- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A port P with P and P+1 free (peer and client sockets). */
static int free_port_pair(const char *ip)
{
    for (int tries = 0; tries < 1000; tries++) {
        int p = 20000 + (int)(rnd() % 20000) * 2;
        if (test_port_free(ip, p) && test_port_free(ip, p + 1))
            return p;
    }
    fail_msg("no free port pair");
    return -1;
}

static void mkcfg(net_transport_config *c, uint64_t id, const char *ip, int port)
{
    memset(c, 0, sizeof(*c));
    c->self_id = id;
    snprintf(c->host, sizeof(c->host), "%s", ip);
    c->port = port;
    c->faults = ""; /* off unless a test asks; ignore the environment */
}

static void addpeer(net_transport_config *c, uint64_t id, const char *ip, int port)
{
    net_peer *p = &c->peers[c->n_peers++];
    p->id = id;
    snprintf(p->host, sizeof(p->host), "%s", ip);
    p->port = port;
}

static net_transport *mk(const net_transport_config *c)
{
    char err[256] = "";
    net_transport *t = net_transport_new(c, err, sizeof(err));
    if (!t)
        fail_msg("net_transport_new: %s", err);
    return t;
}

/* How long a test waits for something that must happen before it fails:
 * far beyond what it takes, so that a loaded machine is never a failure. */
#define WAIT_MS 60000

static bool is_probe(const void *buf, size_t len)
{
    return len == 5 && memcmp(buf, "probe", 5) == 0;
}

/* The authenticated sender of the last frame received. */
static uint64_t last_from;

/* Receives one peer frame, polling up to timeout_ms. */
static int recv_wait(net_transport *t, int timeout_ms, void **buf, size_t *len)
{
    uint64_t end = net_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int rc = net_recv_peer(t, buf, len, &last_from);
        if (rc != NET_EAGAIN)
            return rc;
        uint64_t now = net_now_ms();
        if (now >= end)
            return NET_EAGAIN;
        struct pollfd fds[2];
        int n = net_transport_pollfds(t, fds, 2);
        uint64_t dl = net_transport_next_deadline(t);
        int wait = (int)(end - now);
        if (dl != UINT64_MAX)
            wait = dl <= now ? 0 : (int)(dl - now) < wait ? (int)(dl - now) : wait;
        poll(fds, (nfds_t)n, wait);
        net_transport_tick(t, net_now_ms());
    }
}

/* Sends until the connection is up (early sends see EAGAIN: no pipe yet). */
static void send_until_ok(net_transport *t, uint64_t peer, const void *buf, size_t len)
{
    uint64_t end = net_now_ms() + WAIT_MS;
    while (net_send_peer(t, peer, buf, len) != NET_OK) {
        if (net_now_ms() > end)
            fail_msg("peer %llu never became reachable", (unsigned long long)peer);
        usleep(2000);
    }
}

/* Waits until `from` can reach `to`: a probe gets through. */
static void connect_pair(net_transport *from, uint64_t to_id, net_transport *to)
{
    uint64_t end = net_now_ms() + WAIT_MS;
    for (;;) {
        send_until_ok(from, to_id, "probe", 5);
        void *b;
        size_t l;
        if (recv_wait(to, 100, &b, &l) == NET_OK) {
            net_msg_free(b);
            /* drain other probes */
            while (recv_wait(to, 50, &b, &l) == NET_OK)
                net_msg_free(b);
            return;
        }
        if (net_now_ms() > end)
            fail_msg("no probe arrived within %d s", WAIT_MS / 1000);
    }
}

static void seed_setup(void)
{
    const char *s = getenv("HSTORE_TEST_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)getpid() * 7919u + (uint64_t)time(NULL);
    rng_state = seed;
    printf("test_transport: seed %llu (HSTORE_TEST_SEED to replay)\n", (unsigned long long)seed);
}

/* ---- tests ---- */

static void test_two_nodes_exchange(void **state)
{
    (void)state;
    int pa = free_port_pair("127.0.0.1"), pb = free_port_pair("127.0.0.1");
    net_transport_config ca, cb;
    mkcfg(&ca, 1, "127.0.0.1", pa);
    addpeer(&ca, 1, "127.0.0.1", pa); /* self entries are ignored */
    addpeer(&ca, 2, "127.0.0.1", pb);
    mkcfg(&cb, 2, "127.0.0.1", pb);
    addpeer(&cb, 1, "127.0.0.1", pa);
    net_transport *a = mk(&ca), *b = mk(&cb);

    struct pollfd fds[4];
    assert_int_equal(net_transport_pollfds(a, fds, 4), 2);
    assert_true(net_transport_is_peer_fd(a, fds[0].fd));
    assert_true(net_transport_is_client_fd(a, fds[1].fd));
    assert_int_equal(net_transport_pollfds(a, fds, 1), 1);

    connect_pair(a, 2, b);
    connect_pair(b, 1, a);
    assert_true(net_transport_peer_connected(a, 2));
    assert_false(net_transport_peer_connected(a, 99));
    /* 200 frames each way, in order, intact */
    char msg[64];
    for (int i = 0; i < 200; i++) {
        int n = snprintf(msg, sizeof(msg), "a->b %d", i);
        assert_int_equal(net_send_peer(a, 2, msg, (size_t)n), NET_OK);
        n = snprintf(msg, sizeof(msg), "b->a %d", i);
        assert_int_equal(net_send_peer(b, 1, msg, (size_t)n), NET_OK);
    }
    for (int i = 0; i < 200; i++) {
        void *buf;
        size_t len;
        assert_int_equal(recv_wait(b, WAIT_MS, &buf, &len), NET_OK);
        int n = snprintf(msg, sizeof(msg), "a->b %d", i);
        assert_int_equal(len, (size_t)n);
        assert_memory_equal(buf, msg, len);
        net_msg_free(buf);
        assert_int_equal(recv_wait(a, WAIT_MS, &buf, &len), NET_OK);
        n = snprintf(msg, sizeof(msg), "b->a %d", i);
        assert_memory_equal(buf, msg, len);
        net_msg_free(buf);
    }
    void *buf;
    size_t len;
    assert_int_equal(net_recv_peer(a, &buf, &len, &last_from), NET_EAGAIN);
    /* a large frame (above nanomsg's default 1 MiB receive limit) */
    size_t big = 3u << 20;
    uint8_t *p = malloc(big);
    for (size_t i = 0; i < big; i++)
        p[i] = (uint8_t)(i * 13);
    assert_int_equal(net_send_peer(a, 2, p, big), NET_OK);
    assert_int_equal(recv_wait(b, WAIT_MS, &buf, &len), NET_OK);
    assert_int_equal(len, big);
    assert_memory_equal(buf, p, big);
    net_msg_free(buf);
    /* the same sent in place from a message with room to spare: the peer
     * gets exactly the frame, and its MAC verifies */
    void *m = net_peer_msg_alloc(big + 4096);
    assert_non_null(m);
    memcpy(m, p, big - 1);
    assert_int_equal(net_send_peer_msg(a, 2, m, big - 1), NET_OK);
    assert_int_equal(recv_wait(b, WAIT_MS, &buf, &len), NET_OK);
    assert_int_equal(len, big - 1);
    assert_memory_equal(buf, p, big - 1);
    assert_int_equal(last_from, 1);
    net_msg_free(buf);
    free(p);
    m = net_peer_msg_alloc(16);
    assert_non_null(m);
    assert_int_equal(net_send_peer_msg(a, 77, m, 1), NET_EINVAL); /* taken all the same */

    /* unknown peer */
    assert_int_equal(net_send_peer(a, 77, "x", 1), NET_EINVAL);
    net_transport_stats st;
    net_transport_get_stats(b, &st);
    assert_true(st.peer_recv >= 201);
    net_transport_free(a);
    net_transport_free(b);
}

/* The partition switch drops peer frames both ways while on, and traffic
 * flows again once it is off. */
static void test_partition_switch(void **state)
{
    (void)state;
    int pa = free_port_pair("127.0.0.1"), pb = free_port_pair("127.0.0.1");
    net_transport_config ca, cb;
    mkcfg(&ca, 1, "127.0.0.1", pa);
    addpeer(&ca, 2, "127.0.0.1", pb);
    mkcfg(&cb, 2, "127.0.0.1", pb);
    addpeer(&cb, 1, "127.0.0.1", pa);
    net_transport *a = mk(&ca), *b = mk(&cb);
    connect_pair(a, 2, b);
    connect_pair(b, 1, a);
    assert_false(net_transport_partitioned(a));

    net_transport_set_partitioned(a, true);
    assert_true(net_transport_partitioned(a));
    void *buf;
    size_t len;
    /* a's sends are dropped (and reported sent, as a frame lost on the wire) */
    for (int i = 0; i < 10; i++)
        assert_int_equal(net_send_peer(a, 2, "lost", 4), NET_OK);
    assert_int_equal(recv_wait(b, 300, &buf, &len), NET_EAGAIN);
    /* what b sends reaches a's socket but is dropped unread */
    for (int i = 0; i < 10; i++)
        send_until_ok(b, 1, "lost", 4);
    assert_int_equal(recv_wait(a, 300, &buf, &len), NET_EAGAIN);
    assert_true(net_transport_partition_dropped(a) >= 11);

    net_transport_set_partitioned(a, false);
    assert_false(net_transport_partitioned(a));
    send_until_ok(a, 2, "back", 4);
    assert_int_equal(recv_wait(b, WAIT_MS, &buf, &len), NET_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(buf, "back", 4);
    net_msg_free(buf);
    send_until_ok(b, 1, "back", 4);
    assert_int_equal(recv_wait(a, WAIT_MS, &buf, &len), NET_OK);
    assert_memory_equal(buf, "back", 4);
    net_msg_free(buf);
    net_transport_free(a);
    net_transport_free(b);
}

/* Finds an established TCP connection local_ip:* -> remote_ip:remote_port in
 * /proc/net/tcp (addresses there are hex in network byte order). */
static bool tcp_conn_exists(const char *local_ip, const char *remote_ip, int remote_port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        return false;
    struct in_addr l, r;
    inet_pton(AF_INET, local_ip, &l);
    inet_pton(AF_INET, remote_ip, &r);
    char line[512];
    bool found = false;
    if (!fgets(line, sizeof(line), f)) {
        fclose(f);
        return false;
    }
    while (fgets(line, sizeof(line), f)) {
        unsigned la, lp, ra, rp, st;
        if (sscanf(line, " %*d: %x:%x %x:%x %x", &la, &lp, &ra, &rp, &st) != 5)
            continue;
        if (la == l.s_addr && ra == r.s_addr && (int)rp == remote_port && st == 1)
            found = true;
    }
    fclose(f);
    return found;
}

static void test_outgoing_from_own_address(void **state)
{
    (void)state;
    /* Two loopback addresses other than 127.0.0.1: without binding the
     * local end, the kernel would pick 127.0.0.1 or the destination. */
    const char *ipa = "127.0.0.3", *ipb = "127.0.0.2";
    if (!test_port_free(ipa, 40001) && !test_port_free(ipa, 40003))
        fail_msg("cannot bind 127.0.0.3 on this machine");
    int pa = free_port_pair(ipa), pb = free_port_pair(ipb);
    net_transport_config ca, cb;
    mkcfg(&ca, 1, ipa, pa);
    addpeer(&ca, 2, ipb, pb);
    ca.no_client_socket = true;
    mkcfg(&cb, 2, ipb, pb);
    addpeer(&cb, 1, ipa, pa);
    cb.no_client_socket = true;
    net_transport *a = mk(&ca), *b = mk(&cb);
    struct pollfd fds[2];
    assert_int_equal(net_transport_pollfds(a, fds, 2), 1);
    connect_pair(a, 2, b);
    assert_true(tcp_conn_exists(ipa, ipb, pb));
    assert_false(tcp_conn_exists("127.0.0.1", ipb, pb));
    net_transport_free(a);
    net_transport_free(b);
}

static void test_down_peer_never_blocks(void **state)
{
    (void)state;
    int pa = free_port_pair("127.0.0.1"), pdown = free_port_pair("127.0.0.1");
    net_transport_config ca;
    mkcfg(&ca, 1, "127.0.0.1", pa);
    addpeer(&ca, 2, "127.0.0.1", pdown); /* nobody listens there */
    net_transport *a = mk(&ca);
    uint8_t msg[4096] = {0};
    uint64_t t0 = net_now_ms();
    int eagain = 0;
    for (int i = 0; i < 2000; i++) {
        int rc = net_send_peer(a, 2, msg, sizeof(msg));
        assert_true(rc == NET_OK || rc == NET_EAGAIN);
        eagain += rc == NET_EAGAIN;
    }
    uint64_t dt = net_now_ms() - t0;
    printf("2000 sends to a down peer: %llu ms, %d dropped\n", (unsigned long long)dt, eagain);
    /* a blocking send would wait forever (or for its full timeout each,
     * 2000 times): only that is caught, not a slow machine */
    assert_true(dt < WAIT_MS);
    assert_int_equal(eagain, 2000);
    assert_false(net_transport_peer_connected(a, 2));
    net_transport_stats st;
    net_transport_get_stats(a, &st);
    assert_int_equal(st.peer_send_dropped, 2000);
    net_transport_free(a);
}

static void test_peer_restart_reconnects(void **state)
{
    (void)state;
    int pa = free_port_pair("127.0.0.1"), pb = free_port_pair("127.0.0.1");
    net_transport_config ca, cb;
    mkcfg(&ca, 1, "127.0.0.1", pa);
    addpeer(&ca, 2, "127.0.0.1", pb);
    mkcfg(&cb, 2, "127.0.0.1", pb);
    net_transport *a = mk(&ca), *b = mk(&cb);
    connect_pair(a, 2, b);
    /* b crashes: a's sends keep returning at once */
    net_transport_free(b);
    uint64_t t0 = net_now_ms();
    for (int i = 0; i < 100; i++) {
        int rc = net_send_peer(a, 2, "lost", 4);
        assert_true(rc == NET_OK || rc == NET_EAGAIN);
        usleep(1000);
    }
    assert_true(net_now_ms() - t0 < WAIT_MS); /* the sends did not block */
    /* b restarts on the same address: a reconnects by itself */
    b = mk(&cb);
    connect_pair(a, 2, b);
    assert_true(net_transport_peer_connected(a, 2));
    net_transport_free(a);
    net_transport_free(b);
}

static void test_bind_conflict_reported(void **state)
{
    (void)state;
    int pa = free_port_pair("127.0.0.1");
    net_transport_config ca;
    mkcfg(&ca, 1, "127.0.0.1", pa);
    net_transport *a = mk(&ca);
    char err[256] = "";
    net_transport *b = net_transport_new(&ca, err, sizeof(err));
    assert_null(b);
    assert_non_null(strstr(err, "127.0.0.1"));
    net_transport_free(a);
    /* a bad fault spec is refused with a message */
    ca.faults = "drop=2";
    assert_null(net_transport_new(&ca, err, sizeof(err)));
    assert_non_null(strstr(err, "drop"));
}

/* A plain blocking TCP client of the node's client port. */
static int tcp_client(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return s;
}

/* Client sessions of the raw test clients, by descriptor. */
static net_session sess[4096];

/* Pumps transport t until fd is readable (or 5 s pass). */
static void pump_until_readable(net_transport *t, int fd)
{
    uint64_t end = net_now_ms() + 5000;
    while (net_now_ms() < end) {
        net_client_msg m;
        if (net_recv_client(t, &m) == NET_OK)
            fail_msg("a request came before the handshake finished");
        net_transport_flush(t);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10) > 0)
            return;
    }
}

static int recv_exact(int s, void *buf, size_t n);
static void send_all(int s, const void *p, size_t n);

/* The HELLO of a raw client with keys a and nonce cn. */
static void send_hello(int s, const net_auth *a, const uint8_t cn[NET_NONCE_LEN])
{
    net_buf b = {0};
    net_trailer tr = {0, 0, 0};
    assert_int_equal(net_encode_hello(cn, &b), NET_OK);
    assert_int_equal(net_seal_hs(a->req, NULL, 0, &tr, &b), NET_OK);
    send_all(s, b.p, b.len);
    net_buf_free(&b);
}

/* A raw client connection to t's client port that has completed the
 * handshake (the test thread drives t meanwhile). */
static int tcp_client_auth(net_transport *t, int port)
{
    int s = tcp_client(port);
    assert_true(s < (int)(sizeof sess / sizeof sess[0]));
    net_auth a;
    net_auth_get_default(&a);
    uint8_t cn[NET_NONCE_LEN];
    for (int i = 0; i < NET_NONCE_LEN; i++)
        cn[i] = (uint8_t)(rand() & 0xff);
    send_hello(s, &a, cn);
    pump_until_readable(t, s);
    uint8_t ack[NET_HDR_LEN + 8 + NET_NONCE_LEN + NET_TRAILER_LEN], sn[NET_NONCE_LEN];
    assert_int_equal(recv_exact(s, ack, sizeof ack), 0);
    net_trailer tr;
    assert_int_equal(net_open_hs(a.resp, cn, sizeof cn, ack, sizeof ack, &tr), NET_OK);
    uint64_t id;
    assert_int_equal(net_decode_hello_ack(ack, sizeof ack - NET_TRAILER_LEN, &id, sn), NET_OK);
    memset(&sess[s], 0, sizeof sess[s]);
    memcpy(sess[s].ctx, cn, NET_NONCE_LEN);
    memcpy(sess[s].ctx + NET_NONCE_LEN, sn, NET_NONCE_LEN);
    sess[s].node_id = id;
    net_session_keys(&a, &sess[s]);
    return s;
}

/* Sends frame f[0..n) on an authenticated raw client, sealed. */
static void send_sealed(int s, const void *f, size_t n)
{
    net_auth a;
    net_auth_get_default(&a);
    net_buf b = {0};
    b.p = malloc(n);
    memcpy(b.p, f, n);
    b.len = b.cap = n;
    assert_int_equal(net_session_seal_req(&a, &sess[s], &b), NET_OK);
    send_all(s, b.p, b.len);
    net_buf_free(&b);
}

/* Receives one sealed reply of n bytes (without trailer) into buf and
 * verifies it: 0 on success. */
static int recv_sealed(int s, void *buf, size_t n)
{
    net_auth a;
    net_auth_get_default(&a);
    uint8_t *tmp = malloc(n + NET_TRAILER_LEN);
    int rc = recv_exact(s, tmp, n + NET_TRAILER_LEN);
    size_t plen = 0;
    if (rc == 0 && net_session_open_resp(&a, &sess[s], tmp, n + NET_TRAILER_LEN, &plen) != NET_OK)
        rc = -1;
    if (rc == 0)
        memcpy(buf, tmp, n);
    free(tmp);
    return rc;
}

/* A well-framed request: a STATUS_REQ frame with req_id id. */
static size_t frame(uint64_t id, uint8_t *out, size_t cap)
{
    net_buf b = {0};
    assert_int_equal(net_encode_status_req(id, &b), NET_OK);
    assert_true(b.len <= cap);
    memcpy(out, b.p, b.len);
    size_t n = b.len;
    net_buf_free(&b);
    return n;
}

static void send_all(int s, const void *p, size_t n)
{
    const uint8_t *q = p;
    while (n) {
        ssize_t w = send(s, q, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        q += w;
        n -= (size_t)w;
    }
}

/* Reads exactly one reply frame (the transport's framing) of payload length
 * wanting `len` bytes in all; returns 0 on a match with `want`. */
static int recv_exact(int s, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = recv(s, p, n, 0);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int recv_client_wait(net_transport *t, net_client_msg *m)
{
    uint64_t end = net_now_ms() + WAIT_MS;
    for (;;) {
        int rc = net_recv_client(t, m);
        if (rc != NET_EAGAIN || net_now_ms() > end)
            return rc;
        struct pollfd fds[2];
        int n = net_transport_pollfds(t, fds, 2);
        poll(fds, (nfds_t)n, 50);
    }
}

static uint64_t status_id(const net_client_msg *m)
{
    uint64_t id = 0;
    assert_int_equal(net_decode_status_req(m->body, m->len, &id), NET_OK);
    return id;
}

static void test_client_requests_answered_out_of_order(void **state)
{
    (void)state;
    int pa = free_port_pair("127.0.0.1");
    net_transport_config ca;
    mkcfg(&ca, 1, "127.0.0.1", pa);
    net_transport *a = mk(&ca);
    int c1 = tcp_client_auth(a, pa + 1), c2 = tcp_client_auth(a, pa + 1);
    uint8_t f[64], r1[64], r2[64];
    size_t fl = frame(1, f, sizeof f);
    send_sealed(c1, f, fl);
    net_client_msg m1, m2;
    assert_int_equal(recv_client_wait(a, &m1), NET_OK);
    fl = frame(2, f, sizeof f);
    send_sealed(c2, f, fl);
    assert_int_equal(recv_client_wait(a, &m2), NET_OK);
    assert_int_equal(status_id(&m1), 1);
    assert_int_equal(status_id(&m2), 2);
    /* answer the second first; each answer goes to its own connection */
    size_t l2 = frame(202, r2, sizeof r2), l1 = frame(101, r1, sizeof r1);
    assert_int_equal(net_reply_client(a, &m2, r2, l2), NET_OK);
    assert_null(m2.body);
    net_transport_flush(a);
    uint8_t got[64];
    assert_int_equal(recv_sealed(c2, got, l2), 0);
    assert_memory_equal(got, r2, l2);
    assert_int_equal(net_reply_client(a, &m1, r1, l1), NET_OK);
    net_transport_flush(a);
    assert_int_equal(recv_sealed(c1, got, l1), 0);
    assert_memory_equal(got, r1, l1);

    /* 1,000 requests in one write are all read, in order; their answers,
     * queued together, all arrive, in the order given */
    enum { N = 1000 };
    size_t one = frame(0, f, sizeof f);
    uint8_t *burst = malloc(N * one);
    net_auth au;
    net_auth_get_default(&au);
    net_buf sealed = {0};
    for (int i = 0; i < N; i++) {
        frame(1000 + (uint64_t)i, burst + (size_t)i * one, one);
        net_buf b1 = {0};
        b1.p = malloc(one);
        memcpy(b1.p, burst + (size_t)i * one, one);
        b1.len = b1.cap = one;
        assert_int_equal(net_session_seal_req(&au, &sess[c1], &b1), NET_OK);
        sealed.p = realloc(sealed.p, sealed.len + b1.len);
        memcpy(sealed.p + sealed.len, b1.p, b1.len);
        sealed.len += b1.len;
        net_buf_free(&b1);
    }
    send_all(c1, sealed.p, sealed.len);
    free(sealed.p);
    net_client_msg *ms = calloc(N, sizeof(*ms));
    for (int i = 0; i < N; i++) {
        assert_int_equal(recv_client_wait(a, &ms[i]), NET_OK);
        assert_int_equal(status_id(&ms[i]), 1000 + (uint64_t)i);
    }
    for (int i = N - 1; i >= 0; i--)
        assert_int_equal(net_reply_client(a, &ms[i], burst + (size_t)i * one, one), NET_OK);
    net_transport_flush(a);
    uint8_t *back = malloc(N * one);
    for (int i = 0; i < N; i++)
        assert_int_equal(recv_sealed(c1, back + (size_t)i * one, one), 0);
    for (int i = 0; i < N; i++)
        assert_memory_equal(back + (size_t)i * one, burst + (size_t)(N - 1 - i) * one, one);
    free(back);
    free(ms);
    free(burst);

    /* a reply to a client that has gone away is dropped (NET_EIO), also
     * when a new connection took its slot */
    fl = frame(3, f, sizeof f);
    send_sealed(c2, f, fl);
    assert_int_equal(recv_client_wait(a, &m2), NET_OK);
    close(c2);
    net_client_msg m3;
    for (int i = 0; i < 100 && net_recv_client(a, &m3) == NET_EAGAIN; i++)
        usleep(10 * 1000); /* the transport notices the close */
    int c3 = tcp_client_auth(a, pa + 1);
    fl = frame(4, f, sizeof f);
    send_sealed(c3, f, fl);
    assert_int_equal(recv_client_wait(a, &m3), NET_OK);
    assert_int_equal(status_id(&m3), 4);
    assert_int_equal(net_reply_client(a, &m2, "late", 4), NET_EIO);
    assert_int_equal(net_reply_client(a, &m3, f, fl), NET_OK);
    net_transport_flush(a);
    assert_int_equal(recv_sealed(c3, got, fl), 0);
    assert_memory_equal(got, f, fl);

    net_transport_stats st;
    net_transport_get_stats(a, &st);
    assert_int_equal(st.client_recv, 4 + N);
    assert_int_equal(st.client_reply_failed, 1);
    close(c1);
    close(c3);
    net_transport_free(a);
}

/* Bytes that are not hstore frames cut that connection off, and only it; a
 * frame larger than one read arrives whole. */
static void test_client_garbage_and_large_frames(void **state)
{
    (void)state;
    int pa = free_port_pair("127.0.0.1");
    net_transport_config ca;
    mkcfg(&ca, 1, "127.0.0.1", pa);
    net_transport *a = mk(&ca);
    int good = tcp_client_auth(a, pa + 1), bad = tcp_client(pa + 1);
    send_all(bad, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    net_client_msg m;
    uint64_t end = net_now_ms() + WAIT_MS;
    net_transport_stats st;
    do {
        assert_int_equal(net_recv_client(a, &m), NET_EAGAIN);
        usleep(5 * 1000);
        net_transport_get_stats(a, &st);
    } while (st.client_conns_bad == 0 && net_now_ms() < end);
    assert_int_equal(st.client_conns_bad, 1);
    char c;
    assert_int_equal(recv(bad, &c, 1, 0), 0); /* closed by the node */
    close(bad);

    /* a 3 MiB client request, e.g. a large PUT */
    net_client_req q = {.client_id = 9, .seq = 1, .req_id = 77};
    size_t big = 3u << 20;
    uint8_t *op = malloc(big);
    for (size_t i = 0; i < big; i++)
        op[i] = (uint8_t)(i * 7);
    q.op = op;
    q.op_len = (uint32_t)big;
    net_buf b = {0};
    assert_int_equal(net_encode_client_req(&q, &b), NET_OK);
    send_sealed(good, b.p, b.len);
    assert_int_equal(recv_client_wait(a, &m), NET_OK);
    net_client_req got;
    assert_int_equal(net_decode_client_req(m.body, m.len, &got), NET_OK);
    assert_int_equal(got.req_id, 77);
    assert_int_equal(got.op_len, big);
    assert_memory_equal(got.op, op, big);
    net_client_msg_drop(&m);
    net_buf_free(&b);
    free(op);
    close(good);
    net_transport_free(a);
}

static void test_fault_spec_parsing(void **state)
{
    (void)state;
    net_faults f;
    char err[160];
    assert_int_equal(
        net_faults_parse("drop=0.1,dup=0.05,delay=0.3:5-50,seed=42", &f, err, sizeof(err)), NET_OK);
    assert_true(f.on);
    assert_true(f.drop > 0.0999 && f.drop < 0.1001);
    assert_true(f.dup > 0.0499 && f.dup < 0.0501);
    assert_true(f.delay > 0.2999 && f.delay < 0.3001);
    assert_int_equal(f.delay_min_ms, 5);
    assert_int_equal(f.delay_max_ms, 50);
    assert_int_equal(f.seed, 42);
    assert_int_equal(net_faults_parse("", &f, err, sizeof(err)), NET_OK);
    assert_false(f.on);
    assert_int_equal(net_faults_parse(NULL, &f, err, sizeof(err)), NET_OK);
    assert_false(f.on);
    const char *bad[] = {"drop=1.5", "dup=-0.1", "delay=0.3", "delay=0.3:50-5", "delay=0.3:5-50x",
                         "loss=0.1", "drop",     "seed=abc",  "drop=0.1,,dup=x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(net_faults_parse(bad[i], &f, err, sizeof(err)), NET_EINVAL);
        assert_true(err[0] != '\0');
        assert_false(f.on);
    }
}

/* Counts frames arriving at t until none comes for quiet_ms. */
static int drain_count(net_transport *t, int quiet_ms, int *seen, int nseen, int *dups)
{
    int n = 0;
    void *buf;
    size_t len;
    while (recv_wait(t, quiet_ms, &buf, &len) == NET_OK) {
        if (is_probe(buf, len)) { /* a late one of connect_pair's */
            net_msg_free(buf);
            continue;
        }
        int i = -1;
        if (len == sizeof(int)) {
            memcpy(&i, buf, sizeof(int));
            if (i >= 0 && i < nseen) {
                if (seen[i]++)
                    (*dups)++;
            }
        }
        net_msg_free(buf);
        n++;
    }
    return n;
}

static void test_fault_injector_rates(void **state)
{
    (void)state;
    int pa = free_port_pair("127.0.0.1"), pb = free_port_pair("127.0.0.1");
    net_transport_config ca, cb;
    mkcfg(&ca, 1, "127.0.0.1", pa);
    addpeer(&ca, 2, "127.0.0.1", pb);
    ca.no_client_socket = true;
    char spec[64];
    uint64_t fseed = rnd() % 1000000;
    snprintf(spec, sizeof(spec), "drop=0.2,dup=0.1,seed=%llu", (unsigned long long)fseed);
    ca.faults = spec;
    mkcfg(&cb, 2, "127.0.0.1", pb);
    cb.no_client_socket = true;
    net_transport *a = mk(&ca), *b = mk(&cb);
    net_faults f;
    net_transport_get_faults(a, &f);
    assert_true(f.on);
    assert_int_equal(f.seed, fseed);
    connect_pair(a, 2, b);

    net_transport_stats s0, s1;
    net_transport_get_stats(a, &s0);
    const int N = 4000;
    int *seen = calloc(N, sizeof(int)), dups = 0;
    for (int i = 0; i < N; i++) {
        int rc = net_send_peer(a, 2, &i, sizeof(i));
        assert_int_equal(rc, NET_OK);
    }
    /* The injector decides at each send; wait until exactly what it let
     * through has arrived (however slowly), then for any surplus. */
    net_transport_get_stats(a, &s1);
    int want = N - (int)(s1.fault_dropped - s0.fault_dropped) +
               (int)(s1.fault_duplicated - s0.fault_duplicated);
    int got = 0;
    uint64_t end = net_now_ms() + WAIT_MS;
    while (got < want && net_now_ms() < end)
        got += drain_count(b, 100, seen, N, &dups);
    got += drain_count(b, 200, seen, N, &dups);
    double drop = (double)(s1.fault_dropped - s0.fault_dropped) / N;
    double dup = (double)(s1.fault_duplicated - s0.fault_duplicated) / (N * (1 - drop));
    int distinct = 0;
    for (int i = 0; i < N; i++)
        distinct += seen[i] > 0;
    printf("faults seed %llu: sent %d, dropped %.3f, duplicated %.3f, received %d (%d distinct, "
           "%d duplicates)\n",
           (unsigned long long)fseed, N, drop, dup, got, distinct, dups);
    /* 4000 trials: 0.2 +- 0.04 and 0.1 +- 0.035 are > 6 standard deviations */
    assert_true(drop > 0.16 && drop < 0.24);
    assert_true(dup > 0.065 && dup < 0.135);
    /* what the injector did is what the receiver saw (loopback loses nothing) */
    assert_int_equal(distinct, N - (int)(s1.fault_dropped - s0.fault_dropped));
    assert_int_equal(dups, (int)(s1.fault_duplicated - s0.fault_duplicated));
    free(seen);
    net_transport_free(a);
    net_transport_free(b);
}

static void test_fault_delay_reorders(void **state)
{
    (void)state;
    int pa = free_port_pair("127.0.0.1"), pb = free_port_pair("127.0.0.1");
    net_transport_config ca, cb;
    mkcfg(&ca, 1, "127.0.0.1", pa);
    addpeer(&ca, 2, "127.0.0.1", pb);
    ca.no_client_socket = true;
    mkcfg(&cb, 2, "127.0.0.1", pb);
    cb.no_client_socket = true;
    /* through the environment variable, as cluster tests switch it on */
    setenv("HSTORE_NET_FAULTS", "delay=1:5-50,seed=3", 1);
    ca.faults = NULL;
    net_transport *a = mk(&ca), *b = mk(&cb);
    unsetenv("HSTORE_NET_FAULTS");
    net_faults f;
    net_transport_get_faults(a, &f);
    assert_true(f.on);
    assert_int_equal(f.delay_max_ms, 50);

    /* warm up: held probes go out from tick() */
    uint64_t end = net_now_ms() + WAIT_MS;
    void *buf;
    size_t len;
    for (;;) {
        net_send_peer(a, 2, "probe", 5);
        assert_true(net_transport_next_deadline(a) != UINT64_MAX);
        uint64_t wait_until = net_now_ms() + 60;
        while (net_now_ms() < wait_until) {
            usleep(5000);
            net_transport_tick(a, net_now_ms());
        }
        if (recv_wait(b, 50, &buf, &len) == NET_OK) {
            net_msg_free(buf);
            break;
        }
        assert_true(net_now_ms() < end);
    }
    while (recv_wait(b, 100, &buf, &len) == NET_OK)
        net_msg_free(buf);

    const int N = 300;
    uint64_t t0 = net_now_ms();
    for (int i = 0; i < N; i++)
        assert_int_equal(net_send_peer(a, 2, &i, sizeof(i)), NET_OK);
    uint64_t dl = net_transport_next_deadline(a);
    assert_true(dl >= t0 + 5 && dl <= net_now_ms() + 50);
    /* nothing leaves before tick() releases it */
    assert_int_equal(recv_wait(b, 2, &buf, &len), NET_EAGAIN);
    int got = 0, inversions = 0, last = -1;
    int *seen = calloc(N, sizeof(int));
    end = net_now_ms() + WAIT_MS;
    while (got < N && net_now_ms() < end) {
        net_transport_tick(a, net_now_ms());
        while (net_recv_peer(b, &buf, &len, &last_from) == NET_OK) {
            if (is_probe(buf, len)) { /* a late one of the warm-up */
                net_msg_free(buf);
                continue;
            }
            int i;
            assert_int_equal(len, sizeof(int));
            memcpy(&i, buf, sizeof(i));
            assert_true(i >= 0 && i < N);
            assert_int_equal(seen[i]++, 0);
            inversions += i < last;
            last = i;
            got++;
            net_msg_free(buf);
        }
        usleep(1000);
    }
    printf("delay: %d of %d delivered, %d out of order\n", got, N, inversions);
    assert_int_equal(got, N);
    assert_true(inversions > 0);
    assert_int_equal(net_transport_next_deadline(a), UINT64_MAX);
    free(seen);
    net_transport_free(a);
    net_transport_free(b);
}

static int setup(void **state)
{
    (void)state;
    seed_setup();
    return 0;
}

/* ---- authentication and client-port bounds ---- */

/* Peer frames MAC'ed with another key are dropped and counted; a frame with
 * the right key is taken, with its authenticated sender; the same frame
 * again (a replay) is dropped, a later one taken. */
static void test_peer_auth_and_replay(void **state)
{
    (void)state;
    int pa = free_port_pair("127.0.0.1");
    net_transport_config ca;
    mkcfg(&ca, 1, "127.0.0.1", pa);
    ca.no_client_socket = true;
    net_auth good, bad;
    uint8_t s1[32], s2[32];
    memset(s1, 1, sizeof s1);
    memset(s2, 2, sizeof s2);
    net_auth_from_secret(&good, s1, sizeof s1);
    net_auth_from_secret(&bad, s2, sizeof s2);
    ca.auth = &good;
    net_transport *a = mk(&ca);
    int push = nn_socket(AF_SP, NN_PUSH);
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", pa);
    assert_true(push >= 0 && nn_connect(push, url) >= 0);
    net_buf f = {0};
    assert_int_equal(net_encode_status_req(5, &f), NET_OK);
    size_t flen = f.len;
    net_trailer tr = {7, 100, 1};
    /* wrong key */
    assert_int_equal(net_seal(bad.peer, &tr, &f), NET_OK);
    assert_true(nn_send(push, f.p, f.len, 0) >= 0);
    /* right key, twice the same, then the next counter */
    f.len = flen;
    assert_int_equal(net_seal(good.peer, &tr, &f), NET_OK);
    assert_true(nn_send(push, f.p, f.len, 0) >= 0);
    assert_true(nn_send(push, f.p, f.len, 0) >= 0);
    f.len = flen;
    tr.ctr = 2;
    assert_int_equal(net_seal(good.peer, &tr, &f), NET_OK);
    assert_true(nn_send(push, f.p, f.len, 0) >= 0);
    void *buf;
    size_t len;
    int got = 0;
    uint64_t end = net_now_ms() + 5000;
    net_transport_stats st;
    do {
        if (recv_wait(a, 50, &buf, &len) == NET_OK) {
            assert_int_equal(len, flen);
            assert_memory_equal(buf, f.p, flen);
            assert_int_equal(last_from, 7);
            net_msg_free(buf);
            got++;
        }
        net_transport_get_stats(a, &st);
    } while ((got < 2 || st.peer_auth_failed < 1 || st.peer_replayed < 1) && net_now_ms() < end);
    assert_int_equal(got, 2);
    assert_int_equal(st.peer_auth_failed, 1);
    assert_int_equal(st.peer_replayed, 1);
    net_buf_free(&f);
    nn_close(push);
    net_transport_free(a);
}

/* Reads what the node sends on fd until it closes (or 5 s pass), driving t;
 * returns the refusal code of an ERROR frame seen, 0 if none, -1 if the
 * connection stayed open. */
static int refusal_then_close(net_transport *t, int fd)
{
    uint8_t buf[512];
    size_t have = 0;
    uint64_t end = net_now_ms() + 5000;
    while (net_now_ms() < end) {
        net_client_msg m;
        if (net_recv_client(t, &m) == NET_OK)
            net_client_msg_drop(&m);
        net_transport_flush(t);
        net_transport_tick(t, net_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10) <= 0)
            continue;
        ssize_t n = recv(fd, buf + have, sizeof buf - have, MSG_DONTWAIT);
        if (n > 0) {
            have += (size_t)n;
            continue;
        }
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            uint8_t code = 0;
            if (have > NET_TRAILER_LEN &&
                net_decode_error(buf, have - NET_TRAILER_LEN, &code) == NET_OK)
                return code;
            return 0;
        }
    }
    return -1;
}

/* A client with the wrong key, or that sends a request before its HELLO,
 * gets an ERROR frame saying "not authorized" and is closed; so is one
 * whose request carries a bad MAC after a good handshake. */
static void test_client_auth_refused(void **state)
{
    (void)state;
    int pa = free_port_pair("127.0.0.1");
    net_transport_config ca;
    mkcfg(&ca, 1, "127.0.0.1", pa);
    net_transport *a = mk(&ca);
    net_auth wrong;
    uint8_t sw[32];
    memset(sw, 9, sizeof sw);
    net_auth_from_secret(&wrong, sw, sizeof sw);
    uint8_t cn[NET_NONCE_LEN] = {1, 2, 3};
    int c1 = tcp_client(pa + 1);
    send_hello(c1, &wrong, cn);
    assert_int_equal(refusal_then_close(a, c1), NET_REFUSE_AUTH);
    close(c1);

    uint8_t f[64];
    size_t fl = frame(1, f, sizeof f);
    int c2 = tcp_client(pa + 1);
    send_all(c2, f, fl); /* no handshake, no trailer */
    assert_int_equal(refusal_then_close(a, c2), NET_REFUSE_AUTH);
    close(c2);

    int c3 = tcp_client_auth(a, pa + 1);
    net_auth au;
    net_auth_get_default(&au);
    net_buf b = {0};
    b.p = malloc(fl);
    memcpy(b.p, f, fl);
    b.len = b.cap = fl;
    assert_int_equal(net_session_seal_req(&au, &sess[c3], &b), NET_OK);
    b.p[b.len - 1] ^= 0x80; /* tamper with the tag */
    send_all(c3, b.p, b.len);
    net_buf_free(&b);
    assert_int_equal(refusal_then_close(a, c3), NET_REFUSE_AUTH);
    close(c3);

    net_transport_stats st;
    net_transport_get_stats(a, &st);
    assert_int_equal(st.client_auth_failed, 3);
    assert_int_equal(st.client_recv, 0);
    net_transport_free(a);
}

/* The connection limit: with max_conns 2 held by authenticated, busy
 * connections a third is refused with NET_REFUSE_BUSY; a connection that
 * never authenticates is displaced by a new one; a frame over max_frame
 * closes its connection with NET_REFUSE_TOO_LARGE; an idle connection is
 * closed after idle_ms. */
static void test_client_limits(void **state)
{
    (void)state;
    int pa = free_port_pair("127.0.0.1");
    net_transport_config ca;
    mkcfg(&ca, 1, "127.0.0.1", pa);
    ca.limits.max_conns = 2;
    ca.limits.max_frame = 4096;
    ca.limits.idle_ms = 400;
    net_transport *a = mk(&ca);
    /* a pre-auth connection is displaced by the next one */
    int pre = tcp_client(pa + 1);
    int c1 = tcp_client_auth(a, pa + 1);
    int c2 = tcp_client_auth(a, pa + 1);
    assert_int_equal(refusal_then_close(a, pre), NET_REFUSE_BUSY);
    close(pre);
    /* both authenticated and just active: a third is refused */
    int c3 = tcp_client(pa + 1);
    assert_int_equal(refusal_then_close(a, c3), NET_REFUSE_BUSY);
    close(c3);
    /* over max_frame */
    uint8_t h[NET_HDR_LEN] = {0};
    uint32_t magic = NET_MAGIC;
    memcpy(h, &magic, 4);
    h[4] = NET_VERSION;
    h[5] = NET_MSG_CLIENT_REQ;
    h[9] = 0x20; /* 8 KiB payload */
    send_all(c1, h, sizeof h);
    assert_int_equal(refusal_then_close(a, c1), NET_REFUSE_TOO_LARGE);
    close(c1);
    /* c2 says nothing: closed when idle */
    assert_int_equal(refusal_then_close(a, c2), NET_REFUSE_IDLE);
    close(c2);
    net_transport_stats st;
    net_transport_get_stats(a, &st);
    assert_int_equal(st.client_refused, 2);
    assert_int_equal(st.client_too_large, 1);
    assert_int_equal(st.client_idle_closed, 1);
    net_transport_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_nodes_exchange),
        cmocka_unit_test(test_partition_switch),
        cmocka_unit_test(test_outgoing_from_own_address),
        cmocka_unit_test(test_down_peer_never_blocks),
        cmocka_unit_test(test_peer_restart_reconnects),
        cmocka_unit_test(test_bind_conflict_reported),
        cmocka_unit_test(test_client_requests_answered_out_of_order),
        cmocka_unit_test(test_client_garbage_and_large_frames),
        cmocka_unit_test(test_peer_auth_and_replay),
        cmocka_unit_test(test_client_auth_refused),
        cmocka_unit_test(test_client_limits),
        cmocka_unit_test(test_fault_spec_parsing),
        cmocka_unit_test(test_fault_injector_rates),
        cmocka_unit_test(test_fault_delay_reorders),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
