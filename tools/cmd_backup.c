/*
 * cmd_backup.c — `hstore backup FILE`: a consistent copy of the whole state
 * machine (keys, files, directories, inodes and their metadata) at one log
 * index, streamed from one node in ranges into FILE (backup_file.h).
 *
 * The node (node/backup.c) first takes a read index, as a linearizable
 * read does, and answers with its applied index A: every write acknowledged
 * before the backup started is at or below A.  It then makes sure a
 * snapshot at A or later is stored, and the stored snapshot's compressed
 * frame is read in ranges of at most NET_SNAP_CHUNK_MAX bytes.  If a newer
 * snapshot replaces it mid-way, the copy starts again on the newer one.
 * The file is written as FILE.part, checked whole (it must decode to the
 * state at its index) and only then renamed to FILE.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net/client.h"
#include "raftkv/crc32c.h"
#include "tools/backup_file.h"
#include "tools/cli.h"
#include "tools/cli_net.h"
#include "tools/cmds.h"

/* How long the node may take to store a snapshot recent enough. */
#define SNAP_WAIT_MS (10 * 60 * 1000)
/* Copies started again because a newer snapshot replaced the one being read. */
#define MAX_RESTARTS 8

static const char backup_help[] =
    "Usage: hstore backup FILE [--node ID] [OPTIONS]\n"
    "\n"
    "Writes a consistent copy of the whole cluster state to FILE: every key, file\n"
    "and directory with its mode, owner and times, as of one log index.  The\n"
    "copy is linearizable: every write acknowledged before the backup started\n"
    "is in it.  It comes from one node (any node; --node picks it, otherwise the\n"
    "first node of the SPEC that answers), which takes a fresh snapshot unless\n"
    "its latest is recent enough, and sends it in chunks of at most 1 MiB.\n"
    "FILE is written whole or not at all (FILE.part meanwhile), with a header\n"
    "(index, term, length, checksum) that `hstore restore` checks.  Prints the\n"
    "index and what the copy holds.\n"
    "  --node ID          back up from node ID of the SPEC\n"
    "\n"
    "Examples:\n"
    "  hstore backup /backups/hstore-$(date +%F).hsb\n"
    "  hstore backup --node 2 state.hsb\n"
    "  hstore restore state.hsb --data /var/lib/hstore/1   # see `hstore restore --help`\n"
    "\n";

typedef struct bk_ctx {
    net_client *c;
    int node; /* index into the spec */
    int wait_ms;
    const char *path;
    char part[4200];
    int fd;
    uint8_t *buf;
} bk_ctx;

static int exit_of(int rc)
{
    return rc == NET_EAUTH ? CLI_EXIT_AUTH : CLI_EXIT_UNAVAIL;
}

/* BEGIN at node i: the applied index the backup must reach. */
static int begin_at(bk_ctx *b, int i, uint64_t *point)
{
    net_snap_req q = {.kind = NET_SNAP_BEGIN};
    net_snap_resp r;
    int rc = net_client_snap(b->c, i, &q, b->wait_ms, &r, NULL);
    if (rc == NET_OK && r.status != NET_ST_OK)
        rc = NET_EUNAVAIL;
    if (rc == NET_OK)
        *point = r.index;
    return rc;
}

/* A READ with a few tries (each waits up to the timeout). */
static int read_at(bk_ctx *b, uint64_t index, uint64_t off, uint32_t len, net_snap_resp *r)
{
    int rc = NET_EUNAVAIL;
    for (int t = 0; t < 3; t++) {
        net_snap_req q = {.kind = NET_SNAP_READ, .index = index, .offset = off, .len = len};
        rc = net_client_snap(b->c, b->node, &q, b->wait_ms, r, b->buf);
        if (rc == NET_OK && r->status == NET_ST_OK)
            return NET_OK;
        if (rc == NET_EAUTH)
            return rc;
        rc = NET_EUNAVAIL;
        cli_sleep_ms(200);
    }
    return rc;
}

/* Copies the stored snapshot at index >= point into the .part file; *h
 * filled.  0, 1 (replaced by a newer snapshot mid-way: start again), or an
 * exit code + 2 (so never 0 or 1) after printing why. */
static int copy_once(bk_ctx *b, uint64_t point, bk_header *h)
{
    net_snap_resp r;
    uint64_t end = cli_now_ns() / 1000000 + SNAP_WAIT_MS;
    for (;;) {
        int rc = read_at(b, 0, 0, 0, &r);
        if (rc != NET_OK) {
            cli_err("backup: node %" PRIu64 " stopped answering: %s",
                    net_client_node_id(b->c, b->node), net_strerror(rc));
            return exit_of(rc) + 2;
        }
        if (r.index >= point && r.total)
            break;
        if (cli_now_ns() / 1000000 > end) {
            cli_err("backup: node %" PRIu64 " stored no snapshot at index %" PRIu64
                    " or later within %d s (its latest is at %" PRIu64 "); see its log",
                    net_client_node_id(b->c, b->node), point, SNAP_WAIT_MS / 1000, r.index);
            return CLI_EXIT_UNAVAIL + 2;
        }
        cli_sleep_ms(100);
    }
    h->index = r.index;
    h->term = r.term;
    h->length = r.total;
    h->crc = 0;
    if (ftruncate(b->fd, BK_HDR_LEN) != 0 || lseek(b->fd, BK_HDR_LEN, SEEK_SET) != BK_HDR_LEN) {
        cli_err("backup: %s: %s", b->part, strerror(errno));
        return CLI_EXIT_USAGE + 2;
    }
    for (uint64_t off = 0; off < h->length;) {
        uint64_t want = h->length - off;
        uint32_t len = want < NET_SNAP_CHUNK_MAX ? (uint32_t)want : NET_SNAP_CHUNK_MAX;
        int rc = read_at(b, h->index, off, len, &r);
        if (rc != NET_OK) {
            cli_err("backup: node %" PRIu64 " stopped answering at byte %" PRIu64 " of %" PRIu64
                    ": %s",
                    net_client_node_id(b->c, b->node), off, h->length, net_strerror(rc));
            return exit_of(rc) + 2;
        }
        if (r.index != h->index || r.total != h->length)
            return 1; /* a newer snapshot replaced it */
        if (r.data_len == 0 || r.data_len > len) {
            cli_err("backup: node %" PRIu64 " sent %u bytes at offset %" PRIu64 ", wanted %u",
                    net_client_node_id(b->c, b->node), r.data_len, off, len);
            return CLI_EXIT_UNAVAIL + 2;
        }
        h->crc = crc32c(h->crc, r.data, r.data_len);
        if (cli_write_all(b->fd, r.data, r.data_len) != 0) {
            cli_err("backup: cannot write %s: %s", b->part, strerror(errno));
            return CLI_EXIT_USAGE + 2;
        }
        off += r.data_len;
    }
    return 0;
}

/* The node, the copy, the header; then the whole file is checked. */
static int run_backup(bk_ctx *b, int only, bk_header *h)
{
    uint64_t point = 0;
    int rc = NET_EUNAVAIL;
    for (int i = 0; i < net_client_n_nodes(b->c); i++) {
        if (only >= 0 && i != only)
            continue;
        rc = begin_at(b, i, &point);
        if (rc == NET_OK) {
            b->node = i;
            break;
        }
    }
    if (rc != NET_OK) {
        cli_err("backup: %s within %.3g s: %s",
                only >= 0 ? "the node did not answer" : "no node answered", b->wait_ms / 1000.0,
                net_strerror(rc));
        return exit_of(rc);
    }
    for (int k = 0;; k++) {
        int c = copy_once(b, point, h);
        if (c == 0)
            break;
        if (c > 1)
            return c - 2;
        if (k == MAX_RESTARTS) {
            cli_err("backup: node %" PRIu64 " replaced its snapshot %d times during the copy; "
                    "retry",
                    net_client_node_id(b->c, b->node), MAX_RESTARTS);
            return CLI_EXIT_UNAVAIL;
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->created_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    uint8_t hdr[BK_HDR_LEN];
    bk_header_encode(h, hdr);
    if (pwrite(b->fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr || fsync(b->fd) != 0) {
        cli_err("backup: cannot write %s: %s", b->part, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static void fsync_dir_of(const char *path)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int cmd_backup(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_CLIENT_LONGOPTS,
        {"node", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_client_opts o;
    cli_client_getopt_start(&o);
    uint64_t node_id = 0;
    int g;
    while ((g = cli_client_getopt(argc, argv, ":h", longopts, &o)) != -1) {
        if (g == CLI_OPT_BAD)
            return CLI_EXIT_USAGE;
        if (g == 'h') {
            fputs(backup_help, stdout);
            fputs(cli_client_opts_help, stdout);
            return CLI_EXIT_OK;
        } else if (g == 'n') {
            if (cli_parse_u64(optarg, false, &node_id) != 0 || node_id == 0) {
                cli_err("backup: --node wants a node id (a positive integer), not '%s'", optarg);
                return CLI_EXIT_USAGE;
            }
        } else {
            return cli_getopt_error(g, argv, "backup");
        }
    }
    if (argc - optind != 1) {
        cli_err("backup: want one FILE to write; see `hstore backup --help`");
        return CLI_EXIT_USAGE;
    }
    bk_ctx b = {.path = argv[optind], .fd = -1};
    snprintf(b.part, sizeof b.part, "%s.part", b.path);
    int code;
    b.c = cli_connect(&o, &code);
    if (!b.c)
        return code;
    b.wait_ms = (int)(o.timeout_s * 1000.0);
    if (b.wait_ms < 1)
        b.wait_ms = 1;
    int only = -1;
    for (int i = 0; node_id && i < net_client_n_nodes(b.c); i++)
        if (net_client_node_id(b.c, i) == node_id)
            only = i;
    if (node_id && only < 0) {
        cli_err("backup: no node %" PRIu64 " in the cluster SPEC", node_id);
        net_client_free(b.c);
        return CLI_EXIT_USAGE;
    }
    b.buf = malloc(NET_SNAP_CHUNK_MAX);
    b.fd = open(b.part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (!b.buf || b.fd < 0) {
        cli_err("backup: cannot create %s: %s", b.part, b.buf ? strerror(errno) : "no memory");
        free(b.buf);
        net_client_free(b.c);
        return CLI_EXIT_USAGE;
    }
    bk_header h;
    int rc = run_backup(&b, only, &h);
    uint64_t from = net_client_node_id(b.c, b.node);
    close(b.fd);
    free(b.buf);
    net_client_free(b.c);
    /* What was written must read back as the state at its index. */
    char err[4400], desc[256] = "";
    uint64_t raw = 0;
    if (rc == CLI_EXIT_OK) {
        bk_header h2;
        int fd = -1;
        kv *k = NULL;
        if (bk_open(b.part, &h2, &fd, err, sizeof err) != 0 ||
            bk_decode(fd, b.part, &h2, NULL, NULL, &k, &raw, err, sizeof err) != 0) {
            cli_err("backup: the copy does not check: %s", err);
            rc = CLI_EXIT_UNAVAIL;
        } else {
            bk_describe(k, desc, sizeof desc);
        }
        if (fd >= 0)
            close(fd);
        kv_free(k);
    }
    if (rc == CLI_EXIT_OK && rename(b.part, b.path) != 0) {
        cli_err("backup: cannot rename %s to %s: %s", b.part, b.path, strerror(errno));
        rc = CLI_EXIT_USAGE;
    }
    if (rc != CLI_EXIT_OK) {
        unlink(b.part);
        return rc;
    }
    fsync_dir_of(b.path);
    printf("backup of node %" PRIu64 " at index %" PRIu64 " (term %" PRIu64 ") in %s: %s; %" PRIu64
           " bytes of state, %" PRIu64 " bytes in the file\n",
           from, h.index, h.term, b.path, desc, raw, h.length + BK_HDR_LEN);
    return CLI_EXIT_OK;
}
