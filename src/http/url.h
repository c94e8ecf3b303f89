/*
 * url.h -- URL parsing and normalisation, shared by the proxy, DNS and the CLI.
 *
 * Every URL is brought to one canonical form before it is matched against a
 * list, so that the many spellings of one address (upper case, a trailing dot,
 * a default port, percent-encoding, fullwidth letters, an IPv4 address written
 * in hex or as one number, "/a/./b/../c", "//") all match the same entry.
 * What cannot be understood is rejected with a reason, never guessed.
 *
 * The canonical form:
 *  - scheme: lower case; one of http, https, ws, wss, ftp; any other scheme
 *    ("javascript:", "file:") is rejected. As in browsers, any run of '/' and
 *    '\\' after "scheme:" is read as "//" ("http:x", "http:\\\\x" are
 *    "http://x"). Input that does not start with "name:" is a bare host
 *    (optionally with userinfo, :port and path) and gets scheme http;
 *    "name:digits" followed by the end, '/', '\\', '?' or '#' is a bare host
 *    and port ("example.com:8080/x"), not a scheme.
 *  - control characters (C0 and DEL, so also tab, CR, LF, NUL) anywhere in the
 *    input are an error, not removed as browsers do.
 *  - userinfo ("user:pass@", up to the last '@' of the authority) is removed;
 *    the authority ends at the first '/', '\\', '?' or '#', so
 *    "http://good.com\\@evil.com" has host good.com. The fragment ("#...") is
 *    removed.
 *  - host: lower case; percent-escapes decoded first (a decoded byte must be
 *    one allowed in a host, or a non-ASCII byte of a UTF-8 name: "%2e" is a
 *    dot, "%2f" an error); trailing dots removed; labels with a non-ASCII
 *    character mapped with UTS#46 (non-transitional) and written as punycode
 *    A-labels (libidn2), so fullwidth and other compatibility forms become
 *    ASCII and U+3002 is a dot. All-ASCII labels, "xn--" A-labels included,
 *    are only lower-cased and checked, never decoded. IPv4 in any inet_aton
 *    form (decimal, octal, hex, 1 to 4 parts, "0x7f.1") becomes a dotted
 *    quad; as in the WHATWG URL standard, a host whose last label looks like
 *    a number but is not a valid address ("1.2.3.256", "0x1g.2",
 *    "example.123") is an error. IPv6 literals are written in RFC 5952 form
 *    inside brackets (IPv4-mapped as "::ffff:1.2.3.4"); zone ids are an
 *    error. Labels are 1-63 bytes of letters, digits, '-' and '_' (the lists
 *    contain '_'; no rule on where '-' may stand); the host is at most 253
 *    bytes.
 *  - port: removed when it is the scheme's default (http/ws 80, https/wss 443,
 *    ftp 21); otherwise kept; digits only, 1-65535, leading zeros allowed
 *    ("0080" is 80); an empty port ("http://x:/") means the default.
 *  - path: always starts with "/"; percent-encoded unreserved characters
 *    (A-Z a-z 0-9 - . _ ~) are decoded, other escapes get upper-case hex, bytes
 *    that must be escaped (space, non-ASCII, '"', '<', '>', '\\', '^', '`',
 *    '{', '|', '}') are escaped; '\\' is read as '/' as browsers do;
 *    runs of '/' become one; "." and ".." segments (also written "%2e") are
 *    resolved (never above the root); a trailing '/' is kept ("/a/", and
 *    "/a/b/.." is "/a/"). A '%' not followed by two hex digits is an error.
 *  - query: kept as given after '?', with the same escaping of bytes that must
 *    be escaped; escapes are not decoded nor checked; not re-ordered. An empty
 *    query ("http://x/?") is kept, with has_query 1 and query_len 0.
 *
 * Limits: the input and the canonical form are at most URL_MAX bytes; a longer
 * one is rejected ("URL too long"). No heap memory is used unless the host has
 * a non-ASCII label (libidn2 allocates, and the result is freed at once).
 */
#ifndef HAVEN_HTTP_URL_H
#define HAVEN_HTTP_URL_H

#include <stddef.h>
#include <stdint.h>

#define URL_MAX 8192
#define URL_HOST_MAX 253

enum url_host_type { URL_HOST_NAME, URL_HOST_IPV4, URL_HOST_IPV6 };

/*
 * A parsed, canonical URL. text holds the whole canonical URL, NUL-terminated;
 * the *_off and *_len pairs point into it. host_off/host_len cover the host
 * without brackets for IPv6. path covers "/..." up to, not including, "?";
 * query covers what follows "?" (query_len 0 and has_query 0 when there is
 * none). port is the effective port (the default for the scheme if none was
 * given).
 */
struct url {
    char text[URL_MAX + 1];
    size_t len;
    size_t scheme_len; /* scheme starts at text[0] */
    size_t host_off, host_len;
    size_t path_off, path_len;
    size_t query_off, query_len;
    int has_query;
    uint16_t port;
    enum url_host_type host_type;
};

/*
 * Parse and normalise the len bytes at in (no NUL needed). Returns 0 and fills
 * *u; or returns -1 and points *why at a short static English message naming
 * the problem ("empty URL", "bad percent-escape in path", "port out of range",
 * "unsupported scheme", "invalid character in host", "IDN: ...").
 */
int url_normalize(const char *in, size_t len, struct url *u, const char **why);

/*
 * Normalise a host name alone (as in a CONNECT authority, a DNS query name or a
 * list entry), with the host rules above (percent-decoding included); in may be
 * an IPv6 literal with or without brackets, and must not carry a port (any
 * ':' makes it an IPv6 literal). out must hold URL_HOST_MAX + 1 bytes and
 * receives the canonical host, NUL-terminated, IPv6 without brackets. Returns
 * the length written, or -1 with *why set. If type is not NULL it receives the
 * kind of host.
 */
int url_normalize_host(const char *in, size_t len, char *out, enum url_host_type *type,
                       const char **why);

#endif
