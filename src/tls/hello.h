/*
 * hello.h -- peek at a TLS ClientHello: server name (SNI), ALPN, versions, ECH.
 *
 * After the proxy answers a CONNECT with 200, the first bytes the client sends decide what
 * happens next: tunnel, block, or inspect. This parser reads those bytes without consuming
 * them (the caller still holds them, to forward or to feed to its own TLS server) and says who
 * the client wants to talk to. It is the first code to see bytes from an untrusted client
 * inside a tunnel, so it is strict: where the TLS and extension RFCs say MUST, a violation is
 * HELLO_MALFORMED, and the caller closes the tunnel instead of guessing.
 *
 * What is accepted (RFC 8446 4.1.2 and 5.1, RFC 5246 7.4.1.2, RFC 6066 3, RFC 7301 3.1):
 *
 *  - Records: content type 22 (handshake), version 0x0301-0x0304, length 1-16384 (a
 *    ClientHello travels in TLSPlaintext records, whose limit is 2^14; the 2^14+256 of RFC
 *    8446 5.2 is for encrypted records). The ClientHello may be split over any number of
 *    records; it must start at the first byte of the first record and end at the last byte of
 *    its last record (bytes after it in the same record are malformed: nothing may follow a
 *    ClientHello before the server answers).
 *  - Handshake: type 1 (client_hello), length 41 or more, and the records that carry it
 *    together at most HELLO_MAX bytes.
 *  - Body: legacy_version 0x0301 or higher with major version 3 (0x0300, SSLv3, is rejected);
 *    32 bytes of random; session_id of 0-32 bytes; cipher_suites of even length, at least one
 *    suite; compression_methods non-empty and containing null (0); then either nothing (an old
 *    client without extensions) or an extensions block that ends exactly where the message
 *    does. Each extension's length must fit the block; an extension type that appears twice
 *    is malformed (RFC 8446 4.2), and pre_shared_key must be the last extension (4.2.11).
 *  - server_name (0): a non-empty list of entries (name_type, 16-bit length, name), each
 *    inside the extension and the list filling the extension exactly; at most one host_name
 *    (type 0) entry, which is the SNI. Entries of other types are skipped. The host name must
 *    be a DNS name: letters, digits, '-' and '_' (tolerated: real hosts use it), labels of
 *    1-63 bytes separated by '.', at most 253 bytes after one trailing '.' is dropped (RFC
 *    6066 forbids the dot; some clients send it, and dropping it gives the name the policy
 *    would see anyway). It is lower-cased. A name whose last label is a number (decimal, or
 *    0x followed by hex digits, as WHATWG URL hosts read it: "1.2.3.4", "127.1",
 *    "0x7f000001") is an IP literal, which RFC 6066 forbids in host_name: malformed. Bytes
 *    >= 0x80 are malformed (an internationalised name travels as its A-label, "xn--...").
 *  - application_layer_protocol_negotiation (16): a non-empty list filling the extension,
 *    of non-empty protocol names; "h2" and "http/1.1" are recognised, any other name sets
 *    alpn_other.
 *  - supported_versions (43): a non-empty, even-length list filling the extension; tls13 is
 *    set when it lists 0x0304.
 *  - encrypted_client_hello (0xfe0d): only its presence is noted (has_ech). When it is set,
 *    sni is the outer name: with real ECH that is the provider's public name, not the site
 *    (draft-ietf-tls-esni 6.1); Chrome also sends a random "GREASE" ECH extension to every
 *    server when it has no ECH key, in which case sni is the real site. The two cannot be told
 *    apart from the hello, by design.
 *  - Every other extension is skipped after its length is checked.
 *
 * Not TLS: a stream whose first byte is not a TLS content type (20-24) followed by major
 * version 3 is HELLO_NOT_TLS, decided from as few bytes as possible (one byte for "GET /",
 * two for 0x16 followed by something other than 3). A stream that does look like TLS but
 * starts with another record type ("record type 23 before ClientHello") is HELLO_MALFORMED.
 * An SSLv2-format ClientHello (first byte with the high bit set, third byte 1; sent only by
 * clients from before 2010, and unable to carry SNI) is HELLO_MALFORMED, not NOT_TLS: it is
 * TLS in intent, and a caller that tunnels whatever is not TLS must not let a client hide the
 * server name that way.
 *
 * Prefixes: the parser reads the stream in order and stops at the first problem, and every
 * length is checked against the structure it sits in, never against the buffer. So the result
 * for any prefix of a stream is HELLO_NEED_MORE or the same result (and message) as for the
 * whole; HELLO_OK only comes once the buffer holds every record that carries the hello; and
 * HELLO_NEED_MORE never comes for a buffer of HELLO_MAX bytes or more.
 *
 * Memory: nothing is allocated and the input is never written or read past len. The result
 * is copied into *out (sni is a copy, not a slice of the input). The parser keeps no state
 * between calls: after HELLO_NEED_MORE, call again with the same stream, grown.
 */
#ifndef HAVEN_TLS_HELLO_H
#define HAVEN_TLS_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Most bytes of records that may carry one ClientHello, record headers included. Real hellos
 * are 200 bytes to about 2 KiB (Chrome's post-quantum key share); a caller needs to buffer
 * this much per connection only while a hello is arriving. 64 KiB leaves room for a large
 * pre_shared_key ticket list and for records split into small fragments.
 */
#define HELLO_MAX 65536

/* Largest TLSPlaintext record payload (RFC 8446 5.1). */
#define HELLO_MAX_RECORD 16384

/* Longest host name kept in struct hello.sni, without its NUL. */
#define HELLO_MAX_SNI 253

enum hello_status {
    HELLO_OK,        /* a whole, well-formed ClientHello: *out is filled */
    HELLO_NEED_MORE, /* the buffer ends before the ClientHello does: read more, call again */
    HELLO_NOT_TLS,   /* the stream does not start with a TLS record (e.g. plain HTTP) */
    HELLO_MALFORMED  /* TLS, but not a well-formed ClientHello: err says what is wrong */
};

/* What the ClientHello says. Filled on HELLO_OK; all zero after any other result. */
struct hello {
    char sni[HELLO_MAX_SNI + 1]; /* host_name from server_name, lower-cased, no trailing dot,
                                    NUL-terminated; "" if absent */
    bool has_sni;                /* a host_name entry was present */
    bool has_ech;                /* encrypted_client_hello (0xfe0d) present: sni is the
                                    outer (public) name */
    bool has_alpn;               /* the ALPN extension was present */
    bool alpn_http11;            /* ALPN offers "http/1.1" */
    bool alpn_h2;                /* ALPN offers "h2" */
    bool alpn_other;             /* ALPN offers some other protocol */
    bool tls13;                  /* supported_versions lists 0x0304 */
    uint16_t legacy_version;     /* the client_version field (0x0303 for TLS 1.2 and 1.3) */
    uint16_t max_version;        /* highest version offered: the highest of supported_versions
                                    (GREASE values 0x?a?a ignored) if present, otherwise
                                    legacy_version */
    size_t consumed;             /* bytes of the records that carried the whole ClientHello,
                                    headers included: where the next record starts */
};

/*
 * Parse the ClientHello at the start of buf, a TLS byte stream of len bytes (one or more
 * records). Returns:
 *  - HELLO_OK: *out describes the hello; out->consumed <= len.
 *  - HELLO_NEED_MORE: the buffer is a prefix of something that may still be a ClientHello
 *    (only when len < HELLO_MAX). Read more and call again with the whole stream so far.
 *  - HELLO_NOT_TLS: the first bytes are not a TLS record (see the top of this file).
 *  - HELLO_MALFORMED: err holds a message naming the problem, such as
 *    "server_name extension: list length 300 exceeds extension (12 bytes)".
 * err (may be NULL when errlen is 0) receives a NUL-terminated message, truncated to errlen,
 * on HELLO_MALFORMED and HELLO_NOT_TLS, and "" otherwise. buf may be NULL when len is 0.
 */
enum hello_status hello_parse(const uint8_t *buf, size_t len, struct hello *out, char *err,
                              size_t errlen);

/* "ok", "need more", "not TLS" or "malformed": for logs. */
const char *hello_status_name(enum hello_status st);

#endif
