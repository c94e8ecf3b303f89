/*
 * csv.c -- the RFC 4180 reader (see csv.h).
 *
 * Every field is copied into one buffer per record so that quoted fields can
 * be unescaped without writing to the input; the buffer's cap bounds what a
 * single record can make us hold.
 */
#include "common/compat.h"

#include "common/xalloc.h"
#include "ident/csv.h"

void csv_init(struct csv *r, const char *data, size_t len)
{
    r->p = data;
    r->end = data + len;
    r->line = 1;
    r->buf = xmalloc(CSV_MAX_RECORD);
    if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
        r->p += 3;
}

void csv_cleanup(struct csv *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* A line break starts at p: LF, or CR LF. A lone CR is not one. */
static int csv_at_eol(const struct csv *r)
{
    return r->p < r->end &&
           (r->p[0] == '\n' || (r->p[0] == '\r' && r->p + 1 < r->end && r->p[1] == '\n'));
}

/* Report a malformed record at the current line and skip past the next line break. */
static int csv_bad(struct csv *r, struct csv_record *rec, char *err, size_t errlen, const char *why)
{
    const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));

    snprintf(err, errlen, "%s", why);
    rec->line = r->line;
    rec->nfields = 0;
    r->p = nl ? nl + 1 : r->end;
    r->line++;
    return -1;
}

int csv_next(struct csv *r, struct csv_record *rec, char *err, size_t errlen)
{
    size_t used = 0;

    rec->nfields = 0;
    rec->line = r->line;
    if (r->p >= r->end)
        return 0;
    for (;;) {
        size_t start = used;

        if (rec->nfields == CSV_MAX_FIELDS)
            return csv_bad(r, rec, err, errlen, "more than 256 fields in a record");
        if (r->p < r->end && r->p[0] == '"') {
            unsigned long opened = r->line;
            r->p++;
            for (;;) {
                char c;
                if (r->p >= r->end) {
                    snprintf(err, errlen, "the quoted field opened on line %lu is never closed",
                             opened);
                    rec->line = opened;
                    rec->nfields = 0;
                    return -1;
                }
                c = *r->p++;
                if (c == '"') {
                    if (r->p < r->end && r->p[0] == '"') {
                        r->p++;
                    } else {
                        break;
                    }
                }
                if (c == '\n')
                    r->line++;
                if (used == CSV_MAX_RECORD)
                    return csv_bad(r, rec, err, errlen, "a record longer than 64 KiB");
                r->buf[used++] = c;
            }
            if (r->p < r->end && r->p[0] != ',' && !csv_at_eol(r))
                return csv_bad(r, rec, err, errlen,
                               "text after the closing quote of a field (a quote inside a "
                               "quoted field must be doubled: \"\")");
        } else {
            while (r->p < r->end && r->p[0] != ',' && !csv_at_eol(r)) {
                if (r->p[0] == '"')
                    return csv_bad(r, rec, err, errlen,
                                   "a quote inside an unquoted field (quote the whole field and "
                                   "double the quote: \"\")");
                if (r->p[0] == '\r')
                    return csv_bad(r, rec, err, errlen,
                                   "a carriage return that does not end a line (save the file "
                                   "with CRLF or LF line endings)");
                if (used == CSV_MAX_RECORD)
                    return csv_bad(r, rec, err, errlen, "a record longer than 64 KiB");
                r->buf[used++] = *r->p++;
            }
        }
        rec->field[rec->nfields++] = slice_make(r->buf + start, used - start);
        if (r->p >= r->end)
            return 1;
        if (r->p[0] == ',') {
            r->p++;
            continue;
        }
        /* A line break: CR LF or LF. */
        if (r->p[0] == '\r')
            r->p++;
        r->p++;
        r->line++;
        return 1;
    }
}
