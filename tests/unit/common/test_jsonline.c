/* Unit tests for common/jsonline.c: the line of a value by its JSON path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/jsonline.h"

static const char doc[] = "{\n"                                  /* 1 */
                          "  \"a\": 1,\n"                        /* 2 */
                          "  \"s\": \"x}]\\\",{\",\n"            /* 3 */
                          "  \"k\\\"q\": {\"in\": [\n"           /* 4 */
                          "     [1, 2],\n"                       /* 5 */
                          "     {\"deep\":\n"                    /* 6 */
                          "        true}\n"                      /* 7 */
                          "  ]},\n"                              /* 8 */
                          "  \"users\": [\n"                     /* 9 */
                          "    {\"name\": \"u\"},\n"             /* 10 */
                          "    {\"name\": \"v\",\n"              /* 11 */
                          "     \"rules\": [{}, {\"x\": []}]}\n" /* 12 */
                          "  ],\n"                               /* 13 */
                          "  \"empty\": {}, \"last\": null\n"    /* 14 */
                          "}\n";

static int
line_of(const char *path)
{
	return json_line_of(doc, strlen(doc), path);
}

static void
test_found(void **state)
{
	assert_int_equal(line_of("a"), 2);
	assert_int_equal(line_of("s"), 3);
	/* a string holding brackets and an escaped quote does not derail
	 * the walk */
	assert_int_equal(line_of("users"), 9);
	assert_int_equal(line_of("users[0]"), 10);
	assert_int_equal(line_of("users[1].name"), 11);
	assert_int_equal(line_of("users[1].rules[1].x"), 12);
	assert_int_equal(line_of("k\\\"q.in[0][1]"), 5);
	assert_int_equal(line_of("k\\\"q.in[1].deep"), 7);
	assert_int_equal(line_of("empty"), 14);
	assert_int_equal(line_of("last"), 14);
}

static void
test_missing_goes_to_parent(void **state)
{
	assert_int_equal(line_of("users[0].password_hash"), 10);
	assert_int_equal(line_of("users[1].rules[5]"), 12);
	assert_int_equal(line_of("users[7]"), 9);
	assert_int_equal(line_of("nothing"), 0);
	assert_int_equal(line_of(""), 0);
	assert_int_equal(json_line_of(NULL, 0, "a"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_found),
	        cmocka_unit_test(test_missing_goes_to_parent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
