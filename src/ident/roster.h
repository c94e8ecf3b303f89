/*
 * roster.h -- read the users CSV a school's MIS exports (docs/users.md).
 *
 * The first record names the columns (any order, any case; spaces and '-' count
 * as '_'): `username` (required), `group` or `year` (one of them required),
 * and optionally `display_name` (or `name`) and `password_hash`. Other columns
 * are reported as ignored. Each later record is a user; roster_read checks it
 * and hands it to a callback, or reports why it is rejected. A row is never
 * dropped without a message. Blank lines are skipped.
 *
 * A `year` value ("7", "Year 7", "Y7", "R", "Reception", "N", "Nursery") is
 * mapped to a group by a year map: the default maps N, R and 1-6 to primary,
 * 7-11 to secondary and 12-13 to sixth-form; a year-map file replaces it. When
 * both columns are present a non-empty `group` wins.
 */
#ifndef HAVEN_IDENT_ROSTER_H
#define HAVEN_IDENT_ROSTER_H

#include <stddef.h>

struct roster_year_map;

/* One accepted row. The strings are valid during the callback only. */
struct roster_row {
    unsigned long line;
    const char *username;      /* ASCII letters in lower case */
    const char *group;         /* a valid group name: letters, digits, '-', '_', '.' */
    const char *display_name;  /* NULL: no column, or empty */
    const char *password_hash; /* NULL: no column, or empty; else a checked argon2id hash */
};

/* Return 0 to go on; anything else stops roster_read, which returns it. */
typedef int (*roster_row_fn)(void *arg, const struct roster_row *row);
/* A rejected row (rejected = 1) or a note about the file (0: an ignored column).
 * line is the line in the file; msg says what is wrong. */
typedef void (*roster_report_fn)(void *arg, unsigned long line, int rejected, const char *msg);

struct roster_stats {
    unsigned long rows;     /* records after the header, not counting blank lines */
    unsigned long accepted; /* handed to the row callback */
    unsigned long rejected; /* reported as rejected */
};

/*
 * Read the CSV text data (len bytes; name is used in messages). ym maps years to groups
 * (NULL: the default map). Returns 0 when the file was read (some rows may have been
 * rejected: see stats), -1 when it cannot be read as a users file at all (no header, no
 * username column, neither group nor year, a column named twice), with "NAME:LINE:
 * reason" in err, or the row callback's non-zero value if it stopped the read.
 */
int roster_read(const char *name, const char *data, size_t len, const struct roster_year_map *ym,
                roster_row_fn row, roster_report_fn report, void *arg, struct roster_stats *stats,
                char *err, size_t errlen);

/* The default year map (N, R, 1-6 primary; 7-11 secondary; 12-13 sixth-form). */
struct roster_year_map *roster_year_map_default(void);

/*
 * Parse a year-map file: lines "YEAR = GROUP" or "FIRST-LAST = GROUP" (years 1-14 as
 * numbers), '#' comments and blank lines. Returns the map or NULL with "NAME:LINE:
 * reason" in err.
 */
struct roster_year_map *roster_year_map_parse(const char *name, const char *text, size_t len,
                                              char *err, size_t errlen);

/* The group for a year as written in a CSV ("Year 7"), or NULL if the map has none. */
const char *roster_year_group(const struct roster_year_map *ym, const char *year);

void roster_year_map_free(struct roster_year_map *ym);

/*
 * Field checks shared with the CLI. Each returns 0, or -1 with the reason in why (a
 * static string). roster_username_check also folds ASCII letters to lower case in place.
 */
int roster_username_check(char *s, const char **why);
int roster_group_check(const char *s, const char **why);
int roster_display_check(const char *s, const char **why);

#endif
