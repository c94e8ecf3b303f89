/*
 * Unit tests: page-text extraction for the safeguarding monitor. The user of
 * this module is the keyword scanner, so every test looks at the words that
 * come out: of real-looking pages (a search results page, a forum thread, a
 * JSON API answer, a search-suggestion JSONP answer), of the same pages
 * gzip-, deflate- and brotli-compressed, split at every byte position and
 * fed one byte at a time; of caps and decompression bombs; of corrupt data.
 *
 * The brotli vectors were made once with Debian's `brotli` command (1.0.9)
 * from the documents below: there is no brotli encoder library in the build.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <zlib.h>

#include "monitor/extract.h"

/* A search results page: head, scripts, styles, attributes, entities. */
static const char doc_search[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>how to tie a noose - Search</title>\n"
    "<meta name=\"description\" content=\"Results for &quot;how to tie a noose&quot;\">\n"
    "<meta content=\"width=device-width\" name=\"viewport\">\n"
    "<link rel=\"alternate\" title=\"RSS feed\" href=\"/rss\">\n"
    "<style>body { font-family: sans-serif } .kill { color: red }</style>\n"
    "<script>var q = \"</div>\"; if (a < b && c > d) { track('scriptword'); }</script>\n"
    "</head>\n"
    "<body>\n"
    "<form><input name=q placeholder='Search the web' value=\"hiddenvalue\"></form>\n"
    "<!-- results start --><div id=\"results\">\n"
    "<h3><a href=\"https://example.org/help?a=1&amp;b=2\">Samaritans &ndash; call "
    "116&nbsp;123</a></h3>\n"
    "<p>If you&rsquo;re feeling <b>low</b>, talk to someone. Caf&eacute; d&#233;j&#xE0; vu.</p>\n"
    "<img src=\"/i.png\" alt=\"a person holding a rope\"/>\n"
    "<button aria-label=\"Next page\">&gt;</button>\n"
    "<noscript>Please enable JavaScript</noscript>\n"
    "<svg viewBox=\"0 0 10 10\"><title>svgtitle</title><text>svgtext</text></svg>\n"
    "<template><p>templatetext</p></template>\n"
    "<SCRIPT type=\"text/javascript\">document.write('<p>scriptword2</p>')</SCRIPT >\n"
    "<p>after</p>\n"
    "</div></body></html>\n";

/* A forum thread in several languages, with character references. */
static const char doc_forum[] =
    "<html><head><title>Forum &raquo; Year 9 chat</title></head><body>\n"
    "<div class=\"post\"><span class=\"author\">jess_09</span>\n"
    "<p>i want to <i>kill</i>my<br>self tbh, don&#146;t tell</p></div>\n"
    "<div class=\"post\"><p>Nie chc&#281; &zdot;y&cacute;. Zabi&cacute; si&eogon;</p></div>\n"
    "<div class=\"post\"><p>Je veux me tuer, c&apos;est fini &hellip; &amp; "
    "voil&agrave;</p></div>\n"
    "<div class=\"post\"><p>Rwy&#8217;n teimlo&#39;n drist. Dw i ddim eisiau by&wcirc;</p></div>\n"
    "<div class=\"post\"><p>Vreau s&abreve; mor. &#x219;i &#x21B;ara</p></div>\n"
    "<p>Unknown &bogus; stays, AT&T stays, 5 &lt; 6 and a < b</p>\n"
    "<p>emoji &#x1F62D; &#128546; raw UTF-8: \xc4\x85\xc4\x99 \xf0\x9f\x98\xad</p>\n"
    "<p>k&shy;ill</p>\n"
    "</body></html>\n";

/* A JSON API answer (a video search), keys and numbers are not text. */
static const char doc_json[] =
    "{\"kind\":\"youtube#searchListResponse\",\"pageInfo\":{\"totalResults\":1000000},"
    "\"items\":[{\"id\":{\"videoId\":\"dQw4w9WgXcQ\"},\"snippet\":{"
    "\"title\":\"I feel \\\"hopeless\\\"\\n\",\"description\":\"caf\\u00e9 \\ud83d\\ude2d "
    "self\\u2011harm \\/ help\",\"tags\":[\"sad\",\"help me\"],\"views\":12345,"
    "\"live\":false,\"ratio\":null}}]}";

/* A search suggestion answer as a JSONP call (the shape YouTube's suggest service uses). */
static const char doc_suggest[] =
    "window.google.ac.h([\"how to\",[[\"how to kill myself\",0,[512,433]],"
    "[\"how to draw\",0,[512]]],{\"k\":1,\"q\":\"Xy1_aBc\"}])";

/* Made with: brotli -q 11 -w 22 (doc_forum), brotli -q 5 -w 16 (doc_json), and brotli -q 11 -w 24
 * of 600,000 lines of "<p>hello world kill myself</p>" inside <html><body> (br_bomb). */
static const unsigned char br_forum[] = {
    0x1b, 0x9f, 0x02, 0x00, 0x9c, 0x07, 0xb6, 0x7b, 0x94, 0xa0, 0xb1, 0x60, 0x80, 0xeb, 0x0f, 0x36,
    0xbb, 0x9a, 0x0a, 0xb3, 0x15, 0x9e, 0x1f, 0xce, 0xbd, 0x7e, 0x46, 0xbd, 0x51, 0xd4, 0x88, 0xd3,
    0x01, 0x43, 0xe0, 0xd6, 0x5e, 0x29, 0x05, 0xf6, 0xfa, 0x67, 0x61, 0xe6, 0xa7, 0x9b, 0x0c, 0x63,
    0x86, 0xe1, 0xa5, 0x39, 0xa7, 0xce, 0xa1, 0x3e, 0x00, 0x47, 0xe2, 0xff, 0x5a, 0xe3, 0xbc, 0xf9,
    0x83, 0x46, 0x38, 0xe1, 0x28, 0xe0, 0xdd, 0x70, 0x64, 0x4f, 0x38, 0x73, 0xd7, 0x4f, 0x1e, 0xca,
    0x63, 0xab, 0x1d, 0xd9, 0xcd, 0x03, 0x82, 0x3c, 0x45, 0x43, 0x78, 0x81, 0x0d, 0xd1, 0xea, 0x04,
    0x61, 0x10, 0xbc, 0x35, 0xac, 0x36, 0xe1, 0x67, 0xe3, 0x2e, 0x81, 0xd9, 0xc8, 0x74, 0xc7, 0x4d,
    0xb0, 0x27, 0x2e, 0x64, 0xfc, 0x25, 0xd1, 0x71, 0x48, 0x65, 0xf9, 0xbb, 0x30, 0x64, 0xad, 0xbd,
    0x6c, 0x87, 0x17, 0x6b, 0x0a, 0x8f, 0x77, 0x86, 0x10, 0x06, 0xa1, 0x4a, 0x7a, 0xaa, 0xc1, 0x29,
    0xf1, 0xb6, 0xd2, 0xc1, 0x0c, 0xac, 0x4b, 0xc5, 0xe4, 0xa2, 0xd2, 0x15, 0x38, 0x67, 0x8c, 0xb3,
    0xb7, 0xed, 0x6f, 0xb2, 0x9d, 0x1b, 0x26, 0x98, 0xc0, 0x88, 0xc9, 0xa5, 0x86, 0x21, 0x06, 0xeb,
    0x2a, 0xd9, 0x0b, 0xa3, 0x4c, 0x5d, 0x91, 0x9c, 0xc3, 0x87, 0xd2, 0xac, 0x09, 0x08, 0x25, 0x0b,
    0x72, 0xbe, 0x4b, 0x25, 0xf0, 0xfb, 0x0b, 0x42, 0x43, 0x75, 0x87, 0x84, 0x50, 0xd5, 0x54, 0xcc,
    0xc0, 0x08, 0x95, 0xb9, 0x52, 0x52, 0x59, 0xe1, 0x9f, 0x53, 0x06, 0xa1, 0x89, 0xe7, 0x43, 0x6b,
    0x1c, 0xc7, 0x42, 0xf9, 0x85, 0x6a, 0x08, 0xbf, 0x78, 0x68, 0xfb, 0x28, 0x5b, 0x42, 0x39, 0x45,
    0x45, 0x9c, 0xc4, 0x2e, 0x0a, 0x7e, 0x58, 0x0a, 0x5b, 0x70, 0x59, 0xcd, 0xe1, 0xa8, 0x05, 0xc3,
    0x5a, 0x4e, 0x40, 0x5c, 0xb2, 0xaa, 0xa1, 0x7b, 0xd1, 0x1a, 0x2e, 0x4c, 0x7a, 0xf6, 0x52, 0x90,
    0xaa, 0x51, 0x0a, 0xa5, 0x0b, 0x6a, 0x48, 0x22, 0x71, 0xc5, 0x1c, 0xc4, 0x64, 0xb7, 0xb4, 0x38,
    0x66, 0x61, 0x76, 0x52, 0x15, 0x0a, 0x2b, 0xce, 0x76, 0x0e, 0x8b, 0xb4, 0x85, 0x76, 0x7e, 0x5d,
    0xca, 0x8d, 0xad, 0x71, 0x39, 0x83, 0x7d, 0x04, 0x95, 0xaf, 0x96, 0xbb, 0xb8, 0x92, 0x58, 0x83,
    0x4a, 0x2d, 0x14, 0x3c, 0xe8, 0x0c, 0x01, 0x4a, 0x4a, 0x5c, 0x08, 0xdf, 0x58, 0x3c, 0x59, 0xe3,
    0x4b, 0x09, 0x58, 0x64, 0x87, 0xb2, 0x2a, 0x54, 0x8b, 0xe7, 0x40, 0xf6, 0x16, 0x23, 0xa3, 0xf0,
    0x66, 0xd9, 0x8a, 0x44, 0x19, 0xf4, 0x92, 0x03, 0x50, 0xe9, 0x88, 0x13, 0x39, 0x06,
};
static const unsigned char br_api[] = {
    0xc2, 0x23, 0x00, 0x80, 0xf8, 0x9f, 0x73, 0x2a, 0x9b, 0x7b, 0xb3, 0x25, 0x8c, 0x70, 0x43, 0x4e,
    0x87, 0xf9, 0x2d, 0x0f, 0xc1, 0x6c, 0xa7, 0x33, 0x0d, 0x40, 0xbf, 0x4b, 0xc2, 0xcd, 0x26, 0xdd,
    0xb5, 0x80, 0x1e, 0x82, 0x72, 0x4e, 0xd2, 0x2c, 0xd0, 0x4d, 0x9f, 0x4b, 0x29, 0x12, 0xaa, 0x5f,
    0xc7, 0xf6, 0x2f, 0x8a, 0xec, 0x20, 0xc1, 0x11, 0x93, 0x18, 0xf7, 0x1d, 0xd5, 0x94, 0xa7, 0x56,
    0x76, 0xbd, 0x0d, 0xe8, 0x85, 0xf9, 0x85, 0xa0, 0xe0, 0xb4, 0x4d, 0x08, 0x54, 0x80, 0x7f, 0x31,
    0x43, 0x81, 0xaf, 0xe0, 0x6b, 0x2b, 0x46, 0xfb, 0x2b, 0xf8, 0x0a, 0x29, 0x83, 0x2f, 0xbf, 0xc8,
    0x64, 0x6f, 0xd6, 0xaf, 0x75, 0xf9, 0x47, 0xd9, 0x7f, 0x3a, 0xcf, 0x70, 0x9a, 0xcc, 0xf6, 0x7d,
    0xfc, 0x15, 0x5c, 0x0f, 0xd9, 0xe9, 0x44, 0x37, 0xbd, 0x6b, 0x76, 0x2b, 0x09, 0x1c, 0x75, 0x16,
    0x13, 0x95, 0x4c, 0x80, 0x15, 0x08, 0xb1, 0x80, 0x38, 0x40, 0x81, 0xf7, 0xfc, 0x92, 0x9d, 0xd6,
    0xed, 0x03, 0x1c, 0xfb, 0x6d, 0x2c, 0xee, 0x86, 0x41, 0x21, 0x13, 0x77, 0x19, 0xd8, 0x52, 0xdc,
    0x25, 0x59, 0x92, 0xf1, 0x53, 0x71, 0xbf, 0x00, 0x30, 0x48, 0x30, 0xa1, 0xb3, 0x18, 0x8a, 0x43,
    0x81, 0x7d, 0x52, 0xf0, 0x25, 0xae, 0x5b, 0x89, 0x02, 0xb3, 0x8a, 0x10, 0x29, 0x40, 0x83, 0xf9,
    0x4f, 0x96, 0xed, 0xb8, 0x0a, 0xca, 0xec, 0x41, 0x70, 0xae, 0xe1, 0x12, 0x45, 0x31, 0xf0, 0x78,
    0x4b, 0xff, 0xff, 0xa3, 0x3f,
};
static const unsigned char br_bomb[] = {
    0xcf, 0xff, 0xff, 0x7f, 0x40, 0x8d, 0x93, 0x65, 0x7e, 0x33, 0xa9, 0x5f, 0xda, 0xe0, 0xf2,
    0x24, 0x8f, 0x82, 0x0f, 0x6c, 0xc0, 0x01, 0x7b, 0x3f, 0xc8, 0xba, 0x09, 0x0c, 0x1e, 0xb2,
    0xd4, 0xae, 0x08, 0x36, 0x9a, 0x1c, 0xd0, 0x38, 0x32, 0xd3, 0xc5, 0x26, 0xc4, 0x94, 0xa9,
    0x9b, 0xfa, 0xe3, 0xfd, 0x3f, 0x3a, 0x21, 0xb3, 0xa0, 0x37, 0xf0, 0x4b, 0x00, 0x54, 0x30,
    0x87, 0x15, 0x00, 0xb9, 0x3d, 0x40, 0xde, 0xe0, 0x13, 0x00, 0x00,
};

#define BIG_CAP (1024 * 1024)

/* --- helpers ----------------------------------------------------------------------------- */

struct run {
    char *text; /* everything drained, NUL terminated */
    size_t len;
    int rc_feed;   /* last extract_feed() result */
    int rc_finish; /* extract_finish() result */
    char err[128];
    size_t total, decoded, memory;
};

static void run_free(struct run *r)
{
    free(r->text);
    memset(r, 0, sizeof(*r));
}

/* Take what the extractor hands out; before the end only whole words come out. */
static void drain(struct extract *x, struct run *r, int at_end)
{
    size_t n;
    const char *t = extract_text(x, &n);

    if (n == 0)
        return;
    if (!at_end && r->rc_feed == 0 && t[n - 1] != ' ')
        fail_msg("a word was cut before the end: '%.*s'", (int)n, t);
    r->text = realloc(r->text, r->len + n + 1);
    assert_non_null(r->text);
    memcpy(r->text + r->len, t, n);
    r->len += n;
    r->text[r->len] = '\0';
    extract_consume(x, n);
    extract_text(x, &n);
    assert_int_equal(n, 0);
}

/*
 * Feed data in pieces: the first piece is `first` bytes (if not 0), then
 * pieces of `step` bytes (0: all the rest at once). Drain after each.
 */
static void run(struct run *r, enum extract_type t, enum extract_coding c, size_t cap,
                const void *data, size_t n, size_t first, size_t step)
{
    struct extract *x = extract_new(t, c, cap);
    const unsigned char *p = data;
    size_t off = 0;

    memset(r, 0, sizeof(*r));
    r->text = calloc(1, 1);
    assert_non_null(x);
    while (off < n) {
        size_t k = off == 0 && first ? first : (step ? step : n - off);
        if (k > n - off)
            k = n - off;
        r->rc_feed = extract_feed(x, p + off, k);
        drain(x, r, 0);
        off += k;
        if (r->rc_feed < 0)
            break;
    }
    r->rc_finish = extract_finish(x);
    drain(x, r, 1);
    if (extract_error(x))
        snprintf(r->err, sizeof(r->err), "%s", extract_error(x));
    r->total = extract_total(x);
    r->decoded = extract_decoded(x);
    r->memory = extract_memory(x);
    extract_free(x);
}

/* The text of a whole body fed at once. */
static char *text_of(enum extract_type t, enum extract_coding c, const void *data, size_t n)
{
    struct run r;
    char *s;

    run(&r, t, c, BIG_CAP, data, n, 0, 0);
    assert_int_equal(r.rc_feed, 0);
    assert_int_equal(r.rc_finish, 0);
    assert_int_equal(r.total, r.len);
    s = r.text;
    r.text = NULL;
    return s;
}

/* The same text however the body is split: at every position, in 1 and 7 byte pieces. */
static void check_splits(enum extract_type t, enum extract_coding c, const void *data, size_t n,
                         const char *want)
{
    struct run r;

    for (size_t i = 1; i < n; i++) {
        run(&r, t, c, BIG_CAP, data, n, i, 0);
        if (strcmp(r.text, want) != 0)
            fail_msg("split at %zu: got '%s' want '%s'", i, r.text, want);
        assert_int_equal(r.rc_finish, 0);
        run_free(&r);
    }
    for (size_t step = 1; step <= 7; step += 6) {
        run(&r, t, c, BIG_CAP, data, n, 0, step);
        if (strcmp(r.text, want) != 0)
            fail_msg("%zu-byte pieces: got '%s' want '%s'", step, r.text, want);
        assert_int_equal(r.rc_finish, 0);
        run_free(&r);
    }
}

static void expect_text(enum extract_type t, const char *in, const char *want)
{
    char *got = text_of(t, EXTRACT_IDENTITY, in, strlen(in));

    if (strcmp(got, want) != 0)
        fail_msg("'%s': got '%s' want '%s'", in, got, want);
    check_splits(t, EXTRACT_IDENTITY, in, strlen(in), want);
    free(got);
}

/* Compress with zlib: windowBits 15 (zlib), 16 + 15 (gzip) or -15 (raw deflate). */
static unsigned char *zpack(const void *data, size_t n, int window_bits, size_t *out_len)
{
    z_stream zs;
    size_t cap = n + n / 10 + 64;
    unsigned char *out = malloc(cap);

    assert_non_null(out);
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

/* --- content type and coding ------------------------------------------------------------- */

static void test_type_of(void **state)
{
    static const struct {
        const char *ct;
        enum extract_type want;
    } cases[] = {
        {"text/html", EXTRACT_HTML},
        {"text/html; charset=utf-8", EXTRACT_HTML},
        {"  TEXT/HTML ;charset=UTF-8", EXTRACT_HTML},
        {"application/xhtml+xml", EXTRACT_HTML},
        {"text/plain", EXTRACT_TEXT},
        {"Text/Plain; charset=iso-8859-1", EXTRACT_TEXT},
        {"application/json", EXTRACT_JSON},
        {"application/json; charset=utf-8", EXTRACT_JSON},
        {"text/json", EXTRACT_JSON},
        {"application/ld+json", EXTRACT_JSON},
        {"application/vnd.api+json", EXTRACT_JSON},
        {"application/+json", EXTRACT_NONE},
        {"image/svg+json", EXTRACT_NONE},
        {"image/png", EXTRACT_NONE},
        {"video/mp4", EXTRACT_NONE},
        {"text/css", EXTRACT_NONE},
        {"text/javascript", EXTRACT_NONE},
        {"application/javascript", EXTRACT_NONE},
        {"application/octet-stream", EXTRACT_NONE},
        {"text/htmlx", EXTRACT_NONE},
        {"text", EXTRACT_NONE},
        {"", EXTRACT_NONE},
    };

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        enum extract_type got = extract_type_of(cases[i].ct, strlen(cases[i].ct));
        if (got != cases[i].want)
            fail_msg("'%s': got %d want %d", cases[i].ct, (int)got, (int)cases[i].want);
    }
    assert_int_equal(extract_type_of(NULL, 0), EXTRACT_NONE);
    /* the length is honoured: no NUL needed */
    assert_int_equal(extract_type_of("text/plainXXX", 10), EXTRACT_TEXT);
}

static void test_coding_of(void **state)
{
    static const struct {
        const char *ce;
        enum extract_coding want;
    } cases[] = {
        {"", EXTRACT_IDENTITY},
        {"identity", EXTRACT_IDENTITY},
        {" Identity ", EXTRACT_IDENTITY},
        {"gzip", EXTRACT_GZIP},
        {"GZIP", EXTRACT_GZIP},
        {"x-gzip", EXTRACT_GZIP},
        {"deflate", EXTRACT_DEFLATE},
        {"br", EXTRACT_BR},
        {" br ", EXTRACT_BR},
        {"gzip, identity", EXTRACT_GZIP},
        {"gzip, br", EXTRACT_UNSUPPORTED},
        {"deflate,gzip", EXTRACT_UNSUPPORTED},
        {"zstd", EXTRACT_UNSUPPORTED},
        {"compress", EXTRACT_UNSUPPORTED},
        {"gzip2", EXTRACT_UNSUPPORTED},
    };

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        enum extract_coding got = extract_coding_of(cases[i].ce, strlen(cases[i].ce));
        if (got != cases[i].want)
            fail_msg("'%s': got %d want %d", cases[i].ce, (int)got, (int)cases[i].want);
    }
    assert_int_equal(extract_coding_of(NULL, 0), EXTRACT_IDENTITY);
}

/* --- pages ------------------------------------------------------------------------------- */

static const char want_search[] =
    "how to tie a noose - Search Results for \"how to tie a noose\" Search the web Samaritans "
    "\xe2\x80\x93 call 116 123 If you\xe2\x80\x99re feeling low , talk to someone. Caf\xc3\xa9 "
    "d\xc3\xa9j\xc3\xa0 vu. a person holding a rope Next page > after ";

static const char want_forum[] =
    "Forum \xc2\xbb Year 9 chat jess_09 i want to kill my self tbh, don\xe2\x80\x99t tell "
    "Nie chc\xc4\x99 \xc5\xbcy\xc4\x87. Zabi\xc4\x87 si\xc4\x99 "
    "Je veux me tuer, c'est fini \xe2\x80\xa6 & voil\xc3\xa0 "
    "Rwy\xe2\x80\x99n teimlo'n drist. Dw i ddim eisiau by\xc5\xb5 "
    "Vreau s\xc4\x83 mor. \xc8\x99i \xc8\x9b"
    "ara "
    "Unknown &bogus; stays, AT&T stays, 5 < 6 and a < b "
    "emoji \xf0\x9f\x98\xad \xf0\x9f\x98\xa2 raw UTF-8: \xc4\x85\xc4\x99 \xf0\x9f\x98\xad "
    "k\xc2\xadill ";

static const char want_json[] =
    "youtube#searchListResponse dQw4w9WgXcQ I feel \"hopeless\" caf\xc3\xa9 \xf0\x9f\x98\xad "
    "self\xe2\x80\x91harm / help sad help me ";

static const char want_suggest[] = "how to how to kill myself how to draw Xy1_aBc ";

static void test_search_page(void **state)
{
    char *t = text_of(EXTRACT_HTML, EXTRACT_IDENTITY, doc_search, sizeof(doc_search) - 1);

    (void)state;
    assert_string_equal(t, want_search);
    /* what a pupil never sees is not text */
    assert_false(contains(t, "scriptword"));
    assert_false(contains(t, "kill"));        /* a CSS class in <style> */
    assert_false(contains(t, "RSS"));         /* <link title> in <head> */
    assert_false(contains(t, "hiddenvalue")); /* value= is not one of the text attributes */
    assert_false(contains(t, "JavaScript"));  /* <noscript> */
    assert_false(contains(t, "svg"));
    assert_false(contains(t, "templatetext"));
    assert_false(contains(t, "results start"));
    assert_false(contains(t, "viewport"));
    free(t);
}

static void test_forum_page(void **state)
{
    char *t = text_of(EXTRACT_HTML, EXTRACT_IDENTITY, doc_forum, sizeof(doc_forum) - 1);

    (void)state;
    assert_string_equal(t, want_forum);
    free(t);
}

static void test_json_answers(void **state)
{
    char *t = text_of(EXTRACT_JSON, EXTRACT_IDENTITY, doc_json, sizeof(doc_json) - 1);

    (void)state;
    assert_string_equal(t, want_json);
    assert_false(contains(t, "kind"));
    assert_false(contains(t, "12345"));
    assert_false(contains(t, "false"));
    free(t);
    t = text_of(EXTRACT_JSON, EXTRACT_IDENTITY, doc_suggest, sizeof(doc_suggest) - 1);
    assert_string_equal(t, want_suggest);
    free(t);
}

static void test_pages_split_anywhere(void **state)
{
    (void)state;
    check_splits(EXTRACT_HTML, EXTRACT_IDENTITY, doc_search, sizeof(doc_search) - 1, want_search);
    check_splits(EXTRACT_HTML, EXTRACT_IDENTITY, doc_forum, sizeof(doc_forum) - 1, want_forum);
    check_splits(EXTRACT_JSON, EXTRACT_IDENTITY, doc_json, sizeof(doc_json) - 1, want_json);
    check_splits(EXTRACT_JSON, EXTRACT_IDENTITY, doc_suggest, sizeof(doc_suggest) - 1,
                 want_suggest);
}

/* --- HTML details ----------------------------------------------------------------------- */

static void test_html_details(void **state)
{
    (void)state;
    expect_text(EXTRACT_HTML, "<b>kill</b>my<br>self", "kill my self");
    expect_text(EXTRACT_HTML, "x<script>a='</scr'+'ipt>'; kill()</script>y", "x y");
    expect_text(EXTRACT_HTML, "x<script>if (a</b) w()</script >y", "x y");
    expect_text(EXTRACT_HTML, "a<ScRiPt>hide</sCrIpT>b<STYLE>p{}</STYLE>c", "a b c");
    expect_text(EXTRACT_HTML, "a<script>never closed", "a ");
    expect_text(EXTRACT_HTML, "a<scripts>shown</scripts>b", "a shown b");
    expect_text(EXTRACT_HTML, "a<!-- kill -->b<!---->c<!-->d<!--->e", "a b c d e");
    expect_text(EXTRACT_HTML, "a<!-- x -- y --!>z -->b", "a b");
    expect_text(EXTRACT_HTML, "<!DOCTYPE html><?xml version='1.0'?>a<!x>b", "a b");
    expect_text(EXTRACT_HTML, "a < b, c <3 d", "a < b, c <3 d");
    expect_text(EXTRACT_HTML, "a </ b> c</>d", "a cd"); /* "</>" is nothing, as in HTML5 */
    expect_text(EXTRACT_HTML, "end <", "end <");
    expect_text(EXTRACT_HTML, "<svg/>shown<svg><g/>hidden</svg>after", "shown after");
    expect_text(EXTRACT_HTML, "<img alt=rope><img alt='a&amp;b'><img\nALT = \"x y\" >",
                "rope a&b x y ");
    expect_text(EXTRACT_HTML, "<input placeholder=\"search\" value=\"no\" title=t aria-label=l>",
                "search t l ");
    expect_text(EXTRACT_HTML, "<a href=\"/kill\" class=kill data-title=kill alt>x</a>", "x ");
    expect_text(EXTRACT_HTML, "<meta content=\"said &lt;hi&gt;\" NAME=Description>", "said <hi> ");
    expect_text(EXTRACT_HTML, "<meta name=\"keywords\" content=\"kill\"><p>x", "x");
    expect_text(EXTRACT_HTML, "<head><title>T</title><link title=hidden>stray</head>b",
                "T stray b");
    expect_text(EXTRACT_HTML, "<head><meta charset=utf-8><img alt=shown>", "shown ");
    expect_text(EXTRACT_HTML, "<averyveryverylongtagname alt=x>y", "x y");
    expect_text(EXTRACT_HTML, "<p\n\tclass='a\"b'\ntitle=\"c'd\"/>", "c'd ");
    /* character references */
    expect_text(EXTRACT_HTML, "&amp;&lt;&gt;&quot;&apos;", "&<>\"'");
    expect_text(EXTRACT_HTML, "a&nbsp;b&#32;c&#x20;d", "a b c d");
    expect_text(EXTRACT_HTML, "&#65;&#x42;&#X43;&#68&#x45 x", "ABCDE x");
    expect_text(EXTRACT_HTML, "&#0;&#xD800;&#x110000;&#99999999999;",
                "\xef\xbf\xbd\xef\xbf\xbd"
                "\xef\xbf\xbd\xef\xbf\xbd");
    expect_text(EXTRACT_HTML, "don&#146;t &#150; &#128;",
                "don\xe2\x80\x99t \xe2\x80\x93 "
                "\xe2\x82\xac");
    expect_text(EXTRACT_HTML, "&amp &unknown; &#; &#x; &;&", "&amp &unknown; &#; &#x; &;&");
    expect_text(EXTRACT_HTML, "&AMP; &Eacute;&eacute;", "&AMP; \xc3\x89\xc3\xa9");
    expect_text(EXTRACT_HTML, "&ccedil;&atilde;&otilde;&ntilde;&iquest;&iexcl;",
                "\xc3\xa7\xc3\xa3\xc3\xb5\xc3\xb1\xc2\xbf\xc2\xa1");
    expect_text(EXTRACT_HTML, "&lstrok;&Lstrok;&sacute;&zacute;&nacute;&oacute;",
                "\xc5\x82\xc5\x81\xc5\x9b\xc5\xba\xc5\x84\xc3\xb3");
    expect_text(EXTRACT_HTML, "&acirc;&icirc;&scedil;&tcedil;&ycirc;&Wcirc;",
                "\xc3\xa2\xc3\xae\xc5\x9f\xc5\xa3\xc5\xb7\xc5\xb4");
    expect_text(EXTRACT_HTML, "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;",
                "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;");
    expect_text(EXTRACT_HTML, "end &eacute", "end &eacute");
    /* whitespace and controls collapse into one space; invalid UTF-8 passes through */
    expect_text(EXTRACT_HTML,
                "  a \r\n\t b\x01\x7f"
                "c  ",
                "a b c ");
    expect_text(EXTRACT_HTML, "bad \xff\xc3 bytes", "bad \xff\xc3 bytes");
}

/* --- JSON details ----------------------------------------------------------------------- */

static void test_json_details(void **state)
{
    (void)state;
    expect_text(EXTRACT_JSON, "{\"a\":[\"x\",{\"b\":\"y\"}],\"c\":\"z\"}", "x y z ");
    expect_text(EXTRACT_JSON, "[{\"k\":\"v\"},\"w\",1.5e3,true,null]", "v w ");
    expect_text(EXTRACT_JSON, "{\"a\":{\"b\":{}},\"key\":\"value\"}", "value ");
    expect_text(EXTRACT_JSON, "\"top\"", "top ");
    expect_text(EXTRACT_JSON, "[\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"]",
                "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 ");
    expect_text(EXTRACT_JSON, "[\"\\ud83d\", \"\\ude00\", \"\\ud83dx\", \"\\ud83d\\n\"]",
                "\xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbdx \xef\xbf\xbd ");
    expect_text(EXTRACT_JSON, "[\"\\ud83d\\u0041\"]",
                "\xef\xbf\xbd"
                "A ");
    expect_text(EXTRACT_JSON, "[\"a\\tb\\\\c\\/d\\\"e\\qf\"]", "a b\\c/d\"eqf ");
    expect_text(EXTRACT_JSON, "[\"\\u12g\"]", "\xef\xbf\xbdg ");
    /* malformed: never fails, outputs what strings it can */
    expect_text(EXTRACT_JSON, ")]}'\n[\"safe\",\"guard\"]", "safe guard ");
    expect_text(EXTRACT_JSON, "{\"a\":\"unterminated", "unterminated");
    expect_text(EXTRACT_JSON, "}}]]{\"x\" \"y\"}", "y ");
    expect_text(EXTRACT_JSON, "[\"\\ud83d", "\xef\xbf\xbd");
    expect_text(EXTRACT_JSON, "callback({\"html\":\"<b>kill</b>\"})", "<b>kill</b> ");
}

static void test_plain_text(void **state)
{
    (void)state;
    expect_text(EXTRACT_TEXT, "hello\x01world\r\n\tkill <b>", "hello world kill <b>");
    /* a control character in the middle is a space: strlen stops at the NUL above, so feed it */
    {
        static const char in[] = "a\0b";
        char *t = text_of(EXTRACT_TEXT, EXTRACT_IDENTITY, in, 3);
        assert_string_equal(t, "a b");
        free(t);
    }
}

/* Only whole words are handed out before the end; the last partial word comes at finish. */
static void test_whole_words(void **state)
{
    struct extract *x = extract_new(EXTRACT_HTML, EXTRACT_IDENTITY, 1000);
    const char *t;
    size_t n;

    (void)state;
    assert_int_equal(extract_feed(x, "hello wor", 9), 0);
    t = extract_text(x, &n);
    assert_int_equal(n, 6);
    assert_memory_equal(t, "hello ", 6);
    assert_int_equal(extract_total(x), 9);
    extract_consume(x, 2);
    t = extract_text(x, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(t, "llo ", 4);
    extract_consume(x, 100); /* more than there is: all of it */
    assert_int_equal(extract_feed(x, "ld<b>x", 6), 0);
    t = extract_text(x, &n);
    assert_int_equal(n, 6);
    assert_memory_equal(t, "world ", 6);
    extract_consume(x, n);
    assert_int_equal(extract_finish(x), 0);
    t = extract_text(x, &n);
    assert_int_equal(n, 1);
    assert_memory_equal(t, "x", 1);
    assert_null(extract_error(x));
    extract_free(x);

    /* a "word" longer than EXTRACT_WORD_HOLD is handed out anyway */
    {
        char big[EXTRACT_WORD_HOLD + 10];
        memset(big, 'a', sizeof(big));
        x = extract_new(EXTRACT_TEXT, EXTRACT_IDENTITY, 10000);
        assert_int_equal(extract_feed(x, big, sizeof(big)), 0);
        extract_text(x, &n);
        assert_true(n >= EXTRACT_WORD_HOLD);
        extract_free(x);
    }
}

/* --- content codings -------------------------------------------------------------------- */

static void check_zlib(const char *doc, size_t n, enum extract_type t, const char *want)
{
    static const struct {
        int bits;
        enum extract_coding coding;
    } forms[] = {
        {16 + 15, EXTRACT_GZIP},
        {15, EXTRACT_DEFLATE},  /* zlib-wrapped, as the RFC says */
        {-15, EXTRACT_DEFLATE}, /* raw, as some servers send and browsers accept */
    };

    for (size_t i = 0; i < HAVEN_ARRAY_LEN(forms); i++) {
        size_t len;
        unsigned char *z = zpack(doc, n, forms[i].bits, &len);
        char *got = text_of(t, forms[i].coding, z, len);
        assert_string_equal(got, want);
        check_splits(t, forms[i].coding, z, len, want);
        free(got);
        free(z);
    }
}

static void test_gzip_and_deflate(void **state)
{
    (void)state;
    check_zlib(doc_search, sizeof(doc_search) - 1, EXTRACT_HTML, want_search);
    check_zlib(doc_forum, sizeof(doc_forum) - 1, EXTRACT_HTML, want_forum);
    check_zlib(doc_json, sizeof(doc_json) - 1, EXTRACT_JSON, want_json);
}

static void test_brotli(void **state)
{
    char *got;

    (void)state;
    got = text_of(EXTRACT_HTML, EXTRACT_BR, br_forum, sizeof(br_forum));
    assert_string_equal(got, want_forum);
    free(got);
    check_splits(EXTRACT_HTML, EXTRACT_BR, br_forum, sizeof(br_forum), want_forum);
    got = text_of(EXTRACT_JSON, EXTRACT_BR, br_api, sizeof(br_api));
    assert_string_equal(got, want_json);
    free(got);
    check_splits(EXTRACT_JSON, EXTRACT_BR, br_api, sizeof(br_api), want_json);
}

/* An empty body is fine in any coding (a 204, or an empty compressed file). */
static void test_empty_bodies(void **state)
{
    static const enum extract_coding codings[] = {EXTRACT_IDENTITY, EXTRACT_GZIP, EXTRACT_DEFLATE,
                                                  EXTRACT_BR};

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(codings); i++) {
        struct run r;
        run(&r, EXTRACT_HTML, codings[i], 100, "", 0, 0, 0);
        assert_int_equal(r.rc_finish, 0);
        assert_int_equal(r.len, 0);
        run_free(&r);
    }
}

/* --- caps ------------------------------------------------------------------------------- */

static void test_text_cap(void **state)
{
    struct extract *x;
    const char *t;
    size_t n;

    (void)state;
    x = extract_new(EXTRACT_HTML, EXTRACT_IDENTITY, 30);
    assert_int_equal(extract_feed(x, doc_forum, sizeof(doc_forum) - 1), 1);
    assert_int_equal(extract_total(x), 30);
    t = extract_text(x, &n);
    assert_int_equal(n, 30);
    assert_memory_equal(t, want_forum, 30);
    /* further input is ignored */
    assert_int_equal(extract_feed(x, "more words", 10), 1);
    assert_int_equal(extract_finish(x), 1);
    assert_int_equal(extract_total(x), 30);
    assert_null(extract_error(x));
    extract_free(x);

    /* the same cap when the body comes compressed and in small pieces */
    {
        size_t len;
        unsigned char *z = zpack(doc_forum, sizeof(doc_forum) - 1, 16 + 15, &len);
        struct run r;
        run(&r, EXTRACT_HTML, EXTRACT_GZIP, 30, z, len, 0, 3);
        assert_int_equal(r.rc_feed, 1);
        assert_int_equal(r.rc_finish, 1);
        assert_int_equal(r.len, 30);
        assert_memory_equal(r.text, want_forum, 30);
        run_free(&r);
        free(z);
    }

    /* a cap of 0 gives nothing */
    x = extract_new(EXTRACT_TEXT, EXTRACT_IDENTITY, 0);
    assert_int_equal(extract_feed(x, "abc", 3), 1);
    assert_int_equal(extract_total(x), 0);
    extract_free(x);
}

/* 100 MB of zeros, gzip-compressed (about 100 KB): decoding stops at the input cap. */
static void test_gzip_bomb(void **state)
{
    static unsigned char zeros[1024 * 1024];
    size_t cap = 1024 * 1024, len = 0, fed = 0;
    unsigned char *z = malloc(cap);
    z_stream zs;
    struct extract *x;
    int rc = 0;

    (void)state;
    assert_non_null(z);
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_out = z;
    zs.avail_out = (uInt)cap;
    for (int i = 0; i < 100; i++) {
        zs.next_in = zeros;
        zs.avail_in = sizeof(zeros);
        assert_int_equal(deflate(&zs, i == 99 ? Z_FINISH : Z_NO_FLUSH),
                         i == 99 ? Z_STREAM_END : Z_OK);
    }
    len = zs.total_out;
    deflateEnd(&zs);
    assert_true(zs.total_in == 100u * sizeof(zeros));

    x = extract_new(EXTRACT_TEXT, EXTRACT_GZIP, 4096);
    while (fed < len && rc == 0) {
        size_t k = len - fed < 1024 ? len - fed : 1024;
        rc = extract_feed(x, z + fed, k);
        fed += k;
    }
    assert_int_equal(rc, 1);
    assert_true(fed < len / 10);                       /* stopped early */
    assert_int_equal(extract_decoded(x), 1024 * 1024); /* max(8 x 4096, 1 MiB) */
    assert_int_equal(extract_total(x), 0);             /* zeros are no words */
    assert_true(extract_memory(x) < 64 * 1024);
    assert_int_equal(extract_feed(x, z + fed, len - fed), 1);
    assert_int_equal(extract_finish(x), 1);
    extract_free(x);

    /* with a large text cap the input cap is 8 x text_cap */
    x = extract_new(EXTRACT_HTML, EXTRACT_GZIP, 256 * 1024);
    assert_int_equal(extract_feed(x, z, len), 1);
    assert_int_equal(extract_decoded(x), 8 * 256 * 1024);
    extract_free(x);
    free(z);
}

/* 18.6 MB of HTML in 71 bytes of brotli with a 16 MiB window: the text cap stops it. */
static void test_brotli_bomb(void **state)
{
    struct run r;

    (void)state;
    run(&r, EXTRACT_HTML, EXTRACT_BR, 4096, br_bomb, sizeof(br_bomb), 0, 0);
    assert_int_equal(r.rc_feed, 1);
    assert_int_equal(r.rc_finish, 1);
    assert_int_equal(r.len, 4096);
    assert_true(r.decoded <= 1024 * 1024);
    assert_true(strncmp(r.text, "hello world kill myself hello world kill myself ", 48) == 0);
    run_free(&r);
}

/* --- errors ----------------------------------------------------------------------------- */

static void test_corrupt_data(void **state)
{
    struct run r;
    size_t len;
    unsigned char *z;
    unsigned char bad[sizeof(br_forum)];

    (void)state;
    run(&r, EXTRACT_HTML, EXTRACT_GZIP, 1000, "this is not gzip", 16, 0, 0);
    assert_int_equal(r.rc_feed, -1);
    assert_int_equal(r.rc_finish, -1);
    assert_string_equal(r.err, "corrupt gzip data: incorrect header check");
    run_free(&r);

    /* damage in the middle: the text before the damage stays */
    z = zpack(doc_forum, sizeof(doc_forum) - 1, 16 + 15, &len);
    memset(z + len / 2, 0xff, 16);
    run(&r, EXTRACT_HTML, EXTRACT_GZIP, 10000, z, len, 0, 0);
    assert_int_equal(r.rc_feed, -1);
    assert_true(strncmp(r.err, "corrupt gzip data: ", 19) == 0);
    free(z);
    run_free(&r);

    /* a wrong checksum in the trailer */
    z = zpack(doc_forum, sizeof(doc_forum) - 1, 16 + 15, &len);
    z[len - 8] ^= 1;
    run(&r, EXTRACT_HTML, EXTRACT_GZIP, 10000, z, len, 0, 0);
    assert_int_equal(r.rc_feed, -1);
    assert_string_equal(r.err, "corrupt gzip data: incorrect data check");
    assert_string_equal(r.text, want_forum); /* all the text came out before the trailer */
    free(z);
    run_free(&r);

    /* cut short: an error at finish, the text decoded so far stays */
    z = zpack(doc_forum, sizeof(doc_forum) - 1, 16 + 15, &len);
    run(&r, EXTRACT_HTML, EXTRACT_GZIP, 10000, z, len - 20, 0, 0);
    assert_int_equal(r.rc_feed, 0);
    assert_int_equal(r.rc_finish, -1);
    assert_string_equal(r.err, "gzip data truncated");
    assert_true(strncmp(r.text, "Forum", 5) == 0);
    free(z);
    run_free(&r);

    run(&r, EXTRACT_HTML, EXTRACT_DEFLATE, 1000, "\x78\x9c garbage garbage", 18, 0, 0);
    assert_int_equal(r.rc_feed, -1);
    assert_true(strncmp(r.err, "corrupt deflate data: ", 22) == 0);
    run_free(&r);

    /* one byte of a deflate body, then the end */
    run(&r, EXTRACT_HTML, EXTRACT_DEFLATE, 1000, "\x78", 1, 0, 0);
    assert_int_equal(r.rc_finish, -1);
    assert_string_equal(r.err, "deflate data truncated");
    run_free(&r);

    memcpy(bad, br_forum, sizeof(bad));
    memset(bad + 40, 0x55, 30);
    run(&r, EXTRACT_HTML, EXTRACT_BR, 10000, bad, sizeof(bad), 0, 0);
    assert_int_equal(r.rc_feed, -1);
    assert_true(strncmp(r.err, "corrupt brotli data: ", 21) == 0);
    run_free(&r);

    run(&r, EXTRACT_HTML, EXTRACT_BR, 10000, "\xff\xff\xff\xff", 4, 0, 0);
    assert_int_equal(r.rc_feed, -1);
    assert_true(strncmp(r.err, "corrupt brotli data: ", 21) == 0);
    run_free(&r);

    run(&r, EXTRACT_HTML, EXTRACT_BR, 10000, br_forum, sizeof(br_forum) / 2, 0, 0);
    assert_int_equal(r.rc_finish, -1);
    assert_string_equal(r.err, "brotli data truncated");
    run_free(&r);
}

/* After an error the extractor stays in error and ignores its input. */
static void test_error_sticks(void **state)
{
    struct extract *x = extract_new(EXTRACT_TEXT, EXTRACT_GZIP, 1000);
    size_t n;

    (void)state;
    assert_int_equal(extract_feed(x, "nope", 4), -1);
    assert_non_null(extract_error(x));
    assert_int_equal(extract_feed(x, "\x1f\x8b", 2), -1);
    assert_int_equal(extract_finish(x), -1);
    extract_text(x, &n);
    assert_int_equal(n, 0);
    extract_free(x);
}

static void test_none_and_unsupported(void **state)
{
    struct extract *x;
    size_t n;

    (void)state;
    x = extract_new(EXTRACT_NONE, EXTRACT_GZIP, 1000);
    assert_int_equal(extract_feed(x, "\x89PNG", 4), 0);
    assert_int_equal(extract_finish(x), 0);
    extract_text(x, &n);
    assert_int_equal(n, 0);
    assert_null(extract_error(x));
    extract_free(x);

    x = extract_new(EXTRACT_HTML, EXTRACT_UNSUPPORTED, 1000);
    assert_int_equal(extract_feed(x, "<p>x", 4), -1);
    assert_string_equal(extract_error(x), "unsupported content coding");
    assert_int_equal(extract_finish(x), -1);
    extract_free(x);

    x = extract_new(EXTRACT_HTML, EXTRACT_UNSUPPORTED, 1000);
    assert_int_equal(extract_finish(x), -1);
    extract_free(x);

    extract_free(NULL);
}

/* Memory per extractor stays small: the state, the text and the decoder. */
static void test_memory(void **state)
{
    size_t len;
    unsigned char *z = zpack(doc_search, sizeof(doc_search) - 1, 16 + 15, &len);
    struct run r;

    (void)state;
    run(&r, EXTRACT_HTML, EXTRACT_GZIP, 65536, z, len, 0, 0);
    assert_int_equal(r.rc_finish, 0);
    assert_true(r.memory < 64 * 1024);
    run_free(&r);
    run(&r, EXTRACT_HTML, EXTRACT_BR, 65536, br_forum, sizeof(br_forum), 0, 0);
    assert_true(r.memory < 128 * 1024);
    run_free(&r);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_of),
        cmocka_unit_test(test_coding_of),
        cmocka_unit_test(test_search_page),
        cmocka_unit_test(test_forum_page),
        cmocka_unit_test(test_json_answers),
        cmocka_unit_test(test_pages_split_anywhere),
        cmocka_unit_test(test_html_details),
        cmocka_unit_test(test_json_details),
        cmocka_unit_test(test_plain_text),
        cmocka_unit_test(test_whole_words),
        cmocka_unit_test(test_gzip_and_deflate),
        cmocka_unit_test(test_brotli),
        cmocka_unit_test(test_empty_bodies),
        cmocka_unit_test(test_text_cap),
        cmocka_unit_test(test_gzip_bomb),
        cmocka_unit_test(test_brotli_bomb),
        cmocka_unit_test(test_corrupt_data),
        cmocka_unit_test(test_error_sticks),
        cmocka_unit_test(test_none_and_unsupported),
        cmocka_unit_test(test_memory),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
