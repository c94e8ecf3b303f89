/* Unit tests: alert de-duplication and delivery rows (alert_raise), the back-off, and the
 * dispatcher thread sending to a tiny HTTP receiver on 127.0.0.1 and to syslog. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alert/alert.h"
#include "common/clock.h"
#include "config/config.h"
#include "store/store.h"

#define T0 1772533800 /* 2026-03-03T10:30:00Z */

struct fixture {
    char dir[64];
    char db[128];
    struct config *cfg;
    struct store *st;
};

static void rm_rf(const char *dir)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* A configuration with the given extra lines, its data-dir a fresh temporary directory. */
static void fixture_open(struct fixture *f, const char *extra)
{
    char text[2048], err[512];

    snprintf(f->dir, sizeof(f->dir), "/tmp/haven-test-alert-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(text, sizeof(text),
             "policy /nonexistent/policy.conf\ndatabase /nonexistent/db.cdb\ndata-dir %s\n%s",
             f->dir, extra);
    f->cfg = config_load_buffer("t.conf", f->dir, text, strlen(text), err, sizeof(err));
    if (!f->cfg)
        fail_msg("config: %s", err);
    snprintf(f->db, sizeof(f->db), "%s/users.sqlite", f->dir);
    f->st = store_open(f->db, err, sizeof(err));
    assert_non_null(f->st);
    assert_int_equal(store_migrate(f->st, err, sizeof(err)), 0);
}

static void fixture_close(struct fixture *f)
{
    store_close(f->st);
    config_free(f->cfg);
    rm_rf(f->dir);
    clock_clear_fake();
}

static struct store_alert sample(int severity)
{
    struct store_alert a;

    memset(&a, 0, sizeof(a));
    a.time_ms = (int64_t)T0 * 1000;
    a.username = "pupil1";
    a.group_name = "secondary";
    a.ip = "127.0.0.1";
    a.theme = "self-harm";
    a.severity = severity;
    a.lang = "en";
    a.phrase = "hurt myself";
    a.excerpt = "i want to hurt myself tonight";
    a.url = "http://search.example/?q=hurt+myself";
    a.source = "search";
    return a;
}

struct deliveries {
    int n;
    char channel[8][16];
    char target[8][256];
    char status[8][16];
    int attempts[8];
    int64_t next_ms[8], updated_ms[8];
    char last_error[8][256];
};

static int collect(void *arg, const struct store_delivery *d)
{
    struct deliveries *out = arg;
    int i = out->n;

    if (i >= 8)
        return 0;
    snprintf(out->channel[i], sizeof(out->channel[i]), "%s", d->channel);
    snprintf(out->target[i], sizeof(out->target[i]), "%s", d->target);
    snprintf(out->status[i], sizeof(out->status[i]), "%s", d->status);
    snprintf(out->last_error[i], sizeof(out->last_error[i]), "%s",
             d->last_error ? d->last_error : "");
    out->attempts[i] = d->attempts;
    out->next_ms[i] = d->next_ms;
    out->updated_ms[i] = d->updated_ms;
    out->n++;
    return 0;
}

static void list_deliveries(struct store *st, int64_t id, struct deliveries *out)
{
    char err[512];

    memset(out, 0, sizeof(*out));
    assert_int_equal(store_delivery_list(st, id, collect, out, err, sizeof(err)), 0);
}

static int64_t raise(struct fixture *f, int severity, enum alert_raised want)
{
    struct store_alert a = sample(severity);
    char err[512];
    int64_t id = 0;

    assert_int_equal(alert_raise(f->st, f->cfg, &a, clock_now_ms(), &id, err, sizeof(err)), want);
    assert_true(id > 0);
    return id;
}

/* ---- raising ----------------------------------------------------------------------------- */

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(alert_backoff_ms(1), 10000);
    assert_int_equal(alert_backoff_ms(2), 30000);
    assert_int_equal(alert_backoff_ms(3), 120000);
    assert_int_equal(alert_backoff_ms(4), 600000);
    assert_int_equal(alert_backoff_ms(5), 1800000);
    assert_int_equal(alert_backoff_ms(6), 3600000);
    assert_int_equal(alert_backoff_ms(7), 3600000);
    assert_int_equal(alert_backoff_ms(11), 3600000);
}

static void test_raise_channels(void **state)
{
    struct fixture f;
    struct deliveries d;
    int64_t id;

    (void)state;
    clock_set_fake(T0);
    fixture_open(&f, "alert-email-to dsl@school.example deputy@school.example\n"
                     "alert-urgent-to head@school.example\n"
                     "alert-smtp smtp://127.0.0.1:2525\n"
                     "alert-webhook http://127.0.0.1:1/a http://127.0.0.1:1/b\n"
                     "alert-syslog on\n");
    id = raise(&f, 3, ALERT_RAISE_QUEUED);
    list_deliveries(f.st, id, &d);
    assert_int_equal(d.n, 4);
    assert_string_equal(d.channel[0], "email");
    assert_string_equal(d.target[0], "dsl@school.example, deputy@school.example");
    assert_string_equal(d.channel[1], "syslog");
    assert_string_equal(d.target[1], "");
    assert_string_equal(d.channel[2], "webhook");
    assert_string_equal(d.target[2], "http://127.0.0.1:1/a");
    assert_string_equal(d.channel[3], "webhook");
    assert_string_equal(d.target[3], "http://127.0.0.1:1/b");
    for (int i = 0; i < 4; i++) {
        assert_string_equal(d.status[i], "pending");
        assert_int_equal(d.attempts[i], 0);
        assert_int_equal(d.next_ms[i], (int64_t)T0 * 1000);
    }

    /* severity 5 also goes to alert-urgent-to (another theme: not a repeat) */
    {
        struct store_alert a = sample(5);
        char err[512];

        a.theme = "suicide";
        id = 0;
        assert_int_equal(alert_raise(f.st, f.cfg, &a, clock_now_ms(), &id, err, sizeof(err)),
                         ALERT_RAISE_QUEUED);
    }
    list_deliveries(f.st, id, &d);
    assert_string_equal(d.channel[0], "email");
    assert_string_equal(d.target[0],
                        "dsl@school.example, deputy@school.example, head@school.example");
    fixture_close(&f);
}

static void test_raise_no_smtp(void **state)
{
    struct fixture f;
    struct deliveries d;
    int64_t id;

    (void)state;
    clock_set_fake(T0);
    /* recipients but no relay: no e-mail row; syslog off: no channel at all */
    fixture_open(&f, "alert-email-to dsl@school.example\nalert-smtp \"\"\nalert-syslog off\n");
    id = raise(&f, 4, ALERT_RAISE_QUEUED);
    list_deliveries(f.st, id, &d);
    assert_int_equal(d.n, 0);
    fixture_close(&f);
}

static void test_raise_dedup(void **state)
{
    struct fixture f;
    struct deliveries d;
    struct store_alert got;
    char err[512];
    int64_t id;

    (void)state;
    clock_set_fake(T0);
    fixture_open(&f, "alert-dedup 1h\nalert-syslog on\n");
    id = raise(&f, 3, ALERT_RAISE_QUEUED);
    list_deliveries(f.st, id, &d);
    assert_int_equal(d.n, 1);

    /* the same user and theme 10 minutes later, same or lower severity: recorded, not sent */
    clock_set_fake(T0 + 600);
    id = raise(&f, 3, ALERT_RAISE_SUPPRESSED);
    list_deliveries(f.st, id, &d);
    assert_int_equal(d.n, 0);
    assert_int_equal(store_alert_get(f.st, id, &got, err, sizeof(err)), 1);
    assert_int_equal(got.suppressed, 1);
    store_alert_cleanup(&got);
    raise(&f, 2, ALERT_RAISE_SUPPRESSED);

    /* a higher severity is sent */
    id = raise(&f, 4, ALERT_RAISE_QUEUED);
    list_deliveries(f.st, id, &d);
    assert_int_equal(d.n, 1);

    /* after the window, the same severity is sent again */
    clock_set_fake(T0 + 600 + 3601);
    raise(&f, 4, ALERT_RAISE_QUEUED);
    fixture_close(&f);
}

/* ---- a tiny HTTP receiver ---------------------------------------------------------------- */

struct http_srv {
    int fd;
    uint16_t port;
    pthread_t thread;
    int status; /* to answer */
    char head[4096];
    char *body;
};

static int listen_loopback(uint16_t *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static void *http_main(void *arg)
{
    struct http_srv *h = arg;
    int c = accept(h->fd, NULL, NULL);
    size_t len = 0, want = 0;
    char buf[65536], reply[256], *end = NULL, *cl;
    ssize_t n;

    if (c < 0)
        return NULL;
    while (len < sizeof(buf) - 1) {
        n = read(c, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (!end) {
            end = strstr(buf, "\r\n\r\n");
            if (end) {
                snprintf(h->head, sizeof(h->head), "%.*s", (int)(end - buf + 2), buf);
                cl = strcasestr(h->head, "\r\nContent-Length:");
                want = cl ? strtoul(cl + 17, NULL, 10) : 0;
            }
        }
        if (end && len >= (size_t)(end - buf) + 4 + want)
            break;
    }
    if (end)
        h->body = strndup(end + 4, want);
    snprintf(reply, sizeof(reply),
             "HTTP/1.1 %d Test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", h->status);
    if (write(c, reply, strlen(reply)) < 0)
        h->status = -1;
    close(c);
    return NULL;
}

static void http_start(struct http_srv *h, int status)
{
    h->status = status;
    h->fd = listen_loopback(&h->port);
    assert_int_equal(pthread_create(&h->thread, NULL, http_main, h), 0);
}

static void http_stop(struct http_srv *h)
{
    pthread_join(h->thread, NULL);
    close(h->fd);
}

/* ---- the dispatcher ---------------------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Wait (up to 20 s: this is a deadline for a slow machine, not a measured time) until the
 * first delivery of alert id is no longer a first try waiting to happen. */
static void wait_tried_after(struct store *st, int64_t id, int before, struct deliveries *d)
{
    for (int i = 0; i < 2000; i++) {
        list_deliveries(st, id, d);
        if (d->n > 0 && d->attempts[0] > before)
            return;
        sleep_ms(10);
    }
    fail_msg("the dispatcher did not try the delivery");
}

static void wait_tried(struct store *st, int64_t id, struct deliveries *d)
{
    wait_tried_after(st, id, 0, d);
}

static struct alert_dispatcher *start(struct fixture *f)
{
    struct alert_dispatcher_config dc;
    struct alert_dispatcher *d;
    char err[512];

    memset(&dc, 0, sizeof(dc));
    dc.cfg = f->cfg;
    dc.db_path = f->db;
    dc.school = "Test School";
    dc.no_purge = 1;
    d = alert_start(&dc, err, sizeof(err));
    if (!d)
        fail_msg("alert_start: %s", err);
    return d;
}

static void test_dispatch_webhook_sent(void **state)
{
    struct http_srv h = {0};
    struct fixture f;
    struct alert_dispatcher *d;
    struct alert_stats as;
    struct deliveries dl;
    char extra[256];
    json_t *o;
    int64_t id;

    (void)state;
    http_start(&h, 200);
    snprintf(extra, sizeof(extra), "alert-syslog off\nalert-webhook http://127.0.0.1:%u/hook\n",
             (unsigned)h.port);
    fixture_open(&f, extra);
    d = start(&f);
    id = raise(&f, 4, ALERT_RAISE_QUEUED);
    alert_kick(d);
    wait_tried(f.st, id, &dl);
    http_stop(&h);
    assert_string_equal(dl.channel[0], "webhook");
    assert_string_equal(dl.status[0], "sent");
    assert_int_equal(dl.attempts[0], 1);
    alert_stats(d, &as);
    assert_int_equal(as.sent, 1);
    alert_stop(d);

    assert_true(strncmp(h.head, "POST /hook HTTP/1.1\r\n", 21) == 0);
    o = json_loads(h.body, 0, NULL);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), id);
    assert_string_equal(json_string_value(json_object_get(o, "username")), "pupil1");
    assert_string_equal(json_string_value(json_object_get(o, "theme")), "self-harm");
    assert_string_equal(json_string_value(json_object_get(o, "area")), "content");
    assert_string_equal(json_string_value(json_object_get(o, "school")), "Test School");
    assert_string_equal(json_string_value(json_object_get(o, "activity")),
                        "haven activity pupil1 --around 2026-03-03T10:30:00Z");
    json_decref(o);
    free(h.body);
    fixture_close(&f);
}

static void test_dispatch_console_link(void **state)
{
    struct http_srv h = {0};
    struct fixture f;
    struct alert_dispatcher *d;
    struct deliveries dl;
    char extra[256];
    json_t *o;
    int64_t id;

    (void)state;
    http_start(&h, 204);
    snprintf(extra, sizeof(extra),
             "alert-syslog off\nalert-webhook http://127.0.0.1:%u/hook\n"
             "console-url https://haven.school.example:8080/\n",
             (unsigned)h.port);
    fixture_open(&f, extra);
    d = start(&f);
    id = raise(&f, 4, ALERT_RAISE_QUEUED);
    alert_kick(d);
    wait_tried(f.st, id, &dl);
    http_stop(&h);
    alert_stop(d);
    assert_string_equal(dl.status[0], "sent");
    o = json_loads(h.body, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "activity")),
                        "https://haven.school.example:8080/activity?user=pupil1&around="
                        "2026-03-03T10%3A30%3A00Z");
    json_decref(o);
    free(h.body);
    fixture_close(&f);
}

static void test_dispatch_webhook_500(void **state)
{
    struct http_srv h = {0};
    struct fixture f;
    struct alert_dispatcher *d;
    struct alert_stats as;
    struct deliveries dl;
    char extra[256], want[128];
    int64_t id;

    (void)state;
    clock_set_fake(T0);
    http_start(&h, 500);
    snprintf(extra, sizeof(extra), "alert-syslog off\nalert-webhook http://127.0.0.1:%u/hook\n",
             (unsigned)h.port);
    fixture_open(&f, extra);
    d = start(&f);
    id = raise(&f, 4, ALERT_RAISE_QUEUED);
    alert_kick(d);
    wait_tried(f.st, id, &dl);
    http_stop(&h);
    free(h.body);
    alert_stats(d, &as);
    alert_stop(d);
    assert_string_equal(dl.status[0], "pending");
    assert_int_equal(dl.attempts[0], 1);
    assert_int_equal(dl.next_ms[0], (int64_t)T0 * 1000 + 10000);
    snprintf(want, sizeof(want), "http://127.0.0.1:%u/hook: HTTP 500", (unsigned)h.port);
    assert_string_equal(dl.last_error[0], want);
    assert_int_equal(as.retries, 1);
    assert_int_equal(as.sent, 0);
    fixture_close(&f);
}

static void test_dispatch_gives_up(void **state)
{
    struct fixture f;
    struct alert_dispatcher *d;
    struct store_delivery sd;
    struct deliveries dl;
    char err[512];
    uint16_t port;
    int64_t id;
    int fd;

    (void)state;
    clock_set_fake(T0);
    fd = listen_loopback(&port);
    close(fd); /* nothing listens there now: connection refused */
    fixture_open(&f, "alert-syslog off\n");
    id = raise(&f, 4, ALERT_RAISE_QUEUED);
    memset(&sd, 0, sizeof(sd));
    snprintf(err, sizeof(err), "http://127.0.0.1:%u/hook", (unsigned)port);
    sd.alert_id = id;
    sd.channel = "webhook";
    sd.target = err;
    sd.status = "pending";
    sd.attempts = ALERT_MAX_ATTEMPTS - 1; /* the last try */
    sd.next_ms = (int64_t)T0 * 1000;
    assert_int_equal(store_delivery_put(f.st, &sd, err, sizeof(err)), 0);
    d = start(&f);
    wait_tried_after(f.st, id, ALERT_MAX_ATTEMPTS - 1, &dl);
    alert_stop(d);
    assert_string_equal(dl.status[0], "failed");
    assert_int_equal(dl.attempts[0], ALERT_MAX_ATTEMPTS);
    assert_non_null(strstr(dl.last_error[0], "connection refused"));
    fixture_close(&f);
}

static void test_dispatch_syslog(void **state)
{
    struct fixture f;
    struct alert_dispatcher *d;
    struct deliveries dl;
    int64_t id;

    (void)state;
    fixture_open(&f, "alert-syslog on\n");
    d = start(&f);
    id = raise(&f, 5, ALERT_RAISE_QUEUED);
    alert_kick(d);
    wait_tried(f.st, id, &dl);
    alert_stop(d);
    assert_int_equal(dl.n, 1);
    assert_string_equal(dl.channel[0], "syslog");
    assert_string_equal(dl.status[0], "sent");
    fixture_close(&f);
}

static void test_stop_sends_first_tries(void **state)
{
    struct fixture f;
    struct alert_dispatcher *d;
    struct deliveries dl;
    int64_t id;

    (void)state;
    clock_set_fake(T0);
    fixture_open(&f, "alert-syslog on\n");
    d = start(&f);
    id = raise(&f, 3, ALERT_RAISE_QUEUED);
    alert_stop(d); /* no kick: the last pass at stop still sends it */
    list_deliveries(f.st, id, &dl);
    assert_string_equal(dl.status[0], "sent");
    fixture_close(&f);
}

static void test_start_errors(void **state)
{
    struct fixture f;
    struct alert_dispatcher_config dc;
    char err[512];

    (void)state;
    fixture_open(&f, "alert-smtp-password-file /nonexistent/smtp.pw\n");
    memset(&dc, 0, sizeof(dc));
    dc.cfg = f.cfg;
    dc.db_path = f.db;
    assert_null(alert_start(&dc, err, sizeof(err)));
    assert_string_equal(err,
                        "alert-smtp-password-file /nonexistent/smtp.pw: No such file or directory");
    fixture_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_raise_channels),
        cmocka_unit_test(test_raise_no_smtp),
        cmocka_unit_test(test_raise_dedup),
        cmocka_unit_test(test_dispatch_webhook_sent),
        cmocka_unit_test(test_dispatch_console_link),
        cmocka_unit_test(test_dispatch_webhook_500),
        cmocka_unit_test(test_dispatch_gives_up),
        cmocka_unit_test(test_dispatch_syslog),
        cmocka_unit_test(test_stop_sends_first_tries),
        cmocka_unit_test(test_start_errors),
    };
    int rc;

    /* loopback only: an http_proxy in the environment must not capture the test traffic */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
