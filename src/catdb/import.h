/*
 * import.h -- read list files into a category database builder.
 *
 * Formats, recognised line by line so one file may mix them (docs/lists.md):
 *  - a domain or IPv4/IPv6 address per line ("example.com", ".example.com"
 *    and "*.example.com" all mean the domain and every name below it);
 *  - a URL per line, with or without a scheme ("example.com/dir/page");
 *  - hosts-file lines ("0.0.0.0 example.com other.example"); the names
 *    localhost, localhost.localdomain, broadcasthost, local and ip6-* are
 *    skipped, as they are in every hosts file and are never blocks;
 *  - Adblock-style "||example.com^" (optionally "$important", "$all",
 *    "$document"); other Adblock rules (exceptions "@@", cosmetic "##",
 *    regular expressions, wildcards, other options) are rejected, not guessed.
 * Blank lines, comments ("#", "!") and Adblock headers ("[Adblock Plus 2.0]") are skipped; a "#"
 * after white space starts a comment. Every entry is normalised with
 * url_normalize_host or url_normalize, exactly as requests are.
 *
 * Files may be plain, gzip, xz or bzip2 compressed (libarchive detects which).
 * A UT1 / squidGuard directory holds one directory per category with files
 * "domains" and "urls" (each optionally .gz or .xz); a category directory that
 * is a symbolic link to another one in the same tree is an alias and is not
 * read twice.
 *
 * Nothing is dropped silently: each rejected line is passed to the reject
 * callback with its file, line number and reason, and counted.
 */
#ifndef HAVEN_CATDB_IMPORT_H
#define HAVEN_CATDB_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "http/url.h"

struct catdb_builder;

#define IMPORT_LINE_MAX 8192

struct import_ctx {
    struct catdb_builder *b;
    /* Called for each rejected line; text is the line as read (not NUL-terminated). */
    void (*reject)(void *arg, const char *file, unsigned long line, const char *why,
                   const char *text, size_t len);
    /* Called as each file of a directory import starts; done counts from 0. */
    void (*progress)(void *arg, const char *what, int done, int total);
    void *arg;
    uint64_t lines, accepted, skipped, rejected;
};

enum import_result { IMPORT_ADDED, IMPORT_SKIPPED, IMPORT_REJECTED };

/* One list entry, normalised: a host, or a host and the rest of a URL. */
struct import_entry {
    int is_url;
    int is_ip;
    char host[URL_HOST_MAX + 1];
    size_t hlen;
    char rest[URL_MAX + 2]; /* path without trailing '/', then "?query" */
    size_t rlen;
};

/*
 * Parse one entry (a host, ".host", "*.host" or a URL, no spaces) into *e.
 * Returns 0, or -1 with *why set. Used by the importers and by the policy's
 * own site lists, so both normalise alike.
 */
int import_parse_entry(const char *text, size_t len, struct import_entry *e, const char **why);

/* The key the entry is stored under (catdb/key.h). */
uint64_t import_entry_key(const struct import_entry *e);

/* Add a parsed entry to list. */
void import_add_entry(struct catdb_builder *b, int list, const struct import_entry *e);

/* Import one line into list. On IMPORT_REJECTED, *why names the problem. */
enum import_result import_line(struct import_ctx *c, int list, const char *line, size_t len,
                               const char **why);

/* Import every line of the file at path into list. Returns 0, or -1 with err
 * set if the file cannot be read (rejected lines are not an error). */
int import_file(struct import_ctx *c, int list, const char *path, char *err, size_t errlen);

/* Import a UT1 / squidGuard directory tree: one list "ut1/NAME" per category,
 * in the haven category the taxonomy maps NAME to (or NAME itself). */
int import_ut1_dir(struct import_ctx *c, const char *dir, char *err, size_t errlen);

#endif
