/*
 * kv_snapshot.c — the snapshot codec's format and its writer (kv.h
 * "Snapshots"): the whole state written as a stream in a deterministic
 * order.  kv_snapshot_read.c reads the same format back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftkv/byte.h"
#include "raftkv/kv.h"
#include "raftkv/kv_internal.h"

/* Format (all little-endian):
 *   u32 magic "HKVS", u32 version 3, u64 applied, i64 last_time,
 *   (version 3) i64 session time, u8 limits set, u64 max_file_size,
 *   u64 max_total_bytes, u64 max_inodes,
 *   u64 next_ino,
 *   u64 n_inodes, then per inode in ascending number order:
 *     u64 ino, u32 mode, uid, gid, nlink, u64 rdev, u64 size, i64 atime, mtime,
 *     ctime, then: regular file: chunks holding a non-zero byte as (u32 index,
 *     min(CHUNK, size - index*CHUNK) bytes), ascending, ended by u32 ~0;
 *     symlink: size bytes of target; others nothing.
 *   u64 n_dirs, then per directory in ascending number order: u64 ino,
 *     u64 count, count x (u8 namelen, name, u64 child ino) sorted by name.
 *   u64 n_sessions, then in expiry order: u64 client, u64 seq, i64 last_time,
 *     u8 has_reply, [u32 len, bytes].
 *   u64 n_refs, then in table order: u64 holder, u64 ino, u32 count.
 *   (version 2 on) u64 n_holders, then by ascending id: u64 id, u64 covered,
 *     i64 time, u64 n, n x u64 held inode (ascending); u64 n_orphans, then in
 *     unlink order: u64 ino, u64 at.
 *   only when uploads are staged: u32 magic "PUPS", u64 count, then in the
 *     order they started: u64 id, u64 declared total (0: unknown), u64 got,
 *     i64 last_time, u64 size of the staged bytes, the bitmap of parts
 *     received ((size / part, rounded up, + 7) / 8 bytes), and the bytes as
 *     a regular file's chunks.
 *   u32 magic "END." (trailer).  Version 1 (no holders, no orphan list) is
 *   still read.
 * Chunks that are all zeros are omitted whether they are holes or written
 * zeros, so equal states give equal bytes.
 * Versions 1 and 2 (older builds) lack the session time and limits; they are
 * still read (kv_snapshot_read), never written.
 */

/* Data of fewer bytes is copied into the writer's buffer, larger data is
 * handed to fn as it is (no copy; the node's pipe takes whole pages by
 * reference).  With the buffer flushed from KV_CHUNK_SIZE on, pieces stay
 * within KV_CHUNK_SIZE + 8 KiB. */
#define SNAP_COPY_BELOW 4096

typedef struct snap_w {
    bytes_w b;
    kv_write_fn fn;
    void *arg;
    bool failed;
} snap_w;

static void sw_flush(snap_w *w)
{
    if (w->b.oom)
        w->failed = true;
    if (!w->failed && w->b.len && w->fn(w->arg, w->b.p, w->b.len) != 0)
        w->failed = true;
    w->b.len = 0;
}

static void sw_maybe_flush(snap_w *w)
{
    if (w->b.len >= KV_CHUNK_SIZE)
        sw_flush(w);
}

static int cmp_inode(const void *a, const void *b)
{
    uint64_t x = (*(const kv_inode *const *)a)->ino, y = (*(const kv_inode *const *)b)->ino;
    return x < y ? -1 : x > y;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static void snap_file(snap_w *w, const kv_inode *n)
{
    uint64_t nc = nchunks(n->size);
    for (uint64_t i = 0; i < nc && !w->failed; i++) {
        uint64_t L = n->size - i * CH < CH ? n->size - i * CH : CH;
        const uint8_t *src;
        size_t have;
        if (!n->chunked) {
            if (i > 0)
                break; /* a flat buffer never holds more than chunk 0 */
            src = n->u.flat;
            have = n->cap < L ? n->cap : (size_t)L;
        } else {
            if (i >= n->cap || !n->u.chunks[i])
                continue;
            src = n->u.chunks[i];
            have = (size_t)L;
        }
        if (all_zero(src, have))
            continue;
        bw_u32(&w->b, (uint32_t)i);
        if (have < SNAP_COPY_BELOW) {
            /* A small file's bytes join the buffer: handed on as a piece
             * of their own, each would be a write of its own into the
             * snapshot's pipe (two system calls per file). */
            bw_put(&w->b, src, have);
        } else {
            sw_flush(w);
            if (!w->failed && w->fn(w->arg, src, have) != 0)
                w->failed = true;
        }
        if (L > have) {
            uint8_t *zeros = bw_room(&w->b, (size_t)(L - have));
            if (zeros)
                memset(zeros, 0, (size_t)(L - have));
        }
        sw_maybe_flush(w);
    }
    bw_u32(&w->b, NO_CHUNK);
}

static void snap_uploads(snap_w *w, const kv *k)
{
    if (!k->nups)
        return; /* absent when none: snapshots without uploads read as before */
    bw_u32(&w->b, SNAP_UPLOADS);
    bw_u64(&w->b, k->nups);
    for (size_t i = 0; i < k->nups && !w->failed; i++) {
        const kv_upload *u = &k->ups[i];
        size_t nb = (size_t)((upload_nparts(u->data->size) + 7) / 8);
        bw_u64(&w->b, u->id);
        bw_u64(&w->b, u->total);
        bw_u64(&w->b, u->got);
        bw_u64(&w->b, (uint64_t)u->last_time);
        bw_u64(&w->b, u->data->size);
        bw_put(&w->b, u->have, nb);
        snap_file(w, u->data);
        sw_maybe_flush(w);
    }
}

int kv_snapshot_write(const kv *k, kv_write_fn fn, void *arg)
{
    snap_w w = {{0}, fn, arg, false};
    kv_inode **all = malloc((k->icount ? k->icount : 1) * sizeof *all);
    if (!all)
        return -1;
    size_t n = 0;
    for (uint64_t i = 0; i < k->icap; i++)
        if (k->itab[i])
            all[n++] = k->itab[i];
    qsort(all, n, sizeof *all, cmp_inode);
    bw_u32(&w.b, SNAP_MAGIC);
    bw_u32(&w.b, SNAP_VERSION);
    bw_u64(&w.b, k->applied);
    bw_u64(&w.b, (uint64_t)k->last_time);
    bw_u64(&w.b, (uint64_t)k->sclock);
    bw_u8(&w.b, k->lim_set);
    bw_u64(&w.b, k->lim.max_file_size);
    bw_u64(&w.b, k->lim.max_total_bytes);
    bw_u64(&w.b, k->lim.max_inodes);
    bw_u64(&w.b, k->next_ino);
    bw_u64(&w.b, n);
    for (size_t i = 0; i < n && !w.failed; i++) {
        const kv_inode *x = all[i];
        bw_u64(&w.b, x->ino);
        bw_u32(&w.b, x->mode);
        bw_u32(&w.b, x->uid);
        bw_u32(&w.b, x->gid);
        bw_u32(&w.b, x->nlink);
        bw_u64(&w.b, (S_ISCHR(x->mode) || S_ISBLK(x->mode)) ? x->x : 0);
        bw_u64(&w.b, x->size);
        bw_u64(&w.b, (uint64_t)x->atime);
        bw_u64(&w.b, (uint64_t)x->mtime);
        bw_u64(&w.b, (uint64_t)x->ctime);
        if (is_reg(x))
            snap_file(&w, x);
        else if (is_lnk(x))
            bw_put(&w.b, x->u.flat, (size_t)x->size);
        sw_maybe_flush(&w);
    }
    bw_u64(&w.b, k->ndirs);
    for (size_t i = 0; i < n && !w.failed; i++) {
        const kv_inode *d = all[i];
        if (!is_dir(d))
            continue;
        int oom;
        kv_dentry **a = dir_sorted(d, &oom);
        if (oom) {
            w.failed = true;
            break;
        }
        bw_u64(&w.b, d->ino);
        bw_u64(&w.b, d->size);
        for (uint64_t j = 0; j < d->size; j++) {
            bw_u8(&w.b, a[j]->namelen);
            bw_put(&w.b, a[j]->name, a[j]->namelen);
            bw_u64(&w.b, a[j]->node->ino);
            sw_maybe_flush(&w);
        }
        free(a);
    }
    free(all);
    bw_u64(&w.b, k->scount);
    for (const kv_session *s = k->shead; s && !w.failed; s = s->next) {
        bw_u64(&w.b, s->client);
        bw_u64(&w.b, s->seq);
        bw_u64(&w.b, (uint64_t)s->last_time);
        bw_u8(&w.b, s->reply != NULL);
        if (s->reply) {
            bw_u32(&w.b, s->reply_len);
            bw_put(&w.b, s->reply, s->reply_len);
        }
        sw_maybe_flush(&w);
    }
    bw_u64(&w.b, k->nrefs);
    for (size_t i = 0; i < k->nrefs; i++) {
        bw_u64(&w.b, k->refs[i].holder);
        bw_u64(&w.b, k->refs[i].ino);
        bw_u32(&w.b, k->refs[i].count);
        sw_maybe_flush(&w);
    }
    bw_u64(&w.b, k->nholders);
    for (size_t i = 0; i < k->nholders; i++) {
        const kv_holder *h = &k->holders[i];
        bw_u64(&w.b, h->id);
        bw_u64(&w.b, h->covered);
        bw_u64(&w.b, (uint64_t)h->time);
        bw_u64(&w.b, h->n);
        for (size_t j = 0; j < h->n; j++)
            bw_u64(&w.b, h->held[j]);
        sw_maybe_flush(&w);
    }
    bw_u64(&w.b, k->norph);
    for (size_t i = 0; i < k->norph; i++) {
        bw_u64(&w.b, k->orph[i].ino);
        bw_u64(&w.b, k->orph[i].at);
        sw_maybe_flush(&w);
    }
    snap_uploads(&w, k);
    bw_u32(&w.b, SNAP_END);
    sw_flush(&w);
    free(w.b.p);
    return w.failed ? -1 : 0;
}

static int buf_write(void *arg, const void *b, size_t n)
{
    bytes_w *w = arg;
    bw_put(w, b, n);
    return w->oom ? -1 : 0;
}

int kv_snapshot_encode(const kv *k, uint8_t **buf, size_t *len)
{
    bytes_w w = {0};
    *buf = NULL;
    *len = 0;
    if (kv_snapshot_write(k, buf_write, &w) != 0) {
        bw_free(&w);
        return -1;
    }
    *buf = w.p;
    *len = w.len;
    return 0;
}
