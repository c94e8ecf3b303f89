/*
 * extract.c -- page text for the safeguarding monitor.
 *
 * DESIGN. Two layers, each a state machine that takes one byte at a time and
 * keeps everything it needs in struct extract, so a chunk boundary can fall
 * anywhere:
 *
 *   body bytes -> decoder (zlib / brotli / none) -> parser (HTML / JSON / text)
 *              -> emit() -> text buffer (capped) -> extract_text()
 *
 * The decoder writes into a small buffer on the stack and hands each piece
 * to the parser, counting decoded bytes against the input cap. The parsers
 * never look back at earlier input: a tag name, attribute name or character
 * reference in progress is copied into a small fixed array in the struct.
 * emit() collapses whitespace and controls into one space, counts the text
 * cap, and records where the last whole word ends (x->ready), which is what
 * extract_text() hands out.
 */
#include "common/compat.h"

#include <limits.h>

#include <brotli/decode.h>
#include <zlib.h>

#include "common/buf.h"
#include "common/slice.h"
#include "monitor/extract.h"

#define IN_CAP_MIN (1024u * 1024u)
#define NAME_MAX_LEN 16 /* tag and attribute names we care about are shorter */
#define ENT_MAX 32      /* a character reference longer than this is text */
#define META_MAX 1024   /* bytes of <meta name="description" content> kept */
#define SCRATCH 8192    /* decoder output per round, on the stack */

/*
 * Brotli's decoder holds a ring buffer as large as the stream's window needs
 * for what one meta-block announces (up to 16 MiB for the largest window the
 * format allows without the "large window" extension, which we do not
 * enable), plus its tables. We allow that much, so every valid stream
 * decodes; the ring buffer is written only as far as we decode, and we stop
 * at in_cap, so the memory actually touched stays near in_cap even when the
 * allocation is larger (glibc maps large blocks lazily). A stream that asks
 * for more than EXTRACT_BR_MEM is not valid brotli and fails.
 */
#define EXTRACT_BR_MEM ((size_t)17 * 1024 * 1024)
#define ZLIB_MEM ((size_t)64 * 1024) /* inflate needs about 7 KiB + its 32 KiB window */

enum html_state {
    H_TEXT,
    H_TAG_OPEN,      /* after '<' */
    H_END_TAG_OPEN,  /* after "</" */
    H_TAG_NAME,      /* in the tag name */
    H_BEFORE_ATTR,   /* between attributes */
    H_ATTR_NAME,     /* in an attribute name */
    H_AFTER_ATTR,    /* after an attribute name, before '=' or the next one */
    H_BEFORE_VALUE,  /* after '=' */
    H_VALUE_DQ,      /* "value" */
    H_VALUE_SQ,      /* 'value' */
    H_VALUE_UQ,      /* value */
    H_MARKUP,        /* after "<!" */
    H_MARKUP_DASH,   /* after "<!-" */
    H_COMMENT,       /* after "<!--", until "-->" */
    H_BOGUS_COMMENT, /* "<!DOCTYPE ...>", "<?xml ...?>" ... until '>' */
    H_RAW,           /* inside script/style/...: until "</name" */
    H_ENTITY         /* after '&' (text or attribute value) */
};

enum json_state {
    J_OUT,     /* between tokens */
    J_STR,     /* in a string */
    J_ESC,     /* after a backslash */
    J_UHEX,    /* in the four hex digits of \uXXXX */
    J_PAIR_BS, /* after a high surrogate escape: expecting the '\' of the low one */
    J_PAIR_U   /* after that '\': expecting 'u' */
};

/* What happens to the characters of the attribute value being read. */
enum av_mode { AV_IGNORE, AV_TEXT, AV_META_NAME, AV_META_CONTENT };

/* Elements whose content is skipped (index into raw_tags). */
static const char *const raw_tags[] = {"script", "style", "noscript", "template", "svg"};

/* Elements that may appear in <head> without ending it. */
static const char *const head_tags[] = {"title", "meta",     "link",     "style",    "script",
                                        "base",  "noscript", "template", "basefont", "bgsound"};

struct extract {
    enum extract_type type;
    enum extract_coding coding;
    size_t text_cap;
    size_t in_cap;
    size_t decoded; /* decoded body bytes handed to the parser */
    size_t total;   /* text bytes produced */
    int capped;     /* a cap was reached */
    int failed;     /* a decoding error; err says what */
    int finished;
    char err[96];

    /* output */
    struct buf text;
    size_t ready;   /* text.p[0 .. ready) is whole words */
    int last_space; /* the last byte produced was a space (or nothing yet) */

    /* decoder */
    z_stream *zs;
    int z_started; /* deflate: header seen, window bits chosen */
    int z_end;     /* zlib said Z_STREAM_END */
    unsigned char zhdr[2];
    int zhdr_len;
    BrotliDecoderState *br;
    int br_end;
    size_t dec_mem; /* bytes the brotli decoder holds */
    size_t dec_mem_max;
    size_t dec_mem_peak;

    /* HTML */
    enum html_state hs;
    enum html_state ent_ret; /* state to go back to after an entity */
    char tag[NAME_MAX_LEN];  /* lower-cased tag name (truncated) */
    int tag_len;             /* may exceed NAME_MAX_LEN: then no name matches */
    int tag_end;             /* "</tag" */
    int slash;               /* the last thing in the tag so far is '/' */
    char attr[NAME_MAX_LEN]; /* lower-cased attribute name */
    int attr_len;
    enum av_mode av;              /* mode of the value being read */
    int raw;                      /* index into raw_tags while in H_RAW */
    int raw_match;                /* bytes of "</name" matched */
    int comment_dashes;           /* '-' seen in a row in a comment */
    int in_head;                  /* inside <head>: attributes are not text */
    char meta_name[NAME_MAX_LEN]; /* <meta name=...> value, lower-cased */
    int meta_name_len;
    int meta_has_content;
    char meta_content[META_MAX];
    size_t meta_content_len;
    char ent[ENT_MAX]; /* the reference after '&', as written */
    int ent_len;

    /* JSON */
    enum json_state js;
    unsigned char jstack[32]; /* bit set = object; deeper nesting is not tracked */
    unsigned jdepth;
    int jexpect_key; /* the next string in this object is a key */
    int jin_key;     /* the current string is a key: not text */
    unsigned jhex;   /* \u digits so far */
    int jhex_n;
    unsigned jhigh; /* a high surrogate waiting for its low half, or 0 */
};

/* --- output --------------------------------------------------------------------------- */

static void cap_reached(struct extract *x)
{
    x->capped = 1;
    x->ready = x->text.len;
}

/* Produce one byte of text: controls and whitespace become one space, runs collapse. */
static void emit(struct extract *x, unsigned char c)
{
    int space = c <= 0x20 || c == 0x7f;

    if (x->capped || x->failed)
        return;
    if (space && x->last_space)
        return;
    if (x->total >= x->text_cap) {
        cap_reached(x);
        return;
    }
    if (space)
        c = ' ';
    if (x->text.len + 1 < x->text.size) {
        /* the common case, one byte at a time: no call */
        x->text.p[x->text.len++] = (char)c;
        x->text.p[x->text.len] = '\0';
    } else if (buf_append(&x->text, &c, 1) < 0) {
        cap_reached(x); /* cannot happen: the buffer's cap is text_cap */
        return;
    }
    x->total++;
    x->last_space = space;
    if (space || x->text.len - x->ready > EXTRACT_WORD_HOLD)
        x->ready = x->text.len;
    if (x->total >= x->text_cap)
        cap_reached(x);
}

/* Produce a code point as UTF-8; invalid ones become U+FFFD. */
static void emit_cp(struct extract *x, unsigned cp, void (*put)(struct extract *, unsigned char))
{
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0)
        cp = 0xfffd;
    if (cp < 0x80) {
        put(x, (unsigned char)cp);
    } else if (cp < 0x800) {
        put(x, (unsigned char)(0xc0 | (cp >> 6)));
        put(x, (unsigned char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        put(x, (unsigned char)(0xe0 | (cp >> 12)));
        put(x, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
        put(x, (unsigned char)(0x80 | (cp & 0x3f)));
    } else {
        put(x, (unsigned char)(0xf0 | (cp >> 18)));
        put(x, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)));
        put(x, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
        put(x, (unsigned char)(0x80 | (cp & 0x3f)));
    }
}

static void set_error(struct extract *x, const char *what, const char *detail)
{
    snprintf(x->err, sizeof(x->err), "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
    x->failed = 1;
    x->ready = x->text.len;
}

/* --- content type and coding ------------------------------------------------------------ */

static int ieq(struct slice s, const char *lit)
{
    size_t n = strlen(lit);

    if (s.len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s.p[i];
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a + 32);
        if (a != (unsigned char)lit[i])
            return 0;
    }
    return 1;
}

static struct slice trim_ws(struct slice s)
{
    while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t' || s.p[0] == '\r' || s.p[0] == '\n')) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t' ||
                         s.p[s.len - 1] == '\r' || s.p[s.len - 1] == '\n'))
        s.len--;
    return s;
}

enum extract_type extract_type_of(const char *content_type, size_t len)
{
    struct slice s;
    const char *semi;
    size_t slash;

    if (!content_type)
        return EXTRACT_NONE;
    semi = memchr(content_type, ';', len);
    s = trim_ws(slice_make(content_type, semi ? (size_t)(semi - content_type) : len));
    if (ieq(s, "text/html") || ieq(s, "application/xhtml+xml"))
        return EXTRACT_HTML;
    if (ieq(s, "text/plain"))
        return EXTRACT_TEXT;
    if (ieq(s, "application/json") || ieq(s, "text/json"))
        return EXTRACT_JSON;
    /* application/SOMETHING+json */
    for (slash = 0; slash < s.len && s.p[slash] != '/'; slash++)
        ;
    if (slash < s.len && ieq(slice_make(s.p, slash), "application") && s.len - slash > 6 &&
        ieq(slice_make(s.p + s.len - 5, 5), "+json"))
        return EXTRACT_JSON;
    return EXTRACT_NONE;
}

enum extract_coding extract_coding_of(const char *content_encoding, size_t len)
{
    enum extract_coding found = EXTRACT_IDENTITY;
    int n = 0;
    size_t i = 0;

    if (!content_encoding)
        return EXTRACT_IDENTITY;
    while (i <= len) {
        size_t j = i;
        struct slice tok;
        enum extract_coding c;

        while (j < len && content_encoding[j] != ',')
            j++;
        tok = trim_ws(slice_make(content_encoding + i, j - i));
        i = j + 1;
        if (tok.len == 0 || ieq(tok, "identity"))
            continue;
        if (ieq(tok, "gzip") || ieq(tok, "x-gzip"))
            c = EXTRACT_GZIP;
        else if (ieq(tok, "deflate"))
            c = EXTRACT_DEFLATE;
        else if (ieq(tok, "br"))
            c = EXTRACT_BR;
        else
            return EXTRACT_UNSUPPORTED;
        found = c;
        n++;
    }
    return n > 1 ? EXTRACT_UNSUPPORTED : found;
}

/* --- HTML ------------------------------------------------------------------------------ */

struct entity {
    const char *name;
    unsigned cp;
};

/*
 * Named character references: the five of XML, spaces and punctuation that
 * break or join words, and the accented letters of the languages in
 * docs/monitoring.md written with Latin script. Names are case-sensitive.
 */
/* clang-format off */
static const struct entity entities[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''},
    {"nbsp", ' '}, {"shy", 0xad}, {"zwj", 0x200d}, {"zwnj", 0x200c}, {"ZeroWidthSpace", 0x200b},
    {"ensp", 0x2002}, {"emsp", 0x2003}, {"thinsp", 0x2009}, {"lsquo", 0x2018}, {"rsquo", 0x2019},
    {"sbquo", 0x201a}, {"ldquo", 0x201c}, {"rdquo", 0x201d}, {"bdquo", 0x201e}, {"ndash", 0x2013},
    {"mdash", 0x2014}, {"hellip", 0x2026}, {"laquo", 0xab}, {"raquo", 0xbb}, {"lsaquo", 0x2039},
    {"rsaquo", 0x203a}, {"bull", 0x2022}, {"middot", 0xb7}, {"copy", 0xa9}, {"reg", 0xae},
    {"trade", 0x2122}, {"euro", 0x20ac}, {"pound", 0xa3}, {"cent", 0xa2}, {"yen", 0xa5},
    {"deg", 0xb0}, {"times", 0xd7}, {"divide", 0xf7}, {"iexcl", 0xa1}, {"iquest", 0xbf},
    {"sect", 0xa7}, {"para", 0xb6}, {"ordf", 0xaa}, {"ordm", 0xba}, {"szlig", 0xdf},
    /* French, Spanish, Portuguese, Welsh (Latin-1) */
    {"Agrave", 0xc0}, {"Aacute", 0xc1}, {"Acirc", 0xc2}, {"Atilde", 0xc3}, {"Auml", 0xc4},
    {"Aring", 0xc5}, {"AElig", 0xc6}, {"Ccedil", 0xc7}, {"Egrave", 0xc8}, {"Eacute", 0xc9},
    {"Ecirc", 0xca}, {"Euml", 0xcb}, {"Igrave", 0xcc}, {"Iacute", 0xcd}, {"Icirc", 0xce},
    {"Iuml", 0xcf}, {"Ntilde", 0xd1}, {"Ograve", 0xd2}, {"Oacute", 0xd3}, {"Ocirc", 0xd4},
    {"Otilde", 0xd5}, {"Ouml", 0xd6}, {"Oslash", 0xd8}, {"Ugrave", 0xd9}, {"Uacute", 0xda},
    {"Ucirc", 0xdb}, {"Uuml", 0xdc}, {"Yacute", 0xdd}, {"agrave", 0xe0}, {"aacute", 0xe1},
    {"acirc", 0xe2}, {"atilde", 0xe3}, {"auml", 0xe4}, {"aring", 0xe5}, {"aelig", 0xe6},
    {"ccedil", 0xe7}, {"egrave", 0xe8}, {"eacute", 0xe9}, {"ecirc", 0xea}, {"euml", 0xeb},
    {"igrave", 0xec}, {"iacute", 0xed}, {"icirc", 0xee}, {"iuml", 0xef}, {"ntilde", 0xf1},
    {"ograve", 0xf2}, {"oacute", 0xf3}, {"ocirc", 0xf4}, {"otilde", 0xf5}, {"ouml", 0xf6},
    {"oslash", 0xf8}, {"ugrave", 0xf9}, {"uacute", 0xfa}, {"ucirc", 0xfb}, {"uuml", 0xfc},
    {"yacute", 0xfd}, {"yuml", 0xff}, {"Yuml", 0x178}, {"OElig", 0x152}, {"oelig", 0x153},
    /* Welsh circumflexes */
    {"Wcirc", 0x174}, {"wcirc", 0x175}, {"Ycirc", 0x176}, {"ycirc", 0x177},
    /* Polish */
    {"Aogon", 0x104}, {"aogon", 0x105}, {"Cacute", 0x106}, {"cacute", 0x107}, {"Eogon", 0x118},
    {"eogon", 0x119}, {"Lstrok", 0x141}, {"lstrok", 0x142}, {"Nacute", 0x143}, {"nacute", 0x144},
    {"Sacute", 0x15a}, {"sacute", 0x15b}, {"Zacute", 0x179}, {"zacute", 0x17a}, {"Zdot", 0x17b},
    {"zdot", 0x17c}, {"Zcaron", 0x17d}, {"zcaron", 0x17e}, {"Scaron", 0x160}, {"scaron", 0x161},
    /* Romanian (HTML has names for the cedilla forms only) */
    {"Abreve", 0x102}, {"abreve", 0x103}, {"Scedil", 0x15e}, {"scedil", 0x15f}, {"Tcedil", 0x162},
    {"tcedil", 0x163},
};
/* clang-format on */

/* What browsers read for &#128; .. &#159; (the Windows-1252 characters). */
static const unsigned short cp1252[32] = {
    0x20ac, 0x81,   0x201a, 0x192,  0x201e, 0x2026, 0x2020, 0x2021, 0x2c6,  0x2030, 0x160,
    0x2039, 0x152,  0x8d,   0x17d,  0x8f,   0x90,   0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
    0x2013, 0x2014, 0x2dc,  0x2122, 0x161,  0x203a, 0x153,  0x9d,   0x17e,  0x178};

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_val(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int is_html_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static int name_is(const char *name, int len, const char *lit)
{
    size_t n = strlen(lit);

    return len >= 0 && (size_t)len == n && memcmp(name, lit, n) == 0;
}

static int tag_is(const struct extract *x, const char *lit)
{
    return name_is(x->tag, x->tag_len, lit);
}

/* Add c to a lower-cased name; a name longer than NAME_MAX_LEN matches nothing. */
static void name_add(char *name, int *len, unsigned char c)
{
    if (*len < NAME_MAX_LEN)
        name[*len] = (char)lower(c);
    if (*len <= NAME_MAX_LEN)
        (*len)++; /* NAME_MAX_LEN + 1 means "too long": matches nothing */
}

/* A character of an attribute value, by the mode chosen when the value started. */
static void attr_put(struct extract *x, unsigned char c)
{
    switch (x->av) {
    case AV_TEXT:
        emit(x, c);
        break;
    case AV_META_NAME:
        name_add(x->meta_name, &x->meta_name_len, c);
        break;
    case AV_META_CONTENT:
        if (x->meta_content_len < META_MAX)
            x->meta_content[x->meta_content_len++] = (char)c;
        break;
    case AV_IGNORE:
        break;
    }
}

/* Where decoded characters of a reference go: the text, or the attribute value. */
static void ent_put(struct extract *x, unsigned char c)
{
    if (x->ent_ret == H_TEXT)
        emit(x, c);
    else
        attr_put(x, c);
}

/* The reference was not one: output it as written. */
static void ent_literal(struct extract *x)
{
    ent_put(x, '&');
    for (int i = 0; i < x->ent_len; i++)
        ent_put(x, (unsigned char)x->ent[i]);
}

/*
 * The reference in x->ent is complete (terminated by ';' if semi). Output
 * what it stands for, or the text as written if it stands for nothing.
 */
static void ent_resolve(struct extract *x, int semi)
{
    if (x->ent_len >= 2 && x->ent[0] == '#') {
        int hex = x->ent[1] == 'x' || x->ent[1] == 'X';
        unsigned long v = 0;
        int i = hex ? 2 : 1, digits = 0;

        for (; i < x->ent_len; i++) {
            int d = hex ? hex_val((unsigned char)x->ent[i]) : x->ent[i] - '0';
            v = v * (hex ? 16u : 10u) + (unsigned long)d;
            if (v > 0x10ffff)
                v = 0x110000; /* stays invalid however many digits follow */
            digits++;
        }
        if (digits > 0) {
            if (v >= 0x80 && v <= 0x9f)
                v = cp1252[v - 0x80];
            emit_cp(x, (unsigned)v, ent_put);
            return;
        }
    } else if (semi) {
        for (size_t i = 0; i < HAVEN_ARRAY_LEN(entities); i++) {
            if (name_is(x->ent, x->ent_len, entities[i].name)) {
                emit_cp(x, entities[i].cp, ent_put);
                return;
            }
        }
    }
    ent_literal(x);
    if (semi)
        ent_put(x, ';');
}

/*
 * One byte inside a reference. Returns 1 when the byte ended the reference
 * without belonging to it, so the caller processes it again in ent_ret.
 */
static int ent_byte(struct extract *x, unsigned char c)
{
    int numeric = x->ent_len >= 1 && x->ent[0] == '#';
    int hex = numeric && x->ent_len >= 2 && (x->ent[1] == 'x' || x->ent[1] == 'X');
    int ok;

    if (c == ';') {
        ent_resolve(x, 1);
        x->hs = x->ent_ret;
        return 0;
    }
    if (x->ent_len == 0)
        ok = is_alpha(c) || is_digit(c) || c == '#';
    else if (numeric && x->ent_len == 1)
        ok = is_digit(c) || c == 'x' || c == 'X';
    else if (hex)
        ok = hex_val(c) >= 0;
    else if (numeric)
        ok = is_digit(c);
    else
        ok = is_alpha(c) || is_digit(c);
    if (ok && x->ent_len < ENT_MAX) {
        x->ent[x->ent_len++] = (char)c;
        return 0;
    }
    /* Ended without ';': numbers are still read (as browsers do), names are not. */
    ent_resolve(x, 0);
    x->hs = x->ent_ret;
    return 1;
}

static int is_raw_tag(const struct extract *x)
{
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(raw_tags); i++)
        if (tag_is(x, raw_tags[i]))
            return (int)i;
    return -1;
}

static int is_head_tag(const struct extract *x)
{
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(head_tags); i++)
        if (tag_is(x, head_tags[i]))
            return 1;
    return 0;
}

/* An attribute value starts: decide where its characters go. */
static void attr_value_start(struct extract *x)
{
    x->av = AV_IGNORE;
    if (x->tag_end)
        return;
    if (tag_is(x, "meta")) {
        if (name_is(x->attr, x->attr_len, "name")) {
            x->meta_name_len = 0;
            x->av = AV_META_NAME;
        } else if (name_is(x->attr, x->attr_len, "content") && !x->meta_has_content) {
            x->meta_has_content = 1;
            x->av = AV_META_CONTENT;
        }
        return;
    }
    if (x->in_head && is_head_tag(x))
        return; /* <link title=...> and the like are not shown */
    if (name_is(x->attr, x->attr_len, "alt") || name_is(x->attr, x->attr_len, "title") ||
        name_is(x->attr, x->attr_len, "placeholder") ||
        name_is(x->attr, x->attr_len, "aria-label")) {
        x->av = AV_TEXT;
        emit(x, ' ');
    }
}

static void attr_value_end(struct extract *x)
{
    if (x->av == AV_TEXT)
        emit(x, ' ');
    x->av = AV_IGNORE;
}

static void tag_begin(struct extract *x, int end)
{
    x->tag_len = 0;
    x->tag_end = end;
    x->slash = 0;
    x->meta_name_len = 0;
    x->meta_has_content = 0;
    x->meta_content_len = 0;
    x->av = AV_IGNORE;
}

/* '>' ended a tag: a space, and what the tag means for what follows. */
static void tag_done(struct extract *x, int self_closing)
{
    int raw = is_raw_tag(x);

    emit(x, ' ');
    x->hs = H_TEXT;
    if (x->tag_end) {
        if (tag_is(x, "head"))
            x->in_head = 0;
        return;
    }
    if (tag_is(x, "head")) {
        x->in_head = 1;
    } else if (!is_head_tag(x)) {
        x->in_head = 0; /* <body> or any body element ends the head, as in browsers */
    }
    if (tag_is(x, "meta") && name_is(x->meta_name, x->meta_name_len, "description")) {
        for (size_t i = 0; i < x->meta_content_len; i++)
            emit(x, (unsigned char)x->meta_content[i]);
        emit(x, ' ');
    }
    if (raw >= 0 && !(self_closing && tag_is(x, "svg"))) {
        x->raw = raw;
        x->raw_match = 0;
        x->hs = H_RAW;
    }
}

/* In H_RAW: look for "</name" followed by a space, '/' or '>'. */
static void raw_byte(struct extract *x, unsigned char c)
{
    const char *name = raw_tags[x->raw];
    int n = (int)strlen(name);

    if (x->raw_match == n + 2) {
        if (is_html_space(c) || c == '/' || c == '>') {
            tag_begin(x, 1);
            memcpy(x->tag, name, (size_t)n);
            x->tag_len = n;
            x->hs = H_BEFORE_ATTR;
            if (c == '>')
                tag_done(x, 0);
            return;
        }
        x->raw_match = 0;
    }
    if (x->raw_match == 0) {
        x->raw_match = c == '<';
    } else if (x->raw_match == 1) {
        x->raw_match = c == '/' ? 2 : (c == '<');
    } else if (lower(c) == (unsigned char)name[x->raw_match - 2]) {
        x->raw_match++;
    } else {
        x->raw_match = c == '<';
    }
}

static void html_byte(struct extract *x, unsigned char c)
{
    for (;;) {
        switch (x->hs) {
        case H_TEXT:
            if (c == '<') {
                x->hs = H_TAG_OPEN;
            } else if (c == '&') {
                x->ent_len = 0;
                x->ent_ret = H_TEXT;
                x->hs = H_ENTITY;
            } else {
                emit(x, c);
            }
            return;
        case H_TAG_OPEN:
            if (is_alpha(c)) {
                tag_begin(x, 0);
                x->hs = H_TAG_NAME;
                continue;
            }
            if (c == '/') {
                x->hs = H_END_TAG_OPEN;
            } else if (c == '!') {
                x->hs = H_MARKUP;
            } else if (c == '?') {
                x->hs = H_BOGUS_COMMENT;
            } else {
                emit(x, '<'); /* "a < b" is text */
                x->hs = H_TEXT;
                continue;
            }
            return;
        case H_END_TAG_OPEN:
            if (is_alpha(c)) {
                tag_begin(x, 1);
                x->hs = H_TAG_NAME;
                continue;
            }
            x->hs = c == '>' ? H_TEXT : H_BOGUS_COMMENT;
            return;
        case H_TAG_NAME:
            if (is_html_space(c) || c == '/') {
                x->hs = H_BEFORE_ATTR;
                continue;
            }
            if (c == '>') {
                tag_done(x, 0);
                return;
            }
            name_add(x->tag, &x->tag_len, c);
            return;
        case H_BEFORE_ATTR:
            if (c == '>') {
                tag_done(x, x->slash);
                return;
            }
            if (c == '/') {
                x->slash = 1;
                return;
            }
            if (is_html_space(c))
                return;
            x->slash = 0;
            x->attr_len = 0;
            x->hs = H_ATTR_NAME;
            name_add(x->attr, &x->attr_len, c); /* even '=' or a quote: as browsers do */
            return;
        case H_ATTR_NAME:
            if (c == '=') {
                x->hs = H_BEFORE_VALUE;
            } else if (is_html_space(c)) {
                x->hs = H_AFTER_ATTR;
            } else if (c == '/' || c == '>') {
                x->hs = H_BEFORE_ATTR;
                continue;
            } else {
                name_add(x->attr, &x->attr_len, c);
            }
            return;
        case H_AFTER_ATTR:
            if (c == '=') {
                x->hs = H_BEFORE_VALUE;
                return;
            }
            if (is_html_space(c))
                return;
            x->hs = H_BEFORE_ATTR;
            continue;
        case H_BEFORE_VALUE:
            if (is_html_space(c))
                return;
            if (c == '>') {
                tag_done(x, 0);
                return;
            }
            attr_value_start(x);
            if (c == '"') {
                x->hs = H_VALUE_DQ;
            } else if (c == '\'') {
                x->hs = H_VALUE_SQ;
            } else {
                x->hs = H_VALUE_UQ;
                continue;
            }
            return;
        case H_VALUE_DQ:
        case H_VALUE_SQ:
        case H_VALUE_UQ:
            if ((x->hs == H_VALUE_DQ && c == '"') || (x->hs == H_VALUE_SQ && c == '\'')) {
                attr_value_end(x);
                x->hs = H_BEFORE_ATTR;
            } else if (x->hs == H_VALUE_UQ && (is_html_space(c) || c == '>')) {
                attr_value_end(x);
                x->hs = H_BEFORE_ATTR;
                continue;
            } else if (c == '&') {
                x->ent_len = 0;
                x->ent_ret = x->hs;
                x->hs = H_ENTITY;
            } else {
                attr_put(x, c);
            }
            return;
        case H_MARKUP:
            if (c == '-') {
                x->hs = H_MARKUP_DASH;
                return;
            }
            x->hs = H_BOGUS_COMMENT;
            continue;
        case H_MARKUP_DASH:
            if (c == '-') {
                x->comment_dashes = 2; /* so "<!-->" and "<!--->" end at once, as in HTML5 */
                x->hs = H_COMMENT;
                return;
            }
            x->hs = H_BOGUS_COMMENT;
            continue;
        case H_COMMENT:
            if (c == '>' && x->comment_dashes >= 2) {
                emit(x, ' ');
                x->hs = H_TEXT;
            } else if (c == '-') {
                if (x->comment_dashes < 2)
                    x->comment_dashes++;
            } else {
                x->comment_dashes = 0;
            }
            return;
        case H_BOGUS_COMMENT:
            if (c == '>') {
                emit(x, ' ');
                x->hs = H_TEXT;
            }
            return;
        case H_RAW:
            raw_byte(x, c);
            return;
        case H_ENTITY:
            if (ent_byte(x, c))
                continue;
            return;
        }
        return;
    }
}

/* End of body in the middle of something: keep what a browser would show. */
static void html_finish(struct extract *x)
{
    if (x->hs == H_ENTITY) {
        ent_resolve(x, 0);
        x->hs = x->ent_ret;
    }
    if (x->hs == H_TAG_OPEN)
        emit(x, '<');
}

/* --- JSON ------------------------------------------------------------------------------ */

static int json_in_object(const struct extract *x)
{
    unsigned d = x->jdepth;

    if (d == 0 || d > sizeof(x->jstack) * 8)
        return 0;
    d--;
    return (x->jstack[d / 8] >> (d % 8)) & 1;
}

static void json_put(struct extract *x, unsigned char c)
{
    if (!x->jin_key)
        emit(x, c);
}

static void json_cp(struct extract *x, unsigned cp)
{
    emit_cp(x, cp, json_put);
}

/* A complete \uXXXX escape with value v. */
static void json_u(struct extract *x, unsigned v)
{
    if (x->jhigh) {
        if (v >= 0xdc00 && v <= 0xdfff) {
            json_cp(x, 0x10000 + ((x->jhigh - 0xd800) << 10) + (v - 0xdc00));
            x->jhigh = 0;
            x->js = J_STR;
            return;
        }
        json_cp(x, 0xfffd); /* unpaired high surrogate */
        x->jhigh = 0;
    }
    if (v >= 0xd800 && v <= 0xdbff) {
        x->jhigh = v;
        x->js = J_PAIR_BS;
        return;
    }
    json_cp(x, v); /* a lone low surrogate becomes U+FFFD there */
    x->js = J_STR;
}

static void json_byte(struct extract *x, unsigned char c)
{
    for (;;) {
        switch (x->js) {
        case J_OUT:
            if (c == '"') {
                x->jin_key = json_in_object(x) && x->jexpect_key;
                if (!x->jin_key)
                    emit(x, ' ');
                x->js = J_STR;
            } else if (c == '{' || c == '[') {
                if (x->jdepth < sizeof(x->jstack) * 8) {
                    unsigned d = x->jdepth;
                    if (c == '{')
                        x->jstack[d / 8] = (unsigned char)(x->jstack[d / 8] | (1u << (d % 8)));
                    else
                        x->jstack[d / 8] = (unsigned char)(x->jstack[d / 8] & ~(1u << (d % 8)));
                }
                if (x->jdepth < UINT_MAX)
                    x->jdepth++;
                x->jexpect_key = c == '{';
            } else if (c == '}' || c == ']') {
                if (x->jdepth > 0)
                    x->jdepth--;
                x->jexpect_key = 0;
            } else if (c == ',') {
                x->jexpect_key = json_in_object(x);
            } else if (c == ':') {
                x->jexpect_key = 0;
            }
            return;
        case J_STR:
            if (c == '"') {
                if (!x->jin_key)
                    emit(x, ' ');
                x->jin_key = 0;
                x->jexpect_key = 0;
                x->js = J_OUT;
            } else if (c == '\\') {
                x->js = J_ESC;
            } else {
                json_put(x, c);
            }
            return;
        case J_ESC:
            x->js = J_STR;
            switch (c) {
            case 'u':
                x->jhex = 0;
                x->jhex_n = 0;
                x->js = J_UHEX;
                break;
            case 'n':
            case 't':
            case 'r':
            case 'b':
            case 'f':
                json_put(x, ' ');
                break;
            default: /* \" \\ \/ and, tolerantly, anything else as itself */
                json_put(x, c);
                break;
            }
            return;
        case J_UHEX: {
            int d = hex_val(c);
            if (d < 0) {
                /* "\u12" then something else: a bad escape; read the byte as string text */
                x->jhigh = 0;
                json_cp(x, 0xfffd);
                x->js = J_STR;
                continue;
            }
            x->jhex = x->jhex * 16 + (unsigned)d;
            if (++x->jhex_n == 4)
                json_u(x, x->jhex);
            return;
        }
        case J_PAIR_BS:
            if (c == '\\') {
                x->js = J_PAIR_U;
                return;
            }
            json_cp(x, 0xfffd);
            x->jhigh = 0;
            x->js = J_STR;
            continue;
        case J_PAIR_U:
            if (c == 'u') {
                x->jhex = 0;
                x->jhex_n = 0;
                x->js = J_UHEX;
                return;
            }
            /* "\uD83D\n": the high half is lost, the other escape is read */
            json_cp(x, 0xfffd);
            x->jhigh = 0;
            x->js = J_ESC;
            continue;
        }
        return;
    }
}

static void json_finish(struct extract *x)
{
    if (x->jhigh)
        json_cp(x, 0xfffd);
    x->jhigh = 0;
}

/* --- the parser for decoded bytes ------------------------------------------------------ */

/* Decoded body bytes: count them against the input cap and parse them. */
static void parse(struct extract *x, const unsigned char *p, size_t n)
{
    if (x->capped || x->failed)
        return;
    if (n > x->in_cap - x->decoded)
        n = x->in_cap - x->decoded;
    x->decoded += n;
    for (size_t i = 0; i < n && !x->capped; i++) {
        switch (x->type) {
        case EXTRACT_HTML:
            html_byte(x, p[i]);
            break;
        case EXTRACT_JSON:
            json_byte(x, p[i]);
            break;
        case EXTRACT_TEXT:
            emit(x, p[i]);
            break;
        case EXTRACT_NONE:
            return;
        }
    }
    if (x->decoded >= x->in_cap)
        cap_reached(x);
}

/* --- decoders -------------------------------------------------------------------------- */

static void decoder_free(struct extract *x)
{
    if (x->zs) {
        inflateEnd(x->zs);
        free(x->zs);
        x->zs = NULL;
    }
    if (x->br) {
        BrotliDecoderDestroyInstance(x->br);
        x->br = NULL;
    }
}

/*
 * Allocation hooks for zlib and brotli: count what the decoder holds (for
 * extract_memory) and refuse past dec_mem_max.
 */
struct dec_block {
    size_t size;
    max_align_t align;
};

static void *dec_alloc(struct extract *x, size_t size)
{
    size_t head = offsetof(struct dec_block, align);
    struct dec_block *b;

    if (size > x->dec_mem_max || x->dec_mem > x->dec_mem_max - size)
        return NULL; /* the decoder reports it as a memory error */
    b = malloc(head + size);
    if (!b)
        return NULL;
    b->size = size;
    x->dec_mem += size;
    if (x->dec_mem > x->dec_mem_peak)
        x->dec_mem_peak = x->dec_mem;
    return (char *)b + head;
}

static void dec_free(struct extract *x, void *p)
{
    size_t head = offsetof(struct dec_block, align);
    struct dec_block *b;

    if (!p)
        return;
    b = (struct dec_block *)(void *)((char *)p - head);
    x->dec_mem -= b->size;
    free(b);
}

static void *br_alloc(void *opaque, size_t size)
{
    return dec_alloc(opaque, size);
}

static void br_free(void *opaque, void *p)
{
    dec_free(opaque, p);
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    if (size != 0 && items > SIZE_MAX / size)
        return NULL;
    return dec_alloc(opaque, (size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p)
{
    dec_free(opaque, p);
}

/* Run zlib over in; output goes to parse(). */
static void inflate_some(struct extract *x, const unsigned char *in, size_t len)
{
    unsigned char out[SCRATCH];

    x->zs->next_in = (Bytef *)(uintptr_t)in; /* zlib's API is not const */
    while (len > 0 && !x->z_end && !x->capped && !x->failed) {
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        int rc = Z_OK;

        x->zs->avail_in = chunk;
        while ((x->zs->avail_in > 0 || rc == Z_OK) && !x->capped) {
            x->zs->next_out = out;
            x->zs->avail_out = sizeof(out);
            rc = inflate(x->zs, Z_NO_FLUSH);
            parse(x, out, sizeof(out) - x->zs->avail_out);
            if (rc == Z_STREAM_END) {
                x->z_end = 1; /* anything after the stream is ignored */
                break;
            }
            if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR || rc == Z_MEM_ERROR ||
                rc == Z_STREAM_ERROR) {
                set_error(x,
                          x->coding == EXTRACT_GZIP ? "corrupt gzip data" : "corrupt deflate data",
                          rc == Z_MEM_ERROR   ? "out of memory"
                          : rc == Z_NEED_DICT ? "needs a preset dictionary"
                          : x->zs->msg        ? x->zs->msg
                                              : "invalid data");
                break;
            }
            if (rc == Z_BUF_ERROR || x->zs->avail_out > 0)
                break; /* all input taken (or no progress possible) */
        }
        if (x->zs->avail_in > 0)
            break; /* stream end, cap or error: the rest is not needed */
        len -= chunk;
    }
}

/* Deflate: the first two bytes tell zlib-wrapped (RFC 1950) from raw (RFC 1951). */
static void deflate_some(struct extract *x, const unsigned char *in, size_t len)
{
    if (!x->z_started) {
        while (x->zhdr_len < 2 && len > 0) {
            x->zhdr[x->zhdr_len++] = *in++;
            len--;
        }
        if (x->zhdr_len < 2)
            return;
        x->z_started = 1;
        if (!((x->zhdr[0] & 0x0f) == 8 && (x->zhdr[0] >> 4) <= 7 &&
              ((unsigned)x->zhdr[0] * 256u + x->zhdr[1]) % 31 == 0)) {
            if (inflateReset2(x->zs, -MAX_WBITS) != Z_OK) {
                set_error(x, "corrupt deflate data", "cannot reset the decoder");
                return;
            }
        }
        inflate_some(x, x->zhdr, 2);
    }
    inflate_some(x, in, len);
}

static void brotli_some(struct extract *x, const unsigned char *in, size_t len)
{
    unsigned char out[SCRATCH];
    size_t avail_in = len;
    const uint8_t *next_in = in;

    while (!x->br_end && !x->capped && !x->failed) {
        size_t avail_out = sizeof(out);
        uint8_t *next_out = out;
        BrotliDecoderResult r =
            BrotliDecoderDecompressStream(x->br, &avail_in, &next_in, &avail_out, &next_out, NULL);

        parse(x, out, sizeof(out) - avail_out);
        if (r == BROTLI_DECODER_RESULT_SUCCESS) {
            x->br_end = 1;
        } else if (r == BROTLI_DECODER_RESULT_ERROR) {
            BrotliDecoderErrorCode e = BrotliDecoderGetErrorCode(x->br);
            const char *s = BrotliDecoderErrorString(e);

            while (*s == '_')
                s++;
            set_error(x, "corrupt brotli data", s);
        } else if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) {
            break;
        }
        /* NEEDS_MORE_OUTPUT: go round again */
    }
}

static void decode(struct extract *x, const unsigned char *in, size_t len)
{
    switch (x->coding) {
    case EXTRACT_IDENTITY:
        parse(x, in, len);
        break;
    case EXTRACT_GZIP:
        inflate_some(x, in, len);
        break;
    case EXTRACT_DEFLATE:
        deflate_some(x, in, len);
        break;
    case EXTRACT_BR:
        brotli_some(x, in, len);
        break;
    case EXTRACT_UNSUPPORTED:
        set_error(x, "unsupported content coding", NULL);
        break;
    }
}

/* --- the API --------------------------------------------------------------------------- */

static int status(struct extract *x)
{
    if (x->failed)
        return -1;
    if (x->capped) {
        decoder_free(x);
        return 1;
    }
    return 0;
}

struct extract *extract_new(enum extract_type type, enum extract_coding coding, size_t text_cap)
{
    struct extract *x = calloc(1, sizeof(*x));

    if (!x)
        return NULL;
    x->type = type;
    x->coding = coding;
    x->text_cap = text_cap;
    x->in_cap = text_cap > SIZE_MAX / 8 ? SIZE_MAX : text_cap * 8;
    if (x->in_cap < IN_CAP_MIN)
        x->in_cap = IN_CAP_MIN;
    x->last_space = 1;
    buf_init(&x->text, text_cap);
    x->hs = H_TEXT;
    x->js = J_OUT;
    if (type == EXTRACT_NONE)
        return x;
    if (coding == EXTRACT_GZIP || coding == EXTRACT_DEFLATE) {
        x->zs = calloc(1, sizeof(*x->zs));
        if (!x->zs)
            goto fail;
        x->dec_mem_max = ZLIB_MEM;
        x->zs->zalloc = z_alloc;
        x->zs->zfree = z_free;
        x->zs->opaque = x;
        if (inflateInit2(x->zs, coding == EXTRACT_GZIP ? 16 + MAX_WBITS : MAX_WBITS) != Z_OK) {
            free(x->zs);
            x->zs = NULL;
            goto fail;
        }
    } else if (coding == EXTRACT_BR) {
        x->dec_mem_max = EXTRACT_BR_MEM;
        x->br = BrotliDecoderCreateInstance(br_alloc, br_free, x);
        if (!x->br)
            goto fail;
    }
    return x;
fail:
    extract_free(x);
    return NULL;
}

int extract_feed(struct extract *x, const void *data, size_t len)
{
    if (x->failed || x->capped || x->finished || x->type == EXTRACT_NONE)
        return status(x);
    decode(x, data, len);
    if (x->failed)
        decoder_free(x);
    return status(x);
}

int extract_finish(struct extract *x)
{
    int started;

    if (x->finished || x->failed || x->capped || x->type == EXTRACT_NONE) {
        x->finished = 1;
        decoder_free(x);
        return status(x);
    }
    x->finished = 1;
    if (x->coding == EXTRACT_UNSUPPORTED) {
        set_error(x, "unsupported content coding", NULL);
        return -1;
    }
    if (x->type == EXTRACT_HTML)
        html_finish(x);
    else if (x->type == EXTRACT_JSON)
        json_finish(x);
    started = x->zs ? (x->zs->total_in > 0 || x->zhdr_len > 0) : 0;
    if (x->zs && started && !x->z_end)
        set_error(x, x->coding == EXTRACT_GZIP ? "gzip data truncated" : "deflate data truncated",
                  NULL);
    if (x->br && !x->br_end && BrotliDecoderIsUsed(x->br))
        set_error(x, "brotli data truncated", NULL);
    decoder_free(x);
    x->ready = x->text.len;
    return status(x);
}

const char *extract_text(const struct extract *x, size_t *len)
{
    *len = x->ready;
    return x->text.p ? x->text.p : "";
}

void extract_consume(struct extract *x, size_t n)
{
    if (n > x->ready)
        n = x->ready;
    buf_consume(&x->text, n);
    x->ready -= n;
}

size_t extract_total(const struct extract *x)
{
    return x->total;
}

size_t extract_memory(const struct extract *x)
{
    return sizeof(*x) + (x->zs ? sizeof(*x->zs) : 0) + x->text.size + x->dec_mem_peak;
}

size_t extract_decoded(const struct extract *x)
{
    return x->decoded;
}

const char *extract_error(const struct extract *x)
{
    return x->failed ? x->err : NULL;
}

void extract_free(struct extract *x)
{
    if (!x)
        return;
    decoder_free(x);
    buf_cleanup(&x->text);
    free(x);
}
