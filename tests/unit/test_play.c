/*
 * test_play.c — the playground's routes without a cluster: the page's files
 * are compiled in and served by path, the routes under /v1/play/ answer bad
 * paths and methods with JSON errors, and every control action is refused
 * (403) in a node not started by `hstore up`.  The control of a real cluster
 * is tested in tests/cluster/test_play_*.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node/play.h"
#include "node/play_assets.h"

static bool has(const play_reply *r, const char *s)
{
    return r->len > 0 && memmem(r->data, r->len, s, strlen(s)) != NULL;
}

static void test_files_served(void **state)
{
    (void)state;
    play_reply r;
    assert_true(play_serve_file("/", &r));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.type, "text/html; charset=utf-8");
    assert_true(has(&r, "<title>hstore playground</title>"));
    assert_null(r.body);
    assert_true(play_serve_file("/index.html", &r));
    assert_true(has(&r, "/play/play.js"));
    assert_true(play_serve_file("/play/play.js", &r));
    assert_string_equal(r.type, "text/javascript; charset=utf-8");
    assert_true(has(&r, "/v1/play/cluster"));
    assert_true(play_serve_file("/play/play.css", &r));
    assert_string_equal(r.type, "text/css; charset=utf-8");
    /* the query string does not matter; other paths are not files */
    assert_non_null(play_asset_find("/?token=x"));
    assert_false(play_serve_file("/play/", &r));
    assert_false(play_serve_file("/play/../node.c", &r));
    assert_false(play_serve_file("/v1/status", &r));
    assert_false(play_serve_file("", &r));
}

static void test_routes(void **state)
{
    (void)state;
    play_reply r;
    assert_false(play_handle(NULL, "GET", "/v1/status", &r));
    assert_false(play_handle(NULL, "GET", "/", &r));

    static const struct {
        const char *method, *path;
        int status;
        const char *says;
    } cases[] = {
        {"GET", "/v1/play/nope", 404, "no such playground route"},
        {"POST", "/v1/play/nodes/0/kill", 404, "no such playground route"},
        {"POST", "/v1/play/nodes/x/kill", 404, "no such playground route"},
        {"POST", "/v1/play/nodes/2/kill/more", 404, "no such playground route"},
        {"POST", "/v1/play/cluster", 405, "GET /v1/play/cluster"},
        {"GET", "/v1/play/nodes/2/kill", 405, "POST"},
        {"POST", "/v1/play/nodes/2/kill", 403, "not started by `hstore up`"},
        {"POST", "/v1/play/nodes/2/restart", 403, "not started by `hstore up`"},
        {"POST", "/v1/play/nodes/2/partition", 403, "not started by `hstore up`"},
        {"POST", "/v1/play/nodes/1/explode", 403, "not started by `hstore up`"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&r, 0, sizeof r);
        assert_true(play_handle(NULL, cases[i].method, cases[i].path, &r));
        if (r.status != cases[i].status || !has(&r, cases[i].says))
            fail_msg("%s %s: %d %.*s", cases[i].method, cases[i].path, r.status, (int)r.len,
                     (const char *)r.data);
        assert_string_equal(r.type, "application/json");
        assert_true(has(&r, "{\"error\":\""));
        play_reply_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_served),
        cmocka_unit_test(test_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
