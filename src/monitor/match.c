/*
 * match.c -- scan text for library phrases with vectorscan.
 *
 * DESIGN. Every phrase, context word and exclusion phrase of every library
 * is normalised (monitor/normalize.h) into " word word " -- with the spaces
 * that make whole-word matching a plain literal search -- and compiled into
 * one literal database in streaming mode (hs_compile_lit_multi). A pattern's
 * id indexes db->pats, which says what it is and its length, so a match's
 * start is its end minus that length: no start-of-match tracking, which is
 * what makes streaming literal scanning cheap.
 *
 * The scanned text is the concatenation of the normalised pieces, each piece
 * without its leading space (the previous one ended with one), so the stream
 * is " w0 w1 w2 ... " exactly as if it had been normalised in one go, apart
 * from rule 7 of the normaliser across a piece boundary. Word positions are
 * counted as spaces before an offset; the callback keeps a cursor in the
 * current piece, so counting is linear in the text.
 *
 * During the scan the callback only records: phrase hits (with an excerpt
 * cut while the text is at hand) and "marks" (context words and exclusion
 * phrases, with their positions). The rules -- exclusions, context, sites,
 * groups, severity, score -- run once at close over what was recorded.
 */
#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <strings.h>

#include <hs.h>

#include "common/xalloc.h"
#include "monitor/match.h"
#include "monitor/normalize.h"

#define MATCH_VARIANT_BITS 3 /* double letters made single in at most 2^3 variants */
#define MATCH_EXCERPT_SIDE 60
#define MATCH_LIB_MAX 64
#define MATCH_LIT_MAX 1024 /* a normalised phrase, context word or exclusion */

enum match_kind { PAT_PHRASE, PAT_CONTEXT, PAT_EXCLUDE };

static _Atomic uint64_t match_serials;

struct match_pat {
    uint8_t kind;
    uint8_t prefix; /* the last word is a prefix ("starv*"): the literal has no final space */
    uint16_t len;   /* bytes of the literal, its spaces included */
    uint16_t words; /* words in it */
    uint32_t index; /* into db->phrases, db->words or db->excl */
};

struct match_phrase {
    const struct lib_phrase *p;
    const char *lang;
    uint32_t *ctx_words; /* for each of p->nctx lists, the word ids, ctx_start[i]..ctx_start[i+1] */
    uint32_t ctx_start[5];
};

struct match_excl {
    int theme;
};

struct match_db {
    hs_database_t *hs;
    uint64_t serial; /* unique per database built, for the scratch check */
    struct library **libs;
    size_t nlibs;
    struct match_pat *pats;
    size_t npats;
    struct match_phrase *phrases;
    size_t nphrases;
    size_t nwords; /* distinct context words */
    struct match_excl *excl;
    size_t nexcl;
    char langs[3 * MATCH_LIB_MAX + 1];
};

struct match_scratch {
    hs_scratch_t *hs;
    uint64_t serial; /* the database it was last fitted to */
};

struct match_stream_hit {
    uint32_t phrase;
    uint64_t start, end; /* stream offsets of " phrase " */
    uint64_t w0, w1;     /* its first and last word */
    char excerpt[MATCH_EXCERPT];
};

struct match_mark {
    uint8_t kind;
    uint32_t index;
    uint64_t start, end;
    uint64_t w0, w1;
};

struct match_stream {
    const struct match_db *db;
    hs_stream_t *hs;
    int failed;
    int started; /* a piece was scanned: later pieces drop their leading space */
    /* the piece being scanned, and where it sits in the stream */
    const char *piece;
    size_t piece_len;
    uint64_t base;
    uint64_t cursor, spaces; /* spaces in the stream before offset cursor */
    /* block mode: the text as written and the normaliser's map, for excerpts */
    const char *orig;
    size_t orig_len;
    const uint32_t *from;
    size_t tail_len, pend_len;
    int nhits, nmarks;
    /* The arrays (about 35 KB) come last: a new stream clears only what is above them. */
    /* the end of the earlier pieces, for excerpts that reach back */
    char tail[2 * MATCH_EXCERPT_SIDE];
    /* input after the last whitespace, waiting for the rest of its word */
    char pend[MATCH_WORD_MAX];
    struct match_stream_hit hits[MATCH_MAX_HITS];
    struct match_mark marks[MATCH_MAX_MARKS];
};

/* ---------------------------------------------------------------- building */

struct match_builder {
    struct match_db *db;
    char **lits;
    size_t *lens;
    unsigned *ids;
    size_t nlits, cap;
    size_t pats_cap;
    /* context words seen so far: normalised text -> id */
    char **words;
    size_t words_cap;
};

/* Add the literal of the pattern added last. */
static void match_add_lit(struct match_builder *b, const char *lit, size_t len)
{
    b->lits = xgrow(b->lits, &b->cap, b->nlits + 1, sizeof(*b->lits));
    b->lens = xrealloc(b->lens, b->cap * sizeof(*b->lens));
    b->ids = xrealloc(b->ids, b->cap * sizeof(*b->ids));
    b->lits[b->nlits] = xstrndup(lit, len);
    b->lens[b->nlits] = len;
    b->ids[b->nlits] = (unsigned)b->db->npats - 1;
    b->nlits++;
}

/* A new pattern: what it is (kind, index) and its shape. */
static void match_add_pat(struct match_builder *b, int kind, uint32_t index, const char *lit,
                          size_t len)
{
    struct match_db *db = b->db;
    size_t words = 0;

    for (size_t i = 1; i < len; i++)
        words += lit[i] == ' ';
    db->pats = xgrow(db->pats, &b->pats_cap, db->npats + 1, sizeof(*db->pats));
    db->pats[db->npats].kind = (uint8_t)kind;
    db->pats[db->npats].prefix = lit[len - 1] != ' ';
    words += lit[len - 1] != ' ';
    db->pats[db->npats].len = (uint16_t)len;
    db->pats[db->npats].words = (uint16_t)words;
    db->pats[db->npats].index = index;
    db->npats++;
}

/*
 * Add lit (normalised, " w w ") as a pattern, and, when it has two words or more, its
 * variants with double ASCII letters made single (the normaliser turns "killll" into
 * "kil"), each its own pattern with its own length. One word alone gets no variants:
 * made single, a word is too often another word ("nigger" would match "niger").
 */
static void match_add_variants(struct match_builder *b, int kind, uint32_t index, const char *lit,
                               size_t len)
{
    size_t spaces = 0; /* counts words, below */
    size_t pos[MATCH_VARIANT_BITS];
    int npos = 0;
    char buf[MATCH_LIT_MAX];

    for (size_t i = 1; i < len; i++)
        spaces += lit[i] == ' ';
    spaces += lit[len - 1] != ' '; /* now the words: a prefix has no final space */
    for (size_t i = 1; spaces >= 2 && i + 1 < len && npos < MATCH_VARIANT_BITS; i++) {
        if (lit[i] >= 'a' && lit[i] <= 'z' && lit[i + 1] == lit[i])
            pos[npos++] = i;
    }
    for (unsigned mask = 0; mask < (1u << npos); mask++) {
        size_t n = 0;
        for (size_t i = 0; i < len && n < sizeof(buf); i++) {
            int skip = 0;
            for (int k = 0; k < npos; k++) {
                if ((mask & (1u << k)) && pos[k] == i)
                    skip = 1;
            }
            if (!skip)
                buf[n++] = lit[i];
        }
        match_add_pat(b, kind, index, buf, n);
        match_add_lit(b, buf, n);
    }
}

/*
 * Normalise text into " w w " in out; a final '*' (a prefix) leaves the final space off:
 * " w w". 0, or -1 when nothing of it is left.
 */
static int match_norm(const char *text, char *out, size_t size, size_t *len)
{
    size_t tl = strlen(text);
    int prefix = tl > 0 && text[tl - 1] == '*';
    struct norm n;

    if (norm_text(text, tl - (size_t)prefix, 0, &n) < 0)
        return -1;
    if (n.len < 3 || n.len >= size) {
        norm_free(&n);
        return -1;
    }
    memcpy(out, n.text, n.len + 1);
    *len = n.len - (size_t)prefix;
    out[*len] = '\0';
    norm_free(&n);
    return 0;
}

/* The id of a context word, adding it (and its pattern) when new. */
static uint32_t match_word_id(struct match_builder *b, const char *lit, size_t len)
{
    struct match_db *db = b->db;

    for (size_t i = 0; i < db->nwords; i++) {
        if (strcmp(b->words[i], lit) == 0)
            return (uint32_t)i;
    }
    b->words = xgrow(b->words, &b->words_cap, db->nwords + 1, sizeof(*b->words));
    b->words[db->nwords] = xstrndup(lit, len);
    match_add_pat(b, PAT_CONTEXT, (uint32_t)db->nwords, lit, len);
    match_add_lit(b, lit, len);
    return (uint32_t)db->nwords++;
}

static int match_build_phrase(struct match_builder *b, const struct library *l,
                              const struct lib_phrase *p, char *err, size_t errlen)
{
    struct match_db *db = b->db;
    struct match_phrase *mp = &db->phrases[db->nphrases];
    char lit[MATCH_LIT_MAX];
    size_t len, nids = 0;

    if (match_norm(p->text, lit, sizeof(lit), &len) < 0) {
        snprintf(err, errlen, "%s:%d: phrase \"%s\" has no letters or digits to match",
                 library_name(l), p->line, p->text);
        return -1;
    }
    size_t inner = len - 1 - (lit[len - 1] == ' '); /* without the spaces */
    unsigned char c0 = (unsigned char)lit[1];
    size_t one = c0 < 0x80 ? 1 : c0 < 0xe0 ? 2 : c0 < 0xf0 ? 3 : 4;
    if (inner <= one) {
        /* " x ": one character alone would match everywhere. */
        snprintf(err, errlen,
                 "%s:%d: phrase \"%s\" is \"%.*s\" once normalised (repeated letters "
                 "become one): too short to match alone",
                 library_name(l), p->line, p->text, (int)(len > 2 ? len - 2 : 0), lit + 1);
        return -1;
    }
    mp->p = p;
    mp->lang = library_language(l);
    for (int i = 0; i < p->nctx; i++)
        nids += (size_t)p->ctx[i].nwords;
    mp->ctx_words = nids ? xcalloc(nids, sizeof(*mp->ctx_words)) : NULL;
    nids = 0;
    for (int i = 0; i < p->nctx && i < 4; i++) {
        mp->ctx_start[i] = (uint32_t)nids;
        for (int k = 0; k < p->ctx[i].nwords; k++) {
            char w[MATCH_LIT_MAX];
            size_t wlen;
            if (match_norm(p->ctx[i].words[k], w, sizeof(w), &wlen) == 0)
                mp->ctx_words[nids++] = match_word_id(b, w, wlen);
        }
    }
    mp->ctx_start[p->nctx < 4 ? p->nctx : 4] = (uint32_t)nids;
    match_add_variants(b, PAT_PHRASE, (uint32_t)db->nphrases, lit, len);
    db->nphrases++;
    return 0;
}

static int match_compile(struct match_builder *b, char *err, size_t errlen)
{
    hs_compile_error_t *cerr = NULL;
    unsigned *flags = xcalloc(b->nlits ? b->nlits : 1, sizeof(*flags));
    hs_error_t rc;

    rc = hs_compile_lit_multi((const char *const *)b->lits, flags, b->ids, b->lens,
                              (unsigned)b->nlits, HS_MODE_STREAM, NULL, &b->db->hs, &cerr);
    free(flags);
    if (rc != HS_SUCCESS) {
        snprintf(err, errlen, "cannot compile the keyword libraries: %s",
                 cerr && cerr->message ? cerr->message : "vectorscan error");
        hs_free_compile_error(cerr);
        return -1;
    }
    return 0;
}

static void match_builder_free(struct match_builder *b)
{
    for (size_t i = 0; i < b->nlits; i++)
        free(b->lits[i]);
    for (size_t i = 0; b->words && i < b->db->nwords; i++)
        free(b->words[i]);
    free(b->lits);
    free(b->lens);
    free(b->ids);
    free(b->words);
}

struct match_db *match_db_build(struct library **libs, size_t n, char *err, size_t errlen)
{
    struct match_db *db = xcalloc(1, sizeof(*db));
    struct match_builder b;
    size_t total = 0, excl_cap = 0;
    struct match_db *result = NULL;

    memset(&b, 0, sizeof(b));
    b.db = db;
    if (n == 0 || n > MATCH_LIB_MAX) {
        snprintf(err, errlen, "between 1 and %d keyword libraries are needed, not %zu",
                 MATCH_LIB_MAX, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        total += library_count(libs[i]);
    db->phrases = xcalloc(total ? total : 1, sizeof(*db->phrases));
    for (size_t i = 0; i < n; i++) {
        const struct library *l = libs[i];
        if (!strstr(db->langs, library_language(l))) {
            size_t used = strlen(db->langs);
            snprintf(db->langs + used, sizeof(db->langs) - used, "%s%s", used ? " " : "",
                     library_language(l));
        }
        for (size_t k = 0; k < library_count(l); k++) {
            if (match_build_phrase(&b, l, library_phrase(l, k), err, errlen) < 0)
                goto done;
        }
        for (size_t k = 0; k < library_exclusion_count(l); k++) {
            const struct lib_exclusion *e = library_exclusion(l, k);
            char lit[MATCH_LIT_MAX];
            size_t len;
            if (e->kind != LIB_EXCLUDE_PHRASE || match_norm(e->text, lit, sizeof(lit), &len) < 0)
                continue;
            db->excl = xgrow(db->excl, &excl_cap, db->nexcl + 1, sizeof(*db->excl));
            db->excl[db->nexcl].theme = e->theme;
            match_add_variants(&b, PAT_EXCLUDE, (uint32_t)db->nexcl, lit, len);
            db->nexcl++;
        }
    }
    if (match_compile(&b, err, errlen) < 0)
        goto done;
    db->libs = xmalloc(n * sizeof(*db->libs));
    memcpy(db->libs, libs, n * sizeof(*libs));
    db->serial = atomic_fetch_add(&match_serials, 1) + 1;
    db->nlibs = n;
    result = db;
done:
    match_builder_free(&b);
    if (!result) {
        db->nlibs = 0; /* the caller keeps the libraries */
        match_db_free(db);
    }
    return result;
}

static int match_cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct match_db *match_db_load_dir(const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char *names[MATCH_LIB_MAX];
    struct library *libs[MATCH_LIB_MAX];
    size_t nnames = 0, nlibs = 0;
    struct match_db *db = NULL;

    if (!d) {
        snprintf(err, errlen, "%s: cannot open the keyword library directory: %s", dir,
                 strerror(errno));
        return NULL;
    }
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || de->d_name[0] == '.' || strcmp(de->d_name + l - 4, ".lib") != 0)
            continue;
        if (nnames == MATCH_LIB_MAX) {
            snprintf(err, errlen, "%s: more than %d keyword libraries", dir, MATCH_LIB_MAX);
            goto done;
        }
        names[nnames++] = xstrdup(de->d_name);
    }
    if (nnames == 0) {
        snprintf(err, errlen, "%s: no keyword libraries (*.lib files) in this directory", dir);
        goto done;
    }
    qsort(names, nnames, sizeof(*names), match_cmp_name);
    for (size_t i = 0; i < nnames; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        libs[nlibs] = library_load(path, err, errlen);
        if (!libs[nlibs])
            goto done;
        nlibs++;
    }
    db = match_db_build(libs, nlibs, err, errlen);
    if (db)
        nlibs = 0;
done:
    closedir(d);
    for (size_t i = 0; i < nlibs; i++)
        library_free(libs[i]);
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    return db;
}

void match_db_free(struct match_db *db)
{
    if (!db)
        return;
    hs_free_database(db->hs);
    for (size_t i = 0; i < db->nlibs; i++)
        library_free(db->libs[i]);
    for (size_t i = 0; i < db->nphrases; i++)
        free(db->phrases[i].ctx_words);
    free(db->libs);
    free(db->pats);
    free(db->phrases);
    free(db->excl);
    free(db);
}

size_t match_db_phrases(const struct match_db *db)
{
    return db->nphrases;
}

const char *match_db_languages(const struct match_db *db)
{
    return db->langs;
}

size_t match_db_stream_size(const struct match_db *db)
{
    size_t n = 0;

    if (hs_stream_size(db->hs, &n) != HS_SUCCESS)
        return 0;
    return n + sizeof(struct match_stream);
}

int match_scratch_ensure(struct match_scratch **s, const struct match_db *db)
{
    struct match_scratch *m = *s;
    hs_scratch_t *hs;

    /* hs_alloc_scratch costs tens of microseconds even when nothing changes: once per
     * database is enough. */
    if (m && m->serial == db->serial)
        return 0;
    if (!m) {
        m = calloc(1, sizeof(*m));
        if (!m)
            return -1;
    }
    hs = m->hs;
    if (hs_alloc_scratch(db->hs, &hs) != HS_SUCCESS) {
        if (!*s)
            free(m);
        return -1;
    }
    m->hs = hs;
    m->serial = db->serial;
    *s = m;
    return 0;
}

void match_scratch_free(struct match_scratch *s)
{
    if (!s)
        return;
    hs_free_scratch(s->hs);
    free(s);
}

/* ---------------------------------------------------------------- scanning */

/* The byte at stream offset o, which is in the current piece or the tail before it. */
static char match_at(const struct match_stream *ms, uint64_t o)
{
    if (o >= ms->base)
        return ms->piece[o - ms->base];
    return ms->tail[ms->tail_len - (size_t)(ms->base - o)];
}

/* Spaces in the stream before offset o (o within the current piece). */
static uint64_t match_spaces_before(struct match_stream *ms, uint64_t o)
{
    while (ms->cursor < o) {
        ms->spaces += ms->piece[ms->cursor - ms->base] == ' ';
        ms->cursor++;
    }
    while (ms->cursor > o) {
        ms->cursor--;
        ms->spaces -= ms->piece[ms->cursor - ms->base] == ' ';
    }
    return ms->spaces;
}

/* Copy src[0..n) into out as valid UTF-8 on one line (invalid bytes and controls become
 * spaces), at most size-1 bytes, cut at a character boundary; NUL-terminates. */
static void match_clean(char *out, size_t size, const char *src, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 1 < size;) {
        unsigned char c = (unsigned char)src[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = len > 0 && i + len <= n && !(c >= 0xc0 && c < 0xc2) && c < 0xf5;
        for (size_t k = 1; ok && k < len; k++)
            ok = ((unsigned char)src[i + k] & 0xc0) == 0x80;
        if (ok && len > 2) {
            /* overlong forms, surrogates and code points past U+10FFFF */
            unsigned char d = (unsigned char)src[i + 1];
            ok = !((c == 0xe0 && d < 0xa0) || (c == 0xed && d >= 0xa0) || (c == 0xf0 && d < 0x90) ||
                   (c == 0xf4 && d >= 0x90));
        }
        if (!ok || c < 0x20 || c == 0x7f) {
            out[o++] = ' ';
            i++;
            continue;
        }
        if (o + len >= size)
            break;
        memcpy(out + o, src + i, len);
        o += len;
        i += len;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

/* The excerpt of a hit at stream offsets [start, end): from the text as written (block mode)
 * or from the normalised text around it. Cut at whitespace on both sides. */
static void match_excerpt(const struct match_stream *ms, uint64_t start, uint64_t end, char *out)
{
    char buf[MATCH_EXCERPT * 2];
    size_t n = 0, s, e;

    if (ms->from) {
        /* Block mode: the words are at normalised [start+1, end-1). */
        size_t os = ms->from[start + 1], oe = ms->from[end - 1];
        s = os > MATCH_EXCERPT_SIDE ? os - MATCH_EXCERPT_SIDE : 0;
        e = oe + MATCH_EXCERPT_SIDE < ms->orig_len ? oe + MATCH_EXCERPT_SIDE : ms->orig_len;
        while (s > 0 && s < os && ms->orig[s - 1] != ' ' && ms->orig[s - 1] != '\n')
            s++;
        while (e < ms->orig_len && e > oe && ms->orig[e] != ' ' && ms->orig[e] != '\n')
            e--;
        match_clean(out, MATCH_EXCERPT, ms->orig + s, e - s);
        return;
    }
    uint64_t lo = ms->base - ms->tail_len, hi = ms->base + ms->piece_len;
    uint64_t a = start > lo + MATCH_EXCERPT_SIDE ? start - MATCH_EXCERPT_SIDE : lo;
    uint64_t b = end + MATCH_EXCERPT_SIDE < hi ? end + MATCH_EXCERPT_SIDE : hi;
    /* Start after a space: the window may begin inside a word, even at the tail's start. */
    if (a > lo ? match_at(ms, a - 1) != ' ' : a > 0) {
        while (a < start && match_at(ms, a) != ' ')
            a++;
    }
    while (b > end && b < hi && match_at(ms, b) != ' ')
        b--;
    for (uint64_t o = a; o < b && n < sizeof(buf); o++)
        buf[n++] = match_at(ms, o);
    s = 0;
    while (s < n && buf[s] == ' ')
        s++;
    match_clean(out, MATCH_EXCERPT, buf + s, n - s);
}

/*
 * The marks are full (a long page with common context words): keep only those that can
 * still matter, near a recorded hit or near the text being read now (a context word counts
 * within LIB_CONTEXT_WINDOW words, an exclusion spans at most LIB_EXCLUDE_WORDS).
 */
static void match_compact_marks(struct match_stream *ms, uint64_t now)
{
    const uint64_t reach = LIB_EXCLUDE_WORDS + LIB_CONTEXT_WINDOW;
    int k = 0;

    for (int i = 0; i < ms->nmarks; i++) {
        const struct match_mark *m = &ms->marks[i];
        int keep = m->w1 + reach >= now;
        for (int j = 0; j < ms->nhits && !keep; j++) {
            const struct match_stream_hit *h = &ms->hits[j];
            keep = m->w1 + reach >= h->w0 && m->w0 <= h->w1 + reach;
        }
        if (keep)
            ms->marks[k++] = *m;
    }
    ms->nmarks = k;
}

static int match_on_hit(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                        void *arg)
{
    struct match_stream *ms = arg;
    const struct match_pat *pat = &ms->db->pats[id];
    uint64_t start = to - pat->len;
    /* The last word: before the final space, or (a prefix) the word the match ends in. */
    uint64_t w1 = match_spaces_before(ms, to) - (pat->prefix ? 1 : 2);
    uint64_t w0 = w1 + 1 - pat->words;

    (void)from;
    (void)flags;
    if (pat->kind != PAT_PHRASE) {
        if (ms->nmarks == MATCH_MAX_MARKS)
            match_compact_marks(ms, w0);
        if (ms->nmarks < MATCH_MAX_MARKS) {
            struct match_mark *m = &ms->marks[ms->nmarks++];
            m->kind = pat->kind;
            m->index = pat->index;
            m->start = start;
            m->end = to;
            m->w0 = w0;
            m->w1 = w1;
        }
        return 0;
    }
    int seen = 0;
    for (int i = 0; i < ms->nhits; i++)
        seen += ms->hits[i].phrase == pat->index;
    if (seen >= MATCH_REPEAT || ms->nhits == MATCH_MAX_HITS)
        return 0;
    struct match_stream_hit *h = &ms->hits[ms->nhits++];
    h->phrase = pat->index;
    h->start = start;
    h->end = to;
    h->w0 = w0;
    h->w1 = w1;
    match_excerpt(ms, start, to, h->excerpt);
    return 0;
}

struct match_stream *match_stream_open(const struct match_db *db)
{
    struct match_stream *ms = malloc(sizeof(*ms)); /* one per page: not calloc'd */

    if (!ms)
        return NULL;
    memset(ms, 0, offsetof(struct match_stream, tail));
    ms->db = db;
    if (hs_open_stream(db->hs, 0, &ms->hs) != HS_SUCCESS) {
        free(ms);
        return NULL;
    }
    return ms;
}

/* Scan one normalised piece (" w w ") as the next part of the stream. */
static int match_scan_piece(struct match_stream *ms, struct match_scratch *s, const char *text,
                            size_t len)
{
    if (ms->started) {
        text++; /* the previous piece ended with the space this one starts with */
        len--;
    }
    if (len == 0)
        return 0;
    ms->piece = text;
    ms->piece_len = len;
    ms->cursor = ms->base;
    if (hs_scan_stream(ms->hs, text, len, 0, s->hs, match_on_hit, ms) != HS_SUCCESS) {
        ms->failed = 1;
        return -1;
    }
    ms->started = 1;
    /* Keep the end of the text for the excerpts of the next piece. */
    if (len >= sizeof(ms->tail)) {
        memcpy(ms->tail, text + len - sizeof(ms->tail), sizeof(ms->tail));
        ms->tail_len = sizeof(ms->tail);
    } else {
        size_t keep = ms->tail_len + len > sizeof(ms->tail) ? sizeof(ms->tail) - len : ms->tail_len;
        memmove(ms->tail, ms->tail + ms->tail_len - keep, keep);
        memcpy(ms->tail + keep, text, len);
        ms->tail_len = keep + len;
    }
    ms->spaces = match_spaces_before(ms, ms->base + len);
    ms->base += len;
    ms->cursor = ms->base;
    ms->piece = NULL;
    ms->piece_len = 0;
    return 0;
}

static int match_norm_scan(struct match_stream *ms, struct match_scratch *s, const char *text,
                           size_t len)
{
    struct norm n;
    int rc;

    if (norm_text(text, len, 0, &n) < 0) {
        ms->failed = 1;
        return -1;
    }
    rc = match_scan_piece(ms, s, n.text, n.len);
    norm_free(&n);
    return rc;
}

static int match_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int match_stream_feed(struct match_stream *ms, struct match_scratch *s, const char *text,
                      size_t len)
{
    size_t cut = len;
    int rc = 0;

    if (ms->failed)
        return -1;
    while (cut > 0 && !match_is_space(text[cut - 1]))
        cut--;
    if (cut == 0 && ms->pend_len + len <= sizeof(ms->pend)) {
        memcpy(ms->pend + ms->pend_len, text, len);
        ms->pend_len += len;
        return 0;
    }
    if (cut == 0)
        cut = len; /* a "word" longer than MATCH_WORD_MAX: scan it as it is */
    if (ms->pend_len > 0) {
        char *joined = malloc(ms->pend_len + cut);
        if (!joined) {
            ms->failed = 1;
            return -1;
        }
        memcpy(joined, ms->pend, ms->pend_len);
        memcpy(joined + ms->pend_len, text, cut);
        rc = match_norm_scan(ms, s, joined, ms->pend_len + cut);
        free(joined);
    } else {
        rc = match_norm_scan(ms, s, text, cut);
    }
    ms->pend_len = 0;
    if (len - cut > sizeof(ms->pend)) {
        /* The rest is one long run without whitespace: scan it now too. */
        return rc < 0 ? rc : match_norm_scan(ms, s, text + cut, len - cut);
    }
    memcpy(ms->pend, text + cut, len - cut);
    ms->pend_len = len - cut;
    return rc;
}

/* ---------------------------------------------------------------- the rules */

/* Does site (host or host/path, as written in a library) cover host and path? */
static int match_site_covers(const char *site, const char *host, const char *path)
{
    const char *slash = strchr(site, '/');
    size_t hlen = slash ? (size_t)(slash - site) : strlen(site);
    size_t len = strlen(host);

    if (len < hlen || strncasecmp(host + len - hlen, site, hlen) != 0)
        return 0;
    if (len > hlen && host[len - hlen - 1] != '.')
        return 0;
    if (!slash)
        return 1;
    size_t plen = strlen(slash);
    if (!path || strncmp(path, slash, plen) != 0)
        return 0;
    return path[plen] == '\0' || path[plen] == '/' || path[plen] == '?' || slash[plen - 1] == '/';
}

/* Is theme excluded for where (a site or group exclusion of any library)? */
static int match_where_excluded(const struct match_db *db, int theme,
                                const struct match_where *where)
{
    if (!where)
        return 0;
    for (size_t i = 0; i < db->nlibs; i++) {
        const struct library *l = db->libs[i];
        for (size_t k = 0; k < library_exclusion_count(l); k++) {
            const struct lib_exclusion *e = library_exclusion(l, k);
            if (e->theme != -1 && e->theme != theme)
                continue;
            if (e->kind == LIB_EXCLUDE_GROUP && where->group && strcmp(e->text, where->group) == 0)
                return 1;
            if (e->kind == LIB_EXCLUDE_SITE && where->host &&
                match_site_covers(e->text, where->host, where->path))
                return 1;
        }
    }
    return 0;
}

static uint64_t match_distance(const struct match_stream_hit *h, const struct match_mark *m)
{
    if (m->w1 < h->w0)
        return h->w0 - m->w1;
    if (m->w0 > h->w1)
        return m->w0 - h->w1;
    return 0; /* inside the phrase: not a context word of it */
}

/* The severity of hit h after its context, or 0 when an exclusion cancels it. */
static int match_judge(const struct match_stream *ms, const struct match_stream_hit *h)
{
    const struct match_db *db = ms->db;
    const struct match_phrase *mp = &db->phrases[h->phrase];
    int sev = mp->p->severity;

    for (int i = 0; i < ms->nmarks; i++) {
        const struct match_mark *m = &ms->marks[i];
        if (m->kind == PAT_EXCLUDE && db->excl[m->index].theme == mp->p->theme &&
            m->start <= h->start && m->end >= h->end)
            return 0;
    }
    for (int c = 0; c < mp->p->nctx && c < 4; c++) {
        int near = 0;
        for (int i = 0; i < ms->nmarks && !near; i++) {
            const struct match_mark *m = &ms->marks[i];
            uint64_t d;
            if (m->kind != PAT_CONTEXT)
                continue;
            d = match_distance(h, m);
            if (d == 0 || d > LIB_CONTEXT_WINDOW)
                continue;
            for (uint32_t k = mp->ctx_start[c]; k < mp->ctx_start[c + 1]; k++)
                near |= mp->ctx_words[k] == m->index;
        }
        if (near)
            sev += mp->p->ctx[c].delta;
    }
    return sev < 1 ? 1 : sev > 5 ? 5 : sev;
}

static int match_cmp_hit(const void *a, const void *b)
{
    const struct match_hit *x = a, *y = b;

    if (x->severity != y->severity)
        return y->severity - x->severity;
    return strcmp(x->phrase->text, y->phrase->text);
}

static void match_verdict(const struct match_stream *ms, const struct match_where *where,
                          struct match_result *out)
{
    static const int weight[6] = {0, 1, 2, 5, 10, 20};

    out->severity = 0;
    out->score = 0;
    out->nhits = 0;
    for (int i = 0; i < ms->nhits; i++) {
        const struct match_stream_hit *h = &ms->hits[i];
        const struct match_phrase *mp = &ms->db->phrases[h->phrase];
        int sev = match_judge(ms, h), k;

        if (sev == 0 || match_where_excluded(ms->db, mp->p->theme, where))
            continue;
        out->score += weight[sev];
        /* One entry per phrase: its strongest occurrence. */
        for (k = 0; k < out->nhits && out->hits[k].phrase != mp->p; k++)
            ;
        if (k == out->nhits) {
            out->nhits++;
            out->hits[k].phrase = mp->p;
            out->hits[k].lang = mp->lang;
            out->hits[k].severity = 0;
        }
        if (sev > out->hits[k].severity) {
            out->hits[k].severity = sev;
            memcpy(out->hits[k].excerpt, h->excerpt, sizeof(h->excerpt));
        }
        if (sev > out->severity)
            out->severity = sev;
    }
    qsort(out->hits, (size_t)out->nhits, sizeof(out->hits[0]), match_cmp_hit);
}

int match_stream_close(struct match_stream *ms, struct match_scratch *s,
                       const struct match_where *where, struct match_result *out)
{
    int rc = ms->failed ? -1 : 0;

    if (rc == 0 && ms->pend_len > 0)
        rc = match_norm_scan(ms, s, ms->pend, ms->pend_len);
    /* Literals match within the text; nothing is left to report at its end. */
    hs_close_stream(ms->hs, NULL, NULL, NULL);
    ms->hs = NULL;
    match_verdict(ms, where, out);
    free(ms);
    return rc;
}

void match_stream_abort(struct match_stream *ms)
{
    if (!ms)
        return;
    hs_close_stream(ms->hs, NULL, NULL, NULL);
    free(ms);
}

int match_text(const struct match_db *db, struct match_scratch *s, const char *text, size_t len,
               const struct match_where *where, struct match_result *out)
{
    struct match_stream *ms = match_stream_open(db);
    struct norm n;
    int rc;

    if (!ms)
        return -1;
    if (norm_text(text, len, 1, &n) < 0) {
        match_stream_abort(ms);
        return -1;
    }
    ms->orig = text;
    ms->orig_len = len < NORM_MAX_IN ? len : NORM_MAX_IN;
    ms->from = n.from;
    rc = match_scan_piece(ms, s, n.text, n.len);
    ms->from = NULL;
    hs_close_stream(ms->hs, NULL, NULL, NULL);
    ms->hs = NULL;
    match_verdict(ms, where, out);
    free(ms);
    norm_free(&n);
    return rc;
}

int match_alert_severity(const struct match_result *r, int min_severity, unsigned themes)
{
    int best = 0;

    for (int i = 0; i < r->nhits; i++) {
        if ((themes >> r->hits[i].phrase->theme & 1u) && r->hits[i].severity > best)
            best = r->hits[i].severity;
    }
    return best >= min_severity ? best : 0;
}
