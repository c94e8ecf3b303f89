#include "common/compat.h"

#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/tz.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "dns/service.h"
#include "event/accesslog.h"
#include "event/recorder.h"
#include "ident/ident.h"
#include "net/resolve.h"
#include "monitor/match.h"
#include "policy/policy.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/server.h"
#include "proxy/snapshot.h"
#include "tls/ca.h"
#include "tls/inspect.h"

#define SERVER_BACKLOG 1024

/* ---------------------------------------------------------------- warnings */

/* How long a "continue" link works, and how long the choice holds for that site. */
#define SERVER_WARN_LINK_TTL 600
#define SERVER_WARN_ALLOW_TTL 3600
#define SERVER_USERS_POLL_MS 2000

void server_warn_add(struct server *s, const char *ref, const char *client, const char *url)
{
    struct server_warn *w;

    pthread_mutex_lock(&s->lock);
    w = &s->warns[s->warn_next++ % SERVER_WARN_MAX];
    snprintf(w->ref, sizeof(w->ref), "%s", ref);
    snprintf(w->client, sizeof(w->client), "%s", client);
    snprintf(w->url, sizeof(w->url), "%s", url);
    w->expires = clock_now() + SERVER_WARN_LINK_TTL;
    w->continued = 0;
    pthread_mutex_unlock(&s->lock);
}

int server_warn_continue(struct server *s, const char *ref, const char *client, char *url,
                         size_t size)
{
    int rc = -1;

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < SERVER_WARN_MAX; i++) {
        struct server_warn *w = &s->warns[i];
        if (strcmp(w->ref, ref) == 0 && strcmp(w->client, client) == 0 &&
            w->expires > clock_now()) {
            w->continued = 1;
            w->expires = clock_now() + SERVER_WARN_ALLOW_TTL;
            snprintf(url, size, "%s", w->url);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int server_warn_allowed(struct server *s, const char *client, const char *host, size_t hlen)
{
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < SERVER_WARN_MAX && !rc; i++) {
        const struct server_warn *w = &s->warns[i];
        const char *h = strstr(w->url, "://");
        if (!w->continued || w->expires <= clock_now() || strcmp(w->client, client) != 0 || !h)
            continue;
        h += 3;
        rc = strncmp(h, host, hlen) == 0 && (h[hlen] == '/' || h[hlen] == ':' || h[hlen] == '\0');
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

struct snapshot *server_current(struct server *s)
{
    struct snapshot *snap;

    pthread_mutex_lock(&s->lock);
    snap = s->current;
    snapshot_ref(snap);
    pthread_mutex_unlock(&s->lock);
    return snap;
}

/* One listening socket (SOCK_STREAM or SOCK_DGRAM) for addr, shared with the other workers
 * through SO_REUSEPORT. A UDP socket is told to report the address each datagram came to. */
static int server_bind(const struct config_addr *a, int type, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int fd, one = 1;
    socklen_t len;

    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)&ss) == 0) {
        len = sizeof(struct sockaddr_in);
    } else if (uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)&ss) == 0) {
        len = sizeof(struct sockaddr_in6);
    } else {
        snprintf(err, errlen, "listen %s:%u: not an IP address", a->host, a->port);
        return -1;
    }
    fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, errlen, "listen %s:%u: socket: %s", a->host, a->port, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (type == SOCK_DGRAM && ss.ss_family == AF_INET)
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    if (type == SOCK_DGRAM && ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
        (type == SOCK_STREAM && listen(fd, SERVER_BACKLOG) == -1)) {
        snprintf(err, errlen, "listen %s:%u%s: %s", a->host, a->port,
                 type == SOCK_DGRAM ? " (UDP)" : "", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int server_drop_privileges(const char *user, char *err, size_t errlen)
{
    struct passwd *pw;

    if (!user || !*user || geteuid() != 0)
        return 0;
    pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "user %s: no such user", user);
        return -1;
    }
    if (setgroups(1, &pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        snprintf(err, errlen, "user %s: cannot switch to it: %s", user, strerror(errno));
        return -1;
    }
    log_info("running as %s", user);
    return 0;
}

/* The signer starts with haven: a CA made since then needs a restart to be used. */
static int server_check_inspection(const struct server *s, const struct policy *p, char *err,
                                   size_t errlen)
{
    const char *g = policy_inspecting_group(p);

    if (!g || s->tls)
        return 0;
    snprintf(err, errlen,
             "group '%s' has `inspect on`, but HTTPS inspection did not start with haven (there "
             "was no CA in %s then): restart haven",
             g, s->cfg->ca_dir);
    return -1;
}

/* Start the signer and the leaf cache when the CA exists. */
static int server_start_inspection(struct server *s, char *err, size_t errlen)
{
    struct tls_inspect_config tc;
    struct passwd *pw = NULL;
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", s->cfg->ca_dir, CA_CERT_FILE);
    if (access(path, F_OK) != 0)
        return 0; /* snapshot_load has made sure no group needs it */
    if (s->cfg->user && *s->cfg->user && geteuid() == 0)
        pw = getpwnam(s->cfg->user);
    memset(&tc, 0, sizeof(tc));
    tc.ca_dir = s->cfg->ca_dir;
    tc.upstream_ca = s->cfg->upstream_ca && *s->cfg->upstream_ca ? s->cfg->upstream_ca : NULL;
    tc.uid = pw ? pw->pw_uid : (uid_t)-1;
    tc.gid = pw ? pw->pw_gid : (gid_t)-1;
    tc.cache_size = (size_t)s->cfg->tls_leaf_cache;
    s->tls = tls_inspect_create(&tc, err, errlen);
    if (!s->tls)
        return -1;
    log_info("HTTPS inspection ready: CA %s, certificate signer pid %d", path,
             (int)tls_inspect_signer_pid(s->tls));
    return 0;
}

/*
 * The records pipeline: its own copy of the school's time zone (a reload may free the
 * policy's), the school's name, and libcurl set up once before any thread exists (the
 * dispatcher sends alerts with it).
 */
static int server_start_recorder(struct server *s, char *err, size_t errlen)
{
    static int curl_ready;
    const struct policy *p = s->current->policy;
    const struct tz *ptz = policy_tz(p);
    struct recorder_config rc;

    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
            snprintf(err, errlen, "cannot initialise libcurl");
            return -1;
        }
        curl_ready = 1;
    }
    if (ptz) {
        s->rec_tz = tz_load(tz_name(ptz), NULL, 0);
        if (!s->rec_tz)
            log_warnx("records: cannot load time zone %s again; alert times are in UTC",
                      tz_name(ptz));
    }
    memset(&rc, 0, sizeof(rc));
    rc.cfg = s->cfg;
    rc.school =
        s->cfg->school_name && s->cfg->school_name[0] ? s->cfg->school_name : policy_school(p);
    rc.tz = s->rec_tz;
    s->rec = recorder_open(&rc, err, errlen);
    return s->rec ? 0 : -1;
}

/*
 * Building a snapshot (compiling the keyword libraries above all) allocates and frees tens of
 * megabytes; give the freed memory back to the system, or it stays counted against haven.
 */
static void server_trim(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

struct server *server_create(struct config *cfg, char *err, size_t errlen)
{
    struct server *s = xcalloc(1, sizeof(*s));
    struct accesslog_config lc;

    s->cfg = cfg;
    s->started = clock_now();
    pthread_mutex_init(&s->lock, NULL);
    s->generation = 1;
    snapshot_users_stamp(cfg, s->users_stamp, sizeof(s->users_stamp));
    s->current = snapshot_load(cfg, s->generation, err, errlen);
    if (!s->current)
        goto fail;
    snprintf(s->last_reload, sizeof(s->last_reload), "loaded at start");
    server_trim();
    /* Before any thread exists: this forks the certificate signer. */
    if (server_start_inspection(s, err, errlen) < 0)
        goto fail;
    s->auth_cache = ident_cache_create(8192, 600);

    memset(&lc, 0, sizeof(lc));
    lc.json_path = cfg->access_log;
    lc.squid_path = cfg->squid_log;
    lc.queue_len = (size_t)cfg->log_queue;
    lc.max_size = cfg->log_max_size;
    lc.keep = cfg->log_keep;
    if ((lc.json_path && *lc.json_path) || (lc.squid_path && *lc.squid_path)) {
        s->log = accesslog_open(&lc, err, errlen);
        if (!s->log)
            goto fail;
    }
    if (server_start_recorder(s, err, errlen) < 0)
        goto fail;

    s->nworkers = cfg->workers > 0 ? cfg->workers : (int)uv_available_parallelism();
    s->workers = xcalloc((size_t)s->nworkers, sizeof(*s->workers));
    if (cfg->ndns_listen > 0) {
        s->dns_upstream = xcalloc(DNS_SERVICE_UPSTREAMS_MAX, sizeof(*s->dns_upstream));
        s->ndns_upstream = dns_service_upstreams(cfg, s->dns_upstream, DNS_SERVICE_UPSTREAMS_MAX);
        if (s->ndns_upstream == 0)
            log_warnx("dns-listen is set but there is no resolver to forward to (set "
                      "dns-upstream, or list one in /etc/resolv.conf): the DNS filter answers "
                      "what it decides itself and SERVFAIL for the rest");
    }
    s->fds = xcalloc((size_t)s->nworkers, sizeof(*s->fds));
    s->dns_fds = xcalloc((size_t)s->nworkers, sizeof(*s->dns_fds));
    for (int i = 0; i < s->nworkers; i++) {
        for (int j = 0; j < WORKER_MAX_LISTENERS; j++)
            s->dns_fds[i][j][0] = s->dns_fds[i][j][1] = -1;
        for (int j = 0; j < cfg->nlisten && j < WORKER_MAX_LISTENERS; j++) {
            s->fds[i][j] = server_bind(&cfg->listen[j], SOCK_STREAM, err, errlen);
            if (s->fds[i][j] < 0)
                goto fail;
        }
        for (int j = 0; j < cfg->ndns_listen && j < WORKER_MAX_LISTENERS; j++) {
            s->dns_fds[i][j][0] = server_bind(&cfg->dns_listen[j], SOCK_DGRAM, err, errlen);
            if (s->dns_fds[i][j][0] < 0)
                goto fail;
            s->dns_fds[i][j][1] = server_bind(&cfg->dns_listen[j], SOCK_STREAM, err, errlen);
            if (s->dns_fds[i][j][1] < 0)
                goto fail;
        }
    }
    if (server_drop_privileges(cfg->user, err, errlen) < 0)
        goto fail;
    return s;
fail:
    server_destroy(s);
    return NULL;
}

/* ---------------------------------------------------------------- workers */

static void worker_on_closed(uv_handle_t *h)
{
    (void)h;
}

/* Every 100 ms while stopping: finish when no connection is left or the drain time is up. */
static void worker_on_drain_tick(uv_timer_t *t)
{
    struct worker *w = t->data;
    int64_t limit = w->srv->cfg->timeout_drain_ms;

    if (w->conns && (int64_t)(uv_now(&w->loop) - w->drain_started) < limit)
        return;
    proxy_close_all(w);
    pool_stop(w);
    uv_close((uv_handle_t *)t, worker_on_closed);
    uv_close((uv_handle_t *)&w->wake, worker_on_closed);
    resolver_destroy(w->resolver);
    w->resolver = NULL;
}

static void worker_on_wake(uv_async_t *a)
{
    struct worker *w = a->data;

    if (atomic_load(&w->srv->stopping) && !w->draining) {
        for (int j = 0; j < w->nlisteners; j++)
            uv_close((uv_handle_t *)&w->listeners[j], worker_on_closed);
        dns_service_stop(w->dns);
        w->dns = NULL;
        proxy_drain(w);
        w->drain_started = uv_now(&w->loop);
        uv_timer_init(&w->loop, &w->drain_timer);
        w->drain_timer.data = w;
        uv_timer_start(&w->drain_timer, worker_on_drain_tick, 0, 100);
        return;
    }
    /* A reload: new requests use the new snapshot; those in flight keep theirs. */
    struct snapshot *snap = server_current(w->srv);
    if (snap != w->snap) {
        snapshot_unref(w->snap);
        w->snap = snap;
    } else {
        snapshot_unref(snap);
    }
}

static void worker_main(void *arg)
{
    struct worker *w = arg;
    const struct config *cfg = w->srv->cfg;
    struct resolver_config rc;
    char err[512];

    char servers[CONFIG_MAX_LISTEN * (CONFIG_HOST_MAX + 10)] = "";
    size_t n = 0;

    /* c-ares takes "host:port,[v6]:port". */
    for (int i = 0; i < cfg->nresolvers && n < sizeof(servers); i++) {
        const struct config_addr *a = &cfg->resolvers[i];
        n += (size_t)snprintf(servers + n, sizeof(servers) - n,
                              strchr(a->host, ':') ? "%s[%s]:%u" : "%s%s:%u", i ? "," : "", a->host,
                              a->port);
    }
    memset(&rc, 0, sizeof(rc));
    rc.servers = cfg->nresolvers ? servers : NULL;
    rc.hosts_file = "/etc/hosts";
    rc.cache_size = (size_t)cfg->dns_cache_size;
    rc.min_ttl_ms = cfg->dns_min_ttl_ms;
    rc.max_ttl_ms = cfg->dns_max_ttl_ms;
    rc.timeout_ms = 2000;
    rc.tries = 2;
    w->resolver = resolver_create(&w->loop, &rc, err, sizeof(err));
    if (!w->resolver) {
        log_warnx("worker %d: resolver: %s", w->id, err);
        return;
    }
    pool_start(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

static int worker_start(struct server *s, int i, char *err, size_t errlen)
{
    struct worker *w = &s->workers[i];

    w->id = i;
    w->srv = s;
    uv_loop_init(&w->loop);
    uv_async_init(&w->loop, &w->wake, worker_on_wake);
    w->wake.data = w;
    w->snap = server_current(s);
    for (int j = 0; j < s->cfg->nlisten && j < WORKER_MAX_LISTENERS; j++) {
        uv_tcp_init(&w->loop, &w->listeners[j]);
        w->listeners[j].data = w;
        int rc = uv_tcp_open(&w->listeners[j], s->fds[i][j]);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&w->listeners[j], SERVER_BACKLOG, proxy_on_connection);
        if (rc != 0) {
            snprintf(err, errlen, "listen: %s", uv_strerror(rc));
            return -1;
        }
        s->fds[i][j] = -1;
        w->nlisteners++;
    }
    if (s->cfg->ndns_listen > 0) {
        int n =
            s->cfg->ndns_listen < WORKER_MAX_LISTENERS ? s->cfg->ndns_listen : WORKER_MAX_LISTENERS;
        w->dns = dns_service_start(w, (const int(*)[2])s->dns_fds[i], n, err, errlen);
        for (int j = 0; j < n; j++)
            s->dns_fds[i][j][0] = s->dns_fds[i][j][1] = -1; /* the service owns them now */
        if (!w->dns)
            return -1;
    }
    if (uv_thread_create(&w->thread, worker_main, w) != 0) {
        snprintf(err, errlen, "cannot start worker thread");
        return -1;
    }
    return 0;
}

/* The DNS filter's upstream i as IP:PORT, for the log (a static buffer: main thread). */
static const char *server_upstream_text(const struct server *s, int i)
{
    static char text[CONFIG_HOST_MAX + 10];
    const struct config_addr *a = &s->dns_upstream[i];

    snprintf(text, sizeof(text), strchr(a->host, ':') ? "[%s]:%u" : "%s:%u", a->host, a->port);
    return text;
}

/* ---------------------------------------------------------------- signals */

/* Make snap current and tell the workers. */
static void server_swap(struct server *s, struct snapshot *snap)
{
    pthread_mutex_lock(&s->lock);
    struct snapshot *old = s->current;
    s->current = snap;
    s->generation = snap->generation;
    pthread_mutex_unlock(&s->lock);
    snapshot_unref(old);
    for (int i = 0; i < s->nworkers && !atomic_load(&s->stopping); i++)
        uv_async_send(&s->workers[i].wake);
}

static void server_reload(struct server *s)
{
    char err[1024];
    struct snapshot *snap;

    snapshot_users_stamp(s->cfg, s->users_stamp, sizeof(s->users_stamp));
    snap = snapshot_load(s->cfg, s->generation + 1, err, sizeof(err));
    if (snap && server_check_inspection(s, snap->policy, err, sizeof(err)) < 0) {
        snapshot_unref(snap);
        snap = NULL;
    }
    if (!snap) {
        atomic_fetch_add(&s->reloads_failed, 1);
        pthread_mutex_lock(&s->lock);
        snprintf(s->last_reload, sizeof(s->last_reload), "failed: %s", err);
        pthread_mutex_unlock(&s->lock);
        log_warnx("reload failed, still serving the previous policy: %s", err);
        s->users_stamp[0] = '\0'; /* users written meanwhile still get picked up */
        return;
    }
    server_swap(s, snap);
    server_trim();
    pthread_mutex_lock(&s->lock);
    snprintf(s->last_reload, sizeof(s->last_reload), "ok");
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->reloads_ok, 1);
    log_info("reloaded the policy and lists (generation %llu)", (unsigned long long)s->generation);
}

/* Every SERVER_USERS_POLL_MS: sessions and users written by `haven session` or an import. */
static void server_on_users_poll(uv_timer_t *t)
{
    struct server *s = t->data;
    char stamp[sizeof(s->users_stamp)], err[1024];
    struct snapshot *snap;

    snapshot_users_stamp(s->cfg, stamp, sizeof(stamp));
    if (strcmp(stamp, s->users_stamp) == 0)
        return;
    snprintf(s->users_stamp, sizeof(s->users_stamp), "%s", stamp);
    snap = snapshot_refresh_users(s->current, s->cfg, err, sizeof(err));
    if (!snap) {
        log_warnx("the users database changed but could not be read: %s", err);
        return;
    }
    server_swap(s, snap);
    log_info("the users database changed: users and sessions reloaded");
}

static void server_on_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;

    switch (signum) {
    case SIGHUP:
        server_reload(s);
        break;
    case SIGUSR1:
        if (s->log)
            accesslog_reopen(s->log);
        break;
    default:
        if (atomic_exchange(&s->stopping, 1))
            break;
        log_info("stopping: finishing requests in flight");
        for (int i = 0; i < s->nworkers; i++)
            uv_async_send(&s->workers[i].wake);
        uv_stop(h->loop);
        break;
    }
}

int server_run(struct server *s)
{
    static const int sigs[] = {SIGHUP, SIGTERM, SIGINT, SIGUSR1};
    uv_signal_t handles[HAVEN_ARRAY_LEN(sigs)];
    uv_timer_t users_poll;
    uv_loop_t loop;
    char err[512];
    int started = 0;

    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(sigs); i++) {
        uv_signal_init(&loop, &handles[i]);
        handles[i].data = s;
        uv_signal_start(&handles[i], server_on_signal, sigs[i]);
    }
    uv_timer_init(&loop, &users_poll);
    users_poll.data = s;
    uv_timer_start(&users_poll, server_on_users_poll, SERVER_USERS_POLL_MS, SERVER_USERS_POLL_MS);
    for (int i = 0; i < s->nworkers; i++) {
        if (worker_start(s, i, err, sizeof(err)) < 0) {
            log_warnx("%s", err);
            atomic_store(&s->stopping, 1);
            break;
        }
        started++;
    }
    if (started == s->nworkers) {
        for (int j = 0; j < s->cfg->nlisten; j++)
            log_info("listening on %s:%u", s->cfg->listen[j].host, s->cfg->listen[j].port);
        for (int j = 0; j < s->cfg->ndns_listen; j++)
            log_info(strchr(s->cfg->dns_listen[j].host, ':')
                         ? "DNS filter on [%s]:%u (UDP and TCP), forwarding to %s%s"
                         : "DNS filter on %s:%u (UDP and TCP), forwarding to %s%s",
                     s->cfg->dns_listen[j].host, s->cfg->dns_listen[j].port,
                     s->ndns_upstream ? server_upstream_text(s, 0) : "nobody",
                     s->ndns_upstream > 1 ? " and others" : "");
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    /* Normally the stop signal woke the workers; after a failed start, wake them here. */
    if (started != s->nworkers) {
        for (int i = 0; i < started; i++)
            uv_async_send(&s->workers[i].wake);
    }
    for (int i = 0; i < started; i++) {
        uv_thread_join(&s->workers[i].thread);
        snapshot_unref(s->workers[i].snap);
        s->workers[i].snap = NULL;
        match_scratch_free(s->workers[i].scratch);
        s->workers[i].scratch = NULL;
        uv_loop_close(&s->workers[i].loop);
    }
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(sigs); i++)
        uv_close((uv_handle_t *)&handles[i], NULL);
    uv_close((uv_handle_t *)&users_poll, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    log_info("stopped");
    return started == s->nworkers ? 0 : 1;
}

void server_destroy(struct server *s)
{
    if (!s)
        return;
    for (int i = 0; s->fds && i < s->nworkers; i++) {
        for (int j = 0; j < WORKER_MAX_LISTENERS; j++) {
            if (s->fds[i][j] > 0)
                close(s->fds[i][j]);
            for (int k = 0; s->dns_fds && k < 2; k++) {
                if (s->dns_fds[i][j][k] > 0)
                    close(s->dns_fds[i][j][k]);
            }
        }
    }
    free(s->fds);
    free(s->dns_fds);
    free(s->dns_upstream);
    free(s->workers);
    if (s->log)
        accesslog_close(s->log);
    recorder_close(s->rec);
    tz_free(s->rec_tz);
    if (s->current)
        snapshot_unref(s->current);
    if (s->auth_cache)
        ident_cache_destroy(s->auth_cache);
    tls_inspect_destroy(s->tls);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
