/*
 * server.h -- `haven serve`: start-up, workers, signals, reload, drain.
 *
 * DESIGN. The main thread loads the configuration and the first snapshot,
 * binds every listening socket (one per worker per address, SO_REUSEPORT, so
 * the kernel spreads connections), drops privileges, then starts the
 * workers and waits for signals on its own libuv loop. SIGHUP builds a new
 * snapshot on the main thread; if it loads, each worker is woken to take a
 * reference to it and drop its old one, and requests in flight finish on the
 * snapshot they started with; if it fails, the old one stays and the reason
 * is logged and shown on the status page. SIGTERM and SIGINT stop accepting,
 * let requests in flight finish for up to timeout-drain, then stop. SIGUSR1
 * reopens the access logs.
 */
#ifndef HAVEN_PROXY_SERVER_H
#define HAVEN_PROXY_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "proxy/worker.h"

struct config;
struct accesslog;
struct recorder;
struct snapshot;
struct tz;

/* A warning page shown, and whether the user chose to continue (see server_warn_*). */
#define SERVER_WARN_MAX 1024
struct server_warn {
    char ref[16];
    char client[46];
    char url[2048];
    int64_t expires;
    int continued;
};

struct tls_inspect;

struct server {
    struct config *cfg;
    struct worker *workers;
    int nworkers;
    int (*fds)[WORKER_MAX_LISTENERS];        /* listening sockets, per worker */
    int (*dns_fds)[WORKER_MAX_LISTENERS][2]; /* DNS sockets (UDP, TCP), per worker */
    struct config_addr *dns_upstream;        /* the DNS filter's resolvers */
    int ndns_upstream;
    pthread_mutex_t lock; /* guards current and the reload fields */
    struct snapshot *current;
    uint64_t generation;
    char last_reload[256]; /* "ok" or why the last reload failed */
    char users_stamp[256]; /* the users database as current loaded it (main loop only) */
    _Atomic uint64_t reloads_ok, reloads_failed;
    struct accesslog *log;
    struct recorder *rec; /* safeguarding records and alerts (event/recorder.h) */
    struct tz *rec_tz;    /* the school's time zone as the recorder started with it */
    int64_t started;
    _Atomic int stopping;
    _Atomic int64_t nconns;                    /* open client connections, all workers */
    struct ident_cache *auth_cache;            /* proxy sign-ins already checked (thread-safe) */
    struct tls_inspect *tls;                   /* HTTPS inspection, when a CA exists */
    struct server_warn warns[SERVER_WARN_MAX]; /* guarded by lock; a ring */
    size_t warn_next;
};

/*
 * Everything before serving: snapshot, access log, records (recorder), sockets, privileges.
 * Returns the server or NULL with the reason in err.
 */
struct server *server_create(struct config *cfg, char *err, size_t errlen);

/* Start the workers and serve until SIGTERM/SIGINT and the drain end. Returns 0. */
int server_run(struct server *s);

void server_destroy(struct server *s);

/*
 * Warnings: a warn page registers its reference (server_warn_add); following its continue link
 * (server_warn_continue) returns the URL and lets that client through to that site for an hour
 * (server_warn_allowed). These take the server lock: they run only for warn verdicts.
 */
void server_warn_add(struct server *s, const char *ref, const char *client, const char *url);
int server_warn_continue(struct server *s, const char *ref, const char *client, char *url,
                         size_t size);
int server_warn_allowed(struct server *s, const char *client, const char *host, size_t hlen);

/* A new reference to the current snapshot (for a worker switching to it). */
struct snapshot *server_current(struct server *s);

#endif
