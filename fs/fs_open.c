/*
 * fs_open.c — what the mount holds open: its handles (open file
 * descriptions), the inodes they have open, the opens in progress and the
 * recent lookups, which fs_open_files() lists to the backend.
 *
 * Open files live until their last close on any node (POSIX), whoever
 * unlinks or renames over them: the state machine keeps an inode that lost
 * its last name as an orphan until no node reports it open (kv.h "Open
 * files").  This mount lists the inodes it has open to the backend
 * (fs_backend.h set_open_files), which reports them when orphans need
 * deciding; an open in progress holds back what a report covers, from the
 * moment before its STAT, so a file cannot be freed between its lookup and
 * its registration; a lookup of a file holds coverage back the same way for
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
 */
#include "fs/fs_internal.h"
#include "node/hotbuf.h"

#include <stdlib.h>

fs_handle *fs_handle_new(fs_mount *m, fs_handle_kind kind)
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
int fs_handle_set_ino(fs_mount *m, fs_handle *h, uint64_t ino)
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
    r->nwrite += h->writable;
    if (h->writable)
        atomic_fetch_add(&m->nwriters, 1);
    h->ino = ino;
    pthread_mutex_unlock(&m->hmu);
    return 0;
}

/* The last close of an inode drops it from the list the node reports; if it
 * is an orphan, the node's next report lets the state machine free it. */
void fs_handle_free(fs_mount *m, fs_handle *h)
{
    pthread_mutex_lock(&m->hmu);
    h->prev->next = h->next;
    h->next->prev = h->prev;
    while (h->pins > 0) /* another thread is committing its content */
        pthread_cond_wait(&m->pincv, &m->hmu);
    if (atomic_load(&h->pending))
        atomic_fetch_sub(&m->npending, 1);
    if (h->ino != 0) {
        fs_iref **pp = &m->irefs;
        while (*pp != NULL && (*pp)->ino != h->ino)
            pp = &(*pp)->next;
        if (*pp != NULL && h->writable) {
            (*pp)->nwrite--;
            atomic_fetch_sub(&m->nwriters, 1);
        }
        if (*pp != NULL && --(*pp)->nopen == 0) {
            fs_iref *r = *pp;
            *pp = r->next;
            free(r);
        }
    }
    pthread_mutex_unlock(&m->hmu);
    if (m->kv_ready)
        fs_kv_held_drop(&m->kv, &h->held);
    fs_stream_join(h);
    pthread_mutex_destroy(&h->mu);
    h->magic = 0;
    hotbuf_free(h->ship_buf);
    hotbuf_free(h->buf);
    free(h->text);
    free(h);
}

bool fs_open_for_write(fs_mount *m, uint64_t ino)
{
    if (atomic_load(&m->nwriters) == 0)
        return false; /* the common case, on every cached reply: no lock */
    bool w = false;
    pthread_mutex_lock(&m->hmu);
    for (const fs_iref *r = m->irefs; r != NULL && !w; r = r->next)
        w = r->ino == ino && r->nwrite > 0;
    pthread_mutex_unlock(&m->hmu);
    return w;
}

void fs_opening_add(fs_mount *m, fs_opening *o)
{
    pthread_mutex_lock(&m->hmu);
    o->since = m->b.ops->applied_index(m->b.ctx);
    o->next = m->opening;
    m->opening = o;
    pthread_mutex_unlock(&m->hmu);
}

/* An open in progress (see the top of this file).  0, or -EIO when this
 * node's reports are not in force within the op timeout. */
int fs_opening_begin(fs_mount *m, fs_opening *o)
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
    fs_opening_add(m, o);
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

void fs_opening_end(fs_mount *m, fs_opening *o)
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

/* Drops lookups whose hold ended.  Called with hmu held. */
static void lookups_expire(fs_mount *m, uint64_t now)
{
    size_t j = 0;
    for (size_t i = 0; i < m->nlookups; i++)
        if (now < m->lookups[i].until_ms)
            m->lookups[j++] = m->lookups[i];
    m->nlookups = j;
}

/* The lookup o (in the opens in progress since before its STAT) ends; when it
 * found non-directory ino (0: nothing to note), it becomes a recent lookup in
 * the same step, so no report sees neither.  cached_ms: how long the kernel
 * may keep the name from this lookup. */
void fs_lookup_note(fs_mount *m, fs_opening *o, uint64_t ino, uint64_t cached_ms)
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
            return; /* an open of it may then get ESTALE and look again */
        }
        m->nlookups++;
        m->lookups[i].ino = ino;
        m->lookups[i].since = since;
        m->lookups[i].until_ms = 0;
    } else if (since > m->lookups[i].since) {
        m->lookups[i].since = since; /* the newest lookup bounds every open */
    }
    /* A name the kernel caches leads to opens without a lookup until it
     * expires: the hold runs FS_LOOKUP_HOLD_MS past that. */
    uint64_t until = now + cached_ms + FS_LOOKUP_HOLD_MS;
    if (until > m->lookups[i].until_ms)
        m->lookups[i].until_ms = until;
    pthread_mutex_unlock(&m->hmu);
}

/* fs_backend_open_fn: the inodes open here, and the oldest open in progress or
 * recent lookup. */
size_t fs_open_files(void *arg, uint64_t *inos, size_t max, uint64_t *since)
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

/* Whether ino had a lookup here less than FS_LOOKUP_HOLD_MS ago; if so,
 * *since (an open in progress) is lowered to that lookup's, since reports
 * have not covered an unlink made after it. */
bool fs_lookup_recent(fs_mount *m, uint64_t ino, uint64_t *since)
{
    bool ok = false;
    pthread_mutex_lock(&m->hmu);
    lookups_expire(m, mono_ms());
    for (size_t i = 0; i < m->nlookups && !ok; i++)
        if (m->lookups[i].ino == ino) {
            ok = true;
            if (m->lookups[i].since < *since)
                *since = m->lookups[i].since;
        }
    pthread_mutex_unlock(&m->hmu);
    return ok;
}
