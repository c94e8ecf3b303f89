/*
 * bench_loadgen.c -- load generator and tunnel endpoints for bench/proxy/run.
 *
 *     bench_loadgen rate ADDR REQFILE RATE CONNS SECONDS WARMUP
 *     bench_loadgen idle ADDR REQFILE CONNS SECONDS
 *     bench_loadgen tunnel ADDR TARGET BYTES
 *     bench_loadgen sink ADDR
 *
 * ADDR is an IPv4 HOST:PORT (the benchmark uses loopback only). Output is one
 * key=value per line on standard output, for bench/proxy/proxy.py.
 *
 * rate: an open-loop client at a fixed request rate (what wrk2 does; wrk2 is not
 * in Debian). CONNS keep-alive connections are opened first; then request k is due
 * at t0 + k / RATE and goes out on the connection that has been idle longest. A
 * request that finds no idle connection waits, and its latency still counts from
 * the time it was due, so a stalled server is not hidden by the client slowing
 * down ("coordinated omission"). REQFILE holds the request bytes, sent as they
 * are. Responses are framed by Content-Length, chunked encoding or the close of the
 * connection; after a response that ends with a close (or says Connection: close,
 * or is HTTP/1.0) the connection is opened again, and the new connection's set-up
 * counts in the next request's latency, as it would for a browser. Latencies of
 * requests due in the first WARMUP seconds are not recorded. Runs SECONDS, then
 * waits at most DRAIN_S for responses still outstanding.
 *
 * idle: opens CONNS connections, sends one request on each and reads its
 * response, one connection after the other, then prints "idle=N" and holds the
 * connections, idle, for SECONDS (or until standard input closes), then prints
 * how many the server closed.
 *
 * tunnel: connects to ADDR, sends "CONNECT TARGET HTTP/1.1" and reads the
 * answer (TARGET "-": no CONNECT, ADDR is a plain relay), then sends BYTES bytes
 * with sendfile() from a memory file (no copy on the sending side) and waits for
 * the sink's 8-byte count of what it received. Time: first byte sent to count
 * received.
 *
 * sink: accepts connections one after the other; reads each with MSG_TRUNC (the
 * kernel drops the bytes, no copy) until BYTES have arrived, where BYTES is the
 * 8-byte big-endian count the tunnel client sends first, then answers with the
 * count it received and closes.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"

#define HEAD_MAX 65536
#define DRAIN_S 5.0
#define TUNNEL_CHUNK (64u * 1024 * 1024)
#define SINK_READ (4u * 1024 * 1024)

enum conn_state {
    ST_CONNECTING,
    ST_IDLE,
    ST_BUSY,
    ST_DOWN, /* closed, to be opened again */
};

enum body_kind {
    BODY_NONE,
    BODY_LENGTH,
    BODY_CHUNKED,
    BODY_CLOSE,
};

/* Chunked-body scanner states. */
enum chunk_state {
    CH_SIZE,
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,    /* at the start of a trailer line */
    CH_TRAILER_LN, /* inside a trailer line */
    CH_END_LF,
    CH_DONE,
};

struct conn {
    int fd;
    enum conn_state state;
    int64_t due_ns; /* when the request in flight was due */
    char head[HEAD_MAX];
    size_t head_len;
    int head_done;
    int status;
    int must_close;
    enum body_kind body;
    uint64_t left;
    enum chunk_state chunk;
    uint64_t chunk_left;
    uint64_t resp_bytes;
    int next_idle; /* the idle FIFO */
};

struct gen {
    struct sockaddr_in addr;
    char *req;
    size_t req_len;
    struct conn *conns;
    int nconns;
    int epfd;
    int idle_head, idle_tail; /* FIFO of idle connections, linked by next_idle */
    int nidle;
    int *down; /* connections closed, to be opened again */
    int ndown;
    /* results */
    int64_t *lat;
    size_t nlat, maxlat;
    uint64_t done, failed, connect_errors, reconnects, status[6], resp_bytes;
};

static int64_t loadgen_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void loadgen_die(const char *what)
{
    fprintf(stderr, "bench_loadgen: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int loadgen_parse_addr(const char *text, struct sockaddr_in *sa)
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

static double loadgen_number(const char *text, const char *what)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || *end != '\0' || v < 0) {
        fprintf(stderr, "bench_loadgen: %s: not a number: %s\n", what, text);
        exit(2);
    }
    return v;
}

static char *loadgen_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p;
    long n;

    if (!f)
        loadgen_die(path);
    if (fseek(f, 0, SEEK_END) != 0)
        loadgen_die(path);
    n = ftell(f);
    if (n <= 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "bench_loadgen: %s: empty or unreadable\n", path);
        exit(2);
    }
    p = xmalloc((size_t)n);
    if (fread(p, 1, (size_t)n, f) != (size_t)n)
        loadgen_die(path);
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* ---------------------------------------------------------------- connections */

static void loadgen_idle_push(struct gen *g, int i)
{
    g->conns[i].state = ST_IDLE;
    g->conns[i].next_idle = -1;
    if (g->idle_tail >= 0)
        g->conns[g->idle_tail].next_idle = i;
    else
        g->idle_head = i;
    g->idle_tail = i;
    g->nidle++;
}

/* The connection idle longest, out of the FIFO; -1 when none. */
static int loadgen_idle_pop(struct gen *g)
{
    int i = g->idle_head;

    if (i < 0)
        return -1;
    g->idle_head = g->conns[i].next_idle;
    if (g->idle_head < 0)
        g->idle_tail = -1;
    g->nidle--;
    return i;
}

/* Take connection i out of the idle FIFO wherever it is (the server closed it). */
static void loadgen_idle_remove(struct gen *g, int i)
{
    int prev = -1;

    for (int j = g->idle_head; j >= 0; prev = j, j = g->conns[j].next_idle) {
        if (j != i)
            continue;
        if (prev >= 0)
            g->conns[prev].next_idle = g->conns[j].next_idle;
        else
            g->idle_head = g->conns[j].next_idle;
        if (g->idle_tail == j)
            g->idle_tail = prev;
        g->nidle--;
        return;
    }
}

static void loadgen_open(struct gen *g, int i)
{
    struct conn *c = &g->conns[i];
    struct epoll_event ev;
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        loadgen_die("socket");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)&g->addr, sizeof(g->addr)) < 0 &&
        errno != EINPROGRESS)
        loadgen_die("connect");
    c->state = ST_CONNECTING;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.u32 = (uint32_t)i;
    if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        loadgen_die("epoll_ctl");
}

static void loadgen_close(struct gen *g, int i)
{
    struct conn *c = &g->conns[i];

    if (c->state == ST_IDLE)
        loadgen_idle_remove(g, i);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = ST_DOWN;
    g->down[g->ndown++] = i;
}

static void loadgen_reopen(struct gen *g)
{
    while (g->ndown > 0)
        loadgen_open(g, g->down[--g->ndown]);
}

static int loadgen_send(struct gen *g, int i, int64_t due)
{
    struct conn *c = &g->conns[i];
    ssize_t n = send(c->fd, g->req, g->req_len, MSG_NOSIGNAL);

    if (n != (ssize_t)g->req_len)
        return -1;
    c->state = ST_BUSY;
    c->due_ns = due;
    c->head_len = 0;
    c->head_done = 0;
    c->status = 0;
    c->must_close = 0;
    c->resp_bytes = 0;
    return 0;
}

/* ---------------------------------------------------------------- responses */

static int loadgen_header_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);

    return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static const char *loadgen_value(const char *line, size_t len, const char *name, size_t *vlen)
{
    const char *v = line + strlen(name) + 1, *end = line + len;

    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *vlen = (size_t)(end - v);
    return v;
}

/* Parse a complete response head: status, framing, whether the connection ends. */
static int loadgen_parse_head(struct conn *c, size_t head_len)
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
        size_t len, vlen;
        const char *v;

        eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        len = (size_t)(eol - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (loadgen_header_is(p, len, "content-length")) {
            char num[32];
            v = loadgen_value(p, len, "content-length", &vlen);
            if (vlen == 0 || vlen >= sizeof(num))
                return -1;
            memcpy(num, v, vlen);
            num[vlen] = '\0';
            length = strtoull(num, NULL, 10);
            has_length = 1;
        } else if (loadgen_header_is(p, len, "transfer-encoding")) {
            v = loadgen_value(p, len, "transfer-encoding", &vlen);
            chunked = vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0;
        } else if (loadgen_header_is(p, len, "connection")) {
            v = loadgen_value(p, len, "connection", &vlen);
            if (vlen == 5 && strncasecmp(v, "close", 5) == 0)
                c->must_close = 1;
        }
    }
    if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200)) {
        c->body = BODY_NONE;
    } else if (chunked) {
        c->body = BODY_CHUNKED;
        c->chunk = CH_SIZE;
        c->chunk_left = 0;
    } else if (has_length) {
        c->body = length ? BODY_LENGTH : BODY_NONE;
        c->left = length;
    } else {
        c->body = BODY_CLOSE;
        c->must_close = 1;
    }
    return 0;
}

static int loadgen_hex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Scan chunked body bytes; 1 when the body ended, 0 for more, -1 on a bad body. */
static int loadgen_chunked(struct conn *c, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        int h;

        switch (c->chunk) {
        case CH_SIZE:
            h = loadgen_hex(ch);
            if (h >= 0) {
                c->chunk_left = c->chunk_left * 16 + (uint64_t)h;
            } else if (ch == ';' || ch == ' ') {
                c->chunk = CH_EXT;
            } else if (ch == '\r') {
                c->chunk = CH_SIZE_LF;
            } else {
                return -1;
            }
            break;
        case CH_EXT:
            if (ch == '\r')
                c->chunk = CH_SIZE_LF;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return -1;
            c->chunk = c->chunk_left ? CH_DATA : CH_TRAILER;
            break;
        case CH_DATA: {
            size_t take = len - i;
            if (take > c->chunk_left)
                take = (size_t)c->chunk_left;
            c->chunk_left -= take;
            i += take - 1;
            if (c->chunk_left == 0)
                c->chunk = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                return -1;
            c->chunk = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return -1;
            c->chunk = CH_SIZE;
            break;
        case CH_TRAILER:
            c->chunk = ch == '\r' ? CH_END_LF : CH_TRAILER_LN;
            break;
        case CH_TRAILER_LN:
            if (ch == '\n')
                c->chunk = CH_TRAILER;
            break;
        case CH_END_LF:
            if (ch != '\n')
                return -1;
            c->chunk = CH_DONE;
            return 1;
        case CH_DONE:
            return 1;
        }
    }
    return 0;
}

/* Body bytes; 1 when the response ended, 0 for more, -1 on a bad body. */
static int loadgen_body(struct conn *c, const char *p, size_t len)
{
    c->resp_bytes += len;
    switch (c->body) {
    case BODY_NONE:
        return 1;
    case BODY_LENGTH:
        if (len > c->left)
            return -1; /* more than the response: the benchmark never pipelines */
        c->left -= len;
        return c->left == 0;
    case BODY_CHUNKED:
        return loadgen_chunked(c, p, len);
    case BODY_CLOSE:
        return 0;
    }
    return -1;
}

/*
 * Read what is there. Returns 1 when a response ended (eof set when the connection
 * did too), 0 for more, -1 on an error or an early close.
 */
static int loadgen_read(struct conn *c, int *eof)
{
    static char scratch[256 * 1024];

    *eof = 0;
    for (;;) {
        ssize_t n;
        int r;

        if (!c->head_done) {
            n = recv(c->fd, c->head + c->head_len, sizeof(c->head) - c->head_len, 0);
        } else {
            n = recv(c->fd, scratch, sizeof(scratch), 0);
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        if (n == 0) {
            *eof = 1;
            return c->head_done && c->body == BODY_CLOSE ? 1 : -1;
        }
        if (c->head_done) {
            r = loadgen_body(c, scratch, (size_t)n);
        } else {
            char *end;
            size_t hl;

            c->head_len += (size_t)n;
            end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
            if (!end) {
                if (c->head_len == sizeof(c->head))
                    return -1;
                continue;
            }
            hl = (size_t)(end - c->head) + 4;
            if (loadgen_parse_head(c, hl) < 0)
                return -1;
            c->head_done = 1;
            c->resp_bytes = hl;
            if (c->body == BODY_NONE)
                r = c->head_len == hl ? 1 : -1;
            else
                r = loadgen_body(c, c->head + hl, c->head_len - hl);
        }
        if (r != 0)
            return r;
    }
}

/* ---------------------------------------------------------------- rate */

static int loadgen_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static double loadgen_pct(const int64_t *v, size_t n, double p)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)(p * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1000.0;
}

/* An event on connection i. Returns 1 when it became idle, 0 otherwise. */
static int loadgen_event(struct gen *g, int i, uint32_t events, int64_t record_from)
{
    struct conn *c = &g->conns[i];
    int eof = 0, r;

    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        struct epoll_event ev;

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0 ||
            !(events & EPOLLOUT)) {
            g->connect_errors++;
            loadgen_close(g, i);
            return 0;
        }
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        epoll_ctl(g->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        loadgen_idle_push(g, i);
        return 1;
    }
    if (c->state == ST_IDLE) {
        /* The server closed a keep-alive connection: open it again. */
        g->reconnects++;
        loadgen_close(g, i);
        return 0;
    }
    if (c->state != ST_BUSY)
        return 0;
    r = loadgen_read(c, &eof);
    if (r == 0)
        return 0;
    if (r < 0) {
        g->failed++;
        loadgen_close(g, i);
        return 0;
    }
    g->done++;
    g->resp_bytes += c->resp_bytes;
    g->status[c->status / 100 < 6 ? c->status / 100 : 0]++;
    if (c->due_ns >= record_from && g->nlat < g->maxlat)
        g->lat[g->nlat++] = loadgen_now() - c->due_ns;
    if (eof || c->must_close) {
        g->reconnects++;
        loadgen_close(g, i);
        return 0;
    }
    loadgen_idle_push(g, i);
    return 1;
}

static void loadgen_init(struct gen *g, const char *addr, const char *reqfile, int nconns)
{
    memset(g, 0, sizeof(*g));
    if (loadgen_parse_addr(addr, &g->addr) < 0) {
        fprintf(stderr, "bench_loadgen: not an IPv4 HOST:PORT: %s\n", addr);
        exit(2);
    }
    if (reqfile)
        g->req = loadgen_read_file(reqfile, &g->req_len);
    g->nconns = nconns;
    g->conns = xcalloc((size_t)nconns, sizeof(*g->conns));
    g->down = xcalloc((size_t)nconns, sizeof(*g->down));
    g->idle_head = g->idle_tail = -1;
    g->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g->epfd < 0)
        loadgen_die("epoll_create1");
    for (int i = 0; i < nconns; i++)
        g->conns[i].fd = -1;
}

static void loadgen_cleanup(struct gen *g)
{
    for (int i = 0; i < g->nconns; i++) {
        if (g->conns[i].fd >= 0)
            close(g->conns[i].fd);
    }
    close(g->epfd);
    free(g->conns);
    free(g->down);
    free(g->lat);
    free(g->req);
}

/* Open every connection and wait until all are connected and idle (at most limit_ns). */
static void loadgen_connect_all(struct gen *g, int64_t limit_ns)
{
    static struct epoll_event evs[1024];
    int64_t end = loadgen_now() + limit_ns;

    for (int i = 0; i < g->nconns; i++)
        loadgen_open(g, i);
    while (g->nidle < g->nconns && loadgen_now() < end) {
        int n = epoll_wait(g->epfd, evs, (int)HAVEN_ARRAY_LEN(evs), 100);
        for (int k = 0; k < n; k++)
            loadgen_event(g, (int)evs[k].data.u32, evs[k].events, 0);
        loadgen_reopen(g);
    }
    if (g->nidle < g->nconns) {
        fprintf(stderr, "bench_loadgen: only %d of %d connections opened\n", g->nidle, g->nconns);
        exit(1);
    }
}

static int loadgen_rate(int argc, char **argv)
{
    static struct epoll_event evs[1024];
    struct gen g;
    double rate, seconds, warmup;
    int nconns;
    int64_t t0, end, record_from, interval;
    uint64_t k = 0, total;

    if (argc != 7) {
        fprintf(stderr, "usage: bench_loadgen rate ADDR REQFILE RATE CONNS SECONDS WARMUP\n");
        return 2;
    }
    rate = loadgen_number(argv[3], "RATE");
    nconns = (int)loadgen_number(argv[4], "CONNS");
    seconds = loadgen_number(argv[5], "SECONDS");
    warmup = loadgen_number(argv[6], "WARMUP");
    if (rate <= 0 || nconns <= 0 || seconds <= warmup) {
        fprintf(stderr, "bench_loadgen: RATE and CONNS must be positive, SECONDS > WARMUP\n");
        return 2;
    }
    loadgen_init(&g, argv[1], argv[2], nconns);
    loadgen_connect_all(&g, 30000000000LL);
    interval = (int64_t)(1e9 / rate);
    total = (uint64_t)(rate * seconds);
    g.maxlat = total + 16;
    g.lat = xmalloc(g.maxlat * sizeof(*g.lat));
    t0 = loadgen_now() + 1000000;
    record_from = t0 + (int64_t)(warmup * 1e9);
    end = t0 + (int64_t)(seconds * 1e9);

    /* Send what is due, then wait for responses or the next due time. */
    for (;;) {
        int64_t now = loadgen_now();
        uint64_t due = now < t0 ? 0 : (uint64_t)((now - t0) / interval) + 1;
        struct timespec ts;
        int n;

        if (due > total)
            due = total;
        while (k < due && g.nidle > 0) {
            int i = loadgen_idle_pop(&g);
            if (loadgen_send(&g, i, t0 + (int64_t)k * interval) < 0) {
                /* The server closed it while idle: the request goes on another. */
                g.reconnects++;
                loadgen_close(&g, i);
                continue;
            }
            k++;
        }
        loadgen_reopen(&g);
        if (k >= total && (g.done + g.failed >= k || now > end + (int64_t)(DRAIN_S * 1e9)))
            break;
        if (k < total && k >= due) {
            int64_t next = t0 + (int64_t)k * interval - now;
            if (next < 0)
                next = 0;
            ts.tv_sec = next / 1000000000;
            ts.tv_nsec = next % 1000000000;
        } else {
            ts.tv_sec = 0;
            ts.tv_nsec = 100000000;
        }
        n = epoll_pwait2(g.epfd, evs, (int)HAVEN_ARRAY_LEN(evs), &ts, NULL);
        if (n < 0 && errno != EINTR)
            loadgen_die("epoll_pwait2");
        for (int e = 0; e < n; e++)
            loadgen_event(&g, (int)evs[e].data.u32, evs[e].events, record_from);
    }

    qsort(g.lat, g.nlat, sizeof(*g.lat), loadgen_cmp);
    {
        double sum = 0;
        for (size_t i = 0; i < g.nlat; i++)
            sum += (double)g.lat[i];
        printf("rate_target=%.1f\n", rate);
        printf("conns=%d\n", nconns);
        printf("sent=%llu\n", (unsigned long long)k);
        printf("done=%llu\n", (unsigned long long)g.done);
        printf("failed=%llu\n", (unsigned long long)g.failed);
        printf("unfinished=%llu\n", (unsigned long long)(k - g.done - g.failed));
        printf("connect_errors=%llu\n", (unsigned long long)g.connect_errors);
        printf("reconnects=%llu\n", (unsigned long long)g.reconnects);
        printf("recorded=%zu\n", g.nlat);
        printf("rate_achieved=%.1f\n", (double)g.nlat / (seconds - warmup));
        printf("mean_us=%.1f\n", g.nlat ? sum / (double)g.nlat / 1000.0 : 0.0);
        printf("p50_us=%.1f\n", loadgen_pct(g.lat, g.nlat, 0.50));
        printf("p90_us=%.1f\n", loadgen_pct(g.lat, g.nlat, 0.90));
        printf("p99_us=%.1f\n", loadgen_pct(g.lat, g.nlat, 0.99));
        printf("p999_us=%.1f\n", loadgen_pct(g.lat, g.nlat, 0.999));
        printf("max_us=%.1f\n", g.nlat ? (double)g.lat[g.nlat - 1] / 1000.0 : 0.0);
        for (int s = 1; s < 6; s++)
            printf("status_%dxx=%llu\n", s, (unsigned long long)g.status[s]);
        printf("resp_bytes_mean=%.0f\n", g.done ? (double)g.resp_bytes / (double)g.done : 0.0);
    }
    loadgen_cleanup(&g);
    return 0;
}

/* ---------------------------------------------------------------- idle */

static int loadgen_idle(int argc, char **argv)
{
    static struct epoll_event evs[1024];
    struct gen g;
    int nconns, answered = 0, closed = 0;
    double seconds;
    int64_t end;

    if (argc != 5) {
        fprintf(stderr, "usage: bench_loadgen idle ADDR REQFILE CONNS SECONDS\n");
        return 2;
    }
    nconns = (int)loadgen_number(argv[3], "CONNS");
    seconds = loadgen_number(argv[4], "SECONDS");
    loadgen_init(&g, argv[1], argv[2], nconns);
    loadgen_connect_all(&g, 30000000000LL);
    /*
     * One request on each connection, one connection at a time, so that the server holds
     * one request's memory at a time and what stays is what an idle connection costs.
     */
    end = loadgen_now() + 60000000000LL;
    for (int i = 0; i < nconns && loadgen_now() < end; i++) {
        int c = loadgen_idle_pop(&g);
        if (c < 0 || loadgen_send(&g, c, loadgen_now()) < 0)
            loadgen_die("send");
        while (g.done + g.failed < (uint64_t)i + 1 && loadgen_now() < end) {
            int n = epoll_wait(g.epfd, evs, (int)HAVEN_ARRAY_LEN(evs), 100);
            for (int e = 0; e < n; e++)
                loadgen_event(&g, (int)evs[e].data.u32, evs[e].events, 0);
        }
    }
    for (int i = 0; i < nconns; i++)
        answered += g.conns[i].state == ST_IDLE;
    printf("idle=%d\n", answered);
    printf("failed=%llu\n", (unsigned long long)g.failed);
    fflush(stdout);
    /* Hold them; a connection the server closes shows up as readable. */
    end = loadgen_now() + (int64_t)(seconds * 1e9);
    {
        struct epoll_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN | EPOLLHUP;
        ev.data.u32 = UINT32_MAX;
        epoll_ctl(g.epfd, EPOLL_CTL_ADD, 0, &ev);
    }
    while (loadgen_now() < end) {
        int n = epoll_wait(g.epfd, evs, (int)HAVEN_ARRAY_LEN(evs), 100);
        int stop = 0;
        for (int e = 0; e < n; e++) {
            uint32_t i = evs[e].data.u32;
            if (i == UINT32_MAX) {
                char b[64];
                stop = read(0, b, sizeof(b)) <= 0;
                continue;
            }
            if (g.conns[i].fd >= 0) {
                closed++;
                loadgen_close(&g, (int)i);
            }
        }
        if (stop)
            break;
    }
    printf("closed_by_server=%d\n", closed);
    loadgen_cleanup(&g);
    return 0;
}

/* ---------------------------------------------------------------- tunnel */

static void loadgen_write_all(int fd, const void *p, size_t len)
{
    const char *c = p;

    while (len > 0) {
        ssize_t n = send(fd, c, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            loadgen_die("send");
        c += n;
        len -= (size_t)n;
    }
}

static int loadgen_read_all(int fd, void *p, size_t len)
{
    char *c = p;

    while (len > 0) {
        ssize_t n = recv(fd, c, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

static void loadgen_put64(unsigned char *b, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        b[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t loadgen_get64(const unsigned char *b)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static int loadgen_tunnel(int argc, char **argv)
{
    struct sockaddr_in sa;
    unsigned char count[8];
    uint64_t bytes, sent = 0;
    int fd, mfd, one = 1;
    int64_t t0, t1;
    char *chunk;

    if (argc != 4 || loadgen_parse_addr(argv[1], &sa) < 0) {
        fprintf(stderr, "usage: bench_loadgen tunnel HOST:PORT TARGET|- BYTES\n");
        return 2;
    }
    bytes = (uint64_t)loadgen_number(argv[3], "BYTES");
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0)
        loadgen_die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (strcmp(argv[2], "-") != 0) {
        char head[512], resp[4096];
        size_t got = 0;
        int n = snprintf(head, sizeof(head), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", argv[2],
                         argv[2]);
        loadgen_write_all(fd, head, (size_t)n);
        /* Read the answer byte by byte so that nothing after the head is taken. */
        while (got < sizeof(resp) - 1) {
            if (recv(fd, resp + got, 1, 0) != 1)
                loadgen_die("CONNECT answer");
            got++;
            if (got >= 4 && memcmp(resp + got - 4, "\r\n\r\n", 4) == 0)
                break;
        }
        resp[got] = '\0';
        if (got < 12 || memcmp(resp + 8, " 200", 4) != 0) {
            fprintf(stderr, "bench_loadgen: CONNECT %s refused: %.*s\n", argv[2],
                    (int)(strcspn(resp, "\r\n")), resp);
            return 1;
        }
    }
    /* The data: a memory file of TUNNEL_CHUNK bytes, sent again and again. */
    mfd = memfd_create("bench_loadgen", MFD_CLOEXEC);
    if (mfd < 0 || ftruncate(mfd, TUNNEL_CHUNK) < 0)
        loadgen_die("memfd");
    chunk = mmap(NULL, TUNNEL_CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (chunk == MAP_FAILED)
        loadgen_die("mmap");
    for (size_t i = 0; i < TUNNEL_CHUNK; i++)
        chunk[i] = (char)(i * 7 + (i >> 12));
    munmap(chunk, TUNNEL_CHUNK);

    t0 = loadgen_now();
    loadgen_put64(count, bytes);
    loadgen_write_all(fd, count, sizeof(count));
    while (sent < bytes) {
        off_t off = (off_t)(sent % TUNNEL_CHUNK);
        size_t want = TUNNEL_CHUNK - (size_t)off;
        ssize_t n;
        if (want > bytes - sent)
            want = (size_t)(bytes - sent);
        n = sendfile(fd, mfd, &off, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            loadgen_die("sendfile");
        sent += (uint64_t)n;
    }
    if (loadgen_read_all(fd, count, sizeof(count)) < 0)
        loadgen_die("the sink's count");
    t1 = loadgen_now();
    printf("bytes=%llu\n", (unsigned long long)sent);
    printf("received=%llu\n", (unsigned long long)loadgen_get64(count));
    printf("seconds=%.4f\n", (double)(t1 - t0) / 1e9);
    printf("gbps=%.4f\n", (double)sent / ((double)(t1 - t0) / 1e9) / 1e9);
    close(fd);
    close(mfd);
    return loadgen_get64(count) == bytes ? 0 : 1;
}

static int loadgen_sink(int argc, char **argv)
{
    struct sockaddr_in sa;
    int lfd, one = 1;
    char *buf;

    if (argc != 2 || loadgen_parse_addr(argv[1], &sa) < 0) {
        fprintf(stderr, "usage: bench_loadgen sink HOST:PORT\n");
        return 2;
    }
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        loadgen_die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (const struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0)
        loadgen_die("bind");
    buf = xmalloc(SINK_READ);
    for (;;) {
        unsigned char count[8];
        uint64_t want, got = 0;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR)
                continue;
            loadgen_die("accept");
        }
        if (loadgen_read_all(fd, count, sizeof(count)) < 0) {
            close(fd);
            continue;
        }
        want = loadgen_get64(count);
        while (got < want) {
            size_t len = want - got < SINK_READ ? (size_t)(want - got) : SINK_READ;
            ssize_t n = recv(fd, buf, len, MSG_TRUNC);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (uint64_t)n;
        }
        loadgen_put64(count, got);
        send(fd, count, sizeof(count), MSG_NOSIGNAL);
        close(fd);
    }
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "rate") == 0)
        return loadgen_rate(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "idle") == 0)
        return loadgen_idle(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "tunnel") == 0)
        return loadgen_tunnel(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "sink") == 0)
        return loadgen_sink(argc - 1, argv + 1);
    fprintf(stderr, "usage: bench_loadgen rate|idle|tunnel|sink ...\n");
    return 2;
}
