/*
 * backup_file.h — the file `hstore backup` writes and `hstore restore`
 * reads: a 64-byte header, then the node's stored snapshot (one zstd frame
 * of the state machine's snapshot bytes, raftkv/kv.h) as it was stored.
 *
 *   offset size field (little-endian)
 *        0    8 magic     "HSTBACKP"
 *        8    4 version   BK_VERSION
 *       12    4 header    length of the header (64)
 *       16    8 index     the log index whose state the file holds
 *       24    8 term      the term of that entry
 *       32    8 length    bytes of the frame that follows the header
 *       40    4 crc       CRC32C of those bytes
 *       44    4 reserved  0
 *       48    8 created   wall-clock time of the backup, ns since 1970
 *       56    4 reserved  0
 *       60    4 hcrc      CRC32C of bytes 0..59
 *
 * A file is accepted only whole: the magic, version and header checksum
 * (another kind of file), the length (a truncated or extended file), the
 * frame's checksum (a corrupt one), and then the state itself must decode to
 * the header's index with zstd's own content checksum verified.
 */
#ifndef HSTORE_TOOLS_BACKUP_FILE_H
#define HSTORE_TOOLS_BACKUP_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "raftkv/kv.h"

#define BK_MAGIC "HSTBACKP"
#define BK_VERSION 1
#define BK_HDR_LEN 64

typedef struct bk_header {
    uint64_t index, term, length;
    uint32_t crc;
    int64_t created_ns;
} bk_header;

void bk_header_encode(const bk_header *h, uint8_t out[BK_HDR_LEN]);

/* Opens path and checks it whole (header, length, checksum) without
 * decoding the state.  0 with *fd open at the first byte of the frame, or -1
 * with a message in err naming the file and what is wrong with it. */
int bk_open(const char *path, bk_header *h, int *fd, char *err, size_t errlen);

/* Decodes the frame at fd (bk_open's) into a new state machine: *out
 * (kv_free it).  tee, when not NULL, receives every byte of the state as it
 * is decompressed (restore stores them); a non-zero return stops the decode.
 * *raw: bytes of state.  0, or -1 with a message in err. */
typedef int (*bk_tee_fn)(void *arg, const void *buf, size_t n);
int bk_decode(int fd, const char *path, const bk_header *h, bk_tee_fn tee, void *arg, kv **out,
              uint64_t *raw, char *err, size_t errlen);

/* One line describing a state: "N files, M directories, B bytes of data". */
void bk_describe(const kv *k, char *buf, size_t cap);

#endif
