/*
 * test_http_server.c — the HTTP server of a running one-node cluster, over
 * raw sockets: the token (401 without it), status, the key-value routes,
 * 404 / 405 / 413 (declared and chunked), a garbage request, connections
 * whose descriptors are past 1023, metrics, a watch stream that sees a put,
 * and a stop that ends an open stream instead of waiting for it.  Under ASan this covers the server's buffers.
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
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/auth.h"
#include "node/http.h"
#include "node/node.h"
#include "tests/lib/testport.h"

static char dir[256];
static int port;
static node *nd;
static node_http *srv;
static char auth_hdr[128];

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int conn_open(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(port + 2))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server may close early (413) */
        c += w;
        n -= (size_t)w;
    }
}

/* Reads until the server closes (or cap).  The length read. */
static size_t recv_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    return len;
}

/* One request (Connection: close); the status code, the whole answer in
 * resp.  body may be NULL. */
static int request(const char *method, const char *path, bool token, const char *body, char *resp,
                   size_t cap)
{
    int fd = conn_open();
    char head[1024];
    int hl =
        snprintf(head, sizeof head,
                 "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s%sContent-Length: "
                 "%zu\r\n\r\n",
                 method, path, token ? auth_hdr : "", token ? "\r\n" : "", body ? strlen(body) : 0);
    send_all(fd, head, (size_t)hl);
    if (body)
        send_all(fd, body, strlen(body));
    recv_all(fd, resp, cap);
    close(fd);
    int code = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1)
        return 0;
    return code;
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/hstore-test-http.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    port = test_free_ports("127.0.0.1", 3); /* peer, client, HTTP */
    if (port < 0)
        return -1;
    node_config c;
    node_config_init(&c);
    c.id = 1;
    c.n_peers = 1;
    c.peers[0].id = 1;
    snprintf(c.peers[0].host, sizeof c.peers[0].host, "127.0.0.1");
    c.peers[0].port = port;
    snprintf(c.data_dir, sizeof c.data_dir, "%s/1", dir);
    c.log_level = 0;
    c.tick_ms = 10;
    c.op_timeout_ms = 30000;
    uint8_t secret[32];
    memset(secret, 7, sizeof secret);
    net_auth_from_secret(&c.auth, secret, sizeof secret);
    char tok[NET_HTTP_TOKEN_LEN + 1];
    net_auth_http_token(&c.auth, tok);
    snprintf(auth_hdr, sizeof auth_hdr, "Authorization: Bearer %s", tok);
    char err[512];
    nd = node_start(&c, err, sizeof err);
    if (!nd) {
        print_error("node_start: %s\n", err);
        return -1;
    }
    node_http_config hc;
    node_http_config_init(&hc);
    hc.port = port + 2;
    srv = node_http_new(nd, &hc, err, sizeof err);
    if (!srv || node_http_start(srv, err, sizeof err) != 0) {
        print_error("http: %s\n", err);
        return -1;
    }
    /* a leader before the requests */
    uint64_t end = mono_ms() + 20000;
    raft_status st;
    do {
        node_status(nd, &st);
        if (st.role != RAFT_LEADER)
            usleep(10000);
    } while (st.role != RAFT_LEADER && mono_ms() < end);
    return st.role == RAFT_LEADER ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    node_http_stop(srv);
    node_stop(nd);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char resp[1 << 16];

static void test_token_status(void **state)
{
    (void)state;
    assert_int_equal(request("GET", "/v1/status", false, NULL, resp, sizeof resp), 401);
    assert_non_null(strstr(body_of(resp), "\"unauthorized\""));
    assert_int_equal(request("GET", "/v1/status", true, NULL, resp, sizeof resp), 200);
    assert_non_null(strstr(body_of(resp), "\"id\":1"));
    assert_non_null(strstr(body_of(resp), "\"role\":\"leader\""));
    assert_int_equal(request("POST", "/v1/status", true, "", resp, sizeof resp), 405);
    assert_non_null(strstr(resp, "Allow: GET"));
    assert_int_equal(request("GET", "/nothing", true, NULL, resp, sizeof resp), 404);
}

static void test_kv(void **state)
{
    (void)state;
    assert_int_equal(request("PUT", "/v1/kv/d/k", true, "abc", resp, sizeof resp), 200);
    assert_non_null(strstr(body_of(resp), "\"size\":3"));
    assert_int_equal(request("POST", "/v1/kv/d/k", true, "de", resp, sizeof resp), 200);
    assert_int_equal(request("GET", "/v1/kv/d/k", true, NULL, resp, sizeof resp), 200);
    assert_string_equal(body_of(resp), "abcde");
    assert_int_equal(request("GET", "/v1/kv/?prefix=d/", true, NULL, resp, sizeof resp), 200);
    assert_string_equal(body_of(resp), "{\"prefix\":\"d/\",\"keys\":[\"d/k\"]}\n");
    assert_int_equal(request("DELETE", "/v1/kv/d/k", true, NULL, resp, sizeof resp), 200);
    assert_int_equal(request("GET", "/v1/kv/d/k", true, NULL, resp, sizeof resp), 404);
    assert_int_equal(request("PUT", "/v1/kv/", true, "x", resp, sizeof resp), 400);
    assert_int_equal(request("PUT", "/v1/kv/a%00b", true, "x", resp, sizeof resp), 400);
}

static void test_limits(void **state)
{
    (void)state;
    /* declared too large: refused before the body is read */
    int fd = conn_open();
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "PUT /v1/kv/big HTTP/1.1\r\nHost: t\r\n%s\r\nContent-Length: %u\r\n\r\n",
                      auth_hdr, (1u << 20) + 1);
    send_all(fd, head, (size_t)hl);
    recv_all(fd, resp, sizeof resp);
    close(fd);
    assert_non_null(strstr(resp, " 413 "));
    /* chunked past the limit */
    fd = conn_open();
    hl = snprintf(head, sizeof head,
                  "PUT /v1/kv/big HTTP/1.1\r\nHost: t\r\n%s\r\nTransfer-Encoding: chunked\r\n"
                  "Connection: close\r\n\r\n",
                  auth_hdr);
    send_all(fd, head, (size_t)hl);
    static char chunk[65536 + 16];
    int cl = snprintf(chunk, 16, "10000\r\n");
    memset(chunk + cl, 'x', 65536);
    memcpy(chunk + cl + 65536, "\r\n", 2);
    for (int i = 0; i < 17; i++)
        send_all(fd, chunk, (size_t)cl + 65536 + 2);
    send_all(fd, "0\r\n\r\n", 5);
    recv_all(fd, resp, sizeof resp);
    close(fd);
    assert_non_null(strstr(resp, " 413 "));
    assert_int_equal(request("GET", "/v1/kv/big", true, NULL, resp, sizeof resp), 404);
    /* garbage, then a half-sent request left open: the server goes on */
    fd = conn_open();
    send_all(fd, "GARBAGE\r\n\r\n", 11);
    recv_all(fd, resp, sizeof resp);
    close(fd);
    int slow = conn_open();
    send_all(slow, "GET /v1/sta", 11);
    assert_int_equal(request("GET", "/v1/status", true, NULL, resp, sizeof resp), 200);
    close(slow);
}

/* With the process's descriptors past 1023 (a busy node), connections are
 * still served (select() could not wait on them). */
static void test_high_fds(void **state)
{
    (void)state;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 1400)
        skip();
    int fds[1100];
    int n = 0;
    while (n < 1100 && (fds[n] = open("/dev/null", O_RDONLY)) >= 0)
        n++;
    assert_int_equal(n, 1100);
    int code = request("GET", "/v1/status", true, NULL, resp, sizeof resp);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    assert_int_equal(code, 200);
}

static void test_metrics(void **state)
{
    (void)state;
    assert_int_equal(request("GET", "/metrics", true, NULL, resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "# TYPE hstore_term gauge\nhstore_term "));
    assert_non_null(strstr(resp, "hstore_role{role=\"leader\"} 1\n"));
    assert_non_null(strstr(resp, "hstore_fsync_seconds_bucket{le=\"+Inf\"} "));
    assert_non_null(strstr(resp, "hstore_http_connections "));
}

static void test_watch_and_stop(void **state)
{
    (void)state;
    int fd = conn_open();
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "GET /v1/watch?prefix=w/ HTTP/1.1\r\nHost: t\r\n%s\r\n\r\n", auth_hdr);
    send_all(fd, head, (size_t)hl);
    size_t len = 0;
    resp[0] = '\0';
    uint64_t end = mono_ms() + 20000;
    while (!strstr(resp, ": watching") && mono_ms() < end) {
        ssize_t r = recv(fd, resp + len, sizeof resp - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        resp[len] = '\0';
    }
    assert_non_null(strstr(resp, "text/event-stream"));
    static char other[4096];
    assert_int_equal(request("PUT", "/v1/kv/x", true, "1", other, sizeof other), 200);
    assert_int_equal(request("PUT", "/v1/kv/w/a", true, "1", other, sizeof other), 200);
    while (!strstr(resp, "\"key\":\"w/a\"") && mono_ms() < end) {
        ssize_t r = recv(fd, resp + len, sizeof resp - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        resp[len] = '\0';
    }
    assert_non_null(strstr(resp, "event: change\ndata: {\"index\":"));
    assert_non_null(strstr(resp, "\"op\":\"put\",\"key\":\"w/a\"}"));
    assert_null(strstr(resp, "\"key\":\"x\""));
    /* stopping with the stream open: it ends, the stop does not hang */
    uint64_t t0 = mono_ms();
    node_http_stop(srv);
    srv = NULL;
    assert_true(mono_ms() - t0 < 10000);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_status), cmocka_unit_test(test_kv),
        cmocka_unit_test(test_limits),       cmocka_unit_test(test_high_fds),
        cmocka_unit_test(test_metrics),      cmocka_unit_test(test_watch_and_stop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
