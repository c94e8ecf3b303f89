/*
 * library.c -- read and check a keyword library file.
 *
 * DESIGN. The file is read line by line with the same conventions as the
 * policy language (docs/policy.md): '#' comments, double-quoted strings with
 * \" and \\, one statement per line, "theme NAME {" opening a block that a
 * line "}" closes. Every check is made while the line is in hand, so every
 * error names the line that causes it; the few checks that need the whole
 * theme (an exclusion must contain one of its phrases) run at the '}' and
 * still name the line of the statement at fault.
 *
 * Phrases are stored lower-cased (Unicode simple lower case, via utf8proc)
 * with runs of spaces made single; the rest of normalisation (accents,
 * leetspeak, punctuation) belongs to the matcher, so the file says what the
 * author wrote. All strings live in one list the library owns; the context
 * arrays are appended in phrase order during parsing and the phrase pointers
 * into them are set once at the end, when the arrays no longer move.
 */
#include "common/compat.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>

#include <utf8proc.h>

#include "catdb/import.h"
#include "common/lex.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "monitor/library.h"

#define LIB_LINE_MAX 4096
#define LIB_MAX_TOKENS 128
#define LIB_MAX_FILE (16 * 1024 * 1024)
#define LIB_MAX_PHRASES 200000
#define LIB_MAX_CONTEXTS 4 /* context clauses on one phrase */
#define LIB_NAME_MAX 64    /* policy group names */
#define LIB_TEXT_BUF (4 * LIB_PHRASE_MAX + 8)

/* ---------------------------------------------------------------- tables */

struct lib_theme_info {
    const char *name;
    const char *risk; /* the 4C area (KCSIE: content, contact, conduct, commerce) */
};

static const struct lib_theme_info lib_themes[LIB_NTHEMES] = {
    [LIB_SUICIDE] = {"suicide", "content"},
    [LIB_SELF_HARM] = {"self-harm", "content"},
    [LIB_EATING_DISORDERS] = {"eating-disorders", "content"},
    [LIB_BULLYING] = {"bullying", "contact"},
    [LIB_SEXUAL_EXPLOITATION] = {"sexual-exploitation", "contact"},
    [LIB_EXTREMISM] = {"extremism", "content"},
    [LIB_DRUGS] = {"drugs", "content"},
    [LIB_WEAPONS_VIOLENCE] = {"weapons-violence", "content"},
    [LIB_PORNOGRAPHY] = {"pornography", "content"},
    [LIB_GAMBLING] = {"gambling", "commerce"},
    [LIB_HATE] = {"hate", "content"},
};

/* Words people reach for that are not theme names, and the theme they mean. */
static const char *const lib_theme_aliases[][2] = {
    {"porn", "pornography"},
    {"adult", "pornography"},
    {"grooming", "sexual-exploitation"},
    {"cse", "sexual-exploitation"},
    {"exploitation", "sexual-exploitation"},
    {"terrorism", "extremism"},
    {"radicalisation", "extremism"},
    {"radicalization", "extremism"},
    {"weapons", "weapons-violence"},
    {"violence", "weapons-violence"},
    {"racism", "hate"},
    {"homophobia", "hate"},
    {"cyberbullying", "bullying"},
    {"eating-disorder", "eating-disorders"},
    {"anorexia", "eating-disorders"},
    {"selfharm", "self-harm"},
    {"suicidal", "suicide"},
    {"betting", "gambling"},
};

struct lib_lang {
    const char *code; /* ISO 639-1 */
    const char *name; /* English name, for hints */
};

static const struct lib_lang lib_langs[] = {
    {"en", "english"}, {"pl", "polish"}, {"ro", "romanian"},   {"ur", "urdu"},
    {"pa", "punjabi"}, {"ar", "arabic"}, {"bn", "bengali"},    {"cy", "welsh"},
    {"es", "spanish"}, {"fr", "french"}, {"pt", "portuguese"},
};

static const char *const lib_top_statements[] = {"language", "theme", "exclude-site",
                                                 "exclude-group"};
static const char *const lib_theme_statements[] = {"severity", "phrase", "exclude", "exclude-site",
                                                   "exclude-group"};

/* ---------------------------------------------------------------- library */

struct lib_theme_state {
    int defined;
    int line;     /* of "theme NAME {" */
    int severity; /* default for its phrases */
    int severity_line;
    size_t first, end; /* its phrases: [first, end) of the phrase array */
    size_t excl_first; /* its exclusions start here */
};

struct library {
    char *name;
    char lang[4];
    struct lib_phrase *phrases;
    size_t nphrases, phrases_cap;
    struct lib_context *ctxs;
    size_t nctxs, ctxs_cap;
    const char **words; /* context words, in context order */
    size_t nwords, words_cap;
    struct lib_exclusion *excl;
    size_t nexcl, excl_cap;
    char **strs; /* every string above */
    size_t nstrs, strs_cap;
    struct lib_theme_state themes[LIB_NTHEMES];
};

struct lib_parser {
    struct library *l;
    const char *file;
    unsigned long line;
    char *err;
    size_t errlen;
    int theme; /* the open theme block, or -1 */
    unsigned long lang_line;
    struct lex_tok tok[LIB_MAX_TOKENS];
    int ntok;
};

static int lib_fail(struct lib_parser *ps, const char *fmt, ...) HAVEN_PRINTF(2, 3);

static int lib_fail(struct lib_parser *ps, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "%s:%lu: %s", ps->file, ps->line, msg);
    return -1;
}

static const char *lib_keep(struct library *l, const char *s, size_t len)
{
    char *copy = xstrndup(s, len);

    l->strs = xgrow(l->strs, &l->strs_cap, l->nstrs + 1, sizeof(*l->strs));
    l->strs[l->nstrs++] = copy;
    return copy;
}

/* ---------------------------------------------------------------- hints */

/*
 * The candidate closest to name, if it is close enough to be a typo; else
 * NULL. Short names get less slack, so "cats" does not suggest "hate".
 */
static const char *lib_suggest(const char *name, const char *const *cands, size_t n)
{
    size_t len = strlen(name);
    const char *best = NULL;
    int best_d = 1000, limit = len >= 8 ? 3 : len >= 5 ? 2 : 1;

    for (size_t i = 0; i < n; i++) {
        int d = lex_distance(name, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    return best_d <= limit ? best : NULL;
}

/* ---------------------------------------------------------------- tokens */

/* ---------------------------------------------------------------- values */

/*
 * Lower-case text into out (LIB_TEXT_BUF bytes) with single spaces between
 * words. what names the thing in messages ("phrase"). star: a '*' may end the
 * last word (a prefix: "starv*"). Returns the number of words, or -1 after
 * lib_fail.
 */
static int lib_text(struct lib_parser *ps, const char *what, const char *text, int maxwords,
                    int star, char *out, size_t *outlen)
{
    const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)text;
    size_t len = strlen(text), pos = 0, o = 0;
    int words = 0, in_word = 0;

    if (len > LIB_PHRASE_MAX)
        return lib_fail(ps, "%s is %zu bytes long (the limit is %d)", what, len, LIB_PHRASE_MAX);
    while (pos < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(s + pos, (utf8proc_ssize_t)(len - pos), &cp);

        if (n < 0)
            return lib_fail(ps, "%s is not valid UTF-8 (at byte %zu)", what, pos + 1);
        pos += (size_t)n;
        if (cp == ' ' || cp == '\t') {
            in_word = 0;
            continue;
        }
        if (!in_word) {
            if (words > 0)
                out[o++] = ' ';
            words++;
            in_word = 1;
        }
        o += (size_t)utf8proc_encode_char(utf8proc_tolower(cp), (utf8proc_uint8_t *)out + o);
    }
    out[o] = '\0';
    *outlen = o;
    if (o > LIB_PHRASE_MAX)
        return lib_fail(ps, "%s is %zu bytes long once lower-cased (the limit is %d)", what, o,
                        LIB_PHRASE_MAX);
    if (words == 0)
        return lib_fail(ps, "empty %s", what);
    if (words > maxwords)
        return lib_fail(ps, "%s \"%s\" has %d words (the limit is %d)", what, out, words, maxwords);
    const char *st = strchr(out, '*');
    if (st && !star)
        return lib_fail(ps, "%s \"%s\": '*' is only for phrases and context words", what, out);
    if (st) {
        const char *last = strrchr(out, ' ');
        size_t wlen = (size_t)(st - (last ? last + 1 : out));
        if (st[1] != '\0')
            return lib_fail(ps, "%s \"%s\": '*' may only end the last word", what, out);
        if (wlen < 3)
            return lib_fail(ps,
                            "%s \"%s\": a word ending in '*' needs at least 3 letters before it",
                            what, out);
    }
    return words;
}

/* A severity "1".."5"; -1 when s is something else. */
static int lib_severity_value(const char *s)
{
    if (s[0] >= '1' && s[0] <= '5' && s[1] == '\0')
        return s[0] - '0';
    return -1;
}

/* Is s a number of any kind (so a bad severity, not a stray word)? */
static int lib_looks_numeric(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    if (!isdigit((unsigned char)*s))
        return 0;
    while (isdigit((unsigned char)*s))
        s++;
    return *s == '\0' || *s == '.';
}

/* ---------------------------------------------------------------- statements */

static int lib_language(struct lib_parser *ps)
{
    struct library *l = ps->l;
    const char *code;

    if (ps->lang_line)
        return lib_fail(ps,
                        "'language' given twice (first at line %lu); a library holds one "
                        "language, so write one file per language",
                        ps->lang_line);
    if (ps->ntok != 2 || ps->tok[1].type != LEX_WORD)
        return lib_fail(ps, "write: language CODE (an ISO 639-1 code such as en)");
    code = ps->tok[1].s;
    if (!library_language_known(code)) {
        char lower[32];
        size_t n = strlen(code);

        if (n < sizeof(lower)) {
            for (size_t i = 0; i <= n; i++)
                lower[i] = (char)tolower((unsigned char)code[i]);
            for (size_t i = 0; i < HAVEN_ARRAY_LEN(lib_langs); i++) {
                if (strcmp(lower, lib_langs[i].code) == 0 || strcmp(lower, lib_langs[i].name) == 0)
                    return lib_fail(ps, "unknown language '%s' (did you mean '%s'?)", code,
                                    lib_langs[i].code);
            }
        }
        return lib_fail(ps,
                        "unknown language '%.32s' (the languages are en, pl, ro, ur, pa, ar, bn, "
                        "cy, es, fr, pt)",
                        code);
    }
    memcpy(l->lang, code, 3);
    ps->lang_line = ps->line;
    return 0;
}

const char *library_theme_suggest(const char *name)
{
    const char *names[LIB_NTHEMES];

    for (size_t i = 0; i < HAVEN_ARRAY_LEN(lib_theme_aliases); i++) {
        if (strcmp(name, lib_theme_aliases[i][0]) == 0)
            return lib_theme_aliases[i][1];
    }
    for (int i = 0; i < LIB_NTHEMES; i++)
        names[i] = lib_themes[i].name;
    return lib_suggest(name, names, LIB_NTHEMES);
}

static int lib_unknown_theme(struct lib_parser *ps, const char *name)
{
    const char *best = library_theme_suggest(name);

    if (best)
        return lib_fail(ps, "unknown theme '%.64s' (did you mean '%s'?)", name, best);
    return lib_fail(ps, "unknown theme '%.64s' (the themes are %s)", name, LIB_THEME_LIST);
}

static int lib_theme_open(struct lib_parser *ps)
{
    struct lib_theme_state *t;
    int theme;

    if (ps->ntok != 3 || ps->tok[1].type != LEX_WORD || ps->tok[2].type != LEX_LBRACE)
        return lib_fail(ps, "write: theme NAME {");
    theme = library_theme_find(ps->tok[1].s);
    if (theme < 0)
        return lib_unknown_theme(ps, ps->tok[1].s);
    t = &ps->l->themes[theme];
    if (t->defined)
        return lib_fail(ps,
                        "theme '%s' is already defined at line %d; put all its phrases in one "
                        "block",
                        lib_themes[theme].name, t->line);
    t->defined = 1;
    t->line = (int)ps->line;
    t->severity = LIB_DEFAULT_SEVERITY;
    t->first = ps->l->nphrases;
    t->end = ps->l->nphrases;
    t->excl_first = ps->l->nexcl;
    ps->theme = theme;
    return 0;
}

static int lib_severity(struct lib_parser *ps)
{
    struct lib_theme_state *t = &ps->l->themes[ps->theme];
    int v;

    if (ps->ntok != 2 || ps->tok[1].type != LEX_WORD)
        return lib_fail(ps, "write: severity N (1 to 5)");
    if (t->severity_line)
        return lib_fail(ps, "'severity' given twice in theme '%s' (first at line %d)",
                        lib_themes[ps->theme].name, t->severity_line);
    if (t->end > t->first)
        return lib_fail(ps, "'severity' must come before the first phrase of the theme (line %d)",
                        ps->l->phrases[t->first].line);
    v = lib_severity_value(ps->tok[1].s);
    if (v < 0)
        return lib_fail(ps, "severity must be 1 to 5, not '%.32s'", ps->tok[1].s);
    t->severity = v;
    t->severity_line = (int)ps->line;
    return 0;
}

static int lib_is_context(const struct lex_tok *t)
{
    return t->type == LEX_WORD && strcmp(t->s, "context") == 0;
}

/* "context +2 WORD..." starting at token *i; appends one context. */
static int lib_context(struct lib_parser *ps, int *i)
{
    struct library *l = ps->l;
    const char *d = ps->tok[*i + 1 < ps->ntok ? *i + 1 : *i].s;
    char out[LIB_TEXT_BUF];
    size_t outlen;
    int delta, nwords = 0;

    if (*i + 1 >= ps->ntok)
        return lib_fail(ps, "'context' needs a change and words: context -2 \"word\" ...");
    if ((d[0] != '+' && d[0] != '-') || !isdigit((unsigned char)d[1])) {
        if (lib_looks_numeric(d))
            return lib_fail(ps,
                            "context change '%.32s' needs a sign: write +%.32s to raise the "
                            "severity or -%.32s to lower it",
                            d, d, d);
        return lib_fail(ps,
                        "'context' must be followed by a change such as -2 or +1, not "
                        "'%.32s'",
                        d);
    }
    if (d[2] != '\0' || d[1] < '1' || d[1] > '4')
        return lib_fail(ps, "context change must be -4 to -1 or +1 to +4, not '%.32s'", d);
    delta = d[0] == '-' ? -(d[1] - '0') : d[1] - '0';
    *i += 2;
    while (*i < ps->ntok && !lib_is_context(&ps->tok[*i])) {
        if (ps->tok[*i].type != LEX_WORD && ps->tok[*i].type != LEX_STRING)
            return lib_fail(ps, "unexpected '%s'", ps->tok[*i].s);
        if (lib_text(ps, "context word", ps->tok[*i].s, 1, 1, out, &outlen) < 0)
            return -1;
        l->words = xgrow(l->words, &l->words_cap, l->nwords + 1, sizeof(*l->words));
        l->words[l->nwords++] = lib_keep(l, out, outlen);
        nwords++;
        (*i)++;
    }
    if (nwords == 0)
        return lib_fail(ps, "'context %s' needs at least one word after it", d);
    l->ctxs = xgrow(l->ctxs, &l->ctxs_cap, l->nctxs + 1, sizeof(*l->ctxs));
    l->ctxs[l->nctxs].delta = delta;
    l->ctxs[l->nctxs].words = NULL; /* set in lib_finish */
    l->ctxs[l->nctxs].nwords = nwords;
    l->nctxs++;
    return 0;
}

static int lib_phrase_line(struct lib_parser *ps)
{
    struct library *l = ps->l;
    struct lib_theme_state *t = &l->themes[ps->theme];
    struct lib_phrase ph;
    char out[LIB_TEXT_BUF];
    size_t outlen;
    int i = 2;

    memset(&ph, 0, sizeof(ph));
    if (ps->ntok < 2)
        return lib_fail(ps, "write: phrase \"WORDS\" [SEVERITY] [context +N \"word\" ...]");
    if (ps->tok[1].type != LEX_STRING)
        return lib_fail(ps, "write the phrase in double quotes: phrase \"%.64s\"", ps->tok[1].s);
    ph.nwords = lib_text(ps, "phrase", ps->tok[1].s, LIB_PHRASE_WORDS, 1, out, &outlen);
    if (ph.nwords < 0)
        return -1;
    for (size_t k = t->first; k < t->end; k++) {
        if (strcmp(l->phrases[k].text, out) == 0)
            return lib_fail(ps, "duplicate phrase \"%s\" in theme '%s' (first at line %d)", out,
                            lib_themes[ps->theme].name, l->phrases[k].line);
    }
    if (l->nphrases >= LIB_MAX_PHRASES)
        return lib_fail(ps, "too many phrases (the limit is %d)", LIB_MAX_PHRASES);
    ph.severity = t->severity;
    if (i < ps->ntok && !lib_is_context(&ps->tok[i])) {
        ph.severity = lib_severity_value(ps->tok[i].s);
        if (ph.severity < 0 && lib_looks_numeric(ps->tok[i].s))
            return lib_fail(ps, "severity must be 1 to 5, not '%.32s'", ps->tok[i].s);
        if (ph.severity < 0)
            return lib_fail(ps,
                            "unexpected '%.64s' after the phrase (expected a severity 1 to 5 or "
                            "'context')",
                            ps->tok[i].s);
        i++;
    }
    while (i < ps->ntok) {
        if (ph.nctx == LIB_MAX_CONTEXTS)
            return lib_fail(ps, "a phrase takes at most %d 'context' lists", LIB_MAX_CONTEXTS);
        if (lib_context(ps, &i) < 0)
            return -1;
        ph.nctx++;
    }
    ph.text = lib_keep(l, out, outlen);
    ph.theme = ps->theme;
    ph.line = (int)ps->line;
    l->phrases = xgrow(l->phrases, &l->phrases_cap, l->nphrases + 1, sizeof(*l->phrases));
    l->phrases[l->nphrases++] = ph;
    t->end = l->nphrases;
    return 0;
}

static void lib_add_exclusion(struct library *l, enum lib_exclusion_kind kind, const char *text,
                              size_t len, int theme, int line)
{
    struct lib_exclusion *e;

    l->excl = xgrow(l->excl, &l->excl_cap, l->nexcl + 1, sizeof(*l->excl));
    e = &l->excl[l->nexcl++];
    e->kind = kind;
    e->text = lib_keep(l, text, len);
    e->theme = theme;
    e->line = line;
}

/* An exclusion of this kind, text and scope already given: its line, or 0. */
static int lib_find_exclusion(const struct library *l, enum lib_exclusion_kind kind,
                              const char *text, int theme)
{
    for (size_t i = 0; i < l->nexcl; i++) {
        const struct lib_exclusion *e = &l->excl[i];
        if (e->kind == kind && e->theme == theme && strcmp(e->text, text) == 0)
            return e->line;
    }
    return 0;
}

static int lib_exclude_phrase(struct lib_parser *ps)
{
    char out[LIB_TEXT_BUF];
    size_t outlen;
    int first;

    if (ps->ntok != 2)
        return lib_fail(ps, "write: exclude \"LONGER PHRASE\" (one per line)");
    if (ps->tok[1].type != LEX_STRING)
        return lib_fail(ps, "write the phrase in double quotes: exclude \"%.64s\"", ps->tok[1].s);
    if (lib_text(ps, "exclusion", ps->tok[1].s, LIB_EXCLUDE_WORDS, 0, out, &outlen) < 0)
        return -1;
    first = lib_find_exclusion(ps->l, LIB_EXCLUDE_PHRASE, out, ps->theme);
    if (first)
        return lib_fail(ps, "duplicate exclusion \"%s\" in theme '%s' (first at line %d)", out,
                        lib_themes[ps->theme].name, first);
    lib_add_exclusion(ps->l, LIB_EXCLUDE_PHRASE, out, outlen, ps->theme, (int)ps->line);
    return 0;
}

static int lib_exclude_site(struct lib_parser *ps)
{
    static __thread struct import_entry e;
    char site[LIB_TEXT_BUF];

    if (ps->ntok < 2)
        return lib_fail(ps, "write: exclude-site SITE... (a host such as bbc.co.uk, or "
                            "host/path)");
    for (int i = 1; i < ps->ntok; i++) {
        const char *s = ps->tok[i].s, *why;
        size_t n = strlen(s);
        int first;

        if (ps->tok[i].type != LEX_WORD)
            return lib_fail(ps, "unexpected '%.64s' (write sites without quotes)", s);
        if (strstr(s, "://"))
            return lib_fail(ps, "write the site without 'http://' or 'https://': '%.200s'", s);
        if (n > LIB_PHRASE_MAX)
            return lib_fail(ps, "site is %zu bytes long (the limit is %d)", n, LIB_PHRASE_MAX);
        if (import_parse_entry(s, n, &e, &why) < 0)
            return lib_fail(ps, "'%.200s' is not a site: %s", s, why);
        for (size_t k = 0; k <= n; k++)
            site[k] = (char)tolower((unsigned char)s[k]);
        first = lib_find_exclusion(ps->l, LIB_EXCLUDE_SITE, site, ps->theme);
        if (first)
            return lib_fail(ps, "site '%s' is already excluded at line %d", site, first);
        lib_add_exclusion(ps->l, LIB_EXCLUDE_SITE, site, n, ps->theme, (int)ps->line);
    }
    return 0;
}

static int lib_exclude_group(struct lib_parser *ps)
{
    if (ps->ntok < 2)
        return lib_fail(ps, "write: exclude-group GROUP... (policy group names)");
    for (int i = 1; i < ps->ntok; i++) {
        const char *s = ps->tok[i].s;
        size_t n = strlen(s);
        int first;

        if (ps->tok[i].type != LEX_WORD)
            return lib_fail(ps, "unexpected '%.64s' (write group names without quotes)", s);
        if (n > LIB_NAME_MAX)
            return lib_fail(ps, "group name must be 1 to %d characters", LIB_NAME_MAX);
        for (const char *c = s; *c; c++) {
            if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
                return lib_fail(
                    ps, "group name '%s' may only use letters, digits, '-', '_' and '.'", s);
        }
        first = lib_find_exclusion(ps->l, LIB_EXCLUDE_GROUP, s, ps->theme);
        if (first)
            return lib_fail(ps, "group '%s' is already excluded at line %d", s, first);
        lib_add_exclusion(ps->l, LIB_EXCLUDE_GROUP, s, n, ps->theme, (int)ps->line);
    }
    return 0;
}

/* Does the phrase p occur in text on word boundaries (a final '*' matching any ending)? */
static int lib_contains_words(const char *text, const char *p)
{
    size_t tl = strlen(text), pl = strlen(p);
    int prefix = pl > 0 && p[pl - 1] == '*';

    pl -= (size_t)prefix;
    for (size_t i = 0; i + pl <= tl; i++) {
        if ((i == 0 || text[i - 1] == ' ') && memcmp(text + i, p, pl) == 0 &&
            (prefix || i + pl == tl || text[i + pl] == ' '))
            return 1;
    }
    return 0;
}

/* The '}' of a theme: checks that need the whole block. */
static int lib_theme_close(struct lib_parser *ps)
{
    struct library *l = ps->l;
    struct lib_theme_state *t = &l->themes[ps->theme];

    if (t->end == t->first)
        return lib_fail(ps, "theme '%s' (line %d) has no phrases", lib_themes[ps->theme].name,
                        t->line);
    for (size_t i = t->excl_first; i < l->nexcl; i++) {
        const struct lib_exclusion *e = &l->excl[i];
        size_t k;

        if (e->kind != LIB_EXCLUDE_PHRASE)
            continue;
        for (k = t->first; k < t->end; k++) {
            if (lib_contains_words(e->text, l->phrases[k].text))
                break;
        }
        if (k == t->end) {
            ps->line = (unsigned long)e->line;
            return lib_fail(ps,
                            "exclusion \"%s\" contains no phrase of theme '%s' (an exclusion "
                            "cancels a match of a phrase inside it)",
                            e->text, lib_themes[ps->theme].name);
        }
    }
    ps->theme = -1;
    return 0;
}

static int lib_unknown_statement(struct lib_parser *ps, const char *kw)
{
    int in_theme = ps->theme >= 0;
    const char *const *cands = in_theme ? lib_theme_statements : lib_top_statements;
    size_t n =
        in_theme ? HAVEN_ARRAY_LEN(lib_theme_statements) : HAVEN_ARRAY_LEN(lib_top_statements);
    const char *best = lib_suggest(kw, cands, n);

    if (best)
        return lib_fail(ps, "unknown statement '%.64s' (did you mean '%s'?)", kw, best);
    if (in_theme)
        return lib_fail(ps,
                        "unknown statement '%.64s' in a theme (expected severity, phrase, "
                        "exclude, exclude-site or exclude-group)",
                        kw);
    return lib_fail(ps,
                    "unknown statement '%.64s' (expected language, theme, exclude-site or "
                    "exclude-group)",
                    kw);
}

static int lib_is_statement(const char *kw)
{
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(lib_top_statements); i++) {
        if (strcmp(kw, lib_top_statements[i]) == 0)
            return 1;
    }
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(lib_theme_statements); i++) {
        if (strcmp(kw, lib_theme_statements[i]) == 0)
            return 1;
    }
    return 0;
}

static int lib_statement(struct lib_parser *ps)
{
    const char *kw = ps->tok[0].s;

    if (ps->tok[0].type == LEX_RBRACE) {
        if (ps->ntok != 1)
            return lib_fail(ps, "'}' must be alone on its line");
        if (ps->theme < 0)
            return lib_fail(ps, "'}' without a theme to close");
        return lib_theme_close(ps);
    }
    if (ps->tok[0].type != LEX_WORD)
        return lib_fail(ps, "a line must start with a statement, not '%.64s'", kw);
    if (strcmp(kw, "theme") == 0 && ps->theme >= 0)
        return lib_fail(ps,
                        "'theme' inside theme '%s' (opened at line %d): themes do not nest; "
                        "close it with '}' first",
                        lib_themes[ps->theme].name, ps->l->themes[ps->theme].line);
    for (int i = 0; i < ps->ntok; i++) {
        if (ps->tok[i].type == LEX_RBRACE)
            return lib_fail(ps, "'}' must be alone on its line (one statement per line)");
    }
    for (int i = 0; i < ps->ntok; i++) {
        if (ps->tok[i].type == LEX_LBRACE && (strcmp(kw, "theme") != 0 || i != ps->ntok - 1))
            return lib_fail(ps, "unexpected '{' (only 'theme NAME {' opens a block)");
    }
    if (!ps->lang_line && strcmp(kw, "language") != 0) {
        if (!lib_is_statement(kw))
            return lib_unknown_statement(ps, kw);
        return lib_fail(ps, "the library must start with 'language CODE' (for example "
                            "'language en')");
    }
    if (strcmp(kw, "language") == 0) {
        if (ps->theme >= 0)
            return lib_fail(ps, "'language' belongs at the top of the file, not in a theme");
        return lib_language(ps);
    }
    if (strcmp(kw, "theme") == 0)
        return lib_theme_open(ps);
    if (strcmp(kw, "exclude-site") == 0)
        return lib_exclude_site(ps);
    if (strcmp(kw, "exclude-group") == 0)
        return lib_exclude_group(ps);
    if (strcmp(kw, "phrase") == 0 || strcmp(kw, "severity") == 0 || strcmp(kw, "exclude") == 0) {
        if (ps->theme < 0)
            return lib_fail(ps, "'%s' must be inside a theme block: theme NAME { ... }", kw);
        if (kw[0] == 'p')
            return lib_phrase_line(ps);
        if (kw[0] == 's')
            return lib_severity(ps);
        return lib_exclude_phrase(ps);
    }
    return lib_unknown_statement(ps, kw);
}

static int lib_parse(struct lib_parser *ps, const char *text, size_t len)
{
    char line[LIB_LINE_MAX + 1];
    size_t pos = 0;

    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

        ps->line++;
        if (n > 0 && text[pos + n - 1] == '\r')
            n--;
        if (n > LIB_LINE_MAX)
            return lib_fail(ps, "line too long (the limit is %d bytes)", LIB_LINE_MAX);
        if (memchr(text + pos, '\0', n))
            return lib_fail(ps, "NUL byte in the file");
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos = nl ? (size_t)(nl - text) + 1 : len;
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
                return lib_fail(ps, "control character in the line");
        }
        char why[128];
        ps->ntok = lex_line(line, ps->tok, LIB_MAX_TOKENS, why, sizeof(why));
        if (ps->ntok < 0)
            return lib_fail(ps, "%s", why);
        if (ps->ntok == 0)
            continue;
        if (lib_statement(ps) < 0)
            return -1;
    }
    if (ps->theme >= 0) {
        ps->line = (unsigned long)ps->l->themes[ps->theme].line;
        return lib_fail(ps, "theme '%s' opened here is never closed (a '}' is missing)",
                        lib_themes[ps->theme].name);
    }
    if (!ps->lang_line) {
        ps->line = 1;
        return lib_fail(ps, "the library is empty: it needs 'language CODE' and a theme");
    }
    if (ps->l->nphrases == 0) {
        return lib_fail(ps, "the library has no phrases (write them in theme blocks)");
    }
    return 0;
}

/* Point the phrases at their contexts and the contexts at their words. */
static void lib_finish(struct library *l)
{
    size_t c = 0, w = 0;

    for (size_t i = 0; i < l->nphrases; i++) {
        struct lib_phrase *p = &l->phrases[i];
        p->ctx = p->nctx > 0 ? &l->ctxs[c] : NULL;
        c += (size_t)p->nctx;
    }
    for (size_t i = 0; i < l->nctxs; i++) {
        l->ctxs[i].words = &l->words[w];
        w += (size_t)l->ctxs[i].nwords;
    }
}

/* ---------------------------------------------------------------- API */

struct library *library_load_buffer(const char *name, const char *text, size_t len, char *err,
                                    size_t errlen)
{
    struct library *l = xcalloc(1, sizeof(*l));
    struct lib_parser ps;

    l->name = xstrdup(name);
    memset(&ps, 0, sizeof(ps));
    ps.l = l;
    ps.file = name;
    ps.err = err;
    ps.errlen = errlen;
    ps.theme = -1;
    if (lib_parse(&ps, text, len) < 0)
        goto fail;
    lib_finish(l);
    return l;
fail:
    library_free(l);
    return NULL;
}

struct library *library_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    struct library *l = NULL;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    do {
        text = xgrow(text, &cap, len + 65536, 1);
        n = fread(text + len, 1, cap - len, f);
        len += n;
    } while (n > 0 && len <= LIB_MAX_FILE);
    if (ferror(f))
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
    else if (len > LIB_MAX_FILE)
        snprintf(err, errlen, "%s: file larger than 16 MiB", path);
    else
        l = library_load_buffer(path, text, len, err, errlen);
    fclose(f);
    free(text);
    return l;
}

void library_free(struct library *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->nstrs; i++)
        free(l->strs[i]);
    free(l->strs);
    free(l->phrases);
    free(l->ctxs);
    free(l->words);
    free(l->excl);
    free(l->name);
    free(l);
}

const char *library_name(const struct library *l)
{
    return l->name;
}

const char *library_language(const struct library *l)
{
    return l->lang;
}

size_t library_count(const struct library *l)
{
    return l->nphrases;
}

const struct lib_phrase *library_phrase(const struct library *l, size_t i)
{
    return &l->phrases[i];
}

size_t library_exclusion_count(const struct library *l)
{
    return l->nexcl;
}

const struct lib_exclusion *library_exclusion(const struct library *l, size_t i)
{
    return &l->excl[i];
}

int library_has_theme(const struct library *l, int theme)
{
    return theme >= 0 && theme < LIB_NTHEMES && l->themes[theme].defined;
}

int library_theme_count(void)
{
    return LIB_NTHEMES;
}

const char *library_theme_name(int theme)
{
    return lib_themes[theme].name;
}

const char *library_theme_4c(int theme)
{
    return lib_themes[theme].risk;
}

int library_theme_find(const char *name)
{
    for (int i = 0; i < LIB_NTHEMES; i++) {
        if (strcmp(lib_themes[i].name, name) == 0)
            return i;
    }
    return -1;
}

int library_language_known(const char *code)
{
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(lib_langs); i++) {
        if (strcmp(lib_langs[i].code, code) == 0)
            return 1;
    }
    return 0;
}
