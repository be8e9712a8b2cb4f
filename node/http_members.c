/*
 * http_members.c — the membership routes of the HTTP API, over node.h's
 * node_member_* calls (the same the client port serves `hstore member`):
 *   GET    /v1/members                 the members (as this node sees them
 *                                      when it is not the leader)
 *   POST   /v1/members  body ID=HOST:PORT (or ?id=ID&addr=HOST:PORT)
 *                                      adds node ID (peer address) as a
 *                                      learner, promoted once caught up
 *   DELETE /v1/members/ID              removes node ID
 *   POST   /v1/transfer/ID             hands leadership to voter ID
 * Changes are made by the leader: another node answers 421 with the
 * leader's id and client address.  409 while another change is under way,
 * 404 for an unknown member, 400 for a change that does not apply, 503 when
 * it did not finish in time.
 */
#include "node/http_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void members_json(hbuf *b, int rc, const node_member_result *r)
{
    hbuf_printf(b, "{\"leader\":%" PRIu64 ",\"leader_addr\":", r->leader_id);
    hbuf_json_str(b, r->leader_addr, strnlen(r->leader_addr, sizeof r->leader_addr));
    hbuf_puts(b, ",\"message\":");
    hbuf_json_str(b, r->msg, strnlen(r->msg, sizeof r->msg));
    hbuf_puts(b, ",\"members\":[");
    for (uint32_t i = 0; i < r->conf.n && i < RAFT_MAX_NODES; i++) {
        hbuf_printf(b, "%s{\"id\":%" PRIu64 ",\"addr\":", i ? "," : "", r->conf.ids[i]);
        hbuf_json_str(b, r->conf.addrs[i], strnlen(r->conf.addrs[i], RAFT_ADDR_MAX));
        hbuf_printf(b, ",\"learner\":%s}", r->conf.learner[i] ? "true" : "false");
    }
    hbuf_puts(b, "]");
    if (rc != NODE_OK) {
        const char *code = rc == NODE_ENOTLEADER   ? "not_leader"
                           : rc == NODE_EBUSY      ? "busy"
                           : rc == NODE_ENOTMEMBER ? "not_found"
                           : rc == NODE_EINVAL     ? "bad_request"
                                                   : "unavailable";
        hbuf_puts(b, ",\"error\":");
        hbuf_json_str(b, code, strlen(code));
    }
    hbuf_puts(b, "}\n");
}

static void answer(http_resp *rs, int rc, const node_member_result *r)
{
    int status = 200;
    switch (rc) {
    case NODE_OK: break;
    case NODE_ENOTLEADER: status = 421; break;
    case NODE_EBUSY:
        status = 409;
        rs->retry_after_s = 1;
        break;
    case NODE_ENOTMEMBER: status = 404; break;
    case NODE_EINVAL: status = 400; break;
    default:
        status = 503;
        rs->retry_after_s = 1;
        break;
    }
    hbuf b = {0};
    members_json(&b, rc, r);
    int keep = rs->retry_after_s;
    http_reply_json(rs, status, &b);
    rs->retry_after_s = keep;
}

/* The ID at the end of a route; false (answered 400) when it is not one. */
static bool path_id(const http_req *rq, http_resp *rs, uint64_t *id)
{
    if (http_parse_u64(rq->rest, id) == 0 && *id != 0)
        return true;
    http_error(rs, 400, "bad_request", "expected a node id in the path, got '%s'", rq->rest);
    return false;
}

static void get_members(const http_req *rq, http_resp *rs, void *arg)
{
    (void)arg;
    node_member_result r;
    memset(&r, 0, sizeof r);
    int rc = node_member_list(rq->n, &r);
    /* A follower lists the members as it sees them, with the leader. */
    answer(rs, rc == NODE_ENOTLEADER && r.conf.n ? NODE_OK : rc, &r);
}

static void post_members(const http_req *rq, http_resp *rs, void *arg)
{
    (void)arg;
    char spec[300], host[256], addr[300];
    const char *qid = http_arg(rq, "id"), *qaddr = http_arg(rq, "addr");
    if (qid && qaddr) {
        snprintf(spec, sizeof spec, "%s=%s", qid, qaddr);
    } else if (rq->body_len > 0 && rq->body_len < sizeof spec) {
        memcpy(spec, rq->body, rq->body_len);
        spec[rq->body_len] = '\0';
        spec[strcspn(spec, "\r\n")] = '\0';
    } else {
        http_error(rs, 400, "bad_request", "expected a body ID=HOST:PORT or ?id=ID&addr=HOST:PORT");
        return;
    }
    char *eq = strchr(spec, '=');
    uint64_t id;
    int port;
    char err[200];
    if (!eq) {
        http_error(rs, 400, "bad_request", "expected ID=HOST:PORT, got '%s'", spec);
        return;
    }
    *eq = '\0';
    if (http_parse_u64(spec, &id) != 0 || id == 0) {
        http_error(rs, 400, "bad_request", "bad node id '%s'", spec);
        return;
    }
    if (http_parse_addr(eq + 1, host, sizeof host, &port, err, sizeof err) != 0) {
        http_error(rs, 400, "bad_request", "%s", err);
        return;
    }
    snprintf(addr, sizeof addr, "%s:%d", host, port);
    node_member_result r;
    memset(&r, 0, sizeof r);
    answer(rs, node_member_add(rq->n, id, addr, 0, &r), &r);
}

/* DELETE /v1/members/ID and POST /v1/transfer/ID: a change by node id
 * (arg: node_member_remove or node_member_transfer). */
typedef int (*member_by_id_fn)(node *n, uint64_t id, int timeout_ms, node_member_result *res);

static void member_by_id(const http_req *rq, http_resp *rs, void *arg)
{
    uint64_t id;
    if (!path_id(rq, rs, &id))
        return;
    node_member_result r;
    memset(&r, 0, sizeof r);
    answer(rs, (*(member_by_id_fn *)arg)(rq->n, id, 0, &r), &r);
}

static member_by_id_fn fn_remove = node_member_remove, fn_transfer = node_member_transfer;

void http_member_routes(node_http *h)
{
    node_http_route(h, "GET", "/v1/members", 0, get_members, NULL);
    node_http_route(h, "POST", "/v1/members", 0, post_members, NULL);
    node_http_route(h, "DELETE", "/v1/members/", HTTP_ROUTE_PREFIX, member_by_id, &fn_remove);
    node_http_route(h, "POST", "/v1/transfer/", HTTP_ROUTE_PREFIX, member_by_id, &fn_transfer);
}
