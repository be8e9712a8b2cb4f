/*
 * mux.h — many client sessions over one connection per node, driven by one
 * thread: what `hstore bench` (and any program with many concurrent requests)
 * uses instead of one blocking net_client per thread.
 *
 * Each session is a full client in the sense of client.h: its own random
 * client id, its own sequence numbers (exactly-once), one operation at a time,
 * the same retry rules (leader hints, the next node on silence or refusal,
 * the same (client id, seq) on every attempt, NET_EUNAVAIL — outcome unknown —
 * at the deadline: retry.h).  What is shared is the TCP connection to each node: the
 * requests of all sessions are written together and their replies read
 * together, matched by req_id, so a thousand sessions cost a handful of
 * system calls per round instead of a thread and two wake-ups each.
 *
 * Usage: net_mux_start(m, s, ...) on an idle session; net_mux_wait() returns
 * the sessions whose operation finished; net_mux_result() gives the outcome;
 * the session is then idle again.
 *
 * Thread-safety: none; one thread drives a mux.
 */
#ifndef HSTORE_NET_MUX_H
#define HSTORE_NET_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct net_mux net_mux;

/* At most this many sessions per mux. */
#define NET_MUX_MAX_SESSIONS 65536

/* spec as for net_client_new; timeout_ms is each operation's deadline
 * (<= 0: 5000).  NULL with a message in err. */
net_mux *net_mux_new(const char *spec, int timeout_ms, int n_sessions, char *err, size_t errlen);
void net_mux_free(net_mux *m);

/* Starts an operation on idle session s (op is copied): a linearizable read
 * when read, else a command with the session's next seq.  NET_OK, NET_EINVAL
 * (bad session, busy, or op too large) or NET_ENOMEM. */
int net_mux_start(net_mux *m, int s, bool read, const void *op, size_t len);

/* Sends what is queued and waits up to wait_ms (0: do not block) for
 * operations to finish.  Writes the finished sessions to done[0..max) and
 * returns how many (0 when none finished in time); -1 on a bad argument. */
int net_mux_wait(net_mux *m, int wait_ms, int *done, int max);

/* The outcome of session s's last finished operation: NET_OK with the state
 * machine's reply in *reply / *len (valid until the session starts again),
 * NET_EUNAVAIL (deadline passed, outcome unknown), NET_ESESSION (the session expired:
 * outcome unknown; the next command registers a new one), NET_EBADREQ, NET_ENOMEM,
 * NET_EAUTH (every node refused the mux's keys: not authorized).  A session
 * registers (one NET_REQ_REGISTER exchange) before its first command.  Keys:
 * the process default (auth.h) when the mux was created. */
int net_mux_result(const net_mux *m, int s, const uint8_t **reply, size_t *len);

/* Sessions started and not yet finished. */
int net_mux_busy(const net_mux *m);

#endif
