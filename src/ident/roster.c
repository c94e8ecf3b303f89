/*
 * roster.c -- the users CSV: header, rows, year map (see roster.h).
 *
 * The CSV syntax is csv.c's; this file gives the columns their meaning and
 * checks every value, so that what reaches the store is always a valid
 * username, group name, display name and argon2id hash.
 */
#include "common/compat.h"

#include <ctype.h>

#include "common/slice.h"
#include "common/xalloc.h"
#include "ident/csv.h"
#include "ident/ident.h"
#include "ident/roster.h"

/* Distinct year keys: "n", "r", "1".."14". */
#define ROSTER_MAX_YEARS 16
#define ROSTER_YEAR_KEY 4

struct roster_year {
    char key[ROSTER_YEAR_KEY];
    char *group;
    unsigned long line; /* in the map file, for "mapped twice" */
};

struct roster_year_map {
    struct roster_year years[ROSTER_MAX_YEARS];
    size_t n;
};

/* The columns haven reads. */
enum roster_col {
    ROSTER_USERNAME,
    ROSTER_GROUP,
    ROSTER_YEAR,
    ROSTER_DISPLAY,
    ROSTER_HASH,
    ROSTER_NCOLS
};

static const struct {
    const char *name;
    enum roster_col col;
} roster_columns[] = {
    {"username", ROSTER_USERNAME},    {"group", ROSTER_GROUP},  {"year", ROSTER_YEAR},
    {"display_name", ROSTER_DISPLAY}, {"name", ROSTER_DISPLAY}, {"password_hash", ROSTER_HASH},
};

/* ---- field checks ---- */

/* Is p (len bytes) well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF)? */
static int roster_utf8_ok(const unsigned char *p, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

static int roster_has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    }
    return 0;
}

int roster_username_check(char *s, const char **why)
{
    size_t len = strlen(s);

    if (len == 0) {
        *why = "the username is empty";
        return -1;
    }
    if (len > IDENT_USER_MAX) {
        *why = "the username is longer than 128 bytes";
        return -1;
    }
    if (!roster_utf8_ok((const unsigned char *)s, len)) {
        *why = "the username is not UTF-8 (save the file as CSV UTF-8)";
        return -1;
    }
    for (char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ' ') {
            *why = "the username has a space or control character in it";
            return -1;
        }
        if (*p == ':') {
            *why = "the username has a ':' in it (proxy sign-in cannot carry one)";
            return -1;
        }
        *p = (char)tolower((unsigned char)*p);
    }
    return 0;
}

int roster_group_check(const char *s, const char **why)
{
    size_t len = strlen(s);

    if (len == 0 || len > IDENT_GROUP_MAX) {
        *why = "a group name must be 1 to 64 characters";
        return -1;
    }
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
            *why = "a group name may only use letters, digits, '-', '_' and '.'";
            return -1;
        }
    }
    return 0;
}

int roster_display_check(const char *s, const char **why)
{
    size_t len = strlen(s);

    if (len > IDENT_DISPLAY_MAX) {
        *why = "the display name is longer than 256 bytes";
        return -1;
    }
    if (!roster_utf8_ok((const unsigned char *)s, len)) {
        *why = "the display name is not UTF-8 (save the file as CSV UTF-8)";
        return -1;
    }
    if (roster_has_control(s)) {
        *why = "the display name has a control character (a tab or line break) in it";
        return -1;
    }
    return 0;
}

/* ---- year map ---- */

/*
 * The key for a year as written: "Year 7", "Y7", "yr 07", "7" -> "7"; "R", "Reception",
 * "Year R" -> "r"; "N", "Nursery" -> "n". Returns 0, or -1 if s is not a year (1-14, R, N).
 */
static int roster_year_key(struct slice s, char key[ROSTER_YEAR_KEY])
{
    char t[32];
    size_t n = 0;
    const char *p;
    unsigned v = 0;

    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] == ' ' || s.p[i] == '\t')
            continue;
        if (n + 1 >= sizeof(t))
            return -1;
        t[n++] = (char)tolower((unsigned char)s.p[i]);
    }
    t[n] = '\0';
    p = t;
    if (strncmp(p, "year", 4) == 0 && p[4])
        p += 4;
    else if (strncmp(p, "yr", 2) == 0 && p[2])
        p += 2;
    else if (p[0] == 'y' && p[1])
        p += 1;
    if (strcmp(p, "r") == 0 || strcmp(p, "reception") == 0) {
        memcpy(key, "r", 2);
        return 0;
    }
    if (strcmp(p, "n") == 0 || strcmp(p, "nursery") == 0) {
        memcpy(key, "n", 2);
        return 0;
    }
    if (*p == '\0' || strlen(p) > 3)
        return -1;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v < 1 || v > 14)
        return -1;
    snprintf(key, ROSTER_YEAR_KEY, "%u", v);
    return 0;
}

static struct roster_year *roster_year_find(const struct roster_year_map *ym, const char *key)
{
    for (size_t i = 0; i < ym->n; i++) {
        if (strcmp(ym->years[i].key, key) == 0)
            return (struct roster_year *)(uintptr_t)&ym->years[i];
    }
    return NULL;
}

/* Map key to group; -1 if the key is already mapped (its line in *prev). */
static int roster_year_add(struct roster_year_map *ym, const char *key, const char *group,
                           unsigned long line, unsigned long *prev)
{
    struct roster_year *y = roster_year_find(ym, key);

    if (y) {
        *prev = y->line;
        return -1;
    }
    y = &ym->years[ym->n++]; /* at most ROSTER_MAX_YEARS distinct keys exist */
    snprintf(y->key, sizeof(y->key), "%s", key);
    y->group = xstrdup(group);
    y->line = line;
    return 0;
}

struct roster_year_map *roster_year_map_default(void)
{
    struct roster_year_map *ym = xcalloc(1, sizeof(*ym));
    unsigned long prev;
    char key[ROSTER_YEAR_KEY];

    roster_year_add(ym, "n", "primary", 0, &prev);
    roster_year_add(ym, "r", "primary", 0, &prev);
    for (int y = 1; y <= 13; y++) {
        snprintf(key, sizeof(key), "%d", y);
        roster_year_add(ym, key,
                        y <= 6    ? "primary"
                        : y <= 11 ? "secondary"
                                  : "sixth-form",
                        0, &prev);
    }
    return ym;
}

void roster_year_map_free(struct roster_year_map *ym)
{
    if (!ym)
        return;
    for (size_t i = 0; i < ym->n; i++)
        free(ym->years[i].group);
    free(ym);
}

const char *roster_year_group(const struct roster_year_map *ym, const char *year)
{
    char key[ROSTER_YEAR_KEY];
    const struct roster_year *y;

    if (roster_year_key(slice_cstr(year), key) < 0)
        return NULL;
    y = roster_year_find(ym, key);
    return y ? y->group : NULL;
}

/* "7-11" -> 7, 11; -1 if s is not such a range of years 1-14. */
static int roster_year_range(struct slice s, int *first, int *last)
{
    const char *dash = memchr(s.p, '-', s.len);
    char a[ROSTER_YEAR_KEY], b[ROSTER_YEAR_KEY];

    if (!dash)
        return -1;
    if (roster_year_key(slice_make(s.p, (size_t)(dash - s.p)), a) < 0 ||
        roster_year_key(slice_make(dash + 1, (size_t)(s.p + s.len - dash - 1)), b) < 0 ||
        !isdigit((unsigned char)a[0]) || !isdigit((unsigned char)b[0]))
        return -1;
    *first = (int)strtol(a, NULL, 10);
    *last = (int)strtol(b, NULL, 10);
    return *first <= *last ? 0 : -1;
}

struct roster_year_map *roster_year_map_parse(const char *name, const char *text, size_t len,
                                              char *err, size_t errlen)
{
    struct roster_year_map *ym = xcalloc(1, sizeof(*ym));
    struct roster_year_map *result = NULL;
    const char *p = text, *end = text + len;
    unsigned long line = 0, prev;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        struct slice l = slice_make(p, nl ? (size_t)(nl - p) : (size_t)(end - p));
        const char *hash = memchr(l.p, '#', l.len), *eq;
        struct slice left, right;
        char group[IDENT_GROUP_MAX + 1], key[ROSTER_YEAR_KEY];
        const char *why;
        int first, last;

        line++;
        p = nl ? nl + 1 : end;
        if (hash)
            l.len = (size_t)(hash - l.p);
        l = slice_trim(l);
        if (l.len == 0)
            continue;
        eq = memchr(l.p, '=', l.len);
        if (!eq) {
            snprintf(err, errlen, "%s:%lu: want YEAR = GROUP (e.g. \"7-11 = secondary\")", name,
                     line);
            goto out;
        }
        left = slice_trim(slice_make(l.p, (size_t)(eq - l.p)));
        right = slice_trim(slice_make(eq + 1, (size_t)(l.p + l.len - eq - 1)));
        if (right.len == 0 || right.len > IDENT_GROUP_MAX) {
            snprintf(err, errlen, "%s:%lu: a group name must be 1 to 64 characters", name, line);
            goto out;
        }
        memcpy(group, right.p, right.len);
        group[right.len] = '\0';
        if (roster_group_check(group, &why) < 0) {
            snprintf(err, errlen, "%s:%lu: %s", name, line, why);
            goto out;
        }
        if (roster_year_range(left, &first, &last) < 0) {
            if (roster_year_key(left, key) < 0) {
                snprintf(err, errlen,
                         "%s:%lu: '%.*s' is not a year (1 to 14, R or N, or a range like 7-11)",
                         name, line, (int)(left.len > 40 ? 40 : left.len), left.p);
                goto out;
            }
            first = last = -1;
        }
        for (int y = first; y <= last; y++) {
            if (y >= 0)
                snprintf(key, sizeof(key), "%d", y);
            if (roster_year_add(ym, key, group, line, &prev) < 0) {
                snprintf(err, errlen, "%s:%lu: year %s is already mapped on line %lu", name, line,
                         key, prev);
                goto out;
            }
        }
    }
    if (ym->n == 0) {
        snprintf(err, errlen, "%s: the year map maps no years", name);
        goto out;
    }
    result = ym;
    ym = NULL;
out:
    roster_year_map_free(ym);
    return result;
}

/* ---- duplicate usernames within one file ---- */

struct roster_seen {
    char **names;
    unsigned long *lines;
    size_t n, size; /* size is a power of two, at most half full */
};

static uint64_t roster_fnv(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void roster_seen_grow(struct roster_seen *seen)
{
    struct roster_seen bigger = {0};

    bigger.size = seen->size ? seen->size * 2 : 64;
    bigger.names = xcalloc(bigger.size, sizeof(*bigger.names));
    bigger.lines = xcalloc(bigger.size, sizeof(*bigger.lines));
    for (size_t i = 0; i < seen->size; i++) {
        size_t j;
        if (!seen->names[i])
            continue;
        j = roster_fnv(seen->names[i]) & (bigger.size - 1);
        while (bigger.names[j])
            j = (j + 1) & (bigger.size - 1);
        bigger.names[j] = seen->names[i];
        bigger.lines[j] = seen->lines[i];
    }
    bigger.n = seen->n;
    free(seen->names);
    free(seen->lines);
    *seen = bigger;
}

/* Record name at line; returns 0, or the line where it was first seen. */
static unsigned long roster_seen_add(struct roster_seen *seen, const char *name, unsigned long line)
{
    size_t j;

    if ((seen->n + 1) * 2 > seen->size)
        roster_seen_grow(seen);
    for (j = roster_fnv(name) & (seen->size - 1); seen->names[j]; j = (j + 1) & (seen->size - 1)) {
        if (strcmp(seen->names[j], name) == 0)
            return seen->lines[j];
    }
    seen->names[j] = xstrdup(name);
    seen->lines[j] = line;
    seen->n++;
    return 0;
}

static void roster_seen_free(struct roster_seen *seen)
{
    for (size_t i = 0; i < seen->size; i++)
        free(seen->names[i]);
    free(seen->names);
    free(seen->lines);
}

/* ---- reading ---- */

struct roster_ctx {
    const struct roster_year_map *ym;
    int col[ROSTER_NCOLS]; /* field index of each column, or -1 */
    size_t ncols;          /* fields in the header */
    struct roster_seen seen;
    roster_report_fn report;
    void *arg;
};

/* Copy field f (trimmed) into out (size bytes); -1 if it does not fit. */
static int roster_field(const struct csv_record *rec, int f, char *out, size_t size)
{
    struct slice s;

    out[0] = '\0';
    if (f < 0)
        return 0;
    s = slice_trim(rec->field[f]);
    if (s.len >= size)
        return -1;
    memcpy(out, s.p, s.len);
    out[s.len] = '\0';
    return 0;
}

static int roster_blank(const struct csv_record *rec)
{
    for (size_t i = 0; i < rec->nfields; i++) {
        if (slice_trim(rec->field[i]).len > 0)
            return 0;
    }
    return 1;
}

/* Name the columns from the header record; -1 with err if it cannot be used. */
static int roster_header(struct roster_ctx *c, const char *name, const struct csv_record *rec,
                         char *err, size_t errlen)
{
    char msg[256];

    for (int i = 0; i < ROSTER_NCOLS; i++)
        c->col[i] = -1;
    c->ncols = rec->nfields;
    for (size_t f = 0; f < rec->nfields; f++) {
        struct slice s = slice_trim(rec->field[f]);
        char col[32];
        size_t k;
        if (s.len >= sizeof(col)) {
            snprintf(msg, sizeof(msg), "column %zu ('%.*s...') is not one haven reads: ignored",
                     f + 1, 20, s.p);
            c->report(c->arg, rec->line, 0, msg);
            continue;
        }
        for (size_t i = 0; i < s.len; i++)
            col[i] = s.p[i] == ' ' || s.p[i] == '-' ? '_' : (char)tolower((unsigned char)s.p[i]);
        col[s.len] = '\0';
        for (k = 0; k < HAVEN_ARRAY_LEN(roster_columns); k++) {
            if (strcmp(roster_columns[k].name, col) == 0)
                break;
        }
        if (k == HAVEN_ARRAY_LEN(roster_columns)) {
            if (s.len == 0)
                snprintf(msg, sizeof(msg), "column %zu has no name: ignored", f + 1);
            else if (roster_has_control(col))
                snprintf(msg, sizeof(msg), "column %zu is not one haven reads: ignored", f + 1);
            else
                snprintf(msg, sizeof(msg), "column '%s' is not one haven reads: ignored", col);
            c->report(c->arg, rec->line, 0, msg);
            continue;
        }
        if (c->col[roster_columns[k].col] >= 0) {
            snprintf(err, errlen, "%s:%lu: the header names column '%s' twice", name, rec->line,
                     roster_columns[k].name);
            return -1;
        }
        c->col[roster_columns[k].col] = (int)f;
    }
    if (c->col[ROSTER_USERNAME] < 0) {
        snprintf(err, errlen,
                 "%s:%lu: the header row has no 'username' column (the first row must name "
                 "the columns: username,group,display_name)",
                 name, rec->line);
        return -1;
    }
    if (c->col[ROSTER_GROUP] < 0 && c->col[ROSTER_YEAR] < 0) {
        snprintf(err, errlen, "%s:%lu: the header row has neither a 'group' nor a 'year' column",
                 name, rec->line);
        return -1;
    }
    return 0;
}

/* Check one row; fills row and returns 0, or returns -1 with the reason in msg. */
static int roster_row_check(struct roster_ctx *c, const struct csv_record *rec,
                            struct roster_row *row, char *user, char *group, char *display,
                            char *hash, char *msg, size_t msize)
{
    char year[32];
    const char *why;
    unsigned long first;

    if (rec->nfields != c->ncols) {
        const char *hint = "";
        for (size_t i = 0; i < rec->nfields; i++) {
            struct slice f = slice_trim(rec->field[i]);
            if (f.len > 10 && memcmp(f.p, "$argon2id$", 10) == 0 && !memchr(f.p, ',', f.len))
                hint = " (an argon2id hash has commas in it: put it in double quotes)";
        }
        snprintf(msg, msize, "the row has %zu fields; the header has %zu%s", rec->nfields, c->ncols,
                 hint);
        return -1;
    }
    if (roster_field(rec, c->col[ROSTER_USERNAME], user, IDENT_USER_MAX + 1) < 0) {
        snprintf(msg, msize, "the username is longer than %d bytes", IDENT_USER_MAX);
        return -1;
    }
    if (roster_username_check(user, &why) < 0) {
        snprintf(msg, msize, "%s", why);
        return -1;
    }
    if (roster_field(rec, c->col[ROSTER_GROUP], group, IDENT_GROUP_MAX + 1) < 0) {
        snprintf(msg, msize, "user '%s': a group name must be 1 to 64 characters", user);
        return -1;
    }
    if (group[0] == '\0') {
        if (roster_field(rec, c->col[ROSTER_YEAR], year, sizeof(year)) < 0 || !year[0]) {
            snprintf(msg, msize, "user '%s' has no %s", user,
                     c->col[ROSTER_YEAR] < 0    ? "group"
                     : c->col[ROSTER_GROUP] < 0 ? "year"
                                                : "group or year");
            return -1;
        }
        if (!roster_year_group(c->ym, year)) {
            snprintf(msg, msize, "user '%s': year '%s' is not in the year map", user,
                     roster_has_control(year) ? "?" : year);
            return -1;
        }
        snprintf(group, IDENT_GROUP_MAX + 1, "%s", roster_year_group(c->ym, year));
    }
    if (roster_group_check(group, &why) < 0) {
        snprintf(msg, msize, "user '%s': %s", user, why);
        return -1;
    }
    if (roster_field(rec, c->col[ROSTER_DISPLAY], display, IDENT_DISPLAY_MAX + 1) < 0) {
        snprintf(msg, msize, "user '%s': the display name is longer than %d bytes", user,
                 IDENT_DISPLAY_MAX);
        return -1;
    }
    if (roster_display_check(display, &why) < 0) {
        snprintf(msg, msize, "user '%s': %s", user, why);
        return -1;
    }
    if (roster_field(rec, c->col[ROSTER_HASH], hash, IDENT_HASH_MAX) < 0) {
        snprintf(msg, msize, "user '%s': the password_hash is too long to be an argon2id hash",
                 user);
        return -1;
    }
    if (hash[0] && ident_hash_check(hash, &why) < 0) {
        snprintf(msg, msize, "user '%s': %s", user, why);
        return -1;
    }
    first = roster_seen_add(&c->seen, user, rec->line);
    if (first) {
        snprintf(msg, msize, "user '%s' is already on line %lu", user, first);
        return -1;
    }
    row->line = rec->line;
    row->username = user;
    row->group = group;
    row->display_name = display[0] ? display : NULL;
    row->password_hash = hash[0] ? hash : NULL;
    return 0;
}

int roster_read(const char *name, const char *data, size_t len, const struct roster_year_map *ym,
                roster_row_fn row_fn, roster_report_fn report, void *arg,
                struct roster_stats *stats, char *err, size_t errlen)
{
    struct roster_year_map *def = NULL;
    struct roster_ctx c = {.report = report, .arg = arg};
    struct csv_record *rec = xmalloc(sizeof(*rec));
    struct csv r;
    char user[IDENT_USER_MAX + 1], group[IDENT_GROUP_MAX + 1], display[IDENT_DISPLAY_MAX + 1];
    char hash[IDENT_HASH_MAX], msg[512], why[256];
    int got, rc = -1, have_header = 0;

    memset(stats, 0, sizeof(*stats));
    if (!ym) {
        def = roster_year_map_default();
        ym = def;
    }
    c.ym = ym;
    csv_init(&r, data, len);
    for (;;) {
        struct roster_row row;

        got = csv_next(&r, rec, why, sizeof(why));
        if (got == 0)
            break;
        if (!have_header) {
            if (got < 0) {
                snprintf(err, errlen, "%s:%lu: the header row is malformed: %s", name, rec->line,
                         why);
                goto out;
            }
            if (roster_blank(rec))
                continue;
            if (roster_header(&c, name, rec, err, errlen) < 0)
                goto out;
            have_header = 1;
            continue;
        }
        if (got > 0 && roster_blank(rec))
            continue;
        stats->rows++;
        if (got < 0) {
            stats->rejected++;
            report(arg, rec->line, 1, why);
            continue;
        }
        if (roster_row_check(&c, rec, &row, user, group, display, hash, msg, sizeof(msg)) < 0) {
            stats->rejected++;
            report(arg, rec->line, 1, msg);
            continue;
        }
        stats->accepted++;
        rc = row_fn(arg, &row);
        if (rc != 0)
            goto out;
        rc = -1;
    }
    if (!have_header) {
        snprintf(err, errlen,
                 "%s: the file is empty (the first row must name the columns: "
                 "username,group,display_name)",
                 name);
        goto out;
    }
    rc = 0;
out:
    csv_cleanup(&r);
    roster_seen_free(&c.seen);
    roster_year_map_free(def);
    free(rec);
    return rc;
}
