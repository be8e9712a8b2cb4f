/*
 * fs.c — the FUSE face of hstore: the libfuse3 low-level operations of one
 * node's mount, each mapped onto state-machine operations (fs/fs_kv.h).
 *
 * Names, not paths.  The kernel's node ids are the state machine's inode
 * numbers (the root is 1 in both).  A lookup is one linearizable read of
 * (parent inode, name); every other operation addresses an inode, or a name
 * in a directory inode (create, mkdir, mknod, symlink, link, unlink, rmdir,
 * rename: parent + name, and rename a second parent + name).  No path is ever
 * built, so depth is unlimited (only one name, at most 255 bytes, travels
 * with an operation), and an open file keeps addressing its inode whatever
 * happens to its names.
 *
 * Consistency.  Every read (lookup, getattr, readdir, read, readlink) is a
 * linearizable read (ReadIndex on the leader, then wait until this node has
 * applied that index).  Every change is one replicated command, committed on a
 * majority and applied here before the system call returns; commands carry an
 * exactly-once (client id, seq) pair so a retry inside the deadline never
 * applies twice.  The kernel caches nothing that could go stale: entry and
 * attr timeouts are 0, negative lookups are not cached, every file is
 * direct_io (no page cache) except a regular file opened read-write (see
 * open_common: it can then be mapped MAP_SHARED, and read() revalidates it),
 * the writeback cache is never enabled.
 * Timestamps are stamped by the proposing node into the command, and the
 * state machine makes them strictly increase, so every node reports the same
 * attributes and an inode's ctime is its version.
 *
 * Which writes are buffered, which go write-through:
 *
 *   WHOLE-FILE (one conditional PUT at close):  a writable, non-O_APPEND
 *     handle on a regular file that this open created (O_CREAT on a new
 *     name, or O_EXCL) or truncated (O_TRUNC, committed as one command before
 *     open() returns, as on a local filesystem) starts in whole-file mode; a
 *     file that merely happens to be empty at open does not.  While its
 *     writes arrive in order from offset 0 they are kept in the handle, up
 *     to a bound (fs_options.whole_file_max, never more than max_file_size).
 *     At flush (every close()), fsync or release the content is committed as
 *     ONE PUT_IF carrying the inode version the handle started from: the
 *     state machine refuses it on every replica if the file changed since
 *     (another node appended, say), and the handle then writes its bytes at
 *     their offsets instead, so no acknowledged change is overwritten.  A
 *     reader on another node sees the file empty (after the O_TRUNC) or the
 *     new content, never a partial PUT.  close() and fsync return only after
 *     the commit and report its failure; a commit with no answer keeps its
 *     bytes and (client id, seq) in the handle and is sent again by the next
 *     fsync, flush or close (the session makes that exactly-once).  A read or
 *     fstat through the node sees the handle's own pending content.
 *
 *   WRITE-THROUGH (one WRITE_AT per write(), committed before it returns):
 *     everything else — a handle on an existing file opened without O_TRUNC,
 *     a write that does not start where the previous one ended (a seek, a
 *     sparse write, a rewrite), and everything after a whole-file handle
 *     passed the bound.  When a whole-file handle leaves that mode its
 *     buffered prefix is first committed as one PUT, so a file larger than the
 *     bound appears in several steps (PUT of the first bound bytes, then
 *     WRITE_ATs).  A flush or fsync that committed a PUT also ends whole-file
 *     mode for that handle.
 *
 *   APPEND: every write on an O_APPEND descriptor is an APPEND command; the
 *     offset the kernel sends is ignored (it may be stale: another node may
 *     have appended since), the state machine appends at its own end.
 *
 * Open files live until their last close on any node (POSIX), whoever
 * unlinks or renames over them: the state machine keeps an inode that lost
 * its last name as an orphan until no node reports it open (kv.h "Open
 * files").  This mount lists the inodes it has open to the node
 * (fs_backend set_open_files), which reports them when orphans need deciding; an
 * open in progress holds back what a report covers, from the moment before
 * its STAT, so a file cannot be freed between its lookup and its
 * registration; a lookup of a file holds coverage back the same way for
 * FS_LOOKUP_HOLD_MS, so the open that follows it may still open the inode if a
 * rename on another node took its name in between (the open then counts as
 * made first).  open() of an inode that has no name and no recent lookup here
 * answers ESTALE, which makes the kernel look the name up again (so reopening
 * an unlinked file through /proc/PID/fd fails, unlike on ext4).  Opens cost no
 * replicated command.  At unmount the node leaves the holders (KV_HOLD_GONE).
 * An open waits (up to the op timeout) until the state machine knows this
 * node as a holder: right after the mount starts, or after the node was cut
 * off longer than the holder TTL, its first report must be in force before
 * an opened file can count on it.
 *
 * Set-id bits: the writer's credentials travel with every data change, and
 * the state machine clears S_ISUID/S_ISGID for an unprivileged (uid != 0)
 * writer, as Linux does; chown and truncate also get the kernel's own mode
 * change.
 *
 * Limits: a write or truncate past max_file_size fails with EFBIG (checked
 * here and again in the state machine); a full store answers ENOSPC; a name
 * longer than 255 bytes gets ENAMETOOLONG.  Without a quorum every
 * operation fails with EIO once the op timeout passes (a system call that
 * makes the kernel send two requests, e.g. a lookup and then a getattr, may
 * take two timeouts).  File locks (flock, fcntl) are not implemented: the
 * kernel keeps them, per node.
 *
 * Control view: MOUNT/.hstore/status is a read-only file generated on open
 * from the backend's status() (id, role, term, leader, commit and applied index, ...).
 * Lookup finds /.hstore, readdir of the root does not list it, and nothing
 * can be created, removed or renamed under it.  It stays readable without a
 * quorum: the root directory's attributes (which the kernel checks on every
 * path walk) fall back to the last ones read when the store cannot answer —
 * the single exception to "every read is linearizable", and only for the
 * root's mode/owner/times while the cluster is unavailable.
 */
#define FUSE_USE_VERSION 314

#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs_kv.h"
#include "net/net_util.h"

#define FS_NAME_MAX 255
#define FS_ROOT_INO 1                          /* FUSE_ROOT_ID and KV_ROOT_INO */
#define FS_CTL_NAME ".hstore"
#define FS_CTL_STATUS_NAME "status"
#define FS_CTL_INO_DIR 0xFFFFFFFFFFFFFF01ull   /* outside the state machine's range */
#define FS_CTL_INO_STATUS 0xFFFFFFFFFFFFFF02ull
#define FS_HANDLE_MAGIC 0x68736668u            /* "hsfh" */
#define FS_DIR_MAGIC 0x68736664u               /* "hsfd" */
/* Preferred I/O size reported in st_blksize: cat, cp and friends size their
 * buffers by it, and every read or write is one linearizable read or one
 * replicated command, so 1 MiB requests (the most libfuse 3.14 negotiates,
 * max_pages 256) cost an eighth of the round trips of 128 KiB ones. */
#define FS_IO_SIZE (1u << 20)

typedef enum { FS_H_FILE = 0, FS_H_STATUS = 1 } fs_handle_kind;

/* One open file description (fi->fh). */
typedef struct fs_handle {
    uint32_t magic;
    fs_handle_kind kind;
    struct fs_handle *prev, *next;   /* the mount's list, to free leftovers at stop */
    pthread_mutex_t mu;              /* serializes the handle's own requests */
    bool append;                     /* O_APPEND: every write is an APPEND */
    bool whole;                      /* whole-file mode (see the top of this file) */
    bool dirty;                      /* buf holds content not yet committed */
    bool fallback;                   /* PUT_IF refused: commit by WRITE_AT instead */
    bool doubt;                      /* the commit of buf[0, doubt_len) is in doubt */
    char *buf;                       /* whole-file content so far */
    size_t len, cap;
    size_t done;                     /* buf[0, done) is committed at its offsets */
    size_t doubt_len;
    uint64_t ver;                    /* the inode version the content starts from */
    int err;                         /* sticky: reported by every later fsync/flush */
    fs_kv_held held;                 /* session of a commit in doubt */
    atomic_bool pending;             /* whole && dirty, readable without mu */
    atomic_uint_least64_t pend_len;  /* len while pending */
    unsigned pins;                   /* under the mount's hmu: users from other threads */
    uint64_t ino;                    /* the open inode (0: unknown) */
    fs_attr attr;                    /* attributes seen at open */
    uint32_t cuid, cgid;             /* who opened it: the writer of the PUT at close */
    char *text;                      /* FS_H_STATUS: the generated text */
    size_t text_len;
} fs_handle;

/* An open directory (fi->fh of opendir): the listing read at offset 0, in
 * fuse_add_direntry form. */
typedef struct fs_dirh {
    uint32_t magic;
    char *buf;
    size_t len;
    bool filled;
} fs_dirh;

/* A recent lookup of a non-directory: until FS_LOOKUP_HOLD_MS after it, the
 * open that usually follows may still open the inode even if it lost its name
 * meanwhile, because reports do not cover past `since` while it is recent. */
#define FS_LOOKUP_HOLD_MS 2000
#define FS_LOOKUPS_MAX 4096
typedef struct fs_lookup {
    uint64_t ino, since, at_ms;
} fs_lookup;

/* An open in progress: the applied index before its lookup (fs_backend.h
 * set_open_files). */
typedef struct fs_opening {
    struct fs_opening *next;
    uint64_t since;
} fs_opening;

/* An inode open on this mount, and how many handles have it. */
typedef struct fs_iref {
    struct fs_iref *next;
    uint64_t ino;
    unsigned nopen;
} fs_iref;

struct fs_mount {
    fs_backend b;                    /* the store below (fs_backend.h) */
    fs_kv kv;
    bool kv_ready;
    fs_options opt;
    uint64_t max_file_size;
    uint64_t whole_max;
    char mountpoint[PATH_MAX];
    struct fuse_session *se;
    bool mounted;
    pthread_t loop_thread;
    bool loop_started;
    atomic_bool loop_done;
    unsigned dev_major, dev_minor;   /* the FUSE connection, for an abort at stop */
    bool have_dev;
    struct timespec start_time;
    pthread_mutex_t hmu;             /* handles, irefs, opening, pins */
    pthread_cond_t pincv;            /* a handle's pins dropped to 0 */
    atomic_uint npending;            /* handles with pending whole-file content */
    fs_handle handles;               /* list head (sentinel) */
    fs_iref *irefs;                  /* inodes open on this mount */
    fs_opening *opening;             /* opens in progress */
    fs_lookup *lookups;              /* recent lookups of non-directories */
    size_t nlookups;
    bool reporting;                  /* registered with the backend's set_open_files */
    pthread_mutex_t rootmu;
    fs_attr root_attr;               /* last root attributes read from the store */
    bool have_root;
};

/* ---- small helpers ----------------------------------------------------------- */

static fs_mount *req_mount(fuse_req_t req)
{
    return (fs_mount *)fuse_req_userdata(req);
}

/* The data-changing commands of this request carry its caller's identity. */
static void set_writer(fuse_req_t req)
{
    const struct fuse_ctx *c = fuse_req_ctx(req);
    fs_kv_set_writer(c ? c->uid : 0, c ? c->gid : 0);
}

static bool is_ctl_ino(fuse_ino_t ino)
{
    return ino == FS_CTL_INO_DIR || ino == FS_CTL_INO_STATUS;
}

static bool is_ctl_name(fuse_ino_t parent, const char *name)
{
    return parent == FS_ROOT_INO && strcmp(name, FS_CTL_NAME) == 0;
}

/* ENAMETOOLONG past NAME_MAX (the kernel lets names up to 1024 bytes through). */
static int check_name(const char *name)
{
    return strlen(name) > FS_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* Refuses new or removed names inside or as the control view.  ctl_err is the
 * error for the control directory's own name. */
static int check_mutable(fuse_ino_t parent, const char *name, int ctl_err)
{
    if (is_ctl_ino(parent))
        return -EPERM;
    if (is_ctl_name(parent, name))
        return ctl_err;
    return check_name(name);
}

static void attr_to_stat(const fs_attr *a, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = (ino_t)a->ino;
    st->st_mode = (mode_t)a->mode;
    st->st_nlink = (nlink_t)a->nlink;
    st->st_uid = (uid_t)a->uid;
    st->st_gid = (gid_t)a->gid;
    st->st_size = (off_t)a->size;
    st->st_rdev = (dev_t)a->rdev;
    st->st_blksize = FS_IO_SIZE;
    st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
    st->st_atim = a->atime;
    st->st_mtim = a->mtime;
    st->st_ctim = a->ctime;
}

static void reply_entry(fuse_req_t req, const fs_attr *a)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = (fuse_ino_t)a->ino;
    e.generation = 1;       /* inode numbers are never reused */
    attr_to_stat(a, &e.attr);
    e.attr_timeout = 0;
    e.entry_timeout = 0;
    fuse_reply_entry(req, &e);
}

static void reply_attr(fuse_req_t req, const fs_attr *a)
{
    struct stat st;
    attr_to_stat(a, &st);
    fuse_reply_attr(req, &st, 0);
}

static void reply_err(fuse_req_t req, int rc)
{
    fuse_reply_err(req, rc < 0 ? -rc : rc);
}

static fs_handle *fh_of(struct fuse_file_info *fi)
{
    if (fi == NULL || fi->fh == 0)
        return NULL;
    fs_handle *h = (fs_handle *)(uintptr_t)fi->fh;
    return h->magic == FS_HANDLE_MAGIC ? h : NULL;
}

static fs_handle *handle_new(fs_mount *m, fs_handle_kind kind)
{
    fs_handle *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->magic = FS_HANDLE_MAGIC;
    h->kind = kind;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_lock(&m->hmu);
    h->next = m->handles.next;
    h->prev = &m->handles;
    m->handles.next->prev = h;
    m->handles.next = h;
    pthread_mutex_unlock(&m->hmu);
    return h;
}

/* Records that h has inode ino open.  Called once, before h is shared. */
static int handle_set_ino(fs_mount *m, fs_handle *h, uint64_t ino)
{
    if (ino == 0)
        return 0;
    pthread_mutex_lock(&m->hmu);
    fs_iref *r = m->irefs;
    while (r != NULL && r->ino != ino)
        r = r->next;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL) {
            pthread_mutex_unlock(&m->hmu);
            return -ENOMEM;
        }
        r->ino = ino;
        r->next = m->irefs;
        m->irefs = r;
    }
    r->nopen++;
    h->ino = ino;
    pthread_mutex_unlock(&m->hmu);
    return 0;
}

/* The last close of an inode drops it from the list the node reports; if it
 * is an orphan, the node's next report lets the state machine free it. */
static void handle_free(fs_mount *m, fs_handle *h)
{
    pthread_mutex_lock(&m->hmu);
    h->prev->next = h->next;
    h->next->prev = h->prev;
    while (h->pins > 0)   /* another thread is committing its content */
        pthread_cond_wait(&m->pincv, &m->hmu);
    if (atomic_load(&h->pending))
        atomic_fetch_sub(&m->npending, 1);
    if (h->ino != 0) {
        fs_iref **pp = &m->irefs;
        while (*pp != NULL && (*pp)->ino != h->ino)
            pp = &(*pp)->next;
        if (*pp != NULL && --(*pp)->nopen == 0) {
            fs_iref *r = *pp;
            *pp = r->next;
            free(r);
        }
    }
    pthread_mutex_unlock(&m->hmu);
    if (m->kv_ready)
        fs_kv_held_drop(&m->kv, &h->held);
    pthread_mutex_destroy(&h->mu);
    h->magic = 0;
    free(h->buf);
    free(h->text);
    free(h);
}

static void opening_add(fs_mount *m, fs_opening *o)
{
    pthread_mutex_lock(&m->hmu);
    o->since = m->b.ops->applied_index(m->b.ctx);
    o->next = m->opening;
    m->opening = o;
    pthread_mutex_unlock(&m->hmu);
}

/* An open in progress (see the top of this file).  0, or -EIO when this
 * node's reports are not in force within the op timeout. */
static int opening_begin(fs_mount *m, fs_opening *o)
{
    if (!m->b.ops->open_files_known(m->b.ctx)) {
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            struct timespec pause = {0, 2 * 1000000L};
            nanosleep(&pause, NULL);
            if (m->b.ops->open_files_known(m->b.ctx))
                break;
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >=
                m->opt.op_timeout_ms)
                return -EIO;
        }
    }
    opening_add(m, o);
    return 0;
}

/* Removes o from the opens in progress.  Called with hmu held. */
static void opening_unlink(fs_mount *m, fs_opening *o)
{
    fs_opening **pp = &m->opening;
    while (*pp != NULL && *pp != o)
        pp = &(*pp)->next;
    if (*pp != NULL)
        *pp = o->next;
}

static void opening_end(fs_mount *m, fs_opening *o)
{
    pthread_mutex_lock(&m->hmu);
    fs_opening **pp = &m->opening;
    while (*pp != NULL && *pp != o)
        pp = &(*pp)->next;
    if (*pp != NULL)
        *pp = o->next;
    pthread_mutex_unlock(&m->hmu);
}

static uint64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Drops lookups older than FS_LOOKUP_HOLD_MS.  Called with hmu held. */
static void lookups_expire(fs_mount *m, uint64_t now)
{
    size_t j = 0;
    for (size_t i = 0; i < m->nlookups; i++)
        if (now - m->lookups[i].at_ms < FS_LOOKUP_HOLD_MS)
            m->lookups[j++] = m->lookups[i];
    m->nlookups = j;
}

/* The lookup o (in the opens in progress since before its STAT) ends; when it
 * found non-directory ino (0: nothing to note), it becomes a recent lookup in
 * the same step, so no report sees neither. */
static void lookup_note(fs_mount *m, fs_opening *o, uint64_t ino)
{
    uint64_t now = mono_ms(), since = o->since;
    pthread_mutex_lock(&m->hmu);
    opening_unlink(m, o);
    if (ino == 0) {
        pthread_mutex_unlock(&m->hmu);
        return;
    }
    lookups_expire(m, now);
    size_t i = 0;
    while (i < m->nlookups && m->lookups[i].ino != ino)
        i++;
    if (i == m->nlookups) {
        if (m->nlookups == FS_LOOKUPS_MAX) {
            pthread_mutex_unlock(&m->hmu);
            return;   /* an open of it may then get ESTALE and look again */
        }
        m->nlookups++;
        m->lookups[i].ino = ino;
        m->lookups[i].since = since;
    } else if (since > m->lookups[i].since) {
        m->lookups[i].since = since;   /* the newest lookup bounds every open */
    }
    m->lookups[i].at_ms = now;
    pthread_mutex_unlock(&m->hmu);
}

/* fs_backend_open_fn: the inodes open here, and the oldest open in progress or
 * recent lookup. */
static size_t open_files(void *arg, uint64_t *inos, size_t max, uint64_t *since)
{
    fs_mount *m = arg;
    size_t n = 0;
    pthread_mutex_lock(&m->hmu);
    lookups_expire(m, mono_ms());
    for (size_t i = 0; i < m->nlookups; i++)
        if (m->lookups[i].since < *since)
            *since = m->lookups[i].since;
    for (const fs_iref *r = m->irefs; r != NULL; r = r->next) {
        if (n < max)
            inos[n] = r->ino;
        n++;
    }
    for (const fs_opening *o = m->opening; o != NULL; o = o->next)
        if (o->since < *since)
            *since = o->since;
    pthread_mutex_unlock(&m->hmu);
    return n;
}

/* Whether reads through h must come from its buffer (its own pending content). */
static bool handle_pending(const fs_handle *h)
{
    return h->whole && h->dirty;
}

/* Keeps h->pending (and the mount's count) in step with handle_pending(h).
 * Called with h->mu held. */
static void handle_sync_flag(fs_mount *m, fs_handle *h)
{
    bool p = handle_pending(h);
    atomic_store(&h->pend_len, (uint_least64_t)h->len);
    if (atomic_exchange(&h->pending, p) != p) {
        if (p)
            atomic_fetch_add(&m->npending, 1);
        else
            atomic_fetch_sub(&m->npending, 1);
    }
}

/* Leaves whole-file mode, forgetting the buffer.  Called with h->mu held. */
static void handle_drop_buffer(fs_mount *m, fs_handle *h)
{
    h->whole = false;
    h->dirty = false;
    h->fallback = false;
    h->doubt = false;
    free(h->buf);
    h->buf = NULL;
    h->len = h->cap = h->done = h->doubt_len = 0;
    fs_kv_held_drop(&m->kv, &h->held);
    handle_sync_flag(m, h);
}

/* Commits the buffered whole-file content, then leaves whole-file mode.
 * Called with h->mu held.
 *
 * The file was empty at version h->ver (this handle created or truncated
 * it), so the fast path is one PUT_IF carrying that version: the state
 * machine replaces the content only if nothing changed the inode since.  If
 * something did (a write from another node, another descriptor), the PUT_IF
 * is refused on every replica alike and the content goes in as WRITE_AT at
 * its offsets, exactly what the write() calls would have done one by one.
 *
 * A command whose outcome is unknown (no quorum before the deadline) leaves
 * the handle as it was: the content stays buffered, the command keeps its
 * (client id, seq), and the next fsync/flush/close resends the same bytes
 * (the session makes that exactly-once); until then every fsync and close
 * reports EIO.  A definite failure (ENOSPC, EFBIG) is sticky: this and
 * every later fsync/flush report it.  Never 0 with data missing. */
static int handle_commit(fs_mount *m, fs_handle *h)
{
    if (h->err)
        return h->err;
    fs_kv_set_writer(h->cuid, h->cgid);   /* whoever's request runs the commit */
    while (h->whole && h->dirty) {
        /* While in doubt, only the bytes sent then may be sent again. */
        size_t n = h->doubt ? h->doubt_len : h->len;
        fs_attr a;
        int rc;
        if (!h->fallback) {
            rc = fs_kv_put_if(&m->kv, &h->held, h->ino, h->ver, h->buf ? h->buf : "", n, &a);
            if (rc == -ECANCELED) {
                h->doubt = false;
                h->fallback = true;
                continue;
            }
        } else {
            ssize_t w = n > h->done ? fs_kv_write_at_held(&m->kv, &h->held, h->ino, h->done,
                                                          h->buf + h->done, n - h->done)
                                    : 0;
            rc = w < 0 ? (int)w : 0;
        }
        if (rc == -EIO && h->held.seq != 0) {
            h->doubt = true;
            h->doubt_len = n;
            return rc;
        }
        h->doubt = false;
        if (rc == -ENOENT) {
            /* The inode is gone (removed on another node): nobody can ever
             * read this content. */
            break;
        }
        if (rc < 0) {
            h->err = rc;
            handle_drop_buffer(m, h);
            return rc;
        }
        h->done = n;
        if (!h->fallback)
            h->ver = a.version;   /* a next PUT_IF starts from our own */
        if (n == h->len)
            break;
    }
    if (h->whole)
        handle_drop_buffer(m, h);
    return 0;
}

static void handle_unpin(fs_mount *m, fs_handle *h)
{
    pthread_mutex_lock(&m->hmu);
    if (--h->pins == 0)
        pthread_cond_broadcast(&m->pincv);
    pthread_mutex_unlock(&m->hmu);
}

/* Commits the pending whole-file content of every handle on this mount that
 * has inode ino open, except `except` (which the caller may hold locked).
 * Called before anything on this node reads or changes that inode by other
 * means, so the buffered writes take effect in the order they were made, as
 * on a local filesystem.  Free when nothing is pending.  The caller must
 * not hold any handle's mu but except's.  Returns how many handles had
 * content committed, or the first error. */
#define FS_SYNC_BATCH 16
static int sync_others(fs_mount *m, uint64_t ino, const fs_handle *except)
{
    if (ino == 0 || atomic_load(&m->npending) == 0)
        return 0;
    int rc = 0, count = 0;
    for (;;) {
        fs_handle *list[FS_SYNC_BATCH];
        size_t n = 0;
        bool more = false;
        pthread_mutex_lock(&m->hmu);
        for (fs_handle *h = m->handles.next; h != &m->handles; h = h->next) {
            if (h == except || h->kind != FS_H_FILE || h->ino != ino || !atomic_load(&h->pending))
                continue;
            if (n == FS_SYNC_BATCH) {
                more = true;
                break;
            }
            h->pins++;
            list[n++] = h;
        }
        pthread_mutex_unlock(&m->hmu);
        for (size_t i = 0; i < n; i++) {
            pthread_mutex_lock(&list[i]->mu);
            int r = handle_commit(m, list[i]);
            pthread_mutex_unlock(&list[i]->mu);
            if (r < 0 && rc == 0)
                rc = r;
            count++;
            handle_unpin(m, list[i]);
        }
        if (!more || rc < 0)
            return rc < 0 ? rc : count;
    }
}

/* The size to report for inode ino: a handle on this node with pending
 * whole-file content shows that content's size (fstat and stat of a file
 * being written tell what the writer wrote, as locally). */
static void pending_size(fs_mount *m, uint64_t ino, fs_attr *a)
{
    if (ino == 0 || atomic_load(&m->npending) == 0)
        return;
    pthread_mutex_lock(&m->hmu);
    for (fs_handle *h = m->handles.next; h != &m->handles; h = h->next)
        if (h->kind == FS_H_FILE && h->ino == ino && atomic_load(&h->pending))
            a->size = (uint64_t)atomic_load(&h->pend_len);
    pthread_mutex_unlock(&m->hmu);
}

/* Makes room for n bytes in the whole-file buffer.  0 or -ENOMEM. */
static int handle_reserve(fs_handle *h, size_t n)
{
    if (n <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 4096;
    while (cap < n)
        cap *= 2;
    char *b = realloc(h->buf, cap);
    if (b == NULL)
        return -ENOMEM;
    h->buf = b;
    h->cap = cap;
    return 0;
}

/* ---- the control view ---------------------------------------------------------- */

static char *status_text(fs_mount *m, size_t *len)
{
    raft_status st;
    memset(&st, 0, sizeof st);
    m->b.ops->status(m->b.ctx, &st);
    char *t = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&t, &n);
    if (f == NULL)
        return NULL;
    fprintf(f, "id %llu\n", (unsigned long long)st.id);
    fprintf(f, "role %s\n", raft_role_name(st.role));
    fprintf(f, "term %llu\n", (unsigned long long)st.term);
    fprintf(f, "leader %llu\n", (unsigned long long)st.leader);
    fprintf(f, "commit %llu\n", (unsigned long long)st.commit);
    fprintf(f, "applied %llu\n", (unsigned long long)st.applied);
    fprintf(f, "first_index %llu\n", (unsigned long long)st.first_index);
    fprintf(f, "last_index %llu\n", (unsigned long long)st.last_index);
    fprintf(f, "snapshot_index %llu\n", (unsigned long long)st.snapshot_index);
    fprintf(f, "members");
    for (uint32_t i = 0; i < st.conf.n && i < RAFT_MAX_NODES; i++)
        fprintf(f, " %llu", (unsigned long long)st.conf.ids[i]);
    fprintf(f, "\nmount %s\nclient_id %016llx\n", m->mountpoint,
            (unsigned long long)m->opt.client_id);
    if (fclose(f) != 0) {
        free(t);
        return NULL;
    }
    *len = n;
    return t;
}

static int ctl_getattr(fs_mount *m, fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_uid = m->opt.uid;
    st->st_gid = m->opt.gid;
    st->st_atim = st->st_mtim = st->st_ctim = m->start_time;
    st->st_blksize = 4096;
    if (ino == FS_CTL_INO_DIR) {
        st->st_ino = (ino_t)FS_CTL_INO_DIR;
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
        return 0;
    }
    if (ino == FS_CTL_INO_STATUS) {
        size_t len = 0;
        char *t = status_text(m, &len);
        free(t);
        st->st_ino = (ino_t)FS_CTL_INO_STATUS;
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = (off_t)len;
        clock_gettime(CLOCK_REALTIME, &st->st_mtim);
        st->st_ctim = st->st_mtim;
        return 0;
    }
    return -ENOENT;
}

static void ctl_reply_entry(fuse_req_t req, fs_mount *m, fuse_ino_t ino)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = ino;
    e.generation = 1;
    ctl_getattr(m, ino, &e.attr);
    fuse_reply_entry(req, &e);
}

/* ---- FUSE operations ----------------------------------------------------------- */

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
    /* Never: stale sizes and corrupt appends across nodes (fuse-notes §3). */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    /* O_TRUNC comes to open()/create(), so the truncation is one command
     * by inode (or part of the CREATE) whose reply gives the version the
     * whole-file PUT_IF starts from. */
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
}

/* The root's attributes.  With default_permissions the kernel re-reads them
 * (attr timeout 0) on every path walk, so without a quorum nothing under the
 * mount could be reached, not even the control view that tells why, and
 * every operation would pay the op timeout twice.  So the root alone is read
 * with a short deadline and falls back to the last attributes read from the
 * store when the store cannot answer in time. */
#define FS_ROOT_STAT_MS 300
static int root_getattr(fs_mount *m, fs_attr *a)
{
    int ms = m->opt.op_timeout_ms < FS_ROOT_STAT_MS ? m->opt.op_timeout_ms : FS_ROOT_STAT_MS;
    int rc = fs_kv_stat_within(&m->kv, "/", ms, a);
    pthread_mutex_lock(&m->rootmu);
    if (rc == 0) {
        m->root_attr = *a;
        m->have_root = true;
    } else if (rc == -EIO) {
        if (!m->have_root) {
            /* Never answered yet: a plain root directory. */
            memset(&m->root_attr, 0, sizeof m->root_attr);
            m->root_attr.ino = FS_ROOT_INO;
            m->root_attr.mode = S_IFDIR | 0755;
            m->root_attr.nlink = 2;
            m->root_attr.atime = m->root_attr.mtime = m->root_attr.ctime = m->start_time;
        }
        *a = m->root_attr;
        rc = 0;
    }
    pthread_mutex_unlock(&m->rootmu);
    return rc;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_mount *m = req_mount(req);
    if (is_ctl_name(parent, name)) {
        ctl_reply_entry(req, m, FS_CTL_INO_DIR);
        return;
    }
    if (parent == FS_CTL_INO_DIR) {
        if (strcmp(name, FS_CTL_STATUS_NAME) == 0)
            ctl_reply_entry(req, m, FS_CTL_INO_STATUS);
        else
            fuse_reply_err(req, ENOENT);
        return;
    }
    if (parent == FS_CTL_INO_STATUS) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    int rc = check_name(name);
    fs_attr a;
    fs_opening o;
    opening_add(m, &o);
    if (rc == 0)
        rc = fs_kv_lookup(&m->kv, parent, name, &a);
    lookup_note(m, &o, rc == 0 && !S_ISDIR(a.mode) ? a.ino : 0);
    if (rc < 0)
        reply_err(req, rc);
    else
        reply_entry(req, &a);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    /* Nothing is kept per kernel inode: the numbers are the store's. */
    fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    fuse_reply_none(req);
}

/* The attributes of ino (stat and fstat on this node see the size of
 * content a handle here has pending).  An inode that is gone answers ESTALE,
 * not ENOENT: the kernel may ask for it between a lookup and an open
 * (permission checks), and ESTALE makes it look the name up again instead
 * of failing. */
static int getattr_ino(fs_mount *m, fuse_ino_t ino, fs_handle *h, fs_attr *a)
{
    int rc;
    if (ino == FS_ROOT_INO)
        return root_getattr(m, a);
    rc = fs_kv_stat(&m->kv, NULL, ino, a);
    if (rc == -ENOENT)
        rc = -ESTALE;
    if (rc == 0)
        pending_size(m, ino, a);
    return rc;
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    struct stat st;
    if (h != NULL && h->kind == FS_H_STATUS) {
        memset(&st, 0, sizeof st);
        st.st_ino = (ino_t)FS_CTL_INO_STATUS;
        st.st_mode = S_IFREG | 0444;
        st.st_nlink = 1;
        st.st_size = (off_t)h->text_len;
        st.st_uid = m->opt.uid;
        st.st_gid = m->opt.gid;
        st.st_mtim = st.st_ctim = st.st_atim = m->start_time;
        fuse_reply_attr(req, &st, 0);
        return;
    }
    if (is_ctl_ino(ino)) {
        ctl_getattr(m, ino, &st);
        fuse_reply_attr(req, &st, 0);
        return;
    }
    fs_attr a;
    int rc = getattr_ino(m, ino, h, &a);
    if (rc < 0)
        reply_err(req, rc);
    else
        reply_attr(req, &a);
}

/* truncate / ftruncate: buffered content (this handle's and, by then, other
 * descriptors') comes first, then the truncation is committed (fstat shows
 * it, the file can be mapped at its new size); the handle leaves whole-file
 * mode. */
static int setattr_size(fs_mount *m, fuse_ino_t ino, fs_handle *h, off_t size)
{
    if (size < 0)
        return -EINVAL;
    if ((uint64_t)size > m->max_file_size)
        return -EFBIG;
    int rc = 0;
    if (h != NULL && h->kind == FS_H_FILE) {
        pthread_mutex_lock(&h->mu);
        rc = handle_commit(m, h);
        if (rc == 0)
            rc = fs_kv_truncate(&m->kv, NULL, h->ino, (uint64_t)size);
        pthread_mutex_unlock(&h->mu);
        return rc;
    }
    return fs_kv_truncate(&m->kv, NULL, ino, (uint64_t)size);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    if (is_ctl_ino(ino)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    set_writer(req);
    /* Content buffered on this node for the file was written before this
     * call: commit it first, so its commit cannot undo the new attributes
     * (the mtime set by tar x, cp -p, cp -a) or come after a truncation. */
    int rc = sync_others(m, ino, NULL);
    if (rc > 0)
        rc = 0;
    if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE))
        rc = setattr_size(m, ino, h, attr->st_size);
    unsigned mask = 0;
    if (to_set & FUSE_SET_ATTR_MODE)
        mask |= FS_SET_MODE;
    if (to_set & FUSE_SET_ATTR_UID)
        mask |= FS_SET_UID;
    if (to_set & FUSE_SET_ATTR_GID)
        mask |= FS_SET_GID;
    if (to_set & FUSE_SET_ATTR_ATIME_NOW)
        mask |= FS_SET_ATIME_NOW;
    else if (to_set & FUSE_SET_ATTR_ATIME)
        mask |= FS_SET_ATIME;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW)
        mask |= FS_SET_MTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_MTIME)
        mask |= FS_SET_MTIME;
    if (rc == 0 && mask != 0)
        rc = fs_kv_setattr(&m->kv, NULL, ino, mask, (uint32_t)(attr->st_mode & 07777),
                           (uint32_t)attr->st_uid, (uint32_t)attr->st_gid, &attr->st_atim,
                           &attr->st_mtim);
    if (rc == -ENOENT && h == NULL)
        rc = -ESTALE;   /* gone since the lookup: look again (getattr_ino) */
    fs_attr a;
    if (rc == 0)
        rc = getattr_ino(m, ino, h, &a);
    if (rc < 0)
        reply_err(req, rc);
    else
        reply_attr(req, &a);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
    fs_mount *m = req_mount(req);
    if (is_ctl_ino(ino)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    char *buf = malloc(PATH_MAX + 1);
    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    int rc = fs_kv_readlink(&m->kv, ino, buf, PATH_MAX + 1);
    if (rc == -ENOENT)
        rc = -ESTALE;   /* gone since the lookup: look again (getattr_ino) */
    if (rc < 0)
        reply_err(req, rc);
    else
        fuse_reply_readlink(req, buf);
    free(buf);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                     dev_t rdev)
{
    fs_mount *m = req_mount(req);
    int rc = check_mutable(parent, name, -EEXIST);
    fs_attr a;
    if (rc == 0) {
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        rc = fs_kv_mknod(&m->kv, parent, name, (uint32_t)mode, (uint64_t)rdev, ctx->uid,
                         ctx->gid, &a);
    }
    if (rc < 0)
        reply_err(req, rc);
    else
        reply_entry(req, &a);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    fs_mount *m = req_mount(req);
    int rc = check_mutable(parent, name, -EEXIST);
    fs_attr a;
    if (rc == 0) {
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        rc = fs_kv_mkdir(&m->kv, parent, name, (uint32_t)(mode & 07777), ctx->uid, ctx->gid,
                         &a);
    }
    if (rc < 0)
        reply_err(req, rc);
    else
        reply_entry(req, &a);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_mount *m = req_mount(req);
    int rc = check_mutable(parent, name, -EISDIR);
    if (rc == 0)
        rc = fs_kv_unlink(&m->kv, parent, name);
    reply_err(req, rc);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_mount *m = req_mount(req);
    int rc = check_mutable(parent, name, -EBUSY);
    if (rc == 0)
        rc = fs_kv_rmdir(&m->kv, parent, name);
    reply_err(req, rc);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    fs_mount *m = req_mount(req);
    int rc = check_mutable(parent, name, -EEXIST);
    if (rc == 0 && strlen(link) >= PATH_MAX)
        rc = -ENAMETOOLONG;
    fs_attr a;
    if (rc == 0) {
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        rc = fs_kv_symlink(&m->kv, link, parent, name, ctx->uid, ctx->gid, &a);
    }
    if (rc < 0)
        reply_err(req, rc);
    else
        reply_entry(req, &a);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
    fs_mount *m = req_mount(req);
    int rc = 0;
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
        rc = -EINVAL;   /* RENAME_WHITEOUT: not for a replicated namespace */
    else if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
        rc = -EINVAL;
    else if (is_ctl_ino(parent) || is_ctl_ino(newparent) || is_ctl_name(parent, name) ||
             is_ctl_name(newparent, newname))
        rc = -EPERM;
    if (rc == 0)
        rc = check_name(name);
    if (rc == 0)
        rc = check_name(newname);
    if (rc == 0)
        rc = fs_kv_rename(&m->kv, parent, name, newparent, newname, flags);
    reply_err(req, rc);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    fs_mount *m = req_mount(req);
    int rc = is_ctl_ino(ino) ? -EPERM : check_mutable(newparent, newname, -EEXIST);
    fs_attr a;
    if (rc == 0)
        rc = fs_kv_link(&m->kv, ino, newparent, newname, &a);
    if (rc < 0)
        reply_err(req, rc);
    else
        reply_entry(req, &a);
}

/* Sets up the handle of a file just opened or created; a holds its
 * attributes (from STAT, TRUNCATE or CREATE).  fresh: this open created the
 * file or truncated it (its content is empty at version a->version), the
 * only case where whole-file mode gives a result the same system calls
 * could give on a local filesystem. */
static int open_common(fuse_req_t req, fs_mount *m, struct fuse_file_info *fi, const fs_attr *a,
                       bool fresh)
{
    int flags = fi->flags;
    bool writable = (flags & O_ACCMODE) != O_RDONLY;
    bool append = (flags & O_APPEND) != 0;

    if (S_ISDIR(a->mode))
        return -EISDIR;
    bool whole = S_ISREG(a->mode) && writable && !append && fresh;
    fs_handle *h = handle_new(m, FS_H_FILE);
    if (h == NULL)
        return -ENOMEM;
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    h->cuid = ctx ? ctx->uid : 0;
    h->cgid = ctx ? ctx->gid : 0;
    h->append = append;
    h->whole = whole;
    h->ver = a->version;
    h->attr = *a;
    int rc = handle_set_ino(m, h, a->ino);
    if (rc < 0) {
        handle_free(m, h);
        return rc;
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    /* direct_io (no page cache) for everything, except a regular file
     * opened read-write: that one goes through this node's page cache so
     * it can be mapped MAP_SHARED (the kernel refuses shared mappings of
     * direct_io files, and libfuse 3.14 cannot ask for
     * FUSE_DIRECT_IO_ALLOW_MMAP); that is what SQLite's WAL index (-shm)
     * and Python's default mmap need.  Such a file stays fresh for read():
     * with attr timeouts 0 and FUSE_CAP_AUTO_INVAL_DATA the kernel fetches
     * the attributes (a linearizable STAT) before every read and drops
     * its cached pages when the size or mtime changed; writes still go
     * through at once (no writeback cache).  Pages already mapped are
     * refreshed only at such a revalidation. */
    fi->direct_io = !(S_ISREG(a->mode) && (flags & O_ACCMODE) == O_RDWR);
    fi->keep_cache = 0;
    return 0;
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    if (is_ctl_ino(ino)) {
        if (ino == FS_CTL_INO_DIR) {
            fuse_reply_err(req, EISDIR);
            return;
        }
        if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
            fuse_reply_err(req, EACCES);
            return;
        }
        fs_handle *h = handle_new(m, FS_H_STATUS);
        if (h == NULL) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
        h->text = status_text(m, &h->text_len);
        if (h->text == NULL) {
            handle_free(m, h);
            fuse_reply_err(req, ENOMEM);
            return;
        }
        fi->fh = (uint64_t)(uintptr_t)h;
        fi->direct_io = 1;
        fuse_reply_open(req, fi);
        return;
    }
    fs_opening o;
    int rc = opening_begin(m, &o);
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    fs_attr a;
    rc = fs_kv_stat(&m->kv, NULL, ino, &a);
    if (rc == 0 && a.nlink == 0) {
        /* It lost its name after the lookup that led here: it is still
         * opened (as if the open had come first) when that lookup is recent,
         * since reports have not covered the unlink then; this open holds
         * coverage back to it from now on. */
        bool ok = false;
        pthread_mutex_lock(&m->hmu);
        lookups_expire(m, mono_ms());
        for (size_t i = 0; i < m->nlookups && !ok; i++)
            if (m->lookups[i].ino == ino) {
                ok = true;
                if (m->lookups[i].since < o.since)
                    o.since = m->lookups[i].since;
            }
        pthread_mutex_unlock(&m->hmu);
        if (!ok)
            rc = -ESTALE;
    }
    /* A freed inode, or an orphan without a recent lookup: ESTALE makes the
     * kernel look the name up again. */
    if (rc == -ENOENT)
        rc = -ESTALE;
    bool fresh = false;
    if (rc == 0 && (fi->flags & O_TRUNC) && S_ISREG(a.mode)) {
        /* O_TRUNC is committed here, before open() returns, as on a local
         * filesystem: a write another node makes after this open lands in
         * the truncated file and is kept.  Content still buffered on this
         * node for the file goes first. */
        rc = sync_others(m, a.ino, NULL);
        /* (empty already: its STAT version is the one to start from) */
        if (rc > 0 || (rc == 0 && a.size != 0)) {
            set_writer(req);
            rc = fs_kv_truncate_attr(&m->kv, NULL, a.ino, 0, &a);
        }
        fresh = rc >= 0;
    }
    if (rc >= 0)
        rc = open_common(req, m, fi, &a, fresh);
    opening_end(m, &o);
    if (rc < 0)
        reply_err(req, rc);
    else if (fuse_reply_open(req, fi) == -ENOENT)
        handle_free(m, fh_of(fi));   /* the caller was interrupted */
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    int rc = check_mutable(parent, name, -EEXIST);
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    fs_opening o;
    if ((rc = opening_begin(m, &o)) < 0) {
        reply_err(req, rc);
        return;
    }
    fs_attr a;
    /* One command creates the file, or truncates it with O_TRUNC; with
     * O_EXCL or O_TRUNC it is empty at the version the reply carries. */
    bool excl = (fi->flags & O_EXCL) != 0, trunc = (fi->flags & O_TRUNC) != 0;
    set_writer(req);
    rc = fs_kv_create(&m->kv, parent, name, (uint32_t)(mode & 07777), ctx->uid, ctx->gid, excl,
                      trunc, &a);
    if (rc == 0)
        rc = open_common(req, m, fi, &a, excl || trunc);
    opening_end(m, &o);
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = (fuse_ino_t)a.ino;
    e.generation = 1;
    attr_to_stat(&a, &e.attr);
    if (fuse_reply_create(req, &e, fi) == -ENOENT)
        handle_free(m, fh_of(fi));
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (h == NULL) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (h->kind == FS_H_STATUS) {
        if ((size_t)off >= h->text_len) {
            fuse_reply_buf(req, NULL, 0);
            return;
        }
        size_t n = h->text_len - (size_t)off;
        if (n > size)
            n = size;
        fuse_reply_buf(req, h->text + off, n);
        return;
    }
    /* What this node's other descriptors wrote is read back, as locally. */
    int rc = sync_others(m, h->ino, h);
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    pthread_mutex_lock(&h->mu);
    if (handle_pending(h)) {
        size_t n = 0;
        if ((size_t)off < h->len) {
            n = h->len - (size_t)off;
            if (n > size)
                n = size;
        }
        fuse_reply_buf(req, n ? h->buf + off : NULL, n);
        pthread_mutex_unlock(&h->mu);
        return;
    }
    pthread_mutex_unlock(&h->mu);
    char *buf = malloc(size ? size : 1);
    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    ssize_t n = fs_kv_read(&m->kv, NULL, h->ino, (uint64_t)off, size, buf);
    if (n < 0)
        reply_err(req, (int)n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

static int do_write(fs_mount *m, fs_handle *h, const char *data, size_t size, off_t off)
{
    /* Content this node's other descriptors buffered was written first. */
    int rc = sync_others(m, h->ino, h);
    if (rc < 0)
        return rc;
    if (h->append) {
        /* The kernel's offset is its idea of the size, possibly stale: the
         * state machine appends at its own end. */
        ssize_t n = fs_kv_append(&m->kv, NULL, h->ino, data, size);
        if (n == -EIO) {
            pthread_mutex_lock(&h->mu);
            h->err = -EIO;   /* outcome unknown: close must not say 0 */
            pthread_mutex_unlock(&h->mu);
        }
        return (int)n;
    }
    if ((uint64_t)off > m->max_file_size || size > m->max_file_size - (uint64_t)off)
        return -EFBIG;
    pthread_mutex_lock(&h->mu);
    if (h->whole) {
        if (h->err == 0 && (size_t)off == h->len && h->len + size <= m->whole_max) {
            rc = handle_reserve(h, h->len + size);
            if (rc == 0) {
                memcpy(h->buf + h->len, data, size);
                h->len += size;
                h->dirty = true;
                handle_sync_flag(m, h);
                rc = (int)size;
            }
            pthread_mutex_unlock(&h->mu);
            return rc;
        }
        /* Out of order or past the bound: commit what we have, then go
         * write-through. */
        rc = handle_commit(m, h);
        if (rc < 0) {
            pthread_mutex_unlock(&h->mu);
            return rc;
        }
    }
    /* Still under the handle's lock: two writes of one descriptor apply in
     * the order they came. */
    ssize_t n = fs_kv_write_at(&m->kv, NULL, h->ino, (uint64_t)off, data, size);
    if (n == -EIO)
        h->err = -EIO;   /* outcome unknown: close must not say 0 */
    pthread_mutex_unlock(&h->mu);
    return (int)n;
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    if (h == NULL || h->kind != FS_H_FILE) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    set_writer(req);
    int rc = do_write(m, h, data, size, off);
    if (rc < 0)
        reply_err(req, rc);
    else
        fuse_reply_write(req, (size_t)rc);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    int rc = 0;
    if (h != NULL && h->kind == FS_H_FILE) {
        /* Commits pending content (a FLUSH with nothing written, like the
         * first one of `echo x > f`, commits nothing and keeps whole-file
         * mode); reports any failure not yet resolved. */
        pthread_mutex_lock(&h->mu);
        rc = handle_pending(h) ? handle_commit(m, h) : h->err;
        pthread_mutex_unlock(&h->mu);
    }
    reply_err(req, rc);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    int rc = 0;
    if (h != NULL && h->kind == FS_H_FILE) {
        /* Write-through data is already durable on a majority; only pending
         * whole-file content needs committing (or a failure reporting). */
        pthread_mutex_lock(&h->mu);
        rc = handle_pending(h) ? handle_commit(m, h) : h->err;
        pthread_mutex_unlock(&h->mu);
    }
    reply_err(req, rc);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_handle *h = fh_of(fi);
    if (h != NULL) {
        if (h->kind == FS_H_FILE) {
            /* Normally nothing is left (close() flushed); content whose
             * commit is still in doubt gets one last try. */
            pthread_mutex_lock(&h->mu);
            int rc = handle_pending(h) ? handle_commit(m, h) : 0;
            pthread_mutex_unlock(&h->mu);
            if (rc < 0)
                fprintf(stderr, "hstore fs: commit at release of inode %llu failed: %s\n",
                        (unsigned long long)h->ino, strerror(-rc));
        }
        fi->fh = 0;
        handle_free(m, h);
    }
    fuse_reply_err(req, 0);
}

/* ---- directories ---------------------------------------------------------------- */

static fs_dirh *dirh_of(struct fuse_file_info *fi)
{
    if (fi == NULL || fi->fh == 0)
        return NULL;
    fs_dirh *d = (fs_dirh *)(uintptr_t)fi->fh;
    return d->magic == FS_DIR_MAGIC ? d : NULL;
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ino == FS_CTL_INO_STATUS) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    fs_dirh *d = calloc(1, sizeof *d);
    if (d == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    d->magic = FS_DIR_MAGIC;
    fi->fh = (uint64_t)(uintptr_t)d;
    if (fuse_reply_open(req, fi) == -ENOENT) {
        d->magic = 0;
        free(d);
    }
}

typedef struct dir_fill {
    fuse_req_t req;
    fs_dirh *d;
    size_t cap;
    bool root;
    bool oom;
} dir_fill;

/* Appends one entry; its offset is where the next one starts. */
static int dir_add(dir_fill *f, const char *name, uint64_t ino, uint32_t mode)
{
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = (ino_t)ino;
    st.st_mode = (mode_t)mode;
    size_t need = fuse_add_direntry(f->req, NULL, 0, name, NULL, 0);
    if (f->d->len + need > f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4096;
        while (cap < f->d->len + need)
            cap *= 2;
        char *b = realloc(f->d->buf, cap);
        if (b == NULL) {
            f->oom = true;
            return 1;
        }
        f->d->buf = b;
        f->cap = cap;
    }
    fuse_add_direntry(f->req, f->d->buf + f->d->len, need, name, &st,
                      (off_t)(f->d->len + need));
    f->d->len += need;
    return 0;
}

static int readdir_cb(void *arg, const char *name, const fs_attr *a)
{
    dir_fill *f = arg;
    if (f->root && strcmp(name, FS_CTL_NAME) == 0)
        return 0;   /* shadowed by the control view, never listed */
    return dir_add(f, name, a->ino, a->mode);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    fs_mount *m = req_mount(req);
    fs_dirh *d = dirh_of(fi);
    if (d == NULL) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (off == 0 || !d->filled) {
        /* The listing and the dots: one linearizable read, all entries at
         * once; later offsets are served from it. */
        free(d->buf);
        d->buf = NULL;
        d->len = 0;
        d->filled = false;
        dir_fill f = { .req = req, .d = d, .root = ino == FS_ROOT_INO };
        dir_add(&f, ".", ino, S_IFDIR);
        dir_add(&f, "..", ino == FS_CTL_INO_DIR ? FS_ROOT_INO : ino, S_IFDIR);
        int rc = 0;
        if (ino == FS_CTL_INO_DIR)
            dir_add(&f, FS_CTL_STATUS_NAME, FS_CTL_INO_STATUS, S_IFREG);
        else
            rc = fs_kv_readdir(&m->kv, ino, readdir_cb, &f);
        if (rc == 0 && f.oom)
            rc = -ENOMEM;
        if (rc < 0) {
            reply_err(req, rc);
            return;
        }
        d->filled = true;
    }
    if (off < 0 || (size_t)off >= d->len) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    size_t n = d->len - (size_t)off;
    fuse_reply_buf(req, d->buf + off, n < size ? n : size);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_dirh *d = dirh_of(fi);
    if (d != NULL) {
        d->magic = 0;
        free(d->buf);
        free(d);
    }
    fuse_reply_err(req, 0);
}

/* Directory changes are committed before their call returns: nothing to do. */
static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    fuse_reply_err(req, 0);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
    fs_mount *m = req_mount(req);
    struct statvfs st;
    int rc = fs_kv_statfs(&m->kv, &st);
    if (rc < 0)
        reply_err(req, rc);
    else
        fuse_reply_statfs(req, &st);
}

static const struct fuse_lowlevel_ops ll_ops = {
    .init = ll_init,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = ll_getattr,
    .setattr = ll_setattr,
    .readlink = ll_readlink,
    .mknod = ll_mknod,
    .mkdir = ll_mkdir,
    .unlink = ll_unlink,
    .rmdir = ll_rmdir,
    .symlink = ll_symlink,
    .rename = ll_rename,
    .link = ll_link,
    .open = ll_open,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_flush,
    .release = ll_release,
    .fsync = ll_fsync,
    .opendir = ll_opendir,
    .readdir = ll_readdir,
    .releasedir = ll_releasedir,
    .fsyncdir = ll_fsyncdir,
    .statfs = ll_statfs,
    .create = ll_create,
};

/* ---- mount life cycle ---------------------------------------------------------- */

void fs_options_init(fs_options *o)
{
    memset(o, 0, sizeof *o);
    o->uid = getuid();
    o->gid = getgid();
    o->allow_other = geteuid() == 0;
}

/* Detaches whatever is mounted at path (lazily: a busy mount never blocks
 * it).  Root uses umount2 directly, others go through fusermount3. */
static int detach_mount(const char *path)
{
    if (umount2(path, MNT_DETACH) == 0)
        return 0;
    if (errno == EINVAL || errno == ENOENT)
        return -1;   /* not a mount point */
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("fusermount3", "fusermount3", "-u", "-q", "-z", "--", path, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Finds the device numbers of our mount in /proc/self/mountinfo (a stat of
 * the mount point would ask our own, not yet running, request loop). */
static void find_mount_dev(fs_mount *m)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (f == NULL)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        unsigned id, parent, maj, min;
        char root[PATH_MAX], mp[PATH_MAX];
        if (sscanf(line, "%u %u %u:%u %4095s %4095s", &id, &parent, &maj, &min, root, mp) != 6)
            continue;
        if (strcmp(mp, m->mountpoint) != 0 || strstr(line, " - fuse") == NULL)
            continue;
        m->dev_major = maj;   /* the last match is the newest mount */
        m->dev_minor = min;
        m->have_dev = true;
    }
    free(line);
    fclose(f);
}

/* Aborts the FUSE connection (requests in flight fail, the device read
 * returns ENODEV so the loop ends).  Mounts fusectl if needed (root only). */
static void abort_connection(fs_mount *m)
{
    if (!m->have_dev)
        return;
    char p[128];
    snprintf(p, sizeof p, "/sys/fs/fuse/connections/%u/abort",
             (unsigned)makedev(m->dev_major, m->dev_minor));
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    bool mounted_ctl = false;
    if (fd < 0 && errno == ENOENT) {
        mounted_ctl = mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) == 0;
        fd = open(p, O_WRONLY | O_CLOEXEC);
    }
    if (fd >= 0) {
        if (write(fd, "1", 1) < 0) {
            /* nothing more to try: fs_stop's join is still bounded by the op timeout */
        }
        close(fd);
    }
    if (mounted_ctl) /* leave the machine as we found it */
        umount2("/sys/fs/fuse/connections", MNT_DETACH);
}

static void *loop_main(void *arg)
{
    fs_mount *m = arg;
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    if (cfg != NULL) {
        fuse_loop_cfg_set_max_threads(cfg, (unsigned)(m->opt.max_threads > 0 ? m->opt.max_threads : 16));
        fuse_loop_cfg_set_clone_fd(cfg, 0);
        fuse_session_loop_mt(m->se, cfg);
        fuse_loop_cfg_destroy(cfg);
    } else {
        fuse_session_loop(m->se);
    }
    atomic_store(&m->loop_done, true);
    return NULL;
}

static void mount_free(fs_mount *m)
{
    if (m->se != NULL) {
        if (m->mounted)
            fuse_session_unmount(m->se);
        fuse_session_destroy(m->se);
    }
    /* Handles the kernel never released (open files at unmount). */
    while (m->handles.next != &m->handles)
        handle_free(m, m->handles.next);
    free(m->lookups);
    while (m->irefs != NULL) {
        fs_iref *r = m->irefs;
        m->irefs = r->next;
        free(r);
    }
    if (m->kv_ready)
        fs_kv_destroy(&m->kv);
    pthread_mutex_destroy(&m->hmu);
    pthread_cond_destroy(&m->pincv);
    pthread_mutex_destroy(&m->rootmu);
    free(m);
}

fs_mount *fs_start(const fs_backend *b, const char *mountpoint, const fs_options *opt,
                   char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (b == NULL || b->ops == NULL || mountpoint == NULL) {
        snprintf(err, errlen, "fs_start: no backend or mount point");
        return NULL;
    }
    fs_mount *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->hmu, NULL);
    m->lookups = calloc(FS_LOOKUPS_MAX, sizeof *m->lookups);
    if (m->lookups == NULL) {
        snprintf(err, errlen, "out of memory");
        pthread_mutex_destroy(&m->hmu);
        free(m);
        return NULL;
    }
    pthread_cond_init(&m->pincv, NULL);
    pthread_mutex_init(&m->rootmu, NULL);
    m->handles.next = m->handles.prev = &m->handles;
    m->b = *b;
    if (opt)
        m->opt = *opt;
    else
        fs_options_init(&m->opt);
    if (m->opt.client_id == 0)
        m->opt.client_id = net_random_id();
    if (m->opt.op_timeout_ms <= 0)
        m->opt.op_timeout_ms = b->op_timeout_ms > 0 ? b->op_timeout_ms : 5000;
    m->max_file_size = m->opt.max_file_size;
    if (m->max_file_size == 0)
        m->max_file_size = b->max_file_size ? b->max_file_size : (1ull << 30);
    m->whole_max = m->opt.whole_file_max ? m->opt.whole_file_max : FS_WHOLE_FILE_MAX_DEFAULT;
    if (m->whole_max > m->max_file_size)
        m->whole_max = m->max_file_size;
    clock_gettime(CLOCK_REALTIME, &m->start_time);

    /* A node killed with its mount up leaves a dead mount ("Transport
     * endpoint is not connected"): detach it so the new mount can go on top. */
    struct stat st;
    if (stat(mountpoint, &st) != 0 && errno == ENOTCONN)
        detach_mount(mountpoint);
    if (realpath(mountpoint, m->mountpoint) == NULL) {
        snprintf(err, errlen, "mount point %s: %s", mountpoint, strerror(errno));
        mount_free(m);
        return NULL;
    }
    if (stat(m->mountpoint, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "mount point %s is not a directory", m->mountpoint);
        mount_free(m);
        return NULL;
    }
    if (fs_kv_init(&m->kv, b, m->opt.client_id, b->id, m->opt.op_timeout_ms) != 0) {
        snprintf(err, errlen, "out of memory");
        mount_free(m);
        return NULL;
    }
    m->kv_ready = true;

    char o[256];
    snprintf(o, sizeof o, "fsname=hstore,subtype=hstore,default_permissions%s",
             m->opt.allow_other ? ",allow_other" : "");
    char *argv[] = { "hstore", "-o", o, m->opt.debug ? "-d" : NULL, NULL };
    struct fuse_args args = FUSE_ARGS_INIT(m->opt.debug ? 4 : 3, argv);
    m->se = fuse_session_new(&args, &ll_ops, sizeof ll_ops, m);
    fuse_opt_free_args(&args);
    if (m->se == NULL) {
        snprintf(err, errlen, "fuse_session_new failed (bad mount options?)");
        mount_free(m);
        return NULL;
    }
    if (fuse_session_mount(m->se, m->mountpoint) != 0) {
        snprintf(err, errlen, "cannot mount at %s (is /dev/fuse usable, the directory "
                 "empty and not already mounted?)", m->mountpoint);
        mount_free(m);
        return NULL;
    }
    m->mounted = true;
    find_mount_dev(m);
    /* From now on this node reports the inodes open here (kv.h "Open files"). */
    b->ops->set_open_files(b->ctx, open_files, m);
    m->reporting = true;
    if (pthread_create(&m->loop_thread, NULL, loop_main, m) != 0) {
        snprintf(err, errlen, "cannot start the FUSE loop thread");
        b->ops->set_open_files(b->ctx, NULL, NULL);
        mount_free(m);
        return NULL;
    }
    m->loop_started = true;
    return m;
}

static bool join_until(fs_mount *m, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_timedjoin_np(m->loop_thread, NULL, &ts) == 0;
}

void fs_stop(fs_mount *m)
{
    if (m == NULL)
        return;
    if (m->loop_started) {
        fuse_session_exit(m->se);
        /* Unmounting ends the connection once nothing uses the mount, and
         * the loop's device reads then fail with ENODEV. */
        detach_mount(m->mountpoint);
        if (!join_until(m, 1500)) {
            /* Something still holds the mount: abort the connection.  Workers
             * inside the backend finish within their deadline. */
            abort_connection(m);
            if (!join_until(m, m->opt.op_timeout_ms + 2000))
                pthread_join(m->loop_thread, NULL);
        }
        m->loop_started = false;
    }
    /* Nothing here can use an inode any more: this node stops holding. */
    if (m->reporting) {
        m->b.ops->set_open_files(m->b.ctx, NULL, NULL);
        if (m->kv_ready)
            fs_kv_hold_gone(&m->kv);
        m->reporting = false;
    }
    mount_free(m);
}

const char *fs_mountpoint(const fs_mount *m)
{
    return m->mountpoint;
}
