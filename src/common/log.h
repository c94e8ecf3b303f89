/*
 * log.h -- logging for the daemon and the command line.
 *
 * Messages go to standard error with a severity prefix. log_warn appends the
 * text of errno; the "x" variants do not. fatal() logs and exits with status 1;
 * it is for start-up only (STYLE.md rule 9).
 */
#ifndef HAVEN_COMMON_LOG_H
#define HAVEN_COMMON_LOG_H

#include <stdbool.h>

#define HAVEN_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Set the program name shown before each message and the most verbose level shown. */
void log_init(const char *progname, enum log_level level);

void log_warn(const char *fmt, ...) HAVEN_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) HAVEN_PRINTF(1, 2);
void log_info(const char *fmt, ...) HAVEN_PRINTF(1, 2);
void log_debug(const char *fmt, ...) HAVEN_PRINTF(1, 2);
__attribute__((noreturn)) void fatal(const char *fmt, ...) HAVEN_PRINTF(1, 2);
__attribute__((noreturn)) void fatalx(const char *fmt, ...) HAVEN_PRINTF(1, 2);

#endif
