/*
 * fs_cache.c — the kernel's attribute cache, kept linearizable.
 *
 * Without it every stat, every permission check of a directory on a path
 * walk and every read's size check is a request to this process.  With it
 * the kernel answers them itself, for a while, under three rules:
 *
 *   1. Only while this node holds a read lease (fs_backend lease_left_ms):
 *      until the lease ends nothing can become visible anywhere that this
 *      node has not applied.  A reply's attributes are cached for at most
 *      half of what is left of the lease, and opt.attr_cache_ms, so a node
 *      that is paused or cut off loses its cache before its lease ends and
 *      the kernel must ask it again (and wait for it).
 *   2. Every inode a command changes is forgotten when the node applies the
 *      command, before the command is answered and before the leader hears
 *      that this node applied it (node_set_changed): a change never becomes
 *      visible while the kernel still holds the attributes before it.  The
 *      call, fuse_lowlevel_notify_inval_inode with a negative offset, drops
 *      attributes only; it takes no lock that a request in progress could
 *      hold, so it cannot wait for a request that waits for this apply.
 *   3. A reply read before a change but cached after it is never kept: the
 *      kernel drops a reply to a request sent before an invalidation of its
 *      inode, and the changes this mount learns of between the start of a
 *      request and its reply (a generation counter, read at the start of
 *      every request: fs_cache_begin) make its reply uncached (timeout 0).
 *      The table of inodes given out (ino -> until when) lets the apply
 *      path skip inodes the kernel does not hold, and forget all of them
 *      at once when a snapshot replaced the whole state.
 *
 * Names are cached the same way, under the same lease and for as long as
 * the attributes of the inode they name, when the kernel can drop all of
 * them at once without a lock (FUSE_NOTIFY_INC_EPOCH, protocol 7.44, Linux
 * 6.16): every command that adds, removes or moves a directory entry bumps
 * the connection's epoch where rule 2 forgets attributes, and the kernel
 * looks up again every name cached before.  The kernel reads the epoch
 * before it sends a lookup, so a reply to a lookup sent before a change is
 * dropped as stale even if it arrives after it (rule 3 for names).  Only
 * lookups give cached names (a create's reply does not).  On older kernels
 * names are not cached (entry timeout 0): invalidating one name takes its
 * directory's lock, which a request in that directory may hold while it
 * waits for the visible index.  File content is not cached either
 * (read-only opens stay direct_io).  An inode open for
 * writing on this mount is never cached: its size moves with the handle's
 * pending content (fs_pending_size).
 */
#include "fs/fs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The kernel's fuse protocol (include/uapi/linux/fuse.h): a notification is
 * a fuse_out_header with unique 0 and the code in place of the error. */
#define NOTIFY_INC_EPOCH 8
#define NOTIFY_INC_EPOCH_MINOR 44
typedef struct notify_hdr {
    uint32_t len;
    int32_t code;
    uint64_t unique;
} notify_hdr;

#define FS_CACHE_MIN_MS 20 /* a lease with less left caches nothing */
#define FS_CACHE_SLOTS (1u << 16)

static _Thread_local uint64_t req_gen; /* the generation a request started in */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t slot_of(uint64_t ino)
{
    uint64_t x = ino * 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 48) & (FS_CACHE_SLOTS - 1);
}

/* The slot holding ino, or the empty one where it would go; NULL when the
 * table is full.  Under cache.mu. */
static fs_cache_slot *find(fs_mount *m, uint64_t ino)
{
    size_t i = slot_of(ino);
    for (size_t probes = 0; probes < FS_CACHE_SLOTS; probes++) {
        fs_cache_slot *s = &m->cache.tab[i];
        if (s->ino == ino || s->ino == 0)
            return s;
        i = (i + 1) & (FS_CACHE_SLOTS - 1);
    }
    return NULL;
}

/* Keeps only the entries still held by the kernel.  Under cache.mu. */
static void purge(fs_mount *m, uint64_t now)
{
    fs_cache_slot *old = m->cache.tab;
    fs_cache_slot *tab = calloc(FS_CACHE_SLOTS, sizeof *tab);
    if (tab == NULL)
        return;
    m->cache.tab = tab;
    m->cache.used = 0;
    for (size_t i = 0; i < FS_CACHE_SLOTS; i++) {
        if (old[i].ino == 0 || old[i].until <= now)
            continue;
        fs_cache_slot *s = find(m, old[i].ino);
        *s = old[i];
        m->cache.used++;
    }
    free(old);
}

/* Tells the kernel to drop every name it holds; false if it would not. */
static bool inc_epoch(fs_mount *m)
{
    notify_hdr h = {.len = sizeof h, .code = NOTIFY_INC_EPOCH, .unique = 0};
    for (;;) {
        ssize_t w = write(fuse_session_fd(m->se), &h, sizeof h);
        if (w == (ssize_t)sizeof h)
            return true;
        if (w < 0 && errno == EINTR)
            continue;
        return false;
    }
}

void fs_cache_names_probe(fs_mount *m, unsigned proto_minor)
{
    bool ok = m->cache.on && proto_minor >= NOTIFY_INC_EPOCH_MINOR && inc_epoch(m);
    atomic_store(&m->cache.names, ok);
}

bool fs_cache_names(const fs_mount *m)
{
    return atomic_load(&m->cache.names);
}

void fs_cache_forget_names(fs_mount *m)
{
    if (!atomic_load(&m->cache.names) || inc_epoch(m))
        return;
    /* The kernel refused what it accepted at INIT: names are not cached
     * from now on, and those cached expire within their timeout. */
    atomic_store(&m->cache.names, false);
    fprintf(stderr, "hstore fs: the kernel refused to drop its cached names: %s\n",
            strerror(errno));
}

/* Forgets the inodes listed (all: every one held), in the kernel too, and
 * with names every name the kernel holds. */
static void forget(fs_mount *m, const uint64_t *inos, size_t n, bool all, bool names)
{
    /* First the generation: a request that read the state before this
     * change and looks at the generation after it replies uncached. */
    atomic_fetch_add(&m->cache.gen, 1);
    if (names)
        fs_cache_forget_names(m);
    uint64_t now = mono_ms();
    uint64_t drop[64];
    size_t done = 0; /* inos[0, done) looked at */
    bool more = true;
    while (more) { /* in rounds of at most 64, without allocating */
        size_t nd = 0;
        pthread_mutex_lock(&m->cache.mu);
        if (all) {
            for (size_t i = 0; i < FS_CACHE_SLOTS && nd < 64; i++) {
                fs_cache_slot *s = &m->cache.tab[i];
                if (s->ino != 0 && s->until > now) {
                    drop[nd++] = s->ino;
                    s->until = 0;
                }
            }
            more = nd == 64;
        } else {
            for (; done < n && nd < 64; done++) {
                fs_cache_slot *s = find(m, inos[done]);
                if (s != NULL && s->ino == inos[done] && s->until > now) {
                    s->until = 0;
                    drop[nd++] = inos[done];
                }
            }
            more = done < n;
        }
        pthread_mutex_unlock(&m->cache.mu);
        for (size_t i = 0; i < nd; i++)
            fuse_lowlevel_notify_inval_inode(m->se, (fuse_ino_t)drop[i], -1, 0);
    }
}

static void on_changed(void *arg, const uint64_t *inos, size_t n, bool all, bool names)
{
    forget(arg, inos, n, all, names);
}

void fs_cache_start(fs_mount *m)
{
    if (m->opt.attr_cache_ms <= 0 || m->b.ops->set_changed == NULL ||
        m->b.ops->lease_left_ms == NULL)
        return;
    m->cache.tab = calloc(FS_CACHE_SLOTS, sizeof *m->cache.tab);
    if (m->cache.tab == NULL)
        return;
    m->b.ops->set_changed(m->b.ctx, on_changed, m);
    m->cache.on = true;
}

void fs_cache_stop(fs_mount *m)
{
    if (m->cache.on)
        m->b.ops->set_changed(m->b.ctx, NULL, NULL);
    m->cache.on = false;
    free(m->cache.tab);
    m->cache.tab = NULL;
}

void fs_cache_begin(fs_mount *m)
{
    req_gen = atomic_load(&m->cache.gen);
}

void fs_cache_forget(fs_mount *m, uint64_t ino)
{
    if (m->cache.on)
        forget(m, &ino, 1, false, false);
}

double fs_cache_timeout(fs_mount *m, uint64_t ino, uint64_t *t0)
{
    *t0 = 0;
    if (!m->cache.on || ino == 0 || is_ctl_ino(ino) || fs_open_for_write(m, ino))
        return 0;
    uint64_t left = m->b.ops->lease_left_ms(m->b.ctx);
    if (left < FS_CACHE_MIN_MS)
        return 0;
    uint64_t max = (uint64_t)m->opt.attr_cache_ms;
    uint64_t ms = left / 2 < max ? left / 2 : max;
    uint64_t now = mono_ms();
    bool kept = false;
    pthread_mutex_lock(&m->cache.mu);
    if (m->cache.used >= FS_CACHE_SLOTS / 2)
        purge(m, now);
    fs_cache_slot *s = find(m, ino);
    if (s != NULL && (s->ino == ino || m->cache.used < FS_CACHE_SLOTS / 2)) {
        if (s->ino == 0) {
            s->ino = ino;
            m->cache.used++;
        }
        /* The kernel counts from when the reply reaches it, at most ms
         * from now (fs_cache_replied), so it holds it for 2 ms at most. */
        if (s->until < now + 2 * ms)
            s->until = now + 2 * ms;
        kept = true;
    }
    pthread_mutex_unlock(&m->cache.mu);
    /* Recorded first, then the generation: a change applied after this
     * request read the state either finds the entry above and invalidates
     * it, or moved the generation before this look. */
    if (!kept || atomic_load(&m->cache.gen) != req_gen)
        return 0;
    *t0 = now;
    return (double)ms / 1000.0;
}

/* Whether a reply given at t0 for timeout seconds reached the kernel later
 * than that.  The lease had 2 * timeout left at t0: a reply that reached the
 * kernel within timeout expires there before the lease ends; one held up
 * longer (this thread was descheduled, or the process paused) must be
 * forgotten now. */
static bool held_up(double timeout, uint64_t t0)
{
    return timeout > 0 && mono_ms() - t0 > (uint64_t)(timeout * 1000.0);
}

void fs_cache_replied_name(fs_mount *m, uint64_t ino, double name_timeout, double timeout,
                           uint64_t t0)
{
    if (held_up(name_timeout, t0))
        fs_cache_forget_names(m);
    fs_cache_replied(m, ino, timeout, t0);
}

void fs_cache_replied(fs_mount *m, uint64_t ino, double timeout, uint64_t t0)
{
    if (held_up(timeout, t0))
        fs_cache_forget(m, ino);
}
