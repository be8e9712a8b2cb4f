/*
 * client_conn.c — a client's connection to one node (see client_conn.h).
 */
#include "net/client_conn.h"

#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include "net/net_util.h"

void net_cconn_init(net_cconn *c, uint64_t id, const char *host, int port)
{
    c->id = id;
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->port = port;
    c->fd = -1;
}

void net_cconn_close(net_cconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    net_rbuf_free(&c->rb);
    net_wbuf_free(&c->wb);
}

int net_cconn_open(net_cconn *c, const net_auth *a, uint64_t end_ms)
{
    if (c->fd >= 0)
        return NET_OK;
    c->fd = net_tcp_connect(c->host, c->port + 1, end_ms);
    if (c->fd < 0)
        return NET_EIO;
    int rc = net_session_connect(c->fd, a, &c->s, &c->rb, end_ms);
    if (rc != NET_OK)
        net_cconn_close(c);
    return rc == NET_ENOMEM ? NET_EUNAVAIL : rc;
}

int net_cconn_queue(net_cconn *c, const net_auth *a, net_buf *req)
{
    size_t len = req->len;
    int rc = net_session_seal_req(a, &c->s, req);
    if (rc == NET_OK)
        rc = net_wbuf_put(&c->wb, req->p, req->len);
    req->len = len;
    return rc == NET_OK ? NET_OK : NET_ENOMEM;
}

int net_cconn_flush_by(net_cconn *c, uint64_t end_ms)
{
    for (;;) {
        int rc = net_wbuf_flush(&c->wb, c->fd);
        if (rc == NET_OK)
            return NET_OK;
        if (rc != NET_EAGAIN || net_wait_fd(c->fd, POLLOUT, end_ms) <= 0)
            return NET_EIO;
    }
}

int net_cconn_fill(net_cconn *c, size_t max)
{
    return net_rbuf_fill(&c->rb, c->fd, max);
}

int net_cconn_next(net_cconn *c, const net_auth *a, const uint8_t **f, size_t *len)
{
    size_t flen;
    int rc = net_rbuf_frame(&c->rb, NET_HDR_LEN + NET_MAX_PAYLOAD + NET_TRAILER_LEN, f, &flen);
    if (rc != NET_OK)
        return rc;
    return net_session_open_resp(a, &c->s, *f, flen, len);
}
