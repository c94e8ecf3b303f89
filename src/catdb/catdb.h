/*
 * catdb.h -- the compiled category database: open, validate, look up.
 *
 * A category database is one file written by `haven lists compile` (see
 * catdb/build.h). It holds up to CATDB_MAX_LISTS lists (one per imported
 * source: a UT1 category, an IWF file, a school's own list), each tagged with
 * the haven category it belongs to (catdb/taxonomy.h), and one hash table of
 * 64-bit slots that answers "which lists hold this host or URL".
 *
 * The file is mapped read-only and shared by every thread; nothing is copied
 * at open, so a million entries open in milliseconds. Before use the header,
 * every offset and the CRC-32 of the whole file are checked; a file that fails
 * is refused with a reason, never half-used.
 *
 * Matching (docs/lists.md):
 *  - a host entry matches the host and every name below it at a label
 *    boundary: "example.com" matches "example.com" and "a.b.example.com",
 *    not "badexample.com";
 *  - a URL entry "example.com/dir" matches that path and everything below it
 *    at a path-segment boundary ("/dir", "/dir/", "/dir/x", "/dir?q"), on the
 *    host and on names below it; an entry with a query matches that exact
 *    path and query;
 *  - an IPv4 or IPv6 entry matches that address exactly.
 * The result is the set of every list that matches, not only the first.
 *
 * File layout (version 1, little-endian): a 128-byte header; the list records;
 * the list sets (each a bitset of lists, set 0 empty); the slot table; the
 * string table. A slot is 64 bits: 46 bits of key fingerprint, a flag "this
 * key is an entry", a flag "URL entries exist under this host", and 16 bits
 * naming a list set. An empty slot is 0. Open addressing with linear probing
 * at a load of at most 3/4.
 */
#ifndef HAVEN_CATDB_CATDB_H
#define HAVEN_CATDB_CATDB_H

#include <stddef.h>
#include <stdint.h>

struct catdb;
struct url;

#define CATDB_MAX_LISTS 256
#define CATDB_SET_WORDS (CATDB_MAX_LISTS / 64)
#define CATDB_MAX_HITS 16

enum catdb_hit_kind { CATDB_HIT_HOST, CATDB_HIT_URL, CATDB_HIT_IP };

/* One matching entry: which list set, and which part of the request matched. */
struct catdb_hit {
    uint64_t key;      /* the entry's key (catdb/key.h) */
    uint16_t set;      /* list set of the entry (catdb_set_lists) */
    uint16_t host_off; /* the entry's host is the request host from this byte on */
    uint16_t path_len; /* URL hits: bytes of path (and "?query") that matched */
    uint8_t kind;      /* enum catdb_hit_kind */
};

struct catdb_match {
    uint64_t lists[CATDB_SET_WORDS]; /* bitset: bit i set = list i matched */
    int nhits;                       /* hits recorded (at most CATDB_MAX_HITS) */
    struct catdb_hit hits[CATDB_MAX_HITS];
};

/* Totals of a database, for summaries and metrics. */
struct catdb_stats {
    uint32_t nlists;
    uint32_t nkeys;  /* distinct keys: hosts, URLs and addresses */
    uint32_t nhosts; /* distinct host entries */
    uint32_t nurls;  /* distinct URL entries */
    uint32_t nips;   /* distinct address entries */
    uint64_t bytes;  /* file size */
    int64_t created; /* seconds since the epoch */
};

/*
 * Map and validate the database at path. Returns it, or NULL with the reason
 * in err ("var/demo.cdb: checksum mismatch (file damaged?)"). The mapping is
 * released by catdb_close().
 */
struct catdb *catdb_open(const char *path, char *err, size_t errlen);

/*
 * Validate and use a database image in memory. The image must stay valid and
 * unchanged until catdb_close(); it is not copied. If owned is non-zero, the
 * database takes ownership and frees the image with free() at close.
 */
struct catdb *catdb_open_buffer(const void *data, size_t len, int owned, char *err, size_t errlen);

void catdb_close(struct catdb *db);

/*
 * Look up a canonical host (from url_normalize or url_normalize_host): host
 * entries for names, the exact address for addresses. is_ip is non-zero for
 * IPv4 and IPv6 literals. Fills *m; returns the number of hits.
 */
int catdb_lookup_host(const struct catdb *db, const char *host, size_t len, int is_ip,
                      struct catdb_match *m);

/* Look up a canonical URL: host entries and URL entries. Fills *m; returns hits. */
int catdb_lookup_url(const struct catdb *db, const struct url *u, struct catdb_match *m);

/*
 * Start loading the slots a lookup of host will read, without waiting for them. A caller with
 * several requests in hand prefetches them all, then looks each up, so that their cache
 * misses overlap instead of following one another.
 */
void catdb_prefetch_host(const struct catdb *db, const char *host, size_t len);

void catdb_get_stats(const struct catdb *db, struct catdb_stats *st);

/* List i (0 <= i < nlists): its name, the category it belongs to, its entry count. */
const char *catdb_list_name(const struct catdb *db, int i);
const char *catdb_list_category(const struct catdb *db, int i);
uint32_t catdb_list_entries(const struct catdb *db, int i);

/* The bitset of lists (CATDB_SET_WORDS words) of list set s, as in a catdb_hit. */
const uint64_t *catdb_set_lists(const struct catdb *db, uint16_t s);

/* A free-text description of where the data came from (attribution), or "". */
const char *catdb_source(const struct catdb *db);

#endif
