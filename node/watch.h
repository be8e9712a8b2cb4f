/*
 * watch.h — the changes a node applied lately, for followers of the store
 * (the HTTP API's GET /v1/watch): a bounded ring of (index, op, key) of the
 * committed commands that changed something, filled on the node's loop as
 * it applies them, read by other threads.
 *
 * The ring holds the last NODE_WATCH_RING changes, and knows from which
 * index on it holds every change (its start).  A reader that asks for
 * changes from an index before the start missed some: it is told so (lost)
 * and goes on from the start.  A snapshot installed on this node also moves
 * the start (the changes it carried were never seen one by one).
 *
 * Keys are known for the operations that name a path from the root (what
 * the command line and the HTTP API send); an operation that names an inode
 * (most of what the mount sends) is seen with key NULL and its inode.
 */
#ifndef HSTORE_NODE_WATCH_H
#define HSTORE_NODE_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/node.h"

#define NODE_WATCH_RING 1024

typedef struct node_change {
    uint64_t index;
    int op;     /* kv_op_type */
    char *key;  /* NULL when the op named an inode or a directory inode */
    char *key2; /* the second path of RENAME and LINK, else NULL */
    uint64_t ino;
} node_change;

/* Copies into out (at most max) the changes with index >= *from whose key
 * or key2 starts with prefix ("" or NULL: every change, keyless ones too),
 * waiting up to wait_ms for one when there are none yet.  *from is moved
 * past what was looked at.  *lost is set when changes from *from on had
 * already left the ring: *from then moved to the ring's start first.
 * Returns how many changes were copied (free them with node_changes_free). */
size_t node_watch_read(node *n, uint64_t *from, const char *prefix, node_change *out, size_t max,
                       int wait_ms, bool *lost);
void node_changes_free(node_change *c, size_t cnt);
/* The index the next change will have at the least (the applied index + 1):
 * where a reader that wants only new changes starts. */
uint64_t node_watch_next(node *n);

#endif
