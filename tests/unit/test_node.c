/*
 * test_node.c — the node loop in one process: cluster spec parsing (the
 * shared reader, net_parse_spec, into node_peers), and a
 * one-node cluster started from a temporary data directory, used through
 * node_submit() like the FUSE layer does, stopped and started again from the
 * same directory.  Runs under ASan/LSan too, so the loop's request
 * bookkeeping is checked for leaks and use-after-free.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/client.h"
#include "raftkv/kv.h"
#include "node/node.h"
#include "tests/lib/testport.h"

static void test_parse_cluster(void **state)
{
    (void)state;
    node_peer p[RAFT_MAX_NODES];
    int n = 0;
    char err[256];
    assert_int_equal(node_parse_cluster("1=127.0.0.1:7100,2=10.0.0.2:7102,3=host-c:7104", p, &n,
                                        err, sizeof err),
                     0);
    assert_int_equal(n, 3);
    assert_int_equal(p[1].id, 2);
    assert_string_equal(p[1].host, "10.0.0.2");
    assert_int_equal(p[1].port, 7102);
    assert_string_equal(p[2].host, "host-c");

    /* The one spec reader (net_parse_spec): spaces around a member are
     * ignored, and a host is at most NET_SPEC_HOST_MAX bytes, so that
     * "HOST:PORT" fits a node_peer's address. */
    assert_int_equal(node_parse_cluster(" 1=h:7100 , 2=g:7102", p, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(p[0].host, "h");
    assert_int_equal(p[0].port, 7100);
    assert_int_equal(p[1].id, 2);
    char spec[128], host[NET_SPEC_HOST_MAX + 2];
    memset(host, 'a', NET_SPEC_HOST_MAX);
    host[NET_SPEC_HOST_MAX] = 0;
    snprintf(spec, sizeof spec, "1=%s:65534", host);
    assert_int_equal(node_parse_cluster(spec, p, &n, err, sizeof err), 0);
    assert_string_equal(p[0].host, host);
    char addr[RAFT_ADDR_MAX];
    assert_true(snprintf(addr, sizeof addr, "%s:%d", p[0].host, p[0].port + 1) < (int)sizeof addr);
    host[NET_SPEC_HOST_MAX] = 'a';
    host[NET_SPEC_HOST_MAX + 1] = 0;
    snprintf(spec, sizeof spec, "1=%s:7100", host);
    err[0] = 0;
    assert_int_equal(node_parse_cluster(spec, p, &n, err, sizeof err), -1);
    assert_true(err[0] != 0);

    const char *bad[] = {
        "",           "1",         "1=",
        "1=host",     "1=host:",   "x=host:1",
        "0=host:1",   "1=host:0",  "1=host:65535",
        "1=host:12x", "1=host:1,", "1=host:1,1=host:2",
        ",1=host:1",  "1=:5",      "1=a:1,2=a:2,3=a:3,4=a:4,5=a:5,6=a:6,7=a:7,8=a:8,9=a:9,10=a:10",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        if (node_parse_cluster(bad[i], p, &n, err, sizeof err) != -1)
            fail_msg("accepted bad spec \"%s\"", bad[i]);
        assert_true(err[0] != 0); /* every refusal says why */
    }
}

/* ---- a one-node cluster ---------------------------------------------------- */

static char dir[256];
static int port;

static int setup_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/hstore-test-node.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    /* peer and client ports of two nodes (test_refuses_foreign_directory) */
    port = test_free_ports("127.0.0.1", 4);
    return port > 0 ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The configuration of a one-node cluster on 127.0.0.1:p with data in d. */
static void one_node_config(node_config *c, int p, const char *d)
{
    node_config_init(c);
    c->id = 1;
    c->n_peers = 1;
    c->peers[0].id = 1;
    snprintf(c->peers[0].host, sizeof c->peers[0].host, "127.0.0.1");
    c->peers[0].port = p;
    snprintf(c->data_dir, sizeof c->data_dir, "%s", d);
    c->log_level = 0;
}

static node *start_one(void)
{
    node_config c;
    char d[300];
    snprintf(d, sizeof d, "%s/1", dir);
    one_node_config(&c, port, d);
    c.tick_ms = 10;
    c.op_timeout_ms = 30000;     /* a deadline only: a loaded machine must not fail a write */
    c.snapshot_threshold = 4096; /* a few snapshots during the test */
    char err[512];
    node *n = node_start(&c, err, sizeof err);
    if (!n)
        print_error("node_start: %s\n", err);
    return n;
}

static int submit(node *n, const kv_op *op, bool read, uint64_t cid, uint64_t seq, kv_reply *r)
{
    uint8_t *buf = NULL, *rep = NULL;
    size_t len = 0, rlen = 0;
    assert_int_equal(kv_op_encode(op, &buf, &len), 0);
    int rc = node_submit(n, buf, len, read, cid, seq, 0, &rep, &rlen);
    free(buf);
    if (rc == NODE_OK) {
        assert_int_equal(kv_reply_decode(rep, rlen, r), 0);
        free(rep);
    }
    return rc;
}

/* A PUT or APPEND (type) of val to key as (cid, seq) that must succeed. */
static void write_ok(node *n, uint8_t type, const char *key, const char *val, uint64_t cid,
                     uint64_t seq)
{
    kv_op op = {.type = type, .path = key, .data = (const uint8_t *)val, .data_len = strlen(val)};
    kv_reply r;
    assert_int_equal(submit(n, &op, false, cid, seq, &r), NODE_OK);
    assert_int_equal(r.status, 0);
    kv_reply_free(&r);
}

static void expect(node *n, const char *key, const char *val)
{
    kv_op op = {.type = KV_OP_GET, .path = key};
    kv_reply r;
    assert_int_equal(submit(n, &op, true, 0, 0, &r), NODE_OK);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.data_len, strlen(val));
    assert_memory_equal(r.data, val, r.data_len);
    kv_reply_free(&r);
}

static void test_one_node_cluster(void **state)
{
    (void)state;
    node *n = start_one();
    assert_non_null(n);

    /* Sessions are registered; the first registration waits for the
     * election.  Writes and linearizable reads through the loop. */
    uint64_t s1, s2;
    assert_int_equal(node_register(n, 0, &s1), NODE_OK);
    assert_int_equal(node_register(n, 0, &s2), NODE_OK);
    assert_true(s1 > 0 && s2 > s1);
    write_ok(n, KV_OP_PUT, "dir/greeting", "hello", s1, 1);
    expect(n, "dir/greeting", "hello");
    write_ok(n, KV_OP_APPEND, "dir/greeting", " world", s1, 2);
    expect(n, "dir/greeting", "hello world");

    /* A retry with the same (client id, seq) is answered, not applied again. */
    write_ok(n, KV_OP_APPEND, "dir/greeting", " world", s1, 2);
    expect(n, "dir/greeting", "hello world");

    /* A command without exactly-once ids is refused at once; a write op
     * submitted as a read is refused too. */
    kv_op op = {.type = KV_OP_PUT, .path = "x", .data = (const uint8_t *)"1", .data_len = 1};
    kv_reply r;
    assert_int_equal(submit(n, &op, false, 0, 1, &r), NODE_EINVAL);
    assert_int_equal(submit(n, &op, false, 7, 0, &r), NODE_EINVAL);
    assert_int_equal(submit(n, &op, true, 7, 1, &r), NODE_EINVAL);
    /* A read op as a command is refused before any proposal, and so are
     * malformed bytes. */
    kv_op g = {.type = KV_OP_GET, .path = "dir/greeting"};
    assert_int_equal(submit(n, &g, false, s1, 3, &r), NODE_EINVAL);
    uint8_t junk[3] = {1, 99, 0};
    uint8_t *rep = NULL;
    size_t rl = 0;
    assert_int_equal(node_submit(n, junk, sizeof junk, false, s1, 3, 0, &rep, &rl), NODE_EINVAL);
    /* An unregistered session: answered SESSION_EXPIRED, not applied. */
    assert_int_equal(submit(n, &op, false, 424242, 1, &r), NODE_OK);
    assert_int_equal(r.status, KV_ESESSION);
    kv_reply_free(&r);
    kv_op st_op = {.type = KV_OP_STAT, .path = "x"};
    assert_int_equal(submit(n, &st_op, true, 0, 0, &r), NODE_OK);
    assert_int_equal(r.status, ENOENT);
    kv_reply_free(&r);

    /* Enough data to pass the snapshot threshold several times. */
    char key[32], val[200];
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "bulk/%03d", i);
        write_ok(n, KV_OP_PUT, key, val, s2, (uint64_t)i + 1);
    }
    /* The status copy is refreshed after the batch that answered us; the
     * snapshot is written in the background, so it is awaited too. */
    raft_status st;
    time_t give_up = time(NULL) + 60;
    for (;;) {
        node_status(n, &st);
        /* no-op, limits, 2 registrations, put, append, the unknown
         * session's put, 100 puts; the retry adds nothing */
        if ((st.applied >= 107 && st.snapshot_index > 0) || time(NULL) > give_up)
            break;
        usleep(10000);
    }
    assert_int_equal(st.role, RAFT_LEADER);
    assert_true(st.applied >= 107);
    assert_true(st.snapshot_index > 0);
    node_stop(n);

    /* Restart from the same directory: everything is there, and the old
     * session still recognises its last command. */
    n = start_one();
    assert_non_null(n);
    expect(n, "dir/greeting", "hello world");
    expect(n, "bulk/099", val);
    write_ok(n, KV_OP_APPEND, "dir/greeting", " world", s1, 2);
    expect(n, "dir/greeting", "hello world");
    write_ok(n, KV_OP_APPEND, "dir/greeting", "!", s1, 3);
    expect(n, "dir/greeting", "hello world!");
    node_stop(n);
}

/* A command retried by the loop after it was applied in the meantime: the
 * retry answers it from the session (which frees a client-port request), and
 * the loop must not touch the request afterwards (this path once read the
 * freed request; ASan catches it).  To get there: the command is in the log
 * but not yet applied when the node restarts, the client sends it again
 * before the node is leader (the proposal fails and is retried), and the
 * replayed log applies it before the retry. */
static void test_retry_after_apply(void **state)
{
    (void)state;
    node_config c;
    char d[300];
    snprintf(d, sizeof d, "%s/1", dir);
    one_node_config(&c, port, d);
    c.tick_ms = 10;
    c.snapshot_threshold = 0; /* everything stays in the log */
    char err[512];
    node *n = node_start(&c, err, sizeof err);
    assert_non_null(n);
    uint64_t sid;
    assert_int_equal(node_register(n, 0, &sid), NODE_OK);
    write_ok(n, KV_OP_APPEND, "log", "A", sid, 1);
    node_stop(n);

    c.election_ticks = 60; /* at least 600 ms without a leader */
    n = node_start(&c, err, sizeof err);
    assert_non_null(n);
    char spec[64];
    snprintf(spec, sizeof spec, "1=127.0.0.1:%d", port);
    net_client *cl = net_client_new(spec, 8000, err, sizeof err);
    assert_non_null(cl);
    net_client_set_session(cl, sid, 1);
    kv_op op = {.type = KV_OP_APPEND, .path = "log", .data = (const uint8_t *)"A", .data_len = 1};
    uint8_t *ob;
    size_t ol;
    assert_int_equal(kv_op_encode(&op, &ob, &ol), 0);
    void *rep = NULL;
    size_t rl = 0;
    assert_int_equal(net_client_call(cl, false, ob, ol, &rep, &rl), NET_OK);
    assert_int_equal(kv_reply_status(rep, rl), 0);
    free(rep);
    free(ob);
    net_client_free(cl);
    expect(n, "log", "A"); /* applied once */
    node_stop(n);
}

/* Large values through the loop: a command past one part gets EFBIG at once
 * (not a timeout); the parts of an upload go in together through
 * node_submit_many, with sequence numbers in any order (parts bypass the
 * session), the commit makes the value visible, and reads are bounded. */
static void test_large_values(void **state)
{
    (void)state;
    node *n = start_one();
    assert_non_null(n);
    uint64_t sid;
    assert_int_equal(node_register(n, 0, &sid), NODE_OK);
    write_ok(n, KV_OP_PUT, "warm", "up", sid, 1);

    size_t big = 3 * KV_PART_SIZE + 123;
    uint8_t *v = malloc(big);
    assert_non_null(v);
    for (size_t i = 0; i < big; i++)
        v[i] = (uint8_t)(i * 31 + i / 7919);
    kv_op op = {.type = KV_OP_PUT, .path = "toolong", .data = v, .data_len = 2 * KV_PART_SIZE};
    kv_reply r;
    assert_int_equal(submit(n, &op, false, sid, 2, &r), NODE_OK);
    assert_int_equal(r.status, EFBIG);
    kv_reply_free(&r);

    node_cmd cmds[4];
    uint8_t *bufs[4];
    size_t np = 0;
    for (size_t off = 0; off < big; off += KV_PART_SIZE, np++) {
        size_t len = big - off < KV_PART_SIZE ? big - off : KV_PART_SIZE;
        kv_op part = {.type = KV_OP_UPLOAD_PART,
                      .upload = 99,
                      .off = off,
                      .len = big,
                      .data = v + off,
                      .data_len = len};
        size_t blen;
        assert_int_equal(kv_op_encode(&part, &bufs[np], &blen), 0);
        /* seqs in reverse: a later part applied first makes none stale */
        cmds[np] = (node_cmd){.op = bufs[np], .len = blen, .client_id = sid, .seq = 10 - np};
    }
    assert_int_equal(np, 4);
    assert_int_equal(node_submit_many(n, cmds, np, 0), NODE_OK);
    for (size_t i = 0; i < np; i++) {
        assert_int_equal(cmds[i].rc, NODE_OK);
        assert_int_equal(kv_reply_status(cmds[i].reply, cmds[i].reply_len), 0);
        free(cmds[i].reply);
        free(bufs[i]);
    }
    kv_op get = {.type = KV_OP_STAT, .path = "big"};
    assert_int_equal(submit(n, &get, true, 0, 0, &r), NODE_OK);
    assert_int_equal(r.status, ENOENT); /* not visible before the commit */
    kv_reply_free(&r);
    kv_op commit = {.type = KV_OP_UPLOAD_COMMIT, .upload = 99, .path = "big", .len = big};
    assert_int_equal(submit(n, &commit, false, sid, 11, &r), NODE_OK);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.attr.size, big);
    kv_reply_free(&r);
    for (size_t off = 0; off < big;) {
        kv_op gr = {.type = KV_OP_GETRANGE, .path = "big", .off = off, .len = 64u << 20};
        assert_int_equal(submit(n, &gr, true, 0, 0, &r), NODE_OK);
        assert_int_equal(r.status, 0);
        assert_true(r.data_len > 0 && r.data_len <= KV_READ_MAX);
        assert_memory_equal(r.data, v + off, r.data_len);
        off += r.data_len;
        kv_reply_free(&r);
    }
    free(v);
    node_stop(n);
}

/* The membership API on a one-node cluster: the list, the errors, and a
 * learner that never catches up (nothing listens at its address): the add
 * times out with the node still a learner, and the learner can be removed. */
static void test_membership_api(void **state)
{
    (void)state;
    node *n = start_one();
    assert_non_null(n);
    uint64_t sid;
    assert_int_equal(node_register(n, 0, &sid), NODE_OK); /* waits for the election */
    node_member_result r;
    assert_int_equal(node_member_list(n, &r), NODE_OK);
    assert_int_equal(r.conf.n, 1);
    assert_int_equal(r.conf.ids[0], 1);
    assert_false(r.conf.learner[0]);
    assert_int_equal(r.leader_id, 1);
    assert_int_equal(node_member_add(n, 2, "no port", 1000, &r), NODE_EINVAL);
    assert_int_equal(node_member_add(n, 0, "127.0.0.1:1", 1000, &r), NODE_EINVAL);
    assert_int_equal(node_member_remove(n, 9, 1000, &r), NODE_ENOTMEMBER);
    assert_int_equal(node_member_remove(n, 1, 1000, &r), NODE_EINVAL); /* the only voter */
    assert_int_equal(node_member_transfer(n, 1, 1000, &r), NODE_OK);   /* leads already */
    assert_int_equal(node_member_transfer(n, 9, 1000, &r), NODE_ENOTMEMBER);
    assert_int_equal(node_member_add(n, 2, "127.0.0.1:1", 1500, &r), NODE_ETIMEDOUT);
    assert_int_equal(r.conf.n, 2);
    assert_true(r.conf.learner[1]);
    assert_int_equal(node_member_transfer(n, 2, 1000, &r), NODE_EINVAL); /* a learner */
    /* Same id at another address: refused; at the same one: still a learner. */
    assert_int_equal(node_member_add(n, 2, "127.0.0.1:3", 1000, &r), NODE_EINVAL);
    assert_int_equal(node_member_remove(n, 2, 5000, &r), NODE_OK);
    assert_int_equal(node_member_list(n, &r), NODE_OK);
    assert_int_equal(r.conf.n, 1);
    node_stop(n);
}

static void test_refuses_foreign_directory(void **state)
{
    (void)state;
    char sub[300], path[400];
    snprintf(sub, sizeof sub, "%s/junk", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(path, sizeof path, "%s/hstore.db", sub);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not a database, just some text that is long enough to matter\n", f);
    fclose(f);
    node_config c;
    one_node_config(&c, port + 2, sub);
    char err[512] = "";
    assert_null(node_start(&c, err, sizeof err));
    assert_non_null(strstr(err, path)); /* the message names the file */

    /* An id that is not in the cluster is refused before anything is opened. */
    c.id = 2;
    err[0] = 0;
    assert_null(node_start(&c, err, sizeof err));
    assert_true(err[0] != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_cluster),
        cmocka_unit_test_setup_teardown(test_one_node_cluster, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_retry_after_apply, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_large_values, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_membership_api, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_refuses_foreign_directory, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
