/*
 * cmd_kv.c — the key-value commands: `hstore put`, `append`, `get`, `del` and
 * `ls`.  One request each through the client library, which finds the
 * leader, retries across leader changes with the same (client id, seq) and
 * gives up at the deadline (exit 3: outcome unknown).
 *
 * Keys are paths in the same namespace the FUSE mount shows: `hstore put a/b x`
 * is the file b in directory a (created as needed).  Values are bytes: put and
 * append read stdin when no VALUE is given, get writes the exact bytes.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/cli_net.h"
#include "tools/cmds.h"

static const char put_help[] =
    "Usage: hstore put [OPTIONS] KEY [VALUE]\n"
    "\n"
    "Sets KEY to VALUE, replacing what was there; with no VALUE, reads the value from\n"
    "stdin (any bytes, binary-safe).  Exits 0 once the write is committed on a\n"
    "majority of the nodes.  KEY is a path: a/b is the file b in directory a, created\n"
    "as needed.  Put `--` before a VALUE that starts with '-'.\n"
    "\n"
    "Examples:\n"
    "  hstore put greeting hello\n"
    "  hstore put config/app.json < app.json\n"
    "  hstore put --cluster 1=127.0.0.1:7100,2=127.0.0.1:7102 n -- -5\n"
    "\n";

static const char append_help[] =
    "Usage: hstore append [OPTIONS] KEY [VALUE]\n"
    "\n"
    "Appends VALUE (or stdin when no VALUE is given) to KEY atomically in the state\n"
    "machine, creating KEY when missing.  A retry after a lost reply never appends\n"
    "twice (exactly-once client sessions).  Put `--` before a VALUE that starts with '-'.\n"
    "\n"
    "Examples:\n"
    "  hstore append log/today 'first line'\n"
    "  date | hstore append log/today\n"
    "\n";

static const char get_help[] =
    "Usage: hstore get [OPTIONS] KEY\n"
    "\n"
    "Writes KEY's value to stdout, byte for byte; on a terminal a newline follows\n"
    "a value that does not end with one (piped or redirected: the exact bytes).  The read is\n"
    "linearizable (ReadIndex): it sees every write that finished before it began.\n"
    "Exits 1 when KEY does not exist.\n"
    "\n"
    "Examples:\n"
    "  hstore get greeting\n"
    "  hstore get --timeout 1 images/logo.png > logo.png\n"
    "\n";

static const char del_help[] =
    "Usage: hstore del [OPTIONS] KEY\n"
    "\n"
    "Deletes KEY (an empty directory too).  Exits 1 when KEY does not exist.\n"
    "\n"
    "Example:\n"
    "  hstore del greeting\n"
    "\n";

static const char ls_help[] =
    "Usage: hstore ls [OPTIONS] [PREFIX]\n"
    "\n"
    "Lists every key whose path starts with PREFIX (a plain string prefix), one per\n"
    "line, sorted; all keys when no PREFIX is given.  Linearizable like get.\n"
    "  -0, --null         end each key with a NUL byte instead of a newline\n"
    "                     (for keys with newlines in them; xargs -0)\n"
    "\n"
    "Examples:\n"
    "  hstore ls\n"
    "  hstore ls config/\n"
    "  hstore ls -0 logs/ | xargs -0 -n1 hstore del\n"
    "\n";

static int check_args(int nargs, int min, int max, const char *name, const char *what)
{
    if (nargs < min || nargs > max) {
        cli_err("%s wants %s; see `hstore %s --help`", name, what, name);
        return -1;
    }
    return 0;
}

static int put_or_append(int argc, char **argv, int type, const char *name, const char *help)
{
    cli_client_opts o;
    bool resend;
    int code;
    int i = cli_parse_client_args(argc, argv, name, help, &o, &resend, &code);
    if (i < 0)
        return code;
    if (check_args(argc - i, 1, 2, name, "KEY [VALUE]") != 0)
        return CLI_EXIT_USAGE;
    const char *key = argv[i];
    uint8_t *val = NULL;
    size_t len = 0;
    bool from_stdin = argc - i == 1;
    if (from_stdin) {
        if (isatty(0))
            fprintf(stderr, "hstore: reading the value from stdin (end it with Ctrl-D)\n");
        if (cli_read_stdin(&val, &len) != 0) {
            cli_err("%s: cannot read the value from stdin", name);
            return CLI_EXIT_USAGE;
        }
    } else {
        val = (uint8_t *)argv[i + 1];
        len = strlen(argv[i + 1]);
    }
    int rc;
    net_client *c = cli_connect(&o, &rc);
    if (c != NULL) {
        kv_op op = {.type = (uint8_t)type, .path = key, .data = val, .data_len = len};
        op.uid = (uint32_t)getuid();
        op.gid = (uint32_t)getgid();
        kv_reply r;
        char what[300];
        snprintf(what, sizeof what, "%s %.256s", name, key);
        rc = resend ? cli_run_op_twice(c, &op, &r, what) : cli_run_op(c, &op, &r, what, false);
        if (rc == CLI_EXIT_OK || rc == CLI_EXIT_NOTFOUND)
            kv_reply_free(&r);
        net_client_free(c);
    }
    if (from_stdin)
        free(val);
    return rc;
}

int cmd_put(int argc, char **argv)
{
    return put_or_append(argc, argv, KV_OP_PUT, "put", put_help);
}

int cmd_append(int argc, char **argv)
{
    return put_or_append(argc, argv, KV_OP_APPEND, "append", append_help);
}

int cmd_get(int argc, char **argv)
{
    cli_client_opts o;
    int code;
    int i = cli_parse_client_args(argc, argv, "get", get_help, &o, NULL, &code);
    if (i < 0)
        return code;
    if (check_args(argc - i, 1, 1, "get", "one KEY") != 0)
        return CLI_EXIT_USAGE;
    int rc;
    net_client *c = cli_connect(&o, &rc);
    if (c == NULL)
        return rc;
    kv_op op = {.type = KV_OP_GET, .path = argv[i]};
    kv_reply r;
    char what[300];
    snprintf(what, sizeof what, "get %.256s", argv[i]);
    rc = cli_run_op(c, &op, &r, what, false);
    if (rc == CLI_EXIT_OK) {
        /* A terminal gets its prompt back on a line of its own. */
        bool nl = isatty(1) && (r.data_len == 0 || r.data[r.data_len - 1] != '\n');
        if (cli_write_all(1, r.data, r.data_len) != 0 || (nl && cli_write_all(1, "\n", 1) != 0)) {
            cli_err("get: cannot write to stdout");
            rc = CLI_EXIT_USAGE;
        }
    }
    if (rc == CLI_EXIT_OK || rc == CLI_EXIT_NOTFOUND)
        kv_reply_free(&r);
    net_client_free(c);
    return rc;
}

int cmd_del(int argc, char **argv)
{
    cli_client_opts o;
    int code;
    int i = cli_parse_client_args(argc, argv, "del", del_help, &o, NULL, &code);
    if (i < 0)
        return code;
    if (check_args(argc - i, 1, 1, "del", "one KEY") != 0)
        return CLI_EXIT_USAGE;
    int rc;
    net_client *c = cli_connect(&o, &rc);
    if (c == NULL)
        return rc;
    kv_op op = {.type = KV_OP_DEL, .path = argv[i]};
    kv_reply r;
    char what[300];
    snprintf(what, sizeof what, "del %.256s", argv[i]);
    rc = cli_run_op(c, &op, &r, what, false);
    if (rc == CLI_EXIT_OK || rc == CLI_EXIT_NOTFOUND)
        kv_reply_free(&r);
    net_client_free(c);
    return rc;
}

int cmd_ls(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_CLIENT_LONGOPTS,
        {"null", no_argument, NULL, '0'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_client_opts o;
    cli_client_opts_init(&o);
    bool nul = false;
    optind = 0;
    opterr = 0;
    int g;
    while ((g = getopt_long(argc, argv, ":0h", longopts, NULL)) != -1) {
        int h = cli_client_opt(g, optarg, &o);
        if (h < 0)
            return CLI_EXIT_USAGE;
        if (h > 0)
            continue;
        if (g == '0') {
            nul = true;
        } else if (g == 'h') {
            fputs(ls_help, stdout);
            fputs(cli_client_opts_help, stdout);
            return CLI_EXIT_OK;
        } else {
            return cli_getopt_error(g, argv, "ls");
        }
    }
    int i = optind;
    if (check_args(argc - i, 0, 1, "ls", "at most one PREFIX") != 0)
        return CLI_EXIT_USAGE;
    int rc;
    net_client *c = cli_connect(&o, &rc);
    if (c == NULL)
        return rc;
    kv_op op = {.type = KV_OP_LIST, .path = argc - i == 1 ? argv[i] : ""};
    kv_reply r;
    rc = cli_run_op(c, &op, &r, "ls", false);
    if (rc == CLI_EXIT_OK) {
        for (size_t k = 0; k < r.n_names; k++) {
            fputs(r.names[k], stdout);
            putchar(nul ? '\0' : '\n');
        }
        if (fflush(stdout) != 0) {
            cli_err("ls: cannot write to stdout");
            rc = CLI_EXIT_USAGE;
        }
    }
    if (rc == CLI_EXIT_OK || rc == CLI_EXIT_NOTFOUND)
        kv_reply_free(&r);
    net_client_free(c);
    return rc;
}
