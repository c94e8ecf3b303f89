/*
 * deliver.h -- getting one safeguarding alert to the people who act on it.
 *
 * This module builds and sends; it does not decide. The dispatcher (alert.c)
 * chooses which alerts go where, de-duplicates, retries with back-off and records
 * each delivery in the store; it calls these functions from its own background
 * thread, never from a worker's event loop, because every send blocks (STYLE.md
 * rule 14).
 *
 * Channels:
 *   - e-mail: an RFC 5322 message built here, sent through the school's SMTP relay
 *     with libcurl (STARTTLS when offered, or TLS from the start with smtps://);
 *   - webhook: the alert as one JSON object, POSTed to a URL;
 *   - syslog: one line, facility auth.
 * and the daily digest, one e-mail listing the lower-severity alerts of the day.
 *
 * Invariants:
 *   - Everything that came from a pupil, a user directory or a web page (every
 *     string in struct alert_view) is treated as hostile. In a header it cannot add
 *     a header: control characters are replaced by spaces and non-ASCII text is
 *     RFC 2047-encoded (addresses keep only their ASCII). In a body it cannot forge
 *     a line: each field is kept on its own line, invalid UTF-8 becomes U+FFFD and
 *     bidirectional-override characters are dropped. Each field is capped in length.
 *   - Message bodies are quoted-printable UTF-8, so a message is 7-bit clean and no
 *     line passes 76 characters whatever the relay supports.
 *   - Times in messages are in the school's time zone when the view gives one, with
 *     the offset from UTC written out; the Date header and the JSON are UTC.
 *   - Send functions are thread-safe (one libcurl easy handle per call). The program
 *     should call curl_global_init() once at start-up, before threads exist.
 *
 * Errors come back as 0 / -1 with a one-line reason in err that names the
 * destination ("smtp://127.0.0.1:2525: connection refused"); a user name and
 * password written in a URL are never copied into a message.
 */
#ifndef HAVEN_ALERT_DELIVER_H
#define HAVEN_ALERT_DELIVER_H

#include <stddef.h>
#include <stdint.h>

struct tz;

/* One alert as delivered; strings NULL = unknown; everything is borrowed and only
 * valid during the call. */
struct alert_view {
    int64_t id; /* the alert's number in the store */
    int64_t time_ms;
    const char *school; /* school name */
    const char *username, *display_name, *group_name, *ip, *device;
    const char *theme;         /* "self-harm" */
    const char *area;          /* its 4C area: "content", "contact", "conduct", "commerce" */
    int severity;              /* 1-5 */
    const char *lang, *phrase; /* the library phrase that matched */
    const char *excerpt;       /* the matched text with surrounding words, as the pupil wrote it */
    const char *url;           /* where (the search URL or page) */
    const char *source;        /* "search" or "page" */
    const char *activity;      /* a console URL, or the `haven activity ...` command line */
    /* Added: the school's time zone for the times written in messages; NULL = UTC.
     * Not used in the JSON (which is UTC) or the syslog line. */
    const struct tz *tz;
};

struct deliver_smtp {
    const char *url;             /* smtp://host:port or smtps://host:port */
    const char *user, *password; /* NULL: no AUTH */
    const char *from;            /* "haven@school.example" or "haven <haven@school.example>" */
    long timeout_ms;             /* the whole send; 0 or less: 30 seconds */
};

/*
 * An RFC 5322 message for one alert: CRLF line ends; headers From, To, Subject,
 * Date (now_ms, UTC), Message-ID, MIME-Version and Content-Type text/plain;
 * charset=utf-8 with quoted-printable transfer encoding. Subject:
 * "[haven] Severity N THEME alert: USER", with "URGENT " in front for severity 5
 * (USER is the username, else the display name, else the IP address). The body
 * gives every field of the view in plain words, quotes the excerpt, says what to do
 * next (the activity link, "haven alerts resolve ID --outcome ...") and that the
 * message holds sensitive information about a child. to may be empty (nto 0: the
 * To header says "undisclosed-recipients:;"). Never NULL; caller frees with free().
 */
char *deliver_email_message(const struct alert_view *a, const char *from, const char *const *to,
                            int nto, int64_t now_ms);

/*
 * The daily digest: one message listing n lower-severity items, one line each
 * (time, alert number, user, group, theme, severity, phrase, URL), or saying there
 * were none. school may be NULL. A very long list is cut with "... and N more" so the
 * message stays under a few megabytes. Never NULL; caller frees with free().
 */
char *deliver_digest_message(const struct alert_view *items, size_t n, const char *school,
                             const char *from, const char *const *to, int nto, int64_t now_ms);

/*
 * Send message (as built above) to the nto recipients through the relay at
 * cfg->url; blocks for at most cfg->timeout_ms. smtp:// uses STARTTLS when the relay
 * offers it (when a password is given, the relay must offer it unless it is on
 * loopback, so the password never crosses the network in clear); smtps:// is TLS
 * from the start; either way the relay's certificate is verified against the system
 * store. The envelope sender is the address in cfg->from.
 *
 * Returns 0 when the relay accepted the message for at least one recipient, or -1
 * with the reason in err: "smtp://127.0.0.1:2525: connection refused", or the relay's
 * own reply ("smtp://relay:25: relay refused recipient <x@y>: 550 5.1.1 no such
 * user"). When it returns 0 but the relay refused some recipients, the refusals are
 * in err (and logged with log_warnx); otherwise err is set to "". err may be NULL.
 */
int deliver_smtp_send(const struct deliver_smtp *cfg, const char *const *to, int nto,
                      const char *message, char *err, size_t errlen);

/*
 * The alert as one JSON object: every field of the view under its own name (id,
 * time_ms, school, username, display_name, group_name, ip, device, theme, area,
 * severity, lang, phrase, excerpt, url, source, activity; unknown strings are null)
 * plus "time" in ISO 8601 UTC ("2026-03-03T10:30:00Z"). Invalid UTF-8 in a field
 * becomes U+FFFD. Never NULL; caller frees with free().
 */
char *deliver_json(const struct alert_view *a);

/*
 * POST json to url (http:// or https://) with Content-Type: application/json and
 * User-Agent: haven/VERSION; blocks for at most timeout_ms (0 or less: 30 seconds).
 * Redirects are not followed. Returns 0 when the receiver answers 2xx, else -1 with
 * "URL: HTTP 500" or the transport error ("URL: connection refused") in err.
 * err may be NULL.
 */
int deliver_webhook_post(const char *url, const char *json, long timeout_ms, char *err,
                         size_t errlen);

/*
 * Write the alert to syslog: ident "haven", facility LOG_AUTH, LOG_CRIT for severity
 * 5 and LOG_WARNING otherwise; the line is deliver_syslog_format()'s.
 */
void deliver_syslog(const struct alert_view *a);

/*
 * The syslog line: 'alert ID severity N THEME user U group G ip IP url URL phrase
 * "..."', unknown fields as "-", control characters removed, a '"' or '\' inside the
 * phrase escaped with '\'. Writes at most outlen bytes including the NUL (the URL is
 * shortened first); returns out.
 */
char *deliver_syslog_format(const struct alert_view *a, char *out, size_t outlen);

#endif
