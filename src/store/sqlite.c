/*
 * sqlite.c -- the SQLite back-end of the store (store/store.h).
 *
 * One database file in WAL mode, so readers (the daemon's snapshot rebuilds)
 * never wait for a writer (the CLI). The schema is built by the numbered
 * migrations below; PRAGMA user_version records how many have run. To change
 * the schema, append a migration: never edit one that has shipped.
 *
 * Writes that read before they write (user_put) run inside BEGIN IMMEDIATE
 * when no transaction is open, or a SAVEPOINT inside store_begin/commit, so
 * two processes never interleave between the read and the write.
 */
#include "common/compat.h"

#include <sqlite3.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "store/store.h"

/* How long a write waits for another process's transaction before giving up. */
#define SQLITE_STORE_BUSY_MS 10000

struct sqlite_store {
    const struct store_ops *ops; /* first: see struct store_base */
    sqlite3 *db;
    char *path;
    int in_tx; /* inside store_begin .. store_commit */
};

/* Migration i+1 is sqlite_migrations[i]. Append only. */
static const char *const sqlite_migrations[] = {
    /* 1: users and IP-to-user sessions. */
    "CREATE TABLE users (\n"
    "    username TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,\n"
    "    display_name TEXT,\n"
    "    group_name TEXT NOT NULL,\n"
    "    password_hash TEXT,\n"
    "    created INTEGER NOT NULL,\n"
    "    updated INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE sessions (\n"
    "    ip TEXT PRIMARY KEY NOT NULL,\n"
    "    username TEXT NOT NULL COLLATE NOCASE\n"
    "        REFERENCES users(username) ON DELETE CASCADE ON UPDATE CASCADE,\n"
    "    created INTEGER NOT NULL,\n"
    "    expires INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX sessions_username ON sessions(username);\n"
    "CREATE INDEX sessions_expires ON sessions(expires);\n",
};

_Static_assert(HAVEN_ARRAY_LEN(sqlite_migrations) == STORE_SCHEMA_VERSION,
               "STORE_SCHEMA_VERSION must count the migrations");

static struct sqlite_store *sqlite_of(struct store *st)
{
    return (struct sqlite_store *)(void *)st;
}

/* "PATH: WHAT: sqlite's message"; returns -1. */
static int sqlite_fail(struct sqlite_store *s, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
    return -1;
}

static int sqlite_exec(struct sqlite_store *s, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", s->path, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int sqlite_prepare(struct sqlite_store *s, const char *sql, sqlite3_stmt **stmt, char *err,
                          size_t errlen)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, stmt, NULL) != SQLITE_OK) {
        *stmt = NULL;
        return sqlite_fail(s, err, errlen, "cannot prepare a statement");
    }
    return 0;
}

/* Bind a string or, for NULL, SQL NULL. */
static int sqlite_bind_text(sqlite3_stmt *stmt, int i, const char *text)
{
    if (!text)
        return sqlite3_bind_null(stmt, i);
    return sqlite3_bind_text(stmt, i, text, -1, SQLITE_TRANSIENT);
}

static const char *sqlite_column_text(sqlite3_stmt *stmt, int i)
{
    return (const char *)sqlite3_column_text(stmt, i);
}

/* Start a unit of work that reads and writes: a savepoint inside store_begin, else a
 * write transaction taken at once (so no other writer slips in between). */
static int sqlite_unit_begin(struct sqlite_store *s, char *err, size_t errlen)
{
    return sqlite_exec(s, s->in_tx ? "SAVEPOINT store_unit" : "BEGIN IMMEDIATE", err, errlen);
}

static int sqlite_unit_end(struct sqlite_store *s, int ok, char *err, size_t errlen)
{
    char ignored[8];

    if (ok)
        return sqlite_exec(s, s->in_tx ? "RELEASE store_unit" : "COMMIT", err, errlen);
    sqlite_exec(s, s->in_tx ? "ROLLBACK TO store_unit; RELEASE store_unit" : "ROLLBACK", ignored,
                sizeof(ignored));
    return -1;
}

static void sqlite_close(struct store *st)
{
    struct sqlite_store *s = sqlite_of(st);

    if (!s)
        return;
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

static struct store *sqlite_open(const char *path, char *err, size_t errlen)
{
    struct sqlite_store *s = xcalloc(1, sizeof(*s));
    struct store *result = NULL;

    s->ops = &sqlite_store_ops;
    s->path = xstrdup(path);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        if (!s->db) {
            snprintf(err, errlen, "%s: cannot open: out of memory", path);
            goto out;
        }
        sqlite_fail(s, err, errlen, "cannot open");
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, SQLITE_STORE_BUSY_MS);
    /* journal_mode is the first statement that reads the file: a file that is not a
     * SQLite database fails here, with SQLite's "file is not a database". */
    if (sqlite_exec(s,
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                    "PRAGMA foreign_keys=ON;",
                    err, errlen) < 0)
        goto out;
    result = (struct store *)(void *)s;
    s = NULL;
out:
    sqlite_close((struct store *)(void *)s);
    return result;
}

static int sqlite_schema_version(struct store *st, int *version, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = NULL;
    int rc = -1;

    if (sqlite_prepare(s, "PRAGMA user_version", &stmt, err, errlen) < 0)
        goto out;
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite_fail(s, err, errlen, "cannot read the schema version");
        goto out;
    }
    *version = sqlite3_column_int(stmt, 0);
    rc = 0;
out:
    sqlite3_finalize(stmt);
    return rc;
}

static int sqlite_migrate(struct store *st, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    int version, n = (int)HAVEN_ARRAY_LEN(sqlite_migrations), began = 0, rc = -1;
    char sql[64];

    if (s->in_tx) {
        snprintf(err, errlen, "%s: cannot migrate inside a transaction", s->path);
        goto out;
    }
    if (sqlite_exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
        goto out;
    began = 1;
    if (sqlite_schema_version(st, &version, err, errlen) < 0)
        goto out;
    if (version > n || version < 0) {
        snprintf(err, errlen,
                 "%s: the database has schema version %d, newer than this haven knows (%d): "
                 "use the haven that wrote it, or a newer one",
                 s->path, version, n);
        goto out;
    }
    for (int i = version; i < n; i++) {
        if (sqlite_exec(s, sqlite_migrations[i], err, errlen) < 0)
            goto out;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", i + 1);
        if (sqlite_exec(s, sql, err, errlen) < 0)
            goto out;
    }
    if (sqlite_exec(s, "COMMIT", err, errlen) < 0)
        goto out;
    began = 0;
    rc = 0;
out:
    if (began)
        sqlite_unit_end(s, 0, NULL, 0);
    return rc;
}

static int sqlite_begin(struct store *st, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);

    if (s->in_tx) {
        snprintf(err, errlen, "%s: a transaction is already open", s->path);
        return -1;
    }
    if (sqlite_exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
        return -1;
    s->in_tx = 1;
    return 0;
}

static int sqlite_commit(struct store *st, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);

    if (!s->in_tx) {
        snprintf(err, errlen, "%s: no transaction is open", s->path);
        return -1;
    }
    if (sqlite_exec(s, "COMMIT", err, errlen) < 0)
        return -1;
    s->in_tx = 0;
    return 0;
}

static int sqlite_rollback(struct store *st)
{
    struct sqlite_store *s = sqlite_of(st);
    char ignored[8];

    if (!s->in_tx)
        return 0;
    s->in_tx = 0;
    return sqlite_exec(s, "ROLLBACK", ignored, sizeof(ignored));
}

static int sqlite_same(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static enum store_put sqlite_user_put(struct store *st, const struct store_user *u, char *err,
                                      size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *sel = NULL, *wr = NULL;
    enum store_put rc = STORE_PUT_ERROR, what;
    int64_t now = clock_now();
    int began = 0;

    if (!u->username || !u->group_name) {
        snprintf(err, errlen, "%s: a user needs a username and a group", s->path);
        goto out;
    }
    if (sqlite_unit_begin(s, err, errlen) < 0)
        goto out;
    began = 1;
    if (sqlite_prepare(s,
                       "SELECT group_name, display_name, password_hash FROM users "
                       "WHERE username = ?1",
                       &sel, err, errlen) < 0)
        goto out;
    sqlite_bind_text(sel, 1, u->username);
    switch (sqlite3_step(sel)) {
    case SQLITE_DONE:
        what = STORE_PUT_ADDED;
        if (sqlite_prepare(s,
                           "INSERT INTO users (username, group_name, display_name, "
                           "password_hash, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                           &wr, err, errlen) < 0)
            goto out;
        break;
    case SQLITE_ROW:
        if (sqlite_same(sqlite_column_text(sel, 0), u->group_name) &&
            (!u->display_name || sqlite_same(sqlite_column_text(sel, 1), u->display_name)) &&
            (!u->password_hash || sqlite_same(sqlite_column_text(sel, 2), u->password_hash))) {
            what = STORE_PUT_UNCHANGED;
            break;
        }
        what = STORE_PUT_UPDATED;
        if (sqlite_prepare(s,
                           "UPDATE users SET group_name = ?2, "
                           "display_name = coalesce(?3, display_name), "
                           "password_hash = coalesce(?4, password_hash), updated = ?5 "
                           "WHERE username = ?1",
                           &wr, err, errlen) < 0)
            goto out;
        break;
    default:
        sqlite_fail(s, err, errlen, "cannot read users");
        goto out;
    }
    if (wr) {
        sqlite_bind_text(wr, 1, u->username);
        sqlite_bind_text(wr, 2, u->group_name);
        sqlite_bind_text(wr, 3, u->display_name);
        sqlite_bind_text(wr, 4, u->password_hash);
        sqlite3_bind_int64(wr, 5, now);
        if (sqlite3_step(wr) != SQLITE_DONE) {
            sqlite_fail(s, err, errlen, "cannot write a user");
            goto out;
        }
    }
    if (sqlite_unit_end(s, 1, err, errlen) < 0)
        goto out;
    began = 0;
    rc = what;
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(wr);
    if (began)
        sqlite_unit_end(s, 0, NULL, 0);
    return rc;
}

static char *sqlite_dup_column(sqlite3_stmt *stmt, int i)
{
    const char *t = sqlite_column_text(stmt, i);

    return t ? xstrdup(t) : NULL;
}

static void sqlite_user_row(sqlite3_stmt *stmt, struct store_user *u)
{
    u->username = sqlite_column_text(stmt, 0);
    u->group_name = sqlite_column_text(stmt, 1);
    u->display_name = sqlite_column_text(stmt, 2);
    u->password_hash = sqlite_column_text(stmt, 3);
    u->created = sqlite3_column_int64(stmt, 4);
    u->updated = sqlite3_column_int64(stmt, 5);
}

#define SQLITE_USER_COLUMNS "username, group_name, display_name, password_hash, created, updated"

static int sqlite_user_get(struct store *st, const char *username, struct store_user *out,
                           char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (sqlite_prepare(s, "SELECT " SQLITE_USER_COLUMNS " FROM users WHERE username = ?1", &stmt,
                       err, errlen) < 0)
        goto out;
    sqlite_bind_text(stmt, 1, username);
    switch (sqlite3_step(stmt)) {
    case SQLITE_DONE:
        rc = 0;
        break;
    case SQLITE_ROW:
        out->username = sqlite_dup_column(stmt, 0);
        out->group_name = sqlite_dup_column(stmt, 1);
        out->display_name = sqlite_dup_column(stmt, 2);
        out->password_hash = sqlite_dup_column(stmt, 3);
        out->created = sqlite3_column_int64(stmt, 4);
        out->updated = sqlite3_column_int64(stmt, 5);
        rc = 1;
        break;
    default:
        sqlite_fail(s, err, errlen, "cannot read users");
        break;
    }
out:
    sqlite3_finalize(stmt);
    return rc;
}

/* Run a one-statement change with up to two text parameters; returns rows changed or -1. */
static int sqlite_change(struct sqlite_store *s, const char *sql, const char *a, const char *b,
                         char *err, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1;

    if (sqlite_prepare(s, sql, &stmt, err, errlen) < 0)
        goto out;
    if (sqlite3_bind_parameter_count(stmt) >= 1)
        sqlite_bind_text(stmt, 1, a);
    if (sqlite3_bind_parameter_count(stmt) >= 2)
        sqlite_bind_text(stmt, 2, b);
    if (sqlite3_bind_parameter_count(stmt) >= 3)
        sqlite3_bind_int64(stmt, 3, clock_now());
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        sqlite_fail(s, err, errlen, "cannot write");
        goto out;
    }
    rc = sqlite3_changes(s->db);
out:
    sqlite3_finalize(stmt);
    return rc;
}

static int sqlite_user_delete(struct store *st, const char *username, char *err, size_t errlen)
{
    /* The sessions go with it: ON DELETE CASCADE. */
    return sqlite_change(sqlite_of(st), "DELETE FROM users WHERE username = ?1", username, NULL,
                         err, errlen);
}

static int sqlite_set_password(struct store *st, const char *username, const char *hash, char *err,
                               size_t errlen)
{
    return sqlite_change(sqlite_of(st),
                         "UPDATE users SET password_hash = ?2, updated = ?3 WHERE username = ?1",
                         username, hash, err, errlen);
}

static int sqlite_user_list(struct store *st, store_user_fn fn, void *arg, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = NULL;
    struct store_user u;
    int rc = -1, step;

    if (sqlite_prepare(s, "SELECT " SQLITE_USER_COLUMNS " FROM users ORDER BY username", &stmt, err,
                       errlen) < 0)
        goto out;
    for (;;) {
        step = sqlite3_step(stmt);
        if (step != SQLITE_ROW)
            break;
        sqlite_user_row(stmt, &u);
        rc = fn(arg, &u);
        if (rc != 0)
            goto out;
    }
    if (step != SQLITE_DONE) {
        rc = sqlite_fail(s, err, errlen, "cannot read users");
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(stmt);
    return rc;
}

static int sqlite_session_put(struct store *st, const struct store_session *ss, char *err,
                              size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = NULL;
    int rc = -1, step;

    if (sqlite_prepare(s,
                       "INSERT INTO sessions (ip, username, created, expires) "
                       "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (ip) DO UPDATE SET "
                       "username = excluded.username, created = excluded.created, "
                       "expires = excluded.expires",
                       &stmt, err, errlen) < 0)
        goto out;
    sqlite_bind_text(stmt, 1, ss->ip);
    sqlite_bind_text(stmt, 2, ss->username);
    sqlite3_bind_int64(stmt, 3, clock_now());
    sqlite3_bind_int64(stmt, 4, ss->expires);
    step = sqlite3_step(stmt);
    if (step == SQLITE_CONSTRAINT_FOREIGNKEY) {
        snprintf(err, errlen, "%s: no user '%s'", s->path, ss->username);
        goto out;
    }
    if (step != SQLITE_DONE) {
        sqlite_fail(s, err, errlen, "cannot write a session");
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(stmt);
    return rc;
}

static int sqlite_session_delete(struct store *st, const char *ip, char *err, size_t errlen)
{
    return sqlite_change(sqlite_of(st), "DELETE FROM sessions WHERE ip = ?1", ip, NULL, err,
                         errlen);
}

static int sqlite_session_list(struct store *st, store_session_fn fn, void *arg, char *err,
                               size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = NULL;
    struct store_session ss;
    int rc = -1, step;

    if (sqlite_prepare(s, "SELECT ip, username, created, expires FROM sessions ORDER BY ip", &stmt,
                       err, errlen) < 0)
        goto out;
    for (;;) {
        step = sqlite3_step(stmt);
        if (step != SQLITE_ROW)
            break;
        ss.ip = sqlite_column_text(stmt, 0);
        ss.username = sqlite_column_text(stmt, 1);
        ss.created = sqlite3_column_int64(stmt, 2);
        ss.expires = sqlite3_column_int64(stmt, 3);
        rc = fn(arg, &ss);
        if (rc != 0)
            goto out;
    }
    if (step != SQLITE_DONE) {
        rc = sqlite_fail(s, err, errlen, "cannot read sessions");
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(stmt);
    return rc;
}

static int sqlite_session_purge_expired(struct store *st, int64_t now, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = NULL;
    int rc = -1;

    if (sqlite_prepare(s, "DELETE FROM sessions WHERE expires <= ?1", &stmt, err, errlen) < 0)
        goto out;
    sqlite3_bind_int64(stmt, 1, now);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        sqlite_fail(s, err, errlen, "cannot purge sessions");
        goto out;
    }
    rc = sqlite3_changes(s->db);
out:
    sqlite3_finalize(stmt);
    return rc;
}

const struct store_ops sqlite_store_ops = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .migrate = sqlite_migrate,
    .schema_version = sqlite_schema_version,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .user_put = sqlite_user_put,
    .user_get = sqlite_user_get,
    .user_delete = sqlite_user_delete,
    .user_list = sqlite_user_list,
    .set_password = sqlite_set_password,
    .session_put = sqlite_session_put,
    .session_delete = sqlite_session_delete,
    .session_list = sqlite_session_list,
    .session_purge_expired = sqlite_session_purge_expired,
};
