/*
 * fs_node_backend.c — fs_backend (fs/fs_backend.h) over a node: each op is
 * the node call of the same name, its NODE_* result turned into the errno
 * the mount expects.  The only file of fs/ that knows the node.
 */
#include "fs/fs_node_backend.h"

#include <errno.h>
#include <stdlib.h>

#include "node/metrics.h"
#include "node/node.h"

static int node_errno(int rc)
{
    switch (rc) {
    case NODE_OK: return 0;
    case NODE_ETIMEDOUT: return -ETIMEDOUT;
    case NODE_ENOMEM: return -ENOMEM;
    case NODE_EINVAL: return -EINVAL;
    default: return -ESHUTDOWN; /* NODE_ESTOPPED */
    }
}

static int nb_read(void *ctx, const uint8_t *op, size_t len, int timeout_ms, uint8_t **reply,
                   size_t *reply_len)
{
    return node_errno(node_submit(ctx, op, len, true, 0, 0, timeout_ms, reply, reply_len));
}

static int nb_command(void *ctx, const uint8_t *op, size_t len, uint64_t client_id, uint64_t seq,
                      int timeout_ms, uint8_t **reply, size_t *reply_len)
{
    return node_errno(
        node_submit(ctx, op, len, false, client_id, seq, timeout_ms, reply, reply_len));
}

static int nb_commands(void *ctx, fs_backend_cmd *cmds, size_t cnt, int timeout_ms)
{
    node_cmd *nc = calloc(cnt ? cnt : 1, sizeof *nc);
    if (nc == NULL) {
        for (size_t i = 0; i < cnt; i++) {
            cmds[i].rc = -ENOMEM;
            cmds[i].reply = NULL;
            cmds[i].reply_len = 0;
        }
        return -ENOMEM;
    }
    for (size_t i = 0; i < cnt; i++)
        nc[i] = (node_cmd){.op = cmds[i].op,
                           .len = cmds[i].len,
                           .client_id = cmds[i].client_id,
                           .seq = cmds[i].seq};
    int rc = node_submit_many(ctx, nc, cnt, timeout_ms);
    for (size_t i = 0; i < cnt; i++) {
        cmds[i].rc = node_errno(nc[i].rc);
        cmds[i].reply = nc[i].reply;
        cmds[i].reply_len = nc[i].reply_len;
    }
    free(nc);
    return node_errno(rc);
}

static int nb_register(void *ctx, int timeout_ms, uint64_t *session_id)
{
    return node_errno(node_register(ctx, timeout_ms, session_id));
}

static void nb_status(void *ctx, raft_status *st)
{
    node_status(ctx, st);
}

static void nb_set_open_files(void *ctx, fs_backend_open_fn fn, void *arg)
{
    node_set_open_files(ctx, fn, arg);
}

static bool nb_open_files_known(void *ctx)
{
    return node_open_files_known(ctx);
}

static uint64_t nb_applied_index(void *ctx)
{
    return node_applied_index(ctx);
}

static void nb_observe(void *ctx, unsigned op, const char *name, uint64_t ns)
{
    node_metrics_fs_op(ctx, op, name, ns);
}

static void nb_set_changed(void *ctx, void (*fn)(void *, const uint64_t *, size_t, bool, bool),
                           void *arg)
{
    node_set_changed(ctx, fn, arg);
}

static uint64_t nb_lease_left_ms(void *ctx)
{
    return node_lease_left_ms(ctx);
}

static const fs_backend_ops node_backend_ops = {
    .read = nb_read,
    .command = nb_command,
    .commands = nb_commands,
    .register_session = nb_register,
    .status = nb_status,
    .set_open_files = nb_set_open_files,
    .open_files_known = nb_open_files_known,
    .applied_index = nb_applied_index,
    .observe = nb_observe,
    .set_changed = nb_set_changed,
    .lease_left_ms = nb_lease_left_ms,
};

fs_backend fs_node_backend(struct node *n)
{
    const node_config *c = node_get_config(n);
    fs_backend b = {.ops = &node_backend_ops, .ctx = n};
    if (c != NULL) {
        b.id = c->id;
        b.op_timeout_ms = c->op_timeout_ms;
        b.max_file_size = c->max_file_size;
    }
    return b;
}
