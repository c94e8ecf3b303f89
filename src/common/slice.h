/*
 * slice.h -- zero-copy views into a buffer someone else owns (STYLE.md rule 13).
 *
 * A slice never owns its bytes and is never NUL-terminated by us; it is valid as
 * long as the buffer it points into.
 */
#ifndef HAVEN_COMMON_SLICE_H
#define HAVEN_COMMON_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct slice {
    const char *p;
    size_t len;
};

#define SLICE_LIT(s) ((struct slice){(s), sizeof(s) - 1})

static inline struct slice slice_make(const char *p, size_t len)
{
    return (struct slice){p, len};
}

static inline struct slice slice_cstr(const char *s)
{
    return (struct slice){s, strlen(s)};
}

static inline bool slice_eq(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline bool slice_eq_cstr(struct slice a, const char *s)
{
    return slice_eq(a, slice_cstr(s));
}

/* Remove leading and trailing spaces, tabs and CR. */
static inline struct slice slice_trim(struct slice s)
{
    while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t' || s.p[0] == '\r')) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t' || s.p[s.len - 1] == '\r'))
        s.len--;
    return s;
}

#endif
