/* Fuzz the keyword-matching normaliser. Invariants on every input:
 *  - the output is valid UTF-8, NUL-terminated, with no NUL inside;
 *  - it starts and ends with one space and never has two spaces in a row;
 *  - the map is non-decreasing and inside the (capped) input;
 *  - with and without a map the text is the same;
 *  - idempotence, norm(norm(x)) == norm(x), whenever the output has no run of
 *    three one-letter words (rule 7 may join those on a second pass). */
#include "common/compat.h"

#include <utf8proc.h>

#include "monitor/normalize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Is the word w[0..n) one letter followed only by marks? */
static int one_letter(const uint8_t *w, size_t n)
{
    utf8proc_int32_t cp;
    utf8proc_ssize_t r = utf8proc_iterate(w, (utf8proc_ssize_t)n, &cp);
    utf8proc_category_t c;
    size_t i;

    if (r <= 0)
        abort();
    c = utf8proc_category(cp);
    if (c < UTF8PROC_CATEGORY_LU || c > UTF8PROC_CATEGORY_LO)
        return 0;
    for (i = (size_t)r; i < n; i += (size_t)r) {
        r = utf8proc_iterate(w + i, (utf8proc_ssize_t)(n - i), &cp);
        if (r <= 0)
            abort();
        c = utf8proc_category(cp);
        if (c != UTF8PROC_CATEGORY_MN && c != UTF8PROC_CATEGORY_MC && c != UTF8PROC_CATEGORY_ME)
            return 0;
    }
    return 1;
}

static int has_three_single_letter_words(const struct norm *n)
{
    const uint8_t *t = (const uint8_t *)n->text;
    size_t i = 1, run = 0;

    while (i < n->len) {
        size_t e = i;
        while (e < n->len && t[e] != ' ')
            e++;
        if (e > i && one_letter(t + i, e - i)) {
            run++;
            if (run >= 3)
                return 1;
        } else {
            run = 0;
        }
        i = e + 1;
    }
    return 0;
}

static void check_shape(const struct norm *n, size_t inlen)
{
    const uint8_t *t = (const uint8_t *)n->text;
    size_t i;

    if (!n->text || n->len < 1 || t[0] != ' ' || t[n->len - 1] != ' ' || t[n->len] != '\0')
        abort();
    if (strlen(n->text) != n->len)
        abort();
    for (i = 0; i < n->len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t r = utf8proc_iterate(t + i, (utf8proc_ssize_t)(n->len - i), &cp);
        if (r <= 0)
            abort(); /* invalid UTF-8 out */
        i += (size_t)r;
    }
    for (i = 1; i < n->len; i++) {
        if (t[i] == ' ' && t[i - 1] == ' ')
            abort();
    }
    if (n->from) {
        for (i = 0; i < n->len; i++) {
            if (inlen ? n->from[i] >= inlen : n->from[i] != 0)
                abort();
            if (i && n->from[i] < n->from[i - 1])
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct norm a, b, c;
    size_t inlen = size > NORM_MAX_IN ? NORM_MAX_IN : size;

    if (norm_text((const char *)data, size, 1, &a) < 0)
        return 0;
    check_shape(&a, inlen);
    if (norm_text((const char *)data, size, 0, &b) < 0)
        abort();
    if (b.from || b.len != a.len || memcmp(a.text, b.text, a.len) != 0)
        abort();
    norm_free(&b);
    if (norm_text(a.text, a.len, 1, &c) < 0)
        abort();
    check_shape(&c, a.len);
    if (!has_three_single_letter_words(&a) &&
        (c.len != a.len || memcmp(a.text, c.text, a.len) != 0))
        abort(); /* not idempotent */
    norm_free(&c);
    norm_free(&a);
    return 0;
}
