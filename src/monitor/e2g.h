/*
 * e2g.h -- import E2Guardian weighted phrase lists as a haven keyword library.
 *
 * E2Guardian (and DansGuardian before it) filters pages by adding up the
 * weights of the phrases it finds on a page and blocking the page past a
 * limit. Its weighted phrase lists are plain text:
 *
 *   #listcategory: "Pornography"
 *   < ganja ><40>             a whole word ("< ganja >") with weight 40
 *   <ganja><40>               the same letters anywhere, even inside a word
 *   <slut>,<horny><50>        a combination: both on the page add 50
 *   <education><-25>          a "good" phrase: takes 25 away
 *   <slut><10%>               10% of the group's naughtiness limit
 *   .Include</path/to/list>   read another list here
 *
 * This module reads such lists and writes one haven keyword library
 * (docs/monitoring.md) with one theme block. haven gives each phrase a
 * severity of its own and never adds them up per page, so the import maps
 * rather than copies; docs/monitoring.md ("Importing E2Guardian phrase
 * lists") states the mapping and what cannot be carried over:
 *   - weight >= 100: severity 4; >= 50: 3; >= 20: 2; else 1 (e2g_severity);
 *     "N%" counts as weight N (a naughtiness limit of 100);
 *   - <a>,<b><w>: phrase "a" (severity 1 unless listed on its own) with
 *     `context +N "b"` raising it to the severity of w; b must be one word
 *     (when only a is, the two swap); combinations of three or more, and
 *     those whose severity would be 1, are dropped and counted;
 *   - negative weights (good phrases) are dropped, counted and listed in the
 *     header comment of the output: haven has no page-wide score to subtract
 *     from;
 *   - an in-word phrase ("<ganja>", no space after the text) becomes a prefix
 *     ("ganja*") when its last word has 3 bytes or more, else a whole word;
 *   - the same phrase twice is merged, keeping the highest severity.
 *
 * Problems are reported as "FILE:LINE: message". A malformed line is skipped
 * with a warning (e2g_warning); a file that cannot be read, an include loop,
 * includes nested deeper than E2G_INCLUDE_DEPTH and a list too large are fatal
 * (-1 with the message in err). Every buffer is capped: E2G_FILE_MAX bytes of
 * one list, LIB_MAX-sized phrases, E2G_MAX_PHRASES phrases, E2G_OUT_MAX bytes
 * of output.
 *
 * The output of e2g_render always loads with library_load_buffer and
 * compiles with match_db_build (every phrase and context word has letters or
 * digits once normalised). One struct e2g is used from one thread.
 */
#ifndef HAVEN_MONITOR_E2G_H
#define HAVEN_MONITOR_E2G_H

#include <stddef.h>

#define E2G_INCLUDE_DEPTH 8             /* .Include nesting below the first file */
#define E2G_FILE_MAX (16 * 1024 * 1024) /* bytes of one list file */
#define E2G_OUT_MAX (16 * 1024 * 1024)  /* bytes of the library written */
#define E2G_MAX_PHRASES 200000          /* distinct phrases imported */
#define E2G_WARNINGS_KEPT 2000          /* warning messages kept (all are counted) */
#define E2G_WEIGHT_MAX 100000           /* |weight| accepted */

enum e2g_encoding {
    E2G_ENC_AUTO,  /* each file: UTF-8 when it is valid UTF-8, else Latin-1 */
    E2G_ENC_UTF8,  /* lines that are not valid UTF-8 are skipped with a warning */
    E2G_ENC_LATIN1 /* ISO 8859-1, with 0x80-0x9F read as Windows-1252 (as browsers do) */
};

struct e2g_options {
    int theme;            /* enum lib_theme: the theme block of the output */
    const char *language; /* ISO 639-1 code, library_language_known() */
    enum e2g_encoding encoding;
    int no_includes; /* 1: .Include lines are skipped with a warning */
};

/* What the import did, for the header comment and the command's summary. */
struct e2g_stats {
    size_t files;          /* list files read, includes too */
    size_t phrases;        /* distinct phrases imported (anchors of combinations too) */
    size_t combos;         /* combinations imported as context words */
    size_t merged;         /* lines whose phrase was already imported (highest kept) */
    size_t good;           /* negative weights dropped (good phrases and combinations) */
    size_t combo_many;     /* combinations of 3 or more phrases dropped */
    size_t combo_words;    /* combinations where neither part is one word dropped */
    size_t combo_weak;     /* combinations at severity 1 dropped */
    size_t combo_subsumed; /* combinations no stronger than their anchor alone */
    size_t prefix;         /* in-word phrases imported as prefixes ("ganja*") */
    size_t whole;          /* in-word phrases imported as whole words */
    size_t too_long;       /* phrases of more than 8 words or 200 bytes dropped */
    size_t no_letters;     /* phrases with no letters or digits dropped */
    size_t zero;           /* weight 0 dropped */
    size_t context_cut;    /* context words left off a phrase (line limits) */
    size_t malformed;      /* lines skipped with a warning */
    size_t latin1;         /* files read as Latin-1 */
};

struct e2g;

/* A new import with the options (copied; language must be known). Never NULL. */
struct e2g *e2g_create(const struct e2g_options *o);
/* Free e and everything it owns; NULL is fine. */
void e2g_destroy(struct e2g *e);

/*
 * Read the list at path and the lists it includes (relative paths are taken
 * from the directory of the including file). Returns 0, or -1 on a fatal
 * problem with "FILE[:LINE]: message" in err; warnings are kept in e.
 */
int e2g_add_file(struct e2g *e, const char *path, char *err, size_t errlen);

/*
 * The same for text[0..len) in memory, named name in messages; includes are
 * relative to the directory of name. text need not be NUL-terminated.
 */
int e2g_add_buffer(struct e2g *e, const char *name, const char *text, size_t len, char *err,
                   size_t errlen);

/*
 * The keyword library: a header comment (sources, mapping, what was lost),
 * "language", one theme block. Returns a NUL-terminated string the caller
 * frees, its length in *len; NULL with err set when there is nothing to
 * import or the output would pass E2G_OUT_MAX.
 */
char *e2g_render(struct e2g *e, size_t *len, char *err, size_t errlen);

/* Warnings: e2g_warning_count() of them were found, the first
 * min(count, E2G_WARNINGS_KEPT) are kept; each "FILE:LINE: message", valid until e2g_destroy. */
size_t e2g_warning_count(const struct e2g *e);
const char *e2g_warning(const struct e2g *e, size_t i);

const struct e2g_stats *e2g_stats(const struct e2g *e);

/* The severity (1-4) haven gives a positive E2Guardian weight. */
int e2g_severity(long weight);

#endif
