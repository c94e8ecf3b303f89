/*
 * worker.h -- one worker thread of `haven serve`: its libuv loop, its
 * listeners and its counters. Shared by server.c (which starts workers) and
 * proxy.c (which serves the connections a worker accepts).
 *
 * A worker shares nothing with the others but the server (read-only after
 * start, except the atomics) and the snapshots it holds references to.
 * Counters are written only by their worker and read by the status page with
 * relaxed atomics.
 */
#ifndef HAVEN_PROXY_WORKER_H
#define HAVEN_PROXY_WORKER_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "dns/service.h"
#include "policy/policy.h"

struct server;
struct snapshot;
struct resolver;
struct conn;
struct upstream;

#define WORKER_MAX_LISTENERS 8

/* What /metrics and the status page count, per worker. */
struct worker_stats {
    _Atomic uint64_t requests;
    _Atomic uint64_t verdicts[3][POLICY_MAX_CATEGORIES + 1]; /* [action][category + 1] */
    _Atomic uint64_t connections;                            /* open now */
    _Atomic uint64_t tunnels;                                /* open now */
    _Atomic uint64_t upstream_errors[5];            /* connect, dns, timeout, reset, certificate */
    _Atomic uint64_t tls_inspected;                 /* CONNECTs decrypted */
    _Atomic uint64_t rejected;                      /* 503: over max-connections */
    _Atomic uint64_t upstream_reused;               /* exchanges on a pooled connection */
    _Atomic uint64_t tunnels_spliced;               /* tunnels handed to splice(2) */
    _Atomic uint64_t dns_answers[DNS_ANS_KINDS];    /* DNS queries, by how they were answered */
    atomic_int dns_down[DNS_SERVICE_UPSTREAMS_MAX]; /* 1: this worker marked the resolver down */
};

enum worker_upstream_error {
    UPSTREAM_CONNECT,
    UPSTREAM_DNS,
    UPSTREAM_TIMEOUT,
    UPSTREAM_RESET,
    UPSTREAM_CERT,
};

struct worker {
    int id;
    struct server *srv;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_tcp_t listeners[WORKER_MAX_LISTENERS];
    int nlisteners;
    uv_async_t wake;       /* reload or stop requested */
    struct snapshot *snap; /* current snapshot (one reference) */
    struct resolver *resolver;
    struct conn *conns;                /* every open connection, for drain and timeouts */
    struct upstream *pool, *pool_tail; /* idle origin connections, most recent first */
    int npool;
    uv_timer_t pool_timer;
    int draining;
    uv_timer_t drain_timer;
    uint64_t drain_started; /* loop time, ms */
    struct worker_stats stats;
    struct match_scratch *scratch; /* the safeguarding monitor's, for this thread */
    struct dns_service *dns;       /* the DNS filter on this worker, or NULL */
};

static inline void worker_count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

#endif
