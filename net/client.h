/*
 * client.h — the hstore client library: talk to a cluster from a program
 * (the `hstore` command line, benchmarks, tests).
 *
 * The client knows the cluster from a SPEC "ID=HOST:PORT,ID=HOST:PORT,...";
 * node ID takes client requests on HOST:PORT+1.  HOST may be LOCAL;REMOTE to
 * connect to REMOTE from the local address LOCAL.  A call goes to the node the
 * client believes leads (first the first node, then whatever leader hint the
 * last response carried).  With no answer within a per-attempt timeout
 * (min(1 s, time left)), or an answer of UNAVAILABLE / SHUTTING_DOWN, it tries
 * the next node — with the SAME (client id, seq), so the state machine's
 * session table applies the command at most once however many copies land —
 * until the call's overall deadline; then it gives up with NET_EUNAVAIL:
 * the outcome is unknown (the command may or may not have been applied).
 * These rules are retry.h's, shared with the many-session client of mux.h.
 *
 * Exactly-once ids (sessions, kv.h): before its first command the client
 * registers a session (a NET_REQ_REGISTER request; the cluster answers with
 * the session id, the log index of the registration) and sends its commands
 * as (session id, seq), seq starting at 1.  A session left unused for 10
 * minutes is replaced before the next command.  When the cluster answers
 * that the session expired, the call returns NET_ESESSION (the command was
 * not applied by that attempt, but an earlier attempt may have been: the
 * outcome is unknown) and the next command registers a new session.  Reads
 * (linearizable queries) carry no session and seq 0.
 * Every attempt carries a fresh req_id, echoed by the node, so a late reply to
 * an earlier attempt is never taken for the current one.
 *
 * Sockets: one TCP connection per node, opened on first use and closed after
 * an attempt that got no answer; the library decides when and where to
 * retry.  Each connection starts with the authenticated handshake of auth.h
 * (keys: net_auth_get_default() at creation, or net_client_set_auth); when
 * every node refuses the client's keys a call ends with NET_EAUTH.
 *
 * Thread-safety: none.  Use one net_client per thread.
 */
#ifndef HSTORE_NET_CLIENT_H
#define HSTORE_NET_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/auth.h"
#include "net/wire.h"
#include "raftkv/raft.h"

typedef struct net_client net_client;

/* Parses spec and prepares (lazily connected) sockets.  timeout_ms is the
 * overall deadline of one call (<= 0: 5000).  NULL with a message in err on a
 * bad spec or no memory. */
net_client *net_client_new(const char *cluster_spec, int timeout_ms, char *err, size_t errlen);
void net_client_free(net_client *c);

void net_client_set_timeout(net_client *c, int timeout_ms);

/* Runs one operation (op: the state machine's encoded operation).
 *   read: a linearizable read-only query; otherwise a command with a new seq.
 * Returns
 *   NET_OK        *reply (malloc'ed, caller frees; NULL if empty) and
 *                 *reply_len hold the state machine's reply;
 *   NET_EUNAVAIL  no node got it done before the deadline: outcome unknown;
 *   NET_ESESSION  the session expired: outcome unknown; the next command
 *                 uses a new session;
 *   NET_EBADREQ   a node rejected the request as malformed (also a read op
 *                 sent as a command);
 *   NET_EAUTH     every node refused the client: not authorized (wrong or
 *                 missing cluster secret); nothing was done;
 *   NET_EINVAL / NET_ENOMEM. */
int net_client_call(net_client *c, bool read, const void *op, size_t len, void **reply,
                    size_t *reply_len);

/* Like net_client_call for a command, but with a caller-chosen sequence
 * number (e.g. to replay a request whose outcome is unknown) on the current
 * session (NET_ESESSION when there is none).  Does not change the client's
 * own next seq. */
int net_client_call_seq(net_client *c, uint64_t seq, const void *op, size_t len, void **reply,
                        size_t *reply_len);

/* Asks node i (index into the spec) for its Raft status, waiting up to the
 * client's timeout.  addr (may be NULL) receives the node's own address.
 * NET_OK, NET_EUNAVAIL (no answer), NET_EAUTH (refused: not authorized),
 * NET_EINVAL (bad index). */
int net_client_status(net_client *c, int i, raft_status *st, char *addr, size_t addrlen);
/* The node's security counters from the last successful status answer. */
void net_client_status_counters(const net_client *c, uint64_t *auth_rejected, uint64_t *conns_cut);

/* One SNAP_REQ exchange with node i (wire.h: a backup's snapshot), waiting
 * up to wait_ms: q->req_id is set here.  On NET_OK *r holds the answer and
 * its data (at most q->len bytes) is copied to data (room for q->len bytes;
 * r->data then points there).  NET_EUNAVAIL (no answer), NET_EAUTH,
 * NET_EINVAL. */
int net_client_snap(net_client *c, int i, net_snap_req *q, int wait_ms, net_snap_resp *r,
                    uint8_t *data);

/* One MEMBER_REQ exchange with node i (wire.h: membership), waiting up to
 * wait_ms: q->req_id is set here.  NET_OK with the answer in *r (whatever
 * its status: following a NOT_LEADER answer is the caller's choice),
 * NET_EUNAVAIL (no answer), NET_EAUTH, NET_EINVAL. */
int net_client_member(net_client *c, int i, net_member_req *q, int wait_ms, net_member_resp *r);

/* Replaces the keys (closing open connections). */
void net_client_set_auth(net_client *c, const net_auth *a);

/* ---- accessors ---- */
int net_client_n_nodes(const net_client *c);
uint64_t net_client_node_id(const net_client *c, int i); /* 0 if out of range */
/* The node's peer address "HOST:PORT"; NULL if out of range. */
const char *net_client_node_addr(const net_client *c, int i);
uint64_t net_client_id(const net_client *c);       /* the session id, 0 before the first command */
uint64_t net_client_next_seq(const net_client *c); /* seq the next command will use */
/* Replaces the client id and next seq (a tool resuming a session). */
void net_client_set_session(net_client *c, uint64_t client_id, uint64_t next_seq);
uint64_t net_client_leader_hint(const net_client *c); /* 0 when none yet */

/* The one reading of a cluster spec, "ID=HOST:PORT,ID=HOST:PORT,..." (the
 * node's --cluster and every client's): fills ids, hosts
 * (char[max][NET_ADDR_MAX]) and ports; returns the count or -1 with a
 * message in err.  Spaces around a member are ignored.  ID > 0, unique;
 * PORT 1..65534 (clients use PORT + 1); HOST 1..NET_SPEC_HOST_MAX bytes, so
 * that "HOST:PORT" of either port fits an address of NET_ADDR_MAX bytes. */
#define NET_SPEC_HOST_MAX (NET_ADDR_MAX - 9)
int net_parse_spec(const char *spec, uint64_t *ids, char (*hosts)[NET_ADDR_MAX], int *ports,
                   int max, char *err, size_t errlen);

#endif
