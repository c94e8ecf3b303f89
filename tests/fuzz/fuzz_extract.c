/*
 * Fuzz page-text extraction. The first input byte picks the type (bits 0-1),
 * the content coding (bits 2-4, modulo 5) and the text cap (bits 5-7: 64 B to
 * 1 MiB); the second seeds the sizes of the chunks the rest is fed in.
 * Nothing may crash; the text never exceeds the cap; an error always says
 * what it is; and unless decoding failed, the text is the same as when the
 * whole body is fed at once.
 */
#include "common/compat.h"

#include "monitor/extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
    char *text;
    size_t len;
    int rc;
};

static void drain(struct extract *x, struct out *o, size_t cap)
{
    size_t n;
    const char *t = extract_text(x, &n);

    if (o->len + n > cap)
        abort(); /* more text than the cap */
    memcpy(o->text + o->len, t, n);
    o->len += n;
    extract_consume(x, n);
}

static void run(const uint8_t *p, size_t n, enum extract_type type, enum extract_coding coding,
                size_t cap, uint32_t seed, struct out *o)
{
    struct extract *x = extract_new(type, coding, cap);
    size_t off = 0;

    if (!x)
        abort();
    o->len = 0;
    o->rc = 0;
    while (off < n && o->rc >= 0) {
        size_t k = n - off;
        if (seed) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            k = seed % 97 + 1;
            if (k > n - off)
                k = n - off;
        }
        o->rc = extract_feed(x, p + off, k);
        if (o->rc < -1 || o->rc > 1)
            abort();
        if ((o->rc < 0) != (extract_error(x) != NULL))
            abort(); /* -1 exactly when there is an error to report */
        if (o->rc < 0 && !*extract_error(x))
            abort();
        drain(x, o, cap);
        off += k;
    }
    if (o->rc >= 0)
        o->rc = extract_finish(x);
    drain(x, o, cap);
    if (extract_total(x) > cap || extract_total(x) != o->len)
        abort();
    if (extract_decoded(x) > (cap * 8 > 1024 * 1024 ? cap * 8 : 1024 * 1024))
        abort(); /* the input cap */
    extract_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text_a[1024 * 1024], text_b[1024 * 1024];
    struct out a = {text_a, 0, 0}, b = {text_b, 0, 0};
    enum extract_type type;
    enum extract_coding coding;
    size_t cap;
    uint32_t seed;

    if (size < 2)
        return 0;
    type = (enum extract_type)(data[0] & 3);
    coding = (enum extract_coding)(((data[0] >> 2) & 7) % 5);
    cap = (size_t)64 << (2 * (data[0] >> 5));
    seed = data[1] | 0x100u;
    run(data + 2, size - 2, type, coding, cap, seed, &a);
    run(data + 2, size - 2, type, coding, cap, 0, &b);
    if (a.rc >= 0 && b.rc >= 0 && (a.len != b.len || memcmp(a.text, b.text, a.len) != 0))
        abort(); /* the chunk boundaries changed the text */
    return 0;
}
