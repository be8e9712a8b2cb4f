/*
 * test_hotbuf.c — the write path's large buffers (node/hotbuf.h): content
 * kept across growth from the heap into a mapping, a freed mapping handed
 * out again, and a mapping absent from a forked child.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "node/hotbuf.h"

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 31);
}

static void check(const uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)(seed + i * 31))
            fail_msg("byte %zu differs", i);
}

static void test_grow_keeps_content(void **s)
{
    (void)s;
    uint8_t *p = hotbuf_alloc(100);
    assert_non_null(p);
    fill(p, 100, 1);
    p = hotbuf_realloc(p, 4096); /* still small */
    assert_non_null(p);
    check(p, 100, 1);
    fill(p, 4096, 2);
    p = hotbuf_realloc(p, 3 * HOTBUF_MIN); /* into a mapping */
    assert_non_null(p);
    check(p, 4096, 2);
    fill(p, 3 * HOTBUF_MIN, 3);
    p = hotbuf_realloc(p, 40 * HOTBUF_MIN); /* a mapping grown */
    assert_non_null(p);
    check(p, 3 * HOTBUF_MIN, 3);
    uint8_t *q = hotbuf_realloc(p, 10); /* never shrinks below its content */
    assert_non_null(q);
    check(q, 10, 3);
    hotbuf_free(q);
    hotbuf_free(NULL);
    assert_null(hotbuf_alloc(SIZE_MAX));
}

/* A child reads the buffer: its exit status, or 128 + the signal. */
static int child_reads(const volatile uint8_t *p)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        _exit(p[0] == 7 ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_mapping_reused_and_not_forked(void **s)
{
    (void)s;
    uint8_t *small = hotbuf_alloc(64);
    uint8_t *big = hotbuf_alloc(HOTBUF_MIN + 5);
    assert_non_null(small);
    assert_non_null(big);
    small[0] = big[0] = 7;
    assert_int_equal(child_reads(small), 0);
#if defined(__SANITIZE_ADDRESS__)
    /* Under AddressSanitizer every buffer is malloc'ed (leaks stay seen). */
    assert_int_equal(child_reads(big), 0);
#else
    assert_int_equal(child_reads(big), 128 + SIGSEGV);
    hotbuf_free(big);
    /* the freed mapping serves the next buffer of about its size */
    uint8_t *again = hotbuf_alloc(HOTBUF_MIN + 100);
    assert_ptr_equal(again, big);
    hotbuf_free(again);
    /* but not one of less than half its size (it would waste the rest) */
    uint8_t *wide = hotbuf_alloc(4 * HOTBUF_MIN);
    assert_non_null(wide);
    hotbuf_free(wide);
    uint8_t *narrow = hotbuf_alloc(HOTBUF_MIN);
    assert_non_null(narrow);
    assert_ptr_not_equal(narrow, wide);
    assert_ptr_equal(hotbuf_alloc(3 * HOTBUF_MIN), wide);
    hotbuf_free(wide);
    hotbuf_free(narrow);
    big = NULL;
#endif
    hotbuf_free(big);
    hotbuf_free(small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_keeps_content),
        cmocka_unit_test(test_mapping_reused_and_not_forked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
