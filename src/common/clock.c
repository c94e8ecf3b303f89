#include "common/compat.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/clock.h"

static int clock_faked;
static int64_t clock_fake_now;
static char clock_file[4096]; /* set before threads start; read-only after */

/* The time written in the test's clock file; the real time if it cannot be read. */
static int64_t clock_from_file(void)
{
    char line[64] = "";
    FILE *f = fopen(clock_file, "r");
    struct timespec ts;

    if (f) {
        if (!fgets(line, sizeof(line), f))
            line[0] = '\0';
        fclose(f);
        if (line[0] >= '0' && line[0] <= '9')
            return strtoll(line, NULL, 10);
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

void clock_use_file(const char *path)
{
    snprintf(clock_file, sizeof(clock_file), "%s", path ? path : "");
}

int64_t clock_now(void)
{
    struct timespec ts;

    if (clock_faked)
        return clock_fake_now;
    if (clock_file[0])
        return clock_from_file();
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t clock_now_ms(void)
{
    struct timespec ts;

    if (clock_faked)
        return clock_fake_now * 1000;
    if (clock_file[0])
        return clock_from_file() * 1000;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void clock_set_fake(int64_t t)
{
    clock_faked = 1;
    clock_fake_now = t;
}

void clock_clear_fake(void)
{
    clock_faked = 0;
}

/* Read exactly n digits from *s; -1 if they are not there. */
static int clock_digits(const char **s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*s)[i]))
            return -1;
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    return v;
}

int64_t clock_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int clock_parse_iso8601(const char *s, int64_t *t, int *local)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h = 0, mi = 0, sec = 0, off = 0;

    y = clock_digits(&s, 4);
    if (y < 0 || *s++ != '-')
        return -1;
    mo = clock_digits(&s, 2);
    if (mo < 1 || mo > 12 || *s++ != '-')
        return -1;
    d = clock_digits(&s, 2);
    if (d < 1 || d > mdays[mo - 1])
        return -1;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return -1;
    if (*s == 'T' || *s == 't' || *s == ' ') {
        s++;
        h = clock_digits(&s, 2);
        if (h < 0 || h > 23 || *s++ != ':')
            return -1;
        mi = clock_digits(&s, 2);
        if (mi < 0 || mi > 59)
            return -1;
        if (*s == ':') {
            s++;
            sec = clock_digits(&s, 2);
            if (sec < 0 || sec > 60)
                return -1;
        }
    }
    *local = 1;
    if (*s == 'Z' || *s == 'z') {
        s++;
        *local = 0;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1;
        int oh = clock_digits(&s, 2), om = 0;
        if (oh < 0 || oh > 23)
            return -1;
        if (*s == ':')
            s++;
        if (*s != '\0') {
            om = clock_digits(&s, 2);
            if (om < 0 || om > 59)
                return -1;
        }
        off = sign * (oh * 3600 + om * 60);
        *local = 0;
    }
    if (*s != '\0')
        return -1;
    *t = clock_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    return 0;
}
