/* Durations in configuration files: "90m", "12h", "3d", "2w". */
#ifndef BERTH_COMMON_DURATION_H
#define BERTH_COMMON_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* The longest duration accepted: 10 years of 365 days (3650d). */
#define DURATION_MAX (3650ull * 86400)

/* Room for any duration_format output ("18446744073709551615s"). */
#define DURATION_BUF 24

/* Parses a positive decimal integer without sign, spaces or leading
 * zeros, followed by exactly one unit: s (seconds), m (minutes), h
 * (hours), d (days of 86400 s) or w (weeks). Sets *seconds and returns 0;
 * returns RC_BAD_REQUEST (and leaves *seconds alone) for NULL or empty
 * strings, a missing or unknown unit, a sign, spaces, zero, fractions,
 * and anything longer than DURATION_MAX (10 years), however many digits
 * it has: nothing overflows. */
int duration_parse(const char *s, uint64_t *seconds)
        __attribute__((warn_unused_result));

/* Formats seconds in the largest unit that holds it exactly: 259200 is
 * "3d", 5400 "90m", 45 "45s", 1209600 "2w", 0 "0s". Truncated (and
 * NUL-terminated) when len is too small; DURATION_BUF is always enough. */
void duration_format(uint64_t seconds, char *buf, size_t len);

#endif
