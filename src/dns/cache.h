/*
 * cache.h -- the DNS filter's answer cache: upstream response packets kept under (name, qtype),
 * bounded in bytes, evicted least-recently-used, expired by TTL.
 *
 * The caller stores an upstream response it has already validated and, on a hit, makes the
 * client's answer from it, with TTLs lowered by the age it is given (dns_answer_response in
 * dns/wire.h). The cache knows nothing of DNS beyond the key: it stores
 * bytes and times.
 *
 * Single thread: each worker owns its own cache. Nothing here locks or uses atomics, so a cache
 * must only ever be touched by the thread that created it.
 *
 * Time: every call that needs the time is given it (now_ms, milliseconds on any clock that does
 * not go backwards, normally clock_now()); the cache never reads a clock, so tests drive it.
 *
 * Memory: a cache never holds more than max_bytes. What is counted is the size of each
 * allocation the cache requests (entry header + name + packet, one allocation per entry) plus
 * the hash table's bucket array. After dns_cache_put returns, dns_cache_stats().bytes <=
 * max_bytes. The bucket array grows by doubling (when there would be more entries than
 * buckets) and never shrinks; its growth is paid for by evicting entries like any other byte.
 *
 * Eviction: when a put needs room, the least recently *used* entries go first (a hit counts as
 * a use, as does being stored). Expired entries are freed when a get finds them, or when they
 * reach the old end of the LRU list.
 *
 * Prefetch rule (names asked often are refreshed before they expire): dns_cache_get sets
 * *prefetch to 1 exactly once per stored entry, on the first hit that
 *  - comes at or after stored + 90% of the TTL (the last 10%: now_ms >= expiry - ttl * 100),
 *  - for an entry whose TTL is at least 10 seconds,
 *  - when the entry has already been hit at least twice (any time since it was stored).
 * Every other hit, and every miss, sets it to 0. Storing the entry again (the refreshed answer)
 * makes a new entry, which can be prefetched once in its turn.
 *
 * Hot path: dns_cache_get does not allocate; it hashes the key once (a seeded 64-bit
 * multiply-xor mix, 8 bytes at a time) and walks one bucket chain of load at most 1.
 */
#ifndef HAVEN_DNS_CACHE_H
#define HAVEN_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct dns_cache;

struct dns_cache_stats {
    size_t entries;     /* entries stored now */
    size_t bytes;       /* bytes counted now (entries + bucket array), <= max_bytes */
    size_t max_bytes;   /* as given to dns_cache_create */
    uint64_t hits;      /* gets that returned a packet */
    uint64_t misses;    /* gets that returned NULL (absent, expired, or a cache of 0 bytes) */
    uint64_t inserts;   /* puts that stored an entry (replacements included) */
    uint64_t evictions; /* entries removed by LRU to make room (expired or not) */
    uint64_t expired;   /* entries a get found expired and freed */
};

/* A cache holding at most max_bytes (keys, packets and per-entry overhead all counted, and the
 * hash table). max_bytes 0: a cache that stores nothing (every get misses). Nothing is
 * allocated for entries until the first put. Free with dns_cache_free. Aborts on out of memory
 * (control plane). */
struct dns_cache *dns_cache_create(size_t max_bytes);

/* Frees the cache and every entry; every pointer dns_cache_get returned becomes invalid.
 * NULL is fine. */
void dns_cache_free(struct dns_cache *c);

/* Store a copy of pkt (len bytes) for (name, qtype). name is the lower-case presentation form
 * (as in struct dns_query), name_len bytes, not necessarily NUL-terminated; the cache compares
 * it byte for byte and copies it. The entry expires at now_ms + ttl * 1000 and becomes the
 * most recently used. An existing entry for the key is replaced (freed first).
 *
 * Not stored (returns -1): ttl 0, len 0, an entry (header + name + packet) larger than an
 * eighth of max_bytes (so every cache of 0 bytes refuses everything), or no memory for it.
 * A refused put still removes an existing entry for the key: the caller has a newer answer
 * that may not be kept, so the older one must not be served in its place.
 *
 * Evicts least-recently-used entries until the new entry fits in max_bytes. Returns 0 when
 * stored. Invalidates every pointer dns_cache_get returned before. */
int dns_cache_put(struct dns_cache *c, const char *name, size_t name_len, uint16_t qtype,
                  const uint8_t *pkt, size_t len, uint32_t ttl, int64_t now_ms);

/* Look up (name, qtype) at now_ms. A hit returns the stored packet with *len its length and
 * *age the whole seconds since it was stored (floor; 0 if now_ms is before the store), and
 * makes the entry the most recently used; *prefetch follows the rule at the top of this file.
 * The packet is owned by the cache and valid only until the next dns_cache_put or
 * dns_cache_free on this cache, or a later get that finds that entry expired; the caller copies
 * it before patching. An entry with now_ms >= its expiry is a miss and is freed. A miss returns
 * NULL with *len 0, *age 0, *prefetch 0. Does not allocate. */
const uint8_t *dns_cache_get(struct dns_cache *c, const char *name, size_t name_len, uint16_t qtype,
                             int64_t now_ms, size_t *len, uint32_t *age, int *prefetch);

/* Fill st with the cache's counters and sizes. */
void dns_cache_stats(const struct dns_cache *c, struct dns_cache_stats *st);

#endif
