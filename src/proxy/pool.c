/*
 * pool.c -- connections to origin servers, and each worker's pool of idle ones.
 */
#include "common/compat.h"

#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/pool.h"
#include "proxy/server.h"
#include "proxy/worker.h"
#include "tls/stream.h"

#define POOL_SWEEP_MS 1000

struct upstream *upstream_new(struct worker *w, struct conn *c)
{
    struct upstream *u = xcalloc(1, sizeof(*u));

    u->w = w;
    u->c = c;
    uv_tcp_init(&w->loop, &u->tcp);
    u->tcp.data = u;
    uv_tcp_nodelay(&u->tcp, 1);
    return u;
}

static void upstream_on_closed(uv_handle_t *h)
{
    struct upstream *u = h->data;

    if (u->c)
        proxy_upstream_closed(u->c);
    if (u->tls) {
        tls_stream_free(u->tls);
        free(u->tls);
    }
    free(u);
}

static void pool_unlink(struct worker *w, struct upstream *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else
        w->pool = u->next;
    if (u->next)
        u->next->prev = u->prev;
    else
        w->pool_tail = u->prev;
    u->next = u->prev = NULL;
    w->npool--;
}

void upstream_close(struct upstream *u)
{
    uv_close((uv_handle_t *)&u->tcp, upstream_on_closed);
}

/* An idle connection that says anything (a close, stray bytes) is retired. */
static void pool_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static __thread char scratch[512];

    (void)h;
    (void)suggested;
    *b = uv_buf_init(scratch, sizeof(scratch));
}

static void pool_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct upstream *u = s->data;

    (void)b;
    if (n == 0)
        return;
    pool_unlink(u->w, u);
    upstream_close(u);
}

struct upstream *pool_take(struct worker *w, const char *key, struct conn *c)
{
    for (struct upstream *u = w->pool; u; u = u->next) {
        if (strcmp(u->key, key) != 0)
            continue;
        pool_unlink(w, u);
        uv_read_stop((uv_stream_t *)&u->tcp);
        u->c = c;
        u->reused = 1;
        return u;
    }
    return NULL;
}

void pool_put(struct worker *w, struct upstream *u, const char *key)
{
    u->c = NULL;
    uv_read_stop((uv_stream_t *)&u->tcp);
    if (u->writes > 0 || u->tls || w->srv->cfg->upstream_pool == 0 || w->draining ||
        uv_read_start((uv_stream_t *)&u->tcp, pool_on_alloc, pool_on_read) != 0) {
        upstream_close(u);
        return;
    }
    if (w->npool >= w->srv->cfg->upstream_pool) {
        struct upstream *old = w->pool_tail;
        pool_unlink(w, old);
        upstream_close(old);
    }
    snprintf(u->key, sizeof(u->key), "%s", key);
    u->idle_since = uv_now(&w->loop);
    u->reused = 0;
    u->prev = NULL;
    u->next = w->pool;
    if (w->pool)
        w->pool->prev = u;
    else
        w->pool_tail = u;
    w->pool = u;
    w->npool++;
}

/* The oldest are at the tail: close those idle for longer than the timeout. */
static void pool_on_sweep(uv_timer_t *t)
{
    struct worker *w = t->data;
    uint64_t now = uv_now(&w->loop);
    uint64_t limit = (uint64_t)w->srv->cfg->timeout_upstream_idle_ms;

    while (w->pool_tail && now - w->pool_tail->idle_since >= limit) {
        struct upstream *u = w->pool_tail;
        pool_unlink(w, u);
        upstream_close(u);
    }
}

void pool_start(struct worker *w)
{
    uv_timer_init(&w->loop, &w->pool_timer);
    w->pool_timer.data = w;
    uv_timer_start(&w->pool_timer, pool_on_sweep, POOL_SWEEP_MS, POOL_SWEEP_MS);
}

static void pool_on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

void pool_stop(struct worker *w)
{
    while (w->pool) {
        struct upstream *u = w->pool;
        pool_unlink(w, u);
        upstream_close(u);
    }
    uv_close((uv_handle_t *)&w->pool_timer, pool_on_timer_closed);
}
