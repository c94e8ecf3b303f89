/* Unit tests: E2Guardian weighted phrase list import (src/monitor/e2g.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "monitor/e2g.h"
#include "monitor/library.h"
#include "monitor/match.h"

struct imp {
    struct e2g *e;
    char *out;
    size_t len;
    struct library *lib;
    char err[1024];
};

/* Import text as list "t.txt"; render and load the result. */
static int import(struct imp *im, const char *text, enum e2g_encoding enc)
{
    struct e2g_options o = {LIB_DRUGS, "en", enc, 1};

    memset(im, 0, sizeof(*im));
    im->e = e2g_create(&o);
    if (e2g_add_buffer(im->e, "t.txt", text, strlen(text), im->err, sizeof(im->err)) < 0)
        return -1;
    im->out = e2g_render(im->e, &im->len, im->err, sizeof(im->err));
    if (!im->out)
        return -1;
    im->lib = library_load_buffer("out.lib", im->out, im->len, im->err, sizeof(im->err));
    if (!im->lib)
        fail_msg("output does not load: %s\n%s", im->err, im->out);
    return 0;
}

static void done(struct imp *im)
{
    library_free(im->lib);
    free(im->out);
    e2g_destroy(im->e);
}

static const struct lib_phrase *find(const struct library *l, const char *text)
{
    for (size_t i = 0; i < library_count(l); i++) {
        const struct lib_phrase *p = library_phrase(l, i);
        if (strcmp(p->text, text) == 0)
            return p;
    }
    return NULL;
}

static int has_warning(const struct e2g *e, const char *needle)
{
    for (size_t i = 0; e2g_warning(e, i); i++) {
        if (strstr(e2g_warning(e, i), needle))
            return 1;
    }
    return 0;
}

static void test_severity(void **state)
{
    (void)state;
    assert_int_equal(e2g_severity(1), 1);
    assert_int_equal(e2g_severity(19), 1);
    assert_int_equal(e2g_severity(20), 2);
    assert_int_equal(e2g_severity(49), 2);
    assert_int_equal(e2g_severity(50), 3);
    assert_int_equal(e2g_severity(99), 3);
    assert_int_equal(e2g_severity(100), 4);
    assert_int_equal(e2g_severity(5000), 4);
}

static void test_forms(void **state)
{
    struct imp im;
    const struct lib_phrase *p;

    (void)state;
    assert_int_equal(import(&im,
                            "#listcategory: \"Illegal drugs\"\n"
                            "< ganja ><40>\n"    /* whole word */
                            "<skunk><60>\n"      /* in-word: a prefix */
                            "< buy weed><120>\n" /* word start: a prefix */
                            "<kush ><10>\n"      /* word end: a whole word */
                            "< get e><30>\n"     /* last word too short for a prefix */
                            "<  Crystal   METH  ><50>  # comment\n",
                            E2G_ENC_AUTO),
                     0);
    p = find(im.lib, "ganja");
    assert_non_null(p);
    assert_int_equal(p->severity, 2);
    assert_int_equal(p->theme, LIB_DRUGS);
    assert_non_null(find(im.lib, "skunk*"));
    assert_int_equal(find(im.lib, "skunk*")->severity, 3);
    assert_int_equal(find(im.lib, "buy weed*")->severity, 4);
    assert_int_equal(find(im.lib, "kush")->severity, 1);
    assert_int_equal(find(im.lib, "get e")->severity, 2);
    assert_int_equal(find(im.lib, "crystal meth")->severity, 3);
    assert_int_equal(library_count(im.lib), 6);
    assert_int_equal(e2g_stats(im.e)->prefix, 2);
    assert_int_equal(e2g_stats(im.e)->whole, 2);
    assert_int_equal(e2g_warning_count(im.e), 0);
    assert_non_null(strstr(im.out, "\"Illegal drugs\""));
    assert_non_null(strstr(im.out, "theme drugs {"));
    done(&im);
}

static void test_combos(void **state)
{
    struct imp im;
    const struct lib_phrase *p;

    (void)state;
    assert_int_equal(import(&im,
                            "< pills >,< overdose ><100>\n"         /* -> pills 1, context +3 */
                            "< pills >,< swallow><60>\n"            /* -> context +2 swallow* */
                            "< pills ><20>\n"                       /* pills on its own: 2 */
                            "< how many >,< tablets to die ><80>\n" /* neither one word */
                            "< get high >,< cheap ><50>\n"          /* anchor is the longer part */
                            "< weed >,< buy ><10>\n"                /* severity 1: dropped */
                            "<a>,<b>,<c><50>\n",                    /* 3 parts: dropped */
                            E2G_ENC_AUTO),
                     0);
    p = find(im.lib, "pills");
    assert_non_null(p);
    assert_int_equal(p->severity, 2); /* the standalone line raised the anchor */
    assert_int_equal(p->nctx, 2);     /* +2 overdose (4-2), +1 swallow* (3-2) */
    assert_int_equal(p->ctx[0].delta, 2);
    assert_string_equal(p->ctx[0].words[0], "overdose");
    assert_int_equal(p->ctx[1].delta, 1);
    assert_string_equal(p->ctx[1].words[0], "swallow*");
    p = find(im.lib, "get high");
    assert_non_null(p);
    assert_int_equal(p->severity, 1);
    assert_int_equal(p->ctx[0].delta, 2);
    assert_string_equal(p->ctx[0].words[0], "cheap");
    assert_null(find(im.lib, "weed"));
    assert_null(find(im.lib, "how many"));
    assert_int_equal(e2g_stats(im.e)->combos, 3);
    assert_int_equal(e2g_stats(im.e)->combo_words, 1);
    assert_int_equal(e2g_stats(im.e)->combo_weak, 1);
    assert_int_equal(e2g_stats(im.e)->combo_many, 1);
    done(&im);
}

static void test_good_and_duplicates(void **state)
{
    struct imp im;

    (void)state;
    assert_int_equal(import(&im,
                            "< cannabis ><30>\n"
                            "< Cannabis ><70>\n" /* same phrase, higher weight kept */
                            "< cannabis ><5>\n"
                            "< medical cannabis ><-50>\n"
                            "<education>,<drugs><-20>\n"
                            "< heroin ><15%>\n",
                            E2G_ENC_AUTO),
                     0);
    assert_int_equal(find(im.lib, "cannabis")->severity, 3);
    assert_int_equal(library_count(im.lib), 2);
    assert_int_equal(e2g_stats(im.e)->merged, 2);
    assert_int_equal(e2g_stats(im.e)->good, 2);
    assert_null(find(im.lib, "medical cannabis"));
    /* good phrases are listed in the header comment, with where they were */
    assert_non_null(strstr(im.out, "#   t.txt:4: < medical cannabis ><-50>"));
    assert_non_null(strstr(im.out, "#   t.txt:5: <education>,<drugs><-20>"));
    assert_int_equal(find(im.lib, "heroin")->severity, 1); /* 15% counts as 15 */
    done(&im);
}

static void test_malformed(void **state)
{
    static const struct {
        const char *line, *warning;
    } cases[] = {
        {"<ganja<40>", "'<' inside the phrase 'ganja<40' (is a '>' missing?)"},
        {"< ganja ", "unterminated '<'"},
        {"< ganja >", "no weight"},
        {"< ganja ><lots>", "bad weight 'lots'"},
        {"< ganja ><4x0>", "bad weight '4x0'"},
        {"< ganja ><99999999>", "bad weight '99999999': out of range"},
        {"< ganja ><0>", "weight 0 adds nothing"},
        {"<><10>", "empty phrase"},
        {"< ganja >,<10>", "no weight"},
        {"< ganja >,oops<10>", "expected '<' after ','"},
        {"ganja 40", "'ganja 40' is not a phrase line"},
        {".Include<other>", ".Include skipped (includes are off)"},
        {".Include<>", ".Include<> names no file"},
        {".Include<other", "unterminated '<' in .Include"},
    };

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        char text[256];
        struct imp im;

        snprintf(text, sizeof(text), "# list\n%s\n< skunk ><50>\n", cases[i].line);
        if (import(&im, text, E2G_ENC_AUTO) < 0)
            fail_msg("%s: %s", cases[i].line, im.err);
        if (!has_warning(im.e, "t.txt:2: ") || !has_warning(im.e, cases[i].warning))
            fail_msg("%s: no warning '%s' (first: %s)", cases[i].line, cases[i].warning,
                     e2g_warning(im.e, 0) ? e2g_warning(im.e, 0) : "none");
        assert_int_equal(e2g_warning_count(im.e), 1);
        assert_non_null(find(im.lib, "skunk")); /* the rest is still imported */
        done(&im);
    }
}

static void test_text_after_weight(void **state)
{
    struct imp im;

    (void)state;
    assert_int_equal(import(&im, "<ganja><40>\t\t#weed\n< skunk ><50> breast\n", E2G_ENC_AUTO), 0);
    assert_int_equal(e2g_warning_count(im.e), 1);
    assert_true(has_warning(im.e, "t.txt:2: 'breast' after the weight ignored"));
    assert_non_null(find(im.lib, "skunk"));
    done(&im);
}

static void test_nothing(void **state)
{
    struct imp im;

    (void)state;
    assert_int_equal(import(&im, "# only good\n<education><-30>\n", E2G_ENC_AUTO), -1);
    assert_non_null(strstr(im.err, "nothing to import"));
    assert_non_null(strstr(im.err, "1 good phrases"));
    done(&im);
    assert_int_equal(import(&im, "", E2G_ENC_AUTO), -1);
    done(&im);
}

static void test_limits(void **state)
{
    struct imp im;
    char text[2048];

    (void)state;
    snprintf(text, sizeof(text),
             "< one two three four five six seven eight nine ><50>\n"
             "<$$$><50>\n"
             "<%0300d><50>\n"
             "<f*ck off><50>\n"
             "< quote \"me\" \\ ><50>\n",
             0);
    assert_int_equal(import(&im, text, E2G_ENC_AUTO), 0);
    assert_int_equal(e2g_stats(im.e)->too_long, 2);
    assert_int_equal(e2g_stats(im.e)->no_letters, 1);
    assert_non_null(find(im.lib, "f ck off*")); /* '*' is a separator, as for the matcher */
    assert_non_null(find(im.lib, "quote \"me\" \\"));
    done(&im);
}

static void test_encodings(void **state)
{
    struct imp im;

    (void)state;
    /* Latin-1: "< maconha ><40>" and "< cocaína ><60>", and a Windows-1252 quote */
    assert_int_equal(import(&im, "< coca\xedna ><60>\n< \x93smack\x94 ><40>\n", E2G_ENC_AUTO), 0);
    assert_non_null(find(im.lib, "coca\xc3\xadna"));
    assert_non_null(find(im.lib, "\xe2\x80\x9csmack\xe2\x80\x9d"));
    assert_int_equal(e2g_stats(im.e)->latin1, 1);
    assert_non_null(strstr(im.out, "(read as Latin-1)"));
    done(&im);
    /* UTF-8 with a BOM */
    assert_int_equal(import(&im, "\xef\xbb\xbf< COCA\xc3\x8dNA ><60>\n", E2G_ENC_AUTO), 0);
    assert_non_null(find(im.lib, "coca\xc3\xadna"));
    assert_int_equal(e2g_stats(im.e)->latin1, 0);
    done(&im);
    /* forced UTF-8: the bad line is skipped */
    assert_int_equal(import(&im, "< coca\xedna ><60>\n< skunk ><60>\n", E2G_ENC_UTF8), 0);
    assert_true(has_warning(im.e, "t.txt:1: not valid UTF-8"));
    assert_int_equal(library_count(im.lib), 1);
    done(&im);
    /* forced Latin-1 on UTF-8 text reads the bytes one by one */
    assert_int_equal(import(&im, "< caf\xc3\xa9 ><60>\n", E2G_ENC_LATIN1), 0);
    assert_non_null(find(im.lib, "caf\xc3\xa3\xc2\xa9"));
    done(&im);
}

/* ---------------------------------------------------------------- files */

static char tmpdir[64];

static void put(const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int add(struct e2g *e, const char *name, char *err, size_t errlen)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return e2g_add_file(e, path, err, errlen);
}

static void test_includes(void **state)
{
    struct e2g_options o = {LIB_PORNOGRAPHY, "en", E2G_ENC_AUTO, 0};
    struct e2g *e;
    char err[1024], path[256], line[300];
    size_t len;
    char *out;

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_e2g.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(path, sizeof(path), "%s/sub", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    put("top", "<porn><50>\n.Include<sub/a>\n");
    put("sub/a", "#listcategory: \"A\"\n< xxx videos ><100>\n.include<b>\n"); /* relative to sub/ */
    put("sub/b", "< nude ><20>\n");
    e = e2g_create(&o);
    assert_int_equal(add(e, "top", err, sizeof(err)), 0);
    out = e2g_render(e, &len, err, sizeof(err));
    assert_non_null(out);
    assert_non_null(strstr(out, "phrase \"porn*\" 3"));
    assert_non_null(strstr(out, "phrase \"xxx videos\" 4"));
    assert_non_null(strstr(out, "phrase \"nude\" 2"));
    snprintf(line, sizeof(line), "#   %s/sub/a  \"A\"  (included at %s/top:2)", tmpdir, tmpdir);
    assert_non_null(strstr(out, line));
    assert_int_equal(e2g_stats(e)->files, 3);
    free(out);
    e2g_destroy(e);

    /* a loop is fatal and names the line */
    put("loop1", "< a1 ><50>\n.Include<loop2>\n");
    put("loop2", "< a2 ><50>\n\n.Include<loop1>\n");
    e = e2g_create(&o);
    assert_int_equal(add(e, "loop1", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/loop2:3: .Include<"));
    assert_non_null(strstr(err, "makes a loop"));
    e2g_destroy(e);

    /* a file that includes itself */
    put("self", ".Include<self>\n");
    e = e2g_create(&o);
    assert_int_equal(add(e, "self", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/self:1: .Include<"));
    e2g_destroy(e);

    /* deeper than E2G_INCLUDE_DEPTH: d0 -> d1 -> ... -> d9 */
    for (int i = 0; i <= E2G_INCLUDE_DEPTH + 1; i++) {
        char name[16], text[64];
        snprintf(name, sizeof(name), "d%d", i);
        snprintf(text, sizeof(text), "< w%d ><50>\n.Include<d%d>\n", i, i + 1);
        put(name, text);
    }
    e = e2g_create(&o);
    assert_int_equal(add(e, "d0", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/d8:2: .Include<"));
    assert_non_null(strstr(err, "nests more than 8 deep"));
    e2g_destroy(e);

    /* a missing include is fatal */
    put("missing", "< a ><50>\n.Include<nowhere>\n");
    e = e2g_create(&o);
    assert_int_equal(add(e, "missing", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/missing:2: cannot read included file"));
    assert_non_null(strstr(err, "No such file"));
    e2g_destroy(e);

    /* a list that cannot be read */
    e = e2g_create(&o);
    assert_int_equal(add(e, "absent", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/absent: cannot read: No such file"));
    e2g_destroy(e);
}

/* The imported library gives haven's verdict on a high-weight phrase. */
static void test_matches(void **state)
{
    struct imp im;
    struct library *libs[1];
    struct match_db *db;
    struct match_scratch *scr = NULL;
    struct match_result r;
    static const char t1[] = "where can i buy cheap skunk";
    static const char t2[] = "took all my pills and an overdose";

    (void)state;
    assert_int_equal(import(&im, "< skunk ><120>\n< pills >,< overdose ><100>\n", E2G_ENC_AUTO), 0);
    libs[0] = im.lib;
    db = match_db_build(libs, 1, im.err, sizeof(im.err));
    if (!db)
        fail_msg("%s", im.err);
    im.lib = NULL; /* the database owns it */
    assert_int_equal(match_scratch_ensure(&scr, db), 0);
    assert_int_equal(match_text(db, scr, t1, strlen(t1), NULL, &r), 0);
    assert_int_equal(r.severity, 4);
    assert_int_equal(match_text(db, scr, t2, strlen(t2), NULL, &r), 0);
    assert_int_equal(r.severity, 4);
    assert_int_equal(match_text(db, scr, "pills", 5, NULL, &r), 0);
    assert_int_equal(r.severity, 1);
    match_scratch_free(scr);
    match_db_free(db);
    done(&im);
}

static int cleanup_tmp(void **state)
{
    char cmd[128];

    (void)state;
    if (tmpdir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_severity),  cmocka_unit_test(test_forms),
        cmocka_unit_test(test_combos),    cmocka_unit_test(test_good_and_duplicates),
        cmocka_unit_test(test_malformed), cmocka_unit_test(test_text_after_weight),
        cmocka_unit_test(test_nothing),   cmocka_unit_test(test_limits),
        cmocka_unit_test(test_encodings), cmocka_unit_test_teardown(test_includes, cleanup_tmp),
        cmocka_unit_test(test_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
