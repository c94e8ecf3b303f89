/*
 * users.c -- `haven users` and `haven session`: the users database from the command line.
 *
 * The daemon reads users and sessions from the same database into its identity
 * snapshot (ident/ident.h) every few seconds, so a change made here reaches
 * the proxy without a restart.
 */
#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "ident/ident.h"
#include "ident/roster.h"
#include "store/store.h"

#define USERS_MAX_CSV (64u << 20)
#define USERS_MAX_YEAR_MAP (1u << 20)
#define USERS_DEFAULT_TTL (8 * 3600)
#define USERS_MAX_TTL (366 * 86400)

static const char users_usage[] =
    "usage: haven users import FILE.csv [--year-map FILE] [--dry-run] [--db FILE]\n"
    "       haven users add USER --group GROUP [--name \"DISPLAY NAME\"] [--password-stdin]\n"
    "                           [--db FILE]\n"
    "       haven users passwd USER [--db FILE]   (reads the new password from standard input)\n"
    "       haven users del USER [--db FILE]\n"
    "       haven users list [--json] [--db FILE]\n"
    "The database is --db FILE, else $HAVEN_USERS_DB, else var/users.sqlite in the source tree.\n"
    "See docs/users.md for the CSV columns.\n";

static const char session_usage[] =
    "usage: haven session add USER IP [--ttl DURATION] [--db FILE]\n"
    "       haven session del IP [--db FILE]\n"
    "       haven session list [--json] [--db FILE]\n"
    "DURATION is a number and a unit: 90s, 30m, 8h, 1d, 1h30m (default 8h, at most 366d).\n";

/* The users database used when --db is not given. */
static const char *users_default_db(void)
{
    const char *env = getenv("HAVEN_USERS_DB");

    return env && *env ? env : HAVEN_SOURCE_DIR "/var/users.sqlite";
}

/* The options any sub-command may take; each says which it accepts. */
struct users_opts {
    const char *db, *group, *name, *year_map, *ttl;
    int json, dry_run, password_stdin;
    char *pos[3]; /* positional arguments */
    int npos;
};

enum {
    USERS_OPT_DB = 'd',
    USERS_OPT_GROUP = 'g',
    USERS_OPT_NAME = 'n',
    USERS_OPT_YEAR_MAP = 'y',
    USERS_OPT_TTL = 't',
    USERS_OPT_JSON = 'j',
    USERS_OPT_DRY_RUN = 'r',
    USERS_OPT_PASSWORD_STDIN = 'p',
    USERS_OPT_HELP = 'h',
};

static const struct option users_options[] = {
    {"db", required_argument, NULL, USERS_OPT_DB},
    {"group", required_argument, NULL, USERS_OPT_GROUP},
    {"name", required_argument, NULL, USERS_OPT_NAME},
    {"year-map", required_argument, NULL, USERS_OPT_YEAR_MAP},
    {"ttl", required_argument, NULL, USERS_OPT_TTL},
    {"json", no_argument, NULL, USERS_OPT_JSON},
    {"dry-run", no_argument, NULL, USERS_OPT_DRY_RUN},
    {"password-stdin", no_argument, NULL, USERS_OPT_PASSWORD_STDIN},
    {"help", no_argument, NULL, USERS_OPT_HELP},
    {NULL, 0, NULL, 0},
};

static void users_set(int c, char *value, void *arg)
{
    struct users_opts *o = arg;

    switch (c) {
    case USERS_OPT_DB:
        o->db = value;
        break;
    case USERS_OPT_GROUP:
        o->group = value;
        break;
    case USERS_OPT_NAME:
        o->name = value;
        break;
    case USERS_OPT_YEAR_MAP:
        o->year_map = value;
        break;
    case USERS_OPT_TTL:
        o->ttl = value;
        break;
    case USERS_OPT_JSON:
        o->json = 1;
        break;
    case USERS_OPT_DRY_RUN:
        o->dry_run = 1;
        break;
    case USERS_OPT_PASSWORD_STDIN:
        o->password_stdin = 1;
        break;
    }
}

/*
 * Parse argv (argv[0] is the sub-command) into o. allowed lists the option letters
 * this sub-command takes; npos is how many positional arguments it wants, and what
 * names them for messages. Returns 0, 1 when --help was printed, or CLI_EXIT_USAGE.
 */
static int users_parse(int argc, char **argv, const char *usage, const char *allowed, int npos,
                       const char *what, struct users_opts *o)
{
    int rc;

    memset(o, 0, sizeof(*o));
    rc = cli_options(argc, argv, usage, ":h", users_options, allowed, users_set, o, o->pos, npos,
                     what);
    o->npos = npos;
    if (rc == 0 && !o->db)
        o->db = users_default_db();
    return rc;
}

/* Open and migrate the database; prints the reason and returns NULL on failure. */
static struct store *users_open(const char *path)
{
    struct store *st;
    char err[1024];

    /* The default lives in var/ of the source tree, which `make run` makes; make it too. */
    if (strcmp(path, HAVEN_SOURCE_DIR "/var/users.sqlite") == 0)
        mkdir(HAVEN_SOURCE_DIR "/var", 0755);
    st = store_open(path, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "haven: %s\n", err);
        return NULL;
    }
    if (store_migrate(st, err, sizeof(err)) < 0) {
        fprintf(stderr, "haven: %s\n", err);
        store_close(st);
        return NULL;
    }
    return st;
}

/* "2026-11-30T10:00:00Z" */
static void users_time(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!gmtime_r(&tt, &tm) || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, size, "%lld", (long long)t);
}

/* Read a whole file of at most cap bytes into memory (caller frees); NULL with a message. */
static char *users_slurp(const char *path, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL, *result = NULL;
    struct stat sb;
    size_t n;

    if (!f) {
        fprintf(stderr, "haven: %s: %s\n", path, strerror(errno));
        goto out;
    }
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "haven: %s: not a regular file\n", path);
        goto out;
    }
    if ((uint64_t)sb.st_size > cap) {
        fprintf(stderr, "haven: %s: larger than %zu MiB\n", path, cap >> 20);
        goto out;
    }
    data = xmalloc((size_t)sb.st_size + 1);
    n = fread(data, 1, (size_t)sb.st_size, f);
    if (ferror(f)) {
        fprintf(stderr, "haven: %s: %s\n", path, strerror(errno));
        goto out;
    }
    data[n] = '\0';
    *len = n;
    result = data;
    data = NULL;
out:
    if (f)
        fclose(f);
    free(data);
    return result;
}

/*
 * Read a password: one line from standard input (the line break removed). Returns 0, or
 * -1 with a message. The caller wipes pass after use.
 */
static int users_read_password(char pass[IDENT_PASS_MAX + 3])
{
    size_t len;

    if (isatty(STDIN_FILENO))
        fputs("New password (shown as you type): ", stderr);
    if (!fgets(pass, IDENT_PASS_MAX + 3, stdin)) {
        fprintf(stderr, "haven: no password on standard input\n");
        return -1;
    }
    len = strlen(pass);
    if (len > 0 && pass[len - 1] == '\n')
        pass[--len] = '\0';
    else if (!feof(stdin)) {
        fprintf(stderr, "haven: the password is longer than %d bytes\n", IDENT_PASS_MAX);
        return -1;
    }
    if (len > 0 && pass[len - 1] == '\r')
        pass[--len] = '\0';
    if (len == 0) {
        fprintf(stderr, "haven: the password is empty\n");
        return -1;
    }
    if (len > IDENT_PASS_MAX || strlen(pass) != len) {
        fprintf(stderr, "haven: the password is longer than %d bytes or has a NUL in it\n",
                IDENT_PASS_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)pass[i] < 0x20 || pass[i] == 0x7f) {
            fprintf(stderr, "haven: the password has a control character in it\n");
            return -1;
        }
    }
    return 0;
}

/* Read a password from standard input and hash it into hash; 0 or -1 with a message. */
static int users_new_hash(char hash[IDENT_HASH_MAX])
{
    char pass[IDENT_PASS_MAX + 3];
    int rc = -1;

    if (users_read_password(pass) < 0)
        goto out;
    if (ident_hash_password(pass, hash) < 0) {
        fprintf(stderr, "haven: cannot hash the password (out of memory?)\n");
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(pass, sizeof(pass));
    return rc;
}

/* Check and lower-case a username from the command line; 0, or CLI_EXIT_USAGE. */
static int users_check_name(const char *usage, char *user)
{
    const char *why;

    if (roster_username_check(user, &why) < 0)
        return cli_usage_error(usage, "'%s': %s", user, why);
    return 0;
}

/* ---------------------------------------------------------------- users import */

struct users_import {
    const char *file;
    struct store *st;
    unsigned long added, updated, unchanged;
    int failed;
};

static int users_import_row(void *arg, const struct roster_row *row)
{
    struct users_import *im = arg;
    struct store_user u = {
        .username = row->username,
        .group_name = row->group,
        .display_name = row->display_name,
        .password_hash = row->password_hash,
    };
    char err[1024];

    switch (store_user_put(im->st, &u, err, sizeof(err))) {
    case STORE_PUT_ADDED:
        im->added++;
        break;
    case STORE_PUT_UPDATED:
        im->updated++;
        break;
    case STORE_PUT_UNCHANGED:
        im->unchanged++;
        break;
    case STORE_PUT_ERROR:
        fprintf(stderr, "haven: %s:%lu: %s\n", im->file, row->line, err);
        im->failed = 1;
        return 1;
    }
    return 0;
}

static void users_import_report(void *arg, unsigned long line, int rejected, const char *msg)
{
    struct users_import *im = arg;

    fprintf(stderr, "%s:%lu: %s%s\n", im->file, line, rejected ? "" : "note: ", msg);
}

static int users_import(int argc, char **argv)
{
    struct users_opts o;
    struct users_import im = {0};
    struct roster_year_map *ym = NULL;
    struct roster_stats stats;
    char *csv = NULL, *map = NULL, err[1024];
    size_t len, maplen;
    int rc, began = 0;

    rc = users_parse(argc, argv, users_usage, "dyr", 1, "a CSV file", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc = 1;
    im.file = o.pos[0];
    csv = users_slurp(im.file, USERS_MAX_CSV, &len);
    if (!csv)
        goto out;
    if (o.year_map) {
        map = users_slurp(o.year_map, USERS_MAX_YEAR_MAP, &maplen);
        if (!map)
            goto out;
        ym = roster_year_map_parse(o.year_map, map, maplen, err, sizeof(err));
        if (!ym) {
            fprintf(stderr, "haven: %s\n", err);
            goto out;
        }
    }
    im.st = users_open(o.db);
    if (!im.st)
        goto out;
    /* One transaction: every row goes in, or none does. A dry run rolls it back. */
    if (store_begin(im.st, err, sizeof(err)) < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    began = 1;
    err[0] = '\0';
    if (roster_read(im.file, csv, len, ym, users_import_row, users_import_report, &im, &stats, err,
                    sizeof(err)) != 0) {
        if (!im.failed)
            fprintf(stderr, "haven: %s\n", err);
        fprintf(stderr, "haven: nothing imported\n");
        goto out;
    }
    printf("%s: %lu added, %lu updated, %lu unchanged, %lu rejected\n", im.file, im.added,
           im.updated, im.unchanged, stats.rejected);
    if (stats.rejected > 0) {
        fprintf(stderr, "haven: nothing imported: %lu row%s rejected (fix %s and import again)\n",
                stats.rejected, stats.rejected == 1 ? "" : "s",
                stats.rejected == 1 ? "it" : "them");
        goto out;
    }
    if (o.dry_run) {
        printf("dry run: nothing written to %s\n", o.db);
        rc = 0;
        goto out;
    }
    if (store_commit(im.st, err, sizeof(err)) < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    began = 0;
    rc = 0;
out:
    if (began)
        store_rollback(im.st);
    store_close(im.st);
    roster_year_map_free(ym);
    free(csv);
    free(map);
    return rc;
}

/* ---------------------------------------------------------------- users add, passwd, del */

static int users_add(int argc, char **argv)
{
    struct users_opts o;
    struct store *st = NULL;
    struct store_user u = {0};
    char hash[IDENT_HASH_MAX], err[1024];
    const char *why;
    int rc;

    rc = users_parse(argc, argv, users_usage, "dgnp", 1, "a username", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (users_check_name(users_usage, o.pos[0]) != 0)
        return CLI_EXIT_USAGE;
    if (!o.group)
        return cli_usage_error(users_usage, "users add needs --group GROUP");
    if (roster_group_check(o.group, &why) < 0)
        return cli_usage_error(users_usage, "--group '%s': %s", o.group, why);
    if (o.name && roster_display_check(o.name, &why) < 0)
        return cli_usage_error(users_usage, "--name: %s", why);
    rc = 1;
    u.username = o.pos[0];
    u.group_name = o.group;
    u.display_name = o.name && *o.name ? o.name : NULL;
    if (o.password_stdin) {
        if (users_new_hash(hash) < 0)
            goto out;
        u.password_hash = hash;
    }
    st = users_open(o.db);
    if (!st)
        goto out;
    switch (store_user_put(st, &u, err, sizeof(err))) {
    case STORE_PUT_ADDED:
        printf("added user %s (group %s)\n", u.username, u.group_name);
        break;
    case STORE_PUT_UPDATED:
        printf("updated user %s (group %s)\n", u.username, u.group_name);
        break;
    case STORE_PUT_UNCHANGED:
        printf("user %s unchanged (group %s)\n", u.username, u.group_name);
        break;
    case STORE_PUT_ERROR:
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    rc = 0;
out:
    store_close(st);
    return rc;
}

static int users_passwd(int argc, char **argv)
{
    struct users_opts o;
    struct store *st = NULL;
    char hash[IDENT_HASH_MAX], err[1024];
    int rc, done;

    rc = users_parse(argc, argv, users_usage, "d", 1, "a username", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (users_check_name(users_usage, o.pos[0]) != 0)
        return CLI_EXIT_USAGE;
    rc = 1;
    st = users_open(o.db);
    if (!st)
        goto out;
    /* Ask about the user before the password, so a typo costs no typing. */
    {
        struct store_user u;
        int found = store_user_get(st, o.pos[0], &u, err, sizeof(err));
        store_user_cleanup(&u);
        if (found < 0) {
            fprintf(stderr, "haven: %s\n", err);
            goto out;
        }
        if (found == 0) {
            fprintf(stderr, "haven: no user '%s' in %s\n", o.pos[0], o.db);
            goto out;
        }
    }
    if (users_new_hash(hash) < 0)
        goto out;
    done = store_set_password(st, o.pos[0], hash, err, sizeof(err));
    if (done < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    if (done == 0) {
        fprintf(stderr, "haven: no user '%s' in %s\n", o.pos[0], o.db);
        goto out;
    }
    printf("password set for %s\n", o.pos[0]);
    rc = 0;
out:
    store_close(st);
    return rc;
}

static int users_del(int argc, char **argv)
{
    struct users_opts o;
    struct store *st = NULL;
    char err[1024];
    int rc, done;

    rc = users_parse(argc, argv, users_usage, "d", 1, "a username", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (users_check_name(users_usage, o.pos[0]) != 0)
        return CLI_EXIT_USAGE;
    rc = 1;
    st = users_open(o.db);
    if (!st)
        goto out;
    done = store_user_delete(st, o.pos[0], err, sizeof(err));
    if (done < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    if (done == 0) {
        fprintf(stderr, "haven: no user '%s' in %s\n", o.pos[0], o.db);
        goto out;
    }
    printf("deleted user %s and its sessions\n", o.pos[0]);
    rc = 0;
out:
    store_close(st);
    return rc;
}

/* ---------------------------------------------------------------- users list */

static void users_print_json(json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);

    if (text)
        puts(text);
    free(text);
    json_decref(o);
}

static json_t *users_json_time(int64_t t)
{
    char when[32];

    users_time(t, when, sizeof(when));
    return json_string(when);
}

static int users_list_one(void *arg, const struct store_user *u)
{
    const int *json = arg;

    if (*json) {
        json_t *o = json_object();
        json_object_set_new(o, "username", json_string(u->username));
        json_object_set_new(o, "group", json_string(u->group_name));
        json_object_set_new(o, "display_name",
                            u->display_name ? json_string(u->display_name) : json_null());
        json_object_set_new(o, "password", json_boolean(u->password_hash != NULL));
        json_object_set_new(o, "created", users_json_time(u->created));
        json_object_set_new(o, "updated", users_json_time(u->updated));
        users_print_json(o);
        return 0;
    }
    printf("%-24s %-16s %-8s %s\n", u->username, u->group_name, u->password_hash ? "yes" : "no",
           u->display_name ? u->display_name : "");
    return 0;
}

static int users_list(int argc, char **argv)
{
    struct users_opts o;
    struct store *st;
    char err[1024];
    int rc;

    rc = users_parse(argc, argv, users_usage, "dj", 0, "", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    st = users_open(o.db);
    if (!st)
        return 1;
    if (!o.json)
        printf("%-24s %-16s %-8s %s\n", "USERNAME", "GROUP", "PASSWORD", "NAME");
    rc = store_user_list(st, users_list_one, &o.json, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "haven: %s\n", err);
    store_close(st);
    return rc != 0 ? 1 : 0;
}

int cmd_users(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(users_usage, "users needs a sub-command");
    if (strcmp(argv[1], "import") == 0)
        return users_import(argc - 1, argv + 1);
    if (strcmp(argv[1], "add") == 0)
        return users_add(argc - 1, argv + 1);
    if (strcmp(argv[1], "passwd") == 0)
        return users_passwd(argc - 1, argv + 1);
    if (strcmp(argv[1], "del") == 0)
        return users_del(argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return users_list(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(users_usage, stdout);
        return 0;
    }
    return cli_usage_error(users_usage, "unknown users sub-command '%s'", argv[1]);
}

/* ---------------------------------------------------------------- session */

/* "90s", "30m", "8h", "1d", "1h30m" -> seconds; -1 if not such a duration (or 0, or too long). */
static int64_t users_duration(const char *s)
{
    int64_t total = 0;
    const char *p = s;

    if (!*p)
        return -1;
    while (*p) {
        int64_t n = 0, unit;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 9) {
            n = n * 10 + (*p - '0');
            p++;
            digits++;
        }
        if (digits == 0)
            return -1;
        switch (*p) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            return -1;
        }
        p++;
        total += n * unit;
        if (total > USERS_MAX_TTL)
            return -1;
    }
    return total > 0 ? total : -1;
}

static int session_add(int argc, char **argv)
{
    struct users_opts o;
    struct store *st = NULL;
    struct store_user u = {0};
    struct store_session s;
    char ip[IDENT_IP_MAX], err[1024], when[32];
    int64_t ttl = USERS_DEFAULT_TTL, now;
    int rc, found;

    rc = users_parse(argc, argv, session_usage, "dt", 2, "a username and an IP address", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (users_check_name(session_usage, o.pos[0]) != 0)
        return CLI_EXIT_USAGE;
    if (ident_ip_canonical(o.pos[1], ip) < 0)
        return cli_usage_error(session_usage, "'%s' is not an IP address", o.pos[1]);
    if (o.ttl) {
        ttl = users_duration(o.ttl);
        if (ttl < 0)
            return cli_usage_error(session_usage, "--ttl '%s' is not a duration from 1s to 366d",
                                   o.ttl);
    }
    rc = 1;
    st = users_open(o.db);
    if (!st)
        goto out;
    found = store_user_get(st, o.pos[0], &u, err, sizeof(err));
    if (found < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    if (found == 0) {
        fprintf(stderr, "haven: no user '%s' in %s (add it with `haven users add`)\n", o.pos[0],
                o.db);
        goto out;
    }
    now = clock_now();
    if (store_session_purge_expired(st, now, err, sizeof(err)) < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    s.ip = ip;
    s.username = u.username;
    s.created = now;
    s.expires = now + ttl;
    if (store_session_put(st, &s, err, sizeof(err)) < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    users_time(s.expires, when, sizeof(when));
    printf("session: %s is %s (group %s) until %s\n", ip, u.username, u.group_name, when);
    rc = 0;
out:
    store_user_cleanup(&u);
    store_close(st);
    return rc;
}

static int session_del(int argc, char **argv)
{
    struct users_opts o;
    struct store *st = NULL;
    char ip[IDENT_IP_MAX], err[1024];
    int rc, done;

    rc = users_parse(argc, argv, session_usage, "d", 1, "an IP address", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (ident_ip_canonical(o.pos[0], ip) < 0)
        return cli_usage_error(session_usage, "'%s' is not an IP address", o.pos[0]);
    rc = 1;
    st = users_open(o.db);
    if (!st)
        goto out;
    done = store_session_delete(st, ip, err, sizeof(err));
    if (done < 0) {
        fprintf(stderr, "haven: %s\n", err);
        goto out;
    }
    if (done == 0) {
        fprintf(stderr, "haven: no session for %s\n", ip);
        goto out;
    }
    printf("session for %s ended\n", ip);
    rc = 0;
out:
    store_close(st);
    return rc;
}

struct session_list_ctx {
    int json;
    int64_t now;
};

static int session_list_one(void *arg, const struct store_session *s)
{
    const struct session_list_ctx *c = arg;
    char when[32];

    if (s->expires <= c->now)
        return 0;
    if (c->json) {
        json_t *o = json_object();
        json_object_set_new(o, "ip", json_string(s->ip));
        json_object_set_new(o, "username", json_string(s->username));
        json_object_set_new(o, "created", users_json_time(s->created));
        json_object_set_new(o, "expires", users_json_time(s->expires));
        users_print_json(o);
        return 0;
    }
    users_time(s->expires, when, sizeof(when));
    printf("%-39s %-24s %s\n", s->ip, s->username, when);
    return 0;
}

static int session_list(int argc, char **argv)
{
    struct users_opts o;
    struct session_list_ctx c;
    struct store *st;
    char err[1024];
    int rc;

    rc = users_parse(argc, argv, session_usage, "dj", 0, "", &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    st = users_open(o.db);
    if (!st)
        return 1;
    c.json = o.json;
    c.now = clock_now();
    if (!o.json)
        printf("%-39s %-24s %s\n", "IP", "USERNAME", "EXPIRES");
    rc = store_session_list(st, session_list_one, &c, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "haven: %s\n", err);
    store_close(st);
    return rc != 0 ? 1 : 0;
}

int cmd_session(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(session_usage, "session needs a sub-command");
    if (strcmp(argv[1], "add") == 0)
        return session_add(argc - 1, argv + 1);
    if (strcmp(argv[1], "del") == 0)
        return session_del(argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return session_list(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(session_usage, stdout);
        return 0;
    }
    return cli_usage_error(session_usage, "unknown session sub-command '%s'", argv[1]);
}
