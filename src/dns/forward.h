/*
 * forward.h -- asking the upstream resolvers, for one worker's DNS filter.
 *
 * One forwarder per worker thread, on its loop; nothing is shared between threads. Queries go
 * over UDP (EDNS0, DNS_UDP_OUR bytes) to the first server that is up, in the configured order,
 * with a random id from a fresh socket per forwarder (the kernel picks a random port); a
 * response is taken only from the server asked, for the id, name and type asked. A truncated
 * response is asked again over TCP from the same server.
 *
 * Health: a server that does not answer within the timeout is asked no more for that query
 * (the next one is); after DNS_FORWARD_FAILS timeouts in a row it is marked down and the
 * others are preferred; a down server is probed (". NS") every DNS_FORWARD_PROBE_MS and is up
 * again at its first answer. When every server is down they are still tried, in order. A
 * SERVFAIL or REFUSED answer is asked of the next server too, once.
 *
 * The callback runs exactly once per query on the loop: with the response (valid only during
 * the call; already checked by dns_parse_response) or with pkt NULL when no server answered
 * in time or the forwarder is closing.
 */
#ifndef HAVEN_DNS_FORWARD_H
#define HAVEN_DNS_FORWARD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct config_addr;
struct dns_forward;
struct dns_response_view;

#define DNS_FORWARD_MAX_SERVERS 8
#define DNS_FORWARD_FAILS 3
#define DNS_FORWARD_PROBE_MS 5000
#define DNS_FORWARD_TRIES 3 /* servers asked per query at most */

typedef void (*dns_forward_cb)(void *arg, const uint8_t *pkt, size_t len,
                               const struct dns_response_view *r);

/* A forwarder on loop for servers (IP literals with ports). down[i] (n entries, owned by the
 * caller, outliving the forwarder; read by other threads for metrics) is set to 1 while
 * server i is marked down. Returns NULL with err when a socket cannot be made or there is no
 * server. */
struct dns_forward *dns_forward_create(uv_loop_t *loop, const struct config_addr *servers, int n,
                                       int64_t timeout_ms, atomic_int *down, char *err,
                                       size_t errlen);

/* Ask for name (presentation form) and qtype. Returns 0 (cb will be called), or -1 when the
 * name cannot be sent or too many queries are outstanding (cb is not called). */
int dns_forward_query(struct dns_forward *f, const char *name, uint16_t qtype, dns_forward_cb cb,
                      void *arg);

/* Call every outstanding callback with NULL, close the sockets and free f once libuv is done
 * with them (run the loop afterwards). */
void dns_forward_close(struct dns_forward *f);

#endif
