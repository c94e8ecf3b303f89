/*
 * recorder.c -- from proxied requests to safeguarding rows: queue, spool, writer thread.
 *
 * DESIGN. recorder_submit decides on the worker what a record is (an event, a roll-up,
 * an alert, or nothing: a few string compares), packs the fields it needs into one
 * block on its stack (struct rec_packed: numbers, then the strings back to back) and
 * pushes it into the bounded queue. Deciding early is what lets a full queue treat the
 * two classes differently: allowed traffic is counted and dropped, a safeguarding
 * record goes to the spool file instead, with one write(2) under the spool mutex.
 *
 * The writer thread owns the store handle. It takes batches in place from the queue,
 * unpacks each record into NUL-terminated strings, and in one transaction adds the
 * events and raises the alerts (alert_raise: de-duplication and deliveries). Roll-ups
 * never enter that transaction: they are summed in a hash table and written every ten
 * seconds, so a busy hour of one pupil on one site is one row update, not thousands.
 * If the store refuses a batch, the transaction is rolled back and the batch's
 * safeguarding records are spooled: the spool is the one retry path, and it is on disk.
 *
 * The spool is replayed when the queue is empty: under the spool mutex the file is
 * renamed to records.spool.replay (producers then start a new records.spool), then it
 * is read and written in one transaction and unlinked. A replay the store refuses
 * stays on disk and is tried again ten seconds later.
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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "alert/alert.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "event/accesslog.h"
#include "event/queue.h"
#include "event/recorder.h"
#include "store/store.h"

#define REC_CATEGORY_MAX 128
#define REC_RETRY_MS 10000          /* a refused spool replay is tried again after this */
#define REC_TICK_MS 1000            /* the writer looks at its flags at least this often */
#define RECORDER_WAKE 256           /* records queued before a push wakes the writer */
#define REC_ROLLUP_BUCKETS 4096     /* hash buckets of the roll-up table */
#define REC_ROLLUP_MAX 65536        /* roll-ups held before an early flush */
#define REC_SPOOL_MAGIC 0x48565231u /* "HVR1": a record in the spool */

/* The string fields, in the order they are packed. */
enum rec_str {
    RS_CLIENT,
    RS_DEVICE,
    RS_USER,
    RS_GROUP,
    RS_METHOD,
    RS_URL,
    RS_CATEGORY,
    RS_REASON,
    RS_REF,
    RS_SEARCH,
    RS_THEME,
    RS_PHRASE,
    RS_LANG,
    RS_EXCERPT,
    RS_SOURCE,
    RS_N
};

static const size_t rec_max[RS_N] = {
    [RS_CLIENT] = ACCESSLOG_CLIENT_MAX, [RS_DEVICE] = ACCESSLOG_DEVICE_MAX,
    [RS_USER] = ACCESSLOG_USER_MAX,     [RS_GROUP] = ACCESSLOG_GROUP_MAX,
    [RS_METHOD] = ACCESSLOG_METHOD_MAX, [RS_URL] = ACCESSLOG_URL_MAX,
    [RS_CATEGORY] = REC_CATEGORY_MAX,   [RS_REASON] = ACCESSLOG_REASON_MAX,
    [RS_REF] = ACCESSLOG_REF_MAX,       [RS_SEARCH] = ACCESSLOG_SEARCH_MAX,
    [RS_THEME] = RECORDER_THEME_MAX,    [RS_PHRASE] = RECORDER_PHRASE_MAX,
    [RS_LANG] = RECORDER_LANG_MAX,      [RS_EXCERPT] = RECORDER_EXCERPT_MAX,
    [RS_SOURCE] = RECORDER_SOURCE_MAX,
};

#define REC_TEXT_MAX                                                                               \
    (ACCESSLOG_CLIENT_MAX + ACCESSLOG_DEVICE_MAX + ACCESSLOG_USER_MAX + ACCESSLOG_GROUP_MAX +      \
     ACCESSLOG_METHOD_MAX + ACCESSLOG_URL_MAX + REC_CATEGORY_MAX + ACCESSLOG_REASON_MAX +          \
     ACCESSLOG_REF_MAX + ACCESSLOG_SEARCH_MAX + RECORDER_THEME_MAX + RECORDER_PHRASE_MAX +         \
     RECORDER_LANG_MAX + RECORDER_EXCERPT_MAX + RECORDER_SOURCE_MAX)

/* What a record becomes. */
enum rec_kind {
    RK_NONE,
    RK_BLOCK,
    RK_WARN,
    RK_REQUEST,
    RK_CONCERN,
    RK_MATCH,
    RK_SEARCH,
    RK_ROLLUP /* allowed traffic: no event */
};

static const char *const rec_kind_names[] = {
    [RK_BLOCK] = "block",     [RK_WARN] = "warn",   [RK_REQUEST] = "request",
    [RK_CONCERN] = "concern", [RK_MATCH] = "match", [RK_SEARCH] = "search",
};

/* A record in the queue and in the spool; only offsetof(text) + the text used travels. */
struct rec_packed {
    uint32_t magic;
    uint8_t kind;     /* enum rec_kind */
    uint8_t severity; /* 0-5 */
    uint8_t alert;    /* 0-5 */
    uint8_t pad;
    int32_t score;
    int64_t time_ms;
    uint64_t bytes;
    uint32_t len[RS_N];
    char text[REC_TEXT_MAX];
};

#define REC_HEAD_SIZE offsetof(struct rec_packed, text)

/* A record unpacked on the writer: every string NUL-terminated (NULL when empty). */
struct rec_view {
    const struct rec_packed *p;
    const char *s[RS_N];
    char buf[REC_TEXT_MAX + RS_N];
};

struct rec_rollup {
    struct rec_rollup *next;
    int64_t hour;
    int64_t requests, bytes;
    char *user, *group, *host, *category; /* user points at one allocation holding all four */
};

struct recorder {
    const struct config *cfg;
    struct store *st; /* writer thread only */
    struct queue *q;
    struct alert_dispatcher *alerts;
    char *spool_path, *replay_path;

    pthread_mutex_t spool_mu; /* guards spool_fd */
    int spool_fd;             /* -1: not open */
    _Atomic int spool_pending;

    pthread_t thread;
    int started;
    pthread_mutex_t ctl;
    pthread_cond_t ctl_cond;
    _Atomic int closing, hold_req;
    int held; /* guarded by ctl */

    /* writer thread only */
    struct rec_rollup *buckets[REC_ROLLUP_BUCKETS];
    size_t nrollups;
    int64_t replay_after; /* monotonic ms */
    struct rec_view view;

    _Atomic uint64_t events, rollups, dropped, spooled, alerts_n, suppressed;
};

/* ---------------------------------------------------------------- submit (workers) */

static int rec_is(const char *s, const char *word)
{
    return s && strcmp(s, word) == 0;
}

static int rec_starts(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static enum rec_kind rec_classify(const struct access_record *a, const struct monitor_note *m)
{
    if (rec_is(a->action, "block"))
        return RK_BLOCK;
    if (rec_is(a->action, "warn"))
        return RK_WARN;
    if (rec_is(a->action, "local")) {
        if (rec_starts(a->reason, "request: "))
            return RK_REQUEST;
        if (rec_starts(a->reason, "concern: "))
            return RK_CONCERN;
    }
    if (m && m->severity > 0)
        return RK_MATCH;
    if (a->search && a->search[0])
        return RK_SEARCH;
    if (rec_is(a->action, "allow"))
        return RK_ROLLUP;
    return RK_NONE;
}

/* Copy at most max bytes of s, cut on a UTF-8 character boundary. Returns the length. */
static uint32_t rec_put(char *dst, const char *s, size_t max)
{
    size_t n;

    if (!s)
        return 0;
    n = strnlen(s, max + 1);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    return (uint32_t)n;
}

static int rec_clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Pack a and m into p. Returns the bytes used. */
static size_t rec_pack(struct rec_packed *p, enum rec_kind kind, const struct access_record *a,
                       const struct monitor_note *m)
{
    const char *src[RS_N];
    size_t off = 0;

    memset(p, 0, REC_HEAD_SIZE);
    memset(src, 0, sizeof(src));
    p->magic = REC_SPOOL_MAGIC;
    p->kind = (uint8_t)kind;
    p->time_ms = a->time_ms;
    p->bytes = a->bytes_in + a->bytes_out;
    src[RS_CLIENT] = a->client;
    src[RS_DEVICE] = a->device;
    src[RS_USER] = a->user;
    src[RS_GROUP] = a->group;
    src[RS_METHOD] = a->method;
    src[RS_URL] = a->url;
    src[RS_CATEGORY] = a->ncategories > 0 && a->categories ? a->categories[0] : NULL;
    src[RS_REASON] = a->reason;
    src[RS_REF] = a->ref;
    src[RS_SEARCH] = a->search;
    if (kind == RK_REQUEST || kind == RK_CONCERN)
        src[RS_REASON] = a->reason + strlen("request: "); /* both prefixes are 9 bytes */
    if (m) {
        p->severity = (uint8_t)rec_clamp(m->severity, 0, 5);
        p->alert = (uint8_t)rec_clamp(m->alert, 0, 5);
        p->score = m->score;
        src[RS_THEME] = m->theme;
        src[RS_PHRASE] = m->phrase;
        src[RS_LANG] = m->lang;
        src[RS_EXCERPT] = m->excerpt;
        src[RS_SOURCE] = m->source;
    }
    if (kind == RK_ROLLUP) /* a roll-up has no score: it carries how many requests it counts */
        p->score = a->count > 1 ? (int32_t)(a->count > INT32_MAX ? INT32_MAX : a->count) : 1;
    for (int i = 0; i < RS_N; i++) {
        p->len[i] = rec_put(p->text + off, src[i], rec_max[i]);
        off += p->len[i];
    }
    return REC_HEAD_SIZE + off;
}

/* Append one packed record to the spool. Any thread. */
static int rec_spool(struct recorder *rec, const struct rec_packed *p, size_t len)
{
    uint32_t n = (uint32_t)len;
    struct iovec iov[2] = {{&n, sizeof(n)}, {(void *)(uintptr_t)p, len}};
    ssize_t w;
    int rc = -1;

    pthread_mutex_lock(&rec->spool_mu);
    if (rec->spool_fd < 0) {
        rec->spool_fd = open(rec->spool_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (rec->spool_fd < 0) {
            log_warn("records spool %s: cannot open; a safeguarding record is lost",
                     rec->spool_path);
            goto out;
        }
    }
    w = writev(rec->spool_fd, iov, 2);
    if (w != (ssize_t)(sizeof(n) + len)) {
        if (w < 0)
            log_warn("records spool %s: write failed; a safeguarding record is lost",
                     rec->spool_path);
        else
            log_warnx("records spool %s: short write; a safeguarding record is lost",
                      rec->spool_path);
        goto out;
    }
    atomic_store(&rec->spool_pending, 1);
    atomic_fetch_add_explicit(&rec->spooled, 1, memory_order_relaxed);
    rc = 0;
out:
    pthread_mutex_unlock(&rec->spool_mu);
    return rc;
}

int recorder_submit(struct recorder *rec, const struct access_record *a,
                    const struct monitor_note *m)
{
    struct rec_packed p;
    enum rec_kind kind;
    size_t len;

    if (!rec || !a)
        return 0;
    kind = rec_classify(a, m);
    if (kind == RK_NONE && !(m && m->alert > 0))
        return 0;
    len = rec_pack(&p, kind, a, m);
    if (queue_push(rec->q, &p, len) == 0) {
        if (m && m->alert > 0)
            queue_kick(rec->q); /* an alert goes now, not with the next batch */
        return 0;
    }
    if (kind == RK_ROLLUP && !(m && m->alert > 0)) {
        atomic_fetch_add_explicit(&rec->dropped, 1, memory_order_relaxed);
        return -1;
    }
    return rec_spool(rec, &p, len);
}

/* ---------------------------------------------------------------- the writer: records */

/* Unpack p (len bytes, checked) into rec->view. Returns 0, or -1 when it is malformed. */
static int rec_unpack(struct recorder *rec, const struct rec_packed *p, size_t len)
{
    struct rec_view *v = &rec->view;
    size_t off = 0, out = 0;

    if (len < REC_HEAD_SIZE || p->magic != REC_SPOOL_MAGIC || p->kind > RK_ROLLUP ||
        p->severity > 5 || p->alert > 5)
        return -1;
    for (int i = 0; i < RS_N; i++) {
        if (p->len[i] > rec_max[i] || off + p->len[i] > len - REC_HEAD_SIZE)
            return -1;
        if (p->len[i] == 0) {
            v->s[i] = NULL;
            continue;
        }
        memcpy(v->buf + out, p->text + off, p->len[i]);
        v->buf[out + p->len[i]] = '\0';
        v->s[i] = v->buf + out;
        out += p->len[i] + 1;
        off += p->len[i];
    }
    v->p = p;
    return 0;
}

/* The host of a canonical URL ("http://host:port/path") or a CONNECT target ("host:443"). */
static const char *rec_host(const char *url, char *out, size_t outlen)
{
    const char *p, *end;
    size_t n;

    if (!url)
        return NULL;
    p = strstr(url, "://");
    p = p ? p + 3 : url;
    if (*p == '[') {
        end = strchr(p, ']');
        end = end ? end + 1 : p + strlen(p);
    } else {
        end = p + strcspn(p, ":/?#");
    }
    n = (size_t)(end - p);
    if (n == 0 || n >= outlen)
        return NULL;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static size_t rec_hash(int64_t hour, const char *user, const char *host, const char *cat)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)hour;
    const char *parts[3] = {user, host, cat};

    for (int i = 0; i < 3; i++) {
        for (const char *s = parts[i]; s && *s; s++)
            h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return (size_t)(h % REC_ROLLUP_BUCKETS);
}

static int rec_same(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static void rec_rollup_free_all(struct recorder *rec)
{
    struct rec_rollup *r, *next;

    for (size_t i = 0; i < REC_ROLLUP_BUCKETS; i++) {
        for (r = rec->buckets[i]; r; r = next) {
            next = r->next;
            free(r->user);
            free(r);
        }
        rec->buckets[i] = NULL;
    }
    rec->nrollups = 0;
}

/* Write the summed roll-ups in one transaction; on failure keep them for the next flush. */
static void rec_rollup_flush(struct recorder *rec)
{
    struct store_rollup sr;
    char err[512];
    uint64_t n = 0;

    if (rec->nrollups == 0)
        return;
    if (store_begin(rec->st, err, sizeof(err)) < 0)
        goto fail;
    for (size_t i = 0; i < REC_ROLLUP_BUCKETS; i++) {
        for (struct rec_rollup *r = rec->buckets[i]; r; r = r->next) {
            memset(&sr, 0, sizeof(sr));
            sr.hour = r->hour;
            sr.username = r->user;
            sr.group_name = r->group;
            sr.host = r->host;
            sr.category = r->category;
            sr.requests = r->requests;
            sr.bytes = r->bytes;
            if (store_rollup_add(rec->st, &sr, err, sizeof(err)) < 0) {
                store_rollback(rec->st);
                goto fail;
            }
            n++;
        }
    }
    if (store_commit(rec->st, err, sizeof(err)) < 0) {
        store_rollback(rec->st);
        goto fail;
    }
    atomic_fetch_add_explicit(&rec->rollups, n, memory_order_relaxed);
    rec_rollup_free_all(rec);
    return;
fail:
    log_warnx("records: %zu hourly roll-ups not written (tried again at the next flush): %s",
              rec->nrollups, err);
    if (rec->nrollups >= REC_ROLLUP_MAX) {
        log_warnx("records: roll-up table full and the store refuses it: %zu roll-ups dropped",
                  rec->nrollups);
        rec_rollup_free_all(rec);
    }
}

static void rec_rollup_add(struct recorder *rec, const struct rec_view *v)
{
    const struct rec_packed *p = v->p;
    char hostbuf[512];
    const char *host = rec_host(v->s[RS_URL], hostbuf, sizeof(hostbuf));
    int64_t sec = p->time_ms / 1000 - (p->time_ms % 1000 < 0); /* floor, never overflows */
    int64_t hour = sec - (sec % 3600 + 3600) % 3600;
    size_t h = rec_hash(hour, v->s[RS_USER], host, v->s[RS_CATEGORY]);
    size_t lu, lg, lh, lc;
    struct rec_rollup *r;

    for (r = rec->buckets[h]; r; r = r->next) {
        if (r->hour == hour && rec_same(r->user, v->s[RS_USER]) && rec_same(r->host, host) &&
            rec_same(r->category, v->s[RS_CATEGORY]))
            break;
    }
    if (!r) {
        if (rec->nrollups >= REC_ROLLUP_MAX)
            rec_rollup_flush(rec);
        lu = v->s[RS_USER] ? strlen(v->s[RS_USER]) : 0;
        lg = v->s[RS_GROUP] ? strlen(v->s[RS_GROUP]) : 0;
        lh = host ? strlen(host) : 0;
        lc = v->s[RS_CATEGORY] ? strlen(v->s[RS_CATEGORY]) : 0;
        r = xcalloc(1, sizeof(*r));
        r->user = xmalloc(lu + lg + lh + lc + 4);
        r->group = r->user + lu + 1;
        r->host = r->group + lg + 1;
        r->category = r->host + lh + 1;
        memcpy(r->user, v->s[RS_USER] ? v->s[RS_USER] : "", lu + 1);
        memcpy(r->group, v->s[RS_GROUP] ? v->s[RS_GROUP] : "", lg + 1);
        memcpy(r->host, host ? host : "", lh + 1);
        memcpy(r->category, v->s[RS_CATEGORY] ? v->s[RS_CATEGORY] : "", lc + 1);
        r->hour = hour;
        r->next = rec->buckets[h];
        rec->buckets[h] = r;
        rec->nrollups++;
    }
    r->requests += p->score > 1 ? p->score : 1;
    r->bytes += (int64_t)p->bytes;
}

/* Per-transaction tallies, added to the stats only when the transaction commits. */
struct rec_tally {
    uint64_t events, alerts, suppressed;
    int kick;
};

static int rec_is_source(const char *s)
{
    return rec_is(s, "search") || rec_is(s, "page");
}

/* Write the event and the alert of the unpacked record. Returns 0, or -1 with err. */
static int rec_write_record(struct recorder *rec, struct rec_tally *t, char *err, size_t errlen)
{
    const struct rec_view *v = &rec->view;
    const struct rec_packed *p = v->p;
    struct store_event e;
    struct store_alert a;
    char hostbuf[512];
    enum alert_raised raised;

    if (p->kind != RK_NONE && p->kind != RK_ROLLUP) {
        memset(&e, 0, sizeof(e));
        e.time_ms = p->time_ms;
        e.kind = rec_kind_names[p->kind];
        e.username = v->s[RS_USER];
        e.group_name = v->s[RS_GROUP];
        e.ip = v->s[RS_CLIENT];
        e.method = v->s[RS_METHOD];
        e.url = v->s[RS_URL];
        e.host = rec_host(v->s[RS_URL], hostbuf, sizeof(hostbuf));
        e.category = v->s[RS_CATEGORY];
        e.reason = v->s[RS_REASON];
        e.search = v->s[RS_SEARCH];
        e.theme = v->s[RS_THEME];
        e.severity = p->severity;
        e.phrase = v->s[RS_PHRASE];
        e.excerpt = v->s[RS_EXCERPT];
        e.ref = v->s[RS_REF];
        if (store_event_add(rec->st, &e, err, errlen) < 0)
            return -1;
        t->events++;
    }
    if (p->alert > 0) {
        memset(&a, 0, sizeof(a));
        a.time_ms = p->time_ms;
        a.username = v->s[RS_USER];
        a.group_name = v->s[RS_GROUP];
        a.ip = v->s[RS_CLIENT];
        a.device = v->s[RS_DEVICE];
        a.theme = v->s[RS_THEME] ? v->s[RS_THEME] : "unknown";
        a.severity = p->alert;
        a.lang = v->s[RS_LANG];
        a.phrase = v->s[RS_PHRASE];
        a.excerpt = v->s[RS_EXCERPT];
        a.url = v->s[RS_URL];
        a.source = rec_is_source(v->s[RS_SOURCE]) ? v->s[RS_SOURCE] : NULL;
        raised = alert_raise(rec->st, rec->cfg, &a, clock_now_ms(), NULL, err, errlen);
        if (raised == ALERT_RAISE_ERROR)
            return -1;
        t->alerts++;
        if (raised == ALERT_RAISE_SUPPRESSED)
            t->suppressed++;
        else
            t->kick = 1;
    }
    return 0;
}

static void rec_tally_commit(struct recorder *rec, const struct rec_tally *t)
{
    atomic_fetch_add_explicit(&rec->events, t->events, memory_order_relaxed);
    atomic_fetch_add_explicit(&rec->alerts_n, t->alerts, memory_order_relaxed);
    atomic_fetch_add_explicit(&rec->suppressed, t->suppressed, memory_order_relaxed);
    if (t->kick)
        alert_kick(rec->alerts);
}

static int rec_is_safeguarding(const struct rec_packed *p)
{
    return (p->kind != RK_NONE && p->kind != RK_ROLLUP) || p->alert > 0;
}

/*
 * One batch from the queue: roll-ups into the table, everything else in one transaction.
 * If the store refuses the transaction, its records go to the spool and come back later.
 */
static void rec_write_batch(struct recorder *rec, struct queue_batch *b)
{
    struct queue_batch again = *b;
    struct rec_tally t;
    const void *item;
    size_t len;
    char err[512] = "";
    int open = 0, failed = 0;

    memset(&t, 0, sizeof(t));
    while (queue_next(rec->q, b, &item, &len) == 0) {
        if (rec_unpack(rec, item, len) < 0)
            continue; /* cannot happen: only recorder_submit pushes */
        if (rec->view.p->kind == RK_ROLLUP)
            rec_rollup_add(rec, &rec->view);
        if (!rec_is_safeguarding(rec->view.p) || failed)
            continue;
        if (!open) {
            if (store_begin(rec->st, err, sizeof(err)) < 0) {
                failed = 1;
                continue;
            }
            open = 1;
        }
        if (rec_write_record(rec, &t, err, sizeof(err)) < 0)
            failed = 1;
    }
    if (open && !failed && store_commit(rec->st, err, sizeof(err)) < 0)
        failed = 1;
    if (failed) {
        if (open)
            store_rollback(rec->st);
        log_warnx("records: the store refused a batch (%s); its safeguarding records are "
                  "spooled and tried again",
                  err);
        /* Walk the same records again (still in place until queue_done) into the spool. */
        while (queue_next(rec->q, &again, &item, &len) == 0) {
            const struct rec_packed *p = item;
            if (len >= REC_HEAD_SIZE && rec_is_safeguarding(p))
                rec_spool(rec, p, len);
        }
        rec->replay_after = 0;
    } else if (open) {
        rec_tally_commit(rec, &t);
    }
    queue_done(rec->q, b);
}

/* ---------------------------------------------------------------- the writer: spool replay */

static int64_t rec_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read exactly n bytes. Returns 1 done, 0 end of file before any byte, -1 error or short. */
static int rec_read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    ssize_t r;

    while (got < n) {
        r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return got == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

/*
 * Write the records of the replay file in one transaction. Returns 0 (done, or nothing
 * to do), or -1 when the store refused it (the file stays for the next try).
 */
static int rec_replay_file(struct recorder *rec)
{
    struct rec_packed *p = xmalloc(sizeof(*p));
    struct rec_tally t;
    uint32_t n;
    uint64_t count = 0, bad = 0;
    char err[512] = "";
    int fd, r, rc = -1, open_tx = 0;

    memset(&t, 0, sizeof(t));
    fd = open(rec->replay_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? 0 : -1;
        if (rc < 0)
            log_warn("records spool %s: cannot open", rec->replay_path);
        goto out;
    }
    if (store_begin(rec->st, err, sizeof(err)) < 0)
        goto refused;
    open_tx = 1;
    for (;;) {
        r = rec_read_full(fd, &n, sizeof(n));
        if (r == 0)
            break;
        if (r < 0 || n < REC_HEAD_SIZE || n > sizeof(*p) || rec_read_full(fd, p, n) != 1) {
            log_warnx("records spool %s: truncated or damaged after %" PRIu64
                      " records; the rest is skipped",
                      rec->replay_path, count);
            break;
        }
        if (rec_unpack(rec, p, n) < 0) {
            bad++;
            continue;
        }
        if (rec_write_record(rec, &t, err, sizeof(err)) < 0)
            goto refused;
        count++;
    }
    if (store_commit(rec->st, err, sizeof(err)) < 0)
        goto refused;
    open_tx = 0;
    rec_tally_commit(rec, &t);
    if (bad > 0)
        log_warnx("records spool %s: %" PRIu64 " damaged records skipped", rec->replay_path, bad);
    log_info("records spool: %" PRIu64 " safeguarding records written from the spool", count);
    unlink(rec->replay_path);
    rc = 0;
    goto out;
refused:
    if (open_tx)
        store_rollback(rec->st);
    log_warnx("records spool %s: the store refused it (%s); tried again in %d s", rec->replay_path,
              err, REC_RETRY_MS / 1000);
out:
    if (fd >= 0)
        close(fd);
    free(p);
    return rc;
}

/* Move the spool aside (unless an older replay file is still waiting) and write it. */
static void rec_replay(struct recorder *rec)
{
    struct stat st;

    if (rec_mono_ms() < rec->replay_after)
        return;
    pthread_mutex_lock(&rec->spool_mu);
    atomic_store(&rec->spool_pending, 0);
    if (stat(rec->replay_path, &st) != 0) {
        if (rec->spool_fd >= 0) {
            close(rec->spool_fd);
            rec->spool_fd = -1;
        }
        if (rename(rec->spool_path, rec->replay_path) < 0 && errno != ENOENT)
            log_warn("records spool %s: cannot rename", rec->spool_path);
    } else if (stat(rec->spool_path, &st) == 0) {
        atomic_store(&rec->spool_pending, 1); /* newer records wait for the next replay */
    }
    pthread_mutex_unlock(&rec->spool_mu);
    if (rec_replay_file(rec) < 0) {
        rec->replay_after = rec_mono_ms() + REC_RETRY_MS;
        atomic_store(&rec->spool_pending, 1);
    }
}

/* ---------------------------------------------------------------- the writer thread */

static void rec_held(struct recorder *rec)
{
    pthread_mutex_lock(&rec->ctl);
    rec->held = 1;
    pthread_cond_broadcast(&rec->ctl_cond);
    while (atomic_load(&rec->hold_req) && !atomic_load(&rec->closing))
        pthread_cond_wait(&rec->ctl_cond, &rec->ctl);
    rec->held = 0;
    pthread_mutex_unlock(&rec->ctl);
}

static void *rec_writer(void *arg)
{
    struct recorder *rec = arg;
    int64_t now, next_flush = rec_mono_ms() + RECORDER_ROLLUP_FLUSH_MS;
    struct queue_batch b;
    int wait;

    while (!atomic_load(&rec->closing)) {
        if (atomic_load(&rec->hold_req)) {
            rec_held(rec);
            continue;
        }
        now = rec_mono_ms();
        wait = next_flush > now ? (int)(next_flush - now) : 0;
        if (wait > REC_TICK_MS)
            wait = REC_TICK_MS;
        if (queue_take(rec->q, &b, RECORDER_BATCH, wait) == 0)
            rec_write_batch(rec, &b);
        if (atomic_load(&rec->spool_pending) && queue_count(rec->q) == 0)
            rec_replay(rec);
        now = rec_mono_ms();
        if (now >= next_flush) {
            rec_rollup_flush(rec);
            next_flush = now + RECORDER_ROLLUP_FLUSH_MS;
        }
    }
    /* Closing: what is queued, then what is spooled, then the roll-ups. */
    while (queue_take(rec->q, &b, RECORDER_BATCH, 0) == 0)
        rec_write_batch(rec, &b);
    for (int i = 0; i < 2 && atomic_load(&rec->spool_pending); i++) {
        rec->replay_after = 0;
        rec_replay(rec); /* twice: an older replay file, then the newest spool */
    }
    rec_rollup_flush(rec);
    return NULL;
}

/* ---------------------------------------------------------------- open, close */

static void rec_free(struct recorder *rec)
{
    rec_rollup_free_all(rec);
    alert_stop(rec->alerts);
    if (rec->st)
        store_close(rec->st);
    if (rec->q)
        queue_destroy(rec->q);
    if (rec->spool_fd >= 0)
        close(rec->spool_fd);
    free(rec->spool_path);
    free(rec->replay_path);
    pthread_mutex_destroy(&rec->spool_mu);
    pthread_cond_destroy(&rec->ctl_cond);
    pthread_mutex_destroy(&rec->ctl);
    free(rec);
}

static char *rec_path(const char *dir, const char *name, char *err, size_t errlen)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p;

    if (n > PATH_MAX) {
        snprintf(err, errlen, "records: data-dir %s: path too long", dir);
        return NULL;
    }
    p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

struct recorder *recorder_open(const struct recorder_config *rc, char *err, size_t errlen)
{
    struct recorder *rec = xcalloc(1, sizeof(*rec)), *result = NULL;
    const struct config *cfg = rc->cfg;
    struct alert_dispatcher_config dc;
    size_t qlen = rc->queue_len ? rc->queue_len : RECORDER_QUEUE_DEFAULT;
    char *db = NULL;
    struct stat st;
    sigset_t all, old;
    int r;

    pthread_mutex_init(&rec->spool_mu, NULL);
    pthread_mutex_init(&rec->ctl, NULL);
    pthread_cond_init(&rec->ctl_cond, NULL);
    rec->spool_fd = -1;
    rec->cfg = cfg;
    if (!cfg->data_dir || !cfg->data_dir[0]) {
        snprintf(err, errlen, "records: no data-dir");
        goto out;
    }
    db = rec_path(cfg->data_dir, "users.sqlite", err, errlen);
    rec->spool_path = rec_path(cfg->data_dir, RECORDER_SPOOL, err, errlen);
    rec->replay_path = rec_path(cfg->data_dir, RECORDER_REPLAY, err, errlen);
    if (!db || !rec->spool_path || !rec->replay_path)
        goto out;
    rec->st = store_open(db, err, errlen);
    if (!rec->st)
        goto out;
    if (store_migrate(rec->st, err, errlen) < 0)
        goto out;
    memset(&dc, 0, sizeof(dc));
    dc.cfg = cfg;
    dc.db_path = db;
    dc.school = rc->school;
    dc.tz = rc->tz;
    dc.no_purge = rc->no_purge;
    rec->alerts = alert_start(&dc, err, errlen);
    if (!rec->alerts)
        goto out;
    if (stat(rec->spool_path, &st) == 0 || stat(rec->replay_path, &st) == 0)
        atomic_store(&rec->spool_pending, 1);
    rec->q = queue_create(qlen, qlen * 1024, sizeof(struct rec_packed));
    /* Records wait for a batch (or the writer's tick); alerts kick it at once. */
    queue_set_wake(rec->q, qlen / 8 < RECORDER_WAKE ? qlen / 8 + 1 : RECORDER_WAKE);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&rec->thread, NULL, rec_writer, rec);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        snprintf(err, errlen, "records: cannot start the writer thread: %s", strerror(r));
        goto out;
    }
    rec->started = 1;
    result = rec;
    rec = NULL;
out:
    free(db);
    if (rec)
        rec_free(rec);
    return result;
}

void recorder_stats(const struct recorder *rec, struct recorder_stats *st)
{
    struct alert_stats as;

    memset(st, 0, sizeof(*st));
    if (!rec)
        return;
    st->events = atomic_load_explicit(&rec->events, memory_order_relaxed);
    st->rollups = atomic_load_explicit(&rec->rollups, memory_order_relaxed);
    st->dropped = atomic_load_explicit(&rec->dropped, memory_order_relaxed);
    st->spooled = atomic_load_explicit(&rec->spooled, memory_order_relaxed);
    st->alerts = atomic_load_explicit(&rec->alerts_n, memory_order_relaxed);
    st->suppressed = atomic_load_explicit(&rec->suppressed, memory_order_relaxed);
    alert_stats(rec->alerts, &as);
    st->sent = as.sent;
    st->retries = as.retries;
    st->failed = as.failed;
}

void recorder_hold(struct recorder *rec, int hold)
{
    if (!rec || !rec->started)
        return;
    pthread_mutex_lock(&rec->ctl);
    atomic_store(&rec->hold_req, hold ? 1 : 0);
    pthread_cond_broadcast(&rec->ctl_cond);
    pthread_mutex_unlock(&rec->ctl);
    if (!hold)
        return;
    queue_wake(rec->q);
    pthread_mutex_lock(&rec->ctl);
    while (!rec->held && !atomic_load(&rec->closing))
        pthread_cond_wait(&rec->ctl_cond, &rec->ctl);
    pthread_mutex_unlock(&rec->ctl);
}

void recorder_close(struct recorder *rec)
{
    if (!rec)
        return;
    if (rec->started) {
        pthread_mutex_lock(&rec->ctl);
        atomic_store(&rec->closing, 1);
        pthread_cond_broadcast(&rec->ctl_cond);
        pthread_mutex_unlock(&rec->ctl);
        queue_wake(rec->q);
        pthread_join(rec->thread, NULL);
    }
    rec_free(rec);
}
