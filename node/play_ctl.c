/*
 * play_ctl.c — the playground's control of a local `hstore up` cluster: stop,
 * kill -9, restart and partition a node, from any node's page.
 *
 * It uses only what `hstore up` (tools/cmd_up.c) leaves in its directory DIR:
 *   DIR/pids          "ID PID" lines: the process of each node
 *   DIR/ID/cmdline    the argv `up` started node ID with (NUL-separated)
 *   DIR/ID/partition  present while node ID's partition switch is on
 * The rules:
 *   - on only in a node started with --up-dir DIR (which `up` passes), where
 *     DIR holds a cluster (DIR/cluster, DIR/secret) and DIR/ID is this node's
 *     data directory; otherwise every action is refused (403);
 *   - a signal goes only to a pid that runs `hstore node` with --id ID, so a
 *     recycled pid is never signalled; this node signals itself only after
 *     its answer has had time to go out;
 *   - restart starts only a node whose process is gone, only with the argv
 *     recorded in DIR/ID/cmdline, and only when that file belongs to this
 *     user, is writable by no one else, and reads `hstore node ... --id ID
 *     ... --up-dir DIR`; the program run is this very binary
 *     (/proc/self/exe), never one named in a file.  DIR/ctl.lock is held
 *     across the check, the start and the update of DIR/pids, so two pages
 *     cannot start one node twice;
 *   - partition and heal only create or remove DIR/ID/partition: a thread of
 *     every node looks for its own file every 100 ms and sets its partition
 *     switch (node_set_partitioned) to match, so any node's page can cut any
 *     node off.  A restart clears the file.
 */
#include "node/play_ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WATCH_MS 100
#define LOCK_WAIT_MS 5000
#define UNMOUNT_WAIT_MS 3000
#define SELF_SIGNAL_DELAY_MS 300
#define MAX_ARGS 128
#define CMDLINE_MAX 65536

static struct {
    bool on;
    char dir[PATH_MAX];
    uint64_t self;
    node *n;
    pthread_t watcher;
    bool watching;
    atomic_bool stop;
} ctl;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reads at most cap bytes of path.  The length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return (ssize_t)got;
}

/* Splits NUL-separated arguments (the form of /proc/PID/cmdline) in place.
 * The count, at most max. */
static int split_args(char *buf, size_t len, char **args, int max)
{
    int n = 0;
    for (size_t i = 0; i < len && n < max;) {
        args[n++] = buf + i;
        i += strnlen(buf + i, len - i) + 1;
    }
    return n;
}

/* The value of "--name V" or "--name=V" in args, or NULL. */
static const char *arg_value(char **args, int n, const char *name)
{
    size_t l = strlen(name);
    for (int i = 1; i < n; i++) {
        if (!strcmp(args[i], name) && i + 1 < n)
            return args[i + 1];
        if (!strncmp(args[i], name, l) && args[i][l] == '=')
            return args[i] + l + 1;
    }
    return NULL;
}

static bool is_id(const char *v, uint64_t id)
{
    char want[24];
    snprintf(want, sizeof want, "%" PRIu64, id);
    return v && !strcmp(v, want);
}

/* Whether pid is alive and runs `hstore node ... --id ID`. */
static bool pid_runs_node(pid_t pid, uint64_t id)
{
    if (pid <= 0 || kill(pid, 0) != 0)
        return false;
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    ssize_t n = read_small(path, buf, sizeof buf - 1);
    if (n <= 0)
        return false; /* a zombie has an empty cmdline */
    buf[n] = '\0';
    char *args[MAX_ARGS];
    int na = split_args(buf, (size_t)n, args, MAX_ARGS);
    return na >= 2 && !strcmp(args[1], "node") && is_id(arg_value(args, na, "--id"), id);
}

/* The pid DIR/pids records for node id; 0 when none. */
static pid_t recorded_pid(uint64_t id)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/pids", ctl.dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned long long i;
    int p;
    pid_t out = 0;
    while (fscanf(f, "%llu %d", &i, &p) == 2)
        if (i == id)
            out = p;
    fclose(f);
    return out;
}

/* Replaces node id's line of DIR/pids (or adds it), through a rename. */
static int record_pid(uint64_t id, pid_t pid)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/pids", ctl.dir);
    snprintf(tmp, sizeof tmp, "%s/pids.play.tmp", ctl.dir);
    FILE *in = fopen(path, "re");
    FILE *out = fopen(tmp, "we");
    if (!out) {
        if (in)
            fclose(in);
        return -1;
    }
    unsigned long long i;
    int p;
    bool done = false;
    while (in && fscanf(in, "%llu %d", &i, &p) == 2) {
        if (i == id) {
            p = (int)pid;
            done = true;
        }
        fprintf(out, "%llu %d\n", i, p);
    }
    if (!done)
        fprintf(out, "%" PRIu64 " %d\n", id, (int)pid);
    if (in)
        fclose(in);
    if (fclose(out) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void partition_path(uint64_t id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%" PRIu64 "/partition", ctl.dir, id);
}

/* ---- the partition watcher ---- */

static void *watch_main(void *arg)
{
    (void)arg;
    char path[PATH_MAX + 48];
    partition_path(ctl.self, path, sizeof path);
    bool cur = node_partitioned(ctl.n);
    while (!atomic_load(&ctl.stop)) {
        bool want = access(path, F_OK) == 0;
        if (want != cur) {
            node_set_partitioned(ctl.n, want);
            cur = want;
            fprintf(stderr, "hstore node %" PRIu64 ": partition switch %s: peer traffic %s\n",
                    ctl.self, want ? "on" : "off", want ? "dropped both ways" : "flows again");
        }
        sleep_ms(WATCH_MS);
    }
    return NULL;
}

int play_ctl_start(node *n, const char *up_dir, char *err, size_t errlen)
{
    const node_config *cfg = node_get_config(n);
    char dir[PATH_MAX], data[PATH_MAX], want[PATH_MAX + 24], probe[PATH_MAX + 16];
    if (!realpath(up_dir, dir)) {
        snprintf(err, errlen, "--up-dir %s: %s", up_dir, strerror(errno));
        return -1;
    }
    for (const char *f = "cluster"; f; f = !strcmp(f, "cluster") ? "secret" : NULL) {
        snprintf(probe, sizeof probe, "%s/%s", dir, f);
        if (access(probe, R_OK) != 0) {
            snprintf(err, errlen, "--up-dir %s: no %s there: not a directory of `hstore up`",
                     up_dir, f);
            return -1;
        }
    }
    snprintf(want, sizeof want, "%s/%" PRIu64, dir, cfg->id);
    if (!realpath(cfg->data_dir, data) || strcmp(data, want) != 0) {
        snprintf(err, errlen, "--up-dir %s: this node's data directory is not %s", up_dir, want);
        return -1;
    }
    snprintf(ctl.dir, sizeof ctl.dir, "%s", dir);
    ctl.self = cfg->id;
    ctl.n = n;
    atomic_store(&ctl.stop, false);
    if (pthread_create(&ctl.watcher, NULL, watch_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the partition watcher");
        return -1;
    }
    ctl.watching = true;
    ctl.on = true;
    return 0;
}

void play_ctl_stop(void)
{
    ctl.on = false;
    if (ctl.watching) {
        atomic_store(&ctl.stop, true);
        pthread_join(ctl.watcher, NULL);
        ctl.watching = false;
    }
}

bool play_ctl_on(char *why, size_t cap)
{
    if (!ctl.on)
        snprintf(why, cap,
                 "this node was not started by `hstore up` (no --up-dir), so its page "
                 "does not control processes");
    return ctl.on;
}

void play_ctl_proc(uint64_t id, play_proc *out)
{
    memset(out, 0, sizeof *out);
    if (!ctl.on)
        return;
    out->pid = recorded_pid(id);
    out->running = pid_runs_node(out->pid, id);
    char path[PATH_MAX + 48];
    partition_path(id, path, sizeof path);
    out->partitioned = access(path, F_OK) == 0;
}

/* ---- actions ---- */

typedef struct self_signal {
    int sig;
} self_signal;

static void *self_signal_main(void *arg)
{
    int sig = ((self_signal *)arg)->sig;
    free(arg);
    sleep_ms(SELF_SIGNAL_DELAY_MS);
    kill(getpid(), sig);
    return NULL;
}

static int act_signal(uint64_t id, int sig, char *msg, size_t cap)
{
    const char *name = sig == SIGKILL ? "SIGKILL" : "SIGTERM";
    pid_t pid = recorded_pid(id);
    if (!pid_runs_node(pid, id)) {
        snprintf(msg, cap, "node %" PRIu64 " does not run (recorded pid %d)", id, (int)pid);
        return 409;
    }
    if (pid == getpid()) {
        self_signal *s = malloc(sizeof *s);
        pthread_t t;
        if (!s) {
            snprintf(msg, cap, "out of memory");
            return 500;
        }
        s->sig = sig;
        if (pthread_create(&t, NULL, self_signal_main, s) != 0) {
            free(s);
            snprintf(msg, cap, "cannot start a thread");
            return 500;
        }
        pthread_detach(t);
        snprintf(msg, cap,
                 "node %" PRIu64 " (this page's node, pid %d) gets %s now; open the page "
                 "of another node",
                 id, (int)pid, name);
        return 200;
    }
    if (kill(pid, sig) != 0) {
        snprintf(msg, cap, "kill(%d, %s): %s", (int)pid, name, strerror(errno));
        return 500;
    }
    snprintf(msg, cap, "sent %s to node %" PRIu64 " (pid %d)", name, id, (int)pid);
    return 200;
}

static int act_partition(uint64_t id, bool on, char *msg, size_t cap)
{
    char path[PATH_MAX + 48];
    partition_path(id, path, sizeof path);
    if (on) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            snprintf(msg, cap, "cannot create %s: %s", path, strerror(errno));
            return 500;
        }
        close(fd);
        snprintf(msg, cap, "node %" PRIu64 " is cut off: its peer traffic is dropped both ways",
                 id);
    } else {
        if (unlink(path) != 0 && errno != ENOENT) {
            snprintf(msg, cap, "cannot remove %s: %s", path, strerror(errno));
            return 500;
        }
        snprintf(msg, cap, "node %" PRIu64 " is healed: its peer traffic flows again", id);
    }
    return 200;
}

/* Runs argv (an absolute program path) with output to /dev/null and waits
 * for it, at most wait_ms. */
static void run_quiet(char *const argv[], int wait_ms)
{
    pid_t c = fork();
    if (c == 0) {
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            dup2(nul, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    if (c < 0)
        return;
    uint64_t end = now_ms() + (uint64_t)wait_ms;
    while (waitpid(c, NULL, WNOHANG) == 0) {
        if (now_ms() >= end) {
            kill(c, SIGKILL);
            waitpid(c, NULL, 0);
            return;
        }
        sleep_ms(20);
    }
}

/* Starts argv as a new session of its own (not this process's child, so it
 * outlives it), output appended to logpath.  Its pid, or -1. */
static pid_t spawn_node(char *const argv[], const char *logpath)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    pid_t c = fork();
    if (c < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (c == 0) {
        setsid();
        pid_t g = fork();
        if (g == 0) {
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            signal(SIGPIPE, SIG_DFL);
            int in = open("/dev/null", O_RDONLY);
            int out = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (in >= 0)
                dup2(in, 0);
            if (out >= 0) {
                dup2(out, 1);
                dup2(out, 2);
            }
            /* None of this node's sockets and files go to the new one. */
            if (close_range(3, ~0U, 0) != 0)
                for (int fd = 3; fd < 65536; fd++)
                    close(fd);
            execv("/proc/self/exe", argv);
            _exit(127);
        }
        ssize_t w = write(pfd[1], &g, sizeof g);
        _exit(w == (ssize_t)sizeof g ? 0 : 1);
    }
    close(pfd[1]);
    pid_t g = -1;
    ssize_t r;
    do
        r = read(pfd[0], &g, sizeof g);
    while (r < 0 && errno == EINTR);
    close(pfd[0]);
    waitpid(c, NULL, 0);
    return r == (ssize_t)sizeof g ? g : -1;
}

/* Reads and checks DIR/ID/cmdline into buf/args.  The count, or -1 with the
 * reason in msg. */
static int load_cmdline(uint64_t id, char *buf, size_t cap, char **args, char *msg, size_t mcap)
{
    char path[PATH_MAX + 48];
    snprintf(path, sizeof path, "%s/%" PRIu64 "/cmdline", ctl.dir, id);
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(msg, mcap, "%s: %s: was node %" PRIu64 " started by `hstore up`?", path,
                 strerror(errno), id);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 022)) {
        snprintf(msg, mcap, "%s is not a file of this user writable by it alone: not run", path);
        return -1;
    }
    ssize_t n = read_small(path, buf, cap - 1);
    if (n <= 0 || (size_t)n >= cap - 1) {
        snprintf(msg, mcap, "%s: empty, unreadable or too long", path);
        return -1;
    }
    buf[n] = '\0';
    int na = split_args(buf, (size_t)n, args, MAX_ARGS - 1);
    args[na] = NULL;
    const char *upd = arg_value(args, na, "--up-dir");
    char real[PATH_MAX];
    if (na < 2 || strcmp(args[0], "hstore") || strcmp(args[1], "node") ||
        !is_id(arg_value(args, na, "--id"), id) || !upd || !realpath(upd, real) ||
        strcmp(real, ctl.dir)) {
        snprintf(msg, mcap, "%s is not `hstore node --id %" PRIu64 " ... --up-dir %s`: not run",
                 path, id, ctl.dir);
        return -1;
    }
    return na;
}

/* Takes DIR/ctl.lock (waiting up to LOCK_WAIT_MS).  The descriptor, or -1. */
static int take_lock(void)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/ctl.lock", ctl.dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    uint64_t end = now_ms() + LOCK_WAIT_MS;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (now_ms() >= end) {
            close(fd);
            return -1;
        }
        sleep_ms(20);
    }
    return fd;
}

static int act_restart(uint64_t id, char *msg, size_t cap)
{
    int lock = take_lock();
    if (lock < 0) {
        snprintf(msg, cap, "%s/ctl.lock is held by another restart: try again", ctl.dir);
        return 409;
    }
    int status = 200;
    char *buf = malloc(CMDLINE_MAX);
    char *args[MAX_ARGS];
    pid_t old = recorded_pid(id);
    if (!buf) {
        snprintf(msg, cap, "out of memory");
        status = 500;
    } else if (pid_runs_node(old, id)) {
        snprintf(msg, cap, "node %" PRIu64 " runs (pid %d): stop or kill it first", id, (int)old);
        status = 409;
    } else if (load_cmdline(id, buf, CMDLINE_MAX, args, msg, cap) < 0) {
        status = 403;
    } else {
        int na = 0;
        while (args[na])
            na++;
        const char *mount = arg_value(args, na, "--mount");
        if (mount && access("/bin/fusermount3", X_OK) == 0) {
            /* The dead node's mount answers nothing: away with it first. */
            char *um[] = {"/bin/fusermount3", "-uz", (char *)mount, NULL};
            run_quiet(um, UNMOUNT_WAIT_MS);
        }
        char path[PATH_MAX + 48];
        partition_path(id, path, sizeof path);
        unlink(path);
        snprintf(path, sizeof path, "%s/%" PRIu64 "/node.log", ctl.dir, id);
        pid_t pid = spawn_node(args, path);
        if (pid <= 0) {
            snprintf(msg, cap, "cannot start node %" PRIu64 ": %s", id, strerror(errno));
            status = 500;
        } else if (record_pid(id, pid) != 0) {
            snprintf(msg, cap,
                     "started node %" PRIu64 " (pid %d) but cannot update %s/pids: %s; "
                     "`hstore down` will not know it",
                     id, (int)pid, ctl.dir, strerror(errno));
        } else {
            snprintf(msg, cap, "started node %" PRIu64 " again (pid %d) from its data; log %s", id,
                     (int)pid, path);
        }
    }
    free(buf);
    flock(lock, LOCK_UN);
    close(lock);
    return status;
}

int play_ctl_act(uint64_t id, const char *action, char *msg, size_t cap)
{
    if (!play_ctl_on(msg, cap))
        return 403;
    char path[PATH_MAX + 24];
    struct stat st;
    snprintf(path, sizeof path, "%s/%" PRIu64, ctl.dir, id);
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(msg, cap, "no node %" PRIu64 " in %s", id, ctl.dir);
        return 404;
    }
    if (!strcmp(action, "stop"))
        return act_signal(id, SIGTERM, msg, cap);
    if (!strcmp(action, "kill"))
        return act_signal(id, SIGKILL, msg, cap);
    if (!strcmp(action, "restart"))
        return act_restart(id, msg, cap);
    if (!strcmp(action, "partition"))
        return act_partition(id, true, msg, cap);
    if (!strcmp(action, "heal"))
        return act_partition(id, false, msg, cap);
    snprintf(msg, cap, "unknown action '%s': stop, kill, restart, partition or heal", action);
    return 400;
}
