/*
 * normalize.c -- canonical text for keyword matching (rules in normalize.h).
 *
 * DESIGN. Three passes over flat arrays of "units" (one code point, the input
 * offset it came from, and its class), so that per-word decisions (is there a
 * letter in this word? is this "@" an e-mail address? are these one-letter
 * words spaced out?) can look ahead without backtracking over UTF-8:
 *
 *   pass 1  bytes -> units: ASCII through a table; non-ASCII a cluster at a
 *           time (a starter plus the marks and jamo that may compose with it)
 *           through utf8proc decompose, mark filter, recompose.
 *   pass 2  units -> words: tokenise, apostrophes, leetspeak, separators
 *           collapsed to one space that remembers whether it replaced exactly
 *           one input character.
 *   pass 3  words -> final: join spaced-out letters, collapse repeats, then
 *           encode UTF-8 and the offset map.
 *
 * Each pass writes at most one unit per unit read (plus the sentinels), so the
 * arrays are sized once from pass 1.
 */
#include "common/compat.h"

#include <utf8proc.h>

#include "monitor/normalize.h"

enum cls { C_X, C_L, C_M, C_D, C_S, C_A, C_DROP };

struct unit {
    uint32_t cp;
    uint32_t from;
    uint8_t cls;
    uint8_t single; /* space units: replaced exactly one input character */
};

struct vec {
    struct unit *u;
    size_t n, cap;
};

/* Longest cluster handed to utf8proc: a starter and 31 marks. Further marks
 * on the same starter (zalgo text) are deleted. */
#define NORM_CLUSTER_MAX 32
/* utf8proc's longest full decomposition of one code point is 18. */
#define NORM_DECOMP_MAX (NORM_CLUSTER_MAX * 18 + 8)

static const uint8_t ascii_cls[128] = {
    ['0'] = C_D,  ['1'] = C_D, ['2'] = C_D, ['3'] = C_D, ['4'] = C_D, ['5'] = C_D, ['6'] = C_D,
    ['7'] = C_D,  ['8'] = C_D, ['9'] = C_D, ['@'] = C_S, ['$'] = C_S, ['!'] = C_S, ['|'] = C_S,
    ['\''] = C_A, ['a'] = C_L, ['b'] = C_L, ['c'] = C_L, ['d'] = C_L, ['e'] = C_L, ['f'] = C_L,
    ['g'] = C_L,  ['h'] = C_L, ['i'] = C_L, ['j'] = C_L, ['k'] = C_L, ['l'] = C_L, ['m'] = C_L,
    ['n'] = C_L,  ['o'] = C_L, ['p'] = C_L, ['q'] = C_L, ['r'] = C_L, ['s'] = C_L, ['t'] = C_L,
    ['u'] = C_L,  ['v'] = C_L, ['w'] = C_L, ['x'] = C_L, ['y'] = C_L, ['z'] = C_L, ['A'] = C_L,
    ['B'] = C_L,  ['C'] = C_L, ['D'] = C_L, ['E'] = C_L, ['F'] = C_L, ['G'] = C_L, ['H'] = C_L,
    ['I'] = C_L,  ['J'] = C_L, ['K'] = C_L, ['L'] = C_L, ['M'] = C_L, ['N'] = C_L, ['O'] = C_L,
    ['P'] = C_L,  ['Q'] = C_L, ['R'] = C_L, ['S'] = C_L, ['T'] = C_L, ['U'] = C_L, ['V'] = C_L,
    ['W'] = C_L,  ['X'] = C_L, ['Y'] = C_L, ['Z'] = C_L,
};

static uint32_t leet_letter(uint32_t cp)
{
    switch (cp) {
    case '0':
        return 'o';
    case '1':
    case '!':
        return 'i';
    case '3':
        return 'e';
    case '4':
    case '@':
        return 'a';
    case '5':
    case '$':
        return 's';
    case '7':
        return 't';
    case '8':
        return 'b';
    case '|':
        return 'l';
    default:
        return 0;
    }
}

static int is_jamo(uint32_t cp)
{
    return (cp >= 0x1100 && cp <= 0x11FF) || (cp >= 0xA960 && cp <= 0xA97F) ||
           (cp >= 0xD7B0 && cp <= 0xD7FF) || (cp >= 0x3130 && cp <= 0x318F);
}

static int is_latin_letter(uint32_t cp)
{
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) ||
           (cp >= 0x250 && cp <= 0x2AF) || (cp >= 0x1D00 && cp <= 0x1DBF) ||
           (cp >= 0x1E00 && cp <= 0x1EFF) || (cp >= 0x2C60 && cp <= 0x2C7F) ||
           (cp >= 0xA720 && cp <= 0xA7FF) || (cp >= 0xAB30 && cp <= 0xAB6F) ||
           (cp >= 0xFF21 && cp <= 0xFF3A) || (cp >= 0xFF41 && cp <= 0xFF5A);
}

static int is_mark_cat(utf8proc_category_t c)
{
    return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC || c == UTF8PROC_CATEGORY_ME;
}

/*
 * Rule 3b: letters written more than one way by the people who type them. Returns the
 * code point to keep, or 0 to delete it. Runs on decomposed text, so "أ" arrives as
 * alef + hamza above and loses the hamza here.
 */
static uint32_t fold_cp(uint32_t cp)
{
    if (cp < 0x142)
        return cp;
    if (cp == 0x142) /* Polish l with stroke: "szkoła" is typed "szkola" */
        return 'l';
    if ((cp >= 0x064B && cp <= 0x065F) || cp == 0x0670 || cp == 0x0640)
        return 0; /* Arabic-script harakat, hamza and madda marks, superscript alef, tatweel */
    if (cp == 0x093C || cp == 0x09BC || cp == 0x0A3C)
        return 0; /* nukta: Devanagari, Bengali, Gurmukhi */
    switch (cp) {
    case 0x0671: /* alef wasla */
        return 0x0627;
    case 0x0629: /* teh marbuta */
    case 0x06C1: /* heh goal (Urdu) */
        return 0x0647;
    case 0x0649: /* alef maksura */
    case 0x06CC: /* Farsi yeh (Urdu) */
        return 0x064A;
    case 0x06A9: /* keheh (Urdu kaf) */
        return 0x0643;
    default:
        return cp;
    }
}

/* Class of a code point that has already been normalised. */
static uint8_t cp_class(uint32_t cp)
{
    if (cp < 0x80)
        return ascii_cls[cp];
    if (cp == 0x2019)
        return C_A;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return C_L;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
        return C_M;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return C_D;
    case UTF8PROC_CATEGORY_CF:
        return C_DROP;
    default:
        return C_X;
    }
}

/* May cp be part of the cluster before it (compose with it, or reorder)? */
static int cluster_extends(uint32_t cp)
{
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);

    if (p->combining_class != 0 || p->ignorable)
        return 1;
    if (p->category == UTF8PROC_CATEGORY_CF)
        return 1; /* deleted later; must not split the marks around it */
    if (p->decomp_seqindex != UINT16_MAX || p->casefold_seqindex != UINT16_MAX) {
        /* A compatibility form of a mark (halfwidth U+FF9F -> U+309A) must
         * be ordered with the marks before it. */
        utf8proc_int32_t d[32];
        int bound = 0;
        utf8proc_ssize_t r = utf8proc_decompose_char(
            (utf8proc_int32_t)cp, d, 32,
            UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE, &bound);
        if (r > 0 && r <= 32) {
            const utf8proc_property_t *q = utf8proc_get_property(d[0]);
            return q->combining_class != 0 || is_mark_cat((utf8proc_category_t)q->category);
        }
    }
    if (is_mark_cat((utf8proc_category_t)p->category))
        return 1;
    return is_jamo(cp);
}

static int vec_reserve(struct vec *v, size_t extra)
{
    size_t need = v->n + extra, cap;
    struct unit *u;

    if (need <= v->cap)
        return 0;
    cap = v->cap ? v->cap : 64;
    while (cap < need)
        cap *= 2;
    u = realloc(v->u, cap * sizeof(*u));
    if (!u)
        return -1;
    v->u = u;
    v->cap = cap;
    return 0;
}

static void vec_put(struct vec *v, uint32_t cp, uint32_t from, uint8_t cls)
{
    struct unit *u = &v->u[v->n++];

    u->cp = cp;
    u->from = from;
    u->cls = cls;
    u->single = 0;
}

/* Normalise one non-ASCII cluster in[0..len) (starting at input offset off)
 * and append its units to v. */
static int pass1_cluster(struct vec *v, const uint8_t *in, size_t len, uint32_t off)
{
    utf8proc_int32_t buf[NORM_DECOMP_MAX];
    utf8proc_ssize_t n, i, k = 0;
    uint32_t base = v->n ? v->u[v->n - 1].cp : 0;

    n = utf8proc_decompose_custom(
        in, (utf8proc_ssize_t)len, buf, NORM_DECOMP_MAX,
        UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE, NULL, NULL);
    if (n < 0 || n > NORM_DECOMP_MAX) {
        /* Cannot happen for valid input within the cluster cap; be a separator. */
        if (vec_reserve(v, 1) < 0)
            return -1;
        vec_put(v, ' ', off, C_X);
        return 0;
    }
    /* Rule 3: marks go when their base is Latin; enclosing marks always go. */
    for (i = 0; i < n; i++) {
        utf8proc_category_t c;
        buf[i] = (utf8proc_int32_t)fold_cp((uint32_t)buf[i]);
        if (buf[i] == 0)
            continue;
        c = utf8proc_category(buf[i]);
        if (c == UTF8PROC_CATEGORY_CF)
            continue; /* format characters go, and are no base for marks */
        if (is_mark_cat(c)) {
            if (c == UTF8PROC_CATEGORY_ME || is_latin_letter(base))
                continue;
        } else {
            base = (uint32_t)buf[i];
        }
        buf[k++] = buf[i];
    }
    /* Deleting format characters and Latin marks can leave marks that were
     * separated by a starter next to each other: put them back in canonical
     * order (stable insertion sort by combining class). */
    for (i = 1; i < k; i++) {
        utf8proc_int32_t x = buf[i];
        int cc = utf8proc_get_property(x)->combining_class;
        utf8proc_ssize_t j = i;
        if (!cc)
            continue;
        while (j > 0) {
            int pc = utf8proc_get_property(buf[j - 1])->combining_class;
            if (pc <= cc)
                break;
            buf[j] = buf[j - 1];
            j--;
        }
        buf[j] = x;
    }
    n = k ? utf8proc_normalize_utf32(buf, k, UTF8PROC_COMPOSE | UTF8PROC_STABLE) : 0;
    if (n < 0)
        n = 0;
    if (vec_reserve(v, (size_t)n) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        uint32_t cp = (uint32_t)buf[i];
        uint8_t c = cp_class(cp);
        if (c != C_DROP)
            vec_put(v, cp, off, c);
    }
    return 0;
}

/* Pass 1: decode and normalise into v, between a leading and trailing separator sentinel. */
static int pass1(struct vec *v, const uint8_t *in, size_t len)
{
    size_t i = 0;

    if (vec_reserve(v, len + 2) < 0)
        return -1;
    vec_put(v, ' ', 0, C_X);
    while (i < len) {
        uint8_t b = in[i];
        utf8proc_int32_t cp;
        utf8proc_ssize_t r;
        size_t start, ncp, clen;

        if (b < 0x80) {
            size_t j = i;
            /* ASCII fast path: capacity for the whole run is reserved already
             * (each byte yields at most one unit). */
            if (vec_reserve(v, len - i + 1) < 0)
                return -1;
            struct unit *o = v->u + v->n; /* a local cursor: no reload through v */
            while (j < len && in[j] < 0x80) {
                uint8_t c = in[j];
                o->cp = (c >= 'A' && c <= 'Z') ? (uint32_t)(c | 0x20) : c;
                o->from = (uint32_t)j;
                o->cls = ascii_cls[c];
                o->single = 0;
                o++;
                j++;
            }
            v->n = (size_t)(o - v->u);
            i = j;
            continue;
        }
        r = utf8proc_iterate(in + i, (utf8proc_ssize_t)(len - i), &cp);
        if (r <= 0) {
            if (vec_reserve(v, 1) < 0)
                return -1;
            vec_put(v, ' ', (uint32_t)i, C_X); /* rule 1: invalid byte */
            i++;
            continue;
        }
        start = i;
        i += (size_t)r;
        ncp = 1;
        clen = 0;
        while (i < len && in[i] >= 0x80) {
            r = utf8proc_iterate(in + i, (utf8proc_ssize_t)(len - i), &cp);
            if (r <= 0 || !cluster_extends((uint32_t)cp))
                break;
            if (ncp == NORM_CLUSTER_MAX)
                clen = i - start; /* zalgo: the marks past the cap are deleted */
            i += (size_t)r;
            ncp++;
        }
        if (!clen)
            clen = i - start;
        if (ncp == 1) {
            /* Fast path: a lone character with no decomposition, no case
             * folding and not ignorable is its own NFKC_Casefold form. */
            const utf8proc_property_t *p;
            utf8proc_iterate(in + start, (utf8proc_ssize_t)clen, &cp);
            p = utf8proc_get_property(cp);
            if (p->decomp_seqindex == UINT16_MAX && p->casefold_seqindex == UINT16_MAX &&
                !p->ignorable && !is_mark_cat((utf8proc_category_t)p->category) &&
                !is_jamo((uint32_t)cp)) {
                uint32_t f = fold_cp((uint32_t)cp);
                uint8_t c = f ? cp_class(f) : C_DROP;
                if (vec_reserve(v, 1) < 0)
                    return -1;
                if (c != C_DROP)
                    vec_put(v, f, (uint32_t)start, c);
                continue;
            }
        }
        if (pass1_cluster(v, in + start, clen, (uint32_t)start) < 0)
            return -1;
    }
    if (vec_reserve(v, 1) < 0)
        return -1;
    vec_put(v, ' ', len ? (uint32_t)(len - 1) : 0, C_X);
    return 0;
}

/* Pass 2 writer: words with separators collapsed into one space unit. */
struct emit {
    struct unit *w; /* next unit to write */
    unsigned pend;  /* separator characters waiting before the next word unit */
    uint32_t pend_from;
};

static void emit_sep(struct emit *e, uint32_t from, unsigned count)
{
    if (!count)
        return;
    if (!e->pend)
        e->pend_from = from;
    e->pend += count;
}

static inline void emit_unit(struct emit *e, uint32_t cp, uint32_t from, uint8_t cls)
{
    struct unit *w = e->w;

    if (e->pend) {
        w->cp = ' ';
        w->from = e->pend_from;
        w->cls = C_X;
        w->single = e->pend == 1;
        w++;
        e->pend = 0;
    }
    w->cp = cp;
    w->from = from;
    w->cls = cls;
    w->single = 0;
    e->w = w + 1;
}

/* Is u[j..] a domain: letters/digits/hyphens, a dot, a letter? */
static int domain_follows(const struct unit *u, size_t n, size_t j)
{
    size_t k = j;

    while (k < n && (u[k].cls == C_L || u[k].cls == C_D || u[k].cp == '-'))
        k++;
    return k > j && k + 1 < n && u[k].cp == '.' && u[k + 1].cls == C_L;
}

/* Rule 6 exception: ASCII digits then one or two ASCII letters ("1st", "5km"). */
static int is_number_unit_word(const struct unit *u, size_t ts, size_t te)
{
    size_t k = ts, d, l = 0;

    while (k < te && u[k].cp >= '0' && u[k].cp <= '9')
        k++;
    d = k - ts;
    while (k < te && u[k].cp >= 'a' && u[k].cp <= 'z') {
        k++;
        l++;
    }
    return d > 0 && l >= 1 && l <= 2 && k == te;
}

/* One token u[ts..te): letters, marks, digits, leet symbols, deleted apostrophes. */
static void pass2_token(struct emit *e, const struct unit *u, size_t ts, size_t te)
{
    size_t k, tail;
    unsigned ntail = 0;
    int has_letter = 0;

    for (;;) {
        if (ts >= te)
            break;
        if (u[ts].cls == C_M || (u[ts].cls == C_S && !((u[ts].cp == '$' || u[ts].cp == '@') &&
                                                       ts + 1 < te && u[ts + 1].cls == C_L))) {
            emit_sep(e, u[ts].from, 1);
            ts++;
        } else if (u[ts].cls == C_DROP) {
            ts++;
        } else {
            break;
        }
    }
    while (te > ts && (u[te - 1].cls == C_S || u[te - 1].cls == C_DROP)) {
        te--;
        if (u[te].cls == C_S)
            ntail++;
    }
    tail = te;
    for (k = ts; k < te; k++) {
        if (u[k].cls == C_L) {
            has_letter = 1;
            break;
        }
    }
    if (has_letter && is_number_unit_word(u, ts, te))
        has_letter = 0;
    for (k = ts; k < te; k++) {
        uint8_t c = u[k].cls;
        if (c == C_DROP)
            continue;
        if (has_letter && (c == C_S || c == C_D) && leet_letter(u[k].cp)) {
            emit_unit(e, leet_letter(u[k].cp), u[k].from, C_L);
            /* The new letter is Latin: marks on it go (rule 3), as they
             * would when the output is normalised again. */
            while (k + 1 < te && (u[k + 1].cls == C_M || u[k + 1].cls == C_DROP))
                k++;
        } else if (c == C_S || (c == C_M && e->pend))
            emit_sep(e, u[k].from, 1); /* a mark with nothing under it */
        else
            emit_unit(e, u[k].cp, u[k].from, c);
    }
    if (ntail) {
        /* the first trailing symbol, for the offset */
        while (u[tail].cls != C_S)
            tail++;
        emit_sep(e, u[tail].from, ntail);
    }
}

/* Pass 2: a (pass 1 output, modified: joined apostrophes dropped) -> b. */
static void pass2(struct vec *a, struct vec *b)
{
    struct unit *u = a->u;
    size_t n = a->n, r = 0;
    struct emit e = {.w = b->u + b->n};

    while (r < n) {
        uint8_t c = u[r].cls;
        size_t ts;

        if (c == C_X || c == C_A || c == C_M) {
            emit_sep(&e, u[r].from, 1);
            r++;
            continue;
        }
        ts = r;
        while (r < n) {
            c = u[r].cls;
            if (c == C_L || c == C_M || c == C_D || c == C_DROP) {
                r++;
            } else if (c == C_S) {
                if (u[r].cp == '@' && r > ts && domain_follows(u, n, r + 1))
                    break;
                r++;
            } else if (c == C_A && r > ts && (u[r - 1].cls == C_L || u[r - 1].cls == C_M) &&
                       r + 1 < n && u[r + 1].cls == C_L && !is_jamo(u[r + 1].cp) &&
                       !is_jamo(u[r - 1].cp)) {
                u[r].cls = C_DROP; /* rule 5 */
                r++;
            } else {
                break;
            }
        }
        pass2_token(&e, u, ts, r);
        if (r < n && u[r].cls == C_S) { /* the e-mail "@" */
            emit_sep(&e, u[r].from, 1);
            r++;
        }
    }
    /* The sentinels made the leading space (flushed before the first word)
     * and leave pend > 0 here for the trailing one. No words: " ". */
    b->n = (size_t)(e.w - b->u);
    vec_put(b, ' ', b->n ? e.pend_from : 0, C_X);
}

static int single_letter_word(const struct unit *u, size_t ws, size_t we)
{
    size_t k;

    if (we <= ws || u[ws].cls != C_L || is_jamo(u[ws].cp))
        return 0;
    for (k = ws + 1; k < we; k++) {
        if (u[k].cls != C_M)
            return 0;
    }
    return 1;
}

/* Collapse runs of 3+ identical letters in out[ws..n) to one. */
static void collapse_repeats(struct vec *out, size_t ws)
{
    struct unit *u = out->u;
    size_t r = ws, w = ws, n = out->n, k;

    while (r < n) {
        size_t run = 1;
        if (u[r].cls == C_L) {
            while (r + run < n && u[r + run].cls == C_L && u[r + run].cp == u[r].cp)
                run++;
        }
        if (run >= 3) { /* keep the last of the run */
            r += run - 1;
            run = 1;
        }
        for (k = 0; k < run; k++)
            u[w++] = u[r + k];
        r += run;
    }
    out->n = w;
}

/* Copy word u[r..we) to o with runs of 3+ identical letters collapsed; returns
 * the end of what was written. */
static struct unit *copy_collapse(struct unit *o, const struct unit *u, size_t r, size_t we)
{
    while (r < we) {
        size_t run = 1, k;
        if (u[r].cls == C_L) {
            while (r + run < we && u[r + run].cls == C_L && u[r + run].cp == u[r].cp)
                run++;
        }
        if (run >= 3) {
            *o++ = u[r + run - 1];
        } else {
            for (k = 0; k < run; k++)
                *o++ = u[r + k];
        }
        r += run;
    }
    return o;
}

static size_t word_end(const struct unit *u, size_t n, size_t ws)
{
    while (ws < n && u[ws].cls != C_X)
        ws++;
    return ws;
}

/* Pass 3: b -> out, spaced-out letters joined, repeats collapsed. */
static void pass3(const struct vec *b, struct vec *out)
{
    const struct unit *u = b->u;
    size_t n = b->n, pos = 1;

    out->n = 0;
    out->u[out->n++] = u[0];
    while (pos < n) {
        size_t we = word_end(u, n, pos), ws = out->n, run = 1, p, e2;

        if (single_letter_word(u, pos, we)) {
            /* count one-letter words joined by single separators */
            p = we;
            while (p + 1 < n && u[p].single) {
                e2 = word_end(u, n, p + 1);
                if (!single_letter_word(u, p + 1, e2))
                    break;
                run++;
                p = e2;
            }
            if (run >= 3) {
                p = pos;
                while (p < n && u[p].cls != C_X) {
                    out->u[out->n++] = u[p++];
                    if (p < n && u[p].cls == C_X && --run > 0)
                        p++;
                }
                collapse_repeats(out, ws);
                if (p < n)
                    out->u[out->n++] = u[p];
                pos = p + 1;
                continue;
            }
        }
        out->n = copy_collapse(out->u + out->n, u, pos, we) - out->u;
        if (we < n)
            out->u[out->n++] = u[we];
        pos = we + 1;
    }
}

static int encode(const struct vec *v, int with_map, struct norm *out)
{
    size_t i, total = 0, o = 0;
    uint8_t tmp[4];

    for (i = 0; i < v->n; i++) {
        uint32_t cp = v->u[i].cp;
        total += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    }
    out->text = malloc(total + 1);
    if (!out->text)
        return -1;
    if (with_map) {
        out->from = malloc(total * sizeof(*out->from));
        if (!out->from)
            return -1;
    }
    for (i = 0; i < v->n; i++) {
        uint32_t cp = v->u[i].cp;
        utf8proc_ssize_t k, nb;
        if (cp < 0x80) {
            tmp[0] = (uint8_t)cp;
            nb = 1;
        } else {
            nb = utf8proc_encode_char((utf8proc_int32_t)cp, tmp);
        }
        for (k = 0; k < nb; k++) {
            out->text[o] = (char)tmp[k];
            if (with_map)
                out->from[o] = v->u[i].from;
            o++;
        }
    }
    out->text[o] = '\0';
    out->len = o;
    return 0;
}

int norm_text(const char *in, size_t len, int with_map, struct norm *out)
{
    struct vec a = {0}, b = {0};
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (len > NORM_MAX_IN) {
        len = NORM_MAX_IN;
        /* back up to a character boundary (at most 3 continuation bytes) */
        while (len > NORM_MAX_IN - 3 && ((const uint8_t *)in)[len] >= 0x80 &&
               ((const uint8_t *)in)[len] < 0xC0)
            len--;
    }
    if (pass1(&a, (const uint8_t *)in, len) < 0)
        goto out;
    b.u = malloc((a.n + 2) * sizeof(*b.u));
    if (!b.u)
        goto out;
    b.cap = a.n + 2;
    pass2(&a, &b);
    /* pass 3 output fits in a: it never grows past pass 2's count */
    pass3(&b, &a);
    if (encode(&a, with_map, out) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        norm_free(out);
    free(a.u);
    free(b.u);
    return rc;
}

void norm_free(struct norm *n)
{
    free(n->text);
    free(n->from);
    memset(n, 0, sizeof(*n));
}
