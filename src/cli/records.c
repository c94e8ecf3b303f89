/*
 * records.c -- `haven alerts`, `activity`, `report`, `purge` and `sar`: the safeguarding
 * records in the store (store/store.h), read from the command line by the DSL.
 *
 * Every command opens the same database as `haven users` and `haven serve` (DATA_DIR/
 * users.sqlite) and migrates it, so it works on a database an older haven made. Times on
 * the command line are local (TZ) unless they say Z or an offset; tables print local time,
 * JSON prints ms since the epoch and ISO 8601 UTC.
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "config/config.h"
#include "ident/roster.h"
#include "monitor/library.h"
#include "store/store.h"

#define RECORDS_HOUR_MS 3600000LL
#define RECORDS_MAX_HOURS (31 * 24)
#define RECORDS_REPORT_TOP 10
#define RECORDS_REPORT_DAYS 30

static const char alerts_usage[] =
    "usage: haven alerts list [--since TIME] [--until TIME] [--user NAME] [--open] [--json]\n"
    "       haven alerts show ID [--json]\n"
    "       haven alerts resolve ID --outcome TEXT [--false-positive] [--by NAME]\n"
    "Every command takes --db FILE (default: $HAVEN_USERS_DB, else var/users.sqlite).\n"
    "TIME: 2026-11-29, 2026-11-29T10:00, 2026-11-29T10:00:00Z, or 30m, 24h, 7d ago.\n"
    "See docs/records.md.\n";

static const char activity_usage[] =
    "usage: haven activity USER [--around TIME] [--hours N] [--json] [--db FILE]\n"
    "Shows USER's events from TIME - N hours to TIME + N hours (default: around now, N = 1),\n"
    "then the hourly summaries of allowed traffic in that window.\n"
    "TIME: 2026-11-29, 2026-11-29T10:00, 2026-11-29T10:00:00Z, or 30m, 24h, 7d ago.\n";

static const char report_usage[] =
    "usage: haven report [--since TIME] [--until TIME] [--json] [--db FILE]\n"
    "A summary for the DSL and governors (default: the last 30 days).\n"
    "TIME: 2026-11-29, 2026-11-29T10:00, 2026-11-29T10:00:00Z, or 30m, 24h, 7d ago.\n";

static const char purge_usage[] =
    "usage: haven purge [--config FILE] [--db FILE] [--dry-run]\n"
    "Deletes what is past the retain-* periods of the configuration (default\n"
    "demo/haven.conf), from its data-dir's users.sqlite unless --db FILE is given.\n";

static const char sar_usage[] =
    "usage: haven sar USER -o FILE [--db FILE]\n"
    "Writes everything haven holds about USER to FILE as one JSON document (- = standard\n"
    "output). Exit 1 when nothing is held.\n";

struct records_opts {
    const char *db, *config, *since, *until, *around, *hours, *outcome, *by, *output;
    char *user; /* lower-cased in place by records_check_user */
    int json, open_only, false_positive, dry_run;
    char *pos[2];
};

enum {
    REC_OPT_DB = 'd',
    REC_OPT_CONFIG = 'c',
    REC_OPT_SINCE = 's',
    REC_OPT_UNTIL = 'u',
    REC_OPT_USER = 'U',
    REC_OPT_OPEN = 'O',
    REC_OPT_JSON = 'j',
    REC_OPT_AROUND = 'a',
    REC_OPT_HOURS = 'H',
    REC_OPT_OUTCOME = 'm',
    REC_OPT_FALSE_POSITIVE = 'f',
    REC_OPT_BY = 'b',
    REC_OPT_OUTPUT = 'o',
    REC_OPT_DRY_RUN = 'r',
    REC_OPT_HELP = 'h',
};

static const struct option records_options[] = {
    {"db", required_argument, NULL, REC_OPT_DB},
    {"config", required_argument, NULL, REC_OPT_CONFIG},
    {"since", required_argument, NULL, REC_OPT_SINCE},
    {"until", required_argument, NULL, REC_OPT_UNTIL},
    {"user", required_argument, NULL, REC_OPT_USER},
    {"open", no_argument, NULL, REC_OPT_OPEN},
    {"json", no_argument, NULL, REC_OPT_JSON},
    {"around", required_argument, NULL, REC_OPT_AROUND},
    {"hours", required_argument, NULL, REC_OPT_HOURS},
    {"outcome", required_argument, NULL, REC_OPT_OUTCOME},
    {"false-positive", no_argument, NULL, REC_OPT_FALSE_POSITIVE},
    {"by", required_argument, NULL, REC_OPT_BY},
    {"output", required_argument, NULL, REC_OPT_OUTPUT},
    {"dry-run", no_argument, NULL, REC_OPT_DRY_RUN},
    {"help", no_argument, NULL, REC_OPT_HELP},
    {NULL, 0, NULL, 0},
};

static void records_set(int c, char *value, void *arg)
{
    struct records_opts *o = arg;

    switch (c) {
    case REC_OPT_DB:
        o->db = value;
        break;
    case REC_OPT_CONFIG:
        o->config = value;
        break;
    case REC_OPT_SINCE:
        o->since = value;
        break;
    case REC_OPT_UNTIL:
        o->until = value;
        break;
    case REC_OPT_USER:
        o->user = value;
        break;
    case REC_OPT_OPEN:
        o->open_only = 1;
        break;
    case REC_OPT_JSON:
        o->json = 1;
        break;
    case REC_OPT_AROUND:
        o->around = value;
        break;
    case REC_OPT_HOURS:
        o->hours = value;
        break;
    case REC_OPT_OUTCOME:
        o->outcome = value;
        break;
    case REC_OPT_FALSE_POSITIVE:
        o->false_positive = 1;
        break;
    case REC_OPT_BY:
        o->by = value;
        break;
    case REC_OPT_OUTPUT:
        o->output = value;
        break;
    case REC_OPT_DRY_RUN:
        o->dry_run = 1;
        break;
    }
}

static int records_parse(int argc, char **argv, const char *usage, const char *allowed, int npos,
                         const char *what, struct records_opts *o)
{
    memset(o, 0, sizeof(*o));
    return cli_options(argc, argv, usage, ":ho:", records_options, allowed, records_set, o, o->pos,
                       npos, what);
}

/* The database `haven users` uses when --db is not given. */
static const char *records_default_db(void)
{
    const char *env = getenv("HAVEN_USERS_DB");

    return env && *env ? env : HAVEN_SOURCE_DIR "/var/users.sqlite";
}

/* Open and migrate the database; prints the reason and returns NULL on failure. */
static struct store *records_open(const char *path)
{
    struct store *st;
    char err[1024];

    if (access(path, F_OK) != 0) {
        fprintf(stderr, "haven: %s: %s (give --db FILE: the users.sqlite in haven's data-dir)\n",
                path, strerror(errno));
        return NULL;
    }
    st = store_open(path, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "haven: %s\n", err);
        return NULL;
    }
    if (store_migrate(st, err, sizeof(err)) < 0) {
        fprintf(stderr, "haven: %s\n", err);
        store_close(st);
        return NULL;
    }
    return st;
}

/*
 * TIME from the command line to ms since the epoch: an ISO 8601 date or time (local unless
 * it has Z or an offset), or a whole number of minutes, hours or days ago ("30m", "24h",
 * "7d"). Returns 0, or -1 if s is not such a time.
 */
static int records_time(const char *s, int64_t now_ms, int64_t *ms)
{
    int64_t t, n = 0, unit;
    size_t len = strlen(s), i;
    int local;
    struct tm tm;
    time_t tt;

    if (len >= 2 && len <= 7) {
        for (i = 0; i + 1 < len && s[i] >= '0' && s[i] <= '9'; i++)
            n = n * 10 + (s[i] - '0');
        if (i + 1 == len && i > 0) {
            switch (s[i]) {
            case 'm':
                unit = 60000;
                break;
            case 'h':
                unit = RECORDS_HOUR_MS;
                break;
            case 'd':
                unit = 24 * RECORDS_HOUR_MS;
                break;
            default:
                return -1;
            }
            *ms = now_ms - n * unit;
            return 0;
        }
    }
    if (clock_parse_iso8601(s, &t, &local) < 0)
        return -1;
    if (local) {
        /* A wall-clock reading in the local zone (TZ): let mktime find its offset. */
        tt = (time_t)t;
        if (!gmtime_r(&tt, &tm))
            return -1;
        tm.tm_isdst = -1;
        tt = mktime(&tm);
        if (tt == (time_t)-1)
            return -1;
        t = (int64_t)tt;
    }
    *ms = t * 1000;
    return 0;
}

/* Parse an optional TIME option into *ms (unchanged when absent); CLI_EXIT_USAGE if bad. */
static int records_time_opt(const char *usage, const char *name, const char *value, int64_t now_ms,
                            int64_t *ms)
{
    if (!value)
        return 0;
    if (records_time(value, now_ms, ms) < 0)
        return cli_usage_error(usage,
                               "%s '%s' is not a time (2026-11-29, 2026-11-29T10:00, "
                               "2026-11-29T10:00:00Z, 30m, 24h or 7d)",
                               name, value);
    return 0;
}

/* "2026-11-29T10:00:00" in local time. */
static void records_local(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;

    if (!localtime_r(&t, &tm) || strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(out, size, "%lld", (long long)ms);
}

static json_t *records_json_time(int64_t ms)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    char buf[40];
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return json_null();
    return json_string(buf);
}

/* Print o (taken) on one line. */
static void records_print_json(json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);

    if (text)
        puts(text);
    free(text);
    json_decref(o);
}

static const char *records_str(const char *s)
{
    return s && *s ? s : "-";
}

/* A username from the command line, checked and lower-cased; 0 or CLI_EXIT_USAGE. */
static int records_check_user(const char *usage, char *user)
{
    const char *why;

    if (roster_username_check(user, &why) < 0)
        return cli_usage_error(usage, "'%s': %s", user, why);
    return 0;
}

/* An alert id from the command line; 0 or CLI_EXIT_USAGE. */
static int records_alert_id(const char *usage, const char *s, int64_t *id)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0)
        return cli_usage_error(usage,
                               "'%s' is not an alert id (a number from `haven alerts "
                               "list`)",
                               s);
    *id = v;
    return 0;
}

/* ---------------------------------------------------------------- alerts */

static int alerts_list_one(void *arg, const struct store_alert *a)
{
    struct store *st = arg;
    char when[32], err[1024];
    json_t *o;

    if (st) {
        o = store_alert_json(st, a, err, sizeof(err));
        if (!o) {
            fprintf(stderr, "haven: %s\n", err);
            return -1;
        }
        records_print_json(o);
        return 0;
    }
    records_local(a->time_ms, when, sizeof(when));
    printf("%-6lld %-19s %-16s %-12s %-20s %3d %-9s %s\n", (long long)a->id, when,
           records_str(a->username), records_str(a->group_name), a->theme, a->severity,
           a->false_positive ? "false-pos" : a->status, records_str(a->phrase));
    return 0;
}

static int alerts_list(int argc, char **argv)
{
    struct records_opts o;
    struct store_alert_query q = {0};
    struct store *st;
    int64_t now = clock_now_ms();
    char err[1024];
    int rc;

    rc = records_parse(argc, argv, alerts_usage, "dsuUOj", 0, "", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (records_time_opt(alerts_usage, "--since", o.since, now, &q.since_ms) != 0 ||
        records_time_opt(alerts_usage, "--until", o.until, now, &q.until_ms) != 0)
        return CLI_EXIT_USAGE;
    if (o.user && records_check_user(alerts_usage, o.user) != 0)
        return CLI_EXIT_USAGE;
    q.username = o.user;
    q.open_only = o.open_only;
    st = records_open(o.db ? o.db : records_default_db());
    if (!st)
        return 1;
    if (!o.json)
        printf("%-6s %-19s %-16s %-12s %-20s %3s %-9s %s\n", "ID", "TIME", "USER", "GROUP", "THEME",
               "SEV", "STATUS", "PHRASE");
    err[0] = '\0';
    rc = store_alert_list(st, &q, alerts_list_one, o.json ? st : NULL, err, sizeof(err));
    if (rc != 0 && err[0])
        fprintf(stderr, "haven: %s\n", err);
    store_close(st);
    return rc != 0 ? 1 : 0;
}

static int alerts_show_delivery(void *arg, const struct store_delivery *d)
{
    char when[32];

    (void)arg;
    records_local(d->updated_ms, when, sizeof(when));
    printf("  %-8s %-32s %-8s attempts %d, updated %s%s%s\n", d->channel, records_str(d->target),
           d->status, d->attempts, when, d->last_error ? ": " : "",
           d->last_error ? d->last_error : "");
    return 0;
}

static int alerts_show(int argc, char **argv)
{
    struct records_opts o;
    struct store_alert a = {0};
    struct store *st = NULL;
    char err[1024], when[32];
    int64_t id = 0;
    int rc, found;
    json_t *j;

    rc = records_parse(argc, argv, alerts_usage, "dj", 1, "an alert id", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (records_alert_id(alerts_usage, o.pos[0], &id) != 0)
        return CLI_EXIT_USAGE;
    rc = 1;
    st = records_open(o.db ? o.db : records_default_db());
    if (!st)
        goto out;
    found = store_alert_get(st, id, &a, err, sizeof(err));
    if (found < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    if (found == 0) {
        fprintf(stderr, "haven: no alert %lld\n", (long long)id);
        goto out;
    }
    if (o.json) {
        j = store_alert_json(st, &a, err, sizeof(err));
        if (!j) {
            fprintf(stderr, "haven: %s\n", err);
            goto out;
        }
        records_print_json(j);
        rc = 0;
        goto out;
    }
    records_local(a.time_ms, when, sizeof(when));
    printf("alert %lld\n", (long long)a.id);
    printf("time:       %s\n", when);
    printf("user:       %s (group %s)\n", records_str(a.username), records_str(a.group_name));
    printf("ip:         %s\n", records_str(a.ip));
    printf("device:     %s\n", records_str(a.device));
    printf("theme:      %s, severity %d (%s)\n", a.theme, a.severity,
           library_theme_find(a.theme) >= 0 ? library_theme_4c(library_theme_find(a.theme))
                                            : "unknown theme");
    printf("language:   %s\n", records_str(a.lang));
    printf("source:     %s\n", records_str(a.source));
    printf("phrase:     %s\n", records_str(a.phrase));
    printf("excerpt:    %s\n", records_str(a.excerpt));
    printf("url:        %s\n", records_str(a.url));
    printf("sent:       %s\n",
           a.suppressed ? "no (a repeat within the de-duplication window)" : "yes");
    printf("status:     %s\n", a.status);
    if (a.outcome) {
        records_local(a.resolved_ms, when, sizeof(when));
        printf("outcome:    %s%s\n", a.outcome, a.false_positive ? " (false positive)" : "");
        printf("resolved:   %s by %s\n", when, records_str(a.resolved_by));
    }
    printf("deliveries:\n");
    if (store_delivery_list(st, a.id, alerts_show_delivery, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    rc = 0;
out:
    store_alert_cleanup(&a);
    store_close(st);
    return rc;
}

static int alerts_resolve(int argc, char **argv)
{
    struct records_opts o;
    struct store *st = NULL;
    char err[1024];
    int64_t id = 0;
    int rc, done;

    rc = records_parse(argc, argv, alerts_usage, "dmfb", 1, "an alert id", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (records_alert_id(alerts_usage, o.pos[0], &id) != 0)
        return CLI_EXIT_USAGE;
    if (!o.outcome || !*o.outcome)
        return cli_usage_error(alerts_usage, "alerts resolve needs --outcome TEXT");
    rc = 1;
    st = records_open(o.db ? o.db : records_default_db());
    if (!st)
        goto out;
    done = store_alert_resolve(st, id, o.outcome, o.false_positive, o.by && *o.by ? o.by : NULL,
                               err, sizeof(err));
    if (done < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    if (done == 0) {
        fprintf(stderr, "haven: no alert %lld\n", (long long)id);
        goto out;
    }
    printf("alert %lld resolved%s: %s\n", (long long)id,
           o.false_positive ? " as a false positive" : "", o.outcome);
    rc = 0;
out:
    store_close(st);
    return rc;
}

int cmd_alerts(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(alerts_usage, "alerts needs a sub-command");
    if (strcmp(argv[1], "list") == 0)
        return alerts_list(argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0)
        return alerts_show(argc - 1, argv + 1);
    if (strcmp(argv[1], "resolve") == 0)
        return alerts_resolve(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(alerts_usage, stdout);
        return 0;
    }
    return cli_usage_error(alerts_usage, "unknown alerts sub-command '%s'", argv[1]);
}

/* ---------------------------------------------------------------- activity */

struct activity_ctx {
    int json;
    int n;
};

static int activity_event(void *arg, const struct store_event *e)
{
    struct activity_ctx *c = arg;
    char when[32];
    json_t *o;

    c->n++;
    if (c->json) {
        o = store_event_json(e);
        json_object_set_new(o, "type", json_string("event"));
        records_print_json(o);
        return 0;
    }
    if (c->n == 1)
        printf("%-19s %-8s %-20s %s\n", "TIME", "KIND", "CATEGORY/THEME", "URL / SEARCH / TEXT");
    records_local(e->time_ms, when, sizeof(when));
    printf("%-19s %-8s %-20s %s", when, e->kind, records_str(e->theme ? e->theme : e->category),
           records_str(e->search ? e->search : e->url));
    if (e->excerpt)
        printf(" [\"%s\"]", e->excerpt);
    putchar('\n');
    return 0;
}

static int activity_rollup(void *arg, const struct store_rollup *r)
{
    struct activity_ctx *c = arg;
    char when[32];
    json_t *o;

    c->n++;
    if (c->json) {
        o = store_rollup_json(r);
        json_object_set_new(o, "type", json_string("rollup"));
        records_print_json(o);
        return 0;
    }
    if (c->n == 1)
        printf("\n%-19s %-40s %-16s %8s %12s\n", "HOUR", "HOST", "CATEGORY", "REQUESTS", "BYTES");
    records_local(r->hour * 1000, when, sizeof(when));
    printf("%-19s %-40s %-16s %8lld %12lld\n", when, records_str(r->host), records_str(r->category),
           (long long)r->requests, (long long)r->bytes);
    return 0;
}

int cmd_activity(int argc, char **argv)
{
    struct records_opts o;
    struct store_event_query eq = {0};
    struct store_rollup_query rq = {0};
    struct activity_ctx ce = {0}, cr = {0};
    struct store *st = NULL;
    int64_t now = clock_now_ms(), around = now, hours = 1;
    char err[1024], a[32], b[32];
    char *end;
    int rc;

    rc = records_parse(argc, argv, activity_usage, "daHj", 1, "a username", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (records_check_user(activity_usage, o.pos[0]) != 0)
        return CLI_EXIT_USAGE;
    if (records_time_opt(activity_usage, "--around", o.around, now, &around) != 0)
        return CLI_EXIT_USAGE;
    if (o.hours) {
        errno = 0;
        hours = strtoll(o.hours, &end, 10);
        if (errno != 0 || end == o.hours || *end != '\0' || hours < 1 || hours > RECORDS_MAX_HOURS)
            return cli_usage_error(activity_usage,
                                   "--hours '%s' is not a whole number from 1 to %d", o.hours,
                                   RECORDS_MAX_HOURS);
    }
    rc = 1;
    st = records_open(o.db ? o.db : records_default_db());
    if (!st)
        goto out;
    eq.username = rq.username = o.pos[0];
    eq.since_ms = rq.since_ms = around - hours * RECORDS_HOUR_MS;
    eq.until_ms = rq.until_ms = around + hours * RECORDS_HOUR_MS;
    ce.json = cr.json = o.json;
    records_local(eq.since_ms, a, sizeof(a));
    records_local(eq.until_ms, b, sizeof(b));
    if (!o.json)
        printf("activity of %s from %s to %s\n\n", o.pos[0], a, b);
    if (store_event_list(st, &eq, activity_event, &ce, err, sizeof(err)) != 0 ||
        store_rollup_list(st, &rq, activity_rollup, &cr, err, sizeof(err)) != 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    if (!o.json && ce.n == 0)
        printf("no events\n");
    if (!o.json && cr.n == 0)
        printf("%sno hourly summaries of allowed traffic\n", ce.n ? "\n" : "");
    rc = 0;
out:
    store_close(st);
    return rc;
}

/* ---------------------------------------------------------------- report */

struct report_ctx {
    int json;
    json_t *list; /* JSON: [{"key": count}] as objects */
    const char *keyname;
    int rows;          /* in the current section */
    int64_t four_c[5]; /* content, contact, conduct, commerce, unknown */
};

static const char *const report_4c[] = {"content", "contact", "conduct", "commerce", "unknown"};

static int report_row(void *arg, const char *key, int64_t count)
{
    struct report_ctx *c = arg;
    json_t *o;

    c->rows++;
    if (c->json) {
        o = json_object();
        json_object_set_new(o, c->keyname, json_string(key));
        json_object_set_new(o, "count", json_integer(count));
        json_array_append_new(c->list, o);
        return 0;
    }
    printf("  %-32s %8lld\n", *key ? key : "(none)", (long long)count);
    return 0;
}

static int report_theme(void *arg, const char *key, int64_t count)
{
    struct report_ctx *c = arg;
    int theme = library_theme_find(key);
    size_t i = 4;

    if (theme >= 0) {
        for (i = 0; i < 4; i++) {
            if (strcmp(library_theme_4c(theme), report_4c[i]) == 0)
                break;
        }
    }
    c->four_c[i] += count;
    return 0;
}

/* One section: a title and the tally of what. */
static int report_section(struct store *st, json_t *doc, struct report_ctx *c, const char *name,
                          const char *title, const char *keyname, enum store_tally what,
                          int64_t since, int64_t until, int limit)
{
    char err[1024];
    int rc;

    c->keyname = keyname;
    c->list = json_array();
    c->rows = 0;
    if (!c->json)
        printf("\n%s\n", title);
    rc = store_tally(st, what, since, until, limit, report_row, c, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "haven: %s\n", err);
        json_decref(c->list);
        return -1;
    }
    if (!c->json && c->rows == 0)
        printf("  (none)\n");
    json_object_set_new(doc, name, c->list);
    return 0;
}

int cmd_report(int argc, char **argv)
{
    struct records_opts o;
    struct report_ctx c = {0};
    struct store *st = NULL;
    int64_t now = clock_now_ms(), since = now - RECORDS_REPORT_DAYS * 24 * RECORDS_HOUR_MS,
            until = now;
    char a[32], b[32], err[1024];
    json_t *doc = NULL, *fc;
    int rc;

    rc = records_parse(argc, argv, report_usage, "dsuj", 0, "", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (records_time_opt(report_usage, "--since", o.since, now, &since) != 0 ||
        records_time_opt(report_usage, "--until", o.until, now, &until) != 0)
        return CLI_EXIT_USAGE;
    rc = 1;
    st = records_open(o.db ? o.db : records_default_db());
    if (!st)
        goto out;
    c.json = o.json;
    doc = json_object();
    json_object_set_new(doc, "since_ms", json_integer(since));
    json_object_set_new(doc, "since", records_json_time(since));
    json_object_set_new(doc, "until_ms", json_integer(until));
    json_object_set_new(doc, "until", records_json_time(until));
    records_local(since, a, sizeof(a));
    records_local(until, b, sizeof(b));
    if (!o.json)
        printf("haven report from %s to %s\n", a, b);
    if (report_section(st, doc, &c, "blocked_categories", "Top blocked categories (blocks)",
                       "category", STORE_TALLY_BLOCK_CATEGORY, since, until,
                       RECORDS_REPORT_TOP) < 0 ||
        report_section(st, doc, &c, "searches_by_theme",
                       "Searches and keyword matches by theme ((none): a search that matched "
                       "no theme)",
                       "theme", STORE_TALLY_SEARCH_THEME, since, until, 0) < 0 ||
        report_section(st, doc, &c, "users_by_alerts", "Users with most alerts", "username",
                       STORE_TALLY_ALERT_USER, since, until, RECORDS_REPORT_TOP) < 0 ||
        report_section(st, doc, &c, "alerts_by_theme", "Alerts by theme", "theme",
                       STORE_TALLY_ALERT_THEME, since, until, 0) < 0)
        goto out;
    if (store_tally(st, STORE_TALLY_ALERT_THEME, since, until, 0, report_theme, &c, err,
                    sizeof(err)) != 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    fc = json_object();
    if (!o.json)
        printf("\nAlerts by 4C risk area\n");
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(report_4c); i++) {
        if (i == 4 && c.four_c[i] == 0)
            break;
        json_object_set_new(fc, report_4c[i], json_integer(c.four_c[i]));
        if (!o.json)
            printf("  %-32s %8lld\n", report_4c[i], (long long)c.four_c[i]);
    }
    json_object_set_new(doc, "alerts_by_4c", fc);
    if (report_section(st, doc, &c, "alerts_by_outcome",
                       "Alerts by outcome (open, resolved, false positive)", "outcome",
                       STORE_TALLY_ALERT_OUTCOME, since, until, 0) < 0)
        goto out;
    if (o.json) {
        records_print_json(doc);
        doc = NULL;
    }
    rc = 0;
out:
    json_decref(doc);
    store_close(st);
    return rc;
}

/* ---------------------------------------------------------------- purge */

int cmd_purge(int argc, char **argv)
{
    struct records_opts o;
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct store_retention r;
    struct store_purged p;
    const char *cfg_path, *verb;
    char db[4096], err[1024], ev[32], ru[32], al[32];
    int64_t now = clock_now_ms();
    int rc;

    rc = records_parse(argc, argv, purge_usage, "dcr", 0, "", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc = 1;
    cfg_path = o.config ? o.config : HAVEN_SOURCE_DIR "/demo/haven.conf";
    cfg = config_load(cfg_path, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    if (o.db)
        snprintf(db, sizeof(db), "%s", o.db);
    else if ((size_t)snprintf(db, sizeof(db), "%s/users.sqlite", cfg->data_dir) >= sizeof(db)) {
        fprintf(stderr, "haven: %s: data-dir is too long\n", cfg_path);
        goto out;
    }
    st = records_open(db);
    if (!st)
        goto out;
    r.events_ms = cfg->retain_events_ms;
    r.rollups_ms = cfg->retain_rollups_ms;
    r.alerts_ms = cfg->retain_alerts_ms;
    if ((o.dry_run ? store_purge_dry : store_purge)(st, &r, now, &p, err, sizeof(err)) < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    config_format_duration(r.events_ms, ev, sizeof(ev));
    config_format_duration(r.rollups_ms, ru, sizeof(ru));
    config_format_duration(r.alerts_ms, al, sizeof(al));
    verb = o.dry_run ? "would delete" : "deleted";
    printf("%s: %s %lld events (retain-events %s)\n", db, verb, (long long)p.events, ev);
    printf("%s: %s %lld hourly roll-ups (retain-rollups %s)\n", db, verb, (long long)p.rollups, ru);
    printf("%s: %s %lld alerts and %lld deliveries (retain-alerts %s)\n", db, verb,
           (long long)p.alerts, (long long)p.deliveries, al);
    printf("%s: %s %lld expired sessions\n", db, verb, (long long)p.sessions);
    if (o.dry_run)
        printf("dry run: nothing deleted\n");
    rc = 0;
out:
    store_close(st);
    config_free(cfg);
    return rc;
}

/* ---------------------------------------------------------------- sar */

int cmd_sar(int argc, char **argv)
{
    struct records_opts o;
    struct store *st = NULL;
    char tmp[4096], err[1024];
    FILE *f = NULL;
    int rc, fd, got, made = 0;

    rc = records_parse(argc, argv, sar_usage, "do", 1, "a username", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (records_check_user(sar_usage, o.pos[0]) != 0)
        return CLI_EXIT_USAGE;
    if (!o.output)
        return cli_usage_error(sar_usage, "sar needs -o FILE");
    rc = 1;
    st = records_open(o.db ? o.db : records_default_db());
    if (!st)
        goto out;
    if (strcmp(o.output, "-") == 0) {
        f = stdout;
    } else {
        /* Written beside FILE and renamed: a failure never leaves half a document, and the
         * file is readable by its owner only (it is personal data). */
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%ld", o.output, (long)getpid()) >=
            sizeof(tmp)) {
            fprintf(stderr, "haven: %s: name too long\n", o.output);
            goto out;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0) {
            fprintf(stderr, "haven: %s: %s\n", tmp, strerror(errno));
            goto out;
        }
        made = 1;
        f = fdopen(fd, "w");
        if (!f) {
            fprintf(stderr, "haven: %s: %s\n", tmp, strerror(errno));
            close(fd);
            goto out;
        }
    }
    got = store_sar(st, o.pos[0], f, err, sizeof(err));
    if (got < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    if (got == 0) {
        fprintf(stderr, "haven: nothing is held about '%s' in %s: no file written\n", o.pos[0],
                o.db ? o.db : records_default_db());
        goto out;
    }
    if (f != stdout) {
        got = fclose(f);
        f = NULL;
        if (got != 0 || rename(tmp, o.output) != 0) {
            fprintf(stderr, "haven: %s: %s\n", o.output, strerror(errno));
            goto out;
        }
        made = 0;
        fprintf(stderr, "haven: wrote everything held about %s to %s\n", o.pos[0], o.output);
    }
    rc = 0;
out:
    if (f && f != stdout)
        fclose(f);
    if (made)
        unlink(tmp);
    store_close(st);
    return rc;
}
