/*
 * fuzz_hello.c -- libFuzzer harness for tls/hello.c.
 *
 * Each input is parsed three ways: as the raw byte stream; as a handshake message wrapped in
 * handshake records; and as a ClientHello body given a correct handshake header and then
 * wrapped in records (the last two let the fuzzer reach the extension parsers without having
 * to get the record and message lengths right). The record sizes for the wrapped forms come
 * from the input's last byte. Every parse is from an exactly sized copy, so ASan sees a read
 * past the end. It aborts when an invariant breaks:
 *  - the status is one of the four; HELLO_MALFORMED and HELLO_NOT_TLS have a message,
 *    HELLO_NEED_MORE has none and only comes for fewer than HELLO_MAX bytes; *out is all zero
 *    unless HELLO_OK;
 *  - HELLO_OK: consumed <= len, the sni is a lower-case DNS name of at most 253 bytes
 *    without empty labels or a trailing dot, has_sni matches it, flags agree
 *    (alpn_* only with has_alpn, max_version >= 0x0301);
 *  - prefixes agree with the whole: a prefix gives HELLO_NEED_MORE or the same status and
 *    message; HELLO_OK only once it holds consumed bytes, and then the same result;
 *  - a hello that parsed, re-cut into records of another size, parses to the same result.
 * Seed corpus: tests/fuzz/corpus/hello/.
 */
#include "common/compat.h"

#include "tls/hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Room for a wrapped input: every byte in its own record at worst is capped below. */
#define FUZZ_HELLO_BUF (HELLO_MAX * 2)

static uint8_t fuzz_hello_wrapped[FUZZ_HELLO_BUF];
static uint8_t fuzz_hello_payload[FUZZ_HELLO_BUF];

static void fuzz_hello_check(int ok)
{
    if (!ok)
        abort();
}

static enum hello_status fuzz_hello_parse(const uint8_t *in, size_t len, struct hello *h, char *err,
                                          size_t errlen)
{
    uint8_t *copy = malloc(len ? len : 1);
    enum hello_status st;

    fuzz_hello_check(copy != NULL);
    if (len > 0)
        memcpy(copy, in, len);
    st = hello_parse(copy, len, h, err, errlen);
    free(copy);
    return st;
}

static int fuzz_hello_is_zero(const struct hello *h)
{
    static const struct hello zero;

    return memcmp(h, &zero, sizeof(*h)) == 0;
}

static int fuzz_hello_same(const struct hello *a, const struct hello *b)
{
    return strcmp(a->sni, b->sni) == 0 && a->has_sni == b->has_sni && a->has_ech == b->has_ech &&
           a->has_alpn == b->has_alpn && a->alpn_h2 == b->alpn_h2 &&
           a->alpn_http11 == b->alpn_http11 && a->alpn_other == b->alpn_other &&
           a->tls13 == b->tls13 && a->legacy_version == b->legacy_version &&
           a->max_version == b->max_version;
}

static void fuzz_hello_check_sni(const struct hello *h)
{
    size_t n = strnlen(h->sni, sizeof(h->sni));
    size_t label = 0;

    fuzz_hello_check(n <= HELLO_MAX_SNI);
    fuzz_hello_check(h->has_sni == (n > 0));
    for (size_t i = 0; i < n; i++) {
        char c = h->sni[i];
        if (c == '.') {
            fuzz_hello_check(label > 0);
            label = 0;
            continue;
        }
        fuzz_hello_check((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_');
        label++;
        fuzz_hello_check(label <= 63);
    }
    fuzz_hello_check(n == 0 || label > 0);
}

static void fuzz_hello_check_result(enum hello_status st, const struct hello *h, const char *err,
                                    size_t len)
{
    fuzz_hello_check(st == HELLO_OK || st == HELLO_NEED_MORE || st == HELLO_NOT_TLS ||
                     st == HELLO_MALFORMED);
    if (st != HELLO_OK)
        fuzz_hello_check(fuzz_hello_is_zero(h));
    if (st == HELLO_MALFORMED || st == HELLO_NOT_TLS)
        fuzz_hello_check(err[0] != '\0');
    if (st == HELLO_NEED_MORE)
        fuzz_hello_check(err[0] == '\0' && len < HELLO_MAX);
    if (st != HELLO_OK)
        return;
    fuzz_hello_check(err[0] == '\0');
    fuzz_hello_check(h->consumed <= len && h->consumed >= 5 + 4 + 41);
    fuzz_hello_check(h->consumed <= HELLO_MAX);
    fuzz_hello_check_sni(h);
    fuzz_hello_check(h->has_alpn || (!h->alpn_h2 && !h->alpn_http11 && !h->alpn_other));
    fuzz_hello_check(!h->has_alpn || h->alpn_h2 || h->alpn_http11 || h->alpn_other);
    fuzz_hello_check(h->legacy_version >= 0x0301 && h->legacy_version <= 0x03ff);
    fuzz_hello_check(h->max_version >= 0x0301 && h->max_version <= 0x03ff);
    fuzz_hello_check(!h->tls13 || h->max_version >= 0x0304);
}

/* Where to cut: every position for short inputs, otherwise a spread plus the ends. */
static size_t fuzz_hello_split(size_t size, size_t i, size_t consumed)
{
    if (size <= 300)
        return i;
    if (i == 0)
        return consumed > 0 ? consumed - 1 : 0;
    if (i == 1)
        return consumed;
    return size * (i - 2) / 30;
}

static size_t fuzz_hello_nsplits(size_t size)
{
    return size <= 300 ? size + 1 : 32;
}

/* Wrap msg (len bytes of handshake message) in records of at most frag bytes. */
static size_t fuzz_hello_frame(const uint8_t *msg, size_t len, size_t frag, uint8_t *out,
                               size_t cap)
{
    size_t done = 0, n = 0;

    while (done < len && n + 5 + 1 <= cap) {
        size_t k = len - done;
        if (k > frag)
            k = frag;
        if (k > cap - n - 5)
            k = cap - n - 5;
        out[n] = 22;
        out[n + 1] = 3;
        out[n + 2] = 1;
        out[n + 3] = (uint8_t)(k >> 8);
        out[n + 4] = (uint8_t)k;
        memcpy(out + n + 5, msg + done, k);
        n += 5 + k;
        done += k;
    }
    return n;
}

/* The handshake bytes of the records that carried a parsed hello. */
static size_t fuzz_hello_payload_of(const uint8_t *in, size_t consumed, uint8_t *out)
{
    size_t pos = 0, n = 0;

    while (pos < consumed) {
        size_t k;
        fuzz_hello_check(pos + 5 <= consumed && in[pos] == 22);
        k = (size_t)in[pos + 3] << 8 | in[pos + 4];
        fuzz_hello_check(k > 0 && pos + 5 + k <= consumed);
        memcpy(out + n, in + pos + 5, k);
        n += k;
        pos += 5 + k;
    }
    return n;
}

static void fuzz_hello_one(const uint8_t *in, size_t size, unsigned knob)
{
    struct hello whole, part;
    char err[256], perr[256];
    enum hello_status st = fuzz_hello_parse(in, size, &whole, err, sizeof(err));

    fuzz_hello_check_result(st, &whole, err, size);

    for (size_t i = 0; i < fuzz_hello_nsplits(size); i++) {
        size_t k = fuzz_hello_split(size, i, st == HELLO_OK ? whole.consumed : 0);
        enum hello_status pst;
        if (k > size)
            continue;
        pst = fuzz_hello_parse(in, k, &part, perr, sizeof(perr));
        fuzz_hello_check_result(pst, &part, perr, k);
        if (pst == HELLO_NEED_MORE) {
            fuzz_hello_check(st != HELLO_OK || k < whole.consumed);
            continue;
        }
        fuzz_hello_check(pst == st && strcmp(err, perr) == 0);
        if (st == HELLO_OK) {
            fuzz_hello_check(k >= whole.consumed && part.consumed == whole.consumed);
            fuzz_hello_check(fuzz_hello_same(&part, &whole));
        }
    }

    if (st == HELLO_OK) {
        /* Re-cut into records of another size: same hello. */
        size_t plen = fuzz_hello_payload_of(in, whole.consumed, fuzz_hello_payload);
        size_t frag = 1 + knob * 61 % HELLO_MAX_RECORD;
        size_t n;
        if (plen + 5 * ((plen + frag - 1) / frag) <= HELLO_MAX) {
            n = fuzz_hello_frame(fuzz_hello_payload, plen, frag, fuzz_hello_wrapped,
                                 sizeof(fuzz_hello_wrapped));
            fuzz_hello_check(fuzz_hello_parse(fuzz_hello_wrapped, n, &part, perr, sizeof(perr)) ==
                             HELLO_OK);
            fuzz_hello_check(fuzz_hello_same(&part, &whole) && part.consumed == n);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t body[FUZZ_HELLO_BUF];
    unsigned knob = size > 0 ? data[size - 1] : 0;
    size_t frag = knob < 8 ? 1 + knob : HELLO_MAX_RECORD - (size_t)(255 - knob) * 60;
    size_t n;

    if (size > HELLO_MAX + 1024)
        return 0;

    /* 1: the raw stream. */
    fuzz_hello_one(data, size, knob);

    /* 2: the input as a handshake message, in records. */
    n = fuzz_hello_frame(data, size, frag, fuzz_hello_wrapped, sizeof(fuzz_hello_wrapped));
    fuzz_hello_one(fuzz_hello_wrapped, n, knob + 1);

    /* 3: the input as a ClientHello body behind a correct handshake header, in records. */
    body[0] = 1;
    body[1] = (uint8_t)(size >> 16);
    body[2] = (uint8_t)(size >> 8);
    body[3] = (uint8_t)size;
    if (size > 0)
        memcpy(body + 4, data, size);
    n = fuzz_hello_frame(body, size + 4, frag, fuzz_hello_wrapped, sizeof(fuzz_hello_wrapped));
    fuzz_hello_one(fuzz_hello_wrapped, n, knob + 2);
    return 0;
}
