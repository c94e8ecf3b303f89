/* Fuzz the database validator: arbitrary bytes must be refused or be safe to look up in.
 * The checksum would reject nearly every mutation, so the harness recomputes it first: that
 * way the fuzzer reaches the bounds checks behind it. */
#include "common/compat.h"

#include <zlib.h>

#include "catdb/catdb.h"
#include "catdb/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *copy = malloc(size ? size : 1);
    struct catdb_match m;
    char err[256];

    memcpy(copy, data, size);
    if (size >= sizeof(struct catdb_header)) {
        struct catdb_header h;
        memcpy(&h, copy, sizeof(h));
        h.crc = 0;
        h.file_size = size;
        memcpy(copy, &h, sizeof(h));
        h.crc = (uint32_t)crc32(0L, copy, (uInt)size);
        memcpy(copy, &h, sizeof(h));
    }
    struct catdb *db = catdb_open_buffer(copy, size, 1, err, sizeof(err));
    if (!db) {
        free(copy);
        return 0;
    }
    catdb_lookup_host(db, "a.b.example.com", 15, 0, &m);
    catdb_lookup_host(db, "192.0.2.1", 9, 1, &m);
    for (int i = 0; i < m.nhits; i++)
        catdb_set_lists(db, m.hits[i].set);
    struct catdb_stats st;
    catdb_get_stats(db, &st);
    for (uint32_t i = 0; i < st.nlists; i++) {
        if (strlen(catdb_list_name(db, (int)i)) > size || !catdb_list_category(db, (int)i))
            abort();
    }
    catdb_close(db);
    return 0;
}
