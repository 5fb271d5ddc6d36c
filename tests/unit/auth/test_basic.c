/* Unit tests for auth/basic.c: splitting "Authorization: Basic …". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "common/rc.h"

static int
decode(const char *h, char *user, char *pass)
{
	return auth_basic_decode(h, user, 64, pass, 64);
}

static void
test_good(void **state)
{
	char u[64], p[64];

	/* "ci:ci-secret" */
	assert_int_equal(decode("Basic Y2k6Y2ktc2VjcmV0", u, p), RC_OK);
	assert_string_equal(u, "ci");
	assert_string_equal(p, "ci-secret");
	/* scheme in any case, extra spaces, padding: "a:b:c" (the password
	 * keeps its colons) */
	assert_int_equal(decode("basic   YTpiOmM=  ", u, p), RC_OK);
	assert_string_equal(u, "a");
	assert_string_equal(p, "b:c");
	/* an empty password is the user's business */
	assert_int_equal(decode("Basic dXNlcjo=", u, p), RC_OK);
	assert_string_equal(u, "user");
	assert_string_equal(p, "");
	/* the same without padding */
	assert_int_equal(decode("Basic dXNlcjo", u, p), RC_OK);
	assert_string_equal(u, "user");
}

static void
test_refused(void **state)
{
	char u[64], p[64], big[200];
	char longer[200];

	assert_int_equal(decode(NULL, u, p), RC_BAD_REQUEST);
	assert_int_equal(decode("Bearer Y2k6Y2ktc2VjcmV0", u, p),
	                 RC_BAD_REQUEST);
	assert_int_equal(decode("Basic ", u, p), RC_BAD_REQUEST);
	assert_int_equal(decode("Basic !!!!", u, p), RC_BAD_REQUEST);
	/* no colon: "user" */
	assert_int_equal(decode("Basic dXNlcg==", u, p), RC_BAD_REQUEST);
	/* empty user: ":pw" */
	assert_int_equal(decode("Basic OnB3", u, p), RC_BAD_REQUEST);
	/* a NUL inside: "a\0:b" */
	assert_int_equal(decode("Basic YQA6Yg==", u, p), RC_BAD_REQUEST);
	/* does not fit the caller's buffers: a 100-byte user */
	memset(longer, 0, sizeof(longer));
	strcpy(longer, "Basic ");
	for (int i = 0; i < 34; i++)
		strcat(longer, "YWFh"); /* "aaa" */
	strcat(longer, "OnA=");         /* ":p" */
	assert_int_equal(decode(longer, u, p), RC_BAD_REQUEST);
	assert_int_equal(auth_basic_decode(longer, big, sizeof(big), p, 64),
	                 RC_OK);
	assert_int_equal(strlen(big), 102);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_good),
	        cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
