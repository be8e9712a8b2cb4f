/*
 * kv_snapshot_read.c — the snapshot codec's reader (kv.h "Snapshots"; the
 * format is described in kv_snapshot.c): the state is rebuilt aside, step
 * by step, with every invariant checked, and replaces the live state only
 * when the whole snapshot is valid.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftkv/byte.h"
#include "raftkv/kv.h"
#include "raftkv/kv_internal.h"

/* The stream a snapshot is read from: sr_get fills bytes from it (zeros
 * once a read failed, so steps check `bad` once); integers are decoded with
 * byte.h. */
typedef struct snap_r {
    kv_read_fn fn;
    void *arg;
    bool bad;
} snap_r;

static void sr_get(snap_r *r, void *b, size_t n)
{
    if (r->bad) {
        memset(b, 0, n);
        return;
    }
    if (n && r->fn(r->arg, b, n) != 0) {
        r->bad = true;
        memset(b, 0, n);
    }
}

static uint8_t sr_u8(snap_r *r)
{
    uint8_t b[1];
    sr_get(r, b, 1);
    return b[0];
}

static uint32_t sr_u32(snap_r *r)
{
    uint8_t b[4];
    sr_get(r, b, 4);
    return byte_get32(b);
}

static uint64_t sr_u64(snap_r *r)
{
    uint8_t b[8];
    sr_get(r, b, 8);
    return byte_get64(b);
}

static kv_inode *find_sorted(kv_inode **a, size_t n, uint64_t ino)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid]->ino == ino)
            return a[mid];
        if (a[mid]->ino < ino)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool valid_type(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFDIR:
    case S_IFLNK:
    case S_IFIFO:
    case S_IFCHR:
    case S_IFBLK:
    case S_IFSOCK: return true;
    default: return false;
    }
}

static int cmp_ref(const void *a, const void *b)
{
    const kv_ref *x = a, *y = b;
    if (x->holder != y->holder)
        return x->holder < y->holder ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Reads one regular file's chunks into n. */
static bool snap_read_file(snap_r *r, kv *k, kv_inode *n, uint64_t size)
{
    uint64_t nc = nchunks(size);
    int64_t prev = -1;
    for (;;) {
        uint32_t idx = sr_u32(r);
        if (r->bad)
            return false;
        if (idx == NO_CHUNK)
            break;
        if ((int64_t)idx <= prev || idx >= nc)
            return false;
        prev = idx;
        uint64_t L = size - (uint64_t)idx * CH < CH ? size - (uint64_t)idx * CH : CH;
        if (size <= CH) {
            n->u.flat = malloc((size_t)L);
            if (!n->u.flat)
                return false;
            n->cap = (uint32_t)L;
            k->data_alloc += L;
            sr_get(r, n->u.flat, (size_t)L);
        } else {
            if (!n->chunked) { /* a file past one chunk is always chunked here */
                n->u.chunks = calloc(1, sizeof *n->u.chunks);
                if (!n->u.chunks)
                    return false;
                n->cap = 1;
                n->chunked = 1;
                k->meta_alloc += sizeof *n->u.chunks;
            }
            if (data_prepare(k, n, (uint64_t)idx * CH, (uint64_t)idx * CH + L) != 0)
                return false;
            sr_get(r, n->u.chunks[idx], (size_t)L);
        }
        if (r->bad)
            return false;
    }
    n->size = size;
    k->bytes_used += size;
    return true;
}

static bool snap_read_uploads(snap_r *r, kv *n)
{
    uint64_t cnt = sr_u64(r);
    if (r->bad || cnt == 0 || cnt > KV_UPLOADS_MAX)
        return false;
    uint64_t saved_limit = n->lim.max_total_bytes;
    n->lim.max_total_bytes = 0; /* what was staged stays staged */
    bool ok = true;
    for (uint64_t i = 0; i < cnt && ok; i++) {
        kv_op op;
        memset(&op, 0, sizeof op);
        op.upload = sr_u64(r);
        op.len = sr_u64(r);
        uint64_t got = sr_u64(r);
        int64_t last = (int64_t)sr_u64(r);
        uint64_t size = sr_u64(r);
        kv_upload *u;
        ok = !r->bad && op.len <= n->lim.max_file_size && size <= n->lim.max_file_size &&
             got <= size && size > 0 && (!op.len || size <= op.len) &&
             !upload_find(n, op.upload, NULL) && upload_start(n, &op, &u) == 0;
        if (!ok)
            break;
        u->last_time = last;
        uint64_t np = upload_nparts(size);
        ok = upload_bits(u, np) == 0;
        if (!ok)
            break;
        sr_get(r, u->have, (size_t)((np + 7) / 8));
        /* the part that ends the staged bytes is there, none past it */
        ok = !r->bad && (u->have[(np - 1) / 8] & (1u << ((np - 1) % 8))) &&
             !(np % 8 && (u->have[np / 8] >> (np % 8)));
        if (!ok)
            break;
        u->got = got;
        if (!op.len) {
            u->reserved = got;
            n->staged += got;
        }
        ok = snap_read_file(r, n, u->data, size);
        if (ok)
            n->bytes_used -= size; /* staged, not stored */
    }
    n->lim.max_total_bytes = saved_limit;
    return ok;
}

/* What kv_snapshot_read builds as it goes: the new state, aside from the
 * live one, and the inodes in the order read (ascending number). */
typedef struct snap_in {
    snap_r r;
    kv *n;
    uint32_t version;
    kv_inode **list;
    uint64_t *aux; /* dirs: entries expected; others: links seen */
    size_t cnt, lcap;
    uint64_t ndirs;
} snap_in;

/* Magic, version, applied index, times, limits (version 3), inode counter. */
static bool snap_read_header(snap_in *s)
{
    snap_r *r = &s->r;
    kv *n = s->n;
    if (sr_u32(r) != SNAP_MAGIC)
        return false;
    s->version = sr_u32(r);
    if (r->bad || s->version < 1 || s->version > SNAP_VERSION)
        return false;
    n->applied = sr_u64(r);
    n->last_time = (int64_t)sr_u64(r);
    n->sclock = n->last_time;
    if (s->version >= 3) {
        n->sclock = (int64_t)sr_u64(r);
        uint8_t set = sr_u8(r);
        n->lim.max_file_size = sr_u64(r);
        n->lim.max_total_bytes = sr_u64(r);
        n->lim.max_inodes = sr_u64(r);
        if (r->bad || set > 1 || n->lim.max_file_size == 0 ||
            n->lim.max_file_size > KV_MAX_FILE_SIZE_LIMIT || n->sclock > n->last_time)
            return false;
        n->lim_set = set;
    }
    n->next_ino = sr_u64(r);
    return !r->bad;
}

/* Room for one more inode in s->list and s->aux. */
static bool snap_list_room(snap_in *s)
{
    if (s->cnt < s->lcap)
        return true;
    size_t nc = s->lcap ? s->lcap * 2 : 256;
    kv_inode **nl = realloc(s->list, nc * sizeof *nl);
    uint64_t *na = realloc(s->aux, nc * sizeof *na);
    if (nl)
        s->list = nl;
    if (na)
        s->aux = na;
    if (!nl || !na)
        return false;
    s->lcap = nc;
    return true;
}

/* One inode: attributes, then its data (regular file, symlink). */
static bool snap_read_inode(snap_in *s)
{
    snap_r *r = &s->r;
    kv *n = s->n;
    kv_inode t;
    memset(&t, 0, sizeof t);
    t.ino = sr_u64(r);
    t.mode = sr_u32(r);
    t.uid = sr_u32(r);
    t.gid = sr_u32(r);
    t.nlink = sr_u32(r);
    uint64_t rdev = sr_u64(r);
    uint64_t size = sr_u64(r);
    t.atime = (int64_t)sr_u64(r);
    t.mtime = (int64_t)sr_u64(r);
    t.ctime = (int64_t)sr_u64(r);
    if (r->bad || !valid_type(t.mode) || (t.mode & ~(uint32_t)(S_IFMT | 07777)))
        return false;
    if (t.ino == 0 || t.ino >= n->next_ino)
        return false;
    if (s->cnt ? t.ino <= s->list[s->cnt - 1]->ino : (t.ino != KV_ROOT_INO || !S_ISDIR(t.mode)))
        return false;
    if (rdev && !S_ISCHR(t.mode) && !S_ISBLK(t.mode))
        return false;
    if (!snap_list_room(s))
        return false;
    kv_inode *x = calloc(1, sizeof *x);
    if (!x)
        return false;
    *x = t;
    if (itab_put(n, x) != 0) {
        free(x);
        return false;
    }
    n->meta_alloc += sizeof *x;
    s->list[s->cnt] = x;
    s->aux[s->cnt] = 0;
    s->cnt++;
    if (S_ISDIR(t.mode)) {
        n->ndirs++;
        s->aux[s->cnt - 1] = size; /* expected entry count, checked below */
    } else if (S_ISREG(t.mode)) {
        n->nfiles++;
        if (!snap_read_file(r, n, x, size))
            return false;
    } else if (S_ISLNK(t.mode)) {
        if (size == 0 || size > KV_PATH_MAX)
            return false;
        x->u.flat = malloc((size_t)size);
        if (!x->u.flat)
            return false;
        x->cap = (uint32_t)size;
        x->size = size;
        n->data_alloc += size;
        n->bytes_used += size;
        sr_get(r, x->u.flat, (size_t)size);
        if (r->bad || memchr(x->u.flat, 0, (size_t)size))
            return false;
    } else {
        if (size)
            return false;
        x->x = rdev;
    }
    return true;
}

/* Every inode, in ascending number from the root. */
static bool snap_read_inodes(snap_in *s)
{
    uint64_t ninodes = sr_u64(&s->r);
    if (s->r.bad || ninodes == 0 || s->n->next_ino <= KV_ROOT_INO)
        return false;
    for (uint64_t i = 0; i < ninodes; i++)
        if (!snap_read_inode(s))
            return false;
    s->n->root = s->list[0];
    s->n->root->x = KV_ROOT_INO;
    return true;
}

/* One directory's entries: names checked, children known, one parent for a
 * directory. */
static bool snap_read_entries(snap_in *s, kv_inode *d, uint64_t count)
{
    snap_r *r = &s->r;
    kv *n = s->n;
    for (uint64_t j = 0; j < count; j++) {
        char name[KV_NAME_MAX + 1];
        uint8_t nl = sr_u8(r);
        sr_get(r, name, nl);
        uint64_t cino = sr_u64(r);
        if (r->bad || nl == 0 || memchr(name, '/', nl) || memchr(name, 0, nl))
            return false;
        if ((nl == 1 && name[0] == '.') || (nl == 2 && name[0] == '.' && name[1] == '.'))
            return false;
        kv_inode *c = find_sorted(s->list, s->cnt, cino);
        if (!c || c == n->root || dir_find(d, name, nl))
            return false;
        kv_dentry *e = dentry_new(n, name, nl, c);
        if (!e)
            return false;
        if (dir_insert(n, d, e) != 0) {
            dentry_free(n, e);
            return false;
        }
        if (is_dir(c)) {
            if (c->x)
                return false; /* a directory has one parent */
            c->x = d->ino;
        }
    }
    return true;
}

/* Every directory, in ascending number, with its entries. */
static bool snap_read_dirs(snap_in *s)
{
    snap_r *r = &s->r;
    s->ndirs = sr_u64(r);
    if (r->bad || s->ndirs != s->n->ndirs)
        return false;
    uint64_t prev_dir = 0;
    for (uint64_t i = 0; i < s->ndirs; i++) {
        uint64_t dino = sr_u64(r);
        uint64_t count = sr_u64(r);
        kv_inode *d = find_sorted(s->list, s->cnt, dino);
        if (r->bad || dino <= prev_dir || !d || !is_dir(d))
            return false;
        prev_dir = dino;
        if (count > s->n->icount)
            return false;
        if (!snap_read_entries(s, d, count))
            return false;
    }
    return true;
}

/* Counts: entries per directory as announced, a directory's nlink from its
 * subdirectories, a non-directory's nlink from the entries naming it. */
static bool snap_check_counts(snap_in *s)
{
    kv_inode **list = s->list;
    uint64_t *aux = s->aux;
    for (size_t i = 0; i < s->cnt; i++) {
        kv_inode *d = list[i];
        if (!is_dir(d))
            continue;
        if (aux[i] != d->size)
            return false;
        uint64_t sub = 0;
        for (uint32_t j = 0; j < d->cap; j++) {
            kv_dentry *e = d->u.slots[j];
            if (!e)
                continue;
            if (is_dir(e->node)) {
                sub++;
            } else {
                kv_inode *c = e->node;
                size_t lo = 0, hi = s->cnt; /* index of c in list */
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    if (list[mid]->ino < c->ino)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                aux[lo]++;
            }
        }
        if (d->nlink != 2 + sub && !(d->nlink == 0 && d->x == 0 && d != s->n->root))
            return false;
        if (d->nlink == 0 && (d->size || sub))
            return false;
    }
    for (size_t i = 0; i < s->cnt; i++)
        if (!is_dir(list[i]) && aux[i] != list[i]->nlink)
            return false;
    return true;
}

/* Every linked directory is reachable from the root (no cycles). */
static bool snap_check_tree(snap_in *s)
{
    uint64_t linked = 0, seen = 0, ndirs = s->ndirs;
    for (size_t i = 0; i < s->cnt; i++)
        if (is_dir(s->list[i]) && s->list[i]->nlink)
            linked++;
    kv_inode **stack = malloc((ndirs ? ndirs : 1) * sizeof *stack);
    if (!stack)
        return false;
    size_t sp = 0;
    stack[sp++] = s->n->root;
    while (sp) {
        kv_inode *d = stack[--sp];
        seen++;
        for (uint32_t j = 0; j < d->cap; j++) {
            kv_dentry *e = d->u.slots[j];
            if (e && is_dir(e->node)) {
                if (sp >= ndirs) {
                    free(stack);
                    return false;
                }
                stack[sp++] = e->node;
            }
        }
    }
    free(stack);
    return seen == linked;
}

/* Sessions, in expiry order. */
static bool snap_read_sessions(snap_in *s)
{
    snap_r *r = &s->r;
    kv *n = s->n;
    uint64_t nsess = sr_u64(r);
    if (r->bad || nsess > KV_SESSION_MAX)
        return false;
    for (uint64_t i = 0; i < nsess; i++) {
        kv_session *x = calloc(1, sizeof *x);
        if (!x)
            return false;
        x->client = sr_u64(r);
        x->seq = sr_u64(r);
        x->last_time = (int64_t)sr_u64(r);
        uint8_t has = sr_u8(r);
        if (r->bad || x->client == 0 || has > 1) {
            free(x);
            return false;
        }
        if (has) {
            uint32_t l = sr_u32(r);
            if (r->bad || l > KV_SESSION_REPLY_MAX) {
                free(x);
                return false;
            }
            x->reply = malloc(l ? l : 1);
            if (!x->reply) {
                free(x);
                return false;
            }
            x->reply_len = l;
            sr_get(r, x->reply, l);
        }
        if (r->bad || sess_tab_put(n, x) != 0) {
            free(x->reply);
            free(x);
            return false;
        }
        sess_list_append(n, x);
    }
    return true;
}

/* Open references, in table order; no (holder, inode) twice. */
static bool snap_read_refs(snap_in *s)
{
    snap_r *r = &s->r;
    kv *n = s->n;
    uint64_t nrefs = sr_u64(r);
    if (r->bad || nrefs > KV_REFS_MAX)
        return false;
    if (nrefs) {
        n->refs = malloc(nrefs * sizeof *n->refs);
        if (!n->refs)
            return false;
        n->refcap = (size_t)nrefs;
    }
    for (uint64_t i = 0; i < nrefs; i++) {
        kv_ref *f = &n->refs[n->nrefs];
        f->holder = sr_u64(r);
        f->ino = sr_u64(r);
        f->count = sr_u32(r);
        kv_inode *x = itab_get(n, f->ino);
        if (r->bad || !x || f->count == 0 || x->refs > UINT32_MAX - f->count)
            return false;
        x->refs += f->count;
        n->nrefs++;
    }
    if (nrefs) {
        kv_ref *c = malloc(nrefs * sizeof *c);
        if (!c)
            return false;
        memcpy(c, n->refs, nrefs * sizeof *c);
        qsort(c, (size_t)nrefs, sizeof *c, cmp_ref);
        bool dup = false;
        for (uint64_t i = 1; i < nrefs; i++)
            if (c[i].holder == c[i - 1].holder && c[i].ino == c[i - 1].ino)
                dup = true;
        free(c);
        if (dup)
            return false;
    }
    return true;
}

/* Holders' reports (version 2 on), by ascending id, each list ascending. */
static bool snap_read_holders(snap_in *s)
{
    snap_r *r = &s->r;
    kv *n = s->n;
    uint64_t nh = sr_u64(r);
    if (r->bad || nh > KV_HOLDERS_MAX)
        return false;
    if (nh) {
        n->holders = calloc((size_t)nh, sizeof *n->holders);
        if (!n->holders)
            return false;
    }
    for (uint64_t i = 0; i < nh; i++) {
        kv_holder *h = &n->holders[i];
        h->id = sr_u64(r);
        h->covered = sr_u64(r);
        h->time = (int64_t)sr_u64(r);
        uint64_t cnt_h = sr_u64(r);
        if (r->bad || h->id == 0 || (i && h->id <= n->holders[i - 1].id) || cnt_h > KV_HOLD_MAX)
            return false;
        n->nholders++;
        if (cnt_h) {
            h->held = malloc((size_t)cnt_h * sizeof *h->held);
            if (!h->held)
                return false;
        }
        for (uint64_t j = 0; j < cnt_h; j++) {
            h->held[j] = sr_u64(r);
            if (r->bad || (j && h->held[j] <= h->held[j - 1]))
                return false;
            h->n++;
        }
    }
    return true;
}

/* Orphans (version 2 on), in unlink order: unlinked non-directories. */
static bool snap_read_orphans(snap_in *s)
{
    snap_r *r = &s->r;
    kv *n = s->n;
    uint64_t no = sr_u64(r);
    if (r->bad || no > n->icount)
        return false;
    if (no) {
        n->orph = malloc((size_t)no * sizeof *n->orph);
        if (!n->orph)
            return false;
        n->orphcap = (size_t)no;
    }
    for (uint64_t i = 0; i < no; i++) {
        kv_orphan o;
        o.ino = sr_u64(r);
        o.at = sr_u64(r);
        kv_inode *x = itab_get(n, o.ino);
        if (r->bad || !x || x->nlink || is_dir(x) || x->held || o.at > n->applied ||
            (i && o.at < n->orph[i - 1].at))
            return false;
        x->held = 1;
        n->orph[n->norph++] = o;
    }
    return true;
}

/* An unlinked inode must be held open (a reference or an orphan entry). */
static bool snap_check_unlinked(snap_in *s)
{
    for (size_t i = 0; i < s->cnt; i++) {
        if (s->list[i]->nlink)
            continue;
        if (!s->list[i]->refs && !s->list[i]->held)
            return false;
        s->n->norphans++;
    }
    return true;
}

/* The staged uploads if any, then the trailer. */
static bool snap_read_tail(snap_in *s)
{
    uint32_t tail = sr_u32(&s->r);
    if (tail == SNAP_UPLOADS) {
        if (!snap_read_uploads(&s->r, s->n))
            return false;
        tail = sr_u32(&s->r);
    }
    return tail == SNAP_END && !s->r.bad;
}

int kv_snapshot_read(kv *k, kv_read_fn fn, void *arg)
{
    snap_in s;
    memset(&s, 0, sizeof s);
    s.r.fn = fn;
    s.r.arg = arg;
    s.n = kv_alloc(&k->lim);
    if (!s.n)
        return -1;
    bool ok = snap_read_header(&s) && snap_read_inodes(&s) && snap_read_dirs(&s) &&
              snap_check_counts(&s) && snap_check_tree(&s) && snap_read_sessions(&s) &&
              snap_read_refs(&s) &&
              (s.version < 2 || (snap_read_holders(&s) && snap_read_orphans(&s))) &&
              snap_check_unlinked(&s) && snap_read_tail(&s);
    free(s.list);
    free(s.aux);
    if (!ok) {
        kv_free(s.n);
        return -1;
    }
    /* swap the new state in, keep k's identity and limits */
    kv tmp = *k;
    *k = *s.n;
    *s.n = tmp;
    kv_free(s.n);
    k->n_touched = 0;
    k->touched_all = true;
    return 0;
}

typedef struct buf_rd {
    const uint8_t *p;
    size_t len, pos;
} buf_rd;

static int buf_read(void *arg, void *b, size_t n)
{
    buf_rd *r = arg;
    if (n > r->len - r->pos)
        return -1;
    memcpy(b, r->p + r->pos, n);
    r->pos += n;
    return 0;
}

int kv_snapshot_decode(kv *k, const uint8_t *buf, size_t len)
{
    if (!buf)
        return -1;
    buf_rd r = {buf, len, 0};
    kv *t = kv_alloc(&k->lim);
    if (!t)
        return -1;
    /* decode aside first so that trailing garbage leaves k untouched */
    t->root = NULL;
    if (kv_snapshot_read(t, buf_read, &r) != 0 || r.pos != r.len) {
        kv_free(t);
        return -1;
    }
    kv tmp = *k;
    *k = *t;
    *t = tmp;
    kv_free(t);
    return 0;
}
