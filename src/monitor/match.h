/*
 * match.h -- scanning text for the phrases of the keyword libraries.
 *
 * A match database is compiled once from every library (vectorscan literal
 * database in streaming mode) and then shared, read-only, by any number of
 * threads; each thread brings its own scratch (match_scratch). Text is
 * scanned as a stream: match_stream_feed() takes it in pieces as the proxy
 * relays a page, normalises each piece (monitor/normalize.h) up to its last
 * whitespace and scans it without rescanning earlier pieces;
 * match_stream_close() then applies the libraries' rules and gives the
 * verdict. match_text() does the same for one piece of text held in memory
 * (a search term, a line of `haven monitor check`), and there the excerpt
 * of each hit is cut from the text as written, not the normalised form.
 *
 * The rules, applied at close (docs/monitoring.md):
 *   - every library applies to all text, whatever its language;
 *   - a phrase matches on whole words of the normalised text; a phrase of two
 *     words or more with a double letter also matches with that letter single
 *     ("kill myself" matches the "kil myself" the normaliser makes of "killlll
 *     myself"); a '*' ending the last word matches any ending ("starv*");
 *   - a match inside an `exclude` phrase of its theme is dropped;
 *   - a context list moves the severity when one of its words is within
 *     LIB_CONTEXT_WINDOW words of the match; the result is kept in 1..5;
 *   - exclude-site and exclude-group drop matches for that site or group.
 * The verdict: the highest severity of the hits left (0: none) and a score,
 * the sum over hits of a weight per severity (1, 2, 5, 10, 20), counting each
 * phrase at most MATCH_REPEAT times; the policy's `block-score` compares it.
 *
 * Bounds: a stream keeps at most MATCH_MAX_HITS phrase hits and
 * MATCH_MAX_MARKS context and exclusion occurrences (when they fill up, those
 * too far from every hit and from the text being read are forgotten), and the
 * normaliser's pending input is at most one word
 * (MATCH_WORD_MAX bytes; a longer "word" is cut).
 */
#ifndef HAVEN_MONITOR_MATCH_H
#define HAVEN_MONITOR_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "monitor/library.h"

#define MATCH_MAX_HITS 64
#define MATCH_MAX_MARKS 512
#define MATCH_REPEAT 3
#define MATCH_WORD_MAX 256
#define MATCH_EXCERPT 160 /* bytes of excerpt, at most */

struct match_db;
struct match_scratch;
struct match_stream;

/* Where the text was read and by whom, for exclude-site and exclude-group. NULL: unknown. */
struct match_where {
    const char *group;
    const char *host;
    const char *path; /* starts with '/' */
};

struct match_hit {
    const struct lib_phrase *phrase;
    const char *lang;
    int severity;                /* after context, 1-5 */
    char excerpt[MATCH_EXCERPT]; /* the match with words around it, NUL-terminated */
};

struct match_result {
    int severity; /* the highest of the hits; 0: no hit */
    int score;
    int nhits;
    struct match_hit hits[MATCH_MAX_HITS]; /* strongest first */
};

/*
 * Compile libs[0..n) (n >= 1). On success the database owns the libraries and frees
 * them with itself; on failure (NULL, err says why) the caller still owns them.
 */
struct match_db *match_db_build(struct library **libs, size_t n, char *err, size_t errlen);

/* Load every *.lib file in dir (in name order) and compile them. NULL with "FILE:LINE: ..."
 * or "DIR: ..." in err; a directory without libraries is an error. */
struct match_db *match_db_load_dir(const char *dir, char *err, size_t errlen);

void match_db_free(struct match_db *db);

/* How many phrases, and which languages ("en pl ..."), the database holds. */
size_t match_db_phrases(const struct match_db *db);
const char *match_db_languages(const struct match_db *db);

/* Bytes of stream state for one open stream (for sizing and metrics). */
size_t match_db_stream_size(const struct match_db *db);

/*
 * Scratch space for scanning db from one thread. match_scratch_ensure makes *s fit db,
 * allocating it when *s is NULL and growing it when db needs more (after a reload);
 * returns 0 or -1 (allocation failed; *s is unchanged).
 */
int match_scratch_ensure(struct match_scratch **s, const struct match_db *db);
void match_scratch_free(struct match_scratch *s);

/* Scan text[0..len) in one go. Returns 0, or -1 if the scanner failed (out of memory). */
int match_text(const struct match_db *db, struct match_scratch *s, const char *text, size_t len,
               const struct match_where *where, struct match_result *out);

/*
 * The severity that alerts under a group's settings: the highest severity among the hits
 * whose theme is in themes (bit 1u << theme), when it is at least min_severity; else 0.
 */
int match_alert_severity(const struct match_result *r, int min_severity, unsigned themes);

/* A stream over db; NULL on allocation failure. The database must outlive it. */
struct match_stream *match_stream_open(const struct match_db *db);
/* The next piece of text. Returns 0 or -1 (scanner failure; the stream then ignores input). */
int match_stream_feed(struct match_stream *ms, struct match_scratch *s, const char *text,
                      size_t len);
/* End of text: scan what is pending, apply the rules, fill *out, free the stream. */
int match_stream_close(struct match_stream *ms, struct match_scratch *s,
                       const struct match_where *where, struct match_result *out);
/* Free a stream without a verdict (the connection went away). */
void match_stream_abort(struct match_stream *ms);

#endif
