/*
 * cmd_status.c — `hstore status`: asks every node of the cluster for its Raft
 * status (all at once) and prints one line per node.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "tools/cli.h"
#include "tools/cli_net.h"
#include "tools/cmds.h"

static const char status_help[] =
    "Usage: hstore status [OPTIONS]\n"
    "\n"
    "Prints one line per node of the cluster, in SPEC order:\n"
    "  ID ADDRESS ROLE term=T commit=C applied=A leader=L last=I snapshot=S\n"
    "or, for a node that did not answer within the timeout:\n"
    "  ID ADDRESS unreachable\n"
    "ROLE is follower, pre-candidate, candidate or leader; leader=0 means the node\n"
    "knows no leader; last is the node's last log index, snapshot the index of its\n"
    "latest snapshot.  Every node is asked at the same time; the per-node wait is\n"
    "1 s unless --timeout says otherwise.  Then one line with the cluster's\n"
    "replicated limits (see `hstore limits`):\n"
    "  limits max-file-size=N max-store-bytes=M\n"
    "Exits 3 when no node answers.\n"
    "\n"
    "Examples:\n"
    "  hstore status\n"
    "  hstore status --cluster 1=127.0.0.1:7100,2=127.0.0.1:7102,3=127.0.0.1:7104\n"
    "\n";

int cmd_status(int argc, char **argv)
{
    cli_client_opts o;
    int code;
    int first = cli_parse_client_args(argc, argv, "status", status_help, &o, NULL, &code);
    if (first < 0)
        return code;
    if (first < argc) {
        cli_err("status takes no arguments; see `hstore status --help`");
        return CLI_EXIT_USAGE;
    }
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
    int answered = 0;
    for (int i = 0; i < n; i++) {
        char line[512];
        cli_format_status(&st[i], line, sizeof line);
        printf("%s\n", line);
        answered += st[i].ok;
    }
    if (cli_leader_of(st, n) != 0) {
        /* The limits are replicated state: one linearizable read, short
         * (the node lines above are the answer that must not wait). */
        int code2;
        cli_client_opts lo = o;
        lo.timeout_s = (ms < 500 ? ms : 500) / 1000.0;
        net_client *c = cli_connect(&lo, &code2);
        kv_statfs lim;
        if (c && cli_read_limits(c, &lim) == CLI_EXIT_OK)
            printf("limits max-file-size=%" PRIu64 " max-store-bytes=%" PRIu64 "\n",
                   lim.max_file_size, lim.bytes_limit);
        net_client_free(c);
    }
    fflush(stdout);
    if (answered == 0) {
        cli_err("no node answered within %d ms: are the nodes running? (`hstore up` starts a "
                "local cluster)",
                ms);
        return CLI_EXIT_UNAVAIL;
    }
    return CLI_EXIT_OK;
}
