/*
 * fuzz_tz.c -- libFuzzer harness for common/tz: TZif files are untrusted input.
 *
 * Parses the input as a TZif image and, when it is accepted, converts a few
 * instants both ways, checking that every answer is a real calendar reading
 * and that local-to-UTC stays within a day or so of its input. The last eight
 * bytes of the input also serve as an instant, so the fuzzer can steer lookups
 * towards the transitions it has made up.
 */
#include "common/compat.h"

#include <stdint.h>

#include "common/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_tz_check(const struct tz *tz, int64_t t)
{
    struct tz_local l;
    int64_t u;

    tz_to_local(tz, t, &l);
    if (l.month < 1 || l.month > 12 || l.day < 1 || l.day > 31 || l.wday < 0 || l.wday > 6 ||
        l.hour < 0 || l.hour > 23 || l.minute < 0 || l.minute > 59 || l.second < 0 ||
        l.second > 59 || l.utc_offset < -89999 || l.utc_offset > 93599 ||
        (l.is_dst != 0 && l.is_dst != 1))
        abort();
    u = tz_local_to_utc(tz, t);
    /* Within the clamp, an answer is never further than the widest offset from the reading. */
    if (t > -(INT64_C(1) << 49) && t < (INT64_C(1) << 49) && (u - t > 89999 || t - u > 93599))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t instants[] = {
        INT64_MIN,
        INT64_MIN / 2,
        -INT64_C(2208988800),
        -1,
        0,
        1,
        INT64_C(1774745999),
        INT64_C(1774746000),
        INT64_C(2147483648),
        INT64_C(4102444800),
        INT64_MAX / 2,
        INT64_MAX,
    };
    char err[256];
    struct tz *tz;

    err[0] = '\0';
    tz = tz_parse("fuzz", data, size, err, sizeof(err));
    if (!tz) {
        /* A refusal always says why. */
        if (strncmp(err, "fuzz: ", 6) != 0 || err[6] == '\0')
            abort();
        return 0;
    }
    if (strcmp(tz_name(tz), "fuzz") != 0)
        abort();
    for (size_t i = 0; i < HAVEN_ARRAY_LEN(instants); i++)
        fuzz_tz_check(tz, instants[i]);
    if (size >= 8) {
        uint64_t v = 0;

        for (size_t i = size - 8; i < size; i++)
            v = v << 8 | data[i];
        fuzz_tz_check(tz, (int64_t)(v >> 1) - (INT64_C(1) << 62));
        fuzz_tz_check(tz, (int64_t)(v & 0xffffffffffu) - (INT64_C(1) << 39));
    }
    tz_free(tz);
    return 0;
}
