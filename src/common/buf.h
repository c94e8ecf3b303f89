/*
 * buf.h -- a growable byte buffer with a cap (STYLE.md rule 11).
 *
 * Every buffer that grows says at creation how far it may grow. Appending
 * past the cap fails and marks the buffer as overflowed; the caller turns
 * that into a protocol error, never an unbounded allocation.
 */
#ifndef HAVEN_COMMON_BUF_H
#define HAVEN_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *p;
    size_t len;
    size_t size;  /* allocated */
    size_t cap;   /* never grow beyond this */
    int overflow; /* an append did not fit */
};

/* Start an empty buffer that may grow to cap bytes. Nothing is allocated yet. */
void buf_init(struct buf *b, size_t cap);
/* Free the memory; the buffer is empty and usable again. */
void buf_cleanup(struct buf *b);
/* Forget the contents, keep the memory and the cap. */
void buf_reset(struct buf *b);

/* Append; returns 0, or -1 (and sets overflow) when the cap would be passed. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Append s with the five HTML special characters escaped (& < > " '). */
int buf_append_html(struct buf *b, const char *s);

/* Remove the first n bytes. */
void buf_consume(struct buf *b, size_t n);

#endif
