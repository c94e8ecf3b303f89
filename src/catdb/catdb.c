#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "catdb/catdb.h"
#include "catdb/format.h"
#include "catdb/key.h"
#include "common/xalloc.h"
#include "http/url.h"

_Static_assert(sizeof(struct catdb_header) == 128, "catdb header must be 128 bytes");

struct catdb {
    const unsigned char *base;
    size_t len;
    int mapped; /* 1: munmap at close; 2: free at close; 0: borrowed */
    const struct catdb_header *hdr;
    const struct catdb_list_rec *lists;
    const uint64_t *sets;
    const uint64_t *slots;
    uint64_t mask;
    const char *strings;
};

static const char *catdb_str(const struct catdb *db, uint32_t off)
{
    return db->strings + off;
}

/* Is [off, off + n * size) inside the file and aligned to align? */
static int catdb_range_ok(const struct catdb *db, uint64_t off, uint64_t n, uint64_t size,
                          uint64_t align)
{
    if (off % align != 0 || off > db->len)
        return 0;
    if (size != 0 && n > (db->len - off) / size)
        return 0;
    return 1;
}

/* Is off a string that ends with a NUL inside the string table? */
static int catdb_string_ok(const struct catdb *db, uint32_t off)
{
    const struct catdb_header *h = db->hdr;

    return off < h->strings_len && memchr(db->strings + off, '\0', h->strings_len - off);
}

static uint32_t catdb_crc(const unsigned char *base, size_t len)
{
    struct catdb_header copy;
    uLong crc;

    memcpy(&copy, base, sizeof(copy));
    copy.crc = 0;
    crc = crc32(0L, (const Bytef *)&copy, sizeof(copy));
    base += sizeof(copy);
    len -= sizeof(copy);
    /* zlib takes an unsigned int length: feed large files in pieces. */
    while (len > 0) {
        uInt n = len > (1U << 30) ? (1U << 30) : (uInt)len;
        crc = crc32(crc, base, n);
        base += n;
        len -= n;
    }
    return (uint32_t)crc;
}

static const char *catdb_validate(struct catdb *db)
{
    const struct catdb_header *h;

    if (db->len < sizeof(struct catdb_header))
        return "file too small to be a category database";
    h = db->hdr = (const struct catdb_header *)db->base;
    if (memcmp(h->magic, CATDB_MAGIC, 8) != 0)
        return "not a haven category database (bad magic)";
    if (h->version != CATDB_VERSION)
        return "unsupported database version (recompile it with this haven)";
    if (h->header_size != sizeof(struct catdb_header) || h->file_size != db->len)
        return "truncated or padded file (size does not match header)";
    if (catdb_crc(db->base, db->len) != h->crc)
        return "checksum mismatch (file damaged?)";
    if (h->nlists > CATDB_MAX_LISTS || h->nsets == 0 || h->nsets > 65536)
        return "bad list or set count";
    if (h->slot_bits < 1 || h->slot_bits > 31)
        return "bad slot table size";
    if (h->min_labels < 1 || h->min_labels > 255 || h->max_labels > 255)
        return "bad label counts";
    if (!catdb_range_ok(db, h->lists_off, h->nlists, sizeof(struct catdb_list_rec), 4) ||
        !catdb_range_ok(db, h->sets_off, h->nsets, CATDB_SET_WORDS * 8, 8) ||
        !catdb_range_ok(db, h->slots_off, 1ULL << h->slot_bits, 8, 8) ||
        !catdb_range_ok(db, h->strings_off, h->strings_len, 1, 1))
        return "section out of bounds";
    db->lists = (const struct catdb_list_rec *)(db->base + h->lists_off);
    db->sets = (const uint64_t *)(db->base + h->sets_off);
    db->slots = (const uint64_t *)(db->base + h->slots_off);
    db->mask = (1ULL << h->slot_bits) - 1;
    db->strings = (const char *)db->base + h->strings_off;
    if (!catdb_string_ok(db, h->source))
        return "bad source string";
    for (uint32_t i = 0; i < h->nlists; i++) {
        if (!catdb_string_ok(db, db->lists[i].name) || !catdb_string_ok(db, db->lists[i].category))
            return "bad list name";
    }
    /* A set may only name lists that exist. */
    for (uint32_t s = 0; s < h->nsets; s++) {
        for (uint32_t w = 0; w < CATDB_SET_WORDS; w++) {
            uint64_t bits = db->sets[s * CATDB_SET_WORDS + w];
            if (w * 64 >= h->nlists ? bits != 0
                                    : (h->nlists - w * 64 < 64 && bits >> (h->nlists - w * 64)))
                return "list set names a list that does not exist";
        }
    }
    /* A slot may only name sets that exist; a full table would make lookups loop. */
    uint64_t used = 0;
    for (uint64_t i = 0; i <= db->mask; i++) {
        uint64_t s = db->slots[i];
        if (s == 0)
            continue;
        used++;
        if (CATDB_SLOT_SET(s) >= h->nsets)
            return "slot names a list set that does not exist";
    }
    if (used > db->mask)
        return "slot table has no empty slot";
    return NULL;
}

struct catdb *catdb_open_buffer(const void *data, size_t len, int owned, char *err, size_t errlen)
{
    struct catdb *db = xcalloc(1, sizeof(*db));
    const char *why;

    db->base = data;
    db->len = len;
    db->mapped = owned ? 2 : 0;
    why = catdb_validate(db);
    if (why) {
        snprintf(err, errlen, "%s", why);
        db->mapped = 0;
        free(db);
        return NULL;
    }
    return db;
}

struct catdb *catdb_open(const char *path, char *err, size_t errlen)
{
    struct catdb *db = NULL;
    struct stat st;
    void *map = MAP_FAILED;
    char why[256];
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (st.st_size < (off_t)sizeof(struct catdb_header)) {
        snprintf(err, errlen, "%s: file too small to be a category database", path);
        goto out;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
        goto out;
    }
    db = catdb_open_buffer(map, (size_t)st.st_size, 0, why, sizeof(why));
    if (!db) {
        snprintf(err, errlen, "%s: %s", path, why);
        munmap(map, (size_t)st.st_size);
        goto out;
    }
    db->mapped = 1;
out:
    close(fd);
    return db;
}

void catdb_close(struct catdb *db)
{
    if (!db)
        return;
    if (db->mapped == 1)
        munmap((void *)(uintptr_t)db->base, db->len);
    else if (db->mapped == 2)
        free((void *)(uintptr_t)db->base);
    free(db);
}

/* The slot holding key, or 0. */
static inline uint64_t catdb_probe(const struct catdb *db, uint64_t key)
{
    uint64_t fp = catdb_fingerprint(key);
    uint64_t i = key & db->mask;

    for (;;) {
        uint64_t s = db->slots[i];
        if (s == 0 || s >> CATDB_SLOT_FP_SHIFT == fp)
            return s;
        i = (i + 1) & db->mask;
    }
}

static void catdb_add_hit(const struct catdb *db, struct catdb_match *m, uint64_t key,
                          uint64_t slot, enum catdb_hit_kind kind, size_t host_off, size_t path_len)
{
    uint16_t set = CATDB_SLOT_SET(slot);
    const uint64_t *bits = db->sets + (size_t)set * CATDB_SET_WORDS;

    for (int w = 0; w < CATDB_SET_WORDS; w++)
        m->lists[w] |= bits[w];
    if (m->nhits < CATDB_MAX_HITS) {
        struct catdb_hit *h = &m->hits[m->nhits++];
        h->key = key;
        h->set = set;
        h->kind = (uint8_t)kind;
        h->host_off = (uint16_t)host_off;
        h->path_len = (uint16_t)path_len;
    }
}

/*
 * Probe the label suffixes of host that could be entries, all prefetched first
 * so their cache misses overlap. Records host hits; sets bit i of *url_hosts
 * when suffix i has URL entries below it. Returns the suffix count.
 */
static int catdb_walk_host(const struct catdb *db, const char *host, size_t len, int is_ip,
                           struct catdb_match *m, uint64_t *keys, uint16_t *offs,
                           uint32_t *url_hosts)
{
    const struct catdb_header *h = db->hdr;
    uint64_t slots[KEY_MAX_LABELS];
    int n, lo, hi;

    *url_hosts = 0;
    if (is_ip) {
        /* An IPv4-mapped IPv6 address (::ffff:192.0.2.1) is that IPv4 address. */
        size_t skip =
            len > 7 && memcmp(host, "::ffff:", 7) == 0 && memchr(host + 7, '.', len - 7) ? 7 : 0;
        keys[0] = key_host(host + skip, len - skip);
        offs[0] = (uint16_t)skip;
        n = lo = hi = 1;
    } else {
        n = key_host_suffixes(host, len, keys, offs, KEY_MAX_LABELS);
        lo = h->min_labels > 1 ? (int)h->min_labels : 1;
        hi = n < (int)h->max_labels ? n : (int)h->max_labels;
    }
    for (int i = lo - 1; i < hi; i++)
        __builtin_prefetch(&db->slots[keys[i] & db->mask]);
    for (int i = lo - 1; i < hi; i++) {
        slots[i] = catdb_probe(db, keys[i]);
        if (slots[i] & CATDB_SLOT_ENTRY)
            catdb_add_hit(db, m, keys[i], slots[i], is_ip ? CATDB_HIT_IP : CATDB_HIT_HOST, offs[i],
                          0);
        if (slots[i] & CATDB_SLOT_URLS)
            *url_hosts |= 1U << i;
    }
    return n;
}

void catdb_prefetch_host(const struct catdb *db, const char *host, size_t len)
{
    uint64_t keys[KEY_MAX_LABELS];
    uint16_t offs[KEY_MAX_LABELS];
    int n = key_host_suffixes(host, len, keys, offs, KEY_MAX_LABELS);
    int lo = db->hdr->min_labels > 1 ? (int)db->hdr->min_labels : 1;
    int hi = n < (int)db->hdr->max_labels ? n : (int)db->hdr->max_labels;

    for (int i = lo - 1; i < hi; i++)
        __builtin_prefetch(&db->slots[keys[i] & db->mask]);
}

int catdb_lookup_host(const struct catdb *db, const char *host, size_t len, int is_ip,
                      struct catdb_match *m)
{
    uint64_t keys[KEY_MAX_LABELS];
    uint16_t offs[KEY_MAX_LABELS];
    uint32_t url_hosts;

    memset(m->lists, 0, sizeof(m->lists));
    m->nhits = 0;
    catdb_walk_host(db, host, len, is_ip, m, keys, offs, &url_hosts);
    return m->nhits;
}

/* Probe the path prefixes of u below the host suffix that starts at off. */
static void catdb_walk_path(const struct catdb *db, const struct url *u, size_t off,
                            struct catdb_match *m)
{
    const char *host = u->text + u->host_off;
    const char *path = u->text + u->path_off;
    size_t plen = u->path_len, done = 0;
    uint64_t h = key_url_feed(KEY_URL_OFFSET, host + off, u->host_len - off);
    int probes = 0;

    /* Each '/' after the first ends a segment; the whole path ends the last one. */
    for (size_t i = 1; i <= plen && probes < KEY_MAX_SEGMENTS; i++) {
        if (i < plen && path[i] != '/')
            continue;
        if (i == plen && path[plen - 1] == '/')
            break;
        h = key_url_feed(h, path + done, i - done);
        done = i;
        probes++;
        uint64_t key = key_mix(h);
        uint64_t s = catdb_probe(db, key);
        if (s & CATDB_SLOT_ENTRY)
            catdb_add_hit(db, m, key, s, CATDB_HIT_URL, off, i);
    }
    if (u->has_query) {
        /* The path without its trailing '/', then "?query": see catdb.h. */
        size_t base = plen > 0 && path[plen - 1] == '/' ? plen - 1 : plen;
        h = key_url_feed(KEY_URL_OFFSET, host + off, u->host_len - off);
        h = key_url_feed(h, path, base);
        h = key_url_feed(h, "?", 1);
        h = key_url_feed(h, u->text + u->query_off, u->query_len);
        uint64_t key = key_mix(h);
        uint64_t s = catdb_probe(db, key);
        if (s & CATDB_SLOT_ENTRY)
            catdb_add_hit(db, m, key, s, CATDB_HIT_URL, off, plen + 1 + u->query_len);
    }
}

int catdb_lookup_url(const struct catdb *db, const struct url *u, struct catdb_match *m)
{
    uint64_t keys[KEY_MAX_LABELS];
    uint16_t offs[KEY_MAX_LABELS];
    uint32_t url_hosts;
    int n;

    memset(m->lists, 0, sizeof(m->lists));
    m->nhits = 0;
    n = catdb_walk_host(db, u->text + u->host_off, u->host_len, u->host_type != URL_HOST_NAME, m,
                        keys, offs, &url_hosts);
    for (int i = 0; i < n && url_hosts; i++) {
        if (url_hosts & (1U << i)) {
            url_hosts &= ~(1U << i);
            catdb_walk_path(db, u, offs[i], m);
        }
    }
    return m->nhits;
}

void catdb_get_stats(const struct catdb *db, struct catdb_stats *st)
{
    const struct catdb_header *h = db->hdr;

    st->nlists = h->nlists;
    st->nkeys = h->nkeys;
    st->nhosts = h->nhosts;
    st->nurls = h->nurls;
    st->nips = h->nips;
    st->bytes = h->file_size;
    st->created = h->created;
}

const char *catdb_list_name(const struct catdb *db, int i)
{
    return catdb_str(db, db->lists[i].name);
}

const char *catdb_list_category(const struct catdb *db, int i)
{
    return catdb_str(db, db->lists[i].category);
}

uint32_t catdb_list_entries(const struct catdb *db, int i)
{
    return db->lists[i].entries;
}

const uint64_t *catdb_set_lists(const struct catdb *db, uint16_t s)
{
    return db->sets + (size_t)s * CATDB_SET_WORDS;
}

const char *catdb_source(const struct catdb *db)
{
    return catdb_str(db, db->hdr->source);
}
