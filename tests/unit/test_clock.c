/* Unit tests: the clock seam and ISO 8601 parsing for --at. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include "common/clock.h"

static void test_parse(void **state)
{
    static const struct {
        const char *text;
        int64_t t;
        int local;
    } ok[] = {
        {"1970-01-01T00:00:00Z", 0, 0},
        {"2026-11-30T10:00", 1796032800, 1},
        {"2026-11-30 10:00:00", 1796032800, 1},
        {"2026-11-30T10:00:00Z", 1796032800, 0},
        {"2026-11-30T11:00:00+01:00", 1796032800, 0},
        {"2026-11-30T05:00-0500", 1796032800, 0},
        {"2026-11-30", 1795996800, 1},
        {"2024-02-29T12:00Z", 1709208000, 0},
    };
    static const char *const bad[] = {"",
                                      "2026",
                                      "2026-13-01",
                                      "2026-02-29",
                                      "2026-11-31",
                                      "2026-11-30T24:00",
                                      "2026-11-30T10:60",
                                      "2026-11-30T10:00Q",
                                      "30/11/2026",
                                      "2026-11-30T10:00+25:00",
                                      "2026-11-30T10"};
    int64_t t;
    int local;

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(ok); i++) {
        if (clock_parse_iso8601(ok[i].text, &t, &local) != 0)
            fail_msg("'%s' should parse", ok[i].text);
        assert_int_equal(t, ok[i].t);
        assert_int_equal(local, ok[i].local);
    }
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(bad); i++) {
        if (clock_parse_iso8601(bad[i], &t, &local) == 0)
            fail_msg("'%s' should not parse", bad[i]);
    }
}

static void test_fake(void **state)
{
    (void)state;
    clock_set_fake(1234);
    assert_int_equal(clock_now(), 1234);
    clock_clear_fake();
    assert_true(clock_now() > 1700000000);
    assert_int_equal(clock_days_from_civil(2000, 3, 1), 11017);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_fake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
