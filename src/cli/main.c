#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "catdb/catdb.h"
#include "cli/cli.h"
#include "common/log.h"
#include "policy/policy.h"

static const char main_usage[] =
    "usage: haven COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  check [--policy FILE] [--db FILE] [--group NAME] [--at TIME] [--json] URL...|-\n"
    "                      show what the policy does with each URL\n"
    "  lists compile [--ut1 DIR] [--list CATEGORY=FILE]... [--rejects FILE] -o FILE\n"
    "                      compile block lists into a category database\n"
    "  lists update [--url URL] [--list CATEGORY=FILE]... [-o FILE]\n"
    "                      download the UT1 lists and swap in a new database\n"
    "  lists categories [--markdown]\n"
    "                      list haven's categories\n"
    "  lists info [--db FILE]\n"
    "                      show what a category database holds\n"
    "  squid-helper [--policy FILE] [--db FILE] [--group NAME] [--block-url URL]\n"
    "                      answer Squid url_rewrite requests (a squidGuard replacement)\n"
    "  serve [--config FILE] [--check-config] [--dump-config]\n"
    "                      run the filtering proxy (docs/configuration.md)\n"
    "  users import|add|passwd|del|list ...\n"
    "                      manage the users database (docs/users.md)\n"
    "  session add|del|list ...\n"
    "                      tie an IP address to a user for a while\n"
    "  ca init|export|show|mint ...\n"
    "                      the HTTPS inspection CA (docs/tls-inspection.md)\n"
    "  monitor check [--group NAME] [--json] [TEXT...]\n"
    "                      show what the safeguarding monitor finds in text (docs/monitoring.md)\n"
    "  alerts list|show|resolve ...\n"
    "                      safeguarding alerts and their outcomes (docs/alerts.md)\n"
    "  activity USER [--around TIME] [--hours N]\n"
    "                      one user's activity around a time\n"
    "  report [--since TIME] [--until TIME] [--json]\n"
    "                      a summary for the DSL and governors\n"
    "  purge               delete what is past its retention period (docs/records.md)\n"
    "  sar USER -o FILE    export everything held about one person (Subject Access Request)\n"
    "  version             print the version\n"
    "\n"
    "See docs/ and `haven COMMAND --help`.\n";

const char *cli_default_policy(void)
{
    const char *env = getenv("HAVEN_POLICY");

    return env && *env ? env : HAVEN_SOURCE_DIR "/demo/policy.conf";
}

const char *cli_default_db(void)
{
    const char *env = getenv("HAVEN_DB");

    return env && *env ? env : HAVEN_SOURCE_DIR "/var/demo.cdb";
}

struct policy *cli_load_policy(const char *policy_path, const char *db_path)
{
    struct catdb *db;
    struct policy *p;
    struct stat st;
    char err[1024];

    if (!db_path) {
        db_path = cli_default_db();
        if (stat(db_path, &st) != 0) {
            fprintf(stderr,
                    "haven: no category database at %s\n"
                    "haven: build the demo one with `make run`, or give --db FILE "
                    "(see `haven lists compile`)\n",
                    db_path);
            return NULL;
        }
    }
    if (!policy_path)
        policy_path = cli_default_policy();
    db = catdb_open(db_path, err, sizeof(err));
    if (!db) {
        fprintf(stderr, "haven: %s\n", err);
        return NULL;
    }
    p = policy_load(policy_path, db, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "haven: %s\n", err);
        return NULL;
    }
    return p;
}

int cli_find_group(const struct policy *p, const char *name)
{
    int g;

    if (!name)
        return policy_default_group(p);
    g = policy_group_find(p, name);
    if (g < 0) {
        fprintf(stderr, "haven: the policy has no group '%s' (groups:", name);
        for (int i = 0; i < policy_group_count(p); i++)
            fprintf(stderr, " %s", policy_group_name(p, i));
        fputs(")\n", stderr);
    }
    return g;
}

int cli_options(int argc, char **argv, const char *usage, const char *shortopts,
                const struct option *opts, const char *allowed,
                void (*set)(int c, char *value, void *arg), void *arg, char **pos, int npos,
                const char *what)
{
    int c, idx, n = 0;

    optind = 1;
    opterr = 0;
    for (;;) {
        idx = -1;
        c = getopt_long(argc, argv, shortopts, opts, &idx);
        if (c == -1)
            break;
        if (c == 'h') {
            fputs(usage, stdout);
            return 1;
        }
        if (c == ':')
            return cli_usage_error(usage, "%s needs a value", argv[optind - 1]);
        if (c == '?')
            return cli_usage_error(usage, "%s: unknown option '%s'", argv[0], argv[optind - 1]);
        if (!strchr(allowed, c) && idx >= 0)
            return cli_usage_error(usage, "%s does not take --%s", argv[0], opts[idx].name);
        if (!strchr(allowed, c))
            return cli_usage_error(usage, "%s does not take -%c", argv[0], c);
        set(c, optarg, arg);
    }
    for (; optind < argc; optind++) {
        if (n == npos)
            return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
        pos[n++] = argv[optind];
    }
    if (n < npos)
        return cli_usage_error(usage, "%s needs %s", argv[0], what);
    return 0;
}

int cli_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;

    fputs("haven: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    log_init("haven", LOG_LEVEL_INFO);
    if (argc < 2)
        return cli_usage_error(main_usage, "no command given");
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "lists") == 0)
        return cmd_lists(argc - 1, argv + 1);
    if (strcmp(argv[1], "squid-helper") == 0)
        return cmd_squid_helper(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "users") == 0)
        return cmd_users(argc - 1, argv + 1);
    if (strcmp(argv[1], "session") == 0)
        return cmd_session(argc - 1, argv + 1);
    if (strcmp(argv[1], "ca") == 0)
        return cmd_ca(argc - 1, argv + 1);
    if (strcmp(argv[1], "monitor") == 0)
        return cmd_monitor(argc - 1, argv + 1);
    if (strcmp(argv[1], "alerts") == 0)
        return cmd_alerts(argc - 1, argv + 1);
    if (strcmp(argv[1], "activity") == 0)
        return cmd_activity(argc - 1, argv + 1);
    if (strcmp(argv[1], "report") == 0)
        return cmd_report(argc - 1, argv + 1);
    if (strcmp(argv[1], "purge") == 0)
        return cmd_purge(argc - 1, argv + 1);
    if (strcmp(argv[1], "sar") == 0)
        return cmd_sar(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("haven %s\n", HAVEN_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(main_usage, stdout);
        return 0;
    }
    return cli_usage_error(main_usage, "unknown command '%s'", argv[1]);
}

/*
 * A JSON string of text: invalid UTF-8 (a URL can hold any bytes) is replaced by U+FFFD so
 * the object is still printed with every key.
 */
json_t *cli_json_string(const char *text)
{
    json_t *j = json_string(text);
    size_t len = strlen(text), o = 0;
    char *buf;

    if (j)
        return j;
    buf = malloc(len * 3 + 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        json_t *one = n > 0 && i + n <= len ? json_stringn(text + i, n) : NULL;
        if (one) {
            memcpy(buf + o, text + i, n);
            o += n;
            i += n;
            json_decref(one);
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    j = json_stringn(buf, o);
    free(buf);
    return j;
}
