/*
 * resolve.h -- asynchronous name resolution for origin hosts (c-ares on a libuv loop).
 *
 * One resolver per worker loop. A resolver is not thread-safe: create it, use it and
 * destroy it on the thread that runs its loop. It owns a c-ares channel whose sockets
 * are watched by uv_poll handles and whose timeouts are driven by one uv_timer, so
 * nothing on the loop ever blocks on the network.
 *
 * What resolve_start() does with a host name, in order:
 *   1. an IP literal ("192.0.2.1", "2001:db8::1", "[2001:db8::1]") is answered as is;
 *   2. a name that cannot exist in the DNS (empty, over 253 characters, an empty or
 *      over-long label, a byte other than letters, digits, '-' and '_') is answered
 *      RESOLVE_NXDOMAIN without a query;
 *   3. "localhost" and names under ".localhost" are answered 127.0.0.1 and ::1
 *      (RFC 6761), without a query;
 *   4. a name in the hosts file given in the configuration (read once, by
 *      resolver_create) is answered from it;
 *   5. a fresh cache entry, positive or negative, answers it;
 *   6. a lookup already in flight for the same name is joined (coalescing);
 *   7. otherwise an A and an AAAA query go to the configured servers, together.
 * Names are compared case-insensitively, with one trailing dot ignored. The search
 * list of resolv.conf is never applied (ARES_FLAG_NOSEARCH, as Squid's default
 * dns_defnames off): the proxy resolves the names in URLs as they are written.
 *
 * The callback never runs inside resolve_start() and never inside a c-ares callback:
 * every answer, even an IP literal or a cache hit, is queued and delivered from a
 * uv_idle handle on a later turn of the loop. The callback runs exactly once per
 * query, unless the query is cancelled first.
 *
 * Answers: a lookup completes when both the A and the AAAA query have answered, or
 * when its deadline (timeout_ms * tries after it started) passes. At the deadline,
 * whatever addresses have arrived are delivered as RESOLVE_OK (so a server that drops
 * AAAA queries costs the full deadline but still works); with none, RESOLVE_TIMEOUT.
 * The outcome is, in order: RESOLVE_OK if any address came back; RESOLVE_NXDOMAIN if
 * either query said NXDOMAIN or both said "no data" (the name exists but has no
 * address: for the proxy that is the same "no such host"); RESOLVE_TIMEOUT if a query
 * timed out; RESOLVE_ERROR otherwise (SERVFAIL, REFUSED, a bad reply, no server).
 *
 * Cache: positive answers are kept for the smallest TTL among the records (a CNAME's
 * TTL counts), clamped to [min_ttl_ms, max_ttl_ms]; NXDOMAIN and "no data" are kept
 * for a fixed 30 s (not the SOA minimum), at most max_ttl_ms; timeouts and errors are
 * not cached. Expiry uses clock_now() (whole seconds, so a TTL is rounded up to the
 * next second); an entry whose expiry lies more than max_ttl_ms ahead (the wall clock
 * stepped back) counts as expired. The cache holds at most cache_size names and
 * evicts the least recently used. A lookup whose queries were all cancelled still
 * completes and fills the cache.
 *
 * Address order: at most RESOLVE_MAX_ADDRS addresses, the two families interleaved
 * ("RFC 8305 lite"), preferred family first: IPv4 unless prefer_ipv6 is set, because
 * many school networks have IPv6 addresses on the filter but no working IPv6 route.
 * The caller connects to them in order and moves to the next on failure. Within a
 * family the order is the server's.
 */
#ifndef HAVEN_NET_RESOLVE_H
#define HAVEN_NET_RESOLVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#define RESOLVE_MAX_ADDRS 16

enum resolve_status {
    RESOLVE_OK = 0,
    RESOLVE_NXDOMAIN,  /* no such host (NXDOMAIN, no A/AAAA records, or an impossible name) */
    RESOLVE_TIMEOUT,   /* no answer from the servers before the deadline */
    RESOLVE_ERROR,     /* the servers failed (SERVFAIL, REFUSED, bad reply, unreachable) */
    RESOLVE_CANCELLED, /* the resolver was destroyed before the answer came */
};

struct resolver_config {
    /* "127.0.0.1:5300,[::1]:53" (ares_set_servers_ports_csv), or NULL for the
     * nameservers of /etc/resolv.conf. */
    const char *servers;
    /* Hosts file read once by resolver_create ("/etc/hosts"), or NULL for none. */
    const char *hosts_file;
    size_t cache_size;  /* names kept; 0 selects 4096 */
    int64_t min_ttl_ms; /* shortest time an answer is kept; 0 honours TTL 0 (not kept) */
    int64_t max_ttl_ms; /* longest; <= 0 selects one hour */
    int64_t timeout_ms; /* first-try timeout per server; <= 0 selects 2000 */
    int tries;          /* tries per server; <= 0 selects 2. Lookup deadline: timeout_ms*tries */
    int prefer_ipv6;    /* order IPv6 addresses first (default: IPv4 first) */
};

/* Addresses in connection order, with the port of resolve_start() filled in. */
struct resolve_result {
    int naddrs;
    struct sockaddr_storage addrs[RESOLVE_MAX_ADDRS];
};

struct resolver_stats {
    uint64_t queries;    /* resolve_start() calls that returned a query */
    uint64_t literals;   /* answered from an IP literal or localhost */
    uint64_t hosts_hits; /* answered from the hosts file */
    uint64_t cache_hits; /* answered from the cache, positive or negative */
    uint64_t coalesced;  /* joined a lookup already in flight */
    uint64_t lookups;    /* lookups sent to the servers (an A and an AAAA query each) */
    uint64_t failures;   /* callbacks with RESOLVE_NXDOMAIN, RESOLVE_TIMEOUT or RESOLVE_ERROR */
    uint64_t timeouts;   /* of which RESOLVE_TIMEOUT */
    uint64_t cancelled;  /* resolve_cancel() calls, and queries cancelled by destroy */
    uint64_t evictions;  /* cache entries dropped to make room */
    size_t cache_entries;
    size_t inflight; /* lookups waiting for the servers */
};

struct resolver;
struct resolve_query;

/*
 * Called once per query, on the loop thread, from the loop (never from resolve_start).
 * res is never NULL and is valid only during the call; res->naddrs is 0 unless status
 * is RESOLVE_OK. The query handle is freed when the callback returns.
 */
typedef void (*resolve_cb)(void *arg, int status, const struct resolve_result *res);

/*
 * Create a resolver on loop; cfg is copied (NULL: every default). Reads /etc/resolv.conf
 * (for its servers, when cfg->servers is NULL) and cfg->hosts_file now, never later; the
 * hosts table is private to this resolver (one copy per worker). Malformed hosts lines
 * are logged and skipped. Returns NULL and writes a message to err if the servers string
 * cannot be used, the hosts file cannot be read, or c-ares fails.
 */
struct resolver *resolver_create(uv_loop_t *loop, const struct resolver_config *cfg, char *err,
                                 size_t errlen);

/*
 * Destroy the resolver, on the loop thread; it may be called from inside a resolve
 * callback. Every query still pending gets its callback with RESOLVE_CANCELLED before
 * resolver_destroy returns (resolve_start from such a callback returns NULL;
 * resolve_cancel on another pending query is allowed). Outstanding c-ares queries are
 * abandoned and the uv handles closed; the memory is released by their close callbacks,
 * so the caller must run the loop afterwards until they have run (uv_run with
 * UV_RUN_DEFAULT returns once nothing else is active). NULL is accepted.
 */
void resolver_destroy(struct resolver *r);

/*
 * Resolve host (an IP literal or a name, NUL-terminated; not kept) for port (host
 * order, copied into every address). Returns a handle valid until the callback has
 * returned or resolve_cancel() is called, or NULL if the resolver is being destroyed.
 * See the top of this file for what is asked and what is cached.
 */
struct resolve_query *resolve_start(struct resolver *r, const char *host, uint16_t port,
                                    resolve_cb cb, void *arg);

/*
 * Cancel a query: its callback will not run and q is freed. The lookup behind it goes
 * on (c-ares cannot drop one query) and its answer still fills the cache. Calling it
 * from inside q's own callback is allowed and does nothing.
 */
void resolve_cancel(struct resolve_query *q);

/* Counters since resolver_create. */
void resolver_get_stats(const struct resolver *r, struct resolver_stats *out);

/* A short English description of a status ("no such host"); never NULL. */
const char *resolve_strerror(int status);

#endif
