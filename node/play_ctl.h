/*
 * play_ctl.h — the processes of a local `hstore up` cluster as the
 * playground controls them (node/play_ctl.c), for node/play.c.
 */
#ifndef HSTORE_NODE_PLAY_CTL_H
#define HSTORE_NODE_PLAY_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "node/node.h"

/* See play_start / play_stop (play.h). */
int play_ctl_start(node *n, const char *up_dir, char *err, size_t errlen);
void play_ctl_stop(void);

/* Whether the control routes are on; when off, why (into why). */
bool play_ctl_on(char *why, size_t cap);

/* What the cluster directory says of node id: its recorded pid (0: none),
 * whether that pid runs an hstore node with this id, and whether its
 * partition switch is set. */
typedef struct play_proc {
    pid_t pid;
    bool running;
    bool partitioned;
} play_proc;
void play_ctl_proc(uint64_t id, play_proc *out);

/* Runs action ("stop", "kill", "restart", "partition", "heal") on node id.
 * The HTTP status (200, or 400/403/404/409/500 with the reason in msg); msg
 * says what was done. */
int play_ctl_act(uint64_t id, const char *action, char *msg, size_t cap);

#endif
