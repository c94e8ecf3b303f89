/* Unit tests: the store's SQLite back-end: migrations, users, sessions, transactions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <sqlite3.h>
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
