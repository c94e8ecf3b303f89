/* Unit tests: the monitor's text normaliser (rules in src/monitor/normalize.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <time.h>

#include "monitor/normalize.h"

struct ncase {
    const char *in;
    const char *want;
};

/* Inputs are NUL-free, so strlen gives the length. */
static const struct ncase cases[] = {
    /* empty and whitespace */
    {"", " "},
    {"   \t\r\n  ", " "},
    {"hello", " hello "},
    {"  Hello,   World!  ", " hello world "},
    /* Unicode NFKC + case folding + Latin marks */
    {"café", " cafe "},
    {"CAFÉ", " cafe "},
    {"cafe\xcc\x81", " cafe "}, /* e + combining acute */
    {"ＫＩＬＬ", " kill "},
    {"ﬁnd", " find "},
    {"Straße", " strasse "},
    {"Ñandú", " nandu "},
    {"①②", " 12 "},
    /* word boundaries */
    {"kill time", " kill time "},
    {"kill myself", " kill myself "},
    {"I want to KILL MYSELF!!!", " i want to kill myself "},
    {"Scunthorpe", " scunthorpe "},
    {"cut a mango", " cut a mango "},
    {"hello...world", " hello world "},
    {"tab\there\nnew-line", " tab here new line "},
    /* numbers stay numbers */
    {"2024", " 2024 "},
    {"100%", " 100 "},
    {"5 km", " 5 km "},
    {"in 2024 I was 13", " in 2024 i was 13 "},
    {"1st 2nd 10pm 5km 90s", " 1st 2nd 10pm 5km 90s "},
    {"3.14", " 3 14 "},
    {"100|200", " 100 200 "},
    /* leetspeak */
    {"k1ll", " kill "},
    {"K1LL", " kill "},
    {"su1c1de", " suicide "},
    {"$elf h@rm", " self harm "},
    {"k!ll", " kill "},
    {"h4t3", " hate "},
    {"d13", " die "},
    {"5u1c1d3", " suicide "},
    {"k!ll!!!", " kill "},
    {"wow!", " wow "},
    {"!!!yes", " yes "},
    {"he|p", " help "},
    {"$$$", " "},
    {"@ss", " ass "},
    {"k2ll", " k2ll "}, /* 2 is not leet */
    /* e-mail and URLs broken at punctuation */
    {"bob@example.com", " bob example com "},
    {"mail me: jo.bloggs@my-school.sch.uk", " mail me jo bloggs my school sch uk "},
    {"https://www.example.com/kill-myself?q=1",
     " https w example com kill myself q 1 "}, /* "www": repeat rule */
    /* emoji and symbols */
    {"\xf0\x9f\x98\x80"
     "kill\xf0\x9f\x94\xaa",
     " kill "},
    {"I \xe2\x9d\xa4\xef\xb8\x8f you", " i you "},
    {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80", " "},
    /* invalid UTF-8: each bad byte is a separator */
    {"ki\xffll", " ki ll "},
    {"\xc3", " "},
    {"abc\xed\xa0\x80"
     "xyz",
     " abc xyz "}, /* surrogate */
    {"a\xc0\xaf"
     "z",
     " a z "}, /* overlong "/" */
    {"\x80\x80"
     "kill\xfe",
     " kill "},
    /* zero-width evasion */
    {"k\xe2\x80\x8b"
     "i\xe2\x80\x8c"
     "ll",
     " kill "},
    {"sel\xc2\xad"
     "f",
     " self "}, /* soft hyphen */
    /* repeated letters */
    {"soooo", " so "},
    {"killlll", " kil "},
    {"kill", " kill "},
    {"seed", " seed "},
    {"heeeelp meeee", " help me "},
    {"1000", " 1000 "},
    /* spaced-out words */
    {"k i l l", " kill "},
    {"k.i.l.l", " kill "},
    {"s-u-i-c-i-d-e", " suicide "},
    {"K I L L myself", " kill myself "},
    {"a b", " a b "},
    {"k. i. l. l", " k i l l "},
    {"s o o o o", " so "},
    {"k 1 l l", " k 1 l l "},
    /* apostrophes */
    {"don't", " dont "},
    {"I'm a student", " im a student "},
    {"I\xe2\x80\x99m sad", " im sad "},
    {"'quoted'", " quoted "},
    /* Polish, Romanian, Welsh */
    {"zabić się", " zabic sie "},
    {"ŁÓDŹ", " lodz "},
    {"szkoła", " szkola "},
    {"mulțumesc ș", " multumesc s "},
    {"Mae'r dŵr yn oer, ŷd", " maer dwr yn oer yd "},
    /* Arabic, Urdu: letters survive; harakat, hamza forms and letter variants fold (3b) */
    {"مرحبا", " مرحبا "},
    {"مَرْحَبًا", " مرحبا "},
    {"أنا إلى آخر", " انا الي اخر "},
    {"مدرسة مستشفى", " مدرسه مستشفي "},
    {"ســـلام", " سلام "},
    {"میں ٹھیک ہوں", " ميں ٹھيك هوں "},
    {"میں، ٹھیک؟", " ميں ٹھيك "},
    /* nukta: Gurmukhi, Devanagari, Bengali */
    {"ਨਫ਼ਰਤ ਨਫਰਤ", " ਨਫਰਤ ਨਫਰਤ "},
    {"ज़िंदगी", " जिंदगी "},
    /* Bengali and Gurmukhi vowel signs survive (and canonical composition) */
    {"আমি কি করব", " আমি কি করব "},
    {"\xe0\xa6\x95\xe0\xa7\x87\xe0\xa6\xbe", " \xe0\xa6\x95\xe0\xa7\x8b "}, /* ka e aa -> ka o */
    {"ਮੈਨੂੰ ਮਦਦ ਚਾਹੀਦੀ", " ਮੈਨੂੰ ਮਦਦ ਚਾਹੀਦੀ "},
    /* Greek and Cyrillic keep their letters; case is folded */
    {"ЙОД", " йод "},
    {"ΚΑΛΗΜΈΡΑ", " καλημέρα "},
    /* romanised Urdu: unchanged except case */
    {"Mujhe Madad Chahiye", " mujhe madad chahiye "},
    {"main theek nahi hoon", " main theek nahi hoon "},
    /* CJK runs stay one word */
    {"你好，世界", " 你好 世界 "},
};

static void test_table(void **state)
{
    size_t i, bad = 0;

    (void)state;
    for (i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        struct norm n;
        assert_int_equal(norm_text(cases[i].in, strlen(cases[i].in), 0, &n), 0);
        assert_null(n.from);
        assert_int_equal(n.len, strlen(n.text));
        if (strcmp(n.text, cases[i].want) != 0) {
            print_error("case %zu: '%s' -> '%s', want '%s'\n", i, cases[i].in, n.text,
                        cases[i].want);
            bad++;
        }
        norm_free(&n);
    }
    print_message("%zu normalisation cases\n", HAVEN_ARRAY_LEN(cases));
    assert_int_equal(bad, 0);
}

/* The bytes of the input that produced output bytes [s, e). */
static void check_span(const char *in, const char *word, const char *want_orig)
{
    struct norm n;
    const char *hit;
    size_t s, e;

    assert_int_equal(norm_text(in, strlen(in), 1, &n), 0);
    assert_non_null(n.from);
    hit = strstr(n.text, word);
    assert_non_null(hit);
    s = (size_t)(hit - n.text);
    e = s + strlen(word);
    assert_true(e < n.len);
    assert_int_equal(n.text[e], ' ');
    assert_int_equal(n.from[e] - n.from[s], strlen(want_orig));
    assert_memory_equal(in + n.from[s], want_orig, strlen(want_orig));
    norm_free(&n);
}

static void test_offsets(void **state)
{
    (void)state;
    check_span("I want to K1LL myself.", "kill myself", "K1LL myself");
    check_span("so... k.i.l.l me", "kill", "k.i.l.l");
    check_span("Ich bin CAFÉ-süchtig", "cafe", "CAFÉ");
    check_span("\xf0\x9f\x98\x80 $elf h@rm!!", "self harm", "$elf h@rm");
    check_span("abc \xff zabić się x", "zabic sie", "zabić się");
    check_span("ＫＩＬＬ ok", "kill", "ＫＩＬＬ");
}

static void test_map_shape(void **state)
{
    static const char *const ins[] = {"", "x", "  a b c  ", "k1ll\xff!!", "آپ کیسے ہیں؟", "a'b'c"};
    size_t i, j;

    (void)state;
    for (i = 0; i < HAVEN_ARRAY_LEN(ins); i++) {
        struct norm n;
        size_t len = strlen(ins[i]);
        assert_int_equal(norm_text(ins[i], len, 1, &n), 0);
        assert_true(n.len >= 1);
        assert_int_equal(n.text[0], ' ');
        assert_int_equal(n.text[n.len - 1], ' ');
        for (j = 0; j < n.len; j++) {
            assert_true(len == 0 ? n.from[j] == 0 : n.from[j] < len);
            if (j)
                assert_true(n.from[j] >= n.from[j - 1]);
            if (j)
                assert_false(n.text[j] == ' ' && n.text[j - 1] == ' ');
        }
        norm_free(&n);
    }
}

static void test_idempotent(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        struct norm a, b;
        assert_int_equal(norm_text(cases[i].in, strlen(cases[i].in), 0, &a), 0);
        assert_int_equal(norm_text(a.text, a.len, 0, &b), 0);
        if (strcmp(cases[i].in, "k. i. l. l") != 0)
            assert_string_equal(a.text, b.text);
        norm_free(&a);
        norm_free(&b);
    }
}

static void test_cap(void **state)
{
    size_t big = NORM_MAX_IN + 10, i;
    char *in = malloc(big);
    struct norm n;

    (void)state;
    assert_non_null(in);
    /* "é" repeated, positioned so NORM_MAX_IN falls inside a character */
    in[0] = 'x';
    for (i = 1; i + 1 < big; i += 2) {
        in[i] = (char)0xc3;
        in[i + 1] = (char)0xa9;
    }
    assert_int_equal(norm_text(in, big, 1, &n), 0);
    assert_int_equal(n.text[0], ' ');
    assert_int_equal(n.text[n.len - 1], ' ');
    assert_true(n.from[n.len - 1] < NORM_MAX_IN);
    /* "xéééé..." folds to "xe" after the repeat rule */
    assert_string_equal(n.text, " xe ");
    norm_free(&n);
    free(in);
}

static void test_speed(void **state)
{
    static const char *const parts[] = {
        "The quick brown fox jumps over the lazy dog. ",
        "Page text with <b>markup</b> & links https://example.com/a?b=c. ",
        "k1ll $elf h@rm s-u-i-c-i-d-e sooooo ",
        "zabić się, mulțumesc, dŵr. ",
        "میں ٹھیک ہوں ",
        "আমি কি করব ",
        "ＫＩＬＬ café \xf0\x9f\x98\x80 ",
        "2024 100% 5 km ",
    };
    size_t cap = 1u << 20, len = 0, i = 0;
    char *in = malloc(cap);
    struct norm n;
    struct timespec t0, t1;
    double secs;

    (void)state;
    assert_non_null(in);
    while (1) {
        size_t l = strlen(parts[i % HAVEN_ARRAY_LEN(parts)]);
        if (len + l > cap)
            break;
        memcpy(in + len, parts[i % HAVEN_ARRAY_LEN(parts)], l);
        len += l;
        i++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(norm_text(in, len, 1, &n), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message(
        "normalised %zu bytes of mixed text with map in %.4f s: %.1f MB/s (build flags apply)\n",
        len, secs, secs > 0 ? (double)len / 1e6 / secs : 0.0);
    assert_non_null(strstr(n.text, " kill self harm suicide so "));
    norm_free(&n);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),     cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_map_shape), cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_cap),       cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
