/* Unit tests: the category table, and docs/categories.md generated from it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include "catdb/taxonomy.h"

static void test_unique(void **state)
{
    (void)state;
    for (int i = 0; i < taxonomy_count(); i++) {
        const struct taxonomy_category *c = taxonomy_get(i);
        assert_int_equal(taxonomy_find(c->name), i);
        assert_true(strlen(c->title) > 0 && strlen(c->description) > 0);
        /* Each UT1 name maps to this category and no other. */
        char words[512];
        snprintf(words, sizeof(words), "%s", c->ut1);
        for (char *w = words, *next; *w; w = next) {
            next = w + strcspn(w, " ");
            if (*next)
                *next++ = '\0';
            assert_int_equal(taxonomy_find_ut1(w), i);
        }
    }
    assert_int_equal(taxonomy_find("no-such-category"), -1);
    assert_null(taxonomy_get(taxonomy_count()));
}

/* Requirement F2: the UKSIC inappropriate-content categories are all covered. */
static void test_uksic_coverage(void **state)
{
    static const char *const need[] = {
        "Discrimination", "Drugs",  "Extremism", "Gambling", "Malware / hacking",
        "Pornography",    "Piracy", "Self harm", "Violence", "Misinformation"};

    (void)state;
    for (size_t n = 0; n < HAVEN_ARRAY_LEN(need); n++) {
        int found = 0;
        for (int i = 0; i < taxonomy_count(); i++)
            found |= strncmp(taxonomy_get(i)->uksic, need[n], strlen(need[n])) == 0;
        if (!found)
            fail_msg("no category serves UKSIC '%s'", need[n]);
    }
    assert_true(taxonomy_get(taxonomy_find("iwf"))->flags & TAXONOMY_LOCKED);
    assert_true(taxonomy_get(taxonomy_find("terrorism"))->flags & TAXONOMY_LOCKED);
    assert_int_equal(taxonomy_find_ut1("porn"), taxonomy_find("pornography"));
    assert_int_equal(taxonomy_find_ut1("agressif"), taxonomy_find("hate"));
}

/* docs/categories.md is exactly what the table generates. */
static void test_docs_match(void **state)
{
    char path[4096], *gen = NULL, *doc;
    size_t genlen = 0, doclen;
    FILE *f, *mem = open_memstream(&gen, &genlen);

    (void)state;
    taxonomy_write_markdown(mem);
    fclose(mem);
    snprintf(path, sizeof(path), "%s/docs/categories.md", HAVEN_SOURCE_DIR);
    f = fopen(path, "rb");
    assert_non_null(f);
    doc = calloc(1, genlen + 2);
    doclen = fread(doc, 1, genlen + 1, f);
    fclose(f);
    if (doclen != genlen || memcmp(doc, gen, genlen) != 0)
        fail_msg("docs/categories.md is stale: run `haven lists categories --markdown > "
                 "docs/categories.md`");
    free(doc);
    free(gen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unique),
        cmocka_unit_test(test_uksic_coverage),
        cmocka_unit_test(test_docs_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
