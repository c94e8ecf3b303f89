/*
 * resolve.c -- c-ares on a libuv loop, with a TTL cache and query coalescing.
 *
 * DESIGN
 *
 * c-ares tells us which sockets it wants watched through its socket-state callback;
 * each gets a uv_poll handle, and one uv_timer wakes c-ares for its retransmissions
 * (ares_timeout) and us for lookup deadlines. Every event ends in ares_process_fd.
 *
 * A name being looked up is a `struct lookup` (one A and one AAAA query); the user's
 * `struct resolve_query` handles wait on it, so concurrent queries for one name share
 * one lookup. When a lookup finishes, its waiters move to the `ready` queue with a copy
 * of the answer, and a uv_idle handle delivers the ready queue on the next turn of the
 * loop. Nothing calls user code from inside c-ares, which is what makes it safe for a
 * callback to cancel queries, start new ones or destroy the resolver.
 *
 * Lookups are kept in start order; all have the same lifetime, so that is also
 * deadline order and the first one is the next to expire. A lookup that reaches its
 * deadline (or has an early NXDOMAIN) is "detached": its waiters are answered and it
 * leaves the in-flight table, but it lives on until c-ares has called back for both
 * queries, because c-ares 1.18 cannot cancel one query. A late answer still fills the
 * cache.
 *
 * The resolver itself is freed by the close callback of its last uv handle.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/stat.h>

#include <ares.h>
#include <sodium.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/slice.h"
#include "common/xalloc.h"
#include "net/resolve.h"

#define RESOLVE_DEFAULT_CACHE 4096
#define RESOLVE_DEFAULT_MAX_TTL_MS ((int64_t)3600 * 1000)
#define RESOLVE_DEFAULT_TIMEOUT_MS 2000
#define RESOLVE_DEFAULT_TRIES 2
#define RESOLVE_NEGATIVE_TTL_MS ((int64_t)30 * 1000)
#define RESOLVE_MAX_INFLIGHT 4096 /* lookups in flight per resolver; more get RESOLVE_ERROR */
#define RESOLVE_NAME_MAX 253
#define RESOLVE_LABEL_MAX 63
#define RESOLVE_HOSTS_MAX_BYTES ((off_t)64 * 1024 * 1024)
#define RESOLVE_HOSTS_MAX_WARNINGS 5

#define DNS_CLASS_IN 1
#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28

/* ---- intrusive doubly-linked lists ---- */

struct link {
    struct link *prev, *next;
};

#define LINK_ENTRY(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

static void link_init(struct link *head)
{
    head->prev = head;
    head->next = head;
}

static int link_empty(const struct link *head)
{
    return head->next == head;
}

static void link_insert_tail(struct link *head, struct link *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static void link_insert_head(struct link *head, struct link *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

static void link_remove(struct link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n;
    n->next = n;
}

/* ---- hash tables keyed by normalised name (SipHash with a per-resolver key) ---- */

struct hnode {
    struct hnode *next;
    uint64_t hash;
    const char *name;
};

struct htab {
    struct hnode **buckets;
    size_t mask;
    size_t count;
};

static void htab_init(struct htab *t, size_t want)
{
    size_t n = 16;

    while (n < want)
        n <<= 1;
    t->buckets = xcalloc(n, sizeof(*t->buckets));
    t->mask = n - 1;
    t->count = 0;
}

static struct hnode *htab_find(const struct htab *t, const char *name, uint64_t hash)
{
    for (struct hnode *n = t->buckets[hash & t->mask]; n; n = n->next) {
        if (n->hash == hash && strcmp(n->name, name) == 0)
            return n;
    }
    return NULL;
}

static void htab_grow(struct htab *t)
{
    size_t size = (t->mask + 1) * 2;
    struct hnode **b = xcalloc(size, sizeof(*b));

    for (size_t i = 0; i <= t->mask; i++) {
        struct hnode *n = t->buckets[i];
        while (n) {
            struct hnode *next = n->next;
            n->next = b[n->hash & (size - 1)];
            b[n->hash & (size - 1)] = n;
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->mask = size - 1;
}

static void htab_insert(struct htab *t, struct hnode *n)
{
    if (t->count > t->mask)
        htab_grow(t);
    n->next = t->buckets[n->hash & t->mask];
    t->buckets[n->hash & t->mask] = n;
    t->count++;
}

static void htab_remove(struct htab *t, struct hnode *n)
{
    struct hnode **pp = &t->buckets[n->hash & t->mask];

    while (*pp != n)
        pp = &(*pp)->next;
    *pp = n->next;
    n->next = NULL;
    t->count--;
}

/* ---- addresses and answers ---- */

struct addr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t bytes[16];
};

struct answer {
    int naddrs;
    struct addr addrs[RESOLVE_MAX_ADDRS];
};

static int addr_eq(const struct addr *a, const struct addr *b)
{
    size_t len = a->family == AF_INET ? 4 : 16;

    return a->family == b->family && memcmp(a->bytes, b->bytes, len) == 0;
}

/*
 * Build an answer from n addresses in server order: duplicates dropped, the families
 * interleaved with the preferred one first, at most RESOLVE_MAX_ADDRS kept.
 */
static void answer_build(const struct addr *in, int n, int prefer_ipv6, struct answer *out)
{
    int idx[2][2 * RESOLVE_MAX_ADDRS];
    int cnt[2] = {0, 0};
    int pos[2] = {0, 0};

    if (n > 2 * RESOLVE_MAX_ADDRS)
        n = 2 * RESOLVE_MAX_ADDRS;
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int j = 0; j < i && !dup; j++)
            dup = addr_eq(&in[i], &in[j]);
        if (dup)
            continue;
        /* list 0 is the preferred family */
        int which = (in[i].family == AF_INET6) == (prefer_ipv6 != 0) ? 0 : 1;
        idx[which][cnt[which]++] = i;
    }
    out->naddrs = 0;
    while (out->naddrs < RESOLVE_MAX_ADDRS && (pos[0] < cnt[0] || pos[1] < cnt[1])) {
        for (int w = 0; w < 2 && out->naddrs < RESOLVE_MAX_ADDRS; w++) {
            if (pos[w] < cnt[w])
                out->addrs[out->naddrs++] = in[idx[w][pos[w]++]];
        }
    }
}

static void answer_to_result(const struct answer *a, uint16_t port, struct resolve_result *res)
{
    memset(res, 0, sizeof(*res));
    for (int i = 0; i < a->naddrs; i++) {
        if (a->addrs[i].family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&res->addrs[i];
            sin->sin_family = AF_INET;
            sin->sin_port = htons(port);
            memcpy(&sin->sin_addr, a->addrs[i].bytes, 4);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&res->addrs[i];
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons(port);
            memcpy(&sin6->sin6_addr, a->addrs[i].bytes, 16);
        }
    }
    res->naddrs = a->naddrs;
}

/* ---- names ---- */

/* An IP literal, optionally in brackets; 0 and *a set, or -1. */
static int literal_parse(const char *host, struct addr *a)
{
    char text[INET6_ADDRSTRLEN + 1];
    size_t len = strlen(host);

    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, host, len);
    text[len] = '\0';
    memset(a, 0, sizeof(*a));
    if (inet_pton(AF_INET, text, a->bytes) == 1) {
        a->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, a->bytes) == 1) {
        a->family = AF_INET6;
        return 0;
    }
    return -1;
}

static int name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/*
 * Write the name p[0..len) to out (RESOLVE_NAME_MAX + 1 bytes) in lower case without
 * one trailing dot. Returns 0, or -1 if it cannot be a DNS host name.
 */
static int name_normalise(const char *p, size_t len, char *out)
{
    size_t label = 0;

    if (len > 0 && p[len - 1] == '.')
        len--;
    if (len == 0 || len > RESOLVE_NAME_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if (name_char_ok(c)) {
            label++;
            if (label > RESOLVE_LABEL_MAX)
                return -1;
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
        } else {
            return -1;
        }
        out[i] = c;
    }
    out[len] = '\0';
    return 0;
}

static int name_is_localhost(const char *name)
{
    static const char suffix[] = ".localhost";
    size_t len = strlen(name), slen = sizeof(suffix) - 1;

    if (strcmp(name, "localhost") == 0)
        return 1;
    return len > slen && memcmp(name + len - slen, suffix, slen) == 0;
}

/* ---- the resolver ---- */

enum half_status { HALF_PENDING, HALF_ADDRS, HALF_NODATA, HALF_NXDOMAIN, HALF_TIMEOUT, HALF_ERROR };

struct lookup;

/* One of the two queries of a lookup: A (family AF_INET) or AAAA (AF_INET6). */
struct lookup_half {
    struct lookup *lk;
    int family;
    enum half_status status;
    int n;
    int ttl; /* seconds, smallest of the records */
    struct addr addrs[RESOLVE_MAX_ADDRS];
};

struct lookup {
    struct hnode node; /* in r->inflight while attached */
    struct link order; /* in r->inflight_order while attached */
    struct resolver *r;
    struct link waiters; /* struct resolve_query, state QUERY_WAITING */
    uint64_t deadline;   /* uv_now() milliseconds */
    int pending;         /* c-ares queries that have not called back */
    int detached;        /* waiters answered; kept only for c-ares */
    struct lookup_half half[2];
    char name[];
};

enum query_state { QUERY_WAITING, QUERY_READY, QUERY_RUNNING };

struct resolve_query {
    struct link link; /* in lk->waiters or r->ready */
    struct resolver *r;
    struct lookup *lk; /* while QUERY_WAITING */
    resolve_cb cb;
    void *arg;
    uint16_t port;
    enum query_state state;
    int status; /* when QUERY_READY */
    struct answer ans;
};

struct cache_entry {
    struct hnode node;
    struct link lru; /* most recently used first */
    int64_t expires; /* clock_now() seconds */
    int status;      /* RESOLVE_OK or RESOLVE_NXDOMAIN */
    struct answer ans;
    char name[];
};

struct hosts_entry {
    struct hnode node;
    int naddrs;
    struct addr addrs[RESOLVE_MAX_ADDRS];
    char name[];
};

/* A socket c-ares asked us to watch. */
struct poll_watch {
    uv_poll_t handle;
    struct link link; /* in r->polls */
    struct resolver *r;
    ares_socket_t fd;
};

struct resolver {
    uv_loop_t *loop;
    ares_channel channel;
    int channel_ok;
    uv_timer_t timer;
    uv_idle_t idle;
    struct link polls;
    int open_handles; /* uv handles not yet closed; r is freed when it drops to 0 */
    int destroying;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];

    struct htab cache;
    struct link lru;
    size_t cache_cap;
    struct htab hosts;
    struct htab inflight;
    struct link inflight_order;
    struct link ready;
    size_t nready;

    int64_t min_ttl_ms, max_ttl_ms;
    uint64_t deadline_ms;
    int prefer_ipv6;
    struct resolver_stats stats;
};

static uint64_t name_hash(const struct resolver *r, const char *name)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t h;

    crypto_shorthash(out, (const unsigned char *)name, strlen(name), r->hash_key);
    memcpy(&h, out, sizeof(h));
    return h;
}

static int64_t resolver_clamp_ttl(const struct resolver *r, int64_t ttl_ms)
{
    if (ttl_ms < r->min_ttl_ms)
        ttl_ms = r->min_ttl_ms;
    if (ttl_ms > r->max_ttl_ms)
        ttl_ms = r->max_ttl_ms;
    return ttl_ms;
}

/* ---- cache ---- */

static void cache_free_entry(struct resolver *r, struct cache_entry *e)
{
    htab_remove(&r->cache, &e->node);
    link_remove(&e->lru);
    free(e);
}

/* A fresh entry for name (moved to the front of the LRU list), or NULL. */
static struct cache_entry *cache_get(struct resolver *r, const char *name, uint64_t hash)
{
    struct hnode *n = htab_find(&r->cache, name, hash);
    struct cache_entry *e;
    int64_t now = clock_now();

    if (!n)
        return NULL;
    e = LINK_ENTRY(n, struct cache_entry, node);
    /* Expired, or further ahead than any TTL we grant: the wall clock went back. */
    if (now >= e->expires || e->expires - now > r->max_ttl_ms / 1000 + 1) {
        cache_free_entry(r, e);
        return NULL;
    }
    link_remove(&e->lru);
    link_insert_head(&r->lru, &e->lru);
    return e;
}

static void cache_put(struct resolver *r, const char *name, uint64_t hash, int status,
                      const struct answer *ans, int64_t ttl_ms)
{
    struct hnode *n;
    struct cache_entry *e;
    size_t len = strlen(name);

    if (ttl_ms <= 0 || r->destroying) {
        return;
    }
    n = htab_find(&r->cache, name, hash);
    if (n) {
        e = LINK_ENTRY(n, struct cache_entry, node);
        link_remove(&e->lru);
    } else {
        if (r->cache.count >= r->cache_cap && !link_empty(&r->lru)) {
            cache_free_entry(r, LINK_ENTRY(r->lru.prev, struct cache_entry, lru));
            r->stats.evictions++;
        }
        e = xcalloc(1, sizeof(*e) + len + 1);
        memcpy(e->name, name, len + 1);
        e->node.name = e->name;
        e->node.hash = hash;
        htab_insert(&r->cache, &e->node);
    }
    link_insert_head(&r->lru, &e->lru);
    e->status = status;
    e->ans = *ans;
    e->expires = clock_now() + (ttl_ms + 999) / 1000;
}

/* ---- hosts file ---- */

static void hosts_add(struct resolver *r, const char *name, const struct addr *a)
{
    uint64_t hash = name_hash(r, name);
    struct hnode *n = htab_find(&r->hosts, name, hash);
    struct hosts_entry *e;
    size_t len = strlen(name);

    if (n) {
        e = LINK_ENTRY(n, struct hosts_entry, node);
    } else {
        e = xcalloc(1, sizeof(*e) + len + 1);
        memcpy(e->name, name, len + 1);
        e->node.name = e->name;
        e->node.hash = hash;
        htab_insert(&r->hosts, &e->node);
    }
    for (int i = 0; i < e->naddrs; i++) {
        if (addr_eq(&e->addrs[i], a))
            return;
    }
    if (e->naddrs < RESOLVE_MAX_ADDRS)
        e->addrs[e->naddrs++] = *a;
}

/* The next blank-separated token of line[0..len) from *i; 0 at the end. */
static int hosts_token(const char *line, size_t len, size_t *i, struct slice *tok)
{
    size_t start;

    while (*i < len && (line[*i] == ' ' || line[*i] == '\t' || line[*i] == '\r'))
        (*i)++;
    if (*i >= len)
        return 0;
    start = *i;
    while (*i < len && line[*i] != ' ' && line[*i] != '\t' && line[*i] != '\r')
        (*i)++;
    *tok = slice_make(line + start, *i - start);
    return 1;
}

/*
 * One line of a hosts file: "ADDRESS NAME [NAME...] [# comment]". Returns 0 if the
 * line was used or is blank, -1 with *why set if it is malformed (names that are fine
 * on a bad line are still added).
 */
static int hosts_parse_line(struct resolver *r, const char *line, size_t len, const char **why)
{
    char text[INET6_ADDRSTRLEN + 1];
    char name[RESOLVE_NAME_MAX + 1];
    struct slice tok;
    struct addr a;
    size_t i = 0;
    int names = 0, bad = 0;

    for (size_t k = 0; k < len; k++) {
        if (line[k] == '#') {
            len = k;
            break;
        }
    }
    if (!hosts_token(line, len, &i, &tok))
        return 0;
    if (tok.len >= sizeof(text) || memchr(tok.p, '\0', tok.len)) {
        *why = "the first field is not an IP address; line ignored";
        return -1;
    }
    memcpy(text, tok.p, tok.len);
    text[tok.len] = '\0';
    if (literal_parse(text, &a) < 0 || text[0] == '[') {
        *why = "the first field is not an IP address; line ignored";
        return -1;
    }
    while (hosts_token(line, len, &i, &tok)) {
        if (name_normalise(tok.p, tok.len, name) < 0) {
            *why = "a name is not a valid host name; that name ignored";
            bad = 1;
            continue;
        }
        hosts_add(r, name, &a);
        names++;
    }
    if (names == 0 && !bad) {
        *why = "no host name follows the address; line ignored";
        return -1;
    }
    return bad ? -1 : 0;
}

static int hosts_load(struct resolver *r, const char *path, char *err, size_t errlen)
{
    FILE *f = NULL;
    struct stat st;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, nbad = 0, rc = -1;

    f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "hosts file %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fileno(f), &st) == 0 && st.st_size > RESOLVE_HOSTS_MAX_BYTES) {
        snprintf(err, errlen, "hosts file %s: larger than %lld bytes", path,
                 (long long)RESOLVE_HOSTS_MAX_BYTES);
        goto out;
    }
    for (;;) {
        const char *why = NULL;
        n = getline(&line, &cap, f);
        if (n < 0)
            break;
        lineno++;
        if (n > 0 && line[n - 1] == '\n')
            n--;
        if (hosts_parse_line(r, line, (size_t)n, &why) == 0)
            continue;
        nbad++;
        if (nbad <= RESOLVE_HOSTS_MAX_WARNINGS)
            log_warnx("hosts file %s:%d: %s", path, lineno, why);
    }
    if (ferror(f)) {
        snprintf(err, errlen, "hosts file %s: %s", path, strerror(errno));
        goto out;
    }
    if (nbad > RESOLVE_HOSTS_MAX_WARNINGS)
        log_warnx("hosts file %s: %d more malformed lines", path,
                  nbad - RESOLVE_HOSTS_MAX_WARNINGS);
    rc = 0;
out:
    free(line);
    if (f)
        fclose(f);
    return rc;
}

/* ---- queries ---- */

static void resolver_after_ares(struct resolver *r);

static void query_make_ready(struct resolver *r, struct resolve_query *q, int status)
{
    q->status = status;
    q->state = QUERY_READY;
    q->lk = NULL;
    link_insert_tail(&r->ready, &q->link);
    r->nready++;
}

/* Call q's callback with status and free q; q is already off every list. */
static void query_deliver(struct resolve_query *q, int status)
{
    struct resolver *r = q->r;
    struct resolve_result res;

    if (status == RESOLVE_OK) {
        answer_to_result(&q->ans, q->port, &res);
    } else {
        res.naddrs = 0;
    }
    if (status == RESOLVE_CANCELLED) {
        r->stats.cancelled++;
    } else if (status != RESOLVE_OK) {
        r->stats.failures++;
        if (status == RESOLVE_TIMEOUT)
            r->stats.timeouts++;
    }
    q->state = QUERY_RUNNING;
    q->cb(q->arg, status, &res);
    free(q);
}

static void resolver_on_idle(uv_idle_t *h)
{
    struct resolver *r = h->data;
    size_t n = r->nready; /* only what was queued before this turn */

    while (n > 0 && !r->destroying && !link_empty(&r->ready)) {
        struct resolve_query *q = LINK_ENTRY(r->ready.next, struct resolve_query, link);
        link_remove(&q->link);
        r->nready--;
        n--;
        query_deliver(q, q->status);
    }
    if (link_empty(&r->ready))
        uv_idle_stop(h);
}

/* ---- lookups ---- */

/* The outcome of a lookup so far; *ttl_ms is how long to cache it (0: not at all). */
static int lookup_outcome(const struct lookup *lk, struct answer *ans, int64_t *ttl_ms)
{
    const struct resolver *r = lk->r;
    struct addr all[2 * RESOLVE_MAX_ADDRS];
    int n = 0, ttl = -1, nx = 0, timeout = 0, error = 0;

    ans->naddrs = 0;
    *ttl_ms = 0;
    for (int i = 0; i < 2; i++) {
        const struct lookup_half *h = &lk->half[i];
        switch (h->status) {
        case HALF_ADDRS:
            memcpy(all + n, h->addrs, (size_t)h->n * sizeof(all[0]));
            n += h->n;
            if (ttl < 0 || h->ttl < ttl)
                ttl = h->ttl;
            break;
        case HALF_NXDOMAIN:
            nx = 1;
            break;
        case HALF_PENDING:
        case HALF_TIMEOUT:
            timeout = 1;
            break;
        case HALF_ERROR:
            error = 1;
            break;
        case HALF_NODATA:
            break;
        }
    }
    if (n > 0) {
        answer_build(all, n, r->prefer_ipv6, ans);
        *ttl_ms = resolver_clamp_ttl(r, (int64_t)ttl * 1000);
        return RESOLVE_OK;
    }
    if (nx || (!timeout && !error)) {
        *ttl_ms = RESOLVE_NEGATIVE_TTL_MS < r->max_ttl_ms ? RESOLVE_NEGATIVE_TTL_MS : r->max_ttl_ms;
        return RESOLVE_NXDOMAIN;
    }
    return timeout ? RESOLVE_TIMEOUT : RESOLVE_ERROR;
}

/* Answer every waiter of lk with status and ans, and take lk out of the in-flight set. */
static void lookup_detach(struct lookup *lk, int status, const struct answer *ans)
{
    struct resolver *r = lk->r;

    htab_remove(&r->inflight, &lk->node);
    link_remove(&lk->order);
    lk->detached = 1;
    while (!link_empty(&lk->waiters)) {
        struct resolve_query *q = LINK_ENTRY(lk->waiters.next, struct resolve_query, link);
        link_remove(&q->link);
        q->ans = *ans;
        query_make_ready(r, q, status);
    }
}

/* Answer the waiters now and cache the result (if it may be cached). */
static void lookup_settle(struct lookup *lk)
{
    struct answer ans;
    int64_t ttl_ms;
    int status = lookup_outcome(lk, &ans, &ttl_ms);

    if (!lk->detached)
        lookup_detach(lk, status, &ans);
    if (status == RESOLVE_OK || status == RESOLVE_NXDOMAIN)
        cache_put(lk->r, lk->name, lk->node.hash, status, &ans, ttl_ms);
}

static enum half_status half_parse(struct lookup_half *h, const unsigned char *abuf, int alen)
{
    int n = RESOLVE_MAX_ADDRS, rc;

    h->n = 0;
    if (h->family == AF_INET) {
        struct ares_addrttl t[RESOLVE_MAX_ADDRS];
        rc = ares_parse_a_reply(abuf, alen, NULL, t, &n);
        for (int i = 0; rc == ARES_SUCCESS && i < n; i++) {
            h->addrs[h->n].family = AF_INET;
            memcpy(h->addrs[h->n].bytes, &t[i].ipaddr, 4);
            h->ttl = h->n == 0 || t[i].ttl < h->ttl ? t[i].ttl : h->ttl;
            h->n++;
        }
    } else {
        struct ares_addr6ttl t[RESOLVE_MAX_ADDRS];
        rc = ares_parse_aaaa_reply(abuf, alen, NULL, t, &n);
        for (int i = 0; rc == ARES_SUCCESS && i < n; i++) {
            h->addrs[h->n].family = AF_INET6;
            memcpy(h->addrs[h->n].bytes, t[i].ip6addr._S6_un._S6_u8, 16);
            h->ttl = h->n == 0 || t[i].ttl < h->ttl ? t[i].ttl : h->ttl;
            h->n++;
        }
    }
    if (h->ttl < 0)
        h->ttl = 0;
    if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && h->n == 0))
        return HALF_NODATA;
    return rc == ARES_SUCCESS ? HALF_ADDRS : HALF_ERROR;
}

/* c-ares callback for one query of a lookup; never calls user code. */
static void lookup_on_reply(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct lookup_half *h = arg;
    struct lookup *lk = h->lk;
    struct resolver *r = lk->r;

    (void)timeouts;
    switch (status) {
    case ARES_SUCCESS:
        h->status = half_parse(h, abuf, alen);
        break;
    case ARES_ENODATA:
        h->status = HALF_NODATA;
        break;
    case ARES_ENOTFOUND:
        h->status = HALF_NXDOMAIN;
        break;
    case ARES_ETIMEOUT:
        h->status = HALF_TIMEOUT;
        break;
    default:
        h->status = HALF_ERROR;
        break;
    }
    lk->pending--;
    if (r->destroying) {
        /* resolver_destroy answered the waiters; only the memory is left. */
        if (lk->pending == 0) {
            if (!lk->detached) {
                htab_remove(&r->inflight, &lk->node);
                link_remove(&lk->order);
            }
            free(lk);
        }
        return;
    }
    /* NXDOMAIN holds for every type: no need to wait for the other query. */
    if (lk->pending == 0 || (h->status == HALF_NXDOMAIN && !lk->detached))
        lookup_settle(lk);
    if (lk->pending == 0)
        free(lk);
}

static void lookup_start(struct resolver *r, const char *name, uint64_t hash,
                         struct resolve_query *q)
{
    size_t len = strlen(name);
    struct lookup *lk = xcalloc(1, sizeof(*lk) + len + 1);

    memcpy(lk->name, name, len + 1);
    lk->node.name = lk->name;
    lk->node.hash = hash;
    lk->r = r;
    link_init(&lk->waiters);
    lk->deadline = uv_now(r->loop) + r->deadline_ms;
    for (int i = 0; i < 2; i++) {
        lk->half[i].lk = lk;
        lk->half[i].family = i == 0 ? AF_INET : AF_INET6;
        lk->half[i].status = HALF_PENDING;
    }
    htab_insert(&r->inflight, &lk->node);
    link_insert_tail(&r->inflight_order, &lk->order);
    q->lk = lk;
    q->state = QUERY_WAITING;
    link_insert_tail(&lk->waiters, &q->link);
    r->stats.lookups++;
    /* Either call may complete (and free lk) at once, e.g. when no server can be reached. */
    lk->pending = 2;
    ares_query(r->channel, lk->name, DNS_CLASS_IN, DNS_TYPE_A, lookup_on_reply, &lk->half[0]);
    ares_query(r->channel, name, DNS_CLASS_IN, DNS_TYPE_AAAA, lookup_on_reply, &lk->half[1]);
}

/* Answer the lookups whose deadline has passed with what they have. */
static void lookups_expire(struct resolver *r)
{
    uint64_t now = uv_now(r->loop);

    while (!link_empty(&r->inflight_order)) {
        struct lookup *lk = LINK_ENTRY(r->inflight_order.next, struct lookup, order);
        if (lk->deadline > now)
            break;
        lookup_settle(lk);
    }
}

/* ---- libuv glue ---- */

static void resolver_on_handle_closed(uv_handle_t *h)
{
    struct resolver *r = h->data;

    r->open_handles--;
    if (r->destroying && r->open_handles == 0)
        free(r);
}

static void resolver_on_poll_closed(uv_handle_t *h)
{
    struct poll_watch *w = h->data;
    struct resolver *r = w->r;

    free(w);
    r->open_handles--;
    if (r->destroying && r->open_handles == 0)
        free(r);
}

static void resolver_on_timer(uv_timer_t *t)
{
    struct resolver *r = t->data;

    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    lookups_expire(r);
    resolver_after_ares(r);
}

static void resolver_on_poll(uv_poll_t *p, int status, int events)
{
    struct poll_watch *w = p->data;
    struct resolver *r = w->r;
    ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

    if (status < 0) {
        /* Let c-ares find the error on the socket. */
        rfd = w->fd;
        wfd = w->fd;
    } else {
        if (events & UV_READABLE)
            rfd = w->fd;
        if (events & UV_WRITABLE)
            wfd = w->fd;
    }
    ares_process_fd(r->channel, rfd, wfd);
    resolver_after_ares(r);
}

static struct poll_watch *resolver_find_poll(struct resolver *r, ares_socket_t fd)
{
    for (struct link *l = r->polls.next; l != &r->polls; l = l->next) {
        struct poll_watch *w = LINK_ENTRY(l, struct poll_watch, link);
        if (w->fd == fd)
            return w;
    }
    return NULL;
}

static void resolver_close_poll(struct poll_watch *w)
{
    link_remove(&w->link);
    uv_close((uv_handle_t *)&w->handle, resolver_on_poll_closed);
}

/* c-ares: start, change or stop watching a socket. Called before c-ares closes it. */
static void resolver_on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct resolver *r = data;
    struct poll_watch *w = resolver_find_poll(r, fd);
    int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
    int rc;

    if (events == 0) {
        if (w)
            resolver_close_poll(w);
        return;
    }
    if (!w) {
        w = xcalloc(1, sizeof(*w));
        w->r = r;
        w->fd = fd;
        rc = uv_poll_init_socket(r->loop, &w->handle, fd);
        if (rc < 0) {
            /* c-ares will time the query out. */
            log_warnx("resolver: cannot watch socket %d: %s", (int)fd, uv_strerror(rc));
            free(w);
            return;
        }
        w->handle.data = w;
        link_insert_tail(&r->polls, &w->link);
        r->open_handles++;
    }
    rc = uv_poll_start(&w->handle, events, resolver_on_poll);
    if (rc < 0)
        log_warnx("resolver: cannot watch socket %d: %s", (int)fd, uv_strerror(rc));
}

/* After any call into c-ares: re-arm the timer and schedule the delivery of answers. */
static void resolver_after_ares(struct resolver *r)
{
    struct timeval tv;
    uint64_t wait = UINT64_MAX;

    if (r->destroying) {
        return;
    }
    if (ares_timeout(r->channel, NULL, &tv))
        wait = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
    if (!link_empty(&r->inflight_order)) {
        struct lookup *lk = LINK_ENTRY(r->inflight_order.next, struct lookup, order);
        uint64_t now = uv_now(r->loop);
        uint64_t d = lk->deadline > now ? lk->deadline - now : 0;
        if (d < wait)
            wait = d;
    }
    if (wait == UINT64_MAX) {
        uv_timer_stop(&r->timer);
    } else {
        uv_timer_start(&r->timer, resolver_on_timer, wait, 0);
    }
    if (!link_empty(&r->ready))
        uv_idle_start(&r->idle, resolver_on_idle);
}

/* ---- public functions ---- */

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static int resolve_lib_status;

static void resolve_library_init(void)
{
    resolve_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
    if (resolve_lib_status == ARES_SUCCESS && sodium_init() < 0)
        resolve_lib_status = ARES_ENOTINITIALIZED;
}

static void resolver_free_tables(struct resolver *r)
{
    while (!link_empty(&r->lru))
        cache_free_entry(r, LINK_ENTRY(r->lru.next, struct cache_entry, lru));
    for (size_t i = 0; r->hosts.buckets && i <= r->hosts.mask; i++) {
        struct hnode *n = r->hosts.buckets[i];
        while (n) {
            struct hnode *next = n->next;
            free(LINK_ENTRY(n, struct hosts_entry, node));
            n = next;
        }
    }
    free(r->hosts.buckets);
    free(r->cache.buckets);
    free(r->inflight.buckets);
    r->hosts.buckets = NULL;
    r->cache.buckets = NULL;
    r->inflight.buckets = NULL;
}

struct resolver *resolver_create(uv_loop_t *loop, const struct resolver_config *cfg, char *err,
                                 size_t errlen)
{
    static const struct resolver_config defaults;
    struct resolver *r = NULL;
    struct ares_options opts;
    int rc;

    if (!cfg)
        cfg = &defaults;
    pthread_once(&resolve_once, resolve_library_init);
    if (resolve_lib_status != ARES_SUCCESS) {
        snprintf(err, errlen, "resolver: cannot initialise c-ares or libsodium: %s",
                 ares_strerror(resolve_lib_status));
        goto fail;
    }
    r = xcalloc(1, sizeof(*r));
    r->loop = loop;
    r->cache_cap = cfg->cache_size > 0 ? cfg->cache_size : RESOLVE_DEFAULT_CACHE;
    r->max_ttl_ms = cfg->max_ttl_ms > 0 ? cfg->max_ttl_ms : RESOLVE_DEFAULT_MAX_TTL_MS;
    r->min_ttl_ms = cfg->min_ttl_ms > 0 ? cfg->min_ttl_ms : 0;
    if (r->min_ttl_ms > r->max_ttl_ms)
        r->min_ttl_ms = r->max_ttl_ms;
    r->prefer_ipv6 = cfg->prefer_ipv6 != 0;
    randombytes_buf(r->hash_key, sizeof(r->hash_key));
    link_init(&r->polls);
    link_init(&r->lru);
    link_init(&r->inflight_order);
    link_init(&r->ready);
    htab_init(&r->cache, r->cache_cap < 65536 ? r->cache_cap : 65536);
    htab_init(&r->hosts, 16);
    htab_init(&r->inflight, 64);
    if (cfg->hosts_file && hosts_load(r, cfg->hosts_file, err, errlen) < 0)
        goto fail;

    memset(&opts, 0, sizeof(opts));
    opts.flags = ARES_FLAG_NOSEARCH;
    opts.timeout = cfg->timeout_ms > 0 && cfg->timeout_ms < 3600000 ? (int)cfg->timeout_ms
                                                                    : RESOLVE_DEFAULT_TIMEOUT_MS;
    opts.tries = cfg->tries > 0 && cfg->tries < 100 ? cfg->tries : RESOLVE_DEFAULT_TRIES;
    opts.sock_state_cb = resolver_on_sock_state;
    opts.sock_state_cb_data = r;
    r->deadline_ms = (uint64_t)opts.timeout * (uint64_t)opts.tries;
    rc = ares_init_options(&r->channel, &opts,
                           ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                               ARES_OPT_SOCK_STATE_CB);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "resolver: c-ares: %s", ares_strerror(rc));
        goto fail;
    }
    r->channel_ok = 1;
    if (cfg->servers) {
        rc = ares_set_servers_ports_csv(r->channel, cfg->servers);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errlen,
                     "resolver servers '%s': %s (expected addresses such as "
                     "\"127.0.0.1:5300,[::1]:53\")",
                     cfg->servers, ares_strerror(rc));
            goto fail;
        }
    }
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    uv_idle_init(loop, &r->idle);
    r->idle.data = r;
    r->open_handles = 2;
    return r;

fail:
    if (r) {
        if (r->channel_ok)
            ares_destroy(r->channel);
        resolver_free_tables(r);
        free(r);
    }
    return NULL;
}

void resolver_destroy(struct resolver *r)
{
    if (!r || r->destroying) {
        return;
    }
    r->destroying = 1;
    uv_timer_stop(&r->timer);
    /* Every waiting query joins the ready queue, which is then cancelled in order. */
    for (struct link *l = r->inflight_order.next; l != &r->inflight_order; l = l->next) {
        struct lookup *lk = LINK_ENTRY(l, struct lookup, order);
        while (!link_empty(&lk->waiters)) {
            struct resolve_query *q = LINK_ENTRY(lk->waiters.next, struct resolve_query, link);
            link_remove(&q->link);
            query_make_ready(r, q, RESOLVE_CANCELLED);
        }
    }
    while (!link_empty(&r->ready)) {
        struct resolve_query *q = LINK_ENTRY(r->ready.next, struct resolve_query, link);
        link_remove(&q->link);
        r->nready--;
        query_deliver(q, RESOLVE_CANCELLED);
    }
    /* c-ares calls back every outstanding query (ARES_EDESTRUCTION), which frees the
     * lookups, and reports each socket closed, which closes its poll handle. */
    ares_destroy(r->channel);
    r->channel_ok = 0;
    while (!link_empty(&r->polls))
        resolver_close_poll(LINK_ENTRY(r->polls.next, struct poll_watch, link));
    resolver_free_tables(r);
    uv_close((uv_handle_t *)&r->timer, resolver_on_handle_closed);
    uv_close((uv_handle_t *)&r->idle, resolver_on_handle_closed);
}

struct resolve_query *resolve_start(struct resolver *r, const char *host, uint16_t port,
                                    resolve_cb cb, void *arg)
{
    char name[RESOLVE_NAME_MAX + 1];
    struct resolve_query *q;
    const struct cache_entry *e;
    struct addr a[2];
    struct hnode *n;
    uint64_t hash;

    if (r->destroying) {
        return NULL;
    }
    q = xcalloc(1, sizeof(*q));
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    q->port = port;
    link_init(&q->link);
    r->stats.queries++;

    if (literal_parse(host, &a[0]) == 0) {
        answer_build(a, 1, r->prefer_ipv6, &q->ans);
        r->stats.literals++;
        query_make_ready(r, q, RESOLVE_OK);
        goto out;
    }
    if (name_normalise(host, strlen(host), name) < 0) {
        query_make_ready(r, q, RESOLVE_NXDOMAIN);
        goto out;
    }
    if (name_is_localhost(name)) {
        literal_parse("127.0.0.1", &a[0]);
        literal_parse("::1", &a[1]);
        answer_build(a, 2, r->prefer_ipv6, &q->ans);
        r->stats.literals++;
        query_make_ready(r, q, RESOLVE_OK);
        goto out;
    }
    hash = name_hash(r, name);
    n = htab_find(&r->hosts, name, hash);
    if (n) {
        const struct hosts_entry *h = LINK_ENTRY(n, struct hosts_entry, node);
        answer_build(h->addrs, h->naddrs, r->prefer_ipv6, &q->ans);
        r->stats.hosts_hits++;
        query_make_ready(r, q, RESOLVE_OK);
        goto out;
    }
    e = cache_get(r, name, hash);
    if (e) {
        q->ans = e->ans;
        r->stats.cache_hits++;
        query_make_ready(r, q, e->status);
        goto out;
    }
    n = htab_find(&r->inflight, name, hash);
    if (n) {
        struct lookup *lk = LINK_ENTRY(n, struct lookup, node);
        q->lk = lk;
        q->state = QUERY_WAITING;
        link_insert_tail(&lk->waiters, &q->link);
        r->stats.coalesced++;
        goto out;
    }
    if (r->inflight.count >= RESOLVE_MAX_INFLIGHT) {
        log_warnx("resolver: %d lookups in flight; failing %s", RESOLVE_MAX_INFLIGHT, name);
        query_make_ready(r, q, RESOLVE_ERROR);
        goto out;
    }
    lookup_start(r, name, hash, q);
out:
    resolver_after_ares(r);
    return q;
}

void resolve_cancel(struct resolve_query *q)
{
    struct resolver *r;

    if (!q || q->state == QUERY_RUNNING) {
        return;
    }
    r = q->r;
    link_remove(&q->link);
    if (q->state == QUERY_READY)
        r->nready--;
    r->stats.cancelled++;
    free(q);
}

void resolver_get_stats(const struct resolver *r, struct resolver_stats *out)
{
    *out = r->stats;
    out->cache_entries = r->cache.count;
    out->inflight = r->inflight.count;
}

const char *resolve_strerror(int status)
{
    switch (status) {
    case RESOLVE_OK:
        return "resolved";
    case RESOLVE_NXDOMAIN:
        return "no such host";
    case RESOLVE_TIMEOUT:
        return "the name servers did not answer in time";
    case RESOLVE_ERROR:
        return "the name servers failed";
    case RESOLVE_CANCELLED:
        return "cancelled";
    default:
        return "unknown resolver status";
    }
}
