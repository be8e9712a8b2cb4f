/*
 * up_state.c — the recorded state of a cluster directory, as `hstore up`
 * writes and reads it:
 *   DIR/cluster   the SPEC (client commands read it when given no --cluster)
 *   DIR/options   the options the cluster was started with, `name = value`
 *                 per line; a later `up` uses them for whatever it is not given
 *   DIR/pids      "ID PID" per line, for `down`
 *   DIR/mounts    one mount point per line, for `down` to clean up
 * The table of `up`'s options lives here too: how each is checked and written
 * in one canonical form, so that a given value and a recorded one compare as
 * strings.  From the options in force follows the plan of a run (SPEC, mount
 * points, which nodes still run).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/up_state.h"

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

const up_optdef up_defs[UO_N] = {
    [UO_NODES] = {"nodes", K_COUNT, "3", false, 1, UP_MAX_NODES, "-n 3"},
    [UO_BASE_PORT] = {"base-port", K_NUM, "7100", false, 1, 65515, "--base-port 7100"},
    [UO_HOST] = {"host", K_HOST, "127.0.0.1", false, 0, 0, "--host 127.0.0.1"},
    [UO_MOUNT_ROOT] = {"mount-root", K_PATH, "/mnt/hstore", false, 0, 0,
                       "--mount-root /mnt/hstore"},
    [UO_NO_MOUNT] = {"no-mount", K_FLAG, "0", false, 0, 0, "--no-mount"},
    [UO_SNAP] = {"snapshot-threshold", K_SIZE, NULL, true, 0, UINT64_MAX,
                 "--snapshot-threshold 4m"},
    [UO_OP_TIMEOUT] = {"op-timeout-ms", K_NUM, NULL, true, 1, 3600000, "--op-timeout-ms 5000"},
    [UO_MAX_FILE] = {"max-file-size", K_SIZE, NULL, true, 1, UINT64_MAX, "--max-file-size 1g"},
    [UO_MAX_STORE] = {"max-store-bytes", K_SIZE, NULL, true, 0, UINT64_MAX,
                      "--max-store-bytes 10g"},
    [UO_TICK] = {"tick-ms", K_NUM, NULL, true, 1, 10000, "--tick-ms 50"},
    [UO_ELECTION] = {"election-ticks", K_NUM, NULL, true, 2, 10000, "--election-ticks 10"},
    [UO_LEASE] = {"lease-ms", K_NUM, NULL, true, 0, 600000, "--lease-ms 500"},
    [UO_ATTR_CACHE] = {"attr-cache-ms", K_NUM, NULL, true, 0, 60000, "--attr-cache-ms 1000"},
    [UO_LOG] = {"log-level", K_LEVEL, NULL, true, 0, 0, "--log-level debug"},
};

/* Checks one option's value and writes it in its one canonical form (sizes
 * in bytes, paths absolute), so that values compare as strings.  0 or -1. */
int up_normalize(int i, const char *in, char *out, size_t cap)
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
const char *up_value(const up_opts *given, const up_opts *rec, int i)
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
int up_first_difference(const up_opts *given, const up_opts *rec)
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
void up_describe(int i, const char *v, char *out, size_t cap)
{
    if (v == NULL || (up_defs[i].kind == K_FLAG && strcmp(v, "1") != 0))
        snprintf(out, cap, "no --%s", up_defs[i].name);
    else if (up_defs[i].kind == K_FLAG)
        snprintf(out, cap, "--%s", up_defs[i].name);
    else
        snprintf(out, cap, "--%s %s", up_defs[i].name, v);
}

/* Reads DIR/options into *rec.  A cluster started before the options were
 * recorded: its size, host and ports from DIR/cluster, its mount root from
 * DIR/mounts.  Returns true when the directory holds a cluster. */
bool up_load_recorded(const char *dir, up_opts *rec)
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
        if (sscanf(p, "%llu=%63[^:]:%llu%n", &id, host, &port, &used) != 3 ||
            id != (unsigned long long)nodes + 1)
            return true; /* not a SPEC `up` wrote: compared whole below */
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
                if (up_normalize(UO_MOUNT_ROOT, line, rec->val[UO_MOUNT_ROOT],
                                 sizeof rec->val[UO_MOUNT_ROOT]))
                    rec->set[UO_MOUNT_ROOT] = false;
            }
        }
        fclose(f);
    }
    return true;
}

int up_write_file(const char *path, const char *text)
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

void up_record_node(const char *dir, uint64_t id, char *const *argv, int argc)
{
    char path[PATH_MAX + 48], tmp[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%llu/partition", dir, (unsigned long long)id);
    unlink(path);
    snprintf(path, sizeof path, "%s/%llu/cmdline", dir, (unsigned long long)id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    for (int i = 0; ok && i < argc; i++) {
        size_t len = strlen(argv[i]) + 1; /* with its NUL */
        ok = write(fd, argv[i], len) == (ssize_t)len;
    }
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        cli_err("cannot write %s: %s; the playground cannot restart node %llu", path,
                strerror(errno), (unsigned long long)id);
        unlink(tmp);
    }
}

int up_read_pids(const char *dir, pid_entry *out, int max)
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

/* The nodes of the cluster in DIR that still run. */
void up_find_running(up_plan *p)
{
    pid_entry old[UP_MAX_NODES];
    p->n_old = up_read_pids(p->dir, old, UP_MAX_NODES);
    p->n_alive = 0;
    for (int i = 0; i < p->n_old; i++) {
        if (old[i].id >= 1 && old[i].id <= UP_MAX_NODES && up_is_node(old[i].pid)) {
            p->keep[old[i].id] = old[i].pid;
            p->n_alive++;
        }
    }
    if (p->n_old < 0)
        p->n_old = 0;
}

/* The options in force, the SPEC and the mount points. */
void up_resolve(up_plan *p, const up_opts *given, const up_opts *rec)
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
        off += (size_t)snprintf(p->spec + off, sizeof p->spec - off, "%s%llu=%s:%llu",
                                i > 1 ? "," : "", (unsigned long long)i, p->host,
                                (unsigned long long)(p->base_port + 2 * (i - 1)));
    for (uint64_t i = 1; i <= p->n; i++)
        snprintf(p->mounts[i - 1], sizeof p->mounts[i - 1], "%s/%llu", p->eff.val[UO_MOUNT_ROOT],
                 (unsigned long long)i);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/mounts", p->dir);
    FILE *f = fopen(path, "r");
    for (int i = 0; f != NULL && i < UP_MAX_NODES && fgets(p->old_mounts[i], PATH_MAX, f) != NULL;
         i++)
        p->old_mounts[i][strcspn(p->old_mounts[i], "\n")] = '\0';
    if (f != NULL)
        fclose(f);
}

/* Same directory, different cluster: the data in DIR/i belongs to another
 * membership; starting over it would mix two clusters.  0 or an exit code. */
int up_check_same_cluster(const up_plan *p)
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

/* The first line of DIR/NAME into out; false when there is none. */
static bool read_line(const char *dir, const char *name, char *out, size_t cap)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    if (fgets(out, (int)cap, f) != NULL)
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
    return out[0] != 0;
}

/* DIR/bootstrap from DIR/cluster, unless it exists. */
static void ensure_bootstrap(const char *dir)
{
    char spec[CLI_SPEC_MAX], text[CLI_SPEC_MAX + 2], path[PATH_MAX + 16];
    if (read_line(dir, "bootstrap", spec, sizeof spec) ||
        !read_line(dir, "cluster", spec, sizeof spec))
        return;
    snprintf(text, sizeof text, "%s\n", spec);
    snprintf(path, sizeof path, "%s/bootstrap", dir);
    if (up_write_file(path, text) != 0)
        cli_err("cannot write %s: %s", path, strerror(errno));
}

bool up_bootstrap_spec(const up_plan *p, char *out, size_t cap)
{
    return read_line(p->dir, "bootstrap", out, cap);
}

bool up_spec_has(const char *spec, uint64_t id)
{
    for (const char *s = spec; s && *s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL)
        if (strtoull(s, NULL, 10) == id)
            return true;
    return false;
}

/* DIR/cluster, DIR/options and DIR/mounts.  0 or an exit code. */
int up_record(const up_plan *p)
{
    char path[PATH_MAX + 16];
    char text[UP_MAX_NODES * (PATH_MAX + 32) + 1];
    ensure_bootstrap(p->dir); /* the SPEC before a resize */
    snprintf(path, sizeof path, "%s/cluster", p->dir);
    snprintf(text, sizeof text, "%s\n", p->spec);
    if (up_write_file(path, text) != 0) {
        cli_err("cannot write %s: %s", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    ensure_bootstrap(p->dir); /* a new cluster's */
    size_t t = (size_t)snprintf(
        text, sizeof text,
        "# The options `hstore up` started this cluster with; a plain `hstore up`\n"
        "# uses them again.\n");
    for (int i = 0; i < UO_N; i++)
        if (p->eff.set[i])
            t += (size_t)snprintf(text + t, sizeof text - t, "%s = %s\n", up_defs[i].name,
                                  p->eff.val[i]);
    snprintf(path, sizeof path, "%s/options", p->dir);
    if (up_write_file(path, text) != 0) {
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
    if (up_write_file(path, text) != 0) {
        cli_err("cannot write %s: %s", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    return 0;
}
