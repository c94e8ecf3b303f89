/* Unit tests: the store's SQLite back-end: migrations, users, sessions, transactions, and the
 * safeguarding records (events, roll-ups, alerts, deliveries, purge, SAR). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <jansson.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "store/store.h"

#define T0 1796000000 /* a fixed instant for the fake clock */

static char db_path[64];

static int setup(void **state)
{
    int fd;

    (void)state;
    snprintf(db_path, sizeof(db_path), "/tmp/haven-test-store-XXXXXX");
    fd = mkstemp(db_path);
    assert_true(fd >= 0);
    close(fd);
    unlink(db_path); /* the store creates it */
    clock_set_fake(T0);
    return 0;
}

static int teardown(void **state)
{
    char p[96];

    (void)state;
    unlink(db_path);
    snprintf(p, sizeof(p), "%s-wal", db_path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", db_path);
    unlink(p);
    clock_clear_fake();
    return 0;
}

static struct store *open_migrated(void)
{
    char err[512];
    struct store *st = store_open(db_path, err, sizeof(err));

    if (!st)
        fail_msg("open: %s", err);
    if (store_migrate(st, err, sizeof(err)) < 0)
        fail_msg("migrate: %s", err);
    return st;
}

static void put(struct store *st, const char *user, const char *group, const char *display,
                enum store_put expect)
{
    struct store_user u = {.username = user, .group_name = group, .display_name = display};
    char err[512];
    enum store_put got = store_user_put(st, &u, err, sizeof(err));

    if (got == STORE_PUT_ERROR)
        fail_msg("put %s: %s", user, err);
    assert_int_equal(got, expect);
}

static void test_migrate_from_empty(void **state)
{
    char err[512];
    struct store *st;
    int v = -1;

    (void)state;
    st = store_open(db_path, err, sizeof(err));
    assert_non_null(st);
    assert_string_equal(store_backend_name(st), "sqlite");
    assert_int_equal(store_schema_version(st, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 0);
    assert_int_equal(store_migrate(st, err, sizeof(err)), 0);
    assert_int_equal(store_schema_version(st, &v, err, sizeof(err)), 0);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    /* Migrating again is a no-op. */
    assert_int_equal(store_migrate(st, err, sizeof(err)), 0);
    put(st, "alice", "staff", "Alice Example", STORE_PUT_ADDED);
    store_close(st);

    /* Re-open: the schema and the data are still there. */
    st = open_migrated();
    assert_int_equal(store_schema_version(st, &v, err, sizeof(err)), 0);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    put(st, "alice", "staff", "Alice Example", STORE_PUT_UNCHANGED);
    store_close(st);
}

static void test_wal_mode(void **state)
{
    struct store *st;
    sqlite3 *db;
    sqlite3_stmt *stmt;

    (void)state;
    st = open_migrated();
    store_close(st);
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void test_refuse_newer(void **state)
{
    char err[512];
    struct store *st;
    sqlite3 *db;

    (void)state;
    st = open_migrated();
    store_close(st);
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    st = store_open(db_path, err, sizeof(err));
    assert_non_null(st);
    assert_int_equal(store_migrate(st, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "schema version 99"));
    assert_non_null(strstr(err, "newer"));
    assert_non_null(strstr(err, db_path));
    store_close(st);
}

static void test_not_a_database(void **state)
{
    char err[512];
    struct store *st;
    FILE *f;

    (void)state;
    f = fopen(db_path, "w");
    assert_non_null(f);
    fputs("username,group\nthis is a CSV file, not a database\n", f);
    fclose(f);
    st = store_open(db_path, err, sizeof(err));
    if (st) {
        assert_int_equal(store_migrate(st, err, sizeof(err)), -1);
        store_close(st);
    }
    assert_non_null(strstr(err, "not a database"));
}

static void test_open_missing_dir(void **state)
{
    char err[512];

    (void)state;
    assert_null(store_open("/nonexistent-haven-dir/users.sqlite", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent-haven-dir/users.sqlite"));
}

struct collected {
    char names[8][32];
    int n;
};

static int collect_user(void *arg, const struct store_user *u)
{
    struct collected *c = arg;

    snprintf(c->names[c->n++], sizeof(c->names[0]), "%s", u->username);
    return 0;
}

static int collect_session(void *arg, const struct store_session *s)
{
    struct collected *c = arg;

    snprintf(c->names[c->n++], sizeof(c->names[0]), "%s=%s", s->ip, s->username);
    return 0;
}

static int stop_at_first(void *arg, const struct store_user *u)
{
    (void)arg;
    (void)u;
    return 7;
}

static void test_user_crud(void **state)
{
    struct store *st = open_migrated();
    struct store_user u, p = {0};
    struct collected c = {0};
    char err[512];

    (void)state;
    put(st, "bob", "secondary", NULL, STORE_PUT_ADDED);
    put(st, "alice", "staff", "Alice Example", STORE_PUT_ADDED);
    put(st, "alice", "staff", "Alice Example", STORE_PUT_UNCHANGED);
    /* NULL display name keeps the one stored. */
    put(st, "alice", "staff", NULL, STORE_PUT_UNCHANGED);

    assert_int_equal(store_user_get(st, "alice", &u, err, sizeof(err)), 1);
    assert_string_equal(u.username, "alice");
    assert_string_equal(u.group_name, "staff");
    assert_string_equal(u.display_name, "Alice Example");
    assert_null(u.password_hash);
    assert_int_equal(u.created, T0);
    assert_int_equal(u.updated, T0);
    store_user_cleanup(&u);

    /* An update moves "updated", not "created". */
    clock_set_fake(T0 + 60);
    put(st, "alice", "sixth-form", NULL, STORE_PUT_UPDATED);
    assert_int_equal(store_user_get(st, "alice", &u, err, sizeof(err)), 1);
    assert_string_equal(u.group_name, "sixth-form");
    assert_string_equal(u.display_name, "Alice Example");
    assert_int_equal(u.created, T0);
    assert_int_equal(u.updated, T0 + 60);
    store_user_cleanup(&u);

    /* Usernames match without regard to ASCII case. */
    assert_int_equal(store_user_get(st, "ALICE", &u, err, sizeof(err)), 1);
    store_user_cleanup(&u);
    assert_int_equal(store_user_get(st, "nobody", &u, err, sizeof(err)), 0);
    assert_null(u.username);

    /* Passwords: set, kept by a put without one, removed. */
    assert_int_equal(store_set_password(st, "bob", "$argon2id$fake", err, sizeof(err)), 1);
    assert_int_equal(store_set_password(st, "nobody", "$argon2id$fake", err, sizeof(err)), 0);
    put(st, "bob", "secondary", "Bob", STORE_PUT_UPDATED);
    assert_int_equal(store_user_get(st, "bob", &u, err, sizeof(err)), 1);
    assert_string_equal(u.password_hash, "$argon2id$fake");
    store_user_cleanup(&u);
    p.username = "bob";
    p.group_name = "secondary";
    p.password_hash = "$argon2id$other";
    assert_int_equal(store_user_put(st, &p, err, sizeof(err)), STORE_PUT_UPDATED);
    assert_int_equal(store_set_password(st, "bob", NULL, err, sizeof(err)), 1);
    assert_int_equal(store_user_get(st, "bob", &u, err, sizeof(err)), 1);
    assert_null(u.password_hash);
    store_user_cleanup(&u);

    /* A put needs a username and a group. */
    p.group_name = NULL;
    assert_int_equal(store_user_put(st, &p, err, sizeof(err)), STORE_PUT_ERROR);

    /* List in username order; a callback can stop the walk. */
    put(st, "carol", "primary", NULL, STORE_PUT_ADDED);
    assert_int_equal(store_user_list(st, collect_user, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.names[0], "alice");
    assert_string_equal(c.names[1], "bob");
    assert_string_equal(c.names[2], "carol");
    assert_int_equal(store_user_list(st, stop_at_first, NULL, err, sizeof(err)), 7);

    assert_int_equal(store_user_delete(st, "bob", err, sizeof(err)), 1);
    assert_int_equal(store_user_delete(st, "bob", err, sizeof(err)), 0);
    assert_int_equal(store_user_get(st, "bob", &u, err, sizeof(err)), 0);
    store_close(st);
}

static void session(struct store *st, const char *ip, const char *user, int64_t expires)
{
    struct store_session s = {.ip = ip, .username = user, .expires = expires};
    char err[512];

    if (store_session_put(st, &s, err, sizeof(err)) < 0)
        fail_msg("session %s: %s", ip, err);
}

static void test_session_crud(void **state)
{
    struct store *st = open_migrated();
    struct store_session s = {.ip = "127.0.0.1", .username = "nobody", .expires = T0 + 10};
    struct collected c = {0};
    char err[512];

    (void)state;
    put(st, "alice", "staff", NULL, STORE_PUT_ADDED);
    put(st, "bob", "secondary", NULL, STORE_PUT_ADDED);

    /* A session needs a user. */
    assert_int_equal(store_session_put(st, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no user 'nobody'"));

    session(st, "127.0.0.1", "alice", T0 + 3600);
    session(st, "::1", "bob", T0 + 60);
    /* An address belongs to one person at a time: the second put replaces the first. */
    session(st, "127.0.0.1", "bob", T0 + 7200);
    assert_int_equal(store_session_list(st, collect_session, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.names[0], "127.0.0.1=bob");
    assert_string_equal(c.names[1], "::1=bob");

    assert_int_equal(store_session_delete(st, "::1", err, sizeof(err)), 1);
    assert_int_equal(store_session_delete(st, "::1", err, sizeof(err)), 0);

    /* Deleting a user ends its sessions. */
    assert_int_equal(store_user_delete(st, "bob", err, sizeof(err)), 1);
    c.n = 0;
    assert_int_equal(store_session_list(st, collect_session, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 0);
    store_close(st);
}

static void test_session_purge(void **state)
{
    struct store *st = open_migrated();
    struct collected c = {0};
    char err[512];

    (void)state;
    put(st, "alice", "staff", NULL, STORE_PUT_ADDED);
    session(st, "127.0.0.1", "alice", T0 + 60);
    session(st, "127.0.0.2", "alice", T0 + 3600);
    session(st, "::1", "alice", T0 + 120);

    /* Nothing has expired yet. */
    assert_int_equal(store_session_purge_expired(st, clock_now(), err, sizeof(err)), 0);
    /* Time passes: a session whose expiry has come is gone. */
    clock_set_fake(T0 + 120);
    assert_int_equal(store_session_purge_expired(st, clock_now(), err, sizeof(err)), 2);
    assert_int_equal(store_session_list(st, collect_session, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.names[0], "127.0.0.2=alice");
    store_close(st);
}

static void test_transactions(void **state)
{
    struct store *st = open_migrated();
    struct store_user u;
    char err[512];

    (void)state;
    /* Rolled back: nothing written, even by puts that use a savepoint inside. */
    assert_int_equal(store_begin(st, err, sizeof(err)), 0);
    assert_int_equal(store_begin(st, err, sizeof(err)), -1);
    put(st, "alice", "staff", NULL, STORE_PUT_ADDED);
    put(st, "alice", "primary", NULL, STORE_PUT_UPDATED);
    store_rollback(st);
    assert_int_equal(store_user_get(st, "alice", &u, err, sizeof(err)), 0);

    /* Committed: written. */
    assert_int_equal(store_begin(st, err, sizeof(err)), 0);
    put(st, "alice", "staff", NULL, STORE_PUT_ADDED);
    assert_int_equal(store_commit(st, err, sizeof(err)), 0);
    assert_int_equal(store_commit(st, err, sizeof(err)), -1);
    assert_int_equal(store_user_get(st, "alice", &u, err, sizeof(err)), 1);
    store_user_cleanup(&u);

    /* Migrating inside a transaction is refused. */
    assert_int_equal(store_begin(st, err, sizeof(err)), 0);
    assert_int_equal(store_migrate(st, err, sizeof(err)), -1);
    store_rollback(st);
    store_close(st);
}

/* ---------------------------------------------------------------- safeguarding records */

#define MS0 ((int64_t)T0 * 1000)

/* The users schema as version 1 wrote it (kept here: migrations never change). */
static void make_version1(void)
{
    sqlite3 *db;

    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL;"
                     "CREATE TABLE users (username TEXT PRIMARY KEY NOT NULL COLLATE NOCASE, "
                     "display_name TEXT, group_name TEXT NOT NULL, password_hash TEXT, "
                     "created INTEGER NOT NULL, updated INTEGER NOT NULL);"
                     "CREATE TABLE sessions (ip TEXT PRIMARY KEY NOT NULL, username TEXT NOT "
                     "NULL COLLATE NOCASE REFERENCES users(username) ON DELETE CASCADE ON UPDATE "
                     "CASCADE, created INTEGER NOT NULL, expires INTEGER NOT NULL);"
                     "CREATE INDEX sessions_username ON sessions(username);"
                     "CREATE INDEX sessions_expires ON sessions(expires);"
                     "INSERT INTO users VALUES ('alice', 'Alice', 'staff', NULL, 1, 2);"
                     "INSERT INTO sessions VALUES ('127.0.0.1', 'alice', 1, 4000000000);"
                     "PRAGMA user_version = 1;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
}

static void test_migrate_from_version1(void **state)
{
    struct store *st;
    struct store_user u;
    struct collected c = {0};
    char err[512];
    int v;

    (void)state;
    make_version1();
    st = open_migrated();
    assert_int_equal(store_schema_version(st, &v, err, sizeof(err)), 0);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    assert_int_equal(store_user_get(st, "alice", &u, err, sizeof(err)), 1);
    assert_string_equal(u.display_name, "Alice");
    assert_int_equal(u.created, 1);
    store_user_cleanup(&u);
    assert_int_equal(store_session_list(st, collect_session, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 1);
    /* The new tables are there. */
    struct store_event e = {.time_ms = MS0, .kind = "block", .username = "alice"};
    assert_int_equal(store_event_add(st, &e, err, sizeof(err)), 0);
    store_close(st);
}

static void add_event(struct store *st, int64_t t, const char *kind, const char *user,
                      const char *category, const char *theme)
{
    struct store_event e = {.time_ms = t,
                            .kind = kind,
                            .username = user,
                            .group_name = "secondary",
                            .ip = "127.0.0.1",
                            .url = "http://example.test/",
                            .host = "example.test",
                            .category = category,
                            .theme = theme,
                            .severity = theme ? 3 : 0};
    char err[512];

    if (store_event_add(st, &e, err, sizeof(err)) < 0)
        fail_msg("event: %s", err);
}

struct events_seen {
    char what[16][64];
    int n;
};

static int collect_event(void *arg, const struct store_event *e)
{
    struct events_seen *c = arg;

    if (c->n < 16)
        snprintf(c->what[c->n], sizeof(c->what[0]), "%s/%s/%lld", e->kind,
                 e->username ? e->username : "-", (long long)(e->time_ms - MS0));
    c->n++;
    return 0;
}

static void test_events(void **state)
{
    struct store *st = open_migrated();
    struct store_event_query q = {0};
    struct events_seen c = {0};
    struct store_event bad = {.time_ms = MS0, .kind = "frobnicate"};
    char err[512];

    (void)state;
    add_event(st, MS0 + 2000, "block", "bob", "pornography", NULL);
    add_event(st, MS0 + 1000, "search", "alice", NULL, NULL);
    add_event(st, MS0 + 3000, "match", "Alice", NULL, "self-harm");
    add_event(st, MS0 + 4000, "warn", NULL, "gambling", NULL);

    assert_int_equal(store_event_add(st, &bad, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown kind 'frobnicate'"));
    bad.kind = "block";
    bad.severity = 6;
    assert_int_equal(store_event_add(st, &bad, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "severity 6"));

    /* All, oldest first. */
    assert_int_equal(store_event_list(st, &q, collect_event, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.what[0], "search/alice/1000");
    assert_string_equal(c.what[1], "block/bob/2000");
    assert_string_equal(c.what[3], "warn/-/4000");

    /* By user, without regard to case. */
    c.n = 0;
    q.username = "ALICE";
    assert_int_equal(store_event_list(st, &q, collect_event, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.what[1], "match/Alice/3000");

    /* Time window: since inclusive, until exclusive; kind; limit. */
    c.n = 0;
    q.username = NULL;
    q.since_ms = MS0 + 2000;
    q.until_ms = MS0 + 4000;
    assert_int_equal(store_event_list(st, &q, collect_event, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 2);
    c.n = 0;
    q.kind = "match";
    assert_int_equal(store_event_list(st, &q, collect_event, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.what[0], "match/Alice/3000");
    c.n = 0;
    memset(&q, 0, sizeof(q));
    q.limit = 1;
    assert_int_equal(store_event_list(st, &q, collect_event, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.what[0], "search/alice/1000");

    /* Deleting a user keeps the user's events. */
    put(st, "alice", "secondary", NULL, STORE_PUT_ADDED);
    assert_int_equal(store_user_delete(st, "alice", err, sizeof(err)), 1);
    c.n = 0;
    q.limit = 0;
    q.username = "alice";
    assert_int_equal(store_event_list(st, &q, collect_event, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 2);
    store_close(st);
}

struct rollups_seen {
    char what[8][96];
    int n;
};

static int collect_rollup(void *arg, const struct store_rollup *r)
{
    struct rollups_seen *c = arg;

    if (c->n < 8)
        snprintf(c->what[c->n], sizeof(c->what[0]), "%lld %s %s %s %lld %lld",
                 (long long)(r->hour - T0 / 3600 * 3600), r->username, r->host, r->category,
                 (long long)r->requests, (long long)r->bytes);
    c->n++;
    return 0;
}

static void test_rollups(void **state)
{
    struct store *st = open_migrated();
    int64_t h = (int64_t)T0 / 3600 * 3600;
    struct store_rollup r = {.hour = h,
                             .username = "bob",
                             .group_name = "secondary",
                             .host = "example.test",
                             .category = "news",
                             .requests = 2,
                             .bytes = 100};
    struct store_rollup_query q = {0};
    struct rollups_seen c = {0};
    char err[512];

    (void)state;
    assert_int_equal(store_rollup_add(st, &r, err, sizeof(err)), 0);
    assert_int_equal(store_rollup_add(st, &r, err, sizeof(err)), 0); /* adds up */
    r.username = NULL;
    r.category = NULL;
    assert_int_equal(store_rollup_add(st, &r, err, sizeof(err)), 0);
    r.username = "bob";
    r.category = "news";
    r.hour = h + 7200;
    assert_int_equal(store_rollup_add(st, &r, err, sizeof(err)), 0);
    r.hour = h + 10;
    assert_int_equal(store_rollup_add(st, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "multiple of 3600"));

    assert_int_equal(store_rollup_list(st, &q, collect_rollup, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.what[0], "0  example.test  2 100"); /* NULL stored as "" */
    assert_string_equal(c.what[1], "0 bob example.test news 4 200");
    assert_string_equal(c.what[2], "7200 bob example.test news 2 100");

    /* A window overlapping the first hour only (it ends half-way into it). */
    c.n = 0;
    q.username = "BOB";
    q.since_ms = (h - 1800) * 1000;
    q.until_ms = (h + 1800) * 1000;
    assert_int_equal(store_rollup_list(st, &q, collect_rollup, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.what[0], "0 bob example.test news 4 200");
    /* A window starting in the middle of the third hour still sees it. */
    c.n = 0;
    q.since_ms = (h + 7200 + 1800) * 1000;
    q.until_ms = 0;
    assert_int_equal(store_rollup_list(st, &q, collect_rollup, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 1);
    store_close(st);
}

static int64_t add_alert(struct store *st, int64_t t, const char *user, const char *theme,
                         int severity, int suppressed)
{
    struct store_alert a = {.time_ms = t,
                            .username = user,
                            .group_name = "secondary",
                            .ip = "127.0.0.1",
                            .theme = theme,
                            .severity = severity,
                            .lang = "en",
                            .phrase = "hurt myself",
                            .excerpt = "i want to hurt myself tonight",
                            .url = "https://search.test/?q=hurt+myself",
                            .source = "search",
                            .status = "resolved", /* ignored: a new alert is open */
                            .outcome = "ignored",
                            .suppressed = suppressed};
    char err[512];
    int64_t id = store_alert_add(st, &a, err, sizeof(err));

    if (id <= 0)
        fail_msg("alert: %s", err);
    return id;
}

struct alerts_seen {
    int64_t ids[8];
    int n;
};

static int collect_alert(void *arg, const struct store_alert *a)
{
    struct alerts_seen *c = arg;

    if (c->n < 8)
        c->ids[c->n] = a->id;
    c->n++;
    return 0;
}

static void test_alerts(void **state)
{
    struct store *st = open_migrated();
    struct store_alert a, bad = {.time_ms = MS0, .theme = "self-harm", .severity = 0};
    struct store_alert_query q = {0};
    struct alerts_seen c = {0};
    int64_t id1, id2, id3;
    char err[512];
    int maxsev;

    (void)state;
    id1 = add_alert(st, MS0, "alice", "self-harm", 3, 0);
    id2 = add_alert(st, MS0 + 60000, "alice", "self-harm", 2, 1);
    id3 = add_alert(st, MS0 + 120000, "bob", "bullying", 4, 0);
    assert_true(id1 > 0 && id2 > id1 && id3 > id2);

    assert_int_equal(store_alert_add(st, &bad, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "severity 0"));
    bad.severity = 2;
    bad.theme = NULL;
    assert_int_equal(store_alert_add(st, &bad, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "theme"));
    bad.theme = "bullying";
    bad.source = "email";
    assert_int_equal(store_alert_add(st, &bad, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'email'"));

    assert_int_equal(store_alert_get(st, id2, &a, err, sizeof(err)), 1);
    assert_int_equal(a.id, id2);
    assert_int_equal(a.time_ms, MS0 + 60000);
    assert_string_equal(a.username, "alice");
    assert_string_equal(a.theme, "self-harm");
    assert_string_equal(a.status, "open");
    assert_null(a.outcome);
    assert_null(a.device);
    assert_int_equal(a.suppressed, 1);
    assert_string_equal(a.excerpt, "i want to hurt myself tonight");
    store_alert_cleanup(&a);
    assert_int_equal(store_alert_get(st, 9999, &a, err, sizeof(err)), 0);
    assert_null(a.theme);

    /* Newest first; filters. */
    assert_int_equal(store_alert_list(st, &q, collect_alert, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 3);
    assert_true(c.ids[0] == id3 && c.ids[1] == id2 && c.ids[2] == id1);
    c.n = 0;
    q.username = "Alice";
    q.limit = 1;
    assert_int_equal(store_alert_list(st, &q, collect_alert, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 1);
    assert_true(c.ids[0] == id2);

    /* De-duplication's question. */
    assert_int_equal(store_alert_recent(st, "alice", "self-harm", MS0, &maxsev, err, sizeof(err)),
                     2);
    assert_int_equal(maxsev, 3);
    assert_int_equal(
        store_alert_recent(st, "ALICE", "self-harm", MS0 + 1, &maxsev, err, sizeof(err)), 1);
    assert_int_equal(maxsev, 2);
    assert_int_equal(store_alert_recent(st, "alice", "bullying", 0, &maxsev, err, sizeof(err)), 0);
    assert_int_equal(maxsev, 0);

    /* Resolve: open_only drops it; resolving again updates the outcome. */
    clock_set_fake(T0 + 3600);
    assert_int_equal(store_alert_resolve(st, id1, "spoke to pupil", 0, "dsl", err, sizeof(err)), 1);
    assert_int_equal(store_alert_resolve(st, 9999, "x", 0, NULL, err, sizeof(err)), 0);
    assert_int_equal(store_alert_resolve(st, id1, NULL, 0, NULL, err, sizeof(err)), -1);
    assert_int_equal(store_alert_get(st, id1, &a, err, sizeof(err)), 1);
    assert_string_equal(a.status, "resolved");
    assert_string_equal(a.outcome, "spoke to pupil");
    assert_string_equal(a.resolved_by, "dsl");
    assert_int_equal(a.resolved_ms, (int64_t)(T0 + 3600) * 1000);
    assert_int_equal(a.false_positive, 0);
    store_alert_cleanup(&a);
    assert_int_equal(store_alert_resolve(st, id1, "song lyrics", 1, "deputy", err, sizeof(err)), 1);
    assert_int_equal(store_alert_get(st, id1, &a, err, sizeof(err)), 1);
    assert_string_equal(a.outcome, "song lyrics");
    assert_int_equal(a.false_positive, 1);
    store_alert_cleanup(&a);
    c.n = 0;
    memset(&q, 0, sizeof(q));
    q.open_only = 1;
    assert_int_equal(store_alert_list(st, &q, collect_alert, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 2);

    /* Alerts outlive the account. */
    put(st, "bob", "secondary", NULL, STORE_PUT_ADDED);
    assert_int_equal(store_user_delete(st, "bob", err, sizeof(err)), 1);
    assert_int_equal(store_alert_get(st, id3, &a, err, sizeof(err)), 1);
    store_alert_cleanup(&a);
    store_close(st);
}

struct deliveries_seen {
    char what[8][96];
    int n;
    struct store *st; /* set: rewrite each one as sent while walking */
};

static int collect_delivery(void *arg, const struct store_delivery *d)
{
    struct deliveries_seen *c = arg;
    char err[512];

    if (c->n < 8)
        snprintf(c->what[c->n], sizeof(c->what[0]), "%lld %s %s %s %d %s", (long long)d->alert_id,
                 d->channel, d->target, d->status, d->attempts,
                 d->last_error ? d->last_error : "-");
    c->n++;
    if (c->st) {
        struct store_delivery sent = *d;
        sent.status = "sent";
        if (store_delivery_put(c->st, &sent, err, sizeof(err)) < 0)
            fail_msg("put in walk: %s", err);
    }
    return 0;
}

static void test_deliveries(void **state)
{
    struct store *st = open_migrated();
    int64_t id = add_alert(st, MS0, "alice", "self-harm", 4, 0);
    struct store_delivery d = {.alert_id = id,
                               .channel = "email",
                               .target = "dsl@school.test",
                               .status = "pending",
                               .next_ms = MS0 + 5000};
    struct deliveries_seen c = {0};
    char err[512];

    (void)state;
    assert_int_equal(store_delivery_put(st, &d, err, sizeof(err)), 0);
    d.channel = "webhook";
    d.target = "http://127.0.0.1:9/hook";
    d.next_ms = MS0;
    assert_int_equal(store_delivery_put(st, &d, err, sizeof(err)), 0);
    d.channel = "syslog";
    d.target = "";
    d.status = "sent";
    assert_int_equal(store_delivery_put(st, &d, err, sizeof(err)), 0);

    /* Refused: unknown channel, status, alert. */
    d.channel = "pigeon";
    assert_int_equal(store_delivery_put(st, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'pigeon'"));
    d.channel = "email";
    d.status = "lost";
    assert_int_equal(store_delivery_put(st, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'lost'"));
    d.status = "pending";
    d.alert_id = 9999;
    assert_int_equal(store_delivery_put(st, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no alert 9999"));

    /* Due at MS0: the webhook only; at MS0 + 5 s both pending ones, oldest first. */
    assert_int_equal(store_delivery_due(st, MS0, collect_delivery, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 1);
    c.n = 0;
    assert_int_equal(store_delivery_due(st, MS0 + 5000, collect_delivery, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 2);
    assert_non_null(strstr(c.what[0], "webhook"));
    assert_non_null(strstr(c.what[1], "email"));

    /* A failed attempt replaces the row. */
    d.alert_id = id;
    d.channel = "email";
    d.target = "dsl@school.test";
    d.attempts = 1;
    d.last_error = "connection refused";
    d.next_ms = MS0 + 60000;
    clock_set_fake(T0 + 10);
    assert_int_equal(store_delivery_put(st, &d, err, sizeof(err)), 0);
    c.n = 0;
    assert_int_equal(store_delivery_list(st, id, collect_delivery, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.what[0], "1 email dsl@school.test pending 1 connection refused");
    assert_string_equal(c.what[1], "1 syslog  sent 0 -");

    /* The walk may write: everything due is marked sent, then nothing is due. */
    c.n = 0;
    c.st = st;
    assert_int_equal(store_delivery_due(st, MS0 + 60000, collect_delivery, &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.n, 2);
    c.n = 0;
    assert_int_equal(store_delivery_due(st, MS0 + 60000, collect_delivery, &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.n, 0);
    store_close(st);
}

static int count_events(struct store *st)
{
    struct store_event_query q = {0};
    struct events_seen c = {0};
    char err[512];

    assert_int_equal(store_event_list(st, &q, collect_event, &c, err, sizeof(err)), 0);
    return c.n;
}

static void test_purge(void **state)
{
    struct store *st = open_migrated();
    const int64_t day = 86400000;
    struct store_retention r = {
        .events_ms = 30 * day, .rollups_ms = 10 * day, .alerts_ms = 100 * day};
    struct store_rollup ru = {.hour = T0 / 3600 * 3600 - 20 * 86400,
                              .username = "bob",
                              .host = "a.test",
                              .category = "news",
                              .requests = 1};
    struct store_delivery d = {.channel = "email", .target = "dsl@school.test", .status = "sent"};
    struct store_purged p;
    int64_t old_alert;
    char err[512];

    (void)state;
    put(st, "bob", "secondary", NULL, STORE_PUT_ADDED);
    session(st, "127.0.0.1", "bob", T0 - 1);
    session(st, "127.0.0.2", "bob", T0 + 3600);
    add_event(st, MS0 - 31 * day, "block", "bob", "news", NULL);
    add_event(st, MS0 - 29 * day, "block", "bob", "news", NULL);
    assert_int_equal(store_rollup_add(st, &ru, err, sizeof(err)), 0);
    ru.hour += 15 * 86400;
    assert_int_equal(store_rollup_add(st, &ru, err, sizeof(err)), 0);
    old_alert = add_alert(st, MS0 - 101 * day, "bob", "bullying", 3, 0);
    add_alert(st, MS0 - 99 * day, "bob", "bullying", 3, 0);
    d.alert_id = old_alert;
    assert_int_equal(store_delivery_put(st, &d, err, sizeof(err)), 0);
    d.channel = "webhook";
    assert_int_equal(store_delivery_put(st, &d, err, sizeof(err)), 0);

    /* A dry run counts and deletes nothing. */
    assert_int_equal(store_purge_dry(st, &r, MS0, &p, err, sizeof(err)), 0);
    assert_int_equal(p.events, 1);
    assert_int_equal(p.rollups, 1);
    assert_int_equal(p.alerts, 1);
    assert_int_equal(p.deliveries, 2);
    assert_int_equal(p.sessions, 1);
    assert_int_equal(count_events(st), 2);

    assert_int_equal(store_purge(st, &r, MS0, &p, err, sizeof(err)), 0);
    assert_int_equal(p.events, 1);
    assert_int_equal(p.rollups, 1);
    assert_int_equal(p.alerts, 1);
    assert_int_equal(p.deliveries, 2);
    assert_int_equal(p.sessions, 1);
    assert_int_equal(count_events(st), 1);
    struct store_alert a;
    assert_int_equal(store_alert_get(st, old_alert, &a, err, sizeof(err)), 0);

    /* Again: nothing left to delete. Retention 0 keeps a class for ever. */
    r.events_ms = 0;
    assert_int_equal(store_purge(st, &r, MS0 + 365 * day, &p, err, sizeof(err)), 0);
    assert_int_equal(p.events, 0);
    assert_int_equal(p.rollups, 1);
    assert_int_equal(p.alerts, 1);
    assert_int_equal(count_events(st), 1);

    /* Inside a transaction it is part of it. */
    add_event(st, MS0 - 400 * day, "block", "bob", "news", NULL);
    r.events_ms = day;
    assert_int_equal(store_begin(st, err, sizeof(err)), 0);
    assert_int_equal(store_purge(st, &r, MS0, &p, err, sizeof(err)), 0);
    assert_int_equal(p.events, 2);
    store_rollback(st);
    assert_int_equal(count_events(st), 2);
    store_close(st);
}

struct tally_seen {
    char what[8][64];
    int n;
};

static int collect_tally(void *arg, const char *key, int64_t count)
{
    struct tally_seen *c = arg;

    if (c->n < 8)
        snprintf(c->what[c->n], sizeof(c->what[0]), "%s=%lld", key, (long long)count);
    c->n++;
    return 0;
}

static void test_tally(void **state)
{
    struct store *st = open_migrated();
    struct tally_seen c = {0};
    int64_t id;
    char err[512];

    (void)state;
    add_event(st, MS0, "block", "bob", "gambling", NULL);
    add_event(st, MS0 + 1, "block", "amy", "pornography", NULL);
    add_event(st, MS0 + 2, "block", "amy", "pornography", NULL);
    add_event(st, MS0 + 3, "search", "amy", NULL, NULL);
    add_event(st, MS0 + 4, "match", "amy", NULL, "self-harm");
    add_event(st, MS0 + 5000, "block", "amy", "gambling", NULL);
    add_alert(st, MS0, "amy", "self-harm", 3, 0);
    add_alert(st, MS0, "amy", "bullying", 3, 0);
    id = add_alert(st, MS0, "bob", "self-harm", 3, 0);
    assert_int_equal(store_alert_resolve(st, id, "lyrics", 1, NULL, err, sizeof(err)), 1);

    assert_int_equal(store_tally(st, STORE_TALLY_BLOCK_CATEGORY, MS0, MS0 + 5000, 0, collect_tally,
                                 &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.what[0], "pornography=2");
    assert_string_equal(c.what[1], "gambling=1");
    c.n = 0;
    assert_int_equal(
        store_tally(st, STORE_TALLY_BLOCK_CATEGORY, 0, 0, 1, collect_tally, &c, err, sizeof(err)),
        0);
    assert_int_equal(c.n, 1);
    c.n = 0;
    assert_int_equal(
        store_tally(st, STORE_TALLY_SEARCH_THEME, 0, 0, 0, collect_tally, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.what[0], "=1");
    assert_string_equal(c.what[1], "self-harm=1");
    c.n = 0;
    assert_int_equal(
        store_tally(st, STORE_TALLY_ALERT_USER, 0, 0, 0, collect_tally, &c, err, sizeof(err)), 0);
    assert_string_equal(c.what[0], "amy=2");
    assert_string_equal(c.what[1], "bob=1");
    c.n = 0;
    assert_int_equal(
        store_tally(st, STORE_TALLY_ALERT_THEME, 0, 0, 0, collect_tally, &c, err, sizeof(err)), 0);
    assert_string_equal(c.what[0], "self-harm=2");
    c.n = 0;
    assert_int_equal(
        store_tally(st, STORE_TALLY_ALERT_OUTCOME, 0, 0, 0, collect_tally, &c, err, sizeof(err)),
        0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.what[0], "open=2");
    assert_string_equal(c.what[1], "false positive=1");
    store_close(st);
}

/* Run store_sar into a memory buffer and parse it; NULL when it wrote nothing. */
static json_t *sar(struct store *st, const char *user, int expect)
{
    char *buf = NULL, err[512];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    json_error_t je;
    json_t *doc = NULL;
    int rc;

    assert_non_null(f);
    rc = store_sar(st, user, f, err, sizeof(err));
    fclose(f);
    if (rc < 0)
        fail_msg("sar: %s", err);
    assert_int_equal(rc, expect);
    if (rc == 1) {
        doc = json_loadb(buf, len, 0, &je);
        if (!doc)
            fail_msg("sar JSON: %s at line %d: %s", je.text, je.line, buf);
    } else {
        assert_int_equal(len, 0);
    }
    free(buf);
    return doc;
}

static void test_sar(void **state)
{
    struct store *st = open_migrated();
    struct store_rollup ru = {.hour = T0 / 3600 * 3600,
                              .username = "bob",
                              .host = "a.test",
                              .category = "news",
                              .requests = 3,
                              .bytes = 10};
    struct store_delivery d = {.channel = "email", .target = "dsl@school.test", .status = "sent"};
    json_t *doc, *user, *alerts;
    char err[512];

    (void)state;
    sar(st, "bob", 0);
    put(st, "bob", "secondary", "Bob Pupil", STORE_PUT_ADDED);
    assert_int_equal(store_set_password(st, "bob", "$argon2id$secret", err, sizeof(err)), 1);
    session(st, "127.0.0.1", "bob", T0 + 60);
    add_event(st, MS0, "block", "bob", "pornography", NULL);
    add_event(st, MS0, "block", "amy", "pornography", NULL);
    assert_int_equal(store_rollup_add(st, &ru, err, sizeof(err)), 0);
    d.alert_id = add_alert(st, MS0, "bob", "bullying", 3, 0);
    assert_int_equal(store_delivery_put(st, &d, err, sizeof(err)), 0);
    assert_int_equal(
        store_alert_resolve(st, d.alert_id, "talked to parents", 0, "dsl", err, sizeof(err)), 1);

    doc = sar(st, "BOB", 1);
    user = json_object_get(doc, "user");
    assert_string_equal(json_string_value(json_object_get(user, "display_name")), "Bob Pupil");
    assert_true(json_is_true(json_object_get(user, "password_set")));
    assert_null(json_object_get(user, "password_hash"));
    assert_int_equal(json_array_size(json_object_get(doc, "sessions")), 1);
    assert_int_equal(json_array_size(json_object_get(doc, "events")), 1);
    assert_int_equal(json_array_size(json_object_get(doc, "rollups")), 1);
    alerts = json_object_get(doc, "alerts");
    assert_int_equal(json_array_size(alerts), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(alerts, 0), "outcome")),
                        "talked to parents");
    assert_int_equal(json_array_size(json_object_get(json_array_get(alerts, 0), "deliveries")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(doc, "events"), 0), "time")),
                        "2026-11-30T00:53:20.000Z");
    json_decref(doc);

    /* The account goes; the records stay and the SAR still finds them. */
    assert_int_equal(store_user_delete(st, "bob", err, sizeof(err)), 1);
    doc = sar(st, "bob", 1);
    assert_true(json_is_null(json_object_get(doc, "user")));
    assert_int_equal(json_array_size(json_object_get(doc, "sessions")), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "events")), 1);
    assert_int_equal(json_array_size(json_object_get(doc, "alerts")), 1);
    json_decref(doc);
    sar(st, "nobody", 0);
    store_close(st);
}

static int count_one(void *arg, const struct store_event *e)
{
    (void)e;
    (*(int *)arg)++;
    return 0;
}

/* Not a timed assertion: prints the batch insert rate for the record. */
static void test_event_batch_rate(void **state)
{
    struct store *st = open_migrated();
    struct store_event e = {.kind = "block",
                            .username = "pupil",
                            .group_name = "secondary",
                            .ip = "127.0.0.1",
                            .method = "GET",
                            .url = "http://blocked.example.test/some/path?q=1",
                            .host = "blocked.example.test",
                            .category = "pornography",
                            .reason = "category pornography is blocked for secondary",
                            .ref = "ab12cd34"};
    struct store_event_query q = {.kind = "block"};
    struct timespec a, b;
    const int n = 200000;
    char err[512];
    double secs;
    int seen = 0;

    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(store_begin(st, err, sizeof(err)), 0);
    for (int i = 0; i < n; i++) {
        e.time_ms = MS0 + i;
        if (store_event_add(st, &e, err, sizeof(err)) < 0)
            fail_msg("event %d: %s", i, err);
        if (i % 10000 == 9999) {
            assert_int_equal(store_commit(st, err, sizeof(err)), 0);
            assert_int_equal(store_begin(st, err, sizeof(err)), 0);
        }
    }
    assert_int_equal(store_commit(st, err, sizeof(err)), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    print_message("store: %d events in batches of 10000: %.0f events/s\n", n, n / secs);
    assert_int_equal(store_event_list(st, &q, count_one, &seen, err, sizeof(err)), 0);
    assert_int_equal(seen, n);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate_from_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_missing_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_version1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deliveries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tally, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_batch_rate, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
