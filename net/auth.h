/*
 * auth.h — the cluster secret and the MAC every hstore frame carries.
 *
 * A cluster shares one secret (a file of at least 32 hex digits, mode 0600;
 * `hstore up` writes 32 random bytes).  From it, keyed BLAKE2b
 * (libsodium's crypto_kdf) derives one 32-byte key per purpose:
 *   peer  — node -> node frames (Raft messages),
 *   req   — client -> node frames (HELLO, requests),
 *   resp  — node -> client frames (HELLO_ACK, replies),
 *   http  — the bearer token of the HTTP port (net_auth_http_token),
 * so that a frame authenticated for one purpose is worthless for another
 * (a reply cannot be reflected back as a request, a client frame cannot be
 * passed off as a peer frame).
 *
 * Every frame on the wire is followed by a trailer (NET_TRAILER_LEN bytes):
 *
 *   offset size field
 *        0    8 sender   node id of the sender (0: a client)
 *        8    8 epoch    the sender's incarnation (peers; 0 on client sessions)
 *       16    8 counter  frame number of this sender/epoch or session direction
 *       24   16 tag
 *
 * The tag of a peer or session frame is the Poly1305 tag of
 * XChaCha20-Poly1305 (libsodium's crypto_aead_xchacha20poly1305_ietf) with
 * an empty message, the whole frame as associated data, and the 24 bytes of
 * sender, epoch and counter as the nonce.  Every (key, nonce) pair is used
 * once: peers never repeat (epoch, counter), and each client session has its
 * own keys.  This is several times faster on bulk data than keyed BLAKE2b,
 * which only the two handshake frames use (tag = BLAKE2b-128 keyed with the
 * purpose's key over context || frame || trailer[0..24)).
 *
 * The tag covers the whole frame (header and payload) and the sender id, so
 * a peer's claimed id is authenticated: the node drops a Raft message whose
 * `from` differs from the authenticated sender.
 *
 * Replay:
 *   - client sessions start with a handshake: the client sends HELLO with a
 *     random nonce cn, the node answers HELLO_ACK with its own random nonce
 *     sn; every later frame of the connection is MAC'ed with the session's
 *     keys (keyed BLAKE2b of cn||sn under the req and resp keys) and carries
 *     the next counter of its direction (1, 2, ...), checked exactly (TCP
 *     delivers in order).  A frame replayed on another
 *     connection, or again on the same one, fails.
 *   - peer frames carry the sender's epoch (its start time, CLOCK_REALTIME
 *     ns) and a counter; the receiver keeps per sender the newest (epoch,
 *     counter) and takes only frames beyond it (see transport.c for the
 *     restart-with-clock-set-back case).
 *
 * Without a secret (`hstore node --insecure`, or a client that found none)
 * the keys derive from a fixed all-zero secret: frames are framed and MAC'ed
 * the same way but anyone can forge them.  Such a client talking to a node
 * with a secret is refused with "not authorized".
 *
 * Thread-safety: the functions are reentrant; the process default is set
 * once at start (net_auth_set_default) and read by every client created
 * afterwards.
 */
#ifndef HSTORE_NET_AUTH_H
#define HSTORE_NET_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/stream.h"
#include "net/wire.h"

#define NET_KEY_LEN 32
#define NET_TAG_LEN 16
#define NET_SECRET_MIN 16 /* bytes (32 hex digits) */
#define NET_SECRET_MAX 256
#define NET_SESSION_CTX_LEN (2 * NET_NONCE_LEN)

typedef struct net_auth {
    uint8_t peer[NET_KEY_LEN];
    uint8_t req[NET_KEY_LEN];
    uint8_t resp[NET_KEY_LEN];
    uint8_t http[NET_KEY_LEN];
    bool secure; /* false: the well-known insecure keys */
} net_auth;

/* The insecure keys (derived from an all-zero secret). */
void net_auth_insecure(net_auth *a);
/* Derives the keys from secret bytes (at least NET_SECRET_MIN). */
int net_auth_from_secret(net_auth *a, const uint8_t *secret, size_t len);
/* Reads a secret file (hex digits, surrounding white space allowed) and
 * derives the keys.  The file must not be readable by group or others.
 * NET_OK, or NET_EINVAL / NET_EIO with a message in err. */
int net_auth_load(net_auth *a, const char *path, char *err, size_t errlen);
/* Writes a new secret (32 random bytes as hex, mode 0600) to path unless the
 * file exists.  NET_OK (also when it existed), or NET_EIO with a message. */
int net_auth_generate(const char *path, char *err, size_t errlen);

/* The keys clients and transports use when given none: set by
 * net_auth_set_default; until then, the file named by $HSTORE_SECRET_FILE
 * if set (loaded on first use), else the insecure keys. */
void net_auth_set_default(const net_auth *a);
void net_auth_get_default(net_auth *a);

/* The bearer token of the HTTP port (`Authorization: Bearer TOKEN`): the
 * http key in hex, NET_HTTP_TOKEN_LEN digits and a NUL.  Whoever holds the
 * secret can compute it; it reveals nothing of the other keys. */
#define NET_HTTP_TOKEN_LEN (2 * NET_KEY_LEN)
void net_auth_http_token(const net_auth *a, char out[NET_HTTP_TOKEN_LEN + 1]);
/* True when token (len bytes, not NUL-terminated) is a's HTTP token; the
 * comparison takes the same time wherever the first difference is. */
bool net_auth_http_token_ok(const net_auth *a, const char *token, size_t len);

/* ---- trailers ---- */

typedef struct net_trailer {
    uint64_t sender, epoch, ctr;
} net_trailer;

/* Appends a trailer for the frame in b (the whole of b) with the
 * XChaCha20-Poly1305 tag under key; (sender, epoch, ctr) must never repeat
 * for one key.  NET_OK or NET_ENOMEM. */
int net_seal(const uint8_t key[NET_KEY_LEN], const net_trailer *t, net_buf *b);
/* The same in place: frame[0..frame_len) is followed by NET_TRAILER_LEN bytes
 * of room that receive the trailer. */
void net_seal_at(const uint8_t key[NET_KEY_LEN], const net_trailer *t, uint8_t *frame,
                 size_t frame_len);
/* Verifies the trailer at the end of buf[0..len): NET_OK with *t filled and
 * the frame being buf[0..len - NET_TRAILER_LEN), NET_ETRUNC when too short,
 * NET_EAUTH when the tag does not match.  Nothing of the frame is decoded. */
int net_open(const uint8_t key[NET_KEY_LEN], const void *buf, size_t len, net_trailer *t);
/* The handshake variants: keyed BLAKE2b over ctx[ctx_len] (may be NULL/0),
 * the frame and the fields. */
int net_seal_hs(const uint8_t key[NET_KEY_LEN], const void *ctx, size_t ctx_len,
                const net_trailer *t, net_buf *b);
int net_open_hs(const uint8_t key[NET_KEY_LEN], const void *ctx, size_t ctx_len, const void *buf,
                size_t len, net_trailer *t);

/* ---- client sessions ---- */

typedef struct net_session {
    uint8_t ctx[NET_SESSION_CTX_LEN]; /* client nonce || node nonce */
    uint8_t kreq[NET_KEY_LEN];        /* the session's keys (net_session_keys) */
    uint8_t kresp[NET_KEY_LEN];
    uint64_t tx, rx;  /* counters of the last frame sent / received */
    uint64_t node_id; /* the node's id from HELLO_ACK */
} net_session;

/* Derives s's keys from a and s->ctx. */
void net_session_keys(const net_auth *a, net_session *s);

/* Client side of the handshake on a connected socket: sends HELLO, waits
 * (until end_ms) for HELLO_ACK and verifies it.  rb is the connection's read
 * buffer (frames after the HELLO_ACK stay in it).  NET_OK; NET_EAUTH when the
 * node refused the client as unauthenticated or its answer does not verify
 * (the two sides hold different secrets); NET_EBUSY when the node refused the
 * connection for its limits; NET_EUNAVAIL on time-out or a lost connection. */
int net_session_connect(int fd, const net_auth *a, net_session *s, net_rbuf *rb, uint64_t end_ms);

/* Appends the trailer of the session's next request to the frame in b. */
int net_session_seal_req(const net_auth *a, net_session *s, net_buf *b);
/* Checks a sealed reply frame f[0..len) read from the session's stream:
 * NET_OK (*flen: the frame's length without its trailer), or NET_EMALFORMED
 * (a forged, altered, replayed or out-of-order frame: close the connection).
 * An ERROR frame from the node gives its meaning instead: NET_EAUTH for
 * NET_REFUSE_AUTH, NET_EBUSY otherwise (ERROR frames carry no data and are
 * taken without a MAC: a forger could only do what closing the connection
 * does). */
int net_session_open_resp(const net_auth *a, net_session *s, const uint8_t *f, size_t len,
                          size_t *flen);

#endif
