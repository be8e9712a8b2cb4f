/*
 * cmd_up.c — `hstore up` and `hstore down`: a local cluster of N `hstore node`
 * processes in the background, for trying hstore out and for `make run`.
 *
 * `up` re-executes this very binary (/proc/self/exe) as `hstore node ...` once
 * per node, each in its own session (setsid) so that closing the terminal does
 * not stop it, with its output in DIR/i/node.log.  It records what it started
 * in DIR:
 *   DIR/cluster   the SPEC (client commands read it when given no --cluster)
 *   DIR/pids      "ID PID" per line, for `down`
 *   DIR/mounts    one mount point per line, for `down` to clean up
 * and waits (with a deadline) until some node reports itself leader.
 *
 * `down` sends SIGTERM to every recorded pid that is still an `hstore node`
 * (a pid may have been reused since), waits for them with a deadline, then
 * SIGKILLs the rest and unmounts leftover mounts; the data stays.
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
    "                 [--no-mount] [--snapshot-threshold BYTES] [--log-level L] [--wait SECONDS]\n"
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
    "  --snapshot-threshold B    snapshot when the log passes B bytes (k/m/g suffixes)\n"
    "  --log-level L             error, warn, info (default) or debug\n"
    "  --wait SECONDS            how long to wait for a leader (default 20)\n"
    "  -h, --help                this help\n"
    "\n"
    "Examples:\n"
    "  hstore up -n 3                         # nodes on 127.0.0.1:7100, 7102, 7104\n"
    "  hstore up -n 5 --dir /tmp/c5 --base-port 7200 --no-mount\n"
    "  HSTORE_DIR=/tmp/c5 hstore get foo      # clients find the cluster from DIR/cluster\n"
    "\n"
    "Running `up` again while the whole cluster in DIR runs says so and changes\n"
    "nothing; when some of its nodes died (kill -9, a crash), `up` with the same\n"
    "options starts just those again from their data, and the others keep running.\n"
    "Stop the cluster with `hstore down` (the data stays for the next `up`).\n";

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
    char real[PATH_MAX];
    /* realpath() stats a dead FUSE mount (ENOTCONN): fall back to the path. */
    if (realpath(path, real) == NULL)
        snprintf(real, sizeof real, "%s", path);
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

/* ---- up -------------------------------------------------------------------- */

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

int cmd_up(int argc, char **argv)
{
    enum { O_DIR = 256, O_BASE_PORT, O_HOST, O_MOUNT_ROOT, O_NO_MOUNT, O_SNAP, O_LOG, O_WAIT };
    static const struct option longopts[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"dir", required_argument, NULL, O_DIR},
        {"base-port", required_argument, NULL, O_BASE_PORT},
        {"host", required_argument, NULL, O_HOST},
        {"mount-root", required_argument, NULL, O_MOUNT_ROOT},
        {"no-mount", no_argument, NULL, O_NO_MOUNT},
        {"snapshot-threshold", required_argument, NULL, O_SNAP},
        {"log-level", required_argument, NULL, O_LOG},
        {"wait", required_argument, NULL, O_WAIT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t n = 3, base_port = 7100, snap = 0;
    bool have_snap = false, no_mount = false;
    const char *dir_opt = NULL, *host = "127.0.0.1", *mount_root = "/mnt/hstore", *log_level = NULL;
    double wait_s = 20;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:n:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (cli_parse_u64(optarg, false, &n) != 0 || n < 1 || n > UP_MAX_NODES) {
                cli_err("-n wants a number of nodes from 1 to %d, e.g. -n 3", UP_MAX_NODES);
                return CLI_EXIT_USAGE;
            }
            break;
        case O_DIR: dir_opt = optarg; break;
        case O_BASE_PORT:
            if (cli_parse_u64(optarg, false, &base_port) != 0 || base_port < 1 || base_port > 65535 - 20) {
                cli_err("--base-port wants a port from 1 to 65515, e.g. --base-port 7100");
                return CLI_EXIT_USAGE;
            }
            break;
        case O_HOST:
            if (optarg[0] == '\0' || strlen(optarg) >= RAFT_ADDR_MAX - 8 || strpbrk(optarg, ",=: ")) {
                cli_err("--host wants an address like 127.0.0.1");
                return CLI_EXIT_USAGE;
            }
            host = optarg;
            break;
        case O_MOUNT_ROOT: mount_root = optarg; break;
        case O_NO_MOUNT: no_mount = true; break;
        case O_SNAP:
            if (cli_parse_u64(optarg, true, &snap) != 0) {
                cli_err("--snapshot-threshold wants bytes, e.g. --snapshot-threshold 4m");
                return CLI_EXIT_USAGE;
            }
            have_snap = true;
            break;
        case O_LOG:
            if (parse_log_level(optarg) < 0) {
                cli_err("--log-level wants error, warn, info or debug");
                return CLI_EXIT_USAGE;
            }
            log_level = optarg;
            break;
        case O_WAIT:
            if (cli_parse_seconds(optarg, &wait_s) != 0) {
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

    char dir[UP_DIR_MAX];
    if (cli_cluster_dir(dir_opt, dir, sizeof dir) != 0) {
        cli_err("no home directory known: pass --dir DIR or set HSTORE_DIR");
        return CLI_EXIT_USAGE;
    }
    if (mkdir_p(dir, 0755) != 0) {
        cli_err("cannot create %s: %s; pass another --dir", dir, strerror(errno));
        return CLI_EXIT_USAGE;
    }

    /* Already running? */
    /* Nodes of this cluster that still run are kept (a node that was killed
     * is started again from its data directory); all of them running is an
     * error, since nothing would change. */
    pid_entry old[UP_MAX_NODES];
    int n_old = read_pids(dir, old, UP_MAX_NODES);
    pid_t keep[UP_MAX_NODES + 1] = {0};   /* keep[id]: pid of a running node */
    int n_alive = 0;
    for (int i = 0; i < n_old; i++) {
        if (old[i].id >= 1 && old[i].id <= UP_MAX_NODES && is_hstore_node(old[i].pid)) {
            keep[old[i].id] = old[i].pid;
            n_alive++;
        }
    }
    if (n_alive > 0 && (n_alive == n_old || (uint64_t)n_old != n)) {
        cli_err("a cluster %s in %s (%d of %d nodes running): use it, or stop it with "
                "`hstore down%s%s` first",
                n_alive == n_old ? "is already running" : "of another size runs", dir, n_alive,
                n_old, dir_opt ? " --dir " : "", dir_opt ? dir_opt : "");
        return CLI_EXIT_USAGE;
    }

    /* The SPEC. */
    char spec[CLI_SPEC_MAX];
    size_t off = 0;
    for (uint64_t i = 1; i <= n; i++)
        off += (size_t)snprintf(spec + off, sizeof spec - off, "%s%llu=%s:%llu", i > 1 ? "," : "",
                                (unsigned long long)i, host,
                                (unsigned long long)(base_port + 2 * (i - 1)));

    /* Same directory, different cluster: the data in DIR/i belongs to another
     * membership; starting over it would mix two clusters. */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/cluster", dir);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        char prev[CLI_SPEC_MAX] = "";
        if (fgets(prev, sizeof prev, f) != NULL)
            prev[strcspn(prev, "\n")] = '\0';
        fclose(f);
        if (prev[0] != '\0' && strcmp(prev, spec) != 0) {
            cli_err("%s holds the data of another cluster (%s), not %s: start it with the same "
                    "-n/--base-port/--host, use another --dir, or remove %s to start afresh",
                    dir, prev, spec, dir);
            return CLI_EXIT_USAGE;
        }
    }

    /* Data directories and mount points. */
    char mounts[UP_MAX_NODES][PATH_MAX];
    for (uint64_t i = 1; i <= n; i++) {
        snprintf(path, sizeof path, "%s/%llu", dir, (unsigned long long)i);
        if (mkdir_p(path, 0755) != 0) {
            cli_err("cannot create %s: %s", path, strerror(errno));
            return CLI_EXIT_USAGE;
        }
        if (!no_mount) {
            snprintf(mounts[i - 1], sizeof mounts[i - 1], "%s/%llu", mount_root, (unsigned long long)i);
            if (!keep[i])
                unmount(mounts[i - 1]);   /* a leftover of a node that was killed */
            if (mkdir_p(mounts[i - 1], 0755) != 0) {
                cli_err("cannot create mount point %s: %s; pass --mount-root DIR or --no-mount",
                        mounts[i - 1], strerror(errno));
                return CLI_EXIT_USAGE;
            }
        }
    }
    snprintf(path, sizeof path, "%s/cluster", dir);
    char specline[CLI_SPEC_MAX + 2];
    snprintf(specline, sizeof specline, "%s\n", spec);
    if (write_file(path, specline) != 0) {
        cli_err("cannot write %s: %s", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    if (!no_mount) {
        char text[UP_MAX_NODES * (PATH_MAX + 1)] = "";
        size_t t = 0;
        for (uint64_t i = 0; i < n; i++)
            t += (size_t)snprintf(text + t, sizeof text - t, "%s\n", mounts[i]);
        snprintf(path, sizeof path, "%s/mounts", dir);
        write_file(path, text);
    } else {
        snprintf(path, sizeof path, "%s/mounts", dir);
        unlink(path);
    }

    /* Start the nodes. */
    pid_entry started[UP_MAX_NODES];
    int n_started = 0;
    char pidtext[UP_MAX_NODES * 48] = "";
    size_t pt = 0;
    for (uint64_t i = 1; i <= n; i++) {
        if (keep[i]) {
            pt += (size_t)snprintf(pidtext + pt, sizeof pidtext - pt, "%llu %d\n",
                                   (unsigned long long)i, (int)keep[i]);
            continue;
        }
        char idbuf[24], databuf[PATH_MAX], snapbuf[32], logpath[PATH_MAX + 16];
        snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)i);
        snprintf(databuf, sizeof databuf, "%s/%llu", dir, (unsigned long long)i);
        snprintf(snapbuf, sizeof snapbuf, "%llu", (unsigned long long)snap);
        snprintf(logpath, sizeof logpath, "%s/node.log", databuf);
        char *av[20];
        int ac = 0;
        av[ac++] = "hstore";
        av[ac++] = "node";
        av[ac++] = "--id";
        av[ac++] = idbuf;
        av[ac++] = "--cluster";
        av[ac++] = spec;
        av[ac++] = "--data";
        av[ac++] = databuf;
        if (!no_mount) {
            av[ac++] = "--mount";
            av[ac++] = mounts[i - 1];
        }
        if (have_snap) {
            av[ac++] = "--snapshot-threshold";
            av[ac++] = snapbuf;
        }
        if (log_level != NULL) {
            av[ac++] = "--log-level";
            av[ac++] = (char *)log_level;
        }
        av[ac] = NULL;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            cli_err("fork: %s", strerror(errno));
            stop_pids(started, n_started, 5000);
            return CLI_EXIT_UNAVAIL;
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
        started[n_started].id = i;
        started[n_started].pid = pid;
        n_started++;
        pt += (size_t)snprintf(pidtext + pt, sizeof pidtext - pt, "%llu %d\n", (unsigned long long)i, (int)pid);
    }
    snprintf(path, sizeof path, "%s/pids", dir);
    if (write_file(path, pidtext) != 0)
        cli_err("cannot write %s: %s; stop the nodes by hand (pids above)", path, strerror(errno));

    /* Wait for a leader, watching for nodes that die at start. */
    uint64_t deadline = cli_now_ns() + (uint64_t)(wait_s * 1e9);
    uint64_t leader = 0;
    int rc = CLI_EXIT_OK;
    for (;;) {
        for (int i = 0; i < n_started; i++) {
            int st;
            if (waitpid(started[i].pid, &st, WNOHANG) == started[i].pid) {
                char logpath[PATH_MAX + 32];
                snprintf(logpath, sizeof logpath, "%s/%llu/node.log", dir, (unsigned long long)started[i].id);
                if (WIFEXITED(st))
                    cli_err("node %llu exited at start with status %d; the end of %s:",
                            (unsigned long long)started[i].id, WEXITSTATUS(st), logpath);
                else
                    cli_err("node %llu died at start (signal %d); the end of %s:",
                            (unsigned long long)started[i].id, WIFSIGNALED(st) ? WTERMSIG(st) : 0, logpath);
                print_log_tail(logpath, 10);
                started[i].pid = 0;
                rc = CLI_EXIT_UNAVAIL;
            }
        }
        if (rc != CLI_EXIT_OK) {
            cli_err("stopping the other nodes; fix the cause (port in use? mount point busy?) "
                    "and run `hstore up` again");
            break;
        }
        cli_node_status ns[UP_MAX_NODES];
        int nn = cli_status_all(spec, 300, ns, UP_MAX_NODES);
        leader = nn > 0 ? cli_leader_of(ns, nn) : 0;
        if (leader != 0)
            break;
        if (cli_now_ns() >= deadline) {
            cli_err("no leader elected within %.0f s; the nodes keep running: see %s/*/node.log, "
                    "`hstore status`, or stop them with `hstore down`",
                    wait_s, dir);
            return CLI_EXIT_UNAVAIL;
        }
        sleep_ms(100);
    }
    if (rc != CLI_EXIT_OK) {
        pid_entry live[UP_MAX_NODES];
        int nl = 0;
        for (int i = 0; i < n_started; i++)
            if (started[i].pid > 0)
                live[nl++] = started[i];
        stop_pids(live, nl, 5000);
        if (!no_mount)
            for (uint64_t i = 0; i < n; i++)
                if (!keep[i + 1])
                    unmount(mounts[i]);
        if (n_alive == 0) {
            snprintf(path, sizeof path, "%s/pids", dir);
            unlink(path);
        }
        return rc;
    }

    if (n_alive > 0)
        printf("hstore: restarted %d of the %llu nodes in %s (the others kept running); node %llu "
               "leads\n", n_started, (unsigned long long)n, dir, (unsigned long long)leader);
    else
        printf("hstore: %llu-node cluster is up in %s; node %llu leads\n", (unsigned long long)n,
               dir, (unsigned long long)leader);
    for (uint64_t id = 1; id <= n; id++) {
        pid_t pid = keep[id];
        for (int i = 0; i < n_started && !pid; i++)
            if (started[i].id == id)
                pid = started[i].pid;
        printf("  node %llu  peers %s:%llu  clients %s:%llu  pid %d  data %s/%llu", (unsigned long long)id,
               host, (unsigned long long)(base_port + 2 * (id - 1)), host,
               (unsigned long long)(base_port + 2 * (id - 1) + 1), (int)pid, dir,
               (unsigned long long)id);
        if (!no_mount)
            printf("  mount %s", mounts[id - 1]);
        printf("%s\n", keep[id] ? "  (kept running)" : n_alive ? "  (restarted)" : "");
    }
    printf("\nSPEC: %s\n", spec);
    printf("Client commands in this environment find it from %s/cluster; elsewhere:\n", dir);
    printf("  export HSTORE_CLUSTER=%s\n", spec);
    printf("Try:\n  hstore put greeting hello && hstore get greeting\n  hstore status\n  hstore watch\n");
    if (!no_mount)
        printf("  echo hi > %s/hello && cat %s/hello\n", mounts[0], n > 1 ? mounts[1] : mounts[0]);
    printf("Logs: %s/<id>/node.log.  Stop with: hstore down%s%s\n", dir, dir_opt ? " --dir " : "",
           dir_opt ? dir_opt : "");
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
