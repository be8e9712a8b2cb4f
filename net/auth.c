/*
 * auth.c — cluster secret, per-purpose keys, frame trailers and the client
 * side of the session handshake (see auth.h).
 */
#include "net/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "net/net_util.h"
#include "raftkv/byte.h"
#include "raftkv/hex.h"

#define KDF_CONTEXT "hstore-2" /* crypto_kdf_CONTEXTBYTES = 8 */
enum { SUBKEY_PEER = 1, SUBKEY_REQ = 2, SUBKEY_RESP = 3, SUBKEY_HTTP = 4 };

static void sodium_once(void)
{
    /* sodium_init() is idempotent and thread-safe; < 0 only when no
     * randomness source exists, which randombytes would then hit too. */
    if (sodium_init() < 0) {
        fprintf(stderr, "hstore: libsodium cannot initialise\n");
        abort();
    }
}

static void derive(net_auth *a, const uint8_t *secret, size_t len, bool secure)
{
    sodium_once();
    uint8_t master[crypto_kdf_KEYBYTES];
    crypto_generichash(master, sizeof master, secret, len, NULL, 0);
    crypto_kdf_derive_from_key(a->peer, NET_KEY_LEN, SUBKEY_PEER, KDF_CONTEXT, master);
    crypto_kdf_derive_from_key(a->req, NET_KEY_LEN, SUBKEY_REQ, KDF_CONTEXT, master);
    crypto_kdf_derive_from_key(a->resp, NET_KEY_LEN, SUBKEY_RESP, KDF_CONTEXT, master);
    crypto_kdf_derive_from_key(a->http, NET_KEY_LEN, SUBKEY_HTTP, KDF_CONTEXT, master);
    sodium_memzero(master, sizeof master);
    a->secure = secure;
}

void net_auth_insecure(net_auth *a)
{
    uint8_t zero[NET_SECRET_MIN] = {0};
    derive(a, zero, sizeof zero, false);
}

int net_auth_from_secret(net_auth *a, const uint8_t *secret, size_t len)
{
    if (!a || !secret || len < NET_SECRET_MIN)
        return NET_EINVAL;
    derive(a, secret, len, true);
    return NET_OK;
}

int net_auth_load(net_auth *a, const char *path, char *err, size_t errlen)
{
    if (!a || !path || !*path) {
        net_seterr(err, errlen, "no secret file named");
        return NET_EINVAL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        net_seterr(err, errlen, "cannot read the secret file %s: %s", path, strerror(errno));
        return NET_EIO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        net_seterr(err, errlen, "secret file %s is not a regular file", path);
        return NET_EINVAL;
    }
    if (sb.st_mode & 077) {
        close(fd);
        net_seterr(err, errlen, "secret file %s is readable by others (mode %03o): chmod 600 %s",
                   path, (unsigned)(sb.st_mode & 0777), path);
        return NET_EINVAL;
    }
    char text[2 * NET_SECRET_MAX + 64];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n < 0) {
        net_seterr(err, errlen, "cannot read the secret file %s: %s", path, strerror(errno));
        return NET_EIO;
    }
    text[n] = '\0';
    uint8_t secret[NET_SECRET_MAX];
    size_t len = 0;
    int hi = -1;
    bool ok = true;
    for (ssize_t i = 0; i < n && ok; i++) {
        int c = (unsigned char)text[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            ok = hi < 0; /* no white space between the two digits of a byte */
            continue;
        }
        int v = hex_digit_value(c);
        if (v < 0 || (hi < 0 && len == sizeof secret)) {
            ok = false;
        } else if (hi < 0) {
            hi = v;
        } else {
            secret[len++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (!ok || hi >= 0 || len < NET_SECRET_MIN) {
        sodium_memzero(text, sizeof text);
        net_seterr(err, errlen,
                   "secret file %s must hold %d to %d hex digits (e.g. from `hstore up`, or "
                   "`head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'`)",
                   path, 2 * NET_SECRET_MIN, 2 * NET_SECRET_MAX);
        return NET_EINVAL;
    }
    derive(a, secret, len, true);
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(text, sizeof text);
    return NET_OK;
}

int net_auth_generate(const char *path, char *err, size_t errlen)
{
    sodium_once();
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return NET_OK;
    if (fd < 0) {
        net_seterr(err, errlen, "cannot create the secret file %s: %s", path, strerror(errno));
        return NET_EIO;
    }
    uint8_t secret[32];
    char hex[2 * sizeof secret + 2];
    randombytes_buf(secret, sizeof secret);
    sodium_bin2hex(hex, sizeof hex, secret, sizeof secret);
    size_t hl = strlen(hex);
    hex[hl++] = '\n';
    bool ok = write(fd, hex, hl) == (ssize_t)hl && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(hex, sizeof hex);
    if (!ok) {
        unlink(path);
        net_seterr(err, errlen, "cannot write the secret file %s", path);
        return NET_EIO;
    }
    return NET_OK;
}

void net_auth_http_token(const net_auth *a, char out[NET_HTTP_TOKEN_LEN + 1])
{
    sodium_bin2hex(out, NET_HTTP_TOKEN_LEN + 1, a->http, NET_KEY_LEN);
}

bool net_auth_http_token_ok(const net_auth *a, const char *token, size_t len)
{
    char want[NET_HTTP_TOKEN_LEN + 1];
    net_auth_http_token(a, want);
    bool ok = len == NET_HTTP_TOKEN_LEN && sodium_memcmp(want, token, NET_HTTP_TOKEN_LEN) == 0;
    sodium_memzero(want, sizeof want);
    return ok;
}

/* ---- the process default ---- */

static pthread_mutex_t def_mu = PTHREAD_MUTEX_INITIALIZER;
static bool def_set;
static net_auth def_auth;

void net_auth_set_default(const net_auth *a)
{
    pthread_mutex_lock(&def_mu);
    def_auth = *a;
    def_set = true;
    pthread_mutex_unlock(&def_mu);
}

void net_auth_get_default(net_auth *a)
{
    pthread_mutex_lock(&def_mu);
    if (!def_set) {
        const char *path = getenv("HSTORE_SECRET_FILE");
        char err[512];
        if (path && *path && net_auth_load(&def_auth, path, err, sizeof err) != NET_OK) {
            fprintf(stderr, "hstore: HSTORE_SECRET_FILE: %s; going on without a secret\n", err);
            net_auth_insecure(&def_auth);
        } else if (!path || !*path) {
            net_auth_insecure(&def_auth);
        }
        def_set = true;
    }
    *a = def_auth;
    pthread_mutex_unlock(&def_mu);
}

/* ---- trailers ---- */

/* Handshake frames: keyed BLAKE2b-128 over ctx || frame || fields. */
static void mac_hs(const uint8_t key[NET_KEY_LEN], const void *ctx, size_t ctx_len,
                   const uint8_t *frame, size_t frame_len, const uint8_t *fields, uint8_t *tag)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, NET_KEY_LEN, NET_TAG_LEN);
    if (ctx_len)
        crypto_generichash_update(&st, ctx, ctx_len);
    crypto_generichash_update(&st, frame, frame_len);
    crypto_generichash_update(&st, fields, 24);
    crypto_generichash_final(&st, tag, NET_TAG_LEN);
}

static void put_fields(uint8_t *tr, const net_trailer *t)
{
    byte_put64(tr, t->sender);
    byte_put64(tr + 8, t->epoch);
    byte_put64(tr + 16, t->ctr);
}

static void get_fields(const uint8_t *tr, net_trailer *t)
{
    if (t) {
        t->sender = byte_get64(tr);
        t->epoch = byte_get64(tr + 8);
        t->ctr = byte_get64(tr + 16);
    }
}

/* Room for the trailer after the frame in b. */
static int room(net_buf *b)
{
    if (b->len + NET_TRAILER_LEN > b->cap) {
        size_t cap = b->len + NET_TRAILER_LEN;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return NET_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    return NET_OK;
}

/* Frames: the Poly1305 tag of XChaCha20-Poly1305 with an empty message and
 * the frame as associated data; the 24 bytes of fields are the nonce. */
void net_seal_at(const uint8_t key[NET_KEY_LEN], const net_trailer *t, uint8_t *frame,
                 size_t frame_len)
{
    uint8_t *tr = frame + frame_len;
    put_fields(tr, t);
    unsigned long long tl = 0;
    uint8_t none[1] = {0}; /* the empty message and its empty ciphertext */
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(none, tr + 24, &tl, none, 0, frame,
                                                        frame_len, NULL, tr, key);
}

int net_seal(const uint8_t key[NET_KEY_LEN], const net_trailer *t, net_buf *b)
{
    if (room(b) != NET_OK)
        return NET_ENOMEM;
    net_seal_at(key, t, b->p, b->len);
    b->len += NET_TRAILER_LEN;
    return NET_OK;
}

int net_open(const uint8_t key[NET_KEY_LEN], const void *buf, size_t len, net_trailer *t)
{
    if (!buf || len < NET_TRAILER_LEN)
        return NET_ETRUNC;
    const uint8_t *f = buf;
    size_t flen = len - NET_TRAILER_LEN;
    const uint8_t *tr = f + flen;
    uint8_t none[1] = {0};
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(none, NULL, none, 0, tr + 24, f, flen,
                                                            tr, key) != 0)
        return NET_EAUTH;
    get_fields(tr, t);
    return NET_OK;
}

int net_seal_hs(const uint8_t key[NET_KEY_LEN], const void *ctx, size_t ctx_len,
                const net_trailer *t, net_buf *b)
{
    if (room(b) != NET_OK)
        return NET_ENOMEM;
    uint8_t *tr = b->p + b->len;
    put_fields(tr, t);
    mac_hs(key, ctx, ctx_len, b->p, b->len, tr, tr + 24);
    b->len += NET_TRAILER_LEN;
    return NET_OK;
}

int net_open_hs(const uint8_t key[NET_KEY_LEN], const void *ctx, size_t ctx_len, const void *buf,
                size_t len, net_trailer *t)
{
    if (!buf || len < NET_TRAILER_LEN)
        return NET_ETRUNC;
    const uint8_t *f = buf;
    size_t flen = len - NET_TRAILER_LEN;
    const uint8_t *tr = f + flen;
    uint8_t tag[NET_TAG_LEN];
    mac_hs(key, ctx, ctx_len, f, flen, tr, tag);
    if (sodium_memcmp(tag, tr + 24, NET_TAG_LEN) != 0)
        return NET_EAUTH;
    get_fields(tr, t);
    return NET_OK;
}

void net_session_keys(const net_auth *a, net_session *s)
{
    crypto_generichash(s->kreq, NET_KEY_LEN, s->ctx, sizeof s->ctx, a->req, NET_KEY_LEN);
    crypto_generichash(s->kresp, NET_KEY_LEN, s->ctx, sizeof s->ctx, a->resp, NET_KEY_LEN);
}

/* ---- client sessions ---- */

static int refusal(const uint8_t *f, size_t len)
{
    uint8_t code = 0;
    if (len < NET_TRAILER_LEN || net_decode_error(f, len - NET_TRAILER_LEN, &code) != NET_OK)
        return NET_EAUTH; /* an ERROR frame we cannot read: still a refusal */
    return code == NET_REFUSE_AUTH ? NET_EAUTH : NET_EBUSY;
}

static bool is_error_frame(const uint8_t *f, size_t len)
{
    return len >= NET_HDR_LEN && f[5] == NET_MSG_ERROR;
}

int net_session_connect(int fd, const net_auth *a, net_session *s, net_rbuf *rb, uint64_t end_ms)
{
    memset(s, 0, sizeof *s);
    sodium_once();
    uint8_t cn[NET_NONCE_LEN];
    randombytes_buf(cn, sizeof cn);
    net_buf b = {0};
    net_trailer tr = {0, 0, 0};
    /* The HELLO's counter field carries random bits: nothing checks it. */
    randombytes_buf(&tr.ctr, sizeof tr.ctr);
    if (net_encode_hello(cn, &b) != NET_OK || net_seal_hs(a->req, NULL, 0, &tr, &b) != NET_OK) {
        net_buf_free(&b);
        return NET_ENOMEM;
    }
    net_wbuf wb = {0};
    int rc = net_wbuf_put(&wb, b.p, b.len);
    net_buf_free(&b);
    while (rc == NET_OK || rc == NET_EAGAIN) {
        rc = net_wbuf_flush(&wb, fd);
        if (rc == NET_OK)
            break;
        if (rc != NET_EAGAIN || net_wait_fd(fd, POLLOUT, end_ms) <= 0)
            rc = NET_EUNAVAIL;
    }
    net_wbuf_free(&wb);
    if (rc != NET_OK)
        return rc == NET_ENOMEM ? rc : NET_EUNAVAIL;
    for (;;) {
        const uint8_t *f;
        size_t len;
        int frc = net_rbuf_frame(rb, NET_HDR_LEN + 64, &f, &len);
        if (frc == NET_OK) {
            if (is_error_frame(f, len))
                return refusal(f, len);
            uint8_t sn[NET_NONCE_LEN];
            uint64_t id = 0;
            if (net_open_hs(a->resp, cn, sizeof cn, f, len, &tr) != NET_OK || tr.ctr != 0 ||
                net_decode_hello_ack(f, len - NET_TRAILER_LEN, &id, sn) != NET_OK ||
                tr.sender != id)
                return NET_EAUTH;
            memcpy(s->ctx, cn, NET_NONCE_LEN);
            memcpy(s->ctx + NET_NONCE_LEN, sn, NET_NONCE_LEN);
            s->node_id = id;
            net_session_keys(a, s);
            return NET_OK;
        }
        if (frc != NET_EAGAIN)
            return NET_EAUTH; /* not an hstore node of this version */
        if (net_wait_fd(fd, POLLIN, end_ms) <= 0)
            return NET_EUNAVAIL;
        int r = net_rbuf_fill(rb, fd, 4096);
        if (r != NET_OK && r != NET_EAGAIN) {
            /* Closed: perhaps after an ERROR frame, which the loop reads
             * first; otherwise the connection is simply gone. */
            if (net_rbuf_frame(rb, NET_HDR_LEN + 64, &f, &len) == NET_OK && is_error_frame(f, len))
                return refusal(f, len);
            return NET_EUNAVAIL;
        }
    }
}

int net_session_seal_req(const net_auth *a, net_session *s, net_buf *b)
{
    net_trailer t = {0, 0, s->tx + 1};
    (void)a;
    int rc = net_seal(s->kreq, &t, b);
    if (rc == NET_OK)
        s->tx++;
    return rc;
}

int net_session_open_resp(const net_auth *a, net_session *s, const uint8_t *f, size_t len,
                          size_t *flen)
{
    if (is_error_frame(f, len))
        return refusal(f, len);
    net_trailer t;
    (void)a;
    int rc = net_open(s->kresp, f, len, &t);
    if (rc != NET_OK || t.ctr != s->rx + 1 || t.sender != s->node_id)
        return NET_EMALFORMED;
    s->rx++;
    *flen = len - NET_TRAILER_LEN;
    return NET_OK;
}
