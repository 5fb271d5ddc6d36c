/* Unit tests for common/duration.c: every unit, every refusal, overflow,
 * the 10-year boundary, and the format in the largest exact unit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/duration.h"
#include "common/rc.h"

#define UNTOUCHED 0x5a5a5a5a5a5a5a5aull

static void
check_accepted(const char *s, uint64_t want)
{
	uint64_t got = UNTOUCHED;
	int rc = duration_parse(s, &got);

	if (rc != RC_OK || got != want)
		print_error("'%s': rc %d, %llu seconds, want %llu\n", s, rc,
		            (unsigned long long)got, (unsigned long long)want);
	assert_int_equal(rc, RC_OK);
	assert_true(got == want);
}

static void
check_refused(const char *s)
{
	uint64_t got = UNTOUCHED;
	int rc = duration_parse(s, &got);

	if (rc != RC_BAD_REQUEST)
		print_error("accepted: '%s' (%llu seconds)\n", s ? s : "(null)",
		            (unsigned long long)got);
	assert_int_equal(rc, RC_BAD_REQUEST);
	/* *seconds is written only on success. */
	assert_true(got == UNTOUCHED);
}

static void
test_units(void **state)
{
	check_accepted("2s", 2);
	check_accepted("1s", 1);
	check_accepted("45s", 45);
	check_accepted("90m", 5400);
	check_accepted("1m", 60);
	check_accepted("12h", 43200);
	check_accepted("1h", 3600);
	check_accepted("3d", 259200);
	check_accepted("1d", 86400);
	check_accepted("2w", 1209600);
	check_accepted("1w", 604800);
	check_accepted("10d", 864000);
	check_accepted("100s", 100);
}

static void
test_refused(void **state)
{
	static const char *bad[] = {
	        "",             /* empty */
	        "7",            /* no unit */
	        "123",          /* no unit */
	        "d",            /* no number */
	        "h1",           /* unit first */
	        "3x",           /* unknown unit */
	        "3D",           /* units are lower case */
	        "3H",           /* units are lower case */
	        "3ms",          /* two letters */
	        "3dd",          /* two units */
	        "1h30m",        /* compound */
	        "3y",           /* no years */
	        "-3d",          /* sign */
	        "+3d",          /* sign */
	        " 3d",          /* spaces */
	        "3d ",          /* spaces */
	        "3 d",          /* spaces */
	        "3\td",         /* spaces */
	        "0s",           /* zero */
	        "0d",           /* zero */
	        "00w",          /* zero */
	        "07d",          /* leading zero */
	        "1.5d",         /* fraction */
	        ".5d",          /* fraction */
	        "1,5d",         /* fraction */
	        "1e3s",         /* exponent */
	        "0x10s",        /* hex */
	        "3d\n",         /* trailing newline */
	        "\xd9\xa3\x64", /* U+0663 (an Arabic-Indic 3), "d" */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_refused(bad[i]);
	check_refused(NULL);
}

static void
test_overflow(void **state)
{
	check_refused("99999999999999999999d");
	check_refused("99999999999999999999s");
	check_refused("18446744073709551615s"); /* UINT64_MAX */
	check_refused("18446744073709551616s"); /* UINT64_MAX + 1 */
	check_refused("30500568904944w");       /* * 604800 wraps to small */
	check_refused("213503982334602d");      /* * 86400 wraps */
	check_refused("100000000000000000000000000000000000000000000000s");
}

static void
test_ten_years(void **state)
{
	assert_true(DURATION_MAX == 315360000ull);
	check_accepted("3650d", DURATION_MAX);
	check_accepted("315360000s", DURATION_MAX);
	check_accepted("5256000m", DURATION_MAX);
	check_accepted("87600h", DURATION_MAX);
	check_accepted("521w", 521ull * 604800); /* 3647 days */
	check_refused("3651d");
	check_refused("315360001s");
	check_refused("5256001m");
	check_refused("87601h");
	check_refused("522w"); /* 3654 days */
}

static void
test_format(void **state)
{
	static const struct {
		uint64_t seconds;
		const char *text;
	} c[] = {
	        {259200, "3d"},
	        {5400, "90m"},
	        {45, "45s"},
	        {1, "1s"},
	        {0, "0s"},
	        {60, "1m"},
	        {3600, "1h"},
	        {86400, "1d"},
	        {604800, "1w"},
	        {1209600, "2w"},
	        {43200, "12h"},
	        {90000, "25h"},
	        {86460, "1441m"},
	        {86401, "86401s"},
	        {691200, "8d"},
	        {DURATION_MAX, "3650d"},
	        {UINT64_MAX, "18446744073709551615s"},
	};
	char buf[DURATION_BUF];

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(buf, 'x', sizeof(buf));
		duration_format(c[i].seconds, buf, sizeof(buf));
		assert_string_equal(buf, c[i].text);
	}
}

static void
test_format_round_trip(void **state)
{
	static const char *texts[] = {"2s",  "90m",   "12h",   "3d",  "2w",
	                              "25h", "1441m", "3650d", "521w"};
	char buf[DURATION_BUF];
	uint64_t s;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		assert_int_equal(duration_parse(texts[i], &s), RC_OK);
		duration_format(s, buf, sizeof(buf));
		assert_string_equal(buf, texts[i]);
	}
	/* Not the text as written: the largest exact unit. */
	assert_int_equal(duration_parse("7d", &s), RC_OK);
	duration_format(s, buf, sizeof(buf));
	assert_string_equal(buf, "1w");
	assert_int_equal(duration_parse("120m", &s), RC_OK);
	duration_format(s, buf, sizeof(buf));
	assert_string_equal(buf, "2h");
}

static void
test_format_small_buffer(void **state)
{
	char buf[4];

	memset(buf, 'x', sizeof(buf));
	duration_format(1209600, buf, 3); /* "2w" fits exactly */
	assert_string_equal(buf, "2w");
	duration_format(5400, buf, 3); /* "90m" does not */
	assert_string_equal(buf, "90");
	buf[0] = 'x';
	duration_format(5400, buf, 1);
	assert_string_equal(buf, "");
	duration_format(5400, NULL, 0); /* nothing written, no crash */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_units),
	        cmocka_unit_test(test_refused),
	        cmocka_unit_test(test_overflow),
	        cmocka_unit_test(test_ten_years),
	        cmocka_unit_test(test_format),
	        cmocka_unit_test(test_format_round_trip),
	        cmocka_unit_test(test_format_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
