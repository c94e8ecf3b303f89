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
 *
 * Semantics, following RFC 8536 and the reference implementation (tzcode):
 *   - Before the first transition in the file, local time type 0 applies.
 *   - From the last transition on, the footer's TZ rule applies; with no
 *     transitions at all, it applies everywhere. An empty footer, or a
 *     version 1 file, keeps the last transition's type for ever.
 *   - Instants are clamped to +-2^50 seconds (about 35 million years either
 *     side of 1970), so every result fits in a struct tz_local.
 *   - Files with leap seconds ("right/" zones) and files over 1 MiB are
 *     refused.
 */
#ifndef HAVEN_COMMON_TZ_H
#define HAVEN_COMMON_TZ_H

#include <stddef.h>
#include <stdint.h>

struct tz;

struct tz_local {
    int year, month, day; /* month 1-12, day 1-31 */
    int wday;             /* 0 = Sunday ... 6 = Saturday */
    int hour, minute, second;
    int32_t utc_offset; /* seconds east of UTC in force at that instant */
    int is_dst;
};

/*
 * Load zone NAME ("Europe/London", "UTC") from the tz database directory
 * (/usr/share/zoneinfo unless the TZDIR environment variable says otherwise).
 * NAME must be a non-empty relative path of letters, digits and "/_+-.",
 * without "..", at most 255 bytes. Returns the zone, or NULL with a one-line
 * message naming the zone and the problem in err ("no such time zone
 * 'Europe/Londn'", "Europe/London: truncated TZif data"); err may be NULL.
 * If NAME is exactly "UTC" and there is no such file, a built-in UTC zone is
 * returned, so a machine without the tz database can still run on UTC; a UTC
 * file that exists but is corrupt is still an error. Caller frees with
 * tz_free().
 */
struct tz *tz_load(const char *name, char *err, size_t errlen);

/*
 * Parse a TZif image already in memory (used by tz_load and the fuzz harness).
 * DATA may be anything: it is checked, never trusted, and not kept. NAME is
 * copied, and prefixes every message written to err ("NAME: bad footer TZ
 * string '...'"). Returns the zone or NULL; caller frees with tz_free().
 */
struct tz *tz_parse(const char *name, const unsigned char *data, size_t len, char *err,
                    size_t errlen);

/* Free a zone; NULL is allowed. */
void tz_free(struct tz *tz);

/* The name the zone was loaded with; valid until tz_free(). */
const char *tz_name(const struct tz *tz);

/* Break the UTC instant t (seconds since the epoch) into local time. Never fails. */
void tz_to_local(const struct tz *tz, int64_t t, struct tz_local *out);

/*
 * Convert a local wall-clock reading, given as seconds since the epoch as if
 * the reading were UTC, to the real UTC instant. In a gap (clocks go forward)
 * the reading is taken with the offset before the change, so London's
 * nonexistent 01:30 on 2026-03-29 gives 01:30Z, which is 02:30 BST; in an
 * overlap (clocks go back) the first, earlier, instant is returned, so 01:30
 * on 2026-10-25 gives 00:30Z (01:30 BST). Never fails.
 */
int64_t tz_local_to_utc(const struct tz *tz, int64_t local);

#endif
