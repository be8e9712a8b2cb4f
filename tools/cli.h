/*
 * cli.h — pieces shared by the `hstore` subcommands: exit codes, where a
 * cluster is found (--cluster, $HSTORE_CLUSTER, the file written by
 * `hstore up`), the common client options, and small helpers for messages.
 *
 * The exit codes and the lookup order of the cluster are part of the
 * command-line contract that scripts and tests are written against.
 */
#ifndef HSTORE_CLI_H
#define HSTORE_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes (the contract). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_NOTFOUND = 1, /* key not found (get, del) */
    CLI_EXIT_USAGE = 2,    /* usage error or invalid input */
    CLI_EXIT_UNAVAIL = 3,  /* no answer within the timeout: outcome unknown */
    CLI_EXIT_AUTH = 4,     /* not authorized: wrong or missing cluster secret */
};

#define CLI_DEFAULT_TIMEOUT_S 5.0
#define CLI_SPEC_MAX 4096

/* Options every client command takes. */
typedef struct cli_client_opts {
    const char *cluster;     /* --cluster SPEC, or NULL */
    const char *dir;         /* --dir DIR, or NULL (then $HSTORE_DIR or ~/.hstore) */
    double timeout_s;        /* --timeout SECONDS */
    bool timeout_set;        /* --timeout was given */
    const char *secret_file; /* --secret-file F, or NULL */
} cli_client_opts;

void cli_client_opts_init(cli_client_opts *o);

/* getopt_long codes and entries of the common client options; put
 * CLI_CLIENT_LONGOPTS into a command's struct option array. */
enum {
    CLI_OPT_CLUSTER = 1000,
    CLI_OPT_TIMEOUT,
    CLI_OPT_DIR,
    CLI_OPT_TEST_RESEND,
    CLI_OPT_SECRET_FILE
};
#define CLI_CLIENT_LONGOPTS                                         \
    {"cluster", required_argument, NULL, CLI_OPT_CLUSTER},          \
        {"timeout", required_argument, NULL, CLI_OPT_TIMEOUT},      \
        {"dir", required_argument, NULL, CLI_OPT_DIR},              \
    {                                                               \
        "secret-file", required_argument, NULL, CLI_OPT_SECRET_FILE \
    }

/* The argument loop of a client command:
 *     cli_client_getopt_start(&o);
 *     while ((c = cli_client_getopt(argc, argv, ":h", longopts, &o)) != -1) {
 *         if (c == CLI_OPT_BAD)
 *             return CLI_EXIT_USAGE;
 *         ... the command's own options ...
 *     }
 * _start sets *o to the defaults and restarts getopt_long (silent: errors
 * come back as ':' and '?' for cli_getopt_error).  cli_client_getopt is
 * getopt_long that takes the common client options into *o on the way: it
 * returns the command's own options, -1 at the end, or CLI_OPT_BAD after a
 * bad value of a client option (message printed). */
struct option;
enum { CLI_OPT_BAD = -2 };
void cli_client_getopt_start(cli_client_opts *o);
int cli_client_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
                      cli_client_opts *o);

/* Parses the arguments of a command that takes only the common client
 * options and --help (name names it in messages, help is its help text).
 * test_resend (may be NULL) accepts the hidden --test-resend knob of put and
 * append: send the command twice with the same (client id, seq), as a client
 * does that lost the first reply.  Returns the index of the first positional
 * argument, or -1 with *exit_code set (help shown, or a usage error). */
int cli_parse_client_args(int argc, char **argv, const char *name, const char *help,
                          cli_client_opts *o, bool *test_resend, int *exit_code);

/* Prints the message for getopt_long's ':' (missing value) or '?' (unknown
 * option) results and returns CLI_EXIT_USAGE.  cmd names the command. */
int cli_getopt_error(int c, char **argv, const char *cmd);

/* Prints "hstore: <message>\n" to stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The cluster directory: dir if given, else $HSTORE_DIR, else ~/.hstore.
 * Writes into out (size cap).  0, or -1 if no home directory is known. */
int cli_cluster_dir(const char *dir, char *out, size_t cap);

/* Resolves the cluster SPEC: --cluster, else $HSTORE_CLUSTER, else the file
 * DIR/cluster; then loads the cluster secret (cli_load_secret).  0 on
 * success; -1 after printing what to do. */
int cli_resolve_spec(const cli_client_opts *o, char *spec, size_t cap);

/* Finds the cluster secret — --secret-file F, else $HSTORE_SECRET_FILE, else
 * DIR/secret when it exists — and makes it the process's default keys for
 * every client created afterwards (net/auth.h).  No secret found: the
 * insecure keys (a node with a secret then answers "not authorized").
 * 0, or -1 after printing why a named file is unusable.  (In cli_net.c.) */
int cli_load_secret(const cli_client_opts *o);

/* Parses a --timeout value (seconds, fractions allowed, > 0). 0 or -1. */
int cli_parse_seconds(const char *s, double *out);

/* Parses an unsigned integer; when allow_suffix, with an optional K, M, G or
 * T (powers of 1024), itself optionally followed by B, iB or b.  0 or -1. */
int cli_parse_u64(const char *s, bool allow_suffix, uint64_t *out);

/* Reads all of stdin (binary-safe).  0 with *buf malloc'ed, or -1. */
int cli_read_stdin(uint8_t **buf, size_t *len);

/* Writes all of buf to fd, retrying short writes.  0 or -1. */
int cli_write_all(int fd, const void *buf, size_t len);

/* Monotonic time in nanoseconds. */
uint64_t cli_now_ns(void);

/* Sleeps ms milliseconds (resumed after a signal). */
void cli_sleep_ms(int ms);

/* Help texts of the common client options (for every client command). */
extern const char cli_client_opts_help[];

#endif
