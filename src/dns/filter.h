/*
 * filter.h -- what the DNS filter does with one query: the decision, apart from any socket.
 *
 * dns_filter_decide() takes a parsed query, the client's group and the policy snapshot and
 * says how to answer, in this order (docs/dns.md):
 *   1. canary names (use-application-dns.net, mask.icloud.com, mask-h2.icloud.com):
 *      NXDOMAIN for everyone, so Firefox keeps its DNS-over-HTTPS off and iCloud Private
 *      Relay stays off;
 *   2. the policy, for the name as a host (`http://NAME/`): a block (any tier, the locked
 *      tier included) is answered NXDOMAIN, or with the block page's address for groups
 *      with `dns-block page`; a warning cannot be shown over DNS and is answered normally;
 *   3. qtype ANY: one HINFO record (RFC 8482), never the whole set;
 *   4. safe search, for the exact names each engine documents (www.google.<cc> CNAME
 *      forcesafesearch.google.com, ...): a CNAME to the engine's enforcing name, or an
 *      address (Yandex);
 *   5. everything else is forwarded.
 * Nothing here allocates or takes a lock: it runs for every query on a worker thread.
 */
#ifndef HAVEN_DNS_FILTER_H
#define HAVEN_DNS_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

struct dns_query;

enum dns_how {
    DNS_HOW_FORWARD,   /* ask upstream (or the cache) */
    DNS_HOW_BLOCK,     /* blocked by the policy: see page */
    DNS_HOW_CANARY,    /* NXDOMAIN, whatever the policy */
    DNS_HOW_ANY,       /* the RFC 8482 HINFO answer */
    DNS_HOW_SAFE_NAME, /* a CNAME to target, with the target's records when qtype is A/AAAA */
    DNS_HOW_SAFE_ADDR, /* safe search by address: A addr4, AAAA none */
};

struct dns_decision {
    enum dns_how how;
    int decided;             /* the policy was asked: v is filled */
    struct policy_verdict v; /* the policy's verdict for the name */
    int page;                /* DNS_HOW_BLOCK: answer with the block page's address */
    const char *target;      /* DNS_HOW_SAFE_NAME: the enforcing name (static) */
    uint8_t addr4[4];        /* DNS_HOW_SAFE_ADDR */
};

/* The addresses given for blocked names to `dns-block page` groups (from the configuration). */
struct dns_block_addrs {
    int has4, has6;
    uint8_t a4[4], a6[16];
};

#define DNS_BLOCK_TTL 60 /* TTL of the answers haven makes itself */

/* Decide how to answer q from a client of group at t (seconds since the epoch). */
void dns_filter_decide(const struct policy *p, const struct dns_query *q, int group, int64_t t,
                       struct dns_decision *d);

/*
 * The answer for a decision haven answers itself (BLOCK, CANARY, ANY, SAFE_ADDR) into out
 * (cap bytes; limit as for dns_answer). Returns its length, or 0 when the decision needs
 * upstream (FORWARD, SAFE_NAME) or the answer does not fit.
 */
size_t dns_filter_answer(const struct dns_decision *d, const struct dns_query *q,
                         const struct dns_block_addrs *ba, uint8_t *out, size_t cap, size_t limit);

/* "A", "AAAA", ... or the number ("TYPE65" style: "65") in buf, for logs and records. */
const char *dns_type_name(uint16_t type, char *buf, size_t size);

#endif
