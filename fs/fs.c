/*
 * fs.c — the FUSE face of hstore: the life cycle of one node's mount
 * (fs_start, fs_stop) and the table of libfuse3 low-level operations, each
 * mapped onto state-machine operations (fs/fs_kv.h) that run through the
 * mount's backend (fs/fs_backend.h).  The operations live by concern:
 *
 *   fs_dir.c    names and directories: lookup, mknod, mkdir, symlink,
 *               readlink, link, unlink, rmdir, rename, readdir;
 *   fs_file.c   open files: open, create, read, write, flush, fsync,
 *               release, truncation, and the whole-file buffer of a handle
 *               (which writes are buffered, which go write-through);
 *   fs_attr.c   getattr, setattr, statfs;
 *   fs_open.c   what the mount holds open, reported so that an unlinked
 *               file lives until its last close on any node;
 *   fs_ctl.c    the control view, MOUNT/.hstore/status;
 *   fs_cache.c  the kernel's attribute cache, kept linearizable;
 *   fs_kv.c     the kv operations themselves and the sessions they run in.
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
 * linearizable read: under this node's read lease, from its own state on the
 * calling thread; otherwise ReadIndex on the leader, then wait until this
 * node has applied that index.  Every change is one replicated command,
 * committed on a majority and applied here before the system call returns;
 * commands carry an exactly-once (client id, seq) pair so a retry inside the
 * deadline never applies twice.  The kernel caches attributes only under the
 * lease and forgets every changed inode before the change can be seen
 * (fs_cache.c); names are not cached (entry timeout 0, no negative
 * lookups), every file is direct_io (no page cache) except a regular file
 * opened read-write (see fs_file.c open_common: it can then be mapped
 * MAP_SHARED, and read() revalidates it), the writeback cache is never
 * enabled.
 * Timestamps are stamped by the proposing node into the command, and the
 * state machine makes them strictly increase, so every node reports the same
 * attributes and an inode's ctime is its version.
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
 */
#include "fs/fs_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/net_util.h"

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
    /* Never: stale sizes and corrupt appends across nodes (fuse-notes §3). */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    /* O_TRUNC comes to open()/create(), so the truncation is one command
     * by inode (or part of the CREATE) whose reply gives the version the
     * whole-file PUT_IF starts from. */
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    /* Names are cached only if the kernel can drop them all at once. */
    fs_cache_names_probe(userdata, conn->proto_minor);
}

static const struct fuse_lowlevel_ops ll_ops = {
    .init = ll_init,
    .lookup = fs_ll_lookup,
    .forget = fs_ll_forget,
    .forget_multi = fs_ll_forget_multi,
    .getattr = fs_ll_getattr,
    .setattr = fs_ll_setattr,
    .readlink = fs_ll_readlink,
    .mknod = fs_ll_mknod,
    .mkdir = fs_ll_mkdir,
    .unlink = fs_ll_unlink,
    .rmdir = fs_ll_rmdir,
    .symlink = fs_ll_symlink,
    .rename = fs_ll_rename,
    .link = fs_ll_link,
    .open = fs_ll_open,
    .read = fs_ll_read,
    .write = fs_ll_write,
    .flush = fs_ll_flush,
    .release = fs_ll_release,
    .fsync = fs_ll_fsync,
    .opendir = fs_ll_opendir,
    .readdir = fs_ll_readdir,
    .releasedir = fs_ll_releasedir,
    .fsyncdir = fs_ll_fsyncdir,
    .statfs = fs_ll_statfs,
    .create = fs_ll_create,
};

void fs_options_init(fs_options *o)
{
    memset(o, 0, sizeof *o);
    o->uid = getuid();
    o->gid = getgid();
    o->allow_other = geteuid() == 0;
    o->attr_cache_ms = FS_ATTR_CACHE_MS;
}

/* Detaches whatever is mounted at path (lazily: a busy mount never blocks
 * it).  Root uses umount2 directly, others go through fusermount3. */
static int detach_mount(const char *path)
{
    if (umount2(path, MNT_DETACH) == 0)
        return 0;
    if (errno == EINVAL || errno == ENOENT)
        return -1; /* not a mount point */
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

/* Undoes the octal escapes of /proc/self/mountinfo (\040 for a space ...). */
static void unescape_mount(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

int fs_fuse_mounts_at(const char *path, unsigned *maj, unsigned *min)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (f == NULL)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0) {
        /* id parent major:minor root mountpoint ... - fstype ... */
        bool fuse = strstr(line, " - fuse") != NULL;
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        unsigned ma = 0, mi = 0;
        for (int i = 0; tok != NULL && i < 4; i++) {
            if (i == 2 && sscanf(tok, "%u:%u", &ma, &mi) != 2)
                break;
            tok = strtok_r(NULL, " ", &save);
        }
        if (!fuse || tok == NULL)
            continue;
        unescape_mount(tok);
        if (strcmp(tok, path) != 0)
            continue;
        n++;
        if (maj != NULL)
            *maj = ma;
        if (min != NULL)
            *min = mi;
    }
    free(line);
    fclose(f);
    return n;
}

/* Detaches dead mounts (ENOTCONN) at path, top first, until `keep` FUSE
 * mounts are left there or the top one is not dead.  Each detached one
 * shows the next dead one, never the directory under them. */
static void detach_dead(const char *path, int keep)
{
    struct stat st;
    for (int n = fs_fuse_mounts_at(path, NULL, NULL); n > keep; n--)
        if (stat(path, &st) == 0 || errno != ENOTCONN || detach_mount(path) != 0)
            break;
}

/* A node killed with its mount up leaves a dead mount.  As root, the new
 * mount goes on top of it (mount(2) itself, then libfuse takes the device
 * through "/dev/fd/N"), so the path never shows the directory under it, not
 * even for an instant; the dead ones of earlier restarts but one are
 * detached first (so they do not pile up), the last when this mount stops
 * (fs_stop).  0, or -1 (then the caller detaches the dead mount first and
 * mounts through libfuse: not root, or mount(2) refused). */
static int stack_mount(fs_mount *m)
{
    if (geteuid() != 0)
        return -1;
    detach_dead(m->mountpoint, 1);
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char data[256];
    snprintf(data, sizeof data, "fd=%d,rootmode=40000,user_id=%u,group_id=%u,default_permissions%s",
             fd, (unsigned)getuid(), (unsigned)getgid(), m->opt.allow_other ? ",allow_other" : "");
    if (mount("hstore", m->mountpoint, "fuse.hstore", MS_NOSUID | MS_NODEV, data) != 0) {
        close(fd);
        return -1;
    }
    char dev[32];
    snprintf(dev, sizeof dev, "/dev/fd/%d", fd);
    if (fuse_session_mount(m->se, dev) != 0) {
        umount2(m->mountpoint, MNT_DETACH);
        close(fd);
        return -1;
    }
    return 0;
}

/* Finds the device numbers of our mount, the newest at its path. */
static void find_mount_dev(fs_mount *m)
{
    unsigned maj, min;
    if (fs_fuse_mounts_at(m->mountpoint, &maj, &min) > 0) {
        m->dev_major = maj;
        m->dev_minor = min;
        m->have_dev = true;
    }
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
        fuse_loop_cfg_set_max_threads(cfg,
                                      (unsigned)(m->opt.max_threads > 0 ? m->opt.max_threads : 16));
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
    fs_cache_stop(m); /* the node calls into the session no more */
    if (m->se != NULL) {
        if (m->mounted && m->stacked)
            detach_mount(m->mountpoint); /* libfuse knows it as /dev/fd/N */
        else if (m->mounted)
            fuse_session_unmount(m->se);
        fuse_session_destroy(m->se);
    }
    /* Handles the kernel never released (open files at unmount). */
    while (m->handles.next != &m->handles)
        fs_handle_free(m, m->handles.next);
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
    pthread_mutex_destroy(&m->cache.mu);
    free(m);
}

bool fs_resolve_parent(const char *path, char *out, size_t cap)
{
    char parent[PATH_MAX], rp[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", path);
    size_t l = strlen(parent);
    while (l > 1 && parent[l - 1] == '/')
        parent[--l] = '\0';
    char *slash = strrchr(parent, '/');
    const char *name = slash ? slash + 1 : parent;
    if (slash == parent) {
        snprintf(rp, sizeof rp, "/");
    } else if (slash != NULL) {
        *slash = '\0';
        if (realpath(parent, rp) == NULL)
            return false;
    } else if (getcwd(rp, sizeof rp) == NULL) {
        return false;
    }
    if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        errno = EINVAL;
        return false;
    }
    int n = snprintf(out, cap, "%s%s%s", rp, strcmp(rp, "/") == 0 ? "" : "/", name);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return false;
    }
    return true;
}

fs_mount *fs_start(const fs_backend *b, const char *mountpoint, const fs_options *opt, char *err,
                   size_t errlen)
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
    pthread_mutex_init(&m->cache.mu, NULL);
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
     * endpoint is not connected").  As root the new mount goes on top of
     * it (stack_mount).  Otherwise it is detached right before the new
     * mount goes on top, everything else made ready first, because in
     * between the bare directory under it shows, and whatever a program
     * writes there lands on the local disk, not in the store. */
    struct stat st;
    bool stale = stat(mountpoint, &st) != 0 && errno == ENOTCONN;
    if (stale ? !fs_resolve_parent(mountpoint, m->mountpoint, sizeof m->mountpoint)
              : realpath(mountpoint, m->mountpoint) == NULL) {
        snprintf(err, errlen, "mount point %s: %s", mountpoint, strerror(errno));
        mount_free(m);
        return NULL;
    }
    if (!stale && (stat(m->mountpoint, &st) != 0 || !S_ISDIR(st.st_mode))) {
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
    char *argv[] = {"hstore", "-o", o, m->opt.debug ? "-d" : NULL, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(m->opt.debug ? 4 : 3, argv);
    struct fuse_lowlevel_ops ops = ll_ops;
    fs_timed_ops(&ops);
    m->se = fuse_session_new(&args, &ops, sizeof ops, m);
    fuse_opt_free_args(&args);
    if (m->se == NULL) {
        snprintf(err, errlen, "fuse_session_new failed (bad mount options?)");
        mount_free(m);
        return NULL;
    }
    if (stale && stack_mount(m) == 0) {
        m->stacked = true;
    } else if (stale) {
        detach_mount(m->mountpoint);
    }
    if (!m->stacked && fuse_session_mount(m->se, m->mountpoint) != 0) {
        snprintf(err, errlen,
                 "cannot mount at %s (is /dev/fuse usable, the directory "
                 "empty and not already mounted?)",
                 m->mountpoint);
        mount_free(m);
        return NULL;
    }
    m->mounted = true;
    find_mount_dev(m);
    fs_cache_start(m);
    /* From now on this node reports the inodes open here (kv.h "Open files"). */
    b->ops->set_open_files(b->ctx, fs_open_files, m);
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
         * the loop's device reads then fail with ENODEV.  Done here, it is
         * not done again (a second unmount of the path would take away
         * whatever is mounted under it). */
        if (detach_mount(m->mountpoint) == 0) {
            m->mounted = false;
            if (m->stacked)
                detach_dead(m->mountpoint, 0); /* the one left under it */
        }
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
