/*
 * fuzz_kv.c — libFuzzer target for the state machine's decoders and apply
 * path (raftkv/kv.c, raftkv/kv_codec.c).
 *
 * The input is cut into records (a 2-byte little-endian length, then that
 * many bytes).  Each record is, by its first byte:
 *   - odd:  a read op for kv_query();
 *   - even: an op wrapped into a command (kv_cmd_encode) and applied with
 *           kv_apply() at the next index, from one of four clients, with a
 *           sequence that sometimes repeats (a retry) or goes back (stale).
 * The whole input is also handed to kv_reply_decode() and, on a fresh store,
 * kv_snapshot_decode().  After the records the state is snapshotted, decoded
 * into a second store and snapshotted again: the two snapshots must be the
 * same bytes (the encoding is canonical and the decode complete).
 * Limits are small so that a sparse write at a huge offset cannot exhaust
 * memory.  Build and run: make fuzz-kv (FUZZ_SECONDS, default 600).
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

    kv *k = kv_new(&limits);
    if (!k)
        return 0;
    uint64_t index = 0, seq[4] = {0, 0, 0, 0};
    size_t off = 0;
    while (off + 2 <= size) {
        size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;
        off += 2;
        if (len > size - off)
            len = size - off;
        const uint8_t *rec = data + off;
        off += len;
        uint8_t *reply = NULL;
        size_t rlen = 0;
        if (len && (rec[0] & 1)) {
            if (kv_query(k, rec + 1, len - 1, &reply, &rlen) != 0)
                abort(); /* only out of memory may fail */
        } else {
            unsigned c = len > 1 ? rec[1] & 3 : 0;
            unsigned how = len > 1 ? (rec[1] >> 2) & 7 : 0;
            if (how == 0 && seq[c] > 1)
                seq[c]--;          /* stale */
            else if (how != 1)
                seq[c]++;          /* how == 1: a retry of the last seq */
            const uint8_t *op = len > 2 ? rec + 2 : rec;
            size_t oplen = len > 2 ? len - 2 : 0;
            uint8_t *cmd = NULL;
            size_t cmdlen = 0;
            if (kv_cmd_encode(c + 1, seq[c], (int64_t)index * 1000, op, oplen, &cmd, &cmdlen) != 0)
                abort();
            if (kv_apply(k, ++index, cmd, cmdlen, &reply, &rlen) < 0)
                abort();
            free(cmd);
        }
        if (reply) {
            if (kv_reply_decode(reply, rlen, &r) != 0)
                abort(); /* the store's own replies always decode */
            kv_reply_free(&r);
            free(reply);
        }
    }

    uint8_t *s1 = NULL, *s2 = NULL;
    size_t l1 = 0, l2 = 0;
    if (kv_snapshot_encode(k, &s1, &l1) != 0)
        abort();
    kv *k2 = kv_new(&limits);
    if (!k2 || kv_snapshot_decode(k2, s1, l1) != 0)
        abort();
    if (kv_snapshot_encode(k2, &s2, &l2) != 0 || l1 != l2 || memcmp(s1, s2, l1) != 0)
        abort();
    free(s1);
    free(s2);
    kv_free(k2);
    kv_free(k);
    return 0;
}
