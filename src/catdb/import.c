#include "common/compat.h"

#include <archive.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catdb/build.h"
#include "catdb/import.h"
#include "catdb/key.h"
#include "catdb/taxonomy.h"
#include "common/slice.h"
#include "common/xalloc.h"
#include "http/url.h"

static int import_is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* The next white-space separated token of *s, advancing *s past it. */
static struct slice import_token(struct slice *s)
{
    struct slice t;
    size_t i = 0;

    while (i < s->len && import_is_space(s->p[i]))
        i++;
    t.p = s->p + i;
    while (i < s->len && !import_is_space(s->p[i]))
        i++;
    t.len = (size_t)(s->p + i - t.p);
    s->p += i;
    s->len -= i;
    return t;
}

static int import_parse_host(struct slice t, struct import_entry *e, const char **why)
{
    enum url_host_type type;
    int n;

    /* ".example.com" and "*.example.com" mean the domain and below: our default. */
    if (t.len > 2 && t.p[0] == '*' && t.p[1] == '.') {
        t.p += 2;
        t.len -= 2;
    } else if (t.len > 1 && t.p[0] == '.') {
        t.p++;
        t.len--;
    }
    if (memchr(t.p, '*', t.len)) {
        *why = "wildcards are only allowed as a leading \"*.\"";
        return -1;
    }
    n = url_normalize_host(t.p, t.len, e->host, &type, why);
    if (n < 0)
        return -1;
    e->is_url = 0;
    e->is_ip = type != URL_HOST_NAME;
    e->hlen = (size_t)n;
    e->rlen = 0;
    return 0;
}

static int import_parse_url(struct slice t, struct import_entry *e, const char **why)
{
    static __thread struct url u;
    const char *host;
    size_t hlen, rlen;

    if (memchr(t.p, '*', t.len)) {
        *why = "wildcards are not allowed in URL entries";
        return -1;
    }
    if (url_normalize(t.p, t.len, &u, why) < 0)
        return -1;
    host = u.text + u.host_off;
    hlen = u.host_len;
    rlen = u.path_len;
    if (rlen > 0 && u.text[u.path_off + rlen - 1] == '/')
        rlen--;
    memcpy(e->rest, u.text + u.path_off, rlen);
    if (u.has_query) {
        e->rest[rlen++] = '?';
        memcpy(e->rest + rlen, u.text + u.query_off, u.query_len);
        rlen += u.query_len;
    }
    e->is_ip = u.host_type != URL_HOST_NAME;
    e->is_url = rlen > 0;
    /* "www.example.com/x" also means "example.com/x", as in squidGuard. */
    if (e->is_url && !e->is_ip && hlen > 4 && memcmp(host, "www.", 4) == 0 &&
        memchr(host + 4, '.', hlen - 4)) {
        host += 4;
        hlen -= 4;
    }
    memcpy(e->host, host, hlen);
    e->host[hlen] = '\0';
    e->hlen = hlen;
    e->rlen = rlen;
    return 0;
}

int import_parse_entry(const char *text, size_t len, struct import_entry *e, const char **why)
{
    struct slice t = slice_make(text, len);

    if (len == 0) {
        *why = "empty entry";
        return -1;
    }
    if (memchr(t.p, '/', t.len) || memchr(t.p, '?', t.len))
        return import_parse_url(t, e, why);
    return import_parse_host(t, e, why);
}

uint64_t import_entry_key(const struct import_entry *e)
{
    if (e->is_url)
        return key_url(e->host, e->hlen, e->rest, e->rlen);
    return key_host(e->host, e->hlen);
}

void import_add_entry(struct catdb_builder *b, int list, const struct import_entry *e)
{
    if (e->is_url)
        catdb_builder_add_url(b, list, e->host, e->hlen, e->is_ip, e->rest, e->rlen);
    else
        catdb_builder_add_host(b, list, e->host, e->hlen, e->is_ip);
}

static int import_add(struct import_ctx *c, int list, struct slice t, const char **why)
{
    static __thread struct import_entry e;

    if (import_parse_entry(t.p, t.len, &e, why) < 0)
        return -1;
    import_add_entry(c->b, list, &e);
    return 0;
}

/* Names every hosts file carries that are never meant as blocks. */
static int import_local_name(struct slice t)
{
    static const char *const names[] = {"localhost", "localhost.localdomain", "broadcasthost",
                                        "local", "0.0.0.0"};

    for (size_t i = 0; i < HAVEN_ARRAY_LEN(names); i++) {
        if (slice_eq_cstr(t, names[i]))
            return 1;
    }
    return t.len > 4 && memcmp(t.p, "ip6-", 4) == 0;
}

/* Is t a hosts-file address ("0.0.0.0 name")? */
static int import_hosts_addr(struct slice t)
{
    char buf[URL_HOST_MAX + 1];
    enum url_host_type type;

    if (t.len == 0 || memchr(t.p, '/', t.len))
        return 0;
    return url_normalize_host(t.p, t.len, buf, &type, &(const char *){NULL}) >= 0 &&
           type != URL_HOST_NAME;
}

static enum import_result import_adblock(struct import_ctx *c, int list, struct slice s,
                                         const char **why)
{
    static const char *const ok_opts[] = {"important", "all", "document", "doc"};
    struct slice t = slice_make(s.p + 2, s.len - 2);
    const char *caret = memchr(t.p, '^', t.len);
    struct slice opts = {"", 0};

    if (!caret) {
        *why = "Adblock rule without \"^\" is not a domain rule";
        return IMPORT_REJECTED;
    }
    opts = slice_make(caret + 1, (size_t)(t.p + t.len - caret - 1));
    t.len = (size_t)(caret - t.p);
    if (opts.len > 0) {
        int ok = 0;
        if (opts.p[0] == '$') {
            for (size_t i = 0; i < HAVEN_ARRAY_LEN(ok_opts); i++)
                ok |= slice_eq_cstr(slice_make(opts.p + 1, opts.len - 1), ok_opts[i]);
        }
        if (!ok) {
            *why = "Adblock rule options other than $important, $all or $document are not "
                   "supported";
            return IMPORT_REJECTED;
        }
    }
    if (t.len == 0 || memchr(t.p, '/', t.len) || memchr(t.p, '*', t.len)) {
        *why = "Adblock rule is not a plain \"||domain^\" rule";
        return IMPORT_REJECTED;
    }
    return import_add(c, list, t, why) == 0 ? IMPORT_ADDED : IMPORT_REJECTED;
}

enum import_result import_line(struct import_ctx *c, int list, const char *line, size_t len,
                               const char **why)
{
    struct slice s = slice_trim(slice_make(line, len)), t, more;
    int added = 0;

    *why = NULL;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] == '#' && (i == 0 || import_is_space(s.p[i - 1]))) {
            s = slice_trim(slice_make(s.p, i));
            break;
        }
    }
    /* Comments, and Adblock headers such as "[Adblock Plus 2.0]" (not "[2001:db8::1]"). */
    if (s.len == 0 || s.p[0] == '!' ||
        (s.p[0] == '[' && s.p[s.len - 1] == ']' && !memchr(s.p, ':', s.len)))
        return IMPORT_SKIPPED;
    for (size_t i = 0; i < s.len; i++) {
        if ((unsigned char)s.p[i] < 0x20 && s.p[i] != '\t') {
            *why = "control character in line";
            return IMPORT_REJECTED;
        }
    }
    if (s.len >= 2 && s.p[0] == '@' && s.p[1] == '@') {
        *why = "Adblock exception rules are not supported (use the policy's allow lists)";
        return IMPORT_REJECTED;
    }
    if (s.len >= 2 && s.p[0] == '|' && s.p[1] == '|')
        return import_adblock(c, list, s, why);
    if (s.p && (memmem(s.p, s.len, "##", 2) || memmem(s.p, s.len, "#@#", 3))) {
        *why = "Adblock cosmetic filters are not supported";
        return IMPORT_REJECTED;
    }

    more = s;
    t = import_token(&more);
    more = slice_trim(more);
    if (more.len > 0 && import_hosts_addr(t)) {
        /* A hosts-file line: every name after the address is an entry. */
        while (more.len > 0) {
            t = import_token(&more);
            if (t.len == 0)
                break;
            if (import_local_name(t))
                continue;
            if (import_add(c, list, t, why) < 0)
                return IMPORT_REJECTED;
            added++;
        }
        return added ? IMPORT_ADDED : IMPORT_SKIPPED;
    }
    if (more.len > 0) {
        *why = "unexpected text after the entry";
        return IMPORT_REJECTED;
    }
    return import_add(c, list, t, why) == 0 ? IMPORT_ADDED : IMPORT_REJECTED;
}

/* Count and import one line; too_long lines are rejected without being parsed. */
static void import_one(struct import_ctx *c, int list, const char *path, unsigned long lineno,
                       const char *line, size_t len, int too_long)
{
    const char *why = "line too long";
    enum import_result r = too_long ? IMPORT_REJECTED : import_line(c, list, line, len, &why);

    c->lines++;
    switch (r) {
    case IMPORT_ADDED:
        c->accepted++;
        break;
    case IMPORT_SKIPPED:
        c->skipped++;
        break;
    case IMPORT_REJECTED:
        c->rejected++;
        if (c->reject)
            c->reject(c->arg, path, lineno, why, line, too_long ? 80 : len);
        break;
    }
}

int import_file(struct import_ctx *c, int list, const char *path, char *err, size_t errlen)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ae;
    char *line = xmalloc(IMPORT_LINE_MAX);
    char buf[65536];
    size_t llen = 0;
    unsigned long lineno = 0;
    int toolong = 0, rc = -1, r;
    la_ssize_t n;

    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    archive_read_support_format_empty(a);
    if (archive_read_open_filename(a, path, sizeof(buf)) != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: %s", path, archive_error_string(a));
        goto out;
    }
    r = archive_read_next_header(a, &ae);
    if (r == ARCHIVE_EOF) {
        rc = 0;
        goto out;
    }
    if (r != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: %s", path, archive_error_string(a));
        goto out;
    }
    while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
        for (la_ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (llen < IMPORT_LINE_MAX)
                    line[llen++] = buf[i];
                else
                    toolong = 1;
                continue;
            }
            import_one(c, list, path, ++lineno, line, llen, toolong);
            llen = 0;
            toolong = 0;
        }
    }
    if (n < 0) {
        snprintf(err, errlen, "%s: %s", path, archive_error_string(a));
        goto out;
    }
    if (llen > 0 || toolong)
        import_one(c, list, path, ++lineno, line, llen, toolong);
    rc = 0;
out:
    archive_read_free(a);
    free(line);
    return rc;
}

static int import_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first of NAME, NAME.xz, NAME.gz, NAME.bz2 that exists in dir, or -1. */
static int import_find(const char *dir, const char *name, char *path, size_t size)
{
    static const char *const exts[] = {"", ".xz", ".gz", ".bz2"};
    struct stat st;

    for (size_t i = 0; i < HAVEN_ARRAY_LEN(exts); i++) {
        snprintf(path, size, "%s/%s%s", dir, name, exts[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            return 0;
    }
    return -1;
}

int import_ut1_dir(struct import_ctx *c, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;

    if (!d) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d))) {
        char path[PATH_MAX];
        struct stat st, lst;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        /* A link to another category of the same tree is an alias: read the target once. */
        if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
            char target[PATH_MAX];
            ssize_t tl = readlink(path, target, sizeof(target) - 1);
            if (tl > 0) {
                target[tl] = '\0';
                if (!strchr(target, '/'))
                    continue;
            }
        }
        names = xgrow(names, &cap, n + 1, sizeof(*names));
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n == 0) {
        snprintf(err, errlen, "%s: no category directories (is this a UT1 blacklists tree?)", dir);
        goto out;
    }
    qsort(names, n, sizeof(*names), import_cmp);
    for (size_t i = 0; i < n; i++) {
        char sub[PATH_MAX], file[PATH_MAX], lname[300];
        int t = taxonomy_find_ut1(names[i]);
        int list;

        if (c->progress)
            c->progress(c->arg, names[i], (int)i, (int)n);
        snprintf(sub, sizeof(sub), "%s/%s", dir, names[i]);
        snprintf(lname, sizeof(lname), "ut1/%s", names[i]);
        list = catdb_builder_add_list(c->b, lname, t >= 0 ? taxonomy_get(t)->name : names[i]);
        if (list < 0) {
            snprintf(err, errlen, "%s: too many lists (the limit is 256)", sub);
            goto out;
        }
        if (import_find(sub, "domains", file, sizeof(file)) == 0 &&
            import_file(c, list, file, err, errlen) < 0)
            goto out;
        if (import_find(sub, "urls", file, sizeof(file)) == 0 &&
            import_file(c, list, file, err, errlen) < 0)
            goto out;
    }
    if (c->progress)
        c->progress(c->arg, "", (int)n, (int)n);
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}
