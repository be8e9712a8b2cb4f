/*
 * kv_upload.c — chunked uploads (kv_ops.h: UPLOAD_PART, UPLOAD_COMMIT,
 * UPLOAD_ABORT): a value larger than one command staged in parts aside
 * from the namespace, and committed into it at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftkv/kv.h"
#include "raftkv/kv_internal.h"

/* ---- chunked uploads (kv_ops.h: UPLOAD_PART, UPLOAD_COMMIT, UPLOAD_ABORT) ---------------- */

kv_upload *upload_find(const kv *k, uint64_t id, size_t *at)
{
    for (size_t i = 0; i < k->nups; i++)
        if (k->ups[i].id == id) {
            if (at)
                *at = i;
            return &k->ups[i];
        }
    return NULL;
}

void upload_release(kv *k, kv_upload *u)
{
    if (u->data) {
        data_free(k, u->data);
        free(u->data);
        k->meta_alloc -= sizeof *u->data;
    }
    free(u->have);
    k->staged -= u->reserved;
}

static void upload_drop_at(kv *k, size_t i)
{
    upload_release(k, &k->ups[i]);
    memmove(&k->ups[i], &k->ups[i + 1], (k->nups - i - 1) * sizeof *k->ups);
    if (--k->nups == 0) {
        free(k->ups);
        k->ups = NULL;
    }
}

/* Abandoned uploads go after KV_UPLOAD_TTL_NS of session time (which one
 * proposer's fast clock cannot rush, see Sessions): decided from the log
 * alone, so every replica drops them at the same index. */
void upload_expire(kv *k)
{
    for (size_t i = 0; i < k->nups;) {
        if ((uint64_t)(k->sclock - k->ups[i].last_time) > KV_UPLOAD_TTL_NS)
            upload_drop_at(k, i);
        else
            i++;
    }
}

/* ENOSPC when n more bytes do not fit beside what is stored and staged. */
static int upload_space(const kv *k, uint64_t n)
{
    uint64_t have = k->bytes_used + k->staged;
    if (k->lim.max_total_bytes &&
        (have > k->lim.max_total_bytes || n > k->lim.max_total_bytes - have))
        return ENOSPC;
    return 0;
}

/* Room for part index p in u's bitmap.  0 or -1 (ENOMEM). */
int upload_bits(kv_upload *u, uint64_t p)
{
    if (p / 8 < u->have_cap)
        return 0;
    size_t cap = u->have_cap ? u->have_cap : 8;
    while (cap <= p / 8)
        cap *= 2;
    uint8_t *b = realloc(u->have, cap);
    if (!b)
        return -1;
    memset(b + u->have_cap, 0, cap - u->have_cap);
    u->have = b;
    u->have_cap = cap;
    return 0;
}

/* A new staging for op's upload (op->len: declared size or 0).  status, or
 * -1 (ENOMEM). */
int upload_start(kv *k, const kv_op *op, kv_upload **out)
{
    if (k->nups >= KV_UPLOADS_MAX)
        return EBUSY;
    int st = upload_space(k, op->len);
    if (st)
        return st;
    kv_upload *arr = realloc(k->ups, (k->nups + 1) * sizeof *arr);
    if (!arr)
        return -1;
    k->ups = arr;
    kv_upload *u = &arr[k->nups];
    memset(u, 0, sizeof *u);
    u->data = calloc(1, sizeof *u->data);
    if (!u->data)
        return -1;
    u->data->mode = S_IFREG;
    u->id = op->upload;
    u->total = u->reserved = op->len;
    k->meta_alloc += sizeof *u->data;
    k->staged += u->reserved;
    k->nups++;
    *out = u;
    return 0;
}

int op_upload_part(kv *k, const kv_op *op)
{
    uint64_t total = op->len, off = op->off, n = op->data_len;
    if (total > k->lim.max_file_size || off > k->lim.max_file_size ||
        n > k->lim.max_file_size - off)
        return EFBIG;
    if (n == 0 || n > KV_PART_SIZE || off % KV_PART_SIZE ||
        (total && (off > total || n > total - off || (n != KV_PART_SIZE && off + n != total))))
        return EINVAL;
    kv_upload *u = upload_find(k, op->upload, NULL);
    if (!u) {
        int st = upload_start(k, op, &u);
        if (st)
            return st;
    } else if (u->total != total) {
        return EINVAL;
    }
    u->last_time = k->sclock;
    uint64_t part = off / KV_PART_SIZE;
    if (upload_bits(u, part) != 0)
        return -1;
    uint8_t bit = (uint8_t)(1u << (part % 8));
    if (u->have[part / 8] & bit)
        return 0; /* a part sent again */
    if (!u->total) {
        int st = upload_space(k, n);
        if (st)
            return st;
    }
    /* staged bytes are not file bytes yet: bytes_used is untouched */
    uint64_t saved = k->bytes_used;
    int rc = data_write(k, u->data, off, op->data, (size_t)n);
    k->bytes_used = saved;
    if (rc != 0)
        return -1;
    u->have[part / 8] |= bit;
    u->got += n;
    if (!u->total) {
        u->reserved += n;
        k->staged += n;
    }
    return 0;
}

/* Every byte of [0, len) staged: the distinct parts (disjoint, inside
 * [0, size)) add up to len and size is len. */
static bool upload_complete(const kv_upload *u, uint64_t len)
{
    return u->got == len && u->data->size == len && (!u->total || u->total == len);
}

int op_upload_commit(kv *k, const kv_op *op, kv_inode **res)
{
    size_t at;
    kv_upload *u = upload_find(k, op->upload, &at);
    if (!u)
        return KV_EUPLOAD;
    if (u->total && op->len != u->total)
        return EINVAL;
    if (!upload_complete(u, op->len))
        return KV_EUPLOAD; /* parts missing: the staging stays */
    int st;
    if (op->ino) {
        st = op_put_if(k, op, res, u->data); /* PUT_IF's rule on the version */
    } else {
        kv_op put = *op;
        put.type = KV_OP_PUT;
        st = op_put_ex(k, &put, res, false, u->data);
    }
    if (st < 0)
        return -1;
    upload_drop_at(k, at); /* committed, or refused for good */
    return st;
}

int op_upload_write(kv *k, const kv_op *op, kv_inode **res)
{
    size_t at;
    kv_upload *u = upload_find(k, op->upload, &at);
    if (!u)
        return KV_EUPLOAD;
    if (u->total && op->len != u->total)
        return EINVAL;
    if (!upload_complete(u, op->len))
        return KV_EUPLOAD; /* parts missing: the staging stays */
    int st = op_write_staged(k, op, u->data, res);
    if (st < 0)
        return -1;
    upload_drop_at(k, at); /* written, or refused for good */
    return st;
}

int op_upload_abort(kv *k, const kv_op *op)
{
    size_t at;
    if (upload_find(k, op->upload, &at))
        upload_drop_at(k, at);
    return 0;
}

/* UPLOAD_PART is idempotent and bypasses the client's session: parts of one
 * upload are pipelined, may apply in any order and be re-sent after a leader
 * change, and none of that may make a later part look stale.  True when
 * opb is a part (then *rc is kv_apply's result). */
bool upload_part_apply(kv *k, const uint8_t *opb, size_t opl, uint8_t **reply, size_t *reply_len,
                       int *rc)
{
    if (kv_op_peek_type(opb, opl) != KV_OP_UPLOAD_PART)
        return false;
    kv_op op;
    if (kv_op_decode(opb, opl, &op) != 0) {
        *rc = kv_reply_encode_status(EBADMSG, reply, reply_len);
        return true;
    }
    int st = op_upload_part(k, &op);
    *rc = st < 0 ? -1 : kv_reply_encode_status(st, reply, reply_len);
    return true;
}
