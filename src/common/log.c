#include "common/compat.h"

#include <errno.h>
#include <stdarg.h>

#include "common/log.h"

static const char *log_progname = "haven";
static enum log_level log_level_max = LOG_LEVEL_INFO;

void log_init(const char *progname, enum log_level level)
{
    log_progname = progname;
    log_level_max = level;
}

static void log_vemit(enum log_level level, int err, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void log_vemit(enum log_level level, int err, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char msg[1024];

    if (level > log_level_max)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (err)
        fprintf(stderr, "%s: %s: %s: %s\n", log_progname, names[level], msg, strerror(err));
    else
        fprintf(stderr, "%s: %s: %s\n", log_progname, names[level], msg);
}

#define LOG_BODY(level, err)                                                                       \
    do {                                                                                           \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_vemit(level, err, fmt, ap);                                                            \
        va_end(ap);                                                                                \
    } while (0)

void log_warn(const char *fmt, ...)
{
    int err = errno;
    LOG_BODY(LOG_LEVEL_WARN, err);
}

void log_warnx(const char *fmt, ...)
{
    LOG_BODY(LOG_LEVEL_WARN, 0);
}

void log_info(const char *fmt, ...)
{
    LOG_BODY(LOG_LEVEL_INFO, 0);
}

void log_debug(const char *fmt, ...)
{
    LOG_BODY(LOG_LEVEL_DEBUG, 0);
}

void fatal(const char *fmt, ...)
{
    int err = errno;
    LOG_BODY(LOG_LEVEL_ERR, err);
    exit(1);
}

void fatalx(const char *fmt, ...)
{
    LOG_BODY(LOG_LEVEL_ERR, 0);
    exit(1);
}
