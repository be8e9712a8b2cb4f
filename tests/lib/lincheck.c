/*
 * lincheck.c - linearizability checker for key-value histories (see lincheck.h
 * for the model and the file format).
 *
 * The search, per key (Wing & Gong 1993 with Lowe's memoization, "Testing for
 * linearizability", 2017, section 3; Porcupine's checkSingle has the same plan):
 *   - every op contributes a call event and a return event, sorted by time
 *     into a doubly linked list (calls before returns at equal times, so
 *     touching intervals count as concurrent; the returns of ops with unknown
 *     outcome go last, as if at infinity);
 *   - the pending ops are the calls before the first return in the list; one
 *     of them is linearized (its call and return are unlinked, dancing-links
 *     style, and restored in LIFO order) if it is legal on the current value
 *     and the pair (set of linearized ops, value) was never seen before;
 *   - when no pending op can go next, the first return has been reached with
 *     its op still pending: undo the last choice and try the next candidate.
 *     If nothing is left to undo, the key is not linearizable;
 *   - reaching the return of an unknown-outcome op means every op with a
 *     known outcome is placed: the rest never took effect; linearizable.
 * On top of that, pruning that is exact for this model (each rule is argued
 * where it is implemented, and the unit tests compare the verdicts with a
 * brute-force search on hundreds of thousands of small histories):
 *   - unknown writes that no get can have observed are dropped up front;
 *   - a pending get that reads the current value is placed at once, with no
 *     alternative tried (dominance);
 *   - candidates are tried earliest-return first;
 *   - the prefix rule: after a write, every nearby pending get must still be
 *     able to read its result (value only grows between puts);
 *   - dead values (ones no get can read before the next put) share one cache
 *     entry, so orders of appends that a put overwrote unseen are tried once.
 * Values are kept in one buffer (appends truncate back on undo, puts save
 * the old value on an undo stack); the cache holds for each pair the set, in
 * compact form, and the value's length and two 64-bit hashes.
 */
#include "tests/lib/lincheck.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raftkv/hex.h"

/* ==== history ============================================================== */

void lc_history_init(lc_history *h)
{
    memset(h, 0, sizeof *h);
}

static void op_release(lc_op *op)
{
    free(op->key);
    free(op->value);
    free(op->result);
}

void lc_history_free(lc_history *h)
{
    for (size_t i = 0; i < h->n; i++)
        op_release(&h->ops[i]);
    free(h->ops);
    for (size_t i = 0; i < h->nfiles; i++)
        free(h->files[i]);
    free(h->files);
    lc_history_init(h);
}

static char *dup_bytes(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

int lc_history_add_op(lc_history *h, const lc_op *op)
{
    if (op->kind != LC_PUT && op->kind != LC_APPEND && op->kind != LC_GET)
        return -1;
    if (op->status != LC_OK && op->status != LC_FAIL && op->status != LC_UNKNOWN)
        return -1;
    size_t clen = strnlen(op->client, sizeof op->client);
    if (clen == 0 || clen >= sizeof op->client || !op->key)
        return -1;
    if (op->kind != LC_GET && !op->value)
        return -1;
    if (op->kind == LC_GET && op->status == LC_OK && !op->result)
        return -1;
    if (op->status != LC_UNKNOWN && op->ret_ns < op->call_ns)
        return -1;
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        lc_op *ops = realloc(h->ops, cap * sizeof *ops);
        if (!ops)
            return -1;
        h->ops = ops;
        h->cap = cap;
    }
    lc_op o = *op;
    o.key = dup_bytes(op->key, op->key_len);
    o.value = op->kind != LC_GET ? dup_bytes(op->value, op->value_len) : NULL;
    o.value_len = op->kind != LC_GET ? op->value_len : 0;
    bool has_result = op->kind == LC_GET && op->status == LC_OK;
    o.result = has_result ? dup_bytes(op->result, op->result_len) : NULL;
    o.result_len = has_result ? op->result_len : 0;
    if (op->status == LC_UNKNOWN)
        o.ret_ns = INT64_MAX;
    if (!o.key || (op->kind != LC_GET && !o.value) || (has_result && !o.result)) {
        op_release(&o);
        return -1;
    }
    h->ops[h->n++] = o;
    return 0;
}

int lc_history_add(lc_history *h, const char *client, lc_kind kind, const char *key,
                   const char *value, const char *result, int64_t call_ns, int64_t ret_ns,
                   lc_status status)
{
    lc_op op;
    memset(&op, 0, sizeof op);
    if (!client || !key || strlen(client) >= sizeof op.client)
        return -1;
    strcpy(op.client, client);
    op.kind = kind;
    op.status = status;
    op.call_ns = call_ns;
    op.ret_ns = ret_ns;
    op.key = (char *)key;
    op.key_len = strlen(key);
    if (kind != LC_GET && value) {
        op.value = (char *)value;
        op.value_len = strlen(value);
    }
    if (kind == LC_GET && status == LC_OK && result) {
        op.result = (char *)result;
        op.result_len = strlen(result);
    }
    return lc_history_add_op(h, &op);
}

/* ==== encoding and parsing ================================================= */

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

char *lc_encode(const void *p, size_t n)
{
    const unsigned char *b = p;
    if (n == 0)
        return dup_bytes("%", 1);
    if (n == 1 && b[0] == '-')
        return dup_bytes("%2D", 3);
    char *out = malloc(3 * n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (unreserved(b[i])) {
            out[o++] = (char)b[i];
        } else {
            out[o++] = '%';
            out[o++] = hex_digit_upper(b[i] >> 4);
            out[o++] = hex_digit_upper(b[i]);
        }
    }
    out[o] = '\0';
    return out;
}

int lc_decode(const char *field, size_t len, char *out, size_t *outlen)
{
    size_t o = 0;
    if (len == 1 && field[0] == '%') {
        *outlen = 0;
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)field[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int v = hex_byte(field + i + 1);
            if (v < 0)
                return -1;
            out[o++] = (char)v;
            i += 2;
        } else if (unreserved(c)) {
            out[o++] = (char)c;
        } else {
            return -1;
        }
    }
    *outlen = o;
    return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

typedef struct field {
    const char *p;
    size_t n;
} field;

static bool field_is(field f, const char *s)
{
    return f.n == strlen(s) && memcmp(f.p, s, f.n) == 0;
}

static int parse_i64(field f, int64_t *out)
{
    char buf[32];
    if (f.n == 0 || f.n >= sizeof buf)
        return -1;
    memcpy(buf, f.p, f.n);
    buf[f.n] = '\0';
    if (!(buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9')))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end != '\0' || end == buf)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* Decodes an encoded field into a fresh buffer (NUL-terminated), or explains
 * why it is bad. */
static int decode_field(field f, const char *what, char **out, size_t *outlen, char *err,
                        size_t errlen)
{
    char *buf = malloc(f.n + 1);
    if (!buf) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    if (lc_decode(f.p, f.n, buf, outlen) != 0) {
        free(buf);
        set_err(err, errlen,
                "bad %s '%.*s': bytes outside [A-Za-z0-9._-] must be written %%XX, "
                "the empty string as '%%'",
                what, (int)(f.n > 60 ? 60 : f.n), f.p);
        return -1;
    }
    buf[*outlen] = '\0';
    *out = buf;
    return 0;
}

int lc_parse_line(lc_history *h, const char *line, const char *file, int lineno, char *err,
                  size_t errlen)
{
    enum { NF = 8 };
    field f[NF];
    size_t nf = 0;
    const char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '\n' || *p == '\r')
            break;
        if (nf == 0 && *p == '#')
            return 0;
        const char *s = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            p++;
        if (nf < NF)
            f[nf] = (field){s, (size_t)(p - s)};
        nf++;
    }
    if (nf == 0)
        return 0;
    if (nf != NF) {
        set_err(err, errlen,
                "expected 8 fields (CLIENT OP KEY CALL_NS RETURN_NS STATUS VALUE RESULT), "
                "found %zu",
                nf);
        return -1;
    }

    lc_op op;
    memset(&op, 0, sizeof op);
    op.file = file;
    op.line = lineno;
    int rc = -1;
    if (f[0].n >= sizeof op.client) {
        set_err(err, errlen, "client id longer than %zu bytes", sizeof op.client - 1);
        goto out;
    }
    memcpy(op.client, f[0].p, f[0].n);

    if (field_is(f[1], "put"))
        op.kind = LC_PUT;
    else if (field_is(f[1], "append"))
        op.kind = LC_APPEND;
    else if (field_is(f[1], "get"))
        op.kind = LC_GET;
    else {
        set_err(err, errlen, "unknown operation '%.*s' (put, append or get)", (int)f[1].n, f[1].p);
        goto out;
    }

    if (field_is(f[5], "ok"))
        op.status = LC_OK;
    else if (field_is(f[5], "fail"))
        op.status = LC_FAIL;
    else if (field_is(f[5], "unknown"))
        op.status = LC_UNKNOWN;
    else {
        set_err(err, errlen, "unknown status '%.*s' (ok, fail or unknown)", (int)f[5].n, f[5].p);
        goto out;
    }

    if (field_is(f[2], "-")) {
        set_err(err, errlen, "missing key ('-'); the empty key is written '%%'");
        goto out;
    }
    if (decode_field(f[2], "key", &op.key, &op.key_len, err, errlen))
        goto out;

    if (parse_i64(f[3], &op.call_ns)) {
        set_err(err, errlen, "bad CALL_NS '%.*s' (an integer)", (int)f[3].n, f[3].p);
        goto out;
    }
    if (op.status == LC_UNKNOWN && field_is(f[4], "-")) {
        op.ret_ns = INT64_MAX;
    } else if (parse_i64(f[4], &op.ret_ns)) {
        set_err(err, errlen, "bad RETURN_NS '%.*s' (an integer, or '-' when unknown)", (int)f[4].n,
                f[4].p);
        goto out;
    } else if (op.status != LC_UNKNOWN && op.ret_ns < op.call_ns) {
        set_err(err, errlen, "returns (%" PRId64 ") before it is called (%" PRId64 ")", op.ret_ns,
                op.call_ns);
        goto out;
    }

    if (op.kind == LC_GET) {
        if (!field_is(f[6], "-")) {
            set_err(err, errlen, "VALUE of a get must be '-'");
            goto out;
        }
        /* the result of a failed or unknown get tells nothing: ignored */
        if (op.status == LC_OK) {
            if (field_is(f[7], "-")) {
                set_err(err, errlen,
                        "RESULT of an ok get is missing ('-'); "
                        "an empty value is written '%%'");
                goto out;
            }
            if (decode_field(f[7], "result", &op.result, &op.result_len, err, errlen))
                goto out;
        }
    } else {
        if (field_is(f[6], "-")) {
            set_err(err, errlen,
                    "VALUE of a %s is missing ('-'); "
                    "an empty value is written '%%', a single dash '%%2D'",
                    op.kind == LC_PUT ? "put" : "append");
            goto out;
        }
        if (decode_field(f[6], "value", &op.value, &op.value_len, err, errlen))
            goto out;
        if (!field_is(f[7], "-")) {
            set_err(err, errlen, "RESULT of a %s must be '-'",
                    op.kind == LC_PUT ? "put" : "append");
            goto out;
        }
    }

    if (lc_history_add_op(h, &op) != 0) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    rc = 1;
out:
    op_release(&op);
    return rc;
}

static const char *intern_file(lc_history *h, const char *name)
{
    char **files = realloc(h->files, (h->nfiles + 1) * sizeof *files);
    if (!files)
        return NULL;
    h->files = files;
    char *s = dup_bytes(name, strlen(name));
    if (!s)
        return NULL;
    h->files[h->nfiles++] = s;
    return s;
}

long lc_parse_stream(lc_history *h, FILE *f, const char *name, char *err, size_t errlen)
{
    const char *fname = intern_file(h, name);
    if (!fname) {
        set_err(err, errlen, "%s: out of memory", name);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    long added = 0;
    int lineno = 0;
    char why[256];
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        int rc = lc_parse_line(h, line, fname, lineno, why, sizeof why);
        if (rc < 0) {
            set_err(err, errlen, "%s:%d: %s", name, lineno, why);
            free(line);
            return -1;
        }
        added += rc;
    }
    free(line);
    if (ferror(f)) {
        set_err(err, errlen, "%s:%d: read error", name, lineno);
        return -1;
    }
    return added;
}

long lc_parse_file(lc_history *h, const char *path, char *err, size_t errlen)
{
    if (strcmp(path, "-") == 0)
        return lc_parse_stream(h, stdin, "<stdin>", err, errlen);
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    long n = lc_parse_stream(h, f, path, err, errlen);
    fclose(f);
    return n;
}

static const char *kind_name(lc_kind k)
{
    return k == LC_PUT ? "put" : k == LC_APPEND ? "append" : "get";
}

static const char *status_name(lc_status s)
{
    return s == LC_OK ? "ok" : s == LC_FAIL ? "fail" : "unknown";
}

int lc_write_op(FILE *f, const lc_op *op)
{
    char *key = lc_encode(op->key, op->key_len);
    char *val = op->kind != LC_GET ? lc_encode(op->value, op->value_len) : NULL;
    char *res = op->result ? lc_encode(op->result, op->result_len) : NULL;
    int rc = -1;
    if (key && (op->kind == LC_GET || val) && (!op->result || res)) {
        char ret[32];
        if (op->status == LC_UNKNOWN)
            strcpy(ret, "-");
        else
            snprintf(ret, sizeof ret, "%" PRId64, op->ret_ns);
        rc =
            fprintf(f, "%s %s %s %" PRId64 " %s %s %s %s\n", op->client, kind_name(op->kind), key,
                    op->call_ns, ret, status_name(op->status), val ? val : "-", res ? res : "-") < 0
                ? -1
                : 0;
    }
    free(key);
    free(val);
    free(res);
    return rc;
}

/* ==== the search =========================================================== */

/* The cache may not grow past this many bytes; the check then gives up. */
#define LC_CACHE_LIMIT ((size_t)1 << 30)

/* A value is known to the cache by its length and two independent 64-bit
 * hashes, both of which an append continues without rereading the value.  A
 * collision could only prune a branch (a wrong "not linearizable", odds far
 * below 2^-100 per pair); a "linearizable" verdict is always backed by an
 * order the search actually replayed. */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define POLY_MUL 0x9e3779b97f4a7c15ULL

typedef struct vhash {
    uint64_t a, b;
} vhash;

static const vhash VHASH_EMPTY = {FNV_OFFSET, 0};

static vhash vhash_more(vhash h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        h.a = (h.a ^ c) * FNV_PRIME;
        h.b = h.b * POLY_MUL + c + 1;
    }
    return h;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct ev {
    struct ev *prev, *next;
    struct ev *match; /* a call's return event */
    uint32_t op;      /* index into the key's ops */
    bool is_call;
} ev;

/* One explored (set of linearized ops, value) pair.  The ops are numbered in
 * call order, so a set is mostly a run of ones followed by a short mixed
 * stretch: only the words in between are stored (kc->lo, kc->hi). */
typedef struct centry {
    struct centry *next;
    uint64_t h; /* of the whole pair: picks the bucket */
    vhash vh;
    size_t len;
    uint32_t lo, nw; /* bits holds words lo .. lo + nw - 1 of the set */
    uint64_t bits[];
} centry;

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
} chunk;

/* One linearized op, with what it takes to undo it. */
typedef struct frame {
    ev *call;
    size_t old_len; /* the value's length before the op */
    vhash old_vh;
    size_t saved_at; /* a put saved the old value at undo.p[saved_at..] */
    bool forced;     /* a get placed without trying alternatives */
} frame;

/* A growable byte buffer. */
typedef struct bbuf {
    char *p;
    size_t n, cap;
} bbuf;

static int bbuf_reserve(bbuf *b, size_t n)
{
    if (n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int bbuf_add(bbuf *b, const char *p, size_t n)
{
    if (bbuf_reserve(b, b->n + n) != 0)
        return -1;
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

typedef struct keycheck {
    const lc_op **ops;
    size_t n;
    vhash *put_vh; /* hash of each put's value */
    ev head;
    ev *evs;
    uint64_t *zob;  /* Zobrist code of each op */
    uint64_t *bits; /* the set of ops linearized so far */
    size_t nwords;
    size_t lo, hi;  /* bits[< lo] are all ones, bits[>= hi] all zeros */
    uint64_t set_h; /* its Zobrist hash */
    centry **table;
    size_t tsize, tcount;
    chunk *arena;
    size_t arena_bytes;
    bool out_of_room;
    bbuf cur; /* the key's value after the linearized ops */
    vhash cur_vh;
    bbuf undo; /* old values saved by puts: a stack */
    frame *stack;
    size_t depth;
    /* the deepest dead end, for the explanation */
    bool have_best;
    size_t best_depth;
    uint32_t *best_prefix;
    bbuf best_value;
    uint32_t best_blocked;
    uint32_t best_cands[8];
    size_t best_ncands;
    uint32_t best_why[9]; /* why_not() of best_blocked, then of best_cands */
    /* the puts by call time, for the prefix rule (see value_fits) */
    uint32_t *puts;
    uint32_t *put_rank; /* op -> its index in puts */
    uint32_t *try_rank; /* op -> its place in the order candidates are tried */
    size_t nputs, first_put;
} keycheck;

static void *arena_alloc(keycheck *kc, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!kc->arena || kc->arena->cap - kc->arena->used < n) {
        /* small first (most keys are small), then doubling up to 1 MiB */
        size_t cap = kc->arena ? 2 * kc->arena->cap : (size_t)16 << 10;
        if (cap > ((size_t)1 << 20))
            cap = (size_t)1 << 20;
        if (cap < n)
            cap = n;
        if (kc->arena_bytes + cap > LC_CACHE_LIMIT) {
            kc->out_of_room = true;
            return NULL;
        }
        chunk *c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = kc->arena;
        c->used = 0;
        c->cap = cap;
        kc->arena = c;
        kc->arena_bytes += cap;
    }
    void *p = (char *)kc->arena->data + kc->arena->used;
    kc->arena->used += n;
    return p;
}

static int table_grow(keycheck *kc)
{
    size_t nsize = kc->tsize ? 2 * kc->tsize : 1024;
    centry **t = calloc(nsize, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < kc->tsize; i++) {
        centry *e = kc->table[i];
        while (e) {
            centry *next = e->next;
            e->next = t[e->h & (nsize - 1)];
            t[e->h & (nsize - 1)] = e;
            e = next;
        }
    }
    free(kc->table);
    kc->table = t;
    kc->tsize = nsize;
    return 0;
}

/* Looks up (kc->bits, value of length len and hash vh) in the cache.
 * Returns 1 if it was seen before, else records it and returns 0; -1 when
 * out of memory or past LC_CACHE_LIMIT. */
static int cache_visit(keycheck *kc, size_t len, vhash vh)
{
    uint64_t h = kc->set_h ^ vh.a ^ (vh.b * 0xff51afd7ed558ccdULL);
    h ^= h >> 31;
    size_t bucket = h & (kc->tsize - 1);
    const uint64_t *w = kc->bits + kc->lo;
    size_t nw = kc->hi - kc->lo;
    for (centry *e = kc->table[bucket]; e; e = e->next) {
        if (e->h == h && e->len == len && e->vh.a == vh.a && e->vh.b == vh.b && e->lo == kc->lo &&
            e->nw == nw && memcmp(e->bits, w, nw * sizeof *w) == 0)
            return 1;
    }
    centry *e = arena_alloc(kc, sizeof *e + nw * sizeof *w);
    if (!e)
        return -1;
    e->h = h;
    e->vh = vh;
    e->len = len;
    e->lo = (uint32_t)kc->lo;
    e->nw = (uint32_t)nw;
    if (nw)
        memcpy(e->bits, w, nw * sizeof *w);
    e->next = kc->table[bucket];
    kc->table[bucket] = e;
    if (++kc->tcount > kc->tsize && table_grow(kc) != 0)
        return -1;
    return 0;
}

static void lift(ev *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev; /* a call always has its return after it */
    ev *r = c->match;
    r->prev->next = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void unlift(ev *c)
{
    ev *r = c->match;
    r->prev->next = r;
    if (r->next)
        r->next->prev = r;
    c->prev->next = c;
    c->next->prev = c;
}

static void flip_bit(keycheck *kc, uint32_t i)
{
    size_t w = i / 64;
    kc->bits[w] ^= 1ULL << (i % 64);
    kc->set_h ^= kc->zob[i];
    if (kc->bits[w] >> (i % 64) & 1) {
        if (w >= kc->hi)
            kc->hi = w + 1;
        while (kc->lo < kc->nwords && kc->bits[kc->lo] == ~0ULL)
            kc->lo++;
    } else {
        if (w < kc->lo)
            kc->lo = w;
        while (kc->hi > 0 && kc->bits[kc->hi - 1] == 0)
            kc->hi--;
    }
}

typedef struct evkey {
    int64_t t;
    int late; /* return of an unknown op: after everything else */
    int is_ret;
    uint32_t op;
} evkey;

static int evkey_cmp(const void *x, const void *y)
{
    const evkey *a = x, *b = y;
    if (a->late != b->late)
        return a->late - b->late;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    if (a->is_ret != b->is_ret)
        return a->is_ret - b->is_ret;
    return a->op < b->op ? -1 : a->op > b->op;
}

static void keycheck_free(keycheck *kc)
{
    while (kc->arena) {
        chunk *c = kc->arena;
        kc->arena = c->next;
        free(c);
    }
    free(kc->put_vh);
    free(kc->puts);
    free(kc->put_rank);
    free(kc->try_rank);
    free(kc->evs);
    free(kc->zob);
    free(kc->bits);
    free(kc->table);
    free(kc->cur.p);
    free(kc->undo.p);
    free(kc->stack);
    free(kc->best_prefix);
    free(kc->best_value.p);
}

static int keycheck_init(keycheck *kc, const lc_op **ops, size_t n)
{
    memset(kc, 0, sizeof *kc);
    kc->ops = ops;
    kc->n = n;
    kc->nwords = (n + 63) / 64;
    kc->put_vh = malloc(n * sizeof *kc->put_vh);
    kc->puts = malloc(n * sizeof *kc->puts);
    kc->put_rank = malloc(n * sizeof *kc->put_rank);
    kc->try_rank = malloc(n * sizeof *kc->try_rank);
    kc->evs = calloc(2 * n, sizeof *kc->evs);
    kc->zob = malloc(n * sizeof *kc->zob);
    kc->bits = calloc(kc->nwords, sizeof *kc->bits);
    kc->stack = malloc(n * sizeof *kc->stack);
    kc->best_prefix = malloc(n * sizeof *kc->best_prefix);
    kc->cur_vh = VHASH_EMPTY;
    evkey *keys = malloc(2 * n * sizeof *keys);
    ev **call_of = malloc(n * sizeof *call_of);
    /* cur.p is never NULL, so memcmp() against an empty value is defined */
    if (bbuf_reserve(&kc->cur, 256) != 0 || !kc->put_vh || !kc->puts || !kc->put_rank ||
        !kc->try_rank || !kc->evs || !kc->zob || !kc->bits || !kc->stack || !kc->best_prefix ||
        !keys || !call_of || table_grow(kc) != 0) {
        free(keys);
        free(call_of);
        return -1;
    }
    uint64_t seed = 0x6c696e636865636bULL;
    for (size_t i = 0; i < n; i++) {
        kc->zob[i] = splitmix(&seed);
        if (ops[i]->kind == LC_PUT)
            kc->put_vh[i] = vhash_more(VHASH_EMPTY, ops[i]->value, ops[i]->value_len);
        keys[2 * i] = (evkey){ops[i]->call_ns, 0, 0, (uint32_t)i};
        bool late = ops[i]->status == LC_UNKNOWN;
        keys[2 * i + 1] = (evkey){late ? 0 : ops[i]->ret_ns, late, 1, (uint32_t)i};
    }
    qsort(keys, 2 * n, sizeof *keys, evkey_cmp);
    ev *prev = &kc->head;
    for (size_t i = 0; i < 2 * n; i++) {
        ev *e = &kc->evs[i];
        e->op = keys[i].op;
        e->is_call = !keys[i].is_ret;
        if (e->is_call)
            call_of[e->op] = e;
        else
            call_of[e->op]->match = e; /* the call sorts first (call <= return) */
        e->prev = prev;
        prev->next = e;
        prev = e;
    }
    prev->next = NULL;
    /* Try candidates by earliest return first (unknown ones last): the op
     * whose deadline is nearest is the likeliest to have taken effect
     * first.  Any order is correct, as all candidates get their turn. */
    uint32_t r = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        if (keys[i].is_ret)
            kc->try_rank[keys[i].op] = r++;
    }
    for (size_t i = 0; i < 2 * n; i++) {
        if (keys[i].is_ret || ops[keys[i].op]->kind != LC_PUT)
            continue;
        kc->put_rank[keys[i].op] = (uint32_t)kc->nputs;
        kc->puts[kc->nputs++] = keys[i].op;
    }
    free(keys);
    free(call_of);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool is_linearized(const keycheck *kc, uint32_t op)
{
    return kc->bits[op / 64] >> (op % 64) & 1;
}

/* Could a put that is still to be linearized explain what get g read?  Such
 * a put must have been called by g's return and its value start g's result. */
static bool pending_put_explains(keycheck *kc, const lc_op *g)
{
    for (size_t i = kc->first_put; i < kc->nputs; i++) {
        const lc_op *p = kc->ops[kc->puts[i]];
        if (p->call_ns > g->ret_ns)
            break;
        if (!is_linearized(kc, kc->puts[i]) && p->value_len <= g->result_len &&
            memcmp(p->value, g->result, p->value_len) == 0)
            return true;
    }
    return false;
}

/* The prefix rule, a pruning specific to this model.  Every get g still to be
 * linearized comes after the current value in the order being built, and
 * between two puts the value only grows.  So g reads either the current value
 * followed by appends, or what some put still to be linearized (called by
 * g's return) wrote followed by appends.  If no such put's value starts g's
 * result, the current value must.  Checked after each write against the
 * nearest gets, this notices a wrong order of concurrent writes as soon as a
 * get that saw the right one is known, instead of after trying every order
 * of the ops that follow.  The new value is a ++ b. */
#ifndef LC_PREFIX_GETS
#define LC_PREFIX_GETS 16
#endif

static bool value_fits(keycheck *kc, const char *a, size_t an, const char *b, size_t bn,
                       uint32_t *why)
{
    while (kc->first_put < kc->nputs && is_linearized(kc, kc->puts[kc->first_put]))
        kc->first_put++;
    int checked = 0;
    for (const ev *e = kc->head.next; e && checked < LC_PREFIX_GETS; e = e->next) {
        const lc_op *g = kc->ops[e->op];
        if (!e->is_call || g->kind != LC_GET)
            continue;
        checked++;
        if (g->result_len >= an + bn && memcmp(g->result, a, an) == 0 &&
            (bn == 0 || memcmp(g->result + an, b, bn) == 0))
            continue;
        if (!pending_put_explains(kc, g)) {
            if (why)
                *why = e->op;
            return false;
        }
    }
    return true;
}

/* Is a ++ b a dead value, one that no get can read before a put replaces it?
 * A get placed before the next put reads the value followed by appends, so
 * the value is dead when it starts the result of no get that can come before
 * every put still to be linearized.  That excludes the gets called after the
 * return of such a put: in the time-ordered list they follow its return
 * event, where the scan stops.  All dead values have the same future (only
 * appends and puts can follow, and the first put erases the difference), so
 * the cache keeps them as one: this stops the search from trying every order
 * of appends that a put overwrote unseen.  `self` is the op being placed. */
#ifndef LC_DEAD_SCAN
#define LC_DEAD_SCAN 64
#endif

static bool value_is_dead(keycheck *kc, const char *a, size_t an, const char *b, size_t bn,
                          uint32_t self)
{
    int checked = 0;
    for (const ev *e = kc->head.next; e; e = e->next) {
        const lc_op *o = kc->ops[e->op];
        if (e->op == self)
            continue;
        if (!e->is_call) {
            if (o->kind == LC_PUT)
                return true;
            continue;
        }
        if (o->kind != LC_GET)
            continue;
        if (++checked > LC_DEAD_SCAN)
            return false; /* not worth knowing: "alive" is always safe */
        if (o->result_len >= an + bn && memcmp(o->result, a, an) == 0 &&
            (bn == 0 || memcmp(o->result + an, b, bn) == 0))
            return false;
    }
    return true;
}

/* Why op (pending) cannot be placed next: WHY_READS for a get that would read
 * something else, the index of the get that the prefix rule saw it conflict
 * with, or WHY_LATER when it fits but everything after it failed. */
#define WHY_LATER UINT32_MAX
#define WHY_READS (UINT32_MAX - 1)

static uint32_t why_not(keycheck *kc, uint32_t op)
{
    const lc_op *o = kc->ops[op];
    uint32_t why = WHY_LATER;
    if (o->kind == LC_GET) {
        if (o->result_len != kc->cur.n || memcmp(o->result, kc->cur.p, kc->cur.n) != 0)
            why = WHY_READS;
    } else if (o->kind == LC_PUT) {
        value_fits(kc, o->value, o->value_len, NULL, 0, &why);
    } else {
        value_fits(kc, kc->cur.p, kc->cur.n, o->value, o->value_len, &why);
    }
    return why;
}

/* Remembers the deepest dead end for the explanation: the ops placed, the
 * value, the op whose return was reached while pending, and the others. */
static void record_dead_end(keycheck *kc, const ev *ret)
{
    if (kc->have_best && kc->depth <= kc->best_depth)
        return;
    kc->best_value.n = 0;
    if (bbuf_add(&kc->best_value, kc->cur.p, kc->cur.n) != 0)
        return; /* the explanation will lack it; the verdict does not */
    kc->have_best = true;
    kc->best_depth = kc->depth;
    for (size_t i = 0; i < kc->depth; i++)
        kc->best_prefix[i] = kc->stack[i].call->op;
    kc->best_blocked = ret->op;
    kc->best_why[0] = why_not(kc, ret->op);
    kc->best_ncands = 0;
    for (const ev *e = kc->head.next; e != ret; e = e->next) {
        if (e->is_call && e->op != ret->op && kc->best_ncands < 8) {
            kc->best_cands[kc->best_ncands++] = e->op;
            kc->best_why[kc->best_ncands] = why_not(kc, e->op);
        }
    }
}

/* Linearizes the op of call event e on top of the current value, if it is
 * legal there and the outcome is new to the cache.  Returns 1 if done, 0 if
 * not, -1 when out of memory or room. */
static int try_op(keycheck *kc, ev *e)
{
    const lc_op *op = kc->ops[e->op];
    size_t len = kc->cur.n;
    vhash vh = kc->cur_vh;
    switch (op->kind) {
    case LC_PUT:
        if (!value_fits(kc, op->value, op->value_len, NULL, 0, NULL))
            return 0;
        len = op->value_len;
        vh = kc->put_vh[e->op];
        break;
    case LC_APPEND:
        if (!value_fits(kc, kc->cur.p, kc->cur.n, op->value, op->value_len, NULL))
            return 0;
        len += op->value_len;
        vh = vhash_more(vh, op->value, op->value_len);
        break;
    case LC_GET:
        if (op->result_len != kc->cur.n || memcmp(op->result, kc->cur.p, kc->cur.n) != 0)
            return 0;
        break;
    }
    size_t klen = len;
    vhash kvh = vh;
    if (op->kind != LC_GET && value_is_dead(kc, op->kind == LC_PUT ? op->value : kc->cur.p,
                                            op->kind == LC_PUT ? op->value_len : kc->cur.n,
                                            op->kind == LC_PUT ? NULL : op->value,
                                            op->kind == LC_PUT ? 0 : op->value_len, e->op)) {
        klen = SIZE_MAX; /* one cache entry for all dead values */
        kvh = (vhash){0, 0};
    }
    flip_bit(kc, e->op);
    int seen = cache_visit(kc, klen, kvh);
    if (seen != 0) {
        flip_bit(kc, e->op);
        return seen < 0 ? -1 : 0;
    }
    frame f = {e, kc->cur.n, kc->cur_vh, kc->undo.n, false};
    if (op->kind == LC_PUT) {
        if (bbuf_add(&kc->undo, kc->cur.p, kc->cur.n) != 0)
            return -1;
        kc->cur.n = 0;
    }
    if (op->kind != LC_GET && bbuf_add(&kc->cur, op->value, op->value_len) != 0)
        return -1;
    kc->cur_vh = vh;
    kc->stack[kc->depth++] = f;
    lift(e);
    return 1;
}

/* Undoes the last linearized op; returns its frame. */
static frame undo_last(keycheck *kc)
{
    frame f = kc->stack[--kc->depth];
    const lc_op *op = kc->ops[f.call->op];
    if (op->kind == LC_PUT) {
        /* the saved value is the top of the undo stack; cur has room for it */
        size_t n = kc->undo.n - f.saved_at;
        assert(n == f.old_len && kc->cur.cap >= n);
        if (n)
            memcpy(kc->cur.p, kc->undo.p + f.saved_at, n);
        kc->undo.n = f.saved_at;
    }
    kc->cur.n = f.old_len;
    kc->cur_vh = f.old_vh;
    flip_bit(kc, f.call->op);
    if (op->kind == LC_PUT && kc->put_rank[f.call->op] < kc->first_put)
        kc->first_put = kc->put_rank[f.call->op];
    unlift(f.call);
    return f;
}

/* A get whose result is the current value, among the pending ops (the calls
 * before the first return), or NULL. */
static ev *legal_get(keycheck *kc)
{
    for (ev *e = kc->head.next; e && e->is_call; e = e->next) {
        const lc_op *g = kc->ops[e->op];
        if (g->kind == LC_GET && g->result_len == kc->cur.n &&
            memcmp(g->result, kc->cur.p, kc->cur.n) == 0)
            return e;
    }
    return NULL;
}

/* The pending op to try after `after` (NULL: the first), in try_rank order,
 * or NULL when all have been tried.  Pending ops are the calls before the
 * first return event in the list; *ret receives that return event. */
static ev *next_candidate(keycheck *kc, const ev *after, ev **ret)
{
    uint32_t floor = after ? kc->try_rank[after->op] : 0;
    bool strict = after != NULL;
    ev *best = NULL, *e;
    for (e = kc->head.next; e->is_call; e = e->next) {
        uint32_t r = kc->try_rank[e->op];
        if ((r > floor || (!strict && r == floor)) && (!best || r < kc->try_rank[best->op]))
            best = e;
    }
    *ret = e;
    return best;
}

/* Returns LC_LINEARIZABLE, LC_NOT_LINEARIZABLE, LC_GAVE_UP or LC_ERROR.
 *
 * Besides the cache, one dominance rule: a pending get that reads the current
 * value is placed at once, and no alternative to it is ever tried.  Any
 * linearization from here that places that get later stays one when the get
 * moves up to here: it reads the same value, and nothing pending returned
 * before it was called (its call precedes the first pending return). */
static lc_verdict search(keycheck *kc, double deadline_ms)
{
    ev *last = NULL;   /* the candidate tried last at this node */
    bool fresh = true; /* at a new node of the search tree */
    unsigned long steps = 0;
    for (;;) {
        if (!kc->head.next)
            return LC_LINEARIZABLE;
        if (deadline_ms > 0 && (++steps & 0x3fff) == 0 && now_ms() > deadline_ms)
            return LC_GAVE_UP;
        if (fresh) {
            ev *g = legal_get(kc);
            if (g) {
                int rc = try_op(kc, g);
                if (rc < 0)
                    return kc->out_of_room ? LC_GAVE_UP : LC_ERROR;
                if (rc > 0) {
                    kc->stack[kc->depth - 1].forced = true;
                    continue;
                }
                goto backtrack; /* explored before from here, in vain */
            }
            fresh = false;
            last = NULL;
        }
        ev *ret;
        ev *c = next_candidate(kc, last, &ret);
        if (c) {
            int rc = try_op(kc, c);
            if (rc < 0)
                return kc->out_of_room ? LC_GAVE_UP : LC_ERROR;
            if (rc > 0)
                fresh = true;
            else
                last = c;
            continue;
        }
        if (kc->ops[ret->op]->status == LC_UNKNOWN) {
            /* Unknown returns sort last: every op with a known outcome is
             * placed, and the unknown ones left over never took effect. */
            return LC_LINEARIZABLE;
        }
        /* ret's op is still pending at its return: undo the last choice and
         * try the next candidate after it. */
        record_dead_end(kc, ret);
    backtrack:;
        frame f;
        do {
            if (kc->depth == 0)
                return LC_NOT_LINEARIZABLE;
            f = undo_last(kc);
        } while (f.forced);
        last = f.call;
    }
}

/* ==== explanation ========================================================== */

static void put_bytes(FILE *f, const char *p, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
    }
    fputc('"', f);
}

/* Long values (appends pile up) are shown by their ends, which is where a
 * lost or doubled append shows. */
static void put_value(FILE *f, const char *p, size_t n)
{
    if (n <= 120) {
        put_bytes(f, p, n);
        return;
    }
    put_bytes(f, p, 30);
    fputs(" ... ", f);
    put_bytes(f, p + n - 80, 80);
    fprintf(f, " (%zu bytes)", n);
}

static void put_op(FILE *f, const lc_op *op)
{
    fprintf(f, "%s %s(", op->client, kind_name(op->kind));
    put_value(f, op->key, op->key_len);
    if (op->kind != LC_GET) {
        fputs(", ", f);
        put_value(f, op->value, op->value_len);
    }
    fputc(')', f);
    if (op->kind == LC_GET && op->status == LC_OK) {
        fputs(" -> ", f);
        put_value(f, op->result, op->result_len);
    }
    if (op->status == LC_UNKNOWN)
        fprintf(f, " called %" PRId64 ", outcome unknown", op->call_ns);
    else
        fprintf(f, " [%" PRId64 " .. %" PRId64 "] %s", op->call_ns, op->ret_ns,
                status_name(op->status));
    if (op->file)
        fprintf(f, "  (%s:%d)", op->file, op->line);
}

static void put_why(FILE *f, const keycheck *kc, uint32_t why)
{
    if (why == WHY_READS) {
        fputs("      (here it would read the value above, not what it returned)\n", f);
    } else if (why == WHY_LATER) {
        fputs("      (it fits here, but every way on from there fails later)\n", f);
    } else {
        fputs("      (after it, this get could never read what it returned, which neither\n"
              "       extends that value nor starts with what a put still to come writes:\n       ",
              f);
        put_op(f, kc->ops[why]);
        fputs(")\n", f);
    }
}

static void explain_key(FILE *f, const keycheck *kc)
{
    const lc_op *first = kc->ops[0];
    fputs("key ", f);
    put_value(f, first->key, first->key_len);
    fprintf(f, " (%zu ops on this key)\n", kc->n);
    if (!kc->have_best)
        return;
    size_t d = kc->best_depth;
    fprintf(f, "  longest linearizable prefix found: %zu ops", d);
    if (d == 0) {
        fputs(" (none)\n", f);
    } else {
        size_t from = d > 10 ? d - 10 : 0;
        fprintf(f, "; %s, in linearization order:\n", from ? "the last 10" : "all of them");
        for (size_t i = from; i < d; i++) {
            fprintf(f, "    %4zu. ", i + 1);
            put_op(f, kc->ops[kc->best_prefix[i]]);
            fputc('\n', f);
        }
    }
    fputs("  value after that prefix: ", f);
    put_value(f, kc->best_value.p, kc->best_value.n);
    fputc('\n', f);
    fputs("  the op that must take effect next (its return comes first), but cannot:\n    ", f);
    put_op(f, kc->ops[kc->best_blocked]);
    fputc('\n', f);
    put_why(f, kc, kc->best_why[0]);
    if (kc->best_ncands) {
        fputs("  the other ops pending then, none of which could go next either:\n", f);
        for (size_t i = 0; i < kc->best_ncands; i++) {
            fputs("    ", f);
            put_op(f, kc->ops[kc->best_cands[i]]);
            fputc('\n', f);
            put_why(f, kc, kc->best_why[i + 1]);
        }
    }
}

/* ==== driver =============================================================== */

static int cmp_by_key(const void *x, const void *y)
{
    const lc_op *a = *(const lc_op *const *)x, *b = *(const lc_op *const *)y;
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    if (c)
        return c;
    if (a->key_len != b->key_len)
        return a->key_len < b->key_len ? -1 : 1;
    return a < b ? -1 : a > b; /* keep history order: deterministic output */
}

void lc_result_free(lc_result *res)
{
    free(res->explanation);
    res->explanation = NULL;
}

static int cmp_by_call(const void *x, const void *y)
{
    const lc_op *a = *(const lc_op *const *)x, *b = *(const lc_op *const *)y;
    if (a->call_ns != b->call_ns)
        return a->call_ns < b->call_ns ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* An unknown put or append that no get can have observed is dropped before
 * the search.  Had it taken effect, every get after it and before the next put
 * would show its value (an append's as a substring, a put's as a prefix); if
 * no get does, every linearization that contains it stays one without it.
 * Otherwise the search would try each such write, which most likely never
 * happened, at every point of the history. */
static bool unobservable(const lc_op *u, const lc_op *const *ops, size_t n)
{
    if (u->status != LC_UNKNOWN || u->kind == LC_GET)
        return false;
    if (u->kind == LC_APPEND && u->value_len == 0)
        return true; /* changes nothing */
    for (size_t i = 0; i < n; i++) {
        const lc_op *g = ops[i];
        if (g->kind != LC_GET || g->ret_ns < u->call_ns)
            continue;
        if (u->kind == LC_PUT
                ? g->result_len >= u->value_len && memcmp(g->result, u->value, u->value_len) == 0
                : memmem(g->result, g->result_len, u->value, u->value_len) != NULL)
            return false;
    }
    return true;
}

/* Checks the ops of one key; explains a failure into out (in full if first).
 * Sets *no_room when giving up for lack of memory rather than time. */
static lc_verdict check_key(const lc_op **ops, size_t n, double deadline, bool first, FILE *out,
                            bool *no_room)
{
    const lc_op **keep = malloc(n * sizeof *keep);
    if (!keep)
        return LC_ERROR;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!unobservable(ops[i], ops, n))
            keep[m++] = ops[i];
    }
    qsort(keep, m, sizeof *keep, cmp_by_call);
    lc_verdict v;
    keycheck kc;
    if (m == 0) {
        v = LC_LINEARIZABLE;
    } else if (deadline > 0 && now_ms() > deadline) {
        v = LC_GAVE_UP;
    } else if (keycheck_init(&kc, keep, m) != 0) {
        v = LC_ERROR;
        keycheck_free(&kc);
    } else {
        v = search(&kc, deadline);
        *no_room = kc.out_of_room;
        if (v == LC_NOT_LINEARIZABLE && first) {
            explain_key(out, &kc);
        } else if (v == LC_NOT_LINEARIZABLE) {
            fputs("also not linearizable: key ", out);
            put_value(out, ops[0]->key, ops[0]->key_len);
            fprintf(out, " (%zu ops)\n", m);
        }
        keycheck_free(&kc);
    }
    free(keep);
    return v;
}

lc_verdict lc_check(const lc_history *h, long timeout_ms, lc_result *res)
{
    memset(res, 0, sizeof *res);
    double t0 = now_ms();
    double deadline = timeout_ms > 0 ? t0 + (double)timeout_ms : 0;
    const lc_op **ops = malloc((h->n ? h->n : 1) * sizeof *ops);
    char *text = NULL;
    size_t textlen = 0;
    FILE *out = open_memstream(&text, &textlen);
    if (!ops || !out) {
        free(ops);
        if (out)
            fclose(out);
        free(text);
        res->verdict = LC_ERROR;
        return LC_ERROR;
    }
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++) {
        const lc_op *op = &h->ops[i];
        if (op->status == LC_FAIL || (op->kind == LC_GET && op->status == LC_UNKNOWN))
            continue; /* definitely did not happen / tells nothing */
        ops[n++] = op;
    }
    qsort(ops, n, sizeof *ops, cmp_by_key);
    res->nops = n;

    bool error = false;
    size_t gave_up = 0;
    const lc_op *first_unchecked = NULL;
    bool no_room = false;
    for (size_t i = 0; i < n && !error;) {
        size_t j = i + 1;
        while (j < n && ops[j]->key_len == ops[i]->key_len &&
               memcmp(ops[j]->key, ops[i]->key, ops[i]->key_len) == 0)
            j++;
        res->nkeys++;
        bool key_no_room = false;
        lc_verdict v =
            check_key(ops + i, j - i, deadline, res->nfailed_keys == 0, out, &key_no_room);
        if (v == LC_ERROR) {
            error = true;
        } else if (v == LC_NOT_LINEARIZABLE) {
            res->nfailed_keys++;
        } else if (v == LC_GAVE_UP && gave_up++ == 0) {
            first_unchecked = ops[i];
            no_room = key_no_room;
        }
        i = j;
    }
    if (gave_up) {
        fprintf(out, "gave up at the %s on key ",
                no_room ? "memory limit of the search" : "time limit");
        put_value(out, first_unchecked->key, first_unchecked->key_len);
        fprintf(out, ": %zu of %zu keys left unchecked\n", gave_up, res->nkeys);
    }
    free(ops);
    fclose(out);
    res->ms = now_ms() - t0;
    if (error)
        res->verdict = LC_ERROR;
    else if (res->nfailed_keys)
        res->verdict = LC_NOT_LINEARIZABLE;
    else if (gave_up)
        res->verdict = LC_GAVE_UP;
    else
        res->verdict = LC_LINEARIZABLE;
    if (res->verdict == LC_LINEARIZABLE || textlen == 0) {
        free(text);
        text = NULL;
    }
    res->explanation = text;
    return res->verdict;
}
