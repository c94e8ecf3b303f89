/* Unit tests: alert e-mail and digest messages, JSON, syslog line, and real sends to a
 * tiny SMTP server and HTTP receiver running in a thread on 127.0.0.1. */
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
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alert/deliver.h"
#include "common/buf.h"
#include "common/tz.h"

#define NOW_MS 1772533800000LL /* 2026-03-03T10:30:00Z */

static const char *const two_to[] = {"dsl@school.example", "Deputy DSL <deputy@school.example>"};

static struct alert_view sample(void)
{
    struct alert_view a = {
        .id = 42,
        .time_ms = NOW_MS - 60000,
        .school = "Greenfield Academy",
        .username = "jsmith",
        .display_name = "Jo Smith",
        .group_name = "year9",
        .ip = "10.0.0.12",
        .device = "lab-pc-12",
        .theme = "self-harm",
        .area = "content",
        .severity = 4,
        .lang = "en",
        .phrase = "hurt myself",
        .excerpt = "i want to hurt myself tonight",
        .url = "https://www.google.com/search?q=how+to+hurt+myself",
        .source = "search",
        .activity = "http://127.0.0.1:8080/activity?user=jsmith&around=1772533740",
    };
    return a;
}

/* ---- helpers ------------------------------------------------------------------- */

/* The header block (up to the blank line), a new string. */
static char *head_of(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");

    assert_non_null(end);
    return strndup(msg, (size_t)(end - msg) + 2);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The body, quoted-printable decoded, with "\n" line ends. */
static char *body_of(const char *msg)
{
    const char *p = strstr(msg, "\r\n\r\n");
    struct buf b;

    assert_non_null(p);
    buf_init(&b, 1 << 24);
    buf_append_str(&b, "");
    for (p += 4; *p; p++) {
        if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
            p += 2;
        } else if (p[0] == '=' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            char c = (char)(hexval(p[1]) * 16 + hexval(p[2]));

            buf_append(&b, &c, 1);
            p += 2;
        } else if (p[0] == '\r' && p[1] == '\n') {
            buf_append_str(&b, "\n");
            p++;
        } else {
            assert_true(p[0] != '\r' && p[0] != '\n'); /* no bare CR or LF */
            buf_append(&b, p, 1);
        }
    }
    return b.p;
}

/* Every line ends in CRLF, is ASCII and at most maxlen long. */
static void check_lines(const char *s, size_t maxlen)
{
    const char *line = s;

    while (*line) {
        const char *end = strstr(line, "\r\n");

        assert_non_null(end);
        for (const char *p = line; p < end; p++) {
            assert_true((unsigned char)*p < 0x80);
            assert_true(*p != '\r' && *p != '\n');
        }
        if ((size_t)(end - line) > maxlen)
            fail_msg("line longer than %zu: %.*s", maxlen, (int)(end - line), line);
        line = end + 2;
    }
}

/* The header lines that are not continuations must be these names only. */
static void check_header_names(const char *head)
{
    static const char *const names[] = {
        "From:",          "To:",           "Subject:",      "Date:",
        "Message-ID:",    "MIME-Version:", "Content-Type:", "Content-Transfer-Encoding:",
        "Auto-Submitted:"};
    const char *line = head;

    while (*line) {
        const char *end = strstr(line, "\r\n");
        int ok = line[0] == ' ' || line[0] == '\t';

        for (size_t i = 0; i < HAVEN_ARRAY_LEN(names) && !ok; i++)
            ok = strncmp(line, names[i], strlen(names[i])) == 0;
        if (!ok)
            fail_msg("unexpected header line: %.*s", (int)(end - line), line);
        line = end + 2;
    }
}

/* The Subject header unfolded. */
static char *subject_of(const char *msg)
{
    char *head = head_of(msg), *p = strstr(head, "\r\nSubject: "), *out;
    struct buf b;

    assert_non_null(p);
    buf_init(&b, 4096);
    buf_append_str(&b, "");
    for (p += 11; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n' && p[2] != ' ' && p[2] != '\t')
            break;
        if (p[0] == '\r' && p[1] == '\n') {
            p++;
            continue;
        }
        buf_append(&b, p, 1);
    }
    out = b.p;
    free(head);
    return out;
}

/* ---- messages ------------------------------------------------------------------- */

static void test_message_fields(void **state)
{
    struct alert_view a = sample();
    char *msg = deliver_email_message(&a, "haven <haven@school.example>", two_to, 2, NOW_MS);
    char *head = head_of(msg), *body = body_of(msg), *subject = subject_of(msg);

    (void)state;
    check_lines(msg, 998);
    check_lines(head, 78);
    check_header_names(head);
    assert_non_null(strstr(head, "From: haven <haven@school.example>\r\n"));
    assert_non_null(strstr(head, "To: dsl@school.example, Deputy DSL <deputy@school.example>"));
    assert_string_equal(subject, "[haven] Severity 4 self-harm alert: jsmith");
    assert_non_null(strstr(head, "Date: Tue, 03 Mar 2026 10:30:00 +0000\r\n"));
    assert_non_null(strstr(head, "Message-ID: <alert-42."));
    assert_non_null(strstr(head, "@school.example>\r\n"));
    assert_non_null(strstr(head, "MIME-Version: 1.0\r\n"));
    assert_non_null(strstr(head, "Content-Type: text/plain; charset=utf-8\r\n"));
    assert_non_null(strstr(head, "Content-Transfer-Encoding: quoted-printable\r\n"));

    assert_non_null(strstr(body, "Greenfield Academy"));
    assert_non_null(strstr(body, "Jo Smith (username jsmith)"));
    assert_non_null(strstr(body, "year9"));
    assert_non_null(strstr(body, "10.0.0.12"));
    assert_non_null(strstr(body, "lab-pc-12"));
    assert_non_null(strstr(body, "self-harm"));
    assert_non_null(strstr(body, "content"));
    assert_non_null(strstr(body, "4 of 5 (act the same day)"));
    assert_non_null(strstr(body, "Tuesday 3 March 2026 at 10:29:00 (UTC)"));
    assert_non_null(strstr(body, "a web search"));
    assert_non_null(strstr(body, "https://www.google.com/search?q=how+to+hurt+myself"));
    assert_non_null(strstr(body, "Phrase:      \"hurt myself\" (language: en)"));
    assert_non_null(strstr(body, "\"i want to hurt myself tonight\""));
    assert_non_null(strstr(body, "http://127.0.0.1:8080/activity?user=jsmith&around=1772533740"));
    assert_non_null(strstr(body, "haven alerts resolve 42 --outcome ..."));
    assert_non_null(strstr(body, "sensitive information about a child"));
    assert_null(strstr(body, "URGENT"));
    free(msg);
    free(head);
    free(body);
    free(subject);
}

static void test_message_urgent_and_unknowns(void **state)
{
    struct alert_view a = {
        .id = 7, .time_ms = NOW_MS, .severity = 5, .theme = "suicide", .ip = "10.0.0.9"};
    char *msg = deliver_email_message(&a, "haven@school.example", two_to, 1, NOW_MS);
    char *subject = subject_of(msg), *body = body_of(msg);

    (void)state;
    assert_string_equal(subject, "URGENT [haven] Severity 5 suicide alert: 10.0.0.9");
    assert_non_null(strstr(body, "URGENT"));
    assert_non_null(strstr(body, "risk to life"));
    assert_non_null(strstr(body, "Who:         not known"));
    assert_non_null(strstr(body, "Group:       not known"));
    assert_non_null(strstr(body, "haven alerts show 7")); /* no user: no activity command */
    assert_non_null(strstr(body, "haven alerts resolve 7 --outcome"));
    free(msg);
    free(subject);
    free(body);

    /* no activity given but a username: the command line is made up */
    a.username = "kpatel";
    msg = deliver_email_message(&a, "haven@school.example", NULL, 0, NOW_MS);
    body = body_of(msg);
    assert_non_null(strstr(msg, "To: undisclosed-recipients:;\r\n"));
    assert_non_null(strstr(body, "haven activity kpatel --around 2026-03-03T10:30:00Z"));
    free(msg);
    free(body);
}

static void test_message_header_injection(void **state)
{
    struct alert_view a = sample();
    const char *evil_to[] = {"dsl@school.example\r\nBcc: spy@evil.example",
                             "Siân Jones <sian@school.example>"};
    char *msg, *head, *subject, *body;

    (void)state;
    a.username = "jsmith\r\nBcc: spy@evil.example\r\n\r\nfake body";
    a.theme = "self-harm\nX-Evil: 1";
    msg = deliver_email_message(&a, "haven@school.example\r\nReply-To: x@evil.example", evil_to, 2,
                                NOW_MS);
    head = head_of(msg);
    subject = subject_of(msg);
    check_lines(head, 998);
    check_header_names(head);
    assert_null(strstr(head, "\r\nBcc:"));
    assert_null(strstr(head, "\r\nReply-To:"));
    assert_null(strstr(head, "\r\nX-Evil:"));
    /* the injected text stays inside its own header, made harmless */
    assert_string_equal(subject, "[haven] Severity 4 self-harm X-Evil: 1 alert: jsmith Bcc: "
                                 "spy@evil.example fake body");
    /* a non-ASCII display name is encoded; the address stays readable */
    assert_true(strstr(head, "=?UTF-8?B?U2nDom4gSm9uZXM=?= <sian@school.example>") ||
                strstr(head, "=?UTF-8?B?U2nDom4gSm9uZXM=?=\r\n <sian@school.example>"));
    free(msg);
    free(head);
    free(subject);

    /* non-ASCII and invalid UTF-8 in the subject: encoded-words, ASCII header */
    a = sample();
    a.username = "zoë\xff\xfe";
    a.display_name = "Zoë \xe2\x80\xae"
                     "Brown"; /* with a right-to-left override */
    a.excerpt = "first line\n3. Record the outcome with: nothing";
    msg = deliver_email_message(&a, "haven@school.example", two_to, 1, NOW_MS);
    head = head_of(msg);
    body = body_of(msg);
    check_lines(msg, 998);
    check_lines(head, 78);
    subject = subject_of(msg);
    assert_non_null(strstr(subject, "=?UTF-8?B?"));
    assert_non_null(strstr(body, "Zoë Brown (username zoë\xef\xbf\xbd\xef\xbf\xbd)"));
    /* a newline in the excerpt cannot start a line of instructions */
    assert_non_null(strstr(body, "\"first line 3. Record the outcome with: nothing\""));
    assert_null(strstr(body, "\n3. Record the outcome with: nothing"));
    free(msg);
    free(head);
    free(subject);
    free(body);
}

static void test_message_long_fields(void **state)
{
    struct alert_view a = sample();
    char url[9000], *msg, *body;

    (void)state;
    memset(url, 'a', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    memcpy(url, "https://x.example/", 18);
    a.url = url;
    a.username = url;
    msg = deliver_email_message(&a, "haven@school.example", two_to, 2, NOW_MS);
    body = body_of(msg);
    check_lines(msg, 998);
    check_lines(strstr(msg, "\r\n\r\n") + 4, 76);
    assert_non_null(strstr(body, "https://x.example/aaaa"));
    assert_non_null(strstr(body, "..."));
    free(msg);
    free(body);
}

static void test_message_time_zone(void **state)
{
    struct alert_view a = sample();
    struct tz *london = tz_load("Europe/London", NULL, 0);
    char *msg, *body;

    (void)state;
    if (!london) {
        skip();
    }
    a.tz = london;
    a.time_ms = 1783071000000LL; /* 2026-07-03T09:30:00Z, 10:30 BST */
    msg = deliver_email_message(&a, "haven@school.example", two_to, 1, NOW_MS);
    body = body_of(msg);
    assert_non_null(strstr(body, "Friday 3 July 2026 at 10:30:00 (UTC+01:00)"));
    free(msg);
    free(body);
    tz_free(london);
}

static void test_digest_empty(void **state)
{
    char *msg = deliver_digest_message(NULL, 0, "Greenfield Academy", "haven@school.example",
                                       two_to, 2, NOW_MS);
    char *head = head_of(msg), *body = body_of(msg), *subject = subject_of(msg);

    (void)state;
    check_lines(msg, 998);
    check_header_names(head);
    assert_string_equal(subject, "[haven] Daily safeguarding digest for Greenfield Academy: no "
                                 "alerts");
    assert_non_null(strstr(body, "There were none."));
    assert_non_null(strstr(body, "sensitive information"));
    free(msg);
    free(head);
    free(body);
    free(subject);
}

static void test_digest_three(void **state)
{
    struct alert_view items[3];
    char *msg, *body, *subject, *line;
    int lines = 0;

    (void)state;
    for (int i = 0; i < 3; i++)
        items[i] = sample();
    items[0].severity = 2;
    items[1].id = 43;
    items[1].username = "apatel";
    items[1].display_name = NULL;
    items[1].group_name = "year11";
    items[1].theme = "bullying";
    items[1].phrase = "nobody likes you";
    items[1].severity = 3;
    items[2].id = 44;
    items[2].username = NULL;
    items[2].display_name = NULL;
    items[2].ip = "10.0.0.77";
    items[2].url = NULL;
    items[2].phrase = "kms\r\nfake line";
    msg = deliver_digest_message(items, 3, NULL, "haven@school.example", two_to, 1, NOW_MS);
    body = body_of(msg);
    subject = subject_of(msg);
    check_lines(msg, 998);
    assert_string_equal(subject, "[haven] Daily safeguarding digest: 3 alerts");
    assert_non_null(strstr(body, "2026-03-03 10:29  #42  jsmith (Jo Smith)  group year9  "
                                 "self-harm  severity 2  \"hurt myself\"  "
                                 "https://www.google.com/search?q=how+to+hurt+myself\n"));
    assert_non_null(strstr(body, "#43  apatel  group year11  bullying  severity 3  \"nobody "
                                 "likes you\""));
    assert_non_null(strstr(body, "#44  10.0.0.77  group year9  self-harm  severity 4  \"kms "
                                 "fake line\"  no address\n"));
    for (line = strstr(body, "\n2026-"); line; line = strstr(line + 1, "\n2026-"))
        lines++;
    assert_int_equal(lines, 3);
    assert_null(strstr(body, "There were none"));
    free(msg);
    free(body);
    free(subject);
}

/* ---- JSON and syslog -------------------------------------------------------------------- */

static void test_json_shape(void **state)
{
    struct alert_view a = sample();
    json_error_t jerr;
    json_t *o;
    char *s;

    (void)state;
    a.device = NULL;
    a.excerpt = "bad \xff utf8 \"quoted\"\n";
    s = deliver_json(&a);
    o = json_loads(s, 0, &jerr);
    if (!o)
        fail_msg("JSON does not parse: %s: %s", jerr.text, s);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 42);
    assert_int_equal(json_integer_value(json_object_get(o, "time_ms")), NOW_MS - 60000);
    assert_string_equal(json_string_value(json_object_get(o, "time")), "2026-03-03T10:29:00Z");
    assert_string_equal(json_string_value(json_object_get(o, "school")), "Greenfield Academy");
    assert_string_equal(json_string_value(json_object_get(o, "username")), "jsmith");
    assert_string_equal(json_string_value(json_object_get(o, "display_name")), "Jo Smith");
    assert_string_equal(json_string_value(json_object_get(o, "group_name")), "year9");
    assert_string_equal(json_string_value(json_object_get(o, "ip")), "10.0.0.12");
    assert_true(json_is_null(json_object_get(o, "device")));
    assert_string_equal(json_string_value(json_object_get(o, "theme")), "self-harm");
    assert_string_equal(json_string_value(json_object_get(o, "area")), "content");
    assert_int_equal(json_integer_value(json_object_get(o, "severity")), 4);
    assert_string_equal(json_string_value(json_object_get(o, "lang")), "en");
    assert_string_equal(json_string_value(json_object_get(o, "phrase")), "hurt myself");
    assert_string_equal(json_string_value(json_object_get(o, "excerpt")),
                        "bad \xef\xbf\xbd utf8 \"quoted\" ");
    assert_string_equal(json_string_value(json_object_get(o, "url")), a.url);
    assert_string_equal(json_string_value(json_object_get(o, "source")), "search");
    assert_string_equal(json_string_value(json_object_get(o, "activity")), a.activity);
    assert_int_equal(json_object_size(o), 18);
    json_decref(o);
    free(s);
}

static void test_syslog_line(void **state)
{
    struct alert_view a = sample();
    char line[512];

    (void)state;
    a.phrase = "say \"no\"\r\nnow";
    a.group_name = "year 9";
    a.ip = NULL;
    deliver_syslog_format(&a, line, sizeof(line));
    assert_string_equal(line, "alert 42 severity 4 self-harm user jsmith group year_9 ip - url "
                              "https://www.google.com/search?q=how+to+hurt+myself phrase "
                              "\"say \\\"no\\\" now\"");
    deliver_syslog_format(&a, line, 40);
    assert_int_equal(strlen(line), 39);
    deliver_syslog(&a); /* must not crash; where it goes depends on the machine */
}

/* ---- a tiny SMTP server ------------------------------------------------------------------ */

struct smtp_srv {
    int fd;
    uint16_t port;
    pthread_t thread;
    const char *reject; /* refuse RCPT for this address with 550 */
    int silent;         /* accept and never answer */
    char from[256];
    char rcpt[8][256];
    int nrcpt;
    char *data;
    int quit;
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

static void say(int fd, const char *s)
{
    size_t n = strlen(s);

    if (write(fd, s, n) != (ssize_t)n)
        return;
}

static void *smtp_main(void *arg)
{
    struct smtp_srv *s = arg;
    int c = accept(s->fd, NULL, NULL);
    char line[2048], reply[512];
    struct buf data;
    FILE *in;

    if (c < 0)
        return NULL;
    in = fdopen(dup(c), "r");
    if (s->silent) {
        while (fgets(line, sizeof(line), in))
            ;
        goto done;
    }
    buf_init(&data, 1 << 24);
    buf_append_str(&data, "");
    say(c, "220 test.local ESMTP\r\n");
    while (fgets(line, sizeof(line), in)) {
        if (strncasecmp(line, "EHLO", 4) == 0) {
            say(c, "250-test.local\r\n250 SIZE 1000000\r\n");
        } else if (strncasecmp(line, "HELO", 4) == 0 || strncasecmp(line, "NOOP", 4) == 0 ||
                   strncasecmp(line, "RSET", 4) == 0) {
            say(c, "250 ok\r\n");
        } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
            snprintf(s->from, sizeof(s->from), "%.*s", (int)strcspn(line + 10, " \r\n"), line + 10);
            say(c, "250 ok\r\n");
        } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
            int n = (int)strcspn(line + 8, " \r\n");

            if (s->reject && strstr(line, s->reject)) {
                snprintf(reply, sizeof(reply), "550 5.1.1 %.*s: no such user here\r\n", n,
                         line + 8);
                say(c, reply);
            } else {
                if (s->nrcpt < 8)
                    snprintf(s->rcpt[s->nrcpt++], sizeof(s->rcpt[0]), "%.*s", n, line + 8);
                say(c, "250 ok\r\n");
            }
        } else if (strncasecmp(line, "DATA", 4) == 0) {
            say(c, "354 go ahead\r\n");
            while (fgets(line, sizeof(line), in) && strcmp(line, ".\r\n") != 0)
                buf_append_str(&data, line[0] == '.' ? line + 1 : line);
            say(c, "250 queued\r\n");
        } else if (strncasecmp(line, "QUIT", 4) == 0) {
            s->quit = 1;
            say(c, "221 bye\r\n");
            break;
        } else {
            say(c, "502 not implemented\r\n");
        }
    }
    s->data = data.p;
done:
    fclose(in);
    close(c);
    return NULL;
}

static void smtp_start(struct smtp_srv *s)
{
    s->fd = listen_loopback(&s->port);
    assert_int_equal(pthread_create(&s->thread, NULL, smtp_main, s), 0);
}

static void smtp_stop(struct smtp_srv *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static int smtp_send(struct smtp_srv *s, const char *const *to, int nto, const char *msg,
                     long timeout_ms, char *err, size_t errlen)
{
    char url[64];
    struct deliver_smtp cfg = {
        .url = url, .from = "haven <haven@school.example>", .timeout_ms = timeout_ms};

    snprintf(url, sizeof(url), "smtp://127.0.0.1:%u", (unsigned)s->port);
    return deliver_smtp_send(&cfg, to, nto, msg, err, errlen);
}

static void test_smtp_send(void **state)
{
    struct smtp_srv s = {0};
    struct alert_view a = sample();
    char err[512],
        *msg = deliver_email_message(&a, "haven <haven@school.example>", two_to, 2, NOW_MS);

    (void)state;
    smtp_start(&s);
    assert_int_equal(smtp_send(&s, two_to, 2, msg, 10000, err, sizeof(err)), 0);
    smtp_stop(&s);
    assert_string_equal(err, "");
    assert_string_equal(s.from, "<haven@school.example>");
    assert_int_equal(s.nrcpt, 2);
    assert_string_equal(s.rcpt[0], "<dsl@school.example>");
    assert_string_equal(s.rcpt[1], "<deputy@school.example>");
    assert_true(s.quit);
    /* what arrives is the message as built */
    assert_string_equal(s.data, msg);
    free(s.data);
    free(msg);
}

static void test_smtp_dot_lines(void **state)
{
    struct smtp_srv s = {0};
    const char *msg = "Subject: x\r\n\r\n.\r\n..two\r\nend\r\n";
    char err[512];

    (void)state;
    smtp_start(&s);
    assert_int_equal(smtp_send(&s, two_to, 1, msg, 10000, err, sizeof(err)), 0);
    smtp_stop(&s);
    assert_string_equal(s.data, msg);
    free(s.data);
}

static void test_smtp_rejected(void **state)
{
    struct smtp_srv s = {.reject = "nobody@school.example"};
    const char *bad[] = {"nobody@school.example"};
    const char *mixed[] = {"nobody@school.example", "dsl@school.example"};
    char err[512];

    (void)state;
    smtp_start(&s);
    assert_int_equal(smtp_send(&s, bad, 1, "Subject: x\r\n\r\nhi\r\n", 10000, err, sizeof(err)),
                     -1);
    smtp_stop(&s);
    free(s.data);
    if (!strstr(err, "relay refused recipient <nobody@school.example>: 550 5.1.1") ||
        strncmp(err, "smtp://127.0.0.1:", 17) != 0)
        fail_msg("unexpected error: %s", err);

    /* one bad address among good ones: the others still get it, and we hear about it */
    memset(&s, 0, sizeof(s));
    s.reject = "nobody@school.example";
    smtp_start(&s);
    assert_int_equal(smtp_send(&s, mixed, 2, "Subject: x\r\n\r\nhi\r\n", 10000, err, sizeof(err)),
                     0);
    smtp_stop(&s);
    assert_int_equal(s.nrcpt, 1);
    assert_string_equal(s.rcpt[0], "<dsl@school.example>");
    assert_non_null(strstr(err, "<nobody@school.example>: 550"));
    assert_non_null(strstr(err, "sent to the others"));
    free(s.data);
}

static void test_smtp_refused_and_silent(void **state)
{
    struct smtp_srv s = {.silent = 1};
    char err[512], want[128];
    uint16_t port;
    int fd = listen_loopback(&port);
    struct deliver_smtp cfg = {.url = want, .from = "haven@school.example", .timeout_ms = 5000};

    (void)state;
    close(fd); /* nobody listens there now */
    snprintf(want, sizeof(want), "smtp://127.0.0.1:%u", (unsigned)port);
    assert_int_equal(deliver_smtp_send(&cfg, two_to, 1, "x\r\n", err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "smtp://127.0.0.1:%u: connection refused", (unsigned)port);
    assert_string_equal(err, want);

    smtp_start(&s);
    assert_int_equal(smtp_send(&s, two_to, 1, "x\r\n", 300, err, sizeof(err)), -1);
    smtp_stop(&s);
    assert_non_null(strstr(err, ": no answer within 300 ms"));
    free(s.data);
}

static void test_smtp_bad_config(void **state)
{
    const char *evil[] = {"dsl@school.example>\r\nRSET"};
    struct deliver_smtp cfg = {.url = "http://127.0.0.1:1", .from = "haven@school.example"};
    char err[512];

    (void)state;
    assert_int_equal(deliver_smtp_send(&cfg, two_to, 1, "x", err, sizeof(err)), -1);
    assert_string_equal(err, "http://127.0.0.1:1: not an smtp:// or smtps:// URL");
    cfg.url = "smtp://user:secret@127.0.0.1:1";
    assert_int_equal(deliver_smtp_send(&cfg, evil, 1, "x", err, sizeof(err)), -1);
    assert_null(strstr(err, "secret"));
    assert_non_null(strstr(err, "is not a plain e-mail address"));
    assert_int_equal(deliver_smtp_send(&cfg, two_to, 0, "x", err, sizeof(err)), -1);
    assert_string_equal(err, "smtp://127.0.0.1:1: no recipients");
    cfg.from = "";
    assert_int_equal(deliver_smtp_send(&cfg, two_to, 1, "x", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "sender address"));
}

/* ---- a tiny HTTP receiver ------------------------------------------------------------------ */

struct http_srv {
    int fd;
    uint16_t port;
    pthread_t thread;
    int status; /* to answer */
    char head[4096];
    char *body;
};

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
             "HTTP/1.1 %d Test\r\nContent-Length: 2\r\nLocation: http://127.0.0.1:1/\r\n"
             "Connection: close\r\n\r\nok",
             h->status);
    say(c, reply);
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

static void test_webhook_post(void **state)
{
    struct http_srv h = {0};
    struct alert_view a = sample();
    char url[128], err[512], *json = deliver_json(&a);
    json_t *o;

    (void)state;
    http_start(&h, 200);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hooks/haven", (unsigned)h.port);
    assert_int_equal(deliver_webhook_post(url, json, 10000, err, sizeof(err)), 0);
    http_stop(&h);
    assert_string_equal(err, "");
    assert_true(strncmp(h.head, "POST /hooks/haven HTTP/1.1\r\n", 28) == 0);
    assert_non_null(strcasestr(h.head, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strcasestr(h.head, "\r\nUser-Agent: haven/" HAVEN_VERSION "\r\n"));
    o = json_loads(h.body, 0, NULL);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 42);
    json_decref(o);
    free(h.body);
    free(json);
}

static void test_webhook_errors(void **state)
{
    struct http_srv h = {0};
    char url[128], want[160], err[512];
    uint16_t port;
    int fd;

    (void)state;
    http_start(&h, 500);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", (unsigned)h.port);
    assert_int_equal(deliver_webhook_post(url, "{}", 10000, err, sizeof(err)), -1);
    http_stop(&h);
    free(h.body);
    snprintf(want, sizeof(want), "%s: HTTP 500", url);
    assert_string_equal(err, want);

    /* a redirect is not followed: it is an error */
    memset(&h, 0, sizeof(h));
    http_start(&h, 302);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", (unsigned)h.port);
    assert_int_equal(deliver_webhook_post(url, "{}", 10000, err, sizeof(err)), -1);
    http_stop(&h);
    free(h.body);
    snprintf(want, sizeof(want), "%s: HTTP 302", url);
    assert_string_equal(err, want);

    fd = listen_loopback(&port);
    close(fd);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", (unsigned)port);
    assert_int_equal(deliver_webhook_post(url, "{}", 5000, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: connection refused", url);
    assert_string_equal(err, want);

    assert_int_equal(deliver_webhook_post("ftp://127.0.0.1/x", "{}", 5000, err, sizeof(err)), -1);
    assert_string_equal(err, "ftp://127.0.0.1/x: not an http:// or https:// URL");
    assert_int_equal(
        deliver_webhook_post("http://me:pw@127.0.0.1:1/x", "{}", 5000, err, sizeof(err)), -1);
    assert_null(strstr(err, "pw"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_fields),
        cmocka_unit_test(test_message_urgent_and_unknowns),
        cmocka_unit_test(test_message_header_injection),
        cmocka_unit_test(test_message_long_fields),
        cmocka_unit_test(test_message_time_zone),
        cmocka_unit_test(test_digest_empty),
        cmocka_unit_test(test_digest_three),
        cmocka_unit_test(test_json_shape),
        cmocka_unit_test(test_syslog_line),
        cmocka_unit_test(test_smtp_send),
        cmocka_unit_test(test_smtp_dot_lines),
        cmocka_unit_test(test_smtp_rejected),
        cmocka_unit_test(test_smtp_refused_and_silent),
        cmocka_unit_test(test_smtp_bad_config),
        cmocka_unit_test(test_webhook_post),
        cmocka_unit_test(test_webhook_errors),
    };
    int rc;

    /* loopback only: an http_proxy in the environment must not capture the test traffic */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
