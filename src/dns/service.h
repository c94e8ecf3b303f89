/*
 * service.h -- the DNS filter inside `haven serve`: one per worker thread.
 *
 * Each worker answers on its own UDP and TCP sockets for every dns-listen address (bound by
 * the server with SO_REUSEPORT, so the kernel spreads clients over the workers and one client
 * keeps to one worker). UDP is read and answered in batches (recvmmsg/sendmmsg); the answer
 * leaves from the address the query came to (IP_PKTINFO), so wildcard addresses work. TCP
 * connections carry length-prefixed messages (RFC 7766), answered in turn, and close after
 * DNS_SERVICE_TCP_IDLE_MS of silence.
 *
 * For each query: parse (dns/wire.h), check the client (dns-allow and the network ranges,
 * else REFUSED; the per-client rate limit, else no answer), find its group (IP session, then
 * network range, then the default), decide (dns/filter.h), record it (access log and
 * records), then answer from the filter, from the worker's cache (dns/cache.h) or through the
 * worker's forwarder (dns/forward.h). Nothing on this path takes a lock or waits.
 */
#ifndef HAVEN_DNS_SERVICE_H
#define HAVEN_DNS_SERVICE_H

#include <stddef.h>

struct config;
struct config_addr;
struct worker;
struct dns_service;

#define DNS_SERVICE_TCP_IDLE_MS 10000
#define DNS_SERVICE_TCP_MAX 256     /* client TCP connections per worker */
#define DNS_SERVICE_UPSTREAMS_MAX 8 /* resolvers forwarded to */

/* How queries were answered, for /metrics (haven_dns_queries_total{answer}). */
enum dns_answer_kind {
    DNS_ANS_FORWARDED, /* asked upstream */
    DNS_ANS_CACHED,    /* from the cache */
    DNS_ANS_BLOCKED,   /* blocked by the policy */
    DNS_ANS_SAFE,      /* safe-search rewrite */
    DNS_ANS_CANARY,    /* a canary name: NXDOMAIN */
    DNS_ANS_REFUSED,   /* a client outside the allowed ranges */
    DNS_ANS_DROPPED,   /* over the rate limit, or not worth an answer */
    DNS_ANS_ERROR,     /* FORMERR, NOTIMP, BADVERS */
    DNS_ANS_SERVFAIL,  /* no upstream answered */
    DNS_ANS_KINDS
};

const char *dns_answer_kind_name(enum dns_answer_kind k);

/*
 * Start answering on w's loop: fds holds n pairs (UDP, TCP) of bound sockets, which the
 * service now owns. Call on the worker's thread, before its loop runs. Returns NULL with err.
 */
struct dns_service *dns_service_start(struct worker *w, const int (*fds)[2], int n, char *err,
                                      size_t errlen);

/* Stop listening and close connections and the forwarder; frees s once libuv is done (the
 * worker's loop must run on). */
void dns_service_stop(struct dns_service *s);

/* The upstream resolvers for cfg: dns-upstream, else resolver, else the nameservers of
 * /etc/resolv.conf. Returns how many were written to out (at most max). */
int dns_service_upstreams(const struct config *cfg, struct config_addr *out, int max);

#endif
