#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/tz.h"

/*
 * DESIGN
 *
 * A loaded zone is two things: the table of transitions from the TZif file
 * (sorted UTC instants, each naming a local time type: offset and DST flag),
 * and the POSIX TZ rule from the file's footer, which governs every instant
 * from the last transition on (or every instant, if there are no
 * transitions). Debian's "fat" files list transitions up to 2037; "slim"
 * files stop at the last change of rules and rely on the footer.
 *
 * Both halves answer one question, tz_find(): which type is in force at t,
 * and when might it next change? tz_to_local() needs the first half of the
 * answer; tz_local_to_utc() walks the segments that the second half yields.
 * Nothing is cached, so the struct is never written after tz_parse() and
 * needs no locks; the footer rule is evaluated afresh on each query, which
 * costs a few dozen integer operations.
 *
 * The file is untrusted input: every count is checked against the bytes that
 * are really there before anything is read, and every index against the
 * table it indexes.
 */

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_MAX_FILE (1024 * 1024)
#define TZ_MAX_NAME 255
#define TZ_HEADER_LEN 44
#define TZ_MAX_TYPES 256

/* RFC 8536 section 3.2: a UT offset is more than -25 hours and less than 26 hours. */
#define TZ_MIN_UTOFF (-89999)
#define TZ_MAX_UTOFF 93599

/* Instants are clamped to +-2^50 s (about 35 million years) so every sum below fits. */
#define TZ_TIME_LIMIT (INT64_C(1) << 50)

#define TZ_SECS_PER_DAY 86400
#define TZ_SECS_PER_HOUR 3600

struct tz_type {
    int32_t utoff;
    int isdst;
};

enum tz_date_kind {
    TZ_DATE_JULIAN1,   /* Jn: day 1-365 of the year, February 29 never counted */
    TZ_DATE_JULIAN0,   /* n: day 0-365 of the year, February 29 counted */
    TZ_DATE_MONTH_WEEK /* Mm.w.d: weekday d of week w (5 = last) of month m */
};

struct tz_rule_date {
    enum tz_date_kind kind;
    int day;      /* Jn and n: the day number; Mm.w.d: weekday 0-6 */
    int week;     /* Mm.w.d only: 1-5 */
    int month;    /* Mm.w.d only: 1-12 */
    int32_t time; /* seconds after local midnight, -167 to 167 hours (RFC 8536 3.3.1) */
};

struct tz_rule {
    struct tz_type std;
    struct tz_type dst;
    int has_dst;
    struct tz_rule_date start; /* time is in standard local time */
    struct tz_rule_date end;   /* time is in daylight local time */
};

struct tz {
    char *name;
    size_t ntrans;
    int64_t *trans_at;         /* strictly ascending */
    unsigned char *trans_type; /* each < ntypes */
    int ntypes;                /* 1 to TZ_MAX_TYPES */
    struct tz_type types[TZ_MAX_TYPES];
    int has_rule;
    struct tz_rule rule;
};

/* Where errors go: "NAME: message" into err. */
struct tz_errctx {
    const char *name;
    char *err;
    size_t errlen;
};

struct tz_header {
    unsigned char version; /* 0 for version 1, else '2', '3', ... */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

/* A cursor over the footer TZ string, which is not NUL-terminated. */
struct tz_scan {
    const char *p;
    const char *end;
};

struct tz_event {
    int64_t at;
    int to_dst;
};

static void tz_fail(const struct tz_errctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tz_fail_plain(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void tz_fail(const struct tz_errctx *ctx, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    if (!ctx->err || ctx->errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->name, msg);
}

static void tz_fail_plain(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copy untrusted text for an error message: printable ASCII only, at most outlen - 1 bytes. */
static void tz_printable(const char *s, size_t len, char *out, size_t outlen)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[n] = '\0';
}

/* ---- Calendar arithmetic (proleptic Gregorian, Howard Hinnant's algorithms) ---- */

static int64_t tz_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int tz_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int tz_month_days(int64_t y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (m == 2 && tz_is_leap(y))
        return 29;
    return mdays[m - 1];
}

/* The date that is z days after 1970-01-01. */
static void tz_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday. 1970-01-01 was a Thursday. */
static int tz_weekday(int64_t days)
{
    return (int)(days - tz_floor_div(days + 4, 7) * 7 + 4);
}

static int64_t tz_clamp(int64_t t)
{
    if (t < -TZ_TIME_LIMIT)
        return -TZ_TIME_LIMIT;
    if (t > TZ_TIME_LIMIT)
        return TZ_TIME_LIMIT;
    return t;
}

/* ---- The POSIX TZ string in the footer ---- */

static int tz_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int tz_is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int tz_at(const struct tz_scan *s, char c)
{
    return s->p < s->end && *s->p == c;
}

/* A zone abbreviation: three or more letters, or <...> of letters, digits, '+' and '-'. */
static int tz_scan_abbr(struct tz_scan *s)
{
    const char *start;

    if (tz_at(s, '<')) {
        s->p++;
        start = s->p;
        while (s->p < s->end &&
               (tz_is_alpha(*s->p) || tz_is_digit(*s->p) || *s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p - start < 3 || !tz_at(s, '>'))
            return -1;
        s->p++;
        return 0;
    }
    start = s->p;
    while (s->p < s->end && tz_is_alpha(*s->p))
        s->p++;
    return s->p - start >= 3 ? 0 : -1;
}

/* One to maxdigits decimal digits with a value from 0 to max. */
static int tz_scan_num(struct tz_scan *s, int maxdigits, int max, int *out)
{
    int v = 0;
    int n = 0;

    while (s->p < s->end && tz_is_digit(*s->p) && n < maxdigits) {
        v = v * 10 + (*s->p - '0');
        s->p++;
        n++;
    }
    if (n == 0 || v > max || (s->p < s->end && tz_is_digit(*s->p)))
        return -1;
    *out = v;
    return 0;
}

/* [+|-]hh[:mm[:ss]] with hh at most maxhours; the value in seconds. */
static int tz_scan_hms(struct tz_scan *s, int maxhours, int32_t *out)
{
    int sign = 1;
    int h, m = 0, sec = 0;

    if (tz_at(s, '+') || tz_at(s, '-')) {
        sign = *s->p == '-' ? -1 : 1;
        s->p++;
    }
    if (tz_scan_num(s, 3, maxhours, &h) < 0)
        return -1;
    if (tz_at(s, ':')) {
        s->p++;
        if (tz_scan_num(s, 2, 59, &m) < 0)
            return -1;
        if (tz_at(s, ':')) {
            s->p++;
            if (tz_scan_num(s, 2, 59, &sec) < 0)
                return -1;
        }
    }
    *out = sign * (h * TZ_SECS_PER_HOUR + m * 60 + sec);
    return 0;
}

/* A POSIX offset (hours west of UT, at most 24:59:59) as a UT offset (seconds east). */
static int tz_scan_offset(struct tz_scan *s, int32_t *utoff)
{
    int32_t west;

    if (tz_scan_hms(s, 24, &west) < 0)
        return -1;
    *utoff = -west;
    return 0;
}

/* date[/time]: Jn, n or Mm.w.d, and a time that RFC 8536 lets run from -167 to 167 hours. */
static int tz_scan_date(struct tz_scan *s, struct tz_rule_date *d)
{
    memset(d, 0, sizeof(*d));
    if (tz_at(s, 'J')) {
        s->p++;
        d->kind = TZ_DATE_JULIAN1;
        if (tz_scan_num(s, 3, 365, &d->day) < 0 || d->day < 1)
            return -1;
    } else if (tz_at(s, 'M')) {
        s->p++;
        d->kind = TZ_DATE_MONTH_WEEK;
        if (tz_scan_num(s, 2, 12, &d->month) < 0 || d->month < 1 || !tz_at(s, '.'))
            return -1;
        s->p++;
        if (tz_scan_num(s, 1, 5, &d->week) < 0 || d->week < 1 || !tz_at(s, '.'))
            return -1;
        s->p++;
        if (tz_scan_num(s, 1, 6, &d->day) < 0)
            return -1;
    } else {
        d->kind = TZ_DATE_JULIAN0;
        if (tz_scan_num(s, 3, 365, &d->day) < 0)
            return -1;
    }
    d->time = 2 * TZ_SECS_PER_HOUR;
    if (tz_at(s, '/')) {
        s->p++;
        if (tz_scan_hms(s, 167, &d->time) < 0)
            return -1;
    }
    return 0;
}

/*
 * std offset [dst [offset] ,start[/time],end[/time]]. POSIX leaves a DST zone
 * without a rule to the implementation; zic never writes one, so we refuse it.
 */
static int tz_parse_rule(const char *str, size_t len, struct tz_rule *rule)
{
    struct tz_scan s = {str, str + len};

    memset(rule, 0, sizeof(*rule));
    if (tz_scan_abbr(&s) < 0 || tz_scan_offset(&s, &rule->std.utoff) < 0)
        return -1;
    if (s.p == s.end)
        return 0;
    if (tz_scan_abbr(&s) < 0)
        return -1;
    rule->has_dst = 1;
    rule->dst.isdst = 1;
    rule->dst.utoff = rule->std.utoff + TZ_SECS_PER_HOUR;
    if (!tz_at(&s, ',') && tz_scan_offset(&s, &rule->dst.utoff) < 0)
        return -1;
    if (!tz_at(&s, ','))
        return -1;
    s.p++;
    if (tz_scan_date(&s, &rule->start) < 0 || !tz_at(&s, ','))
        return -1;
    s.p++;
    if (tz_scan_date(&s, &rule->end) < 0 || s.p != s.end)
        return -1;
    return 0;
}

/* The local date, as days since the epoch, on which d falls in year y. */
static int64_t tz_rule_day(const struct tz_rule_date *d, int64_t y)
{
    int64_t jan1 = clock_days_from_civil(y, 1, 1);
    int64_t first;
    int mday;

    switch (d->kind) {
    case TZ_DATE_JULIAN1:
        return jan1 + d->day - 1 + (tz_is_leap(y) && d->day >= 60);
    case TZ_DATE_JULIAN0:
        return jan1 + d->day;
    case TZ_DATE_MONTH_WEEK:
        break;
    }
    first = clock_days_from_civil(y, d->month, 1);
    mday = 1 + (d->day - tz_weekday(first) + 7) % 7 + (d->week - 1) * 7;
    while (mday > tz_month_days(y, d->month))
        mday -= 7;
    return first + mday - 1;
}

/*
 * The type the rule gives at t, and the next instant after t at which the rule
 * changes type (INT64_MAX if never). Rule times of up to +-167 hours can push a
 * year's changes a week into the neighbouring years, so we list the changes of
 * the two years either side as well and take the last one at or before t. Ties
 * put the end of DST first, so a rule that ends DST at the instant the next
 * year's DST starts (RFC 8536 3.3.1: "DST all year") stays in DST.
 */
static void tz_rule_find(const struct tz_rule *rule, int64_t t, struct tz_type *type, int64_t *next)
{
    struct tz_event ev[10];
    size_t n = 0;
    int64_t y;
    int m, d;

    *type = rule->std;
    *next = INT64_MAX;
    if (!rule->has_dst)
        return;
    tz_civil_from_days(tz_floor_div(t, TZ_SECS_PER_DAY), &y, &m, &d);
    for (int64_t yy = y - 2; yy <= y + 2; yy++) {
        ev[n].at =
            tz_rule_day(&rule->start, yy) * TZ_SECS_PER_DAY + rule->start.time - rule->std.utoff;
        ev[n++].to_dst = 1;
        ev[n].at = tz_rule_day(&rule->end, yy) * TZ_SECS_PER_DAY + rule->end.time - rule->dst.utoff;
        ev[n++].to_dst = 0;
    }
    for (size_t i = 1; i < n; i++) {
        struct tz_event e = ev[i];
        size_t j = i;

        while (j > 0 &&
               (ev[j - 1].at > e.at || (ev[j - 1].at == e.at && ev[j - 1].to_dst && !e.to_dst))) {
            ev[j] = ev[j - 1];
            j--;
        }
        ev[j] = e;
    }
    for (size_t i = 0; i < n; i++) {
        if (ev[i].at > t) {
            *next = ev[i].at;
            break;
        }
        *type = ev[i].to_dst ? rule->dst : rule->std;
    }
}

/* ---- Lookups ---- */

/* The type in force at t, and the next instant after t at which it may change. */
static void tz_find(const struct tz *tz, int64_t t, struct tz_type *type, int64_t *next)
{
    size_t lo, hi;

    if (tz->ntrans == 0 || t >= tz->trans_at[tz->ntrans - 1]) {
        if (tz->has_rule) {
            tz_rule_find(&tz->rule, t, type, next);
        } else {
            *type = tz->types[tz->ntrans == 0 ? 0 : tz->trans_type[tz->ntrans - 1]];
            *next = INT64_MAX;
        }
        return;
    }
    if (t < tz->trans_at[0]) {
        /* RFC 8536 3.2: type 0 applies before the first transition. */
        *type = tz->types[0];
        *next = tz->trans_at[0];
        return;
    }
    /* Invariant: trans_at[lo] <= t < trans_at[hi]. */
    lo = 0;
    hi = tz->ntrans - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (tz->trans_at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    *type = tz->types[tz->trans_type[lo]];
    *next = tz->trans_at[hi];
}

void tz_to_local(const struct tz *tz, int64_t t, struct tz_local *out)
{
    struct tz_type type;
    int64_t next, local, days, secs, year;

    t = tz_clamp(t);
    tz_find(tz, t, &type, &next);
    local = t + type.utoff;
    days = tz_floor_div(local, TZ_SECS_PER_DAY);
    secs = local - days * TZ_SECS_PER_DAY;
    tz_civil_from_days(days, &year, &out->month, &out->day);
    out->year = (int)year;
    out->wday = tz_weekday(days);
    out->hour = (int)(secs / TZ_SECS_PER_HOUR);
    out->minute = (int)(secs / 60 % 60);
    out->second = (int)(secs % 60);
    out->utc_offset = type.utoff;
    out->is_dst = type.isdst;
}

/*
 * Every solution u of u + utoff(u) == local lies in [local - TZ_MAX_UTOFF,
 * local - TZ_MIN_UTOFF], a window of about two days. Walk the segments of
 * constant type across it, earliest first: the first segment that contains its
 * own candidate gives the earliest solution. If a change is crossed where the
 * old type's candidate lies after the change and the new type's before it, the
 * reading is in a gap. Real zones have a handful of changes in two days; the
 * cap on steps only bounds the work on nonsense files.
 */
int64_t tz_local_to_utc(const struct tz *tz, int64_t local)
{
    struct tz_type type, prev = {0, 0};
    int64_t u, next, limit;
    int have_prev = 0;

    local = tz_clamp(local);
    u = local - TZ_MAX_UTOFF;
    limit = local - TZ_MIN_UTOFF;
    for (int step = 0; step < 64 && u <= limit; step++) {
        int64_t cand;

        tz_find(tz, u, &type, &next);
        cand = local - type.utoff;
        if (have_prev && cand < u && local - prev.utoff >= u)
            return local - prev.utoff;
        if (cand >= u && cand < next)
            return cand;
        prev = type;
        have_prev = 1;
        u = next;
    }
    tz_find(tz, local, &type, &next);
    return local - type.utoff;
}

/* ---- TZif parsing ---- */

static uint32_t tz_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t tz_be64(const unsigned char *p)
{
    uint64_t v = (uint64_t)tz_be32(p) << 32 | tz_be32(p + 4);

    /* Two's complement, written so that no conversion is implementation-defined. */
    if (v <= (uint64_t)INT64_MAX)
        return (int64_t)v;
    return -(int64_t)(~v) - 1;
}

static int32_t tz_be32s(const unsigned char *p)
{
    uint32_t v = tz_be32(p);

    if (v <= (uint32_t)INT32_MAX)
        return (int32_t)v;
    return -(int32_t)(~v) - 1;
}

/* Read the header at data[off]; 0 or -1 with the reason in ctx. */
static int tz_read_header(const struct tz_errctx *ctx, const unsigned char *data, size_t len,
                          size_t off, struct tz_header *h)
{
    const unsigned char *p = data + off;

    if (memcmp(p, "TZif", len - off < 4 ? len - off : 4) != 0) {
        tz_fail(ctx, "not a TZif file (bad magic)");
        return -1;
    }
    if (len - off < TZ_HEADER_LEN) {
        tz_fail(ctx, "truncated TZif data");
        return -1;
    }
    h->version = p[4];
    /*
     * Version 1 is NUL, then '2', '3', '4'. Each later version has only widened
     * what the same layout may hold, and tzcode reads any of them as version 2;
     * accepting '5' to '9' too keeps a tzdata upgrade from stopping the filter.
     */
    if (h->version != 0 && (h->version < '2' || h->version > '9')) {
        tz_fail(ctx, "unsupported TZif version byte 0x%02x", h->version);
        return -1;
    }
    h->isutcnt = tz_be32(p + 20);
    h->isstdcnt = tz_be32(p + 24);
    h->leapcnt = tz_be32(p + 28);
    h->timecnt = tz_be32(p + 32);
    h->typecnt = tz_be32(p + 36);
    h->charcnt = tz_be32(p + 40);
    return 0;
}

/* Size of the data block after header h with tsize-byte times; cannot overflow. */
static uint64_t tz_block_size(const struct tz_header *h, unsigned tsize)
{
    return (uint64_t)h->timecnt * (tsize + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Fill tz from the data block at p (already known to hold tz_block_size bytes). */
static int tz_read_block(const struct tz_errctx *ctx, struct tz *tz, const struct tz_header *h,
                         const unsigned char *p, unsigned tsize)
{
    const unsigned char *idx, *types, *isstd, *isut;

    if (h->typecnt == 0) {
        tz_fail(ctx, "no local time types");
        return -1;
    }
    if (h->typecnt > TZ_MAX_TYPES) {
        tz_fail(ctx, "%" PRIu32 " local time types (at most %d)", h->typecnt, TZ_MAX_TYPES);
        return -1;
    }
    if (h->isstdcnt != 0 && h->isstdcnt != h->typecnt) {
        tz_fail(ctx, "standard/wall indicator count %" PRIu32 " is not the type count %" PRIu32,
                h->isstdcnt, h->typecnt);
        return -1;
    }
    if (h->isutcnt != 0 && h->isutcnt != h->typecnt) {
        tz_fail(ctx, "UT/local indicator count %" PRIu32 " is not the type count %" PRIu32,
                h->isutcnt, h->typecnt);
        return -1;
    }
    if (h->leapcnt != 0) {
        tz_fail(ctx, "zones with leap seconds (\"right/\") are not supported");
        return -1;
    }

    idx = p + (size_t)h->timecnt * tsize;
    types = idx + h->timecnt;
    isstd = types + (size_t)h->typecnt * 6 + h->charcnt;
    isut = isstd + h->isstdcnt;

    tz->ntypes = (int)h->typecnt;
    for (uint32_t i = 0; i < h->typecnt; i++) {
        const unsigned char *tp = types + (size_t)i * 6;
        int32_t utoff = tz_be32s(tp);

        if (utoff < TZ_MIN_UTOFF || utoff > TZ_MAX_UTOFF) {
            tz_fail(ctx, "local time type %" PRIu32 " has UT offset %" PRId32 " out of range", i,
                    utoff);
            return -1;
        }
        if (tp[4] > 1) {
            tz_fail(ctx, "local time type %" PRIu32 " has DST flag %u", i, tp[4]);
            return -1;
        }
        if (tp[5] >= h->charcnt) {
            tz_fail(ctx, "local time type %" PRIu32 " has abbreviation index %u out of range", i,
                    tp[5]);
            return -1;
        }
        tz->types[i].utoff = utoff;
        tz->types[i].isdst = tp[4];
    }
    for (uint32_t i = 0; i < h->isstdcnt; i++) {
        if (isstd[i] > 1 || (h->isutcnt != 0 && isut[i] > isstd[i])) {
            tz_fail(ctx, "bad standard/wall or UT/local indicator for type %" PRIu32, i);
            return -1;
        }
    }
    for (uint32_t i = 0; i < h->isutcnt; i++) {
        if (isut[i] > 1) {
            tz_fail(ctx, "bad UT/local indicator for type %" PRIu32, i);
            return -1;
        }
    }

    if (h->timecnt == 0)
        return 0;
    tz->trans_at = malloc((size_t)h->timecnt * sizeof(*tz->trans_at));
    tz->trans_type = malloc(h->timecnt);
    if (!tz->trans_at || !tz->trans_type) {
        tz_fail(ctx, "out of memory");
        return -1;
    }
    tz->ntrans = h->timecnt;
    for (uint32_t i = 0; i < h->timecnt; i++) {
        const unsigned char *tp = p + (size_t)i * tsize;

        tz->trans_at[i] = tsize == 8 ? tz_be64(tp) : tz_be32s(tp);
        if (i > 0 && tz->trans_at[i] <= tz->trans_at[i - 1]) {
            tz_fail(ctx, "transition times are not in ascending order (at %" PRIu32 ")", i);
            return -1;
        }
        if (idx[i] >= h->typecnt) {
            tz_fail(ctx, "transition %" PRIu32 " uses undefined local time type %u", i, idx[i]);
            return -1;
        }
        tz->trans_type[i] = idx[i];
    }
    return 0;
}

/* The footer of a version 2+ file at data[off]: "\n" TZ string "\n". */
static int tz_read_footer(const struct tz_errctx *ctx, struct tz *tz, const unsigned char *data,
                          size_t len, size_t off)
{
    const unsigned char *nl;
    const char *str;
    size_t slen;
    char shown[48];

    if (off >= len) {
        tz_fail(ctx, "truncated TZif data (no footer)");
        return -1;
    }
    if (data[off] != '\n') {
        tz_fail(ctx, "bad footer (no leading newline)");
        return -1;
    }
    off++;
    nl = memchr(data + off, '\n', len - off);
    if (!nl) {
        tz_fail(ctx, "truncated TZif data (footer not terminated)");
        return -1;
    }
    /* Bytes after the footer are ignored, as the reference implementation does. */
    str = (const char *)(data + off);
    slen = (size_t)(nl - (data + off));
    if (slen == 0)
        return 0; /* RFC 8536 3.3: no rule; the last type stays in force */
    if (tz_parse_rule(str, slen, &tz->rule) < 0) {
        tz_printable(str, slen, shown, sizeof(shown));
        tz_fail(ctx, "bad footer TZ string '%s'", shown);
        return -1;
    }
    tz->has_rule = 1;
    return 0;
}

static char *tz_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    if (p)
        memcpy(p, s, n);
    return p;
}

struct tz *tz_parse(const char *name, const unsigned char *data, size_t len, char *err,
                    size_t errlen)
{
    struct tz_errctx ctx = {name ? name : "", err, errlen};
    struct tz *result = NULL;
    struct tz *tz = NULL;
    struct tz_header h;
    uint64_t size;
    size_t off = 0;
    unsigned tsize = 4;

    if (!data) {
        tz_fail(&ctx, "no TZif data");
        goto out;
    }
    if (len > TZ_MAX_FILE) {
        tz_fail(&ctx, "TZif data larger than %d bytes", TZ_MAX_FILE);
        goto out;
    }
    if (tz_read_header(&ctx, data, len, 0, &h) < 0)
        goto out;
    off = TZ_HEADER_LEN;
    size = tz_block_size(&h, 4);
    if (size > len - off) {
        tz_fail(&ctx, "truncated TZif data");
        goto out;
    }
    if (h.version != 0) {
        /* Skip the 32-bit block; the 64-bit one after it is the whole truth. */
        off += (size_t)size;
        if (tz_read_header(&ctx, data, len, off, &h) < 0)
            goto out;
        off += TZ_HEADER_LEN;
        tsize = 8;
        size = tz_block_size(&h, 8);
        if (size > len - off) {
            tz_fail(&ctx, "truncated TZif data");
            goto out;
        }
    }

    tz = calloc(1, sizeof(*tz));
    if (!tz) {
        tz_fail(&ctx, "out of memory");
        goto out;
    }
    tz->name = tz_strdup(ctx.name);
    if (!tz->name) {
        tz_fail(&ctx, "out of memory");
        goto out;
    }
    if (tz_read_block(&ctx, tz, &h, data + off, tsize) < 0)
        goto out;
    off += (size_t)size;
    if (h.version != 0 && tz_read_footer(&ctx, tz, data, len, off) < 0)
        goto out;
    result = tz;
    tz = NULL;
out:
    tz_free(tz);
    return result;
}

/* ---- Loading from the tz database ---- */

/* Zone names are relative paths of letters, digits and "/_+-."; no "..". */
static int tz_check_name(const char *name, char *err, size_t errlen)
{
    char shown[64];
    size_t len;

    if (!name || !*name) {
        tz_fail_plain(err, errlen, "empty time zone name");
        return -1;
    }
    len = strlen(name);
    tz_printable(name, len, shown, sizeof(shown));
    if (len > TZ_MAX_NAME) {
        tz_fail_plain(err, errlen, "time zone name '%s...' too long", shown);
        return -1;
    }
    if (name[0] == '/' || strstr(name, "..")) {
        tz_fail_plain(err, errlen, "bad time zone name '%s': must be a relative path without '..'",
                      shown);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!tz_is_alpha(c) && !tz_is_digit(c) && !strchr("/_+-.", c)) {
            tz_fail_plain(err, errlen, "bad character in time zone name '%s'", shown);
            return -1;
        }
    }
    return 0;
}

/* UTC without the file: minimal containers often have no tz database at all. */
static struct tz *tz_builtin_utc(char *err, size_t errlen)
{
    struct tz *tz = calloc(1, sizeof(*tz));

    if (tz) {
        tz->name = tz_strdup("UTC");
        tz->ntypes = 1;
    }
    if (!tz || !tz->name) {
        tz_free(tz);
        tz_fail_plain(err, errlen, "UTC: out of memory");
        return NULL;
    }
    return tz;
}

struct tz *tz_load(const char *name, char *err, size_t errlen)
{
    struct tz *result = NULL;
    unsigned char *buf = NULL;
    const char *dir;
    char path[4096];
    struct stat st;
    size_t len = 0;
    int fd = -1;

    if (tz_check_name(name, err, errlen) < 0)
        goto out;
    dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = TZ_DEFAULT_DIR;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        tz_fail_plain(err, errlen, "%s: path to time zone file too long", name);
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if ((errno == ENOENT || errno == ENOTDIR) && strcmp(name, "UTC") == 0) {
            result = tz_builtin_utc(err, errlen);
        } else if (errno == ENOENT || errno == ENOTDIR) {
            tz_fail_plain(err, errlen, "no such time zone '%s' (looked for %s)", name, path);
        } else {
            tz_fail_plain(err, errlen, "%s: %s: %s", name, path, strerror(errno));
        }
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        tz_fail_plain(err, errlen, "%s: %s: %s", name, path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        tz_fail_plain(err, errlen, "no such time zone '%s' (%s is not a regular file)", name, path);
        goto out;
    }
    if (st.st_size > TZ_MAX_FILE) {
        tz_fail_plain(err, errlen, "%s: %s is larger than %d bytes", name, path, TZ_MAX_FILE);
        goto out;
    }
    /* One byte spare, to notice a file that grew after fstat. */
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        tz_fail_plain(err, errlen, "%s: out of memory", name);
        goto out;
    }
    while (len < (size_t)st.st_size + 1) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            tz_fail_plain(err, errlen, "%s: %s: %s", name, path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > (size_t)st.st_size) {
        tz_fail_plain(err, errlen, "%s: %s changed while being read", name, path);
        goto out;
    }
    result = tz_parse(name, buf, len, err, errlen);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return result;
}

void tz_free(struct tz *tz)
{
    if (!tz)
        return;
    free(tz->name);
    free(tz->trans_at);
    free(tz->trans_type);
    free(tz);
}

const char *tz_name(const struct tz *tz)
{
    return tz->name;
}
