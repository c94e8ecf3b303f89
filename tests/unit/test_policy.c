/* Unit tests: policy parser, compile and decision tiers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include "catdb/build.h"
#include "catdb/catdb.h"
#include "catdb/import.h"
#include "common/clock.h"
#include "http/url.h"
#include "policy/policy.h"

/* A small database: each line "list category entry". */
static struct catdb *test_db(void)
{
    static const char *const rows[][3] = {
        {"ut1/adult", "pornography", "porn.example"},
        {"ut1/adult", "pornography", "help.example"}, /* mis-listed help site */
        {"ut1/games", "games", "game.example"},
        {"ut1/games", "games", "both.example"},
        {"ut1/social", "social-networks", "both.example"},
        {"ut1/gambling", "gambling", "bet.example"},
        {"ut1/trusted", "trusted", "bet.example"},
        {"iwf", "iwf", "abuse.example/img/1"},
        {"iwf", "iwf", "help.example/bad"},
        {"school", "my-custom", "custom.example"},
    };
    struct catdb_builder *b = catdb_builder_create();
    struct import_ctx c = {.b = b};
    char err[256];
    size_t len;

    for (size_t i = 0; i < HAVEN_ARRAY_LEN(rows); i++) {
        const char *why;
        int l = catdb_builder_add_list(b, rows[i][0], rows[i][1]);
        assert_int_equal(import_line(&c, l, rows[i][2], strlen(rows[i][2]), &why), IMPORT_ADDED);
    }
    void *img = catdb_builder_image(b, "", &len, err, sizeof(err));
    catdb_builder_destroy(b);
    return catdb_open_buffer(img, len, 1, err, sizeof(err));
}

static const char base_policy[] = "school \"Test School\"\n"
                                  "timezone Europe/London\n"
                                  "schedule lessons {\n"
                                  "    mon-fri 09:00-12:00 13:00-15:00\n"
                                  "}\n"
                                  "list help \"Help services\" {\n"
                                  "    help.example\n"
                                  "    other-help.example \"Own reason\"\n"
                                  "}\n"
                                  "group pupils {\n"
                                  "    allow-list help\n"
                                  "    block site blocked.example \"Parents asked, 2026-10\"\n"
                                  "    allow site game.example/maths \"Used in maths lessons\"\n"
                                  "    block games during lessons\n"
                                  "    warn games social-networks\n"
                                  "    block pornography gambling\n"
                                  "    allow trusted\n"
                                  "    default allow\n"
                                  "    safe-search on\n"
                                  "    youtube strict\n"
                                  "    block-ip-hosts on\n"
                                  "    ports 80 443\n"
                                  "}\n"
                                  "group staff {\n"
                                  "    block pornography\n"
                                  "    allow my-custom\n"
                                  "    default block\n"
                                  "    safe-search off\n"
                                  "    youtube off\n"
                                  "    unsafe-search allow\n"
                                  "}\n"
                                  "default-group pupils\n";

static struct policy *load(const char *text, char *err, size_t errlen)
{
    return policy_load_buffer("test.conf", text, strlen(text), test_db(), err, errlen);
}

static struct policy *pol;
static int pupils, staff;
/* Monday 2026-11-30: 10:00 and 17:30 in London (GMT, UTC+0). */
static const int64_t monday_10 = 1796032800;
static const int64_t monday_1730 = 1796059800;

static int setup(void **state)
{
    char err[512];

    (void)state;
    pol = load(base_policy, err, sizeof(err));
    if (!pol)
        fail_msg("policy: %s", err);
    pupils = policy_group_find(pol, "pupils");
    staff = policy_group_find(pol, "staff");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    policy_free(pol);
    return 0;
}

static char reason[POLICY_REASON_MAX];

/* Decide, and check that the fast path and the explained path agree. */
static struct policy_verdict decide(const char *text, int group, int64_t t)
{
    struct policy_verdict fast;
    static struct url u;
    struct policy_verdict v;
    const char *why;

    if (url_normalize(text, strlen(text), &u, &why) < 0)
        fail_msg("url %s: %s", text, why);
    policy_decide(pol, &u, group, t, &fast);
    policy_explain(pol, &u, group, t, &v, reason, sizeof(reason));
    assert_memory_equal(&fast, &v, sizeof(v));
    assert_true(strlen(reason) > 10);
    return v;
}

static void test_parsed(void **state)
{
    (void)state;
    assert_int_equal(policy_group_count(pol), 2);
    assert_int_equal(policy_default_group(pol), pupils);
    assert_string_equal(policy_school(pol), "Test School");
    assert_int_equal(policy_group_find(pol, "nobody"), -1);
}

static void test_tiers(void **state)
{
    struct policy_verdict v;

    (void)state;
    /* 1. Locked tier beats the allow list that holds the same host. */
    v = decide("http://help.example/bad/x", pupils, monday_10);
    assert_int_equal(v.action, POLICY_BLOCK);
    assert_int_equal(v.tier, POLICY_TIER_LOCKED);
    assert_non_null(strstr(reason, "Internet Watch Foundation"));
    v = decide("https://abuse.example/img/1", staff, monday_10);
    assert_int_equal(v.tier, POLICY_TIER_LOCKED);
    /* 2. The allow list beats a category block. */
    v = decide("http://help.example/", pupils, monday_10);
    assert_int_equal(v.action, POLICY_ALLOW);
    assert_int_equal(v.tier, POLICY_TIER_ALLOW_LIST);
    assert_non_null(strstr(reason, "Help services"));
    v = decide("http://other-help.example/", pupils, monday_10);
    assert_non_null(strstr(reason, "Own reason"));
    assert_non_null(strstr(v.rule, "test.conf:8:"));
    /* 3. The block list. */
    v = decide("http://www.blocked.example/", pupils, monday_10);
    assert_int_equal(v.action, POLICY_BLOCK);
    assert_int_equal(v.tier, POLICY_TIER_BLOCK_LIST);
    assert_non_null(strstr(reason, "Parents asked"));
    /* A URL allow entry opens only that part of a blocked site. */
    v = decide("http://game.example/maths/fractions", pupils, monday_10);
    assert_int_equal(v.action, POLICY_ALLOW);
    v = decide("http://game.example/shooter", pupils, monday_10);
    assert_int_equal(v.action, POLICY_BLOCK);
    /* 5. Categories; 6. the default. */
    v = decide("http://porn.example/", pupils, monday_10);
    assert_int_equal(v.action, POLICY_BLOCK);
    assert_int_equal(v.tier, POLICY_TIER_CATEGORY);
    assert_string_equal(policy_category_name(pol, v.category), "pornography");
    assert_non_null(strstr(v.rule, "test.conf:16:"));
    v = decide("http://unlisted.example/", pupils, monday_10);
    assert_int_equal(v.action, POLICY_ALLOW);
    assert_int_equal(v.tier, POLICY_TIER_DEFAULT);
    v = decide("http://unlisted.example/", staff, monday_10);
    assert_int_equal(v.action, POLICY_BLOCK);
    /* Categories that only the database names work in rules. */
    v = decide("http://custom.example/", staff, monday_10);
    assert_int_equal(v.action, POLICY_ALLOW);
    assert_string_equal(policy_category_name(pol, v.category), "my-custom");
}

static void test_most_restrictive(void **state)
{
    struct policy_verdict v;

    (void)state;
    /* In gambling (block) and trusted (allow): block wins. */
    v = decide("http://bet.example/", pupils, monday_1730);
    assert_int_equal(v.action, POLICY_BLOCK);
    assert_string_equal(policy_category_name(pol, v.category), "gambling");
    /* In games and social-networks after school: both warn. */
    v = decide("http://both.example/", pupils, monday_1730);
    assert_int_equal(v.action, POLICY_WARN);
}

static void test_schedule(void **state)
{
    struct policy_verdict v;

    (void)state;
    v = decide("http://game.example/", pupils, monday_10);
    assert_int_equal(v.action, POLICY_BLOCK);
    assert_non_null(strstr(reason, "during lessons"));
    v = decide("http://game.example/", pupils, monday_1730);
    assert_int_equal(v.action, POLICY_WARN);
    /* Lunch, 12:30 on the Monday. */
    v = decide("http://game.example/", pupils, monday_10 + 9000);
    assert_int_equal(v.action, POLICY_WARN);
    /* Saturday 10:00. */
    v = decide("http://game.example/", pupils, monday_10 - 2 * 86400);
    assert_int_equal(v.action, POLICY_WARN);
    /* Summer time: Monday 2026-06-01 09:30 BST is 08:30 UTC (in lessons); 08:30 BST is not. */
    v = decide("http://game.example/", pupils, 1780302600);
    assert_int_equal(v.action, POLICY_BLOCK);
    v = decide("http://game.example/", pupils, 1780302600 - 3600);
    assert_int_equal(v.action, POLICY_WARN);
}

static void test_circumvention_and_safe_search(void **state)
{
    struct policy_verdict v;

    (void)state;
    v = decide("http://192.0.2.1/", pupils, monday_10);
    assert_int_equal(v.action, POLICY_BLOCK);
    assert_int_equal(v.tier, POLICY_TIER_CIRCUMVENTION);
    v = decide("http://unlisted.example:8080/", pupils, monday_10);
    assert_int_equal(v.action, POLICY_BLOCK);
    assert_non_null(strstr(reason, "8080"));
    v = decide("https://www.startpage.com/do/search?q=x", pupils, monday_10);
    assert_int_equal(v.action, POLICY_BLOCK);
    v = decide("https://www.google.co.uk/search?q=x", pupils, monday_10);
    assert_int_equal(v.action, POLICY_ALLOW);
    assert_int_equal(v.safe_search, POLICY_SS_GOOGLE);
    v = decide("https://www.bing.com/search?q=x", pupils, monday_10);
    assert_int_equal(v.safe_search, POLICY_SS_BING);
    v = decide("https://m.youtube.com/watch?v=x", pupils, monday_10);
    assert_int_equal(v.safe_search, POLICY_SS_YOUTUBE);
    assert_int_equal(v.youtube, POLICY_YOUTUBE_STRICT);
    v = decide("https://www.google.evil.example/", pupils, monday_10);
    assert_int_equal(v.safe_search, POLICY_SS_NONE);
    /* Staff: no enforcement; but staff's default is block, so use a listed allow. */
    v = decide("https://custom.example/", staff, monday_10);
    assert_int_equal(v.safe_search, POLICY_SS_NONE);
}

/* inspect on decrypts, except no-inspect categories and lists and pinned services. */
static void test_inspect(void **state)
{
    static const char more[] = "list exempt \"Health services\" {\n    health.example\n}\n"
                               "no-inspect exempt\n"
                               "group inspected {\n    default allow\n    inspect on\n"
                               "    no-sni block\n}\n";
    char text[sizeof(base_policy) + sizeof(more)], err[512];
    struct policy *saved = pol;
    struct policy_verdict v;
    int g;

    (void)state;
    v = decide("https://site.example/", pupils, monday_10);
    assert_false(v.inspect); /* inspect is off by default */
    assert_false(policy_no_sni_block(pol, pupils));
    assert_null(policy_inspecting_group(pol));

    snprintf(text, sizeof(text), "%s%s", base_policy, more);
    pol = load(text, err, sizeof(err));
    if (!pol)
        fail_msg("policy: %s", err);
    g = policy_group_find(pol, "inspected");
    assert_string_equal(policy_inspecting_group(pol), "inspected");
    assert_true(policy_no_sni_block(pol, g));
    assert_true(decide("https://site.example/", g, monday_10).inspect);
    assert_true(decide("https://bet.example/", g, monday_10).inspect); /* any category */
    assert_false(decide("https://www.health.example/", g, monday_10).inspect);
    assert_false(decide("https://fe2.update.microsoft.com/", g, monday_10).inspect);
    assert_false(decide("https://api.push.apple.com/", g, monday_10).inspect);
    assert_true(policy_pinned_host("ctldl.windowsupdate.com", 23));
    assert_false(policy_pinned_host("notwindowsupdate.com", 20));
    policy_free(pol);
    pol = saved;
}

/* HTTPS (CONNECT) goes to port 443 only unless connect-ports says otherwise. */
static void test_connect_ports(void **state)
{
    static const char more[] = "group open {\n    default allow\n    connect-ports any\n}\n"
                               "group some {\n    default allow\n    connect-ports 443 8443\n}\n";
    char text[sizeof(base_policy) + sizeof(more)], err[512];
    struct policy_verdict v;
    struct policy *saved = pol;

    (void)state;
    v = decide("https://custom.example:8443/", staff, monday_10);
    assert_int_equal(v.action, POLICY_BLOCK);
    assert_int_equal(v.tier, POLICY_TIER_CIRCUMVENTION);
    assert_string_equal(v.rule, "connect-ports 443 (the default)");
    assert_non_null(strstr(reason, "port 8443"));
    v = decide("http://custom.example:8443/", staff, monday_10);
    assert_int_equal(v.action, POLICY_ALLOW); /* plain HTTP: only `ports` applies */

    snprintf(text, sizeof(text), "%s%s", base_policy, more);
    pol = load(text, err, sizeof(err));
    assert_non_null(pol);
    v = decide("https://a.example:8443/", policy_group_find(pol, "open"), monday_10);
    assert_int_equal(v.action, POLICY_ALLOW);
    v = decide("https://a.example:8443/", policy_group_find(pol, "some"), monday_10);
    assert_int_equal(v.action, POLICY_ALLOW);
    v = decide("https://a.example:9443/", policy_group_find(pol, "some"), monday_10);
    assert_int_equal(v.action, POLICY_BLOCK);
    assert_non_null(strstr(v.rule, "connect-ports 443 8443"));
    policy_free(pol);
    pol = saved;
}

/* Each bad policy fails with "test.conf:LINE:" and a useful message. */
static void test_errors(void **state)
{
    static const struct {
        const char *text;
        const char *where;
        const char *says;
    } cases[] = {
        {"group a {\n    blok games\n}\n", "test.conf:2:", "unknown statement 'blok'"},
        {"group a {\n    block pornograhpy\n}\n", "test.conf:2:", "unknown category"},
        {"group a {\n    block adult\n}\n", "test.conf:2:", "'pornography'"},
        {"school \"unterminated\n", "test.conf:1:", "unterminated"},
        {"\n\ngroup a {\n    default allow\n", "test.conf:3:", "never closed"},
        {"schedule s {\n    mon-fri 10:00-09:00\n}\n", "test.conf:2:", "ends before"},
        {"schedule s {\n    someday 10:00-11:00\n}\n", "test.conf:2:", "bad days"},
        {"schedule s {\n    mon 25:00-26:00\n}\n", "test.conf:2:", "bad time range"},
        {"list l {\n    no-reason.example\n}\n", "test.conf:2:", "needs a reason"},
        {"list l \"r\" {\n    bad host.example\n}\n", "test.conf:2:", "list line"},
        {"list l \"r\" {\n    http://\n}\n", "test.conf:2:", "http://"},
        {"group a {\n    block games during nap\n}\n", "test.conf:2:", "schedule 'nap'"},
        {"group a {\n    allow iwf\n}\n", "test.conf:2:", "locked tier"},
        {"group a {\n    warn terrorism\n}\n", "test.conf:2:", "locked tier"},
        {"group a {\n}\ngroup a {\n}\n", "test.conf:3:", "defined twice"},
        {"# nothing\n", "test.conf:1:", "no group"},
        {"group a {\n    ports 0\n}\n", "test.conf:2:", "bad port"},
        {"group a {\n    safe-search maybe\n}\n", "test.conf:2:", "on or off"},
        {"}\n", "test.conf:1:", "without a block"},
        {"timezone Mars/Olympus\ngroup a {\n}\n", "test.conf:1:", "Mars/Olympus"},
        {"group a {\n    allow-list nope\n}\n", "test.conf:2:", "list 'nope'"},
        {"default-group z\ngroup a {\n}\n", "test.conf:1:", "group 'z'"},
        {"group a {\n    block site x.example\n}\n", "test.conf:2:", "reason"},
        {"group a {\n  default maybe\n}\n", "test.conf:2:", "allow, warn or block"},
        {"group a\x01 {\n}\n", "test.conf:1:", "control character"},
    };
    char err[512];

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        struct policy *p = load(cases[i].text, err, sizeof(err));
        if (p)
            fail_msg("case %zu loaded but should fail", i);
        if (strncmp(err, cases[i].where, strlen(cases[i].where)) != 0 ||
            !strstr(err, cases[i].says))
            fail_msg("case %zu: got '%s', want '%s ... %s'", i, err, cases[i].where, cases[i].says);
    }
}

static void test_demo_policy_loads(void **state)
{
    char err[512], path[4096];
    struct policy *p;

    (void)state;
    snprintf(path, sizeof(path), "%s/demo/policy.conf", HAVEN_SOURCE_DIR);
    p = policy_load(path, test_db(), err, sizeof(err));
    if (!p)
        fail_msg("demo policy: %s", err);
    static const char *const groups[] = {"primary", "secondary", "sixth-form", "staff", "guests"};
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(groups); i++)
        assert_true(policy_group_find(p, groups[i]) >= 0);
    assert_string_equal(policy_group_name(p, policy_default_group(p)), "secondary");
    policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parsed),
        cmocka_unit_test(test_tiers),
        cmocka_unit_test(test_most_restrictive),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_circumvention_and_safe_search),
        cmocka_unit_test(test_connect_ports),
        cmocka_unit_test(test_inspect),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_demo_policy_loads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
