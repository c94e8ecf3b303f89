/*
 * format.h -- the on-disk layout of a category database, shared by the
 * builder (build.c) and the reader (catdb.c) only. See catdb.h for the
 * description; bump CATDB_VERSION on any change.
 */
#ifndef HAVEN_CATDB_FORMAT_H
#define HAVEN_CATDB_FORMAT_H

#include <stdint.h>

#define CATDB_MAGIC "HAVENCDB"
#define CATDB_VERSION 1

struct catdb_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint64_t file_size;
    uint32_t crc; /* CRC-32 of the whole file with this field zero */
    uint32_t slot_bits;
    int64_t created;
    uint32_t nlists, lists_off;
    uint32_t nsets, sets_off;
    uint64_t slots_off;
    uint32_t strings_off, strings_len;
    uint32_t nkeys, nhosts, nurls, nips;
    uint32_t min_labels, max_labels; /* label counts of host keys */
    uint32_t source;                 /* string offset */
    uint32_t reserved[7];
};

struct catdb_list_rec {
    uint32_t name;     /* string offset */
    uint32_t category; /* string offset */
    uint32_t entries;  /* entries read for this list, duplicates included */
    uint32_t reserved;
};

/* A slot: fingerprint in bits 63..18, flags in 17..16, list set in 15..0. */
#define CATDB_SLOT_ENTRY (1ULL << 16)
#define CATDB_SLOT_URLS (1ULL << 17)
#define CATDB_SLOT_FP_SHIFT 18
#define CATDB_SLOT_SET(s) ((uint16_t)((s)&0xffff))

static inline uint64_t catdb_fingerprint(uint64_t key)
{
    uint64_t fp = key >> CATDB_SLOT_FP_SHIFT;

    return fp ? fp : 1;
}

#endif
