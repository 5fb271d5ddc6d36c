/* Unit tests for common/glob.c: `*` within a component, `**` across
 * components, the cost of hostile globs, and the matcher against an
 * obviously correct (exponential) reference on random short cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/glob.h"

struct glob_case {
	const char *glob, *name;
	int match;
};

static void
check_globs(const struct glob_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int got = glob_match(c[i].glob, c[i].name) != 0;

		if (got != c[i].match)
			print_error("glob '%s' name '%s': want %d, got %d\n",
			            c[i].glob, c[i].name, c[i].match, got);
		assert_int_equal(got, c[i].match);
	}
}

static void
test_glob_exact(void **state)
{
	static const struct glob_case c[] = {
	        {"a/b", "a/b", 1}, {"a/b", "a/bc", 0},  {"a/b", "a/", 0},
	        {"a/b", "a", 0},   {"a/b", "x/a/b", 0}, {"a/b", "A/B", 0},
	        {"app", "app", 1}, {"app", "ap", 0},    {"app", "apps", 0},
	};

	check_globs(c, sizeof(c) / sizeof(c[0]));
}

static void
test_glob_star(void **state)
{
	static const struct glob_case c[] = {
	        {"*", "a", 1},
	        {"*", "abc", 1},
	        {"*", "a/b", 0},
	        {"a/*", "a/b", 1},
	        {"a/*", "a/bcd", 1},
	        {"a/*", "a/b/c", 0},
	        {"a/*", "b/c", 0},
	        {"a/*/c", "a/b/c", 1},
	        {"a/*/c", "a/xyz/c", 1},
	        {"a/*/c", "a/b/x/c", 0},
	        {"a/*/c", "a/b/cd", 0},
	        {"*-app", "my-app", 1},
	        {"*-app", "-app", 1},
	        {"*-app", "my-app-app", 1},
	        {"*-app", "my-apps", 0},
	        {"*-app", "team/my-app", 0},
	        {"public-*", "public-nginx", 1},
	        {"public-*", "public-", 1},
	        {"public-*", "public-a/b", 0},
	        {"public-*", "publicnginx", 0},
	        {"review-*/app", "review-42/app", 1},
	        {"review-*/app", "review-42/x/app", 0},
	        {"a*b*c", "aXbYc", 1},
	        {"a*b*c", "abc", 1},
	        {"a*b*c", "aXbY/c", 0},
	        {"*/*", "a/b", 1},
	        {"*/*", "a/b/c", 0},
	        {"*/*", "a", 0},
	};

	check_globs(c, sizeof(c) / sizeof(c[0]));
}

static void
test_glob_double_star(void **state)
{
	static const struct glob_case c[] = {
	        {"review/**", "review/a", 1},
	        {"review/**", "review/a/b", 1},
	        {"review/**", "review/a/b/c/d", 1},
	        {"review/**", "review", 0},
	        {"review/**", "reviewer/a", 0},
	        {"review/**", "x/review/a", 0},
	        {"**", "a", 1},
	        {"**", "a/b", 1},
	        {"**", "a/b/c/d/e", 1},
	        {"**", "localhost:5000/a", 1},
	        {"review-**", "review-1", 1},
	        {"review-**", "review-1/app", 1},
	        {"review-**", "review", 0},
	        {"review-**", "prod/review-1", 0},
	        {"**/app", "a/app", 1},
	        {"**/app", "a/b/app", 1},
	        {"**/app", "a/b/apps", 0},
	        {"**/app", "a/b/my-app", 0},
	        {"team/**/cache", "team/x/cache", 1},
	        {"team/**/cache", "team/x/y/cache", 1},
	        {"team/**/cache", "team/x/y/caches", 0},
	        {"**/*-app", "a/b/my-app", 1},
	        {"**/*-app", "a/my-app/x", 0},
	        {"a/**/*/z", "a/b/c/z", 1},
	};

	check_globs(c, sizeof(c) / sizeof(c[0]));
}

static void
test_glob_pathological(void **state)
{
	enum { LONG = 20000 };
	char *name = malloc(LONG + 2);
	struct timespec t0, t1;
	double secs;

	assert_non_null(name);
	memset(name, 'a', LONG);
	name[LONG] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_false(glob_match("a*a*a*a*a*b", name));
	assert_false(glob_match("**a**a**a**a**a**b", name));
	assert_false(glob_match("*a*a*a*a*a*a*a*a*a*a*b", name));
	name[LONG] = 'b';
	name[LONG + 1] = '\0';
	assert_true(glob_match("a*a*a*a*a*b", name));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* Linear-ish work; an exponential matcher would not finish. */
	if (secs >= 2.0)
		print_error("took %.3fs\n", secs);
	assert_true(secs < 2.0);
	free(name);
}

/* The glob semantics written the obvious way (recursive, exponential):
 * a run of two or more stars matches anything, one star anything without
 * a '/'. Only for short strings. */
static int
glob_reference(const char *g, const char *n)
{
	if (*g == '\0')
		return *n == '\0';
	if (g[0] == '*' && g[1] == '*') {
		while (*g == '*')
			g++;
		for (const char *p = n;; p++) {
			if (glob_reference(g, p))
				return 1;
			if (*p == '\0')
				return 0;
		}
	}
	if (*g == '*') {
		for (const char *p = n;; p++) {
			if (glob_reference(g + 1, p))
				return 1;
			if (*p == '\0' || *p == '/')
				return 0;
		}
	}
	return *g == *n && glob_reference(g + 1, n + 1);
}

static void
test_glob_against_reference(void **state)
{
	static const char alphabet[] = "ab/*";
	uint32_t x = 12345; /* fixed seed: the same cases every run */
	char g[16], n[16];

	for (int i = 0; i < 200000; i++) {
		size_t gl, nl;

		x = x * 1664525u + 1013904223u;
		gl = (x >> 8) % 13;
		nl = (x >> 16) % 13;
		for (size_t k = 0; k < gl; k++) {
			x = x * 1664525u + 1013904223u;
			g[k] = alphabet[(x >> 16) % 4];
		}
		g[gl] = '\0';
		for (size_t k = 0; k < nl; k++) {
			x = x * 1664525u + 1013904223u;
			n[k] = alphabet[(x >> 16) % 3]; /* no '*' in names */
		}
		n[nl] = '\0';
		if ((glob_match(g, n) != 0) != glob_reference(g, n))
			fail_msg("glob '%s' name '%s': reference says %d", g, n,
			         glob_reference(g, n));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_glob_exact),
	        cmocka_unit_test(test_glob_star),
	        cmocka_unit_test(test_glob_double_star),
	        cmocka_unit_test(test_glob_pathological),
	        cmocka_unit_test(test_glob_against_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
