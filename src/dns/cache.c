/*
 * cache.c -- the DNS answer cache (see cache.h for the rules).
 *
 * DESIGN. One allocation per entry holds the header, the name and the packet, so a hit touches
 * one block after the bucket array. Entries sit on two intrusive lists: a singly linked chain
 * per hash bucket (separate chaining; buckets a power of two, at most one entry per bucket on
 * average) and one doubly linked LRU list, newest at the head. A get is: hash, walk a chain
 * comparing the stored 64-bit hash first, compare the key, move to the head. A put evicts from
 * the tail until the entry (and, when the table must double, the new bucket array) fits.
 *
 * The hash is seeded per cache from getrandom(): the names come from clients and the answers
 * (NXDOMAIN included) are cached, so a fixed hash would let a client build long chains.
 *
 * Entry allocation uses malloc, not xmalloc: put runs on a worker, and a cache that cannot
 * store an answer just answers from upstream next time, which is better than aborting.
 */
#include "common/compat.h"

#include <sys/random.h>

#include "common/xalloc.h"
#include "dns/cache.h"

#define DNS_CACHE_FIRST_BUCKETS 16
#define DNS_CACHE_PREFETCH_MIN_TTL 10 /* seconds */
#define DNS_CACHE_PREFETCH_MIN_HITS 2

struct dns_cache_entry {
    struct dns_cache_entry *chain; /* next in the same bucket */
    struct dns_cache_entry *newer; /* LRU neighbours; NULL at the ends */
    struct dns_cache_entry *older;
    uint64_t hash;
    int64_t stored_ms;
    int64_t expires_ms;
    int64_t prefetch_ms; /* start of the last 10% of the TTL; INT64_MAX: never */
    uint32_t name_len;
    uint32_t pkt_len;
    uint16_t qtype;
    uint8_t hits;         /* saturates at DNS_CACHE_PREFETCH_MIN_HITS */
    uint8_t prefetched;   /* the one prefetch signal has been given */
    unsigned char data[]; /* name_len bytes of name, then pkt_len bytes of packet */
};

struct dns_cache {
    struct dns_cache_entry **buckets; /* nbuckets heads, NULL until the first put */
    size_t nbuckets;                  /* 0 or a power of two */
    struct dns_cache_entry *newest;   /* LRU head */
    struct dns_cache_entry *oldest;   /* LRU tail: the next to evict */
    uint64_t seed;
    size_t max_bytes;
    size_t bytes; /* entry allocations + bucket array */
    size_t entries;
    uint64_t hits, misses, inserts, evictions, expired;
};

static size_t dns_cache_entry_size(const struct dns_cache_entry *e)
{
    return offsetof(struct dns_cache_entry, data) + e->name_len + e->pkt_len;
}

static uint64_t dns_cache_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t dns_cache_load64(const unsigned char *p)
{
    uint64_t w;

    memcpy(&w, p, sizeof(w));
    return w;
}

static uint64_t dns_cache_load32(const unsigned char *p)
{
    uint32_t w;

    memcpy(&w, p, sizeof(w));
    return w;
}

/* A seeded multiply-xor hash over the name, 8 bytes at a time, with the length and qtype. The
 * last block is the last 8 bytes of the name (overlapping the one before), and a name under 8
 * bytes is read with two overlapping 4-byte or three 1-byte loads, so there is no
 * variable-length copy; the length is in the seed, so overlaps cannot make two names alike. */
static uint64_t dns_cache_hash(uint64_t seed, const char *name, size_t len, uint16_t qtype)
{
    const uint64_t k = 0x9e3779b97f4a7c15ULL;
    const unsigned char *p = (const unsigned char *)name;
    uint64_t h = seed ^ ((uint64_t)len * k) ^ ((uint64_t)qtype << 48);
    uint64_t w;
    size_t left = len;

    if (len >= 8) {
        while (left > 8) {
            h = (h ^ dns_cache_load64(p)) * k;
            h ^= h >> 29;
            p += 8;
            left -= 8;
        }
        w = dns_cache_load64((const unsigned char *)name + len - 8);
    } else if (len >= 4) {
        w = dns_cache_load32(p) | dns_cache_load32(p + len - 4) << 32;
    } else if (len > 0) {
        w = (uint64_t)p[0] | (uint64_t)p[len / 2] << 8 | (uint64_t)p[len - 1] << 16;
    } else {
        w = 0;
    }
    h = (h ^ w) * k;
    h ^= h >> 29;
    return dns_cache_mix(h);
}

static uint64_t dns_cache_new_seed(const struct dns_cache *c)
{
    uint64_t seed = 0;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        /* No entropy yet (very early boot): the address still varies between runs. */
        seed = dns_cache_mix((uint64_t)(uintptr_t)c ^ 0x6a09e667f3bcc909ULL);
    }
    return seed;
}

static struct dns_cache_entry *dns_cache_find(const struct dns_cache *c, uint64_t hash,
                                              const char *name, size_t name_len, uint16_t qtype)
{
    struct dns_cache_entry *e;

    if (c->nbuckets == 0)
        return NULL;
    for (e = c->buckets[hash & (c->nbuckets - 1)]; e; e = e->chain) {
        if (e->hash == hash && e->qtype == qtype && e->name_len == name_len &&
            (name_len == 0 || memcmp(e->data, name, name_len) == 0))
            return e;
    }
    return NULL;
}

static void dns_cache_lru_unlink(struct dns_cache *c, struct dns_cache_entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = NULL;
    e->older = NULL;
}

static void dns_cache_lru_push(struct dns_cache *c, struct dns_cache_entry *e)
{
    e->newer = NULL;
    e->older = c->newest;
    if (c->newest)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
}

/* Unlink e from its bucket and the LRU list, uncount it and free it. */
static void dns_cache_remove(struct dns_cache *c, struct dns_cache_entry *e)
{
    struct dns_cache_entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    dns_cache_lru_unlink(c, e);
    c->bytes -= dns_cache_entry_size(e);
    c->entries--;
    free(e);
}

/* Double the bucket array (or make the first one) and rehash. The caller has made room for
 * the extra bytes. On out of memory the table stays as it is: chains get longer, nothing
 * breaks. */
static void dns_cache_grow(struct dns_cache *c)
{
    size_t n = c->nbuckets ? c->nbuckets * 2 : DNS_CACHE_FIRST_BUCKETS;
    struct dns_cache_entry **b = calloc(n, sizeof(*b));
    size_t i;

    if (!b)
        return;
    for (i = 0; i < c->nbuckets; i++) {
        struct dns_cache_entry *e = c->buckets[i];

        while (e) {
            struct dns_cache_entry *next = e->chain;
            size_t slot = e->hash & (n - 1);

            e->chain = b[slot];
            b[slot] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->bytes = c->bytes - c->nbuckets * sizeof(*b) + n * sizeof(*b);
    c->buckets = b;
    c->nbuckets = n;
}

/* Evict least-recently-used entries until an entry of size bytes fits, together with the
 * larger bucket array if one more entry would need it; then grow the table if so. Returns 0,
 * or -1 if it cannot fit even in an empty cache or there is no bucket array at all. */
static int dns_cache_make_room(struct dns_cache *c, size_t size)
{
    int grow;

    for (;;) {
        size_t extra = 0;
        size_t free_bytes = c->max_bytes - c->bytes;

        grow = c->entries + 1 > c->nbuckets;
        if (grow)
            extra = c->nbuckets ? c->nbuckets * sizeof(*c->buckets)
                                : DNS_CACHE_FIRST_BUCKETS * sizeof(*c->buckets);
        if (size <= free_bytes && extra <= free_bytes - size)
            break;
        if (!c->oldest)
            return -1;
        dns_cache_remove(c, c->oldest);
        c->evictions++;
    }
    if (grow)
        dns_cache_grow(c);
    if (c->nbuckets == 0)
        return -1; /* the first bucket array could not be allocated */
    return 0;
}

struct dns_cache *dns_cache_create(size_t max_bytes)
{
    struct dns_cache *c = xcalloc(1, sizeof(*c));

    c->max_bytes = max_bytes;
    c->seed = dns_cache_new_seed(c);
    return c;
}

void dns_cache_free(struct dns_cache *c)
{
    struct dns_cache_entry *e;

    if (!c)
        return;
    e = c->newest;
    while (e) {
        struct dns_cache_entry *older = e->older;

        free(e);
        e = older;
    }
    free(c->buckets);
    free(c);
}

int dns_cache_put(struct dns_cache *c, const char *name, size_t name_len, uint16_t qtype,
                  const uint8_t *pkt, size_t len, uint32_t ttl, int64_t now_ms)
{
    int rc = -1;
    const size_t head = offsetof(struct dns_cache_entry, data);
    const size_t eighth = c->max_bytes / 8;
    const int64_t ttl_ms = (int64_t)ttl * 1000;
    uint64_t hash = dns_cache_hash(c->seed, name, name_len, qtype);
    struct dns_cache_entry *e = dns_cache_find(c, hash, name, name_len, qtype);
    size_t size;

    if (e) {
        dns_cache_remove(c, e);
        e = NULL;
    }
    if (ttl == 0 || len == 0 || name_len > UINT32_MAX || len > UINT32_MAX)
        goto out;
    /* head + name_len + len <= eighth, written so that nothing overflows */
    if (head > eighth || name_len > eighth - head || len > eighth - head - name_len)
        goto out;
    size = head + name_len + len;
    if (dns_cache_make_room(c, size) != 0)
        goto out;
    e = malloc(size);
    if (!e)
        goto out;

    e->hash = hash;
    e->stored_ms = now_ms;
    e->expires_ms = now_ms <= INT64_MAX - ttl_ms ? now_ms + ttl_ms : INT64_MAX;
    e->prefetch_ms = INT64_MAX;
    if (ttl >= DNS_CACHE_PREFETCH_MIN_TTL)
        e->prefetch_ms = e->expires_ms - (int64_t)ttl * 100;
    e->name_len = (uint32_t)name_len;
    e->pkt_len = (uint32_t)len;
    e->qtype = qtype;
    e->hits = 0;
    e->prefetched = 0;
    if (name_len > 0)
        memcpy(e->data, name, name_len);
    memcpy(e->data + name_len, pkt, len);

    e->chain = c->buckets[hash & (c->nbuckets - 1)];
    c->buckets[hash & (c->nbuckets - 1)] = e;
    dns_cache_lru_push(c, e);
    c->bytes += size;
    c->entries++;
    c->inserts++;
    rc = 0;
out:
    return rc;
}

const uint8_t *dns_cache_get(struct dns_cache *c, const char *name, size_t name_len, uint16_t qtype,
                             int64_t now_ms, size_t *len, uint32_t *age, int *prefetch)
{
    const uint8_t *result = NULL;
    struct dns_cache_entry *e;

    *len = 0;
    *age = 0;
    *prefetch = 0;
    if (c->entries == 0)
        goto out;
    e = dns_cache_find(c, dns_cache_hash(c->seed, name, name_len, qtype), name, name_len, qtype);
    if (!e)
        goto out;
    if (now_ms >= e->expires_ms) {
        dns_cache_remove(c, e);
        c->expired++;
        goto out;
    }

    if (now_ms >= e->prefetch_ms && !e->prefetched && e->hits >= DNS_CACHE_PREFETCH_MIN_HITS) {
        e->prefetched = 1;
        *prefetch = 1;
    }
    if (e->hits < DNS_CACHE_PREFETCH_MIN_HITS)
        e->hits++;
    if (now_ms > e->stored_ms) {
        int64_t secs = (now_ms - e->stored_ms) / 1000;

        *age = secs > UINT32_MAX ? UINT32_MAX : (uint32_t)secs;
    }
    if (c->newest != e) {
        dns_cache_lru_unlink(c, e);
        dns_cache_lru_push(c, e);
    }
    *len = e->pkt_len;
    result = e->data + e->name_len;
out:
    if (result)
        c->hits++;
    else
        c->misses++;
    return result;
}

void dns_cache_stats(const struct dns_cache *c, struct dns_cache_stats *st)
{
    st->entries = c->entries;
    st->bytes = c->bytes;
    st->max_bytes = c->max_bytes;
    st->hits = c->hits;
    st->misses = c->misses;
    st->inserts = c->inserts;
    st->evictions = c->evictions;
    st->expired = c->expired;
}
