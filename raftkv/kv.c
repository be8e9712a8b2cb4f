/*
 * kv.c — the state machine's entry points (API in kv.h): its life cycle,
 * kv_apply (the clock and session steps, then one op by its type) and the
 * counters.  The structures are in kv_internal.h; each op's work is in the
 * file of its concern: kv_namespace.c (names and file contents),
 * kv_open.c (open files), kv_upload.c (chunked uploads), kv_session.c
 * (exactly-once sessions), kv_read.c (reads), kv_snapshot.c and
 * kv_snapshot_read.c (snapshots).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftkv/kv.h"
#include "raftkv/kv_internal.h"

/* ---- apply ----------------------------------------------------------------------------- */

/* SET_LIMITS: the replicated limits (kv.h).  Decided from the entry alone. */
static int apply_set_limits(kv *k, const kv_op *op, uint8_t **out, size_t *len)
{
    if (op->flags & ~KV_LIMITS_IF_UNSET)
        return reply_simple(EINVAL, NULL, out, len);
    uint64_t mfs = op->len ? op->len : KV_DEFAULT_MAX_FILE_SIZE;
    if (mfs > KV_MAX_FILE_SIZE_LIMIT)
        return reply_simple(EINVAL, NULL, out, len);
    if (!(op->flags & KV_LIMITS_IF_UNSET) || !k->lim_set) {
        k->lim.max_file_size = mfs;
        k->lim.max_total_bytes = op->off;
        k->lim.max_inodes = op->rdev;
        k->lim_set = true;
    }
    return reply_limits(k, out, len);
}

bool kv_get_limits(const kv *k, kv_limits *out)
{
    *out = k->lim;
    return k->lim_set;
}

static int do_write(kv *k, const kv_op *op, uint8_t **out, size_t *len)
{
    kv_inode *res = NULL;
    int st;
    switch (op->type) {
    case KV_OP_PUT: st = op_put(k, op, &res, false); break;
    case KV_OP_APPEND: st = op_put(k, op, &res, true); break;
    case KV_OP_DEL:
    case KV_OP_RMDIR:
    case KV_OP_UNLINK: st = op_del(k, op, op->type); break;
    case KV_OP_CREATE:
    case KV_OP_MKNOD:
    case KV_OP_MKDIR:
    case KV_OP_SYMLINK: st = op_make(k, op, &res); break;
    case KV_OP_WRITE_AT: st = op_write_at(k, op, &res); break;
    case KV_OP_TRUNCATE: st = op_truncate(k, op, &res); break;
    case KV_OP_RENAME: st = op_rename(k, op, &res); break;
    case KV_OP_SETATTR: st = op_setattr(k, op, &res); break;
    case KV_OP_LINK: st = op_link(k, op, &res); break;
    case KV_OP_OPEN_REF: st = op_open_ref(k, op, &res); break;
    case KV_OP_CLOSE_REF: st = op_close_ref(k, op); break;
    case KV_OP_RELEASE_HOLDER: st = op_release_holder(k, op); break;
    case KV_OP_HOLD: st = op_hold(k, op); break;
    case KV_OP_NOOP: st = 0; break;
    case KV_OP_SET_LIMITS: return apply_set_limits(k, op, out, len);
    case KV_OP_PUT_IF: st = op_put_if(k, op, &res, NULL); break;
    case KV_OP_UPLOAD_PART: st = op_upload_part(k, op); break;
    case KV_OP_UPLOAD_COMMIT: st = op_upload_commit(k, op, &res); break;
    case KV_OP_UPLOAD_ABORT: st = op_upload_abort(k, op); break;
    case KV_OP_UPLOAD_WRITE: st = op_upload_write(k, op, &res); break;
    default:
        /* A read wrapped in a command: never executed (its reply could be
         * the size of a file, on every replica, at every replay). */
        st = EINVAL;
        break;
    }
    if (st < 0)
        return -1;
    return reply_simple(st, res, out, len);
}

int kv_apply(kv *k, uint64_t index, const uint8_t *cmd, size_t len, uint8_t **reply,
             size_t *reply_len)
{
    *reply = NULL;
    *reply_len = 0;
    if (index <= k->applied)
        return 1;
    k->applied = index;
    k->n_touched = 0;
    k->touched_all = false;
    k->touched_names = false;
    uint64_t client, seq;
    int64_t t;
    const uint8_t *opb;
    size_t opl;
    if (kv_cmd_decode(cmd, len, &client, &seq, &t, &opb, &opl) != 0)
        return kv_reply_encode_status(EBADMSG, reply, reply_len);
    /* Times strictly increase: a proposer with a slow clock cannot make
     * mtime decrease, every replica clamps identically, and no two commands
     * share a time, so a ctime names one change of an inode (PUT_IF). */
    if (t <= k->last_time)
        t = k->last_time == INT64_MAX ? INT64_MAX : k->last_time + 1;
    k->last_time = k->now = t;
    /* Session time follows, but at most KV_SESSION_STEP_NS per command: one
     * proposer's clock far ahead cannot expire every session at once. */
    if (k->sclock == 0 || k->now - k->sclock <= (int64_t)KV_SESSION_STEP_NS)
        k->sclock = k->now;
    else
        k->sclock += (int64_t)KV_SESSION_STEP_NS;
    sess_expire(k);
    kv_op op;
    bool op_ok = kv_op_decode(opb, opl, &op) == 0;
    if (op_ok && op.type == KV_OP_REGISTER)
        return apply_register(k, index, reply, reply_len);
    upload_expire(k);
    int rc;
    if (upload_part_apply(k, opb, opl, reply, reply_len, &rc))
        return rc;
    if (client && sess_answer(k, client, seq, reply, reply_len, &rc))
        return rc;
    if (!op_ok)
        rc = kv_reply_encode_status(EBADMSG, reply, reply_len);
    else
        rc = do_write(k, &op, reply, reply_len);
    if (rc != 0)
        return -1;
    if (client && sess_record(k, client, seq, *reply, *reply_len) != 0) {
        free(*reply);
        *reply = NULL;
        return -1;
    }
    return 0;
}

bool kv_changed_names(const kv *k)
{
    return k->touched_names || k->touched_all;
}

size_t kv_changed(const kv *k, const uint64_t **inos, bool *all)
{
    *inos = k->touched;
    *all = k->touched_all;
    return k->n_touched;
}

void kv_apply_skip(kv *k, uint64_t index)
{
    k->n_touched = 0;
    k->touched_all = false;
    k->touched_names = false;
    if (index > k->applied)
        k->applied = index;
}

uint64_t kv_applied_index(const kv *k)
{
    return k->applied;
}
int64_t kv_last_time(const kv *k)
{
    return k->last_time;
}

void kv_get_stats(const kv *k, kv_stats *st)
{
    memset(st, 0, sizeof *st);
    st->applied_index = k->applied;
    st->last_time_ns = k->last_time;
    st->inodes = k->icount;
    st->dirs = k->ndirs;
    st->files = k->nfiles;
    st->orphans = k->norphans;
    st->bytes_used = k->bytes_used;
    st->data_alloc = k->data_alloc;
    st->meta_alloc = k->meta_alloc;
    st->sessions = k->scount;
    st->refs = k->nrefs;
    st->holders = k->nholders;
    st->session_time_ns = k->sclock;
    st->uploads = k->nups;
    st->staged_bytes = k->staged;
}

/* ---- life cycle --------------------------------------------------------------------- */

kv *kv_alloc(const kv_limits *lim)
{
    kv *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    if (lim)
        k->lim = *lim;
    if (!k->lim.max_file_size)
        k->lim.max_file_size = KV_DEFAULT_MAX_FILE_SIZE;
    if (k->lim.max_file_size > KV_MAX_FILE_SIZE_LIMIT)
        k->lim.max_file_size = KV_MAX_FILE_SIZE_LIMIT;
    k->next_ino = KV_ROOT_INO;
    return k;
}

kv *kv_new(const kv_limits *limits)
{
    kv *k = kv_alloc(limits);
    if (!k)
        return NULL;
    kv_inode *root;
    uint64_t saved = k->lim.max_inodes;
    k->lim.max_inodes = 0;
    if (inode_new(k, S_IFDIR | 0755, 0, 0, &root) != 0) {
        kv_free(k);
        return NULL;
    }
    k->lim.max_inodes = saved;
    root->x = KV_ROOT_INO;
    k->root = root;
    return k;
}

static void kv_clear(kv *k)
{
    for (uint64_t i = 0; i < k->icap; i++)
        if (k->itab[i])
            inode_destroy(k, k->itab[i]);
    free(k->itab);
    while (k->shead) {
        kv_session *s = k->shead;
        k->shead = s->next;
        free(s->reply);
        free(s);
    }
    free(k->stab);
    free(k->refs);
    for (size_t i = 0; i < k->nholders; i++)
        free(k->holders[i].held);
    free(k->holders);
    free(k->orph);
    for (size_t i = 0; i < k->nups; i++)
        upload_release(k, &k->ups[i]);
    free(k->ups);
}

void kv_free(kv *k)
{
    if (!k)
        return;
    kv_clear(k);
    free(k);
}
