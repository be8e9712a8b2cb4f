/*
 * cmd_kv.c — the key-value commands: `hstore put`, `append`, `get`, `del` and
 * `ls`.  One request each through the client library, which finds the
 * leader, retries across leader changes with the same (client id, seq) and
 * gives up at the deadline (exit 3: outcome unknown).
 *
 * Keys are paths in the same namespace the FUSE mount shows: `hstore put a/b x`
 * is the file b in directory a (created as needed).  Values are bytes: put and
 * append read stdin when no VALUE is given, get writes the exact bytes.
 *
 * Large values (kv.h: no command carries more than KV_PART_SIZE bytes, no
 * reply more than KV_READ_MAX).  put streams a value past one part from
 * stdin in parts (UPLOAD_PART), holding one part in memory, and makes it
 * visible at once with UPLOAD_COMMIT; when stdin is a regular file its size
 * is declared with the first part, so a value past --max-file-size gets
 * EFBIG at once.  get of a value past KV_READ_MAX reads it in ranges
 * (GETRANGE) straight to stdout; if the file changes between two ranges it
 * fails (exit 3) rather than mix two versions.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/mux.h"
#include "net/net_util.h"
#include "tools/cli.h"
#include "tools/cli_net.h"
#include "tools/cmds.h"

static const char put_help[] =
    "Usage: hstore put [OPTIONS] KEY [VALUE]\n"
    "\n"
    "Sets KEY to VALUE, replacing what was there; with no VALUE, reads the value from\n"
    "stdin (any bytes, binary-safe).  Exits 0 once the write is committed on a\n"
    "majority of the nodes.  KEY is a path: a/b is the file b in directory a, created\n"
    "as needed.  Put `--` before a VALUE that starts with '-'.  A value from stdin\n"
    "larger than 1 MiB is sent in 1 MiB parts and appears at once when the last\n"
    "arrived; one past the nodes' --max-file-size gets EFBIG (exit 2).\n"
    "\n"
    "Examples:\n"
    "  hstore put greeting hello\n"
    "  hstore put config/app.json < app.json\n"
    "  hstore put --cluster 1=127.0.0.1:7100,2=127.0.0.1:7102 n -- -5\n"
    "\n";

static const char append_help[] =
    "Usage: hstore append [OPTIONS] KEY [VALUE]\n"
    "\n"
    "Appends VALUE (or stdin when no VALUE is given) to KEY atomically in the state\n"
    "machine, creating KEY when missing.  A retry after a lost reply never appends\n"
    "twice (exactly-once client sessions).  Put `--` before a VALUE that starts with '-'.\n"
    "\n"
    "Examples:\n"
    "  hstore append log/today 'first line'\n"
    "  date | hstore append log/today\n"
    "\n";

static const char get_help[] =
    "Usage: hstore get [OPTIONS] KEY\n"
    "\n"
    "Writes KEY's value to stdout, byte for byte; on a terminal a newline follows\n"
    "a value that does not end with one (piped or redirected: the exact bytes).  The read is\n"
    "linearizable (ReadIndex): it sees every write that finished before it began.\n"
    "A value past 4 MiB is read in 4 MiB ranges; if it changes meanwhile, get fails\n"
    "(exit 3) instead of mixing two versions.  Exits 1 when KEY does not exist.\n"
    "\n"
    "Examples:\n"
    "  hstore get greeting\n"
    "  hstore get --timeout 1 images/logo.png > logo.png\n"
    "\n";

static const char del_help[] =
    "Usage: hstore del [OPTIONS] KEY\n"
    "\n"
    "Deletes KEY (an empty directory too).  Exits 1 when KEY does not exist.\n"
    "\n"
    "Example:\n"
    "  hstore del greeting\n"
    "\n";

static const char ls_help[] =
    "Usage: hstore ls [OPTIONS] [PREFIX]\n"
    "\n"
    "Lists every key whose path starts with PREFIX (a plain string prefix), one per\n"
    "line, sorted; all keys when no PREFIX is given.  Linearizable like get.\n"
    "  -0, --null         end each key with a NUL byte instead of a newline\n"
    "                     (for keys with newlines in them; xargs -0)\n"
    "\n"
    "Examples:\n"
    "  hstore ls\n"
    "  hstore ls config/\n"
    "  hstore ls -0 logs/ | xargs -0 -n1 hstore del\n"
    "\n";

static int check_args(int nargs, int min, int max, const char *name, const char *what)
{
    if (nargs < min || nargs > max) {
        cli_err("%s wants %s; see `hstore %s --help`", name, what, name);
        return -1;
    }
    return 0;
}

/* Reads up to n bytes of stdin (short only at end of input).  The count, or
 * -1 on a read error. */
static ssize_t read_full(uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(0, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Parts of a long put in flight at once. */
#define PUT_WINDOW 8

/* The outcome of one part of a long put: the mux's code nr and, when the
 * cluster answered, its reply.  An exit code; a message printed on failure. */
static int part_outcome(int nr, const uint8_t *rep, size_t rlen, const cli_client_opts *o,
                        const char *what)
{
    if (nr == NET_EUNAVAIL) {
        cli_err("%s: no answer from the cluster within %.3g s: the outcome is unknown. "
                "Is a majority of the nodes up? Check with `hstore status`",
                what, o->timeout_s);
        return CLI_EXIT_UNAVAIL;
    }
    if (nr != NET_OK) {
        cli_err("%s: %s", what, net_strerror(nr));
        return CLI_EXIT_USAGE;
    }
    int st = kv_reply_status(rep, rlen);
    if (st != 0) {
        cli_err("%s: %s%s", what, kv_strstatus(st),
                st == EFBIG    ? " (past the nodes' --max-file-size)"
                : st == ENOSPC ? " (the store is full: see the nodes' --max-store-bytes)"
                               : "");
        return st > 1000 ? CLI_EXIT_UNAVAIL : CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* Sends the value in buf (have bytes: the first part and one more byte)
 * and the rest of stdin as parts of upload id, PUT_WINDOW parts in flight
 * over one connection per node (net/mux.h; each part its own session, which
 * parts do not use anyway: they are idempotent).  *sent receives the bytes
 * sent.  An exit code; messages printed. */
static int send_parts(const cli_client_opts *o, uint64_t id, uint64_t declared, uint8_t *buf,
                      size_t have, uint64_t *sent, const char *what)
{
    char spec[CLI_SPEC_MAX], err[256] = "";
    if (cli_resolve_spec(o, spec, sizeof spec) != 0)
        return CLI_EXIT_USAGE;
    int ms = (int)(o->timeout_s * 1000.0);
    net_mux *mx = net_mux_new(spec, ms < 1 ? 1 : ms, PUT_WINDOW, err, sizeof err);
    if (mx == NULL) {
        cli_err("%s: %s", what, err);
        return CLI_EXIT_USAGE;
    }
    bool idle[PUT_WINDOW];
    for (int i = 0; i < PUT_WINDOW; i++)
        idle[i] = true;
    int rc = CLI_EXIT_OK, busy = 0;
    uint64_t off = 0;
    bool eof = false;
    while (rc == CLI_EXIT_OK && (!eof || busy > 0)) {
        /* fill the window */
        while (rc == CLI_EXIT_OK && !eof && busy < PUT_WINDOW) {
            if (have == 0) {
                ssize_t more = read_full(buf, (size_t)KV_PART_SIZE);
                if (more < 0) {
                    cli_err("put: cannot read the value from stdin");
                    rc = CLI_EXIT_USAGE;
                    break;
                }
                have = (size_t)more;
                if (have == 0) {
                    eof = true;
                    break;
                }
            }
            size_t n = have < KV_PART_SIZE ? have : KV_PART_SIZE;
            kv_op op = {.type = KV_OP_UPLOAD_PART,
                        .upload = id,
                        .off = off,
                        .len = declared,
                        .data = buf,
                        .data_len = n};
            uint8_t *enc;
            size_t elen;
            int s = 0;
            while (!idle[s])
                s++;
            if (kv_op_encode(&op, &enc, &elen) != 0 ||
                net_mux_start(mx, s, false, enc, elen) != 0) {
                cli_err("%s: out of memory", what);
                rc = CLI_EXIT_UNAVAIL;
                if (enc)
                    free(enc);
                break;
            }
            free(enc);
            idle[s] = false;
            busy++;
            off += n;
            memmove(buf, buf + n, have - n);
            have -= n;
            if (have < n && n == KV_PART_SIZE) {
                /* keep one byte of look-ahead so the tail is known */
                ssize_t more = read_full(buf + have, (size_t)KV_PART_SIZE - have);
                if (more < 0) {
                    cli_err("put: cannot read the value from stdin");
                    rc = CLI_EXIT_USAGE;
                    break;
                }
                have += (size_t)more;
            }
            if (have == 0)
                eof = true;
        }
        if (busy == 0)
            break;
        int done[PUT_WINDOW];
        int nd = net_mux_wait(mx, 1000, done, PUT_WINDOW);
        for (int k = 0; k < nd; k++) {
            const uint8_t *rep;
            size_t rlen;
            int nr = net_mux_result(mx, done[k], &rep, &rlen);
            idle[done[k]] = true;
            busy--;
            if (rc == CLI_EXIT_OK)
                rc = part_outcome(nr, rep, rlen, o, what);
        }
    }
    net_mux_free(mx);
    *sent = off;
    return rc;
}

/* put KEY < stdin: one PUT for a value of at most one part; otherwise the
 * value goes in parts, a window of them at a time, and a commit. */
static int put_stream(const cli_client_opts *o, const char *key)
{
    if (isatty(0))
        fprintf(stderr, "hstore: reading the value from stdin (end it with Ctrl-D)\n");
    /* A regular file says its size: declared with the first part, it gets
     * EFBIG or ENOSPC before anything is sent. */
    uint64_t declared = 0;
    struct stat sb;
    off_t pos = lseek(0, 0, SEEK_CUR);
    if (fstat(0, &sb) == 0 && S_ISREG(sb.st_mode) && pos >= 0 && sb.st_size > pos)
        declared = (uint64_t)(sb.st_size - pos);
    uint8_t *buf = malloc((size_t)KV_PART_SIZE + 1);
    if (buf == NULL) {
        cli_err("put: out of memory");
        return CLI_EXIT_UNAVAIL;
    }
    ssize_t got = read_full(buf, (size_t)KV_PART_SIZE + 1);
    if (got < 0) {
        free(buf);
        cli_err("put: cannot read the value from stdin");
        return CLI_EXIT_USAGE;
    }
    int rc;
    net_client *c = cli_connect(o, &rc);
    if (c == NULL) {
        free(buf);
        return rc;
    }
    char what[300];
    snprintf(what, sizeof what, "put %.256s", key);
    kv_reply r;
    if ((size_t)got <= KV_PART_SIZE) {
        kv_op op = {.type = KV_OP_PUT,
                    .path = key,
                    .data = buf,
                    .data_len = (size_t)got,
                    .uid = (uint32_t)getuid(),
                    .gid = (uint32_t)getgid()};
        rc = cli_run_op(c, &op, &r, what, false);
    } else {
        uint64_t id = net_random_id(), off = 0;
        rc = send_parts(o, id, declared, buf, (size_t)got, &off, what);
        if (rc == CLI_EXIT_OK && declared && off != declared) {
            cli_err("put: stdin held %llu bytes, not the %llu its size said (it changed?)",
                    (unsigned long long)off, (unsigned long long)declared);
            rc = CLI_EXIT_USAGE;
        }
        if (rc == CLI_EXIT_OK) {
            kv_op op = {.type = KV_OP_UPLOAD_COMMIT,
                        .upload = id,
                        .path = key,
                        .len = off,
                        .uid = (uint32_t)getuid(),
                        .gid = (uint32_t)getgid()};
            rc = cli_run_op(c, &op, &r, what, false);
        } else if (rc != CLI_EXIT_UNAVAIL) {
            /* refused: drop what was staged (an abandoned upload also expires) */
            kv_op op = {.type = KV_OP_UPLOAD_ABORT, .upload = id};
            kv_reply ar;
            if (cli_run_op(c, &op, &ar, "put: abort the upload", true) == CLI_EXIT_OK)
                kv_reply_free(&ar);
        }
    }
    if (rc == CLI_EXIT_OK || rc == CLI_EXIT_NOTFOUND)
        kv_reply_free(&r);
    net_client_free(c);
    free(buf);
    return rc;
}

static int put_or_append(int argc, char **argv, int type, const char *name, const char *help)
{
    cli_client_opts o;
    bool resend;
    int code;
    int i = cli_parse_client_args(argc, argv, name, help, &o, &resend, &code);
    if (i < 0)
        return code;
    if (check_args(argc - i, 1, 2, name, "KEY [VALUE]") != 0)
        return CLI_EXIT_USAGE;
    const char *key = argv[i];
    uint8_t *val = NULL;
    size_t len = 0;
    bool from_stdin = argc - i == 1;
    if (from_stdin && type == KV_OP_PUT && !resend)
        return put_stream(&o, key);
    if (from_stdin) {
        if (isatty(0))
            fprintf(stderr, "hstore: reading the value from stdin (end it with Ctrl-D)\n");
        if (cli_read_stdin(&val, &len) != 0) {
            cli_err("%s: cannot read the value from stdin", name);
            return CLI_EXIT_USAGE;
        }
    } else {
        val = (uint8_t *)argv[i + 1];
        len = strlen(argv[i + 1]);
    }
    int rc;
    net_client *c = cli_connect(&o, &rc);
    if (c != NULL) {
        kv_op op = {.type = (uint8_t)type, .path = key, .data = val, .data_len = len};
        op.uid = (uint32_t)getuid();
        op.gid = (uint32_t)getgid();
        kv_reply r;
        char what[300];
        snprintf(what, sizeof what, "%s %.256s", name, key);
        rc = resend ? cli_run_op_twice(c, &op, &r, what) : cli_run_op(c, &op, &r, what, false);
        if (rc == CLI_EXIT_OK || rc == CLI_EXIT_NOTFOUND)
            kv_reply_free(&r);
        net_client_free(c);
    }
    if (from_stdin)
        free(val);
    return rc;
}

int cmd_put(int argc, char **argv)
{
    return put_or_append(argc, argv, KV_OP_PUT, "put", put_help);
}

int cmd_append(int argc, char **argv)
{
    return put_or_append(argc, argv, KV_OP_APPEND, "append", append_help);
}

/* get of a value past one reply: GETRANGEs of KV_READ_MAX bytes, each
 * written out before the next is asked for.  Every range carries the file's
 * attributes; a change of inode, size, mtime or ctime between two ranges
 * means the value changed, and get fails rather than mix two versions. */
static int get_ranges(net_client *c, const char *key, const char *what)
{
    uint64_t off = 0;
    kv_attr first;
    memset(&first, 0, sizeof first);
    for (;;) {
        kv_op op = {.type = KV_OP_GETRANGE, .path = key, .off = off, .len = KV_READ_MAX};
        kv_reply r;
        int rc = cli_run_op(c, &op, &r, what, false);
        if (rc != CLI_EXIT_OK) {
            if (rc == CLI_EXIT_NOTFOUND)
                kv_reply_free(&r);
            return rc;
        }
        if (off == 0) {
            first = r.attr;
        } else if (r.attr.ino != first.ino || r.attr.size != first.size ||
                   r.attr.mtime_ns != first.mtime_ns || r.attr.ctime_ns != first.ctime_ns) {
            kv_reply_free(&r);
            cli_err("%s: the value changed while it was being read; read it again", what);
            return CLI_EXIT_UNAVAIL;
        }
        if (r.data_len && cli_write_all(1, r.data, r.data_len) != 0) {
            kv_reply_free(&r);
            cli_err("get: cannot write to stdout");
            return CLI_EXIT_USAGE;
        }
        off += r.data_len;
        size_t n = r.data_len;
        kv_reply_free(&r);
        if (off >= first.size || n == 0)
            return CLI_EXIT_OK;
    }
}

/* Writes a value read by get to stdout; a terminal gets its prompt back on
 * a line of its own.  An exit code. */
static int print_value(const kv_reply *r)
{
    bool nl = isatty(1) && (r->data_len == 0 || r->data[r->data_len - 1] != '\n');
    if (cli_write_all(1, r->data, r->data_len) != 0 || (nl && cli_write_all(1, "\n", 1) != 0)) {
        cli_err("get: cannot write to stdout");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* get and del, the commands on one KEY (type KV_OP_GET or KV_OP_DEL).  A
 * value too large for one reply is read in ranges. */
static int one_key_cmd(int argc, char **argv, int type, const char *name, const char *help)
{
    cli_client_opts o;
    int rc;
    int i = cli_parse_client_args(argc, argv, name, help, &o, NULL, &rc);
    if (i < 0)
        return rc;
    if (check_args(argc - i, 1, 1, name, "one KEY") != 0)
        return CLI_EXIT_USAGE;
    net_client *c = cli_connect(&o, &rc);
    if (c == NULL)
        return rc;
    const char *key = argv[i];
    char what[300];
    snprintf(what, sizeof what, "%s %.256s", name, key);
    kv_op op = {.type = (uint8_t)type, .path = key};
    kv_reply r;
    if (type == KV_OP_GET)
        rc = cli_run_op_quiet_efbig(c, &op, &r, what);
    else
        rc = cli_run_op(c, &op, &r, what, false);
    if (rc == CLI_TOO_BIG) {
        rc = get_ranges(c, key, what);
    } else if (rc == CLI_EXIT_OK || rc == CLI_EXIT_NOTFOUND) {
        if (rc == CLI_EXIT_OK && type == KV_OP_GET)
            rc = print_value(&r);
        kv_reply_free(&r);
    }
    net_client_free(c);
    return rc;
}

int cmd_get(int argc, char **argv)
{
    return one_key_cmd(argc, argv, KV_OP_GET, "get", get_help);
}

int cmd_del(int argc, char **argv)
{
    return one_key_cmd(argc, argv, KV_OP_DEL, "del", del_help);
}

int cmd_ls(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_CLIENT_LONGOPTS,
        {"null", no_argument, NULL, '0'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_client_opts o;
    cli_client_getopt_start(&o);
    bool nul = false;
    int g;
    while ((g = cli_client_getopt(argc, argv, ":0h", longopts, &o)) != -1) {
        if (g == CLI_OPT_BAD)
            return CLI_EXIT_USAGE;
        if (g == '0') {
            nul = true;
        } else if (g == 'h') {
            fputs(ls_help, stdout);
            fputs(cli_client_opts_help, stdout);
            return CLI_EXIT_OK;
        } else {
            return cli_getopt_error(g, argv, "ls");
        }
    }
    int i = optind;
    if (check_args(argc - i, 0, 1, "ls", "at most one PREFIX") != 0)
        return CLI_EXIT_USAGE;
    int rc;
    net_client *c = cli_connect(&o, &rc);
    if (c == NULL)
        return rc;
    kv_op op = {.type = KV_OP_LIST, .path = argc - i == 1 ? argv[i] : ""};
    kv_reply r;
    rc = cli_run_op(c, &op, &r, "ls", false);
    if (rc == CLI_EXIT_OK) {
        for (size_t k = 0; k < r.n_names; k++) {
            fputs(r.names[k], stdout);
            putchar(nul ? '\0' : '\n');
        }
        if (fflush(stdout) != 0) {
            cli_err("ls: cannot write to stdout");
            rc = CLI_EXIT_USAGE;
        }
    }
    if (rc == CLI_EXIT_OK || rc == CLI_EXIT_NOTFOUND)
        kv_reply_free(&r);
    net_client_free(c);
    return rc;
}
