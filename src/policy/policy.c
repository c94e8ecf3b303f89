/*
 * policy.c -- parse a policy file, compile it into a snapshot, decide.
 *
 * DESIGN. The file is read line by line; each line is one statement, and
 * "schedule", "list" and "group" open a block that a line "}" closes (blocks
 * do not nest). Names are resolved as they are read, so a schedule or list
 * must be defined before a group uses it; that keeps every error at the line
 * that causes it. The group and school-wide site lists are compiled into a
 * small in-memory category database (catdb), so they match hosts and URLs
 * exactly as the big lists do; a side table maps each entry's key to its
 * reason. Nothing in a snapshot changes after policy_load returns.
 */
#include "common/compat.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>

#include "catdb/build.h"
#include "catdb/catdb.h"
#include "catdb/import.h"
#include "catdb/key.h"
#include "catdb/taxonomy.h"
#include "common/lex.h"
#include "common/log.h"
#include "common/tz.h"
#include "common/xalloc.h"
#include "http/url.h"
#include "monitor/library.h"
#include "policy/policy.h"

#define POL_LINE_MAX 4096
#define POL_MAX_TOKENS 128
#define POL_MAX_WINDOWS 32
#define POL_MAX_PORTS 32
#define POL_MAX_FILE (16 * 1024 * 1024)

struct pol_window {
    uint8_t days;        /* bit 0 = Sunday */
    uint16_t start, end; /* minutes after midnight, end exclusive */
};

struct pol_schedule {
    char *name;
    struct pol_window win[POL_MAX_WINDOWS];
    int nwin;
};

struct pol_entry {
    char *text;
    char *reason;
    char *where;
};

/* A list of sites: school-wide ("list NAME { ... }") or a group's own entries. */
struct pol_list {
    char *name;
    char *reason; /* default for entries without their own */
    struct pol_entry *entries;
    size_t n, cap;
};

struct pol_rule {
    uint64_t cats[POLICY_CAT_WORDS];
    enum policy_action action;
    int schedule; /* -1: always */
    int outside;  /* the rule applies outside the schedule, not during it */
    char *where;
};

struct pol_group {
    char *name;
    char *description;
    int def; /* enum policy_action, or -1 for the policy's default */
    char *def_where;
    struct pol_rule *rules;
    size_t nrules, rules_cap;
    uint64_t allow_lists[CATDB_SET_WORDS]; /* bitsets of site lists */
    uint64_t block_lists[CATDB_SET_WORDS];
    int has_site_lists;       /* any allow or block list: worth a lookup */
    int own_allow, own_block; /* this group's own site lists, or -1 */
    int safe_search;
    enum policy_youtube youtube;
    int unsafe_search_block;
    int block_ip_hosts;
    uint16_t ports[POL_MAX_PORTS];
    int nports; /* 0: any port */
    char *ports_where;
    int inspect;                           /* HTTPS inspection on */
    int no_sni_block;                      /* block TLS hellos without a server name */
    uint16_t connect_ports[POL_MAX_PORTS]; /* for HTTPS (CONNECT); default 443 */
    int nconnect;                          /* 0: any port */
    char *connect_where;                   /* NULL: the default */
    char *ip_where;
    struct policy_monitor monitor;
    int dns_page;      /* `dns-block page`: blocked names answer the block page's address */
    int encrypted_dns; /* `encrypted-dns allow`: DoH and DoT services are not blocked */
};

struct pol_reason {
    uint64_t key; /* entry key mixed with its list; 0 = empty */
    const struct pol_entry *entry;
};

struct policy {
    char *file;
    char *school;
    struct tz *tz;
    int default_group;
    enum policy_action default_action;
    char *default_where;
    struct catdb *db;
    struct catdb *sites;
    uint64_t locked[POLICY_CAT_WORDS];
    uint64_t no_inspect[POLICY_CAT_WORDS];      /* categories never inspected */
    uint64_t no_inspect_lists[CATDB_SET_WORDS]; /* site lists never inspected */
    int ncats;
    const char *cat_name[POLICY_MAX_CATEGORIES];
    const char *cat_title[POLICY_MAX_CATEGORIES];
    uint16_t *list_cat; /* category of each db list */
    struct pol_schedule *schedules;
    size_t nschedules, schedules_cap;
    struct pol_list *lists;
    size_t nlists, lists_cap;
    struct pol_group *groups;
    size_t ngroups, groups_cap;
    struct pol_reason *reasons;
    size_t reasons_cap;
};

/* ---------------------------------------------------------------- names */

static const char *const pol_action_names[] = {"allow", "warn", "block"};

const char *policy_action_name(enum policy_action a)
{
    return pol_action_names[a];
}

const char *policy_tier_name(enum policy_tier t)
{
    static const char *const names[] = {"",           "locked",        "allow-list",
                                        "block-list", "circumvention", "category",
                                        "default",    "contextual"};

    return (unsigned)t < HAVEN_ARRAY_LEN(names) ? names[t] : "";
}

static int pol_find_action(const char *s)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, pol_action_names[i]) == 0)
            return i;
    }
    return -1;
}

static int pol_find_category(const struct policy *p, const char *name)
{
    for (int i = 0; i < p->ncats; i++) {
        if (strcmp(p->cat_name[i], name) == 0)
            return i;
    }
    return -1;
}

static void pol_bit_set(uint64_t *bits, int i)
{
    bits[i / 64] |= 1ULL << (i % 64);
}

/* Do the bitsets a and b share a bit? */
static int pol_any(const uint64_t *a, const uint64_t *b, int words)
{
    for (int w = 0; w < words; w++) {
        if (a[w] & b[w])
            return 1;
    }
    return 0;
}

static int pol_bit_test(const uint64_t *bits, int i)
{
    return (bits[i / 64] >> (i % 64)) & 1;
}

/* ---------------------------------------------------------------- parser */

enum pol_state { POL_TOP, POL_SCHEDULE, POL_LIST, POL_GROUP };

struct pol_parser {
    struct policy *p;
    const char *file;
    unsigned long line;
    char *text; /* the statement as written, for "where" */
    char *err;
    size_t errlen;
    enum pol_state state;
    size_t cur; /* the schedule, list or group being read */
    struct lex_tok tok[POL_MAX_TOKENS];
    int ntok;
};

static int pol_fail(struct pol_parser *ps, const char *fmt, ...) HAVEN_PRINTF(2, 3);

static int pol_fail(struct pol_parser *ps, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "%s:%lu: %s", ps->file, ps->line, msg);
    return -1;
}

/* "policy.conf:12: block games during lessons", for verdicts. */
static char *pol_where(struct pol_parser *ps)
{
    char buf[POL_LINE_MAX + 300];

    snprintf(buf, sizeof(buf), "%s:%lu: %s", ps->file, ps->line, ps->text);
    return xstrdup(buf);
}

static int pol_want_args(struct pol_parser *ps, int min, int max)
{
    int n = ps->ntok - 1;

    if (n < min || n > max) {
        if (min == max)
            return pol_fail(ps, "'%s' takes %d value%s", ps->tok[0].s, min, min == 1 ? "" : "s");
        return pol_fail(ps, "'%s' takes %d to %d values", ps->tok[0].s, min, max);
    }
    for (int i = 1; i < ps->ntok; i++) {
        if (ps->tok[i].type == LEX_LBRACE || ps->tok[i].type == LEX_RBRACE)
            return pol_fail(ps, "unexpected '%s'", ps->tok[i].s);
    }
    return 0;
}

static int pol_on_off(struct pol_parser *ps, const char *s, int *out)
{
    if (strcmp(s, "on") == 0 || strcmp(s, "yes") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(s, "off") == 0 || strcmp(s, "no") == 0) {
        *out = 0;
        return 0;
    }
    return pol_fail(ps, "'%s' must be on or off, not '%s'", ps->tok[0].s, s);
}

/* A name for a group, list or schedule: letters, digits, '-', '_', '.'. */
static int pol_check_name(struct pol_parser *ps, const char *what, const char *s)
{
    if (*s == '\0' || strlen(s) > 64)
        return pol_fail(ps, "%s name must be 1 to 64 characters", what);
    for (const char *c = s; *c; c++) {
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
            return pol_fail(ps, "%s name '%s' may only use letters, digits, '-', '_' and '.'", what,
                            s);
    }
    return 0;
}

static int pol_find_schedule(const struct policy *p, const char *name)
{
    for (size_t i = 0; i < p->nschedules; i++) {
        if (strcmp(p->schedules[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static int pol_find_list(const struct policy *p, const char *name)
{
    for (size_t i = 0; i < p->nlists; i++) {
        if (strcmp(p->lists[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

int policy_group_find(const struct policy *p, const char *name)
{
    for (size_t i = 0; i < p->ngroups; i++) {
        if (strcmp(p->groups[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static int pol_category_arg(struct pol_parser *ps, const char *name)
{
    int c = pol_find_category(ps->p, name);
    int t;

    if (c >= 0)
        return c;
    t = taxonomy_find_ut1(name);
    if (t >= 0)
        return pol_fail(ps, "unknown category '%s' (the UT1 list %s is in category '%s')", name,
                        name, taxonomy_get(t)->name);
    return pol_fail(ps, "unknown category '%s' (see `haven lists categories`)", name);
}

static size_t pol_new_list(struct policy *p, const char *name, const char *reason)
{
    p->lists = xgrow(p->lists, &p->lists_cap, p->nlists + 1, sizeof(*p->lists));
    struct pol_list *l = &p->lists[p->nlists];
    memset(l, 0, sizeof(*l));
    l->name = xstrdup(name);
    l->reason = reason ? xstrdup(reason) : NULL;
    return p->nlists++;
}

/* Add an entry to list li; the entry is checked now so the error has its line. */
static int pol_list_add(struct pol_parser *ps, size_t li, const char *text, const char *reason)
{
    static __thread struct import_entry e;
    struct pol_list *l = &ps->p->lists[li];
    const char *why;

    if (import_parse_entry(text, strlen(text), &e, &why) < 0)
        return pol_fail(ps, "'%s': %s", text, why);
    if (!reason && !l->reason)
        return pol_fail(ps, "'%s' needs a reason: write it in quotes after the entry", text);
    l->entries = xgrow(l->entries, &l->cap, l->n + 1, sizeof(*l->entries));
    struct pol_entry *en = &l->entries[l->n++];
    en->text = xstrdup(text);
    en->reason = xstrdup(reason ? reason : l->reason);
    en->where = pol_where(ps);
    return 0;
}

static int pol_parse_days(const char *s, uint8_t *days)
{
    static const char *const names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    char buf[64];

    *days = 0;
    if (strcmp(s, "daily") == 0 || strcmp(s, "every-day") == 0) {
        *days = 0x7f;
        return 0;
    }
    if (strcmp(s, "weekdays") == 0) {
        *days = 0x3e;
        return 0;
    }
    if (strcmp(s, "weekends") == 0) {
        *days = 0x41;
        return 0;
    }
    if (strlen(s) >= sizeof(buf))
        return -1;
    memcpy(buf, s, strlen(s) + 1);
    for (char *part = buf; part;) {
        char *next = strchr(part, ',');
        char *dash;
        int a = -1, b = -1;

        if (next)
            *next++ = '\0';
        dash = strchr(part, '-');
        if (dash)
            *dash++ = '\0';
        for (int i = 0; i < 7; i++) {
            if (strcmp(part, names[i]) == 0)
                a = i;
            if (dash && strcmp(dash, names[i]) == 0)
                b = i;
        }
        if (a < 0 || (dash && b < 0))
            return -1;
        if (!dash)
            b = a;
        for (int i = a;; i = (i + 1) % 7) {
            *days |= (uint8_t)(1 << i);
            if (i == b)
                break;
        }
        part = next;
    }
    return 0;
}

static int pol_parse_hhmm(const char *s, const char **end, int *minutes)
{
    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
        !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return -1;
    *minutes = h * 60 + m;
    *end = s + 5;
    return 0;
}

static int pol_schedule_line(struct pol_parser *ps)
{
    struct pol_schedule *sc = &ps->p->schedules[ps->cur];
    uint8_t days;

    if (ps->ntok < 2)
        return pol_fail(ps, "a schedule line is days and times, e.g. 'mon-fri 08:45-15:15'");
    if (pol_parse_days(ps->tok[0].s, &days) < 0)
        return pol_fail(ps, "bad days '%s' (write e.g. mon-fri, sat,sun, weekdays, daily)",
                        ps->tok[0].s);
    for (int i = 1; i < ps->ntok; i++) {
        const char *s = ps->tok[i].s, *e;
        int a, b;

        if (pol_parse_hhmm(s, &e, &a) < 0 || *e != '-' || pol_parse_hhmm(e + 1, &e, &b) < 0 ||
            *e != '\0')
            return pol_fail(ps, "bad time range '%s' (write HH:MM-HH:MM, e.g. 08:45-10:30)", s);
        if (b <= a)
            return pol_fail(ps,
                            "time range '%s' ends before it starts (split ranges that cross "
                            "midnight in two)",
                            s);
        if (sc->nwin == POL_MAX_WINDOWS)
            return pol_fail(ps, "too many time ranges in one schedule (the limit is %d)",
                            POL_MAX_WINDOWS);
        sc->win[sc->nwin++] = (struct pol_window){days, (uint16_t)a, (uint16_t)b};
    }
    return 0;
}

static int pol_list_line(struct pol_parser *ps)
{
    if (ps->ntok > 2 || ps->tok[0].type != LEX_WORD ||
        (ps->ntok == 2 && ps->tok[1].type != LEX_STRING))
        return pol_fail(ps, "a list line is a site and an optional \"reason\" in quotes");
    return pol_list_add(ps, ps->cur, ps->tok[0].s, ps->ntok == 2 ? ps->tok[1].s : NULL);
}

/* "allow|warn|block CATEGORY... [during|outside SCHEDULE]" */
static int pol_group_rule(struct pol_parser *ps, struct pol_group *g, int action)
{
    struct pol_rule r;
    int n = ps->ntok;

    memset(&r, 0, sizeof(r));
    r.action = (enum policy_action)action;
    r.schedule = -1;
    if (n >= 3 &&
        (strcmp(ps->tok[n - 2].s, "during") == 0 || strcmp(ps->tok[n - 2].s, "outside") == 0)) {
        r.outside = strcmp(ps->tok[n - 2].s, "outside") == 0;
        r.schedule = pol_find_schedule(ps->p, ps->tok[n - 1].s);
        if (r.schedule < 0)
            return pol_fail(ps,
                            "schedule '%s' is not defined (define schedules before the "
                            "groups that use them)",
                            ps->tok[n - 1].s);
        n -= 2;
    }
    if (n < 2)
        return pol_fail(ps, "'%s' needs at least one category", ps->tok[0].s);
    for (int i = 1; i < n; i++) {
        if (ps->tok[i].type != LEX_WORD)
            return pol_fail(ps, "expected a category name, not \"%s\"", ps->tok[i].s);
        int c = pol_category_arg(ps, ps->tok[i].s);
        if (c < 0)
            return -1;
        if (action != POLICY_BLOCK && pol_bit_test(ps->p->locked, c))
            return pol_fail(ps,
                            "category '%s' is in the locked tier: it is always blocked and "
                            "no rule can %s it",
                            ps->tok[i].s, ps->tok[0].s);
        pol_bit_set(r.cats, c);
    }
    r.where = pol_where(ps);
    g->rules = xgrow(g->rules, &g->rules_cap, g->nrules + 1, sizeof(*g->rules));
    g->rules[g->nrules++] = r;
    return 0;
}

/* "allow|block site ENTRY "reason"" */
static int pol_group_site(struct pol_parser *ps, struct pol_group *g, int action)
{
    int *own = action == POLICY_ALLOW ? &g->own_allow : &g->own_block;
    char name[128];

    if (action == POLICY_WARN)
        return pol_fail(ps, "'warn site' is not supported: use allow site or block site");
    if (ps->ntok != 4 || ps->tok[2].type != LEX_WORD || ps->tok[3].type != LEX_STRING)
        return pol_fail(ps, "write: %s site SITE \"reason\"", ps->tok[0].s);
    if (*own < 0) {
        snprintf(name, sizeof(name), "group %s %s", g->name, ps->tok[0].s);
        *own = (int)pol_new_list(ps->p, name, NULL);
        pol_bit_set(action == POLICY_ALLOW ? g->allow_lists : g->block_lists, *own);
    }
    return pol_list_add(ps, (size_t)*own, ps->tok[2].s, ps->tok[3].s);
}

/* "ports N..." or "ports any" (and connect-ports): the list, its count (0 = any), where. */
static int pol_ports(struct pol_parser *ps, uint16_t *ports, int *n, char **where)
{
    if (pol_want_args(ps, 1, POL_MAX_PORTS) < 0)
        return -1;
    *n = 0;
    for (int i = 1; i < ps->ntok; i++) {
        char *end;
        if (ps->ntok == 2 && strcmp(ps->tok[1].s, "any") == 0)
            break;
        errno = 0;
        unsigned long v = strtoul(ps->tok[i].s, &end, 10);
        if (errno || *end || v < 1 || v > 65535 || !isdigit((unsigned char)ps->tok[i].s[0]))
            return pol_fail(ps, "bad port '%s' (1 to 65535, or 'any')", ps->tok[i].s);
        ports[(*n)++] = (uint16_t)v;
    }
    free(*where);
    *where = pol_where(ps);
    return 0;
}

/* "alert-severity N" (1-5) or "block-score N" (0 = off, up to 10000). */
static int pol_monitor_number(struct pol_parser *ps, struct pol_group *g)
{
    int sev = ps->tok[0].s[0] == 'a';
    long hi = sev ? 5 : 10000;
    char *end;
    long v;

    if (pol_want_args(ps, 1, 1) < 0)
        return -1;
    errno = 0;
    v = strtol(ps->tok[1].s, &end, 10);
    if (errno || *end || !isdigit((unsigned char)ps->tok[1].s[0]) || v < (sev ? 1 : 0) || v > hi)
        return pol_fail(ps, "%s must be a whole number from %d to %ld, not '%s'", ps->tok[0].s,
                        sev ? 1 : 0, hi, ps->tok[1].s);
    if (sev)
        g->monitor.alert_severity = (int)v;
    else
        g->monitor.block_score = (int)v;
    return 0;
}

/* "alert-themes all" or "alert-themes THEME..." */
static int pol_alert_themes(struct pol_parser *ps, struct pol_group *g)
{
    if (pol_want_args(ps, 1, POL_MAX_TOKENS) < 0)
        return -1;
    if (ps->ntok == 2 && strcmp(ps->tok[1].s, "all") == 0) {
        g->monitor.themes = (1u << LIB_NTHEMES) - 1;
        return 0;
    }
    g->monitor.themes = 0;
    for (int i = 1; i < ps->ntok; i++) {
        int t = library_theme_find(ps->tok[i].s);
        if (t < 0) {
            const char *near = library_theme_suggest(ps->tok[i].s);
            if (near)
                return pol_fail(ps, "unknown theme '%s' (did you mean '%s'?)", ps->tok[i].s, near);
            return pol_fail(ps, "unknown theme '%s' (the themes are %s)", ps->tok[i].s,
                            LIB_THEME_LIST);
        }
        g->monitor.themes |= 1u << t;
    }
    return 0;
}

static int pol_group_line(struct pol_parser *ps)
{
    struct pol_group *g = &ps->p->groups[ps->cur];
    const char *kw = ps->tok[0].s;
    int action = pol_find_action(kw);

    if (ps->tok[0].type != LEX_WORD)
        return pol_fail(ps, "expected a statement, not \"%s\"", kw);
    if (action >= 0 && ps->ntok >= 2 && strcmp(ps->tok[1].s, "site") == 0)
        return pol_group_site(ps, g, action);
    if (action >= 0)
        return pol_group_rule(ps, g, action);
    if (strcmp(kw, "description") == 0) {
        if (pol_want_args(ps, 1, 1) < 0)
            return -1;
        free(g->description);
        g->description = xstrdup(ps->tok[1].s);
        return 0;
    }
    if (strcmp(kw, "default") == 0) {
        if (pol_want_args(ps, 1, 1) < 0)
            return -1;
        g->def = pol_find_action(ps->tok[1].s);
        if (g->def < 0)
            return pol_fail(ps, "default must be allow, warn or block, not '%s'", ps->tok[1].s);
        free(g->def_where);
        g->def_where = pol_where(ps);
        return 0;
    }
    if (strcmp(kw, "allow-list") == 0 || strcmp(kw, "block-list") == 0) {
        if (pol_want_args(ps, 1, POL_MAX_TOKENS) < 0)
            return -1;
        for (int i = 1; i < ps->ntok; i++) {
            int l = pol_find_list(ps->p, ps->tok[i].s);
            if (l < 0)
                return pol_fail(ps,
                                "list '%s' is not defined (define lists before the groups "
                                "that use them)",
                                ps->tok[i].s);
            pol_bit_set(kw[0] == 'a' ? g->allow_lists : g->block_lists, l);
        }
        return 0;
    }
    if (strcmp(kw, "safe-search") == 0)
        return pol_want_args(ps, 1, 1) < 0 ? -1 : pol_on_off(ps, ps->tok[1].s, &g->safe_search);
    if (strcmp(kw, "inspect") == 0)
        return pol_want_args(ps, 1, 1) < 0 ? -1 : pol_on_off(ps, ps->tok[1].s, &g->inspect);
    if (strcmp(kw, "no-sni") == 0) {
        if (pol_want_args(ps, 1, 1) < 0)
            return -1;
        if (strcmp(ps->tok[1].s, "block") != 0 && strcmp(ps->tok[1].s, "allow") != 0)
            return pol_fail(ps, "no-sni must be allow or block, not '%s'", ps->tok[1].s);
        g->no_sni_block = ps->tok[1].s[0] == 'b';
        return 0;
    }
    if (strcmp(kw, "block-ip-hosts") == 0) {
        if (pol_want_args(ps, 1, 1) < 0 || pol_on_off(ps, ps->tok[1].s, &g->block_ip_hosts) < 0)
            return -1;
        free(g->ip_where);
        g->ip_where = pol_where(ps);
        return 0;
    }
    if (strcmp(kw, "youtube") == 0) {
        static const char *const lv[] = {"off", "moderate", "strict"};
        if (pol_want_args(ps, 1, 1) < 0)
            return -1;
        for (int i = 0; i < 3; i++) {
            if (strcmp(ps->tok[1].s, lv[i]) == 0) {
                g->youtube = (enum policy_youtube)i;
                return 0;
            }
        }
        return pol_fail(ps, "youtube must be strict, moderate or off, not '%s'", ps->tok[1].s);
    }
    if (strcmp(kw, "unsafe-search") == 0) {
        if (pol_want_args(ps, 1, 1) < 0)
            return -1;
        if (strcmp(ps->tok[1].s, "block") != 0 && strcmp(ps->tok[1].s, "allow") != 0)
            return pol_fail(ps, "unsafe-search must be block or allow, not '%s'", ps->tok[1].s);
        g->unsafe_search_block = ps->tok[1].s[0] == 'b';
        return 0;
    }
    if (strcmp(kw, "dns-block") == 0) {
        if (pol_want_args(ps, 1, 1) < 0)
            return -1;
        if (strcmp(ps->tok[1].s, "nxdomain") != 0 && strcmp(ps->tok[1].s, "page") != 0)
            return pol_fail(ps, "dns-block must be nxdomain or page, not '%s'", ps->tok[1].s);
        g->dns_page = ps->tok[1].s[0] == 'p';
        return 0;
    }
    if (strcmp(kw, "encrypted-dns") == 0) {
        if (pol_want_args(ps, 1, 1) < 0)
            return -1;
        if (strcmp(ps->tok[1].s, "block") != 0 && strcmp(ps->tok[1].s, "allow") != 0)
            return pol_fail(ps, "encrypted-dns must be block or allow, not '%s'", ps->tok[1].s);
        g->encrypted_dns = ps->tok[1].s[0] == 'a';
        return 0;
    }
    if (strcmp(kw, "monitor") == 0)
        return pol_want_args(ps, 1, 1) < 0 ? -1 : pol_on_off(ps, ps->tok[1].s, &g->monitor.on);
    if (strcmp(kw, "alert-severity") == 0 || strcmp(kw, "block-score") == 0)
        return pol_monitor_number(ps, g);
    if (strcmp(kw, "alert-themes") == 0)
        return pol_alert_themes(ps, g);
    if (strcmp(kw, "ports") == 0)
        return pol_ports(ps, g->ports, &g->nports, &g->ports_where);
    if (strcmp(kw, "connect-ports") == 0)
        return pol_ports(ps, g->connect_ports, &g->nconnect, &g->connect_where);
    return pol_fail(ps,
                    "unknown statement '%s' in a group (expected allow, warn, block, "
                    "default, allow-list, block-list, safe-search, youtube, unsafe-search, "
                    "block-ip-hosts, ports, connect-ports, inspect, no-sni, encrypted-dns, "
                    "dns-block, monitor, alert-severity, alert-themes, block-score or "
                    "description)",
                    kw);
}

/* Does the statement end with "{", and is that its only brace? */
static int pol_opens_block(struct pol_parser *ps, int ntok)
{
    if (ps->ntok != ntok || ps->tok[ntok - 1].type != LEX_LBRACE)
        return pol_fail(ps, "write: %s NAME%s {", ps->tok[0].s,
                        strcmp(ps->tok[0].s, "list") == 0 ? " [\"default reason\"]" : "");
    return 0;
}

static int pol_top_line(struct pol_parser *ps)
{
    struct policy *p = ps->p;
    const char *kw = ps->tok[0].s;

    if (ps->tok[0].type != LEX_WORD)
        return pol_fail(ps, "expected a statement, not \"%s\"", kw);
    if (strcmp(kw, "school") == 0) {
        if (pol_want_args(ps, 1, 1) < 0)
            return -1;
        free(p->school);
        p->school = xstrdup(ps->tok[1].s);
        return 0;
    }
    if (strcmp(kw, "timezone") == 0) {
        char why[256];
        if (pol_want_args(ps, 1, 1) < 0)
            return -1;
        struct tz *tz = tz_load(ps->tok[1].s, why, sizeof(why));
        if (!tz)
            return pol_fail(ps, "%s", why);
        tz_free(p->tz);
        p->tz = tz;
        return 0;
    }
    if (strcmp(kw, "default") == 0) {
        if (pol_want_args(ps, 1, 1) < 0)
            return -1;
        int a = pol_find_action(ps->tok[1].s);
        if (a < 0)
            return pol_fail(ps, "default must be allow, warn or block, not '%s'", ps->tok[1].s);
        p->default_action = (enum policy_action)a;
        free(p->default_where);
        p->default_where = pol_where(ps);
        return 0;
    }
    if (strcmp(kw, "default-group") == 0) {
        if (pol_want_args(ps, 1, 1) < 0)
            return -1;
        p->default_group = policy_group_find(p, ps->tok[1].s);
        if (p->default_group < 0)
            return pol_fail(ps, "group '%s' is not defined (put default-group after the groups)",
                            ps->tok[1].s);
        return 0;
    }
    if (strcmp(kw, "locked") == 0) {
        if (pol_want_args(ps, 1, POL_MAX_TOKENS) < 0)
            return -1;
        if (p->ngroups > 0)
            return pol_fail(ps, "'locked' must come before the first group");
        for (int i = 1; i < ps->ntok; i++) {
            int c = pol_category_arg(ps, ps->tok[i].s);
            if (c < 0)
                return -1;
            pol_bit_set(p->locked, c);
        }
        return 0;
    }
    if (strcmp(kw, "no-inspect") == 0) {
        if (pol_want_args(ps, 1, POL_MAX_TOKENS) < 0)
            return -1;
        for (int i = 1; i < ps->ntok; i++) {
            int l = pol_find_list(p, ps->tok[i].s);
            int c = l < 0 ? pol_category_arg(ps, ps->tok[i].s) : -1;
            if (l < 0 && c < 0)
                return -1;
            if (l >= 0)
                pol_bit_set(p->no_inspect_lists, l);
            else
                pol_bit_set(p->no_inspect, c);
        }
        return 0;
    }
    if (strcmp(kw, "schedule") == 0) {
        if (pol_opens_block(ps, 3) < 0 || pol_check_name(ps, "schedule", ps->tok[1].s) < 0)
            return -1;
        if (pol_find_schedule(p, ps->tok[1].s) >= 0)
            return pol_fail(ps, "schedule '%s' is defined twice", ps->tok[1].s);
        p->schedules =
            xgrow(p->schedules, &p->schedules_cap, p->nschedules + 1, sizeof(*p->schedules));
        memset(&p->schedules[p->nschedules], 0, sizeof(*p->schedules));
        p->schedules[p->nschedules].name = xstrdup(ps->tok[1].s);
        ps->cur = p->nschedules++;
        ps->state = POL_SCHEDULE;
        return 0;
    }
    if (strcmp(kw, "list") == 0) {
        int with_reason = ps->ntok == 4 && ps->tok[2].type == LEX_STRING;
        if (pol_opens_block(ps, with_reason ? 4 : 3) < 0 ||
            pol_check_name(ps, "list", ps->tok[1].s) < 0)
            return -1;
        if (pol_find_list(p, ps->tok[1].s) >= 0)
            return pol_fail(ps, "list '%s' is defined twice", ps->tok[1].s);
        if (p->nlists >= CATDB_MAX_LISTS - 2 * p->ngroups - 2)
            return pol_fail(ps, "too many lists");
        ps->cur = pol_new_list(p, ps->tok[1].s, with_reason ? ps->tok[2].s : NULL);
        ps->state = POL_LIST;
        return 0;
    }
    if (strcmp(kw, "group") == 0) {
        if (pol_opens_block(ps, 3) < 0 || pol_check_name(ps, "group", ps->tok[1].s) < 0)
            return -1;
        if (policy_group_find(p, ps->tok[1].s) >= 0)
            return pol_fail(ps, "group '%s' is defined twice", ps->tok[1].s);
        if (p->ngroups >= 64)
            return pol_fail(ps, "too many groups (the limit is 64)");
        p->groups = xgrow(p->groups, &p->groups_cap, p->ngroups + 1, sizeof(*p->groups));
        struct pol_group *g = &p->groups[p->ngroups];
        memset(g, 0, sizeof(*g));
        g->name = xstrdup(ps->tok[1].s);
        g->def = -1;
        g->own_allow = g->own_block = -1;
        g->safe_search = 1;
        g->youtube = POLICY_YOUTUBE_MODERATE;
        g->unsafe_search_block = 1;
        g->connect_ports[0] = 443;
        g->monitor.on = 1;
        g->monitor.alert_severity = 3;
        g->monitor.themes = (1u << LIB_NTHEMES) - 1;
        g->nconnect = 1;
        ps->cur = p->ngroups++;
        ps->state = POL_GROUP;
        return 0;
    }
    return pol_fail(ps,
                    "unknown statement '%s' (expected school, timezone, default, "
                    "default-group, locked, schedule, list or group)",
                    kw);
}

static int pol_statement(struct pol_parser *ps)
{
    if (ps->tok[0].type == LEX_RBRACE) {
        if (ps->ntok != 1)
            return pol_fail(ps, "'}' must be alone on its line");
        if (ps->state == POL_TOP)
            return pol_fail(ps, "'}' without a block to close");
        if (ps->state == POL_SCHEDULE && ps->p->schedules[ps->cur].nwin == 0)
            return pol_fail(ps, "schedule '%s' has no times", ps->p->schedules[ps->cur].name);
        ps->state = POL_TOP;
        return 0;
    }
    for (int i = 0; i < ps->ntok; i++) {
        if (ps->tok[i].type == LEX_RBRACE)
            return pol_fail(ps, "'}' must be alone on its line");
        if (ps->tok[i].type == LEX_LBRACE && (ps->state != POL_TOP || i != ps->ntok - 1))
            return pol_fail(ps, "unexpected '{' (blocks do not nest)");
    }
    switch (ps->state) {
    case POL_TOP:
        return pol_top_line(ps);
    case POL_SCHEDULE:
        return pol_schedule_line(ps);
    case POL_LIST:
        return pol_list_line(ps);
    case POL_GROUP:
        return pol_group_line(ps);
    }
    return -1;
}

static int pol_parse(struct pol_parser *ps, const char *text, size_t len)
{
    char line[POL_LINE_MAX + 1], copy[POL_LINE_MAX + 1];
    size_t pos = 0;
    unsigned long block_line = 0;

    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

        ps->line++;
        if (n > 0 && text[pos + n - 1] == '\r')
            n--;
        if (n > POL_LINE_MAX)
            return pol_fail(ps, "line too long (the limit is %d bytes)", POL_LINE_MAX);
        if (memchr(text + pos, '\0', n))
            return pol_fail(ps, "NUL byte in the file");
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos = nl ? (size_t)(nl - text) + 1 : len;
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
                return pol_fail(ps, "control character in the line");
        }
        /* The statement as written, without comment or surrounding space, for "where". */
        memcpy(copy, line, n + 1);
        char why[128];
        ps->ntok = lex_line(line, ps->tok, POL_MAX_TOKENS, why, sizeof(why));
        if (ps->ntok < 0)
            return pol_fail(ps, "%s", why);
        if (ps->ntok == 0)
            continue;
        {
            char *s = copy, *e;
            while (*s == ' ' || *s == '\t')
                s++;
            e = s + strlen(s);
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                *--e = '\0';
            ps->text = s;
        }
        enum pol_state before = ps->state;
        if (pol_statement(ps) < 0)
            return -1;
        if (before == POL_TOP && ps->state != POL_TOP)
            block_line = ps->line;
    }
    if (ps->state != POL_TOP) {
        ps->line = block_line;
        return pol_fail(ps, "block opened here is never closed (a '}' is missing)");
    }
    if (ps->p->ngroups == 0) {
        ps->line = ps->line ? ps->line : 1;
        return pol_fail(ps, "the policy defines no group");
    }
    return 0;
}

/* ---------------------------------------------------------------- compile */

static uint64_t pol_reason_key(uint64_t key, int list)
{
    uint64_t k = key_mix(key ^ ((uint64_t)list * 0x9e3779b97f4a7c15ULL));

    return k ? k : 1;
}

static void pol_reason_put(struct policy *p, uint64_t key, int list, const struct pol_entry *e)
{
    uint64_t k = pol_reason_key(key, list);
    size_t i = k & (p->reasons_cap - 1);

    while (p->reasons[i].key && p->reasons[i].key != k)
        i = (i + 1) & (p->reasons_cap - 1);
    if (!p->reasons[i].key) {
        p->reasons[i].key = k;
        p->reasons[i].entry = e; /* the first entry of a duplicate keeps its reason */
    }
}

static const struct pol_entry *pol_reason_get(const struct policy *p, uint64_t key, int list)
{
    uint64_t k = pol_reason_key(key, list);
    size_t i = k & (p->reasons_cap - 1);

    while (p->reasons[i].key) {
        if (p->reasons[i].key == k)
            return p->reasons[i].entry;
        i = (i + 1) & (p->reasons_cap - 1);
    }
    return NULL;
}

/* Build the site-list database and the reason table. */
static int pol_compile_sites(struct policy *p, char *err, size_t errlen)
{
    static __thread struct import_entry e;
    struct catdb_builder *b = catdb_builder_create();
    size_t total = 0, len = 0;
    void *img;
    const char *why;
    int rc = -1;

    for (size_t i = 0; i < p->nlists; i++) {
        catdb_builder_add_list(b, p->lists[i].name, "site-list");
        total += p->lists[i].n;
    }
    p->reasons_cap = 16;
    while (p->reasons_cap < total * 2)
        p->reasons_cap *= 2;
    p->reasons = xcalloc(p->reasons_cap, sizeof(*p->reasons));
    for (size_t i = 0; i < p->nlists; i++) {
        for (size_t j = 0; j < p->lists[i].n; j++) {
            const struct pol_entry *en = &p->lists[i].entries[j];
            if (import_parse_entry(en->text, strlen(en->text), &e, &why) < 0) {
                snprintf(err, errlen, "%s: %s", en->where, why);
                goto out;
            }
            import_add_entry(b, (int)i, &e);
            pol_reason_put(p, import_entry_key(&e), (int)i, en);
        }
    }
    for (size_t i = 0; i < p->ngroups; i++) {
        struct pol_group *g = &p->groups[i];
        g->has_site_lists = pol_any(g->allow_lists, g->allow_lists, CATDB_SET_WORDS) ||
                            pol_any(g->block_lists, g->block_lists, CATDB_SET_WORDS);
    }
    img = catdb_builder_image(b, "policy site lists", &len, err, errlen);
    if (!img)
        goto out;
    p->sites = catdb_open_buffer(img, len, 1, err, errlen);
    if (!p->sites) {
        free(img);
        goto out;
    }
    rc = 0;
out:
    catdb_builder_destroy(b);
    return rc;
}

/* The category table: the taxonomy, then categories only the database names. */
static int pol_compile_categories(struct policy *p, char *err, size_t errlen)
{
    struct catdb_stats st;

    for (int i = 0; i < taxonomy_count(); i++) {
        const struct taxonomy_category *c = taxonomy_get(i);
        p->cat_name[p->ncats] = c->name;
        p->cat_title[p->ncats] = c->title;
        if (c->flags & TAXONOMY_LOCKED)
            pol_bit_set(p->locked, p->ncats);
        if (c->flags & TAXONOMY_NO_INSPECT)
            pol_bit_set(p->no_inspect, p->ncats);
        p->ncats++;
    }
    catdb_get_stats(p->db, &st);
    p->list_cat = xcalloc(st.nlists + 1, sizeof(*p->list_cat));
    for (uint32_t i = 0; i < st.nlists; i++) {
        const char *name = catdb_list_category(p->db, (int)i);
        int c = pol_find_category(p, name);
        if (c < 0) {
            if (p->ncats == POLICY_MAX_CATEGORIES) {
                snprintf(err, errlen, "the category database has too many categories");
                return -1;
            }
            c = p->ncats++;
            p->cat_name[c] = name;
            p->cat_title[c] = name;
        }
        p->list_cat[i] = (uint16_t)c;
    }
    return 0;
}

static void pol_free_list(struct pol_list *l)
{
    for (size_t j = 0; j < l->n; j++) {
        free(l->entries[j].text);
        free(l->entries[j].reason);
        free(l->entries[j].where);
    }
    free(l->entries);
    free(l->name);
    free(l->reason);
}

void policy_free(struct policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nschedules; i++)
        free(p->schedules[i].name);
    free(p->schedules);
    for (size_t i = 0; i < p->nlists; i++)
        pol_free_list(&p->lists[i]);
    free(p->lists);
    for (size_t i = 0; i < p->ngroups; i++) {
        struct pol_group *g = &p->groups[i];
        for (size_t j = 0; j < g->nrules; j++)
            free(g->rules[j].where);
        free(g->rules);
        free(g->name);
        free(g->description);
        free(g->def_where);
        free(g->ports_where);
        free(g->connect_where);
        free(g->ip_where);
    }
    free(p->groups);
    free(p->reasons);
    free(p->list_cat);
    free(p->school);
    free(p->default_where);
    free(p->file);
    tz_free(p->tz);
    catdb_close(p->sites);
    catdb_close(p->db);
    free(p);
}

struct policy *policy_load_buffer(const char *name, const char *text, size_t len, struct catdb *db,
                                  char *err, size_t errlen)
{
    struct policy *p = xcalloc(1, sizeof(*p));
    struct pol_parser ps;

    p->db = db;
    p->file = xstrdup(name);
    p->default_action = POLICY_ALLOW;
    if (pol_compile_categories(p, err, errlen) < 0)
        goto fail;
    memset(&ps, 0, sizeof(ps));
    ps.p = p;
    ps.file = name;
    ps.err = err;
    ps.errlen = errlen;
    if (pol_parse(&ps, text, len) < 0)
        goto fail;
    if (!p->tz) {
        p->tz = tz_load("Europe/London", err, errlen);
        if (!p->tz)
            goto fail;
    }
    if (!p->school)
        p->school = xstrdup("School");
    if (pol_compile_sites(p, err, errlen) < 0)
        goto fail;
    return p;
fail:
    policy_free(p);
    return NULL;
}

struct policy *policy_load(const char *path, struct catdb *db, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    struct policy *p = NULL;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        catdb_close(db);
        return NULL;
    }
    do {
        text = xgrow(text, &cap, len + 65536, 1);
        n = fread(text + len, 1, cap - len, f);
        len += n;
    } while (n > 0 && len <= POL_MAX_FILE);
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        catdb_close(db);
    } else if (len > POL_MAX_FILE) {
        snprintf(err, errlen, "%s: file larger than 16 MiB", path);
        catdb_close(db);
    } else {
        p = policy_load_buffer(path, text, len, db, err, errlen);
    }
    fclose(f);
    free(text);
    return p;
}

/* ---------------------------------------------------------------- decide */

static int pol_schedule_active(const struct policy *p, int s, int64_t t)
{
    const struct pol_schedule *sc = &p->schedules[s];
    struct tz_local lt;
    int minute;

    tz_to_local(p->tz, t, &lt);
    minute = lt.hour * 60 + lt.minute;
    for (int i = 0; i < sc->nwin; i++) {
        if ((sc->win[i].days >> lt.wday & 1) && minute >= sc->win[i].start &&
            minute < sc->win[i].end)
            return 1;
    }
    return 0;
}

/* The categories of the lists in set bitset bits. */
static void pol_lists_to_cats(const struct policy *p, const uint64_t *bits, uint64_t *cats)
{
    for (int w = 0; w < CATDB_SET_WORDS; w++) {
        for (uint64_t b = bits[w]; b; b &= b - 1)
            pol_bit_set(cats, p->list_cat[w * 64 + __builtin_ctzll(b)]);
    }
}

/* A list of the database that put the URL in category c, for the reason text. */
static const char *pol_list_for(const struct policy *p, const struct catdb_match *m, int c)
{
    for (int w = 0; w < CATDB_SET_WORDS; w++) {
        for (uint64_t b = m->lists[w]; b; b &= b - 1) {
            int l = w * 64 + __builtin_ctzll(b);
            if (p->list_cat[l] == c)
                return catdb_list_name(p->db, l);
        }
    }
    return "?";
}

/* The matched text of hit h on u, e.g. "example.com" or "example.com/dir". */
static void pol_hit_text(const struct url *u, const struct catdb_hit *h, char *buf, size_t size)
{
    const char *host = u->text + u->host_off + h->host_off;
    int hlen = (int)(u->host_len - h->host_off);

    if (h->kind == CATDB_HIT_URL)
        snprintf(buf, size, "%.*s%.*s", hlen, host, (int)h->path_len, u->text + u->path_off);
    else
        snprintf(buf, size, "%.*s", hlen, host);
}

/* Find a hit of m in a list of mask; return the list and the entry. */
static int pol_site_hit(const struct policy *p, const struct catdb_match *m, const uint64_t *mask,
                        const struct pol_entry **entry)
{
    for (int i = 0; i < m->nhits; i++) {
        const uint64_t *bits = catdb_set_lists(p->sites, m->hits[i].set);
        for (int w = 0; w < CATDB_SET_WORDS; w++) {
            uint64_t both = bits[w] & mask[w];
            if (both) {
                int l = w * 64 + __builtin_ctzll(both);
                *entry = pol_reason_get(p, m->hits[i].key, l);
                return l;
            }
        }
    }
    return -1;
}

struct pol_engine {
    const char *domain; /* matches the host and below */
    enum policy_safe_search ss;
};

/* Search engines and how their safe search is enforced: the one table (docs/policy.md). */
static const struct pol_engine pol_engines[] = {
    {"bing.com", POLICY_SS_BING},
    {"duckduckgo.com", POLICY_SS_DUCKDUCKGO},
    {"search.yahoo.com", POLICY_SS_YAHOO},
    {"youtube.com", POLICY_SS_YOUTUBE},
    {"youtube-nocookie.com", POLICY_SS_YOUTUBE},
    {"youtubei.googleapis.com", POLICY_SS_YOUTUBE},
    {"youtube.googleapis.com", POLICY_SS_YOUTUBE},
    {"pixabay.com", POLICY_SS_PIXABAY},
    {"ecosia.org", POLICY_SS_ECOSIA},
    {"search.brave.com", POLICY_SS_BRAVE},
    {"ya.ru", POLICY_SS_YANDEX},
};

static const struct {
    const char *name, *text, *param, *host, *host_moderate;
} pol_enforce[] = {
    [POLICY_SS_NONE] = {"", "", NULL, NULL, NULL},
    [POLICY_SS_GOOGLE] = {"google", "Google (safe=active; CONNECT to forcesafesearch.google.com)",
                          "safe=active", "forcesafesearch.google.com", NULL},
    [POLICY_SS_BING] = {"bing", "Bing (adlt=strict; CONNECT to strict.bing.com)", "adlt=strict",
                        "strict.bing.com", NULL},
    [POLICY_SS_DUCKDUCKGO] = {"duckduckgo", "DuckDuckGo (kp=1; CONNECT to safe.duckduckgo.com)",
                              "kp=1", "safe.duckduckgo.com", NULL},
    [POLICY_SS_YAHOO] = {"yahoo", "Yahoo (vm=r)", "vm=r", NULL, NULL},
    [POLICY_SS_YOUTUBE] = {"youtube",
                           "YouTube (YouTube-Restrict header; CONNECT to restrict.youtube.com)",
                           NULL, "restrict.youtube.com", "restrictmoderate.youtube.com"},
    [POLICY_SS_PIXABAY] = {"pixabay", "Pixabay (CONNECT to safesearch.pixabay.com)", NULL,
                           "safesearch.pixabay.com", NULL},
    [POLICY_SS_ECOSIA] = {"ecosia", "Ecosia (CONNECT to strict-safe-search.ecosia.org)", NULL,
                          "strict-safe-search.ecosia.org", NULL},
    [POLICY_SS_BRAVE] = {"brave", "Brave (CONNECT to forcesafe.search.brave.com)", NULL,
                         "forcesafe.search.brave.com", NULL},
    [POLICY_SS_YANDEX] = {"yandex", "Yandex (CONNECT to 213.180.193.56)", NULL, "213.180.193.56",
                          NULL},
};

const char *policy_safe_search_name(enum policy_safe_search ss)
{
    return pol_enforce[ss].name;
}

const char *policy_safe_search_text(enum policy_safe_search ss)
{
    return pol_enforce[ss].text;
}

const char *policy_safe_search_param(enum policy_safe_search ss)
{
    return pol_enforce[ss].param;
}

const char *policy_safe_search_host(enum policy_safe_search ss, enum policy_youtube level)
{
    if (ss == POLICY_SS_YOUTUBE && level == POLICY_YOUTUBE_MODERATE)
        return pol_enforce[ss].host_moderate;
    return pol_enforce[ss].host;
}

/* Engines that offer no way to force safe search: blocked when it is enforced. */
static const char *const pol_unsafe_engines[] = {
    "startpage.com", "ixquick.com", "qwant.com", "mojeek.com", "swisscows.com", "metager.org",
};

/*
 * Encrypted DNS services (DNS over HTTPS and over TLS), with the names below them: a device
 * that uses one resolves round the school's DNS filter. Blocked unless `encrypted-dns allow`.
 */
static const char *const pol_encrypted_dns[] = {
    "dns.google",
    "cloudflare-dns.com",
    "one.one.one.one",
    "dns.quad9.net",
    "dns9.quad9.net",
    "dns10.quad9.net",
    "dns11.quad9.net",
    "dns12.quad9.net",
    "doh.opendns.com",
    "doh.familyshield.opendns.com",
    "dns.nextdns.io",
    "dns.adguard.com",
    "dns.adguard-dns.com",
    "doh.cleanbrowsing.org",
    "doh.dns.sb",
    "dot.sb",
    "doh.mullvad.net",
    "dns.mullvad.net",
    "dns.controld.com",
    "freedns.controld.com",
    "doh.libredns.gr",
    "dot.libredns.gr",
    "doh.applied-privacy.net",
    "dot1.applied-privacy.net",
    "doh.xfinity.com",
    "dns.alidns.com",
    "doh.pub",
    "dot.pub",
    "dns.twnic.tw",
    "dns0.eu",
    "doh.ffmuc.net",
    "dns.switch.ch",
    "dns.digitale-gesellschaft.ch",
    "doh.dns4all.eu",
    "dns.brahma.world",
    "resolver2.dns.watch",
    "dns.decloudus.com",
    "odvr.nic.cz",
    "dns.njal.la",
};

static int pol_host_is(const char *host, size_t len, const char *domain)
{
    size_t dl = strlen(domain);

    if (len < dl || memcmp(host + len - dl, domain, dl) != 0)
        return 0;
    return len == dl || host[len - dl - 1] == '.';
}

/* Is host www.NAME.TLD or NAME.TLD, for any country domain (google.co.uk, yandex.com.tr)? */
static int pol_is_country(const char *host, size_t len, const char *name)
{
    size_t nl = strlen(name), labels = 1, rl;
    const char *rest;

    if (len > 4 + nl + 1 && memcmp(host, "www.", 4) == 0 && memcmp(host + 4, name, nl) == 0 &&
        host[4 + nl] == '.')
        rest = host + 4 + nl + 1;
    else if (len > nl + 1 && memcmp(host, name, nl) == 0 && host[nl] == '.')
        rest = host + nl + 1;
    else
        return 0;
    rl = len - (size_t)(rest - host);
    for (size_t i = 0; i < rl; i++) {
        if (rest[i] == '.')
            labels++;
        else if (!islower((unsigned char)rest[i]))
            return 0;
    }
    return labels <= 2 && rl <= 6;
}

static enum policy_safe_search pol_engine(const char *host, size_t len)
{
    if (pol_is_country(host, len, "google"))
        return POLICY_SS_GOOGLE;
    if (pol_is_country(host, len, "yandex"))
        return POLICY_SS_YANDEX;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(pol_engines); i++) {
        if (pol_host_is(host, len, pol_engines[i].domain))
            return pol_engines[i].ss;
    }
    return POLICY_SS_NONE;
}

/* The entry of table (n domains) that host is or is below, or NULL. */
static const char *pol_host_in(const char *const *table, size_t n, const char *host, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (pol_host_is(host, len, table[i]))
            return table[i];
    }
    return NULL;
}

/* Write the reason, when the caller asked for one (reason is NULL on the fast path). */
static void pol_say(char *reason, size_t size, const char *fmt, ...) HAVEN_PRINTF(3, 4);

static void pol_say(char *reason, size_t size, const char *fmt, ...)
{
    va_list ap;

    if (!reason)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, size, fmt, ap);
    va_end(ap);
}

static int pol_circumvention(const struct pol_group *g, const struct url *u,
                             struct policy_verdict *v, char *reason, size_t rsize)
{
    const char *engine;

    if (g->nports > 0) {
        int ok = 0;
        for (int i = 0; i < g->nports; i++)
            ok |= g->ports[i] == u->port;
        if (!ok) {
            v->rule = g->ports_where;
            pol_say(reason, rsize, "Port %u is not one the %s group may use.", u->port, g->name);
            return 1;
        }
    }
    /* HTTPS reaches a proxy only through CONNECT: its ports are the CONNECT ports. */
    if (g->nconnect > 0 && u->scheme_len == 5 && memcmp(u->text, "https", 5) == 0) {
        int ok = 0;
        for (int i = 0; i < g->nconnect; i++)
            ok |= g->connect_ports[i] == u->port;
        if (!ok) {
            v->rule = g->connect_where ? g->connect_where : "connect-ports 443 (the default)";
            pol_say(reason, rsize,
                    "Secure (HTTPS) connections to port %u are not allowed in the %s group.",
                    u->port, g->name);
            return 1;
        }
    }
    if (g->block_ip_hosts && u->host_type != URL_HOST_NAME) {
        v->rule = g->ip_where;
        pol_say(reason, rsize, "Sites must be visited by name, not by IP address, in the %s group.",
                g->name);
        return 1;
    }
    if (!g->encrypted_dns) {
        engine = pol_host_in(pol_encrypted_dns, HAVEN_ARRAY_LEN(pol_encrypted_dns),
                             u->text + u->host_off, u->host_len);
        if (engine) {
            v->rule = "encrypted-dns block (the default)";
            pol_say(reason, rsize,
                    "%s is an encrypted DNS service, which would get round the school's "
                    "filter; it is blocked in the %s group.",
                    engine, g->name);
            return 1;
        }
    }
    if (g->safe_search && g->unsafe_search_block) {
        engine = pol_host_in(pol_unsafe_engines, HAVEN_ARRAY_LEN(pol_unsafe_engines),
                             u->text + u->host_off, u->host_len);
        if (engine) {
            v->rule = "safe search: engines that cannot enforce it are blocked";
            pol_say(reason, rsize,
                    "The search engine %s cannot enforce safe search, so it is blocked.", engine);
            return 1;
        }
    }
    return 0;
}

/* The reason for a category verdict: which entry matched, in which list, and the rule. */
static void pol_category_reason(const struct policy *p, const struct pol_group *g,
                                const struct url *u, const struct catdb_match *m,
                                const struct pol_rule *rule, int c, char *reason, size_t rsize)
{
    static const char *const verbs[] = {"allowed", "allowed with a warning", "blocked"};
    char hit[URL_MAX + 1], when[128];

    hit[0] = when[0] = '\0';

    for (int i = 0; i < m->nhits; i++) {
        uint64_t cats[POLICY_CAT_WORDS] = {0};
        pol_lists_to_cats(p, catdb_set_lists(p->db, m->hits[i].set), cats);
        if (pol_bit_test(cats, c)) {
            pol_hit_text(u, &m->hits[i], hit, sizeof(hit));
            break;
        }
    }
    if (rule->schedule >= 0)
        snprintf(when, sizeof(when), " %s %s", rule->outside ? "outside" : "during",
                 p->schedules[rule->schedule].name);
    snprintf(reason, rsize, "%s is in the category %s (list %s), which is %s for the %s group%s.",
             hit, p->cat_title[c], pol_list_for(p, m, c), verbs[rule->action], g->name, when);
}

/*
 * The decision, and with reason non-NULL its explanation. One function for both, so the
 * explanation can never describe a different decision from the one made.
 */
static void pol_decide(const struct policy *p, const struct url *u, int group, int64_t t,
                       struct policy_verdict *v, char *reason, size_t rsize)
{
    const struct pol_group *g;
    const struct pol_entry *entry = NULL;
    struct catdb_match m, sm;
    int best = -1, best_rule = -1;

    if (group < 0 || group >= (int)p->ngroups)
        group = p->default_group;
    g = &p->groups[group];
    memset(v, 0, sizeof(*v));
    v->group = group;
    v->category = -1;
    v->youtube = g->youtube;

    catdb_lookup_url(p->db, u, &m);
    pol_lists_to_cats(p, m.lists, v->categories);

    /* 1. The locked tier. */
    if (pol_any(v->categories, p->locked, POLICY_CAT_WORDS)) {
        for (int c = 0; c < p->ncats; c++) {
            if (pol_bit_test(v->categories, c) && pol_bit_test(p->locked, c)) {
                v->category = c;
                break;
            }
        }
        v->action = POLICY_BLOCK;
        v->tier = POLICY_TIER_LOCKED;
        v->rule = "locked tier";
        if (strcmp(p->cat_name[v->category], "iwf") == 0)
            pol_say(reason, rsize,
                    "Access has been denied by your internet access provider because this "
                    "page may contain indecent images of children as identified by the "
                    "Internet Watch Foundation.");
        else
            pol_say(reason, rsize, "This page is on the %s list (%s), which is always blocked.",
                    p->cat_title[v->category], pol_list_for(p, &m, v->category));
        return;
    }

    /* 2 and 3. The group's allow and block lists. */
    if (g->has_site_lists) {
        catdb_lookup_url(p->sites, u, &sm);
        for (int pass = 0; pass < 2; pass++) {
            const uint64_t *mask = pass == 0 ? g->allow_lists : g->block_lists;
            int l =
                pol_any(sm.lists, mask, CATDB_SET_WORDS) ? pol_site_hit(p, &sm, mask, &entry) : -1;
            if (l < 0)
                continue;
            v->action = pass == 0 ? POLICY_ALLOW : POLICY_BLOCK;
            v->tier = pass == 0 ? POLICY_TIER_ALLOW_LIST : POLICY_TIER_BLOCK_LIST;
            v->rule = entry ? entry->where : p->lists[l].name;
            pol_say(reason, rsize, "%s by the school's list \"%s\": %s",
                    pass == 0 ? "Allowed" : "Blocked", p->lists[l].name,
                    entry ? entry->reason : "");
            goto safe_search;
        }
    }

    /* 4. Circumvention. */
    if (pol_circumvention(g, u, v, reason, rsize)) {
        v->action = POLICY_BLOCK;
        v->tier = POLICY_TIER_CIRCUMVENTION;
        return;
    }

    /* 5. Category rules: the most restrictive of the first applicable rule per category. */
    for (int w = 0; w < POLICY_CAT_WORDS; w++) {
        for (uint64_t bits = v->categories[w]; bits; bits &= bits - 1) {
            int c = w * 64 + __builtin_ctzll(bits);
            for (size_t r = 0; r < g->nrules; r++) {
                const struct pol_rule *rule = &g->rules[r];
                if (!pol_bit_test(rule->cats, c))
                    continue;
                if (rule->schedule >= 0 &&
                    pol_schedule_active(p, rule->schedule, t) == rule->outside)
                    continue;
                if (best < 0 || rule->action > g->rules[best_rule].action ||
                    (rule->action == g->rules[best_rule].action && (int)r < best_rule)) {
                    best = c;
                    best_rule = (int)r;
                }
                break;
            }
        }
    }
    if (best >= 0) {
        const struct pol_rule *rule = &g->rules[best_rule];
        v->action = rule->action;
        v->tier = POLICY_TIER_CATEGORY;
        v->category = best;
        v->rule = rule->where;
        if (reason)
            pol_category_reason(p, g, u, &m, rule, best, reason, rsize);
        goto safe_search;
    }

    /* 6. The default. */
    v->action = g->def >= 0 ? (enum policy_action)g->def : p->default_action;
    v->tier = POLICY_TIER_DEFAULT;
    v->rule = g->def >= 0 ? g->def_where : p->default_where ? p->default_where : "default";
    pol_say(reason, rsize, "No rule matched; the default for the %s group is %s.", g->name,
            policy_action_name(v->action));

safe_search:
    if (v->action == POLICY_BLOCK)
        return;
    v->safe_search = pol_engine(u->text + u->host_off, u->host_len);
    if (v->safe_search == POLICY_SS_YOUTUBE ? g->youtube == POLICY_YOUTUBE_OFF : !g->safe_search)
        v->safe_search = POLICY_SS_NONE;
}

/*
 * Services that pin their certificates or carry no web pages: inspecting them breaks them
 * (operating system updates and push notifications, app stores, certificate checks).
 */
static const char *const pol_pinned[] = {
    "windowsupdate.com",
    "update.microsoft.com",
    "delivery.mp.microsoft.com",
    "wns.windows.com",
    "notify.windows.com",
    "push.apple.com",
    "mesu.apple.com",
    "swscan.apple.com",
    "gs.apple.com",
    "ocsp.apple.com",
    "itunes.apple.com",
    "mtalk.google.com",
    "android.clients.google.com",
    "play.googleapis.com",
    "update.googleapis.com",
    "ocsp.pki.goog",
    "ocsp.digicert.com",
    "crl.microsoft.com",
    "dropbox.com",
    "zoom.us",
};

int policy_pinned_host(const char *host, size_t len)
{
    return pol_host_in(pol_pinned, HAVEN_ARRAY_LEN(pol_pinned), host, len) != NULL;
}

/* Inspect u's TLS for this group? Not for no-inspect categories, lists or pinned hosts. */
static void pol_inspect(const struct policy *p, const struct url *u, struct policy_verdict *v)
{
    const struct pol_group *g = &p->groups[v->group];
    struct catdb_match sm;

    v->inspect = 0;
    if (!g->inspect || pol_any(v->categories, p->no_inspect, POLICY_CAT_WORDS) ||
        policy_pinned_host(u->text + u->host_off, u->host_len))
        return;
    if (pol_any(p->no_inspect_lists, p->no_inspect_lists, CATDB_SET_WORDS)) {
        catdb_lookup_url(p->sites, u, &sm);
        if (pol_any(sm.lists, p->no_inspect_lists, CATDB_SET_WORDS))
            return;
    }
    v->inspect = 1;
}

const char *policy_inspecting_group(const struct policy *p)
{
    for (size_t i = 0; i < p->ngroups; i++) {
        if (p->groups[i].inspect)
            return p->groups[i].name;
    }
    return NULL;
}

const struct policy_monitor *policy_group_monitor(const struct policy *p, int group)
{
    if (group < 0 || group >= (int)p->ngroups)
        group = p->default_group;
    return &p->groups[group].monitor;
}

int policy_dns_block_page(const struct policy *p, int group)
{
    if (group < 0 || group >= (int)p->ngroups)
        group = p->default_group;
    return p->groups[group].dns_page;
}

int policy_no_sni_block(const struct policy *p, int group)
{
    if (group < 0 || group >= (int)p->ngroups)
        group = p->default_group;
    return p->groups[group].no_sni_block;
}

void policy_prefetch(const struct policy *p, const struct url *u)
{
    catdb_prefetch_host(p->db, u->text + u->host_off, u->host_len);
}

void policy_decide(const struct policy *p, const struct url *u, int group, int64_t t,
                   struct policy_verdict *v)
{
    pol_decide(p, u, group, t, v, NULL, 0);
    pol_inspect(p, u, v);
}

void policy_explain(const struct policy *p, const struct url *u, int group, int64_t t,
                    struct policy_verdict *v, char *reason, size_t size)
{
    pol_decide(p, u, group, t, v, reason, size);
    pol_inspect(p, u, v);
}

/* ---------------------------------------------------------------- accessors */

int policy_group_count(const struct policy *p)
{
    return (int)p->ngroups;
}

const char *policy_group_name(const struct policy *p, int i)
{
    return p->groups[i].name;
}

int policy_default_group(const struct policy *p)
{
    return p->default_group;
}

const char *policy_category_name(const struct policy *p, int i)
{
    return i >= 0 && i < p->ncats ? p->cat_name[i] : NULL;
}

const char *policy_category_title(const struct policy *p, int i)
{
    return i >= 0 && i < p->ncats ? p->cat_title[i] : NULL;
}

const char *policy_school(const struct policy *p)
{
    return p->school;
}

const struct tz *policy_tz(const struct policy *p)
{
    return p->tz;
}

const struct catdb *policy_catdb(const struct policy *p)
{
    return p->db;
}
