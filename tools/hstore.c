/*
 * hstore.c — main() of the `hstore` binary: picks the subcommand and hands it
 * its arguments.  Every subcommand lives in its own tools/cmd_*.c and prints
 * its own help with `hstore CMD --help`.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/wire.h"
#include "raftkv/storage.h"
#include "tools/cli.h"
#include "tools/cmds.h"

#define HSTORE_VERSION "0.1.0"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"node", cmd_node, "run one node in the foreground (a Raft peer with its FUSE mount)"},
    {"up", cmd_up, "start a local cluster of N nodes in the background"},
    {"down", cmd_down, "stop the local cluster started by `hstore up` (keeps the data)"},
    {"put", cmd_put, "set KEY to VALUE (or to stdin)"},
    {"get", cmd_get, "print KEY's value, byte for byte"},
    {"append", cmd_append, "append VALUE (or stdin) to KEY atomically"},
    {"del", cmd_del, "delete KEY"},
    {"ls", cmd_ls, "list keys, optionally under PREFIX"},
    {"status", cmd_status, "one line per node: role, term, indexes, leader"},
    {"member", cmd_member, "list the members, add one (ID=HOST:PORT) or remove one"},
    {"transfer", cmd_transfer, "hand leadership to another node"},
    {"limits", cmd_limits, "show or set the cluster's replicated limits (file size, store size)"},
    {"shell", cmd_shell, "interactive shell (GET/PUT/APPEND/DEL/LS/STATUS)"},
    {"watch", cmd_watch, "live view of every node and of elections"},
    {"bench", cmd_bench, "measure throughput and latency with N concurrent clients"},
    {"http-token", cmd_http_token, "print the bearer token of the nodes' HTTP API"},
    {"backup", cmd_backup, "write a consistent copy of the whole state to FILE"},
    {"restore", cmd_restore, "seed a new node's data directory from a backup FILE"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(
        out,
        "hstore — a fault-tolerant key-value store on Raft, also mounted as a filesystem\n"
        "\n"
        "Usage: hstore COMMAND [OPTIONS] [ARGS]\n"
        "       hstore [--cluster SPEC] [--timeout S] [--dir DIR] [--secret-file F] COMMAND ...\n"
        "       hstore COMMAND --help     options of one command, with examples\n"
        "       hstore --version\n"
        "\n"
        "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n"
                 "Quick start:\n"
                 "  hstore up -n 3                        # 3 nodes on 127.0.0.1:7100..7105\n"
                 "  hstore put greeting hello             # committed on a majority\n"
                 "  hstore get greeting                   # prints: hello\n"
                 "  echo ' world' | hstore append greeting\n"
                 "  hstore status                         # who leads, terms, indexes\n"
                 "  hstore watch                          # kill the leader and watch an election\n"
                 "  hstore down                           # stop the nodes, keep the data\n"
                 "\n"
                 "Client commands find the cluster from --cluster SPEC, else $HSTORE_CLUSTER,\n"
                 "else the file written by `hstore up` ($HSTORE_DIR or ~/.hstore, /cluster).\n"
                 "SPEC is ID=HOST:PORT,...; a node takes peer traffic on PORT, clients on PORT+1.\n"
                 "The cluster secret: --secret-file F, else $HSTORE_SECRET_FILE, else DIR/secret.\n"
                 "\n"
                 "Exit codes: 0 success, 1 key not found, 2 usage error or invalid input,\n"
                 "            3 unavailable (no answer within --timeout; outcome unknown),\n"
                 "            4 not authorized (wrong or missing cluster secret).\n");
}

/* Options that every client command takes may also come before the command
 * (`hstore --timeout 2 get foo`): they are moved to just after it, where the
 * command parses them.  Returns the new argc (argv rebuilt in out), or -1
 * with a message printed. */
static int move_global_options(int argc, char **argv, char **out)
{
    static const char *const globals[] = {"--cluster", "--timeout", "--dir", "--secret-file"};
    int i = 1, n = 0;
    char *moved[64];
    while (i < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0') {
        bool known = false;
        for (size_t g = 0; g < sizeof globals / sizeof globals[0]; g++) {
            size_t l = strlen(globals[g]);
            if (strncmp(argv[i], globals[g], l) == 0 && (argv[i][l] == '\0' || argv[i][l] == '='))
                known = true;
        }
        if (!known)
            break; /* --help, --version, or an error for the command to report */
        if (n + 2 > (int)(sizeof moved / sizeof moved[0])) {
            cli_err("too many options before the command");
            return -1;
        }
        moved[n++] = argv[i];
        if (strchr(argv[i], '=') == NULL) {
            if (i + 1 >= argc) {
                cli_err("%s needs a value; see `hstore --help`", argv[i]);
                return -1;
            }
            moved[n++] = argv[++i];
        }
        i++;
    }
    if (i >= argc) {
        cli_err("no command after the options; see `hstore --help`");
        return -1;
    }
    int k = 0;
    out[k++] = argv[0];
    out[k++] = argv[i]; /* the command */
    for (int m = 0; m < n; m++)
        out[k++] = moved[m];
    for (int r = i + 1; r < argc; r++)
        out[k++] = argv[r];
    out[k] = NULL;
    return k;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    char **args = malloc(sizeof(char *) * ((size_t)argc + 1)); /* lives until exit */
    if (args == NULL)
        return CLI_EXIT_USAGE;
    argc = move_global_options(argc, argv, args);
    if (argc < 0)
        return CLI_EXIT_USAGE;
    argv = args;
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        /* The on-disk and on-wire versions decide who can read whose data. */
        printf("hstore %s (wire format %d, storage schema %d)\n", HSTORE_VERSION, NET_VERSION,
               ST_SCHEMA_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        for (size_t i = 0; i < N_COMMANDS; i++) {
            if (strcmp(argv[2], commands[i].name) == 0) {
                char *av[] = {argv[2], "--help", NULL};
                return commands[i].fn(2, av);
            }
        }
        cli_err("no command '%s'; see `hstore --help`", argv[2]);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    cli_err("no command '%s'; see `hstore --help`", name);
    return CLI_EXIT_USAGE;
}
