/*
 * cli.h -- what the `haven` sub-commands share.
 *
 * Each sub-command is a function taking argc/argv from its own name on. It
 * returns the process exit status: 0 on success, 1 when the work failed
 * (a file could not be read, a download failed), 2 on bad usage.
 */
#ifndef HAVEN_CLI_CLI_H
#define HAVEN_CLI_CLI_H

struct option;
struct policy;
struct json_t;

#define CLI_EXIT_USAGE 2

int cmd_check(int argc, char **argv);
int cmd_lists(int argc, char **argv);
int cmd_squid_helper(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_users(int argc, char **argv);
int cmd_session(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_alerts(int argc, char **argv);
int cmd_activity(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_purge(int argc, char **argv);
int cmd_sar(int argc, char **argv);

/* The demo policy and database `make run` builds, used when none is given. */
const char *cli_default_policy(void);
const char *cli_default_db(void);
/* The keyword libraries that come with haven ($HAVEN_MONITOR_DIR overrides). */
const char *cli_default_monitor_dir(void);

/*
 * Open the database at db_path and compile the policy at policy_path against
 * it (NULL: the defaults). Prints the reason and returns NULL on failure.
 */
struct policy *cli_load_policy(const char *policy_path, const char *db_path);

/* The group called name (NULL: the default group); -1, with a message listing them, if none. */
int cli_find_group(const struct policy *p, const char *name);

/*
 * The option loop of a sub-command (argv[0] is its name): getopt_long over opts and
 * shortopts; 'h' prints usage and returns 1. An option whose value is not in allowed, an
 * unknown one or one without its value is a usage error. Each accepted option is given to
 * set(c, value, arg). Positional arguments go to pos: exactly npos of them, named by what in
 * the message when missing. Returns 0, 1 after --help, or CLI_EXIT_USAGE.
 */
int cli_options(int argc, char **argv, const char *usage, const char *shortopts,
                const struct option *opts, const char *allowed,
                void (*set)(int c, char *value, void *arg), void *arg, char **pos, int npos,
                const char *what);

/* A JSON string of text; invalid UTF-8 is replaced by U+FFFD so the value is never lost. */
struct json_t *cli_json_string(const char *text);

/* Print "haven: MESSAGE" and a usage hint to standard error; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
