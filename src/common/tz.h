/*
 * tz.h -- the school's time zone, read from the system's tz database.
 *
 * Schedules ("Monday to Friday, 08:45 to 15:15") are written in the school's
 * local time. This module turns a UTC instant into a local weekday and time of
 * day, correctly across daylight-saving changes, without touching the TZ
 * environment variable or any process-wide state, so worker threads can call
 * it at the same time. It reads TZif files (RFC 8536, versions 1 to 4),
 * including the POSIX TZ rule in the footer for instants after the last
 * transition in the file.
 *
 * A struct tz is immutable once loaded and safe to share between threads.
 */
#ifndef HAVEN_COMMON_TZ_H
#define HAVEN_COMMON_TZ_H

#include <stddef.h>
#include <stdint.h>

struct tz;

struct tz_local {
    int year, month, day;     /* month 1-12, day 1-31 */
    int wday;                 /* 0 = Sunday ... 6 = Saturday */
    int hour, minute, second;
    int32_t utc_offset;       /* seconds east of UTC in force at that instant */
    int is_dst;
};

/*
 * Load zone NAME ("Europe/London", "UTC") from the tz database directory
 * (/usr/share/zoneinfo unless the TZDIR environment variable says otherwise).
 * NAME must be a relative path without "..". Returns the zone, or NULL with a
 * message naming the problem in err. Caller frees with tz_free().
 */
struct tz *tz_load(const char *name, char *err, size_t errlen);

/* Parse a TZif image already in memory (used by tz_load and the fuzz harness). */
struct tz *tz_parse(const char *name, const unsigned char *data, size_t len, char *err,
                    size_t errlen);

void tz_free(struct tz *tz);

/* The name the zone was loaded with. */
const char *tz_name(const struct tz *tz);

/* Break the UTC instant t (seconds since the epoch) into local time. */
void tz_to_local(const struct tz *tz, int64_t t, struct tz_local *out);

/*
 * Convert a local wall-clock reading, given as seconds since the epoch as if
 * the reading were UTC, to the real UTC instant. In a gap (clocks go forward)
 * the reading is taken with the offset before the change; in an overlap
 * (clocks go back) the first, earlier, instant is returned.
 */
int64_t tz_local_to_utc(const struct tz *tz, int64_t local);

#endif
