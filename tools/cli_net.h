/*
 * cli_net.h — what the `hstore` client commands do with the network: connect
 * with the common options, run one state-machine operation and turn the
 * outcome into a message and an exit code, and ask every node for its status
 * at once (one thread per node, so that unreachable nodes cost one timeout in
 * total, not one each).
 */
#ifndef HSTORE_CLI_NET_H
#define HSTORE_CLI_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "net/client.h"
#include "raftkv/kv_ops.h"
#include "raftkv/raft.h"
#include "tools/cli.h"

/* The secret of the cluster `hstore up` runs in dir: DIR/secret, created
 * (32 random bytes as hex, mode 0600) when missing, and made this process's
 * default keys.  Its path goes to path.  0, or -1 after printing why. */
int cli_up_secret(const char *dir, char *path, size_t cap);

/* Resolves the SPEC (cli_resolve_spec) and creates a client with the
 * timeout.  NULL after printing what to do; *exit_code then holds the code. */
net_client *cli_connect(const cli_client_opts *o, int *exit_code);

/* Encodes op, sends it (read or command as kv_op_is_read says) and decodes
 * the reply into *r (kv_reply_free it on CLI_EXIT_OK or CLI_EXIT_NOTFOUND).
 * Returns an exit code: OK; NOTFOUND for ENOENT; USAGE for another error
 * status (invalid input: EISDIR, EINVAL, ...); UNAVAIL when no answer came
 * within the deadline; AUTH when the cluster refused the client's secret.  Prints a message for every failure except
 * NOTFOUND when quiet_notfound.  what names the command in messages. */
int cli_run_op(net_client *c, const kv_op *op, kv_reply *r, const char *what, bool quiet_notfound);

/* Sends an already encoded command twice with the same (client id, seq): the
 * retry a client makes when it lost the first reply (test knob). */
int cli_run_op_twice(net_client *c, const kv_op *op, kv_reply *r, const char *what);
/* Like cli_run_op, except that EFBIG is returned quietly as CLI_TOO_BIG
 * (not an exit code): get then reads the value in ranges. */
#define CLI_TOO_BIG 100
int cli_run_op_quiet_efbig(net_client *c, const kv_op *op, kv_reply *r, const char *what);

/* The cluster's replicated limits (a STATFS read): max_file_size and
 * bytes_limit (max-store-bytes).  A CLI exit code (tools/cmd_limits.c). */
int cli_read_limits(net_client *c, kv_statfs *out);

typedef struct cli_node_status {
    uint64_t id;
    char addr[NET_ADDR_MAX]; /* the peer address from the SPEC */
    bool ok;                 /* false: no answer within the timeout */
    bool refused;            /* not ok because the node refused: not authorized */
    raft_status st;
    uint64_t auth_rejected; /* the node's count of unauthenticated frames/clients */
    uint64_t conns_cut;     /* its count of client connections cut by its limits */
} cli_node_status;

/* Asks every node of spec for its status in parallel, each waiting up to
 * timeout_ms.  Returns the number of nodes (<= max), or -1 with a message
 * printed when the spec is bad. */
int cli_status_all(const char *spec, int timeout_ms, cli_node_status *out, int max);

/* The leader among the answers: a node reporting itself leader with the
 * highest term; 0 if none. */
uint64_t cli_leader_of(const cli_node_status *s, int n);

/* s's role as `hstore status` shows it: raft_role_name, or "learner". */
const char *cli_status_role(const cli_node_status *s);
/* One line of `hstore status` for s (no newline). */
void cli_format_status(const cli_node_status *s, char *buf, size_t cap);

/* Sends a membership request (wire.h, MEMBER_REQ) to a node of spec and
 * follows the answers that name the leader, retrying while the cluster is
 * busy with another change, until timeout_s passes (tools/cmd_member.c).
 * NET_OK with the last answer in *r (its status says how it went),
 * NET_EUNAVAIL (no answer), NET_EAUTH, NET_EINVAL (bad spec). */
int cli_member_call(const char *spec, net_member_req *q, double timeout_s, net_member_resp *r);

#endif
