/*
 * key.h -- the hashing that turns hosts and URLs into lookup keys.
 *
 * The category database and the policy's own site lists store 64-bit keys,
 * not strings. The builder and the lookup must hash in exactly the same way,
 * so both use these functions.
 *
 * Hosts are hashed from the last byte to the first, so that one pass over
 * "a.b.example.com" yields the keys of "com", "example.com", "b.example.com"
 * and the whole host: the key of a suffix is the running state at the byte
 * where that suffix starts, finished with a mixer. URL keys hash the host
 * suffix, then the path, from left to right. Both finish with the murmur3
 * 64-bit mixer so every bit of the key is usable for the table index.
 *
 * A different string reaches the same key with probability about 2^-64; the
 * table stores 46 of those bits, which still makes a false match on a lookup
 * about one in 10^13.
 */
#ifndef HAVEN_CATDB_KEY_H
#define HAVEN_CATDB_KEY_H

#include <stddef.h>
#include <stdint.h>

#define KEY_FNV_OFFSET 0xcbf29ce484222325ULL
#define KEY_FNV_PRIME 0x100000001b3ULL
/* A different start for URL keys, so no URL key reuses a host key's state. */
#define KEY_URL_OFFSET 0x84222325cbf29ce4ULL

/* The most host suffixes or path prefixes one lookup examines. */
#define KEY_MAX_LABELS 32
#define KEY_MAX_SEGMENTS 32

static inline uint64_t key_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* The key of a whole host (or of one exact string, such as an IP address). */
static inline uint64_t key_host(const char *host, size_t len)
{
    uint64_t h = KEY_FNV_OFFSET;

    for (size_t i = len; i > 0; i--)
        h = (h ^ (unsigned char)host[i - 1]) * KEY_FNV_PRIME;
    return key_mix(h);
}

/*
 * The keys of the label-boundary suffixes of host, shortest first: keys[i] is
 * the key of host + offs[i]. At most max suffixes are returned (the longest
 * are dropped beyond that). Returns the number of suffixes.
 */
static inline int key_host_suffixes(const char *host, size_t len, uint64_t *keys, uint16_t *offs,
                                    int max)
{
    uint64_t h = KEY_FNV_OFFSET;
    int n = 0;

    for (size_t i = len; i > 0 && n < max; i--) {
        h = (h ^ (unsigned char)host[i - 1]) * KEY_FNV_PRIME;
        if (i == 1 || host[i - 2] == '.') {
            keys[n] = key_mix(h);
            offs[n] = (uint16_t)(i - 1);
            n++;
        }
    }
    return n;
}

/* Running state for URL keys: feed the host suffix, then path bytes. */
static inline uint64_t key_url_feed(uint64_t h, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * KEY_FNV_PRIME;
    return h;
}

/* The key of the URL entry host + rest (rest starts with '/' or '?'). */
static inline uint64_t key_url(const char *host, size_t hlen, const char *rest, size_t rlen)
{
    return key_mix(key_url_feed(key_url_feed(KEY_URL_OFFSET, host, hlen), rest, rlen));
}

#endif
