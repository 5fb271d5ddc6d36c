/* Unit tests for common/jsonline.c: the line of a value by its JSON path,
 * and the JSON file helpers built on it: located messages, unknown keys,
 * paths, quoting, parsing, and reading a whole file up to a limit (in a
 * temp dir, a FIFO standing in for a file that grows). */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/jsonline.h"
#include "common/rc.h"

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

/* ---- messages ---- */

static const char cfg[] = "{\n"                       /* 1 */
                          "  \"name\": \"x\",\n"      /* 2 */
                          "  \"rules\": [\n"          /* 3 */
                          "    {\"tags\": [\"a\"],\n" /* 4 */
                          "     \"keep\": 3}\n"       /* 5 */
                          "  ]\n"                     /* 6 */
                          "}\n";

static void
test_error(void **state)
{
	char err[128] = "x";
	struct json_file f = {.name = "p.json",
	                      .text = cfg,
	                      .len = strlen(cfg),
	                      .err = err,
	                      .errlen = sizeof(err)};

	assert_int_equal(
	        json_file_error(&f, "rules[0].keep", "more than %d", 2),
	        RC_BAD_REQUEST);
	assert_string_equal(err, "p.json:5: rules[0].keep: more than 2");
	/* a missing member: its parent's line */
	assert_int_equal(json_file_error(&f, "rules[0].expire", "missing"),
	                 RC_BAD_REQUEST);
	assert_string_equal(err, "p.json:4: rules[0].expire: missing");
	/* the root has no line and no path */
	assert_int_equal(json_file_error(&f, "", "must be a JSON object"),
	                 RC_BAD_REQUEST);
	assert_string_equal(err, "p.json: must be a JSON object");
	/* no line found: the path without one */
	f.text = NULL;
	f.len = 0;
	assert_int_equal(json_file_error(&f, "name", "bad"), RC_BAD_REQUEST);
	assert_string_equal(err, "p.json: name: bad");
	/* a name from the file with control characters in it (a key file
	 * "old.pe\nm", found by fuzzing): still one line */
	assert_int_equal(json_file_error(&f, "previous_keys[0]", "%s: %s",
	                                 "old.pe\nm\t\x7f", "No such file"),
	                 RC_BAD_REQUEST);
	assert_string_equal(err, "p.json: previous_keys[0]: old.pe?m??: No "
	                         "such file");
}

static void
test_error_buffer(void **state)
{
	char err[16];
	struct json_file f = {.name = "p.json",
	                      .text = cfg,
	                      .len = strlen(cfg),
	                      .err = err,
	                      .errlen = 8};

	/* cut to fit, NUL-terminated */
	memset(err, 'z', sizeof(err));
	assert_int_equal(json_file_error(&f, "rules", "bad"), RC_BAD_REQUEST);
	assert_string_equal(err, "p.json:");
	/* the prefix fits exactly: no room left for the reason */
	f.errlen = strlen("p.json: ") + 1;
	assert_int_equal(json_file_error(&f, "", "bad"), RC_BAD_REQUEST);
	assert_string_equal(err, "p.json: ");
	/* no buffer: only the code */
	f.err = NULL;
	assert_int_equal(json_file_error(&f, "rules", "bad"), RC_BAD_REQUEST);
	f.err = err;
	f.errlen = 0;
	memset(err, 'z', sizeof(err));
	assert_int_equal(json_file_error(&f, "rules", "bad"), RC_BAD_REQUEST);
	assert_int_equal(err[0], 'z');
}

static void
test_keys_check(void **state)
{
	static const char *const top[] = {"name", "rules", NULL};
	static const char *const rule[] = {"tags", NULL};
	char err[128];
	struct json_file f = {.name = "p.json",
	                      .text = cfg,
	                      .len = strlen(cfg),
	                      .err = err,
	                      .errlen = sizeof(err)};
	json_t *root, *r0;

	assert_int_equal(json_file_parse(&f, &root), RC_OK);
	r0 = json_array_get(json_object_get(root, "rules"), 0);
	err[0] = '\0';
	assert_int_equal(json_file_keys_check(&f, "", root, top), RC_OK);
	assert_string_equal(err, "");
	assert_int_equal(json_file_keys_check(&f, "rules[0]", r0, rule),
	                 RC_BAD_REQUEST);
	assert_string_equal(err, "p.json:5: rules[0].keep: unknown key");
	assert_int_equal(json_file_keys_check(&f, "", root, rule),
	                 RC_BAD_REQUEST);
	assert_string_equal(err, "p.json:2: name: unknown key");
	json_decref(root);
}

static void
test_keys_check_shown(void **state)
{
	static const char text[] = "{\"a\\nb\\\"c\": 1}";
	static const char *const none[] = {NULL};
	char err[128];
	struct json_file f = {.name = "q.json",
	                      .text = text,
	                      .len = strlen(text),
	                      .err = err,
	                      .errlen = sizeof(err)};
	json_t *root, *one;

	assert_int_equal(json_file_parse(&f, &root), RC_OK);
	/* control characters and quotes as '?' (not found in the raw text:
	 * no line) */
	assert_int_equal(json_file_keys_check(&f, "", root, none),
	                 RC_BAD_REQUEST);
	assert_string_equal(err, "q.json: a?b?c: unknown key");
	/* a long key cut */
	one = json_object();
	assert_int_equal(json_object_set_new(one,
	                                     "k01234567890123456789012345678901"
	                                     "23456789012345678",
	                                     json_true()),
	                 0);
	assert_int_equal(json_file_keys_check(&f, "x", one, none),
	                 RC_BAD_REQUEST);
	assert_string_equal(err, "q.json: x.k0123456789012345678901234567890"
	                         "123456789012...: unknown key");
	json_decref(one);
	json_decref(root);
}

static void
test_path(void **state)
{
	char buf[JSON_PATH_BUF], big[2 * JSON_PATH_BUF];

	json_path(buf, "users[%zu].rules[%d]", (size_t)2, 0);
	assert_string_equal(buf, "users[2].rules[0]");
	json_path_key(buf, "users[2]", "name");
	assert_string_equal(buf, "users[2].name");
	json_path_key(buf, "", "name");
	assert_string_equal(buf, "name");
	/* cut to the buffer */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_path_key(buf, "x", big);
	assert_int_equal(strlen(buf), JSON_PATH_BUF - 1);
	assert_memory_equal(buf, "x.aaa", 5);
}

static void
test_show(void **state)
{
	char buf[JSON_SHOW_BUF], fits[JSON_SHOW_BUF - 3], over[JSON_SHOW_BUF];

	assert_string_equal(json_show("7x", buf), "7x");
	assert_ptr_equal(json_show("", buf), buf);
	assert_string_equal(buf, "");
	assert_string_equal(json_show("a\tb\"c\\d\x7f", buf), "a?b?c?d?");
	/* JSON_SHOW_BUF - 4 bytes are shown whole; one more is cut */
	memset(fits, 'f', sizeof(fits) - 1);
	fits[sizeof(fits) - 1] = '\0';
	assert_string_equal(json_show(fits, buf), fits);
	memset(over, 'o', sizeof(over) - 1);
	over[sizeof(fits)] = '\0';
	json_show(over, buf);
	assert_int_equal(strlen(buf), JSON_SHOW_BUF - 1);
	assert_string_equal(buf + JSON_SHOW_BUF - 4, "...");
	assert_int_equal(buf[JSON_SHOW_BUF - 5], 'o');
}

static void
test_parse(void **state)
{
	char err[128];
	struct json_file f = {
	        .name = "p.json", .err = err, .errlen = sizeof(err)};
	json_t *root = NULL;

	f.text = "{\n  \"a\": 1,\n  \"a\": 2\n}";
	f.len = strlen(f.text);
	assert_int_equal(json_file_parse(&f, &root), RC_BAD_REQUEST);
	assert_string_equal(err, "p.json:3:5: duplicate object key near "
	                         "'\"a\"'");
	assert_null(root);
	f.text = "{\"a\": }";
	f.len = strlen(f.text);
	assert_int_equal(json_file_parse(&f, &root), RC_BAD_REQUEST);
	assert_string_equal(err, "p.json:1:7: unexpected token near '}'");
	/* text[0..len) only: what follows is not read */
	f.text = "[1]garbage";
	f.len = 3;
	assert_int_equal(json_file_parse(&f, &root), RC_OK);
	assert_int_equal(json_array_size(root), 1);
	json_decref(root);
	/* NULL is an empty text; NULL with a length is refused */
	f.text = NULL;
	f.len = 0;
	assert_int_equal(json_file_parse(&f, &root), RC_BAD_REQUEST);
	assert_string_equal(err, "p.json:1:0: '[' or '{' expected near end "
	                         "of file");
	err[0] = '\0';
	f.len = 1;
	assert_int_equal(json_file_parse(&f, &root), RC_BAD_REQUEST);
	assert_string_equal(err, "");
	/* jansson quotes the input near the error, newlines included: the
	 * message stays one line (found by fuzzing) */
	f.text = "\"\\\n/\n";
	f.len = strlen(f.text);
	assert_int_equal(json_file_parse(&f, &root), RC_BAD_REQUEST);
	assert_null(strchr(err, '\n'));
	assert_non_null(strstr(err, "p.json:"));
}

/* ---- reading ---- */

static char dir[64];

static char *
tmp(const char *name)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
setup(void **state)
{
	strcpy(dir, "/tmp/berth-test-jsonline-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Writes n bytes: 'a', 'b', ... 'z', 'a', ... */
static void
write_file(const char *name, size_t n)
{
	FILE *f = fopen(tmp(name), "w");

	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		fputc('a' + (int)(i % 26), f);
	assert_int_equal(fclose(f), 0);
}

static void
check_text(const char *text, size_t len, size_t want)
{
	assert_int_equal(len, want);
	for (size_t i = 0; i < len; i++)
		if (text[i] != 'a' + (int)(i % 26))
			fail_msg("byte %zu is '%c'", i, text[i]);
	assert_int_equal(text[len], '\0');
}

static void
test_read(void **state)
{
	char err[256] = "x", *text = NULL;
	size_t len = 0;

	write_file("small.json", 100);
	assert_int_equal(json_file_read(tmp("small.json"), 1u << 20, &text,
	                                &len, err, sizeof(err)),
	                 RC_OK);
	check_text(text, len, 100);
	assert_string_equal(err, "x"); /* untouched on success */
	free(text);

	/* more than the first 4096 bytes, exactly the limit */
	write_file("limit.json", 10000);
	text = NULL;
	assert_int_equal(json_file_read(tmp("limit.json"), 10000, &text, &len,
	                                err, sizeof(err)),
	                 RC_OK);
	check_text(text, len, 10000);
	free(text);

	write_file("empty.json", 0);
	text = NULL;
	assert_int_equal(json_file_read(tmp("empty.json"), 0, &text, &len, err,
	                                sizeof(err)),
	                 RC_OK);
	check_text(text, len, 0);
	free(text);
}

static void
test_read_too_large(void **state)
{
	char err[256], want[256], *text = NULL;
	size_t len = 7;

	write_file("big.json", 10001);
	assert_int_equal(json_file_read(tmp("big.json"), 10000, &text, &len,
	                                err, sizeof(err)),
	                 RC_TOO_LARGE);
	snprintf(want, sizeof(want), "%s: larger than 10000 bytes",
	         tmp("big.json"));
	assert_string_equal(err, want);
	assert_null(text);
	assert_int_equal(len, 7);

	write_file("mib.json", (1u << 20) + 1);
	assert_int_equal(json_file_read(tmp("mib.json"), 1u << 20, &text, &len,
	                                err, sizeof(err)),
	                 RC_TOO_LARGE);
	snprintf(want, sizeof(want), "%s: larger than 1 MiB", tmp("mib.json"));
	assert_string_equal(err, want);
	assert_null(text);

	write_file("one.json", 1);
	assert_int_equal(
	        json_file_read(tmp("one.json"), 0, &text, &len, NULL, 0),
	        RC_TOO_LARGE);
	assert_null(text);
}

static void
test_read_errors(void **state)
{
	char err[256], want[256], *text = NULL;
	size_t len = 7;

	assert_int_equal(json_file_read(tmp("none.json"), 100, &text, &len, err,
	                                sizeof(err)),
	                 -ENOENT);
	snprintf(want, sizeof(want), "%s: No such file or directory",
	         tmp("none.json"));
	assert_string_equal(err, want);
	assert_int_equal(
	        json_file_read(dir, 100, &text, &len, err, sizeof(err)),
	        -EISDIR);
	snprintf(want, sizeof(want), "%s: Is a directory", dir);
	assert_string_equal(err, want);
	assert_int_equal(json_file_read(dir, 100, &text, &len, NULL, 0),
	                 -EISDIR);
	/* a limit so large that max + 1 or doubling would wrap */
	write_file("small.json", 10);
	assert_int_equal(json_file_read(tmp("small.json"), SIZE_MAX, &text,
	                                &len, NULL, 0),
	                 -EINVAL);
	assert_null(text);
	assert_int_equal(len, 7);
}

/* Reads a FIFO (no size known in advance, so the buffer grows) that a
 * child fills with n bytes. */
static int
read_fifo(const char *name, size_t n, size_t max, char **text, size_t *len)
{
	pid_t pid;
	int rc, status;

	assert_int_equal(mkfifo(tmp(name), 0600), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		FILE *f = fopen(tmp(name), "w");

		for (size_t i = 0; f != NULL && i < n; i++)
			fputc('a' + (int)(i % 26), f);
		_exit(f == NULL || fclose(f) != 0);
	}
	rc = json_file_read(tmp(name), max, text, len, NULL, 0);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return rc;
}

static void
test_read_grows(void **state)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(read_fifo("grow", 20000, 1u << 20, &text, &len),
	                 RC_OK);
	check_text(text, len, 20000);
	free(text);
	text = NULL;
	assert_int_equal(read_fifo("limit", 20000, 20000, &text, &len), RC_OK);
	check_text(text, len, 20000);
	free(text);
	text = NULL;
	assert_int_equal(read_fifo("over", 20001, 20000, &text, &len),
	                 RC_TOO_LARGE);
	assert_null(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_found),
	        cmocka_unit_test(test_missing_goes_to_parent),
	        cmocka_unit_test(test_error),
	        cmocka_unit_test(test_error_buffer),
	        cmocka_unit_test(test_keys_check),
	        cmocka_unit_test(test_keys_check_shown),
	        cmocka_unit_test(test_path),
	        cmocka_unit_test(test_show),
	        cmocka_unit_test(test_parse),
	        cmocka_unit_test(test_read),
	        cmocka_unit_test(test_read_too_large),
	        cmocka_unit_test(test_read_errors),
	        cmocka_unit_test(test_read_grows),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
