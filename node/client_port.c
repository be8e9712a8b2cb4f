/*
 * client_port.c — the node's side of the client protocol (net/wire.h):
 * frames from `hstore` clients over TCP are checked and decoded here and
 * enter the loop as requests (req_prepare, the same path node_submit
 * takes); their answers go back as client responses (client_answer), a
 * status request is answered at once, a backup's requests go to
 * backup.c and membership requests to member.c.
 */
#include "node/node_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftkv/byte.h"

/* Answers a request of the client port: the state machine's reply with the
 * leader's client address, so the client goes straight to it next time; a
 * REGISTER gets the session id itself. */
void client_answer(node *n, req *q, int status, uint8_t *reply, size_t reply_len)
{
    if (q->backup) {
        backup_answer(n, q, status, reply);
        return;
    }
    ntrace(n, "answer: req %" PRIu64 ", status %d", q->req_id, status);
    net_client_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.req_id = q->req_id;
    resp.status = status == NODE_OK         ? NET_ST_OK
                  : status == NODE_ESTOPPED ? NET_ST_SHUTTING_DOWN
                  : status == NODE_EINVAL   ? NET_ST_BAD_REQUEST
                                            : NET_ST_UNAVAILABLE;
    resp.leader_id = n->last_leader;
    memcpy(resp.leader_addr, n->leader_caddr, sizeof resp.leader_addr);
    resp.reply = reply;
    resp.reply_len = (uint32_t)reply_len;
    uint8_t sid[8];
    if (status == NODE_OK && q->reg) {
        /* The session id itself, not the state machine's reply. */
        uint64_t id = kv_reply_session_id(reply, reply_len);
        byte_put64(sid, id);
        resp.reply = sid;
        resp.reply_len = 8;
        if (!id)
            resp.status = NET_ST_UNAVAILABLE;
    } else if (status == NODE_OK && !q->read &&
               kv_reply_peek_status(reply, reply_len) == KV_ESESSION) {
        resp.status = NET_ST_SESSION_EXPIRED;
    }
    if (net_encode_client_resp(&resp, &n->buf) == NET_OK)
        net_reply_client(n->tr, &q->cmsg, n->buf.p, n->buf.len);
    else
        net_client_msg_drop(&q->cmsg);
    free(reply);
    req_free(q);
}

/* A status request: answered from the loop's own view, without a round. */
static void answer_status(node *n, net_client_msg *cm, uint64_t req_id)
{
    net_status_resp sr;
    memset(&sr, 0, sizeof sr);
    sr.req_id = req_id;
    snprintf(sr.addr, sizeof sr.addr, "%s", n->self_addr);
    raft_status_get(n->r, &sr.st);
    net_transport_stats ts;
    net_transport_get_stats(n->tr, &ts);
    sr.auth_rejected =
        ts.peer_auth_failed + ts.peer_replayed + ts.client_auth_failed + n->msgs_forged;
    sr.conns_cut =
        ts.client_refused + ts.client_idle_closed + ts.client_mem_closed + ts.client_too_large;
    if (net_encode_status_resp(&sr, &n->buf) == NET_OK)
        net_reply_client(n->tr, cm, n->buf.p, n->buf.len);
    else
        net_client_msg_drop(cm);
}

/* Takes in the frames waiting on the client port (at most 4096 per call):
 * a status request is answered at once, a request enters the loop, anything
 * else is dropped and counted. */
void recv_clients(node *n)
{
    for (int budget = 0; budget < 4096; budget++) {
        net_client_msg cm;
        if (net_recv_client(n->tr, &cm) != NET_OK)
            return;
        int type = net_frame_check(cm.body, cm.len, NULL);
        if (type == NET_MSG_STATUS_REQ) {
            uint64_t rid;
            if (net_decode_status_req(cm.body, cm.len, &rid) == NET_OK)
                answer_status(n, &cm, rid);
            else
                net_client_msg_drop(&cm);
            continue;
        }
        if (type == NET_MSG_MEMBER_REQ) {
            member_request(n, &cm);
            continue;
        }
        if (type == NET_MSG_SNAP_REQ) {
            backup_request(n, &cm);
            continue;
        }
        net_client_req cr;
        if (type != NET_MSG_CLIENT_REQ || net_decode_client_req(cm.body, cm.len, &cr) != NET_OK) {
            n->msgs_bad++;
            net_client_msg_drop(&cm);
            continue;
        }
        req *q = req_alloc();
        if (!q) {
            net_client_msg_drop(&cm);
            continue;
        }
        q->origin = ORIGIN_NET;
        q->cmsg = cm;
        q->req_id = cr.req_id;
        ntrace(n, "client in: req %" PRIu64 "%s", cr.req_id,
               (cr.flags & NET_REQ_READ) ? " (read)" : "");
        q->deadline_ms = now_ms() + (uint64_t)n->cfg.op_timeout_ms;
        /* The op stays in the frame (q->cmsg), which lives as long as q. */
        node_cmd c = {.op = cr.op,
                      .len = cr.op_len,
                      .read = (cr.flags & NET_REQ_READ) != 0,
                      .client_id = cr.client_id,
                      .seq = cr.seq};
        int crc = req_prepare(q, &c, (cr.flags & NET_REQ_REGISTER) != 0, false);
        if (crc != NODE_OK) {
            req_finish(n, q, crc, NULL, 0);
            continue;
        }
        req_start(n, q);
    }
}
