/*
 * test_tz.c -- common/tz against glibc, and against hand-made TZif images.
 *
 * glibc's localtime_r with TZ set is the reference; only this test touches TZ.
 * Hand-made images exercise the footer rule alone (no transitions), version 1
 * files and every kind of corruption the parser must refuse.
 */
#include "common/compat.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/tz.h"

#define Y1990 INT64_C(631152000)
#define Y2024 INT64_C(1704067200)
#define Y2027 INT64_C(1798761600)
#define Y2100 INT64_C(4102444800)

static const char *const test_tz_zones[] = {
    "Europe/London",
    "Europe/Warsaw",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "UTC",
    /* Extra zones with unusual footers: negative DST, negative and 26-hour rule times,
     * half-hour DST, two-hour DST, no DST, table-only changes. */
    "Europe/Dublin",
    "America/Nuuk",
    "Asia/Jerusalem",
    "Australia/Lord_Howe",
    "Antarctica/Troll",
    "America/Sao_Paulo",
    "Africa/Casablanca",
};

static uint64_t test_tz_rng = UINT64_C(0x9e3779b97f4a7c15);

static uint64_t test_tz_random(void)
{
    /* xorshift64: deterministic, so a failure can be reproduced. */
    test_tz_rng ^= test_tz_rng << 13;
    test_tz_rng ^= test_tz_rng >> 7;
    test_tz_rng ^= test_tz_rng << 17;
    return test_tz_rng;
}

static int64_t test_tz_between(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(test_tz_random() % (uint64_t)(hi - lo));
}

static int64_t test_tz_utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm);
}

static int64_t test_tz_local_secs(const struct tz_local *l)
{
    return test_tz_utc(l->year, l->month, l->day, l->hour, l->minute, l->second);
}

static void test_tz_use_glibc(const char *tzval)
{
    assert_int_equal(setenv("TZ", tzval, 1), 0);
    tzset();
}

/* Compare one instant with glibc; print and return 1 on a mismatch. */
static int test_tz_mismatch(const struct tz *z, const char *label, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    struct tz_local l;

    if (!localtime_r(&tt, &tm)) {
        print_error("%s: localtime_r failed at %" PRId64 "\n", label, t);
        return 1;
    }
    tz_to_local(z, t, &l);
    if (l.year == tm.tm_year + 1900 && l.month == tm.tm_mon + 1 && l.day == tm.tm_mday &&
        l.hour == tm.tm_hour && l.minute == tm.tm_min && l.second == tm.tm_sec &&
        l.wday == tm.tm_wday && l.utc_offset == tm.tm_gmtoff && l.is_dst == (tm.tm_isdst > 0))
        return 0;
    print_error("%s at %" PRId64 ": tz %04d-%02d-%02d %02d:%02d:%02d wday %d off %d dst %d, "
                "glibc %04d-%02d-%02d %02d:%02d:%02d wday %d off %ld dst %d\n",
                label, t, l.year, l.month, l.day, l.hour, l.minute, l.second, l.wday,
                (int)l.utc_offset, l.is_dst, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_wday, tm.tm_gmtoff, tm.tm_isdst);
    return 1;
}

/* n random instants in [lo, hi); glibc must already be set up. */
static int test_tz_compare(const struct tz *z, const char *label, int64_t lo, int64_t hi, int n)
{
    int bad = 0;

    for (int i = 0; i < n && bad < 10; i++)
        bad += test_tz_mismatch(z, label, test_tz_between(lo, hi));
    return bad;
}

/*
 * Every hour of 2024-2026, and every second from a minute before to a minute
 * after each hour in which the offset changes. glibc must already be set up.
 */
static int test_tz_compare_changes(const struct tz *z, const char *label)
{
    int bad = 0;
    int changes = 0;

    for (int64_t t = Y2024; t < Y2027 && bad < 10; t += 3600) {
        struct tz_local a, b;

        bad += test_tz_mismatch(z, label, t);
        tz_to_local(z, t, &a);
        tz_to_local(z, t + 3600, &b);
        if (a.utc_offset == b.utc_offset && a.is_dst == b.is_dst)
            continue;
        changes++;
        for (int64_t s = t - 60; s <= t + 3660 && bad < 10; s++)
            bad += test_tz_mismatch(z, label, s);
    }
    if (bad == 0)
        print_message("    %-46s %d changes in 2024-2026\n", label, changes);
    return bad;
}

static void test_tz_against_glibc(void **state)
{
    (void)state;
    assert_int_equal(unsetenv("TZDIR"), 0);
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(test_tz_zones); i++) {
        char err[256] = "";
        struct tz *z = tz_load(test_tz_zones[i], err, sizeof(err));

        if (!z)
            fail_msg("%s", err);
        assert_string_equal(tz_name(z), test_tz_zones[i]);
        test_tz_use_glibc(test_tz_zones[i]);
        assert_int_equal(test_tz_compare_changes(z, test_tz_zones[i]), 0);
        assert_int_equal(test_tz_compare(z, test_tz_zones[i], Y1990, Y2100, 20000), 0);
        /* The distant future (footer only) and the past before 1990 (table only). */
        assert_int_equal(test_tz_compare(z, test_tz_zones[i], Y2100, INT64_C(13569465600), 2000),
                         0);
        assert_int_equal(test_tz_compare(z, test_tz_zones[i], INT64_C(-2208988800), Y1990, 2000),
                         0);
        tz_free(z);
    }
}

/* ---- Hand-made TZif images ---- */

struct test_tz_type {
    int32_t utoff;
    int isdst;
};

/* Offsets in an image from test_tz_image with version != 0 (its version 1 block is minimal). */
#define V2_HEADER 54
#define V2_DATA 98

static size_t test_tz_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return 4;
}

static size_t test_tz_header(unsigned char *p, char version, uint32_t timecnt, uint32_t typecnt)
{
    memcpy(p, "TZif", 4);
    p[4] = (unsigned char)version;
    memset(p + 5, 0, 15);
    test_tz_put32(p + 20, 0);       /* isutcnt */
    test_tz_put32(p + 24, 0);       /* isstdcnt */
    test_tz_put32(p + 28, 0);       /* leapcnt */
    test_tz_put32(p + 32, timecnt); /* timecnt */
    test_tz_put32(p + 36, typecnt); /* typecnt */
    test_tz_put32(p + 40, 4);       /* charcnt: "XXX\0" */
    return 44;
}

/*
 * Build a TZif image in buf (at least 44 + 10 + 44 + 13 * ntrans + 6 * ntypes + 4 + footer +
 * 2 bytes). Version 0 writes a version 1 file (32-bit times, no footer); otherwise a minimal
 * version 1 block is followed by the 64-bit block and the footer.
 */
static size_t test_tz_image(unsigned char *buf, char version, const int64_t *at,
                            const unsigned char *idx, uint32_t ntrans,
                            const struct test_tz_type *types, uint32_t ntypes, const char *footer)
{
    unsigned tsize = version == 0 ? 4 : 8;
    size_t n = 0;

    if (version != 0) {
        n += test_tz_header(buf + n, version, 0, 1);
        memset(buf + n, 0, 6);
        n += 6;
        memcpy(buf + n, "XXX", 4);
        n += 4;
    }
    n += test_tz_header(buf + n, version, ntrans, ntypes);
    for (uint32_t i = 0; i < ntrans; i++) {
        uint64_t v = (uint64_t)at[i];

        if (tsize == 8)
            n += test_tz_put32(buf + n, (uint32_t)(v >> 32));
        n += test_tz_put32(buf + n, (uint32_t)v);
    }
    if (ntrans > 0)
        memcpy(buf + n, idx, ntrans);
    n += ntrans;
    for (uint32_t i = 0; i < ntypes; i++) {
        n += test_tz_put32(buf + n, (uint32_t)types[i].utoff);
        buf[n++] = (unsigned char)types[i].isdst;
        buf[n++] = 0;
    }
    memcpy(buf + n, "XXX", 4);
    n += 4;
    if (version != 0) {
        size_t flen = strlen(footer);

        buf[n++] = '\n';
        memcpy(buf + n, footer, flen);
        n += flen;
        buf[n++] = '\n';
    }
    return n;
}

/* A slim image: no transitions, one type and the footer. */
static struct tz *test_tz_slim(const char *footer, char *err, size_t errlen)
{
    static const struct test_tz_type std = {0, 0};
    unsigned char buf[512];
    size_t n = test_tz_image(buf, '2', NULL, NULL, 0, &std, 1, footer);

    return tz_parse("slim", buf, n, err, errlen);
}

static void test_tz_expect(const struct tz *z, int64_t t, int y, int mo, int d, int h, int mi,
                           int s, int32_t off, int dst)
{
    struct tz_local l;

    tz_to_local(z, t, &l);
    assert_int_equal(l.year, y);
    assert_int_equal(l.month, mo);
    assert_int_equal(l.day, d);
    assert_int_equal(l.hour, h);
    assert_int_equal(l.minute, mi);
    assert_int_equal(l.second, s);
    assert_int_equal(l.utc_offset, off);
    assert_int_equal(l.is_dst, dst);
}

static void test_tz_slim_london(void **state)
{
    char err[256] = "";
    struct tz *z = test_tz_slim("GMT0BST,M3.5.0/1,M10.5.0", err, sizeof(err));

    (void)state;
    if (!z)
        fail_msg("%s", err);
    test_tz_expect(z, test_tz_utc(2026, 3, 29, 0, 59, 59), 2026, 3, 29, 0, 59, 59, 0, 0);
    test_tz_expect(z, test_tz_utc(2026, 3, 29, 1, 0, 0), 2026, 3, 29, 2, 0, 0, 3600, 1);
    test_tz_expect(z, test_tz_utc(2026, 10, 25, 0, 59, 59), 2026, 10, 25, 1, 59, 59, 3600, 1);
    test_tz_expect(z, test_tz_utc(2026, 10, 25, 1, 0, 0), 2026, 10, 25, 1, 0, 0, 0, 0);
    test_tz_expect(z, test_tz_utc(2024, 3, 31, 1, 0, 0), 2024, 3, 31, 2, 0, 0, 3600, 1);
    test_tz_expect(z, test_tz_utc(2024, 3, 31, 0, 59, 59), 2024, 3, 31, 0, 59, 59, 0, 0);
    test_tz_expect(z, test_tz_utc(2099, 12, 31, 23, 59, 59), 2099, 12, 31, 23, 59, 59, 0, 0);
    test_tz_expect(z, test_tz_utc(2000, 2, 29, 12, 0, 0), 2000, 2, 29, 12, 0, 0, 0, 0);
    tz_free(z);
}

/* Footer strings against glibc, which parses the same string from TZ. */
static void test_tz_footers_against_glibc(void **state)
{
    static const char *const footers[] = {
        "GMT0BST,M3.5.0/1,M10.5.0",
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "<+0330>-3:30",
        "EST5EDT,M3.2.0,M11.1.0",
        "AEST-10AEDT,M10.1.0,M4.1.0/3",
        "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
        "IST-1GMT0,M10.5.0,M3.5.0/1",
        "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
        "IST-2IDT,M3.4.4/26,M10.5.0",
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
        "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3",
        "XXX3YYY,J60/0,J300/24",
        "XXX3YYY,59/0,299/-1:30",
        "XXX-5:45:30YYY-7,M2.5.6/100,M11.4.3/-100",
        "<-0230>+2:30<-0130>1:30,M4.1.5/167,M9.5.2/-167",
        "WWW+10VVV,M1.1.0,M12.5.6",
    };

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(footers); i++) {
        char err[256] = "";
        struct tz *z = test_tz_slim(footers[i], err, sizeof(err));

        if (!z)
            fail_msg("%s: %s", footers[i], err);
        test_tz_use_glibc(footers[i]);
        assert_int_equal(test_tz_compare_changes(z, footers[i]), 0);
        assert_int_equal(test_tz_compare(z, footers[i], INT64_C(0), Y2100, 5000), 0);
        tz_free(z);
    }
}

/* RFC 8536 3.3.1: DST all year. glibc gets the first hours of each UTC year wrong. */
static void test_tz_all_year_dst(void **state)
{
    char err[256] = "";
    struct tz *z = test_tz_slim("EST5EDT,0/0,J365/25", err, sizeof(err));

    (void)state;
    if (!z)
        fail_msg("%s", err);
    for (int i = 0; i < 20000; i++) {
        struct tz_local l;

        tz_to_local(z, test_tz_between(Y1990, Y2100), &l);
        assert_int_equal(l.utc_offset, -4 * 3600);
        assert_int_equal(l.is_dst, 1);
    }
    for (int y = 2020; y < 2030; y++) {
        struct tz_local l;

        for (int64_t t = test_tz_utc(y, 1, 1, 0, 0, 0) - 7200; t < test_tz_utc(y, 1, 1, 6, 0, 0);
             t += 60) {
            tz_to_local(z, t, &l);
            assert_int_equal(l.utc_offset, -4 * 3600);
        }
    }
    tz_free(z);
}

/* The real London file and a slim image with only its footer agree from 1997 on. */
static void test_tz_slim_matches_fat(void **state)
{
    char err[256] = "";
    struct tz *fat, *slim;

    (void)state;
    assert_int_equal(unsetenv("TZDIR"), 0);
    fat = tz_load("Europe/London", err, sizeof(err));
    if (!fat)
        fail_msg("%s", err);
    slim = test_tz_slim("GMT0BST,M3.5.0/1,M10.5.0", err, sizeof(err));
    if (!slim)
        fail_msg("%s", err);
    for (int i = 0; i < 100000; i++) {
        int64_t t = test_tz_between(INT64_C(852076800), Y2100);
        struct tz_local a, b;

        tz_to_local(fat, t, &a);
        tz_to_local(slim, t, &b);
        assert_memory_equal(&a, &b, sizeof(a));
        assert_int_equal(tz_local_to_utc(fat, test_tz_local_secs(&a)),
                         tz_local_to_utc(slim, test_tz_local_secs(&b)));
    }
    tz_free(fat);
    tz_free(slim);
}

/* A version 1 file: no footer, so the last type holds after the last transition. */
static void test_tz_version1(void **state)
{
    static const struct test_tz_type types[] = {{-75, 0}, {0, 0}, {3600, 1}};
    static const int64_t at[] = {-2000000000, 1000000000, 1100000000};
    static const unsigned char idx[] = {1, 2, 1};
    unsigned char buf[512];
    char err[256] = "";
    size_t n = test_tz_image(buf, 0, at, idx, 3, types, 3, NULL);
    struct tz *z = tz_parse("v1", buf, n, err, sizeof(err));
    struct tz_local l;

    (void)state;
    if (!z)
        fail_msg("%s", err);
    tz_to_local(z, INT64_C(-2000000001), &l);
    assert_int_equal(l.utc_offset, -75);
    tz_to_local(z, INT64_C(-2000000000), &l);
    assert_int_equal(l.utc_offset, 0);
    tz_to_local(z, INT64_C(999999999), &l);
    assert_int_equal(l.utc_offset, 0);
    tz_to_local(z, INT64_C(1000000000), &l);
    assert_int_equal(l.utc_offset, 3600);
    assert_int_equal(l.is_dst, 1);
    tz_to_local(z, INT64_C(1099999999), &l);
    assert_int_equal(l.utc_offset, 3600);
    tz_to_local(z, INT64_C(1100000000), &l);
    assert_int_equal(l.utc_offset, 0);
    tz_to_local(z, Y2100 * 10, &l);
    assert_int_equal(l.utc_offset, 0);
    assert_int_equal(l.is_dst, 0);
    tz_free(z);
}

/* ---- Local to UTC ---- */

struct test_tz_l2u {
    const char *zone;
    int y, mo, d, h, mi;      /* the local reading */
    int ey, emo, ed, eh, emi; /* the expected UTC instant */
};

static void test_tz_local_to_utc_cases(const struct tz *z, const char *zone)
{
    static const struct test_tz_l2u cases[] = {
        /* London: gap (taken as GMT, so 02:30 BST), overlap (the BST one), ordinary. */
        {"Europe/London", 2026, 3, 29, 1, 30, 2026, 3, 29, 1, 30},
        {"Europe/London", 2026, 3, 29, 0, 59, 2026, 3, 29, 0, 59},
        {"Europe/London", 2026, 3, 29, 2, 0, 2026, 3, 29, 1, 0},
        {"Europe/London", 2026, 10, 25, 1, 30, 2026, 10, 25, 0, 30},
        {"Europe/London", 2026, 10, 25, 0, 59, 2026, 10, 24, 23, 59},
        {"Europe/London", 2026, 10, 25, 2, 0, 2026, 10, 25, 2, 0},
        {"Europe/London", 2026, 7, 1, 12, 0, 2026, 7, 1, 11, 0},
        {"Europe/London", 2026, 1, 15, 8, 45, 2026, 1, 15, 8, 45},
        {"Europe/London", 2050, 3, 27, 1, 30, 2050, 3, 27, 1, 30},
        {"Europe/London", 2050, 10, 30, 1, 30, 2050, 10, 30, 0, 30},
        /* New York: gap 02:00-03:00 on 8 March, overlap 01:00-02:00 on 1 November 2026. */
        {"America/New_York", 2026, 3, 8, 2, 30, 2026, 3, 8, 7, 30},
        {"America/New_York", 2026, 11, 1, 1, 30, 2026, 11, 1, 5, 30},
        /* Sydney: gap 02:00-03:00 on 4 October, overlap 02:00-03:00 on 5 April 2026. */
        {"Australia/Sydney", 2026, 10, 4, 2, 30, 2026, 10, 3, 16, 30},
        {"Australia/Sydney", 2026, 4, 5, 2, 30, 2026, 4, 4, 15, 30},
        /* Chatham: gap 02:45-03:45 on 27 September, overlap 02:45-03:45 on 5 April 2026. */
        {"Pacific/Chatham", 2026, 9, 27, 3, 0, 2026, 9, 26, 14, 15},
        {"Pacific/Chatham", 2026, 4, 5, 3, 0, 2026, 4, 4, 13, 15},
        {"Asia/Kolkata", 2026, 6, 1, 9, 0, 2026, 6, 1, 3, 30},
        {"UTC", 2026, 6, 1, 9, 0, 2026, 6, 1, 9, 0},
    };

    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        const struct test_tz_l2u *c = &cases[i];
        int64_t got;

        if (strcmp(c->zone, zone) != 0)
            continue;
        got = tz_local_to_utc(z, test_tz_utc(c->y, c->mo, c->d, c->h, c->mi, 0));
        if (got != test_tz_utc(c->ey, c->emo, c->ed, c->eh, c->emi, 0))
            fail_msg("%s %04d-%02d-%02d %02d:%02d: got %" PRId64, zone, c->y, c->mo, c->d, c->h,
                     c->mi, got);
    }
}

static void test_tz_local_to_utc(void **state)
{
    char err[256] = "";
    struct tz *slim;

    (void)state;
    assert_int_equal(unsetenv("TZDIR"), 0);
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(test_tz_zones); i++) {
        struct tz *z = tz_load(test_tz_zones[i], err, sizeof(err));

        if (!z)
            fail_msg("%s", err);
        test_tz_local_to_utc_cases(z, test_tz_zones[i]);
        /* Every real instant's reading maps back to it, or to an earlier instant that reads the
         * same (the overlap). */
        for (int k = 0; k < 20000; k++) {
            int64_t t = test_tz_between(Y1990, Y2100);
            struct tz_local a, b;
            int64_t u;

            tz_to_local(z, t, &a);
            u = tz_local_to_utc(z, test_tz_local_secs(&a));
            tz_to_local(z, u, &b);
            assert_true(u <= t);
            assert_true(t - u <= 3 * 3600);
            assert_int_equal(test_tz_local_secs(&a), test_tz_local_secs(&b));
        }
        tz_free(z);
    }
    slim = test_tz_slim("GMT0BST,M3.5.0/1,M10.5.0", err, sizeof(err));
    if (!slim)
        fail_msg("%s", err);
    test_tz_local_to_utc_cases(slim, "Europe/London");
    tz_free(slim);
}

/* Agree with glibc's mktime wherever the reading is neither in a gap nor an overlap. */
static void test_tz_local_to_utc_against_mktime(void **state)
{
    (void)state;
    assert_int_equal(unsetenv("TZDIR"), 0);
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(test_tz_zones); i++) {
        char err[256] = "";
        struct tz *z = tz_load(test_tz_zones[i], err, sizeof(err));
        int checked = 0;

        if (!z)
            fail_msg("%s", err);
        test_tz_use_glibc(test_tz_zones[i]);
        for (int k = 0; k < 5000; k++) {
            int64_t local = test_tz_between(Y1990, Y2100);
            int64_t u = tz_local_to_utc(z, local);
            struct tz_local l0, l1;
            struct tm tm;
            time_t tt = (time_t)local;

            /* Skip readings within a day of an offset change. */
            tz_to_local(z, u - 86400, &l0);
            tz_to_local(z, u + 86400, &l1);
            if (l0.utc_offset != l1.utc_offset || l0.is_dst != l1.is_dst)
                continue;
            gmtime_r(&tt, &tm);
            tm.tm_isdst = -1;
            assert_int_equal(u, (int64_t)mktime(&tm));
            checked++;
        }
        assert_true(checked > 4000);
        tz_free(z);
    }
}

/* ---- Errors ---- */

static void test_tz_expect_error(struct tz *z, const char *err, const char *want)
{
    if (z) {
        tz_free(z);
        fail_msg("accepted; wanted error containing \"%s\"", want);
    }
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void test_tz_bad_names(void **state)
{
    static const struct {
        const char *name;
        const char *want;
    } cases[] = {
        {"", "empty time zone name"},
        {"/etc/passwd", "must be a relative path without '..'"},
        {"../etc/passwd", "must be a relative path without '..'"},
        {"Europe/../../etc/passwd", "must be a relative path without '..'"},
        {"Europe/..", "must be a relative path without '..'"},
        {"Europe/London\n", "bad character in time zone name 'Europe/London?'"},
        {"Europe/Lon don", "bad character"},
        {"Europe/Londn", "no such time zone 'Europe/Londn'"},
        {"Europe", "no such time zone 'Europe'"},
        {"Europe/London/x", "no such time zone 'Europe/London/x'"},
    };
    char longname[400];
    char err[256];

    (void)state;
    assert_int_equal(unsetenv("TZDIR"), 0);
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        err[0] = '\0';
        test_tz_expect_error(tz_load(cases[i].name, err, sizeof(err)), err, cases[i].want);
    }
    err[0] = '\0';
    test_tz_expect_error(tz_load(NULL, err, sizeof(err)), err, "empty time zone name");
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    test_tz_expect_error(tz_load(longname, err, sizeof(err)), err, "too long");
    /* No error buffer, or a tiny one: still just NULL. */
    assert_null(tz_load("../x", NULL, 0));
    assert_null(tz_load("Europe/Londn", err, 1));
    assert_string_equal(err, "");
    assert_null(tz_load("Europe/Londn", err, 8));
    assert_string_equal(err, "no such");
}

static unsigned char *test_tz_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = malloc(1 << 20);
    size_t n;

    assert_non_null(f);
    assert_non_null(buf);
    n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    *len = n;
    return buf;
}

static void test_tz_truncated(void **state)
{
    size_t len;
    unsigned char *data = test_tz_read_file("/usr/share/zoneinfo/Europe/London", &len);
    char err[256];
    struct tz *z;

    (void)state;
    z = tz_parse("Europe/London", data, len, err, sizeof(err));
    assert_non_null(z);
    tz_free(z);
    for (size_t n = 0; n < len; n++) {
        /* A private copy of each prefix, so ASan catches any read past its end. */
        unsigned char *copy = malloc(n ? n : 1);

        assert_non_null(copy);
        memcpy(copy, data, n);
        err[0] = '\0';
        z = tz_parse("Europe/London", copy, n, err, sizeof(err));
        test_tz_expect_error(z, err, "Europe/London: truncated TZif data");
        free(copy);
    }
    free(data);
}

static void test_tz_corrupt(void **state)
{
    static const struct test_tz_type types[] = {{0, 0}, {3600, 1}};
    static const int64_t at[] = {1000, 2000, 3000};
    static const unsigned char idx[] = {0, 1, 0};
    const char *footer = "GMT0BST,M3.5.0/1,M10.5.0";
    unsigned char good[512], buf[512];
    char err[256];
    size_t n = test_tz_image(good, '3', at, idx, 3, types, 2, footer);
    size_t types_at = V2_DATA + 3 * 8 + 3;
    struct tz *z;

    (void)state;
    z = tz_parse("ok", good, n, err, sizeof(err));
    assert_non_null(z);
    tz_free(z);

#define CORRUPT(stmt, want)                                                                        \
    do {                                                                                           \
        memcpy(buf, good, n);                                                                      \
        stmt;                                                                                      \
        err[0] = '\0';                                                                             \
        test_tz_expect_error(tz_parse("bad", buf, n, err, sizeof(err)), err, want);                \
    } while (0)

    CORRUPT(buf[0] = 'X', "bad: not a TZif file (bad magic)");
    CORRUPT(buf[4] = '1', "unsupported TZif version");
    CORRUPT(buf[V2_HEADER] = 'X', "not a TZif file");
    CORRUPT(test_tz_put32(buf + V2_HEADER + 32, 0xffffffffu), "truncated TZif data");
    CORRUPT(test_tz_put32(buf + V2_HEADER + 36, 0xffffffffu), "truncated TZif data");
    CORRUPT(test_tz_put32(buf + V2_HEADER + 40, 0x7fffffffu), "truncated TZif data");
    CORRUPT(test_tz_put32(buf + 32, 0x10000000u), "truncated TZif data");
    CORRUPT(test_tz_put32(buf + V2_HEADER + 36, 0), "no local time types");
    CORRUPT(test_tz_put32(buf + V2_HEADER + 24, 1), "standard/wall indicator count 1");
    CORRUPT(test_tz_put32(buf + V2_HEADER + 20, 3), "UT/local indicator count 3");
    CORRUPT(test_tz_put32(buf + V2_HEADER + 28, 1), "leap seconds");
    CORRUPT(buf[V2_DATA + 3 * 8 + 1] = 2, "transition 1 uses undefined local time type 2");
    CORRUPT(buf[V2_DATA + 3 * 8 + 2] = 255, "undefined local time type 255");
    CORRUPT(buf[V2_DATA + 8 + 6] = 0xff, "not in ascending order (at 2)");
    CORRUPT(test_tz_put32(buf + V2_DATA + 16 + 4, 2000), "not in ascending order (at 2)");
    CORRUPT(buf[V2_DATA] = 0x7f, "not in ascending order (at 1)");
    CORRUPT(test_tz_put32(buf + types_at + 6, 93600), "UT offset 93600 out of range");
    CORRUPT(test_tz_put32(buf + types_at, (uint32_t)-90000), "UT offset -90000 out of range");
    CORRUPT(test_tz_put32(buf + types_at, 0x80000000u), "out of range");
    CORRUPT(buf[types_at + 4] = 2, "DST flag 2");
    CORRUPT(buf[types_at + 6 + 5] = 4, "abbreviation index 4 out of range");
    CORRUPT(buf[n - 1] = 'x', "truncated TZif data (footer not terminated)");
    CORRUPT(buf[n - strlen(footer) - 2] = 'x', "bad footer (no leading newline)");
    CORRUPT(buf[n - 3] = '\0', "bad footer TZ string 'GMT0BST,M3.5.0/1,M10.5?0'");
#undef CORRUPT

    /* 257 types cannot be indexed by a byte. */
    {
        static struct test_tz_type many[257];
        static unsigned char big[4096];
        size_t bn = test_tz_image(big, '2', NULL, NULL, 0, many, 257, "UTC0");

        err[0] = '\0';
        test_tz_expect_error(tz_parse("many", big, bn, err, sizeof(err)), err,
                             "257 local time types (at most 256)");
    }
    /* Indicator arrays with bad values. */
    {
        static const struct test_tz_type one[] = {{0, 0}};
        unsigned char ind[512];
        size_t in = test_tz_image(ind, '2', NULL, NULL, 0, one, 1, "UTC0");

        /* Append isstd and isut arrays of one byte each: shift the footer right by 2. */
        memmove(ind + in - 6 + 2, ind + in - 6, 6);
        test_tz_put32(ind + V2_HEADER + 20, 1);
        test_tz_put32(ind + V2_HEADER + 24, 1);
        in += 2;
        ind[in - 8] = 0;
        ind[in - 7] = 1;
        err[0] = '\0';
        test_tz_expect_error(tz_parse("ind", ind, in, err, sizeof(err)), err,
                             "bad standard/wall or UT/local indicator for type 0");
        ind[in - 8] = 2;
        ind[in - 7] = 0;
        test_tz_expect_error(tz_parse("ind", ind, in, err, sizeof(err)), err,
                             "bad standard/wall or UT/local indicator for type 0");
        ind[in - 8] = 1;
        ind[in - 7] = 1;
        z = tz_parse("ind", ind, in, err, sizeof(err));
        assert_non_null(z);
        tz_free(z);
    }
    /* Too big, and no data at all. */
    {
        unsigned char *huge = calloc(1, (1 << 20) + 1);

        assert_non_null(huge);
        memcpy(huge, good, n);
        test_tz_expect_error(tz_parse("huge", huge, (1 << 20) + 1, err, sizeof(err)), err,
                             "huge: TZif data larger than 1048576 bytes");
        /* Trailing bytes after the footer are ignored. */
        z = tz_parse("huge", huge, 1 << 20, err, sizeof(err));
        assert_non_null(z);
        tz_free(z);
        free(huge);
        test_tz_expect_error(tz_parse("null", NULL, 10, err, sizeof(err)), err, "no TZif data");
    }
    /* A real zone with leap seconds. */
    if (access("/usr/share/zoneinfo/right/UTC", R_OK) == 0) {
        size_t rl;
        unsigned char *right = test_tz_read_file("/usr/share/zoneinfo/right/UTC", &rl);

        test_tz_expect_error(tz_parse("right/UTC", right, rl, err, sizeof(err)), err,
                             "leap seconds");
        free(right);
    }
}

static void test_tz_bad_footers(void **state)
{
    static const char *const bad[] = {
        "GMT",
        "GMT0BST",
        "GMT0BST,M3.5.0",
        "GMT0BST,M3.5.0,",
        "GMT0BST,M3.5.0/1,M10.5.0,",
        "GMT0BST,M3.5.0/1,M10.5.0x",
        "GMT0BST,M3.5.0/1,M10.5.0 ",
        "GMT0BST,M13.5.0,M10.5.0",
        "GMT0BST,M0.5.0,M10.5.0",
        "GMT0BST,M3.6.0,M10.5.0",
        "GMT0BST,M3.0.0,M10.5.0",
        "GMT0BST,M3.5.7,M10.5.0",
        "GMT0BST,M3.5,M10.5.0",
        "GMT0BST,M3,M10.5.0",
        "GMT0BST,M.5.0,M10.5.0",
        "GMT0BST,J0,J365",
        "GMT0BST,J1,J366",
        "GMT0BST,366,J1",
        "GMT0BST,-1,J1",
        "GMT0BST,M3.5.0/168,M10.5.0",
        "GMT0BST,M3.5.0/-168,M10.5.0",
        "GMT0BST,M3.5.0/1:60,M10.5.0",
        "GMT0BST,M3.5.0/1:00:60,M10.5.0",
        "GMT0BST,M3.5.0/,M10.5.0",
        "GMT0BST,M3.5.0/1000,M10.5.0",
        "GM0",
        "0",
        "<GM>0",
        "<GMT0",
        "<G?T>0",
        "GMT25",
        "GMT-25",
        "GMT+",
        "GMT1:",
        "GMT1:5:",
        "GMT0B",
        "GMT0BST26,M3.5.0,M10.5.0",
        "GMT0BST-1:000,M3.5.0,M10.5.0",
        "GMT0BST1,M3.5.0 ,M10.5.0",
        "GMT 0",
        "GMT0\r",
        "GMT0\001",
    };

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(bad); i++) {
        char err[256] = "";
        struct tz *z = test_tz_slim(bad[i], err, sizeof(err));

        if (z) {
            tz_free(z);
            fail_msg("footer \"%s\" accepted", bad[i]);
        }
        if (!strstr(err, "slim: bad footer TZ string '"))
            fail_msg("footer \"%s\": %s", bad[i], err);
    }
}

static void test_tz_good_footers(void **state)
{
    static const struct {
        const char *footer;
        int32_t winter, summer; /* UT offsets on 15 January and 15 July 2026 */
    } good[] = {
        {"UTC0", 0, 0},
        {"<+0330>-3:30", 12600, 12600},
        {"<-00>0", 0, 0},
        {"<+05>-05:00:00", 18000, 18000},
        {"XYZ+0:30:15", -1815, -1815},
        {"GMT0BST-1,M3.5.0/1,M10.5.0", 0, 3600},
        {"GMT0BST,M3.5.0/+1,M10.5.0/2:00:00", 0, 3600},
        {"AAA-10BBB,J1/0,59/-1", 39600, 36000},
        {"ABC24DEF,M1.1.0,M1.1.1", -86400, -86400},
    };

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(good); i++) {
        char err[256] = "";
        struct tz *z = test_tz_slim(good[i].footer, err, sizeof(err));
        struct tz_local l;

        if (!z)
            fail_msg("footer \"%s\": %s", good[i].footer, err);
        tz_to_local(z, test_tz_utc(2026, 1, 15, 12, 0, 0), &l);
        assert_int_equal(l.utc_offset, good[i].winter);
        tz_to_local(z, test_tz_utc(2026, 7, 15, 12, 0, 0), &l);
        assert_int_equal(l.utc_offset, good[i].summer);
        tz_free(z);
    }
}

/* Empty footer: RFC 8536 says local time is unspecified; we keep the last type. */
static void test_tz_empty_footer(void **state)
{
    static const struct test_tz_type types[] = {{0, 0}, {3600, 1}};
    static const int64_t at[] = {1000};
    static const unsigned char idx[] = {1};
    unsigned char buf[512];
    char err[256] = "";
    size_t n = test_tz_image(buf, '4', at, idx, 1, types, 2, "");
    struct tz *z = tz_parse("empty", buf, n, err, sizeof(err));
    struct tz_local l;

    (void)state;
    if (!z)
        fail_msg("%s", err);
    tz_to_local(z, 999, &l);
    assert_int_equal(l.utc_offset, 0);
    tz_to_local(z, Y2100, &l);
    assert_int_equal(l.utc_offset, 3600);
    assert_int_equal(tz_local_to_utc(z, 1000 + 3600), 1000);
    /* The gap [1000, 4600) local: taken with the old offset. */
    assert_int_equal(tz_local_to_utc(z, 2000), 2000);
    tz_free(z);
}

/* Nonsense that parses: a transition every minute. Answers stay sane; nothing runs away. */
static void test_tz_dense(void **state)
{
    static const struct test_tz_type types[] = {{0, 0}, {3600, 1}, {-3600, 0}};
    static int64_t at[3000];
    static unsigned char idx[3000];
    static unsigned char buf[40000];
    char err[256] = "";
    struct tz *z;
    size_t n;

    (void)state;
    for (int i = 0; i < 3000; i++) {
        at[i] = 1000000 + i * 60;
        idx[i] = (unsigned char)(i % 3);
    }
    n = test_tz_image(buf, '2', at, idx, 3000, types, 3, "");
    z = tz_parse("dense", buf, n, err, sizeof(err));
    if (!z)
        fail_msg("%s", err);
    for (int64_t t = 999000; t < 1000000 + 3000 * 60 + 1000; t += 7) {
        int64_t k = t < 1000000 ? 0 : (t - 1000000) / 60;
        int64_t u = tz_local_to_utc(z, t);
        struct tz_local l;

        tz_to_local(z, t, &l);
        assert_int_equal(l.utc_offset, types[(k < 2999 ? k : 2999) % 3].utoff);
        assert_true(u - t <= 3600 && t - u <= 3600);
    }
    tz_free(z);
    tz_free(NULL);
}

static void test_tz_extremes(void **state)
{
    static const int64_t ts[] = {
        INT64_MIN,           INT64_MIN / 2,    -(INT64_C(1) << 50) - 1, -1,       0, 1,
        INT64_C(4102444800), INT64_C(1) << 50, INT64_MAX / 2,           INT64_MAX};
    char err[256] = "";
    struct tz *z;

    (void)state;
    assert_int_equal(unsetenv("TZDIR"), 0);
    z = tz_load("America/New_York", err, sizeof(err));
    if (!z)
        fail_msg("%s", err);
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(ts); i++) {
        struct tz_local l;
        int64_t u;

        tz_to_local(z, ts[i], &l);
        assert_true(l.month >= 1 && l.month <= 12);
        assert_true(l.day >= 1 && l.day <= 31);
        assert_true(l.wday >= 0 && l.wday <= 6);
        assert_true(l.hour >= 0 && l.hour <= 23);
        assert_true(l.minute >= 0 && l.minute <= 59);
        assert_true(l.second >= 0 && l.second <= 59);
        u = tz_local_to_utc(z, ts[i]);
        (void)u;
    }
    /* 1969-12-31 19:00:00 EST was a Wednesday. */
    test_tz_expect(z, 0, 1969, 12, 31, 19, 0, 0, -18000, 0);
    tz_free(z);
}

/* tz_load from a private TZDIR: a corrupt file, a large file, and UTC without a file. */
static void test_tz_tzdir(void **state)
{
    char dir[] = "/tmp/tzwork-test-XXXXXX";
    char path[256];
    char err[256] = "";
    struct tz *z;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(setenv("TZDIR", dir, 1), 0);

    /* Built-in UTC when the file is missing. */
    z = tz_load("UTC", err, sizeof(err));
    if (!z)
        fail_msg("%s", err);
    assert_string_equal(tz_name(z), "UTC");
    test_tz_expect(z, INT64_C(1774746000), 2026, 3, 29, 1, 0, 0, 0, 0);
    assert_int_equal(tz_local_to_utc(z, 12345), 12345);
    tz_free(z);
    test_tz_expect_error(tz_load("Europe/London", err, sizeof(err)), err,
                         "no such time zone 'Europe/London'");
    test_tz_expect_error(tz_load("Etc/UTC", err, sizeof(err)), err, "no such time zone 'Etc/UTC'");

    snprintf(path, sizeof(path), "%s/Bad", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("TZif2 this is not a real file", f);
    fclose(f);
    test_tz_expect_error(tz_load("Bad", err, sizeof(err)), err, "Bad: truncated TZif data");

    /* A corrupt UTC file is an error, not silently replaced by the built-in one. */
    snprintf(path, sizeof(path), "%s/UTC", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("garbage", f);
    fclose(f);
    test_tz_expect_error(tz_load("UTC", err, sizeof(err)), err, "UTC: not a TZif file");
    assert_int_equal(unlink(path), 0);

    snprintf(path, sizeof(path), "%s/Big", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fseek(f, (1 << 20) + 1, SEEK_SET), 0);
    fputc(0, f);
    fclose(f);
    test_tz_expect_error(tz_load("Big", err, sizeof(err)), err, "is larger than 1048576 bytes");
    assert_int_equal(unlink(path), 0);

    snprintf(path, sizeof(path), "%s/Sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    test_tz_expect_error(tz_load("Sub", err, sizeof(err)), err, "not a regular file");
    assert_int_equal(rmdir(path), 0);

    snprintf(path, sizeof(path), "%s/Bad", dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(unsetenv("TZDIR"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tz_against_glibc),
        cmocka_unit_test(test_tz_slim_london),
        cmocka_unit_test(test_tz_footers_against_glibc),
        cmocka_unit_test(test_tz_all_year_dst),
        cmocka_unit_test(test_tz_slim_matches_fat),
        cmocka_unit_test(test_tz_version1),
        cmocka_unit_test(test_tz_local_to_utc),
        cmocka_unit_test(test_tz_local_to_utc_against_mktime),
        cmocka_unit_test(test_tz_bad_names),
        cmocka_unit_test(test_tz_truncated),
        cmocka_unit_test(test_tz_corrupt),
        cmocka_unit_test(test_tz_bad_footers),
        cmocka_unit_test(test_tz_good_footers),
        cmocka_unit_test(test_tz_empty_footer),
        cmocka_unit_test(test_tz_dense),
        cmocka_unit_test(test_tz_extremes),
        cmocka_unit_test(test_tz_tzdir),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
