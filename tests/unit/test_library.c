/* Unit tests: keyword library parser (src/monitor/library.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include "monitor/library.h"

static struct library *load(const char *text, char *err, size_t errlen)
{
    return library_load_buffer("t.lib", text, strlen(text), err, errlen);
}

static const struct lib_phrase *find(const struct library *l, int theme, const char *text)
{
    for (size_t i = 0; i < library_count(l); i++) {
        const struct lib_phrase *p = library_phrase(l, i);
        if (p->theme == theme && strcmp(p->text, text) == 0)
            return p;
    }
    return NULL;
}

static const char valid[] =
    "# a test library\n"
    "language en   # English\n"
    "exclude-site school.example\n"
    "\n"
    "theme self-harm {\n"
    "    severity 4\n"
    "    phrase \"Cut   Myself\" context -2 \"mango\" \"Onion\" context +1 blade\n"
    "    phrase \"burn myself\" 2\n"
    "    phrase \"say \\\"no\\\"\"\n"
    "    exclude \"cut myself some slack\"\n"
    "    exclude-site bbc.co.uk/bitesize help.example\n"
    "    exclude-group staff\n"
    "}\n"
    "theme suicide {\r\n"
    "    phrase \"kill myself\" 5\r\n"
    "    phrase \"ŻYCIE\"\r\n"
    "}\n"
    "theme bullying {\n"
    "    phrase \"cut myself\"\n" /* the same phrase in another theme is fine */
    "}";

static void test_valid(void **state)
{
    char err[512];
    struct library *l;
    const struct lib_phrase *p;
    const struct lib_exclusion *e;

    (void)state;
    l = load(valid, err, sizeof(err));
    if (!l)
        fail_msg("%s", err);
    assert_string_equal(library_language(l), "en");
    assert_string_equal(library_name(l), "t.lib");
    assert_int_equal(library_count(l), 6);
    assert_true(library_has_theme(l, LIB_SELF_HARM));
    assert_true(library_has_theme(l, LIB_SUICIDE));
    assert_false(library_has_theme(l, LIB_GAMBLING));

    /* Lower-cased, spaces made single, theme severity, two contexts. */
    p = find(l, LIB_SELF_HARM, "cut myself");
    assert_non_null(p);
    assert_int_equal(p->nwords, 2);
    assert_int_equal(p->severity, 4);
    assert_int_equal(p->line, 7);
    assert_int_equal(p->nctx, 2);
    assert_int_equal(p->ctx[0].delta, -2);
    assert_int_equal(p->ctx[0].nwords, 2);
    assert_string_equal(p->ctx[0].words[0], "mango");
    assert_string_equal(p->ctx[0].words[1], "onion");
    assert_int_equal(p->ctx[1].delta, 1);
    assert_int_equal(p->ctx[1].nwords, 1);
    assert_string_equal(p->ctx[1].words[0], "blade");

    p = find(l, LIB_SELF_HARM, "burn myself");
    assert_non_null(p);
    assert_int_equal(p->severity, 2);
    assert_int_equal(p->nctx, 0);
    assert_null(p->ctx);
    assert_non_null(find(l, LIB_SELF_HARM, "say \"no\""));

    /* A theme without "severity" uses 3; non-ASCII is lower-cased too. */
    p = find(l, LIB_SUICIDE, "kill myself");
    assert_non_null(p);
    assert_int_equal(p->severity, 5);
    assert_int_equal(p->line, 15);
    p = find(l, LIB_SUICIDE, "życie");
    assert_non_null(p);
    assert_int_equal(p->severity, LIB_DEFAULT_SEVERITY);
    assert_non_null(find(l, LIB_BULLYING, "cut myself"));

    /* Exclusions in file order: top-level site, phrase, two sites, group. */
    assert_int_equal(library_exclusion_count(l), 5);
    e = library_exclusion(l, 0);
    assert_int_equal(e->kind, LIB_EXCLUDE_SITE);
    assert_int_equal(e->theme, -1);
    assert_string_equal(e->text, "school.example");
    e = library_exclusion(l, 1);
    assert_int_equal(e->kind, LIB_EXCLUDE_PHRASE);
    assert_int_equal(e->theme, LIB_SELF_HARM);
    assert_string_equal(e->text, "cut myself some slack");
    assert_int_equal(e->line, 10);
    e = library_exclusion(l, 2);
    assert_int_equal(e->kind, LIB_EXCLUDE_SITE);
    assert_string_equal(e->text, "bbc.co.uk/bitesize");
    assert_string_equal(library_exclusion(l, 3)->text, "help.example");
    e = library_exclusion(l, 4);
    assert_int_equal(e->kind, LIB_EXCLUDE_GROUP);
    assert_int_equal(e->theme, LIB_SELF_HARM);
    assert_string_equal(e->text, "staff");
    library_free(l);
}

static void test_themes(void **state)
{
    (void)state;
    assert_int_equal(library_theme_count(), 11);
    assert_int_equal(library_theme_find("self-harm"), LIB_SELF_HARM);
    assert_int_equal(library_theme_find("selfharm"), -1);
    assert_string_equal(library_theme_name(LIB_WEAPONS_VIOLENCE), "weapons-violence");
    assert_string_equal(library_theme_4c(LIB_SUICIDE), "content");
    assert_string_equal(library_theme_4c(LIB_BULLYING), "contact");
    assert_string_equal(library_theme_4c(LIB_SEXUAL_EXPLOITATION), "contact");
    assert_string_equal(library_theme_4c(LIB_GAMBLING), "commerce");
    assert_string_equal(library_theme_4c(LIB_HATE), "content");
    for (int i = 0; i < library_theme_count(); i++)
        assert_int_equal(library_theme_find(library_theme_name(i)), i);
    assert_true(library_language_known("cy"));
    assert_false(library_language_known("de"));
}

static void test_errors(void **state)
{
    static const struct {
        const char *text;
        const char *where; /* the error starts with this */
        const char *says;  /* and contains this */
    } cases[] = {
        {"language en\ntheme self_harm {\n phrase \"x\"\n}\n",
         "t.lib:2:", "unknown theme 'self_harm' (did you mean 'self-harm'?)"},
        {"language en\ntheme grooming {\n}\n", "t.lib:2:", "did you mean 'sexual-exploitation'?"},
        {"language en\ntheme cats {\n}\n", "t.lib:2:", "the themes are suicide, self-harm"},
        {"language en\ntheme drugs {\n severity 6\n phrase \"x\"\n}\n",
         "t.lib:3:", "severity must be 1 to 5, not '6'"},
        {"language en\ntheme drugs {\n phrase \"x\" 0\n}\n",
         "t.lib:3:", "severity must be 1 to 5, not '0'"},
        {"language en\ntheme drugs {\n phrase \"buy weed\"\n phrase \"x\"\n phrase \"Buy  "
         "Weed\"\n}\n",
         "t.lib:5:", "duplicate phrase \"buy weed\" in theme 'drugs' (first at line 3)"},
        {"language en\nphrase \"x\"\n", "t.lib:2:", "'phrase' must be inside a theme block"},
        {"language en\ntheme drugs {\n phrase \"buy weed\n}\n", "t.lib:3:", "unterminated string"},
        {"language en\ntheme drugs {\n phrase \"x\"\ntheme hate {\n phrase \"y\"\n}\n",
         "t.lib:4:", "'theme' inside theme 'drugs' (opened at line 2): themes do not nest"},
        {"language en\ntheme drugs {\n phrase \"x\"\n",
         "t.lib:2:", "theme 'drugs' opened here is never closed (a '}' is missing)"},
        {"language en\ntheme drugs\n phrase \"x\"\n}\n", "t.lib:2:", "write: theme NAME {"},
        {"language en\ntheme drugs {\n phrase \"a b c d e f g h i\"\n}\n",
         "t.lib:3:", "phrase \"a b c d e f g h i\" has 9 words (the limit is 8)"},
        {"language en\ntheme drugs {\n phrase "
         "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n}\n",
         "t.lib:3:", "bytes long (the limit is 200)"},
        {"language en\ntheme drugs {\n phrase \"x\" context 2 \"y\"\n}\n", "t.lib:3:",
         "context change '2' needs a sign: write +2 to raise the severity or -2 to lower it"},
        {"language en\ntheme drugs {\n phrase \"x\" context +5 \"y\"\n}\n",
         "t.lib:3:", "context change must be -4 to -1 or +1 to +4, not '+5'"},
        {"language en\ntheme drugs {\n phrase \"x\" context -1\n}\n",
         "t.lib:3:", "'context -1' needs at least one word after it"},
        {"language en\ntheme drugs {\n phrase \"x\" context -1 \"two words\"\n}\n",
         "t.lib:3:", "context word \"two words\" has 2 words (the limit is 1)"},
        {"language en\ntheme drugs {\n phrse \"x\"\n}\n",
         "t.lib:3:", "unknown statement 'phrse' (did you mean 'phrase'?)"},
        {"language en\nfoo bar\n", "t.lib:2:",
         "unknown statement 'foo' (expected language, theme, exclude-site or exclude-group)"},
        {"theme drugs {\n phrase \"x\"\n}\n",
         "t.lib:1:", "the library must start with 'language CODE'"},
        {"# nothing\n\n", "t.lib:1:", "the library is empty"},
        {"language en\nlanguage pl\n", "t.lib:2:", "'language' given twice (first at line 1)"},
        {"language de\n", "t.lib:1:", "unknown language 'de' (the languages are en, pl"},
        {"language English\n", "t.lib:1:", "unknown language 'English' (did you mean 'en'?)"},
        {"langauge en\n", "t.lib:1:", "unknown statement 'langauge' (did you mean 'language'?)"},
        {"language en\ntheme drugs {\n phrase buy\n}\n",
         "t.lib:3:", "write the phrase in double quotes"},
        {"language en\ntheme drugs {\n phrase \"x\" high\n}\n", "t.lib:3:",
         "unexpected 'high' after the phrase (expected a severity 1 to 5 or 'context')"},
        {"language en\ntheme drugs {\n phrase \"x\"\n severity 2\n}\n",
         "t.lib:4:", "'severity' must come before the first phrase of the theme (line 3)"},
        {"language en\ntheme drugs {\n}\n", "t.lib:3:", "theme 'drugs' (line 2) has no phrases"},
        {"language en\ntheme drugs {\n phrase \"x\"\n}\ntheme drugs {\n",
         "t.lib:5:", "theme 'drugs' is already defined at line 2"},
        {"language en\ntheme drugs {\n phrase \"buy weed\"\n exclude \"buy weed killer\"\n"
         " exclude \"grass seed\"\n}\n",
         "t.lib:5:", "exclusion \"grass seed\" contains no phrase of theme 'drugs'"},
        {"language en\ntheme drugs {\n phrase \"weed\"\n exclude \"weedkiller spray\"\n}\n",
         "t.lib:4:", "contains no phrase"},
        {"language en\nexclude-site https://bbc.co.uk\n",
         "t.lib:2:", "write the site without 'http://' or 'https://'"},
        {"language en\nexclude-site bad_site!\n", "t.lib:2:", "'bad_site!' is not a site"},
        {"language en\nexclude-group st@ff\n",
         "t.lib:2:", "group name 'st@ff' may only use letters"},
        {"language en\nexclude-group staff\nexclude-group staff\n",
         "t.lib:3:", "group 'staff' is already excluded at line 2"},
        {"language en\n}\n", "t.lib:2:", "'}' without a theme to close"},
        {"language en\ntheme drugs { phrase \"x\" }\n", "t.lib:2:", "'}' must be alone"},
        {"language en\ntheme drugs {\n phrase \"x\" {\n}\n", "t.lib:3:", "unexpected '{'"},
        {"language en\ntheme drugs {\n phrase \"\xff\xfe\"\n}\n", "t.lib:3:", "is not valid UTF-8"},
        {"language en\ntheme drugs {\n phrase \"   \"\n}\n", "t.lib:3:", "empty phrase"},
        {"language en\ntheme drugs {\n phrase \"x\"\"y\"\n}\n",
         "t.lib:3:", "a string must be followed by a space"},
        {"language en\n\ttheme\x01\n", "t.lib:2:", "control character"},
        {"language en\ntheme drugs {\n phrase \"x\"\n}\n\n", "", ""}, /* fine: see below */
    };
    char err[1024];

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        struct library *l = load(cases[i].text, err, sizeof(err));
        if (cases[i].where[0] == '\0') {
            if (!l)
                fail_msg("case %zu: should load, got '%s'", i, err);
            library_free(l);
            continue;
        }
        if (l) {
            library_free(l);
            fail_msg("case %zu: loaded, want '%s ... %s'", i, cases[i].where, cases[i].says);
        }
        if (strncmp(err, cases[i].where, strlen(cases[i].where)) != 0 ||
            !strstr(err, cases[i].says))
            fail_msg("case %zu: got '%s', want '%s ... %s'", i, err, cases[i].where, cases[i].says);
    }
}

static void test_no_nul_no_phrases(void **state)
{
    static const char with_nul[] = "language en\ntheme drugs {\n phrase \"x\0y\"\n}\n";
    char err[512];
    struct library *l;

    (void)state;
    l = library_load_buffer("t.lib", with_nul, sizeof(with_nul) - 1, err, sizeof(err));
    assert_null(l);
    assert_string_equal(err, "t.lib:3: NUL byte in the file");
    l = load("language en\nexclude-group staff\n", err, sizeof(err));
    assert_null(l);
    assert_non_null(strstr(err, "the library has no phrases"));
    /* 200 bytes as written, 300 once lower-cased (U+023A becomes U+2C65). */
    char text[512];
    size_t n = (size_t)snprintf(text, sizeof(text), "language en\ntheme drugs {\nphrase \"");
    for (int i = 0; i < 100; i++) {
        memcpy(text + n, "\xc8\xba", 2);
        n += 2;
    }
    memcpy(text + n, "\"\n}\n", 5);
    l = library_load_buffer("t.lib", text, n + 4, err, sizeof(err));
    assert_null(l);
    assert_string_equal(err,
                        "t.lib:3: phrase is 300 bytes long once lower-cased (the limit is 200)");
    l = library_load("/nonexistent/x.lib", err, sizeof(err));
    assert_null(l);
    assert_int_equal(strncmp(err, "/nonexistent/x.lib: ", 20), 0);
}

static void test_english_library(void **state)
{
    char err[512], path[4096];
    struct library *l;
    int per_theme[LIB_NTHEMES] = {0};

    (void)state;
    snprintf(path, sizeof(path), "%s/monitor/en.lib", HAVEN_SOURCE_DIR);
    l = library_load(path, err, sizeof(err));
    if (!l)
        fail_msg("monitor/en.lib: %s", err);
    assert_string_equal(library_language(l), "en");
    assert_true(library_count(l) >= 300);
    for (size_t i = 0; i < library_count(l); i++)
        per_theme[library_phrase(l, i)->theme]++;
    for (int t = 0; t < LIB_NTHEMES; t++) {
        if (per_theme[t] == 0)
            fail_msg("monitor/en.lib has no phrase for theme %s", library_theme_name(t));
    }
    /* The cooking context lowers "cut myself"; "kill myself" is the top severity. */
    const struct lib_phrase *p = find(l, LIB_SELF_HARM, "cut myself");
    assert_non_null(p);
    assert_true(p->nctx >= 1);
    assert_true(p->ctx[0].delta < 0);
    p = find(l, LIB_SUICIDE, "kill myself");
    assert_non_null(p);
    assert_int_equal(p->severity, 5);
    library_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),           cmocka_unit_test(test_themes),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_no_nul_no_phrases),
        cmocka_unit_test(test_english_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
