/* Fuzz the phrase scanner. The first byte of the input picks the piece size for the
 * stream (1 to 256 bytes); the rest is the text, scanned in one go and as a stream.
 * Invariants: both never fail; severities are 0..5 and agree with the hits; the hits
 * are at most MATCH_MAX_HITS, strongest first; every excerpt is valid UTF-8 on one line. */
#include "common/compat.h"

#include <stdlib.h>

#include <utf8proc.h>

#include "monitor/library.h"
#include "monitor/match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char lib_text[] = "language en\n"
                               "theme self-harm {\n"
                               "    severity 4\n"
                               "    phrase \"cut myself\" context -3 mango onion context +1 again\n"
                               "    exclude \"cut myself some slack\"\n"
                               "}\n"
                               "theme suicide {\n"
                               "    phrase \"kill myself\" 5\n"
                               "    phrase \"kms\" 4 context -3 run walk\n"
                               "    phrase \"zabić się\" 5\n"
                               "}\n"
                               "theme drugs {\n"
                               "    phrase \"buy weed\" 3\n"
                               "}\n";

static void check(const struct match_result *r)
{
    int best = 0;

    if (r->severity < 0 || r->severity > 5 || r->nhits < 0 || r->nhits > MATCH_MAX_HITS)
        abort();
    for (int i = 0; i < r->nhits; i++) {
        const struct match_hit *h = &r->hits[i];
        size_t len = strlen(h->excerpt);
        if (h->severity < 1 || h->severity > 5 || (i > 0 && h->severity > r->hits[i - 1].severity))
            abort();
        if (h->severity > best)
            best = h->severity;
        for (size_t k = 0; k < len;) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t n =
                utf8proc_iterate((const uint8_t *)h->excerpt + k, (utf8proc_ssize_t)(len - k), &cp);
            if (n <= 0 || cp < 0x20)
                abort();
            k += (size_t)n;
        }
    }
    if (best != r->severity)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct match_db *db;
    static struct match_scratch *scr;
    struct match_result r;
    struct match_stream *ms;
    size_t piece;
    char err[256];

    if (!db) {
        struct library *l =
            library_load_buffer("fuzz.lib", lib_text, strlen(lib_text), err, sizeof(err));
        db = l ? match_db_build(&l, 1, err, sizeof(err)) : NULL;
        if (!db || match_scratch_ensure(&scr, db) < 0)
            abort();
    }
    if (size == 0)
        return 0;
    piece = (size_t)data[0] + 1;
    data++;
    size--;
    if (match_text(db, scr, (const char *)data, size, NULL, &r) < 0)
        abort();
    check(&r);
    ms = match_stream_open(db);
    if (!ms)
        abort();
    for (size_t off = 0; off < size; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        if (match_stream_feed(ms, scr, (const char *)data + off, n) < 0)
            abort();
    }
    if (match_stream_close(ms, scr, NULL, &r) < 0)
        abort();
    check(&r);
    return 0;
}
