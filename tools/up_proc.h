/*
 * up_proc.h — the processes and mounts of a local cluster (tools/up_proc.c),
 * shared by `hstore up` and `hstore down`.
 */
#ifndef HSTORE_UP_PROC_H
#define HSTORE_UP_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* One node of a local cluster: its id and the pid of its process. */
typedef struct pid_entry {
    uint64_t id;
    pid_t pid;
} pid_entry;

/* mkdir -p.  0 or -1 (errno set). */
int up_mkdir_p(const char *path, mode_t mode);

/* True when pid is alive and runs `... node ...` (an hstore node), so that a
 * recycled pid is never signalled. */
bool up_is_node(pid_t pid);

/* fusermount3 -u, then the lazy -uz if the mount is busy; nothing when path
 * is not a mount point.  Silent on success. */
void up_unmount(const char *path);

/* Unmounts every mount point listed in DIR/mounts. */
void up_unmount_recorded(const char *dir);

/* Prints the last lines of a node's log to stderr, to explain why it stopped. */
void up_print_log_tail(const char *path, int lines);

/* Stops the given pids: SIGTERM, wait up to wait_ms, SIGKILL.  Returns how
 * many needed SIGKILL. */
int up_stop_pids(const pid_entry *p, int n, int wait_ms);

#endif
