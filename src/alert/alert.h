/*
 * alert.h -- raising safeguarding alerts and the dispatcher that delivers them.
 *
 * Two halves, used by two threads:
 *
 *   - alert_raise() runs on the recorder's writer thread (event/recorder.h),
 *     inside its batch transaction: it records the alert, de-duplicates it
 *     against the recent alerts of the same user and theme, and creates one
 *     pending delivery row per channel. It never sends anything.
 *   - The dispatcher (alert_start) is one background thread with its own store
 *     handle. It wakes when kicked and at least once a second, sends the
 *     deliveries that are due (e-mail, webhook, syslog: deliver.h), records
 *     each outcome, retries failures with back-off, sends the daily digest at
 *     alert-digest-at school time and purges records past their retention
 *     once a day. Every send blocks, which is why it has its own thread
 *     (STYLE.md rule 14).
 *
 * Invariants:
 *   - The store is the dispatcher's only input: a delivery exists as a
 *     pending row before anything is sent, so an alert raised just before a
 *     crash is sent after the restart.
 *   - A delivery is tried at most ALERT_MAX_ATTEMPTS times, then marked
 *     "failed" with the last error; the back-off between tries is
 *     alert_backoff_ms().
 *   - The dispatcher reads the configuration it was started with and never
 *     changes it; the config must outlive the dispatcher.
 *   - Every time comes from clock_now_ms(), so tests move a fake clock.
 */
#ifndef HAVEN_ALERT_ALERT_H
#define HAVEN_ALERT_ALERT_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct store;
struct store_alert;
struct tz;
struct alert_dispatcher;

/* Tries of one delivery before it is marked "failed". */
#define ALERT_MAX_ATTEMPTS 12

/* How long one webhook POST may take, and one SMTP send. */
#define ALERT_WEBHOOK_TIMEOUT_MS 10000
#define ALERT_SMTP_TIMEOUT_MS 30000

/*
 * The wait after the attempts-th failed try (attempts >= 1): 10 s, 30 s,
 * 2 min, 10 min, 30 min, 1 h, then hourly.
 */
int64_t alert_backoff_ms(int attempts);

/* What alert_raise did. */
enum alert_raised {
    ALERT_RAISE_ERROR = -1,
    ALERT_RAISE_QUEUED,     /* recorded, deliveries pending (or no channel configured) */
    ALERT_RAISE_SUPPRESSED, /* recorded with suppressed = 1: a repeat within alert-dedup */
};

/*
 * Record alert a (a->time_ms, a->theme and a->severity 1-5 required) in st and
 * decide its deliveries under cfg, at now_ms:
 *   - when store_alert_recent(user, theme, now_ms - alert_dedup_ms) finds an
 *     alert of a severity >= a->severity, the alert is stored suppressed and
 *     nothing is sent;
 *   - otherwise pending deliveries are stored, due at now_ms: one "email" row
 *     (target: the alert-email-to addresses joined with ", ", plus
 *     alert-urgent-to for severity 5) when there is a recipient and alert-smtp
 *     is not ""; one "webhook" row per alert-webhook URL; one "syslog" row when
 *     alert-syslog is on.
 * Meant to run inside the caller's store_begin/store_commit. *id (may be NULL)
 * gets the new alert's number. Returns what it did; on error, err says why and
 * the caller rolls back.
 */
enum alert_raised alert_raise(struct store *st, const struct config *cfg,
                              const struct store_alert *a, int64_t now_ms, int64_t *id, char *err,
                              size_t errlen);

struct alert_dispatcher_config {
    const struct config *cfg; /* outlives the dispatcher */
    const char *db_path;      /* the store the recorder writes (DATA_DIR/users.sqlite) */
    const char *school;       /* for messages; NULL = none */
    const struct tz *tz;      /* school time zone (messages, digest time); NULL = UTC */
    int no_purge;             /* tests: do not run the daily purge */
};

/* Counters (each read atomically). */
struct alert_stats {
    uint64_t sent;    /* deliveries that worked */
    uint64_t retries; /* failed tries that will be tried again */
    uint64_t failed;  /* deliveries given up after ALERT_MAX_ATTEMPTS */
    uint64_t digests; /* daily digests sent */
    uint64_t purges;  /* purge runs that worked */
};

/*
 * Open the dispatcher's own store handle, read the SMTP password file (its
 * first line) and start the thread. The store must already be migrated.
 * Returns the dispatcher, or NULL with the reason ("alert-smtp-password-file
 * /x: No such file or directory"). Stop it with alert_stop. Call before serving.
 */
struct alert_dispatcher *alert_start(const struct alert_dispatcher_config *dc, char *err,
                                     size_t errlen);

/* Look at the due deliveries now, rather than at the next one-second tick. Any thread. */
void alert_kick(struct alert_dispatcher *d);

void alert_stats(const struct alert_dispatcher *d, struct alert_stats *st);

/*
 * Stop: the thread makes one last pass over the deliveries that are due and
 * have not been tried yet (first tries only; retries wait for the next start),
 * then ends; the store is closed and d freed. NULL is allowed.
 */
void alert_stop(struct alert_dispatcher *d);

#endif
