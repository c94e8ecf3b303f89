/*
 * url.c -- URL parsing and normalisation (the canonical form is described in url.h).
 *
 * DESIGN
 * The input is read once, left to right, as slices: scheme, authority (userinfo, host, port),
 * path, query; the fragment is dropped. Nothing is copied until the canonical form is written
 * into u->text through a bounded writer (struct url_buf) that remembers when it ran out of
 * room, so no input of any length can overflow a buffer; a canonical form longer than URL_MAX
 * is rejected as "URL too long".
 *
 * The rules follow the WHATWG URL Standard for "special" schemes, because the point of the
 * canonical form is to name the address a browser would actually go to:
 *  - '\\' is a path separator, and "http:/x", "http:\\\\x", "http:x" all mean "http://x";
 *  - userinfo ends at the last '@' of the authority, and the authority ends at the first '/',
 *    '\\', '?' or '#', so "http://good.com\\@evil.com" is a request to good.com;
 *  - a host whose last label looks like a number is an IPv4 address in any inet_aton form, and
 *    is rejected if it is not a valid one ("1.2.3.256", "0x1g.2", "example.123").
 * We are stricter than browsers where guessing would help an evasion: control characters
 * (tab, CR, LF, NUL, ...) anywhere are an error rather than silently removed, as are bad
 * percent-escapes in the host and path.
 *
 * Hosts are percent-decoded first, then each label that holds a non-ASCII byte is mapped by
 * libidn2 (UTS#46 non-transitional, which also lower-cases and turns fullwidth forms into
 * ASCII). All-ASCII labels, including "xn--" A-labels, never go to libidn2: lower-casing is
 * all UTS#46 would do to them, an A-label is exactly the name DNS resolves (so it is already
 * canonical, and browsers send them this way in the Host header), and libidn2 2.3.3 rejects
 * A-labels that resolve and that browsers accept (emoji names such as "xn--ls8h.la"). This
 * keeps the common case free of heap allocation: libidn2 is only called, and only allocates,
 * for a label with a non-ASCII byte. We do not pass IDN2_USE_STD3_ASCII_RULES: the lists
 * contain '_', and libidn2 2.3.3 with that flag silently deletes disallowed characters
 * ("a_b" becomes "ab", "x/y" becomes "xy"), which would make different hosts collide. Instead
 * every host, mapped or not, is checked at the end against our own rule: labels of 1-63 bytes
 * of a-z, 0-9, '-' and '_'.
 */
#include "common/compat.h"

#include "http/url.h"

#include "common/slice.h"

#include <arpa/inet.h>
#include <idn2.h>

/*
 * Room for a host after percent-decoding and before IDN mapping. A Unicode host whose A-label
 * form fits in URL_HOST_MAX can be several times longer in UTF-8 (4-byte characters, combining
 * sequences that NFC composes); anything longer than this is rejected as "host too long".
 */
#define URL_HOST_WORK 2048

/* Longest IPv6 literal we read, without brackets: INET6_ADDRSTRLEN less the NUL. */
#define URL_IPV6_TEXT_MAX 45

/* Bounded writer into a caller's buffer; full is set, and nothing more written, on overflow. */
struct url_buf {
    char *p;
    size_t len;
    size_t cap;
    int full;
};

struct url_scheme {
    const char *name;
    size_t len;
    uint16_t port;
};

static const struct url_scheme url_schemes[] = {
    {"http", 4, 80}, {"https", 5, 443}, {"ws", 2, 80}, {"wss", 3, 443}, {"ftp", 3, 21},
};

static const char url_hex_upper[] = "0123456789ABCDEF";

static void url_buf_put(struct url_buf *b, const char *s, size_t n)
{
    if (b->full || n > b->cap - b->len) {
        b->full = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void url_buf_putc(struct url_buf *b, char c)
{
    url_buf_put(b, &c, 1);
}

static void url_buf_put_escape(struct url_buf *b, unsigned char c)
{
    char esc[3];

    esc[0] = '%';
    esc[1] = url_hex_upper[c >> 4];
    esc[2] = url_hex_upper[c & 0x0f];
    url_buf_put(b, esc, sizeof(esc));
}

static int url_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode the escape "%XY" at p[0..2] of an input that has n bytes left; -1 if malformed. */
static int url_pct_decode(const char *p, size_t n)
{
    int hi, lo;

    if (n < 3)
        return -1;
    hi = url_hex_value((unsigned char)p[1]);
    lo = url_hex_value((unsigned char)p[2]);
    if (hi < 0 || lo < 0)
        return -1;
    return hi * 16 + lo;
}

static int url_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int url_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static unsigned char url_lower(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned char)(c - 'A' + 'a');
    return c;
}

static int url_is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* RFC 3986 unreserved: the only escapes we decode in a path. */
static int url_is_unreserved(unsigned char c)
{
    return url_is_alpha(c) || url_is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* An ASCII byte that may appear in a host name (before lower-casing). */
static int url_is_host_byte(unsigned char c)
{
    return url_is_alpha(c) || url_is_digit(c) || c == '-' || c == '_' || c == '.';
}

/*
 * Bytes that are percent-encoded in the path and query (see url.h): controls, space, '"', '<',
 * '>', '\\', '^', '`', '{', '|', '}', DEL and every non-ASCII byte. Two bit masks instead of a
 * switch: this runs for every byte of every URL.
 */
#define URL_ESC_LO (0x00000001ffffffffULL | 1ULL << '"' | 1ULL << '<' | 1ULL << '>')
#define URL_ESC_HI                                                                                 \
    (1ULL << ('\\' - 64) | 1ULL << ('^' - 64) | 1ULL << ('`' - 64) | 1ULL << ('{' - 64) |          \
     1ULL << ('|' - 64) | 1ULL << ('}' - 64) | 1ULL << (0x7f - 64))

static int url_must_escape(unsigned char c)
{
    if (c >= 0x80)
        return 1;
    return (int)((c < 64 ? URL_ESC_LO >> c : URL_ESC_HI >> (c - 64)) & 1);
}

/* The length of the run at in[0..n) that is copied as it is: no '%', nothing to escape. */
static size_t url_plain_run(const char *in, size_t n)
{
    size_t i = 0;

    while (i < n && in[i] != '%' && !url_must_escape((unsigned char)in[i]))
        i++;
    return i;
}

/* ---- IPv4 ---------------------------------------------------------------------------------- */

/*
 * One part of an inet_aton-style address: decimal, octal with a leading 0, hex with 0x.
 * "0x" alone is 0, as in the WHATWG IPv4 number parser. Values above 2^32 saturate so that any
 * number of digits is safe. Returns 0 or -1.
 */
static int url_ipv4_number(const char *p, size_t n, uint64_t *value)
{
    unsigned radix = 10;
    uint64_t v = 0;
    size_t i = 0;

    if (n == 0)
        return -1;
    if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        radix = 16;
        i = 2;
    } else if (n >= 2 && p[0] == '0') {
        radix = 8;
        i = 1;
    }
    for (; i < n; i++) {
        int d = url_hex_value((unsigned char)p[i]);

        if (d < 0 || (unsigned)d >= radix)
            return -1;
        v = v * radix + (unsigned)d;
        if (v > UINT32_MAX)
            v = (uint64_t)UINT32_MAX + 1;
    }
    *value = v;
    return 0;
}

/* WHATWG "ends in a number": the last label is all digits or parses as an IPv4 number. */
static int url_ends_in_number(const char *s, size_t n)
{
    size_t start = n;
    size_t i;
    uint64_t v;

    while (start > 0 && s[start - 1] != '.')
        start--;
    if (start == n)
        return 0;
    for (i = start; i < n; i++) {
        if (!url_is_digit((unsigned char)s[i]))
            break;
    }
    if (i == n)
        return 1;
    return url_ipv4_number(s + start, n - start, &v) == 0;
}

/* Parse 1 to 4 dotted parts (no trailing dot) into a host-order address. Returns 0 or -1. */
static int url_ipv4_parse(const char *s, size_t n, uint32_t *addr)
{
    uint64_t parts[4];
    size_t count = 0;
    size_t start = 0;
    size_t i;
    uint64_t v, limit;

    for (i = 0; i <= n; i++) {
        if (i < n && s[i] != '.')
            continue;
        if (count == 4)
            return -1;
        if (url_ipv4_number(s + start, i - start, &parts[count]) < 0)
            return -1;
        count++;
        start = i + 1;
    }
    v = 0;
    for (i = 0; i + 1 < count; i++) {
        if (parts[i] > 255)
            return -1;
        v = v * 256 + parts[i];
    }
    limit = (uint64_t)1 << (8 * (5 - count));
    if (parts[count - 1] >= limit)
        return -1;
    v = (v << (8 * (5 - count))) + parts[count - 1];
    *addr = (uint32_t)v;
    return 0;
}

/* ---- IPv6 ---------------------------------------------------------------------------------- */

/*
 * RFC 5952 text: lower-case hex without leading zeros, the longest run (the first of equal
 * runs) of two or more zero groups written "::", and IPv4-mapped addresses as ::ffff:a.b.c.d.
 * out must hold URL_HOST_MAX + 1 bytes. Returns the length.
 */
static size_t url_ipv6_format(const unsigned char a[16], char *out)
{
    unsigned w[8];
    int best = -1, best_len = 0;
    int run = -1, run_len = 0;
    size_t n = 0;
    int i;

    for (i = 0; i < 8; i++)
        w[i] = ((unsigned)a[2 * i] << 8) | a[2 * i + 1];
    if (w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0xffff) {
        return (size_t)snprintf(out, URL_HOST_MAX + 1, "::ffff:%u.%u.%u.%u", a[12], a[13], a[14],
                                a[15]);
    }
    for (i = 0; i < 8; i++) {
        if (w[i] != 0) {
            run = -1;
            continue;
        }
        if (run < 0) {
            run = i;
            run_len = 0;
        }
        run_len++;
        if (run_len > best_len) {
            best = run;
            best_len = run_len;
        }
    }
    if (best_len < 2)
        best = -1;
    for (i = 0; i < 8; i++) {
        if (i == best) {
            out[n++] = ':';
            out[n++] = ':';
            i += best_len - 1;
            continue;
        }
        if (n > 0 && out[n - 1] != ':')
            out[n++] = ':';
        n += (size_t)snprintf(out + n, URL_HOST_MAX + 1 - n, "%x", w[i]);
    }
    out[n] = '\0';
    return n;
}

static int url_ipv6(const char *p, size_t n, char *out, const char **why)
{
    char text[URL_IPV6_TEXT_MAX + 1];
    unsigned char addr[16];
    size_t i;

    if (memchr(p, '%', n)) {
        *why = "IPv6 zone id not supported";
        return -1;
    }
    if (n == 0 || n > URL_IPV6_TEXT_MAX) {
        *why = "invalid IPv6 address";
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (url_hex_value(c) < 0 && c != ':' && c != '.') {
            *why = "invalid IPv6 address";
            return -1;
        }
    }
    memcpy(text, p, n);
    text[n] = '\0';
    if (inet_pton(AF_INET6, text, addr) != 1) {
        *why = "invalid IPv6 address";
        return -1;
    }
    return (int)url_ipv6_format(addr, out);
}

/* ---- host names ---------------------------------------------------------------------------- */

static const char *url_idn_error(int rc)
{
    switch (rc) {
    case IDN2_ENCODING_ERROR:
        return "IDN: invalid UTF-8 in host";
    case IDN2_PUNYCODE_BAD_INPUT:
    case IDN2_PUNYCODE_BIG_OUTPUT:
    case IDN2_PUNYCODE_OVERFLOW:
        return "IDN: bad punycode";
    case IDN2_TOO_BIG_DOMAIN:
        return "IDN: host too long";
    case IDN2_TOO_BIG_LABEL:
        return "IDN: label too long";
    case IDN2_DISALLOWED:
    case IDN2_UNASSIGNED:
        return "IDN: disallowed character in host";
    case IDN2_2HYPHEN:
        return "IDN: label has '--' in the third and fourth positions";
    case IDN2_HYPHEN_STARTEND:
        return "IDN: label starts or ends with '-'";
    case IDN2_LEADING_COMBINING:
        return "IDN: label starts with a combining mark";
    case IDN2_CONTEXTJ:
    case IDN2_CONTEXTJ_NO_RULE:
    case IDN2_CONTEXTO:
    case IDN2_CONTEXTO_NO_RULE:
        return "IDN: contextual rule violated";
    case IDN2_BIDI:
        return "IDN: bidirectional rule violated";
    case IDN2_MALLOC:
        return "IDN: out of memory";
    default:
        return "IDN: invalid internationalised name";
    }
}

/*
 * Length of a label separator at s[0..n): '.', or one of the characters UTS#46 maps to '.'
 * (U+3002 ideographic, U+FF0E fullwidth, U+FF61 halfwidth ideographic full stop); 0 if none.
 * Splitting on them here keeps each libidn2 call to one label.
 */
static size_t url_dot_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;

    if (n >= 1 && u[0] == '.')
        return 1;
    if (n >= 3 && u[0] == 0xe3 && u[1] == 0x80 && u[2] == 0x82)
        return 3;
    if (n >= 3 && u[0] == 0xef && u[1] == 0xbc && u[2] == 0x8e)
        return 3;
    if (n >= 3 && u[0] == 0xef && u[1] == 0xbd && u[2] == 0xa1)
        return 3;
    return 0;
}

/*
 * Map the decoded host in dec[0..n) (which has a non-ASCII byte) to ASCII in asc, one label at
 * a time; asc holds URL_HOST_WORK bytes. dec must have room for one more byte: labels are
 * NUL-terminated in place for libidn2. Returns the length written, or -1 with *why set.
 */
static int url_idn_map(char *dec, size_t n, char *asc, const char **why)
{
    struct url_buf b = {asc, 0, URL_HOST_WORK, 0};
    uint8_t *mapped = NULL;
    size_t i = 0;
    int rc = -1;

    for (;;) {
        size_t j = i;
        size_t sep = 0;
        int non_ascii = 0;

        while (j < n) {
            sep = url_dot_len(dec + j, n - j);
            if (sep > 0)
                break;
            if ((unsigned char)dec[j] >= 0x80)
                non_ascii = 1;
            j++;
        }
        if (non_ascii) {
            size_t k, mlen;
            int irc;

            dec[j] = '\0';
            irc = idn2_lookup_u8((const uint8_t *)(dec + i), &mapped, IDN2_NONTRANSITIONAL);
            if (irc != IDN2_OK) {
                *why = url_idn_error(irc);
                goto out;
            }
            mlen = strlen((const char *)mapped);
            for (k = 0; k < mlen; k++) {
                if (!url_is_host_byte(mapped[k])) {
                    *why = "IDN: maps to a character not allowed in a host";
                    goto out;
                }
            }
            url_buf_put(&b, (const char *)mapped, mlen);
            idn2_free(mapped);
            mapped = NULL;
        } else {
            url_buf_put(&b, dec + i, j - i);
        }
        if (j == n)
            break;
        url_buf_putc(&b, '.');
        i = j + sep;
    }
    if (b.full) {
        *why = "host too long";
        goto out;
    }
    rc = (int)b.len;
out:
    idn2_free(mapped);
    return rc;
}

/*
 * Finish an all-ASCII host s[0..n): lower-case, drop trailing dots, then either an IPv4
 * address (when the last label looks like a number) or a name of valid labels.
 */
static int url_ascii_host(const char *s, size_t n, char *out, enum url_host_type *type,
                          const char **why)
{
    size_t i, label = 0;
    uint32_t a;

    while (n > 0 && s[n - 1] == '.')
        n--;
    if (n == 0) {
        *why = "empty host";
        return -1;
    }
    if (url_ends_in_number(s, n)) {
        if (url_ipv4_parse(s, n, &a) < 0) {
            *why = "invalid IPv4 address";
            return -1;
        }
        *type = URL_HOST_IPV4;
        return snprintf(out, URL_HOST_MAX + 1, "%u.%u.%u.%u", (unsigned)(a >> 24),
                        (unsigned)((a >> 16) & 0xff), (unsigned)((a >> 8) & 0xff),
                        (unsigned)(a & 0xff));
    }
    if (n > URL_HOST_MAX) {
        *why = "host too long";
        return -1;
    }
    for (i = 0; i <= n; i++) {
        unsigned char c = i < n ? url_lower((unsigned char)s[i]) : '.';

        if (c == '.') {
            if (label == 0) {
                *why = "empty label in host";
                return -1;
            }
            label = 0;
        } else if (!url_is_host_byte(c)) {
            *why = "invalid character in host";
            return -1;
        } else if (++label > 63) {
            *why = "host label too long";
            return -1;
        }
        if (i < n)
            out[i] = (char)c;
    }
    out[n] = '\0';
    *type = URL_HOST_NAME;
    return (int)n;
}

static int url_name(const char *in, size_t len, char *out, enum url_host_type *type,
                    const char **why)
{
    char dec[URL_HOST_WORK + 1];
    char asc[URL_HOST_WORK];
    size_t dn = 0;
    size_t i;
    int non_ascii = 0;
    int n;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];

        if (c == '%') {
            int v = url_pct_decode(in + i, len - i);

            if (v < 0) {
                *why = "bad percent-escape in host";
                return -1;
            }
            c = (unsigned char)v;
            i += 2;
            if (c < 0x80 && !url_is_host_byte(c)) {
                *why = "invalid percent-encoded character in host";
                return -1;
            }
        } else if (url_is_control(c)) {
            *why = "control character in host";
            return -1;
        } else if (c == ' ') {
            *why = "space in host";
            return -1;
        } else if (c < 0x80 && !url_is_host_byte(c)) {
            *why = "invalid character in host";
            return -1;
        }
        if (dn == URL_HOST_WORK) {
            *why = "host too long";
            return -1;
        }
        if (c >= 0x80)
            non_ascii = 1;
        dec[dn++] = (char)url_lower(c);
    }
    if (!non_ascii)
        return url_ascii_host(dec, dn, out, type, why);
    n = url_idn_map(dec, dn, asc, why);
    if (n < 0)
        return -1;
    return url_ascii_host(asc, (size_t)n, out, type, why);
}

int url_normalize_host(const char *in, size_t len, char *out, enum url_host_type *type,
                       const char **why)
{
    enum url_host_type t = URL_HOST_NAME;
    int n;

    if (len == 0) {
        *why = "empty host";
        return -1;
    }
    if (len > URL_MAX) {
        *why = "host too long";
        return -1;
    }
    if (in[0] == '[') {
        if (len < 2 || in[len - 1] != ']') {
            *why = "invalid IPv6 address";
            return -1;
        }
        n = url_ipv6(in + 1, len - 2, out, why);
        t = URL_HOST_IPV6;
    } else if (memchr(in, ':', len)) {
        n = url_ipv6(in, len, out, why);
        t = URL_HOST_IPV6;
    } else {
        n = url_name(in, len, out, &t, why);
    }
    if (n >= 0 && type)
        *type = t;
    return n;
}

/* ---- whole URLs ---------------------------------------------------------------------------- */

static const struct url_scheme *url_find_scheme(const char *s, size_t n)
{
    size_t i, k;

    for (i = 0; i < HAVEN_ARRAY_LEN(url_schemes); i++) {
        if (url_schemes[i].len != n)
            continue;
        for (k = 0; k < n; k++) {
            if (url_lower((unsigned char)s[k]) != (unsigned char)url_schemes[i].name[k])
                break;
        }
        if (k == n)
            return &url_schemes[i];
    }
    return NULL;
}

/* Index of the ':' ending a scheme ALPHA *(ALPHA / DIGIT / "+" / "-" / "."), or 0 if none. */
static size_t url_scheme_colon(const char *in, size_t len)
{
    size_t i;

    if (len == 0 || !url_is_alpha((unsigned char)in[0]))
        return 0;
    for (i = 1; i < len; i++) {
        unsigned char c = (unsigned char)in[i];

        if (c == ':')
            return i;
        if (!url_is_alpha(c) && !url_is_digit(c) && c != '+' && c != '-' && c != '.')
            return 0;
    }
    return 0;
}

static int url_is_authority_end(char c)
{
    return c == '/' || c == '\\' || c == '?' || c == '#';
}

/* A port: digits only, 1-65535, leading zeros allowed; empty means the default. */
static int url_port(const char *p, size_t n, uint16_t def, uint16_t *port, const char **why)
{
    uint32_t v = 0;
    size_t i;

    if (n == 0) {
        *port = def;
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (!url_is_digit((unsigned char)p[i])) {
            *why = "invalid port";
            return -1;
        }
        v = v * 10 + (uint32_t)(p[i] - '0');
        if (v > 65535)
            v = 65536;
    }
    if (v == 0 || v > 65535) {
        *why = "port out of range";
        return -1;
    }
    *port = (uint16_t)v;
    return 0;
}

/*
 * Write the path in[0..n) (which is empty or starts with '/' or '\\') in canonical form:
 * separators '/' or '\\', empty segments dropped, escapes normalised, "." and ".." resolved.
 * A segment writes the '/' before it; "." and ".." (seen after decoding, so "%2e" counts)
 * are taken back out and leave the output ending in '/', as does a final empty segment, so
 * "/a/b/", "/a/b/." and "/a/b/c/.." all give "/a/b/".
 */
static int url_path(const char *in, size_t n, struct url_buf *b, const char **why)
{
    size_t path_off = b->len;
    size_t i = 0;

    url_buf_putc(b, '/');
    while (i < n) {
        size_t start = i + 1; /* past the separator */
        size_t end = start;
        size_t seg_off, seg_len;

        while (end < n && in[end] != '/' && in[end] != '\\')
            end++;
        i = end;
        if (b->full)
            return 0;
        if (end == start) {
            if (end == n && b->p[b->len - 1] != '/')
                url_buf_putc(b, '/');
            continue;
        }
        if (b->p[b->len - 1] != '/')
            url_buf_putc(b, '/');
        seg_off = b->len;
        for (i = start; i < end;) {
            unsigned char c = (unsigned char)in[i];
            size_t run = url_plain_run(in + i, end - i);

            if (run > 0) {
                url_buf_put(b, in + i, run);
                i += run;
            } else if (c == '%') {
                int v = url_pct_decode(in + i, end - i);

                if (v < 0) {
                    *why = "bad percent-escape in path";
                    return -1;
                }
                if (url_is_unreserved((unsigned char)v))
                    url_buf_putc(b, (char)v);
                else
                    url_buf_put_escape(b, (unsigned char)v);
                i += 3;
            } else if (url_must_escape(c)) {
                url_buf_put_escape(b, c);
                i++;
            } else {
                url_buf_putc(b, (char)c);
                i++;
            }
        }
        if (b->full)
            return 0;
        seg_len = b->len - seg_off;
        if (seg_len == 1 && b->p[seg_off] == '.') {
            b->len = seg_off;
        } else if (seg_len == 2 && b->p[seg_off] == '.' && b->p[seg_off + 1] == '.') {
            b->len = seg_off;
            if (seg_off - 1 > path_off) {
                b->len = seg_off - 1;
                while (b->p[b->len - 1] != '/')
                    b->len--;
            }
        }
    }
    return 0;
}

static void url_query(const char *in, size_t n, struct url_buf *b)
{
    size_t i;

    for (i = 0; i < n;) {
        unsigned char c = (unsigned char)in[i];
        size_t run;

        if (url_must_escape(c)) {
            url_buf_put_escape(b, c);
            i++;
            continue;
        }
        /* Everything else, '%' included, is kept as it is: copy the run in one go. */
        run = 1;
        while (i + run < n && !url_must_escape((unsigned char)in[i + run]))
            run++;
        url_buf_put(b, in + i, run);
        i += run;
    }
}

/* The pieces of an input URL, as slices of it; the fragment is not kept. */
struct url_parts {
    const struct url_scheme *scheme;
    struct slice host; /* with brackets for IPv6 */
    struct slice port; /* empty: the scheme's default */
    struct slice path; /* empty or starting with '/' or '\\' */
    struct slice query;
    int has_query;
};

/* Split in[0..len), which has no control characters, into parts. Returns 0 or -1. */
static int url_split(const char *in, size_t len, struct url_parts *parts, const char **why)
{
    size_t pos = 0, colon, i;
    size_t auth_end, host_start, host_end, path_end, query_end;

    /*
     * "name:" starts a scheme unless one or more digits and then the end of the authority
     * follow the colon ("example.com:8080/x"): then the input is a bare host and a port.
     * A supported scheme wins even then, as in browsers ("http:80" is http://0.0.0.80/).
     */
    parts->scheme = &url_schemes[0];
    colon = url_scheme_colon(in, len);
    if (colon > 0) {
        const struct url_scheme *scheme = url_find_scheme(in, colon);

        if (scheme) {
            parts->scheme = scheme;
            pos = colon + 1;
            while (pos < len && (in[pos] == '/' || in[pos] == '\\'))
                pos++;
        } else {
            i = colon + 1;
            while (i < len && url_is_digit((unsigned char)in[i]))
                i++;
            if (i == colon + 1 || (i < len && !url_is_authority_end(in[i]))) {
                *why = "unsupported scheme";
                return -1;
            }
        }
    }

    /* authority: [userinfo "@"] host [":" port], userinfo up to the last '@' */
    auth_end = pos;
    while (auth_end < len && !url_is_authority_end(in[auth_end]))
        auth_end++;
    host_start = pos;
    for (i = pos; i < auth_end; i++) {
        if (in[i] == '@')
            host_start = i + 1;
    }
    host_end = auth_end;
    if (host_start < auth_end && in[host_start] == '[') {
        const char *rb = memchr(in + host_start, ']', auth_end - host_start);

        if (!rb) {
            *why = "invalid IPv6 address";
            return -1;
        }
        host_end = (size_t)(rb - in) + 1;
        if (host_end < auth_end && in[host_end] != ':') {
            *why = "invalid character after IPv6 address";
            return -1;
        }
    } else {
        const char *c = memchr(in + host_start, ':', auth_end - host_start);

        if (c)
            host_end = (size_t)(c - in);
    }
    parts->host = slice_make(in + host_start, host_end - host_start);
    parts->port = slice_make(in + auth_end, 0);
    if (host_end < auth_end)
        parts->port = slice_make(in + host_end + 1, auth_end - host_end - 1);

    path_end = auth_end;
    while (path_end < len && in[path_end] != '?' && in[path_end] != '#')
        path_end++;
    parts->path = slice_make(in + auth_end, path_end - auth_end);
    parts->has_query = path_end < len && in[path_end] == '?';
    parts->query = slice_make(in + path_end, 0);
    if (parts->has_query) {
        query_end = path_end + 1;
        while (query_end < len && in[query_end] != '#')
            query_end++;
        parts->query = slice_make(in + path_end + 1, query_end - path_end - 1);
    }
    return 0;
}

/*
 * The common case in one pass: "http://" or "https://", a lower-case host name of letters,
 * digits, '-', '_' and '.' that does not end in a number or a dot, no userinfo or port, and a
 * path and query with nothing to decode, escape or resolve (no '%' in the path, no '\\', no
 * "//", no "/." , no '#'). Such a URL is already canonical and is copied as it is, with "/"
 * added when the path is empty. Returns 1 when it did so, 0 to leave the URL to the full
 * parser. Every URL it accepts, the full parser would turn into the same text (the fuzz
 * harness checks that).
 */
/* Byte classes for the fast path, filled once before main() runs. */
#define URL_C_LABEL 0x1 /* a-z 0-9 '-' '_': a host name byte needing no change */
#define URL_C_PATH_STOP                                                                            \
    0x2                      /* ends a plain run of path: '/', '?', or anything the fast path      \
                                leaves to the full parser ('%', '\\', '#', bytes to escape) */
#define URL_C_QUERY_STOP 0x4 /* '#' and bytes to escape */

static unsigned char url_class[256];

__attribute__((constructor)) static void url_class_init(void)
{
    for (int c = 0; c < 256; c++) {
        unsigned char k = 0;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
            k |= URL_C_LABEL;
        if (c == '/' || c == '?' || c == '%' || c == '\\' || c == '#' ||
            url_must_escape((unsigned char)c))
            k |= URL_C_PATH_STOP;
        if (c == '#' || url_must_escape((unsigned char)c))
            k |= URL_C_QUERY_STOP;
        url_class[c] = k;
    }
}

static int url_normalize_fast(const char *in, size_t len, struct url *u)
{
    size_t i, host_off, host_end, label = 0, last_label = 0;
    const struct url_scheme *scheme;

    if (len > 8 && memcmp(in, "https://", 8) == 0) {
        scheme = &url_schemes[1];
        i = 8;
    } else if (len > 7 && memcmp(in, "http://", 7) == 0) {
        scheme = &url_schemes[0];
        i = 7;
    } else {
        return 0;
    }
    host_off = last_label = i;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '/' || c == '?')
            break;
        if (c == '.') {
            if (label == 0)
                return 0;
            last_label = i + 1;
            label = 0;
            continue;
        }
        if (!(url_class[c] & URL_C_LABEL))
            return 0;
        if (++label > 63)
            return 0;
    }
    host_end = i;
    /* Empty, ends in a dot, too long, or numeric last label (an IPv4 form): the full parser. */
    if (label == 0 || host_end - host_off > URL_HOST_MAX ||
        (in[last_label] >= '0' && in[last_label] <= '9'))
        return 0;
    /* The path: nothing to decode, escape or resolve. */
    while (i < len) {
        while (i < len && !(url_class[(unsigned char)in[i]] & URL_C_PATH_STOP))
            i++;
        if (i == len || in[i] == '?')
            break;
        if (in[i] != '/' || (i + 1 < len && (in[i + 1] == '/' || in[i + 1] == '.')))
            return 0;
        i++;
    }
    u->path_len = i - host_end;
    u->has_query = i < len;
    if (u->has_query) {
        u->query_off = i + 1;
        for (i++; i < len; i++) {
            if (url_class[(unsigned char)in[i]] & URL_C_QUERY_STOP)
                return 0;
        }
    }
    if (u->path_len == 0) {
        /* "http://host" or "http://host?q": the path is "/". */
        memcpy(u->text, in, host_end);
        u->text[host_end] = '/';
        memcpy(u->text + host_end + 1, in + host_end, len - host_end);
        u->len = len + 1;
        u->path_len = 1;
        if (u->has_query)
            u->query_off++;
    } else {
        memcpy(u->text, in, len);
        u->len = len;
    }
    if (u->len > URL_MAX)
        return 0;
    u->text[u->len] = '\0';
    u->path_off = host_end;
    u->query_len = u->has_query ? u->len - u->query_off : 0;
    if (!u->has_query)
        u->query_off = u->len;
    u->scheme_len = scheme->len;
    u->host_off = host_off;
    u->host_len = host_end - host_off;
    u->port = scheme->port;
    u->host_type = URL_HOST_NAME;
    return 1;
}

/* The full parser: every URL that can be read. */
static int url_normalize_full(const char *in, size_t len, struct url *u, const char **why)
{
    struct url_buf b = {u->text, 0, URL_MAX, 0};
    struct url_parts parts;
    char host[URL_HOST_MAX + 1];
    enum url_host_type host_type = URL_HOST_NAME;
    uint16_t port;
    size_t i;
    int host_len;
    int rc = -1;

    u->text[0] = '\0';
    u->len = 0;
    if (len == 0) {
        *why = "empty URL";
        goto out;
    }
    if (len > URL_MAX) {
        *why = "URL too long";
        goto out;
    }
    for (i = 0; i < len; i++) {
        if (url_is_control((unsigned char)in[i])) {
            *why = "control character in URL";
            goto out;
        }
    }
    if (url_split(in, len, &parts, why) < 0)
        goto out;
    host_len = url_normalize_host(parts.host.p, parts.host.len, host, &host_type, why);
    if (host_len < 0)
        goto out;
    if (url_port(parts.port.p, parts.port.len, parts.scheme->port, &port, why) < 0)
        goto out;

    url_buf_put(&b, parts.scheme->name, parts.scheme->len);
    url_buf_put(&b, "://", 3);
    if (host_type == URL_HOST_IPV6)
        url_buf_putc(&b, '[');
    u->host_off = b.len;
    url_buf_put(&b, host, (size_t)host_len);
    if (host_type == URL_HOST_IPV6)
        url_buf_putc(&b, ']');
    if (port != parts.scheme->port) {
        char num[8];
        int n = snprintf(num, sizeof(num), ":%u", (unsigned)port);

        url_buf_put(&b, num, (size_t)n);
    }
    u->path_off = b.len;
    if (url_path(parts.path.p, parts.path.len, &b, why) < 0)
        goto out;
    u->path_len = b.len - u->path_off;
    u->has_query = parts.has_query;
    u->query_off = b.len;
    u->query_len = 0;
    if (parts.has_query) {
        url_buf_putc(&b, '?');
        u->query_off = b.len;
        url_query(parts.query.p, parts.query.len, &b);
        u->query_len = b.len - u->query_off;
    }
    if (b.full) {
        *why = "URL too long";
        goto out;
    }
    u->text[b.len] = '\0';
    u->len = b.len;
    u->scheme_len = parts.scheme->len;
    u->host_len = (size_t)host_len;
    u->port = port;
    u->host_type = host_type;
    rc = 0;
out:
    if (rc < 0) {
        u->text[0] = '\0';
        u->len = 0;
    }
    return rc;
}

int url_normalize(const char *in, size_t len, struct url *u, const char **why)
{
    if (len <= URL_MAX && url_normalize_fast(in, len, u))
        return 0;
    return url_normalize_full(in, len, u, why);
}
