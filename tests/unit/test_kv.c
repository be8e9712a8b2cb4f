/*
 * test_kv.c — the key-value/filesystem state machine (raftkv/kv*.[ch]):
 * every operation and its error codes, path rules, rename(2) cases, hard
 * links, sparse files, limits, exactly-once sessions and their expiry,
 * open references, snapshot round trips, determinism across replicas,
 * malformed bytes of every kind, and the exact bytes of an op, a command, a
 * reply and a snapshot (pinned: logs and snapshot files hold them).  The
 * small-file memory measurement prints its numbers (HSTORE_TEST_MODE=long
 * uses a million files).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "raftkv/byte.h"
#include "raftkv/kv.h"

/* ---- helpers ------------------------------------------------------------------- */

typedef struct tk {
    kv *k;
    uint64_t index;
    int64_t time;
} tk;

static const char *mode_str(void)
{
    const char *m = getenv("HSTORE_TEST_MODE");
    return m ? m : "normal";
}

static tk mk(const kv_limits *lim)
{
    tk t = {kv_new(lim), 0, 1000000000};
    assert_non_null(t.k);
    return t;
}

/* Applies op as a command of client (0 = no session); fills r (caller frees). */
static int cmd_c(tk *t, uint64_t client, uint64_t seq, kv_op *op, kv_reply *r)
{
    uint8_t *ob, *cb, *rb;
    size_t ol, cl, rl;
    assert_int_equal(kv_op_encode(op, &ob, &ol), 0);
    t->time += 1000;
    assert_int_equal(kv_cmd_encode(client, seq, t->time, ob, ol, &cb, &cl), 0);
    assert_int_equal(kv_apply(t->k, ++t->index, cb, cl, &rb, &rl), 0);
    assert_int_equal(kv_reply_decode(rb, rl, r), 0);
    free(ob);
    free(cb);
    free(rb);
    return r->status;
}

static int cmd(tk *t, kv_op *op, kv_reply *r)
{
    return cmd_c(t, 0, 0, op, r);
}

/* Applies REGISTER at index with the given time; returns the session id. */
static uint64_t reg_at(kv *k, uint64_t index, int64_t time)
{
    kv_op o = {.type = KV_OP_REGISTER};
    uint8_t *ob, *cb, *rb;
    size_t ol, cl, rl;
    assert_int_equal(kv_op_encode(&o, &ob, &ol), 0);
    assert_int_equal(kv_cmd_encode(0x5eed, 0, time, ob, ol, &cb, &cl), 0);
    assert_int_equal(kv_apply(k, index, cb, cl, &rb, &rl), 0);
    uint64_t id = kv_reply_session_id(rb, rl);
    assert_int_equal(id, index);
    free(ob);
    free(cb);
    free(rb);
    return id;
}

static uint64_t reg(tk *t)
{
    t->time += 1000;
    return reg_at(t->k, ++t->index, t->time);
}

static int cmd_st(tk *t, kv_op *op)
{
    kv_reply r;
    int st = cmd(t, op, &r);
    kv_reply_free(&r);
    return st;
}

static int query(tk *t, kv_op *op, kv_reply *r)
{
    uint8_t *ob, *rb;
    size_t ol, rl;
    assert_int_equal(kv_op_encode(op, &ob, &ol), 0);
    assert_true(kv_op_is_read(ob, ol));
    assert_int_equal(kv_query(t->k, ob, ol, &rb, &rl), 0);
    assert_int_equal(kv_reply_decode(rb, rl, r), 0);
    free(ob);
    free(rb);
    return r->status;
}

static int put(tk *t, const char *p, const char *v)
{
    kv_op o = {.type = KV_OP_PUT, .path = p, .data = (const uint8_t *)v, .data_len = strlen(v)};
    return cmd_st(t, &o);
}
static int append(tk *t, const char *p, const char *v)
{
    kv_op o = {.type = KV_OP_APPEND, .path = p, .data = (const uint8_t *)v, .data_len = strlen(v)};
    return cmd_st(t, &o);
}
static int del(tk *t, const char *p)
{
    kv_op o = {.type = KV_OP_DEL, .path = p};
    return cmd_st(t, &o);
}
static int simple(tk *t, int type, const char *p)
{
    kv_op o = {.type = (uint8_t)type, .path = p, .mode = 0755};
    return cmd_st(t, &o);
}
static int mkdir_(tk *t, const char *p)
{
    return simple(t, KV_OP_MKDIR, p);
}
static int rename_(tk *t, const char *a, const char *b, uint32_t fl)
{
    kv_op o = {.type = KV_OP_RENAME, .path = a, .path2 = b, .flags = fl};
    return cmd_st(t, &o);
}

/* GET into a malloc'ed NUL-terminated string; status returned */
static int get(tk *t, const char *p, char **out)
{
    kv_op o = {.type = KV_OP_GET, .path = p};
    kv_reply r;
    int st = query(t, &o, &r);
    *out = NULL;
    if (st == 0) {
        *out = malloc(r.data_len + 1);
        memcpy(*out, r.data, r.data_len);
        (*out)[r.data_len] = 0;
    }
    kv_reply_free(&r);
    return st;
}

static void assert_get(tk *t, const char *p, const char *want)
{
    char *v;
    assert_int_equal(get(t, p, &v), 0);
    assert_string_equal(v, want);
    free(v);
}

static int stat_(tk *t, const char *p, kv_attr *a)
{
    kv_op o = {.type = KV_OP_STAT, .path = p};
    kv_reply r;
    int st = query(t, &o, &r);
    if (st == 0) {
        assert_true(r.has & KV_R_ATTR);
        *a = r.attr;
    }
    kv_reply_free(&r);
    return st;
}

static int stat_ino(tk *t, uint64_t ino, kv_attr *a)
{
    kv_op o = {.type = KV_OP_STAT, .ino = ino};
    kv_reply r;
    int st = query(t, &o, &r);
    if (st == 0)
        *a = r.attr;
    kv_reply_free(&r);
    return st;
}

static void snap(kv *k, uint8_t **b, size_t *l)
{
    assert_int_equal(kv_snapshot_encode(k, b, l), 0);
}

static void done(tk *t)
{
    kv_free(t->k);
}

/* ---- key-value operations ---------------------------------------------------------- */

static void test_put_get(void **s)
{
    (void)s;
    tk t = mk(NULL);
    assert_int_equal(put(&t, "a/b/c", "hello"), 0);
    assert_get(&t, "a/b/c", "hello");
    assert_get(&t, "/a/b/c", "hello");
    kv_attr a;
    assert_int_equal(stat_(&t, "a", &a), 0);
    assert_int_equal(a.mode, S_IFDIR | 0755);
    assert_int_equal(stat_(&t, "a/b/c", &a), 0);
    assert_int_equal(a.mode, S_IFREG | 0644);
    assert_int_equal(a.size, 5);
    assert_int_equal(a.nlink, 1);
    uint64_t ino = a.ino;
    assert_int_equal(put(&t, "a/b/c", "x"), 0); /* replace keeps the inode */
    assert_get(&t, "a/b/c", "x");
    assert_int_equal(stat_(&t, "a/b/c", &a), 0);
    assert_int_equal(a.ino, ino);
    assert_int_equal(put(&t, "a/b/c", ""), 0);
    assert_get(&t, "a/b/c", "");
    char *v;
    assert_int_equal(get(&t, "a/b", &v), EISDIR);
    assert_int_equal(get(&t, "a/nope", &v), ENOENT);
    assert_int_equal(put(&t, "a/b", "x"), EISDIR);
    assert_int_equal(put(&t, "a/b/c/d", "x"), ENOTDIR); /* c is a file */
    assert_int_equal(put(&t, "/", "x"), EISDIR);
    /* binary-safe */
    uint8_t bin[300];
    for (int i = 0; i < 300; i++)
        bin[i] = (uint8_t)i;
    kv_op o = {.type = KV_OP_PUT, .path = "bin", .data = bin, .data_len = sizeof bin};
    assert_int_equal(cmd_st(&t, &o), 0);
    kv_op g = {.type = KV_OP_GET, .path = "bin"};
    kv_reply r;
    assert_int_equal(query(&t, &g, &r), 0);
    assert_int_equal(r.data_len, 300);
    assert_memory_equal(r.data, bin, 300);
    kv_reply_free(&r);
    /* a large value goes to chunks and reads back */
    size_t big = 3 * KV_CHUNK_SIZE + 17;
    uint8_t *bb = malloc(big);
    for (size_t i = 0; i < big; i++)
        bb[i] = (uint8_t)(i * 7 + 1);
    kv_op pb = {.type = KV_OP_PUT, .path = "big", .data = bb, .data_len = big};
    assert_int_equal(cmd_st(&t, &pb), 0);
    kv_op gb = {.type = KV_OP_GET, .path = "big"};
    assert_int_equal(query(&t, &gb, &r), 0);
    assert_int_equal(r.data_len, big);
    assert_memory_equal(r.data, bb, big);
    kv_reply_free(&r);
    free(bb);
    done(&t);
}

static void test_append(void **s)
{
    (void)s;
    tk t = mk(NULL);
    assert_int_equal(append(&t, "d/log", "one\n"), 0);
    assert_int_equal(append(&t, "d/log", "two\n"), 0);
    assert_get(&t, "d/log", "one\ntwo\n");
    assert_int_equal(append(&t, "d", "x"), EISDIR);
    /* appends crossing a chunk boundary */
    char piece[1000];
    memset(piece, 'z', sizeof piece - 1);
    piece[sizeof piece - 1] = 0;
    for (int i = 0; i < 100; i++)
        assert_int_equal(append(&t, "d/big", piece), 0);
    kv_attr a;
    assert_int_equal(stat_(&t, "d/big", &a), 0);
    assert_int_equal(a.size, 99900);
    kv_op g = {.type = KV_OP_GETRANGE, .path = "d/big", .off = KV_CHUNK_SIZE - 2, .len = 4};
    kv_reply r;
    assert_int_equal(query(&t, &g, &r), 0);
    assert_int_equal(r.data_len, 4);
    assert_memory_equal(r.data, "zzzz", 4);
    kv_reply_free(&r);
    /* the reply carries the new size */
    kv_op ap = {.type = KV_OP_APPEND, .path = "d/log", .data = (const uint8_t *)"3", .data_len = 1};
    assert_int_equal(cmd(&t, &ap, &r), 0);
    assert_true(r.has & KV_R_ATTR);
    assert_int_equal(r.attr.size, 9);
    kv_reply_free(&r);
    done(&t);
}

static void test_del(void **s)
{
    (void)s;
    tk t = mk(NULL);
    assert_int_equal(put(&t, "a/b", "1"), 0);
    assert_int_equal(del(&t, "a"), ENOTEMPTY);
    assert_int_equal(del(&t, "a/b"), 0);
    char *v;
    assert_int_equal(get(&t, "a/b", &v), ENOENT);
    assert_int_equal(del(&t, "a/b"), ENOENT);
    assert_int_equal(del(&t, "a"), 0); /* empty directory */
    kv_attr a;
    assert_int_equal(stat_(&t, "a", &a), ENOENT);
    assert_int_equal(del(&t, "/"), EBUSY);
    assert_int_equal(del(&t, "x/y"), ENOENT);
    kv_stats st;
    kv_get_stats(t.k, &st);
    assert_int_equal(st.inodes, 1);
    assert_int_equal(st.bytes_used, 0);
    done(&t);
}

static void test_list(void **s)
{
    (void)s;
    tk t = mk(NULL);
    assert_int_equal(put(&t, "b", "1"), 0);
    assert_int_equal(put(&t, "a/x", "1"), 0);
    assert_int_equal(put(&t, "a.txt", "1"), 0);
    assert_int_equal(put(&t, "a/y/z", "1"), 0);
    assert_int_equal(mkdir_(&t, "empty"), 0);
    kv_op sl = {.type = KV_OP_SYMLINK, .path = "lnk", .data = (const uint8_t *)"b", .data_len = 1};
    assert_int_equal(cmd_st(&t, &sl), 0);
    kv_op fifo = {.type = KV_OP_MKNOD, .path = "fifo", .mode = S_IFIFO | 0600};
    assert_int_equal(cmd_st(&t, &fifo), 0);
    kv_op l = {.type = KV_OP_LIST, .path = ""};
    kv_reply r;
    assert_int_equal(query(&t, &l, &r), 0);
    const char *want[] = {"a.txt", "a/x", "a/y/z", "b", "lnk"};
    assert_int_equal(r.n_names, 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(r.names[i], want[i]);
    kv_reply_free(&r);
    l.path = "/a/";
    assert_int_equal(query(&t, &l, &r), 0);
    assert_int_equal(r.n_names, 2);
    assert_string_equal(r.names[0], "a/x");
    assert_string_equal(r.names[1], "a/y/z");
    kv_reply_free(&r);
    l.path = "a"; /* plain string prefix */
    assert_int_equal(query(&t, &l, &r), 0);
    assert_int_equal(r.n_names, 3);
    kv_reply_free(&r);
    l.path = "a/y/z";
    assert_int_equal(query(&t, &l, &r), 0);
    assert_int_equal(r.n_names, 1);
    kv_reply_free(&r);
    l.path = "zzz";
    assert_int_equal(query(&t, &l, &r), 0);
    assert_int_equal(r.n_names, 0);
    kv_reply_free(&r);
    done(&t);
}

/* ---- paths -------------------------------------------------------------------------- */

static void test_paths(void **s)
{
    (void)s;
    tk t = mk(NULL);
    assert_int_equal(put(&t, "a//b", "x"), EINVAL);
    assert_int_equal(put(&t, "//a", "x"), EINVAL);
    assert_int_equal(put(&t, "a/./b", "x"), EINVAL);
    assert_int_equal(put(&t, "a/../b", "x"), EINVAL);
    assert_int_equal(put(&t, ".", "x"), EINVAL);
    assert_int_equal(put(&t, "a/", "x"), EINVAL);
    assert_int_equal(put(&t, "..x", "x"), 0); /* only exact . and .. are special */
    kv_op nul = {.type = KV_OP_PUT, .path = "a\0b", .path_len = 3};
    assert_int_equal(cmd_st(&t, &nul), EINVAL);
    char name[300];
    memset(name, 'n', 255);
    name[255] = 0;
    assert_int_equal(put(&t, name, "x"), 0);
    assert_get(&t, name, "x");
    memset(name, 'n', 256);
    name[256] = 0;
    assert_int_equal(put(&t, name, "x"), ENAMETOOLONG);
    /* path length: 4096 bytes is fine, 4097 is not */
    char *p = malloc(5000);
    size_t n = 0;
    while (n + 101 < 4096) {
        memset(p + n, 'd', 100);
        n += 100;
        p[n++] = '/';
    }
    while (n < 4096)
        p[n++] = 'f';
    p[n] = 0;
    assert_int_equal(strlen(p), 4096);
    assert_int_equal(put(&t, p, "deep"), 0);
    assert_get(&t, p, "deep");
    p[n++] = 'f';
    p[n] = 0;
    assert_int_equal(put(&t, p, "x"), ENAMETOOLONG);
    free(p);
    kv_attr a;
    assert_int_equal(stat_(&t, "", &a), 0);
    assert_int_equal(a.ino, KV_ROOT_INO);
    assert_int_equal(stat_(&t, "/", &a), 0);
    assert_int_equal(a.ino, KV_ROOT_INO);
    assert_int_equal(put(&t, "file", "x"), 0);
    assert_int_equal(stat_(&t, "file/x", &a), ENOTDIR);
    assert_int_equal(stat_(&t, "nodir/x", &a), ENOENT);
    /* a symlink in the middle is not followed */
    kv_op sl = {.type = KV_OP_SYMLINK, .path = "l", .data = (const uint8_t *)"dddd", .data_len = 4};
    assert_int_equal(cmd_st(&t, &sl), 0);
    assert_int_equal(stat_(&t, "l/x", &a), ENOTDIR);
    done(&t);
}

/* ---- filesystem operations ----------------------------------------------------------- */

static void test_create_mkdir_rmdir_unlink(void **s)
{
    (void)s;
    tk t = mk(NULL);
    kv_op c = {.type = KV_OP_CREATE,
               .path = "f",
               .mode = 0600,
               .uid = 7,
               .gid = 8,
               .flags = KV_CREATE_EXCL};
    kv_reply r;
    assert_int_equal(cmd(&t, &c, &r), 0);
    assert_int_equal(r.attr.mode, S_IFREG | 0600);
    assert_int_equal(r.attr.uid, 7);
    assert_int_equal(r.attr.gid, 8);
    assert_int_equal(r.attr.size, 0);
    kv_reply_free(&r);
    assert_int_equal(cmd_st(&t, &c), EEXIST);
    assert_int_equal(put(&t, "f", "data"), 0);
    c.flags = 0;
    assert_int_equal(cmd_st(&t, &c), 0); /* exists, no trunc: left alone */
    assert_get(&t, "f", "data");
    c.flags = KV_CREATE_TRUNC;
    assert_int_equal(cmd_st(&t, &c), 0);
    assert_get(&t, "f", "");
    c.path = "nodir/f";
    assert_int_equal(cmd_st(&t, &c), ENOENT);
    c.path = "f/g";
    assert_int_equal(cmd_st(&t, &c), ENOTDIR);
    assert_int_equal(mkdir_(&t, "d"), 0);
    c.path = "d";
    assert_int_equal(cmd_st(&t, &c), EISDIR);
    c.flags = KV_CREATE_EXCL;
    assert_int_equal(cmd_st(&t, &c), EEXIST);
    /* mkdir */
    assert_int_equal(mkdir_(&t, "d"), EEXIST);
    assert_int_equal(mkdir_(&t, "f"), EEXIST);
    assert_int_equal(mkdir_(&t, "/"), EEXIST);
    assert_int_equal(mkdir_(&t, "x/y"), ENOENT);
    kv_attr a, root;
    assert_int_equal(stat_(&t, "/", &root), 0);
    assert_int_equal(root.nlink, 3); /* ., .., d */
    assert_int_equal(mkdir_(&t, "d/e"), 0);
    assert_int_equal(stat_(&t, "d", &a), 0);
    assert_int_equal(a.nlink, 3);
    /* rmdir */
    assert_int_equal(simple(&t, KV_OP_RMDIR, "d"), ENOTEMPTY);
    assert_int_equal(simple(&t, KV_OP_RMDIR, "f"), ENOTDIR);
    assert_int_equal(simple(&t, KV_OP_RMDIR, "/"), EBUSY);
    assert_int_equal(simple(&t, KV_OP_RMDIR, "zz"), ENOENT);
    assert_int_equal(simple(&t, KV_OP_RMDIR, "d/e"), 0);
    assert_int_equal(stat_(&t, "d", &a), 0);
    assert_int_equal(a.nlink, 2);
    /* unlink */
    assert_int_equal(simple(&t, KV_OP_UNLINK, "d"), EISDIR);
    assert_int_equal(simple(&t, KV_OP_UNLINK, "/"), EISDIR);
    assert_int_equal(simple(&t, KV_OP_UNLINK, "zz"), ENOENT);
    assert_int_equal(simple(&t, KV_OP_UNLINK, "f"), 0);
    assert_int_equal(stat_(&t, "f", &a), ENOENT);
    assert_int_equal(simple(&t, KV_OP_RMDIR, "d"), 0);
    assert_int_equal(stat_(&t, "/", &root), 0);
    assert_int_equal(root.nlink, 2);
    done(&t);
}

static void test_mknod_symlink_readlink(void **s)
{
    (void)s;
    tk t = mk(NULL);
    kv_op m = {.type = KV_OP_MKNOD, .path = "fifo", .mode = S_IFIFO | 0640};
    assert_int_equal(cmd_st(&t, &m), 0);
    kv_attr a;
    assert_int_equal(stat_(&t, "fifo", &a), 0);
    assert_int_equal(a.mode, S_IFIFO | 0640);
    assert_int_equal(cmd_st(&t, &m), EEXIST);
    kv_op dev = {.type = KV_OP_MKNOD, .path = "null", .mode = S_IFCHR | 0666, .rdev = 0x103};
    assert_int_equal(cmd_st(&t, &dev), 0);
    assert_int_equal(stat_(&t, "null", &a), 0);
    assert_int_equal(a.rdev, 0x103);
    kv_op bad = {.type = KV_OP_MKNOD, .path = "dir", .mode = S_IFDIR | 0755};
    assert_int_equal(cmd_st(&t, &bad), EINVAL);
    char *v;
    assert_int_equal(get(&t, "fifo", &v), 0); /* no data */
    assert_string_equal(v, "");
    free(v);
    kv_op gr = {.type = KV_OP_GETRANGE, .path = "fifo", .len = 10};
    kv_reply r;
    assert_int_equal(query(&t, &gr, &r), EINVAL);
    kv_reply_free(&r);
    /* symlinks */
    kv_op sl = {.type = KV_OP_SYMLINK,
                .path = "ln",
                .data = (const uint8_t *)"../target",
                .data_len = 9,
                .uid = 5};
    assert_int_equal(cmd_st(&t, &sl), 0);
    assert_int_equal(cmd_st(&t, &sl), EEXIST);
    assert_int_equal(stat_(&t, "ln", &a), 0);
    assert_int_equal(a.mode, S_IFLNK | 0777);
    assert_int_equal(a.size, 9);
    assert_int_equal(a.uid, 5);
    kv_op rl = {.type = KV_OP_READLINK, .path = "ln"};
    assert_int_equal(query(&t, &rl, &r), 0);
    assert_int_equal(r.data_len, 9);
    assert_memory_equal(r.data, "../target", 9);
    kv_reply_free(&r);
    rl.path = "fifo";
    assert_int_equal(query(&t, &rl, &r), EINVAL);
    kv_reply_free(&r);
    rl.path = "none";
    assert_int_equal(query(&t, &rl, &r), ENOENT);
    kv_reply_free(&r);
    sl.path = "empty";
    sl.data_len = 0;
    assert_int_equal(cmd_st(&t, &sl), ENOENT);
    char *longt = malloc(KV_PATH_MAX + 2);
    memset(longt, 'x', KV_PATH_MAX + 1);
    sl.data = (const uint8_t *)longt;
    sl.data_len = KV_PATH_MAX + 1;
    assert_int_equal(cmd_st(&t, &sl), ENAMETOOLONG);
    free(longt);
    assert_get(&t, "ln", "../target"); /* GET of a symlink gives its target */
    assert_int_equal(del(&t, "ln"), 0);
    assert_int_equal(del(&t, "fifo"), 0);
    done(&t);
}

static void test_readdir(void **s)
{
    (void)s;
    tk t = mk(NULL);
    assert_int_equal(put(&t, "d/zeta", "1"), 0);
    assert_int_equal(put(&t, "d/alpha", "1"), 0);
    assert_int_equal(mkdir_(&t, "d/mid"), 0);
    kv_op o = {.type = KV_OP_READDIR, .path = "d"};
    kv_reply r;
    assert_int_equal(query(&t, &o, &r), 0);
    assert_int_equal(r.n_entries, 3);
    assert_string_equal(r.entries[0].name, "alpha");
    assert_string_equal(r.entries[1].name, "mid");
    assert_string_equal(r.entries[2].name, "zeta");
    assert_true(S_ISDIR(r.entries[1].mode));
    assert_true(S_ISREG(r.entries[0].mode));
    kv_attr a;
    assert_int_equal(stat_(&t, "d/zeta", &a), 0);
    assert_int_equal(r.entries[2].ino, a.ino);
    kv_reply_free(&r);
    o.path = "d/zeta";
    assert_int_equal(query(&t, &o, &r), ENOTDIR);
    kv_reply_free(&r);
    o.path = "nope";
    assert_int_equal(query(&t, &o, &r), ENOENT);
    kv_reply_free(&r);
    o.path = "d/mid";
    assert_int_equal(query(&t, &o, &r), 0);
    assert_int_equal(r.n_entries, 0);
    kv_reply_free(&r);
    done(&t);
}

static void test_write_at_sparse(void **s)
{
    (void)s;
    tk t = mk(NULL);
    kv_op w = {.type = KV_OP_WRITE_AT,
               .path = "f",
               .off = 0,
               .data = (const uint8_t *)"abc",
               .data_len = 3};
    assert_int_equal(cmd_st(&t, &w), ENOENT);
    assert_int_equal(put(&t, "f", "hello world"), 0);
    w.off = 6;
    w.data = (const uint8_t *)"WORLD!";
    w.data_len = 6;
    assert_int_equal(cmd_st(&t, &w), 0);
    assert_get(&t, "f", "hello WORLD!");
    /* a write 1 MiB + 5 past the start leaves a hole of zeros */
    uint64_t off = (1u << 20) + 5;
    w.off = off;
    w.data = (const uint8_t *)"END";
    w.data_len = 3;
    assert_int_equal(cmd_st(&t, &w), 0);
    kv_attr a;
    assert_int_equal(stat_(&t, "f", &a), 0);
    assert_int_equal(a.size, off + 3);
    assert_true(a.blocks * 512 < 4 * KV_CHUNK_SIZE); /* the hole holds no memory */
    kv_op g = {.type = KV_OP_GETRANGE, .path = "f", .off = 10, .len = 300000};
    kv_reply r;
    assert_int_equal(query(&t, &g, &r), 0);
    assert_int_equal(r.data_len, 300000);
    assert_memory_equal(r.data, "D!", 2);
    for (size_t i = 2; i < r.data_len; i++)
        if (r.data[i])
            fail_msg("hole byte %zu is %d", i, r.data[i]);
    kv_reply_free(&r);
    g.off = off + 1; /* short at EOF */
    g.len = 100;
    assert_int_equal(query(&t, &g, &r), 0);
    assert_int_equal(r.data_len, 2);
    assert_memory_equal(r.data, "ND", 2);
    kv_reply_free(&r);
    g.off = off + 100; /* past EOF: empty */
    assert_int_equal(query(&t, &g, &r), 0);
    assert_int_equal(r.data_len, 0);
    kv_reply_free(&r);
    /* a small sparse write in a flat file */
    assert_int_equal(put(&t, "small", "ab"), 0);
    w.path = "small";
    w.off = 5;
    w.data = (const uint8_t *)"z";
    w.data_len = 1;
    assert_int_equal(cmd_st(&t, &w), 0);
    g.path = "small";
    g.off = 0;
    g.len = 10;
    assert_int_equal(query(&t, &g, &r), 0);
    assert_int_equal(r.data_len, 6);
    assert_memory_equal(r.data, "ab\0\0\0z", 6);
    kv_reply_free(&r);
    /* WRITE_AT on a directory, on a fifo */
    assert_int_equal(mkdir_(&t, "d"), 0);
    w.path = "d";
    assert_int_equal(cmd_st(&t, &w), EISDIR);
    kv_op m = {.type = KV_OP_MKNOD, .path = "p", .mode = S_IFIFO | 0600};
    assert_int_equal(cmd_st(&t, &m), 0);
    w.path = "p";
    assert_int_equal(cmd_st(&t, &w), EINVAL);
    done(&t);
}

/* File data chunks are recycled (kv_chunk.c): a file written over the chunks
 * of one just deleted or truncated reads zeros in its holes, never the old
 * bytes, and the chunks of several files (more than one 2 MiB region) never
 * overlap. */
/* A forked child (a snapshot's encoder) reads every chunk of the state,
 * including those of regions made ahead of need (kv_chunk.c keeps those
 * out of fork() only until they are taken). */
static void test_chunks_seen_by_fork(void **s)
{
    (void)s;
    tk t = mk(NULL);
    const size_t big = 12u << 20;
    uint8_t *data = malloc(big);
    assert_non_null(data);
    for (int f = 0; f < 3; f++) {
        memset(data, 'p' + f, big);
        char name[2] = {(char)('p' + f), 0};
        kv_op w = {.type = KV_OP_WRITE_AT, .path = name, .data = data, .data_len = big};
        assert_int_equal(put(&t, name, ""), 0);
        assert_int_equal(cmd_st(&t, &w), 0);
        struct timespec pause = {0, 50 * 1000 * 1000}; /* let regions be made ahead */
        nanosleep(&pause, NULL);
    }
    free(data);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL); /* a chunk missing in the child kills it */
        int bad = 0;
        for (int f = 0; f < 3 && !bad; f++) {
            char name[2] = {(char)('p' + f), 0};
            kv_op g = {.type = KV_OP_GETRANGE, .path = name, .len = 1u << 20};
            for (g.off = 0; g.off < big && !bad; g.off += 1u << 20) {
                kv_reply r;
                if (query(&t, &g, &r) != 0 || r.data_len != 1u << 20)
                    bad = 1;
                for (size_t i = 0; !bad && i < r.data_len; i++)
                    bad = r.data[i] != 'p' + f;
                kv_reply_free(&r);
            }
        }
        _exit(bad);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    done(&t);
}

static void test_chunks_recycled(void **s)
{
    (void)s;
    tk t = mk(NULL);
    const size_t big = 5u << 20; /* spans three regions */
    uint8_t *data = malloc(big);
    assert_non_null(data);
    for (int f = 0; f < 2; f++) {
        memset(data, 'a' + f, big);
        kv_op w = {.type = KV_OP_WRITE_AT, .path = f ? "b" : "a", .data = data, .data_len = big};
        assert_int_equal(put(&t, w.path, ""), 0);
        assert_int_equal(cmd_st(&t, &w), 0);
    }
    kv_op g = {.type = KV_OP_GETRANGE, .path = "a", .off = 0, .len = 1u << 20};
    kv_reply r;
    for (int f = 0; f < 2; f++) {
        g.path = f ? "b" : "a";
        for (g.off = 0; g.off < big; g.off += 1u << 20) {
            assert_int_equal(query(&t, &g, &r), 0);
            assert_int_equal(r.data_len, 1u << 20);
            for (size_t i = 0; i < r.data_len; i++)
                if (r.data[i] != 'a' + f)
                    fail_msg("%s byte %zu is %d", g.path, (size_t)g.off + i, r.data[i]);
            kv_reply_free(&r);
        }
    }
    /* a deleted file's chunks serve the next one: its hole reads zeros */
    assert_int_equal(del(&t, "a"), 0);
    assert_int_equal(put(&t, "c", ""), 0);
    kv_op w = {.type = KV_OP_WRITE_AT,
               .path = "c",
               .off = (4u << 20) + 1000, /* inside a chunk: its start is a hole */
               .data = (const uint8_t *)"END",
               .data_len = 3};
    assert_int_equal(cmd_st(&t, &w), 0);
    /* a truncated file's freed chunks too, and its extension reads zeros */
    kv_op tr = {.type = KV_OP_TRUNCATE, .path = "b", .len = 100000};
    assert_int_equal(cmd_st(&t, &tr), 0);
    w.path = "b";
    w.off = big - 3;
    assert_int_equal(cmd_st(&t, &w), 0);
    for (int f = 0; f < 2; f++) {
        g.path = f ? "b" : "c";
        size_t end = f ? big - 3 : (4u << 20) + 1000;
        for (g.off = f ? 100000 : 0; g.off < end; g.off += g.len) {
            g.len = end - g.off < (1u << 20) ? end - g.off : 1u << 20;
            assert_int_equal(query(&t, &g, &r), 0);
            assert_int_equal(r.data_len, g.len);
            for (size_t i = 0; i < r.data_len; i++)
                if (r.data[i])
                    fail_msg("%s hole byte %zu is %d", g.path, (size_t)g.off + i, r.data[i]);
            kv_reply_free(&r);
        }
    }
    g.path = "b";
    g.off = 99999;
    g.len = 2;
    assert_int_equal(query(&t, &g, &r), 0);
    assert_memory_equal(r.data, "b\0", 2);
    kv_reply_free(&r);
    free(data);
    done(&t);
}

static void test_truncate(void **s)
{
    (void)s;
    tk t = mk(NULL);
    assert_int_equal(put(&t, "f", "0123456789"), 0);
    kv_op tr = {.type = KV_OP_TRUNCATE, .path = "f", .len = 4};
    assert_int_equal(cmd_st(&t, &tr), 0);
    assert_get(&t, "f", "0123");
    tr.len = 8; /* grow: the old bytes must not come back */
    assert_int_equal(cmd_st(&t, &tr), 0);
    kv_op g = {.type = KV_OP_GET, .path = "f"};
    kv_reply r;
    assert_int_equal(query(&t, &g, &r), 0);
    assert_int_equal(r.data_len, 8);
    assert_memory_equal(r.data, "0123\0\0\0\0", 8);
    kv_reply_free(&r);
    /* chunked file: shrink to the middle of a chunk, grow again */
    size_t big = 2 * KV_CHUNK_SIZE + 100;
    uint8_t *b = malloc(big);
    memset(b, 0xAB, big);
    kv_op p = {.type = KV_OP_PUT, .path = "big", .data = b, .data_len = big};
    assert_int_equal(cmd_st(&t, &p), 0);
    tr.path = "big";
    tr.len = KV_CHUNK_SIZE + 10;
    assert_int_equal(cmd_st(&t, &tr), 0);
    tr.len = big;
    assert_int_equal(cmd_st(&t, &tr), 0);
    g.path = "big";
    assert_int_equal(query(&t, &g, &r), 0);
    assert_int_equal(r.data_len, big);
    for (size_t i = 0; i < big; i++)
        if (r.data[i] != (i < KV_CHUNK_SIZE + 10 ? 0xAB : 0))
            fail_msg("byte %zu", i);
    kv_reply_free(&r);
    free(b);
    tr.len = 0;
    assert_int_equal(cmd_st(&t, &tr), 0);
    assert_get(&t, "big", "");
    assert_int_equal(mkdir_(&t, "d"), 0);
    tr.path = "d";
    assert_int_equal(cmd_st(&t, &tr), EISDIR);
    tr.path = "none";
    assert_int_equal(cmd_st(&t, &tr), ENOENT);
    done(&t);
}

/* ---- rename ------------------------------------------------------------------------------ */

static void test_rename_files(void **s)
{
    (void)s;
    tk t = mk(NULL);
    kv_attr a, b;
    assert_int_equal(put(&t, "a", "A"), 0);
    assert_int_equal(stat_(&t, "a", &a), 0);
    assert_int_equal(rename_(&t, "a", "b", 0), 0);
    assert_int_equal(stat_(&t, "a", &b), ENOENT);
    assert_int_equal(stat_(&t, "b", &b), 0);
    assert_int_equal(a.ino, b.ino);
    assert_get(&t, "b", "A");
    /* over an existing file: the target's inode goes away */
    assert_int_equal(put(&t, "c", "C"), 0);
    assert_int_equal(stat_(&t, "c", &a), 0);
    assert_int_equal(rename_(&t, "b", "c", 0), 0);
    assert_get(&t, "c", "A");
    assert_int_equal(stat_ino(&t, a.ino, &b), ENOENT);
    assert_int_equal(rename_(&t, "missing", "x", 0), ENOENT);
    assert_int_equal(rename_(&t, "c", "nodir/x", 0), ENOENT);
    /* NOREPLACE */
    assert_int_equal(put(&t, "d", "D"), 0);
    assert_int_equal(rename_(&t, "c", "d", KV_RENAME_NOREPLACE), EEXIST);
    assert_int_equal(rename_(&t, "c", "e", KV_RENAME_NOREPLACE), 0);
    /* EXCHANGE */
    assert_int_equal(rename_(&t, "e", "d", KV_RENAME_EXCHANGE), 0);
    assert_get(&t, "e", "D");
    assert_get(&t, "d", "A");
    assert_int_equal(rename_(&t, "e", "zz", KV_RENAME_EXCHANGE), ENOENT);
    assert_int_equal(rename_(&t, "e", "d", KV_RENAME_EXCHANGE | KV_RENAME_NOREPLACE), EINVAL);
    assert_int_equal(rename_(&t, "e", "d", 4), EINVAL);
    assert_int_equal(rename_(&t, "/", "x", 0), EBUSY);
    assert_int_equal(rename_(&t, "e", "/", 0), EBUSY);
    /* over another name of the same inode: nothing happens */
    kv_op ln = {.type = KV_OP_LINK, .path = "e", .path2 = "e2"};
    assert_int_equal(cmd_st(&t, &ln), 0);
    assert_int_equal(rename_(&t, "e", "e2", 0), 0);
    assert_int_equal(stat_(&t, "e", &a), 0);
    assert_int_equal(a.nlink, 2);
    assert_int_equal(rename_(&t, "e", "e", 0), 0);
    assert_get(&t, "e", "D");
    done(&t);
}

static void test_rename_dirs(void **s)
{
    (void)s;
    tk t = mk(NULL);
    kv_attr a;
    assert_int_equal(put(&t, "x/y/f", "1"), 0);
    assert_int_equal(put(&t, "file", "1"), 0);
    assert_int_equal(mkdir_(&t, "empty"), 0);
    assert_int_equal(put(&t, "full/g", "1"), 0);
    /* type mismatches */
    assert_int_equal(rename_(&t, "file", "empty", 0), EISDIR);
    assert_int_equal(rename_(&t, "x", "file", 0), ENOTDIR);
    assert_int_equal(rename_(&t, "x", "full", 0), ENOTEMPTY);
    /* into its own subtree */
    assert_int_equal(rename_(&t, "x", "x/y/z", 0), EINVAL);
    assert_int_equal(rename_(&t, "x", "x/z", 0), EINVAL);
    assert_int_equal(rename_(&t, "x/y", "x", 0), ENOTEMPTY); /* onto an ancestor */
    /* over an empty directory */
    assert_int_equal(rename_(&t, "x", "empty", 0), 0);
    assert_get(&t, "empty/y/f", "1");
    assert_int_equal(stat_(&t, "x", &a), ENOENT);
    kv_attr root;
    assert_int_equal(stat_(&t, "/", &root), 0);
    assert_int_equal(root.nlink, 4); /* empty, full + 2 */
    /* move between parents keeps nlink right */
    assert_int_equal(rename_(&t, "empty/y", "full/y", 0), 0);
    assert_int_equal(stat_(&t, "empty", &a), 0);
    assert_int_equal(a.nlink, 2);
    assert_int_equal(stat_(&t, "full", &a), 0);
    assert_int_equal(a.nlink, 3);
    assert_get(&t, "full/y/f", "1");
    /* EXCHANGE a directory with a file across parents */
    assert_int_equal(rename_(&t, "full/y", "file", KV_RENAME_EXCHANGE), 0);
    assert_get(&t, "file/f", "1");
    assert_get(&t, "full/y", "1");
    assert_int_equal(stat_(&t, "full", &a), 0);
    assert_int_equal(a.nlink, 2);
    assert_int_equal(stat_(&t, "/", &root), 0);
    assert_int_equal(root.nlink, 5);
    /* EXCHANGE into own subtree */
    assert_int_equal(rename_(&t, "file", "file/f", KV_RENAME_EXCHANGE), EINVAL);
    done(&t);
}

static void test_rename_big_dir(void **s)
{
    (void)s;
    tk t = mk(NULL);
    char p[64];
    uint64_t inos[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(p, sizeof p, "big/f%04d", i);
        assert_int_equal(put(&t, p, p), 0);
        kv_attr a;
        assert_int_equal(stat_(&t, p, &a), 0);
        inos[i] = a.ino;
    }
    kv_stats before, after;
    kv_get_stats(t.k, &before);
    /* one move of the directory entry: nothing inside is copied or rewritten */
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(rename_(&t, i % 2 ? "moved" : "big", i % 2 ? "big" : "moved", 0), 0);
    }
    kv_get_stats(t.k, &after);
    assert_int_equal(before.meta_alloc, after.meta_alloc);
    assert_int_equal(before.inodes, after.inodes);
    for (int i = 0; i < 1000; i++) {
        snprintf(p, sizeof p, "big/f%04d", i);
        kv_attr a;
        assert_int_equal(stat_(&t, p, &a), 0);
        assert_int_equal(a.ino, inos[i]);
        assert_get(&t, p, p);
    }
    done(&t);
}

static void test_link_nlink(void **s)
{
    (void)s;
    tk t = mk(NULL);
    assert_int_equal(put(&t, "a", "data"), 0);
    kv_op ln = {.type = KV_OP_LINK, .path = "a", .path2 = "d/b"};
    assert_int_equal(cmd_st(&t, &ln), ENOENT);
    assert_int_equal(mkdir_(&t, "d"), 0);
    kv_reply r;
    assert_int_equal(cmd(&t, &ln, &r), 0);
    assert_int_equal(r.attr.nlink, 2);
    kv_reply_free(&r);
    kv_attr a, b;
    assert_int_equal(stat_(&t, "a", &a), 0);
    assert_int_equal(stat_(&t, "d/b", &b), 0);
    assert_int_equal(a.ino, b.ino);
    assert_int_equal(b.nlink, 2);
    assert_int_equal(append(&t, "d/b", "!"), 0); /* one inode, two names */
    assert_get(&t, "a", "data!");
    assert_int_equal(cmd_st(&t, &ln), EEXIST);
    ln.path = "d";
    ln.path2 = "d2";
    assert_int_equal(cmd_st(&t, &ln), EPERM);
    ln.path = "zz";
    assert_int_equal(cmd_st(&t, &ln), ENOENT);
    assert_int_equal(del(&t, "a"), 0);
    assert_int_equal(stat_(&t, "d/b", &b), 0);
    assert_int_equal(b.nlink, 1);
    assert_get(&t, "d/b", "data!");
    assert_int_equal(del(&t, "d/b"), 0);
    assert_int_equal(stat_ino(&t, a.ino, &b), ENOENT);
    kv_stats st;
    kv_get_stats(t.k, &st);
    assert_int_equal(st.files, 0);
    assert_int_equal(st.bytes_used, 0);
    done(&t);
}

static void test_setattr_times(void **s)
{
    (void)s;
    tk t = mk(NULL);
    assert_int_equal(put(&t, "f", "12345"), 0);
    kv_attr a;
    assert_int_equal(stat_(&t, "f", &a), 0);
    assert_int_equal(a.mtime_ns, t.time); /* the command's time */
    assert_int_equal(a.ctime_ns, t.time);
    kv_op sa = {.type = KV_OP_SETATTR,
                .path = "f",
                .flags = KV_SET_MODE | KV_SET_UID | KV_SET_GID | KV_SET_ATIME | KV_SET_MTIME,
                .mode = S_IFDIR | 04711,
                .uid = 11,
                .gid = 12,
                .atime_ns = 42,
                .mtime_ns = KV_TIME_NOW};
    assert_int_equal(cmd_st(&t, &sa), 0);
    assert_int_equal(stat_(&t, "f", &a), 0);
    assert_int_equal(a.mode, S_IFREG | 04711); /* type kept */
    assert_int_equal(a.uid, 11);
    assert_int_equal(a.gid, 12);
    assert_int_equal(a.atime_ns, 42);
    assert_int_equal(a.mtime_ns, t.time);
    assert_int_equal(a.ctime_ns, t.time);
    sa.flags = KV_SET_SIZE;
    sa.len = 2;
    assert_int_equal(cmd_st(&t, &sa), 0);
    assert_get(&t, "f", "12");
    sa.flags = 1u << 10;
    assert_int_equal(cmd_st(&t, &sa), EINVAL);
    assert_int_equal(mkdir_(&t, "d"), 0);
    sa.path = "d";
    sa.flags = KV_SET_SIZE;
    assert_int_equal(cmd_st(&t, &sa), EISDIR);
    sa.flags = KV_SET_MODE;
    sa.mode = 0700;
    assert_int_equal(cmd_st(&t, &sa), 0);
    assert_int_equal(stat_(&t, "d", &a), 0);
    assert_int_equal(a.mode, S_IFDIR | 0700);
    sa.path = "none";
    assert_int_equal(cmd_st(&t, &sa), ENOENT);
    /* a proposer with a slow clock cannot move time backwards, and no two
     * commands share a time */
    int64_t last = kv_last_time(t.k);
    t.time -= 1000000;
    assert_int_equal(put(&t, "g", "x"), 0);
    assert_int_equal(stat_(&t, "g", &a), 0);
    assert_int_equal(a.mtime_ns, last + 1);
    assert_int_equal(kv_last_time(t.k), last + 1);
    assert_int_equal(put(&t, "g", "y"), 0);
    assert_int_equal(stat_(&t, "g", &a), 0);
    assert_int_equal(a.mtime_ns, last + 2);
    last += 2;
    /* the parent's mtime follows changes in it */
    t.time = last + 5000000;
    assert_int_equal(put(&t, "d/h", "x"), 0);
    assert_int_equal(stat_(&t, "d", &a), 0);
    assert_int_equal(a.mtime_ns, t.time);
    done(&t);
}

/* PUT_IF: replaces the content only while the inode's version (ctime) is
 * the one the caller saw; any change in between refuses it. */
static int put_if(tk *t, uint64_t ino, int64_t ver, const char *v, kv_attr *a)
{
    kv_op o = {.type = KV_OP_PUT_IF,
               .ino = ino,
               .off = (uint64_t)ver,
               .data = (const uint8_t *)v,
               .data_len = strlen(v)};
    kv_reply r;
    int st = cmd(t, &o, &r);
    if (st == 0 && a)
        *a = r.attr;
    kv_reply_free(&r);
    return st;
}

static void test_put_if(void **s)
{
    (void)s;
    kv_limits lim = {.max_total_bytes = 100};
    tk t = mk(&lim);
    kv_attr a, b;
    assert_int_equal(put(&t, "f", "old"), 0);
    assert_int_equal(stat_(&t, "f", &a), 0);
    /* unchanged: replaced, and the version moves on */
    assert_int_equal(put_if(&t, a.ino, a.ctime_ns, "new", &b), 0);
    assert_get(&t, "f", "new");
    assert_true(b.ctime_ns > a.ctime_ns);
    assert_int_equal(b.size, 3);
    /* the old version is refused now, nothing changes */
    assert_int_equal(put_if(&t, a.ino, a.ctime_ns, "x", NULL), ECANCELED);
    assert_get(&t, "f", "new");
    /* every kind of change in between refuses it: append, write, truncate,
     * setattr, link */
    static const int kinds[] = {KV_OP_APPEND, KV_OP_WRITE_AT, KV_OP_TRUNCATE, KV_OP_SETATTR,
                                KV_OP_LINK};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        assert_int_equal(stat_(&t, "f", &a), 0);
        kv_op o = {.type = (uint8_t)kinds[i],
                   .path = "f",
                   .data = (const uint8_t *)"z",
                   .data_len = 1,
                   .len = 1,
                   .flags = KV_SET_MODE,
                   .mode = 0600};
        if (kinds[i] == KV_OP_LINK)
            o.path2 = "f2";
        if (kinds[i] == KV_OP_TRUNCATE || kinds[i] == KV_OP_SETATTR)
            o.data_len = 0, o.data = NULL;
        assert_int_equal(cmd_st(&t, &o), 0);
        assert_int_equal(put_if(&t, a.ino, a.ctime_ns, "lost", NULL), ECANCELED);
    }
    char *v;
    assert_int_equal(get(&t, "f", &v), 0);
    assert_string_not_equal(v, "lost");
    free(v);
    /* errors: missing inode, directory, limits (checked on an unchanged inode) */
    assert_int_equal(stat_(&t, "f", &a), 0);
    assert_int_equal(put_if(&t, 999, a.ctime_ns, "x", NULL), ENOENT);
    assert_int_equal(mkdir_(&t, "d"), 0);
    assert_int_equal(stat_(&t, "d", &b), 0);
    assert_int_equal(put_if(&t, b.ino, b.ctime_ns, "x", NULL), EISDIR);
    char big[128];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(put_if(&t, a.ino, a.ctime_ns, big, NULL), ENOSPC);
    assert_int_equal(put_if(&t, a.ino, a.ctime_ns, "ok", NULL), 0);
    assert_get(&t, "f2", "ok");
    kv_free(t.k);
}

static void test_statfs_limits(void **s)
{
    (void)s;
    kv_limits lim = {.max_file_size = 100, .max_total_bytes = 250, .max_inodes = 6};
    tk t = mk(&lim);
    char v[200];
    memset(v, 'v', sizeof v);
    v[101] = 0;
    assert_int_equal(put(&t, "f", v), EFBIG);
    v[100] = 0;
    assert_int_equal(put(&t, "f", v), 0);
    assert_int_equal(append(&t, "f", "x"), EFBIG);
    kv_op w = {.type = KV_OP_WRITE_AT,
               .path = "f",
               .off = 100,
               .data = (const uint8_t *)"x",
               .data_len = 1};
    assert_int_equal(cmd_st(&t, &w), EFBIG);
    w.off = UINT64_MAX - 1;
    w.data_len = 1;
    assert_int_equal(cmd_st(&t, &w), EFBIG);
    kv_op tr = {.type = KV_OP_TRUNCATE, .path = "f", .len = 101};
    assert_int_equal(cmd_st(&t, &tr), EFBIG);
    assert_int_equal(put(&t, "g", v), 0);
    v[51] = 0;
    assert_int_equal(put(&t, "h", v), ENOSPC); /* 250 total */
    v[49] = 0;
    assert_int_equal(put(&t, "h", v), 0);
    assert_int_equal(append(&t, "h", "x"), 0);
    assert_int_equal(append(&t, "h", "x"), ENOSPC);
    kv_op w2 = {.type = KV_OP_WRITE_AT,
                .path = "h",
                .off = 60,
                .data = (const uint8_t *)"x",
                .data_len = 1};
    assert_int_equal(cmd_st(&t, &w2), ENOSPC);
    assert_int_equal(del(&t, "h"), 0);
    assert_int_equal(put(&t, "a/b/c", ""), 0); /* inodes: root f g a b c = 6 */
    assert_int_equal(put(&t, "i", ""), ENOSPC);
    assert_int_equal(mkdir_(&t, "j"), ENOSPC);
    kv_op sf = {.type = KV_OP_STATFS};
    kv_reply r;
    assert_int_equal(query(&t, &sf, &r), 0);
    assert_true(r.has & KV_R_STATFS);
    assert_int_equal(r.statfs.bytes_used, 200);
    assert_int_equal(r.statfs.bytes_limit, 250);
    assert_int_equal(r.statfs.files, 6);
    assert_int_equal(r.statfs.files_limit, 6);
    assert_int_equal(r.statfs.name_max, KV_NAME_MAX);
    assert_int_equal(r.statfs.max_file_size, 100);
    kv_reply_free(&r);
    done(&t);
}

/* ---- what a committed entry can do ------------------------------------------------------ */

/* A read wrapped in a command is never executed: EINVAL on every replica,
 * without building the reply.  The poison case: with a 64 GB file limit, a
 * TRUNCATE to 64 GB and then a GET as a command (whose reply would be 64 GB
 * at every replay) must leave the store serving. */
static void test_read_as_command(void **s)
{
    (void)s;
    const uint64_t G64 = 64ull << 30;
    kv_limits lim = {.max_file_size = G64};
    tk t = mk(&lim);
    assert_int_equal(put(&t, "big", "x"), 0);
    kv_op tr = {.type = KV_OP_TRUNCATE, .path = "big", .len = G64};
    assert_int_equal(cmd_st(&t, &tr), 0);
    for (int type = 1; type <= KV_OP__MAX; type++) {
        kv_op o = {.type = (uint8_t)type, .path = "big", .len = G64};
        uint8_t *ob;
        size_t ol;
        assert_int_equal(kv_op_encode(&o, &ob, &ol), 0);
        bool rd = kv_op_is_read(ob, ol);
        assert_true(rd != kv_op_is_write(ob, ol));
        free(ob);
        if (!rd)
            continue;
        uint64_t before = kv_applied_index(t.k);
        kv_reply r;
        assert_int_equal(cmd(&t, &o, &r), EINVAL);
        assert_int_equal(r.has, 0);
        assert_int_equal(r.data_len, 0);
        kv_reply_free(&r);
        assert_int_equal(kv_applied_index(t.k), before + 1);
    }
    kv_attr a;
    assert_int_equal(stat_(&t, "big", &a), 0);
    assert_int_equal(a.size, G64);
    /* malformed bytes are not a write either */
    uint8_t junk[2] = {1, 200};
    assert_false(kv_op_is_write(junk, sizeof junk));
    assert_false(kv_op_is_read(junk, sizeof junk));
    /* a file limit past what apply can address is lowered */
    kv_limits huge = {.max_file_size = UINT64_MAX};
    kv *k = kv_new(&huge);
    kv_limits got;
    assert_false(kv_get_limits(k, &got));
    assert_int_equal(got.max_file_size, KV_MAX_FILE_SIZE_LIMIT);
    kv_free(k);
    done(&t);
}

static int set_limits(tk *t, uint32_t flags, uint64_t mfs, uint64_t total)
{
    kv_op o = {.type = KV_OP_SET_LIMITS, .flags = flags, .len = mfs, .off = total};
    kv_reply r;
    int st = cmd(t, &o, &r);
    if (st == 0) {
        assert_true(r.has & KV_R_STATFS);
    }
    kv_reply_free(&r);
    return st;
}

/* Limits are replicated state: replicas created with different limits and
 * fed the same log decide the same, snapshots carry the limits, and the
 * format of older builds is still read. */
static void test_replicated_limits(void **s)
{
    (void)s;
    kv_limits small = {.max_file_size = 1024};
    tk a = mk(NULL), b = mk(&small);
    tk *both[2] = {&a, &b};
    char v[2000];
    memset(v, 'v', sizeof v - 1);
    v[sizeof v - 1] = 0;
    for (int i = 0; i < 2; i++) {
        tk *t = both[i];
        kv_limits l;
        assert_false(kv_get_limits(t->k, &l));
        /* the first leader's seed, then a second one that changes nothing */
        assert_int_equal(set_limits(t, KV_LIMITS_IF_UNSET, 4096, 0), 0);
        assert_int_equal(set_limits(t, KV_LIMITS_IF_UNSET, 100, 0), 0);
        assert_true(kv_get_limits(t->k, &l));
        assert_int_equal(l.max_file_size, 4096);
        assert_int_equal(put(t, "f", v), 0); /* 1,999 bytes: fits everywhere */
        /* a change through a command */
        assert_int_equal(set_limits(t, 0, 1000, 1 << 20), 0);
        assert_true(kv_get_limits(t->k, &l));
        assert_int_equal(l.max_file_size, 1000);
        assert_int_equal(l.max_total_bytes, 1 << 20);
        assert_int_equal(put(t, "g", v), EFBIG);
        assert_int_equal(set_limits(t, 0, KV_MAX_FILE_SIZE_LIMIT + 1, 0), EINVAL);
        assert_int_equal(set_limits(t, 4, 1000, 0), EINVAL);
        assert_int_equal(set_limits(t, 0, 0, 0), 0); /* 0: the default */
        assert_true(kv_get_limits(t->k, &l));
        assert_int_equal(l.max_file_size, KV_DEFAULT_MAX_FILE_SIZE);
        assert_int_equal(put(t, "g", v), 0);
    }
    uint8_t *x, *y;
    size_t xl, yl;
    snap(a.k, &x, &xl);
    snap(b.k, &y, &yl);
    assert_int_equal(xl, yl);
    assert_memory_equal(x, y, xl);
    /* the limits travel in the snapshot, whatever the receiver was given */
    kv *c = kv_new(&small);
    assert_int_equal(set_limits(&a, 0, 3000, 0), 0);
    free(x);
    snap(a.k, &x, &xl);
    assert_int_equal(kv_snapshot_decode(c, x, xl), 0);
    kv_limits l;
    assert_true(kv_get_limits(c, &l));
    assert_int_equal(l.max_file_size, 3000);
    kv_free(c);
    /* format 2: no session time and no limits (33 bytes after the header's
     * applied index and time); still read, the receiver's limits kept */
    uint8_t *old = malloc(xl);
    memcpy(old, x, 24);
    memcpy(old + 24, x + 24 + 33, xl - 24 - 33);
    old[4] = 2;
    c = kv_new(&small);
    assert_int_equal(kv_snapshot_decode(c, old, xl - 33), 0);
    assert_false(kv_get_limits(c, &l));
    assert_int_equal(l.max_file_size, 1024);
    tk tc = {c, kv_applied_index(c), kv_last_time(c)};
    assert_get(&tc, "f", v);
    kv_free(c);
    /* an unknown format is refused */
    x[4] = 4;
    c = kv_new(NULL);
    assert_int_equal(kv_snapshot_decode(c, x, xl), -1);
    kv_free(c);
    free(old);
    free(x);
    free(y);
    done(&a);
    done(&b);
}

/* ---- sessions ------------------------------------------------------------------------- */

static void test_sessions(void **s)
{
    (void)s;
    tk t = mk(NULL);
    kv_op ap = {.type = KV_OP_APPEND, .path = "log", .data = (const uint8_t *)"x", .data_len = 1};
    uint8_t *ob, *cb, *r1, *r2, *lr;
    size_t ol, cl, l1, l2, ll;
    assert_int_equal(kv_op_encode(&ap, &ob, &ol), 0);
    /* an unregistered client: answered SESSION_EXPIRED, not applied */
    assert_int_equal(kv_cmd_encode(77, 1, 5000, ob, ol, &cb, &cl), 0);
    assert_int_equal(kv_apply(t.k, 1, cb, cl, &r1, &l1), 0);
    assert_int_equal(kv_reply_status(r1, l1), KV_ESESSION);
    free(r1);
    free(cb);
    char *v;
    assert_int_equal(get(&t, "log", &v), ENOENT);
    /* REGISTER: the session id is the entry's index */
    uint64_t a = reg_at(t.k, 2, 5000);
    assert_int_equal(a, 2);
    assert_int_equal(kv_session_lookup(t.k, a, 1, &lr, &ll), KV_SESSION_NEW);
    assert_int_equal(kv_cmd_encode(a, 1, 5000, ob, ol, &cb, &cl), 0);
    assert_int_equal(kv_apply(t.k, 3, cb, cl, &r1, &l1), 0);
    /* the same command again (a retry that reached the log twice) */
    assert_int_equal(kv_apply(t.k, 4, cb, cl, &r2, &l2), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(r1, r2, l1);
    assert_get(&t, "log", "x"); /* applied once */
    /* the node can answer the retry without a log entry */
    assert_int_equal(kv_session_lookup(t.k, a, 1, &lr, &ll), KV_SESSION_APPLIED);
    assert_int_equal(ll, l1);
    assert_memory_equal(lr, r1, l1);
    free(lr);
    assert_int_equal(kv_session_lookup(t.k, a, 2, &lr, &ll), KV_SESSION_NEW);
    assert_null(lr);
    free(cb);
    free(r1);
    free(r2);
    /* an index at or below the applied index is ignored */
    assert_int_equal(kv_cmd_encode(a, 9, 5000, ob, ol, &cb, &cl), 0);
    assert_int_equal(kv_apply(t.k, 4, cb, cl, &r1, &l1), 1);
    assert_null(r1);
    assert_get(&t, "log", "x");
    assert_int_equal(kv_apply(t.k, 5, cb, cl, &r1, &l1), 0);
    assert_int_equal(kv_reply_status(r1, l1), 0);
    free(r1);
    free(cb);
    assert_get(&t, "log", "xx");
    /* an older seq is refused */
    assert_int_equal(kv_cmd_encode(a, 5, 5000, ob, ol, &cb, &cl), 0);
    assert_int_equal(kv_apply(t.k, 6, cb, cl, &r1, &l1), 0);
    assert_int_equal(kv_reply_status(r1, l1), KV_ESTALE);
    free(r1);
    free(cb);
    assert_get(&t, "log", "xx");
    assert_int_equal(kv_session_lookup(t.k, a, 5, &lr, &ll), KV_SESSION_STALE);
    assert_int_equal(kv_reply_status(lr, ll), KV_ESTALE);
    free(lr);
    /* client 0: no session, always applied */
    assert_int_equal(kv_cmd_encode(0, 1, 5000, ob, ol, &cb, &cl), 0);
    assert_int_equal(kv_apply(t.k, 7, cb, cl, &r1, &l1), 0);
    free(r1);
    assert_int_equal(kv_apply(t.k, 8, cb, cl, &r1, &l1), 0);
    free(r1);
    free(cb);
    assert_get(&t, "log", "xxxx");
    /* an error reply is remembered too */
    uint64_t b = reg_at(t.k, 9, 5000);
    kv_op bad = {.type = KV_OP_RMDIR, .path = "log"};
    uint8_t *bb;
    size_t bl;
    assert_int_equal(kv_op_encode(&bad, &bb, &bl), 0);
    assert_int_equal(kv_cmd_encode(b, 1, 5000, bb, bl, &cb, &cl), 0);
    assert_int_equal(kv_apply(t.k, 10, cb, cl, &r1, &l1), 0);
    assert_int_equal(kv_reply_status(r1, l1), ENOTDIR);
    free(r1);
    free(cb);
    assert_int_equal(kv_session_lookup(t.k, b, 1, &lr, &ll), KV_SESSION_APPLIED);
    assert_int_equal(kv_reply_status(lr, ll), ENOTDIR);
    free(lr);
    free(bb);
    free(ob);
    kv_stats st;
    kv_get_stats(t.k, &st);
    assert_int_equal(st.sessions, 2);
    assert_int_equal(kv_applied_index(t.k), 10);
    done(&t);
}

/* Applies op as (client, seq) at index with time; returns the reply status. */
static int apply_op_at(kv *k, uint64_t index, uint64_t client, uint64_t seq, int64_t time,
                       const kv_op *op)
{
    uint8_t *ob, *cb, *rb;
    size_t ol, cl, rl;
    assert_int_equal(kv_op_encode(op, &ob, &ol), 0);
    assert_int_equal(kv_cmd_encode(client, seq, time, ob, ol, &cb, &cl), 0);
    assert_int_equal(kv_apply(k, index, cb, cl, &rb, &rl), 0);
    int st = kv_reply_status(rb, rl);
    free(ob);
    free(cb);
    free(rb);
    return st;
}

static void apply_at(kv *k, uint64_t index, uint64_t client, uint64_t seq, int64_t time)
{
    kv_op n = {.type = KV_OP_NOOP};
    assert_int_equal(apply_op_at(k, index, client, seq, time, &n), 0);
}

static int apply_append_at(kv *k, uint64_t index, uint64_t client, uint64_t seq, int64_t time)
{
    kv_op ap = {.type = KV_OP_APPEND, .path = "log", .data = (const uint8_t *)"x", .data_len = 1};
    return apply_op_at(k, index, client, seq, time, &ap);
}

static void assert_log(kv *k, const char *want)
{
    tk t = {k, 0, 0};
    assert_get(&t, "log", want);
}

static void test_session_expiry(void **s)
{
    (void)s;
    kv *k = kv_new(NULL);
    uint8_t *r;
    size_t l;
    const int64_t SEC = 1000000000LL;
    int64_t now = 1000000000000LL;
    uint64_t idx = 1;
    uint64_t a = reg_at(k, idx++, now);
    uint64_t b = reg_at(k, idx++, now);
    apply_at(k, idx++, a, 1, now);
    /* Session time follows the commands' time a second at a time: an hour of
     * commands (client 0) with one use of a half-way expires b, not a. */
    for (int i = 1; i <= 3600; i++) {
        now += SEC;
        apply_at(k, idx++, i == 1800 ? a : 0, i == 1800 ? 2 : 0, now);
    }
    now += SEC;
    apply_at(k, idx++, 0, 0, now);
    assert_int_equal(kv_session_lookup(k, b, 1, &r, &l), KV_SESSION_NEW);
    assert_int_equal(apply_append_at(k, idx++, b, 1, now), KV_ESESSION); /* not applied */
    assert_int_equal(kv_session_lookup(k, a, 2, &r, &l), KV_SESSION_APPLIED);
    free(r);

    /* A proposer whose clock is an hour ahead: session time moves one second,
     * so nothing expires, and a retry after it is answered from the session. */
    uint64_t c = reg_at(k, idx++, now);
    assert_int_equal(apply_append_at(k, idx++, c, 1, now), 0);
    int64_t before = kv_last_time(k); /* now, plus 1 ns per command applied at it */
    apply_at(k, idx++, 0, 0, now + 3600 * SEC);
    kv_stats st;
    kv_get_stats(k, &st);
    assert_int_equal(st.session_time_ns, before + SEC);
    assert_int_equal(apply_append_at(k, idx++, c, 1, now), 0); /* the stored reply */
    assert_log(k, "x");
    /* Even when such commands keep coming until the hour has passed in
     * session time, the retry is never applied twice. */
    for (int i = 0; i < 3700; i++)
        apply_at(k, idx++, 0, 0, now + 7200 * SEC);
    assert_int_equal(apply_append_at(k, idx++, c, 1, now), KV_ESESSION);
    assert_log(k, "x");

    /* The count bound: 70,000 registrations evict the oldest sessions; a
     * retry of an evicted session's command is refused, not applied again. */
    uint64_t d = reg_at(k, idx++, now);
    assert_int_equal(apply_append_at(k, idx++, d, 1, now), 0);
    assert_log(k, "xx");
    for (int i = 0; i < 70000; i++)
        reg_at(k, idx++, now);
    kv_get_stats(k, &st);
    assert_int_equal(st.sessions, KV_SESSION_MAX);
    assert_int_equal(apply_append_at(k, idx++, d, 1, now), KV_ESESSION);
    assert_log(k, "xx");
    assert_int_equal(kv_session_lookup(k, d, 1, &r, &l), KV_SESSION_NEW);
    assert_int_equal(kv_session_lookup(k, idx - 2, 1, &r, &l), KV_SESSION_NEW);
    apply_at(k, idx, idx - 2, 1, now); /* the newest session works */
    idx++;

    /* expiry survives a snapshot: a restored replica drops the same sessions */
    uint8_t *sb;
    size_t sl;
    snap(k, &sb, &sl);
    kv *k2 = kv_new(NULL);
    assert_int_equal(kv_snapshot_decode(k2, sb, sl), 0);
    now = kv_last_time(k);
    for (int i = 0; i < 3700; i++) {
        now += SEC;
        apply_at(k, idx, 0, 0, now);
        apply_at(k2, idx, 0, 0, now);
        idx++;
    }
    kv_get_stats(k, &st);
    assert_int_equal(st.sessions, 0);
    uint8_t *x, *y;
    size_t xl, yl;
    snap(k, &x, &xl);
    snap(k2, &y, &yl);
    assert_int_equal(xl, yl);
    assert_memory_equal(x, y, xl);
    free(x);
    free(y);
    free(sb);
    kv_free(k);
    kv_free(k2);
}

/* ---- open references (unlink while open) -------------------------------------------------- */

static void test_open_refs(void **s)
{
    (void)s;
    tk t = mk(NULL);
    assert_int_equal(put(&t, "f", "still here"), 0);
    kv_op o = {.type = KV_OP_OPEN_REF, .path = "f", .holder = 2};
    kv_reply r;
    assert_int_equal(cmd(&t, &o, &r), 0);
    uint64_t ino = r.attr.ino;
    kv_reply_free(&r);
    assert_int_equal(cmd_st(&t, &o), 0); /* a second open by the same holder */
    assert_int_equal(del(&t, "f"), 0);
    kv_attr a;
    assert_int_equal(stat_(&t, "f", &a), ENOENT);
    assert_int_equal(stat_ino(&t, ino, &a), 0);
    assert_int_equal(a.nlink, 0);
    kv_op g = {.type = KV_OP_GETRANGE, .ino = ino, .off = 6, .len = 100};
    assert_int_equal(query(&t, &g, &r), 0);
    assert_int_equal(r.data_len, 4);
    assert_memory_equal(r.data, "here", 4);
    kv_reply_free(&r);
    kv_op w = {
        .type = KV_OP_WRITE_AT, .ino = ino, .off = 0, .data = (const uint8_t *)"S", .data_len = 1};
    assert_int_equal(cmd_st(&t, &w), 0);
    kv_stats st;
    kv_get_stats(t.k, &st);
    assert_int_equal(st.orphans, 1);
    /* survives a snapshot */
    uint8_t *sb, *sb2;
    size_t sl, sl2;
    snap(t.k, &sb, &sl);
    kv *k2 = kv_new(NULL);
    assert_int_equal(kv_snapshot_decode(k2, sb, sl), 0);
    snap(k2, &sb2, &sl2);
    assert_int_equal(sl, sl2);
    assert_memory_equal(sb, sb2, sl);
    free(sb);
    free(sb2);
    kv_free(k2);
    kv_op c = {.type = KV_OP_CLOSE_REF, .ino = ino, .holder = 3};
    assert_int_equal(cmd_st(&t, &c), ENOENT); /* not this holder's */
    c.holder = 2;
    assert_int_equal(cmd_st(&t, &c), 0);
    assert_int_equal(stat_ino(&t, ino, &a), 0);
    assert_int_equal(cmd_st(&t, &c), 0);
    assert_int_equal(stat_ino(&t, ino, &a), ENOENT); /* freed with the last reference */
    assert_int_equal(cmd_st(&t, &c), ENOENT);
    /* a restarted node drops what its earlier incarnation held */
    assert_int_equal(put(&t, "g", "x"), 0);
    o.path = "g";
    assert_int_equal(cmd(&t, &o, &r), 0);
    ino = r.attr.ino;
    kv_reply_free(&r);
    assert_int_equal(del(&t, "g"), 0);
    assert_int_equal(stat_ino(&t, ino, &a), 0);
    kv_op rel = {.type = KV_OP_RELEASE_HOLDER, .holder = 2};
    assert_int_equal(cmd_st(&t, &rel), 0);
    assert_int_equal(stat_ino(&t, ino, &a), ENOENT);
    kv_get_stats(t.k, &st);
    assert_int_equal(st.orphans, 0);
    assert_int_equal(st.refs, 0);
    assert_int_equal(st.inodes, 1);
    /* an open reference alone does not keep a linked file from being replaced */
    assert_int_equal(put(&t, "h", "1"), 0);
    o.path = "h";
    assert_int_equal(cmd_st(&t, &o), 0);
    assert_int_equal(put(&t, "h2", "2"), 0);
    assert_int_equal(rename_(&t, "h2", "h", 0), 0);
    kv_get_stats(t.k, &st);
    assert_int_equal(st.orphans, 1);
    assert_int_equal(cmd_st(&t, &rel), 0);
    kv_get_stats(t.k, &st);
    assert_int_equal(st.orphans, 0);
    done(&t);
}

/* ---- names: (directory inode, name) addressing ----------------------------------------- */

static void test_dir_relative_names(void **s)
{
    (void)s;
    tk t = mk(NULL);
    /* a chain deeper than KV_PATH_MAX allows to name from the root */
    char name[201];
    memset(name, 'd', 200);
    name[200] = '\0';
    uint64_t dir = KV_ROOT_INO;
    kv_reply r;
    for (int i = 0; i < 40; i++) {
        kv_op m = {.type = KV_OP_MKDIR, .dir = dir, .path = name, .mode = 0755};
        assert_int_equal(cmd(&t, &m, &r), 0);
        dir = r.attr.ino;
        kv_reply_free(&r);
    }
    kv_op c = {.type = KV_OP_CREATE, .dir = dir, .path = "f", .mode = 0644};
    assert_int_equal(cmd(&t, &c, &r), 0);
    uint64_t f = r.attr.ino;
    kv_reply_free(&r);
    kv_op lk = {.type = KV_OP_STAT, .dir = dir, .path = "f"};
    assert_int_equal(query(&t, &lk, &r), 0);
    assert_int_equal(r.attr.ino, f);
    kv_reply_free(&r);
    /* PUT of dir + "" replaces the content of that inode */
    kv_op p = {
        .type = KV_OP_PUT, .dir = f, .path = "", .data = (const uint8_t *)"abc", .data_len = 3};
    assert_int_equal(cmd(&t, &p, &r), 0);
    assert_int_equal(r.attr.ino, f);
    assert_int_equal(r.attr.size, 3);
    kv_reply_free(&r);
    kv_op l = {.type = KV_OP_LINK, .dir = f, .path = "", .dir2 = dir, .path2 = "g"};
    assert_int_equal(cmd_st(&t, &l), 0);
    kv_op rn = {.type = KV_OP_RENAME, .dir = dir, .path = "g", .dir2 = KV_ROOT_INO, .path2 = "top"};
    assert_int_equal(cmd_st(&t, &rn), 0);
    kv_attr a;
    assert_int_equal(stat_(&t, "top", &a), 0);
    assert_int_equal(a.ino, f);
    assert_int_equal(a.nlink, 2);
    kv_op rd = {.type = KV_OP_READDIR, .dir = dir, .path = ""};
    assert_int_equal(query(&t, &rd, &r), 0);
    assert_int_equal(r.n_entries, 1);
    assert_string_equal(r.entries[0].name, "f");
    kv_reply_free(&r);
    kv_op u = {.type = KV_OP_UNLINK, .dir = dir, .path = "f"};
    assert_int_equal(cmd_st(&t, &u), 0);
    assert_int_equal(cmd_st(&t, &u), ENOENT);
    /* errors: a file as the start of a path, a missing start, no name */
    kv_op bad = {.type = KV_OP_CREATE, .dir = f, .path = "x", .mode = 0644};
    assert_int_equal(cmd_st(&t, &bad), ENOTDIR);
    bad.dir = 999999;
    assert_int_equal(cmd_st(&t, &bad), ENOENT);
    bad.dir = dir;
    bad.path = "";
    assert_int_equal(cmd_st(&t, &bad), EINVAL);
    kv_op ud = {.type = KV_OP_UNLINK, .dir = dir, .path = ""};
    assert_int_equal(cmd_st(&t, &ud), EINVAL);
    done(&t);
}

/* A version 1 op (older logs) still decodes, with dir, dir2 and cuid 0. */
static void test_op_v1_decodes(void **s)
{
    (void)s;
    const uint8_t v1[] = {1, KV_OP_UNLINK, 1, 0, 0, 0, 'f'};
    kv_op o;
    assert_int_equal(kv_op_decode(v1, sizeof v1, &o), 0);
    assert_int_equal(o.type, KV_OP_UNLINK);
    assert_int_equal(o.path_len, 1);
    assert_int_equal(o.dir, 0);
    const uint8_t v1hold[] = {1, KV_OP_HOLD, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(kv_op_decode(v1hold, sizeof v1hold, &o), -1);
    kv_op w = {.type = KV_OP_WRITE_AT,
               .ino = 5,
               .dir = 7,
               .cuid = 1000,
               .cgid = 100,
               .data = (const uint8_t *)"x",
               .data_len = 1};
    uint8_t *b;
    size_t l;
    assert_int_equal(kv_op_encode(&w, &b, &l), 0);
    assert_int_equal(kv_op_decode(b, l, &o), 0);
    assert_int_equal(o.dir, 7);
    assert_int_equal(o.cuid, 1000);
    assert_int_equal(o.cgid, 100);
    free(b);
}

/* ---- set-id bits ------------------------------------------------------------------------ */

static uint32_t mode_of(tk *t, const char *p)
{
    kv_attr a;
    assert_int_equal(stat_(t, p, &a), 0);
    return a.mode & 07777;
}

static void test_setid_cleared_by_writers(void **s)
{
    (void)s;
    tk t = mk(NULL);
    kv_op c = {.type = KV_OP_CREATE, .path = "f", .mode = 06755, .uid = 1000, .gid = 100};
    assert_int_equal(cmd_st(&t, &c), 0);
    /* root (cuid 0) keeps the bits */
    kv_op w = {.type = KV_OP_WRITE_AT, .path = "f", .data = (const uint8_t *)"x", .data_len = 1};
    assert_int_equal(cmd_st(&t, &w), 0);
    assert_int_equal(mode_of(&t, "f"), 06755);
    /* an unprivileged writer clears both (group may execute) */
    w.cuid = 1000;
    w.cgid = 100;
    assert_int_equal(cmd_st(&t, &w), 0);
    assert_int_equal(mode_of(&t, "f"), 0755);
    /* set-gid without group execute: kept for a member of the group, cleared
     * for others; truncate does the same as write */
    kv_op sa = {.type = KV_OP_SETATTR, .path = "f", .flags = KV_SET_MODE, .mode = 06744};
    assert_int_equal(cmd_st(&t, &sa), 0);
    kv_op tr = {.type = KV_OP_TRUNCATE, .path = "f", .len = 0, .cuid = 1000, .cgid = 100};
    assert_int_equal(cmd_st(&t, &tr), 0);
    assert_int_equal(mode_of(&t, "f"), 02744);
    tr.cuid = 2000;
    tr.cgid = 200;
    assert_int_equal(cmd_st(&t, &tr), 0);
    assert_int_equal(mode_of(&t, "f"), 0744);
    /* APPEND, PUT and a SETATTR of the size alone */
    const int types[] = {KV_OP_APPEND, KV_OP_PUT, KV_OP_SETATTR};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cmd_st(&t, &sa), 0);
        kv_op o = {.type = (uint8_t)types[i],
                   .path = "f",
                   .data = (const uint8_t *)"y",
                   .data_len = types[i] == KV_OP_SETATTR ? 0 : 1,
                   .cuid = 5,
                   .cgid = 5,
                   .flags = types[i] == KV_OP_SETATTR ? KV_SET_SIZE : 0,
                   .len = 9};
        assert_int_equal(cmd_st(&t, &o), 0);
        assert_int_equal(mode_of(&t, "f"), 0744);
    }
    /* a directory's set-gid is never touched */
    kv_op md = {.type = KV_OP_MKDIR, .path = "d", .mode = 02775};
    assert_int_equal(cmd_st(&t, &md), 0);
    kv_op sd = {
        .type = KV_OP_SETATTR, .path = "d", .flags = KV_SET_ATIME, .atime_ns = 5, .cuid = 5};
    assert_int_equal(cmd_st(&t, &sd), 0);
    assert_int_equal(mode_of(&t, "d"), 02775);
    done(&t);
}

/* ---- holders and orphans --------------------------------------------------------------- */

static int hold(tk *t, uint64_t holder, uint64_t covered, const uint64_t *inos, size_t n,
                uint32_t flags)
{
    uint8_t buf[8 * 8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        byte_put64(buf + i * 8, inos[i]);
    kv_op o = {.type = KV_OP_HOLD,
               .holder = holder,
               .off = covered,
               .data = buf,
               .data_len = n * 8,
               .flags = flags};
    return cmd_st(t, &o);
}

static void test_holders_keep_orphans(void **s)
{
    (void)s;
    tk t = mk(NULL);
    kv_attr a;
    /* no holders: an unlinked file goes at once */
    assert_int_equal(put(&t, "f", "old"), 0);
    assert_int_equal(stat_(&t, "f", &a), 0);
    uint64_t f = a.ino;
    assert_int_equal(del(&t, "f"), 0);
    assert_int_equal(stat_ino(&t, f, &a), ENOENT);
    /* two holders */
    assert_int_equal(hold(&t, 1, t.index, NULL, 0, 0), 0);
    assert_int_equal(hold(&t, 2, t.index, NULL, 0, 0), 0);
    kv_holder_view v;
    kv_holder_get(t.k, 1, &v);
    assert_true(v.known);
    assert_false(v.uncovered);
    assert_int_equal(put(&t, "g", "old"), 0);
    assert_int_equal(stat_(&t, "g", &a), 0);
    uint64_t g = a.ino;
    assert_int_equal(put(&t, "g.tmp", "new"), 0);
    assert_int_equal(rename_(&t, "g.tmp", "g", 0), 0); /* g's old inode loses its name */
    uint64_t u = t.index;
    assert_true(kv_is_orphan(t.k, g));
    kv_holder_get(t.k, 2, &v);
    assert_true(v.uncovered);
    kv_stats st;
    kv_get_stats(t.k, &st);
    assert_int_equal(st.orphans, 1);
    /* holder 1 covers it without holding it; holder 2 holds it */
    assert_int_equal(hold(&t, 1, u, NULL, 0, 0), 0);
    assert_int_equal(hold(&t, 2, u, &g, 1, 0), 0);
    assert_int_equal(stat_ino(&t, g, &a), 0);
    kv_op rd = {.type = KV_OP_GETRANGE, .ino = g, .len = 10};
    kv_reply r;
    assert_int_equal(query(&t, &rd, &r), 0);
    assert_int_equal(r.data_len, 3);
    assert_memory_equal(r.data, "old", 3);
    kv_reply_free(&r);
    /* a report that does not cover it yet keeps it too */
    assert_int_equal(hold(&t, 2, u - 1, NULL, 0, 0), 0);
    assert_int_equal(stat_ino(&t, g, &a), 0);
    /* it survives a snapshot, with the holders */
    uint8_t *sb, *sb2;
    size_t sl, sl2;
    snap(t.k, &sb, &sl);
    kv *k2 = kv_new(NULL);
    assert_int_equal(kv_snapshot_decode(k2, sb, sl), 0);
    snap(k2, &sb2, &sl2);
    assert_int_equal(sl, sl2);
    assert_memory_equal(sb, sb2, sl);
    kv_holder_view v2;
    kv_holder_get(k2, 2, &v2);
    assert_true(v2.known);
    assert_int_equal(v2.covered, u - 1);
    assert_true(kv_is_orphan(k2, g));
    free(sb);
    free(sb2);
    kv_free(k2);
    /* covered and released by both: freed */
    assert_int_equal(hold(&t, 2, t.index, NULL, 0, 0), 0);
    assert_int_equal(stat_ino(&t, g, &a), ENOENT);
    kv_get_stats(t.k, &st);
    assert_int_equal(st.orphans, 0);
    /* a holder that leaves, and one that goes silent past the TTL */
    assert_int_equal(put(&t, "h", "x"), 0);
    assert_int_equal(stat_(&t, "h", &a), 0);
    uint64_t h = a.ino;
    assert_int_equal(del(&t, "h"), 0);
    assert_int_equal(hold(&t, 1, t.index, &h, 1, 0), 0);
    assert_int_equal(hold(&t, 2, 0, NULL, 0, KV_HOLD_GONE), 0);
    assert_int_equal(stat_ino(&t, h, &a), 0); /* holder 1 still holds it */
    t.time += (int64_t)KV_HOLDER_TTL_NS + 1;
    assert_int_equal(hold(&t, 3, t.index, NULL, 0, 0), 0);
    assert_int_equal(stat_ino(&t, h, &a), ENOENT);
    kv_holder_get(t.k, 1, &v);
    assert_false(v.known);
    /* bad reports */
    kv_op b = {.type = KV_OP_HOLD, .holder = 0};
    assert_int_equal(cmd_st(&t, &b), EINVAL);
    b.holder = 1;
    b.data = (const uint8_t *)"abcdefgh";
    b.data_len = 3;
    assert_int_equal(cmd_st(&t, &b), EINVAL);
    b.data_len = 8;
    b.flags = KV_HOLD_GONE;
    assert_int_equal(cmd_st(&t, &b), EINVAL);
    done(&t);
}

/* ---- snapshots and determinism -------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A random command over a small namespace (so operations collide). */
static void random_op(kv_op *o, char *p1, char *p2, uint8_t *data)
{
    static const char *names[] = {"a", "b", "c", "dd"};
    int depth = (int)(rnd() % 3) + 1;
    p1[0] = p2[0] = 0;
    for (int i = 0; i < depth; i++) {
        if (i)
            strcat(p1, "/");
        strcat(p1, names[rnd() % 4]);
    }
    depth = (int)(rnd() % 3) + 1;
    for (int i = 0; i < depth; i++) {
        if (i)
            strcat(p2, "/");
        strcat(p2, names[rnd() % 4]);
    }
    memset(o, 0, sizeof *o);
    static const uint8_t types[] = {
        KV_OP_PUT,       KV_OP_APPEND,         KV_OP_DEL,     KV_OP_CREATE,   KV_OP_MKNOD,
        KV_OP_MKDIR,     KV_OP_RMDIR,          KV_OP_UNLINK,  KV_OP_WRITE_AT, KV_OP_TRUNCATE,
        KV_OP_RENAME,    KV_OP_SETATTR,        KV_OP_SYMLINK, KV_OP_LINK,     KV_OP_OPEN_REF,
        KV_OP_CLOSE_REF, KV_OP_RELEASE_HOLDER, KV_OP_PUT,     KV_OP_MKDIR,    KV_OP_GET};
    o->type = types[rnd() % sizeof types];
    o->path = p1;
    o->path2 = p2;
    size_t dl = (size_t)(rnd() % 4 == 0 ? rnd() % 150000 : rnd() % 300);
    for (size_t i = 0; i < dl; i++)
        data[i] = (uint8_t)(rnd() % 3 ? 0 : rnd());
    o->data = data;
    o->data_len = dl;
    if (o->type == KV_OP_SYMLINK && dl == 0)
        o->data_len = 1, data[0] = 'x';
    if (o->type == KV_OP_SYMLINK) {
        for (size_t i = 0; i < o->data_len; i++)
            data[i] |= 1;
    }
    if (o->type == KV_OP_SYMLINK && o->data_len > 4000)
        o->data_len = 4000;
    o->flags = (uint32_t)(rnd() % 4);
    if (o->type == KV_OP_SETATTR)
        o->flags = (uint32_t)(rnd() % 64);
    o->mode = (uint32_t)(rnd() % 2 ? S_IFIFO | 0644 : 0600);
    o->uid = (uint32_t)(rnd() % 3);
    o->off = rnd() % 3 ? rnd() % 70000 : rnd() % 400000;
    o->len = rnd() % 200000;
    o->atime_ns = (int64_t)(rnd() % 1000);
    o->mtime_ns = KV_TIME_NOW;
    o->ino = rnd() % 3 ? 0 : rnd() % 40;
    o->holder = rnd() % 3;
}

static void run_random(kv *k, uint64_t seed, int n, uint64_t first_index)
{
    rng_state = seed;
    char p1[64], p2[64];
    uint8_t *data = malloc(150000);
    for (int i = 0; i < n; i++) {
        kv_op o;
        random_op(&o, p1, p2, data);
        uint8_t *ob, *cb, *rb;
        size_t ol, cl, rl;
        assert_int_equal(kv_op_encode(&o, &ob, &ol), 0);
        uint64_t client = rnd() % 5;
        assert_int_equal(kv_cmd_encode(client, rnd() % 8, (int64_t)(1000 + i * 10 - rnd() % 50), ob,
                                       ol, &cb, &cl),
                         0);
        assert_int_equal(kv_apply(k, first_index + (uint64_t)i, cb, cl, &rb, &rl), 0);
        kv_reply r;
        assert_int_equal(kv_reply_decode(rb, rl, &r), 0);
        kv_reply_free(&r);
        free(ob);
        free(cb);
        free(rb);
    }
    free(data);
}

static int rounds(int normal)
{
    if (!strcmp(mode_str(), "long"))
        return normal * 10;
    if (!strcmp(mode_str(), "asan"))
        return normal / 4 ? normal / 4 : 1;
    return normal;
}

static void test_determinism_and_snapshots(void **s)
{
    (void)s;
    int seeds = rounds(20);
    for (int si = 0; si < seeds; si++) {
        uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(si + 1);
        kv *a = kv_new(NULL), *b = kv_new(NULL), *c = kv_new(NULL);
        run_random(a, seed, 400, 1);
        run_random(b, seed, 400, 1);
        uint8_t *sa, *sb;
        size_t la, lb;
        snap(a, &sa, &la);
        snap(b, &sb, &lb);
        if (la != lb || memcmp(sa, sb, la))
            fail_msg("replicas differ, seed %llu", (unsigned long long)seed);
        /* restore from the snapshot: identical bytes again */
        assert_int_equal(kv_snapshot_decode(c, sa, la), 0);
        uint8_t *sc;
        size_t lc;
        snap(c, &sc, &lc);
        if (la != lc || memcmp(sa, sc, la))
            fail_msg("round trip differs, seed %llu", (unsigned long long)seed);
        assert_int_equal(kv_applied_index(c), 400);
        /* the restored replica and the original stay identical on more commands */
        run_random(a, seed + 1, 200, 401);
        run_random(c, seed + 1, 200, 401);
        free(sa);
        free(sc);
        snap(a, &sa, &la);
        snap(c, &sc, &lc);
        if (la != lc || memcmp(sa, sc, la))
            fail_msg("restored replica diverged, seed %llu", (unsigned long long)seed);
        /* LIST answers agree too */
        kv_op l = {.type = KV_OP_LIST, .path = ""};
        uint8_t *ob, *ra, *rc;
        size_t ol, lra, lrc;
        assert_int_equal(kv_op_encode(&l, &ob, &ol), 0);
        assert_int_equal(kv_query(a, ob, ol, &ra, &lra), 0);
        assert_int_equal(kv_query(c, ob, ol, &rc, &lrc), 0);
        assert_int_equal(lra, lrc);
        assert_memory_equal(ra, rc, lra);
        free(ob);
        free(ra);
        free(rc);
        free(sa);
        free(sb);
        free(sc);
        kv_free(a);
        kv_free(b);
        kv_free(c);
    }
}

/* Holes and written zeros encode alike, so replicas that reached the same
 * content differently snapshot identically. */
static void test_snapshot_canonical(void **s)
{
    (void)s;
    tk a = mk(NULL), b = mk(NULL);
    size_t n = 3 * KV_CHUNK_SIZE;
    uint8_t *z = calloc(1, n);
    z[n - 1] = 'x';
    kv_op p = {.type = KV_OP_PUT, .path = "f", .data = z, .data_len = n};
    assert_int_equal(put(&a, "f", ""), 0);
    assert_int_equal(cmd_st(&a, &p), 0);
    kv_op w = {.type = KV_OP_WRITE_AT,
               .path = "f",
               .off = n - 1,
               .data = (const uint8_t *)"x",
               .data_len = 1};
    assert_int_equal(put(&b, "f", ""), 0);
    assert_int_equal(cmd_st(&b, &w), 0);
    /* same clock, same index: equal states */
    uint8_t *sa, *sb;
    size_t la, lb;
    snap(a.k, &sa, &la);
    snap(b.k, &sb, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(sa, sb, la);
    assert_true(la < KV_CHUNK_SIZE + 1024); /* zero chunks are not stored */
    free(sa);
    free(sb);
    free(z);
    done(&a);
    done(&b);
}

/* streaming writer that sees pieces; reader that hands bytes in odd sizes */
typedef struct {
    uint8_t *p;
    size_t len, max_piece;
    int calls;
} sink;
static int sink_write(void *arg, const void *b, size_t n)
{
    sink *s = arg;
    s->p = realloc(s->p, s->len + n);
    memcpy(s->p + s->len, b, n);
    s->len += n;
    if (n > s->max_piece)
        s->max_piece = n;
    s->calls++;
    return 0;
}
static int fail_write(void *arg, const void *b, size_t n)
{
    (void)b;
    (void)n;
    int *left = arg;
    return (*left)-- > 0 ? 0 : -1;
}
typedef struct {
    const uint8_t *p;
    size_t len, pos;
} src;
static int src_read(void *arg, void *b, size_t n)
{
    src *s = arg;
    if (n > s->len - s->pos)
        return -1;
    memcpy(b, s->p + s->pos, n);
    s->pos += n;
    return 0;
}

static void test_snapshot_stream(void **s)
{
    (void)s;
    kv *k = kv_new(NULL);
    run_random(k, 12345, 600, 1);
    /* many small files and a large one, after the 600 commands */
    tk t = {k, 600, 100000};
    char name[32], *val = malloc(300 * 1024 + 1);
    enum { NSMALL = 300 };
    for (int i = 0; i < NSMALL; i++) {
        memset(val, 'a' + i % 26, 1000 + (size_t)i);
        val[1000 + i] = 0;
        snprintf(name, sizeof name, "small%d", i);
        assert_int_equal(put(&t, name, val), 0);
    }
    memset(val, 'z', 300 * 1024);
    val[300 * 1024] = 0;
    assert_int_equal(put(&t, "large", val), 0);
    free(val);
    uint8_t *whole;
    size_t wl;
    snap(k, &whole, &wl);
    sink sk = {0};
    assert_int_equal(kv_snapshot_write(k, sink_write, &sk), 0);
    assert_int_equal(sk.len, wl);
    assert_memory_equal(sk.p, whole, wl);
    assert_true(sk.max_piece <= KV_CHUNK_SIZE + 8192);
    /* in pieces, but not one (or two) per small file: each piece is a
     * system call of the node's snapshot encoder */
    assert_true(sk.calls > 1);
    assert_true(sk.calls < NSMALL / 4);
    /* a failing writer fails the encoding at any point */
    for (int left = 0; left < sk.calls; left += 1 + sk.calls / 20) {
        int l = left;
        assert_int_equal(kv_snapshot_write(k, fail_write, &l), -1);
    }
    kv *k2 = kv_new(NULL);
    src sr = {whole, wl, 0};
    assert_int_equal(kv_snapshot_read(k2, src_read, &sr), 0);
    uint8_t *again;
    size_t al;
    snap(k2, &again, &al);
    assert_int_equal(al, wl);
    assert_memory_equal(again, whole, wl);
    /* trailing bytes are refused by the buffer form, state untouched */
    uint8_t *plus = malloc(wl + 1);
    memcpy(plus, whole, wl);
    plus[wl] = 0;
    kv *k3 = kv_new(NULL);
    assert_int_equal(put(&(tk){k3, 0, 1}, "keep", "me"), 0);
    assert_int_equal(kv_snapshot_decode(k3, plus, wl + 1), -1);
    tk t3 = {k3, 1, 10};
    assert_get(&t3, "keep", "me");
    free(plus);
    free(again);
    free(whole);
    free(sk.p);
    kv_free(k);
    kv_free(k2);
    kv_free(k3);
}

/* ---- malformed bytes ---------------------------------------------------------------------- */

static void test_malformed_ops_and_commands(void **s)
{
    (void)s;
    tk t = mk(NULL);
    assert_int_equal(put(&t, "x", "1"), 0);
    uint64_t sid = reg(&t);
    /* every op type, truncated at every length: decode fails, apply is a no-op */
    for (int type = 1; type <= KV_OP__MAX; type++) {
        kv_op o = {.type = (uint8_t)type,
                   .path = "a/b",
                   .path2 = "c",
                   .data = (const uint8_t *)"dat",
                   .data_len = 3,
                   .mode = 0644,
                   .len = 5};
        uint8_t *ob;
        size_t ol;
        assert_int_equal(kv_op_encode(&o, &ob, &ol), 0);
        kv_op d;
        assert_int_equal(kv_op_decode(ob, ol, &d), 0);
        assert_int_equal(d.type, type);
        for (size_t cut = 0; cut < ol; cut++) {
            assert_int_equal(kv_op_decode(ob, cut, &d), -1);
            assert_false(kv_op_is_read(ob, cut));
            uint8_t *cb, *rb;
            size_t cl, rl;
            assert_int_equal(kv_cmd_encode(sid, (uint64_t)cut + 1000 * (uint64_t)type, t.time, ob,
                                           cut, &cb, &cl),
                             0);
            assert_int_equal(kv_apply(t.k, ++t.index, cb, cl, &rb, &rl), 0);
            assert_int_equal(kv_reply_status(rb, rl), EBADMSG);
            free(rb);
            /* the command envelope itself, truncated */
            for (size_t cc = 0; cc < 26 && cc < cl; cc++) {
                assert_int_equal(kv_apply(t.k, ++t.index, cb, cc, &rb, &rl), 0);
                assert_int_equal(kv_reply_status(rb, rl), EBADMSG);
                free(rb);
            }
            free(cb);
        }
        /* one byte too many */
        uint8_t *longer = malloc(ol + 1);
        memcpy(longer, ob, ol);
        longer[ol] = 0;
        assert_int_equal(kv_op_decode(longer, ol + 1, &d), -1);
        free(longer);
        free(ob);
    }
    assert_get(&t, "x", "1");
    kv_op l = {.type = KV_OP_LIST, .path = ""};
    kv_reply r;
    assert_int_equal(query(&t, &l, &r), 0);
    assert_int_equal(r.n_names, 1);
    kv_reply_free(&r);
    /* random bytes, and a query with a write op */
    rng_state = 777;
    uint8_t junk[200];
    for (int i = 0; i < rounds(3000); i++) {
        size_t n = rnd() % sizeof junk;
        for (size_t j = 0; j < n; j++)
            junk[j] = (uint8_t)rnd();
        if (n > 1 && rnd() % 2) {
            junk[0] = 1;
            junk[1] = (uint8_t)(rnd() % 27);
        }
        uint8_t *rb;
        size_t rl;
        kv_op d;
        (void)kv_op_decode(junk, n, &d);
        assert_int_equal(kv_query(t.k, junk, n, &rb, &rl), 0);
        assert_true(kv_reply_status(rb, rl) != KV_ESTALE);
        free(rb);
        uint8_t *cb;
        size_t cl;
        assert_int_equal(kv_cmd_encode(0, 0, t.time, junk, n, &cb, &cl), 0);
        assert_int_equal(kv_apply(t.k, ++t.index, cb, cl, &rb, &rl), 0);
        free(rb);
        free(cb);
        assert_int_equal(kv_apply(t.k, ++t.index, junk, n, &rb, &rl), 0);
        free(rb);
    }
    kv_op w = {.type = KV_OP_PUT, .path = "y"};
    uint8_t *ob, *rb;
    size_t ol, rl;
    assert_int_equal(kv_op_encode(&w, &ob, &ol), 0);
    assert_false(kv_op_is_read(ob, ol));
    assert_int_equal(kv_query(t.k, ob, ol, &rb, &rl), 0);
    assert_int_equal(kv_reply_status(rb, rl), EINVAL);
    free(rb);
    free(ob);
    kv_op bad = {.type = 0};
    assert_int_equal(kv_op_encode(&bad, &ob, &ol), -1);
    bad.type = KV_OP__MAX + 1;
    assert_int_equal(kv_op_encode(&bad, &ob, &ol), -1);
    done(&t);
}

static void test_op_codec(void **s)
{
    (void)s;
    kv_op o = {.type = KV_OP_SETATTR,
               .path = "dir/file",
               .ino = 99,
               .flags = 63,
               .mode = 0751,
               .uid = 1000,
               .gid = 1001,
               .len = 1ull << 40,
               .atime_ns = -7,
               .mtime_ns = KV_TIME_NOW};
    uint8_t *b;
    size_t l;
    assert_int_equal(kv_op_encode(&o, &b, &l), 0);
    kv_op d;
    assert_int_equal(kv_op_decode(b, l, &d), 0);
    assert_int_equal(d.type, KV_OP_SETATTR);
    assert_int_equal(d.path_len, 8);
    assert_memory_equal(d.path, "dir/file", 8);
    assert_int_equal(d.ino, 99);
    assert_int_equal(d.flags, 63);
    assert_int_equal(d.mode, 0751);
    assert_int_equal(d.uid, 1000);
    assert_int_equal(d.gid, 1001);
    assert_int_equal(d.len, 1ull << 40);
    assert_int_equal(d.atime_ns, -7);
    assert_true(d.mtime_ns == KV_TIME_NOW);
    assert_false(kv_op_is_read(b, l));
    free(b);
    /* explicit lengths; fields an op does not use are not carried */
    kv_op r = {.type = KV_OP_RENAME,
               .path = "abcdef",
               .path_len = 3,
               .path2 = "xyz",
               .flags = KV_RENAME_EXCHANGE,
               .uid = 5};
    assert_int_equal(kv_op_encode(&r, &b, &l), 0);
    assert_int_equal(kv_op_decode(b, l, &d), 0);
    assert_int_equal(d.path_len, 3);
    assert_memory_equal(d.path, "abc", 3);
    assert_int_equal(d.path2_len, 3);
    assert_memory_equal(d.path2, "xyz", 3);
    assert_int_equal(d.flags, KV_RENAME_EXCHANGE);
    assert_int_equal(d.uid, 0);
    free(b);
    kv_op g = {.type = KV_OP_GETRANGE, .path = "f", .off = 10, .len = 20};
    assert_int_equal(kv_op_encode(&g, &b, &l), 0);
    assert_true(kv_op_is_read(b, l));
    assert_int_equal(kv_op_decode(b, l, &d), 0);
    assert_int_equal(d.off, 10);
    assert_int_equal(d.len, 20);
    free(b);
    /* commands */
    uint8_t op[3] = {1, 2, 3};
    assert_int_equal(kv_cmd_encode(5, 6, -8, op, 3, &b, &l), 0);
    uint64_t c, q;
    int64_t tm;
    const uint8_t *po;
    size_t pl;
    assert_int_equal(kv_cmd_decode(b, l, &c, &q, &tm, &po, &pl), 0);
    assert_int_equal(c, 5);
    assert_int_equal(q, 6);
    assert_int_equal(tm, -8);
    assert_int_equal(pl, 3);
    assert_memory_equal(po, op, 3);
    for (size_t cut = 0; cut < 26; cut++)
        assert_int_equal(kv_cmd_decode(b, cut, &c, &q, &tm, &po, &pl), -1);
    b[0] ^= 1;
    assert_int_equal(kv_cmd_decode(b, l, &c, &q, &tm, &po, &pl), -1);
    free(b);
}

/* The caller-buffer encoders write exactly what the allocating ones do,
 * within their bound, and refuse a buffer one byte short. */
static void test_codec_into_buffer(void **s)
{
    (void)s;
    static uint8_t data[3000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    kv_op ops[] = {
        {.type = KV_OP_SETATTR,
         .path = "dir/file",
         .ino = 9,
         .mode = 0751,
         .len = 1ull << 40,
         .atime_ns = -7,
         .mtime_ns = KV_TIME_NOW,
         .cuid = 3,
         .cgid = 4},
        {.type = KV_OP_RENAME, .path = "a/b", .path2 = "c/d", .dir = 5, .dir2 = 6, .flags = 1},
        {.type = KV_OP_UPLOAD_PART,
         .upload = 77,
         .off = 1 << 20,
         .len = 5 << 20,
         .data = data,
         .data_len = sizeof data},
        {.type = KV_OP_PUT, .path = "k", .data = data, .data_len = 10, .mode = 0600},
    };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        uint8_t *want;
        size_t wl;
        assert_int_equal(kv_op_encode(&ops[i], &want, &wl), 0);
        size_t bound = kv_op_encode_bound(&ops[i]);
        assert_true(bound >= wl);
        uint8_t *got = malloc(bound);
        size_t gl;
        assert_int_equal(kv_op_encode_to(&ops[i], got, bound, &gl), 0);
        assert_int_equal(gl, wl);
        assert_memory_equal(got, want, wl);
        memset(got, 0, bound);
        assert_int_equal(kv_op_encode_to(&ops[i], got, wl, &gl), 0); /* exactly its size */
        assert_int_equal(gl, wl);
        assert_memory_equal(got, want, wl);
        assert_int_equal(kv_op_encode_to(&ops[i], got, wl - 1, &gl), -1);
        assert_int_equal(gl, 0);
        /* and its command */
        uint8_t *cw;
        size_t cwl;
        assert_int_equal(kv_cmd_encode(11, 12, -13, want, wl, &cw, &cwl), 0);
        assert_int_equal(kv_cmd_size(wl), cwl);
        uint8_t *cg = malloc(cwl);
        assert_int_equal(kv_cmd_encode_to(11, 12, -13, want, wl, cg, cwl), 0);
        assert_memory_equal(cg, cw, cwl);
        assert_int_equal(kv_cmd_encode_to(11, 12, -13, want, wl, cg, cwl - 1), -1);
        free(cg);
        free(cw);
        free(got);
        free(want);
    }
    kv_op bad = {.type = 0};
    uint8_t buf[256];
    size_t l;
    assert_int_equal(kv_op_encode_to(&bad, buf, sizeof buf, &l), -1);
}

static void test_reply_codec(void **s)
{
    (void)s;
    const char *names[] = {"a", "bb/cc", ""};
    kv_dirent ents[] = {{"x", 5, S_IFREG | 0644}, {"yy", 6, S_IFDIR | 0755}};
    kv_reply r;
    memset(&r, 0, sizeof r);
    r.status = 0;
    r.has = KV_R_ATTR | KV_R_DATA | KV_R_NAMES | KV_R_ENTRIES | KV_R_STATFS;
    r.attr.ino = 9;
    r.attr.size = 3;
    r.attr.mtime_ns = -5;
    r.data = (uint8_t *)"abc";
    r.data_len = 3;
    r.names = names;
    r.n_names = 3;
    r.entries = ents;
    r.n_entries = 2;
    r.statfs.files = 77;
    uint8_t *b;
    size_t l;
    assert_int_equal(kv_reply_encode(&r, &b, &l), 0);
    kv_reply d;
    assert_int_equal(kv_reply_decode(b, l, &d), 0);
    assert_int_equal(d.has, r.has);
    assert_int_equal(d.attr.ino, 9);
    assert_int_equal(d.attr.mtime_ns, -5);
    assert_int_equal(d.data_len, 3);
    assert_memory_equal(d.data, "abc", 3);
    assert_int_equal(d.n_names, 3);
    assert_string_equal(d.names[1], "bb/cc");
    assert_string_equal(d.names[2], "");
    assert_int_equal(d.n_entries, 2);
    assert_string_equal(d.entries[1].name, "yy");
    assert_int_equal(d.entries[1].ino, 6);
    assert_int_equal(d.entries[1].mode, S_IFDIR | 0755);
    assert_int_equal(d.statfs.files, 77);
    kv_reply_free(&d);
    for (size_t cut = 0; cut < l; cut++) {
        assert_int_equal(kv_reply_decode(b, cut, &d), -1);
        kv_reply_free(&d); /* harmless after a failure */
        assert_int_equal(kv_reply_status(b, cut), EBADMSG);
    }
    /* every single-byte corruption: decodes or fails, never crashes or leaks */
    for (size_t i = 0; i < l; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1 << bit);
            if (kv_reply_decode(b, l, &d) == 0)
                kv_reply_free(&d);
            b[i] ^= (uint8_t)(1 << bit);
        }
    }
    free(b);
    assert_int_equal(kv_reply_encode_status(ENOENT, &b, &l), 0);
    assert_int_equal(kv_reply_status(b, l), ENOENT);
    free(b);
    assert_string_equal(kv_strstatus(KV_ESTALE),
                        "stale sequence number (command already applied, reply gone)");
    assert_string_equal(kv_op_name(KV_OP_RENAME), "RENAME");
}

/* A decoded state must be fully usable: change it, read it, snapshot it. */
static void exercise(kv *k)
{
    tk t = {k, kv_applied_index(k), kv_last_time(k)};
    (void)put(&t, "d/new", "1");
    (void)rename_(&t, "d", "moved", 0);
    (void)del(&t, "h");
    kv_op l = {.type = KV_OP_LIST, .path = ""};
    kv_reply r;
    (void)query(&t, &l, &r);
    kv_reply_free(&r);
    uint8_t *b;
    size_t n;
    snap(k, &b, &n);
    free(b);
}

static void test_malformed_snapshots(void **s)
{
    (void)s;
    kv *k = kv_new(NULL);
    tk t = {k, 0, 1000};
    assert_int_equal(put(&t, "d/f", "hello"), 0);
    assert_int_equal(put(&t, "d/e/g", "x"), 0);
    kv_op ln = {.type = KV_OP_LINK, .path = "d/f", .path2 = "h"};
    assert_int_equal(cmd_st(&t, &ln), 0);
    kv_op sl = {.type = KV_OP_SYMLINK, .path = "s", .data = (const uint8_t *)"d/f", .data_len = 3};
    assert_int_equal(cmd_st(&t, &sl), 0);
    kv_op o = {.type = KV_OP_OPEN_REF, .path = "d/f", .holder = 1};
    kv_reply orr;
    uint64_t sid = reg(&t);
    assert_int_equal(cmd_c(&t, sid, 1, &o, &orr), 0);
    kv_reply_free(&orr);
    kv_op w = {.type = KV_OP_WRITE_AT,
               .path = "h",
               .off = 30,
               .data = (const uint8_t *)"z",
               .data_len = 1};
    assert_int_equal(cmd_st(&t, &w), 0);
    uint8_t *good;
    size_t gl;
    snap(k, &good, &gl);
    kv *victim = kv_new(NULL);
    tk tv = {victim, 0, 1};
    assert_int_equal(put(&tv, "mine", "untouched"), 0);
    uint8_t *vb;
    size_t vl;
    snap(victim, &vb, &vl);
    /* every truncation */
    for (size_t cut = 0; cut < gl; cut++)
        assert_int_equal(kv_snapshot_decode(victim, good, cut), -1);
    /* every bit flip: either refused (state untouched) or a valid state */
    uint8_t *bad = malloc(gl);
    int accepted = 0;
    size_t step = rounds(1) > 1 ? 1 : 3;
    for (size_t i = 0; i < gl; i += step) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, good, gl);
            bad[i] ^= (uint8_t)(1 << bit);
            kv *x = kv_new(NULL);
            if (kv_snapshot_decode(x, bad, gl) == 0) {
                accepted++; /* e.g. a flipped data byte or timestamp */
                exercise(x);
            }
            kv_free(x);
        }
    }
    assert_true(accepted > 0);
    free(bad);
    /* random junk, and junk behind a valid header */
    rng_state = 4242;
    uint8_t junk[512];
    for (int i = 0; i < rounds(2000); i++) {
        size_t n = rnd() % sizeof junk;
        for (size_t j = 0; j < n; j++)
            junk[j] = (uint8_t)rnd();
        if (n >= 8 && rnd() % 2)
            memcpy(junk, good, 8 + rnd() % (n - 7 < 60 ? n - 7 : 60));
        assert_int_equal(kv_snapshot_decode(victim, junk, n), -1);
    }
    assert_int_equal(kv_snapshot_decode(victim, NULL, 0), -1);
    uint8_t *vb2;
    size_t vl2;
    snap(victim, &vb2, &vl2);
    assert_int_equal(vl, vl2);
    assert_memory_equal(vb, vb2, vl);
    /* and the good one still decodes into the victim */
    assert_int_equal(kv_snapshot_decode(victim, good, gl), 0);
    assert_get(&(tk){victim, 100, 1}, "h", "hello");
    free(vb);
    free(vb2);
    free(good);
    kv_free(victim);
    kv_free(k);
}

/* ---- memory of small files ---------------------------------------------------------------- */

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- chunked uploads -------------------------------------------------------------- */

static int part(tk *t, uint64_t client, uint64_t seq, uint64_t id, uint64_t total, const uint8_t *v,
                uint64_t off)
{
    uint64_t n = total - off < KV_PART_SIZE ? total - off : KV_PART_SIZE;
    kv_op o = {.type = KV_OP_UPLOAD_PART,
               .upload = id,
               .off = off,
               .len = total,
               .data = v + off,
               .data_len = (size_t)n};
    kv_reply r;
    int st = cmd_c(t, client, seq, &o, &r);
    assert_int_equal(r.has, 0); /* status only */
    kv_reply_free(&r);
    return st;
}

static int commit(tk *t, uint64_t client, uint64_t seq, uint64_t id, const char *path,
                  uint64_t total, kv_attr *a)
{
    kv_op o = {.type = KV_OP_UPLOAD_COMMIT,
               .upload = id,
               .path = path,
               .len = total,
               .mode = 0600,
               .uid = 5,
               .gid = 6};
    kv_reply r;
    int st = cmd_c(t, client, seq, &o, &r);
    if (a)
        *a = r.attr;
    kv_reply_free(&r);
    return st;
}

static void assert_content(tk *t, const char *path, const uint8_t *want, uint64_t len)
{
    uint8_t *got = malloc(len ? len : 1);
    uint64_t off = 0;
    while (off < len) {
        kv_op o = {.type = KV_OP_GETRANGE, .path = path, .off = off, .len = 64u << 20};
        kv_reply r;
        assert_int_equal(query(t, &o, &r), 0);
        assert_true(r.data_len > 0 && r.data_len <= KV_READ_MAX); /* replies stay bounded */
        assert_int_equal(r.attr.size, len);
        memcpy(got + off, r.data, r.data_len);
        off += r.data_len;
        kv_reply_free(&r);
    }
    assert_memory_equal(got, want, len);
    free(got);
}

/* A part of an upload of unknown size (len 0, as the mount streams). */
static int part0(tk *t, uint64_t id, const uint8_t *v, uint64_t off, size_t n)
{
    kv_op o = {.type = KV_OP_UPLOAD_PART, .upload = id, .off = off, .data = v + off, .data_len = n};
    return cmd_st(t, &o);
}

static int upload_write(tk *t, uint64_t client, uint64_t seq, uint64_t id, uint64_t ino,
                        uint64_t off, uint64_t len, kv_attr *a)
{
    kv_op o = {.type = KV_OP_UPLOAD_WRITE, .upload = id, .ino = ino, .off = off, .len = len};
    kv_reply r;
    int st = cmd_c(t, client, seq, &o, &r);
    if (a)
        *a = r.attr;
    kv_reply_free(&r);
    return st;
}

/* ---- what a command changed (kv_changed) ------------------------------------------------ */

/* True when the last apply reported ino as changed. */
static bool changed(tk *t, uint64_t ino)
{
    const uint64_t *inos;
    bool all;
    size_t n = kv_changed(t->k, &inos, &all);
    for (size_t i = 0; i < n; i++)
        if (inos[i] == ino)
            return true;
    return all;
}

static size_t n_changed(tk *t)
{
    const uint64_t *inos;
    bool all;
    return kv_changed(t->k, &inos, &all);
}

/* A cache of attributes forgets what kv_changed names, so every inode whose
 * attributes a command changed must be named: the file written, both
 * directories and both files of a rename over a file, a parent gaining a
 * directory; nothing for a failed command; everything for a snapshot. */
static void test_changed(void **s)
{
    (void)s;
    tk t = mk(NULL);
    assert_int_equal(mkdir_(&t, "/d"), 0);
    assert_int_equal(put(&t, "/d/f", "one"), 0);
    assert_int_equal(put(&t, "/g", "two"), 0);
    kv_attr root, d, f, g;
    assert_int_equal(stat_(&t, "/", &root), 0);
    assert_int_equal(stat_(&t, "/d", &d), 0);
    assert_int_equal(stat_(&t, "/d/f", &f), 0);
    assert_int_equal(stat_(&t, "/g", &g), 0);

    assert_int_equal(append(&t, "/d/f", "+"), 0); /* content and mtime of f only */
    assert_true(changed(&t, f.ino));
    assert_int_equal(n_changed(&t), 1);

    assert_int_equal(rename_(&t, "/g", "/d/f", 0), 0); /* g over f: both dirs, g, f */
    assert_true(changed(&t, root.ino) && changed(&t, d.ino) && changed(&t, g.ino) &&
                changed(&t, f.ino));

    kv_attr a;
    assert_int_equal(stat_(&t, "/d", &a), 0);
    assert_true(a.ctime_ns != d.ctime_ns);
    assert_int_equal(mkdir_(&t, "/d/e"), 0); /* the parent's nlink and times */
    assert_true(changed(&t, d.ino));
    assert_int_equal(stat_(&t, "/d/e", &a), 0);
    assert_true(changed(&t, a.ino));

    /* A command that changes nothing names nothing; a failed one neither. */
    assert_int_equal(del(&t, "/nothing"), ENOENT);
    assert_int_equal(n_changed(&t), 0);

    /* A whole new state: everything. */
    uint8_t *b;
    size_t l;
    snap(t.k, &b, &l);
    assert_int_equal(kv_snapshot_decode(t.k, b, l), 0);
    const uint64_t *inos;
    bool all = false;
    kv_changed(t.k, &inos, &all);
    assert_true(all);
    free(b);
    done(&t);
}

/* UPLOAD_WRITE, the commit of a file the mount streamed: the staged bytes
 * written at an offset at once (moved into an empty file, copied over a
 * changed one with its other bytes kept), exactly once, with WRITE_AT's
 * errors; an incomplete upload is refused and stays. */
static void test_upload_write(void **s)
{
    (void)s;
    kv_limits lim = {.max_file_size = 8u << 20, .max_total_bytes = 64u << 20};
    tk t = mk(&lim);
    uint64_t len = 2 * KV_PART_SIZE + 300;
    uint8_t *v = malloc(len);
    for (size_t i = 0; i < len; i++)
        v[i] = (uint8_t)(i * 13 + i / 777);
    uint64_t sess = reg(&t);
    assert_int_equal(put(&t, "e", ""), 0);
    kv_attr a, b;
    assert_int_equal(stat_(&t, "e", &a), 0);
    /* parts of unknown total (0), the tail short; the last part missing */
    for (uint64_t off = 0; off < 2 * KV_PART_SIZE; off += KV_PART_SIZE)
        assert_int_equal(part0(&t, 91, v, off, KV_PART_SIZE), 0);
    assert_int_equal(upload_write(&t, sess, 1, 91, a.ino, 0, len, NULL), KV_EUPLOAD);
    assert_get(&t, "e", ""); /* nothing visible, the staging stays */
    assert_int_equal(part0(&t, 91, v, 2 * KV_PART_SIZE, 300), 0);
    assert_int_equal(upload_write(&t, sess, 2, 91, a.ino, 0, len, &b), 0);
    assert_int_equal(b.size, len);
    assert_content(&t, "e", v, len);
    kv_stats st;
    kv_get_stats(t.k, &st);
    assert_int_equal(st.uploads, 0);
    assert_int_equal(st.staged_bytes, 0);
    assert_int_equal(st.bytes_used, len);
    /* exactly once: the retry gets the reply, a new seq finds no upload */
    assert_int_equal(upload_write(&t, sess, 2, 91, a.ino, 0, len, &b), 0);
    assert_int_equal(upload_write(&t, sess, 3, 91, a.ino, 0, len, NULL), KV_EUPLOAD);
    assert_content(&t, "e", v, len);

    /* over a file that changed: the bytes at their offsets, the rest kept */
    uint8_t *w = malloc(KV_PART_SIZE + 10);
    memset(w, 'w', KV_PART_SIZE + 10);
    assert_int_equal(part0(&t, 92, w, 0, KV_PART_SIZE), 0);
    assert_int_equal(part0(&t, 92, w, KV_PART_SIZE, 10), 0);
    assert_int_equal(upload_write(&t, sess, 4, 92, a.ino, 100, KV_PART_SIZE + 10, &b), 0);
    assert_int_equal(b.size, len);
    memset(v + 100, 'w', KV_PART_SIZE + 10);
    assert_content(&t, "e", v, len);
    kv_get_stats(t.k, &st);
    assert_int_equal(st.bytes_used, len);
    assert_int_equal(st.staged_bytes, 0);

    /* WRITE_AT's errors; each refusal drops the staging for good */
    assert_int_equal(mkdir_(&t, "dir"), 0);
    kv_attr d;
    assert_int_equal(stat_(&t, "dir", &d), 0);
    assert_int_equal(part0(&t, 93, w, 0, KV_PART_SIZE), 0);
    assert_int_equal(upload_write(&t, sess, 5, 93, d.ino, 0, KV_PART_SIZE, NULL), EISDIR);
    assert_int_equal(part0(&t, 94, w, 0, KV_PART_SIZE), 0);
    assert_int_equal(upload_write(&t, sess, 6, 94, 999999, 0, KV_PART_SIZE, NULL), ENOENT);
    assert_int_equal(part0(&t, 95, w, 0, KV_PART_SIZE), 0);
    assert_int_equal(upload_write(&t, sess, 7, 95, a.ino, 8u << 20, KV_PART_SIZE, NULL), EFBIG);
    kv_get_stats(t.k, &st);
    assert_int_equal(st.uploads, 0);
    assert_int_equal(st.staged_bytes, 0);
    assert_content(&t, "e", v, len);
    free(v);
    free(w);
    done(&t);
}

/* A value in parts, out of order and with a part sent twice, invisible until
 * the commit, then visible whole and at once; the parts bypass the session
 * (seqs out of order do not make them stale) and the commit is exactly once;
 * the staging survives a snapshot; limits, aborts and expiry. */
static void test_uploads(void **s)
{
    (void)s;
    kv_limits lim = {.max_file_size = 16u << 20, .max_total_bytes = 40u << 20};
    tk t = mk(&lim);
    uint64_t total = 3 * KV_PART_SIZE + 100;
    uint8_t *v = malloc(6u << 20);
    for (size_t i = 0; i < (6u << 20); i++)
        v[i] = (uint8_t)(i * 7 + i / 4096);
    assert_int_equal(put(&t, "big", "old"), 0);
    /* commits need registered sessions; parts use none (any client id) */
    uint64_t s9 = reg(&t), s10 = reg(&t), s11 = reg(&t);
    /* parts 2 and 0 come with higher seqs than parts 3 and 1 */
    assert_int_equal(part(&t, 9, 4, 77, total, v, 2 * KV_PART_SIZE), 0);
    assert_int_equal(part(&t, 9, 3, 77, total, v, 0), 0);
    assert_int_equal(part(&t, 9, 1, 77, total, v, 3 * KV_PART_SIZE), 0);
    /* incomplete: refused, the staging stays; nothing visible */
    assert_int_equal(commit(&t, s9, 5, 77, "big", total, NULL), KV_EUPLOAD);
    assert_get(&t, "big", "old");
    kv_stats st;
    kv_get_stats(t.k, &st);
    assert_int_equal(st.uploads, 1);
    assert_int_equal(st.staged_bytes, total);
    assert_int_equal(st.bytes_used, 3);
    /* a snapshot carries the staging: a replica restored from it finishes alike */
    uint8_t *snap;
    size_t snap_len;
    assert_int_equal(kv_snapshot_encode(t.k, &snap, &snap_len), 0);
    tk t2 = mk(&lim);
    assert_int_equal(kv_snapshot_decode(t2.k, snap, snap_len), 0);
    t2.index = t.index;
    t2.time = t.time;
    uint8_t *snap2;
    size_t snap2_len;
    assert_int_equal(kv_snapshot_encode(t2.k, &snap2, &snap2_len), 0);
    assert_int_equal(snap_len, snap2_len);
    assert_memory_equal(snap, snap2, snap_len);
    free(snap2);
    for (tk *x = &t; x; x = x == &t ? &t2 : NULL) {
        assert_int_equal(part(x, 9, 2, 77, total, v, KV_PART_SIZE), 0);
        assert_int_equal(part(x, 9, 2, 77, total, v, KV_PART_SIZE), 0); /* again: no change */
        assert_int_equal(commit(x, s9, 6, 77, "big", total + 1, NULL), EINVAL);
        kv_attr a;
        assert_int_equal(commit(x, s9, 7, 77, "big", total, &a), 0);
        assert_int_equal(a.size, total);
        assert_content(x, "big", v, total);
        kv_get_stats(x->k, &st);
        assert_int_equal(st.uploads, 0);
        assert_int_equal(st.staged_bytes, 0);
        assert_int_equal(st.bytes_used, total);
        /* the commit is exactly once: a retry gets the same reply */
        assert_int_equal(commit(x, s9, 7, 77, "big", total, &a), 0);
        assert_int_equal(a.size, total);
        /* the upload is gone: a commit under a new seq finds nothing */
        assert_int_equal(commit(x, s9, 8, 77, "big", total, NULL), KV_EUPLOAD);
    }
    assert_int_equal(kv_snapshot_encode(t.k, &snap2, &snap2_len), 0);
    uint8_t *snap3;
    size_t snap3_len;
    assert_int_equal(kv_snapshot_encode(t2.k, &snap3, &snap3_len), 0);
    assert_int_equal(snap2_len, snap3_len);
    assert_memory_equal(snap2, snap3, snap2_len);
    free(snap);
    free(snap2);
    free(snap3);
    kv_free(t2.k);

    /* a new file, created by the commit with PUT's mode and owner */
    uint64_t t5 = 5 * KV_PART_SIZE + 1;
    for (uint64_t off = 0; off < t5; off += KV_PART_SIZE)
        assert_int_equal(part(&t, 0, 0, 78, t5, v, off), 0);
    kv_attr a;
    assert_int_equal(commit(&t, s10, 1, 78, "d/new", t5, &a), 0);
    assert_int_equal(a.mode, S_IFREG | 0600);
    assert_int_equal(a.uid, 5);
    assert_content(&t, "d/new", v, t5);
    /* the conditional form (PUT_IF's rule, as the mount's whole-file
     * commit uses it): refused when the inode changed since its version */
    for (uint64_t off = 0; off < t5; off += KV_PART_SIZE)
        assert_int_equal(part(&t, 0, 0, 82, t5, v + 1, off), 0);
    kv_op cc = {.type = KV_OP_UPLOAD_COMMIT,
                .upload = 82,
                .ino = a.ino,
                .off = (uint64_t)a.ctime_ns - 1,
                .len = t5};
    assert_int_equal(cmd_st(&t, &cc), ECANCELED);
    assert_content(&t, "d/new", v, t5); /* unchanged */
    for (uint64_t off = 0; off < t5; off += KV_PART_SIZE)
        assert_int_equal(part(&t, 0, 0, 83, t5, v + 1, off), 0);
    cc.upload = 83;
    cc.off = (uint64_t)a.ctime_ns;
    assert_int_equal(cmd_st(&t, &cc), 0);
    assert_content(&t, "d/new", v + 1, t5);
    kv_get_stats(t.k, &st);
    assert_int_equal(st.uploads, 0);
    /* replies are bounded: GET of a file past KV_READ_MAX says EFBIG */
    char *g;
    assert_int_equal(get(&t, "d/new", &g), EFBIG);

    /* bad parts and limits */
    assert_int_equal(part(&t, 0, 0, 79, 17u << 20, v, 0), EFBIG); /* > max_file_size */
    kv_op o = {
        .type = KV_OP_UPLOAD_PART, .upload = 79, .off = 5, .len = total, .data = v, .data_len = 10};
    assert_int_equal(cmd_st(&t, &o), EINVAL); /* misaligned */
    o.off = 0;
    assert_int_equal(cmd_st(&t, &o), EINVAL); /* short, not the tail */
    o.data_len = 0;
    assert_int_equal(cmd_st(&t, &o), EINVAL);
    kv_get_stats(t.k, &st);
    assert_int_equal(st.uploads, 0);
    /* space: 40 MiB limit, about 8.1 MiB stored; a 16 MiB upload fits, a second does not */
    assert_int_equal(part(&t, 0, 0, 80, 16u << 20, v, 0), 0);
    assert_int_equal(part(&t, 0, 0, 81, 16u << 20, v, 0), ENOSPC);
    assert_int_equal(part(&t, 0, 0, 80, 15u << 20, v, 0), EINVAL); /* size changed */
    /* abort frees the reservation */
    o = (kv_op){.type = KV_OP_UPLOAD_ABORT, .upload = 80};
    assert_int_equal(cmd_st(&t, &o), 0);
    assert_int_equal(cmd_st(&t, &o), 0); /* unknown: fine */
    assert_int_equal(part(&t, 0, 0, 81, 16u << 20, v, 0), 0);
    kv_get_stats(t.k, &st);
    assert_int_equal(st.uploads, 1);
    /* an abandoned upload expires after KV_UPLOAD_TTL_NS of session time
     * (which moves at most KV_SESSION_STEP_NS per command): one command a
     * second for 590 s keeps it, 20 more seconds drop it */
    for (int i = 0; i < 590; i++) {
        t.time += 1000000000 - 1000;
        assert_int_equal(simple(&t, KV_OP_NOOP, ""), 0);
    }
    kv_get_stats(t.k, &st);
    assert_int_equal(st.uploads, 1);
    for (int i = 0; i < 20; i++) {
        t.time += 1000000000 - 1000;
        assert_int_equal(simple(&t, KV_OP_NOOP, ""), 0);
    }
    kv_get_stats(t.k, &st);
    assert_int_equal(st.uploads, 0);
    assert_int_equal(st.staged_bytes, 0);
    /* a size not known in advance (a file streamed by the mount): parts
     * declare 0, the commit says the size */
    uint64_t t6 = 2 * KV_PART_SIZE + 5;
    kv_op u0 = {.type = KV_OP_UPLOAD_PART,
                .upload = 90,
                .off = 2 * KV_PART_SIZE,
                .len = 0,
                .data = v + 2 * KV_PART_SIZE,
                .data_len = 5};
    assert_int_equal(cmd_st(&t, &u0), 0);
    u0.off = 0;
    u0.data = v;
    u0.data_len = KV_PART_SIZE;
    assert_int_equal(cmd_st(&t, &u0), 0);
    kv_get_stats(t.k, &st);
    assert_int_equal(st.staged_bytes, KV_PART_SIZE + 5);
    assert_int_equal(commit(&t, s11, 1, 90, "s", t6, NULL), KV_EUPLOAD); /* part 1 missing */
    assert_int_equal(kv_snapshot_encode(t.k, &snap, &snap_len), 0);
    t2 = mk(&lim);
    assert_int_equal(kv_snapshot_decode(t2.k, snap, snap_len), 0);
    assert_int_equal(kv_snapshot_encode(t2.k, &snap2, &snap2_len), 0);
    assert_int_equal(snap_len, snap2_len);
    assert_memory_equal(snap, snap2, snap_len);
    free(snap);
    free(snap2);
    kv_free(t2.k);
    u0.off = KV_PART_SIZE;
    u0.data = v + KV_PART_SIZE;
    assert_int_equal(cmd_st(&t, &u0), 0);
    assert_int_equal(commit(&t, s11, 2, 90, "s", t6 + 1, NULL), KV_EUPLOAD); /* wrong size */
    assert_int_equal(commit(&t, s11, 3, 90, "s", t6, NULL), 0);
    assert_content(&t, "s", v, t6);
    /* a short part that is not the tail never commits */
    u0.upload = 91;
    u0.off = 0;
    u0.data_len = 10;
    assert_int_equal(cmd_st(&t, &u0), 0);
    u0.off = KV_PART_SIZE;
    assert_int_equal(cmd_st(&t, &u0), 0);
    assert_int_equal(commit(&t, s11, 4, 91, "s2", KV_PART_SIZE + 10, NULL), KV_EUPLOAD);
    assert_int_equal(commit(&t, s11, 5, 91, "s2", 20, NULL), KV_EUPLOAD);
    o = (kv_op){.type = KV_OP_UPLOAD_ABORT, .upload = 91};
    assert_int_equal(cmd_st(&t, &o), 0);
    kv_get_stats(t.k, &st);
    assert_int_equal(st.uploads, 0);
    assert_int_equal(st.staged_bytes, 0);
    /* at most KV_UPLOADS_MAX at once */
    kv_limits lim2 = {.max_file_size = 16u << 20};
    tk t3 = mk(&lim2);
    for (uint64_t i = 0; i < KV_UPLOADS_MAX; i++)
        assert_int_equal(part(&t3, 0, 0, 1000 + i, 2 * KV_PART_SIZE, v, 0), 0);
    assert_int_equal(part(&t3, 0, 0, 5000, 2 * KV_PART_SIZE, v, 0), EBUSY);
    assert_int_equal(kv_snapshot_encode(t3.k, &snap, &snap_len), 0);
    tk t4 = mk(&lim2);
    assert_int_equal(kv_snapshot_decode(t4.k, snap, snap_len), 0);
    kv_get_stats(t4.k, &st);
    assert_int_equal(st.uploads, KV_UPLOADS_MAX);
    /* a corrupt upload section is refused */
    for (size_t cut = snap_len - 4; cut > snap_len - 64; cut -= 7) {
        assert_int_not_equal(kv_snapshot_decode(t4.k, snap, cut), 0);
    }
    free(snap);
    kv_free(t3.k);
    kv_free(t4.k);
    free(v);
    kv_free(t.k);
}

static void test_small_file_memory(void **s)
{
    (void)s;
    int n = !strcmp(mode_str(), "long") ? 1000000 : !strcmp(mode_str(), "asan") ? 20000 : 200000;
    long r0 = rss_kb();
    kv *k = kv_new(NULL);
    uint8_t val[256];
    memset(val, 'v', sizeof val);
    char path[64];
    kv_op o = {.type = KV_OP_PUT, .path = path, .data = val, .data_len = sizeof val};
    uint8_t *ob, *cb, *rb;
    size_t ol, cl, rl;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        /* 1000 files per directory, like a real tree */
        snprintf(path, sizeof path, "dir%04d/file%07d", i / 1000, i);
        assert_int_equal(kv_op_encode(&o, &ob, &ol), 0);
        assert_int_equal(kv_cmd_encode(0, 0, i, ob, ol, &cb, &cl), 0);
        assert_int_equal(kv_apply(k, (uint64_t)i + 1, cb, cl, &rb, &rl), 0);
        free(ob);
        free(cb);
        free(rb);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long r1 = rss_kb();
    kv_stats st;
    kv_get_stats(k, &st);
    double raw = (double)n * sizeof val;
    double rss = (double)(r1 - r0) * 1024;
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("kv memory: %d files of %zu bytes: RSS +%.1f MiB (%.0f bytes/file, %.2fx raw data); "
           "accounted data %.1f MiB meta %.1f MiB; %.0f applies/s\n",
           n, sizeof val, rss / 1048576, rss / n, rss / raw, (double)st.data_alloc / 1048576,
           (double)st.meta_alloc / 1048576, n / secs);
    uint8_t *sb;
    size_t sl;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    snap(k, &sb, &sl);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("kv snapshot: %.1f MiB in %.2f s\n", (double)sl / 1048576,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    free(sb);
    assert_int_equal(st.files, (uint64_t)n);
    /* the state's own accounting must stay within 2x of the data */
    assert_true((double)(st.data_alloc + st.meta_alloc) < 2.0 * raw);
    kv_free(k);
}

/* ---- pinned encodings ------------------------------------------------------------------- */

/* FNV-1a: a short fingerprint of an encoding too long to spell out. */
static uint64_t fnv64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void dump_hex(const char *what, const uint8_t *p, size_t n)
{
    printf("%s (%zu bytes, fnv %016llx):", what, n, (unsigned long long)fnv64(p, n));
    for (size_t i = 0; i < n; i++)
        printf("%s0x%02x,", i % 12 ? " " : "\n    ", p[i]);
    printf("\n");
}

/* The bytes of an op, a command, a reply and a snapshot are fixed: they are
 * in Raft logs, on the wire and in snapshot files written by older builds.
 * These pins fail on any change to the layout. */
static void test_encoding_pinned(void **s)
{
    (void)s;
    bool show = getenv("HSTORE_TEST_DUMP") != NULL;
    kv_op o = {.type = KV_OP_PUT,
               .path = "a/b",
               .data = (const uint8_t *)"xy",
               .data_len = 2,
               .mode = 0644,
               .uid = 0x01020304,
               .gid = 5,
               .dir = 0x1122334455667788ull,
               .cuid = 6,
               .cgid = 7};
    uint8_t *ob, *cb, *rb, *sb;
    size_t ol, cl, rl, sl;
    assert_int_equal(kv_op_encode(&o, &ob, &ol), 0);
    static const uint8_t want_op[] = {
        2,    KV_OP_PUT, 3,    0,    0,    0,    'a',  '/',  'b', 2,
        0,    0,         0,    'x',  'y',  0xa4, 0x01, 0,    0, /* mode 0644 */
        0x04, 0x03,      0x02, 0x01,                            /* uid */
        5,    0,         0,    0,                               /* gid */
        0x88, 0x77,      0x66, 0x55, 0x44, 0x33, 0x22, 0x11,    /* dir */
        6,    0,         0,    0,    7,    0,    0,    0,       /* cuid, cgid */
    };
    if (show)
        dump_hex("op", ob, ol);
    assert_int_equal(ol, sizeof want_op);
    assert_memory_equal(ob, want_op, ol);

    assert_int_equal(kv_cmd_encode(0x0102030405060708ull, 9, -2, ob, ol, &cb, &cl), 0);
    static const uint8_t want_cmd_hdr[] = {
        'C', 1, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 9,    0,    0,
        0,   0, 0,    0,    0,    0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    if (show)
        dump_hex("cmd", cb, cl);
    assert_int_equal(cl, sizeof want_cmd_hdr + ol);
    assert_memory_equal(cb, want_cmd_hdr, sizeof want_cmd_hdr);
    assert_memory_equal(cb + sizeof want_cmd_hdr, ob, ol);

    const char *names[] = {"a", "bc"};
    kv_dirent ents[] = {{"e", 7, 0100644}};
    kv_reply r = {.status = 17,
                  .has = KV_R_ATTR | KV_R_DATA | KV_R_NAMES | KV_R_ENTRIES | KV_R_STATFS,
                  .attr = {.ino = 1,
                           .mode = 2,
                           .nlink = 3,
                           .uid = 4,
                           .gid = 5,
                           .rdev = 6,
                           .size = 7,
                           .blocks = 8,
                           .atime_ns = 9,
                           .mtime_ns = 10,
                           .ctime_ns = -1},
                  .data = (uint8_t *)"hi",
                  .data_len = 2,
                  .names = names,
                  .n_names = 2,
                  .entries = ents,
                  .n_entries = 1,
                  .statfs = {21, 22, 23, 24, 25, 26}};
    assert_int_equal(kv_reply_encode(&r, &rb, &rl), 0);
    static const uint8_t want_reply[] = {
        'R', 17,  0,    0,    0,    31,   1,    0,    0,    0,    0, 0,  0,   0, 2, 0,  0,
        0,   3,   0,    0,    0,    4,    0,    0,    0,    5,    0, 0,  0,   6, 0, 0,  0,
        0,   0,   0,    0,    7,    0,    0,    0,    0,    0,    0, 0,  8,   0, 0, 0,  0,
        0,   0,   0,    9,    0,    0,    0,    0,    0,    0,    0, 10, 0,   0, 0, 0,  0,
        0,   0,   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* attr */
        2,   0,   0,    0,    0,    0,    0,    0,    'h',  'i',  /* data */
        2,   0,   0,    0,    0,    0,    0,    0,    1,    0,    0, 0,  'a', 2, 0, 0,  0,
        'b', 'c', /* names */
        1,   0,   0,    0,    0,    0,    0,    0,    1,    0,    0, 0,  'e', 7, 0, 0,  0,
        0,   0,   0,    0,    0xa4, 0x81, 0,    0, /* entries */
        21,  0,   0,    0,    0,    0,    0,    0,    22,   0,    0, 0,  0,   0, 0, 0,  23,
        0,   0,   0,    0,    0,    0,    0,    24,   0,    0,    0, 0,  0,   0, 0, 25, 0,
        0,   0,   0,    0,    0,    0,    26,   0,    0,    0,    0, 0,  0,   0, /* statfs */
    };
    if (show)
        dump_hex("reply", rb, rl);
    assert_int_equal(rl, sizeof want_reply);
    assert_memory_equal(rb, want_reply, rl);

    /* A snapshot holding one of everything: directories, a small file, a
     * chunked file with a hole, a symlink, a device, a session with its
     * reply, an open reference, a holder's report, an orphan and a staged
     * upload.  Too long to spell out: pinned by length and fingerprint. */
    kv_limits lim = {.max_file_size = 1u << 24, .max_total_bytes = 1u << 26, .max_inodes = 1000};
    tk t = mk(&lim);
    assert_int_equal(put(&t, "d/small", "hello"), 0);
    uint8_t *big = malloc(2 * KV_CHUNK_SIZE);
    for (size_t i = 0; i < 2 * KV_CHUNK_SIZE; i++)
        big[i] = (uint8_t)(i * 7 + 1);
    kv_op w = {.type = KV_OP_WRITE_AT,
               .path = "d/big",
               .off = 3 * KV_CHUNK_SIZE + 5,
               .data = big,
               .data_len = 2 * KV_CHUNK_SIZE};
    assert_int_equal(put(&t, "d/big", ""), 0);
    assert_int_equal(cmd_st(&t, &w), 0);
    kv_op sl_op = {
        .type = KV_OP_SYMLINK, .path = "d/link", .data = (const uint8_t *)"small", .data_len = 5};
    assert_int_equal(cmd_st(&t, &sl_op), 0);
    kv_op dev = {.type = KV_OP_MKNOD, .path = "dev", .mode = S_IFCHR | 0600, .rdev = 0x0801};
    assert_int_equal(cmd_st(&t, &dev), 0);
    uint64_t sid = reg(&t);
    kv_op ap = {
        .type = KV_OP_APPEND, .path = "d/small", .data = (const uint8_t *)"!", .data_len = 1};
    kv_reply rr;
    assert_int_equal(cmd_c(&t, sid, 1, &ap, &rr), 0);
    kv_reply_free(&rr);
    kv_op ref = {.type = KV_OP_OPEN_REF, .path = "d/small", .holder = 3};
    assert_int_equal(cmd_st(&t, &ref), 0);
    kv_attr a;
    assert_int_equal(stat_(&t, "d/link", &a), 0);
    assert_int_equal(hold(&t, 9, t.index, NULL, 0, 0), 0);
    assert_int_equal(put(&t, "gone", "bye"), 0);
    assert_int_equal(stat_(&t, "gone", &a), 0);
    uint64_t gone = a.ino;
    assert_int_equal(del(&t, "gone"), 0);
    assert_int_equal(hold(&t, 9, t.index, &gone, 1, 0), 0);
    kv_op up = {.type = KV_OP_UPLOAD_PART,
                .upload = 77,
                .off = KV_PART_SIZE,
                .len = KV_PART_SIZE + 3,
                .data = (const uint8_t *)"abc",
                .data_len = 3};
    assert_int_equal(cmd_st(&t, &up), 0);
    assert_int_equal(kv_snapshot_encode(t.k, &sb, &sl), 0);
    if (show)
        printf("snapshot: %zu bytes, fnv %016llx\n", sl, (unsigned long long)fnv64(sb, sl));
    assert_int_equal(sl, 132028);
    assert_true(fnv64(sb, sl) == 0xe38107013c4b25feull);
    /* and it reads back to the same bytes */
    kv *k2 = kv_new(NULL);
    assert_int_equal(kv_snapshot_decode(k2, sb, sl), 0);
    uint8_t *again;
    size_t al;
    snap(k2, &again, &al);
    assert_int_equal(al, sl);
    assert_memory_equal(again, sb, sl);
    free(again);
    kv_free(k2);
    free(big);
    free(ob);
    free(cb);
    free(rb);
    free(sb);
    done(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get),
        cmocka_unit_test(test_chunks_recycled),
        cmocka_unit_test(test_chunks_seen_by_fork),
        cmocka_unit_test(test_put_if),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_del),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_create_mkdir_rmdir_unlink),
        cmocka_unit_test(test_mknod_symlink_readlink),
        cmocka_unit_test(test_readdir),
        cmocka_unit_test(test_write_at_sparse),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_rename_files),
        cmocka_unit_test(test_rename_dirs),
        cmocka_unit_test(test_rename_big_dir),
        cmocka_unit_test(test_link_nlink),
        cmocka_unit_test(test_setattr_times),
        cmocka_unit_test(test_statfs_limits),
        cmocka_unit_test(test_read_as_command),
        cmocka_unit_test(test_replicated_limits),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_session_expiry),
        cmocka_unit_test(test_open_refs),
        cmocka_unit_test(test_determinism_and_snapshots),
        cmocka_unit_test(test_snapshot_canonical),
        cmocka_unit_test(test_snapshot_stream),
        cmocka_unit_test(test_malformed_ops_and_commands),
        cmocka_unit_test(test_op_codec),
        cmocka_unit_test(test_codec_into_buffer),
        cmocka_unit_test(test_reply_codec),
        cmocka_unit_test(test_malformed_snapshots),
        cmocka_unit_test(test_uploads),
        cmocka_unit_test(test_upload_write),
        cmocka_unit_test(test_changed),
        cmocka_unit_test(test_small_file_memory),
        cmocka_unit_test(test_dir_relative_names),
        cmocka_unit_test(test_op_v1_decodes),
        cmocka_unit_test(test_setid_cleared_by_writers),
        cmocka_unit_test(test_holders_keep_orphans),
        cmocka_unit_test(test_encoding_pinned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
