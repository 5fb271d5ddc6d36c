/* Unit tests for common/names.c against the repository name and tag grammars
 * of the OCI distribution spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/names.h"

static void
test_name_valid(void **state)
{
	static const char *good[] = {
	        "a",
	        "0",
	        "a/b",
	        "a.b",
	        "a_b",
	        "a__b",
	        "a---b",
	        "a-b",
	        "library/ubuntu",
	        "x/y/z",
	        "a0/b1/c2",
	        "review-apps/pr-123/web",
	        "my.org/my_team/app",
	        "a.b.c",
	        "a_b.c-d__e",
	        "123",
	        "ab/c__d/e-f-g",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!name_is_valid(good[i]))
			print_error("rejected: %s\n", good[i]);
		assert_true(name_is_valid(good[i]));
	}
}

static void
test_name_invalid(void **state)
{
	static const char *bad[] = {
	        NULL,       "",       "A",          "Library/ubuntu",
	        "a/",       "/a",     "/",          "a//b",
	        "a..b",     "a___b",  "-a",         "a-",
	        "_a",       "a_",     ".a",         "a.",
	        "a._b",     "a-.b",   "a.-b",       "a_-b",
	        "../a",     "a/../b", "a/./b",      "..",
	        ".",        "%2e%2e", "a/%2e%2e/b", "a b",
	        "a:b",      "a@b",    "a\\b",       "a\nb",
	        "a\tb",     "a/b/",   "a/-b",       "a/b.",
	        "\xc3\xa9", "a/_b",   "a/.b",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (name_is_valid(bad[i]))
			print_error("accepted: %s\n", bad[i]);
		assert_false(name_is_valid(bad[i]));
	}
}

static void
test_name_length(void **state)
{
	char name[300];

	memset(name, 'a', sizeof(name));
	name[NAME_MAX_LEN] = '\0';
	assert_true(name_is_valid(name));
	name[NAME_MAX_LEN] = 'a';
	name[NAME_MAX_LEN + 1] = '\0';
	assert_int_equal(strlen(name), 256);
	assert_false(name_is_valid(name));
	/* Length counts the whole path, not one component. */
	for (int i = 1; i < 256; i += 2)
		name[i] = '/';
	assert_false(name_is_valid(name));
	name[NAME_MAX_LEN] = '\0';
	name[NAME_MAX_LEN - 1] = 'a';
	assert_true(name_is_valid(name));
}

static void
test_tag_valid(void **state)
{
	static const char *good[] = {
	        "latest", "v1.0",        "_x",      "x",           "X",
	        "0",      "v1.0.0-rc.1", "pr-123",  "sha-abc_DEF", "__",
	        "a..b",   "a--",         "1.2.3_4",
	};
	char tag[TAG_MAX_LEN + 1];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!tag_is_valid(good[i]))
			print_error("rejected: %s\n", good[i]);
		assert_true(tag_is_valid(good[i]));
	}
	memset(tag, 'a', TAG_MAX_LEN);
	tag[TAG_MAX_LEN] = '\0';
	assert_int_equal(strlen(tag), 128);
	assert_true(tag_is_valid(tag));
}

static void
test_tag_invalid(void **state)
{
	static const char *bad[] = {
	        NULL,  "",    ".x",       "-x",         "a/b", "a:b",
	        "a@b", "a b", " a",       "a\n",        "..",  "../x",
	        "%2e", "a+b", "\xc3\xa9", "sha256:abc",
	};
	char tag[TAG_MAX_LEN + 2];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (tag_is_valid(bad[i]))
			print_error("accepted: %s\n", bad[i]);
		assert_false(tag_is_valid(bad[i]));
	}
	memset(tag, 'a', TAG_MAX_LEN + 1);
	tag[TAG_MAX_LEN + 1] = '\0';
	assert_int_equal(strlen(tag), 129);
	assert_false(tag_is_valid(tag));
}

/* text_printable: what an error detail quotes of a client's value. */
static void
test_text_printable(void **state)
{
	char out[8];

	text_printable(out, sizeof(out), "a/b:c");
	assert_string_equal(out, "a/b:c");
	text_printable(out, sizeof(out), "a\tb\x7f\xc3\xa9");
	assert_string_equal(out, "a?b???");
	text_printable(out, sizeof(out), "1234567");
	assert_string_equal(out, "1234567");
	text_printable(out, sizeof(out), "12345678");
	assert_string_equal(out, "1234...");
	text_printable(out, sizeof(out), "");
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_name_valid),
	        cmocka_unit_test(test_name_invalid),
	        cmocka_unit_test(test_name_length),
	        cmocka_unit_test(test_tag_valid),
	        cmocka_unit_test(test_tag_invalid),
	        cmocka_unit_test(test_text_printable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
