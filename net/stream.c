/*
 * stream.c — hstore frames over TCP byte streams (see stream.h).
 */
#include "net/stream.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net_util.h"
#include "raftkv/byte.h"

/* Read granularity, and the size a buffer shrinks back to once a large frame
 * has gone through. */
#define READ_CHUNK (64u << 10)
#define KEEP_CAP (256u << 10)

void net_rbuf_free(net_rbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void net_wbuf_free(net_wbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Makes room for `need` more bytes after len, first sliding consumed bytes out.
 * Capacity doubles, but not past `limit` bytes after len (the end of the
 * frame being read): memory follows the bytes that arrive, never a length a
 * header merely announces. */
static int reserve(uint8_t **p, size_t *off, size_t *len, size_t *cap, size_t need, size_t limit)
{
    if (*off > 0 && (*off == *len || *len + need > *cap)) {
        memmove(*p, *p + *off, *len - *off);
        *len -= *off;
        *off = 0;
    }
    if (*len + need <= *cap)
        return NET_OK;
    size_t nc = *cap ? *cap : READ_CHUNK;
    while (nc < *len + need)
        nc *= 2;
    if (limit >= need && limit < nc - *len)
        nc = *len + limit;
    uint8_t *q = realloc(*p, nc);
    if (!q)
        return NET_ENOMEM;
    *p = q;
    *cap = nc;
    return NET_OK;
}

/* Gives back the memory of a large frame once the buffer is empty. */
static void shrink(uint8_t **p, size_t *off, size_t *len, size_t *cap)
{
    if (*off == *len && *cap > KEEP_CAP) {
        free(*p);
        *p = NULL;
        *off = *len = *cap = 0;
    }
}

int net_rbuf_fill(net_rbuf *b, int fd, size_t max)
{
    size_t got = 0;
    while (got < max) {
        size_t want = max - got < READ_CHUNK ? max - got : READ_CHUNK;
        size_t limit = SIZE_MAX; /* where the frame being read ends */
        if (b->len - b->off >= NET_HDR_LEN) {
            const uint8_t *h = b->p + b->off;
            size_t flen = NET_HDR_LEN + NET_TRAILER_LEN + (size_t)byte_get32(h + 8);
            size_t have = b->len - b->off;
            /* A frame whose header says it is large: read it in bigger
             * steps (still never more than arrives per call: max). */
            if (flen > have && flen - have > want &&
                flen <= NET_HDR_LEN + NET_TRAILER_LEN + NET_MAX_PAYLOAD)
                want = flen - have < max - got ? flen - have : max - got;
            if (flen > have)
                limit = flen - have;
        }
        if (reserve(&b->p, &b->off, &b->len, &b->cap, want, limit) != NET_OK)
            return NET_ENOMEM;
        ssize_t n = read(fd, b->p + b->len, want);
        if (n > 0) {
            b->len += (size_t)n;
            got += (size_t)n;
            if ((size_t)n < want)
                break; /* drained what the kernel had */
            continue;
        }
        if (n == 0)
            return NET_EIO;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        return NET_EIO;
    }
    return got ? NET_OK : NET_EAGAIN;
}

int net_rbuf_frame(net_rbuf *b, size_t max_len, const uint8_t **frame, size_t *len)
{
    size_t have = b->len - b->off;
    if (have < NET_HDR_LEN) {
        shrink(&b->p, &b->off, &b->len, &b->cap);
        return NET_EAGAIN;
    }
    const uint8_t *h = b->p + b->off;
    if (byte_get32(h) != NET_MAGIC)
        return NET_EMAGIC;
    if (h[4] != NET_VERSION)
        return NET_EVERSION;
    uint32_t plen = byte_get32(h + 8);
    size_t flen = NET_HDR_LEN + (size_t)plen + NET_TRAILER_LEN;
    if (plen > NET_MAX_PAYLOAD || flen > max_len)
        return NET_ELENGTH;
    if (have < flen)
        return NET_EAGAIN;
    *frame = h;
    *len = flen;
    b->off += flen;
    return NET_OK;
}

int net_wbuf_put(net_wbuf *b, const void *p, size_t n)
{
    if (reserve(&b->p, &b->off, &b->len, &b->cap, n, SIZE_MAX) != NET_OK)
        return NET_ENOMEM;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return NET_OK;
}

int net_wbuf_flush(net_wbuf *b, int fd)
{
    while (b->off < b->len) {
        ssize_t n = send(fd, b->p + b->off, b->len - b->off, MSG_NOSIGNAL);
        if (n > 0) {
            b->off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return NET_EAGAIN;
        return NET_EIO;
    }
    b->off = b->len = 0;
    shrink(&b->p, &b->off, &b->len, &b->cap);
    return NET_OK;
}

int net_tcp_prepare(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -1;
    int one = 1;
    /* Small requests and replies must not wait for Nagle's algorithm. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 0;
}

int net_wait_fd(int fd, short events, uint64_t end_ms)
{
    for (;;) {
        uint64_t now = net_now_ms();
        if (now >= end_ms)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)(end_ms - now));
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return 1;
    }
}

int net_tcp_connect(const char *host, int port, uint64_t end_ms)
{
    /* "LOCAL;REMOTE": connect to REMOTE from address LOCAL. */
    char local[NET_ADDR_MAX] = "";
    const char *semi = strchr(host, ';');
    if (semi) {
        if ((size_t)(semi - host) >= sizeof(local))
            return -1;
        memcpy(local, host, (size_t)(semi - host));
        local[semi - host] = '\0';
        host = semi + 1;
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    if (getaddrinfo(host, ps, &hints, &res) != 0 || !res)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || net_tcp_prepare(fd) < 0) {
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    if (local[0]) {
        struct sockaddr_in la = {.sin_family = AF_INET};
        if (inet_pton(AF_INET, local, &la.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&la, sizeof(la)) < 0) {
            close(fd);
            freeaddrinfo(res);
            return -1;
        }
    }
    int rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc < 0 && errno == EINPROGRESS) {
        int e = 0;
        socklen_t el = sizeof(e);
        if (net_wait_fd(fd, POLLOUT, end_ms) > 0 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0)
            rc = 0;
    }
    if (rc < 0) {
        close(fd);
        return -1;
    }
    return fd;
}
