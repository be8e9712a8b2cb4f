/*
 * test_client.c — the client library against scripted fake nodes (each a
 * real transport on loopback, run by its own thread): it follows leader
 * hints, retries on silence / UNAVAILABLE / SHUTTING_DOWN with the same
 * (client id, seq), never takes a reply meant for another attempt, gives up
 * with NET_EUNAVAIL at its deadline, numbers commands 1, 2, 3 ... and reads
 * not at all, and fetches node status; and the same rules for the
 * multiplexed client (many sessions over one connection per node).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/client.h"
#include "net/client_conn.h"
#include "net/mux.h"
#include "net/retry.h"
#include "net/transport.h"

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static bool port_free(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = bind(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(s);
    return ok;
}

static int free_port_pair(void)
{
    for (int i = 0; i < 1000; i++) {
        int p = 20000 + (int)(rnd() % 20000) * 2;
        if (port_free(p) && port_free(p + 1))
            return p;
    }
    fail_msg("no free ports");
    return -1;
}

/* ---- fake nodes ---- */

/* cmocka's asserts must not fire off the main thread: abort instead. */
#define CHECK0(expr, zero)                                                         \
    do {                                                                           \
        if ((expr) != (zero)) {                                                    \
            fprintf(stderr, "fake node: %s failed at line %d\n", #expr, __LINE__); \
            abort();                                                               \
        }                                                                          \
    } while (0)

enum { M_OK, M_SILENT, M_NOT_LEADER, M_UNAVAIL, M_SHUTDOWN, M_BAD, M_WRONG_ID, M_EXPIRED };

/* Session ids handed out by every fake node's registrations (unique). */
static atomic_ullong next_session = 1000;

#define LOGMAX 64
typedef struct fake {
    uint64_t id;
    int port;
    net_transport *t;
    pthread_t th;
    atomic_int stop;
    atomic_int mode;
    atomic_ullong hint; /* leader id to report */
    pthread_mutex_t mu;
    int n_log;
    net_client_req log[LOGMAX]; /* op pointers are not kept */
    int n_status;
    int n_register; /* REGISTER requests (answered at once, not logged) */
} fake;

static void *fake_run(void *arg)
{
    fake *f = arg;
    net_buf out = {0};
    while (!atomic_load(&f->stop)) {
        struct pollfd fds[2];
        int n = net_transport_pollfds(f->t, fds, 2);
        poll(fds, (nfds_t)n, 20);
        net_client_msg m;
        while (net_recv_client(f->t, &m) == NET_OK) {
            int type = net_frame_check(m.body, m.len, NULL);
            if (type == NET_MSG_STATUS_REQ) {
                uint64_t rid;
                CHECK0(net_decode_status_req(m.body, m.len, &rid), 0);
                net_status_resp *s = calloc(1, sizeof(*s));
                s->req_id = rid;
                snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", f->port);
                s->st.id = f->id;
                s->st.role = f->id == 3 ? RAFT_LEADER : RAFT_FOLLOWER;
                s->st.term = 7;
                s->st.leader = 3;
                s->st.commit = 40 + f->id;
                s->st.conf.n = 1;
                s->st.conf.ids[0] = f->id;
                strcpy(s->st.conf.addrs[0], s->addr);
                CHECK0(net_encode_status_resp(s, &out), 0);
                free(s);
                pthread_mutex_lock(&f->mu);
                f->n_status++;
                pthread_mutex_unlock(&f->mu);
                net_reply_client(f->t, &m, out.p, out.len);
                continue;
            }
            net_client_req q;
            CHECK0(net_decode_client_req(m.body, m.len, &q), 0);
            if (q.flags & NET_REQ_REGISTER) {
                /* Sessions open at once, whatever the mode, with no leader
                 * hint: the tests below are about the commands. */
                CHECK0(q.client_id == 0 || q.seq != 0 || q.op_len != 0, 0);
                uint64_t id = atomic_fetch_add(&next_session, 1);
                uint8_t b[8];
                for (int k = 0; k < 8; k++)
                    b[k] = (uint8_t)(id >> (8 * k));
                net_client_resp r = {
                    .req_id = q.req_id, .status = NET_ST_OK, .reply = b, .reply_len = 8};
                CHECK0(net_encode_client_resp(&r, &out), 0);
                pthread_mutex_lock(&f->mu);
                f->n_register++;
                pthread_mutex_unlock(&f->mu);
                net_reply_client(f->t, &m, out.p, out.len);
                continue;
            }
            pthread_mutex_lock(&f->mu);
            if (f->n_log < LOGMAX) {
                f->log[f->n_log] = q;
                f->log[f->n_log].op = NULL;
                f->n_log++;
            }
            pthread_mutex_unlock(&f->mu);
            int mode = atomic_load(&f->mode);
            if (mode == M_SILENT) {
                net_client_msg_drop(&m);
                continue;
            }
            net_client_resp r = {.req_id = q.req_id, .leader_id = atomic_load(&f->hint)};
            char reply[128];
            int rl = snprintf(reply, sizeof(reply), "node%llu:%.*s", (unsigned long long)f->id,
                              (int)q.op_len, (const char *)q.op);
            switch (mode) {
            case M_OK:
                r.status = NET_ST_OK;
                r.reply = (uint8_t *)reply;
                r.reply_len = (uint32_t)rl;
                break;
            case M_NOT_LEADER: r.status = NET_ST_NOT_LEADER; break;
            case M_UNAVAIL: r.status = NET_ST_UNAVAILABLE; break;
            case M_SHUTDOWN: r.status = NET_ST_SHUTTING_DOWN; break;
            case M_BAD: r.status = NET_ST_BAD_REQUEST; break;
            case M_EXPIRED: r.status = NET_ST_SESSION_EXPIRED; break;
            case M_WRONG_ID:
                r.status = NET_ST_OK;
                r.req_id = q.req_id + 1000;
                r.reply = (uint8_t *)"stale";
                r.reply_len = 5;
                break;
            }
            CHECK0(net_encode_client_resp(&r, &out), 0);
            net_reply_client(f->t, &m, out.p, out.len);
        }
    }
    net_buf_free(&out);
    return NULL;
}

static fake fakes[3];
static char spec[256];

static int setup(void **state)
{
    (void)state;
    spec[0] = '\0';
    for (int i = 0; i < 3; i++) {
        fake *f = &fakes[i];
        memset(f, 0, sizeof(*f));
        f->id = (uint64_t)i + 1;
        f->port = free_port_pair();
        net_transport_config c = {.self_id = f->id, .port = f->port, .faults = ""};
        strcpy(c.host, "127.0.0.1");
        char err[200];
        f->t = net_transport_new(&c, err, sizeof(err));
        if (!f->t)
            fail_msg("fake node: %s", err);
        pthread_mutex_init(&f->mu, NULL);
        atomic_store(&f->mode, M_OK);
        pthread_create(&f->th, NULL, fake_run, f);
        snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), "%s%llu=127.0.0.1:%d",
                 i ? "," : "", (unsigned long long)f->id, f->port);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        atomic_store(&fakes[i].stop, 1);
        pthread_join(fakes[i].th, NULL);
        net_transport_free(fakes[i].t);
        pthread_mutex_destroy(&fakes[i].mu);
    }
    return 0;
}

static void set_modes(int m1, int m2, int m3, uint64_t hint)
{
    int m[3] = {m1, m2, m3};
    for (int i = 0; i < 3; i++) {
        atomic_store(&fakes[i].mode, m[i]);
        atomic_store(&fakes[i].hint, hint);
        pthread_mutex_lock(&fakes[i].mu);
        fakes[i].n_log = 0;
        fakes[i].n_status = 0;
        fakes[i].n_register = 0;
        pthread_mutex_unlock(&fakes[i].mu);
    }
}

static int nlog(int i)
{
    pthread_mutex_lock(&fakes[i].mu);
    int n = fakes[i].n_log;
    pthread_mutex_unlock(&fakes[i].mu);
    return n;
}

/* How long a test waits for something that must happen before it calls it
 * hung: far beyond any deadline under test, so a slow machine never fails. */
#define WAIT_GUARD_MS 60000

static net_client *mkclient(int timeout_ms)
{
    char err[200];
    net_client *c = net_client_new(spec, timeout_ms, err, sizeof(err));
    if (!c)
        fail_msg("net_client_new: %s", err);
    return c;
}

static void expect_reply(net_client *c, bool read, const char *op, const char *want)
{
    void *r = NULL;
    size_t rl = 0;
    int rc = net_client_call(c, read, op, strlen(op), &r, &rl);
    if (rc != NET_OK)
        fail_msg("call '%s': %s", op, net_strerror(rc));
    assert_int_equal(rl, strlen(want));
    assert_memory_equal(r, want, rl);
    free(r);
}

/* ---- tests ---- */

static void test_spec_parsing(void **state)
{
    (void)state;
    uint64_t ids[4];
    char hosts[4][NET_ADDR_MAX];
    int ports[4];
    char err[200];
    assert_int_equal(net_parse_spec("1=127.0.0.1:7000, 2=node-b.local:7002,30=10.0.0.3:9", ids,
                                    hosts, ports, 4, err, sizeof(err)),
                     3);
    assert_int_equal(ids[1], 2);
    assert_string_equal(hosts[1], "node-b.local");
    assert_int_equal(ports[2], 9);
    assert_int_equal(ids[2], 30);
    /* A host of NET_SPEC_HOST_MAX bytes fits, one more does not: "HOST:PORT"
     * must fit an address (the node's cluster spec is read here too). */
    char sp[128], host[NET_SPEC_HOST_MAX + 2];
    memset(host, 'h', NET_SPEC_HOST_MAX);
    host[NET_SPEC_HOST_MAX] = '\0';
    snprintf(sp, sizeof(sp), "1=%s:65534", host);
    assert_int_equal(net_parse_spec(sp, ids, hosts, ports, 4, err, sizeof(err)), 1);
    assert_string_equal(hosts[0], host);
    host[NET_SPEC_HOST_MAX] = 'h';
    host[NET_SPEC_HOST_MAX + 1] = '\0';
    snprintf(sp, sizeof(sp), "1=%s:5", host);
    assert_int_equal(net_parse_spec(sp, ids, hosts, ports, 4, err, sizeof(err)), -1);
    const char *bad[] = {"",
                         "1=h",
                         "1=h:",
                         "=h:1",
                         "0=h:5",
                         "x=h:5",
                         "1=:5",
                         "1=h:65535",
                         "1=h:5,1=g:6",
                         "1=h:5,",
                         "1=h:5,,2=g:6",
                         "1=h:-3",
                         "1=h:5,2=g:6,3=i:7,4=j:8,5=k:9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (net_parse_spec(bad[i], ids, hosts, ports, 4, err, sizeof(err)) != -1)
            fail_msg("spec '%s' accepted", bad[i]);
        assert_true(err[0] != '\0');
    }
    assert_null(net_client_new("nonsense", 100, err, sizeof(err)));
    net_client *c = mkclient(1000);
    assert_int_equal(net_client_n_nodes(c), 3);
    assert_int_equal(net_client_node_id(c, 2), 3);
    assert_int_equal(net_client_node_id(c, 3), 0);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", fakes[1].port);
    assert_string_equal(net_client_node_addr(c, 1), want);
    assert_null(net_client_node_addr(c, -1));
    net_client *d = mkclient(1000);
    assert_int_equal(net_client_id(c), 0); /* no session before the first command */
    assert_true(net_random_id() != net_random_id());
    assert_int_equal(net_client_next_seq(c), 1);
    assert_int_equal(net_client_leader_hint(c), 0);
    net_client_free(c);
    net_client_free(d);
}

static void test_follows_leader_hint(void **state)
{
    (void)state;
    set_modes(M_NOT_LEADER, M_NOT_LEADER, M_OK, 3);
    net_client *c = mkclient(3000);
    expect_reply(c, false, "put a", "node3:put a");
    assert_int_equal(net_client_leader_hint(c), 3);
    assert_int_equal(nlog(0), 1); /* asked node 1 first, redirected */
    assert_int_equal(nlog(1), 0);
    assert_int_equal(nlog(2), 1);
    /* same ids on the redirected attempt, a different req_id */
    assert_int_equal(fakes[0].log[0].seq, 1);
    assert_int_equal(fakes[2].log[0].seq, 1);
    assert_int_equal(fakes[0].log[0].client_id, net_client_id(c));
    assert_int_equal(fakes[2].log[0].client_id, net_client_id(c));
    assert_true(fakes[0].log[0].req_id != fakes[2].log[0].req_id);
    /* the next call goes straight to the leader */
    expect_reply(c, false, "put b", "node3:put b");
    assert_int_equal(nlog(0), 1);
    assert_int_equal(nlog(2), 2);
    assert_int_equal(fakes[2].log[1].seq, 2);
    net_client_free(c);
}

static void test_retries_same_seq_after_silence(void **state)
{
    (void)state;
    set_modes(M_SILENT, M_OK, M_OK, 0);
    net_client *c = mkclient(4000);
    uint64_t t0 = net_now_ms();
    expect_reply(c, false, "append x", "node2:append x");
    uint64_t dt = net_now_ms() - t0;
    printf("silent node: answered after %llu ms\n", (unsigned long long)dt);
    assert_int_equal(nlog(0), 1);
    assert_int_equal(nlog(1), 1);
    assert_int_equal(fakes[0].log[0].seq, fakes[1].log[0].seq);
    assert_int_equal(fakes[0].log[0].client_id, fakes[1].log[0].client_id);
    assert_int_equal(fakes[1].log[0].seq, 1);
    net_client_free(c);
}

static void test_unavailable_and_shutdown_move_on(void **state)
{
    (void)state;
    set_modes(M_UNAVAIL, M_SHUTDOWN, M_OK, 0);
    net_client *c = mkclient(4000);
    expect_reply(c, false, "del k", "node3:del k");
    assert_int_equal(nlog(0), 1);
    assert_int_equal(nlog(1), 1);
    assert_int_equal(nlog(2), 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fakes[i].log[0].seq, 1);
    net_client_free(c);
}

static void test_stale_reply_ignored(void **state)
{
    (void)state;
    /* node 1 answers with somebody else's req_id: that must not be taken
     * for the answer; the client moves on and gets node 2's */
    set_modes(M_WRONG_ID, M_OK, M_OK, 0);
    net_client *c = mkclient(4000);
    expect_reply(c, true, "get k", "node2:get k");
    assert_int_equal(nlog(0), 1);
    net_client_free(c);
}

static void test_deadline_gives_unavailable(void **state)
{
    (void)state;
    set_modes(M_SILENT, M_SILENT, M_UNAVAIL, 0);
    net_client *c = mkclient(1500);
    void *r = (void *)1;
    size_t rl = 9;
    uint64_t t0 = net_now_ms();
    assert_int_equal(net_client_call(c, false, "put z", 5, &r, &rl), NET_EUNAVAIL);
    uint64_t dt = net_now_ms() - t0;
    printf("no quorum: gave up after %llu ms (timeout 1500)\n", (unsigned long long)dt);
    assert_null(r);
    assert_int_equal(rl, 0);
    /* not before its deadline; the upper bound only catches a call that
     * never gives up (a loaded machine may be late by seconds) */
    assert_true(dt >= 1500 && dt < 1500 + WAIT_GUARD_MS);
    /* every attempt carried the same seq */
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < nlog(i); k++)
            assert_int_equal(fakes[i].log[k].seq, 1);
    /* the seq is spent: the next command uses 2 */
    assert_int_equal(net_client_next_seq(c), 2);
    net_client_free(c);

    /* nobody listening at all */
    char err[100];
    int p = free_port_pair();
    char s[64];
    snprintf(s, sizeof(s), "1=127.0.0.1:%d", p);
    net_client *d = net_client_new(s, 800, err, sizeof(err));
    assert_non_null(d);
    t0 = net_now_ms();
    assert_int_equal(net_client_call(d, true, "get", 3, &r, &rl), NET_EUNAVAIL);
    dt = net_now_ms() - t0;
    assert_true(dt >= 800 && dt < 800 + WAIT_GUARD_MS);
    raft_status st;
    assert_int_equal(net_client_status(d, 0, &st, NULL, 0), NET_EUNAVAIL);
    assert_int_equal(net_client_status(d, 1, &st, NULL, 0), NET_EINVAL);
    net_client_free(d);
}

static void test_bad_request_is_final(void **state)
{
    (void)state;
    set_modes(M_BAD, M_OK, M_OK, 0);
    net_client *c = mkclient(3000);
    void *r;
    size_t rl;
    assert_int_equal(net_client_call(c, false, "junk", 4, &r, &rl), NET_EBADREQ);
    assert_int_equal(nlog(1) + nlog(2), 0);
    net_client_free(c);
}

static void test_sequence_numbers(void **state)
{
    (void)state;
    set_modes(M_OK, M_OK, M_OK, 1);
    net_client *c = mkclient(3000);
    expect_reply(c, false, "a", "node1:a");
    expect_reply(c, true, "r", "node1:r");
    expect_reply(c, false, "b", "node1:b");
    expect_reply(c, false, "c", "node1:c");
    assert_int_equal(nlog(0), 4);
    assert_int_equal(fakes[0].log[0].seq, 1);
    assert_int_equal(fakes[0].log[1].seq, 0);
    assert_int_equal(fakes[0].log[1].flags, NET_REQ_READ);
    assert_int_equal(fakes[0].log[2].seq, 2);
    assert_int_equal(fakes[0].log[2].flags, 0);
    assert_int_equal(fakes[0].log[3].seq, 3);
    /* an explicit replay keeps the given seq and leaves the counter alone */
    void *r;
    size_t rl;
    assert_int_equal(net_client_call_seq(c, 2, "b", 1, &r, &rl), NET_OK);
    free(r);
    assert_int_equal(fakes[0].log[4].seq, 2);
    assert_int_equal(net_client_next_seq(c), 4);
    net_client_set_session(c, 0xabcdef, 100);
    expect_reply(c, false, "d", "node1:d");
    assert_int_equal(fakes[0].log[5].client_id, 0xabcdef);
    assert_int_equal(fakes[0].log[5].seq, 100);
    /* an empty reply comes back as NULL, 0 */
    net_client_free(c);
}

static void test_status(void **state)
{
    (void)state;
    set_modes(M_OK, M_OK, M_OK, 0);
    net_client *c = mkclient(2000);
    for (int i = 0; i < 3; i++) {
        raft_status st;
        char addr[64], want[64];
        assert_int_equal(net_client_status(c, i, &st, addr, sizeof(addr)), NET_OK);
        snprintf(want, sizeof(want), "127.0.0.1:%d", fakes[i].port);
        assert_string_equal(addr, want);
        assert_int_equal(st.id, (uint64_t)i + 1);
        assert_int_equal(st.role, i == 2 ? RAFT_LEADER : RAFT_FOLLOWER);
        assert_int_equal(st.commit, 41 + (uint64_t)i);
        assert_int_equal(st.conf.n, 1);
        assert_string_equal(st.conf.addrs[0], want);
    }
    assert_int_equal(net_client_leader_hint(c), 3);
    net_client_free(c);
}

/* ---- the multiplexed client (mux.h) ---- */

static net_mux *mkmux(int timeout_ms, int n)
{
    char err[200];
    net_mux *m = net_mux_new(spec, timeout_ms, n, err, sizeof(err));
    if (!m)
        fail_msg("net_mux_new: %s", err);
    return m;
}

/* Waits until every session is idle; returns how many finished. */
static int mux_drain(net_mux *m, int *order, int max)
{
    int got = 0, done[64];
    uint64_t end = net_now_ms() + WAIT_GUARD_MS;
    while (net_mux_busy(m) > 0 && net_now_ms() < end) {
        int k = net_mux_wait(m, 500, done, 64);
        assert_true(k >= 0);
        for (int i = 0; i < k && got < max; i++)
            order[got++] = done[i];
    }
    assert_int_equal(net_mux_busy(m), 0);
    return got;
}

static void test_mux_sessions_share_connections(void **state)
{
    (void)state;
    enum { S = 30 };
    set_modes(M_NOT_LEADER, M_NOT_LEADER, M_OK, 3);
    net_mux *m = mkmux(4000, S);
    char op[32], want[48];
    for (int round = 1; round <= 2; round++) {
        for (int s = 0; s < S; s++) {
            int n = snprintf(op, sizeof(op), "put %d.%d", round, s);
            assert_int_equal(net_mux_start(m, s, false, op, (size_t)n), NET_OK);
        }
        /* a busy session cannot start another operation */
        assert_int_equal(net_mux_start(m, 0, false, "x", 1), NET_EINVAL);
        int order[S];
        assert_int_equal(mux_drain(m, order, S), S);
        for (int s = 0; s < S; s++) {
            const uint8_t *r = NULL;
            size_t rl = 0;
            assert_int_equal(net_mux_result(m, s, &r, &rl), NET_OK);
            int n = snprintf(want, sizeof(want), "node3:put %d.%d", round, s);
            assert_int_equal(rl, (size_t)n);
            assert_memory_equal(r, want, rl);
        }
    }
    /* round 1: all asked node 1 first and were redirected to the leader;
     * round 2 went straight to it */
    assert_int_equal(nlog(0), S);
    assert_int_equal(nlog(1), 0);
    assert_int_equal(nlog(2), 2 * S);
    /* each session is its own client: distinct ids, seq 1 then 2, the same
     * (client id, seq) on the redirected attempt */
    for (int i = 0; i < S; i++) {
        const net_client_req *a = &fakes[2].log[i], *b = &fakes[2].log[S + i];
        assert_int_equal(a->seq, 1);
        assert_int_equal(b->seq, 2);
        for (int j = 0; j < i; j++)
            assert_true(fakes[2].log[j].client_id != a->client_id);
        bool seen = false;
        for (int j = 0; j < S; j++)
            seen |= fakes[0].log[j].client_id == a->client_id && fakes[0].log[j].seq == 1;
        assert_true(seen);
    }
    /* reads carry seq 0 and the read flag, and do not use up a seq */
    assert_int_equal(net_mux_start(m, 5, true, "get k", 5), NET_OK);
    int order[1];
    assert_int_equal(mux_drain(m, order, 1), 1);
    assert_int_equal(order[0], 5);
    const net_client_req *rq = &fakes[2].log[2 * S];
    assert_int_equal(rq->seq, 0);
    assert_true(rq->flags & NET_REQ_READ);
    net_mux_free(m);
}

/* A session the cluster expired: the call fails with NET_ESESSION (outcome
 * unknown, no other node is tried), and the next command opens a new session
 * with one registration; the sessions are registered, never invented. */
static void test_session_expired(void **state)
{
    (void)state;
    set_modes(M_OK, M_OK, M_OK, 0);
    net_client *c = mkclient(3000);
    expect_reply(c, false, "a", "node1:a");
    assert_int_equal(fakes[0].n_register, 1);
    uint64_t first = net_client_id(c);
    assert_true(first >= 1000);
    assert_int_equal(fakes[0].log[0].client_id, first);
    expect_reply(c, false, "b", "node1:b");
    assert_int_equal(fakes[0].n_register, 1); /* one session for both */
    set_modes(M_EXPIRED, M_OK, M_OK, 0);
    void *r = NULL;
    size_t rl = 0;
    assert_int_equal(net_client_call(c, false, "c", 1, &r, &rl), NET_ESESSION);
    assert_null(r);
    assert_int_equal(nlog(0), 1);
    assert_int_equal(nlog(1) + nlog(2), 0);
    assert_int_equal(net_client_id(c), 0);
    /* a replay needs the session it was sent on */
    assert_int_equal(net_client_call_seq(c, 3, "c", 1, &r, &rl), NET_ESESSION);
    set_modes(M_OK, M_OK, M_OK, 0);
    expect_reply(c, false, "d", "node1:d");
    assert_int_equal(fakes[0].n_register, 1);
    assert_true(net_client_id(c) != first && net_client_id(c) != 0);
    assert_int_equal(fakes[0].log[0].client_id, net_client_id(c));
    assert_true(fakes[0].log[0].seq > 3); /* seqs go on */
    net_client_free(c);

    /* the multiplexed client: same rules per session */
    set_modes(M_EXPIRED, M_OK, M_OK, 0);
    net_mux *m = mkmux(3000, 2);
    assert_int_equal(net_mux_start(m, 0, false, "x", 1), NET_OK);
    int order[2];
    assert_int_equal(mux_drain(m, order, 1), 1);
    assert_int_equal(net_mux_result(m, 0, NULL, NULL), NET_ESESSION);
    assert_int_equal(fakes[0].n_register, 1);
    set_modes(M_OK, M_OK, M_OK, 0);
    assert_int_equal(net_mux_start(m, 0, false, "y", 1), NET_OK);
    assert_int_equal(net_mux_start(m, 1, false, "z", 1), NET_OK);
    assert_int_equal(mux_drain(m, order, 2), 2);
    assert_int_equal(net_mux_result(m, 0, NULL, NULL), NET_OK);
    assert_int_equal(net_mux_result(m, 1, NULL, NULL), NET_OK);
    assert_int_equal(fakes[0].n_register, 2); /* a new one for 0, one for 1 */
    assert_int_equal(nlog(0), 2);
    assert_true(fakes[0].log[0].client_id != fakes[0].log[1].client_id);
    net_mux_free(m);
}

static void test_mux_silence_then_deadline(void **state)
{
    (void)state;
    enum { S = 10 };
    /* a silent node: every session moves on to the next with the same seq */
    set_modes(M_SILENT, M_OK, M_OK, 0);
    net_mux *m = mkmux(4000, S);
    for (int s = 0; s < S; s++)
        assert_int_equal(net_mux_start(m, s, false, "append x", 8), NET_OK);
    int order[S];
    assert_int_equal(mux_drain(m, order, S), S);
    for (int s = 0; s < S; s++)
        assert_int_equal(net_mux_result(m, s, NULL, NULL), NET_OK);
    assert_int_equal(nlog(0), S);
    assert_int_equal(nlog(1), S);
    for (int i = 0; i < S; i++) {
        bool same = false;
        for (int j = 0; j < S; j++)
            same |= fakes[0].log[i].client_id == fakes[1].log[j].client_id &&
                    fakes[0].log[i].seq == fakes[1].log[j].seq;
        assert_true(same);
    }
    net_mux_free(m);

    /* nobody answers: every session gives up at its deadline, outcome unknown */
    set_modes(M_SILENT, M_SILENT, M_UNAVAIL, 0);
    m = mkmux(1500, S);
    uint64_t t0 = net_now_ms();
    for (int s = 0; s < S; s++)
        assert_int_equal(net_mux_start(m, s, false, "put z", 5), NET_OK);
    assert_int_equal(mux_drain(m, order, S), S);
    uint64_t dt = net_now_ms() - t0;
    printf("mux, no quorum: %d sessions gave up after %llu ms (timeout 1500)\n", S,
           (unsigned long long)dt);
    assert_true(dt >= 1500 && dt < 1500 + WAIT_GUARD_MS);
    for (int s = 0; s < S; s++)
        assert_int_equal(net_mux_result(m, s, NULL, NULL), NET_EUNAVAIL);
    net_mux_free(m);

    /* a spec where nothing listens */
    char err[100], s1[64];
    snprintf(s1, sizeof(s1), "1=127.0.0.1:%d", free_port_pair());
    m = net_mux_new(s1, 800, 2, err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(net_mux_start(m, 1, true, "get", 3), NET_OK);
    assert_int_equal(mux_drain(m, order, 1), 1);
    assert_int_equal(net_mux_result(m, 1, NULL, NULL), NET_EUNAVAIL);
    assert_int_equal(net_mux_result(m, 0, NULL, NULL), NET_EINVAL); /* never ran */
    net_mux_free(m);
    assert_null(net_mux_new("nonsense", 100, 1, err, sizeof(err)));
    assert_null(net_mux_new(spec, 100, 0, err, sizeof(err)));
}

/* The shared rules (retry.h) as a table: what each answer of node 1 of 3
 * means, with and without a leader hint. */
static void test_retry_rules(void **state)
{
    (void)state;
    net_retry_step st = net_retry_answer(NET_ST_OK, 1, -1, 3, false);
    assert_true(st.act == NET_RETRY_DONE && st.rc == NET_OK && st.node == 1);
    st = net_retry_answer(NET_ST_OK, 1, 2, 3, false);
    assert_true(st.act == NET_RETRY_DONE && st.rc == NET_OK && st.node == 2);
    st = net_retry_answer(NET_ST_BAD_REQUEST, 1, 2, 3, false);
    assert_true(st.act == NET_RETRY_DONE && st.rc == NET_EBADREQ && st.node == -1);
    st = net_retry_answer(NET_ST_SESSION_EXPIRED, 1, -1, 3, false);
    assert_true(st.act == NET_RETRY_DONE && st.rc == NET_ESESSION && st.node == 1);
    st = net_retry_answer(NET_ST_SESSION_EXPIRED, 1, -1, 3, true);
    assert_true(st.act == NET_RETRY_DONE && st.rc == NET_EUNAVAIL);
    st = net_retry_answer(NET_ST_NOT_LEADER, 1, 0, 3, false);
    assert_true(st.act == NET_RETRY_NOW && st.node == 0);
    st = net_retry_answer(NET_ST_NOT_LEADER, 1, 1, 3, false); /* names itself: move on */
    assert_true(st.act == NET_RETRY_NOW && st.node == 2);
    st = net_retry_answer(NET_ST_UNAVAILABLE, 2, -1, 3, false);
    assert_true(st.act == NET_RETRY_PAUSE && st.node == 0);
    st = net_retry_answer(NET_ST_SHUTTING_DOWN, 0, 2, 3, false);
    assert_true(st.act == NET_RETRY_PAUSE && st.node == 2);
    assert_int_equal(net_retry_next(2, 3), 0);
    assert_int_equal(net_retry_cap_ms(100, 105, 20), 5);
    assert_int_equal(net_retry_cap_ms(100, 500, 20), 20);
    assert_int_equal(net_retry_cap_ms(500, 100, 20), 0);
    const uint8_t id[8] = {1, 2, 0, 0, 0, 0, 0, 0x80};
    assert_true(net_retry_session_id(id, 8) == (0x8000000000000201ull));
    assert_true(net_retry_session_id(id, 7) == 0);
    assert_true(net_retry_session_id(NULL, 0) == 0);
}

/* The connection both engines share: a node with nothing listening gives
 * no connection (NET_EIO); one that accepts but never answers the HELLO
 * times out in the handshake (NET_EUNAVAIL); either way nothing stays open. */
static void test_conn_open_failures(void **state)
{
    (void)state;
    int port = free_port_pair();
    net_auth a;
    net_auth_get_default(&a);
    net_cconn c = {0};
    net_cconn_init(&c, 7, "127.0.0.1", port);
    assert_true(c.id == 7 && c.port == port && c.fd == -1);
    assert_int_equal(net_cconn_open(&c, &a, net_now_ms() + 200), NET_EIO);
    assert_int_equal(c.fd, -1);

    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)(port + 1)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(net_cconn_open(&c, &a, net_now_ms() + 100), NET_EUNAVAIL);
    assert_int_equal(c.fd, -1);
    net_cconn_close(&c);
    close(l);
}

int main(void)
{
    const char *s = getenv("HSTORE_TEST_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
    rng_state = seed;
    printf("test_client: seed %llu (HSTORE_TEST_SEED to replay)\n", (unsigned long long)seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_parsing),
        cmocka_unit_test(test_follows_leader_hint),
        cmocka_unit_test(test_retries_same_seq_after_silence),
        cmocka_unit_test(test_unavailable_and_shutdown_move_on),
        cmocka_unit_test(test_stale_reply_ignored),
        cmocka_unit_test(test_deadline_gives_unavailable),
        cmocka_unit_test(test_bad_request_is_final),
        cmocka_unit_test(test_sequence_numbers),
        cmocka_unit_test(test_session_expired),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_mux_sessions_share_connections),
        cmocka_unit_test(test_mux_silence_then_deadline),
        cmocka_unit_test(test_retry_rules),
        cmocka_unit_test(test_conn_open_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
