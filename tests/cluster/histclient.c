/*
 * histclient.c - build/histclient: a load client for the fault tests that
 * records every operation into a history for build/lincheck and then runs the
 * 6.824 lab 3 checks on the final state.
 *
 *   histclient --cluster SPEC [--clients C] [--duration-ms D] [--ops N]
 *              [--keys K] [--key-prefix P] [--mix append=50,put=0,get=50]
 *              [--timeout-ms T] [--out FILE] [--name NAME] [--clock monotonic|realtime]
 *              [--src ADDR] [--dup P] [--final-timeout-ms F] [--no-final] [--seed S]
 *
 * C threads, each a client session of its own (its own net_client, so its own
 * client id and sequence numbers), issue operations one after the other for D
 * milliseconds (or N operations each, whichever comes first) on keys chosen at
 * random among K keys "P0".."P(K-1)".  Every append and put writes a token
 * unique to the operation, "NAMEc.SEQ;" (client c of this process, its SEQth
 * operation), so the final value of a key is a list of tokens and each token
 * names the one operation that wrote it.
 *
 * History: one line per operation in the format of tests/lib/lincheck.h, call
 * and return times from one clock (CLOCK_MONOTONIC by default; --clock
 * realtime when the history is merged with one recorded by another program,
 * e.g. shell loops using $EPOCHREALTIME).  An operation that the client
 * library gave up on (NET_EUNAVAIL) is "unknown": it may or may not have taken
 * effect.
 *
 * --dup P: after a successful command, with probability P send the very same
 * (client id, seq) once more, as a client does whose first reply was lost
 * (the lab's "reply dropped after the handler ran").  The state machine must
 * answer from its session table without applying the command twice.
 *
 * --src ADDR: every connection leaves from ADDR (the spec's "LOCAL;REMOTE"
 * address form), so iptables rules can cut this client off from chosen nodes.
 *
 * Final checks (unless --no-final): a fresh session reads every key (retrying
 * until --final-timeout-ms) and, for each key, the token list must satisfy
 * the lab's checkClntAppends, generalized to shared keys:
 *   - no token appears twice (an append applied twice);
 *   - every token was written by an operation of this run on this key (no
 *     value out of nowhere);
 *   - one client's tokens appear in the order it issued them;
 *   - if no put touched the key, every acknowledged append is present (an
 *     acknowledged append was lost otherwise).  Unknown appends may be
 *     present (once) or absent.
 * The final reads go into the history too, so lincheck sees them.
 *
 * Exit status: 0 all good, 1 a check failed (details on stderr), 2 bad usage,
 * 3 the final reads could not be done (no quorum within the deadline) or
 * the history could not be written.  Always ends by itself: the load phase
 * lasts at most D plus one operation deadline, the final phase at most F.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/client.h"
#include "raftkv/kv_ops.h"
#include "tests/lib/lincheck.h"

#define HC_MAX_CLIENTS 256
#define HC_MAX_KEYS 4096

typedef enum { HC_PUT, HC_APPEND, HC_GET } hc_kind;
typedef enum { HC_OK, HC_FAIL, HC_UNKNOWN } hc_status;

typedef struct hc_op {
    hc_kind kind;
    hc_status status;
    int key;
    uint32_t seq; /* the client's operation number (token) */
    int64_t call_ns, ret_ns;
    char *result; /* get: value read (malloc'd) */
    size_t result_len;
} hc_op;

typedef struct hc_client {
    int idx;
    pthread_t th;
    uint64_t rng;
    hc_op *ops;
    size_t n, cap;
    int errors; /* unexpected replies */
    long lat_max_ms;
} hc_client;

static struct {
    const char *spec;
    char *client_spec; /* spec with --src applied */
    int clients;
    long duration_ms;
    long ops;
    int keys;
    const char *key_prefix;
    int mix_append, mix_put, mix_get;
    int timeout_ms;
    const char *out;
    const char *name;
    clockid_t clock;
    const char *src;
    double dup;
    long final_timeout_ms;
    bool final;
    uint64_t seed;
    int64_t end_ns;
} g = {
    .clients = 5,
    .duration_ms = 5000,
    .keys = 0,
    .key_prefix = "k",
    .mix_append = 50,
    .mix_get = 50,
    .timeout_ms = 5000,
    .name = "c",
    .clock = CLOCK_MONOTONIC,
    .final_timeout_ms = 30000,
    .final = true,
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(g.clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: a per-thread generator, seeded from --seed and the index. */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ull;
}

static void key_name(int k, char *buf, size_t len)
{
    snprintf(buf, len, "%s%d", g.key_prefix, k);
}

static void token(int client, uint32_t seq, char *buf, size_t len)
{
    snprintf(buf, len, "%s%d.%" PRIu32 ";", g.name, client, seq);
}

static int push_op(hc_client *c, const hc_op *op)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 256;
        hc_op *p = realloc(c->ops, nc * sizeof *p);
        if (!p)
            return -1;
        c->ops = p;
        c->cap = nc;
    }
    c->ops[c->n++] = *op;
    return 0;
}

/* Runs one op through cl; fills status/result/ret_ns.  dup: resend the
 * command once with the same seq after a success. */
static void run_op(hc_client *c, net_client *cl, hc_op *op, bool dup)
{
    char kbuf[128], tok[96];
    key_name(op->key, kbuf, sizeof kbuf);
    kv_op kop = {.path = kbuf};
    if (op->kind == HC_GET) {
        kop.type = KV_OP_GET;
    } else {
        token(c->idx, op->seq, tok, sizeof tok);
        kop.type = op->kind == HC_PUT ? KV_OP_PUT : KV_OP_APPEND;
        kop.data = (const uint8_t *)tok;
        kop.data_len = strlen(tok);
    }
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    if (kv_op_encode(&kop, &enc, &enc_len) != 0) {
        op->status = HC_FAIL;
        op->call_ns = op->ret_ns = now_ns();
        c->errors++;
        return;
    }
    bool read = op->kind == HC_GET;
    void *reply = NULL;
    size_t reply_len = 0;
    uint64_t seq = net_client_next_seq(cl);
    op->call_ns = now_ns();
    int rc = net_client_call(cl, read, enc, enc_len, &reply, &reply_len);
    if (rc == NET_OK && !read && dup) {
        /* The first reply "was lost": the same (client id, seq) again.  Its
         * answer, not the first, is the one we decode below. */
        free(reply);
        reply = NULL;
        reply_len = 0;
        int rc2 = net_client_call_seq(cl, seq, enc, enc_len, &reply, &reply_len);
        if (rc2 != NET_OK) {
            /* The command was acknowledged once already: it is done. */
            op->ret_ns = now_ns();
            op->status = HC_OK;
            free(enc);
            return;
        }
    }
    op->ret_ns = now_ns();
    free(enc);
    if (rc == NET_EUNAVAIL) {
        op->status = HC_UNKNOWN;
        return;
    }
    if (rc != NET_OK) {
        fprintf(stderr, "histclient: %s%d: %s %s: client error %d\n", g.name, c->idx,
                read ? "get" : "write", kbuf, rc);
        op->status = HC_FAIL;
        c->errors++;
        return;
    }
    kv_reply r;
    if (kv_reply_decode(reply, reply_len, &r) != 0) {
        free(reply);
        fprintf(stderr, "histclient: %s%d: damaged reply for %s\n", g.name, c->idx, kbuf);
        op->status = read ? HC_FAIL : HC_UNKNOWN;
        c->errors++;
        return;
    }
    free(reply);
    if (read) {
        if (r.status == 0) {
            op->status = HC_OK;
            op->result = malloc(r.data_len + 1);
            if (op->result) {
                memcpy(op->result, r.data, r.data_len);
                op->result[r.data_len] = '\0';
                op->result_len = r.data_len;
            } else {
                op->status = HC_FAIL;
            }
        } else if (r.status == ENOENT) {
            op->status = HC_OK; /* a missing key reads as "" */
            op->result = calloc(1, 1);
            op->result_len = 0;
            if (!op->result)
                op->status = HC_FAIL;
        } else {
            fprintf(stderr, "histclient: %s%d: get %s: status %d\n", g.name, c->idx, kbuf,
                    r.status);
            op->status = HC_FAIL;
            c->errors++;
        }
    } else {
        if (r.status == 0 || r.status == KV_EREPLYGONE) {
            op->status = HC_OK;
        } else if (r.status == KV_ESTALE) {
            op->status = HC_UNKNOWN;
        } else {
            fprintf(stderr, "histclient: %s%d: %s %s: status %d\n", g.name, c->idx,
                    op->kind == HC_PUT ? "put" : "append", kbuf, r.status);
            op->status = HC_UNKNOWN; /* keep it in the checks, but count it */
            c->errors++;
        }
    }
    kv_reply_free(&r);
}

static void *client_main(void *arg)
{
    hc_client *c = arg;
    char err[256] = "";
    net_client *cl = net_client_new(g.client_spec, g.timeout_ms, err, sizeof err);
    if (!cl) {
        fprintf(stderr, "histclient: %s%d: %s\n", g.name, c->idx, err);
        c->errors++;
        return NULL;
    }
    int total = g.mix_append + g.mix_put + g.mix_get;
    for (uint32_t seq = 1;; seq++) {
        if (g.ops > 0 && (long)seq > g.ops)
            break;
        if (now_ns() >= g.end_ns)
            break;
        hc_op op = {.seq = seq};
        op.key = (int)(rng_next(&c->rng) % (uint64_t)g.keys);
        int m = (int)(rng_next(&c->rng) % (uint64_t)total);
        op.kind = m < g.mix_append ? HC_APPEND : m < g.mix_append + g.mix_put ? HC_PUT : HC_GET;
        bool dup = g.dup > 0 && op.kind != HC_GET &&
                   (double)(rng_next(&c->rng) >> 11) / 9007199254740992.0 < g.dup;
        run_op(c, cl, &op, dup);
        long lat = (long)((op.ret_ns - op.call_ns) / 1000000);
        if (lat > c->lat_max_ms)
            c->lat_max_ms = lat;
        if (push_op(c, &op) != 0) {
            free(op.result);
            c->errors++;
            break;
        }
    }
    net_client_free(cl);
    return NULL;
}

/* ---- history output -------------------------------------------------------- */

static int write_op(FILE *f, const char *client, const hc_op *op, const char *key,
                    const char *value)
{
    static const char *kinds[] = {"put", "append", "get"};
    static const char *sts[] = {"ok", "fail", "unknown"};
    char *k = lc_encode(key, strlen(key));
    char *v = value ? lc_encode(value, strlen(value)) : NULL;
    char *r =
        op->kind == HC_GET && op->status == HC_OK ? lc_encode(op->result, op->result_len) : NULL;
    int rc = -1;
    if (k && (value == NULL || v) && (r || !(op->kind == HC_GET && op->status == HC_OK))) {
        char ret[32];
        if (op->status == HC_UNKNOWN)
            snprintf(ret, sizeof ret, "-");
        else
            snprintf(ret, sizeof ret, "%" PRId64, op->ret_ns);
        rc = fprintf(f, "%s %s %s %" PRId64 " %s %s %s %s\n", client, kinds[op->kind], k,
                     op->call_ns, ret, sts[op->status], v ? v : "-", r ? r : "-") < 0
                 ? -1
                 : 0;
    }
    free(k);
    free(v);
    free(r);
    return rc;
}

/* ---- final checks ----------------------------------------------------------- */

typedef struct tokinfo {
    int client;
    uint32_t seq;
} tokinfo;

/* Parses "NAMEc.SEQ;" tokens of value v.  Returns the count, or -1 (with the
 * offending token in bad) if a piece is not a token of this run. */
static long parse_tokens(const char *v, size_t len, tokinfo **out, char *bad, size_t badlen)
{
    size_t cap = 16, n = 0, nl = strlen(g.name);
    tokinfo *t = malloc(cap * sizeof *t);
    if (!t)
        return -1;
    size_t i = 0;
    while (i < len) {
        const char *semi = memchr(v + i, ';', len - i);
        size_t tl = semi ? (size_t)(semi - (v + i)) : len - i;
        const char *p = v + i;
        int client = -1;
        unsigned long seq = 0;
        bool ok = false;
        if (tl > nl && memcmp(p, g.name, nl) == 0 && semi) {
            char buf[64];
            if (tl - nl < sizeof buf) {
                memcpy(buf, p + nl, tl - nl);
                buf[tl - nl] = '\0';
                char *dot = strchr(buf, '.');
                if (dot) {
                    char *e1, *e2;
                    *dot = '\0';
                    long cl = strtol(buf, &e1, 10);
                    seq = strtoul(dot + 1, &e2, 10);
                    ok = *buf && !*e1 && dot[1] && !*e2 && cl >= 0 && cl < g.clients && seq > 0;
                    client = (int)cl;
                }
            }
        }
        if (!ok) {
            snprintf(bad, badlen, "%.*s", (int)(tl > 60 ? 60 : tl), p);
            free(t);
            return -1;
        }
        if (n == cap) {
            cap *= 2;
            tokinfo *nt = realloc(t, cap * sizeof *t);
            if (!nt) {
                free(t);
                return -1;
            }
            t = nt;
        }
        t[n].client = client;
        t[n].seq = (uint32_t)seq;
        n++;
        i += tl + 1;
    }
    *out = t;
    return (long)n;
}

static hc_op *find_op(hc_client *cs, int client, uint32_t seq)
{
    hc_client *c = &cs[client];
    if (seq == 0 || seq > c->n)
        return NULL;
    hc_op *op = &c->ops[seq - 1]; /* ops[i] has seq i+1 */
    return op->seq == seq ? op : NULL;
}

static const char *st_name(hc_status s)
{
    return s == HC_OK ? "ok" : s == HC_FAIL ? "fail" : "unknown";
}

/* Checks key k's final value; returns the number of violations found. */
static int check_key(hc_client *cs, int k, const char *v, size_t len)
{
    char kbuf[128], bad[80];
    key_name(k, kbuf, sizeof kbuf);
    tokinfo *t = NULL;
    long n = parse_tokens(v, len, &t, bad, sizeof bad);
    if (n < 0) {
        fprintf(stderr,
                "histclient: CHECK key %s: final value holds '%s', which no operation "
                "of this run wrote\n",
                kbuf, bad);
        return 1;
    }
    int viol = 0;
    /* Count each token; note per-client order. */
    uint32_t *last = calloc((size_t)g.clients, sizeof *last);
    unsigned char **seen = calloc((size_t)g.clients, sizeof *seen);
    if (!last || !seen) {
        free(last);
        free(seen);
        free(t);
        return 1;
    }
    for (int c = 0; c < g.clients; c++)
        seen[c] = calloc(cs[c].n + 2, 1);
    for (long i = 0; i < n; i++) {
        int c = t[i].client;
        uint32_t s = t[i].seq;
        hc_op *op = find_op(cs, c, s);
        if (!op || op->kind == HC_GET || op->key != k || op->status == HC_FAIL) {
            fprintf(stderr,
                    "histclient: CHECK key %s: token %s%d.%" PRIu32 " in the final "
                    "value, but that operation %s\n",
                    kbuf, g.name, c, s,
                    !op                  ? "was never issued"
                    : op->kind == HC_GET ? "was a get"
                    : op->key != k       ? "wrote another key"
                                         : "failed");
            viol++;
            continue;
        }
        if (seen[c] && seen[c][s]) {
            fprintf(stderr,
                    "histclient: CHECK key %s: duplicate element %s%d.%" PRIu32
                    " (%s %s applied twice)\n",
                    kbuf, g.name, c, s, st_name(op->status), op->kind == HC_PUT ? "put" : "append");
            viol++;
        } else if (seen[c]) {
            seen[c][s] = 1;
        }
        if (s < last[c]) {
            fprintf(stderr,
                    "histclient: CHECK key %s: wrong order: %s%d.%" PRIu32 " after %s%d.%" PRIu32
                    "\n",
                    kbuf, g.name, c, s, g.name, c, last[c]);
            viol++;
        }
        if (s > last[c])
            last[c] = s;
    }
    /* Missing acknowledged appends, when no put replaced the value. */
    bool had_put = false;
    for (int c = 0; c < g.clients && !had_put; c++)
        for (size_t i = 0; i < cs[c].n; i++)
            if (cs[c].ops[i].key == k && cs[c].ops[i].kind == HC_PUT &&
                cs[c].ops[i].status != HC_FAIL) {
                had_put = true;
                break;
            }
    if (!had_put) {
        for (int c = 0; c < g.clients; c++)
            for (size_t i = 0; i < cs[c].n; i++) {
                hc_op *op = &cs[c].ops[i];
                if (op->key == k && op->kind == HC_APPEND && op->status == HC_OK && seen[c] &&
                    !seen[c][op->seq]) {
                    if (viol < 20)
                        fprintf(stderr,
                                "histclient: CHECK key %s: missing element %s%d.%" PRIu32
                                " (an acknowledged append is lost)\n",
                                kbuf, g.name, c, op->seq);
                    viol++;
                }
            }
    }
    for (int c = 0; c < g.clients; c++)
        free(seen[c]);
    free(seen);
    free(last);
    free(t);
    return viol;
}

/* ---- options ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fputs("usage: histclient --cluster SPEC [--clients C] [--duration-ms D] [--ops N]\n"
          "                  [--keys K] [--key-prefix P] [--mix append=A,put=P,get=G]\n"
          "                  [--timeout-ms T] [--out FILE] [--name NAME]\n"
          "                  [--clock monotonic|realtime] [--src ADDR] [--dup PROB]\n"
          "                  [--final-timeout-ms F] [--no-final] [--seed S]\n"
          "Runs C client sessions for D ms (or N ops each) over K keys, writes the history\n"
          "(lincheck format) to FILE, then reads every key and checks each append is there\n"
          "exactly once and in order.  Exit 0 ok, 1 check failed, 2 usage, 3 no final read.\n",
          f);
}

static int parse_mix(const char *s)
{
    g.mix_append = g.mix_put = g.mix_get = 0;
    char *dup = strdup(s);
    if (!dup)
        return -1;
    int rc = 0;
    for (char *save = NULL, *p = strtok_r(dup, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(p, '=');
        if (!eq) {
            rc = -1;
            break;
        }
        *eq = '\0';
        int v = atoi(eq + 1);
        if (v < 0)
            rc = -1;
        else if (!strcmp(p, "append"))
            g.mix_append = v;
        else if (!strcmp(p, "put"))
            g.mix_put = v;
        else if (!strcmp(p, "get"))
            g.mix_get = v;
        else
            rc = -1;
    }
    free(dup);
    if (g.mix_append + g.mix_put + g.mix_get <= 0)
        rc = -1;
    return rc;
}

/* Rewrites "ID=HOST:PORT,..." into "ID=SRC;HOST:PORT,...". */
static char *apply_src(const char *spec, const char *src)
{
    size_t cap = strlen(spec) * 2 + 64 * 32;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *p = spec; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || o + len + strlen(src) + 3 >= cap) {
            free(out);
            return NULL;
        }
        o += (size_t)snprintf(out + o, cap - o, "%s%.*s%s;%.*s", o ? "," : "", (int)(eq - p + 1), p,
                              src, (int)(len - (size_t)(eq - p + 1)), eq + 1);
        p += len;
        if (*p == ',')
            p++;
    }
    return out;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"cluster", required_argument, NULL, 'c'},
        {"clients", required_argument, NULL, 'C'},
        {"duration-ms", required_argument, NULL, 'd'},
        {"ops", required_argument, NULL, 'n'},
        {"keys", required_argument, NULL, 'k'},
        {"key-prefix", required_argument, NULL, 'p'},
        {"mix", required_argument, NULL, 'm'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"out", required_argument, NULL, 'o'},
        {"name", required_argument, NULL, 'N'},
        {"clock", required_argument, NULL, 'K'},
        {"src", required_argument, NULL, 's'},
        {"dup", required_argument, NULL, 'D'},
        {"final-timeout-ms", required_argument, NULL, 'F'},
        {"no-final", no_argument, NULL, 'x'},
        {"seed", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    g.spec = getenv("HSTORE_CLUSTER");
    bool seeded = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (o) {
        case 'c': g.spec = optarg; break;
        case 'C': g.clients = atoi(optarg); break;
        case 'd': g.duration_ms = atol(optarg); break;
        case 'n': g.ops = atol(optarg); break;
        case 'k': g.keys = atoi(optarg); break;
        case 'p': g.key_prefix = optarg; break;
        case 'm':
            if (parse_mix(optarg) != 0) {
                fprintf(stderr, "histclient: bad --mix '%s'\n", optarg);
                return 2;
            }
            break;
        case 't': g.timeout_ms = atoi(optarg); break;
        case 'o': g.out = optarg; break;
        case 'N': g.name = optarg; break;
        case 'K':
            if (!strcmp(optarg, "monotonic"))
                g.clock = CLOCK_MONOTONIC;
            else if (!strcmp(optarg, "realtime"))
                g.clock = CLOCK_REALTIME;
            else {
                fprintf(stderr, "histclient: bad --clock '%s'\n", optarg);
                return 2;
            }
            break;
        case 's': g.src = optarg; break;
        case 'D': g.dup = atof(optarg); break;
        case 'F': g.final_timeout_ms = atol(optarg); break;
        case 'x': g.final = false; break;
        case 'S':
            g.seed = strtoull(optarg, NULL, 0);
            seeded = true;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !g.spec || !*g.spec || g.clients < 1 || g.clients > HC_MAX_CLIENTS ||
        g.duration_ms <= 0 || g.ops < 0 || g.keys < 0 || g.keys > HC_MAX_KEYS ||
        g.timeout_ms <= 0 || g.final_timeout_ms <= 0 || g.dup < 0 || g.dup > 1 ||
        strlen(g.name) > 16 || strlen(g.key_prefix) > 64) {
        usage(stderr);
        return 2;
    }
    if (g.keys == 0)
        g.keys = g.clients;
    if (!seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        g.seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
    }
    g.client_spec = g.src ? apply_src(g.spec, g.src) : strdup(g.spec);
    if (!g.client_spec) {
        fprintf(stderr, "histclient: bad cluster spec '%s'\n", g.spec);
        return 2;
    }
    fprintf(stderr,
            "histclient: %d clients, %ld ms, %d keys '%s*', mix append=%d put=%d get=%d, "
            "dup=%.2f, seed=%" PRIu64 "\n",
            g.clients, g.duration_ms, g.keys, g.key_prefix, g.mix_append, g.mix_put, g.mix_get,
            g.dup, g.seed);

    hc_client *cs = calloc((size_t)g.clients, sizeof *cs);
    if (!cs)
        return 3;
    int64_t t0 = now_ns();
    g.end_ns = t0 + (int64_t)g.duration_ms * 1000000;
    for (int i = 0; i < g.clients; i++) {
        cs[i].idx = i;
        cs[i].rng = (g.seed + 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1)) | 1;
        if (pthread_create(&cs[i].th, NULL, client_main, &cs[i]) != 0) {
            fprintf(stderr, "histclient: cannot start thread %d\n", i);
            return 3;
        }
    }
    for (int i = 0; i < g.clients; i++)
        pthread_join(cs[i].th, NULL);
    int64_t t1 = now_ns();

    /* Final reads. */
    int rc = 0;
    hc_op *finals = calloc((size_t)g.keys, sizeof *finals);
    if (!finals)
        return 3;
    if (g.final) {
        hc_client fc = {.idx = 0};
        char err[256];
        net_client *cl = net_client_new(g.client_spec, (int)g.final_timeout_ms, err, sizeof err);
        if (!cl) {
            fprintf(stderr, "histclient: %s\n", err);
            return 3;
        }
        int64_t fend = now_ns() + g.final_timeout_ms * 1000000;
        for (int k = 0; k < g.keys; k++) {
            hc_op *op = &finals[k];
            do {
                free(op->result);
                *op = (hc_op){.kind = HC_GET, .key = k};
                run_op(&fc, cl, op, false);
            } while (op->status != HC_OK && now_ns() < fend);
            if (op->status != HC_OK) {
                char kbuf[128];
                key_name(k, kbuf, sizeof kbuf);
                fprintf(stderr,
                        "histclient: FINAL read of %s failed (%s) within %ld ms: no "
                        "quorum?\n",
                        kbuf, st_name(op->status), g.final_timeout_ms);
                rc = 3;
                break;
            }
        }
        net_client_free(cl);
    }

    /* History. */
    if (g.out) {
        FILE *f = fopen(g.out, "w");
        if (!f) {
            fprintf(stderr, "histclient: cannot write %s: %s\n", g.out, strerror(errno));
            return 3;
        }
        char cname[48], kbuf[128], tok[96];
        for (int i = 0; i < g.clients; i++) {
            snprintf(cname, sizeof cname, "%s%d", g.name, i);
            for (size_t j = 0; j < cs[i].n; j++) {
                hc_op *op = &cs[i].ops[j];
                key_name(op->key, kbuf, sizeof kbuf);
                token(i, op->seq, tok, sizeof tok);
                if (write_op(f, cname, op, kbuf, op->kind == HC_GET ? NULL : tok) != 0)
                    rc = 3;
            }
        }
        if (g.final && rc == 0) {
            snprintf(cname, sizeof cname, "%sfinal", g.name);
            for (int k = 0; k < g.keys; k++) {
                key_name(k, kbuf, sizeof kbuf);
                if (write_op(f, cname, &finals[k], kbuf, NULL) != 0)
                    rc = 3;
            }
        }
        if (fclose(f) != 0)
            rc = 3;
        if (rc == 3)
            fprintf(stderr, "histclient: could not write the whole history to %s\n", g.out);
    }

    /* Summary and checks. */
    long cnt[3][3] = {{0}};
    long lat_max = 0, total = 0;
    int errors = 0;
    for (int i = 0; i < g.clients; i++) {
        for (size_t j = 0; j < cs[i].n; j++)
            cnt[cs[i].ops[j].kind][cs[i].ops[j].status]++;
        total += (long)cs[i].n;
        if (cs[i].lat_max_ms > lat_max)
            lat_max = cs[i].lat_max_ms;
        errors += cs[i].errors;
    }
    double secs = (double)(t1 - t0) / 1e9;
    fprintf(stderr,
            "histclient: %ld ops in %.1f s (%.0f/s), max latency %ld ms; "
            "append ok=%ld unknown=%ld, put ok=%ld unknown=%ld, get ok=%ld failed=%ld%s\n",
            total, secs, secs > 0 ? (double)total / secs : 0.0, lat_max, cnt[HC_APPEND][HC_OK],
            cnt[HC_APPEND][HC_UNKNOWN], cnt[HC_PUT][HC_OK], cnt[HC_PUT][HC_UNKNOWN],
            cnt[HC_GET][HC_OK], cnt[HC_GET][HC_UNKNOWN] + cnt[HC_GET][HC_FAIL],
            g.out ? "" : " (no --out: history not kept)");
    if (errors) {
        fprintf(stderr, "histclient: CHECK %d unexpected replies or client errors (above)\n",
                errors);
        if (rc == 0)
            rc = 1;
    }
    if (g.final && rc != 3) {
        int viol = 0;
        for (int k = 0; k < g.keys; k++)
            viol +=
                check_key(cs, k, finals[k].result ? finals[k].result : "", finals[k].result_len);
        if (viol) {
            fprintf(stderr, "histclient: CHECK %d violations of exactly-once/in-order appends\n",
                    viol);
            rc = 1;
        }
    }
    for (int i = 0; i < g.clients; i++) {
        for (size_t j = 0; j < cs[i].n; j++)
            free(cs[i].ops[j].result);
        free(cs[i].ops);
    }
    for (int k = 0; k < g.keys; k++)
        free(finals[k].result);
    free(finals);
    free(cs);
    free(g.client_spec);
    return rc;
}
