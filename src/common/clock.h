/*
 * clock.h -- the one source of wall-clock time (STYLE.md rule 18).
 *
 * Everything that asks "what time is it" calls clock_now(). Tests and the
 * `--at` option of `haven check` fix the clock with clock_set_fake().
 */
#ifndef HAVEN_COMMON_CLOCK_H
#define HAVEN_COMMON_CLOCK_H

#include <stdint.h>

/* Seconds since the Unix epoch, UTC: the real time, or the fake time if one is set. */
int64_t clock_now(void);

/* The same in milliseconds (a fake clock gives its seconds * 1000). */
int64_t clock_now_ms(void);

/* Fix the clock at t (seconds since the epoch); clock_clear_fake() returns to real time. */
void clock_set_fake(int64_t t);
void clock_clear_fake(void);
/* Tests of the daemon: read the time (seconds since the epoch, one line) from path on every
 * call, so a test moves time by rewriting the file (`haven serve` calls this when the
 * environment has HAVEN_TEST_CLOCK_FILE). Call before any thread starts; "" or NULL stops it. */
void clock_use_file(const char *path);

/*
 * Parse an ISO 8601 time: "2026-11-28T10:30", "2026-11-28T10:30:00Z",
 * "2026-11-28 10:30:00+01:00". Returns 0 and sets *t to seconds since the
 * epoch, or -1 if the text is not such a time. When the text has no offset
 * (no "Z", no "+hh:mm"), *t is the wall-clock reading taken as if it were UTC
 * and *local is set to 1: the caller converts it with tz_local_to_utc().
 */
int clock_parse_iso8601(const char *s, int64_t *t, int *local);

/* Days from 1970-01-01 to y-m-d (month 1-12) in the proleptic Gregorian calendar. */
int64_t clock_days_from_civil(int64_t y, int m, int d);

#endif
