/*
 * bench_scan.c -- in-process speed of the safeguarding monitor's page scanning.
 *
 *     bench_scan LIBDIR CORPUSDIR [SECONDS] [CHUNK]
 *
 * Loads every keyword library in LIBDIR (match_db_load_dir, as `haven serve`
 * does) and every file in CORPUSDIR (HTML pages) into memory, then measures
 * on the calling thread only (pin it with taskset for one core), each for at
 * least SECONDS (default 3) of whole passes over the corpus:
 *  - page: what the proxy pays per page (src/proxy/watch.c): extract_new
 *    (HTML, identity, a text cap of 256 KiB, the monitor-page-max default),
 *    match_stream_open, then the page in CHUNK-byte pieces (default 16384):
 *    extract_feed, extract_text, match_stream_feed, extract_consume; then
 *    extract_finish, the last drain, match_stream_close;
 *  - extract: the same without the scanner (extract only);
 *  - text: match_text over each page's text, extracted once beforehand (the
 *    scanner alone, on text held in memory).
 * The figures are MB/s (10^6 bytes) of HTML and of text, pages/s, and the
 * hits found (so a run that found nothing is seen). Output is one key=value
 * per line, for bench/scan/run. With BENCH_SCAN_HITS set in the environment,
 * the hits of the warm-up pass are printed on stderr ("hit SEVERITY PHRASE:
 * EXCERPT"), to see what the corpus sets off.
 */
#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

#include "common/xalloc.h"
#include "monitor/extract.h"
#include "monitor/match.h"

#define TEXT_CAP (256 * 1024)
#define MAX_PAGES 100000

struct page {
    char *html;
    size_t len;
    char *text; /* extracted once, for the text figure */
    size_t textlen;
};

struct corpus {
    struct page *pages;
    size_t n;
    size_t html_bytes, text_bytes;
};

static int show_hits; /* BENCH_SCAN_HITS=1: the warm-up pass prints its hits on stderr */

struct tally {
    double seconds;
    uint64_t passes, pages, html, text, hits, pages_hit, capped;
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    struct stat st;

    if (!f)
        return NULL;
    if (fstat(fileno(f), &st) < 0 || st.st_size <= 0) {
        fclose(f);
        return NULL;
    }
    buf = xmalloc((size_t)st.st_size + 1);
    *len = fread(buf, 1, (size_t)st.st_size, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* Every regular file of dir, in name order. Returns 0 or -1 (a message printed). */
static int corpus_load(struct corpus *c, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, path[4096];
    size_t n = 0, cap = 0;
    int rc = -1;

    if (!d) {
        fprintf(stderr, "bench_scan: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        names = xgrow(names, &cap, n + 1, sizeof(*names));
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n == 0 || n > MAX_PAGES) {
        fprintf(stderr, "bench_scan: %s: %zu pages (want 1 to %d)\n", dir, n, MAX_PAGES);
        goto out;
    }
    qsort(names, n, sizeof(*names), cmp_name);
    c->pages = xcalloc(n, sizeof(*c->pages));
    for (size_t i = 0; i < n; i++) {
        struct page *p = &c->pages[c->n];

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        p->html = read_file(path, &p->len);
        if (!p->html)
            continue;
        c->html_bytes += p->len;
        c->n++;
    }
    if (c->n == 0) {
        fprintf(stderr, "bench_scan: %s: no readable pages\n", dir);
        goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Extract each page's text once, whole, for the text figure. */
static void corpus_extract(struct corpus *c)
{
    for (size_t i = 0; i < c->n; i++) {
        struct page *p = &c->pages[i];
        struct extract *x = extract_new(EXTRACT_HTML, EXTRACT_IDENTITY, TEXT_CAP);
        const char *t;
        size_t n;

        if (!x) {
            fprintf(stderr, "bench_scan: out of memory\n");
            exit(1);
        }
        extract_feed(x, p->html, p->len);
        extract_finish(x);
        t = extract_text(x, &n);
        p->text = xmalloc(n + 1);
        memcpy(p->text, t, n);
        p->text[n] = '\0';
        p->textlen = n;
        c->text_bytes += n;
        extract_free(x);
    }
}

static int drain(struct extract *x, struct match_stream *ms, struct match_scratch *s,
                 uint64_t *text)
{
    size_t n;
    const char *t = extract_text(x, &n);
    int rc = 0;

    if (n > 0 && ms)
        rc = match_stream_feed(ms, s, t, n);
    *text += n;
    extract_consume(x, n);
    return rc;
}

/* One page as the proxy reads it; scan = 0: extract only. Returns 0 or -1. */
static int page_once(const struct match_db *db, struct match_scratch *s, const struct page *p,
                     size_t chunk, int scan, struct tally *t)
{
    static const struct match_where where = {"bench", "bench.test", "/page"};
    struct extract *x = extract_new(EXTRACT_HTML, EXTRACT_IDENTITY, TEXT_CAP);
    struct match_stream *ms = NULL;
    struct match_result r;
    int rc = -1, frc = 0;

    if (!x)
        goto out;
    if (scan) {
        ms = match_stream_open(db);
        if (!ms)
            goto out;
    }
    for (size_t off = 0; off < p->len && frc == 0; off += chunk) {
        size_t n = p->len - off < chunk ? p->len - off : chunk;

        frc = extract_feed(x, p->html + off, n);
        if (drain(x, ms, s, &t->text) < 0 || frc < 0)
            goto out;
    }
    if (frc == 1)
        t->capped++;
    if (extract_finish(x) < 0 || drain(x, ms, s, &t->text) < 0)
        goto out;
    if (ms) {
        struct match_stream *m = ms;

        ms = NULL;
        if (match_stream_close(m, s, &where, &r) < 0)
            goto out;
        t->hits += (uint64_t)r.nhits;
        t->pages_hit += r.nhits > 0;
        for (int i = 0; i < r.nhits && show_hits; i++)
            fprintf(stderr, "hit %d %s: %s\n", r.hits[i].severity, r.hits[i].phrase->text,
                    r.hits[i].excerpt);
    }
    t->html += p->len;
    t->pages++;
    rc = 0;
out:
    match_stream_abort(ms);
    extract_free(x);
    return rc;
}

enum mode { MODE_PAGE, MODE_EXTRACT, MODE_TEXT };

static int measure(const struct match_db *db, struct match_scratch *s, const struct corpus *c,
                   enum mode mode, size_t chunk, double seconds, struct tally *t)
{
    static const struct match_where where = {"bench", "bench.test", "/page"};
    struct match_result r;
    double t0 = now();

    memset(t, 0, sizeof(*t));
    do {
        for (size_t i = 0; i < c->n; i++) {
            const struct page *p = &c->pages[i];

            if (mode == MODE_TEXT) {
                if (match_text(db, s, p->text, p->textlen, &where, &r) < 0)
                    return -1;
                t->html += p->len;
                t->text += p->textlen;
                t->pages++;
                t->hits += (uint64_t)r.nhits;
                t->pages_hit += r.nhits > 0;
            } else if (page_once(db, s, p, chunk, mode == MODE_PAGE, t) < 0) {
                return -1;
            }
        }
        t->passes++;
        t->seconds = now() - t0;
    } while (t->seconds < seconds);
    return 0;
}

static void report(const char *name, const struct tally *t)
{
    printf("%s_seconds=%.3f\n", name, t->seconds);
    printf("%s_passes=%" PRIu64 "\n", name, t->passes);
    printf("%s_html_mbps=%.2f\n", name, (double)t->html / 1e6 / t->seconds);
    printf("%s_text_mbps=%.2f\n", name, (double)t->text / 1e6 / t->seconds);
    printf("%s_pages_per_s=%.1f\n", name, (double)t->pages / t->seconds);
    printf("%s_hits_per_pass=%.1f\n", name, (double)t->hits / (double)t->passes);
    printf("%s_pages_hit_per_pass=%.1f\n", name, (double)t->pages_hit / (double)t->passes);
    if (t->capped)
        printf("%s_capped_per_pass=%.1f\n", name, (double)t->capped / (double)t->passes);
}

int main(int argc, char **argv)
{
    struct corpus c;
    struct match_db *db = NULL;
    struct match_scratch *s = NULL;
    struct tally t;
    char err[1024];
    double seconds = 3.0, t0;
    long chunk = 16384;
    int rc = 1;

    memset(&c, 0, sizeof(c));
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: bench_scan LIBDIR CORPUSDIR [SECONDS] [CHUNK]\n");
        return 2;
    }
    if (argc > 3)
        seconds = strtod(argv[3], NULL);
    if (argc > 4)
        chunk = strtol(argv[4], NULL, 10);
    if (seconds <= 0 || seconds > 600 || chunk < 1 || chunk > 16 * 1024 * 1024) {
        fprintf(stderr, "bench_scan: SECONDS must be 0-600 and CHUNK 1-16M\n");
        return 2;
    }
    t0 = now();
    db = match_db_load_dir(argv[1], err, sizeof(err));
    if (!db) {
        fprintf(stderr, "bench_scan: %s\n", err);
        goto out;
    }
    printf("db_load_s=%.3f\n", now() - t0);
    printf("phrases=%zu\n", match_db_phrases(db));
    printf("languages=%s\n", match_db_languages(db));
    if (match_scratch_ensure(&s, db) < 0) {
        fprintf(stderr, "bench_scan: no memory for the scratch\n");
        goto out;
    }
    if (corpus_load(&c, argv[2]) < 0)
        goto out;
    corpus_extract(&c);
    printf("pages=%zu\n", c.n);
    printf("html_bytes=%zu\n", c.html_bytes);
    printf("text_bytes=%zu\n", c.text_bytes);
    printf("chunk=%ld\n", chunk);
    fflush(stdout);

    /* A short warm-up pass over everything, so the first figure is not the cold one. */
    show_hits = getenv("BENCH_SCAN_HITS") != NULL;
    if (measure(db, s, &c, MODE_PAGE, (size_t)chunk, 0.001, &t) < 0)
        goto fail;
    show_hits = 0;
    if (measure(db, s, &c, MODE_PAGE, (size_t)chunk, seconds, &t) < 0)
        goto fail;
    report("page", &t);
    if (measure(db, s, &c, MODE_EXTRACT, (size_t)chunk, seconds, &t) < 0)
        goto fail;
    report("extract", &t);
    if (measure(db, s, &c, MODE_TEXT, (size_t)chunk, seconds, &t) < 0)
        goto fail;
    report("text", &t);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "bench_scan: the scanner failed (out of memory?)\n");
out:
    for (size_t i = 0; i < c.n; i++) {
        free(c.pages[i].html);
        free(c.pages[i].text);
    }
    free(c.pages);
    match_scratch_free(s);
    match_db_free(db);
    return rc;
}
