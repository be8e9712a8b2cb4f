/*
 * storage_ckpt.c — the background checkpointer of the store.
 *
 * Checkpoints (copying the WAL into the database file, with an fsync of its
 * own) run on a background thread with its own connection, so a batch of the
 * node's loop pays only for its WAL append and fdatasync, never for a
 * checkpoint.  SQLite can only start the WAL over once every frame has been
 * copied; under a steady stream of batches a concurrent checkpoint never
 * catches up exactly, so the thread copies the bulk concurrently and then
 * copies the small remaining tail while holding the store's write mutex
 * (a pause of one short checkpoint, once per few MiB of WAL).  The same
 * thread deletes, in small steps, the log rows a background snapshot
 * covers, and the snapshot files replaced (sto_snap_reap).
 */
#include "raftkv/storage_internal.h"

#include <stdio.h>
#include <string.h>

#define CKPT_START_PAGES 1024    /* WAL pages that wake the checkpointer (4 MiB) */
#define CKPT_TAIL_PAGES 256      /* tail small enough to finish with the writer paused */
#define CKPT_HARD_PAGES 65536    /* writer checkpoints itself past this (256 MiB) */
#define CKPT_FALLBACK_PAGES 4096 /* autocheckpoint if the thread cannot start */

/* Wakes the checkpointer for a checkpoint; with cleanup, also for the
 * deletions of dead log rows (drop_dead_log). */
void sto_ckpt_wake(st_store *s, bool cleanup)
{
    if (!s->ck_running)
        return;
    pthread_mutex_lock(&s->cmu);
    if (cleanup)
        s->ck_drop = true;
    if (!s->ck_req) {
        s->ck_req = true;
        pthread_cond_signal(&s->ccv);
    }
    pthread_mutex_unlock(&s->cmu);
}

void sto_ckpt_request(st_store *s)
{
    sto_ckpt_wake(s, false);
}

/* Called by SQLite in the writer after each commit with the WAL's size. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    st_store *s = arg;
    if (pages >= CKPT_HARD_PAGES || (!s->ck_running && pages >= CKPT_FALLBACK_PAGES))
        /* Safety valve: the writer holds wmu here, so this copies all. */
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    else if (pages >= CKPT_START_PAGES)
        sto_ckpt_request(s);
    return SQLITE_OK;
}

/* One step of the checkpointer's clean-up: a short transaction under the
 * write mutex that deletes a few dead log rows (first <= snapshot index)
 * left by a lazy compaction, so no batch of the node waits for them all to
 * be freed; the index is read under the mutex like every change of it.
 * 1: rows were deleted, call again; 0: none left (or an error: retried at the
 * next checkpoint); -1: the store is closing. */
static int cleanup_step(st_store *s, sqlite3 *db)
{
    pthread_mutex_lock(&s->cmu);
    bool stop = s->ck_stop;
    pthread_mutex_unlock(&s->cmu);
    if (stop)
        return -1;
    pthread_mutex_lock(&s->wmu);
    char sql[200];
    snprintf(sql, sizeof sql,
             "BEGIN IMMEDIATE; DELETE FROM log WHERE first IN (SELECT first "
             "FROM log WHERE first <= %llu ORDER BY first LIMIT 32); COMMIT",
             (unsigned long long)s->c.snap_index);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    bool more = rc == SQLITE_OK && sqlite3_changes(db) > 0;
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&s->wmu);
    return more ? 1 : 0;
}

/* Deletes the dead log rows, in steps (cleanup_step). */
static void drop_dead_log(st_store *s, sqlite3 *db)
{
    for (int step = 0; step < 1000000; step++)
        if (cleanup_step(s, db) <= 0)
            return;
}

static void *ckpt_main(void *arg)
{
    st_store *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->cmu);
        while (!s->ck_req && !s->ck_stop) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += 1;
            pthread_cond_timedwait(&s->ccv, &s->cmu, &dl);
        }
        bool stop = s->ck_stop;
        bool drop = s->ck_drop;
        s->ck_req = false;
        s->ck_drop = false;
        pthread_mutex_unlock(&s->cmu);
        if (stop)
            break;
        if (drop) {
            sto_snap_reap(s);
            sto_blob_reap(s);
            drop_dead_log(s, s->ckdb);
        }
        int log = 0, done = 0;
        /* Copy the bulk while the writer goes on. */
        for (int i = 0; i < 4; i++) {
            if (sqlite3_wal_checkpoint_v2(s->ckdb, "main", SQLITE_CHECKPOINT_PASSIVE, &log,
                                          &done) != SQLITE_OK ||
                log - done <= CKPT_TAIL_PAGES)
                break;
        }
        /* Finish the tail with the writer paused so the WAL can restart. */
        if (log > done && log - done <= CKPT_TAIL_PAGES) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_nsec += 200 * 1000 * 1000;
            if (dl.tv_nsec >= 1000000000) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000;
            }
            if (pthread_mutex_timedlock(&s->wmu, &dl) == 0) {
                sqlite3_wal_checkpoint_v2(s->ckdb, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
                pthread_mutex_unlock(&s->wmu);
            }
        }
    }
    return NULL;
}

/* Starts the checkpointer; without it the writer checkpoints inline.
 * Its connection runs with synchronous=NORMAL: in WAL mode that still syncs
 * the WAL before each checkpoint and the database after it, so checkpoints
 * are as safe as before; what it drops is the fsync of its own small
 * transactions, the deletions of dead log rows and old snapshot chunks.  Those
 * hold the writer mutex, so their fsyncs would stall the node's loop; and
 * losing one in a crash only leaves rows that are dead anyway, deleted again
 * after the restart (the loop's next FULL commit syncs them with its own). */
void sto_ckpt_start(st_store *s)
{
    sqlite3_wal_hook(s->db, wal_hook, s);
    if (sqlite3_open_v2(s->path, &s->ckdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(s->ckdb, "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -2048;", NULL, NULL,
                     NULL) != SQLITE_OK) {
        sqlite3_close_v2(s->ckdb);
        s->ckdb = NULL;
        return;
    }
    sqlite3_busy_timeout(s->ckdb, 2000);
    sqlite3_wal_autocheckpoint(s->ckdb, 0);
    s->ck_running = true;
    if (pthread_create(&s->ck_thr, NULL, ckpt_main, s) != 0) {
        s->ck_running = false;
        sqlite3_close_v2(s->ckdb);
        s->ckdb = NULL;
    }
}

void sto_ckpt_stop(st_store *s)
{
    if (s->ck_running) {
        pthread_mutex_lock(&s->cmu);
        s->ck_stop = true;
        pthread_cond_signal(&s->ccv);
        pthread_mutex_unlock(&s->cmu);
        pthread_join(s->ck_thr, NULL);
        s->ck_running = false;
    }
    if (s->ckdb) {
        /* Not the last connection: the WAL stays for the writer. */
        sqlite3_close_v2(s->ckdb);
        s->ckdb = NULL;
    }
}

/* After a snapshot: have its pages copied into the database file now, in
 * the background, rather than by whichever batch next crosses the threshold
 * (the data is already durable in the WAL). */
void sto_checkpoint_after_snapshot(st_store *s)
{
    if (s->ck_running)
        sto_ckpt_request(s);
    else
        sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}
