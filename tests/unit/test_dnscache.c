/* Unit tests: the DNS answer cache -- round trip, keys, expiry, age, prefetch, LRU, memory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include "dns/cache.h"

#define TYPE_A 1
#define TYPE_AAAA 28
#define TYPE_MX 15

/* A packet of len bytes, every byte derived from tag so packets of different tags differ. */
static void fill(uint8_t *pkt, size_t len, unsigned tag)
{
    size_t i;

    for (i = 0; i < len; i++)
        pkt[i] = (uint8_t)(tag * 31u + i * 7u + 1u);
}

static int put(struct dns_cache *c, const char *name, uint16_t qtype, unsigned tag, size_t len,
               uint32_t ttl, int64_t now_ms)
{
    uint8_t pkt[4096];

    assert_true(len <= sizeof(pkt));
    fill(pkt, len, tag);
    return dns_cache_put(c, name, strlen(name), qtype, pkt, len, ttl, now_ms);
}

/* Is (name, qtype) a hit at now_ms holding the packet put with tag and len? */
static void expect_hit(struct dns_cache *c, const char *name, uint16_t qtype, unsigned tag,
                       size_t len, int64_t now_ms)
{
    uint8_t want[4096];
    const uint8_t *got;
    size_t got_len = 0;
    uint32_t age = 0;
    int prefetch = 0;

    got = dns_cache_get(c, name, strlen(name), qtype, now_ms, &got_len, &age, &prefetch);
    assert_non_null(got);
    assert_int_equal(got_len, len);
    fill(want, len, tag);
    assert_memory_equal(got, want, len);
}

static void expect_miss(struct dns_cache *c, const char *name, uint16_t qtype, int64_t now_ms)
{
    size_t len = 99;
    uint32_t age = 99;
    int prefetch = 99;

    assert_null(dns_cache_get(c, name, strlen(name), qtype, now_ms, &len, &age, &prefetch));
    assert_int_equal(len, 0);
    assert_int_equal(age, 0);
    assert_int_equal(prefetch, 0);
}

/* The prefetch flag of a get that must hit. */
static int get_prefetch(struct dns_cache *c, const char *name, uint16_t qtype, int64_t now_ms)
{
    size_t len;
    uint32_t age;
    int prefetch = -1;

    assert_non_null(dns_cache_get(c, name, strlen(name), qtype, now_ms, &len, &age, &prefetch));
    return prefetch;
}

static uint32_t get_age(struct dns_cache *c, const char *name, uint16_t qtype, int64_t now_ms)
{
    size_t len;
    uint32_t age = 12345;
    int prefetch;

    assert_non_null(dns_cache_get(c, name, strlen(name), qtype, now_ms, &len, &age, &prefetch));
    return age;
}

static struct dns_cache_stats stats(const struct dns_cache *c)
{
    struct dns_cache_stats st;

    memset(&st, 0xee, sizeof(st));
    dns_cache_stats(c, &st);
    return st;
}

/* The bytes one entry of this name length and packet length costs, measured through the stats
 * of a roomy cache (the second entry's increase, so the first bucket array is not counted). */
static size_t entry_cost(size_t name_len, size_t pkt_len)
{
    struct dns_cache *c = dns_cache_create(1 << 20);
    char a[64], b[64];
    size_t before;
    size_t cost;

    assert_true(name_len >= 1 && name_len < sizeof(a));
    memset(a, 'a', name_len);
    memset(b, 'b', name_len);
    a[name_len] = '\0';
    b[name_len] = '\0';
    assert_int_equal(put(c, a, TYPE_A, 1, pkt_len, 60, 0), 0);
    before = stats(c).bytes;
    assert_int_equal(put(c, b, TYPE_A, 1, pkt_len, 60, 0), 0);
    cost = stats(c).bytes - before;
    dns_cache_free(c);
    return cost;
}

/* The bytes of the first bucket array: a roomy cache with one entry, less that entry. */
static size_t first_table_cost(void)
{
    struct dns_cache *c = dns_cache_create(1 << 20);
    size_t bytes;

    assert_int_equal(put(c, "a", TYPE_A, 1, 10, 60, 0), 0);
    bytes = stats(c).bytes;
    dns_cache_free(c);
    return bytes - entry_cost(1, 10);
}

static void test_round_trip(void **state)
{
    struct dns_cache *c = dns_cache_create(1 << 20);
    /* the name is not NUL-terminated where it ends */
    const char stored[] = "www.example.comXYZ";
    const char asked[] = "www.example.com";
    uint8_t pkt[40];
    const uint8_t *got;
    size_t len = 0;
    uint32_t age = 99;
    int prefetch = 99;

    (void)state;
    fill(pkt, sizeof(pkt), 7);
    assert_int_equal(dns_cache_put(c, stored, 15, TYPE_A, pkt, sizeof(pkt), 300, 5000), 0);
    /* the cache keeps its own copy */
    memset(pkt, 0, sizeof(pkt));
    got = dns_cache_get(c, asked, strlen(asked), TYPE_A, 5000, &len, &age, &prefetch);
    assert_non_null(got);
    assert_int_equal(len, 40);
    assert_int_equal(age, 0);
    assert_int_equal(prefetch, 0);
    expect_hit(c, "www.example.com", TYPE_A, 7, 40, 6000);
    expect_miss(c, "www.example.comxyz", TYPE_A, 6000);
    expect_miss(c, "www.example.co", TYPE_A, 6000);

    /* the root name is a key like any other */
    assert_int_equal(put(c, "", TYPE_MX, 9, 12, 300, 5000), 0);
    expect_hit(c, "", TYPE_MX, 9, 12, 5000);
    assert_int_equal(stats(c).entries, 2);
    dns_cache_free(c);
    dns_cache_free(NULL);
}

static void test_replace(void **state)
{
    struct dns_cache *c = dns_cache_create(1 << 20);
    struct dns_cache_stats st;

    (void)state;
    assert_int_equal(put(c, "example.com", TYPE_A, 1, 100, 300, 0), 0);
    assert_int_equal(put(c, "example.com", TYPE_A, 2, 30, 60, 1000), 0);
    expect_hit(c, "example.com", TYPE_A, 2, 30, 2000);
    st = stats(c);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.inserts, 2);
    assert_int_equal(st.evictions, 0);
    /* only the new entry is counted */
    assert_int_equal(st.bytes, first_table_cost() + entry_cost(11, 30));
    /* the new TTL counts from the new store: gone at 1000 + 60 s, not at 300 s */
    expect_hit(c, "example.com", TYPE_A, 2, 30, 60999);
    expect_miss(c, "example.com", TYPE_A, 61000);

    /* a refused put (TTL 0) still removes the older answer for the key */
    assert_int_equal(put(c, "example.org", TYPE_A, 3, 50, 300, 0), 0);
    assert_int_equal(put(c, "example.org", TYPE_A, 4, 50, 0, 1000), -1);
    expect_miss(c, "example.org", TYPE_A, 1000);
    assert_int_equal(stats(c).entries, 0);
    dns_cache_free(c);
}

static void test_distinct_keys(void **state)
{
    static const char *const names[] = {
        "example.com", "example.con",   "fxample.com",   "example.co",       "example.comm",
        "xample.com",  "a.example.com", "example\\.com", "exam\\000ple.com",
    };
    struct dns_cache *c = dns_cache_create(1 << 20);
    size_t i;

    (void)state;
    for (i = 0; i < HAVEN_ARRAY_LEN(names); i++) {
        assert_int_equal(put(c, names[i], TYPE_A, (unsigned)i, 20 + i, 300, 0), 0);
        assert_int_equal(put(c, names[i], TYPE_AAAA, (unsigned)i + 100, 40 + i, 300, 0), 0);
    }
    assert_int_equal(stats(c).entries, 2 * HAVEN_ARRAY_LEN(names));
    for (i = 0; i < HAVEN_ARRAY_LEN(names); i++) {
        expect_hit(c, names[i], TYPE_A, (unsigned)i, 20 + i, 1000);
        expect_hit(c, names[i], TYPE_AAAA, (unsigned)i + 100, 40 + i, 1000);
        expect_miss(c, names[i], TYPE_MX, 1000);
    }
    dns_cache_free(c);
}

static void test_expiry(void **state)
{
    struct dns_cache *c = dns_cache_create(1 << 20);
    size_t table;
    struct dns_cache_stats st;

    (void)state;
    assert_int_equal(put(c, "example.com", TYPE_A, 1, 50, 5, 1000), 0);
    table = stats(c).bytes - entry_cost(11, 50);
    expect_hit(c, "example.com", TYPE_A, 1, 50, 5999);
    expect_miss(c, "example.com", TYPE_A, 6000);
    st = stats(c);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, table);
    /* a second miss does not count a second expiry */
    expect_miss(c, "example.com", TYPE_A, 6001);
    assert_int_equal(stats(c).expired, 1);
    assert_int_equal(stats(c).misses, 2);

    /* one second of TTL */
    assert_int_equal(put(c, "example.net", TYPE_A, 2, 50, 1, 0), 0);
    expect_hit(c, "example.net", TYPE_A, 2, 50, 999);
    expect_miss(c, "example.net", TYPE_A, 1000);

    /* the largest TTL does not wrap */
    assert_int_equal(put(c, "example.org", TYPE_A, 3, 50, UINT32_MAX, 0), 0);
    expect_hit(c, "example.org", TYPE_A, 3, 50, (int64_t)UINT32_MAX * 1000 - 1);
    expect_miss(c, "example.org", TYPE_A, (int64_t)UINT32_MAX * 1000);
    dns_cache_free(c);
}

static void test_age(void **state)
{
    struct dns_cache *c = dns_cache_create(1 << 20);

    (void)state;
    assert_int_equal(put(c, "example.com", TYPE_A, 1, 50, 3600, 10000), 0);
    assert_int_equal(get_age(c, "example.com", TYPE_A, 10000), 0);
    assert_int_equal(get_age(c, "example.com", TYPE_A, 10999), 0);
    assert_int_equal(get_age(c, "example.com", TYPE_A, 11000), 1);
    assert_int_equal(get_age(c, "example.com", TYPE_A, 13500), 3);
    assert_int_equal(get_age(c, "example.com", TYPE_A, 10000 + 3599999), 3599);
    /* a time before the store is age 0, not a huge number */
    assert_int_equal(get_age(c, "example.com", TYPE_A, 9000), 0);
    /* negative times are just times */
    assert_int_equal(put(c, "example.net", TYPE_A, 1, 50, 60, -5000), 0);
    assert_int_equal(get_age(c, "example.net", TYPE_A, -2500), 2);
    dns_cache_free(c);
}

static void test_prefetch(void **state)
{
    struct dns_cache *c = dns_cache_create(1 << 20);

    (void)state;
    /* TTL 100 s stored at 0: the last 10% starts at 90 s */
    assert_int_equal(put(c, "popular.example", TYPE_A, 1, 50, 100, 0), 0);
    assert_int_equal(get_prefetch(c, "popular.example", TYPE_A, 1000), 0);
    assert_int_equal(get_prefetch(c, "popular.example", TYPE_A, 2000), 0);
    assert_int_equal(get_prefetch(c, "popular.example", TYPE_A, 89999), 0);
    assert_int_equal(get_prefetch(c, "popular.example", TYPE_A, 90000), 1);
    /* exactly once */
    assert_int_equal(get_prefetch(c, "popular.example", TYPE_A, 90001), 0);
    assert_int_equal(get_prefetch(c, "popular.example", TYPE_A, 99999), 0);
    /* the refreshed answer is a new entry and is prefetched once in its turn */
    assert_int_equal(put(c, "popular.example", TYPE_A, 2, 50, 100, 95000), 0);
    assert_int_equal(get_prefetch(c, "popular.example", TYPE_A, 96000), 0);
    assert_int_equal(get_prefetch(c, "popular.example", TYPE_A, 97000), 0);
    assert_int_equal(get_prefetch(c, "popular.example", TYPE_A, 184999), 0);
    assert_int_equal(get_prefetch(c, "popular.example", TYPE_A, 185000), 1);
    assert_int_equal(get_prefetch(c, "popular.example", TYPE_A, 186000), 0);

    /* never hit before the last 10%: its first two hits there are not prefetched */
    assert_int_equal(put(c, "rare.example", TYPE_A, 3, 50, 100, 0), 0);
    assert_int_equal(get_prefetch(c, "rare.example", TYPE_A, 91000), 0);
    assert_int_equal(get_prefetch(c, "rare.example", TYPE_A, 92000), 0);
    /* the third hit has two before it */
    assert_int_equal(get_prefetch(c, "rare.example", TYPE_A, 93000), 1);

    /* hit once before the last 10%, once inside it: not popular enough */
    assert_int_equal(put(c, "once.example", TYPE_A, 4, 50, 100, 0), 0);
    assert_int_equal(get_prefetch(c, "once.example", TYPE_A, 50000), 0);
    assert_int_equal(get_prefetch(c, "once.example", TYPE_A, 95000), 0);
    expect_miss(c, "once.example", TYPE_A, 100000);

    /* TTLs under 10 s are never prefetched, however popular */
    assert_int_equal(put(c, "short.example", TYPE_A, 5, 50, 9, 0), 0);
    for (int64_t t = 0; t < 9000; t += 100)
        assert_int_equal(get_prefetch(c, "short.example", TYPE_A, t), 0);
    /* 10 s is enough: the last second */
    assert_int_equal(put(c, "ten.example", TYPE_A, 6, 50, 10, 0), 0);
    assert_int_equal(get_prefetch(c, "ten.example", TYPE_A, 100), 0);
    assert_int_equal(get_prefetch(c, "ten.example", TYPE_A, 200), 0);
    assert_int_equal(get_prefetch(c, "ten.example", TYPE_A, 8999), 0);
    assert_int_equal(get_prefetch(c, "ten.example", TYPE_A, 9000), 1);
    assert_int_equal(get_prefetch(c, "ten.example", TYPE_A, 9999), 0);
    dns_cache_free(c);
}

static void test_lru_eviction(void **state)
{
    /* sixteen entries: as many as the first bucket array holds, so the table stays put */
    const size_t entry = entry_cost(3, 100);
    const size_t max = first_table_cost() + 16 * entry;
    struct dns_cache *c = dns_cache_create(max);
    char name[8];
    unsigned i;
    struct dns_cache_stats st;

    (void)state;
    for (i = 0; i < 16; i++) {
        snprintf(name, sizeof(name), "k%02u", i);
        assert_int_equal(put(c, name, TYPE_A, i, 100, 300, i), 0);
    }
    st = stats(c);
    assert_int_equal(st.entries, 16);
    assert_int_equal(st.bytes, max);
    assert_int_equal(st.evictions, 0);

    /* k00 was stored first but is used now; k05 too */
    expect_hit(c, "k00", TYPE_A, 0, 100, 100);
    expect_hit(c, "k05", TYPE_A, 5, 100, 101);
    for (i = 16; i < 19; i++) {
        snprintf(name, sizeof(name), "k%02u", i);
        assert_int_equal(put(c, name, TYPE_A, i, 100, 300, 200 + i), 0);
        assert_true(stats(c).bytes <= max);
    }
    st = stats(c);
    assert_int_equal(st.entries, 16);
    assert_int_equal(st.evictions, 3);
    /* the three least recently used went, not the three stored first */
    expect_miss(c, "k01", TYPE_A, 300);
    expect_miss(c, "k02", TYPE_A, 300);
    expect_miss(c, "k03", TYPE_A, 300);
    expect_hit(c, "k00", TYPE_A, 0, 100, 300);
    expect_hit(c, "k05", TYPE_A, 5, 100, 300);
    expect_hit(c, "k04", TYPE_A, 4, 100, 300);
    for (i = 6; i < 19; i++) {
        snprintf(name, sizeof(name), "k%02u", i);
        expect_hit(c, name, TYPE_A, i, 100, 300);
    }
    /* the order is now k00 k05 k04 k06 ... k18, oldest first: an entry of nearly twice the
     * size evicts two, k00 and k05 */
    assert_int_equal(put(c, "big", TYPE_A, 50, 100 + entry - 1, 300, 400), 0);
    expect_miss(c, "k00", TYPE_A, 400);
    expect_miss(c, "k05", TYPE_A, 400);
    expect_hit(c, "k04", TYPE_A, 4, 100, 400);
    expect_hit(c, "big", TYPE_A, 50, 100 + entry - 1, 400);
    st = stats(c);
    assert_int_equal(st.evictions, 5);
    assert_int_equal(st.entries, 15);
    assert_true(st.bytes <= max);
    dns_cache_free(c);
}

/* A small cache under a long stream of puts of mixed sizes and TTLs, with gets of other keys
 * between: the bytes never pass the cap, and every hit is the packet last stored for its key
 * and not yet expired (checked against a model of what was stored). */
static void test_bytes_never_above_max(void **state)
{
    enum { KEYS = 300 };
    const size_t max = 20000;
    const size_t overhead = entry_cost(1, 10) - 11;
    struct dns_cache *c = dns_cache_create(max);
    struct {
        size_t len; /* 0: not stored */
        int64_t expires_ms;
    } model[KEYS];
    uint32_t rng = 12345;
    char name[40];
    unsigned i;
    struct dns_cache_stats st;

    (void)state;
    memset(model, 0, sizeof(model));
    for (i = 0; i < 20000; i++) {
        const int64_t now = (int64_t)i * 100;
        unsigned key, len, ttl;
        const uint8_t *got;
        size_t got_len;
        uint32_t age;
        int prefetch;
        int rc;

        rng = rng * 1103515245u + 12345u;
        key = (rng >> 8) % KEYS;
        rng = rng * 1103515245u + 12345u;
        len = 1 + (rng >> 8) % 2600;
        rng = rng * 1103515245u + 12345u;
        ttl = (rng >> 8) % 10;
        snprintf(name, sizeof(name), "host%u.example.com", key);
        rc = put(c, name, (uint16_t)(1 + key % 3), key, len, ttl, now);
        st = stats(c);
        assert_true(st.bytes <= max);
        if (rc == 0) {
            model[key].len = len;
            model[key].expires_ms = now + (int64_t)ttl * 1000;
            expect_hit(c, name, (uint16_t)(1 + key % 3), key, len, now);
        } else {
            /* refused: TTL 0 or more than an eighth of the cache */
            assert_true(ttl == 0 || overhead + strlen(name) + len > max / 8);
            model[key].len = 0;
            expect_miss(c, name, (uint16_t)(1 + key % 3), now);
        }

        /* a key from the recent past: a hit must be what the model holds */
        rng = rng * 1103515245u + 12345u;
        key = (rng >> 8) % KEYS;
        snprintf(name, sizeof(name), "host%u.example.com", key);
        got = dns_cache_get(c, name, strlen(name), (uint16_t)(1 + key % 3), now, &got_len, &age,
                            &prefetch);
        if (got) {
            uint8_t want[4096];

            assert_int_equal(got_len, model[key].len);
            assert_true(now < model[key].expires_ms);
            fill(want, got_len, key);
            assert_memory_equal(got, want, got_len);
        } else if (model[key].len != 0 && now >= model[key].expires_ms) {
            model[key].len = 0;
        }
    }
    st = stats(c);
    assert_true(st.evictions > 0);
    assert_true(st.expired > 0);
    assert_true(st.hits > 0);
    assert_true(st.inserts > 1000);
    assert_true(st.entries > 0);
    dns_cache_free(c);
}

static void test_zero_bytes(void **state)
{
    struct dns_cache *c = dns_cache_create(0);
    struct dns_cache_stats st;

    (void)state;
    assert_int_equal(put(c, "example.com", TYPE_A, 1, 1, 300, 0), -1);
    expect_miss(c, "example.com", TYPE_A, 0);
    st = stats(c);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.max_bytes, 0);
    assert_int_equal(st.inserts, 0);
    assert_int_equal(st.misses, 1);
    dns_cache_free(c);

    /* so small that no entry is an eighth of it */
    c = dns_cache_create(100);
    assert_int_equal(put(c, "a", TYPE_A, 1, 1, 300, 0), -1);
    assert_int_equal(stats(c).bytes, 0);
    dns_cache_free(c);
}

static void test_refused(void **state)
{
    const size_t max = 8000; /* an eighth is 1000 bytes */
    const size_t overhead = entry_cost(1, 10) - 11;
    const size_t fits = 1000 - overhead - 1;
    struct dns_cache *c = dns_cache_create(max);
    struct dns_cache_stats st;

    (void)state;
    /* an entry of exactly an eighth is stored, one byte more is not */
    assert_int_equal(put(c, "n", TYPE_A, 1, fits, 300, 0), 0);
    expect_hit(c, "n", TYPE_A, 1, fits, 0);
    assert_int_equal(put(c, "m", TYPE_A, 2, fits + 1, 300, 0), -1);
    expect_miss(c, "m", TYPE_A, 0);
    /* ttl 0 and len 0 are refused */
    assert_int_equal(put(c, "o", TYPE_A, 3, 10, 0, 0), -1);
    assert_int_equal(put(c, "p", TYPE_A, 4, 0, 300, 0), -1);
    expect_miss(c, "o", TYPE_A, 0);
    expect_miss(c, "p", TYPE_A, 0);
    st = stats(c);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.inserts, 1);
    assert_int_equal(st.evictions, 0);
    /* an oversize answer for a cached key drops the old one too */
    assert_int_equal(put(c, "n", TYPE_A, 5, fits + 1, 300, 0), -1);
    expect_miss(c, "n", TYPE_A, 0);
    assert_int_equal(stats(c).entries, 0);
    dns_cache_free(c);
}

static void test_many_entries(void **state)
{
    const unsigned n = 200000;
    struct dns_cache *c = dns_cache_create((size_t)64 << 20);
    char name[48];
    unsigned i;
    struct dns_cache_stats st;

    (void)state;
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "host%u.school.example.org", i / 2);
        assert_int_equal(put(c, name, i % 2 ? TYPE_AAAA : TYPE_A, i, 32 + i % 64, 3600, 0), 0);
    }
    st = stats(c);
    assert_int_equal(st.entries, n);
    assert_int_equal(st.inserts, n);
    assert_int_equal(st.evictions, 0);
    assert_true(st.bytes <= st.max_bytes);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "host%u.school.example.org", i / 2);
        expect_hit(c, name, i % 2 ? TYPE_AAAA : TYPE_A, i, 32 + i % 64, 1000);
    }
    expect_miss(c, "host100000.school.example.org", TYPE_A, 1000);
    st = stats(c);
    assert_int_equal(st.hits, n);
    assert_int_equal(st.misses, 1);
    dns_cache_free(c);
}

static void test_stats(void **state)
{
    struct dns_cache *c = dns_cache_create(123456);
    struct dns_cache_stats st = stats(c);

    (void)state;
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.max_bytes, 123456);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.misses, 0);
    assert_int_equal(st.inserts, 0);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.expired, 0);

    assert_int_equal(put(c, "a.example", TYPE_A, 1, 60, 10, 0), 0);
    assert_int_equal(put(c, "b.example", TYPE_A, 2, 60, 100, 0), 0);
    assert_int_equal(put(c, "b.example", TYPE_A, 3, 60, 100, 0), 0);
    assert_int_equal(put(c, "c.example", TYPE_A, 4, 60, 0, 0), -1);
    expect_hit(c, "a.example", TYPE_A, 1, 60, 1000);
    expect_hit(c, "b.example", TYPE_A, 3, 60, 1000);
    expect_hit(c, "b.example", TYPE_A, 3, 60, 2000);
    expect_miss(c, "c.example", TYPE_A, 2000);
    expect_miss(c, "a.example", TYPE_A, 10000); /* expired */
    st = stats(c);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bytes, first_table_cost() + entry_cost(9, 60));
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.inserts, 3);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.expired, 1);
    dns_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_replace),
        cmocka_unit_test(test_distinct_keys), cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_age),           cmocka_unit_test(test_prefetch),
        cmocka_unit_test(test_lru_eviction),  cmocka_unit_test(test_bytes_never_above_max),
        cmocka_unit_test(test_zero_bytes),    cmocka_unit_test(test_refused),
        cmocka_unit_test(test_many_entries),  cmocka_unit_test(test_stats),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
