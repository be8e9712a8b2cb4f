/*
 * fs.c — the FUSE face of hstore: the libfuse3 high-level operations of one
 * node's mount, each mapped onto state-machine operations (fs/fs_kv.h).
 *
 * Consistency.  Every read (lookup, getattr, readdir, read, readlink) is a
 * linearizable read (ReadIndex on the leader, then wait until this node has
 * applied that index).  Every change is one replicated command, committed on a
 * majority and applied here before the system call returns; commands carry an
 * exactly-once (client id, seq) pair so a retry inside the deadline never
 * applies twice.  The kernel caches nothing that could go stale: entry, attr
 * and negative timeouts are 0, every file is direct_io (no page cache), the
 * writeback cache is never enabled.  Timestamps are stamped by the leader into
 * the command, so every node reports the same attributes.
 *
 * Which writes are buffered, which go write-through:
 *
 *   WHOLE-FILE (one PUT at close):  a writable, non-O_APPEND handle on a
 *     regular file that was opened with O_TRUNC or was empty at open (which
 *     includes every file the open created) starts in whole-file mode.  While its writes arrive in order
 *     from offset 0 (each one starting where the previous ended) they are kept
 *     in the handle, up to a bound (fs_options.whole_file_max, default 32 MiB,
 *     never more than max_file_size).  At flush (every close()), fsync or
 *     release the content is committed as ONE PUT command that replaces the
 *     file's data: a reader on any node sees the old content or the new,
 *     never an empty or half-written file.  close() returns only after the PUT
 *     is committed and reports its failure (EIO without a quorum, EFBIG,
 *     ENOSPC).  A flush with nothing written is a no-op (`echo x > f` sends
 *     a FLUSH before its first WRITE).  O_TRUNC itself is deferred (with
 *     FUSE_CAP_ATOMIC_O_TRUNC the kernel leaves it to us): no TRUNCATE is sent
 *     at open, the PUT at close carries the truncation; a handle opened with
 *     O_TRUNC and released without any write commits an empty PUT at release
 *     (so `: > f` is committed slightly after close() returns).  A read or
 *     fstat through the handle itself sees its own pending content.
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
 * Open files name inodes.  open() looks the file up once (STAT) and the
 * handle then addresses the inode (GETRANGE, WRITE_AT, APPEND, TRUNCATE,
 * STAT, SETATTR by inode), so a descriptor follows its file through renames
 * made on any node, like POSIX.  The one exception is the whole-file PUT,
 * which the state machine only offers by path: it goes to the handle's
 * current path as libfuse knows it (renames made on this node are followed,
 * a rename made on another node is not: the PUT then writes the old name).
 *
 * Unlink (or rename over) a file that is open on this node: POSIX.  The
 * mount runs with hard_remove (no ".fuse_hidden" renames, which would
 * replicate to every node); instead, before this node removes the last name
 * of an inode it holds open, it proposes OPEN_REF (holder = its node id), so
 * the state machine keeps the inode alive ("orphan") and the descriptor keeps
 * reading and writing it; the last close proposes CLOSE_REF, which frees it.
 * References of a crashed incarnation are dropped by RELEASE_HOLDER before the
 * first OPEN_REF of the next one.  Unopened files cost nothing extra.  A file
 * unlinked by ANOTHER node while open here is gone at once: this node's
 * descriptors then get ENOENT (a cluster-wide open-file lease would be needed
 * to do better).  A whole-file handle whose name is gone drops its pending
 * content at close (nobody could see it).  One gap: fstat() of an unlinked
 * open file fails with ESTALE, because the kernel sends that GETATTR without
 * a file handle and libfuse's high-level API has no path for a removed file.
 * libfuse's alternative (hard_remove off: rename to .fuse_hidden*, unlink at
 * release) would break the atomicity of rename over an open file, which
 * matters more.
 *
 * Limits: a write or truncate past max_file_size fails with EFBIG (checked
 * here and again in the state machine); a full store answers ENOSPC; a path
 * component longer than 255 bytes gets ENAMETOOLONG.  Without a quorum every
 * operation fails with EIO once the op timeout passes (a system call that
 * makes the kernel send two requests, e.g. a cached dentry's revalidation and
 * then a fresh lookup, may take two timeouts).  File locks (flock, fcntl) are
 * not implemented: the kernel keeps them, per node.
 *
 * Control view: MOUNT/.hstore/status is a read-only file generated on open
 * from node_status() (id, role, term, leader, commit and applied index, ...).
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
#include <fuse.h>
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

#define FS_NAME_MAX 255
#define FS_CTL_DIR "/.hstore"
#define FS_CTL_STATUS "/.hstore/status"
#define FS_CTL_INO_DIR 0xFFFFFFFFFFFFFF01ull   /* outside the state machine's range */
#define FS_CTL_INO_STATUS 0xFFFFFFFFFFFFFF02ull
#define FS_HANDLE_MAGIC 0x68736668u            /* "hsfh" */
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
    bool trunc_pending;              /* O_TRUNC deferred to the PUT */
    bool dirty;                      /* buf holds content not yet committed */
    char *buf;                       /* whole-file content so far */
    size_t len, cap;
    uint64_t ino;                    /* the open inode (0: unknown) */
    fs_attr attr;                    /* attributes seen at open (mode/owner for PUT) */
    char *text;                      /* FS_H_STATUS: the generated text */
    size_t text_len;
} fs_handle;

struct fs_mount {
    node *n;
    fs_kv kv;
    bool kv_ready;
    fs_options opt;
    uint64_t max_file_size;
    uint64_t whole_max;
    char mountpoint[PATH_MAX];
    struct fuse *fuse;
    bool mounted;
    pthread_t loop_thread;
    bool loop_started;
    atomic_bool loop_done;
    unsigned dev_major, dev_minor;   /* the FUSE connection, for an abort at stop */
    bool have_dev;
    struct timespec start_time;
    pthread_mutex_t hmu;             /* handles, irefs */
    pthread_mutex_t refmu;           /* serializes RELEASE_HOLDER / OPEN_REF */
    fs_handle handles;               /* list head (sentinel) */
    struct fs_iref *irefs;           /* inodes open on this mount */
    bool holder_clean;               /* RELEASE_HOLDER done in this incarnation */
    bool refs_used;
    pthread_mutex_t rootmu;
    fs_attr root_attr;               /* last root attributes read from the store */
    bool have_root;
};

/* An inode open on this mount: how many handles, and whether this node holds
 * a reference on it in the state machine (taken before removing its last
 * name here, so the inode outlives the name). */
typedef struct fs_iref {
    struct fs_iref *next;
    uint64_t ino;
    unsigned nopen;
    bool ref;
} fs_iref;

/* ---- small helpers ----------------------------------------------------------- */

static fs_mount *cur_mount(void)
{
    return (fs_mount *)fuse_get_context()->private_data;
}

static bool is_ctl(const char *path)
{
    if (path == NULL)
        return false;
    size_t n = strlen(FS_CTL_DIR);
    return strncmp(path, FS_CTL_DIR, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* ENAMETOOLONG when a component is longer than NAME_MAX; the kernel lets
 * names up to 1024 bytes through to FUSE. */
static int check_path(const char *path)
{
    if (path == NULL)
        return 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        if ((size_t)(p - s) > FS_NAME_MAX)
            return -ENAMETOOLONG;
    }
    return 0;
}

/* Refuses changes inside the control view; 0 when path is an ordinary path. */
static int check_mutable(const char *path)
{
    if (is_ctl(path))
        return strcmp(path, FS_CTL_DIR) == 0 ? -EEXIST : -EPERM;
    return check_path(path);
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

static void handle_free(fs_mount *m, fs_handle *h)
{
    unsigned drop = 0;
    pthread_mutex_lock(&m->hmu);
    h->prev->next = h->next;
    h->next->prev = h->prev;
    if (h->ino != 0) {
        fs_iref **pp = &m->irefs;
        while (*pp != NULL && (*pp)->ino != h->ino)
            pp = &(*pp)->next;
        if (*pp != NULL && --(*pp)->nopen == 0) {
            fs_iref *r = *pp;
            *pp = r->next;
            drop = r->ref ? 1 : 0;
            free(r);
        }
    }
    pthread_mutex_unlock(&m->hmu);
    /* Last close of an inode this node kept alive: let the state machine
     * free it (it is an orphan: no name points to it any more). */
    if (drop && m->loop_started) {
        int rc = fs_kv_close_ref(&m->kv, h->ino);
        if (rc < 0 && rc != -ENOENT)
            fprintf(stderr, "hstore fs: CLOSE_REF of inode %llu failed: %s\n",
                    (unsigned long long)h->ino, strerror(-rc));
    }
    pthread_mutex_destroy(&h->mu);
    h->magic = 0;
    free(h->buf);
    free(h->text);
    free(h);
}

/* Called before this node removes the name path (unlink, rename over it): if
 * the inode behind it is open here and this is its last name, take a
 * reference so it outlives the name (POSIX unlink-while-open).  Costs nothing
 * while no file is open on this mount. */
static int protect_open_inode(fs_mount *m, const char *path)
{
    pthread_mutex_lock(&m->hmu);
    bool any = m->irefs != NULL;
    pthread_mutex_unlock(&m->hmu);
    if (!any)
        return 0;
    fs_attr a;
    if (fs_kv_stat(&m->kv, path, 0, &a) != 0 || S_ISDIR(a.mode) || a.nlink > 1)
        return 0;   /* missing (the removal itself will say so), or other names remain */
    pthread_mutex_lock(&m->refmu);
    pthread_mutex_lock(&m->hmu);
    fs_iref *r = m->irefs;
    while (r != NULL && r->ino != a.ino)
        r = r->next;
    bool need = r != NULL && !r->ref;
    bool clean = m->holder_clean;
    pthread_mutex_unlock(&m->hmu);
    int rc = 0;
    if (need && !clean) {
        /* References of an earlier incarnation of this node (it crashed
         * with files open) go first, once. */
        rc = fs_kv_release_holder(&m->kv);
        if (rc == 0)
            m->holder_clean = true;
    }
    if (need && rc == 0) {
        rc = fs_kv_open_ref(&m->kv, a.ino);
        if (rc == 0) {
            bool orphaned;
            pthread_mutex_lock(&m->hmu);
            r = m->irefs;
            while (r != NULL && r->ino != a.ino)
                r = r->next;
            orphaned = r == NULL;   /* closed meanwhile */
            if (r != NULL)
                r->ref = true;
            m->refs_used = true;
            pthread_mutex_unlock(&m->hmu);
            if (orphaned)
                fs_kv_close_ref(&m->kv, a.ino);
        }
    }
    pthread_mutex_unlock(&m->refmu);
    return rc;
}

/* Whether reads through h must come from its buffer (its own pending content). */
static bool handle_pending(const fs_handle *h)
{
    return h->whole && (h->dirty || h->trunc_pending);
}

/* Leaves whole-file mode, committing the buffered content first if any is
 * pending.  Called with h->mu held.  path NULL: the file was removed, the
 * content has nowhere to go and is dropped. */
static int handle_commit(fs_mount *m, fs_handle *h, const char *path)
{
    int rc = 0;
    if (handle_pending(h) && path != NULL)
        rc = fs_kv_put(&m->kv, path, h->buf ? h->buf : "", h->len, h->attr.mode & 07777,
                       h->attr.uid, h->attr.gid);
    h->whole = false;
    h->dirty = false;
    h->trunc_pending = false;
    free(h->buf);
    h->buf = NULL;
    h->len = h->cap = 0;
    return rc;
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
    node_status(m->n, &st);
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

static int ctl_getattr(fs_mount *m, const char *path, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_uid = m->opt.uid;
    st->st_gid = m->opt.gid;
    st->st_atim = st->st_mtim = st->st_ctim = m->start_time;
    st->st_blksize = 4096;
    if (strcmp(path, FS_CTL_DIR) == 0) {
        st->st_ino = (ino_t)FS_CTL_INO_DIR;
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
        return 0;
    }
    if (strcmp(path, FS_CTL_STATUS) == 0) {
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

/* ---- FUSE operations ----------------------------------------------------------- */

static void *hs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    /* No kernel cache that could serve stale data (fuse-notes §3): every
     * lookup, getattr and read comes here and is answered linearizably. */
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->direct_io = 1;      /* 3.14 has no -o direct_io */
    cfg->kernel_cache = 0;
    cfg->auto_cache = 0;
    cfg->use_ino = 1;        /* the state machine's inode numbers */
    cfg->readdir_ino = 1;
    cfg->hard_remove = 1;    /* no replicated .fuse_hidden renames */
    cfg->nullpath_ok = 0;    /* paths for handle ops too (NULL once removed) */
    /* Never: stale sizes and corrupt appends across nodes (fuse-notes §3). */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    /* O_TRUNC comes to open()/create(), so the truncation can ride with the
     * PUT of a whole-file write instead of being visible on its own. */
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    return fuse_get_context()->private_data;
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
            m->root_attr.ino = 1;
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

static int hs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    fs_mount *m = cur_mount();
    fs_handle *h = fh_of(fi);
    if (h != NULL && h->kind == FS_H_STATUS) {
        memset(st, 0, sizeof *st);
        st->st_ino = (ino_t)FS_CTL_INO_STATUS;
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = (off_t)h->text_len;
        st->st_uid = m->opt.uid;
        st->st_gid = m->opt.gid;
        st->st_mtim = st->st_ctim = st->st_atim = m->start_time;
        return 0;
    }
    if (is_ctl(path))
        return ctl_getattr(m, path, st);
    int rc = check_path(path);
    if (rc < 0)
        return rc;
    fs_attr a;
    if (h != NULL && h->ino != 0) {
        /* fstat: the open inode, wherever its name went (or none). */
        rc = fs_kv_stat(&m->kv, NULL, h->ino, &a);
        if (rc < 0)
            return rc;
        pthread_mutex_lock(&h->mu);
        if (handle_pending(h))
            a.size = h->len;   /* the handle sees its own pending content */
        pthread_mutex_unlock(&h->mu);
    } else if (path != NULL && strcmp(path, "/") == 0) {
        rc = root_getattr(m, &a);
        if (rc < 0)
            return rc;
    } else {
        if (path == NULL)
            return -ESTALE;
        rc = fs_kv_stat(&m->kv, path, 0, &a);
        if (rc < 0)
            return rc;
    }
    attr_to_stat(&a, st);
    return 0;
}

typedef struct readdir_ctx {
    void *buf;
    fuse_fill_dir_t filler;
    bool root;
    bool full;
} readdir_ctx;

static int readdir_cb(void *arg, const char *name, const fs_attr *a)
{
    readdir_ctx *c = arg;
    if (c->root && strcmp(name, FS_CTL_DIR + 1) == 0)
        return 0;   /* shadowed by the control view, never listed */
    struct stat st;
    attr_to_stat(a, &st);
    if (c->filler(c->buf, name, &st, 0, 0) != 0) {
        c->full = true;
        return 1;
    }
    return 0;
}

static int hs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    fs_mount *m = cur_mount();
    if (path == NULL)
        return -ESTALE;
    if (strcmp(path, FS_CTL_DIR) == 0) {
        filler(buf, ".", NULL, 0, 0);
        filler(buf, "..", NULL, 0, 0);
        filler(buf, "status", NULL, 0, 0);
        return 0;
    }
    if (is_ctl(path))
        return -ENOTDIR;
    int rc = check_path(path);
    if (rc < 0)
        return rc;
    readdir_ctx c = { .buf = buf, .filler = filler, .root = strcmp(path, "/") == 0 };
    /* The listing and the dots: one linearizable read, all entries at once
     * (offset 0 every time: libfuse buffers the whole directory). */
    filler(buf, ".", NULL, 0, 0);
    filler(buf, "..", NULL, 0, 0);
    rc = fs_kv_readdir(&m->kv, path, readdir_cb, &c);
    return rc < 0 ? rc : 0;
}

/* Sets up the handle of a file just opened or created; a holds its
 * attributes (from STAT or CREATE). */
static int open_common(fs_mount *m, const char *path, struct fuse_file_info *fi,
                       const fs_attr *a)
{
    int flags = fi->flags;
    bool writable = (flags & O_ACCMODE) != O_RDONLY;
    bool append = (flags & O_APPEND) != 0;
    bool trunc = (flags & O_TRUNC) != 0;

    if (S_ISDIR(a->mode))
        return -EISDIR;
    bool whole = S_ISREG(a->mode) && writable && !append && (trunc || a->size == 0);
    /* A truncation that will not ride with a whole-file PUT is done now. */
    if (trunc && !whole && a->size != 0 && S_ISREG(a->mode)) {
        int rc = fs_kv_truncate(&m->kv, NULL, a->ino, 0);
        if (rc < 0)
            return rc;
    }
    fs_handle *h = handle_new(m, FS_H_FILE);
    if (h == NULL)
        return -ENOMEM;
    h->append = append;
    h->whole = whole;
    h->trunc_pending = whole && trunc && a->size != 0;
    h->attr = *a;
    int rc = handle_set_ino(m, h, a->ino);
    if (rc < 0) {
        handle_free(m, h);
        return rc;
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 1;
    fi->keep_cache = 0;
    return 0;
}

static int hs_open(const char *path, struct fuse_file_info *fi)
{
    fs_mount *m = cur_mount();
    if (path == NULL)
        return -ESTALE;
    if (is_ctl(path)) {
        if (strcmp(path, FS_CTL_STATUS) != 0)
            return strcmp(path, FS_CTL_DIR) == 0 ? -EISDIR : -ENOENT;
        if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
            return -EACCES;
        fs_handle *h = handle_new(m, FS_H_STATUS);
        if (h == NULL)
            return -ENOMEM;
        h->text = status_text(m, &h->text_len);
        if (h->text == NULL) {
            handle_free(m, h);
            return -ENOMEM;
        }
        fi->fh = (uint64_t)(uintptr_t)h;
        fi->direct_io = 1;
        return 0;
    }
    int rc = check_path(path);
    if (rc < 0)
        return rc;
    /* One lookup: the handle names the inode from now on. */
    fs_attr a;
    rc = fs_kv_stat(&m->kv, path, 0, &a);
    if (rc < 0)
        return rc;
    return open_common(m, path, fi, &a);
}

static int hs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    fs_mount *m = cur_mount();
    int rc = check_mutable(path);
    if (rc < 0)
        return rc;
    struct fuse_context *ctx = fuse_get_context();
    fs_attr a;
    /* CREATE never truncates here: an O_TRUNC of an existing file is
     * deferred to the whole-file PUT (open_common). */
    rc = fs_kv_create(&m->kv, path, (uint32_t)(mode & 07777), ctx->uid, ctx->gid,
                      (fi->flags & O_EXCL) != 0, false, &a);
    if (rc < 0)
        return rc;
    return open_common(m, path, fi, &a);
}

static int hs_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    fs_mount *m = cur_mount();
    fs_handle *h = fh_of(fi);
    if (off < 0)
        return -EINVAL;
    if (h == NULL)
        return -EBADF;
    if (h->kind == FS_H_STATUS) {
        if ((size_t)off >= h->text_len)
            return 0;
        size_t n = h->text_len - (size_t)off;
        if (n > size)
            n = size;
        memcpy(buf, h->text + off, n);
        return (int)n;
    }
    pthread_mutex_lock(&h->mu);
    if (handle_pending(h)) {
        size_t n = 0;
        if ((size_t)off < h->len) {
            n = h->len - (size_t)off;
            if (n > size)
                n = size;
            memcpy(buf, h->buf + off, n);
        }
        pthread_mutex_unlock(&h->mu);
        return (int)n;
    }
    pthread_mutex_unlock(&h->mu);
    return (int)fs_kv_read(&m->kv, path, h->ino, (uint64_t)off, size, buf);
}

static int hs_write(const char *path, const char *data, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    fs_mount *m = cur_mount();
    fs_handle *h = fh_of(fi);
    if (h == NULL || h->kind != FS_H_FILE)
        return -EBADF;
    if (off < 0)
        return -EINVAL;
    if (h->append) {
        /* The kernel's offset is its idea of the size, possibly stale: the
         * state machine appends at its own end. */
        return (int)fs_kv_append(&m->kv, path, h->ino, data, size);
    }
    if ((uint64_t)off > m->max_file_size || size > m->max_file_size - (uint64_t)off)
        return -EFBIG;
    int rc;
    pthread_mutex_lock(&h->mu);
    if (h->whole) {
        if ((size_t)off == h->len && h->len + size <= m->whole_max) {
            rc = handle_reserve(h, h->len + size);
            if (rc == 0) {
                memcpy(h->buf + h->len, data, size);
                h->len += size;
                h->dirty = true;
                rc = (int)size;
            }
            pthread_mutex_unlock(&h->mu);
            return rc;
        }
        /* Out of order or past the bound: commit what we have, then go
         * write-through. */
        rc = handle_commit(m, h, path);
        if (rc < 0) {
            pthread_mutex_unlock(&h->mu);
            return rc;
        }
    }
    /* Still under the handle's lock: two writes of one descriptor apply in
     * the order they came. */
    ssize_t n = fs_kv_write_at(&m->kv, path, h->ino, (uint64_t)off, data, size);
    pthread_mutex_unlock(&h->mu);
    return (int)n;
}

static int hs_flush(const char *path, struct fuse_file_info *fi)
{
    fs_mount *m = cur_mount();
    fs_handle *h = fh_of(fi);
    if (h == NULL || h->kind != FS_H_FILE)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&h->mu);
    /* Only content is committed here: a bare deferred O_TRUNC waits (the
     * first FLUSH of `echo x > f` comes before the data). */
    if (h->whole && h->dirty)
        rc = handle_commit(m, h, path);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

static int hs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    fs_mount *m = cur_mount();
    fs_handle *h = fh_of(fi);
    if (h == NULL || h->kind != FS_H_FILE)
        return 0;
    /* Write-through data is already durable on a majority; only a pending
     * whole-file content (or deferred truncation) needs committing. */
    pthread_mutex_lock(&h->mu);
    int rc = handle_commit(m, h, path);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

/* Directory changes are committed before their call returns: nothing to do. */
static int hs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    return 0;
}

static int hs_release(const char *path, struct fuse_file_info *fi)
{
    fs_mount *m = cur_mount();
    fs_handle *h = fh_of(fi);
    if (h == NULL)
        return 0;
    if (h->kind == FS_H_FILE) {
        pthread_mutex_lock(&h->mu);
        int rc = handle_commit(m, h, path);
        pthread_mutex_unlock(&h->mu);
        if (rc < 0)
            fprintf(stderr, "hstore fs: commit at release of %s failed: %s\n",
                    path ? path : "(removed file)", strerror(-rc));
    }
    fi->fh = 0;
    handle_free(m, h);
    return 0;
}

static int hs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    fs_mount *m = cur_mount();
    fs_handle *h = fh_of(fi);
    int rc = h != NULL ? 0 : check_mutable(path);
    if (rc < 0)
        return rc;
    if (size < 0)
        return -EINVAL;
    if ((uint64_t)size > m->max_file_size)
        return -EFBIG;
    if (h != NULL && h->kind == FS_H_FILE) {
        pthread_mutex_lock(&h->mu);
        if (h->whole) {
            if ((uint64_t)size <= m->whole_max) {
                /* ftruncate on a whole-file handle reshapes the pending content. */
                rc = handle_reserve(h, (size_t)size);
                if (rc == 0) {
                    if ((size_t)size > h->len)
                        memset(h->buf + h->len, 0, (size_t)size - h->len);
                    h->len = (size_t)size;
                    h->dirty = true;
                }
                pthread_mutex_unlock(&h->mu);
                return rc;
            }
            rc = handle_commit(m, h, path);
            if (rc < 0) {
                pthread_mutex_unlock(&h->mu);
                return rc;
            }
        }
        rc = fs_kv_truncate(&m->kv, path, h->ino, (uint64_t)size);
        pthread_mutex_unlock(&h->mu);
        return rc;
    }
    if (h != NULL)
        return -EINVAL;
    return fs_kv_truncate(&m->kv, path, 0, (uint64_t)size);
}

static int hs_mknod(const char *path, mode_t mode, dev_t rdev)
{
    fs_mount *m = cur_mount();
    int rc = check_mutable(path);
    if (rc < 0)
        return rc;
    struct fuse_context *ctx = fuse_get_context();
    return fs_kv_mknod(&m->kv, path, (uint32_t)mode, (uint64_t)rdev, ctx->uid, ctx->gid);
}

static int hs_mkdir(const char *path, mode_t mode)
{
    fs_mount *m = cur_mount();
    int rc = check_mutable(path);
    if (rc < 0)
        return rc;
    struct fuse_context *ctx = fuse_get_context();
    return fs_kv_mkdir(&m->kv, path, (uint32_t)((mode & 07777) | S_IFDIR), ctx->uid, ctx->gid);
}

static int hs_unlink(const char *path)
{
    fs_mount *m = cur_mount();
    int rc = check_mutable(path);
    if (rc < 0)
        return rc == -EEXIST ? -EISDIR : rc;
    rc = protect_open_inode(m, path);
    if (rc < 0)
        return rc;
    return fs_kv_unlink(&m->kv, path);
}

static int hs_rmdir(const char *path)
{
    fs_mount *m = cur_mount();
    int rc = check_mutable(path);
    if (rc < 0)
        return rc == -EEXIST ? -EBUSY : rc;
    return fs_kv_rmdir(&m->kv, path);
}

static int hs_symlink(const char *target, const char *path)
{
    fs_mount *m = cur_mount();
    int rc = check_mutable(path);
    if (rc < 0)
        return rc;
    if (strlen(target) >= PATH_MAX)
        return -ENAMETOOLONG;
    struct fuse_context *ctx = fuse_get_context();
    return fs_kv_symlink(&m->kv, target, path, ctx->uid, ctx->gid);
}

static int hs_readlink(const char *path, char *buf, size_t size)
{
    fs_mount *m = cur_mount();
    if (is_ctl(path))
        return -EINVAL;
    int rc = check_path(path);
    if (rc < 0)
        return rc;
    return fs_kv_readlink(&m->kv, path, buf, size);
}

static int hs_link(const char *from, const char *to)
{
    fs_mount *m = cur_mount();
    if (is_ctl(from))
        return -EPERM;
    int rc = check_mutable(to);
    if (rc < 0)
        return rc;
    return fs_kv_link(&m->kv, from, to);
}

static int hs_rename(const char *from, const char *to, unsigned int flags)
{
    fs_mount *m = cur_mount();
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
        return -EINVAL;   /* RENAME_WHITEOUT: not for a replicated namespace */
    if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
        return -EINVAL;
    if (is_ctl(from) || is_ctl(to))
        return -EPERM;
    int rc = check_path(from);
    if (rc == 0)
        rc = check_path(to);
    if (rc < 0)
        return rc;
    if (flags == 0) {
        /* Renaming over a file that is open here removes its last name. */
        rc = protect_open_inode(m, to);
        if (rc < 0)
            return rc;
    }
    return fs_kv_rename(&m->kv, from, to, flags);
}

static int hs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    fs_mount *m = cur_mount();
    fs_handle *h = fh_of(fi);
    uint64_t ino = h != NULL && h->kind == FS_H_FILE ? h->ino : 0;
    if (path == NULL && ino == 0)
        return -ESTALE;
    int rc = ino ? 0 : check_mutable(path);
    if (rc < 0)
        return rc == -EEXIST ? -EPERM : rc;
    return fs_kv_setattr(&m->kv, path, ino, FS_SET_MODE, (uint32_t)(mode & 07777), 0, 0, NULL, NULL);
}

static int hs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    fs_mount *m = cur_mount();
    fs_handle *h = fh_of(fi);
    uint64_t ino = h != NULL && h->kind == FS_H_FILE ? h->ino : 0;
    if (path == NULL && ino == 0)
        return -ESTALE;
    int rc = ino ? 0 : check_mutable(path);
    if (rc < 0)
        return rc == -EEXIST ? -EPERM : rc;
    unsigned mask = 0;
    if (uid != (uid_t)-1)
        mask |= FS_SET_UID;
    if (gid != (gid_t)-1)
        mask |= FS_SET_GID;
    if (mask == 0)
        return 0;
    return fs_kv_setattr(&m->kv, path, ino, mask, 0, (uint32_t)uid, (uint32_t)gid, NULL, NULL);
}

static int hs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    fs_mount *m = cur_mount();
    fs_handle *h = fh_of(fi);
    uint64_t ino = h != NULL && h->kind == FS_H_FILE ? h->ino : 0;
    if (path == NULL && ino == 0)
        return -ESTALE;
    int rc = ino ? 0 : check_mutable(path);
    if (rc < 0)
        return rc == -EEXIST ? -EPERM : rc;
    unsigned mask = 0;
    const struct timespec *at = NULL, *mt = NULL;
    if (tv == NULL) {
        mask = FS_SET_ATIME_NOW | FS_SET_MTIME_NOW;
    } else {
        if (tv[0].tv_nsec == UTIME_NOW)
            mask |= FS_SET_ATIME_NOW;
        else if (tv[0].tv_nsec != UTIME_OMIT) {
            mask |= FS_SET_ATIME;
            at = &tv[0];
        }
        if (tv[1].tv_nsec == UTIME_NOW)
            mask |= FS_SET_MTIME_NOW;
        else if (tv[1].tv_nsec != UTIME_OMIT) {
            mask |= FS_SET_MTIME;
            mt = &tv[1];
        }
    }
    if (mask == 0)
        return 0;
    return fs_kv_setattr(&m->kv, path, ino, mask, 0, 0, 0, at, mt);
}

static int hs_statfs(const char *path, struct statvfs *st)
{
    fs_mount *m = cur_mount();
    return fs_kv_statfs(&m->kv, st);
}

static const struct fuse_operations hs_ops = {
    .init = hs_init,
    .getattr = hs_getattr,
    .readdir = hs_readdir,
    .open = hs_open,
    .create = hs_create,
    .read = hs_read,
    .write = hs_write,
    .flush = hs_flush,
    .fsync = hs_fsync,
    .fsyncdir = hs_fsyncdir,
    .release = hs_release,
    .truncate = hs_truncate,
    .mknod = hs_mknod,
    .mkdir = hs_mkdir,
    .unlink = hs_unlink,
    .rmdir = hs_rmdir,
    .symlink = hs_symlink,
    .readlink = hs_readlink,
    .link = hs_link,
    .rename = hs_rename,
    .chmod = hs_chmod,
    .chown = hs_chown,
    .utimens = hs_utimens,
    .statfs = hs_statfs,
};

/* ---- mount life cycle ---------------------------------------------------------- */

void fs_options_init(fs_options *o)
{
    memset(o, 0, sizeof *o);
    o->uid = getuid();
    o->gid = getgid();
    o->allow_other = geteuid() == 0;
}

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &v, sizeof v) != (ssize_t)sizeof v)
            v = 0;
        close(fd);
    }
    if (v == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^
            ((uint64_t)getpid() << 32);
    }
    return v ? v : 1;
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
        fuse_loop_mt(m->fuse, cfg);
        fuse_loop_cfg_destroy(cfg);
    } else {
        fuse_loop(m->fuse);
    }
    atomic_store(&m->loop_done, true);
    return NULL;
}

static void mount_free(fs_mount *m)
{
    if (m->fuse != NULL) {
        if (m->mounted)
            fuse_unmount(m->fuse);
        fuse_destroy(m->fuse);
    }
    /* Handles the kernel never released (open files at unmount). */
    while (m->handles.next != &m->handles)
        handle_free(m, m->handles.next);
    while (m->irefs != NULL) {
        fs_iref *r = m->irefs;
        m->irefs = r->next;
        free(r);
    }
    if (m->kv_ready)
        fs_kv_destroy(&m->kv);
    pthread_mutex_destroy(&m->hmu);
    pthread_mutex_destroy(&m->refmu);
    pthread_mutex_destroy(&m->rootmu);
    free(m);
}

fs_mount *fs_start(node *n, const char *mountpoint, const fs_options *opt, char *err,
                   size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (n == NULL || mountpoint == NULL) {
        snprintf(err, errlen, "fs_start: no node or mount point");
        return NULL;
    }
    fs_mount *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->hmu, NULL);
    pthread_mutex_init(&m->refmu, NULL);
    pthread_mutex_init(&m->rootmu, NULL);
    m->handles.next = m->handles.prev = &m->handles;
    m->n = n;
    if (opt)
        m->opt = *opt;
    else
        fs_options_init(&m->opt);
    if (m->opt.client_id == 0)
        m->opt.client_id = random_u64();
    const node_config *nc = node_get_config(n);
    if (m->opt.op_timeout_ms <= 0)
        m->opt.op_timeout_ms = nc && nc->op_timeout_ms > 0 ? nc->op_timeout_ms : 5000;
    m->max_file_size = m->opt.max_file_size;
    if (m->max_file_size == 0)
        m->max_file_size = nc && nc->max_file_size ? nc->max_file_size : (1ull << 30);
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
    if (fs_kv_init(&m->kv, n, m->opt.client_id, nc ? nc->id : 0, m->opt.op_timeout_ms) != 0) {
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
    m->fuse = fuse_new(&args, &hs_ops, sizeof hs_ops, m);
    fuse_opt_free_args(&args);
    if (m->fuse == NULL) {
        snprintf(err, errlen, "fuse_new failed (bad mount options?)");
        mount_free(m);
        return NULL;
    }
    if (fuse_mount(m->fuse, m->mountpoint) != 0) {
        snprintf(err, errlen, "cannot mount at %s (is /dev/fuse usable, the directory "
                 "empty and not already mounted?)", m->mountpoint);
        mount_free(m);
        return NULL;
    }
    m->mounted = true;
    find_mount_dev(m);
    if (pthread_create(&m->loop_thread, NULL, loop_main, m) != 0) {
        snprintf(err, errlen, "cannot start the FUSE loop thread");
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
        fuse_exit(m->fuse);
        /* Unmounting ends the connection once nothing uses the mount, and
         * the loop's device reads then fail with ENODEV. */
        detach_mount(m->mountpoint);
        if (!join_until(m, 1500)) {
            /* Something still holds the mount: abort the connection.  Workers
             * inside node_submit finish within their deadline. */
            abort_connection(m);
            if (!join_until(m, m->opt.op_timeout_ms + 2000))
                pthread_join(m->loop_thread, NULL);
        }
        m->loop_started = false;
    }
    /* Inodes this node kept alive for descriptors that were still open:
     * nobody can use them any more. */
    if (m->refs_used && m->kv_ready)
        fs_kv_release_holder(&m->kv);
    mount_free(m);
}

const char *fs_mountpoint(const fs_mount *m)
{
    return m->mountpoint;
}
