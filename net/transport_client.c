/*
 * transport_client.c — a node's client port: plain TCP connections read and
 * written by the node's own thread (stream.h says why), each starting with
 * the HELLO handshake (auth.h), under the limits of net_client_limits.
 *
 * Every connection is registered, level-triggered, in one epoll set; the
 * loop polls the epoll descriptor.  Requests become net_client_msg records
 * in a queue; a reply names its connection by (generation << 32 | slot), so
 * a reply for a connection that closed meanwhile — even if its slot was
 * reused — is dropped, never misrouted.  Replies are queued per connection
 * and written at the flush, once per loop turn.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "net/transport_internal.h"
#include "raftkv/byte.h"

/* ---- client traffic ---- */

static uint64_t conn_id(const cconn *c)
{
    return (uint64_t)c->gen << 32 | c->slot;
}

static cconn *conn_get(const net_transport *t, uint64_t id)
{
    uint32_t slot = (uint32_t)id;
    if (slot >= t->n_slots || !t->conns[slot] || t->conns[slot]->gen != (uint32_t)(id >> 32))
        return NULL;
    return t->conns[slot];
}

static void conn_close(net_transport *t, cconn *c)
{
    (void)epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    net_rbuf_free(&c->rb);
    net_wbuf_free(&c->wb);
    t->mem -= c->mem;
    t->conns[c->slot] = NULL;
    t->n_conns--;
    free(c);
}

/* Sends an ERROR frame (best effort, never blocking) on fd.  Its trailer is
 * zeros: clients take ERROR frames without a MAC (they carry no data). */
static void send_refusal(net_transport *t, int fd, uint8_t code)
{
    static const uint8_t zeros[NET_TRAILER_LEN];
    if (net_encode_error(code, &t->ebuf) != NET_OK)
        return;
    uint8_t *p = realloc(t->ebuf.p, t->ebuf.len + sizeof zeros);
    if (!p)
        return;
    t->ebuf.p = p;
    t->ebuf.cap = t->ebuf.len + sizeof zeros;
    memcpy(p + t->ebuf.len, zeros, sizeof zeros);
    t->ebuf.len += sizeof zeros;
    (void)send(fd, t->ebuf.p, t->ebuf.len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Closes c after telling it why (when nothing else waits to be sent on it,
 * so the ERROR frame cannot land inside another frame). */
static void conn_refuse(net_transport *t, cconn *c, uint8_t code)
{
    if (net_wbuf_pending(&c->wb) == 0)
        send_refusal(t, c->fd, code);
    conn_close(t, c);
}

/* Brings the memory count up to date with c's buffers; past the cap, closes
 * the connections that hold the most until under it.  False when c itself
 * was closed. */
static bool conn_account(net_transport *t, cconn *c)
{
    size_t m = c->rb.cap + c->wb.cap;
    t->mem = t->mem - c->mem + m;
    c->mem = m;
    uint64_t id = conn_id(c);
    while (t->mem > t->lim.mem_max) {
        cconn *hog = NULL;
        for (uint32_t i = 0; i < t->n_slots; i++)
            if (t->conns[i] && (!hog || t->conns[i]->mem > hog->mem))
                hog = t->conns[i];
        if (!hog || hog->mem == 0)
            break;
        t->st.client_mem_closed++;
        net_tp_refusal_log(t, "a client connection over the client memory cap",
                           t->st.client_mem_closed);
        conn_refuse(t, hog, NET_REFUSE_MEMORY);
    }
    return conn_get(t, id) != NULL;
}

/* Frees a connection's buffers when empty (from the once-a-second sweep, not
 * per request: giving the memory back and taking it again costs page faults
 * on every turn of a busy connection).  An idle connection holds none. */
static void conn_trim(net_transport *t, cconn *c)
{
    if (net_rbuf_buffered(&c->rb) == 0 && c->rb.cap)
        net_rbuf_free(&c->rb);
    if (net_wbuf_pending(&c->wb) == 0 && c->wb.cap)
        net_wbuf_free(&c->wb);
    (void)conn_account(t, c);
}

void net_tp_client_close_all(net_transport *t)
{
    for (uint32_t i = 0; i < t->n_slots; i++)
        if (t->conns[i])
            conn_close(t, t->conns[i]);
    for (size_t i = 0; i < t->q_len; i++)
        free(t->q[(t->q_head + i) % t->q_cap].body);
    free(t->q);
    free(t->conns);
    free(t->dirty);
    if (t->lfd >= 0)
        close(t->lfd);
    if (t->epfd >= 0)
        close(t->epfd);
    t->q = NULL;
    t->conns = NULL;
    t->dirty = NULL;
    t->q_len = t->q_cap = 0;
    t->n_slots = t->n_conns = t->n_dirty = 0;
    t->lfd = t->epfd = -1;
}

/* Room for max_conns connections within the descriptor limit (raising the
 * soft limit towards the hard one when needed). */
static void fit_fd_limit(net_transport *t)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)t->lim.max_conns + FD_RESERVE;
    if (rl.rlim_cur < want && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        struct rlimit nr = {cur, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &nr) == 0)
            rl.rlim_cur = cur;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        int fit =
            rl.rlim_cur > 2 * FD_RESERVE ? (int)(rl.rlim_cur - FD_RESERVE) : (int)rl.rlim_cur / 2;
        fprintf(stderr, "net: node %llu: descriptor limit %llu: at most %d client connections\n",
                (unsigned long long)t->self_id, (unsigned long long)rl.rlim_cur, fit);
        t->lim.max_conns = fit > 1 ? fit : 1;
    }
}

int net_tp_client_listen(net_transport *t, char *err, size_t errlen)
{
    fit_fd_limit(t);
    t->conns = calloc((size_t)t->lim.max_conns, sizeof(*t->conns));
    t->dirty = calloc((size_t)t->lim.max_conns, sizeof(*t->dirty));
    if (!t->conns || !t->dirty) {
        net_seterr(err, errlen, "transport: out of memory");
        return NET_ENOMEM;
    }
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->epfd < 0 || t->lfd < 0) {
        net_seterr(err, errlen, "transport: cannot create the client socket: %s", strerror(errno));
        return NET_EIO;
    }
    int one = 1;
    /* A node restarted right after a crash must get its port back although
     * old connections linger in TIME_WAIT. */
    (void)setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(t->port + 1))};
    if (inet_pton(AF_INET, t->ip, &a.sin_addr) != 1 ||
        bind(t->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(t->lfd, 1024) < 0) {
        net_seterr(err, errlen, "transport: cannot listen for clients on %s:%d: %s", t->host,
                   t->port + 1, strerror(errno));
        return NET_EIO;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTEN_ID};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->lfd, &ev) < 0) {
        net_seterr(err, errlen, "transport: epoll: %s", strerror(errno));
        return NET_EIO;
    }
    return NET_OK;
}

/* At the connection limit: closes the oldest connection that has not
 * authenticated, else the one idle longest if idle over DISPLACE_IDLE_MS.
 * False when every connection is authenticated and busy. */
static bool make_room(net_transport *t, uint64_t now)
{
    cconn *pre = NULL, *idle = NULL;
    for (uint32_t i = 0; i < t->n_slots; i++) {
        cconn *c = t->conns[i];
        if (!c)
            continue;
        if (!c->authed) {
            if (!pre || c->accepted_ms < pre->accepted_ms)
                pre = c;
        } else if (net_wbuf_pending(&c->wb) == 0 && (!idle || c->last_ms < idle->last_ms)) {
            idle = c;
        }
    }
    cconn *victim = pre;
    if (!victim && idle && now > idle->last_ms && now - idle->last_ms >= DISPLACE_IDLE_MS)
        victim = idle;
    if (!victim)
        return false;
    t->st.client_refused++;
    conn_refuse(t, victim, NET_REFUSE_BUSY);
    return true;
}

static void client_accept(net_transport *t)
{
    uint64_t now = net_now_ms();
    for (int i = 0; i < 64; i++) {
        int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or an aborted connection: nothing to do */
        if (t->n_conns >= (uint32_t)t->lim.max_conns && !make_room(t, now)) {
            t->st.client_refused++;
            net_tp_refusal_log(t, "a client connection: too many connections",
                               t->st.client_refused);
            send_refusal(t, fd, NET_REFUSE_BUSY);
            close(fd);
            continue;
        }
        uint32_t slot = 0;
        while (slot < (uint32_t)t->lim.max_conns && t->conns[slot])
            slot++;
        cconn *c = slot < (uint32_t)t->lim.max_conns ? calloc(1, sizeof(*c)) : NULL;
        if (!c || net_tcp_prepare(fd) < 0) {
            /* No memory: the client sees the connection close and tries
             * another node or later. */
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->slot = slot;
        c->gen = ++t->conn_gen;
        c->accepted_ms = c->last_ms = now;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = conn_id(c)};
        if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c);
            close(fd);
            continue;
        }
        t->conns[slot] = c;
        t->n_conns++;
        if (slot >= t->n_slots)
            t->n_slots = slot + 1;
        t->st.client_conns++;
    }
}

static int queue_push(net_transport *t, net_client_msg m)
{
    if (t->q_len == t->q_cap) {
        size_t cap = t->q_cap ? 2 * t->q_cap : 256;
        net_client_msg *q = malloc(cap * sizeof(*q));
        if (!q)
            return NET_ENOMEM;
        for (size_t i = 0; i < t->q_len; i++)
            q[i] = t->q[(t->q_head + i) % t->q_cap];
        free(t->q);
        t->q = q;
        t->q_cap = cap;
        t->q_head = 0;
    }
    t->q[(t->q_head + t->q_len) % t->q_cap] = m;
    t->q_len++;
    return NET_OK;
}

static void mark_dirty(net_transport *t, cconn *c);

/* Appends frame buf/len to c's queue with the trailer of the session's next
 * reply. */
static int conn_put_sealed(net_transport *t, cconn *c, const void *buf, size_t len)
{
    static const uint8_t room[NET_TRAILER_LEN];
    if (net_wbuf_put(&c->wb, buf, len) != NET_OK)
        return NET_ENOMEM;
    if (net_wbuf_put(&c->wb, room, sizeof room) != NET_OK) {
        c->wb.len -= len;
        return NET_ENOMEM;
    }
    net_trailer tr = {t->self_id, 0, c->s.tx + 1};
    net_seal_at(c->s.kresp, &tr, c->wb.p + c->wb.len - NET_TRAILER_LEN - len, len);
    c->s.tx++;
    return NET_OK;
}

/* The first frame of a connection: a HELLO that verifies, answered with a
 * HELLO_ACK; anything else is refused as unauthenticated.  False when c was
 * closed. */
static bool client_handshake(net_transport *t, cconn *c, const uint8_t *f, size_t len)
{
    uint8_t cn[NET_NONCE_LEN], sn[NET_NONCE_LEN];
    net_trailer tr;
    if (net_open_hs(t->auth.req, NULL, 0, f, len, &tr) != NET_OK ||
        net_decode_hello(f, len - NET_TRAILER_LEN, cn) != NET_OK) {
        t->st.client_auth_failed++;
        net_tp_refusal_log(t, "a client that did not authenticate (wrong or missing secret)",
                           t->st.client_auth_failed);
        conn_refuse(t, c, NET_REFUSE_AUTH);
        return false;
    }
    randombytes_buf(sn, sizeof sn);
    net_trailer at = {t->self_id, 0, 0};
    if (net_encode_hello_ack(t->self_id, sn, &t->ebuf) != NET_OK ||
        net_seal_hs(t->auth.resp, cn, sizeof cn, &at, &t->ebuf) != NET_OK ||
        net_wbuf_put(&c->wb, t->ebuf.p, t->ebuf.len) != NET_OK) {
        conn_close(t, c);
        return false;
    }
    memcpy(c->s.ctx, cn, NET_NONCE_LEN);
    memcpy(c->s.ctx + NET_NONCE_LEN, sn, NET_NONCE_LEN);
    c->s.tx = c->s.rx = 0;
    c->s.node_id = t->self_id;
    net_session_keys(&t->auth, &c->s);
    c->authed = true;
    mark_dirty(t, c);
    return true;
}

/* Reads what a connection has and queues its complete frames; closes it on
 * end of stream, error, bytes that are not hstore frames, or a frame that
 * does not verify. */
static void client_read(net_transport *t, cconn *c)
{
    int rc = net_rbuf_fill(&c->rb, c->fd, c->authed ? CLIENT_READ_BUDGET : HELLO_LEN);
    if (rc == NET_OK)
        c->last_ms = net_now_ms();
    if (!c->authed && net_rbuf_buffered(&c->rb) >= NET_HDR_LEN) {
        /* Anything but a HELLO first (a request from a client that skips
         * the handshake): not authenticated, refused at once. */
        const uint8_t *h = c->rb.p + c->rb.off;
        if (byte_get32(h) == NET_MAGIC && h[4] == NET_VERSION && h[5] != NET_MSG_HELLO) {
            t->st.client_auth_failed++;
            net_tp_refusal_log(t, "a client that sent a request before authenticating",
                               t->st.client_auth_failed);
            conn_refuse(t, c, NET_REFUSE_AUTH);
            return;
        }
    }
    for (;;) {
        const uint8_t *f;
        size_t len;
        size_t max = c->authed ? NET_HDR_LEN + t->lim.max_frame + NET_TRAILER_LEN : HELLO_LEN;
        int frc = net_rbuf_frame(&c->rb, max, &f, &len);
        if (frc == NET_EAGAIN)
            break;
        if (frc == NET_ELENGTH && c->authed) {
            t->st.client_too_large++;
            net_tp_refusal_log(t, "a client frame over --client-max-frame", t->st.client_too_large);
            conn_refuse(t, c, NET_REFUSE_TOO_LARGE);
            return;
        }
        if (frc == NET_ELENGTH) {
            /* Anything but a HELLO first: not authenticated. */
            t->st.client_auth_failed++;
            net_tp_refusal_log(t, "a client that sent a request before authenticating",
                               t->st.client_auth_failed);
            conn_refuse(t, c, NET_REFUSE_AUTH);
            return;
        }
        if (frc != NET_OK) {
            t->st.client_conns_bad++;
            conn_close(t, c);
            return;
        }
        if (!c->authed) {
            if (!client_handshake(t, c, f, len))
                return;
            continue;
        }
        net_trailer tr;
        if (net_open(c->s.kreq, f, len, &tr) != NET_OK || tr.ctr != c->s.rx + 1) {
            t->st.client_auth_failed++;
            net_tp_refusal_log(t, "a client frame whose MAC or counter does not verify",
                               t->st.client_auth_failed);
            conn_refuse(t, c, NET_REFUSE_AUTH);
            return;
        }
        c->s.rx++;
        len -= NET_TRAILER_LEN;
        void *body = malloc(len);
        if (!body || queue_push(t, (net_client_msg){
                                       .body = body, .len = len, .conn = conn_id(c)}) != NET_OK) {
            free(body);
            conn_close(t, c);
            return;
        }
        memcpy(body, f, len);
        t->st.client_recv++;
    }
    /* End of stream after the last complete frame: the client has gone (its
     * requests already read are still served; their replies are dropped). */
    if (rc == NET_EIO || rc == NET_ENOMEM) {
        conn_close(t, c);
        return;
    }
    (void)conn_account(t, c);
}

static void set_want_out(net_transport *t, cconn *c, bool on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u64 = conn_id(c)};
    if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = on;
}

/* Writes c's queued replies; false when c was closed. */
static bool client_write(net_transport *t, cconn *c)
{
    size_t before = net_wbuf_pending(&c->wb);
    int rc = net_wbuf_flush(&c->wb, c->fd);
    if (rc == NET_EIO) {
        conn_close(t, c);
        return false;
    }
    if (net_wbuf_pending(&c->wb) < before)
        c->last_ms = net_now_ms();
    set_want_out(t, c, rc == NET_EAGAIN);
    return true;
}

static void mark_dirty(net_transport *t, cconn *c)
{
    if (c->dirty)
        return;
    /* (A slot can appear twice when its connection closed and another took
     * it within one turn; the list is flushed before it overflows.) */
    if (t->n_dirty == (uint32_t)t->lim.max_conns)
        net_transport_flush(t);
    c->dirty = true;
    t->dirty[t->n_dirty++] = c->slot;
}

void net_transport_flush(net_transport *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->n_dirty; i++) {
        cconn *c = t->conns[t->dirty[i]];
        if (!c || !c->dirty)
            continue;
        c->dirty = false;
        client_write(t, c);
    }
    t->n_dirty = 0;
}

/* Closes connections past the idle or handshake timeout and frees the
 * buffers of quiet ones (once a second). */
void net_tp_client_sweep(net_transport *t, uint64_t now)
{
    if (t->epfd < 0 || now < t->next_sweep)
        return;
    t->next_sweep = now + 1000;
    for (uint32_t i = 0; i < t->n_slots; i++) {
        cconn *c = t->conns[i];
        if (!c)
            continue;
        uint64_t limit = c->authed ? (uint64_t)t->lim.idle_ms : (uint64_t)t->lim.handshake_ms;
        uint64_t quiet = now > c->last_ms ? now - c->last_ms : 0;
        if (quiet >= limit && net_wbuf_pending(&c->wb) == 0) {
            t->st.client_idle_closed++;
            conn_refuse(t, c, NET_REFUSE_IDLE);
        } else if (quiet >= 1000) {
            conn_trim(t, c);
        }
    }
}

/* One round of the epoll set without blocking. */
static void client_pump(net_transport *t)
{
    struct epoll_event ev[64];
    int n = epoll_wait(t->epfd, ev, 64, 0);
    for (int i = 0; i < n; i++) {
        uint64_t id = ev[i].data.u64;
        if (id == LISTEN_ID) {
            client_accept(t);
            continue;
        }
        cconn *c = conn_get(t, id);
        if (!c)
            continue;
        if ((ev[i].events & EPOLLOUT) && !client_write(t, c))
            continue;
        if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            if (t->q_len < CLIENT_MAX_QUEUED)
                client_read(t, c);
        }
    }
}

int net_recv_client(net_transport *t, net_client_msg *out)
{
    if (!t || !out)
        return NET_EINVAL;
    memset(out, 0, sizeof(*out));
    if (t->epfd < 0)
        return NET_EAGAIN;
    if (t->q_len == 0)
        client_pump(t);
    if (t->q_len == 0)
        return NET_EAGAIN;
    *out = t->q[t->q_head];
    t->q_head = (t->q_head + 1) % t->q_cap;
    t->q_len--;
    return NET_OK;
}

bool net_transport_client_pending(const net_transport *t)
{
    return t && t->q_len > 0;
}

int net_reply_client(net_transport *t, net_client_msg *req, const void *buf, size_t len)
{
    if (!t || !req || (!buf && len))
        return NET_EINVAL;
    cconn *c = conn_get(t, req->conn);
    int rc = NET_OK;
    if (c && net_wbuf_pending(&c->wb) + len + NET_TRAILER_LEN > t->lim.max_unsent) {
        /* Not reading its answers: cut it off rather than grow. */
        t->st.client_mem_closed++;
        net_tp_refusal_log(t, "a client that does not read its replies (--client-max-unsent)",
                           t->st.client_mem_closed);
        conn_close(t, c);
        c = NULL;
    }
    if (!c) {
        rc = NET_EIO;
    } else if (conn_put_sealed(t, c, buf, len) != NET_OK) {
        rc = NET_ENOMEM;
    } else {
        if (!conn_account(t, c))
            rc = NET_EIO;
        else if (net_wbuf_pending(&c->wb) >= CLIENT_FLUSH_AT)
            client_write(t, c);
        else
            mark_dirty(t, c);
    }
    if (rc == NET_OK)
        t->st.client_replied++;
    else
        t->st.client_reply_failed++;
    net_client_msg_drop(req);
    return rc;
}

void net_client_msg_drop(net_client_msg *req)
{
    if (!req)
        return;
    free(req->body);
    req->body = NULL;
    req->len = 0;
    req->conn = 0;
}
