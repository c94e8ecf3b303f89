/* Fuzz the list importers: every line of the input through import_line, then compile
 * and look up what was imported. Nothing may crash; every accepted entry must match. */
#include "common/compat.h"

#include "catdb/build.h"
#include "catdb/catdb.h"
#include "catdb/import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct catdb_builder *b = catdb_builder_create();
    struct import_ctx c = {.b = b};
    int list = catdb_builder_add_list(b, "fuzz", "fuzz");
    const char *p = (const char *)data, *end = p + size, *why;
    char err[256];
    size_t len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        enum import_result r = import_line(&c, list, p, n, &why);
        if (r == IMPORT_REJECTED && (!why || !*why))
            abort(); /* every rejection names its reason */
        p += n + 1;
    }
    void *img = catdb_builder_image(b, "fuzz", &len, err, sizeof(err));
    if (img) {
        struct catdb *db = catdb_open_buffer(img, len, 1, err, sizeof(err));
        if (!db)
            abort(); /* what we build, we must be able to open */
        catdb_close(db);
    }
    catdb_builder_destroy(b);
    return 0;
}
