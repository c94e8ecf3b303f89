/*
 * Unit tests: TLS ClientHello peek parser (tls/hello.c).
 *
 * Two sources of hellos:
 *  - Real captures in tests/data/tls/ (*.bin): what openssl s_client, curl and Python's ssl
 *    module sent to a loopback listener (tests/data/tls/README.md says how they were made).
 *    Two of them are over 16 KiB, so OpenSSL itself split them into 2 and 3 records.
 *  - Hellos built here by build_hello() from a struct spec, which records where each length
 *    field went so that a test can break exactly one of them.
 * Every malformed input is also parsed at every prefix, from an exactly sized copy (so ASan
 * sees a read past the end): each prefix must give HELLO_NEED_MORE or the same error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include "tls/hello.h"

/* ---- loading the captures ---- */

struct capture {
    const char *file;
    const char *sni; /* expected sni, "" for none */
    bool has_sni, h2, http11, other, has_alpn, tls13;
    size_t records;
};

static const struct capture captures[] = {
    {"openssl-tls13-sni-alpn.bin", "www.example.com", true, true, true, false, true, true, 1},
    {"openssl-tls12-sni.bin", "www.example.com", true, false, false, false, false, false, 1},
    {"openssl-tls13-only.bin", "example.org", true, false, true, false, true, true, 1},
    {"openssl-no-sni.bin", "", false, false, false, false, false, true, 1},
    {"openssl-upper-sni.bin", "www.example.com", true, true, false, false, true, true, 1},
    {"curl-h2.bin", "www.bbc.co.uk", true, true, true, false, true, true, 1},
    {"curl-http11.bin", "news.example.net", true, false, true, false, true, false, 1},
    {"python-ssl.bin", "mail.example.ac.uk", true, false, true, false, true, true, 1},
    {"openssl-big-2records.bin", "big.example.com", true, true, true, true, true, true, 2},
    {"openssl-big-3records.bin", "big3.example.com", true, true, false, true, true, true, 3},
};

static uint8_t *load(const char *file, size_t *len)
{
    char path[1024];
    uint8_t *data;
    FILE *f;
    long n;

    snprintf(path, sizeof(path), "%s/tests/data/tls/%s", HAVEN_SOURCE_DIR, file);
    f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    data = malloc((size_t)n);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return data;
}

/* ---- parsing helpers ---- */

/* Parse from an exactly sized copy, so that ASan catches a read past len. */
static enum hello_status parse_copy(const uint8_t *in, size_t len, struct hello *h, char *err,
                                    size_t errlen)
{
    uint8_t *copy = malloc(len ? len : 1);
    enum hello_status st;

    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, in, len);
    st = hello_parse(len ? copy : NULL, len, h, err, errlen);
    free(copy);
    return st;
}

static enum hello_status parse(const uint8_t *in, size_t len, struct hello *h)
{
    char err[256];

    return parse_copy(in, len, h, err, sizeof(err));
}

/* Every prefix shorter than len must be NEED_MORE with an empty message and a zeroed *out. */
static void expect_prefixes_need_more(const uint8_t *in, size_t len, size_t stride)
{
    static const struct hello zero;
    struct hello h;
    char err[256];

    for (size_t k = 0; k < len; k += (k < 64 ? 1 : stride)) {
        enum hello_status st = parse_copy(in, k, &h, err, sizeof(err));
        if (st != HELLO_NEED_MORE)
            fail_msg("prefix of %zu/%zu bytes: %s (%s), want need more", k, len,
                     hello_status_name(st), err);
        assert_string_equal(err, "");
        assert_memory_equal(&h, &zero, sizeof(h));
    }
}

/*
 * The whole input is malformed with a message containing want; every prefix is NEED_MORE or
 * the very same error, and the result is all zero.
 */
static void expect_malformed(const uint8_t *in, size_t len, const char *want)
{
    static const struct hello zero;
    char err[256], perr[256];
    struct hello h;
    enum hello_status st = parse_copy(in, len, &h, err, sizeof(err));

    if (st != HELLO_MALFORMED)
        fail_msg("want malformed \"%s\", got %s (%s)", want, hello_status_name(st), err);
    if (!strstr(err, want))
        fail_msg("message \"%s\" does not contain \"%s\"", err, want);
    assert_memory_equal(&h, &zero, sizeof(h));
    for (size_t k = 0; k < len; k += (len < 2000 ? 1 : 61)) {
        st = parse_copy(in, k, &h, perr, sizeof(perr));
        if (st == HELLO_NEED_MORE)
            continue;
        if (st != HELLO_MALFORMED || strcmp(err, perr) != 0)
            fail_msg("prefix %zu: %s (%s), whole: malformed (%s)", k, hello_status_name(st), perr,
                     err);
    }
}

/* ---- building hellos ---- */

struct hb {
    uint8_t b[HELLO_MAX + 1024];
    size_t n;
};

static void hb_u8(struct hb *b, unsigned v)
{
    assert_true(b->n < sizeof(b->b));
    b->b[b->n++] = (uint8_t)v;
}

static void hb_u16(struct hb *b, unsigned v)
{
    hb_u8(b, v >> 8);
    hb_u8(b, v & 0xff);
}

static void hb_put(struct hb *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof(b->b));
    if (n > 0)
        memcpy(b->b + b->n, p, n);
    b->n += n;
}

/* Start a length field of width bytes; returns its offset for hb_close. */
static size_t hb_open(struct hb *b, int width)
{
    size_t at = b->n;

    for (int i = 0; i < width; i++)
        hb_u8(b, 0);
    return at;
}

/* Patch the length field at `at` (width bytes) with the number of bytes written after it. */
static void hb_close(struct hb *b, size_t at, int width)
{
    size_t v = b->n - at - (size_t)width;

    for (int i = width - 1; i >= 0; i--) {
        b->b[at + (size_t)i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

/* Overwrite a big-endian field of width bytes at `at`. */
static void patch(uint8_t *p, size_t at, int width, size_t v)
{
    for (int i = width - 1; i >= 0; i--) {
        p[at + (size_t)i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

struct spec {
    unsigned version;     /* client_version; 0 means 0x0303 */
    size_t sid_len;       /* session_id length */
    const char *sni;      /* host_name; NULL: no server_name extension */
    size_t sni_len;       /* bytes of sni to send; 0 means strlen(sni) */
    const char *alpn[4];  /* ALPN names; alpn[0] NULL: no ALPN extension */
    unsigned versions[4]; /* supported_versions; versions[0] 0: no extension */
    bool ech;             /* add encrypted_client_hello (0xfe0d) */
    bool no_extensions;   /* stop after compression_methods */
    const uint8_t *extra; /* raw extensions appended after the ones above */
    size_t extra_len;
    size_t padding;       /* add a padding extension (21) of this many bytes last; 0: none */
    size_t padding_exact; /* if non-zero, size padding so the body is exactly this long */
};

/* Where build_hello put each length field (offsets into the handshake message). */
struct offs {
    size_t hs_type, hs_len, version, sid_len, cs_len, comp_len, ext_len;
    size_t sni_ext_len, sni_list_len, sni_type, sni_name_len;
    size_t alpn_ext_len, alpn_list_len, alpn_first_len;
    size_t sv_ext_len, sv_list_len;
};

static void build_message(const struct spec *s, struct hb *m, struct offs *o)
{
    static const uint8_t suites[] = {0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f, 0xc0, 0x2b};
    size_t at, ext, e, l;

    memset(o, 0, sizeof(*o));
    m->n = 0;
    o->hs_type = m->n;
    hb_u8(m, 1);
    o->hs_len = m->n;
    at = hb_open(m, 3);
    o->version = m->n;
    hb_u16(m, s->version ? s->version : 0x0303);
    for (int i = 0; i < 32; i++)
        hb_u8(m, (unsigned)(i * 7 + 3));
    o->sid_len = m->n;
    hb_u8(m, (unsigned)s->sid_len);
    for (size_t i = 0; i < s->sid_len; i++)
        hb_u8(m, 0xaa);
    o->cs_len = m->n;
    hb_u16(m, sizeof(suites));
    hb_put(m, suites, sizeof(suites));
    o->comp_len = m->n;
    hb_u8(m, 1);
    hb_u8(m, 0);
    if (s->no_extensions) {
        hb_close(m, at, 3);
        return;
    }
    o->ext_len = m->n;
    ext = hb_open(m, 2);
    if (s->sni) {
        hb_u16(m, 0x0000);
        o->sni_ext_len = m->n;
        e = hb_open(m, 2);
        o->sni_list_len = m->n;
        l = hb_open(m, 2);
        o->sni_type = m->n;
        hb_u8(m, 0);
        o->sni_name_len = m->n;
        hb_u16(m, (unsigned)(s->sni_len ? s->sni_len : strlen(s->sni)));
        hb_put(m, s->sni, s->sni_len ? s->sni_len : strlen(s->sni));
        hb_close(m, l, 2);
        hb_close(m, e, 2);
    }
    if (s->alpn[0]) {
        hb_u16(m, 0x0010);
        o->alpn_ext_len = m->n;
        e = hb_open(m, 2);
        o->alpn_list_len = m->n;
        l = hb_open(m, 2);
        o->alpn_first_len = m->n;
        for (int i = 0; i < 4 && s->alpn[i]; i++) {
            hb_u8(m, (unsigned)strlen(s->alpn[i]));
            hb_put(m, s->alpn[i], strlen(s->alpn[i]));
        }
        hb_close(m, l, 2);
        hb_close(m, e, 2);
    }
    if (s->versions[0]) {
        hb_u16(m, 0x002b);
        o->sv_ext_len = m->n;
        e = hb_open(m, 2);
        o->sv_list_len = m->n;
        l = hb_open(m, 1);
        for (int i = 0; i < 4 && s->versions[i]; i++)
            hb_u16(m, s->versions[i]);
        hb_close(m, l, 1);
        hb_close(m, e, 2);
    }
    if (s->ech) {
        /* An outer ECHClientHello: type 0, HPKE suite, config id, enc, payload. */
        static const uint8_t ech[] = {0xfe, 0x0d, 0x00, 0x0e, 0x00, 0x00, 0x01, 0x00, 0x01,
                                      0x42, 0x00, 0x02, 0xab, 0xcd, 0x00, 0x02, 0x12, 0x34};
        hb_put(m, ech, sizeof(ech));
    }
    hb_put(m, s->extra, s->extra_len);
    if (s->padding || s->padding_exact) {
        size_t pad = s->padding;
        if (s->padding_exact) {
            /* body so far: m->n - 4; the padding extension header takes 4 more bytes */
            assert_true(s->padding_exact >= m->n - 4 + 4);
            pad = s->padding_exact - (m->n - 4) - 4;
        }
        hb_u16(m, 0x0015);
        hb_u16(m, (unsigned)pad);
        for (size_t i = 0; i < pad; i++)
            hb_u8(m, 0);
    }
    hb_close(m, ext, 2);
    hb_close(m, at, 3);
}

/*
 * Wrap message bytes in handshake records. cuts[] are the payload sizes of the first records
 * (0-terminated); the rest goes in records of at most HELLO_MAX_RECORD bytes.
 */
static void frame(const uint8_t *msg, size_t len, const size_t *cuts, struct hb *out)
{
    size_t done = 0;
    int i = 0;

    out->n = 0;
    while (done < len) {
        size_t n = len - done;
        if (cuts && cuts[i]) {
            n = cuts[i++];
            assert_true(n <= len - done);
        }
        if (n > HELLO_MAX_RECORD)
            n = HELLO_MAX_RECORD;
        hb_u8(out, 22);
        hb_u16(out, 0x0301);
        hb_u16(out, (unsigned)n);
        hb_put(out, msg + done, n);
        done += n;
    }
}

static struct hb msg_buf, rec_buf, tmp_buf;

/* Build s as one record (or several if large) into rec_buf; offsets are into the message. */
static void build_hello(const struct spec *s, struct offs *o)
{
    build_message(s, &msg_buf, o);
    frame(msg_buf.b, msg_buf.n, NULL, &rec_buf);
}

/* Offset in rec_buf of message offset off, for a hello framed as one record. */
#define R(off) ((off) + 5)

/* The handshake payload of a stream of records, concatenated into out. */
static void payload_of(const uint8_t *in, size_t len, struct hb *out)
{
    size_t pos = 0;

    out->n = 0;
    while (pos < len) {
        size_t n;
        assert_true(pos + 5 <= len);
        n = (size_t)in[pos + 3] << 8 | in[pos + 4];
        hb_put(out, in + pos + 5, n);
        pos += 5 + n;
    }
}

/* Append one raw extension to a one-record captured hello, fixing the three lengths. */
static void splice_extension(const uint8_t *in, size_t len, const uint8_t *ext, size_t ext_len,
                             struct hb *out)
{
    size_t p = 5 + 4 + 2 + 32, ext_at;

    assert_int_equal(in[0], 22);
    p += 1 + in[p];                            /* session_id */
    p += 2 + ((size_t)in[p] << 8 | in[p + 1]); /* cipher_suites */
    p += 1 + in[p];                            /* compression_methods */
    ext_at = p;
    assert_int_equal(ext_at + 2 + ((size_t)in[p] << 8 | in[p + 1]), len);
    out->n = 0;
    hb_put(out, in, len);
    hb_put(out, ext, ext_len);
    patch(out->b, 3, 2, ((size_t)in[3] << 8 | in[4]) + ext_len);
    patch(out->b, 6, 3, ((size_t)in[6] << 16 | (size_t)in[7] << 8 | in[8]) + ext_len);
    patch(out->b, ext_at, 2, ((size_t)in[ext_at] << 8 | in[ext_at + 1]) + ext_len);
}

static void expect_same(const struct hello *a, const struct hello *b)
{
    assert_string_equal(a->sni, b->sni);
    assert_int_equal(a->has_sni, b->has_sni);
    assert_int_equal(a->has_ech, b->has_ech);
    assert_int_equal(a->has_alpn, b->has_alpn);
    assert_int_equal(a->alpn_h2, b->alpn_h2);
    assert_int_equal(a->alpn_http11, b->alpn_http11);
    assert_int_equal(a->alpn_other, b->alpn_other);
    assert_int_equal(a->tls13, b->tls13);
    assert_int_equal(a->legacy_version, b->legacy_version);
    assert_int_equal(a->max_version, b->max_version);
}

/* ---- tests: real captures ---- */

static void test_real_hellos(void **state)
{
    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(captures); i++) {
        const struct capture *c = &captures[i];
        char err[256];
        struct hello h;
        size_t len, nrec = 0;
        uint8_t *data = load(c->file, &len);
        enum hello_status st = parse_copy(data, len, &h, err, sizeof(err));

        if (st != HELLO_OK)
            fail_msg("%s: %s (%s)", c->file, hello_status_name(st), err);
        assert_string_equal(err, "");
        assert_string_equal(h.sni, c->sni);
        assert_int_equal(h.has_sni, c->has_sni);
        assert_false(h.has_ech);
        assert_int_equal(h.has_alpn, c->has_alpn);
        assert_int_equal(h.alpn_h2, c->h2);
        assert_int_equal(h.alpn_http11, c->http11);
        assert_int_equal(h.alpn_other, c->other);
        assert_int_equal(h.tls13, c->tls13);
        assert_int_equal(h.legacy_version, 0x0303);
        assert_int_equal(h.max_version, c->tls13 ? 0x0304 : 0x0303);
        assert_int_equal(h.consumed, len);
        for (size_t p = 0; p < len; p += 5 + ((size_t)data[p + 3] << 8 | data[p + 4]))
            nrec++;
        assert_int_equal(nrec, c->records);
        free(data);
    }
}

/* Every truncation of a real hello is NEED_MORE: never OK, never an error, never a crash. */
static void test_every_prefix_needs_more(void **state)
{
    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(captures); i++) {
        size_t len;
        uint8_t *data = load(captures[i].file, &len);

        if (len < 2000) {
            expect_prefixes_need_more(data, len, 1);
        } else {
            /* Big captures: a spread of prefixes, plus every byte around each record header. */
            expect_prefixes_need_more(data, len, 97);
            for (size_t p = 0; p < len; p += 5 + ((size_t)data[p + 3] << 8 | data[p + 4])) {
                for (size_t k = p > 8 ? p - 8 : 0; k < p + 16 && k < len; k++) {
                    struct hello h;
                    assert_int_equal(parse(data, k, &h), HELLO_NEED_MORE);
                }
            }
            {
                struct hello h;
                assert_int_equal(parse(data, len - 1, &h), HELLO_NEED_MORE);
            }
        }
        free(data);
    }
}

/* Bytes after the hello (the client's next record) are not the parser's business. */
static void test_data_after_hello(void **state)
{
    static const uint8_t ccs[] = {0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03, 0x03};
    struct hello h;
    size_t len;
    uint8_t *data = load("curl-h2.bin", &len);

    (void)state;
    tmp_buf.n = 0;
    hb_put(&tmp_buf, data, len);
    hb_put(&tmp_buf, ccs, sizeof(ccs));
    assert_int_equal(parse(tmp_buf.b, tmp_buf.n, &h), HELLO_OK);
    assert_int_equal(h.consumed, len);
    assert_string_equal(h.sni, "www.bbc.co.uk");
    free(data);
}

/* A real hello re-cut into 2 records at every point, and into 3 records at many points. */
static void test_split_records(void **state)
{
    struct hello whole, h;
    size_t len;
    uint8_t *data = load("openssl-tls13-sni-alpn.bin", &len);
    struct hb *pl = &tmp_buf;

    (void)state;
    assert_int_equal(parse(data, len, &whole), HELLO_OK);
    payload_of(data, len, pl);
    assert_int_equal(pl->n, len - 5);
    for (size_t a = 1; a < pl->n; a++) {
        size_t cuts[] = {a, 0};
        frame(pl->b, pl->n, cuts, &rec_buf);
        assert_int_equal(rec_buf.n, len + 5);
        assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
        expect_same(&h, &whole);
        assert_int_equal(h.consumed, rec_buf.n);
        if (a % 37 == 1)
            expect_prefixes_need_more(rec_buf.b, rec_buf.n, 1);
    }
    for (size_t a = 1; a < pl->n; a += 7) {
        for (size_t b = 1; a + b < pl->n; b += 11) {
            size_t cuts[] = {a, b, 0};
            frame(pl->b, pl->n, cuts, &rec_buf);
            assert_int_equal(rec_buf.n, len + 10);
            assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
            expect_same(&h, &whole);
            assert_int_equal(h.consumed, rec_buf.n);
        }
    }
    /* The handshake header itself split over records, one byte per record. */
    {
        size_t cuts[] = {1, 1, 1, 1, 0};
        frame(pl->b, pl->n, cuts, &rec_buf);
        assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
        expect_same(&h, &whole);
        expect_prefixes_need_more(rec_buf.b, rec_buf.n, 1);
    }
    /* Every byte in its own record. */
    {
        static size_t ones[400];
        assert_true(pl->n < HAVEN_ARRAY_LEN(ones));
        for (size_t i = 0; i < pl->n; i++)
            ones[i] = 1;
        ones[pl->n] = 0;
        frame(pl->b, pl->n, ones, &rec_buf);
        assert_int_equal(rec_buf.n, pl->n * 6);
        assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
        expect_same(&h, &whole);
    }
    free(data);
}

/* A record of another type in the middle of a split hello. */
static void test_split_interrupted(void **state)
{
    size_t len;
    uint8_t *data = load("curl-http11.bin", &len);
    size_t cuts[] = {100, 0};

    (void)state;
    payload_of(data, len, &tmp_buf);
    frame(tmp_buf.b, tmp_buf.n, cuts, &rec_buf);
    rec_buf.b[105] = 23; /* second record header */
    expect_malformed(rec_buf.b, rec_buf.n, "record type 23 (record 2) inside ClientHello");
    rec_buf.b[105] = 22;
    patch(rec_buf.b, 106, 2, 0x0300);
    expect_malformed(rec_buf.b, rec_buf.n, "record version 0x0300 (SSLv3)");
    patch(rec_buf.b, 106, 2, 0x0303);
    patch(rec_buf.b, 108, 2, 0);
    expect_malformed(rec_buf.b, rec_buf.n, "empty handshake record (record 2)");
    free(data);
}

/* ---- tests: what is read ---- */

static void test_sni_absent(void **state)
{
    struct spec s = {.alpn = {"h2"}, .versions = {0x0304, 0x0303}};
    struct offs o;
    struct hello h;

    (void)state;
    build_hello(&s, &o);
    assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
    assert_false(h.has_sni);
    assert_string_equal(h.sni, "");
    assert_true(h.alpn_h2);

    /* An old client: no extensions at all. */
    memset(&s, 0, sizeof(s));
    s.no_extensions = true;
    s.version = 0x0301;
    build_hello(&s, &o);
    assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
    assert_false(h.has_sni || h.has_alpn || h.tls13 || h.has_ech);
    assert_int_equal(h.legacy_version, 0x0301);
    assert_int_equal(h.max_version, 0x0301);
    assert_int_equal(h.consumed, rec_buf.n);

    /* An empty extensions block is allowed. */
    memset(&s, 0, sizeof(s));
    build_hello(&s, &o);
    assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
    assert_false(h.has_sni);
}

static void test_ech(void **state)
{
    static const uint8_t ech[] = {0xfe, 0x0d, 0x00, 0x05, 0x00, 0x00, 0x01, 0x00, 0x01};
    struct spec s = {.sni = "cloudflare-ech.com", .alpn = {"h2", "http/1.1"}, .ech = true};
    struct offs o;
    struct hello h;
    size_t len;
    uint8_t *data = load("curl-h2.bin", &len);

    (void)state;
    build_hello(&s, &o);
    assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
    assert_true(h.has_ech);
    assert_string_equal(h.sni, "cloudflare-ech.com");

    /* The same extension added to a real hello. */
    splice_extension(data, len, ech, sizeof(ech), &tmp_buf);
    assert_int_equal(parse(tmp_buf.b, tmp_buf.n, &h), HELLO_OK);
    assert_true(h.has_ech);
    assert_true(h.alpn_h2 && h.alpn_http11 && h.tls13);
    assert_string_equal(h.sni, "www.bbc.co.uk");
    assert_int_equal(h.consumed, len + sizeof(ech));
    expect_prefixes_need_more(tmp_buf.b, tmp_buf.n, 1);

    /* An empty ECH extension is malformed. */
    {
        static const uint8_t empty[] = {0xfe, 0x0d, 0x00, 0x00};
        splice_extension(data, len, empty, sizeof(empty), &tmp_buf);
        expect_malformed(tmp_buf.b, tmp_buf.n, "encrypted_client_hello extension: empty");
    }
    free(data);
}

struct alpn_case {
    const char *alpn[4];
    bool h2, http11, other;
};

static void test_alpn_variants(void **state)
{
    static const struct alpn_case cases[] = {
        {{"h2"}, true, false, false},
        {{"http/1.1"}, false, true, false},
        {{"h2", "http/1.1"}, true, true, false},
        {{"http/1.1", "h2"}, true, true, false},
        {{"spdy/3.1"}, false, false, true},
        {{"acme-tls/1"}, false, false, true},
        {{"h2", "h2c", "http/1.0"}, true, false, true},
        {{"H2", "HTTP/1.1"}, false, false, true}, /* ALPN names are case-sensitive bytes */
        {{"http/1.1x"}, false, false, true},
        {{"h"}, false, false, true},
    };
    struct offs o;
    struct hello h;

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        struct spec s = {.sni = "example.com"};
        memcpy(s.alpn, cases[i].alpn, sizeof(s.alpn));
        build_hello(&s, &o);
        assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
        assert_true(h.has_alpn);
        assert_int_equal(h.alpn_h2, cases[i].h2);
        assert_int_equal(h.alpn_http11, cases[i].http11);
        assert_int_equal(h.alpn_other, cases[i].other);
    }
    {
        struct spec s = {.sni = "example.com"};
        build_hello(&s, &o);
        assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
        assert_false(h.has_alpn || h.alpn_h2 || h.alpn_http11 || h.alpn_other);
    }
}

static void test_supported_versions(void **state)
{
    struct offs o;
    struct hello h;

    (void)state;
    {
        /* GREASE first, as Chrome sends it. */
        struct spec s = {.sni = "a.example", .versions = {0x7a7a, 0x0304, 0x0303}};
        build_hello(&s, &o);
        assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
        assert_true(h.tls13);
        assert_int_equal(h.max_version, 0x0304);
        assert_int_equal(h.legacy_version, 0x0303);
    }
    {
        struct spec s = {.sni = "a.example", .versions = {0x0303, 0x0302}};
        build_hello(&s, &o);
        assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
        assert_false(h.tls13);
        assert_int_equal(h.max_version, 0x0303);
    }
    {
        /* Only GREASE: max_version falls back to client_version. */
        struct spec s = {.sni = "a.example", .versions = {0x1a1a}, .version = 0x0302};
        build_hello(&s, &o);
        assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
        assert_false(h.tls13);
        assert_int_equal(h.max_version, 0x0302);
    }
    {
        struct spec s = {.sni = "a.example", .versions = {0x0304}};
        build_hello(&s, &o);
        rec_buf.b[R(o.sv_list_len)] = 3;
        patch(rec_buf.b, R(o.sv_ext_len), 2, 4);
        rec_buf.b[rec_buf.n++] = 0; /* one more byte in the extension, record and message */
        patch(rec_buf.b, 3, 2, rec_buf.n - 5);
        patch(rec_buf.b, R(o.hs_len), 3, rec_buf.n - 9);
        patch(rec_buf.b, R(o.ext_len), 2,
              (size_t)rec_buf.b[R(o.ext_len)] * 256 + rec_buf.b[R(o.ext_len) + 1] + 1);
        expect_malformed(rec_buf.b, rec_buf.n,
                         "supported_versions extension: list length 3 is odd");
    }
    {
        struct spec s = {.sni = "a.example", .versions = {0x0304}};
        build_hello(&s, &o);
        rec_buf.b[R(o.sv_list_len)] = 4;
        expect_malformed(rec_buf.b, rec_buf.n,
                         "supported_versions extension: list length 4 exceeds extension");
        rec_buf.b[R(o.sv_list_len)] = 0;
        expect_malformed(rec_buf.b, rec_buf.n, "supported_versions extension: empty list");
    }
}

struct sni_case {
    const char *name; /* sent as host_name (length from strlen unless len is set) */
    size_t len;
    const char *want; /* expected sni, or NULL for malformed */
    const char *err;  /* substring of the message when malformed */
};

static void test_sni_names(void **state)
{
    static char long_label[80], max_name[300], long_name[300], dot_name[300], huge[400];
    const struct sni_case cases[] = {
        {"example.com", 0, "example.com", NULL},
        {"WWW.Example.COM", 0, "www.example.com", NULL},
        {"example.com.", 0, "example.com", NULL},
        {"a_b.example.com", 0, "a_b.example.com", NULL},
        {"-dash-.example.com", 0, "-dash-.example.com", NULL},
        {"xn--bcher-kva.example", 0, "xn--bcher-kva.example", NULL},
        {"r3---sn-abc.googlevideo.com", 0, "r3---sn-abc.googlevideo.com", NULL},
        {"1e100.net", 0, "1e100.net", NULL},
        {"123.example", 0, "123.example", NULL},
        {"localhost", 0, "localhost", NULL},
        {"x", 0, "x", NULL},
        {"0xg", 0, "0xg", NULL},
        {"1.2.3.4", 0, NULL, "\"1.2.3.4\" is an IP address"},
        {"127.0.0.1.", 0, NULL, "is an IP address"},
        {"127.1", 0, NULL, "is an IP address"},
        {"2130706433", 0, NULL, "is an IP address"},
        {"0x7f000001", 0, NULL, "is an IP address"},
        {"example.0X1F", 0, NULL, "is an IP address"},
        {"::1", 0, NULL, "contains byte 0x3a"},
        {"[::1]", 0, NULL, "contains byte 0x5b"},
        {"exa mple.com", 0, NULL, "contains byte 0x20"},
        {"ex\0ample.com", 12, NULL, "contains byte 0x00"},
        {"b\xc3\xbc"
         "cher.example",
         0, NULL, "contains byte 0xc3"},
        {"example.com:443", 0, NULL, "contains byte 0x3a"},
        {"a..b", 0, NULL, "has an empty label"},
        {".example.com", 0, NULL, "has an empty label"},
        {"example.com..", 0, NULL, "has an empty label"},
        {".", 0, NULL, "is empty"},
        {long_label, 0, NULL, "has a label longer than 63 bytes"},
        {max_name, 0, max_name, NULL},
        {dot_name, 0, max_name, NULL},
        {long_name, 0, NULL, "host_name of 254 bytes exceeds 253"},
        {huge, 0, NULL, "host_name of 300 bytes exceeds 253"},
    };
    struct offs o;
    struct hello h;

    (void)state;
    memset(long_label, 'a', 64);
    memcpy(long_label + 64, ".example", 9);
    /* 253 bytes: three labels of 63 and one of 61, separated by dots */
    for (int i = 0; i < 3; i++) {
        memset(max_name + i * 64, (char)('a' + i), 63);
        max_name[i * 64 + 63] = '.';
    }
    memset(max_name + 192, 'd', 61);
    max_name[253] = '\0';
    assert_int_equal(strlen(max_name), 253);
    memcpy(dot_name, max_name, 253);
    memcpy(dot_name + 253, ".", 2);
    memcpy(long_name, max_name, 253);
    memcpy(long_name + 253, "z", 2);
    memset(huge, 'h', 300);
    huge[300] = '\0';

    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        const struct sni_case *c = &cases[i];
        struct spec s = {.sni = c->name, .sni_len = c->len, .alpn = {"http/1.1"}};
        build_hello(&s, &o);
        if (c->want) {
            char err[256];
            enum hello_status st = parse_copy(rec_buf.b, rec_buf.n, &h, err, sizeof(err));
            if (st != HELLO_OK)
                fail_msg("case %zu: %s (%s)", i, hello_status_name(st), err);
            assert_true(h.has_sni);
            assert_string_equal(h.sni, c->want);
        } else {
            expect_malformed(rec_buf.b, rec_buf.n, c->err);
        }
    }
}

/* The message shows the name with unprintable bytes replaced, never raw. */
static void test_sni_message_is_printable(void **state)
{
    struct spec s = {.sni = "evil\n\x1b[31m.example"};
    struct offs o;
    struct hello h;
    char err[256];

    (void)state;
    build_hello(&s, &o);
    assert_int_equal(parse_copy(rec_buf.b, rec_buf.n, &h, err, sizeof(err)), HELLO_MALFORMED);
    assert_string_equal(err, "server_name: host_name \"evil??[31m.example\" contains byte 0x0a");
}

static void test_sni_entries(void **state)
{
    struct hello h;
    struct offs o;

    (void)state;
    {
        /* An entry of another name_type before the host_name is skipped. */
        static const uint8_t ext[] = {0x00, 0x00, 0x00, 0x13, 0x00, 0x11, 0x07, 0x00,
                                      0x03, 'a',  'b',  'c',  0x00, 0x00, 0x08, 'S',
                                      'i',  'T',  'e',  '.',  'o',  'r',  'g'};
        struct spec s = {.extra = ext, .extra_len = sizeof(ext)};
        build_hello(&s, &o);
        assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
        assert_string_equal(h.sni, "site.org");
    }
    {
        /* Only an entry of another type: no SNI. */
        static const uint8_t ext[] = {0x00, 0x00, 0x00, 0x08, 0x00, 0x06,
                                      0x07, 0x00, 0x03, 'a',  'b',  'c'};
        struct spec s = {.extra = ext, .extra_len = sizeof(ext)};
        build_hello(&s, &o);
        assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
        assert_false(h.has_sni);
    }
    {
        /* Two host_name entries. */
        static const uint8_t ext[] = {0x00, 0x00, 0x00, 0x0b, 0x00, 0x09, 0x00, 0x00,
                                      0x01, 'a',  0x00, 0x00, 0x02, 'b',  'c'};
        struct spec s = {.extra = ext, .extra_len = sizeof(ext)};
        build_hello(&s, &o);
        expect_malformed(rec_buf.b, rec_buf.n, "server_name extension: more than one host_name");
    }
    {
        static const uint8_t ext[] = {0x00, 0x00, 0x00, 0x05, 0x00, 0x03, 0x00, 0x00, 0x00};
        struct spec s = {.extra = ext, .extra_len = sizeof(ext)};
        build_hello(&s, &o);
        expect_malformed(rec_buf.b, rec_buf.n, "server_name extension: empty host_name");
    }
    {
        static const uint8_t ext[] = {0x00, 0x00, 0x00, 0x00};
        struct spec s = {.extra = ext, .extra_len = sizeof(ext)};
        build_hello(&s, &o);
        expect_malformed(rec_buf.b, rec_buf.n,
                         "server_name extension: length 0 is too short for a list");
    }
    {
        static const uint8_t ext[] = {0x00, 0x00, 0x00, 0x02, 0x00, 0x00};
        struct spec s = {.extra = ext, .extra_len = sizeof(ext)};
        build_hello(&s, &o);
        expect_malformed(rec_buf.b, rec_buf.n, "server_name extension: empty list");
    }
    {
        static const uint8_t ext[] = {0x00, 0x00, 0x00, 0x04, 0x00, 0x02, 0x00, 0x00};
        struct spec s = {.extra = ext, .extra_len = sizeof(ext)};
        build_hello(&s, &o);
        expect_malformed(rec_buf.b, rec_buf.n,
                         "server_name extension: 2 bytes left, too few for an entry");
    }
}

/* ---- tests: what is rejected ---- */

static void test_malformed_lengths(void **state)
{
    struct spec s = {.sni = "www.example.com",
                     .alpn = {"h2", "http/1.1"},
                     .versions = {0x0304, 0x0303},
                     .sid_len = 32,
                     .padding = 10};
    struct offs o;
    size_t n;

    (void)state;
    build_hello(&s, &o);
    n = rec_buf.n;
#define FIELD(off, width, value, want)                                                             \
    do {                                                                                           \
        build_hello(&s, &o);                                                                       \
        patch(rec_buf.b, (off), (width), (value));                                                 \
        expect_malformed(rec_buf.b, rec_buf.n, (want));                                            \
    } while (0)

    /* record */
    FIELD(1, 2, 0x0300, "record version 0x0300 (SSLv3) is not supported");
    FIELD(1, 2, 0x0305, "record version 0x0305 is not TLS 1.0-1.3");
    FIELD(3, 2, 0, "empty handshake record (record 1)");
    FIELD(3, 2, 16385, "record length 16385 exceeds 16384");
    FIELD(3, 2, 0xffff, "record length 65535 exceeds 16384");
    FIELD(3, 2, n - 5 - 1, "record type 0 (record 2) inside ClientHello");
    /* handshake */
    FIELD(R(o.hs_type), 1, 2, "handshake type 2 is not ClientHello (1)");
    FIELD(R(o.hs_type), 1, 0, "handshake type 0 is not ClientHello (1)");
    FIELD(R(o.hs_len), 3, 40, "ClientHello length 40 is below the minimum of 41");
    FIELD(R(o.hs_len), 3, 0, "ClientHello length 0 is below the minimum of 41");
    FIELD(R(o.hs_len), 3, 0xffffff, "ClientHello length 16777215 does not fit in 65536 bytes");
    FIELD(R(o.hs_len), 3, n - 9 - 1, "extensions: length");
    FIELD(R(o.hs_len), 3, n - 9 - 1, "does not match the");
    /* body */
    FIELD(R(o.version), 2, 0x0300, "client_version 0x0300 (SSLv3) is not supported");
    FIELD(R(o.version), 2, 0x0002, "client_version 0x0002 is not TLS");
    FIELD(R(o.version), 2, 0x0403, "client_version 0x0403 is not TLS");
    FIELD(R(o.sid_len), 1, 33, "session_id: length 33 exceeds 32");
    FIELD(R(o.sid_len), 1, 255, "session_id: length 255 exceeds 32");
    FIELD(R(o.sid_len), 1, 0, "cipher_suites: length 43690 exceeds ClientHello"); /* 0xaaaa */
    FIELD(R(o.cs_len), 2, 0, "cipher_suites: empty");
    FIELD(R(o.cs_len), 2, 7, "cipher_suites: length 7 is odd");
    FIELD(R(o.cs_len), 2, 0xfffe, "cipher_suites: length 65534 exceeds ClientHello");
    FIELD(R(o.comp_len), 1, 0, "compression_methods: empty");
    FIELD(R(o.comp_len), 1, 250, "compression_methods: length 250 exceeds ClientHello");
    FIELD(R(o.comp_len) + 1, 1, 1, "compression_methods: null (0) is missing");
    FIELD(R(o.ext_len), 2, 0, "extensions: length 0 does not match the");
    FIELD(R(o.ext_len), 2, 0xffff, "extensions: length 65535 does not match the");
    /* extensions */
    FIELD(R(o.sni_ext_len), 2, 0x1000,
          "extension 0x0000 (server_name): length 4096 exceeds extensions block");
    FIELD(R(o.sni_list_len), 2, 300, "server_name extension: list length 300 exceeds extension");
    FIELD(R(o.sni_list_len), 2, 3,
          "server_name extension: list length 3 leaves 15 bytes of the extension unused");
    FIELD(R(o.sni_list_len), 2, 0, "server_name extension: empty list");
    FIELD(R(o.sni_name_len), 2, 16, "server_name extension: name length 16 exceeds list");
    FIELD(R(o.sni_name_len), 2, 14, "server_name extension: 1 bytes left, too few for an entry");
    FIELD(R(o.alpn_ext_len), 2, 0, "ALPN extension: length 0 is too short for a list");
    FIELD(R(o.alpn_ext_len), 2, 1, "ALPN extension: length 1 is too short for a list");
    FIELD(R(o.alpn_list_len), 2, 13, "ALPN extension: list length 13 exceeds extension");
    FIELD(R(o.alpn_list_len), 2, 3, "ALPN extension: list length 3 leaves 9 bytes");
    FIELD(R(o.alpn_list_len), 2, 0, "ALPN extension: empty list");
    FIELD(R(o.alpn_first_len), 1, 0, "ALPN extension: empty protocol name");
    FIELD(R(o.alpn_first_len), 1, 12, "ALPN extension: protocol name length 12 exceeds list");
    FIELD(R(o.sv_ext_len), 2, 0, "supported_versions extension: empty");
    FIELD(R(o.sv_ext_len), 2, 0x100, "extension 0x002b (supported_versions): length 256 exceeds");
#undef FIELD
}

/* A handshake length too short for the fields it has to hold. */
static void test_short_message(void **state)
{
    struct spec s = {.sni = "a.example", .sid_len = 32};
    struct offs o;

    (void)state;
    build_hello(&s, &o);
    patch(rec_buf.b, R(o.hs_len), 3, 41);
    expect_malformed(rec_buf.b, rec_buf.n,
                     "session_id: length 32 exceeds ClientHello (6 bytes left)");
    s.sid_len = 6;
    build_hello(&s, &o);
    patch(rec_buf.b, R(o.hs_len), 3, 41);
    expect_malformed(rec_buf.b, rec_buf.n, "cipher_suites: missing (0 bytes left in ClientHello)");
    s.sid_len = 0;
    build_hello(&s, &o);
    patch(rec_buf.b, R(o.hs_len), 3, 45); /* ends right after the 8 bytes of cipher suites */
    expect_malformed(rec_buf.b, rec_buf.n, "compression_methods: missing");
}

/* A hello that claims more bytes than its records hold waits for more, then fails on junk. */
static void test_declared_longer(void **state)
{
    struct spec s = {.sni = "example.com"};
    struct offs o;
    struct hello h;

    (void)state;
    build_hello(&s, &o);
    patch(rec_buf.b, R(o.hs_len), 3, rec_buf.n - 9 + 10);
    patch(rec_buf.b, R(o.ext_len), 2,
          (size_t)rec_buf.b[R(o.ext_len)] * 256 + rec_buf.b[R(o.ext_len) + 1] + 10);
    assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_NEED_MORE);
    hb_u8(&rec_buf, 23);
    expect_malformed(rec_buf.b, rec_buf.n, "record type 23 (record 2) inside ClientHello");
}

static void test_trailing_in_record(void **state)
{
    struct spec s = {.sni = "example.com"};
    struct offs o;

    (void)state;
    build_hello(&s, &o);
    /* A second handshake message in the same record. */
    hb_u8(&rec_buf, 1);
    hb_u8(&rec_buf, 0);
    patch(rec_buf.b, 3, 2, rec_buf.n - 5);
    expect_malformed(rec_buf.b, rec_buf.n, "2 bytes follow the ClientHello in its record");
    /* One spare byte after the extensions, inside the message. */
    build_hello(&s, &o);
    hb_u8(&rec_buf, 0);
    patch(rec_buf.b, 3, 2, rec_buf.n - 5);
    patch(rec_buf.b, R(o.hs_len), 3, rec_buf.n - 9);
    expect_malformed(rec_buf.b, rec_buf.n, "extensions: length");
    /* Extensions block with a stray 3 bytes at its end. */
    build_hello(&s, &o);
    hb_u8(&rec_buf, 0);
    hb_u8(&rec_buf, 0);
    hb_u8(&rec_buf, 0);
    patch(rec_buf.b, 3, 2, rec_buf.n - 5);
    patch(rec_buf.b, R(o.hs_len), 3, rec_buf.n - 9);
    patch(rec_buf.b, R(o.ext_len), 2, rec_buf.n - R(o.ext_len) - 2);
    expect_malformed(rec_buf.b, rec_buf.n, "extensions: 3 bytes left, too few for an extension");
    /* One byte where the extensions block would start. */
    memset(&s, 0, sizeof(s));
    s.no_extensions = true;
    build_hello(&s, &o);
    hb_u8(&rec_buf, 0);
    patch(rec_buf.b, 3, 2, rec_buf.n - 5);
    patch(rec_buf.b, R(o.hs_len), 3, rec_buf.n - 9);
    expect_malformed(rec_buf.b, rec_buf.n,
                     "1 byte after compression_methods is not an extensions block");
}

static void test_duplicate_extension(void **state)
{
    static const uint8_t alpn[] = {0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, 'h', '2'};
    static const uint8_t unknown2[] = {0x12, 0x34, 0x00, 0x00, 0x12, 0x34, 0x00, 0x01, 0x00};
    static const uint8_t sni[] = {0x00, 0x00, 0x00, 0x06, 0x00, 0x04, 0x00, 0x00, 0x01, 'b'};
    struct spec s = {.sni = "a.example", .alpn = {"http/1.1"}};
    struct offs o;
    struct hello h;
    size_t len;
    uint8_t *data = load("curl-h2.bin", &len);
    uint8_t *nosni;
    size_t nosni_len;

    (void)state;
    s.extra = alpn;
    s.extra_len = sizeof(alpn);
    build_hello(&s, &o);
    expect_malformed(rec_buf.b, rec_buf.n, "extension 0x0010 (ALPN) appears twice");
    s.extra = unknown2;
    s.extra_len = sizeof(unknown2);
    build_hello(&s, &o);
    expect_malformed(rec_buf.b, rec_buf.n, "extension 0x1234 (unknown) appears twice");
    s.extra = sni;
    s.extra_len = sizeof(sni);
    build_hello(&s, &o);
    expect_malformed(rec_buf.b, rec_buf.n, "extension 0x0000 (server_name) appears twice");

    /* In real hellos: a second ALPN added to curl's; a server_name added to one without. */
    splice_extension(data, len, alpn, sizeof(alpn), &tmp_buf);
    expect_malformed(tmp_buf.b, tmp_buf.n, "extension 0x0010 (ALPN) appears twice");
    splice_extension(data, len, sni, sizeof(sni), &tmp_buf);
    expect_malformed(tmp_buf.b, tmp_buf.n, "extension 0x0000 (server_name) appears twice");
    nosni = load("openssl-no-sni.bin", &nosni_len);
    splice_extension(nosni, nosni_len, sni, sizeof(sni), &tmp_buf);
    assert_int_equal(parse(tmp_buf.b, tmp_buf.n, &h), HELLO_OK);
    assert_string_equal(h.sni, "b");
    free(nosni);
    free(data);
}

static void test_pre_shared_key_last(void **state)
{
    static const uint8_t psk[] = {0x00, 0x29, 0x00, 0x02, 0xaa, 0xbb};
    struct spec s = {.sni = "a.example", .extra = psk, .extra_len = sizeof(psk)};
    struct offs o;
    struct hello h;

    (void)state;
    build_hello(&s, &o);
    assert_int_equal(parse(rec_buf.b, rec_buf.n, &h), HELLO_OK);
    s.padding = 4;
    build_hello(&s, &o);
    expect_malformed(rec_buf.b, rec_buf.n,
                     "extension 0x0029 (pre_shared_key) is not the last extension");
}

/* ---- tests: not TLS, and other first bytes ---- */

static void test_not_tls(void **state)
{
#define TEXT(s)                                                                                    \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
    static const struct {
        const char *p;
        size_t n;
    } texts[] = {
        TEXT("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        TEXT("POST /x HTTP/1.1\r\n"),
        TEXT("SSH-2.0-OpenSSH_9.2\r\n"),
        TEXT("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        TEXT("\r\n"),
        TEXT("\x00\x00\x00\x00"),
        TEXT("\x19\x03\x03"),
    };
#undef TEXT
    char err[256];
    struct hello h;

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(texts); i++) {
        /* The first byte decides, so every non-empty prefix is not TLS too. */
        for (size_t k = 1; k <= texts[i].n; k++) {
            enum hello_status st = parse_copy((const uint8_t *)texts[i].p, k, &h, err, sizeof(err));
            if (st != HELLO_NOT_TLS)
                fail_msg("text %zu prefix %zu: %s", i, k, hello_status_name(st));
            assert_non_null(strstr(err, "is not a TLS record type"));
        }
    }
    assert_int_equal(parse_copy((const uint8_t *)"G", 1, &h, err, sizeof(err)), HELLO_NOT_TLS);
    assert_string_equal(err, "first byte 0x47 is not a TLS record type");
    /* Handshake type byte, but not followed by major version 3. */
    assert_int_equal(parse_copy((const uint8_t *)"\x16G", 2, &h, err, sizeof(err)), HELLO_NOT_TLS);
    assert_string_equal(err, "bytes 0x16 0x47 do not start a TLS record");
    /* Record version 0x0200 (SSLv2 numbering) in a record header: not a TLS record. */
    assert_int_equal(parse_copy((const uint8_t *)"\x16\x02\x00", 3, &h, err, sizeof(err)),
                     HELLO_NOT_TLS);
    /* Too little to tell. */
    assert_int_equal(parse_copy(NULL, 0, &h, err, sizeof(err)), HELLO_NEED_MORE);
    assert_int_equal(parse_copy((const uint8_t *)"\x16", 1, &h, err, sizeof(err)), HELLO_NEED_MORE);
    assert_int_equal(parse_copy((const uint8_t *)"\x16\x03", 2, &h, err, sizeof(err)),
                     HELLO_NEED_MORE);
    assert_int_equal(parse_copy((const uint8_t *)"\x16\x03\x01", 3, &h, err, sizeof(err)),
                     HELLO_NEED_MORE);
    /* No message buffer at all. */
    assert_int_equal(hello_parse((const uint8_t *)"G", 1, &h, NULL, 0), HELLO_NOT_TLS);
}

static void test_other_record_first(void **state)
{
    static const uint8_t appdata[] = {0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5};
    static const uint8_t alert[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28};
    static const uint8_t ccs[] = {0x14, 0x03, 0x03, 0x00, 0x01, 0x01};
    static const uint8_t hb[] = {0x18, 0x03, 0x03, 0x00, 0x03, 1, 0, 0};
    static const uint8_t ssl3[] = {0x16, 0x03, 0x00, 0x00, 0x30};
    /* SSLv2-format CLIENT-HELLO, as old clients sent it: 2-byte header, msg type 1. */
    static const uint8_t v2[] = {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00,
                                 0x10, 0x00, 0x00, 0x35, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x0a};
    char err[256];
    struct hello h;

    (void)state;
    expect_malformed(appdata, sizeof(appdata), "record type 23 before ClientHello");
    expect_malformed(alert, sizeof(alert), "record type 21 before ClientHello");
    expect_malformed(ccs, sizeof(ccs), "record type 20 before ClientHello");
    expect_malformed(hb, sizeof(hb), "record type 24 before ClientHello");
    expect_malformed(ssl3, sizeof(ssl3), "record version 0x0300 (SSLv3) is not supported");
    expect_malformed(v2, sizeof(v2), "SSLv2-format ClientHello is not supported");
    assert_int_equal(parse_copy(v2, 2, &h, err, sizeof(err)), HELLO_NEED_MORE);
    /* High bit set but not an SSLv2 CLIENT-HELLO: just not TLS. */
    assert_int_equal(parse_copy((const uint8_t *)"\x80\x2e\x05", 3, &h, err, sizeof(err)),
                     HELLO_NOT_TLS);
    assert_int_equal(parse_copy((const uint8_t *)"\xff\xfe\xfd", 3, &h, err, sizeof(err)),
                     HELLO_NOT_TLS);
}

/* ---- tests: size limits ---- */

static void test_oversize(void **state)
{
    struct offs o;
    struct hello h;
    char err[256];

    (void)state;
    {
        /* The largest hello that fits: 65512-byte body, 4 records, exactly HELLO_MAX bytes. */
        struct spec s = {.sni = "big.example", .padding_exact = 65512};
        build_hello(&s, &o);
        assert_int_equal(rec_buf.n, HELLO_MAX);
        assert_int_equal(parse_copy(rec_buf.b, rec_buf.n, &h, err, sizeof(err)), HELLO_OK);
        assert_int_equal(h.consumed, HELLO_MAX);
        assert_string_equal(h.sni, "big.example");
        assert_int_equal(parse(rec_buf.b, rec_buf.n - 1, &h), HELLO_NEED_MORE);
    }
    {
        /* One byte more does not fit, and is rejected from its header on. */
        struct spec s = {.sni = "big.example", .padding_exact = 65513};
        build_hello(&s, &o);
        expect_malformed(rec_buf.b, 64, "ClientHello length 65513 does not fit in 65536 bytes");
    }
    {
        /* A hello whose length fits, cut into 1-byte records (6 bytes each), needs more than
         * HELLO_MAX bytes of records: rejected at the record that would pass the cap, so a
         * buffer of HELLO_MAX bytes is never NEED_MORE. */
        static size_t cuts[11001];
        struct spec s = {.sni = "small.example", .padding_exact = 10996};
        build_message(&s, &msg_buf, &o);
        assert_int_equal(msg_buf.n, 11000);
        for (size_t i = 0; i + 1 < HAVEN_ARRAY_LEN(cuts); i++)
            cuts[i] = 1;
        frame(msg_buf.b, msg_buf.n, cuts, &rec_buf);
        assert_int_equal(rec_buf.n, 66000);
        expect_malformed(rec_buf.b, HELLO_MAX, "ClientHello records exceed 65536 bytes");
        assert_int_equal(parse_copy(rec_buf.b, rec_buf.n, &h, err, sizeof(err)), HELLO_MALFORMED);
        assert_string_equal(err, "ClientHello records exceed 65536 bytes");
        assert_int_equal(parse(rec_buf.b, HELLO_MAX - 10, &h), HELLO_NEED_MORE);
    }
    {
        /* The largest hello, but with a 1-byte first record: its fifth record header says a
         * length that would end past HELLO_MAX. */
        size_t cuts[] = {1, 0};
        struct spec s = {.sni = "big.example", .padding_exact = 65512};
        build_message(&s, &msg_buf, &o);
        frame(msg_buf.b, msg_buf.n, cuts, &rec_buf);
        assert_int_equal(rec_buf.n, HELLO_MAX + 5);
        expect_malformed(rec_buf.b, rec_buf.n, "ClientHello records exceed 65536 bytes");
    }
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(hello_status_name(HELLO_OK), "ok");
    assert_string_equal(hello_status_name(HELLO_NEED_MORE), "need more");
    assert_string_equal(hello_status_name(HELLO_NOT_TLS), "not TLS");
    assert_string_equal(hello_status_name(HELLO_MALFORMED), "malformed");
}

/* A short err buffer truncates the message; it is still NUL-terminated. */
static void test_short_error_buffer(void **state)
{
    static const uint8_t appdata[] = {0x17, 0x03, 0x03, 0x00, 0x05};
    char err[8];
    struct hello h;

    (void)state;
    memset(err, 'x', sizeof(err));
    assert_int_equal(hello_parse(appdata, sizeof(appdata), &h, err, sizeof(err)), HELLO_MALFORMED);
    assert_string_equal(err, "record ");
    assert_int_equal(hello_parse(appdata, sizeof(appdata), &h, NULL, 0), HELLO_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_hellos),
        cmocka_unit_test(test_every_prefix_needs_more),
        cmocka_unit_test(test_data_after_hello),
        cmocka_unit_test(test_split_records),
        cmocka_unit_test(test_split_interrupted),
        cmocka_unit_test(test_sni_absent),
        cmocka_unit_test(test_ech),
        cmocka_unit_test(test_alpn_variants),
        cmocka_unit_test(test_supported_versions),
        cmocka_unit_test(test_sni_names),
        cmocka_unit_test(test_sni_message_is_printable),
        cmocka_unit_test(test_sni_entries),
        cmocka_unit_test(test_malformed_lengths),
        cmocka_unit_test(test_short_message),
        cmocka_unit_test(test_declared_longer),
        cmocka_unit_test(test_trailing_in_record),
        cmocka_unit_test(test_duplicate_extension),
        cmocka_unit_test(test_pre_shared_key_last),
        cmocka_unit_test(test_not_tls),
        cmocka_unit_test(test_other_record_first),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_short_error_buffer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
