/*
 * stream.h — hstore frames over a plain TCP byte stream.
 *
 * Client traffic (requests from `hstore`, benchmarks, tests) runs on plain
 * non-blocking TCP sockets served inside the node's own poll loop, not on a
 * message library with worker threads: a request then costs one wake-up of
 * the loop instead of a hand-off through another thread, and a connection
 * carries many outstanding requests at once (answers go back in any order,
 * matched by req_id), read and written in batches.
 *
 * A frame is self-delimiting: its 16-byte header (wire.h) carries the payload
 * length, and the authentication trailer (auth.h) of fixed size follows.
 * The reader checks magic, version and length as soon as a header is
 * complete, so a peer that is not speaking hstore is cut off after 16 bytes;
 * the checksum and payload are checked later by the decoders, as for peer
 * traffic.
 *
 * Memory grows only with bytes that actually arrive (a header announcing
 * 96 MiB does not allocate 96 MiB), and a buffer shrinks back after a large
 * frame has been consumed.
 */
#ifndef HSTORE_NET_STREAM_H
#define HSTORE_NET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/net_util.h"
#include "net/wire.h"

/* Bytes received and not yet consumed: p[off .. len). */
typedef struct net_rbuf {
    uint8_t *p;
    size_t off, len, cap;
} net_rbuf;

/* Bytes queued for sending: p[off .. len). */
typedef struct net_wbuf {
    uint8_t *p;
    size_t off, len, cap;
} net_wbuf;

void net_rbuf_free(net_rbuf *b);
void net_wbuf_free(net_wbuf *b);
static inline size_t net_wbuf_pending(const net_wbuf *b)
{
    return b->len - b->off;
}

/* Reads from the non-blocking socket fd into b, at most max bytes.
 * Returns NET_OK when bytes arrived, NET_EAGAIN when none were waiting,
 * NET_EIO on end of stream or a socket error, NET_ENOMEM. */
int net_rbuf_fill(net_rbuf *b, int fd, size_t max);

/* The next complete frame with its trailer in b: NET_OK with *frame and *len
 * (header + payload + NET_TRAILER_LEN) pointing into b (valid until the next
 * fill or frame call), NET_EAGAIN when the frame is not complete yet, or
 * NET_EMAGIC / NET_EVERSION / NET_ELENGTH when the stream does not carry
 * hstore frames or the header announces more than max_len bytes in all
 * (close the connection). */
int net_rbuf_frame(net_rbuf *b, size_t max_len, const uint8_t **frame, size_t *len);
/* Bytes received and not yet taken as frames. */
static inline size_t net_rbuf_buffered(const net_rbuf *b)
{
    return b->len - b->off;
}

/* Appends bytes to b; NET_OK or NET_ENOMEM. */
int net_wbuf_put(net_wbuf *b, const void *p, size_t n);

/* Writes as much of b as the non-blocking socket takes: NET_OK when b is
 * empty, NET_EAGAIN when bytes remain (wait for POLLOUT), NET_EIO on error. */
int net_wbuf_flush(net_wbuf *b, int fd);

/* Makes fd non-blocking, close-on-exec, without Nagle's delay.  -1 on error. */
int net_tcp_prepare(int fd);

/* Connects to host:port (an IPv4 address or a name), waiting no later than
 * end_ms (net_now_ms clock).  host may be "LOCAL;REMOTE" to connect from the
 * address LOCAL (so that firewall rules can name a client, as peer
 * connections name their node).  The connected, prepared socket, or -1. */
int net_tcp_connect(const char *host, int port, uint64_t end_ms);

/* Waits until fd is ready for events (POLLIN / POLLOUT) or end_ms passes:
 * 1 ready (or in error: the next read or write says which), 0 timed out. */
int net_wait_fd(int fd, short events, uint64_t end_ms);

#endif
