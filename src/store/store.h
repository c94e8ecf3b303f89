/*
 * store.h -- haven's database: users and IP sessions (more tables to come).
 *
 * The store is a table of functions (STYLE.md rule 17) so that the embedded
 * SQLite back-end and a PostgreSQL one for a multi-academy trust can be
 * swapped without their callers noticing. store_open() picks the back-end
 * from the path (today: every path is a SQLite file) and the store_*
 * functions below call through the table; callers never see the back-end.
 *
 * Invariants:
 *  - The schema is created and upgraded by numbered migrations kept in the
 *    back-end's source. store_migrate() runs the missing ones in one
 *    transaction and refuses a database whose schema is newer than the code.
 *    Call it once after store_open() and before anything else.
 *  - Every time the store writes (created, updated) comes from clock_now(),
 *    so tests fix it with clock_set_fake().
 *  - A store handle is used by one thread at a time. The proxy's worker
 *    threads never touch it (STYLE.md rule 14): they read an immutable
 *    snapshot built from it (ident/ident.h).
 *  - Usernames, group names and display names are stored as given; the
 *    callers (the CLI, the CSV importer) validate them. Addresses in sessions
 *    are canonical text (inet_ntop form, IPv4 for v4-mapped IPv6); see
 *    ident_ip_canonical().
 *  - Deleting a user deletes that user's sessions.
 *
 * Errors: functions returning int return -1 on failure with the reason in
 * err (errlen bytes), naming the database file.
 */
#ifndef HAVEN_STORE_STORE_H
#define HAVEN_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* A user as stored. In callbacks the strings are valid only during the call. */
struct store_user {
    const char *username;
    const char *group_name;
    const char *display_name;  /* NULL: none */
    const char *password_hash; /* an argon2id string ("$argon2id$..."), or NULL: no password */
    int64_t created, updated;  /* seconds since the epoch; ignored by store_user_put */
};

/* An IP-to-user session. */
struct store_session {
    const char *ip; /* canonical text */
    const char *username;
    int64_t created, expires; /* seconds since the epoch */
};

/* Callbacks for the list functions: return 0 to go on; anything else stops the walk and is
 * returned by the list function. */
typedef int (*store_user_fn)(void *arg, const struct store_user *u);
typedef int (*store_session_fn)(void *arg, const struct store_session *s);

/* What store_user_put did. */
enum store_put { STORE_PUT_ERROR = -1, STORE_PUT_UNCHANGED, STORE_PUT_ADDED, STORE_PUT_UPDATED };

/*
 * A back-end. Each member has the meaning of the store_* function of the same name below;
 * back-ends embed `const struct store_ops *ops` as the first member of their struct store.
 */
struct store_ops {
    const char *name; /* "sqlite" */
    struct store *(*open)(const char *path, char *err, size_t errlen);
    void (*close)(struct store *st);
    int (*migrate)(struct store *st, char *err, size_t errlen);
    int (*schema_version)(struct store *st, int *version, char *err, size_t errlen);
    int (*begin)(struct store *st, char *err, size_t errlen);
    int (*commit)(struct store *st, char *err, size_t errlen);
    int (*rollback)(struct store *st);
    enum store_put (*user_put)(struct store *st, const struct store_user *u, char *err,
                               size_t errlen);
    int (*user_get)(struct store *st, const char *username, struct store_user *out, char *err,
                    size_t errlen);
    int (*user_delete)(struct store *st, const char *username, char *err, size_t errlen);
    int (*user_list)(struct store *st, store_user_fn fn, void *arg, char *err, size_t errlen);
    int (*set_password)(struct store *st, const char *username, const char *hash, char *err,
                        size_t errlen);
    int (*session_put)(struct store *st, const struct store_session *s, char *err, size_t errlen);
    int (*session_delete)(struct store *st, const char *ip, char *err, size_t errlen);
    int (*session_list)(struct store *st, store_session_fn fn, void *arg, char *err, size_t errlen);
    int (*session_purge_expired)(struct store *st, int64_t now, char *err, size_t errlen);
};

/* The SQLite back-end (store/sqlite.c). */
extern const struct store_ops sqlite_store_ops;

/* Every struct store starts with this. */
struct store_base {
    const struct store_ops *ops;
};

/*
 * Open the database at path, creating the file if it is missing (SQLite: WAL journal,
 * a busy timeout so a second process waits rather than fails, foreign keys on).
 * Does not migrate. Returns the store (close with store_close) or NULL with the reason.
 */
struct store *store_open(const char *path, char *err, size_t errlen);
void store_close(struct store *st);
const char *store_backend_name(const struct store *st);

/* Bring the schema up to date (see above). The newest version this code knows: */
#define STORE_SCHEMA_VERSION 1
int store_migrate(struct store *st, char *err, size_t errlen);
/* The schema version of the database (0: empty). */
int store_schema_version(struct store *st, int *version, char *err, size_t errlen);

/*
 * One transaction around several writes (the CSV import is all or nothing). Outside
 * begin/commit each write is its own transaction. store_rollback never fails loudly:
 * it is for error paths.
 */
int store_begin(struct store *st, char *err, size_t errlen);
int store_commit(struct store *st, char *err, size_t errlen);
void store_rollback(struct store *st);

/*
 * Add the user or update it. u->username and u->group_name are required; a NULL
 * display_name or password_hash keeps what the user already has (a new user gets none).
 * Sets created (new users) and updated (when anything changed) to clock_now().
 * Returns what it did: added, updated, unchanged, or STORE_PUT_ERROR.
 */
enum store_put store_user_put(struct store *st, const struct store_user *u, char *err,
                              size_t errlen);

/*
 * Fetch one user into *out: returns 1 (found; the strings in *out are allocated, free them
 * with store_user_cleanup), 0 (no such user; *out zeroed) or -1.
 */
int store_user_get(struct store *st, const char *username, struct store_user *out, char *err,
                   size_t errlen);
void store_user_cleanup(struct store_user *u);

/* Delete a user and its sessions: 1 deleted, 0 no such user, -1 error. */
int store_user_delete(struct store *st, const char *username, char *err, size_t errlen);

/* Call fn for every user, in username order. Returns 0, -1, or what fn returned to stop. */
int store_user_list(struct store *st, store_user_fn fn, void *arg, char *err, size_t errlen);

/* Set (hash != NULL) or remove (NULL) a user's password hash: 1 done, 0 no such user, -1. */
int store_set_password(struct store *st, const char *username, const char *hash, char *err,
                       size_t errlen);

/*
 * Tie s->ip to s->username until s->expires, replacing any session for that address
 * (an address belongs to one person at a time). The user must exist: -1 otherwise.
 * s->created is ignored: the store sets it to clock_now().
 */
int store_session_put(struct store *st, const struct store_session *s, char *err, size_t errlen);

/* End the session for ip: 1 deleted, 0 none, -1 error. */
int store_session_delete(struct store *st, const char *ip, char *err, size_t errlen);

/* Call fn for every session, expired or not, in address order. Returns as store_user_list. */
int store_session_list(struct store *st, store_session_fn fn, void *arg, char *err, size_t errlen);

/* Delete sessions with expires <= now. Returns how many, or -1. */
int store_session_purge_expired(struct store *st, int64_t now, char *err, size_t errlen);

#endif
