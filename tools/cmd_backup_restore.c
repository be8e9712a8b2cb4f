/*
 * cmd_backup_restore.c — `hstore restore FILE --data DIR`: seeds a new
 * node's data directory with the state a backup holds (backup_file.h).
 *
 * The file is checked whole first (header, length, checksum), then its
 * state is decoded and, byte for byte as it decodes, stored through the
 * store's snapshot writer (st_bgsnap_*) into a directory beside DIR; the
 * store's hard state gets the backup's term and index.  Only when all of it
 * decoded to the header's index and is on disk does the directory become
 * DIR (a rename): a failure leaves nothing behind.  The node started on DIR
 * then loads that snapshot like its own, with an empty log after it.
 *
 * The configuration stored with the snapshot is the new cluster's
 * (--cluster SPEC), or none: then the node's own --cluster gives it at its
 * first start, as for a fresh directory.  Never the old cluster's members.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/client.h"
#include "raftkv/storage.h"
#include "tools/backup_file.h"
#include "tools/cli.h"
#include "tools/cmds.h"

static const char restore_help[] =
    "Usage: hstore restore FILE --data DIR [--id N] [--cluster SPEC]\n"
    "\n"
    "Seeds a new node's data directory DIR with the state saved by `hstore backup`\n"
    "in FILE.  DIR must not exist or be empty.  FILE is checked whole (header,\n"
    "length, checksum, and the state must decode to the backup's index); a\n"
    "truncated, corrupt or foreign file is refused and nothing is written.  A\n"
    "node started on DIR begins with the backup's state at the backup's index.\n"
    "  --data DIR         the data directory to create\n"
    "  --id N             record DIR as node N's (else its first start does)\n"
    "  --cluster SPEC     the new cluster's members, ID=HOST:PORT,... (else the\n"
    "                     node's --cluster at its first start)\n"
    "\n"
    "A new 3-node cluster from one backup: restore the same FILE into each node's\n"
    "directory, then start the nodes with the same --cluster:\n"
    "  for i in 1 2 3; do hstore restore state.hsb --data /srv/hstore/$i --id $i; done\n"
    "  hstore node --id 1 --cluster 1=h1:7100,2=h2:7100,3=h3:7100 --data /srv/hstore/1\n"
    "  (and nodes 2 and 3 likewise)\n"
    "Every node must be restored: a node started on an empty directory beside\n"
    "restored ones would join with an empty log.\n"
    "\n";

/* DIR must be absent or empty: 0 (*exists tells which), or -1 after a message. */
static int check_target(const char *dir, bool *exists)
{
    *exists = false;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        cli_err("restore: %s: %s", dir, strerror(errno));
        return -1;
    }
    *exists = true;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = false;
    closedir(d);
    if (!empty) {
        cli_err("restore: %s is not empty: restore only seeds a new node's data directory "
                "(move the old one away first)",
                dir);
        return -1;
    }
    return 0;
}

/* Removes the staging directory and what the store left in it (flat). */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[4200 + 260];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* mkdir -p of the directories above path; the number made. */
static int make_parents(const char *path)
{
    char p[4200];
    int made = 0;
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        made += mkdir(p, 0755) == 0;
        *s = '/';
    }
    return made;
}

/* Removes the last `made` directories above path (make_parents's). */
static void remove_parents(const char *path, int made)
{
    char p[4200];
    snprintf(p, sizeof p, "%s", path);
    for (; made > 0; made--) {
        char *s = strrchr(p, '/');
        if (!s || s == p)
            return;
        *s = '\0';
        rmdir(p);
    }
}

static int tee_store(void *arg, const void *buf, size_t n)
{
    char err[512];
    if (st_bgsnap_write(arg, buf, n, err, sizeof err) != ST_OK) {
        cli_err("restore: %s", err);
        return -1;
    }
    return 0;
}

/* The new cluster's configuration from SPEC (node.c's form of addresses). */
static int conf_of(const char *spec, raft_conf *conf)
{
    memset(conf, 0, sizeof *conf);
    if (!spec)
        return 0;
    uint64_t ids[RAFT_MAX_NODES];
    char hosts[RAFT_MAX_NODES][NET_ADDR_MAX];
    int ports[RAFT_MAX_NODES];
    char err[256];
    int n = net_parse_spec(spec, ids, hosts, ports, RAFT_MAX_NODES, err, sizeof err);
    if (n < 0) {
        cli_err("restore: bad --cluster SPEC: %s", err);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        conf->ids[i] = ids[i];
        snprintf(conf->addrs[i], RAFT_ADDR_MAX, "%.*s:%d", NET_SPEC_HOST_MAX, hosts[i], ports[i]);
    }
    conf->n = (uint32_t)n;
    return 0;
}

/* The store in stage: the snapshot, the hard state.  0 or -1 (printed). */
static int fill_store(const char *stage, const char *file, int fd, const bk_header *h, uint64_t id,
                      const raft_conf *conf, char *desc, size_t desclen, uint64_t *raw)
{
    char err[4400];
    st_store *st = NULL;
    st_snap_writer *w = NULL;
    kv *k = NULL;
    int rc = -1;
    if (st_open(stage, &st, err, sizeof err) != ST_OK ||
        (id && st_check_identity(st, id, NULL, err, sizeof err) != ST_OK) ||
        st_bgsnap_begin(st, h->index, h->term, &w, err, sizeof err) != ST_OK) {
        cli_err("restore: %s", err);
    } else if (bk_decode(fd, file, h, tee_store, w, &k, raw, err, sizeof err) != 0) {
        cli_err("restore: %s", err);
    } else if (st_bgsnap_finish(w, err, sizeof err) != ST_OK) {
        cli_err("restore: %s", err);
    } else {
        st_snap_writer *cw = w;
        w = NULL; /* commit frees it, whatever it returns */
        raft_ready rd;
        memset(&rd, 0, sizeof rd);
        rd.hs_changed = true;
        rd.hs = (raft_hard_state){.term = h->term, .vote = 0, .commit = h->index};
        if (st_bgsnap_commit(cw, conf, err, sizeof err) != ST_OK ||
            st_save_ready(st, &rd, err, sizeof err) != ST_OK)
            cli_err("restore: %s", err);
        else
            rc = 0;
    }
    if (w)
        st_bgsnap_abort(w);
    if (k)
        bk_describe(k, desc, desclen);
    kv_free(k);
    st_close(st);
    return rc;
}

int cmd_restore(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"id", required_argument, NULL, 'i'},
        {"cluster", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = NULL, *spec = NULL;
    uint64_t id = 0;
    int g;
    optind = 1;
    opterr = 0;
    while ((g = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (g == 'h') {
            fputs(restore_help, stdout);
            return CLI_EXIT_OK;
        } else if (g == 'd') {
            data = optarg;
        } else if (g == 'c') {
            spec = optarg;
        } else if (g == 'i') {
            if (cli_parse_u64(optarg, false, &id) != 0 || id == 0) {
                cli_err("restore: --id wants a node id (a positive integer), not '%s'", optarg);
                return CLI_EXIT_USAGE;
            }
        } else {
            return cli_getopt_error(g, argv, "restore");
        }
    }
    if (argc - optind != 1 || !data || !*data) {
        cli_err("restore: want FILE and --data DIR; see `hstore restore --help`");
        return CLI_EXIT_USAGE;
    }
    const char *file = argv[optind];
    raft_conf conf;
    bool exists;
    if (conf_of(spec, &conf) != 0 || check_target(data, &exists) != 0)
        return CLI_EXIT_USAGE;
    if (spec && id) {
        bool member = false;
        for (uint32_t i = 0; i < conf.n; i++)
            member |= conf.ids[i] == id;
        if (!member) {
            cli_err("restore: node %" PRIu64 " is not in --cluster %s", id, spec);
            return CLI_EXIT_USAGE;
        }
    }
    char err[4400];
    bk_header h;
    int fd;
    if (bk_open(file, &h, &fd, err, sizeof err) != 0) {
        cli_err("restore: %s", err);
        return CLI_EXIT_USAGE;
    }
    char stage[4200];
    size_t dl = strlen(data);
    while (dl > 1 && data[dl - 1] == '/')
        dl--;
    snprintf(stage, sizeof stage, "%.*s.restoring-%ld", (int)dl, data, (long)getpid());
    int made = make_parents(stage);
    if (mkdir(stage, 0700) != 0) {
        cli_err("restore: cannot create %s: %s", stage, strerror(errno));
        remove_parents(stage, made);
        close(fd);
        return CLI_EXIT_USAGE;
    }
    char desc[256] = "";
    uint64_t raw = 0;
    int rc = fill_store(stage, file, fd, &h, id, &conf, desc, sizeof desc, &raw);
    close(fd);
    if (rc == 0 && exists && rmdir(data) != 0) {
        cli_err("restore: %s: %s", data, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && rename(stage, data) != 0) {
        cli_err("restore: cannot rename %s to %s: %s", stage, data, strerror(errno));
        rc = -1;
    }
    if (rc != 0) {
        remove_dir(stage);
        remove_parents(stage, made);
        return CLI_EXIT_USAGE;
    }
    printf("restored %s into %s: index %" PRIu64 " (term %" PRIu64 "), %s; %" PRIu64
           " bytes of state%s\n",
           file, data, h.index, h.term, desc, raw,
           id ? "" : "; the node's id is recorded at its first start");
    return CLI_EXIT_OK;
}
