/*
 * cmd_bench.c — `hstore bench`: throughput and latency of a running cluster.
 *
 * N client sessions, each with its own client id and sequence numbers, each
 * waiting for the reply to its request before sending the next — the
 * closed-loop model of etcd's benchmark tool, so the numbers compare.  Like
 * etcd's (--clients over --conns), the sessions share connections: they are
 * spread over C threads (--conns), each driving its sessions over one TCP
 * connection per node (net/mux.h).  The M operations are shared out among the
 * sessions; every operation's latency is recorded and the percentiles come
 * from the sorted whole.  Throughput is M over the wall time from the moment
 * all threads start together to the moment the last ends.
 *
 * Workloads: put (PUT of a value to one of K keys), get (linearizable GET of
 * one of K keys, which are written first, untimed), append (APPEND to one of K
 * keys), mixed (half gets, half puts, chosen by a seeded per-session PRNG).
 * Key i is "k" followed by i in decimal, zero-padded to --key-size bytes.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/mux.h"
#include "tools/cli.h"
#include "tools/cli_net.h"
#include "tools/cmds.h"

static const char bench_help[] =
    "Usage: hstore bench [OPTIONS] put|get|append|mixed\n"
    "\n"
    "Runs --ops operations from --clients concurrent client sessions (each waiting\n"
    "for its reply before its next request; the sessions share --conns threads,\n"
    "each with one connection per node) and prints throughput (ops/s),\n"
    "p50/p90/p99/max latency and the number of errors.\n"
    "\n"
    "Workloads:\n"
    "  put      PUT a value to one of --keys keys (round robin)\n"
    "  get      linearizable GET of one of --keys keys (written first, not timed)\n"
    "  append   APPEND a value to one of --keys keys\n"
    "  mixed    half GET, half PUT\n"
    "\n"
    "Options:\n"
    "  --clients N        concurrent client sessions (default 1)\n"
    "  --conns C          threads/connections the sessions share (default 1)\n"
    "  --ops M            operations in all, shared among the clients (default 10000)\n"
    "  --key-size B       bytes per key, at least 2 (default 16)\n"
    "  --value-size B     bytes per value (default 256)\n"
    "  --keys K           size of the key space (default: min(M, 100000))\n"
    "  --json             print one JSON object instead of the table\n"
    "\n"
    "Examples:\n"
    "  hstore bench --clients 1 --ops 5000 put\n"
    "  hstore bench --clients 16 --ops 50000 --key-size 16 --value-size 256 put\n"
    "  hstore bench --clients 16 --ops 50000 --json get\n"
    "\n";

typedef enum { W_PUT, W_GET, W_APPEND, W_MIXED } workload;

typedef struct bench_cfg {
    char spec[CLI_SPEC_MAX];
    int timeout_ms;
    workload w;
    uint64_t ops, keys, key_size, value_size;
    int clients;
    uint8_t *value;
} bench_cfg;

/* One thread's share: sessions [first_sess, first_sess + n_sess) of the
 * --clients, over one mux. */
typedef struct bench_group {
    pthread_t th;
    const bench_cfg *cfg;
    int first_sess, n_sess;
    uint64_t *lat_ns; /* the whole run's latencies, by op index */
    uint64_t done, errors;
    uint64_t start_ns, end_ns;
    bool setup_failed;
    pthread_barrier_t *barrier;
} bench_group;

/* Per session: ops [first, first + count) of the run, next to start. */
typedef struct sess_plan {
    uint64_t first, count, next;
    uint64_t t0;
    uint64_t rng;
} sess_plan;

static void make_key(const bench_cfg *cfg, uint64_t i, char *buf)
{
    /* "k" + zero-padded decimal filling key_size bytes. */
    snprintf(buf, 64, "k%0*" PRIu64, (int)(cfg->key_size - 1), i);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Starts op `type` on `key` for session s; false if it could not start. */
static bool start_op(net_mux *mx, int s, int type, const char *key, const bench_cfg *cfg)
{
    kv_op op = {.type = (uint8_t)type, .path = key};
    if (type != KV_OP_GET) {
        op.data = cfg->value;
        op.data_len = cfg->value_size;
    }
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    if (kv_op_encode(&op, &enc, &enc_len) != 0)
        return false;
    int rc = net_mux_start(mx, s, type == KV_OP_GET, enc, enc_len);
    free(enc);
    return rc == NET_OK;
}

static bool op_ok(net_mux *mx, int s)
{
    const uint8_t *reply = NULL;
    size_t len = 0;
    return net_mux_result(mx, s, &reply, &len) == NET_OK && kv_reply_status(reply, len) == 0;
}

/* The type of a session's next op of the workload. */
static int op_type(const bench_cfg *cfg, sess_plan *p)
{
    switch (cfg->w) {
    case W_PUT: return KV_OP_PUT;
    case W_GET: return KV_OP_GET;
    case W_APPEND: return KV_OP_APPEND;
    default: return (xorshift(&p->rng) & 1) ? KV_OP_GET : KV_OP_PUT;
    }
}

/* Starts session s's next op of its plan, if any; false if it could not
 * start.  preload: a PUT of key (first + next); else the workload's op on key
 * (first + next) mod keys. */
static bool start_next(const bench_cfg *cfg, net_mux *mx, sess_plan *plan, int s, bool preload)
{
    sess_plan *p = &plan[s];
    if (p->next >= p->count)
        return true;
    char key[64];
    uint64_t j = p->first + p->next;
    int type = preload ? KV_OP_PUT : op_type(cfg, p);
    make_key(cfg, preload ? j : j % cfg->keys, key);
    p->t0 = cli_now_ns();
    return start_op(mx, s, type, key, cfg);
}

/* Runs every session's plan to the end, closed loop.  preload: write keys
 * (untimed); else the workload, timed into g->lat_ns.  False if an op could
 * not start or, when preloading, failed. */
static bool run_plans(bench_group *g, net_mux *mx, sess_plan *plan, bool preload)
{
    const bench_cfg *cfg = g->cfg;
    int done[256];
    for (int s = 0; s < g->n_sess; s++)
        if (!start_next(cfg, mx, plan, s, preload))
            return false;
    while (net_mux_busy(mx) > 0) {
        int k = net_mux_wait(mx, 1000, done, 256);
        if (k < 0)
            return false;
        uint64_t now = cli_now_ns();
        for (int i = 0; i < k; i++) {
            int s = done[i];
            sess_plan *p = &plan[s];
            bool ok = op_ok(mx, s);
            if (preload && !ok)
                return false;
            if (!preload) {
                g->lat_ns[p->first + p->next] = now - p->t0;
                g->done++;
                if (!ok)
                    g->errors++;
            }
            p->next++;
            if (!start_next(cfg, mx, plan, s, preload))
                return false;
        }
    }
    return true;
}

static void *group_thread(void *arg)
{
    bench_group *g = arg;
    const bench_cfg *cfg = g->cfg;
    char err[128];
    net_mux *mx = net_mux_new(cfg->spec, cfg->timeout_ms, g->n_sess, err, sizeof err);
    sess_plan *plan = calloc((size_t)g->n_sess, sizeof(*plan));
    if (mx == NULL || plan == NULL)
        g->setup_failed = true;
    /* Untimed: write the keys a read workload needs (session gs writes keys
     * [keys*gs/clients, keys*(gs+1)/clients)). */
    if (!g->setup_failed && (cfg->w == W_GET || cfg->w == W_MIXED)) {
        for (int s = 0; s < g->n_sess; s++) {
            uint64_t gs = (uint64_t)(g->first_sess + s);
            uint64_t a = cfg->keys * gs / (uint64_t)cfg->clients;
            uint64_t b = cfg->keys * (gs + 1) / (uint64_t)cfg->clients;
            plan[s] = (sess_plan){.first = a, .count = b - a};
        }
        if (!run_plans(g, mx, plan, true))
            g->setup_failed = true;
    }
    /* Ops of this group: session gs gets ops [ops*gs/clients, ops*(gs+1)/clients). */
    if (!g->setup_failed) {
        for (int s = 0; s < g->n_sess; s++) {
            uint64_t gs = (uint64_t)(g->first_sess + s);
            uint64_t a = cfg->ops * gs / (uint64_t)cfg->clients;
            uint64_t b = cfg->ops * (gs + 1) / (uint64_t)cfg->clients;
            plan[s] = (sess_plan){.first = a,
                                  .count = b - a,
                                  .rng = 0x9e3779b97f4a7c15ULL ^ (gs + 1) * 0xbf58476d1ce4e5b9ULL};
        }
    }
    pthread_barrier_wait(g->barrier);
    if (!g->setup_failed) {
        g->start_ns = cli_now_ns();
        if (!run_plans(g, mx, plan, false))
            g->setup_failed = true;
        g->end_ns = cli_now_ns();
    }
    free(plan);
    net_mux_free(mx);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *sorted, uint64_t n, double p)
{
    if (n == 0)
        return 0;
    uint64_t i = (uint64_t)(p * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)sorted[i] / 1e6;
}

/* What the command line asks for. */
typedef struct bench_args {
    cli_client_opts o;
    uint64_t clients, conns, ops, key_size, value_size, keys;
    bool json;
    const char *wname;
    workload w;
} bench_args;

/* Parses `hstore bench` arguments into *a.  -1 to go on; else the exit code. */
static int bench_parse_args(int argc, char **argv, bench_args *a)
{
    enum { O_CLIENTS = 4000, O_CONNS, O_OPS, O_KEY_SIZE, O_VALUE_SIZE, O_KEYS, O_JSON };
    static const struct option longopts[] = {
        CLI_CLIENT_LONGOPTS,
        {"clients", required_argument, NULL, O_CLIENTS},
        {"conns", required_argument, NULL, O_CONNS},
        {"ops", required_argument, NULL, O_OPS},
        {"key-size", required_argument, NULL, O_KEY_SIZE},
        {"value-size", required_argument, NULL, O_VALUE_SIZE},
        {"keys", required_argument, NULL, O_KEYS},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_client_getopt_start(&a->o);
    a->clients = 1;
    a->conns = 1;
    a->ops = 10000;
    a->key_size = 16;
    a->value_size = 256;
    a->keys = 0;
    a->json = false;
    int c;
    while ((c = cli_client_getopt(argc, argv, ":h", longopts, &a->o)) != -1) {
        if (c == CLI_OPT_BAD)
            return CLI_EXIT_USAGE;
        uint64_t *dst = NULL;
        const char *what = NULL;
        uint64_t lo = 0, hi = 0;
        switch (c) {
        case 'h':
            fputs(bench_help, stdout);
            fputs(cli_client_opts_help, stdout);
            return CLI_EXIT_OK;
        case O_CLIENTS:
            dst = &a->clients;
            what = "--clients N, 1 to 4096";
            lo = 1;
            hi = 4096;
            break;
        case O_CONNS:
            dst = &a->conns;
            what = "--conns C, 1 to 64";
            lo = 1;
            hi = 64;
            break;
        case O_OPS:
            dst = &a->ops;
            what = "--ops M, at least 1";
            lo = 1;
            hi = UINT64_C(1) << 40;
            break;
        case O_KEY_SIZE:
            dst = &a->key_size;
            what = "--key-size B, 2 to 60";
            lo = 2;
            hi = 60;
            break;
        case O_VALUE_SIZE:
            dst = &a->value_size;
            what = "--value-size B, up to 64m";
            lo = 0;
            hi = 64u << 20;
            break;
        case O_KEYS:
            dst = &a->keys;
            what = "--keys K, at least 1";
            lo = 1;
            hi = UINT64_C(1) << 32;
            break;
        case O_JSON: a->json = true; break;
        default: return cli_getopt_error(c, argv, "bench");
        }
        if (dst != NULL) {
            bool suffix = c == O_VALUE_SIZE;
            if (cli_parse_u64(optarg, suffix, dst) != 0 || *dst < lo || *dst > hi) {
                cli_err("bench wants %s; see `hstore bench --help`", what);
                return CLI_EXIT_USAGE;
            }
        }
    }
    if (argc - optind != 1) {
        cli_err("bench wants one workload: put, get, append or mixed; see `hstore bench --help`");
        return CLI_EXIT_USAGE;
    }
    a->wname = argv[optind];
    if (strcmp(a->wname, "put") == 0)
        a->w = W_PUT;
    else if (strcmp(a->wname, "get") == 0)
        a->w = W_GET;
    else if (strcmp(a->wname, "append") == 0)
        a->w = W_APPEND;
    else if (strcmp(a->wname, "mixed") == 0)
        a->w = W_MIXED;
    else {
        cli_err("unknown workload '%s': use put, get, append or mixed", a->wname);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* The run's configuration from the arguments: the SPEC (checked by a probe
 * client, which also counts the nodes into *n_nodes) and the value written.
 * 0, or an exit code with nothing left allocated. */
static int bench_configure(bench_args *a, bench_cfg *cfg, int *n_nodes)
{
    cfg->w = a->w;
    if (cli_resolve_spec(&a->o, cfg->spec, sizeof cfg->spec) != 0)
        return CLI_EXIT_USAGE;
    char err[256];
    net_client *probe = net_client_new(cfg->spec, 1000, err, sizeof err);
    if (probe == NULL) {
        cli_err("bad cluster SPEC '%s': %s", cfg->spec, err);
        return CLI_EXIT_USAGE;
    }
    *n_nodes = net_client_n_nodes(probe);
    net_client_free(probe);
    if (a->keys == 0)
        a->keys = a->ops < 100000 ? a->ops : 100000;
    cfg->timeout_ms = (int)(a->o.timeout_s * 1000);
    cfg->ops = a->ops;
    cfg->keys = a->keys;
    cfg->key_size = a->key_size;
    cfg->value_size = a->value_size;
    cfg->clients = (int)a->clients;
    cfg->value = malloc(a->value_size ? a->value_size : 1);
    if (a->conns > a->clients)
        a->conns = a->clients;
    return 0;
}

/* What a run measured. */
typedef struct bench_result {
    uint64_t errors, done, t_start, t_end;
    bool setup_failed;
} bench_result;

/* Runs the groups (one thread each, started together at a barrier) and sums
 * up what they measured into *res; the latencies land in lat. */
static void bench_run(const bench_cfg *cfg, bench_group *bg, uint64_t conns, uint64_t *lat,
                      bench_result *res)
{
    uint64_t clients = (uint64_t)cfg->clients;
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)conns);
    for (uint64_t i = 0; i < conns; i++) {
        bg[i].cfg = cfg;
        bg[i].first_sess = (int)(clients * i / conns);
        bg[i].n_sess = (int)(clients * (i + 1) / conns) - bg[i].first_sess;
        bg[i].lat_ns = lat;
        bg[i].barrier = &barrier;
    }
    for (uint64_t i = 0; i < conns; i++) {
        if (pthread_create(&bg[i].th, NULL, group_thread, &bg[i]) != 0) {
            /* The barrier counts every thread: nothing has been measured yet. */
            cli_err("bench: cannot start thread %" PRIu64 " (too many --conns?)", i);
            _exit(CLI_EXIT_USAGE);
        }
    }
    *res = (bench_result){.t_start = UINT64_MAX};
    for (uint64_t i = 0; i < conns; i++) {
        pthread_join(bg[i].th, NULL);
        res->setup_failed |= bg[i].setup_failed;
        res->errors += bg[i].errors;
        res->done += bg[i].done;
        if (bg[i].start_ns != 0) {
            if (bg[i].start_ns < res->t_start)
                res->t_start = bg[i].start_ns;
            if (bg[i].end_ns > res->t_end)
                res->t_end = bg[i].end_ns;
        }
    }
    pthread_barrier_destroy(&barrier);
}

/* Prints throughput and latency percentiles (sorting lat), as a table or as
 * one JSON object.  The exit code: UNAVAIL when every op failed. */
static int bench_report(const bench_args *a, int n_nodes, uint64_t *lat, const bench_result *res)
{
    /* Every op ran (a run that could not go on is a setup failure). */
    uint64_t done = res->done, errors = res->errors;
    uint64_t n = done;
    qsort(lat, n, sizeof lat[0], cmp_u64);
    double secs = res->t_end > res->t_start ? (double)(res->t_end - res->t_start) / 1e9 : 0;
    double tput = secs > 0 ? (double)done / secs : 0;
    double sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += (double)lat[i];
    double mean = n ? sum / (double)n / 1e6 : 0;
    double p50 = pct_ms(lat, n, 0.50), p90 = pct_ms(lat, n, 0.90), p99 = pct_ms(lat, n, 0.99);
    double mx = n ? (double)lat[n - 1] / 1e6 : 0;
    if (a->json) {
        printf(
            "{\"workload\":\"%s\",\"nodes\":%d,\"clients\":%" PRIu64 ",\"ops\":%" PRIu64
            ",\"key_size\":%" PRIu64 ",\"value_size\":%" PRIu64 ",\"keys\":%" PRIu64
            ",\"seconds\":%.4f,\"ops_per_sec\":%.1f,\"mean_ms\":%.4f,\"p50_ms\":%.4f,\"p90_ms\":%.4f"
            ",\"p99_ms\":%.4f,\"max_ms\":%.4f,\"errors\":%" PRIu64 "}\n",
            a->wname, n_nodes, a->clients, done, a->key_size, a->value_size, a->keys, secs, tput,
            mean, p50, p90, p99, mx, errors);
    } else {
        printf("bench %s: %d nodes, %" PRIu64 " clients, %" PRIu64 " ops, key %" PRIu64
               " B, value %" PRIu64 " B, %" PRIu64 " keys\n",
               a->wname, n_nodes, a->clients, done, a->key_size, a->value_size, a->keys);
        printf("  throughput  %.1f ops/s (%.3f s)\n", tput, secs);
        printf("  latency     p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  mean %.3f ms\n",
               p50, p90, p99, mx, mean);
        printf("  errors      %" PRIu64 "%s\n", errors,
               errors ? " (timeouts or failed replies; see `hstore status`)" : "");
    }
    if (done > 0 && errors == done)
        return CLI_EXIT_UNAVAIL;
    return CLI_EXIT_OK;
}

int cmd_bench(int argc, char **argv)
{
    bench_args a;
    int rc = bench_parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    bench_cfg *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL)
        return CLI_EXIT_UNAVAIL;
    int n_nodes = 0;
    if ((rc = bench_configure(&a, cfg, &n_nodes)) != 0) {
        free(cfg);
        return rc;
    }
    uint64_t *lat = calloc(a.ops, sizeof(uint64_t));
    bench_group *bg = calloc(a.conns, sizeof *bg);
    if (cfg->value == NULL || lat == NULL || bg == NULL) {
        cli_err("bench: out of memory for %" PRIu64 " operations", a.ops);
        free(cfg->value);
        free(lat);
        free(bg);
        free(cfg);
        return CLI_EXIT_USAGE;
    }
    for (uint64_t i = 0; i < a.value_size; i++)
        cfg->value[i] = (uint8_t)('a' + i % 26);

    bench_result res;
    bench_run(cfg, bg, a.conns, lat, &res);
    if (res.setup_failed) {
        cli_err("bench: could not prepare the keys or run the operations (is a majority of "
                "the cluster up? see `hstore status`)");
        rc = CLI_EXIT_UNAVAIL;
    } else {
        rc = bench_report(&a, n_nodes, lat, &res);
    }
    free(cfg->value);
    free(cfg);
    free(lat);
    free(bg);
    return rc;
}
