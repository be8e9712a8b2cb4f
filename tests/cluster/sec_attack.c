/*
 * sec_attack.c — hostile clients for the security tests (test_sec_*.sh).
 *
 *   sec_attack forge-peer HOST:PORT FROM TO KIND
 *       Sends forged Raft messages to the peer port HOST:PORT as if from
 *       member FROM to member TO, without the cluster secret: each one three
 *       times over — with no trailer, with a trailer MAC'ed with the insecure
 *       (all-zero secret) keys, and with one MAC'ed with random keys.  KIND:
 *         term    APPEND_RESP with term 2^64-1 (the "brick the cluster" frame)
 *         vote    VOTE_RESP granting the vote, term 2^64-2, and a VOTE
 *                 request with term 2^64-2 and a huge last log position
 *         append  APPEND with term 2^64-2 carrying one entry and commit 1000
 *       Repeats for about a second (30 rounds); prints what it sent.
 *       SEC_ATTACK_WITH_SECRET=1 adds a fourth copy MAC'ed with the real
 *       secret (HSTORE_SECRET_FILE): a check that the tests see an attack
 *       that gets through.
 *
 *   sec_attack half-frames HOST:CPORT CONNS ANNOUNCE SEND HOLD_S [auth]
 *       Opens CONNS connections to the client port; on each (after the
 *       handshake when `auth`, with the process's secret from
 *       HSTORE_SECRET_FILE) sends a frame header announcing ANNOUNCE bytes
 *       and then SEND bytes of it, never finishing; holds them HOLD_S
 *       seconds.  Prints "open N closed M": how many the node closed.
 *
 *   sec_attack idle HOST:CPORT CONNS HOLD_S
 *       Opens CONNS connections that send nothing and holds them HOLD_S
 *       seconds.  Prints how many connected and how many the node closed.
 *
 * Sizes take K/M suffixes.  Exit 0 when the attack ran, 2 on bad usage.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <sodium.h>

#include "net/auth.h"
#include "net/stream.h"
#include "net/transport.h"
#include "net/wire.h"

static int usage(void)
{
    fprintf(stderr, "usage: sec_attack forge-peer HOST:PORT FROM TO term|vote|append\n"
                    "       sec_attack half-frames HOST:CPORT CONNS ANNOUNCE SEND HOLD_S [auth]\n"
                    "       sec_attack idle HOST:CPORT CONNS HOLD_S\n");
    return 2;
}

static uint64_t size_arg(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'K' || *end == 'k')
        v <<= 10;
    else if (*end == 'M' || *end == 'm')
        v <<= 20;
    return v;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int split_addr(const char *a, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(a, ':');
    if (!colon || (size_t)(colon - a) >= cap)
        return -1;
    memcpy(host, a, (size_t)(colon - a));
    host[colon - a] = '\0';
    *port = atoi(colon + 1);
    return *port > 0 ? 0 : -1;
}

/* ---- forged peer frames ---- */

static void send_variants(int sock, const raft_msg *m, int *sent)
{
    net_buf b = {0};
    if (net_encode_raft(m, &b) != NET_OK) {
        fprintf(stderr, "sec_attack: cannot encode\n");
        exit(1);
    }
    size_t flen = b.len;
    /* 1: the bare frame, no trailer */
    if (nn_send(sock, b.p, b.len, 0) >= 0)
        (*sent)++;
    /* 2: MAC'ed with the insecure keys; 3: with random keys; 4 (only with
     * SEC_ATTACK_WITH_SECRET=1, to check that the tests can fail): with the
     * real keys from HSTORE_SECRET_FILE */
    const char *real = getenv("SEC_ATTACK_WITH_SECRET");
    int variants = real && !strcmp(real, "1") ? 3 : 2;
    for (int v = 0; v < variants; v++) {
        net_auth a;
        if (v == 0) {
            net_auth_insecure(&a);
        } else if (v == 2) {
            net_auth_get_default(&a);
        } else {
            uint8_t secret[32];
            randombytes_buf(secret, sizeof secret);
            net_auth_from_secret(&a, secret, sizeof secret);
        }
        b.len = flen;
        net_trailer tr = {m->from, UINT64_MAX / 2, (uint64_t)*sent + 1};
        net_seal(a.peer, &tr, &b);
        if (nn_send(sock, b.p, b.len, 0) >= 0)
            (*sent)++;
    }
    net_buf_free(&b);
}

static int forge_peer(int argc, char **argv)
{
    if (argc != 6)
        return usage();
    char host[NET_ADDR_MAX];
    int port;
    if (split_addr(argv[2], host, sizeof host, &port) != 0)
        return usage();
    uint64_t from = strtoull(argv[3], NULL, 10), to = strtoull(argv[4], NULL, 10);
    const char *kind = argv[5];
    int sock = nn_socket(AF_SP, NN_PUSH);
    char url[128];
    snprintf(url, sizeof url, "tcp://%s:%d", host, port);
    int tmo = 1000;
    nn_setsockopt(sock, NN_SOL_SOCKET, NN_SNDTIMEO, &tmo, sizeof tmo);
    if (sock < 0 || nn_connect(sock, url) < 0) {
        fprintf(stderr, "sec_attack: cannot connect to %s\n", url);
        return 1;
    }
    raft_entry e = {.term = UINT64_MAX - 1,
                    .index = 1,
                    .type = RAFT_ENTRY_NORMAL,
                    .data = (uint8_t *)"forged",
                    .len = 6};
    int sent = 0;
    for (int round = 0; round < 30; round++) {
        raft_msg m;
        memset(&m, 0, sizeof m);
        m.from = from;
        m.to = to;
        if (!strcmp(kind, "term")) {
            m.type = RAFT_MSG_APPEND_RESP;
            m.term = UINT64_MAX;
            m.index = 1000;
            send_variants(sock, &m, &sent);
        } else if (!strcmp(kind, "vote")) {
            m.type = RAFT_MSG_VOTE_RESP;
            m.term = UINT64_MAX - 1;
            send_variants(sock, &m, &sent);
            m.type = RAFT_MSG_VOTE;
            m.index = UINT64_MAX / 4;
            m.log_term = UINT64_MAX - 1;
            send_variants(sock, &m, &sent);
        } else if (!strcmp(kind, "append")) {
            m.type = RAFT_MSG_APPEND;
            m.term = UINT64_MAX - 1;
            m.index = 0;
            m.log_term = 0;
            m.commit = 1000;
            m.n_entries = 1;
            m.entries = &e;
            send_variants(sock, &m, &sent);
        } else {
            return usage();
        }
        sleep_ms(30);
    }
    sleep_ms(200); /* let nanomsg deliver before closing */
    nn_close(sock);
    printf("sent %d forged %s frames to %s as node %llu\n", sent, kind, argv[2],
           (unsigned long long)from);
    return 0;
}

/* ---- client port floods ---- */

static void raise_nofile(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)want + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)want + 64 ? rl.rlim_max : (rlim_t)want + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Closed by the peer: a read returns end of stream or an error (an ERROR
 * frame may come first). */
static bool closed_by_node(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return false;
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return true;
        if (n < 0)
            return false;
    }
}

static int half_frames(int argc, char **argv)
{
    if (argc != 7 && argc != 8)
        return usage();
    char host[NET_ADDR_MAX];
    int port;
    if (split_addr(argv[2], host, sizeof host, &port) != 0)
        return usage();
    int conns = atoi(argv[3]);
    uint64_t announce = size_arg(argv[4]), send_n = size_arg(argv[5]);
    int hold = atoi(argv[6]);
    bool auth = argc == 8 && !strcmp(argv[7], "auth");
    raise_nofile(conns);
    int *fds = calloc((size_t)conns, sizeof *fds);
    uint8_t *junk = calloc(1, 1 << 20);
    net_auth a;
    net_auth_get_default(&a);
    int open_n = 0;
    for (int i = 0; i < conns; i++) {
        fds[i] = net_tcp_connect(host, port, net_now_ms() + 3000);
        if (fds[i] < 0)
            continue;
        if (auth) {
            net_session s;
            net_rbuf rb = {0};
            int rc = net_session_connect(fds[i], &a, &s, &rb, net_now_ms() + 3000);
            net_rbuf_free(&rb);
            if (rc != NET_OK) {
                fprintf(stderr, "sec_attack: handshake: %s\n", net_strerror(rc));
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
        }
        open_n++;
        uint8_t h[NET_HDR_LEN] = {0};
        uint32_t magic = NET_MAGIC, plen = (uint32_t)announce;
        memcpy(h, &magic, 4);
        h[4] = NET_VERSION;
        h[5] = NET_MSG_CLIENT_REQ;
        for (int k = 0; k < 4; k++)
            h[8 + k] = (uint8_t)(plen >> (8 * k));
        send(fds[i], h, sizeof h, MSG_NOSIGNAL);
        /* The payload bytes, as far as the node takes them within 2 s. */
        uint64_t left = send_n, end = net_now_ms() + 2000;
        while (left > 0 && net_now_ms() < end) {
            size_t chunk = left < (1u << 20) ? (size_t)left : (1u << 20);
            ssize_t w = send(fds[i], junk, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                left -= (uint64_t)w;
            } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                struct pollfd p = {.fd = fds[i], .events = POLLOUT};
                poll(&p, 1, 50);
            } else {
                break; /* closed by the node */
            }
        }
    }
    uint64_t end = net_now_ms() + (uint64_t)hold * 1000;
    int closed = 0;
    while (net_now_ms() < end) {
        sleep_ms(100);
    }
    for (int i = 0; i < conns; i++)
        if (fds[i] >= 0) {
            closed += closed_by_node(fds[i]);
            close(fds[i]);
        }
    printf("open %d closed %d\n", open_n, closed);
    free(fds);
    free(junk);
    return 0;
}

static int idle(int argc, char **argv)
{
    if (argc != 5)
        return usage();
    char host[NET_ADDR_MAX];
    int port;
    if (split_addr(argv[2], host, sizeof host, &port) != 0)
        return usage();
    int conns = atoi(argv[3]), hold = atoi(argv[4]);
    raise_nofile(conns);
    int *fds = calloc((size_t)conns, sizeof *fds);
    int open_n = 0;
    for (int i = 0; i < conns; i++) {
        fds[i] = net_tcp_connect(host, port, net_now_ms() + 1000);
        open_n += fds[i] >= 0;
    }
    printf("connected %d\n", open_n);
    fflush(stdout);
    sleep_ms(hold * 1000);
    int closed = 0;
    for (int i = 0; i < conns; i++)
        if (fds[i] >= 0) {
            closed += closed_by_node(fds[i]);
            close(fds[i]);
        }
    printf("closed %d\n", closed);
    free(fds);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (sodium_init() < 0)
        return 1;
    if (!strcmp(argv[1], "forge-peer"))
        return forge_peer(argc, argv);
    if (!strcmp(argv[1], "half-frames"))
        return half_frames(argc, argv);
    if (!strcmp(argv[1], "idle"))
        return idle(argc, argv);
    return usage();
}
