/* Durations: an integer and a unit, parsed strictly (a policy that says
 * "7 d" or "1.5d" is refused rather than read as something else). */
#include <stdio.h>

#include "common/duration.h"
#include "common/rc.h"

static const struct {
	char unit;
	uint64_t seconds;
} units[] = {
        /* largest first, for duration_format */
        {'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1},
};

int
duration_parse(const char *s, uint64_t *seconds)
{
	uint64_t v = 0;
	size_t i;

	if (s == NULL || *s < '1' || *s > '9')
		return RC_BAD_REQUEST; /* empty, sign, space, zero, '.' */
	for (; *s >= '0' && *s <= '9'; s++) {
		/* Stop growing past the maximum: no overflow, whatever the
		 * number of digits; the result is refused below. */
		if (v <= DURATION_MAX)
			v = v * 10 + (uint64_t)(*s - '0');
	}
	if (s[0] == '\0' || s[1] != '\0')
		return RC_BAD_REQUEST; /* no unit, or more after it */
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (units[i].unit == *s)
			break;
	if (i == sizeof(units) / sizeof(units[0]) ||
	    v > DURATION_MAX / units[i].seconds)
		return RC_BAD_REQUEST;
	*seconds = v * units[i].seconds;
	return RC_OK;
}

void
duration_format(uint64_t seconds, char *buf, size_t len)
{
	size_t i = 0;

	if (buf == NULL || len == 0)
		return;
	if (seconds != 0)
		while (seconds % units[i].seconds != 0)
			i++; /* ends at 's' at the latest */
	else
		i = sizeof(units) / sizeof(units[0]) - 1;
	snprintf(buf, len, "%llu%c",
	         (unsigned long long)(seconds / units[i].seconds),
	         units[i].unit);
}
