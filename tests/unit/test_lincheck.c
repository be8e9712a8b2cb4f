/*
 * test_lincheck.c - tests of the linearizability checker (tests/lib/lincheck.c).
 *
 * Small hand-written histories pin down the model: what must be rejected
 * (stale read, lost append, doubled append, a value never written, a read
 * that goes back in time) and what must pass although concurrent ops take
 * effect in an unexpected order or ops with unknown outcome take effect late
 * or never.  A generator that runs a simulated linearizable store with random
 * concurrency gives the 10,000-op performance test, and the same generator
 * with one append lost or doubled shows that the big check is not vacuous.
 * The seed is printed; HSTORE_SEED=N replays one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/lib/lincheck.h"

/* ---- helpers ---------------------------------------------------------------- */

#define PUT(h, c, k, v, t0, t1) \
    assert_int_equal(lc_history_add(h, c, LC_PUT, k, v, NULL, t0, t1, LC_OK), 0)
#define APPEND(h, c, k, v, t0, t1) \
    assert_int_equal(lc_history_add(h, c, LC_APPEND, k, v, NULL, t0, t1, LC_OK), 0)
#define GET(h, c, k, r, t0, t1) \
    assert_int_equal(lc_history_add(h, c, LC_GET, k, NULL, r, t0, t1, LC_OK), 0)
#define ADD(h, c, kind, k, v, r, t0, t1, st) \
    assert_int_equal(lc_history_add(h, c, kind, k, v, r, t0, t1, st), 0)

static lc_verdict check(lc_history *h, lc_result *r)
{
    lc_verdict v = lc_check(h, 60 * 1000, r);
    if (v == LC_NOT_LINEARIZABLE)
        printf("    (expected or not) %s", r->explanation);
    return v;
}

/* Asserts the verdict, then frees the history. */
static void expect(lc_history *h, lc_verdict want)
{
    lc_result r;
    lc_verdict v = check(h, &r);
    assert_int_equal(v, want);
    if (want == LC_NOT_LINEARIZABLE)
        assert_non_null(r.explanation);
    lc_result_free(&r);
    lc_history_free(h);
}

static const char *test_mode(void)
{
    const char *m = getenv("HSTORE_TEST_MODE");
    return m ? m : "normal";
}

static uint64_t base_seed(void)
{
    const char *s = getenv("HSTORE_SEED");
    return s ? strtoull(s, NULL, 0) : 20240611;
}

/* ---- histories that must be rejected ----------------------------------------- */

static void test_rejects_stale_read(void **unused)
{
    lc_history h;
    lc_history_init(&h);
    PUT(&h, "c1", "k", "x", 0, 10);
    PUT(&h, "c2", "k", "y", 20, 30);
    GET(&h, "c3", "k", "x", 40, 50); /* y was acknowledged before this get began */
    lc_result r;
    assert_int_equal(check(&h, &r), LC_NOT_LINEARIZABLE);
    /* the explanation names the key, the value so far, the put that cannot
     * go next, and the stale get that stops it */
    assert_non_null(strstr(r.explanation, "key \"k\""));
    assert_non_null(strstr(r.explanation, "value after that prefix: \"x\""));
    assert_non_null(strstr(r.explanation, "but cannot:\n    c2 put(\"k\", \"y\") [20 .. 30]"));
    assert_non_null(strstr(r.explanation, "c3 get(\"k\") -> \"x\" [40 .. 50]"));
    lc_result_free(&r);
    lc_history_free(&h);
}

static void test_rejects_lost_append(void **unused)
{
    lc_history h;
    lc_history_init(&h);
    APPEND(&h, "c1", "k", "a", 0, 10);
    APPEND(&h, "c2", "k", "b", 20, 30);
    GET(&h, "c3", "k", "a", 40, 50);
    expect(&h, LC_NOT_LINEARIZABLE);

    /* the first of two sequential appends lost */
    lc_history_init(&h);
    APPEND(&h, "c1", "k", "a", 0, 10);
    APPEND(&h, "c1", "k", "b", 20, 30);
    GET(&h, "c2", "k", "b", 40, 50);
    expect(&h, LC_NOT_LINEARIZABLE);
}

static void test_rejects_doubled_append(void **unused)
{
    lc_history h;
    lc_history_init(&h);
    APPEND(&h, "c1", "k", "a", 0, 10);
    GET(&h, "c2", "k", "aa", 20, 30);
    expect(&h, LC_NOT_LINEARIZABLE);

    /* a retried append applied twice, seen around another client's append */
    lc_history_init(&h);
    APPEND(&h, "c1", "k", "a", 0, 100);
    APPEND(&h, "c2", "k", "b", 10, 20);
    GET(&h, "c3", "k", "aba", 200, 210);
    expect(&h, LC_NOT_LINEARIZABLE);
}

static void test_rejects_value_never_written(void **unused)
{
    lc_history h;
    lc_history_init(&h);
    PUT(&h, "c1", "k", "x", 0, 10);
    GET(&h, "c2", "k", "z", 5, 15);
    expect(&h, LC_NOT_LINEARIZABLE);

    /* before any write, a missing key reads as "" and nothing else */
    lc_history_init(&h);
    GET(&h, "c1", "k", "x", 0, 10);
    PUT(&h, "c2", "k", "x", 20, 30);
    expect(&h, LC_NOT_LINEARIZABLE);

    /* a failed put definitely did not happen */
    lc_history_init(&h);
    ADD(&h, "c1", LC_PUT, "k", "x", NULL, 0, 10, LC_FAIL);
    GET(&h, "c2", "k", "x", 20, 30);
    expect(&h, LC_NOT_LINEARIZABLE);

    /* an unknown put cannot take effect before it is called */
    lc_history_init(&h);
    GET(&h, "c1", "k", "x", 0, 10);
    ADD(&h, "c2", LC_PUT, "k", "x", NULL, 20, 0, LC_UNKNOWN);
    expect(&h, LC_NOT_LINEARIZABLE);
}

static void test_rejects_read_back_in_time(void **unused)
{
    lc_history h;
    lc_history_init(&h);
    PUT(&h, "c1", "k", "x", 0, 10);
    PUT(&h, "c2", "k", "y", 20, 100); /* long put: y may appear any time in [20, 100] */
    GET(&h, "c3", "k", "y", 30, 40);  /* c3 sees y ... */
    GET(&h, "c4", "k", "x", 50, 60);  /* ... then c4, strictly later, sees x again */
    lc_result r;
    assert_int_equal(check(&h, &r), LC_NOT_LINEARIZABLE);
    assert_non_null(strstr(r.explanation, "c4 get(\"k\") -> \"x\""));
    lc_result_free(&r);
    lc_history_free(&h);

    /* the same on one client's appends */
    lc_history_init(&h);
    APPEND(&h, "c1", "k", "a", 0, 100);
    GET(&h, "c2", "k", "a", 10, 20);
    GET(&h, "c3", "k", "", 30, 40);
    expect(&h, LC_NOT_LINEARIZABLE);
}

static void test_rejects_one_bad_key_among_good(void **unused)
{
    lc_history h;
    lc_history_init(&h);
    for (int k = 0; k < 5; k++) {
        char key[8], v[8];
        snprintf(key, sizeof key, "k%d", k);
        snprintf(v, sizeof v, "v%d", k);
        PUT(&h, "c1", key, v, 100 * k, 100 * k + 10);
        GET(&h, "c2", key, k == 3 ? "" : v, 100 * k + 20, 100 * k + 30);
    }
    lc_result r;
    assert_int_equal(check(&h, &r), LC_NOT_LINEARIZABLE);
    assert_int_equal(r.nkeys, 5);
    assert_int_equal(r.nfailed_keys, 1);
    assert_non_null(strstr(r.explanation, "key \"k3\""));
    lc_result_free(&r);
    lc_history_free(&h);
}

/* ---- histories that must pass ---------------------------------------------------- */

static void test_accepts_empty_and_missing(void **unused)
{
    lc_history h;
    lc_history_init(&h);
    expect(&h, LC_LINEARIZABLE);

    lc_history_init(&h);
    GET(&h, "c1", "k", "", 0, 10);
    PUT(&h, "c1", "k", "", 20, 30);
    GET(&h, "c2", "k", "", 40, 50);
    APPEND(&h, "c2", "k", "a", 60, 70);
    GET(&h, "c1", "k", "a", 80, 90);
    expect(&h, LC_LINEARIZABLE);
}

static void test_accepts_get_sees_later_called_put_first(void **unused)
{
    lc_history h;
    lc_history_init(&h);
    PUT(&h, "c1", "k", "x", 0, 100);
    PUT(&h, "c2", "k", "y", 10, 60); /* called later, takes effect first */
    GET(&h, "c3", "k", "y", 20, 30);
    GET(&h, "c3", "k", "x", 110, 120);
    expect(&h, LC_LINEARIZABLE);

    /* one get concurrent with both puts may see either */
    for (int i = 0; i < 2; i++) {
        lc_history_init(&h);
        PUT(&h, "c1", "k", "x", 0, 100);
        PUT(&h, "c2", "k", "y", 10, 90);
        GET(&h, "c3", "k", i ? "x" : "y", 5, 200);
        expect(&h, LC_LINEARIZABLE);
    }
}

static void test_accepts_overlapping_appends_either_order(void **unused)
{
    const char *seen[] = {"ba", "ab"};
    for (int i = 0; i < 2; i++) {
        lc_history h;
        lc_history_init(&h);
        APPEND(&h, "c1", "k", "a", 0, 100);
        APPEND(&h, "c2", "k", "b", 10, 90);
        GET(&h, "c3", "k", i ? "a" : "b", 50, 60); /* mid-way: only one of them */
        GET(&h, "c3", "k", seen[i], 200, 210);
        expect(&h, LC_LINEARIZABLE);
    }
    /* but not one order mid-way and the other at the end */
    lc_history h;
    lc_history_init(&h);
    APPEND(&h, "c1", "k", "a", 0, 100);
    APPEND(&h, "c2", "k", "b", 10, 90);
    GET(&h, "c3", "k", "a", 50, 60);
    GET(&h, "c3", "k", "ba", 200, 210);
    expect(&h, LC_NOT_LINEARIZABLE);
}

static void test_accepts_touching_intervals_as_concurrent(void **unused)
{
    lc_history h;
    lc_history_init(&h);
    PUT(&h, "c1", "k", "x", 0, 10);
    GET(&h, "c2", "k", "", 10, 20); /* called at the instant the put returned */
    expect(&h, LC_LINEARIZABLE);
}

static void test_accepts_unknown_late_or_never(void **unused)
{
    lc_history h;
    /* took effect long after the client gave up, after other ops */
    lc_history_init(&h);
    ADD(&h, "c1", LC_APPEND, "k", "a", NULL, 0, 0, LC_UNKNOWN);
    GET(&h, "c2", "k", "", 10, 20);
    APPEND(&h, "c2", "k", "b", 30, 40);
    GET(&h, "c2", "k", "b", 50, 60);
    GET(&h, "c3", "k", "ba", 1000, 1010);
    expect(&h, LC_LINEARIZABLE);

    /* never took effect */
    lc_history_init(&h);
    ADD(&h, "c1", LC_PUT, "k", "x", NULL, 0, 0, LC_UNKNOWN);
    ADD(&h, "c1", LC_APPEND, "k", "y", NULL, 5, 0, LC_UNKNOWN);
    GET(&h, "c2", "k", "", 100, 110);
    expect(&h, LC_LINEARIZABLE);

    /* an unknown get tells nothing; a failed op is dropped */
    lc_history_init(&h);
    PUT(&h, "c1", "k", "x", 0, 10);
    ADD(&h, "c2", LC_GET, "k", NULL, "garbage", 20, 30, LC_UNKNOWN);
    ADD(&h, "c2", LC_APPEND, "k", "z", NULL, 40, 50, LC_FAIL);
    GET(&h, "c3", "k", "x", 60, 70);
    lc_result r;
    assert_int_equal(check(&h, &r), LC_LINEARIZABLE);
    assert_int_equal(r.nops, 2);
    lc_result_free(&r);
    lc_history_free(&h);

    /* but it takes effect at most once: unknown append seen, then gone */
    lc_history_init(&h);
    ADD(&h, "c1", LC_APPEND, "k", "a", NULL, 0, 0, LC_UNKNOWN);
    GET(&h, "c2", "k", "a", 10, 20);
    GET(&h, "c2", "k", "", 30, 40);
    expect(&h, LC_NOT_LINEARIZABLE);
}

static void test_accepts_binary_and_empty_keys(void **unused)
{
    lc_history h;
    lc_history_init(&h);
    lc_op op;
    memset(&op, 0, sizeof op);
    strcpy(op.client, "c1");
    op.kind = LC_PUT;
    op.status = LC_OK;
    op.key = "";
    op.key_len = 0;
    op.value = "a\0b";
    op.value_len = 3;
    op.call_ns = 0;
    op.ret_ns = 10;
    assert_int_equal(lc_history_add_op(&h, &op), 0);
    op.kind = LC_GET;
    op.value = NULL;
    op.result = "a\0b";
    op.result_len = 3;
    op.call_ns = 20;
    op.ret_ns = 30;
    assert_int_equal(lc_history_add_op(&h, &op), 0);
    expect(&h, LC_LINEARIZABLE);

    lc_history_init(&h);
    assert_int_equal(lc_history_add_op(&h, &op), 0); /* reads "a\0b" from nothing */
    op.result_len = 1;                               /* a prefix of it is not the same */
    expect(&h, LC_NOT_LINEARIZABLE);
}

static void test_add_rejects_invalid_ops(void **unused)
{
    lc_history h;
    lc_history_init(&h);
    assert_int_equal(lc_history_add(&h, "c1", LC_PUT, "k", "x", NULL, 10, 5, LC_OK), -1);
    assert_int_equal(lc_history_add(&h, "c1", LC_PUT, "k", NULL, NULL, 0, 5, LC_OK), -1);
    assert_int_equal(lc_history_add(&h, "c1", LC_GET, "k", NULL, NULL, 0, 5, LC_OK), -1);
    assert_int_equal(lc_history_add(&h, "", LC_GET, "k", NULL, "", 0, 5, LC_OK), -1);
    assert_int_equal(lc_history_add(&h, "c1", (lc_kind)7, "k", "x", NULL, 0, 5, LC_OK), -1);
    assert_int_equal(lc_history_add(&h, "a-client-name-that-is-much-too-long", LC_GET, "k", NULL,
                                    "", 0, 5, LC_OK),
                     -1);
    assert_int_equal(h.n, 0);
    /* an unknown op's return time does not matter */
    assert_int_equal(lc_history_add(&h, "c1", LC_PUT, "k", "x", NULL, 10, 5, LC_UNKNOWN), 0);
    lc_history_free(&h);
}

/* ---- the file format ----------------------------------------------------------------- */

static long parse_text(lc_history *h, const char *text, char *err, size_t errlen)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(f);
    long n = lc_parse_stream(h, f, "t.hist", err, errlen);
    fclose(f);
    return n;
}

static void test_parse_good_lines(void **unused)
{
    const char *text = "# a comment\n"
                       "\n"
                       "c1 put k%2Fa 100 200 ok x%20y -\n"
                       "c2\tget  k%2fa 150 250 ok - x%20y\r\n"
                       "c3 append % 300 400 ok % -\n"
                       "c4 append k 300 - unknown %2D -\n"
                       "c5 get k 1 2 unknown - -\n"
                       "c6 put k -5 7 fail v -\n"
                       "   # indented comment\n"
                       "c7 get k 10 20 ok - %";
    lc_history h;
    lc_history_init(&h);
    char err[256] = "";
    assert_int_equal(parse_text(&h, text, err, sizeof err), 7);
    assert_int_equal(h.n, 7);

    const lc_op *o = &h.ops[0];
    assert_string_equal(o->client, "c1");
    assert_int_equal(o->kind, LC_PUT);
    assert_string_equal(o->key, "k/a");
    assert_string_equal(o->value, "x y");
    assert_null(o->result);
    assert_int_equal(o->call_ns, 100);
    assert_int_equal(o->ret_ns, 200);
    assert_string_equal(o->file, "t.hist");
    assert_int_equal(o->line, 3);

    o = &h.ops[1];
    assert_int_equal(o->kind, LC_GET);
    assert_string_equal(o->key, "k/a");
    assert_string_equal(o->result, "x y");
    assert_int_equal(o->line, 4);

    o = &h.ops[2];
    assert_int_equal(o->key_len, 0);
    assert_int_equal(o->value_len, 0);

    o = &h.ops[3];
    assert_int_equal(o->status, LC_UNKNOWN);
    assert_string_equal(o->value, "-");

    assert_int_equal(h.ops[4].status, LC_UNKNOWN);
    assert_null(h.ops[4].result);
    assert_int_equal(h.ops[5].status, LC_FAIL);
    assert_int_equal(h.ops[5].call_ns, -5);
    assert_int_equal(h.ops[6].result_len, 0);
    assert_int_equal(h.ops[6].line, 10);
    lc_history_free(&h);
}

static void test_parse_malformed_lines(void **unused)
{
    static const struct {
        const char *line;
        const char *why;
    } cases[] = {
        {"c1 put k 1 2 ok v", "expected 8 fields"},
        {"c1 put k 1 2 ok v - extra", "found 9"},
        {"c1 delete k 1 2 ok v -", "unknown operation 'delete'"},
        {"c1 put k 1 2 done v -", "unknown status 'done'"},
        {"c1 put k 1x 2 ok v -", "bad CALL_NS '1x'"},
        {"c1 put k 1 - ok v -", "bad RETURN_NS '-'"},
        {"c1 put k 9 2 ok v -", "returns (2) before it is called (9)"},
        {"c1 put k/a 1 2 ok v -", "bad key 'k/a'"},
        {"c1 put k 1 2 ok v%2 -", "bad value 'v%2'"},
        {"c1 put k 1 2 ok v%zz -", "bad value"},
        {"c1 put - 1 2 ok v -", "missing key"},
        {"c1 put k 1 2 ok - -", "VALUE of a put is missing"},
        {"c1 append k 1 2 ok v v", "RESULT of a append must be '-'"},
        {"c1 get k 1 2 ok v v", "VALUE of a get must be '-'"},
        {"c1 get k 1 2 ok - -", "RESULT of an ok get is missing"},
        {"c1 get k 1 2 ok - a:b", "bad result 'a:b'"},
        {"c123456789012345678901234567890123 get k 1 2 ok - a", "client id longer"},
        {"c1 get k 99999999999999999999 100000000000000000000 ok - a", "bad CALL_NS"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        /* one good line first, so the error must carry line 2 */
        snprintf(text, sizeof text, "c0 get k 0 1 ok - %%\n%s\nc0 get k 0 1 ok - %%\n",
                 cases[i].line);
        lc_history h;
        lc_history_init(&h);
        char err[512] = "";
        long n = parse_text(&h, text, err, sizeof err);
        if (n != -1 || strncmp(err, "t.hist:2: ", 10) != 0 || !strstr(err, cases[i].why))
            fail_msg("line '%s': got %ld, '%s'; want t.hist:2: ... %s", cases[i].line, n, err,
                     cases[i].why);
        lc_history_free(&h);
    }
}

static void test_encode_decode_roundtrip(void **unused)
{
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    struct {
        const char *p;
        size_t n;
        const char *enc;
    } cases[] = {
        {"", 0, "%"},    {"-", 1, "%2D"},         {"--", 2, "--"},  {"a b;c", 5, "a%20b%3Bc"},
        {"%", 1, "%25"}, {"A.z_9-", 6, "A.z_9-"}, {all, 256, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *e = lc_encode(cases[i].p, cases[i].n);
        assert_non_null(e);
        if (cases[i].enc)
            assert_string_equal(e, cases[i].enc);
        char out[256];
        size_t n = 9999;
        assert_int_equal(lc_decode(e, strlen(e), out, &n), 0);
        assert_int_equal(n, cases[i].n);
        assert_memory_equal(out, cases[i].p, n);
        free(e);
    }
}

/* ---- agreement with a brute-force checker ---------------------------------------- */

/* Tries every order of the ops (each unknown one placed anywhere or left
 * out) that respects real time, replaying it on a plain string. */
static bool brute_ok(const lc_op **ops, size_t n, bool *used, const char *val)
{
    bool all_known_placed = true;
    for (size_t i = 0; i < n; i++)
        if (!used[i] && ops[i]->status == LC_OK)
            all_known_placed = false;
    if (all_known_placed)
        return true; /* the unknown ones left never took effect */
    for (size_t i = 0; i < n; i++) {
        if (used[i])
            continue;
        /* i may go next only if no other op still to place returned before i was called */
        bool minimal = true;
        for (size_t j = 0; j < n && minimal; j++)
            if (j != i && !used[j] && ops[j]->status == LC_OK && ops[j]->ret_ns < ops[i]->call_ns)
                minimal = false;
        if (!minimal)
            continue;
        char next[64];
        const lc_op *o = ops[i];
        if (o->kind == LC_GET) {
            if (strcmp(o->result, val) != 0)
                continue;
            snprintf(next, sizeof next, "%s", val);
        } else if (o->kind == LC_PUT) {
            snprintf(next, sizeof next, "%s", o->value);
        } else {
            snprintf(next, sizeof next, "%s%s", val, o->value);
        }
        used[i] = true;
        bool ok = brute_ok(ops, n, used, next);
        used[i] = false;
        if (ok)
            return true;
    }
    return false;
}

static bool brute_check(const lc_history *h)
{
    const lc_op *ops[16];
    bool used[16] = {false};
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++) {
        const lc_op *o = &h->ops[i];
        if (o->status == LC_FAIL || (o->kind == LC_GET && o->status == LC_UNKNOWN))
            continue;
        assert_true(n < 16);
        ops[n++] = o;
    }
    return brute_ok(ops, n, used, "");
}

static uint64_t rnd(uint64_t *s);
static int64_t rndn(uint64_t *s, int64_t n);

/* Small random histories on one key, from a simulated store with random
 * effect times, one get in three then given a random other result; values
 * repeat on purpose (the checker must not rely on unique values). */
static void small_history(uint64_t *s, lc_history *h, int maxops)
{
    static const char *puts_[] = {"x", "y", "", "xa"};
    static const char *appends[] = {"a", "b", "a", "ab"};
    static const char *reads[] = {"",   "x",  "y",  "a",   "b",  "ab",
                                  "ba", "xa", "aa", "xab", "yb", "xaa"};
    int n = 1 + (int)rndn(s, maxops);
    struct {
        lc_kind kind;
        lc_status st;
        int64_t call, ret, lin;
        bool happens;
        const char *value;
        char result[64];
    } o[10];
    for (int i = 0; i < n; i++) {
        int r = (int)rndn(s, 10);
        o[i].kind = r < 3 ? LC_PUT : r < 6 ? LC_APPEND : LC_GET;
        o[i].call = rndn(s, 20);
        o[i].ret = o[i].call + rndn(s, 12);
        o[i].lin = o[i].call + rndn(s, o[i].ret - o[i].call + 1);
        o[i].happens = true;
        r = (int)rndn(s, 100);
        o[i].st = r < 80 ? LC_OK : r < 92 ? LC_UNKNOWN : LC_FAIL;
        if (o[i].st == LC_FAIL) {
            o[i].happens = false;
        } else if (o[i].st == LC_UNKNOWN) {
            o[i].happens = rndn(s, 2);
            o[i].lin = o[i].call + rndn(s, 30);
        }
        o[i].value = o[i].kind == LC_PUT ? puts_[rndn(s, 4)] : appends[rndn(s, 4)];
    }
    /* replay by effect time */
    char val[64] = "";
    for (int64_t t = 0; t <= 60; t++) {
        for (int i = 0; i < n; i++) {
            if (o[i].lin != t || !o[i].happens)
                continue;
            if (o[i].kind == LC_PUT)
                snprintf(val, sizeof val, "%s", o[i].value);
            else if (o[i].kind == LC_APPEND)
                strncat(val, o[i].value, sizeof val - strlen(val) - 1);
            else
                snprintf(o[i].result, sizeof o[i].result, "%s", val);
        }
    }
    for (int i = 0; i < n; i++) {
        if (o[i].kind == LC_GET && rndn(s, 3) == 0)
            snprintf(o[i].result, sizeof o[i].result, "%s", reads[rndn(s, 12)]);
        char client[8];
        snprintf(client, sizeof client, "c%d", i % 100);
        ADD(h, client, o[i].kind, "k", o[i].value, o[i].result, o[i].call, o[i].ret, o[i].st);
    }
}

static void test_agrees_with_brute_force(void **unused)
{
    bool is_long = strcmp(test_mode(), "long") == 0;
    int rounds = is_long ? 300000 : 30000;
    uint64_t s = base_seed();
    int yes = 0, no = 0;
    for (int i = 0; i < rounds; i++) {
        lc_history h;
        lc_history_init(&h);
        small_history(&s, &h, is_long ? 9 : 7);
        bool want = brute_check(&h);
        lc_result r;
        lc_verdict v = lc_check(&h, 60 * 1000, &r);
        if (v != (want ? LC_LINEARIZABLE : LC_NOT_LINEARIZABLE)) {
            printf("    disagreement on history %d (seed %llu): brute force says %s\n", i,
                   (unsigned long long)base_seed(), want ? "linearizable" : "not");
            for (size_t j = 0; j < h.n; j++)
                lc_write_op(stdout, &h.ops[j]);
            fail();
        }
        want ? yes++ : no++;
        lc_result_free(&r);
        lc_history_free(&h);
    }
    printf("    %d random small histories: %d linearizable, %d not, all agree\n", rounds, yes, no);
    /* both verdicts well represented, or the comparison proves little */
    assert_true(yes > rounds / 5 && no > rounds / 5);
}

/* ---- generated histories ------------------------------------------------------------- */

enum gen_fault { GEN_CLEAN, GEN_LOSE_APPEND, GEN_DOUBLE_APPEND };

typedef struct gen_cfg {
    uint64_t seed;
    int nops, nkeys, nclients;
    int pct_put, pct_append; /* the rest are gets */
    int pct_unknown;         /* of every kind */
    int max_dur;             /* op durations 1..max_dur, think times 0..max_dur/4 */
    enum gen_fault fault;
} gen_cfg;

typedef struct gop {
    int client, key;
    lc_kind kind;
    lc_status st;
    int64_t call, ret, lin;
    int times; /* how often it takes effect: 1 normally, 0 never, 2 doubled */
    char value[32];
    char *result;
} gop;

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t rndn(uint64_t *s, int64_t n)
{
    return (int64_t)(rnd(s) % (uint64_t)n);
}

static gop *g_ops; /* for the qsort comparator */

static int by_lin(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    if (g_ops[a].lin != g_ops[b].lin)
        return g_ops[a].lin < g_ops[b].lin ? -1 : 1;
    return a - b;
}

/* Runs a simulated linearizable store: each op takes effect at a random
 * instant inside its interval (an unknown one at any instant after its call,
 * or never), and the gets read what the store holds then.  With a fault, one
 * acknowledged append with a later get on its key is lost or applied twice.
 * Fills h and returns the faulted op's index (or -1). */
static int generate(const gen_cfg *cfg, lc_history *h)
{
    uint64_t s = cfg->seed;
    gop *ops = calloc((size_t)cfg->nops, sizeof *ops);
    int64_t *clk = calloc((size_t)cfg->nclients, sizeof *clk);
    assert_non_null(ops);
    assert_non_null(clk);
    for (int c = 0; c < cfg->nclients; c++)
        clk[c] = rndn(&s, 100);
    for (int i = 0; i < cfg->nops; i++) {
        gop *o = &ops[i];
        int c = 0;
        for (int k = 1; k < cfg->nclients; k++)
            if (clk[k] < clk[c])
                c = k;
        int r = (int)rndn(&s, 100);
        o->kind = r < cfg->pct_put                     ? LC_PUT
                  : r < cfg->pct_put + cfg->pct_append ? LC_APPEND
                                                       : LC_GET;
        o->client = c;
        o->key = (int)rndn(&s, cfg->nkeys);
        o->call = clk[c];
        int64_t dur = 1 + rndn(&s, cfg->max_dur);
        o->ret = o->call + dur;
        o->lin = o->call + rndn(&s, dur + 1);
        o->st = LC_OK;
        o->times = 1;
        if (rndn(&s, 100) < cfg->pct_unknown) {
            o->st = LC_UNKNOWN;
            if (rndn(&s, 2))
                o->times = 0;
            else
                o->lin = o->call + rndn(&s, 20 * dur); /* often after the client gave up */
        }
        snprintf(o->value, sizeof o->value, "%s%d.%d;", o->kind == LC_PUT ? "P" : "", c, i);
        clk[c] = o->ret + rndn(&s, cfg->max_dur / 4 + 1);
    }

    int faulted = -1;
    if (cfg->fault != GEN_CLEAN) {
        for (int i = cfg->nops / 4; i < cfg->nops && faulted < 0; i++) {
            if (ops[i].kind != LC_APPEND || ops[i].st != LC_OK)
                continue;
            for (int j = i + 1; j < cfg->nops; j++) {
                if (ops[j].kind == LC_GET && ops[j].st == LC_OK && ops[j].key == ops[i].key &&
                    ops[j].call > ops[i].ret) {
                    faulted = i;
                    break;
                }
            }
        }
        assert_true(faulted >= 0);
        ops[faulted].times = cfg->fault == GEN_LOSE_APPEND ? 0 : 2;
    }

    /* replay in linearization order */
    int *order = malloc((size_t)cfg->nops * sizeof *order);
    char **val = calloc((size_t)cfg->nkeys, sizeof *val);
    assert_non_null(order);
    assert_non_null(val);
    for (int i = 0; i < cfg->nops; i++)
        order[i] = i;
    g_ops = ops;
    qsort(order, (size_t)cfg->nops, sizeof *order, by_lin);
    for (int k = 0; k < cfg->nkeys; k++)
        val[k] = calloc(1, 1);
    for (int x = 0; x < cfg->nops; x++) {
        gop *o = &ops[order[x]];
        char **v = &val[o->key];
        for (int t = 0; t < o->times; t++) {
            if (o->kind == LC_PUT) {
                free(*v);
                *v = strdup(o->value);
            } else if (o->kind == LC_APPEND) {
                size_t n = strlen(*v), m = strlen(o->value);
                *v = realloc(*v, n + m + 1);
                memcpy(*v + n, o->value, m + 1);
            } else {
                o->result = strdup(*v);
            }
            assert_non_null(*v);
        }
    }
    for (int i = 0; i < cfg->nops; i++) {
        gop *o = &ops[i];
        char client[16], key[16];
        snprintf(client, sizeof client, "c%d", o->client);
        snprintf(key, sizeof key, "k%d", o->key);
        ADD(h, client, o->kind, key, o->value, o->result ? o->result : "", o->call, o->ret, o->st);
        free(o->result);
    }
    for (int k = 0; k < cfg->nkeys; k++)
        free(val[k]);
    free(val);
    free(order);
    free(clk);
    free(ops);
    return faulted;
}

static gen_cfg big_cfg(uint64_t seed)
{
    return (gen_cfg){.seed = seed,
                     .nops = 10000,
                     .nkeys = 20,
                     .nclients = 10,
                     .pct_put = 10,
                     .pct_append = 50,
                     .pct_unknown = 2,
                     .max_dur = 1000,
                     .fault = GEN_CLEAN};
}

static void test_generated_10000_ops_pass(void **unused)
{
    int rounds = strcmp(test_mode(), "long") == 0 ? 20 : 3;
    for (int i = 0; i < rounds; i++) {
        gen_cfg cfg = big_cfg(base_seed() + (uint64_t)i);
        lc_history h;
        lc_history_init(&h);
        generate(&cfg, &h);
        lc_result r;
        lc_verdict v = check(&h, &r);
        printf("    seed %llu: %zu ops, %zu keys, %d clients: %s in %.1f ms\n",
               (unsigned long long)cfg.seed, r.nops, r.nkeys, cfg.nclients,
               v == LC_LINEARIZABLE ? "linearizable" : "NOT linearizable", r.ms);
        assert_int_equal(v, LC_LINEARIZABLE);
        assert_int_equal(r.nkeys, 20);
        assert_true(r.nops > 9800); /* only unknown gets are dropped */
        /* (the time it took is printed above; check()'s 60 s budget only
         * catches a search that does not end) */
        lc_result_free(&r);
        lc_history_free(&h);
    }
}

/* All clients on one key: the search must untangle ~10 concurrent ops at a time. */
static void test_generated_one_hot_key_pass(void **unused)
{
    int rounds = strcmp(test_mode(), "long") == 0 ? 20 : 3;
    for (int i = 0; i < rounds; i++) {
        gen_cfg cfg = big_cfg(base_seed() + 1000 + (uint64_t)i);
        cfg.nops = 2000;
        cfg.nkeys = 1;
        lc_history h;
        lc_history_init(&h);
        generate(&cfg, &h);
        lc_result r;
        lc_verdict v = check(&h, &r);
        printf("    seed %llu: %zu ops on one key, %d clients: %s in %.1f ms\n",
               (unsigned long long)cfg.seed, r.nops, cfg.nclients,
               v == LC_LINEARIZABLE ? "linearizable" : "NOT linearizable", r.ms);
        assert_int_equal(v, LC_LINEARIZABLE);
        lc_result_free(&r);
        lc_history_free(&h);
    }
}

static void check_generated_fault(enum gen_fault fault)
{
    int rounds = strcmp(test_mode(), "long") == 0 ? 20 : 3;
    for (int i = 0; i < rounds; i++) {
        gen_cfg cfg = big_cfg(base_seed() + 2000 + (uint64_t)i);
        cfg.pct_put = 0; /* a later put could hide the fault */
        cfg.fault = fault;
        lc_history h;
        lc_history_init(&h);
        int bad = generate(&cfg, &h);
        lc_result r;
        lc_verdict v = lc_check(&h, 60 * 1000, &r);
        printf("    seed %llu: %s append #%d (%s) on %s: %s in %.1f ms\n",
               (unsigned long long)cfg.seed, fault == GEN_LOSE_APPEND ? "lost" : "doubled", bad,
               h.ops[bad].value, h.ops[bad].key,
               v == LC_NOT_LINEARIZABLE ? "rejected" : "NOT rejected", r.ms);
        assert_int_equal(v, LC_NOT_LINEARIZABLE);
        assert_int_equal(r.nfailed_keys, 1);
        char want[64];
        snprintf(want, sizeof want, "key \"%s\"", h.ops[bad].key);
        assert_non_null(strstr(r.explanation, want));
        lc_result_free(&r);
        lc_history_free(&h);
    }
}

static void test_generated_lost_append_rejected(void **unused)
{
    check_generated_fault(GEN_LOSE_APPEND);
}

static void test_generated_doubled_append_rejected(void **unused)
{
    check_generated_fault(GEN_DOUBLE_APPEND);
}

/* A generated history written in the file format and read back checks the same. */
static void test_generated_file_roundtrip(void **unused)
{
    gen_cfg cfg = big_cfg(base_seed() + 3000);
    cfg.nops = 2000;
    lc_history h, back;
    lc_history_init(&h);
    lc_history_init(&back);
    generate(&cfg, &h);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    for (size_t i = 0; i < h.n; i++)
        assert_int_equal(lc_write_op(f, &h.ops[i]), 0);
    fclose(f);
    f = fmemopen(buf, len, "r");
    assert_non_null(f);
    char err[256] = "";
    assert_int_equal(lc_parse_stream(&back, f, "gen", err, sizeof err), (long)h.n);
    fclose(f);
    free(buf);
    for (size_t i = 0; i < h.n; i++) {
        const lc_op *a = &h.ops[i], *b = &back.ops[i];
        assert_string_equal(a->client, b->client);
        assert_int_equal(a->kind, b->kind);
        assert_int_equal(a->status, b->status);
        assert_string_equal(a->key, b->key);
        assert_int_equal(a->call_ns, b->call_ns);
        assert_int_equal(a->ret_ns, b->ret_ns);
        if (a->value)
            assert_string_equal(a->value, b->value);
        if (a->result)
            assert_string_equal(a->result, b->result);
    }
    lc_result r;
    assert_int_equal(lc_check(&back, 60 * 1000, &r), LC_LINEARIZABLE);
    lc_result_free(&r);
    lc_history_free(&h);
    lc_history_free(&back);
}

int main(void)
{
    printf("test_lincheck: seed base %llu (HSTORE_SEED to change), mode %s\n",
           (unsigned long long)base_seed(), test_mode());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rejects_stale_read),
        cmocka_unit_test(test_rejects_lost_append),
        cmocka_unit_test(test_rejects_doubled_append),
        cmocka_unit_test(test_rejects_value_never_written),
        cmocka_unit_test(test_rejects_read_back_in_time),
        cmocka_unit_test(test_rejects_one_bad_key_among_good),
        cmocka_unit_test(test_accepts_empty_and_missing),
        cmocka_unit_test(test_accepts_get_sees_later_called_put_first),
        cmocka_unit_test(test_accepts_overlapping_appends_either_order),
        cmocka_unit_test(test_accepts_touching_intervals_as_concurrent),
        cmocka_unit_test(test_accepts_unknown_late_or_never),
        cmocka_unit_test(test_accepts_binary_and_empty_keys),
        cmocka_unit_test(test_add_rejects_invalid_ops),
        cmocka_unit_test(test_parse_good_lines),
        cmocka_unit_test(test_parse_malformed_lines),
        cmocka_unit_test(test_encode_decode_roundtrip),
        cmocka_unit_test(test_agrees_with_brute_force),
        cmocka_unit_test(test_generated_10000_ops_pass),
        cmocka_unit_test(test_generated_one_hot_key_pass),
        cmocka_unit_test(test_generated_lost_append_rejected),
        cmocka_unit_test(test_generated_doubled_append_rejected),
        cmocka_unit_test(test_generated_file_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
