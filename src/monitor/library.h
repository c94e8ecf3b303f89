/*
 * library.h -- keyword libraries for the safeguarding monitor.
 *
 * A keyword library is a text file (docs/monitoring.md) that lists, for one
 * language, the phrases that should raise a safeguarding alert, grouped by
 * theme (suicide, self-harm, bullying, ...), each with a severity from 1 to 5,
 * optional context words that raise or lower that severity, and exclusions
 * (longer phrases that cancel a match, sites and policy groups that never
 * alert). This module only reads and checks the file; matching text against
 * it comes later.
 *
 * Invariants of a loaded library, which callers may rely on:
 *   - it has exactly one language, one of library_language_known();
 *   - every phrase belongs to a theme, has 1 to LIB_PHRASE_WORDS words, at
 *     most LIB_PHRASE_MAX bytes, is valid UTF-8, lower-cased, with single
 *     spaces between words and none at either end;
 *   - no theme holds the same phrase twice;
 *   - every severity is 1 to 5, every context delta -4..-1 or +1..+4;
 *   - every phrase exclusion contains at least one phrase of its theme, on
 *     word boundaries.
 * Nothing in a library changes after it is loaded, so one library may be
 * read from any number of threads. Every pointer it hands out is valid until
 * library_free.
 */
#ifndef HAVEN_MONITOR_LIBRARY_H
#define HAVEN_MONITOR_LIBRARY_H

#include <stddef.h>

#define LIB_PHRASE_MAX 200   /* bytes of one phrase or exclusion */
#define LIB_PHRASE_WORDS 8   /* words of one phrase */
#define LIB_EXCLUDE_WORDS 16 /* words of one exclusion phrase */
#define LIB_CONTEXT_WINDOW 8 /* context words count within this many words of a match */
#define LIB_DEFAULT_SEVERITY 3

/* The themes, in the order of library_theme_name(). The list is fixed. */
enum lib_theme {
    LIB_SUICIDE,
    LIB_SELF_HARM,
    LIB_EATING_DISORDERS,
    LIB_BULLYING,
    LIB_SEXUAL_EXPLOITATION,
    LIB_EXTREMISM,
    LIB_DRUGS,
    LIB_WEAPONS_VIOLENCE,
    LIB_PORNOGRAPHY,
    LIB_GAMBLING,
    LIB_HATE,
    LIB_NTHEMES
};

/* Context words that move a phrase's severity when they are near a match. */
struct lib_context {
    int delta;                /* -4..-1 or +1..+4 */
    const char *const *words; /* lower-cased, one word each */
    int nwords;               /* at least 1 */
};

struct lib_phrase {
    const char *text; /* lower-cased, words separated by one space */
    int nwords;
    int severity;                  /* 1-5: its own, or its theme's */
    int theme;                     /* enum lib_theme */
    const struct lib_context *ctx; /* nctx entries, NULL when none */
    int nctx;
    int line; /* where it is written, for messages */
};

enum lib_exclusion_kind {
    LIB_EXCLUDE_PHRASE, /* a longer phrase that cancels a match inside it */
    LIB_EXCLUDE_SITE,   /* no alerts on this host or host/path */
    LIB_EXCLUDE_GROUP   /* no alerts for users in this policy group */
};

struct lib_exclusion {
    enum lib_exclusion_kind kind;
    const char *text; /* phrase (as phrases are stored), site or group name */
    int theme;        /* enum lib_theme, or -1: every theme (sites and groups at the top level) */
    int line;
};

struct library;

/*
 * Read and check the library file at path. Returns a library the caller
 * frees with library_free, or NULL with err set to "FILE:LINE: message"
 * (or "FILE: message" when the file cannot be read).
 */
struct library *library_load(const char *path, char *err, size_t errlen);

/*
 * The same for text[0..len) already in memory; name is used in messages.
 * text need not be NUL-terminated and is not kept.
 */
struct library *library_load_buffer(const char *name, const char *text, size_t len, char *err,
                                    size_t errlen);

/* Free l and everything it owns; NULL is fine. */
void library_free(struct library *l);

/* The file name given when it was loaded. */
const char *library_name(const struct library *l);

/* The ISO 639-1 code from the "language" line ("en"). */
const char *library_language(const struct library *l);

/* Phrases, in file order. i < library_count(l). */
size_t library_count(const struct library *l);
const struct lib_phrase *library_phrase(const struct library *l, size_t i);

/* Exclusions of every kind, in file order. i < library_exclusion_count(l). */
size_t library_exclusion_count(const struct library *l);
const struct lib_exclusion *library_exclusion(const struct library *l, size_t i);

/* Does the library have a "theme" block for theme? */
int library_has_theme(const struct library *l, int theme);

/* The fixed theme table. */
int library_theme_count(void);
/* "self-harm"; theme < library_theme_count(). */
const char *library_theme_name(int theme);
/* The theme's "4C" risk area: "content", "contact", "conduct" or "commerce". */
const char *library_theme_4c(int theme);
/* The theme named name, or -1. */
int library_theme_find(const char *name);
/* For a name that is not a theme, the theme it most likely means ("grooming" ->
 * "sexual-exploitation", "suicde" -> "suicide"), or NULL. */
const char *library_theme_suggest(const char *name);
#define LIB_THEME_LIST                                                                             \
    "suicide, self-harm, eating-disorders, bullying, sexual-exploitation, extremism, drugs, "      \
    "weapons-violence, pornography, gambling, hate"

/* Is code a language haven has libraries for ("en", "pl", ...)? 1 or 0. */
int library_language_known(const char *code);

#endif
