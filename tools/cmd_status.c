/*
 * cmd_status.c — `hstore status`: asks every node of the cluster for its Raft
 * status (all at once) and prints one line per node, or one JSON object.
 * A node's pid is shown when the cluster is the one `hstore up` started in
 * DIR (its DIR/pids names the node's process, and that process runs).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "tools/cli.h"
#include "tools/cli_net.h"
#include "tools/cmds.h"

static const char status_help[] =
    "Usage: hstore status [--json] [OPTIONS]\n"
    "\n"
    "Prints one line per node of the cluster, in SPEC order:\n"
    "  ID ADDRESS ROLE term=T commit=C applied=A leader=L last=I snapshot=S [pid=P]\n"
    "or, for a node that did not answer within the timeout:\n"
    "  ID ADDRESS unreachable [pid=P]\n"
    "ROLE is follower, learner (a member that does not vote yet: it is catching up,\n"
    "see `hstore member`), pre-candidate, candidate or leader; leader=0 means the node\n"
    "knows no leader; last is the node's last log index, snapshot the index of its\n"
    "latest snapshot; pid is shown for a cluster that `hstore up` started in DIR.\n"
    "Every node is asked at the same time; the per-node wait is 1 s unless\n"
    "--timeout says otherwise.  Then one line with the cluster's replicated limits\n"
    "(see `hstore limits`):\n"
    "  limits max-file-size=N max-store-bytes=M\n"
    "Exits 3 when no node answers.\n"
    "  --json             one JSON object instead: {\"nodes\": [{\"id\": 1, \"address\": ...,\n"
    "                     \"reachable\": true, \"role\": ..., \"term\": ..., \"pid\": ...}, ...],\n"
    "                     \"limits\": {\"max_file_size\": N, \"max_store_bytes\": M}}\n"
    "\n"
    "Examples:\n"
    "  hstore status\n"
    "  hstore status --json | jq '.nodes[] | select(.role == \"leader\") | .id'\n"
    "  hstore status --cluster 1=127.0.0.1:7100,2=127.0.0.1:7102,3=127.0.0.1:7104\n"
    "\n";

/* pids[id] of the nodes `hstore up` started in DIR, when spec is that
 * cluster's and the process still runs; 0 where not known. */
static void known_pids(const cli_client_opts *o, const char *spec, pid_t *pids, int max)
{
    memset(pids, 0, sizeof(pid_t) * (size_t)(max + 1));
    char dir[4096], path[4200], rec[CLI_SPEC_MAX] = "";
    if (cli_cluster_dir(o->dir, dir, sizeof dir) != 0)
        return;
    snprintf(path, sizeof path, "%s/cluster", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    if (fgets(rec, sizeof rec, f) == NULL)
        rec[0] = '\0';
    fclose(f);
    rec[strcspn(rec, "\r\n")] = '\0';
    if (strcmp(rec, spec) != 0)
        return;
    snprintf(path, sizeof path, "%s/pids", dir);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    unsigned long long id;
    int pid;
    while (fscanf(f, "%llu %d", &id, &pid) == 2)
        if (id >= 1 && id <= (unsigned long long)max && pid > 0 &&
            (kill(pid, 0) == 0 || errno == EPERM))
            pids[id] = pid;
    fclose(f);
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void print_json(const cli_node_status *st, int n, const pid_t *pids, const kv_statfs *lim)
{
    printf("{\"nodes\": [");
    for (int i = 0; i < n; i++) {
        const cli_node_status *s = &st[i];
        printf("%s{\"id\": %" PRIu64 ", \"address\": ", i ? ", " : "", s->id);
        json_string(s->addr);
        printf(", \"reachable\": %s", s->ok ? "true" : "false");
        if (s->ok)
            printf(", \"role\": \"%s\", \"term\": %" PRIu64 ", \"commit\": %" PRIu64
                   ", \"applied\": %" PRIu64 ", \"leader\": %" PRIu64 ", \"last\": %" PRIu64
                   ", \"snapshot\": %" PRIu64,
                   cli_status_role(s), s->st.term, s->st.commit, s->st.applied, s->st.leader,
                   s->st.last_index, s->st.snapshot_index);
        if (s->id <= RAFT_MAX_NODES && pids[s->id])
            printf(", \"pid\": %d", (int)pids[s->id]);
        else
            printf(", \"pid\": null");
        putchar('}');
    }
    printf("]");
    if (lim != NULL)
        printf(", \"limits\": {\"max_file_size\": %" PRIu64 ", \"max_store_bytes\": %" PRIu64 "}",
               lim->max_file_size, lim->bytes_limit);
    printf("}\n");
}

/* Parses `hstore status` arguments.  -1 to go on; else the exit code. */
static int status_parse_args(int argc, char **argv, cli_client_opts *o, bool *json)
{
    static const struct option longopts[] = {
        CLI_CLIENT_LONGOPTS,
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_client_getopt_start(o);
    *json = false;
    int c;
    while ((c = cli_client_getopt(argc, argv, ":h", longopts, o)) != -1) {
        if (c == CLI_OPT_BAD)
            return CLI_EXIT_USAGE;
        if (c == 'j') {
            *json = true;
        } else if (c == 'h') {
            fputs(status_help, stdout);
            fputs(cli_client_opts_help, stdout);
            return CLI_EXIT_OK;
        } else {
            return cli_getopt_error(c, argv, "status");
        }
    }
    if (optind < argc) {
        cli_err("status takes no arguments; see `hstore status --help`");
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* The cluster's replicated limits: one linearizable read, short (the node
 * lines are the answer that must not wait) but long enough for a leader
 * just elected, which makes nothing visible for 1.1 read leases (550 ms by
 * default), asked only when some node knows a leader.  True with *lim set
 * when it answered. */
static bool read_limits(const cli_client_opts *o, int ms, const cli_node_status *st, int n,
                        kv_statfs *lim)
{
    if (cli_leader_of(st, n) == 0)
        return false;
    int code2;
    cli_client_opts lo = *o;
    lo.timeout_s = (ms < 1500 ? ms : 1500) / 1000.0;
    net_client *nc = cli_connect(&lo, &code2);
    bool have_lim = nc != NULL && cli_read_limits(nc, lim) == CLI_EXIT_OK;
    net_client_free(nc);
    return have_lim;
}

/* One line per node (its pid where known), then the limits. */
static void print_lines(const cli_node_status *st, int n, const pid_t *pids, const kv_statfs *lim)
{
    for (int i = 0; i < n; i++) {
        char line[512];
        cli_format_status(&st[i], line, sizeof line);
        if (st[i].id <= RAFT_MAX_NODES && pids[st[i].id])
            printf("%s pid=%d\n", line, (int)pids[st[i].id]);
        else
            printf("%s\n", line);
    }
    if (lim != NULL)
        printf("limits max-file-size=%" PRIu64 " max-store-bytes=%" PRIu64 "\n", lim->max_file_size,
               lim->bytes_limit);
}

int cmd_status(int argc, char **argv)
{
    cli_client_opts o;
    bool json;
    int rc = status_parse_args(argc, argv, &o, &json);
    if (rc >= 0)
        return rc;
    char spec[CLI_SPEC_MAX];
    if (cli_resolve_spec(&o, spec, sizeof spec) != 0)
        return CLI_EXIT_USAGE;
    int ms = o.timeout_set ? (int)(o.timeout_s * 1000) : 1000;
    if (ms < 1)
        ms = 1;
    cli_node_status st[RAFT_MAX_NODES];
    int n = cli_status_all(spec, ms, st, RAFT_MAX_NODES);
    if (n < 0)
        return CLI_EXIT_USAGE;
    pid_t pids[RAFT_MAX_NODES + 1];
    known_pids(&o, spec, pids, RAFT_MAX_NODES);
    int answered = 0, refused = 0;
    for (int i = 0; i < n; i++) {
        answered += st[i].ok;
        refused += st[i].refused;
    }
    kv_statfs lim;
    bool have_lim = read_limits(&o, ms, st, n, &lim);
    if (json)
        print_json(st, n, pids, have_lim ? &lim : NULL);
    else
        print_lines(st, n, pids, have_lim ? &lim : NULL);
    fflush(stdout);
    if (answered == 0 && refused > 0) {
        cli_err("not authorized: the nodes refused this client's cluster secret (or its lack of "
                "one); pass --secret-file F or set HSTORE_SECRET_FILE");
        return CLI_EXIT_AUTH;
    }
    if (answered == 0) {
        cli_err("no node answered within %d ms: are the nodes running? (`hstore up` starts a "
                "local cluster)",
                ms);
        return CLI_EXIT_UNAVAIL;
    }
    return CLI_EXIT_OK;
}
