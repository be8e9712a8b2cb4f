/*
 * retry.h — the retry rules of a client call, in one place: the blocking
 * client (client.c) and the multiplexed sessions (mux.c) both follow them,
 * and differ only in how they wait (one exchange at a time, or many
 * sessions over shared connections in one poll loop).
 *
 * A call is a series of attempts with the same (client id, seq) — the state
 * machine's session table applies a command at most once however many
 * copies land — until its deadline, then NET_EUNAVAIL (outcome unknown):
 *   - an answer's leader hint wins; otherwise the next node, round robin;
 *   - silence (no answer in the attempt's time, a lost or refused
 *     connection) moves to the next node; after a whole round of nodes
 *     failing in a row the call pauses NET_RETRY_BACKOFF_MS rather than spin;
 *   - NOT_LEADER retries at once at the new node; UNAVAILABLE and
 *     SHUTTING_DOWN after NET_RETRY_BACKOFF_MS;
 *   - OK ends the call with the reply, BAD_REQUEST with NET_EBADREQ,
 *     SESSION_EXPIRED with NET_ESESSION (the outcome is unknown; the engine
 *     drops the session and the next command registers a new one).
 * A command on a client without a session first registers one (a
 * NET_REQ_REGISTER request, same deadline), whose answer holds the session id.
 */
#ifndef HSTORE_NET_RETRY_H
#define HSTORE_NET_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_RETRY_TIMEOUT_MS 5000 /* a call's deadline when none is given */
#define NET_RETRY_ATTEMPT_MS 1000 /* longest wait for one attempt's answer */
/* What a node that has not answered yet may cost (the blocking client's
 * first attempt there, the mux's connect): a node that is down costs this
 * much, not a whole attempt. */
#define NET_RETRY_FIRST_MS 300
/* Pause after a "not now" answer, or a round of failures: keeps a call from
 * spinning through nodes that all refuse at once (e.g. all shutting down). */
#define NET_RETRY_BACKOFF_MS 20

typedef enum {
    NET_RETRY_DONE, /* the call ends with rc */
    NET_RETRY_NOW,  /* the next attempt goes to node at once */
    NET_RETRY_PAUSE /* the next attempt goes to node after the backoff */
} net_retry_act;

typedef struct net_retry_step {
    net_retry_act act;
    int rc;   /* DONE: NET_OK, NET_EBADREQ, NET_ESESSION or NET_EUNAVAIL */
    int node; /* the node now believed to lead (and, for NOW and PAUSE,
                           where the next attempt goes); -1: belief unchanged */
} net_retry_step;

/* What to do after node i (of n) answered with status (net_status_code).
 * hint: the index of the leader the answer named, -1 when it named none or
 * one the engine does not know.  registering: the attempt was a session
 * registration (which cannot expire: SESSION_EXPIRED there is NET_EUNAVAIL). */
net_retry_step net_retry_answer(uint8_t status, int i, int hint, int n, bool registering);

/* The node after i when i failed silently. */
static inline int net_retry_next(int i, int n)
{
    return (i + 1) % n;
}

/* ms, but not past the deadline (0 once it has passed). */
int net_retry_cap_ms(uint64_t now, uint64_t deadline, int ms);

/* The session id a registration's reply holds (8 bytes, little-endian);
 * 0 when it holds none (the call then ends with NET_EUNAVAIL). */
uint64_t net_retry_session_id(const uint8_t *reply, size_t len);

#endif
