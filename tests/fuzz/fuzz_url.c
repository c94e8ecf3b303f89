/*
 * fuzz_url.c -- libFuzzer harness for http/url.c.
 *
 * Feeds each input to url_normalize and url_normalize_host and aborts when an invariant
 * breaks: a failure must carry a reason; a success must have offsets inside the text, and
 * its canonical form must be a fixed point (normalising it again gives the same text, offsets,
 * port and host type); search terms are bounded; and whatever the one-pass fast path accepts, the
 * full parser must turn into exactly the same URL. Seed corpus: tests/fuzz/corpus/url/.
 */
#include "common/compat.h"

/* The source itself, to reach the two static parsers (the library's copy is not linked). */
#include "http/url.c"
#include "http/search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct url fuzz_url_first;
static struct url fuzz_url_again;
static struct url fuzz_url_full;

static void fuzz_url_check(int ok)
{
    if (!ok)
        abort();
}

static void fuzz_url_check_why(const char *why)
{
    fuzz_url_check(why && why[0] != '\0');
}

static void fuzz_url_check_host(const char *in, size_t len)
{
    char out[URL_HOST_MAX + 1];
    char again[URL_HOST_MAX + 1];
    enum url_host_type type, type_again;
    const char *why = NULL;
    int n, m;

    n = url_normalize_host(in, len, out, &type, &why);
    if (n < 0) {
        fuzz_url_check_why(why);
        return;
    }
    fuzz_url_check(n <= URL_HOST_MAX && strlen(out) == (size_t)n && n > 0);
    m = url_normalize_host(out, (size_t)n, again, &type_again, &why);
    fuzz_url_check(m == n && memcmp(out, again, (size_t)n) == 0 && type == type_again);
}

static void fuzz_url_check_offsets(const struct url *u)
{
    fuzz_url_check(u->len <= URL_MAX && strlen(u->text) == u->len);
    fuzz_url_check(u->scheme_len > 0 && u->scheme_len + 3 <= u->host_off);
    fuzz_url_check(u->host_len > 0 && u->host_len <= URL_HOST_MAX);
    fuzz_url_check(u->host_off + u->host_len <= u->path_off);
    fuzz_url_check(u->path_len > 0 && u->path_off + u->path_len <= u->len);
    fuzz_url_check(u->text[u->path_off] == '/');
    fuzz_url_check(u->query_off + u->query_len <= u->len);
    if (u->has_query) {
        fuzz_url_check(u->query_off == u->path_off + u->path_len + 1);
        fuzz_url_check(u->text[u->query_off - 1] == '?');
        fuzz_url_check(u->query_off + u->query_len == u->len);
    } else {
        fuzz_url_check(u->query_len == 0 && u->path_off + u->path_len == u->len);
    }
    fuzz_url_check(u->port != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct url *u = &fuzz_url_first;
    struct url *v = &fuzz_url_again;
    const char *why = NULL;

    fuzz_url_check_host(in, size);

    if (size <= URL_MAX && url_normalize_fast(in, size, u)) {
        struct url *f = &fuzz_url_full;
        fuzz_url_check(url_normalize_full(in, size, f, &why) == 0);
        fuzz_url_check(u->len == f->len && memcmp(u->text, f->text, u->len + 1) == 0);
        fuzz_url_check(u->host_off == f->host_off && u->host_len == f->host_len &&
                       u->path_off == f->path_off && u->path_len == f->path_len &&
                       u->has_query == f->has_query && u->query_off == f->query_off &&
                       u->query_len == f->query_len && u->port == f->port &&
                       u->scheme_len == f->scheme_len && u->host_type == f->host_type);
    }

    if (url_normalize(in, size, u, &why) < 0) {
        fuzz_url_check_why(why);
        return 0;
    }
    fuzz_url_check_offsets(u);
    fuzz_url_check_host(u->text + u->host_off, u->host_len);

    /* Search terms (http/search.c): present and bounded, or absent and empty. */
    char terms[64];
    const char *site = search_terms(u, terms, sizeof(terms));
    fuzz_url_check(site ? terms[0] != '\0' && strlen(terms) < sizeof(terms) : terms[0] == '\0');

    why = NULL;
    fuzz_url_check(url_normalize(u->text, u->len, v, &why) == 0);
    fuzz_url_check(v->len == u->len && memcmp(v->text, u->text, u->len) == 0);
    fuzz_url_check(v->scheme_len == u->scheme_len && v->host_off == u->host_off &&
                   v->host_len == u->host_len && v->path_off == u->path_off &&
                   v->path_len == u->path_len && v->query_off == u->query_off &&
                   v->query_len == u->query_len && v->has_query == u->has_query &&
                   v->port == u->port && v->host_type == u->host_type);
    return 0;
}
