/*
 * page.h -- the bodies the proxy serves itself: block, warn, confirmation and
 * error pages, the PAC file, the technician's status page and the Prometheus
 * metrics.
 *
 * What the pages promise:
 *   - Each HTML page is one self-contained UTF-8 document: inline CSS, at most
 *     an inline SVG icon, no JavaScript, no web fonts, no request to anywhere
 *     else. They are written for students aged 5 to 18 (what happened, why,
 *     what they can do), in British English (lang="en-GB"), readable at 320px
 *     wide, with labelled form controls and a visible focus.
 *   - Every value that came from outside (URL, reason, group, school name,
 *     user name, reference, paths) is HTML-escaped, in text and in attributes.
 *   - The locked tier (IWF and the like) shows only the IWF splash text and the
 *     reference: no URL, no category, no way to ask for access.
 *
 * Every function appends to a capped struct buf (common/buf.h) and returns 0,
 * or -1 when the cap would be passed; on -1 the buffer is put back to the
 * length it had before the call (nothing half-written is left to send) and
 * its overflow flag stays set. Functions write bodies only; the proxy writes
 * the status line and headers (see the PAGE_*_TYPE and PAGE_HTML_CSP below).
 *
 * All functions may be called from any number of worker threads at once.
 */
#ifndef HAVEN_PROXY_PAGE_H
#define HAVEN_PROXY_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "dns/service.h"

#include "policy/policy.h"

struct buf;
struct tz;

/* Content types for the three kinds of body. */
#define PAGE_HTML_TYPE "text/html; charset=utf-8"
#define PAGE_PAC_TYPE "application/x-ns-proxy-autoconfig"
#define PAGE_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * A Content-Security-Policy that the HTML pages work under: nothing may load,
 * inline styles only. Forms post to whatever path the proxy gave, so
 * form-action is left open; send "Cache-Control: no-store" as well.
 */
#define PAGE_HTML_CSP                                                                              \
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"

/* Default paths the forms post to when page_info leaves them NULL or "". */
#define PAGE_REQUEST_PATH "/haven/request"
#define PAGE_CONCERN_PATH "/haven/concern"

/*
 * Form fields: both forms carry hidden "ref" and "url"; the request form's
 * textarea is "reason" ("Why do you need this page?"), the concern form's is
 * "details" ("What worries you?"). Each textarea allows PAGE_TEXT_MAX
 * characters (the browser enforces it; the proxy must check again).
 */
#define PAGE_TEXT_MAX 1000

/* Room for a reference "HVN-XXXX-XXXX" and its NUL. */
#define PAGE_REF_SIZE 16

/*
 * What the proxy knows about the request a page is about. Every string may be
 * NULL, which means the same as "". Nothing is kept after the call.
 */
struct page_info {
    const char *school;         /* "Hillside Academy"; "" shows "your school" */
    const char *url;            /* the URL asked for */
    const char *category_title; /* plain words, "Gambling"; "" falls back to category */
    const char *category;       /* policy name, "gambling" */
    const char *reason;         /* policy_explain's sentence, or an error's cause */
    const char *group;          /* "secondary" */
    const char *user;           /* signed-in user name, "" if not known */
    const char *client_ip;      /* "10.1.2.3" */
    int64_t time;               /* when, seconds since the epoch (UTC); 0: not shown */
    const struct tz *tz;        /* zone to show time in; NULL: Europe/London */
    const char *ref;            /* page_reference_id(), "HVN-7F3A-91C2" */
    int locked;                 /* locked tier: IWF splash text only */
    const char *request_action; /* request form's action; NULL: PAGE_REQUEST_PATH */
    const char *concern_action; /* concern form's action; NULL: PAGE_CONCERN_PATH */
    const char *continue_path;  /* page_warn: "/haven/continue?token=..." */
    const char *back_url;       /* page_warn: where "Go back" goes; "" explains the
                                   browser's Back button instead */
};
/*
 * The links and form actions (request_action, concern_action, continue_path,
 * back_url) are used only if they start with "/" or "http://" or "https://";
 * anything else ("javascript:...") is treated as not given.
 */

/*
 * The block page: what was blocked, why, for whom, when, the reference, a
 * Request access form, a Report a concern form, the CEOP and Report Harmful
 * Content links, and a line saying the school's internet use is monitored.
 * With info->locked, the IWF splash page instead.
 */
int page_block(struct buf *b, const struct page_info *info);

/*
 * The "Are you sure?" page for a warn verdict: the category, that the visit
 * will be recorded, "Continue to the page" (info->continue_path) and "Go
 * back". With info->locked, the IWF splash page instead (a locked verdict is
 * never a warning; this is a guard).
 */
int page_warn(struct buf *b, const struct page_info *info);

enum page_confirm_kind {
    PAGE_CONFIRM_REQUEST, /* "Your request has been sent" */
    PAGE_CONFIRM_CONCERN, /* "Thank you for telling us" */
};

/* The page after a form was posted: the reference and what happens next. */
int page_confirm(struct buf *b, const struct page_info *info, enum page_confirm_kind kind);

/*
 * A short page for an error the proxy answers itself: 400, 403 (a port or
 * tunnel that is not allowed, circumvention), 407 (sign in needed), 502 (could
 * not reach the site), 503 (busy), 504 (the site was too slow). Any other
 * status gets a general "Something went wrong". Shows info->reason as the
 * cause, and the URL and reference when given.
 */
int page_error(struct buf *b, const struct page_info *info, int status);

/*
 * The PAC file (proxy auto-configuration, JavaScript). proxy is "host:port"
 * ("haven.school.lan:3128", "192.168.1.10:3128", "[fd00::1]:3128"); direct
 * lists n domains reached without the proxy, each with its subdomains. Plain
 * host names and IPv4 literals in 10/8, 172.16/12, 192.168/16 and 127/8 (and
 * ::1) also go direct; everything else goes to the proxy with no DIRECT
 * fallback, so a stopped proxy fails closed. Domains are lower-case
 * [a-z0-9.-] with no empty label, at most 253 bytes; one leading dot is
 * allowed and ignored. Returns 0, or -1 with a message naming the bad value in
 * err (the buffer is put back) when an input is refused or the cap is hit.
 */
int page_pac(struct buf *b, const char *proxy, const char *const *direct, size_t n, char *err,
             size_t errlen);

/* The numbers on the technician's status page. */
struct page_stats {
    const char *version;     /* "0.1.0" */
    int64_t uptime;          /* seconds */
    unsigned workers;        /* worker threads */
    uint64_t connections;    /* open now */
    uint64_t requests_total; /* since start */
    uint64_t blocks_total;   /* since start */
    int64_t loaded_at;       /* when the policy snapshot in use was built; 0: never */
    int last_reload_ok;      /* the last reload: 1 worked, 0 failed, -1 none yet */
    const char *reload_msg;  /* the last reload's message ("policy.conf:12: ...") */
    uint64_t catdb_entries;  /* entries in the category database */
    const struct tz *tz;     /* zone to show times in; NULL: Europe/London */
    const char *school;      /* for the title; may be NULL */
};

/* The technician's status page (HTML). */
int page_status(struct buf *b, const struct page_stats *s);

/* One row of haven_verdicts_total. */
struct page_verdict_count {
    enum policy_action action;
    const char *category; /* policy name; NULL or "" for "no category" */
    uint64_t count;
};

enum page_upstream_error {
    PAGE_UPSTREAM_CONNECT,
    PAGE_UPSTREAM_DNS,
    PAGE_UPSTREAM_TIMEOUT,
    PAGE_UPSTREAM_RESET,
    PAGE_UPSTREAM_CERT,
    PAGE_UPSTREAM_KINDS
};

/* The numbers behind /metrics. Each (action, category) pair should appear once. */
struct page_metrics {
    uint64_t requests_total;
    const struct page_verdict_count *verdicts;
    size_t n_verdicts;
    uint64_t connections; /* gauge: open client connections */
    uint64_t upstream_errors[PAGE_UPSTREAM_KINDS];
    uint64_t upstream_reused; /* requests sent on a pooled origin connection */
    uint64_t tunnels_spliced; /* tunnels relayed by the kernel (splice) */
    uint64_t log_queue_drops;
    uint64_t reloads_ok;
    uint64_t reloads_failed;
    uint64_t tunnels;       /* gauge: open CONNECT tunnels */
    int tls;                /* HTTPS inspection is available: the tls_ numbers mean something */
    uint64_t tls_inspected; /* CONNECTs decrypted */
    uint64_t tls_leaf_hits, tls_leaf_misses, tls_mint_errors;
    /* safeguarding records (event/recorder.h) */
    uint64_t rec_events, rec_rollups, rec_dropped, rec_spooled;
    uint64_t alerts, alerts_suppressed, alert_sent, alert_retries, alert_failed;
    /* the DNS filter (dns/service.h), when it runs */
    int dns;
    uint64_t dns_answers[DNS_ANS_KINDS];
    int dns_upstreams;
    const char *dns_upstream[8]; /* IP */
    unsigned dns_upstream_port[8];
    int dns_upstream_up[8]; /* 1 while every worker finds it up */
};

/*
 * Prometheus text exposition format 0.0.4: every family has # HELP and
 * # TYPE lines; label values are escaped (backslash, double quote, newline).
 */
int page_metrics(struct buf *b, const struct page_metrics *m);

/*
 * Write a fresh random reference "HVN-XXXX-XXXX" (13 characters and a NUL)
 * to out. The characters are Crockford base32 (digits and capitals without
 * I, L, O and U), 40 random bits from libsodium's randombytes_buf.
 */
void page_reference_id(char out[PAGE_REF_SIZE]);

#endif
