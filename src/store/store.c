/*
 * store.c -- pick a back-end and call through its table of functions.
 */
#include "common/compat.h"

#include <errno.h>
#include <jansson.h>
#include <strings.h>
#include <time.h>

#include "common/clock.h"
#include "store/store.h"

static const struct store_ops *store_ops_of(const struct store *st)
{
    return ((const struct store_base *)(const void *)st)->ops;
}

struct store *store_open(const char *path, char *err, size_t errlen)
{
    /* PostgreSQL ("postgresql://...") will be chosen here; today every path is SQLite. */
    return sqlite_store_ops.open(path, err, errlen);
}

void store_close(struct store *st)
{
    if (!st)
        return;
    store_ops_of(st)->close(st);
}

const char *store_backend_name(const struct store *st)
{
    return store_ops_of(st)->name;
}

int store_migrate(struct store *st, char *err, size_t errlen)
{
    return store_ops_of(st)->migrate(st, err, errlen);
}

int store_schema_version(struct store *st, int *version, char *err, size_t errlen)
{
    return store_ops_of(st)->schema_version(st, version, err, errlen);
}

int store_users_version(struct store *st, int64_t *version, char *err, size_t errlen)
{
    return store_ops_of(st)->users_version(st, version, err, errlen);
}

int store_begin(struct store *st, char *err, size_t errlen)
{
    return store_ops_of(st)->begin(st, err, errlen);
}

int store_commit(struct store *st, char *err, size_t errlen)
{
    return store_ops_of(st)->commit(st, err, errlen);
}

void store_rollback(struct store *st)
{
    store_ops_of(st)->rollback(st);
}

enum store_put store_user_put(struct store *st, const struct store_user *u, char *err,
                              size_t errlen)
{
    return store_ops_of(st)->user_put(st, u, err, errlen);
}

int store_user_get(struct store *st, const char *username, struct store_user *out, char *err,
                   size_t errlen)
{
    return store_ops_of(st)->user_get(st, username, out, err, errlen);
}

void store_user_cleanup(struct store_user *u)
{
    free((char *)(uintptr_t)u->username);
    free((char *)(uintptr_t)u->group_name);
    free((char *)(uintptr_t)u->display_name);
    free((char *)(uintptr_t)u->password_hash);
    memset(u, 0, sizeof(*u));
}

int store_user_delete(struct store *st, const char *username, char *err, size_t errlen)
{
    return store_ops_of(st)->user_delete(st, username, err, errlen);
}

int store_user_list(struct store *st, store_user_fn fn, void *arg, char *err, size_t errlen)
{
    return store_ops_of(st)->user_list(st, fn, arg, err, errlen);
}

int store_set_password(struct store *st, const char *username, const char *hash, char *err,
                       size_t errlen)
{
    return store_ops_of(st)->set_password(st, username, hash, err, errlen);
}

int store_session_put(struct store *st, const struct store_session *s, char *err, size_t errlen)
{
    return store_ops_of(st)->session_put(st, s, err, errlen);
}

int store_session_delete(struct store *st, const char *ip, char *err, size_t errlen)
{
    return store_ops_of(st)->session_delete(st, ip, err, errlen);
}

int store_session_list(struct store *st, store_session_fn fn, void *arg, char *err, size_t errlen)
{
    return store_ops_of(st)->session_list(st, fn, arg, err, errlen);
}

int store_session_purge_expired(struct store *st, int64_t now, char *err, size_t errlen)
{
    return store_ops_of(st)->session_purge_expired(st, now, err, errlen);
}

/* ---------------------------------------------------------------- safeguarding records */

int store_event_add(struct store *st, const struct store_event *e, char *err, size_t errlen)
{
    return store_ops_of(st)->event_add(st, e, err, errlen);
}

int store_event_list(struct store *st, const struct store_event_query *q, store_event_fn fn,
                     void *arg, char *err, size_t errlen)
{
    return store_ops_of(st)->event_list(st, q, fn, arg, err, errlen);
}

int store_rollup_add(struct store *st, const struct store_rollup *r, char *err, size_t errlen)
{
    return store_ops_of(st)->rollup_add(st, r, err, errlen);
}

int store_rollup_list(struct store *st, const struct store_rollup_query *q, store_rollup_fn fn,
                      void *arg, char *err, size_t errlen)
{
    return store_ops_of(st)->rollup_list(st, q, fn, arg, err, errlen);
}

int64_t store_alert_add(struct store *st, const struct store_alert *a, char *err, size_t errlen)
{
    return store_ops_of(st)->alert_add(st, a, err, errlen);
}

int store_alert_get(struct store *st, int64_t id, struct store_alert *out, char *err, size_t errlen)
{
    return store_ops_of(st)->alert_get(st, id, out, err, errlen);
}

void store_alert_cleanup(struct store_alert *a)
{
    const char **strings[] = {&a->username, &a->group_name, &a->ip,         &a->device, &a->theme,
                              &a->lang,     &a->phrase,     &a->excerpt,    &a->url,    &a->source,
                              &a->status,   &a->outcome,    &a->resolved_by};

    for (size_t i = 0; i < HAVEN_ARRAY_LEN(strings); i++)
        free((char *)(uintptr_t)*strings[i]);
    memset(a, 0, sizeof(*a));
}

int store_alert_list(struct store *st, const struct store_alert_query *q, store_alert_fn fn,
                     void *arg, char *err, size_t errlen)
{
    return store_ops_of(st)->alert_list(st, q, fn, arg, err, errlen);
}

int store_alert_resolve(struct store *st, int64_t id, const char *outcome, int false_positive,
                        const char *by, char *err, size_t errlen)
{
    return store_ops_of(st)->alert_resolve(st, id, outcome, false_positive, by, err, errlen);
}

int store_alert_recent(struct store *st, const char *username, const char *theme, int64_t since_ms,
                       int *max_severity, char *err, size_t errlen)
{
    return store_ops_of(st)->alert_recent(st, username, theme, since_ms, max_severity, err, errlen);
}

int store_delivery_put(struct store *st, const struct store_delivery *d, char *err, size_t errlen)
{
    return store_ops_of(st)->delivery_put(st, d, err, errlen);
}

int store_delivery_due(struct store *st, int64_t now_ms, store_delivery_fn fn, void *arg, char *err,
                       size_t errlen)
{
    return store_ops_of(st)->delivery_due(st, now_ms, fn, arg, err, errlen);
}

int store_delivery_list(struct store *st, int64_t alert_id, store_delivery_fn fn, void *arg,
                        char *err, size_t errlen)
{
    return store_ops_of(st)->delivery_list(st, alert_id, fn, arg, err, errlen);
}

int store_purge(struct store *st, const struct store_retention *r, int64_t now_ms,
                struct store_purged *out, char *err, size_t errlen)
{
    return store_ops_of(st)->purge(st, r, now_ms, 0, out, err, errlen);
}

int store_purge_dry(struct store *st, const struct store_retention *r, int64_t now_ms,
                    struct store_purged *out, char *err, size_t errlen)
{
    return store_ops_of(st)->purge(st, r, now_ms, 1, out, err, errlen);
}

int store_tally(struct store *st, enum store_tally what, int64_t since_ms, int64_t until_ms,
                int limit, store_tally_fn fn, void *arg, char *err, size_t errlen)
{
    return store_ops_of(st)->tally(st, what, since_ms, until_ms, limit, fn, arg, err, errlen);
}

/* ---------------------------------------------------------------- Subject Access Request */

/*
 * The SAR is written through the store_* functions, so every back-end gets it. It is
 * streamed: each record becomes a small JSON object written as it is read, so a user with a
 * year of events needs no more memory than one of them.
 */

struct store_sar_out {
    struct store *st;
    const char *username;
    FILE *f;
    int n; /* objects written in the current array */
};

static json_t *store_json_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

static void store_json_set_str(json_t *o, const char *key, const char *value)
{
    json_object_set_new(o, key, store_json_str(value));
}

/* "2026-11-29T10:00:00.250Z" from ms since the epoch. */
static json_t *store_json_time_ms(int64_t ms)
{
    char buf[48], iso[32];
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return json_null();
    snprintf(buf, sizeof(buf), "%s.%03dZ", iso, (int)(ms - (int64_t)t * 1000));
    return json_string(buf);
}

/* Set key_ms to ms and key to its ISO 8601 UTC form. */
static void store_json_set_time(json_t *o, const char *key, int64_t ms)
{
    char name[64];

    snprintf(name, sizeof(name), "%s_ms", key);
    json_object_set_new(o, name, json_integer(ms));
    json_object_set_new(o, key, store_json_time_ms(ms));
}

#define STORE_JSON_FLAGS (JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY)

/* Write o (taking it) as the next element of the array being written. */
static int store_sar_emit(struct store_sar_out *so, json_t *o)
{
    int rc;

    fputs(so->n++ ? ",\n    " : "\n    ", so->f);
    rc = json_dumpf(o, so->f, STORE_JSON_FLAGS);
    json_decref(o);
    return rc == 0 ? 0 : -1;
}

/* Write ",\n  "name": " and o (taken). */
static void store_sar_member(struct store_sar_out *so, const char *name, json_t *o)
{
    fprintf(so->f, ",\n  \"%s\": ", name);
    json_dumpf(o, so->f, STORE_JSON_FLAGS);
    json_decref(o);
}

static void store_sar_open_array(struct store_sar_out *so, const char *name)
{
    fprintf(so->f, ",\n  \"%s\": [", name);
    so->n = 0;
}

static void store_sar_close_array(struct store_sar_out *so)
{
    fputs(so->n ? "\n  ]" : "]", so->f);
}

/* Sessions are few (one per address): the walk covers them all and picks the user's. */
static int store_sar_session(void *arg, const struct store_session *s)
{
    struct store_sar_out *so = arg;
    json_t *o;

    if (strcasecmp(s->username, so->username) != 0)
        return 0;
    if (!so->f)
        return 1; /* only asked whether there is one */
    o = json_object();
    json_object_set_new(o, "ip", json_string(s->ip));
    store_json_set_time(o, "created", s->created * 1000);
    store_json_set_time(o, "expires", s->expires * 1000);
    return store_sar_emit(so, o);
}

/* The "is there one?" callbacks: stop at the first record. */
static int store_sar_stop_event(void *arg, const struct store_event *e)
{
    (void)arg;
    (void)e;
    return 1;
}

static int store_sar_stop_rollup(void *arg, const struct store_rollup *r)
{
    (void)arg;
    (void)r;
    return 1;
}

static int store_sar_stop_alert(void *arg, const struct store_alert *a)
{
    (void)arg;
    (void)a;
    return 1;
}

json_t *store_event_json(const struct store_event *e)
{
    json_t *o = json_object();

    json_object_set_new(o, "id", json_integer(e->id));
    store_json_set_time(o, "time", e->time_ms);
    store_json_set_str(o, "kind", e->kind);
    store_json_set_str(o, "username", e->username);
    store_json_set_str(o, "group", e->group_name);
    store_json_set_str(o, "ip", e->ip);
    store_json_set_str(o, "method", e->method);
    store_json_set_str(o, "url", e->url);
    store_json_set_str(o, "host", e->host);
    store_json_set_str(o, "category", e->category);
    store_json_set_str(o, "reason", e->reason);
    store_json_set_str(o, "search", e->search);
    store_json_set_str(o, "theme", e->theme);
    json_object_set_new(o, "severity", json_integer(e->severity));
    store_json_set_str(o, "phrase", e->phrase);
    store_json_set_str(o, "excerpt", e->excerpt);
    store_json_set_str(o, "ref", e->ref);
    return o;
}

json_t *store_rollup_json(const struct store_rollup *r)
{
    json_t *o = json_object();

    store_json_set_time(o, "hour", r->hour * 1000);
    store_json_set_str(o, "username", r->username);
    store_json_set_str(o, "group", r->group_name);
    store_json_set_str(o, "host", r->host);
    store_json_set_str(o, "category", r->category);
    json_object_set_new(o, "requests", json_integer(r->requests));
    json_object_set_new(o, "bytes", json_integer(r->bytes));
    return o;
}

static int store_sar_event(void *arg, const struct store_event *e)
{
    return store_sar_emit(arg, store_event_json(e));
}

static int store_sar_rollup(void *arg, const struct store_rollup *r)
{
    return store_sar_emit(arg, store_rollup_json(r));
}

static int store_json_delivery(void *arg, const struct store_delivery *d)
{
    json_t *list = arg, *o = json_object();

    store_json_set_str(o, "channel", d->channel);
    store_json_set_str(o, "target", d->target);
    store_json_set_str(o, "status", d->status);
    json_object_set_new(o, "attempts", json_integer(d->attempts));
    store_json_set_str(o, "last_error", d->last_error);
    store_json_set_time(o, "next", d->next_ms);
    store_json_set_time(o, "updated", d->updated_ms);
    json_array_append_new(list, o);
    return 0;
}

json_t *store_alert_json(struct store *st, const struct store_alert *a, char *err, size_t errlen)
{
    json_t *o = json_object(), *deliveries = json_array(), *result = NULL;

    json_object_set_new(o, "id", json_integer(a->id));
    store_json_set_time(o, "time", a->time_ms);
    store_json_set_str(o, "username", a->username);
    store_json_set_str(o, "group", a->group_name);
    store_json_set_str(o, "ip", a->ip);
    store_json_set_str(o, "device", a->device);
    store_json_set_str(o, "theme", a->theme);
    json_object_set_new(o, "severity", json_integer(a->severity));
    store_json_set_str(o, "lang", a->lang);
    store_json_set_str(o, "phrase", a->phrase);
    store_json_set_str(o, "excerpt", a->excerpt);
    store_json_set_str(o, "url", a->url);
    store_json_set_str(o, "source", a->source);
    store_json_set_str(o, "status", a->status);
    json_object_set_new(o, "suppressed", json_boolean(a->suppressed));
    store_json_set_str(o, "outcome", a->outcome);
    json_object_set_new(o, "false_positive", json_boolean(a->false_positive));
    if (a->resolved_ms) {
        store_json_set_time(o, "resolved", a->resolved_ms);
    } else {
        json_object_set_new(o, "resolved_ms", json_null());
        json_object_set_new(o, "resolved", json_null());
    }
    store_json_set_str(o, "resolved_by", a->resolved_by);
    if (store_delivery_list(st, a->id, store_json_delivery, deliveries, err, errlen) != 0)
        goto out;
    json_object_set(o, "deliveries", deliveries);
    result = o;
    o = NULL;
out:
    json_decref(deliveries);
    json_decref(o);
    return result;
}

struct store_sar_alert_ctx {
    struct store_sar_out *so;
    char *err;
    size_t errlen;
};

static int store_sar_alert(void *arg, const struct store_alert *a)
{
    struct store_sar_alert_ctx *c = arg;
    json_t *o = store_alert_json(c->so->st, a, c->err, c->errlen);

    if (!o)
        return -1;
    return store_sar_emit(c->so, o);
}

/* 1 if anything is held about the user besides the account, 0 if not, -1. */
static int store_sar_any(struct store *st, const char *username, char *err, size_t errlen)
{
    struct store_event_query eq = {.username = username, .limit = 1};
    struct store_rollup_query rq = {.username = username, .limit = 1};
    struct store_alert_query aq = {.username = username, .limit = 1};
    struct store_sar_out probe = {.st = st, .username = username};
    int r;

    r = store_session_list(st, store_sar_session, &probe, err, errlen);
    if (r != 0)
        return r;
    r = store_event_list(st, &eq, store_sar_stop_event, NULL, err, errlen);
    if (r != 0)
        return r;
    r = store_rollup_list(st, &rq, store_sar_stop_rollup, NULL, err, errlen);
    if (r != 0)
        return r;
    return store_alert_list(st, &aq, store_sar_stop_alert, NULL, err, errlen);
}

int store_sar(struct store *st, const char *username, FILE *out, char *err, size_t errlen)
{
    struct store_event_query eq = {.username = username};
    struct store_rollup_query rq = {.username = username};
    struct store_alert_query aq = {.username = username};
    struct store_sar_out so = {.st = st, .username = username, .f = out};
    struct store_sar_alert_ctx ac = {&so, err, errlen};
    struct store_user u = {0};
    json_t *o;
    int rc = -1, found, any = 1;

    found = store_user_get(st, username, &u, err, errlen);
    if (found < 0)
        goto out;
    if (!found)
        any = store_sar_any(st, username, err, errlen);
    if (any < 0)
        goto out;
    if (!any) {
        rc = 0;
        goto out;
    }

    fputs("{\n  \"subject_access_request\": ", out);
    o = json_string(username);
    json_dumpf(o, out, STORE_JSON_FLAGS);
    json_decref(o);
    store_sar_member(&so, "generated", store_json_time_ms(clock_now_ms()));
    if (found) {
        o = json_object();
        json_object_set_new(o, "username", json_string(u.username));
        json_object_set_new(o, "group", json_string(u.group_name));
        store_json_set_str(o, "display_name", u.display_name);
        json_object_set_new(o, "password_set", json_boolean(u.password_hash != NULL));
        store_json_set_time(o, "created", u.created * 1000);
        store_json_set_time(o, "updated", u.updated * 1000);
    } else {
        /* Deleted, or never had an account: the records below still name the person. */
        o = json_null();
    }
    store_sar_member(&so, "user", o);

    store_sar_open_array(&so, "sessions");
    if (store_session_list(st, store_sar_session, &so, err, errlen) != 0)
        goto out;
    store_sar_close_array(&so);
    store_sar_open_array(&so, "events");
    if (store_event_list(st, &eq, store_sar_event, &so, err, errlen) != 0)
        goto out;
    store_sar_close_array(&so);
    store_sar_open_array(&so, "rollups");
    if (store_rollup_list(st, &rq, store_sar_rollup, &so, err, errlen) != 0)
        goto out;
    store_sar_close_array(&so);
    store_sar_open_array(&so, "alerts");
    if (store_alert_list(st, &aq, store_sar_alert, &ac, err, errlen) != 0)
        goto out;
    store_sar_close_array(&so);
    fputs("\n}\n", out);
    if (fflush(out) != 0 || ferror(out)) {
        snprintf(err, errlen, "cannot write the subject access request: %s", strerror(errno));
        goto out;
    }
    rc = 1;
out:
    store_user_cleanup(&u);
    return rc;
}
