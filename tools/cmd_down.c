/*
 * cmd_down.c — `hstore down`: stops the local cluster that `hstore up`
 * started in DIR.  SIGTERM to every recorded pid that is still an `hstore
 * node` (a pid may have been reused since), a deadline, SIGKILL to the rest,
 * then every recorded mount unmounted, live or dead (a node killed -9 leaves
 * one that answers ENOTCONN); the data stays for the next `up`.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/cmds.h"
#include "tools/up_proc.h"
#include "tools/up_state.h"

static const char down_help[] =
    "Usage: hstore down [--dir DIR] [--wait SECONDS]\n"
    "\n"
    "Stops the cluster that `hstore up` started in DIR: SIGTERM to each node, then\n"
    "SIGKILL to any still running after the deadline, then unmounts leftover FUSE\n"
    "mounts.  The data stays in DIR/i; `hstore up` with the same options resumes it.\n"
    "\n"
    "Options:\n"
    "  --dir DIR         the cluster's directory (default $HSTORE_DIR, else ~/.hstore)\n"
    "  --wait SECONDS    how long to wait for a clean stop before SIGKILL (default 10)\n"
    "  -h, --help        this help\n"
    "\n"
    "Example:\n"
    "  hstore down --dir /tmp/c5\n";

/* Parses `hstore down` arguments into *dir_opt and *wait_s.  -1 to go on;
 * else the exit code. */
static int down_parse_args(int argc, char **argv, const char **dir_opt, double *wait_s)
{
    enum { O_DIR = 256, O_WAIT };
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, O_DIR},
        {"wait", required_argument, NULL, O_WAIT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *dir_opt = NULL;
    *wait_s = 10;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        switch (c) {
        case O_DIR: *dir_opt = optarg; break;
        case O_WAIT:
            if (cli_parse_seconds(optarg, wait_s) != 0) {
                cli_err("--wait wants seconds, e.g. --wait 10");
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h': fputs(down_help, stdout); return CLI_EXIT_OK;
        case ':':
            cli_err("%s needs a value; see `hstore down --help`", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        default:
            cli_err("unknown option %s; see `hstore down --help`", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_err("unexpected argument '%s'; see `hstore down --help`", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

int cmd_down(int argc, char **argv)
{
    const char *dir_opt;
    double wait_s;
    int rc = down_parse_args(argc, argv, &dir_opt, &wait_s);
    if (rc >= 0)
        return rc;
    char dir[UP_DIR_MAX];
    if (cli_cluster_dir(dir_opt, dir, sizeof dir) != 0) {
        cli_err("no home directory known: pass --dir DIR or set HSTORE_DIR");
        return CLI_EXIT_USAGE;
    }
    /* Stop the recorded nodes that still run, then clean up their mounts. */
    pid_entry p[UP_MAX_NODES];
    int n = up_read_pids(dir, p, UP_MAX_NODES);
    int running = 0;
    for (int i = 0; i < n; i++)
        if (up_is_node(p[i].pid))
            running++;
    int killed = 0;
    if (running > 0)
        killed = up_stop_pids(p, n, (int)(wait_s * 1000));
    up_unmount_recorded(dir);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/pids", dir);
    unlink(path);
    if (running == 0) {
        fprintf(stderr, "hstore: no cluster is running in %s\n", dir);
        return CLI_EXIT_OK;
    }
    printf("hstore: stopped %d node%s in %s%s; the data stays for the next `hstore up`\n", running,
           running == 1 ? "" : "s", dir, killed ? " (some needed SIGKILL)" : "");
    return CLI_EXIT_OK;
}
