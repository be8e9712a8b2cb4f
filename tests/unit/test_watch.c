/*
 * test_watch.c — the ring of recent changes (node/watch.c): which applied
 * entries become changes and with which keys, prefix filtering, reading in
 * batches, a reader that fell behind the ring (lost), a gap in the applied
 * indexes (a snapshot installed), and a reader waiting for a change that a
 * second thread notes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <unistd.h>

#include "node/watch_internal.h"
#include "raftkv/kv.h"

/* Notes a command of op type t on path (path2) at index, answered with
 * status st. */
static void note(node_watch *w, uint64_t index, int t, const char *path, const char *path2,
                 uint64_t ino, int st)
{
    kv_op op = {.type = (uint8_t)t, .path = path, .path2 = path2, .ino = ino};
    if (t == KV_OP_PUT || t == KV_OP_APPEND)
        op.data = (const uint8_t *)"v", op.data_len = 1;
    uint8_t *ob, *cmd, *rep;
    size_t ol, cl, rl;
    assert_int_equal(kv_op_encode(&op, &ob, &ol), 0);
    assert_int_equal(kv_cmd_encode(7, index, 0, ob, ol, &cmd, &cl), 0);
    assert_int_equal(kv_reply_encode_status(st, &rep, &rl), 0);
    raft_entry e = {.index = index, .term = 1, .type = RAFT_ENTRY_NORMAL, .data = cmd, .len = cl};
    watch_note(w, &e, rep, rl);
    free(ob);
    free(cmd);
    free(rep);
}

static void note_other(node_watch *w, uint64_t index)
{
    raft_entry e = {.index = index, .term = 1, .type = RAFT_ENTRY_CONF};
    watch_note(w, &e, NULL, 0);
}

static void test_changes(void **state)
{
    (void)state;
    node_watch *w = watch_new(0);
    note(w, 1, KV_OP_PUT, "a/x", NULL, 0, 0);
    note(w, 2, KV_OP_GET, "a/x", NULL, 0, 0);      /* a read: not a change */
    note(w, 3, KV_OP_PUT, "b", NULL, 0, 2);        /* failed: not a change */
    note_other(w, 4);                              /* not a command */
    note(w, 5, KV_OP_RENAME, "/b/y", "a/z", 0, 0); /* leading / dropped */
    note(w, 6, KV_OP_WRITE_AT, NULL, NULL, 42, 0); /* by inode */
    note(w, 7, KV_OP_DEL, "a/x", NULL, 0, 0);
    note(w, 8, KV_OP_REGISTER, NULL, NULL, 0, 0); /* not a change */
    node_change c[8];
    bool lost;
    uint64_t from = 1;
    size_t n = watch_read(w, &from, "", c, 8, 0, &lost);
    assert_false(lost);
    assert_int_equal(n, 4);
    assert_int_equal(from, 9);
    assert_int_equal(c[0].index, 1);
    assert_int_equal(c[0].op, KV_OP_PUT);
    assert_string_equal(c[0].key, "a/x");
    assert_null(c[0].key2);
    assert_int_equal(c[1].index, 5);
    assert_string_equal(c[1].key, "b/y");
    assert_string_equal(c[1].key2, "a/z");
    assert_int_equal(c[2].index, 6);
    assert_null(c[2].key);
    assert_int_equal(c[2].ino, 42);
    assert_int_equal(c[3].op, KV_OP_DEL);
    node_changes_free(c, n);

    /* a prefix: either key of a rename matches; keyless changes do not */
    from = 1;
    n = watch_read(w, &from, "a/", c, 8, 0, &lost);
    assert_int_equal(n, 3);
    assert_int_equal(c[0].index, 1);
    assert_int_equal(c[1].index, 5);
    assert_int_equal(c[2].index, 7);
    node_changes_free(c, n);

    /* in batches, and nothing more after the end */
    from = 2;
    n = watch_read(w, &from, NULL, c, 1, 0, &lost);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].index, 5);
    assert_int_equal(from, 6);
    node_changes_free(c, n);
    n = watch_read(w, &from, NULL, c, 8, 0, &lost);
    assert_int_equal(n, 2);
    node_changes_free(c, n);
    assert_int_equal(from, 9);
    n = watch_read(w, &from, NULL, c, 8, 0, &lost);
    assert_int_equal(n, 0);
    assert_false(lost);
    watch_free(w);
}

static void test_lost(void **state)
{
    (void)state;
    node_watch *w = watch_new(100);
    node_change c[4];
    bool lost;
    uint64_t from = 50; /* before the node started: unknown */
    assert_int_equal(watch_read(w, &from, "", c, 4, 0, &lost), 0);
    assert_true(lost);
    assert_int_equal(from, 101);
    for (uint64_t i = 101; i <= 100 + NODE_WATCH_RING + 10; i++)
        note(w, i, KV_OP_PUT, "k", NULL, 0, 0);
    from = 101;
    size_t n = watch_read(w, &from, "", c, 4, 0, &lost);
    assert_true(lost);
    assert_int_equal(n, 4);
    assert_int_equal(c[0].index, 111); /* the oldest still held */
    node_changes_free(c, n);
    /* a gap in the indexes (a snapshot installed) */
    uint64_t last = 100 + NODE_WATCH_RING + 10;
    note(w, last + 50, KV_OP_PUT, "k", NULL, 0, 0);
    from = last + 1;
    n = watch_read(w, &from, "", c, 4, 0, &lost);
    assert_true(lost);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].index, last + 50);
    node_changes_free(c, n);
    watch_free(w);
}

static void *later(void *arg)
{
    usleep(100 * 1000);
    note(arg, 1, KV_OP_PUT, "late", NULL, 0, 0);
    return NULL;
}

static void test_wait(void **state)
{
    (void)state;
    node_watch *w = watch_new(0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, later, w), 0);
    node_change c[2];
    bool lost;
    uint64_t from = 1;
    size_t n = watch_read(w, &from, "", c, 2, 10000, &lost);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].key, "late");
    node_changes_free(c, n);
    pthread_join(t, NULL);
    /* nothing comes: the wait ends at its deadline */
    n = watch_read(w, &from, "", c, 2, 50, &lost);
    assert_int_equal(n, 0);
    watch_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changes),
        cmocka_unit_test(test_lost),
        cmocka_unit_test(test_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
