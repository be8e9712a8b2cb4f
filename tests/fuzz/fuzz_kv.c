/*
 * fuzz_kv.c — libFuzzer target for the state machine's decoders and apply
 * path (raftkv/kv.c, raftkv/kv_codec.c).
 *
 * The input is cut into records (a 2-byte little-endian length, then that
 * many bytes).  Each record is, by its first byte:
 *   - odd:           a read op for kv_query();
 *   - even, bit 1:   raw bytes handed to kv_apply() as a whole log entry (a
 *                    command envelope or anything else);
 *   - even:          an op wrapped into a well-formed command (kv_cmd_encode)
 *                    and applied with kv_apply() at the next index, from one
 *                    of three registered sessions or from no session, with a
 *                    sequence that sometimes repeats (a retry) or goes back
 *                    (stale), and a time that sometimes jumps far ahead (a
 *                    proposer with a wrong clock).
 * These are the entries a committed log can hold, so apply must take every
 * one: it may fail only for lack of memory (abort otherwise), its replies
 * always decode, and a reply to a command stays small (reads wrapped in a
 * command are not executed; large data travels through kv_query only).
 * A second replica restarts from a snapshot of the first half-way and
 * applies the rest: at the end both must hold the same state (equal
 * snapshot bytes), so apply is deterministic and the snapshot complete
 * (sessions, session time, limits).  The whole input is also handed to
 * kv_reply_decode() and, on a fresh store, kv_snapshot_decode().
 * SET_LIMITS ops are kept small so that a sparse write at a huge offset
 * cannot exhaust the fuzzer's memory.  Build and run: make fuzz-kv
 * (FUZZ_SECONDS, default 600).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raftkv/kv.h"

static const kv_limits limits = {
    .max_file_size = 1u << 20,
    .max_total_bytes = 8u << 20,
    .max_inodes = 4096,
};

/* A reply to a command: a status, attributes, statfs or a session id. */
#define CMD_REPLY_MAX 512

static void check_reply(const uint8_t *reply, size_t rlen, bool command)
{
    kv_reply r;
    if (kv_reply_decode(reply, rlen, &r) != 0)
        abort(); /* the store's own replies always decode */
    kv_reply_free(&r);
    if (command && rlen > CMD_REPLY_MAX)
        abort();
}

/* Applies one entry to both replicas (k2 may be NULL before it exists). */
static void apply_both(kv *k, kv *k2, uint64_t index, const uint8_t *cmd, size_t len)
{
    uint8_t *reply = NULL, *reply2 = NULL;
    size_t rlen = 0, rlen2 = 0;
    if (kv_apply(k, index, cmd, len, &reply, &rlen) < 0)
        abort();
    if (reply)
        check_reply(reply, rlen, true);
    if (k2) {
        if (kv_apply(k2, index, cmd, len, &reply2, &rlen2) < 0)
            abort();
        if (rlen != rlen2 || (rlen && memcmp(reply, reply2, rlen) != 0))
            abort(); /* replicas answer alike */
        free(reply2);
    }
    free(reply);
}

static void wrap_apply(kv *k, kv *k2, uint64_t *index, uint64_t client, uint64_t seq,
                       int64_t time, const uint8_t *op, size_t oplen)
{
    uint8_t *cmd = NULL;
    size_t cmdlen = 0;
    if (kv_cmd_encode(client, seq, time, op, oplen, &cmd, &cmdlen) != 0)
        abort();
    apply_both(k, k2, ++*index, cmd, cmdlen);
    free(cmd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_reply r;
    if (kv_reply_decode(data, size, &r) == 0)
        kv_reply_free(&r);
    kv *fresh = kv_new(&limits);
    if (!fresh)
        return 0;
    (void)kv_snapshot_decode(fresh, data, size);
    kv_free(fresh);

    kv *k = kv_new(&limits), *k2 = NULL;
    if (!k)
        return 0;
    uint64_t index = 0, seq[4] = {0, 0, 0, 0}, sess[4] = {0, 0, 0, 0};
    int64_t now = 1000000000000LL;
    /* three registered sessions; client 0 has none */
    uint8_t *regop = NULL;
    size_t reglen = 0;
    kv_op reg = {.type = KV_OP_REGISTER};
    if (kv_op_encode(&reg, &regop, &reglen) != 0)
        abort();
    for (int c = 1; c < 4; c++) {
        wrap_apply(k, NULL, &index, 0x5eed, 0, now, regop, reglen);
        sess[c] = index;
    }
    free(regop);
    size_t off = 0;
    while (off + 2 <= size) {
        size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;
        off += 2;
        if (len > size - off)
            len = size - off;
        const uint8_t *rec = data + off;
        off += len;
        if (k2 == NULL && off * 2 >= size) {
            /* half-way: a second replica restarts from a snapshot */
            uint8_t *sb = NULL;
            size_t sl = 0;
            if (kv_snapshot_encode(k, &sb, &sl) != 0)
                abort();
            k2 = kv_new(NULL);
            if (!k2 || kv_snapshot_decode(k2, sb, sl) != 0)
                abort();
            free(sb);
        }
        if (len && (rec[0] & 1)) {
            uint8_t *reply = NULL;
            size_t rlen = 0;
            if (kv_query(k, rec + 1, len - 1, &reply, &rlen) != 0)
                abort(); /* only out of memory may fail */
            check_reply(reply, rlen, false);
            free(reply);
            continue;
        }
        if (len && (rec[0] & 2)) {
            uint64_t cid, sq;
            int64_t t;
            const uint8_t *rop;
            size_t rol;
            kv_op o;
            if (kv_cmd_decode(rec + 1, len - 1, &cid, &sq, &t, &rop, &rol) == 0 &&
                kv_op_decode(rop, rol, &o) == 0 && o.type == KV_OP_SET_LIMITS)
                continue;   /* unbounded limits: the wrapped form below bounds them */
            apply_both(k, k2, ++index, rec + 1, len - 1);
            continue;
        }
        unsigned c = len > 1 ? rec[1] & 3 : 0;
        unsigned how = len > 1 ? (rec[1] >> 2) & 7 : 0;
        if (how == 0 && seq[c] > 1)
            seq[c]--;          /* stale */
        else if (how != 1)
            seq[c]++;          /* how == 1: a retry of the last seq */
        now += len > 1 && (rec[1] & 0x80) ? 3600000000000LL : 1000; /* a clock an hour ahead */
        const uint8_t *op = len > 2 ? rec + 2 : rec;
        size_t oplen = len > 2 ? len - 2 : 0;
        uint8_t *fixed = NULL;
        kv_op o;
        if (kv_op_decode(op, oplen, &o) == 0 && o.type == KV_OP_SET_LIMITS) {
            o.len %= limits.max_file_size + 1;
            o.off %= limits.max_total_bytes + 1;
            o.rdev %= limits.max_inodes + 1;
            if (o.len == 0)
                o.len = limits.max_file_size;
            if (o.off == 0)
                o.off = limits.max_total_bytes;
            if (kv_op_encode(&o, &fixed, &oplen) != 0)
                abort();
            op = fixed;
        }
        wrap_apply(k, k2, &index, sess[c], c ? seq[c] : 0, now, op, oplen);
        free(fixed);
    }

    uint8_t *s1 = NULL, *s2 = NULL;
    size_t l1 = 0, l2 = 0;
    if (kv_snapshot_encode(k, &s1, &l1) != 0)
        abort();
    kv *k3 = kv_new(&limits);
    if (!k3 || kv_snapshot_decode(k3, s1, l1) != 0)
        abort();
    if (kv_snapshot_encode(k3, &s2, &l2) != 0 || l1 != l2 || memcmp(s1, s2, l1) != 0)
        abort();
    free(s2);
    if (k2) {
        if (kv_snapshot_encode(k2, &s2, &l2) != 0 || l1 != l2 || memcmp(s1, s2, l1) != 0)
            abort(); /* the restarted replica holds the same state */
        free(s2);
    }
    free(s1);
    kv_free(k3);
    kv_free(k2);
    kv_free(k);
    return 0;
}
