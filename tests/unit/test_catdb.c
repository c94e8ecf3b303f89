/* Unit tests: category database builder, importer lines, lookup and validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <unistd.h>

#include "catdb/build.h"
#include "catdb/catdb.h"
#include "catdb/import.h"
#include "http/url.h"

struct fixture {
    struct catdb *db;
    int adult, games, iwf, ips;
};

static struct fixture fx;

static void add(struct import_ctx *c, int list, const char *line)
{
    const char *why = NULL;
    enum import_result r = import_line(c, list, line, strlen(line), &why);

    if (r != IMPORT_ADDED)
        fail_msg("line '%s' not added: %s", line, why ? why : "skipped");
}

static int setup(void **state)
{
    struct catdb_builder *b = catdb_builder_create();
    struct import_ctx c = {.b = b};
    char err[256];
    size_t len;
    void *img;

    (void)state;
    fx.adult = catdb_builder_add_list(b, "ut1/adult", "pornography");
    fx.games = catdb_builder_add_list(b, "ut1/games", "games");
    fx.iwf = catdb_builder_add_list(b, "iwf", "iwf");
    fx.ips = catdb_builder_add_list(b, "ips", "malware");
    add(&c, fx.adult, "example-porn.com");
    add(&c, fx.adult, ".dotted.example");
    add(&c, fx.adult, "0.0.0.0 hosts-one.example hosts-two.example");
    add(&c, fx.adult, "||adblock.example^");
    add(&c, fx.games, "example-porn.com"); /* in two lists */
    add(&c, fx.games, "games.example");
    add(&c, fx.adult, "blog.example/users/bad");
    add(&c, fx.adult, "www.wwwstripped.example/dir/");
    add(&c, fx.adult, "qs.example/?v=123");
    add(&c, fx.iwf, "http://abuse.example/img/1.jpg");
    add(&c, fx.ips, "192.0.2.7");
    add(&c, fx.ips, "198.51.100.1/evil");
    img = catdb_builder_image(b, "test", &len, err, sizeof(err));
    assert_non_null(img);
    fx.db = catdb_open_buffer(img, len, 1, err, sizeof(err));
    if (!fx.db)
        fail_msg("open: %s", err);
    catdb_builder_destroy(b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    catdb_close(fx.db);
    return 0;
}

static int in_list(const struct catdb_match *m, int list)
{
    return (m->lists[list / 64] >> (list % 64)) & 1;
}

/* Look a URL up; returns the match. */
static struct catdb_match look(const char *text)
{
    static struct url u;
    struct catdb_match m;
    const char *why;

    if (url_normalize(text, strlen(text), &u, &why) < 0)
        fail_msg("url %s: %s", text, why);
    catdb_lookup_url(fx.db, &u, &m);
    return m;
}

static void test_host_suffix(void **state)
{
    (void)state;
    assert_true(in_list(&(struct catdb_match){0}, 0) == 0);
    struct catdb_match m = look("http://example-porn.com/");
    assert_true(in_list(&m, fx.adult));
    assert_true(in_list(&m, fx.games)); /* every list, not the first */
    m = look("http://a.b.example-porn.com/x");
    assert_true(in_list(&m, fx.adult));
    m = look("http://notexample-porn.com/");
    assert_false(in_list(&m, fx.adult));
    m = look("http://example-porn.com.evil.test/");
    assert_false(in_list(&m, fx.adult));
    m = look("http://www.dotted.example/");
    assert_true(in_list(&m, fx.adult));
    m = look("http://hosts-two.example/");
    assert_true(in_list(&m, fx.adult));
    m = look("http://x.adblock.example/");
    assert_true(in_list(&m, fx.adult));
    m = look("http://games.example/");
    assert_true(in_list(&m, fx.games));
    assert_false(in_list(&m, fx.adult));
    m = look("http://com/");
    assert_int_equal(m.nhits, 0);
}

static void test_url_prefix(void **state)
{
    (void)state;
    assert_true(
        in_list((const struct catdb_match[]){look("http://blog.example/users/bad")}, fx.adult));
    assert_true(
        in_list((const struct catdb_match[]){look("http://blog.example/users/bad/")}, fx.adult));
    assert_true(
        in_list((const struct catdb_match[]){look("http://blog.example/users/bad/x/y")}, fx.adult));
    assert_true(
        in_list((const struct catdb_match[]){look("http://blog.example/users/bad?x=1")}, fx.adult));
    assert_true(
        in_list((const struct catdb_match[]){look("http://m.blog.example/users/bad")}, fx.adult));
    assert_false(
        in_list((const struct catdb_match[]){look("http://blog.example/users/badly")}, fx.adult));
    assert_false(
        in_list((const struct catdb_match[]){look("http://blog.example/users")}, fx.adult));
    assert_false(in_list((const struct catdb_match[]){look("http://blog.example/")}, fx.adult));
    /* A leading www. of a URL entry is not required. */
    assert_true(
        in_list((const struct catdb_match[]){look("http://wwwstripped.example/dir/a")}, fx.adult));
    /* An entry with a query matches that path and query exactly. */
    assert_true(in_list((const struct catdb_match[]){look("http://qs.example/?v=123")}, fx.adult));
    assert_false(
        in_list((const struct catdb_match[]){look("http://qs.example/?v=1234")}, fx.adult));
    assert_true(
        in_list((const struct catdb_match[]){look("https://abuse.example/img/1.jpg")}, fx.iwf));
    assert_false(
        in_list((const struct catdb_match[]){look("https://abuse.example/img/2.jpg")}, fx.iwf));
    /* Normalisation makes evasions meet the entry. */
    assert_true(in_list(
        (const struct catdb_match[]){look("HTTP://ABUSE.EXAMPLE.:80/img/./x/../%31.jpg")}, fx.iwf));
}

static void test_ip(void **state)
{
    struct catdb_match m;

    (void)state;
    m = look("http://192.0.2.7/");
    assert_true(in_list(&m, fx.ips));
    m = look("http://3221225991/"); /* 192.0.2.7 as one number */
    assert_true(in_list(&m, fx.ips));
    m = look("http://192.0.2.8/");
    assert_false(in_list(&m, fx.ips));
    m = look("http://198.51.100.1/evil/more");
    assert_true(in_list(&m, fx.ips));
    m = look("http://198.51.100.1/good");
    assert_false(in_list(&m, fx.ips));
    assert_int_equal(catdb_lookup_host(fx.db, "192.0.2.7", 9, 1, &m), 1);
    /* The hit records what matched: kind, suffix and key. */
    assert_int_equal(m.hits[0].kind, CATDB_HIT_IP);
}

static void test_hits(void **state)
{
    struct catdb_match m = look("http://deep.sub.example-porn.com/");

    (void)state;
    assert_int_equal(m.nhits, 1);
    assert_int_equal(m.hits[0].kind, CATDB_HIT_HOST);
    assert_int_equal(m.hits[0].host_off, strlen("deep.sub."));
    const uint64_t *bits = catdb_set_lists(fx.db, m.hits[0].set);
    assert_true(bits[0] & (1ULL << fx.adult));
}

static void test_lines(void **state)
{
    struct catdb_builder *b = catdb_builder_create();
    struct import_ctx c = {.b = b};
    int l = catdb_builder_add_list(b, "x", "x");
    const char *why;

    (void)state;
    static const char *const skipped[] = {
        "", "   ", "# comment", "! adblock comment", "[Adblock Plus 2.0]", "127.0.0.1 localhost"};
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(skipped); i++)
        assert_int_equal(import_line(&c, l, skipped[i], strlen(skipped[i]), &why), IMPORT_SKIPPED);
    static const char *const added[] = {"example.com",
                                        "EXAMPLE.ORG.",
                                        "*.wild.example",
                                        "example.net # trailing comment",
                                        "xn--bcher-kva.example",
                                        "bücher.example",
                                        "jaque_love.blogger.com.br",
                                        "||ads.example^$important",
                                        "::1 v6hosts.example",
                                        "example.com/path?q=1",
                                        "https://example.com:8443/x",
                                        "10.1.2.3"};
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(added); i++) {
        if (import_line(&c, l, added[i], strlen(added[i]), &why) != IMPORT_ADDED)
            fail_msg("'%s' should be added: %s", added[i], why);
    }
    static const char *const rejected[] = {
        "exa mple.com", "@@||allowed.example^", "example.com##.ad", "||ads.example^$third-party",
        "/regex/",      "ex*ample.com",         "example..com",     "-bad-.example\x01",
        "http://",      "javascript:alert(1)",  "||nocaret.example"};
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(rejected); i++) {
        why = NULL;
        if (import_line(&c, l, rejected[i], strlen(rejected[i]), &why) != IMPORT_REJECTED)
            fail_msg("'%s' should be rejected", rejected[i]);
        assert_non_null(why);
        assert_true(strlen(why) > 5);
    }
    catdb_builder_destroy(b);
}

static void test_dedup_counts(void **state)
{
    struct catdb_builder *b = catdb_builder_create();
    int a = catdb_builder_add_list(b, "a", "x");
    int again = catdb_builder_add_list(b, "a", "x");

    (void)state;
    assert_int_equal(a, again);
    catdb_builder_add_host(b, a, "dup.example", 11, 0);
    catdb_builder_add_host(b, a, "dup.example", 11, 0);
    assert_int_equal(catdb_builder_entries(b), 2);
    assert_int_equal(catdb_builder_keys(b), 1);
    for (int i = 1; i < CATDB_MAX_LISTS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "l%d", i);
        assert_true(catdb_builder_add_list(b, name, "x") >= 0);
    }
    assert_int_equal(catdb_builder_add_list(b, "one-too-many", "x"), -1);
    catdb_builder_destroy(b);
}

/* A damaged image is refused with a reason, never used. */
static void test_validation(void **state)
{
    struct catdb_builder *b = catdb_builder_create();
    char err[256];
    size_t len;
    unsigned char *img, *copy;

    (void)state;
    catdb_builder_add_host(b, catdb_builder_add_list(b, "a", "x"), "v.example", 9, 0);
    img = catdb_builder_image(b, "src", &len, err, sizeof(err));
    copy = malloc(len);
    /* Flip each byte in turn (a sample): the checksum or a bounds check must catch it. */
    for (size_t i = 0; i < len; i += 1 + len / 300) {
        memcpy(copy, img, len);
        copy[i] ^= 0x40;
        struct catdb *db = catdb_open_buffer(copy, len, 0, err, sizeof(err));
        if (db)
            fail_msg("byte %zu flipped but the database opened", i);
        assert_true(strlen(err) > 5);
    }
    /* Truncated and empty. */
    assert_null(catdb_open_buffer(img, len - 1, 0, err, sizeof(err)));
    assert_null(catdb_open_buffer(img, 10, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "too small"));
    memcpy(copy, img, len);
    struct catdb *db = catdb_open_buffer(copy, len, 0, err, sizeof(err));
    assert_non_null(db);
    assert_string_equal(catdb_source(db), "src");
    catdb_close(db);
    free(copy);
    free(img);
    catdb_builder_destroy(b);
}

static void test_open_file(void **state)
{
    struct catdb_builder *b = catdb_builder_create();
    char err[512], path[] = "/tmp/haven-test-catdb-XXXXXX";
    int fd = mkstemp(path);
    struct catdb_stats st;

    (void)state;
    close(fd);
    catdb_builder_add_host(b, catdb_builder_add_list(b, "a", "games"), "f.example", 9, 0);
    assert_int_equal(catdb_builder_write(b, path, "file test", err, sizeof(err)), 0);
    struct catdb *db = catdb_open(path, err, sizeof(err));
    assert_non_null(db);
    catdb_get_stats(db, &st);
    assert_int_equal(st.nlists, 1);
    assert_int_equal(st.nhosts, 1);
    assert_string_equal(catdb_list_name(db, 0), "a");
    assert_string_equal(catdb_list_category(db, 0), "games");
    catdb_close(db);
    unlink(path);
    assert_null(catdb_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    /* A write into a missing directory fails cleanly. */
    assert_int_equal(catdb_builder_write(b, "/nonexistent/dir/x.cdb", "", err, sizeof(err)), -1);
    catdb_builder_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_suffix), cmocka_unit_test(test_url_prefix),
        cmocka_unit_test(test_ip),          cmocka_unit_test(test_hits),
        cmocka_unit_test(test_lines),       cmocka_unit_test(test_dedup_counts),
        cmocka_unit_test(test_validation),  cmocka_unit_test(test_open_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
