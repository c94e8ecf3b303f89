/*
 * watch.h -- the safeguarding monitor's part in one proxied exchange.
 *
 * For each request the proxy reads, a struct watch (inside the exchange) holds
 * what the monitor found: the search terms of the URL are scanned when the
 * request is decided (watch_search), and the text of the response is scanned
 * as it is relayed (watch_page_*), without holding the response back. The
 * strongest finding is kept and given to the recorder with the access record
 * (watch_note).
 *
 * Ownership: the watch borrows the snapshot's match database and the worker's
 * scratch; both outlive the exchange (the connection holds the snapshot until
 * the exchange is logged). Everything the watch allocates is freed by
 * watch_page_end or watch_cleanup. Single-threaded: the worker's.
 */
#ifndef HAVEN_PROXY_WATCH_H
#define HAVEN_PROXY_WATCH_H

#include <stddef.h>

#include "monitor/match.h"
#include "policy/policy.h"

struct extract;
struct monitor_note;
struct url;

struct watch {
    int severity; /* the strongest match, 0-5 */
    int alert;    /* the severity that alerts for the group; 0: none */
    int score;    /* of the search, or of the page (the larger) */
    const struct lib_phrase *phrase;
    const char *lang;
    const char *source; /* "search" or "page" */
    char excerpt[MATCH_EXCERPT];
    /* a page being read */
    struct extract *ext;
    struct match_stream *ms;
    struct match_scratch *scratch;
    const struct policy_monitor *pm;
    const char *group;
    char host[256];
    char path[512];
};

/*
 * Scan the search terms of u (http/search.h), if it is a search, for a group with these
 * settings. Returns the score (0: not a search, or nothing found).
 */
int watch_search(struct watch *w, const struct match_db *db, struct match_scratch **scratch,
                 const struct policy_monitor *pm, const char *group, const struct url *u);

/*
 * A response is starting: read its text if the group is monitored and the body is a page
 * (content type and coding from the response's headers; either may be NULL). text_max: the
 * monitor-page-max option; 0 turns pages off.
 */
void watch_page_start(struct watch *w, const struct match_db *db, struct match_scratch **scratch,
                      const struct policy_monitor *pm, const char *group, const struct url *u,
                      const char *content_type, size_t ctlen, const char *coding, size_t colen,
                      size_t text_max);

/* The next bytes of the response body (de-chunked). Cheap when no page is being read. */
void watch_page_data(struct watch *w, const char *data, size_t len);

/* The response is over (complete or not): scan what is left and keep the verdict. */
void watch_page_end(struct watch *w);

/* The finding, for the recorder; its strings point into w and the database. */
void watch_note(const struct watch *w, struct monitor_note *out);

/* Free a page still being read (the exchange ended early). */
void watch_cleanup(struct watch *w);

#endif
