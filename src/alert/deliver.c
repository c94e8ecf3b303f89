/*
 * deliver.c -- alert e-mail, digest, webhook and syslog delivery.
 *
 * DESIGN. Messages are built in two steps. First the text: every field of the view
 * goes through deliver_clean(), which makes it valid UTF-8 on one line with a cap on
 * its length, so nothing a pupil types can start a new header or a new line of the
 * body (a forged "Record the outcome" line, say). Then the wire form: headers are
 * ASCII (RFC 2047 encoded-words where the text is not) folded at 78 columns, and the
 * body is quoted-printable, which keeps the message 7-bit clean without asking the
 * relay for 8BITMIME, and turns long URLs into lines a relay will carry.
 *
 * Sending uses one libcurl easy handle per call: alerts are rare, and a fresh handle
 * cannot carry a half-finished SMTP session from one alert into the next. libcurl's
 * own SMTP error text is only "RCPT failed: 550", so a debug callback keeps the
 * relay's last reply line, which is what the DSL or technician needs to see.
 */
#include "common/compat.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "alert/deliver.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/tz.h"
#include "common/xalloc.h"

#define DELIVER_MESSAGE_MAX (8u * 1024 * 1024) /* a built message, quoted-printable */
#define DELIVER_BODY_MAX (2u * 1024 * 1024)    /* its text before encoding (QP triples at worst) */
#define DELIVER_DIGEST_LIST_MAX (1024u * 1024) /* stop listing digest items here */
#define DELIVER_HEADER_FIELD_MAX 200           /* bytes of one field in a header */
#define DELIVER_FIELD_MAX 500                  /* bytes of a short field in a body */
#define DELIVER_TEXT_MAX 4000                  /* bytes of the excerpt or URL in a body */
#define DELIVER_TIMEOUT_DEFAULT_MS 30000L

/* deliver_clean() flags */
#define CLEAN_ASCII 1    /* drop everything that is not ASCII */
#define CLEAN_COLLAPSE 2 /* runs of spaces become one; no leading or trailing space */

static atomic_uint deliver_counter;

/* ---- text ---------------------------------------------------------------------- */

/*
 * Decode one UTF-8 character at s (n bytes available). Returns its length and sets
 * *cp, or 0 if the bytes are not a valid, shortest-form, non-surrogate character.
 */
static size_t deliver_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len, i;
    uint32_t c, min;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        c = s[0] & 0x1f;
        min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        c = s[0] & 0x0f;
        min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        c = s[0] & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* Characters that would break a line or reorder what the reader sees. */
static int deliver_is_control(uint32_t c)
{
    return c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == 0x2028 || c == 0x2029;
}

static int deliver_is_bidi(uint32_t c)
{
    return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x200e ||
           c == 0x200f || c == 0x061c;
}

/*
 * Append s to b as one line of valid UTF-8 of at most max bytes (then "..."):
 * control characters become a space, invalid bytes U+FFFD ('?' with CLEAN_ASCII),
 * bidirectional controls are dropped.
 */
static void deliver_clean(struct buf *b, const char *s, size_t max, int flags)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s), i = 0, start = b->len, n;
    int space = (flags & CLEAN_COLLAPSE) != 0; /* the last thing written was a space */
    uint32_t c;

    while (i < len) {
        const char *piece = s + i;
        size_t plen;

        n = deliver_utf8_decode(u + i, len - i, &c);
        if (n == 0) {
            piece = (flags & CLEAN_ASCII) ? "?" : "\xef\xbf\xbd";
            plen = strlen(piece);
            n = 1;
        } else if (deliver_is_control(c) || c == ' ') {
            piece = " ";
            plen = 1;
            if (c == ' ' && !(flags & CLEAN_COLLAPSE))
                space = 0;
            else if (space) {
                i += n;
                continue;
            }
        } else if (deliver_is_bidi(c) || ((flags & CLEAN_ASCII) && c >= 0x80)) {
            i += n;
            continue;
        } else {
            plen = n;
        }
        if (b->len - start + plen > max) {
            buf_append_str(b, "...");
            break;
        }
        buf_append(b, piece, plen);
        space = piece[0] == ' ';
        i += n;
    }
    if (flags & CLEAN_COLLAPSE) {
        while (b->len > start && b->p[b->len - 1] == ' ')
            b->p[--b->len] = '\0';
    }
}

/* s cleaned into a new string (caller frees). */
static char *deliver_cleaned(const char *s, size_t max, int flags)
{
    struct buf b;

    buf_init(&b, max + 16);
    buf_append_str(&b, "");
    deliver_clean(&b, s ? s : "", max, flags);
    return b.p;
}

static int deliver_is_ascii(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s >= 0x80)
            return 0;
    }
    return 1;
}

static void deliver_base64(struct buf *b, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4];
    size_t i;

    for (i = 0; i + 2 < n; i += 3) {
        out[0] = tab[p[i] >> 2];
        out[1] = tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
        out[2] = tab[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
        out[3] = tab[p[i + 2] & 63];
        buf_append(b, out, 4);
    }
    if (n - i == 1) {
        out[0] = tab[p[i] >> 2];
        out[1] = tab[(p[i] & 3) << 4];
        out[2] = out[3] = '=';
        buf_append(b, out, 4);
    } else if (n - i == 2) {
        out[0] = tab[p[i] >> 2];
        out[1] = tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
        out[2] = tab[(p[i + 1] & 15) << 2];
        out[3] = '=';
        buf_append(b, out, 4);
    }
}

/*
 * Append s (valid UTF-8) as RFC 2047 encoded-words separated by spaces, each at most
 * 64 characters and never splitting a character, so the header folder can break
 * between them.
 */
static void deliver_rfc2047(struct buf *b, const char *s)
{
    size_t len = strlen(s), i = 0, n;

    while (i < len) {
        n = len - i < 39 ? len - i : 39;
        while (n > 1 && i + n < len && ((unsigned char)s[i + n] & 0xc0) == 0x80)
            n--;
        if (i > 0)
            buf_append_str(b, " ");
        buf_append_str(b, "=?UTF-8?B?");
        deliver_base64(b, (const unsigned char *)s + i, n);
        buf_append_str(b, "?=");
        i += n;
    }
}

/*
 * Append "Name: value" CRLF, folding at spaces so lines stay within 78 columns where
 * the words allow. value is ASCII without control characters.
 */
static void deliver_header(struct buf *b, const char *name, const char *value)
{
    size_t col = strlen(name) + 2, first = col, wlen;
    const char *p = value, *sp;

    buf_printf(b, "%s: ", name);
    while (*p) {
        sp = strchr(p + 1, ' ');
        wlen = sp ? (size_t)(sp - p) : strlen(p);
        if (*p == ' ' && col > first && col + wlen > 78 && wlen > 1) {
            buf_append_str(b, "\r\n");
            col = 0;
        }
        buf_append(b, p, wlen);
        col += wlen;
        p += wlen;
    }
    buf_append_str(b, "\r\n");
}

/* A header value from UTF-8 text: as it is if ASCII, else encoded-words. */
static void deliver_header_text(struct buf *b, const char *name, const char *text)
{
    struct buf v;

    buf_init(&v, DELIVER_MESSAGE_MAX);
    buf_append_str(&v, "");
    if (deliver_is_ascii(text))
        buf_append_str(&v, text);
    else
        deliver_rfc2047(&v, text);
    deliver_header(b, name, v.p);
    buf_cleanup(&v);
}

/*
 * Append one address for a From or To header: control characters removed; a
 * non-ASCII display name ("Siân Jones <sian@school.example>") is encoded, and the
 * address itself keeps only its ASCII.
 */
static void deliver_header_address(struct buf *b, const char *addr)
{
    char *clean = deliver_cleaned(addr, DELIVER_HEADER_FIELD_MAX, CLEAN_COLLAPSE);
    char *lt = strrchr(clean, '<');
    char *spec;

    if (deliver_is_ascii(clean)) {
        buf_append_str(b, clean);
    } else if (lt) {
        spec = deliver_cleaned(lt, DELIVER_HEADER_FIELD_MAX, CLEAN_ASCII | CLEAN_COLLAPSE);
        *lt = '\0';
        while (lt > clean && lt[-1] == ' ')
            *--lt = '\0';
        if (*clean) {
            deliver_rfc2047(b, clean);
            buf_append_str(b, " ");
        }
        buf_append_str(b, spec);
        free(spec);
    } else {
        spec = deliver_cleaned(clean, DELIVER_HEADER_FIELD_MAX, CLEAN_ASCII | CLEAN_COLLAPSE);
        buf_append_str(b, spec);
        free(spec);
    }
    free(clean);
}

/* The address part of "Name <addr>" or "addr", in out; "" if none. */
static void deliver_addr_spec(const char *s, char *out, size_t outlen)
{
    const char *lt = strrchr(s, '<'), *gt;
    size_t len;

    if (lt) {
        s = lt + 1;
        gt = strchr(s, '>');
        len = gt ? (size_t)(gt - s) : strlen(s);
    } else {
        while (*s == ' ' || *s == '\t')
            s++;
        len = strlen(s);
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
    }
    if (len >= outlen)
        len = 0;
    memcpy(out, s, len);
    out[len] = '\0';
}

/* An envelope address may not carry anything that would end or extend an SMTP command. */
static int deliver_addr_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c <= ' ' || c == 0x7f || c == '<' || c == '>')
            return 0;
    }
    return 1;
}

/* ---- times ----------------------------------------------------------------------- */

static const char *const deliver_wday[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                           "Thursday", "Friday", "Saturday"};
static const char *const deliver_month[] = {"January",   "February", "March",    "April",
                                            "May",       "June",     "July",     "August",
                                            "September", "October",  "November", "December"};

static int64_t deliver_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Break ms into local time in tz (UTC if NULL). */
static void deliver_local(int64_t ms, const struct tz *tz, struct tz_local *out)
{
    int64_t t = deliver_floor_div(ms, 1000);
    struct tm tm;
    time_t tt = (time_t)t;

    if (tz) {
        tz_to_local(tz, t, out);
        return;
    }
    memset(out, 0, sizeof(*out));
    if (!gmtime_r(&tt, &tm))
        return;
    out->year = tm.tm_year + 1900;
    out->month = tm.tm_mon + 1;
    out->day = tm.tm_mday;
    out->wday = tm.tm_wday;
    out->hour = tm.tm_hour;
    out->minute = tm.tm_min;
    out->second = tm.tm_sec;
}

/* " (UTC)" or " (UTC+01:00)". */
static void deliver_offset(struct buf *b, const struct tz_local *l)
{
    int32_t off = l->utc_offset < 0 ? -l->utc_offset : l->utc_offset;

    if (off == 0)
        buf_append_str(b, " (UTC)");
    else
        buf_printf(b, " (UTC%c%02d:%02d)", l->utc_offset < 0 ? '-' : '+', (int)(off / 3600),
                   (int)(off / 60 % 60));
}

/* "Tuesday 3 March 2026 at 10:30:05 (UTC+01:00)" */
static void deliver_time_words(struct buf *b, int64_t ms, const struct tz *tz)
{
    struct tz_local l;

    deliver_local(ms, tz, &l);
    if (l.month < 1 || l.month > 12 || l.wday < 0 || l.wday > 6) {
        buf_append_str(b, "an unknown time");
        return;
    }
    buf_printf(b, "%s %d %s %d at %02d:%02d:%02d", deliver_wday[l.wday], l.day,
               deliver_month[l.month - 1], l.year, l.hour, l.minute, l.second);
    deliver_offset(b, &l);
}

/* "2026-03-03 10:30" */
static void deliver_time_short(struct buf *b, int64_t ms, const struct tz *tz)
{
    struct tz_local l;

    deliver_local(ms, tz, &l);
    buf_printf(b, "%04d-%02d-%02d %02d:%02d", l.year, l.month, l.day, l.hour, l.minute);
}

/* ISO 8601 UTC: "2026-03-03T10:30:00Z". */
static void deliver_time_iso(char *out, size_t outlen, int64_t ms)
{
    struct tz_local l;

    deliver_local(ms, NULL, &l);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02dZ", l.year, l.month, l.day, l.hour,
             l.minute, l.second);
}

/* RFC 5322 date in UTC: "Tue, 03 Mar 2026 10:30:00 +0000". */
static void deliver_time_rfc5322(char *out, size_t outlen, int64_t ms)
{
    struct tz_local l;

    deliver_local(ms, NULL, &l);
    if (l.month < 1 || l.month > 12 || l.wday < 0 || l.wday > 6) {
        snprintf(out, outlen, "Thu, 01 Jan 1970 00:00:00 +0000");
        return;
    }
    snprintf(out, outlen, "%.3s, %02d %.3s %04d %02d:%02d:%02d +0000", deliver_wday[l.wday], l.day,
             deliver_month[l.month - 1], l.year, l.hour, l.minute, l.second);
}

/* ---- messages ---------------------------------------------------------------------- */

/* The domain of the From address for Message-ID, letters, digits, '.' and '-' only. */
static void deliver_msgid_domain(const char *from, char *out, size_t outlen)
{
    char spec[256];
    const char *at;
    size_t n = 0;

    deliver_addr_spec(from ? from : "", spec, sizeof(spec));
    at = strrchr(spec, '@');
    if (at) {
        for (at++; *at && n + 1 < outlen; at++) {
            unsigned char c = (unsigned char)*at;

            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '-')
                out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    if (n == 0)
        snprintf(out, outlen, "haven.invalid");
}

/* From, To, Subject, Date, Message-ID and the MIME headers, then the blank line. */
static void deliver_headers(struct buf *b, const char *from, const char *const *to, int nto,
                            const char *subject, const char *idtag, int64_t now_ms)
{
    struct buf v;
    char date[64], domain[128];

    buf_init(&v, DELIVER_MESSAGE_MAX);
    buf_append_str(&v, "");
    deliver_header_address(&v, from ? from : "haven");
    deliver_header(b, "From", v.p);
    buf_reset(&v);
    for (int i = 0; i < nto; i++) {
        if (i > 0)
            buf_append_str(&v, ", ");
        deliver_header_address(&v, to[i] ? to[i] : "");
    }
    if (nto <= 0)
        buf_append_str(&v, "undisclosed-recipients:;");
    deliver_header(b, "To", v.p);
    buf_cleanup(&v);
    deliver_header_text(b, "Subject", subject);
    deliver_time_rfc5322(date, sizeof(date), now_ms);
    deliver_header(b, "Date", date);
    deliver_msgid_domain(from, domain, sizeof(domain));
    buf_printf(b, "Message-ID: <%s.%lld.%ld.%u@%s>\r\n", idtag, (long long)now_ms, (long)getpid(),
               atomic_fetch_add(&deliver_counter, 1u), domain);
    buf_append_str(b, "MIME-Version: 1.0\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n"
                      "Content-Transfer-Encoding: quoted-printable\r\n"
                      "Auto-Submitted: auto-generated\r\n"
                      "\r\n");
}

/* Append body (UTF-8 text with "\n" line ends) quoted-printable with CRLF line ends. */
static void deliver_qp(struct buf *b, const char *body)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)body;
    size_t col = 0;

    for (; *p; p++) {
        unsigned char c = *p;
        char enc[3];
        size_t n;
        int end = p[1] == '\n' || p[1] == '\0';

        if (c == '\n') {
            buf_append_str(b, "\r\n");
            col = 0;
            continue;
        }
        if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !end)) {
            enc[0] = (char)c;
            n = 1;
        } else {
            enc[0] = '=';
            enc[1] = hex[c >> 4];
            enc[2] = hex[c & 15];
            n = 3;
        }
        /* a soft break keeps the line within 76 characters including the '=' */
        if (col + n > (end ? 76u : 75u)) {
            buf_append_str(b, "=\r\n");
            col = 0;
        }
        buf_append(b, enc, n);
        col += n;
    }
    if (col > 0)
        buf_append_str(b, "\r\n");
}

/* A field for the body: cleaned, or the fallback when unknown or empty. */
static void deliver_put(struct buf *b, const char *s, size_t max, const char *fallback)
{
    size_t before = b->len;

    if (s)
        deliver_clean(b, s, max, CLEAN_COLLAPSE);
    if (b->len == before)
        buf_append_str(b, fallback);
}

static const char *deliver_severity_words(int severity)
{
    switch (severity) {
    case 5:
        return "act now, there may be a risk to life";
    case 4:
        return "act the same day";
    case 3:
        return "review";
    case 2:
        return "note";
    case 1:
        return "context only";
    default:
        return "severity not known";
    }
}

/* The user as named in a subject: username, else display name, else IP. */
static const char *deliver_who(const struct alert_view *a)
{
    if (a->username && *a->username)
        return a->username;
    if (a->display_name && *a->display_name)
        return a->display_name;
    if (a->ip && *a->ip)
        return a->ip;
    return "unknown user";
}

static void deliver_alert_body(struct buf *t, const struct alert_view *a)
{
    int has_name = a->display_name && *a->display_name;
    int has_user = a->username && *a->username;

    if (a->severity >= 5)
        buf_append_str(t, "URGENT: severity 5 means act now; there may be a risk to life.\n\n");
    buf_append_str(t, "haven raised a safeguarding alert");
    if (a->school && *a->school) {
        buf_append_str(t, " at ");
        deliver_put(t, a->school, DELIVER_FIELD_MAX, "");
    }
    buf_append_str(t, ".\n\n");

    buf_append_str(t, "Concern:     ");
    deliver_put(t, a->theme, DELIVER_FIELD_MAX, "not known");
    buf_append_str(t, "\n4C area:     ");
    deliver_put(t, a->area, DELIVER_FIELD_MAX, "not known");
    buf_printf(t, "\nSeverity:    %d of 5 (%s)\n", a->severity,
               deliver_severity_words(a->severity));

    buf_append_str(t, "Who:         ");
    if (has_name)
        deliver_put(t, a->display_name, DELIVER_FIELD_MAX, "");
    if (has_name && has_user)
        buf_append_str(t, " (username ");
    else if (has_user)
        buf_append_str(t, "username ");
    if (has_user)
        deliver_put(t, a->username, DELIVER_FIELD_MAX, "");
    if (has_name && has_user)
        buf_append_str(t, ")");
    if (!has_name && !has_user)
        buf_append_str(t, "not known (the device was not signed in)");
    buf_append_str(t, "\nGroup:       ");
    deliver_put(t, a->group_name, DELIVER_FIELD_MAX, "not known");
    buf_append_str(t, "\nWhen:        ");
    deliver_time_words(t, a->time_ms, a->tz);
    buf_append_str(t, "\nDevice:      ");
    deliver_put(t, a->device, DELIVER_FIELD_MAX, "not known");
    buf_append_str(t, "\nIP address:  ");
    deliver_put(t, a->ip, DELIVER_FIELD_MAX, "not known");

    buf_append_str(t, "\nFound in:    ");
    if (a->source && strcmp(a->source, "search") == 0)
        buf_append_str(t, "a web search");
    else if (a->source && strcmp(a->source, "page") == 0)
        buf_append_str(t, "a web page the pupil was reading or writing on");
    else
        deliver_put(t, a->source, DELIVER_FIELD_MAX, "not known");
    buf_append_str(t, "\nAddress:     ");
    deliver_put(t, a->url, DELIVER_TEXT_MAX, "not known");
    buf_append_str(t, "\nPhrase:      \"");
    deliver_put(t, a->phrase, DELIVER_FIELD_MAX, "not known");
    buf_append_str(t, "\" (language: ");
    deliver_put(t, a->lang, DELIVER_FIELD_MAX, "not known");
    buf_append_str(t, ")\n\n");

    buf_append_str(t, "What was written, quoted exactly as typed (it may be upsetting):\n\n    \"");
    deliver_put(t, a->excerpt, DELIVER_TEXT_MAX, "(no text was kept)");
    buf_append_str(t, "\"\n\n");

    buf_append_str(t, "What to do next\n\n");
    buf_append_str(t, "1. Look at what this person did around that time:\n     ");
    if (a->activity && *a->activity) {
        deliver_put(t, a->activity, DELIVER_TEXT_MAX, "");
    } else if (has_user) {
        char iso[40];

        deliver_time_iso(iso, sizeof(iso), a->time_ms);
        buf_append_str(t, "haven activity ");
        deliver_clean(t, a->username, DELIVER_FIELD_MAX, CLEAN_COLLAPSE);
        buf_printf(t, " --around %s", iso);
    } else {
        buf_append_str(t, "haven alerts show ");
        buf_printf(t, "%lld", (long long)a->id);
    }
    buf_append_str(t, "\n2. Follow the school's safeguarding and child protection procedures.\n");
    buf_printf(t,
               "3. Record the outcome with:\n     haven alerts resolve %lld --outcome ...\n"
               "   (see docs/alerts.md for the outcomes)\n\n",
               (long long)a->id);
    buf_printf(t, "Alert number: %lld\n\n", (long long)a->id);
    buf_append_str(t, "This message contains sensitive information about a child.\n"
                      "Keep it within the safeguarding team: do not forward or print it,\n"
                      "and delete it once the outcome is recorded in haven.\n");
}

char *deliver_email_message(const struct alert_view *a, const char *from, const char *const *to,
                            int nto, int64_t now_ms)
{
    struct buf m, t;
    char *who, *theme, idtag[64];

    buf_init(&t, DELIVER_BODY_MAX);
    buf_init(&m, DELIVER_MESSAGE_MAX);
    who = deliver_cleaned(deliver_who(a), DELIVER_HEADER_FIELD_MAX, CLEAN_COLLAPSE);
    theme = deliver_cleaned(a->theme ? a->theme : "safeguarding", DELIVER_HEADER_FIELD_MAX,
                            CLEAN_COLLAPSE);
    buf_printf(&t, "%s[haven] Severity %d %s alert: %s", a->severity >= 5 ? "URGENT " : "",
               a->severity, theme, who);
    snprintf(idtag, sizeof(idtag), "alert-%lld", (long long)a->id);
    deliver_headers(&m, from, to, nto, t.p, idtag, now_ms);
    buf_reset(&t);
    deliver_alert_body(&t, a);
    deliver_qp(&m, t.p);
    free(who);
    free(theme);
    buf_cleanup(&t);
    return m.p;
}

char *deliver_digest_message(const struct alert_view *items, size_t n, const char *school,
                             const char *from, const char *const *to, int nto, int64_t now_ms)
{
    const struct tz *tz = n > 0 ? items[0].tz : NULL;
    struct buf m, t;
    size_t i;

    buf_init(&t, DELIVER_BODY_MAX);
    buf_init(&m, DELIVER_MESSAGE_MAX);
    buf_append_str(&t, "[haven] Daily safeguarding digest");
    if (school && *school) {
        buf_append_str(&t, " for ");
        deliver_clean(&t, school, DELIVER_HEADER_FIELD_MAX, CLEAN_COLLAPSE);
    }
    if (n == 0)
        buf_append_str(&t, ": no alerts");
    else
        buf_printf(&t, ": %zu alert%s", n, n == 1 ? "" : "s");
    deliver_headers(&m, from, to, nto, t.p, "digest", now_ms);

    buf_reset(&t);
    buf_append_str(&t, "Lower-severity safeguarding alerts");
    if (school && *school) {
        buf_append_str(&t, " at ");
        deliver_clean(&t, school, DELIVER_FIELD_MAX, CLEAN_COLLAPSE);
    }
    buf_append_str(&t, " in the day up to ");
    deliver_time_words(&t, now_ms, tz);
    buf_append_str(&t, ".\n\n");
    if (n == 0)
        buf_append_str(&t, "There were none.\n");
    else
        buf_append_str(&t,
                       "Time, record number, user, group, concern, severity, phrase, address:\n\n");
    for (i = 0; i < n; i++) {
        const struct alert_view *a = &items[i];

        if (t.len > DELIVER_DIGEST_LIST_MAX) {
            buf_printf(&t, "... and %zu more (see `haven report` and `haven activity`)\n", n - i);
            break;
        }
        deliver_time_short(&t, a->time_ms, a->tz);
        buf_printf(&t, "  #%lld  ", (long long)a->id);
        deliver_put(&t, deliver_who(a), DELIVER_FIELD_MAX, "unknown user");
        if (a->display_name && *a->display_name && a->username && *a->username) {
            buf_append_str(&t, " (");
            deliver_put(&t, a->display_name, DELIVER_FIELD_MAX, "");
            buf_append_str(&t, ")");
        }
        buf_append_str(&t, "  group ");
        deliver_put(&t, a->group_name, DELIVER_FIELD_MAX, "not known");
        buf_append_str(&t, "  ");
        deliver_put(&t, a->theme, DELIVER_FIELD_MAX, "not known");
        buf_printf(&t, "  severity %d  \"", a->severity);
        deliver_put(&t, a->phrase, DELIVER_FIELD_MAX, "not known");
        buf_append_str(&t, "\"  ");
        deliver_put(&t, a->url, DELIVER_TEXT_MAX, "no address");
        buf_append_str(&t, "\n");
    }
    if (n > 0)
        buf_append_str(&t,
                       "\nThese did not raise alerts. To see what a pupil did around one, run:\n"
                       "  haven activity USER --around TIME\n");
    buf_append_str(&t, "\nThis message contains sensitive information about children.\n"
                       "Keep it within the safeguarding team: do not forward or print it.\n");
    deliver_qp(&m, t.p);
    buf_cleanup(&t);
    return m.p;
}

/* ---- JSON and syslog ---------------------------------------------------------------- */

static void deliver_json_str(json_t *o, const char *key, const char *s)
{
    char *clean;

    if (!s) {
        json_object_set_new(o, key, json_null());
        return;
    }
    /* keep newlines and tabs as the pupil wrote them only through JSON escapes: the
     * cleaner turns controls into spaces, which receivers display more safely */
    clean = deliver_cleaned(s, DELIVER_MESSAGE_MAX / 16, 0);
    json_object_set_new(o, key, json_string(clean));
    free(clean);
}

char *deliver_json(const struct alert_view *a)
{
    json_t *o = json_object();
    char iso[40], *out;

    deliver_time_iso(iso, sizeof(iso), a->time_ms);
    json_object_set_new(o, "id", json_integer(a->id));
    json_object_set_new(o, "time", json_string(iso));
    json_object_set_new(o, "time_ms", json_integer(a->time_ms));
    deliver_json_str(o, "school", a->school);
    deliver_json_str(o, "username", a->username);
    deliver_json_str(o, "display_name", a->display_name);
    deliver_json_str(o, "group_name", a->group_name);
    deliver_json_str(o, "ip", a->ip);
    deliver_json_str(o, "device", a->device);
    deliver_json_str(o, "theme", a->theme);
    deliver_json_str(o, "area", a->area);
    json_object_set_new(o, "severity", json_integer(a->severity));
    deliver_json_str(o, "lang", a->lang);
    deliver_json_str(o, "phrase", a->phrase);
    deliver_json_str(o, "excerpt", a->excerpt);
    deliver_json_str(o, "url", a->url);
    deliver_json_str(o, "source", a->source);
    deliver_json_str(o, "activity", a->activity);
    out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!out) {
        log_warnx("deliver: cannot serialise alert %lld as JSON", (long long)a->id);
        out = xstrdup("{}");
    }
    return out;
}

/* Append s for the syslog line: cleaned, '-' if unknown, and quotes escaped if asked. */
static void deliver_syslog_put(struct buf *b, const char *s, size_t max, int quoted)
{
    char *clean;

    if (!s || !*s) {
        buf_append_str(b, "-");
        return;
    }
    clean = deliver_cleaned(s, max, CLEAN_COLLAPSE);
    if (!*clean) {
        buf_append_str(b, "-");
    } else if (!quoted) {
        /* a space inside a field would make the line ambiguous to parse */
        for (char *p = clean; *p; p++) {
            if (*p == ' ')
                *p = '_';
        }
        buf_append_str(b, clean);
    } else {
        for (const char *p = clean; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_append_str(b, "\\");
            buf_append(b, p, 1);
        }
    }
    free(clean);
}

char *deliver_syslog_format(const struct alert_view *a, char *out, size_t outlen)
{
    struct buf b;
    size_t len;

    if (outlen == 0)
        return out;
    buf_init(&b, DELIVER_MESSAGE_MAX);
    buf_printf(&b, "alert %lld severity %d ", (long long)a->id, a->severity);
    deliver_syslog_put(&b, a->theme, DELIVER_FIELD_MAX, 0);
    buf_append_str(&b, " user ");
    deliver_syslog_put(&b, a->username, DELIVER_FIELD_MAX, 0);
    buf_append_str(&b, " group ");
    deliver_syslog_put(&b, a->group_name, DELIVER_FIELD_MAX, 0);
    buf_append_str(&b, " ip ");
    deliver_syslog_put(&b, a->ip, DELIVER_FIELD_MAX, 0);
    buf_append_str(&b, " url ");
    /* the URL is the field that may be long: leave room for the phrase after it */
    deliver_syslog_put(&b, a->url, outlen > 400 ? outlen - 400 : 40, 0);
    buf_append_str(&b, " phrase \"");
    deliver_syslog_put(&b, a->phrase, 300, 1);
    buf_append_str(&b, "\"");
    len = b.len < outlen ? b.len : outlen - 1;
    memcpy(out, b.p, len);
    out[len] = '\0';
    buf_cleanup(&b);
    return out;
}

static pthread_once_t deliver_syslog_once = PTHREAD_ONCE_INIT;

static void deliver_syslog_open(void)
{
    openlog("haven", LOG_PID | LOG_NDELAY, LOG_AUTH);
}

void deliver_syslog(const struct alert_view *a)
{
    char line[2048];

    pthread_once(&deliver_syslog_once, deliver_syslog_open);
    deliver_syslog_format(a, line, sizeof(line));
    syslog(LOG_AUTH | (a->severity >= 5 ? LOG_CRIT : LOG_WARNING), "%s", line);
}

/* ---- sending ------------------------------------------------------------------------- */

static void deliver_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void deliver_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* url for messages: without "user:password@", control characters removed. */
static void deliver_url_for_humans(const char *url, char *out, size_t outlen)
{
    const char *scheme = strstr(url, "://"), *host, *at, *end;
    char *prefix;
    struct buf b;

    buf_init(&b, 4096);
    buf_append_str(&b, "");
    if (scheme) {
        host = scheme + 3;
        end = host + strcspn(host, "/?#");
        at = memchr(host, '@', (size_t)(end - host));
        prefix = xstrndup(url, (size_t)(host - url));
        deliver_clean(&b, prefix, 100, CLEAN_ASCII | CLEAN_COLLAPSE);
        free(prefix);
        url = at ? at + 1 : host;
    }
    deliver_clean(&b, url, 1000, CLEAN_ASCII | CLEAN_COLLAPSE);
    snprintf(out, outlen, "%s", b.p);
    buf_cleanup(&b);
}

/* Does url start with scheme "://" (case-insensitive)? */
static int deliver_scheme_is(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);

    return strncasecmp(url, scheme, n) == 0 && strncmp(url + n, "://", 3) == 0;
}

/* Is the host of url loopback (127.0.0.0/8, ::1, localhost)? */
static int deliver_url_is_loopback(const char *url)
{
    const char *host = strstr(url, "://"), *at, *end;
    size_t len;

    if (!host)
        return 0;
    host += 3;
    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t)(end - host));
    if (at)
        host = at + 1;
    len = (size_t)(end - host);
    return (len >= 4 && strncmp(host, "127.", 4) == 0) ||
           (len >= 5 && strncmp(host, "[::1]", 5) == 0) ||
           (len >= 9 && strncasecmp(host, "localhost", 9) == 0 && (len == 9 || host[9] == ':'));
}

/* Describe a transport failure in a few plain words. */
static void deliver_curl_reason(CURL *h, CURLcode cc, const char *errbuf, long timeout_ms,
                                char *out, size_t outlen)
{
    long oserr = 0;

    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
    if (cc == CURLE_COULDNT_CONNECT && oserr == ECONNREFUSED)
        snprintf(out, outlen, "connection refused");
    else if (cc == CURLE_COULDNT_CONNECT && oserr != 0)
        snprintf(out, outlen, "cannot connect: %s", strerror((int)oserr));
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        snprintf(out, outlen, "no answer within %ld ms", timeout_ms);
    else if (cc == CURLE_COULDNT_RESOLVE_HOST)
        snprintf(out, outlen, "cannot resolve the host name (%s)",
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
    else if (cc == CURLE_PEER_FAILED_VERIFICATION)
        snprintf(out, outlen, "the certificate did not verify (%s)",
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
    else
        snprintf(out, outlen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
}

/* What the SMTP debug callback saw. */
struct deliver_trace {
    char cmd[300];       /* the last command sent (AUTH arguments dropped) */
    char reply[512];     /* the relay's last reply line */
    char failed[300];    /* the command the relay last refused */
    char failreply[512]; /* and its reply */
    struct buf refused;  /* "<a>: 550 ...; <b>: 550 ..." */
    int nrefused;
};

/* Copy the first line of data (without CR LF and controls) to out. */
static void deliver_line_copy(char *out, size_t outlen, const char *data, size_t size)
{
    size_t n = 0;

    for (size_t i = 0; i < size && data[i] != '\r' && data[i] != '\n' && n + 1 < outlen; i++)
        out[n++] = (unsigned char)data[i] < 0x20 ? ' ' : data[i];
    out[n] = '\0';
}

static int deliver_smtp_debug(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
    struct deliver_trace *tr = arg;

    (void)h;
    if (type == CURLINFO_HEADER_OUT) {
        deliver_line_copy(tr->cmd, sizeof(tr->cmd), data, size);
        if (strncasecmp(tr->cmd, "AUTH", 4) == 0)
            tr->cmd[4] = '\0'; /* never keep credentials */
    } else if (type == CURLINFO_HEADER_IN) {
        deliver_line_copy(tr->reply, sizeof(tr->reply), data, size);
        if (tr->reply[0] != '4' && tr->reply[0] != '5')
            return 0;
        snprintf(tr->failed, sizeof(tr->failed), "%s", tr->cmd);
        snprintf(tr->failreply, sizeof(tr->failreply), "%s", tr->reply);
        if (strncasecmp(tr->cmd, "RCPT TO:", 8) == 0) {
            buf_printf(&tr->refused, "%s%s: %s", tr->nrefused ? "; " : "", tr->cmd + 8, tr->reply);
            tr->nrefused++;
        }
    }
    return 0;
}

struct deliver_upload {
    const char *p;
    size_t left;
};

static size_t deliver_read(char *dst, size_t size, size_t nmemb, void *arg)
{
    struct deliver_upload *u = arg;
    size_t n = size * nmemb;

    if (n > u->left)
        n = u->left;
    memcpy(dst, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

int deliver_smtp_send(const struct deliver_smtp *cfg, const char *const *to, int nto,
                      const char *message, char *err, size_t errlen)
{
    struct deliver_trace tr;
    struct deliver_upload up = {message, message ? strlen(message) : 0};
    struct curl_slist *rcpt = NULL;
    char where[1024], errbuf[CURL_ERROR_SIZE] = "", spec[320], envfrom[330], reason[1024];
    long timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms : DELIVER_TIMEOUT_DEFAULT_MS;
    int smtps, rc = -1;
    CURL *h = NULL;
    CURLcode cc;

    memset(&tr, 0, sizeof(tr));
    buf_init(&tr.refused, 8192);
    buf_append_str(&tr.refused, "");
    deliver_err(err, errlen, "%s", "");
    deliver_url_for_humans(cfg->url ? cfg->url : "", where, sizeof(where));
    if (!cfg->url ||
        !(deliver_scheme_is(cfg->url, "smtp") || deliver_scheme_is(cfg->url, "smtps"))) {
        deliver_err(err, errlen, "%s: not an smtp:// or smtps:// URL", where);
        goto out;
    }
    smtps = deliver_scheme_is(cfg->url, "smtps");
    if (nto <= 0) {
        deliver_err(err, errlen, "%s: no recipients", where);
        goto out;
    }
    if (!message) {
        deliver_err(err, errlen, "%s: no message", where);
        goto out;
    }
    deliver_addr_spec(cfg->from ? cfg->from : "", spec, sizeof(spec));
    if (!deliver_addr_ok(spec)) {
        deliver_err(err, errlen, "%s: the sender address '%s' is not a plain e-mail address", where,
                    spec);
        goto out;
    }
    snprintf(envfrom, sizeof(envfrom), "<%s>", spec);
    for (int i = 0; i < nto; i++) {
        deliver_addr_spec(to[i] ? to[i] : "", spec, sizeof(spec));
        if (!deliver_addr_ok(spec)) {
            char *shown = deliver_cleaned(to[i] ? to[i] : "", 200, CLEAN_COLLAPSE);

            deliver_err(err, errlen, "%s: the recipient '%s' is not a plain e-mail address", where,
                        shown);
            free(shown);
            goto out;
        }
        rcpt = curl_slist_append(rcpt, spec);
        if (!rcpt) {
            deliver_err(err, errlen, "%s: out of memory", where);
            goto out;
        }
    }

    h = curl_easy_init();
    if (!h) {
        deliver_err(err, errlen, "%s: cannot start libcurl", where);
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, cfg->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, smtps ? "smtps" : "smtp");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (smtps)
        curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    else if (cfg->password && !deliver_url_is_loopback(cfg->url))
        curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    else
        curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    if (cfg->user) {
        curl_easy_setopt(h, CURLOPT_USERNAME, cfg->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->password ? cfg->password : "");
    }
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, envfrom);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    /* one mistyped address must not stop the alert reaching everyone else */
#if LIBCURL_VERSION_NUM >= 0x080200
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT_ALLOWFAILS, 1L);
#else
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
#endif
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, deliver_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &up);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, deliver_smtp_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, &tr);

    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        if (tr.nrefused > 0 && nto == tr.nrefused)
            deliver_err(err, errlen, "%s: relay refused recipient%s %s", where,
                        tr.nrefused > 1 ? "s" : "", tr.refused.p);
        else if (cc == CURLE_USE_SSL_FAILED)
            deliver_err(err, errlen,
                        "%s: the relay does not offer STARTTLS (needed to send the password)",
                        where);
        else if (cc == CURLE_LOGIN_DENIED)
            deliver_err(err, errlen, "%s: the relay refused the user name or password: %s", where,
                        tr.failreply[0] ? tr.failreply : errbuf);
        else if (tr.failreply[0])
            deliver_err(err, errlen, "%s: relay refused %.40s: %s", where, tr.failed, tr.failreply);
        else {
            deliver_curl_reason(h, cc, errbuf, timeout, reason, sizeof(reason));
            deliver_err(err, errlen, "%s: %s", where, reason);
        }
        goto out;
    }
    if (tr.nrefused > 0) {
        deliver_err(err, errlen, "%s: relay refused recipient%s %s (sent to the others)", where,
                    tr.nrefused > 1 ? "s" : "", tr.refused.p);
        log_warnx("alert mail: %s: relay refused recipient%s %s (sent to the others)", where,
                  tr.nrefused > 1 ? "s" : "", tr.refused.p);
    }
    rc = 0;
out:
    if (h)
        curl_easy_cleanup(h);
    curl_slist_free_all(rcpt);
    buf_cleanup(&tr.refused);
    return rc;
}

static size_t deliver_discard(char *data, size_t size, size_t nmemb, void *arg)
{
    (void)data;
    (void)arg;
    return size * nmemb;
}

int deliver_webhook_post(const char *url, const char *json, long timeout_ms, char *err,
                         size_t errlen)
{
    char where[1024], errbuf[CURL_ERROR_SIZE] = "", reason[1024];
    long timeout = timeout_ms > 0 ? timeout_ms : DELIVER_TIMEOUT_DEFAULT_MS, status = 0;
    struct curl_slist *hdrs = NULL;
    int https, rc = -1;
    CURL *h = NULL;
    CURLcode cc;

    deliver_err(err, errlen, "%s", "");
    deliver_url_for_humans(url ? url : "", where, sizeof(where));
    if (!url || !(deliver_scheme_is(url, "http") || deliver_scheme_is(url, "https"))) {
        deliver_err(err, errlen, "%s: not an http:// or https:// URL", where);
        goto out;
    }
    https = deliver_scheme_is(url, "https");
    h = curl_easy_init();
    if (!h) {
        deliver_err(err, errlen, "%s: cannot start libcurl", where);
        goto out;
    }
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (hdrs)
        hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    if (!hdrs) {
        deliver_err(err, errlen, "%s: out of memory", where);
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, https ? "https" : "http");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "haven/" HAVEN_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, json ? json : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(json ? strlen(json) : 0));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, deliver_discard);

    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        deliver_curl_reason(h, cc, errbuf, timeout, reason, sizeof(reason));
        deliver_err(err, errlen, "%s: %s", where, reason);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        deliver_err(err, errlen, "%s: HTTP %ld", where, status);
        goto out;
    }
    rc = 0;
out:
    if (h)
        curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    return rc;
}
