/*
 * play.c — the playground's routes (play.h): the page's compiled-in files,
 * GET /v1/play/cluster (every member's status in one JSON answer) and the
 * dispatch of POST /v1/play/nodes/ID/ACTION to node/play_ctl.c.
 *
 * The page asks one node for the whole cluster because a browser may only
 * fetch from the page's own origin: this node asks every other member for
 * its Raft status over the member's client port (net/client.h, with the
 * cluster's keys; 400 ms per member, so a member that does not answer shows
 * as down rather than holding the page up).
 */
#include "node/play.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/client.h"
#include "node/play_assets.h"
#include "node/http_util.h"
#include "node/play_ctl.h"

#define STATUS_TIMEOUT_MS 400

void play_reply_free(play_reply *r)
{
    if (r) {
        free(r->body);
        r->body = NULL;
    }
}

const play_asset *play_asset_find(const char *path)
{
    size_t l = strcspn(path, "?#");
    for (const play_asset *a = play_assets; a->path; a++)
        if (strlen(a->path) == l && !strncmp(a->path, path, l))
            return a;
    return NULL;
}

bool play_serve_file(const char *path, play_reply *r)
{
    if (!strcmp(path, "/index.html"))
        path = "/";
    const play_asset *a = play_asset_find(path);
    if (!a)
        return false;
    *r = (play_reply){200, a->type, a->data, a->len, NULL};
    return true;
}

static void reply_json(play_reply *r, int status, hbuf *b)
{
    size_t len = 0;
    char *p = b->oom ? NULL : hbuf_take(b, &len);
    hbuf_free(b);
    if (!p) {
        static const char oom[] = "{\"error\":\"no_memory\",\"message\":\"out of memory\"}\n";
        *r =
            (play_reply){500, "application/json", (const unsigned char *)oom, sizeof oom - 1, NULL};
        return;
    }
    *r = (play_reply){status, "application/json", (const unsigned char *)p, len, p};
}

/* {"ok":true,"message":...} (200), else {"error":CODE,"message":...} as
 * the HTTP server's own errors (node/http.h). */
static void reply_msg(play_reply *r, int status, const char *msg)
{
    const char *code = status == 200   ? NULL
                       : status == 400 ? "bad_request"
                       : status == 403 ? "forbidden"
                       : status == 404 ? "not_found"
                       : status == 405 ? "method_not_allowed"
                       : status == 409 ? "conflict"
                                       : "internal";
    hbuf b = {0};
    if (code)
        hbuf_printf(&b, "{\"error\":\"%s\",\"message\":", code);
    else
        hbuf_puts(&b, "{\"ok\":true,\"message\":");
    hbuf_json_str(&b, msg, strlen(msg));
    hbuf_puts(&b, "}\n");
    reply_json(r, status, &b);
}

/* ---- GET /v1/play/cluster ---- */

static void node_json(hbuf *b, uint64_t id, const char *peer, const raft_status *st,
                      const char *err, const play_proc *pp, bool partitioned, bool learner)
{
    hbuf_printf(b, "{\"id\":%" PRIu64 ",\"peer\":", id);
    hbuf_json_str(b, peer, strlen(peer));
    if (st) {
        hbuf_printf(b, ",\"ok\":true,\"role\":\"%s\"", raft_role_name(st->role));
        hbuf_printf(b,
                    ",\"term\":%" PRIu64 ",\"leader\":%" PRIu64 ",\"commit\":%" PRIu64
                    ",\"applied\":%" PRIu64 ",\"first_index\":%" PRIu64 ",\"last_index\":%" PRIu64
                    ",\"snapshot_index\":%" PRIu64,
                    st->term, st->leader, st->commit, st->applied, st->first_index, st->last_index,
                    st->snapshot_index);
    } else {
        hbuf_puts(b, ",\"ok\":false,\"error\":");
        hbuf_json_str(b, err, strlen(err));
    }
    if (pp->pid > 0)
        hbuf_printf(b, ",\"pid\":%d,\"running\":%s", (int)pp->pid, pp->running ? "true" : "false");
    hbuf_printf(b, ",\"partitioned\":%s,\"learner\":%s}", partitioned ? "true" : "false",
                learner ? "true" : "false");
}

/* The members: the configuration in force as this node knows it, else (a
 * node that has not received one yet) its --cluster. */
typedef struct members {
    int n;
    uint64_t ids[RAFT_MAX_NODES];
    char addrs[RAFT_MAX_NODES][RAFT_ADDR_MAX + 16];
    bool learner[RAFT_MAX_NODES];
} members;

static void get_members(node *n, const raft_status *self, members *m)
{
    const node_config *cfg = node_get_config(n);
    memset(m, 0, sizeof *m);
    if (self->conf.n > 0) {
        for (uint32_t i = 0; i < self->conf.n && i < RAFT_MAX_NODES; i++) {
            m->ids[i] = self->conf.ids[i];
            snprintf(m->addrs[i], sizeof m->addrs[i], "%.*s", RAFT_ADDR_MAX, self->conf.addrs[i]);
            m->learner[i] = self->conf.learner[i];
        }
        m->n = (int)self->conf.n;
        return;
    }
    for (int i = 0; i < cfg->n_peers && i < RAFT_MAX_NODES; i++) {
        m->ids[i] = cfg->peers[i].id;
        snprintf(m->addrs[i], sizeof m->addrs[i], "%s:%d", cfg->peers[i].host, cfg->peers[i].port);
    }
    m->n = cfg->n_peers;
}

static void cluster(node *n, play_reply *r)
{
    const node_config *cfg = node_get_config(n);
    char why[256] = "";
    bool control = play_ctl_on(why, sizeof why);
    raft_status self;
    node_status(n, &self);
    self.applied = node_applied_index(n);
    members m;
    get_members(n, &self, &m);
    char spec[RAFT_MAX_NODES * (RAFT_ADDR_MAX + 40)];
    size_t sl = 0;
    for (int i = 0; i < m.n && sl < sizeof spec; i++)
        sl += (size_t)snprintf(spec + sl, sizeof spec - sl, "%s%" PRIu64 "=%s", i ? "," : "",
                               m.ids[i], m.addrs[i]);
    char err[256] = "no members known";
    net_client *c = m.n > 0 ? net_client_new(spec, STATUS_TIMEOUT_MS, err, sizeof err) : NULL;
    if (c)
        net_client_set_auth(c, &cfg->auth);

    hbuf b = {0};
    hbuf_printf(&b, "{\"self\":%" PRIu64 ",\"control\":%s,\"control_reason\":", cfg->id,
                control ? "true" : "false");
    hbuf_json_str(&b, why, strlen(why));
    hbuf_printf(&b, ",\"nodes\":[");
    for (int i = 0; i < m.n; i++) {
        raft_status st;
        const raft_status *got = NULL;
        const char *e = "no answer";
        if (m.ids[i] == cfg->id) {
            got = &self;
        } else if (!c) {
            e = err;
        } else {
            int rc = net_client_status(c, i, &st, NULL, 0);
            if (rc == NET_OK)
                got = &st;
            else if (rc == NET_EAUTH)
                e = "refused this node's keys";
        }
        play_proc pp;
        play_ctl_proc(m.ids[i], &pp);
        bool part = m.ids[i] == cfg->id ? node_partitioned(n) : pp.partitioned;
        if (i)
            hbuf_printf(&b, ",");
        node_json(&b, m.ids[i], m.addrs[i], got, e, &pp, part, m.learner[i]);
    }
    hbuf_printf(&b, "]}\n");
    net_client_free(c);
    reply_json(r, 200, &b);
}

/* ---- dispatch ---- */

bool play_handle(node *n, const char *method, const char *path, play_reply *r)
{
    static const char base[] = "/v1/play/";
    if (strncmp(path, base, sizeof base - 1) != 0)
        return false;
    const char *rest = path + sizeof base - 1;
    if (!strcmp(rest, "cluster")) {
        if (strcmp(method, "GET") != 0)
            reply_msg(r, 405, "GET /v1/play/cluster");
        else
            cluster(n, r);
        return true;
    }
    unsigned long long id;
    char action[16], tail;
    if (sscanf(rest, "nodes/%llu/%15[a-z]%c", &id, action, &tail) != 2 || id == 0) {
        reply_msg(r, 404,
                  "no such playground route: GET /v1/play/cluster, "
                  "POST /v1/play/nodes/ID/{stop,kill,restart,partition,heal}");
        return true;
    }
    if (strcmp(method, "POST") != 0) {
        reply_msg(r, 405, "the control routes take POST");
        return true;
    }
    char msg[1024];
    int status = play_ctl_act((uint64_t)id, action, msg, sizeof msg);
    reply_msg(r, status, msg);
    return true;
}

/* ---- the HTTP server's routes ---- */

static void to_resp(play_reply *r, http_resp *rs)
{
    char *body = r->body;
    if (!body) { /* a compiled-in file: the server frees what it sends */
        body = malloc(r->len ? r->len : 1);
        if (!body) {
            http_error(rs, 500, "no_memory", "out of memory");
            return;
        }
        memcpy(body, r->data, r->len);
    }
    http_reply(rs, r->status, r->type, body, r->len);
}

static void route_file(const http_req *rq, http_resp *rs, void *arg)
{
    (void)arg;
    play_reply r;
    if (!play_serve_file(rq->path, &r)) {
        http_error(rs, 404, "not_found", "no file %s in the playground", rq->path);
        return;
    }
    to_resp(&r, rs);
}

static void route_play(const http_req *rq, http_resp *rs, void *arg)
{
    (void)arg;
    play_reply r;
    if (!play_handle(rq->n, rq->method, rq->path, &r)) {
        http_error(rs, 404, "not_found", "no route %s", rq->path);
        return;
    }
    to_resp(&r, rs);
}

void play_routes(node_http *h)
{
    node_http_route(h, "GET", "/", HTTP_ROUTE_PUBLIC, route_file, NULL);
    node_http_route(h, "GET", "/index.html", HTTP_ROUTE_PUBLIC, route_file, NULL);
    node_http_route(h, "GET", "/play/", HTTP_ROUTE_PREFIX | HTTP_ROUTE_PUBLIC, route_file, NULL);
    node_http_route(h, "GET", "/v1/play/cluster", 0, route_play, NULL);
    node_http_route(h, "POST", "/v1/play/nodes/", HTTP_ROUTE_PREFIX, route_play, NULL);
}

int play_start(node *n, const char *up_dir, char *err, size_t errlen)
{
    if (!up_dir)
        return 0;
    return play_ctl_start(n, up_dir, err, errlen);
}

void play_stop(void)
{
    play_ctl_stop();
}
