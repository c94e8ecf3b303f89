/* Unit tests: search terms from request URLs (http/search.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include "http/search.h"
#include "http/url.h"

static const char *terms(const char *text, char *out, size_t size)
{
    static struct url u;
    const char *why;

    if (url_normalize(text, strlen(text), &u, &why) < 0)
        fail_msg("url %s: %s", text, why);
    return search_terms(&u, out, size);
}

static void test_sites(void **state)
{
    static const struct {
        const char *url, *site, *terms;
    } cases[] = {
        {"https://www.google.co.uk/search?q=how+to+revise&hl=en", "google", "how to revise"},
        {"https://www.google.com/search?hl=en&q=caf%C3%A9", "google", "caf\xc3\xa9"},
        {"https://www.bing.com/search?q=ks3+maths", "bing", "ks3 maths"},
        {"https://duckduckgo.com/?q=volcano&ia=web", "duckduckgo", "volcano"},
        {"https://uk.search.yahoo.com/search?p=homework", "yahoo", "homework"},
        {"https://www.ecosia.org/search?method=index&q=trees", "ecosia", "trees"},
        {"https://search.brave.com/search?q=weather", "brave", "weather"},
        {"https://yandex.com.tr/search/?text=kedi", "yandex", "kedi"},
        {"https://www.youtube.com/results?search_query=minecraft+tips", "youtube",
         "minecraft tips"},
        {"https://en.wikipedia.org/w/index.php?search=photosynthesis", "wikipedia",
         "photosynthesis"},
        {"https://www.tiktok.com/search?q=dance", "tiktok", "dance"},
        {"https://www.pinterest.co.uk/search/pins/?q=cakes", "pinterest", "cakes"},
        {"https://www.reddit.com/search/?q=gcse", "reddit", "gcse"},
        {"https://www.amazon.co.uk/s?k=calculator", "amazon", "calculator"},
    };
    char out[SEARCH_TERMS_MAX];

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        const char *site = terms(cases[i].url, out, sizeof(out));
        if (!site || strcmp(site, cases[i].site) != 0 || strcmp(out, cases[i].terms) != 0)
            fail_msg("%s: got %s \"%s\", want %s \"%s\"", cases[i].url, site ? site : "NULL", out,
                     cases[i].site, cases[i].terms);
    }
}

static void test_not_searches(void **state)
{
    static const char *const urls[] = {
        "https://www.google.com/maps?q=london",       /* not the search path */
        "https://www.google.evil.example/search?q=x", /* not Google */
        "https://notgoogle.com/search?q=x",
        "https://www.bing.com/search?form=x", /* no terms */
        "https://www.bing.com/search?q=",
        "http://192.0.2.1/search?q=x",
        "https://example.com/",
    };
    char out[SEARCH_TERMS_MAX];

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(urls); i++) {
        if (terms(urls[i], out, sizeof(out)) != NULL || out[0] != '\0')
            fail_msg("%s: terms \"%s\"", urls[i], out);
    }
}

/* Controls become spaces; a cut never splits a UTF-8 character. */
static void test_decoding_and_cut(void **state)
{
    char out[8];

    (void)state;
    assert_string_equal(terms("https://www.bing.com/search?q=a%0Ab%09c", out, sizeof(out)), "bing");
    assert_string_equal(out, "a b c");
    /* "abcde" + a 3-byte character: 8 bytes of room hold 7, so the character is dropped. */
    assert_non_null(terms("https://www.bing.com/search?q=abcde%E2%82%AC", out, sizeof(out)));
    assert_string_equal(out, "abcde");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sites),
        cmocka_unit_test(test_not_searches),
        cmocka_unit_test(test_decoding_and_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
