/*
 * kv_ops.h — the operation protocol of hstore's state machine: the
 * operations (kv_op), the command envelope the Raft log holds (kv_cmd) and
 * the replies (kv_reply), with their byte encodings (kv_codec.c).  This is
 * all that clients, the mounts (fs/), the transport (net/) and the command
 * line need; the state machine that applies them is kv.h.
 *
 * Names.  Operations name things in one of three ways:
 *   - by inode: ops marked [ino] below take kv_op.ino; when it is non-zero
 *     the path is ignored and the inode is addressed directly (ENOENT once the
 *     inode is gone);
 *   - by (directory inode, name): kv_op.dir (dir2 for path2) is the inode the
 *     path starts from, and path is then usually one name.  This is how the
 *     mounts address the namespace, so depth is unlimited: only the path given
 *     to one operation is bounded;
 *   - by path from the root (dir = 0): the key "a/b" is the file b in
 *     directory a.  This is the command line's key-value view.
 * In general path is relative to dir (0 = the root): a leading "/" is
 * optional, "" names dir itself.  Empty components ("a//b", a trailing "/"),
 * "." and ".." components and NUL bytes are rejected with EINVAL; a component
 * longer than KV_NAME_MAX bytes or a path longer than KV_PATH_MAX bytes gives
 * ENAMETOOLONG; a dir that is not an inode gives ENOENT.  Symbolic links are
 * never followed while resolving (the kernel resolves them before FUSE sees a
 * name); a symlink or other non-directory in the middle of a path (or as the
 * dir of a non-empty path) gives ENOTDIR; a missing component ENOENT.  The
 * state machine does no permission checks (mounts use default_permissions:
 * the kernel checks mode bits on fresh attributes).
 *
 * Set-id bits.  Ops that change a regular file's data (PUT of an existing
 * file, PUT_IF, APPEND, WRITE_AT, TRUNCATE, SETATTR of the size without a
 * mode) carry the writer's credentials (cuid, cgid).  When cuid is not 0 (an unprivileged
 * writer, as a process without CAP_FSETID on Linux) the change clears
 * S_ISUID, and S_ISGID when the group may execute the file or cgid is not the
 * file's group, in the same command (as Linux does on write and truncate).
 * cuid 0 (root, the command line, and every op of an older log) keeps them.
 *
 * Errors.  Every reply carries a status: 0 or a positive errno value
 * (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, ENAMETOOLONG, EFBIG, ENOSPC,
 * EINVAL, EPERM, EBUSY, EBADMSG), or one of the KV_E* codes below (> 1000,
 * never an errno; the FUSE layer should map them to EIO).
 *
 * Threads.  The codecs (kv_op_*, kv_cmd_*, kv_reply_*) are pure and
 * thread-safe.
 */
#ifndef HSTORE_KV_OPS_H
#define HSTORE_KV_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Constants ------------------------------------------------------------- */

#define KV_ROOT_INO 1
#define KV_NAME_MAX 255                       /* bytes in one path component */
#define KV_PATH_MAX 4096                      /* bytes in a path (like PATH_MAX) */
#define KV_DEFAULT_MAX_FILE_SIZE (1ull << 30) /* 1 GiB */
/* The largest max_file_size accepted: apply must be able to address any
 * offset below it without an allocation that could fail on one replica
 * only (the chunk table of a file this large is 128 MiB). */
#define KV_MAX_FILE_SIZE_LIMIT (1ull << 40) /* 1 TiB */

/* Status codes beyond errno (never an errno value). */
enum {
    KV_ESTALE = 1001,     /* seq older than the client's last applied seq:
                              that command was applied and its reply is gone */
    KV_EREPLYGONE = 1002, /* duplicate of the last command, reply not kept */
    KV_ESESSION = 1003,   /* SESSION_EXPIRED: the command's session is unknown
                              (expired, evicted or never registered); the
                              command was not applied.  Register again. */
    KV_EUPLOAD = 1004,    /* UPLOAD_COMMIT of an upload that is unknown (never
                              started, aborted or expired) or incomplete */
};

/* Bounded entries and replies.  No command carries more than KV_PART_SIZE
 * bytes of data (the node refuses bigger proposals with EFBIG): a bigger
 * value is staged in parts and committed at once (UPLOAD_* below).  No read
 * returns more than KV_READ_MAX bytes of data: GET of a bigger file answers
 * EFBIG, GETRANGE is cut at KV_READ_MAX; big files are read in ranges. */
#define KV_PART_SIZE (1u << 20)
#define KV_READ_MAX (4u << 20)
/* Staged uploads: at most KV_UPLOADS_MAX at once (EBUSY past it); one that
 * gets no part for KV_UPLOAD_TTL_NS of command time is dropped, on every
 * replica at the same index (the check runs at every kv_apply). */
#define KV_UPLOADS_MAX 64
#define KV_UPLOAD_TTL_NS (600ull * 1000000000ull) /* ten minutes */

/* At most this many inodes in one HOLD report. */
#define KV_HOLD_MAX 65536

/* ---- Operations ------------------------------------------------------------- */

/* Field use per operation.  R = read (kv_query), W = command (kv_apply).
 * [ino]: a non-zero kv_op.ino addresses that inode and the path is ignored.
 * Unless said otherwise a successful op replies KV_R_ATTR with the attributes
 * of the inode it acted on; a failed op replies only a status.
 *
 * key-value
 *  PUT      W path, data, mode(0 => 0644), uid, gid.  Creates missing parent
 *             directories (mode 0755, same uid/gid) and the file, or replaces
 *             the content of an existing regular file (its mode/owner kept).
 *             EISDIR for a directory, EINVAL for another non-regular file,
 *             ENOTDIR if a parent is not a directory, EFBIG, ENOSPC.
 *  APPEND   W path, data, mode, uid, gid [ino].  Like PUT when missing, else
 *             atomically appends; reply attr (size = new size).
 *  GET      R path [ino].  Whole content + attr.  EISDIR for a directory; a
 *             symlink gives its target; a fifo/device gives no data.
 *  DEL      W path.  Unlinks a file/symlink/fifo/device or removes an EMPTY
 *             directory (ENOTEMPTY otherwise, EBUSY for the root).  No attr.
 *  LIST     R path = prefix (from the root; dir is ignored).  KV_R_NAMES: the
 *             full paths (no leading "/") of every regular file and symlink
 *             whose path starts with the prefix as a plain string (a leading
 *             "/" in prefix is ignored), sorted bytewise.  Never fails (empty
 *             list when nothing matches).
 * filesystem
 *  STAT     R path [ino].  attr.
 *  READDIR  R path.  KV_R_ENTRIES: (name, ino, mode) of each entry, sorted by
 *             name, without "." and ".."; plus the directory's attr. ENOTDIR.
 *  GETRANGE R path, off, len [ino].  Up to len bytes at off (short at EOF,
 *             empty past it) + attr.  EISDIR for a directory, EINVAL for other
 *             non-regular files.
 *  CREATE   W path, mode (permission bits; type forced to S_IFREG), uid, gid,
 *             flags KV_CREATE_EXCL / KV_CREATE_TRUNC.  Parent must exist
 *             (ENOENT/ENOTDIR).  Exists: EEXIST with EXCL; EISDIR if it is a
 *             directory; else truncated to 0 with TRUNC, or left alone.
 *  MKNOD    W path, mode (with type: S_IFREG/S_IFIFO/S_IFCHR/S_IFBLK/
 *             S_IFSOCK; others EINVAL), rdev, uid, gid.  EEXIST.
 *  MKDIR    W path, mode, uid, gid.  EEXIST, ENOENT (parent missing).
 *  RMDIR    W path.  ENOTDIR, ENOTEMPTY, EBUSY for the root.  No attr.
 *  UNLINK   W path.  EISDIR for a directory.  No attr.
 *  WRITE_AT W path, off, data [ino].  Regular files only (EISDIR/EINVAL);
 *             extends the file, a gap before off reads as zeros.  EFBIG when
 *             off + len > max_file_size, ENOSPC past max_total_bytes.
 *  TRUNCATE W path, len = new size [ino].  Grow (zeros) or shrink.
 *  RENAME   W path = from, path2 = to, flags 0 / KV_RENAME_NOREPLACE /
 *             KV_RENAME_EXCHANGE, per rename(2): EEXIST (NOREPLACE and target
 *             exists), ENOENT (EXCHANGE and target missing), EINVAL (both flags;
 *             a directory moved into its own subtree), EISDIR (file over a
 *             directory), ENOTDIR (directory over a non-directory), ENOTEMPTY
 *             (over a non-empty directory), EBUSY (the root).  Renaming a
 *             name onto another link of the same inode succeeds and does
 *             nothing.  O(1) for directories: one dentry moves.  Reply: attr
 *             of the moved inode (at its new path).
 *  SETATTR  W path, flags = KV_SET_* mask, mode (permission bits; the type is
 *             kept), uid, gid, len (= size; regular files only), atime_ns,
 *             mtime_ns (KV_TIME_NOW = the command's time) [ino].  ctime is
 *             set to the command's time.
 *  SYMLINK  W path = the new link, data = target (1..KV_PATH_MAX bytes, else
 *             ENOENT/ENAMETOOLONG), uid, gid.  EEXIST.
 *  READLINK R path.  data = target.  EINVAL if not a symlink.
 *  LINK     W path = existing, path2 = new name.  EPERM for a directory,
 *             EEXIST, ENOENT.  nlink + 1; reply attr.
 *  STATFS   R.  KV_R_STATFS.
 *  OPEN_REF       W path, holder [ino].  Adds one reference by holder (see
 *                   kv.h "Open files").  Reply attr (carries ino).
 *  CLOSE_REF      W ino, holder.  Drops one reference; frees an unlinked inode
 *                   with no references left.  ENOENT if holder had none.
 *  RELEASE_HOLDER W holder.  Drops every reference holder has.  No attr.
 *  NOOP           W.  Does nothing (status 0); for tests and barriers.
 *  HOLD           W holder, off = covered index, data = the held inodes
 *                   (u64 little-endian each, at most KV_HOLD_MAX), flags
 *                   KV_HOLD_GONE (the holder leaves: data must be empty).
 *                   Replaces the holder's report, then sweeps orphans (see
 *                   kv.h "Open files").  No attr.  EINVAL for a bad list.
 *  REGISTER       W.  Opens a session (see kv.h, Sessions).  The envelope's client
 *                   id is only a nonce that lets the proposer find the reply;
 *                   its seq is 0.  Reply: KV_R_DATA holding the new session
 *                   id (8 bytes, little-endian; kv_reply_session_id()).
 *  SET_LIMITS     W flags (KV_LIMITS_IF_UNSET), len = max_file_size (0: the
 *                   default), off = max_total_bytes (0: none), rdev =
 *                   max_inodes (0: none).  Replaces the replicated limits
 *                   (see kv_limits in kv.h); with KV_LIMITS_IF_UNSET only if no
 *                   SET_LIMITS was applied before.  EINVAL for a max_file_size
 *                   above KV_MAX_FILE_SIZE_LIMIT.  Reply: KV_R_STATFS.
 *  PUT_IF   W ino, data, off = the version the caller expects, cuid, cgid.  Replaces the
 *             content of regular file ino, like PUT, only if the inode is
 *             unchanged since the caller saw it: its version (attr.ctime_ns,
 *             which every change of the inode moves forward, kv.h Timestamps)
 *             still equals off.  Otherwise ECANCELED and nothing changes, on
 *             every replica alike.  ENOENT, EISDIR/EINVAL, EFBIG, ENOSPC.
 * chunked uploads (a value larger than KV_PART_SIZE, visible at once)
 *  UPLOAD_PART    W upload (the client's random 64-bit id), off, data = the
 *                   bytes at off, len = the whole value's size if known
 *                   (else 0).  A part is KV_PART_SIZE bytes at a multiple
 *                   of it, or the tail (EINVAL otherwise, or when it does
 *                   not fit in a declared len).  EFBIG when len or off +
 *                   size pass max_file_size; ENOSPC when the declared len
 *                   (at the first part) or the part (size not declared)
 *                   does not fit beside what is stored and staged; EBUSY
 *                   past KV_UPLOADS_MAX uploads.  The first part stages the
 *                   upload.  Idempotent: a part received again changes
 *                   nothing, so parts bypass the client's session (they may
 *                   apply in any order and be re-sent freely).  Status only.
 *  UPLOAD_COMMIT  W upload, len, and PUT's path, mode, uid, gid: a PUT whose
 *                   data is the staged value, applied atomically; with ino
 *                   non-zero, PUT_IF's instead (off = the expected version,
 *                   ECANCELED if the inode changed).  The staging is
 *                   dropped.  KV_EUPLOAD when the upload is unknown or
 *                   [0, len) is not all staged (then the staging stays);
 *                   EINVAL when len differs from a declared size.
 *  UPLOAD_ABORT   W upload.  Drops the staging (status 0 even if unknown).
 *  UPLOAD_WRITE   W upload, ino, off, len: a WRITE_AT whose data is the
 *                   staged [0, len), applied atomically at off of inode
 *                   ino (the file grows as needed; bytes past off + len
 *                   stay).  A file written from an empty start by one
 *                   stream of writes thus appears at once, whatever its
 *                   size, and one that changed meanwhile gets the bytes at
 *                   their offsets, as the write() calls would have put
 *                   them.  ENOENT, EISDIR/EINVAL, EFBIG, ENOSPC as
 *                   WRITE_AT; KV_EUPLOAD as UPLOAD_COMMIT.  The staging is
 *                   dropped once applied or refused for good.
 *
 * Read ops (R) are answered only by kv_query().  Wrapped in a command they are
 * not executed: apply answers EINVAL (a committed read must not make every
 * replica build a reply the size of a file).  Nodes refuse them before
 * proposal (kv_op_is_write).
 * Every op that takes a path also takes dir (path2: dir2), see "Names".
 */
typedef enum kv_op_type {
    KV_OP_PUT = 1,
    KV_OP_APPEND = 2,
    KV_OP_GET = 3,
    KV_OP_DEL = 4,
    KV_OP_LIST = 5,
    KV_OP_STAT = 6,
    KV_OP_READDIR = 7,
    KV_OP_GETRANGE = 8,
    KV_OP_CREATE = 9,
    KV_OP_MKNOD = 10,
    KV_OP_MKDIR = 11,
    KV_OP_RMDIR = 12,
    KV_OP_UNLINK = 13,
    KV_OP_WRITE_AT = 14,
    KV_OP_TRUNCATE = 15,
    KV_OP_RENAME = 16,
    KV_OP_SETATTR = 17,
    KV_OP_SYMLINK = 18,
    KV_OP_READLINK = 19,
    KV_OP_LINK = 20,
    KV_OP_STATFS = 21,
    KV_OP_OPEN_REF = 22,
    KV_OP_CLOSE_REF = 23,
    KV_OP_RELEASE_HOLDER = 24,
    KV_OP_NOOP = 25,
    KV_OP_HOLD = 26,
    KV_OP_REGISTER = 27,
    KV_OP_SET_LIMITS = 28,
    KV_OP_PUT_IF = 29,
    KV_OP_UPLOAD_PART = 30,
    KV_OP_UPLOAD_COMMIT = 31,
    KV_OP_UPLOAD_ABORT = 32,
    KV_OP_UPLOAD_WRITE = 33,
    KV_OP__MAX = 33,
} kv_op_type;

/* CREATE flags */
#define KV_CREATE_EXCL 1u
#define KV_CREATE_TRUNC 2u
/* RENAME flags: same values as Linux RENAME_NOREPLACE / RENAME_EXCHANGE */
#define KV_RENAME_NOREPLACE 1u
#define KV_RENAME_EXCHANGE 2u
/* HOLD flags */
#define KV_HOLD_GONE 1u
/* SETATTR valid mask */
#define KV_SET_MODE 1u
#define KV_SET_UID 2u
#define KV_SET_GID 4u
#define KV_SET_SIZE 8u
#define KV_SET_ATIME 16u
#define KV_SET_MTIME 32u
/* SET_LIMITS flags */
#define KV_LIMITS_IF_UNSET 1u
/* SETATTR atime_ns/mtime_ns value meaning "the command's time" (UTIME_NOW).
 * UTIME_OMIT: leave KV_SET_ATIME/KV_SET_MTIME out of the mask. */
#define KV_TIME_NOW INT64_MIN

/* An operation.  For kv_op_encode the strings may be NUL-terminated with
 * *_len == 0 (strlen is used; NULL means ""), or carry an explicit length.
 * kv_op_decode fills every pointer with a pointer INTO the decoded buffer
 * (not NUL-terminated; length in *_len; "" when empty), so the buffer must
 * outlive the kv_op.  Fields an op does not use are zero after decoding and
 * ignored by the encoder. */
typedef struct kv_op {
    uint8_t type; /* kv_op_type */
    const char *path;
    size_t path_len;
    const char *path2;
    size_t path2_len;
    const uint8_t *data;
    size_t data_len;
    uint32_t flags; /* KV_CREATE_*, KV_RENAME_*, KV_SET_* */
    uint32_t mode;
    uint32_t uid;
    uint32_t gid;
    uint64_t rdev;
    uint64_t off;
    uint64_t len; /* GETRANGE length, TRUNCATE/SETATTR size */
    int64_t atime_ns;
    int64_t mtime_ns;
    uint64_t ino;        /* [ino] ops: non-zero addresses the inode */
    uint64_t holder;     /* OPEN_REF/CLOSE_REF/RELEASE_HOLDER/HOLD: node id */
    uint64_t dir;        /* the inode path starts from; 0 = the root */
    uint64_t dir2;       /* the same for path2 */
    uint32_t cuid, cgid; /* the writer (see "Set-id bits"); 0 = privileged */
    uint64_t upload;     /* UPLOAD_*: the upload's id */
} kv_op;

/* Encodes op into a malloc'ed buffer (*out, caller frees).  0, or -1 for an
 * unknown type, a field too long for the format (> 4 GiB) or out of memory. */
int kv_op_encode(const kv_op *op, uint8_t **out, size_t *out_len);
/* The same into the caller's cap bytes at buf, which kv_op_encode_bound(op)
 * bytes always suffice for: 0, or -1 as above or when cap is too small. */
int kv_op_encode_to(const kv_op *op, uint8_t *buf, size_t cap, size_t *out_len);
size_t kv_op_encode_bound(const kv_op *op);
/* Decodes without copying (see kv_op).  0, or -1 when the bytes are not
 * exactly one well-formed op.  Path validity is NOT checked here (apply and
 * query answer EINVAL/ENAMETOOLONG). */
int kv_op_decode(const uint8_t *buf, size_t len, kv_op *op);
/* True for GET, LIST, STAT, READDIR, GETRANGE, READLINK, STATFS; false for
 * everything else, including malformed bytes (those go through the log and
 * come back as EBADMSG, identically everywhere). */
bool kv_op_is_read(const uint8_t *op, size_t len);
/* True only for well-formed ops that change the state (everything but the
 * reads): what a node may propose. */
bool kv_op_is_write(const uint8_t *op, size_t len);
/* The type of an encoded op from its header alone (0 when malformed). */
int kv_op_peek_type(const uint8_t *op, size_t len);
const char *kv_op_name(int type);

/* ---- Commands: what the Raft log holds ---------------------------------------- */

/* Wraps an encoded op: (client_id, seq) for exactly-once (client_id 0 = no
 * session), time_ns = the proposer's CLOCK_REALTIME in ns.  0 or -1 (ENOMEM). */
int kv_cmd_encode(uint64_t client_id, uint64_t seq, int64_t time_ns, const uint8_t *op,
                  size_t op_len, uint8_t **out, size_t *out_len);
/* The same into the caller's buffer of cap bytes; the command is exactly
 * kv_cmd_size(op_len) bytes.  0, or -1 when cap is too small. */
size_t kv_cmd_size(size_t op_len);
int kv_cmd_encode_to(uint64_t client_id, uint64_t seq, int64_t time_ns, const uint8_t *op,
                     size_t op_len, uint8_t *buf, size_t cap);
/* Splits a command; *op points into cmd.  0 or -1 if malformed. */
int kv_cmd_decode(const uint8_t *cmd, size_t len, uint64_t *client_id, uint64_t *seq,
                  int64_t *time_ns, const uint8_t **op, size_t *op_len);

/* ---- Replies -------------------------------------------------------------------- */

typedef struct kv_attr {
    uint64_t ino;
    uint32_t mode; /* S_IFxxx | permission bits */
    uint32_t nlink;
    uint32_t uid;
    uint32_t gid;
    uint64_t rdev;
    uint64_t size;   /* bytes; symlink: target length; dir: entry count */
    uint64_t blocks; /* 512-byte units of data held in memory */
    int64_t atime_ns;
    int64_t mtime_ns;
    int64_t ctime_ns;
} kv_attr;

typedef struct kv_dirent {
    const char *name; /* NUL-terminated, points into kv_reply storage */
    uint64_t ino;
    uint32_t mode;
} kv_dirent;

typedef struct kv_statfs {
    uint64_t bytes_used;  /* sum of file sizes and symlink targets */
    uint64_t bytes_limit; /* max_total_bytes, 0 = none */
    uint64_t files;       /* inodes in use (orphans included) */
    uint64_t files_limit; /* max_inodes, 0 = none */
    uint64_t name_max;    /* KV_NAME_MAX */
    uint64_t max_file_size;
} kv_statfs;

/* Which parts of a kv_reply are present. */
#define KV_R_ATTR 1u
#define KV_R_DATA 2u
#define KV_R_NAMES 4u
#define KV_R_ENTRIES 8u
#define KV_R_STATFS 16u

typedef struct kv_reply {
    int status;   /* 0, errno, or KV_E* */
    uint32_t has; /* KV_R_* */
    kv_attr attr;
    uint8_t *data; /* data_len bytes */
    size_t data_len;
    const char **names; /* n_names NUL-terminated strings (LIST) */
    size_t n_names;
    kv_dirent *entries; /* READDIR */
    size_t n_entries;
    kv_statfs statfs;
    void *_store; /* storage owned by a decoded reply */
} kv_reply;

/* Encodes r (only the parts in r->has; names/entries with NUL-terminated
 * strings).  0 or -1 (ENOMEM). */
int kv_reply_encode(const kv_reply *r, uint8_t **out, size_t *out_len);
/* Decodes into *r (allocated; release with kv_reply_free).  0, or -1 when
 * malformed (then *r is empty and needs no free, though freeing is harmless). */
int kv_reply_decode(const uint8_t *buf, size_t len, kv_reply *r);
void kv_reply_free(kv_reply *r);
/* The status of an encoded reply without decoding it all; EBADMSG if
 * malformed. */
int kv_reply_status(const uint8_t *buf, size_t len);
/* The status of an encoded reply from its header alone (no allocation);
 * EBADMSG if it is not a reply. */
int kv_reply_peek_status(const uint8_t *buf, size_t len);
/* The session id in the reply to a REGISTER; 0 if it is not one. */
uint64_t kv_reply_session_id(const uint8_t *buf, size_t len);
/* Encodes a reply holding only a status (for the node's own error replies). */
int kv_reply_encode_status(int status, uint8_t **out, size_t *out_len);
/* Text for a status: strerror() for errno values, names for KV_E*. */
const char *kv_strstatus(int status);

#endif
