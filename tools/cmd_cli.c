/*
 * cmd_cli.c — helpers shared by the `hstore` subcommands (see cli.h).
 */
#include "tools/cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char cli_client_opts_help[] =
    "Finding the cluster (first that applies):\n"
    "  --cluster SPEC     the nodes, ID=HOST:PORT,... (clients use PORT+1)\n"
    "                     e.g. --cluster 1=127.0.0.1:7100,2=127.0.0.1:7102,3=127.0.0.1:7104\n"
    "  $HSTORE_CLUSTER    the same SPEC from the environment\n"
    "  DIR/cluster        written by `hstore up`; DIR is --dir DIR, else $HSTORE_DIR,\n"
    "                     else ~/.hstore\n"
    "The cluster secret (first that applies; see README, Security model):\n"
    "  --secret-file F    the file with the cluster's secret\n"
    "  $HSTORE_SECRET_FILE  the same from the environment\n"
    "  DIR/secret         written by `hstore up`\n"
    "Other options:\n"
    "  --timeout SECONDS  give up after this long (default 5); the command then exits 3\n"
    "                     and the outcome of a write is unknown, e.g. --timeout 1.5\n"
    "  -h, --help         this help\n"
    "Exit codes: 0 success, 1 key not found, 2 usage error or invalid input,\n"
    "            3 unavailable (no answer within the timeout; outcome unknown),\n"
    "            4 not authorized (wrong or missing cluster secret).\n";

void cli_client_opts_init(cli_client_opts *o)
{
    o->cluster = NULL;
    o->dir = NULL;
    o->timeout_s = CLI_DEFAULT_TIMEOUT_S;
    o->timeout_set = false;
    o->secret_file = NULL;
}

/* Handles one getopt_long result c that may be a common client option.
 * 1: handled; 0: not a client option; -1: bad value (message printed). */
static int cli_client_opt(int c, const char *arg, cli_client_opts *o)
{
    switch (c) {
    case CLI_OPT_CLUSTER: o->cluster = arg; return 1;
    case CLI_OPT_DIR: o->dir = arg; return 1;
    case CLI_OPT_SECRET_FILE: o->secret_file = arg; return 1;
    case CLI_OPT_TIMEOUT:
        if (cli_parse_seconds(arg, &o->timeout_s) != 0) {
            cli_err("--timeout wants seconds greater than 0, e.g. --timeout 5 or --timeout 0.5");
            return -1;
        }
        o->timeout_set = true;
        return 1;
    default: return 0;
    }
}

void cli_client_getopt_start(cli_client_opts *o)
{
    cli_client_opts_init(o);
    optind = 0;
    opterr = 0;
}

int cli_client_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
                      cli_client_opts *o)
{
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        int h = cli_client_opt(c, optarg, o);
        if (h < 0)
            return CLI_OPT_BAD;
        if (h == 0)
            return c;
    }
    return -1;
}

int cli_getopt_error(int c, char **argv, const char *cmd)
{
    const char *opt = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        cli_err("%s needs a value; see `hstore %s --help`", opt, cmd);
    else if (optopt != 0 && optopt < 256)
        cli_err("unknown option -%c; see `hstore %s --help`", optopt, cmd);
    else
        cli_err("unknown option %s; see `hstore %s --help`", opt, cmd);
    return CLI_EXIT_USAGE;
}

void cli_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hstore: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_cluster_dir(const char *dir, char *out, size_t cap)
{
    if (dir == NULL || dir[0] == '\0')
        dir = getenv("HSTORE_DIR");
    if (dir != NULL && dir[0] != '\0') {
        if ((size_t)snprintf(out, cap, "%s", dir) >= cap)
            return -1;
        return 0;
    }
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (home == NULL)
        return -1;
    if ((size_t)snprintf(out, cap, "%s/.hstore", home) >= cap)
        return -1;
    return 0;
}

/* Copies s without surrounding white space into spec.  0 or -1 if too long
 * or empty. */
static int copy_trimmed(const char *s, size_t n, char *spec, size_t cap)
{
    while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    if (n == 0 || n >= cap)
        return -1;
    memcpy(spec, s, n);
    spec[n] = '\0';
    return 0;
}

static int resolve_spec(const cli_client_opts *o, char *spec, size_t cap);

int cli_resolve_spec(const cli_client_opts *o, char *spec, size_t cap)
{
    if (resolve_spec(o, spec, cap) != 0)
        return -1;
    return cli_load_secret(o);
}

static int resolve_spec(const cli_client_opts *o, char *spec, size_t cap)
{
    if (o->cluster != NULL) {
        if (copy_trimmed(o->cluster, strlen(o->cluster), spec, cap) != 0) {
            cli_err("--cluster needs a SPEC like 1=127.0.0.1:7100,2=127.0.0.1:7102");
            return -1;
        }
        return 0;
    }
    const char *env = getenv("HSTORE_CLUSTER");
    if (env != NULL && env[0] != '\0') {
        if (copy_trimmed(env, strlen(env), spec, cap) != 0) {
            cli_err("HSTORE_CLUSTER is not a usable SPEC; set it like 1=127.0.0.1:7100,...");
            return -1;
        }
        return 0;
    }
    char dir[4096], path[4200];
    if (cli_cluster_dir(o->dir, dir, sizeof dir) == 0) {
        snprintf(path, sizeof path, "%s/cluster", dir);
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            char buf[CLI_SPEC_MAX];
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            if (copy_trimmed(buf, n, spec, cap) == 0)
                return 0;
            cli_err("%s is empty or damaged: pass --cluster, or restart with `hstore up`", path);
            return -1;
        }
    }
    cli_err("no cluster given: pass --cluster, set HSTORE_CLUSTER, or start one with `hstore up`");
    return -1;
}

int cli_parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v <= 0 || v > 86400.0)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_u64(const char *s, bool allow_suffix, uint64_t *out)
{
    char *end;
    if (s[0] == '-' || s[0] == '\0')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    uint64_t mul = 1;
    if (*end != '\0') {
        if (!allow_suffix)
            return -1;
        switch (*end) {
        case 'k':
        case 'K': mul = 1ULL << 10; break;
        case 'm':
        case 'M': mul = 1ULL << 20; break;
        case 'g':
        case 'G': mul = 1ULL << 30; break;
        case 't':
        case 'T': mul = 1ULL << 40; break;
        default: return -1;
        }
        const char *unit = end + 1;
        if (*unit && strcmp(unit, "B") && strcmp(unit, "iB") && strcmp(unit, "b"))
            return -1;
    }
    if (v > UINT64_MAX / mul)
        return -1;
    *out = (uint64_t)v * mul;
    return 0;
}

int cli_read_stdin(uint8_t **buf, size_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    if (b == NULL)
        return -1;
    for (;;) {
        if (n == cap) {
            uint8_t *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                return -1;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(0, b + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(b);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *buf = b;
    *len = n;
    return 0;
}

int cli_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

uint64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void cli_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int cli_parse_client_args(int argc, char **argv, const char *name, const char *help,
                          cli_client_opts *o, bool *test_resend, int *exit_code)
{
    static const struct option longopts[] = {
        CLI_CLIENT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        /* Hidden test knob: send the command twice with the same (client id,
         * seq), as a client does that lost the first reply. */
        {"test-resend", no_argument, NULL, CLI_OPT_TEST_RESEND},
        {NULL, 0, NULL, 0},
    };
    cli_client_getopt_start(o);
    if (test_resend != NULL)
        *test_resend = false;
    int c;
    while ((c = cli_client_getopt(argc, argv, ":h", longopts, o)) != -1) {
        if (c == CLI_OPT_BAD) {
            *exit_code = CLI_EXIT_USAGE;
            return -1;
        }
        if (c == 'h') {
            fputs(help, stdout);
            fputs(cli_client_opts_help, stdout);
            *exit_code = CLI_EXIT_OK;
            return -1;
        }
        if (c == CLI_OPT_TEST_RESEND && test_resend != NULL) {
            *test_resend = true;
            continue;
        }
        *exit_code = cli_getopt_error(c, argv, name);
        return -1;
    }
    return optind;
}
