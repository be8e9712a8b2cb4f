/*
 * fs_backend.h — what the mount needs from the store below it, as a table of
 * functions and a context pointer: the one seam between fs/ and a node.
 *
 * A mount runs state-machine operations (raftkv/kv.h encodings) through
 * read(), command() and commands(), opens the sessions its commands run in
 * with register_session(), lists the inodes it holds open through
 * set_open_files() (kv.h "Open files") and shows status() in its control
 * view.  fs/fs_node_backend.c implements it over a running node (node.h);
 * tests/cluster/fs_solo.c over the bare state machine, applied in-process.
 *
 * Every function that waits returns 0 or a negative errno:
 *   -ETIMEDOUT   no answer before the deadline (the outcome of a command is
 *                unknown: a retry must reuse its (client id, seq));
 *   -ESHUTDOWN   the backend is stopping;
 *   -ENOMEM, -EINVAL   the request never left (malformed, or no memory).
 * A timeout_ms <= 0 means the backend's op_timeout_ms.
 */
#ifndef HSTORE_FS_BACKEND_H
#define HSTORE_FS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftkv/raft.h"

/* One command of a commands() call; rc, reply and reply_len are set by it. */
typedef struct fs_backend_cmd {
    const uint8_t *op;
    size_t len;
    uint64_t client_id, seq;
    int rc;           /* out: 0 or a negative errno, as above */
    uint8_t *reply;   /* out: malloc'ed on rc 0, the caller frees */
    size_t reply_len; /* out */
} fs_backend_cmd;

/* The mount's open inodes, called by the backend when it reports them: fills
 * at most max of them into inos, returns how many there are (more than max:
 * it is called again with room for all) and lowers *since to the
 * applied_index() read at the start of every open still in progress.  It
 * must not call into the backend. */
typedef size_t (*fs_backend_open_fn)(void *arg, uint64_t *inos, size_t max, uint64_t *since);

typedef struct fs_backend_ops {
    /* A linearizable read of op (a read op): on 0 *reply (malloc'ed, the
     * caller frees) holds the state machine's answer. */
    int (*read)(void *ctx, const uint8_t *op, size_t len, int timeout_ms, uint8_t **reply,
                size_t *reply_len);
    /* One replicated command (a write op) with its exactly-once pair (a
     * session id from register_session() and a seq above its last), applied
     * before the call returns; on 0 *reply holds its reply.  A command whose
     * session is gone gets a KV_ESESSION reply and is not applied. */
    int (*command)(void *ctx, const uint8_t *op, size_t len, uint64_t client_id, uint64_t seq,
                   int timeout_ms, uint8_t **reply, size_t *reply_len);
    /* Several commands at once, answered together (they share fsyncs and
     * round trips); no two share a (client id, seq).  Returns 0 when every
     * one got an answer, else the first error; cmds[i].rc tells each. */
    int (*commands)(void *ctx, fs_backend_cmd *cmds, size_t cnt, int timeout_ms);
    /* Opens a session (a REGISTER command): 0 with *session_id set. */
    int (*register_session)(void *ctx, int timeout_ms, uint64_t *session_id);
    /* A copy of the node's Raft status, for the control view. */
    void (*status)(void *ctx, raft_status *st);
    /* Registers fn (arg is passed to it) as the list of open inodes that the
     * backend reports as holder `id`; fn NULL unregisters and returns once no
     * report is pending (the mount then sends KV_HOLD_GONE itself). */
    void (*set_open_files)(void *ctx, fs_backend_open_fn fn, void *arg);
    /* True once the state machine has a holder record of this node (its
     * reports are in force). */
    bool (*open_files_known)(void *ctx);
    /* The applied index as last published (it may lag, never lead). */
    uint64_t (*applied_index)(void *ctx);
    /* Optional (NULL: not recorded): one FUSE operation took ns; op is the
     * mount's index for it (below 32), name its name (a static string). */
    void (*observe)(void *ctx, unsigned op, const char *name, uint64_t ns);
    /* Optional (NULL: the kernel caches nothing): fn hears of the inodes
     * every applied command changed, and whether it changed a name, before
     * the command is answered or becomes visible (node_set_changed); fn
     * NULL unregisters. */
    void (*set_changed)(void *ctx,
                        void (*fn)(void *arg, const uint64_t *inos, size_t n, bool all, bool names),
                        void *arg);
    /* Optional: how many ms this node's read lease has left (0: none). */
    uint64_t (*lease_left_ms)(void *ctx);
} fs_backend_ops;

typedef struct fs_backend {
    const fs_backend_ops *ops;
    void *ctx;              /* passed to every op */
    uint64_t id;            /* this node's id: the holder of the mount's open files */
    int op_timeout_ms;      /* default deadline of an operation */
    uint64_t max_file_size; /* the store's bound on one file (bytes) */
} fs_backend;

#endif
