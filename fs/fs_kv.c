/*
 * fs_kv.c — the FUSE layer's calls into the state machine: build a kv_op,
 * submit it through the mount's backend (fs/fs_backend.h), decode the
 * reply, map the status to a negative errno.  See fs_kv.h for the session
 * pool that gives every command its exactly-once (client id, seq) pair.
 *
 * One concern, one wrapper per operation of the state machine (about 800
 * lines): the wrappers share the session pool, the reply decoding and the
 * errno mapping, and splitting them by kind would only spread those.
 */
#include "fs/fs_kv.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net/net_util.h"
#include "node/hotbuf.h"
#include "raftkv/kv_ops.h"

int fs_kv_init(fs_kv *k, const fs_backend *b, uint64_t client_base, uint64_t holder, int timeout_ms)
{
    memset(k, 0, sizeof *k);
    k->b = *b;
    /* Slots are added to the base; keep the low 16 bits free so that
     * different mounts' client ids cannot collide within a pool. */
    k->client_base = client_base & ~(uint64_t)0xffff;
    if (k->client_base == 0)
        k->client_base = 1ull << 32;
    k->holder = holder;
    k->timeout_ms = timeout_ms;
    return pthread_mutex_init(&k->mu, NULL) == 0 ? 0 : -1;
}

void fs_kv_destroy(fs_kv *k)
{
    free(k->free_list);
    pthread_mutex_destroy(&k->mu);
    memset(k, 0, sizeof *k);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A session that no other thread uses until session_put(): one client id
 * never has two commands in flight, so its seqs reach the state machine in
 * order (the state machine keeps only the last seq per client).  A new one
 * is registered with the cluster (a REGISTER command).  0 or a negative
 * errno. */
static int session_get(fs_kv *k, fs_kv_session *s, int timeout_ms)
{
    uint64_t now = mono_ms();
    pthread_mutex_lock(&k->mu);
    bool have = false;
    while (k->n_free > 0 && !have) {
        *s = k->free_list[--k->n_free];
        have = now - s->last_ms < FS_KV_SESSION_IDLE_MS;
    }
    pthread_mutex_unlock(&k->mu);
    if (have)
        return 0;
    uint64_t id;
    int rc = k->b.ops->register_session(k->b.ctx, timeout_ms, &id);
    if (rc != 0)
        return rc == -ENOMEM ? -ENOMEM : -EIO;
    pthread_mutex_lock(&k->mu);
    k->n_sessions++;
    pthread_mutex_unlock(&k->mu);
    s->client_id = id;
    s->next_seq = 1;
    s->last_ms = now;
    return 0;
}

static void session_put(fs_kv *k, const fs_kv_session *s)
{
    pthread_mutex_lock(&k->mu);
    if (k->n_free == k->cap_free) {
        size_t cap = k->cap_free ? k->cap_free * 2 : 16;
        fs_kv_session *p = realloc(k->free_list, cap * sizeof *p);
        if (p == NULL) {
            /* The session is lost; a new slot will be made.  Harmless. */
            pthread_mutex_unlock(&k->mu);
            return;
        }
        k->free_list = p;
        k->cap_free = cap;
    }
    k->free_list[k->n_free++] = *s;
    pthread_mutex_unlock(&k->mu);
}

/* The writer of this thread's current request (fs_kv_set_writer). */
static _Thread_local uint32_t writer_uid, writer_gid;

void fs_kv_set_writer(uint32_t uid, uint32_t gid)
{
    writer_uid = uid;
    writer_gid = gid;
}

/* An op that changes a file's content, on behalf of this thread's writer
 * (fs_kv_set_writer): type, where (path or inode), offset and bytes. */
static kv_op content_op(uint8_t type, const char *path, uint64_t ino, uint64_t off,
                        const char *data, size_t len)
{
    kv_op op = {.type = type,
                .path = path,
                .ino = ino,
                .off = off,
                .data = (const uint8_t *)data,
                .data_len = len,
                .cuid = writer_uid,
                .cgid = writer_gid};
    return op;
}

static int map_status(int st)
{
    if (st == 0)
        return 0;
    if (st > 1000)
        return -EIO; /* KV_ESTALE, KV_EREPLYGONE, KV_ESESSION: outcome not knowable here */
    return -st;
}

static int submit_within(fs_kv *k, const kv_op *op, kv_reply *r, int timeout_ms);

/* Submits op; on 0 *r holds the decoded reply (kv_reply_free it). */
static int submit(fs_kv *k, const kv_op *op, kv_reply *r)
{
    return submit_within(k, op, r, k->timeout_ms);
}

static int submit_held(fs_kv *k, const kv_op *op, kv_reply *r, int timeout_ms, fs_kv_held *held);

static int submit_within(fs_kv *k, const kv_op *op, kv_reply *r, int timeout_ms)
{
    return submit_held(k, op, r, timeout_ms, NULL);
}

void fs_kv_held_drop(fs_kv *k, fs_kv_held *h)
{
    /* next_seq is past any seq sent, so the pool's next user cannot collide
     * with a command still in doubt. */
    if (h->have)
        session_put(k, &h->s);
    memset(h, 0, sizeof *h);
}

/* held != NULL: a command runs in the caller's held session; when one is in
 * doubt (held->seq) it is resent with that seq.  Sessions from the pool are
 * returned at once; a held one stays taken while its command is in doubt,
 * and goes back to the pool once the outcome is known. */
static int submit_held(fs_kv *k, const kv_op *op, kv_reply *r, int timeout_ms, fs_kv_held *held)
{
    memset(r, 0, sizeof *r);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (kv_op_encode(op, &buf, &len) != 0)
        return op->data_len > UINT32_MAX ? -EFBIG : -ENOMEM;
    bool rd = kv_op_is_read(buf, len);
    fs_kv_session s = {0, 0, 0};
    uint64_t seq = 0;
    if (!rd && held != NULL) {
        if (!held->have) {
            int grc = session_get(k, &held->s, timeout_ms);
            if (grc != 0) {
                free(buf);
                return grc; /* nothing was sent */
            }
            held->have = true;
        }
        if (held->seq == 0)
            held->seq = held->s.next_seq++;
        s = held->s;
        seq = held->seq;
    } else if (!rd) {
        int grc = session_get(k, &s, timeout_ms);
        if (grc != 0) {
            free(buf);
            return grc;
        }
        seq = s.next_seq++;
    }
    uint8_t *rep = NULL;
    size_t rlen = 0;
    int rc = rd ? k->b.ops->read(k->b.ctx, buf, len, timeout_ms, &rep, &rlen)
                : k->b.ops->command(k->b.ctx, buf, len, s.client_id, seq, timeout_ms, &rep, &rlen);
    free(buf);
    /* A session the cluster expired is dropped (the operation gets EIO
     * below: it was not applied now, but an earlier attempt may have been);
     * the next command registers a new one. */
    bool expired = rc == 0 && !rd && kv_reply_peek_status(rep, rlen) == KV_ESESSION;
    if (!rd && held != NULL) {
        if (expired) {
            /* A command in doubt can no longer be resolved: the caller sees
             * EIO with nothing in doubt, a definite failure. */
            memset(held, 0, sizeof *held);
        } else if (rc == 0 || rc == -ENOMEM || rc == -EINVAL) {
            /* The outcome is known (or the command never left): done. */
            held->seq = 0;
            held->s.last_ms = mono_ms();
            fs_kv_held_drop(k, held);
        }
    } else if (!rd && !expired) {
        s.last_ms = mono_ms();
        session_put(k, &s);
    }
    if (rc != 0) {
        free(rep);
        if (rc == -ENOMEM || rc == -EINVAL)
            return rc;
        return -EIO; /* deadline passed (no quorum) or node stopping */
    }
    if (kv_reply_decode(rep, rlen, r) != 0) {
        free(rep);
        return -EIO;
    }
    free(rep);
    int st = map_status(r->status);
    if (held != NULL && (r->status == KV_ESTALE || r->status == KV_EREPLYGONE))
        st = 0; /* a retry of a command that was applied (its reply is gone) */
    if (st != 0)
        kv_reply_free(r);
    return st;
}

static struct timespec ns_to_ts(int64_t ns)
{
    struct timespec ts;
    int64_t s = ns / 1000000000LL, rem = ns % 1000000000LL;
    if (rem < 0) {
        rem += 1000000000LL;
        s--;
    }
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)rem;
    return ts;
}

static void attr_from_kv(const kv_attr *ka, fs_attr *a)
{
    a->ino = ka->ino;
    a->mode = ka->mode;
    a->nlink = ka->nlink;
    a->uid = ka->uid;
    a->gid = ka->gid;
    a->size = ka->size;
    a->rdev = ka->rdev;
    a->atime = ns_to_ts(ka->atime_ns);
    a->mtime = ns_to_ts(ka->mtime_ns);
    a->ctime = ns_to_ts(ka->ctime_ns);
    a->version = (uint64_t)ka->ctime_ns;
}

static int submit_attr(fs_kv *k, const kv_op *op, fs_attr *a)
{
    kv_reply r;
    int rc = submit(k, op, &r);
    if (rc != 0)
        return rc;
    if (a != NULL) {
        if (r.has & KV_R_ATTR)
            attr_from_kv(&r.attr, a);
        else
            memset(a, 0, sizeof *a);
    }
    kv_reply_free(&r);
    return 0;
}

/* Runs op and keeps only the status. */
static int submit_status(fs_kv *k, const kv_op *op)
{
    return submit_attr(k, op, NULL);
}

static int upload_and_commit(fs_kv *k, const char *data, size_t len, kv_op *commit);

/* ---- reads ---------------------------------------------------------------------- */

int fs_kv_stat(fs_kv *k, const char *path, uint64_t ino, fs_attr *a)
{
    kv_op op = {.type = KV_OP_STAT, .path = path, .ino = ino};
    return submit_attr(k, &op, a);
}

int fs_kv_lookup(fs_kv *k, uint64_t dir, const char *name, fs_attr *a)
{
    kv_op op = {.type = KV_OP_STAT, .dir = dir, .path = name};
    return submit_attr(k, &op, a);
}

int fs_kv_stat_within(fs_kv *k, const char *path, int timeout_ms, fs_attr *a)
{
    kv_op op = {.type = KV_OP_STAT, .path = path};
    kv_reply r;
    int rc = submit_within(k, &op, &r, timeout_ms);
    if (rc != 0)
        return rc;
    if (r.has & KV_R_ATTR)
        attr_from_kv(&r.attr, a);
    kv_reply_free(&r);
    return 0;
}

int fs_kv_readdir(fs_kv *k, uint64_t ino, fs_kv_dirent_fn fn, void *arg)
{
    kv_op op = {.type = KV_OP_READDIR, .dir = ino};
    kv_reply r;
    int rc = submit(k, &op, &r);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < r.n_entries; i++) {
        fs_attr a;
        memset(&a, 0, sizeof a);
        a.ino = r.entries[i].ino;
        a.mode = r.entries[i].mode;
        if (fn(arg, r.entries[i].name, &a) != 0)
            break;
    }
    kv_reply_free(&r);
    return 0;
}

ssize_t fs_kv_read_reply(fs_kv *k, uint64_t ino, uint64_t off, size_t len, kv_reply *r)
{
    kv_op op = {.type = KV_OP_GETRANGE, .ino = ino, .off = off, .len = len};
    int rc = submit(k, &op, r);
    if (rc != 0)
        return rc;
    if (r->data_len > len)
        r->data_len = len;
    return (ssize_t)r->data_len;
}

int fs_kv_readlink(fs_kv *k, uint64_t ino, char *buf, size_t size)
{
    if (size == 0)
        return -EINVAL;
    kv_op op = {.type = KV_OP_READLINK, .dir = ino};
    kv_reply r;
    int rc = submit(k, &op, &r);
    if (rc != 0)
        return rc;
    size_t n = r.data_len < size - 1 ? r.data_len : size - 1;
    if (n > 0)
        memcpy(buf, r.data, n);
    buf[n] = '\0';
    kv_reply_free(&r);
    return 0;
}

int fs_kv_statfs(fs_kv *k, struct statvfs *st)
{
    kv_op op = {.type = KV_OP_STATFS};
    kv_reply r;
    int rc = submit(k, &op, &r);
    if (rc != 0)
        return rc;
    const kv_statfs *s = &r.statfs;
    const uint64_t bs = 4096;
    memset(st, 0, sizeof *st);
    st->f_bsize = bs;
    st->f_frsize = bs;
    uint64_t used = (s->bytes_used + bs - 1) / bs;
    /* No limit configured: the whole state lives in this machine's memory,
     * so that is the real bound (df must not promise more). */
    uint64_t limit = s->bytes_limit;
    if (limit == 0) {
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGE_SIZE);
        limit = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : s->bytes_used;
    }
    uint64_t total = (limit + bs - 1) / bs;
    if (total < used)
        total = used;
    st->f_blocks = total;
    st->f_bfree = total - used;
    st->f_bavail = total - used;
    uint64_t ftotal = s->files_limit ? s->files_limit : s->files + (1ull << 28);
    if (ftotal < s->files)
        ftotal = s->files;
    st->f_files = ftotal;
    st->f_ffree = ftotal - s->files;
    st->f_favail = ftotal - s->files;
    st->f_namemax = s->name_max ? s->name_max : KV_NAME_MAX;
    kv_reply_free(&r);
    return 0;
}

/* ---- commands -------------------------------------------------------------------- */

int fs_kv_create(fs_kv *k, uint64_t dir, const char *name, uint32_t mode, uint32_t uid,
                 uint32_t gid, bool excl, bool trunc, fs_attr *a)
{
    kv_op op = {.type = KV_OP_CREATE,
                .dir = dir,
                .path = name,
                .mode = mode & 07777,
                .uid = uid,
                .gid = gid,
                .flags = (excl ? KV_CREATE_EXCL : 0u) | (trunc ? KV_CREATE_TRUNC : 0u)};
    return submit_attr(k, &op, a);
}

int fs_kv_mknod(fs_kv *k, uint64_t dir, const char *name, uint32_t mode, uint64_t rdev,
                uint32_t uid, uint32_t gid, fs_attr *a)
{
    kv_op op = {.type = KV_OP_MKNOD,
                .dir = dir,
                .path = name,
                .mode = mode,
                .rdev = rdev,
                .uid = uid,
                .gid = gid};
    return submit_attr(k, &op, a);
}

int fs_kv_mkdir(fs_kv *k, uint64_t dir, const char *name, uint32_t mode, uint32_t uid, uint32_t gid,
                fs_attr *a)
{
    kv_op op = {.type = KV_OP_MKDIR,
                .dir = dir,
                .path = name,
                .mode = mode & 07777,
                .uid = uid,
                .gid = gid};
    return submit_attr(k, &op, a);
}

int fs_kv_unlink(fs_kv *k, uint64_t dir, const char *name)
{
    kv_op op = {.type = KV_OP_UNLINK, .dir = dir, .path = name};
    return submit_status(k, &op);
}

int fs_kv_rmdir(fs_kv *k, uint64_t dir, const char *name)
{
    kv_op op = {.type = KV_OP_RMDIR, .dir = dir, .path = name};
    return submit_status(k, &op);
}

int fs_kv_symlink(fs_kv *k, const char *target, uint64_t dir, const char *name, uint32_t uid,
                  uint32_t gid, fs_attr *a)
{
    kv_op op = {.type = KV_OP_SYMLINK,
                .dir = dir,
                .path = name,
                .data = (const uint8_t *)target,
                .data_len = strlen(target),
                .uid = uid,
                .gid = gid};
    return submit_attr(k, &op, a);
}

int fs_kv_link(fs_kv *k, uint64_t ino, uint64_t dir, const char *name, fs_attr *a)
{
    kv_op op = {.type = KV_OP_LINK, .dir = ino, .dir2 = dir, .path2 = name};
    return submit_attr(k, &op, a);
}

int fs_kv_rename(fs_kv *k, uint64_t dir, const char *name, uint64_t dir2, const char *name2,
                 unsigned flags)
{
    kv_op op = {.type = KV_OP_RENAME,
                .dir = dir,
                .path = name,
                .dir2 = dir2,
                .path2 = name2,
                .flags = flags};
    return submit_status(k, &op);
}

ssize_t fs_kv_write_at(fs_kv *k, const char *path, uint64_t ino, uint64_t off, const char *data,
                       size_t len)
{
    /* One command carries at most one part (kv.h): a larger write is several
     * WRITE_ATs, in order. */
    size_t done = 0;
    do {
        size_t n = len - done < KV_PART_SIZE ? len - done : KV_PART_SIZE;
        kv_op op = content_op(KV_OP_WRITE_AT, path, ino, off + done, data + done, n);
        int rc = submit_status(k, &op);
        if (rc < 0)
            return done ? (ssize_t)done : rc;
        done += n;
    } while (done < len);
    return (ssize_t)len;
}

ssize_t fs_kv_append(fs_kv *k, const char *path, uint64_t ino, const char *data, size_t len)
{
    kv_op op = content_op(KV_OP_APPEND, path, ino, 0, data, len);
    int rc = submit_status(k, &op);
    return rc < 0 ? rc : (ssize_t)len;
}

int fs_kv_put(fs_kv *k, const char *path, const char *data, size_t len, uint32_t mode, uint32_t uid,
              uint32_t gid)
{
    if (len > KV_PART_SIZE)
        return fs_kv_put_large(k, path, data, len, mode, uid, gid);
    kv_op op = content_op(KV_OP_PUT, path, 0, 0, data, len);
    op.mode = mode & 07777;
    op.uid = uid;
    op.gid = gid;
    return submit_status(k, &op);
}

int fs_kv_put_ino(fs_kv *k, uint64_t ino, const char *data, size_t len)
{
    if (len > KV_PART_SIZE) {
        kv_op commit = {.type = KV_OP_UPLOAD_COMMIT,
                        .dir = ino,
                        .len = len,
                        .cuid = writer_uid,
                        .cgid = writer_gid};
        return upload_and_commit(k, data, len, &commit);
    }
    kv_op op = content_op(KV_OP_PUT, NULL, 0, 0, data, len);
    op.dir = ino;
    return submit_status(k, &op);
}

int fs_kv_put_if(fs_kv *k, fs_kv_held *held, uint64_t ino, uint64_t version, const char *data,
                 size_t len, fs_attr *a)
{
    kv_op op = content_op(KV_OP_PUT_IF, NULL, ino, version, data, len);
    if (len > KV_PART_SIZE) {
        /* Past one part: the content goes as parts of an upload (idempotent,
         * sent again in full by a retry), and the one command that takes
         * effect, held like the PUT_IF, is the conditional commit. */
        uint64_t id = fs_kv_upload_id();
        int prc = fs_kv_upload_parts(k, id, len, 0, data, len);
        if (prc < 0)
            return prc;
        op = (kv_op){.type = KV_OP_UPLOAD_COMMIT,
                     .upload = id,
                     .ino = ino,
                     .off = version,
                     .len = len,
                     .cuid = writer_uid,
                     .cgid = writer_gid};
    }
    kv_reply r;
    int rc = submit_held(k, &op, &r, k->timeout_ms, held);
    if (rc != 0)
        return rc;
    if (a != NULL) {
        memset(a, 0, sizeof *a);
        if (r.has & KV_R_ATTR)
            attr_from_kv(&r.attr, a);
    }
    kv_reply_free(&r);
    return 0;
}

ssize_t fs_kv_write_at_held(fs_kv *k, fs_kv_held *held, uint64_t ino, uint64_t off,
                            const char *data, size_t len)
{
    /* One command carries at most one part: the bytes before the last part
     * go as plain WRITE_ATs first (the same bytes at the same offsets if a
     * retry sends them again), the last one is the held command. */
    size_t total = len;
    while (len > KV_PART_SIZE) {
        ssize_t w = fs_kv_write_at(k, NULL, ino, off, data, KV_PART_SIZE);
        if (w < 0)
            return w;
        off += KV_PART_SIZE;
        data += KV_PART_SIZE;
        len -= KV_PART_SIZE;
    }
    kv_op op = content_op(KV_OP_WRITE_AT, NULL, ino, off, data, len);
    kv_reply r;
    int rc = submit_held(k, &op, &r, k->timeout_ms, held);
    if (rc != 0)
        return rc;
    kv_reply_free(&r);
    return (ssize_t)total;
}

int fs_kv_upload_write_held(fs_kv *k, fs_kv_held *held, uint64_t upload, uint64_t ino, uint64_t off,
                            uint64_t len)
{
    kv_op op = {.type = KV_OP_UPLOAD_WRITE,
                .upload = upload,
                .ino = ino,
                .off = off,
                .len = len,
                .cuid = writer_uid,
                .cgid = writer_gid};
    kv_reply r;
    int rc = submit_held(k, &op, &r, k->timeout_ms, held);
    if (rc != 0)
        return rc;
    kv_reply_free(&r);
    return 0;
}

int fs_kv_truncate_attr(fs_kv *k, const char *path, uint64_t ino, uint64_t size, fs_attr *a)
{
    kv_op op = {.type = KV_OP_TRUNCATE,
                .path = path,
                .ino = ino,
                .len = size,
                .cuid = writer_uid,
                .cgid = writer_gid};
    return submit_attr(k, &op, a);
}

/* ---- values past one part: chunked uploads (kv.h) ------------------------------------ */

uint64_t fs_kv_upload_id(void)
{
    return net_random_id();
}

static _Atomic uint64_t part_seq;

/* One window of parts (at most FS_KV_UPLOAD_WINDOW), submitted at once.
 * Parts are idempotent, so those that found no quorum in time are sent
 * again, up to FS_KV_UPLOAD_TRIES tries in all (each with the op timeout). */
static int upload_window(fs_kv *k, uint64_t upload, uint64_t total, uint64_t off, const char *data,
                         size_t len)
{
    fs_backend_cmd cmds[FS_KV_UPLOAD_WINDOW];
    uint8_t *bufs[FS_KV_UPLOAD_WINDOW];
    size_t lens[FS_KV_UPLOAD_WINDOW];
    bool done_part[FS_KV_UPLOAD_WINDOW];
    size_t cnt = 0, done = 0;
    int rc = 0;
    /* Parts are outside the sessions (kv.h): the upload id serves as their
     * client id, and each submission has a sequence number of its own, so
     * that a part sent again is never mistaken for its abandoned first try. */
    for (; cnt < FS_KV_UPLOAD_WINDOW && done < len; cnt++) {
        size_t n = len - done < KV_PART_SIZE ? len - done : KV_PART_SIZE;
        kv_op op = {.type = KV_OP_UPLOAD_PART,
                    .upload = upload,
                    .off = off + done,
                    .len = total,
                    .data = (const uint8_t *)data + done,
                    .data_len = n};
        size_t cap = kv_op_encode_bound(&op);
        bufs[cnt] = hotbuf_alloc(cap); /* rewritten at once, page after page */
        if (!bufs[cnt] || kv_op_encode_to(&op, bufs[cnt], cap, &lens[cnt]) != 0) {
            hotbuf_free(bufs[cnt]);
            rc = -ENOMEM;
            break;
        }
        done_part[cnt] = false;
        done += n;
    }
    for (int attempt = 0; rc == 0 && attempt < FS_KV_UPLOAD_TRIES; attempt++) {
        size_t idx[FS_KV_UPLOAD_WINDOW], m = 0;
        for (size_t i = 0; i < cnt; i++)
            if (!done_part[i]) {
                cmds[m] = (fs_backend_cmd){.op = bufs[i],
                                           .len = lens[i],
                                           .client_id = upload,
                                           .seq = atomic_fetch_add(&part_seq, 1) + 1};
                idx[m++] = i;
            }
        if (m == 0)
            break;
        k->b.ops->commands(k->b.ctx, cmds, m, k->timeout_ms);
        bool again = false;
        for (size_t j = 0; j < m; j++) {
            if (rc == 0) {
                if (cmds[j].rc == -ENOMEM)
                    rc = -ENOMEM;
                else if (cmds[j].rc == -ETIMEDOUT)
                    again = true; /* no quorum in time: this part goes again */
                else if (cmds[j].rc != 0)
                    rc = -EIO; /* node stopping */
                else if ((rc = map_status(kv_reply_status(cmds[j].reply, cmds[j].reply_len))) == 0)
                    done_part[idx[j]] = true;
            }
            free(cmds[j].reply);
        }
        if (rc == 0 && again && attempt + 1 == FS_KV_UPLOAD_TRIES)
            rc = -EIO;
    }
    for (size_t i = 0; i < cnt; i++)
        hotbuf_free(bufs[i]);
    return rc;
}

int fs_kv_upload_parts(fs_kv *k, uint64_t upload, uint64_t total, uint64_t off, const char *data,
                       size_t len)
{
    if (off % KV_PART_SIZE)
        return -EINVAL;
    size_t step = (size_t)FS_KV_UPLOAD_WINDOW * KV_PART_SIZE;
    for (size_t done = 0; done < len; done += step) {
        /* A window of parts goes in at once: they share fsyncs and round
         * trips, and the node's per-turn bound and Raft's flow control pace
         * them. */
        size_t n = len - done < step ? len - done : step;
        int rc = upload_window(k, upload, total, off + done, data + done, n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A new upload of data's len bytes, then commit (an UPLOAD_COMMIT op whose
 * upload id is filled in here).  On a failure other than an unknown outcome
 * (-EIO) the upload is aborted; after -EIO it expires (kv.h). */
static int upload_and_commit(fs_kv *k, const char *data, size_t len, kv_op *commit)
{
    commit->upload = fs_kv_upload_id();
    int rc = fs_kv_upload_parts(k, commit->upload, len, 0, data, len);
    if (rc == 0)
        rc = submit_status(k, commit);
    if (rc < 0 && rc != -EIO)
        fs_kv_upload_abort(k, commit->upload);
    return rc;
}

int fs_kv_upload_abort(fs_kv *k, uint64_t upload)
{
    kv_op op = {.type = KV_OP_UPLOAD_ABORT, .upload = upload};
    return submit_status(k, &op);
}

int fs_kv_put_large(fs_kv *k, const char *path, const char *data, size_t len, uint32_t mode,
                    uint32_t uid, uint32_t gid)
{
    kv_op commit = {.type = KV_OP_UPLOAD_COMMIT,
                    .path = path,
                    .len = len,
                    .mode = mode & 07777,
                    .uid = uid,
                    .gid = gid,
                    .cuid = writer_uid,
                    .cgid = writer_gid};
    return upload_and_commit(k, data, len, &commit);
}

int fs_kv_truncate(fs_kv *k, const char *path, uint64_t ino, uint64_t size)
{
    return fs_kv_truncate_attr(k, path, ino, size, NULL);
}

static int64_t ts_to_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

int fs_kv_setattr(fs_kv *k, const char *path, uint64_t ino, unsigned mask, uint32_t mode,
                  uint32_t uid, uint32_t gid, const struct timespec *atime,
                  const struct timespec *mtime)
{
    kv_op op = {.type = KV_OP_SETATTR,
                .path = path,
                .ino = ino,
                .mode = mode & 07777,
                .uid = uid,
                .gid = gid,
                .cuid = writer_uid,
                .cgid = writer_gid};
    if (mask & FS_SET_MODE)
        op.flags |= KV_SET_MODE;
    if (mask & FS_SET_UID)
        op.flags |= KV_SET_UID;
    if (mask & FS_SET_GID)
        op.flags |= KV_SET_GID;
    if (mask & FS_SET_ATIME_NOW) {
        op.flags |= KV_SET_ATIME;
        op.atime_ns = KV_TIME_NOW;
    } else if ((mask & FS_SET_ATIME) && atime != NULL) {
        op.flags |= KV_SET_ATIME;
        op.atime_ns = ts_to_ns(atime);
    }
    if (mask & FS_SET_MTIME_NOW) {
        op.flags |= KV_SET_MTIME;
        op.mtime_ns = KV_TIME_NOW;
    } else if ((mask & FS_SET_MTIME) && mtime != NULL) {
        op.flags |= KV_SET_MTIME;
        op.mtime_ns = ts_to_ns(mtime);
    }
    return submit_status(k, &op);
}

int fs_kv_hold_gone(fs_kv *k)
{
    kv_op op = {.type = KV_OP_HOLD, .holder = k->holder, .flags = KV_HOLD_GONE};
    return submit_status(k, &op);
}
