#include "common/compat.h"

#include "common/buf.h"
#include "common/xalloc.h"

void buf_init(struct buf *b, size_t cap)
{
    b->p = NULL;
    b->len = b->size = 0;
    b->cap = cap;
    b->overflow = 0;
}

void buf_cleanup(struct buf *b)
{
    free(b->p);
    buf_init(b, b->cap);
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    b->overflow = 0;
}

/* Make room for n more bytes (and a NUL); -1 if that passes the cap. */
static int buf_reserve(struct buf *b, size_t n)
{
    size_t want = b->len + n + 1, size;

    if (n > b->cap || b->len + n > b->cap) {
        b->overflow = 1;
        return -1;
    }
    if (want <= b->size)
        return 0;
    size = b->size ? b->size : 256;
    while (size < want)
        size *= 2;
    if (size > b->cap + 1)
        size = b->cap + 1;
    b->p = xrealloc(b->p, size);
    b->size = size;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return -1;
    if (len > 0)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    int n;

    va_copy(copy, ap);
    n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0 || buf_reserve(b, (size_t)n) < 0)
        return -1;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int buf_append_html(struct buf *b, const char *s)
{
    for (; *s; s++) {
        const char *esc = NULL;
        switch (*s) {
        case '&':
            esc = "&amp;";
            break;
        case '<':
            esc = "&lt;";
            break;
        case '>':
            esc = "&gt;";
            break;
        case '"':
            esc = "&quot;";
            break;
        case '\'':
            esc = "&#39;";
            break;
        default:
            break;
        }
        if (esc ? buf_append_str(b, esc) < 0 : buf_append(b, s, 1) < 0)
            return -1;
    }
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->p, b->p + n, b->len - n);
        b->len -= n;
    }
    if (b->p)
        b->p[b->len] = '\0';
}
