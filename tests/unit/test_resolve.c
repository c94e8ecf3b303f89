/*
 * Unit tests: net/resolve against a stub DNS server running in a thread of this test.
 *
 * The stub listens on 127.0.0.1 (ephemeral UDP port), answers A, AAAA and CNAME from
 * stub_zone with the TTLs given there, says NXDOMAIN for other names, SERVFAIL for
 * servfail.test, never answers slow.test, and counts the questions it gets per name.
 * Cache expiry is tested by moving the fake clock, never by sleeping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "common/clock.h"
#include "net/resolve.h"

/* ---- the stub DNS server ---- */

enum { T_A = 1, T_CNAME = 5, T_AAAA = 28 };

struct stub_rr {
    const char *name;
    int type;
    const char *data; /* address text or CNAME target */
    uint32_t ttl;
};

static const struct stub_rr stub_zone[] = {
    {"a.test", T_A, "127.0.0.1", 60},      {"b.test", T_A, "127.0.0.2", 60},
    {"c.test", T_A, "127.0.0.3", 60},      {"six.test", T_AAAA, "::1", 60},
    {"both.test", T_A, "127.0.0.1", 300},  {"both.test", T_AAAA, "::1", 90},
    {"both.test", T_A, "127.0.0.2", 120},  {"zero.test", T_A, "127.0.0.5", 0},
    {"alias.test", T_CNAME, "a.test", 10},
};

#define STUB_MAX_NAMES 64
#define STUB_MAX_SEEN 1024

struct stub {
    int fd;
    uint16_t port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    int nnames;
    char names[STUB_MAX_NAMES][256];
    int counts[STUB_MAX_NAMES];
    int total;
    int nseen; /* (id, type) of the questions counted, so retransmissions are not */
    uint32_t seen[STUB_MAX_SEEN];
};

static struct stub stub;

/* Count a question for name, unless it is a retransmission (same ID and type). */
static void stub_count_name(const char *name, uint16_t id, int type)
{
    uint32_t key = ((uint32_t)id << 16) | (uint32_t)type;

    pthread_mutex_lock(&stub.lock);
    for (int i = 0; i < stub.nseen; i++) {
        if (stub.seen[i] == key) {
            pthread_mutex_unlock(&stub.lock);
            return;
        }
    }
    if (stub.nseen < STUB_MAX_SEEN)
        stub.seen[stub.nseen++] = key;
    stub.total++;
    for (int i = 0; i < stub.nnames; i++) {
        if (strcmp(stub.names[i], name) == 0) {
            stub.counts[i]++;
            pthread_mutex_unlock(&stub.lock);
            return;
        }
    }
    if (stub.nnames < STUB_MAX_NAMES) {
        snprintf(stub.names[stub.nnames], sizeof(stub.names[0]), "%s", name);
        stub.counts[stub.nnames++] = 1;
    }
    pthread_mutex_unlock(&stub.lock);
}

/* Questions the stub has received for name (A and AAAA together, retransmissions not
 * counted). */
static int stub_count(const char *name)
{
    int n = 0;

    pthread_mutex_lock(&stub.lock);
    for (int i = 0; i < stub.nnames; i++) {
        if (strcmp(stub.names[i], name) == 0)
            n = stub.counts[i];
    }
    pthread_mutex_unlock(&stub.lock);
    return n;
}

static int stub_total(void)
{
    int n;

    pthread_mutex_lock(&stub.lock);
    n = stub.total;
    pthread_mutex_unlock(&stub.lock);
    return n;
}

/*
 * Wait until the stub has handled every question sent to it so far: queries that a
 * previous test sent and then abandoned must not be counted in the next one. UDP on
 * loopback is queued at send time, so a reply to a later question proves it.
 */
static void stub_sync(void)
{
    static const uint8_t q[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0,   0, 0, 0, 0, 4, 's',
                                'y',  'n',  'c',  4,    't', 'e', 's', 't', 0, 0, 1, 0, 1};
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct pollfd p;
    uint8_t reply[512];
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(stub.port);
    assert_int_equal(sendto(fd, q, sizeof(q), 0, (struct sockaddr *)&sin, sizeof(sin)),
                     (ssize_t)sizeof(q));
    p.fd = fd;
    p.events = POLLIN;
    assert_int_equal(poll(&p, 1, 10000), 1);
    assert_true(recv(fd, reply, sizeof(reply), 0) > 0);
    close(fd);
}

static void stub_reset(void)
{
    stub_sync();
    pthread_mutex_lock(&stub.lock);
    stub.nnames = 0;
    stub.total = 0;
    stub.nseen = 0;
    pthread_mutex_unlock(&stub.lock);
}

/* Append name in wire format; returns the new length or 0 if it does not fit. */
static size_t put_name(uint8_t *out, size_t off, size_t cap, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        if (off + 1 + len + 1 > cap)
            return 0;
        out[off++] = (uint8_t)len;
        memcpy(out + off, name, len);
        off += len;
        name += len;
        if (*name == '.')
            name++;
    }
    out[off++] = 0;
    return off;
}

static size_t put_rr(uint8_t *out, size_t off, size_t cap, const char *owner,
                     const struct stub_rr *rr)
{
    uint8_t rdata[256];
    size_t rdlen = 0;

    if (rr->type == T_A) {
        inet_pton(AF_INET, rr->data, rdata);
        rdlen = 4;
    } else if (rr->type == T_AAAA) {
        inet_pton(AF_INET6, rr->data, rdata);
        rdlen = 16;
    } else {
        rdlen = put_name(rdata, 0, sizeof(rdata), rr->data);
    }
    off = put_name(out, off, cap, owner);
    if (off == 0 || off + 10 + rdlen > cap)
        return 0;
    out[off++] = (uint8_t)(rr->type >> 8);
    out[off++] = (uint8_t)rr->type;
    out[off++] = 0;
    out[off++] = 1; /* IN */
    out[off++] = (uint8_t)(rr->ttl >> 24);
    out[off++] = (uint8_t)(rr->ttl >> 16);
    out[off++] = (uint8_t)(rr->ttl >> 8);
    out[off++] = (uint8_t)rr->ttl;
    out[off++] = (uint8_t)(rdlen >> 8);
    out[off++] = (uint8_t)rdlen;
    memcpy(out + off, rdata, rdlen);
    return off + rdlen;
}

/* Answers for (name, type), following one CNAME; returns the reply length or 0 to drop. */
static size_t stub_answer(const uint8_t *q, size_t qlen, uint8_t *out, size_t cap)
{
    char name[256];
    size_t off = 12, nlen = 0, qend;
    int type, rcode = 0, ancount = 0, known = 0;
    const char *target;

    if (qlen < 12 || q[4] != 0 || q[5] != 1)
        return 0;
    while (off < qlen && q[off] != 0) {
        size_t len = q[off];
        if (len > 63 || off + 1 + len >= qlen || nlen + len + 2 > sizeof(name))
            return 0;
        if (nlen > 0)
            name[nlen++] = '.';
        for (size_t i = 0; i < len; i++) {
            char c = (char)q[off + 1 + i];
            name[nlen++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        off += 1 + len;
    }
    name[nlen] = '\0';
    if (off + 5 > qlen)
        return 0;
    type = (q[off + 1] << 8) | q[off + 2];
    qend = off + 5;
    stub_count_name(name, (uint16_t)((q[0] << 8) | q[1]), type);
    if (strcmp(name, "slow.test") == 0)
        return 0;

    memcpy(out, q, qend);
    out[2] = (uint8_t)(0x84 | (q[2] & 0x01)); /* QR, AA, RD copied */
    off = qend;
    target = name;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(stub_zone); i++) {
        if (strcmp(stub_zone[i].name, name) == 0 && stub_zone[i].type == T_CNAME) {
            off = put_rr(out, off, cap, name, &stub_zone[i]);
            ancount++;
            target = stub_zone[i].data;
        }
    }
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(stub_zone); i++) {
        if (strcmp(stub_zone[i].name, name) == 0 || strcmp(stub_zone[i].name, target) == 0)
            known = 1;
        if (strcmp(stub_zone[i].name, target) == 0 && stub_zone[i].type == type) {
            off = put_rr(out, off, cap, target, &stub_zone[i]);
            ancount++;
        }
    }
    if (strcmp(name, "servfail.test") == 0)
        rcode = 2;
    else if (!known)
        rcode = 3;
    if (rcode != 0) {
        ancount = 0;
        off = qend;
    }
    out[3] = (uint8_t)(0x80 | rcode); /* RA */
    out[6] = 0;
    out[7] = (uint8_t)ancount;
    memset(out + 8, 0, 4); /* no authority, no additional (drops any EDNS OPT) */
    return off;
}

static void *stub_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&stub.stop)) {
        struct pollfd p = {.fd = stub.fd, .events = POLLIN};
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        uint8_t q[512], out[512];
        ssize_t n;
        size_t len;

        if (poll(&p, 1, 50) <= 0)
            continue;
        n = recvfrom(stub.fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen);
        if (n <= 0)
            continue;
        len = stub_answer(q, (size_t)n, out, sizeof(out));
        if (len > 0)
            sendto(stub.fd, out, len, 0, (struct sockaddr *)&from, fromlen);
    }
    return NULL;
}

static int stub_start(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);

    (void)state;
    pthread_mutex_init(&stub.lock, NULL);
    stub.fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(stub.fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(stub.fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(stub.fd, (struct sockaddr *)&sin, &len), 0);
    stub.port = ntohs(sin.sin_port);
    atomic_store(&stub.stop, 0);
    assert_int_equal(pthread_create(&stub.thread, NULL, stub_main, NULL), 0);
    return 0;
}

static int stub_stop(void **state)
{
    (void)state;
    atomic_store(&stub.stop, 1);
    pthread_join(stub.thread, NULL);
    close(stub.fd);
    pthread_mutex_destroy(&stub.lock);
    return 0;
}

/* ---- a loop and a resolver per test ---- */

struct answer {
    int called;
    int status;
    int naddrs;
    char addrs[RESOLVE_MAX_ADDRS][INET6_ADDRSTRLEN];
    uint16_t ports[RESOLVE_MAX_ADDRS];
};

struct tctx {
    uv_loop_t loop;
    uv_timer_t watchdog;
    int watchdog_fired;
    struct resolver *r;
    char servers[64];
};

static struct tctx t;

static void on_answer(void *arg, int status, const struct resolve_result *res)
{
    struct answer *a = arg;

    assert_non_null(res);
    a->called++;
    a->status = status;
    a->naddrs = res->naddrs;
    for (int i = 0; i < res->naddrs; i++) {
        const struct sockaddr_storage *ss = &res->addrs[i];
        if (ss->ss_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
            inet_ntop(AF_INET, &sin->sin_addr, a->addrs[i], sizeof(a->addrs[i]));
            a->ports[i] = ntohs(sin->sin_port);
        } else {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
            assert_int_equal(ss->ss_family, AF_INET6);
            inet_ntop(AF_INET6, &sin6->sin6_addr, a->addrs[i], sizeof(a->addrs[i]));
            a->ports[i] = ntohs(sin6->sin6_port);
        }
    }
}

static void on_watchdog(uv_timer_t *timer)
{
    (void)timer;
    t.watchdog_fired = 1;
}

/* Run the loop until *called is set (a stuck test fails instead of hanging). */
static void run_until(const int *called)
{
    uv_timer_start(&t.watchdog, on_watchdog, 10000, 0);
    while (!*called && !t.watchdog_fired)
        uv_run(&t.loop, UV_RUN_ONCE);
    uv_timer_stop(&t.watchdog);
    if (t.watchdog_fired)
        fail_msg("no callback");
}

/* Run the loop until c-ares has nothing left to do (every sent query has answered). */
static void run_idle(void)
{
    uv_run(&t.loop, UV_RUN_DEFAULT);
}

static struct resolver_config test_config(void)
{
    struct resolver_config cfg = {
        .servers = t.servers,
        .cache_size = 64,
        .timeout_ms = 2000,
        .tries = 2,
    };
    return cfg;
}

static struct resolver *make_resolver(const struct resolver_config *cfg)
{
    char err[256] = "";
    struct resolver *r = resolver_create(&t.loop, cfg, err, sizeof(err));

    if (!r)
        fail_msg("resolver_create: %s", err);
    return r;
}

static int setup(void **state)
{
    struct resolver_config cfg;

    (void)state;
    memset(&t, 0, sizeof(t));
    assert_int_equal(uv_loop_init(&t.loop), 0);
    uv_timer_init(&t.loop, &t.watchdog);
    snprintf(t.servers, sizeof(t.servers), "127.0.0.1:%u", (unsigned)stub.port);
    cfg = test_config();
    t.r = make_resolver(&cfg);
    stub_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    resolver_destroy(t.r);
    uv_close((uv_handle_t *)&t.watchdog, NULL);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t.loop), 0);
    clock_clear_fake();
    return 0;
}

/* Resolve host on port 80 and wait for the answer; the callback must not run inside
 * resolve_start. Then let c-ares finish so the stub's counts are final. */
static struct answer resolve_on(struct resolver *r, const char *host)
{
    struct answer a;
    struct resolve_query *q;

    memset(&a, 0, sizeof(a));
    q = resolve_start(r, host, 80, on_answer, &a);
    assert_non_null(q);
    assert_int_equal(a.called, 0);
    run_until(&a.called);
    assert_int_equal(a.called, 1);
    run_idle();
    return a;
}

static struct answer resolve(const char *host)
{
    return resolve_on(t.r, host);
}

/* ---- tests ---- */

static void test_a(void **state)
{
    struct answer a;
    struct resolver_stats st;

    (void)state;
    a = resolve("a.test");
    assert_int_equal(a.status, RESOLVE_OK);
    assert_int_equal(a.naddrs, 1);
    assert_string_equal(a.addrs[0], "127.0.0.1");
    assert_int_equal(a.ports[0], 80);
    assert_int_equal(stub_count("a.test"), 2); /* one A and one AAAA question */
    resolver_get_stats(t.r, &st);
    assert_int_equal(st.queries, 1);
    assert_int_equal(st.lookups, 1);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.cache_entries, 1);
    assert_int_equal(st.inflight, 0);
}

static void test_aaaa(void **state)
{
    struct answer a;

    (void)state;
    a = resolve("six.test");
    assert_int_equal(a.status, RESOLVE_OK);
    assert_int_equal(a.naddrs, 1);
    assert_string_equal(a.addrs[0], "::1");
    assert_int_equal(a.ports[0], 80);
}

static void test_both_interleaved(void **state)
{
    struct resolver_config cfg = test_config();
    struct resolver *r6;
    struct answer a;

    (void)state;
    a = resolve("both.test");
    assert_int_equal(a.status, RESOLVE_OK);
    assert_int_equal(a.naddrs, 3);
    assert_string_equal(a.addrs[0], "127.0.0.1");
    assert_string_equal(a.addrs[1], "::1");
    assert_string_equal(a.addrs[2], "127.0.0.2");

    cfg.prefer_ipv6 = 1;
    r6 = make_resolver(&cfg);
    a = resolve_on(r6, "both.test");
    assert_int_equal(a.status, RESOLVE_OK);
    assert_int_equal(a.naddrs, 3);
    assert_string_equal(a.addrs[0], "::1");
    assert_string_equal(a.addrs[1], "127.0.0.1");
    assert_string_equal(a.addrs[2], "127.0.0.2");
    resolver_destroy(r6);
}

static void test_literals(void **state)
{
    static const char *const hosts[] = {"127.0.0.1", "::1", "[::1]", "localhost", "WWW.LocalHost."};
    struct answer a;
    struct resolver_stats st;

    (void)state;
    a = resolve("127.0.0.1");
    assert_int_equal(a.status, RESOLVE_OK);
    assert_int_equal(a.naddrs, 1);
    assert_string_equal(a.addrs[0], "127.0.0.1");
    a = resolve("[::1]");
    assert_int_equal(a.naddrs, 1);
    assert_string_equal(a.addrs[0], "::1");
    a = resolve("localhost");
    assert_int_equal(a.status, RESOLVE_OK);
    assert_int_equal(a.naddrs, 2);
    assert_string_equal(a.addrs[0], "127.0.0.1");
    assert_string_equal(a.addrs[1], "::1");
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(hosts); i++) {
        a = resolve(hosts[i]);
        assert_int_equal(a.status, RESOLVE_OK);
        assert_int_equal(a.ports[0], 80);
    }
    assert_int_equal(stub_total(), 0);
    resolver_get_stats(t.r, &st);
    assert_int_equal(st.literals, 3 + HAVEN_ARRAY_LEN(hosts));
    assert_int_equal(st.lookups, 0);
}

static void test_impossible_names(void **state)
{
    char longname[300];
    char longlabel[80];
    const char *names[] = {"bad name.test", "a..test",  "",       ".",
                           "x/y.test",      "[a.test]", longname, longlabel};

    (void)state;
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    memset(longlabel, 'b', sizeof(longlabel) - 1);
    longlabel[sizeof(longlabel) - 1] = '\0';
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(names); i++) {
        struct answer a = resolve(names[i]);
        assert_int_equal(a.status, RESOLVE_NXDOMAIN);
        assert_int_equal(a.naddrs, 0);
    }
    assert_int_equal(stub_total(), 0);
}

static void test_cache_hit(void **state)
{
    struct answer a;
    struct resolver_stats st;

    (void)state;
    a = resolve("a.test");
    assert_int_equal(a.status, RESOLVE_OK);
    assert_int_equal(stub_count("a.test"), 2);
    a = resolve("a.test");
    assert_int_equal(a.status, RESOLVE_OK);
    assert_string_equal(a.addrs[0], "127.0.0.1");
    a = resolve("A.Test."); /* same name */
    assert_int_equal(a.status, RESOLVE_OK);
    assert_int_equal(stub_count("a.test"), 2);
    resolver_get_stats(t.r, &st);
    assert_int_equal(st.cache_hits, 2);
    assert_int_equal(st.lookups, 1);
}

static void test_cache_expiry(void **state)
{
    (void)state;
    clock_set_fake(1800000000);
    assert_int_equal(resolve("a.test").status, RESOLVE_OK); /* TTL 60 */
    assert_int_equal(stub_count("a.test"), 2);
    clock_set_fake(1800000000 + 59);
    assert_int_equal(resolve("a.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("a.test"), 2);
    clock_set_fake(1800000000 + 60);
    assert_int_equal(resolve("a.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("a.test"), 4);
    /* A clock stepped back by more than the longest TTL does not keep an entry alive. */
    clock_set_fake(1800000000 - 7200);
    assert_int_equal(resolve("a.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("a.test"), 6);
}

static void test_both_ttl_is_smallest(void **state)
{
    (void)state;
    clock_set_fake(1800000000);
    assert_int_equal(resolve("both.test").status, RESOLVE_OK); /* TTLs 300, 120, 90 */
    clock_set_fake(1800000000 + 89);
    assert_int_equal(resolve("both.test").naddrs, 3);
    assert_int_equal(stub_count("both.test"), 2);
    clock_set_fake(1800000000 + 90);
    assert_int_equal(resolve("both.test").naddrs, 3);
    assert_int_equal(stub_count("both.test"), 4);
}

static void test_ttl_clamped(void **state)
{
    struct resolver_config cfg = test_config();
    struct resolver *r;

    (void)state;
    /* TTL 0 is not cached by default. */
    assert_int_equal(resolve("zero.test").status, RESOLVE_OK);
    assert_int_equal(resolve("zero.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("zero.test"), 4);

    stub_reset();
    clock_set_fake(1800000000);
    cfg.min_ttl_ms = 5000;
    cfg.max_ttl_ms = 10000;
    r = make_resolver(&cfg);
    assert_int_equal(resolve_on(r, "zero.test").status, RESOLVE_OK);
    assert_int_equal(resolve_on(r, "a.test").status, RESOLVE_OK);
    clock_set_fake(1800000000 + 4);
    assert_int_equal(resolve_on(r, "zero.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("zero.test"), 2); /* raised to 5 s */
    clock_set_fake(1800000000 + 5);
    assert_int_equal(resolve_on(r, "zero.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("zero.test"), 4);
    clock_set_fake(1800000000 + 9);
    assert_int_equal(resolve_on(r, "a.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("a.test"), 2);
    clock_set_fake(1800000000 + 10);
    assert_int_equal(resolve_on(r, "a.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("a.test"), 4); /* lowered from 60 s to 10 s */
    resolver_destroy(r);
}

static void test_cname(void **state)
{
    struct answer a;

    (void)state;
    clock_set_fake(1800000000);
    a = resolve("alias.test");
    assert_int_equal(a.status, RESOLVE_OK);
    assert_int_equal(a.naddrs, 1);
    assert_string_equal(a.addrs[0], "127.0.0.1");
    /* The CNAME's TTL (10 s) is shorter than the address's (60 s). */
    clock_set_fake(1800000000 + 9);
    assert_int_equal(resolve("alias.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("alias.test"), 2);
    clock_set_fake(1800000000 + 10);
    assert_int_equal(resolve("alias.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("alias.test"), 4);
}

static void test_nxdomain_negative_cache(void **state)
{
    struct answer a;
    struct resolver_stats st;
    int n;

    (void)state;
    clock_set_fake(1800000000);
    a = resolve("nope.test");
    assert_int_equal(a.status, RESOLVE_NXDOMAIN);
    assert_int_equal(a.naddrs, 0);
    n = stub_count("nope.test");
    assert_true(n >= 1);
    clock_set_fake(1800000000 + 29);
    assert_int_equal(resolve("nope.test").status, RESOLVE_NXDOMAIN);
    assert_int_equal(stub_count("nope.test"), n);
    clock_set_fake(1800000000 + 30);
    assert_int_equal(resolve("nope.test").status, RESOLVE_NXDOMAIN);
    assert_true(stub_count("nope.test") > n);
    resolver_get_stats(t.r, &st);
    assert_int_equal(st.failures, 3);
    assert_int_equal(st.cache_hits, 1);
}

static void test_servfail(void **state)
{
    struct answer a;

    (void)state;
    a = resolve("servfail.test");
    assert_int_equal(a.status, RESOLVE_ERROR);
    assert_int_equal(a.naddrs, 0);
    /* Failures are not cached. */
    int n = stub_count("servfail.test");
    assert_int_equal(resolve("servfail.test").status, RESOLVE_ERROR);
    assert_true(stub_count("servfail.test") > n);
}

static void test_timeout(void **state)
{
    struct resolver_config cfg = test_config();
    struct resolver_stats st;
    struct resolver *r;
    struct answer a;
    int n;

    (void)state;
    cfg.timeout_ms = 100;
    cfg.tries = 2;
    r = make_resolver(&cfg);
    a = resolve_on(r, "slow.test");
    assert_int_equal(a.status, RESOLVE_TIMEOUT);
    assert_int_equal(a.naddrs, 0);
    resolver_get_stats(r, &st);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.failures, 1);
    /* Not cached: the next query asks again. */
    n = stub_count("slow.test");
    assert_int_equal(resolve_on(r, "slow.test").status, RESOLVE_TIMEOUT);
    assert_true(stub_count("slow.test") > n);
    resolver_destroy(r);
}

static void test_coalesce(void **state)
{
    struct answer a1, a2;
    struct resolver_stats st;

    (void)state;
    memset(&a1, 0, sizeof(a1));
    memset(&a2, 0, sizeof(a2));
    assert_non_null(resolve_start(t.r, "b.test", 80, on_answer, &a1));
    assert_non_null(resolve_start(t.r, "B.test", 443, on_answer, &a2));
    run_until(&a1.called);
    run_until(&a2.called);
    run_idle();
    assert_int_equal(a1.status, RESOLVE_OK);
    assert_int_equal(a2.status, RESOLVE_OK);
    assert_string_equal(a1.addrs[0], "127.0.0.2");
    assert_string_equal(a2.addrs[0], "127.0.0.2");
    assert_int_equal(a1.ports[0], 80);
    assert_int_equal(a2.ports[0], 443);
    assert_int_equal(stub_count("b.test"), 2);
    resolver_get_stats(t.r, &st);
    assert_int_equal(st.coalesced, 1);
    assert_int_equal(st.lookups, 1);
}

static void test_cancel(void **state)
{
    struct answer a1, a2, a3;
    struct resolve_query *q1, *q3;
    struct resolver_stats st;

    (void)state;
    memset(&a1, 0, sizeof(a1));
    memset(&a2, 0, sizeof(a2));
    memset(&a3, 0, sizeof(a3));
    q1 = resolve_start(t.r, "a.test", 80, on_answer, &a1);
    assert_non_null(resolve_start(t.r, "a.test", 80, on_answer, &a2));
    q3 = resolve_start(t.r, "127.0.0.1", 80, on_answer, &a3);
    resolve_cancel(q1);
    resolve_cancel(q3);
    run_until(&a2.called);
    run_idle();
    assert_int_equal(a1.called, 0);
    assert_int_equal(a3.called, 0);
    assert_int_equal(a2.status, RESOLVE_OK);

    /* A lookup whose every query was cancelled still fills the cache. */
    memset(&a1, 0, sizeof(a1));
    q1 = resolve_start(t.r, "c.test", 80, on_answer, &a1);
    resolve_cancel(q1);
    run_idle();
    assert_int_equal(a1.called, 0);
    assert_int_equal(stub_count("c.test"), 2);
    assert_int_equal(resolve("c.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("c.test"), 2);
    resolver_get_stats(t.r, &st);
    assert_int_equal(st.cancelled, 3);
}

static struct resolve_query *self_q;

static void on_answer_cancel_self(void *arg, int status, const struct resolve_result *res)
{
    on_answer(arg, status, res);
    resolve_cancel(self_q); /* allowed, does nothing */
}

static void test_cancel_in_own_callback(void **state)
{
    struct answer a;

    (void)state;
    memset(&a, 0, sizeof(a));
    self_q = resolve_start(t.r, "a.test", 80, on_answer_cancel_self, &a);
    run_until(&a.called);
    run_idle();
    assert_int_equal(a.called, 1);
    assert_int_equal(a.status, RESOLVE_OK);
}

static void test_destroy_pending(void **state)
{
    struct answer a[4];
    struct resolver_stats st;

    (void)state;
    memset(a, 0, sizeof(a));
    assert_non_null(resolve_start(t.r, "slow.test", 80, on_answer, &a[0]));
    assert_non_null(resolve_start(t.r, "slow.test", 80, on_answer, &a[1]));
    assert_non_null(resolve_start(t.r, "a.test", 80, on_answer, &a[2]));
    assert_non_null(resolve_start(t.r, "127.0.0.1", 80, on_answer, &a[3]));
    resolver_get_stats(t.r, &st);
    assert_int_equal(st.inflight, 2);
    resolver_destroy(t.r);
    t.r = NULL;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(a[i].called, 1);
        assert_int_equal(a[i].status, RESOLVE_CANCELLED);
        assert_int_equal(a[i].naddrs, 0);
    }
    /* teardown runs the loop until the handles are closed; ASan checks for leaks. */
}

struct destroy_ctx {
    struct answer a;
    struct resolver *r;
    struct resolve_query *other;
    struct resolve_query *late;
};

static void on_answer_destroy(void *arg, int status, const struct resolve_result *res)
{
    struct destroy_ctx *d = arg;

    on_answer(&d->a, status, res);
    resolver_destroy(d->r);
    d->late = resolve_start(d->r, "a.test", 80, on_answer, &d->a);
}

static void on_answer_cancel_other(void *arg, int status, const struct resolve_result *res)
{
    struct destroy_ctx *d = arg;

    on_answer(&d->a, status, res);
    resolve_cancel(d->other);
}

static void test_destroy_in_callback(void **state)
{
    struct destroy_ctx d;
    struct destroy_ctx c;
    struct answer slow, other, third;

    (void)state;
    memset(&d, 0, sizeof(d));
    memset(&c, 0, sizeof(c));
    memset(&slow, 0, sizeof(slow));
    memset(&other, 0, sizeof(other));
    memset(&third, 0, sizeof(third));
    d.r = t.r;
    assert_non_null(resolve_start(t.r, "slow.test", 80, on_answer, &slow));
    /* Cancelled by destroy: its callback cancels the next query, which must not run. */
    assert_non_null(resolve_start(t.r, "b.test", 80, on_answer_cancel_other, &c));
    c.other = resolve_start(t.r, "c.test", 80, on_answer, &other);
    assert_non_null(resolve_start(t.r, "127.0.0.1", 80, on_answer_destroy, &d));
    assert_non_null(resolve_start(t.r, "127.0.0.2", 80, on_answer, &third));
    run_until(&d.a.called);
    t.r = NULL;
    assert_int_equal(d.a.status, RESOLVE_OK);
    assert_null(d.late);
    assert_int_equal(slow.called, 1);
    assert_int_equal(slow.status, RESOLVE_CANCELLED);
    assert_int_equal(c.a.called, 1);
    assert_int_equal(c.a.status, RESOLVE_CANCELLED);
    assert_int_equal(other.called, 0);
    assert_int_equal(third.called, 1);
    assert_int_equal(third.status, RESOLVE_CANCELLED);
}

static void test_cache_eviction(void **state)
{
    struct resolver_config cfg = test_config();
    struct resolver_stats st;
    struct resolver *r;

    (void)state;
    cfg.cache_size = 2;
    r = make_resolver(&cfg);
    assert_int_equal(resolve_on(r, "a.test").status, RESOLVE_OK);
    assert_int_equal(resolve_on(r, "b.test").status, RESOLVE_OK);
    assert_int_equal(resolve_on(r, "a.test").status, RESOLVE_OK); /* hit: a is now recent */
    assert_int_equal(resolve_on(r, "c.test").status, RESOLVE_OK); /* evicts b */
    assert_int_equal(resolve_on(r, "a.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("a.test"), 2);
    assert_int_equal(resolve_on(r, "b.test").status, RESOLVE_OK);
    assert_int_equal(stub_count("b.test"), 4);
    resolver_get_stats(r, &st);
    assert_int_equal(st.cache_entries, 2);
    assert_int_equal(st.evictions, 2);
    resolver_destroy(r);
}

static void test_hosts_file(void **state)
{
    char path[] = "/tmp/haven-test-hosts-XXXXXX";
    const char text[] = "# a comment\n"
                        "127.0.0.1\tintranet.test Printer.test  # trailing comment\n"
                        "::1 intranet.test\n"
                        "\n"
                        "not-an-address some.test\n"
                        "127.0.0.1\n"
                        "127.0.0.1 bad/name.test a.test\n";
    struct resolver_config cfg = test_config();
    struct resolver_stats st;
    struct resolver *r;
    struct answer a;
    char err[256] = "";
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    cfg.hosts_file = path;
    r = make_resolver(&cfg);
    a = resolve_on(r, "intranet.test");
    assert_int_equal(a.status, RESOLVE_OK);
    assert_int_equal(a.naddrs, 2);
    assert_string_equal(a.addrs[0], "127.0.0.1");
    assert_string_equal(a.addrs[1], "::1");
    a = resolve_on(r, "printer.test");
    assert_int_equal(a.status, RESOLVE_OK);
    a = resolve_on(r, "a.test"); /* the good name of a bad line is kept */
    assert_int_equal(a.status, RESOLVE_OK);
    assert_int_equal(stub_total(), 0);
    resolver_get_stats(r, &st);
    assert_int_equal(st.hosts_hits, 3);
    resolver_destroy(r);
    unlink(path);

    cfg.hosts_file = path; /* now missing */
    assert_null(resolver_create(&t.loop, &cfg, err, sizeof(err)));
    assert_non_null(strstr(err, path));
}

static void test_bad_servers(void **state)
{
    struct resolver_config cfg = test_config();
    char err[256] = "";

    (void)state;
    cfg.servers = "not an address";
    assert_null(resolver_create(&t.loop, &cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "not an address"));
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(resolve_strerror(RESOLVE_NXDOMAIN), "no such host");
    assert_non_null(resolve_strerror(RESOLVE_OK));
    assert_non_null(resolve_strerror(RESOLVE_TIMEOUT));
    assert_non_null(resolve_strerror(RESOLVE_ERROR));
    assert_non_null(resolve_strerror(RESOLVE_CANCELLED));
    assert_string_equal(resolve_strerror(99), "unknown resolver status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aaaa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_both_interleaved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_literals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_impossible_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_both_ttl_is_smallest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_clamped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nxdomain_negative_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_servfail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coalesce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_in_own_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_servers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strerror, setup, teardown),
    };

    return cmocka_run_group_tests(tests, stub_start, stub_stop);
}
