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
 *  - scheme: lower case; one of http, https, ws, wss, ftp. Input without "://"
 *    is a bare host (optionally with :port and path) and gets scheme http.
 *  - userinfo ("user:pass@") is removed; the fragment ("#...") is removed.
 *  - host: lower case; percent-encoded unreserved bytes decoded; trailing dots
 *    removed; internationalised names mapped with UTS#46 (non-transitional)
 *    and written as punycode A-labels (libidn2), so fullwidth and other
 *    compatibility forms become ASCII; IPv4 in any inet_aton form (decimal,
 *    octal, hex, 1 to 4 parts, "0x7f.1") becomes a dotted quad; IPv6 literals
 *    are written in RFC 5952 form inside brackets. Labels are 1-63 bytes of
 *    letters, digits, '-' and '_' (the lists contain '_'); the host is at most
 *    253 bytes.
 *  - port: removed when it is the scheme's default (http/ws 80, https/wss 443,
 *    ftp 21); otherwise kept; 1-65535.
 *  - path: always starts with "/"; percent-encoded unreserved characters
 *    (A-Z a-z 0-9 - . _ ~) are decoded, other escapes get upper-case hex, bytes
 *    that must be escaped (controls, space, non-ASCII, '"', '<', '>', '\\',
 *    '^', '`', '{', '|', '}') are escaped; '\\' is read as '/' as browsers do;
 *    runs of '/' become one; "." and ".." segments are resolved (never above
 *    the root).
 *  - query: kept as given after '?', with the same escaping of bytes that must
 *    be escaped; not re-ordered.
 *
 * Limits: the input and the canonical form are at most URL_MAX bytes.
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
 * the *_off/*_len pairs point into it. host_off/host_len cover the host
 * without brackets for IPv6. path covers "/..." up to, not including, "?";
 * query covers what follows "?" (query_len 0 and has_query 0 when there is
 * none). port is the effective port (the default for the scheme if none was
 * given).
 */
struct url {
    char text[URL_MAX + 1];
    size_t len;
    size_t scheme_len;                  /* scheme starts at text[0] */
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
 * list entry), with the host rules above; in may be an IPv6 literal with or
 * without brackets. out must hold URL_HOST_MAX + 1 bytes and receives the
 * canonical host, NUL-terminated, IPv6 without brackets. Returns the length
 * written, or -1 with *why set. If type is not NULL it receives the kind of
 * host.
 */
int url_normalize_host(const char *in, size_t len, char *out, enum url_host_type *type,
                       const char **why);

#endif
