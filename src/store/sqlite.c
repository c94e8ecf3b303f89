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
 *
 * The safeguarding records (migration 2) name users by username, with no
 * foreign key to users: they must outlive a deleted account. The writer
 * thread inserts them in batches, so their insert statements are prepared
 * once per handle and kept (struct sqlite_store); everything else is
 * prepared per call, which costs little next to the work it does.
 */
#include "common/compat.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

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
    /* Prepared on first use, finalized by sqlite_close. */
    sqlite3_stmt *event_add, *rollup_add, *alert_add, *alert_recent;
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

    /* 2: safeguarding records: events, hourly roll-ups, alerts, deliveries. */
    "CREATE TABLE events (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    time_ms INTEGER NOT NULL,\n"
    "    kind TEXT NOT NULL,\n"
    "    username TEXT COLLATE NOCASE,\n"
    "    group_name TEXT, ip TEXT, method TEXT, url TEXT, host TEXT, category TEXT,\n"
    "    reason TEXT, search TEXT, theme TEXT,\n"
    "    severity INTEGER NOT NULL DEFAULT 0,\n"
    "    phrase TEXT, excerpt TEXT, ref TEXT\n"
    ");\n"
    "CREATE INDEX events_username_time ON events(username, time_ms);\n"
    "CREATE INDEX events_time ON events(time_ms);\n"
    "CREATE INDEX events_kind_time ON events(kind, time_ms);\n"
    "CREATE TABLE rollups (\n"
    "    hour INTEGER NOT NULL,\n"
    "    username TEXT NOT NULL COLLATE NOCASE,\n"
    "    group_name TEXT,\n"
    "    host TEXT NOT NULL,\n"
    "    category TEXT NOT NULL,\n"
    "    requests INTEGER NOT NULL DEFAULT 0,\n"
    "    bytes INTEGER NOT NULL DEFAULT 0,\n"
    "    PRIMARY KEY (hour, username, host, category)\n"
    ");\n"
    "CREATE INDEX rollups_username_hour ON rollups(username, hour);\n"
    "CREATE TABLE alerts (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    time_ms INTEGER NOT NULL,\n"
    "    username TEXT COLLATE NOCASE,\n"
    "    group_name TEXT, ip TEXT, device TEXT,\n"
    "    theme TEXT NOT NULL,\n"
    "    severity INTEGER NOT NULL,\n"
    "    lang TEXT, phrase TEXT, excerpt TEXT, url TEXT, source TEXT,\n"
    "    status TEXT NOT NULL DEFAULT 'open',\n"
    "    outcome TEXT,\n"
    "    false_positive INTEGER NOT NULL DEFAULT 0,\n"
    "    resolved_ms INTEGER,\n"
    "    resolved_by TEXT,\n"
    "    suppressed INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE INDEX alerts_username_theme_time ON alerts(username, theme, time_ms);\n"
    "CREATE INDEX alerts_time ON alerts(time_ms);\n"
    "CREATE TABLE deliveries (\n"
    "    alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,\n"
    "    channel TEXT NOT NULL,\n"
    "    target TEXT NOT NULL,\n"
    "    status TEXT NOT NULL,\n"
    "    attempts INTEGER NOT NULL DEFAULT 0,\n"
    "    last_error TEXT,\n"
    "    next_ms INTEGER NOT NULL DEFAULT 0,\n"
    "    updated_ms INTEGER NOT NULL,\n"
    "    PRIMARY KEY (alert_id, channel, target)\n"
    ");\n"
    "CREATE INDEX deliveries_status_next ON deliveries(status, next_ms);\n",
    /* 3: a counter of changes to users and sessions, so the daemon notices them without
     * being woken by every event the recorder writes to the same file. */
    "CREATE TABLE users_changes (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);\n"
    "INSERT INTO users_changes VALUES (1, 0);\n"
    "CREATE TRIGGER users_ins AFTER INSERT ON users BEGIN UPDATE users_changes SET n = n + 1; "
    "END;\n"
    "CREATE TRIGGER users_upd AFTER UPDATE ON users BEGIN UPDATE users_changes SET n = n + 1; "
    "END;\n"
    "CREATE TRIGGER users_del AFTER DELETE ON users BEGIN UPDATE users_changes SET n = n + 1; "
    "END;\n"
    "CREATE TRIGGER sessions_ins AFTER INSERT ON sessions\n"
    "    BEGIN UPDATE users_changes SET n = n + 1; END;\n"
    "CREATE TRIGGER sessions_upd AFTER UPDATE ON sessions\n"
    "    BEGIN UPDATE users_changes SET n = n + 1; END;\n"
    "CREATE TRIGGER sessions_del AFTER DELETE ON sessions\n"
    "    BEGIN UPDATE users_changes SET n = n + 1; END;\n",
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
    sqlite3_finalize(s->event_add);
    sqlite3_finalize(s->rollup_add);
    sqlite3_finalize(s->alert_add);
    sqlite3_finalize(s->alert_recent);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

static struct store *sqlite_open(const char *path, char *err, size_t errlen)
{
    struct sqlite_store *s = xcalloc(1, sizeof(*s));
    struct store *result = NULL;
    int created;

    s->ops = &sqlite_store_ops;
    s->path = xstrdup(path);
    /* Never open() and close() the file here: closing any descriptor of it drops this
     * process's POSIX locks, SQLite's included, and another process could then take the
     * WAL for its own and delete it. */
    created = access(path, F_OK) != 0;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        if (!s->db) {
            snprintf(err, errlen, "%s: cannot open: out of memory", path);
            goto out;
        }
        sqlite_fail(s, err, errlen, "cannot open");
        goto out;
    }
    /* The database holds safeguarding records about children: only its owner reads it.
     * SQLite gives the -wal and -shm files, made later, the same mode. */
    if (created)
        chmod(path, 0600);
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, SQLITE_STORE_BUSY_MS);
    /* journal_mode is the first statement that reads the file: a file that is not a
     * SQLite database fails here, with SQLite's "file is not a database". */
    if (sqlite_exec(s,
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                    "PRAGMA foreign_keys=ON; PRAGMA cache_size=-4096;",
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

static int sqlite_users_version(struct store *st, int64_t *version, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = NULL;
    int rc = -1;

    if (sqlite_prepare(s, "SELECT n FROM users_changes WHERE id = 1", &stmt, err, errlen) < 0)
        goto out;
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite_fail(s, err, errlen, "cannot read the users change counter");
        goto out;
    }
    *version = sqlite3_column_int64(stmt, 0);
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

/* ---------------------------------------------------------------- safeguarding records */

/* The statement *slot, prepared on first use and kept until the store closes. */
static int sqlite_cached(struct sqlite_store *s, sqlite3_stmt **slot, const char *sql, char *err,
                         size_t errlen)
{
    if (*slot)
        return 0;
    return sqlite_prepare(s, sql, slot, err, errlen);
}

/* Ready a cached statement for its next use. */
static void sqlite_done(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

/* Bind text that stays valid until the statement is stepped and reset (no copy). */
static void sqlite_bind_static(sqlite3_stmt *stmt, int i, const char *text)
{
    if (!text)
        sqlite3_bind_null(stmt, i);
    else
        sqlite3_bind_text(stmt, i, text, -1, SQLITE_STATIC);
}

static int sqlite_one_of(const char *s, const char *const *list, size_t n)
{
    if (!s)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, list[i]) == 0)
            return 1;
    }
    return 0;
}

static const char *const sqlite_event_kinds[] = {"block", "warn",    "search",
                                                 "match", "request", "concern"};
static const char *const sqlite_channels[] = {"email", "webhook", "syslog", "digest"};
static const char *const sqlite_delivery_states[] = {"pending", "sent", "failed"};

/* Append piece to the SQL text being built in sql[size]. The pieces are constants and the
 * buffers sized for all of them; were one too small, the truncated text would fail to
 * prepare, with SQLite's message, rather than run a different query. */
static void sqlite_sql_add(char *sql, size_t size, const char *piece)
{
    size_t have = strlen(sql), add = strlen(piece);

    if (have + add >= size) {
        sql[0] = '!';
        return;
    }
    memcpy(sql + have, piece, add + 1);
}

/* Step a statement that walks rows, calling row(stmt, ctx) for each; returns 0, -1, or what
 * row returned to stop. */
static int sqlite_walk(struct sqlite_store *s, sqlite3_stmt *stmt,
                       int (*row)(sqlite3_stmt *stmt, void *ctx), void *ctx, const char *what,
                       char *err, size_t errlen)
{
    int rc, step;

    for (;;) {
        step = sqlite3_step(stmt);
        if (step != SQLITE_ROW)
            break;
        rc = row(stmt, ctx);
        if (rc != 0)
            return rc;
    }
    if (step != SQLITE_DONE)
        return sqlite_fail(s, err, errlen, what);
    return 0;
}

static int sqlite_event_add(struct store *st, const struct store_event *e, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt;
    int rc = -1;

    if (!sqlite_one_of(e->kind, sqlite_event_kinds, HAVEN_ARRAY_LEN(sqlite_event_kinds))) {
        snprintf(err, errlen, "%s: an event of unknown kind '%s'", s->path,
                 e->kind ? e->kind : "(none)");
        return -1;
    }
    if (e->severity < 0 || e->severity > 5) {
        snprintf(err, errlen, "%s: an event with severity %d (not 0-5)", s->path, e->severity);
        return -1;
    }
    if (sqlite_cached(s, &s->event_add,
                      "INSERT INTO events (time_ms, kind, username, group_name, ip, method, url, "
                      "host, category, reason, search, theme, severity, phrase, excerpt, ref) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                      "?15, ?16)",
                      err, errlen) < 0)
        return -1;
    stmt = s->event_add;
    sqlite3_bind_int64(stmt, 1, e->time_ms);
    sqlite_bind_static(stmt, 2, e->kind);
    sqlite_bind_static(stmt, 3, e->username);
    sqlite_bind_static(stmt, 4, e->group_name);
    sqlite_bind_static(stmt, 5, e->ip);
    sqlite_bind_static(stmt, 6, e->method);
    sqlite_bind_static(stmt, 7, e->url);
    sqlite_bind_static(stmt, 8, e->host);
    sqlite_bind_static(stmt, 9, e->category);
    sqlite_bind_static(stmt, 10, e->reason);
    sqlite_bind_static(stmt, 11, e->search);
    sqlite_bind_static(stmt, 12, e->theme);
    sqlite3_bind_int(stmt, 13, e->severity);
    sqlite_bind_static(stmt, 14, e->phrase);
    sqlite_bind_static(stmt, 15, e->excerpt);
    sqlite_bind_static(stmt, 16, e->ref);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        sqlite_fail(s, err, errlen, "cannot write an event");
        goto out;
    }
    rc = 0;
out:
    sqlite_done(stmt);
    return rc;
}

struct sqlite_event_cb {
    store_event_fn fn;
    void *arg;
};

static int sqlite_event_row(sqlite3_stmt *stmt, void *ctx)
{
    const struct sqlite_event_cb *cb = ctx;
    struct store_event e;

    e.id = sqlite3_column_int64(stmt, 0);
    e.time_ms = sqlite3_column_int64(stmt, 1);
    e.kind = sqlite_column_text(stmt, 2);
    e.username = sqlite_column_text(stmt, 3);
    e.group_name = sqlite_column_text(stmt, 4);
    e.ip = sqlite_column_text(stmt, 5);
    e.method = sqlite_column_text(stmt, 6);
    e.url = sqlite_column_text(stmt, 7);
    e.host = sqlite_column_text(stmt, 8);
    e.category = sqlite_column_text(stmt, 9);
    e.reason = sqlite_column_text(stmt, 10);
    e.search = sqlite_column_text(stmt, 11);
    e.theme = sqlite_column_text(stmt, 12);
    e.severity = sqlite3_column_int(stmt, 13);
    e.phrase = sqlite_column_text(stmt, 14);
    e.excerpt = sqlite_column_text(stmt, 15);
    e.ref = sqlite_column_text(stmt, 16);
    return cb->fn(cb->arg, &e);
}

static int sqlite_event_list(struct store *st, const struct store_event_query *q, store_event_fn fn,
                             void *arg, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    struct sqlite_event_cb cb = {fn, arg};
    sqlite3_stmt *stmt = NULL;
    char sql[512] = "SELECT id, time_ms, kind, username, group_name, ip, method, url, host, "
                    "category, reason, search, theme, severity, phrase, excerpt, ref "
                    "FROM events WHERE 1";
    int rc = -1;

    if (q->username)
        sqlite_sql_add(sql, sizeof(sql), " AND username = ?1");
    if (q->since_ms)
        sqlite_sql_add(sql, sizeof(sql), " AND time_ms >= ?2");
    if (q->until_ms)
        sqlite_sql_add(sql, sizeof(sql), " AND time_ms < ?3");
    if (q->kind)
        sqlite_sql_add(sql, sizeof(sql), " AND kind = ?4");
    sqlite_sql_add(sql, sizeof(sql), " ORDER BY time_ms, id");
    if (q->limit > 0)
        sqlite_sql_add(sql, sizeof(sql), " LIMIT ?5");
    if (sqlite_prepare(s, sql, &stmt, err, errlen) < 0)
        goto out;
    /* Binding a parameter the text does not use fails harmlessly (SQLITE_RANGE). */
    sqlite_bind_text(stmt, 1, q->username);
    sqlite3_bind_int64(stmt, 2, q->since_ms);
    sqlite3_bind_int64(stmt, 3, q->until_ms);
    sqlite_bind_text(stmt, 4, q->kind);
    sqlite3_bind_int(stmt, 5, q->limit);
    rc = sqlite_walk(s, stmt, sqlite_event_row, &cb, "cannot read events", err, errlen);
out:
    sqlite3_finalize(stmt);
    return rc;
}

static int sqlite_rollup_add(struct store *st, const struct store_rollup *r, char *err,
                             size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt;
    int rc = -1;

    if (r->hour % 3600 != 0) {
        snprintf(err, errlen, "%s: a roll-up hour %lld that is not a multiple of 3600", s->path,
                 (long long)r->hour);
        return -1;
    }
    if (sqlite_cached(s, &s->rollup_add,
                      "INSERT INTO rollups (hour, username, group_name, host, category, "
                      "requests, bytes) VALUES (?1, coalesce(?2, ''), ?3, coalesce(?4, ''), "
                      "coalesce(?5, ''), ?6, ?7) "
                      "ON CONFLICT (hour, username, host, category) DO UPDATE SET "
                      "requests = requests + excluded.requests, bytes = bytes + excluded.bytes",
                      err, errlen) < 0)
        return -1;
    stmt = s->rollup_add;
    sqlite3_bind_int64(stmt, 1, r->hour);
    sqlite_bind_static(stmt, 2, r->username);
    sqlite_bind_static(stmt, 3, r->group_name);
    sqlite_bind_static(stmt, 4, r->host);
    sqlite_bind_static(stmt, 5, r->category);
    sqlite3_bind_int64(stmt, 6, r->requests);
    sqlite3_bind_int64(stmt, 7, r->bytes);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        sqlite_fail(s, err, errlen, "cannot write a roll-up");
        goto out;
    }
    rc = 0;
out:
    sqlite_done(stmt);
    return rc;
}

struct sqlite_rollup_cb {
    store_rollup_fn fn;
    void *arg;
};

static int sqlite_rollup_row(sqlite3_stmt *stmt, void *ctx)
{
    const struct sqlite_rollup_cb *cb = ctx;
    struct store_rollup r;

    r.hour = sqlite3_column_int64(stmt, 0);
    r.username = sqlite_column_text(stmt, 1);
    r.group_name = sqlite_column_text(stmt, 2);
    r.host = sqlite_column_text(stmt, 3);
    r.category = sqlite_column_text(stmt, 4);
    r.requests = sqlite3_column_int64(stmt, 5);
    r.bytes = sqlite3_column_int64(stmt, 6);
    return cb->fn(cb->arg, &r);
}

/* floor(a / b) for b > 0. */
static int64_t sqlite_floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static int sqlite_rollup_list(struct store *st, const struct store_rollup_query *q,
                              store_rollup_fn fn, void *arg, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    struct sqlite_rollup_cb cb = {fn, arg};
    sqlite3_stmt *stmt = NULL;
    char sql[384] = "SELECT hour, username, group_name, host, category, requests, bytes "
                    "FROM rollups WHERE 1";
    int rc = -1;

    if (q->username)
        sqlite_sql_add(sql, sizeof(sql), " AND username = ?1");
    /* [hour, hour + 3600 s) overlaps [since, until): hour > (since - 3600 s) and
     * hour < until, in whole seconds. */
    if (q->since_ms)
        sqlite_sql_add(sql, sizeof(sql), " AND hour > ?2");
    if (q->until_ms)
        sqlite_sql_add(sql, sizeof(sql), " AND hour < ?3");
    sqlite_sql_add(sql, sizeof(sql), " ORDER BY hour, username, host, category");
    if (q->limit > 0)
        sqlite_sql_add(sql, sizeof(sql), " LIMIT ?4");
    if (sqlite_prepare(s, sql, &stmt, err, errlen) < 0)
        goto out;
    sqlite_bind_text(stmt, 1, q->username);
    sqlite3_bind_int64(stmt, 2, sqlite_floor_div(q->since_ms - 3600000, 1000));
    sqlite3_bind_int64(stmt, 3, -sqlite_floor_div(-q->until_ms, 1000));
    sqlite3_bind_int(stmt, 4, q->limit);
    rc = sqlite_walk(s, stmt, sqlite_rollup_row, &cb, "cannot read roll-ups", err, errlen);
out:
    sqlite3_finalize(stmt);
    return rc;
}

static int64_t sqlite_alert_add(struct store *st, const struct store_alert *a, char *err,
                                size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    static const char *const sources[] = {"search", "page"};
    sqlite3_stmt *stmt;
    int64_t rc = -1;

    if (!a->theme || !*a->theme) {
        snprintf(err, errlen, "%s: an alert needs a theme", s->path);
        return -1;
    }
    if (a->severity < 1 || a->severity > 5) {
        snprintf(err, errlen, "%s: an alert with severity %d (not 1-5)", s->path, a->severity);
        return -1;
    }
    if (a->source && !sqlite_one_of(a->source, sources, HAVEN_ARRAY_LEN(sources))) {
        snprintf(err, errlen, "%s: an alert from unknown source '%s' (not search or page)", s->path,
                 a->source);
        return -1;
    }
    if (sqlite_cached(s, &s->alert_add,
                      "INSERT INTO alerts (time_ms, username, group_name, ip, device, theme, "
                      "severity, lang, phrase, excerpt, url, source, suppressed) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                      err, errlen) < 0)
        return -1;
    stmt = s->alert_add;
    sqlite3_bind_int64(stmt, 1, a->time_ms);
    sqlite_bind_static(stmt, 2, a->username);
    sqlite_bind_static(stmt, 3, a->group_name);
    sqlite_bind_static(stmt, 4, a->ip);
    sqlite_bind_static(stmt, 5, a->device);
    sqlite_bind_static(stmt, 6, a->theme);
    sqlite3_bind_int(stmt, 7, a->severity);
    sqlite_bind_static(stmt, 8, a->lang);
    sqlite_bind_static(stmt, 9, a->phrase);
    sqlite_bind_static(stmt, 10, a->excerpt);
    sqlite_bind_static(stmt, 11, a->url);
    sqlite_bind_static(stmt, 12, a->source);
    sqlite3_bind_int(stmt, 13, a->suppressed ? 1 : 0);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        sqlite_fail(s, err, errlen, "cannot write an alert");
        goto out;
    }
    rc = sqlite3_last_insert_rowid(s->db);
out:
    sqlite_done(stmt);
    return rc;
}

#define SQLITE_ALERT_COLUMNS                                                                       \
    "id, time_ms, username, group_name, ip, device, theme, severity, lang, phrase, excerpt, "      \
    "url, source, status, outcome, false_positive, resolved_ms, resolved_by, suppressed"

/* The row as an alert whose strings point into the statement. */
static void sqlite_alert_row_view(sqlite3_stmt *stmt, struct store_alert *a)
{
    a->id = sqlite3_column_int64(stmt, 0);
    a->time_ms = sqlite3_column_int64(stmt, 1);
    a->username = sqlite_column_text(stmt, 2);
    a->group_name = sqlite_column_text(stmt, 3);
    a->ip = sqlite_column_text(stmt, 4);
    a->device = sqlite_column_text(stmt, 5);
    a->theme = sqlite_column_text(stmt, 6);
    a->severity = sqlite3_column_int(stmt, 7);
    a->lang = sqlite_column_text(stmt, 8);
    a->phrase = sqlite_column_text(stmt, 9);
    a->excerpt = sqlite_column_text(stmt, 10);
    a->url = sqlite_column_text(stmt, 11);
    a->source = sqlite_column_text(stmt, 12);
    a->status = sqlite_column_text(stmt, 13);
    a->outcome = sqlite_column_text(stmt, 14);
    a->false_positive = sqlite3_column_int(stmt, 15);
    a->resolved_ms = sqlite3_column_int64(stmt, 16);
    a->resolved_by = sqlite_column_text(stmt, 17);
    a->suppressed = sqlite3_column_int(stmt, 18);
}

static int sqlite_alert_get(struct store *st, int64_t id, struct store_alert *out, char *err,
                            size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (sqlite_prepare(s, "SELECT " SQLITE_ALERT_COLUMNS " FROM alerts WHERE id = ?1", &stmt, err,
                       errlen) < 0)
        goto out;
    sqlite3_bind_int64(stmt, 1, id);
    switch (sqlite3_step(stmt)) {
    case SQLITE_DONE:
        rc = 0;
        break;
    case SQLITE_ROW:
        sqlite_alert_row_view(stmt, out);
        /* Copy every string the view points at. */
        out->username = sqlite_dup_column(stmt, 2);
        out->group_name = sqlite_dup_column(stmt, 3);
        out->ip = sqlite_dup_column(stmt, 4);
        out->device = sqlite_dup_column(stmt, 5);
        out->theme = sqlite_dup_column(stmt, 6);
        out->lang = sqlite_dup_column(stmt, 8);
        out->phrase = sqlite_dup_column(stmt, 9);
        out->excerpt = sqlite_dup_column(stmt, 10);
        out->url = sqlite_dup_column(stmt, 11);
        out->source = sqlite_dup_column(stmt, 12);
        out->status = sqlite_dup_column(stmt, 13);
        out->outcome = sqlite_dup_column(stmt, 14);
        out->resolved_by = sqlite_dup_column(stmt, 17);
        rc = 1;
        break;
    default:
        sqlite_fail(s, err, errlen, "cannot read alerts");
        break;
    }
out:
    sqlite3_finalize(stmt);
    return rc;
}

struct sqlite_alert_cb {
    store_alert_fn fn;
    void *arg;
};

static int sqlite_alert_row(sqlite3_stmt *stmt, void *ctx)
{
    const struct sqlite_alert_cb *cb = ctx;
    struct store_alert a;

    sqlite_alert_row_view(stmt, &a);
    return cb->fn(cb->arg, &a);
}

static int sqlite_alert_list(struct store *st, const struct store_alert_query *q, store_alert_fn fn,
                             void *arg, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    struct sqlite_alert_cb cb = {fn, arg};
    sqlite3_stmt *stmt = NULL;
    char sql[512] = "SELECT " SQLITE_ALERT_COLUMNS " FROM alerts WHERE 1";
    int rc = -1;

    if (q->username)
        sqlite_sql_add(sql, sizeof(sql), " AND username = ?1");
    if (q->since_ms)
        sqlite_sql_add(sql, sizeof(sql), " AND time_ms >= ?2");
    if (q->until_ms)
        sqlite_sql_add(sql, sizeof(sql), " AND time_ms < ?3");
    if (q->open_only)
        sqlite_sql_add(sql, sizeof(sql), " AND status = 'open'");
    sqlite_sql_add(sql, sizeof(sql), " ORDER BY time_ms DESC, id DESC");
    if (q->limit > 0)
        sqlite_sql_add(sql, sizeof(sql), " LIMIT ?4");
    if (sqlite_prepare(s, sql, &stmt, err, errlen) < 0)
        goto out;
    sqlite_bind_text(stmt, 1, q->username);
    sqlite3_bind_int64(stmt, 2, q->since_ms);
    sqlite3_bind_int64(stmt, 3, q->until_ms);
    sqlite3_bind_int(stmt, 4, q->limit);
    rc = sqlite_walk(s, stmt, sqlite_alert_row, &cb, "cannot read alerts", err, errlen);
out:
    sqlite3_finalize(stmt);
    return rc;
}

static int sqlite_alert_resolve(struct store *st, int64_t id, const char *outcome,
                                int false_positive, const char *by, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = NULL;
    int rc = -1;

    if (!outcome || !*outcome) {
        snprintf(err, errlen, "%s: resolving alert %lld needs an outcome", s->path, (long long)id);
        goto out;
    }
    if (sqlite_prepare(s,
                       "UPDATE alerts SET status = 'resolved', outcome = ?2, "
                       "false_positive = ?3, resolved_ms = ?4, resolved_by = ?5 WHERE id = ?1",
                       &stmt, err, errlen) < 0)
        goto out;
    sqlite3_bind_int64(stmt, 1, id);
    sqlite_bind_text(stmt, 2, outcome);
    sqlite3_bind_int(stmt, 3, false_positive ? 1 : 0);
    sqlite3_bind_int64(stmt, 4, clock_now_ms());
    sqlite_bind_text(stmt, 5, by);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        sqlite_fail(s, err, errlen, "cannot resolve an alert");
        goto out;
    }
    rc = sqlite3_changes(s->db);
out:
    sqlite3_finalize(stmt);
    return rc;
}

static int sqlite_alert_recent(struct store *st, const char *username, const char *theme,
                               int64_t since_ms, int *max_severity, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt;
    int rc = -1;

    *max_severity = 0;
    if (sqlite_cached(s, &s->alert_recent,
                      "SELECT count(*), coalesce(max(severity), 0) FROM alerts "
                      "WHERE username IS ?1 AND theme = ?2 AND time_ms >= ?3",
                      err, errlen) < 0)
        return -1;
    stmt = s->alert_recent;
    sqlite_bind_static(stmt, 1, username);
    sqlite_bind_static(stmt, 2, theme);
    sqlite3_bind_int64(stmt, 3, since_ms);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite_fail(s, err, errlen, "cannot read alerts");
        goto out;
    }
    *max_severity = sqlite3_column_int(stmt, 1);
    rc = sqlite3_column_int(stmt, 0);
out:
    sqlite_done(stmt);
    return rc;
}

static int sqlite_delivery_put(struct store *st, const struct store_delivery *d, char *err,
                               size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *stmt = NULL;
    int rc = -1, step;

    if (!sqlite_one_of(d->channel, sqlite_channels, HAVEN_ARRAY_LEN(sqlite_channels))) {
        snprintf(err, errlen, "%s: a delivery by unknown channel '%s'", s->path,
                 d->channel ? d->channel : "(none)");
        goto out;
    }
    if (!sqlite_one_of(d->status, sqlite_delivery_states,
                       HAVEN_ARRAY_LEN(sqlite_delivery_states))) {
        snprintf(err, errlen, "%s: a delivery with unknown status '%s'", s->path,
                 d->status ? d->status : "(none)");
        goto out;
    }
    if (!d->target) {
        snprintf(err, errlen, "%s: a delivery needs a target", s->path);
        goto out;
    }
    if (sqlite_prepare(s,
                       "INSERT INTO deliveries (alert_id, channel, target, status, attempts, "
                       "last_error, next_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                       "ON CONFLICT (alert_id, channel, target) DO UPDATE SET "
                       "status = excluded.status, attempts = excluded.attempts, "
                       "last_error = excluded.last_error, next_ms = excluded.next_ms, "
                       "updated_ms = excluded.updated_ms",
                       &stmt, err, errlen) < 0)
        goto out;
    sqlite3_bind_int64(stmt, 1, d->alert_id);
    sqlite_bind_text(stmt, 2, d->channel);
    sqlite_bind_text(stmt, 3, d->target);
    sqlite_bind_text(stmt, 4, d->status);
    sqlite3_bind_int(stmt, 5, d->attempts);
    sqlite_bind_text(stmt, 6, d->last_error);
    sqlite3_bind_int64(stmt, 7, d->next_ms);
    sqlite3_bind_int64(stmt, 8, clock_now_ms());
    step = sqlite3_step(stmt);
    if (step == SQLITE_CONSTRAINT_FOREIGNKEY) {
        snprintf(err, errlen, "%s: no alert %lld", s->path, (long long)d->alert_id);
        goto out;
    }
    if (step != SQLITE_DONE) {
        sqlite_fail(s, err, errlen, "cannot write a delivery");
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(stmt);
    return rc;
}

#define SQLITE_DELIVERY_COLUMNS                                                                    \
    "alert_id, channel, target, status, attempts, last_error, next_ms, updated_ms"

static void sqlite_delivery_row_view(sqlite3_stmt *stmt, struct store_delivery *d)
{
    d->alert_id = sqlite3_column_int64(stmt, 0);
    d->channel = sqlite_column_text(stmt, 1);
    d->target = sqlite_column_text(stmt, 2);
    d->status = sqlite_column_text(stmt, 3);
    d->attempts = sqlite3_column_int(stmt, 4);
    d->last_error = sqlite_column_text(stmt, 5);
    d->next_ms = sqlite3_column_int64(stmt, 6);
    d->updated_ms = sqlite3_column_int64(stmt, 7);
}

struct sqlite_delivery_cb {
    store_delivery_fn fn;
    void *arg;
};

static int sqlite_delivery_row(sqlite3_stmt *stmt, void *ctx)
{
    const struct sqlite_delivery_cb *cb = ctx;
    struct store_delivery d;

    sqlite_delivery_row_view(stmt, &d);
    return cb->fn(cb->arg, &d);
}

static int sqlite_delivery_list(struct store *st, int64_t alert_id, store_delivery_fn fn, void *arg,
                                char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    struct sqlite_delivery_cb cb = {fn, arg};
    sqlite3_stmt *stmt = NULL;
    int rc = -1;

    if (sqlite_prepare(s,
                       "SELECT " SQLITE_DELIVERY_COLUMNS " FROM deliveries WHERE alert_id = ?1 "
                       "ORDER BY channel, target",
                       &stmt, err, errlen) < 0)
        goto out;
    sqlite3_bind_int64(stmt, 1, alert_id);
    rc = sqlite_walk(s, stmt, sqlite_delivery_row, &cb, "cannot read deliveries", err, errlen);
out:
    sqlite3_finalize(stmt);
    return rc;
}

/* The due deliveries, copied out so the callback may write while we walk them. */
struct sqlite_due {
    struct store_delivery *d;
    size_t n, cap;
};

static char *sqlite_dup(const char *t)
{
    return t ? xstrdup(t) : NULL;
}

static int sqlite_due_row(sqlite3_stmt *stmt, void *ctx)
{
    struct sqlite_due *due = ctx;
    struct store_delivery d;

    if (due->n == due->cap) {
        due->cap = due->cap ? due->cap * 2 : 16;
        due->d = xrealloc(due->d, due->cap * sizeof(*due->d));
    }
    sqlite_delivery_row_view(stmt, &d);
    d.channel = sqlite_dup(d.channel);
    d.target = sqlite_dup(d.target);
    d.status = sqlite_dup(d.status);
    d.last_error = sqlite_dup(d.last_error);
    due->d[due->n++] = d;
    return 0;
}

static int sqlite_delivery_due(struct store *st, int64_t now_ms, store_delivery_fn fn, void *arg,
                               char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    struct sqlite_due due = {0};
    sqlite3_stmt *stmt = NULL;
    int rc = -1;

    if (sqlite_prepare(s,
                       "SELECT " SQLITE_DELIVERY_COLUMNS " FROM deliveries "
                       "WHERE status = 'pending' AND next_ms <= ?1 "
                       "ORDER BY next_ms, alert_id, channel, target",
                       &stmt, err, errlen) < 0)
        goto out;
    sqlite3_bind_int64(stmt, 1, now_ms);
    rc = sqlite_walk(s, stmt, sqlite_due_row, &due, "cannot read deliveries", err, errlen);
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < due.n; i++) {
        rc = fn(arg, &due.d[i]);
        if (rc != 0)
            goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(stmt);
    for (size_t i = 0; i < due.n; i++) {
        free((char *)(uintptr_t)due.d[i].channel);
        free((char *)(uintptr_t)due.d[i].target);
        free((char *)(uintptr_t)due.d[i].status);
        free((char *)(uintptr_t)due.d[i].last_error);
    }
    free(due.d);
    return rc;
}

/* Run a delete with one integer parameter; rows deleted, or -1. */
static int64_t sqlite_delete(struct sqlite_store *s, const char *sql, int64_t param, char *err,
                             size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    int64_t rc = -1;

    if (sqlite_prepare(s, sql, &stmt, err, errlen) < 0)
        goto out;
    sqlite3_bind_int64(stmt, 1, param);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        sqlite_fail(s, err, errlen, "cannot purge");
        goto out;
    }
    rc = sqlite3_changes64(s->db);
out:
    sqlite3_finalize(stmt);
    return rc;
}

static int sqlite_purge(struct store *st, const struct store_retention *r, int64_t now_ms, int dry,
                        struct store_purged *out, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    struct store_purged p = {0};
    int64_t cut;
    int rc = -1, began = 0;

    memset(out, 0, sizeof(*out));
    if (sqlite_unit_begin(s, err, errlen) < 0)
        goto out;
    began = 1;
    if (r->events_ms > 0) {
        p.events = sqlite_delete(s, "DELETE FROM events WHERE time_ms < ?1", now_ms - r->events_ms,
                                 err, errlen);
        if (p.events < 0)
            goto out;
    }
    if (r->rollups_ms > 0) {
        /* hour * 1000 < cut, in whole seconds: hour < ceil(cut / 1000). */
        cut = now_ms - r->rollups_ms;
        p.rollups = sqlite_delete(s, "DELETE FROM rollups WHERE hour < ?1",
                                  -sqlite_floor_div(-cut, 1000), err, errlen);
        if (p.rollups < 0)
            goto out;
    }
    if (r->alerts_ms > 0) {
        cut = now_ms - r->alerts_ms;
        /* Counted here: the alerts' deletion would cascade to them silently. */
        p.deliveries = sqlite_delete(s,
                                     "DELETE FROM deliveries WHERE alert_id IN "
                                     "(SELECT id FROM alerts WHERE time_ms < ?1)",
                                     cut, err, errlen);
        if (p.deliveries < 0)
            goto out;
        p.alerts = sqlite_delete(s, "DELETE FROM alerts WHERE time_ms < ?1", cut, err, errlen);
        if (p.alerts < 0)
            goto out;
    }
    p.sessions = sqlite_delete(s, "DELETE FROM sessions WHERE expires <= ?1",
                               sqlite_floor_div(now_ms, 1000), err, errlen);
    if (p.sessions < 0)
        goto out;
    began = 0;
    if (dry) {
        sqlite_unit_end(s, 0, NULL, 0);
    } else if (sqlite_unit_end(s, 1, err, errlen) < 0) {
        goto out;
    }
    *out = p;
    rc = 0;
out:
    if (began)
        sqlite_unit_end(s, 0, NULL, 0);
    return rc;
}

struct sqlite_tally_cb {
    store_tally_fn fn;
    void *arg;
};

static int sqlite_tally_row(sqlite3_stmt *stmt, void *ctx)
{
    const struct sqlite_tally_cb *cb = ctx;
    const char *key = sqlite_column_text(stmt, 0);

    return cb->fn(cb->arg, key ? key : "", sqlite3_column_int64(stmt, 1));
}

static int sqlite_tally(struct store *st, enum store_tally what, int64_t since_ms, int64_t until_ms,
                        int limit, store_tally_fn fn, void *arg, char *err, size_t errlen)
{
    static const char *const heads[] = {
        [STORE_TALLY_BLOCK_CATEGORY] = "SELECT coalesce(category, '') AS k, count(*) AS n "
                                       "FROM events WHERE kind = 'block'",
        [STORE_TALLY_SEARCH_THEME] = "SELECT coalesce(theme, '') AS k, count(*) AS n "
                                     "FROM events WHERE kind IN ('search', 'match')",
        [STORE_TALLY_ALERT_USER] = "SELECT coalesce(username, '') AS k, count(*) AS n "
                                   "FROM alerts WHERE 1",
        [STORE_TALLY_ALERT_THEME] = "SELECT theme AS k, count(*) AS n FROM alerts WHERE 1",
        [STORE_TALLY_ALERT_OUTCOME] = "SELECT CASE WHEN status = 'open' THEN 'open' "
                                      "WHEN false_positive THEN 'false positive' "
                                      "ELSE 'resolved' END AS k, count(*) AS n "
                                      "FROM alerts WHERE 1",
    };
    struct sqlite_store *s = sqlite_of(st);
    struct sqlite_tally_cb cb = {fn, arg};
    sqlite3_stmt *stmt = NULL;
    char sql[512] = "";
    int rc = -1;

    if ((unsigned)what >= HAVEN_ARRAY_LEN(heads)) {
        snprintf(err, errlen, "%s: unknown tally %d", s->path, (int)what);
        goto out;
    }
    sqlite_sql_add(sql, sizeof(sql), heads[what]);
    if (since_ms)
        sqlite_sql_add(sql, sizeof(sql), " AND time_ms >= ?1");
    if (until_ms)
        sqlite_sql_add(sql, sizeof(sql), " AND time_ms < ?2");
    sqlite_sql_add(sql, sizeof(sql), " GROUP BY k ORDER BY n DESC, k");
    if (limit > 0)
        sqlite_sql_add(sql, sizeof(sql), " LIMIT ?3");
    if (sqlite_prepare(s, sql, &stmt, err, errlen) < 0)
        goto out;
    sqlite3_bind_int64(stmt, 1, since_ms);
    sqlite3_bind_int64(stmt, 2, until_ms);
    sqlite3_bind_int(stmt, 3, limit);
    rc = sqlite_walk(s, stmt, sqlite_tally_row, &cb, "cannot count records", err, errlen);
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
    .users_version = sqlite_users_version,
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
    .event_add = sqlite_event_add,
    .event_list = sqlite_event_list,
    .rollup_add = sqlite_rollup_add,
    .rollup_list = sqlite_rollup_list,
    .alert_add = sqlite_alert_add,
    .alert_get = sqlite_alert_get,
    .alert_list = sqlite_alert_list,
    .alert_resolve = sqlite_alert_resolve,
    .alert_recent = sqlite_alert_recent,
    .delivery_put = sqlite_delivery_put,
    .delivery_due = sqlite_delivery_due,
    .delivery_list = sqlite_delivery_list,
    .purge = sqlite_purge,
    .tally = sqlite_tally,
};
