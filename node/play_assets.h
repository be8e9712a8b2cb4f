/*
 * play_assets.h — the playground page's files (node/play/), compiled into the
 * binary by node/play.mk: the table the HTTP server serves GET / and
 * /play/... from.
 */
#ifndef HSTORE_NODE_PLAY_ASSETS_H
#define HSTORE_NODE_PLAY_ASSETS_H

#include <stddef.h>

typedef struct play_asset {
    const char *path; /* URL path, e.g. "/" or "/play/play.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} play_asset;

/* Ends with an entry whose path is NULL (build/gen/play_assets.c). */
extern const play_asset play_assets[];

/* The file served at path (the query string ignored), or NULL. */
const play_asset *play_asset_find(const char *path);

#endif
