/*
 * client_conn.h — a client's connection to one node, in one place for both
 * client engines (client.c: one blocking exchange at a time; mux.c: many
 * sessions over one connection in a poll loop): the node's address, the TCP
 * connection to its client port (the peer port + 1), the authenticated
 * handshake of auth.h, sealing a request onto the connection's write buffer,
 * and opening the reply frames read from it.
 *
 * What is not here is when to connect, where to send and what an answer
 * means: those are the engines' (and retry.h's rules).
 */
#ifndef HSTORE_NET_CLIENT_CONN_H
#define HSTORE_NET_CLIENT_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "net/auth.h"
#include "net/stream.h"
#include "net/wire.h"

typedef struct net_cconn {
    uint64_t id;             /* the node's id */
    char host[NET_ADDR_MAX]; /* may be LOCAL;REMOTE (net_tcp_connect) */
    int port;                /* peer port; client requests go to port + 1 */
    int fd;                  /* the TCP connection, -1 when none */
    net_session s;           /* its authenticated session */
    net_rbuf rb;
    net_wbuf wb;
} net_cconn;

/* A node with no connection yet. */
void net_cconn_init(net_cconn *c, uint64_t id, const char *host, int port);
/* Closes the connection (if any) and drops what it had buffered. */
void net_cconn_close(net_cconn *c);

/* Connects and authenticates by end_ms (a no-op when connected): NET_OK,
 * NET_EIO (no TCP connection), NET_EUNAVAIL (the handshake timed out or
 * the connection was lost, or no memory), NET_EAUTH (the node refused the
 * keys), NET_EBUSY (the node refused for another reason).  On failure the
 * connection is closed. */
int net_cconn_open(net_cconn *c, const net_auth *a, uint64_t end_ms);

/* Seals the encoded request in req for this connection and queues it on the
 * write buffer; req->len is left as it was (the request without its
 * trailer), so it can be sealed again for another connection.  NET_OK or
 * NET_ENOMEM. */
int net_cconn_queue(net_cconn *c, const net_auth *a, net_buf *req);

/* Writes what is queued, waiting for the socket up to end_ms: NET_OK when
 * all of it went, else NET_EIO (lost connection or time up). */
int net_cconn_flush_by(net_cconn *c, uint64_t end_ms);

/* Reads what the socket has (up to max bytes buffered): as net_rbuf_fill. */
int net_cconn_fill(net_cconn *c, size_t max);

/* The next whole reply frame already read: NET_OK with the frame at *f and
 * its length without the trailer in *len (valid until the next fill);
 * NET_EAGAIN when none is complete yet; NET_EAUTH / NET_EBUSY when the node
 * refused the client; anything else: the stream is broken (not hstore
 * frames, or altered in transit) and the connection must be closed. */
int net_cconn_next(net_cconn *c, const net_auth *a, const uint8_t **f, size_t *len);

#endif
