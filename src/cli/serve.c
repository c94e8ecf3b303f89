/*
 * serve.c -- `haven serve`: the filtering proxy.
 */
#include "common/compat.h"

#include <getopt.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/log.h"
#include "config/config.h"
#include "proxy/server.h"
#include "proxy/snapshot.h"

static const char serve_usage[] =
    "usage: haven serve [--config FILE] [--check-config] [--dump-config] [--debug]\n"
    "  --config FILE   configuration (default: the demo configuration demo/haven.conf)\n"
    "  --check-config  check the configuration, the policy and the database, then exit\n"
    "  --dump-config   print every option with its effective value, then exit\n"
    "  --debug         log every connection's end\n"
    "Signals: HUP reloads the policy and lists, USR1 reopens the logs, TERM drains and stops.\n";

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'k'},
        {"dump-config", no_argument, NULL, 'd'},  {"debug", no_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *path = HAVEN_SOURCE_DIR "/demo/haven.conf";
    struct config *cfg;
    struct server *srv;
    char err[1024];
    int check = 0, dump = 0, c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'd':
            dump = 1;
            break;
        case 'g':
            log_init("haven", LOG_LEVEL_DEBUG);
            break;
        case 'h':
            fputs(serve_usage, stdout);
            return 0;
        default:
            return cli_usage_error(serve_usage, "bad option");
        }
    }
    if (optind < argc)
        return cli_usage_error(serve_usage, "unexpected argument '%s'", argv[optind]);
    cfg = config_load(path, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "haven: %s\n", err);
        return 1;
    }
    if (dump) {
        config_dump(cfg, stdout);
        config_free(cfg);
        return 0;
    }
    if (check) {
        /* The same loaders the daemon uses: configuration, policy, database, users. */
        struct snapshot *snap = snapshot_load(cfg, 1, err, sizeof(err));
        if (!snap) {
            fprintf(stderr, "haven: %s\n", err);
            config_free(cfg);
            return 1;
        }
        printf("%s: ok (policy %s, database %s)\n", path, cfg->policy, cfg->database);
        snapshot_unref(snap);
        config_free(cfg);
        return 0;
    }
    if (getenv("HAVEN_TEST_CLOCK_FILE"))
        clock_use_file(getenv("HAVEN_TEST_CLOCK_FILE"));
    srv = server_create(cfg, err, sizeof(err));
    if (!srv) {
        fprintf(stderr, "haven: %s\n", err);
        config_free(cfg);
        return 1;
    }
    rc = server_run(srv);
    server_destroy(srv);
    config_free(cfg);
    return rc;
}
