/*
 * lincheck_main.c - build/lincheck: checks key-value histories written by the
 * cluster tests' clients for linearizability (the checker is tests/lib/lincheck.c).
 *
 *   build/lincheck [--quiet] [--timeout SECONDS] FILE...
 *
 * Several files are read as one history (one file per client is convenient).
 * Exit status: 0 linearizable, 1 not linearizable, 2 bad usage or malformed
 * input (file:line and the reason on stderr), 3 the time limit ran out first.
 */
#include "tests/lib/lincheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: lincheck [--quiet] [--timeout SECONDS] FILE...   (FILE '-' is stdin)\n"
          "\n"
          "Checks that a key-value history is linearizable.  One operation per line:\n"
          "  CLIENT OP KEY CALL_NS RETURN_NS STATUS VALUE RESULT\n"
          "  OP       put | append | get\n"
          "  STATUS   ok | fail (did not happen: ignored) | unknown (may take effect\n"
          "           at any time after its call, or never; RETURN_NS may be '-')\n"
          "  VALUE    argument of put/append; '-' for get\n"
          "  RESULT   value an ok get read; '-' otherwise\n"
          "  times    integer nanoseconds from one epoch common to all files\n"
          "Keys and values: bytes outside [A-Za-z0-9._-] are written %XX; the empty\n"
          "string is '%' alone; a value that is a single dash is '%2D'.  A missing key\n"
          "reads as the empty string.  Blank lines and lines starting with '#' are\n"
          "ignored.\n"
          "\n"
          "Exit status: 0 linearizable, 1 not linearizable, 2 usage or malformed input,\n"
          "3 gave up at the time limit (default 300 s; 0 = none).\n",
          f);
}

int main(int argc, char **argv)
{
    bool quiet = false;
    long timeout_ms = 300 * 1000;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            quiet = true;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            char *end;
            double s = strtod(argv[++i], &end);
            if (*end || s < 0) {
                fprintf(stderr, "lincheck: bad --timeout '%s'\n", argv[i]);
                return 2;
            }
            timeout_ms = (long)(s * 1000);
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "lincheck: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            break;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }

    lc_history h;
    lc_history_init(&h);
    for (; i < argc; i++) {
        char err[512];
        if (lc_parse_file(&h, argv[i], err, sizeof err) < 0) {
            fprintf(stderr, "lincheck: %s\n", err);
            lc_history_free(&h);
            return 2;
        }
    }

    lc_result r;
    int rc;
    switch (lc_check(&h, timeout_ms, &r)) {
    case LC_LINEARIZABLE:
        if (!quiet)
            printf("linearizable: %zu ops, %zu keys, %.0f ms\n", r.nops, r.nkeys, r.ms);
        rc = 0;
        break;
    case LC_NOT_LINEARIZABLE:
        printf("NOT linearizable: %zu of %zu keys fail (%zu ops, %.0f ms); the first:\n%s",
               r.nfailed_keys, r.nkeys, r.nops, r.ms, r.explanation ? r.explanation : "");
        rc = 1;
        break;
    case LC_GAVE_UP:
        printf("UNKNOWN: %zu ops, %zu keys, %.0f ms: %s", r.nops, r.nkeys, r.ms,
               r.explanation ? r.explanation : "time limit\n");
        rc = 3;
        break;
    default:
        fprintf(stderr, "lincheck: out of memory\n");
        rc = 2;
        break;
    }
    lc_result_free(&r);
    lc_history_free(&h);
    return rc;
}
