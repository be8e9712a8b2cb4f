/*
 * wire.h — hstore's wire format: every message that crosses a socket.
 *
 * A frame is a fixed 16-byte header followed by a payload:
 *
 *   offset size field
 *        0    4 magic     NET_MAGIC ("HSTR" in byte order)
 *        4    1 version   NET_VERSION
 *        5    1 type      net_msg_type
 *        6    2 flags     reserved, must be 0
 *        8    4 length    payload bytes that follow the header
 *       12    4 crc       CRC32C (Castagnoli) of the payload
 *       16    . payload
 *
 * All integers are little-endian and fixed width (raftkv/byte.h); strings and
 * byte arrays are a length followed by the bytes; a raft_conf (in RAFT and
 * STATUS_RESP payloads) is laid out as raftkv/conf_codec.h says.
 *
 * On the wire every frame is followed by a NET_TRAILER_LEN-byte
 * authentication trailer (auth.h): sender id, epoch, counter and a MAC over
 * all of it.  The transport and the client library verify and strip the
 * trailer BEFORE anything is decoded; the decoders here take the frame
 * alone (header + payload), whose header length must account for every
 * byte: trailing bytes are an error, like missing ones.  A frame plus its
 * trailer is exactly one nanomsg message on peer sockets.
 *
 * The decoder trusts nothing it reads: every length and count is checked
 * against the bytes actually present before it is used, every enum and
 * boolean against its range, and nothing is allocated in proportion to a
 * count before the bytes that count announces have been seen to exist.  Bad
 * input gives a negative NET_E* code and bumps a process-wide counter
 * (net_wire_errors()); it never crashes and never reads out of bounds.
 *
 * Memory: encoders write into a net_buf the caller reuses (no malloc per
 * message once it has grown).  Decoders do not copy bulk bytes: entry data,
 * snapshot chunks, client operations and replies point INTO the input buffer,
 * which must therefore outlive the decoded message.  Only a decoded
 * raft_msg's entries array is allocated; release it with net_raft_msg_free().
 *
 * Thread-safety: all functions are reentrant; the error counter is atomic.
 */
#ifndef HSTORE_NET_WIRE_H
#define HSTORE_NET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftkv/raft.h"

#define NET_MAGIC 0x52545348u /* bytes 'H','S','T','R' little-endian */
/* 2: frames carry the authentication trailer; 3: a raft_conf is encoded by
 * raftkv/conf_codec.h (member count u32, was u8). */
#define NET_VERSION 3
#define NET_HDR_LEN 16
/* Bytes after every frame on the wire: sender u64, epoch u64, counter u64,
 * MAC 16 bytes (see auth.h). */
#define NET_TRAILER_LEN 40
/* Largest payload accepted: above the Raft core's largest proposal (64 MiB
 * by default) plus framing, so any entry the core accepts can travel. */
#define NET_MAX_PAYLOAD (96u << 20)
/* Host:port strings carried on the wire (leader hints, status addresses). */
#define NET_ADDR_MAX RAFT_ADDR_MAX

/* Message types (the header's type byte). */
typedef enum {
    NET_MSG_RAFT = 1,         /* peer <-> peer: one raft_msg */
    NET_MSG_CLIENT_REQ = 2,   /* client -> node */
    NET_MSG_CLIENT_RESP = 3,  /* node -> client */
    NET_MSG_STATUS_REQ = 4,   /* client -> node */
    NET_MSG_STATUS_RESP = 5,  /* node -> client */
    NET_MSG_HELLO = 6,        /* client -> node: opens an authenticated session */
    NET_MSG_HELLO_ACK = 7,    /* node -> client: accepts it */
    NET_MSG_ERROR = 8,        /* node -> client: refusal before closing (carries no data) */
    NET_MSG_SNAP_REQ = 9,     /* client -> node: a backup's snapshot (wire_snap.c) */
    NET_MSG_SNAP_RESP = 10,   /* node -> client */
    NET_MSG_MEMBER_REQ = 11,  /* client -> node: membership (wire_member.c) */
    NET_MSG_MEMBER_RESP = 12, /* node -> client */
    NET_MSG_TYPE_MAX
} net_msg_type;

/* Return codes shared by the whole net/ layer: 0 is success. */
enum {
    NET_OK = 0,
    NET_ETRUNC = -1,     /* fewer bytes than the header or a field needs */
    NET_EMAGIC = -2,     /* not an hstore frame */
    NET_EVERSION = -3,   /* a wire version this build does not speak */
    NET_ETYPE = -4,      /* unknown or unexpected message type */
    NET_ELENGTH = -5,    /* header length disagrees with the bytes received, or too large */
    NET_ECHECKSUM = -6,  /* payload CRC32C mismatch: corrupted in transit */
    NET_EMALFORMED = -7, /* a field out of range, a count that does not fit, trailing bytes */
    NET_ENOMEM = -8,
    NET_EINVAL = -9,    /* bad argument from the caller (not from the wire) */
    NET_EAGAIN = -10,   /* nothing to receive now (non-blocking calls) */
    NET_EUNAVAIL = -11, /* client: no answer before the deadline, outcome unknown */
    NET_EBADREQ = -12,  /* client: the node rejected the request as malformed */
    NET_EIO = -13,      /* socket-level failure */
    NET_EAUTH = -14,    /* not authorized: MAC mismatch, wrong or missing cluster secret */
    NET_EBUSY = -15,    /* the node refused the connection (too many, or over its limits) */
    NET_ESESSION = -16, /* client: the session expired; this request's outcome is unknown */
    NET_ERR_COUNT = 17  /* number of codes, for per-code counters */
};
const char *net_strerror(int rc);

/* Decode failures seen by this process since start (all kinds together), and
 * per code (code is one of the negative NET_E* wire codes).  For the node's
 * metrics and logs. */
uint64_t net_wire_errors(void);
uint64_t net_wire_errors_by_code(int code);

/* ---- Buffers ---------------------------------------------------------------- */

/* A growable output buffer.  Zero-initialise it ({0}), reuse it across
 * encodes (each encode overwrites), free it with net_buf_free().  With
 * fixed set, p is memory of the caller's (cap bytes), never grown or freed:
 * an encode that does not fit fails with NET_ENOMEM. */
typedef struct net_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
    bool fixed;
} net_buf;

void net_buf_free(net_buf *b);

/* ---- Header ------------------------------------------------------------------ */

typedef struct net_hdr {
    uint8_t version;
    uint8_t type; /* net_msg_type */
    uint16_t flags;
    uint32_t len; /* payload length */
    uint32_t crc;
} net_hdr;

/* Validates a whole frame (header, exact length, checksum) without decoding
 * the payload.  On success fills *h (may be NULL) and returns the message
 * type (> 0); otherwise a negative NET_E* code (counted). */
int net_frame_check(const void *buf, size_t len, net_hdr *h);

/* ---- RAFT: one raft_msg --------------------------------------------------------- */

/* Encodes every field of m (entries with their data, the snapshot chunk, the
 * conf).  NET_EINVAL if m cannot be represented (e.g. conf.n too large, an
 * address without a terminating NUL, payload over NET_MAX_PAYLOAD). */
int net_encode_raft(const raft_msg *m, net_buf *out);

/* Decodes a RAFT frame into *m.  On success m->entries is malloc'ed (NULL when
 * n_entries is 0) and must be released with net_raft_msg_free(); entry data
 * and m->chunk point into buf, which must outlive *m.  On failure *m holds
 * nothing to free. */
int net_decode_raft(const void *buf, size_t len, raft_msg *m);
void net_raft_msg_free(raft_msg *m);

/* ---- CLIENT_REQ / CLIENT_RESP --------------------------------------------------- */

#define NET_REQ_READ 0x01 /* linearizable read-only query (ReadIndex) */
#define NET_REQ_REGISTER \
    0x02 /* open a session: client_id is a nonce, seq 0, op empty;
                                 a NET_ST_OK reply holds the session id (8 bytes LE) */
#define NET_REQ_FLAGS (NET_REQ_READ | NET_REQ_REGISTER)

typedef struct net_client_req {
    uint64_t client_id;
    uint64_t seq;      /* exactly-once sequence (commands; 0 for reads) */
    uint64_t req_id;   /* echoed in the reply, to match it */
    uint8_t flags;     /* NET_REQ_* */
    const uint8_t *op; /* the state machine's encoded operation */
    uint32_t op_len;
} net_client_req;

/* Status of a CLIENT_RESP. */
typedef enum {
    NET_ST_OK = 0,              /* reply holds the state machine's answer */
    NET_ST_UNAVAILABLE = 1,     /* not done before the node's deadline: outcome unknown */
    NET_ST_NOT_LEADER = 2,      /* reserved: redirect to leader_id / leader_addr */
    NET_ST_BAD_REQUEST = 3,     /* malformed request: retrying will not help */
    NET_ST_SHUTTING_DOWN = 4,   /* the node is stopping: try another */
    NET_ST_SESSION_EXPIRED = 5, /* the session is gone (expired or evicted): the
                                   command was not applied now, an earlier attempt
                                   may have been; register a new session */
    NET_ST_MAX
} net_status_code;

typedef struct net_client_resp {
    uint64_t req_id;
    uint8_t status;                 /* net_status_code */
    uint64_t leader_id;             /* 0 when unknown */
    char leader_addr[NET_ADDR_MAX]; /* client address host:port of the leader, "" if unknown */
    const uint8_t *reply;           /* the state machine's encoded reply */
    uint32_t reply_len;
} net_client_resp;

int net_encode_client_req(const net_client_req *r, net_buf *out);
int net_decode_client_req(const void *buf, size_t len, net_client_req *r);
int net_encode_client_resp(const net_client_resp *r, net_buf *out);
int net_decode_client_resp(const void *buf, size_t len, net_client_resp *r);

/* ---- STATUS_REQ / STATUS_RESP ----------------------------------------------------- */

typedef struct net_status_resp {
    uint64_t req_id;
    char addr[NET_ADDR_MAX]; /* the answering node's address host:port */
    raft_status st;          /* every field, peers and conf included */
    uint64_t auth_rejected;  /* frames and connections refused as unauthenticated */
    uint64_t conns_cut;      /* client connections closed by the port's limits */
} net_status_resp;

int net_encode_status_req(uint64_t req_id, net_buf *out);
int net_decode_status_req(const void *buf, size_t len, uint64_t *req_id);
int net_encode_status_resp(const net_status_resp *r, net_buf *out);
int net_decode_status_resp(const void *buf, size_t len, net_status_resp *r);

/* ---- HELLO / HELLO_ACK / ERROR (client sessions, see auth.h) ------------------------- */

#define NET_NONCE_LEN 16

/* Why a node refuses a client connection (the ERROR frame's code). */
typedef enum {
    NET_REFUSE_AUTH = 1,      /* not authorized: wrong or missing cluster secret */
    NET_REFUSE_BUSY = 2,      /* too many client connections */
    NET_REFUSE_TOO_LARGE = 3, /* a frame over the node's per-connection limit */
    NET_REFUSE_MEMORY = 4,    /* the client port's memory cap was reached */
    NET_REFUSE_IDLE = 5,      /* idle for too long */
    NET_REFUSE_MAX
} net_refuse_code;
const char *net_refuse_str(int code);

int net_encode_hello(const uint8_t nonce[NET_NONCE_LEN], net_buf *out);
int net_decode_hello(const void *buf, size_t len, uint8_t nonce[NET_NONCE_LEN]);
int net_encode_hello_ack(uint64_t node_id, const uint8_t nonce[NET_NONCE_LEN], net_buf *out);
int net_decode_hello_ack(const void *buf, size_t len, uint64_t *node_id,
                         uint8_t nonce[NET_NONCE_LEN]);
int net_encode_error(uint8_t code, net_buf *out);
int net_decode_error(const void *buf, size_t len, uint8_t *code);

/* ---- SNAP_REQ / SNAP_RESP (wire_snap.c): a backup, streamed -------------------------- *
 *
 * A backup is the node's stored snapshot (one zstd frame, storage.h), read
 * in ranges so that no reply is larger than NET_SNAP_CHUNK_MAX:
 *   BEGIN  a linearizable point: the node takes a read index, waits until it
 *          applied it, and answers with its applied index A (>= the read
 *          index); it then makes sure a snapshot at >= A gets stored (taking
 *          one now unless the stored one is that recent already).
 *   READ   the stored snapshot's index, term and stored length, and, when
 *          index is that snapshot's, the bytes [offset, offset + len) of its
 *          stored form (len 0: the metadata alone).  Answered at once. */
#define NET_SNAP_CHUNK_MAX (1u << 20)
enum { NET_SNAP_BEGIN = 1, NET_SNAP_READ = 2 };

typedef struct net_snap_req {
    uint64_t req_id;
    uint8_t kind; /* NET_SNAP_BEGIN or NET_SNAP_READ */
    uint64_t index, offset;
    uint32_t len; /* at most NET_SNAP_CHUNK_MAX */
} net_snap_req;

typedef struct net_snap_resp {
    uint64_t req_id;
    uint8_t status; /* net_status_code */
    uint64_t index; /* BEGIN: the applied index A; READ: the stored snapshot's */
    uint64_t term;  /* READ: the stored snapshot's */
    uint64_t total; /* READ: length of its stored form */
    const uint8_t *data;
    uint32_t data_len;
} net_snap_resp;

int net_encode_snap_req(const net_snap_req *q, net_buf *out);
int net_decode_snap_req(const void *buf, size_t len, net_snap_req *q);
int net_encode_snap_resp(const net_snap_resp *s, net_buf *out);
int net_decode_snap_resp(const void *buf, size_t len, net_snap_resp *s);

/* ---- MEMBER_REQ / MEMBER_RESP (wire_member.c): membership -------------------------- *
 *
 * Every request is answered by the leader (LIST too: a follower's view may
 * lag); ADD adds a learner, promoted once caught up.  Another node answers
 * NET_MST_NOT_LEADER with the leader it knows (leader_id 0: none), and the
 * client asks that one.  Every answer carries the configuration the
 * answering node sees (its learners marked) and a line of text for people. */
enum { NET_MEMBER_LIST = 1, NET_MEMBER_ADD = 2, NET_MEMBER_REMOVE = 3, NET_MEMBER_TRANSFER = 4 };

typedef enum {
    NET_MST_OK = 0,
    NET_MST_UNAVAILABLE = 1, /* not done before the deadline: see the message */
    NET_MST_NOT_LEADER = 2,  /* ask leader_id at leader_addr (client address) */
    NET_MST_INVALID = 3,     /* the change does not apply (e.g. a member already) */
    NET_MST_BUSY = 4,        /* another change or a transfer is under way */
    NET_MST_NOT_MEMBER = 5,  /* REMOVE or TRANSFER of a server that is not a member */
    NET_MST_MAX
} net_member_status;

#define NET_MEMBER_MSG_MAX 200

typedef struct net_member_req {
    uint64_t req_id;
    uint8_t op; /* NET_MEMBER_* */
    uint64_t id;
    char addr[NET_ADDR_MAX]; /* ADD: the new member's peer address host:port */
    uint32_t timeout_ms;     /* how long the node may work on it (0: its op timeout) */
} net_member_req;

typedef struct net_member_resp {
    uint64_t req_id;
    uint8_t status; /* net_member_status */
    uint64_t leader_id;
    char leader_addr[NET_ADDR_MAX]; /* the leader's client address, "" unknown */
    char msg[NET_MEMBER_MSG_MAX];
    raft_conf conf;
} net_member_resp;

int net_encode_member_req(const net_member_req *q, net_buf *out);
int net_decode_member_req(const void *buf, size_t len, net_member_req *q);
int net_encode_member_resp(const net_member_resp *r, net_buf *out);
int net_decode_member_resp(const void *buf, size_t len, net_member_resp *r);

#endif
