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

/* ---- a growing JSON text ---- */

typedef struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
} jbuf;

static void jputf(jbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = b->p ? vsnprintf(b->p + b->len, room, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (n >= 0 && cap - b->len <= (size_t)n)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q || b->oom) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void jstr(jbuf *b, const char *s)
{
    jputf(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            jputf(b, "\\%c", *c);
        else if (*c < 0x20)
            jputf(b, "\\u%04x", *c);
        else
            jputf(b, "%c", *c);
    }
    jputf(b, "\"");
}

static void reply_json(play_reply *r, int status, jbuf *b)
{
    if (b->oom || !b->p) {
        free(b->p);
        *r = (play_reply){500, "application/json",
                          (const unsigned char *)"{\"error\":\"out of memory\"}", 25, NULL};
        return;
    }
    *r = (play_reply){status, "application/json", (const unsigned char *)b->p, b->len, b->p};
}

static void reply_msg(play_reply *r, int status, const char *msg)
{
    jbuf b = {0};
    jputf(&b, "{");
    jputf(&b, status == 200 ? "\"ok\":true,\"message\":" : "\"error\":");
    jstr(&b, msg);
    jputf(&b, "}\n");
    reply_json(r, status, &b);
}

/* ---- GET /v1/play/cluster ---- */

static const char *role_name(raft_role role)
{
    return raft_role_name(role);
}

static void node_json(jbuf *b, uint64_t id, const char *peer, const raft_status *st,
                      const char *err, const play_proc *pp, bool partitioned)
{
    jputf(b, "{\"id\":%" PRIu64 ",\"peer\":", id);
    jstr(b, peer);
    if (st) {
        jputf(b, ",\"ok\":true,\"role\":");
        jstr(b, role_name(st->role));
        jputf(b,
              ",\"term\":%" PRIu64 ",\"leader\":%" PRIu64 ",\"commit\":%" PRIu64
              ",\"applied\":%" PRIu64 ",\"first_index\":%" PRIu64 ",\"last_index\":%" PRIu64
              ",\"snapshot_index\":%" PRIu64,
              st->term, st->leader, st->commit, st->applied, st->first_index, st->last_index,
              st->snapshot_index);
    } else {
        jputf(b, ",\"ok\":false,\"error\":");
        jstr(b, err);
    }
    if (pp->pid > 0)
        jputf(b, ",\"pid\":%d,\"running\":%s", (int)pp->pid, pp->running ? "true" : "false");
    jputf(b, ",\"partitioned\":%s}", partitioned ? "true" : "false");
}

static void cluster(node *n, play_reply *r)
{
    const node_config *cfg = node_get_config(n);
    char why[256] = "";
    bool control = play_ctl_on(why, sizeof why);
    char spec[RAFT_MAX_NODES * (RAFT_ADDR_MAX + 32)];
    size_t sl = 0;
    for (int i = 0; i < cfg->n_peers; i++)
        sl += (size_t)snprintf(spec + sl, sizeof spec - sl, "%s%" PRIu64 "=%s:%d", i ? "," : "",
                               cfg->peers[i].id, cfg->peers[i].host, cfg->peers[i].port);
    char err[256];
    net_client *c = net_client_new(spec, STATUS_TIMEOUT_MS, err, sizeof err);
    if (c)
        net_client_set_auth(c, &cfg->auth);

    jbuf b = {0};
    jputf(&b, "{\"self\":%" PRIu64 ",\"control\":%s,\"control_reason\":", cfg->id,
          control ? "true" : "false");
    jstr(&b, why);
    jputf(&b, ",\"nodes\":[");
    for (int i = 0; i < cfg->n_peers; i++) {
        const node_peer *p = &cfg->peers[i];
        char peer[RAFT_ADDR_MAX + 16];
        snprintf(peer, sizeof peer, "%s:%d", p->host, p->port);
        raft_status st;
        const raft_status *got = NULL;
        const char *e = "no answer";
        if (p->id == cfg->id) {
            node_status(n, &st);
            got = &st;
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
        play_ctl_proc(p->id, &pp);
        bool part = p->id == cfg->id ? node_partitioned(n) : pp.partitioned;
        if (i)
            jputf(&b, ",");
        node_json(&b, p->id, peer, got, e, &pp, part);
    }
    jputf(&b, "]}\n");
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
