#include "common/compat.h"

#include <arpa/inet.h>
#include <ctype.h>

#include "dns/filter.h"
#include "dns/wire.h"
#include "http/url.h"

/* Names that make software turn a bypass off when they do not resolve. */
static const char *const filter_canaries[] = {
    "use-application-dns.net", /* Firefox: no automatic DNS over HTTPS */
    "mask.icloud.com",         /* iCloud Private Relay */
    "mask-h2.icloud.com",
};

/*
 * The names each engine documents for DNS-level safe search (docs/REQUIREMENTS.md). Google's
 * and Yandex's country domains are recognised by the policy (its verdict says which engine);
 * the other engines' rewrites apply to these names only, so that, say, music.youtube.com or
 * links.duckduckgo.com resolve as they are.
 */
static const struct {
    const char *name;
    enum policy_safe_search ss;
} filter_safe_names[] = {
    {"www.bing.com", POLICY_SS_BING},
    {"bing.com", POLICY_SS_BING},
    {"www.youtube.com", POLICY_SS_YOUTUBE},
    {"m.youtube.com", POLICY_SS_YOUTUBE},
    {"youtubei.googleapis.com", POLICY_SS_YOUTUBE},
    {"youtube.googleapis.com", POLICY_SS_YOUTUBE},
    {"www.youtube-nocookie.com", POLICY_SS_YOUTUBE},
    {"duckduckgo.com", POLICY_SS_DUCKDUCKGO},
    {"www.duckduckgo.com", POLICY_SS_DUCKDUCKGO},
    {"start.duckduckgo.com", POLICY_SS_DUCKDUCKGO},
    {"pixabay.com", POLICY_SS_PIXABAY},
    {"www.pixabay.com", POLICY_SS_PIXABAY},
    {"www.ecosia.org", POLICY_SS_ECOSIA},
    {"search.brave.com", POLICY_SS_BRAVE},
};

static int filter_is(const struct dns_query *q, const char *name)
{
    return strcmp(q->name, name) == 0;
}

/*
 * Where the part of a name the policy looks at starts: the whole name, or for a name longer
 * than any host (only escaped bytes make one) its longest tail of whole labels that is not,
 * so that "\001\001...\001.blocked.example" is still under blocked.example.
 */
static size_t filter_suffix(const char *name, size_t len)
{
    if (len <= URL_HOST_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '\\')
            i += isdigit((unsigned char)name[i + 1]) ? 3 : 1;
        else if (name[i] == '.' && len - i - 1 <= URL_HOST_MAX)
            return i + 1;
    }
    return 0;
}

/* The name as the host of http://NAME/, for the policy. Escaped names ("a\.b") keep their
 * escapes: they match no list entry, which is right for names no browser can ask for. */
static void filter_url(const char *name, struct url *u)
{
    size_t n = strlen(name);

    memcpy(u->text, "http://", 7);
    memcpy(u->text + 7, name, n);
    u->text[7 + n] = '/';
    u->text[8 + n] = '\0';
    u->len = 8 + n;
    u->scheme_len = 4;
    u->host_off = 7;
    u->host_len = n;
    u->path_off = 7 + n;
    u->path_len = 1;
    u->query_off = u->len;
    u->query_len = 0;
    u->has_query = 0;
    u->port = 80;
    u->host_type = URL_HOST_NAME;
}

/* Safe search for an allowed name: 1 if d now says how. */
static int filter_safe_search(const struct dns_query *q, struct dns_decision *d)
{
    enum policy_safe_search ss = d->v.safe_search;
    const char *host;

    if (ss == POLICY_SS_NONE || ss == POLICY_SS_YAHOO)
        return 0;
    host = policy_safe_search_host(ss, d->v.youtube);
    if (!host)
        return 0;
    if (ss == POLICY_SS_YANDEX) {
        if (inet_pton(AF_INET, host, d->addr4) != 1)
            return 0;
        d->how = DNS_HOW_SAFE_ADDR;
        return 1;
    }
    if (ss != POLICY_SS_GOOGLE) {
        size_t i;
        for (i = 0; i < HAVEN_ARRAY_LEN(filter_safe_names); i++) {
            if (filter_safe_names[i].ss == ss && filter_is(q, filter_safe_names[i].name))
                break;
        }
        if (i == HAVEN_ARRAY_LEN(filter_safe_names))
            return 0;
    }
    d->how = DNS_HOW_SAFE_NAME;
    d->target = host;
    return 1;
}

void dns_filter_decide(const struct policy *p, const struct dns_query *q, int group, int64_t t,
                       struct dns_decision *d)
{
    struct url u;

    memset(d, 0, sizeof(*d));
    d->how = DNS_HOW_FORWARD;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(filter_canaries); i++) {
        if (filter_is(q, filter_canaries[i])) {
            d->how = DNS_HOW_CANARY;
            return;
        }
    }
    if (q->name_len == 0) {
        if (q->qtype == DNS_TYPE_ANY)
            d->how = DNS_HOW_ANY;
        return;
    }
    filter_url(q->name + filter_suffix(q->name, q->name_len), &u);
    policy_decide(p, &u, group, t, &d->v);
    d->decided = 1;
    if (d->v.action == POLICY_BLOCK) {
        d->how = DNS_HOW_BLOCK;
        d->page = policy_dns_block_page(p, d->v.group);
        return;
    }
    if (q->qtype == DNS_TYPE_ANY) {
        d->how = DNS_HOW_ANY;
        return;
    }
    filter_safe_search(q, d);
}

size_t dns_filter_answer(const struct dns_decision *d, const struct dns_query *q,
                         const struct dns_block_addrs *ba, uint8_t *out, size_t cap, size_t limit)
{
    static const uint8_t hinfo[] = {7, 'R', 'F', 'C', '8', '4', '8', '2', 0};
    struct dns_rr rr = {NULL, 0, DNS_BLOCK_TTL, NULL, 0};

    switch (d->how) {
    case DNS_HOW_CANARY:
        return dns_answer_rcode(q, DNS_RCODE_NXDOMAIN, out, cap);
    case DNS_HOW_BLOCK:
        if (!d->page)
            return dns_answer_rcode(q, DNS_RCODE_NXDOMAIN, out, cap);
        if (q->qtype == DNS_TYPE_A && ba->has4) {
            rr.type = DNS_TYPE_A;
            rr.rdata = ba->a4;
            rr.rdlen = 4;
        } else if (q->qtype == DNS_TYPE_AAAA && ba->has6) {
            rr.type = DNS_TYPE_AAAA;
            rr.rdata = ba->a6;
            rr.rdlen = 16;
        } else {
            return dns_answer_rcode(q, DNS_RCODE_NOERROR, out, cap);
        }
        return dns_answer(q, &rr, 1, out, cap, limit);
    case DNS_HOW_ANY:
        rr.type = 13; /* HINFO */
        rr.rdata = hinfo;
        rr.rdlen = sizeof(hinfo);
        return dns_answer(q, &rr, 1, out, cap, limit);
    case DNS_HOW_SAFE_ADDR:
        if (q->qtype != DNS_TYPE_A)
            return dns_answer_rcode(q, DNS_RCODE_NOERROR, out, cap);
        rr.type = DNS_TYPE_A;
        rr.rdata = d->addr4;
        rr.rdlen = 4;
        return dns_answer(q, &rr, 1, out, cap, limit);
    case DNS_HOW_FORWARD:
    case DNS_HOW_SAFE_NAME:
        break;
    }
    return 0;
}

const char *dns_type_name(uint16_t type, char *buf, size_t size)
{
    static const struct {
        uint16_t type;
        const char *name;
    } names[] = {
        {DNS_TYPE_A, "A"},
        {DNS_TYPE_NS, "NS"},
        {DNS_TYPE_CNAME, "CNAME"},
        {DNS_TYPE_SOA, "SOA"},
        {DNS_TYPE_PTR, "PTR"},
        {DNS_TYPE_MX, "MX"},
        {DNS_TYPE_TXT, "TXT"},
        {DNS_TYPE_AAAA, "AAAA"},
        {DNS_TYPE_SRV, "SRV"},
        {DNS_TYPE_HTTPS, "HTTPS"},
        {64, "SVCB"},
        {DNS_TYPE_ANY, "ANY"},
    };

    for (size_t i = 0; i < HAVEN_ARRAY_LEN(names); i++) {
        if (names[i].type == type)
            return names[i].name;
    }
    snprintf(buf, size, "TYPE%u", type);
    return buf;
}
