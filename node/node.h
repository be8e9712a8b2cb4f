/*
 * node.h — one hstore node at run time: the loop that ties the Raft core,
 * durable storage, the key-value state machine and the network together.
 *
 * One thread (the loop) owns the Raft core, the store and the state machine.
 * Other threads (FUSE workers, the client listener) hand requests to it with
 * node_submit(), which blocks the calling thread until the request is answered
 * or its deadline passes.
 */
#ifndef HSTORE_NODE_H
#define HSTORE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/auth.h"
#include "net/transport.h"
#include "raftkv/raft.h"

typedef struct node node;

typedef struct node_peer {
    uint64_t id;
    char host[RAFT_ADDR_MAX]; /* IPv4 address or name */
    int port;                 /* peer traffic; clients use port + 1 */
} node_peer;

typedef struct node_config {
    uint64_t id;
    node_peer peers[RAFT_MAX_NODES]; /* every member, this node included */
    int n_peers;
    char data_dir[4096];
    uint64_t snapshot_threshold;     /* log bytes that trigger a snapshot; 0 = never */
    int tick_ms;                     /* Raft tick; default 50 */
    int election_ticks;              /* default 10 */
    int lease_ms;                    /* read lease (raft.h); 0 off; < 0: the election
                                          timeout, tick_ms * election_ticks (default) */
    int clock_drift_pct;             /* assumed bound on clock rate error; default 10 */
    int op_timeout_ms;               /* default deadline of a request */
    uint64_t max_file_size;          /* bytes; default 1 GiB */
    uint64_t max_store_bytes;        /* ENOSPC past this many bytes of data; 0 = no limit */
    int log_level;                   /* 0 error, 1 warn, 2 info, 3 debug */
    net_auth auth;                   /* keys from the cluster secret (default:
                                          net_auth_get_default) */
    net_client_limits client_limits; /* client port bounds (zeros: defaults) */
    bool join;                       /* peers holds only this node, which joins a running cluster: a
                  fresh store boots with no configuration (raft.h) and gets
                  one from the leader once added (node_member_add) */
} node_config;

void node_config_init(node_config *c);

/* Parses "ID=HOST:PORT,ID=HOST:PORT,..." into c->peers.  0 or -1 with err. */
int node_parse_cluster(const char *spec, node_peer *peers, int *n, char *err, size_t errlen);

/* Opens the data directory, restores state and starts the loop thread.
 * NULL with a message in err on failure (corrupt store, port in use, ...). */
node *node_start(const node_config *cfg, char *err, size_t errlen);

/* True once the node has stopped itself on a fatal error (it could not
 * persist or apply).  It then also sends SIGTERM to its own process, so a
 * process waiting for signals wakes up and shuts down. */
bool node_failed(node *n);

/* Stops the loop, closes sockets and the store. */
void node_stop(node *n);

/* Result of node_submit. */
enum {
    NODE_OK = 0,
    NODE_ETIMEDOUT = -1, /* no answer before the deadline: outcome unknown */
    NODE_ESTOPPED = -2,  /* the node is shutting down */
    NODE_ENOMEM = -3,
    NODE_EINVAL = -4,
    NODE_ENOTLEADER = -5, /* membership: ask the leader (node_member_result) */
    NODE_EBUSY = -6,      /* membership: another change or a transfer is under way */
    NODE_ENOTMEMBER = -7, /* membership: no such member */
};

/* Submit an encoded state-machine operation (see kv.h) and wait for its reply.
 *   read:      a read-only query answered after a ReadIndex round (linearizable);
 *              otherwise a command proposed through Raft and applied.  Only
 *              write ops are proposed: a read op as a command, or malformed
 *              bytes, get NODE_EINVAL before any proposal.
 *   client_id, seq: exactly-once ids for commands: a session id from
 *              node_register() and a seq above the session's last (ignored
 *              for reads; NODE_EINVAL when missing).  A retry must reuse the
 *              same pair.  A command whose session is gone is answered with a
 *              KV_ESESSION reply and not applied (kv.h, Sessions).
 *   timeout_ms: deadline; <= 0 means the configured op timeout.
 * On NODE_OK *reply (malloc'ed, caller frees) holds the state machine's reply. */
int node_submit(node *n, const uint8_t *op, size_t len, bool read, uint64_t client_id, uint64_t seq,
                int timeout_ms, uint8_t **reply, size_t *reply_len);

/* Opens a session (a REGISTER command) and waits for its id.  NODE_OK with
 * *session_id set, or a node_submit error. */
int node_register(node *n, int timeout_ms, uint64_t *session_id);
/* Several requests at once: all enter the loop together (so they are
 * proposed in one turn and share fsyncs and replication round trips, paced
 * by Raft's flow control) and the call returns when every one is answered or
 * the deadline passed.  Each has its own ids (no two commands of one call may
 * share a (client id, seq)).  Returns NODE_OK when every one got an answer,
 * else the first error; each cmds[i].rc says how that one went, and
 * cmds[i].reply (malloc'ed, caller frees) holds its reply on NODE_OK. */
typedef struct node_cmd {
    const uint8_t *op;
    size_t len;
    bool read;
    uint64_t client_id, seq;
    int rc;           /* out */
    uint8_t *reply;   /* out */
    size_t reply_len; /* out */
} node_cmd;
int node_submit_many(node *n, node_cmd *cmds, size_t cnt, int timeout_ms);

/* A snapshot of this node's Raft status (thread-safe copy). */
void node_status(node *n, raft_status *st);

const node_config *node_get_config(const node *n);

/* The node-local partition switch (net_transport_set_partitioned): while on,
 * the node's peer traffic is dropped both ways; clients are still served.
 * For demonstrations.  Thread-safe. */
void node_set_partitioned(node *n, bool on);
bool node_partitioned(node *n);

/* Open files (kv.h "Open files", node/report.c).  fn lists the inodes the mount
 * holds open: it fills at most max of them into inos, returns how many there
 * are (more than max: it is called again with room for all), and lowers
 * *since to the node_applied_index() read at the start of every open still in
 * progress.  It runs on the node's loop thread with no lock of the node's
 * held that another thread could wait for, and must not call into the node.
 * The node then reports as holder cfg.id.  fn NULL unregisters: returns once
 * no report of this node is pending (at most about one op timeout); the
 * caller then proposes KV_HOLD_GONE itself. */
typedef size_t (*node_open_fn)(void *arg, uint64_t *inos, size_t max, uint64_t *since);
void node_set_open_files(node *n, node_open_fn fn, void *arg);
/* True once the state machine has a holder record of this node (its reports
 * are in force), as last seen by the loop.  Thread-safe. */
bool node_open_files_known(node *n);
/* The state machine's applied index as last published by the loop (it may
 * lag the real one, never lead it).  Thread-safe. */
uint64_t node_applied_index(node *n);

/* Changes, for a cache of the state (the mount's kernel cache).  fn is
 * called on the loop thread after every applied command that changed
 * inodes, with their numbers (all: too many to list, or a whole new state
 * from a snapshot), before the command is answered and before the leader
 * hears that this node applied it: a cache that forgets them there never
 * shows a change late to a reader that came after it (with a lease, see
 * node_lease_left_ms).  fn must not call into the node.  fn NULL
 * unregisters; once that returns fn is not running and will not be
 * called. */
/* names: the command also added, removed or moved a directory entry. */
typedef void (*node_changed_fn)(void *arg, const uint64_t *inos, size_t n, bool all, bool names);
void node_set_changed(node *n, node_changed_fn fn, void *arg);
/* How long this node's read lease lasts from now, in ms of its clock (0: no
 * lease).  Until then nothing can become visible that this node has not
 * applied (and so passed to node_set_changed's fn).  Thread-safe. */
uint64_t node_lease_left_ms(node *n);

/* ---- Membership (node/member.c) -------------------------------------------
 *
 * Callable from any thread (the client port and the HTTP API use them); each
 * blocks until it is done or timeout_ms passes (<= 0: the op timeout) and
 * fills *res (may be NULL) with what this node sees afterwards.
 *   list      the members as the leader sees them (no round).
 *   add       ID at ADDR ("host:port", its peer port): joins as a learner,
 *             which gets a snapshot and the log; the leader promotes it to
 *             voter as soon as it is within a few entries of the leader's
 *             log, and the call returns NODE_OK once the promotion is
 *             committed.  NODE_ETIMEDOUT: still a learner, catching up (the
 *             promotion follows without another call).  Adding a member
 *             again with the same address is not an error.
 *   remove    ID; the leader itself first hands leadership to the most
 *             up-to-date voter (the call then answers NODE_ENOTLEADER: ask
 *             the new leader).  NODE_ETIMEDOUT: not known to be done (the
 *             deadline passed, or this node lost the leadership after
 *             proposing it): see the list.
 *   transfer  hands leadership to voter ID; NODE_OK once ID leads.
 * Changes are made by the leader only: elsewhere NODE_ENOTLEADER, with the
 * leader's client address in res when it is known.  One change at a time:
 * NODE_EBUSY while another is not committed.  NODE_EINVAL for a change that
 * does not apply (res->msg says why), NODE_ENOTMEMBER for an unknown ID. */
typedef struct node_member_result {
    uint64_t leader_id;              /* 0: no leader known */
    char leader_addr[RAFT_ADDR_MAX]; /* the leader's client address host:port, "" unknown */
    char msg[200];                   /* what happened, one line for people */
    raft_conf conf;                  /* the members (learners marked) */
} node_member_result;

int node_member_list(node *n, node_member_result *res);
int node_member_add(node *n, uint64_t id, const char *addr, int timeout_ms,
                    node_member_result *res);
int node_member_remove(node *n, uint64_t id, int timeout_ms, node_member_result *res);
int node_member_transfer(node *n, uint64_t id, int timeout_ms, node_member_result *res);
/* A node joining a running cluster (node_config.join) learns from a member
 * who the members are (a list answer) and hands them in here, so that it can
 * answer the leader before its own configuration arrives with a snapshot. */
void node_join_hint(node *n, const raft_conf *members);

#endif
