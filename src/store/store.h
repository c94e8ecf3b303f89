/*
 * store.h -- haven's database: users, IP sessions and the safeguarding records
 * (events, hourly roll-ups, alerts and their deliveries).
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
 *  - Deleting a user deletes that user's sessions, and nothing else: events,
 *    roll-ups and alerts are safeguarding records that outlive the account
 *    (they name the user by username, not by a reference to the users
 *    table), so store_sar() still finds them. store_purge() is what deletes
 *    them, when their retention period has passed (docs/records.md).
 *  - Usernames in events, roll-ups and alerts match without regard to ASCII
 *    case, as in the users table.
 *  - Times of records are milliseconds since the epoch (time_ms, *_ms), except
 *    a roll-up's hour and the users' and sessions' times, which are seconds.
 *
 * Errors: functions returning int return -1 on failure with the reason in
 * err (errlen bytes), naming the database file.
 */
#ifndef HAVEN_STORE_STORE_H
#define HAVEN_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct store;
struct json_t;

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

/*
 * A record of something that happened on the network worth keeping as a row (allowed
 * traffic is kept as roll-ups instead). Strings NULL = none; in callbacks they are valid
 * only during the call.
 */
struct store_event {
    int64_t id;           /* set by the store; ignored by store_event_add */
    int64_t time_ms;      /* ms since the epoch */
    const char *kind;     /* "block", "warn", "search", "match", "request", "concern" */
    const char *username; /* NULL: not identified */
    const char *group_name, *ip, *method, *url, *host, *category, *reason;
    const char *search;                 /* search terms */
    const char *theme;                  /* keyword match: theme name */
    int severity;                       /* 0 none, 1-5 */
    const char *phrase, *excerpt, *ref; /* matched phrase, matched text with surrounding words,
                                           block reference id */
};
typedef int (*store_event_fn)(void *arg, const struct store_event *e);

/* Which events store_event_list walks: NULL/0 = any; until is exclusive; limit 0 = all. */
struct store_event_query {
    const char *username;
    int64_t since_ms, until_ms;
    const char *kind;
    int limit;
};

/* Allowed traffic of one user to one host in one category in one hour. */
struct store_rollup {
    int64_t hour; /* seconds since the epoch, a multiple of 3600 */
    const char *username, *group_name, *host, *category;
    int64_t requests, bytes;
};
typedef int (*store_rollup_fn)(void *arg, const struct store_rollup *r);

/* Which roll-ups store_rollup_list walks: those whose hour overlaps [since_ms, until_ms)
 * (0 = unbounded), of username (NULL = any); limit 0 = all. */
struct store_rollup_query {
    const char *username;
    int64_t since_ms, until_ms;
    int limit;
};

/* A safeguarding alert raised by the monitor, and what the DSL decided about it. */
struct store_alert {
    int64_t id; /* set by store_alert_add */
    int64_t time_ms;
    const char *username, *group_name, *ip, *device; /* device may be NULL */
    const char *theme;
    int severity; /* 1-5 */
    const char *lang, *phrase, *excerpt, *url;
    const char *source;  /* "search" or "page" */
    const char *status;  /* "open" or "resolved"; store_alert_add stores "open" */
    const char *outcome; /* NULL until resolved */
    int false_positive;
    int64_t resolved_ms;
    const char *resolved_by;
    int suppressed; /* 1: recorded but not sent (a duplicate within the de-dup window) */
};
typedef int (*store_alert_fn)(void *arg, const struct store_alert *a);

/* Which alerts store_alert_list walks: 0/NULL = any; until is exclusive; limit 0 = all. */
struct store_alert_query {
    int64_t since_ms, until_ms;
    const char *username;
    int open_only;
    int limit;
};

/* One channel's attempt to send one alert to one target. */
struct store_delivery {
    int64_t alert_id;
    const char *channel; /* "email", "webhook", "syslog", "digest" */
    const char *target;  /* an address, a URL, "" */
    const char *status;  /* "pending", "sent", "failed" */
    int attempts;
    const char *last_error; /* NULL: none */
    int64_t next_ms;        /* when to try again (pending) */
    int64_t updated_ms;     /* set by store_delivery_put */
};
typedef int (*store_delivery_fn)(void *arg, const struct store_delivery *d);

/* Retention periods in ms; 0 keeps that class for ever. */
struct store_retention {
    int64_t events_ms, rollups_ms, alerts_ms;
};

/* What store_purge deleted (or, dry, would delete). */
struct store_purged {
    int64_t events, rollups, alerts, deliveries, sessions;
};

/* What store_tally counts, over records in [since_ms, until_ms). */
enum store_tally {
    STORE_TALLY_BLOCK_CATEGORY, /* "block" events by category ("" = none) */
    STORE_TALLY_SEARCH_THEME,   /* "search" and "match" events by theme ("" = none) */
    STORE_TALLY_ALERT_USER,     /* alerts by username ("" = not identified) */
    STORE_TALLY_ALERT_THEME,    /* alerts by theme */
    STORE_TALLY_ALERT_OUTCOME   /* alerts by "open", "resolved", "false positive" */
};
typedef int (*store_tally_fn)(void *arg, const char *key, int64_t count);

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
    int (*users_version)(struct store *st, int64_t *version, char *err, size_t errlen);
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
    int (*event_add)(struct store *st, const struct store_event *e, char *err, size_t errlen);
    int (*event_list)(struct store *st, const struct store_event_query *q, store_event_fn fn,
                      void *arg, char *err, size_t errlen);
    int (*rollup_add)(struct store *st, const struct store_rollup *r, char *err, size_t errlen);
    int (*rollup_list)(struct store *st, const struct store_rollup_query *q, store_rollup_fn fn,
                       void *arg, char *err, size_t errlen);
    int64_t (*alert_add)(struct store *st, const struct store_alert *a, char *err, size_t errlen);
    int (*alert_get)(struct store *st, int64_t id, struct store_alert *out, char *err,
                     size_t errlen);
    int (*alert_list)(struct store *st, const struct store_alert_query *q, store_alert_fn fn,
                      void *arg, char *err, size_t errlen);
    int (*alert_resolve)(struct store *st, int64_t id, const char *outcome, int false_positive,
                         const char *by, char *err, size_t errlen);
    int (*alert_recent)(struct store *st, const char *username, const char *theme, int64_t since_ms,
                        int *max_severity, char *err, size_t errlen);
    int (*delivery_put)(struct store *st, const struct store_delivery *d, char *err, size_t errlen);
    int (*delivery_due)(struct store *st, int64_t now_ms, store_delivery_fn fn, void *arg,
                        char *err, size_t errlen);
    int (*delivery_list)(struct store *st, int64_t alert_id, store_delivery_fn fn, void *arg,
                         char *err, size_t errlen);
    int (*purge)(struct store *st, const struct store_retention *r, int64_t now_ms, int dry,
                 struct store_purged *out, char *err, size_t errlen);
    int (*tally)(struct store *st, enum store_tally what, int64_t since_ms, int64_t until_ms,
                 int limit, store_tally_fn fn, void *arg, char *err, size_t errlen);
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
#define STORE_SCHEMA_VERSION 3
int store_migrate(struct store *st, char *err, size_t errlen);
/* The schema version of the database (0: empty). */
int store_schema_version(struct store *st, int *version, char *err, size_t errlen);
/* A number that changes whenever a user or a session is added, changed or deleted (and only
 * then: writing records leaves it alone). */
int store_users_version(struct store *st, int64_t *version, char *err, size_t errlen);

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

/* ---------------------------------------------------------------- safeguarding records */

/*
 * The writer thread adds events, roll-ups and alerts in batches inside
 * store_begin/store_commit; the inserts use statements prepared once per handle.
 */

/*
 * Add one event. e->kind must be one of the kinds above and e->severity 0-5; e->id is
 * ignored. Returns 0, or -1 with the reason.
 */
int store_event_add(struct store *st, const struct store_event *e, char *err, size_t errlen);

/*
 * Call fn for each event q selects, oldest first (by time, then id); with a limit, the
 * oldest that many. Returns 0, -1, or what fn returned to stop.
 */
int store_event_list(struct store *st, const struct store_event_query *q, store_event_fn fn,
                     void *arg, char *err, size_t errlen);

/*
 * Add r->requests and r->bytes to the counts of (hour, username, host, category), making
 * the row if it is new (its group is the first one given). r->hour must be a multiple of
 * 3600; a NULL username, host or category is stored as "". Returns 0 or -1.
 */
int store_rollup_add(struct store *st, const struct store_rollup *r, char *err, size_t errlen);

/* Call fn for each roll-up q selects, by hour, then host and category. Returns as
 * store_event_list. In callbacks, username, host and category are never NULL. */
int store_rollup_list(struct store *st, const struct store_rollup_query *q, store_rollup_fn fn,
                      void *arg, char *err, size_t errlen);

/*
 * Record an alert: a->theme is required, a->severity 1-5, a->source "search", "page" or
 * NULL. Stored open and unresolved whatever a->status, a->outcome and the resolution
 * fields say. Returns the new id (> 0), or -1 with the reason.
 */
int64_t store_alert_add(struct store *st, const struct store_alert *a, char *err, size_t errlen);

/* Fetch alert id into *out: 1 found (the strings are allocated: store_alert_cleanup),
 * 0 none (*out zeroed), -1. */
int store_alert_get(struct store *st, int64_t id, struct store_alert *out, char *err,
                    size_t errlen);
/* Free the strings of an alert filled by store_alert_get and zero it. */
void store_alert_cleanup(struct store_alert *a);

/* Call fn for each alert q selects, newest first (by time, then id); with a limit, the
 * newest that many. Returns as store_event_list. */
int store_alert_list(struct store *st, const struct store_alert_query *q, store_alert_fn fn,
                     void *arg, char *err, size_t errlen);

/*
 * Resolve alert id with an outcome (required), whether it was a false positive, and who
 * resolved it (NULL: not said); resolved_ms is clock_now_ms(). Resolving twice updates the
 * outcome. Returns 1 done, 0 no such alert, -1.
 */
int store_alert_resolve(struct store *st, int64_t id, const char *outcome, int false_positive,
                        const char *by, char *err, size_t errlen);

/*
 * How many alerts (suppressed or not) there are for username (NULL: unidentified) and
 * theme at or after since_ms, with their highest severity in *max_severity (0 when none).
 * Returns the count, or -1. The alert dispatcher's de-duplication asks this.
 */
int store_alert_recent(struct store *st, const char *username, const char *theme, int64_t since_ms,
                       int *max_severity, char *err, size_t errlen);

/*
 * Insert or replace the delivery (alert_id, channel, target); updated_ms is
 * clock_now_ms(). The alert must exist, channel and status be ones listed above and target
 * not NULL. Returns 0 or -1.
 */
int store_delivery_put(struct store *st, const struct store_delivery *d, char *err, size_t errlen);

/*
 * Call fn for each pending delivery with next_ms <= now_ms, oldest next_ms first. The
 * rows are read before the first call, so fn may store_delivery_put. Returns as
 * store_event_list.
 */
int store_delivery_due(struct store *st, int64_t now_ms, store_delivery_fn fn, void *arg, char *err,
                       size_t errlen);

/* Call fn for each delivery of alert_id, by channel and target. Returns as store_event_list. */
int store_delivery_list(struct store *st, int64_t alert_id, store_delivery_fn fn, void *arg,
                        char *err, size_t errlen);

/*
 * In one transaction (a savepoint inside store_begin), delete events with time_ms, roll-ups
 * whose hour starts, and alerts (with their deliveries) with time_ms before now_ms minus
 * their retention, and sessions that have expired by now_ms. A retention of 0 keeps that
 * class. Fills *out with the counts. Returns 0 or -1 (nothing deleted).
 */
int store_purge(struct store *st, const struct store_retention *r, int64_t now_ms,
                struct store_purged *out, char *err, size_t errlen);
/* The same, but delete nothing: *out says what store_purge would delete. */
int store_purge_dry(struct store *st, const struct store_retention *r, int64_t now_ms,
                    struct store_purged *out, char *err, size_t errlen);

/*
 * Count what (see enum store_tally) over [since_ms, until_ms) (0 = unbounded), calling fn
 * with each key and count, largest count first (ties by key); limit 0 = all. Returns as
 * store_event_list.
 */
int store_tally(struct store *st, enum store_tally what, int64_t since_ms, int64_t until_ms,
                int limit, store_tally_fn fn, void *arg, char *err, size_t errlen);

/*
 * Subject Access Request: write to out one JSON document (UTF-8, indented) holding
 * everything stored about username: the user record (without the password hash: only
 * whether one is set), sessions, events, roll-ups, and alerts with their deliveries and
 * outcomes. Returns 1 written, 0 nothing is held about that user (nothing written), -1
 * with the reason (part of the document may have been written).
 */
int store_sar(struct store *st, const char *username, FILE *out, char *err, size_t errlen);

/*
 * The records as JSON objects, as the SAR writes them (also for `haven ... --json`): every
 * field, NULL strings as null, each time both as NAME_ms (ms since the epoch) and NAME
 * (ISO 8601 UTC). store_alert_json adds the alert's deliveries, so it reads the store:
 * NULL with the reason on failure. The caller owns the object (json_decref).
 */
struct json_t *store_event_json(const struct store_event *e);
struct json_t *store_rollup_json(const struct store_rollup *r);
struct json_t *store_alert_json(struct store *st, const struct store_alert *a, char *err,
                                size_t errlen);

#endif
