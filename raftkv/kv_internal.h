/*
 * kv_internal.h — what kv.c and kv_codec.c share beyond kv.h (not public
 * API).  Bytes are written and read with raftkv/byte.h.
 */
#ifndef HSTORE_KV_INTERNAL_H
#define HSTORE_KV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raftkv/byte.h"
#include "raftkv/kv.h"

/* kv_reply_encode, except that when data_slot is non-NULL the r->data_len data
 * bytes are not copied: *data_slot is where the caller must write them (lets a
 * GET fill the reply straight from file chunks, without a second copy). */
int kv_reply_encode_ex(const kv_reply *r, uint8_t **out, size_t *out_len, uint8_t **data_slot);

#endif
