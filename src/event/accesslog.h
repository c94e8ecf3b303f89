/*
 * accesslog.h -- the access log: one record per request (requirement F5).
 *
 * Worker threads fill a struct access_record on the request path and call
 * accesslog_submit, which packs it into a bounded queue (event/queue.h) and
 * returns at once: a worker never waits on the disk (STYLE.md rule 14). One
 * writer thread takes records off the queue and writes them, buffered, to up
 * to two files: JSON lines (one object per line) and Squid's native
 * access.log format, so existing Squid log tools keep working. Both formats,
 * every field and rotation are described in docs/logging.md.
 *
 * Invariants:
 *  - accesslog_submit never blocks and never allocates. When the queue is
 *    full the record is dropped and counted (accesslog_stats.dropped).
 *  - Strings are copied at submit, truncated at the ACCESSLOG_*_MAX byte
 *    lengths below (on a UTF-8 character boundary); a truncated field is
 *    marked in the JSON line ("url_truncated": true).
 *  - The writer flushes at least once a second, before a rotation and at
 *    close. A failed write loses what was buffered for that file, is counted
 *    (write_errors) and logged once until writing works again; the proxy
 *    carries on.
 *  - Files are rotated when the next line would take them past max_size, and
 *    on accesslog_reopen: FILE -> FILE.1 -> ... -> FILE.keep; the oldest is
 *    deleted.
 */
#ifndef HAVEN_EVENT_ACCESSLOG_H
#define HAVEN_EVENT_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

struct accesslog;

/* Longest copy kept of each string field, in bytes (longer ones are truncated and marked). */
#define ACCESSLOG_CLIENT_MAX 64
#define ACCESSLOG_DEVICE_MAX 128
#define ACCESSLOG_USER_MAX 128
#define ACCESSLOG_GROUP_MAX 64
#define ACCESSLOG_METHOD_MAX 32
#define ACCESSLOG_URL_MAX 2048
#define ACCESSLOG_CATEGORIES_MAX 512 /* all names together, one byte between names */
#define ACCESSLOG_ACTION_MAX 16
#define ACCESSLOG_TIER_MAX 32
#define ACCESSLOG_RULE_MAX 256
#define ACCESSLOG_REASON_MAX 20480 /* a pupil's whole concern (16 KiB form) fits */
#define ACCESSLOG_REF_MAX 64
#define ACCESSLOG_SAFE_SEARCH_MAX 128
#define ACCESSLOG_SEARCH_MAX 512

/* Default number of records the queue holds when accesslog_config.queue_len is 0. */
#define ACCESSLOG_QUEUE_DEFAULT 8192

/*
 * One request, as the worker saw it. Strings are the caller's and are only
 * read during accesslog_submit; NULL means empty. Nothing here is freed by
 * the access log.
 */
struct access_record {
    int64_t time_ms;               /* when the request arrived, ms since the epoch (UTC) */
    const char *client;            /* client address as text: "10.0.0.5", "2001:db8::5" */
    const char *device;            /* device name, if known */
    const char *user;              /* user name, if identified */
    const char *group;             /* policy group the request was decided for */
    const char *method;            /* "GET", "CONNECT", ... */
    const char *url;               /* canonical URL; "host:port" for CONNECT */
    const char *const *categories; /* names of every category the URL is in */
    size_t ncategories;            /* entries in categories */
    const char *action;            /* "allow", "warn" or "block" */
    const char *tier;              /* policy tier that decided: "locked", "category", ... */
    const char *rule;              /* the rule that decided: "policy.conf:42: block games" */
    const char *reason;            /* the reason in plain English, as on the block page */
    const char *ref;               /* reference ID shown to the user (block page) */
    int status;                    /* HTTP status sent to the client; 0 if none */
    uint64_t bytes_in;             /* bytes received from the client (request, upload) */
    uint64_t bytes_out;            /* bytes sent to the client (response, download) */
    int64_t duration_ms;           /* from arrival to the last byte */
    const char *safe_search;       /* rewrite applied, e.g. "google:safe=active"; or empty */
    const char *search;            /* search terms in the URL (http/search.h); or empty */
    int circumvention;             /* 1: an attempt to get round the filter */
    int tunnel;                    /* 1: a CONNECT tunnel */
    uint32_t count; /* allowed requests this record stands for, in the records' hourly roll-ups
                       (the DNS filter sums its queries); 0 = 1. The access log ignores it. */
};

struct accesslog_config {
    const char *json_path;  /* JSON-lines file; NULL or "" for none */
    const char *squid_path; /* Squid native format file; NULL or "" for none */
    size_t queue_len;       /* records the queue holds (0: ACCESSLOG_QUEUE_DEFAULT); the
                               queue takes about queue_len KiB */
    uint64_t max_size;      /* rotate a file before it passes this many bytes; 0: never */
    int keep;               /* rotated files kept (FILE.1 .. FILE.keep); 0: on reopen, just
                               reopen FILE (for an external logrotate); needs >= 1 with
                               max_size */
};

struct accesslog_stats {
    uint64_t written;      /* records taken off the queue and written out */
    uint64_t dropped;      /* records refused by accesslog_submit because the queue was full */
    uint64_t rotations;    /* files rotated or reopened (each file counts) */
    uint64_t write_errors; /* failed writes, opens and renames (buffered lines are lost) */
};

/*
 * Open (append, create with mode 0640) the configured files and start the
 * writer thread. With neither file configured, returns a log that accepts
 * and ignores every record. Returns NULL with a message in err when a file
 * cannot be opened or the configuration is inconsistent. Free with
 * accesslog_close. Call before serving (allocates with xmalloc).
 */
struct accesslog *accesslog_open(const struct accesslog_config *cfg, char *err, size_t errlen);

/*
 * Copy r into the queue. Any thread; never blocks. Returns 0, or -1 when the
 * queue is full: the record is dropped and counted. al may be NULL (no log):
 * returns 0. Must not be called once accesslog_close has begun.
 */
int accesslog_submit(struct accesslog *al, const struct access_record *r);

/*
 * Ask the writer to rotate every file (SIGUSR1): FILE.(keep-1) -> FILE.keep,
 * ..., FILE -> FILE.1, then open a new FILE (with keep 0: close and reopen
 * FILE). Returns at once; any thread. Records submitted after this returns
 * go to the new files; records still queued from before may too.
 */
void accesslog_reopen(struct accesslog *al);

/*
 * Hold (hold = 1) or release (0) the writer. Holding returns once the writer
 * has flushed and stopped taking records; submitted records stay queued, so
 * a full queue drops. For tests and maintenance; accesslog_close releases it.
 */
void accesslog_hold(struct accesslog *al, int hold);

/* Counters so far (each read atomically; not a consistent snapshot of all four). */
void accesslog_stats(const struct accesslog *al, struct accesslog_stats *st);

/*
 * Write everything queued, flush, stop the writer and close the files. No
 * thread may submit once this has begun. al may be NULL.
 */
void accesslog_close(struct accesslog *al);

#endif
