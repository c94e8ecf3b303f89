/* Unit tests: the recorder turns access records (and monitor notes) into events, hourly
 * roll-ups, alerts and deliveries; a full queue spools safeguarding records and drops
 * allowed traffic; the spool is replayed; close writes everything. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "config/config.h"
#include "event/accesslog.h"
#include "event/recorder.h"
#include "store/store.h"

#define T0_MS 1772533800000LL /* 2026-03-03T10:30:00Z */
#define HOUR0 1772532000LL    /* 2026-03-03T10:00:00Z */

struct fixture {
    char dir[64];
    char path[128];
    struct config *cfg;
};

static void fixture_open(struct fixture *f, const char *extra)
{
    char text[2048], err[512];

    snprintf(f->dir, sizeof(f->dir), "/tmp/haven-test-recorder-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(text, sizeof(text),
             "policy /nonexistent/policy.conf\ndatabase /nonexistent/db.cdb\ndata-dir %s\n%s",
             f->dir, extra);
    f->cfg = config_load_buffer("t.conf", f->dir, text, strlen(text), err, sizeof(err));
    if (!f->cfg)
        fail_msg("config: %s", err);
}

static void fixture_close(struct fixture *f)
{
    char cmd[128];

    config_free(f->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    clock_clear_fake();
}

static struct recorder *rec_open(struct fixture *f, size_t queue_len)
{
    struct recorder_config rc;
    struct recorder *rec;
    char err[512];

    memset(&rc, 0, sizeof(rc));
    rc.cfg = f->cfg;
    rc.school = "Test School";
    rc.queue_len = queue_len;
    rc.no_purge = 1;
    rec = recorder_open(&rc, err, sizeof(err));
    if (!rec)
        fail_msg("recorder_open: %s", err);
    return rec;
}

static struct store *db_open(struct fixture *f)
{
    char path[128], err[512];
    struct store *st;

    snprintf(path, sizeof(path), "%s/users.sqlite", f->dir);
    st = store_open(path, err, sizeof(err));
    assert_non_null(st);
    return st;
}

static const char *const cats_games[] = {"games", "entertainment"};

static struct access_record record(int64_t time_ms, const char *action, const char *url)
{
    struct access_record a;

    memset(&a, 0, sizeof(a));
    a.time_ms = time_ms;
    a.client = "127.0.0.1";
    a.user = "pupil1";
    a.group = "secondary";
    a.method = "GET";
    a.url = url;
    a.categories = cats_games;
    a.ncategories = 2;
    a.action = action;
    a.bytes_in = 100;
    a.bytes_out = 1000;
    return a;
}

/* ---- reading what was stored ------------------------------------------------------------- */

#define MAXROWS 16

struct events {
    int n;
    char kind[MAXROWS][16], user[MAXROWS][32], host[MAXROWS][64], category[MAXROWS][32];
    char reason[MAXROWS][128], search[MAXROWS][64], theme[MAXROWS][32], phrase[MAXROWS][64];
    char ref[MAXROWS][32], url[MAXROWS][128], excerpt[MAXROWS][128], ip[MAXROWS][64];
    int severity[MAXROWS];
};

#define CP(field, v) snprintf(out->field[i], sizeof(out->field[i]), "%s", (v) ? (v) : "")

static int collect_event(void *arg, const struct store_event *e)
{
    struct events *out = arg;
    int i = out->n;

    if (i >= MAXROWS)
        return 0;
    CP(kind, e->kind);
    CP(user, e->username);
    CP(host, e->host);
    CP(category, e->category);
    CP(reason, e->reason);
    CP(search, e->search);
    CP(theme, e->theme);
    CP(phrase, e->phrase);
    CP(ref, e->ref);
    CP(url, e->url);
    CP(excerpt, e->excerpt);
    CP(ip, e->ip);
    out->severity[i] = e->severity;
    out->n++;
    return 0;
}

static void list_events(struct store *st, struct events *out)
{
    struct store_event_query q;
    char err[512];

    memset(out, 0, sizeof(*out));
    memset(&q, 0, sizeof(q));
    assert_int_equal(store_event_list(st, &q, collect_event, out, err, sizeof(err)), 0);
}

struct rollups {
    int n;
    int64_t hour[MAXROWS], requests[MAXROWS], bytes[MAXROWS];
    char host[MAXROWS][64], category[MAXROWS][32], user[MAXROWS][32];
};

static int collect_rollup(void *arg, const struct store_rollup *r)
{
    struct rollups *out = arg;
    int i = out->n;

    if (i >= MAXROWS)
        return 0;
    out->hour[i] = r->hour;
    out->requests[i] = r->requests;
    out->bytes[i] = r->bytes;
    CP(host, r->host);
    CP(category, r->category);
    CP(user, r->username);
    out->n++;
    return 0;
}

static void list_rollups(struct store *st, struct rollups *out)
{
    struct store_rollup_query q;
    char err[512];

    memset(out, 0, sizeof(*out));
    memset(&q, 0, sizeof(q));
    assert_int_equal(store_rollup_list(st, &q, collect_rollup, out, err, sizeof(err)), 0);
}

struct alerts {
    int n;
    int64_t id[MAXROWS];
    int severity[MAXROWS], suppressed[MAXROWS];
    char theme[MAXROWS][32], source[MAXROWS][16], lang[MAXROWS][8], url[MAXROWS][128];
};

static int collect_alert(void *arg, const struct store_alert *a)
{
    struct alerts *out = arg;
    int i = out->n;

    if (i >= MAXROWS)
        return 0;
    out->id[i] = a->id;
    out->severity[i] = a->severity;
    out->suppressed[i] = a->suppressed;
    CP(theme, a->theme);
    CP(source, a->source);
    CP(lang, a->lang);
    CP(url, a->url);
    out->n++;
    return 0;
}

/* Newest first, as the store lists them. */
static void list_alerts(struct store *st, struct alerts *out)
{
    struct store_alert_query q;
    char err[512];

    memset(out, 0, sizeof(*out));
    memset(&q, 0, sizeof(q));
    assert_int_equal(store_alert_list(st, &q, collect_alert, out, err, sizeof(err)), 0);
}

struct deliveries {
    int n;
    char channel[MAXROWS][16], target[MAXROWS][256];
};

static int collect_delivery(void *arg, const struct store_delivery *d)
{
    struct deliveries *out = arg;
    int i = out->n;

    if (i >= MAXROWS)
        return 0;
    CP(channel, d->channel);
    CP(target, d->target);
    out->n++;
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_kinds(void **state)
{
    struct fixture f;
    struct recorder *rec;
    struct store *st;
    struct events ev;
    struct rollups ru;
    struct access_record a;
    struct monitor_note m;
    struct recorder_stats rs;
    int64_t t = T0_MS;

    (void)state;
    fixture_open(&f, "");
    rec = rec_open(&f, 0);

    a = record(t++, "block", "http://games.example/play?x=1");
    a.reason = "Games are blocked in lessons";
    a.ref = "HVN-ABC123";
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);

    a = record(t++, "warn", "https://chat.example:8443/room");
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);

    a = record(t++, "local", "http://games.example/play?x=1");
    a.method = "POST";
    a.reason = "request: I need it for homework";
    a.ref = "HVN-ABC123";
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);

    a = record(t++, "local", "http://games.example/play?x=1");
    a.method = "POST";
    a.reason = "concern: someone sent me this";
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);

    a = record(t++, "allow", "http://news.example/story");
    memset(&m, 0, sizeof(m));
    m.severity = 2;
    m.theme = "bullying";
    m.phrase = "nobody likes you";
    m.excerpt = "they said nobody likes you at all";
    m.lang = "en";
    m.source = "page";
    assert_int_equal(recorder_submit(rec, &a, &m), 0);

    a = record(t++, "allow", "http://search.example/?q=cats");
    a.search = "cats";
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);

    /* not events: the CONNECT of an inspected tunnel, haven's own page, plain traffic */
    a = record(t++, "inspect", "secure.example:443");
    a.method = "CONNECT";
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);
    a = record(t++, "local", "http://haven.local/haven/status");
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);
    a = record(t++, "allow", "http://plain.example/");
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);

    recorder_close(rec);
    st = db_open(&f);
    list_events(st, &ev);
    assert_int_equal(ev.n, 6);
    assert_string_equal(ev.kind[0], "block");
    assert_string_equal(ev.user[0], "pupil1");
    assert_string_equal(ev.ip[0], "127.0.0.1");
    assert_string_equal(ev.host[0], "games.example");
    assert_string_equal(ev.category[0], "games");
    assert_string_equal(ev.reason[0], "Games are blocked in lessons");
    assert_string_equal(ev.ref[0], "HVN-ABC123");
    assert_string_equal(ev.url[0], "http://games.example/play?x=1");
    assert_string_equal(ev.kind[1], "warn");
    assert_string_equal(ev.host[1], "chat.example");
    assert_string_equal(ev.kind[2], "request");
    assert_string_equal(ev.reason[2], "I need it for homework");
    assert_string_equal(ev.ref[2], "HVN-ABC123");
    assert_string_equal(ev.kind[3], "concern");
    assert_string_equal(ev.reason[3], "someone sent me this");
    assert_string_equal(ev.kind[4], "match");
    assert_string_equal(ev.theme[4], "bullying");
    assert_int_equal(ev.severity[4], 2);
    assert_string_equal(ev.phrase[4], "nobody likes you");
    assert_string_equal(ev.excerpt[4], "they said nobody likes you at all");
    assert_string_equal(ev.kind[5], "search");
    assert_string_equal(ev.search[5], "cats");

    /* only the plain request became a roll-up */
    list_rollups(st, &ru);
    assert_int_equal(ru.n, 1);
    assert_string_equal(ru.host[0], "plain.example");
    store_close(st);
    fixture_close(&f);
    (void)rs;
}

static void test_rollups_aggregate(void **state)
{
    struct fixture f;
    struct recorder *rec;
    struct store *st;
    struct rollups ru;
    struct access_record a;
    struct recorder_stats rs;

    (void)state;
    fixture_open(&f, "");
    rec = rec_open(&f, 0);
    for (int i = 0; i < 5; i++) {
        a = record(T0_MS + i * 60000, "allow", "https://video.example/watch?v=1");
        assert_int_equal(recorder_submit(rec, &a, NULL), 0);
    }
    /* the next hour, and a tunnel (CONNECT host:port) in the first hour */
    a = record(T0_MS + 3600 * 1000, "allow", "https://video.example/other");
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);
    a = record(T0_MS, "allow", "video.example:443");
    a.method = "CONNECT";
    a.ncategories = 0;
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);
    recorder_close(rec);

    st = db_open(&f);
    list_rollups(st, &ru);
    assert_int_equal(ru.n, 3);
    /* by hour, then host and category: the tunnel has no category ("" sorts first) */
    assert_int_equal(ru.hour[0], HOUR0);
    assert_string_equal(ru.host[0], "video.example");
    assert_string_equal(ru.category[0], "");
    assert_int_equal(ru.requests[0], 1);
    assert_int_equal(ru.hour[1], HOUR0);
    assert_string_equal(ru.category[1], "games");
    assert_string_equal(ru.user[1], "pupil1");
    assert_int_equal(ru.requests[1], 5);
    assert_int_equal(ru.bytes[1], 5 * 1100);
    assert_int_equal(ru.hour[2], HOUR0 + 3600);
    assert_int_equal(ru.requests[2], 1);
    store_close(st);
    fixture_close(&f);
    (void)rs;
}

static void test_alert_rows(void **state)
{
    struct fixture f;
    struct recorder *rec;
    struct store *st;
    struct alerts al;
    struct events ev;
    struct deliveries dl;
    struct access_record a;
    struct monitor_note m;
    struct recorder_stats rs;
    char err[512];

    (void)state;
    clock_set_fake(T0_MS / 1000);
    /* a relay nobody listens on and a webhook on port 1: the deliveries stay pending */
    fixture_open(&f, "alert-email-to dsl@school.example\nalert-urgent-to head@school.example\n"
                     "alert-smtp smtp://127.0.0.1:1\nalert-webhook http://127.0.0.1:1/hook\n"
                     "alert-syslog off\n");
    rec = rec_open(&f, 0);
    a = record(T0_MS, "allow", "http://search.example/?q=how+to+end+it");
    a.search = "how to end it";
    memset(&m, 0, sizeof(m));
    m.severity = 5;
    m.alert = 5;
    m.score = 90;
    m.theme = "suicide";
    m.phrase = "end it";
    m.lang = "en";
    m.excerpt = "how to end it";
    m.source = "search";
    assert_int_equal(recorder_submit(rec, &a, &m), 0);
    recorder_close(rec);

    st = db_open(&f);
    list_events(st, &ev);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.kind[0], "match");
    assert_string_equal(ev.search[0], "how to end it");
    list_alerts(st, &al);
    assert_int_equal(al.n, 1);
    assert_string_equal(al.theme[0], "suicide");
    assert_int_equal(al.severity[0], 5);
    assert_int_equal(al.suppressed[0], 0);
    assert_string_equal(al.source[0], "search");
    assert_string_equal(al.lang[0], "en");
    assert_string_equal(al.url[0], "http://search.example/?q=how+to+end+it");
    memset(&dl, 0, sizeof(dl));
    assert_int_equal(store_delivery_list(st, al.id[0], collect_delivery, &dl, err, sizeof(err)), 0);
    assert_int_equal(dl.n, 2);
    assert_string_equal(dl.channel[0], "email");
    assert_string_equal(dl.target[0], "dsl@school.example, head@school.example");
    assert_string_equal(dl.channel[1], "webhook");
    assert_string_equal(dl.target[1], "http://127.0.0.1:1/hook");
    store_close(st);
    fixture_close(&f);
    (void)rs;
}

static void test_dedup(void **state)
{
    struct fixture f;
    struct recorder *rec;
    struct store *st;
    struct alerts al;
    struct access_record a;
    struct monitor_note m;
    struct recorder_stats rs;

    (void)state;
    clock_set_fake(T0_MS / 1000);
    fixture_open(&f, "alert-dedup 1h\nalert-syslog on\n");
    rec = rec_open(&f, 0);
    memset(&m, 0, sizeof(m));
    m.severity = 3;
    m.alert = 3;
    m.theme = "drugs";
    m.phrase = "buy weed";
    m.source = "page";
    for (int i = 0; i < 3; i++) {
        a = record(T0_MS + i, "allow", "http://shop.example/");
        assert_int_equal(recorder_submit(rec, &a, &m), 0);
    }
    m.severity = m.alert = 4; /* a higher severity is sent again */
    a = record(T0_MS + 3, "allow", "http://shop.example/");
    assert_int_equal(recorder_submit(rec, &a, &m), 0);
    recorder_close(rec);
    /* (the stats are read before close in real use; here the counters are checked below) */

    st = db_open(&f);
    list_alerts(st, &al);
    assert_int_equal(al.n, 4); /* newest first */
    assert_int_equal(al.suppressed[0], 0);
    assert_int_equal(al.severity[0], 4);
    assert_int_equal(al.suppressed[1], 1);
    assert_int_equal(al.suppressed[2], 1);
    assert_int_equal(al.suppressed[3], 0);
    store_close(st);
    fixture_close(&f);
    (void)rs;
}

static void test_stats(void **state)
{
    struct fixture f;
    struct recorder *rec;
    struct access_record a;
    struct monitor_note m;
    struct recorder_stats rs;

    (void)state;
    clock_set_fake(T0_MS / 1000); /* the de-dup window is counted back from now */
    fixture_open(&f, "alert-dedup 1h\nalert-syslog on\n");
    rec = rec_open(&f, 0);
    memset(&m, 0, sizeof(m));
    m.severity = m.alert = 3;
    m.theme = "drugs";
    for (int i = 0; i < 2; i++) {
        a = record(T0_MS + i, "allow", "http://shop.example/");
        assert_int_equal(recorder_submit(rec, &a, &m), 0);
    }
    a = record(T0_MS + 5, "block", "http://games.example/");
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);
    /* wait (a deadline, not a measured time) for the writer and the syslog delivery */
    for (int i = 0; i < 2000; i++) {
        recorder_stats(rec, &rs);
        if (rs.events == 3 && rs.sent == 1)
            break;
        usleep(10000);
    }
    assert_int_equal(rs.events, 3);
    assert_int_equal(rs.alerts, 2);
    assert_int_equal(rs.suppressed, 1);
    assert_int_equal(rs.sent, 1);
    assert_int_equal(rs.dropped, 0);
    assert_int_equal(rs.spooled, 0);
    recorder_close(rec);
    fixture_close(&f);
}

static int file_exists(struct fixture *f, const char *name)
{
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    return stat(path, &st) == 0;
}

static void test_spool_and_replay(void **state)
{
    struct fixture f;
    struct recorder *rec;
    struct store *st;
    struct events ev;
    struct alerts al;
    struct access_record a;
    struct monitor_note m;
    struct recorder_stats rs;

    (void)state;
    fixture_open(&f, "");
    rec = rec_open(&f, 1); /* a queue of one record */
    recorder_hold(rec, 1);
    a = record(T0_MS, "block", "http://one.example/");
    assert_int_equal(recorder_submit(rec, &a, NULL), 0); /* queued */
    a = record(T0_MS + 1, "block", "http://two.example/");
    assert_int_equal(recorder_submit(rec, &a, NULL), 0); /* spooled */
    a = record(T0_MS + 2, "allow", "http://three.example/");
    a.search = "homework help";
    assert_int_equal(recorder_submit(rec, &a, NULL), 0); /* a search: spooled */
    memset(&m, 0, sizeof(m));
    m.alert = 4; /* an alert without an event (a note on an inspected CONNECT) */
    m.theme = "extremism";
    a = record(T0_MS + 3, "inspect", "four.example:443");
    assert_int_equal(recorder_submit(rec, &a, &m), 0);
    a = record(T0_MS + 4, "allow", "http://plain.example/");
    assert_int_equal(recorder_submit(rec, &a, NULL), -1); /* allowed traffic: dropped */
    recorder_stats(rec, &rs);
    assert_int_equal(rs.spooled, 3);
    assert_int_equal(rs.dropped, 1);
    assert_true(file_exists(&f, RECORDER_SPOOL));

    /* released, the writer empties the queue, then replays the spool */
    recorder_hold(rec, 0);
    for (int i = 0; i < 2000; i++) {
        recorder_stats(rec, &rs);
        if (rs.events == 3 && rs.alerts == 1)
            break;
        usleep(10000);
    }
    assert_int_equal(rs.events, 3);
    assert_int_equal(rs.alerts, 1);
    for (int i = 0;
         i < 200 && (file_exists(&f, RECORDER_SPOOL) || file_exists(&f, RECORDER_REPLAY)); i++)
        usleep(10000);
    assert_false(file_exists(&f, RECORDER_SPOOL));
    assert_false(file_exists(&f, RECORDER_REPLAY));
    recorder_close(rec);

    st = db_open(&f);
    list_events(st, &ev);
    assert_int_equal(ev.n, 3);
    assert_string_equal(ev.host[0], "one.example");
    assert_string_equal(ev.kind[1], "block");
    assert_string_equal(ev.host[1], "two.example");
    assert_string_equal(ev.kind[2], "search");
    list_alerts(st, &al);
    assert_int_equal(al.n, 1);
    assert_string_equal(al.theme[0], "extremism");
    store_close(st);
    fixture_close(&f);
}

/* A spool left by a run that stopped (or crashed) is written by the next one. */
static void test_spool_left_over(void **state)
{
    struct fixture f;
    struct recorder *rec;
    struct store *st;
    struct events ev;
    struct access_record a;
    char from[256], to[256];

    (void)state;
    fixture_open(&f, "");
    rec = rec_open(&f, 1);
    recorder_hold(rec, 1);
    a = record(T0_MS, "warn", "http://one.example/");
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);
    a = record(T0_MS + 1, "warn", "http://two.example/");
    assert_int_equal(recorder_submit(rec, &a, NULL), 0); /* spooled */
    /* keep a copy of the spool as a crash would leave it */
    snprintf(from, sizeof(from), "%s/%s", f.dir, RECORDER_SPOOL);
    snprintf(to, sizeof(to), "%s/saved.spool", f.dir);
    assert_int_equal(link(from, to), 0);
    recorder_close(rec);
    assert_int_equal(rename(to, from), 0);

    rec = rec_open(&f, 0);
    recorder_close(rec);
    st = db_open(&f);
    list_events(st, &ev);
    assert_int_equal(ev.n, 3); /* one, two, and two again from the saved spool */
    assert_string_equal(ev.host[2], "two.example");
    store_close(st);
    assert_false(file_exists(&f, RECORDER_SPOOL));
    fixture_close(&f);
}

/* A damaged spool is reported and skipped, never a crash. */
static void test_spool_damaged(void **state)
{
    static const unsigned char junk[][12] = {
        {0xff, 0xff, 0xff, 0x7f, 'x'},           /* a length far too large */
        {40, 0, 0, 0, 1, 2, 3},                  /* a record cut short */
        {4, 0, 0, 0, 'a', 'b', 'c', 'd'},        /* too short for a record */
        {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0}, /* a length of 4 GiB */
    };
    struct fixture f;
    struct recorder *rec;
    struct store *st;
    struct events ev;
    char path[256];
    int fd;

    (void)state;
    fixture_open(&f, "");
    snprintf(path, sizeof(path), "%s/%s", f.dir, RECORDER_SPOOL);
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, junk[i], sizeof(junk[i])), (ssize_t)sizeof(junk[i]));
        close(fd);
        rec = rec_open(&f, 0);
        recorder_close(rec);
        assert_false(file_exists(&f, RECORDER_SPOOL));
    }
    st = db_open(&f);
    list_events(st, &ev);
    assert_int_equal(ev.n, 0);
    store_close(st);
    fixture_close(&f);
}

static void test_long_fields(void **state)
{
    struct fixture f;
    struct recorder *rec;
    struct store *st;
    struct events ev;
    struct access_record a;
    char url[4096], reason[ACCESSLOG_REASON_MAX + 100];

    (void)state;
    fixture_open(&f, "");
    rec = rec_open(&f, 0);
    memset(url, 'a', sizeof(url));
    memcpy(url, "http://x.example/", 17);
    url[sizeof(url) - 1] = '\0';
    /* a concern of 2-byte characters longer than the cap: cut on a character boundary */
    memcpy(reason, "concern: ", 9);
    for (size_t i = 9; i + 2 < sizeof(reason); i += 2)
        memcpy(reason + i, "\xc3\xa9", 2);
    reason[sizeof(reason) - 1] = '\0';
    if ((unsigned char)reason[sizeof(reason) - 2] == 0xc3)
        reason[sizeof(reason) - 2] = '\0';
    a = record(T0_MS, "local", url);
    a.reason = reason;
    assert_int_equal(recorder_submit(rec, &a, NULL), 0);
    recorder_close(rec);
    st = db_open(&f);
    list_events(st, &ev);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.kind[0], "concern");
    assert_string_equal(ev.host[0], "x.example");
    store_close(st);
    fixture_close(&f);
}

static void test_open_errors(void **state)
{
    struct fixture f;
    struct recorder_config rc;
    char err[512];

    (void)state;
    fixture_open(&f, "");
    /* a data directory that does not exist */
    free(f.cfg->data_dir);
    f.cfg->data_dir = strdup("/nonexistent/haven-data");
    memset(&rc, 0, sizeof(rc));
    rc.cfg = f.cfg;
    assert_null(recorder_open(&rc, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/haven-data/users.sqlite"));
    assert_int_equal(recorder_submit(NULL, NULL, NULL), 0);
    recorder_close(NULL);
    fixture_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),           cmocka_unit_test(test_rollups_aggregate),
        cmocka_unit_test(test_alert_rows),      cmocka_unit_test(test_dedup),
        cmocka_unit_test(test_stats),           cmocka_unit_test(test_spool_and_replay),
        cmocka_unit_test(test_spool_left_over), cmocka_unit_test(test_spool_damaged),
        cmocka_unit_test(test_long_fields),     cmocka_unit_test(test_open_errors),
    };
    int rc;

    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
