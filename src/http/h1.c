/*
 * h1.c -- strict HTTP/1.1 head parser and chunked body scanner (the rules are in h1.h).
 *
 * DESIGN
 * A head is read line by line, left to right, and nothing is copied: every field is a slice of
 * the caller's buffer. Each line is found with memchr inside a window that the limits bound
 * (the rest of the line cap and the rest of the head cap), so the same test decides whether a
 * missing line end means "wait for more bytes" (the window is not filled yet) or "too long"
 * (the window is full). Because every decision depends only on the bytes before it, a prefix
 * of a stream can only give H1_AGAIN or the same answer as the whole stream; the fuzz harness
 * checks this. Characters are classified with one table of bit flags.
 *
 * The semantic checks (framing, Host, duplicates) run once, over the complete list of fields,
 * in a fixed order, so that a message with several faults always gets the same status.
 *
 * The chunked scanner is a byte-level state machine that skips chunk data in one step; it
 * keeps no pointers into the input, so the bytes may arrive in any pieces.
 */
#include "common/compat.h"

#include "http/h1.h"

enum {
    H1_C_TCHAR = 1,  /* token character (RFC 9110 5.6.2) */
    H1_C_VCHAR = 2,  /* visible ASCII 0x21-0x7e: request-target bytes */
    H1_C_FIELD = 4,  /* field-value byte: HTAB, SP, VCHAR, obs-text */
    H1_C_HOST = 8,   /* URI host and port characters, as allowed in Host and authority-form */
    H1_C_HEX = 16,   /* hexadecimal digit */
    H1_C_SCHEME = 32 /* URI scheme character after the first: ALPHA DIGIT + - . */
};

/* Generated from the definitions above; one byte of flags per input byte. */
static const unsigned char h1_class[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  4,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  4,  15, 6,  7,  15, 15, 15, 15, 14, 14, 15, 47, 14, 47, 47, 6,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 14, 14, 6,  14, 6,  6,  6,  63, 63, 63, 63, 63, 63, 47,
    47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 14, 6,  14, 7,  15,
    7,  63, 63, 63, 63, 63, 63, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47,
    47, 47, 47, 6,  7,  6,  15, 0,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
};

/* Where a head is being read from, the limits that apply, and the first error found. */
struct h1_head {
    const char *buf;
    size_t len;
    size_t pos; /* start of the next line */
    size_t max_line;
    size_t max_head;
    int max_headers;
    int status;
    const char *error;
};

/* What the semantic pass learns from the header fields of one message. */
struct h1_fields {
    int n_host, n_cl, n_te, n_conn, n_upgrade, n_pauth;
    struct slice host, cl, conn, upgrade, pauth, expect;
};

static int h1_is(unsigned char c, int cls)
{
    return (h1_class[c] & cls) != 0;
}

static unsigned char h1_lower(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned char)(c + ('a' - 'A'));
    return c;
}

/*
 * Like h1_name_is, but with '_' read as '-': "Content_Length" matches "content-length". Some
 * servers (CGI gateways among them) fold the two together, so such a name cannot be passed on.
 */
static int h1_name_is_folded(struct slice name, const char *lower)
{
    size_t len = strlen(lower);

    if (name.len != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = h1_lower((unsigned char)name.p[i]);
        if (c == '_')
            c = '-';
        if (c != (unsigned char)lower[i])
            return 0;
    }
    return 1;
}

/*
 * Word-at-a-time scanning (the "haszero" family of bit tricks): each test below is exact as a
 * yes/no answer for the eight bytes of x. A word that passes is skipped whole; a word that fails
 * is looked at byte by byte, which also handles the bytes the test is too coarse for (HTAB).
 */
#define H1_ONES 0x0101010101010101ull
#define H1_HIGHS 0x8080808080808080ull

static uint64_t h1_load(const char *p)
{
    uint64_t x;

    memcpy(&x, p, sizeof(x));
    return x;
}

/* Some byte of x is below n (n <= 128). */
static uint64_t h1_has_less(uint64_t x, unsigned n)
{
    return (x - H1_ONES * n) & ~x & H1_HIGHS;
}

/* Some byte of x is n. */
static uint64_t h1_has_byte(uint64_t x, unsigned n)
{
    uint64_t y = x ^ (H1_ONES * n);

    return (y - H1_ONES) & ~y & H1_HIGHS;
}

/* Some byte of x is above n (n <= 127). */
static uint64_t h1_has_more(uint64_t x, unsigned n)
{
    return ((x + H1_ONES * (127 - n)) | x) & H1_HIGHS;
}

/* The first byte in [p, end) that is not a field-value byte (HTAB, SP, VCHAR, obs-text). */
static const char *h1_skip_field(const char *p, const char *end)
{
    for (;;) {
        const char *stop;
        while (end - p >= 8 && !h1_has_less(h1_load(p), 0x20) && !h1_has_byte(h1_load(p), 0x7f))
            p += 8;
        stop = end - p > 8 ? p + 8 : end;
        while (p < stop && h1_is((unsigned char)*p, H1_C_FIELD))
            p++;
        if (p < stop || p == end)
            return p;
    }
}

/* The first byte in [p, end) that is not visible ASCII (0x21-0x7e). */
static const char *h1_skip_vchar(const char *p, const char *end)
{
    for (;;) {
        const char *stop;
        while (end - p >= 8 && !h1_has_less(h1_load(p), 0x21) && !h1_has_more(h1_load(p), 0x7e))
            p += 8;
        stop = end - p > 8 ? p + 8 : end;
        while (p < stop && h1_is((unsigned char)*p, H1_C_VCHAR))
            p++;
        if (p < stop || p == end)
            return p;
    }
}

/* Case-insensitive comparison of len bytes with a lower-case string. */
static int h1_ieq(const char *p, size_t len, const char *lower, size_t lower_len)
{
    if (len != lower_len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (h1_lower((unsigned char)p[i]) != (unsigned char)lower[i])
            return 0;
    }
    return 1;
}

static int h1_name_is(struct slice name, const char *lower)
{
    return h1_ieq(name.p, name.len, lower, strlen(lower));
}

static int h1_fail(struct h1_head *h, int status, const char *error)
{
    h->status = status;
    h->error = error;
    return H1_ERROR;
}

void h1_limits_default(struct h1_limits *lim)
{
    lim->max_line = 8192;
    lim->max_head = 65536;
    lim->max_headers = 100;
}

static void h1_head_start(struct h1_head *h, const char *buf, size_t len,
                          const struct h1_limits *lim)
{
    struct h1_limits def;

    if (!lim) {
        h1_limits_default(&def);
        lim = &def;
    }
    h->buf = buf;
    h->len = len;
    h->pos = 0;
    /* Clamp so that pos + max_line + 2 cannot overflow and a line never outgrows the head. */
    h->max_head = lim->max_head < SIZE_MAX / 4 ? lim->max_head : SIZE_MAX / 4;
    h->max_line = lim->max_line < h->max_head ? lim->max_line : h->max_head;
    h->max_headers = lim->max_headers;
    if (h->max_headers > H1_MAX_HEADERS)
        h->max_headers = H1_MAX_HEADERS;
    if (h->max_headers < 0)
        h->max_headers = 0;
    h->status = 0;
    h->error = NULL;
}

/*
 * Find the line that starts at h->pos: on H1_DONE *end is the index of its CR and *next the
 * index after its LF. The LF must lie in the window that the line cap and the head cap leave;
 * if the input ends before the window does, the answer is H1_AGAIN, otherwise the line is too
 * long (line_status, line_error) or the head is (431).
 */
static int h1_line(struct h1_head *h, int line_status, const char *line_error, size_t *end,
                   size_t *next)
{
    size_t line_stop = h->pos + h->max_line + 2;
    size_t stop = line_stop < h->max_head ? line_stop : h->max_head;
    size_t avail = h->len < stop ? h->len : stop;
    const char *lf = NULL;
    size_t i;

    if (avail > h->pos)
        lf = memchr(h->buf + h->pos, '\n', avail - h->pos);
    if (!lf) {
        if (avail < stop)
            return H1_AGAIN;
        if (line_stop <= h->max_head)
            return h1_fail(h, line_status, line_error);
        return h1_fail(h, 431, "message head too large");
    }
    i = (size_t)(lf - h->buf);
    if (i == h->pos || h->buf[i - 1] != '\r')
        return h1_fail(h, 400, "bare LF line ending");
    *end = i - 1;
    *next = i + 1;
    return H1_DONE;
}

/* The message for a byte that is not allowed where it stands. */
static const char *h1_char_error(unsigned char c, const char *otherwise)
{
    if (c == '\r')
        return "bare CR in message head";
    if (c == '\0')
        return "NUL byte in message head";
    return otherwise;
}

/* Parse the field line buf[s, e) into *f. */
static int h1_field(struct h1_head *h, size_t s, size_t e, struct h1_header *f)
{
    const char *p = h->buf + s;
    const char *end = h->buf + e;
    const char *q = p;
    const char *v;

    if (*p == ' ' || *p == '\t')
        return h1_fail(h, 400, "obsolete line folding or whitespace before a header field");
    while (q < end && h1_is((unsigned char)*q, H1_C_TCHAR))
        q++;
    if (q == end)
        return h1_fail(h, 400, "header line without a colon");
    if (*q != ':') {
        if (*q == ' ' || *q == '\t')
            return h1_fail(h, 400, "whitespace between header name and colon");
        return h1_fail(h, 400,
                       h1_char_error((unsigned char)*q, "invalid character in header name"));
    }
    if (q == p)
        return h1_fail(h, 400, "empty header name");
    f->name = slice_make(p, (size_t)(q - p));
    v = q + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    q = h1_skip_field(v, end);
    if (q < end)
        return h1_fail(h, 400,
                       h1_char_error((unsigned char)*q, "invalid character in header value"));
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    f->value = slice_make(v, (size_t)(end - v));
    return 0;
}

/* Read header field lines up to and including the empty line that ends the head. */
static int h1_fields_read(struct h1_head *h, struct h1_header *hs, int *n)
{
    size_t end, next, s;
    int r;

    *n = 0;
    for (;;) {
        r = h1_line(h, 431, "header line too long", &end, &next);
        if (r != H1_DONE)
            return r;
        s = h->pos;
        h->pos = next;
        if (end == s)
            return H1_DONE;
        if (*n >= h->max_headers)
            return h1_fail(h, 431, "too many header fields");
        if (h1_field(h, s, end, &hs[*n]) != 0)
            return H1_ERROR;
        (*n)++;
    }
}

/* "HTTP/1.0" or "HTTP/1.1": 0 and *minor; -1 if malformed; -2 for another version number. */
static int h1_version(const char *p, size_t n, int *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' ||
        p[7] < '0' || p[7] > '9')
        return -1;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return -2;
    *minor = p[7] - '0';
    return 0;
}

/* 1+ host characters; an [IPv6] literal keeps its brackets only at the ends. */
static int h1_host_ok(const char *p, size_t n, int allow_port)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!h1_is(c, H1_C_HOST))
            return 0;
        if (c == ':' && !allow_port && p[0] != '[')
            return 0;
    }
    return 1;
}

/* authority-form: host ":" port, port 1-65535, host without userinfo. */
static int h1_authority_form(const char *t, size_t n)
{
    size_t colon = n;
    unsigned long port = 0;

    while (colon > 0 && t[colon - 1] != ':')
        colon--;
    if (colon < 2 || colon == n || n - colon > 5)
        return 0;
    colon--;
    if (t[0] == '[') {
        if (t[colon - 1] != ']' || colon < 3)
            return 0;
        for (size_t i = 1; i + 1 < colon; i++) {
            if (!h1_is((unsigned char)t[i], H1_C_HEX) && t[i] != ':' && t[i] != '.')
                return 0;
        }
    } else if (!h1_host_ok(t, colon, 0) || memchr(t, '[', colon) || memchr(t, ']', colon)) {
        return 0;
    }
    for (size_t i = colon + 1; i < n; i++) {
        if (t[i] < '0' || t[i] > '9')
            return 0;
        port = port * 10 + (unsigned long)(t[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

/* Classify req->target by form, given the method. */
static int h1_target(struct h1_head *h, struct h1_request *req)
{
    const char *t = req->target.p;
    size_t n = req->target.len;
    size_t i = 0, a;

    req->authority = slice_make(t, 0);
    if (slice_eq_cstr(req->method, "CONNECT")) {
        if (!h1_authority_form(t, n))
            return h1_fail(h, 400, "CONNECT target is not host:port");
        req->target_form = H1_TARGET_AUTHORITY;
        req->authority = req->target;
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        if (!slice_eq_cstr(req->method, "OPTIONS"))
            return h1_fail(h, 400, "asterisk target outside OPTIONS");
        req->target_form = H1_TARGET_ASTERISK;
        return 0;
    }
    if (t[0] == '/') {
        req->target_form = H1_TARGET_ORIGIN;
        return 0;
    }
    if (h1_lower((unsigned char)t[0]) < 'a' || h1_lower((unsigned char)t[0]) > 'z')
        return h1_fail(h, 400, "invalid request target");
    while (i < n && h1_is((unsigned char)t[i], H1_C_SCHEME))
        i++;
    if (n - i < 3 || memcmp(t + i, "://", 3) != 0)
        return h1_fail(h, 400, "invalid request target");
    a = i + 3;
    i = a;
    while (i < n && t[i] != '/' && t[i] != '?' && t[i] != '#')
        i++;
    if (i == a)
        return h1_fail(h, 400, "empty authority in absolute-form target");
    req->target_form = H1_TARGET_ABSOLUTE;
    req->authority = slice_make(t + a, i - a);
    return 0;
}

static int h1_request_line(struct h1_head *h, struct h1_request *req)
{
    const char *b = h->buf;
    size_t end, next, s, p, t, v;
    int r, minor = 0;

    /* Skip empty lines before the request line (RFC 9112 2.2). */
    for (;;) {
        r = h1_line(h, 414, "request line too long", &end, &next);
        if (r != H1_DONE)
            return r;
        s = h->pos;
        h->pos = next;
        if (end != s)
            break;
    }
    p = s;
    while (p < end && h1_is((unsigned char)b[p], H1_C_TCHAR))
        p++;
    if (p == s) {
        if (b[s] == ' ')
            return h1_fail(h, 400, "space before the method");
        return h1_fail(h, 400, h1_char_error((unsigned char)b[s], "invalid character in method"));
    }
    if (p == end)
        return h1_fail(h, 400, "request line without a target");
    if (b[p] != ' ')
        return h1_fail(h, 400, h1_char_error((unsigned char)b[p], "invalid character in method"));
    req->method = slice_make(b + s, p - s);
    t = p + 1;
    p = (size_t)(h1_skip_vchar(b + t, b + end) - b);
    if (p == t) {
        if (p < end && b[p] == ' ')
            return h1_fail(h, 400, "extra space in request line");
        if (p == end)
            return h1_fail(h, 400, "request line without a target");
        return h1_fail(h, 400,
                       h1_char_error((unsigned char)b[p], "invalid character in request target"));
    }
    if (p == end)
        return h1_fail(h, 400, "request line without an HTTP version");
    if (b[p] != ' ')
        return h1_fail(h, 400,
                       h1_char_error((unsigned char)b[p], "invalid character in request target"));
    req->target = slice_make(b + t, p - t);
    v = p + 1;
    if (memchr(b + v, ' ', end - v))
        return h1_fail(h, 400, "extra space in request line");
    r = h1_version(b + v, end - v, &minor);
    if (r == -2)
        return h1_fail(h, 505, "unsupported HTTP version");
    if (r != 0)
        return h1_fail(h, 400, "malformed HTTP version");
    req->minor = minor;
    if (h1_target(h, req) != 0)
        return H1_ERROR;
    return H1_DONE;
}

/* Content-Length: 1+ digits, at most H1_MAX_CONTENT_LENGTH. */
static int h1_content_length(struct h1_head *h, struct slice v, uint64_t *out)
{
    uint64_t n = 0;

    if (v.len == 0)
        return h1_fail(h, 400, "empty Content-Length");
    for (size_t i = 0; i < v.len; i++) {
        unsigned d = (unsigned char)v.p[i] - (unsigned)'0';
        if (d > 9)
            return h1_fail(h, 400, "Content-Length is not a number");
        if (n > (H1_MAX_CONTENT_LENGTH - d) / 10)
            return h1_fail(h, 400, "Content-Length too large");
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

/*
 * Check the Transfer-Encoding list, read over every Transfer-Encoding field in order: 0 if it
 * is exactly "chunked", otherwise an error with 400 or 501 (see h1.h).
 */
static int h1_transfer_encoding(struct h1_head *h, const struct h1_header *hs, int n)
{
    int nchunked = 0, others = 0, last_chunked = 0;

    for (int k = 0; k < n; k++) {
        const char *p, *end;
        if (!h1_name_is(hs[k].name, "transfer-encoding"))
            continue;
        p = hs[k].value.p;
        end = p + hs[k].value.len;
        for (;;) {
            const char *e = memchr(p, ',', (size_t)(end - p));
            const char *tok, *tok_end;
            if (!e)
                e = end;
            while (p < e && (*p == ' ' || *p == '\t'))
                p++;
            tok = p;
            while (p < e && h1_is((unsigned char)*p, H1_C_TCHAR))
                p++;
            tok_end = p;
            while (p < e && (*p == ' ' || *p == '\t'))
                p++;
            if (tok == tok_end) {
                if (p == e)
                    return h1_fail(h, 400, "empty element in Transfer-Encoding");
                return h1_fail(h, 400, "malformed Transfer-Encoding");
            }
            if (p < e && *p != ';')
                return h1_fail(h, 400, "malformed Transfer-Encoding");
            if (h1_ieq(tok, (size_t)(tok_end - tok), "chunked", 7)) {
                if (p < e)
                    return h1_fail(h, 400, "parameters on the chunked transfer coding");
                nchunked++;
                last_chunked = 1;
            } else {
                others++;
                last_chunked = 0;
            }
            if (e == end)
                break;
            p = e + 1;
        }
    }
    if (nchunked == 0)
        return h1_fail(h, 501, "unsupported transfer coding");
    if (nchunked > 1)
        return h1_fail(h, 400, "chunked transfer coding applied more than once");
    if (!last_chunked)
        return h1_fail(h, 400, "chunked is not the final transfer coding");
    if (others > 0)
        return h1_fail(h, 501, "unsupported transfer coding");
    return 0;
}

/* One pass over the fields: note the ones that matter and reject repeats. */
static int h1_fields_scan(struct h1_head *h, const struct h1_header *hs, int n, struct h1_fields *f)
{
    memset(f, 0, sizeof(*f));
    for (int k = 0; k < n; k++) {
        struct slice name = hs[k].name;
        struct slice value = hs[k].value;
        switch (name.len) {
        case 4:
            if (h1_name_is(name, "host")) {
                f->n_host++;
                if (f->n_host > 1)
                    return h1_fail(h, 400, "more than one Host header");
                f->host = value;
            }
            break;
        case 6:
            if (h1_name_is(name, "expect"))
                f->expect = value;
            break;
        case 7:
            if (h1_name_is(name, "upgrade")) {
                f->n_upgrade++;
                if (f->n_upgrade > 1)
                    return h1_fail(h, 400, "more than one Upgrade header");
                f->upgrade = value;
            }
            break;
        case 10:
            if (h1_name_is(name, "connection")) {
                f->n_conn++;
                if (f->n_conn > 1)
                    return h1_fail(h, 400, "more than one Connection header");
                f->conn = value;
            }
            break;
        case 14:
            if (!h1_name_is(name, "content-length") && h1_name_is_folded(name, "content-length"))
                return h1_fail(h, 400, "underscore in a Content-Length header name");
            if (h1_name_is(name, "content-length")) {
                f->n_cl++;
                if (f->n_cl > 1)
                    return h1_fail(h, 400, "more than one Content-Length header");
                f->cl = value;
            }
            break;
        case 17:
            if (h1_name_is(name, "transfer-encoding"))
                f->n_te++;
            else if (h1_name_is_folded(name, "transfer-encoding"))
                return h1_fail(h, 400, "underscore in a Transfer-Encoding header name");
            break;
        case 19:
            if (h1_name_is(name, "proxy-authorization")) {
                f->n_pauth++;
                if (f->n_pauth > 1)
                    return h1_fail(h, 400, "more than one Proxy-Authorization header");
                f->pauth = value;
            }
            break;
        default:
            break;
        }
    }
    return 0;
}

/* Content-Length and Transfer-Encoding: the framing they declare, or an error. */
static int h1_framing(struct h1_head *h, const struct h1_header *hs, int n,
                      const struct h1_fields *f, int minor, enum h1_body *body, uint64_t *cl)
{
    *body = H1_BODY_NONE;
    *cl = 0;
    if (f->n_cl > 0 && h1_content_length(h, f->cl, cl) != 0)
        return H1_ERROR;
    if (f->n_te == 0) {
        if (f->n_cl > 0)
            *body = H1_BODY_LENGTH;
        return 0;
    }
    if (minor == 0)
        return h1_fail(h, 400, "Transfer-Encoding in an HTTP/1.0 message");
    if (f->n_cl > 0)
        return h1_fail(h, 400, "both Content-Length and Transfer-Encoding");
    if (h1_transfer_encoding(h, hs, n) != 0)
        return H1_ERROR;
    *body = H1_BODY_CHUNKED;
    return 0;
}

static int h1_keep_alive(int minor, struct slice conn)
{
    if (h1_token_list_has(conn, "close"))
        return 0;
    if (minor == 0)
        return h1_token_list_has(conn, "keep-alive");
    return 1;
}

int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim,
                     struct h1_request *req)
{
    struct h1_head h;
    struct h1_fields f;
    int r;

    h1_head_start(&h, buf, len, lim);
    r = h1_request_line(&h, req);
    if (r == H1_DONE)
        r = h1_fields_read(&h, req->headers, &req->nheaders);
    if (r != H1_DONE)
        goto out;
    r = H1_ERROR;
    if (h1_fields_scan(&h, req->headers, req->nheaders, &f) != 0)
        goto out;
    if (h1_framing(&h, req->headers, req->nheaders, &f, req->minor, &req->body,
                   &req->content_length) != 0)
        goto out;
    if (f.n_host == 0 && req->minor == 1) {
        h1_fail(&h, 400, "missing Host header");
        goto out;
    }
    if (!h1_host_ok(f.host.p, f.host.len, 1)) {
        h1_fail(&h, 400, "invalid Host header");
        goto out;
    }
    if (req->target_form == H1_TARGET_AUTHORITY &&
        (req->body == H1_BODY_CHUNKED || req->content_length > 0)) {
        h1_fail(&h, 400, "CONNECT request with a body");
        goto out;
    }
    req->head_len = h.pos;
    req->keep_alive = h1_keep_alive(req->minor, f.conn);
    req->expect_continue =
        req->minor == 1 && f.expect.p && h1_ieq(f.expect.p, f.expect.len, "100-continue", 12);
    req->has_host = f.n_host > 0;
    req->host = f.n_host > 0 ? f.host : slice_make(buf, 0);
    req->connection = f.n_conn > 0 ? f.conn : slice_make(buf, 0);
    req->upgrade = slice_make(buf, 0);
    if (f.n_upgrade > 0 && h1_token_list_has(f.conn, "upgrade"))
        req->upgrade = f.upgrade;
    req->has_proxy_authorization = f.n_pauth > 0;
    req->proxy_authorization = f.n_pauth > 0 ? f.pauth : slice_make(buf, 0);
    req->status = 0;
    req->error = NULL;
    r = H1_DONE;
out:
    if (r == H1_ERROR) {
        req->status = h.status;
        req->error = h.error;
    }
    return r;
}

/* HTTP-version SP 3DIGIT [SP reason-phrase] */
static int h1_status_line(struct h1_head *h, struct h1_response *resp)
{
    const char *b;
    size_t end, next, s, p;
    int r, minor = 0;

    r = h1_line(h, 400, "status line too long", &end, &next);
    if (r != H1_DONE)
        return r;
    b = h->buf;
    s = h->pos;
    h->pos = next;
    p = s;
    while (p < end && b[p] != ' ')
        p++;
    r = h1_version(b + s, p - s, &minor);
    if (r == -2)
        return h1_fail(h, 502, "unsupported HTTP version in response");
    if (r != 0)
        return h1_fail(h, 502, "malformed status line");
    resp->minor = minor;
    if (end - p < 4 || b[p + 1] < '1' || b[p + 1] > '9' || b[p + 2] < '0' || b[p + 2] > '9' ||
        b[p + 3] < '0' || b[p + 3] > '9')
        return h1_fail(h, 502, "malformed status code");
    resp->status = (b[p + 1] - '0') * 100 + (b[p + 2] - '0') * 10 + (b[p + 3] - '0');
    p += 4;
    if (p < end && b[p] != ' ')
        return h1_fail(h, 502, "malformed status code");
    if (p < end)
        p++;
    if (h1_skip_field(b + p, b + end) < b + end)
        return h1_fail(h, 502,
                       h1_char_error((unsigned char)*h1_skip_field(b + p, b + end),
                                     "invalid character in reason"));
    resp->reason = slice_make(b + p, end - p);
    return H1_DONE;
}

int h1_parse_response(const char *buf, size_t len, const struct h1_limits *lim,
                      const struct slice request_method, struct h1_response *resp)
{
    struct h1_head h;
    struct h1_fields f;
    int r, st;

    h1_head_start(&h, buf, len, lim);
    r = h1_status_line(&h, resp);
    if (r == H1_DONE)
        r = h1_fields_read(&h, resp->headers, &resp->nheaders);
    if (r != H1_DONE)
        goto out;
    r = H1_ERROR;
    if (h1_fields_scan(&h, resp->headers, resp->nheaders, &f) != 0)
        goto out;
    if (h1_framing(&h, resp->headers, resp->nheaders, &f, resp->minor, &resp->body,
                   &resp->content_length) != 0)
        goto out;
    st = resp->status;
    if (slice_eq_cstr(request_method, "HEAD") || st < 200 || st == 204 || st == 304 ||
        (st < 300 && slice_eq_cstr(request_method, "CONNECT"))) {
        resp->body = H1_BODY_NONE;
        resp->content_length = 0;
    } else if (f.n_cl == 0 && f.n_te == 0) {
        resp->body = H1_BODY_CLOSE;
    }
    resp->head_len = h.pos;
    resp->connection = f.n_conn > 0 ? f.conn : slice_make(buf, 0);
    resp->keep_alive = resp->body != H1_BODY_CLOSE && h1_keep_alive(resp->minor, f.conn);
    resp->error = NULL;
    r = H1_DONE;
out:
    if (r == H1_ERROR)
        resp->error = h.error;
    return r;
}

size_t h1_head_end(const char *buf, size_t len, size_t from)
{
    const char *e;

    from = from > 3 ? from - 3 : 0;
    if (from >= len)
        return 0;
    e = memmem(buf + from, len - from, "\r\n\r\n", 4);
    if (!e)
        return 0;
    return (size_t)(e - buf) + 4;
}

/* Chunked scanner states. */
enum {
    H1_CK_SIZE_FIRST, /* first hex digit of a chunk size */
    H1_CK_SIZE,       /* more hex digits, or what ends them */
    H1_CK_BWS,        /* whitespace after the size: only ';' may follow */
    H1_CK_EXT,        /* chunk extensions, up to CR */
    H1_CK_SIZE_LF,    /* LF ending the size line */
    H1_CK_DATA,       /* chunk data */
    H1_CK_DATA_CR,    /* CR after chunk data */
    H1_CK_DATA_LF,    /* LF after chunk data */
    H1_CK_TR_START,   /* start of a trailer line (or of the final CRLF) */
    H1_CK_TR_NAME,    /* trailer field name */
    H1_CK_TR_VALUE,   /* trailer field value, up to CR */
    H1_CK_TR_LF,      /* LF ending a trailer line */
    H1_CK_END_LF,     /* LF of the final CRLF */
    H1_CK_DONE,
    H1_CK_ERROR
};

void h1_chunked_init(struct h1_chunked *c, const struct h1_limits *lim)
{
    struct h1_limits def;

    if (!lim) {
        h1_limits_default(&def);
        lim = &def;
    }
    memset(c, 0, sizeof(*c));
    c->state = H1_CK_SIZE_FIRST;
    c->max_trailer = lim->max_head;
}

static int h1_ck_fail(struct h1_chunked *c, const char *error, size_t i, size_t *used)
{
    c->state = H1_CK_ERROR;
    c->error = error;
    *used = i;
    return -1;
}

static int h1_hex(unsigned char ch)
{
    if (ch <= '9')
        return ch - '0';
    return h1_lower(ch) - 'a' + 10;
}

int h1_chunked_scan(struct h1_chunked *c, const char *in, size_t len, size_t *used)
{
    size_t i = 0;

    if (c->state == H1_CK_DONE || c->state == H1_CK_ERROR) {
        *used = 0;
        return c->state == H1_CK_DONE ? 1 : -1;
    }
    while (i < len) {
        unsigned char ch = (unsigned char)in[i];

        if (c->state == H1_CK_DATA) {
            uint64_t n = len - i;
            if (n > c->size)
                n = c->size;
            if (c->on_data)
                c->on_data(c->arg, in + i, (size_t)n);
            i += (size_t)n;
            c->size -= n;
            c->body_len += n;
            if (c->size == 0)
                c->state = H1_CK_DATA_CR;
            continue;
        }
        if (c->state <= H1_CK_EXT && ch != '\r') {
            c->line_len++;
            if (c->line_len > H1_MAX_CHUNK_LINE)
                return h1_ck_fail(c, "chunk size line too long", i, used);
        }
        if (c->state >= H1_CK_TR_START) {
            c->trailer_len++;
            if (c->trailer_len > c->max_trailer)
                return h1_ck_fail(c, "chunked trailer section too large", i, used);
        }
        switch (c->state) {
        case H1_CK_SIZE_FIRST:
            if (!h1_is(ch, H1_C_HEX))
                return h1_ck_fail(c, "invalid chunk size", i, used);
            c->size = (uint64_t)h1_hex(ch);
            c->state = H1_CK_SIZE;
            break;
        case H1_CK_SIZE:
            if (h1_is(ch, H1_C_HEX)) {
                if (c->size > (H1_MAX_CONTENT_LENGTH - (uint64_t)h1_hex(ch)) / 16)
                    return h1_ck_fail(c, "chunk size too large", i, used);
                c->size = c->size * 16 + (uint64_t)h1_hex(ch);
            } else if (ch == ';') {
                c->state = H1_CK_EXT;
            } else if (ch == ' ' || ch == '\t') {
                c->state = H1_CK_BWS;
            } else if (ch == '\r') {
                c->state = H1_CK_SIZE_LF;
            } else if (ch == '\n') {
                return h1_ck_fail(c, "bare LF after chunk size", i, used);
            } else {
                return h1_ck_fail(c, "invalid chunk size", i, used);
            }
            break;
        case H1_CK_BWS:
            if (ch == ';')
                c->state = H1_CK_EXT;
            else if (ch != ' ' && ch != '\t')
                return h1_ck_fail(c, "whitespace after chunk size without an extension", i, used);
            break;
        case H1_CK_EXT:
            if (ch == '\r')
                c->state = H1_CK_SIZE_LF;
            else if (!h1_is(ch, H1_C_FIELD))
                return h1_ck_fail(c, "invalid character in chunk extension", i, used);
            break;
        case H1_CK_SIZE_LF:
            if (ch != '\n')
                return h1_ck_fail(c, "bare CR in chunk size line", i, used);
            c->line_len = 0;
            c->state = c->size == 0 ? H1_CK_TR_START : H1_CK_DATA;
            break;
        case H1_CK_DATA_CR:
            if (ch != '\r')
                return h1_ck_fail(c, "missing CRLF after chunk data", i, used);
            c->state = H1_CK_DATA_LF;
            break;
        case H1_CK_DATA_LF:
            if (ch != '\n')
                return h1_ck_fail(c, "missing CRLF after chunk data", i, used);
            c->state = H1_CK_SIZE_FIRST;
            break;
        case H1_CK_TR_START:
            if (ch == '\r')
                c->state = H1_CK_END_LF;
            else if (ch == ' ' || ch == '\t')
                return h1_ck_fail(c, "obsolete line folding in trailer", i, used);
            else if (h1_is(ch, H1_C_TCHAR))
                c->state = H1_CK_TR_NAME;
            else
                return h1_ck_fail(c, "invalid character in trailer field name", i, used);
            break;
        case H1_CK_TR_NAME:
            if (ch == ':')
                c->state = H1_CK_TR_VALUE;
            else if (!h1_is(ch, H1_C_TCHAR))
                return h1_ck_fail(c, "invalid character in trailer field name", i, used);
            break;
        case H1_CK_TR_VALUE:
            if (ch == '\r')
                c->state = H1_CK_TR_LF;
            else if (!h1_is(ch, H1_C_FIELD))
                return h1_ck_fail(c, "invalid character in trailer field value", i, used);
            break;
        case H1_CK_TR_LF:
            if (ch != '\n')
                return h1_ck_fail(c, "bare CR in trailer", i, used);
            c->state = H1_CK_TR_START;
            break;
        case H1_CK_END_LF:
            if (ch != '\n')
                return h1_ck_fail(c, "bare CR at the end of a chunked body", i, used);
            c->state = H1_CK_DONE;
            *used = i + 1;
            return 1;
        default:
            return h1_ck_fail(c, "chunked scanner in a bad state", i, used);
        }
        i++;
    }
    *used = len;
    return 0;
}

int h1_header_is(const struct h1_header *h, const char *lower_name)
{
    return h1_name_is(h->name, lower_name);
}

const struct h1_header *h1_find(const struct h1_header *hs, int n, const char *lower_name)
{
    size_t len = strlen(lower_name);

    for (int k = 0; k < n; k++) {
        if (h1_ieq(hs[k].name.p, hs[k].name.len, lower_name, len))
            return &hs[k];
    }
    return NULL;
}

/* Like h1_token_list_has, with the token given as a slice in any case. */
static int h1_list_has(struct slice value, const char *tok, size_t tok_len)
{
    const char *p = value.p;
    const char *end;

    if (value.len == 0)
        return 0;
    end = value.p + value.len;
    while (p < end) {
        const char *e = memchr(p, ',', (size_t)(end - p));
        const char *q;
        size_t k;
        if (!e)
            e = end;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        q = p;
        while (q < e && *q != ';' && *q != ' ' && *q != '\t')
            q++;
        if ((size_t)(q - p) == tok_len) {
            for (k = 0; k < tok_len; k++) {
                if (h1_lower((unsigned char)p[k]) != h1_lower((unsigned char)tok[k]))
                    break;
            }
            if (k == tok_len)
                return 1;
        }
        p = e < end ? e + 1 : end;
    }
    return 0;
}

int h1_token_list_has(struct slice value, const char *token)
{
    return h1_list_has(value, token, strlen(token));
}

int h1_is_hop_by_hop(const struct h1_header *h, struct slice connection_value)
{
    static const char *const always[] = {"connection",         "keep-alive", "proxy-connection",
                                         "proxy-authenticate", "te",         "trailer",
                                         "transfer-encoding",  "upgrade",    "proxy-authorization"};

    for (size_t k = 0; k < HAVEN_ARRAY_LEN(always); k++) {
        if (h1_name_is(h->name, always[k]))
            return 1;
    }
    if (h1_name_is(h->name, "content-length") || h1_name_is(h->name, "host"))
        return 0;
    return h1_list_has(connection_value, h->name.p, h->name.len);
}
