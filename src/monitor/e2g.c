/*
 * e2g.c -- import E2Guardian weighted phrase lists (see e2g.h for the mapping).
 *
 * DESIGN. Each list is decoded to UTF-8 first (Latin-1 when it is not valid
 * UTF-8, or as the user says), then read line by line as E2Guardian reads it:
 * the line is trimmed; "<" starts a phrase line, ".Include<" an include,
 * "#listcategory:" names the list, any other '#' line is a comment. A phrase
 * line is parsed into slices of the decoded text: one or more "<phrase>"
 * joined by ',' then "<weight>". Phrases are turned into the library's own
 * form here -- lower-cased with utf8proc_tolower exactly as library.c does,
 * single spaces, a final '*' for a prefix -- so that the merge key is the
 * loader's duplicate key and the output never holds a phrase twice. Every
 * phrase and context word is also passed through the matcher's normaliser:
 * one with no letters or digits ("<$>") would load but not compile, so it is
 * dropped and counted here instead.
 *
 * Phrases live in an array in first-seen order with an open-addressing index;
 * combinations hang their context words (with the severity they aim for) on
 * their anchor phrase. The context deltas are worked out only at render time,
 * when the anchor's own severity is final.
 */
#include "common/compat.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>

#include <utf8proc.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/slice.h"
#include "common/xalloc.h"
#include "monitor/e2g.h"
#include "monitor/library.h"
#include "monitor/normalize.h"

#define E2G_LINE_MAX 4096 /* bytes of one decoded list line */
#define E2G_TEXT_BUF (LIB_PHRASE_MAX + 8)
#define E2G_NORM_MAX 1000  /* the matcher's limit on a normalised phrase is 1024 */
#define E2G_OUT_LINE 3800  /* bytes of one phrase line written (the loader takes 4096) */
#define E2G_OUT_TOKENS 100 /* tokens of one phrase line written (the loader takes 128) */
#define E2G_GOOD_KEPT 5000 /* good phrases listed in the header */
#define E2G_SHOW 160       /* bytes of a list line quoted in a message or comment */

/* ---------------------------------------------------------------- state */

struct e2g_ctxword {
    char *word;
    int target; /* the severity the combination aims for */
};

struct e2g_phrase {
    char *text;   /* the library form: lower-cased, single spaces, maybe a final '*' */
    int severity; /* as a phrase on its own, 1-4; 0: only an anchor of combinations */
    unsigned hash;
    struct e2g_ctxword *ctx;
    size_t nctx, ctx_cap;
};

struct e2g_source {
    char *path;     /* as opened (cleaned for a comment) */
    char *from;     /* "FILE:LINE" of the .Include, or NULL */
    char *category; /* from #listcategory, or NULL */
    int latin1;
};

struct e2g {
    struct e2g_options o;
    char lang[4];
    struct e2g_phrase *ph;
    size_t nph, ph_cap;
    size_t *slots; /* index + 1 into ph; 0: empty */
    size_t nslots;
    char **warn;
    size_t nwarn, nwarn_kept;
    char **good; /* "FILE:LINE: <line>" of the good phrases dropped */
    size_t ngood_kept;
    struct e2g_source *src;
    size_t nsrc, src_cap;
    char *stack[E2G_INCLUDE_DEPTH + 1]; /* real paths of the files being read */
    int depth;
    struct e2g_stats st;
};

/* Where the reader is: one per file being read. */
struct e2g_file {
    const char *name;
    unsigned long line;
    int depth;
    size_t src; /* its e->src entry */
};

enum e2g_form { E2G_FORM_WORD, E2G_FORM_PREFIX, E2G_FORM_WHOLE };
enum e2g_text_result { E2G_TEXT_OK, E2G_TEXT_TOO_LONG, E2G_TEXT_NO_LETTERS };

/* ---------------------------------------------------------------- text helpers */

/* Is s[0..n) valid UTF-8? */
static int e2g_valid_utf8(const char *s, size_t n)
{
    size_t pos = 0;

    while (pos < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k;

        if ((unsigned char)s[pos] < 0x80) {
            pos++;
            continue;
        }
        k = utf8proc_iterate((const utf8proc_uint8_t *)s + pos, (utf8proc_ssize_t)(n - pos), &cp);
        if (k < 0)
            return 0;
        pos += (size_t)k;
    }
    return 1;
}

/*
 * Copy s[0..n) into out (size bytes) for a message or a comment: control
 * characters become '?', invalid UTF-8 bytes '?', and a long text is cut at a
 * character boundary with "...".
 */
static void e2g_clean(const char *s, size_t n, char *out, size_t size)
{
    size_t pos = 0, o = 0;

    while (pos < n) {
        unsigned char c = (unsigned char)s[pos];
        size_t k = 1;
        int bad = c < 0x20 || c == 0x7f;

        if (c >= 0x80) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t v = utf8proc_iterate((const utf8proc_uint8_t *)s + pos,
                                                  (utf8proc_ssize_t)(n - pos), &cp);
            if (v < 0) {
                bad = 1;
            } else {
                k = (size_t)v;
                bad = cp < 0xa0; /* C1 controls */
            }
        }
        if (o + (bad ? 1 : k) + 4 >= size) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (bad) {
            out[o++] = '?';
        } else {
            memcpy(out + o, s + pos, k);
            o += k;
        }
        pos += k;
    }
    out[o] = '\0';
}

/* Windows-1252 for 0x80-0x9F (the WHATWG reading of "latin1"); the rest of Latin-1 is U+00xx. */
static const uint16_t e2g_cp1252[32] = {
    0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008d, 0x017d, 0x008f, 0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
    0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
};

/* Latin-1 text[0..len) as UTF-8: a new buffer the caller frees, its length in *outlen. */
static char *e2g_from_latin1(const char *text, size_t len, size_t *outlen)
{
    char *out = xmalloc(len * 3 + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        utf8proc_int32_t cp = c;

        if (c >= 0x80 && c < 0xa0)
            cp = e2g_cp1252[c - 0x80];
        o += (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)out + o);
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/* Is cp a separator inside a phrase: whitespace, a control character, or '*'? */
static int e2g_is_space(utf8proc_int32_t cp)
{
    utf8proc_category_t cat;

    if (cp == ' ' || cp == '\t' || cp == '*' || cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
        return 1;
    cat = utf8proc_category(cp);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
           cat == UTF8PROC_CATEGORY_ZP;
}

/* Does text (no '*') keep letters or digits once normalised, more than one character and
 * within the matcher's limit? */
static enum e2g_text_result e2g_matchable(const char *text, size_t len)
{
    struct norm n;
    enum e2g_text_result r = E2G_TEXT_OK;

    if (norm_text(text, len, 0, &n) < 0)
        return E2G_TEXT_TOO_LONG; /* out of memory: do not keep it */
    /* " x ": nothing, or one character alone ("xxx" is "x"), which the matcher refuses */
    unsigned char c0 = n.len > 1 ? (unsigned char)n.text[1] : 0;
    size_t one = c0 < 0x80 ? 1 : c0 < 0xe0 ? 2 : c0 < 0xf0 ? 3 : 4;
    if (n.len < 3 || n.len - 2 <= one)
        r = E2G_TEXT_NO_LETTERS;
    else if (n.len >= E2G_NORM_MAX)
        r = E2G_TEXT_TOO_LONG;
    norm_free(&n);
    return r;
}

/*
 * The library form of the E2Guardian phrase p (the text between '<' and '>')
 * into out (E2G_TEXT_BUF bytes). A space at either end of p is a word
 * boundary; without the one at the end the phrase matched inside words and
 * becomes a prefix when its last word allows one. *form says which.
 */
static enum e2g_text_result e2g_text(struct slice p, char *out, int *nwords, enum e2g_form *form)
{
    const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)p.p;
    size_t pos = 0, o = 0, last_word = 0;
    int words = 0, in_word = 0, lead = 0, trail = 0, first = 1;
    utf8proc_int32_t cp = 0;

    while (pos < p.len) {
        utf8proc_uint8_t enc[4];
        utf8proc_ssize_t n = utf8proc_iterate(s + pos, (utf8proc_ssize_t)(p.len - pos), &cp);
        utf8proc_ssize_t k;

        if (n < 0) {
            cp = 0xfffd;
            n = 1;
        }
        pos += (size_t)n;
        if (e2g_is_space(cp)) {
            if (first)
                lead = 1;
            trail = 1;
            in_word = 0;
            first = 0;
            continue;
        }
        first = 0;
        trail = 0;
        k = utf8proc_encode_char(utf8proc_tolower(cp), enc);
        if (o + (in_word ? 0 : 1) + (size_t)k > LIB_PHRASE_MAX)
            return E2G_TEXT_TOO_LONG;
        if (!in_word) {
            if (words > 0)
                out[o++] = ' ';
            last_word = o;
            words++;
            in_word = 1;
        }
        memcpy(out + o, enc, (size_t)k);
        o += (size_t)k;
    }
    out[o] = '\0';
    *nwords = words;
    if (words == 0)
        return E2G_TEXT_NO_LETTERS;
    if (words > LIB_PHRASE_WORDS)
        return E2G_TEXT_TOO_LONG;
    {
        enum e2g_text_result r = e2g_matchable(out, o);
        if (r != E2G_TEXT_OK)
            return r;
    }
    if (trail) {
        *form = lead ? E2G_FORM_WORD : E2G_FORM_WHOLE;
        return E2G_TEXT_OK;
    }
    if (o - last_word >= 3 && o + 1 <= LIB_PHRASE_MAX) {
        out[o++] = '*';
        out[o] = '\0';
        *form = E2G_FORM_PREFIX;
        return E2G_TEXT_OK;
    }
    *form = E2G_FORM_WHOLE;
    return E2G_TEXT_OK;
}

/* ---------------------------------------------------------------- messages */

static void e2g_warn(struct e2g *e, const struct e2g_file *f, const char *fmt, ...)
    HAVEN_PRINTF(3, 4);

static void e2g_warn(struct e2g *e, const struct e2g_file *f, const char *fmt, ...)
{
    char msg[512], name[256];
    struct buf b;
    va_list ap;

    e->nwarn++;
    if (e->nwarn_kept >= E2G_WARNINGS_KEPT)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e2g_clean(f->name, strlen(f->name), name, sizeof(name));
    buf_init(&b, 1024);
    buf_printf(&b, "%s:%lu: %s", name, f->line, msg);
    e->warn = xrealloc(e->warn, (e->nwarn_kept + 1) * sizeof(*e->warn));
    e->warn[e->nwarn_kept++] = b.p ? b.p : xstrdup("");
}

static int e2g_fail(char *err, size_t errlen, const struct e2g_file *f, const char *fmt, ...)
    HAVEN_PRINTF(4, 5);

static int e2g_fail(char *err, size_t errlen, const struct e2g_file *f, const char *fmt, ...)
{
    char msg[768], name[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e2g_clean(f->name, strlen(f->name), name, sizeof(name));
    if (f->line > 0)
        snprintf(err, errlen, "%s:%lu: %s", name, f->line, msg);
    else
        snprintf(err, errlen, "%s: %s", name, msg);
    return -1;
}

/* ---------------------------------------------------------------- phrases */

static unsigned e2g_hash(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void e2g_index(struct e2g *e, size_t i)
{
    size_t mask = e->nslots - 1, k = e->ph[i].hash & mask;

    while (e->slots[k])
        k = (k + 1) & mask;
    e->slots[k] = i + 1;
}

/* The phrase text, added with severity 0 when new; NULL when the import is full. */
static struct e2g_phrase *e2g_phrase_get(struct e2g *e, const char *text, int *is_new)
{
    unsigned h = e2g_hash(text);
    struct e2g_phrase *p;

    *is_new = 0;
    if (e->nslots) {
        size_t mask = e->nslots - 1;
        for (size_t k = h & mask; e->slots[k]; k = (k + 1) & mask) {
            p = &e->ph[e->slots[k] - 1];
            if (p->hash == h && strcmp(p->text, text) == 0)
                return p;
        }
    }
    if (e->nph >= E2G_MAX_PHRASES)
        return NULL;
    if ((e->nph + 1) * 2 > e->nslots) {
        free(e->slots);
        e->nslots = e->nslots ? e->nslots * 2 : 1024;
        e->slots = xcalloc(e->nslots, sizeof(*e->slots));
        for (size_t i = 0; i < e->nph; i++)
            e2g_index(e, i);
    }
    e->ph = xgrow(e->ph, &e->ph_cap, e->nph + 1, sizeof(*e->ph));
    p = &e->ph[e->nph];
    memset(p, 0, sizeof(*p));
    p->text = xstrdup(text);
    p->hash = h;
    e2g_index(e, e->nph);
    e->nph++;
    *is_new = 1;
    return p;
}

/* Count what became of an in-word phrase. */
static void e2g_count_form(struct e2g *e, enum e2g_form form)
{
    if (form == E2G_FORM_PREFIX)
        e->st.prefix++;
    else if (form == E2G_FORM_WHOLE)
        e->st.whole++;
}

static int e2g_full(char *err, size_t errlen, const struct e2g_file *f)
{
    return e2g_fail(err, errlen, f,
                    "more than %d phrases: split the lists and import them "
                    "as several libraries",
                    E2G_MAX_PHRASES);
}

static int e2g_add_single(struct e2g *e, const struct e2g_file *f, const char *text,
                          enum e2g_form form, long weight, char *err, size_t errlen)
{
    int sev = e2g_severity(weight), is_new;
    struct e2g_phrase *p = e2g_phrase_get(e, text, &is_new);

    if (!p)
        return e2g_full(err, errlen, f);
    e2g_count_form(e, form);
    if (p->severity > 0)
        e->st.merged++;
    if (sev > p->severity)
        p->severity = sev;
    return 0;
}

static int e2g_add_combo(struct e2g *e, const struct e2g_file *f, const char *anchor,
                         enum e2g_form aform, const char *word, enum e2g_form wform, long weight,
                         char *err, size_t errlen)
{
    int target = e2g_severity(weight), is_new;
    struct e2g_phrase *p;

    if (target <= 1) {
        e->st.combo_weak++;
        return 0;
    }
    p = e2g_phrase_get(e, anchor, &is_new);
    if (!p)
        return e2g_full(err, errlen, f);
    e2g_count_form(e, aform);
    e2g_count_form(e, wform);
    e->st.combos++;
    for (size_t i = 0; i < p->nctx; i++) {
        if (strcmp(p->ctx[i].word, word) == 0) {
            e->st.merged++;
            if (target > p->ctx[i].target)
                p->ctx[i].target = target;
            return 0;
        }
    }
    p->ctx = xgrow(p->ctx, &p->ctx_cap, p->nctx + 1, sizeof(*p->ctx));
    p->ctx[p->nctx].word = xstrdup(word);
    p->ctx[p->nctx].target = target;
    p->nctx++;
    return 0;
}

/* ---------------------------------------------------------------- lines */

#define E2G_MAX_PARTS 2 /* parts kept; more are counted */

/* Count a phrase that could not be imported. */
static void e2g_count_text(struct e2g *e, enum e2g_text_result r)
{
    if (r == E2G_TEXT_TOO_LONG)
        e->st.too_long++;
    else if (r == E2G_TEXT_NO_LETTERS)
        e->st.no_letters++;
}

/*
 * The weight between '<' and '>': [+-]DIGITS[%]. 0 with *w set, or -1 with why
 * set.
 */
static int e2g_weight(struct slice s, long *w, const char **why)
{
    size_t i = 0;
    int neg = 0, digits = 0;
    long v = 0;

    s = slice_trim(s);
    if (i < s.len && (s.p[i] == '+' || s.p[i] == '-')) {
        neg = s.p[i] == '-';
        i++;
    }
    while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9') {
        if (v > E2G_WEIGHT_MAX) {
            *why = "out of range";
            return -1;
        }
        v = v * 10 + (s.p[i] - '0');
        digits++;
        i++;
    }
    if (i < s.len && s.p[i] == '%')
        i++; /* N% of a naughtiness limit of 100 is N */
    if (digits == 0 || i != s.len) {
        *why = "not a whole number";
        return -1;
    }
    if (v > E2G_WEIGHT_MAX) {
        *why = "out of range";
        return -1;
    }
    *w = neg ? -v : v;
    return 0;
}

static void e2g_good(struct e2g *e, const struct e2g_file *f, struct slice line)
{
    char name[256], shown[E2G_SHOW + 8];
    struct buf b;

    e->st.good++;
    if (e->ngood_kept >= E2G_GOOD_KEPT)
        return;
    e2g_clean(f->name, strlen(f->name), name, sizeof(name));
    e2g_clean(line.p, line.len, shown, sizeof(shown));
    buf_init(&b, 1024);
    buf_printf(&b, "%s:%lu: %s", name, f->line, shown);
    e->good = xrealloc(e->good, (e->ngood_kept + 1) * sizeof(*e->good));
    e->good[e->ngood_kept++] = b.p ? b.p : xstrdup("");
}

/* A line starting with '<'. Returns 0 (imported, counted or warned about) or -1 (fatal). */
static int e2g_phrase_line(struct e2g *e, const struct e2g_file *f, struct slice line, char *err,
                           size_t errlen)
{
    struct slice parts[E2G_MAX_PARTS], wslice;
    char text[2][E2G_TEXT_BUF];
    enum e2g_form form[2];
    enum e2g_text_result r[2];
    int nwords[2] = {0, 0};
    size_t pos = 0, nparts = 0;
    const char *why, *gt;
    long weight;

    for (;;) {
        struct slice part;

        if (pos >= line.len || line.p[pos] != '<') {
            e->st.malformed++;
            e2g_warn(e, f, "expected '<' after ',' (write <phrase>,<phrase><weight>)");
            return 0;
        }
        gt = memchr(line.p + pos + 1, '>', line.len - pos - 1);
        if (!gt) {
            e->st.malformed++;
            e2g_warn(e, f, "unterminated '<' (a phrase ends with '>')");
            return 0;
        }
        part = slice_make(line.p + pos + 1, (size_t)(gt - (line.p + pos + 1)));
        if (nparts < E2G_MAX_PARTS)
            parts[nparts] = part;
        nparts++;
        pos = (size_t)(gt - line.p) + 1;
        while (pos < line.len && (line.p[pos] == ' ' || line.p[pos] == '\t'))
            pos++;
        if (pos < line.len && line.p[pos] == ',') {
            pos++;
            while (pos < line.len && (line.p[pos] == ' ' || line.p[pos] == '\t'))
                pos++;
            continue;
        }
        break;
    }
    if ((pos >= line.len || line.p[pos] != '<') && nparts <= E2G_MAX_PARTS &&
        memchr(parts[nparts - 1].p, '<', parts[nparts - 1].len)) {
        char shown[64];
        e2g_clean(parts[nparts - 1].p, parts[nparts - 1].len, shown, sizeof(shown));
        e->st.malformed++;
        e2g_warn(e, f, "'<' inside the phrase '%s' (is a '>' missing?)", shown);
        return 0;
    }
    if (pos >= line.len || line.p[pos] != '<') {
        e->st.malformed++;
        e2g_warn(e, f, "no weight (write <phrase><weight>, e.g. < ganja ><40>)");
        return 0;
    }
    gt = memchr(line.p + pos + 1, '>', line.len - pos - 1);
    if (!gt) {
        e->st.malformed++;
        e2g_warn(e, f, "unterminated '<' in the weight");
        return 0;
    }
    wslice = slice_make(line.p + pos + 1, (size_t)(gt - (line.p + pos + 1)));
    pos = (size_t)(gt - line.p) + 1;
    if (e2g_weight(wslice, &weight, &why) < 0) {
        char shown[64];
        e2g_clean(wslice.p, wslice.len, shown, sizeof(shown));
        e->st.malformed++;
        e2g_warn(e, f, "bad weight '%s': %s (write a whole number such as 40 or -25)", shown, why);
        return 0;
    }
    /* E2Guardian ignores what follows the weight; lists use it for "# comments". */
    while (pos < line.len && (unsigned char)line.p[pos] <= ' ')
        pos++;
    if (pos < line.len && line.p[pos] != '#') {
        char shown[64];
        e2g_clean(line.p + pos, line.len - pos, shown, sizeof(shown));
        e2g_warn(e, f, "'%s' after the weight ignored (start a comment with '#')", shown);
    }
    for (size_t i = 0; i < nparts && i < E2G_MAX_PARTS; i++) {
        if (slice_trim(parts[i]).len == 0) {
            e->st.malformed++;
            e2g_warn(e, f, "empty phrase '<>'");
            return 0;
        }
    }
    for (size_t i = 0; i < nparts && i < E2G_MAX_PARTS; i++) {
        if (memchr(parts[i].p, '<', parts[i].len)) {
            char shown[64];
            e2g_clean(parts[i].p, parts[i].len, shown, sizeof(shown));
            e->st.malformed++;
            e2g_warn(e, f, "'<' inside the phrase '%s' (is a '>' missing?)", shown);
            return 0;
        }
    }
    if (weight == 0) {
        e->st.zero++;
        e2g_warn(e, f, "weight 0 adds nothing; line skipped");
        return 0;
    }
    if (weight < 0) {
        e2g_good(e, f, line);
        return 0;
    }
    if (nparts > 2) {
        e->st.combo_many++;
        return 0;
    }
    for (size_t i = 0; i < nparts; i++)
        r[i] = e2g_text(parts[i], text[i], &nwords[i], &form[i]);
    if (nparts == 1) {
        if (r[0] != E2G_TEXT_OK) {
            e2g_count_text(e, r[0]);
            return 0;
        }
        return e2g_add_single(e, f, text[0], form[0], weight, err, errlen);
    }
    if (r[0] != E2G_TEXT_OK || r[1] != E2G_TEXT_OK) {
        e2g_count_text(e, r[0] != E2G_TEXT_OK ? r[0] : r[1]);
        return 0;
    }
    if (nwords[1] == 1)
        return e2g_add_combo(e, f, text[0], form[0], text[1], form[1], weight, err, errlen);
    if (nwords[0] == 1)
        return e2g_add_combo(e, f, text[1], form[1], text[0], form[0], weight, err, errlen);
    e->st.combo_words++;
    return 0;
}

static int e2g_read(struct e2g *e, const char *name, const char *text, size_t len, int depth,
                    const char *from, char *err, size_t errlen);

/* Does s start with prefix, ignoring ASCII case? */
static int e2g_starts(struct slice s, const char *prefix)
{
    size_t n = strlen(prefix);

    if (s.len < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s.p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != prefix[i])
            return 0;
    }
    return 1;
}

/* The name used to detect include loops: the real path, or the name as given. */
static char *e2g_real(const char *name)
{
    char *r = realpath(name, NULL);
    char *copy;

    if (!r)
        return xstrdup(name);
    copy = xstrdup(r);
    free(r);
    return copy;
}

static char *e2g_slurp(const char *path, size_t *len, char *why, size_t whylen)
{
    FILE *fp = fopen(path, "rb");
    char *text = NULL;
    size_t cap = 0, n;

    *len = 0;
    if (!fp) {
        snprintf(why, whylen, "%s", strerror(errno));
        return NULL;
    }
    do {
        text = xgrow(text, &cap, *len + 65536, 1);
        n = fread(text + *len, 1, cap - *len, fp);
        *len += n;
    } while (n > 0 && *len <= E2G_FILE_MAX);
    if (ferror(fp)) {
        snprintf(why, whylen, "read error: %s", strerror(errno));
        free(text);
        text = NULL;
    } else if (*len > E2G_FILE_MAX) {
        snprintf(why, whylen, "larger than %d MiB", E2G_FILE_MAX / (1024 * 1024));
        free(text);
        text = NULL;
    }
    fclose(fp);
    return text;
}

/* ".Include<PATH>": read PATH (relative to the including file) in place. */
static int e2g_include(struct e2g *e, const struct e2g_file *f, struct slice line, char *err,
                       size_t errlen)
{
    struct slice p = slice_make(line.p + 9, line.len - 9);
    const char *gt = memchr(p.p, '>', p.len);
    const char *slash = strrchr(f->name, '/');
    char path[PATH_MAX], why[256], from[300], name[256];
    char *text, *real;
    size_t len;
    int rc;

    if (!gt) {
        e->st.malformed++;
        e2g_warn(e, f, "unterminated '<' in .Include (write .Include</path/to/list>)");
        return 0;
    }
    p.len = (size_t)(gt - p.p);
    p = slice_trim(p);
    if (p.len == 0) {
        e->st.malformed++;
        e2g_warn(e, f, ".Include<> names no file");
        return 0;
    }
    if (e->o.no_includes) {
        e->st.malformed++;
        e2g_warn(e, f, ".Include skipped (includes are off)");
        return 0;
    }
    if (memchr(p.p, '\0', p.len))
        return e2g_fail(err, errlen, f, ".Include path holds a NUL byte");
    if (p.p[0] == '/' || !slash)
        rc = snprintf(path, sizeof(path), "%.*s", (int)p.len, p.p);
    else
        rc = snprintf(path, sizeof(path), "%.*s/%.*s", (int)(slash - f->name), f->name, (int)p.len,
                      p.p);
    if (rc < 0 || (size_t)rc >= sizeof(path))
        return e2g_fail(err, errlen, f, ".Include path is too long");
    if (f->depth + 1 > E2G_INCLUDE_DEPTH)
        return e2g_fail(err, errlen, f, ".Include<%s> nests more than %d deep (is there a loop?)",
                        path, E2G_INCLUDE_DEPTH);
    real = e2g_real(path);
    for (int i = 0; i < e->depth; i++) {
        if (strcmp(e->stack[i], real) == 0) {
            free(real);
            return e2g_fail(err, errlen, f,
                            ".Include<%s> makes a loop: that file is already being read", path);
        }
    }
    free(real);
    text = e2g_slurp(path, &len, why, sizeof(why));
    if (!text)
        return e2g_fail(err, errlen, f, "cannot read included file %s: %s", path, why);
    e2g_clean(f->name, strlen(f->name), name, sizeof(name));
    snprintf(from, sizeof(from), "%s:%lu", name, f->line);
    rc = e2g_read(e, path, text, len, f->depth + 1, from, err, errlen);
    free(text);
    return rc;
}

static void e2g_category(struct e2g *e, const struct e2g_file *f, struct slice line)
{
    const char *q1 = memchr(line.p, '"', line.len), *q2;
    char cat[128];

    if (!q1) {
        e2g_warn(e, f, "#listcategory without a \"quoted name\"");
        return;
    }
    q2 = memchr(q1 + 1, '"', line.len - (size_t)(q1 + 1 - line.p));
    if (!q2) {
        e2g_warn(e, f, "#listcategory name has no closing '\"'");
        return;
    }
    e2g_clean(q1 + 1, (size_t)(q2 - q1 - 1), cat, sizeof(cat));
    free(e->src[f->src].category);
    e->src[f->src].category = xstrdup(cat);
}

static int e2g_line(struct e2g *e, struct e2g_file *f, struct slice line, char *err, size_t errlen)
{
    struct slice t = slice_trim(line);

    if (t.len == 0)
        return 0;
    if (t.len > E2G_LINE_MAX) {
        e->st.malformed++;
        e2g_warn(e, f, "line too long (the limit is %d bytes); skipped", E2G_LINE_MAX);
        return 0;
    }
    if (e->o.encoding == E2G_ENC_UTF8 && !e2g_valid_utf8(t.p, t.len)) {
        e->st.malformed++;
        e2g_warn(e, f, "not valid UTF-8 (try --encoding latin1); skipped");
        return 0;
    }
    if (t.p[0] == '<')
        return e2g_phrase_line(e, f, t, err, errlen);
    if (e2g_starts(t, ".include<"))
        return e2g_include(e, f, t, err, errlen);
    if (e2g_starts(t, "#listcategory:")) {
        e2g_category(e, f, t);
        return 0;
    }
    if (t.p[0] == '#')
        return 0;
    {
        char shown[64];
        e2g_clean(t.p, t.len, shown, sizeof(shown));
        e->st.malformed++;
        e2g_warn(e, f, "'%s' is not a phrase line (write <phrase><weight>); skipped", shown);
    }
    return 0;
}

static int e2g_read(struct e2g *e, const char *name, const char *text, size_t len, int depth,
                    const char *from, char *err, size_t errlen)
{
    struct e2g_file f = {name, 0, depth, 0};
    struct e2g_source *s;
    char *decoded = NULL, *real = e2g_real(name), clean[256];
    const char *p = text;
    size_t n = len, pos = 0;
    int rc = -1, latin1 = 0;

    e->stack[e->depth++] = real;
    e->st.files++;
    if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
        p += 3;
        n -= 3;
    }
    if (e->o.encoding == E2G_ENC_LATIN1 ||
        (e->o.encoding == E2G_ENC_AUTO && !e2g_valid_utf8(p, n))) {
        decoded = e2g_from_latin1(p, n, &n);
        p = decoded;
        latin1 = 1;
        e->st.latin1++;
    }
    e->src = xgrow(e->src, &e->src_cap, e->nsrc + 1, sizeof(*e->src));
    s = &e->src[e->nsrc];
    memset(s, 0, sizeof(*s));
    e2g_clean(name, strlen(name), clean, sizeof(clean));
    s->path = xstrdup(clean);
    s->from = from ? xstrdup(from) : NULL;
    s->latin1 = latin1;
    f.src = e->nsrc++;
    while (pos < n) {
        const char *nl = memchr(p + pos, '\n', n - pos);
        size_t k = nl ? (size_t)(nl - (p + pos)) : n - pos;

        f.line++;
        if (e2g_line(e, &f, slice_make(p + pos, k), err, errlen) < 0)
            goto out;
        pos += k + 1;
    }
    rc = 0;
out:
    e->depth--;
    free(e->stack[e->depth]);
    e->stack[e->depth] = NULL;
    free(decoded);
    return rc;
}

/* ---------------------------------------------------------------- API */

int e2g_severity(long weight)
{
    if (weight >= 100)
        return 4;
    if (weight >= 50)
        return 3;
    if (weight >= 20)
        return 2;
    return 1;
}

struct e2g *e2g_create(const struct e2g_options *o)
{
    struct e2g *e = xcalloc(1, sizeof(*e));

    e->o = *o;
    snprintf(e->lang, sizeof(e->lang), "%s", o->language ? o->language : "en");
    e->o.language = e->lang;
    return e;
}

void e2g_destroy(struct e2g *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nph; i++) {
        for (size_t k = 0; k < e->ph[i].nctx; k++)
            free(e->ph[i].ctx[k].word);
        free(e->ph[i].ctx);
        free(e->ph[i].text);
    }
    free(e->ph);
    free(e->slots);
    for (size_t i = 0; i < e->nwarn_kept; i++)
        free(e->warn[i]);
    free(e->warn);
    for (size_t i = 0; i < e->ngood_kept; i++)
        free(e->good[i]);
    free(e->good);
    for (size_t i = 0; i < e->nsrc; i++) {
        free(e->src[i].path);
        free(e->src[i].from);
        free(e->src[i].category);
    }
    free(e->src);
    for (int i = 0; i < e->depth; i++)
        free(e->stack[i]);
    free(e);
}

int e2g_add_buffer(struct e2g *e, const char *name, const char *text, size_t len, char *err,
                   size_t errlen)
{
    if (len > E2G_FILE_MAX) {
        struct e2g_file f = {name, 0, 0, 0};
        return e2g_fail(err, errlen, &f, "larger than %d MiB", E2G_FILE_MAX / (1024 * 1024));
    }
    return e2g_read(e, name, text, len, 0, NULL, err, errlen);
}

int e2g_add_file(struct e2g *e, const char *path, char *err, size_t errlen)
{
    struct e2g_file f = {path, 0, 0, 0};
    char why[256];
    size_t len;
    char *text = e2g_slurp(path, &len, why, sizeof(why));
    int rc;

    if (!text)
        return e2g_fail(err, errlen, &f, "cannot read: %s", why);
    rc = e2g_read(e, path, text, len, 0, NULL, err, errlen);
    free(text);
    return rc;
}

size_t e2g_warning_count(const struct e2g *e)
{
    return e->nwarn;
}

const char *e2g_warning(const struct e2g *e, size_t i)
{
    return i < e->nwarn_kept ? e->warn[i] : NULL;
}

const struct e2g_stats *e2g_stats(const struct e2g *e)
{
    return &e->st;
}

/* ---------------------------------------------------------------- output */

/* Append s as a quoted library string. */
static void e2g_quote(struct buf *b, const char *s)
{
    buf_append(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_append(b, "\\", 1);
        buf_append(b, s, 1);
    }
    buf_append(b, "\"", 1);
}

/* One "phrase" line; counts the context words that do not fit or add nothing. */
static void e2g_render_phrase(struct e2g *e, struct buf *b, const struct e2g_phrase *p)
{
    int base = p->severity > 0 ? p->severity : 1, tokens = 3;
    size_t start = b->len;

    buf_append_str(b, "    phrase ");
    e2g_quote(b, p->text);
    buf_printf(b, " %d", base);
    for (size_t i = 0; i < p->nctx; i++) {
        if (p->ctx[i].target <= base)
            e->st.combo_subsumed++;
    }
    for (int delta = 4; delta >= 1; delta--) {
        int opened = 0;
        for (size_t i = 0; i < p->nctx; i++) {
            const struct e2g_ctxword *c = &p->ctx[i];
            if (c->target - base != delta)
                continue;
            if (b->len - start + strlen(c->word) + 16 > E2G_OUT_LINE ||
                tokens + (opened ? 1 : 3) > E2G_OUT_TOKENS) {
                e->st.context_cut++;
                continue;
            }
            if (!opened) {
                buf_printf(b, " context +%d", delta);
                tokens += 2;
                opened = 1;
            }
            buf_append(b, " ", 1);
            e2g_quote(b, c->word);
            tokens++;
        }
    }
    buf_append(b, "\n", 1);
}

char *e2g_render(struct e2g *e, size_t *len, char *err, size_t errlen)
{
    const struct e2g_stats *st = &e->st;
    struct buf b, body;
    char *out = NULL;

    buf_init(&b, E2G_OUT_MAX);
    buf_init(&body, E2G_OUT_MAX);
    e->st.combo_subsumed = 0;
    e->st.context_cut = 0;
    e->st.phrases = e->nph;
    if (e->nph == 0) {
        snprintf(err, errlen,
                 "nothing to import: no phrase with a positive weight was found (%zu good "
                 "phrases, %zu combinations and %zu malformed lines were dropped)",
                 st->good, st->combo_many + st->combo_words + st->combo_weak, st->malformed);
        goto out;
    }
    buf_printf(&body, "language %s\n\ntheme %s {\n", e->lang, library_theme_name(e->o.theme));
    for (size_t i = 0; i < e->nph; i++)
        e2g_render_phrase(e, &body, &e->ph[i]);
    buf_append_str(&body, "}\n");

    buf_append_str(&b, "# haven keyword library imported from E2Guardian weighted phrase lists\n"
                       "# by `haven monitor import-e2g` (docs/monitoring.md).\n#\n# Read:\n");
    for (size_t i = 0; i < e->nsrc; i++) {
        const struct e2g_source *s = &e->src[i];
        buf_printf(&b, "#   %s", s->path);
        if (s->category)
            buf_printf(&b, "  \"%s\"", s->category);
        if (s->latin1)
            buf_append_str(&b, "  (read as Latin-1)");
        if (s->from)
            buf_printf(&b, "  (included at %s)", s->from);
        buf_append_str(&b, "\n");
    }
    buf_printf(&b,
               "#\n"
               "# Severity from weight: >= 100 -> 4, >= 50 -> 3, >= 20 -> 2, else 1 (N%% counts\n"
               "# as N). E2Guardian adds the weights of a page up and blocks past a limit;\n"
               "# haven judges each phrase on its own and never adds severities up. A\n"
               "# combination <a>,<b><w> is phrase \"a\" raised by context word \"b\" within %d\n"
               "# words (E2Guardian: anywhere on the page).\n"
               "#\n"
               "# Imported: %zu phrases, %zu combinations as context words, %zu duplicates "
               "merged.\n",
               LIB_CONTEXT_WINDOW, e->nph, st->combos, st->merged);
    buf_append_str(&b, "# Changed or lost:\n");
    buf_printf(&b,
               "#   %zu in-word phrases (\"<ganja>\") now match at the start of a word only "
               "(\"ganja*\")\n",
               st->prefix);
    buf_printf(&b, "#   %zu in-word phrases imported as whole words (too short for a prefix)\n",
               st->whole);
    buf_printf(&b,
               "#   %zu good phrases (negative weights) dropped: haven has no page score to "
               "lower\n",
               st->good);
    buf_printf(&b, "#   %zu combinations of 3 or more phrases dropped\n", st->combo_many);
    buf_printf(&b, "#   %zu combinations with no one-word part dropped\n", st->combo_words);
    buf_printf(&b, "#   %zu combinations of weight below 20 (severity 1) dropped\n",
               st->combo_weak);
    buf_printf(&b, "#   %zu combinations no stronger than their phrase alone dropped\n",
               st->combo_subsumed);
    buf_printf(&b, "#   %zu context words left off (too many on one phrase)\n", st->context_cut);
    buf_printf(&b, "#   %zu phrases of more than %d words or %d bytes dropped\n", st->too_long,
               LIB_PHRASE_WORDS, LIB_PHRASE_MAX);
    buf_printf(&b, "#   %zu phrases with no letters or digits, or one alone, dropped\n",
               st->no_letters);
    buf_printf(&b,
               "#   %zu lines of weight 0 and %zu malformed lines skipped (see the "
               "warnings)\n",
               st->zero, st->malformed);
    if (e->ngood_kept > 0) {
        buf_append_str(&b, "#\n# Good phrases dropped:\n");
        for (size_t i = 0; i < e->ngood_kept; i++)
            buf_printf(&b, "#   %s\n", e->good[i]);
        if (st->good > e->ngood_kept)
            buf_printf(&b, "#   ... and %zu more\n", st->good - e->ngood_kept);
    }
    buf_append_str(&b, "\n");
    if (body.len > 0)
        buf_append(&b, body.p, body.len);
    if (b.overflow || body.overflow) {
        snprintf(err, errlen, "the library would be larger than %d MiB",
                 E2G_OUT_MAX / (1024 * 1024));
        goto out;
    }
    out = b.p;
    *len = b.len;
    b.p = NULL;
out:
    buf_cleanup(&b);
    buf_cleanup(&body);
    return out;
}
