/* Fuzz the users CSV (csv.c, roster.c) and, on the same bytes, the other text parsers of
 * src/ident: the year-map file, the Basic credentials of Proxy-Authorization, the
 * password-hash check and address text. Nothing may crash; every row is accepted or
 * rejected with a reason; every accepted row passes the checks the CLI relies on. */
#include "common/compat.h"

#include "ident/csv.h"
#include "ident/ident.h"
#include "ident/roster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_count {
    unsigned long rows, rejects;
};

static int fuzz_row(void *arg, const struct roster_row *row)
{
    struct fuzz_count *c = arg;
    char user[IDENT_USER_MAX + 1];
    const char *why;

    c->rows++;
    snprintf(user, sizeof(user), "%s", row->username);
    if (roster_username_check(user, &why) < 0 || strcmp(user, row->username) != 0)
        abort(); /* accepted usernames are valid and already folded */
    if (roster_group_check(row->group, &why) < 0)
        abort();
    if (row->display_name &&
        (!*row->display_name || roster_display_check(row->display_name, &why) < 0))
        abort();
    if (row->password_hash && ident_hash_check(row->password_hash, &why) < 0)
        abort();
    return 0;
}

static void fuzz_report(void *arg, unsigned long line, int rejected, const char *msg)
{
    struct fuzz_count *c = arg;

    if (!msg || !*msg || line == 0)
        abort(); /* every report names its line and reason */
    if (rejected)
        c->rejects++;
}

static void fuzz_csv(const char *text, size_t size)
{
    struct csv r;
    static struct csv_record rec;
    char why[256];
    int got;

    csv_init(&r, text, size);
    for (;;) {
        got = csv_next(&r, &rec, why, sizeof(why));
        if (got == 0)
            break;
        if (got < 0) {
            if (!why[0])
                abort();
            continue;
        }
        if (rec.nfields == 0 || rec.nfields > CSV_MAX_FIELDS)
            abort();
        for (size_t i = 0; i < rec.nfields; i++) {
            const char *p = rec.field[i].p;
            if (p < r.buf || p + rec.field[i].len > r.buf + CSV_MAX_RECORD)
                abort(); /* fields live in the reader's capped buffer */
        }
    }
    csv_cleanup(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parsers take a NUL-terminated copy where they want a C string. */
    char *text = malloc(size + 1);
    struct roster_year_map *ym;
    struct roster_stats st;
    struct fuzz_count c = {0, 0};
    char err[512], user[IDENT_USER_MAX + 1], pass[IDENT_PASS_MAX + 1], ip[IDENT_IP_MAX];
    const char *why;
    int rc;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    fuzz_csv(text, size);

    rc =
        roster_read("fuzz.csv", text, size, NULL, fuzz_row, fuzz_report, &c, &st, err, sizeof(err));
    if (rc == 0 &&
        (st.rows != st.accepted + st.rejected || st.accepted != c.rows || st.rejected != c.rejects))
        abort(); /* every row is accounted for */
    if (rc != 0 && !err[0])
        abort();

    ym = roster_year_map_parse("fuzz.map", text, size, err, sizeof(err));
    if (ym) {
        roster_year_group(ym, "Year 7");
        roster_year_map_free(ym);
    } else if (!err[0]) {
        abort();
    }

    if (ident_parse_basic(slice_make(text, size), user, sizeof(user), pass, sizeof(pass)) == 0) {
        if (!user[0] || strchr(user, ':'))
            abort();
    } else if (user[0] || pass[0]) {
        abort(); /* a failed parse leaves nothing behind */
    }
    if (ident_hash_check(text, &why) < 0 && (!why || !*why))
        abort();
    if (size < 64)
        ident_ip_canonical(text, ip);

    free(text);
    return 0;
}
