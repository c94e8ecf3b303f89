/*
 * monitor.c -- `haven monitor check`: what the safeguarding monitor finds in text.
 *
 * Each input (an argument, or a line of standard input) is scanned exactly as
 * the proxy scans a search term: the same libraries, the same matcher, the
 * same group settings (alert-severity, alert-themes, monitor on|off).
 */
#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "monitor/e2g.h"
#include "monitor/library.h"
#include "monitor/match.h"
#include "policy/policy.h"

#define MONITOR_LINE_MAX (1024 * 1024)

static const char monitor_usage[] =
    "usage: haven monitor check [--library-dir DIR] [--group NAME] [--policy FILE] [--db FILE]\n"
    "                           [--json] [TEXT...]\n"
    "  Scan each TEXT (or each line of standard input when none is given) with the\n"
    "  keyword libraries and say whether it would raise an alert.\n"
    "  --library-dir DIR  keyword libraries (default: the ones that come with haven)\n"
    "  --group NAME       use this policy group's alert settings and exclusions\n"
    "                     (default: alert at severity 3 or more, every theme)\n"
    "  --policy FILE      the policy holding the group (default: the demo policy)\n"
    "  --db FILE          category database for the policy (default: the demo one)\n"
    "  --json             one JSON object per input: text, alert, severity, score, matches\n"
    "\n"
    "usage: haven monitor import-e2g --theme THEME [--language CODE] [--encoding latin1|utf8]\n"
    "                                FILE... -o OUT.lib\n"
    "  Turn E2Guardian weighted phrase lists into one keyword library with one theme.\n"
    "  --theme THEME      the theme of every phrase (" LIB_THEME_LIST ")\n"
    "  --language CODE    the library's language (default: en)\n"
    "  --encoding ENC     how the lists are written (default: each file UTF-8 when it\n"
    "                     is valid UTF-8, else latin1)\n"
    "  -o, --output OUT   the library file to write\n";

struct monitor_opts {
    const char *dir, *group, *policy, *db;
    int json;
};

const char *cli_default_monitor_dir(void)
{
    const char *env = getenv("HAVEN_MONITOR_DIR");

    return env && *env ? env : HAVEN_SOURCE_DIR "/monitor";
}

static void monitor_print(const char *text, const struct match_result *r, int alert, int severity,
                          int json)
{
    if (json) {
        json_t *o = json_object(), *arr = json_array();
        char *s;
        json_object_set_new(o, "text", cli_json_string(text));
        json_object_set_new(o, "alert", json_boolean(alert));
        json_object_set_new(o, "severity", json_integer(severity));
        json_object_set_new(o, "score", json_integer(r->score));
        for (int i = 0; i < r->nhits; i++) {
            const struct match_hit *h = &r->hits[i];
            json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "theme",
                                                 library_theme_name(h->phrase->theme), "area",
                                                 library_theme_4c(h->phrase->theme), "severity",
                                                 h->severity, "lang", h->lang, "phrase",
                                                 h->phrase->text, "excerpt", h->excerpt));
        }
        json_object_set_new(o, "matches", arr);
        s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
            puts(s);
        free(s);
        json_decref(o);
        return;
    }
    printf("%s  severity %d  %s\n", alert ? "ALERT" : "ok   ", severity, text);
    for (int i = 0; i < r->nhits; i++) {
        const struct match_hit *h = &r->hits[i];
        printf("       %d %-19s [%s] \"%s\"  in: %s\n", h->severity,
               library_theme_name(h->phrase->theme), h->lang, h->phrase->text, h->excerpt);
    }
}

static int monitor_one(const struct match_db *db, struct match_scratch *scr,
                       const struct policy_monitor *pm, const char *group, const char *text,
                       size_t len, int json)
{
    struct match_result r;
    struct match_where where = {group, NULL, NULL};
    int severity;

    if (match_text(db, scr, text, len, &where, &r) < 0) {
        fprintf(stderr, "haven: the scanner failed (out of memory)\n");
        return -1;
    }
    severity = pm->on ? match_alert_severity(&r, pm->alert_severity, pm->themes) : 0;
    monitor_print(text, &r, severity > 0, r.severity, json);
    return 0;
}

static int monitor_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"library-dir", required_argument, NULL, 'l'},
        {"group", required_argument, NULL, 'g'},
        {"policy", required_argument, NULL, 'p'},
        {"db", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct monitor_opts o = {cli_default_monitor_dir(), NULL, NULL, NULL, 0};
    struct policy_monitor pm = {1, 3, (1u << LIB_NTHEMES) - 1, 0};
    struct policy *p = NULL;
    struct match_db *db = NULL;
    struct match_scratch *scr = NULL;
    char err[1024], *line = NULL;
    size_t cap = 0;
    int c, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            o.dir = optarg;
            break;
        case 'g':
            o.group = optarg;
            break;
        case 'p':
            o.policy = optarg;
            break;
        case 'd':
            o.db = optarg;
            break;
        case 'j':
            o.json = 1;
            break;
        case 'h':
            fputs(monitor_usage, stdout);
            return 0;
        default:
            return cli_usage_error(monitor_usage, "bad option '%s'", argv[optind - 1]);
        }
    }
    if (o.group || o.policy) {
        int g;
        p = cli_load_policy(o.policy, o.db);
        if (!p)
            return 1;
        g = cli_find_group(p, o.group);
        if (g < 0)
            goto done;
        pm = *policy_group_monitor(p, g);
        o.group = policy_group_name(p, g);
    }
    db = match_db_load_dir(o.dir, err, sizeof(err));
    if (!db) {
        fprintf(stderr, "haven: %s\n", err);
        goto done;
    }
    if (match_scratch_ensure(&scr, db) < 0) {
        fprintf(stderr, "haven: out of memory\n");
        goto done;
    }
    if (optind < argc) {
        for (int i = optind; i < argc; i++) {
            if (monitor_one(db, scr, &pm, o.group, argv[i], strlen(argv[i]), o.json) < 0)
                goto done;
        }
    } else {
        ssize_t n;
        while ((n = getline(&line, &cap, stdin)) >= 0) {
            size_t len = (size_t)n;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = '\0';
            if (len > MONITOR_LINE_MAX) {
                fprintf(stderr, "haven: a line of %zu bytes is too long (the limit is %d)\n", len,
                        MONITOR_LINE_MAX);
                goto done;
            }
            if (monitor_one(db, scr, &pm, o.group, line, len, o.json) < 0)
                goto done;
        }
    }
    fflush(stdout);
    rc = 0;
done:
    free(line);
    match_scratch_free(scr);
    match_db_free(db);
    policy_free(p);
    return rc;
}

/* `haven monitor import-e2g`: E2Guardian weighted phrase lists -> one keyword library. */
static int monitor_import_e2g(int argc, char **argv)
{
    static const struct option opts[] = {
        {"theme", required_argument, NULL, 't'},    {"language", required_argument, NULL, 'L'},
        {"encoding", required_argument, NULL, 'e'}, {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    struct e2g_options eo = {-1, "en", E2G_ENC_AUTO, 0};
    const char *theme = NULL, *outpath = NULL;
    struct e2g *e = NULL;
    struct library *check = NULL;
    const struct e2g_stats *st;
    char err[1024], *text = NULL;
    size_t len = 0, nwarn;
    FILE *f = NULL;
    int c, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            theme = optarg;
            break;
        case 'L':
            eo.language = optarg;
            break;
        case 'e':
            if (strcmp(optarg, "latin1") == 0) {
                eo.encoding = E2G_ENC_LATIN1;
            } else if (strcmp(optarg, "utf8") == 0) {
                eo.encoding = E2G_ENC_UTF8;
            } else {
                return cli_usage_error(monitor_usage, "--encoding must be latin1 or utf8, not '%s'",
                                       optarg);
            }
            break;
        case 'o':
            outpath = optarg;
            break;
        case 'h':
            fputs(monitor_usage, stdout);
            return 0;
        default:
            return cli_usage_error(monitor_usage, "bad option '%s'", argv[optind - 1]);
        }
    }
    if (!theme)
        return cli_usage_error(monitor_usage, "import-e2g needs --theme THEME (%s)",
                               LIB_THEME_LIST);
    eo.theme = library_theme_find(theme);
    if (eo.theme < 0) {
        const char *hint = library_theme_suggest(theme);
        if (hint)
            return cli_usage_error(monitor_usage, "unknown theme '%s' (did you mean '%s'?)", theme,
                                   hint);
        return cli_usage_error(monitor_usage, "unknown theme '%s' (the themes are %s)", theme,
                               LIB_THEME_LIST);
    }
    if (!library_language_known(eo.language))
        return cli_usage_error(monitor_usage,
                               "unknown language '%s' (the languages are en, pl, ro, ur, pa, "
                               "ar, bn, cy, es, fr, pt)",
                               eo.language);
    if (!outpath)
        return cli_usage_error(monitor_usage, "import-e2g needs -o OUT.lib");
    if (optind >= argc)
        return cli_usage_error(monitor_usage, "import-e2g needs at least one list FILE");
    e = e2g_create(&eo);
    for (int i = optind; i < argc; i++) {
        if (e2g_add_file(e, argv[i], err, sizeof(err)) < 0) {
            fprintf(stderr, "haven: %s\n", err);
            goto done;
        }
    }
    nwarn = e2g_warning_count(e);
    for (size_t i = 0; i < nwarn && e2g_warning(e, i); i++)
        fprintf(stderr, "%s\n", e2g_warning(e, i));
    if (nwarn > 0)
        fprintf(stderr, "haven: %zu warning%s (malformed lines were skipped)\n", nwarn,
                nwarn == 1 ? "" : "s");
    text = e2g_render(e, &len, err, sizeof(err));
    if (!text) {
        fprintf(stderr, "haven: %s\n", err);
        goto done;
    }
    check = library_load_buffer(outpath, text, len, err, sizeof(err));
    if (!check) {
        fprintf(stderr, "haven: the imported library does not load (please report this): %s\n",
                err);
        goto done;
    }
    f = fopen(outpath, "wb");
    if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "haven: cannot write %s: %s\n", outpath, strerror(errno));
        goto done;
    }
    f = NULL;
    st = e2g_stats(e);
    printf("wrote %s: %zu phrases in theme %s (%zu combinations as context words, %zu "
           "duplicates merged)\n",
           outpath, st->phrases, library_theme_name(eo.theme), st->combos, st->merged);
    printf("dropped: %zu good phrases, %zu combinations, %zu phrases too long or without "
           "letters; %zu in-word phrases made prefixes, %zu whole words (see the header of %s)\n",
           st->good, st->combo_many + st->combo_words + st->combo_weak + st->combo_subsumed,
           st->too_long + st->no_letters, st->prefix, st->whole, outpath);
    rc = 0;
done:
    if (f)
        fclose(f);
    library_free(check);
    free(text);
    e2g_destroy(e);
    return rc;
}

int cmd_monitor(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return monitor_check(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "import-e2g") == 0)
        return monitor_import_e2g(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(monitor_usage, stdout);
        return 0;
    }
    return cli_usage_error(monitor_usage, "monitor needs a sub-command: check or import-e2g");
}
