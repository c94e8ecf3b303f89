#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "catdb/build.h"
#include "catdb/catdb.h"
#include "catdb/format.h"
#include "catdb/key.h"
#include "common/clock.h"
#include "common/xalloc.h"

enum build_kind { BUILD_HOST, BUILD_URL, BUILD_IP, BUILD_MARK };

struct build_key {
    uint64_t key;
    uint64_t lists[CATDB_SET_WORDS];
    uint8_t flags; /* CATDB_SLOT_ENTRY / CATDB_SLOT_URLS, shifted down by 16 */
    uint8_t kind;  /* enum build_kind of the first entry */
    uint8_t labels;
};

struct build_list {
    char *name;
    char *category;
    uint32_t entries;
};

struct catdb_builder {
    struct build_list lists[CATDB_MAX_LISTS];
    int nlists;
    struct build_key *keys;
    size_t nkeys, keys_cap;
    uint32_t *table; /* key index + 1; 0 = empty */
    size_t table_cap;
    uint64_t entries;
};

struct catdb_builder *catdb_builder_create(void)
{
    struct catdb_builder *b = xcalloc(1, sizeof(*b));

    b->table_cap = 1024;
    b->table = xcalloc(b->table_cap, sizeof(*b->table));
    return b;
}

void catdb_builder_destroy(struct catdb_builder *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->nlists; i++) {
        free(b->lists[i].name);
        free(b->lists[i].category);
    }
    free(b->keys);
    free(b->table);
    free(b);
}

int catdb_builder_add_list(struct catdb_builder *b, const char *name, const char *category)
{
    for (int i = 0; i < b->nlists; i++) {
        if (strcmp(b->lists[i].name, name) == 0)
            return i;
    }
    if (b->nlists == CATDB_MAX_LISTS)
        return -1;
    b->lists[b->nlists].name = xstrdup(name);
    b->lists[b->nlists].category = xstrdup(category);
    return b->nlists++;
}

static void build_rehash(struct catdb_builder *b)
{
    size_t cap = b->table_cap * 2;
    uint32_t *t = xcalloc(cap, sizeof(*t));

    for (size_t k = 0; k < b->nkeys; k++) {
        size_t i = b->keys[k].key & (cap - 1);
        while (t[i])
            i = (i + 1) & (cap - 1);
        t[i] = (uint32_t)(k + 1);
    }
    free(b->table);
    b->table = t;
    b->table_cap = cap;
}

/* The record for key, created empty if new. */
static struct build_key *build_get(struct catdb_builder *b, uint64_t key, enum build_kind kind,
                                   int labels)
{
    size_t i;

    if ((b->nkeys + 1) * 2 > b->table_cap)
        build_rehash(b);
    i = key & (b->table_cap - 1);
    while (b->table[i]) {
        struct build_key *k = &b->keys[b->table[i] - 1];
        if (k->key == key)
            return k;
        i = (i + 1) & (b->table_cap - 1);
    }
    b->keys = xgrow(b->keys, &b->keys_cap, b->nkeys + 1, sizeof(*b->keys));
    struct build_key *k = &b->keys[b->nkeys];
    memset(k, 0, sizeof(*k));
    k->key = key;
    k->kind = (uint8_t)kind;
    k->labels = (uint8_t)(labels > 255 ? 255 : labels);
    b->table[i] = (uint32_t)++b->nkeys;
    return k;
}

static int build_labels(const char *host, size_t len)
{
    int n = 1;

    for (size_t i = 0; i < len; i++)
        n += host[i] == '.';
    return n;
}

static void build_entry(struct catdb_builder *b, int list, uint64_t key, enum build_kind kind,
                        int labels)
{
    struct build_key *k = build_get(b, key, kind, labels);

    if (!(k->flags & 1)) {
        k->flags |= 1;
        k->kind = (uint8_t)kind;
    }
    k->lists[list / 64] |= 1ULL << (list % 64);
    b->lists[list].entries++;
    b->entries++;
}

void catdb_builder_add_host(struct catdb_builder *b, int list, const char *host, size_t len,
                            int is_ip)
{
    build_entry(b, list, key_host(host, len), is_ip ? BUILD_IP : BUILD_HOST,
                is_ip ? 0 : build_labels(host, len));
}

void catdb_builder_add_url(struct catdb_builder *b, int list, const char *host, size_t hlen,
                           int is_ip, const char *rest, size_t rlen)
{
    int labels = build_labels(host, hlen);
    struct build_key *mark;

    build_entry(b, list, key_url(host, hlen, rest, rlen), BUILD_URL, 0);
    mark = build_get(b, key_host(host, hlen), BUILD_MARK, is_ip ? 0 : labels);
    mark->flags |= 2;
}

uint64_t catdb_builder_entries(const struct catdb_builder *b)
{
    return b->entries;
}

uint64_t catdb_builder_keys(const struct catdb_builder *b)
{
    return b->nkeys;
}

static uint64_t build_set_hash(const uint64_t *bits)
{
    uint64_t h = 0;

    for (int w = 0; w < CATDB_SET_WORDS; w++)
        h = key_mix(h ^ bits[w]);
    return h;
}

/* Rebuild the set index t (cap slots) for sets 1..nsets-1. */
static uint32_t *build_set_index(const uint64_t *sets, size_t nsets, size_t cap)
{
    uint32_t *t = xcalloc(cap, sizeof(*t));

    for (size_t s = 1; s < nsets; s++) {
        size_t j = build_set_hash(sets + s * CATDB_SET_WORDS) & (cap - 1);
        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = (uint32_t)s;
    }
    return t;
}

/*
 * Intern the list sets: give each distinct bitset a number, set 0 the empty
 * one, and record each key's set in set_of. Returns the number of sets, or
 * more than 65,536 when they do not fit the slot format.
 */
static size_t build_sets(struct catdb_builder *b, uint16_t *set_of, uint64_t **sets_out)
{
    size_t cap = 1024, nsets = 1, sets_cap = 64;
    uint64_t *sets = xcalloc(sets_cap, CATDB_SET_WORDS * 8);
    uint32_t *t = build_set_index(sets, nsets, cap);

    for (size_t k = 0; k < b->nkeys && nsets <= 65536; k++) {
        const uint64_t *bits = b->keys[k].lists;
        size_t i;

        set_of[k] = 0;
        if ((bits[0] | bits[1] | bits[2] | bits[3]) == 0)
            continue;
        if ((nsets + 1) * 2 > cap) {
            free(t);
            cap *= 2;
            t = build_set_index(sets, nsets, cap);
        }
        for (i = build_set_hash(bits) & (cap - 1); t[i]; i = (i + 1) & (cap - 1)) {
            if (memcmp(sets + (size_t)t[i] * CATDB_SET_WORDS, bits, CATDB_SET_WORDS * 8) == 0)
                break;
        }
        if (!t[i]) {
            sets = xgrow(sets, &sets_cap, nsets + 1, CATDB_SET_WORDS * 8);
            memcpy(sets + nsets * CATDB_SET_WORDS, bits, CATDB_SET_WORDS * 8);
            t[i] = (uint32_t)nsets++;
        }
        set_of[k] = (uint16_t)t[i];
    }
    free(t);
    *sets_out = sets;
    return nsets;
}

static size_t build_align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

void *catdb_builder_image(struct catdb_builder *b, const char *source, size_t *len, char *err,
                          size_t errlen)
{
    uint16_t *set_of = xmalloc((b->nkeys + 1) * sizeof(*set_of));
    uint64_t *sets = NULL;
    size_t nsets = build_sets(b, set_of, &sets);
    struct catdb_header h;
    unsigned char *img = NULL;
    size_t strings_len = 0, off;
    uint32_t slot_bits = 4;

    if (nsets > 65536) {
        snprintf(err, errlen, "the lists combine into more than 65,536 distinct sets");
        goto out;
    }
    while (b->nkeys * 4 > 3 * ((size_t)1 << slot_bits))
        slot_bits++;

    strings_len = strlen(source) + 1;
    for (int i = 0; i < b->nlists; i++)
        strings_len += strlen(b->lists[i].name) + strlen(b->lists[i].category) + 2;

    memset(&h, 0, sizeof(h));
    memcpy(h.magic, CATDB_MAGIC, 8);
    h.version = CATDB_VERSION;
    h.header_size = sizeof(h);
    h.created = clock_now();
    h.slot_bits = slot_bits;
    h.nlists = (uint32_t)b->nlists;
    h.lists_off = sizeof(h);
    h.nsets = (uint32_t)nsets;
    h.sets_off = (uint32_t)build_align8(h.lists_off + h.nlists * sizeof(struct catdb_list_rec));
    h.slots_off = build_align8(h.sets_off + (size_t)nsets * CATDB_SET_WORDS * 8);
    h.strings_off = (uint32_t)(h.slots_off + ((size_t)8 << slot_bits));
    h.strings_len = (uint32_t)strings_len;
    h.file_size = h.strings_off + strings_len;
    h.min_labels = 255;
    h.max_labels = 1;
    *len = h.file_size;
    img = xcalloc(1, h.file_size);

    /* Strings and list records. */
    char *str = (char *)img + h.strings_off;
    struct catdb_list_rec *lr = (struct catdb_list_rec *)(img + h.lists_off);
    off = 0;
    memcpy(str, source, strlen(source) + 1);
    h.source = 0;
    off += strlen(source) + 1;
    for (int i = 0; i < b->nlists; i++) {
        lr[i].name = (uint32_t)off;
        memcpy(str + off, b->lists[i].name, strlen(b->lists[i].name) + 1);
        off += strlen(b->lists[i].name) + 1;
        lr[i].category = (uint32_t)off;
        memcpy(str + off, b->lists[i].category, strlen(b->lists[i].category) + 1);
        off += strlen(b->lists[i].category) + 1;
        lr[i].entries = b->lists[i].entries;
    }
    memcpy(img + h.sets_off, sets, (size_t)nsets * CATDB_SET_WORDS * 8);

    /* Slots. */
    uint64_t *slots = (uint64_t *)(img + h.slots_off);
    uint64_t mask = ((uint64_t)1 << slot_bits) - 1;
    for (size_t k = 0; k < b->nkeys; k++) {
        const struct build_key *bk = &b->keys[k];
        uint64_t i = bk->key & mask;
        while (slots[i])
            i = (i + 1) & mask;
        slots[i] = catdb_fingerprint(bk->key) << CATDB_SLOT_FP_SHIFT | (uint64_t)bk->flags << 16 |
                   set_of[k];
        h.nkeys++;
        if (bk->flags & 1) {
            h.nhosts += bk->kind == BUILD_HOST;
            h.nurls += bk->kind == BUILD_URL;
            h.nips += bk->kind == BUILD_IP;
        }
        if (bk->labels > 0) {
            if (bk->labels < h.min_labels)
                h.min_labels = bk->labels;
            if (bk->labels > h.max_labels)
                h.max_labels = bk->labels;
        }
    }
    if (h.min_labels == 255)
        h.min_labels = 1;
    memcpy(img, &h, sizeof(h));
    h.crc = (uint32_t)crc32(0L, img, (uInt)sizeof(h));
    h.crc = (uint32_t)crc32(h.crc, img + sizeof(h), (uInt)(h.file_size - sizeof(h)));
    memcpy(img, &h, sizeof(h));
out:
    free(set_of);
    free(sets);
    return img;
}

int catdb_builder_write(struct catdb_builder *b, const char *path, const char *source, char *err,
                        size_t errlen)
{
    char tmp[4096];
    size_t len = 0, done = 0;
    unsigned char *img;
    int fd = -1, rc = -1;

    img = catdb_builder_image(b, source, &len, err, errlen);
    if (!img)
        return -1;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s: path too long", path);
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    while (done < len) {
        ssize_t n = write(fd, img + done, len - done);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "%s: write: %s", tmp, strerror(errno));
            goto out;
        }
        done += (size_t)n;
    }
    if (fsync(fd) == -1 || close(fd) == -1) {
        fd = -1;
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) == -1) {
        snprintf(err, errlen, "%s: rename: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd != -1)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(img);
    return rc;
}
