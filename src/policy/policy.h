/*
 * policy.h -- the school's filtering policy, compiled to an immutable snapshot.
 *
 * A policy file (docs/policy.md) names groups of users and, for each, what
 * happens to a request: category rules (allow, warn, block; optionally only
 * during or outside a schedule), allow and block lists with a reason on every
 * entry, safe-search and circumvention settings, and a default action.
 *
 * policy_load() parses the file, checks every name it uses against the
 * category database and the taxonomy, and compiles a snapshot. A snapshot
 * never changes after it is built and may be read by any number of threads at
 * once; a reload builds a new one and swaps a pointer (STYLE.md rule 15).
 *
 * policy_decide() takes a canonical URL, a group and an instant and walks the
 * tiers in order, first decision wins:
 *   1. locked tier: categories flagged locked (IWF, CTIRU, and any the policy
 *      marks "locked"): always block; nothing below can change that;
 *   2. the group's allow lists;
 *   3. the group's block lists;
 *   4. circumvention settings (destination ports, IP-address hosts, search
 *      engines whose safe search cannot be enforced);
 *   5. category rules: for each matched category the first rule naming it
 *      whose schedule applies; the most restrictive of those wins
 *      (block over warn over allow);
 *   6. the group's default action.
 */
#ifndef HAVEN_POLICY_POLICY_H
#define HAVEN_POLICY_POLICY_H

#include <stddef.h>
#include <stdint.h>

struct catdb;
struct url;
struct tz;

#define POLICY_MAX_CATEGORIES 256
#define POLICY_CAT_WORDS (POLICY_MAX_CATEGORIES / 64)

enum policy_action { POLICY_ALLOW, POLICY_WARN, POLICY_BLOCK };

enum policy_tier {
    POLICY_TIER_LOCKED = 1,
    POLICY_TIER_ALLOW_LIST,
    POLICY_TIER_BLOCK_LIST,
    POLICY_TIER_CIRCUMVENTION,
    POLICY_TIER_CATEGORY,
    POLICY_TIER_DEFAULT,
    POLICY_TIER_CONTEXT, /* set by the proxy: a search's keyword score reached block-score */
};

enum policy_youtube { POLICY_YOUTUBE_OFF, POLICY_YOUTUBE_MODERATE, POLICY_YOUTUBE_STRICT };

/* What safe-search enforcement applies to an allowed request (the table is in policy.c). */
enum policy_safe_search {
    POLICY_SS_NONE,       /* not a search engine, or enforcement is off */
    POLICY_SS_GOOGLE,     /* safe=active; CONNECT to forcesafesearch.google.com */
    POLICY_SS_BING,       /* adlt=strict; CONNECT to strict.bing.com */
    POLICY_SS_DUCKDUCKGO, /* kp=1; CONNECT to safe.duckduckgo.com */
    POLICY_SS_YAHOO,      /* vm=r */
    POLICY_SS_YOUTUBE,    /* YouTube-Restrict header; CONNECT to restrict(moderate).youtube.com */
    POLICY_SS_PIXABAY,    /* CONNECT to safesearch.pixabay.com */
    POLICY_SS_ECOSIA,     /* CONNECT to strict-safe-search.ecosia.org */
    POLICY_SS_BRAVE,      /* CONNECT to forcesafe.search.brave.com */
    POLICY_SS_YANDEX,     /* CONNECT to 213.180.193.56 */
};

struct policy_verdict {
    enum policy_action action;
    enum policy_tier tier;
    int group;                             /* index of the group decided for */
    int category;                          /* deciding category, or -1 */
    uint64_t categories[POLICY_CAT_WORDS]; /* every category the URL is in */
    const char *rule;                      /* "policy.conf:42: block pornography" */
    enum policy_safe_search safe_search;
    enum policy_youtube youtube;
    int inspect; /* HTTPS to this site may be decrypted: the group inspects and the site is
                    not in a no-inspect category or list, nor a pinned service */
};

/* Room for any reason policy_explain writes. */
#define POLICY_REASON_MAX 1024

/*
 * Parse and compile the policy file at path against db. The snapshot takes
 * ownership of db (closed by policy_free, also on failure). Returns the
 * snapshot, or NULL with "file:line: message" in err.
 */
struct policy *policy_load(const char *path, struct catdb *db, char *err, size_t errlen);

/* The same from text in memory; name is used in messages (and for the fuzzer). */
struct policy *policy_load_buffer(const char *name, const char *text, size_t len, struct catdb *db,
                                  char *err, size_t errlen);

void policy_free(struct policy *p);

/*
 * Decide what happens to the canonical URL u for group at instant t (seconds
 * since the epoch, UTC). Fills *v; v->rule points into the snapshot. Takes no
 * lock and allocates nothing: this is the request path.
 */
void policy_decide(const struct policy *p, const struct url *u, int group, int64_t t,
                   struct policy_verdict *v);

/* Start loading what deciding u will read (see catdb_prefetch_host); optional. */
void policy_prefetch(const struct policy *p, const struct url *u);

/* Is host (canonical, len bytes) a service that pins its certificates (never inspected)? */
int policy_pinned_host(const char *host, size_t len);

/* The name of a group with `inspect on`, or NULL when no group inspects HTTPS. */
const char *policy_inspecting_group(const struct policy *p);

/* Does the group block TLS connections whose hello names no server (`no-sni block`)? */
int policy_no_sni_block(const struct policy *p, int group);

/* Does the group answer blocked names with the block page's address (`dns-block page`)
 * rather than NXDOMAIN? */
int policy_dns_block_page(const struct policy *p, int group);

/* What the safeguarding monitor does for a group (docs/monitoring.md). */
struct policy_monitor {
    int on;             /* `monitor on|off` (default on) */
    int alert_severity; /* `alert-severity N`: matches this severe or more alert (default 3) */
    unsigned themes;    /* `alert-themes`: bit (1u << theme) per enum lib_theme (default all) */
    int block_score;    /* `block-score N`: a page or search scoring this much is blocked; 0 off */
};

/* The group's monitor settings (an unknown group: the default group's). */
const struct policy_monitor *policy_group_monitor(const struct policy *p, int group);

/*
 * The same decision, and also the reason in plain English for the block page
 * and the log ("roblox.com is in the category Games (list ut1/games), which is
 * blocked for the secondary group during lessons."), written to reason (size
 * bytes; POLICY_REASON_MAX is always enough). Slower: call it when the reason
 * will be shown.
 */
void policy_explain(const struct policy *p, const struct url *u, int group, int64_t t,
                    struct policy_verdict *v, char *reason, size_t size);

/* Groups: their number, the index of name (-1 if none), the name of index i. */
int policy_group_count(const struct policy *p);
int policy_group_find(const struct policy *p, const char *name);
const char *policy_group_name(const struct policy *p, int i);
/* The group for requests not identified as anyone's. */
int policy_default_group(const struct policy *p);

/* The name of category i (as in policy_verdict), or NULL. */
const char *policy_category_name(const struct policy *p, int i);
/* The plain-words title of category i ("Pornography"). */
const char *policy_category_title(const struct policy *p, int i);

const char *policy_school(const struct policy *p);
const struct tz *policy_tz(const struct policy *p);
const struct catdb *policy_catdb(const struct policy *p);

const char *policy_action_name(enum policy_action a);
/* "locked", "allow-list", ... "contextual": for logs and records ("" for 0). */
const char *policy_tier_name(enum policy_tier t);

/* "google", "bing", ...: for logs; "" for POLICY_SS_NONE. */
const char *policy_safe_search_name(enum policy_safe_search ss);
/* How it is enforced, for people: "Google (safe=active; CONNECT to forcesafesearch.google.com)". */
const char *policy_safe_search_text(enum policy_safe_search ss);
/* The query parameter that enforces it on a plain or inspected request ("safe=active"), or NULL. */
const char *policy_safe_search_param(enum policy_safe_search ss);
/* The host a CONNECT is sent to instead of the one asked for, or NULL (YouTube: by level). */
const char *policy_safe_search_host(enum policy_safe_search ss, enum policy_youtube level);

#endif
