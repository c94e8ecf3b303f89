/*
 * bench_events.c -- safeguarding records into SQLite, and what a worker pays to submit one.
 *
 *     bench_events DATADIR N [RATE] [THREADS]
 *
 * Opens a recorder (event/recorder.h) on DATADIR (which must exist and be
 * empty: the database is created there), as `haven serve` does, and submits N
 * access records from THREADS threads (default 2): 70% allowed requests
 * without search terms (hourly roll-ups, over 50 users and 200 hosts), 25%
 * allowed searches (an event each), 5% blocks (an event each). RATE 0 (the
 * default) submits as fast as the threads can; RATE > 0 paces the threads to
 * RATE records a second in all. Then it closes the recorder, which writes
 * what is queued and spooled.
 *
 * What it prints (key=value, for bench/scan/run):
 *  - submit_ns_p50/p99/p999/max: how long each recorder_submit call took (the
 *    request path's cost; clock_gettime around each call, its own cost
 *    included: clock_ns_p50 says how much);
 *  - offered_per_s: records submitted per second;
 *  - events_per_s: event rows written per second, from the first submit to the
 *    end of recorder_close (recorder_stats), and events_in_window_per_s:
 *    those written while the submitting lasted;
 *  - events, rollups, dropped, spooled from recorder_stats, and the event
 *    records submitted (want_events), so a lost record would be seen.
 */
#include "common/compat.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <time.h>

#include "common/xalloc.h"
#include "config/config.h"
#include "event/accesslog.h"
#include "event/recorder.h"

#define MAX_THREADS 16

struct worker {
    pthread_t tid;
    struct recorder *rec;
    int index;
    uint64_t n, first;       /* records n, numbered from first */
    double rate;             /* records a second for this thread; 0: flat out */
    uint64_t *ns;            /* per-call submit time */
    uint64_t events, failed; /* event records submitted; submits that returned -1 */
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static const char *const cats_allow[] = {"education"};
static const char *const cats_search[] = {"search-engines"};
static const char *const cats_block[] = {"games"};

static const char *const terms[] = {
    "volcano eruption homework", "how to revise for gcse maths",   "kill time before the bus",
    "best football boots",       "photosynthesis diagram",         "french verbs past tense",
    "how tall is the shard",     "romeo and juliet act 3 summary",
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char user[32], url[256], ref[32];
    uint64_t t0 = now_ns();

    for (uint64_t i = 0; i < w->n; i++) {
        uint64_t k = w->first + i, a0, a1;
        unsigned kind = (unsigned)(k % 20); /* 0: block; 1-5: search; 6-19: allowed */
        struct access_record a;
        int event = 0;

        if (w->rate > 0) {
            uint64_t due = t0 + (uint64_t)((double)i * 1e9 / w->rate);

            while (now_ns() < due) {
                /* spin: a sleep's wake-up is coarser than the gaps between records */
            }
        }
        memset(&a, 0, sizeof(a));
        snprintf(user, sizeof(user), "pupil%02u", (unsigned)(k % 50));
        a.time_ms = wall_ms();
        a.client = "127.0.0.1";
        a.user = user;
        a.group = "secondary";
        a.method = "GET";
        a.status = 200;
        a.bytes_in = 400;
        a.bytes_out = 20000;
        a.duration_ms = 12;
        if (kind == 0) {
            snprintf(url, sizeof(url), "http://game%u.example/play", (unsigned)(k % 200));
            snprintf(ref, sizeof(ref), "B%08" PRIx64, k);
            a.url = url;
            a.categories = cats_block;
            a.ncategories = 1;
            a.action = "block";
            a.tier = "category";
            a.rule = "policy.conf:12: block games";
            a.reason = "Games are blocked in lesson time";
            a.ref = ref;
            a.status = 403;
            event = 1;
        } else if (kind <= 5) {
            const char *q = terms[k % HAVEN_ARRAY_LEN(terms)];

            snprintf(url, sizeof(url), "http://www.google.com/search?q=%s&n=%" PRIu64, q, k);
            a.url = url;
            a.categories = cats_search;
            a.ncategories = 1;
            a.action = "allow";
            a.tier = "default";
            a.search = q;
            event = 1;
        } else {
            snprintf(url, sizeof(url), "http://site%u.example/page/%" PRIu64, (unsigned)(k % 200),
                     k);
            a.url = url;
            a.categories = cats_allow;
            a.ncategories = 1;
            a.action = "allow";
            a.tier = "default";
        }
        a0 = now_ns();
        if (recorder_submit(w->rec, &a, NULL) < 0)
            w->failed++;
        a1 = now_ns();
        w->ns[i] = a1 - a0;
        w->events += (uint64_t)event;
    }
    return NULL;
}

static uint64_t pct(const uint64_t *v, uint64_t n, double p)
{
    uint64_t i = (uint64_t)((double)(n - 1) * p);

    return n ? v[i] : 0;
}

int main(int argc, char **argv)
{
    struct worker w[MAX_THREADS];
    struct recorder_config rc;
    struct recorder_stats mid;
    struct recorder *rec = NULL;
    struct config *cfg = NULL;
    char text[4096], err[1024];
    uint64_t n, total = 0, want_events = 0, failed = 0, *all = NULL, clk[1001];
    uint64_t t0, t1, t2;
    double rate = 0;
    long nthreads = 2;
    int rcode = 1;

    memset(w, 0, sizeof(w));
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: bench_events DATADIR N [RATE] [THREADS]\n");
        return 2;
    }
    n = strtoull(argv[2], NULL, 10);
    if (argc > 3)
        rate = strtod(argv[3], NULL);
    if (argc > 4)
        nthreads = strtol(argv[4], NULL, 10);
    if (n < 1 || n > 100000000ULL || rate < 0 || nthreads < 1 || nthreads > MAX_THREADS) {
        fprintf(stderr, "bench_events: N must be 1-100000000, RATE >= 0, THREADS 1-%d\n",
                MAX_THREADS);
        return 2;
    }
    snprintf(text, sizeof(text),
             "policy /nonexistent/policy.conf\ndatabase /nonexistent/db.cdb\ndata-dir %s\n"
             "alert-syslog off\n",
             argv[1]);
    cfg = config_load_buffer("bench.conf", argv[1], text, strlen(text), err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "bench_events: %s\n", err);
        goto out;
    }
    memset(&rc, 0, sizeof(rc));
    rc.cfg = cfg;
    rc.school = "bench/scan";
    rc.no_purge = 1;
    rec = recorder_open(&rc, err, sizeof(err));
    if (!rec) {
        fprintf(stderr, "bench_events: %s\n", err);
        goto out;
    }

    /* What timing a call costs by itself. */
    for (int i = 0; i < 1001; i++) {
        uint64_t a = now_ns();

        clk[i] = now_ns() - a;
    }
    qsort(clk, 1001, sizeof(clk[0]), cmp_u64);

    t0 = now_ns();
    for (long i = 0; i < nthreads; i++) {
        w[i].rec = rec;
        w[i].index = (int)i;
        w[i].n = n / (uint64_t)nthreads + ((uint64_t)i < n % (uint64_t)nthreads);
        w[i].first = total;
        w[i].rate = rate / (double)nthreads;
        w[i].ns = xmalloc((w[i].n ? w[i].n : 1) * sizeof(uint64_t));
        total += w[i].n;
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "bench_events: pthread_create failed\n");
            exit(1);
        }
    }
    for (long i = 0; i < nthreads; i++)
        pthread_join(w[i].tid, NULL);
    t1 = now_ns();
    recorder_stats(rec, &mid);
    recorder_close(rec);
    rec = NULL;
    t2 = now_ns();

    /* recorder_close frees the recorder, so its counters are read just before it; what
     * close writes is counted from the submitters' side (want_events), and bench/scan/run
     * counts the rows in the database to check that every one arrived. */
    all = xmalloc(total * sizeof(uint64_t));
    total = 0;
    for (long i = 0; i < nthreads; i++) {
        memcpy(all + total, w[i].ns, w[i].n * sizeof(uint64_t));
        total += w[i].n;
        want_events += w[i].events;
        failed += w[i].failed;
        free(w[i].ns);
    }
    qsort(all, total, sizeof(uint64_t), cmp_u64);
    printf("records=%" PRIu64 "\n", total);
    printf("threads=%ld\n", nthreads);
    printf("rate=%.0f\n", rate);
    printf("clock_ns_p50=%" PRIu64 "\n", clk[500]);
    printf("submit_ns_p50=%" PRIu64 "\n", pct(all, total, 0.50));
    printf("submit_ns_p99=%" PRIu64 "\n", pct(all, total, 0.99));
    printf("submit_ns_p999=%" PRIu64 "\n", pct(all, total, 0.999));
    printf("submit_ns_max=%" PRIu64 "\n", all[total - 1]);
    printf("submit_failed=%" PRIu64 "\n", failed);
    printf("submit_s=%.3f\n", (double)(t1 - t0) / 1e9);
    printf("close_s=%.3f\n", (double)(t2 - t1) / 1e9);
    printf("offered_per_s=%.0f\n", (double)total / ((double)(t1 - t0) / 1e9));
    printf("want_events=%" PRIu64 "\n", want_events);
    printf("events_in_window=%" PRIu64 "\n", mid.events);
    printf("events_in_window_per_s=%.0f\n", (double)mid.events / ((double)(t1 - t0) / 1e9));
    printf("dropped=%" PRIu64 "\n", mid.dropped);
    printf("spooled=%" PRIu64 "\n", mid.spooled);
    printf("rollups_in_window=%" PRIu64 "\n", mid.rollups);
    /* All event records reach the store by the end of close (none is ever dropped): the
     * bench script checks the rows in the database. */
    printf("events_per_s=%.0f\n", (double)want_events / ((double)(t2 - t0) / 1e9));
    rcode = 0;
out:
    recorder_close(rec);
    free(all);
    config_free(cfg);
    return rcode;
}
