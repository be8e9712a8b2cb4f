/*
 * transport.h — a node's sockets: peer traffic over nanomsg/TCP and client
 * traffic over plain TCP, driven from the node's single poll() loop.
 *
 * Raft is message passing, not RPC, so peer traffic is one-way:
 *   - one NN_PULL socket bound at tcp://HOST:PORT receives from every peer;
 *   - one NN_PUSH socket per peer, connected as tcp://MYHOST;PEERHOST:PORT so
 *     the TCP connection starts from this node's own address (a firewall rule
 *     can then name a node by address: partition tests rely on it).
 * Sends never block: NN_DONTWAIT, and a full queue or a peer that is down
 * simply drops the message (Raft retransmits; dissertation §3.3 assumes a
 * lossy network).
 *
 * Clients connect over plain TCP to HOST:PORT+1 (see stream.h for why not
 * nanomsg there).  Every connection starts with the HELLO handshake (auth.h);
 * until it completes only a HELLO-sized frame is read, and a client whose
 * HELLO does not verify gets an ERROR frame (NET_REFUSE_AUTH) and is closed.
 * Every peer and client frame is verified before it is decoded, and every
 * frame sent is sealed (auth.h).  The transport accepts and reads every
 * client connection itself, behind one epoll descriptor that the loop polls; a connection may
 * carry many requests at once, and the node answers each later, in any order
 * (replies carry the request's req_id).  Replies are queued per connection
 * and written together once per loop turn (net_transport_flush, which
 * net_transport_pollfds also calls), so a burst of answers costs one write
 * per connection, not one per answer.
 *
 * Test-only fault injection: if HSTORE_NET_FAULTS is set (or cfg.faults), e.g.
 *   "drop=0.1,dup=0.05,delay=0.3:5-50,seed=42"
 * each outgoing peer message is dropped with probability drop, else sent
 * twice with probability dup, and (each copy) held back with probability
 * delay for a uniformly random 5..50 ms.  Held messages wait in a queue inside
 * the transport and go out from net_transport_tick(); distinct delays
 * reorder messages.  Without a seed, one is drawn from the clock and logged.
 *
 * Time: net_now_ms() (net_util.h: CLOCK_MONOTONIC, milliseconds) is the clock the
 * transport uses; the loop should pass the same clock to net_transport_tick().
 *
 * Thread-safety: none; one thread (the node's loop) owns a transport.
 */
#ifndef HSTORE_NET_TRANSPORT_H
#define HSTORE_NET_TRANSPORT_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/auth.h"
#include "net/net_util.h"
#include "net/wire.h"
#include "raftkv/raft.h"

typedef struct net_transport net_transport;

typedef struct net_peer {
    uint64_t id;
    char host[NET_ADDR_MAX]; /* IPv4 address or host name */
    int port;                /* peer port; clients use port + 1 */
} net_peer;

/* Bounds of the client port.  Zero fields take the defaults in brackets.
 *   max_conns     connections at once [4096, lowered to fit RLIMIT_NOFILE].
 *                 At the limit a new connection first displaces the oldest
 *                 one that has not completed its handshake, else the one idle
 *                 longest (if idle over a second); otherwise it is refused
 *                 with an ERROR frame (NET_REFUSE_BUSY) and closed.
 *   idle_ms       a connection with no traffic and no request pending for
 *                 this long is closed [300000]; one that has not completed
 *                 its handshake, after handshake_ms [5000].
 *   mem_max       bytes of receive and send buffers of all connections
 *                 together [128 MiB, at least max_frame]; past it the
 *                 connections holding the most are closed (NET_REFUSE_MEMORY).
 *   max_frame     largest request frame one connection may send [the wire's
 *                 NET_MAX_PAYLOAD]; a header announcing more closes it.
 *   max_unsent    reply bytes that may wait for a client that does not read
 *                 them [64 MiB]; past it the connection is closed. */
typedef struct net_client_limits {
    int max_conns;
    int idle_ms;
    int handshake_ms;
    size_t mem_max;
    size_t max_frame;
    size_t max_unsent;
} net_client_limits;

typedef struct net_transport_config {
    uint64_t self_id;
    char host[NET_ADDR_MAX];        /* this node's address: binds and connects from it */
    int port;                       /* peer port; the client socket is on port + 1 */
    net_peer peers[RAFT_MAX_NODES]; /* the other members (an entry for self_id is ignored) */
    int n_peers;
    bool no_client_socket;    /* true: do not open the client socket */
    const char *faults;       /* fault spec; NULL: read HSTORE_NET_FAULTS */
    int sndbuf;               /* per-peer send buffer bytes; 0: default (8 MiB) */
    int reconnect_ms;         /* reconnect interval to a down peer; 0: default (100 ms) */
    const net_auth *auth;     /* keys; NULL: net_auth_get_default() */
    net_client_limits limits; /* client port bounds (zeros: defaults) */
} net_transport_config;

/* Opens and binds the sockets.  NULL with a message in err (e.g. address in
 * use, bad fault spec). */
net_transport *net_transport_new(const net_transport_config *cfg, char *err, size_t errlen);
/* Closes every socket (dropping delayed messages and pending client requests). */
void net_transport_free(net_transport *t);

/* Adds (or readdresses) a peer at run time, e.g. after a membership change. */
int net_transport_add_peer(net_transport *t, const net_peer *p);
int net_transport_remove_peer(net_transport *t, uint64_t id);

/* Sends queued client replies, then fills fds[0..] with the descriptors to
 * poll for POLLIN (the peer socket's NN_RCVFD, then the client connections'
 * epoll descriptor).  Returns how many (<= max).  A readable descriptor
 * means "call net_recv_peer / net_recv_client until NET_EAGAIN"; both are
 * level-triggered.  Client requests already read but not yet taken make
 * net_transport_client_pending() true and net_transport_next_deadline() now:
 * take them before sleeping. */
int net_transport_pollfds(net_transport *t, struct pollfd *fds, int max);
/* Which of the two a pollfd belongs to (for the loop's dispatch). */
bool net_transport_is_peer_fd(const net_transport *t, int fd);
bool net_transport_is_client_fd(const net_transport *t, int fd);

/* ---- peer traffic ---- */

/* Sends one encoded frame to peer_id, never blocking.  NET_OK when queued
 * (or deliberately dropped/delayed by the fault injector); NET_EAGAIN when
 * nanomsg's queue is full or the peer is not connected (the message is
 * dropped); NET_EINVAL for an unknown peer. */
int net_send_peer(net_transport *t, uint64_t peer_id, const void *buf, size_t len);

/* The same without a copy, for large frames: net_peer_msg_alloc(len) gives
 * room for a frame of up to len bytes (and the trailer), or NULL; the
 * caller encodes the frame into it and hands it, with the frame's length,
 * to net_send_peer_msg, which takes it whatever the outcome.  A message not sent goes to net_peer_msg_free. */
void *net_peer_msg_alloc(size_t len);
void net_peer_msg_free(void *msg);
int net_send_peer_msg(net_transport *t, uint64_t peer_id, void *msg, size_t len);

/* Receives one peer frame without blocking: NET_OK with *buf and *len (the
 * frame without its trailer; free with net_msg_free(*buf)) and *from, the
 * authenticated sender's node id, or NET_EAGAIN.  Frames whose MAC does not
 * verify, or that replay an older frame of their sender, are dropped here,
 * counted and logged (rate-limited), never returned.  The frame is not
 * decoded here: the caller must check that the message claims to come from
 * *from. */
int net_recv_peer(net_transport *t, void **buf, size_t *len, uint64_t *from);
void net_msg_free(void *buf);

/* ---- client traffic ---- */

/* A request received on the client socket, not yet answered.  body/len is
 * the raw frame (decode with net_frame_check + net_decode_client_req or
 * net_decode_status_req); body is valid until the message is answered or
 * dropped. */
typedef struct net_client_msg {
    void *body;
    size_t len;
    uint64_t conn; /* the connection it came on (generation, slot) */
} net_client_msg;

/* Receives one client request without blocking: NET_OK or NET_EAGAIN. */
int net_recv_client(net_transport *t, net_client_msg *out);
/* Answers req with the frame buf/len (copied into the connection's queue with
 * its trailer; sent by the next flush) and releases req, whatever the
 * outcome: NET_OK, or NET_EIO if the requester is gone (reply dropped). */
int net_reply_client(net_transport *t, net_client_msg *req, const void *buf, size_t len);
/* Whether requests already read from connections wait to be taken. */
bool net_transport_client_pending(const net_transport *t);
/* Writes queued replies to their connections (what the socket takes now; the
 * rest goes when the connection is writable again). */
void net_transport_flush(net_transport *t);
/* Releases req without answering (the client will time out and retry). */
void net_client_msg_drop(net_client_msg *req);

/* Whether the TCP connection to a peer is currently established (for status
 * and logs; a send may still be dropped when its queue is full). */
bool net_transport_peer_connected(const net_transport *t, uint64_t peer_id);

/* ---- time and fault injection ---- */

/* Releases delayed messages whose time has come. */
void net_transport_tick(net_transport *t, uint64_t now_ms);
/* Absolute time (net_now_ms clock) of the next delayed release, or
 * UINT64_MAX when nothing is held: the loop may sleep until then. */
uint64_t net_transport_next_deadline(const net_transport *t);

typedef struct net_transport_stats {
    uint64_t peer_sent;         /* frames handed to nanomsg */
    uint64_t peer_send_dropped; /* queue full / peer down */
    uint64_t peer_recv;
    uint64_t client_recv;
    uint64_t client_replied;
    uint64_t client_reply_failed;
    uint64_t client_conns;       /* connections accepted */
    uint64_t client_conns_bad;   /* closed for sending something that is not hstore frames */
    uint64_t peer_auth_failed;   /* peer frames dropped: MAC did not verify */
    uint64_t peer_replayed;      /* peer frames dropped: older than their sender's newest */
    uint64_t client_auth_failed; /* client connections refused as unauthenticated */
    uint64_t client_refused;     /* refused or displaced at the connection limit */
    uint64_t client_idle_closed; /* closed after the idle (or handshake) timeout */
    uint64_t client_mem_closed;  /* closed by the memory cap or the unsent-reply cap */
    uint64_t client_too_large;   /* closed for announcing a frame over max_frame */
    uint64_t fault_dropped;      /* fault injector */
    uint64_t fault_duplicated;
    uint64_t fault_delayed;
} net_transport_stats;
void net_transport_get_stats(const net_transport *t, net_transport_stats *st);

/* A node-local partition, for demonstrations (the playground): while on,
 * every peer frame sent is dropped before it reaches nanomsg (net_send_peer
 * answers NET_OK, as for a frame lost on the wire), delayed frames are
 * dropped when due, and every peer frame received is dropped unread by
 * net_recv_peer.  The client port keeps working.  Unlike the rest of the
 * transport these two may be called from any thread. */
void net_transport_set_partitioned(net_transport *t, bool on);
bool net_transport_partitioned(const net_transport *t);
/* Peer frames dropped by the partition switch, both ways. */
uint64_t net_transport_partition_dropped(const net_transport *t);

/* The fault settings in force (all zero when off).  For logs and tests. */
typedef struct net_faults {
    bool on;
    double drop, dup, delay;
    int delay_min_ms, delay_max_ms;
    uint64_t seed;
} net_faults;
void net_transport_get_faults(const net_transport *t, net_faults *f);
/* Parses a fault spec; NET_OK or NET_EINVAL with a message in err. */
int net_faults_parse(const char *spec, net_faults *f, char *err, size_t errlen);

#endif
