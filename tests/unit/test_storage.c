/*
 * test_storage.c — durable storage (raftkv/storage.c) and CRC32C.
 *
 * Round trips of every record kind, conflicting-suffix overwrite, compaction,
 * identity and locking, corruption of several kinds, crash safety under
 * SIGKILL, a full disk (a size-limited tmpfs mounted for the test: needs
 * root), a read-only medium, a large zstd snapshot round trip, and the
 * background snapshot writer.  Snapshots are written and read the way the
 * node does: with the background writer (st_bgsnap_*), received frames
 * through st_save_ready, and the state read back through st_snap_reader.
 *
 * HSTORE_TEST_MODE: normal | asan (smaller snapshot) | long (more kills).
 * HSTORE_TEST_SEED replays the randomized tests (the seed is printed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "raftkv/crc32c.h"
#include "raftkv/storage.h"

/* ---- helpers ------------------------------------------------------------------- */

static const char *mode(void)
{
    const char *m = getenv("HSTORE_TEST_MODE");
    return m ? m : "normal";
}
static bool mode_is(const char *m)
{
    return strcmp(mode(), m) == 0;
}

static uint64_t g_seed;

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: small, good enough for test data */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}
static void rm_rf(const char *p)
{
    nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

typedef struct fixture {
    char base[200];
    char mnt[220];
    char dir[240];
    char db[260];
    bool mounted;
} fixture;

static int setup_dir(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 150)
        tmp = "/tmp";
    snprintf(f->base, sizeof f->base, "%s/hstore-st-XXXXXX", tmp);
    if (!mkdtemp(f->base)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/data", f->base);
    snprintf(f->db, sizeof f->db, "%s/%s", f->dir, ST_DB_NAME);
    *state = f;
    return 0;
}

static int teardown_dir(void **state)
{
    fixture *f = *state;
    if (f->mounted)
        umount2(f->mnt, MNT_DETACH);
    rm_rf(f->base);
    free(f);
    return 0;
}

static st_store *open_ok(const char *dir)
{
    st_store *s = NULL;
    char err[512] = "";
    int rc = st_open(dir, &s, err, sizeof err);
    if (rc != 0)
        fail_msg("st_open(%s): %d %s", dir, rc, err);
    return s;
}

/* Deterministic entry contents from (index, term).  About one entry in 11
 * is large enough (ST_BLOB_MIN and up) to keep its bytes in a segment file,
 * so every test below mixes both kinds of record. */
#define ENT_MAX (4 * ST_BLOB_MIN) /* the largest entry the checks compare */
static uint8_t g_ent_buf[ENT_MAX];
static uint32_t ent_len(uint64_t index, uint64_t term)
{
    uint32_t small = (uint32_t)((index * 7 + term * 13) % 300);
    return (index * 5 + term * 3) % 11 == 0 ? ST_BLOB_MIN + small * 97 : small;
}
static uint8_t ent_type(uint64_t index, uint64_t term)
{
    return (uint8_t)((index + term) % 3);
}
static void ent_fill(uint8_t *p, uint32_t len, uint64_t index, uint64_t term)
{
    uint64_t s = index * 1000003 + term;
    for (uint32_t i = 0; i < len; i++) {
        if ((i & 7) == 0)
            s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(s >> (8 * (i & 7)));
    }
}

/* Builds n entries from `first` with term `term` (data owned by the array). */
static raft_entry *make_entries(uint64_t first, size_t n, uint64_t term)
{
    raft_entry *e = calloc(n ? n : 1, sizeof *e);
    for (size_t i = 0; i < n; i++) {
        e[i].index = first + i;
        e[i].term = term;
        e[i].type = ent_type(e[i].index, term);
        e[i].len = ent_len(e[i].index, term);
        e[i].data = e[i].len ? malloc(e[i].len) : NULL;
        ent_fill(e[i].data, e[i].len, e[i].index, term);
    }
    return e;
}
static void free_entries(raft_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].data);
    free(e);
}

static void save_entries(st_store *s, uint64_t first, size_t n, uint64_t term)
{
    raft_entry *e = make_entries(first, n, term);
    raft_ready rd = {.entries = e, .n_entries = n};
    char err[512];
    int rc = st_save_ready(s, &rd, err, sizeof err);
    free_entries(e, n);
    if (rc)
        fail_msg("save %llu+%zu: %s", (unsigned long long)first, n, err);
}

/* Checks boot entries are (lo..hi) with term term_of(index). */
static void check_entries(const raft_boot *b, uint64_t lo, uint64_t hi,
                          uint64_t (*term_of)(uint64_t))
{
    assert_int_equal(b->n_entries, hi >= lo ? hi - lo + 1 : 0);
    for (size_t i = 0; i < b->n_entries; i++) {
        const raft_entry *e = &b->entries[i];
        uint64_t t = term_of(lo + i);
        assert_int_equal(e->index, lo + i);
        assert_int_equal(e->term, t);
        assert_int_equal(e->type, ent_type(e->index, t));
        assert_int_equal(e->len, ent_len(e->index, t));
        uint8_t *buf = g_ent_buf;
        ent_fill(buf, e->len, e->index, t);
        if (e->len)
            assert_memory_equal(e->data, buf, e->len);
    }
}

/* A stored-form frame of data, as a leader sends it (a zstd frame with
 * content checksum); malloc'ed, its length in *flen. */
static uint8_t *frame_of(const void *data, size_t len, size_t *flen)
{
    size_t cap = ZSTD_compressBound(len);
    uint8_t *f = malloc(cap);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    assert_non_null(f);
    assert_non_null(c);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    *flen = ZSTD_compress2(c, f, cap, len ? data : "", len);
    assert_false(ZSTD_isError(*flen));
    ZSTD_freeCCtx(c);
    return f;
}

/* Stores sn as the node takes a snapshot: the background writer, here all
 * in the caller's thread (begin, write in pieces, finish, commit). */
static int save_snapshot(st_store *s, const raft_snapshot *sn, char *err, size_t errlen)
{
    st_snap_writer *w;
    int rc = st_bgsnap_begin(s, sn->index, sn->term, &w, err, errlen);
    if (rc)
        return rc;
    for (size_t o = 0; o < sn->len && !rc; o += 100000)
        rc = st_bgsnap_write(w, sn->data + o, sn->len - o < 100000 ? sn->len - o : 100000, err,
                             errlen);
    if (!rc)
        rc = st_bgsnap_finish(w, err, errlen);
    if (rc) {
        st_bgsnap_abort(w);
        return rc;
    }
    return st_bgsnap_commit(w, &sn->conf, err, errlen);
}

/* Loads as the node starts: st_load_stored, then the snapshot's state through
 * a stream reader of the store, put into boot->snapshot.data/len (freed by
 * st_boot_free) for the tests to compare.  The state's length is found first
 * by decoding the stored form (st_snap_stored_read, checksums verified). */
static int load(st_store *s, raft_boot *b, char *err, size_t errlen)
{
    int rc = st_load_stored(s, b, err, errlen);
    if (rc || b->snapshot.index == 0)
        return rc;
    size_t flen = b->snapshot.len, raw = 0;
    uint8_t *frame = malloc(flen ? flen : 1);
    rc = st_snap_stored_read(s, b->snapshot.index, 0, frame, flen, err, errlen);
    if (!rc) {
        ZSTD_DCtx *d = ZSTD_createDCtx();
        uint8_t *scratch = malloc(1 << 16);
        ZSTD_inBuffer in = {frame, flen, 0};
        size_t left = 1;
        while (in.pos < in.size && left != 0) {
            ZSTD_outBuffer out = {scratch, 1 << 16, 0};
            left = ZSTD_decompressStream(d, &out, &in);
            if (ZSTD_isError(left)) {
                rc = ST_ECORRUPT;
                snprintf(err, errlen, "stored snapshot at index %llu: %s",
                         (unsigned long long)b->snapshot.index, ZSTD_getErrorName(left));
                break;
            }
            raw += out.pos;
        }
        free(scratch);
        ZSTD_freeDCtx(d);
    }
    free(frame);
    uint8_t *data = NULL;
    if (!rc) {
        data = malloc(raw ? raw : 1);
        st_snap_reader *rd;
        rc = st_snap_reader_open(s, &rd, err, errlen);
        if (!rc) {
            int got = st_snap_read(rd, data, raw);
            int crc = st_snap_reader_close(rd, err, errlen);
            rc = crc ? crc : got ? ST_ECORRUPT : 0;
        }
    }
    if (rc) {
        free(data);
        st_boot_free(b);
        return rc;
    }
    b->snapshot.len = raw;
    b->snapshot.data = raw ? data : NULL;
    if (!raw)
        free(data);
    return 0;
}

static raft_conf make_conf(uint32_t n)
{
    raft_conf c;
    memset(&c, 0, sizeof c);
    c.n = n;
    for (uint32_t i = 0; i < n; i++) {
        c.ids[i] = i + 1;
        snprintf(c.addrs[i], RAFT_ADDR_MAX, "10.0.0.%u:%u", i + 1, 7000 + i);
    }
    return c;
}

static void assert_conf_equal(const raft_conf *a, const raft_conf *b)
{
    assert_int_equal(a->n, b->n);
    for (uint32_t i = 0; i < a->n; i++) {
        assert_int_equal(a->ids[i], b->ids[i]);
        assert_string_equal(a->addrs[i], b->addrs[i]);
    }
}

/* ---- CRC32C ----------------------------------------------------------------------- */

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c(0, "", 0), 0);
    uint8_t buf[4096 + 16];
    uint64_t r = 42;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rng_next(&r);
    /* Every alignment and many lengths: fast path == software path, and
     * chaining over a split equals the whole. */
    for (size_t off = 0; off < 16; off++)
        for (size_t len = 0; len < 300; len += 1 + len / 8) {
            uint32_t a = crc32c(0, buf + off, len);
            assert_int_equal(a, crc32c_sw(0, buf + off, len));
            size_t cut = len / 3;
            assert_int_equal(a, crc32c(crc32c(0, buf + off, cut), buf + off + cut, len - cut));
        }
    assert_int_equal(crc32c(0, buf, 4096), crc32c_sw(0, buf, 4096));
    buf[100] ^= 1;
    assert_int_not_equal(crc32c(0, buf, 4096), crc32c_sw(0, buf + 1, 4095));
}

/* ---- round trips -------------------------------------------------------------------- */

static uint64_t term_1(uint64_t i)
{
    (void)i;
    return 1;
}

static void test_fresh_store(void **state)
{
    fixture *f = *state;
    st_store *s = open_ok(f->dir);
    raft_boot b;
    char err[512];
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.hs.term, 0);
    assert_int_equal(b.hs.vote, 0);
    assert_int_equal(b.hs.commit, 0);
    assert_int_equal(b.snapshot.index, 0);
    assert_int_equal(b.snapshot.conf.n, 0);
    assert_null(b.snapshot.data);
    assert_int_equal(b.n_entries, 0);
    assert_int_equal(st_last_index(s), 0);
    assert_int_equal(st_first_index(s), 1);
    st_boot_free(&b);
    st_close(s);
    /* Reopening the empty store is fine too. */
    s = open_ok(f->dir);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.n_entries, 0);
    st_boot_free(&b);
    st_close(s);
}

static void test_round_trip(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    /* Hard state alone, then entries of each type (incl. empty data). */
    raft_ready rd = {.hs_changed = true, .hs = {7, 3, 0}};
    assert_int_equal(st_save_ready(s, &rd, err, sizeof err), 0);
    uint8_t conf_data[] = {1, 2, 3, 4, 5};
    raft_entry e[4] = {
        {.term = 7, .index = 1, .type = RAFT_ENTRY_NOOP, .len = 0, .data = NULL},
        {.term = 7, .index = 2, .type = RAFT_ENTRY_NORMAL, .len = 5, .data = (uint8_t *)"hello"},
        {.term = 7,
         .index = 3,
         .type = RAFT_ENTRY_CONF,
         .len = sizeof conf_data,
         .data = conf_data},
        {.term = 7, .index = 4, .type = RAFT_ENTRY_NORMAL, .len = 1, .data = (uint8_t *)"x"},
    };
    rd = (raft_ready){.hs_changed = true, .hs = {7, 3, 2}, .entries = e, .n_entries = 4};
    assert_int_equal(st_save_ready(s, &rd, err, sizeof err), 0);
    assert_int_equal(st_last_index(s), 4);
    assert_int_equal(st_log_bytes(s), 11);
    st_close(s);

    s = open_ok(f->dir);
    assert_int_equal(st_last_index(s), 4);
    assert_int_equal(st_log_bytes(s), 11);
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.hs.term, 7);
    assert_int_equal(b.hs.vote, 3);
    assert_int_equal(b.hs.commit, 2);
    assert_int_equal(b.n_entries, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(b.entries[i].index, e[i].index);
        assert_int_equal(b.entries[i].term, e[i].term);
        assert_int_equal(b.entries[i].type, e[i].type);
        assert_int_equal(b.entries[i].len, e[i].len);
        if (e[i].len)
            assert_memory_equal(b.entries[i].data, e[i].data, e[i].len);
    }
    st_boot_free(&b);

    /* Snapshot with configuration and data. */
    raft_snapshot sn = {.index = 3,
                        .term = 7,
                        .conf = make_conf(3),
                        .data = (uint8_t *)"state-machine-bytes",
                        .len = 19};
    assert_int_equal(save_snapshot(s, &sn, err, sizeof err), 0);
    assert_int_equal(st_snapshot_index(s), 3);
    assert_int_equal(st_snapshot_term(s), 7);
    assert_int_equal(st_first_index(s), 4);
    assert_int_equal(st_log_bytes(s), 1);
    st_close(s);
    s = open_ok(f->dir);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.snapshot.index, 3);
    assert_int_equal(b.snapshot.term, 7);
    assert_int_equal(b.snapshot.len, 19);
    assert_memory_equal(b.snapshot.data, "state-machine-bytes", 19);
    raft_conf want = make_conf(3);
    assert_conf_equal(&b.snapshot.conf, &want);
    assert_int_equal(b.n_entries, 1);
    assert_int_equal(b.entries[0].index, 4);
    assert_memory_equal(b.entries[0].data, "x", 1);
    assert_int_equal(b.hs.commit, 2);
    st_boot_free(&b);

    st_close(s);
}

static void test_conflict_overwrite(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    /* Rows 1..4, 5..8, 9..12 with term 1. */
    save_entries(s, 1, 4, 1);
    save_entries(s, 5, 4, 1);
    save_entries(s, 9, 4, 1);
    /* Conflict inside the middle row: 7.. replaced by term 2 (7..9). */
    save_entries(s, 7, 3, 2);
    assert_int_equal(st_last_index(s), 9);
    /* Conflict at a row boundary: 9.. replaced by term 3 (9..10). */
    save_entries(s, 9, 2, 3);
    /* Conflict at the very first entry of a row: 5 replaced with term 4. */
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.n_entries, 10);
    uint64_t want_t[11] = {0, 1, 1, 1, 1, 1, 1, 2, 2, 3, 3};
    uint64_t bytes = 0;
    for (size_t i = 0; i < b.n_entries; i++) {
        assert_int_equal(b.entries[i].index, i + 1);
        assert_int_equal(b.entries[i].term, want_t[i + 1]);
        uint8_t *buf = g_ent_buf;
        ent_fill(buf, b.entries[i].len, i + 1, want_t[i + 1]);
        assert_int_equal(b.entries[i].len, ent_len(i + 1, want_t[i + 1]));
        assert_memory_equal(b.entries[i].data, buf, b.entries[i].len);
        bytes += b.entries[i].len;
    }
    assert_int_equal(st_log_bytes(s), bytes);
    st_boot_free(&b);
    save_entries(s, 5, 1, 4);
    assert_int_equal(st_last_index(s), 5);
    st_close(s);
    s = open_ok(f->dir);
    assert_int_equal(st_last_index(s), 5);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.n_entries, 5);
    assert_int_equal(b.entries[3].term, 1);
    assert_int_equal(b.entries[4].term, 4);
    bytes = 0;
    for (size_t i = 0; i < 5; i++)
        bytes += b.entries[i].len;
    assert_int_equal(st_log_bytes(s), bytes);
    st_boot_free(&b);

    /* A gap is refused and changes nothing. */
    raft_entry *e = make_entries(7, 1, 4);
    raft_ready rd = {.hs_changed = true, .hs = {9, 9, 9}, .entries = e, .n_entries = 1};
    assert_int_equal(st_save_ready(s, &rd, err, sizeof err), ST_EINVAL);
    assert_non_null(strstr(err, "7"));
    free_entries(e, 1);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.hs.term, 0);
    assert_int_equal(b.n_entries, 5);
    st_boot_free(&b);
    st_close(s);
}

static uint64_t term_compact(uint64_t i)
{
    return i <= 20 ? 1 : 2;
}

static void test_compaction(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    for (uint64_t i = 1; i <= 20; i += 3) /* rows 1-3, 4-6, ..., 19-20 */
        save_entries(s, i, i + 2 <= 20 ? 3 : 2, 1);
    raft_conf c3 = make_conf(3);
    /* Snapshot ending inside a row (10 is in 10..12). */
    raft_snapshot sn = {.index = 10, .term = 1, .conf = c3, .data = (uint8_t *)"S10", .len = 3};
    assert_int_equal(save_snapshot(s, &sn, err, sizeof err), 0);
    assert_int_equal(st_first_index(s), 11);
    assert_int_equal(st_last_index(s), 20);
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.snapshot.index, 10);
    check_entries(&b, 11, 20, term_1);
    st_boot_free(&b);
    uint64_t bytes = 0;
    for (uint64_t i = 11; i <= 20; i++)
        bytes += ent_len(i, 1);
    assert_int_equal(st_log_bytes(s), bytes);

    /* An older snapshot, or the same again, is refused. */
    sn.index = 9;
    assert_int_equal(save_snapshot(s, &sn, err, sizeof err), ST_EINVAL);
    assert_non_null(strstr(err, "not newer"));
    sn.index = 10;
    assert_int_equal(save_snapshot(s, &sn, err, sizeof err), ST_EINVAL);

    /* Snapshot at a row end (12), then more entries in term 2. */
    sn.index = 12;
    assert_int_equal(save_snapshot(s, &sn, err, sizeof err), 0);
    save_entries(s, 21, 5, 2);
    st_close(s);
    s = open_ok(f->dir);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    check_entries(&b, 13, 25, term_compact);
    st_boot_free(&b);

    /* A leader's snapshot whose term does not match our entry drops the whole
     * log; entries after it in the same ready are kept. */
    raft_entry *e = make_entries(23, 2, 3);
    size_t flen;
    uint8_t *frame = frame_of("L", 1, &flen);
    raft_snapshot ls = {.index = 22, .term = 3, .conf = make_conf(5), .data = frame, .len = flen};
    raft_ready rd = {
        .hs_changed = true, .hs = {3, 1, 22}, .snapshot = &ls, .entries = e, .n_entries = 2};
    assert_int_equal(st_save_ready(s, &rd, err, sizeof err), 0);
    free_entries(e, 2);
    free(frame);
    assert_int_equal(st_snapshot_index(s), 22);
    assert_int_equal(st_last_index(s), 24);
    st_close(s);
    s = open_ok(f->dir);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.snapshot.index, 22);
    assert_int_equal(b.snapshot.term, 3);
    assert_int_equal(b.snapshot.conf.n, 5);
    assert_int_equal(b.n_entries, 2);
    assert_int_equal(b.entries[0].index, 23);
    assert_int_equal(b.entries[0].term, 3);
    assert_int_equal(b.snapshot.len, 1);
    assert_memory_equal(b.snapshot.data, "L", 1);
    st_boot_free(&b);

    /* A snapshot beyond the log empties it. */
    frame = frame_of(NULL, 0, &flen);
    raft_snapshot far = {.index = 100, .term = 4, .conf = c3, .data = frame, .len = flen};
    rd = (raft_ready){.snapshot = &far};
    assert_int_equal(st_save_ready(s, &rd, err, sizeof err), 0);
    free(frame);
    assert_int_equal(st_last_index(s), 100);
    assert_int_equal(st_log_bytes(s), 0);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.n_entries, 0);
    assert_int_equal(b.snapshot.len, 0);
    st_boot_free(&b);
    save_entries(s, 101, 2, 4);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.n_entries, 2);
    assert_int_equal(b.entries[0].index, 101);
    st_boot_free(&b);
    st_close(s);
}

/* A snapshot written in pieces while batches go on; an aborted one leaves
 * the previous snapshot and the log untouched. */
static void test_snapshot_writer(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    save_entries(s, 1, 10, 1);
    size_t len = 3 << 20;
    uint8_t *data = malloc(len);
    uint64_t r = 7;
    for (size_t i = 0; i < len; i++)
        data[i] = (i / 4096) % 2 ? (uint8_t)rng_next(&r) : (uint8_t)(i % 17);
    raft_conf c = make_conf(2);
    st_snap_writer *w;
    assert_int_equal(st_bgsnap_begin(s, 5, 1, &w, err, sizeof err), 0);
    for (size_t o = 0; o < len; o += 100000) {
        assert_int_equal(
            st_bgsnap_write(w, data + o, len - o < 100000 ? len - o : 100000, err, sizeof err), 0);
        if (o == 1000000) {
            /* other saves go on meanwhile */
            raft_ready rd = {.hs_changed = true, .hs = {1, 1, 1}};
            assert_int_equal(st_save_ready(s, &rd, err, sizeof err), 0);
        }
    }
    assert_int_equal(st_bgsnap_commit(w, &c, err, sizeof err), ST_EINVAL); /* not finished */
    assert_int_equal(st_bgsnap_begin(s, 5, 1, &w, err, sizeof err), 0);
    for (size_t o = 0; o < len; o += 100000)
        assert_int_equal(
            st_bgsnap_write(w, data + o, len - o < 100000 ? len - o : 100000, err, sizeof err), 0);
    assert_int_equal(st_bgsnap_finish(w, err, sizeof err), 0);
    assert_true(st_bgsnap_bytes(w) > 0);
    assert_int_equal(st_bgsnap_commit(w, &c, err, sizeof err), 0);
    assert_true(st_snapshot_stored_bytes(s) > 0);
    assert_true(st_snapshot_stored_bytes(s) < len);
    assert_int_equal(st_bgsnap_begin(s, 8, 1, &w, err, sizeof err), 0);
    assert_int_equal(st_bgsnap_write(w, "junk", 4, err, sizeof err), 0);
    st_bgsnap_abort(w);
    assert_int_equal(st_snapshot_index(s), 5);
    st_close(s);
    s = open_ok(f->dir);
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.hs.commit, 1);
    assert_int_equal(b.snapshot.index, 5);
    assert_int_equal(b.snapshot.len, len);
    assert_memory_equal(b.snapshot.data, data, len);
    check_entries(&b, 6, 10, term_1);
    st_boot_free(&b);
    st_close(s);
    free(data);
}

static void test_identity_and_lock(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    uint64_t id;
    char spec[128];
    assert_int_equal(st_get_identity(s, &id, spec, sizeof spec, err, sizeof err), 0);
    assert_int_equal(id, 0);
    assert_int_equal(st_check_identity(s, 2, "1=a:1,2=b:2,3=c:3", err, sizeof err), 0);
    assert_int_equal(st_check_identity(s, 2, "1=a:1,2=b:2,3=c:3", err, sizeof err), 0);
    /* A second store on the same directory is refused while this one is open. */
    st_store *s2 = NULL;
    assert_int_equal(st_open(f->dir, &s2, err, sizeof err), ST_EBUSY);
    assert_null(s2);
    assert_non_null(strstr(err, "in use"));
    st_close(s);
    s = open_ok(f->dir);
    assert_int_equal(st_check_identity(s, 3, "1=a:1,2=b:2,3=c:3", err, sizeof err), ST_EIDENTITY);
    assert_non_null(strstr(err, "node 2"));
    assert_non_null(strstr(err, f->db));
    assert_int_equal(st_check_identity(s, 2, "other", err, sizeof err), ST_EIDENTITY);
    assert_int_equal(st_get_identity(s, &id, spec, sizeof spec, err, sizeof err), 0);
    assert_int_equal(id, 2);
    assert_string_equal(spec, "1=a:1,2=b:2,3=c:3");
    st_close(s);
}

/* ---- corruption ----------------------------------------------------------------------- */

static long find_bytes(const char *path, const void *pat, size_t plen)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)sz);
    assert_int_equal(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
    fclose(fp);
    long at = -1;
    for (long i = 0; i + (long)plen <= sz; i++)
        if (memcmp(buf + i, pat, plen) == 0) {
            at = i;
            break;
        }
    free(buf);
    return at;
}

static void flip_byte(const char *path, long at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

static void test_corrupt_entry(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    save_entries(s, 1, 40, 1);
    const char *mark = "MARKER-FOR-ENTRY-41";
    raft_entry e = {
        .term = 1, .index = 41, .type = 0, .len = (uint32_t)strlen(mark), .data = (uint8_t *)mark};
    raft_ready rd = {.entries = &e, .n_entries = 1};
    assert_int_equal(st_save_ready(s, &rd, err, sizeof err), 0);
    save_entries(s, 42, 5, 1);
    st_close(s);
    char wal[400];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    assert_int_equal(access(wal, F_OK), -1); /* close checkpointed everything */
    long at = find_bytes(f->db, mark, strlen(mark));
    assert_true(at > 0);
    flip_byte(f->db, at + 10);
    s = open_ok(f->dir);
    raft_boot b;
    int rc = load(s, &b, err, sizeof err);
    assert_int_equal(rc, ST_ECORRUPT);
    assert_non_null(strstr(err, f->db));
    assert_non_null(strstr(err, "log entry 41"));
    assert_non_null(strstr(err, "checksum"));
    assert_int_equal(b.n_entries, 0);
    st_close(s);
}

/* The snapshot files in DIR/snap: how many, and the name of one (the last
 * found) in name[256]. */
static int snap_files(const char *dir, char *name)
{
    char p[400];
    snprintf(p, sizeof p, "%s/snap", dir);
    DIR *d = opendir(p);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        if (name)
            snprintf(name, 256, "%s", e->d_name);
    }
    closedir(d);
    return n;
}

/* Waits (30 s at most) until DIR/snap holds one file, the replaced one
 * being deleted by the store's background thread; its name in name[256]. */
static void wait_one_snap_file(const char *dir, char *name)
{
    time_t give_up = time(NULL) + 30;
    while (snap_files(dir, name) != 1 && time(NULL) <= give_up)
        usleep(5000);
    assert_int_equal(snap_files(dir, name), 1);
}

/* Full path of the one snapshot file of DIR into p[400]. */
static void snap_file_path(const char *dir, char *p)
{
    char name[256];
    assert_int_equal(snap_files(dir, name), 1);
    assert_true(strlen(dir) + strlen(name) + 7 < 400);
    strcpy(p, dir);
    strcat(p, "/snap/");
    strcat(p, name);
}

static void test_corrupt_snapshot(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    save_entries(s, 1, 4, 1);
    /* Incompressible bytes so a marker survives compression verbatim. */
    size_t len = (2 << 20) + 20000;
    uint8_t *data = malloc(len);
    uint64_t r = 99;
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)rng_next(&r);
    raft_snapshot sn = {.index = 2, .term = 1, .conf = make_conf(1), .data = data, .len = len};
    assert_int_equal(save_snapshot(s, &sn, err, sizeof err), 0);
    st_close(s);
    char path[400];
    snap_file_path(f->dir, path);
    assert_true(strstr(path, "/2-1") != NULL);
    /* A flipped bit in the second piece: the store opens (the file is whole),
     * reading the state is ST_ECORRUPT naming the file. */
    long at = find_bytes(path, data + (1 << 20) + 5000, 32);
    assert_true(at > 0);
    flip_byte(path, at + 3);
    s = open_ok(f->dir);
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), ST_ECORRUPT);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "checksum"));
    uint8_t x[16];
    assert_int_equal(st_snap_stored_read(s, 2, (1 << 20) + 10, x, sizeof x, err, sizeof err),
                     ST_ECORRUPT);
    assert_non_null(strstr(err, path));
    /* the first piece is intact and still served */
    assert_int_equal(st_snap_stored_read(s, 2, 10, x, sizeof x, err, sizeof err), 0);
    st_snap_reader *rd;
    assert_int_equal(st_snap_reader_open(s, &rd, err, sizeof err), 0);
    uint8_t *tmp = malloc(len);
    assert_int_equal(st_snap_read(rd, tmp, len), -1);
    assert_int_equal(st_snap_reader_close(rd, err, sizeof err), ST_ECORRUPT);
    assert_non_null(strstr(err, path));
    free(tmp);
    st_close(s);
    flip_byte(path, at + 3);
    /* A truncated file: st_open refuses the store, naming the file. */
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size - 1), 0);
    s = NULL;
    assert_int_equal(st_open(f->dir, &s, err, sizeof err), ST_ECORRUPT);
    assert_null(s);
    assert_non_null(strstr(err, path));
    /* A missing one likewise. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(st_open(f->dir, &s, err, sizeof err), ST_ECORRUPT);
    assert_null(s);
    assert_non_null(strstr(err, path));
    free(data);
}

static void test_truncated_file(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    for (uint64_t i = 1; i <= 400; i += 20)
        save_entries(s, i, 20, 1);
    st_close(s);
    struct stat sb;
    assert_int_equal(stat(f->db, &sb), 0);
    assert_true(sb.st_size > 8 * 4096);
    assert_int_equal(truncate(f->db, sb.st_size / 2), 0);
    s = NULL;
    int rc = st_open(f->dir, &s, err, sizeof err);
    assert_int_equal(rc, ST_ECORRUPT);
    assert_null(s);
    assert_non_null(strstr(err, f->db));
    assert_non_null(strstr(err, "truncated"));
    /* Cut mid-page as well. */
    assert_int_equal(truncate(f->db, 4096 * 3 + 100), 0);
    assert_int_equal(st_open(f->dir, &s, err, sizeof err), ST_ECORRUPT);
    assert_non_null(strstr(err, "truncated"));
}

static void test_newer_schema(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    save_entries(s, 1, 3, 1);
    st_close(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", ST_SCHEMA_VERSION + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    s = NULL;
    assert_int_equal(st_open(f->dir, &s, err, sizeof err), ST_ESCHEMA);
    assert_null(s);
    assert_non_null(strstr(err, f->db));
    assert_non_null(strstr(err, "newer"));
}

static void test_foreign_database(void **state)
{
    fixture *f = *state;
    char err[512];
    assert_int_equal(mkdir(f->dir, 0755), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    st_store *s = NULL;
    assert_int_equal(st_open(f->dir, &s, err, sizeof err), ST_ESCHEMA);
    assert_non_null(strstr(err, f->db));
    assert_non_null(strstr(err, "not an hstore database"));
}

static void test_not_a_database(void **state)
{
    fixture *f = *state;
    char err[512];
    assert_int_equal(mkdir(f->dir, 0755), 0);
    FILE *fp = fopen(f->db, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fprintf(fp, "this is a text file, not a database %d\n", i);
    fclose(fp);
    st_store *s = NULL;
    assert_int_equal(st_open(f->dir, &s, err, sizeof err), ST_ENOTDB);
    assert_null(s);
    assert_non_null(strstr(err, f->db));
    assert_non_null(strstr(err, "not an SQLite database"));
}

/* ---- crash safety --------------------------------------------------------------------- */

/* The model of what the store holds after batch k; the same code drives the
 * child (to generate batches) and the parent (to check what survived). */
typedef struct model {
    uint64_t batch; /* last batch applied */
    raft_hard_state hs;
    uint64_t snap_index, snap_term, snap_batch; /* snapshot data from snap_batch */
    uint32_t snap_members;
    uint64_t last;
    uint64_t *terms; /* terms[i] for snap_index < i <= last */
    size_t cap;
} model;

typedef struct batch {
    raft_ready rd;
    raft_snapshot snap;
    size_t snap_len;
} batch;

static size_t snap_len_of(uint64_t k)
{
    return (size_t)((k * 7919) % 150000);
}
static void snap_fill(uint8_t *p, size_t len, uint64_t k)
{
    uint64_t r = k;
    for (size_t i = 0; i < len; i++)
        p[i] = (i / 512) % 2 ? (uint8_t)(i * k) : (uint8_t)rng_next(&r);
}

static void model_grow(model *m, uint64_t idx)
{
    if (idx >= m->cap) {
        size_t nc = m->cap ? m->cap : 1024;
        while (nc <= idx)
            nc *= 2;
        m->terms = realloc(m->terms, nc * sizeof *m->terms);
        m->cap = nc;
    }
}

/* Generates batch k from the model state before it (deterministic in seed,
 * k and that state) and applies it to the model.  If b is not NULL, fills
 * the ready to save (caller frees with batch_free). */
static void model_step(model *m, uint64_t seed, uint64_t k, batch *b)
{
    uint64_t r = seed ^ (k * 0x9E3779B97F4A7C15ull);
    if (b)
        memset(b, 0, sizeof *b);
    /* Snapshot in about one batch in 8, inside the log so the tail stays. */
    if (m->last > m->snap_index && rng_next(&r) % 8 == 0) {
        uint64_t idx = m->snap_index + 1 + rng_next(&r) % (m->last - m->snap_index);
        m->snap_term = m->terms[idx];
        m->snap_index = idx;
        m->snap_batch = k;
        m->snap_members = (uint32_t)(1 + k % RAFT_MAX_NODES);
        if (b) {
            b->snap.index = idx;
            b->snap.term = m->snap_term;
            b->snap.conf = make_conf(m->snap_members);
            size_t len = snap_len_of(k);
            uint8_t *state = malloc(len ? len : 1);
            snap_fill(state, len, k);
            b->snap.data = frame_of(state, len, &b->snap.len);
            free(state);
            b->rd.snapshot = &b->snap;
        }
    }
    uint64_t n = 1 + rng_next(&r) % 16;
    uint64_t start = m->last + 1;
    if (rng_next(&r) % 4 == 0) { /* conflicting suffix */
        uint64_t back = rng_next(&r) % 6;
        start = m->last + 1 > back ? m->last + 1 - back : 1;
        if (start <= m->snap_index)
            start = m->snap_index + 1;
    }
    model_grow(m, start + n);
    for (uint64_t i = 0; i < n; i++)
        m->terms[start + i] = k;
    m->last = start + n - 1;
    m->hs.term = k;
    m->hs.vote = k % 4;
    m->hs.commit = m->snap_index;
    m->batch = k;
    if (b) {
        b->rd.hs_changed = true;
        b->rd.hs = m->hs;
        b->rd.entries = make_entries(start, n, k);
        b->rd.n_entries = n;
    }
}

static void batch_free(batch *b)
{
    free_entries(b->rd.entries, b->rd.n_entries);
    free(b->snap.data);
}

static void model_free(model *m)
{
    free(m->terms);
}

/* Child: continue the store from wherever it is, reporting each batch once
 * st_save_ready has returned (that is, once it is acknowledged). It never
 * exits on its own while things go well: after CRASH_CHILD_MAX batches it
 * waits to be killed, and it dies with the parent if the parent dies. */
#define CRASH_CHILD_MAX 100000
static void crash_child(const char *dir, uint64_t seed, int wfd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(6);
    st_store *s;
    char err[512];
    if (st_open(dir, &s, err, sizeof err) != 0) {
        fprintf(stderr, "child: %s\n", err);
        _exit(2);
    }
    raft_boot bt;
    if (load(s, &bt, err, sizeof err) != 0) {
        fprintf(stderr, "child: %s\n", err);
        _exit(3);
    }
    uint64_t j = bt.hs.term;
    st_boot_free(&bt);
    model m = {0};
    for (uint64_t k = 1; k <= j; k++)
        model_step(&m, seed, k, NULL);
    for (uint64_t k = j + 1; k <= j + CRASH_CHILD_MAX; k++) {
        batch b;
        model_step(&m, seed, k, &b);
        int rc = st_save_ready(s, &b.rd, err, sizeof err);
        batch_free(&b);
        if (rc != 0) {
            fprintf(stderr, "child: batch %llu: %s\n", (unsigned long long)k, err);
            _exit(4);
        }
        if (write(wfd, &k, sizeof k) != sizeof k)
            _exit(5);
    }
    for (;;)
        pause();
}

/* Waits up to `secs` seconds for the child's next report on fd; returns
 * false if none came (the child died or is stuck). */
static bool read_report(int fd, uint64_t *k, int secs)
{
    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += secs;
    size_t have = 0;
    while (have < sizeof *k) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
        if (ms <= 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        ssize_t got = read(fd, (char *)k + have, sizeof *k - have);
        if (got <= 0)
            return false;
        have += (size_t)got;
    }
    return true;
}

static void check_against_model(const raft_boot *b, const model *m)
{
    assert_int_equal(b->hs.term, m->hs.term);
    assert_int_equal(b->hs.vote, m->hs.vote);
    assert_int_equal(b->hs.commit, m->hs.commit);
    assert_int_equal(b->snapshot.index, m->snap_index);
    assert_int_equal(b->snapshot.term, m->snap_term);
    if (m->snap_index) {
        raft_conf c = make_conf(m->snap_members);
        assert_conf_equal(&b->snapshot.conf, &c);
        size_t len = snap_len_of(m->snap_batch);
        assert_int_equal(b->snapshot.len, len);
        uint8_t *want = malloc(len ? len : 1);
        snap_fill(want, len, m->snap_batch);
        if (len)
            assert_memory_equal(b->snapshot.data, want, len);
        free(want);
    }
    assert_int_equal(b->n_entries, m->last - m->snap_index);
    for (size_t i = 0; i < b->n_entries; i++) {
        const raft_entry *e = &b->entries[i];
        uint64_t idx = m->snap_index + 1 + i;
        assert_int_equal(e->index, idx);
        assert_int_equal(e->term, m->terms[idx]);
        assert_int_equal(e->len, ent_len(idx, e->term));
        uint8_t *buf = g_ent_buf;
        ent_fill(buf, e->len, idx, e->term);
        if (e->len)
            assert_memory_equal(e->data, buf, e->len);
    }
}

/* Each round starts a child that continues the store and kills it with
 * SIGKILL. Most rounds first wait until the child has acknowledged a batch
 * of its own and then kill it a random moment later, so every such round is
 * a real crash in the middle of writing, however slow the machine is; one
 * round in eight kills it at once, often while it opens or recovers the
 * store. After each kill, everything the child acknowledged must be there
 * (and at most the one batch it was writing beyond it), equal to the model. */
static void test_crash_safety(void **state)
{
    fixture *f = *state;
    int rounds = mode_is("long") ? 500 : mode_is("asan") ? 100 : 150;
    uint64_t seed = g_seed;
    printf("crash safety: seed %llu, %d kills\n", (unsigned long long)seed, rounds);
    uint64_t rs = seed * 31 + 5;
    model m = {0};
    int mid_write = 0;
    for (int round = 0; round < rounds; round++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            crash_child(f->dir, seed, p[1]);
        }
        close(p[1]);
        uint64_t x = rng_next(&rs);
        uint64_t reported = m.batch, first = 0;
        bool at_once = x % 8 == 0;
        if (!at_once) {
            /* Wait for progress (with a deadline), then pick the moment. */
            if (!read_report(p[0], &first, 120)) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                fail_msg("round %d (seed %llu): the child acknowledged no batch within 120 s",
                         round, (unsigned long long)seed);
            }
            reported = first;
            usleep((useconds_t)(x >> 8) % 20000);
        } else {
            usleep((useconds_t)(x >> 8) % 2000);
        }
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            fail_msg("round %d: child exited on its own (status 0x%x)", round, status);
        uint64_t k;
        while (read(p[0], &k, sizeof k) == sizeof k)
            reported = k;
        close(p[0]);
        st_store *s = open_ok(f->dir);
        raft_boot b;
        char err[512];
        int rc = load(s, &b, err, sizeof err);
        if (rc)
            fail_msg("round %d (seed %llu): reopen after kill: %s", round, (unsigned long long)seed,
                     err);
        uint64_t j = b.hs.term;
        /* Everything acknowledged is there; at most the one batch in flight
         * beyond it. */
        if (j < reported || j > reported + 1)
            fail_msg("round %d (seed %llu): store holds batch %llu, child acknowledged %llu", round,
                     (unsigned long long)seed, (unsigned long long)j, (unsigned long long)reported);
        if (!at_once) {
            assert_true(j >= first && first > m.batch);
            mid_write++;
        }
        while (m.batch < j)
            model_step(&m, seed, m.batch + 1, NULL);
        check_against_model(&b, &m);
        st_boot_free(&b);
        st_close(s);
    }
    printf("crash safety: %llu batches survived %d kills, %d of them after the child's "
           "first acknowledged batch\n",
           (unsigned long long)m.batch, rounds, mid_write);
    model_free(&m);
}

/* ---- disk full, read-only ------------------------------------------------------------- */

static void mount_small(fixture *f, const char *size)
{
    snprintf(f->mnt, sizeof f->mnt, "%s/mnt", f->base);
    assert_int_equal(mkdir(f->mnt, 0755), 0);
    char opt[64];
    snprintf(opt, sizeof opt, "size=%s,mode=0755", size);
    if (mount("tmpfs", f->mnt, "tmpfs", 0, opt) != 0)
        fail_msg("cannot mount a %s tmpfs at %s (%s): the disk-full test needs root "
                 "(CAP_SYS_ADMIN)",
                 size, f->mnt, strerror(errno));
    f->mounted = true;
    snprintf(f->dir, sizeof f->dir, "%s/data", f->mnt);
    snprintf(f->db, sizeof f->db, "%s/%s", f->dir, ST_DB_NAME);
}

static void test_disk_full(void **state)
{
    fixture *f = *state;
    mount_small(f, "2m");
    char err[512];
    st_store *s = open_ok(f->dir);
    assert_int_equal(st_check_identity(s, 1, "c", err, sizeof err), 0);
    /* Batches of 16 x ~4 KiB until the filesystem is full. */
    uint64_t next = 1, acked_last = 0, acked_term = 0;
    int rc = 0;
    for (int i = 0; i < 10000; i++) {
        raft_entry e[16];
        uint8_t *buf = malloc(4000);
        memset(buf, 'a' + i % 26, 4000);
        for (int j = 0; j < 16; j++)
            e[j] = (raft_entry){.term = 1, .index = next + (uint64_t)j, .len = 4000, .data = buf};
        raft_ready rd = {
            .hs_changed = true, .hs = {(uint64_t)i + 1, 1, next}, .entries = e, .n_entries = 16};
        rc = st_save_ready(s, &rd, err, sizeof err);
        free(buf);
        if (rc)
            break;
        acked_last = next + 15;
        acked_term = (uint64_t)i + 1;
        next += 16;
    }
    assert_int_equal(rc, ST_ENOSPC);
    assert_non_null(strstr(err, f->db));
    assert_non_null(strstr(err, "disk full"));
    assert_true(acked_last > 0);
    printf("disk full after %llu entries: %s\n", (unsigned long long)acked_last, err);
    /* Still refused (not half-applied), and the store's view is unchanged. */
    assert_int_equal(st_last_index(s), acked_last);
    st_close(s);

    /* Reopening on the still-full filesystem gives back everything
     * acknowledged (or, if SQLite cannot even set up its shared memory,
     * a clean disk-full error, never a partial log). */
    s = NULL;
    rc = st_open(f->dir, &s, err, sizeof err);
    printf("reopen on the full filesystem: %s\n", rc ? err : "ok");
    if (rc == 0) {
        raft_boot fb;
        rc = load(s, &fb, err, sizeof err);
        if (rc == 0) {
            assert_int_equal(fb.hs.term, acked_term);
            assert_int_equal(fb.n_entries, acked_last);
        }
        st_boot_free(&fb);
        st_close(s);
    }
    if (rc)
        assert_int_equal(rc, ST_ENOSPC);

    /* Once there is room again, everything acknowledged is there. */
    assert_int_equal(mount("tmpfs", f->mnt, "tmpfs", MS_REMOUNT, "size=64m"), 0);
    s = open_ok(f->dir);
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.hs.term, acked_term);
    assert_int_equal(b.n_entries, acked_last);
    for (size_t i = 0; i < b.n_entries; i++) {
        assert_int_equal(b.entries[i].index, i + 1);
        assert_int_equal(b.entries[i].len, 4000);
        assert_int_equal(b.entries[i].data[0], 'a' + (int)(i / 16) % 26);
    }
    st_boot_free(&b);
    save_entries(s, acked_last + 1, 3, 2);
    st_close(s);
}

static void test_read_only(void **state)
{
    fixture *f = *state;
    mount_small(f, "8m");
    char err[512];
    st_store *s = open_ok(f->dir);
    save_entries(s, 1, 5, 1);
    st_close(s);
    assert_int_equal(mount("tmpfs", f->mnt, "tmpfs", MS_REMOUNT | MS_RDONLY, NULL), 0);
    s = NULL;
    int rc = st_open(f->dir, &s, err, sizeof err);
    assert_int_equal(rc, ST_EROFS);
    assert_null(s);
    assert_non_null(strstr(err, f->dir));
}

/* Waits (up to 60 s) until the store's checkpointer has copied every frame
 * of the WAL into the database, if the WAL is big enough to have woken it
 * (storage.c: CKPT_START_PAGES, 4 MiB of 4 KiB pages).  Progress is read
 * from the WAL index in DB-shm: mxFrame (offset 16) and nBackfill (96). */
static void wait_checkpointed(const char *db)
{
    char shm[300];
    snprintf(shm, sizeof shm, "%s-shm", db);
    time_t give_up = time(NULL) + 60;
    for (;;) {
        uint32_t mx = 0, backfill = 0;
        int fd = open(shm, O_RDONLY);
        if (fd >= 0) {
            if (pread(fd, &mx, 4, 16) != 4 || pread(fd, &backfill, 4, 96) != 4)
                mx = backfill = 0;
            close(fd);
        }
        if (mx < 1024 || backfill >= mx)
            return;
        if (time(NULL) > give_up)
            fail_msg("the checkpointer copied %u of %u WAL frames in 60 s", backfill, mx);
        usleep(2000);
    }
}

/* A steady stream of batches: the background checkpointer keeps the WAL
 * bounded (without it the WAL would hold every batch) and nothing is lost. */
static void test_wal_bounded(void **state)
{
    fixture *f = *state;
    mount_small(f, "512m"); /* tmpfs: fast, so the test stays short */
    char err[512];
    st_store *s = open_ok(f->dir);
    int batches = mode_is("asan") ? 2000 : 5000;
    raft_entry e[64];
    uint8_t data[256];
    memset(data, 0x3c, sizeof data);
    uint64_t next = 1;
    off_t wal_max = 0;
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    for (int i = 0; i < batches; i++) {
        for (int j = 0; j < 64; j++)
            e[j] = (raft_entry){.term = 1, .index = next + (uint64_t)j, .len = 256, .data = data};
        raft_ready rd = {.hs_changed = true, .hs = {1, 1, next}, .entries = e, .n_entries = 64};
        assert_int_equal(st_save_ready(s, &rd, err, sizeof err), 0);
        next += 64;
        struct stat sb;
        if (stat(wal, &sb) == 0 && sb.st_size > wal_max)
            wal_max = sb.st_size;
        /* A pause now and then, as a node's loop has between batches: it
         * lasts until the checkpointer has caught up, however little CPU it
         * gets on a loaded machine (sanitizers, parallel tests). */
        if (i % 250 == 249)
            wait_checkpointed(f->db);
    }
    printf("%d batches (%.1f MiB of entries): largest WAL %.1f MiB\n", batches,
           (double)(next - 1) * 256 / (1 << 20), (double)wal_max / (1 << 20));
    /* A WAL that was never checkpointed holds every frame written, more than
     * the entry bytes themselves; the background checkpointer must have
     * started it over along the way.  (How far below it stays depends on how
     * much CPU the checkpointer got, so the bound is not tighter.) */
    assert_true(wal_max < (off_t)(next - 1) * 256);
    st_close(s);
    s = open_ok(f->dir);
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.n_entries, next - 1);
    assert_int_equal(b.entries[next - 2].index, next - 1);
    st_boot_free(&b);
    st_close(s);
}

/* ---- big snapshot --------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Mixed state: random blocks, text-like blocks, runs and small structures. */
static void mixed_fill(uint8_t *p, size_t len, uint64_t seed)
{
    static const char *words[] = {"alpha ", "key=",       "value ", "hstore ",   "/dir/file ",
                                  "raft ",  "0123456789", "\n",     "snapshot ", "term "};
    uint64_t r = seed;
    size_t o = 0;
    while (o < len) {
        size_t blk = 65536 < len - o ? 65536 : len - o;
        uint64_t kind = rng_next(&r) % 4;
        if (kind == 0) {
            for (size_t i = 0; i + 8 <= blk; i += 8) {
                uint64_t v = rng_next(&r);
                memcpy(p + o + i, &v, 8);
            }
            for (size_t i = blk & ~(size_t)7; i < blk; i++)
                p[o + i] = (uint8_t)i;
        } else if (kind == 1) {
            size_t i = 0;
            while (i < blk) {
                const char *w = words[rng_next(&r) % 10];
                size_t wl = strlen(w);
                if (wl > blk - i)
                    wl = blk - i;
                memcpy(p + o + i, w, wl);
                i += wl;
            }
        } else if (kind == 2) {
            memset(p + o, (int)(rng_next(&r) & 0xff), blk);
        } else {
            for (size_t i = 0; i < blk; i++)
                p[o + i] = (uint8_t)((i * 31) ^ (i >> 7));
        }
        o += blk;
    }
}

static void test_big_snapshot(void **state)
{
    fixture *f = *state;
    size_t mb = mode_is("asan") ? 32 : mode_is("long") ? 512 : 300;
    size_t len = mb << 20;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    mixed_fill(data, len, g_seed);
    char err[512];
    st_store *s = open_ok(f->dir);
    save_entries(s, 1, 100, 1);
    raft_snapshot sn = {.index = 90, .term = 1, .conf = make_conf(3), .data = data, .len = len};
    double t0 = now_s();
    assert_int_equal(save_snapshot(s, &sn, err, sizeof err), 0);
    double t1 = now_s();
    uint64_t comp = st_snapshot_stored_bytes(s);
    st_close(s);
    s = open_ok(f->dir);
    raft_boot b;
    double t2 = now_s();
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    double t3 = now_s();
    printf(
        "snapshot %zu MiB mixed data: compressed to %.1f MiB (%.1f%%), save %.2f s, load %.2f s\n",
        mb, (double)comp / (1 << 20), 100.0 * (double)comp / (double)len, t1 - t0, t3 - t2);
    assert_int_equal(b.snapshot.len, len);
    assert_true(memcmp(b.snapshot.data, data, len) == 0);
    assert_true(comp > 0 && comp < len);
    check_entries(&b, 91, 100, term_1);
    st_boot_free(&b);
    st_close(s);
    free(data);
}

/* ---- snapshots in stored form, background writer -------------------------------- */

typedef struct bg_arg {
    st_snap_writer *w;
    const uint8_t *data;
    size_t len;
    int rc;
} bg_arg;

static void *bg_main(void *p)
{
    bg_arg *a = p;
    char err[256];
    a->rc = 0;
    for (size_t o = 0; o < a->len && !a->rc; o += 77777)
        a->rc = st_bgsnap_write(a->w, a->data + o, a->len - o < 77777 ? a->len - o : 77777, err,
                                sizeof err);
    if (!a->rc)
        a->rc = st_bgsnap_finish(a->w, err, sizeof err);
    return NULL;
}

/* Reads the whole stored snapshot back through the stream reader. */
static uint8_t *read_stored(st_store *s, size_t len)
{
    char err[256];
    st_snap_reader *rd;
    assert_int_equal(st_snap_reader_open(s, &rd, err, sizeof err), 0);
    uint8_t *out = malloc(len ? len : 1);
    for (size_t o = 0; o < len; o += 4096)
        assert_int_equal(st_snap_read(rd, out + o, len - o < 4096 ? len - o : 4096), 0);
    assert_int_equal(st_snap_reader_bytes(rd), len);
    assert_int_equal(st_snap_reader_close(rd, err, sizeof err), 0);
    return out;
}

/* Whole stored form through st_snap_stored_read, in odd pieces. */
static uint8_t *stored_form(st_store *s, size_t *len)
{
    char err[256];
    *len = (size_t)st_snapshot_stored_bytes(s);
    uint8_t *b = malloc(*len + 1);
    for (size_t o = 0; o < *len; o += 300001)
        assert_int_equal(st_snap_stored_read(s, st_snapshot_index(s), o, b + o,
                                             *len - o < 300001 ? *len - o : 300001, err,
                                             sizeof err),
                         0);
    uint8_t x;
    assert_int_equal(st_snap_stored_read(s, st_snapshot_index(s), *len, &x, 1, err, sizeof err),
                     ST_EINVAL);
    assert_int_equal(st_snap_stored_read(s, st_snapshot_index(s) + 1, 0, &x, 1, err, sizeof err),
                     ST_EINVAL);
    return b;
}

static void test_background_snapshot(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    /* several rows, so that the compaction leaves whole dead rows behind */
    save_entries(s, 1, 10, 1);
    save_entries(s, 11, 10, 1);
    save_entries(s, 21, 20, 1);
    size_t len = (5 << 20) + 12345;
    uint8_t *data = malloc(len);
    mixed_fill(data, len, g_seed);
    raft_conf c = make_conf(3);
    st_snap_writer *w;
    assert_int_equal(st_bgsnap_begin(s, 20, 1, &w, err, sizeof err), 0);
    st_snap_writer *w2;
    assert_int_equal(st_bgsnap_begin(s, 21, 1, &w2, err, sizeof err), ST_EBUSY);
    bg_arg a = {w, data, len, -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, bg_main, &a), 0);
    /* batches go on while the worker writes */
    save_entries(s, 41, 20, 1);
    pthread_join(th, NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(st_snapshot_index(s), 0); /* not a snapshot before commit */
    assert_int_equal(st_bgsnap_commit(w, &c, err, sizeof err), 0);
    assert_int_equal(st_snapshot_index(s), 20);
    assert_int_equal(st_first_index(s), 21);
    assert_int_equal(st_last_index(s), 60);
    {
        /* the log rows the snapshot covers go in the background */
        char path[400];
        snprintf(path, sizeof path, "%s/hstore.db", f->dir);
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 2000);
        int dead = -1;
        time_t give_up = time(NULL) + 60;
        while (dead != 0 && time(NULL) <= give_up) {
            sqlite3_stmt *q;
            if (sqlite3_prepare_v2(db, "SELECT count(*) FROM log WHERE first <= 20", -1, &q,
                                   NULL) == SQLITE_OK &&
                sqlite3_step(q) == SQLITE_ROW)
                dead = sqlite3_column_int(q, 0);
            sqlite3_finalize(q);
            if (dead)
                usleep(10000);
        }
        assert_int_equal(dead, 0);
        sqlite3_close(db);
    }
    raft_boot lb;
    assert_int_equal(st_load_stored(s, &lb, err, sizeof err), 0);
    check_entries(&lb, 21, 60, term_1);
    st_boot_free(&lb);
    uint8_t *back = read_stored(s, len);
    assert_memory_equal(back, data, len);
    free(back);
    /* the stored form, read in pieces, is a frame that a second store takes
     * as a received snapshot (st_save_ready) */
    size_t flen;
    uint8_t *frame = stored_form(s, &flen);
    st_close(s);
    s = open_ok(f->dir);
    raft_boot b;
    assert_int_equal(st_load_stored(s, &b, err, sizeof err), 0);
    assert_int_equal(b.snapshot.index, 20);
    assert_null(b.snapshot.data);
    assert_int_equal(b.snapshot.len, flen);
    assert_conf_equal(&b.snapshot.conf, &c);
    check_entries(&b, 21, 60, term_1);
    st_boot_free(&b);
    /* a second background snapshot replaces the first; the old file goes
     * once it commits, and a reader open on it reads on */
    char name[256];
    assert_int_equal(snap_files(f->dir, name), 1);
    assert_non_null(strstr(name, "20-1"));
    st_snap_reader *old_rd;
    assert_int_equal(st_snap_reader_open(s, &old_rd, err, sizeof err), 0);
    assert_int_equal(st_bgsnap_begin(s, 30, 1, &w, err, sizeof err), 0);
    a = (bg_arg){w, data + 1000, len - 1000, -1};
    assert_int_equal(pthread_create(&th, NULL, bg_main, &a), 0);
    pthread_join(th, NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(snap_files(f->dir, NULL), 2);
    uint8_t x;
    assert_int_equal(st_snap_stored_read(s, 20, 0, &x, 1, err, sizeof err), 0);
    assert_int_equal(st_bgsnap_commit(w, &c, err, sizeof err), 0);
    wait_one_snap_file(f->dir, name);
    assert_non_null(strstr(name, "30-1"));
    /* ranges of the replaced snapshot: the error a sender handles */
    assert_int_equal(st_snap_stored_read(s, 20, 0, &x, 1, err, sizeof err), ST_EINVAL);
    {
        uint8_t *old = malloc(len);
        assert_int_equal(st_snap_read(old_rd, old, len), 0);
        assert_memory_equal(old, data, len);
        assert_int_equal(st_snap_reader_close(old_rd, err, sizeof err), 0);
        free(old);
    }
    /* a file no row names (a crash between the file and its commit) goes
     * at the next open */
    {
        char stray[400];
        snprintf(stray, sizeof stray, "%s/snap/31-1.zst", f->dir);
        FILE *fp = fopen(stray, "w");
        assert_non_null(fp);
        fputs("stray", fp);
        fclose(fp);
        st_close(s);
        s = open_ok(f->dir);
        assert_int_equal(snap_files(f->dir, name), 1);
        assert_non_null(strstr(name, "30-1"));
    }
    back = read_stored(s, len - 1000);
    assert_memory_equal(back, data + 1000, len - 1000);
    free(back);
    /* an aborted one, and one overtaken by a newer snapshot, change nothing */
    assert_int_equal(st_bgsnap_begin(s, 35, 1, &w, err, sizeof err), 0);
    a = (bg_arg){w, data, 3 << 20, -1};
    assert_int_equal(pthread_create(&th, NULL, bg_main, &a), 0);
    pthread_join(th, NULL);
    st_bgsnap_abort(w);
    assert_int_equal(st_bgsnap_begin(s, 36, 1, &w, err, sizeof err), 0);
    a = (bg_arg){w, data, 2 << 20, -1};
    assert_int_equal(pthread_create(&th, NULL, bg_main, &a), 0);
    pthread_join(th, NULL);
    /* (a newer snapshot received from a leader meanwhile) */
    size_t nlen;
    uint8_t *newer = frame_of(data, 1 << 20, &nlen);
    raft_snapshot sn = {.index = 40, .term = 1, .conf = c, .data = newer, .len = nlen};
    raft_ready nrd = {.snapshot = &sn};
    assert_int_equal(st_save_ready(s, &nrd, err, sizeof err), 0);
    free(newer);
    assert_int_equal(st_bgsnap_commit(w, &c, err, sizeof err), ST_EINVAL);
    assert_int_equal(st_snapshot_index(s), 40);
    wait_one_snap_file(f->dir, name); /* the overtaken one's file went */
    assert_non_null(strstr(name, "40-1"));
    back = read_stored(s, 1 << 20);
    assert_memory_equal(back, data, 1 << 20);
    free(back);
    st_close(s);
    /* a received stored-form frame, into a fresh store */
    char dir2[300];
    snprintf(dir2, sizeof dir2, "%s/second", f->dir);
    s = open_ok(dir2);
    raft_ready rd = {.hs_changed = true, .hs = {1, 0, 20}};
    raft_snapshot rs = {.index = 20, .term = 1, .conf = c, .data = frame, .len = flen};
    rd.snapshot = &rs;
    /* a damaged frame is refused whole */
    frame[flen / 2] ^= 0x55;
    assert_int_not_equal(st_save_ready(s, &rd, err, sizeof err), 0);
    assert_int_equal(st_snapshot_index(s), 0);
    frame[flen / 2] ^= 0x55;
    rs.len = flen - 1;
    assert_int_not_equal(st_save_ready(s, &rd, err, sizeof err), 0);
    rs.len = flen;
    assert_int_equal(st_save_ready(s, &rd, err, sizeof err), 0);
    back = read_stored(s, len);
    assert_memory_equal(back, data, len);
    free(back);
    size_t flen2;
    uint8_t *frame2 = stored_form(s, &flen2);
    assert_int_equal(flen2, flen);
    assert_memory_equal(frame2, frame, flen);
    free(frame2);
    st_close(s);
    /* the in-memory reader: exact length, no bytes after, no truncation */
    st_snap_reader *rdr;
    uint8_t *tmp = malloc(len + 1);
    assert_int_equal(st_snap_reader_open_frame(frame, flen, &rdr, err, sizeof err), 0);
    assert_int_equal(st_snap_read(rdr, tmp, len), 0);
    assert_memory_equal(tmp, data, len);
    assert_int_equal(st_snap_reader_close(rdr, err, sizeof err), 0);
    assert_int_equal(st_snap_reader_open_frame(frame, flen, &rdr, err, sizeof err), 0);
    assert_int_equal(st_snap_read(rdr, tmp, len - 10), 0);
    assert_int_equal(st_snap_reader_close(rdr, err, sizeof err), ST_ECORRUPT); /* bytes left */
    assert_int_equal(st_snap_reader_open_frame(frame, flen, &rdr, err, sizeof err), 0);
    assert_int_equal(st_snap_read(rdr, tmp, len + 1), -1);
    assert_int_equal(st_snap_reader_close(rdr, err, sizeof err), ST_ECORRUPT); /* too short */
    free(tmp);
    free(frame);
    free(data);
}

/* A crash while a background snapshot is staged or just committed leaves a
 * usable store: the previous (or the new) snapshot, nothing half-way. */
static void test_background_snapshot_crash(void **state)
{
    fixture *f = *state;
    char err[512];
    size_t len = 3 << 20;
    uint8_t *data = malloc(len);
    mixed_fill(data, len, g_seed + 1);
    for (int stage = 0; stage < 2; stage++) {
        char dir[300];
        snprintf(dir, sizeof dir, "%s/crash%d", f->dir, stage);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            st_store *s;
            if (st_open(dir, &s, err, sizeof err) != 0)
                _exit(2);
            raft_snapshot sn = {
                .index = 5, .term = 1, .conf = make_conf(1), .data = data, .len = 1000};
            if (save_snapshot(s, &sn, err, sizeof err) != 0)
                _exit(3);
            st_snap_writer *w;
            if (st_bgsnap_begin(s, 9, 1, &w, err, sizeof err) != 0)
                _exit(4);
            bg_arg a = {w, data, len, -1};
            bg_main(&a);
            if (a.rc)
                _exit(5);
            raft_conf c = make_conf(1);
            if (stage == 1 && st_bgsnap_commit(w, &c, err, sizeof err) != 0)
                _exit(6);
            kill(getpid(), SIGKILL);
            _exit(7);
        }
        int ws;
        waitpid(pid, &ws, 0);
        assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
        st_store *s = open_ok(dir);
        assert_int_equal(st_snapshot_index(s), stage ? 9 : 5);
        uint8_t *back = read_stored(s, stage ? len : 1000);
        assert_memory_equal(back, data, stage ? len : 1000);
        free(back);
        /* the staging and replaced tables are gone */
        sqlite3 *db;
        char path[400];
        snprintf(path, sizeof path, "%s/hstore.db", dir);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT count(*) FROM sqlite_master WHERE name IN "
                                            "('snap_stage', 'snap_old')",
                                            -1, &q, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), 0);
        sqlite3_finalize(q);
        sqlite3_close(db);
        /* the file of the snapshot never committed is gone (stage 0), or
         * the one it replaced (stage 1) */
        char name[256];
        assert_int_equal(snap_files(dir, name), 1);
        assert_non_null(strstr(name, stage ? "9-1" : "5-1"));
        st_close(s);
    }
    free(data);
}

/* A snapshot stored by an earlier version (the frame in snap_chunk rows of
 * 1 MiB, no file) is converted into a file at st_open and loads.  The old
 * layout is made from a new store: its snap row is the same, the frame goes
 * back into rows and the file and its record go. */
static void test_old_row_format(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    save_entries(s, 1, 10, 1);
    size_t len = (3 << 20) + 777;
    uint8_t *data = malloc(len);
    mixed_fill(data, len, g_seed + 7);
    for (size_t i = 0; i < len; i += 3)
        data[i] ^= (uint8_t)(i * 2654435761u >> 13); /* several pieces once compressed */
    raft_conf c = make_conf(2);
    raft_snapshot sn = {.index = 4, .term = 1, .conf = c, .data = data, .len = len};
    assert_int_equal(save_snapshot(s, &sn, err, sizeof err), 0);
    size_t flen;
    uint8_t *frame = stored_form(s, &flen);
    assert_true(flen > (1 << 20));
    st_close(s);
    char path[400];
    snap_file_path(f->dir, path);
    assert_int_equal(unlink(path), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "BEGIN; DELETE FROM meta WHERE key = 'snap_file'", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO snap_chunk(seq, crc, body) VALUES (?, ?, ?)",
                                        -1, &q, NULL),
                     SQLITE_OK);
    int64_t n = 0;
    for (size_t off = 0; off < flen; off += 1 << 20, n++) {
        size_t k = flen - off < (1 << 20) ? flen - off : (1 << 20);
        sqlite3_bind_int64(q, 1, n);
        sqlite3_bind_int64(q, 2, crc32c(0, frame + off, k));
        sqlite3_bind_blob(q, 3, frame + off, (int)k, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_DONE);
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    /* a damaged row is refused, naming the database; the rows stay */
    long at = -1;
    for (size_t k = 0; k < 20 && at < 0; k++)
        at = find_bytes(f->db, frame + (1 << 20) + 100 + k * 1000, 32);
    assert_true(at > 0);
    flip_byte(f->db, at + 5);
    s = NULL;
    assert_int_equal(st_open(f->dir, &s, err, sizeof err), ST_ECORRUPT);
    assert_non_null(strstr(err, f->db));
    assert_int_equal(snap_files(f->dir, NULL), 0);
    flip_byte(f->db, at + 5);
    /* a conversion cut short by a crash left its file: deleted, done again */
    {
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("half a conversion", fp);
        fclose(fp);
    }
    s = open_ok(f->dir);
    assert_int_equal(snap_files(f->dir, NULL), 1);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((size_t)sb.st_size, flen);
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.snapshot.index, 4);
    assert_int_equal(b.snapshot.len, len);
    assert_memory_equal(b.snapshot.data, data, len);
    assert_conf_equal(&b.snapshot.conf, &c);
    check_entries(&b, 5, 10, term_1);
    st_boot_free(&b);
    size_t flen2;
    uint8_t *frame2 = stored_form(s, &flen2);
    assert_int_equal(flen2, flen);
    assert_memory_equal(frame2, frame, flen);
    free(frame2);
    st_close(s);
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM snap_chunk", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    free(frame);
    free(data);
}

/* ---- large entries in segment files ------------------------------------------------ */

/* Entries of ST_BLOB_MIN bytes and more, all kept in segment files. */
static uint32_t big_len(uint64_t index, uint64_t term)
{
    return ST_BLOB_MIN + (uint32_t)((index * 131 + term * 7) % 4096);
}

static raft_entry *make_big(uint64_t first, size_t n, uint64_t term)
{
    raft_entry *e = calloc(n, sizeof *e);
    for (size_t i = 0; i < n; i++) {
        e[i].index = first + i;
        e[i].term = term;
        e[i].type = ent_type(e[i].index, term);
        e[i].len = big_len(e[i].index, term);
        e[i].data = malloc(e[i].len);
        ent_fill(e[i].data, e[i].len, e[i].index, term);
    }
    return e;
}

static void save_big(st_store *s, uint64_t first, size_t n, uint64_t term)
{
    raft_entry *e = make_big(first, n, term);
    raft_ready rd = {.entries = e, .n_entries = n};
    char err[512];
    int rc = st_save_ready(s, &rd, err, sizeof err);
    free_entries(e, n);
    if (rc)
        fail_msg("save %llu+%zu: %s", (unsigned long long)first, n, err);
}

/* Checks boot entries lo..hi are big entries with term term_of(index);
 * returns the sum of their lengths. */
static uint64_t check_big(const raft_boot *b, uint64_t lo, uint64_t hi,
                          uint64_t (*term_of)(uint64_t))
{
    uint64_t bytes = 0;
    assert_int_equal(b->n_entries, hi - lo + 1);
    for (size_t i = 0; i < b->n_entries; i++) {
        const raft_entry *e = &b->entries[i];
        uint64_t t = term_of(lo + i);
        assert_int_equal(e->index, lo + i);
        assert_int_equal(e->term, t);
        assert_int_equal(e->type, ent_type(e->index, t));
        assert_int_equal(e->len, big_len(e->index, t));
        ent_fill(g_ent_buf, e->len, e->index, t);
        assert_memory_equal(e->data, g_ent_buf, e->len);
        bytes += e->len;
    }
    return bytes;
}

/* The room big entry (index, term) takes in a segment file. */
static long seg_span(uint64_t index, uint64_t term)
{
    return ((long)big_len(index, term) + 4095) & ~4095L;
}

static void seg_path(const fixture *f, uint32_t k, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%08u.seg", f->dir, ST_BLOB_DIR, k);
}
static bool seg_exists(const fixture *f, uint32_t k)
{
    char p[400];
    seg_path(f, k, p, sizeof p);
    return access(p, F_OK) == 0;
}
/* A segment no row refers to is deleted by the store's background thread
 * soon after the commit: waits for that (up to 30 s). */
static bool seg_gone(const fixture *f, uint32_t k)
{
    for (int i = 0; i < 15000 && seg_exists(f, k); i++)
        usleep(2000);
    return !seg_exists(f, k);
}
static long seg_size(const fixture *f, uint32_t k)
{
    char p[400];
    struct stat sb;
    seg_path(f, k, p, sizeof p);
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

/* Entries below, at and above the threshold, of 0 bytes to 3 MiB, mixed in
 * one batch and in two batches of one group commit, come back byte-exact
 * after close and open; only the large ones are in the segment file, each
 * from a multiple of 4 KiB on.  Some large ones start on a page, as the
 * core's log puts them, so their whole pages go O_DIRECT and their tails
 * through the page cache, between entries written only through it. */
static void test_blob_round_trip(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    uint32_t lens[] = {0, 100,    ST_BLOB_MIN - 1, ST_BLOB_MIN, 1u << 20,
                       5, 200000, 3u << 20,        7,           ST_BLOB_MIN + 1};
    size_t n = sizeof lens / sizeof lens[0];
    bool on_page[] = {false, false, false, false, true, false, true, false, false, true};
    raft_entry e[10];
    uint64_t bytes = 0, seg_bytes = 0, seg_next = 0;
    for (size_t i = 0; i < n; i++) {
        e[i] = (raft_entry){.index = i + 1, .term = 2, .type = ent_type(i + 1, 2), .len = lens[i]};
        e[i].data = !lens[i]     ? NULL
                    : on_page[i] ? aligned_alloc(4096, (lens[i] + 4095) & ~4095u)
                                 : malloc(lens[i]);
        ent_fill(e[i].data, lens[i], i + 1, 2);
        bytes += lens[i];
        if (lens[i] >= ST_BLOB_MIN) {
            seg_bytes = seg_next + lens[i];
            seg_next = (seg_bytes + 4095) & ~(uint64_t)4095;
        }
    }
    raft_ready a = {.hs_changed = true, .hs = {2, 1, 0}, .entries = e, .n_entries = 8};
    raft_ready b2 = {.hs_changed = true, .hs = {2, 1, 4}, .entries = e + 8, .n_entries = 2};
    const raft_ready *both[] = {&a, &b2};
    assert_int_equal(st_save_readies(s, both, 2, err, sizeof err), 0);
    assert_int_equal(st_last_index(s), n);
    assert_int_equal(st_log_bytes(s), bytes);
    assert_true(seg_exists(f, 1));
    assert_int_equal(seg_size(f, 1), (long)seg_bytes);
    st_close(s);

    s = open_ok(f->dir);
    assert_int_equal(st_log_bytes(s), bytes);
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.hs.commit, 4);
    assert_int_equal(b.n_entries, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(b.entries[i].index, i + 1);
        assert_int_equal(b.entries[i].term, 2);
        assert_int_equal(b.entries[i].type, e[i].type);
        assert_int_equal(b.entries[i].len, lens[i]);
        if (lens[i])
            assert_memory_equal(b.entries[i].data, e[i].data, lens[i]);
    }
    st_boot_free(&b);
    /* The database holds headers and references, not the 4.5 MiB. */
    st_close(s);
    struct stat sb;
    assert_int_equal(stat(f->db, &sb), 0);
    assert_true(sb.st_size < 1 << 20);
    for (size_t i = 0; i < n; i++)
        free(e[i].data);
}

static uint64_t term_blob_conflict(uint64_t i)
{
    return i <= 6 ? 1 : i <= 9 ? 2 : 3;
}

/* Conflicting suffixes cut in the middle of blob-backed rows, across
 * segments; a segment whose entries were all cut off is deleted. */
static void test_blob_conflict(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    save_big(s, 1, 4, 1);
    save_big(s, 5, 4, 1);
    save_big(s, 7, 3, 2); /* cuts the row 5..8 after 6 */
    st_close(s);
    s = open_ok(f->dir); /* segment 2 from here */
    save_big(s, 10, 3, 2);
    assert_true(seg_exists(f, 1));
    assert_true(seg_exists(f, 2));
    st_close(s);
    s = open_ok(f->dir);   /* segment 3 */
    save_big(s, 10, 2, 3); /* everything of segment 2 cut off */
    assert_true(seg_gone(f, 2));
    assert_true(seg_exists(f, 1));
    assert_true(seg_exists(f, 3));
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    uint64_t bytes = check_big(&b, 1, 11, term_blob_conflict);
    assert_int_equal(st_log_bytes(s), bytes);
    st_boot_free(&b);
    save_big(s, 12, 2, 3);
    st_close(s);
    s = open_ok(f->dir);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    bytes = check_big(&b, 1, 13, term_blob_conflict);
    assert_int_equal(st_log_bytes(s), bytes);
    st_boot_free(&b);
    /* A conflict inside segment 1 leaves it (1, 2 still refer to it) and
     * drops the later ones; the new entries go to a new segment. */
    save_big(s, 3, 1, 4);
    assert_true(seg_exists(f, 1));
    assert_true(seg_gone(f, 3));
    assert_true(seg_exists(f, 4));
    st_close(s);
    s = open_ok(f->dir);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.n_entries, 3);
    assert_int_equal(b.entries[2].term, 4);
    assert_int_equal(b.entries[2].len, big_len(3, 4));
    ent_fill(g_ent_buf, big_len(3, 4), 3, 4);
    assert_memory_equal(b.entries[2].data, g_ent_buf, big_len(3, 4));
    st_boot_free(&b);
    st_close(s);
}

static uint64_t term_1_big(uint64_t i)
{
    (void)i;
    return 1;
}

/* Snapshots delete the segments whose entries they cover, exactly those,
 * and what is left loads byte-exact. */
static void test_blob_compaction(void **state)
{
    fixture *f = *state;
    char err[512];
    raft_conf c3 = make_conf(3);
    for (uint64_t k = 0; k < 3; k++) { /* segment k+1 holds 10k+1..10k+10 */
        st_store *s = open_ok(f->dir);
        save_big(s, 10 * k + 1, 5, 1);
        save_big(s, 10 * k + 6, 5, 1);
        st_close(s);
    }
    assert_true(seg_exists(f, 1) && seg_exists(f, 2) && seg_exists(f, 3));
    st_store *s = open_ok(f->dir);
    raft_snapshot sn = {.index = 12, .term = 1, .conf = c3, .data = (uint8_t *)"S", .len = 1};
    assert_int_equal(save_snapshot(s, &sn, err, sizeof err), 0);
    assert_true(seg_gone(f, 1));
    assert_true(seg_exists(f, 2) && seg_exists(f, 3));
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(st_log_bytes(s), check_big(&b, 13, 30, term_1_big));
    st_boot_free(&b);
    sn.index = 20; /* the last entry of segment 2 */
    assert_int_equal(save_snapshot(s, &sn, err, sizeof err), 0);
    assert_true(seg_gone(f, 2));
    assert_true(seg_exists(f, 3));
    st_close(s);
    s = open_ok(f->dir);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(st_log_bytes(s), check_big(&b, 21, 30, term_1_big));
    st_boot_free(&b);
    /* A leader's snapshot past the log empties it: no segment is left. */
    size_t flen;
    uint8_t *frame = frame_of("L", 1, &flen);
    raft_snapshot far = {.index = 100, .term = 4, .conf = c3, .data = frame, .len = flen};
    raft_ready rd = {.snapshot = &far};
    assert_int_equal(st_save_ready(s, &rd, err, sizeof err), 0);
    free(frame);
    assert_true(seg_gone(f, 3));
    assert_int_equal(st_log_bytes(s), 0);
    save_big(s, 101, 2, 4);
    assert_true(seg_exists(f, 4));
    st_close(s);
    s = open_ok(f->dir);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.n_entries, 2);
    assert_int_equal(b.entries[1].len, big_len(102, 4));
    st_boot_free(&b);
    st_close(s);
}

static void expect_corrupt(fixture *f, const char *what, const char *index_msg)
{
    char err[512], p[400];
    seg_path(f, 1, p, sizeof p);
    st_store *s = open_ok(f->dir);
    raft_boot b;
    int rc = load(s, &b, err, sizeof err);
    if (rc != ST_ECORRUPT)
        fail_msg("%s: load gave %d (%s), not ST_ECORRUPT", what, rc, err);
    assert_non_null(strstr(err, p));
    assert_non_null(strstr(err, index_msg));
    assert_non_null(strstr(err, what));
    assert_int_equal(b.n_entries, 0);
    st_close(s);
}

/* A segment file with a flipped byte, cut short or gone: ST_ECORRUPT naming
 * the file and the entry, never a crash and never wrong bytes. */
static void test_blob_corrupt(void **state)
{
    fixture *f = *state;
    char p[400];
    st_store *s = open_ok(f->dir);
    save_big(s, 1, 6, 1);
    save_entries(s, 7, 3, 1);
    st_close(s);
    seg_path(f, 1, p, sizeof p);
    /* (each entry starts at a multiple of 4 KiB) */
    long at3 = seg_span(1, 1) + seg_span(2, 1) + 1000;
    flip_byte(p, at3);
    expect_corrupt(f, "checksum", "log entry 3");
    flip_byte(p, at3);
    long at5 = at3 - 1000 + seg_span(3, 1) + seg_span(4, 1) + 10;
    assert_int_equal(truncate(p, at5), 0);
    expect_corrupt(f, "truncated", "log entry 5");
    assert_int_equal(unlink(p), 0);
    expect_corrupt(f, "missing", "log entry 1");
    /* The missing segment's number is not given to a new one. */
    s = open_ok(f->dir);
    save_big(s, 10, 1, 1);
    st_close(s);
    assert_true(seg_gone(f, 1));
    assert_true(seg_exists(f, 2));
    expect_corrupt(f, "missing", "log entry 1");
}

/* A crash after the bytes of a batch were written but before its row was
 * committed leaves bytes at a segment's tail and perhaps a new segment no
 * row refers to: the store opens with the log as it was, the new segment is
 * deleted, and writing goes on. */
static void test_blob_crash(void **state)
{
    fixture *f = *state;
    char err[512], p[400];
    st_store *s = open_ok(f->dir);
    save_big(s, 1, 5, 1);
    st_close(s);
    long size1 = seg_size(f, 1);
    /* What st_save_ready leaves when killed between fdatasync and commit. */
    raft_entry *e = make_big(6, 3, 2);
    seg_path(f, 1, p, sizeof p);
    int fd = open(p, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, e[0].data, e[0].len), (ssize_t)e[0].len);
    close(fd);
    seg_path(f, 2, p, sizeof p);
    fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, e[1].data, e[1].len), (ssize_t)e[1].len);
    close(fd);
    free_entries(e, 3);

    s = open_ok(f->dir);
    assert_true(seg_gone(f, 2));
    assert_true(seg_size(f, 1) >= size1);
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    check_big(&b, 1, 5, term_1_big);
    st_boot_free(&b);
    save_big(s, 6, 3, 1);
    st_close(s);
    s = open_ok(f->dir);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(st_log_bytes(s), check_big(&b, 1, 8, term_1_big));
    st_boot_free(&b);
    st_close(s);
}

/* A store written before segment files existed (schema 2, every entry in
 * its row, large ones too) opens, loads and takes large entries from then on. */
static void test_blob_upgrade(void **state)
{
    fixture *f = *state;
    char err[512];
    st_store *s = open_ok(f->dir);
    raft_entry small[20];
    for (uint64_t i = 1; i <= 20; i++)
        small[i - 1] = (raft_entry){.index = i, .term = 1, .len = 5, .data = (uint8_t *)"small"};
    raft_ready rd = {.entries = small, .n_entries = 20};
    assert_int_equal(st_save_ready(s, &rd, err, sizeof err), 0);
    st_close(s);
    /* Back to the version 2 layout, plus a row as version 2 wrote a large
     * entry: its 100000 bytes inline. */
    uint32_t len = 100000;
    uint8_t *body = malloc(17 + len);
    uint8_t h[17] = {21}; /* index 21, term 1, type 0 (LE) */
    h[8] = 1;
    ent_fill(body + 17, len, 21, 1);
    uint32_t crc = crc32c(crc32c(0, h, sizeof h), body + 17, len);
    memset(body, 0, 17);
    body[0] = 1; /* term */
    memcpy(body + 9, &len, 4);
    memcpy(body + 13, &crc, 4);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "DROP INDEX log_seg; ALTER TABLE log DROP COLUMN seg; PRAGMA user_version = 2",
                     NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT INTO log VALUES (21, 21, 100000, ?)", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_blob(st, 1, body, (int)(17 + len), SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(body);

    s = open_ok(f->dir);
    raft_boot b;
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.n_entries, 21);
    assert_memory_equal(b.entries[19].data, "small", 5);
    assert_int_equal(b.entries[20].len, len);
    ent_fill(g_ent_buf, len, 21, 1);
    assert_memory_equal(b.entries[20].data, g_ent_buf, len);
    st_boot_free(&b);
    save_big(s, 22, 2, 1);
    st_close(s);
    s = open_ok(f->dir);
    assert_int_equal(load(s, &b, err, sizeof err), 0);
    assert_int_equal(b.n_entries, 23);
    assert_int_equal(b.entries[22].len, big_len(23, 1));
    assert_int_equal(st_log_bytes(s), 100 + len + big_len(22, 1) + big_len(23, 1));
    st_boot_free(&b);
    st_close(s);
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), ST_SCHEMA_VERSION);
    sqlite3_finalize(st);
    /* and the index of rows with large entries is there */
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM sqlite_master WHERE name = 'log_seg'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A snapshot that does not fit on the disk: the background writer and an
 * install from a leader both give ST_ENOSPC, leave no file behind and the
 * stored snapshot as it was; with room again the install goes through. */
static void test_snapshot_disk_full(void **state)
{
    fixture *f = *state;
    mount_small(f, "6m");
    char err[512];
    st_store *s = open_ok(f->dir);
    save_entries(s, 1, 10, 1);
    size_t len = 8 << 20;
    uint8_t *data = malloc(len);
    uint64_t r = 5;
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)rng_next(&r);
    raft_conf c = make_conf(1);
    raft_snapshot small = {.index = 5, .term = 1, .conf = c, .data = data, .len = 100000};
    assert_int_equal(save_snapshot(s, &small, err, sizeof err), 0);
    raft_snapshot big = {.index = 8, .term = 1, .conf = c, .data = data, .len = len};
    assert_int_equal(save_snapshot(s, &big, err, sizeof err), ST_ENOSPC);
    assert_non_null(strstr(err, "/snap/8-1"));
    assert_int_equal(snap_files(f->dir, NULL), 1);
    size_t flen;
    uint8_t *frame = frame_of(data, len, &flen);
    raft_snapshot rs = {.index = 9, .term = 1, .conf = c, .data = frame, .len = flen};
    raft_ready rd = {.snapshot = &rs};
    assert_int_equal(st_save_ready(s, &rd, err, sizeof err), ST_ENOSPC);
    assert_int_equal(st_snapshot_index(s), 5);
    assert_int_equal(snap_files(f->dir, NULL), 1);
    uint8_t *back = read_stored(s, 100000);
    assert_memory_equal(back, data, 100000);
    free(back);
    assert_int_equal(mount("tmpfs", f->mnt, "tmpfs", MS_REMOUNT, "size=64m"), 0);
    assert_int_equal(st_save_ready(s, &rd, err, sizeof err), 0);
    assert_int_equal(st_snapshot_index(s), 9);
    char name[256];
    wait_one_snap_file(f->dir, name);
    assert_string_equal(name, "9-1.zst");
    st_close(s);
    s = open_ok(f->dir);
    back = read_stored(s, len);
    assert_memory_equal(back, data, len);
    free(back);
    st_close(s);
    free(frame);
    free(data);
}

int main(void)
{
    const char *se = getenv("HSTORE_TEST_SEED");
    g_seed = se ? strtoull(se, NULL, 10) : (uint64_t)time(NULL);
    printf("test_storage: mode %s, seed %llu (HSTORE_TEST_SEED replays)\n", mode(),
           (unsigned long long)g_seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test_setup_teardown(test_fresh_store, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_round_trip, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_conflict_overwrite, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_compaction, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_snapshot_writer, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_identity_and_lock, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_corrupt_entry, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_corrupt_snapshot, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_truncated_file, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_newer_schema, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_foreign_database, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_crash_safety, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_disk_full, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_read_only, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_wal_bounded, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_big_snapshot, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_background_snapshot, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_background_snapshot_crash, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_blob_round_trip, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_blob_conflict, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_blob_compaction, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_blob_corrupt, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_blob_crash, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_blob_upgrade, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_old_row_format, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_snapshot_disk_full, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
