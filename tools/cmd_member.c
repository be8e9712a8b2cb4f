/*
 * cmd_member.c — `hstore member list | add ID=HOST:PORT | remove ID` and
 * `hstore transfer ID`: the cluster's membership from the command line, and
 * cli_member_call, the one way the tools (these commands, `hstore node
 * --join`, `hstore up`) send a membership request: to any node of the SPEC,
 * following the answers that name the leader, until the deadline.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/cli_net.h"
#include "tools/cmds.h"

static const char member_help[] =
    "Usage: hstore member list [OPTIONS]\n"
    "       hstore member add ID=HOST:PORT [OPTIONS]\n"
    "       hstore member remove ID [OPTIONS]\n"
    "\n"
    "list    one line per member, as the answering node sees the configuration:\n"
    "          ID ADDRESS voter|learner [leader]\n"
    "add     adds node ID, whose peer port is HOST:PORT (clients use PORT+1), as a\n"
    "        learner: it receives a snapshot and the log but does not vote; the leader\n"
    "        makes it a voter as soon as its log has caught up, so adding a node never\n"
    "        costs the cluster its quorum.  Start the new node with\n"
    "          hstore node --id ID --addr HOST:PORT --join ANY-MEMBER:PORT --data DIR\n"
    "        (it asks to be added itself) or add it here first.  Waits until it is a\n"
    "        voter (up to 60 s unless --timeout says otherwise); adding a member again\n"
    "        with the same address is not an error.\n"
    "remove  removes node ID.  Removing the leader hands leadership to the most\n"
    "        up-to-date voter first.  A removed node is refused by the others: stop it\n"
    "        (its data directory is of no further use).\n"
    "One change at a time: a change is committed before the next one starts.  Any\n"
    "node may be asked; requests go to the leader.  Exit codes: 0 done, 2 invalid\n"
    "(not a member, already a member elsewhere, the last voter), 3 not done within\n"
    "--timeout (see `hstore member list`), 4 not authorized.\n"
    "\n"
    "Examples:\n"
    "  hstore member list\n"
    "  hstore member add 4=127.0.0.1:7106\n"
    "  hstore member remove 4\n"
    "\n";

static const char transfer_help[] =
    "Usage: hstore transfer ID [OPTIONS]\n"
    "\n"
    "Hands leadership to voter ID (Raft leader transfer): the leader brings ID up to\n"
    "date and tells it to start an election at once, without waiting for a timeout.\n"
    "Returns once ID leads.  Exit codes: 0 done, 2 ID is not a voter, 3 not done\n"
    "within --timeout, 4 not authorized.\n"
    "\n"
    "Example:\n"
    "  hstore transfer 2\n"
    "\n";

/* The index of node id in c, or -1. */
static int node_index(const net_client *c, uint64_t id)
{
    for (int i = 0; i < net_client_n_nodes(c); i++)
        if (net_client_node_id(c, i) == id)
            return i;
    return -1;
}

/* Adds the leader named by r to spec (its client address is PORT+1) and
 * returns a client for the longer spec; NULL when that fails. */
static net_client *learn_leader(net_client *c, char *spec, size_t cap, const net_member_resp *r,
                                int ms)
{
    const char *colon = strrchr(r->leader_addr, ':');
    if (!colon)
        return NULL;
    size_t l = strlen(spec);
    snprintf(spec + l, cap - l, ",%" PRIu64 "=%.*s:%d", r->leader_id, (int)(colon - r->leader_addr),
             r->leader_addr, atoi(colon + 1) - 1);
    char err[256];
    net_client *nc = net_client_new(spec, ms, err, sizeof err);
    if (!nc) {
        spec[l] = 0;
        return NULL;
    }
    net_client_free(c);
    return nc;
}

int cli_member_call(const char *spec_in, net_member_req *q, double timeout_s, net_member_resp *r)
{
    char spec[CLI_SPEC_MAX];
    snprintf(spec, sizeof spec, "%s", spec_in);
    uint64_t end = cli_now_ns() + (uint64_t)(timeout_s * 1e9);
    char err[256];
    net_client *c = net_client_new(spec, 1000, err, sizeof err);
    if (!c)
        return NET_EINVAL;
    int i = 0, tried = 0, rc = NET_EUNAVAIL;
    bool answered = false;
    memset(r, 0, sizeof *r);
    for (;;) {
        uint64_t now = cli_now_ns();
        if (now >= end)
            break;
        int left_ms = (int)((end - now) / 1000000);
        if (left_ms < 1)
            left_ms = 1;
        /* The node works until just before our deadline, so its answer
         * (done, or why not) arrives in time. */
        q->timeout_ms = (uint32_t)(left_ms > 400 ? left_ms - 300 : left_ms / 2 + 1);
        int wait = q->op == NET_MEMBER_LIST ? (left_ms < 1000 ? left_ms : 1000) : left_ms;
        net_member_resp a;
        int crc = net_client_member(c, i, q, wait, &a);
        if (crc == NET_EAUTH) {
            rc = NET_EAUTH;
            break;
        }
        if (crc != NET_OK) {
            i = (i + 1) % net_client_n_nodes(c);
            if (++tried % net_client_n_nodes(c) == 0)
                cli_sleep_ms(200);
            continue;
        }
        *r = a;
        answered = true;
        rc = NET_OK;
        if (a.status == NET_MST_NOT_LEADER) {
            int j = a.leader_id ? node_index(c, a.leader_id) : -1;
            if (j < 0 && a.leader_id && a.leader_addr[0]) {
                net_client *nc = learn_leader(c, spec, sizeof spec, &a, 1000);
                if (nc) {
                    c = nc;
                    j = node_index(c, a.leader_id);
                }
            }
            if (j < 0 || j == i) {
                j = (i + 1) % net_client_n_nodes(c);
                cli_sleep_ms(200);
            }
            i = j;
            continue;
        }
        if (a.status == NET_MST_BUSY) {
            cli_sleep_ms(300);
            continue;
        }
        break;
    }
    net_client_free(c);
    if (rc == NET_OK && !answered)
        rc = NET_EUNAVAIL;
    return rc;
}

/* Prints the outcome of a change; returns the exit code. */
static int report(const char *what, int rc, const net_member_resp *r, double timeout_s)
{
    if (rc == NET_EAUTH) {
        cli_err("%s: not authorized: the cluster refused this client's secret (see "
                "--secret-file)",
                what);
        return CLI_EXIT_AUTH;
    }
    if (rc != NET_OK) {
        cli_err("%s: no answer from the cluster within %.3g s. Is a majority of the nodes "
                "up? Check with `hstore status`%s",
                what, timeout_s, r->msg[0] ? "" : ", retry, or raise --timeout");
        return CLI_EXIT_UNAVAIL;
    }
    switch (r->status) {
    case NET_MST_OK: printf("%s\n", r->msg); return CLI_EXIT_OK;
    case NET_MST_INVALID:
    case NET_MST_NOT_MEMBER: cli_err("%s: %s", what, r->msg); return CLI_EXIT_USAGE;
    case NET_MST_BUSY:
        cli_err("%s: %s (still so after %.3g s)", what, r->msg, timeout_s);
        return CLI_EXIT_UNAVAIL;
    default:
        cli_err("%s: not done within %.3g s: %s", what, timeout_s,
                r->msg[0] ? r->msg : "no leader");
        return CLI_EXIT_UNAVAIL;
    }
}

static int parse_id(const char *s, uint64_t *id)
{
    return cli_parse_u64(s, false, id) == 0 && *id > 0 ? 0 : -1;
}

static int member_list(const char *spec, double timeout_s)
{
    net_member_req q = {.op = NET_MEMBER_LIST};
    net_member_resp r;
    int rc = cli_member_call(spec, &q, timeout_s, &r);
    if (rc != NET_OK || r.status != NET_MST_OK)
        return report("member list", rc, &r, timeout_s);
    for (uint32_t k = 0; k < r.conf.n; k++)
        printf("%" PRIu64 " %s %s%s\n", r.conf.ids[k], r.conf.addrs[k],
               r.conf.learner[k] ? "learner" : "voter",
               r.conf.ids[k] == r.leader_id ? " leader" : "");
    return CLI_EXIT_OK;
}

int cmd_member(int argc, char **argv)
{
    cli_client_opts o;
    int code;
    int first = cli_parse_client_args(argc, argv, "member", member_help, &o, NULL, &code);
    if (first < 0)
        return code;
    char spec[CLI_SPEC_MAX];
    const char *sub = first < argc ? argv[first] : "";
    int nargs = argc - first - 1;
    bool known = !strcmp(sub, "list") || !strcmp(sub, "add") || !strcmp(sub, "remove");
    if (!known) {
        cli_err("member: %s '%s'; use list, add ID=HOST:PORT or remove ID (see `hstore member "
                "--help`)",
                sub[0] ? "unknown subcommand" : "missing subcommand", sub);
        return CLI_EXIT_USAGE;
    }
    if (nargs != (!strcmp(sub, "list") ? 0 : 1)) {
        cli_err("member %s: %s; see `hstore member --help`", sub,
                !strcmp(sub, "list")  ? "takes no argument"
                : !strcmp(sub, "add") ? "needs one ID=HOST:PORT"
                                      : "needs one ID");
        return CLI_EXIT_USAGE;
    }
    net_member_req q;
    memset(&q, 0, sizeof q);
    if (!strcmp(sub, "add")) {
        const char *arg = argv[first + 1], *eq = strchr(arg, '=');
        char idbuf[32];
        const char *colon = eq ? strrchr(eq, ':') : NULL;
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!eq || (size_t)(eq - arg) >= sizeof idbuf || !colon || colon == eq + 1 || !end ||
            *end || port < 1 || port > 65534 || strlen(eq + 1) >= sizeof q.addr) {
            cli_err("member add: '%s' is not ID=HOST:PORT (e.g. 4=127.0.0.1:7106)", arg);
            return CLI_EXIT_USAGE;
        }
        snprintf(idbuf, sizeof idbuf, "%.*s", (int)(eq - arg), arg);
        if (parse_id(idbuf, &q.id) != 0) {
            cli_err("member add: '%s' is not a node id (a number above 0)", idbuf);
            return CLI_EXIT_USAGE;
        }
        snprintf(q.addr, sizeof q.addr, "%s", eq + 1);
        q.op = NET_MEMBER_ADD;
    } else if (!strcmp(sub, "remove")) {
        if (parse_id(argv[first + 1], &q.id) != 0) {
            cli_err("member remove: '%s' is not a node id (a number above 0)", argv[first + 1]);
            return CLI_EXIT_USAGE;
        }
        q.op = NET_MEMBER_REMOVE;
    }
    if (cli_resolve_spec(&o, spec, sizeof spec) != 0)
        return CLI_EXIT_USAGE;
    double timeout_s = o.timeout_s;
    if (!strcmp(sub, "list"))
        return member_list(spec, timeout_s);
    if (q.op == NET_MEMBER_ADD && !o.timeout_set)
        timeout_s = 60;
    net_member_resp r;
    int rc = cli_member_call(spec, &q, timeout_s, &r);
    return report(q.op == NET_MEMBER_ADD ? "member add" : "member remove", rc, &r, timeout_s);
}

int cmd_transfer(int argc, char **argv)
{
    cli_client_opts o;
    int code;
    int first = cli_parse_client_args(argc, argv, "transfer", transfer_help, &o, NULL, &code);
    if (first < 0)
        return code;
    net_member_req q = {.op = NET_MEMBER_TRANSFER};
    if (argc - first != 1 || parse_id(argv[first], &q.id) != 0) {
        cli_err("transfer: needs one node id (a number above 0); see `hstore transfer --help`");
        return CLI_EXIT_USAGE;
    }
    char spec[CLI_SPEC_MAX];
    if (cli_resolve_spec(&o, spec, sizeof spec) != 0)
        return CLI_EXIT_USAGE;
    net_member_resp r;
    int rc = cli_member_call(spec, &q, o.timeout_s, &r);
    return report("transfer", rc, &r, o.timeout_s);
}
