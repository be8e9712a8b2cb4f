/*
 * cmd_shell.c — `hstore shell`: an interactive session with the cluster, in
 * the manner of redis-cli.  One line per command:
 *
 *   GET key | PUT key value | APPEND key value | DEL key | LS [prefix]
 *   STATUS | HELP [command] | QUIT
 *
 * Command names are case-insensitive.  Arguments are separated by blanks and
 * may be quoted: "double quotes" understand \n \r \t \\ \" and \xHH (so any
 * byte can be written), 'single quotes' take everything literally.
 *
 * On a terminal the line editor is libedit (history kept in DIR/shell_history,
 * written after every line; completion of command names; Ctrl-C drops the
 * line being typed, Ctrl-D leaves) and values are shown quoted with escapes; when
 * stdin is not a terminal, lines are read plainly and GET writes the raw value
 * followed by a newline, so the shell also serves scripts.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "raftkv/hex.h"
#include "tools/cli.h"
#include "tools/cli_net.h"
#include "tools/cmds.h"

static const char shell_help[] =
    "Usage: hstore shell [OPTIONS]\n"
    "\n"
    "An interactive shell, like redis-cli.  Commands (case-insensitive):\n"
    "  GET key               print the value (\"(nil)\" when missing)\n"
    "  PUT key value         set the value\n"
    "  APPEND key value      append to the value atomically\n"
    "  DEL key               delete the key\n"
    "  LS [prefix]           list keys\n"
    "  STATUS                one line per node: role, term, indexes, leader\n"
    "  HELP [command]        help\n"
    "  QUIT                  leave (also EXIT or Ctrl-D; Ctrl-C drops the line typed)\n"
    "Quote arguments with blanks: PUT greeting \"hello world\\n\"; double quotes take\n"
    "\\n \\r \\t \\\\ \\\" and \\xHH escapes, single quotes take text literally.\n"
    "History is kept in DIR/shell_history (DIR: --dir, $HSTORE_DIR or ~/.hstore).\n"
    "With stdin not a terminal, lines are read plainly: printf 'PUT a 1\\nGET a\\n' | hstore shell\n"
    "\n";

typedef struct shell {
    net_client *c;
    char spec[CLI_SPEC_MAX];
    int status_ms;
    bool tty; /* stdin and stdout are terminals: pretty output */
} shell;

typedef struct token {
    char *s; /* NUL-terminated copy (may hold inner NULs) */
    size_t len;
} token;

#define MAX_TOKENS 8

/* Splits line into tokens.  Returns the count, or -1 with *why set for an
 * unterminated quote or too many arguments.  Tokens are malloc'ed. */
static int tokenize(const char *line, token *tok, int max, const char **why)
{
    int n = 0;
    const char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p == '\0')
            return n;
        if (n == max) {
            *why = "too many arguments (quote values that contain blanks)";
            goto fail;
        }
        size_t cap = strlen(p) + 1, len = 0;
        char *out = malloc(cap);
        if (out == NULL) {
            *why = "out of memory";
            goto fail;
        }
        tok[n].s = out;
        tok[n].len = 0;
        n++;
        while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            if (*p == '"') {
                p++;
                while (*p != '"') {
                    if (*p == '\0') {
                        *why = "unterminated \" quote";
                        goto fail;
                    }
                    if (*p == '\\' && p[1] != '\0') {
                        p++;
                        switch (*p) {
                        case 'n': out[len++] = '\n'; break;
                        case 'r': out[len++] = '\r'; break;
                        case 't': out[len++] = '\t'; break;
                        case 'a': out[len++] = '\a'; break;
                        case 'b': out[len++] = '\b'; break;
                        case '0': out[len++] = '\0'; break;
                        case 'x':
                            if (hex_byte(p + 1) >= 0) {
                                out[len++] = (char)hex_byte(p + 1);
                                p += 2;
                            } else {
                                out[len++] = 'x';
                            }
                            break;
                        default: out[len++] = *p; break;
                        }
                        p++;
                    } else {
                        out[len++] = *p++;
                    }
                }
                p++;
            } else if (*p == '\'') {
                p++;
                while (*p != '\'') {
                    if (*p == '\0') {
                        *why = "unterminated ' quote";
                        goto fail;
                    }
                    out[len++] = *p++;
                }
                p++;
            } else {
                out[len++] = *p++;
            }
        }
        out[len] = '\0';
        tok[n - 1].len = len;
    }
fail:
    for (int i = 0; i < n; i++)
        free(tok[i].s);
    return -1;
}

/* Prints bytes as a double-quoted string with escapes (for terminals). */
static void print_quoted(const uint8_t *b, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = b[i];
        switch (ch) {
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        default:
            if (isprint(ch))
                putchar(ch);
            else
                printf("\\x%02x", ch);
        }
    }
    puts("\"");
}

static const struct {
    const char *name, *args, *text;
    int min, max; /* arguments after the name */
} shell_cmds[] = {
    {"GET", "key", "print the value of key; (nil) when it does not exist", 1, 1},
    {"PUT", "key value", "set key to value (committed on a majority when OK is printed)", 2, 2},
    {"APPEND", "key value", "append value to key atomically, creating it when missing", 2, 2},
    {"DEL", "key", "delete key", 1, 1},
    {"LS", "[prefix]", "list the keys that start with prefix (all without one)", 0, 1},
    {"STATUS", "", "one line per node: id, address, role, term, indexes, leader", 0, 0},
    {"HELP", "[command]", "this help, or the help of one command", 0, 1},
    {"QUIT", "", "leave the shell (also EXIT, or Ctrl-D)", 0, 0},
    {"EXIT", "", "leave the shell", 0, 0},
};
#define N_SHELL_CMDS (sizeof shell_cmds / sizeof shell_cmds[0])

static void print_help(const char *which)
{
    for (size_t i = 0; i < N_SHELL_CMDS; i++) {
        if (which != NULL && strcasecmp(which, shell_cmds[i].name) != 0)
            continue;
        char head[64];
        snprintf(head, sizeof head, "%s %s", shell_cmds[i].name, shell_cmds[i].args);
        printf("  %-20s %s\n", head, shell_cmds[i].text);
        if (which != NULL)
            return;
    }
    if (which != NULL) {
        printf("(error) no command %s; HELP lists them\n", which);
        return;
    }
    printf("Arguments with blanks go in quotes: PUT note \"two words\\n\" ('single' = literal).\n");
}

/* Runs one op and prints the outcome the shell way.  */
static void run_op(shell *sh, const kv_op *op, const char *what)
{
    kv_reply r;
    int rc = cli_run_op(sh->c, op, &r, what, op->type == KV_OP_GET || op->type == KV_OP_DEL);
    if (rc == CLI_EXIT_NOTFOUND) {
        puts(op->type == KV_OP_GET ? "(nil)" : "(not found)");
        kv_reply_free(&r);
        return;
    }
    if (rc != CLI_EXIT_OK)
        return; /* cli_run_op said why */
    switch (op->type) {
    case KV_OP_GET:
        if (sh->tty) {
            print_quoted(r.data, r.data_len);
        } else {
            fflush(stdout);
            cli_write_all(1, r.data, r.data_len);
            putchar('\n');
        }
        break;
    case KV_OP_APPEND:
        if (r.has & KV_R_ATTR)
            printf("OK (%llu bytes)\n", (unsigned long long)r.attr.size);
        else
            puts("OK");
        break;
    case KV_OP_LIST:
        if (r.n_names == 0 && sh->tty)
            puts("(empty)");
        for (size_t i = 0; i < r.n_names; i++) {
            if (sh->tty)
                printf("%zu) %s\n", i + 1, r.names[i]);
            else
                printf("%s\n", r.names[i]);
        }
        break;
    default: puts("OK");
    }
    kv_reply_free(&r);
}

/* Executes one line.  Returns 1 to quit. */
static int exec_line(shell *sh, const char *line)
{
    token tok[MAX_TOKENS];
    const char *why = NULL;
    int n = tokenize(line, tok, MAX_TOKENS, &why);
    if (n < 0) {
        printf("(error) %s\n", why);
        return 0;
    }
    if (n == 0)
        return 0;
    int quit = 0;
    size_t ci;
    for (ci = 0; ci < N_SHELL_CMDS; ci++)
        if (strcasecmp(tok[0].s, shell_cmds[ci].name) == 0)
            break;
    if (ci == N_SHELL_CMDS) {
        printf("(error) unknown command '%s'; type HELP for the list\n", tok[0].s);
        goto out;
    }
    if (n - 1 < shell_cmds[ci].min || n - 1 > shell_cmds[ci].max) {
        printf("(error) usage: %s %s\n", shell_cmds[ci].name, shell_cmds[ci].args);
        goto out;
    }
    const char *name = shell_cmds[ci].name;
    for (int i = 1; i < n && strcmp(name, "HELP") != 0; i++) {
        /* Keys are paths: an inner NUL would silently cut them. */
        if ((i == 1 || strcmp(name, "LS") == 0) && strlen(tok[i].s) != tok[i].len) {
            printf("(error) a key cannot contain a NUL byte\n");
            goto out;
        }
    }
    char what[300];
    snprintf(what, sizeof what, "%s %.256s", name, n > 1 ? tok[1].s : "");
    if (strcmp(name, "GET") == 0) {
        kv_op op = {.type = KV_OP_GET, .path = tok[1].s};
        run_op(sh, &op, what);
    } else if (strcmp(name, "PUT") == 0 || strcmp(name, "APPEND") == 0) {
        kv_op op = {.type = name[0] == 'P' ? KV_OP_PUT : KV_OP_APPEND,
                    .path = tok[1].s,
                    .data = (const uint8_t *)tok[2].s,
                    .data_len = tok[2].len,
                    .uid = (uint32_t)getuid(),
                    .gid = (uint32_t)getgid()};
        run_op(sh, &op, what);
    } else if (strcmp(name, "DEL") == 0) {
        kv_op op = {.type = KV_OP_DEL, .path = tok[1].s};
        run_op(sh, &op, what);
    } else if (strcmp(name, "LS") == 0) {
        kv_op op = {.type = KV_OP_LIST, .path = n > 1 ? tok[1].s : ""};
        run_op(sh, &op, "LS");
    } else if (strcmp(name, "STATUS") == 0) {
        cli_node_status st[RAFT_MAX_NODES];
        int k = cli_status_all(sh->spec, sh->status_ms, st, RAFT_MAX_NODES);
        for (int i = 0; i < k; i++) {
            char buf[512];
            cli_format_status(&st[i], buf, sizeof buf);
            printf("%s\n", buf);
        }
    } else if (strcmp(name, "HELP") == 0) {
        print_help(n > 1 ? tok[1].s : NULL);
    } else {
        quit = 1;
    }
out:
    fflush(stdout);
    for (int i = 0; i < n; i++)
        free(tok[i].s);
    return quit;
}

/* Completion of command names at the start of the line. */
static char *complete_cmd(const char *text, int state)
{
    static size_t idx, len;
    if (state == 0) {
        idx = 0;
        len = strlen(text);
    }
    while (idx < N_SHELL_CMDS) {
        const char *name = shell_cmds[idx++].name;
        if (strncasecmp(name, text, len) == 0) {
            char *m = strdup(name);
            /* Match the case the user started typing in. */
            if (m != NULL && len > 0 && islower((unsigned char)text[0]))
                for (char *q = m; *q; q++)
                    *q = (char)tolower((unsigned char)*q);
            return m;
        }
    }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    if (start != 0)
        return NULL;
    return rl_completion_matches(text, complete_cmd);
}

/* ---- the interactive loop ------------------------------------------------------
 *
 * readline() with signal handlers of our own that do not restart system
 * calls: a signal makes libedit's read fail, readline() returns NULL, and the
 * flag the handler set says why.  Ctrl-C (SIGINT) throws the line being typed
 * away and gives a fresh prompt; Ctrl-D on an empty line (a NULL with no
 * signal), QUIT, SIGTERM and SIGHUP leave.  The history file is written after
 * every line and at the end, so whatever ends the shell it is kept. */

static volatile sig_atomic_t g_sigint, g_leave;

static void on_signal(int sig)
{
    if (sig == SIGINT)
        g_sigint = 1;
    else
        g_leave = 1;
}

static void interactive(shell *sh, const char *hist)
{
    rl_readline_name = "hstore";
    rl_attempted_completion_function = complete;
    rl_catch_signals = 0;
    using_history();
    stifle_history(1000);
    if (hist[0])
        read_history(hist);
    struct sigaction sa, old_int, old_term, old_hup;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    g_sigint = g_leave = 0;
    for (;;) {
        char *line = readline("hstore> ");
        if (g_leave) {
            free(line);
            putchar('\n');
            break;
        }
        if (g_sigint) { /* Ctrl-C: the line goes, a new prompt */
            g_sigint = 0;
            free(line);
            putchar('\n');
            continue;
        }
        if (line == NULL) { /* Ctrl-D */
            putchar('\n');
            break;
        }
        if (line[0] != '\0') {
            add_history(line);
            if (hist[0])
                write_history(hist);
        }
        int q = exec_line(sh, line);
        free(line);
        if (q || g_leave)
            break;
        g_sigint = 0; /* a Ctrl-C during the command ends only the wait */
    }
    if (hist[0])
        write_history(hist);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
}

int cmd_shell(int argc, char **argv)
{
    cli_client_opts o;
    int code;
    int first = cli_parse_client_args(argc, argv, "shell", shell_help, &o, NULL, &code);
    if (first < 0)
        return code;
    if (first < argc) {
        cli_err("shell takes no arguments; see `hstore shell --help`");
        return CLI_EXIT_USAGE;
    }
    shell sh = {0};
    if (cli_resolve_spec(&o, sh.spec, sizeof sh.spec) != 0)
        return CLI_EXIT_USAGE;
    int rc;
    cli_client_opts o2 = o;
    o2.cluster = sh.spec;
    sh.c = cli_connect(&o2, &rc);
    if (sh.c == NULL)
        return rc;
    sh.status_ms = o.timeout_set ? (int)(o.timeout_s * 1000) : 1000;
    sh.tty = isatty(0) && isatty(1);

    if (sh.tty) {
        char dir[4096], hist[4200] = "";
        if (cli_cluster_dir(o.dir, dir, sizeof dir) == 0) {
            mkdir(dir, 0755);
            snprintf(hist, sizeof hist, "%s/shell_history", dir);
        }
        printf("hstore shell: connected to %s\nType HELP for commands, QUIT or Ctrl-D to leave.\n",
               sh.spec);
        interactive(&sh, hist);
    } else {
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, stdin) >= 0) {
            if (exec_line(&sh, line))
                break;
        }
        free(line);
    }
    net_client_free(sh.c);
    return CLI_EXIT_OK;
}
