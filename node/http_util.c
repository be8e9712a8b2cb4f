/*
 * http_util.c — text buffer, JSON strings, address, bearer and number
 * parsing for the HTTP server (see http_util.h).
 */
#include "node/http_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void hbuf_free(hbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static bool hbuf_room(hbuf *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void hbuf_put(hbuf *b, const void *s, size_t n)
{
    if (!hbuf_room(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void hbuf_puts(hbuf *b, const char *s)
{
    hbuf_put(b, s, strlen(s));
}

void hbuf_printf(hbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !hbuf_room(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void hbuf_json_str(hbuf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    hbuf_put(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            hbuf_put(b, e, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            hbuf_printf(b, "\\u%04x", c);
            i++;
        } else {
            size_t l = utf8_len(u + i, n - i);
            if (l == 0) {
                hbuf_printf(b, "\\u%04x", c);
                i++;
            } else {
                hbuf_put(b, u + i, l);
                i += l;
            }
        }
    }
    hbuf_put(b, "\"", 1);
}

char *hbuf_take(hbuf *b, size_t *len)
{
    if (!b->p && hbuf_room(b, 0))
        b->p[0] = '\0';
    char *p = b->oom ? NULL : b->p;
    if (len)
        *len = p ? b->len : 0;
    if (!p)
        free(b->p);
    memset(b, 0, sizeof *b);
    return p;
}

int http_parse_addr(const char *s, char *host, size_t hostcap, int *port, char *err, size_t errlen)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s) {
        snprintf(err, errlen, "expected HOST:PORT, got '%s'", s ? s : "");
        return -1;
    }
    size_t hl = (size_t)(colon - s);
    if (hl >= hostcap) {
        snprintf(err, errlen, "host name too long in '%s'", s);
        return -1;
    }
    for (size_t i = 0; i < hl; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-') {
            snprintf(err, errlen, "bad host in '%s'", s);
            return -1;
        }
    }
    uint64_t p;
    if (http_parse_u64(colon + 1, &p) != 0 || p == 0 || p > 65535) {
        snprintf(err, errlen, "bad port in '%s' (1 to 65535)", s);
        return -1;
    }
    memcpy(host, s, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

bool http_bearer(const char *v, const char **tok, size_t *len)
{
    if (!v)
        return false;
    while (*v == ' ')
        v++;
    if (strncasecmp(v, "Bearer", 6) != 0 || v[6] != ' ')
        return false;
    v += 6;
    while (*v == ' ')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] == ' ' || v[i] == '\t')
            return false;
    *tok = v;
    *len = n;
    return true;
}

int http_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0]) || strlen(s) > 20)
        return -1;
    for (const char *c = s; *c; c++)
        if (!isdigit((unsigned char)*c))
            return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = (uint64_t)v;
    return 0;
}
