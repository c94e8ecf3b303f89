/*
 * search.c -- the search terms in a request URL, for the access log and the monitor.
 */
#include "common/compat.h"

#include <ctype.h>

#include "http/search.h"

struct search_site {
    const char *name;
    const char *domain; /* "google" with any_tld: google.com, google.co.uk, ... */
    int any_tld;
    const char *path;  /* the path, or a prefix of it when it ends with '/' */
    const char *param; /* the query parameter with the terms */
};

static const struct search_site search_sites[] = {
    {"google", "google", 1, "/search", "q"},
    {"bing", "bing.com", 0, "/search", "q"},
    {"duckduckgo", "duckduckgo.com", 0, "/", "q"},
    {"yahoo", "search.yahoo.com", 0, "/search", "p"},
    {"ecosia", "ecosia.org", 0, "/search", "q"},
    {"brave", "search.brave.com", 0, "/search", "q"},
    {"yandex", "yandex", 1, "/search/", "text"},
    {"youtube", "youtube.com", 0, "/results", "search_query"},
    {"wikipedia", "wikipedia.org", 0, "/w/index.php", "search"},
    {"wikipedia", "wikipedia.org", 0, "/wiki/Special:Search", "search"},
    {"tiktok", "tiktok.com", 0, "/search", "q"},
    {"instagram", "instagram.com", 0, "/explore/search/", "q"},
    {"pinterest", "pinterest", 1, "/search/", "q"},
    {"reddit", "reddit.com", 0, "/search/", "q"},
    {"amazon", "amazon", 1, "/s", "k"},
};

/* Is host name, or a subdomain of it? */
static int search_host_is(const char *host, size_t len, const char *name)
{
    size_t n = strlen(name);

    if (len < n || memcmp(host + len - n, name, n) != 0)
        return 0;
    return len == n || host[len - n - 1] == '.';
}

/* Is host NAME.TLD or a subdomain of it, TLD one or two short labels (co.uk, com.tr)? */
static int search_host_any_tld(const char *host, size_t len, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i + n < len; i++) {
        if ((i == 0 || host[i - 1] == '.') && memcmp(host + i, name, n) == 0 &&
            host[i + n] == '.') {
            size_t rest = len - (i + n + 1), dots = 0;
            for (size_t k = i + n + 1; k < len; k++)
                dots += host[k] == '.';
            return rest >= 2 && rest <= 6 && dots <= 1;
        }
    }
    return 0;
}

static int search_path_is(const char *path, size_t len, const char *want)
{
    size_t n = strlen(want);

    if (want[n - 1] == '/') /* a prefix: /search/ matches /search and /search/pins/ */
        return (len >= n && memcmp(path, want, n) == 0) ||
               (len == n - 1 && memcmp(path, want, n - 1) == 0);
    return len == n && memcmp(path, want, n) == 0;
}

static int search_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode value[0..len) into out (size >= 1): '+' and controls as spaces, %XX decoded. */
static void search_decode(const char *value, size_t len, char *out, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < size; i++) {
        int c = (unsigned char)value[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < len && search_hex(value[i + 1]) >= 0 &&
                   search_hex(value[i + 2]) >= 0) {
            c = search_hex(value[i + 1]) * 16 + search_hex(value[i + 2]);
            i += 2;
        }
        out[o++] = (char)(c < 0x20 || c == 0x7f ? ' ' : c);
    }
    /* Never end inside a UTF-8 sequence. */
    if (o > 0 && (unsigned char)out[o - 1] >= 0x80) {
        size_t k = o;
        while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
            k--;
        if (k > 0 && (unsigned char)out[k - 1] >= 0xc0) {
            int need = (unsigned char)out[k - 1] >= 0xf0   ? 4
                       : (unsigned char)out[k - 1] >= 0xe0 ? 3
                                                           : 2;
            if ((int)(o - (k - 1)) < need)
                o = k - 1;
        }
    }
    out[o] = '\0';
}

const char *search_terms(const struct url *u, char *out, size_t size)
{
    const char *host = u->text + u->host_off;
    const char *path = u->text + u->path_off;
    const char *q = u->text + u->query_off;

    if (size > 0)
        out[0] = '\0';
    if (!u->has_query || size == 0 || u->host_type != URL_HOST_NAME)
        return NULL;
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(search_sites); i++) {
        const struct search_site *s = &search_sites[i];
        size_t pl = strlen(s->param);
        if (!(s->any_tld ? search_host_any_tld(host, u->host_len, s->domain)
                         : search_host_is(host, u->host_len, s->domain)) ||
            !search_path_is(path, u->path_len, s->path))
            continue;
        /* The first param=value pair of the query. */
        for (size_t at = 0; at < u->query_len;) {
            size_t end = at;
            while (end < u->query_len && q[end] != '&')
                end++;
            if (end - at > pl && memcmp(q + at, s->param, pl) == 0 && q[at + pl] == '=') {
                search_decode(q + at + pl + 1, end - at - pl - 1, out, size);
                return out[0] ? s->name : NULL;
            }
            at = end + 1;
        }
        return NULL;
    }
    return NULL;
}
