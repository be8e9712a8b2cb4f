/*
 * bench_fs.c — filesystem workloads for `make bench`, run through an hstore
 * mount or, for comparison, on a local directory of the same disk.
 *
 * Each subcommand prints one line of `key=value` fields on stdout, which
 * tests/bench/run-bench.sh turns into its table; errors go to stderr with the
 * failing call, the path and the errno text, and make the exit status 1.
 *
 *   bench_fs fsync DIR [N]
 *       N times (default 1000): append 4 KiB to a scratch file in DIR and
 *       fdatasync it.  The disk's cost of one durable write, for scale.
 *   bench_fs smallfiles DIR --files N [--threads T] [--fsync] [--prefix P]
 *                           [--dir-per-thread]
 *       N small files shared among T threads: open(O_CREAT|O_TRUNC), write 256
 *       bytes, [fsync,] close.  Through a mount the close is the commit (one
 *       replicated PUT); on a local directory --fsync gives the same promise.
 *       --dir-per-thread: thread t writes in DIR/tT (made first, untimed), so
 *       that the kernel's per-directory lock on create does not serialize them.
 *   bench_fs cat DIR --files N [--reads R] [--threads T] [--prefix P]
 *       R reads (default N) of files made by `smallfiles` with the same N and
 *       prefix: open, read, close, and the 256 bytes checked.
 *   bench_fs seqwrite FILE --mb M [--fsync] [--bs KIB]
 *       writes M MiB sequentially in blocks of KIB KiB (default 1024), [fsync,]
 *       close; the time includes the close (the commit, through a mount).
 *   bench_fs seqread FILE [--bs KIB]
 *       reads FILE to its end and checks every byte against the pattern
 *       seqwrite wrote.
 *   bench_fs lsl DIR [--reps R]
 *       what `ls -l` does, R times (default 20): read the directory and
 *       lstat every entry; one latency per pass, and entries/s.
 *   bench_fs copy SRC DST --files N [--prefix P]
 *       what `cp -r` does to the N files `smallfiles` made in SRC: for each,
 *       open and read it, create it in DST (made first), write it, close;
 *       one latency per file, and files/s.
 *   bench_fs catchanged WDIR RDIR [--reps R]
 *       R times (default 20): rewrite WDIR/changed (256 bytes, O_TRUNC,
 *       close), untimed, then open, read and close RDIR/changed (the same
 *       file through another node's mount), timed; what it read must be
 *       what was just written.  The latency of a read after a change made
 *       elsewhere.
 *
 * Every subcommand takes --max-seconds S (default 120): workers stop starting
 * operations after S seconds and the run counts as failed, and an alarm kills
 * the process S + 30 seconds in, so a stuck system call cannot hang the run.
 * Latencies come from CLOCK_MONOTONIC; percentiles from the sorted samples.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SMALL_SIZE 256
#define MIB (1024u * 1024u)
#define PATH_LEN 4096

static double g_max_seconds = 120;
static uint64_t g_deadline_ns;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static bool past_deadline(void)
{
    return now_ns() > g_deadline_ns;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted samples, in milliseconds. */
static double pct_ms(const uint64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)sorted[i] / 1e6;
}

static void print_lat(const uint64_t *lat, size_t n)
{
    qsort((void *)lat, n, sizeof *lat, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)lat[i];
    printf(" p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f", pct_ms(lat, n, 0.50),
           pct_ms(lat, n, 0.90), pct_ms(lat, n, 0.99), n ? (double)lat[n - 1] / 1e6 : 0.0,
           n ? sum / (double)n / 1e6 : 0.0);
}

/* The first ERR_PRINT_MAX errors are printed; a failing mount would
 * otherwise print one line per operation. */
#define ERR_PRINT_MAX 10
static atomic_int g_errs_printed;

static void err_path(const char *what, const char *path, int e)
{
    int k = atomic_fetch_add(&g_errs_printed, 1);
    if (k < ERR_PRINT_MAX)
        fprintf(stderr, "bench_fs: %s %s: %s (errno %d)\n", what, path, strerror(e), e);
    else if (k == ERR_PRINT_MAX)
        fprintf(stderr, "bench_fs: more errors follow, not printed\n");
}

/* Writes all of buf; returns 0 or an errno. */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (w == 0)
            return EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The content of small file i: its index, then a fixed filler. */
static void small_content(uint64_t i, char *buf)
{
    int n = snprintf(buf, SMALL_SIZE, "file %" PRIu64 " ", i);
    for (int k = n; k < SMALL_SIZE; k++)
        buf[k] = (char)('a' + (k % 26));
}

/* ---- fsync ----------------------------------------------------------------- */

static int cmd_fsync(const char *dir, uint64_t n)
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/bench_fs-fsync.%d", dir, (int)getpid());
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        err_path("open", path, errno);
        return 1;
    }
    static char buf[4096];
    memset(buf, 'x', sizeof buf);
    uint64_t *lat = calloc(n ? n : 1, sizeof *lat);
    if (lat == NULL) {
        close(fd);
        unlink(path);
        return 1;
    }
    int rc = 0;
    size_t done = 0;
    uint64_t t_start = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        if (past_deadline()) {
            fprintf(stderr, "bench_fs: fsync %s: past --max-seconds %.0f after %zu writes\n", path,
                    g_max_seconds, done);
            rc = 1;
            break;
        }
        uint64_t t0 = now_ns();
        ssize_t w = pwrite(fd, buf, sizeof buf, (off_t)(i * sizeof buf));
        if (w != (ssize_t)sizeof buf) {
            err_path("pwrite", path, w < 0 ? errno : EIO);
            rc = 1;
            break;
        }
        if (fdatasync(fd) != 0) {
            err_path("fdatasync", path, errno);
            rc = 1;
            break;
        }
        lat[done++] = now_ns() - t0;
    }
    double secs = (double)(now_ns() - t_start) / 1e9;
    close(fd);
    if (unlink(path) != 0)
        err_path("unlink", path, errno);
    printf("op=fsync ok=%zu errors=%d seconds=%.3f per_sec=%.1f", done, rc, secs,
           secs > 0 ? (double)done / secs : 0.0);
    print_lat(lat, done);
    printf("\n");
    free(lat);
    return rc;
}

/* ---- smallfiles and cat ----------------------------------------------------- */

typedef struct sf_worker {
    pthread_t th;
    const char *dir, *prefix;
    int idx, threads;
    bool do_fsync, is_read;
    char subdir[16];       /* "" or "/tN" with --dir-per-thread */
    uint64_t files, reads; /* files in the set; reads to do (cat) */
    uint64_t *lat;
    size_t done, errors; /* errors: operations among `done` that failed */
    bool timed_out;
    uint64_t start_ns, end_ns;
    pthread_barrier_t *barrier;
} sf_worker;

/* Small file i's path; 1 (error printed) if it does not fit. */
static int small_path(const sf_worker *w, uint64_t i, char *path)
{
    int n = snprintf(path, PATH_LEN, "%s%s/%s%06" PRIu64, w->dir, w->subdir, w->prefix, i);
    if (n < 0 || n >= PATH_LEN) {
        err_path("path under", w->dir, ENAMETOOLONG);
        return 1;
    }
    return 0;
}

/* create, write 256 bytes, [fsync], close; returns 0 or 1 (error printed). */
static int small_write(const sf_worker *w, uint64_t i)
{
    char path[PATH_LEN], buf[SMALL_SIZE];
    if (small_path(w, i, path) != 0)
        return 1;
    small_content(i, buf);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        err_path("open", path, errno);
        return 1;
    }
    int e = write_all(fd, buf, sizeof buf);
    if (e != 0) {
        err_path("write", path, e);
        close(fd);
        return 1;
    }
    if (w->do_fsync && fsync(fd) != 0) {
        err_path("fsync", path, errno);
        close(fd);
        return 1;
    }
    /* Through a mount, close() carries the commit and its failure. */
    if (close(fd) != 0) {
        err_path("close", path, errno);
        return 1;
    }
    return 0;
}

/* open, read, close, and compare with what small_write wrote. */
static int small_read(const sf_worker *w, uint64_t i)
{
    char path[PATH_LEN], want[SMALL_SIZE], got[SMALL_SIZE + 1];
    if (small_path(w, i, path) != 0)
        return 1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_path("open", path, errno);
        return 1;
    }
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, got + have, sizeof got - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err_path("read", path, errno);
            close(fd);
            return 1;
        }
        if (r == 0 || (have += (size_t)r) == sizeof got)
            break;
    }
    if (close(fd) != 0) {
        err_path("close", path, errno);
        return 1;
    }
    small_content(i, want);
    if (have != SMALL_SIZE || memcmp(got, want, SMALL_SIZE) != 0) {
        if (atomic_fetch_add(&g_errs_printed, 1) < ERR_PRINT_MAX)
            fprintf(stderr, "bench_fs: read %s: %zu bytes or content not the %d written\n", path,
                    have, SMALL_SIZE);
        return 1;
    }
    return 0;
}

static void *sf_thread(void *arg)
{
    sf_worker *w = arg;
    pthread_barrier_wait(w->barrier);
    w->start_ns = now_ns();
    uint64_t total = w->is_read ? w->reads : w->files;
    /* Worker k takes operations k, k+T, k+2T, ...; reads cycle over the set. */
    for (uint64_t j = (uint64_t)w->idx; j < total; j += (uint64_t)w->threads) {
        if (past_deadline()) {
            fprintf(stderr, "bench_fs: %s %s: past --max-seconds %.0f\n",
                    w->is_read ? "cat" : "smallfiles", w->dir, g_max_seconds);
            w->timed_out = true;
            break;
        }
        uint64_t t0 = now_ns();
        int rc = w->is_read ? small_read(w, j % w->files) : small_write(w, j);
        w->lat[w->done++] = now_ns() - t0;
        w->errors += (size_t)rc;
    }
    w->end_ns = now_ns();
    return NULL;
}

static int cmd_small(const char *dir, bool is_read, uint64_t files, uint64_t reads, int threads,
                     bool do_fsync, const char *prefix, bool dir_per_thread)
{
    if (files == 0 || threads < 1 || threads > 256) {
        fprintf(stderr, "bench_fs: need --files >= 1 and --threads 1..256\n");
        return 2;
    }
    if (!is_read)
        reads = files;
    else if (reads == 0)
        reads = files;
    sf_worker *w = calloc((size_t)threads, sizeof *w);
    uint64_t *lat = calloc(reads, sizeof *lat);
    if (w == NULL || lat == NULL) {
        free(w);
        free(lat);
        fprintf(stderr, "bench_fs: out of memory\n");
        return 1;
    }
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)threads);
    /* Each worker records into its own slice of lat. */
    uint64_t off = 0;
    for (int t = 0; t < threads; t++) {
        uint64_t mine = reads / (uint64_t)threads + ((uint64_t)t < reads % (uint64_t)threads);
        w[t] = (sf_worker){.dir = dir,
                           .prefix = prefix,
                           .idx = t,
                           .threads = threads,
                           .do_fsync = do_fsync,
                           .is_read = is_read,
                           .files = files,
                           .reads = reads,
                           .lat = lat + off,
                           .barrier = &barrier};
        off += mine;
        if (dir_per_thread) {
            snprintf(w[t].subdir, sizeof w[t].subdir, "/t%d", t);
            char path[PATH_LEN];
            snprintf(path, sizeof path, "%s%s", dir, w[t].subdir);
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                err_path("mkdir", path, errno);
                free(w);
                free(lat);
                return 1;
            }
        }
    }
    int started = 0, rc = 0;
    for (int t = 0; t < threads; t++) {
        int e = pthread_create(&w[t].th, NULL, sf_thread, &w[t]);
        if (e != 0) {
            /* The barrier waits for all: without every thread, stop here. */
            fprintf(stderr, "bench_fs: pthread_create: %s\n", strerror(e));
            exit(1);
        }
        started++;
    }
    for (int t = 0; t < started; t++)
        pthread_join(w[t].th, NULL);
    pthread_barrier_destroy(&barrier);

    /* Gather the slices into one array for the percentiles. */
    size_t n = 0, errors = 0;
    bool timed_out = false;
    uint64_t t_start = UINT64_MAX, t_end = 0;
    off = 0;
    for (int t = 0; t < threads; t++) {
        uint64_t mine = reads / (uint64_t)threads + ((uint64_t)t < reads % (uint64_t)threads);
        memmove(lat + n, lat + off, w[t].done * sizeof *lat);
        n += w[t].done;
        off += mine;
        errors += w[t].errors;
        timed_out |= w[t].timed_out;
        if (w[t].start_ns < t_start)
            t_start = w[t].start_ns;
        if (w[t].end_ns > t_end)
            t_end = w[t].end_ns;
    }
    double secs = (double)(t_end - t_start) / 1e9;
    printf(
        "op=%s threads=%d dirs=%d fsync=%d ok=%zu errors=%zu timed_out=%d seconds=%.3f per_sec=%.1f",
        is_read ? "cat" : "smallfiles", threads, dir_per_thread ? threads : 1, do_fsync ? 1 : 0,
        n - errors, errors, timed_out ? 1 : 0, secs, secs > 0 ? (double)(n - errors) / secs : 0.0);
    print_lat(lat, n);
    printf("\n");
    if (errors > 0 || timed_out || n < reads)
        rc = 1;
    free(lat);
    free(w);
    return rc;
}

/* ---- seqwrite and seqread ----------------------------------------------------- */

/* Block content: every 8-byte word holds its file offset mixed with a constant,
 * so a misplaced, stale or zeroed block shows. */
static void fill_block(uint64_t *words, size_t nwords, uint64_t offset)
{
    for (size_t k = 0; k < nwords; k++)
        words[k] = (offset + k * 8) ^ 0x5a17e5eedULL;
}

static int cmd_seqwrite(const char *path, uint64_t mb, size_t bs, bool do_fsync)
{
    uint64_t total = mb * MIB;
    uint64_t *buf = malloc(bs);
    if (buf == NULL)
        return 1;
    int rc = 1;
    uint64_t t0 = now_ns();
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        err_path("open", path, errno);
        free(buf);
        return 1;
    }
    uint64_t off = 0;
    while (off < total) {
        if (past_deadline()) {
            fprintf(stderr, "bench_fs: seqwrite %s: past --max-seconds %.0f at %" PRIu64 " MiB\n",
                    path, g_max_seconds, off / MIB);
            close(fd);
            goto out;
        }
        size_t len = total - off < bs ? (size_t)(total - off) : bs;
        fill_block(buf, len / 8, off);
        int e = write_all(fd, buf, len);
        if (e != 0) {
            err_path("write", path, e);
            close(fd);
            goto out;
        }
        off += len;
    }
    if (do_fsync && fsync(fd) != 0) {
        err_path("fsync", path, errno);
        close(fd);
        goto out;
    }
    if (close(fd) != 0) {
        err_path("close", path, errno);
        goto out;
    }
    rc = 0;
out:;
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("op=seqwrite fsync=%d bytes=%" PRIu64 " errors=%d seconds=%.3f mb_per_sec=%.1f\n",
           do_fsync ? 1 : 0, off, rc, secs, secs > 0 ? (double)off / MIB / secs : 0.0);
    free(buf);
    return rc;
}

static int cmd_seqread(const char *path, size_t bs)
{
    uint64_t *buf = malloc(bs), *want = malloc(bs);
    if (buf == NULL || want == NULL) {
        free(buf);
        free(want);
        return 1;
    }
    int rc = 1;
    uint64_t off = 0;
    uint64_t t0 = now_ns();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_path("open", path, errno);
        goto out;
    }
    for (;;) {
        if (past_deadline()) {
            fprintf(stderr, "bench_fs: seqread %s: past --max-seconds %.0f at %" PRIu64 " MiB\n",
                    path, g_max_seconds, off / MIB);
            close(fd);
            goto out;
        }
        /* Fill a whole block (short reads happen) so the check stays aligned. */
        size_t have = 0;
        while (have < bs) {
            ssize_t r = read(fd, (char *)buf + have, bs - have);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                err_path("read", path, errno);
                close(fd);
                goto out;
            }
            if (r == 0)
                break;
            have += (size_t)r;
        }
        if (have == 0)
            break;
        fill_block(want, (have + 7) / 8, off);
        if (memcmp(buf, want, have) != 0) {
            fprintf(stderr, "bench_fs: read %s: wrong data in the block at offset %" PRIu64 "\n",
                    path, off);
            close(fd);
            goto out;
        }
        off += have;
        if (have < bs)
            break;
    }
    if (close(fd) != 0) {
        err_path("close", path, errno);
        goto out;
    }
    rc = 0;
out:;
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("op=seqread bytes=%" PRIu64 " errors=%d seconds=%.3f mb_per_sec=%.1f\n", off, rc, secs,
           secs > 0 ? (double)off / MIB / secs : 0.0);
    free(buf);
    free(want);
    return rc;
}

/* ---- command line ----------------------------------------------------------- */

static int cmd_lsl(const char *dir, uint64_t reps)
{
    uint64_t *lat = calloc(reps ? reps : 1, sizeof *lat);
    if (lat == NULL)
        return 1;
    uint64_t entries = 0, done = 0, t_start = now_ns();
    int rc = 0;
    for (uint64_t r = 0; r < reps && rc == 0 && !past_deadline(); r++) {
        uint64_t t0 = now_ns(), n = 0;
        DIR *d = opendir(dir);
        if (d == NULL) {
            err_path("opendir", dir, errno);
            rc = 1;
            break;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            struct stat st;
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                err_path("lstat in", dir, errno);
                rc = 1;
                break;
            }
            n++;
        }
        closedir(d);
        lat[done++] = now_ns() - t0;
        entries = n;
    }
    double secs = (double)(now_ns() - t_start) / 1e9;
    printf("op=lsl entries=%" PRIu64 " reps=%" PRIu64 " errors=%d seconds=%.3f per_sec=%.1f",
           entries, done, rc, secs, secs > 0 ? (double)(entries * done) / secs : 0.0);
    print_lat(lat, done);
    printf("\n");
    free(lat);
    return rc || done < reps;
}

static int cmd_copy(const char *src, const char *dst, uint64_t files, const char *prefix)
{
    if (mkdir(dst, 0755) != 0 && errno != EEXIST) {
        err_path("mkdir", dst, errno);
        return 1;
    }
    uint64_t *lat = calloc(files ? files : 1, sizeof *lat);
    if (lat == NULL)
        return 1;
    uint64_t done = 0, errors = 0, t_start = now_ns();
    char buf[64 * 1024], a[PATH_LEN], b[PATH_LEN];
    for (uint64_t i = 0; i < files && !past_deadline(); i++) {
        snprintf(a, sizeof a, "%s/%s%06" PRIu64, src, prefix, i);
        snprintf(b, sizeof b, "%s/%s%06" PRIu64, dst, prefix, i);
        uint64_t t0 = now_ns();
        int in = open(a, O_RDONLY | O_CLOEXEC);
        if (in < 0) {
            err_path("open", a, errno);
            errors++;
            continue;
        }
        ssize_t len = read(in, buf, sizeof buf);
        close(in);
        int out = open(b, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
        if (len < 0 || out < 0) {
            err_path(len < 0 ? "read" : "open", len < 0 ? a : b, errno);
            if (out >= 0)
                close(out);
            errors++;
            continue;
        }
        int e = write_all(out, buf, (size_t)len);
        if (close(out) != 0 && e == 0)
            e = errno;
        if (e != 0) {
            err_path("write", b, e);
            errors++;
            continue;
        }
        lat[done++] = now_ns() - t0;
    }
    double secs = (double)(now_ns() - t_start) / 1e9;
    printf("op=copy files=%" PRIu64 " ok=%" PRIu64 " errors=%" PRIu64 " seconds=%.3f per_sec=%.1f",
           files, done, errors, secs, secs > 0 ? (double)done / secs : 0.0);
    print_lat(lat, done);
    printf("\n");
    free(lat);
    return errors || done < files;
}

/* Reads path (open, read to the end, close) into buf, up to cap bytes;
 * the length, or -1 with errno set. */
static ssize_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, cap - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0 || (have += (size_t)r) == cap)
            break;
    }
    close(fd);
    return (ssize_t)have;
}

static int cmd_catchanged(const char *wdir, const char *rdir, uint64_t reps)
{
    char wpath[PATH_LEN], rpath[PATH_LEN];
    snprintf(wpath, sizeof wpath, "%s/changed", wdir);
    snprintf(rpath, sizeof rpath, "%s/changed", rdir);
    uint64_t *lat = calloc(reps ? reps : 1, sizeof *lat);
    if (lat == NULL)
        return 1;
    uint64_t done = 0, errors = 0, t_start = now_ns();
    char want[SMALL_SIZE], got[SMALL_SIZE + 1];
    for (uint64_t r = 0; r < reps && !past_deadline(); r++) {
        /* The change, untimed: once close() returned it is acknowledged. */
        memset(want, 'a' + (int)(r % 26), sizeof want);
        snprintf(want, sizeof want, "change %" PRIu64 "\n", r);
        int fd = open(wpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int e = fd < 0 ? errno : write_all(fd, want, sizeof want);
        if (fd >= 0 && close(fd) != 0 && e == 0)
            e = errno;
        if (e != 0) {
            err_path("write", wpath, e);
            errors++;
            continue;
        }
        uint64_t t0 = now_ns();
        ssize_t n = read_file(rpath, got, sizeof got);
        uint64_t t1 = now_ns();
        if (n < 0) {
            err_path("read", rpath, errno);
            errors++;
            continue;
        }
        if ((size_t)n != sizeof want || memcmp(got, want, sizeof want) != 0) {
            fprintf(stderr, "bench_fs: %s: change %" PRIu64 " not seen (%zd bytes read)\n", rpath,
                    r, n);
            errors++;
            continue;
        }
        lat[done++] = t1 - t0;
    }
    double secs = (double)(now_ns() - t_start) / 1e9;
    printf("op=catchanged reps=%" PRIu64 " ok=%" PRIu64 " errors=%" PRIu64
           " seconds=%.3f per_sec=%.1f",
           reps, done, errors, secs, secs > 0 ? (double)done / secs : 0.0);
    print_lat(lat, done);
    printf("\n");
    free(lat);
    return errors || done < reps;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_fs fsync DIR [N]\n"
            "       bench_fs smallfiles DIR --files N [--threads T] [--fsync] [--prefix P]\n"
            "                           [--dir-per-thread]\n"
            "       bench_fs cat DIR --files N [--reads R] [--threads T] [--prefix P]\n"
            "       bench_fs seqwrite FILE --mb M [--fsync] [--bs KIB]\n"
            "       bench_fs seqread FILE [--bs KIB]\n"
            "       bench_fs lsl DIR [--reps R]\n"
            "       bench_fs copy SRC DST --files N [--prefix P]\n"
            "       bench_fs catchanged WDIR RDIR [--reps R]\n"
            "every subcommand: [--max-seconds S] (default 120)\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        usage();
        return 2;
    }
    const char *cmd = argv[1], *target = argv[2];
    uint64_t files = 0, reads = 0, threads = 1, mb = 100, bs_kib = 1024, n = 1000, reps = 20;
    const char *dst = NULL;
    bool do_fsync = false, dir_per_thread = false;
    const char *prefix = "sf";
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--fsync") == 0) {
            do_fsync = true;
            continue;
        }
        if (strcmp(a, "--dir-per-thread") == 0) {
            dir_per_thread = true;
            continue;
        }
        if (strcmp(cmd, "fsync") == 0 && i == 3 && a[0] != '-') {
            ok = parse_u64(a, &n);
        } else if ((strcmp(cmd, "copy") == 0 || strcmp(cmd, "catchanged") == 0) && i == 3 &&
                   a[0] != '-') {
            dst = a;
        } else if (strcmp(a, "--reps") == 0 && v != NULL) {
            ok = parse_u64(v, &reps) && reps >= 1 && reps <= 1000000;
            i++;
        } else if (v == NULL) {
            ok = false;
        } else if (strcmp(a, "--files") == 0) {
            ok = parse_u64(v, &files);
            i++;
        } else if (strcmp(a, "--reads") == 0) {
            ok = parse_u64(v, &reads);
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            ok = parse_u64(v, &threads) && threads >= 1 && threads <= 256;
            i++;
        } else if (strcmp(a, "--mb") == 0) {
            ok = parse_u64(v, &mb);
            i++;
        } else if (strcmp(a, "--bs") == 0) {
            ok = parse_u64(v, &bs_kib) && bs_kib >= 1 && bs_kib <= 65536;
            i++;
        } else if (strcmp(a, "--prefix") == 0) {
            prefix = v;
            ok = strchr(v, '/') == NULL;
            i++;
        } else if (strcmp(a, "--max-seconds") == 0) {
            uint64_t s;
            ok = parse_u64(v, &s) && s >= 1 && s <= 86400;
            g_max_seconds = (double)s;
            i++;
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "bench_fs: bad argument '%s'\n", a);
            usage();
            return 2;
        }
    }
    g_deadline_ns = now_ns() + (uint64_t)(g_max_seconds * 1e9);
    /* The last resort if a system call never returns: SIGALRM ends the process. */
    alarm((unsigned)g_max_seconds + 30);

    if (strcmp(cmd, "fsync") == 0)
        return cmd_fsync(target, n);
    if (strcmp(cmd, "smallfiles") == 0)
        return cmd_small(target, false, files, 0, (int)threads, do_fsync, prefix, dir_per_thread);
    if (strcmp(cmd, "cat") == 0)
        return cmd_small(target, true, files, reads, (int)threads, false, prefix, false);
    if (strcmp(cmd, "seqwrite") == 0)
        return cmd_seqwrite(target, mb, (size_t)bs_kib * 1024, do_fsync);
    if (strcmp(cmd, "seqread") == 0)
        return cmd_seqread(target, (size_t)bs_kib * 1024);
    if (strcmp(cmd, "lsl") == 0)
        return cmd_lsl(target, reps);
    if (strcmp(cmd, "copy") == 0 && dst != NULL)
        return cmd_copy(target, dst, files, prefix);
    if (strcmp(cmd, "catchanged") == 0 && dst != NULL)
        return cmd_catchanged(target, dst, reps);
    usage();
    return 2;
}
