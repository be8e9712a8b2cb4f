/*
 * wire_member.c — the MEMBER_REQ and MEMBER_RESP frames (wire.h): listing
 * and changing the cluster's members.  Same rules as wire.c: byte.h's writer
 * and reader, every field checked, the payload consumed exactly.
 *
 *   MEMBER_REQ   req_id u64, op u8 (1..4), id u64, addr: u8 length + bytes,
 *                timeout_ms u32
 *   MEMBER_RESP  req_id u64, status u8, leader_id u64, leader_addr: u8 length
 *                + bytes, msg: u8 length + bytes, conf (conf_codec.h)
 */
#include <string.h>

#include "net/wire.h"
#include "net/wire_internal.h"
#include "raftkv/byte.h"
#include "raftkv/conf_codec.h"

/* A string of fewer than cap bytes, no NUL inside: u8 length + bytes. */
static void put_str(bytes_w *w, const char *s, size_t cap)
{
    size_t l = strnlen(s, cap - 1);
    bw_u8(w, (uint8_t)l);
    bw_put(w, s, l);
}

static bool get_str(bytes_r *r, char *s, size_t cap)
{
    size_t l = br_u8(r);
    const uint8_t *p = l < cap ? br_take(r, l) : NULL;
    if (r->bad || !p || memchr(p, 0, l)) {
        r->bad = true;
        return false;
    }
    memcpy(s, p, l);
    s[l] = 0;
    return true;
}

int net_encode_member_req(const net_member_req *q, net_buf *out)
{
    if (!q || !out || q->op < NET_MEMBER_LIST || q->op > NET_MEMBER_TRANSFER)
        return NET_EINVAL;
    bytes_w w = {.p = out->p, .cap = out->cap};
    bw_room(&w, NET_HDR_LEN);
    bw_u64(&w, q->req_id);
    bw_u8(&w, q->op);
    bw_u64(&w, q->id);
    put_str(&w, q->addr, sizeof q->addr);
    bw_u32(&w, q->timeout_ms);
    return net_frame_seal(&w, out, NET_MSG_MEMBER_REQ);
}

int net_decode_member_req(const void *buf, size_t len, net_member_req *q)
{
    if (!q)
        return NET_EINVAL;
    memset(q, 0, sizeof *q);
    bytes_r r;
    int rc = net_frame_open(buf, len, NET_MSG_MEMBER_REQ, &r);
    if (rc == NET_OK) {
        q->req_id = br_u64(&r);
        q->op = br_u8(&r);
        q->id = br_u64(&r);
        bool ok = get_str(&r, q->addr, sizeof q->addr);
        q->timeout_ms = br_u32(&r);
        if (r.bad || !ok)
            rc = NET_ETRUNC;
        else if (q->op < NET_MEMBER_LIST || q->op > NET_MEMBER_TRANSFER || br_left(&r) != 0)
            rc = NET_EMALFORMED;
    }
    if (rc != NET_OK)
        memset(q, 0, sizeof *q);
    return net_wire_count_error(rc);
}

int net_encode_member_resp(const net_member_resp *s, net_buf *out)
{
    if (!s || !out || s->status >= NET_MST_MAX || s->conf.n > RAFT_MAX_NODES)
        return NET_EINVAL;
    bytes_w w = {.p = out->p, .cap = out->cap};
    bw_room(&w, NET_HDR_LEN);
    bw_u64(&w, s->req_id);
    bw_u8(&w, s->status);
    bw_u64(&w, s->leader_id);
    put_str(&w, s->leader_addr, sizeof s->leader_addr);
    put_str(&w, s->msg, sizeof s->msg);
    raft_conf_put(&w, &s->conf);
    return net_frame_seal(&w, out, NET_MSG_MEMBER_RESP);
}

int net_decode_member_resp(const void *buf, size_t len, net_member_resp *s)
{
    if (!s)
        return NET_EINVAL;
    memset(s, 0, sizeof *s);
    bytes_r r;
    int rc = net_frame_open(buf, len, NET_MSG_MEMBER_RESP, &r);
    if (rc == NET_OK) {
        s->req_id = br_u64(&r);
        s->status = br_u8(&r);
        s->leader_id = br_u64(&r);
        bool ok = get_str(&r, s->leader_addr, sizeof s->leader_addr) &&
                  get_str(&r, s->msg, sizeof s->msg) && raft_conf_get(&r, &s->conf);
        if (r.bad || !ok)
            rc = NET_ETRUNC;
        else if (s->status >= NET_MST_MAX || br_left(&r) != 0)
            rc = NET_EMALFORMED;
    }
    if (rc != NET_OK)
        memset(s, 0, sizeof *s);
    return net_wire_count_error(rc);
}
