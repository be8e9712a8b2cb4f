/*
 * fs_internal.h — what the files of the mount share, not for use outside fs/:
 * the mount (struct fs_mount), the handle of an open file (fs_handle), the
 * records of what the mount holds open, the control view's names and inode
 * numbers, small request helpers, and the functions one file of fs/ calls in
 * another (grouped below by the file that defines them).
 */
#ifndef HSTORE_FS_INTERNAL_H
#define HSTORE_FS_INTERNAL_H

#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/fs.h"
#include "fs/fs_kv.h"

#define FS_NAME_MAX 255
#define FS_ROOT_INO 1 /* FUSE_ROOT_ID and KV_ROOT_INO */
#define FS_CTL_NAME ".hstore"
#define FS_CTL_STATUS_NAME "status"
#define FS_CTL_INO_DIR 0xFFFFFFFFFFFFFF01ull /* outside the state machine's range */
#define FS_CTL_INO_STATUS 0xFFFFFFFFFFFFFF02ull
#define FS_HANDLE_MAGIC 0x68736668u /* "hsfh" */
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
    struct fs_handle *prev, *next; /* the mount's list, to free leftovers at stop */
    pthread_mutex_t mu;            /* serializes the handle's own requests */
    bool append;                   /* O_APPEND: every write is an APPEND */
    bool writable;                 /* opened for writing */
    bool whole;                    /* whole-file mode (see fs_file.c) */
    bool dirty;                    /* buf holds content not yet committed */
    bool fallback;                 /* PUT_IF refused: commit by WRITE_AT instead */
    bool doubt;                    /* the commit of buf[0, doubt_len) is in doubt */
    char *buf;                     /* whole-file content so far */
    size_t len, cap;
    size_t done; /* buf[0, done) is committed at its offsets */
    size_t doubt_len;
    uint64_t ver; /* the inode version the content starts from */
    /* Streaming (a whole-file handle past its bound, see fs_file.c): the
     * content's full parts go out as parts of upload up_id as they fill,
     * and buf holds only [up_base, len); at commit the content [0, up_len)
     * is frozen, its tail shipped (up_shipped) and written at once. */
    uint64_t up_id;  /* 0: not streaming */
    size_t up_base;  /* bytes already staged as parts (a multiple of a part) */
    size_t up_len;   /* the frozen length, once up_frozen */
    bool up_frozen;  /* a commit began: the content is [0, up_len) */
    bool up_shipped; /* every part of [0, up_len) is staged */
    /* The window in flight while streaming (stream_ship): ship_th stages
     * ship_buf's ship_n bytes, the content at ship_base, while writes fill
     * buf; ship_rc is its result once joined (stream_join). */
    bool ship_busy, ship_threaded;
    pthread_t ship_th;
    fs_mount *ship_m;
    char *ship_buf;
    size_t ship_cap, ship_base, ship_n;
    int ship_rc;
    int err;                        /* sticky: reported by every later fsync/flush */
    fs_kv_held held;                /* session of a commit in doubt */
    atomic_bool pending;            /* whole && dirty, readable without mu */
    atomic_uint_least64_t pend_len; /* len while pending */
    unsigned pins;                  /* under the mount's hmu: users from other threads */
    uint64_t ino;                   /* the open inode (0: unknown) */
    fs_attr attr;                   /* attributes seen at open */
    uint32_t cuid, cgid;            /* who opened it: the writer of the PUT at close */
    char *text;                     /* FS_H_STATUS: the generated text */
    size_t text_len;
} fs_handle;

/* A recent lookup of a non-directory: until FS_LOOKUP_HOLD_MS after it, the
 * open that usually follows may still open the inode even if it lost its name
 * meanwhile, because reports do not cover past `since` while it is recent. */
#define FS_LOOKUP_HOLD_MS 2000
#define FS_LOOKUPS_MAX 4096
typedef struct fs_lookup {
    uint64_t ino, since, until_ms; /* held until until_ms */
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
    unsigned nwrite; /* of them open for writing */
} fs_iref;

typedef struct fs_cache_slot {
    uint64_t ino;   /* 0: free */
    uint64_t until; /* the kernel may hold its attributes until then (ms, monotonic) */
} fs_cache_slot;

struct fs_mount {
    fs_backend b; /* the store below (fs_backend.h) */
    fs_kv kv;
    bool kv_ready;
    fs_options opt;
    uint64_t max_file_size;
    uint64_t whole_max;
    char mountpoint[PATH_MAX];
    struct fuse_session *se;
    bool mounted;
    bool stacked; /* mounted on top of a dead mount of the same path (fs_start) */
    pthread_t loop_thread;
    bool loop_started;
    atomic_bool loop_done;
    unsigned dev_major, dev_minor; /* the FUSE connection, for an abort at stop */
    bool have_dev;
    struct timespec start_time;
    pthread_mutex_t hmu;  /* handles, irefs, opening, pins */
    pthread_cond_t pincv; /* a handle's pins dropped to 0 */
    atomic_uint npending; /* handles with pending whole-file content */
    fs_handle handles;    /* list head (sentinel) */
    fs_iref *irefs;       /* inodes open on this mount */
    atomic_uint nwriters; /* handles open for writing (fs_open_for_write) */
    fs_opening *opening;  /* opens in progress */
    fs_lookup *lookups;   /* recent lookups of non-directories */
    size_t nlookups;
    bool reporting; /* registered with the backend's set_open_files */
    pthread_mutex_t rootmu;
    fs_attr root_attr; /* last root attributes read from the store */
    bool have_root;
    struct {                       /* the kernel's attribute cache (fs_cache.c) */
        bool on;                   /* set before the first request, cleared after the last */
        pthread_mutex_t mu;        /* tab, used */
        atomic_uint_least64_t gen; /* changes learned of so far */
        atomic_bool names;         /* names cached too (fs_cache_names) */
        fs_cache_slot *tab;
        size_t used;
    } cache;
};

/* ---- request helpers ----------------------------------------------------------- */

static inline fs_mount *req_mount(fuse_req_t req)
{
    return (fs_mount *)fuse_req_userdata(req);
}

/* The data-changing commands of this request carry its caller's identity. */
static inline void set_writer(fuse_req_t req)
{
    const struct fuse_ctx *c = fuse_req_ctx(req);
    fs_kv_set_writer(c ? c->uid : 0, c ? c->gid : 0);
}

static inline bool is_ctl_ino(fuse_ino_t ino)
{
    return ino == FS_CTL_INO_DIR || ino == FS_CTL_INO_STATUS;
}

static inline bool is_ctl_name(fuse_ino_t parent, const char *name)
{
    return parent == FS_ROOT_INO && strcmp(name, FS_CTL_NAME) == 0;
}

/* ENAMETOOLONG past NAME_MAX (the kernel lets names up to 1024 bytes through). */
static inline int check_name(const char *name)
{
    return strlen(name) > FS_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* Refuses new or removed names inside or as the control view.  ctl_err is the
 * error for the control directory's own name. */
static inline int check_mutable(fuse_ino_t parent, const char *name, int ctl_err)
{
    if (is_ctl_ino(parent))
        return -EPERM;
    if (is_ctl_name(parent, name))
        return ctl_err;
    return check_name(name);
}

static inline void reply_err(fuse_req_t req, int rc)
{
    fuse_reply_err(req, rc < 0 ? -rc : rc);
}

static inline fs_handle *fh_of(struct fuse_file_info *fi)
{
    if (fi == NULL || fi->fh == 0)
        return NULL;
    fs_handle *h = (fs_handle *)(uintptr_t)fi->fh;
    return h->magic == FS_HANDLE_MAGIC ? h : NULL;
}

/* ---- fs_attr.c ----------------------------------------------------------------- */

void fs_attr_to_stat(const fs_attr *a, struct stat *st);
/* Replies with the entry of a (no entry or attr caching: timeouts 0). */
void fs_reply_entry(fuse_req_t req, const fs_attr *a);
/* fs_timed.c: replaces the handlers in o with timed wrappers of them. */
void fs_timed_ops(struct fuse_lowlevel_ops *o);

void fs_ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                   struct fuse_file_info *fi);
void fs_ll_statfs(fuse_req_t req, fuse_ino_t ino);

/* ---- fs_dir.c ------------------------------------------------------------------ */

void fs_ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fs_ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void fs_ll_readlink(fuse_req_t req, fuse_ino_t ino);
void fs_ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fs_ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fs_ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                  const char *newname, unsigned int flags);
void fs_ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fs_ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi);
void fs_ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* ---- fs_file.c ----------------------------------------------------------------- */

void fs_ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                  struct fuse_file_info *fi);
void fs_ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fs_ll_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
                 struct fuse_file_info *fi);
void fs_ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fs_ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* Commits the whole-file content other handles on this mount have pending
 * for ino (except `except`): how many had some, or the first error. */
int fs_sync_others(fs_mount *m, uint64_t ino, const fs_handle *except);
/* a->size becomes the size of content a handle here has pending for ino. */
void fs_pending_size(fs_mount *m, uint64_t ino, fs_attr *a);
/* truncate / ftruncate of ino (through h when not NULL). */
int fs_setattr_size(fs_mount *m, fuse_ino_t ino, fs_handle *h, off_t size);
/* Waits for h's window in flight, if any (stream_ship): its result, 0 if
 * none.  Called with h->mu held, or when no other thread uses h. */
int fs_stream_join(fs_handle *h);

/* ---- fs_open.c ----------------------------------------------------------------- */

fs_handle *fs_handle_new(fs_mount *m, fs_handle_kind kind);
int fs_handle_set_ino(fs_mount *m, fs_handle *h, uint64_t ino);
/* The reply of a lookup or create of a (fs_attr.c), its attribute timeout
 * from fs_cache_timeout (t0 for fs_cache_replied); the name is cached for
 * as long only when `name` (a lookup) and fs_cache_names allow it. */
void fs_entry_param(fs_mount *m, const fs_attr *a, struct fuse_entry_param *e, uint64_t *t0,
                    bool name);
void fs_handle_free(fs_mount *m, fs_handle *h);
/* An open or lookup in progress holds back what reports cover (o lives on
 * the caller's stack until fs_opening_end or fs_lookup_note). */
void fs_opening_add(fs_mount *m, fs_opening *o);
int fs_opening_begin(fs_mount *m, fs_opening *o);
void fs_opening_end(fs_mount *m, fs_opening *o);
void fs_lookup_note(fs_mount *m, fs_opening *o, uint64_t ino, uint64_t cached_ms);
bool fs_lookup_recent(fs_mount *m, uint64_t ino, uint64_t *since);
/* fs_backend_open_fn over the mount (arg). */
size_t fs_open_files(void *arg, uint64_t *inos, size_t max, uint64_t *since);

/* ---- fs_ctl.c ------------------------------------------------------------------ */

int fs_ctl_getattr(fs_mount *m, fuse_ino_t ino, struct stat *st);
void fs_ctl_reply_entry(fuse_req_t req, fs_mount *m, fuse_ino_t ino);
void fs_ctl_open(fuse_req_t req, fs_mount *m, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ctl_handle_getattr(fs_mount *m, const fs_handle *h, struct stat *st);
void fs_ctl_read(fuse_req_t req, const fs_handle *h, size_t size, off_t off);

/* ---- fs_cache.c: the kernel's attribute cache ---- */
void fs_cache_start(fs_mount *m); /* once mounted, before the first request */
void fs_cache_stop(fs_mount *m);  /* before the session goes */
/* At the start of every request (fs_timed.c). */
void fs_cache_begin(fs_mount *m);
/* How long the kernel may keep ino's attributes from the reply being made
 * (seconds; 0: not at all), with *t0 for fs_cache_replied. */
double fs_cache_timeout(fs_mount *m, uint64_t ino, uint64_t *t0);
/* After the reply went out: drops it again if it went out late. */
void fs_cache_replied(fs_mount *m, uint64_t ino, double timeout, uint64_t t0);
/* The same for a lookup's reply, whose name the kernel may cache for
 * name_timeout. */
void fs_cache_replied_name(fs_mount *m, uint64_t ino, double name_timeout, double timeout,
                           uint64_t t0);
/* The kernel forgets ino's attributes (this mount changed them itself). */
void fs_cache_forget(fs_mount *m, uint64_t ino);
/* Whether the kernel may cache names: it can be told to drop all of them
 * at once (fs_cache_names_probe, at INIT). */
bool fs_cache_names(const fs_mount *m);
void fs_cache_names_probe(fs_mount *m, unsigned proto_minor);
/* The kernel forgets every name it holds (FUSE_NOTIFY_INC_EPOCH). */
void fs_cache_forget_names(fs_mount *m);
/* True when a handle of this mount has ino open for writing. */
bool fs_open_for_write(fs_mount *m, uint64_t ino);

#endif
