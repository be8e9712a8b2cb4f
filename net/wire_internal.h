/*
 * wire_internal.h — what the codecs of net/wire*.c share: sealing a frame
 * whose payload byte.h's writer wrote after NET_HDR_LEN reserved bytes, and
 * opening one onto byte.h's reader.  Only net/wire*.c include it.
 */
#ifndef HSTORE_NET_WIRE_INTERNAL_H
#define HSTORE_NET_WIRE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "net/wire.h"
#include "raftkv/byte.h"

/* Fills the header in front of bw's payload (bw started with
 * bw_room(bw, NET_HDR_LEN)) and hands the buffer to out.  NET_OK,
 * NET_ENOMEM (the writer ran out) or NET_EINVAL (payload too large). */
int net_frame_seal(bytes_w *bw, net_buf *out, uint8_t type);
/* Checks the whole frame and its type; r reads the payload.  Not counted. */
int net_frame_open(const void *buf, size_t len, uint8_t type, bytes_r *r);
/* Counts a decode failure in net_wire_errors(); returns rc. */
int net_wire_count_error(int rc);

#endif
