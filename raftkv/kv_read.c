/*
 * kv_read.c — reads (kv_query): STAT, GET, GETRANGE, READLINK, READDIR,
 * LIST and STATFS answered from the current state, which they never
 * change; and the reply builders that commands share with them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftkv/byte.h"
#include "raftkv/kv.h"
#include "raftkv/kv_internal.h"

/* ---- reads ------------------------------------------------------------------------------ */

int reply_simple(int st, const kv_inode *n, uint8_t **out, size_t *len)
{
    kv_reply r;
    memset(&r, 0, sizeof r);
    r.status = st;
    if (st == 0 && n) {
        r.has = KV_R_ATTR;
        attr_of(n, &r.attr);
    }
    return kv_reply_encode(&r, out, len);
}

/* attr + data_len bytes of n at off */
static int reply_data(const kv_inode *n, uint64_t off, size_t dlen, uint8_t **out, size_t *len)
{
    kv_reply r;
    memset(&r, 0, sizeof r);
    r.has = KV_R_ATTR | KV_R_DATA;
    attr_of(n, &r.attr);
    r.data_len = dlen;
    uint8_t *slot;
    if (kv_reply_encode_ex(&r, out, len, &slot) != 0)
        return -1;
    if (dlen) {
        if (is_reg(n))
            data_read(n, off, dlen, slot);
        else
            memcpy(slot, n->u.flat + off, dlen);
    }
    return 0;
}

static int read_readdir(const kv *k, const kv_op *op, uint8_t **out, size_t *len)
{
    kv_inode *d;
    int st = resolve(k, op->dir, op->path, op->path_len, &d);
    if (st)
        return reply_simple(st, NULL, out, len);
    if (!is_dir(d))
        return reply_simple(ENOTDIR, NULL, out, len);
    int oom;
    kv_dentry **a = dir_sorted(d, &oom);
    if (oom)
        return -1;
    kv_dirent *ents = d->size ? malloc(d->size * sizeof *ents) : NULL;
    if (d->size && !ents) {
        free(a);
        return -1;
    }
    for (uint64_t i = 0; i < d->size; i++) {
        ents[i].name = a[i]->name;
        ents[i].ino = a[i]->node->ino;
        ents[i].mode = a[i]->node->mode;
    }
    kv_reply r;
    memset(&r, 0, sizeof r);
    r.has = KV_R_ATTR | KV_R_ENTRIES;
    attr_of(d, &r.attr);
    r.entries = ents;
    r.n_entries = (size_t)d->size;
    int rc = kv_reply_encode(&r, out, len);
    free(ents);
    free(a);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* LIST: an iterative walk (trees may be deeper than any recursion limit);
 * a subtree is entered only if a path in it can start with the prefix. */
static int read_list(const kv *k, const kv_op *op, uint8_t **out, size_t *len)
{
    const char *pre = op->path;
    size_t pl = op->path_len;
    if (pl && pre[0] == '/') {
        pre++;
        pl--;
    }
    struct frame {
        const kv_inode *d;
        size_t plen;
        uint32_t i;
    };
    struct frame *stack = NULL;
    size_t sn = 0, scap = 0;
    bytes_w path = {0}, strs = {0};
    size_t *offs = NULL, no = 0, ocap = 0;
    int rc = -1;
#define PUSH(dir, l)                                               \
    do {                                                           \
        if (sn == scap) {                                          \
            size_t nc_ = scap ? scap * 2 : 32;                     \
            struct frame *ns_ = realloc(stack, nc_ * sizeof *ns_); \
            if (!ns_)                                              \
                goto done;                                         \
            stack = ns_;                                           \
            scap = nc_;                                            \
        }                                                          \
        stack[sn].d = (dir);                                       \
        stack[sn].plen = (l);                                      \
        stack[sn].i = 0;                                           \
        sn++;                                                      \
    } while (0)
    PUSH(k->root, 0);
    while (sn) {
        struct frame *f = &stack[sn - 1];
        if (f->i >= f->d->cap) {
            sn--;
            continue;
        }
        kv_dentry *e = f->d->u.slots[f->i++];
        if (!e)
            continue;
        size_t base = f->plen;
        path.len = base;
        if (base)
            bw_u8(&path, '/');
        bw_put(&path, e->name, e->namelen);
        if (path.oom)
            goto done;
        size_t cl = path.len;
        const kv_inode *c = e->node;
        if (is_dir(c)) {
            /* descendants look like path + "/" + ...: compare what overlaps */
            size_t m = cl + 1 < pl ? cl + 1 : pl;
            bool ok = m <= cl ? memcmp(path.p, pre, m) == 0
                              : (memcmp(path.p, pre, cl) == 0 && pre[cl] == '/');
            if (ok && c->size)
                PUSH(c, cl);
        } else if ((is_reg(c) || is_lnk(c)) && cl >= pl && memcmp(path.p, pre, pl) == 0) {
            if (no == ocap) {
                size_t nc = ocap ? ocap * 2 : 64;
                size_t *a = realloc(offs, nc * sizeof *a);
                if (!a)
                    goto done;
                offs = a;
                ocap = nc;
            }
            offs[no++] = strs.len;
            bw_put(&strs, path.p, cl);
            bw_u8(&strs, 0);
            if (strs.oom)
                goto done;
        }
    }
#undef PUSH
    {
        const char **names = no ? malloc(no * sizeof *names) : NULL;
        if (no && !names)
            goto done;
        for (size_t i = 0; i < no; i++)
            names[i] = (const char *)strs.p + offs[i];
        if (no)
            qsort(names, no, sizeof *names, cmp_str);
        kv_reply r;
        memset(&r, 0, sizeof r);
        r.has = KV_R_NAMES;
        r.names = names;
        r.n_names = no;
        rc = kv_reply_encode(&r, out, len);
        free(names);
    }
done:
    free(stack);
    free(path.p);
    free(strs.p);
    free(offs);
    return rc;
}

/* The totals and the replicated limits (STATFS, and the answer to SET_LIMITS). */
int reply_limits(const kv *k, uint8_t **out, size_t *len)
{
    kv_reply r;
    memset(&r, 0, sizeof r);
    r.has = KV_R_STATFS;
    r.statfs.bytes_used = k->bytes_used;
    r.statfs.bytes_limit = k->lim.max_total_bytes;
    r.statfs.files = k->icount;
    r.statfs.files_limit = k->lim.max_inodes;
    r.statfs.name_max = KV_NAME_MAX;
    r.statfs.max_file_size = k->lim.max_file_size;
    return kv_reply_encode(&r, out, len);
}

static int do_read(const kv *k, const kv_op *op, uint8_t **out, size_t *len)
{
    kv_inode *n;
    int st;
    switch (op->type) {
    case KV_OP_STAT: st = op_node(k, op, &n); return reply_simple(st, st ? NULL : n, out, len);
    case KV_OP_GET:
        if ((st = op_node(k, op, &n)))
            return reply_simple(st, NULL, out, len);
        if (is_dir(n))
            return reply_simple(EISDIR, NULL, out, len);
        if (!is_reg(n) && !is_lnk(n))
            return reply_data(n, 0, 0, out, len);
        if (n->size > KV_READ_MAX)
            return reply_simple(EFBIG, NULL, out, len); /* read in ranges */
        return reply_data(n, 0, (size_t)n->size, out, len);
    case KV_OP_GETRANGE: {
        if ((st = op_node(k, op, &n)))
            return reply_simple(st, NULL, out, len);
        if (is_dir(n))
            return reply_simple(EISDIR, NULL, out, len);
        if (!is_reg(n))
            return reply_simple(EINVAL, NULL, out, len);
        uint64_t have = op->off < n->size ? n->size - op->off : 0;
        if (have > op->len)
            have = op->len;
        if (have > KV_READ_MAX)
            have = KV_READ_MAX;
        return reply_data(n, have ? op->off : 0, (size_t)have, out, len);
    }
    case KV_OP_READLINK:
        if ((st = resolve(k, op->dir, op->path, op->path_len, &n)))
            return reply_simple(st, NULL, out, len);
        if (!is_lnk(n))
            return reply_simple(EINVAL, NULL, out, len);
        return reply_data(n, 0, (size_t)n->size, out, len);
    case KV_OP_READDIR: return read_readdir(k, op, out, len);
    case KV_OP_LIST: return read_list(k, op, out, len);
    case KV_OP_STATFS: return reply_limits(k, out, len);
    default: return reply_simple(EINVAL, NULL, out, len);
    }
}

int kv_query(const kv *k, const uint8_t *op, size_t len, uint8_t **reply, size_t *reply_len)
{
    *reply = NULL;
    *reply_len = 0;
    kv_op o;
    if (kv_op_decode(op, len, &o) != 0)
        return kv_reply_encode_status(EBADMSG, reply, reply_len);
    if (!kv_op_is_read(op, len))
        return kv_reply_encode_status(EINVAL, reply, reply_len);
    return do_read(k, &o, reply, reply_len);
}
