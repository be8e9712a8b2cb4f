/*
 * kv_namespace.c — the commands that change names and file contents (kv.h,
 * "Names" and the op table in kv_ops.h): path checks and resolution, then
 * PUT, APPEND, PUT_IF, DEL/RMDIR/UNLINK, CREATE/MKNOD/MKDIR/SYMLINK,
 * WRITE_AT, TRUNCATE, SETATTR, LINK and RENAME.  Each returns 0, a
 * positive status, or -1 (out of memory); *res is the inode whose
 * attributes the reply carries (NULL: status only).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raftkv/kv.h"
#include "raftkv/kv_internal.h"

/* ---- paths ------------------------------------------------------------------------------ */

/* Checks a whole path; then *p, *len describe it without the leading "/". */
static int path_check(const char **p, size_t *len)
{
    if (*len > KV_PATH_MAX)
        return ENAMETOOLONG;
    if (*len && memchr(*p, 0, *len))
        return EINVAL;
    if (*len && (*p)[0] == '/') {
        (*p)++;
        (*len)--;
    }
    const char *s = *p, *end = *p + *len;
    while (s < end) {
        const char *q = memchr(s, '/', (size_t)(end - s));
        size_t cl = q ? (size_t)(q - s) : (size_t)(end - s);
        if (cl == 0)
            return EINVAL;
        if ((cl == 1 && s[0] == '.') || (cl == 2 && s[0] == '.' && s[1] == '.'))
            return EINVAL;
        if (cl > KV_NAME_MAX)
            return ENAMETOOLONG;
        if (!q)
            break;
        s = q + 1;
        if (s == end)
            return EINVAL; /* trailing "/" */
    }
    return 0;
}

/* Resolves a checked path's directory part.  With mk, missing directories are
 * created (mode 0755).  *name = NULL for the root. */
static int walk_parent(kv *k, kv_inode *start, const char *p, size_t len, bool mk, uint32_t uid,
                       uint32_t gid, kv_inode **dir, const char **name, size_t *nlen)
{
    kv_inode *d = start;
    *dir = d;
    *name = NULL;
    *nlen = 0;
    if (len == 0)
        return 0;
    if (!is_dir(d))
        return ENOTDIR;
    const char *s = p, *end = p + len;
    for (;;) {
        const char *q = memchr(s, '/', (size_t)(end - s));
        if (!q)
            break;
        size_t cl = (size_t)(q - s);
        kv_dentry **e = dir_find(d, s, cl);
        if (!e) {
            if (!mk)
                return ENOENT;
            kv_inode *nd;
            int st = inode_new(k, S_IFDIR | 0755, uid, gid, &nd);
            if (st)
                return st;
            if (link_child(k, d, s, cl, nd) != 0) {
                itab_del(k, nd->ino);
                inode_destroy(k, nd);
                return -1;
            }
            d = nd;
        } else {
            d = (*e)->node;
            if (!is_dir(d))
                return ENOTDIR;
        }
        s = q + 1;
    }
    *dir = d;
    *name = s;
    *nlen = (size_t)(end - s);
    return 0;
}

/* The inode a path starts from: dir, or the root for 0. */
static int start_of(const kv *k, uint64_t dir, kv_inode **out)
{
    *out = dir ? itab_get(k, dir) : k->root;
    return *out ? 0 : ENOENT;
}

/* Resolves (dir, path) to its directory and last name; *name = NULL when the
 * path is empty (*dir is then the start inode itself, of any type). */
static int resolve_parent(const kv *k, uint64_t dir, const char *p, size_t len, kv_inode **d,
                          const char **name, size_t *nlen)
{
    int st = path_check(&p, &len);
    if (st)
        return st;
    kv_inode *s;
    if ((st = start_of(k, dir, &s)))
        return st;
    return walk_parent((kv *)k, s, p, len, false, 0, 0, d, name, nlen);
}

int resolve(const kv *k, uint64_t dir, const char *p, size_t len, kv_inode **out)
{
    kv_inode *d;
    const char *name;
    size_t nl;
    int st = resolve_parent(k, dir, p, len, &d, &name, &nl);
    if (st)
        return st;
    if (!name) {
        *out = d;
        return 0;
    }
    kv_dentry **e = dir_find(d, name, nl);
    if (!e)
        return ENOENT;
    *out = (*e)->node;
    return 0;
}

/* The inode an [ino] op addresses. */
int op_node(const kv *k, const kv_op *op, kv_inode **out)
{
    if (op->ino) {
        *out = itab_get(k, op->ino);
        return *out ? 0 : ENOENT;
    }
    return resolve(k, op->dir, op->path, op->path_len, out);
}

void attr_of(const kv_inode *n, kv_attr *a)
{
    memset(a, 0, sizeof *a);
    a->ino = n->ino;
    a->mode = n->mode;
    a->nlink = n->nlink;
    a->uid = n->uid;
    a->gid = n->gid;
    a->rdev = (S_ISCHR(n->mode) || S_ISBLK(n->mode)) ? n->x : 0;
    a->size = n->size;
    a->blocks = data_blocks(n);
    a->atime_ns = n->atime;
    a->mtime_ns = n->mtime;
    a->ctime_ns = n->ctime;
}

/* ---- commands that change the state ------------------------------------------------- */

/* Moves the staged content of an upload into n (replacing n's), without
 * copying. */
void data_take(kv *k, kv_inode *n, kv_inode *staged)
{
    data_free(k, n);
    k->bytes_used = k->bytes_used - n->size + staged->size;
    n->u = staged->u;
    n->cap = staged->cap;
    n->chunked = staged->chunked;
    n->size = staged->size;
    staged->u.flat = NULL;
    staged->cap = 0;
    staged->chunked = 0;
    staged->size = 0;
}

/* 0 for a regular file; EISDIR for a directory, EINVAL for another type. */
static int regular_file(const kv_inode *n)
{
    if (is_dir(n))
        return EISDIR;
    return is_reg(n) ? 0 : EINVAL;
}

static int put_content(kv *k, kv_inode *n, const kv_op *op, kv_inode *staged)
{
    if (!staged)
        return data_set(k, n, op->data, op->data_len);
    data_take(k, n, staged);
    return 0;
}

/* Each returns 0, a positive status, or -1 (out of memory).  *res is the inode
 * whose attributes the reply carries (NULL: status only). */

/* PUT, APPEND; with staged (UPLOAD_COMMIT) a PUT whose content is taken
 * from the staged inode instead of op->data. */
int op_put_ex(kv *k, const kv_op *op, kv_inode **res, bool append, kv_inode *staged)
{
    kv_inode *n = NULL;
    uint64_t dlen = staged ? staged->size : op->data_len;
    if (append && op->ino) {
        n = itab_get(k, op->ino);
        if (!n)
            return ENOENT;
    } else {
        const char *p = op->path;
        size_t len = op->path_len;
        int st = path_check(&p, &len);
        if (st)
            return st;
        if (dlen > k->lim.max_file_size)
            return EFBIG;
        kv_inode *d, *start;
        const char *name;
        size_t nl;
        if ((st = start_of(k, op->dir, &start)))
            return st;
        st = walk_parent(k, start, p, len, true, op->uid, op->gid, &d, &name, &nl);
        if (st)
            return st;
        kv_dentry **e = name ? dir_find(d, name, nl) : NULL;
        if (!name) {
            n = d; /* the start inode itself */
        } else if (!e) {
            if ((st = check_size(k, NULL, dlen)))
                return st;
            uint32_t mode = op->mode & 07777;
            if ((st = inode_new(k, S_IFREG | (mode ? mode : 0644), op->uid, op->gid, &n)))
                return st;
            if (put_content(k, n, op, staged) != 0 || link_child(k, d, name, nl, n) != 0) {
                itab_del(k, n->ino);
                inode_destroy(k, n);
                return -1;
            }
            *res = n;
            return 0;
        } else {
            n = (*e)->node;
        }
    }
    int st = regular_file(n);
    if (st)
        return st;
    if (append) {
        if (n->size > k->lim.max_file_size || op->data_len > k->lim.max_file_size - n->size)
            return EFBIG;
        if ((st = check_size(k, n, n->size + op->data_len)))
            return st;
        if (data_write(k, n, n->size, op->data, op->data_len) != 0)
            return -1;
    } else {
        if ((st = check_size(k, n, dlen)))
            return st;
        if (put_content(k, n, op, staged) != 0)
            return -1;
    }
    kill_privs(n, op);
    n->mtime = k->now;
    touch(k, n);
    *res = n;
    return 0;
}

/* PUT_IF: the whole content of inode op->ino, if its version (ctime) is
 * still op->off; with staged (UPLOAD_COMMIT of an inode) the content is
 * taken from the staged inode instead of op->data. */
int op_put_if(kv *k, const kv_op *op, kv_inode **res, kv_inode *staged)
{
    kv_inode *n = itab_get(k, op->ino);
    if (!n)
        return ENOENT;
    int st = regular_file(n);
    if (st)
        return st;
    if ((uint64_t)n->ctime != op->off)
        return ECANCELED;
    if ((st = check_size(k, n, staged ? staged->size : op->data_len)))
        return st;
    if (put_content(k, n, op, staged) != 0)
        return -1;
    kill_privs(n, op);
    n->mtime = k->now;
    touch(k, n);
    *res = n;
    return 0;
}

int op_put(kv *k, const kv_op *op, kv_inode **res, bool append)
{
    return op_put_ex(k, op, res, append, NULL);
}

int op_del(kv *k, const kv_op *op, int kind)
{
    kv_inode *d;
    const char *name;
    size_t nl;
    int st = resolve_parent(k, op->dir, op->path, op->path_len, &d, &name, &nl);
    if (st)
        return st;
    if (!name)
        return d == k->root ? (kind == KV_OP_UNLINK ? EISDIR : EBUSY) : EINVAL;
    kv_dentry **e = dir_find(d, name, nl);
    if (!e)
        return ENOENT;
    kv_inode *c = (*e)->node;
    if (is_dir(c)) {
        if (kind == KV_OP_UNLINK)
            return EISDIR;
        if (c->size)
            return ENOTEMPTY;
    } else if (kind == KV_OP_RMDIR) {
        return ENOTDIR;
    }
    return unlink_slot(k, d, e);
}

/* CREATE, MKNOD, MKDIR, SYMLINK: a new name in an existing directory. */
int op_make(kv *k, const kv_op *op, kv_inode **res)
{
    uint32_t mode;
    switch (op->type) {
    case KV_OP_CREATE: mode = S_IFREG | (op->mode & 07777); break;
    case KV_OP_MKDIR: mode = S_IFDIR | (op->mode & 07777); break;
    case KV_OP_SYMLINK:
        if (op->data_len == 0)
            return ENOENT;
        if (op->data_len > KV_PATH_MAX)
            return ENAMETOOLONG;
        if (memchr(op->data, 0, op->data_len))
            return EINVAL;
        mode = S_IFLNK | 0777;
        break;
    default: /* MKNOD */
        switch (op->mode & S_IFMT) {
        case 0: mode = S_IFREG | (op->mode & 07777); break;
        case S_IFREG:
        case S_IFIFO:
        case S_IFCHR:
        case S_IFBLK:
        case S_IFSOCK: mode = op->mode & (S_IFMT | 07777); break;
        default: return EINVAL;
        }
    }
    kv_inode *d;
    const char *name;
    size_t nl;
    int st = resolve_parent(k, op->dir, op->path, op->path_len, &d, &name, &nl);
    if (st)
        return st;
    if (!name && d != k->root)
        return EINVAL; /* a new name is needed */
    kv_dentry **e = name ? dir_find(d, name, nl) : NULL;
    kv_inode *n = name ? (e ? (*e)->node : NULL) : d;
    if (n) {
        if (op->type != KV_OP_CREATE || (op->flags & KV_CREATE_EXCL))
            return EEXIST;
        if (is_dir(n))
            return EISDIR;
        if ((op->flags & KV_CREATE_TRUNC) && is_reg(n)) {
            data_truncate(k, n, 0);
            n->mtime = k->now;
            touch(k, n);
        }
        *res = n;
        return 0;
    }
    if (S_ISLNK(mode) && (st = check_size(k, NULL, op->data_len)))
        return st == EFBIG ? ENAMETOOLONG : st;
    if ((st = inode_new(k, mode, op->uid, op->gid, &n)))
        return st;
    if (S_ISCHR(mode) || S_ISBLK(mode))
        n->x = op->rdev;
    if (S_ISLNK(mode)) {
        n->u.flat = malloc(op->data_len);
        if (!n->u.flat) {
            itab_del(k, n->ino);
            inode_destroy(k, n);
            return -1;
        }
        memcpy(n->u.flat, op->data, op->data_len);
        n->cap = (uint32_t)op->data_len;
        n->size = op->data_len;
        k->data_alloc += op->data_len;
        k->bytes_used += op->data_len;
    }
    if (link_child(k, d, name, nl, n) != 0) {
        itab_del(k, n->ino);
        if (is_dir(n))
            n->nlink = 0;
        inode_destroy(k, n);
        return -1;
    }
    *res = n;
    return 0;
}

int op_write_at(kv *k, const kv_op *op, kv_inode **res)
{
    kv_inode *n;
    int st = op_node(k, op, &n);
    if (st)
        return st;
    if ((st = regular_file(n)))
        return st;
    if (op->off > k->lim.max_file_size || op->data_len > k->lim.max_file_size - op->off)
        return EFBIG;
    uint64_t end = op->off + op->data_len;
    if (end > n->size && (st = check_size(k, n, end)))
        return st;
    if (op->data_len) {
        if (data_write(k, n, op->off, op->data, op->data_len) != 0)
            return -1;
        kill_privs(n, op);
        n->mtime = k->now;
        touch(k, n);
    }
    *res = n;
    return 0;
}

int op_write_staged(kv *k, const kv_op *op, kv_inode *staged, kv_inode **res)
{
    kv_inode *n;
    int st = op_node(k, op, &n);
    if (st)
        return st;
    if ((st = regular_file(n)))
        return st;
    uint64_t len = staged->size;
    if (op->off > k->lim.max_file_size || len > k->lim.max_file_size - op->off)
        return EFBIG;
    uint64_t end = op->off + len;
    if (end > n->size && (st = check_size(k, n, end)))
        return st;
    if (len) {
        if (op->off == 0 && n->size == 0) {
            data_take(k, n, staged); /* the common case: no copy */
        } else {
            size_t step = KV_PART_SIZE;
            uint8_t *buf = malloc(step);
            if (!buf)
                return -1;
            for (uint64_t o = 0; o < len; o += step) {
                size_t c = len - o < step ? (size_t)(len - o) : step;
                data_read(staged, o, c, buf);
                if (data_write(k, n, op->off + o, buf, c) != 0) {
                    free(buf);
                    return -1;
                }
            }
            free(buf);
        }
        kill_privs(n, op);
        n->mtime = k->now;
        touch(k, n);
    }
    *res = n;
    return 0;
}

static int set_size(kv *k, kv_inode *n, uint64_t size)
{
    int st = regular_file(n);
    if (st)
        return st;
    if ((st = check_size(k, n, size)))
        return st;
    data_truncate(k, n, size);
    return 0;
}

int op_truncate(kv *k, const kv_op *op, kv_inode **res)
{
    kv_inode *n;
    int st = op_node(k, op, &n);
    if (st)
        return st;
    if ((st = set_size(k, n, op->len)))
        return st;
    kill_privs(n, op);
    n->mtime = k->now;
    touch(k, n);
    *res = n;
    return 0;
}

int op_setattr(kv *k, const kv_op *op, kv_inode **res)
{
    kv_inode *n;
    int st = op_node(k, op, &n);
    if (st)
        return st;
    uint32_t v = op->flags;
    if (v & ~(uint32_t)63)
        return EINVAL;
    if (v & KV_SET_SIZE) {
        if ((st = set_size(k, n, op->len)))
            return st;
        if (!(v & KV_SET_MODE))
            kill_privs(n, op);
        n->mtime = k->now;
    }
    if (v & KV_SET_MODE)
        n->mode = (n->mode & S_IFMT) | (op->mode & 07777);
    if (v & KV_SET_UID)
        n->uid = op->uid;
    if (v & KV_SET_GID)
        n->gid = op->gid;
    if (v & KV_SET_ATIME)
        n->atime = op->atime_ns == KV_TIME_NOW ? k->now : op->atime_ns;
    if (v & KV_SET_MTIME)
        n->mtime = op->mtime_ns == KV_TIME_NOW ? k->now : op->mtime_ns;
    touch(k, n);
    *res = n;
    return 0;
}

int op_link(kv *k, const kv_op *op, kv_inode **res)
{
    kv_inode *s;
    int st = resolve(k, op->dir, op->path, op->path_len, &s);
    if (st)
        return st;
    if (is_dir(s))
        return EPERM;
    if (s->nlink == 0)
        return ENOENT; /* an orphan gets no new name */
    kv_inode *d;
    const char *name;
    size_t nl;
    if ((st = resolve_parent(k, op->dir2, op->path2, op->path2_len, &d, &name, &nl)))
        return st;
    if (!name || dir_find(d, name, nl))
        return EEXIST;
    if (s->nlink >= UINT32_MAX - 1)
        return EMLINK;
    if (link_child(k, d, name, nl, s) != 0)
        return -1;
    touch(k, s);
    *res = s;
    return 0;
}

/* Is a (a directory) d itself or an ancestor of d?  Walks parent numbers:
 * O(depth), iterative. */
static bool is_ancestor(const kv *k, const kv_inode *a, const kv_inode *d)
{
    for (;;) {
        if (d == a)
            return true;
        if (d->ino == KV_ROOT_INO)
            return false;
        d = itab_get(k, d->x);
        if (!d)
            return false;
    }
}

int op_rename(kv *k, const kv_op *op, kv_inode **res)
{
    uint32_t fl = op->flags;
    if ((fl & ~3u) || fl == 3u)
        return EINVAL;
    kv_inode *sd, *dd;
    const char *sn, *dn;
    size_t sl, dl;
    int st = resolve_parent(k, op->dir, op->path, op->path_len, &sd, &sn, &sl);
    if (st)
        return st;
    if ((st = resolve_parent(k, op->dir2, op->path2, op->path2_len, &dd, &dn, &dl)))
        return st;
    if (!sn || !dn)
        return (sd == k->root && !sn) || (dd == k->root && !dn) ? EBUSY : EINVAL;
    if (!is_dir(sd) || !is_dir(dd))
        return ENOTDIR;
    kv_dentry **se = dir_find(sd, sn, sl);
    if (!se)
        return ENOENT;
    kv_inode *s = (*se)->node;
    kv_dentry **de = dir_find(dd, dn, dl);
    kv_inode *t = de ? (*de)->node : NULL;
    if ((fl & KV_RENAME_EXCHANGE) && !t)
        return ENOENT;
    if ((fl & KV_RENAME_NOREPLACE) && t)
        return EEXIST;
    if (t == s) {
        *res = s;
        return 0; /* same inode: nothing to do (rename(2)) */
    }
    if (is_dir(s) && is_ancestor(k, s, dd))
        return EINVAL;
    if (fl & KV_RENAME_EXCHANGE) {
        if (is_dir(t) && is_ancestor(k, t, sd))
            return EINVAL;
        (*se)->node = t;
        (*de)->node = s;
        if (is_dir(s))
            s->x = dd->ino;
        if (is_dir(t))
            t->x = sd->ino;
        if (sd != dd && is_dir(s) != is_dir(t)) {
            if (is_dir(s)) {
                sd->nlink--;
                dd->nlink++;
            } else {
                dd->nlink--;
                sd->nlink++;
            }
        }
        touch_dir(k, sd);
        touch_dir(k, dd);
        touch(k, s);
        touch(k, t);
        *res = s;
        return 0;
    }
    if (t) {
        if (is_dir(s) && !is_dir(t))
            return ENOTDIR;
        if (!is_dir(s) && is_dir(t))
            return EISDIR;
        if (is_dir(t) && t->size)
            return ENOTEMPTY;
        /* the target's entry now names s; then s's old entry goes */
        (*de)->node = s;
        if (is_dir(t)) {
            dd->nlink--;
            t->nlink = 0;
            t->x = 0;
        } else {
            t->nlink--;
        }
        touch(k, t);
        dentry_free(k, dir_remove(sd, se));
        if (inode_unref_check(k, t) != 0)
            return -1;
    } else {
        kv_dentry *ne = dentry_new(k, dn, dl, s);
        if (!ne)
            return -1;
        if (dir_insert(k, dd, ne) != 0) {
            dentry_free(k, ne);
            return -1;
        }
        se = dir_find(sd, sn, sl); /* the insert may have moved it */
        assert(se != NULL);
        dentry_free(k, dir_remove(sd, se));
    }
    if (is_dir(s)) {
        s->x = dd->ino;
        if (sd != dd) {
            sd->nlink--;
            dd->nlink++;
        }
    }
    touch_dir(k, sd);
    touch_dir(k, dd);
    touch(k, s);
    *res = s;
    return 0;
}
