/*
 * wire_snap.c — the SNAP_REQ and SNAP_RESP frames (wire.h): a backup's
 * snapshot read from a node in ranges.  Same rules as wire.c: byte.h's
 * writer and reader, every field checked, the payload consumed exactly, and
 * a decoded chunk points into the input buffer.
 *
 *   SNAP_REQ   req_id u64, kind u8 (1 BEGIN, 2 READ), index u64, offset u64,
 *              len u32 (<= NET_SNAP_CHUNK_MAX)
 *   SNAP_RESP  req_id u64, status u8, index u64, term u64, total u64,
 *              data: u32 length (<= NET_SNAP_CHUNK_MAX) + bytes
 */
#include <string.h>

#include "net/wire.h"
#include "net/wire_internal.h"
#include "raftkv/byte.h"

int net_encode_snap_req(const net_snap_req *q, net_buf *out)
{
    if (!q || !out || (q->kind != NET_SNAP_BEGIN && q->kind != NET_SNAP_READ) ||
        q->len > NET_SNAP_CHUNK_MAX)
        return NET_EINVAL;
    bytes_w w = {.p = out->p, .cap = out->cap};
    bw_room(&w, NET_HDR_LEN);
    bw_u64(&w, q->req_id);
    bw_u8(&w, q->kind);
    bw_u64(&w, q->index);
    bw_u64(&w, q->offset);
    bw_u32(&w, q->len);
    return net_frame_seal(&w, out, NET_MSG_SNAP_REQ);
}

int net_decode_snap_req(const void *buf, size_t len, net_snap_req *q)
{
    if (!q)
        return NET_EINVAL;
    memset(q, 0, sizeof *q);
    bytes_r r;
    int rc = net_frame_open(buf, len, NET_MSG_SNAP_REQ, &r);
    if (rc == NET_OK) {
        q->req_id = br_u64(&r);
        q->kind = br_u8(&r);
        q->index = br_u64(&r);
        q->offset = br_u64(&r);
        q->len = br_u32(&r);
        if (r.bad)
            rc = NET_ETRUNC;
        else if ((q->kind != NET_SNAP_BEGIN && q->kind != NET_SNAP_READ) ||
                 q->len > NET_SNAP_CHUNK_MAX || br_left(&r) != 0)
            rc = NET_EMALFORMED;
    }
    if (rc != NET_OK)
        memset(q, 0, sizeof *q);
    return net_wire_count_error(rc);
}

int net_encode_snap_resp(const net_snap_resp *s, net_buf *out)
{
    if (!s || !out || s->status >= NET_ST_MAX || s->data_len > NET_SNAP_CHUNK_MAX ||
        (s->data_len && !s->data))
        return NET_EINVAL;
    bytes_w w = {.p = out->p, .cap = out->cap};
    bw_room(&w, NET_HDR_LEN);
    bw_u64(&w, s->req_id);
    bw_u8(&w, s->status);
    bw_u64(&w, s->index);
    bw_u64(&w, s->term);
    bw_u64(&w, s->total);
    bw_u32(&w, s->data_len);
    if (s->data_len)
        bw_put(&w, s->data, s->data_len);
    return net_frame_seal(&w, out, NET_MSG_SNAP_RESP);
}

int net_decode_snap_resp(const void *buf, size_t len, net_snap_resp *s)
{
    if (!s)
        return NET_EINVAL;
    memset(s, 0, sizeof *s);
    bytes_r r;
    int rc = net_frame_open(buf, len, NET_MSG_SNAP_RESP, &r);
    if (rc == NET_OK) {
        s->req_id = br_u64(&r);
        s->status = br_u8(&r);
        s->index = br_u64(&r);
        s->term = br_u64(&r);
        s->total = br_u64(&r);
        uint32_t n = br_u32(&r);
        if (!r.bad && (s->status >= NET_ST_MAX || n > NET_SNAP_CHUNK_MAX)) {
            rc = NET_EMALFORMED;
        } else {
            const uint8_t *p = br_take(&r, n);
            if (r.bad)
                rc = NET_ETRUNC;
            else if (br_left(&r) != 0)
                rc = NET_EMALFORMED;
            s->data = n ? p : NULL;
            s->data_len = n;
        }
    }
    if (rc != NET_OK)
        memset(s, 0, sizeof *s);
    return net_wire_count_error(rc);
}
