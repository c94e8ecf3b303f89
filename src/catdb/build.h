/*
 * build.h -- compile lists into a category database (catdb.h).
 *
 * Add lists, then entries (already canonical: see import.h, which parses and
 * normalises list files), then write. The same key added to several lists is
 * stored once with the set of its lists; added twice to one list it counts
 * once. Writing is atomic: a temporary file in the same directory, fsync,
 * rename; a reader never sees half a database, and a failed write leaves the
 * old file as it was.
 */
#ifndef HAVEN_CATDB_BUILD_H
#define HAVEN_CATDB_BUILD_H

#include <stddef.h>
#include <stdint.h>

struct catdb_builder;

struct catdb_builder *catdb_builder_create(void);
void catdb_builder_destroy(struct catdb_builder *b);

/*
 * Add a list called name whose entries belong to category. Returns the list's
 * id (0, 1, ...) or -1 when CATDB_MAX_LISTS lists already exist. If a list
 * with that name exists, its id is returned.
 */
int catdb_builder_add_list(struct catdb_builder *b, const char *name, const char *category);

/* Add a canonical host (name or address; is_ip non-zero for an address) to a list. */
void catdb_builder_add_host(struct catdb_builder *b, int list, const char *host, size_t len,
                            int is_ip);

/*
 * Add a URL entry: canonical host (is_ip non-zero for an address), then rest,
 * the canonical path without its trailing '/', followed by "?query" if the
 * entry has one (see catdb.h).
 */
void catdb_builder_add_url(struct catdb_builder *b, int list, const char *host, size_t hlen,
                           int is_ip, const char *rest, size_t rlen);

/* Entries added so far (duplicates included) and distinct keys. */
uint64_t catdb_builder_entries(const struct catdb_builder *b);
uint64_t catdb_builder_keys(const struct catdb_builder *b);

/*
 * Build the image. source is a free-text note kept in the database (where the
 * data came from, attribution). Returns a malloc'd image and its length, or
 * NULL with err set when the lists combine into more than 65,536 distinct
 * sets (the slot format's limit).
 */
void *catdb_builder_image(struct catdb_builder *b, const char *source, size_t *len, char *err,
                          size_t errlen);

/* Build the image and write it to path atomically. Returns 0, or -1 with err set. */
int catdb_builder_write(struct catdb_builder *b, const char *path, const char *source, char *err,
                        size_t errlen);

#endif
