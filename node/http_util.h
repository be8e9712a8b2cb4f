/*
 * http_util.h — the pure pieces of the HTTP server (node/http.c), kept apart
 * so unit tests reach them: a growing text buffer with JSON string escaping,
 * the parsing of HOST:PORT, of an Authorization header and of the decimal
 * numbers in query strings.  No I/O, no node state.
 */
#ifndef HSTORE_NODE_HTTP_UTIL_H
#define HSTORE_NODE_HTTP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growing NUL-terminated text buffer.  On a failed allocation it keeps
 * what it had and sets oom; every later append is then ignored, so a caller
 * checks oom once at the end. */
typedef struct hbuf {
    char *p;
    size_t len, cap;
    bool oom;
} hbuf;

void hbuf_free(hbuf *b);
void hbuf_put(hbuf *b, const void *s, size_t n);
void hbuf_puts(hbuf *b, const char *s);
void hbuf_printf(hbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string, quotes included: bytes s[0..n) with ", \ and control
 * characters escaped; bytes that are not valid UTF-8 become \u00XX of the
 * byte (so any key gives valid JSON). */
void hbuf_json_str(hbuf *b, const char *s, size_t n);
/* Hands the text over (caller frees); the buffer is empty afterwards. */
char *hbuf_take(hbuf *b, size_t *len);

/* "HOST:PORT" (HOST an IPv4 address or a name, PORT 1..65535) into host and
 * *port.  0, or -1 with a message in err. */
int http_parse_addr(const char *s, char *host, size_t hostcap, int *port, char *err, size_t errlen);

/* The token of an "Authorization: Bearer TOKEN" value (the scheme is
 * case-insensitive, spaces around the token allowed): *tok and *len point
 * into v.  False when v is NULL or not of that form. */
bool http_bearer(const char *v, const char **tok, size_t *len);

/* A query parameter holding a decimal uint64 (no sign, no suffix, no
 * spaces).  0 or -1. */
int http_parse_u64(const char *s, uint64_t *out);

#endif
