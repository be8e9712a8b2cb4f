/*
 * fs_solo.c — the FUSE layer over a one-process stand-in for a node: the
 * state machine (raftkv/kv.c) applied directly, no Raft, no network.
 *
 * It exists to check the filesystem's POSIX behaviour (tests/cluster/
 * test_fs_posix.sh runs against it as well as against a real cluster) and to
 * debug fs/ in isolation.  It defines node_submit(), node_status(),
 * node_get_config() and the open-file reporting calls itself (reports are
 * applied right after every command), so it is linked with fs/ and the kv
 * objects only.
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
#include "node/node.h"

struct node {
    pthread_mutex_t mu;
    kv *k;
    uint64_t index;
    node_config cfg;
    int delay_ms;
    const char *stall_file;
    node_open_fn open_fn;        /* the mount's open files (node_set_open_files) */
    void *open_arg;
    uint64_t *open_buf;
    size_t open_cap;
    _Atomic uint64_t applied;    /* read without mu: the mount calls it under its own lock */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* What node.c's loop does for open files, done at once after every command
 * (n->mu held): report the orphans the mount holds open as holder 1. */
static void solo_report(node *n, bool force)
{
    if (n->open_fn == NULL)
        return;
    kv_holder_view v;
    kv_holder_get(n->k, n->cfg.id, &v);
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
    kv_op op = { .type = KV_OP_HOLD, .holder = n->cfg.id, .off = covered, .data = data,
                 .data_len = m * 8 };
    uint8_t *ob = NULL, *cmd = NULL, *reply = NULL;
    size_t ol = 0, cl = 0, rl = 0;
    if (kv_op_encode(&op, &ob, &ol) == 0 && kv_cmd_encode(0, 0, now_ns(), ob, ol, &cmd, &cl) == 0)
        kv_apply(n->k, ++n->index, cmd, cl, &reply, &rl);
    free(reply);
    free(cmd);
    free(ob);
    free(data);
}

void node_set_open_files(node *n, node_open_fn fn, void *arg)
{
    pthread_mutex_lock(&n->mu);
    n->open_fn = fn;
    n->open_arg = arg;
    if (fn != NULL)
        solo_report(n, true);
    pthread_mutex_unlock(&n->mu);
}

bool node_open_files_known(node *n)
{
    pthread_mutex_lock(&n->mu);
    kv_holder_view v;
    kv_holder_get(n->k, n->cfg.id, &v);
    pthread_mutex_unlock(&n->mu);
    return v.known;
}

uint64_t node_applied_index(node *n)
{
    return atomic_load(&n->applied);
}

int node_submit(node *n, const uint8_t *op, size_t len, bool read, uint64_t client_id,
                uint64_t seq, int timeout_ms, uint8_t **reply, size_t *reply_len)
{
    if (timeout_ms <= 0)
        timeout_ms = n->cfg.op_timeout_ms;
    struct stat st;
    if (n->stall_file != NULL && stat(n->stall_file, &st) == 0) {
        usleep((useconds_t)timeout_ms * 1000);
        return NODE_ETIMEDOUT;
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
    return rc == 0 ? NODE_OK : NODE_ENOMEM;
}

/* The solo backend applies each command at once, in order. */
int node_submit_many(node *n, node_cmd *cmds, size_t cnt, int timeout_ms)
{
    int first = NODE_OK;
    for (size_t i = 0; i < cnt; i++) {
        cmds[i].reply = NULL;
        cmds[i].reply_len = 0;
        cmds[i].rc = node_submit(n, cmds[i].op, cmds[i].len, cmds[i].read, cmds[i].client_id,
                                 cmds[i].seq, timeout_ms, &cmds[i].reply, &cmds[i].reply_len);
        if (cmds[i].rc != NODE_OK && first == NODE_OK)
            first = cmds[i].rc;
    }
    return first;
}

int node_register(node *n, int timeout_ms, uint64_t *session_id)
{
    kv_op o = {.type = KV_OP_REGISTER};
    uint8_t *ob, *rep = NULL;
    size_t ol, rlen = 0;
    *session_id = 0;
    if (kv_op_encode(&o, &ob, &ol) != 0)
        return NODE_ENOMEM;
    int rc = node_submit(n, ob, ol, false, 1, 0, timeout_ms, &rep, &rlen);
    free(ob);
    if (rc == NODE_OK)
        *session_id = kv_reply_session_id(rep, rlen);
    free(rep);
    return rc == NODE_OK && !*session_id ? NODE_ENOMEM : rc;
}

void node_status(node *n, raft_status *st)
{
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

const char *raft_role_name(raft_role role)
{
    static const char *names[] = { "follower", "pre-candidate", "candidate", "leader" };
    return (unsigned)role < 4 ? names[role] : "?";
}

const node_config *node_get_config(const node *n)
{
    return &n->cfg;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MOUNTPOINT [--max-file-size N] [--max-bytes N] "
                "[--delay-ms N] [--stall FILE] [--op-timeout-ms N]\n", argv[0]);
        return 2;
    }
    static node n;
    memset(&n, 0, sizeof n);
    pthread_mutex_init(&n.mu, NULL);
    n.cfg.id = 1;
    n.cfg.op_timeout_ms = 2000;
    n.cfg.max_file_size = 1ull << 30;
    kv_limits lim = { 0, 0, 0 };
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--max-file-size") == 0)
            n.cfg.max_file_size = strtoull(argv[i + 1], NULL, 0);
        else if (strcmp(argv[i], "--max-bytes") == 0)
            lim.max_total_bytes = strtoull(argv[i + 1], NULL, 0);
        else if (strcmp(argv[i], "--delay-ms") == 0)
            n.delay_ms = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--stall") == 0)
            n.stall_file = argv[i + 1];
        else if (strcmp(argv[i], "--op-timeout-ms") == 0)
            n.cfg.op_timeout_ms = atoi(argv[i + 1]);
    }
    lim.max_file_size = n.cfg.max_file_size;
    n.k = kv_new(&lim);
    if (n.k == NULL)
        return 1;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);   /* FUSE threads inherit the mask */

    fs_options o;
    fs_options_init(&o);
    o.debug = getenv("HSTORE_FS_DEBUG") != NULL;
    char err[512];
    fs_mount *m = fs_start(&n, argv[1], &o, err, sizeof err);
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
