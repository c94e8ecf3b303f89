/*
 * csv.h -- an RFC 4180 CSV reader over a buffer in memory.
 *
 * Fields are separated by commas; a field may be quoted with '"', inside
 * which commas, line breaks and doubled quotes ("") are data. Lines end with
 * CRLF or LF. A UTF-8 byte-order mark at the start (Excel writes one) is
 * skipped. The reader does not interpret bytes otherwise: checking UTF-8 and
 * what a field means is the caller's job.
 *
 * A malformed record (a quote inside an unquoted field, text after a closing
 * quote, a quoted field never closed, a record over the caps) is reported
 * with its line and skipped up to the next line break, so the caller can
 * report every bad row in one pass. The reader never writes to the input.
 */
#ifndef HAVEN_IDENT_CSV_H
#define HAVEN_IDENT_CSV_H

#include <stddef.h>

#include "common/slice.h"

/* Caps: fields in a record, and bytes in one record's fields together. */
#define CSV_MAX_FIELDS 256
#define CSV_MAX_RECORD 65536

struct csv_record {
    unsigned long line; /* first line of the record (1-based); for an error, the bad line */
    size_t nfields;
    struct slice field[CSV_MAX_FIELDS]; /* valid until the next csv_next or csv_cleanup */
};

/* Reader state; the members are private to csv.c. */
struct csv {
    const char *p, *end;
    unsigned long line;
    char *buf; /* unquoted field bytes of the current record, CSV_MAX_RECORD */
};

/* Start reading data (len bytes, owned by the caller, which must outlive the reader). */
void csv_init(struct csv *r, const char *data, size_t len);
void csv_cleanup(struct csv *r);

/*
 * Read the next record into rec. Returns 1 (a record), 0 (end of input), or -1 (a
 * malformed record: the reason in err, the line in rec->line; the reader has moved past
 * it and the next call goes on). A blank line is a record of one empty field.
 */
int csv_next(struct csv *r, struct csv_record *rec, char *err, size_t errlen);

#endif
