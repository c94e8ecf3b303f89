/*
 * check.c -- `haven check`: what the policy does with a URL, and why.
 */
#include "common/compat.h"

#include <getopt.h>
#include <jansson.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/slice.h"
#include "common/tz.h"
#include "http/url.h"
#include "policy/policy.h"

static const char check_usage[] =
    "usage: haven check [--policy FILE] [--db FILE] [--group NAME] [--at TIME] [--json] "
    "URL...\n"
    "       haven check [OPTIONS] -      (URLs from standard input, one per line)\n"
    "  --policy FILE  policy file (default: the demo policy)\n"
    "  --db FILE      category database (default: the demo database `make run` builds)\n"
    "  --group NAME   decide for this group (default: the policy's default group)\n"
    "  --at TIME      decide as at this time, ISO 8601, e.g. 2026-11-30T10:15 (school time)\n"
    "                 or 2026-11-30T10:15:00Z (UTC); default: now\n"
    "  --json         one JSON object per URL per line\n";

static void check_json(const struct policy *p, const char *in, const struct url *u,
                       const struct policy_verdict *v, const char *reason, const char *why)
{
    json_t *o = json_object();
    char *s;

    json_object_set_new(o, "url", cli_json_string(in));
    if (why) {
        json_object_set_new(o, "normalized", json_null());
        json_object_set_new(o, "error", json_string(why));
    } else {
        json_t *cats = json_array();
        json_object_set_new(o, "normalized", json_string(u->text));
        json_object_set_new(o, "group", cli_json_string(policy_group_name(p, v->group)));
        json_object_set_new(o, "action", json_string(policy_action_name(v->action)));
        for (int c = 0; c < POLICY_MAX_CATEGORIES; c++) {
            if (v->categories[c / 64] >> (c % 64) & 1)
                json_array_append_new(cats, cli_json_string(policy_category_name(p, c)));
        }
        json_object_set_new(o, "categories", cats);
        json_object_set_new(o, "rule", cli_json_string(v->rule));
        json_object_set_new(o, "reason", cli_json_string(reason));
        json_object_set_new(o, "inspect", json_boolean(v->inspect));
    }
    s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    puts(s);
    free(s);
    json_decref(o);
}

static void check_text(const struct policy *p, const char *in, const struct url *u,
                       const struct policy_verdict *v, const char *reason, const char *why)
{
    static const char *const upper[] = {"ALLOW", "WARN", "BLOCK"};
    int first = 1;

    if (why) {
        printf("ERROR  %s\n       %s\n", in, why);
        return;
    }
    printf("%-6s %s\n       group %s", upper[v->action], u->text, policy_group_name(p, v->group));
    for (int c = 0; c < POLICY_MAX_CATEGORIES; c++) {
        if (v->categories[c / 64] >> (c % 64) & 1) {
            printf("%s%s", first ? "; categories " : ", ", policy_category_name(p, c));
            first = 0;
        }
    }
    printf("\n       %s\n       rule: %s\n", reason, v->rule);
    if (v->safe_search != POLICY_SS_NONE)
        printf("       safe search enforced: %s\n", policy_safe_search_text(v->safe_search));
    if (v->inspect)
        printf(
            "       HTTPS to this site is decrypted and filtered by full address (inspect on)\n");
}

/* Decide for one URL and print the verdict; why, if set, is an error found before parsing. */
static void check_one(const struct policy *p, const char *in, int group, int64_t t, int json,
                      const char *why)
{
    static struct url u;
    static char reason[POLICY_REASON_MAX];
    struct policy_verdict v;
    struct slice text = slice_trim(slice_cstr(in));

    if (!why && url_normalize(text.p, text.len, &u, &why) == 0)
        policy_explain(p, &u, group, t, &v, reason, sizeof(reason));
    if (json)
        check_json(p, in, &u, &v, reason, why);
    else
        check_text(p, in, &u, &v, reason, why);
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"policy", required_argument, NULL, 'p'},
        {"db", required_argument, NULL, 'd'},
        {"group", required_argument, NULL, 'g'},
        {"at", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *policy_path = NULL, *db_path = NULL, *group_name = NULL, *at = NULL;
    struct policy *p;
    int json = 0, c, group, local = 0;
    int64_t t;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            policy_path = optarg;
            break;
        case 'd':
            db_path = optarg;
            break;
        case 'g':
            group_name = optarg;
            break;
        case 'a':
            at = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            fputs(check_usage, stdout);
            return 0;
        default:
            return cli_usage_error(check_usage, "bad option");
        }
    }
    if (optind >= argc)
        return cli_usage_error(check_usage, "no URL given (give URLs, or - to read them)");
    if (at && clock_parse_iso8601(at, &t, &local) < 0)
        return cli_usage_error(check_usage, "--at '%s' is not an ISO 8601 time", at);
    p = cli_load_policy(policy_path, db_path);
    if (!p)
        return 1;
    group = cli_find_group(p, group_name);
    if (group < 0) {
        policy_free(p);
        return CLI_EXIT_USAGE;
    }
    if (!at)
        t = clock_now();
    else if (local)
        t = tz_local_to_utc(policy_tz(p), t);

    for (int i = optind; i < argc; i++) {
        if (strcmp(argv[i], "-") != 0) {
            check_one(p, argv[i], group, t, json, NULL);
            continue;
        }
        char line[URL_MAX + 2];
        while (fgets(line, sizeof(line), stdin)) {
            size_t n = strcspn(line, "\r\n");
            if (line[n] == '\0' && !feof(stdin)) {
                /* Longer than any URL can be: report it and skip the rest of the line. */
                int ch;
                while ((ch = getchar()) != EOF && ch != '\n')
                    ;
                line[64] = '\0';
                check_one(p, line, group, t, json, "URL too long");
                continue;
            }
            line[n] = '\0';
            if (n == 0)
                continue;
            check_one(p, line, group, t, json, NULL);
        }
    }
    policy_free(p);
    return 0;
}
