/* Unit tests: the bounded queue and the access log (JSON lines, Squid lines, rotation, drops). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "event/accesslog.h"
#include "event/queue.h"

static char tmpdir[256];

/* ---- helpers ---- */

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

/* The lines of a file, each NUL-terminated without its newline; caller frees lines[0] and lines. */
static size_t read_lines(const char *path, char ***out)
{
    FILE *fp = fopen(path, "rb");
    char *data, **lines = NULL;
    size_t n = 0, cap = 0, len = 0, size = 0;
    size_t got;
    char chunk[65536];

    if (!fp)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    data = xmalloc(1);
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        data = xgrow(data, &size, len + got + 1, 1);
        memcpy(data + len, chunk, got);
        len += got;
    }
    fclose(fp);
    data[len] = '\0';
    for (size_t i = 0; i < len;) {
        char *nl = memchr(data + i, '\n', len - i);

        if (!nl)
            fail_msg("%s: last line has no newline", path);
        *nl = '\0';
        lines = xgrow(lines, &cap, n + 1, sizeof(*lines));
        lines[n++] = data + i;
        i = (size_t)(nl - data) + 1;
    }
    if (n == 0)
        free(data);
    *out = lines;
    return n;
}

static void free_lines(char **lines, size_t n)
{
    if (n > 0)
        free(lines[0]);
    free(lines);
}

static int file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

static void wait_written(struct accesslog *al, uint64_t n)
{
    struct accesslog_stats st;
    struct timespec ms = {0, 1000000};

    for (int i = 0; i < 20000; i++) {
        accesslog_stats(al, &st);
        if (st.written >= n)
            return;
        nanosleep(&ms, NULL);
    }
    fail_msg("the writer did not write %llu records", (unsigned long long)n);
}

static void clean_dir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[512];

    if (!d)
        return;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/haven-test-accesslog-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clean_dir();
    rmdir(tmpdir);
    return 0;
}

static struct accesslog *open_log(const char *json, const char *squid, size_t qlen,
                                  uint64_t max_size, int keep)
{
    char jp[512] = "", sp[512] = "", err[512];
    struct accesslog_config cfg = {
        .json_path = jp, .squid_path = sp, .queue_len = qlen, .max_size = max_size, .keep = keep};
    struct accesslog *al;

    if (json)
        path_in(jp, sizeof(jp), json);
    if (squid)
        path_in(sp, sizeof(sp), squid);
    al = accesslog_open(&cfg, err, sizeof(err));
    if (!al)
        fail_msg("accesslog_open: %s", err);
    return al;
}

static const char *const cats_two[] = {"games", "social-networking"};

static struct access_record sample(void)
{
    struct access_record r = {
        .time_ms = 1764364205123, /* 2025-11-28T21:10:05.123Z */
        .client = "127.0.0.1",
        .device = "LAB2-PC07",
        .user = "alice",
        .group = "secondary",
        .method = "GET",
        .url = "http://example.com/",
        .categories = cats_two,
        .ncategories = 2,
        .action = "allow",
        .tier = "category",
        .rule = "policy.conf:12: allow games",
        .reason = "example.com is allowed.",
        .ref = "R-7F3A",
        .status = 200,
        .bytes_in = 412,
        .bytes_out = 5120,
        .duration_ms = 45,
        .safe_search = "",
        .circumvention = 0,
        .tunnel = 0,
    };
    return r;
}

static json_t *parse_line(const char *line)
{
    json_error_t e;
    json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &e);

    if (!j)
        fail_msg("not JSON (%s): %s", e.text, line);
    if (!json_is_object(j))
        fail_msg("not an object: %s", line);
    return j;
}

static void expect_str(json_t *j, const char *key, const char *want)
{
    json_t *v = json_object_get(j, key);

    if (!json_is_string(v))
        fail_msg("\"%s\" is missing or not a string", key);
    if (json_string_length(v) != strlen(want) || memcmp(json_string_value(v), want, strlen(want)))
        fail_msg("\"%s\" is \"%s\", want \"%s\"", key, json_string_value(v), want);
}

static void expect_int(json_t *j, const char *key, json_int_t want)
{
    json_t *v = json_object_get(j, key);

    if (!json_is_integer(v))
        fail_msg("\"%s\" is missing or not an integer", key);
    assert_int_equal(json_integer_value(v), want);
}

static void expect_bool(json_t *j, const char *key, int want)
{
    json_t *v = json_object_get(j, key);

    if (!json_is_boolean(v))
        fail_msg("\"%s\" is missing or not a boolean", key);
    assert_int_equal(json_is_true(v), want);
}

/* ---- the queue ---- */

static void test_queue_basic(void **state)
{
    struct queue *q = queue_create(3, 4096, 100);
    char out[100], big[101] = {0};
    size_t len;

    (void)state;
    assert_int_equal(queue_pop(q, out, &len, 0), -1);
    assert_int_equal(queue_push(q, big, sizeof(big)), -1); /* longer than max_item */
    assert_int_equal(queue_push(q, "one", 3), 0);
    assert_int_equal(queue_push(q, "", 0), 0);
    assert_int_equal(queue_push(q, "three", 5), 0);
    assert_int_equal(queue_push(q, "four", 4), -1); /* full by count */
    assert_int_equal(queue_count(q), 3);
    assert_int_equal(queue_pop(q, out, &len, 0), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "one", 3);
    assert_int_equal(queue_pop(q, out, &len, 0), 0);
    assert_int_equal(len, 0);
    assert_int_equal(queue_pop(q, out, &len, 0), 0);
    assert_memory_equal(out, "three", 5);
    assert_int_equal(queue_pop(q, out, &len, 0), -1);
    /* A wake makes a waiting pop return at once, even with a long timeout. */
    queue_wake(q);
    assert_int_equal(queue_pop(q, out, &len, 60000), -1);
    queue_destroy(q);
}

/* Batched wake-ups: a waiting consumer still gets a lone record when its wait times out. */
struct lone {
    struct queue *q;
    int got;
    char out[100];
};

static void *lone_consumer(void *arg)
{
    struct lone *l = arg;
    size_t len;

    l->got = queue_pop(l->q, l->out, &len, 300) == 0 && len == 4;
    return NULL;
}

static void test_queue_batched_wake(void **state)
{
    struct lone l = {.q = queue_create(1000, 65536, 100)};
    pthread_t t;

    (void)state;
    queue_set_wake(l.q, 64);
    assert_int_equal(pthread_create(&t, NULL, lone_consumer, &l), 0);
    assert_int_equal(queue_push(l.q, "lone", 4), 0);
    pthread_join(t, NULL);
    assert_true(l.got);
    assert_memory_equal(l.out, "lone", 4);
    queue_destroy(l.q);
}

/* Full by bytes, and records of every size survive many trips round the ring. */
static void test_queue_ring(void **state)
{
    struct queue *q = queue_create(1000, 256, 100);
    unsigned char in[100], out[100];
    size_t len, pushed = 0, popped = 0, sizes[1000];
    uint32_t x = 12345;

    (void)state;
    /* 256 bytes hold two records of 100 (8 + 104 each), not three. */
    memset(in, 'a', sizeof(in));
    assert_int_equal(queue_push(q, in, 100), 0);
    assert_int_equal(queue_push(q, in, 100), 0);
    assert_int_equal(queue_push(q, in, 100), -1);
    assert_int_equal(queue_pop(q, out, &len, 0), 0);
    assert_int_equal(queue_pop(q, out, &len, 0), 0);
    for (int round = 0; round < 20000; round++) {
        x = x * 1103515245u + 12345u;
        if ((x >> 16) % 3 != 0) {
            size_t n = (x >> 8) % 101;

            for (size_t i = 0; i < n; i++)
                in[i] = (unsigned char)(pushed + i);
            if (queue_push(q, in, n) == 0)
                sizes[pushed++ % 1000] = n;
        } else if (queue_pop(q, out, &len, 0) == 0) {
            assert_int_equal(len, sizes[popped % 1000]);
            for (size_t i = 0; i < len; i++)
                assert_int_equal(out[i], (unsigned char)(popped + i));
            popped++;
        }
    }
    while (queue_pop(q, out, &len, 0) == 0) {
        assert_int_equal(len, sizes[popped % 1000]);
        popped++;
    }
    assert_int_equal(pushed, popped);
    assert_true(pushed > 1000);
    queue_destroy(q);
}

/* Batches hand records out in place; space comes back only at queue_done. */
static void test_queue_batch(void **state)
{
    struct queue *q = queue_create(4, 4096, 100);
    struct queue_batch b;
    const void *item;
    size_t len;
    char out[100];

    (void)state;
    assert_int_equal(queue_take(q, &b, 8, 0), -1);
    assert_int_equal(queue_push(q, "a", 1), 0);
    assert_int_equal(queue_push(q, "bb", 2), 0);
    assert_int_equal(queue_push(q, "ccc", 3), 0);
    assert_int_equal(queue_take(q, &b, 2, 0), 0);
    assert_int_equal(queue_next(q, &b, &item, &len), 0);
    assert_int_equal(len, 1);
    assert_memory_equal(item, "a", 1);
    assert_int_equal(queue_push(q, "dddd", 4), 0);
    assert_int_equal(queue_push(q, "e", 1), -1); /* the batch still holds its records */
    assert_int_equal(queue_next(q, &b, &item, &len), 0);
    assert_memory_equal(item, "bb", 2);
    assert_int_equal(queue_next(q, &b, &item, &len), -1); /* took 2 */
    queue_done(q, &b);
    assert_int_equal(queue_count(q), 2);
    assert_int_equal(queue_push(q, "e", 1), 0);
    /* Done after handing out only part of a batch keeps the rest queued. */
    assert_int_equal(queue_take(q, &b, 8, 0), 0);
    assert_int_equal(queue_next(q, &b, &item, &len), 0);
    assert_memory_equal(item, "ccc", 3);
    queue_done(q, &b);
    assert_int_equal(queue_pop(q, out, &len, 0), 0);
    assert_memory_equal(out, "dddd", 4);
    assert_int_equal(queue_take(q, &b, 8, 0), 0);
    assert_int_equal(queue_next(q, &b, &item, &len), 0);
    assert_memory_equal(item, "e", 1);
    assert_int_equal(queue_next(q, &b, &item, &len), -1);
    queue_done(q, &b);
    assert_int_equal(queue_count(q), 0);
    queue_destroy(q);
}

/* ---- JSON lines ---- */

static void test_json_fields(void **state)
{
    static const char *const keys[] = {
        "time",   "client",        "device",   "user",      "group",       "method",
        "url",    "categories",    "action",   "tier",      "rule",        "reason",
        "ref",    "status",        "bytes_in", "bytes_out", "duration_ms", "safe_search",
        "search", "circumvention", "tunnel"};
    struct accesslog *al = open_log("access.log.json", NULL, 0, 0, 0);
    struct access_record r = sample();
    struct accesslog_stats st;
    char path[512], **lines;
    const char *key;
    json_t *j, *v;
    size_t n, i = 0;

    (void)state;
    assert_int_equal(accesslog_submit(al, &r), 0);
    r.action = "block";
    r.url = "chat.example:443";
    r.method = "CONNECT";
    r.tunnel = 1;
    r.circumvention = 1;
    r.status = 403;
    r.device = NULL;
    r.categories = NULL;
    r.ncategories = 0;
    r.safe_search = "google:safe=active";
    r.search = "volcanoes";
    r.time_ms = -1; /* 1969-12-31T23:59:59.999Z */
    assert_int_equal(accesslog_submit(al, &r), 0);
    accesslog_close(al);

    path_in(path, sizeof(path), "access.log.json");
    n = read_lines(path, &lines);
    assert_int_equal(n, 2);
    j = parse_line(lines[0]);
    /* Every key, in the documented order, and nothing else. */
    json_object_foreach(j, key, v)
    {
        if (i >= HAVEN_ARRAY_LEN(keys) || strcmp(key, keys[i]) != 0)
            fail_msg("key %zu is \"%s\", want \"%s\"", i, key,
                     i < HAVEN_ARRAY_LEN(keys) ? keys[i] : "(none)");
        i++;
    }
    assert_int_equal(i, HAVEN_ARRAY_LEN(keys));
    expect_str(j, "time", "2025-11-28T21:10:05.123Z");
    expect_str(j, "client", "127.0.0.1");
    expect_str(j, "device", "LAB2-PC07");
    expect_str(j, "user", "alice");
    expect_str(j, "group", "secondary");
    expect_str(j, "method", "GET");
    expect_str(j, "url", "http://example.com/");
    v = json_object_get(j, "categories");
    assert_true(json_is_array(v));
    assert_int_equal(json_array_size(v), 2);
    assert_string_equal(json_string_value(json_array_get(v, 0)), "games");
    assert_string_equal(json_string_value(json_array_get(v, 1)), "social-networking");
    expect_str(j, "action", "allow");
    expect_str(j, "tier", "category");
    expect_str(j, "rule", "policy.conf:12: allow games");
    expect_str(j, "reason", "example.com is allowed.");
    expect_str(j, "ref", "R-7F3A");
    expect_int(j, "status", 200);
    expect_int(j, "bytes_in", 412);
    expect_int(j, "bytes_out", 5120);
    expect_int(j, "duration_ms", 45);
    expect_str(j, "safe_search", "");
    expect_str(j, "search", "");
    expect_bool(j, "circumvention", 0);
    expect_bool(j, "tunnel", 0);
    json_decref(j);

    j = parse_line(lines[1]);
    expect_str(j, "time", "1969-12-31T23:59:59.999Z");
    expect_str(j, "device", "");
    expect_str(j, "method", "CONNECT");
    expect_str(j, "url", "chat.example:443");
    assert_int_equal(json_array_size(json_object_get(j, "categories")), 0);
    expect_str(j, "action", "block");
    expect_int(j, "status", 403);
    expect_str(j, "safe_search", "google:safe=active");
    expect_str(j, "search", "volcanoes");
    expect_bool(j, "circumvention", 1);
    expect_bool(j, "tunnel", 1);
    json_decref(j);
    free_lines(lines, n);

    accesslog_stats(NULL, &st);
    assert_int_equal(st.written, 0);
    clean_dir();
}

static void test_json_hostile(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"say \"hi\" \\ back", "say \"hi\" \\ back"},
        {"two\nlines\r\n\tand tab", "two\nlines\r\n\tand tab"},
        {"bell\a esc\x1b del\x7f bs\b ff\f", "bell\a esc\x1b del\x7f bs\b ff\f"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"lone \x80 cont", "lone \xef\xbf\xbd cont"},
        {"cut \xe2\x82", "cut \xef\xbf\xbd"},
        {"cut \xe2\x82x", "cut \xef\xbf\xbdx"},
        {"overlong \xc0\xaf", "overlong \xef\xbf\xbd\xef\xbf\xbd"},
        {"surrogate \xed\xa0\x80", "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"too big \xf4\x90\x80\x80", "too big \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"</script><b>", "</script><b>"},
    };
    const char *hostile_cats[2];
    struct accesslog *al = open_log("h.json", "h.squid", 0, 0, 0);
    struct access_record r = sample();
    char path[512], **lines;
    size_t n;

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(cases); i++) {
        r.user = cases[i].in;
        r.url = cases[i].in;
        r.reason = cases[i].in;
        hostile_cats[0] = cases[i].in;
        hostile_cats[1] = "ok";
        r.categories = hostile_cats;
        r.ncategories = 2;
        assert_int_equal(accesslog_submit(al, &r), 0);
    }
    accesslog_close(al);

    path_in(path, sizeof(path), "h.json");
    n = read_lines(path, &lines);
    assert_int_equal(n, HAVEN_ARRAY_LEN(cases)); /* no raw newline got through */
    for (size_t i = 0; i < n; i++) {
        json_t *j = parse_line(lines[i]);
        json_t *cat = json_array_get(json_object_get(j, "categories"), 0);

        expect_str(j, "user", cases[i].want);
        expect_str(j, "url", cases[i].want);
        expect_str(j, "reason", cases[i].want);
        assert_string_equal(json_string_value(cat), cases[i].want);
        json_decref(j);
    }
    free_lines(lines, n);

    /* The Squid lines: one per record, always 10 space-separated fields. */
    path_in(path, sizeof(path), "h.squid");
    n = read_lines(path, &lines);
    assert_int_equal(n, HAVEN_ARRAY_LEN(cases));
    for (size_t i = 0; i < n; i++) {
        int fields = 1;

        for (const char *p = lines[i]; *p; p++) {
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                fail_msg("raw byte 0x%02x in squid line %zu", (unsigned char)*p, i);
            if (*p == ' ' && p[1] != ' ' && p != lines[i])
                fields++;
        }
        assert_int_equal(fields, 10);
    }
    assert_non_null(strstr(lines[1], " two%0Alines%0D%0A%09and%20tab "));
    assert_non_null(strstr(lines[3], " caf%C3%A9%20%E2%82%AC%20%F0%9F%98%80 "));
    free_lines(lines, n);
    clean_dir();
}

/* Long fields are cut at the documented length, on a character boundary, and marked. */
static void test_truncation(void **state)
{
    struct accesslog *al = open_log("t.json", NULL, 0, 0, 0);
    struct access_record r = sample();
    char url[3000], user[ACCESSLOG_USER_MAX + 10], path[512], **lines;
    const char *many[100];
    json_t *j;
    size_t n;

    (void)state;
    memcpy(url, "http://example.com/", 19);
    memset(url + 19, 'a', sizeof(url) - 20);
    url[sizeof(url) - 1] = '\0';
    /* "é" (2 bytes) straddles the cut: the whole character goes. */
    memset(user, 'u', sizeof(user));
    user[ACCESSLOG_USER_MAX - 1] = '\xc3';
    user[ACCESSLOG_USER_MAX] = '\xa9';
    user[sizeof(user) - 1] = '\0';
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(many); i++)
        many[i] = "a-category-name";
    r.url = url;
    r.user = user;
    r.categories = many;
    r.ncategories = HAVEN_ARRAY_LEN(many);
    assert_int_equal(accesslog_submit(al, &r), 0);
    r = sample();
    assert_int_equal(accesslog_submit(al, &r), 0);
    accesslog_close(al);

    path_in(path, sizeof(path), "t.json");
    n = read_lines(path, &lines);
    assert_int_equal(n, 2);
    j = parse_line(lines[0]);
    assert_int_equal(json_string_length(json_object_get(j, "url")), ACCESSLOG_URL_MAX);
    assert_memory_equal(json_string_value(json_object_get(j, "url")), url, ACCESSLOG_URL_MAX);
    expect_bool(j, "url_truncated", 1);
    assert_int_equal(json_string_length(json_object_get(j, "user")), ACCESSLOG_USER_MAX - 1);
    expect_bool(j, "user_truncated", 1);
    /* 512 bytes hold 32 names of 15 bytes and their separators. */
    assert_int_equal(json_array_size(json_object_get(j, "categories")), 32);
    expect_bool(j, "categories_truncated", 1);
    assert_null(json_object_get(j, "reason_truncated"));
    json_decref(j);
    j = parse_line(lines[1]);
    assert_null(json_object_get(j, "url_truncated"));
    json_decref(j);
    free_lines(lines, n);
    clean_dir();
}

/* ---- Squid lines ---- */

static void test_squid_lines(void **state)
{
    static const char *const want[] = {
        "1764364205.123     45 127.0.0.1 TCP_MISS/200 5120 GET http://example.com/ alice "
        "HIER_DIRECT/- -",
        "1764364205.123      3 127.0.0.1 TCP_DENIED/403 1780 GET http://games.example/play - "
        "HIER_NONE/- -",
        "1764364205.123 123456 ::1 TCP_TUNNEL/200 987654321 CONNECT mail.example:443 alice "
        "HIER_DIRECT/- -",
        "1764364205.123     45 127.0.0.1 TCP_DENIED/200 5120 GET http://example.com/ alice "
        "HIER_NONE/- -",
        "        0.005      0 - TCP_MISS/000 0 - - - HIER_DIRECT/- -",
    };
    struct accesslog *al = open_log(NULL, "access.log", 0, 0, 0);
    struct access_record r = sample(), empty = {.time_ms = 5, .duration_ms = -3, .status = -1};
    char path[512], **lines;
    size_t n;

    (void)state;
    assert_int_equal(accesslog_submit(al, &r), 0);
    r.action = "block";
    r.user = "";
    r.url = "http://games.example/play";
    r.status = 403;
    r.bytes_out = 1780;
    r.duration_ms = 3;
    assert_int_equal(accesslog_submit(al, &r), 0);
    r = sample();
    r.client = "::1";
    r.method = "CONNECT";
    r.url = "mail.example:443";
    r.tunnel = 1;
    r.bytes_out = 987654321;
    r.duration_ms = 123456;
    assert_int_equal(accesslog_submit(al, &r), 0);
    r = sample();
    r.action = "warn";
    assert_int_equal(accesslog_submit(al, &r), 0);
    assert_int_equal(accesslog_submit(al, &empty), 0);
    accesslog_close(al);

    path_in(path, sizeof(path), "access.log");
    n = read_lines(path, &lines);
    assert_int_equal(n, HAVEN_ARRAY_LEN(want));
    for (size_t i = 0; i < n; i++)
        assert_string_equal(lines[i], want[i]);
    free_lines(lines, n);
    clean_dir();
}

/* ---- rotation ---- */

static void check_json_file(const char *name, uint64_t max_size, size_t *total)
{
    char path[512], **lines;
    struct stat st;
    size_t n;

    path_in(path, sizeof(path), name);
    if (stat(path, &st) != 0)
        fail_msg("%s is missing", name);
    if ((uint64_t)st.st_size > max_size)
        fail_msg("%s has %lld bytes, more than %llu", name, (long long)st.st_size,
                 (unsigned long long)max_size);
    n = read_lines(path, &lines);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
        json_decref(parse_line(lines[i]));
    *total += n;
    free_lines(lines, n);
}

static void test_rotate_by_size(void **state)
{
    struct accesslog *al = open_log("access.log.json", "access.log", 0, 2000, 2);
    struct access_record r = sample();
    struct accesslog_stats st;
    char path[512];
    size_t total = 0;

    (void)state;
    for (int i = 0; i < 100; i++)
        assert_int_equal(accesslog_submit(al, &r), 0);
    wait_written(al, 100);
    accesslog_stats(al, &st);
    assert_true(st.rotations >= 4); /* at least twice for each file */
    assert_int_equal(st.write_errors, 0);
    accesslog_close(al);
    check_json_file("access.log.json", 2000, &total);
    check_json_file("access.log.json.1", 2000, &total);
    check_json_file("access.log.json.2", 2000, &total);
    assert_true(total < 100); /* the oldest were deleted */
    path_in(path, sizeof(path), "access.log.json.3");
    assert_false(file_exists(path));
    path_in(path, sizeof(path), "access.log.1");
    assert_true(file_exists(path));
    path_in(path, sizeof(path), "access.log.2");
    assert_true(file_exists(path));
    path_in(path, sizeof(path), "access.log.3");
    assert_false(file_exists(path));
    clean_dir();
}

static void expect_urls(const char *name, const char *url)
{
    char path[512], **lines;
    size_t n;
    json_t *j;

    path_in(path, sizeof(path), name);
    n = read_lines(path, &lines);
    if (n != 1)
        fail_msg("%s has %zu lines, want 1", name, n);
    j = parse_line(lines[0]);
    expect_str(j, "url", url);
    json_decref(j);
    free_lines(lines, n);
}

static void test_reopen(void **state)
{
    static const char *const urls[] = {"http://one.example/", "http://two.example/",
                                       "http://three.example/", "http://four.example/"};
    struct accesslog *al = open_log("r.json", NULL, 0, 0, 2);
    struct access_record r = sample();
    struct accesslog_stats st;
    char path[512], moved[512];

    (void)state;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(urls); i++) {
        if (i > 0)
            accesslog_reopen(al);
        r.url = urls[i];
        assert_int_equal(accesslog_submit(al, &r), 0);
        wait_written(al, i + 1);
    }
    accesslog_stats(al, &st);
    assert_int_equal(st.rotations, 3);
    accesslog_close(al);
    expect_urls("r.json", urls[3]);
    expect_urls("r.json.1", urls[2]);
    expect_urls("r.json.2", urls[1]);
    path_in(path, sizeof(path), "r.json.3");
    assert_false(file_exists(path)); /* keep 2: the first record's file is gone */
    clean_dir();

    /* keep 0: reopen the same name, after an external tool moved the file away. */
    al = open_log("lr.json", NULL, 0, 0, 0);
    r.url = urls[0];
    assert_int_equal(accesslog_submit(al, &r), 0);
    wait_written(al, 1);
    path_in(path, sizeof(path), "lr.json");
    path_in(moved, sizeof(moved), "lr.json-20261128");
    accesslog_hold(al, 1); /* flushed */
    assert_int_equal(rename(path, moved), 0);
    accesslog_hold(al, 0);
    accesslog_reopen(al);
    r.url = urls[1];
    assert_int_equal(accesslog_submit(al, &r), 0);
    accesslog_close(al);
    expect_urls("lr.json-20261128", urls[0]);
    expect_urls("lr.json", urls[1]);
    path_in(path, sizeof(path), "lr.json.1");
    assert_false(file_exists(path));
    clean_dir();
}

/* ---- overload, close, errors ---- */

static void test_drops(void **state)
{
    struct accesslog *al = open_log("d.json", NULL, 4, 0, 0);
    struct access_record r = sample();
    struct accesslog_stats st;
    char path[512], **lines;
    int ok = 0, refused = 0;
    size_t n;

    (void)state;
    accesslog_hold(al, 1);
    for (int i = 0; i < 10; i++) {
        if (accesslog_submit(al, &r) == 0)
            ok++;
        else
            refused++;
    }
    assert_int_equal(ok, 4);
    assert_int_equal(refused, 6);
    accesslog_stats(al, &st);
    assert_int_equal(st.dropped, 6);
    assert_int_equal(st.written, 0);
    /* Close releases the writer and drains what was queued. */
    accesslog_close(al);
    path_in(path, sizeof(path), "d.json");
    n = read_lines(path, &lines);
    assert_int_equal(n, 4);
    free_lines(lines, n);
    clean_dir();
}

struct producer {
    struct accesslog *al;
    int id;
    int refused;
};

#define PER_PRODUCER 100000

static void *produce(void *arg)
{
    struct producer *p = arg;
    struct access_record r = sample();
    char url[64];

    for (int i = 0; i < PER_PRODUCER; i++) {
        snprintf(url, sizeof(url), "http://p%d.example/%d", p->id, i);
        r.url = url;
        if (accesslog_submit(p->al, &r) != 0)
            p->refused++;
    }
    return NULL;
}

static void test_two_producers(void **state)
{
    struct accesslog *al = open_log("p.json", "p.squid", 2 * PER_PRODUCER, 0, 0);
    struct producer prod[2] = {{al, 0, 0}, {al, 1, 0}};
    pthread_t t[2];
    struct accesslog_stats st;
    char path[512], **lines;
    int next[2] = {0, 0};
    size_t n;

    (void)state;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, produce, &prod[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(prod[0].refused + prod[1].refused, 0);
    accesslog_stats(al, &st);
    assert_int_equal(st.dropped, 0);
    accesslog_close(al); /* drains */
    /* Each producer's records are all there, once each, in the order it sent them. */
    path_in(path, sizeof(path), "p.json");
    n = read_lines(path, &lines);
    assert_int_equal(n, 2 * PER_PRODUCER);
    for (size_t i = 0; i < n; i++) {
        const char *u = strstr(lines[i], "\"url\":\"http://p");
        int id = -1, seq = -1;

        if (!u || sscanf(u, "\"url\":\"http://p%d.example/%d\"", &id, &seq) != 2 || id < 0 ||
            id > 1)
            fail_msg("line %zu: %s", i, lines[i]);
        if (seq != next[id])
            fail_msg("producer %d: record %d where %d was due", id, seq, next[id]);
        next[id]++;
    }
    free_lines(lines, n);
    path_in(path, sizeof(path), "p.squid");
    n = read_lines(path, &lines);
    assert_int_equal(n, 2 * PER_PRODUCER);
    free_lines(lines, n);
    clean_dir();
}

/* A full disk: writes fail, are counted, and nothing else goes wrong. */
static void test_write_errors(void **state)
{
    struct accesslog_config cfg = {.json_path = "/dev/full"};
    struct access_record r = sample();
    struct accesslog_stats st;
    struct accesslog *al;
    char err[256];

    (void)state;
    al = accesslog_open(&cfg, err, sizeof(err));
    if (!al) {
        print_message("skipped: /dev/full: %s\n", err);
        return;
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(accesslog_submit(al, &r), 0);
    wait_written(al, 3);
    accesslog_hold(al, 1); /* the writer has flushed (and failed) */
    accesslog_stats(al, &st);
    assert_int_equal(st.written, 3);
    assert_true(st.write_errors >= 1);
    accesslog_hold(al, 0);
    assert_int_equal(accesslog_submit(al, &r), 0);
    accesslog_close(al);
}

static void test_open_errors(void **state)
{
    struct access_record r = sample();
    struct accesslog_config cfg = {0};
    struct accesslog *al;
    char err[512], path[512];

    (void)state;
    snprintf(path, sizeof(path), "%s/no/such/dir/access.log", tmpdir);
    cfg.json_path = path;
    assert_null(accesslog_open(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "no/such/dir/access.log"));
    assert_non_null(strstr(err, "No such file"));

    path_in(path, sizeof(path), "x.json");
    cfg.json_path = path;
    cfg.max_size = 1000;
    assert_null(accesslog_open(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "keep"));
    cfg.max_size = 0;
    cfg.keep = -1;
    assert_null(accesslog_open(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "keep"));
    cfg.keep = 0;
    cfg.squid_path = path;
    assert_null(accesslog_open(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "different files"));

    /* No files: a log that takes records and writes nothing. */
    cfg.json_path = NULL;
    cfg.squid_path = "";
    al = accesslog_open(&cfg, err, sizeof(err));
    assert_non_null(al);
    assert_int_equal(accesslog_submit(al, &r), 0);
    accesslog_reopen(al);
    accesslog_close(al);
    assert_int_equal(accesslog_submit(NULL, &r), 0);
    accesslog_close(NULL);
    clean_dir();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_basic),
        cmocka_unit_test(test_queue_ring),
        cmocka_unit_test(test_queue_batched_wake),
        cmocka_unit_test(test_queue_batch),
        cmocka_unit_test(test_json_fields),
        cmocka_unit_test(test_json_hostile),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_squid_lines),
        cmocka_unit_test(test_rotate_by_size),
        cmocka_unit_test(test_reopen),
        cmocka_unit_test(test_drops),
        cmocka_unit_test(test_two_producers),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
