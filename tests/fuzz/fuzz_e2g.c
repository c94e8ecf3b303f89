/*
 * Fuzz the E2Guardian phrase list importer: arbitrary bytes as a list file
 * (includes off). It never crashes, every fatal error names the list, and
 * the library it writes always loads with library_load_buffer.
 */
#include "common/compat.h"

#include "monitor/e2g.h"
#include "monitor/library.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct e2g_options o = {LIB_DRUGS, "en", E2G_ENC_AUTO, 1};
    struct e2g *e;
    struct library *l;
    char err[1024], *out;
    size_t len;

    if (size > 0)
        o.encoding = (enum e2g_encoding)(data[0] % 3);
    e = e2g_create(&o);
    if (e2g_add_buffer(e, "fuzz.txt", (const char *)data, size, err, sizeof(err)) < 0) {
        if (strncmp(err, "fuzz.txt", 8) != 0)
            abort();
        e2g_destroy(e);
        return 0;
    }
    for (size_t i = 0; i < e2g_warning_count(e) && e2g_warning(e, i); i++) {
        if (strncmp(e2g_warning(e, i), "fuzz.txt:", 9) != 0)
            abort();
    }
    out = e2g_render(e, &len, err, sizeof(err));
    if (out) {
        if (strlen(out) != len)
            abort();
        l = library_load_buffer("fuzz.lib", out, len, err, sizeof(err));
        if (!l) {
            fprintf(stderr, "imported library does not load: %s\n%s\n", err, out);
            abort();
        }
        if (library_count(l) != e2g_stats(e)->phrases)
            abort();
        library_free(l);
    }
    free(out);
    e2g_destroy(e);
    return 0;
}
