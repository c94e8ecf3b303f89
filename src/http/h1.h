/*
 * h1.h -- strict HTTP/1.1 message heads and body framing (RFC 9110, RFC 9112).
 *
 * The proxy reads a request head from a client and a response head from an origin, decides,
 * and forwards. A proxy that frames a message differently from the server behind it can be
 * made to smuggle a second request past the filter, so this parser accepts one spelling of
 * each thing and rejects everything ambiguous instead of guessing. The rules:
 *
 *  - Lines end in CRLF. A bare LF line ending is an error (RFC 9112 2.2 lets a recipient accept
 *    it; a filtering proxy does not), and so is a CR that is not followed by LF, anywhere.
 *    Empty lines (CRLF) before a request line are skipped, as RFC 9112 2.2 asks.
 *  - Request line: method SP request-target SP HTTP-version, exactly one SP between them,
 *    nothing before or after. The method is 1+ tchar (case-sensitive). The target is 1+
 *    visible ASCII bytes (0x21-0x7e): no controls, spaces, DEL or bytes >= 0x80. The version
 *    is "HTTP/1.0" or "HTTP/1.1"; another "HTTP/d.d" (HTTP/0.9, HTTP/2.0, HTTP/1.2) is 505;
 *    anything else, and a line without a version (HTTP/0.9 style), is 400.
 *  - Target forms: CONNECT must use authority-form (host:port, port 1-65535, the host made of
 *    URI host characters or an [IPv6] literal); "*" only with OPTIONS; "/..." is origin-form;
 *    "scheme://..." with a non-empty authority is absolute-form. Anything else is 400.
 *  - Header fields: name 1+ tchar directly followed by ':' (whitespace before the colon is
 *    400); the value is trimmed of SP/HTAB on both ends and may hold HTAB, SP, visible ASCII
 *    and obs-text (0x80-0xff), nothing else (no NUL, no other control, no DEL). A line that
 *    starts with SP or HTAB (obsolete line folding) is 400.
 *  - Host: an HTTP/1.1 request without one, and any request with two, is 400. Its value must
 *    be empty or made of URI host characters (letters, digits, "-._~%!$&'()*+,;=:[]"); so
 *    "Host: a/b", "Host: a@b" and "Host: a b" are 400. With an absolute-form target the
 *    proxy must route by the target and ignore Host (RFC 9112 3.2.2).
 *  - Content-Length: 1+ digits, at most H1_MAX_CONTENT_LENGTH (2^62). "+5", "-1", "5 5",
 *    "0x5" and "" are 400. Every repeated Content-Length is 400, even with identical values,
 *    and so is a list ("5, 5"): RFC 9112 6.3 lets a recipient accept identical repeats, but
 *    nothing legitimate sends them and rejecting is the safer reading.
 *  - Transfer-Encoding: the only coding supported is "chunked" (case-insensitive), alone.
 *    Repeated Transfer-Encoding fields are read as one list. A list element that is not a
 *    token, an empty element, "chunked" with parameters, "chunked" twice or "chunked" not
 *    last is 400; a list without chunked ("xchunked", "identity", "gzip") or with another
 *    coding before chunked ("gzip, chunked") is 501. Content-Length together with
 *    Transfer-Encoding is 400, as is Transfer-Encoding in an HTTP/1.0 message (RFC 9112 6.1
 *    calls its framing faulty).
 *  - "Content_Length" and "Transfer_Encoding" (any case) are 400: some servers read '_' as
 *    '-' (CGI gateways do), and would then frame the message differently from us.
 *  - Connection, Upgrade and Proxy-Authorization may appear at most once each (400 if
 *    repeated), so that one value describes the message. CONNECT with Transfer-Encoding or a
 *    non-zero Content-Length is 400 (what follows a CONNECT head is tunnel data).
 *  - Responses follow the same header rules (an error is reported in error only: the proxy
 *    answers the client with 502). The status line is HTTP-version SP 3DIGIT [SP reason],
 *    status 100-999; a missing SP after the status code is accepted (seen in the wild, and it
 *    cannot change framing).
 *
 * Limits (struct h1_limits) are enforced on incomplete input too, so a client cannot hold a
 * connection by sending an endless line: a line or head that is already past its cap is an
 * error, not H1_AGAIN. The result for any prefix of a stream is consistent with the result for
 * the whole: a prefix gives H1_AGAIN, or the same H1_DONE or H1_ERROR as the whole input.
 *
 * Memory: nothing is allocated and the input is never written. Every slice in a parsed
 * request or response points into the caller's buffer and is valid as long as that buffer is
 * (re-parse after moving the bytes). The parsers keep no state between calls: call again with
 * the same buffer, grown, after H1_AGAIN. Each call reads the head from the start, so a caller
 * that receives a head in many small reads may first look for the end of the head with
 * h1_head_end() and parse only when it is found or the buffer reaches max_head.
 */
#ifndef HAVEN_HTTP_H1_H
#define HAVEN_HTTP_H1_H

#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"

/* Results of the head parsers. */
#define H1_DONE 1   /* the head is complete: head_len bytes */
#define H1_AGAIN 0  /* the input ends inside the head, and no limit is passed yet */
#define H1_ERROR -1 /* malformed or over a limit: see status (requests) and error */

/* Storage for header fields in a parsed head; h1_limits.max_headers is capped to this. */
#define H1_MAX_HEADERS 128

/* Largest Content-Length and chunk size accepted: 2^62. */
#define H1_MAX_CONTENT_LENGTH ((uint64_t)1 << 62)

/* Longest chunk-size line (size and extensions, without CRLF) the chunked scanner accepts. */
#define H1_MAX_CHUNK_LINE 4096

struct h1_limits {
    size_t max_line; /* longest line, not counting its CRLF (default 8192); a longer request
                        line is 414, a longer header line 431 */
    size_t max_head; /* longest head, from the first byte to the final CRLF CRLF included
                        (default 65536); longer is 431. Also the cap on chunked trailers */
    int max_headers; /* most header fields (default 100, at most H1_MAX_HEADERS); more is 431 */
};

/* Fill *lim with the defaults above. */
void h1_limits_default(struct h1_limits *lim);

/* One header field; both slices point into the parsed buffer. */
struct h1_header {
    struct slice name;  /* as sent (case preserved), never empty, tchar only */
    struct slice value; /* without leading and trailing SP/HTAB; may be empty */
};

/* How the body of a message is delimited. */
enum h1_body {
    H1_BODY_NONE,    /* no body follows the head */
    H1_BODY_LENGTH,  /* exactly content_length bytes follow (may be 0) */
    H1_BODY_CHUNKED, /* a chunked body follows: run h1_chunked_scan over it */
    H1_BODY_CLOSE    /* responses only: the body runs until the origin closes the connection */
};

enum h1_target_form {
    H1_TARGET_ORIGIN,    /* "/path?query" */
    H1_TARGET_ABSOLUTE,  /* "http://host/path" (a proxy request) */
    H1_TARGET_AUTHORITY, /* "host:port" (CONNECT) */
    H1_TARGET_ASTERISK   /* "*" (OPTIONS) */
};

/*
 * A parsed request head. After H1_DONE every field is set; after H1_ERROR only status and
 * error are meaningful; after H1_AGAIN nothing is.
 */
struct h1_request {
    struct slice method;             /* e.g. "GET"; case-sensitive, tchar only */
    struct slice target;             /* the request-target exactly as sent */
    enum h1_target_form target_form; /* which form target has */
    struct slice authority; /* absolute-form: the authority part of the target (between "//"
                               and the next '/', '?', '#' or the end, userinfo included);
                               authority-form: the whole target; otherwise empty */
    int minor;              /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    struct h1_header headers[H1_MAX_HEADERS]; /* in order received */
    int nheaders;
    size_t head_len;         /* bytes of the head, leading empty lines and final CRLF CRLF included;
                                the body (if any) starts at buf + head_len */
    enum h1_body body;       /* NONE, LENGTH or CHUNKED (never CLOSE for a request) */
    uint64_t content_length; /* with H1_BODY_LENGTH; otherwise 0 */
    int keep_alive;          /* 1 if the client wants the connection kept: HTTP/1.1 unless
                                Connection lists "close"; HTTP/1.0 only if it lists "keep-alive"
                                (and not "close") */
    int expect_continue;     /* 1 if HTTP/1.1 and Expect is "100-continue" */
    int has_host;            /* 1 if a Host field was present (its value may be empty) */
    struct slice host;       /* the Host value, or empty */
    struct slice connection; /* the Connection value, or empty: pass it to h1_is_hop_by_hop */
    struct slice upgrade;    /* the Upgrade value if Connection lists "upgrade", else empty */
    int has_proxy_authorization;      /* 1 if Proxy-Authorization was present */
    struct slice proxy_authorization; /* its value, or empty */
    int status;        /* after H1_ERROR: the status to answer with (400, 414, 431, 501, 505) */
    const char *error; /* after H1_ERROR: a short static English message naming the problem */
};

/*
 * Parse a request head from the len bytes at buf (no NUL needed). lim may be NULL for the
 * defaults. Returns H1_DONE and fills *req; H1_AGAIN when the head is not complete yet; or
 * H1_ERROR with req->status and req->error set.
 */
int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim,
                     struct h1_request *req);

/* A parsed response head; as with requests, fields are set only after H1_DONE. */
struct h1_response {
    int status;          /* 100-999 */
    struct slice reason; /* reason phrase as sent, possibly empty */
    int minor;           /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    struct h1_header headers[H1_MAX_HEADERS];
    int nheaders;
    size_t head_len;         /* bytes of the head including the final CRLF CRLF */
    enum h1_body body;       /* NONE for a response to HEAD, 1xx, 204, 304 and 2xx to CONNECT;
                                otherwise CHUNKED, LENGTH, or CLOSE when neither is given */
    uint64_t content_length; /* with H1_BODY_LENGTH; otherwise 0 */
    int keep_alive;          /* 1 if the origin connection may be reused after this response:
                                as for requests, and never with H1_BODY_CLOSE */
    struct slice connection; /* the Connection value, or empty */
    const char *error;       /* after H1_ERROR: a short static English message */
};

/*
 * Parse a response head to a request whose method was request_method ("HEAD" and "CONNECT"
 * change the framing; compared case-sensitively). A 1xx response is one head with no body:
 * the caller forwards it and parses the next head (101 Switching Protocols ends HTTP on the
 * connection). Returns H1_DONE, H1_AGAIN or H1_ERROR (resp->error set) as for requests.
 */
int h1_parse_response(const char *buf, size_t len, const struct h1_limits *lim,
                      const struct slice request_method, struct h1_response *resp);

/*
 * Find the end of a head: the offset just past the first CRLF CRLF in buf[0..len), or 0 if
 * there is none yet. from is where the search may start (bytes before it are known not to
 * hold the end: pass the previous len, and the function backs up 3 bytes itself). A cheap
 * check before h1_parse_request on each read; it validates nothing.
 */
size_t h1_head_end(const char *buf, size_t len, size_t from);

/*
 * Chunked body scanner (RFC 9112 7.1). It only reads, so the proxy can forward the same bytes
 * verbatim. Accepted: chunk-size in hex (leading zeros allowed, at most
 * H1_MAX_CONTENT_LENGTH), optional extensions (SP/HTAB then ';' then visible ASCII, SP, HTAB,
 * obs-text; the size line at most H1_MAX_CHUNK_LINE bytes), CRLF, the data, CRLF; then the
 * last chunk "0", trailer fields (checked like header fields, no obs-fold) and the final CRLF,
 * all together at most max_head bytes after the last-chunk line. Bare LF, bare CR, a missing
 * CRLF after data, bad hex or an overflowing size are errors.
 */
struct h1_chunked {
    int state;          /* internal */
    uint64_t size;      /* internal: chunk size being read, then data bytes left */
    size_t line_len;    /* internal: bytes of the current size line */
    size_t trailer_len; /* internal: bytes of the trailer section so far */
    size_t max_trailer; /* cap on the trailer section, from h1_limits.max_head */
    uint64_t body_len;  /* data bytes seen so far (the decoded length) */
    const char *error;  /* after -1: a short static English message */
    /* Optional: called with each run of data bytes as they are scanned (the decoded body,
     * in order, without sizes or CRLFs); set after h1_chunked_init. */
    void (*on_data)(void *arg, const char *data, size_t len);
    void *arg;
};

/* Start scanning a new chunked body; lim may be NULL for the defaults. */
void h1_chunked_init(struct h1_chunked *c, const struct h1_limits *lim);

/*
 * Scan the next len bytes of a chunked body. Returns 1 when the body ends: *used is the number
 * of bytes of in that belong to it (the rest belongs to the next message); 0 when all len bytes
 * were used and more are needed; -1 on malformed input (c->error set, *used is where the scan
 * stopped). After 1 or -1, further calls return the same value with *used 0.
 */
int h1_chunked_scan(struct h1_chunked *c, const char *in, size_t len, size_t *used);

/* 1 if the header's name is lower_name (given in lower case), compared case-insensitively. */
int h1_header_is(const struct h1_header *h, const char *lower_name);

/* The first of the n headers at hs named lower_name (case-insensitive), or NULL. */
const struct h1_header *h1_find(const struct h1_header *hs, int n, const char *lower_name);

/*
 * 1 if the comma-separated list value (as in Connection, Upgrade, Transfer-Encoding) has an
 * element equal to token, case-insensitively; SP/HTAB around elements is ignored, and an
 * element's ";parameters" are not part of it.
 */
int h1_token_list_has(struct slice value, const char *token);

/*
 * 1 if a proxy must not forward header h: Connection, Keep-Alive, Proxy-Connection,
 * Proxy-Authenticate, Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade, and any
 * field named in connection_value (the message's Connection value). Transfer-Encoding is
 * always dropped: the caller writes the framing of the message it forwards itself
 * (Content-Length is forwarded as received; chunked bodies get "Transfer-Encoding: chunked"
 * again). Content-Length and Host are never hop-by-hop, even when Connection names them:
 * removing them would change the framing or the destination of the forwarded message.
 */
int h1_is_hop_by_hop(const struct h1_header *h, struct slice connection_value);

#endif
