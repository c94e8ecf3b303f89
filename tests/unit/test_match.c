/* Unit tests: phrase scanning (src/monitor/match.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <stdlib.h>

#include "monitor/library.h"
#include "monitor/match.h"

static const char en[] = "language en\n"
                         "exclude-group staff\n"
                         "theme self-harm {\n"
                         "    severity 4\n"
                         "    phrase \"cut myself\" context -3 mango onion context +1 again\n"
                         "    exclude \"cut myself some slack\"\n"
                         "    exclude-site help.example/self-harm\n"
                         "}\n"
                         "theme suicide {\n"
                         "    phrase \"kill myself\" 5\n"
                         "    phrase \"kms\" 4 context -3 run walk miles\n"
                         "    phrase \"don't want to be here\" 3\n"
                         "}\n"
                         "theme drugs {\n"
                         "    phrase \"buy weed\" 3\n"
                         "}\n"
                         "theme eating-disorders {\n"
                         "    phrase \"starv*\" 1 context +3 myself thinsp*\n"
                         "}\n";

static const char pl[] = "language pl\n"
                         "theme suicide {\n"
                         "    phrase \"zabić się\" 5\n"
                         "}\n";

static struct match_db *db;
static struct match_scratch *scr;

static int setup(void **state)
{
    char err[512];
    struct library *libs[2];

    (void)state;
    libs[0] = library_load_buffer("en.lib", en, strlen(en), err, sizeof(err));
    libs[1] = library_load_buffer("pl.lib", pl, strlen(pl), err, sizeof(err));
    if (!libs[0] || !libs[1])
        fail_msg("%s", err);
    db = match_db_build(libs, 2, err, sizeof(err));
    if (!db)
        fail_msg("%s", err);
    assert_int_equal(match_scratch_ensure(&scr, db), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    match_scratch_free(scr);
    match_db_free(db);
    return 0;
}

/* The verdict for text read by group at host/path (NULLs: unknown). */
static struct match_result scan(const char *text, const char *group, const char *host,
                                const char *path)
{
    struct match_result r;
    struct match_where w = {group, host, path};

    assert_int_equal(match_text(db, scr, text, strlen(text), &w, &r), 0);
    return r;
}

static void test_phrases_and_words(void **state)
{
    struct match_result r;

    (void)state;
    assert_int_equal(match_db_phrases(db), 7);
    assert_string_equal(match_db_languages(db), "en pl");
    r = scan("I want to KILL MYSELF.", NULL, NULL, NULL);
    assert_int_equal(r.severity, 5);
    assert_int_equal(r.nhits, 1);
    assert_string_equal(r.hits[0].phrase->text, "kill myself");
    assert_string_equal(r.hits[0].lang, "en");
    assert_string_equal(r.hits[0].excerpt, "I want to KILL MYSELF.");
    /* whole words only */
    assert_int_equal(scan("my bookmarks folder", NULL, NULL, NULL).severity, 0);
    assert_int_equal(scan("skill myselfie", NULL, NULL, NULL).severity, 0);
    assert_int_equal(scan("", NULL, NULL, NULL).severity, 0);
}

static void test_spellings(void **state)
{
    (void)state;
    assert_int_equal(scan("k1ll mys3lf", NULL, NULL, NULL).severity, 5);
    assert_int_equal(scan("killllll myself", NULL, NULL, NULL).severity, 5); /* "kil" */
    /* one word alone does not match with a double letter made single ("weed", "wed") */
    assert_int_equal(scan("buy wed", NULL, NULL, NULL).severity, 3);
    assert_int_equal(scan("bought weed", NULL, NULL, NULL).severity, 0);
    assert_int_equal(scan("k i l l   myself", NULL, NULL, NULL).severity, 5);
    assert_int_equal(scan("i dont want to be here", NULL, NULL, NULL).severity, 3);
    assert_int_equal(scan("i don’t want to be here", NULL, NULL, NULL).severity, 3);
    /* another language's library applies to any text; accents are optional */
    assert_int_equal(scan("chce sie zabic sie", NULL, NULL, NULL).severity, 5);
    assert_int_equal(scan("chcę się zabić się", NULL, NULL, NULL).severity, 5);
}

static void test_context_and_exclusions(void **state)
{
    struct match_result r;

    (void)state;
    r = scan("how not to cut myself chopping a mango", NULL, NULL, NULL);
    assert_int_equal(r.severity, 1); /* 4 - 3 */
    assert_int_equal(match_alert_severity(&r, 3, ~0u), 0);
    r = scan("i cut myself again", NULL, NULL, NULL);
    assert_int_equal(r.severity, 5); /* 4 + 1 */
    /* a context word more than 8 words away does not count */
    r = scan("mango one two three four five six seven eight nine i cut myself", NULL, NULL, NULL);
    assert_int_equal(r.severity, 4);
    r = scan("mango one two three four five six i cut myself", NULL, NULL, NULL);
    assert_int_equal(r.severity, 1);
    assert_int_equal(scan("i ran 5 kms", NULL, NULL, NULL).severity, 4); /* "ran" is not "run" */
    assert_int_equal(scan("walk 5 kms", NULL, NULL, NULL).severity, 1);
    assert_int_equal(scan("cut myself some slack", NULL, NULL, NULL).severity, 0);
    /* an exclusion cancels only the match inside it */
    r = scan("cut myself some slack but then i cut myself", NULL, NULL, NULL);
    assert_int_equal(r.severity, 4);
    /* sites and groups */
    assert_int_equal(scan("i cut myself", NULL, "help.example", "/self-harm/advice").severity, 0);
    assert_int_equal(scan("i cut myself", NULL, "www.help.example", "/self-harm").severity, 0);
    assert_int_equal(scan("i cut myself", NULL, "help.example", "/self-harmony").severity, 4);
    assert_int_equal(scan("i cut myself", NULL, "nothelp.example", "/self-harm").severity, 4);
    assert_int_equal(scan("kill myself", NULL, "help.example", "/self-harm").severity, 5);
    assert_int_equal(scan("kill myself", "staff", NULL, NULL).severity, 0);
}

/* A '*' ends a prefix: any ending of the last word matches, in phrases and context words. */
static void test_prefixes(void **state)
{
    (void)state;
    assert_int_equal(scan("starving", NULL, NULL, NULL).severity, 1);
    assert_int_equal(scan("i am starving myself", NULL, NULL, NULL).severity, 4);
    assert_int_equal(scan("starve", NULL, NULL, NULL).severity, 1);
    assert_int_equal(scan("thinspiration and starvation", NULL, NULL, NULL).severity, 4);
    assert_int_equal(scan("sta rving", NULL, NULL, NULL).severity, 0);
    assert_int_equal(scan("outstarving", NULL, NULL, NULL).severity, 0);
    /* the word after a prefix match is counted right for context */
    assert_int_equal(
        scan("starving one two three four five six seven myself", NULL, NULL, NULL).severity, 4);
    assert_int_equal(
        scan("starving one two three four five six seven eight myself", NULL, NULL, NULL).severity,
        1);
}

static void test_score_and_themes(void **state)
{
    struct match_result r;

    (void)state;
    r = scan("buy weed buy weed buy weed buy weed, kill myself", NULL, NULL, NULL);
    assert_int_equal(r.nhits, 2);
    assert_int_equal(r.hits[0].severity, 5); /* strongest first */
    assert_int_equal(r.score, 3 * 5 + 20);   /* a phrase counts at most 3 times */
    assert_int_equal(match_alert_severity(&r, 3, 1u << LIB_DRUGS), 3);
    assert_int_equal(match_alert_severity(&r, 4, 1u << LIB_DRUGS), 0);
    assert_int_equal(match_alert_severity(&r, 3, ~0u), 5);
}

/* Streaming in any split gives the block verdict. */
static void test_stream_splits(void **state)
{
    static const char *texts[] = {
        "<p>some text and then i want to kill myself tonight</p> more text",
        "chopping a mango\nand i cut myself",
        "buy weed\tbuy weed buy weed kill myself",
    };

    (void)state;
    for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
        size_t len = strlen(texts[t]);
        struct match_result whole = scan(texts[t], NULL, NULL, NULL);
        for (size_t cut = 0; cut <= len; cut++) {
            struct match_stream *ms = match_stream_open(db);
            struct match_result r;
            assert_non_null(ms);
            assert_int_equal(match_stream_feed(ms, scr, texts[t], cut), 0);
            assert_int_equal(match_stream_feed(ms, scr, texts[t] + cut, len - cut), 0);
            assert_int_equal(match_stream_close(ms, scr, NULL, &r), 0);
            assert_int_equal(r.severity, whole.severity);
            assert_int_equal(r.score, whole.score);
            assert_int_equal(r.nhits, whole.nhits);
        }
        /* one byte at a time */
        struct match_stream *ms = match_stream_open(db);
        struct match_result r;
        for (size_t i = 0; i < len; i++)
            assert_int_equal(match_stream_feed(ms, scr, texts[t] + i, 1), 0);
        assert_int_equal(match_stream_close(ms, scr, NULL, &r), 0);
        assert_int_equal(r.severity, whole.severity);
        assert_int_equal(r.score, whole.score);
    }
}

/* A long page full of context words: those near a later hit still count. */
static void test_many_context_words(void **state)
{
    static const char far[] = "onion onion onion onion onion onion onion onion onion onion ";
    static const char near[] = "some words to move well away from all of that now i chopped an "
                               "onion and cut myself";
    struct match_stream *ms = match_stream_open(db);
    struct match_result r;

    (void)state;
    for (int i = 0; i < 2 * MATCH_MAX_MARKS / 10; i++)
        assert_int_equal(match_stream_feed(ms, scr, far, strlen(far)), 0);
    assert_int_equal(match_stream_feed(ms, scr, near, strlen(near)), 0);
    assert_int_equal(match_stream_close(ms, scr, NULL, &r), 0);
    assert_int_equal(r.severity, 1); /* 4 - 3: the onion next to it was kept */
}

static void test_stream_excerpt_and_long_words(void **state)
{
    struct match_stream *ms = match_stream_open(db);
    struct match_result r;
    char big[4000];

    (void)state;
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = "ab"[i % 2]; /* one long word (a run of one letter would collapse to "x") */
    assert_int_equal(match_stream_feed(ms, scr, big, sizeof(big)), 0);
    assert_int_equal(match_stream_feed(ms, scr, " I want to ", 11), 0);
    assert_int_equal(match_stream_feed(ms, scr, "KILL myself tonight", 19), 0);
    assert_int_equal(match_stream_close(ms, scr, NULL, &r), 0);
    assert_int_equal(r.severity, 5);
    /* stream excerpts are normalised text, up to the end of the text scanned so far */
    assert_string_equal(r.hits[0].excerpt, "i want to kill myself");
    match_stream_abort(NULL);
    match_stream_abort(match_stream_open(db));
}

/* A phrase that is one character once normalised would match everywhere: refused. */
static void test_one_character_refused(void **state)
{
    static const char text[] = "language en\ntheme pornography {\n    phrase \"xxx\"\n}\n";
    char err[512];
    struct library *l = library_load_buffer("x.lib", text, strlen(text), err, sizeof(err));

    (void)state;
    assert_non_null(l);
    assert_null(match_db_build(&l, 1, err, sizeof(err)));
    assert_string_equal(err, "x.lib:3: phrase \"xxx\" is \"x\" once normalised (repeated letters "
                             "become one): too short to match alone");
    library_free(l);
}

static void test_load_dir(void **state)
{
    char err[512], dir[4096];
    struct match_db *d;
    const char *src = getenv("HAVEN_SOURCE_DIR");

    (void)state;
    d = match_db_load_dir("/nonexistent", err, sizeof(err));
    assert_null(d);
    assert_non_null(strstr(err, "/nonexistent"));
    if (!src)
        skip();
    snprintf(dir, sizeof(dir), "%s/monitor", src);
    d = match_db_load_dir(dir, err, sizeof(err));
    if (!d)
        fail_msg("%s", err);
    assert_true(match_db_phrases(d) > 50);
    assert_true(match_db_stream_size(d) > 0);
    match_db_free(d);
    snprintf(dir, sizeof(dir), "%s/src", src);
    assert_null(match_db_load_dir(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "no keyword libraries"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phrases_and_words),
        cmocka_unit_test(test_spellings),
        cmocka_unit_test(test_context_and_exclusions),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_score_and_themes),
        cmocka_unit_test(test_stream_splits),
        cmocka_unit_test(test_many_context_words),
        cmocka_unit_test(test_stream_excerpt_and_long_words),
        cmocka_unit_test(test_one_character_refused),
        cmocka_unit_test(test_load_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
