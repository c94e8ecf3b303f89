/*
 * watch.c -- scan a request's search terms and its response's text.
 *
 * A page is read only while it is worth it: the extractor stops at the
 * monitor-page-max cap, and a stream that fails (a corrupt gzip body, no
 * memory) is dropped without touching the relay. The response is never held
 * back for the scan: contextual blocking applies to searches, which are
 * scanned before the request leaves.
 */
#include "common/compat.h"

#include "event/recorder.h"
#include "http/search.h"
#include "http/url.h"
#include "monitor/extract.h"
#include "monitor/library.h"
#include "proxy/watch.h"

/* Keep r as the finding if it is stronger than what w has. */
static void watch_keep(struct watch *w, const struct match_result *r, const char *source)
{
    const struct policy_monitor *pm = w->pm;
    int alert = match_alert_severity(r, pm->alert_severity, pm->themes);
    const struct match_hit *h = NULL;

    if (r->score > w->score)
        w->score = r->score;
    if (r->nhits == 0 || alert < w->alert || (alert == w->alert && r->severity <= w->severity))
        return;
    /* The hit to report: the strongest that alerts, else the strongest. */
    for (int i = 0; i < r->nhits && !h; i++) {
        if (!alert || (pm->themes >> r->hits[i].phrase->theme & 1u))
            h = &r->hits[i];
    }
    w->alert = alert;
    w->severity = r->severity;
    w->phrase = h->phrase;
    w->lang = h->lang;
    w->source = source;
    memcpy(w->excerpt, h->excerpt, sizeof(w->excerpt));
}

static void watch_where(struct watch *w, const char *group, const struct url *u)
{
    w->group = group;
    snprintf(w->host, sizeof(w->host), "%.*s", (int)u->host_len, u->text + u->host_off);
    snprintf(w->path, sizeof(w->path), "%.*s", (int)u->path_len, u->text + u->path_off);
}

int watch_search(struct watch *w, const struct match_db *db, struct match_scratch **scratch,
                 const struct policy_monitor *pm, const char *group, const struct url *u)
{
    char terms[SEARCH_TERMS_MAX];
    struct match_result r;
    struct match_where where;

    if (!db || !pm->on || !search_terms(u, terms, sizeof(terms)) || terms[0] == '\0')
        return 0;
    if (match_scratch_ensure(scratch, db) < 0)
        return 0;
    w->pm = pm;
    watch_where(w, group, u);
    where.group = w->group;
    where.host = w->host;
    where.path = w->path;
    if (match_text(db, *scratch, terms, strlen(terms), &where, &r) < 0)
        return 0;
    watch_keep(w, &r, "search");
    return r.score;
}

void watch_page_start(struct watch *w, const struct match_db *db, struct match_scratch **scratch,
                      const struct policy_monitor *pm, const char *group, const struct url *u,
                      const char *content_type, size_t ctlen, const char *coding, size_t colen,
                      size_t text_max)
{
    enum extract_type type;
    enum extract_coding enc;

    if (!db || !pm->on || text_max == 0 || w->ext)
        return;
    type = extract_type_of(content_type, content_type ? ctlen : 0);
    enc = extract_coding_of(coding, coding ? colen : 0);
    if (type == EXTRACT_NONE || enc == EXTRACT_UNSUPPORTED)
        return;
    if (match_scratch_ensure(scratch, db) < 0)
        return;
    w->ext = extract_new(type, enc, text_max);
    w->ms = w->ext ? match_stream_open(db) : NULL;
    if (!w->ms) {
        watch_cleanup(w);
        return;
    }
    w->scratch = *scratch;
    w->pm = pm;
    watch_where(w, group, u);
}

/* Hand the extractor's text to the scanner. */
static int watch_drain(struct watch *w)
{
    size_t n;
    const char *text = extract_text(w->ext, &n);
    int rc = n > 0 ? match_stream_feed(w->ms, w->scratch, text, n) : 0;

    extract_consume(w->ext, n);
    return rc;
}

void watch_page_data(struct watch *w, const char *data, size_t len)
{
    int rc;

    if (!w->ext || len == 0)
        return;
    rc = extract_feed(w->ext, data, len);
    if (watch_drain(w) < 0 || rc < 0) {
        watch_cleanup(w); /* a scanner failure or a corrupt body: this page goes unread */
        return;
    }
    if (rc == 1)
        watch_page_end(w); /* the cap: judge what was read */
}

void watch_page_end(struct watch *w)
{
    struct match_result r;
    struct match_where where = {w->group, w->host, w->path};
    struct match_stream *ms = w->ms;

    if (!w->ext)
        return;
    if (extract_finish(w->ext) < 0 || watch_drain(w) < 0) {
        watch_cleanup(w);
        return;
    }
    w->ms = NULL;
    extract_free(w->ext);
    w->ext = NULL;
    if (match_stream_close(ms, w->scratch, &where, &r) == 0)
        watch_keep(w, &r, "page");
}

void watch_note(const struct watch *w, struct monitor_note *out)
{
    memset(out, 0, sizeof(*out));
    if (!w->phrase)
        return;
    out->severity = w->severity;
    out->alert = w->alert;
    out->score = w->score;
    out->theme = library_theme_name(w->phrase->theme);
    out->phrase = w->phrase->text;
    out->lang = w->lang;
    out->excerpt = w->excerpt;
    out->source = w->source;
}

void watch_cleanup(struct watch *w)
{
    match_stream_abort(w->ms);
    w->ms = NULL;
    extract_free(w->ext);
    w->ext = NULL;
}
