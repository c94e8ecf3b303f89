/*
 * test_url.c -- unit tests for http/url.c.
 *
 * Table-driven: each row is an input and the canonical URL it must become, or NULL when it
 * must be rejected (with a non-empty reason). Every accepted row is also checked to be a
 * fixed point: normalising the canonical text gives the same text.
 */
#include "common/compat.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* The source itself, to reach the fast and full parsers (the library's copy is not linked). */
#include "http/url.c"

struct test_url_case {
    const char *in;
    const char *want; /* NULL: must be rejected */
};

static const struct test_url_case test_url_cases[] = {
    /* case */
    {"http://example.com/", "http://example.com/"},
    {"http://example.com", "http://example.com/"},
    {"HTTP://EXAMPLE.COM/", "http://example.com/"},
    {"HtTpS://ExAmPlE.CoM/Path", "https://example.com/Path"},
    {"http://example.com/A/B?Q=R", "http://example.com/A/B?Q=R"},

    /* trailing dots and empty labels */
    {"http://example.com./", "http://example.com/"},
    {"http://example.com../", "http://example.com/"},
    {"http://./", NULL},
    {"http://.example.com/", NULL},
    {"http://a..b/", NULL},

    /* ports */
    {"http://example.com:80/", "http://example.com/"},
    {"https://example.com:443/", "https://example.com/"},
    {"http://example.com:443/", "http://example.com:443/"},
    {"https://example.com:80/", "https://example.com:80/"},
    {"ws://example.com:80/", "ws://example.com/"},
    {"wss://example.com:443/chat", "wss://example.com/chat"},
    {"ftp://example.com:21/pub", "ftp://example.com/pub"},
    {"http://example.com:8080", "http://example.com:8080/"},
    {"http://example.com:0080/", "http://example.com/"},
    {"http://example.com:/", "http://example.com/"},
    {"http://example.com:65535/", "http://example.com:65535/"},
    {"http://example.com:0/", NULL},
    {"http://example.com:65536/", NULL},
    {"http://example.com:99999999999999999999/", NULL},
    {"http://example.com:8a/", NULL},
    {"http://example.com:-1/", NULL},
    {"http://example.com: 80/", NULL},
    {"http://example.com:80:80/", NULL},

    /* userinfo */
    {"http://user@example.com/", "http://example.com/"},
    {"http://user:pass@example.com:8080/", "http://example.com:8080/"},
    {"http://evil.com@good.com/", "http://good.com/"},
    {"http://a@b@good.com/", "http://good.com/"},
    {"http://good.com\\@evil.com", "http://good.com/@evil.com"},
    {"http://good.com/@evil.com", "http://good.com/@evil.com"},
    {"http://good.com#@evil.com", "http://good.com/"},
    {"http://good.com?@evil.com", "http://good.com/?@evil.com"},
    {"http://pornhub.com:80@evil.com/", "http://evil.com/"},
    {"http://user@/", NULL},

    /* fragments */
    {"http://example.com/a#frag", "http://example.com/a"},
    {"http://example.com/a?b#frag?x", "http://example.com/a?b"},
    {"http://example.com#", "http://example.com/"},

    /* IDN */
    {"http://bücher.de/", "http://xn--bcher-kva.de/"},
    {"http://BÜCHER.DE/", "http://xn--bcher-kva.de/"},
    {"http://BüCHer.de/", "http://xn--bcher-kva.de/"},
    {"http://ｅｘａｍｐｌｅ．ｃｏｍ/", "http://example.com/"},
    {"http://ｗｗｗ。ＰＯＲＮＨＵＢ．ｃｏｍ/", "http://www.pornhub.com/"},
    {"http://example。com/", "http://example.com/"},
    {"http://ü。com/", "http://xn--tda.com/"},
    {"http://faß.de/", "http://xn--fa-hia.de/"},
    {"http://例え.テスト/", "http://xn--r8jz45g.xn--zckzah/"},
    {"http://пример.рф/", "http://xn--e1afmkfd.xn--p1ai/"},
    {"http://ex%C3%A4mple.com/", "http://xn--exmple-cua.com/"},
    {"http://a_b.bücher.de/", "http://a_b.xn--bcher-kva.de/"},
    {"http://bücher.de./", "http://xn--bcher-kva.de/"},
    {"http://１２７．０．０．１/", "http://127.0.0.1/"},
    {"http://porn\xc2\xadhub.com/", "http://pornhub.com/"}, /* soft hyphen maps to nothing */
    {"http://xn--ls8h.la/", "http://xn--ls8h.la/"},
    {"http://XN--BCHER-KVA.de/", "http://xn--bcher-kva.de/"},
    {"http://ex%E4mple.com/", NULL}, /* Latin-1, not UTF-8 */
    {"http://\xff.com/", NULL},
    {"http://💩.la/", NULL},                   /* IDNA2008 disallows emoji */
    {"http://a　b.com/", NULL},               /* U+3000 maps to a space */
    {"http://evil.com／good.com/", NULL},     /* U+FF0F maps to '/' */
    {"http://-ü.com/", NULL},                 /* libidn2 checks hyphens in U-labels */
    {"http://ü.-a-/", "http://xn--tda.-a-/"}, /* ASCII labels are not given to it */

    /* percent-escapes in the host */
    {"http://%65xample.com/", "http://example.com/"},
    {"http://www.goo%67le.com", "http://www.google.com/"},
    {"http://pornhub.com%2e/", "http://pornhub.com/"},
    {"http://pornhub%2Ecom/", "http://pornhub.com/"},
    {"http://%50%4F%52%4E%48%55%42.com/", "http://pornhub.com/"},
    {"http://a%2fb.com/", NULL},
    {"http://a%00b.com/", NULL},
    {"http://a%zzb.com/", NULL},
    {"http://a%2/", NULL},
    {"http://a%25b.com/", NULL},
    {"http://a%20b.com/", NULL},

    /* percent-escapes and escaping in the path */
    {"http://x/%7e%41%2f%3c/", "http://x/~A%2F%3C/"},
    {"http://x/a%2fb", "http://x/a%2Fb"},
    {"http://x/a b", "http://x/a%20b"},
    {"http://x/é", "http://x/%C3%A9"},
    {"http://x/%c3%a9", "http://x/%C3%A9"},
    {"http://x/a\"<>^`{|}", "http://x/a%22%3C%3E%5E%60%7B%7C%7D"},
    {"http://x/%25", "http://x/%25"},
    {"http://x/a;b=c,d:e@f!$&'()*+", "http://x/a;b=c,d:e@f!$&'()*+"},
    {"http://x/%zz", NULL},
    {"http://x/%4", NULL},
    {"http://x/a%", NULL},

    /* dot-segments */
    {"http://x/a/./b/../c", "http://x/a/c"},
    {"http://x/../../a", "http://x/a"},
    {"http://x/a/..", "http://x/"},
    {"http://x/a/b/..", "http://x/a/"},
    {"http://x/a/b/.", "http://x/a/b/"},
    {"http://x/%2e%2E/a/%2e/", "http://x/a/"},
    {"http://x/.%2e/a", "http://x/a"},
    {"http://x/a/..b/.c", "http://x/a/..b/.c"},
    {"http://x/a/.../b", "http://x/a/.../b"},

    /* duplicate slashes */
    {"http://x//a///b//", "http://x/a/b/"},
    {"http:///x/a", "http://x/a"},
    {"http://x/a/", "http://x/a/"},

    /* backslashes */
    {"http:\\\\x\\a\\b", "http://x/a/b"},
    {"http://x/a\\..\\b", "http://x/b"},
    {"http://x/?a\\b", "http://x/?a%5Cb"},

    /* IPv4 */
    {"http://0x7f.1/", "http://127.0.0.1/"},
    {"http://2130706433/", "http://127.0.0.1/"},
    {"http://017700000001/", "http://127.0.0.1/"},
    {"http://127.1/", "http://127.0.0.1/"},
    {"http://0177.0.0.1/", "http://127.0.0.1/"},
    {"http://0x7F000001/", "http://127.0.0.1/"},
    {"http://127.0.0.1./", "http://127.0.0.1/"},
    {"http://1.2.65535/", "http://1.2.255.255/"},
    {"http://4294967295/", "http://255.255.255.255/"},
    {"http://0x/", "http://0.0.0.0/"},
    {"http://0/", "http://0.0.0.0/"},
    {"http://%31%32%37.1/", "http://127.0.0.1/"},
    {"http://1.2.3.4x/", "http://1.2.3.4x/"}, /* last label not a number: a name */
    {"http://1.2.3.256/", NULL},
    {"http://0x1g.2/", NULL},
    {"http://1.2.3.4.5/", NULL},
    {"http://256.1.1.1/", NULL},
    {"http://1.2.65536/", NULL},
    {"http://4294967296/", NULL},
    {"http://08.0.0.1/", NULL},
    {"http://example.123/", NULL},
    {"http://foo.0x/", NULL},
    {"http://99999999999999999999999/", NULL},

    /* IPv6 */
    {"http://[::1]/", "http://[::1]/"},
    {"http://[0:0:0:0:0:0:0:1]/", "http://[::1]/"},
    {"http://[2001:DB8::A]:8080/", "http://[2001:db8::a]:8080/"},
    {"http://[2001:db8:0:0:1:0:0:1]/", "http://[2001:db8::1:0:0:1]/"},
    {"http://[2001:db8:0:1:1:1:1:1]/", "http://[2001:db8:0:1:1:1:1:1]/"},
    {"http://[1:0:0:1:0:0:0:1]/", "http://[1:0:0:1::1]/"},
    {"http://[::1:2]/", "http://[::1:2]/"},
    {"http://[::ffff:1.2.3.4]/", "http://[::ffff:1.2.3.4]/"},
    {"http://[::FFFF:0102:0304]/", "http://[::ffff:1.2.3.4]/"},
    {"http://[::1]:443/", "http://[::1]:443/"},
    {"https://[0000:0000::0001]:443/", "https://[::1]/"},
    {"http://[fe80::1%25eth0]/", NULL},
    {"http://[fe80::1%eth0]/", NULL},
    {"http://[::1/", NULL},
    {"http://[::1]x/", NULL},
    {"http://[1.2.3.4]/", NULL},
    {"http://[]/", NULL},
    {"http://[1:2:3:4:5:6:7:8:9]/", NULL},
    {"http://[00001::]/", NULL},
    {"http://::1/", NULL},

    /* bare hosts */
    {"example.com", "http://example.com/"},
    {"example.com/path", "http://example.com/path"},
    {"Example.COM:8080/x", "http://example.com:8080/x"},
    {"example.com:80", "http://example.com/"},
    {"example.com?q=1", "http://example.com/?q=1"},
    {"example.com.", "http://example.com/"},
    {"user@example.com/x", "http://example.com/x"},
    {"[::1]:8080", "http://[::1]:8080/"},
    {"127.1", "http://127.0.0.1/"},
    {"localhost:3000", "http://localhost:3000/"},
    {"/path/only", NULL},
    {"localhost:", NULL},

    /* query */
    {"http://x/?b=2&a=1", "http://x/?b=2&a=1"},
    {"http://x/?q=a b", "http://x/?q=a%20b"},
    {"http://x/?q=%zz%41", "http://x/?q=%zz%41"},
    {"http://x/?", "http://x/?"},
    {"http://x?a/b?c", "http://x/?a/b?c"},
    {"http://x/p?q=é", "http://x/p?q=%C3%A9"},

    /* evasion tricks */
    {"http://pornhub.com./", "http://pornhub.com/"},
    {"HTTP://PORNHUB.COM:80", "http://pornhub.com/"},
    {"http://user@pornhub.com", "http://pornhub.com/"},
    {"http://porn\thub.com/", NULL},
    {"http://pornhub.com/\n", NULL},
    {"http://pornhub\r\n.com/", NULL},
    {" http://pornhub.com/", NULL},
    {"http://porn hub.com/", NULL},
    {"http://pornhub.com\x7f/", NULL},
    {"http://pornhub.com*/", NULL},
    {"http://porn<hub.com/", NULL},

    /* schemes */
    {"http:example.com", "http://example.com/"},
    {"https:/example.com/a", "https://example.com/a"},
    {"javascript:alert(1)", NULL},
    {"JavaScript://%0aalert(1)", NULL},
    {"file:///etc/passwd", NULL},
    {"data:text/html,x", NULL},
    {"mailto:a@b.com", NULL},
    {"gopher://x/", NULL},
    {"about:blank", NULL},

    /* empty */
    {"", NULL},
    {"http://", NULL},
    {"http:", NULL},
    {"http://:80/", NULL},
    {"http://?x", NULL},
};

static void test_url_table(void **state)
{
    struct url *u = malloc(sizeof(*u));
    struct url *again = malloc(sizeof(*again));
    size_t i;
    int failures = 0;

    (void)state;
    assert_non_null(u);
    assert_non_null(again);
    for (i = 0; i < HAVEN_ARRAY_LEN(test_url_cases); i++) {
        const struct test_url_case *c = &test_url_cases[i];
        const char *why = NULL;
        int rc = url_normalize(c->in, strlen(c->in), u, &why);

        if (!c->want) {
            if (rc != -1 || !why || why[0] == '\0') {
                print_error("case %zu \"%s\": want failure, got \"%s\"\n", i, c->in, u->text);
                failures++;
            }
            continue;
        }
        if (rc != 0) {
            print_error("case %zu \"%s\": failed: %s\n", i, c->in, why ? why : "(no reason)");
            failures++;
            continue;
        }
        if (strcmp(u->text, c->want) != 0 || u->len != strlen(c->want)) {
            print_error("case %zu \"%s\": got \"%s\", want \"%s\"\n", i, c->in, u->text, c->want);
            failures++;
            continue;
        }
        why = NULL;
        if (url_normalize(u->text, u->len, again, &why) != 0 || strcmp(again->text, u->text) != 0) {
            print_error("case %zu \"%s\": not a fixed point: \"%s\" -> \"%s\" (%s)\n", i, c->in,
                        u->text, again->text, why ? why : "");
            failures++;
        }
    }
    print_message("%zu URL cases\n", HAVEN_ARRAY_LEN(test_url_cases));
    free(u);
    free(again);
    assert_int_equal(failures, 0);
}

struct test_host_case {
    const char *in;
    const char *want;
    enum url_host_type type;
};

static const struct test_host_case test_host_cases[] = {
    {"Example.COM", "example.com", URL_HOST_NAME},
    {"example.com.", "example.com", URL_HOST_NAME},
    {"bücher.de", "xn--bcher-kva.de", URL_HOST_NAME},
    {"ｅｘａｍｐｌｅ．ｃｏｍ", "example.com", URL_HOST_NAME},
    {"a_b.Example", "a_b.example", URL_HOST_NAME},
    {"%65xample.com", "example.com", URL_HOST_NAME},
    {"xn--ls8h.la", "xn--ls8h.la", URL_HOST_NAME},
    {"-dash-.example", "-dash-.example", URL_HOST_NAME},
    {"0x7f.1", "127.0.0.1", URL_HOST_IPV4},
    {"3232235777", "192.168.1.1", URL_HOST_IPV4},
    {"::1", "::1", URL_HOST_IPV6},
    {"[::1]", "::1", URL_HOST_IPV6},
    {"[2001:DB8::1]", "2001:db8::1", URL_HOST_IPV6},
    {"::FFFF:1.2.3.4", "::ffff:1.2.3.4", URL_HOST_IPV6},
    {"", NULL, URL_HOST_NAME},
    {".", NULL, URL_HOST_NAME},
    {"example.com:443", NULL, URL_HOST_NAME},
    {"exa mple.com", NULL, URL_HOST_NAME},
    {"exa\tmple.com", NULL, URL_HOST_NAME},
    {"example.com/", NULL, URL_HOST_NAME},
    {"1.2.3.256", NULL, URL_HOST_NAME},
    {"fe80::1%eth0", NULL, URL_HOST_NAME},
    {"[::1", NULL, URL_HOST_NAME},
    {"[example.com]", NULL, URL_HOST_NAME},
};

static void test_url_host_table(void **state)
{
    size_t i;
    int failures = 0;

    (void)state;
    for (i = 0; i < HAVEN_ARRAY_LEN(test_host_cases); i++) {
        const struct test_host_case *c = &test_host_cases[i];
        char out[URL_HOST_MAX + 1];
        enum url_host_type type = (enum url_host_type) - 1;
        const char *why = NULL;
        int n = url_normalize_host(c->in, strlen(c->in), out, &type, &why);

        if (!c->want) {
            if (n != -1 || !why || why[0] == '\0') {
                print_error("host %zu \"%s\": want failure\n", i, c->in);
                failures++;
            }
            continue;
        }
        if (n < 0) {
            print_error("host %zu \"%s\": failed: %s\n", i, c->in, why ? why : "(no reason)");
            failures++;
            continue;
        }
        if ((size_t)n != strlen(c->want) || strcmp(out, c->want) != 0 || type != c->type) {
            print_error("host %zu \"%s\": got \"%s\" type %d, want \"%s\" type %d\n", i, c->in, out,
                        (int)type, c->want, (int)c->type);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_url_host_type_optional(void **state)
{
    char out[URL_HOST_MAX + 1];
    const char *why = NULL;

    (void)state;
    assert_int_equal(url_normalize_host("Example.com", 11, out, NULL, &why), 11);
    assert_string_equal(out, "example.com");
    /* no NUL needed after the input */
    assert_int_equal(url_normalize_host("a.bcdef", 3, out, NULL, &why), 3);
    assert_string_equal(out, "a.b");
}

static struct url test_u;

static void test_url_offsets(void **state)
{
    const char *why = NULL;
    const char *in;

    (void)state;
    in = "HTTPS://User@Example.com:8443/a/b?x=1#f";
    assert_int_equal(url_normalize(in, strlen(in), &test_u, &why), 0);
    assert_string_equal(test_u.text, "https://example.com:8443/a/b?x=1");
    assert_int_equal(test_u.len, 32);
    assert_int_equal(test_u.scheme_len, 5);
    assert_int_equal(test_u.host_off, 8);
    assert_int_equal(test_u.host_len, 11);
    assert_int_equal(test_u.port, 8443);
    assert_int_equal(test_u.path_off, 24);
    assert_int_equal(test_u.path_len, 4);
    assert_int_equal(test_u.has_query, 1);
    assert_int_equal(test_u.query_off, 29);
    assert_int_equal(test_u.query_len, 3);
    assert_int_equal(test_u.host_type, URL_HOST_NAME);

    in = "http://[::1]/x";
    assert_int_equal(url_normalize(in, strlen(in), &test_u, &why), 0);
    assert_int_equal(test_u.scheme_len, 4);
    assert_int_equal(test_u.host_off, 8);
    assert_int_equal(test_u.host_len, 3);
    assert_memory_equal(test_u.text + test_u.host_off, "::1", 3);
    assert_int_equal(test_u.host_type, URL_HOST_IPV6);
    assert_int_equal(test_u.port, 80);
    assert_int_equal(test_u.path_off, 12);
    assert_int_equal(test_u.path_len, 2);
    assert_int_equal(test_u.has_query, 0);
    assert_int_equal(test_u.query_len, 0);

    in = "0x7f.1";
    assert_int_equal(url_normalize(in, strlen(in), &test_u, &why), 0);
    assert_string_equal(test_u.text, "http://127.0.0.1/");
    assert_int_equal(test_u.host_type, URL_HOST_IPV4);
    assert_int_equal(test_u.host_off, 7);
    assert_int_equal(test_u.host_len, 9);
    assert_int_equal(test_u.path_off, 16);
    assert_int_equal(test_u.path_len, 1);

    in = "http://x/?";
    assert_int_equal(url_normalize(in, strlen(in), &test_u, &why), 0);
    assert_int_equal(test_u.has_query, 1);
    assert_int_equal(test_u.query_len, 0);
    assert_int_equal(test_u.query_off, test_u.len);
    assert_int_equal(test_u.path_len, 1);

    in = "wss://chat.example:8443";
    assert_int_equal(url_normalize(in, strlen(in), &test_u, &why), 0);
    assert_int_equal(test_u.scheme_len, 3);
    assert_int_equal(test_u.port, 8443);
    assert_int_equal(test_u.host_off, 6);
    assert_int_equal(test_u.path_off, 23);

    in = "ftp://files.example/pub";
    assert_int_equal(url_normalize(in, strlen(in), &test_u, &why), 0);
    assert_int_equal(test_u.port, 21);
}

/* NUL bytes cannot sit in the table of C strings. */
static void test_url_nul_bytes(void **state)
{
    static const char host[] = "http://pornhub.com\0.evil.com/";
    static const char path[] = "http://pornhub.com/a\0b";
    static const char name[] = "pornhub.com\0.evil.com";
    char out[URL_HOST_MAX + 1];
    const char *why = NULL;

    (void)state;
    assert_int_equal(url_normalize(host, sizeof(host) - 1, &test_u, &why), -1);
    assert_string_equal(why, "control character in URL");
    why = NULL;
    assert_int_equal(url_normalize(path, sizeof(path) - 1, &test_u, &why), -1);
    assert_non_null(why);
    why = NULL;
    assert_int_equal(url_normalize_host(name, sizeof(name) - 1, out, NULL, &why), -1);
    assert_string_equal(why, "control character in host");
    /* the length given is what counts, not a NUL */
    assert_int_equal(url_normalize(path, 19, &test_u, &why), 0);
    assert_string_equal(test_u.text, "http://pornhub.com/");
}

/* Fill buf with n copies of c and a NUL. */
static void test_url_fill(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
}

static void test_url_limits(void **state)
{
    static char in[URL_MAX * 2];
    char host[URL_HOST_MAX + 1];
    const char *why = NULL;
    size_t n;

    (void)state;
    /* a 63-byte label is fine, 64 is not */
    memcpy(in, "http://", 7);
    test_url_fill(in + 7, 'a', 63);
    memcpy(in + 70, ".com/", 6);
    assert_int_equal(url_normalize(in, strlen(in), &test_u, &why), 0);
    test_url_fill(in + 7, 'a', 64);
    memcpy(in + 71, ".com/", 6);
    assert_int_equal(url_normalize(in, strlen(in), &test_u, &why), -1);
    assert_string_equal(why, "host label too long");

    /* a 253-byte host is fine, 254 is not (labels of 49 + dot) */
    for (n = 0; n < 253; n++)
        in[n] = (n % 50 == 49) ? '.' : 'a';
    in[n] = '\0';
    assert_int_equal(url_normalize_host(in, 253, host, NULL, &why), 253);
    in[253] = 'a';
    assert_int_equal(url_normalize_host(in, 254, host, NULL, &why), -1);
    assert_string_equal(why, "host too long");
    /* ... and a trailing dot does not count */
    in[253] = '.';
    assert_int_equal(url_normalize_host(in, 254, host, NULL, &why), 253);

    /* a very long host, percent-encoded or not, is rejected without overflow */
    memcpy(in, "http://", 7);
    for (n = 7; n + 3 <= URL_MAX; n += 3)
        memcpy(in + n, "%61", 3);
    assert_int_equal(url_normalize(in, n, &test_u, &why), -1);
    assert_string_equal(why, "host too long");
    test_url_fill(in + 7, 'b', URL_MAX - 7);
    assert_int_equal(url_normalize(in, URL_MAX, &test_u, &why), -1);
    assert_string_equal(why, "host too long");

    /* the input may be URL_MAX bytes, not one more */
    memcpy(in, "http://x/", 9);
    test_url_fill(in + 9, 'p', URL_MAX - 9);
    assert_int_equal(url_normalize(in, URL_MAX, &test_u, &why), 0);
    assert_int_equal(test_u.len, URL_MAX);
    assert_int_equal(test_u.path_len, URL_MAX - 8);
    test_url_fill(in + 9, 'p', URL_MAX - 8);
    assert_int_equal(url_normalize(in, URL_MAX + 1, &test_u, &why), -1);
    assert_string_equal(why, "URL too long");

    /* an input that fits but whose canonical form does not */
    test_url_fill(in + 9, ' ', 3000);
    assert_int_equal(url_normalize(in, 3009, &test_u, &why), -1);
    assert_string_equal(why, "URL too long");
    memcpy(in, "http://x/?", 10);
    test_url_fill(in + 10, '"', 3000);
    assert_int_equal(url_normalize(in, 3010, &test_u, &why), -1);
    assert_string_equal(why, "URL too long");

    /* long runs of dot-segments and slashes */
    memcpy(in, "http://x", 8);
    for (n = 8; n + 3 <= URL_MAX; n += 3)
        memcpy(in + n, "/..", 3);
    assert_int_equal(url_normalize(in, n, &test_u, &why), 0);
    assert_string_equal(test_u.text, "http://x/");
}

/* The one-pass fast path and the full parser agree on everything the fast path takes. */
static void test_url_fast_path(void **state)
{
    static const char *const hosts[] = {
        "example.com", "www.bbc.co.uk", "a_b.example",  "x",           "xn--bcher-kva.example",
        "Example.com", "1.2.3.4",       "example.com.", "example.123", "a..b",
        "-a.b",        "host.0x1f",     "e.com:8080",   "u@e.com"};
    static const char *const rests[] = {"",          "/",
                                        "/a/b",      "/a/b/",
                                        "?q=1",      "/s?q=a b",
                                        "/a//b",     "/a/./b",
                                        "/a/../b",   "/.well-known/x",
                                        "/%41",      "/a\\b",
                                        "/p#frag",   "/p?x=%zz",
                                        "/p?x=<y>",  "/~user/p-1_2.html",
                                        "/\xc3\xa9", "?",
                                        "/a?b?c",    "/a;b=c"};
    static const char *const schemes[] = {"http://", "https://", "HTTP://", "ftp://", ""};
    static struct url fast, full;
    char in[512];
    const char *why;
    int taken = 0;

    (void)state;
    for (size_t s = 0; s < HAVEN_ARRAY_LEN(schemes); s++) {
        for (size_t h = 0; h < HAVEN_ARRAY_LEN(hosts); h++) {
            for (size_t r = 0; r < HAVEN_ARRAY_LEN(rests); r++) {
                int n = snprintf(in, sizeof(in), "%s%s%s", schemes[s], hosts[h], rests[r]);
                if (!url_normalize_fast(in, (size_t)n, &fast))
                    continue;
                taken++;
                if (url_normalize_full(in, (size_t)n, &full, &why) != 0)
                    fail_msg("fast path took '%s', the full parser rejects it: %s", in, why);
                if (strcmp(fast.text, full.text) != 0 || fast.host_off != full.host_off ||
                    fast.host_len != full.host_len || fast.path_off != full.path_off ||
                    fast.path_len != full.path_len || fast.has_query != full.has_query ||
                    fast.query_off != full.query_off || fast.query_len != full.query_len ||
                    fast.port != full.port || fast.host_type != full.host_type)
                    fail_msg("'%s': fast '%s' differs from full '%s'", in, fast.text, full.text);
            }
        }
    }
    /* The common case must take the fast path, or it is not worth having. */
    assert_true(taken > 100);
    assert_true(url_normalize_fast("http://www.example.com/a/b?c=d", 30, &fast));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_table),
        cmocka_unit_test(test_url_host_table),
        cmocka_unit_test(test_url_host_type_optional),
        cmocka_unit_test(test_url_offsets),
        cmocka_unit_test(test_url_nul_bytes),
        cmocka_unit_test(test_url_limits),
        cmocka_unit_test(test_url_fast_path),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
