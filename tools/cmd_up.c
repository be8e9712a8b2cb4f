/*
 * cmd_up.c — `hstore up`: a local cluster of N `hstore node` processes in the
 * background, for trying hstore out and for `make run`.
 *
 * `up` re-executes this very binary (/proc/self/exe) as `hstore node ...` once
 * per node, each in its own session (setsid) so that closing the terminal does
 * not stop it, with its output in DIR/i/node.log.  It records what it started
 * in DIR (tools/up_state.c) and waits (with a deadline) until some node
 * reports itself leader and every node it started answers.  On a cluster that
 * runs whole it only reports; of one that runs in part it starts the nodes
 * that died.  `hstore down` (tools/cmd_down.c) stops it.
 *
 * The steps, in cmd_up's order: parse the options; settle the directory and
 * its secret; compare the options with the recorded ones of a running
 * cluster; resolve the plan (tools/up_state.c); prepare data directories and
 * mount points; record the plan; start each node that does not run; wait for
 * a leader; print the summary.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raftkv/raft.h"
#include "tools/cli.h"
#include "tools/cli_net.h"
#include "tools/cmds.h"
#include "tools/up_proc.h"
#include "tools/up_state.h"

static const char up_help[] =
    "Usage: hstore up [-n N] [--dir DIR] [--base-port P] [--host H] [--mount-root DIR]\n"
    "                 [--no-mount] [NODE OPTIONS] [--wait SECONDS]\n"
    "\n"
    "Starts a local cluster of N `hstore node` processes in the background and waits\n"
    "until they have elected a leader.  Node i keeps its data in DIR/i, logs to\n"
    "DIR/i/node.log, takes peer traffic on port P+2*(i-1) and clients on the port\n"
    "after it, and mounts its filesystem view at MOUNT_ROOT/i.\n"
    "\n"
    "Options:\n"
    "  -n, --nodes N             number of nodes, 1 to 9 (default 3)\n"
    "  --dir DIR                 where data, logs and the cluster file go\n"
    "                            (default $HSTORE_DIR, else ~/.hstore)\n"
    "  --base-port P             first node's peer port (default 7100: node 1 uses\n"
    "                            7100/7101, node 2 7102/7103, ...)\n"
    "  --host H                  address every node listens on (default 127.0.0.1)\n"
    "  --mount-root DIR          mount node i at DIR/i (default /mnt/hstore)\n"
    "  --no-mount                start the nodes without FUSE mounts\n"
    "  --wait SECONDS            how long to wait for a leader (default 20)\n"
    "  --yes                     shrink a running cluster without asking\n"
    "  -h, --help                this help\n"
    "Node options, handed to every node (see `hstore node --help`):\n"
    "  --snapshot-threshold B    snapshot when the log passes B bytes (k/m/g suffixes)\n"
    "  --op-timeout-ms MS        deadline of one operation (EIO in the mount after it)\n"
    "  --max-file-size B         largest file (EFBIG past it)\n"
    "  --max-store-bytes B       total data limit (ENOSPC past it)\n"
    "  --tick-ms MS, --election-ticks N   Raft tick and election timeout in ticks\n"
    "  --lease-ms MS             read lease (default: the election timeout; 0 off)\n"
    "  --attr-cache-ms MS        longest the kernel keeps attributes under the lease\n"
    "                            (default 1000; 0 off)\n"
    "  --log-level L             error, warn, info (default) or debug\n"
    "\n"
    "Examples:\n"
    "  hstore up -n 3                         # nodes on 127.0.0.1:7100, 7102, 7104\n"
    "  hstore up -n 5 --dir /tmp/c5 --base-port 7200 --no-mount\n"
    "  HSTORE_DIR=/tmp/c5 hstore get foo      # clients find the cluster from DIR/cluster\n"
    "\n"
    "`up` records the options in DIR/options, and a later `up` without them uses\n"
    "them again (an option given then replaces the recorded one, and is recorded).\n"
    "While the whole cluster runs, `up` prints its status and exits 0; when some of\n"
    "its nodes died (kill -9, a crash), it starts just those again from their data.\n"
    "An option that differs from the running cluster's is refused: `hstore down`\n"
    "first.  `hstore down` stops the cluster; the data stays for the next `up`.\n"
    "\n"
    "-n N on a running cluster of another size changes its membership, one node at\n"
    "a time: nodes that are added start with `hstore node --join` and become voters\n"
    "once they have caught up; nodes that are removed (the highest ids, after asking,\n"
    "or at once with --yes) leave the configuration first and then stop, their data\n"
    "moved aside to DIR/removed-ID.TIME.  See `hstore member --help`.\n";

typedef struct up_args {
    up_opts given;
    const char *dir_opt;
    double wait_s;
    bool yes; /* --yes: remove nodes without asking */
} up_args;

/* Parses `hstore up` arguments.  -1 to go on; else the exit code. */
static int up_parse_args(int argc, char **argv, up_args *a)
{
    enum { O_DIR = 256, O_WAIT, O_YES, O_FIRST_DEF = 512 };
    struct option longopts[UO_N + 6];
    int k = 0;
    for (int i = 0; i < UO_N; i++)
        longopts[k++] = (struct option){up_defs[i].name,
                                        up_defs[i].kind == K_FLAG ? no_argument : required_argument,
                                        NULL, O_FIRST_DEF + i};
    longopts[k++] = (struct option){"dir", required_argument, NULL, O_DIR};
    longopts[k++] = (struct option){"wait", required_argument, NULL, O_WAIT};
    longopts[k++] = (struct option){"yes", no_argument, NULL, O_YES};
    longopts[k++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[k] = (struct option){NULL, 0, NULL, 0};
    memset(a, 0, sizeof *a);
    a->wait_s = 20;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:n:h", longopts, NULL)) != -1) {
        if (c == 'n')
            c = O_FIRST_DEF + UO_NODES;
        if (c >= O_FIRST_DEF && c < O_FIRST_DEF + UO_N) {
            int i = c - O_FIRST_DEF;
            const char *v = up_defs[i].kind == K_FLAG ? "1" : optarg;
            if (up_normalize(i, v, a->given.val[i], sizeof a->given.val[i]) != 0) {
                if (i == UO_NODES)
                    cli_err("-n wants a number of nodes from 1 to %d, e.g. -n 3", UP_MAX_NODES);
                else
                    cli_err("--%s: bad value '%s', e.g. %s", up_defs[i].name, v,
                            up_defs[i].example);
                return CLI_EXIT_USAGE;
            }
            a->given.set[i] = true;
            continue;
        }
        switch (c) {
        case O_DIR: a->dir_opt = optarg; break;
        case O_YES: a->yes = true; break;
        case O_WAIT:
            if (cli_parse_seconds(optarg, &a->wait_s) != 0) {
                cli_err("--wait wants seconds, e.g. --wait 20");
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h': fputs(up_help, stdout); return CLI_EXIT_OK;
        case ':':
            cli_err("%s needs a value; see `hstore up --help`", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        default:
            cli_err("unknown option %s; see `hstore up --help`", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_err("unexpected argument '%s'; see `hstore up --help`", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (a->given.set[UO_MOUNT_ROOT] && a->given.set[UO_NO_MOUNT]) {
        cli_err("--mount-root and --no-mount exclude each other");
        return CLI_EXIT_USAGE;
    }
    if (a->given.set[UO_MOUNT_ROOT]) { /* a mount root means: mount */
        a->given.set[UO_NO_MOUNT] = true;
        snprintf(a->given.val[UO_NO_MOUNT], sizeof a->given.val[UO_NO_MOUNT], "0");
    }
    return -1;
}

/* Data directories and mount points (a dead mount of a node that will start
 * again is unmounted first, wherever it was).  0 or an exit code. */
static int up_prepare_dirs(const up_plan *p)
{
    char path[PATH_MAX + 32];
    for (uint64_t i = 1; i <= p->n; i++) {
        snprintf(path, sizeof path, "%s/%llu", p->dir, (unsigned long long)i);
        if (up_mkdir_p(path, 0755) != 0) {
            cli_err("cannot create %s: %s", path, strerror(errno));
            return CLI_EXIT_USAGE;
        }
        if (p->keep[i])
            continue;
        /* A dead mount of this node ("Transport endpoint is not connected")
         * where it mounts again stays: the node replaces it right before its
         * own mount goes on top (fs_start), so programs using the path reach
         * the bare directory under it for an instant at most. */
        struct stat mst;
        bool dead = !p->no_mount && stat(p->mounts[i - 1], &mst) != 0 && errno == ENOTCONN;
        if (p->old_mounts[i - 1][0] != '\0' &&
            !(dead && strcmp(p->old_mounts[i - 1], p->mounts[i - 1]) == 0))
            up_unmount(p->old_mounts[i - 1]);
        if (p->no_mount || dead)
            continue;
        up_unmount(p->mounts[i - 1]);
        if (up_mkdir_p(p->mounts[i - 1], 0755) != 0) {
            cli_err("cannot create mount point %s: %s; pass --mount-root DIR or --no-mount",
                    p->mounts[i - 1], strerror(errno));
            return CLI_EXIT_USAGE;
        }
    }
    return 0;
}

/* The HTTP port of node id: its peer port + UP_HTTP_OFFSET, on 127.0.0.1
 * (the next two ports after the peer port are the client port and the next
 * node's peer port). */
#define UP_HTTP_OFFSET 1000
static uint64_t up_http_port(const up_plan *p, uint64_t id)
{
    return p->base_port + 2 * (id - 1) + UP_HTTP_OFFSET;
}

/* Starts node `id` in the background (its own session, output to its log).
 * The pid, or -1. */
static pid_t up_start_node(const up_plan *p, uint64_t id)
{
    char idbuf[24], databuf[PATH_MAX], logpath[PATH_MAX + 16], boot[CLI_SPEC_MAX];
    char join[NET_ADDR_MAX + 8], addr[NET_ADDR_MAX + 8];
    snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)id);
    snprintf(databuf, sizeof databuf, "%s/%llu", p->dir, (unsigned long long)id);
    snprintf(logpath, sizeof logpath, "%s/node.log", databuf);
    char optnames[UO_N][40], secret[PATH_MAX], http[32];
    char *av[20 + 2 * UO_N]; /* the fixed arguments, the node options, NULL */
    int ac = 0;
    av[ac++] = "hstore";
    av[ac++] = "node";
    av[ac++] = "--id";
    av[ac++] = idbuf;
    if (up_bootstrap_spec(p, boot, sizeof boot) && !up_spec_has(boot, id)) {
        /* Added by `up -n` later: it joins through node 1. */
        snprintf(join, sizeof join, "%s:%llu", p->host, (unsigned long long)p->base_port);
        snprintf(addr, sizeof addr, "%s:%llu", p->host,
                 (unsigned long long)(p->base_port + 2 * (id - 1)));
        av[ac++] = "--join";
        av[ac++] = join;
        av[ac++] = "--addr";
        av[ac++] = addr;
    } else {
        av[ac++] = "--cluster";
        av[ac++] = boot[0] ? boot : (char *)p->spec;
    }
    av[ac++] = "--data";
    av[ac++] = databuf;
    snprintf(secret, sizeof secret, "%s/secret", p->dir); /* cli_up_secret wrote it */
    av[ac++] = "--secret-file";
    av[ac++] = secret;
    snprintf(http, sizeof http, "127.0.0.1:%llu", (unsigned long long)up_http_port(p, id));
    av[ac++] = "--http";
    av[ac++] = http;
    av[ac++] = "--up-dir"; /* the playground's control of this cluster (node/play_ctl.c) */
    av[ac++] = (char *)p->dir;
    if (!p->no_mount) {
        av[ac++] = "--mount";
        av[ac++] = (char *)p->mounts[id - 1];
    }
    for (int i = 0; i < UO_N; i++) {
        if (!up_defs[i].node || !p->eff.set[i])
            continue;
        snprintf(optnames[i], sizeof optnames[i], "--%s", up_defs[i].name);
        av[ac++] = optnames[i];
        av[ac++] = (char *)p->eff.val[i];
    }
    av[ac] = NULL;
    up_record_node(p->dir, id, av, ac);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cli_err("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setsid();
        int in = open("/dev/null", O_RDONLY);
        int out = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in >= 0)
            dup2(in, 0);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        execv("/proc/self/exe", av);
        fprintf(stderr, "hstore up: cannot run /proc/self/exe: %s\n", strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Waits until some node reports itself leader and every node it started
 * answers, watching those for one that dies at start.  The leader's id; 0 at the deadline; -1 when a
 * node died (its log's end printed). */
static int64_t up_wait_leader(const up_plan *p, pid_entry *started, int n_started)
{
    uint64_t deadline = cli_now_ns() + (uint64_t)(p->wait_s * 1e9);
    for (;;) {
        bool died = false;
        for (int i = 0; i < n_started; i++) {
            int st;
            if (started[i].pid > 0 && waitpid(started[i].pid, &st, WNOHANG) == started[i].pid) {
                char logpath[PATH_MAX + 32];
                snprintf(logpath, sizeof logpath, "%s/%llu/node.log", p->dir,
                         (unsigned long long)started[i].id);
                if (WIFEXITED(st))
                    cli_err("node %llu exited at start with status %d; the end of %s:",
                            (unsigned long long)started[i].id, WEXITSTATUS(st), logpath);
                else
                    cli_err("node %llu died at start (signal %d); the end of %s:",
                            (unsigned long long)started[i].id, WIFSIGNALED(st) ? WTERMSIG(st) : 0,
                            logpath);
                up_print_log_tail(logpath, 10);
                started[i].pid = 0;
                died = true;
            }
        }
        if (died)
            return -1;
        cli_node_status ns[UP_MAX_NODES];
        int nn = cli_status_all(p->spec, 300, ns, UP_MAX_NODES);
        uint64_t leader = nn > 0 ? cli_leader_of(ns, nn) : 0;
        /* ... and every node started now answers (a restarted one too). */
        for (int i = 0; i < n_started && leader != 0; i++)
            if (started[i].id > (uint64_t)nn || !ns[started[i].id - 1].ok)
                leader = 0;
        if (leader != 0)
            return (int64_t)leader;
        if (cli_now_ns() >= deadline)
            return 0;
        cli_sleep_ms(100);
    }
}

/* Undoes a failed start: stops what this run started, unmounts its mounts. */
static void up_abort(const up_plan *p, const pid_entry *started, int n_started)
{
    cli_err("stopping the other nodes; fix the cause (port in use? mount point busy?) "
            "and run `hstore up` again");
    pid_entry live[UP_MAX_NODES];
    int nl = 0;
    for (int i = 0; i < n_started; i++)
        if (started[i].pid > 0)
            live[nl++] = started[i];
    up_stop_pids(live, nl, 5000);
    if (!p->no_mount)
        for (uint64_t i = 1; i <= p->n; i++)
            if (!p->keep[i])
                up_unmount(p->mounts[i - 1]);
    if (p->n_alive == 0) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/pids", p->dir);
        unlink(path);
    }
}

/* One line per node: addresses, pid, data, mount, and how it answers. */
static void up_print_nodes(const up_plan *p, const pid_t *pids, const char *const *notes)
{
    cli_node_status ns[UP_MAX_NODES];
    int nn = cli_status_all(p->spec, 1000, ns, UP_MAX_NODES);
    for (uint64_t id = 1; id <= p->n; id++) {
        printf("  node %llu  peers %s:%llu  clients %s:%llu  pid %d  data %s/%llu",
               (unsigned long long)id, p->host, (unsigned long long)(p->base_port + 2 * (id - 1)),
               p->host, (unsigned long long)(p->base_port + 2 * (id - 1) + 1), (int)pids[id],
               p->dir, (unsigned long long)id);
        if (!p->no_mount)
            printf("  mount %s", p->mounts[id - 1]);
        printf("  http http://127.0.0.1:%llu/", (unsigned long long)up_http_port(p, id));
        const cli_node_status *s = nn >= (int)id ? &ns[id - 1] : NULL;
        if (s != NULL && s->ok)
            printf("  %s term %llu", raft_role_name(s->st.role), (unsigned long long)s->st.term);
        else
            printf("  unreachable");
        printf("%s\n", notes[id] ? notes[id] : "");
    }
}

/* The playground's address, the token in the fragment (which the browser
 * never sends: the page keeps it in the tab's sessionStorage). */
static void up_print_playground(const up_plan *p)
{
    char path[PATH_MAX + 16], err[256], tok[NET_HTTP_TOKEN_LEN + 1];
    net_auth a;
    snprintf(path, sizeof path, "%s/secret", p->dir);
    if (net_auth_load(&a, path, err, sizeof err) != NET_OK) {
        cli_err("no playground address: %s", err);
        return;
    }
    net_auth_http_token(&a, tok);
    printf("Playground: http://127.0.0.1:%llu/#token=%s\n", (unsigned long long)up_http_port(p, 1),
           tok);
    printf("  (every node serves it, on ports");
    for (uint64_t id = 1; id <= p->n; id++)
        printf(" %llu", (unsigned long long)up_http_port(p, id));
    printf("; the token stays in the browser tab)\n");
}

static void up_print_hints(const up_plan *p)
{
    printf("\nSPEC: %s\n", p->spec);
    printf("Client commands in this environment find it from %s/cluster; elsewhere:\n", p->dir);
    printf("  export HSTORE_CLUSTER=%s\n", p->spec);
    printf(
        "Try:\n  hstore put greeting hello && hstore get greeting\n  hstore status\n  hstore watch\n");
    if (!p->no_mount)
        printf("  echo hi > %s/hello && cat %s/hello\n", p->mounts[0],
               p->n > 1 ? p->mounts[1] : p->mounts[0]);
    printf("HTTP API: curl -H \"Authorization: Bearer $(hstore http-token)\" "
           "http://127.0.0.1:%llu/v1/status\n",
           (unsigned long long)up_http_port(p, 1));
    up_print_playground(p);
    printf("Options: %s/options.  Logs: %s/<id>/node.log.  Stop with: hstore down%s%s\n", p->dir,
           p->dir, p->dir_opt ? " --dir " : "", p->dir_opt ? p->dir_opt : "");
}

/* The whole cluster runs already: its status; exit 0 when it has a leader. */
static int up_report_running(const up_plan *p)
{
    int64_t leader = up_wait_leader(p, NULL, 0);
    const char *notes[UP_MAX_NODES + 1] = {0};
    if (leader > 0)
        printf("hstore: the %llu-node cluster in %s is already running; node %lld leads\n",
               (unsigned long long)p->n, p->dir, (long long)leader);
    else
        printf("hstore: the %llu-node cluster in %s is running but has no leader\n",
               (unsigned long long)p->n, p->dir);
    up_print_nodes(p, p->keep, notes);
    up_print_hints(p);
    if (leader <= 0) {
        cli_err("no leader within %.0f s: see %s/*/node.log, `hstore status`, or restart it "
                "with `hstore down` and `hstore up`",
                p->wait_s, p->dir);
        return CLI_EXIT_UNAVAIL;
    }
    return CLI_EXIT_OK;
}

/* The cluster directory: resolved, created, and with its secret (made when
 * missing).  0 or an exit code. */
static int up_open_dir(up_plan *p, const up_args *a)
{
    p->dir_opt = a->dir_opt;
    p->wait_s = a->wait_s;
    if (cli_cluster_dir(a->dir_opt, p->dir, sizeof p->dir) != 0) {
        cli_err("no home directory known: pass --dir DIR or set HSTORE_DIR");
        return CLI_EXIT_USAGE;
    }
    if (up_mkdir_p(p->dir, 0755) != 0) {
        cli_err("cannot create %s: %s; pass another --dir", p->dir, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    char secret[PATH_MAX];
    if (cli_up_secret(p->dir, secret, sizeof secret) != 0)
        return CLI_EXIT_USAGE;
    return 0;
}

/* A running cluster keeps its options: changing one needs a restart.  0 when
 * nothing runs or no option given differs from the recorded one; else an exit
 * code after saying which differs. */
static int up_check_options(const up_plan *p, const up_opts *given, const up_opts *rec)
{
    if (p->n_alive == 0)
        return 0;
    int d = up_first_difference(given, rec);
    if (d < 0)
        return 0;
    char now[PATH_MAX + 64], then[PATH_MAX + 64];
    up_describe(d, given->val[d], now, sizeof now);
    up_describe(d, rec->set[d] ? rec->val[d] : up_defs[d].def, then, sizeof then);
    if (d == UO_NO_MOUNT && given->set[UO_MOUNT_ROOT]) { /* mounts asked of a --no-mount cluster */
        d = UO_MOUNT_ROOT;
        up_describe(d, given->val[d], now, sizeof now);
    }
    cli_err("--%s differs: the cluster in %s runs with %s (recorded in %s/options), not %s; "
            "stop it with `hstore down%s%s` first to change it, or leave the option out",
            up_defs[d].name, p->dir, then, p->dir, now, p->dir_opt ? " --dir " : "",
            p->dir_opt ? p->dir_opt : "");
    return CLI_EXIT_USAGE;
}

/* What runs already, against the plan: -1 when nodes are to be started; else
 * the exit code (the whole cluster runs: its status; a cluster of another
 * size runs: refused). */
static int up_check_running(const up_plan *p)
{
    if (p->n_alive > 0 && p->n_alive == p->n_old && (uint64_t)p->n_old == p->n)
        return up_report_running(p);
    if (p->n_alive > 0 && (uint64_t)p->n_old != p->n) {
        cli_err("a cluster of another size runs in %s (%d of %d nodes running): stop it with "
                "`hstore down%s%s` first",
                p->dir, p->n_alive, p->n_old, p->dir_opt ? " --dir " : "",
                p->dir_opt ? p->dir_opt : "");
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* The nodes of one run: those it started, and the pid of every node. */
typedef struct up_run {
    pid_entry started[UP_MAX_NODES];
    int n_started;
    pid_t pids[UP_MAX_NODES + 1]; /* pids[id], started or kept */
} up_run;

/* Starts every node that does not run and records all pids in DIR/pids.
 * 0, or an exit code after stopping what it started. */
static int up_start_nodes(const up_plan *p, up_run *r)
{
    char pidtext[UP_MAX_NODES * 48] = "";
    size_t pt = 0;
    for (uint64_t i = 1; i <= p->n; i++) {
        r->pids[i] = p->keep[i];
        if (!p->keep[i]) {
            r->pids[i] = up_start_node(p, i);
            if (r->pids[i] < 0) {
                up_abort(p, r->started, r->n_started);
                return CLI_EXIT_UNAVAIL;
            }
            r->started[r->n_started++] = (pid_entry){i, r->pids[i]};
        }
        pt += (size_t)snprintf(pidtext + pt, sizeof pidtext - pt, "%llu %d\n",
                               (unsigned long long)i, (int)r->pids[i]);
    }
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/pids", p->dir);
    if (up_write_file(path, pidtext) != 0)
        cli_err("cannot write %s: %s; stop the nodes by hand (pids above)", path, strerror(errno));
    return 0;
}

/* Waits for a leader over the nodes just started.  0 with *leader set, or
 * an exit code (a node died at start: the others stopped; no leader by the
 * deadline: the nodes keep running). */
static int up_await_leader(const up_plan *p, up_run *r, int64_t *leader)
{
    *leader = up_wait_leader(p, r->started, r->n_started);
    if (*leader < 0) {
        up_abort(p, r->started, r->n_started);
        return CLI_EXIT_UNAVAIL;
    }
    if (*leader == 0) {
        cli_err("no leader elected (or not every node answering) within %.0f s; the nodes keep "
                "running: see %s/*/node.log, "
                "`hstore status`, or stop them with `hstore down`",
                p->wait_s, p->dir);
        return CLI_EXIT_UNAVAIL;
    }
    return 0;
}

/* The summary of a run that started nodes: who leads, one line per node,
 * and how to go on. */
static void up_print_started(const up_plan *p, const up_run *r, int64_t leader)
{
    const char *notes[UP_MAX_NODES + 1] = {0};
    for (uint64_t id = 1; id <= p->n; id++)
        notes[id] = p->keep[id] ? "  (kept running)" : p->n_alive ? "  (restarted)" : "";
    if (p->n_alive > 0)
        printf("hstore: restarted %d of the %llu nodes in %s (the others kept running); node %lld "
               "leads\n",
               r->n_started, (unsigned long long)p->n, p->dir, (long long)leader);
    else
        printf("hstore: %llu-node cluster is up in %s; node %lld leads\n", (unsigned long long)p->n,
               p->dir, (long long)leader);
    up_print_nodes(p, r->pids, notes);
    up_print_hints(p);
}

/* ---- resizing a running cluster ------------------------------------------ */

/* Writes DIR/pids for nodes 1..p->n from pids[]. */
static void up_write_pids(const up_plan *p, const pid_t *pids)
{
    char text[UP_MAX_NODES * 48] = "", path[PATH_MAX + 16];
    size_t t = 0;
    for (uint64_t i = 1; i <= p->n; i++)
        t += (size_t)snprintf(text + t, sizeof text - t, "%llu %d\n", (unsigned long long)i,
                              (int)pids[i]);
    snprintf(path, sizeof path, "%s/pids", p->dir);
    if (up_write_file(path, text) != 0)
        cli_err("cannot write %s: %s", path, strerror(errno));
}

/* Waits until node id is a voter of the cluster in spec.  0 or an exit code. */
static int up_wait_voter(const up_plan *p, uint64_t id, double secs)
{
    uint64_t end = cli_now_ns() + (uint64_t)(secs * 1e9);
    while (cli_now_ns() < end) {
        net_member_req q = {.op = NET_MEMBER_LIST};
        net_member_resp r;
        if (cli_member_call(p->spec, &q, 2, &r) == NET_OK && r.status == NET_MST_OK)
            for (uint32_t k = 0; k < r.conf.n; k++)
                if (r.conf.ids[k] == id && !r.conf.learner[k])
                    return 0;
        cli_sleep_ms(200);
    }
    cli_err("node %llu did not become a voter within %.0f s: see %s/%llu/node.log and "
            "`hstore member list`",
            (unsigned long long)id, secs, p->dir, (unsigned long long)id);
    return CLI_EXIT_UNAVAIL;
}

/* Asks before removing nodes want+1..old (unless --yes).  True to go on. */
static bool up_confirm_shrink(const up_plan *p, int old, bool yes)
{
    if (yes)
        return true;
    if (!isatty(0)) {
        cli_err("shrinking the cluster in %s to %llu nodes removes nodes %llu..%d: pass --yes "
                "to do so without a terminal",
                p->dir, (unsigned long long)p->n, (unsigned long long)p->n + 1, old);
        return false;
    }
    printf("Remove nodes %llu..%d from the cluster in %s (they stop; their data is moved "
           "aside)? [y/N] ",
           (unsigned long long)p->n + 1, old, p->dir);
    fflush(stdout);
    char line[16] = "";
    if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y')) {
        printf("hstore: nothing changed\n");
        return false;
    }
    return true;
}

/* `up -n N` on a running cluster of another size: nodes old+1..N join one
 * at a time, or nodes N+1..old leave (highest id first) and stop. */
static int up_resize(up_plan *p, bool yes)
{
    int old = p->n_old;
    pid_t pids[UP_MAX_NODES + 1] = {0};
    for (int i = 1; i <= old && i <= UP_MAX_NODES; i++)
        pids[i] = p->keep[i];
    int rc;
    char boot[CLI_SPEC_MAX];
    if (!up_bootstrap_spec(p, boot, sizeof boot)) {
        /* A cluster from before DIR/bootstrap: its SPEC so far is it. */
        char path[PATH_MAX + 16], text[CLI_SPEC_MAX + 2], spec[CLI_SPEC_MAX] = "";
        snprintf(path, sizeof path, "%s/cluster", p->dir);
        FILE *f = fopen(path, "r");
        if (f && fgets(spec, sizeof spec, f))
            spec[strcspn(spec, "\n")] = 0;
        if (f)
            fclose(f);
        snprintf(text, sizeof text, "%s\n", spec);
        snprintf(path, sizeof path, "%s/bootstrap", p->dir);
        if (!spec[0] || up_write_file(path, text) != 0) {
            cli_err("cannot record the cluster's first SPEC in %s", path);
            return CLI_EXIT_USAGE;
        }
    }
    if (p->n > (uint64_t)old) {
        if ((rc = up_prepare_dirs(p)) != 0)
            return rc;
        for (uint64_t id = (uint64_t)old + 1; id <= p->n; id++) {
            pids[id] = up_start_node(p, id);
            if (pids[id] < 0)
                return CLI_EXIT_UNAVAIL;
            printf("hstore: node %llu started (pid %d), joining the cluster\n",
                   (unsigned long long)id, (int)pids[id]);
            if ((rc = up_wait_voter(p, id, p->wait_s > 60 ? p->wait_s : 60)) != 0)
                return rc;
            printf("hstore: node %llu is a voter\n", (unsigned long long)id);
            uint64_t n = p->n;
            p->n = id; /* record what is done so far */
            up_write_pids(p, pids);
            p->n = n;
        }
    } else {
        if (!up_confirm_shrink(p, old, yes))
            return CLI_EXIT_USAGE;
        char old_spec[CLI_SPEC_MAX];
        snprintf(old_spec, sizeof old_spec, "%s", p->spec);
        for (int id = old; (uint64_t)id > p->n; id--) {
            net_member_req q = {.op = NET_MEMBER_REMOVE, .id = (uint64_t)id};
            net_member_resp r;
            int crc = cli_member_call(old_spec, &q, p->wait_s > 30 ? p->wait_s : 30, &r);
            if (crc != NET_OK || (r.status != NET_MST_OK && r.status != NET_MST_NOT_MEMBER)) {
                cli_err("cannot remove node %d: %s", id,
                        crc == NET_OK ? r.msg : "no answer from the cluster");
                return CLI_EXIT_UNAVAIL;
            }
            pid_entry e = {(uint64_t)id, pids[id]};
            if (e.pid > 0 && up_is_node(e.pid))
                up_stop_pids(&e, 1, 10000);
            if (!p->no_mount)
                up_unmount(p->mounts[id - 1]);
            char from[PATH_MAX], to[PATH_MAX + 64];
            snprintf(from, sizeof from, "%s/%d", p->dir, id);
            snprintf(to, sizeof to, "%s/removed-%d.%lld", p->dir, id, (long long)time(NULL));
            if (rename(from, to) != 0)
                cli_err("cannot move %s aside: %s", from, strerror(errno));
            printf("hstore: node %d removed and stopped (its data moved to %s)\n", id, to);
        }
        up_write_pids(p, pids);
    }
    if ((rc = up_record(p)) != 0)
        return rc;
    printf("hstore: the cluster in %s has %llu nodes\n", p->dir, (unsigned long long)p->n);
    return CLI_EXIT_OK;
}

int cmd_up(int argc, char **argv)
{
    up_args a;
    int rc = up_parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    static up_plan p;
    memset(&p, 0, sizeof p);
    if ((rc = up_open_dir(&p, &a)) != 0)
        return rc;

    /* What ran before and how it was started. */
    up_opts rec;
    bool had_cluster = up_load_recorded(p.dir, &rec);
    up_find_running(&p);
    if (a.given.set[UO_NODES] && p.n_alive > 0 && p.n_alive == p.n_old &&
        strtoull(a.given.val[UO_NODES], NULL, 10) != (uint64_t)p.n_old) {
        /* The whole cluster runs, at another size: change the membership. */
        a.given.set[UO_NODES] = false;
        if ((rc = up_check_options(&p, &a.given, &rec)) != 0)
            return rc;
        a.given.set[UO_NODES] = true;
        up_resolve(&p, &a.given, &rec);
        return up_resize(&p, a.yes);
    }
    if ((rc = up_check_options(&p, &a.given, &rec)) != 0)
        return rc;
    up_resolve(&p, &a.given, &rec);
    if ((rc = up_check_same_cluster(&p)) != 0)
        return rc;
    if ((rc = up_check_running(&p)) >= 0)
        return rc;
    if (had_cluster && p.n_alive == 0)
        printf("hstore: starting the cluster in %s with the options in %s/options%s\n", p.dir,
               p.dir, up_first_difference(&a.given, &rec) >= 0 ? " and those given now" : "");
    if ((rc = up_prepare_dirs(&p)) != 0 || (rc = up_record(&p)) != 0)
        return rc;

    static up_run r;
    memset(&r, 0, sizeof r);
    int64_t leader;
    if ((rc = up_start_nodes(&p, &r)) != 0 || (rc = up_await_leader(&p, &r, &leader)) != 0)
        return rc;
    up_print_started(&p, &r, leader);
    return CLI_EXIT_OK;
}
