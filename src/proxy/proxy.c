/*
 * proxy.c -- one client connection of the filtering proxy.
 *
 * DESIGN. A connection (struct conn) lives from accept to close on one worker
 * loop. Each request on it is an exchange (struct exchange), allocated when a
 * head has been parsed and freed when the response has been sent, so an idle
 * keep-alive connection holds only the small struct conn.
 *
 *   HEAD ──► decide ──► local answer (page, PAC, status) ──────────────► HEAD
 *                 └───► resolve ──► connect ──► request ─► response ───► HEAD
 *                                        └────► CONNECT: 200, then TUNNEL
 *
 * Request and response bodies are forwarded as they arrive, byte for byte,
 * framed by Content-Length or the chunked scanner (so the proxy knows where
 * a message ends and can keep the connection), never buffered whole.
 * Bytes the client sends after a request (pipelining) wait in conn->in and
 * are parsed when the exchange ends. Backpressure: a side whose peer has more
 * than PROXY_HIGH_WATER bytes queued for writing stops being read until the
 * queue drains. An origin connection that ends an exchange cleanly goes back to
 * the worker's pool (pool.h) for the next request to the same host and port.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "catdb/catdb.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/slice.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "event/accesslog.h"
#include "event/recorder.h"
#include "http/h1.h"
#include "http/search.h"
#include "http/url.h"
#include "monitor/library.h"
#include "ident/ident.h"
#include "net/resolve.h"
#include "net/splice.h"
#include "policy/policy.h"
#include "proxy/page.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/server.h"
#include "proxy/snapshot.h"
#include "proxy/watch.h"
#include "proxy/worker.h"
#include "tls/hello.h"
#include "tls/inspect.h"
#include "tls/stream.h"

#define PROXY_READ_SIZE 65536
#define PROXY_HIGH_WATER (1024 * 1024)
#define PROXY_FORM_MAX 16384
#define PROXY_SPLICE_AFTER (256 * 1024)
#define PROXY_PAGE_MAX (256 * 1024)
/* The host name of haven's own pages (forms, continue links): reserved, never a real site. */
#define PROXY_MAGIC_HOST "haven.invalid"
#define PROXY_CONTINUE_PATH "/haven/continue"
/* Inside an inspected site, haven's own pages live under this prefix of the site's paths. */
#define PROXY_TLS_LOCAL "/.well-known"

enum conn_state {
    C_HEAD,      /* waiting for a request head */
    C_LOCAL,     /* answering from haven itself; may be reading a form body */
    C_UPSTREAM,  /* resolving, connecting, or exchanging with the origin */
    C_TUNNEL,    /* CONNECT: relaying bytes both ways */
    C_AUTH,      /* a sign-in password is being checked; later bytes wait in conn->in */
    C_PEEK,      /* CONNECT answered: reading the TLS ClientHello into conn->in */
    C_MINT,      /* inspecting: the site's certificate is being minted */
    C_HANDSHAKE, /* inspecting: TLS handshake with the client */
    C_CLOSING,   /* closing once the writes finish */
};

struct exchange {
    char *head; /* the request head, which req's slices point into */
    struct h1_request req;
    struct h1_response resp;
    struct url url;
    struct policy_verdict v;
    char reason[POLICY_REASON_MAX + PROXY_FORM_MAX];
    char ref[16];
    char user[128];
    char group[64];
    int group_index;
    int tunnel;
    int answered;  /* the 200 to a CONNECT has been sent (it was peeked) */
    int inspected; /* a CONNECT decrypted: its requests are logged one by one */
    int circumvention;
    int local; /* answered by haven itself */
    int status;
    uint64_t bytes_in, bytes_out;
    int logged;
    int64_t start_ms; /* monotonic, for the duration */
    int64_t time_ms;  /* wall clock, for the log */
    /* request body, client -> origin */
    enum h1_body req_body;
    uint64_t req_left;
    struct h1_chunked req_chunk;
    int req_done;
    /* response, origin -> client */
    int resp_head_done;
    enum h1_body resp_body;
    uint64_t resp_left;
    struct h1_chunked resp_chunk;
    int resp_done;
    int up_dirty; /* the origin sent bytes after the response */
    /* upstream */
    struct resolve_query *rq;
    struct resolve_result addrs;
    int addr_next;
    char host[URL_HOST_MAX + 1]; /* the host actually connected to (safe search may change it) */
    uint16_t port;
    struct buf form; /* a POSTed form to /haven/... */
    int form_wanted;
    struct slice path;  /* haven's own pages: the path and query asked for */
    struct watch watch; /* what the safeguarding monitor found */
};

struct conn {
    uv_tcp_t tcp;
    struct upstream *up; /* the origin connection in use, if any */
    uv_timer_t timer;
    struct worker *w;
    struct conn *next, *prev;
    struct snapshot *snap;
    struct exchange *x;
    enum conn_state state;
    struct buf in;   /* client bytes not yet used: the next head */
    struct buf upin; /* upstream bytes of a response head */
    struct sockaddr_storage peer;
    char peer_ip[INET6_ADDRSTRLEN];
    int up_connected;
    int keep_alive;
    int pending_closes;
    int closed;
    int tunnel_open; /* counted in the tunnels gauge */
    /* HTTPS inspection: set when a CONNECT is decrypted; requests inside are https://. */
    int inspect;
    int tls_busy;                        /* proxy_client_tls is running */
    struct tls_stream *ctls;             /* TLS with the client */
    char tls_host[URL_HOST_MAX + 1];     /* the site: SNI, else the CONNECT host */
    char connect_host[URL_HOST_MAX + 1]; /* where to connect (safe search may change it) */
    uint16_t tls_port;
    const char *tls_problem; /* the origin's certificate was refused: why */
    char tls_user[128];      /* who made the CONNECT: requests inside are theirs */
    char tls_group[64];
    int tls_group_index;
    int client_paused, up_paused;
    struct splicer *splicer; /* a bulk tunnel relayed by the kernel */
    int no_splice;           /* splicing failed once: stay with reads and writes */
    const struct buf *held;  /* a response head to send with the next bytes to the client */
};

struct wreq {
    uv_write_t req;
    struct conn *c;      /* for writes to the client */
    struct upstream *up; /* for writes to the origin: its user may have changed */
    int to_client;
    size_t len;
    char data[];
};

static const struct config *proxy_cfg(const struct conn *c)
{
    return c->w->srv->cfg;
}

static int64_t proxy_now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* ---------------------------------------------------------------- closing */

static void proxy_free_exchange(struct conn *c)
{
    struct exchange *x = c->x;

    if (!x)
        return;
    if (x->rq)
        resolve_cancel(x->rq);
    watch_cleanup(&x->watch);
    buf_cleanup(&x->form);
    free(x->head);
    free(x);
    c->x = NULL;
}

/* Drop one hold on c (a handle closing, a password check in flight); free it when closed. */
static void proxy_release(struct conn *c)
{
    /* An upstream handle may close while the connection lives on: only free a closed one. */
    if (--c->pending_closes > 0 || !c->closed)
        return;
    proxy_free_exchange(c);
    buf_cleanup(&c->in);
    buf_cleanup(&c->upin);
    if (c->ctls) {
        tls_stream_free(c->ctls);
        free(c->ctls);
    }
    if (c->snap)
        snapshot_unref(c->snap);
    free(c);
}

static void proxy_on_closed(uv_handle_t *h)
{
    proxy_release(h->data);
}

void proxy_upstream_closed(struct conn *c)
{
    proxy_release(c);
}

static void proxy_close_upstream(struct conn *c)
{
    if (!c->up)
        return;
    c->pending_closes++;
    upstream_close(c->up);
    c->up = NULL;
    c->up_connected = 0;
    /* A tunnel ends when its upstream side does. */
    if (c->tunnel_open) {
        c->tunnel_open = 0;
        worker_count(&c->w->stats.tunnels, (uint64_t)-1);
    }
}

/* Close the connection now, with a reason for the debug log (relayd's relay_close). */
static void proxy_log(struct conn *c);

static void proxy_close(struct conn *c, const char *why)
{
    if (c->closed)
        return;
    c->closed = 1;
    log_debug("%s: closing: %s", c->peer_ip, why);
    /* A request cut short (client gone, timeout, broken origin) still gets its log line. */
    if (c->x && c->snap && c->x->start_ms && !c->x->logged) {
        if (!c->x->reason[0])
            snprintf(c->x->reason, sizeof(c->x->reason), "not completed: %s", why);
        proxy_log(c);
    }
    c->state = C_CLOSING;
    if (c->splicer) {
        splicer_stop(c->splicer);
        c->splicer = NULL;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    atomic_fetch_sub(&c->w->srv->nconns, 1);
    atomic_fetch_sub_explicit(&c->w->stats.connections, 1, memory_order_relaxed);
    c->pending_closes += 2;
    uv_close((uv_handle_t *)&c->timer, proxy_on_closed);
    uv_close((uv_handle_t *)&c->tcp, proxy_on_closed);
    proxy_close_upstream(c);
}

static void proxy_on_half_close(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

static void proxy_on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;

    (void)status;
    free(req);
    proxy_close(c, "done");
}

/* Close after what has been queued for the client is written. */
static void proxy_close_after_write(struct conn *c)
{
    uv_shutdown_t *req = xmalloc(sizeof(*req));

    c->state = C_CLOSING;
    req->data = c;
    uv_read_stop((uv_stream_t *)&c->tcp);
    proxy_close_upstream(c);
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, proxy_on_shutdown) != 0) {
        free(req);
        proxy_close(c, "shutdown failed");
    }
}

/* ---------------------------------------------------------------- timers */

static void proxy_upstream_failed(struct conn *c, enum worker_upstream_error kind, int status,
                                  const char *why);

static void proxy_on_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;

    /* Waiting for the origin: the user gets a page saying so, not a dropped connection. */
    if (c->state == C_UPSTREAM && c->x && !c->x->resp_head_done) {
        proxy_upstream_failed(c, UPSTREAM_TIMEOUT, 504,
                              c->up_connected ? "The site took too long to answer."
                                              : "The site could not be reached in time.");
        return;
    }
    proxy_close(c, "timeout");
}

static void proxy_arm(struct conn *c, int64_t ms)
{
    uv_timer_start(&c->timer, proxy_on_timeout, (uint64_t)(ms > 0 ? ms : 1), 0);
}

/* ---------------------------------------------------------------- writing */

static void proxy_read_client(struct conn *c);
static void proxy_read_upstream(struct conn *c);

static void proxy_up_error(struct conn *c, int status);
static void proxy_maybe_splice(struct conn *c);

static void proxy_on_write(uv_write_t *req, int status)
{
    struct wreq *wr = (struct wreq *)req;
    struct conn *c = wr->c;
    int to_client = wr->to_client;

    if (!to_client) {
        /* Pooled, or closed and replaced: nothing of this connection's any more. */
        c = wr->up->c;
        wr->up->writes--;
        if (!c || c->up != wr->up) {
            free(wr);
            return;
        }
    }
    free(wr);
    if (c->state == C_CLOSING)
        return;
    if (status < 0) {
        if (to_client)
            proxy_close(c, uv_strerror(status));
        else
            proxy_up_error(c, status);
        return;
    }
    /* A queue that drained below the mark lets its source be read again. */
    if (to_client && c->up_paused && c->tcp.write_queue_size < PROXY_HIGH_WATER / 2) {
        c->up_paused = 0;
        proxy_read_upstream(c);
    } else if (!to_client && c->client_paused && c->up &&
               c->up->tcp.write_queue_size < PROXY_HIGH_WATER / 2) {
        c->client_paused = 0;
        proxy_read_client(c);
    }
    if (c->state == C_TUNNEL)
        proxy_maybe_splice(c);
}

/* The TLS layer on one side of c, if that side is inspected. */
static struct tls_stream *proxy_tls(const struct conn *c, int to_client)
{
    return to_client ? c->ctls : c->up ? c->up->tls : NULL;
}

/*
 * Queue bytes for the client (to_client, after c->held if set) or the origin; through TLS
 * when that side is inspected (len 0 then sends what TLS has waiting, such as a handshake).
 */
static int proxy_send(struct conn *c, int to_client, const char *data, size_t len)
{
    uv_stream_t *s = to_client ? (uv_stream_t *)&c->tcp : (uv_stream_t *)&c->up->tcp;
    struct tls_stream *t = proxy_tls(c, to_client);
    size_t held = to_client && c->held ? c->held->len : 0;
    struct wreq *wr;
    uv_buf_t b;

    if (t) {
        if ((held > 0 && tls_stream_write(t, c->held->p, held) < 0) ||
            tls_stream_write(t, data, len) < 0)
            return -1;
        if (to_client)
            c->held = NULL;
        len = tls_stream_pending(t);
        if (len == 0)
            return 0;
        wr = xmalloc(sizeof(*wr) + len);
        tls_stream_take(t, wr->data, len);
    } else {
        if (held + len == 0)
            return 0;
        wr = xmalloc(sizeof(*wr) + held + len);
        if (held > 0)
            memcpy(wr->data, c->held->p, held);
        if (to_client)
            c->held = NULL;
        if (len > 0)
            memcpy(wr->data + held, data, len);
        len += held;
    }
    wr->c = c;
    wr->up = to_client ? NULL : c->up;
    wr->to_client = to_client;
    wr->len = len;
    b = uv_buf_init(wr->data, (unsigned)len);
    if (uv_write(&wr->req, s, &b, 1, proxy_on_write) != 0) {
        free(wr);
        return -1;
    }
    if (!to_client)
        c->up->writes++;
    if (c->x && to_client)
        c->x->bytes_out += len;
    /* Backpressure: stop reading the side that feeds a full queue. */
    if (s->write_queue_size > PROXY_HIGH_WATER) {
        if (to_client && c->up && !c->up_paused) {
            c->up_paused = 1;
            uv_read_stop((uv_stream_t *)&c->up->tcp);
        } else if (!to_client && !c->client_paused) {
            c->client_paused = 1;
            uv_read_stop((uv_stream_t *)&c->tcp);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- logging */

static void proxy_log(struct conn *c)
{
    struct exchange *x = c->x;
    const struct policy *p = c->snap->policy;
    const char *cats[POLICY_MAX_CATEGORIES];
    char method[32], url[URL_MAX + 1], ss[64] = "", search[SEARCH_TERMS_MAX] = "";
    struct access_record r;
    struct monitor_note note;

    x->logged = 1;
    watch_page_end(&x->watch);
    if (!c->w->srv->log && !c->w->srv->rec)
        return;
    memset(&r, 0, sizeof(r));
    snprintf(method, sizeof(method), "%.*s", (int)x->req.method.len, x->req.method.p);
    if (x->tunnel || x->url.len == 0)
        snprintf(url, sizeof(url), "%.*s", (int)x->req.target.len, x->req.target.p);
    else
        snprintf(url, sizeof(url), "%s", x->url.text);
    for (int i = 0; i < POLICY_MAX_CATEGORIES; i++) {
        if (x->v.categories[i / 64] >> (i % 64) & 1)
            cats[r.ncategories++] = policy_category_name(p, i);
    }
    if (x->v.safe_search != POLICY_SS_NONE)
        snprintf(ss, sizeof(ss), "%s", policy_safe_search_name(x->v.safe_search));
    r.time_ms = x->time_ms;
    r.client = c->peer_ip;
    r.device = "";
    r.user = x->user;
    r.group = x->group;
    r.method = method;
    r.url = url;
    r.categories = cats;
    r.action = x->inspected             ? "inspect"
               : x->local && !x->v.rule ? "local"
                                        : policy_action_name(x->v.action);
    r.tier = x->v.rule ? policy_tier_name(x->v.tier) : "";
    r.rule = x->v.rule ? x->v.rule : "";
    r.reason = x->reason;
    r.ref = x->ref;
    r.status = x->status;
    r.bytes_in = x->bytes_in;
    r.bytes_out = x->bytes_out;
    r.duration_ms = proxy_now_ms() - x->start_ms;
    r.safe_search = ss;
    if (!x->tunnel && x->url.len > 0)
        search_terms(&x->url, search, sizeof(search));
    r.search = search;
    r.circumvention = x->circumvention;
    r.tunnel = x->tunnel;
    accesslog_submit(c->w->srv->log, &r);
    watch_note(&x->watch, &note);
    recorder_submit(c->w->srv->rec, &r, &note);
}

/* ---------------------------------------------------------------- exchange end */

static void proxy_next_request(struct conn *c);
static void proxy_pool_key(const struct exchange *x, char *key, size_t size);
static void proxy_watch_page(struct conn *c);

/* The response is complete: log, then read the next request or close. */
static void proxy_finish(struct conn *c, int keep)
{
    struct exchange *x = c->x;

    proxy_log(c);
    worker_count(&c->w->stats.requests, 1);
    /*
     * A clean end of a keep-alive exchange gives the origin connection back to the pool;
     * an inspected connection keeps its own for the next request.
     */
    if (keep && c->up && c->up_connected && !x->tunnel && x->resp.keep_alive && x->req_done &&
        !x->up_dirty && !c->up_paused) {
        char key[POOL_KEY_MAX];
        if (c->inspect) {
            c->up->reused = 1;
        } else {
            proxy_pool_key(x, key, sizeof(key));
            pool_put(c->w, c->up, key);
            c->up = NULL;
            c->up_connected = 0;
        }
    }
    keep = keep && c->keep_alive && x->req_done && !c->w->draining;
    if (!c->inspect || !keep)
        proxy_close_upstream(c);
    proxy_free_exchange(c);
    if (c->snap) {
        snapshot_unref(c->snap);
        c->snap = NULL;
    }
    if (!keep) {
        proxy_close_after_write(c);
        return;
    }
    c->state = C_HEAD;
    buf_cleanup(&c->upin);
    proxy_next_request(c);
}

/* Answer from haven itself: status line, headers, body; then next request or close. */
static void proxy_local(struct conn *c, int status, const char *ctype, const struct buf *body,
                        const char *extra_headers)
{
    static const struct {
        int code;
        const char *text;
    } reasons[] = {{200, "OK"},
                   {400, "Bad Request"},
                   {403, "Forbidden"},
                   {404, "Not Found"},
                   {405, "Method Not Allowed"},
                   {407, "Proxy Authentication Required"},
                   {413, "Payload Too Large"},
                   {414, "URI Too Long"},
                   {431, "Request Header Fields Too Large"},
                   {501, "Not Implemented"},
                   {502, "Bad Gateway"},
                   {503, "Service Unavailable"},
                   {504, "Gateway Timeout"},
                   {505, "HTTP Version Not Supported"},
                   {302, "Found"},
                   {421, "Misdirected Request"},
                   {500, "Internal Server Error"}};
    struct exchange *x = c->x;
    const char *text = "Error";
    char head[1024];
    int n;
    /* A request whose body we did not read leaves the stream unusable: close after. */
    int keep = x && x->req_done;

    for (size_t i = 0; i < HAVEN_ARRAY_LEN(reasons); i++) {
        if (reasons[i].code == status)
            text = reasons[i].text;
    }
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s%s\r\n",
                 status, text, ctype, body ? body->len : 0,
                 strncmp(ctype, "text/html", 9) == 0 ? "Content-Security-Policy: " PAGE_HTML_CSP
                                                       "\r\nReferrer-Policy: no-referrer\r\n"
                                                     : "",
                 extra_headers ? extra_headers : "",
                 keep && c->keep_alive ? "" : "Connection: close\r\n");
    if (x) {
        x->status = status;
        x->local = 1;
    }
    proxy_send(c, 1, head, (size_t)n);
    if (body && body->len > 0 &&
        !(x && x->req.method.len == 4 && memcmp(x->req.method.p, "HEAD", 4) == 0))
        proxy_send(c, 1, body->p, body->len);
    if (x)
        proxy_finish(c, keep);
    else
        proxy_close_after_write(c);
}

static void proxy_page_info(struct conn *c, struct page_info *pi)
{
    struct exchange *x = c->x;
    const struct policy *p = c->snap->policy;
    const char *school = proxy_cfg(c)->school_name;

    memset(pi, 0, sizeof(*pi));
    pi->school = school && *school ? school : policy_school(p);
    pi->url = x->url.len ? x->url.text : "";
    pi->category = x->v.category >= 0 ? policy_category_name(p, x->v.category) : "";
    pi->category_title = x->v.category >= 0 ? policy_category_title(p, x->v.category) : "";
    pi->reason = x->reason;
    pi->group = x->group;
    pi->user = x->user;
    pi->client_ip = c->peer_ip;
    pi->time = clock_now();
    pi->tz = policy_tz(p);
    pi->ref = x->ref;
    pi->locked = x->v.tier == POLICY_TIER_LOCKED;
    pi->request_action = c->inspect ? PROXY_TLS_LOCAL PAGE_REQUEST_PATH
                                    : "http://" PROXY_MAGIC_HOST PAGE_REQUEST_PATH;
    pi->concern_action = c->inspect ? PROXY_TLS_LOCAL PAGE_CONCERN_PATH
                                    : "http://" PROXY_MAGIC_HOST PAGE_CONCERN_PATH;
}

/* An error page (400, 403, 502, ...) with the exchange's reference. */
static void proxy_error(struct conn *c, int status, const char *why)
{
    struct buf body;
    struct page_info pi;

    buf_init(&body, PROXY_PAGE_MAX);
    if (c->x && c->snap) {
        snprintf(c->x->reason, sizeof(c->x->reason), "%s", why);
        proxy_page_info(c, &pi);
        page_error(&body, &pi, status);
    } else {
        buf_printf(&body, "%d %s\n", status, why);
    }
    proxy_local(c, status, c->snap ? "text/html; charset=utf-8" : "text/plain", &body, NULL);
    buf_cleanup(&body);
}

/* ---------------------------------------------------------------- identify */

/*
 * Who is this? (1) proxy sign-in (not yet: the Basic check runs off the loop and is the next
 * step), (2) an IP session, (3) a configured network range, (4) the policy's default group.
 */
static void proxy_identify(struct conn *c)
{
    struct exchange *x = c->x;
    const struct config *cfg = proxy_cfg(c);
    const struct policy *p = c->snap->policy;
    const char *user = NULL, *group = NULL;
    int g = -1;

    if (c->snap->ident && ident_session_user(c->snap->ident, (const struct sockaddr *)&c->peer,
                                             clock_now(), &user, &group) == 0) {
        snprintf(x->user, sizeof(x->user), "%s", user);
        g = group ? policy_group_find(p, group) : -1;
    }
    for (int i = 0; g < 0 && i < cfg->nnetworks; i++) {
        if (config_cidr_match(&cfg->networks[i].cidr, (const struct sockaddr *)&c->peer))
            g = policy_group_find(p, cfg->networks[i].group);
    }
    if (g < 0)
        g = policy_default_group(p);
    x->group_index = g;
    snprintf(x->group, sizeof(x->group), "%s", policy_group_name(p, g));
}

/* ---------------------------------------------------------------- request head out */

static int proxy_header_skip(const struct h1_request *req, const struct h1_header *h)
{
    return h1_is_hop_by_hop(h, req->connection) || h1_header_is(h, "host") ||
           h1_header_is(h, "via");
}

/* Append "name=value" to a query, replacing an existing name (safe=off becomes safe=active). */
static void proxy_query_force(struct buf *b, const struct url *u, const char *param)
{
    const char *q = u->text + u->query_off, *end = q + u->query_len;
    size_t nlen = (size_t)(strchr(param, '=') - param);
    int first = 1;

    buf_append(b, "?", 1);
    while (u->has_query && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        size_t len = amp ? (size_t)(amp - q) : (size_t)(end - q);
        if (!(len >= nlen && memcmp(q, param, nlen) == 0 && (len == nlen || q[nlen] == '='))) {
            if (!first)
                buf_append(b, "&", 1);
            buf_append(b, q, len);
            first = 0;
        }
        q += len + (amp ? 1 : 0);
    }
    if (!first)
        buf_append(b, "&", 1);
    buf_append_str(b, param);
}

/* The request head as the origin gets it: origin-form, our framing, no hop-by-hop headers. */
static void proxy_request_head(struct conn *c, struct buf *b)
{
    struct exchange *x = c->x;
    const struct h1_request *req = &x->req;
    const struct url *u = &x->url;
    const char *param = policy_safe_search_param(x->v.safe_search);

    buf_append(b, req->method.p, req->method.len);
    buf_append(b, " ", 1);
    buf_append(b, u->text + u->path_off, u->path_len);
    if (param)
        proxy_query_force(b, u, param);
    else if (u->has_query)
        buf_printf(b, "?%.*s", (int)u->query_len, u->text + u->query_off);
    size_t hstart = u->host_off - (u->host_type == URL_HOST_IPV6 ? 1 : 0);
    buf_printf(b, " HTTP/1.1\r\nHost: %.*s\r\n", (int)(u->path_off - hstart), u->text + hstart);
    for (int i = 0; i < req->nheaders; i++) {
        const struct h1_header *h = &req->headers[i];
        if (proxy_header_skip(req, h) || h1_header_is(h, "youtube-restrict"))
            continue;
        buf_append(b, h->name.p, h->name.len);
        buf_append(b, ": ", 2);
        buf_append(b, h->value.p, h->value.len);
        buf_append(b, "\r\n", 2);
    }
    if (x->req_body == H1_BODY_CHUNKED)
        buf_append_str(b, "Transfer-Encoding: chunked\r\n");
    if (x->v.safe_search == POLICY_SS_YOUTUBE)
        buf_printf(b, "YouTube-Restrict: %s\r\n",
                   x->v.youtube == POLICY_YOUTUBE_STRICT ? "Strict" : "Moderate");
    buf_append_str(b, proxy_cfg(c)->upstream_pool > 0
                          ? "Via: 1.1 haven\r\n\r\n"
                          : "Via: 1.1 haven\r\nConnection: close\r\n\r\n");
}

/* The response head as the client gets it. */
static void proxy_response_head(struct conn *c, struct buf *b)
{
    struct exchange *x = c->x;
    const struct h1_response *r = &x->resp;

    buf_printf(b, "HTTP/1.1 %d %.*s\r\n", r->status, (int)r->reason.len, r->reason.p);
    for (int i = 0; i < r->nheaders; i++) {
        const struct h1_header *h = &r->headers[i];
        if (h1_is_hop_by_hop(h, r->connection) || h1_header_is(h, "via"))
            continue;
        buf_append(b, h->name.p, h->name.len);
        buf_append(b, ": ", 2);
        buf_append(b, h->value.p, h->value.len);
        buf_append(b, "\r\n", 2);
    }
    if (r->body == H1_BODY_CHUNKED)
        buf_append_str(b, "Transfer-Encoding: chunked\r\n");
    if (r->body == H1_BODY_CLOSE)
        c->keep_alive = 0;
    buf_printf(b, "Via: 1.1 haven\r\n%s\r\n",
               c->keep_alive && !c->w->draining ? "" : "Connection: close\r\n");
}

/* ---------------------------------------------------------------- bodies */

/*
 * Forward up to len bytes of a body framed by kind/left/chunk from data to the other side.
 * Returns the bytes that belonged to the body (the rest is the next message), sets *done when
 * the body ended, or returns -1 on a malformed chunked body.
 */
static ssize_t proxy_body(struct conn *c, int to_client, enum h1_body kind, uint64_t *left,
                          struct h1_chunked *chunk, const char *data, size_t len, int *done)
{
    size_t used = len;

    *done = 0;
    switch (kind) {
    case H1_BODY_NONE:
        *done = 1;
        return 0;
    case H1_BODY_LENGTH:
        if (used > *left)
            used = (size_t)*left;
        *left -= used;
        *done = *left == 0;
        break;
    case H1_BODY_CHUNKED: {
        int r = h1_chunked_scan(chunk, data, len, &used);
        if (r < 0)
            return -1;
        *done = r == 1;
        break;
    }
    case H1_BODY_CLOSE:
        break;
    }
    if (proxy_send(c, to_client, data, used) < 0)
        return -1;
    if (!to_client)
        c->x->bytes_in += used;
    else if (kind != H1_BODY_CHUNKED) /* chunked: the scanner hands over the data */
        watch_page_data(&c->x->watch, data, used);
    return (ssize_t)used;
}

/* Client bytes while an exchange with the origin is under way: request body, then pipelined. */
static int proxy_client_body(struct conn *c, const char *data, size_t len)
{
    struct exchange *x = c->x;
    ssize_t used = 0;
    int done;

    if (!x->req_done) {
        /* Connected, and for an inspected site done with the TLS handshake. */
        if (c->up_connected && (!c->up->tls || c->up->tls->done)) {
            used = proxy_body(c, 0, x->req_body, &x->req_left, &x->req_chunk, data, len, &done);
            if (used < 0)
                return -1;
            x->req_done = done;
        } else {
            /* Not connected yet: keep the bytes; they are sent once connected. */
            return buf_append(&c->in, data, len);
        }
    }
    if ((size_t)used < len && buf_append(&c->in, data + used, len - (size_t)used) < 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- splice */

static void proxy_spliced(void *arg, uint64_t to_origin, uint64_t to_client)
{
    struct conn *c = arg;

    c->x->bytes_in += to_origin;
    c->x->bytes_out += to_client;
    proxy_arm(c, proxy_cfg(c)->timeout_tunnel_idle_ms);
}

static void proxy_splice_done(void *arg, int err)
{
    struct conn *c = arg;

    splicer_stop(c->splicer);
    c->splicer = NULL;
    if (err != 0) {
        proxy_close(c, strerror(-err));
        return;
    }
    c->x->req_done = c->x->resp_done = 1;
    proxy_finish(c, 0);
}

/*
 * A tunnel that has carried PROXY_SPLICE_AFTER bytes is a bulk transfer: hand it to the
 * kernel (net/splice.h) once nothing is queued either way and neither side has ended.
 */
static void proxy_maybe_splice(struct conn *c)
{
    static const struct splice_events ev = {proxy_spliced, proxy_splice_done, NULL};
    struct exchange *x = c->x;
    struct splice_events e = ev;
    uv_os_fd_t cfd, ufd;

    if (c->splicer || c->no_splice || x->bytes_in + x->bytes_out < PROXY_SPLICE_AFTER ||
        x->req_done || x->resp_done || c->client_paused || c->up_paused ||
        c->tcp.write_queue_size > 0 || c->up->tcp.write_queue_size > 0 ||
        uv_fileno((uv_handle_t *)&c->tcp, &cfd) != 0 ||
        uv_fileno((uv_handle_t *)&c->up->tcp, &ufd) != 0)
        return;
    e.arg = c;
    c->splicer = splicer_start(&c->w->loop, cfd, ufd, &e);
    if (!c->splicer) {
        log_debug("%s: tunnel stays in user space: %s", c->peer_ip, strerror(errno));
        c->no_splice = 1;
        return;
    }
    worker_count(&c->w->stats.tunnels_spliced, 1);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_read_stop((uv_stream_t *)&c->up->tcp);
}

/* ---------------------------------------------------------------- upstream */

static void proxy_on_up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void proxy_on_up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void proxy_on_client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void proxy_on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void proxy_read_upstream(struct conn *c)
{
    if (c->up && !c->up_paused)
        uv_read_start((uv_stream_t *)&c->up->tcp, proxy_on_up_alloc, proxy_on_up_read);
}

static void proxy_read_client(struct conn *c)
{
    if (c->state != C_CLOSING && !c->client_paused)
        uv_read_start((uv_stream_t *)&c->tcp, proxy_on_client_alloc, proxy_on_client_read);
}

static void proxy_up_tls(struct conn *c);
static void proxy_peek_start(struct conn *c);
static void proxy_peek(struct conn *c);
static void proxy_client_tls(struct conn *c);
static void proxy_client_data(struct conn *c, const char *data, size_t len);

static void proxy_upstream_failed(struct conn *c, enum worker_upstream_error kind, int status,
                                  const char *why)
{
    worker_count(&c->w->stats.upstream_errors[kind], 1);
    /* After a response began, or a CONNECT was answered, a page cannot be sent: close. */
    if (c->x->resp_head_done || c->x->answered) {
        proxy_close(c, why);
        return;
    }
    proxy_close_upstream(c);
    c->x->req_done = 0; /* the request body may be half sent: close after the page */
    proxy_error(c, status, why);
}

/* Connected to the origin: send what is waiting. */
static void proxy_upstream_ready(struct conn *c)
{
    struct exchange *x = c->x;
    struct buf head;

    c->up_connected = 1;
    proxy_arm(c, proxy_cfg(c)->timeout_upstream_idle_ms);
    if (c->inspect && !c->up->tls) {
        /* Inspected: TLS to the origin first; this runs again when its handshake is done. */
        char err[256];
        struct tls_inspect *ti = c->w->srv->tls;
        SSL_SESSION *resume = tls_inspect_session(ti, c->tls_host);
        int rc;
        c->up->tls = xmalloc(sizeof(*c->up->tls));
        rc = tls_stream_client(c->up->tls, tls_inspect_origin_ctx(ti), c->tls_host, resume, err,
                               sizeof(err));
        SSL_SESSION_free(resume);
        if (rc < 0) {
            free(c->up->tls);
            c->up->tls = NULL;
            proxy_upstream_failed(c, UPSTREAM_CERT, 502, "A secure connection to the site failed.");
            return;
        }
        proxy_up_tls(c);
        proxy_read_upstream(c);
        return;
    }
    if (x->tunnel) {
        static const char ok[] = "HTTP/1.1 200 Connection established\r\nVia: 1.1 haven\r\n\r\n";
        x->status = 200;
        if (!x->answered)
            proxy_send(c, 1, ok, sizeof(ok) - 1);
        c->state = C_TUNNEL;
        x->req_done = 0; /* from here: the client has not ended its stream */
        worker_count(&c->w->stats.tunnels, 1);
        c->tunnel_open = 1;
        proxy_arm(c, proxy_cfg(c)->timeout_tunnel_idle_ms);
        /* Bytes the client sent after the CONNECT head go first. */
        if (c->in.len > 0) {
            proxy_send(c, 0, c->in.p, c->in.len);
            buf_reset(&c->in);
        }
        proxy_read_upstream(c);
        proxy_read_client(c);
        return;
    }
    buf_init(&head, proxy_cfg(c)->max_header_block + URL_MAX + 1024);
    proxy_request_head(c, &head);
    proxy_send(c, 0, head.p, head.len);
    buf_cleanup(&head);
    /* Body bytes that arrived with the head or while connecting. */
    if (c->in.len > 0) {
        struct buf pending = c->in;
        buf_init(&c->in, pending.cap);
        int rc = proxy_client_body(c, pending.p, pending.len);
        buf_cleanup(&pending);
        if (rc < 0) {
            proxy_close(c, "bad request body");
            return;
        }
    }
    proxy_read_upstream(c);
    proxy_read_client(c);
}

static void proxy_connect_next(struct conn *c);

static void proxy_on_connect(uv_connect_t *req, int status)
{
    struct upstream *u = req->data;
    struct conn *c = u->c;

    if (status == UV_ECANCELED || !c || c->up != u || c->state == C_CLOSING)
        return;
    if (status < 0) {
        /* Try the next address; the last failure is the answer. */
        proxy_close_upstream(c);
        if (c->x->addr_next < c->x->addrs.naddrs) {
            proxy_connect_next(c);
            return;
        }
        proxy_upstream_failed(c, UPSTREAM_CONNECT, 502, "The site could not be reached.");
        return;
    }
    proxy_upstream_ready(c);
}

static void proxy_connect_next(struct conn *c)
{
    struct exchange *x = c->x;
    struct sockaddr_storage *sa = &x->addrs.addrs[x->addr_next++];

    c->up = upstream_new(c->w, c);
    c->up->connect.data = c->up;
    proxy_arm(c, proxy_cfg(c)->timeout_connect_ms);
    if (uv_tcp_connect(&c->up->connect, &c->up->tcp, (const struct sockaddr *)sa,
                       proxy_on_connect) != 0) {
        proxy_close_upstream(c);
        proxy_upstream_failed(c, UPSTREAM_CONNECT, 502, "The site could not be reached.");
    }
}

static void proxy_on_resolved(void *arg, int status, const struct resolve_result *res)
{
    struct conn *c = arg;

    c->x->rq = NULL;
    if (status != RESOLVE_OK || res->naddrs == 0) {
        proxy_upstream_failed(c, UPSTREAM_DNS, 502,
                              status == RESOLVE_NXDOMAIN
                                  ? "There is no site with that name."
                                  : "The site's name could not be looked up.");
        return;
    }
    c->x->addrs = *res;
    c->x->addr_next = 0;
    proxy_connect_next(c);
}

static void proxy_pool_key(const struct exchange *x, char *key, size_t size)
{
    snprintf(key, size, "%s:%u", x->host, x->port);
}

/*
 * Send the request to x->host:x->port: on an idle pooled connection when there is one
 * (pooled says whether to look), else resolve and connect.
 */
static void proxy_upstream(struct conn *c, int pooled)
{
    struct exchange *x = c->x;
    char key[POOL_KEY_MAX];

    c->state = C_UPSTREAM;
    if (c->inspect) {
        /* Inside an inspected CONNECT: one TLS connection to the site, kept between requests. */
        if (c->tls_problem) {
            proxy_upstream_failed(c, UPSTREAM_CERT, 502, c->tls_problem);
            return;
        }
        if (c->up) {
            if (c->up->tls && c->up->tls->done)
                proxy_upstream_ready(c);
            return; /* the handshake under way calls proxy_upstream_ready */
        }
        snprintf(x->host, sizeof(x->host), "%s", c->connect_host);
        x->port = c->tls_port;
        pooled = 0;
    }
    if (pooled && !x->tunnel) {
        proxy_pool_key(x, key, sizeof(key));
        c->up = pool_take(c->w, key, c);
        if (c->up) {
            worker_count(&c->w->stats.upstream_reused, 1);
            proxy_upstream_ready(c);
            return;
        }
    }
    proxy_arm(c, proxy_cfg(c)->timeout_connect_ms);
    x->rq = resolve_start(c->w->resolver, x->host, x->port, proxy_on_resolved, c);
    if (!x->rq)
        proxy_upstream_failed(c, UPSTREAM_DNS, 502, "The site's name could not be looked up.");
}

/*
 * The origin connection failed (read or write error, or a close before the response ended).
 * A pooled connection the origin closed while it sat idle fails like this on its first
 * use: a request without a body that has had no answer yet is sent again on a new one.
 */
static void proxy_up_error(struct conn *c, int status)
{
    struct exchange *x = c->x;

    if (c->state == C_TUNNEL) {
        proxy_close(c, uv_strerror(status));
        return;
    }
    if (c->up && c->up->reused && !x->resp_head_done && c->upin.len == 0 &&
        x->req_body == H1_BODY_NONE && !x->tunnel) {
        log_debug("%s: pooled connection to %s failed (%s): retrying", c->peer_ip, x->host,
                  uv_strerror(status));
        proxy_close_upstream(c);
        x->req_done = 1;
        proxy_upstream(c, 0);
        return;
    }
    proxy_upstream_failed(c, UPSTREAM_RESET, 502, "The site closed the connection early.");
}

static void proxy_on_up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static __thread char readbuf[PROXY_READ_SIZE];

    (void)h;
    (void)suggested;
    *b = uv_buf_init(readbuf, sizeof(readbuf));
}

/* The origin closed (n is UV_EOF) or failed. */
static void proxy_up_eof(struct conn *c, ssize_t n)
{
    struct exchange *x = c->x;

    if (c->state == C_TUNNEL) {
        /* Half-close: pass the origin's EOF on, keep the other direction. */
        uv_shutdown_t *req = xmalloc(sizeof(*req));
        uv_read_stop((uv_stream_t *)&c->up->tcp);
        if (uv_shutdown(req, (uv_stream_t *)&c->tcp, proxy_on_half_close) != 0)
            free(req);
        x->resp_done = 1;
        if (x->req_done)
            proxy_finish(c, 0);
        return;
    }
    if (x->resp_head_done && x->resp_body == H1_BODY_CLOSE && n == UV_EOF) {
        proxy_finish(c, 0);
        return;
    }
    proxy_up_error(c, (int)n);
}

/* Response bytes from the origin (plaintext, after TLS when inspected). */
static void proxy_up_data(struct conn *c, const char *data, size_t len)
{
    struct exchange *x = c->x;
    int done;

    proxy_arm(c, c->state == C_TUNNEL ? proxy_cfg(c)->timeout_tunnel_idle_ms
                                      : proxy_cfg(c)->timeout_upstream_idle_ms);
    if (c->state == C_TUNNEL) {
        proxy_send(c, 1, data, len);
        proxy_maybe_splice(c);
        return;
    }
    while (len > 0) {
        if (!x->resp_head_done) {
            struct h1_limits lim;
            struct buf head;
            int r;

            if (buf_append(&c->upin, data, len) < 0) {
                proxy_upstream_failed(c, UPSTREAM_RESET, 502, "The site's answer was too large.");
                return;
            }
            data = NULL;
            len = 0;
            h1_limits_default(&lim);
            lim.max_head = proxy_cfg(c)->max_header_block;
            r = h1_parse_response(c->upin.p, c->upin.len, &lim, x->req.method, &x->resp);
            if (r == H1_AGAIN)
                return;
            if (r == H1_ERROR) {
                proxy_upstream_failed(c, UPSTREAM_RESET, 502,
                                      "The site sent an answer haven could not read.");
                return;
            }
            buf_init(&head, proxy_cfg(c)->max_header_block + 1024);
            proxy_response_head(c, &head);
            if (x->resp.status >= 100 && x->resp.status < 200) {
                proxy_send(c, 1, head.p, head.len);
                buf_cleanup(&head);
                /* 100 Continue and friends: another head follows. */
                buf_consume(&c->upin, x->resp.head_len);
                data = NULL;
                if (c->upin.len == 0)
                    return;
                struct buf rest = c->upin;
                buf_init(&c->upin, rest.cap);
                proxy_up_data(c, rest.p, rest.len);
                buf_cleanup(&rest);
                return;
            }
            /* The head goes out with the first body bytes, in one write. */
            c->held = &head;
            x->status = x->resp.status;
            x->resp_head_done = 1;
            x->resp_body = x->resp.body;
            x->resp_left = x->resp.content_length;
            h1_chunked_init(&x->resp_chunk, &lim);
            proxy_watch_page(c);
            /* What followed the head in the same read is body. */
            struct buf rest = c->upin;
            buf_init(&c->upin, rest.cap);
            if (rest.len > x->resp.head_len) {
                ssize_t used =
                    proxy_body(c, 1, x->resp_body, &x->resp_left, &x->resp_chunk,
                               rest.p + x->resp.head_len, rest.len - x->resp.head_len, &done);
                x->up_dirty = used >= 0 && (size_t)used < rest.len - x->resp.head_len;
                buf_cleanup(&rest);
                if (used < 0) {
                    c->held = NULL;
                    buf_cleanup(&head);
                    proxy_close(c, "bad chunked response");
                    return;
                }
            } else {
                buf_cleanup(&rest);
                done = x->resp_body == H1_BODY_NONE ||
                       (x->resp_body == H1_BODY_LENGTH && x->resp_left == 0);
            }
            if (c->held)
                proxy_send(c, 1, NULL, 0);
            buf_cleanup(&head);
            if (done) {
                proxy_finish(c, 1);
            }
            return;
        }
        ssize_t used =
            proxy_body(c, 1, x->resp_body, &x->resp_left, &x->resp_chunk, data, len, &done);
        if (used < 0) {
            proxy_close(c, "bad chunked response");
            return;
        }
        if (done) {
            /* Bytes after the response break framing: that connection is not reused. */
            x->up_dirty = (size_t)used < len;
            proxy_finish(c, 1);
            return;
        }
        return;
    }
}

/* TLS bytes from an inspected origin have been fed: handshake, then plaintext. */
static void proxy_up_tls(struct conn *c)
{
    struct tls_stream *t = c->up->tls;
    char buf[16384], err[256];
    ssize_t n = 0;

    if (!t->done) {
        int r = tls_stream_handshake(t, err, sizeof(err));
        proxy_send(c, 0, NULL, 0);
        if (r < 0) {
            /* A certificate problem is remembered: every request on this connection gets it. */
            const char *problem = tls_stream_verify_problem(t);
            log_info("%s: TLS to %s failed: %s", c->peer_ip, c->tls_host, err);
            if (problem)
                c->tls_problem = problem;
            proxy_upstream_failed(c, UPSTREAM_CERT, 502,
                                  problem ? problem : "A secure connection to the site failed.");
            return;
        }
        if (r == 0)
            return;
        proxy_upstream_ready(c);
    }
    while (c->up && c->up->tls == t && c->x && c->state != C_CLOSING &&
           (n = tls_stream_read(t, buf, sizeof(buf))) > 0)
        proxy_up_data(c, buf, (size_t)n);
    if (n < 0 && c->up && c->up->tls == t && c->x && c->state != C_CLOSING)
        proxy_up_eof(c, UV_EOF);
}

/* Bytes from an origin connection kept between requests: a close, or stray data, retire it. */
static void proxy_up_idle(struct conn *c, ssize_t n, const uv_buf_t *b)
{
    char buf[4096];

    if (n > 0 && c->up->tls && tls_stream_feed(c->up->tls, b->base, (size_t)n) == 0 &&
        tls_stream_read(c->up->tls, buf, sizeof(buf)) == 0)
        return; /* TLS housekeeping, such as a session ticket */
    proxy_close_upstream(c);
}

static void proxy_on_up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct upstream *u = s->data;
    struct conn *c = u->c;

    if (c->state == C_CLOSING || n == 0)
        return;
    if (!c->x) {
        proxy_up_idle(c, n, b);
        return;
    }
    if (n < 0) {
        proxy_up_eof(c, n);
        return;
    }
    if (u->tls) {
        if (tls_stream_feed(u->tls, b->base, (size_t)n) < 0) {
            proxy_close(c, "out of memory");
            return;
        }
        proxy_arm(c, proxy_cfg(c)->timeout_upstream_idle_ms);
        proxy_up_tls(c);
        return;
    }
    proxy_up_data(c, b->base, (size_t)n);
}

/* ---------------------------------------------------------------- local answers */

static int proxy_target_is(const struct exchange *x, const char *path)
{
    size_t n = strlen(path);
    const struct slice t = x->path;

    return t.len >= n && memcmp(t.p, path, n) == 0 && (t.len == n || t.p[n] == '?');
}

/* The value of query parameter name in the local path, copied into out. */
static int proxy_query_param(const struct exchange *x, const char *name, char *out, size_t size)
{
    const char *q = memchr(x->path.p, '?', x->path.len), *end = x->path.p + x->path.len;
    size_t nl = strlen(name);

    while (q && q < end) {
        q++;
        const char *amp = memchr(q, '&', (size_t)(end - q));
        size_t len = amp ? (size_t)(amp - q) : (size_t)(end - q);
        if (len > nl && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            snprintf(out, size, "%.*s", (int)(len - nl - 1), q + nl + 1);
            return 0;
        }
        q = amp;
    }
    return -1;
}

static int proxy_status_allowed(struct conn *c)
{
    const struct config *cfg = proxy_cfg(c);

    for (int i = 0; i < cfg->nstatus_allow; i++) {
        if (config_cidr_match(&cfg->status_allow[i], (const struct sockaddr *)&c->peer))
            return 1;
    }
    return 0;
}

static void proxy_metrics(struct conn *c, struct page_metrics *m, struct page_verdict_count *rows,
                          size_t max)
{
    struct server *srv = c->w->srv;
    const struct policy *p = c->snap->policy;

    memset(m, 0, sizeof(*m));
    for (int i = 0; i < srv->nworkers; i++) {
        const struct worker_stats *st = &srv->workers[i].stats;
        m->requests_total += atomic_load_explicit(&st->requests, memory_order_relaxed);
        m->connections += atomic_load_explicit(&st->connections, memory_order_relaxed);
        m->tunnels += atomic_load_explicit(&st->tunnels, memory_order_relaxed);
        m->upstream_reused += atomic_load_explicit(&st->upstream_reused, memory_order_relaxed);
        m->tunnels_spliced += atomic_load_explicit(&st->tunnels_spliced, memory_order_relaxed);
        m->tls_inspected += atomic_load_explicit(&st->tls_inspected, memory_order_relaxed);
        for (int k = 0; k < PAGE_UPSTREAM_KINDS; k++)
            m->upstream_errors[k] +=
                atomic_load_explicit(&st->upstream_errors[k], memory_order_relaxed);
    }
    if (srv->cfg->ndns_listen > 0) {
        m->dns = 1;
        for (int i = 0; i < srv->nworkers; i++) {
            for (int k = 0; k < DNS_ANS_KINDS; k++)
                m->dns_answers[k] += atomic_load_explicit(&srv->workers[i].stats.dns_answers[k],
                                                          memory_order_relaxed);
        }
        m->dns_upstreams = srv->ndns_upstream;
        for (int j = 0; j < srv->ndns_upstream; j++) {
            m->dns_upstream[j] = srv->dns_upstream[j].host;
            m->dns_upstream_port[j] = srv->dns_upstream[j].port;
            m->dns_upstream_up[j] = 1;
            for (int i = 0; i < srv->nworkers; i++) {
                if (atomic_load_explicit(&srv->workers[i].stats.dns_down[j], memory_order_relaxed))
                    m->dns_upstream_up[j] = 0;
            }
        }
    }
    m->reloads_ok = atomic_load(&srv->reloads_ok);
    m->reloads_failed = atomic_load(&srv->reloads_failed);
    if (srv->log) {
        struct accesslog_stats ls;
        accesslog_stats(srv->log, &ls);
        m->log_queue_drops = ls.dropped;
    }
    if (srv->rec) {
        struct recorder_stats rs;
        recorder_stats(srv->rec, &rs);
        m->rec_events = rs.events;
        m->rec_rollups = rs.rollups;
        m->rec_dropped = rs.dropped;
        m->rec_spooled = rs.spooled;
        m->alerts = rs.alerts;
        m->alerts_suppressed = rs.suppressed;
        m->alert_sent = rs.sent;
        m->alert_retries = rs.retries;
        m->alert_failed = rs.failed;
    }
    if (srv->tls) {
        struct tls_inspect_stats ts;
        tls_inspect_get_stats(srv->tls, &ts);
        m->tls = 1;
        m->tls_leaf_hits = ts.hits;
        m->tls_leaf_misses = ts.misses;
        m->tls_mint_errors = ts.mint_errors;
    }
    m->verdicts = rows;
    for (int a = 0; a < 3; a++) {
        for (int k = 0; k <= POLICY_MAX_CATEGORIES && m->n_verdicts < max; k++) {
            uint64_t sum = 0;
            for (int i = 0; i < srv->nworkers; i++)
                sum += atomic_load_explicit(&srv->workers[i].stats.verdicts[a][k],
                                            memory_order_relaxed);
            if (sum == 0)
                continue;
            rows[m->n_verdicts].action = (enum policy_action)a;
            rows[m->n_verdicts].category = k == 0 ? "" : policy_category_name(p, k - 1);
            rows[m->n_verdicts].count = sum;
            m->n_verdicts++;
        }
    }
}

static void proxy_status_page(struct conn *c, int metrics)
{
    static __thread struct page_verdict_count rows[3 * (POLICY_MAX_CATEGORIES + 1)];
    struct page_metrics m;
    struct buf body;

    if (!proxy_status_allowed(c)) {
        proxy_error(c, 403, "The status pages are only for the network manager's machines.");
        return;
    }
    buf_init(&body, PROXY_PAGE_MAX);
    proxy_metrics(c, &m, rows, HAVEN_ARRAY_LEN(rows));
    if (metrics) {
        page_metrics(&body, &m);
        proxy_local(c, 200, PAGE_METRICS_TYPE, &body, NULL);
    } else {
        struct server *srv = c->w->srv;
        struct page_stats st;
        struct catdb_stats cs;
        uint64_t blocks = 0;

        for (size_t i = 0; i < m.n_verdicts; i++)
            blocks += m.verdicts[i].action == POLICY_BLOCK ? m.verdicts[i].count : 0;
        catdb_get_stats(policy_catdb(c->snap->policy), &cs);
        memset(&st, 0, sizeof(st));
        st.version = HAVEN_VERSION;
        st.uptime = clock_now() - srv->started;
        st.workers = (unsigned)srv->nworkers;
        st.connections = m.connections;
        st.requests_total = m.requests_total;
        st.blocks_total = blocks;
        st.loaded_at = c->snap->loaded_at;
        pthread_mutex_lock(&srv->lock);
        char reload[256];
        snprintf(reload, sizeof(reload), "%s", srv->last_reload);
        pthread_mutex_unlock(&srv->lock);
        st.last_reload_ok =
            m.reloads_ok + m.reloads_failed == 0 ? -1 : strncmp(reload, "failed", 6) != 0;
        st.reload_msg = reload;
        st.catdb_entries = cs.nhosts + cs.nurls + cs.nips;
        st.tz = policy_tz(c->snap->policy);
        st.school = policy_school(c->snap->policy);
        page_status(&body, &st);
        proxy_local(c, 200, PAGE_HTML_TYPE, &body, NULL);
    }
    buf_cleanup(&body);
}

static void proxy_pac(struct conn *c)
{
    const struct config *cfg = proxy_cfg(c);
    char proxyaddr[CONFIG_HOST_MAX + 16], err[256];
    struct buf body;

    if (cfg->pac_proxy.host[0])
        snprintf(proxyaddr, sizeof(proxyaddr), "%s:%u", cfg->pac_proxy.host, cfg->pac_proxy.port);
    else
        snprintf(proxyaddr, sizeof(proxyaddr), "%s:%u", cfg->listen[0].host, cfg->listen[0].port);
    buf_init(&body, PROXY_PAGE_MAX);
    if (page_pac(&body, proxyaddr, (const char *const *)cfg->pac_direct, (size_t)cfg->npac_direct,
                 err, sizeof(err)) < 0) {
        buf_cleanup(&body);
        proxy_error(c, 500, err);
        return;
    }
    proxy_local(c, 200, PAGE_PAC_TYPE, &body, NULL);
    buf_cleanup(&body);
}

/* GET /haven/continue?ref=...: the user chose to go on after a warning. */
static void proxy_continue(struct conn *c)
{
    struct exchange *x = c->x;
    char ref[PAGE_REF_SIZE], url[URL_MAX + 1], loc[URL_MAX + 32];

    if (proxy_query_param(x, "ref", ref, sizeof(ref)) < 0 ||
        server_warn_continue(c->w->srv, ref, c->peer_ip, url, sizeof(url)) < 0) {
        proxy_error(c, 400, "This link has expired: go back and open the page again.");
        return;
    }
    snprintf(x->reason, sizeof(x->reason), "continued after a warning (reference %s)", ref);
    snprintf(loc, sizeof(loc), "Location: %s\r\n", url);
    proxy_local(c, 302, "text/plain", NULL, loc);
}

/*
 * A browser the DNS filter sent here (`dns-block page`): a request for another site's page,
 * made straight to haven (origin-form, Host naming that site). If the policy blocks or warns
 * about that page, the block page explains why. Returns 1 when answered; 0 for anything else
 * (haven never fetches pages asked for this way: it is not a transparent proxy).
 */
static int proxy_is_self(const struct conn *c, const struct url *u);

static int proxy_redirected_block(struct conn *c)
{
    struct exchange *x = c->x;
    char url[URL_MAX + 1];
    const char *why;
    struct buf body;
    struct page_info pi;

    if (!x->req.has_host || x->req.host.len == 0 || x->req.target_form != H1_TARGET_ORIGIN ||
        x->req.host.len + x->req.target.len + 8 > sizeof(url))
        return 0;
    snprintf(url, sizeof(url), "http://%.*s%.*s", (int)x->req.host.len, x->req.host.p,
             (int)x->req.target.len, x->req.target.p);
    if (url_normalize(url, strlen(url), &x->url, &why) < 0 || proxy_is_self(c, &x->url))
        return 0;
    policy_explain(c->snap->policy, &x->url, x->group_index, clock_now(), &x->v, x->reason,
                   sizeof(x->reason));
    if (x->v.action == POLICY_ALLOW)
        return 0;
    x->local = 0;               /* logged as the blocked page it is */
    x->v.action = POLICY_BLOCK; /* a warning's "continue" cannot work without the proxy */
    worker_count(&c->w->stats.verdicts[POLICY_BLOCK][x->v.category + 1], 1);
    buf_init(&body, PROXY_PAGE_MAX);
    proxy_page_info(c, &pi);
    page_block(&body, &pi);
    proxy_local(c, 403, PAGE_HTML_TYPE, &body, NULL);
    buf_cleanup(&body);
    return 1;
}

/* GET /proxy.pac, /wpad.dat, /haven/status, /metrics, /haven/continue; POST the forms. */
static void proxy_local_request(struct conn *c)
{
    struct exchange *x = c->x;
    int is_get = slice_eq_cstr(x->req.method, "GET") || slice_eq_cstr(x->req.method, "HEAD");

    c->state = C_LOCAL;
    x->local = 1;
    if (is_get && (proxy_target_is(x, "/proxy.pac") || proxy_target_is(x, "/wpad.dat")))
        proxy_pac(c);
    else if (is_get && proxy_target_is(x, "/metrics"))
        proxy_status_page(c, 1);
    else if (is_get && proxy_target_is(x, "/haven/status"))
        proxy_status_page(c, 0);
    else if (is_get && proxy_target_is(x, PROXY_CONTINUE_PATH))
        proxy_continue(c);
    else if (slice_eq_cstr(x->req.method, "POST") &&
             (proxy_target_is(x, PAGE_REQUEST_PATH) || proxy_target_is(x, PAGE_CONCERN_PATH))) {
        /* The form arrives as the body; it is recorded once complete (proxy_form_done). */
        if (x->req.body != H1_BODY_LENGTH || x->req.content_length > PROXY_FORM_MAX) {
            proxy_error(c, 413, "The message is too long.");
            return;
        }
        buf_init(&x->form, PROXY_FORM_MAX);
        x->form_wanted = 1;
    } else if (!(is_get && proxy_redirected_block(c))) {
        proxy_error(c, 404,
                    "This is the school's web filter. Set your browser to use it as a "
                    "proxy, or ask the IT team.");
    }
}

static int proxy_hex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Field name of an application/x-www-form-urlencoded body, decoded into out ("" if absent). */
static void proxy_form_field(const struct buf *form, const char *name, char *out, size_t size)
{
    const char *p = form->p, *end = form->p + form->len;
    size_t nl = strlen(name), o = 0;

    out[0] = '\0';
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *fend = amp ? amp : end;
        if ((size_t)(fend - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            for (const char *q = p + nl + 1; q < fend && o + 1 < size; q++) {
                if (*q == '+') {
                    out[o++] = ' ';
                } else if (*q == '%' && fend - q > 2 && proxy_hex(q[1]) >= 0 &&
                           proxy_hex(q[2]) >= 0) {
                    char ch = (char)(proxy_hex(q[1]) * 16 + proxy_hex(q[2]));
                    out[o++] = ch == '\0' ? ' ' : ch;
                    q += 2;
                } else {
                    out[o++] = *q;
                }
            }
            out[o] = '\0';
            return;
        }
        p = amp ? amp + 1 : NULL;
    }
}

/* A complete form POSTed from a block page: record it and thank the user. */
static void proxy_form_done(struct conn *c)
{
    struct exchange *x = c->x;
    struct buf body;
    struct page_info pi;
    int concern = proxy_target_is(x, PAGE_CONCERN_PATH);

    char ref[PAGE_REF_SIZE] = "", url[URL_MAX + 1] = "", text[PROXY_FORM_MAX + 1] = "";

    /*
     * The record goes to the access log now, decoded and whole, under the blocked URL and the
     * block page's reference, so staff can tie it to the block; the console comes later.
     */
    proxy_form_field(&x->form, "ref", ref, sizeof(ref));
    proxy_form_field(&x->form, "url", url, sizeof(url));
    proxy_form_field(&x->form, concern ? "details" : "reason", text, sizeof(text));
    snprintf(x->reason, sizeof(x->reason), "%s: %s", concern ? "concern" : "request", text);
    if (strlen(ref) > 4 && strncmp(ref, "HVN-", 4) == 0)
        snprintf(x->ref, sizeof(x->ref), "%s", ref);
    if (url[0]) {
        const char *why;
        if (url_normalize(url, strlen(url), &x->url, &why) < 0)
            x->url.len = 0;
    }
    buf_init(&body, PROXY_PAGE_MAX);
    proxy_page_info(c, &pi);
    page_confirm(&body, &pi, concern ? PAGE_CONFIRM_CONCERN : PAGE_CONFIRM_REQUEST);
    proxy_local(c, 200, PAGE_HTML_TYPE, &body, NULL);
    buf_cleanup(&body);
}

/* ---------------------------------------------------------------- inspection */

/* The CONNECT exchange ends here: log it (inspected, or refused) and forget it. */
static void proxy_connect_done(struct conn *c, const char *why)
{
    if (why && !c->x->reason[0])
        snprintf(c->x->reason, sizeof(c->x->reason), "%s", why);
    proxy_log(c);
    worker_count(&c->w->stats.requests, 1);
    proxy_free_exchange(c);
    if (c->snap) {
        snapshot_unref(c->snap);
        c->snap = NULL;
    }
}

/* TLS with the client: drive the handshake, then hand plaintext to the HTTP path. */
static void proxy_client_tls(struct conn *c)
{
    char buf[16384], err[256];
    ssize_t n = 0;

    if (c->tls_busy)
        return;
    if (!c->ctls->done) {
        int r = tls_stream_handshake(c->ctls, err, sizeof(err));
        proxy_send(c, 1, NULL, 0);
        if (r < 0) {
            /* A device without the school's CA lands here: say so in the debug log. */
            log_debug("%s: TLS with the client for %s failed: %s", c->peer_ip, c->tls_host, err);
            proxy_close_after_write(c);
            return;
        }
        if (r == 0)
            return;
        c->state = C_HEAD;
        proxy_arm(c, proxy_cfg(c)->timeout_request_head_ms);
    }
    c->tls_busy = 1;
    while (c->state != C_CLOSING && (n = tls_stream_read(c->ctls, buf, sizeof(buf))) > 0)
        proxy_client_data(c, buf, (size_t)n);
    c->tls_busy = 0;
    if (n < 0 && c->state != C_CLOSING)
        proxy_close(c, "client ended TLS");
}

/* The leaf for c->tls_host is here: start TLS with the client on the bytes it sent. */
static void proxy_client_tls_start(struct conn *c, X509 *leaf)
{
    struct tls_inspect *ti = c->w->srv->tls;
    char err[256];

    c->ctls = xmalloc(sizeof(*c->ctls));
    if (tls_stream_server(c->ctls, tls_inspect_server_ctx(ti), leaf, tls_inspect_ca_cert(ti),
                          tls_inspect_leaf_key(ti), err, sizeof(err)) < 0) {
        free(c->ctls);
        c->ctls = NULL;
        log_warnx("%s: cannot inspect %s: %s", c->peer_ip, c->tls_host, err);
        proxy_close(c, "TLS set-up failed");
        return;
    }
    c->state = C_HANDSHAKE;
    proxy_arm(c, proxy_cfg(c)->timeout_request_head_ms);
    if (tls_stream_feed(c->ctls, c->in.p, c->in.len) < 0) {
        proxy_close(c, "out of memory");
        return;
    }
    buf_reset(&c->in);
    proxy_client_tls(c);
    proxy_read_client(c);
}

/* Minting a leaf goes through the signer process: on libuv's thread pool. */
struct proxy_mint {
    uv_work_t req;
    struct conn *c;
    X509 *leaf;
    char host[URL_HOST_MAX + 1];
    char err[256];
};

static void proxy_mint_work(uv_work_t *req)
{
    struct proxy_mint *m = req->data;

    m->leaf = tls_inspect_mint(m->c->w->srv->tls, m->host, m->err, sizeof(m->err));
}

static void proxy_mint_done(uv_work_t *req, int status)
{
    struct proxy_mint *m = req->data;
    struct conn *c = m->c;

    if (c->closed) {
        X509_free(m->leaf);
        free(m);
        proxy_release(c);
        return;
    }
    c->pending_closes--;
    if (status != 0 || !m->leaf) {
        log_warnx("%s: no certificate for %s: %s", c->peer_ip, m->host,
                  status ? uv_strerror(status) : m->err);
        free(m);
        proxy_close(c, "no certificate");
        return;
    }
    proxy_client_tls_start(c, m->leaf);
    X509_free(m->leaf);
    free(m);
}

/* Decrypt this CONNECT: requests inside go through the HTTP path as https:// URLs. */
static void proxy_inspect(struct conn *c, const char *host)
{
    struct exchange *x = c->x;
    X509 *leaf;

    c->inspect = 1;
    snprintf(c->tls_host, sizeof(c->tls_host), "%s", host);
    snprintf(c->connect_host, sizeof(c->connect_host), "%s", x->host);
    c->tls_port = x->port;
    snprintf(c->tls_user, sizeof(c->tls_user), "%s", x->user);
    snprintf(c->tls_group, sizeof(c->tls_group), "%s", x->group);
    c->tls_group_index = x->group_index;
    worker_count(&c->w->stats.tls_inspected, 1);
    x->inspected = 1;
    snprintf(x->reason, sizeof(x->reason), "inspected");
    proxy_connect_done(c, NULL);
    leaf = tls_inspect_cached(c->w->srv->tls, host);
    if (leaf) {
        proxy_client_tls_start(c, leaf);
        X509_free(leaf);
        return;
    }
    struct proxy_mint *m = xcalloc(1, sizeof(*m));
    m->req.data = m;
    m->c = c;
    snprintf(m->host, sizeof(m->host), "%s", host);
    c->state = C_MINT;
    c->pending_closes++;
    if (uv_queue_work(&c->w->loop, &m->req, proxy_mint_work, proxy_mint_done) != 0) {
        c->pending_closes--;
        free(m);
        proxy_close(c, "cannot queue the certificate");
    }
}

/* The hello did not lead to inspection: relay the CONNECT as a plain tunnel. */
static void proxy_peek_tunnel(struct conn *c)
{
    worker_count(&c->w->stats.verdicts[c->x->v.action][c->x->v.category + 1], 1);
    c->state = C_UPSTREAM;
    proxy_upstream(c, 0);
}

/* Refuse a peeked CONNECT: the client was told 200, so the connection just closes. */
static void proxy_peek_refuse(struct conn *c, const char *why)
{
    struct exchange *x = c->x;

    x->v.action = POLICY_BLOCK;
    x->status = 403;
    if (why != x->reason)
        snprintf(x->reason, sizeof(x->reason), "%s", why);
    worker_count(&c->w->stats.verdicts[x->v.action][x->v.category + 1], 1);
    proxy_connect_done(c, NULL);
    proxy_close(c, why);
}

/* Bytes after an inspectable CONNECT: once the ClientHello is whole, tunnel, refuse or inspect. */
static void proxy_peek(struct conn *c)
{
    struct exchange *x = c->x;
    const struct policy *p = c->snap->policy;
    struct hello h;
    char err[256], target[URL_HOST_MAX + 16];
    const char *why;
    struct url u;

    switch (hello_parse((const uint8_t *)c->in.p, c->in.len, &h, err, sizeof(err))) {
    case HELLO_NEED_MORE:
        return;
    case HELLO_MALFORMED:
        log_info("%s: CONNECT %s: bad TLS hello: %s", c->peer_ip, x->host, err);
        proxy_peek_refuse(c, "The TLS hello could not be read.");
        return;
    case HELLO_NOT_TLS:
        if (policy_no_sni_block(p, x->group_index)) {
            x->circumvention = 1;
            proxy_peek_refuse(c, "This connection is not TLS; the group's no-sni rule blocks it.");
            return;
        }
        proxy_peek_tunnel(c);
        return;
    case HELLO_OK:
        break;
    }
    if (!h.has_sni) {
        if (policy_no_sni_block(p, x->group_index)) {
            x->circumvention = 1;
            proxy_peek_refuse(c, "The TLS hello names no site; the group's no-sni rule blocks it.");
            return;
        }
        /* Nothing to check the site's certificate against: relay it untouched. */
        proxy_peek_tunnel(c);
        return;
    }
    /* The name in the hello is the site: decide again if it is not the CONNECT's. */
    if (x->url.host_len != strlen(h.sni) ||
        memcmp(h.sni, x->url.text + x->url.host_off, x->url.host_len) != 0) {
        snprintf(target, sizeof(target), "https://%s:%u/", h.sni, x->port);
        if (url_normalize(target, strlen(target), &u, &why) < 0) {
            proxy_peek_refuse(c, "The TLS hello names a site that could not be read.");
            return;
        }
        x->url = u;
        policy_explain(p, &x->url, x->group_index, clock_now(), &x->v, x->reason,
                       sizeof(x->reason));
    }
    if (x->v.inspect) {
        proxy_inspect(c, h.sni);
        return;
    }
    if (x->v.action == POLICY_BLOCK) {
        proxy_peek_refuse(c, x->reason);
        return;
    }
    proxy_peek_tunnel(c);
}

/* An inspectable CONNECT: say 200 now and read the ClientHello before choosing. */
static void proxy_peek_start(struct conn *c)
{
    static const char ok[] = "HTTP/1.1 200 Connection established\r\nVia: 1.1 haven\r\n\r\n";

    c->x->answered = 1;
    c->x->status = 200;
    proxy_send(c, 1, ok, sizeof(ok) - 1);
    c->state = C_PEEK;
    proxy_arm(c, proxy_cfg(c)->timeout_request_head_ms);
    if (c->in.len > 0)
        proxy_peek(c);
    else
        proxy_read_client(c);
}

/*
 * A request inside an inspected CONNECT names a path on the site: make the https:// URL from
 * its Host, which must be the site's. Returns 0, or -1 when it has been answered.
 */
static int proxy_inspected_url(struct conn *c)
{
    struct exchange *x = c->x;
    const struct h1_request *req = &x->req;
    struct slice local =
        slice_make(PROXY_TLS_LOCAL "/haven/", sizeof(PROXY_TLS_LOCAL "/haven/") - 1);
    char text[URL_MAX + 1];
    const char *why;
    size_t hl;

    /* The identity is the CONNECT's (no Proxy-Authorization travels inside TLS). */
    snprintf(x->user, sizeof(x->user), "%s", c->tls_user);
    snprintf(x->group, sizeof(x->group), "%s", c->tls_group);
    x->group_index = c->tls_group_index;
    if (req->target_form != H1_TARGET_ORIGIN) {
        proxy_error(c, 400, "Requests inside HTTPS name a path, not a whole address.");
        return -1;
    }
    if (req->target.len >= local.len && memcmp(req->target.p, local.p, local.len) == 0) {
        x->path = slice_make(req->target.p + sizeof(PROXY_TLS_LOCAL) - 1,
                             req->target.len - (sizeof(PROXY_TLS_LOCAL) - 1));
        return 0;
    }
    hl = req->host.len;
    for (size_t i = 0; i < req->host.len; i++) {
        if (req->host.p[i] == ':')
            hl = i;
    }
    if (req->host.len > 0 && req->host.p[0] == '[')
        hl = req->host.len; /* an IPv6 literal: compared whole below, after normalising */
    if (!req->has_host || hl == 0 || hl != strlen(c->tls_host) ||
        strncasecmp(req->host.p, c->tls_host, hl) != 0) {
        proxy_error(c, 421, "This request is for a different site than the connection.");
        return -1;
    }
    if (8 + req->host.len + req->target.len > URL_MAX) {
        proxy_error(c, 414, "The address is too long.");
        return -1;
    }
    snprintf(text, sizeof(text), "https://%.*s%.*s", (int)req->host.len, req->host.p,
             (int)req->target.len, req->target.p);
    if (url_normalize(text, strlen(text), &x->url, &why) < 0) {
        proxy_error(c, 400, why ? why : "The address could not be read.");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- requests */

/* ---------------------------------------------------------------- monitor */

/* Scan a search; a group with block-score blocks one that scores that much (F12). */
static void proxy_watch_search(struct conn *c)
{
    struct exchange *x = c->x;
    const struct policy_monitor *pm = policy_group_monitor(c->snap->policy, x->group_index);
    int score = watch_search(&x->watch, c->snap->monitor, &c->w->scratch, pm, x->group, &x->url);
    int theme;

    if (pm->block_score == 0 || score < pm->block_score || x->v.action == POLICY_BLOCK)
        return;
    x->v.action = POLICY_BLOCK;
    x->v.tier = POLICY_TIER_CONTEXT;
    x->v.rule = "block-score";
    theme = x->watch.phrase ? x->watch.phrase->theme : -1;
    if (theme == LIB_SUICIDE || theme == LIB_SELF_HARM || theme == LIB_EATING_DISORDERS)
        snprintf(x->reason, sizeof(x->reason),
                 "This search was blocked because of the words in it. If you are finding things "
                 "hard, you are not alone: talk to an adult you trust at school, call Childline "
                 "free on 0800 1111 (any time), or text SHOUT to 85258.");
    else
        snprintf(x->reason, sizeof(x->reason),
                 "This search was blocked because of the words in it (%s).",
                 theme >= 0 ? library_theme_name(theme) : "keywords");
}

static void proxy_watch_chunk(void *arg, const char *data, size_t len)
{
    watch_page_data(arg, data, len);
}

/* A response head has arrived: read the page's text if it is one. */
static void proxy_watch_page(struct conn *c)
{
    struct exchange *x = c->x;
    const struct h1_header *ct, *ce;

    if (x->resp.status < 200 || x->resp.status > 299 || x->resp_body == H1_BODY_NONE)
        return;
    ct = h1_find(x->resp.headers, x->resp.nheaders, "content-type");
    ce = h1_find(x->resp.headers, x->resp.nheaders, "content-encoding");
    watch_page_start(&x->watch, c->snap->monitor, &c->w->scratch,
                     policy_group_monitor(c->snap->policy, x->group_index), x->group, &x->url,
                     ct ? ct->value.p : NULL, ct ? ct->value.len : 0, ce ? ce->value.p : NULL,
                     ce ? ce->value.len : 0, proxy_cfg(c)->monitor_page_max);
    if (x->watch.ext && x->resp_body == H1_BODY_CHUNKED) {
        x->resp_chunk.on_data = proxy_watch_chunk;
        x->resp_chunk.arg = &x->watch;
    }
}

/* Decide, then block, warn, or go upstream. */
static void proxy_proxied(struct conn *c)
{
    struct exchange *x = c->x;
    const struct policy *p = c->snap->policy;
    struct policy_verdict *v = &x->v;
    const char *why = NULL;
    int rc;

    if (x->tunnel) {
        char target[URL_HOST_MAX + 32];
        snprintf(target, sizeof(target), "https://%.*s/", (int)x->req.target.len, x->req.target.p);
        rc = x->req.target.len < URL_HOST_MAX + 8
                 ? url_normalize(target, strlen(target), &x->url, &why)
                 : -1;
    } else if (!c->inspect) {
        rc = url_normalize(x->req.target.p, x->req.target.len, &x->url, &why);
    } else {
        rc = 0; /* inside an inspected CONNECT: proxy_inspected_url made it */
    }
    if (rc < 0) {
        proxy_error(c, 400, why ? why : "The address could not be read.");
        return;
    }
    policy_decide(p, &x->url, x->group_index, clock_now(), v);
    x->circumvention = v->tier == POLICY_TIER_CIRCUMVENTION;
    if (v->action != POLICY_ALLOW || v->tier == POLICY_TIER_CIRCUMVENTION)
        policy_explain(p, &x->url, x->group_index, clock_now(), v, x->reason, sizeof(x->reason));
    if (!x->tunnel)
        proxy_watch_search(c);
    /* Where to connect: the URL's host, or the safe-search host for a CONNECT. */
    const char *forced = x->tunnel ? policy_safe_search_host(v->safe_search, v->youtube) : NULL;
    snprintf(x->host, sizeof(x->host), "%.*s", (int)x->url.host_len, x->url.text + x->url.host_off);
    if (forced)
        snprintf(x->host, sizeof(x->host), "%s", forced);
    x->port = x->url.port;
    /* HTTPS this group inspects (blocked or not: a block page can then be shown). */
    if (x->tunnel && v->inspect && c->w->srv->tls && v->tier != POLICY_TIER_CIRCUMVENTION) {
        proxy_peek_start(c);
        return;
    }
    worker_count(&c->w->stats.verdicts[v->action][v->category + 1], 1);
    if (v->action == POLICY_BLOCK) {
        struct buf body;
        struct page_info pi;
        buf_init(&body, PROXY_PAGE_MAX);
        proxy_page_info(c, &pi);
        page_block(&body, &pi);
        proxy_local(c, 403, PAGE_HTML_TYPE, &body, NULL);
        buf_cleanup(&body);
        return;
    }
    if (v->action == POLICY_WARN &&
        server_warn_allowed(c->w->srv, c->peer_ip, x->url.text + x->url.host_off,
                            x->url.host_len)) {
        /* The user chose to continue to this site after the warning, not long ago. */
        snprintf(x->reason, sizeof(x->reason), "continued after a warning");
    } else if (v->action == POLICY_WARN && !x->tunnel) {
        char cont[128];
        struct buf body;
        struct page_info pi;
        server_warn_add(c->w->srv, x->ref, c->peer_ip, x->url.text);
        if (c->inspect)
            snprintf(cont, sizeof(cont), "%s%s?ref=%s", PROXY_TLS_LOCAL, PROXY_CONTINUE_PATH,
                     x->ref);
        else
            snprintf(cont, sizeof(cont), "http://%s%s?ref=%s", PROXY_MAGIC_HOST,
                     PROXY_CONTINUE_PATH, x->ref);
        buf_init(&body, PROXY_PAGE_MAX);
        proxy_page_info(c, &pi);
        pi.continue_path = cont;
        pi.back_url = "";
        page_warn(&body, &pi);
        proxy_local(c, 403, PAGE_HTML_TYPE, &body, NULL);
        buf_cleanup(&body);
        return;
    }
    proxy_upstream(c, 1);
}

/* Is u addressed to haven itself: its reserved host name, or one of its listen addresses? */
static int proxy_is_self(const struct conn *c, const struct url *u)
{
    const struct config *cfg = proxy_cfg(c);
    struct slice host = slice_make(u->text + u->host_off, u->host_len);

    if (slice_eq_cstr(host, PROXY_MAGIC_HOST))
        return 1;
    for (int i = 0; i < cfg->nlisten; i++) {
        if (u->port == cfg->listen[i].port && slice_eq_cstr(host, cfg->listen[i].host))
            return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- sign-in */

/* A Basic password check, run on libuv's thread pool: argon2id takes tens of milliseconds. */
struct proxy_auth {
    uv_work_t req;
    struct conn *c;
    const struct ident *ident;
    char user[IDENT_USER_MAX];
    char pass[IDENT_PASS_MAX];
    int ok;
};

static int proxy_sign_in_required(const struct conn *c)
{
    const struct config *cfg = proxy_cfg(c);

    for (int i = 0; i < cfg->nsign_in; i++) {
        if (strcmp(cfg->sign_in[i], c->x->group) == 0)
            return 1;
    }
    return 0;
}

/* 407: ask the browser for the user's school name and password. */
static void proxy_challenge(struct conn *c, const char *why)
{
    char hdr[512];
    struct buf body;
    struct page_info pi;

    snprintf(hdr, sizeof(hdr), "Proxy-Authenticate: Basic realm=\"%s\", charset=\"UTF-8\"\r\n",
             proxy_cfg(c)->sign_in_realm);
    snprintf(c->x->reason, sizeof(c->x->reason), "%s", why);
    buf_init(&body, PROXY_PAGE_MAX);
    proxy_page_info(c, &pi);
    page_error(&body, &pi, 407);
    proxy_local(c, 407, PAGE_HTML_TYPE, &body, hdr);
    buf_cleanup(&body);
}

/* The signed-in user's group decides from here on. */
static void proxy_signed_in(struct conn *c, const char *user)
{
    const char *group = NULL, *display = NULL;
    int g;

    snprintf(c->x->user, sizeof(c->x->user), "%s", user);
    if (ident_user_group(c->snap->ident, user, &group, &display) == 0 && group) {
        g = policy_group_find(c->snap->policy, group);
        if (g >= 0) {
            c->x->group_index = g;
            snprintf(c->x->group, sizeof(c->x->group), "%s", group);
        }
    }
}

static void proxy_auth_work(uv_work_t *req)
{
    struct proxy_auth *a = req->data;

    a->ok = ident_check_password(a->ident, a->user, a->pass) == 0;
}

static void proxy_auth_done(uv_work_t *req, int status)
{
    struct proxy_auth *a = req->data;
    struct conn *c = a->c;

    sodium_memzero(a->pass, sizeof(a->pass));
    if (c->closed) {
        free(a);
        proxy_release(c);
        return;
    }
    c->pending_closes--;
    if (status == 0 && a->ok) {
        ident_cache_put(c->w->srv->auth_cache, c->snap->ident, c->x->req.proxy_authorization,
                        a->user, clock_now());
        proxy_signed_in(c, a->user);
        free(a);
        proxy_proxied(c);
        return;
    }
    free(a);
    proxy_challenge(c, "The name or password was not right.");
}

/*
 * Proxy sign-in: a Proxy-Authorization header is checked (from the cache, or on the thread
 * pool); a group listed in sign-in without one is challenged. Returns 0 to go on now, 1 when
 * the request was answered or will continue in proxy_auth_done.
 */
static int proxy_authenticate(struct conn *c)
{
    struct exchange *x = c->x;
    const struct ident *id = c->snap->ident;
    char user[IDENT_USER_MAX];
    struct proxy_auth *a;

    if (!x->req.has_proxy_authorization) {
        if (!proxy_sign_in_required(c))
            return 0;
        proxy_challenge(c, "Sign in with your school user name and password to use the internet.");
        return 1;
    }
    if (id && ident_cache_get(c->w->srv->auth_cache, id, x->req.proxy_authorization, clock_now(),
                              user, sizeof(user)) == 0) {
        proxy_signed_in(c, user);
        return 0;
    }
    a = xcalloc(1, sizeof(*a));
    if (!id || ident_parse_basic(x->req.proxy_authorization, a->user, sizeof(a->user), a->pass,
                                 sizeof(a->pass)) < 0) {
        free(a);
        proxy_challenge(c, "The name or password was not right.");
        return 1;
    }
    a->c = c;
    a->ident = id;
    a->req.data = a;
    c->pending_closes++; /* the connection stays allocated until the check returns */
    c->state = C_AUTH;
    if (uv_queue_work(&c->w->loop, &a->req, proxy_auth_work, proxy_auth_done) != 0) {
        c->pending_closes--;
        free(a);
        proxy_error(c, 503, "Sign-in is not available just now.");
    }
    return 1;
}

/* A complete request head is in c->in: set up the exchange and act on it. */
static void proxy_request(struct conn *c)
{
    struct exchange *x = c->x;
    const struct h1_request *req = &x->req;

    x->start_ms = proxy_now_ms();
    x->time_ms = clock_now_ms();
    x->bytes_in = req->head_len;
    page_reference_id(x->ref);
    c->keep_alive = req->keep_alive && !c->w->draining;
    x->req_body = req->body;
    x->req_left = req->content_length;
    {
        struct h1_limits lim;
        h1_limits_default(&lim);
        lim.max_head = proxy_cfg(c)->max_header_block;
        h1_chunked_init(&x->req_chunk, &lim);
    }
    x->req_done =
        req->body == H1_BODY_NONE || (req->body == H1_BODY_LENGTH && req->content_length == 0);
    x->tunnel = req->target_form == H1_TARGET_AUTHORITY;
    c->snap = c->w->snap;
    snapshot_ref(c->snap);
    proxy_identify(c);

    if (c->inspect) {
        if (proxy_inspected_url(c) < 0)
            return;
        if (x->path.len == 0) {
            proxy_proxied(c);
            return;
        }
    } else if (req->target_form == H1_TARGET_ABSOLUTE) {
        const char *why;
        if (url_normalize(req->target.p, req->target.len, &x->url, &why) == 0 &&
            proxy_is_self(c, &x->url))
            x->path = slice_make(x->url.text + x->url.path_off, x->url.len - x->url.path_off);
    } else if (req->target_form == H1_TARGET_ORIGIN) {
        x->path = req->target;
    }
    if (x->path.len > 0) {
        proxy_local_request(c);
        if (c->state == C_LOCAL && c->x && x->form_wanted) {
            /* Waiting for a form body: what already arrived counts. */
            size_t n = c->in.len < x->req_left ? c->in.len : (size_t)x->req_left;
            buf_append(&x->form, c->in.p, n);
            x->bytes_in += n;
            buf_consume(&c->in, n);
            x->req_left -= n;
            if (x->req_left == 0) {
                x->req_done = 1;
                proxy_form_done(c);
            }
        }
        return;
    }
    if (req->target_form != H1_TARGET_ABSOLUTE && req->target_form != H1_TARGET_AUTHORITY) {
        proxy_error(c, 400, "This is the school's web filter: it only answers proxy requests.");
        return;
    }
    if (x->tunnel && !slice_eq_cstr(req->method, "CONNECT")) {
        proxy_error(c, 400, "Only CONNECT takes a host:port target.");
        return;
    }
    if (proxy_authenticate(c) == 0)
        proxy_proxied(c);
}

/* Parse what is in c->in while we are waiting for a head. */
static void proxy_next_request(struct conn *c)
{
    struct h1_limits lim;
    int r;

    if (c->state != C_HEAD)
        return;
    if (c->in.len == 0) {
        buf_cleanup(&c->in);
        proxy_arm(c, proxy_cfg(c)->timeout_keepalive_ms);
        proxy_read_client(c);
        return;
    }
    if (!c->x) {
        c->x = xcalloc(1, sizeof(*c->x));
        buf_init(&c->x->form, 0);
    }
    h1_limits_default(&lim);
    lim.max_line = proxy_cfg(c)->max_request_line;
    lim.max_head = proxy_cfg(c)->max_header_block;
    lim.max_headers = proxy_cfg(c)->max_headers;
    r = h1_parse_request(c->in.p, c->in.len, &lim, &c->x->req);
    if (r == H1_DONE) {
        /* The exchange keeps its own copy of the head: c->in moves on to what follows. */
        struct exchange *x = c->x;
        x->head = xmalloc(x->req.head_len);
        memcpy(x->head, c->in.p, x->req.head_len);
        buf_consume(&c->in, x->req.head_len);
        r = h1_parse_request(x->head, x->req.head_len, &lim, &x->req);
    }
    if (r == H1_AGAIN) {
        proxy_arm(c, proxy_cfg(c)->timeout_request_head_ms);
        proxy_read_client(c);
        return;
    }
    if (r == H1_ERROR) {
        c->keep_alive = 0;
        c->x->start_ms = proxy_now_ms();
        c->x->time_ms = clock_now_ms();
        page_reference_id(c->x->ref);
        c->snap = c->w->snap;
        snapshot_ref(c->snap);
        log_info("%s: bad request: %s", c->peer_ip, c->x->req.error);
        proxy_error(c, c->x->req.status ? c->x->req.status : 400, c->x->req.error);
        return;
    }
    proxy_request(c);
}

static void proxy_on_client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static __thread char readbuf[PROXY_READ_SIZE];

    (void)h;
    (void)suggested;
    *b = uv_buf_init(readbuf, sizeof(readbuf));
}

/* Plaintext from the client (after TLS, when inspected), in any state. */
static void proxy_client_data(struct conn *c, const char *data, size_t len)
{
    struct exchange *x = c->x;

    switch (c->state) {
    case C_TUNNEL:
        proxy_arm(c, proxy_cfg(c)->timeout_tunnel_idle_ms);
        x->bytes_in += len;
        proxy_send(c, 0, data, len);
        proxy_maybe_splice(c);
        return;
    case C_UPSTREAM:
        if (proxy_client_body(c, data, len) < 0)
            proxy_close(c, "bad request body");
        break;
    case C_LOCAL:
        if (x && x->form_wanted && !x->req_done) {
            size_t take = len < x->req_left ? len : (size_t)x->req_left;
            buf_append(&x->form, data, take);
            x->req_left -= take;
            x->bytes_in += take;
            if (take < len)
                buf_append(&c->in, data + take, len - take);
            if (x->req_left == 0) {
                x->req_done = 1;
                proxy_form_done(c);
            }
            return;
        }
        buf_append(&c->in, data, len);
        break;
    case C_HEAD:
        if (buf_append(&c->in, data, len) < 0) {
            proxy_close(c, "request head too large");
            return;
        }
        proxy_next_request(c);
        return;
    case C_PEEK:
        if (buf_append(&c->in, data, len) < 0) {
            proxy_close(c, "TLS hello too large");
            return;
        }
        proxy_peek(c);
        return;
    case C_AUTH:
    case C_MINT:
    case C_HANDSHAKE:
        buf_append(&c->in, data, len);
        break;
    case C_CLOSING:
        return;
    }
    /* Pipelined bytes beyond a head's worth wait: stop reading until the exchange ends. */
    if (c->in.overflow || c->in.len > proxy_cfg(c)->max_header_block) {
        c->client_paused = 1;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

static void proxy_on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;
    struct exchange *x = c->x;

    if (c->state == C_CLOSING || n == 0)
        return;
    if (n < 0) {
        if (c->state == C_TUNNEL && n == UV_EOF && c->up_connected) {
            /* Half-close: the client is done sending; let the origin's answer finish. */
            uv_shutdown_t *req = xmalloc(sizeof(*req));
            uv_read_stop(s);
            x->req_done = 1;
            if (uv_shutdown(req, (uv_stream_t *)&c->up->tcp, proxy_on_half_close) != 0)
                free(req);
            if (x->resp_done)
                proxy_finish(c, 0);
            return;
        }
        proxy_close(c, n == UV_EOF ? "client closed" : uv_strerror((int)n));
        return;
    }
    if (c->ctls) {
        if (tls_stream_feed(c->ctls, b->base, (size_t)n) < 0) {
            proxy_close(c, "out of memory");
            return;
        }
        proxy_client_tls(c);
        return;
    }
    proxy_client_data(c, b->base, (size_t)n);
}

/* ---------------------------------------------------------------- accept */

void proxy_on_connection(uv_stream_t *listener, int status)
{
    struct worker *w = listener->data;
    const struct config *cfg = w->srv->cfg;
    struct conn *c;
    int len = sizeof(struct sockaddr_storage);

    if (status < 0)
        return;
    c = xcalloc(1, sizeof(*c));
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->pending_closes = 2;
        c->closed = 1;
        uv_close((uv_handle_t *)&c->tcp, proxy_on_closed);
        uv_close((uv_handle_t *)&c->timer, proxy_on_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len);
    if (c->peer.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&c->peer, c->peer_ip, sizeof(c->peer_ip));
    else
        uv_ip6_name((struct sockaddr_in6 *)&c->peer, c->peer_ip, sizeof(c->peer_ip));
    buf_init(&c->in, cfg->max_header_block + PROXY_READ_SIZE);
    buf_init(&c->upin, cfg->max_header_block + PROXY_READ_SIZE);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    c->state = C_HEAD;
    worker_count(&w->stats.connections, 1);
    if (atomic_fetch_add(&w->srv->nconns, 1) >= cfg->max_connections || w->draining) {
#define PROXY_BUSY_BODY "The school's web filter is busy: try again.\r\n"
        static const char busy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
            "Retry-After: 5\r\nConnection: close\r\nContent-Length: "
            "45\r\n\r\n" PROXY_BUSY_BODY;
        _Static_assert(sizeof(PROXY_BUSY_BODY) - 1 == 45, "Content-Length of the busy answer");
        worker_count(&w->stats.rejected, 1);
        proxy_send(c, 1, busy, sizeof(busy) - 1);
        proxy_close_after_write(c);
        return;
    }
    proxy_arm(c, cfg->timeout_request_head_ms);
    proxy_read_client(c);
}

void proxy_drain(struct worker *w)
{
    w->draining = 1;
    for (struct conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == C_HEAD && c->in.len == 0)
            proxy_close(c, "draining");
        else
            c->keep_alive = 0;
    }
}

void proxy_close_all(struct worker *w)
{
    for (struct conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        proxy_close(c, "stopping");
    }
}
