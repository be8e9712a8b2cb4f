/*
 * transport_internal.h — what the two halves of a node's transport share:
 * the layout of struct net_transport, its limits and defaults, and the few
 * calls between transport.c (life cycle, peers, fault injector) and
 * transport_client.c (the client port).  Not for use outside them.
 */
#ifndef HSTORE_NET_TRANSPORT_INTERNAL_H
#define HSTORE_NET_TRANSPORT_INTERNAL_H

#include <stdatomic.h>

#include "net/auth.h"
#include "net/stream.h"
#include "net/transport.h"

/* Room for several full AppendEntries (1 MiB each by default) per peer
 * before sends start dropping. */
#define DEFAULT_SNDBUF (8 << 20)
#define DEFAULT_RECONNECT_MS 100
#define RECONNECT_MAX_MS 1000
#define LINGER_MS 50
#define RCVBUF (4 << 20)
/* Held-back messages beyond these limits are dropped rather than queued: a
 * test knob must not grow memory without bound. */
#define DELAY_MAX_MSGS 65536
#define DELAY_MAX_BYTES ((size_t)256 << 20)
/* Client connections: the defaults of net_client_limits, how much one may
 * have read per wake-up (fairness), how many read requests may wait to be
 * taken before reading pauses (back-pressure), and the queued reply bytes at
 * which a connection is written at once rather than at the flush. */
#define CLIENT_MAX_CONNS 4096
#define CLIENT_IDLE_MS 300000
#define CLIENT_HANDSHAKE_MS 5000
#define CLIENT_MEM_MAX ((size_t)128 << 20)
#define CLIENT_MAX_UNSENT ((size_t)64 << 20)
#define CLIENT_READ_BUDGET (1u << 20)
#define CLIENT_MAX_QUEUED 65536
#define CLIENT_FLUSH_AT (256u << 10)
/* Descriptors kept free for everything else the process opens. */
#define FD_RESERVE 256
/* A HELLO frame with its trailer, and the read budget before the handshake. */
#define HELLO_LEN (NET_HDR_LEN + NET_NONCE_LEN + NET_TRAILER_LEN)
/* At the connection limit, an authenticated connection idle this long may
 * give way to a new one. */
#define DISPLACE_IDLE_MS 1000
/* Peer replay window: senders remembered, and how long a sender must have
 * been silent before a frame of an OLDER epoch (a restart with the clock set
 * back) is taken from it. */
#define PEER_SENDERS 64
#define PEER_STALE_MS 10000
/* Rate limit of the log lines about refused input. */
#define LOG_EVERY_MS 1000
#define LISTEN_ID UINT64_MAX

typedef struct cconn {
    int fd;
    uint32_t slot, gen;
    net_rbuf rb;
    net_wbuf wb;
    bool want_out; /* EPOLLOUT registered */
    bool dirty;    /* in the flush list */
    bool authed;   /* handshake done: s holds the session */
    net_session s;
    uint64_t accepted_ms, last_ms;
    size_t mem; /* buffer bytes counted in the transport's mem */
} cconn;

typedef struct sender_state {
    uint64_t id, epoch, ctr, last_ms;
} sender_state;

typedef struct tpeer {
    uint64_t id;
    char host[NET_ADDR_MAX];
    int port;
    int sock; /* NN_PUSH, -1 if none */
} tpeer;

typedef struct held {
    uint64_t due;
    uint64_t order;
    uint64_t peer;
    void *buf;
    size_t len;
} held;

struct net_transport {
    uint64_t self_id;
    char host[NET_ADDR_MAX]; /* as configured */
    char ip[NET_ADDR_MAX];   /* numeric IPv4 of host, "" if it did not resolve */
    int port;
    int sndbuf, reconnect_ms;
    int pull; /* nanomsg socket, -1 if none */
    int pull_fd;
    int lfd, epfd; /* client listener and epoll set, -1 if none */
    cconn **conns; /* by slot; NULL = free */
    uint32_t n_slots, n_conns;
    uint32_t *dirty; /* slots with queued replies */
    uint32_t n_dirty;
    uint32_t conn_gen; /* last generation given to a connection */
    net_client_msg *q; /* ring of read, untaken requests */
    size_t q_head, q_len, q_cap;
    tpeer peers[RAFT_MAX_NODES];
    int n_peers;

    net_faults faults;
    uint64_t rng;
    held *heap;
    size_t n_held, cap_held, held_bytes;
    uint64_t held_order;

    net_auth auth;
    uint64_t epoch, tx_ctr; /* this node's peer-frame incarnation and counter */
    sender_state senders[PEER_SENDERS];
    net_client_limits lim;
    size_t mem; /* client buffers' bytes, all connections */
    uint64_t next_sweep;
    uint64_t log_ms, log_quiet; /* rate limit of refusal logs */
    net_buf ebuf;               /* HELLO_ACK / ERROR frames */

    net_transport_stats st;
    atomic_bool partitioned; /* drop all peer traffic (net_transport_set_partitioned) */
    atomic_ullong partition_dropped;
};

/* ---- transport_client.c, called from transport.c ---- */

/* Opens the client listener and the epoll set; NET_OK or an error in err. */
int net_tp_client_listen(net_transport *t, char *err, size_t errlen);
/* Closes every client connection and the listener. */
void net_tp_client_close_all(net_transport *t);
/* Closes connections past their idle or handshake time (every so often). */
void net_tp_client_sweep(net_transport *t, uint64_t now);

/* ---- transport.c, called from transport_client.c ---- */

/* One line about refused input, at most every LOG_EVERY_MS. */
void net_tp_refusal_log(net_transport *t, const char *what, uint64_t count);

#endif
