/*
 * bench_tlsload.c -- HTTPS load through an inspecting proxy, for bench/tls/run.
 *
 *     bench_tlsload --reuse|--new --proxy ADDR|--direct ADDR --target NAME:PORT --ca FILE
 *                   [--conns N] [--seconds T] [--warmup W] [--threads K] [--path PATH]
 *                   [--watch PID]... [--watch-origin PID]...
 *
 * ADDR is an IPv4 HOST:PORT (the benchmark uses loopback only). Each connection opens a
 * TCP connection to ADDR; with --proxy it sends "CONNECT NAME:PORT HTTP/1.1" and needs a
 * 200 answer; then it does a TLS handshake with SNI NAME and checks the certificate
 * against FILE alone (chain and host name NAME). With --proxy, FILE is the inspection CA:
 * the origin's own certificate comes from another CA, so a certificate that verifies
 * proves that the proxy inspected the connection. A certificate that does not verify
 * stops the program at once (exit 3) with what was presented and by whom. The client
 * keeps no TLS sessions, so every handshake is a full one. Like a browser's verifier it
 * remembers the certificates that verified (by the SHA-256 of their DER) and does not
 * verify the same certificate twice; any other certificate is verified in full.
 *
 * Then it sends GET PATH requests (Host, User-Agent, Accept, Connection: keep-alive, as
 * a browser does), one at a time on each connection, each as soon as the previous
 * response has been read whole (closed loop). Responses are framed by Content-Length,
 * chunked encoding or the close of the connection.
 *
 * --reuse: N connections are opened and set up first (CONNECT, handshake, one request
 *   answered; at most 60 s), then each does requests for T seconds. A connection the
 *   server ends (Connection: close, HTTP/1.0, or a close) is opened again; that counts
 *   in "reconnects" and its handshake in the handshake figures.
 * --new: N connections at a time, each doing one request and closing (close_notify),
 *   then the next: a CONNECT, a full handshake and one request per request.
 *
 * The first W seconds of the run are not recorded (default 0); then T seconds are (the
 * window). A handshake counts when it ends inside the window; its time runs from
 * connect() to the end of the handshake. A request counts when its response ends inside
 * the window; its latency runs from the request written to the response read whole
 * ("req_"), and with --new also from connect() to the response read whole ("conn_"). A
 * connection without progress for 10 s is dropped (a timeout) and opened again.
 *
 * K threads (default 1) share the N connections, each with its own epoll loop. Read at
 * the start and the end of the window: this process's CPU time (cpu_pct, in percent of
 * one CPU: near 100 x K the generator itself was the limit), the CPU time of each --watch
 * process (proxy_cpu_s, proxy_cpu_pct) and of each --watch-origin process (origin_cpu_pct),
 * and each CPU's busy and steal share from /proc/stat (cpuN_busy, cpuN_steal).
 *
 * Output: one line of space-separated key=value on standard output; text values have
 * their spaces and '=' replaced by '_'. Progress and errors go to standard error.
 * Exit status: 0; 1 when the run could not be done (the proxy refused CONNECT, set-up
 * failed); 2 on bad usage; 3 when a certificate did not verify.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"

#define TL_HEAD_MAX 8192
#define TL_READ_BUF 65536
#define TL_SETUP_LIMIT_NS 60000000000LL
#define TL_STALL_NS 10000000000LL
#define TL_ERRORS_SHOWN 5
#define TL_KNOWN_MAX 64
#define TL_WATCH_MAX 16
#define TL_CPUS_MAX 64

enum tl_state {
    TS_DOWN,       /* no socket */
    TS_CONNECTING, /* connect() in progress */
    TS_PROXY_HEAD, /* CONNECT sent, reading the proxy's answer */
    TS_HANDSHAKE,
    TS_SEND, /* writing a request */
    TS_RECV, /* reading a response */
    TS_IDLE, /* set up and waiting for the run to start (--reuse) */
};

enum tl_body {
    TB_NONE,
    TB_LENGTH,
    TB_CHUNKED,
    TB_CLOSE,
};

enum tl_chunk {
    TC_SIZE,
    TC_EXT,
    TC_SIZE_LF,
    TC_DATA,
    TC_DATA_CR,
    TC_DATA_LF,
    TC_TRAILER,
    TC_TRAILER_LN,
    TC_END_LF,
    TC_DONE,
};

struct tl_conn {
    int fd;
    SSL *ssl;
    enum tl_state state;
    uint32_t events; /* what epoll waits for on fd */
    int64_t t_connect, t_send, t_active;
    uint64_t nreq; /* responses read on this connection */
    /* the proxy's CONNECT answer, then each response head */
    char head[TL_HEAD_MAX];
    size_t head_len;
    int head_done;
    int status;
    int must_close;
    enum tl_body body;
    uint64_t left;
    enum tl_chunk chunk;
    uint64_t chunk_left;
    uint64_t body_bytes;
};

/* A growing array of durations in nanoseconds. */
struct tl_lat {
    int64_t *v;
    size_t n, cap;
};

struct tl_load;

struct tl_worker {
    struct tl_load *ld;
    int index;
    struct tl_conn *conns;
    int nconns;
    int nready; /* connections set up (--reuse, before the run) */
    int epfd;
    pthread_t thread;
    char buf[TL_READ_BUF];
    /* counted inside the window */
    uint64_t requests, handshakes, reconnects, errors, timeouts, non200, body_bytes;
    struct tl_lat req, hs, conn, setup_hs;
    int errors_shown;
};

struct tl_load {
    int mode_new;
    int via_proxy;
    struct sockaddr_in addr;
    char name[256]; /* the target's host name: SNI, Host, certificate name */
    char target[300];
    char path[512];
    char connect_req[700];
    size_t connect_len;
    char req[1200];
    size_t req_len;
    const char *ca_file;
    SSL_CTX *ctx;
    int nconns, nthreads;
    double seconds, warmup;
    pthread_barrier_t barrier;
    /* set by worker 0 between the two barriers; read-only afterwards */
    int64_t t_start, t_rec, t_end;
    double cpu0, cpu1; /* this process's CPU time at t_rec and t_end (worker 0) */
    /* --watch: processes whose CPU time is read at t_rec and t_end (the proxy under test) */
    int watch[TL_WATCH_MAX];
    int nwatch;
    double watch0, watch1;
    /* --watch-origin: the same for the origin, which shares the load CPU */
    int owatch[TL_WATCH_MAX];
    int nowatch;
    double owatch0, owatch1;
    /* each CPU's busy, steal and total ticks at t_rec and t_end (/proc/stat) */
    uint64_t busy0[TL_CPUS_MAX], steal0[TL_CPUS_MAX], total0[TL_CPUS_MAX];
    uint64_t busy1[TL_CPUS_MAX], steal1[TL_CPUS_MAX], total1[TL_CPUS_MAX];
    int ncpus;
    /* certificates that verified, by the SHA-256 of their DER (tl_verify_cb) */
    pthread_mutex_t known_lock;
    unsigned char known[TL_KNOWN_MAX][32];
    int nknown;
    uint64_t verifications; /* full chain verifications done */
    /* what the first handshake saw */
    pthread_mutex_t info_lock;
    int have_info;
    char issuer[256], subject[256], tls_version[32], cipher[64], group[64], leaf_key[64];
};

static int64_t tl_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void tl_usage(void)
{
    fprintf(stderr, "usage: bench_tlsload --reuse|--new --proxy HOST:PORT|--direct HOST:PORT "
                    "--target NAME:PORT --ca FILE [--conns N] [--seconds T] [--warmup W] "
                    "[--threads K] [--path PATH] [--watch PID]... [--watch-origin PID]...\n");
    exit(2);
}

static void tl_die(const char *what)
{
    fprintf(stderr, "bench_tlsload: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void tl_ssl_die(const char *what)
{
    fprintf(stderr, "bench_tlsload: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static double tl_number(const char *text, const char *what)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || v < 0) {
        fprintf(stderr, "bench_tlsload: %s: not a number: %s\n", what, text);
        exit(2);
    }
    return v;
}

static int tl_parse_addr(const char *text, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    char *end;
    long port;

    if (!colon || (size_t)(colon - text) >= sizeof(host))
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port <= 0 || port > 65535)
        return -1;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -1;
    return 0;
}

/* Spaces to '_', so that a text value stays one token of the output line. */
static void tl_token(char *s)
{
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t' || *s == '=')
            *s = '_';
    }
}

static void tl_lat_push(struct tl_lat *l, int64_t v)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = v;
}

static void tl_lat_merge(struct tl_lat *into, const struct tl_lat *from)
{
    for (size_t i = 0; i < from->n; i++)
        tl_lat_push(into, from->v[i]);
}

static int tl_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static void tl_lat_sort(struct tl_lat *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof(*l->v), tl_cmp);
}

/* The p-quantile of a sorted array, in microseconds (0 when empty). */
static double tl_pct(const struct tl_lat *l, double p)
{
    size_t i;

    if (l->n == 0)
        return 0.0;
    i = (size_t)(p * (double)(l->n - 1) + 0.5);
    return (double)l->v[i] / 1000.0;
}

static double tl_mean(const struct tl_lat *l)
{
    double sum = 0;

    if (l->n == 0)
        return 0.0;
    for (size_t i = 0; i < l->n; i++)
        sum += (double)l->v[i];
    return sum / (double)l->n / 1000.0;
}

/* ---------------------------------------------------------------- connections */

static void tl_want(struct tl_worker *w, int i, uint32_t events)
{
    struct tl_conn *c = &w->conns[i];
    struct epoll_event ev;

    if (c->events == events)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u32 = (uint32_t)i;
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        tl_die("epoll_ctl");
    c->events = events;
}

static void tl_open(struct tl_worker *w, int i)
{
    struct tl_load *ld = w->ld;
    struct tl_conn *c = &w->conns[i];
    struct epoll_event ev;
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        tl_die("socket");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->t_connect = tl_now();
    c->t_active = c->t_connect;
    if (connect(c->fd, (const struct sockaddr *)&ld->addr, sizeof(ld->addr)) < 0 &&
        errno != EINPROGRESS)
        tl_die("connect");
    c->state = TS_CONNECTING;
    c->nreq = 0;
    c->head_len = 0;
    c->events = EPOLLOUT;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLOUT;
    ev.data.u32 = (uint32_t)i;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        tl_die("epoll_ctl");
}

/* Close connection i; close_notify first when the handshake was done. */
static void tl_close(struct tl_worker *w, int i, int notify)
{
    struct tl_conn *c = &w->conns[i];

    if (c->ssl) {
        if (notify)
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd); /* also takes it out of the epoll set */
    c->fd = -1;
    if (c->state == TS_IDLE)
        w->nready--;
    c->state = TS_DOWN;
}

static int tl_in_window(const struct tl_load *ld, int64_t t)
{
    return ld->t_rec != 0 && t >= ld->t_rec && t < ld->t_end;
}

/* A connection failed: count it, say why (the first few times), open it again. */
static void tl_fail(struct tl_worker *w, int i, const char *why)
{
    struct tl_conn *c = &w->conns[i];
    unsigned long e = ERR_peek_last_error();

    if (tl_in_window(w->ld, tl_now()))
        w->errors++;
    if (w->errors_shown < TL_ERRORS_SHOWN) {
        char ebuf[256] = "";
        if (e)
            ERR_error_string_n(e, ebuf, sizeof(ebuf));
        fprintf(stderr, "bench_tlsload: connection %d.%d (after %llu responses): %s%s%s%s\n",
                w->index, i, (unsigned long long)c->nreq, why, errno ? ": " : "",
                errno ? strerror(errno) : "", e ? ebuf : "");
        w->errors_shown++;
    }
    ERR_clear_error();
    tl_close(w, i, 0);
    tl_open(w, i);
}

/* Note, once, what the first handshake that verified saw (for the output line). */
static void tl_note_info(struct tl_load *ld, SSL *ssl, X509 *cert)
{
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    int nid = SSL_get_negotiated_group(ssl);
    const char *gname = nid ? SSL_group_to_name(ssl, nid) : NULL;
    char gbuf[64] = "";

    X509_NAME_oneline(X509_get_issuer_name(cert), ld->issuer, sizeof(ld->issuer));
    X509_NAME_oneline(X509_get_subject_name(cert), ld->subject, sizeof(ld->subject));
    snprintf(ld->tls_version, sizeof(ld->tls_version), "%s", SSL_get_version(ssl));
    snprintf(ld->cipher, sizeof(ld->cipher), "%s", SSL_get_cipher_name(ssl));
    snprintf(ld->group, sizeof(ld->group), "%s", gname ? gname : "?");
    if (pk && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(pk, gbuf, sizeof(gbuf), &glen) != 1)
            snprintf(gbuf, sizeof(gbuf), "?");
        snprintf(ld->leaf_key, sizeof(ld->leaf_key), "EC-%s", gbuf);
    } else if (pk) {
        snprintf(ld->leaf_key, sizeof(ld->leaf_key), "%s-%d", OBJ_nid2sn(EVP_PKEY_get_base_id(pk)),
                 EVP_PKEY_get_bits(pk));
    } else {
        snprintf(ld->leaf_key, sizeof(ld->leaf_key), "?");
    }
    tl_token(ld->issuer);
    tl_token(ld->subject);
    tl_token(ld->group);
    ld->have_info = 1;
}

/*
 * The certificate the server presented must verify against the CA file for the name
 * (the result of the verification done in the handshake, tl_verify_cb); if it does not,
 * say what was presented and stop (exit 3).
 */
static void tl_check_cert(struct tl_worker *w, struct tl_conn *c)
{
    struct tl_load *ld = w->ld;
    X509 *cert = SSL_get0_peer_certificate(c->ssl);
    long vr = SSL_get_verify_result(c->ssl);

    if (!cert || vr != X509_V_OK) {
        char issuer[256] = "?", subject[256] = "?";

        if (cert) {
            X509_NAME_oneline(X509_get_issuer_name(cert), issuer, sizeof(issuer));
            X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        }
        fprintf(stderr,
                "bench_tlsload: the certificate for %s does not verify against %s: %s. It "
                "says subject %s, issuer %s.%s\n",
                ld->name, ld->ca_file, cert ? X509_verify_cert_error_string(vr) : "none presented",
                subject, issuer,
                ld->via_proxy ? " The proxy did not inspect this connection (or minted the "
                                "certificate from another CA)."
                              : "");
        exit(3);
    }
    pthread_mutex_lock(&ld->info_lock);
    if (!ld->have_info)
        tl_note_info(ld, c->ssl, cert);
    pthread_mutex_unlock(&ld->info_lock);
}

/* ---------------------------------------------------------------- responses */

static int tl_header_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);

    return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

struct tl_slice {
    const char *p;
    size_t len;
};

static struct tl_slice tl_value(const char *line, size_t len, const char *name)
{
    struct tl_slice v;
    const char *end = line + len;

    v.p = line + strlen(name) + 1;
    while (v.p < end && (*v.p == ' ' || *v.p == '\t'))
        v.p++;
    while (end > v.p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    v.len = (size_t)(end - v.p);
    return v;
}

/* Status, framing and whether the connection ends, from a complete response head. */
static int tl_parse_head(struct tl_conn *c, size_t head_len)
{
    const char *p = c->head, *end = c->head + head_len;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    int chunked = 0, has_length = 0;
    uint64_t length = 0;

    if (!eol || eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0)
        return -1;
    c->must_close = p[7] == '0';
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    for (p = eol + 1; p < end; p = eol + 1) {
        size_t len;
        struct tl_slice v;

        eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        len = (size_t)(eol - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (tl_header_is(p, len, "content-length")) {
            char num[32];
            v = tl_value(p, len, "content-length");
            if (v.len == 0 || v.len >= sizeof(num))
                return -1;
            memcpy(num, v.p, v.len);
            num[v.len] = '\0';
            length = strtoull(num, NULL, 10);
            has_length = 1;
        } else if (tl_header_is(p, len, "transfer-encoding")) {
            v = tl_value(p, len, "transfer-encoding");
            chunked = v.len >= 7 && strncasecmp(v.p + v.len - 7, "chunked", 7) == 0;
        } else if (tl_header_is(p, len, "connection")) {
            v = tl_value(p, len, "connection");
            if (v.len == 5 && strncasecmp(v.p, "close", 5) == 0)
                c->must_close = 1;
        }
    }
    c->body_bytes = 0;
    if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200)) {
        c->body = TB_NONE;
    } else if (chunked) {
        c->body = TB_CHUNKED;
        c->chunk = TC_SIZE;
        c->chunk_left = 0;
    } else if (has_length) {
        c->body = length ? TB_LENGTH : TB_NONE;
        c->left = length;
    } else {
        c->body = TB_CLOSE;
        c->must_close = 1;
    }
    return 0;
}

static int tl_hex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Chunked body bytes; 1 when the body ended, 0 for more, -1 on a bad body. */
static int tl_chunked(struct tl_conn *c, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        int h;

        switch (c->chunk) {
        case TC_SIZE:
            h = tl_hex(ch);
            if (h >= 0)
                c->chunk_left = c->chunk_left * 16 + (uint64_t)h;
            else if (ch == ';' || ch == ' ')
                c->chunk = TC_EXT;
            else if (ch == '\r')
                c->chunk = TC_SIZE_LF;
            else
                return -1;
            break;
        case TC_EXT:
            if (ch == '\r')
                c->chunk = TC_SIZE_LF;
            break;
        case TC_SIZE_LF:
            if (ch != '\n')
                return -1;
            c->chunk = c->chunk_left ? TC_DATA : TC_TRAILER;
            break;
        case TC_DATA: {
            size_t take = len - i;
            if (take > c->chunk_left)
                take = (size_t)c->chunk_left;
            c->chunk_left -= take;
            c->body_bytes += take;
            i += take - 1;
            if (c->chunk_left == 0)
                c->chunk = TC_DATA_CR;
            break;
        }
        case TC_DATA_CR:
            if (ch != '\r')
                return -1;
            c->chunk = TC_DATA_LF;
            break;
        case TC_DATA_LF:
            if (ch != '\n')
                return -1;
            c->chunk = TC_SIZE;
            break;
        case TC_TRAILER:
            c->chunk = ch == '\r' ? TC_END_LF : TC_TRAILER_LN;
            break;
        case TC_TRAILER_LN:
            if (ch == '\n')
                c->chunk = TC_TRAILER;
            break;
        case TC_END_LF:
            if (ch != '\n')
                return -1;
            c->chunk = TC_DONE;
            return 1;
        case TC_DONE:
            return 1;
        }
    }
    return 0;
}

/* Body bytes; 1 when the response ended, 0 for more, -1 on a bad body. */
static int tl_body(struct tl_conn *c, const char *p, size_t len)
{
    switch (c->body) {
    case TB_NONE:
        return len == 0 ? 1 : -1;
    case TB_LENGTH:
        if (len > c->left)
            return -1; /* more than the response: never pipelined */
        c->left -= len;
        c->body_bytes += len;
        return c->left == 0;
    case TB_CHUNKED:
        return tl_chunked(c, p, len);
    case TB_CLOSE:
        c->body_bytes += len;
        return 0;
    }
    return -1;
}

/* Response bytes as read; 1 when the response ended, 0 for more, -1 when malformed. */
static int tl_response_bytes(struct tl_conn *c, const char *p, size_t len)
{
    const char *end;
    size_t old, hl;

    if (c->head_done)
        return tl_body(c, p, len);
    if (len > sizeof(c->head) - c->head_len)
        return -1;
    memcpy(c->head + c->head_len, p, len);
    old = c->head_len;
    c->head_len += len;
    /* Search from a little before the new bytes: the blank line may straddle reads. */
    end = memmem(c->head + (old > 3 ? old - 3 : 0), c->head_len - (old > 3 ? old - 3 : 0),
                 "\r\n\r\n", 4);
    if (!end)
        return 0;
    hl = (size_t)(end - c->head) + 4;
    if (tl_parse_head(c, hl) < 0)
        return -1;
    c->head_done = 1;
    if (c->body == TB_NONE)
        return hl == c->head_len ? 1 : -1;
    if (hl == c->head_len)
        return 0;
    return tl_body(c, c->head + hl, c->head_len - hl);
}

/* ---------------------------------------------------------------- the state machine */

static void tl_start_request(struct tl_worker *w, int i)
{
    struct tl_conn *c = &w->conns[i];

    c->state = TS_SEND;
    c->t_send = tl_now();
    c->head_len = 0;
    c->head_done = 0;
    c->status = 0;
    c->must_close = 0;
}

/* A response was read whole at time t: the connection goes on to its next request (TS_SEND),
 * waits for the run (TS_IDLE), or is opened again. */
static void tl_response_done(struct tl_worker *w, int i, int64_t t, int eof)
{
    struct tl_load *ld = w->ld;
    struct tl_conn *c = &w->conns[i];

    c->nreq++;
    if (tl_in_window(ld, t)) {
        w->requests++;
        w->body_bytes += c->body_bytes;
        if (c->status != 200)
            w->non200++;
        tl_lat_push(&w->req, t - c->t_send);
        if (ld->mode_new)
            tl_lat_push(&w->conn, t - c->t_connect);
    }
    if (ld->mode_new) {
        tl_close(w, i, !eof);
        tl_open(w, i);
        return;
    }
    if (eof || c->must_close) {
        if (tl_in_window(ld, t))
            w->reconnects++;
        tl_close(w, i, !eof);
        tl_open(w, i);
        return;
    }
    if (ld->t_start == 0) {
        /* Set up: wait for the run. */
        c->state = TS_IDLE;
        w->nready++;
        tl_want(w, i, EPOLLIN);
        return;
    }
    /* The next request: tl_step writes it at once (the socket is almost always writable). */
    tl_start_request(w, i);
}

static void tl_new_ssl(struct tl_worker *w, int i)
{
    struct tl_load *ld = w->ld;
    struct tl_conn *c = &w->conns[i];

    c->ssl = SSL_new(ld->ctx);
    if (!c->ssl)
        tl_ssl_die("SSL_new failed");
    if (SSL_set_fd(c->ssl, c->fd) != 1 || SSL_set_tlsext_host_name(c->ssl, ld->name) != 1 ||
        SSL_set1_host(c->ssl, ld->name) != 1)
        tl_ssl_die("cannot set up the TLS connection");
    SSL_set_connect_state(c->ssl);
    c->state = TS_HANDSHAKE;
}

/* Whether an SSL call that returned r should wait (1, events set), or failed (0). */
static int tl_ssl_wait(struct tl_worker *w, int i, int r)
{
    struct tl_conn *c = &w->conns[i];
    int e = SSL_get_error(c->ssl, r);

    if (e == SSL_ERROR_WANT_READ) {
        tl_want(w, i, EPOLLIN);
        return 1;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        tl_want(w, i, EPOLLOUT);
        return 1;
    }
    return 0;
}

/* The proxy's answer to CONNECT is in c->head: 1 when whole and 200, 0 for more. */
static int tl_proxy_answer(struct tl_worker *w, int i)
{
    struct tl_load *ld = w->ld;
    struct tl_conn *c = &w->conns[i];
    const char *end = memmem(c->head, c->head_len, "\r\n\r\n", 4);

    if (!end)
        return 0;
    if (c->head_len < 12 || memcmp(c->head, "HTTP/1.", 7) != 0 ||
        memcmp(c->head + 8, " 200", 4) != 0) {
        fprintf(stderr, "bench_tlsload: the proxy refused CONNECT %s: %.*s\n", ld->target,
                (int)strcspn(c->head, "\r\n"), c->head);
        exit(1);
    }
    if ((size_t)(end - c->head) + 4 != c->head_len) {
        fprintf(stderr, "bench_tlsload: the proxy sent bytes after its CONNECT answer\n");
        exit(1);
    }
    return 1;
}

static void tl_step(struct tl_worker *w, int i, uint32_t ev)
{
    struct tl_load *ld = w->ld;
    struct tl_conn *c = &w->conns[i];
    int r;

    c->t_active = tl_now();
    for (;;) {
        switch (c->state) {
        case TS_DOWN:
            return;
        case TS_CONNECTING: {
            int err = 0;
            socklen_t len = sizeof(err);
            ssize_t n;

            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
                errno = err;
                tl_fail(w, i, "connect");
                return;
            }
            if (!ld->via_proxy) {
                tl_new_ssl(w, i);
                break;
            }
            n = send(c->fd, ld->connect_req, ld->connect_len, MSG_NOSIGNAL);
            if (n != (ssize_t)ld->connect_len) {
                tl_fail(w, i, "sending CONNECT");
                return;
            }
            c->state = TS_PROXY_HEAD;
            c->head_len = 0;
            tl_want(w, i, EPOLLIN);
            return;
        }
        case TS_PROXY_HEAD: {
            ssize_t n;

            if (c->head_len >= sizeof(c->head) - 1) {
                tl_fail(w, i, "the CONNECT answer is too long");
                return;
            }
            n = recv(c->fd, c->head + c->head_len, sizeof(c->head) - 1 - c->head_len, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            if (n <= 0) {
                if (n == 0)
                    errno = 0;
                tl_fail(w, i,
                        n == 0 ? "the proxy closed before answering CONNECT"
                               : "reading the CONNECT answer");
                return;
            }
            c->head_len += (size_t)n;
            c->head[c->head_len] = '\0';
            if (!tl_proxy_answer(w, i))
                break;
            tl_new_ssl(w, i);
            break;
        }
        case TS_HANDSHAKE: {
            int64_t t;

            ERR_clear_error();
            r = SSL_connect(c->ssl);
            if (r != 1) {
                if (tl_ssl_wait(w, i, r))
                    return;
                errno = 0;
                tl_fail(w, i, "TLS handshake failed: ");
                return;
            }
            t = tl_now();
            tl_check_cert(w, c);
            if (tl_in_window(ld, t)) {
                w->handshakes++;
                tl_lat_push(&w->hs, t - c->t_connect);
            } else if (ld->t_start == 0) {
                tl_lat_push(&w->setup_hs, t - c->t_connect);
            }
            tl_start_request(w, i);
            break;
        }
        case TS_SEND:
            ERR_clear_error();
            r = SSL_write(c->ssl, ld->req, (int)ld->req_len);
            if (r <= 0) {
                if (tl_ssl_wait(w, i, r))
                    return;
                errno = 0;
                tl_fail(w, i, "writing the request: ");
                return;
            }
            c->state = TS_RECV;
            tl_want(w, i, EPOLLIN);
            return; /* the answer is not there yet: wait for it */
        case TS_RECV: {
            int done;

            ERR_clear_error();
            r = SSL_read(c->ssl, w->buf, (int)sizeof(w->buf));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    tl_ssl_wait(w, i, r);
                    return;
                }
                if ((e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) && c->head_done &&
                    c->body == TB_CLOSE) {
                    tl_response_done(w, i, tl_now(), 1);
                    return;
                }
                if (c->head_len == 0 && c->nreq > 0 && !ld->mode_new) {
                    /* The server ended a keep-alive connection before this request. */
                    if (tl_in_window(ld, tl_now()))
                        w->reconnects++;
                    tl_close(w, i, 0);
                    tl_open(w, i);
                    return;
                }
                errno = 0;
                tl_fail(w, i, "reading the response: ");
                return;
            }
            done = tl_response_bytes(c, w->buf, (size_t)r);
            if (done < 0) {
                errno = 0;
                tl_fail(w, i, "malformed response");
                return;
            }
            if (done) {
                tl_response_done(w, i, tl_now(), 0);
                if (c->state != TS_SEND)
                    return;
            }
            break;
        }
        case TS_IDLE:
            if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                /* The server closed an idle connection: set it up again. */
                tl_close(w, i, 0);
                tl_open(w, i);
            }
            return;
        }
    }
}

static double tl_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of the processes pids[0..n) (all their threads), in seconds. */
static double tl_watch_cpu_s(const int *pids, int n)
{
    double sum = 0;
    long hz = sysconf(_SC_CLK_TCK);

    for (int k = 0; k < n; k++) {
        char path[64], line[1024];
        FILE *f;
        const char *p;
        unsigned long long ut = 0, st = 0;

        snprintf(path, sizeof(path), "/proc/%d/stat", pids[k]);
        f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(line, sizeof(line), f)) {
            /* after "(comm) ": state ppid pgrp session tty tpgid flags minflt cminflt
             * majflt cmajflt utime stime */
            p = strrchr(line, ')');
            if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                            &st) == 2)
                sum += (double)(ut + st) / (double)hz;
        }
        fclose(f);
    }
    return sum;
}

/* Busy (not idle, iowait or steal), steal and total ticks of each CPU; returns the count. */
static int tl_cpu_stat(uint64_t *busy, uint64_t *steal, uint64_t *total)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[512];
    int n = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f) && n < TL_CPUS_MAX) {
        unsigned long long v[8] = {0};
        int cpu;

        if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9')
            continue;
        if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) < 5 ||
            cpu != n)
            break;
        total[n] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
        steal[n] = v[7];
        busy[n] = total[n] - v[3] - v[4] - v[7];
        n++;
    }
    fclose(f);
    return n;
}

/* Drop connections without progress for TL_STALL_NS. */
static void tl_check_stalls(struct tl_worker *w, int64_t now)
{
    for (int i = 0; i < w->nconns; i++) {
        struct tl_conn *c = &w->conns[i];
        if (c->state == TS_IDLE || c->state == TS_DOWN || now - c->t_active < TL_STALL_NS)
            continue;
        if (tl_in_window(w->ld, now))
            w->timeouts++;
        errno = 0;
        tl_fail(w, i, "no progress for 10 s");
    }
}

static void tl_poll(struct tl_worker *w, int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(w->epfd, evs, (int)HAVEN_ARRAY_LEN(evs), timeout_ms);

    if (n < 0 && errno != EINTR)
        tl_die("epoll_wait");
    for (int e = 0; e < n; e++)
        tl_step(w, (int)evs[e].data.u32, evs[e].events);
}

static void *tl_worker_main(void *arg)
{
    struct tl_worker *w = arg;
    struct tl_load *ld = w->ld;
    int64_t last_check = tl_now(), now;
    int sampled = 0;

    if (!ld->mode_new) {
        int64_t limit = tl_now() + TL_SETUP_LIMIT_NS;
        for (int i = 0; i < w->nconns; i++)
            tl_open(w, i);
        while (w->nready < w->nconns && tl_now() < limit)
            tl_poll(w, 100);
        if (w->nready < w->nconns) {
            fprintf(stderr, "bench_tlsload: only %d of %d connections were set up in 60 s\n",
                    w->nready, w->nconns);
            exit(1);
        }
    }
    pthread_barrier_wait(&ld->barrier);
    if (w->index == 0) {
        ld->t_start = tl_now();
        ld->t_rec = ld->t_start + (int64_t)(ld->warmup * 1e9);
        ld->t_end = ld->t_rec + (int64_t)(ld->seconds * 1e9);
    }
    pthread_barrier_wait(&ld->barrier);
    for (int i = 0; i < w->nconns; i++) {
        if (ld->mode_new) {
            tl_open(w, i);
        } else if (w->conns[i].state == TS_IDLE) {
            w->nready--;
            tl_start_request(w, i);
            tl_want(w, i, EPOLLOUT);
        }
    }
    for (;;) {
        int64_t until;

        now = tl_now();
        if (w->index == 0 && !sampled && now >= ld->t_rec) {
            ld->cpu0 = tl_cpu_s();
            ld->watch0 = tl_watch_cpu_s(ld->watch, ld->nwatch);
            ld->owatch0 = tl_watch_cpu_s(ld->owatch, ld->nowatch);
            ld->ncpus = tl_cpu_stat(ld->busy0, ld->steal0, ld->total0);
            sampled = 1;
        }
        if (now >= ld->t_end)
            break;
        if (now - last_check > 200000000) {
            tl_check_stalls(w, now);
            last_check = now;
        }
        until = (w->index == 0 && !sampled ? ld->t_rec : ld->t_end) - now;
        tl_poll(w, until < 50000000 ? (int)(until / 1000000) + 1 : 50);
    }
    if (w->index == 0) {
        ld->cpu1 = tl_cpu_s();
        ld->watch1 = tl_watch_cpu_s(ld->watch, ld->nwatch);
        ld->owatch1 = tl_watch_cpu_s(ld->owatch, ld->nowatch);
        if (tl_cpu_stat(ld->busy1, ld->steal1, ld->total1) != ld->ncpus)
            ld->ncpus = 0;
    }
    for (int i = 0; i < w->nconns; i++)
        tl_close(w, i, 0);
    return NULL;
}

/*
 * Chain verification, remembered per certificate as a browser's verifier does: a leaf
 * whose DER (with the chain sent beside it) was verified before against the same CA file
 * and name passes without a second verification; any other runs X509_verify_cert. The
 * result lands where SSL_get_verify_result finds it, and tl_check_cert decides.
 */
static int tl_verify_cb(X509_STORE_CTX *xs, void *arg)
{
    struct tl_load *ld = arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    unsigned char md[32];
    unsigned int mdlen = 0;
    int known = 0, ok;

    if (leaf && X509_digest(leaf, EVP_sha256(), md, &mdlen) == 1 && mdlen == sizeof(md)) {
        pthread_mutex_lock(&ld->known_lock);
        for (int k = 0; k < ld->nknown && !known; k++)
            known = memcmp(ld->known[k], md, sizeof(md)) == 0;
        pthread_mutex_unlock(&ld->known_lock);
    }
    if (known) {
        X509_STORE_CTX_set_error(xs, X509_V_OK);
        return 1;
    }
    ok = X509_verify_cert(xs);
    pthread_mutex_lock(&ld->known_lock);
    ld->verifications++;
    if (ok == 1 && mdlen == sizeof(md) && ld->nknown < TL_KNOWN_MAX)
        memcpy(ld->known[ld->nknown++], md, sizeof(md));
    pthread_mutex_unlock(&ld->known_lock);
    return ok == 1 ? 1 : 0;
}

/* ---------------------------------------------------------------- set-up */

static void tl_setup(struct tl_load *ld, const char *target, const char *path)
{
    const char *colon = strrchr(target, ':');
    char *end;
    long port;
    int n;

    if (!colon || colon == target || (size_t)(colon - target) >= sizeof(ld->name)) {
        fprintf(stderr, "bench_tlsload: --target must be NAME:PORT: %s\n", target);
        exit(2);
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port <= 0 || port > 65535) {
        fprintf(stderr, "bench_tlsload: --target must be NAME:PORT: %s\n", target);
        exit(2);
    }
    memcpy(ld->name, target, (size_t)(colon - target));
    ld->name[colon - target] = '\0';
    snprintf(ld->target, sizeof(ld->target), "%s", target);
    snprintf(ld->path, sizeof(ld->path), "%s", path);
    n = snprintf(ld->connect_req, sizeof(ld->connect_req),
                 "CONNECT %s HTTP/1.1\r\nHost: %s\r\n"
                 "User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench/tls\r\n"
                 "Proxy-Connection: keep-alive\r\n\r\n",
                 target, target);
    ld->connect_len = (size_t)n;
    n = snprintf(ld->req, sizeof(ld->req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\n"
                 "User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench/tls\r\n"
                 "Accept: */*\r\nConnection: keep-alive\r\n\r\n",
                 path, port == 443 ? ld->name : target);
    ld->req_len = (size_t)n;

    ld->ctx = SSL_CTX_new(TLS_client_method());
    if (!ld->ctx)
        tl_ssl_die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ld->ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(ld->ctx, SSL_SESS_CACHE_OFF);
    /* Checked after each handshake (tl_check_cert), so that a failure can say more. */
    SSL_CTX_set_verify(ld->ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_cert_verify_callback(ld->ctx, tl_verify_cb, ld);
    if (SSL_CTX_load_verify_locations(ld->ctx, ld->ca_file, NULL) != 1) {
        fprintf(stderr, "bench_tlsload: cannot load the CA certificate %s\n", ld->ca_file);
        ERR_print_errors_fp(stderr);
        exit(2);
    }
}

static void tl_report(struct tl_load *ld, struct tl_worker *ws, double cpu_s)
{
    struct tl_worker all;
    double win = ld->seconds;

    memset(&all, 0, sizeof(all));
    for (int t = 0; t < ld->nthreads; t++) {
        struct tl_worker *w = &ws[t];
        all.requests += w->requests;
        all.handshakes += w->handshakes;
        all.reconnects += w->reconnects;
        all.errors += w->errors;
        all.timeouts += w->timeouts;
        all.non200 += w->non200;
        all.body_bytes += w->body_bytes;
        tl_lat_merge(&all.req, &w->req);
        tl_lat_merge(&all.hs, &w->hs);
        tl_lat_merge(&all.conn, &w->conn);
        tl_lat_merge(&all.setup_hs, &w->setup_hs);
    }
    tl_lat_sort(&all.req);
    tl_lat_sort(&all.hs);
    tl_lat_sort(&all.conn);
    tl_lat_sort(&all.setup_hs);
    printf("mode=%s conns=%d threads=%d seconds=%.2f warmup=%.2f requests=%llu rps=%.1f "
           "handshakes=%llu hs_per_s=%.1f hs_mean_us=%.1f hs_p50_us=%.1f hs_p99_us=%.1f "
           "req_mean_us=%.1f req_p50_us=%.1f req_p99_us=%.1f conn_p50_us=%.1f conn_p99_us=%.1f "
           "setup_hs=%zu setup_hs_p50_us=%.1f setup_hs_p99_us=%.1f reconnects=%llu errors=%llu "
           "timeouts=%llu non200=%llu body_mean=%.0f cpu_pct=%.1f verified=%s verifications=%llu "
           "tls=%s "
           "cipher=%s group=%s leaf_key=%s issuer=%s subject=%s",
           ld->mode_new ? "new" : "reuse", ld->nconns, ld->nthreads, win, ld->warmup,
           (unsigned long long)all.requests, (double)all.requests / win,
           (unsigned long long)all.handshakes, (double)all.handshakes / win, tl_mean(&all.hs),
           tl_pct(&all.hs, 0.50), tl_pct(&all.hs, 0.99), tl_mean(&all.req), tl_pct(&all.req, 0.50),
           tl_pct(&all.req, 0.99), tl_pct(&all.conn, 0.50), tl_pct(&all.conn, 0.99), all.setup_hs.n,
           tl_pct(&all.setup_hs, 0.50), tl_pct(&all.setup_hs, 0.99),
           (unsigned long long)all.reconnects, (unsigned long long)all.errors,
           (unsigned long long)all.timeouts, (unsigned long long)all.non200,
           all.requests ? (double)all.body_bytes / (double)all.requests : 0.0, 100.0 * cpu_s / win,
           ld->have_info ? "yes" : "no", (unsigned long long)ld->verifications,
           ld->have_info ? ld->tls_version : "-", ld->have_info ? ld->cipher : "-",
           ld->have_info ? ld->group : "-", ld->have_info ? ld->leaf_key : "-",
           ld->have_info ? ld->issuer : "-", ld->have_info ? ld->subject : "-");
    if (ld->nwatch > 0)
        printf(" proxy_cpu_s=%.3f proxy_cpu_pct=%.1f", ld->watch1 - ld->watch0,
               100.0 * (ld->watch1 - ld->watch0) / win);
    if (ld->nowatch > 0)
        printf(" origin_cpu_pct=%.1f", 100.0 * (ld->owatch1 - ld->owatch0) / win);
    for (int c = 0; c < ld->ncpus; c++) {
        double t = (double)(ld->total1[c] - ld->total0[c]);
        if (t <= 0)
            t = 1;
        printf(" cpu%d_busy=%.1f cpu%d_steal=%.1f", c,
               100.0 * (double)(ld->busy1[c] - ld->busy0[c]) / t, c,
               100.0 * (double)(ld->steal1[c] - ld->steal0[c]) / t);
    }
    printf("\n");
    free(all.req.v);
    free(all.hs.v);
    free(all.conn.v);
    free(all.setup_hs.v);
}

int main(int argc, char **argv)
{
    struct tl_load *ld = xcalloc(1, sizeof(*ld));
    struct tl_worker *ws;
    const char *addr = NULL, *target = NULL, *path = "/1k";
    int mode = -1, per, extra;

    signal(SIGPIPE, SIG_IGN);
    ld->nconns = 16;
    ld->nthreads = 1;
    ld->seconds = 10;
    for (int a = 1; a < argc; a++) {
        const char *opt = argv[a];
        const char *val = a + 1 < argc ? argv[a + 1] : NULL;

        if (strcmp(opt, "--reuse") == 0) {
            mode = 0;
            continue;
        }
        if (strcmp(opt, "--new") == 0) {
            mode = 1;
            continue;
        }
        if (!val)
            tl_usage();
        a++;
        if (strcmp(opt, "--proxy") == 0 || strcmp(opt, "--direct") == 0) {
            addr = val;
            ld->via_proxy = strcmp(opt, "--proxy") == 0;
        } else if (strcmp(opt, "--target") == 0) {
            target = val;
        } else if (strcmp(opt, "--ca") == 0) {
            ld->ca_file = val;
        } else if (strcmp(opt, "--conns") == 0) {
            ld->nconns = (int)tl_number(val, "--conns");
        } else if (strcmp(opt, "--seconds") == 0) {
            ld->seconds = tl_number(val, "--seconds");
        } else if (strcmp(opt, "--warmup") == 0) {
            ld->warmup = tl_number(val, "--warmup");
        } else if (strcmp(opt, "--threads") == 0) {
            ld->nthreads = (int)tl_number(val, "--threads");
        } else if (strcmp(opt, "--path") == 0) {
            path = val;
        } else if (strcmp(opt, "--watch") == 0) {
            if (ld->nwatch == TL_WATCH_MAX)
                tl_usage();
            ld->watch[ld->nwatch++] = (int)tl_number(val, "--watch");
        } else if (strcmp(opt, "--watch-origin") == 0) {
            if (ld->nowatch == TL_WATCH_MAX)
                tl_usage();
            ld->owatch[ld->nowatch++] = (int)tl_number(val, "--watch-origin");
        } else {
            tl_usage();
        }
    }
    if (mode < 0 || !addr || !target || !ld->ca_file || ld->nconns <= 0 || ld->nthreads <= 0 ||
        ld->seconds <= 0)
        tl_usage();
    if (ld->nthreads > ld->nconns)
        ld->nthreads = ld->nconns;
    if (tl_parse_addr(addr, &ld->addr) < 0) {
        fprintf(stderr, "bench_tlsload: not an IPv4 HOST:PORT: %s\n", addr);
        return 2;
    }
    ld->mode_new = mode;
    tl_setup(ld, target, path);
    pthread_mutex_init(&ld->info_lock, NULL);
    pthread_mutex_init(&ld->known_lock, NULL);
    pthread_barrier_init(&ld->barrier, NULL, (unsigned)ld->nthreads);

    ws = xcalloc((size_t)ld->nthreads, sizeof(*ws));
    per = ld->nconns / ld->nthreads;
    extra = ld->nconns % ld->nthreads;
    for (int t = 0; t < ld->nthreads; t++) {
        struct tl_worker *w = &ws[t];
        w->ld = ld;
        w->index = t;
        w->nconns = per + (t < extra);
        w->conns = xcalloc((size_t)w->nconns, sizeof(*w->conns));
        for (int i = 0; i < w->nconns; i++)
            w->conns[i].fd = -1;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0)
            tl_die("epoll_create1");
    }
    for (int t = 1; t < ld->nthreads; t++) {
        if (pthread_create(&ws[t].thread, NULL, tl_worker_main, &ws[t]) != 0)
            tl_die("pthread_create");
    }
    tl_worker_main(&ws[0]);
    for (int t = 1; t < ld->nthreads; t++)
        pthread_join(ws[t].thread, NULL);
    tl_report(ld, ws, ld->cpu1 - ld->cpu0);
    for (int t = 0; t < ld->nthreads; t++) {
        close(ws[t].epfd);
        free(ws[t].conns);
        free(ws[t].req.v);
        free(ws[t].hs.v);
        free(ws[t].conn.v);
        free(ws[t].setup_hs.v);
    }
    free(ws);
    SSL_CTX_free(ld->ctx);
    free(ld);
    return 0;
}
