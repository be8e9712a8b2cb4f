/*
 * conf_codec.h — the one encoding of a raft_conf, used by the wire (snapshot
 * and append messages) and by storage (the configuration of a snapshot).
 *
 *     n u32, then n times: id u64, flags|address length u8, address bytes
 *
 * (little-endian, through byte.h).  The length byte's top bit marks a
 * learner (addresses are shorter than 128 bytes); encodings written before
 * learners existed have it clear and read as all voters.  Decoding checks every bound: at most
 * RAFT_MAX_NODES members, addresses shorter than RAFT_ADDR_MAX, no NUL inside.
 */
#ifndef HSTORE_CONF_CODEC_H
#define HSTORE_CONF_CODEC_H

#include "raftkv/byte.h"
#include "raftkv/raft.h"

/* Largest encoding of a valid configuration. */
#define RAFT_CONF_ENC_MAX (4 + RAFT_MAX_NODES * (9 + RAFT_ADDR_MAX))

/* Appends c to w; false (w->oom set) if c is invalid (too many members). */
bool raft_conf_put(bytes_w *w, const raft_conf *c);

/* Reads one configuration from r into c; false (r->bad set) if malformed. */
bool raft_conf_get(bytes_r *r, raft_conf *c);

#endif
