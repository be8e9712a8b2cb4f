/*
 * fuzz_wire.c — libFuzzer target for the wire decoder (net/wire.c,
 * net/wire_snap.c and net/wire_member.c).
 *
 * Two ways in, chosen by the first input byte:
 *   - raw: the bytes go to every decoder as a frame, exercising header checks;
 *   - wrapped (first byte >= 0x80): the rest becomes the payload of a frame
 *     with a correct header and CRC32C, so the fuzzer reaches the field
 *     decoders instead of stopping at the checksum.
 * Whatever decodes must re-encode to exactly the input (the encoding is
 * canonical), which catches a decoder that misreads a field, not just one
 * that crashes.  Build and run: make fuzz (FUZZ_SECONDS=600).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/wire.h"
#include "raftkv/crc32c.h"

static void check_same(const net_buf *re, const uint8_t *in, size_t len)
{
    if (re->len != len || memcmp(re->p, in, len) != 0)
        abort();
}

static void decode_all(const uint8_t *buf, size_t len)
{
    net_buf re = {0};
    raft_msg m;
    if (net_decode_raft(buf, len, &m) == 0) {
        if (net_encode_raft(&m, &re) != 0)
            abort();
        check_same(&re, buf, len);
        net_raft_msg_free(&m);
    }
    net_client_req q;
    if (net_decode_client_req(buf, len, &q) == 0) {
        if (net_encode_client_req(&q, &re) != 0)
            abort();
        check_same(&re, buf, len);
    }
    net_client_resp s;
    if (net_decode_client_resp(buf, len, &s) == 0) {
        if (net_encode_client_resp(&s, &re) != 0)
            abort();
        check_same(&re, buf, len);
    }
    uint64_t id;
    if (net_decode_status_req(buf, len, &id) == 0) {
        if (net_encode_status_req(id, &re) != 0)
            abort();
        check_same(&re, buf, len);
    }
    static net_status_resp st;
    if (net_decode_status_resp(buf, len, &st) == 0) {
        if (net_encode_status_resp(&st, &re) != 0)
            abort();
        check_same(&re, buf, len);
    }
    uint8_t nonce[NET_NONCE_LEN], code;
    uint64_t nid;
    if (net_decode_hello(buf, len, nonce) == 0) {
        if (net_encode_hello(nonce, &re) != 0)
            abort();
        check_same(&re, buf, len);
    }
    if (net_decode_hello_ack(buf, len, &nid, nonce) == 0) {
        if (net_encode_hello_ack(nid, nonce, &re) != 0)
            abort();
        check_same(&re, buf, len);
    }
    if (net_decode_error(buf, len, &code) == 0) {
        if (net_encode_error(code, &re) != 0)
            abort();
        check_same(&re, buf, len);
    }
    net_snap_req sq;
    if (net_decode_snap_req(buf, len, &sq) == 0) {
        if (net_encode_snap_req(&sq, &re) != 0)
            abort();
        check_same(&re, buf, len);
    }
    net_snap_resp sr;
    if (net_decode_snap_resp(buf, len, &sr) == 0) {
        if (net_encode_snap_resp(&sr, &re) != 0)
            abort();
        check_same(&re, buf, len);
    }
    net_member_req mq;
    if (net_decode_member_req(buf, len, &mq) == 0) {
        if (net_encode_member_req(&mq, &re) != 0)
            abort();
        check_same(&re, buf, len);
    }
    net_member_resp mr;
    if (net_decode_member_resp(buf, len, &mr) == 0) {
        if (net_encode_member_resp(&mr, &re) != 0)
            abort();
        check_same(&re, buf, len);
    }
    (void)net_frame_check(buf, len, NULL);
    net_buf_free(&re);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] < 0x80) {
        /* an exact-size heap copy so ASan sees any read past the end */
        uint8_t *p = malloc(size - 1 ? size - 1 : 1);
        if (!p)
            return 0;
        memcpy(p, data + 1, size - 1);
        decode_all(p, size - 1);
        free(p);
        return 0;
    }
    size_t plen = size - 1;
    uint8_t *f = malloc(NET_HDR_LEN + plen);
    if (!f)
        return 0;
    uint32_t magic = NET_MAGIC, len = (uint32_t)plen, crc = crc32c(0, data + 1, plen);
    for (int i = 0; i < 4; i++) {
        f[i] = (uint8_t)(magic >> (8 * i));
        f[8 + i] = (uint8_t)(len >> (8 * i));
        f[12 + i] = (uint8_t)(crc >> (8 * i));
    }
    f[4] = NET_VERSION;
    f[5] = (uint8_t)(1 + (data[0] & 0x7f) % (NET_MSG_TYPE_MAX - 1));
    f[6] = f[7] = 0;
    memcpy(f + NET_HDR_LEN, data + 1, plen);
    decode_all(f, NET_HDR_LEN + plen);
    free(f);
    return 0;
}
