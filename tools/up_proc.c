/*
 * up_proc.c — the processes and mounts of a local cluster, for `hstore up`
 * and `hstore down`: telling a live `hstore node` from a recycled pid,
 * stopping nodes (SIGTERM, a deadline, SIGKILL), finding and undoing FUSE
 * mounts (a node killed -9 leaves a dead one that answers ENOTCONN), creating
 * directories, and showing the end of a node's log.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs/fs.h"
#include "tools/cli.h"
#include "tools/up_proc.h"

int up_mkdir_p(const char *path, mode_t mode)
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

/* True when pid is alive and runs `... node ...` (an hstore node), so that a
 * recycled pid is never signalled. */
bool up_is_node(pid_t pid)
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
        return false; /* a zombie has an empty cmdline */
    buf[n] = '\0';
    /* argv[1] must be "node". */
    size_t a0 = strlen(buf);
    if ((ssize_t)a0 + 1 >= n)
        return false;
    return strcmp(buf + a0 + 1, "node") == 0;
}

static bool is_mounted(const char *path)
{
    char real[PATH_MAX + 256];
    /* realpath() stats a dead FUSE mount (ENOTCONN): resolve its parent and
     * add the last name, else take the path as it is. */
    if (realpath(path, real) == NULL && !fs_resolve_parent(path, real, sizeof real))
        snprintf(real, sizeof real, "%s", path);
    return fs_fuse_mounts_at(real, NULL, NULL) > 0 || fs_fuse_mounts_at(path, NULL, NULL) > 0;
}

/* fusermount3 -u, then the lazy -uz if the mount is busy.  Silent on success. */
void up_unmount(const char *path)
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

/* Prints the last lines of a node's log, to explain why it stopped. */
void up_print_log_tail(const char *path, int lines)
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
int up_stop_pids(const pid_entry *p, int n, int wait_ms)
{
    for (int i = 0; i < n; i++)
        if (up_is_node(p[i].pid))
            kill(p[i].pid, SIGTERM);
    uint64_t deadline = cli_now_ns() + (uint64_t)wait_ms * 1000000ULL;
    for (;;) {
        int alive = 0;
        for (int i = 0; i < n; i++) {
            /* Reap our own children (up's failure path); others belong to init. */
            waitpid(p[i].pid, NULL, WNOHANG);
            if (up_is_node(p[i].pid))
                alive++;
        }
        if (alive == 0)
            return 0;
        if (cli_now_ns() >= deadline)
            break;
        cli_sleep_ms(50);
    }
    int killed = 0;
    for (int i = 0; i < n; i++) {
        if (up_is_node(p[i].pid)) {
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
            if (kill(p[i].pid, 0) != 0 || !up_is_node(p[i].pid))
                break;
            cli_sleep_ms(20);
        }
    }
    return killed;
}

void up_unmount_recorded(const char *dir)
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
            up_unmount(line);
    }
    fclose(f);
}
