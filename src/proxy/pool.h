/*
 * pool.h -- connections to origin servers, and each worker's pool of idle ones.
 *
 * An upstream connection belongs to one client connection while it carries an
 * exchange (u->c set), or to its worker's pool while idle (u->c NULL). The pool
 * is a most-recently-used list per worker, keyed by "host:port" as the proxy
 * asked for it (after any safe-search rewrite), capped by `upstream-pool` and
 * emptied of connections idle longer than `timeout-upstream-idle`. An idle
 * connection is read so that a close by the origin, or stray bytes, retire it.
 * Only the worker's loop thread touches its pool.
 */
#ifndef HAVEN_PROXY_POOL_H
#define HAVEN_PROXY_POOL_H

#include <stdint.h>
#include <uv.h>

#include "http/url.h"

struct worker;
struct conn;
struct tls_stream;

#define POOL_KEY_MAX (URL_HOST_MAX + 8)

struct upstream {
    uv_tcp_t tcp; /* tcp.data and connect.data point back here */
    uv_connect_t connect;
    struct worker *w;
    struct conn *c;               /* the user; NULL while idle in the pool */
    struct upstream *next, *prev; /* the pool's list, while idle */
    uint64_t idle_since;          /* loop time (ms) it went idle */
    int writes;                   /* uv_write requests not yet called back */
    int reused;                   /* used before: the origin may have closed it meanwhile */
    struct tls_stream *tls;       /* inspected HTTPS: TLS to the origin (never pooled) */
    char key[POOL_KEY_MAX];
};

/* A new, unconnected upstream handle on w's loop, used by c. */
struct upstream *upstream_new(struct worker *w, struct conn *c);

/*
 * Close u; it is freed once libuv has closed it. If a client connection still
 * uses it, proxy_upstream_closed(c) is called then (the connection waits for it).
 */
void upstream_close(struct upstream *u);

/* An idle connection to key ("host:port"), now used by c, or NULL. */
struct upstream *pool_take(struct worker *w, const char *key, struct conn *c);

/*
 * Give u back to w's pool under key once its exchange is over; a full pool
 * closes its oldest idle connection. A connection with writes in flight, or
 * when the pool is off, is closed instead.
 */
void pool_put(struct worker *w, struct upstream *u, const char *key);

/* Start the pool's timer on w's loop (worker start), and close everything (worker stop). */
void pool_start(struct worker *w);
void pool_stop(struct worker *w);

/* Called by pool.c when an upstream in use by c has been closed (proxy.c). */
void proxy_upstream_closed(struct conn *c);

#endif
