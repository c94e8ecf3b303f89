/*
 * bench_catdb.c -- in-process speed of the category database.
 *
 *     bench_catdb DB HOSTFILE [URLFILE]
 *
 * Measures, on the calling thread only (pin it with taskset for one core):
 *  - catdb_open + catdb_close of DB, five times, median and slowest (the open
 *    includes everything catdb_open does: mmap with MAP_POPULATE, the CRC-32
 *    of the whole file and the walk over every slot);
 *  - catdb_lookup_host over the hosts of HOSTFILE (one per line, normalised
 *    with url_normalize_host before timing, in file order, repeated until at
 *    least LOOKUPS_MIN lookups and TIME_MIN seconds have run);
 *  - catdb_lookup_url over the URLs of URLFILE (one per line, or Squid helper
 *    request lines, of which the first field is taken; without the file, the
 *    hosts with a few paths appended), normalised before timing; and
 *    url_normalize + catdb_lookup_url together, as a request pays them (fed
 *    the canonical text, which url_normalize maps to itself);
 *  - the file's size per distinct entry (catdb_get_stats).
 *
 * Output is one key=value per line, for bench/lookup/run. A normalised URL is
 * kept as its canonical text and offsets and copied into one struct url
 * before each lookup (a struct url is 8 KiB; a million of them would not fit),
 * so the URL figures include that copy of a few dozen bytes.
 */
#include "common/compat.h"

#include <errno.h>
#include <time.h>

#include "catdb/catdb.h"
#include "common/xalloc.h"
#include "http/url.h"

#define OPEN_RUNS 5
#define LOOKUPS_MIN 3000000ULL
#define TIME_MIN 1.0

/* The parts of a struct url other than its text. */
struct url_rec {
    uint32_t host_off, host_len, path_off, path_len, query_off, query_len;
    uint16_t port;
    uint8_t has_query, host_type;
};

/* Hosts or URLs in one arena: item i is text + off[i], len[i] bytes. */
struct items {
    char *text;
    size_t textlen, textcap;
    size_t *off;
    uint32_t *len;
    uint8_t *flag; /* hosts: is_ip */
    struct url_rec *urls;
    size_t n, cap;
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void items_add(struct items *it, const char *s, size_t len)
{
    it->text = xgrow(it->text, &it->textcap, it->textlen + len + 1, 1);
    if (it->n == it->cap) {
        it->cap = it->cap ? it->cap * 2 : 4096;
        it->off = xrealloc(it->off, it->cap * sizeof(*it->off));
        it->len = xrealloc(it->len, it->cap * sizeof(*it->len));
        it->flag = xrealloc(it->flag, it->cap * sizeof(*it->flag));
        it->urls = xrealloc(it->urls, it->cap * sizeof(*it->urls));
    }
    memcpy(it->text + it->textlen, s, len);
    it->text[it->textlen + len] = '\0';
    it->off[it->n] = it->textlen;
    it->len[it->n] = (uint32_t)len;
    it->flag[it->n] = 0;
    it->textlen += len + 1;
    it->n++;
}

static void items_free(struct items *it)
{
    free(it->text);
    free(it->off);
    free(it->len);
    free(it->flag);
    free(it->urls);
}

/* Call fn(arg, line, len) for each non-empty line of path. Returns 0 or -1. */
static int read_lines(const char *path, void (*fn)(void *, const char *, size_t), void *arg)
{
    char line[URL_MAX + 2];
    FILE *f = fopen(path, "r");

    if (!f) {
        fprintf(stderr, "bench_catdb: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\r\n");
        if (n > 0)
            fn(arg, line, n);
    }
    fclose(f);
    return 0;
}

struct load {
    struct items *it;
    struct url *u;
    unsigned long bad;
};

static void load_host(void *arg, const char *line, size_t len)
{
    struct load *l = arg;
    char host[URL_HOST_MAX + 1];
    enum url_host_type type;
    const char *why;
    int n = url_normalize_host(line, len, host, &type, &why);

    if (n < 0) {
        l->bad++;
        return;
    }
    items_add(l->it, host, (size_t)n);
    l->it->flag[l->it->n - 1] = type != URL_HOST_NAME;
}

static void load_url(void *arg, const char *line, size_t len)
{
    struct load *l = arg;
    struct url *u = l->u;
    const char *why;
    struct url_rec *r;
    /* A request line "URL ip/fqdn user method": the URL is the first field. */
    const char *sp = memchr(line, ' ', len);

    if (sp)
        len = (size_t)(sp - line);
    if (url_normalize(line, len, u, &why) < 0) {
        l->bad++;
        return;
    }
    items_add(l->it, u->text, u->len);
    r = &l->it->urls[l->it->n - 1];
    r->host_off = (uint32_t)u->host_off;
    r->host_len = (uint32_t)u->host_len;
    r->path_off = (uint32_t)u->path_off;
    r->path_len = (uint32_t)u->path_len;
    r->query_off = (uint32_t)u->query_off;
    r->query_len = (uint32_t)u->query_len;
    r->port = u->port;
    r->has_query = (uint8_t)u->has_query;
    r->host_type = (uint8_t)u->host_type;
}

/* Without a URL file: each host with one of a few paths, as URLs. */
static void urls_from_hosts(struct load *l, const struct items *hosts)
{
    static const char *const paths[] = {"/",
                                        "/index.html",
                                        "/news/2024/05/story-1234.html",
                                        "/search?q=weather&lang=en",
                                        "/static/js/app.min.js?v=3",
                                        "/wp-content/uploads/2023/01/photo.jpg"};
    char line[URL_MAX];

    for (size_t i = 0; i < hosts->n; i++) {
        const char *h = hosts->text + hosts->off[i];
        int v6 = strchr(h, ':') != NULL;
        int n = snprintf(line, sizeof(line), "http://%s%s%s%s", v6 ? "[" : "", h, v6 ? "]" : "",
                         paths[i % HAVEN_ARRAY_LEN(paths)]);
        if (n > 0 && (size_t)n < sizeof(line))
            load_url(l, line, (size_t)n);
    }
}

static void url_fill(struct url *u, const struct items *it, size_t i)
{
    const struct url_rec *r = &it->urls[i];

    memcpy(u->text, it->text + it->off[i], (size_t)it->len[i] + 1);
    u->len = it->len[i];
    u->host_off = r->host_off;
    u->host_len = r->host_len;
    u->path_off = r->path_off;
    u->path_len = r->path_len;
    u->query_off = r->query_off;
    u->query_len = r->query_len;
    u->port = r->port;
    u->has_query = r->has_query;
    u->host_type = (enum url_host_type)r->host_type;
}

enum mode { MODE_HOST, MODE_URL, MODE_NORMALIZE_URL };

/*
 * Run lookups of kind mode over it in order, pass after pass, until at least
 * LOOKUPS_MIN lookups and TIME_MIN seconds. Returns lookups per second; *hits
 * gets the fraction of lookups that matched in the first pass.
 */
static double run(const struct catdb *db, const struct items *it, enum mode mode, struct url *u,
                  double *hits)
{
    struct catdb_match m;
    unsigned long long done = 0, matched = 0;
    double t0 = now(), t = t0;
    const char *why;
    int first = 1;

    while (done < LOOKUPS_MIN || t - t0 < TIME_MIN) {
        unsigned long long pass_hits = 0;
        for (size_t i = 0; i < it->n; i++) {
            const char *s = it->text + it->off[i];
            int r = 0;
            switch (mode) {
            case MODE_HOST:
                r = catdb_lookup_host(db, s, it->len[i], it->flag[i], &m);
                break;
            case MODE_URL:
                url_fill(u, it, i);
                r = catdb_lookup_url(db, u, &m);
                break;
            case MODE_NORMALIZE_URL:
                if (url_normalize(s, it->len[i], u, &why) == 0)
                    r = catdb_lookup_url(db, u, &m);
                break;
            }
            pass_hits += r > 0;
        }
        done += it->n;
        if (first)
            matched = pass_hits;
        first = 0;
        t = now();
    }
    *hits = it->n ? (double)matched / (double)it->n : 0;
    return (double)done / (t - t0);
}

int main(int argc, char **argv)
{
    static struct url u;
    struct items hosts = {0}, urls = {0};
    struct load l = {0};
    struct catdb_stats st;
    struct catdb *db = NULL;
    double open_ms[OPEN_RUNS], rate, hits;
    char err[512];
    int rc = 1;

    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: bench_catdb DB HOSTFILE [URLFILE]\n");
        return 2;
    }

    for (int i = 0; i < OPEN_RUNS; i++) {
        double t0 = now();
        db = catdb_open(argv[1], err, sizeof(err));
        double t1 = now();
        if (!db) {
            fprintf(stderr, "bench_catdb: %s\n", err);
            goto out;
        }
        open_ms[i] = (t1 - t0) * 1e3;
        if (i < OPEN_RUNS - 1) {
            catdb_close(db);
            db = NULL;
        }
    }
    qsort(open_ms, OPEN_RUNS, sizeof(open_ms[0]), cmp_double);
    printf("open_ms=%.2f\nopen_ms_max=%.2f\n", open_ms[OPEN_RUNS / 2], open_ms[OPEN_RUNS - 1]);

    catdb_get_stats(db, &st);
    uint64_t entries = (uint64_t)st.nhosts + st.nurls + st.nips;
    printf("db_bytes=%llu\nentries=%llu\nhosts=%u\nurls=%u\nips=%u\n", (unsigned long long)st.bytes,
           (unsigned long long)entries, st.nhosts, st.nurls, st.nips);
    printf("bytes_per_entry=%.2f\n", entries ? (double)st.bytes / (double)entries : 0.0);

    l.it = &hosts;
    l.u = &u;
    if (read_lines(argv[2], load_host, &l) < 0)
        goto out;
    if (hosts.n == 0) {
        fprintf(stderr, "bench_catdb: %s: no valid hosts\n", argv[2]);
        goto out;
    }
    printf("host_inputs=%zu\nhost_rejected=%lu\n", hosts.n, l.bad);

    l.it = &urls;
    l.bad = 0;
    if (argc == 4) {
        if (read_lines(argv[3], load_url, &l) < 0)
            goto out;
    } else {
        urls_from_hosts(&l, &hosts);
    }
    if (urls.n == 0) {
        fprintf(stderr, "bench_catdb: no valid URLs\n");
        goto out;
    }
    printf("url_inputs=%zu\nurl_rejected=%lu\n", urls.n, l.bad);
    fflush(stdout);

    rate = run(db, &hosts, MODE_HOST, &u, &hits);
    printf("host_lookups_per_s=%.0f\nhost_ns_per_lookup=%.1f\nhost_hit_fraction=%.4f\n", rate,
           1e9 / rate, hits);
    fflush(stdout);

    rate = run(db, &urls, MODE_URL, &u, &hits);
    printf("url_lookups_per_s=%.0f\nurl_ns_per_lookup=%.1f\nurl_hit_fraction=%.4f\n", rate,
           1e9 / rate, hits);
    fflush(stdout);

    /* The same URLs from their canonical text again: url_normalize is idempotent. */
    rate = run(db, &urls, MODE_NORMALIZE_URL, &u, &hits);
    printf("normalize_url_lookups_per_s=%.0f\nnormalize_url_ns_per_lookup=%.1f\n", rate,
           1e9 / rate);
    rc = 0;
out:
    catdb_close(db);
    items_free(&hosts);
    items_free(&urls);
    return rc;
}
