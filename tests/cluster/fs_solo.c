/*
 * fs_solo.c — the FUSE layer over a one-process backend (fs/fs_backend.h):
 * the state machine (raftkv/kv.c) applied directly, no Raft, no network.
 *
 * It exists to check the filesystem's POSIX behaviour (tests/cluster/
 * test_fs_posix.sh runs against it as well as against a real cluster) and to
 * debug fs/ in isolation.  Its backend applies every command at once, in
 * order, answers reads from the same state machine, and applies the mount's
 * open-file reports right after every command (what the node's loop does).
 *
 *   build/fs_solo MOUNTPOINT [--max-file-size N] [--max-bytes N] [--delay-ms N]
 *                 [--stall FILE]
 *
 * Runs until SIGINT/SIGTERM, then unmounts.  --stall FILE: while FILE exists
 * every operation waits for its deadline and fails like a node without a
 * quorum (to check that operations return EIO and unmount still works).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs.h"
#include "raftkv/kv.h"

typedef struct solo {
    pthread_mutex_t mu;
    kv *k;
    uint64_t index;
    uint64_t id; /* the holder of the mount's open files */
    int op_timeout_ms;
    int delay_ms;
    const char *stall_file;
    fs_backend_open_fn open_fn; /* the mount's open files (set_open_files) */
    void *open_arg;
    uint64_t *open_buf;
    size_t open_cap;
    _Atomic uint64_t applied; /* read without mu: the mount calls it under its own lock */
} solo;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* What node.c's loop does for open files, done at once after every command
 * (n->mu held): report the orphans the mount holds open as holder 1. */
static void solo_report(solo *n, bool force)
{
    if (n->open_fn == NULL)
        return;
    kv_holder_view v;
    kv_holder_get(n->k, n->id, &v);
    if (!force && v.known && !v.uncovered && v.n_held == 0)
        return;
    uint64_t since = UINT64_MAX;
    size_t cnt;
    while ((cnt = n->open_fn(n->open_arg, n->open_buf, n->open_cap, &since)) > n->open_cap) {
        uint64_t *b = realloc(n->open_buf, cnt * 2 * sizeof *b);
        if (b == NULL)
            return;
        n->open_buf = b;
        n->open_cap = cnt * 2;
        since = UINT64_MAX;
    }
    uint8_t *data = malloc(cnt * 8 + 1);
    if (data == NULL)
        return;
    size_t m = 0;
    for (size_t i = 0; i < cnt && m < KV_HOLD_MAX; i++) {
        if (!kv_is_orphan(n->k, n->open_buf[i]))
            continue;
        for (int b = 0; b < 8; b++)
            data[m * 8 + b] = (uint8_t)(n->open_buf[i] >> (8 * b));
        m++;
    }
    uint64_t covered = kv_applied_index(n->k);
    if (since < covered)
        covered = since;
    kv_op op = {
        .type = KV_OP_HOLD, .holder = n->id, .off = covered, .data = data, .data_len = m * 8};
    uint8_t *ob = NULL, *cmd = NULL, *reply = NULL;
    size_t ol = 0, cl = 0, rl = 0;
    if (kv_op_encode(&op, &ob, &ol) == 0 && kv_cmd_encode(0, 0, now_ns(), ob, ol, &cmd, &cl) == 0)
        kv_apply(n->k, ++n->index, cmd, cl, &reply, &rl);
    free(reply);
    free(cmd);
    free(ob);
    free(data);
}

static void solo_set_open_files(void *ctx, fs_backend_open_fn fn, void *arg)
{
    solo *n = ctx;
    pthread_mutex_lock(&n->mu);
    n->open_fn = fn;
    n->open_arg = arg;
    if (fn != NULL)
        solo_report(n, true);
    pthread_mutex_unlock(&n->mu);
}

static bool solo_open_files_known(void *ctx)
{
    solo *n = ctx;
    pthread_mutex_lock(&n->mu);
    kv_holder_view v;
    kv_holder_get(n->k, n->id, &v);
    pthread_mutex_unlock(&n->mu);
    return v.known;
}

static uint64_t solo_applied_index(void *ctx)
{
    solo *n = ctx;
    return atomic_load(&n->applied);
}

/* A linearizable read (read) or a command, answered as the node would. */
static int solo_submit(solo *n, const uint8_t *op, size_t len, bool read, uint64_t client_id,
                       uint64_t seq, int timeout_ms, uint8_t **reply, size_t *reply_len)
{
    if (timeout_ms <= 0)
        timeout_ms = n->op_timeout_ms;
    struct stat st;
    if (n->stall_file != NULL && stat(n->stall_file, &st) == 0) {
        usleep((useconds_t)timeout_ms * 1000);
        return -ETIMEDOUT;
    }
    if (n->delay_ms > 0)
        usleep((useconds_t)n->delay_ms * 1000);
    int rc;
    pthread_mutex_lock(&n->mu);
    if (read) {
        rc = kv_query(n->k, op, len, reply, reply_len);
    } else {
        uint8_t *cmd = NULL;
        size_t cmd_len = 0;
        rc = kv_cmd_encode(client_id, seq, now_ns(), op, len, &cmd, &cmd_len);
        if (rc == 0) {
            rc = kv_apply(n->k, ++n->index, cmd, cmd_len, reply, reply_len);
            free(cmd);
        }
        if (rc == 0)
            solo_report(n, false);
        atomic_store(&n->applied, kv_applied_index(n->k));
    }
    pthread_mutex_unlock(&n->mu);
    return rc == 0 ? 0 : -ENOMEM;
}

static int solo_read(void *ctx, const uint8_t *op, size_t len, int timeout_ms, uint8_t **reply,
                     size_t *reply_len)
{
    return solo_submit(ctx, op, len, true, 0, 0, timeout_ms, reply, reply_len);
}

static int solo_command(void *ctx, const uint8_t *op, size_t len, uint64_t client_id, uint64_t seq,
                        int timeout_ms, uint8_t **reply, size_t *reply_len)
{
    return solo_submit(ctx, op, len, false, client_id, seq, timeout_ms, reply, reply_len);
}

/* Each command applied at once, in order. */
static int solo_commands(void *ctx, fs_backend_cmd *cmds, size_t cnt, int timeout_ms)
{
    int first = 0;
    for (size_t i = 0; i < cnt; i++) {
        cmds[i].reply = NULL;
        cmds[i].reply_len = 0;
        cmds[i].rc = solo_submit(ctx, cmds[i].op, cmds[i].len, false, cmds[i].client_id,
                                 cmds[i].seq, timeout_ms, &cmds[i].reply, &cmds[i].reply_len);
        if (cmds[i].rc != 0 && first == 0)
            first = cmds[i].rc;
    }
    return first;
}

static int solo_register(void *ctx, int timeout_ms, uint64_t *session_id)
{
    solo *n = ctx;
    kv_op o = {.type = KV_OP_REGISTER};
    uint8_t *ob, *rep = NULL;
    size_t ol, rlen = 0;
    *session_id = 0;
    if (kv_op_encode(&o, &ob, &ol) != 0)
        return -ENOMEM;
    int rc = solo_submit(n, ob, ol, false, 1, 0, timeout_ms, &rep, &rlen);
    free(ob);
    if (rc == 0)
        *session_id = kv_reply_session_id(rep, rlen);
    free(rep);
    return rc == 0 && !*session_id ? -ENOMEM : rc;
}

static void solo_status(void *ctx, raft_status *st)
{
    solo *n = ctx;
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&n->mu);
    st->id = 1;
    st->role = RAFT_LEADER;
    st->term = 1;
    st->leader = 1;
    st->commit = st->applied = st->last_index = n->index;
    st->first_index = 1;
    st->conf.n = 1;
    st->conf.ids[0] = 1;
    pthread_mutex_unlock(&n->mu);
}

static const fs_backend_ops solo_ops = {
    .read = solo_read,
    .command = solo_command,
    .commands = solo_commands,
    .register_session = solo_register,
    .status = solo_status,
    .set_open_files = solo_set_open_files,
    .open_files_known = solo_open_files_known,
    .applied_index = solo_applied_index,
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s MOUNTPOINT [--max-file-size N] [--max-bytes N] "
                "[--delay-ms N] [--stall FILE] [--op-timeout-ms N]\n",
                argv[0]);
        return 2;
    }
    static solo n;
    memset(&n, 0, sizeof n);
    pthread_mutex_init(&n.mu, NULL);
    n.id = 1;
    n.op_timeout_ms = 2000;
    uint64_t max_file_size = 1ull << 30;
    kv_limits lim = {0, 0, 0};
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--max-file-size") == 0)
            max_file_size = strtoull(argv[i + 1], NULL, 0);
        else if (strcmp(argv[i], "--max-bytes") == 0)
            lim.max_total_bytes = strtoull(argv[i + 1], NULL, 0);
        else if (strcmp(argv[i], "--delay-ms") == 0)
            n.delay_ms = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--stall") == 0)
            n.stall_file = argv[i + 1];
        else if (strcmp(argv[i], "--op-timeout-ms") == 0)
            n.op_timeout_ms = atoi(argv[i + 1]);
    }
    lim.max_file_size = max_file_size;
    n.k = kv_new(&lim);
    if (n.k == NULL)
        return 1;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* FUSE threads inherit the mask */

    fs_options o;
    fs_options_init(&o);
    o.debug = getenv("HSTORE_FS_DEBUG") != NULL;
    char err[512];
    fs_backend b = {.ops = &solo_ops,
                    .ctx = &n,
                    .id = n.id,
                    .op_timeout_ms = n.op_timeout_ms,
                    .max_file_size = max_file_size};
    fs_mount *m = fs_start(&b, argv[1], &o, err, sizeof err);
    if (m == NULL) {
        fprintf(stderr, "fs_solo: %s\n", err);
        kv_free(n.k);
        return 1;
    }
    printf("mounted %s\n", fs_mountpoint(m));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fs_stop(m);
    kv_free(n.k);
    free(n.open_buf);
    pthread_mutex_destroy(&n.mu);
    return 0;
}
