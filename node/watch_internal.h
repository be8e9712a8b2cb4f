/*
 * watch_internal.h — the node's side of the ring of recent changes
 * (watch.h): made at start, fed by the loop as it applies entries.
 */
#ifndef HSTORE_NODE_WATCH_INTERNAL_H
#define HSTORE_NODE_WATCH_INTERNAL_H

#include "node/watch.h"
#include "raftkv/raft.h"

typedef struct node_watch node_watch;

/* A ring that has seen everything up to applied. */
node_watch *watch_new(uint64_t applied);
void watch_free(node_watch *w);
/* On the loop, for every entry applied in order: reply is the state
 * machine's reply to a command (NULL for other entries). */
void watch_note(node_watch *w, const raft_entry *e, const uint8_t *reply, size_t rlen);
/* node_watch_read on the ring itself. */
size_t watch_read(node_watch *w, uint64_t *from, const char *prefix, node_change *out, size_t max,
                  int wait_ms, bool *lost);

#endif
