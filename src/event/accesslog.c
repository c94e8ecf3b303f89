/*
 * accesslog.c -- access-log records, the writer thread, JSON and Squid lines.
 *
 * DESIGN. accesslog_submit packs a record into one contiguous block (struct
 * al_packed: the numbers, then every string back to back with its length)
 * built on the producer's stack, and pushes it into the queue, which copies
 * only the bytes used (a few hundred for most requests). Nothing on that path
 * allocates, takes more than the queue's short mutex, or touches a file.
 *
 * The writer thread owns everything else: it takes blocks from the queue in
 * batches, reading them in place, formats the JSON
 * line and the Squid line into a reusable line buffer, and appends them to
 * each file's 64 KiB output buffer. Buffers are written when full, at least
 * once a second (the take waits at most until the next flush is due), before a
 * rotation and at close. A file that cannot be written is reopened at the
 * next flush, so a full disk loses lines (counted) but never stops the proxy
 * or the writer.
 *
 * Requests to the writer (rotate, hold, close) are flags plus queue_wake. The
 * rotate flag is looked at after each take and before the records taken are
 * written, so a record submitted after accesslog_reopen returns always lands
 * in the new file.
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "event/accesslog.h"
#include "event/queue.h"

/* The string fields, in the order they are packed. */
enum al_str {
    AL_CLIENT,
    AL_DEVICE,
    AL_USER,
    AL_GROUP,
    AL_METHOD,
    AL_URL,
    AL_CATEGORIES,
    AL_ACTION,
    AL_TIER,
    AL_RULE,
    AL_REASON,
    AL_REF,
    AL_SAFE_SEARCH,
    AL_SEARCH,
    AL_NSTR
};

static const struct {
    const char *key; /* JSON key */
    size_t max;      /* longest copy kept */
} al_fields[AL_NSTR] = {
    [AL_CLIENT] = {"client", ACCESSLOG_CLIENT_MAX},
    [AL_DEVICE] = {"device", ACCESSLOG_DEVICE_MAX},
    [AL_USER] = {"user", ACCESSLOG_USER_MAX},
    [AL_GROUP] = {"group", ACCESSLOG_GROUP_MAX},
    [AL_METHOD] = {"method", ACCESSLOG_METHOD_MAX},
    [AL_URL] = {"url", ACCESSLOG_URL_MAX},
    [AL_CATEGORIES] = {"categories", ACCESSLOG_CATEGORIES_MAX},
    [AL_ACTION] = {"action", ACCESSLOG_ACTION_MAX},
    [AL_TIER] = {"tier", ACCESSLOG_TIER_MAX},
    [AL_RULE] = {"rule", ACCESSLOG_RULE_MAX},
    [AL_REASON] = {"reason", ACCESSLOG_REASON_MAX},
    [AL_REF] = {"ref", ACCESSLOG_REF_MAX},
    [AL_SAFE_SEARCH] = {"safe_search", ACCESSLOG_SAFE_SEARCH_MAX},
    [AL_SEARCH] = {"search", ACCESSLOG_SEARCH_MAX},
};

#define AL_TEXT_MAX                                                                                \
    (ACCESSLOG_CLIENT_MAX + ACCESSLOG_DEVICE_MAX + ACCESSLOG_USER_MAX + ACCESSLOG_GROUP_MAX +      \
     ACCESSLOG_METHOD_MAX + ACCESSLOG_URL_MAX + ACCESSLOG_CATEGORIES_MAX + ACCESSLOG_ACTION_MAX +  \
     ACCESSLOG_TIER_MAX + ACCESSLOG_RULE_MAX + ACCESSLOG_REASON_MAX + ACCESSLOG_REF_MAX +          \
     ACCESSLOG_SAFE_SEARCH_MAX + ACCESSLOG_SEARCH_MAX)

/*
 * A record as it travels through the queue. text holds the strings back to
 * back, len[i] bytes each, no NULs; the categories are names separated by
 * NUL bytes. Only offsetof(text) + the text used is copied.
 */
struct al_packed {
    int64_t time_ms;
    int64_t duration_ms;
    uint64_t bytes_in;
    uint64_t bytes_out;
    int32_t status;
    uint32_t truncated; /* bit i: string field i was cut */
    uint16_t len[AL_NSTR];
    uint16_t ncat;
    uint8_t circumvention;
    uint8_t tunnel;
    char text[AL_TEXT_MAX];
};

#define AL_FILE_BUF (64 * 1024)
/* Room for the longest line: every byte escaped as \u00XX, plus the keys. */
#define AL_LINE_MAX (6 * AL_TEXT_MAX + 2048)
#define AL_FLUSH_MS 1000
/* Records the writer takes from the queue at once: space goes back to producers this often. */
#define AL_BATCH 64
#define AL_KEEP_MAX 999
/* Ring bytes per queued record: most records pack to a few hundred bytes. */
#define AL_BYTES_PER_RECORD 1024

/*
 * The line being formatted: a fixed array of AL_LINE_MAX bytes, enough for
 * the longest record fully escaped. Appending past it sets overflow and the
 * line is not written (it cannot happen; the check keeps it that way).
 */
struct al_line {
    char *p;
    size_t len;
    int overflow;
};

struct al_file {
    char *path;
    int fd;            /* -1 while closed (after a failed open) */
    uint64_t size;     /* bytes in the file, not counting buf */
    size_t len;        /* bytes waiting in buf */
    int failing;       /* an error was reported and writing has not worked since */
    uint64_t failures; /* errors since it last worked */
    char buf[AL_FILE_BUF];
};

struct accesslog {
    struct queue *q;
    struct al_file *json;  /* NULL: off */
    struct al_file *squid; /* NULL: off */
    uint64_t max_size;
    int keep;
    int started; /* the writer thread runs */
    pthread_t thread;

    /* Requests to the writer. */
    atomic_int reopen;
    atomic_int closing;
    atomic_int hold_req;
    pthread_mutex_t ctl; /* guards held, and the waits on hold */
    pthread_cond_t ctl_cond;
    int held;

    atomic_uint_least64_t written;
    atomic_uint_least64_t dropped;
    atomic_uint_least64_t rotations;
    atomic_uint_least64_t write_errors;

    /* The writer thread's own. */
    struct al_line line;
    int64_t time_sec; /* second that time_text shows */
    char time_text[32];
};

/* ---- the producer side ---- */

/* Where to cut s (longer than max bytes) so that no UTF-8 character is split. */
static size_t al_utf8_cut(const char *s, size_t max)
{
    size_t cut = max;

    for (int k = 0; k < 3 && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80; k++)
        cut--;
    if (((unsigned char)s[cut] & 0xC0) == 0x80)
        cut = max; /* not UTF-8 anyway */
    return cut;
}

static void al_pack_str(struct al_packed *p, enum al_str f, const char *s, char **w)
{
    size_t n = 0, max = al_fields[f].max;

    if (s)
        n = strnlen(s, max + 1);
    if (n > max) {
        n = al_utf8_cut(s, max);
        p->truncated |= 1u << f;
    }
    if (n > 0)
        memcpy(*w, s, n);
    *w += n;
    p->len[f] = (uint16_t)n;
}

static void al_pack_categories(struct al_packed *p, const struct access_record *r, char **w)
{
    size_t used = 0, n, need;

    p->ncat = 0;
    for (size_t i = 0; i < r->ncategories; i++) {
        if (!r->categories[i] || r->categories[i][0] == '\0')
            continue;
        n = strnlen(r->categories[i], ACCESSLOG_CATEGORIES_MAX + 1);
        need = n + (p->ncat > 0 ? 1 : 0);
        if (used + need > ACCESSLOG_CATEGORIES_MAX || p->ncat == UINT16_MAX) {
            p->truncated |= 1u << AL_CATEGORIES;
            break;
        }
        if (p->ncat > 0)
            (*w)[used++] = '\0';
        memcpy(*w + used, r->categories[i], n);
        used += n;
        p->ncat++;
    }
    *w += used;
    p->len[AL_CATEGORIES] = (uint16_t)used;
}

int accesslog_submit(struct accesslog *al, const struct access_record *r)
{
    struct al_packed p;
    char *w = p.text;

    if (!al || !al->started)
        return 0;
    p.time_ms = r->time_ms;
    p.duration_ms = r->duration_ms;
    p.bytes_in = r->bytes_in;
    p.bytes_out = r->bytes_out;
    p.status = r->status;
    p.truncated = 0;
    p.circumvention = r->circumvention ? 1 : 0;
    p.tunnel = r->tunnel ? 1 : 0;
    al_pack_str(&p, AL_CLIENT, r->client, &w);
    al_pack_str(&p, AL_DEVICE, r->device, &w);
    al_pack_str(&p, AL_USER, r->user, &w);
    al_pack_str(&p, AL_GROUP, r->group, &w);
    al_pack_str(&p, AL_METHOD, r->method, &w);
    al_pack_str(&p, AL_URL, r->url, &w);
    al_pack_categories(&p, r, &w);
    al_pack_str(&p, AL_ACTION, r->action, &w);
    al_pack_str(&p, AL_TIER, r->tier, &w);
    al_pack_str(&p, AL_RULE, r->rule, &w);
    al_pack_str(&p, AL_REASON, r->reason, &w);
    al_pack_str(&p, AL_REF, r->ref, &w);
    al_pack_str(&p, AL_SAFE_SEARCH, r->safe_search, &w);
    al_pack_str(&p, AL_SEARCH, r->search, &w);
    if (queue_push(al->q, &p, offsetof(struct al_packed, text) + (size_t)(w - p.text)) < 0) {
        /*
         * Overload: the record is dropped and counted. Safeguarding events
         * (blocks in safeguarding categories, circumvention) must never be
         * dropped (DESIGN.md); the disk spool that will take them here
         * instead is a later issue.
         */
        atomic_fetch_add_explicit(&al->dropped, 1, memory_order_relaxed);
        return -1;
    }
    return 0;
}

/* ---- formatting (writer thread) ---- */

static void al_put(struct al_line *b, const void *s, size_t n)
{
    if (n > AL_LINE_MAX - b->len) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void al_put_str(struct al_line *b, const char *s)
{
    al_put(b, s, strlen(s));
}

/* v in decimal, right-aligned in width columns (as printf "%*" PRIu64). */
static void al_put_u64(struct al_line *b, uint64_t v, int width)
{
    char tmp[24];
    int i = (int)sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while ((int)sizeof(tmp) - i < width && i > 0)
        tmp[--i] = ' ';
    al_put(b, tmp + i, sizeof(tmp) - (size_t)i);
}

static void al_put_i64(struct al_line *b, int64_t v)
{
    if (v < 0) {
        al_put(b, "-", 1);
        al_put_u64(b, 0 - (uint64_t)v, 0);
    } else {
        al_put_u64(b, (uint64_t)v, 0);
    }
}

/* Three digits, 000-999. */
static void al_put_3(struct al_line *b, int v)
{
    char d[3] = {(char)('0' + v / 100 % 10), (char)('0' + v / 10 % 10), (char)('0' + v % 10)};

    al_put(b, d, 3);
}

/*
 * Is s[0..n) (n >= 1, s[0] >= 0x80) the start of a well-formed UTF-8
 * character? Returns 1 and its length in *adv, or 0 and in *adv the length of
 * the maximal ill-formed subpart to replace with one U+FFFD (Unicode 3.9).
 */
static int al_utf8_char(const unsigned char *s, size_t n, size_t *adv)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;

    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c == 0xE0) {
        need = 3;
        lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
        need = 3;
    } else if (c == 0xED) {
        need = 3;
        hi = 0x9F; /* no surrogates */
    } else if (c == 0xF0) {
        need = 4;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
        need = 4;
    } else if (c == 0xF4) {
        need = 4;
        hi = 0x8F; /* nothing past U+10FFFF */
    } else {
        *adv = 1;
        return 0;
    }
    for (size_t k = 1; k < need; k++) {
        unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;

        if (k >= n || s[k] < min || s[k] > max) {
            *adv = k;
            return 0;
        }
    }
    *adv = need;
    return 1;
}

/* Append s as a JSON string: quotes, backslashes and controls escaped, bad UTF-8 as U+FFFD. */
static void al_json_str(struct al_line *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, start, adv;
    char esc[6];

    al_put(b, "\"", 1);
    while (i < n) {
        start = i;
        while (i < n && s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
            i++;
        al_put(b, s + start, i - start);
        if (i == n)
            break;
        if (s[i] >= 0x80) {
            if (al_utf8_char(s + i, n - i, &adv))
                al_put(b, s + i, adv);
            else
                al_put(b, "\xEF\xBF\xBD", 3);
            i += adv;
            continue;
        }
        switch (s[i]) {
        case '"':
            al_put(b, "\\\"", 2);
            break;
        case '\\':
            al_put(b, "\\\\", 2);
            break;
        case '\n':
            al_put(b, "\\n", 2);
            break;
        case '\r':
            al_put(b, "\\r", 2);
            break;
        case '\t':
            al_put(b, "\\t", 2);
            break;
        default: /* other controls and DEL */
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[s[i] >> 4];
            esc[5] = hex[s[i] & 15];
            al_put(b, esc, sizeof(esc));
            break;
        }
        i++;
    }
    al_put(b, "\"", 1);
}

/* ,"key": */
static void al_json_key(struct al_line *b, const char *key)
{
    al_put(b, ",\"", 2);
    al_put_str(b, key);
    al_put(b, "\":", 2);
}

static void al_json_int(struct al_line *b, const char *key, int64_t v)
{
    al_json_key(b, key);
    al_put_i64(b, v);
}

static void al_json_uint(struct al_line *b, const char *key, uint64_t v)
{
    al_json_key(b, key);
    al_put_u64(b, v, 0);
}

static void al_json_bool(struct al_line *b, const char *key, int v)
{
    al_json_key(b, key);
    al_put_str(b, v ? "true" : "false");
}

/* Seconds and milliseconds of t (ms since the epoch), rounding down also before 1970. */
static void al_split_ms(int64_t t, int64_t *sec, int *ms)
{
    *sec = t / 1000;
    *ms = (int)(t % 1000);
    if (*ms < 0) {
        *ms += 1000;
        (*sec)--;
    }
}

/* Append "2026-11-28T21:10:05.123Z"; the part up to the seconds is cached per second. */
static void al_json_time(struct accesslog *al, struct al_line *b, int64_t t)
{
    int64_t sec;
    int ms;

    al_split_ms(t, &sec, &ms);
    if (sec != al->time_sec || al->time_text[0] == '\0') {
        time_t tt = (time_t)sec;
        struct tm tm;

        if (!gmtime_r(&tt, &tm))
            memset(&tm, 0, sizeof(tm));
        snprintf(al->time_text, sizeof(al->time_text), "%04d-%02d-%02dT%02d:%02d:%02d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        al->time_sec = sec;
    }
    al_put(b, "\"", 1);
    al_put_str(b, al->time_text);
    al_put(b, ".", 1);
    al_put_3(b, ms);
    al_put(b, "Z\"", 2);
}

/* The unpacked view of a record: where each string is in p->text. */
struct al_view {
    const struct al_packed *p;
    const char *s[AL_NSTR];
};

static void al_view_init(struct al_view *v, const struct al_packed *p)
{
    const char *at = p->text;

    v->p = p;
    for (int i = 0; i < AL_NSTR; i++) {
        v->s[i] = at;
        at += p->len[i];
    }
}

static void al_json_field(struct al_line *b, const struct al_view *v, enum al_str f)
{
    al_json_key(b, al_fields[f].key);
    al_json_str(b, v->s[f], v->p->len[f]);
    if (v->p->truncated & (1u << f)) {
        al_put(b, ",\"", 2);
        al_put_str(b, al_fields[f].key);
        al_put_str(b, "_truncated\":true");
    }
}

static void al_format_json(struct accesslog *al, struct al_line *b, const struct al_view *v)
{
    const struct al_packed *p = v->p;
    const char *cat = v->s[AL_CATEGORIES], *end = cat + p->len[AL_CATEGORIES], *nul;

    al_put_str(b, "{\"time\":");
    al_json_time(al, b, p->time_ms);
    for (int f = AL_CLIENT; f <= AL_URL; f++)
        al_json_field(b, v, (enum al_str)f);
    al_json_key(b, "categories");
    al_put(b, "[", 1);
    for (int i = 0; i < p->ncat; i++) {
        nul = memchr(cat, '\0', (size_t)(end - cat));
        if (!nul)
            nul = end;
        if (i > 0)
            al_put(b, ",", 1);
        al_json_str(b, cat, (size_t)(nul - cat));
        cat = nul + 1;
    }
    al_put(b, "]", 1);
    if (p->truncated & (1u << AL_CATEGORIES))
        al_put_str(b, ",\"categories_truncated\":true");
    for (int f = AL_ACTION; f <= AL_REF; f++)
        al_json_field(b, v, (enum al_str)f);
    al_json_int(b, "status", p->status);
    al_json_uint(b, "bytes_in", p->bytes_in);
    al_json_uint(b, "bytes_out", p->bytes_out);
    al_json_int(b, "duration_ms", p->duration_ms);
    al_json_field(b, v, AL_SAFE_SEARCH);
    al_json_field(b, v, AL_SEARCH);
    al_json_bool(b, "circumvention", p->circumvention);
    al_json_bool(b, "tunnel", p->tunnel);
    al_put(b, "}\n", 2);
}

/* A Squid log field: spaces, controls and non-ASCII bytes %-encoded; empty is "-". */
static void al_squid_field(struct al_line *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, start;
    char esc[3] = {'%', 0, 0};

    if (n == 0) {
        al_put(b, "-", 1);
        return;
    }
    while (i < n) {
        start = i;
        while (i < n && s[i] > 0x20 && s[i] < 0x7f)
            i++;
        al_put(b, s + start, i - start);
        if (i == n)
            break;
        esc[1] = hex[s[i] >> 4];
        esc[2] = hex[s[i] & 15];
        al_put(b, esc, sizeof(esc));
        i++;
    }
}

static int al_is(const struct al_view *v, enum al_str f, const char *word)
{
    size_t n = strlen(word);

    return v->p->len[f] == n && memcmp(v->s[f], word, n) == 0;
}

/*
 * Squid's native format (squid.conf logformat "squid"):
 *   %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt
 */
static void al_format_squid(struct al_line *b, const struct al_view *v)
{
    const struct al_packed *p = v->p;
    const char *code = "TCP_MISS", *hier = "HIER_DIRECT";
    int64_t sec, elapsed = p->duration_ms > 0 ? p->duration_ms : 0;
    int ms, status = p->status >= 0 && p->status <= 999 ? p->status : 0;

    if (al_is(v, AL_ACTION, "block") || al_is(v, AL_ACTION, "warn")) {
        code = "TCP_DENIED";
        hier = "HIER_NONE";
    } else if (p->tunnel) {
        code = "TCP_TUNNEL";
    }
    al_split_ms(p->time_ms, &sec, &ms);
    if (sec < 0) { /* before 1970: not a real request time */
        sec = 0;
        ms = 0;
    }
    al_put_u64(b, (uint64_t)sec, 9);
    al_put(b, ".", 1);
    al_put_3(b, ms);
    al_put(b, " ", 1);
    al_put_u64(b, (uint64_t)elapsed, 6);
    al_put(b, " ", 1);
    al_squid_field(b, v->s[AL_CLIENT], p->len[AL_CLIENT]);
    al_put(b, " ", 1);
    al_put_str(b, code);
    al_put(b, "/", 1);
    al_put_3(b, status);
    al_put(b, " ", 1);
    al_put_u64(b, p->bytes_out, 0);
    al_put(b, " ", 1);
    al_squid_field(b, v->s[AL_METHOD], p->len[AL_METHOD]);
    al_put(b, " ", 1);
    al_squid_field(b, v->s[AL_URL], p->len[AL_URL]);
    al_put(b, " ", 1);
    al_squid_field(b, v->s[AL_USER], p->len[AL_USER]);
    al_put(b, " ", 1);
    al_put_str(b, hier);
    al_put_str(b, "/- -\n");
}

/* ---- files (writer thread, and accesslog_open before it starts) ---- */

static void al_fail(struct accesslog *al, struct al_file *f, const char *what)
{
    atomic_fetch_add_explicit(&al->write_errors, 1, memory_order_relaxed);
    f->failures++;
    if (!f->failing) {
        /* log_warn appends strerror(errno): nothing above touches errno. */
        log_warn("access log %s: %s failed; lines are lost until it works again", f->path, what);
        f->failing = 1;
    }
}

static void al_worked(struct al_file *f)
{
    if (f->failing) {
        log_info("access log %s: writing again after %" PRIu64 " errors", f->path, f->failures);
        f->failing = 0;
        f->failures = 0;
    }
}

static int al_file_open(struct al_file *f)
{
    struct stat st;

    f->fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (f->fd < 0)
        return -1;
    f->size = fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

static void al_write(struct accesslog *al, struct al_file *f, const char *data, size_t n)
{
    ssize_t w;

    if (f->fd < 0 && al_file_open(f) < 0) {
        al_fail(al, f, "open");
        return;
    }
    while (n > 0) {
        w = write(f->fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            al_fail(al, f, "write");
            return;
        }
        data += w;
        n -= (size_t)w;
        f->size += (uint64_t)w;
    }
    al_worked(f);
}

static void al_flush(struct accesslog *al, struct al_file *f)
{
    if (f->len > 0) {
        al_write(al, f, f->buf, f->len);
        f->len = 0;
    }
}

static void al_flush_all(struct accesslog *al)
{
    if (al->json)
        al_flush(al, al->json);
    if (al->squid)
        al_flush(al, al->squid);
}

/* FILE.(keep-1) -> FILE.keep, ..., FILE -> FILE.1 (the old FILE.keep goes), then a new FILE. */
static void al_rotate(struct accesslog *al, struct al_file *f)
{
    char from[PATH_MAX], to[PATH_MAX];

    al_flush(al, f);
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    for (int i = al->keep; i >= 1; i--) {
        if (i > 1)
            snprintf(from, sizeof(from), "%s.%d", f->path, i - 1);
        else
            snprintf(from, sizeof(from), "%s", f->path);
        snprintf(to, sizeof(to), "%s.%d", f->path, i);
        if (rename(from, to) < 0 && errno != ENOENT)
            al_fail(al, f, "rename");
    }
    if (al_file_open(f) < 0)
        al_fail(al, f, "open");
    atomic_fetch_add_explicit(&al->rotations, 1, memory_order_relaxed);
}

static void al_append(struct accesslog *al, struct al_file *f, const char *line, size_t n)
{
    if (al->max_size > 0 && f->size + f->len + n > al->max_size && f->size + f->len > 0)
        al_rotate(al, f);
    if (f->len + n > sizeof(f->buf))
        al_flush(al, f);
    if (n > sizeof(f->buf)) {
        al_write(al, f, line, n);
        return;
    }
    memcpy(f->buf + f->len, line, n);
    f->len += n;
}

static void al_write_record(struct accesslog *al, const struct al_packed *p, size_t len)
{
    struct al_view v;

    if (len < offsetof(struct al_packed, text))
        return; /* cannot happen: only accesslog_submit pushes */
    al_view_init(&v, p);
    if (al->json) {
        al->line.len = 0;
        al->line.overflow = 0;
        al_format_json(al, &al->line, &v);
        if (!al->line.overflow)
            al_append(al, al->json, al->line.p, al->line.len);
    }
    if (al->squid) {
        al->line.len = 0;
        al->line.overflow = 0;
        al_format_squid(&al->line, &v);
        if (!al->line.overflow)
            al_append(al, al->squid, al->line.p, al->line.len);
    }
    atomic_fetch_add_explicit(&al->written, 1, memory_order_relaxed);
}

/* Write the records of a batch, read in place in the queue's ring (8-byte aligned). */
static void al_write_batch(struct accesslog *al, struct queue_batch *b)
{
    const void *item;
    size_t len;

    while (queue_next(al->q, b, &item, &len) == 0)
        al_write_record(al, item, len);
    queue_done(al->q, b);
}

/* ---- the writer thread ---- */

static int64_t al_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void al_rotate_all(struct accesslog *al)
{
    if (al->json)
        al_rotate(al, al->json);
    if (al->squid)
        al_rotate(al, al->squid);
}

/*
 * Called after each take and before the records taken are written: a record
 * pushed after accesslog_reopen set the flag cannot be taken before the flag
 * is visible here, so it goes to the new file.
 */
static void al_reopen_if_asked(struct accesslog *al)
{
    if (atomic_exchange(&al->reopen, 0))
        al_rotate_all(al);
}

/* Sit still until released or closed; accesslog_hold waits for held = 1. */
static void al_held(struct accesslog *al)
{
    pthread_mutex_lock(&al->ctl);
    al->held = 1;
    pthread_cond_broadcast(&al->ctl_cond);
    while (atomic_load(&al->hold_req) && !atomic_load(&al->closing))
        pthread_cond_wait(&al->ctl_cond, &al->ctl);
    al->held = 0;
    pthread_mutex_unlock(&al->ctl);
}

static void *al_writer(void *arg)
{
    struct accesslog *al = arg;
    int64_t now, next_flush = al_mono_ms() + AL_FLUSH_MS;
    struct queue_batch b;
    int got, wait;

    while (!atomic_load(&al->closing)) {
        if (atomic_load(&al->hold_req)) {
            al_flush_all(al);
            al_held(al);
            continue;
        }
        now = al_mono_ms();
        wait = next_flush > now ? (int)(next_flush - now) : 0;
        got = queue_take(al->q, &b, AL_BATCH, wait) == 0;
        al_reopen_if_asked(al);
        if (got)
            al_write_batch(al, &b);
        now = al_mono_ms();
        if (now >= next_flush) {
            al_flush_all(al);
            next_flush = now + AL_FLUSH_MS;
        }
    }
    /* Closing: write what is queued, still honouring a rotation asked for before. */
    al_reopen_if_asked(al);
    while (queue_take(al->q, &b, AL_BATCH, 0) == 0) {
        al_reopen_if_asked(al);
        al_write_batch(al, &b);
    }
    al_flush_all(al);
    return NULL;
}

/* ---- open, control, close ---- */

static struct al_file *al_file_create(const char *path, char *err, size_t errlen)
{
    struct al_file *f;

    if (!path || path[0] == '\0')
        return NULL;
    f = xcalloc(1, sizeof(*f));
    f->path = xstrdup(path);
    f->fd = -1;
    if (strlen(path) + 8 >= PATH_MAX) {
        snprintf(err, errlen, "access log %s: path too long", path);
        goto fail;
    }
    if (al_file_open(f) < 0) {
        snprintf(err, errlen, "access log %s: %s", path, strerror(errno));
        goto fail;
    }
    return f;
fail:
    free(f->path);
    free(f);
    return NULL;
}

static void al_file_destroy(struct al_file *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    free(f->path);
    free(f);
}

static void al_free(struct accesslog *al)
{
    al_file_destroy(al->json);
    al_file_destroy(al->squid);
    queue_destroy(al->q);
    free(al->line.p);
    pthread_cond_destroy(&al->ctl_cond);
    pthread_mutex_destroy(&al->ctl);
    free(al);
}

struct accesslog *accesslog_open(const struct accesslog_config *cfg, char *err, size_t errlen)
{
    struct accesslog *al = xcalloc(1, sizeof(*al));
    struct accesslog *result = NULL;
    int have_json = cfg->json_path && cfg->json_path[0];
    int have_squid = cfg->squid_path && cfg->squid_path[0];
    size_t qlen = cfg->queue_len ? cfg->queue_len : ACCESSLOG_QUEUE_DEFAULT;
    sigset_t all, old;
    int rc;

    pthread_mutex_init(&al->ctl, NULL);
    pthread_cond_init(&al->ctl_cond, NULL);
    al->line.p = xmalloc(AL_LINE_MAX);
    al->max_size = cfg->max_size;
    al->keep = cfg->keep;
    if (cfg->keep < 0 || cfg->keep > AL_KEEP_MAX) {
        snprintf(err, errlen, "access log: keep %d is out of range (0 to %d)", cfg->keep,
                 AL_KEEP_MAX);
        goto out;
    }
    if (cfg->max_size > 0 && cfg->keep < 1) {
        snprintf(err, errlen, "access log: rotating by size needs keep of at least 1");
        goto out;
    }
    if (have_json && have_squid && strcmp(cfg->json_path, cfg->squid_path) == 0) {
        snprintf(err, errlen, "access log %s: the JSON and Squid logs must be different files",
                 cfg->json_path);
        goto out;
    }
    if (!have_json && !have_squid) {
        result = al; /* logging off: submit ignores records */
        al = NULL;
        goto out;
    }
    if (have_json) {
        al->json = al_file_create(cfg->json_path, err, errlen);
        if (!al->json)
            goto out;
    }
    if (have_squid) {
        al->squid = al_file_create(cfg->squid_path, err, errlen);
        if (!al->squid)
            goto out;
    }
    if (qlen > SIZE_MAX / AL_BYTES_PER_RECORD) {
        snprintf(err, errlen, "access log: queue length %zu is too large", qlen);
        goto out;
    }
    al->q = queue_create(qlen, qlen * AL_BYTES_PER_RECORD, sizeof(struct al_packed));
    /* Lines reach the disk at the next flush anyway: wake the writer for batches, not lines. */
    queue_set_wake(al->q, qlen / 8 < AL_BATCH ? qlen / 8 : AL_BATCH);
    /* The writer takes no signals: they belong to the event loops. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&al->thread, NULL, al_writer, al);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "access log: cannot start the writer thread: %s", strerror(rc));
        goto out;
    }
    al->started = 1;
    result = al;
    al = NULL;
out:
    if (al)
        al_free(al);
    return result;
}

void accesslog_reopen(struct accesslog *al)
{
    if (!al || !al->started)
        return;
    atomic_store(&al->reopen, 1);
    queue_wake(al->q);
}

void accesslog_hold(struct accesslog *al, int hold)
{
    if (!al || !al->started)
        return;
    pthread_mutex_lock(&al->ctl);
    atomic_store(&al->hold_req, hold ? 1 : 0);
    pthread_cond_broadcast(&al->ctl_cond);
    pthread_mutex_unlock(&al->ctl);
    if (!hold)
        return;
    queue_wake(al->q);
    pthread_mutex_lock(&al->ctl);
    while (!al->held && !atomic_load(&al->closing))
        pthread_cond_wait(&al->ctl_cond, &al->ctl);
    pthread_mutex_unlock(&al->ctl);
}

void accesslog_stats(const struct accesslog *al, struct accesslog_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!al)
        return;
    st->written = atomic_load_explicit(&al->written, memory_order_relaxed);
    st->dropped = atomic_load_explicit(&al->dropped, memory_order_relaxed);
    st->rotations = atomic_load_explicit(&al->rotations, memory_order_relaxed);
    st->write_errors = atomic_load_explicit(&al->write_errors, memory_order_relaxed);
}

void accesslog_close(struct accesslog *al)
{
    if (!al)
        return;
    if (al->started) {
        pthread_mutex_lock(&al->ctl);
        atomic_store(&al->closing, 1);
        pthread_cond_broadcast(&al->ctl_cond);
        pthread_mutex_unlock(&al->ctl);
        queue_wake(al->q);
        pthread_join(al->thread, NULL);
    }
    al_free(al);
}
