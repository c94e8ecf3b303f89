#include "common/compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "dns/cache.h"
#include "dns/filter.h"
#include "dns/forward.h"
#include "dns/service.h"
#include "dns/wire.h"
#include "event/accesslog.h"
#include "event/recorder.h"
#include "ident/ident.h"
#include "proxy/server.h"
#include "proxy/snapshot.h"

#define SVC_BATCH 32           /* datagrams per recvmmsg / sendmmsg */
#define SVC_ROUNDS 8           /* batches per wake-up before other work gets a turn */
#define SVC_IN_MAX 4096        /* largest query datagram read */
#define SVC_OUT_MAX 4096       /* largest UDP answer (clients ask for 1232; some for 4096) */
#define SVC_TCP_MAX 65535      /* largest TCP message */
#define SVC_CLIENTS 4096       /* client slots per worker (rate limit, group) */
#define SVC_CLIENT_PROBE 8     /* slots looked at for a client */
#define SVC_GROUP_RECHECK 1000 /* ms before a client's session is looked up again */
#define SVC_SAFE_RRS 32        /* records of a safe-search target kept in an answer */
#define SVC_FNV_OFFSET 1469598103934665603ULL /* FNV-1a, for the worker's small tables */
#define SVC_FNV_PRIME 1099511628211ULL
#define SVC_TALLY 8192 /* allowed (client, user, name, category) counted on the worker */
#define SVC_TALLY_WAYS 4
#define SVC_TALLY_TEXT 232
#define SVC_TALLY_MS 5000 /* counts go to the recorder at least this often */
#define SVC_RECENT 65536  /* blocked (client, name) remembered, for one row a minute */
#define SVC_RECENT_WAYS 4
#define SVC_RECENT_MS 60000

/* What a client's address has been found to be; one slot per recent client. */
struct svc_client {
    uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
    int used;
    int allowed;           /* in dns-allow or a network range */
    const char *net_group; /* the most specific network range's group, or NULL */
    char ip[IDENT_IP_MAX];
    double tokens;
    uint64_t last_ms, seen_ms; /* loop time of the last refill, and of the last query */
    uint64_t snap_gen;         /* group and user below were found in this snapshot */
    uint64_t checked_ms;
    int group;
    const char *user; /* into the snapshot of snap_gen */
};

/*
 * Allowed queries counted on the worker: the records keep them as hourly roll-ups anyway, and
 * one record per name every few seconds costs the recorder far less than one per query.
 */
struct svc_tally {
    uint64_t key; /* hash of the strings; 0 = empty */
    uint32_t count;
    int64_t time_ms;           /* the first query's */
    char text[SVC_TALLY_TEXT]; /* client, user, group, category, URL; NUL after each */
};

/* A blocked name a client asked for, recorded as a row at at_ms. */
struct svc_recent {
    uint64_t key; /* 0 = empty */
    uint64_t at_ms;
};

/* Where an answer goes. */
struct svc_to {
    struct svc_conn *conn; /* TCP, or NULL for UDP */
    int fd;                /* UDP socket */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    _Alignas(struct cmsghdr) uint8_t ctrl[64]; /* the IP_PKTINFO / IPV6_PKTINFO to send with */
    size_t ctrl_len;
};

struct svc_conn {
    uv_tcp_t h;
    uv_timer_t idle;
    struct dns_service *svc;
    uint8_t *in;
    size_t in_len;
    int closing, nwait, open_handles;
    struct sockaddr_storage peer;
    struct svc_conn *prev, *next;
};

/* A query waiting for the forwarder. */
struct svc_wait {
    struct dns_service *svc;
    struct svc_to to;
    struct dns_query q;
    enum dns_how how;
    const char *target; /* DNS_HOW_SAFE_NAME */
    int refresh;        /* a prefetch: no client */
};

struct svc_udp {
    uv_poll_t poll;
    int fd;
    struct dns_service *svc;
};

struct dns_service {
    struct worker *w;
    const struct config *cfg;
    struct dns_forward *fwd;
    struct dns_cache *cache;
    struct dns_block_addrs block;
    struct svc_udp *udp;
    uv_tcp_t *tcp;
    int n;
    struct svc_conn *conns;
    int nconns;
    int stopping, open_handles;
    struct svc_client clients[SVC_CLIENTS];
    struct svc_tally tally[SVC_TALLY];
    struct svc_recent recent[SVC_RECENT];
    uv_timer_t tally_timer;
    /* batch buffers for UDP */
    uint8_t in[SVC_BATCH][SVC_IN_MAX];
    uint8_t out[SVC_BATCH][SVC_OUT_MAX];
    uint8_t big[SVC_TCP_MAX + 2];
};

static const char *const svc_kind_names[DNS_ANS_KINDS] = {
    "forwarded", "cached",  "blocked", "safe-search", "canary",
    "refused",   "dropped", "error",   "servfail",
};

const char *dns_answer_kind_name(enum dns_answer_kind k)
{
    return (unsigned)k < DNS_ANS_KINDS ? svc_kind_names[k] : "";
}

static void svc_count(struct dns_service *s, enum dns_answer_kind k)
{
    worker_count(&s->w->stats.dns_answers[k], 1);
}

/* ---------------------------------------------------------------- clients */

static void svc_addr_key(const struct sockaddr *sa, uint8_t key[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (sa->sa_family == AF_INET) {
        memcpy(key, mapped, 12);
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
}

/* In dns-allow (a client in a network range is allowed already). */
static int svc_allowed(const struct config *cfg, const struct sockaddr *sa)
{
    for (int i = 0; i < cfg->ndns_allow; i++) {
        if (config_cidr_match(&cfg->dns_allow[i], sa))
            return 1;
    }
    return 0;
}

/* The slot for sa: found, or a new one in place of the least recently seen of its probes. */
static struct svc_client *svc_client(struct dns_service *s, const struct sockaddr *sa)
{
    uint8_t key[16];
    uint64_t h = SVC_FNV_OFFSET;
    struct svc_client *c, *old = NULL;
    char text[INET6_ADDRSTRLEN];

    svc_addr_key(sa, key);
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * SVC_FNV_PRIME;
    for (int i = 0; i < SVC_CLIENT_PROBE; i++) {
        c = &s->clients[(h + (uint64_t)i) % SVC_CLIENTS];
        if (c->used && memcmp(c->addr, key, 16) == 0)
            return c;
        if (!old || !c->used || (old->used && c->seen_ms < old->seen_ms))
            old = c;
    }
    c = old;
    memset(c, 0, sizeof(*c));
    memcpy(c->addr, key, 16);
    c->used = 1;
    c->net_group = config_network_group(s->cfg, sa);
    c->allowed = c->net_group || svc_allowed(s->cfg, sa);
    c->tokens = 2.0 * s->cfg->dns_rate_limit;
    c->last_ms = uv_now(&s->w->loop);
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof(text));
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text, sizeof(text));
    if (ident_ip_canonical(text, c->ip) < 0)
        snprintf(c->ip, sizeof(c->ip), "%s", text);
    return c;
}

/* Token bucket: rate per second, bursts of twice that. 1 if the query may go on. */
static int svc_rate_ok(struct dns_service *s, struct svc_client *c)
{
    int rate = s->cfg->dns_rate_limit;
    uint64_t now = uv_now(&s->w->loop);

    c->seen_ms = now;
    if (rate <= 0)
        return 1;
    c->tokens += (double)(now - c->last_ms) * rate / 1000.0;
    c->last_ms = now;
    if (c->tokens > 2.0 * rate)
        c->tokens = 2.0 * rate;
    if (c->tokens < 1.0)
        return 0;
    c->tokens -= 1.0;
    return 1;
}

/* The client's group in snap: an IP session's user's, the network range's, the default. */
static int svc_group(struct dns_service *s, struct svc_client *c, const struct snapshot *snap,
                     const struct sockaddr *sa)
{
    const struct policy *p = snap->policy;
    uint64_t now = uv_now(&s->w->loop);
    const char *user = NULL, *group = NULL;
    int g = -1;

    if (c->snap_gen == snap->generation && now - c->checked_ms < SVC_GROUP_RECHECK)
        return c->group;
    if (snap->ident && ident_session_user(snap->ident, sa, clock_now(), &user, &group) == 0)
        g = group ? policy_group_find(p, group) : -1;
    else
        user = NULL;
    if (g < 0 && c->net_group)
        g = policy_group_find(p, c->net_group);
    if (g < 0)
        g = policy_default_group(p);
    c->snap_gen = snap->generation;
    c->checked_ms = now;
    c->group = g;
    c->user = user;
    return g;
}

/* ---------------------------------------------------------------- records */

static void svc_tally_flush(struct dns_service *s, struct svc_tally *t)
{
    const char *f[5], *p = t->text;
    struct access_record r;

    if (t->key == 0)
        return;
    for (int i = 0; i < 5; i++) {
        f[i] = p;
        p += strlen(p) + 1;
    }
    memset(&r, 0, sizeof(r));
    r.time_ms = t->time_ms;
    r.client = f[0];
    r.device = "";
    r.user = f[1];
    r.group = f[2];
    r.categories = &f[3];
    r.ncategories = f[3][0] ? 1 : 0;
    r.method = "DNS";
    r.url = f[4];
    r.action = "allow";
    r.tier = r.rule = r.reason = r.ref = r.safe_search = r.search = "";
    r.count = t->count;
    recorder_submit(s->w->srv->rec, &r, NULL);
    t->key = 0;
}

static void svc_on_tally(uv_timer_t *t)
{
    struct dns_service *s = t->data;

    for (int i = 0; i < SVC_TALLY; i++)
        svc_tally_flush(s, &s->tally[i]);
}

static uint64_t svc_hash(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * SVC_FNV_PRIME;
    return (h ^ 0xff) * SVC_FNV_PRIME; /* a separator, so "ab"+"c" is not "a"+"bc" */
}

/*
 * Count an allowed query (r) in the worker's tally: four slots per hash, the one counted
 * longest ago goes to the recorder to make room. A record whose strings do not fit a slot goes
 * to the recorder at once.
 */
static void svc_tally_add(struct dns_service *s, const struct access_record *r)
{
    const char *f[5] = {r->client, r->user, r->group, r->ncategories ? r->categories[0] : "",
                        r->url};
    size_t len[5], total = 0;
    uint64_t h = SVC_FNV_OFFSET;
    struct svc_tally *set, *t;

    for (int i = 0; i < 5; i++) {
        len[i] = strlen(f[i]);
        total += len[i] + 1;
        h = svc_hash(h, f[i]);
    }
    if (total > SVC_TALLY_TEXT) {
        recorder_submit(s->w->srv->rec, r, NULL);
        return;
    }
    h |= 1; /* never 0 */
    set = &s->tally[(h >> 32) % (SVC_TALLY / SVC_TALLY_WAYS) * SVC_TALLY_WAYS];
    t = set;
    for (int i = 0; i < SVC_TALLY_WAYS; i++) {
        if (set[i].key == h) {
            set[i].count++;
            return;
        }
        if (set[i].key == 0 || (t->key != 0 && set[i].time_ms < t->time_ms))
            t = &set[i];
    }
    svc_tally_flush(s, t);
    t->key = h;
    t->count = 1;
    t->time_ms = r->time_ms;
    total = 0;
    for (int i = 0; i < 5; i++) {
        memcpy(t->text + total, f[i], len[i] + 1);
        total += len[i] + 1;
    }
}

/* "dns://NAME/TYPE" into url (DNS_PRES_MAX + 32 bytes): on every query, so no printf. */
static void svc_url(char *url, const struct dns_query *q, const char *type)
{
    size_t n = q->name_len ? q->name_len : 1, t = strlen(type);

    memcpy(url, "dns://", 6);
    memcpy(url + 6, q->name_len ? q->name : ".", n);
    url[6 + n] = '/';
    memcpy(url + 7 + n, type, t + 1);
}

static void svc_record(struct dns_service *s, const struct snapshot *snap,
                       const struct svc_client *c, const struct dns_query *q,
                       const struct dns_decision *d)
{
    const struct policy *p = snap->policy;
    const char *cats[POLICY_MAX_CATEGORIES];
    char url[DNS_PRES_MAX + 32], tbuf[16];
    struct access_record r;
    const struct policy_verdict *v = &d->v;
    struct svc_recent *seen, *set;
    uint64_t key, now;

    if (!s->w->srv->log && !s->w->srv->rec)
        return;
    memset(&r, 0, sizeof(r));
    svc_url(url, q, dns_type_name(q->qtype, tbuf, sizeof(tbuf)));
    if (d->decided) {
        for (int w = 0; w < POLICY_CAT_WORDS; w++) {
            for (uint64_t bits = v->categories[w]; bits; bits &= bits - 1)
                cats[r.ncategories++] = policy_category_name(p, w * 64 + __builtin_ctzll(bits));
        }
    }
    r.time_ms = clock_now_ms();
    r.client = c->ip;
    r.device = "";
    r.user = c->user ? c->user : "";
    r.group = policy_group_name(p, d->decided ? v->group : c->group);
    r.method = "DNS";
    r.url = url;
    r.categories = cats;
    if (d->how == DNS_HOW_CANARY) {
        r.action = "block";
        r.tier = "circumvention";
        r.rule = "canary name: NXDOMAIN";
        r.reason = "A name that turns a filter bypass on when it resolves.";
        r.circumvention = 1;
    } else {
        r.action = policy_action_name(v->action);
        r.tier = v->rule ? policy_tier_name(v->tier) : "";
        r.rule = v->rule ? v->rule : "";
        r.reason = "";
        r.circumvention = v->action == POLICY_BLOCK && v->tier == POLICY_TIER_CIRCUMVENTION;
    }
    r.ref = "";
    r.safe_search = d->how == DNS_HOW_SAFE_NAME || d->how == DNS_HOW_SAFE_ADDR
                        ? policy_safe_search_name(v->safe_search)
                        : "";
    r.search = "";
    accesslog_submit(s->w->srv->log, &r);
    if (!s->w->srv->rec)
        return;
    if (v->action == POLICY_ALLOW && d->how != DNS_HOW_CANARY) {
        svc_tally_add(s, &r);
        return;
    }
    /* Devices ask again and again for a name that does not resolve: one row a minute per
     * client and name is the record; every query still goes to the access log. */
    key = svc_hash(svc_hash(SVC_FNV_OFFSET, c->ip), q->name) | 1;
    now = uv_now(&s->w->loop);
    set = &s->recent[(key >> 32) % (SVC_RECENT / SVC_RECENT_WAYS) * SVC_RECENT_WAYS];
    seen = set;
    for (int i = 0; i < SVC_RECENT_WAYS; i++) {
        if (set[i].key == key) {
            if (now - set[i].at_ms < SVC_RECENT_MS)
                return;
            seen = &set[i];
            break;
        }
        if (set[i].at_ms < seen->at_ms)
            seen = &set[i]; /* the oldest of the set makes room */
    }
    seen->key = key;
    seen->at_ms = now;
    recorder_submit(s->w->srv->rec, &r, NULL);
}

/* ---------------------------------------------------------------- sending */

static void svc_conn_unref(struct svc_conn *c);

struct svc_write {
    uv_write_t req;
    struct svc_conn *conn;
    uint8_t data[];
};

static void svc_on_write(uv_write_t *req, int status)
{
    struct svc_write *wr = req->data;

    (void)status;
    svc_conn_unref(wr->conn);
    free(wr);
}

static void svc_tcp_send(struct svc_conn *c, const uint8_t *pkt, size_t len)
{
    struct svc_write *wr;
    uv_buf_t b;

    if (c->closing || len == 0)
        return;
    wr = xmalloc(sizeof(*wr) + len + 2);
    wr->req.data = wr;
    wr->conn = c;
    wr->data[0] = (uint8_t)(len >> 8);
    wr->data[1] = (uint8_t)len;
    memcpy(wr->data + 2, pkt, len);
    b = uv_buf_init((char *)wr->data, (unsigned)(len + 2));
    c->nwait++;
    if (uv_write(&wr->req, (uv_stream_t *)&c->h, &b, 1, svc_on_write) != 0) {
        c->nwait--;
        free(wr);
    }
}

/* One answer, now (the asynchronous path: UDP one datagram, TCP one message). */
static void svc_send(const struct svc_to *to, const uint8_t *pkt, size_t len)
{
    struct msghdr m;
    struct iovec iov;

    if (len == 0)
        return;
    if (to->conn) {
        svc_tcp_send(to->conn, pkt, len);
        return;
    }
    memset(&m, 0, sizeof(m));
    iov.iov_base = (void *)(uintptr_t)pkt;
    iov.iov_len = len;
    m.msg_name = (void *)(uintptr_t)&to->peer;
    m.msg_namelen = to->peer_len;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (to->ctrl_len) {
        m.msg_control = (void *)(uintptr_t)to->ctrl;
        m.msg_controllen = to->ctrl_len;
    }
    sendmsg(to->fd, &m, MSG_DONTWAIT);
}

/* ---------------------------------------------------------------- answers */

/* How long an upstream answer is cached: its TTL within dns-min-ttl and dns-max-ttl. */
static uint32_t svc_cache_ttl(const struct dns_service *s, const struct dns_response_view *r)
{
    int64_t ttl = r->min_ttl, lo = s->cfg->dns_min_ttl_ms / 1000,
            hi = s->cfg->dns_max_ttl_ms / 1000;
    int rc = r->rcode & 0xf;

    if (rc != DNS_RCODE_NOERROR && rc != DNS_RCODE_NXDOMAIN)
        return 0;
    if (r->ancount == 0 && ttl == 0)
        return 0; /* no SOA to say how long a negative answer holds */
    if (ttl < lo)
        ttl = lo;
    if (ttl > hi)
        ttl = hi;
    return (uint32_t)ttl;
}

/* The safe-search answer: the CNAME, then the target's A/AAAA records from its response. */
static size_t svc_safe_answer(const struct dns_query *q, const char *target, const uint8_t *pkt,
                              size_t len, uint32_t age, uint8_t *out, size_t cap, size_t limit)
{
    static __thread char text[SVC_SAFE_RRS * 2 * (DNS_PRES_MAX + 1)];
    struct dns_rr rrs[SVC_SAFE_RRS + 1];
    int n = 0;

    rrs[0].name = NULL;
    rrs[0].type = DNS_TYPE_CNAME;
    rrs[0].ttl = DNS_BLOCK_TTL;
    rrs[0].rdata = (const uint8_t *)target;
    rrs[0].rdlen = (uint16_t)strlen(target);
    if (pkt) {
        n = dns_response_addresses(pkt, len, rrs + 1, SVC_SAFE_RRS, text, sizeof(text));
        if (n < 0)
            return dns_answer_rcode(q, DNS_RCODE_SERVFAIL, out, cap);
        for (int i = 1; i <= n; i++)
            rrs[i].ttl = rrs[i].ttl > age ? rrs[i].ttl - age : 0;
    }
    return dns_answer(q, rrs, n + 1, out, cap, limit);
}

static void svc_on_upstream(void *arg, const uint8_t *pkt, size_t len,
                            const struct dns_response_view *r);

/* Forward for a waiting query (or a refresh); 0, or -1 when it could not be sent. */
static int svc_forward(struct dns_service *s, const struct dns_query *q, enum dns_how how,
                       const char *target, const struct svc_to *to, int refresh)
{
    struct svc_wait *wt = xmalloc(sizeof(*wt));

    wt->svc = s;
    wt->q = *q;
    wt->how = how;
    wt->target = target;
    wt->refresh = refresh;
    if (to)
        wt->to = *to;
    else
        memset(&wt->to, 0, sizeof(wt->to));
    if (!s->fwd || dns_forward_query(s->fwd, how == DNS_HOW_SAFE_NAME ? target : q->name, q->qtype,
                                     svc_on_upstream, wt) < 0) {
        free(wt);
        return -1;
    }
    if (wt->to.conn)
        wt->to.conn->nwait++;
    return 0;
}

static void svc_on_upstream(void *arg, const uint8_t *pkt, size_t len,
                            const struct dns_response_view *r)
{
    struct svc_wait *wt = arg;
    struct dns_service *s = wt->svc;
    const char *key = wt->how == DNS_HOW_SAFE_NAME ? wt->target : wt->q.name;
    size_t limit = wt->to.conn ? 0 : wt->q.udp_size, n = 0;
    uint32_t ttl;

    if (pkt) {
        ttl = svc_cache_ttl(s, r);
        if (ttl > 0 && s->cache)
            dns_cache_put(s->cache, key, strlen(key), wt->q.qtype, pkt, len, ttl, clock_now_ms());
    }
    if (wt->refresh || s->stopping)
        goto done;
    if (!pkt) {
        svc_count(s, DNS_ANS_SERVFAIL);
    } else if (wt->how == DNS_HOW_SAFE_NAME) {
        n = svc_safe_answer(&wt->q, wt->target, pkt, len, 0, s->big, sizeof(s->big), limit);
    } else {
        n = dns_answer_response(&wt->q, pkt, len, 0, s->big, sizeof(s->big), limit);
    }
    if (n == 0)
        n = dns_answer_rcode(&wt->q, DNS_RCODE_SERVFAIL, s->big, sizeof(s->big));
    svc_send(&wt->to, s->big, n);
done:
    if (wt->to.conn)
        svc_conn_unref(wt->to.conn);
    free(wt);
}

/* From the cache: the answer's length, 0 on a miss. Starts a refresh when the entry is due. */
static size_t svc_from_cache(struct dns_service *s, const struct dns_query *q, enum dns_how how,
                             const char *target, uint8_t *out, size_t cap, size_t limit)
{
    const char *key = how == DNS_HOW_SAFE_NAME ? target : q->name;
    const uint8_t *pkt;
    size_t len, n;
    uint32_t age;
    int prefetch = 0;

    if (!s->cache)
        return 0;
    pkt =
        dns_cache_get(s->cache, key, strlen(key), q->qtype, clock_now_ms(), &len, &age, &prefetch);
    if (!pkt)
        return 0;
    if (how == DNS_HOW_SAFE_NAME)
        n = svc_safe_answer(q, target, pkt, len, age, out, cap, limit);
    else
        n = dns_answer_response(q, pkt, len, age, out, cap, limit);
    if (n > 0 && prefetch)
        svc_forward(s, q, how, target, NULL, 1);
    return n;
}

/*
 * One query: the answer's length in out when it can be given now, or 0 (dropped, or gone
 * upstream: the answer is sent to *to later).
 */
static size_t svc_query(struct dns_service *s, const uint8_t *pkt, size_t len,
                        const struct sockaddr *peer, const struct svc_to *to, uint8_t *out,
                        size_t cap)
{
    struct dns_query q;
    struct dns_decision d;
    struct svc_client *c;
    const char *why;
    size_t n, limit;
    enum dns_parse rc;
    struct snapshot *snap = s->w->snap;
    int group;

    rc = dns_parse_query(pkt, len, &q, &why);
    if (rc == DNS_DROP) {
        svc_count(s, DNS_ANS_DROPPED);
        return 0;
    }
    c = svc_client(s, peer);
    if (!svc_rate_ok(s, c)) {
        svc_count(s, DNS_ANS_DROPPED);
        return 0;
    }
    if (rc != DNS_OK) {
        svc_count(s, DNS_ANS_ERROR);
        log_debug("dns: %s: %s", c->ip, why);
        return dns_answer_rcode(&q,
                                rc == DNS_FORMERR  ? DNS_RCODE_FORMERR
                                : rc == DNS_NOTIMP ? DNS_RCODE_NOTIMP
                                                   : DNS_RCODE_BADVERS,
                                out, cap);
    }
    if (!c->allowed) {
        svc_count(s, DNS_ANS_REFUSED);
        return dns_answer_rcode(&q, DNS_RCODE_REFUSED, out, cap);
    }
    limit = to->conn ? 0 : q.udp_size;
    group = svc_group(s, c, snap, peer);
    dns_filter_decide(snap->policy, &q, group, clock_now(), &d);
    svc_record(s, snap, c, &q, &d);
    switch (d.how) {
    case DNS_HOW_FORWARD:
        break;
    case DNS_HOW_SAFE_NAME:
        if (q.qtype != DNS_TYPE_A && q.qtype != DNS_TYPE_AAAA) {
            svc_count(s, DNS_ANS_SAFE);
            return svc_safe_answer(&q, d.target, NULL, 0, 0, out, cap, limit);
        }
        break;
    default:
        svc_count(s, d.how == DNS_HOW_BLOCK    ? DNS_ANS_BLOCKED
                     : d.how == DNS_HOW_CANARY ? DNS_ANS_CANARY
                     : d.how == DNS_HOW_ANY    ? DNS_ANS_CACHED
                                               : DNS_ANS_SAFE);
        return dns_filter_answer(&d, &q, &s->block, out, cap, limit);
    }
    n = svc_from_cache(s, &q, d.how, d.target, out, cap, limit);
    if (n > 0) {
        svc_count(s, d.how == DNS_HOW_SAFE_NAME ? DNS_ANS_SAFE : DNS_ANS_CACHED);
        return n;
    }
    if (svc_forward(s, &q, d.how, d.target, to, 0) < 0) {
        svc_count(s, DNS_ANS_SERVFAIL);
        return dns_answer_rcode(&q, DNS_RCODE_SERVFAIL, out, cap);
    }
    svc_count(s, d.how == DNS_HOW_SAFE_NAME ? DNS_ANS_SAFE : DNS_ANS_FORWARDED);
    return 0;
}

/* ---------------------------------------------------------------- UDP */

/* Turn the received IP_PKTINFO / IPV6_PKTINFO into the one to answer with. */
static void svc_reply_ctrl(struct msghdr *m, struct svc_to *to)
{
    struct cmsghdr *cm;

    to->ctrl_len = 0;
    for (cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
        struct msghdr out;
        struct cmsghdr *oc;

        memset(&out, 0, sizeof(out));
        out.msg_control = to->ctrl;
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            pi.ipi_spec_dst = pi.ipi_addr;
            pi.ipi_ifindex = 0;
            out.msg_controllen = CMSG_SPACE(sizeof(pi));
            oc = CMSG_FIRSTHDR(&out);
            oc->cmsg_level = IPPROTO_IP;
            oc->cmsg_type = IP_PKTINFO;
            oc->cmsg_len = CMSG_LEN(sizeof(pi));
            memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
            to->ctrl_len = CMSG_SPACE(sizeof(pi));
            return;
        }
        if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            out.msg_controllen = CMSG_SPACE(sizeof(pi));
            oc = CMSG_FIRSTHDR(&out);
            oc->cmsg_level = IPPROTO_IPV6;
            oc->cmsg_type = IPV6_PKTINFO;
            oc->cmsg_len = CMSG_LEN(sizeof(pi));
            memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
            to->ctrl_len = CMSG_SPACE(sizeof(pi));
            return;
        }
    }
}

static void svc_on_udp(uv_poll_t *h, int status, int events)
{
    struct svc_udp *u = h->data;
    struct dns_service *s = u->svc;
    struct mmsghdr rx[SVC_BATCH], tx[SVC_BATCH];
    struct iovec riov[SVC_BATCH], tiov[SVC_BATCH];
    struct svc_to to[SVC_BATCH];
    _Alignas(struct cmsghdr) uint8_t rctrl[SVC_BATCH][64];

    if (status < 0 || !(events & UV_READABLE))
        return;
    for (int round = 0; round < SVC_ROUNDS; round++) {
        int n, k = 0;

        memset(rx, 0, sizeof(rx));
        for (int i = 0; i < SVC_BATCH; i++) {
            riov[i].iov_base = s->in[i];
            riov[i].iov_len = SVC_IN_MAX;
            rx[i].msg_hdr.msg_iov = &riov[i];
            rx[i].msg_hdr.msg_iovlen = 1;
            rx[i].msg_hdr.msg_name = &to[i].peer;
            rx[i].msg_hdr.msg_namelen = sizeof(to[i].peer);
            rx[i].msg_hdr.msg_control = rctrl[i];
            rx[i].msg_hdr.msg_controllen = sizeof(rctrl[i]);
        }
        n = recvmmsg(u->fd, rx, SVC_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        memset(tx, 0, sizeof(tx[0]) * (size_t)n);
        for (int i = 0; i < n; i++) {
            size_t len;

            to[i].conn = NULL;
            to[i].fd = u->fd;
            to[i].peer_len = rx[i].msg_hdr.msg_namelen;
            svc_reply_ctrl(&rx[i].msg_hdr, &to[i]);
            if (rx[i].msg_hdr.msg_flags & MSG_TRUNC)
                continue; /* larger than any query: not worth an answer */
            len = svc_query(s, s->in[i], rx[i].msg_len, (struct sockaddr *)&to[i].peer, &to[i],
                            s->out[k], SVC_OUT_MAX);
            if (len == 0)
                continue;
            tiov[k].iov_base = s->out[k];
            tiov[k].iov_len = len;
            tx[k].msg_hdr.msg_iov = &tiov[k];
            tx[k].msg_hdr.msg_iovlen = 1;
            tx[k].msg_hdr.msg_name = &to[i].peer;
            tx[k].msg_hdr.msg_namelen = to[i].peer_len;
            if (to[i].ctrl_len) {
                tx[k].msg_hdr.msg_control = to[i].ctrl;
                tx[k].msg_hdr.msg_controllen = to[i].ctrl_len;
            }
            k++;
        }
        for (int sent = 0; sent < k;) {
            int m = sendmmsg(u->fd, tx + sent, (unsigned)(k - sent), MSG_DONTWAIT);
            if (m <= 0)
                break; /* a full send buffer drops answers, as it would drop queries */
            sent += m;
        }
        if (n < SVC_BATCH)
            break;
    }
}

/* ---------------------------------------------------------------- TCP */

static void svc_conn_on_closed(uv_handle_t *h)
{
    struct svc_conn *c = h->data;

    if (--c->open_handles == 0 && c->nwait == 0) {
        free(c->in);
        free(c);
    }
}

static void svc_conn_close(struct svc_conn *c)
{
    struct dns_service *s = c->svc;

    if (c->closing)
        return;
    c->closing = 1;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    uv_close((uv_handle_t *)&c->h, svc_conn_on_closed);
    uv_close((uv_handle_t *)&c->idle, svc_conn_on_closed);
}

static void svc_conn_unref(struct svc_conn *c)
{
    if (--c->nwait == 0 && c->closing && c->open_handles == 0) {
        free(c->in);
        free(c);
    }
}

static void svc_conn_on_idle(uv_timer_t *t)
{
    svc_conn_close(t->data);
}

static void svc_conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct svc_conn *c = h->data;

    (void)hint;
    if (!c->in)
        c->in = xmalloc(SVC_TCP_MAX + 2);
    *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(SVC_TCP_MAX + 2 - c->in_len));
}

static void svc_conn_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct svc_conn *c = st->data;
    struct dns_service *s = c->svc;
    struct svc_to to;
    size_t off = 0;

    (void)buf;
    if (nread < 0) {
        svc_conn_close(c);
        return;
    }
    c->in_len += (size_t)nread;
    memset(&to, 0, sizeof(to));
    to.conn = c;
    while (c->in_len - off >= 2) {
        size_t want = (size_t)c->in[off] << 8 | c->in[off + 1], n;
        if (c->in_len - off - 2 < want)
            break;
        n = svc_query(s, c->in + off + 2, want, (struct sockaddr *)&c->peer, &to, s->big,
                      sizeof(s->big));
        svc_tcp_send(c, s->big, n);
        off += want + 2;
        if (c->closing)
            return;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    uv_timer_again(&c->idle);
}

static void svc_on_connection(uv_stream_t *server, int status)
{
    struct dns_service *s = server->data;
    struct svc_conn *c;
    int len = sizeof(struct sockaddr_storage);

    if (status < 0 || s->stopping)
        return;
    c = xcalloc(1, sizeof(*c));
    c->svc = s;
    uv_tcp_init(&s->w->loop, &c->h);
    uv_timer_init(&s->w->loop, &c->idle);
    c->h.data = c->idle.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->h) != 0 ||
        uv_tcp_getpeername(&c->h, (struct sockaddr *)&c->peer, &len) != 0 ||
        s->nconns > DNS_SERVICE_TCP_MAX) {
        svc_conn_close(c);
        return;
    }
    uv_timer_start(&c->idle, svc_conn_on_idle, DNS_SERVICE_TCP_IDLE_MS, DNS_SERVICE_TCP_IDLE_MS);
    uv_read_start((uv_stream_t *)&c->h, svc_conn_alloc, svc_conn_on_read);
}

/* ---------------------------------------------------------------- start and stop */

int dns_service_upstreams(const struct config *cfg, struct config_addr *out, int max)
{
    char line[512];
    FILE *f;
    int n = 0;

    if (cfg->ndns_upstream > 0 || cfg->nresolvers > 0) {
        const struct config_addr *src = cfg->ndns_upstream ? cfg->dns_upstream : cfg->resolvers;
        int count = cfg->ndns_upstream ? cfg->ndns_upstream : cfg->nresolvers;
        for (; n < count && n < max; n++)
            out[n] = src[n];
        return n;
    }
    f = fopen("/etc/resolv.conf", "r");
    if (!f)
        return 0;
    while (n < max && fgets(line, sizeof(line), f)) {
        char addr[CONFIG_HOST_MAX];
        if (sscanf(line, " nameserver %63s", addr) != 1 || strchr(addr, '%'))
            continue;
        snprintf(out[n].host, sizeof(out[n].host), "%s", addr);
        out[n].port = 53;
        n++;
    }
    fclose(f);
    return n;
}

static void svc_block_addrs(const struct config *cfg, struct dns_block_addrs *b)
{
    memset(b, 0, sizeof(*b));
    for (int i = 0; i < cfg->ndns_block_address; i++) {
        const struct config_cidr *a = &cfg->dns_block_address[i];
        if (a->family == AF_INET) {
            memcpy(b->a4, a->addr, 4);
            b->has4 = 1;
        } else {
            memcpy(b->a6, a->addr, 16);
            b->has6 = 1;
        }
    }
}

struct dns_service *dns_service_start(struct worker *w, const int (*fds)[2], int n, char *err,
                                      size_t errlen)
{
    struct dns_service *s = xcalloc(1, sizeof(*s));

    s->w = w;
    s->cfg = w->srv->cfg;
    svc_block_addrs(s->cfg, &s->block);
    if (w->srv->ndns_upstream > 0)
        s->fwd = dns_forward_create(&w->loop, w->srv->dns_upstream, w->srv->ndns_upstream,
                                    s->cfg->dns_timeout_ms, w->stats.dns_down, err, errlen);
    if (!s->fwd && w->srv->ndns_upstream > 0) {
        for (int i = 0; i < n; i++) {
            close(fds[i][0]);
            close(fds[i][1]);
        }
        free(s);
        return NULL;
    }
    if (s->cfg->dns_cache_memory > 0) {
        size_t share = s->cfg->dns_cache_memory / (size_t)w->srv->nworkers;
        s->cache = dns_cache_create(share);
    }
    s->udp = xcalloc((size_t)n, sizeof(*s->udp));
    s->tcp = xcalloc((size_t)n, sizeof(*s->tcp));
    s->n = n;
    for (int i = 0; i < n; i++) {
        s->udp[i].fd = fds[i][0];
        s->udp[i].svc = s;
        uv_poll_init(&w->loop, &s->udp[i].poll, fds[i][0]);
        s->udp[i].poll.data = &s->udp[i];
        uv_poll_start(&s->udp[i].poll, UV_READABLE, svc_on_udp);
        uv_tcp_init(&w->loop, &s->tcp[i]);
        s->tcp[i].data = s;
        if (uv_tcp_open(&s->tcp[i], fds[i][1]) != 0 ||
            uv_listen((uv_stream_t *)&s->tcp[i], 128, svc_on_connection) != 0)
            log_warnx("dns: worker %d: cannot listen on TCP socket %d", w->id, fds[i][1]);
        s->open_handles += 2;
    }
    uv_timer_init(&w->loop, &s->tally_timer);
    s->tally_timer.data = s;
    uv_timer_start(&s->tally_timer, svc_on_tally, SVC_TALLY_MS, SVC_TALLY_MS);
    s->open_handles++;
    return s;
}

static void svc_on_closed(uv_handle_t *h)
{
    struct dns_service *s = h->data;

    if (--s->open_handles == 0) {
        for (int i = 0; i < s->n; i++)
            close(s->udp[i].fd); /* only now: libuv may look at it until the close ends */
        dns_cache_free(s->cache);
        free(s->udp);
        free(s->tcp);
        free(s);
    }
}

void dns_service_stop(struct dns_service *s)
{
    if (!s)
        return;
    s->stopping = 1;
    while (s->conns)
        svc_conn_close(s->conns);
    dns_forward_close(s->fwd); /* waiting queries end now, without answers */
    s->fwd = NULL;
    svc_on_tally(&s->tally_timer);
    uv_close((uv_handle_t *)&s->tally_timer, svc_on_closed);
    for (int i = 0; i < s->n; i++) {
        s->udp[i].poll.data = s;
        uv_poll_stop(&s->udp[i].poll);
        uv_close((uv_handle_t *)&s->udp[i].poll, svc_on_closed);
        uv_close((uv_handle_t *)&s->tcp[i], svc_on_closed);
    }
}
