/*
 * hotbuf.h — large buffers of the write path, kept out of fork().
 *
 * A snapshot forks the node (snapshot.c).  fork() write-protects every
 * private page of the parent, so the first write to each page afterwards
 * takes a page fault (a copy, while the child lives) and a TLB flush on
 * every CPU.  The buffers a large write passes through (a file handle's
 * buffer, an upload part's encoding, a command) are rewritten at once, page
 * after page; from the heap they cost such a fault per 4 KiB after every
 * snapshot.  A buffer of HOTBUF_MIN bytes or more comes from a mapping of
 * its own marked MADV_DONTFORK (the child never sees it: it must not touch
 * one), and a freed one is kept for the next (up to HOTBUF_KEEP_BYTES in
 * all), so that its pages stay populated.  Smaller ones come from malloc.
 * Thread-safe.  A pointer from hotbuf_* goes back to hotbuf_* only.
 */
#ifndef HSTORE_HOTBUF_H
#define HSTORE_HOTBUF_H

#include <stddef.h>

#define HOTBUF_MIN ((size_t)256 * 1024)
#define HOTBUF_KEEP_BYTES ((size_t)48 << 20)

/* n bytes (uninitialised), or NULL. */
void *hotbuf_alloc(size_t n);
/* p (NULL or from hotbuf_*) resized to n bytes, its content kept up to the
 * smaller size; NULL (p untouched) on failure. */
void *hotbuf_realloc(void *p, size_t n);
void hotbuf_free(void *p);

#endif
