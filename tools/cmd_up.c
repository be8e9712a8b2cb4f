/*
 * cmd_up.c — `hstore up` and `hstore down`: a local cluster of N `hstore node`
 * processes in the background, for trying hstore out and for `make run`.
 *
 * `up` re-executes this very binary (/proc/self/exe) as `hstore node ...` once
 * per node, each in its own session (setsid) so that closing the terminal does
 * not stop it, with its output in DIR/i/node.log.  It records what it started
 * in DIR:
 *   DIR/cluster   the SPEC (client commands read it when given no --cluster)
 *   DIR/options   the options it was started with, `name = value` per line;
 *                 a later `up` uses them for whatever it is not given
 *   DIR/pids      "ID PID" per line, for `down`
 *   DIR/mounts    one mount point per line, for `down` to clean up
 * and waits (with a deadline) until some node reports itself leader and every
 * node it started answers.  On a cluster that runs whole it only reports.
 *
 * `down` sends SIGTERM to every recorded pid that is still an `hstore node`
 * (a pid may have been reused since), waits for them with a deadline, then
 * SIGKILLs the rest and unmounts every recorded mount, live or dead (a node
 * killed -9 leaves one that answers ENOTCONN); the data stays.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
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

#define UP_MAX_NODES RAFT_MAX_NODES
/* Longest cluster directory: leaves room for "/ID/node.log" in PATH_MAX. */
#define UP_DIR_MAX 2048

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
    "  -h, --help                this help\n"
    "Node options, handed to every node (see `hstore node --help`):\n"
    "  --snapshot-threshold B    snapshot when the log passes B bytes (k/m/g suffixes)\n"
    "  --op-timeout-ms MS        deadline of one operation (EIO in the mount after it)\n"
    "  --max-file-size B         largest file (EFBIG past it)\n"
    "  --max-store-bytes B       total data limit (ENOSPC past it)\n"
    "  --tick-ms MS, --election-ticks N   Raft tick and election timeout in ticks\n"
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
    "first.  `hstore down` stops the cluster; the data stays for the next `up`.\n";

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

/* ---- small helpers --------------------------------------------------------- */

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int write_file(const char *path, const char *text)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* True when pid is alive and runs `... node ...` (an hstore node), so that a
 * recycled pid is never signalled. */
static bool is_hstore_node(pid_t pid)
{
    if (pid <= 0 || kill(pid, 0) != 0)
        return false;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;   /* a zombie has an empty cmdline */
    buf[n] = '\0';
    /* argv[1] must be "node". */
    size_t a0 = strlen(buf);
    if ((ssize_t)a0 + 1 >= n)
        return false;
    return strcmp(buf + a0 + 1, "node") == 0;
}

typedef struct pid_entry {
    uint64_t id;
    pid_t pid;
} pid_entry;

static int read_pids(const char *dir, pid_entry *out, int max)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/pids", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int n = 0;
    unsigned long long id;
    int pid;
    while (n < max && fscanf(f, "%llu %d", &id, &pid) == 2) {
        out[n].id = id;
        out[n].pid = pid;
        n++;
    }
    fclose(f);
    return n;
}

/* Undoes the octal escapes of /proc/self/mountinfo (\040 for a space ...). */
static void unescape_mount(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
            r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static bool is_mounted(const char *path)
{
    char real[PATH_MAX + 256];
    /* realpath() stats a dead FUSE mount (ENOTCONN): resolve its parent and
     * add the last name, else take the path as it is. */
    if (realpath(path, real) == NULL) {
        char parent[PATH_MAX], rp[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", path);
        char *slash = strrchr(parent, '/');
        if (slash != NULL && slash != parent && slash[1] != '\0') {
            *slash = '\0';
            if (realpath(parent, rp) != NULL)
                snprintf(real, sizeof real, "%s/%s", rp, slash + 1);
            else
                snprintf(real, sizeof real, "%s", path);
        } else {
            snprintf(real, sizeof real, "%s", path);
        }
    }
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (f == NULL)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        /* id parent major:minor root mountpoint ... */
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        for (int i = 0; tok != NULL && i < 4; i++)
            tok = strtok_r(NULL, " ", &save);
        if (tok == NULL)
            continue;
        unescape_mount(tok);
        if (strcmp(tok, real) == 0 || strcmp(tok, path) == 0)
            found = true;
    }
    fclose(f);
    return found;
}

/* fusermount3 -u, then the lazy -uz if the mount is busy.  Silent on success. */
static void unmount(const char *path)
{
    if (!is_mounted(path))
        return;
    for (int lazy = 0; lazy <= 1; lazy++) {
        pid_t pid = fork();
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) {
                dup2(devnull, 1);
                dup2(devnull, 2);
            }
            execlp("fusermount3", "fusermount3", lazy ? "-uz" : "-u", path, (char *)NULL);
            _exit(127);
        }
        if (pid < 0)
            break;
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        if (!is_mounted(path))
            return;
    }
    cli_err("could not unmount %s: try `fusermount3 -uz %s`", path, path);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Prints the last lines of a node's log, to explain why it stopped. */
static void print_log_tail(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char *ring[32] = {0};
    if (lines > 32)
        lines = 32;
    int n = 0;
    char buf[1024];
    while (fgets(buf, sizeof buf, f) != NULL) {
        free(ring[n % lines]);
        ring[n % lines] = strdup(buf);
        n++;
    }
    fclose(f);
    int start = n > lines ? n - lines : 0;
    for (int i = start; i < n; i++) {
        char *l = ring[i % lines];
        if (l != NULL)
            fprintf(stderr, "    | %s%s", l, l[strlen(l) - 1] == '\n' ? "" : "\n");
    }
    for (int i = 0; i < lines; i++)
        free(ring[i]);
}

/* Stops the given pids: SIGTERM, wait up to wait_ms, SIGKILL.  Returns how
 * many needed SIGKILL. */
static int stop_pids(const pid_entry *p, int n, int wait_ms)
{
    for (int i = 0; i < n; i++)
        if (is_hstore_node(p[i].pid))
            kill(p[i].pid, SIGTERM);
    uint64_t deadline = cli_now_ns() + (uint64_t)wait_ms * 1000000ULL;
    for (;;) {
        int alive = 0;
        for (int i = 0; i < n; i++) {
            /* Reap our own children (up's failure path); others belong to init. */
            waitpid(p[i].pid, NULL, WNOHANG);
            if (is_hstore_node(p[i].pid))
                alive++;
        }
        if (alive == 0)
            return 0;
        if (cli_now_ns() >= deadline)
            break;
        sleep_ms(50);
    }
    int killed = 0;
    for (int i = 0; i < n; i++) {
        if (is_hstore_node(p[i].pid)) {
            cli_err("node %llu (pid %d) did not stop within %d ms: sending SIGKILL",
                    (unsigned long long)p[i].id, (int)p[i].pid, wait_ms);
            kill(p[i].pid, SIGKILL);
            killed++;
        }
    }
    for (int i = 0; i < n; i++) {
        uint64_t d2 = cli_now_ns() + 2000000000ULL;
        while (cli_now_ns() < d2) {
            waitpid(p[i].pid, NULL, WNOHANG);
            if (kill(p[i].pid, 0) != 0 || !is_hstore_node(p[i].pid))
                break;
            sleep_ms(20);
        }
    }
    return killed;
}

static void unmount_recorded(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/mounts", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[PATH_MAX];
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] != '\0')
            unmount(line);
    }
    fclose(f);
}

/* ---- up: the options ------------------------------------------------------ */

static int parse_log_level(const char *s)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    if (s[0] >= '0' && s[0] <= '3' && s[1] == '\0')
        return s[0] - '0';
    return -1;
}

/* The options a cluster is started with.  `up` records them in DIR/options
 * (`name = value` lines, the long option names) and a later `up` reuses them;
 * the node options are handed to every `hstore node` as they are. */
enum {
    UO_NODES, UO_BASE_PORT, UO_HOST, UO_NO_MOUNT, UO_MOUNT_ROOT,
    UO_SNAP, UO_OP_TIMEOUT, UO_MAX_FILE, UO_MAX_STORE, UO_TICK, UO_ELECTION, UO_LOG,
    UO_N
};
typedef enum { K_COUNT, K_NUM, K_SIZE, K_HOST, K_PATH, K_FLAG, K_LEVEL } up_kind;
typedef struct up_optdef {
    const char *name;
    up_kind kind;
    const char *def;        /* NULL: not set unless given (the node's default) */
    bool node;              /* passed to `hstore node --NAME VALUE` */
    uint64_t lo, hi;        /* K_COUNT, K_NUM, K_SIZE */
    const char *example;
} up_optdef;

static const up_optdef up_defs[UO_N] = {
    [UO_NODES] = {"nodes", K_COUNT, "3", false, 1, UP_MAX_NODES, "-n 3"},
    [UO_BASE_PORT] = {"base-port", K_NUM, "7100", false, 1, 65515, "--base-port 7100"},
    [UO_HOST] = {"host", K_HOST, "127.0.0.1", false, 0, 0, "--host 127.0.0.1"},
    [UO_MOUNT_ROOT] = {"mount-root", K_PATH, "/mnt/hstore", false, 0, 0, "--mount-root /mnt/hstore"},
    [UO_NO_MOUNT] = {"no-mount", K_FLAG, "0", false, 0, 0, "--no-mount"},
    [UO_SNAP] = {"snapshot-threshold", K_SIZE, NULL, true, 0, UINT64_MAX, "--snapshot-threshold 4m"},
    [UO_OP_TIMEOUT] = {"op-timeout-ms", K_NUM, NULL, true, 1, 3600000, "--op-timeout-ms 5000"},
    [UO_MAX_FILE] = {"max-file-size", K_SIZE, NULL, true, 1, UINT64_MAX, "--max-file-size 1g"},
    [UO_MAX_STORE] = {"max-store-bytes", K_SIZE, NULL, true, 0, UINT64_MAX, "--max-store-bytes 10g"},
    [UO_TICK] = {"tick-ms", K_NUM, NULL, true, 1, 10000, "--tick-ms 50"},
    [UO_ELECTION] = {"election-ticks", K_NUM, NULL, true, 2, 10000, "--election-ticks 10"},
    [UO_LOG] = {"log-level", K_LEVEL, NULL, true, 0, 0, "--log-level debug"},
};

typedef struct up_opts {
    bool set[UO_N];
    char val[UO_N][PATH_MAX];
} up_opts;

/* Checks one option's value and writes it in its one canonical form (sizes
 * in bytes, paths absolute), so that values compare as strings.  0 or -1. */
static int up_normalize(int i, const char *in, char *out, size_t cap)
{
    const up_optdef *d = &up_defs[i];
    uint64_t v;
    switch (d->kind) {
    case K_COUNT:
    case K_NUM:
    case K_SIZE:
        if (cli_parse_u64(in, d->kind == K_SIZE, &v) != 0 || v < d->lo || v > d->hi)
            return -1;
        snprintf(out, cap, "%llu", (unsigned long long)v);
        return 0;
    case K_HOST:
        if (in[0] == '\0' || strlen(in) >= RAFT_ADDR_MAX - 8 || strpbrk(in, ",=: "))
            return -1;
        snprintf(out, cap, "%s", in);
        return 0;
    case K_PATH: {
        if (in[0] == '\0' || strchr(in, '\n'))
            return -1;
        char cwd[PATH_MAX] = "";
        if (in[0] != '/' && getcwd(cwd, sizeof cwd) == NULL)
            return -1;
        if ((size_t)snprintf(out, cap, "%s%s%s", cwd, cwd[0] ? "/" : "", in) >= cap)
            return -1;
        size_t l = strlen(out);
        while (l > 1 && out[l - 1] == '/')
            out[--l] = '\0';
        return 0;
    }
    case K_FLAG:
        if (strcmp(in, "0") && strcmp(in, "1"))
            return -1;
        snprintf(out, cap, "%s", in);
        return 0;
    case K_LEVEL: {
        static const char *names[] = {"error", "warn", "info", "debug"};
        int l = parse_log_level(in);
        if (l < 0)
            return -1;
        snprintf(out, cap, "%s", names[l]);
        return 0;
    }
    }
    return -1;
}

/* The value in force: given, else recorded, else the default (NULL: unset). */
static const char *up_value(const up_opts *given, const up_opts *rec, int i)
{
    if (given->set[i])
        return given->val[i];
    if (rec->set[i])
        return rec->val[i];
    return up_defs[i].def;
}

/* The first option given on the command line whose value differs from the
 * recorded one (an option recorded as unset differs from any given value);
 * -1 when none does. */
static int up_first_difference(const up_opts *given, const up_opts *rec)
{
    for (int i = 0; i < UO_N; i++) {
        if (!given->set[i])
            continue;
        const char *was = rec->set[i] ? rec->val[i] : up_defs[i].def;
        if (was == NULL || strcmp(was, given->val[i]) != 0)
            return i;
    }
    return -1;
}

/* "--name value", "--name" (a flag), "no --name" (unset or flag off). */
static void up_describe(int i, const char *v, char *out, size_t cap)
{
    if (v == NULL || (up_defs[i].kind == K_FLAG && strcmp(v, "1") != 0))
        snprintf(out, cap, "no --%s", up_defs[i].name);
    else if (up_defs[i].kind == K_FLAG)
        snprintf(out, cap, "--%s", up_defs[i].name);
    else
        snprintf(out, cap, "--%s %s", up_defs[i].name, v);
}

typedef struct up_args {
    up_opts given;
    const char *dir_opt;
    double wait_s;
} up_args;

/* Parses `hstore up` arguments.  -1 to go on; else the exit code. */
static int up_parse_args(int argc, char **argv, up_args *a)
{
    enum { O_DIR = 256, O_WAIT, O_FIRST_DEF = 512 };
    struct option longopts[UO_N + 5];
    int k = 0;
    for (int i = 0; i < UO_N; i++)
        longopts[k++] = (struct option){up_defs[i].name,
                                        up_defs[i].kind == K_FLAG ? no_argument : required_argument,
                                        NULL, O_FIRST_DEF + i};
    longopts[k++] = (struct option){"dir", required_argument, NULL, O_DIR};
    longopts[k++] = (struct option){"wait", required_argument, NULL, O_WAIT};
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
                    cli_err("--%s: bad value '%s', e.g. %s", up_defs[i].name, v, up_defs[i].example);
                return CLI_EXIT_USAGE;
            }
            a->given.set[i] = true;
            continue;
        }
        switch (c) {
        case O_DIR: a->dir_opt = optarg; break;
        case O_WAIT:
            if (cli_parse_seconds(optarg, &a->wait_s) != 0) {
                cli_err("--wait wants seconds, e.g. --wait 20");
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(up_help, stdout);
            return CLI_EXIT_OK;
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
    if (a->given.set[UO_MOUNT_ROOT]) {   /* a mount root means: mount */
        a->given.set[UO_NO_MOUNT] = true;
        snprintf(a->given.val[UO_NO_MOUNT], sizeof a->given.val[UO_NO_MOUNT], "0");
    }
    return -1;
}

/* Reads DIR/options into *rec.  A cluster started before the options were
 * recorded: its size, host and ports from DIR/cluster, its mount root from
 * DIR/mounts.  Returns true when the directory holds a cluster. */
static bool up_load_recorded(const char *dir, up_opts *rec)
{
    memset(rec, 0, sizeof *rec);
    char path[PATH_MAX + 16], line[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/options", dir);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        while (fgets(line, sizeof line, f) != NULL) {
            line[strcspn(line, "\n")] = '\0';
            char *eq = strstr(line, " = ");
            if (line[0] == '#' || eq == NULL)
                continue;
            *eq = '\0';
            for (int i = 0; i < UO_N; i++)
                if (strcmp(line, up_defs[i].name) == 0 &&
                    up_normalize(i, eq + 3, rec->val[i], sizeof rec->val[i]) == 0)
                    rec->set[i] = true;
        }
        fclose(f);
        return true;
    }
    snprintf(path, sizeof path, "%s/cluster", dir);
    f = fopen(path, "r");
    if (f == NULL)
        return false;
    char spec[CLI_SPEC_MAX] = "";
    if (fgets(spec, sizeof spec, f) == NULL)
        spec[0] = '\0';
    fclose(f);
    spec[strcspn(spec, "\n")] = '\0';
    unsigned long long id, port;
    char host[RAFT_ADDR_MAX];
    int nodes = 0;
    for (char *p = spec; *p; nodes++) {
        int used = 0;
        if (sscanf(p, "%llu=%63[^:]:%llu%n", &id, host, &port, &used) != 3 || id != (unsigned long long)nodes + 1)
            return true;   /* not a SPEC `up` wrote: compared whole below */
        if (nodes == 0) {
            snprintf(rec->val[UO_HOST], sizeof rec->val[UO_HOST], "%s", host);
            snprintf(rec->val[UO_BASE_PORT], sizeof rec->val[UO_BASE_PORT], "%llu", port);
        }
        p += used;
        if (*p == ',')
            p++;
    }
    snprintf(rec->val[UO_NODES], sizeof rec->val[UO_NODES], "%d", nodes);
    rec->set[UO_NODES] = rec->set[UO_HOST] = rec->set[UO_BASE_PORT] = nodes > 0;
    snprintf(path, sizeof path, "%s/mounts", dir);
    f = fopen(path, "r");
    if (f == NULL) {
        rec->set[UO_NO_MOUNT] = true;
        snprintf(rec->val[UO_NO_MOUNT], sizeof rec->val[UO_NO_MOUNT], "1");
    } else {
        if (fgets(line, sizeof line, f) != NULL) {
            line[strcspn(line, "\n")] = '\0';
            char *slash = strrchr(line, '/');
            if (slash != NULL && slash != line) {
                *slash = '\0';
                rec->set[UO_MOUNT_ROOT] = true;
                if (up_normalize(UO_MOUNT_ROOT, line, rec->val[UO_MOUNT_ROOT], sizeof rec->val[UO_MOUNT_ROOT]))
                    rec->set[UO_MOUNT_ROOT] = false;
            }
        }
        fclose(f);
    }
    return true;
}

/* ---- up: the steps --------------------------------------------------------- */

/* Everything `up` decides before it starts anything. */
typedef struct up_plan {
    char dir[UP_DIR_MAX];
    const char *dir_opt;
    double wait_s;
    up_opts eff;                          /* the options in force */
    uint64_t n, base_port;
    const char *host;
    bool no_mount;
    char spec[CLI_SPEC_MAX];
    char mounts[UP_MAX_NODES][PATH_MAX + 24];
    char old_mounts[UP_MAX_NODES][PATH_MAX];   /* as recorded before this run */
    pid_t keep[UP_MAX_NODES + 1];         /* keep[id]: pid of a node still running */
    int n_old, n_alive;                   /* nodes recorded in DIR/pids; of them running */
} up_plan;

/* The nodes of the cluster in DIR that still run. */
static void up_find_running(up_plan *p)
{
    pid_entry old[UP_MAX_NODES];
    p->n_old = read_pids(p->dir, old, UP_MAX_NODES);
    p->n_alive = 0;
    for (int i = 0; i < p->n_old; i++) {
        if (old[i].id >= 1 && old[i].id <= UP_MAX_NODES && is_hstore_node(old[i].pid)) {
            p->keep[old[i].id] = old[i].pid;
            p->n_alive++;
        }
    }
    if (p->n_old < 0)
        p->n_old = 0;
}

/* The options in force, the SPEC and the mount points. */
static void up_resolve(up_plan *p, const up_opts *given, const up_opts *rec)
{
    memset(&p->eff, 0, sizeof p->eff);
    for (int i = 0; i < UO_N; i++) {
        const char *v = up_value(given, rec, i);
        if (v != NULL) {
            p->eff.set[i] = true;
            snprintf(p->eff.val[i], sizeof p->eff.val[i], "%s", v);
        }
    }
    p->n = strtoull(p->eff.val[UO_NODES], NULL, 10);
    p->base_port = strtoull(p->eff.val[UO_BASE_PORT], NULL, 10);
    p->host = p->eff.val[UO_HOST];
    p->no_mount = strcmp(p->eff.val[UO_NO_MOUNT], "1") == 0;
    size_t off = 0;
    for (uint64_t i = 1; i <= p->n; i++)
        off += (size_t)snprintf(p->spec + off, sizeof p->spec - off, "%s%llu=%s:%llu", i > 1 ? "," : "",
                                (unsigned long long)i, p->host,
                                (unsigned long long)(p->base_port + 2 * (i - 1)));
    for (uint64_t i = 1; i <= p->n; i++)
        snprintf(p->mounts[i - 1], sizeof p->mounts[i - 1], "%s/%llu", p->eff.val[UO_MOUNT_ROOT],
                 (unsigned long long)i);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/mounts", p->dir);
    FILE *f = fopen(path, "r");
    for (int i = 0; f != NULL && i < UP_MAX_NODES && fgets(p->old_mounts[i], PATH_MAX, f) != NULL; i++)
        p->old_mounts[i][strcspn(p->old_mounts[i], "\n")] = '\0';
    if (f != NULL)
        fclose(f);
}

/* Same directory, different cluster: the data in DIR/i belongs to another
 * membership; starting over it would mix two clusters.  0 or an exit code. */
static int up_check_same_cluster(const up_plan *p)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cluster", p->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char prev[CLI_SPEC_MAX] = "";
    if (fgets(prev, sizeof prev, f) != NULL)
        prev[strcspn(prev, "\n")] = '\0';
    fclose(f);
    if (prev[0] != '\0' && strcmp(prev, p->spec) != 0) {
        cli_err("%s holds the data of another cluster (%s), not %s: start it with the same "
                "-n/--base-port/--host (or none: they are recorded), use another --dir, or "
                "remove %s to start afresh",
                p->dir, prev, p->spec, p->dir);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* Data directories and mount points (a dead mount of a node that will start
 * again is unmounted first, wherever it was).  0 or an exit code. */
static int up_prepare_dirs(const up_plan *p)
{
    char path[PATH_MAX + 32];
    for (uint64_t i = 1; i <= p->n; i++) {
        snprintf(path, sizeof path, "%s/%llu", p->dir, (unsigned long long)i);
        if (mkdir_p(path, 0755) != 0) {
            cli_err("cannot create %s: %s", path, strerror(errno));
            return CLI_EXIT_USAGE;
        }
        if (p->keep[i])
            continue;
        if (p->old_mounts[i - 1][0] != '\0')
            unmount(p->old_mounts[i - 1]);
        if (p->no_mount)
            continue;
        unmount(p->mounts[i - 1]);
        if (mkdir_p(p->mounts[i - 1], 0755) != 0) {
            cli_err("cannot create mount point %s: %s; pass --mount-root DIR or --no-mount",
                    p->mounts[i - 1], strerror(errno));
            return CLI_EXIT_USAGE;
        }
    }
    return 0;
}

/* DIR/cluster, DIR/options and DIR/mounts.  0 or an exit code. */
static int up_record(const up_plan *p)
{
    char path[PATH_MAX + 16];
    char text[UP_MAX_NODES * (PATH_MAX + 32) + 1];
    snprintf(path, sizeof path, "%s/cluster", p->dir);
    snprintf(text, sizeof text, "%s\n", p->spec);
    if (write_file(path, text) != 0) {
        cli_err("cannot write %s: %s", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    size_t t = (size_t)snprintf(text, sizeof text,
                                "# The options `hstore up` started this cluster with; a plain `hstore up`\n"
                                "# uses them again.\n");
    for (int i = 0; i < UO_N; i++)
        if (p->eff.set[i])
            t += (size_t)snprintf(text + t, sizeof text - t, "%s = %s\n", up_defs[i].name, p->eff.val[i]);
    snprintf(path, sizeof path, "%s/options", p->dir);
    if (write_file(path, text) != 0) {
        cli_err("cannot write %s: %s", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    snprintf(path, sizeof path, "%s/mounts", p->dir);
    if (p->no_mount) {
        unlink(path);
        return 0;
    }
    t = 0;
    text[0] = '\0';
    for (uint64_t i = 0; i < p->n; i++)
        t += (size_t)snprintf(text + t, sizeof text - t, "%s\n", p->mounts[i]);
    if (write_file(path, text) != 0) {
        cli_err("cannot write %s: %s", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* Starts node `id` in the background (its own session, output to its log).
 * The pid, or -1. */
static pid_t up_start_node(const up_plan *p, uint64_t id)
{
    char idbuf[24], databuf[PATH_MAX], logpath[PATH_MAX + 16];
    snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)id);
    snprintf(databuf, sizeof databuf, "%s/%llu", p->dir, (unsigned long long)id);
    snprintf(logpath, sizeof logpath, "%s/node.log", databuf);
    char optnames[UO_N][40], secret[PATH_MAX];
    char *av[14 + 2 * UO_N];
    int ac = 0;
    av[ac++] = "hstore";
    av[ac++] = "node";
    av[ac++] = "--id";
    av[ac++] = idbuf;
    av[ac++] = "--cluster";
    av[ac++] = (char *)p->spec;
    av[ac++] = "--data";
    av[ac++] = databuf;
    snprintf(secret, sizeof secret, "%s/secret", p->dir);   /* cli_up_secret wrote it */
    av[ac++] = "--secret-file";
    av[ac++] = secret;
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
                            (unsigned long long)started[i].id, WIFSIGNALED(st) ? WTERMSIG(st) : 0, logpath);
                print_log_tail(logpath, 10);
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
        sleep_ms(100);
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
    stop_pids(live, nl, 5000);
    if (!p->no_mount)
        for (uint64_t i = 1; i <= p->n; i++)
            if (!p->keep[i])
                unmount(p->mounts[i - 1]);
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
        const cli_node_status *s = nn >= (int)id ? &ns[id - 1] : NULL;
        if (s != NULL && s->ok)
            printf("  %s term %llu", raft_role_name(s->st.role), (unsigned long long)s->st.term);
        else
            printf("  unreachable");
        printf("%s\n", notes[id] ? notes[id] : "");
    }
}

static void up_print_hints(const up_plan *p)
{
    printf("\nSPEC: %s\n", p->spec);
    printf("Client commands in this environment find it from %s/cluster; elsewhere:\n", p->dir);
    printf("  export HSTORE_CLUSTER=%s\n", p->spec);
    printf("Try:\n  hstore put greeting hello && hstore get greeting\n  hstore status\n  hstore watch\n");
    if (!p->no_mount)
        printf("  echo hi > %s/hello && cat %s/hello\n", p->mounts[0], p->n > 1 ? p->mounts[1] : p->mounts[0]);
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
                "with `hstore down` and `hstore up`", p->wait_s, p->dir);
        return CLI_EXIT_UNAVAIL;
    }
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
    p.dir_opt = a.dir_opt;
    p.wait_s = a.wait_s;
    if (cli_cluster_dir(a.dir_opt, p.dir, sizeof p.dir) != 0) {
        cli_err("no home directory known: pass --dir DIR or set HSTORE_DIR");
        return CLI_EXIT_USAGE;
    }
    if (mkdir_p(p.dir, 0755) != 0) {
        cli_err("cannot create %s: %s; pass another --dir", p.dir, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    char secret[PATH_MAX];
    if (cli_up_secret(p.dir, secret, sizeof secret) != 0)
        return CLI_EXIT_USAGE;

    /* What ran before and how it was started. */
    up_opts rec;
    bool had_cluster = up_load_recorded(p.dir, &rec);
    up_find_running(&p);
    if (p.n_alive > 0) {
        /* A running cluster keeps its options: changing one needs a restart. */
        int d = up_first_difference(&a.given, &rec);
        if (d >= 0) {
            char now[PATH_MAX + 64], then[PATH_MAX + 64];
            up_describe(d, a.given.val[d], now, sizeof now);
            up_describe(d, rec.set[d] ? rec.val[d] : up_defs[d].def, then, sizeof then);
            if (d == UO_NO_MOUNT && a.given.set[UO_MOUNT_ROOT]) {   /* mounts asked of a --no-mount cluster */
                d = UO_MOUNT_ROOT;
                up_describe(d, a.given.val[d], now, sizeof now);
            }
            cli_err("--%s differs: the cluster in %s runs with %s (recorded in %s/options), not %s; "
                    "stop it with `hstore down%s%s` first to change it, or leave the option out",
                    up_defs[d].name, p.dir, then, p.dir, now, a.dir_opt ? " --dir " : "",
                    a.dir_opt ? a.dir_opt : "");
            return CLI_EXIT_USAGE;
        }
    }
    up_resolve(&p, &a.given, &rec);
    if ((rc = up_check_same_cluster(&p)) != 0)
        return rc;
    if (p.n_alive > 0 && p.n_alive == p.n_old && (uint64_t)p.n_old == p.n)
        return up_report_running(&p);
    if (p.n_alive > 0 && (uint64_t)p.n_old != p.n) {
        cli_err("a cluster of another size runs in %s (%d of %d nodes running): stop it with "
                "`hstore down%s%s` first", p.dir, p.n_alive, p.n_old, a.dir_opt ? " --dir " : "",
                a.dir_opt ? a.dir_opt : "");
        return CLI_EXIT_USAGE;
    }
    if (had_cluster && p.n_alive == 0)
        printf("hstore: starting the cluster in %s with the options in %s/options%s\n", p.dir, p.dir,
               up_first_difference(&a.given, &rec) >= 0 ? " and those given now" : "");
    if ((rc = up_prepare_dirs(&p)) != 0 || (rc = up_record(&p)) != 0)
        return rc;

    /* Start the nodes that do not run. */
    pid_entry started[UP_MAX_NODES];
    int n_started = 0;
    pid_t pids[UP_MAX_NODES + 1] = {0};
    char pidtext[UP_MAX_NODES * 48] = "";
    size_t pt = 0;
    for (uint64_t i = 1; i <= p.n; i++) {
        pids[i] = p.keep[i];
        if (!p.keep[i]) {
            pids[i] = up_start_node(&p, i);
            if (pids[i] < 0) {
                up_abort(&p, started, n_started);
                return CLI_EXIT_UNAVAIL;
            }
            started[n_started++] = (pid_entry){i, pids[i]};
        }
        pt += (size_t)snprintf(pidtext + pt, sizeof pidtext - pt, "%llu %d\n", (unsigned long long)i,
                               (int)pids[i]);
    }
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/pids", p.dir);
    if (write_file(path, pidtext) != 0)
        cli_err("cannot write %s: %s; stop the nodes by hand (pids above)", path, strerror(errno));

    int64_t leader = up_wait_leader(&p, started, n_started);
    if (leader < 0) {
        up_abort(&p, started, n_started);
        return CLI_EXIT_UNAVAIL;
    }
    if (leader == 0) {
        cli_err("no leader elected (or not every node answering) within %.0f s; the nodes keep "
                "running: see %s/*/node.log, "
                "`hstore status`, or stop them with `hstore down`",
                p.wait_s, p.dir);
        return CLI_EXIT_UNAVAIL;
    }
    const char *notes[UP_MAX_NODES + 1] = {0};
    for (uint64_t id = 1; id <= p.n; id++)
        notes[id] = p.keep[id] ? "  (kept running)" : p.n_alive ? "  (restarted)" : "";
    if (p.n_alive > 0)
        printf("hstore: restarted %d of the %llu nodes in %s (the others kept running); node %lld "
               "leads\n", n_started, (unsigned long long)p.n, p.dir, (long long)leader);
    else
        printf("hstore: %llu-node cluster is up in %s; node %lld leads\n", (unsigned long long)p.n,
               p.dir, (long long)leader);
    up_print_nodes(&p, pids, notes);
    up_print_hints(&p);
    return CLI_EXIT_OK;
}

/* ---- down ------------------------------------------------------------------ */

int cmd_down(int argc, char **argv)
{
    enum { O_DIR = 256, O_WAIT };
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, O_DIR},
        {"wait", required_argument, NULL, O_WAIT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir_opt = NULL;
    double wait_s = 10;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        switch (c) {
        case O_DIR: dir_opt = optarg; break;
        case O_WAIT:
            if (cli_parse_seconds(optarg, &wait_s) != 0) {
                cli_err("--wait wants seconds, e.g. --wait 10");
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(down_help, stdout);
            return CLI_EXIT_OK;
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
    char dir[UP_DIR_MAX];
    if (cli_cluster_dir(dir_opt, dir, sizeof dir) != 0) {
        cli_err("no home directory known: pass --dir DIR or set HSTORE_DIR");
        return CLI_EXIT_USAGE;
    }
    pid_entry p[UP_MAX_NODES];
    int n = read_pids(dir, p, UP_MAX_NODES);
    int running = 0;
    for (int i = 0; i < n; i++)
        if (is_hstore_node(p[i].pid))
            running++;
    int killed = 0;
    if (running > 0)
        killed = stop_pids(p, n, (int)(wait_s * 1000));
    unmount_recorded(dir);
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
