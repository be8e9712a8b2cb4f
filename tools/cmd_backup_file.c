/*
 * cmd_backup_file.c — reading and checking the backup file format of
 * backup_file.h: the header, the whole-file checks, and the streaming
 * decode of the state (zstd, then the state machine's snapshot decoder),
 * shared by `hstore backup` (which checks what it wrote) and `hstore restore`.
 */
#include "tools/backup_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "raftkv/byte.h"
#include "raftkv/crc32c.h"

void bk_header_encode(const bk_header *h, uint8_t out[BK_HDR_LEN])
{
    memset(out, 0, BK_HDR_LEN);
    memcpy(out, BK_MAGIC, 8);
    byte_put32(out + 8, BK_VERSION);
    byte_put32(out + 12, BK_HDR_LEN);
    byte_put64(out + 16, h->index);
    byte_put64(out + 24, h->term);
    byte_put64(out + 32, h->length);
    byte_put32(out + 40, h->crc);
    byte_put64(out + 48, (uint64_t)h->created_ns);
    byte_put32(out + 60, crc32c(0, out, 60));
}

static ssize_t read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (uint8_t *)buf + got, n - got);
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

int bk_open(const char *path, bk_header *h, int *fdp, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    uint8_t b[BK_HDR_LEN];
    ssize_t got = read_full(fd, b, sizeof b);
    const char *why = NULL;
    if (fstat(fd, &sb) != 0 || got < 0)
        why = strerror(errno);
    else if (got < 8 || memcmp(b, BK_MAGIC, 8) != 0)
        why = "not an hstore backup (no HSTBACKP magic at its start)";
    else if (got < BK_HDR_LEN)
        why = "truncated: shorter than the backup header";
    else if (byte_get32(b + 60) != crc32c(0, b, 60))
        why = "corrupt: the header checksum does not match";
    else if (byte_get32(b + 8) != BK_VERSION || byte_get32(b + 12) != BK_HDR_LEN)
        why = "a backup format this build does not read (newer hstore?)";
    if (why) {
        snprintf(err, errlen, "%s: %s", path, why);
        close(fd);
        return -1;
    }
    h->index = byte_get64(b + 16);
    h->term = byte_get64(b + 24);
    h->length = byte_get64(b + 32);
    h->crc = byte_get32(b + 40);
    h->created_ns = (int64_t)byte_get64(b + 48);
    uint64_t want = (uint64_t)BK_HDR_LEN + h->length;
    if ((uint64_t)sb.st_size != want || h->length < 1 || h->index < 1) {
        snprintf(err, errlen, "%s: %s: the header announces %" PRIu64 " bytes, the file has %lld",
                 path, (uint64_t)sb.st_size < want ? "truncated" : "corrupt (bytes past the end)",
                 want, (long long)sb.st_size);
        close(fd);
        return -1;
    }
    size_t cap = 1u << 20;
    uint8_t *buf = malloc(cap);
    uint32_t crc = 0;
    uint64_t left = h->length;
    while (buf && left) {
        ssize_t r = read_full(fd, buf, left < cap ? (size_t)left : cap);
        if (r <= 0)
            break;
        crc = crc32c(crc, buf, (size_t)r);
        left -= (uint64_t)r;
    }
    free(buf);
    if (left || crc != h->crc || lseek(fd, BK_HDR_LEN, SEEK_SET) != BK_HDR_LEN) {
        snprintf(err, errlen, "%s: %s", path,
                 !buf            ? "out of memory"
                 : left          ? "cannot read it whole"
                 : crc != h->crc ? "corrupt: the checksum of the snapshot does not match the header"
                                 : strerror(errno));
        close(fd);
        return -1;
    }
    *fdp = fd;
    return 0;
}

/* The decompressing reader kv_snapshot_read pulls from. */
typedef struct dec {
    int fd;
    uint64_t left; /* compressed bytes not read from fd yet */
    ZSTD_DCtx *z;
    uint8_t *in, *out;
    size_t in_cap, out_cap;
    ZSTD_inBuffer zin;
    size_t out_pos, out_len; /* unread decompressed bytes: out[out_pos, out_len) */
    size_t zret;             /* last ZSTD_decompressStream result: 0 at the frame's end */
    bk_tee_fn tee;
    void *arg;
    uint64_t raw;
    const char *why;
} dec;

/* More decompressed bytes into out (out_pos == out_len on entry).  false at
 * the end of the frame or on an error (why). */
static bool dec_more(dec *d)
{
    d->out_pos = d->out_len = 0;
    for (;;) {
        if (d->zin.pos == d->zin.size && d->left) {
            size_t n = d->left < d->in_cap ? (size_t)d->left : d->in_cap;
            ssize_t r = read_full(d->fd, d->in, n);
            if (r != (ssize_t)n) {
                d->why = "cannot read the file";
                return false;
            }
            d->left -= n;
            d->zin = (ZSTD_inBuffer){d->in, n, 0};
        }
        if (d->zin.pos == d->zin.size && d->zret == 0)
            return false; /* the frame ended with the input */
        ZSTD_outBuffer zo = {d->out, d->out_cap, 0};
        size_t zr = ZSTD_decompressStream(d->z, &zo, &d->zin);
        if (ZSTD_isError(zr)) {
            d->why = ZSTD_getErrorName(zr);
            return false;
        }
        d->zret = zr;
        if (zo.pos) {
            d->out_len = zo.pos;
            d->raw += zo.pos;
            if (d->tee && d->tee(d->arg, d->out, zo.pos) != 0) {
                d->why = "cannot store the state";
                return false;
            }
            return true;
        }
        if (d->zin.pos == d->zin.size && !d->left) {
            if (zr != 0)
                d->why = "the compressed frame ends early";
            return false;
        }
    }
}

static int dec_read(void *arg, void *buf, size_t n)
{
    dec *d = arg;
    uint8_t *p = buf;
    while (n) {
        if (d->out_pos == d->out_len && !dec_more(d))
            return -1;
        size_t k = d->out_len - d->out_pos < n ? d->out_len - d->out_pos : n;
        memcpy(p, d->out + d->out_pos, k);
        d->out_pos += k;
        p += k;
        n -= k;
    }
    return 0;
}

int bk_decode(int fd, const char *path, const bk_header *h, bk_tee_fn tee, void *arg, kv **out,
              uint64_t *raw, char *err, size_t errlen)
{
    *out = NULL;
    dec d = {.fd = fd, .left = h->length, .tee = tee, .arg = arg, .zret = 1};
    d.z = ZSTD_createDCtx();
    d.in_cap = ZSTD_DStreamInSize();
    d.out_cap = ZSTD_DStreamOutSize();
    d.in = malloc(d.in_cap);
    d.out = malloc(d.out_cap);
    kv *k = kv_new(NULL);
    int rc = -1;
    if (!d.z || !d.in || !d.out || !k) {
        snprintf(err, errlen, "out of memory");
    } else if (kv_snapshot_read(k, dec_read, &d) != 0) {
        snprintf(err, errlen, "%s: corrupt: the state does not decode (%s)", path,
                 d.why ? d.why : "malformed snapshot");
    } else if (d.out_pos != d.out_len || dec_more(&d) || d.why || d.left ||
               d.zin.pos != d.zin.size) {
        snprintf(err, errlen, "%s: corrupt: %s", path,
                 d.why ? d.why : "bytes after the end of the state");
    } else if (kv_applied_index(k) != h->index) {
        snprintf(err, errlen,
                 "%s: corrupt: the header says index %" PRIu64 ", the state is at %" PRIu64, path,
                 h->index, kv_applied_index(k));
    } else {
        rc = 0;
    }
    if (rc == 0) {
        *out = k;
        k = NULL;
    }
    if (raw)
        *raw = d.raw;
    kv_free(k);
    ZSTD_freeDCtx(d.z);
    free(d.in);
    free(d.out);
    return rc;
}

void bk_describe(const kv *k, char *buf, size_t cap)
{
    kv_stats st;
    kv_get_stats(k, &st);
    snprintf(buf, cap, "%" PRIu64 " files, %" PRIu64 " directories, %" PRIu64 " bytes of file data",
             st.files, st.dirs, st.bytes_used);
}
