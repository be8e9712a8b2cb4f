/*
 * cmd_node.c — `hstore node`: runs one node in the foreground until SIGTERM or
 * SIGINT, then stops cleanly (unmounts, closes the store).
 *
 * Options come from the command line and, with --config FILE, from a file of
 * `name = value` lines using the long option names (command line wins).
 */
#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/fs_node_backend.h"
#include "node/http.h"
#include "node/node.h"
#include "node/play.h"
#include "tools/cli.h"
#include "tools/cli_net.h"
#include "tools/cmds.h"

static void node_usage(FILE *out)
{
    fprintf(out,
            "Usage: hstore node --id ID --cluster SPEC --data DIR [OPTIONS]\n"
            "       hstore node --id ID --addr HOST:PORT --join HOST:PORT --data DIR [OPTIONS]\n"
            "       hstore node --id ID --data DIR [OPTIONS]     (a restart: DIR has the members)\n"
            "\n"
            "Runs one node of a cluster in the foreground until SIGTERM or SIGINT.\n"
            "\n"
            "  --id ID                    this node's id (a member of SPEC)\n"
            "  --cluster SPEC             every member: ID=HOST:PORT,ID=HOST:PORT,...\n"
            "                             (peer traffic on PORT, clients on PORT+1); only\n"
            "                             read when DIR holds no configuration yet, and not\n"
            "                             needed after the first start: DIR keeps the\n"
            "                             members (those of its log, or the first ones)\n"
            "  --join HOST:PORT           join a running cluster instead: HOST:PORT is any\n"
            "                             member's peer address; the node asks to be added\n"
            "                             (as a learner, promoted to voter once caught up,\n"
            "                             see `hstore member --help`), retrying for up to\n"
            "                             --join-timeout-ms (default 120000)\n"
            "  --addr HOST:PORT           this node's own peer address (with --join)\n"
            "  --data DIR                 data directory (created if missing): Raft log,\n"
            "                             hard state in DIR/hstore.db, the bytes of large\n"
            "                             log entries in DIR/log-blobs, the latest\n"
            "                             snapshot in DIR/snap\n"
            "  --mount DIR                mount the store at DIR (FUSE); DIR is created\n"
            "  --snapshot-threshold BYTES snapshot when the log holds this much (default 32M;\n"
            "                             suffixes K, M, G; 0 = never)\n"
            "  --op-timeout-ms MS         deadline of one operation (default 5000): without a\n"
            "                             quorum, requests fail after it (EIO in the mount)\n"
            "  --max-file-size BYTES      largest file (default 1G; EFBIG past it)\n"
            "  --max-store-bytes BYTES    total data limit (default 0 = none; ENOSPC past it)\n"
            "  --tick-ms MS               Raft tick (default 50)\n"
            "  --election-ticks N         election timeout in ticks (default 10, randomized\n"
            "                             up to 2x)\n"
            "  --lease-ms MS              read lease: a node whose lease is valid answers\n"
            "                             reads from its own state, with no round trip\n"
            "                             (default: the election timeout; 0 turns leases off)\n"
            "  --clock-drift-pct P        the assumed bound on how far any node's clock\n"
            "                             rate strays from real time (default 10)\n"
            "  --attr-cache-ms MS         longest the kernel keeps a file's attributes\n"
            "                             while this node holds its read lease (default\n"
            "                             1000; never past the lease; 0 turns it off)\n"
            "  --log-level L              error, warn, info (default) or debug\n"
            "  --secret-file F            the cluster secret (hex, mode 0600; `hstore up`\n"
            "                             writes DIR/secret): every peer and client frame\n"
            "                             is authenticated with keys derived from it\n"
            "  --insecure                 run without a secret (anyone who reaches the\n"
            "                             ports can forge frames); needed when no\n"
            "                             --secret-file is given\n"
            "  --client-max-conns N       client connections at once (default 4096)\n"
            "  --client-idle-ms MS        close client connections idle this long\n"
            "                             (default 300000)\n"
            "  --client-mem-max BYTES     buffer memory of all client connections\n"
            "                             (default 128M); the largest users are cut\n"
            "  --client-max-frame BYTES   largest client request (default 96M)\n"
            "  --client-max-unsent BYTES  replies queued for a client that does not read\n"
            "                             them before it is cut off (default 64M)\n"
            "  --http HOST:PORT           serve the HTTP API and /metrics on HOST:PORT\n"
            "                             (default off; `hstore up` uses 127.0.0.1 and the\n"
            "                             peer port + 1000); requests need the bearer\n"
            "                             token `hstore http-token` prints\n"
            "  --up-dir DIR               `hstore up` passes its directory: the playground\n"
            "                             page may then stop, kill, restart and partition\n"
            "                             the nodes recorded there (README, Playground)\n"
            "  --config FILE              read options from FILE: lines `name = value` with\n"
            "                             the long option names above; # starts a comment\n"
            "  -h, --help                 this help\n"
            "\n"
            "Example (node 1 of 3 on one machine):\n"
            "  hstore node --id 1 --data /var/lib/hstore/1 --mount /mnt/hstore/1 \\\n"
            "    --cluster 1=127.0.0.1:7100,2=127.0.0.1:7102,3=127.0.0.1:7104\n"
            "Example (a fourth node joins it):\n"
            "  hstore node --id 4 --addr 127.0.0.1:7106 --join 127.0.0.1:7100 \\\n"
            "    --data /var/lib/hstore/4 --secret-file ~/.hstore/secret\n");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

typedef struct node_args {
    node_config cfg;
    char cluster[CLI_SPEC_MAX];
    char join[NET_ADDR_MAX], addr[NET_ADDR_MAX]; /* --join, --addr */
    int join_timeout_ms;
    char mount[PATH_MAX];
    char secret_file[PATH_MAX];
    char up_dir[PATH_MAX];
    int attr_cache_ms; /* fs_options.attr_cache_ms */
    bool have_id, have_cluster, have_data, insecure;
    node_http_config http; /* port 0: no HTTP */
} node_args;

/* Applies one option by its long name.  0, or -1 with a message printed. */
static int set_option(node_args *a, const char *name, const char *val, const char *where)
{
    node_config *c = &a->cfg;
    int iv;
    uint64_t uv;
    if (!strcmp(name, "id")) {
        if (cli_parse_u64(val, true, &uv) || uv == 0 || strpbrk(val, "kKmMgGtT"))
            goto bad;
        c->id = uv;
        a->have_id = true;
    } else if (!strcmp(name, "cluster")) {
        if (strlen(val) >= sizeof a->cluster)
            goto bad;
        snprintf(a->cluster, sizeof a->cluster, "%s", val);
        a->have_cluster = true;
    } else if (!strcmp(name, "join") || !strcmp(name, "addr")) {
        char *dst = !strcmp(name, "join") ? a->join : a->addr;
        const char *colon = strrchr(val, ':');
        if (!colon || colon == val || strlen(val) >= NET_ADDR_MAX ||
            parse_int(colon + 1, 1, 65534, &iv))
            goto bad;
        snprintf(dst, NET_ADDR_MAX, "%s", val);
    } else if (!strcmp(name, "join-timeout-ms")) {
        if (parse_int(val, 1, 86400000, &a->join_timeout_ms))
            goto bad;
    } else if (!strcmp(name, "data")) {
        if (!*val || strlen(val) >= sizeof c->data_dir)
            goto bad;
        snprintf(c->data_dir, sizeof c->data_dir, "%s", val);
        a->have_data = true;
    } else if (!strcmp(name, "mount")) {
        if (!*val || strlen(val) >= sizeof a->mount)
            goto bad;
        snprintf(a->mount, sizeof a->mount, "%s", val);
    } else if (!strcmp(name, "snapshot-threshold")) {
        if (cli_parse_u64(val, true, &c->snapshot_threshold))
            goto bad;
    } else if (!strcmp(name, "op-timeout-ms")) {
        if (parse_int(val, 1, 3600000, &c->op_timeout_ms))
            goto bad;
    } else if (!strcmp(name, "max-file-size")) {
        if (cli_parse_u64(val, true, &c->max_file_size) || c->max_file_size == 0)
            goto bad;
    } else if (!strcmp(name, "max-store-bytes")) {
        if (cli_parse_u64(val, true, &c->max_store_bytes))
            goto bad;
    } else if (!strcmp(name, "tick-ms")) {
        if (parse_int(val, 1, 10000, &c->tick_ms))
            goto bad;
    } else if (!strcmp(name, "election-ticks")) {
        if (parse_int(val, 2, 10000, &c->election_ticks))
            goto bad;
    } else if (!strcmp(name, "lease-ms")) {
        if (parse_int(val, 0, 600000, &c->lease_ms))
            goto bad;
    } else if (!strcmp(name, "attr-cache-ms")) {
        if (parse_int(val, 0, 60000, &a->attr_cache_ms))
            goto bad;
    } else if (!strcmp(name, "clock-drift-pct")) {
        if (parse_int(val, 1, 50, &c->clock_drift_pct))
            goto bad;
    } else if (!strcmp(name, "secret-file")) {
        if (!*val || strlen(val) >= sizeof a->secret_file)
            goto bad;
        snprintf(a->secret_file, sizeof a->secret_file, "%s", val);
    } else if (!strcmp(name, "http")) {
        char err[256];
        if (http_parse_addr(val, a->http.host, sizeof a->http.host, &a->http.port, err,
                            sizeof err) != 0) {
            cli_err("node: --http%s: %s", where, err);
            return -1;
        }
    } else if (!strcmp(name, "up-dir")) {
        if (!*val || strlen(val) >= sizeof a->up_dir)
            goto bad;
        snprintf(a->up_dir, sizeof a->up_dir, "%s", val);
    } else if (!strcmp(name, "insecure")) {
        if (strcmp(val, "true") && strcmp(val, "1") && strcmp(val, "yes"))
            goto bad;
        a->insecure = true;
    } else if (!strcmp(name, "client-max-conns")) {
        if (parse_int(val, 1, 1000000, &c->client_limits.max_conns))
            goto bad;
    } else if (!strcmp(name, "client-idle-ms")) {
        if (parse_int(val, 100, 86400000, &c->client_limits.idle_ms))
            goto bad;
    } else if (!strcmp(name, "client-mem-max")) {
        if (cli_parse_u64(val, true, &uv) || uv < (1u << 20))
            goto bad;
        c->client_limits.mem_max = (size_t)uv;
    } else if (!strcmp(name, "client-max-frame")) {
        if (cli_parse_u64(val, true, &uv) || uv < 4096 || uv > (96u << 20))
            goto bad;
        c->client_limits.max_frame = (size_t)uv;
    } else if (!strcmp(name, "client-max-unsent")) {
        if (cli_parse_u64(val, true, &uv) || uv < 4096)
            goto bad;
        c->client_limits.max_unsent = (size_t)uv;
    } else if (!strcmp(name, "log-level")) {
        static const char *names[] = {"error", "warn", "info", "debug"};
        int lv = -1;
        for (int i = 0; i < 4; i++)
            if (!strcasecmp(val, names[i]))
                lv = i;
        if (lv < 0 && parse_int(val, 0, 3, &lv))
            goto bad;
        c->log_level = lv;
    } else {
        cli_err("node: unknown option '%s'%s (see hstore node --help)", name, where);
        return -1;
    }
    (void)iv;
    return 0;
bad:
    cli_err("node: bad value '%s' for --%s%s (see hstore node --help)", val, name, where);
    return -1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t l = strlen(s);
    while (l && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\n' || s[l - 1] == '\r'))
        s[--l] = 0;
    return s;
}

static int load_config(node_args *a, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_err("node: cannot read config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[8192];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        char where[PATH_MAX + 32];
        snprintf(where, sizeof where, " in %s:%d", path, lineno);
        if (!eq) {
            cli_err("node: expected `name = value`%s", where);
            rc = -1;
            break;
        }
        *eq = 0;
        char *name = trim(s), *val = trim(eq + 1);
        if (!strcmp(name, "config") || set_option(a, name, val, where) != 0) {
            if (!strcmp(name, "config"))
                cli_err("node: `config` cannot be set inside a config file%s", where);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

/* Reads the configuration: the --config file first, so that the command
 * line overrides it, then the options; --id, --cluster and --data are
 * required.  -1 to go on; else the exit code. */
static int node_parse_args(int argc, char **argv, node_args *a)
{
    static const struct option opts[] = {
        {"id", required_argument, NULL, 0},
        {"cluster", required_argument, NULL, 0},
        {"join", required_argument, NULL, 0},
        {"addr", required_argument, NULL, 0},
        {"join-timeout-ms", required_argument, NULL, 0},
        {"data", required_argument, NULL, 0},
        {"mount", required_argument, NULL, 0},
        {"snapshot-threshold", required_argument, NULL, 0},
        {"op-timeout-ms", required_argument, NULL, 0},
        {"max-file-size", required_argument, NULL, 0},
        {"max-store-bytes", required_argument, NULL, 0},
        {"tick-ms", required_argument, NULL, 0},
        {"election-ticks", required_argument, NULL, 0},
        {"lease-ms", required_argument, NULL, 0},
        {"clock-drift-pct", required_argument, NULL, 0},
        {"attr-cache-ms", required_argument, NULL, 0},
        {"log-level", required_argument, NULL, 0},
        {"config", required_argument, NULL, 0},
        {"secret-file", required_argument, NULL, 0},
        {"insecure", no_argument, NULL, 0},
        {"http", required_argument, NULL, 0},
        {"up-dir", required_argument, NULL, 0},
        {"client-max-conns", required_argument, NULL, 0},
        {"client-idle-ms", required_argument, NULL, 0},
        {"client-mem-max", required_argument, NULL, 0},
        {"client-max-frame", required_argument, NULL, 0},
        {"client-max-unsent", required_argument, NULL, 0},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    node_config_init(&a->cfg);
    node_http_config_init(&a->http);
    a->http.port = 0;
    a->attr_cache_ms = FS_ATTR_CACHE_MS;

    /* The config file first, so the command line overrides it. */
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            path = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            path = argv[i] + 9;
        if (path && load_config(a, path) != 0)
            return CLI_EXIT_USAGE;
    }
    optind = 1;
    opterr = 0;
    int c, idx = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, &idx)) != -1) {
        if (c == 'h') {
            node_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (c == ':' || c == '?')
            return cli_getopt_error(c, argv, "node");
        if (!strcmp(opts[idx].name, "config"))
            continue;
        if (set_option(a, opts[idx].name, optarg ? optarg : "true", "") != 0)
            return CLI_EXIT_USAGE;
    }
    if (optind < argc) {
        cli_err("node: unexpected argument '%s' (see hstore node --help)", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    bool join = a->join[0] != 0;
    if (!a->have_id || !a->have_data) {
        cli_err("node: --id and --data are required, and --cluster (or --join) on the first "
                "start (see hstore node --help)");
        return CLI_EXIT_USAGE;
    }
    if (join && (a->have_cluster || !a->addr[0])) {
        cli_err("node: --join takes --addr HOST:PORT (this node's peer address) and no "
                "--cluster (see hstore node --help)");
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* The members from --cluster, of which --id must be one.  0 or an exit code. */
static int node_check_cluster(node_args *a)
{
    char err[1024];
    if (!a->join[0] && !a->have_cluster)
        return 0; /* a restart: the node reads its members from DIR */
    if (a->join[0]) {
        /* Joining: the only member known here is this node. */
        char spec[NET_ADDR_MAX + 32];
        snprintf(spec, sizeof spec, "%" PRIu64 "=%s", a->cfg.id, a->addr);
        snprintf(a->cluster, sizeof a->cluster, "%s", spec);
        a->cfg.join = true;
    }
    if (node_parse_cluster(a->cluster, a->cfg.peers, &a->cfg.n_peers, err, sizeof err) != 0) {
        cli_err("node: --cluster: %s", err);
        return CLI_EXIT_USAGE;
    }
    bool member = false;
    for (int i = 0; i < a->cfg.n_peers; i++)
        member |= a->cfg.peers[i].id == a->cfg.id;
    if (!member) {
        cli_err("node: --id %" PRIu64 " is not one of the members in --cluster", a->cfg.id);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* The cluster secret from --secret-file, or none with --insecure (said
 * loudly); one of the two is required.  0 or an exit code. */
static int node_load_secret(node_args *a)
{
    char err[1024];
    if (a->secret_file[0]) {
        if (net_auth_load(&a->cfg.auth, a->secret_file, err, sizeof err) != NET_OK) {
            cli_err("node: --secret-file: %s", err);
            return CLI_EXIT_USAGE;
        }
    } else if (a->insecure) {
        net_auth_insecure(&a->cfg.auth);
        fprintf(stderr,
                "hstore node %" PRIu64 ": WARNING: --insecure: no cluster secret; anyone "
                "who reaches the peer or client port can forge messages\n",
                a->cfg.id);
    } else {
        cli_err("node: no cluster secret: pass --secret-file F (`hstore up` writes DIR/secret), "
                "or --insecure to run without authentication (see README, Security model)");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* ---- joining a running cluster (--join) ---------------------------------- */

typedef struct join_ctx {
    node *n;
    uint64_t id;
    char addr[NET_ADDR_MAX];
    char spec[NET_ADDR_MAX + 32]; /* the member asked first */
    int timeout_ms;
    bool failed; /* the cluster refused: the process stops */
} join_ctx;

static bool self_is_voter(node *n, uint64_t id)
{
    raft_status st;
    node_status(n, &st);
    for (uint32_t i = 0; i < st.conf.n; i++)
        if (st.conf.ids[i] == id)
            return !st.conf.learner[i];
    return false;
}

/* Learns the members from the member named by --join (so this node can
 * answer the leader before its configuration arrives), then asks to be
 * added, following the leader, until it is a voter or the deadline. */
static void *join_main(void *arg)
{
    join_ctx *j = arg;
    uint64_t end = cli_now_ns() + (uint64_t)j->timeout_ms * 1000000u;
    net_member_resp r;
    int rc = NET_EUNAVAIL;
    while (!self_is_voter(j->n, j->id) && cli_now_ns() < end) {
        net_member_req q = {.op = NET_MEMBER_LIST};
        rc = cli_member_call(j->spec, &q, 5, &r);
        if (rc == NET_OK && r.status == NET_MST_OK && r.conf.n) {
            node_join_hint(j->n, &r.conf);
            break;
        }
        if (rc == NET_EAUTH)
            break;
        cli_sleep_ms(500);
    }
    while (rc != NET_EAUTH && cli_now_ns() < end) {
        net_member_req q = {.op = NET_MEMBER_ADD, .id = j->id};
        snprintf(q.addr, sizeof q.addr, "%s", j->addr);
        double left = (double)(end - cli_now_ns()) / 1e9;
        rc = cli_member_call(j->spec, &q, left < 30 ? left : 30, &r);
        if (rc != NET_OK || r.status == NET_MST_UNAVAILABLE || r.status == NET_MST_BUSY ||
            r.status == NET_MST_NOT_LEADER)
            continue; /* still catching up, or no leader yet: ask again */
        break;
    }
    if (rc == NET_OK && r.status == NET_MST_OK) {
        fprintf(stderr, "hstore node %" PRIu64 ": joined the cluster: %s\n", j->id, r.msg);
        return NULL;
    }
    if (rc == NET_EAUTH)
        fprintf(stderr,
                "hstore node %" PRIu64 ": cannot join: the cluster refused this node's "
                "secret (--secret-file)\n",
                j->id);
    else if (rc == NET_OK && r.status != NET_MST_UNAVAILABLE)
        fprintf(stderr, "hstore node %" PRIu64 ": cannot join: %s\n", j->id, r.msg);
    else
        fprintf(stderr, "hstore node %" PRIu64 ": cannot join within %d ms (%s); stopping\n", j->id,
                j->timeout_ms, rc == NET_OK ? r.msg : "no member answered");
    j->failed = true;
    kill(getpid(), SIGTERM);
    return NULL;
}

/* Starts the node and its mount, runs until SIGTERM, SIGINT or SIGHUP, and
 * stops both.  The exit code: 1 when the node failed or could not start. */
static int node_run(node_args *a)
{
    if (a->mount[0] && mkdir(a->mount, 0755) != 0 && errno != EEXIST) {
        cli_err("node: cannot create mount point %s: %s", a->mount, strerror(errno));
        return CLI_EXIT_USAGE;
    }

    /* Signals are taken by sigwait() here; every thread started from now on
     * inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[1024];
    node *n = node_start(&a->cfg, err, sizeof err);
    if (!n) {
        cli_err("node: %s", err);
        return 1;
    }
    if (play_start(n, a->up_dir[0] ? a->up_dir : NULL, err, sizeof err) != 0) {
        cli_err("node: %s", err);
        node_stop(n);
        return 1;
    }
    fs_mount *m = NULL;
    if (a->mount[0]) {
        fs_options fo;
        fs_options_init(&fo);
        fo.op_timeout_ms = a->cfg.op_timeout_ms;
        fo.max_file_size = a->cfg.max_file_size;
        fo.attr_cache_ms = a->attr_cache_ms;
        fs_backend fb = fs_node_backend(n);
        m = fs_start(&fb, a->mount, &fo, err, sizeof err);
        if (!m) {
            cli_err("node: cannot mount %s: %s", a->mount, err);
            play_stop();
            node_stop(n);
            return 1;
        }
        fprintf(stderr, "hstore node %" PRIu64 ": mounted at %s\n", a->cfg.id, a->mount);
    }
    node_http *h = NULL;
    if (a->http.port) {
        h = node_http_new(n, &a->http, err, sizeof err);
        if (!h || node_http_start(h, err, sizeof err) != 0) {
            cli_err("node: %s", err);
            node_http_stop(h);
            fs_stop(m);
            play_stop();
            node_stop(n);
            return 1;
        }
        fprintf(stderr, "hstore node %" PRIu64 ": HTTP on http://%s:%d/\n", a->cfg.id, a->http.host,
                a->http.port);
    }
    join_ctx j = {.n = n, .id = a->cfg.id, .timeout_ms = a->join_timeout_ms};
    pthread_t jt;
    bool joining = false;
    if (a->join[0] && !self_is_voter(n, a->cfg.id)) {
        net_auth_set_default(&a->cfg.auth);
        snprintf(j.addr, sizeof j.addr, "%s", a->addr);
        snprintf(j.spec, sizeof j.spec, "%d=%s", 999999, a->join);
        if (!j.timeout_ms)
            j.timeout_ms = 120000;
        joining = pthread_create(&jt, NULL, join_main, &j) == 0;
        if (joining)
            fprintf(stderr, "hstore node %" PRIu64 ": asking %s to add this node (%s)\n", a->cfg.id,
                    a->join, a->addr);
    }
    int sig = 0;
    sigwait(&set, &sig);
    if (joining) {
        pthread_cancel(jt);
        pthread_join(jt, NULL);
    }
    bool failed = node_failed(n) || j.failed;
    node_http_stop(h);
    fs_stop(m);
    play_stop();
    node_stop(n);
    return failed ? 1 : 0;
}

/* Buffers of one entry (a 1 MiB part, its command, a peer message) come and
 * go at the pace of the writes.  By default glibc maps each of them anew (its
 * mmap threshold follows the largest block freed, and a block of that very
 * size is mapped again) and every page of every buffer then costs a page
 * fault and a zeroing, a third of a large write's CPU on a virtual machine.
 * Below NODE_MMAP_THRESHOLD they come from the heap and are reused; the
 * heap keeps up to NODE_TRIM_THRESHOLD of free memory at its top before it
 * gives memory back. */
#define NODE_MMAP_THRESHOLD (4 << 20)
#define NODE_TRIM_THRESHOLD (64 << 20)

int cmd_node(int argc, char **argv)
{
    mallopt(M_MMAP_THRESHOLD, NODE_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, NODE_TRIM_THRESHOLD);
    node_args a;
    int rc = node_parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    if ((rc = node_check_cluster(&a)) != 0 || (rc = node_load_secret(&a)) != 0)
        return rc;
    return node_run(&a);
}
