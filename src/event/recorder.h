/*
 * recorder.h -- the safeguarding records pipeline of `haven serve`.
 *
 * Every proxied request, with what the monitor found in it, becomes rows in
 * the store (docs/records.md): an event for blocks, warnings, access requests,
 * reported concerns, keyword matches and searches; an hourly roll-up for other
 * allowed traffic; and an alert, with its pending deliveries, when the match
 * alerts under the group's settings (alert/alert.h, docs/alerts.md).
 *
 * Worker threads call recorder_submit, which packs the record into a bounded
 * queue (event/queue.h) and returns at once. One writer thread takes records
 * in batches of up to RECORDER_BATCH and writes each batch in one transaction
 * on its own store handle; roll-ups are summed in memory and written at least
 * every RECORDER_ROLLUP_FLUSH_MS and at close. After a batch that raised an
 * alert, the writer kicks the alert dispatcher, which sends it at once.
 *
 * What becomes what (first rule that applies):
 *   action "block" -> event "block"; "warn" -> "warn";
 *   action "local" whose reason starts "request: " / "concern: " (the block
 *     page's forms, as proxy.c logs them) -> event "request" / "concern",
 *     the reason holding the text after that prefix;
 *   a note with severity > 0 -> event "match";
 *   non-empty search terms -> event "search";
 *   any other "allow" -> a roll-up; "inspect" and other "local" records ->
 *     nothing.
 *   And independently: a note with alert > 0 -> an alert.
 *
 * Invariants:
 *  - recorder_submit never blocks on the writer or the store, and never
 *    allocates. It takes the queue's short mutex, and when the queue is full,
 *    the spool's mutex for one write(2).
 *  - A record that makes an event or an alert is never dropped: refused by a
 *    full queue, it is appended to DATA_DIR/records.spool (a 4-byte length,
 *    then the packed record; one O_APPEND write per record) and the writer
 *    replays the spool when the queue is empty. A batch the store refuses is
 *    spooled the same way and retried, with a warning in the log. Allowed
 *    traffic is dropped and counted when the queue is full.
 *  - Strings are copied at submit and cut at the ACCESSLOG_*_MAX and
 *    RECORDER_*_MAX lengths, on a UTF-8 character boundary.
 *  - Replay is at least once: if haven stops in the middle of a replay, the
 *    records of that spool may be written twice after the restart.
 */
#ifndef HAVEN_EVENT_RECORDER_H
#define HAVEN_EVENT_RECORDER_H

#include <stddef.h>
#include <stdint.h>

struct access_record;
struct config;
struct tz;
struct recorder;

/* Longest copy kept of the note's strings, in bytes. */
#define RECORDER_THEME_MAX 64
#define RECORDER_PHRASE_MAX 512
#define RECORDER_LANG_MAX 16
#define RECORDER_EXCERPT_MAX 2048
#define RECORDER_SOURCE_MAX 16

#define RECORDER_QUEUE_DEFAULT 8192    /* records the queue holds */
#define RECORDER_BATCH 1000            /* records per transaction */
#define RECORDER_ROLLUP_FLUSH_MS 10000 /* roll-ups reach the store at least this often */
#define RECORDER_SPOOL "records.spool" /* in the data directory */
#define RECORDER_REPLAY "records.spool.replay"

/* What the monitor found in one request; severity 0 = nothing. Strings valid during the call. */
struct monitor_note {
    int severity; /* the strongest match after context, 0-5 */
    int alert;    /* the severity that alerts under the group's settings (alert-severity,
                     alert-themes); 0 = no alert */
    int score;
    const char *theme, *phrase, *lang, *excerpt;
    const char *source; /* "search" or "page" */
};

struct recorder_config {
    const struct config *cfg; /* outlives the recorder */
    const char *school;       /* for messages */
    const struct tz *tz;      /* school time zone for messages and the digest time; NULL = UTC */
    /* Tests only (0 in the daemon): the queue's length (0: RECORDER_QUEUE_DEFAULT), and
     * no_purge = 1 keeps the dispatcher from purging one minute after start. */
    size_t queue_len;
    int no_purge;
};

/*
 * Open DATA_DIR/users.sqlite (create + migrate), start the writer and the
 * dispatcher. A spool left by an earlier run is replayed once the writer is
 * idle. Returns the recorder, or NULL with a reason in err. Call before
 * serving (allocates with xmalloc); free with recorder_close.
 */
struct recorder *recorder_open(const struct recorder_config *rc, char *err, size_t errlen);

/*
 * Any worker thread; never waits for the writer. m may be NULL. rec may be NULL
 * (no recorder): returns 0. Returns 0, or -1 when the record was dropped (only
 * allowed-traffic records are ever dropped). A safeguarding record that the
 * spool cannot take either (disk full) is logged with log_warnx and also
 * returns -1. Must not be called once recorder_close has begun.
 */
int recorder_submit(struct recorder *rec, const struct access_record *a,
                    const struct monitor_note *m);

struct recorder_stats {
    uint64_t events;     /* event rows written */
    uint64_t rollups;    /* roll-up rows added to (one per hour, user, host, category flush) */
    uint64_t dropped;    /* allowed-traffic records refused by a full queue */
    uint64_t spooled;    /* safeguarding records written to the spool */
    uint64_t alerts;     /* alert rows written, suppressed ones included */
    uint64_t suppressed; /* of those, repeats within alert-dedup (recorded, not sent) */
    uint64_t sent;       /* deliveries that worked */
    uint64_t retries;    /* failed delivery tries that will be tried again */
    uint64_t failed;     /* deliveries given up */
};

/* Counters so far (each read atomically; not a consistent snapshot). rec may be NULL. */
void recorder_stats(const struct recorder *rec, struct recorder_stats *st);

/*
 * Tests and maintenance: hold (1) or release (0) the writer. Holding returns
 * once the writer has stopped taking records, so the queue fills and the
 * spool is used. recorder_close releases it.
 */
void recorder_hold(struct recorder *rec, int hold);

/*
 * Write what is queued and spooled, let the dispatcher finish deliveries in
 * progress (first tries, not retries), stop both threads. NULL ok.
 */
void recorder_close(struct recorder *rec);

#endif
