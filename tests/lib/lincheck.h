/*
 * lincheck.h - hstore's linearizability checker for key-value histories.
 *
 * A history is a set of operations put(key, value), append(key, value) and
 * get(key) -> value, each issued by one client with a call time and a return
 * time.  The history is linearizable if every operation can be given one
 * instant between its call and its return such that, executed one after the
 * other in that order on a plain map, every get returns what it returned.
 * A key that was never written reads as "" (missing == empty).
 *
 * Outcomes:
 *   ok       the operation returned; it took effect exactly once.
 *   fail     it definitely did not happen (e.g. rejected): dropped.
 *   unknown  the client gave up: a put/append may take effect at any instant
 *            after its call, however late, or never; an unknown get tells
 *            nothing and is dropped.
 * Two operations whose times touch (one returns at the very instant the other
 * is called) count as concurrent.
 *
 * Method: operations touch one key each, so the history is linearizable iff
 * every key's sub-history is (locality, Herlihy & Wing 1990).  Each key is
 * checked by the depth-first search of Wing & Gong with Lowe's memoization,
 * as in Knossos and Porcupine: a doubly linked list of call and return
 * events; at each step one pending call is linearized (removed with its
 * return); reaching a return whose call is still pending means the choices
 * so far were wrong, so the last one is undone.  A cache of (set of
 * linearized operations, value) pairs already explored prunes the search,
 * and so do a few rules exact for this model (see lincheck.c).  The check
 * is exact; it can only give up, at the caller's time limit or when the
 * cache of one key outgrows 1 GiB.
 *
 * History file format (one operation per line; fields separated by blanks):
 *
 *     CLIENT OP KEY CALL_NS RETURN_NS STATUS VALUE RESULT
 *
 *   CLIENT     any token without blanks (up to 31 bytes), e.g. "c3".
 *   OP         put | append | get
 *   KEY        encoded string (see below).
 *   CALL_NS    integer nanoseconds from any epoch common to the whole history.
 *   RETURN_NS  integer >= CALL_NS; ignored (may be "-") when STATUS is unknown.
 *   STATUS     ok | fail | unknown
 *   VALUE      put/append: encoded argument.  get: "-".
 *   RESULT     get with status ok: encoded value read.  Otherwise "-".
 *
 * Encoding of keys and values: bytes in [A-Za-z0-9._-] stand for themselves,
 * every other byte is written %XX (two hex digits, either case).  Two fields
 * are special: "%" alone is the empty string, and "-" alone means "no value";
 * so a value that is exactly one dash is written %2D.  Lines that are blank or
 * start with '#' are ignored.  Example:
 *
 *     c1 append k7 1000 2500 ok x1%3B -
 *     c2 get k7 1200 2000 ok - x1%3B
 *     c3 put k7 3000 - unknown % -
 *
 * This file is linked into every unit test binary and into build/lincheck.
 */
#ifndef HSTORE_TESTS_LINCHECK_H
#define HSTORE_TESTS_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { LC_PUT, LC_APPEND, LC_GET } lc_kind;
typedef enum { LC_OK, LC_FAIL, LC_UNKNOWN } lc_status;

typedef struct lc_op {
    char client[32];
    lc_kind kind;
    lc_status status;
    int64_t call_ns;
    int64_t ret_ns; /* meaningless when status is LC_UNKNOWN */
    char *key;      /* bytes plus a NUL for printing; owned by the history */
    size_t key_len;
    char *value; /* put/append argument; NULL for get */
    size_t value_len;
    char *result; /* what a get read (status ok); NULL otherwise */
    size_t result_len;
    const char *file; /* where the op was read from, or NULL */
    int line;
} lc_op;

typedef struct lc_history {
    lc_op *ops;
    size_t n, cap;
    char **files; /* file names ops point to */
    size_t nfiles;
} lc_history;

void lc_history_init(lc_history *h);
void lc_history_free(lc_history *h);

/* Appends a copy of *op (its strings are copied, its file pointer is kept as
 * is).  Returns 0, or -1 if the op is invalid (unknown kind or status, client
 * too long, a put/append without value, an ok get without result, return
 * before call) or memory ran out. */
int lc_history_add_op(lc_history *h, const lc_op *op);

/* Convenience for NUL-terminated strings: value is ignored for get, result is
 * ignored unless kind is get and status ok. */
int lc_history_add(lc_history *h, const char *client, lc_kind kind, const char *key,
                   const char *value, const char *result, int64_t call_ns, int64_t ret_ns,
                   lc_status status);

/* ---- parsing ---------------------------------------------------------------- */

/* Parses one line (without or with its trailing newline) into h.  Returns 1 if
 * an op was added, 0 for a blank or comment line, -1 if the line is malformed
 * (err receives the reason, without position) or memory ran out. */
int lc_parse_line(lc_history *h, const char *line, const char *file, int lineno, char *err,
                  size_t errlen);

/* Parses a whole stream; name is used in messages and recorded in the ops.
 * Returns the number of ops added, or -1 with "name:line: reason" in err. */
long lc_parse_stream(lc_history *h, FILE *f, const char *name, char *err, size_t errlen);

/* Opens and parses path ("-" is stdin).  Same returns as lc_parse_stream. */
long lc_parse_file(lc_history *h, const char *path, char *err, size_t errlen);

/* Encodes n bytes in the file format's encoding into a malloc'd string
 * ("%" for empty, "%2D" for "-").  Returns NULL when out of memory. */
char *lc_encode(const void *p, size_t n);

/* Decodes a field (not "-").  Writes up to the field length bytes into out
 * and their count into *outlen.  Returns 0, or -1 on a bad escape. */
int lc_decode(const char *field, size_t fieldlen, char *out, size_t *outlen);

/* Writes one op as a file line, with trailing newline. */
int lc_write_op(FILE *f, const lc_op *op);

/* ---- checking --------------------------------------------------------------- */

typedef enum {
    LC_LINEARIZABLE = 0,
    LC_NOT_LINEARIZABLE = 1,
    LC_GAVE_UP = 3, /* the time budget ran out first */
    LC_ERROR = -1   /* out of memory */
} lc_verdict;

typedef struct lc_result {
    lc_verdict verdict;
    size_t nops; /* ops checked (fail ops and unknown gets dropped) */
    size_t nkeys;
    size_t nfailed_keys; /* keys found not linearizable */
    double ms;           /* time the check took */
    char *explanation;   /* malloc'd text when not linearizable or gave up */
} lc_result;

/* Checks h.  timeout_ms <= 0 means no limit.  Fills *res (free it with
 * lc_result_free) and returns res->verdict.  The explanation names each
 * failing key and, for the first, the longest linearizable prefix found,
 * the value after it and the op that could not be placed next. */
lc_verdict lc_check(const lc_history *h, long timeout_ms, lc_result *res);
void lc_result_free(lc_result *res);

#endif
