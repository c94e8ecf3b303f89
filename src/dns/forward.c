#include "common/compat.h"

#include <stdatomic.h>

#include <openssl/rand.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "dns/forward.h"
#include "dns/wire.h"

#define FWD_MAX_PENDING 8192 /* outstanding queries per worker */
#define FWD_TICK_MS 50
#define FWD_TCP_MAX (65535 + 2)

struct fwd_server {
    struct sockaddr_storage ss;
    char text[CONFIG_HOST_MAX + 8];
    int fails;         /* timeouts in a row */
    atomic_int *down;  /* the caller's; read by the metrics of other threads */
    uint64_t probe_at; /* loop time of the next probe while down */
    int probing;       /* a probe is outstanding */
};

struct fwd_tcp;

struct fwd_query {
    uint16_t id;
    uint16_t qtype;
    char name[DNS_PRES_MAX + 1];
    int server;        /* asked now */
    unsigned tried;    /* bit per server asked */
    int tries;         /* servers asked */
    int probe;         /* a health probe: no callback */
    uint64_t deadline; /* loop time */
    dns_forward_cb cb;
    void *arg;
    struct fwd_tcp *tcp; /* asked again over TCP */
    struct fwd_query *prev, *next;
};

/* A TCP exchange for a truncated answer; freed when its handle has closed. */
struct fwd_tcp {
    uv_tcp_t h;
    struct dns_forward *f;
    uv_connect_t conn;
    uv_write_t wr;
    struct fwd_query *q; /* NULL once the query is gone */
    uint8_t out[2 + 512 + DNS_PRES_MAX];
    size_t out_len;
    uint8_t *in;
    size_t in_len;
};

struct dns_forward {
    uv_loop_t *loop;
    uv_udp_t udp4, udp6;
    int has4, has6;
    struct fwd_server servers[DNS_FORWARD_MAX_SERVERS];
    int nservers;
    int64_t timeout_ms;
    struct fwd_query *by_id[65536];
    struct fwd_query *head, *tail; /* by deadline (every query waits the same time) */
    size_t npending;
    uv_timer_t timer;
    int closed_handles;
    uint8_t rx[65536];
};

/* ---------------------------------------------------------------- pending queries */

static void fwd_link(struct dns_forward *f, struct fwd_query *q)
{
    q->prev = f->tail;
    q->next = NULL;
    if (f->tail)
        f->tail->next = q;
    else
        f->head = q;
    f->tail = q;
}

static void fwd_unlink(struct dns_forward *f, struct fwd_query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        f->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        f->tail = q->prev;
    q->prev = q->next = NULL;
}

static void fwd_tcp_on_close(uv_handle_t *h)
{
    struct fwd_tcp *t = h->data;

    free(t->in);
    free(t);
}

static void fwd_tcp_drop(struct fwd_tcp *t)
{
    t->q = NULL;
    if (!uv_is_closing((uv_handle_t *)&t->h))
        uv_close((uv_handle_t *)&t->h, fwd_tcp_on_close);
}

/* Done with q: call back (unless a probe), free it. */
static void fwd_finish(struct dns_forward *f, struct fwd_query *q, const uint8_t *pkt, size_t len,
                       const struct dns_response_view *r)
{
    fwd_unlink(f, q);
    f->by_id[q->id] = NULL;
    f->npending--;
    if (q->tcp)
        fwd_tcp_drop(q->tcp);
    if (q->probe)
        f->servers[q->server].probing = 0;
    else
        q->cb(q->arg, pkt, len, r);
    free(q);
}

/* ---------------------------------------------------------------- servers */

/* The first server not yet asked for q that is up; else the first not asked; else -1. */
static int fwd_pick(const struct dns_forward *f, unsigned tried)
{
    int any = -1;

    for (int i = 0; i < f->nservers; i++) {
        if (tried & (1u << i))
            continue;
        if (!atomic_load_explicit(f->servers[i].down, memory_order_relaxed))
            return i;
        if (any < 0)
            any = i;
    }
    return any;
}

static void fwd_server_ok(struct fwd_server *s)
{
    s->fails = 0;
    if (atomic_load_explicit(s->down, memory_order_relaxed)) {
        atomic_store_explicit(s->down, 0, memory_order_relaxed);
        log_info("dns: upstream %s answers again", s->text);
    }
}

static void fwd_server_failed(struct dns_forward *f, struct fwd_server *s)
{
    if (++s->fails < DNS_FORWARD_FAILS || atomic_load_explicit(s->down, memory_order_relaxed))
        return;
    atomic_store_explicit(s->down, 1, memory_order_relaxed);
    s->probe_at = uv_now(f->loop) + DNS_FORWARD_PROBE_MS;
    log_warnx("dns: upstream %s did not answer %d queries in a row: marked down", s->text,
              s->fails);
}

/* Send q to server i over UDP. Returns 0 or -1. */
static int fwd_send(struct dns_forward *f, struct fwd_query *q, int i)
{
    uint8_t pkt[512 + DNS_PRES_MAX];
    struct fwd_server *s = &f->servers[i];
    uv_udp_t *u = s->ss.ss_family == AF_INET6 ? &f->udp6 : &f->udp4;
    size_t n = dns_build_query(q->id, q->name, q->qtype, 1, DNS_UDP_OUR, pkt, sizeof(pkt));
    uv_buf_t b = uv_buf_init((char *)pkt, (unsigned)n);

    if (n == 0)
        return -1;
    q->server = i;
    q->tried |= 1u << i;
    q->tries++;
    q->deadline = uv_now(f->loop) + (uint64_t)f->timeout_ms;
    fwd_unlink(f, q);
    fwd_link(f, q);
    /* a full socket buffer is a lost packet: the timeout tries again */
    uv_udp_try_send(u, &b, 1, (const struct sockaddr *)&s->ss);
    return 0;
}

/* Ask the next server, or give up. */
static void fwd_next(struct dns_forward *f, struct fwd_query *q)
{
    int i = q->probe || q->tries >= DNS_FORWARD_TRIES ? -1 : fwd_pick(f, q->tried);

    if (q->tcp) {
        fwd_tcp_drop(q->tcp);
        q->tcp = NULL;
    }
    if (i < 0 || fwd_send(f, q, i) < 0)
        fwd_finish(f, q, NULL, 0, NULL);
}

/* ---------------------------------------------------------------- responses */

/* A response for q from its server: check it matches, then finish or go on. */
static void fwd_answer(struct dns_forward *f, struct fwd_query *q, const uint8_t *pkt, size_t len,
                       int over_tcp);

static void fwd_tcp_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct fwd_tcp *t = st->data;
    size_t want;

    (void)buf;
    if (nread < 0 || !t->q) {
        if (t->q) {
            struct fwd_query *q = t->q;
            q->tcp = NULL;
            fwd_tcp_drop(t);
            fwd_next(t->f, q);
        }
        return;
    }
    t->in_len += (size_t)nread;
    if (t->in_len < 2)
        return;
    want = ((size_t)t->in[0] << 8 | t->in[1]) + 2;
    if (t->in_len >= want) {
        struct fwd_query *q = t->q;
        uv_read_stop(st);
        fwd_answer(t->f, q, t->in + 2, want - 2, 1);
    }
}

static void fwd_tcp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct fwd_tcp *t = h->data;

    (void)hint;
    if (!t->in)
        t->in = xmalloc(FWD_TCP_MAX);
    *buf = uv_buf_init((char *)t->in + t->in_len, (unsigned)(FWD_TCP_MAX - t->in_len));
}

static void fwd_tcp_on_write(uv_write_t *w, int status)
{
    struct fwd_tcp *t = w->data;

    if (status == 0 && t->q)
        uv_read_start((uv_stream_t *)&t->h, fwd_tcp_alloc, fwd_tcp_on_read);
}

static void fwd_tcp_on_connect(uv_connect_t *c, int status)
{
    struct fwd_tcp *t = c->data;
    uv_buf_t b = uv_buf_init((char *)t->out, (unsigned)t->out_len);

    if (!t->q)
        return;
    if (status != 0 || uv_write(&t->wr, (uv_stream_t *)&t->h, &b, 1, fwd_tcp_on_write) != 0) {
        struct fwd_query *q = t->q;
        q->tcp = NULL;
        fwd_tcp_drop(t);
        fwd_next(t->f, q);
    }
}

/* The server truncated its answer: ask it again over TCP. */
static void fwd_retry_tcp(struct dns_forward *f, struct fwd_query *q)
{
    struct fwd_tcp *t = xcalloc(1, sizeof(*t));
    size_t n = dns_build_query(q->id, q->name, q->qtype, 1, 0, t->out + 2, sizeof(t->out) - 2);

    t->out[0] = (uint8_t)(n >> 8);
    t->out[1] = (uint8_t)n;
    t->out_len = n + 2;
    t->q = q;
    t->f = f;
    t->h.data = t->conn.data = t->wr.data = t;
    uv_tcp_init(f->loop, &t->h);
    q->tcp = t;
    q->deadline = uv_now(f->loop) + (uint64_t)f->timeout_ms;
    fwd_unlink(f, q);
    fwd_link(f, q);
    if (n == 0 ||
        uv_tcp_connect(&t->conn, &t->h, (const struct sockaddr *)&f->servers[q->server].ss,
                       fwd_tcp_on_connect) != 0) {
        q->tcp = NULL;
        fwd_tcp_drop(t);
        fwd_next(f, q);
    }
}

static void fwd_answer(struct dns_forward *f, struct fwd_query *q, const uint8_t *pkt, size_t len,
                       int over_tcp)
{
    struct dns_response_view r;
    const char *why;

    if (dns_parse_response(pkt, len, &r, &why) != DNS_OK || r.id != q->id || r.qtype != q->qtype ||
        r.qclass != DNS_CLASS_IN || strcmp(r.qname, q->name) != 0) {
        if (over_tcp)
            fwd_next(f, q);
        return; /* not the answer to this question: wait for the real one */
    }
    fwd_server_ok(&f->servers[q->server]);
    if (q->probe) {
        fwd_finish(f, q, NULL, 0, NULL);
        return;
    }
    if (r.tc && !over_tcp) {
        fwd_retry_tcp(f, q);
        return;
    }
    if (((r.rcode & 0xf) == DNS_RCODE_SERVFAIL || (r.rcode & 0xf) == DNS_RCODE_REFUSED) &&
        q->tries < DNS_FORWARD_TRIES && fwd_pick(f, q->tried) >= 0) {
        fwd_next(f, q);
        return;
    }
    fwd_finish(f, q, pkt, len, &r);
}

static void fwd_udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct dns_forward *f = h->data;

    (void)hint;
    *buf = uv_buf_init((char *)f->rx, sizeof(f->rx));
}

static int fwd_same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family)
        return 0;
    if (b->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

static void fwd_udp_on_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                            const struct sockaddr *from, unsigned flags)
{
    struct dns_forward *f = u->data;
    const uint8_t *pkt = (const uint8_t *)buf->base;
    struct fwd_query *q;

    (void)flags;
    if (nread < DNS_HEADER_LEN || !from)
        return;
    q = f->by_id[(uint16_t)(pkt[0] << 8 | pkt[1])];
    if (!q || q->tcp || !fwd_same_addr(&f->servers[q->server].ss, from))
        return;
    fwd_answer(f, q, pkt, (size_t)nread, 0);
}

/* ---------------------------------------------------------------- timer */

static struct fwd_query *fwd_new(struct dns_forward *f, const char *name, uint16_t qtype)
{
    struct fwd_query *q;
    uint16_t id;
    int n = 0;

    if (f->npending >= FWD_MAX_PENDING || strlen(name) > DNS_PRES_MAX)
        return NULL;
    do {
        if (RAND_bytes((unsigned char *)&id, sizeof(id)) != 1 || ++n > 64)
            return NULL;
    } while (f->by_id[id]);
    q = xcalloc(1, sizeof(*q));
    q->id = id;
    q->qtype = qtype;
    snprintf(q->name, sizeof(q->name), "%s", name);
    f->by_id[id] = q;
    f->npending++;
    fwd_link(f, q);
    return q;
}

static void fwd_on_tick(uv_timer_t *t)
{
    struct dns_forward *f = t->data;
    uint64_t now = uv_now(f->loop);

    while (f->head && f->head->deadline <= now) {
        struct fwd_query *q = f->head;
        fwd_server_failed(f, &f->servers[q->server]);
        fwd_next(f, q);
    }
    for (int i = 0; i < f->nservers; i++) {
        struct fwd_server *s = &f->servers[i];
        struct fwd_query *q;

        if (!atomic_load_explicit(s->down, memory_order_relaxed) || s->probing || now < s->probe_at)
            continue;
        s->probe_at = now + DNS_FORWARD_PROBE_MS;
        q = fwd_new(f, "", DNS_TYPE_NS);
        if (!q)
            continue;
        q->probe = 1;
        s->probing = 1;
        if (fwd_send(f, q, i) < 0)
            fwd_finish(f, q, NULL, 0, NULL);
    }
}

/* ---------------------------------------------------------------- public */

struct dns_forward *dns_forward_create(uv_loop_t *loop, const struct config_addr *servers, int n,
                                       int64_t timeout_ms, atomic_int *down, char *err,
                                       size_t errlen)
{
    struct dns_forward *f;
    struct sockaddr_in any4;
    struct sockaddr_in6 any6;

    if (n <= 0) {
        snprintf(err, errlen, "dns: no upstream resolver (set dns-upstream)");
        return NULL;
    }
    f = xcalloc(1, sizeof(*f));
    f->loop = loop;
    f->timeout_ms = timeout_ms;
    for (int i = 0; i < n && i < DNS_FORWARD_MAX_SERVERS; i++) {
        struct fwd_server *s = &f->servers[f->nservers];
        const char *h = servers[i].host;
        if (uv_ip4_addr(h, servers[i].port, (struct sockaddr_in *)&s->ss) == 0) {
            f->has4 = 1;
        } else if (uv_ip6_addr(h, servers[i].port, (struct sockaddr_in6 *)&s->ss) == 0) {
            f->has6 = 1;
        } else {
            continue;
        }
        snprintf(s->text, sizeof(s->text), strchr(h, ':') ? "[%s]:%u" : "%s:%u", h,
                 servers[i].port);
        s->down = &down[f->nservers];
        atomic_store_explicit(s->down, 0, memory_order_relaxed);
        f->nservers++;
    }
    uv_ip4_addr("0.0.0.0", 0, &any4);
    uv_ip6_addr("::", 0, &any6);
    uv_udp_init(loop, &f->udp4);
    uv_udp_init(loop, &f->udp6);
    f->udp4.data = f->udp6.data = f;
    if ((f->has4 && (uv_udp_bind(&f->udp4, (const struct sockaddr *)&any4, 0) != 0 ||
                     uv_udp_recv_start(&f->udp4, fwd_udp_alloc, fwd_udp_on_recv) != 0)) ||
        (f->has6 && (uv_udp_bind(&f->udp6, (const struct sockaddr *)&any6, 0) != 0 ||
                     uv_udp_recv_start(&f->udp6, fwd_udp_alloc, fwd_udp_on_recv) != 0))) {
        snprintf(err, errlen, "dns: cannot open a socket to the upstream resolvers");
        f->nservers = 0;
    }
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    uv_timer_start(&f->timer, fwd_on_tick, FWD_TICK_MS, FWD_TICK_MS);
    if (f->nservers == 0) {
        if (!err[0])
            snprintf(err, errlen, "dns: no usable upstream resolver address");
        dns_forward_close(f);
        return NULL;
    }
    return f;
}

int dns_forward_query(struct dns_forward *f, const char *name, uint16_t qtype, dns_forward_cb cb,
                      void *arg)
{
    struct fwd_query *q = fwd_new(f, name, qtype);
    int i;

    if (!q)
        return -1;
    q->cb = cb;
    q->arg = arg;
    i = fwd_pick(f, 0);
    if (fwd_send(f, q, i) < 0) {
        fwd_unlink(f, q);
        f->by_id[q->id] = NULL;
        f->npending--;
        free(q);
        return -1;
    }
    return 0;
}

static void fwd_on_closed(uv_handle_t *h)
{
    struct dns_forward *f = h->data;

    if (++f->closed_handles == 3)
        free(f);
}

void dns_forward_close(struct dns_forward *f)
{
    if (!f)
        return;
    while (f->head)
        fwd_finish(f, f->head, NULL, 0, NULL);
    uv_close((uv_handle_t *)&f->timer, fwd_on_closed);
    uv_close((uv_handle_t *)&f->udp4, fwd_on_closed);
    uv_close((uv_handle_t *)&f->udp6, fwd_on_closed);
}
