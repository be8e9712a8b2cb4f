/*
 * rawclient.c — a test client that sends what `hstore` never sends, to check
 * that nothing a client can put in front of a node stops it:
 *
 *   rawclient SPEC register
 *       opens a session; prints its id.  (A NOOP with seq 1 opens it: the
 *       session's commands start at seq 2.)
 *   rawclient SPEC cmd SESSION SEQ OP PATH [ARG]
 *       sends one command as (SESSION, SEQ) and prints the state machine's
 *       status as a number (0, an errno, 1003 = SESSION_EXPIRED), or
 *       "refused" when the node refuses it before proposal (bad request),
 *       or "unavailable".  OP: append PATH DATA | truncate PATH LEN |
 *       get PATH (a read op sent as a command) | noop.
 *   rawclient SPEC flood N
 *       opens N sessions as fast as it can (pipelined registrations over one
 *       connection to the first node of SPEC); prints how many were answered.
 *
 * Exit 0 when it got an answer, 1 otherwise, 2 on usage errors.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/auth.h"
#include "net/client.h"
#include "net/stream.h"
#include "net/transport.h"
#include "net/wire.h"
#include "raftkv/kv_ops.h"

static int usage(void)
{
    fprintf(stderr, "usage: rawclient SPEC register | cmd SESSION SEQ OP PATH [ARG] | flood N\n");
    return 2;
}

static int flood(const char *spec, long n)
{
    uint64_t ids[RAFT_MAX_NODES];
    char hosts[RAFT_MAX_NODES][NET_ADDR_MAX];
    int ports[RAFT_MAX_NODES];
    char err[256];
    if (net_parse_spec(spec, ids, hosts, ports, RAFT_MAX_NODES, err, sizeof err) < 1) {
        fprintf(stderr, "rawclient: %s\n", err);
        return 2;
    }
    uint64_t end = net_now_ms() + 120000;
    int fd = net_tcp_connect(hosts[0], ports[0] + 1, net_now_ms() + 5000);
    if (fd < 0) {
        fprintf(stderr, "rawclient: cannot connect\n");
        return 1;
    }
    net_buf enc = {0};
    net_wbuf wb = {0};
    net_rbuf rb = {0};
    /* The authenticated session of the connection (keys: HSTORE_SECRET_FILE). */
    net_auth auth;
    net_session sess;
    net_auth_get_default(&auth);
    if (net_session_connect(fd, &auth, &sess, &rb, net_now_ms() + 5000) != NET_OK) {
        fprintf(stderr, "rawclient: handshake refused or timed out\n");
        close(fd);
        net_rbuf_free(&rb);
        return 1;
    }
    long sent = 0, answered = 0, ok = 0;
    const long window = 512;
    while (answered < n && net_now_ms() < end) {
        while (sent < n && sent - answered < window) {
            net_client_req q = {.client_id = net_random_id(),
                                .req_id = (uint64_t)sent + 1,
                                .flags = NET_REQ_REGISTER};
            if (net_encode_client_req(&q, &enc) != NET_OK ||
                net_session_seal_req(&auth, &sess, &enc) != NET_OK ||
                net_wbuf_put(&wb, enc.p, enc.len) != NET_OK)
                return 1;
            sent++;
        }
        if (net_wbuf_pending(&wb) && net_wbuf_flush(&wb, fd) == NET_EIO)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN | (net_wbuf_pending(&wb) ? POLLOUT : 0)};
        if (poll(&p, 1, 1000) < 0)
            break;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            int rc = net_rbuf_fill(&rb, fd, 4u << 20);
            const uint8_t *f;
            size_t flen;
            size_t plen;
            while (net_rbuf_frame(&rb, NET_HDR_LEN + NET_MAX_PAYLOAD + NET_TRAILER_LEN, &f,
                                  &flen) == NET_OK) {
                if (net_session_open_resp(&auth, &sess, f, flen, &plen) != NET_OK) {
                    rc = NET_EIO;
                    break;
                }
                net_client_resp r;
                if (net_decode_client_resp(f, plen, &r) != NET_OK)
                    continue;
                answered++;
                ok += r.status == NET_ST_OK && r.reply_len == 8;
            }
            if (rc != NET_OK && rc != NET_EAGAIN)
                break;
        }
    }
    close(fd);
    net_buf_free(&enc);
    net_wbuf_free(&wb);
    net_rbuf_free(&rb);
    printf("%ld\n", ok);
    return ok == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *spec = argv[1], *what = argv[2];
    if (!strcmp(what, "flood"))
        return argc == 4 ? flood(spec, atol(argv[3])) : usage();
    char err[256];
    net_client *c = net_client_new(spec, 10000, err, sizeof err);
    if (!c) {
        fprintf(stderr, "rawclient: %s\n", err);
        return 2;
    }
    int rc = 1;
    if (!strcmp(what, "register") && argc == 3) {
        /* A NOOP makes the library register; its session is the answer. */
        kv_op o = {.type = KV_OP_NOOP};
        uint8_t *ob;
        size_t ol;
        void *rep = NULL;
        size_t rl = 0;
        if (kv_op_encode(&o, &ob, &ol) == 0 &&
            net_client_call(c, false, ob, ol, &rep, &rl) == NET_OK) {
            printf("%" PRIu64 "\n", net_client_id(c));
            rc = 0;
        }
        free(rep);
        free(ob);
    } else if (!strcmp(what, "cmd") && argc >= 6) {
        uint64_t sess = strtoull(argv[3], NULL, 10), seq = strtoull(argv[4], NULL, 10);
        const char *op = argv[5], *path = argc > 6 ? argv[6] : "", *arg = argc > 7 ? argv[7] : "";
        kv_op o = {.path = path};
        if (!strcmp(op, "append")) {
            o.type = KV_OP_APPEND;
            o.data = (const uint8_t *)arg;
            o.data_len = strlen(arg);
        } else if (!strcmp(op, "truncate")) {
            o.type = KV_OP_TRUNCATE;
            o.len = strtoull(arg, NULL, 10);
        } else if (!strcmp(op, "get")) {
            o.type = KV_OP_GET;
        } else if (!strcmp(op, "noop")) {
            o.type = KV_OP_NOOP;
        } else {
            net_client_free(c);
            return usage();
        }
        uint8_t *ob;
        size_t ol;
        void *rep = NULL;
        size_t rl = 0;
        if (kv_op_encode(&o, &ob, &ol) != 0)
            return 2;
        net_client_set_session(c, sess, seq);
        /* net_client_call would register when the session is 0: replay. */
        int nrc = net_client_call_seq(c, seq, ob, ol, &rep, &rl);
        if (nrc == NET_OK) {
            printf("%d\n", kv_reply_status(rep, rl));
            rc = 0;
        } else if (nrc == NET_EBADREQ) {
            printf("refused\n");
            rc = 0;
        } else if (nrc == NET_ESESSION) {
            printf("%d\n", KV_ESESSION);
            rc = 0;
        } else {
            printf("unavailable\n");
        }
        free(rep);
        free(ob);
    } else {
        rc = usage();
    }
    net_client_free(c);
    return rc;
}
