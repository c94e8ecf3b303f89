/*
 * alert.c -- alert de-duplication, the delivery dispatcher, the daily digest and purge.
 *
 * DESIGN. The recorder's writer thread decides (alert_raise): it stores the alert and
 * one pending row per delivery in the same transaction as the event, so the decision
 * and the record can never disagree. The dispatcher thread only acts on rows: each
 * pass asks the store for the deliveries that are due, sends each one and writes the
 * outcome back ("sent", or attempts + 1 and the next try, or "failed"). Because the
 * queue of work is the delivery table itself, a restart picks up where the last run
 * stopped, and `haven alerts show` tells the DSL exactly where each alert went.
 *
 * The thread sleeps on a condition variable (monotonic clock) for at most a second;
 * alert_kick wakes it so an alert is sent within a moment of the request. The digest
 * and the purge are scheduled in wall-clock time from clock_now_ms(), so a test that
 * fixes the clock never sees them fire by surprise.
 */
#include "common/compat.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "alert/alert.h"
#include "alert/deliver.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/tz.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "monitor/library.h"
#include "store/store.h"

#define ALERT_TICK_MS 1000
#define ALERT_DAY_MS (24 * 3600 * 1000LL)
#define ALERT_PURGE_FIRST_MS 60000
#define ALERT_MAX_TO 80 /* 32 + 32 addresses fit, with room */
#define ALERT_TARGET_MAX 8192
#define ALERT_ERR_MAX 512
#define ALERT_DIGEST_MAX 20000 /* items read for one digest; the message cuts long lists */

struct alert_dispatcher {
    const struct config *cfg;
    struct store *st;
    char *school;
    const struct tz *tz;
    char *password; /* from alert-smtp-password-file; NULL: none */
    int no_purge;
    int digest_minute; /* minutes after local midnight; -1: no digest */

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int kicked;   /* guarded by mu */
    int stopping; /* guarded by mu */

    int64_t next_digest_ms; /* dispatcher thread only */
    int64_t next_purge_ms;

    _Atomic uint64_t sent, retries, failed, digests, purges;
};

int64_t alert_backoff_ms(int attempts)
{
    static const int64_t steps[] = {10000, 30000, 120000, 600000, 1800000, 3600000};
    int n = (int)(sizeof(steps) / sizeof(steps[0]));

    if (attempts < 1)
        return steps[0];
    if (attempts > n)
        return steps[n - 1];
    return steps[attempts - 1];
}

/* ---------------------------------------------------------------- raising */

static int alert_put_delivery(struct store *st, int64_t id, const char *channel, const char *target,
                              int64_t now_ms, char *err, size_t errlen)
{
    struct store_delivery d;

    memset(&d, 0, sizeof(d));
    d.alert_id = id;
    d.channel = channel;
    d.target = target;
    d.status = "pending";
    d.next_ms = now_ms;
    return store_delivery_put(st, &d, err, errlen);
}

/* The e-mail recipients of an alert of severity sev, joined with ", ", into b. */
static void alert_recipients(const struct config *cfg, int sev, struct buf *b)
{
    for (int i = 0; i < cfg->nalert_email_to; i++) {
        if (!cfg->alert_email_to[i] || !cfg->alert_email_to[i][0])
            continue;
        if (b->len > 0)
            buf_append_str(b, ", ");
        buf_append_str(b, cfg->alert_email_to[i]);
    }
    if (sev < 5)
        return;
    for (int i = 0; i < cfg->nalert_urgent_to; i++) {
        if (!cfg->alert_urgent_to[i] || !cfg->alert_urgent_to[i][0])
            continue;
        if (b->len > 0)
            buf_append_str(b, ", ");
        buf_append_str(b, cfg->alert_urgent_to[i]);
    }
}

enum alert_raised alert_raise(struct store *st, const struct config *cfg,
                              const struct store_alert *a, int64_t now_ms, int64_t *id, char *err,
                              size_t errlen)
{
    enum alert_raised rc = ALERT_RAISE_ERROR;
    struct store_alert copy = *a;
    struct buf to;
    int max_sev = 0, n;
    int64_t aid;

    buf_init(&to, ALERT_TARGET_MAX);
    n = store_alert_recent(st, a->username, a->theme, now_ms - cfg->alert_dedup_ms, &max_sev, err,
                           errlen);
    if (n < 0)
        goto out;
    copy.suppressed = cfg->alert_dedup_ms > 0 && n > 0 && max_sev >= a->severity;
    aid = store_alert_add(st, &copy, err, errlen);
    if (aid < 0)
        goto out;
    if (id)
        *id = aid;
    if (copy.suppressed) {
        rc = ALERT_RAISE_SUPPRESSED;
        goto out;
    }
    alert_recipients(cfg, a->severity, &to);
    if (to.len > 0 && cfg->alert_smtp && cfg->alert_smtp[0] &&
        alert_put_delivery(st, aid, "email", to.p, now_ms, err, errlen) < 0)
        goto out;
    for (int i = 0; i < cfg->nalert_webhook; i++) {
        if (alert_put_delivery(st, aid, "webhook", cfg->alert_webhook[i], now_ms, err, errlen) < 0)
            goto out;
    }
    if (cfg->alert_syslog && alert_put_delivery(st, aid, "syslog", "", now_ms, err, errlen) < 0)
        goto out;
    rc = ALERT_RAISE_QUEUED;
out:
    buf_cleanup(&to);
    return rc;
}

/* ---------------------------------------------------------------- building the view */

static void alert_iso(int64_t ms, char *out, size_t outlen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Percent-encode s for a query string value. */
static void alert_urlencode(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;

    for (; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            buf_append(b, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(b, esc, 3);
        }
    }
}

/* A username as one shell word: as it is when it is plain, else in single quotes. */
static void alert_shell_word(struct buf *b, const char *s)
{
    const char *p;

    for (p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._@-+", *p)))
            break;
    }
    if (!*p && *s) {
        buf_append_str(b, s);
        return;
    }
    buf_append_str(b, "'");
    for (p = s; *p; p++) {
        if (*p == '\'')
            buf_append_str(b, "'\\''");
        else
            buf_append(b, p, 1);
    }
    buf_append_str(b, "'");
}

/* Where the DSL looks at what the user did around the alert; empty when nobody is known. */
static void alert_activity(const struct config *cfg, const struct store_alert *a, struct buf *b)
{
    char iso[32];
    size_t n;

    if (!a->username || !a->username[0])
        return;
    alert_iso(a->time_ms, iso, sizeof(iso));
    if (cfg->console_url && cfg->console_url[0]) {
        n = strlen(cfg->console_url);
        while (n > 0 && cfg->console_url[n - 1] == '/')
            n--;
        buf_append(b, cfg->console_url, n);
        buf_append_str(b, "/activity?user=");
        alert_urlencode(b, a->username);
        buf_append_str(b, "&around=");
        alert_urlencode(b, iso);
        return;
    }
    buf_append_str(b, "haven activity ");
    alert_shell_word(b, a->username);
    buf_printf(b, " --around %s", iso);
}

static const char *alert_area(const char *theme)
{
    int t = theme ? library_theme_find(theme) : -1;

    return t >= 0 ? library_theme_4c(t) : NULL;
}

/* ---------------------------------------------------------------- sending */

/* Split "a, b, c" into to[] (pointers into copy, which is modified). Returns the count. */
static int alert_split_to(char *copy, const char **to, int max)
{
    int n = 0;
    char *p = copy, *comma;

    while (p && *p && n < max) {
        while (*p == ' ')
            p++;
        comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (*p)
            to[n++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return n;
}

static int alert_send_email(struct alert_dispatcher *d, const struct alert_view *v,
                            const char *target, int64_t now_ms, char *err, size_t errlen)
{
    const struct config *cfg = d->cfg;
    const char *to[ALERT_MAX_TO];
    char *copy = xstrdup(target), *msg = NULL;
    struct deliver_smtp smtp;
    int nto, rc = -1;

    nto = alert_split_to(copy, to, ALERT_MAX_TO);
    if (nto == 0) {
        snprintf(err, errlen, "no e-mail recipients");
        goto out;
    }
    memset(&smtp, 0, sizeof(smtp));
    smtp.url = cfg->alert_smtp;
    smtp.user = cfg->alert_smtp_user && cfg->alert_smtp_user[0] ? cfg->alert_smtp_user : NULL;
    smtp.password = d->password;
    smtp.from = cfg->alert_email_from;
    smtp.timeout_ms = ALERT_SMTP_TIMEOUT_MS;
    msg = deliver_email_message(v, cfg->alert_email_from, to, nto, now_ms);
    rc = deliver_smtp_send(&smtp, to, nto, msg, err, errlen);
out:
    free(msg);
    free(copy);
    return rc;
}

/* Send one delivery of alert a. Returns 0 or -1 with the reason. */
static int alert_send(struct alert_dispatcher *d, const struct store_delivery *dl,
                      const struct alert_view *v, int64_t now_ms, char *err, size_t errlen)
{
    char *json;
    int rc;

    if (strcmp(dl->channel, "email") == 0)
        return alert_send_email(d, v, dl->target, now_ms, err, errlen);
    if (strcmp(dl->channel, "webhook") == 0) {
        json = deliver_json(v);
        rc = deliver_webhook_post(dl->target, json, ALERT_WEBHOOK_TIMEOUT_MS, err, errlen);
        free(json);
        return rc;
    }
    if (strcmp(dl->channel, "syslog") == 0) {
        deliver_syslog(v);
        return 0;
    }
    snprintf(err, errlen, "unknown channel \"%s\"", dl->channel);
    return -1;
}

struct alert_pass {
    struct alert_dispatcher *d;
    int64_t now_ms;
    int first_only; /* closing: first tries only */
};

/* One due delivery: send it and record the outcome. Always returns 0 (go on). */
static int alert_deliver_one(void *arg, const struct store_delivery *dl)
{
    struct alert_pass *pass = arg;
    struct alert_dispatcher *d = pass->d;
    struct store_alert a;
    struct store_user u;
    struct store_delivery out = *dl;
    struct alert_view v;
    struct buf activity;
    char err[ALERT_ERR_MAX] = "", serr[ALERT_ERR_MAX];
    int have_user = 0, found;

    if (pass->first_only && dl->attempts > 0)
        return 0;
    memset(&u, 0, sizeof(u));
    buf_init(&activity, 4096);
    found = store_alert_get(d->st, dl->alert_id, &a, serr, sizeof(serr));
    if (found <= 0) {
        if (found < 0)
            log_warnx("alert %" PRId64 ": %s", dl->alert_id, serr);
        goto out;
    }
    if (a.username && a.username[0])
        have_user = store_user_get(d->st, a.username, &u, serr, sizeof(serr)) == 1;
    alert_activity(d->cfg, &a, &activity);
    memset(&v, 0, sizeof(v));
    v.id = a.id;
    v.time_ms = a.time_ms;
    v.school = d->school;
    v.username = a.username;
    v.display_name = have_user ? u.display_name : NULL;
    v.group_name = a.group_name;
    v.ip = a.ip;
    v.device = a.device;
    v.theme = a.theme;
    v.area = alert_area(a.theme);
    v.severity = a.severity;
    v.lang = a.lang;
    v.phrase = a.phrase;
    v.excerpt = a.excerpt;
    v.url = a.url;
    v.source = a.source;
    v.activity = activity.len > 0 ? activity.p : NULL;
    v.tz = d->tz;

    out.attempts = dl->attempts + 1;
    if (alert_send(d, dl, &v, pass->now_ms, err, sizeof(err)) == 0) {
        out.status = "sent";
        out.last_error = NULL;
        out.next_ms = 0;
        atomic_fetch_add(&d->sent, 1);
        log_info("alert %" PRId64 " (%s, severity %d) sent by %s%s%s", a.id, a.theme, a.severity,
                 dl->channel, dl->target[0] ? " to " : "", dl->target);
    } else if (out.attempts >= ALERT_MAX_ATTEMPTS) {
        out.status = "failed";
        out.last_error = err;
        atomic_fetch_add(&d->failed, 1);
        log_warnx("alert %" PRId64 ": %s delivery failed %d times, giving up: %s", a.id,
                  dl->channel, out.attempts, err);
    } else {
        out.status = "pending";
        out.last_error = err;
        out.next_ms = pass->now_ms + alert_backoff_ms(out.attempts);
        atomic_fetch_add(&d->retries, 1);
        log_warnx("alert %" PRId64 ": %s delivery failed (try %d, next in %" PRId64 " s): %s", a.id,
                  dl->channel, out.attempts, alert_backoff_ms(out.attempts) / 1000, err);
    }
    if (store_delivery_put(d->st, &out, serr, sizeof(serr)) < 0)
        log_warnx("alert %" PRId64 ": cannot record the %s delivery: %s", a.id, dl->channel, serr);
    store_alert_cleanup(&a);
out:
    if (have_user)
        store_user_cleanup(&u);
    buf_cleanup(&activity);
    return 0;
}

static void alert_deliver_due(struct alert_dispatcher *d, int first_only)
{
    struct alert_pass pass = {d, clock_now_ms(), first_only};
    char err[ALERT_ERR_MAX];

    if (store_delivery_due(d->st, pass.now_ms, alert_deliver_one, &pass, err, sizeof(err)) < 0)
        log_warnx("alert dispatcher: %s", err);
}

/* ---------------------------------------------------------------- the daily digest */

/* "HH:MM" as minutes after midnight, or -1. */
static int alert_parse_hhmm(const char *s)
{
    int h, m;

    if (!s || strlen(s) != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++) {
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    }
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59)
        return -1;
    return h * 60 + m;
}

/* The first instant after now_ms (ms) when the school's clock reads minute (of the day). */
static int64_t alert_next_daily(const struct tz *tz, int minute, int64_t now_ms)
{
    int64_t now = now_ms / 1000, day, local, at;
    struct tz_local lt;

    if (tz) {
        tz_to_local(tz, now, &lt);
        day = clock_days_from_civil(lt.year, lt.month, lt.day);
    } else {
        day = now >= 0 ? now / 86400 : (now - 86399) / 86400;
    }
    for (int i = 0; i < 3; i++) {
        local = (day + i) * 86400 + (int64_t)minute * 60;
        at = tz ? tz_local_to_utc(tz, local) : local;
        if (at * 1000 > now_ms)
            return at * 1000;
    }
    return now_ms + ALERT_DAY_MS; /* cannot happen */
}

struct alert_digest {
    struct alert_view *items;
    size_t n, cap;
    /* the alerts of the window: their time, user and theme, joined in one string each */
    char **keys;
    size_t nkeys, capkeys;
    const struct tz *tz;
};

static char *alert_key(int64_t time_ms, const char *user, const char *theme)
{
    struct buf b;
    char *s;

    buf_init(&b, 1024);
    buf_printf(&b, "%" PRId64 "|", time_ms);
    for (const char *p = user ? user : ""; *p; p++) {
        char c = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
        buf_append(&b, &c, 1);
    }
    buf_printf(&b, "|%s", theme ? theme : "");
    s = xstrdup(b.p ? b.p : "");
    buf_cleanup(&b);
    return s;
}

static int alert_digest_alert(void *arg, const struct store_alert *a)
{
    struct alert_digest *g = arg;

    g->keys = xgrow(g->keys, &g->capkeys, g->nkeys + 1, sizeof(*g->keys));
    g->keys[g->nkeys++] = alert_key(a->time_ms, a->username, a->theme);
    return 0;
}

static char *alert_dup(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static int alert_digest_event(void *arg, const struct store_event *e)
{
    struct alert_digest *g = arg;
    struct alert_view *v;
    char *key;
    int has_alert = 0;

    if (e->severity < 1)
        return 0;
    key = alert_key(e->time_ms, e->username, e->theme);
    for (size_t i = 0; i < g->nkeys && !has_alert; i++)
        has_alert = strcmp(g->keys[i], key) == 0;
    free(key);
    if (has_alert)
        return 0;
    g->items = xgrow(g->items, &g->cap, g->n + 1, sizeof(*g->items));
    v = &g->items[g->n++];
    memset(v, 0, sizeof(*v));
    v->id = e->id;
    v->time_ms = e->time_ms;
    v->username = alert_dup(e->username);
    v->group_name = alert_dup(e->group_name);
    v->ip = alert_dup(e->ip);
    v->theme = alert_dup(e->theme);
    v->severity = e->severity;
    v->phrase = alert_dup(e->phrase);
    v->excerpt = alert_dup(e->excerpt);
    v->url = alert_dup(e->url);
    v->tz = g->tz;
    return 0;
}

static void alert_digest_free(struct alert_digest *g)
{
    for (size_t i = 0; i < g->n; i++) {
        struct alert_view *v = &g->items[i];
        free((char *)(uintptr_t)v->username);
        free((char *)(uintptr_t)v->group_name);
        free((char *)(uintptr_t)v->ip);
        free((char *)(uintptr_t)v->theme);
        free((char *)(uintptr_t)v->phrase);
        free((char *)(uintptr_t)v->excerpt);
        free((char *)(uintptr_t)v->url);
    }
    for (size_t i = 0; i < g->nkeys; i++)
        free(g->keys[i]);
    free(g->items);
    free(g->keys);
}

/* Send the digest of the 24 hours up to now_ms. */
static void alert_send_digest(struct alert_dispatcher *d, int64_t now_ms)
{
    const struct config *cfg = d->cfg;
    struct alert_digest g;
    struct store_event_query eq;
    struct store_alert_query aq;
    struct deliver_smtp smtp;
    char err[ALERT_ERR_MAX], *msg = NULL;
    const char **to = NULL;
    int nto = 0;

    memset(&g, 0, sizeof(g));
    g.tz = d->tz;
    if (cfg->nalert_email_to == 0 || !cfg->alert_smtp || !cfg->alert_smtp[0])
        return;
    memset(&aq, 0, sizeof(aq));
    aq.since_ms = now_ms - ALERT_DAY_MS;
    aq.until_ms = now_ms + 1;
    memset(&eq, 0, sizeof(eq));
    eq.since_ms = now_ms - ALERT_DAY_MS;
    eq.until_ms = now_ms + 1;
    eq.kind = "match";
    eq.limit = ALERT_DIGEST_MAX;
    if (store_alert_list(d->st, &aq, alert_digest_alert, &g, err, sizeof(err)) < 0 ||
        store_event_list(d->st, &eq, alert_digest_event, &g, err, sizeof(err)) < 0) {
        log_warnx("daily digest not sent: %s", err);
        goto out;
    }
    to = xcalloc((size_t)cfg->nalert_email_to, sizeof(*to));
    for (int i = 0; i < cfg->nalert_email_to; i++)
        to[nto++] = cfg->alert_email_to[i];
    msg = deliver_digest_message(g.items, g.n, d->school, cfg->alert_email_from, to, nto, now_ms);
    memset(&smtp, 0, sizeof(smtp));
    smtp.url = cfg->alert_smtp;
    smtp.user = cfg->alert_smtp_user && cfg->alert_smtp_user[0] ? cfg->alert_smtp_user : NULL;
    smtp.password = d->password;
    smtp.from = cfg->alert_email_from;
    smtp.timeout_ms = ALERT_SMTP_TIMEOUT_MS;
    if (deliver_smtp_send(&smtp, to, nto, msg, err, sizeof(err)) < 0) {
        log_warnx("daily digest not sent: %s", err);
        goto out;
    }
    atomic_fetch_add(&d->digests, 1);
    log_info("daily digest sent to %d recipient%s: %zu match%s", nto, nto == 1 ? "" : "s", g.n,
             g.n == 1 ? "" : "es");
out:
    free(msg);
    free(to);
    alert_digest_free(&g);
}

static void alert_digest_if_due(struct alert_dispatcher *d, int64_t now_ms)
{
    if (d->digest_minute < 0 || now_ms < d->next_digest_ms)
        return;
    if (now_ms - d->next_digest_ms < 60000)
        alert_send_digest(d, now_ms);
    else
        log_info("daily digest skipped: haven was not running at %s", d->cfg->alert_digest_at);
    d->next_digest_ms = alert_next_daily(d->tz, d->digest_minute, now_ms);
}

/* ---------------------------------------------------------------- purge */

static void alert_purge_if_due(struct alert_dispatcher *d, int64_t now_ms)
{
    const struct config *cfg = d->cfg;
    struct store_retention r;
    struct store_purged p;
    char err[ALERT_ERR_MAX];

    if (d->no_purge || now_ms < d->next_purge_ms)
        return;
    d->next_purge_ms = now_ms + ALERT_DAY_MS;
    memset(&r, 0, sizeof(r));
    r.events_ms = cfg->retain_events_ms;
    r.rollups_ms = cfg->retain_rollups_ms;
    r.alerts_ms = cfg->retain_alerts_ms;
    if (store_purge(d->st, &r, now_ms, &p, err, sizeof(err)) < 0) {
        log_warnx("purge of old records failed (tried again in 24 hours): %s", err);
        return;
    }
    atomic_fetch_add(&d->purges, 1);
    log_info("purged records past their retention: %" PRId64 " events, %" PRId64
             " roll-ups, %" PRId64 " alerts, %" PRId64 " deliveries, %" PRId64 " sessions",
             p.events, p.rollups, p.alerts, p.deliveries, p.sessions);
}

/* ---------------------------------------------------------------- the thread */

static void *alert_main(void *arg)
{
    struct alert_dispatcher *d = arg;
    struct timespec ts;
    int stopping;

    for (;;) {
        alert_deliver_due(d, 0);
        alert_digest_if_due(d, clock_now_ms());
        alert_purge_if_due(d, clock_now_ms());

        pthread_mutex_lock(&d->mu);
        if (!d->kicked && !d->stopping) {
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += ALERT_TICK_MS / 1000;
            pthread_cond_timedwait(&d->cond, &d->mu, &ts);
        }
        d->kicked = 0;
        stopping = d->stopping;
        pthread_mutex_unlock(&d->mu);
        if (stopping)
            break;
    }
    /* Closing: what the recorder wrote last still gets its first try. */
    alert_deliver_due(d, 1);
    return NULL;
}

/* The first line of the password file. */
static char *alert_read_password(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t n;

    if (!f) {
        snprintf(err, errlen, "alert-smtp-password-file %s: %s", path, strerror(errno));
        return NULL;
    }
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    n = strcspn(line, "\r\n");
    line[n] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "alert-smtp-password-file %s: the first line is empty", path);
        return NULL;
    }
    return xstrdup(line);
}

static void alert_free(struct alert_dispatcher *d)
{
    if (d->st)
        store_close(d->st);
    if (d->password) {
        memset(d->password, 0, strlen(d->password));
        free(d->password);
    }
    free(d->school);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

struct alert_dispatcher *alert_start(const struct alert_dispatcher_config *dc, char *err,
                                     size_t errlen)
{
    struct alert_dispatcher *d = xcalloc(1, sizeof(*d)), *result = NULL;
    const struct config *cfg = dc->cfg;
    pthread_condattr_t attr;
    sigset_t all, old;
    int64_t now;
    int rc;

    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &attr);
    pthread_condattr_destroy(&attr);
    d->cfg = cfg;
    d->tz = dc->tz;
    d->school = dc->school ? xstrdup(dc->school) : NULL;
    d->no_purge = dc->no_purge;
    if (cfg->alert_smtp_password_file && cfg->alert_smtp_password_file[0]) {
        d->password = alert_read_password(cfg->alert_smtp_password_file, err, errlen);
        if (!d->password)
            goto out;
    }
    d->digest_minute = alert_parse_hhmm(cfg->alert_digest_at);
    if (cfg->alert_digest_at && cfg->alert_digest_at[0] && d->digest_minute < 0) {
        snprintf(err, errlen, "alert-digest-at \"%s\" is not a time of day HH:MM",
                 cfg->alert_digest_at);
        goto out;
    }
    d->st = store_open(dc->db_path, err, errlen);
    if (!d->st)
        goto out;
    now = clock_now_ms();
    if (d->digest_minute >= 0)
        d->next_digest_ms = alert_next_daily(d->tz, d->digest_minute, now);
    d->next_purge_ms = now + ALERT_PURGE_FIRST_MS;
    /* The dispatcher takes no signals: they belong to the main loop. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&d->thread, NULL, alert_main, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "alerts: cannot start the dispatcher thread: %s", strerror(rc));
        goto out;
    }
    result = d;
    d = NULL;
out:
    if (d)
        alert_free(d);
    return result;
}

void alert_kick(struct alert_dispatcher *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->kicked = 1;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

void alert_stats(const struct alert_dispatcher *d, struct alert_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!d)
        return;
    st->sent = atomic_load(&d->sent);
    st->retries = atomic_load(&d->retries);
    st->failed = atomic_load(&d->failed);
    st->digests = atomic_load(&d->digests);
    st->purges = atomic_load(&d->purges);
}

void alert_stop(struct alert_dispatcher *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = 1;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    alert_free(d);
}
