/*
 * test_page.c -- proxy/page: what a student, a technician and Prometheus see.
 *
 * Every page renders with and without optional fields; hostile values come out
 * escaped in text and in attributes; the locked tier shows the IWF text and
 * nothing that identifies the page or invites a request; the PAC file is
 * exactly as expected and refuses bad names; the metrics obey the exposition
 * format (checked by a small parser below); a full buffer fails cleanly.
 */
#include "common/compat.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>

#include "common/buf.h"
#include "proxy/page.h"

#define CAP (256 * 1024)

#define JAN_2026 INT64_C(1767225600) /* 2026-01-01T00:00:00Z */
#define JUL_2026 INT64_C(1782907200) /* 2026-07-01T12:00:00Z */

static struct page_info sample(void)
{
    struct page_info info = {
        .school = "Hillside Academy",
        .url = "http://casino.example/play?game=1",
        .category_title = "Gambling",
        .category = "gambling",
        .reason = "casino.example is in the category Gambling, which is blocked for the "
                  "secondary group.",
        .group = "secondary",
        .user = "jsmith",
        .client_ip = "127.0.0.1",
        .time = JAN_2026,
        .ref = "HVN-7F3A-91C2",
        .continue_path = "/haven/continue?token=abc123",
        .back_url = "http://news.example/",
    };
    return info;
}

static void has(const char *page, const char *needle)
{
    if (!strstr(page, needle))
        fail_msg("expected \"%s\" in the page", needle);
}

static void hasnt(const char *page, const char *needle)
{
    if (strstr(page, needle))
        fail_msg("did not expect \"%s\" in the page", needle);
}

/* What every HTML page has: a document in British English with a title, a heading, no script. */
static void html_basics(const char *page)
{
    has(page, "<!DOCTYPE html>\n<html lang=\"en-GB\">");
    has(page, "<meta charset=\"utf-8\">");
    has(page, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    has(page, "<title>");
    has(page, "<h1>");
    has(page, "</html>\n");
    hasnt(page, "<script");
    hasnt(page, "src=");
    hasnt(page, "@import");
    hasnt(page, "url(");
}

/* Each <label for="x"> names an element with id="x". */
static void labels_match(const char *page)
{
    const char *p = page;
    char want[80];
    int n = 0;

    while ((p = strstr(p, "<label for=\"")) != NULL) {
        const char *id = p + strlen("<label for=\"");
        const char *end = strchr(id, '"');
        assert_non_null(end);
        snprintf(want, sizeof(want), "id=\"%.*s\"", (int)(end - id), id);
        has(page, want);
        p = end;
        n++;
    }
    (void)n;
}

static void test_page_block(void **state)
{
    struct page_info info = sample();
    struct buf b;

    (void)state;
    buf_init(&b, CAP);
    assert_int_equal(page_block(&b, &info), 0);
    assert_int_equal(strlen(b.p), b.len);
    html_basics(b.p);
    labels_match(b.p);
    has(b.p, "<title>This page is blocked \xe2\x80\x93 Hillside Academy</title>");
    has(b.p, "This page is blocked</span></h1>");
    has(b.p, "http://casino.example/play?game=1");
    has(b.p, "Gambling");
    has(b.p, "which is blocked for the secondary group.");
    has(b.p, "<dd>secondary</dd>");
    has(b.p, "<dd>jsmith</dd>");
    has(b.p, "<dd>127.0.0.1</dd>");
    has(b.p, "12:00am on Thursday 1 January 2026 (GMT)");
    has(b.p, "HVN-7F3A-91C2");
    has(b.p, "Quote this reference if you ask for help.");
    has(b.p, "<form method=\"post\" action=\"/haven/request\">");
    has(b.p, "<form method=\"post\" action=\"/haven/concern\">");
    has(b.p, "<input type=\"hidden\" name=\"ref\" value=\"HVN-7F3A-91C2\">");
    has(b.p, "<input type=\"hidden\" name=\"url\" value=\"http://casino.example/play?game=1\">");
    has(b.p, ">Why do you need this page?</label>");
    has(b.p, "name=\"reason\"");
    has(b.p, ">What worries you?</label>");
    has(b.p, "name=\"details\"");
    has(b.p, ">Request access</button>");
    has(b.p, ">Report a concern</button>");
    has(b.p, "href=\"https://www.ceop.police.uk/Safety-Centre/\"");
    has(b.p, ">Report abuse to CEOP</a>");
    has(b.p, "href=\"https://reportharmfulcontent.com/\"");
    has(b.p, "Hillside Academy\xe2\x80\x99s internet use is monitored.");

    /* The category name stands in for a missing title; optional facts just go. */
    info.category_title = "";
    info.user = NULL;
    info.school = NULL;
    info.time = JUL_2026;
    info.request_action = "/custom/request";
    buf_reset(&b);
    assert_int_equal(page_block(&b, &info), 0);
    has(b.p, "<dd>gambling</dd>");
    hasnt(b.p, "Signed in as");
    has(b.p, "Your school has blocked this page");
    has(b.p, "The school\xe2\x80\x99s internet use is monitored.");
    has(b.p, "1:00pm on Wednesday 1 July 2026 (BST)");
    has(b.p, "action=\"/custom/request\"");

    /* Everything empty still makes a page. */
    memset(&info, 0, sizeof(info));
    buf_reset(&b);
    assert_int_equal(page_block(&b, &info), 0);
    html_basics(b.p);
    has(b.p, "action=\"/haven/request\"");
    hasnt(b.p, "When</dt>");
    buf_cleanup(&b);
}

static void test_page_long_url(void **state)
{
    struct page_info info = sample();
    char url[5001];
    struct buf b;

    (void)state;
    memcpy(url, "http://long.example/", 20);
    memset(url + 20, 'a', sizeof(url) - 21);
    url[sizeof(url) - 1] = '\0';
    /* A multi-byte character astride the display cut must not be split. */
    memcpy(url + 399, "\xc3\xa9\xc3\xa9", 4);
    info.url = url;
    buf_init(&b, CAP);
    assert_int_equal(page_block(&b, &info), 0);
    has(b.p, "<dd class=\"url\">");
    has(b.p, "aaa\xe2\x80\xa6</dd>"); /* cut before the split character, then an ellipsis */
    has(b.p, url);                    /* the hidden field keeps the whole URL */
    buf_cleanup(&b);
}

static const char *const hostile_url = "http://x.example/\"><script>alert(1)</script>?a=1&b='2'";

static struct page_info hostile(void)
{
    struct page_info info = {
        .school = "<script>alert('school')</script>",
        .url = hostile_url,
        .category_title = "<img onerror=alert(1)>",
        .category = "cat\"egory",
        .reason = "because <b>bold</b> & \"quoted\"",
        .group = "\" onmouseover=\"alert(1)",
        .user = "' onfocus='alert(1)",
        .client_ip = "<ip>",
        .time = JAN_2026,
        .ref = "HVN-\"><script>",
        .request_action = "javascript:alert(1)",
        .concern_action = "\" onclick=\"x",
        .continue_path = "javascript:alert(2)",
        .back_url = "JavaScript:alert(3)",
    };
    return info;
}

static void no_hostile_markup(const char *page)
{
    hasnt(page, "<script");
    hasnt(page, "<img");
    hasnt(page, "<b>");
    hasnt(page, "<ip>");
    hasnt(page, "\" onmouseover=");
    hasnt(page, "' onfocus=");
    hasnt(page, "\" onclick=");
    hasnt(page, "javascript:");
    hasnt(page, "JavaScript:");
    hasnt(page, "'2'");
}

static void test_page_escaping(void **state)
{
    struct page_info info = hostile();
    struct buf b;

    (void)state;
    buf_init(&b, CAP);
    assert_int_equal(page_block(&b, &info), 0);
    no_hostile_markup(b.p);
    has(b.p, "&lt;script&gt;alert(&#39;school&#39;)&lt;/script&gt;");
    has(b.p, "because &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;");
    has(b.p, "&quot; onmouseover=&quot;alert(1)");
    has(b.p, "&#39; onfocus=&#39;alert(1)");
    /* The attribute value is the whole URL, escaped, and ends where it should. */
    has(b.p, "name=\"url\" value=\"http://x.example/&quot;&gt;&lt;script&gt;alert(1)&lt;/"
             "script&gt;?a=1&amp;b=&#39;2&#39;\">");
    has(b.p, "name=\"ref\" value=\"HVN-&quot;&gt;&lt;script&gt;\">");
    /* Unsafe actions fall back to the default paths. */
    has(b.p, "action=\"/haven/request\"");
    has(b.p, "action=\"/haven/concern\"");

    buf_reset(&b);
    assert_int_equal(page_warn(&b, &info), 0);
    no_hostile_markup(b.p);
    hasnt(b.p, "Continue to the page");
    has(b.p, "Back button");

    buf_reset(&b);
    assert_int_equal(page_confirm(&b, &info, PAGE_CONFIRM_CONCERN), 0);
    no_hostile_markup(b.p);

    buf_reset(&b);
    assert_int_equal(page_error(&b, &info, 502), 0);
    no_hostile_markup(b.p);

    info.locked = 1;
    buf_reset(&b);
    assert_int_equal(page_block(&b, &info), 0);
    no_hostile_markup(b.p);
    buf_cleanup(&b);
}

static const char iwf_text[] =
    "Access has been denied by your internet access provider because this page may contain "
    "indecent images of children as identified by the Internet Watch Foundation.";

static void locked_only(const char *page)
{
    html_basics(page);
    has(page, iwf_text);
    has(page, "HVN-7F3A-91C2");
    hasnt(page, "Gambling");
    hasnt(page, "gambling");
    hasnt(page, "casino.example");
    hasnt(page, "secondary");
    hasnt(page, "jsmith");
    hasnt(page, "Request access");
    hasnt(page, "<form");
    hasnt(page, "/haven/request");
    hasnt(page, "/haven/continue");
    hasnt(page, "Hillside");
}

static void test_page_locked(void **state)
{
    struct page_info info = sample();
    struct buf b;

    (void)state;
    info.locked = 1;
    buf_init(&b, CAP);
    assert_int_equal(page_block(&b, &info), 0);
    locked_only(b.p);
    buf_reset(&b);
    assert_int_equal(page_warn(&b, &info), 0);
    locked_only(b.p);
    buf_cleanup(&b);
}

static void test_page_warn(void **state)
{
    struct page_info info = sample();
    struct buf b;

    (void)state;
    buf_init(&b, CAP);
    assert_int_equal(page_warn(&b, &info), 0);
    html_basics(b.p);
    has(b.p, "Are you sure?</span></h1>");
    has(b.p, "This page is about <strong>Gambling</strong>.");
    has(b.p, "If you continue, your visit will be recorded");
    has(b.p, "href=\"/haven/continue?token=abc123\">Continue to the page</a>");
    has(b.p, "href=\"http://news.example/\">Go back</a>");
    has(b.p, "casino.example");
    has(b.p, "HVN-7F3A-91C2");
    has(b.p, "internet use is monitored");
    hasnt(b.p, "<form");

    info.back_url = "";
    info.category_title = NULL;
    info.category = NULL;
    buf_reset(&b);
    assert_int_equal(page_warn(&b, &info), 0);
    has(b.p, "Back button");
    hasnt(b.p, "This page is about");
    has(b.p, "Continue to the page");
    buf_cleanup(&b);
}

static void test_page_confirm(void **state)
{
    struct page_info info = sample();
    struct buf b;

    (void)state;
    buf_init(&b, CAP);
    assert_int_equal(page_confirm(&b, &info, PAGE_CONFIRM_REQUEST), 0);
    html_basics(b.p);
    has(b.p, "<title>Your request has been sent");
    has(b.p, "Your request has been sent</span></h1>");
    has(b.p, "HVN-7F3A-91C2");
    has(b.p, "A member of staff will look at your request.");
    has(b.p, "tell a trusted adult now");
    has(b.p, "0800&nbsp;1111");

    buf_reset(&b);
    assert_int_equal(page_confirm(&b, &info, PAGE_CONFIRM_CONCERN), 0);
    html_basics(b.p);
    has(b.p, "Thank you for telling us</span></h1>");
    has(b.p, "HVN-7F3A-91C2");
    has(b.p, "A member of staff will read what you wrote");
    has(b.p, "tell a trusted adult now");
    has(b.p, "Childline");
    has(b.p, "href=\"tel:08001111\"");
    buf_cleanup(&b);
}

static void test_page_error(void **state)
{
    static const struct {
        int status;
        const char *heading;
    } cases[] = {
        {400, "Your browser sent a request we could not understand"},
        {403, "This connection is not allowed"},
        {407, "You need to sign in"},
        {502, "We could not reach this site"},
        {503, "The school internet is busy right now"},
        {504, "This site took too long to answer"},
        {500, "Something went wrong"},
        {0, "Something went wrong"},
    };
    struct page_info info = sample();
    char want[128];
    struct buf b;
    size_t i;

    (void)state;
    info.reason = "could not find casino.example & gave up";
    buf_init(&b, CAP);
    for (i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        buf_reset(&b);
        assert_int_equal(page_error(&b, &info, cases[i].status), 0);
        html_basics(b.p);
        snprintf(want, sizeof(want), "%s</span></h1>", cases[i].heading);
        has(b.p, want);
        snprintf(want, sizeof(want), "<dd>%d</dd>", cases[i].status);
        has(b.p, want);
        has(b.p, "could not find casino.example &amp; gave up");
        has(b.p, "HVN-7F3A-91C2");
        hasnt(b.p, "<form");
    }
    /* With nothing known, the page still says what happened. */
    memset(&info, 0, sizeof(info));
    buf_reset(&b);
    assert_int_equal(page_error(&b, &info, 503), 0);
    has(b.p, "Wait a minute, then try again.");
    buf_cleanup(&b);
}

static void test_page_status(void **state)
{
    struct page_stats s = {
        .version = "0.1.0",
        .uptime = 90061, /* 1 day 1 hour 1 minute 1 second */
        .workers = 4,
        .connections = 17,
        .requests_total = 123456,
        .blocks_total = 789,
        .loaded_at = JAN_2026,
        .last_reload_ok = 0,
        .reload_msg = "policy.conf:12: unknown category \"<x>\"",
        .catdb_entries = 4242424,
        .school = "Hillside & Co",
    };
    struct buf b;

    (void)state;
    buf_init(&b, CAP);
    assert_int_equal(page_status(&b, &s), 0);
    html_basics(b.p);
    has(b.p, "<title>haven status \xe2\x80\x93 Hillside &amp; Co</title>");
    has(b.p, "<td>0.1.0</td>");
    has(b.p, "<td>1 day 1 hour 1 minute</td>");
    has(b.p, "<td>4</td>");
    has(b.p, "<td>17</td>");
    has(b.p, "<td>123456</td>");
    has(b.p, "<td>789</td>");
    has(b.p, "<td>4242424</td>");
    has(b.p, "12:00am on Thursday 1 January 2026 (GMT)");
    has(b.p, "failed, old policy kept");
    has(b.p, "unknown category &quot;&lt;x&gt;&quot;");

    s.uptime = 2 * 86400 + 2 * 3600 + 120;
    s.loaded_at = 0;
    s.last_reload_ok = -1;
    s.reload_msg = NULL;
    buf_reset(&b);
    assert_int_equal(page_status(&b, &s), 0);
    has(b.p, "<td>2 days 2 hours 2 minutes</td>");
    has(b.p, "<td>not loaded</td>");
    has(b.p, "<td>none since start</td>");
    buf_cleanup(&b);
}

static const char pac_expected[] =
    "// Proxy auto-configuration for haven. Generated; do not edit.\n"
    "function FindProxyForURL(url, host) {\n"
    "    if (isPlainHostName(host))\n"
    "        return \"DIRECT\";\n"
    "    if (host === \"school.lan\" || dnsDomainIs(host, \".school.lan\"))\n"
    "        return \"DIRECT\";\n"
    "    if (host === \"example.org\" || dnsDomainIs(host, \".example.org\"))\n"
    "        return \"DIRECT\";\n"
    "    if (/^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$/.test(host) &&\n"
    "        (isInNet(host, \"10.0.0.0\", \"255.0.0.0\") ||\n"
    "         isInNet(host, \"172.16.0.0\", \"255.240.0.0\") ||\n"
    "         isInNet(host, \"192.168.0.0\", \"255.255.0.0\") ||\n"
    "         isInNet(host, \"127.0.0.0\", \"255.0.0.0\")))\n"
    "        return \"DIRECT\";\n"
    "    if (host === \"::1\" || host === \"[::1]\")\n"
    "        return \"DIRECT\";\n"
    "    return \"PROXY haven.school.lan:3128\";\n"
    "}\n";

static void test_page_pac(void **state)
{
    static const char *const direct[] = {"school.lan", ".example.org"};
    static const char *const good_proxies[] = {"127.0.0.1:3128", "[::1]:8080", "a-b.c:1",
                                               "haven:65535"};
    char err[256];
    struct buf b;
    size_t i;

    (void)state;
    buf_init(&b, CAP);
    assert_int_equal(page_pac(&b, "haven.school.lan:3128", direct, 2, err, sizeof(err)), 0);
    assert_string_equal(b.p, pac_expected);
    assert_string_equal(err, "");

    for (i = 0; i < HAVEN_ARRAY_LEN(good_proxies); i++) {
        buf_reset(&b);
        if (page_pac(&b, good_proxies[i], NULL, 0, err, sizeof(err)) != 0)
            fail_msg("proxy %s refused: %s", good_proxies[i], err);
        has(b.p, good_proxies[i]);
    }
    buf_cleanup(&b);
}

static void test_page_pac_rejects(void **state)
{
    static const struct {
        const char *domain;
        const char *why;
    } bad_domains[] = {
        {"Example.com", "other than a-z"},
        {"evil.com\");alert(1);//", "other than a-z"},
        {"a\\b", "other than a-z"},
        {"a b", "other than a-z"},
        {"under_score.example", "other than a-z"},
        {"a..b", "empty label"},
        {"trailing.", "empty label"},
        {".", "is empty"},
        {"..x", "empty label"},
        {"", "is empty"},
        {"x\n.example", "other than a-z"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
         "longer than 63"},
    };
    static const char *const bad_proxies[] = {
        "haven",        "haven:",      "haven:0",   "haven:65536",
        "haven:12ab",   "[::1",        "[::1]",     "[]:3128",
        "ha\"ven:3128", "HAVEN:3128",  ":3128",     "[::1]x:3128",
        "[::g]:3128",   "haven:3128 ", "a..b:3128", "",
    };
    const char *one[1];
    char err[256];
    struct buf b;
    size_t i;

    (void)state;
    buf_init(&b, CAP);
    buf_append_str(&b, "prefix");
    for (i = 0; i < HAVEN_ARRAY_LEN(bad_domains); i++) {
        one[0] = bad_domains[i].domain;
        err[0] = '\0';
        if (page_pac(&b, "haven:3128", one, 1, err, sizeof(err)) != -1)
            fail_msg("domain \"%s\" accepted", bad_domains[i].domain);
        has(err, "direct domain");
        has(err, bad_domains[i].why);
        assert_int_equal(b.len, 6);
        assert_int_equal(b.overflow, 0);
    }
    for (i = 0; i < HAVEN_ARRAY_LEN(bad_proxies); i++) {
        err[0] = '\0';
        if (page_pac(&b, bad_proxies[i], NULL, 0, err, sizeof(err)) != -1)
            fail_msg("proxy \"%s\" accepted", bad_proxies[i]);
        has(err, "proxy address");
        assert_int_equal(b.len, 6);
    }
    /* A NULL proxy, a NULL err, a missing list or a NULL entry are refused without crashing. */
    assert_int_equal(page_pac(&b, NULL, NULL, 0, NULL, 0), -1);
    assert_int_equal(page_pac(&b, "haven:3128", NULL, 2, err, sizeof(err)), -1);
    has(err, "direct domains");
    one[0] = NULL;
    assert_int_equal(page_pac(&b, "haven:3128", one, 1, err, sizeof(err)), -1);
    has(err, "is empty");
    assert_int_equal(b.len, 6);
    assert_string_equal(b.p, "prefix");
    buf_cleanup(&b);
}

/* ---- a small checker for the Prometheus text format 0.0.4 ---- */

#define MAX_FAMILIES 32

struct family {
    char name[64];
    int help, type;
};

static struct family *family_get(struct family *f, int *n, const char *name, size_t len)
{
    int i;

    for (i = 0; i < *n; i++) {
        if (strlen(f[i].name) == len && memcmp(f[i].name, name, len) == 0)
            return &f[i];
    }
    assert_true(*n < MAX_FAMILIES);
    assert_true(len < sizeof(f[0].name));
    memcpy(f[*n].name, name, len);
    f[*n].name[len] = '\0';
    f[*n].help = f[*n].type = 0;
    return &f[(*n)++];
}

static size_t metric_name_len(const char *p)
{
    size_t i = 0;

    if (!(isalpha((unsigned char)p[0]) || p[0] == '_' || p[0] == ':'))
        return 0;
    while (isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == ':')
        i++;
    return i;
}

/* Fails the test if text is not valid exposition format; returns the number of samples. */
static int check_exposition(const char *text)
{
    struct family fams[MAX_FAMILIES];
    int nfam = 0, samples = 0;
    const char *line = text;

    assert_true(text[0] != '\0');
    assert_int_equal(text[strlen(text) - 1], '\n');
    while (*line) {
        const char *eol = strchr(line, '\n'), *p;
        size_t n;

        assert_non_null(eol);
        if (eol == line)
            fail_msg("empty line");
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            int is_help = line[2] == 'H';
            struct family *f;
            p = line + 7;
            n = metric_name_len(p);
            if (n == 0)
                fail_msg("bad name in: %.*s", (int)(eol - line), line);
            f = family_get(fams, &nfam, p, n);
            p += n;
            assert_int_equal(*p, ' ');
            p++;
            if (is_help) {
                assert_int_equal(f->help, 0);
                assert_true(p < eol);
                f->help = 1;
            } else {
                assert_int_equal(f->type, 0);
                if (!((eol - p == 7 && memcmp(p, "counter", 7) == 0) ||
                      (eol - p == 5 && memcmp(p, "gauge", 5) == 0)))
                    fail_msg("bad type in: %.*s", (int)(eol - line), line);
                f->type = 1;
            }
        } else {
            struct family *f;
            assert_true(line[0] != '#');
            p = line;
            n = metric_name_len(p);
            if (n == 0)
                fail_msg("bad sample: %.*s", (int)(eol - line), line);
            f = family_get(fams, &nfam, p, n);
            if (!f->help || !f->type)
                fail_msg("sample before HELP and TYPE: %.*s", (int)(eol - line), line);
            p += n;
            if (*p == '{') {
                p++;
                for (;;) {
                    n = metric_name_len(p);
                    assert_true(n > 0);
                    p += n;
                    assert_int_equal(*p++, '=');
                    assert_int_equal(*p++, '"');
                    while (*p != '"') {
                        assert_true(p < eol);
                        if (*p == '\\') {
                            p++;
                            if (*p != '\\' && *p != '"' && *p != 'n')
                                fail_msg("bad escape in: %.*s", (int)(eol - line), line);
                        }
                        p++;
                    }
                    p++;
                    if (*p == ',') {
                        p++;
                        continue;
                    }
                    assert_int_equal(*p++, '}');
                    break;
                }
            }
            assert_int_equal(*p++, ' ');
            assert_true(p < eol);
            while (p < eol) {
                if (!isdigit((unsigned char)*p))
                    fail_msg("bad value in: %.*s", (int)(eol - line), line);
                p++;
            }
            samples++;
        }
        line = eol + 1;
    }
    for (int i = 0; i < nfam; i++) {
        if (!fams[i].help || !fams[i].type)
            fail_msg("family %s lacks HELP or TYPE", fams[i].name);
    }
    return samples;
}

static void test_page_metrics(void **state)
{
    static const struct page_verdict_count verdicts[] = {
        {POLICY_ALLOW, "education", 1000}, {POLICY_WARN, "social-networking", 20},
        {POLICY_BLOCK, "gambling", 3},     {POLICY_BLOCK, "odd\"name\\with\nnewline", 1},
        {POLICY_ALLOW, NULL, 7},
    };
    struct page_metrics m = {
        .requests_total = 1031,
        .verdicts = verdicts,
        .n_verdicts = HAVEN_ARRAY_LEN(verdicts),
        .connections = 12,
        .upstream_errors = {1, 2, 3, 4, 11},
        .log_queue_drops = 5,
        .reloads_ok = 6,
        .reloads_failed = 7,
        .tunnels = 8,
        .upstream_reused = 9,
        .tunnels_spliced = 10,
        .rec_events = 16,
        .rec_rollups = 17,
        .rec_spooled = 18,
        .alerts = 20,
        .alerts_suppressed = 3,
        .alert_sent = 21,
        .alert_failed = 22,
    };
    struct buf b;

    (void)state;
    buf_init(&b, CAP);
    assert_int_equal(page_metrics(&b, &m), 0);
    /* + the records and alerts: 2 + 1 + 1 + 2 + 3 samples */
    assert_int_equal(check_exposition(b.p), 1 + 5 + 1 + 5 + 1 + 1 + 1 + 2 + 1 + 9);
    has(b.p, "# TYPE haven_requests_total counter\nhaven_requests_total 1031\n");
    has(b.p, "haven_verdicts_total{action=\"allow\",category=\"education\"} 1000\n");
    has(b.p, "haven_verdicts_total{action=\"warn\",category=\"social-networking\"} 20\n");
    has(b.p, "haven_verdicts_total{action=\"block\",category=\"gambling\"} 3\n");
    has(b.p, "haven_verdicts_total{action=\"block\",category=\"odd\\\"name\\\\with\\nnewline\"} "
             "1\n");
    has(b.p, "haven_verdicts_total{action=\"allow\",category=\"\"} 7\n");
    has(b.p, "# TYPE haven_connections gauge\nhaven_connections 12\n");
    has(b.p, "haven_upstream_errors_total{kind=\"connect\"} 1\n");
    has(b.p, "haven_upstream_errors_total{kind=\"dns\"} 2\n");
    has(b.p, "haven_upstream_errors_total{kind=\"timeout\"} 3\n");
    has(b.p, "haven_upstream_errors_total{kind=\"reset\"} 4\n");
    has(b.p, "haven_upstream_errors_total{kind=\"certificate\"} 11\n");
    has(b.p, "haven_upstream_reused_total 9\n");
    has(b.p, "haven_tunnels_spliced_total 10\n");
    has(b.p, "haven_log_queue_drops_total 5\n");
    has(b.p, "haven_reloads_total{result=\"ok\"} 6\n");
    has(b.p, "haven_reloads_total{result=\"failed\"} 7\n");
    has(b.p, "# TYPE haven_tunnels gauge\nhaven_tunnels 8\n");
    has(b.p, "haven_records_total{kind=\"event\"} 16\n");
    has(b.p, "haven_records_total{kind=\"rollup\"} 17\n");
    has(b.p, "haven_records_spooled_total 18\n");
    has(b.p, "haven_alerts_total{suppressed=\"no\"} 17\n");
    has(b.p, "haven_alerts_total{suppressed=\"yes\"} 3\n");
    has(b.p, "haven_alert_deliveries_total{result=\"sent\"} 21\n");
    has(b.p, "haven_alert_deliveries_total{result=\"failed\"} 22\n");

    /* No verdicts yet: the family is still announced. */
    memset(&m, 0, sizeof(m));
    buf_reset(&b);
    assert_int_equal(page_metrics(&b, &m), 0);
    assert_int_equal(check_exposition(b.p), 1 + 0 + 1 + 5 + 1 + 1 + 1 + 2 + 1 + 9);
    has(b.p, "# TYPE haven_verdicts_total counter\n");

    /* With HTTPS inspection: its four families too. */
    m.tls = 1;
    m.tls_inspected = 12;
    m.tls_leaf_hits = 13;
    m.tls_leaf_misses = 14;
    m.tls_mint_errors = 15;
    buf_reset(&b);
    assert_int_equal(page_metrics(&b, &m), 0);
    assert_int_equal(check_exposition(b.p), 1 + 0 + 1 + 5 + 1 + 1 + 4 + 1 + 2 + 1 + 9);
    has(b.p, "haven_tls_inspected_total 12\n");
    has(b.p, "haven_tls_leaf_cache_hits_total 13\n");
    has(b.p, "haven_tls_leaf_cache_misses_total 14\n");
    has(b.p, "haven_tls_mint_errors_total 15\n");
    buf_cleanup(&b);
}

/* Render one page kind; 0 or -1 from the page function. */
static int render(int kind, struct buf *b)
{
    static const char *const direct[] = {"school.lan"};
    static const struct page_verdict_count v[] = {{POLICY_BLOCK, "gambling", 3}};
    struct page_info info = sample();
    struct page_stats s = {.version = "0.1.0", .loaded_at = JAN_2026, .reload_msg = "ok"};
    struct page_metrics m = {.verdicts = v, .n_verdicts = 1};
    char err[128];

    switch (kind) {
    case 0:
        return page_block(b, &info);
    case 1:
        info.locked = 1;
        return page_block(b, &info);
    case 2:
        return page_warn(b, &info);
    case 3:
        return page_confirm(b, &info, PAGE_CONFIRM_REQUEST);
    case 4:
        return page_confirm(b, &info, PAGE_CONFIRM_CONCERN);
    case 5:
        return page_error(b, &info, 504);
    case 6:
        return page_pac(b, "haven:3128", direct, 1, err, sizeof(err));
    case 7:
        return page_status(b, &s);
    default:
        return page_metrics(b, &m);
    }
}

static void test_page_cap(void **state)
{
    struct buf b;
    int kind;

    (void)state;
    for (kind = 0; kind <= 8; kind++) {
        size_t full, cap;

        buf_init(&b, CAP);
        assert_int_equal(render(kind, &b), 0);
        full = b.len;
        buf_cleanup(&b);

        /* Every cap below what the page needs fails and leaves the prefix alone. */
        for (cap = 0; cap < full + 10; cap += cap < 64 ? 1 : 37) {
            int rc;
            buf_init(&b, cap + 3);
            assert_int_equal(buf_append_str(&b, "pre"), 0);
            rc = render(kind, &b);
            if (cap < full) {
                assert_int_equal(rc, -1);
                assert_int_equal(b.len, 3);
                assert_int_equal(b.overflow, 1);
                assert_memory_equal(b.p, "pre", 4);
            } else {
                assert_int_equal(rc, 0);
                assert_int_equal(b.len, full + 3);
                assert_int_equal(b.overflow, 0);
            }
            buf_cleanup(&b);
        }
        /* Exactly enough is enough. */
        buf_init(&b, full);
        assert_int_equal(render(kind, &b), 0);
        assert_int_equal(b.len, full);
        buf_cleanup(&b);
    }
}

static void test_page_reference_id(void **state)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    char a[PAGE_REF_SIZE], b[PAGE_REF_SIZE];
    int i, k;

    (void)state;
    for (k = 0; k < 200; k++) {
        page_reference_id(a);
        assert_int_equal(strlen(a), 13);
        assert_memory_equal(a, "HVN-", 4);
        assert_int_equal(a[8], '-');
        for (i = 4; i < 13; i++) {
            if (i == 8)
                continue;
            if (!strchr(alphabet, a[i]))
                fail_msg("unexpected character '%c' in %s", a[i], a);
        }
    }
    page_reference_id(b);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_block),        cmocka_unit_test(test_page_long_url),
        cmocka_unit_test(test_page_escaping),     cmocka_unit_test(test_page_locked),
        cmocka_unit_test(test_page_warn),         cmocka_unit_test(test_page_confirm),
        cmocka_unit_test(test_page_error),        cmocka_unit_test(test_page_status),
        cmocka_unit_test(test_page_pac),          cmocka_unit_test(test_page_pac_rejects),
        cmocka_unit_test(test_page_metrics),      cmocka_unit_test(test_page_cap),
        cmocka_unit_test(test_page_reference_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
