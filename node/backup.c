/*
 * backup.c — the node's side of `hstore backup` (SNAP_REQ, net/wire.h): a
 * consistent copy of the state machine, read from the stored snapshot in
 * ranges, so that no reply is larger than NET_SNAP_CHUNK_MAX.
 *
 *   BEGIN  enters the loop as a read (req.backup): it waits for a read
 *          index like any linearizable read, and once this node applied it
 *          the answer is the applied index A, and the node wants a stored
 *          snapshot at A or later (snap.want): maybe_snapshot takes one now
 *          unless the stored one is that recent.  Every write acknowledged
 *          before BEGIN was sent is therefore in the backup.
 *   READ   answered at once from the stored snapshot (st_snap_stored_read):
 *          its index, term and stored length, and the range asked for when
 *          the index asked for is the one stored (a newer snapshot may
 *          replace it mid-way: the client then starts again on the new one;
 *          each range read puts the node's next snapshot off for
 *          SNAP_PIN_MS, as long as its log stays under twice the threshold,
 *          so that a copy under a steady write load gets to its end).
 */
#include "node/node_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void send_resp(node *n, net_client_msg *cm, const net_snap_resp *r)
{
    if (net_encode_snap_resp(r, &n->buf) == NET_OK)
        net_reply_client(n->tr, cm, n->buf.p, n->buf.len);
    else
        net_client_msg_drop(cm);
}

static uint8_t status_of(int node_status)
{
    return node_status == NODE_OK         ? NET_ST_OK
           : node_status == NODE_ESTOPPED ? NET_ST_SHUTTING_DOWN
           : node_status == NODE_EINVAL   ? NET_ST_BAD_REQUEST
                                          : NET_ST_UNAVAILABLE;
}

/* BEGIN served: q->read_index <= applied.  The point of the backup is the
 * applied index; the snapshot worker is asked for one at least that recent. */
void backup_point(node *n, req *q, uint64_t applied)
{
    q->read_index = applied;
    if (n->snap.want < applied)
        n->snap.want = applied;
    nlog(n, 2, "backup: a snapshot at index %" PRIu64 " or later is wanted", applied);
    req_finish(n, q, NODE_OK, NULL, 0);
}

/* The answer to BEGIN (req_finish of a backup request, any outcome). */
void backup_answer(node *n, req *q, int status, uint8_t *reply)
{
    net_snap_resp r = {.req_id = q->req_id, .status = status_of(status)};
    if (status == NODE_OK)
        r.index = q->read_index;
    send_resp(n, &q->cmsg, &r);
    free(reply);
    req_free(q);
}

static void answer_read(node *n, net_client_msg *cm, const net_snap_req *sq)
{
    net_snap_resp r = {.req_id = sq->req_id, .status = NET_ST_OK};
    /* Under the store's lock: the disk writer may be replacing the stored
     * snapshot (persist_snap_commit). */
    pthread_mutex_lock(&n->st_mu);
    r.index = st_snapshot_index(n->st);
    r.term = st_snapshot_term(n->st);
    r.total = st_snapshot_stored_bytes(n->st);
    if (sq->index == r.index && r.index && sq->len && sq->offset < r.total) {
        n->snap.pin_ms = now_ms() + SNAP_PIN_MS; /* see maybe_snapshot */
        uint64_t len = r.total - sq->offset < sq->len ? r.total - sq->offset : sq->len;
        if (n->chunk_cap < len) {
            uint8_t *p = realloc(n->chunk, len);
            if (!p) {
                pthread_mutex_unlock(&n->st_mu);
                net_client_msg_drop(cm);
                return;
            }
            n->chunk = p;
            n->chunk_cap = len;
        }
        char err[512];
        if (st_snap_stored_read(n->st, r.index, sq->offset, n->chunk, len, err, sizeof err) !=
            ST_OK) {
            nlog(n, 1, "backup: cannot read the stored snapshot: %s", err);
            r.status = NET_ST_UNAVAILABLE;
        } else {
            r.data = n->chunk;
            r.data_len = (uint32_t)len;
        }
    }
    pthread_mutex_unlock(&n->st_mu);
    send_resp(n, cm, &r);
}

/* A SNAP_REQ frame from the client port (recv_clients). */
void backup_request(node *n, net_client_msg *cm)
{
    net_snap_req sq;
    if (net_decode_snap_req(cm->body, cm->len, &sq) != NET_OK) {
        n->msgs_bad++;
        net_client_msg_drop(cm);
        return;
    }
    if (sq.kind == NET_SNAP_READ) {
        answer_read(n, cm, &sq);
        return;
    }
    req *q = req_alloc();
    if (!q) {
        net_client_msg_drop(cm);
        return;
    }
    q->origin = ORIGIN_NET;
    q->cmsg = *cm;
    q->req_id = sq.req_id;
    q->read = true;
    q->backup = true;
    q->deadline_ms = now_ms() + (uint64_t)n->cfg.op_timeout_ms;
    req_start(n, q);
}
