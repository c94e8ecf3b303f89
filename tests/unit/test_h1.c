/*
 * Unit tests: strict HTTP/1.1 heads (requests, responses), the chunked body scanner and the
 * header helpers. The request, response and chunked tables, and the scenario files under
 * tests/data/h1/ (format in its README.md), share one small expectation language:
 *
 *   "done method=GET form=origin body=length cl=5 ka=1 tail=5"   "again"   "400"   "error"
 *
 * The first word is the result (a number is H1_ERROR with that request status); each key=value
 * after it checks one field (see check_request and check_response); values use the escapes of
 * unescape(): \r \n \t \0 \s (space) \\ \xHH. Every table case is also parsed at every prefix
 * of its input, from an exactly sized copy (so ASan sees any read past the end), and must give
 * H1_AGAIN or the same answer as the whole input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <dirent.h>

#include "http/h1.h"

#define RAW(s) s, sizeof(s) - 1

struct req_case {
    const char *name;
    const char *raw;
    size_t len;
    const char *expect;
};

struct resp_case {
    const char *name;
    const char *method;
    const char *raw;
    size_t len;
    const char *expect;
};

/* Decode the escapes of the expectation language and scenario files into out; returns length. */
static size_t unescape(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '\\' && i + 1 < n) {
            char e = in[++i];
            if (e == 'r') {
                c = '\r';
            } else if (e == 'n') {
                c = '\n';
            } else if (e == 't') {
                c = '\t';
            } else if (e == '0') {
                c = '\0';
            } else if (e == 's') {
                c = ' ';
            } else if (e == '\\') {
                c = '\\';
            } else if (e == 'x' && i + 2 < n) {
                char hex[3] = {in[i + 1], in[i + 2], 0};
                c = (char)strtol(hex, NULL, 16);
                i += 2;
            } else {
                fail_msg("unknown escape \\%c", e);
            }
        }
        if (o >= cap)
            fail_msg("unescaped text longer than %zu bytes", cap);
        out[o++] = c;
    }
    return o;
}

/* One "key=value" word of an expectation; the value is unescaped into val. */
struct expect_word {
    char key[32];
    char val[512];
    size_t val_len;
};

/* Split an expectation into its result word and key=value words; returns the count. */
static int expect_split(const char *expect, char *result, size_t result_cap, struct expect_word *w,
                        int max)
{
    const char *p = expect;
    int n = 0;
    size_t k;

    k = strcspn(p, " ");
    if (k == 0 || k >= result_cap)
        fail_msg("bad expectation '%s'", expect);
    memcpy(result, p, k);
    result[k] = '\0';
    p += k;
    while (*p == ' ')
        p++;
    while (*p) {
        const char *eq = strchr(p, '=');
        size_t wl = strcspn(p, " ");
        if (!eq || eq > p + wl || (size_t)(eq - p) >= sizeof(w[n].key) || n >= max)
            fail_msg("bad expectation word in '%s'", expect);
        memcpy(w[n].key, p, (size_t)(eq - p));
        w[n].key[eq - p] = '\0';
        w[n].val_len = unescape(eq + 1, (size_t)(p + wl - eq - 1), w[n].val, sizeof(w[n].val));
        w[n].val[w[n].val_len] = '\0';
        n++;
        p += wl;
        while (*p == ' ')
            p++;
    }
    return n;
}

static void check_slice(const char *what, const char *name, struct slice got,
                        const struct expect_word *w)
{
    if (got.len != w->val_len || (got.len > 0 && memcmp(got.p, w->val, got.len) != 0))
        fail_msg("%s: %s is '%.*s', expected '%s'", name, what, (int)got.len, got.p ? got.p : "",
                 w->val);
}

static void check_int(const char *what, const char *name, long long got, const char *val)
{
    long long want = strtoll(val, NULL, 10);
    if (got != want)
        fail_msg("%s: %s is %lld, expected %lld", name, what, got, want);
}

static const char *const body_names[] = {"none", "length", "chunked", "close"};
static const char *const form_names[] = {"origin", "absolute", "authority", "asterisk"};

static void check_body(const char *name, enum h1_body body, const char *val)
{
    if (strcmp(body_names[body], val) != 0)
        fail_msg("%s: body is %s, expected %s", name, body_names[body], val);
}

/* Check the result of one parse against the first word; returns the expected result code. */
static int check_result(const char *name, int r, const char *result, int status, const char *error)
{
    int want;

    if (strcmp(result, "done") == 0)
        want = H1_DONE;
    else if (strcmp(result, "again") == 0)
        want = H1_AGAIN;
    else
        want = H1_ERROR;
    if (r != want)
        fail_msg("%s: result %d (%s), expected %s", name, r, error ? error : "-", result);
    if (r == H1_ERROR) {
        if (!error || !error[0])
            fail_msg("%s: error without a message", name);
        if (strcmp(result, "error") != 0 && status != strtol(result, NULL, 10))
            fail_msg("%s: status %d (%s), expected %s", name, status, error, result);
    }
    return want;
}

/* Check a parsed request against an expectation; len is the input length. */
static void check_request(const char *name, const char *expect, int r, const struct h1_request *req,
                          size_t len)
{
    char result[16];
    struct expect_word w[16];
    int n = expect_split(expect, result, sizeof(result), w, 16);
    size_t tail = 0;

    if (check_result(name, r, result, req->status, req->error) != H1_DONE)
        return;
    for (int i = 0; i < n; i++) {
        const char *k = w[i].key;
        if (strcmp(k, "method") == 0) {
            check_slice(k, name, req->method, &w[i]);
        } else if (strcmp(k, "target") == 0) {
            check_slice(k, name, req->target, &w[i]);
        } else if (strcmp(k, "authority") == 0) {
            check_slice(k, name, req->authority, &w[i]);
        } else if (strcmp(k, "form") == 0) {
            if (strcmp(form_names[req->target_form], w[i].val) != 0)
                fail_msg("%s: form %s, expected %s", name, form_names[req->target_form], w[i].val);
        } else if (strcmp(k, "minor") == 0) {
            check_int(k, name, req->minor, w[i].val);
        } else if (strcmp(k, "n") == 0) {
            check_int(k, name, req->nheaders, w[i].val);
        } else if (strcmp(k, "body") == 0) {
            check_body(name, req->body, w[i].val);
        } else if (strcmp(k, "cl") == 0) {
            if (req->content_length != strtoull(w[i].val, NULL, 10))
                fail_msg("%s: content_length %llu, expected %s", name,
                         (unsigned long long)req->content_length, w[i].val);
        } else if (strcmp(k, "ka") == 0) {
            check_int(k, name, req->keep_alive, w[i].val);
        } else if (strcmp(k, "expect") == 0) {
            check_int(k, name, req->expect_continue, w[i].val);
        } else if (strcmp(k, "host") == 0) {
            if (strcmp(w[i].val, "-") == 0) {
                if (req->has_host || req->host.len)
                    fail_msg("%s: has a Host, expected none", name);
            } else {
                assert_int_equal(req->has_host, 1);
                check_slice(k, name, req->host, &w[i]);
            }
        } else if (strcmp(k, "upgrade") == 0) {
            check_slice(k, name, req->upgrade, &w[i]);
        } else if (strcmp(k, "conn") == 0) {
            check_slice(k, name, req->connection, &w[i]);
        } else if (strcmp(k, "pauth") == 0) {
            if (strcmp(w[i].val, "-") == 0) {
                assert_int_equal(req->has_proxy_authorization, 0);
            } else {
                assert_int_equal(req->has_proxy_authorization, 1);
                check_slice(k, name, req->proxy_authorization, &w[i]);
            }
        } else if (k[0] == 'v' && k[1] >= '0' && k[1] <= '9') {
            int idx = (int)strtol(k + 1, NULL, 10);
            if (idx >= req->nheaders)
                fail_msg("%s: no header %d", name, idx);
            check_slice(k, name, req->headers[idx].value, &w[i]);
        } else if (strcmp(k, "tail") == 0) {
            tail = strtoul(w[i].val, NULL, 10);
        } else {
            fail_msg("%s: unknown expectation key '%s'", name, k);
        }
    }
    if (req->head_len != len - tail)
        fail_msg("%s: head_len %zu, expected %zu", name, req->head_len, len - tail);
}

static void check_response(const char *name, const char *expect, int r,
                           const struct h1_response *resp, size_t len)
{
    char result[16];
    struct expect_word w[16];
    int n = expect_split(expect, result, sizeof(result), w, 16);
    size_t tail = 0;

    if (check_result(name, r, result, 0, resp->error) != H1_DONE)
        return;
    for (int i = 0; i < n; i++) {
        const char *k = w[i].key;
        if (strcmp(k, "status") == 0) {
            check_int(k, name, resp->status, w[i].val);
        } else if (strcmp(k, "reason") == 0) {
            check_slice(k, name, resp->reason, &w[i]);
        } else if (strcmp(k, "minor") == 0) {
            check_int(k, name, resp->minor, w[i].val);
        } else if (strcmp(k, "n") == 0) {
            check_int(k, name, resp->nheaders, w[i].val);
        } else if (strcmp(k, "body") == 0) {
            check_body(name, resp->body, w[i].val);
        } else if (strcmp(k, "cl") == 0) {
            if (resp->content_length != strtoull(w[i].val, NULL, 10))
                fail_msg("%s: content_length %llu, expected %s", name,
                         (unsigned long long)resp->content_length, w[i].val);
        } else if (strcmp(k, "ka") == 0) {
            check_int(k, name, resp->keep_alive, w[i].val);
        } else if (strcmp(k, "conn") == 0) {
            check_slice(k, name, resp->connection, &w[i]);
        } else if (strcmp(k, "tail") == 0) {
            tail = strtoul(w[i].val, NULL, 10);
        } else {
            fail_msg("%s: unknown expectation key '%s'", name, k);
        }
    }
    if (resp->head_len != len - tail)
        fail_msg("%s: head_len %zu, expected %zu", name, resp->head_len, len - tail);
}

/* Offset of a slice in its buffer, or -1 for an empty slice (whose pointer does not matter). */
static long long off(struct slice s, const char *buf)
{
    if (s.len == 0)
        return -1;
    return (long long)(s.p - buf);
}

static int slice_in(struct slice s, const char *buf, size_t len)
{
    return s.len == 0 || (s.p >= buf && s.p + s.len <= buf + len);
}

/* Two parses of the same bytes (in buffers a and b) gave the same request. */
static void same_request(const char *name, size_t k, const struct h1_request *x, const char *a,
                         const struct h1_request *y, const char *b)
{
    int same = x->head_len == y->head_len && x->nheaders == y->nheaders && x->minor == y->minor &&
               x->body == y->body && x->content_length == y->content_length &&
               x->keep_alive == y->keep_alive && x->expect_continue == y->expect_continue &&
               x->has_host == y->has_host && x->target_form == y->target_form &&
               x->has_proxy_authorization == y->has_proxy_authorization &&
               off(x->method, a) == off(y->method, b) && x->method.len == y->method.len &&
               off(x->target, a) == off(y->target, b) && x->target.len == y->target.len &&
               off(x->authority, a) == off(y->authority, b) &&
               x->authority.len == y->authority.len && off(x->host, a) == off(y->host, b) &&
               x->host.len == y->host.len && x->upgrade.len == y->upgrade.len &&
               x->connection.len == y->connection.len &&
               x->proxy_authorization.len == y->proxy_authorization.len;

    for (int i = 0; same && i < x->nheaders; i++) {
        same = off(x->headers[i].name, a) == off(y->headers[i].name, b) &&
               x->headers[i].name.len == y->headers[i].name.len &&
               off(x->headers[i].value, a) == off(y->headers[i].value, b) &&
               x->headers[i].value.len == y->headers[i].value.len;
    }
    if (!same)
        fail_msg("%s: prefix of %zu bytes parses differently", name, k);
}

static void same_response(const char *name, size_t k, const struct h1_response *x, const char *a,
                          const struct h1_response *y, const char *b)
{
    int same = x->head_len == y->head_len && x->nheaders == y->nheaders && x->minor == y->minor &&
               x->body == y->body && x->status == y->status &&
               x->content_length == y->content_length && x->keep_alive == y->keep_alive &&
               off(x->reason, a) == off(y->reason, b) && x->reason.len == y->reason.len;

    for (int i = 0; same && i < x->nheaders; i++) {
        same = off(x->headers[i].name, a) == off(y->headers[i].name, b) &&
               off(x->headers[i].value, a) == off(y->headers[i].value, b) &&
               x->headers[i].value.len == y->headers[i].value.len;
    }
    if (!same)
        fail_msg("%s: prefix of %zu bytes parses differently", name, k);
}

static void check_request_slices(const char *name, const struct h1_request *req, const char *buf,
                                 size_t len)
{
    int ok = req->head_len <= len && slice_in(req->method, buf, len) &&
             slice_in(req->target, buf, len) && slice_in(req->authority, buf, len) &&
             slice_in(req->host, buf, req->head_len) && slice_in(req->upgrade, buf, len) &&
             slice_in(req->connection, buf, len) && slice_in(req->proxy_authorization, buf, len);

    for (int i = 0; ok && i < req->nheaders; i++) {
        ok = slice_in(req->headers[i].name, buf, req->head_len) &&
             slice_in(req->headers[i].value, buf, req->head_len) && req->headers[i].name.len > 0;
    }
    if (!ok)
        fail_msg("%s: a slice lies outside the head", name);
}

/* Parse raw, check it, then check every prefix from an exactly sized copy. */
static void run_request(const char *name, const char *raw, size_t len, const char *expect,
                        const struct h1_limits *lim)
{
    static struct h1_request whole, part;
    int r = h1_parse_request(raw, len, lim, &whole);

    check_request(name, expect, r, &whole, len);
    if (r == H1_DONE)
        check_request_slices(name, &whole, raw, len);
    for (size_t k = 0; k < len; k++) {
        char *copy = malloc(k ? k : 1);
        int rk;
        assert_non_null(copy);
        memcpy(copy, raw, k);
        rk = h1_parse_request(copy, k, lim, &part);
        if (rk == H1_DONE) {
            if (r != H1_DONE || k < whole.head_len)
                fail_msg("%s: prefix of %zu bytes is complete", name, k);
            same_request(name, k, &whole, raw, &part, copy);
        } else if (rk == H1_ERROR) {
            if (r != H1_ERROR || part.status != whole.status ||
                strcmp(part.error, whole.error) != 0)
                fail_msg("%s: prefix of %zu bytes fails (%s) where the whole gives %d", name, k,
                         part.error, r);
        } else if (r == H1_DONE && k >= whole.head_len) {
            fail_msg("%s: prefix of %zu bytes, head included, asks for more", name, k);
        }
        free(copy);
    }
}

static void run_response(const char *name, const char *method, const char *raw, size_t len,
                         const char *expect)
{
    static struct h1_response whole, part;
    struct slice m = slice_cstr(method);
    int r = h1_parse_response(raw, len, NULL, m, &whole);

    check_response(name, expect, r, &whole, len);
    for (size_t k = 0; k < len; k++) {
        char *copy = malloc(k ? k : 1);
        int rk;
        assert_non_null(copy);
        memcpy(copy, raw, k);
        rk = h1_parse_response(copy, k, NULL, m, &part);
        if (rk == H1_DONE) {
            if (r != H1_DONE || k < whole.head_len)
                fail_msg("%s: prefix of %zu bytes is complete", name, k);
            same_response(name, k, &whole, raw, &part, copy);
        } else if (rk == H1_ERROR) {
            if (r != H1_ERROR || strcmp(part.error, whole.error) != 0)
                fail_msg("%s: prefix of %zu bytes fails (%s)", name, k, part.error);
        } else if (r == H1_DONE && k >= whole.head_len) {
            fail_msg("%s: prefix of %zu bytes, head included, asks for more", name, k);
        }
        free(copy);
    }
}

#define H "Host: example.com\r\n"

static const struct req_case req_cases[] = {
    /* Well-formed requests. */
    {"simple GET", RAW("GET / HTTP/1.1\r\n" H "\r\n"),
     "done method=GET target=/ form=origin minor=1 n=1 body=none cl=0 ka=1 expect=0 "
     "host=example.com upgrade= pauth=-"},
    {"HTTP/1.0 without Host", RAW("GET /x HTTP/1.0\r\n\r\n"),
     "done minor=0 ka=0 host=- n=0 target=/x"},
    {"HTTP/1.0 keep-alive", RAW("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
     "done minor=0 ka=1 conn=Keep-Alive"},
    {"HTTP/1.0 keep-alive and close",
     RAW("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), "done ka=0"},
    {"HTTP/1.1 close", RAW("GET / HTTP/1.1\r\n" H "Connection: close\r\n\r\n"), "done ka=0"},
    {"HTTP/1.1 close in a list", RAW("GET / HTTP/1.1\r\n" H "Connection: x-foo ,CLOSE\r\n\r\n"),
     "done ka=0"},
    {"absolute-form", RAW("GET http://example.com/a?b HTTP/1.1\r\n" H "\r\n"),
     "done form=absolute authority=example.com target=http://example.com/a?b"},
    {"absolute-form with port, no path",
     RAW("GET http://example.com:8080 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"),
     "done form=absolute authority=example.com:8080 host=example.com:8080"},
    {"absolute-form query after authority", RAW("GET http://a.test?x=1 HTTP/1.1\r\n" H "\r\n"),
     "done form=absolute authority=a.test"},
    {"absolute-form upper-case scheme", RAW("GET HTTPS://A.TEST/ HTTP/1.1\r\n" H "\r\n"),
     "done form=absolute authority=A.TEST"},
    {"absolute-form with userinfo", RAW("GET http://u:p@a.test/ HTTP/1.1\r\n" H "\r\n"),
     "done form=absolute authority=u:p@a.test"},
    {"CONNECT authority-form",
     RAW("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
     "done method=CONNECT form=authority authority=example.com:443 body=none"},
    {"CONNECT IPv6", RAW("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"),
     "done form=authority authority=[::1]:443 host=[::1]:443"},
    {"CONNECT IPv4", RAW("CONNECT 127.0.0.1:8443 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
     "done form=authority"},
    {"CONNECT with Content-Length 0",
     RAW("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n"),
     "done form=authority body=length cl=0"},
    {"OPTIONS *", RAW("OPTIONS * HTTP/1.1\r\n" H "\r\n"), "done form=asterisk target=*"},
    {"POST with Content-Length", RAW("POST /f HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\nhello"),
     "done method=POST body=length cl=5 tail=5"},
    {"POST chunked",
     RAW("POST /f HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
     "done body=chunked cl=0 tail=15"},
    {"chunked in capitals", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: CHUNKED\r\n\r\n"),
     "done body=chunked"},
    {"chunked with OWS", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: \t chunked \t\r\n\r\n"),
     "done body=chunked v1=chunked"},
    {"Content-Length 0", RAW("POST / HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n"),
     "done body=length cl=0"},
    {"Content-Length leading zeros", RAW("POST / HTTP/1.1\r\n" H "Content-Length: 007\r\n\r\n"),
     "done body=length cl=7"},
    {"Content-Length 2^62",
     RAW("POST / HTTP/1.1\r\n" H "Content-Length: 4611686018427387904\r\n\r\n"),
     "done cl=4611686018427387904"},
    {"Expect 100-continue",
     RAW("PUT / HTTP/1.1\r\n" H "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\n"),
     "done expect=1"},
    {"Expect in HTTP/1.0 ignored", RAW("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"),
     "done expect=0"},
    {"other Expect", RAW("PUT / HTTP/1.1\r\n" H "Expect: something\r\n\r\n"), "done expect=0"},
    {"Upgrade with Connection upgrade",
     RAW("GET /ws HTTP/1.1\r\n" H "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
     "done upgrade=websocket conn=Upgrade"},
    {"Upgrade without Connection upgrade",
     RAW("GET /ws HTTP/1.1\r\n" H "Upgrade: websocket\r\n\r\n"), "done upgrade="},
    {"Proxy-Authorization",
     RAW("GET http://a.test/ HTTP/1.1\r\n" H "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n"),
     "done pauth=Basic\\sdXNlcjpwYXNz"},
    {"empty lines before the request line", RAW("\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n"),
     "done method=GET"},
    {"obs-text in a value", RAW("GET / HTTP/1.1\r\n" H "X-A: caf\xc3\xa9 \x80\xff\r\n\r\n"),
     "done v1=caf\\xc3\\xa9\\s\\x80\\xff"},
    {"tab inside a value", RAW("GET / HTTP/1.1\r\n" H "X-A: a\tb\r\n\r\n"), "done v1=a\\tb"},
    {"empty value", RAW("GET / HTTP/1.1\r\n" H "X-Empty:\r\n\r\n"), "done n=2 v1="},
    {"value of only spaces", RAW("GET / HTTP/1.1\r\n" H "X-Empty:   \r\n\r\n"), "done v1="},
    {"value trimmed", RAW("GET / HTTP/1.1\r\n" H "X-A:  a b  \r\n\r\n"), "done v1=a\\sb"},
    {"asterisk with M-SEARCH", RAW("M-SEARCH * HTTP/1.1\r\n" H "\r\n"), "400"},
    {"extension method origin-form", RAW("PROPFIND /d HTTP/1.1\r\n" H "\r\n"),
     "done method=PROPFIND"},
    {"empty Host", RAW("GET / HTTP/1.1\r\nHost:\r\n\r\n"), "done host="},
    {"Host with port", RAW("GET / HTTP/1.1\r\nHost: a.test:8080\r\n\r\n"), "done host=a.test:8080"},
    {"escapes in target", RAW("GET /a%20b?x=1&y=%2F#f HTTP/1.1\r\n" H "\r\n"),
     "done target=/a%20b?x=1&y=%2F#f"},
    {"pipelined request", RAW("GET / HTTP/1.1\r\n" H "\r\nGET /2 HTTP/1.1\r\n" H "\r\n"),
     "done tail=38"},
    {"Transfer_Encoding elsewhere is fine",
     RAW("GET / HTTP/1.1\r\n" H "X-Transfer_Encoding: x\r\n\r\n"), "done body=none"},
    {"lower-case header names", RAW("POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\n"),
     "done host=a cl=3 body=length"},

    /* Incomplete input. */
    {"nothing yet", RAW(""), "again"},
    {"a CR", RAW("\r"), "again"},
    {"part of a method", RAW("GE"), "again"},
    {"request line only", RAW("GET / HTTP/1.1\r\n"), "again"},
    {"no final CRLF", RAW("GET / HTTP/1.1\r\n" H), "again"},
    {"final CR only", RAW("GET / HTTP/1.1\r\n" H "\r"), "again"},

    /* Smuggling: CL.TE, TE.CL, TE.TE. */
    {"CL.TE",
     RAW("POST / HTTP/1.1\r\n" H "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"), "400"},
    {"TE.CL",
     RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n"), "400"},
    {"CL with unknown TE",
     RAW("POST / HTTP/1.1\r\n" H "Content-Length: 6\r\nTransfer-Encoding: xchunked\r\n\r\n"),
     "400"},
    {"xchunked", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: xchunked\r\n\r\n"), "501"},
    {"chunkedx", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunkedx\r\n\r\n"), "501"},
    {"identity", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n"), "501"},
    {"chunked, identity",
     RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, identity\r\n\r\n"), "400"},
    {"gzip, chunked", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n"),
     "501"},
    {"chunked, chunked", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n"),
     "400"},
    {"TE in two fields, chunked twice",
     RAW("POST / HTTP/1.1\r\n" H
         "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
     "400"},
    {"TE in two fields, identity last",
     RAW("POST / HTTP/1.1\r\n" H
         "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"),
     "400"},
    {"TE in two fields, gzip then chunked",
     RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
     "501"},
    {"space before colon", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding : chunked\r\n\r\n"),
     "400"},
    {"tab before colon", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding\t: chunked\r\n\r\n"),
     "400"},
    {"leading space on the first field",
     RAW("POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n" H "\r\n"), "400"},
    {"obs-fold", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n chunked\r\n\r\n"), "400"},
    {"obs-fold with tab", RAW("GET / HTTP/1.1\r\n" H "X-A: a\r\n\tb\r\n\r\n"), "400"},
    {"vertical tab before chunked",
     RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: \x0b"
         "chunked\r\n\r\n"),
     "400"},
    {"form feed after chunked",
     RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\x0c\r\n\r\n"), "400"},
    {"chunked with parameters",
     RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;q=1\r\n\r\n"), "400"},
    {"empty TE", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n\r\n"), "400"},
    {"TE with empty element", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked,\r\n\r\n"),
     "400"},
    {"TE of a comma", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: ,\r\n\r\n"), "400"},
    {"TE quoted", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: \"chunked\"\r\n\r\n"), "400"},
    {"TE chunked then junk", RAW("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked x\r\n\r\n"),
     "400"},
    {"TE in HTTP/1.0", RAW("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), "400"},
    {"Transfer_Encoding", RAW("POST / HTTP/1.1\r\n" H "Transfer_Encoding: chunked\r\n\r\n"), "400"},
    {"Content_Length", RAW("POST / HTTP/1.1\r\n" H "content_length: 5\r\n\r\n"), "400"},
    {"duplicate Content-Length, same value",
     RAW("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n"), "400"},
    {"duplicate Content-Length, different values",
     RAW("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), "400"},
    {"Content-Length list", RAW("POST / HTTP/1.1\r\n" H "Content-Length: 5, 5\r\n\r\n"), "400"},
    {"Content-Length +5", RAW("POST / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\n"), "400"},
    {"Content-Length -1", RAW("POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n"), "400"},
    {"Content-Length 5 5", RAW("POST / HTTP/1.1\r\n" H "Content-Length:  5 5\r\n\r\n"), "400"},
    {"Content-Length hex", RAW("POST / HTTP/1.1\r\n" H "Content-Length: 0x10\r\n\r\n"), "400"},
    {"Content-Length empty", RAW("POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n"), "400"},
    {"Content-Length decimal point", RAW("POST / HTTP/1.1\r\n" H "Content-Length: 5.0\r\n\r\n"),
     "400"},
    {"Content-Length 2^62 + 1",
     RAW("POST / HTTP/1.1\r\n" H "Content-Length: 4611686018427387905\r\n\r\n"), "400"},
    {"Content-Length overflows 64 bits",
     RAW("POST / HTTP/1.1\r\n" H "Content-Length: 184467440737095516160\r\n\r\n"), "400"},
    {"Content-Length with NUL", RAW("POST / HTTP/1.1\r\n" H "Content-Length: 5\0\r\n\r\n"), "400"},

    /* Bytes that do not belong in a head. */
    {"NUL in target", RAW("GET /a\0b HTTP/1.1\r\n" H "\r\n"), "400"},
    {"NUL in method", RAW("G\0T / HTTP/1.1\r\n" H "\r\n"), "400"},
    {"NUL in header name", RAW("GET / HTTP/1.1\r\n" H "X-\0A: b\r\n\r\n"), "400"},
    {"NUL in header value", RAW("GET / HTTP/1.1\r\n" H "X-A: a\0b\r\n\r\n"), "400"},
    {"bare CR in a value", RAW("GET / HTTP/1.1\r\n" H "X-A: a\rb\r\n\r\n"), "400"},
    {"bare CR ending the request line", RAW("GET / HTTP/1.1\r\r\n" H "\r\n"), "400"},
    {"bare CR as line end", RAW("GET / HTTP/1.1\r" H "\r\n"), "400"},
    {"bare LF ending the request line", RAW("GET / HTTP/1.1\n" H "\r\n"), "400"},
    {"bare LF ending a field", RAW("GET / HTTP/1.1\r\nHost: a\n\r\n"), "400"},
    {"bare LF ending the head", RAW("GET / HTTP/1.1\r\n" H "\n"), "400"},
    {"bare LF before the request line", RAW("\nGET / HTTP/1.1\r\n" H "\r\n"), "400"},
    {"DEL in a value", RAW("GET / HTTP/1.1\r\n" H "X-A: a\x7f\r\n\r\n"), "400"},
    {"control in a value", RAW("GET / HTTP/1.1\r\n" H "X-A: \x01\r\n\r\n"), "400"},
    {"ESC in a value", RAW("GET / HTTP/1.1\r\n" H "X-A: \x1b[0m\r\n\r\n"), "400"},

    /* Host. */
    {"missing Host", RAW("GET / HTTP/1.1\r\n\r\n"), "400"},
    {"missing Host, absolute-form", RAW("GET http://a.test/ HTTP/1.1\r\n\r\n"), "400"},
    {"two Host fields", RAW("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n"), "400"},
    {"two Host fields in HTTP/1.0", RAW("GET / HTTP/1.0\r\nHost: a.test\r\nhost: a.test\r\n\r\n"),
     "400"},
    {"Host with a slash", RAW("GET / HTTP/1.1\r\nHost: a.test/b\r\n\r\n"), "400"},
    {"Host with userinfo", RAW("GET / HTTP/1.1\r\nHost: u@a.test\r\n\r\n"), "400"},
    {"Host with a space", RAW("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), "400"},
    {"Host with a backslash", RAW("GET / HTTP/1.1\r\nHost: a.test\\@b\r\n\r\n"), "400"},

    /* Request line. */
    {"HTTP/0.9", RAW("GET /\r\n\r\n"), "400"},
    {"method only", RAW("GET\r\n\r\n"), "400"},
    {"HTTP/2.0", RAW("GET / HTTP/2.0\r\n" H "\r\n"), "505"},
    {"HTTP/1.2", RAW("GET / HTTP/1.2\r\n" H "\r\n"), "505"},
    {"HTTP/0.9 named", RAW("GET / HTTP/0.9\r\n" H "\r\n"), "505"},
    {"lower-case version", RAW("GET / http/1.1\r\n" H "\r\n"), "400"},
    {"HTTP/1.10", RAW("GET / HTTP/1.10\r\n" H "\r\n"), "400"},
    {"HTTP/1", RAW("GET / HTTP/1\r\n" H "\r\n"), "400"},
    {"two spaces after method", RAW("GET  / HTTP/1.1\r\n" H "\r\n"), "400"},
    {"two spaces after target", RAW("GET /  HTTP/1.1\r\n" H "\r\n"), "400"},
    {"trailing space", RAW("GET / HTTP/1.1 \r\n" H "\r\n"), "400"},
    {"leading space", RAW(" GET / HTTP/1.1\r\n" H "\r\n"), "400"},
    {"tab after method", RAW("GET\t/ HTTP/1.1\r\n" H "\r\n"), "400"},
    {"space in target", RAW("GET /a b HTTP/1.1\r\n" H "\r\n"), "400"},
    {"DEL in target", RAW("GET /a\x7f HTTP/1.1\r\n" H "\r\n"), "400"},
    {"non-ASCII in target", RAW("GET /caf\xc3\xa9 HTTP/1.1\r\n" H "\r\n"), "400"},
    {"method with a slash", RAW("GE/T / HTTP/1.1\r\n" H "\r\n"), "400"},
    {"bare host target", RAW("GET example.com HTTP/1.1\r\n" H "\r\n"), "400"},
    {"scheme without //", RAW("GET http:/a HTTP/1.1\r\n" H "\r\n"), "400"},
    {"empty authority", RAW("GET http:///a HTTP/1.1\r\n" H "\r\n"), "400"},
    {"asterisk with GET", RAW("GET * HTTP/1.1\r\n" H "\r\n"), "400"},
    {"CONNECT origin-form", RAW("CONNECT / HTTP/1.1\r\n" H "\r\n"), "400"},
    {"CONNECT absolute-form", RAW("CONNECT http://a.test:443/ HTTP/1.1\r\n" H "\r\n"), "400"},
    {"CONNECT without port", RAW("CONNECT a.test HTTP/1.1\r\n" H "\r\n"), "400"},
    {"CONNECT empty port", RAW("CONNECT a.test: HTTP/1.1\r\n" H "\r\n"), "400"},
    {"CONNECT port 0", RAW("CONNECT a.test:0 HTTP/1.1\r\n" H "\r\n"), "400"},
    {"CONNECT port 65536", RAW("CONNECT a.test:65536 HTTP/1.1\r\n" H "\r\n"), "400"},
    {"CONNECT userinfo", RAW("CONNECT u@a.test:443 HTTP/1.1\r\n" H "\r\n"), "400"},
    {"CONNECT empty host", RAW("CONNECT :443 HTTP/1.1\r\n" H "\r\n"), "400"},
    {"CONNECT unbracketed IPv6", RAW("CONNECT ::1:443 HTTP/1.1\r\n" H "\r\n"), "400"},
    {"CONNECT with a body", RAW("CONNECT a.test:443 HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\n"),
     "400"},
    {"CONNECT chunked",
     RAW("CONNECT a.test:443 HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"), "400"},

    /* Header fields. */
    {"field without colon", RAW("GET / HTTP/1.1\r\n" H "X-A\r\n\r\n"), "400"},
    {"empty field name", RAW("GET / HTTP/1.1\r\n" H ": x\r\n\r\n"), "400"},
    {"bad character in name", RAW("GET / HTTP/1.1\r\n" H "X(A): x\r\n\r\n"), "400"},
    {"non-ASCII in name", RAW("GET / HTTP/1.1\r\n" H "X-\xc3\xa9: x\r\n\r\n"), "400"},
    {"two Connection fields",
     RAW("GET / HTTP/1.1\r\n" H "Connection: keep-alive\r\nConnection: close\r\n\r\n"), "400"},
    {"two Proxy-Authorization fields",
     RAW("GET / HTTP/1.1\r\n" H "Proxy-Authorization: a\r\nProxy-Authorization: b\r\n\r\n"), "400"},
    {"two Upgrade fields", RAW("GET / HTTP/1.1\r\n" H "Upgrade: a\r\nUpgrade: b\r\n\r\n"), "400"},
};

static const struct resp_case resp_cases[] = {
    {"200 with length", "GET", RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
     "done status=200 reason=OK minor=1 body=length cl=5 ka=1 n=1 tail=5"},
    {"200 chunked", "GET", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
     "done body=chunked ka=1"},
    {"200 until close", "GET", RAW("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"), "done body=close ka=0"},
    {"204 with a length", "GET", RAW("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
     "done status=204 body=none cl=0 ka=1 reason=No\\sContent"},
    {"304 with a length", "GET", RAW("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"),
     "done body=none ka=1"},
    {"100 Continue", "POST", RAW("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
     "done status=100 body=none tail=17"},
    {"101 Switching Protocols", "GET",
     RAW("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
     "done status=101 body=none conn=upgrade"},
    {"HEAD with length", "HEAD", RAW("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
     "done body=none cl=0"},
    {"HEAD chunked", "HEAD", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
     "done body=none"},
    {"HEAD without length", "HEAD", RAW("HTTP/1.1 200 OK\r\n\r\n"), "done body=none ka=1"},
    {"CONNECT 200", "CONNECT", RAW("HTTP/1.1 200 Connection established\r\n\r\n"),
     "done body=none"},
    {"CONNECT 407", "CONNECT",
     RAW("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\n"),
     "done body=length cl=3"},
    {"HTTP/1.0 with length", "GET", RAW("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"),
     "done minor=0 ka=0 body=length"},
    {"HTTP/1.0 keep-alive", "GET",
     RAW("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n"),
     "done minor=0 ka=1"},
    {"HTTP/1.1 close", "GET",
     RAW("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n"),
     "done ka=0 conn=close"},
    {"empty reason", "GET", RAW("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"),
     "done reason= status=200"},
    {"no space after status", "GET", RAW("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
     "done reason="},
    {"obs-text in reason", "GET", RAW("HTTP/1.1 200 \xc3\x89t\xc3\xa9\r\n\r\n"),
     "done reason=\\xc3\\x89t\\xc3\\xa9"},
    {"status 999", "GET", RAW("HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n"), "done status=999"},
    {"204 with chunked", "GET", RAW("HTTP/1.1 204 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
     "done body=none"},
    {"incomplete", "GET", RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"), "again"},
    {"nothing", "GET", RAW(""), "again"},
    {"status 099", "GET", RAW("HTTP/1.1 099 X\r\n\r\n"), "error"},
    {"status 2000", "GET", RAW("HTTP/1.1 2000 X\r\n\r\n"), "error"},
    {"status 20", "GET", RAW("HTTP/1.1 20 X\r\n\r\n"), "error"},
    {"status letters", "GET", RAW("HTTP/1.1 abc X\r\n\r\n"), "error"},
    {"HTTP/2", "GET", RAW("HTTP/2 200 OK\r\n\r\n"), "error"},
    {"HTTP/1.2", "GET", RAW("HTTP/1.2 200 OK\r\n\r\n"), "error"},
    {"two spaces", "GET", RAW("HTTP/1.1  200 OK\r\n\r\n"), "error"},
    {"ICY", "GET", RAW("ICY 200 OK\r\n\r\n"), "error"},
    {"CL and TE", "GET",
     RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), "error"},
    {"CL and TE on HEAD", "HEAD",
     RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), "error"},
    {"duplicate CL", "GET",
     RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), "error"},
    {"TE gzip", "GET", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), "error"},
    {"TE chunked, identity", "GET",
     RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n"), "error"},
    {"TE in HTTP/1.0", "GET", RAW("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
     "error"},
    {"obs-fold", "GET", RAW("HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n"), "error"},
    {"bare LF", "GET", RAW("HTTP/1.1 200 OK\nContent-Length: 0\n\n"), "error"},
    {"bare CR in reason", "GET", RAW("HTTP/1.1 200 O\rK\r\n\r\n"), "error"},
    {"NUL in value", "GET", RAW("HTTP/1.1 200 OK\r\nX-A: a\0\r\n\r\n"), "error"},
    {"space before colon", "GET", RAW("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n"), "error"},
    {"Content-Length +5", "GET", RAW("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"), "error"},
    {"bad length on HEAD", "HEAD", RAW("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n"), "error"},
    {"two Connection fields", "GET",
     RAW("HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: x\r\n\r\n"), "error"},
};

static void test_request_table(void **state)
{
    (void)state;
    assert_true(HAVEN_ARRAY_LEN(req_cases) >= 80);
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(req_cases); i++) {
        const struct req_case *c = &req_cases[i];
        run_request(c->name, c->raw, c->len, c->expect, NULL);
    }
}

static void test_response_table(void **state)
{
    (void)state;
    assert_true(HAVEN_ARRAY_LEN(resp_cases) >= 30);
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(resp_cases); i++) {
        const struct resp_case *c = &resp_cases[i];
        run_response(c->name, c->method, c->raw, c->len, c->expect);
    }
}

static void test_error_messages(void **state)
{
    struct h1_request req;

    (void)state;
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.1\r\n\r\n"), NULL, &req), H1_ERROR);
    assert_string_equal(req.error, "missing Host header");
    assert_int_equal(h1_parse_request(RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                                          "Transfer-Encoding: chunked\r\n\r\n"),
                                      NULL, &req),
                     H1_ERROR);
    assert_string_equal(req.error, "both Content-Length and Transfer-Encoding");
    assert_int_equal(
        h1_parse_request(RAW("GET / HTTP/1.1\r\nHost: a\r\nX: \rb\r\n\r\n"), NULL, &req), H1_ERROR);
    assert_string_equal(req.error, "bare CR in message head");
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.1\nHost: a\r\n\r\n"), NULL, &req),
                     H1_ERROR);
    assert_string_equal(req.error, "bare LF line ending");
}

/* A request line of exactly n bytes (without CRLF). */
static char *request_line(size_t n)
{
    char *s = malloc(n + 64);
    assert_non_null(s);
    assert_true(n >= 16);
    memcpy(s, "GET /", 5);
    memset(s + 5, 'a', n - 14);
    memcpy(s + n - 9, " HTTP/1.1", 9);
    memcpy(s + n, "\r\nHost: a\r\n\r\n", 14);
    return s;
}

static void test_line_limits(void **state)
{
    struct h1_request req;
    struct h1_limits lim;
    char *s;

    (void)state;
    h1_limits_default(&lim);
    assert_int_equal(lim.max_line, 8192);
    assert_int_equal(lim.max_head, 65536);
    assert_int_equal(lim.max_headers, 100);

    /* A request line of exactly max_line bytes is accepted, one more is 414, even before
     * the line is complete. */
    s = request_line(8192);
    assert_int_equal(h1_parse_request(s, 8192 + 13, NULL, &req), H1_DONE);
    assert_int_equal(req.target.len, 8192 - 13);
    assert_int_equal(h1_parse_request(s, 8192, NULL, &req), H1_AGAIN);
    assert_int_equal(h1_parse_request(s, 8192 + 1, NULL, &req), H1_AGAIN);
    free(s);
    s = request_line(8193);
    assert_int_equal(h1_parse_request(s, 8193 + 13, NULL, &req), H1_ERROR);
    assert_int_equal(req.status, 414);
    assert_int_equal(h1_parse_request(s, 8193 + 1, NULL, &req), H1_ERROR);
    assert_int_equal(req.status, 414);
    assert_int_equal(h1_parse_request(s, 8192 + 1, NULL, &req), H1_AGAIN);
    free(s);

    /* The same for a header line, with 431. */
    s = malloc(9000);
    assert_non_null(s);
    memcpy(s, "GET / HTTP/1.1\r\nHost: ", 22);
    memset(s + 22, 'a', 8192 - 6);
    memcpy(s + 16 + 8192, "\r\n\r\n", 4);
    assert_int_equal(h1_parse_request(s, 16 + 8192 + 4, NULL, &req), H1_DONE);
    assert_int_equal(req.host.len, 8192 - 6);
    memset(s + 22, 'a', 8192 - 5);
    memcpy(s + 16 + 8193, "\r\n\r\n", 4);
    assert_int_equal(h1_parse_request(s, 16 + 8193 + 4, NULL, &req), H1_ERROR);
    assert_int_equal(req.status, 431);
    assert_int_equal(h1_parse_request(s, 16 + 8193 + 1, NULL, &req), H1_ERROR);
    assert_int_equal(req.status, 431);
    assert_int_equal(h1_parse_request(s, 16 + 8192 + 1, NULL, &req), H1_AGAIN);
    free(s);

    /* Small limits. */
    lim.max_line = 20;
    assert_int_equal(h1_parse_request(RAW("GET /0123 HTTP/1.1\r\nHost: a\r\n\r\n"), &lim, &req),
                     H1_DONE);
    assert_int_equal(h1_parse_request(RAW("GET /01234567 HTTP/1.1\r\nHost: a\r\n\r\n"), &lim, &req),
                     H1_ERROR);
    assert_int_equal(req.status, 414);
    assert_int_equal(h1_parse_request(RAW("GET /01234567 HTTP"), &lim, &req), H1_AGAIN);
    assert_int_equal(h1_parse_request(RAW("GET /01234567 HTTP/1."), &lim, &req), H1_AGAIN);
    assert_int_equal(h1_parse_request(RAW("GET /01234567 HTTP/1.1"), &lim, &req), H1_ERROR);
}

/* A request whose head is exactly n bytes, with header lines of at most 8000 bytes. */
static char *request_of_size(size_t n, int *nfields)
{
    char *s = malloc(n);
    size_t pos = 0;

    assert_non_null(s);
    memcpy(s, "GET / HTTP/1.1\r\nHost: a\r\n", 25);
    pos = 25;
    *nfields = 1;
    while (n - pos - 2 > 0) {
        size_t room = n - pos - 2; /* bytes left before the final CRLF */
        size_t line = room > 8000 ? 8000 : room;
        if (room > 8000 && room - 8000 < 8)
            line = 7000; /* leave room for one more whole line */
        assert_true(line >= 8);
        memcpy(s + pos, "X-F: ", 5);
        memset(s + pos + 5, 'b', line - 7);
        memcpy(s + pos + line - 2, "\r\n", 2);
        pos += line;
        (*nfields)++;
    }
    memcpy(s + pos, "\r\n", 2);
    return s;
}

static void test_head_limits(void **state)
{
    struct h1_request req;
    struct h1_limits lim;
    char big[4096];
    size_t pos = 0;
    int nf;
    char *s;

    (void)state;
    s = request_of_size(65536, &nf);
    assert_int_equal(h1_parse_request(s, 65536, NULL, &req), H1_DONE);
    assert_int_equal(req.head_len, 65536);
    assert_int_equal(req.nheaders, nf);
    free(s);
    s = request_of_size(65537, &nf);
    assert_int_equal(h1_parse_request(s, 65537, NULL, &req), H1_ERROR);
    assert_int_equal(req.status, 431);
    assert_int_equal(h1_parse_request(s, 65536, NULL, &req), H1_ERROR);
    assert_int_equal(req.status, 431);
    assert_int_equal(h1_parse_request(s, 65535, NULL, &req), H1_AGAIN);
    free(s);

    /* 100 fields are accepted, 101 are 431. */
    pos = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < 100; i++)
        pos += (size_t)snprintf(big + pos, sizeof(big) - pos, "X%d: v\r\n", i);
    memcpy(big + pos, "\r\n", 2);
    assert_int_equal(h1_parse_request(big, pos + 2, NULL, &req), H1_DONE);
    assert_int_equal(req.nheaders, 100);
    pos += (size_t)snprintf(big + pos, sizeof(big) - pos, "X100: v\r\n\r\n");
    assert_int_equal(h1_parse_request(big, pos, NULL, &req), H1_ERROR);
    assert_int_equal(req.status, 431);
    /* and the count is enforced before the head is complete */
    assert_int_equal(h1_parse_request(big, pos - 2, NULL, &req), H1_ERROR);

    /* max_headers above the storage is capped to H1_MAX_HEADERS; small limits work. */
    h1_limits_default(&lim);
    lim.max_headers = 100000;
    assert_int_equal(h1_parse_request(big, pos, &lim, &req), H1_DONE);
    assert_int_equal(req.nheaders, 101);
    lim.max_headers = 1;
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &lim, &req),
                     H1_DONE);
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n"), &lim, &req),
                     H1_ERROR);
    assert_int_equal(req.status, 431);
    h1_limits_default(&lim);
    lim.max_head = 27;
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &lim, &req),
                     H1_DONE);
    lim.max_head = 26;
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &lim, &req),
                     H1_ERROR);
    assert_int_equal(req.status, 431);
    /* Endless empty lines before a request are a head too. */
    memset(big, '\r', sizeof(big));
    for (size_t i = 1; i < sizeof(big); i += 2)
        big[i] = '\n';
    lim.max_head = 1000;
    assert_int_equal(h1_parse_request(big, sizeof(big), &lim, &req), H1_ERROR);
    assert_int_equal(req.status, 431);
}

/* Feed a chunked body whole, in two pieces at every point, and byte by byte. */
static void run_chunked(const char *name, const char *raw, size_t len, const char *expect,
                        const struct h1_limits *lim)
{
    struct h1_chunked c;
    char result[16];
    struct expect_word w[4];
    int n = expect_split(expect, result, sizeof(result), w, 4);
    int want = strcmp(result, "done") == 0 ? 1 : strcmp(result, "again") == 0 ? 0 : -1;
    size_t want_used = len;
    long long want_body = -1;
    size_t used = 0, used2 = 0;
    int r;

    if (want == -1 && strcmp(result, "error") != 0)
        fail_msg("%s: bad result '%s'", name, result);
    for (int i = 0; i < n; i++) {
        if (strcmp(w[i].key, "used") == 0)
            want_used = strtoul(w[i].val, NULL, 10);
        else if (strcmp(w[i].key, "body") == 0)
            want_body = strtoll(w[i].val, NULL, 10);
        else
            fail_msg("%s: unknown key %s", name, w[i].key);
    }
    h1_chunked_init(&c, lim);
    r = h1_chunked_scan(&c, raw, len, &used);
    if (r != want)
        fail_msg("%s: result %d (%s), expected %d", name, r, c.error ? c.error : "-", want);
    if (r == -1 && (!c.error || !c.error[0]))
        fail_msg("%s: error without a message", name);
    if (r == 1 && used != want_used)
        fail_msg("%s: used %zu, expected %zu", name, used, want_used);
    if (r == 0 && used != len)
        fail_msg("%s: used %zu of %zu", name, used, len);
    if (r == 1 && want_body >= 0 && c.body_len != (uint64_t)want_body)
        fail_msg("%s: body %llu, expected %lld", name, (unsigned long long)c.body_len, want_body);
    if (r != 0) {
        assert_int_equal(h1_chunked_scan(&c, raw, len, &used2), r);
        assert_int_equal(used2, 0);
    }

    for (size_t k = 0; k <= len; k++) {
        int r1, r2 = 0;
        size_t u1 = 0, u2 = 0;
        h1_chunked_init(&c, lim);
        r1 = h1_chunked_scan(&c, raw, k, &u1);
        if (r1 == 0) {
            assert_int_equal(u1, k);
            r2 = h1_chunked_scan(&c, raw + k, len - k, &u2);
        }
        if ((r1 == 0 ? r2 : r1) != r)
            fail_msg("%s: split at %zu gives a different result", name, k);
        if (r == 1 && u1 + u2 != want_used)
            fail_msg("%s: split at %zu uses %zu bytes", name, k, u1 + u2);
    }
    h1_chunked_init(&c, lim);
    used = 0;
    r = 0;
    for (size_t k = 0; k < len && r == 0; k++) {
        size_t u = 0;
        r = h1_chunked_scan(&c, raw + k, 1, &u);
        used += r == -1 ? 0 : u;
    }
    if (r != want || (r == 1 && used != want_used))
        fail_msg("%s: byte by byte gives %d", name, r);
}

static const struct req_case chunked_cases[] = {
    {"last chunk only", RAW("0\r\n\r\n"), "done body=0"},
    {"one chunk", RAW("5\r\nhello\r\n0\r\n\r\n"), "done body=5"},
    {"two chunks", RAW("5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n"), "done body=6"},
    {"extension", RAW("5;foo=bar\r\nhello\r\n0;x\r\n\r\n"), "done body=5"},
    {"quoted extension", RAW("5;a=\"x y;z\"\r\nhello\r\n0\r\n\r\n"), "done"},
    {"whitespace before extension", RAW("5 \t;a\r\nhello\r\n0\r\n\r\n"), "done"},
    {"trailers", RAW("0\r\nX-T: 1\r\nY:\r\n\r\n"), "done body=0"},
    {"upper-case hex", RAW("A\r\n0123456789\r\n0\r\n\r\n"), "done body=10"},
    {"lower-case hex", RAW("a\r\n0123456789\r\n0\r\n\r\n"), "done body=10"},
    {"leading zeros", RAW("0005\r\nhello\r\n0000\r\n\r\n"), "done body=5"},
    {"data with CRLF inside", RAW("4\r\n\r\n\r\n\r\n0\r\n\r\n"), "done body=4"},
    {"next message follows", RAW("0\r\n\r\nGET / HTTP/1.1\r\n"), "done used=5"},
    {"empty", RAW(""), "again"},
    {"inside data", RAW("5\r\nhel"), "again"},
    {"after data", RAW("5\r\nhello\r\n"), "again"},
    {"before the final CRLF", RAW("0\r\n"), "again"},
    {"inside trailers", RAW("0\r\nX: y\r\n"), "again"},
    {"largest size", RAW("4000000000000000\r\n"), "again"},
    {"size with leading zeros", RAW("00000000000000000000001\r\n"), "again"},
    {"bad hex", RAW("g\r\n"), "error"},
    {"empty size", RAW("\r\n"), "error"},
    {"negative size", RAW("-5\r\nhello\r\n"), "error"},
    {"0x prefix", RAW("0x5\r\nhello\r\n"), "error"},
    {"plus sign", RAW("+5\r\nhello\r\n"), "error"},
    {"size over 2^62", RAW("4000000000000001\r\n"), "error"},
    {"size over 2^64", RAW("10000000000000000\r\n"), "error"},
    {"data too long", RAW("5\r\nhelloX\r\n0\r\n\r\n"), "error"},
    {"data too short", RAW("5\r\nhell\r\n0\r\n\r\n"), "error"},
    {"bare LF after size", RAW("5\nhello\r\n0\r\n\r\n"), "error"},
    {"bare CR after size", RAW("5\rhello\r\n0\r\n\r\n"), "error"},
    {"bare LF after data", RAW("5\r\nhello\n0\r\n\r\n"), "error"},
    {"bare LF at the end", RAW("0\r\n\n"), "error"},
    {"bare LF after a trailer", RAW("0\r\nX: y\n\r\n"), "error"},
    {"space without extension", RAW("5 \r\nhello\r\n0\r\n\r\n"), "error"},
    {"space inside size", RAW("5 5\r\nhello\r\n"), "error"},
    {"leading space", RAW(" 5\r\nhello\r\n"), "error"},
    {"control in extension", RAW("5;a\x01\r\nhello\r\n0\r\n\r\n"), "error"},
    {"LF in extension", RAW("5;a\nb\r\nhello\r\n0\r\n\r\n"), "error"},
    {"NUL in size", RAW("5\0\r\nhello\r\n"), "error"},
    {"trailer obs-fold", RAW("0\r\nX: a\r\n b\r\n\r\n"), "error"},
    {"trailer without colon", RAW("0\r\nX\r\n\r\n"), "error"},
    {"trailer space before colon", RAW("0\r\nX : y\r\n\r\n"), "error"},
    {"trailer with NUL", RAW("0\r\nX: \0\r\n\r\n"), "error"},
};

static void test_chunked_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(chunked_cases); i++) {
        const struct req_case *c = &chunked_cases[i];
        run_chunked(c->name, c->raw, c->len, c->expect, NULL);
    }
}

static void test_chunked_limits(void **state)
{
    static char line[H1_MAX_CHUNK_LINE + 16];
    struct h1_limits lim;
    struct h1_chunked c;
    size_t used;

    (void)state;
    /* A size line of exactly H1_MAX_CHUNK_LINE bytes is accepted, one more is not. */
    line[0] = '0';
    line[1] = ';';
    memset(line + 2, 'e', H1_MAX_CHUNK_LINE - 2);
    memcpy(line + H1_MAX_CHUNK_LINE, "\r\n\r\n", 4);
    h1_chunked_init(&c, NULL);
    assert_int_equal(h1_chunked_scan(&c, line, H1_MAX_CHUNK_LINE + 4, &used), 1);
    assert_int_equal(used, H1_MAX_CHUNK_LINE + 4);
    line[H1_MAX_CHUNK_LINE] = 'e';
    memcpy(line + H1_MAX_CHUNK_LINE + 1, "\r\n\r\n", 4);
    h1_chunked_init(&c, NULL);
    assert_int_equal(h1_chunked_scan(&c, line, H1_MAX_CHUNK_LINE + 5, &used), -1);
    assert_string_equal(c.error, "chunk size line too long");
    /* ... even when the line has not ended yet */
    h1_chunked_init(&c, NULL);
    assert_int_equal(h1_chunked_scan(&c, line, H1_MAX_CHUNK_LINE + 1, &used), -1);

    /* Trailers count against max_head, the final CRLF included. */
    h1_limits_default(&lim);
    lim.max_head = 10;
    run_chunked("trailers at the cap", RAW("0\r\nX: 123\r\n\r\n"), "done", &lim);
    run_chunked("trailers over the cap", RAW("0\r\nX: 1234\r\n\r\n"), "error", &lim);
    run_chunked("trailers over the cap, unfinished", RAW("0\r\nX: 12345678"), "error", &lim);

    /* A large chunk is skipped in one step. */
    h1_chunked_init(&c, NULL);
    assert_int_equal(h1_chunked_scan(&c, RAW("4000000000000000\r\n"), &used), 0);
    assert_int_equal(h1_chunked_scan(&c, line, sizeof(line), &used), 0);
    assert_int_equal(used, sizeof(line));
    assert_int_equal(c.body_len, sizeof(line));
}

static void test_helpers(void **state)
{
    struct h1_header h = {SLICE_LIT("X-Secret"), SLICE_LIT("1")};
    struct h1_header hs[] = {
        {SLICE_LIT("Host"), SLICE_LIT("a")},
        {SLICE_LIT("Content-Length"), SLICE_LIT("5")},
        {SLICE_LIT("content-length"), SLICE_LIT("6")},
    };
    static const char *const hop[] = {"Connection",         "Keep-Alive", "Proxy-Connection",
                                      "Proxy-Authenticate", "TE",         "Trailer",
                                      "transfer-encoding",  "UPGRADE",    "Proxy-Authorization"};

    (void)state;
    assert_true(h1_header_is(&h, "x-secret"));
    assert_false(h1_header_is(&h, "x-secre"));
    assert_false(h1_header_is(&h, "x-secrets"));
    assert_ptr_equal(h1_find(hs, 3, "content-length"), &hs[1]);
    assert_ptr_equal(h1_find(hs, 3, "host"), &hs[0]);
    assert_null(h1_find(hs, 3, "cookie"));
    assert_null(h1_find(hs, 0, "host"));

    assert_true(h1_token_list_has(SLICE_LIT("keep-alive, Upgrade"), "upgrade"));
    assert_true(h1_token_list_has(SLICE_LIT("  close  "), "close"));
    assert_true(h1_token_list_has(SLICE_LIT(",,close,"), "close"));
    assert_true(h1_token_list_has(SLICE_LIT("a;q=1, b"), "a"));
    assert_true(h1_token_list_has(SLICE_LIT("CLOSE"), "close"));
    assert_false(h1_token_list_has(SLICE_LIT("closed"), "close"));
    assert_false(h1_token_list_has(SLICE_LIT("xclose"), "close"));
    assert_false(h1_token_list_has(SLICE_LIT(""), "close"));
    assert_false(h1_token_list_has(slice_make(NULL, 0), "close"));

    for (size_t i = 0; i < HAVEN_ARRAY_LEN(hop); i++) {
        struct h1_header x = {slice_cstr(hop[i]), SLICE_LIT("v")};
        if (!h1_is_hop_by_hop(&x, slice_make(NULL, 0)))
            fail_msg("%s is not hop-by-hop", hop[i]);
    }
    assert_false(h1_is_hop_by_hop(&h, SLICE_LIT("close")));
    assert_true(h1_is_hop_by_hop(&h, SLICE_LIT("close, x-secret")));
    /* Connection cannot remove the framing or the destination. */
    assert_false(h1_is_hop_by_hop(&hs[1], SLICE_LIT("Content-Length")));
    assert_false(h1_is_hop_by_hop(&hs[0], SLICE_LIT("host")));

    assert_int_equal(h1_head_end(RAW("GET / HTTP/1.1\r\nHost: a\r\n\r\nxyz"), 0), 27);
    assert_int_equal(h1_head_end(RAW("GET / HTTP/1.1\r\nHost: a\r\n\r\nxyz"), 26), 27);
    assert_int_equal(h1_head_end(RAW("GET / HTTP/1.1\r\nHost: a\r\n\r"), 0), 0);
    assert_int_equal(h1_head_end(RAW(""), 0), 0);
    assert_int_equal(h1_head_end(RAW("\r\n\r\n"), 100), 0);
}

/*
 * Every byte value at every position of a value, a target and a reason: the word-at-a-time
 * scans must agree with the byte rules of h1.h wherever the byte falls in a word.
 */
static void test_byte_positions(void **state)
{
    struct h1_request req;
    struct h1_response resp;
    char buf[128];

    (void)state;
    for (int c = 0; c < 256; c++) {
        int field_ok = c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f);
        int vchar_ok = c >= 0x21 && c <= 0x7e;
        for (int i = 0; i < 20; i++) {
            char v[20];
            int n, r;
            memset(v, 'a', sizeof(v));
            v[i] = (char)c;
            n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
            memcpy(buf + n, v, sizeof(v));
            memcpy(buf + n + sizeof(v), "\r\n\r\n", 4);
            r = h1_parse_request(buf, (size_t)n + sizeof(v) + 4, NULL, &req);
            /* A CR followed by "aaa" or a LF is a bare CR or ends the line early. */
            if (r != (field_ok ? H1_DONE : H1_ERROR) && c != '\n')
                fail_msg("value byte 0x%02x at %d: result %d", c, i, r);
            if (r == H1_DONE && c != ' ' && c != '\t')
                assert_memory_equal(req.headers[1].value.p, v, sizeof(v));

            n = snprintf(buf, sizeof(buf), "GET /");
            memcpy(buf + n, v, sizeof(v));
            memcpy(buf + n + sizeof(v), " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
            r = h1_parse_request(buf, (size_t)n + sizeof(v) + 22, NULL, &req);
            if (r != (vchar_ok ? H1_DONE : H1_ERROR))
                fail_msg("target byte 0x%02x at %d: result %d", c, i, r);
            if (r == H1_DONE)
                assert_int_equal(req.target.len, sizeof(v) + 1);

            n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 ");
            memcpy(buf + n, v, sizeof(v));
            memcpy(buf + n + sizeof(v), "\r\n\r\n", 4);
            r = h1_parse_response(buf, (size_t)n + sizeof(v) + 4, NULL, SLICE_LIT("GET"), &resp);
            if (r != (field_ok ? H1_DONE : H1_ERROR) && c != '\n')
                fail_msg("reason byte 0x%02x at %d: result %d", c, i, r);
            if (r == H1_DONE)
                assert_int_equal(resp.reason.len, sizeof(v));
        }
    }
}

/* Response and request parsing keep no state: one struct can be reused for any input. */
static void test_reuse(void **state)
{
    struct h1_response resp;
    struct h1_request req;

    (void)state;
    assert_int_equal(
        h1_parse_request(RAW("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"), NULL, &req),
        H1_DONE);
    assert_int_equal(req.content_length, 3);
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, &req),
                     H1_DONE);
    assert_int_equal(req.content_length, 0);
    assert_int_equal(req.body, H1_BODY_NONE);
    assert_int_equal(h1_parse_response(RAW("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"), NULL,
                                       SLICE_LIT("GET"), &resp),
                     H1_DONE);
    assert_int_equal(
        h1_parse_response(RAW("HTTP/1.1 200 OK\r\n\r\n"), NULL, SLICE_LIT("GET"), &resp), H1_DONE);
    assert_int_equal(resp.content_length, 0);
    assert_int_equal(resp.body, H1_BODY_CLOSE);
}

/* Scenario files: see tests/data/h1/README.md. */
static void run_scenario(const char *path)
{
    static char text[65536];
    static char raw[65536];
    char kind[32] = "request", method[32] = "GET", expect[512] = "";
    size_t n, rawlen = 0;
    char *p, *end;
    FILE *f = fopen(path, "rb");
    int in_raw = 0;

    if (!f)
        fail_msg("cannot open %s", path);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    for (p = text; p < text + n; p = end + 1) {
        size_t ll;
        end = memchr(p, '\n', (size_t)(text + n - p));
        if (!end)
            end = text + n;
        ll = (size_t)(end - p);
        if (in_raw) {
            rawlen += unescape(p, ll, raw + rawlen, sizeof(raw) - rawlen);
        } else if (ll == 2 && memcmp(p, "--", 2) == 0) {
            in_raw = 1;
        } else if (ll > 0 && p[0] != '#') {
            char *colon = memchr(p, ':', ll);
            char *dst = NULL;
            size_t cap = 0, vl;
            const char *v;
            if (!colon)
                fail_msg("%s: header line without ':'", path);
            v = colon + 1;
            while (*v == ' ')
                v++;
            vl = (size_t)(end - v);
            if (strncmp(p, "kind:", 5) == 0) {
                dst = kind;
                cap = sizeof(kind);
            } else if (strncmp(p, "method:", 7) == 0) {
                dst = method;
                cap = sizeof(method);
            } else if (strncmp(p, "expect:", 7) == 0) {
                dst = expect;
                cap = sizeof(expect);
            } else {
                fail_msg("%s: unknown key in '%.*s'", path, (int)ll, p);
            }
            if (vl >= cap)
                fail_msg("%s: value too long", path);
            memcpy(dst, v, vl);
            dst[vl] = '\0';
        }
    }
    if (!in_raw || !expect[0])
        fail_msg("%s: needs 'expect:' and a '--' line before the message", path);
    if (strcmp(kind, "request") == 0)
        run_request(path, raw, rawlen, expect, NULL);
    else if (strcmp(kind, "response") == 0)
        run_response(path, method, raw, rawlen, expect);
    else if (strcmp(kind, "chunked") == 0)
        run_chunked(path, raw, rawlen, expect, NULL);
    else
        fail_msg("%s: unknown kind '%s'", path, kind);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_scenarios(void **state)
{
    char dir[4096];
    char path[4096 + 256];
    char *names[512];
    int count = 0;
    struct dirent *e;
    DIR *d;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/tests/data/h1", HAVEN_SOURCE_DIR);
    d = opendir(dir);
    if (!d)
        fail_msg("cannot open %s", dir);
    while (count < 512) {
        size_t l;
        e = readdir(d);
        if (!e)
            break;
        l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".txt") != 0)
            continue;
        names[count] = malloc(l + 1);
        assert_non_null(names[count]);
        memcpy(names[count], e->d_name, l + 1);
        count++;
    }
    closedir(d);
    assert_true(count >= 12);
    qsort(names, (size_t)count, sizeof(names[0]), name_cmp);
    for (int i = 0; i < count; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        run_scenario(path);
        free(names[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table),  cmocka_unit_test(test_response_table),
        cmocka_unit_test(test_error_messages), cmocka_unit_test(test_line_limits),
        cmocka_unit_test(test_head_limits),    cmocka_unit_test(test_chunked_table),
        cmocka_unit_test(test_chunked_limits), cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_reuse),          cmocka_unit_test(test_scenarios),
        cmocka_unit_test(test_byte_positions),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
