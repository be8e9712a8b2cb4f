/*
 * cmd_cli_net.c — the network side of the `hstore` client commands (cli_net.h).
 */
#include "tools/cli_net.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/auth.h"

/* The deadline in force, for messages. */
static double client_timeout_s = CLI_DEFAULT_TIMEOUT_S;
/* Where the secret came from ("" when none was found), for messages. */
static char secret_from[4200];

int cli_load_secret(const cli_client_opts *o)
{
    const char *path = o->secret_file, *how = "--secret-file";
    char dirpath[4200];
    if (path == NULL || path[0] == '\0') {
        path = getenv("HSTORE_SECRET_FILE");
        how = "HSTORE_SECRET_FILE";
    }
    if (path == NULL || path[0] == '\0') {
        char dir[4096];
        path = NULL;
        if (cli_cluster_dir(o->dir, dir, sizeof dir) == 0) {
            snprintf(dirpath, sizeof dirpath, "%s/secret", dir);
            if (access(dirpath, F_OK) == 0) {
                path = dirpath;
                how = "the cluster directory";
            }
        }
    }
    net_auth a;
    if (path == NULL) {
        net_auth_insecure(&a);
        net_auth_set_default(&a);
        secret_from[0] = '\0';
        return 0;
    }
    char err[600];
    if (net_auth_load(&a, path, err, sizeof err) != NET_OK) {
        cli_err("%s (from %s)", err, how);
        return -1;
    }
    net_auth_set_default(&a);
    snprintf(secret_from, sizeof secret_from, "%s", path);
    return 0;
}

int cli_up_secret(const char *dir, char *path, size_t cap)
{
    char err[600];
    net_auth a;
    if ((size_t)snprintf(path, cap, "%s/secret", dir) >= cap) {
        cli_err("%s: path too long", dir);
        return -1;
    }
    if (net_auth_generate(path, err, sizeof err) != NET_OK ||
        net_auth_load(&a, path, err, sizeof err) != NET_OK) {
        cli_err("%s", err);
        return -1;
    }
    net_auth_set_default(&a);
    return 0;
}

static void not_authorized(const char *what)
{
    if (secret_from[0])
        cli_err("%s: not authorized: the cluster refused the secret in %s (a different "
                "cluster's secret?)",
                what, secret_from);
    else
        cli_err("%s: not authorized: no cluster secret found; pass --secret-file F, set "
                "HSTORE_SECRET_FILE, or use the directory of `hstore up` (--dir)",
                what);
}

net_client *cli_connect(const cli_client_opts *o, int *exit_code)
{
    client_timeout_s = o->timeout_s;
    char spec[CLI_SPEC_MAX];
    if (cli_resolve_spec(o, spec, sizeof spec) != 0) {
        *exit_code = CLI_EXIT_USAGE;
        return NULL;
    }
    char err[256] = "";
    int ms = (int)(o->timeout_s * 1000.0);
    if (ms < 1)
        ms = 1;
    net_client *c = net_client_new(spec, ms, err, sizeof err);
    if (c == NULL) {
        cli_err("bad cluster SPEC '%s': %s; write it as ID=HOST:PORT,... e.g. "
                "1=127.0.0.1:7100,2=127.0.0.1:7102",
                spec, err[0] ? err : "cannot parse");
        *exit_code = CLI_EXIT_USAGE;
    }
    return c;
}

static int finish(int rc, void *reply, size_t reply_len, kv_reply *r, const char *what,
                  bool quiet_notfound, double timeout_s, bool read, bool quiet_efbig)
{
    memset(r, 0, sizeof *r);
    switch (rc) {
    case NET_OK: break;
    case NET_EUNAVAIL:
        cli_err("%s: no answer from the cluster within %.3g s%s. Is a majority of the nodes "
                "up? Check with `hstore status`, retry, or raise --timeout",
                what, timeout_s, read ? " (unavailable)" : ": the outcome is unknown");
        return CLI_EXIT_UNAVAIL;
    case NET_ESESSION:
        cli_err("%s: this client's session expired in the cluster; the outcome is unknown "
                "(read before you retry a non-idempotent change)",
                what);
        return CLI_EXIT_UNAVAIL;
    case NET_EBADREQ:
        cli_err("%s: the cluster rejected the request as malformed", what);
        return CLI_EXIT_USAGE;
    case NET_EAUTH: not_authorized(what); return CLI_EXIT_AUTH;
    case NET_ENOMEM: cli_err("%s: out of memory", what); return CLI_EXIT_UNAVAIL;
    default: cli_err("%s: %s", what, net_strerror(rc)); return CLI_EXIT_USAGE;
    }
    int d = kv_reply_decode(reply, reply_len, r);
    free(reply);
    if (d != 0) {
        cli_err("%s: the reply from the cluster is damaged; the outcome is unknown", what);
        return CLI_EXIT_UNAVAIL;
    }
    switch (r->status) {
    case 0: return CLI_EXIT_OK;
    case KV_EREPLYGONE:
        /* A duplicate of a command that was applied: done, reply not kept. */
        r->status = 0;
        return CLI_EXIT_OK;
    case ENOENT:
        if (!quiet_notfound)
            cli_err("%s: not found", what);
        return CLI_EXIT_NOTFOUND;
    case KV_ESTALE:
    case KV_ESESSION:
        kv_reply_free(r);
        cli_err("%s: the cluster reports this request as superseded; the outcome is unknown", what);
        return CLI_EXIT_UNAVAIL;
    default: {
        int st = r->status;
        kv_reply_free(r);
        if (st == EFBIG && quiet_efbig)
            return CLI_TOO_BIG;
        const char *hint = "";
        if (st == EISDIR)
            hint = " (it is a directory: list it with `hstore ls`)";
        else if (st == ENOTDIR)
            hint = " (a part of the path is a file, not a directory)";
        else if (st == EINVAL)
            hint = " (keys are paths like a/b: no empty, '.' or '..' parts, no NUL)";
        else if (st == ENOTEMPTY)
            hint = " (delete the keys under it first)";
        else if (st == EFBIG)
            hint = " (past the nodes' --max-file-size; or one append or write of more "
                   "than 1 MiB: put sends larger values in parts)";
        else if (st == ENOSPC)
            hint = " (the store is full: see the nodes' --max-store-bytes)";
        cli_err("%s: %s%s", what, kv_strstatus(st), hint);
        return CLI_EXIT_USAGE;
    }
    }
}

/* Encodes op, sends it (a read when it is one) and decodes the answer.
 * twice: sends a command, then, as a client does that lost the reply, the
 * very same (client id, seq) again, and decodes the second answer. */
static int run_op(net_client *c, const kv_op *op, kv_reply *r, const char *what,
                  bool quiet_notfound, bool quiet_efbig, bool twice)
{
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    memset(r, 0, sizeof *r);
    if (kv_op_encode(op, &enc, &enc_len) != 0) {
        cli_err("%s: cannot encode the request (too large?)", what);
        return CLI_EXIT_USAGE;
    }
    void *reply = NULL;
    size_t reply_len = 0;
    bool read = !twice && kv_op_is_read(enc, enc_len);
    uint64_t seq = twice ? net_client_next_seq(c) : 0;
    int rc = net_client_call(c, read, enc, enc_len, &reply, &reply_len);
    if (twice && rc == NET_OK) {
        /* Pretend the reply was lost: send the very same (client id, seq). */
        free(reply);
        reply = NULL;
        reply_len = 0;
        rc = net_client_call_seq(c, seq, enc, enc_len, &reply, &reply_len);
    }
    free(enc);
    return finish(rc, reply, reply_len, r, what, quiet_notfound, client_timeout_s, read,
                  quiet_efbig);
}

int cli_run_op(net_client *c, const kv_op *op, kv_reply *r, const char *what, bool quiet_notfound)
{
    return run_op(c, op, r, what, quiet_notfound, false, false);
}

int cli_run_op_quiet_efbig(net_client *c, const kv_op *op, kv_reply *r, const char *what)
{
    return run_op(c, op, r, what, false, true, false);
}

int cli_run_op_twice(net_client *c, const kv_op *op, kv_reply *r, const char *what)
{
    return run_op(c, op, r, what, false, false, true);
}

/* ---- status of every node ------------------------------------------------------ */

typedef struct status_job {
    const char *spec;
    int index;
    int timeout_ms;
    cli_node_status *out;
} status_job;

static void *status_thread(void *arg)
{
    status_job *j = arg;
    char err[128];
    net_client *c = net_client_new(j->spec, j->timeout_ms, err, sizeof err);
    if (c == NULL)
        return NULL;
    char addr[NET_ADDR_MAX] = "";
    int rc = net_client_status(c, j->index, &j->out->st, addr, sizeof addr);
    if (rc == NET_OK) {
        j->out->ok = true;
        net_client_status_counters(c, &j->out->auth_rejected, &j->out->conns_cut);
    }
    j->out->refused = rc == NET_EAUTH;
    net_client_free(c);
    return NULL;
}

int cli_status_all(const char *spec, int timeout_ms, cli_node_status *out, int max)
{
    uint64_t ids[RAFT_MAX_NODES];
    char hosts[RAFT_MAX_NODES][NET_ADDR_MAX];
    int ports[RAFT_MAX_NODES];
    char err[256] = "";
    int n = net_parse_spec(spec, ids, hosts, ports, RAFT_MAX_NODES, err, sizeof err);
    if (n < 0) {
        cli_err("bad cluster SPEC '%s': %s; write it as ID=HOST:PORT,...", spec, err);
        return -1;
    }
    if (n > max)
        n = max;
    pthread_t th[RAFT_MAX_NODES];
    bool started[RAFT_MAX_NODES] = {false};
    status_job jobs[RAFT_MAX_NODES];
    for (int i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].id = ids[i];
        snprintf(out[i].addr, sizeof out[i].addr, "%s:%d", hosts[i], ports[i]);
        jobs[i] = (status_job){spec, i, timeout_ms, &out[i]};
        started[i] = pthread_create(&th[i], NULL, status_thread, &jobs[i]) == 0;
        if (!started[i])
            status_thread(&jobs[i]);
    }
    for (int i = 0; i < n; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    return n;
}

uint64_t cli_leader_of(const cli_node_status *s, int n)
{
    uint64_t leader = 0, term = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].ok && s[i].st.role == RAFT_LEADER && (leader == 0 || s[i].st.term > term)) {
            leader = s[i].st.id ? s[i].st.id : s[i].id;
            term = s[i].st.term;
        }
    }
    return leader;
}

const char *cli_status_role(const cli_node_status *s)
{
    for (uint32_t k = 0; k < s->st.conf.n; k++)
        if (s->st.conf.ids[k] == s->id && s->st.conf.learner[k])
            return "learner"; /* a member that does not vote yet */
    return raft_role_name(s->st.role);
}

void cli_format_status(const cli_node_status *s, char *buf, size_t cap)
{
    if (!s->ok) {
        snprintf(buf, cap, "%" PRIu64 " %s %s", s->id, s->addr,
                 s->refused ? "unreachable (not authorized: wrong or missing cluster secret)"
                            : "unreachable");
        return;
    }
    const char *role = cli_status_role(s);
    snprintf(buf, cap,
             "%" PRIu64 " %s %s term=%" PRIu64 " commit=%" PRIu64 " applied=%" PRIu64
             " leader=%" PRIu64 " last=%" PRIu64 " snapshot=%" PRIu64 " auth_rejected=%" PRIu64
             " conns_cut=%" PRIu64,
             s->id, s->addr, role, s->st.term, s->st.commit, s->st.applied, s->st.leader,
             s->st.last_index, s->st.snapshot_index, s->auth_rejected, s->conns_cut);
}
