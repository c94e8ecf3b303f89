/*
 * hello.c -- TLS ClientHello peek parser (see hello.h for the rules).
 *
 * DESIGN
 * The ClientHello is one handshake message that may be cut into several records. Instead of
 * gathering it into a buffer (which would need a copy of up to HELLO_MAX bytes), the parser
 * reads it through a cursor, struct hello_reader, that walks the records in place: when the
 * current record's payload runs out it checks the next record header and carries on inside
 * that record. Every read either succeeds, stops with HELLO_NEED_MORE (the buffer ended), or
 * stops with HELLO_MALFORMED (a record header is wrong). The message parser above it is
 * written as if the message were contiguous, and tracks where it is with r->off, the number of
 * message bytes read so far.
 *
 * Structure lengths are checked against the end offset of the structure they sit in (the
 * message, the extensions block, one extension, one list), never against len. Together with
 * reading strictly in stream order, that is what makes a prefix of a stream give
 * HELLO_NEED_MORE or the same answer as the whole stream: the first check that fails does not
 * depend on how much of the stream has arrived.
 */
#include "common/compat.h"

#include <stdarg.h>

#include "tls/hello.h"

#define HELLO_RECORD_HEADER 5
#define HELLO_HANDSHAKE_HEADER 4
#define HELLO_CONTENT_HANDSHAKE 22
#define HELLO_TYPE_CLIENT_HELLO 1
#define HELLO_RANDOM_LEN 32
#define HELLO_MAX_SESSION_ID 32
/* legacy_version(2) random(32) session_id(1+0) cipher_suites(2+2) compression_methods(1+1) */
#define HELLO_MIN_BODY 41

#define HELLO_EXT_SERVER_NAME 0x0000
#define HELLO_EXT_ALPN 0x0010
#define HELLO_EXT_SUPPORTED_VERSIONS 0x002b
#define HELLO_EXT_PRE_SHARED_KEY 0x0029
#define HELLO_EXT_ECH 0xfe0d

/* Cursor over the handshake message bytes, walking the records that carry them. */
struct hello_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;           /* next byte of buf to read */
    size_t rec_left;      /* payload bytes of the current record not read yet */
    size_t nrec;          /* records entered so far */
    size_t off;           /* bytes of the handshake message read so far (its header included) */
    enum hello_status st; /* why the last read failed */
    char *err;
    size_t errlen;
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
hello_fail(struct hello_reader *r, const char *fmt, ...)
{
    va_list ap;

    r->st = HELLO_MALFORMED;
    if (r->errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int hello_need_more(struct hello_reader *r)
{
    r->st = HELLO_NEED_MORE;
    return -1;
}

/* A readable name for the extension types the parser knows, for messages. */
static const char *hello_ext_name(unsigned type)
{
    switch (type) {
    case HELLO_EXT_SERVER_NAME:
        return "server_name";
    case HELLO_EXT_ALPN:
        return "ALPN";
    case HELLO_EXT_SUPPORTED_VERSIONS:
        return "supported_versions";
    case HELLO_EXT_PRE_SHARED_KEY:
        return "pre_shared_key";
    case HELLO_EXT_ECH:
        return "encrypted_client_hello";
    default:
        return "unknown";
    }
}

/*
 * Enter the next record: r->pos is at a record header. Checks as much of the header as has
 * arrived, so that a wrong content type is reported as soon as its byte is in.
 */
static int hello_next_record(struct hello_reader *r)
{
    const uint8_t *h = r->buf + r->pos;
    size_t avail = r->len - r->pos;
    unsigned version;
    size_t reclen;

    /* A record needs a header and at least one byte; past the cap it cannot be ours. */
    if (r->pos + HELLO_RECORD_HEADER + 1 > HELLO_MAX) {
        return hello_fail(r, "ClientHello records exceed %d bytes", HELLO_MAX);
    }
    if (avail < 1) {
        return hello_need_more(r);
    }
    if (h[0] != HELLO_CONTENT_HANDSHAKE) {
        if (r->nrec == 0) {
            return hello_fail(r, "record type %u before ClientHello", h[0]);
        }
        return hello_fail(r, "record type %u (record %zu) inside ClientHello", h[0], r->nrec + 1);
    }
    if (avail < 3) {
        return hello_need_more(r);
    }
    version = (unsigned)h[1] << 8 | h[2];
    if (version == 0x0300) {
        return hello_fail(r, "record version 0x0300 (SSLv3) is not supported");
    }
    if (version < 0x0301 || version > 0x0304) {
        return hello_fail(r, "record version 0x%04x is not TLS 1.0-1.3", version);
    }
    if (avail < HELLO_RECORD_HEADER) {
        return hello_need_more(r);
    }
    reclen = (size_t)h[3] << 8 | h[4];
    if (reclen == 0) {
        return hello_fail(r, "empty handshake record (record %zu)", r->nrec + 1);
    }
    if (reclen > HELLO_MAX_RECORD) {
        return hello_fail(r, "record length %zu exceeds %d", reclen, HELLO_MAX_RECORD);
    }
    if (r->pos + HELLO_RECORD_HEADER + reclen > HELLO_MAX) {
        return hello_fail(r, "ClientHello records exceed %d bytes", HELLO_MAX);
    }
    r->pos += HELLO_RECORD_HEADER;
    r->rec_left = reclen;
    r->nrec++;
    return 0;
}

static int hello_u8(struct hello_reader *r, unsigned *v)
{
    if (r->rec_left == 0 && hello_next_record(r) < 0) {
        return -1;
    }
    if (r->pos >= r->len) {
        return hello_need_more(r);
    }
    *v = r->buf[r->pos];
    r->pos++;
    r->rec_left--;
    r->off++;
    return 0;
}

static int hello_u16(struct hello_reader *r, unsigned *v)
{
    unsigned hi, lo;

    if (hello_u8(r, &hi) < 0 || hello_u8(r, &lo) < 0) {
        return -1;
    }
    *v = hi << 8 | lo;
    return 0;
}

static int hello_u24(struct hello_reader *r, size_t *v)
{
    unsigned hi, lo;

    if (hello_u8(r, &hi) < 0 || hello_u16(r, &lo) < 0) {
        return -1;
    }
    *v = (size_t)hi << 16 | lo;
    return 0;
}

/* Read n bytes into out (which holds at least n). */
static int hello_bytes(struct hello_reader *r, uint8_t *out, size_t n)
{
    unsigned c;

    for (size_t i = 0; i < n; i++) {
        if (hello_u8(r, &c) < 0) {
            return -1;
        }
        out[i] = (uint8_t)c;
    }
    return 0;
}

/* Skip n bytes, a record's worth at a time. */
static int hello_skip(struct hello_reader *r, size_t n)
{
    while (n > 0) {
        size_t step;
        if (r->rec_left == 0 && hello_next_record(r) < 0) {
            return -1;
        }
        if (r->pos >= r->len) {
            return hello_need_more(r);
        }
        step = n;
        if (step > r->rec_left) {
            step = r->rec_left;
        }
        if (step > r->len - r->pos) {
            step = r->len - r->pos;
        }
        r->pos += step;
        r->rec_left -= step;
        r->off += step;
        n -= step;
    }
    return 0;
}

/* Bytes left before end (an offset in the message); the parser never reads past an end. */
static size_t hello_left(const struct hello_reader *r, size_t end)
{
    return end - r->off;
}

/*
 * A list inside an extension must fill the rest of the extension exactly: report a list
 * length that runs past it or leaves bytes over.
 */
static int hello_list_fills(struct hello_reader *r, const char *what, size_t list_len, size_t end)
{
    size_t left = hello_left(r, end);

    if (list_len == 0) {
        return hello_fail(r, "%s extension: empty list", what);
    }
    if (list_len > left) {
        return hello_fail(r, "%s extension: list length %zu exceeds extension (%zu bytes left)",
                          what, list_len, left);
    }
    if (list_len < left) {
        return hello_fail(r,
                          "%s extension: list length %zu leaves %zu bytes of the extension unused",
                          what, list_len, left - list_len);
    }
    return 0;
}

/* Copy a name into a message-safe form: printable ASCII kept, other bytes shown as '?'. */
static void hello_printable(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t i;

    for (i = 0; i < n && i + 1 < cap; i++) {
        out[i] = (in[i] > 0x20 && in[i] < 0x7f && in[i] != '"') ? (char)in[i] : '?';
    }
    out[i] = '\0';
}

static bool hello_is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static bool hello_is_hex(uint8_t c)
{
    return hello_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * Is this label a number as a URL host parser reads one ("127", "0x7f", "0x")? A host whose
 * last label is a number is an IPv4 address to browsers and to inet_aton().
 */
static bool hello_label_is_number(const uint8_t *p, size_t n)
{
    size_t i = 0;
    bool hex = false;

    if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        hex = true;
        i = 2;
    }
    for (; i < n; i++) {
        if (hex ? !hello_is_hex(p[i]) : !hello_is_digit(p[i])) {
            return false;
        }
    }
    return true;
}

/*
 * Check a host_name of n bytes (n <= HELLO_MAX_SNI + 1) as a DNS name and store it in
 * h->sni, lower-cased and without one trailing dot.
 */
static int hello_host_name(struct hello_reader *r, const uint8_t *name, size_t n, struct hello *h)
{
    char shown[HELLO_MAX_SNI + 2];
    size_t label = 0, last = 0;

    hello_printable(name, n, shown, sizeof(shown));
    if (n > 0 && name[n - 1] == '.') {
        n--;
    }
    if (n == 0) {
        return hello_fail(r, "server_name: host_name \"%s\" is empty", shown);
    }
    if (n > HELLO_MAX_SNI) {
        return hello_fail(r, "server_name: host_name of %zu bytes exceeds %d", n, HELLO_MAX_SNI);
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = name[i];
        if (c == '.') {
            if (label == 0) {
                return hello_fail(r, "server_name: host_name \"%s\" has an empty label", shown);
            }
            label = 0;
            last = i + 1;
            h->sni[i] = '.';
            continue;
        }
        if (!(hello_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
              c == '_')) {
            return hello_fail(r, "server_name: host_name \"%s\" contains byte 0x%02x", shown, c);
        }
        label++;
        if (label > 63) {
            return hello_fail(r, "server_name: host_name \"%s\" has a label longer than 63 bytes",
                              shown);
        }
        h->sni[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
    }
    if (label == 0) {
        return hello_fail(r, "server_name: host_name \"%s\" has an empty label", shown);
    }
    if (hello_label_is_number(name + last, n - last)) {
        return hello_fail(r, "server_name: host_name \"%s\" is an IP address (RFC 6066 forbids it)",
                          shown);
    }
    h->sni[n] = '\0';
    h->has_sni = true;
    return 0;
}

/* server_name (RFC 6066 3): ServerNameList server_name_list<1..2^16-1>. */
static int hello_ext_server_name(struct hello_reader *r, size_t end, struct hello *h)
{
    uint8_t name[HELLO_MAX_SNI + 1];
    unsigned list_len, type, name_len;

    if (hello_left(r, end) < 2) {
        return hello_fail(r, "server_name extension: length %zu is too short for a list",
                          hello_left(r, end));
    }
    if (hello_u16(r, &list_len) < 0 || hello_list_fills(r, "server_name", list_len, end) < 0) {
        return -1;
    }
    while (r->off < end) {
        if (hello_left(r, end) < 3) {
            return hello_fail(r, "server_name extension: %zu bytes left, too few for an entry",
                              hello_left(r, end));
        }
        if (hello_u8(r, &type) < 0 || hello_u16(r, &name_len) < 0) {
            return -1;
        }
        if (name_len > hello_left(r, end)) {
            return hello_fail(r,
                              "server_name extension: name length %u exceeds list (%zu bytes left)",
                              name_len, hello_left(r, end));
        }
        if (type != 0) {
            if (hello_skip(r, name_len) < 0) {
                return -1;
            }
            continue;
        }
        if (h->has_sni) {
            return hello_fail(r, "server_name extension: more than one host_name");
        }
        if (name_len == 0) {
            return hello_fail(r, "server_name extension: empty host_name");
        }
        if (name_len > HELLO_MAX_SNI + 1) {
            return hello_fail(r, "server_name: host_name of %u bytes exceeds %d", name_len,
                              HELLO_MAX_SNI);
        }
        if (hello_bytes(r, name, name_len) < 0 || hello_host_name(r, name, name_len, h) < 0) {
            return -1;
        }
    }
    return 0;
}

/* application_layer_protocol_negotiation (RFC 7301 3.1): ProtocolName list<2..2^16-1>. */
static int hello_ext_alpn(struct hello_reader *r, size_t end, struct hello *h)
{
    uint8_t proto[255];
    unsigned list_len, plen;

    if (hello_left(r, end) < 2) {
        return hello_fail(r, "ALPN extension: length %zu is too short for a list",
                          hello_left(r, end));
    }
    if (hello_u16(r, &list_len) < 0 || hello_list_fills(r, "ALPN", list_len, end) < 0) {
        return -1;
    }
    while (r->off < end) {
        if (hello_u8(r, &plen) < 0) {
            return -1;
        }
        if (plen == 0) {
            return hello_fail(r, "ALPN extension: empty protocol name");
        }
        if (plen > hello_left(r, end)) {
            return hello_fail(
                r, "ALPN extension: protocol name length %u exceeds list (%zu bytes left)", plen,
                hello_left(r, end));
        }
        if (hello_bytes(r, proto, plen) < 0) {
            return -1;
        }
        if (plen == 2 && memcmp(proto, "h2", 2) == 0) {
            h->alpn_h2 = true;
        } else if (plen == 8 && memcmp(proto, "http/1.1", 8) == 0) {
            h->alpn_http11 = true;
        } else {
            h->alpn_other = true;
        }
    }
    h->has_alpn = true;
    return 0;
}

/* supported_versions (RFC 8446 4.2.1): ProtocolVersion versions<2..254>. */
static int hello_ext_versions(struct hello_reader *r, size_t end, struct hello *h)
{
    unsigned list_len, v;

    if (hello_left(r, end) < 1) {
        return hello_fail(r, "supported_versions extension: empty");
    }
    if (hello_u8(r, &list_len) < 0 ||
        hello_list_fills(r, "supported_versions", list_len, end) < 0) {
        return -1;
    }
    if (list_len % 2 != 0) {
        return hello_fail(r, "supported_versions extension: list length %u is odd", list_len);
    }
    h->max_version = 0;
    while (r->off < end) {
        if (hello_u16(r, &v) < 0) {
            return -1;
        }
        if (v == 0x0304) {
            h->tls13 = true;
        }
        /* GREASE (RFC 8701) is 0x?a?a; only TLS versions (major 3) count as offers. */
        if ((v & 0x0f0f) != 0x0a0a && (v >> 8) == 3 && v > h->max_version) {
            h->max_version = (uint16_t)v;
        }
    }
    if (h->max_version == 0) {
        h->max_version = h->legacy_version;
    }
    return 0;
}

/* The extensions block: from r->off to end, which it must fill exactly. */
static int hello_extensions(struct hello_reader *r, size_t end, struct hello *h)
{
    uint8_t seen[65536 / 8];
    unsigned block_len, type, ext_len;
    size_t ext_end;
    int rc = 0;

    if (hello_left(r, end) < 2) {
        return hello_fail(r, "%zu byte after compression_methods is not an extensions block",
                          hello_left(r, end));
    }
    if (hello_u16(r, &block_len) < 0) {
        return -1;
    }
    if (block_len != hello_left(r, end)) {
        return hello_fail(r,
                          "extensions: length %u does not match the %zu bytes left in ClientHello",
                          block_len, hello_left(r, end));
    }
    memset(seen, 0, sizeof(seen));
    while (r->off < end && rc == 0) {
        if (hello_left(r, end) < 4) {
            return hello_fail(r, "extensions: %zu bytes left, too few for an extension header",
                              hello_left(r, end));
        }
        if (hello_u16(r, &type) < 0 || hello_u16(r, &ext_len) < 0) {
            return -1;
        }
        if (ext_len > hello_left(r, end)) {
            return hello_fail(
                r, "extension 0x%04x (%s): length %u exceeds extensions block (%zu bytes left)",
                type, hello_ext_name(type), ext_len, hello_left(r, end));
        }
        if (seen[type / 8] & (1u << (type % 8))) {
            return hello_fail(r, "extension 0x%04x (%s) appears twice", type, hello_ext_name(type));
        }
        seen[type / 8] |= (uint8_t)(1u << (type % 8));
        ext_end = r->off + ext_len;
        if (type == HELLO_EXT_PRE_SHARED_KEY && ext_end != end) {
            return hello_fail(r, "extension 0x0029 (pre_shared_key) is not the last extension");
        }
        if (type == HELLO_EXT_SERVER_NAME) {
            rc = hello_ext_server_name(r, ext_end, h);
        } else if (type == HELLO_EXT_ALPN) {
            rc = hello_ext_alpn(r, ext_end, h);
        } else if (type == HELLO_EXT_SUPPORTED_VERSIONS) {
            rc = hello_ext_versions(r, ext_end, h);
        } else if (type == HELLO_EXT_ECH) {
            if (ext_len == 0) {
                return hello_fail(r, "encrypted_client_hello extension: empty");
            }
            h->has_ech = true;
            rc = hello_skip(r, ext_len);
        } else {
            rc = hello_skip(r, ext_len);
        }
        if (rc == 0 && r->off != ext_end) {
            /* Each extension parser above fills its extension exactly; this cannot happen. */
            return hello_fail(r, "extension 0x%04x (%s): parsed length does not match", type,
                              hello_ext_name(type));
        }
    }
    return rc;
}

/* The handshake message, from its header to the end of the record that ends it. */
static int hello_message(struct hello_reader *r, struct hello *h)
{
    unsigned type, version, sid_len, cs_len, comp_len, method;
    size_t body_len, end, need;
    bool has_null = false;

    if (hello_u8(r, &type) < 0) {
        return -1;
    }
    if (type != HELLO_TYPE_CLIENT_HELLO) {
        return hello_fail(r, "handshake type %u is not ClientHello (1)", type);
    }
    if (hello_u24(r, &body_len) < 0) {
        return -1;
    }
    if (body_len < HELLO_MIN_BODY) {
        return hello_fail(r, "ClientHello length %zu is below the minimum of %d", body_len,
                          HELLO_MIN_BODY);
    }
    end = HELLO_HANDSHAKE_HEADER + body_len;
    /* The fewest record bytes that can carry it: full records plus one header per record. */
    need = end + HELLO_RECORD_HEADER * ((end + HELLO_MAX_RECORD - 1) / HELLO_MAX_RECORD);
    if (need > HELLO_MAX) {
        return hello_fail(r, "ClientHello length %zu does not fit in %d bytes of records", body_len,
                          HELLO_MAX);
    }

    if (hello_u16(r, &version) < 0) {
        return -1;
    }
    if (version == 0x0300) {
        return hello_fail(r, "client_version 0x0300 (SSLv3) is not supported");
    }
    if ((version >> 8) != 3 || version < 0x0301) {
        return hello_fail(r, "client_version 0x%04x is not TLS", version);
    }
    h->legacy_version = (uint16_t)version;
    h->max_version = (uint16_t)version;

    if (hello_skip(r, HELLO_RANDOM_LEN) < 0 || hello_u8(r, &sid_len) < 0) {
        return -1;
    }
    if (sid_len > HELLO_MAX_SESSION_ID) {
        return hello_fail(r, "session_id: length %u exceeds %d", sid_len, HELLO_MAX_SESSION_ID);
    }
    if (sid_len > hello_left(r, end)) {
        return hello_fail(r, "session_id: length %u exceeds ClientHello (%zu bytes left)", sid_len,
                          hello_left(r, end));
    }
    if (hello_skip(r, sid_len) < 0) {
        return -1;
    }

    if (hello_left(r, end) < 2) {
        return hello_fail(r, "cipher_suites: missing (%zu bytes left in ClientHello)",
                          hello_left(r, end));
    }
    if (hello_u16(r, &cs_len) < 0) {
        return -1;
    }
    if (cs_len == 0) {
        return hello_fail(r, "cipher_suites: empty");
    }
    if (cs_len % 2 != 0) {
        return hello_fail(r, "cipher_suites: length %u is odd", cs_len);
    }
    if (cs_len > hello_left(r, end)) {
        return hello_fail(r, "cipher_suites: length %u exceeds ClientHello (%zu bytes left)",
                          cs_len, hello_left(r, end));
    }
    if (hello_skip(r, cs_len) < 0) {
        return -1;
    }

    if (hello_left(r, end) < 1) {
        return hello_fail(r, "compression_methods: missing");
    }
    if (hello_u8(r, &comp_len) < 0) {
        return -1;
    }
    if (comp_len == 0) {
        return hello_fail(r, "compression_methods: empty");
    }
    if (comp_len > hello_left(r, end)) {
        return hello_fail(r, "compression_methods: length %u exceeds ClientHello (%zu bytes left)",
                          comp_len, hello_left(r, end));
    }
    for (unsigned i = 0; i < comp_len; i++) {
        if (hello_u8(r, &method) < 0) {
            return -1;
        }
        if (method == 0) {
            has_null = true;
        }
    }
    if (!has_null) {
        return hello_fail(r, "compression_methods: null (0) is missing");
    }

    if (r->off < end && hello_extensions(r, end, h) < 0) {
        return -1;
    }
    if (r->rec_left > 0) {
        return hello_fail(r, "%zu bytes follow the ClientHello in its record", r->rec_left);
    }
    h->consumed = r->pos;
    return 0;
}

/*
 * Decide from the first bytes whether this is a TLS record stream at all. Returns HELLO_OK to
 * go on parsing.
 */
static enum hello_status hello_classify(struct hello_reader *r)
{
    const uint8_t *b = r->buf;

    if (r->len < 1) {
        return HELLO_NEED_MORE;
    }
    if (b[0] & 0x80) {
        /* SSLv2 record: 2-byte length with the high bit set, then msg_type 1 (CLIENT-HELLO). */
        if (r->len < 3) {
            return HELLO_NEED_MORE;
        }
        if (b[2] == 1) {
            hello_fail(r,
                       "SSLv2-format ClientHello is not supported (it cannot carry a server name)");
            return HELLO_MALFORMED;
        }
    }
    if (b[0] < 20 || b[0] > 24) {
        if (r->errlen > 0) {
            snprintf(r->err, r->errlen, "first byte 0x%02x is not a TLS record type", b[0]);
        }
        return HELLO_NOT_TLS;
    }
    if (r->len < 2) {
        return HELLO_NEED_MORE;
    }
    if (b[1] != 3) {
        if (r->errlen > 0) {
            snprintf(r->err, r->errlen, "bytes 0x%02x 0x%02x do not start a TLS record", b[0],
                     b[1]);
        }
        return HELLO_NOT_TLS;
    }
    return HELLO_OK;
}

enum hello_status hello_parse(const uint8_t *buf, size_t len, struct hello *out, char *err,
                              size_t errlen)
{
    struct hello_reader r;
    struct hello h;
    enum hello_status st = HELLO_MALFORMED;

    memset(out, 0, sizeof(*out));
    memset(&h, 0, sizeof(h));
    memset(&r, 0, sizeof(r));
    if (errlen > 0) {
        err[0] = '\0';
    }
    r.buf = buf;
    r.len = buf ? len : 0;
    r.err = err;
    r.errlen = errlen;
    r.st = HELLO_MALFORMED;

    st = hello_classify(&r);
    if (st != HELLO_OK) {
        goto out;
    }
    if (hello_message(&r, &h) < 0) {
        st = r.st;
        goto out;
    }
    *out = h;
    st = HELLO_OK;
out:
    if (st == HELLO_NEED_MORE && errlen > 0) {
        err[0] = '\0';
    }
    return st;
}

const char *hello_status_name(enum hello_status st)
{
    switch (st) {
    case HELLO_OK:
        return "ok";
    case HELLO_NEED_MORE:
        return "need more";
    case HELLO_NOT_TLS:
        return "not TLS";
    case HELLO_MALFORMED:
        return "malformed";
    }
    return "unknown";
}
