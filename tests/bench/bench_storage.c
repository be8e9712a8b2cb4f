/*
 * bench_storage.c — how close a saved batch comes to the disk's limit.
 *
 * For batches of 1, 16 and 256 entries of 256 bytes: batches/s, entries/s,
 * p50/p99 per batch through st_save_ready(); then for batches of 1 and 8
 * entries of 1 MiB (what a large file written through the mount becomes):
 * MiB/s, p50/p99 per batch and CPU time per MiB (the store's calls and its
 * background thread: on a busy machine that, more than the disk, is what a
 * node's writes cost).  Each beside a raw loop on the same
 * directory that appends the same number of bytes to a plain file and calls
 * fdatasync() (the physical limit of one durable write of that size; the two
 * alternate, one raw write then one batch, so a shared disk's ups and downs
 * hit both alike), and a bare fdatasync loop (4 KiB).  Rates are per second
 * of time spent in the store's calls.  Then snapshots of 100 MiB (mixed state,
 * and incompressible bytes) saved and loaded.
 *
 * Usage: bench_storage DIR [seconds-per-row]   (DIR on the real disk, not tmpfs;
 *        seconds-per-row 0: the snapshots only)
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "raftkv/storage.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    double per_s, p50_us, p99_us;
    size_t n;
    double cpu_s; /* CPU time of the store's calls and its own threads */
} stats;

static double cpu_of(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static stats summarize(double *lat, size_t n, double elapsed)
{
    stats s = { 0 };
    qsort(lat, n, sizeof *lat, cmp_d);
    s.n = n;
    s.per_s = (double)n / elapsed;
    s.p50_us = lat[n / 2] * 1e6;
    s.p99_us = lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] * 1e6;
    return s;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

/* Appends `bytes` per iteration to a plain file and fdatasyncs it. */
static stats raw_loop(const char *dir, size_t bytes, double secs)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/raw.dat", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    uint8_t *buf = malloc(bytes);
    memset(buf, 0x5a, bytes);
    size_t cap = 1 << 20, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    off_t off = 0;
    double t0 = now_s(), end = t0 + secs;
    while (n < cap) {
        double a = now_s();
        if (a >= end && n >= 50)
            break;
        if (pwrite(fd, buf, bytes, off) != (ssize_t)bytes || fdatasync(fd) != 0) {
            perror("raw write");
            exit(1);
        }
        off += (off_t)bytes;
        if (off > (64 << 20))
            off = 0;   /* keep the file bounded, like a reused WAL */
        lat[n++] = now_s() - a;
    }
    stats s = summarize(lat, n, now_s() - t0);
    free(lat);
    free(buf);
    close(fd);
    unlink(path);
    return s;
}

/* Alternates one raw durable append of the batch's size and one store batch,
 * so both see the same disk conditions (the disk may be shared). */
static void paired_loop(st_store *s, const char *dir, uint64_t *next, size_t per_batch,
                        size_t ent_bytes, double secs, stats *raw_out, stats *st_out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/raw.dat", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    size_t bytes = per_batch * ent_bytes;
    size_t cap = 1 << 20, n = 0;
    double *lat = malloc(cap * sizeof *lat), *rlat = malloc(cap * sizeof *rlat);
    raft_entry *e = calloc(per_batch, sizeof *e);
    uint8_t *data = malloc(bytes);
    for (size_t i = 0; i < bytes; i++)
        data[i] = (uint8_t)(i * 131 + 7 + i / 4099);
    char err[512];
    uint64_t term = 1;
    off_t off = 0;
    double spent = 0, rspent = 0, t0 = now_s(), end = t0 + 2 * secs;
    /* CPU: this thread's inside st_save_ready, plus the store's background
     * threads (the checkpointer), which are all the other threads. */
    double cpu_in = 0, proc0 = cpu_of(RUSAGE_SELF), thr0 = cpu_of(RUSAGE_THREAD);
    while (n < cap && (now_s() < end || n < 50)) {
        double a = now_s();
        if (pwrite(fd, data, bytes, off) != (ssize_t)bytes || fdatasync(fd) != 0) {
            perror("raw write");
            exit(1);
        }
        off += (off_t)bytes;
        if (off > (64 << 20))
            off = 0;   /* keep the file bounded, like a reused WAL */
        double b = now_s();
        for (size_t i = 0; i < per_batch; i++) {
            e[i].index = *next + i;
            e[i].term = term;
            e[i].type = RAFT_ENTRY_NORMAL;
            e[i].len = (uint32_t)ent_bytes;
            e[i].data = data + i * ent_bytes;
        }
        raft_ready rd = { .hs_changed = true, .hs = { term, 1, *next - 1 },
                          .entries = e, .n_entries = per_batch };
        double c0 = cpu_of(RUSAGE_THREAD);
        if (st_save_ready(s, &rd, err, sizeof err) != 0) {
            fprintf(stderr, "save: %s\n", err);
            exit(1);
        }
        cpu_in += cpu_of(RUSAGE_THREAD) - c0;
        *next += per_batch;
        double c2 = now_s();
        rlat[n] = b - a;
        lat[n++] = c2 - b;
        rspent += b - a;
        spent += c2 - b;
    }
    *st_out = summarize(lat, n, spent);
    *raw_out = summarize(rlat, n, rspent);
    st_out->cpu_s =
        cpu_in + (cpu_of(RUSAGE_SELF) - proc0) - (cpu_of(RUSAGE_THREAD) - thr0);
    free(lat);
    free(rlat);
    free(e);
    free(data);
    close(fd);
    unlink(path);
}

static void fill_mixed(uint8_t *p, size_t len)
{
    uint64_t r = 88172645463325252ull;
    for (size_t o = 0; o < len; o += 65536) {
        size_t blk = len - o < 65536 ? len - o : 65536;
        r ^= r << 13; r ^= r >> 7; r ^= r << 17;
        int kind = (int)(r % 3);
        for (size_t i = 0; i < blk; i++) {
            if (kind == 0) {
                if ((i & 7) == 0) { r ^= r << 13; r ^= r >> 7; r ^= r << 17; }
                p[o + i] = (uint8_t)(r >> (8 * (i & 7)));
            } else if (kind == 1) {
                p[o + i] = "key=value hstore raft snapshot /dir/file 0123456789\n"[i % 52];
            } else {
                p[o + i] = (uint8_t)(i / 97);
            }
        }
    }
}

static void fill_random(uint8_t *p, size_t len)
{
    uint64_t r = 0x9e3779b97f4a7c15ull;
    for (size_t o = 0; o < len; o++) {
        if ((o & 7) == 0) { r ^= r << 13; r ^= r >> 7; r ^= r << 17; }
        p[o] = (uint8_t)(r >> (8 * (o & 7)));
    }
}

/* One snapshot of data: written as the node writes one (the background
 * writer, here all in this thread), then the store reopened and the state
 * read back as the node reads one at start (a stream).  1 when it came back
 * the same. */
static int snap_round(st_store **sp, const char *dir, uint64_t *next, const uint8_t *data,
                      size_t len, const char *what)
{
    char err[512];
    st_store *s = *sp;
    raft_snapshot sn = { .index = (*next)++, .term = 1 };
    sn.conf.n = 3;
    for (int i = 0; i < 3; i++) {
        sn.conf.ids[i] = (uint64_t)i + 1;
        snprintf(sn.conf.addrs[i], RAFT_ADDR_MAX, "127.0.0.1:%d", 7000 + i);
    }
    double t0 = now_s();
    st_snap_writer *w = NULL;
    int rc = st_bgsnap_begin(s, sn.index, sn.term, &w, err, sizeof err);
    if (!rc)
        rc = st_bgsnap_write(w, data, len, err, sizeof err);
    if (!rc)
        rc = st_bgsnap_finish(w, err, sizeof err);
    if (rc && w)
        st_bgsnap_abort(w);
    double tw = now_s();
    if (!rc)
        rc = st_bgsnap_commit(w, &sn.conf, err, sizeof err);
    if (rc) {
        fprintf(stderr, "snapshot: %s\n", err);
        return 0;
    }
    double t1 = now_s();
    uint64_t comp = st_snapshot_stored_bytes(s);
    st_close(s); /* its checkpoint copies what the snapshot left in the WAL */
    *sp = NULL;
    double tc = now_s();
    if (st_open(dir, &s, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 0;
    }
    *sp = s;
    raft_boot b;
    double t2 = now_s();
    uint8_t *back = malloc(len);
    st_snap_reader *rd = NULL;
    if (st_load_stored(s, &b, err, sizeof err) != 0 || !back ||
        st_snap_reader_open(s, &rd, err, sizeof err) != 0) {
        fprintf(stderr, "load: %s\n", err);
        free(back);
        return 0;
    }
    int got = st_snap_read(rd, back, len);
    if (st_snap_reader_close(rd, err, sizeof err) != 0) {
        fprintf(stderr, "load: %s\n", err);
        got = -1;
    }
    double t3 = now_s();
    int same = got == 0 && memcmp(back, data, len) == 0;
    free(back);
    st_boot_free(&b);
    printf("snapshot %zu MiB %-14s (stored %6.1f MiB): save %.2f s (%4.0f MiB/s; commit %.1f ms), "
           "close %.2f s, load %.2f s (%4.0f MiB/s)%s\n",
           len >> 20, what, (double)comp / (1 << 20), t1 - t0, (double)(len >> 20) / (t1 - t0),
           (t1 - tw) * 1e3, tc - t1, t3 - t2, (double)(len >> 20) / (t3 - t2), same ? "" : " (MISMATCH!)");
    return same;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [seconds-per-row]\n", argv[0]);
        return 2;
    }
    const char *base = argv[1];
    double secs = argc > 2 ? atof(argv[2]) : 3.0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/store", base);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(base, 0755);

    st_store *s;
    char err[512];
    if (st_open(dir, &s, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("hstore storage benchmark: %s, %.1f s per row, entries of 256 bytes\n\n", dir, secs);
    stats bare = raw_loop(base, 4096, secs);
    printf("raw fdatasync loop (4 KiB append): %8.0f /s   p50 %7.1f us   p99 %7.1f us\n\n",
           bare.per_s, bare.p50_us, bare.p99_us);
    printf("%-7s | %9s %10s %9s %9s | %-19s | %9s %9s | %s\n", "batch", "batches/s", "entries/s",
           "p50 us", "p99 us", "raw append+fdatasync", "p50 ratio", "p99 ratio", "target");
    printf("--------+-----------------------------------------+---------------------+---------------------+-------\n");
    size_t sizes[] = { 1, 16, 256 };
    uint64_t next = 1;
    int ok = 1;
    for (int i = 0; i < 3 && secs > 0; i++) {
        stats raw, st;
        paired_loop(s, base, &next, sizes[i], 256, secs, &raw, &st);
        double r50 = st.p50_us / raw.p50_us, r99 = st.p99_us / raw.p99_us;
        int pass = r50 <= 1.5 && r99 <= 1.5;
        ok &= pass;
        printf("%3zu x256 | %9.0f %10.0f %9.1f %9.1f | p50 %6.1f p99 %6.1f | %9.2f %9.2f | %s\n",
               sizes[i], st.per_s, st.per_s * (double)sizes[i], st.p50_us, st.p99_us, raw.p50_us,
               raw.p99_us, r50, r99, pass ? "ok (<=1.5x)" : "MISSED");
    }

    /* Entries of 1 MiB: the bytes of a large file, in the pieces the node
     * cuts it into.  Compared with the raw durable append of the same size. */
    printf("\n%-7s | %9s %9s %9s %8s | %-21s | %9s %9s\n", "batch", "MiB/s", "p50 ms",
           "p99 ms", "CPU ms/MiB", "raw MiB/s  p50 ms", "p50 ratio", "p99 ratio");
    printf("--------+----------------------------------------+-----------------------+--------------------\n");
    size_t big[] = { 1, 8 };
    for (int i = 0; i < 2 && secs > 0; i++) {
        stats raw, st;
        paired_loop(s, base, &next, big[i], 1u << 20, secs, &raw, &st);
        double mib = (double)big[i];
        printf("%3zu x1M  | %9.1f %9.2f %9.2f %10.2f | %9.1f %9.2f  | %9.2f %9.2f\n", big[i],
               st.per_s * mib, st.p50_us / 1e3, st.p99_us / 1e3,
               st.cpu_s * 1e3 / ((double)st.n * mib), raw.per_s * mib, raw.p50_us / 1e3,
               st.p50_us / raw.p50_us, st.p99_us / raw.p99_us);
    }

    /* Snapshots of 100 MiB: mixed state, then incompressible bytes (what a
     * store of large files holds). */
    size_t len = 100u << 20;
    uint8_t *data = malloc(len);
    if (!data)
        return 1;
    fill_mixed(data, len);
    printf("\n");
    int same = snap_round(&s, dir, &next, data, len, "mixed state");
    fill_random(data, len);
    same &= snap_round(&s, dir, &next, data, len, "incompressible");
    st_close(s);
    free(data);
    (void)ok;
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return same ? 0 : 1;
}
