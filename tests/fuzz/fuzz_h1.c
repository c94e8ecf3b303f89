/*
 * fuzz_h1.c -- libFuzzer harness for http/h1.c.
 *
 * Each input is parsed as a request head (default limits, and small limits chosen by the first
 * byte), as a response head (to GET and to HEAD) and as a chunked body. It aborts when an
 * invariant breaks:
 *  - H1_DONE: head_len <= len, every slice lies inside the head, the field values make sense;
 *    H1_ERROR: a message (and for requests one of the statuses h1.h lists).
 *  - Splitting the bytes in two changes nothing: parsing a prefix (from an exactly sized copy,
 *    so ASan sees a read past its end) gives H1_AGAIN or the same answer as the whole input, and
 *    H1_DONE only when the prefix holds the whole head; the head alone parses the same.
 *  - The chunked scanner gives the same result and the same end whether the body comes whole,
 *    in two pieces or (for short inputs) one byte at a time.
 * Seed corpus: tests/fuzz/corpus/h1/.
 */
#include "common/compat.h"

#include "http/h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct h1_request fuzz_h1_req_whole;
static struct h1_request fuzz_h1_req_part;
static struct h1_response fuzz_h1_resp_whole;
static struct h1_response fuzz_h1_resp_part;

static void fuzz_h1_check(int ok)
{
    if (!ok)
        abort();
}

static int fuzz_h1_in(struct slice s, const char *buf, size_t len)
{
    return s.len == 0 || (s.p >= buf && s.p + s.len <= buf + len);
}

static long long fuzz_h1_off(struct slice s, const char *buf)
{
    if (s.len == 0)
        return -1;
    return (long long)(s.p - buf);
}

static int fuzz_h1_same_slice(struct slice a, const char *abuf, struct slice b, const char *bbuf)
{
    return a.len == b.len && fuzz_h1_off(a, abuf) == fuzz_h1_off(b, bbuf);
}

static int fuzz_h1_same_headers(const struct h1_header *x, const char *a, const struct h1_header *y,
                                const char *b, int n)
{
    for (int i = 0; i < n; i++) {
        if (!fuzz_h1_same_slice(x[i].name, a, y[i].name, b) ||
            !fuzz_h1_same_slice(x[i].value, a, y[i].value, b))
            return 0;
    }
    return 1;
}

static void fuzz_h1_check_request(int r, const struct h1_request *q, const char *buf, size_t len,
                                  const struct h1_limits *lim)
{
    if (r == H1_ERROR) {
        fuzz_h1_check(q->error && q->error[0]);
        fuzz_h1_check(q->status == 400 || q->status == 414 || q->status == 431 ||
                      q->status == 501 || q->status == 505);
        return;
    }
    if (r != H1_DONE) {
        fuzz_h1_check(r == H1_AGAIN);
        return;
    }
    fuzz_h1_check(q->head_len <= len && q->head_len <= lim->max_head && q->head_len >= 4);
    fuzz_h1_check(memcmp(buf + q->head_len - 4, "\r\n\r\n", 4) == 0);
    fuzz_h1_check(q->method.len > 0 && q->target.len > 0);
    fuzz_h1_check(
        fuzz_h1_in(q->method, buf, q->head_len) && fuzz_h1_in(q->target, buf, q->head_len) &&
        fuzz_h1_in(q->authority, buf, q->head_len) && fuzz_h1_in(q->host, buf, q->head_len) &&
        fuzz_h1_in(q->connection, buf, q->head_len) && fuzz_h1_in(q->upgrade, buf, q->head_len) &&
        fuzz_h1_in(q->proxy_authorization, buf, q->head_len));
    fuzz_h1_check(q->nheaders >= 0 && q->nheaders <= lim->max_headers &&
                  q->nheaders <= H1_MAX_HEADERS);
    for (int i = 0; i < q->nheaders; i++) {
        fuzz_h1_check(q->headers[i].name.len > 0);
        fuzz_h1_check(fuzz_h1_in(q->headers[i].name, buf, q->head_len) &&
                      fuzz_h1_in(q->headers[i].value, buf, q->head_len));
        fuzz_h1_check(q->headers[i].name.len <= lim->max_line);
    }
    fuzz_h1_check(q->minor == 0 || q->minor == 1);
    fuzz_h1_check(q->minor == 0 || q->has_host);
    fuzz_h1_check(q->keep_alive == 0 || q->keep_alive == 1);
    fuzz_h1_check(q->body == H1_BODY_NONE || q->body == H1_BODY_LENGTH ||
                  q->body == H1_BODY_CHUNKED);
    fuzz_h1_check(q->content_length <= H1_MAX_CONTENT_LENGTH);
    fuzz_h1_check(q->body == H1_BODY_LENGTH || q->content_length == 0);
    fuzz_h1_check(q->body != H1_BODY_CHUNKED || q->minor == 1);
    fuzz_h1_check(q->target_form != H1_TARGET_AUTHORITY || q->body != H1_BODY_CHUNKED);
    fuzz_h1_check(q->target_form != H1_TARGET_ORIGIN || q->target.p[0] == '/');
    for (size_t i = 0; i < q->target.len; i++)
        fuzz_h1_check((unsigned char)q->target.p[i] > 0x20 && (unsigned char)q->target.p[i] < 0x7f);
}

static void fuzz_h1_check_response(int r, const struct h1_response *s, const char *buf, size_t len,
                                   const struct h1_limits *lim)
{
    if (r == H1_ERROR) {
        fuzz_h1_check(s->error && s->error[0]);
        return;
    }
    if (r != H1_DONE) {
        fuzz_h1_check(r == H1_AGAIN);
        return;
    }
    fuzz_h1_check(s->head_len <= len && s->head_len <= lim->max_head);
    fuzz_h1_check(memcmp(buf + s->head_len - 4, "\r\n\r\n", 4) == 0);
    fuzz_h1_check(s->status >= 100 && s->status <= 999);
    fuzz_h1_check(fuzz_h1_in(s->reason, buf, s->head_len) &&
                  fuzz_h1_in(s->connection, buf, s->head_len));
    fuzz_h1_check(s->nheaders >= 0 && s->nheaders <= lim->max_headers);
    for (int i = 0; i < s->nheaders; i++) {
        fuzz_h1_check(s->headers[i].name.len > 0);
        fuzz_h1_check(fuzz_h1_in(s->headers[i].name, buf, s->head_len) &&
                      fuzz_h1_in(s->headers[i].value, buf, s->head_len));
    }
    fuzz_h1_check(s->body != H1_BODY_CLOSE || s->keep_alive == 0);
    fuzz_h1_check(s->body == H1_BODY_LENGTH || s->content_length == 0);
    fuzz_h1_check(s->content_length <= H1_MAX_CONTENT_LENGTH);
    fuzz_h1_check(s->status >= 200 || s->body == H1_BODY_NONE);
}

/* The prefix of k bytes, parsed from its own buffer, agrees with the whole. */
static void fuzz_h1_request_prefix(const char *in, size_t size, size_t k, int r,
                                   const struct h1_limits *lim)
{
    const struct h1_request *w = &fuzz_h1_req_whole;
    struct h1_request *p = &fuzz_h1_req_part;
    char *copy = malloc(k ? k : 1);
    int rk;

    fuzz_h1_check(copy != NULL);
    memcpy(copy, in, k);
    rk = h1_parse_request(copy, k, lim, p);
    fuzz_h1_check_request(rk, p, copy, k, lim);
    if (rk == H1_DONE) {
        fuzz_h1_check(r == H1_DONE && k >= w->head_len);
        fuzz_h1_check(p->head_len == w->head_len && p->nheaders == w->nheaders &&
                      p->body == w->body && p->content_length == w->content_length &&
                      p->keep_alive == w->keep_alive && p->minor == w->minor &&
                      p->target_form == w->target_form &&
                      p->expect_continue == w->expect_continue && p->has_host == w->has_host &&
                      p->has_proxy_authorization == w->has_proxy_authorization);
        fuzz_h1_check(fuzz_h1_same_slice(p->method, copy, w->method, in) &&
                      fuzz_h1_same_slice(p->target, copy, w->target, in) &&
                      fuzz_h1_same_slice(p->authority, copy, w->authority, in) &&
                      fuzz_h1_same_slice(p->host, copy, w->host, in) &&
                      fuzz_h1_same_slice(p->connection, copy, w->connection, in) &&
                      fuzz_h1_same_slice(p->upgrade, copy, w->upgrade, in) &&
                      fuzz_h1_same_slice(p->proxy_authorization, copy, w->proxy_authorization, in));
        fuzz_h1_check(fuzz_h1_same_headers(p->headers, copy, w->headers, in, w->nheaders));
    } else if (rk == H1_ERROR) {
        fuzz_h1_check(r == H1_ERROR && p->status == w->status && strcmp(p->error, w->error) == 0);
    } else {
        fuzz_h1_check(r != H1_DONE || k < w->head_len);
    }
    (void)size;
    free(copy);
}

static void fuzz_h1_response_prefix(const char *in, size_t k, int r, struct slice method,
                                    const struct h1_limits *lim)
{
    const struct h1_response *w = &fuzz_h1_resp_whole;
    struct h1_response *p = &fuzz_h1_resp_part;
    char *copy = malloc(k ? k : 1);
    int rk;

    fuzz_h1_check(copy != NULL);
    memcpy(copy, in, k);
    rk = h1_parse_response(copy, k, lim, method, p);
    fuzz_h1_check_response(rk, p, copy, k, lim);
    if (rk == H1_DONE) {
        fuzz_h1_check(r == H1_DONE && k >= w->head_len);
        fuzz_h1_check(p->head_len == w->head_len && p->nheaders == w->nheaders &&
                      p->body == w->body && p->content_length == w->content_length &&
                      p->keep_alive == w->keep_alive && p->minor == w->minor &&
                      p->status == w->status);
        fuzz_h1_check(fuzz_h1_same_slice(p->reason, copy, w->reason, in));
        fuzz_h1_check(fuzz_h1_same_headers(p->headers, copy, w->headers, in, w->nheaders));
    } else if (rk == H1_ERROR) {
        fuzz_h1_check(r == H1_ERROR && strcmp(p->error, w->error) == 0);
    } else {
        fuzz_h1_check(r != H1_DONE || k < w->head_len);
    }
    free(copy);
}

/* Where to split: every position for short inputs, otherwise a spread plus the head's end. */
static size_t fuzz_h1_split(size_t size, size_t i, size_t head_len)
{
    if (size <= 200)
        return i;
    if (i == 0)
        return head_len > 0 ? head_len - 1 : 0;
    if (i == 1)
        return head_len;
    return size * (i - 2) / 30;
}

static size_t fuzz_h1_nsplits(size_t size)
{
    return size <= 200 ? size + 1 : 32;
}

static void fuzz_h1_requests(const char *in, size_t size, const struct h1_limits *lim)
{
    int r = h1_parse_request(in, size, lim, &fuzz_h1_req_whole);
    size_t head = r == H1_DONE ? fuzz_h1_req_whole.head_len : 0;

    fuzz_h1_check_request(r, &fuzz_h1_req_whole, in, size, lim);
    for (size_t i = 0; i < fuzz_h1_nsplits(size); i++) {
        size_t k = fuzz_h1_split(size, i, head);
        if (k <= size)
            fuzz_h1_request_prefix(in, size, k, r, lim);
    }
}

static void fuzz_h1_responses(const char *in, size_t size, struct slice method,
                              const struct h1_limits *lim)
{
    int r = h1_parse_response(in, size, lim, method, &fuzz_h1_resp_whole);
    size_t head = r == H1_DONE ? fuzz_h1_resp_whole.head_len : 0;

    fuzz_h1_check_response(r, &fuzz_h1_resp_whole, in, size, lim);
    for (size_t i = 0; i < fuzz_h1_nsplits(size); i++) {
        size_t k = fuzz_h1_split(size, i, head);
        if (k <= size)
            fuzz_h1_response_prefix(in, k, r, method, lim);
    }
}

static void fuzz_h1_chunked(const char *in, size_t size, const struct h1_limits *lim)
{
    struct h1_chunked c;
    size_t used = 0, total;
    int r, rk;

    h1_chunked_init(&c, lim);
    r = h1_chunked_scan(&c, in, size, &used);
    fuzz_h1_check(r >= -1 && r <= 1 && used <= size);
    fuzz_h1_check(r != 0 || used == size);
    fuzz_h1_check(r != -1 || (c.error && c.error[0]));
    total = used;
    for (size_t i = 0; i < fuzz_h1_nsplits(size); i++) {
        size_t k = fuzz_h1_split(size, i, total);
        size_t u1 = 0, u2 = 0;
        if (k > size)
            continue;
        h1_chunked_init(&c, lim);
        rk = h1_chunked_scan(&c, in, k, &u1);
        if (rk == 0) {
            fuzz_h1_check(u1 == k);
            rk = h1_chunked_scan(&c, in + k, size - k, &u2);
        }
        fuzz_h1_check(rk == r);
        fuzz_h1_check(r != 1 || u1 + u2 == total);
    }
    if (size <= 512) {
        h1_chunked_init(&c, lim);
        rk = 0;
        used = 0;
        for (size_t i = 0; i < size && rk == 0; i++) {
            size_t u = 0;
            rk = h1_chunked_scan(&c, in + i, 1, &u);
            if (rk != -1)
                used += u;
        }
        fuzz_h1_check(rk == r && (r != 1 || used == total));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct h1_limits def, small;
    struct h1_limits *lim = &def;

    h1_limits_default(&def);
    small.max_line = 16 + (size > 0 ? data[0] % 64 : 0);
    small.max_head = 64 + (size > 1 ? (size_t)data[1] * 2 : 0);
    small.max_headers = size > 2 ? data[2] % 8 : 3;
    if (size > 3 && (data[3] & 1))
        lim = &small;

    fuzz_h1_requests(in, size, lim);
    fuzz_h1_responses(in, size, SLICE_LIT("GET"), lim);
    fuzz_h1_responses(in, size, SLICE_LIT("HEAD"), lim);
    fuzz_h1_chunked(in, size, lim);
    return 0;
}
