/*
 * fs_node_backend.h — the mount's backend (fs/fs_backend.h) over a running
 * node: the composition root (tools/cmd_node.c) hands one to fs_start().
 */
#ifndef HSTORE_FS_NODE_BACKEND_H
#define HSTORE_FS_NODE_BACKEND_H

#include "fs/fs_backend.h"

struct node;

/* A backend whose context is n, with n's id, op timeout and file size bound.
 * n must outlive every mount started with it. */
fs_backend fs_node_backend(struct node *n);

#endif
