/*
 * cmd_limits.c — `hstore limits`: show or change the cluster's limits.
 *
 * The limits (largest file, total data) change what the state machine
 * decides, so they are replicated state: a SET_LIMITS command in the log,
 * applied by every replica alike.  The nodes' --max-file-size and
 * --max-store-bytes only seed them when the cluster first elects a leader.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/cli_net.h"
#include "tools/cmds.h"

static const char limits_help[] =
    "Usage: hstore limits [OPTIONS]\n"
    "       hstore limits set [OPTIONS] [max-file-size=BYTES] [max-store-bytes=BYTES]\n"
    "\n"
    "Without arguments, prints the limits in force in the cluster:\n"
    "  max-file-size=N max-store-bytes=M\n"
    "(max-store-bytes=0: no limit).  `limits set` changes them with one replicated\n"
    "command, so every node applies the same limits from the same log index; what\n"
    "is not named keeps its value.  BYTES takes a K, M, G or T suffix.\n"
    "max-file-size is at most 1T; 0 means the default (1G).  The nodes'\n"
    "--max-file-size and --max-store-bytes only give the initial values.\n"
    "\n"
    "Examples:\n"
    "  hstore limits\n"
    "  hstore limits set max-file-size=4G max-store-bytes=100G\n"
    "\n";

int cli_read_limits(net_client *c, kv_statfs *out)
{
    kv_op op = {.type = KV_OP_STATFS};
    kv_reply r;
    int rc = cli_run_op(c, &op, &r, "limits", false);
    if (rc == CLI_EXIT_OK) {
        *out = r.statfs;
        kv_reply_free(&r);
    }
    return rc;
}

int cmd_limits(int argc, char **argv)
{
    cli_client_opts o;
    int code;
    int first = cli_parse_client_args(argc, argv, "limits", limits_help, &o, NULL, &code);
    if (first < 0)
        return code;
    bool set = first < argc && strcmp(argv[first], "set") == 0;
    if (first < argc && !set) {
        cli_err("limits: unknown argument '%s'; see `hstore limits --help`", argv[first]);
        return CLI_EXIT_USAGE;
    }
    bool have_mfs = false, have_total = false;
    uint64_t mfs = 0, total = 0;
    for (int i = first + 1; set && i < argc; i++) {
        const char *a = argv[i];
        uint64_t v;
        if (!strncmp(a, "max-file-size=", 14) && cli_parse_u64(a + 14, true, &v) == 0 &&
            v <= KV_MAX_FILE_SIZE_LIMIT) {
            mfs = v;
            have_mfs = true;
        } else if (!strncmp(a, "max-store-bytes=", 16) && cli_parse_u64(a + 16, true, &v) == 0) {
            total = v;
            have_total = true;
        } else {
            cli_err("limits set: bad argument '%s' (expected max-file-size=BYTES, at most 1T, "
                    "or max-store-bytes=BYTES)",
                    a);
            return CLI_EXIT_USAGE;
        }
    }
    if (set && !have_mfs && !have_total) {
        cli_err("limits set: name at least one of max-file-size=BYTES, max-store-bytes=BYTES");
        return CLI_EXIT_USAGE;
    }
    net_client *c = cli_connect(&o, &code);
    if (!c)
        return code;
    kv_statfs cur;
    int rc = cli_read_limits(c, &cur);
    if (rc == CLI_EXIT_OK && set) {
        kv_op op = {.type = KV_OP_SET_LIMITS,
                    .len = have_mfs ? mfs : cur.max_file_size,
                    .off = have_total ? total : cur.bytes_limit,
                    .rdev = cur.files_limit};
        kv_reply r;
        rc = cli_run_op(c, &op, &r, "limits set", false);
        if (rc == CLI_EXIT_OK) {
            cur = r.statfs;
            kv_reply_free(&r);
        }
    }
    if (rc == CLI_EXIT_OK)
        printf("max-file-size=%" PRIu64 " max-store-bytes=%" PRIu64 "\n", cur.max_file_size,
               cur.bytes_limit);
    net_client_free(c);
    return rc;
}
