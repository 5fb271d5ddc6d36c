/* Unit tests for common/rc.c: every code has a description. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/rc.h"

static void
test_every_own_code(void **state)
{
	const char *unknown = rc_str(-999999);

	assert_non_null(unknown);
	/* Every code in the enum, which is contiguous from -1000 down. */
	for (int rc = RC_BLOB_UNKNOWN; rc >= RC_SPACE_LOW; rc--) {
		const char *s = rc_str(rc);
		assert_non_null(s);
		assert_true(s[0] != '\0');
		if (strcmp(s, unknown) == 0)
			print_error("code %d has no description\n", rc);
		assert_string_not_equal(s, unknown);
	}
	assert_string_equal(rc_str(RC_OK), "success");
	assert_non_null(strstr(rc_str(RC_SCHEMA1), "schema1"));
	assert_non_null(strstr(rc_str(RC_MANIFEST_INVALID), "manifest"));
}

static void
test_descriptions_distinct(void **state)
{
	for (int a = RC_BLOB_UNKNOWN; a >= RC_SPACE_LOW; a--)
		for (int b = a - 1; b >= RC_SPACE_LOW; b--)
			assert_string_not_equal(rc_str(a), rc_str(b));
}

static void
test_errno(void **state)
{
	static const int errs[] = {EIO,    ENOENT, ENOSPC, EEXIST,
	                           ENOMEM, EINVAL, EACCES, EPERM};

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		const char *s = rc_str(-errs[i]);
		assert_non_null(s);
		assert_string_equal(s, strerror(errs[i]));
	}
	for (int e = 1; e < 1000; e++) {
		const char *s = rc_str(-e);
		assert_non_null(s);
		assert_true(s[0] != '\0');
	}
}

static void
test_out_of_range(void **state)
{
	assert_non_null(rc_str(1));
	assert_non_null(rc_str(RC_SPACE_LOW - 1));
	assert_non_null(rc_str(-2147483647 - 1));
	assert_non_null(rc_str(2147483647));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_every_own_code),
	        cmocka_unit_test(test_descriptions_distinct),
	        cmocka_unit_test(test_errno),
	        cmocka_unit_test(test_out_of_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
