/*
 * kv_codec.c — byte formats of the state machine's operations, commands and
 * replies (see kv_ops.h).  Pure functions, no state.
 *
 * Op:      u8 version (2), u8 type, then the fields that type uses, in the
 *          fixed order of op_fields[] below: strings as u32 length + bytes,
 *          integers fixed-width little-endian; version 2 then adds the start
 *          directories (u64 dir, u64 dir2) and the writer's credentials (u32
 *          uid, u32 gid) to the ops that take them (v2_fields).  Version 1
 *          ops (older logs) still decode, with those fields 0.  Nothing else
 *          may follow.
 * Command: u8 'C', u8 version (1), u64 client_id, u64 seq, i64 time_ns, op.
 * Reply:   u8 'R', u32 status, u8 parts (KV_R_*), then each present part in
 *          the order attr, data (u64 len + bytes), names (u64 count, each u32
 *          len + bytes), entries (u64 count, each u32 len + bytes + u64 ino +
 *          u32 mode), statfs (6 x u64).
 *
 * Decoders trust no length: every count and length is checked against the
 * bytes actually left before anything is allocated or copied.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftkv/byte.h"
#include "raftkv/kv_ops.h"
#include "raftkv/kv_internal.h"

#define OP_VERSION 2 /* version 1 (still decoded) lacks F_DIR, F_DIR2, F_CRED */
#define CMD_MAGIC 'C'
#define CMD_VERSION 1
#define REPLY_MAGIC 'R'

enum {
    F_PATH = 1 << 0,
    F_PATH2 = 1 << 1,
    F_DATA = 1 << 2,
    F_FLAGS = 1 << 3,
    F_MODE = 1 << 4,
    F_UID = 1 << 5,
    F_GID = 1 << 6,
    F_RDEV = 1 << 7,
    F_OFF = 1 << 8,
    F_LEN = 1 << 9,
    F_ATIME = 1 << 10,
    F_MTIME = 1 << 11,
    F_INO = 1 << 12,
    F_HOLDER = 1 << 13,
    F_DIR = 1 << 14,    /* version 2: every op with F_PATH */
    F_DIR2 = 1 << 15,   /* version 2: every op with F_PATH2 */
    F_CRED = 1 << 16,   /* version 2: the writer's uid and gid */
    F_UPLOAD = 1 << 17, /* version 2 only: the UPLOAD_* ops */
};

/* Fields that version 2 adds to an op that had the given version 1 fields. */
static uint32_t v2_fields(int type, uint32_t f)
{
    if (f & F_PATH)
        f |= F_DIR;
    if (f & F_PATH2)
        f |= F_DIR2;
    switch (type) {
    case KV_OP_PUT:
    case KV_OP_APPEND:
    case KV_OP_WRITE_AT:
    case KV_OP_TRUNCATE:
    case KV_OP_SETATTR:
    case KV_OP_PUT_IF:
    case KV_OP_UPLOAD_COMMIT:
    case KV_OP_UPLOAD_WRITE: f |= F_CRED; break;
    default: break;
    }
    return f;
}

static const struct {
    const char *name;
    uint32_t fields;
    bool read;
} op_info[KV_OP__MAX + 1] = {
    [KV_OP_PUT] = {"PUT", F_PATH | F_DATA | F_MODE | F_UID | F_GID, false},
    [KV_OP_APPEND] = {"APPEND", F_PATH | F_DATA | F_MODE | F_UID | F_GID | F_INO, false},
    [KV_OP_GET] = {"GET", F_PATH | F_INO, true},
    [KV_OP_DEL] = {"DEL", F_PATH, false},
    [KV_OP_LIST] = {"LIST", F_PATH, true},
    [KV_OP_STAT] = {"STAT", F_PATH | F_INO, true},
    [KV_OP_READDIR] = {"READDIR", F_PATH, true},
    [KV_OP_GETRANGE] = {"GETRANGE", F_PATH | F_INO | F_OFF | F_LEN, true},
    [KV_OP_CREATE] = {"CREATE", F_PATH | F_MODE | F_UID | F_GID | F_FLAGS, false},
    [KV_OP_MKNOD] = {"MKNOD", F_PATH | F_MODE | F_RDEV | F_UID | F_GID, false},
    [KV_OP_MKDIR] = {"MKDIR", F_PATH | F_MODE | F_UID | F_GID, false},
    [KV_OP_RMDIR] = {"RMDIR", F_PATH, false},
    [KV_OP_UNLINK] = {"UNLINK", F_PATH, false},
    [KV_OP_WRITE_AT] = {"WRITE_AT", F_PATH | F_INO | F_OFF | F_DATA, false},
    [KV_OP_TRUNCATE] = {"TRUNCATE", F_PATH | F_INO | F_LEN, false},
    [KV_OP_RENAME] = {"RENAME", F_PATH | F_PATH2 | F_FLAGS, false},
    [KV_OP_SETATTR] = {"SETATTR",
                       F_PATH | F_INO | F_FLAGS | F_MODE | F_UID | F_GID | F_LEN | F_ATIME |
                           F_MTIME,
                       false},
    [KV_OP_SYMLINK] = {"SYMLINK", F_PATH | F_DATA | F_UID | F_GID, false},
    [KV_OP_READLINK] = {"READLINK", F_PATH, true},
    [KV_OP_LINK] = {"LINK", F_PATH | F_PATH2, false},
    [KV_OP_STATFS] = {"STATFS", 0, true},
    [KV_OP_OPEN_REF] = {"OPEN_REF", F_PATH | F_INO | F_HOLDER, false},
    [KV_OP_CLOSE_REF] = {"CLOSE_REF", F_INO | F_HOLDER, false},
    [KV_OP_RELEASE_HOLDER] = {"RELEASE_HOLDER", F_HOLDER, false},
    [KV_OP_NOOP] = {"NOOP", 0, false},
    [KV_OP_HOLD] = {"HOLD", F_HOLDER | F_OFF | F_DATA | F_FLAGS, false},
    [KV_OP_REGISTER] = {"REGISTER", 0, false},
    [KV_OP_SET_LIMITS] = {"SET_LIMITS", F_FLAGS | F_RDEV | F_OFF | F_LEN, false},
    [KV_OP_PUT_IF] = {"PUT_IF", F_INO | F_OFF | F_DATA, false},
    [KV_OP_UPLOAD_PART] = {"UPLOAD_PART", F_DATA | F_OFF | F_LEN | F_UPLOAD, false},
    [KV_OP_UPLOAD_COMMIT] = {"UPLOAD_COMMIT",
                             F_PATH | F_MODE | F_UID | F_GID | F_LEN | F_UPLOAD | F_INO | F_OFF,
                             false},
    [KV_OP_UPLOAD_ABORT] = {"UPLOAD_ABORT", F_UPLOAD, false},
    [KV_OP_UPLOAD_WRITE] = {"UPLOAD_WRITE", F_INO | F_OFF | F_LEN | F_UPLOAD, false},
};

const char *kv_op_name(int type)
{
    if (type < 1 || type > KV_OP__MAX)
        return "?";
    return op_info[type].name;
}

static void put_str(bytes_w *w, const void *s, size_t n)
{
    bw_u32(w, (uint32_t)n);
    bw_put(w, s, n);
}

/* op's two paths and their lengths (NUL-terminated unless a length is
 * given; none is ""). */
static void op_paths(const kv_op *op, const char **p, size_t *pl, const char **p2, size_t *p2l)
{
    *p = op->path ? op->path : "";
    *pl = op->path_len ? op->path_len : strlen(*p);
    *p2 = op->path2 ? op->path2 : "";
    *p2l = op->path2_len ? op->path2_len : strlen(*p2);
}

/* The fields of op appended to w (w->oom on failure); -1 for an unknown
 * type, a field too long for the format or data missing. */
static int op_encode(const kv_op *op, bytes_w *w)
{
    if (op->type < 1 || op->type > KV_OP__MAX)
        return -1;
    uint32_t f = v2_fields(op->type, op_info[op->type].fields);
    const char *p, *p2;
    size_t pl, p2l;
    op_paths(op, &p, &pl, &p2, &p2l);
    if (pl > UINT32_MAX || p2l > UINT32_MAX || op->data_len > UINT32_MAX)
        return -1;
    if (op->data_len && !op->data)
        return -1;
    if (!w->fixed) /* one allocation for most ops */
        bw_reserve(w, 64 + ((f & F_PATH) ? pl : 0) + ((f & F_PATH2) ? p2l : 0) +
                          ((f & F_DATA) ? op->data_len : 0));
    bw_u8(w, OP_VERSION);
    bw_u8(w, op->type);
    if (f & F_PATH)
        put_str(w, p, pl);
    if (f & F_PATH2)
        put_str(w, p2, p2l);
    if (f & F_DATA)
        put_str(w, op->data, op->data_len);
    if (f & F_FLAGS)
        bw_u32(w, op->flags);
    if (f & F_MODE)
        bw_u32(w, op->mode);
    if (f & F_UID)
        bw_u32(w, op->uid);
    if (f & F_GID)
        bw_u32(w, op->gid);
    if (f & F_RDEV)
        bw_u64(w, op->rdev);
    if (f & F_OFF)
        bw_u64(w, op->off);
    if (f & F_LEN)
        bw_u64(w, op->len);
    if (f & F_ATIME)
        bw_u64(w, (uint64_t)op->atime_ns);
    if (f & F_MTIME)
        bw_u64(w, (uint64_t)op->mtime_ns);
    if (f & F_INO)
        bw_u64(w, op->ino);
    if (f & F_HOLDER)
        bw_u64(w, op->holder);
    if (f & F_DIR)
        bw_u64(w, op->dir);
    if (f & F_DIR2)
        bw_u64(w, op->dir2);
    if (f & F_CRED) {
        bw_u32(w, op->cuid);
        bw_u32(w, op->cgid);
    }
    if (f & F_UPLOAD)
        bw_u64(w, op->upload);
    return w->oom ? -1 : 0;
}

size_t kv_op_encode_bound(const kv_op *op)
{
    const char *p, *p2;
    size_t pl, p2l;
    op_paths(op, &p, &pl, &p2, &p2l);
    /* version and type, three lengths, and every fixed-size field */
    return 2 + 3 * 4 + 128 + pl + p2l + op->data_len;
}

int kv_op_encode(const kv_op *op, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    bytes_w w = {0};
    if (op_encode(op, &w) != 0) {
        bw_free(&w);
        return -1;
    }
    *out = w.p;
    *out_len = w.len;
    return 0;
}

int kv_op_encode_to(const kv_op *op, uint8_t *buf, size_t cap, size_t *out_len)
{
    bytes_w w = {.p = buf, .cap = cap, .fixed = true};
    *out_len = 0;
    if (op_encode(op, &w) != 0)
        return -1;
    *out_len = w.len;
    return 0;
}

static const char *get_str(bytes_r *r, size_t *n)
{
    uint32_t l = br_u32(r);
    const uint8_t *q = br_take(r, l);
    if (!q) {
        *n = 0;
        return "";
    }
    *n = l;
    return l ? (const char *)q : "";
}

int kv_op_decode(const uint8_t *buf, size_t len, kv_op *op)
{
    memset(op, 0, sizeof *op);
    op->path = op->path2 = "";
    op->data = (const uint8_t *)"";
    if (!buf)
        return -1;
    bytes_r r = br_init(buf, len);
    uint8_t ver = br_u8(&r);
    uint8_t type = br_u8(&r);
    if (r.bad || ver < 1 || ver > OP_VERSION || type < 1 || type > KV_OP__MAX)
        return -1;
    if (ver == 1 && type > KV_OP_NOOP)
        return -1;
    op->type = type;
    uint32_t f = op_info[type].fields;
    if (ver >= 2)
        f = v2_fields(type, f);
    if (f & F_PATH)
        op->path = get_str(&r, &op->path_len);
    if (f & F_PATH2)
        op->path2 = get_str(&r, &op->path2_len);
    if (f & F_DATA)
        op->data = (const uint8_t *)get_str(&r, &op->data_len);
    if (f & F_FLAGS)
        op->flags = br_u32(&r);
    if (f & F_MODE)
        op->mode = br_u32(&r);
    if (f & F_UID)
        op->uid = br_u32(&r);
    if (f & F_GID)
        op->gid = br_u32(&r);
    if (f & F_RDEV)
        op->rdev = br_u64(&r);
    if (f & F_OFF)
        op->off = br_u64(&r);
    if (f & F_LEN)
        op->len = br_u64(&r);
    if (f & F_ATIME)
        op->atime_ns = (int64_t)br_u64(&r);
    if (f & F_MTIME)
        op->mtime_ns = (int64_t)br_u64(&r);
    if (f & F_INO)
        op->ino = br_u64(&r);
    if (f & F_HOLDER)
        op->holder = br_u64(&r);
    if (f & F_DIR)
        op->dir = br_u64(&r);
    if (f & F_DIR2)
        op->dir2 = br_u64(&r);
    if (f & F_CRED) {
        op->cuid = br_u32(&r);
        op->cgid = br_u32(&r);
    }
    if (f & F_UPLOAD)
        op->upload = br_u64(&r);
    if (r.bad || r.pos != r.len) {
        memset(op, 0, sizeof *op);
        op->path = op->path2 = "";
        op->data = (const uint8_t *)"";
        return -1;
    }
    return 0;
}

int kv_op_peek_type(const uint8_t *op, size_t len)
{
    if (!op || len < 2 || op[0] < 1 || op[0] > OP_VERSION || op[1] < 1 || op[1] > KV_OP__MAX)
        return 0;
    return op[1];
}

bool kv_op_is_read(const uint8_t *op, size_t len)
{
    kv_op o;
    if (kv_op_decode(op, len, &o) != 0)
        return false;
    return op_info[o.type].read;
}

bool kv_op_is_write(const uint8_t *op, size_t len)
{
    kv_op o;
    if (kv_op_decode(op, len, &o) != 0)
        return false;
    return !op_info[o.type].read;
}

/* ---- commands ---------------------------------------------------------------- */

#define CMD_HDR (2 + 8 + 8 + 8)

/* The envelope into w (w->oom on failure). */
static void cmd_encode(uint64_t client_id, uint64_t seq, int64_t time_ns, const uint8_t *op,
                       size_t op_len, bytes_w *w)
{
    bw_reserve(w, CMD_HDR + op_len);
    bw_u8(w, CMD_MAGIC);
    bw_u8(w, CMD_VERSION);
    bw_u64(w, client_id);
    bw_u64(w, seq);
    bw_u64(w, (uint64_t)time_ns);
    bw_put(w, op, op_len);
}

int kv_cmd_encode(uint64_t client_id, uint64_t seq, int64_t time_ns, const uint8_t *op,
                  size_t op_len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (op_len && !op)
        return -1;
    bytes_w w = {0};
    cmd_encode(client_id, seq, time_ns, op, op_len, &w);
    if (w.oom) {
        bw_free(&w);
        return -1;
    }
    *out = w.p;
    *out_len = w.len;
    return 0;
}

size_t kv_cmd_size(size_t op_len)
{
    return CMD_HDR + op_len;
}

int kv_cmd_encode_to(uint64_t client_id, uint64_t seq, int64_t time_ns, const uint8_t *op,
                     size_t op_len, uint8_t *buf, size_t cap)
{
    if (op_len && !op)
        return -1;
    bytes_w w = {.p = buf, .cap = cap, .fixed = true};
    cmd_encode(client_id, seq, time_ns, op, op_len, &w);
    return w.oom ? -1 : 0;
}

int kv_cmd_decode(const uint8_t *cmd, size_t len, uint64_t *client_id, uint64_t *seq,
                  int64_t *time_ns, const uint8_t **op, size_t *op_len)
{
    if (!cmd || len < CMD_HDR)
        return -1;
    bytes_r r = br_init(cmd, len);
    if (br_u8(&r) != CMD_MAGIC || br_u8(&r) != CMD_VERSION)
        return -1;
    *client_id = br_u64(&r);
    *seq = br_u64(&r);
    *time_ns = (int64_t)br_u64(&r);
    *op = cmd + r.pos;
    *op_len = len - r.pos;
    return 0;
}

/* ---- replies ------------------------------------------------------------------ */

static void put_attr(bytes_w *w, const kv_attr *a)
{
    bw_u64(w, a->ino);
    bw_u32(w, a->mode);
    bw_u32(w, a->nlink);
    bw_u32(w, a->uid);
    bw_u32(w, a->gid);
    bw_u64(w, a->rdev);
    bw_u64(w, a->size);
    bw_u64(w, a->blocks);
    bw_u64(w, (uint64_t)a->atime_ns);
    bw_u64(w, (uint64_t)a->mtime_ns);
    bw_u64(w, (uint64_t)a->ctime_ns);
}

static void get_attr(bytes_r *r, kv_attr *a)
{
    a->ino = br_u64(r);
    a->mode = br_u32(r);
    a->nlink = br_u32(r);
    a->uid = br_u32(r);
    a->gid = br_u32(r);
    a->rdev = br_u64(r);
    a->size = br_u64(r);
    a->blocks = br_u64(r);
    a->atime_ns = (int64_t)br_u64(r);
    a->mtime_ns = (int64_t)br_u64(r);
    a->ctime_ns = (int64_t)br_u64(r);
}

int kv_reply_encode_ex(const kv_reply *r, uint8_t **out, size_t *out_len, uint8_t **data_slot)
{
    *out = NULL;
    *out_len = 0;
    size_t need = 16 + 96 + 64;
    if (r->has & KV_R_DATA)
        need += r->data_len;
    bytes_w w = {0};
    bw_reserve(&w, need);
    bw_u8(&w, REPLY_MAGIC);
    bw_u32(&w, (uint32_t)r->status);
    bw_u8(&w, (uint8_t)(r->has & 31));
    size_t data_pos = 0;
    if (r->has & KV_R_ATTR)
        put_attr(&w, &r->attr);
    if (r->has & KV_R_DATA) {
        bw_u64(&w, r->data_len);
        if (data_slot) {
            uint8_t *slot = bw_room(&w, r->data_len);
            if (slot)
                data_pos = (size_t)(slot - w.p);
        } else {
            bw_put(&w, r->data, r->data_len);
        }
    }
    if (r->has & KV_R_NAMES) {
        bw_u64(&w, r->n_names);
        for (size_t i = 0; i < r->n_names; i++)
            put_str(&w, r->names[i], strlen(r->names[i]));
    }
    if (r->has & KV_R_ENTRIES) {
        bw_u64(&w, r->n_entries);
        for (size_t i = 0; i < r->n_entries; i++) {
            put_str(&w, r->entries[i].name, strlen(r->entries[i].name));
            bw_u64(&w, r->entries[i].ino);
            bw_u32(&w, r->entries[i].mode);
        }
    }
    if (r->has & KV_R_STATFS) {
        bw_u64(&w, r->statfs.bytes_used);
        bw_u64(&w, r->statfs.bytes_limit);
        bw_u64(&w, r->statfs.files);
        bw_u64(&w, r->statfs.files_limit);
        bw_u64(&w, r->statfs.name_max);
        bw_u64(&w, r->statfs.max_file_size);
    }
    if (w.oom) {
        bw_free(&w);
        return -1;
    }
    if (data_slot)
        *data_slot = (r->has & KV_R_DATA) ? w.p + data_pos : NULL;
    *out = w.p;
    *out_len = w.len;
    return 0;
}

int kv_reply_encode(const kv_reply *r, uint8_t **out, size_t *out_len)
{
    return kv_reply_encode_ex(r, out, out_len, NULL);
}

int kv_reply_encode_status(int status, uint8_t **out, size_t *out_len)
{
    kv_reply r;
    memset(&r, 0, sizeof r);
    r.status = status;
    return kv_reply_encode(&r, out, out_len);
}

int kv_reply_status(const uint8_t *buf, size_t len)
{
    kv_reply r;
    if (kv_reply_decode(buf, len, &r) != 0)
        return EBADMSG;
    int s = r.status;
    kv_reply_free(&r);
    return s;
}

int kv_reply_peek_status(const uint8_t *buf, size_t len)
{
    bytes_r r = br_init(buf, len);
    if (!buf || br_u8(&r) != REPLY_MAGIC)
        return EBADMSG;
    uint32_t st = br_u32(&r);
    if (r.bad || st > INT32_MAX)
        return EBADMSG;
    return (int)st;
}

uint64_t kv_reply_session_id(const uint8_t *buf, size_t len)
{
    kv_reply r;
    if (kv_reply_decode(buf, len, &r) != 0)
        return 0;
    uint64_t id = 0;
    if (r.status == 0 && r.has == KV_R_DATA && r.data_len == 8)
        id = byte_get64(r.data);
    kv_reply_free(&r);
    return id;
}

void kv_reply_free(kv_reply *r)
{
    if (!r)
        return;
    free(r->_store);
    memset(r, 0, sizeof *r);
}

/* Walks a names/entries section once to check it and size it. */
static bool scan_strings(bytes_r *r, uint64_t count, size_t extra, size_t *strbytes)
{
    size_t total = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint32_t l = br_u32(r);
        const uint8_t *q = br_take(r, l);
        if (!q || memchr(q, 0, l))
            return false;
        if (extra && !br_take(r, extra))
            return false;
        total += (size_t)l + 1;
    }
    *strbytes = total;
    return !r->bad;
}

int kv_reply_decode(const uint8_t *buf, size_t len, kv_reply *out)
{
    memset(out, 0, sizeof *out);
    if (!buf)
        return -1;
    bytes_r r = br_init(buf, len);
    kv_reply t;
    memset(&t, 0, sizeof t);
    if (br_u8(&r) != REPLY_MAGIC)
        return -1;
    t.status = (int)br_u32(&r);
    t.has = br_u8(&r);
    if (r.bad || (t.has & ~31u) || t.status < 0)
        return -1;
    if (t.has & KV_R_ATTR)
        get_attr(&r, &t.attr);
    const uint8_t *data = NULL;
    if (t.has & KV_R_DATA) {
        uint64_t dl = br_u64(&r);
        if (dl > br_left(&r))
            return -1;
        data = br_take(&r, (size_t)dl);
        t.data_len = (size_t)dl;
    }
    /* pass 1: validate and size the variable sections */
    size_t names_pos = 0, ents_pos = 0, nbytes = 0, ebytes = 0;
    uint64_t nn = 0, ne = 0;
    if (t.has & KV_R_NAMES) {
        nn = br_u64(&r);
        if (nn > br_left(&r) / 4)
            return -1;
        names_pos = r.pos;
        if (!scan_strings(&r, nn, 0, &nbytes))
            return -1;
    }
    if (t.has & KV_R_ENTRIES) {
        ne = br_u64(&r);
        if (ne > br_left(&r) / 16)
            return -1;
        ents_pos = r.pos;
        if (!scan_strings(&r, ne, 12, &ebytes))
            return -1;
    }
    if (t.has & KV_R_STATFS) {
        t.statfs.bytes_used = br_u64(&r);
        t.statfs.bytes_limit = br_u64(&r);
        t.statfs.files = br_u64(&r);
        t.statfs.files_limit = br_u64(&r);
        t.statfs.name_max = br_u64(&r);
        t.statfs.max_file_size = br_u64(&r);
    }
    if (r.bad || r.pos != r.len)
        return -1;
    /* pass 2: one allocation holding data, pointer arrays and strings */
    size_t sz = t.data_len + (size_t)nn * sizeof(char *) + (size_t)ne * sizeof(kv_dirent) + nbytes +
                ebytes + 16;
    uint8_t *store = malloc(sz);
    if (!store)
        return -1;
    uint8_t *p = store;
    const char **names = NULL;
    kv_dirent *ents = NULL;
    if (nn) {
        names = (const char **)(void *)p;
        p += (size_t)nn * sizeof(char *);
    }
    if (ne) {
        ents = (kv_dirent *)(void *)p;
        p += (size_t)ne * sizeof(kv_dirent);
    }
    if (t.has & KV_R_DATA) {
        if (t.data_len)
            memcpy(p, data, t.data_len);
        t.data = p;
        p += t.data_len;
    }
    if (nn) {
        bytes_r q = br_init(buf + names_pos, len - names_pos);
        for (uint64_t i = 0; i < nn; i++) {
            uint32_t l = br_u32(&q);
            memcpy(p, br_take(&q, l), l);
            p[l] = 0;
            names[i] = (const char *)p;
            p += (size_t)l + 1;
        }
    }
    if (ne) {
        bytes_r q = br_init(buf + ents_pos, len - ents_pos);
        for (uint64_t i = 0; i < ne; i++) {
            uint32_t l = br_u32(&q);
            memcpy(p, br_take(&q, l), l);
            p[l] = 0;
            ents[i].name = (const char *)p;
            p += (size_t)l + 1;
            ents[i].ino = br_u64(&q);
            ents[i].mode = br_u32(&q);
        }
    }
    t.names = names;
    t.n_names = (size_t)nn;
    t.entries = ents;
    t.n_entries = (size_t)ne;
    t._store = store;
    *out = t;
    return 0;
}

const char *kv_strstatus(int status)
{
    switch (status) {
    case 0: return "ok";
    case KV_ESTALE: return "stale sequence number (command already applied, reply gone)";
    case KV_EREPLYGONE: return "duplicate command, reply not kept";
    case KV_ESESSION:
        return "session expired (the request was not applied now; an earlier "
               "attempt may have been)";
    case KV_EUPLOAD: return "upload unknown, expired or incomplete";
    default: return strerror(status);
    }
}
