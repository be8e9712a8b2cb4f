/*
 * test_http.c — the pure pieces of the HTTP server: JSON strings (escapes,
 * invalid UTF-8), the text buffer, HOST:PORT, Authorization headers,
 * decimal query numbers, and the bearer token derived from the secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/auth.h"
#include "node/http_util.h"

static char *json(const char *s, size_t n)
{
    hbuf b = {0};
    hbuf_json_str(&b, s, n);
    return hbuf_take(&b, NULL);
}

static void test_json_str(void **state)
{
    (void)state;
    char *j = json("a\"b\\c", 5);
    assert_string_equal(j, "\"a\\\"b\\\\c\"");
    free(j);
    j = json("x\n\ty\x01\x7f", 6);
    assert_string_equal(j, "\"x\\u000a\\u0009y\\u0001\\u007f\"");
    free(j);
    j = json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14);
    assert_string_equal(j, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    free(j);
    /* invalid: a lone continuation byte, a truncated sequence, an overlong
     * encoding, a surrogate */
    j = json("\x80", 1);
    assert_string_equal(j, "\"\\u0080\"");
    free(j);
    j = json("a\xc3", 2);
    assert_string_equal(j, "\"a\\u00c3\"");
    free(j);
    j = json("\xc0\xaf", 2);
    assert_string_equal(j, "\"\\u00c0\\u00af\"");
    free(j);
    j = json("\xed\xa0\x80", 3);
    assert_string_equal(j, "\"\\u00ed\\u00a0\\u0080\"");
    free(j);
    j = json("a\0b", 3);
    assert_string_equal(j, "\"a\\u0000b\"");
    free(j);
    j = json("", 0);
    assert_string_equal(j, "\"\"");
    free(j);
}

static void test_hbuf(void **state)
{
    (void)state;
    hbuf b = {0};
    for (int i = 0; i < 1000; i++)
        hbuf_printf(&b, "%d,", i);
    hbuf_puts(&b, "end");
    size_t len;
    char *p = hbuf_take(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, strlen(p));
    assert_memory_equal(p, "0,1,2,", 6);
    assert_string_equal(p + len - 7, "999,end");
    free(p);
    assert_null(b.p);
    /* an empty buffer still gives an empty string */
    p = hbuf_take(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    assert_string_equal(p, "");
    free(p);
}

static void test_parse_addr(void **state)
{
    (void)state;
    char host[64], err[128];
    int port = 0;
    assert_int_equal(http_parse_addr("127.0.0.1:8100", host, sizeof host, &port, err, sizeof err),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8100);
    assert_int_equal(http_parse_addr("localhost:1", host, sizeof host, &port, err, sizeof err), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 1);
    const char *bad[] = {"",
                         ":80",
                         "host",
                         "host:",
                         "host:0",
                         "h:65536",
                         "h:-1",
                         "h:80x",
                         "h o:80",
                         "h:+80",
                         "h:1 ",
                         "a/b:80",
                         "h:99999999999999999999999",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        err[0] = '\0';
        assert_int_equal(http_parse_addr(bad[i], host, sizeof host, &port, err, sizeof err), -1);
        assert_true(err[0] != '\0');
    }
    char small[4];
    assert_int_equal(http_parse_addr("longname:80", small, sizeof small, &port, err, sizeof err),
                     -1);
    assert_int_equal(http_parse_addr(NULL, host, sizeof host, &port, err, sizeof err), -1);
}

static void test_bearer(void **state)
{
    (void)state;
    const char *t;
    size_t n;
    assert_true(http_bearer("Bearer abc", &t, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(t, "abc", 3);
    assert_true(http_bearer("  bearer   abc  ", &t, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(t, "abc", 3);
    assert_false(http_bearer(NULL, &t, &n));
    assert_false(http_bearer("", &t, &n));
    assert_false(http_bearer("Bearer", &t, &n));
    assert_false(http_bearer("Bearer ", &t, &n));
    assert_false(http_bearer("Basic abc", &t, &n));
    assert_false(http_bearer("Bearerabc", &t, &n));
    assert_false(http_bearer("Bearer a b", &t, &n));
}

static void test_parse_u64(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(http_parse_u64("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(http_parse_u64("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    const char *bad[] = {
        "",  "-1", "+1", " 1", "1 ", "1x", "0x10", "18446744073709551616", "999999999999999999999",
        NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(http_parse_u64(bad[i], &v), -1);
    assert_int_equal(http_parse_u64(NULL, &v), -1);
}

static void test_token(void **state)
{
    (void)state;
    uint8_t s1[32], s2[32];
    memset(s1, 1, sizeof s1);
    memset(s2, 2, sizeof s2);
    net_auth a1, a1b, a2;
    assert_int_equal(net_auth_from_secret(&a1, s1, sizeof s1), NET_OK);
    assert_int_equal(net_auth_from_secret(&a1b, s1, sizeof s1), NET_OK);
    assert_int_equal(net_auth_from_secret(&a2, s2, sizeof s2), NET_OK);
    char t1[NET_HTTP_TOKEN_LEN + 1], t1b[NET_HTTP_TOKEN_LEN + 1], t2[NET_HTTP_TOKEN_LEN + 1];
    net_auth_http_token(&a1, t1);
    net_auth_http_token(&a1b, t1b);
    net_auth_http_token(&a2, t2);
    assert_int_equal(strlen(t1), NET_HTTP_TOKEN_LEN);
    assert_string_equal(t1, t1b);
    assert_string_not_equal(t1, t2);
    /* a key of its own: not one of the frame keys */
    assert_memory_not_equal(a1.http, a1.peer, NET_KEY_LEN);
    assert_memory_not_equal(a1.http, a1.req, NET_KEY_LEN);
    assert_memory_not_equal(a1.http, a1.resp, NET_KEY_LEN);
    assert_true(net_auth_http_token_ok(&a1, t1, strlen(t1)));
    assert_false(net_auth_http_token_ok(&a1, t2, strlen(t2)));
    assert_false(net_auth_http_token_ok(&a1, t1, strlen(t1) - 1));
    assert_false(net_auth_http_token_ok(&a1, "", 0));
    char bad[NET_HTTP_TOKEN_LEN + 1];
    memcpy(bad, t1, sizeof bad);
    bad[NET_HTTP_TOKEN_LEN - 1] ^= 1;
    assert_false(net_auth_http_token_ok(&a1, bad, NET_HTTP_TOKEN_LEN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_str),   cmocka_unit_test(test_hbuf),
        cmocka_unit_test(test_parse_addr), cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_parse_u64),  cmocka_unit_test(test_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
