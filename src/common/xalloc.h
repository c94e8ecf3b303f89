/*
 * xalloc.h -- control-plane allocation that aborts on failure (STYLE.md rule 12).
 *
 * Use these for configuration, policy and list compilation. The request path
 * uses capped buffers instead, so no client can drive the process out of memory.
 */
#ifndef HAVEN_COMMON_XALLOC_H
#define HAVEN_COMMON_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* Grow an array of n elements of size bytes to hold at least need; returns the array. */
void *xgrow(void *p, size_t *cap, size_t need, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);

#endif
