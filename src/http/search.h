/*
 * search.h -- the search terms in a request URL, for the access log and the monitor.
 *
 * One table names the sites where young people search (search engines, YouTube,
 * Wikipedia, TikTok, Pinterest, Reddit, Amazon, ...): a host (with any country
 * domain where the site has them), a path, and the query parameter that carries
 * the terms. The terms come out percent-decoded, '+' as a space, control
 * characters as spaces, cut at a character boundary to fit.
 */
#ifndef HAVEN_HTTP_SEARCH_H
#define HAVEN_HTTP_SEARCH_H

#include <stddef.h>

#include "http/url.h"

#define SEARCH_TERMS_MAX 512

/*
 * If u is a search on a site of the table, write its terms (NUL-terminated, at
 * most size - 1 bytes) to out and return the site's name ("google", "youtube");
 * otherwise return NULL and leave out empty. Pure; allocates nothing.
 */
const char *search_terms(const struct url *u, char *out, size_t size);

#endif
