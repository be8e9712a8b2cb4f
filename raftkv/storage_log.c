/*
 * storage_log.c — the log and the hard state in the store: one row per saved
 * batch (layout in storage_internal.h), cut when a conflicting suffix starts
 * inside a row (dissertation §3.5: the follower deletes the conflicting entry
 * and all that follow it) or a snapshot ends inside one (§5: compaction drops
 * the covered prefix); both rewrite a single row as a contiguous slice of its
 * body.  Also the two calls of the ready protocol that carry them: st_load_stored
 * at start and st_save_ready per batch.
 */
#include "raftkv/storage_internal.h"

#include "raftkv/byte.h"
#include "raftkv/crc32c.h"

#include <stdlib.h>
#include <string.h>

#define ENT_HDR 17 /* term 8, type 1, len 4, crc 4 */

static uint32_t entry_crc(uint64_t index, uint64_t term, uint8_t type, const void *data,
                          uint32_t len)
{
    uint8_t h[17];
    byte_put64(h, index);
    byte_put64(h + 8, term);
    h[16] = type;
    uint32_t c = crc32c(0, h, sizeof h);
    return len ? crc32c(c, data, len) : c;
}

static uint32_t hs_crc(const raft_hard_state *hs)
{
    uint8_t b[24];
    byte_put64(b, hs->term);
    byte_put64(b + 8, hs->vote);
    byte_put64(b + 16, hs->commit);
    return crc32c(0, b, sizeof b);
}

typedef struct ent_view {
    uint64_t index, term;
    uint8_t type;
    uint32_t len;
    const uint8_t *data; /* NULL for an entry whose bytes are in a segment */
    bool blob;
    uint32_t seg, crc;
    uint64_t off;      /* of the bytes in segment seg */
    size_t start, end; /* byte range of this record in the row body */
} ent_view;

/* Parses and verifies the record of `index` at body[*off] (the checksum of
 * an entry in a segment is checked when its bytes are read: log_read). */
static int row_next(st_store *s, const uint8_t *body, size_t blen, size_t *off, uint64_t index,
                    ent_view *v, char *err, size_t errlen)
{
    size_t o = *off;
    if (blen - o < ENT_HDR)
        return sto_fail(ST_ECORRUPT, err, errlen, "%s: log entry %llu: record truncated", s->path,
                        (unsigned long long)index);
    v->index = index;
    v->term = byte_get64(body + o);
    v->type = body[o + 8];
    v->len = byte_get32(body + o + 9);
    uint32_t crc = byte_get32(body + o + 13);
    v->crc = crc;
    v->blob = (v->len & ENT_BLOB_FLAG) != 0;
    if (v->blob) {
        v->len &= ~ENT_BLOB_FLAG;
        if (blen - o - ENT_HDR < ENT_REF_LEN)
            return sto_fail(ST_ECORRUPT, err, errlen,
                            "%s: log entry %llu: malformed record (reference past end of row)",
                            s->path, (unsigned long long)index);
        v->seg = byte_get32(body + o + ENT_HDR);
        v->off = byte_get64(body + o + ENT_HDR + 4);
        if (v->seg == 0)
            return sto_fail(ST_ECORRUPT, err, errlen,
                            "%s: log entry %llu: malformed record (segment 0)", s->path,
                            (unsigned long long)index);
        v->data = NULL;
        v->start = o;
        v->end = o + ENT_HDR + ENT_REF_LEN;
        *off = v->end;
        return 0;
    }
    if (v->len > blen - o - ENT_HDR)
        return sto_fail(ST_ECORRUPT, err, errlen,
                        "%s: log entry %llu: malformed record (length %u past end of row)", s->path,
                        (unsigned long long)index, v->len);
    v->data = body + o + ENT_HDR;
    if (entry_crc(index, v->term, v->type, v->data, v->len) != crc)
        return sto_fail(ST_ECORRUPT, err, errlen, "%s: log entry %llu: checksum mismatch", s->path,
                        (unsigned long long)index);
    v->start = o;
    v->end = o + ENT_HDR + v->len;
    *off = v->end;
    return 0;
}

/* Checks the row header (first, last) against the body length once parsed. */
static int row_end_check(st_store *s, uint64_t first, uint64_t last, size_t off, size_t blen,
                         char *err, size_t errlen)
{
    if (off != blen)
        return sto_fail(ST_ECORRUPT, err, errlen,
                        "%s: log entries %llu..%llu: row has %zu stray bytes", s->path,
                        (unsigned long long)first, (unsigned long long)last, blen - off);
    return 0;
}

/* Columns first, last, body, seg of a row (Q_LOG_ALL, Q_LOG_CONTAINING). */
static int row_header(st_store *s, sqlite3_stmt *st, uint64_t *first, uint64_t *last,
                      const uint8_t **body, size_t *blen, char *err, size_t errlen)
{
    *first = (uint64_t)sqlite3_column_int64(st, 0);
    *last = (uint64_t)sqlite3_column_int64(st, 1);
    *body = sqlite3_column_blob(st, 2);
    *blen = (size_t)sqlite3_column_bytes(st, 2);
    if (*first == 0 || *last < *first || (*blen > 0 && !*body) ||
        (*last - *first) >= *blen / ENT_HDR + 1)
        return sto_fail(ST_ECORRUPT, err, errlen,
                        "%s: log row at index %llu: bad header (last %llu)", s->path,
                        (unsigned long long)*first, (unsigned long long)*last);
    return 0;
}

/* Keeps only the entries keep_lo..keep_hi of the row holding `at` (which
 * must exist): used to cut a row at a conflict or a snapshot boundary. */
static int row_cut(st_store *s, uint64_t at, uint64_t keep_lo, uint64_t keep_hi, char *err,
                   size_t errlen)
{
    sqlite3_stmt *st = s->q[Q_LOG_CONTAINING];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)at);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sto_reset_q(s, Q_LOG_CONTAINING);
        if (rc == SQLITE_DONE)
            return 0; /* nothing stored there */
        return sto_sqlfail(s, rc, err, errlen, "read log row");
    }
    uint64_t first, last;
    const uint8_t *body;
    size_t blen;
    int r = row_header(s, st, &first, &last, &body, &blen, err, errlen);
    if (r) {
        sto_reset_q(s, Q_LOG_CONTAINING);
        return r;
    }
    if (keep_lo < first)
        keep_lo = first;
    if (keep_hi > last)
        keep_hi = last;
    size_t off = 0, cut_start = 0, cut_end = 0;
    uint64_t kept_bytes = 0, all_bytes = 0;
    for (uint64_t i = first; i <= last; i++) {
        ent_view v;
        r = row_next(s, body, blen, &off, i, &v, err, errlen);
        if (r) {
            sto_reset_q(s, Q_LOG_CONTAINING);
            return r;
        }
        all_bytes += v.len;
        if (i == keep_lo)
            cut_start = v.start;
        if (i >= keep_lo && i <= keep_hi) {
            cut_end = v.end;
            kept_bytes += v.len;
        }
    }
    r = row_end_check(s, first, last, off, blen, err, errlen);
    if (r) {
        sto_reset_q(s, Q_LOG_CONTAINING);
        return r;
    }
    sqlite3_int64 seg = sqlite3_column_int64(st, 3);
    /* Copy the kept slice: the statement's blob dies with the reset. */
    size_t klen = keep_hi >= keep_lo ? cut_end - cut_start : 0;
    uint8_t *keep = malloc(klen ? klen : 1);
    if (!keep) {
        sto_reset_q(s, Q_LOG_CONTAINING);
        return sto_fail(ST_ENOMEM, err, errlen, "%s: out of memory cutting a log row", s->path);
    }
    if (klen)
        memcpy(keep, body + cut_start, klen);
    sto_reset_q(s, Q_LOG_CONTAINING);

    if (keep_lo == first && klen) {
        sqlite3_stmt *u = s->q[Q_LOG_UPDATE];
        sqlite3_bind_int64(u, 1, (sqlite3_int64)keep_hi);
        sqlite3_bind_int64(u, 2, (sqlite3_int64)kept_bytes);
        sqlite3_bind_blob(u, 3, keep, (int)klen, SQLITE_STATIC);
        sqlite3_bind_int64(u, 4, (sqlite3_int64)first);
        r = sto_step_done(s, Q_LOG_UPDATE, err, errlen, "rewrite log row");
    } else {
        /* The row's key changes: delete it and insert the kept slice. */
        sqlite3_bind_int64(s->q[Q_LOG_DEL_ONE], 1, (sqlite3_int64)first);
        r = sto_step_done(s, Q_LOG_DEL_ONE, err, errlen, "delete log row");
        if (!r && klen) {
            sqlite3_stmt *ins = s->q[Q_LOG_INSERT];
            sqlite3_bind_int64(ins, 1, (sqlite3_int64)keep_lo);
            sqlite3_bind_int64(ins, 2, (sqlite3_int64)keep_hi);
            sqlite3_bind_int64(ins, 3, (sqlite3_int64)kept_bytes);
            sqlite3_bind_blob(ins, 4, keep, (int)klen, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 5, seg);
            r = sto_step_done(s, Q_LOG_INSERT, err, errlen, "insert log row");
        }
    }
    free(keep);
    if (!r) {
        s->c.log_bytes -= all_bytes - kept_bytes;
        s->blob_gc |= seg != 0;
    }
    return r;
}

/* Deletes the stored log from index `from` on (conflicting suffix, §5.3). */
static int log_truncate_from(st_store *s, uint64_t from, char *err, size_t errlen)
{
    if (from > s->c.last_index)
        return 0;
    int r = row_cut(s, from, 0, from - 1, err, errlen);
    if (r)
        return r;
    uint64_t gone = 0;
    sqlite3_bind_int64(s->q[Q_LOG_BYTES_FROM], 1, (sqlite3_int64)from);
    r = sto_step_int(s, Q_LOG_BYTES_FROM, &gone, err, errlen, "measure log suffix");
    if (r)
        return r;
    sqlite3_bind_int64(s->q[Q_LOG_DEL_FROM], 1, (sqlite3_int64)from);
    r = sto_step_done(s, Q_LOG_DEL_FROM, err, errlen, "delete log suffix");
    if (r)
        return r;
    s->c.log_bytes -= gone;
    s->c.last_index = from - 1;
    s->blob_gc = true;
    return 0;
}

/* Term of the stored entry at index, 0 if it is not in the log. */
static int log_term_at(st_store *s, uint64_t index, uint64_t *term, char *err, size_t errlen)
{
    *term = 0;
    if (index <= s->c.snap_index || index > s->c.last_index)
        return 0;
    sqlite3_stmt *st = s->q[Q_LOG_CONTAINING];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sto_reset_q(s, Q_LOG_CONTAINING);
        return rc == SQLITE_DONE ? 0 : sto_sqlfail(s, rc, err, errlen, "read log row");
    }
    uint64_t first, last;
    const uint8_t *body;
    size_t blen, off = 0;
    int r = row_header(s, st, &first, &last, &body, &blen, err, errlen);
    for (uint64_t i = first; !r && i <= index; i++) {
        ent_view v;
        r = row_next(s, body, blen, &off, i, &v, err, errlen);
        if (!r && i == index)
            *term = v.term;
    }
    sto_reset_q(s, Q_LOG_CONTAINING);
    return r;
}

/* Drops the log a snapshot at (index, term) covers.  If the log holds that
 * entry with the same term, the entries after it stay (they extend the
 * snapshot); otherwise the whole log goes (dissertation §5.1, rule 6/7 of
 * InstallSnapshot). */
int sto_log_compact(st_store *s, uint64_t index, uint64_t term, bool lazy, char *err, size_t errlen)
{
    uint64_t t;
    int r = log_term_at(s, index, &t, err, errlen);
    if (r)
        return r;
    if (index > s->c.snap_index && t == term && t != 0) {
        r = row_cut(s, index, index + 1, UINT64_MAX, err, errlen);
        if (r)
            return r;
        uint64_t gone = 0;
        sqlite3_bind_int64(s->q[Q_LOG_BYTES_UPTO], 1, (sqlite3_int64)s->c.snap_index);
        sqlite3_bind_int64(s->q[Q_LOG_BYTES_UPTO], 2, (sqlite3_int64)index);
        r = sto_step_int(s, Q_LOG_BYTES_UPTO, &gone, err, errlen, "measure log prefix");
        if (r)
            return r;
        /* lazy: the rows stay, dead (every reader skips first <= snapshot
         * index), and the background thread deletes them in small steps */
        sqlite3_bind_int64(s->q[Q_LOG_DEL_UPTO], 1, (sqlite3_int64)index);
        r = lazy ? 0 : sto_step_done(s, Q_LOG_DEL_UPTO, err, errlen, "delete log prefix");
        if (lazy)
            sto_reset_q(s, Q_LOG_DEL_UPTO);
        if (r)
            return r;
        s->c.log_bytes -= gone;
        s->blob_gc = true;
    } else if (index != s->c.snap_index) {
        r = sto_step_done(s, Q_LOG_DEL_ALL, err, errlen, "delete log");
        if (r)
            return r;
        s->c.log_bytes = 0;
        s->c.last_index = index;
        s->blob_gc = true;
    }
    if (s->c.last_index < index)
        s->c.last_index = index;
    return 0;
}

/* Appends entries (already checked consecutive) as one row. */
static int log_append(st_store *s, const raft_entry *e, size_t n, char *err, size_t errlen)
{
    size_t total = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        total += ENT_HDR + (sto_is_blob(e[i].len) ? ENT_REF_LEN : e[i].len);
        bytes += e[i].len;
    }
    if (total > (size_t)INT_MAX)
        return sto_fail(ST_EINVAL, err, errlen, "%s: batch of %zu bytes too large for one row",
                        s->path, total);
    uint8_t *body = malloc(total);
    if (!body)
        return sto_fail(ST_ENOMEM, err, errlen, "%s: out of memory for a batch of %zu bytes",
                        s->path, total);
    size_t o = 0;
    uint32_t row_seg = 0;
    for (size_t i = 0; i < n; i++) {
        bool blob = sto_is_blob(e[i].len);
        byte_put64(body + o, e[i].term);
        body[o + 8] = e[i].type;
        byte_put32(body + o + 9, blob ? e[i].len | ENT_BLOB_FLAG : e[i].len);
        byte_put32(body + o + 13, entry_crc(e[i].index, e[i].term, e[i].type, e[i].data, e[i].len));
        if (blob) {
            /* its bytes: where sto_blob_write put them, in this order */
            uint64_t off;
            sto_blob_next(s, e[i].len, &row_seg, &off);
            byte_put32(body + o + ENT_HDR, row_seg);
            byte_put64(body + o + ENT_HDR + 4, off);
            o += ENT_HDR + ENT_REF_LEN;
            continue;
        }
        if (e[i].len)
            memcpy(body + o + ENT_HDR, e[i].data, e[i].len);
        o += ENT_HDR + e[i].len;
    }
    sqlite3_stmt *ins = s->q[Q_LOG_INSERT];
    sqlite3_bind_int64(ins, 1, (sqlite3_int64)e[0].index);
    sqlite3_bind_int64(ins, 2, (sqlite3_int64)e[n - 1].index);
    sqlite3_bind_int64(ins, 3, (sqlite3_int64)bytes);
    sqlite3_bind_blob(ins, 4, body, (int)total, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 5, row_seg);
    int r = sto_step_done(s, Q_LOG_INSERT, err, errlen, "append log entries");
    free(body);
    if (!r) {
        s->c.log_bytes += bytes;
        s->c.last_index = e[n - 1].index;
    }
    return r;
}

/* ---- load ---------------------------------------------------------------- */

static int hs_load(st_store *s, raft_hard_state *hs, char *err, size_t errlen)
{
    memset(hs, 0, sizeof *hs);
    sqlite3_stmt *st = s->q[Q_HS_GET];
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW) {
        hs->term = (uint64_t)sqlite3_column_int64(st, 0);
        hs->vote = (uint64_t)sqlite3_column_int64(st, 1);
        hs->commit = (uint64_t)sqlite3_column_int64(st, 2);
        if ((uint32_t)sqlite3_column_int64(st, 3) != hs_crc(hs))
            r = sto_fail(ST_ECORRUPT, err, errlen, "%s: hard state: checksum mismatch", s->path);
    } else if (rc != SQLITE_DONE) {
        r = sto_sqlfail(s, rc, err, errlen, "read hard state");
    }
    sto_reset_q(s, Q_HS_GET);
    return r;
}

/* Reads the log after the snapshot into one block: the entry array followed
 * by the entries' data (so one free releases it). */
static int log_read(st_store *s, raft_entry **out, size_t *n_out, char *err, size_t errlen)
{
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *t = s->q[Q_LOG_TOTALS];
    sqlite3_bind_int64(t, 1, (sqlite3_int64)s->c.snap_index);
    int rc = sqlite3_step(t);
    uint64_t cnt = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(t, 2) : 0;
    uint64_t bytes = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(t, 1) : 0;
    sto_reset_q(s, Q_LOG_TOTALS);
    if (rc != SQLITE_ROW)
        return sto_sqlfail(s, rc, err, errlen, "read log summary");
    if (cnt == 0)
        return 0;
    if (cnt > SIZE_MAX / sizeof(raft_entry) / 2 || bytes > SIZE_MAX / 2)
        return sto_fail(ST_ECORRUPT, err, errlen, "%s: log summary impossible (%llu entries)",
                        s->path, (unsigned long long)cnt);
    size_t arr = (size_t)cnt * sizeof(raft_entry);
    uint8_t *blk = malloc(arr + (size_t)bytes + 1);
    if (!blk)
        return sto_fail(ST_ENOMEM, err, errlen, "%s: out of memory loading %llu log entries",
                        s->path, (unsigned long long)cnt);
    raft_entry *e = (raft_entry *)blk;
    uint8_t *dp = blk + arr, *dend = blk + arr + bytes;
    size_t n = 0;
    int r = 0;
    uint64_t expect = 0;
    int fd = -1; /* the segment being read (sto_blob_read) */
    uint32_t fd_seg = 0;
    sqlite3_stmt *st = s->q[Q_LOG_ALL];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)s->c.snap_index);
    while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t first, last;
        const uint8_t *body;
        size_t blen, off = 0;
        r = row_header(s, st, &first, &last, &body, &blen, err, errlen);
        uint32_t row_seg = (uint32_t)sqlite3_column_int64(st, 3);
        if (!r && expect == 0)
            expect = first;
        for (uint64_t i = first; !r && i <= last; i++) {
            ent_view v;
            r = row_next(s, body, blen, &off, i, &v, err, errlen);
            if (r)
                continue;
            if (i != expect) {
                r = sto_fail(ST_ECORRUPT, err, errlen,
                             "%s: log entry %llu missing (gap before %llu)", s->path,
                             (unsigned long long)expect, (unsigned long long)i);
                break;
            }
            if (n >= cnt || (size_t)(dend - dp) < v.len) {
                r = sto_fail(ST_ECORRUPT, err, errlen,
                             "%s: log entry %llu: log summary does not match its rows", s->path,
                             (unsigned long long)i);
                break;
            }
            e[n].index = i;
            e[n].term = v.term;
            e[n].type = v.type;
            e[n].len = v.len;
            e[n].data = NULL;
            if (v.blob && v.seg != row_seg) {
                r = sto_fail(ST_ECORRUPT, err, errlen,
                             "%s: log entry %llu: in segment %u, its row says %u", s->path,
                             (unsigned long long)i, v.seg, row_seg);
                break;
            }
            if (v.blob) {
                r = sto_blob_read(s, v.seg, v.off, v.len, i, dp, &fd, &fd_seg, err, errlen);
                if (!r && entry_crc(i, v.term, v.type, dp, v.len) != v.crc) {
                    char p[PATH_MAX + 32];
                    sto_blob_path(s, v.seg, p, sizeof p);
                    r = sto_fail(ST_ECORRUPT, err, errlen,
                                 "%s: log entry %llu: checksum mismatch (%u bytes at offset %llu)",
                                 p, (unsigned long long)i, v.len, (unsigned long long)v.off);
                }
                if (r)
                    break;
                e[n].data = dp;
                dp += v.len;
            } else if (v.len) {
                e[n].data = dp;
                dp += v.len;
                memcpy(e[n].data, v.data, v.len);
            }
            n++;
            expect = i + 1;
        }
        if (!r)
            r = row_end_check(s, first, last, off, blen, err, errlen);
    }
    sto_reset_q(s, Q_LOG_ALL);
    sto_blob_read_end(&fd);
    if (!r && rc != SQLITE_DONE)
        r = sto_sqlfail(s, rc, err, errlen, "read log");
    if (r) {
        free(blk);
        return r;
    }
    *out = e;
    *n_out = n;
    return 0;
}

int st_load_stored(st_store *s, raft_boot *boot, char *err, size_t errlen)
{
    memset(boot, 0, sizeof *boot);
    /* One read transaction: hard state, snapshot and log from one moment. */
    int r = sto_exec_sql(s, "BEGIN", err, errlen);
    if (r)
        return r;
    r = hs_load(s, &boot->hs, err, errlen);
    if (!r)
        r = sto_snap_load(s, &boot->snapshot, err, errlen);
    raft_entry *e = NULL;
    size_t n = 0;
    if (!r)
        r = log_read(s, &e, &n, err, errlen);
    sto_exec_sql(s, "COMMIT", NULL, 0);
    if (!r && n && e[0].index != boot->snapshot.index + 1)
        r = sto_fail(ST_ECORRUPT, err, errlen,
                     "%s: log starts at index %llu but the snapshot ends at %llu", s->path,
                     (unsigned long long)e[0].index, (unsigned long long)boot->snapshot.index);
    boot->entries = e;
    boot->n_entries = n;
    if (r)
        st_boot_free(boot);
    return r;
}

void st_boot_free(raft_boot *boot)
{
    if (!boot)
        return;
    free((void *)boot->entries);
    free(boot->snapshot.data);
    memset(boot, 0, sizeof *boot);
}

/* ---- save ------------------------------------------------------------------------ */

/* Checks a batch's entries before anything is touched: consecutive, with
 * data, and fitting the log as it will be when the batches before it in the
 * same transaction (prev_last: their last entry, 0 if none) are stored. */
static int check_batch(st_store *s, const raft_ready *rd, uint64_t prev_last, char *err,
                       size_t errlen)
{
    if (!rd->n_entries)
        return 0;
    const raft_entry *e = rd->entries;
    uint64_t floor = rd->snapshot ? rd->snapshot->index : s->c.snap_index;
    uint64_t top = s->c.last_index > prev_last ? s->c.last_index : prev_last;
    if (rd->snapshot && rd->snapshot->index > top)
        top = rd->snapshot->index;
    if (e[0].index <= floor || e[0].index > top + 1)
        return sto_fail(ST_EINVAL, err, errlen,
                        "%s: entries from index %llu do not fit the "
                        "log (snapshot %llu, last %llu)",
                        s->path, (unsigned long long)e[0].index, (unsigned long long)floor,
                        (unsigned long long)top);
    for (size_t i = 1; i < rd->n_entries; i++)
        if (e[i].index != e[0].index + i)
            return sto_fail(ST_EINVAL, err, errlen, "%s: entries not consecutive at index %llu",
                            s->path, (unsigned long long)e[i].index);
    for (size_t i = 0; i < rd->n_entries; i++) {
        if (e[i].len && !e[i].data)
            return sto_fail(ST_EINVAL, err, errlen, "%s: entry %llu has no data", s->path,
                            (unsigned long long)e[i].index);
        if (e[i].len & ENT_BLOB_FLAG)
            return sto_fail(ST_EINVAL, err, errlen, "%s: entry %llu of %u bytes is too large",
                            s->path, (unsigned long long)e[i].index, e[i].len);
    }
    return 0;
}

/* One batch, inside the open transaction. */
static int save_batch(st_store *s, const raft_ready *rd, char *err, size_t errlen)
{
    int r = 0;
    if (rd->snapshot)
        r = sto_snap_install(s, rd->snapshot, err, errlen);
    if (!r && rd->hs_changed) {
        sqlite3_stmt *st = s->q[Q_HS_PUT];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)rd->hs.term);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)rd->hs.vote);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)rd->hs.commit);
        sqlite3_bind_int64(st, 4, hs_crc(&rd->hs));
        r = sto_step_done(s, Q_HS_PUT, err, errlen, "store hard state");
    }
    if (!r && rd->n_entries &&
        (rd->entries[0].index <= s->c.snap_index || rd->entries[0].index > s->c.last_index + 1))
        r = sto_fail(ST_EINVAL, err, errlen,
                     "%s: entries from index %llu leave a gap after the snapshot at %llu", s->path,
                     (unsigned long long)rd->entries[0].index, (unsigned long long)s->c.snap_index);
    if (!r && rd->n_entries) {
        r = log_truncate_from(s, rd->entries[0].index, err, errlen);
        if (!r)
            r = log_append(s, rd->entries, rd->n_entries, err, errlen);
    }
    return r;
}

int st_save_readies(st_store *s, const raft_ready *const *rds, size_t n, char *err, size_t errlen)
{
    bool any = false, snap = false;
    uint64_t prev_last = 0;
    for (size_t i = 0; i < n; i++) {
        const raft_ready *rd = rds[i];
        if (!rd->hs_changed && rd->n_entries == 0 && !rd->snapshot)
            continue;
        int r = check_batch(s, rd, prev_last, err, errlen);
        if (r)
            return r;
        if (rd->n_entries)
            prev_last = rd->entries[rd->n_entries - 1].index;
        any = true;
        snap |= rd->snapshot != NULL;
    }
    if (!any)
        return 0;
    /* The bytes of large entries first, durable before any row refers to
     * them (storage_blob.c). */
    int r = sto_blob_write(s, rds, n, err, errlen);
    if (r)
        return r;
    r = sto_txn_begin(s, err, errlen);
    if (r)
        return r;
    for (size_t i = 0; i < n && !r; i++)
        r = save_batch(s, rds[i], err, errlen);
    if (r) {
        sto_txn_rollback(s);
        return r;
    }
    r = sto_txn_commit(s, err, errlen);
    if (!r && snap)
        sto_checkpoint_after_snapshot(s);
    return r;
}

int st_save_ready(st_store *s, const raft_ready *rd, char *err, size_t errlen)
{
    return st_save_readies(s, &rd, 1, err, errlen);
}
