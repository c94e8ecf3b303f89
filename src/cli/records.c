#include "common/compat.h"

#include <stdio.h>

#include "cli/cli.h"

static int records_todo(const char *name)
{
    fprintf(stderr, "haven: '%s' is not written yet\n", name);
    return 1;
}

int cmd_alerts(int argc, char **argv)
{
    (void)argc;
    return records_todo(argv[0]);
}

int cmd_activity(int argc, char **argv)
{
    (void)argc;
    return records_todo(argv[0]);
}

int cmd_report(int argc, char **argv)
{
    (void)argc;
    return records_todo(argv[0]);
}

int cmd_purge(int argc, char **argv)
{
    (void)argc;
    return records_todo(argv[0]);
}

int cmd_sar(int argc, char **argv)
{
    (void)argc;
    return records_todo(argv[0]);
}
