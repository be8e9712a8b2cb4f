/*
 * up_state.h — the recorded state of a cluster directory (DIR/cluster,
 * DIR/options, DIR/pids, DIR/mounts), the table of `hstore up`'s options and
 * the plan of one `up` run (tools/up_state.c).
 */
#ifndef HSTORE_UP_STATE_H
#define HSTORE_UP_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "raftkv/raft.h"
#include "tools/cli.h"
#include "tools/up_proc.h"

#define UP_MAX_NODES RAFT_MAX_NODES
/* Longest cluster directory: leaves room for "/ID/node.log" in PATH_MAX. */
#define UP_DIR_MAX 2048

/* The options a cluster is started with.  `up` records them in DIR/options
 * (`name = value` lines, the long option names) and a later `up` reuses them;
 * the node options are handed to every `hstore node` as they are. */
enum {
    UO_NODES,
    UO_BASE_PORT,
    UO_HOST,
    UO_NO_MOUNT,
    UO_MOUNT_ROOT,
    UO_SNAP,
    UO_OP_TIMEOUT,
    UO_MAX_FILE,
    UO_MAX_STORE,
    UO_TICK,
    UO_ELECTION,
    UO_LEASE,
    UO_ATTR_CACHE,
    UO_LOG,
    UO_N
};
typedef enum { K_COUNT, K_NUM, K_SIZE, K_HOST, K_PATH, K_FLAG, K_LEVEL } up_kind;
typedef struct up_optdef {
    const char *name;
    up_kind kind;
    const char *def; /* NULL: not set unless given (the node's default) */
    bool node;       /* passed to `hstore node --NAME VALUE` */
    uint64_t lo, hi; /* K_COUNT, K_NUM, K_SIZE */
    const char *example;
} up_optdef;

extern const up_optdef up_defs[UO_N];

typedef struct up_opts {
    bool set[UO_N];
    char val[UO_N][PATH_MAX];
} up_opts;

/* Checks one option's value and writes it in its one canonical form (sizes
 * in bytes, paths absolute), so that values compare as strings.  0 or -1. */
int up_normalize(int i, const char *in, char *out, size_t cap);

/* The value in force: given, else recorded, else the default (NULL: unset). */
const char *up_value(const up_opts *given, const up_opts *rec, int i);

/* The first option given on the command line whose value differs from the
 * recorded one (an option recorded as unset differs from any given value);
 * -1 when none does. */
int up_first_difference(const up_opts *given, const up_opts *rec);

/* "--name value", "--name" (a flag), "no --name" (unset or flag off). */
void up_describe(int i, const char *v, char *out, size_t cap);

/* Reads DIR/options into *rec.  A cluster started before the options were
 * recorded: its size, host and ports from DIR/cluster, its mount root from
 * DIR/mounts.  Returns true when the directory holds a cluster. */
bool up_load_recorded(const char *dir, up_opts *rec);

/* Writes text to path through path.tmp and a rename.  0 or -1. */
int up_write_file(const char *path, const char *text);

/* Records how node id is started, for the playground's restart
 * (node/play_ctl.c): argv[0..argc) NUL-separated in DIR/ID/cmdline (mode
 * 0600); and clears its partition switch (DIR/ID/partition), which a start
 * does not keep.  Failures are said, not fatal: only the restart button
 * needs the file. */
void up_record_node(const char *dir, uint64_t id, char *const *argv, int argc);

/* Reads DIR/pids into out (at most max).  The count, or -1 without the file. */
int up_read_pids(const char *dir, pid_entry *out, int max);

/* Everything `up` decides before it starts anything. */
typedef struct up_plan {
    char dir[UP_DIR_MAX];
    const char *dir_opt;
    double wait_s;
    up_opts eff; /* the options in force */
    uint64_t n, base_port;
    const char *host;
    bool no_mount;
    char spec[CLI_SPEC_MAX];
    char mounts[UP_MAX_NODES][PATH_MAX + 24];
    char old_mounts[UP_MAX_NODES][PATH_MAX]; /* as recorded before this run */
    pid_t keep[UP_MAX_NODES + 1];            /* keep[id]: pid of a node still running */
    int n_old, n_alive;                      /* nodes recorded in DIR/pids; of them running */
} up_plan;

/* The nodes of the cluster in DIR that still run (keep, n_old, n_alive). */
void up_find_running(up_plan *p);

/* The options in force, the SPEC and the mount points. */
void up_resolve(up_plan *p, const up_opts *given, const up_opts *rec);

/* Same directory, different cluster: the data in DIR/i belongs to another
 * membership; starting over it would mix two clusters.  0 or an exit code. */
int up_check_same_cluster(const up_plan *p);

/* DIR/bootstrap: the SPEC the cluster was first started with; its nodes
 * start with --cluster, nodes added later by `up -n` with --join.  True with
 * the SPEC in out when recorded. */
bool up_bootstrap_spec(const up_plan *p, char *out, size_t cap);
/* Whether node id is in spec. */
bool up_spec_has(const char *spec, uint64_t id);
/* DIR/cluster, DIR/options and DIR/mounts (and DIR/bootstrap the first
 * time).  0 or an exit code. */
int up_record(const up_plan *p);

#endif
