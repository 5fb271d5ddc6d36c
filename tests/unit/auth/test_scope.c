/* Unit tests for auth/scope.c: scope parsing and formatting (the Docker
 * token scope grammar, docker-auth-scope.md) and the grant (asked ∩
 * allowed, union over rules; the globs are tested in
 * tests/unit/common/test_glob.c). The configuration is built by
 * hand, without the users-file loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "auth/auth_internal.h"
#include "common/rc.h"

static struct auth_scope
parsed(const char *s)
{
	struct auth_scope sc;

	memset(&sc, 0x5a, sizeof(sc));
	if (auth_scope_parse(s, &sc) != RC_OK)
		fail_msg("refused: %s", s);
	return sc;
}

/* ---- parse ---- */

static void
test_parse_repository(void **state)
{
	struct auth_scope sc = parsed("repository:a/b:pull,push");

	assert_int_equal(sc.type, AUTH_TYPE_REPOSITORY);
	assert_string_equal(sc.name, "a/b");
	assert_int_equal(sc.actions, AUTH_PULL | AUTH_PUSH);

	sc = parsed("repository:samalba/my-app:pull");
	assert_string_equal(sc.name, "samalba/my-app");
	assert_int_equal(sc.actions, AUTH_PULL);

	sc = parsed("repository:a:delete");
	assert_string_equal(sc.name, "a");
	assert_int_equal(sc.actions, AUTH_DELETE);

	sc = parsed("repository:a:*");
	assert_int_equal(sc.actions, AUTH_ALL);

	sc = parsed("repository:a:push,pull,delete");
	assert_int_equal(sc.actions, AUTH_ALL);

	sc = parsed("repository:a:pull,pull");
	assert_int_equal(sc.actions, AUTH_PULL);
}

static void
test_parse_host_port(void **state)
{
	/* The name may hold ':'; actions are taken from the right. */
	struct auth_scope sc = parsed("repository:localhost:5000/a/b:pull");

	assert_int_equal(sc.type, AUTH_TYPE_REPOSITORY);
	assert_string_equal(sc.name, "localhost:5000/a/b");
	assert_int_equal(sc.actions, AUTH_PULL);
}

static void
test_parse_class(void **state)
{
	struct auth_scope sc = parsed("repository(plugin):x:pull");

	assert_int_equal(sc.type, AUTH_TYPE_REPOSITORY);
	assert_string_equal(sc.name, "x");
	assert_int_equal(sc.actions, AUTH_PULL);
}

static void
test_parse_catalog(void **state)
{
	struct auth_scope sc = parsed("registry:catalog:*");

	assert_int_equal(sc.type, AUTH_TYPE_CATALOG);
	assert_string_equal(sc.name, "");
	assert_int_equal(sc.actions, AUTH_ALL);
}

static void
test_parse_gc(void **state)
{
	struct auth_scope sc = parsed("registry:gc:*");

	assert_int_equal(sc.type, AUTH_TYPE_GC);
	assert_string_equal(sc.name, "");
	assert_int_equal(sc.actions, AUTH_ALL);
	/* Parsed with the actions asked; a grant makes it "*" or nothing. */
	sc = parsed("registry:gc:pull");
	assert_int_equal(sc.type, AUTH_TYPE_GC);
	assert_int_equal(sc.actions, AUTH_PULL);
	sc = parsed("registry(x):gc:*");
	assert_int_equal(sc.type, AUTH_TYPE_GC);
	/* catalog and gc are two resources. */
	assert_int_equal(parsed("registry:catalog:*").type, AUTH_TYPE_CATALOG);
	/* and backup a third */
	sc = parsed("registry:backup:*");
	assert_int_equal(sc.type, AUTH_TYPE_BACKUP);
	assert_string_equal(sc.name, "");
	assert_int_equal(sc.actions, AUTH_ALL);
}

static void
test_parse_unknown_actions(void **state)
{
	struct auth_scope sc = parsed("repository:a/b:pull,metadata-read");

	assert_int_equal(sc.actions, AUTH_PULL);
	sc = parsed("repository:a/b:metadata-read,push");
	assert_int_equal(sc.actions, AUTH_PUSH);
	/* Nothing known: parsed, with no action (a grant drops it). */
	sc = parsed("repository:a/b:metadata-read");
	assert_int_equal(sc.actions, 0);
	sc = parsed("repository:a/b:Pull,PUSH,pulls,pul");
	assert_int_equal(sc.actions, 0);
	sc = parsed("repository:a/b:,,pull,");
	assert_int_equal(sc.actions, AUTH_PULL);
}

static void
test_parse_name_length(void **state)
{
	char s[AUTH_NAME_MAX + 64], name[AUTH_NAME_MAX + 2];
	struct auth_scope sc;

	memset(name, 'a', AUTH_NAME_MAX);
	name[AUTH_NAME_MAX] = '\0';
	snprintf(s, sizeof(s), "repository:%s:pull", name);
	sc = parsed(s);
	assert_int_equal(strlen(sc.name), AUTH_NAME_MAX);
	assert_string_equal(sc.name, name);

	name[AUTH_NAME_MAX] = 'a';
	name[AUTH_NAME_MAX + 1] = '\0';
	snprintf(s, sizeof(s), "repository:%s:pull", name);
	assert_int_equal(auth_scope_parse(s, &sc), RC_BAD_REQUEST);
}

static void
test_parse_malformed(void **state)
{
	static const char *bad[] = {
	        NULL,
	        "",
	        ":",
	        "::",
	        "repository",
	        "repository:",
	        "repository:a",
	        "repository::pull",
	        ":a:pull",
	        "foo:a:pull",
	        "Repository:a:pull",
	        "repositories:a:pull",
	        "repo:a:pull",
	        "registry:other:*",
	        "registry:catalogue:*",
	        "registry::*",
	        "registry:Catalog:*",
	        "registry:gc",
	        "registry:GC:*",
	        "registry:gcc:*",
	        "registry:g:*",
	        "registry:gc/x:*",
	        "registry:catalog,gc:*",
	        "repository:gc",
	        "(plugin):a:pull",
	        "repository(plugin:a:pull",
	        "repository(plugin)x:a:pull",
	        "repository:a b:pull",
	        "repository: a:pull",
	        "repository:a\t:pull",
	        "repository:a\nb:pull",
	        "repository:a,b:pull",
	        "repository:a/b,repository:c:pull",
	        " repository:a:pull",
	        "repository :a:pull",
	};
	struct auth_scope sc, before;

	memset(&sc, 0x5a, sizeof(sc));
	before = sc;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = auth_scope_parse(bad[i], &sc);

		if (rc != RC_BAD_REQUEST)
			print_error("accepted: '%s'\n",
			            bad[i] ? bad[i] : "(null)");
		assert_int_equal(rc, RC_BAD_REQUEST);
		/* *out is written only on success. */
		assert_memory_equal(&sc, &before, sizeof(sc));
	}
}

/* ---- format ---- */

static void
test_format(void **state)
{
	struct auth_scope sc = {AUTH_TYPE_REPOSITORY, "a/b",
	                        AUTH_PULL | AUTH_PUSH};
	char buf[512];

	assert_int_equal(auth_scope_format(&sc, buf, sizeof(buf)),
	                 (int)strlen("repository:a/b:pull,push"));
	assert_string_equal(buf, "repository:a/b:pull,push");

	sc.actions = AUTH_ALL;
	assert_true(auth_scope_format(&sc, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "repository:a/b:pull,push,delete");

	sc.actions = AUTH_DELETE;
	assert_true(auth_scope_format(&sc, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "repository:a/b:delete");

	sc.actions = AUTH_PUSH | AUTH_DELETE;
	assert_true(auth_scope_format(&sc, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "repository:a/b:push,delete");

	sc = (struct auth_scope){AUTH_TYPE_CATALOG, "", AUTH_ALL};
	assert_int_equal(auth_scope_format(&sc, buf, sizeof(buf)),
	                 (int)strlen("registry:catalog:*"));
	assert_string_equal(buf, "registry:catalog:*");

	/* A registry scope is formatted with "*", whatever its bits. */
	sc = (struct auth_scope){AUTH_TYPE_GC, "", AUTH_ALL};
	assert_int_equal(auth_scope_format(&sc, buf, sizeof(buf)),
	                 (int)strlen("registry:gc:*"));
	assert_string_equal(buf, "registry:gc:*");
	sc.actions = AUTH_PULL;
	assert_true(auth_scope_format(&sc, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "registry:gc:*");
	sc = (struct auth_scope){AUTH_TYPE_BACKUP, "", AUTH_ALL};
	assert_true(auth_scope_format(&sc, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "registry:backup:*");
}

static void
test_format_too_small(void **state)
{
	struct auth_scope sc = {AUTH_TYPE_REPOSITORY, "a/b", AUTH_PULL};
	const char *want = "repository:a/b:pull";
	char buf[64];
	int n;

	n = auth_scope_format(&sc, buf, strlen(want) + 1);
	assert_int_equal(n, (int)strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(auth_scope_format(&sc, buf, strlen(want)),
	                 RC_TOO_LARGE);
	assert_int_equal(auth_scope_format(&sc, buf, 1), RC_TOO_LARGE);
	sc = (struct auth_scope){AUTH_TYPE_CATALOG, "", AUTH_ALL};
	assert_int_equal(auth_scope_format(&sc, buf, 18), RC_TOO_LARGE);
	assert_int_equal(auth_scope_format(&sc, buf, 19), 18);
	sc = (struct auth_scope){AUTH_TYPE_GC, "", AUTH_ALL};
	assert_int_equal(auth_scope_format(&sc, buf, 13), RC_TOO_LARGE);
	assert_int_equal(auth_scope_format(&sc, buf, 14), 13);
}

static void
test_format_round_trip(void **state)
{
	static const char *scopes[] = {
	        "repository:a/b:pull,push",
	        "repository:a/b:pull",
	        "repository:a/b:push",
	        "repository:a/b:delete",
	        "repository:a/b:pull,push,delete",
	        "repository:localhost:5000/a/b:pull",
	        "repository:ghcr.io/org/review-42/app:pull,delete",
	        "registry:catalog:*",
	        "registry:gc:*",
	};
	char buf[AUTH_NAME_MAX + 64];
	char long_scope[AUTH_NAME_MAX + 64], name[AUTH_NAME_MAX + 1];
	struct auth_scope sc;

	for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++) {
		struct auth_scope a = parsed(scopes[i]), b;
		int n = auth_scope_format(&a, buf, sizeof(buf));

		assert_int_equal(n, (int)strlen(scopes[i]));
		assert_string_equal(buf, scopes[i]);
		b = parsed(buf);
		assert_int_equal(a.type, b.type);
		assert_string_equal(a.name, b.name);
		assert_int_equal(a.actions, b.actions);
	}

	/* Normalised: "*" and reordered actions come out in one order. */
	sc = parsed("repository:x:delete,*");
	assert_true(auth_scope_format(&sc, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "repository:x:pull,push,delete");

	memset(name, 'n', AUTH_NAME_MAX);
	name[AUTH_NAME_MAX] = '\0';
	snprintf(long_scope, sizeof(long_scope), "repository:%s:push", name);
	sc = parsed(long_scope);
	assert_int_equal(auth_scope_format(&sc, buf, sizeof(buf)),
	                 (int)strlen(long_scope));
	assert_string_equal(buf, long_scope);
}

/* ---- grant ---- */

static char *review_globs[] = {"review-**"};
static char *delete_globs[] = {"review-**", "tools/*"};
static char *team_globs[] = {"team/**"};
static char *all_globs[] = {"**"};
static char *public_globs[] = {"public-*"};
static char *shared_globs[] = {"shared/**"};

static struct auth_rule ci_rules[] = {
        {review_globs, 1, AUTH_PULL | AUTH_PUSH, 0, 0, 0},
        {delete_globs, 2, AUTH_DELETE, 0, 0, 0},
        {NULL, 0, 0, 1, 0, 0}, /* catalog */
};
static struct auth_rule dev_rules[] = {
        {team_globs, 1, AUTH_ALL, 0, 0, 0},
};
static struct auth_rule reader_rules[] = {
        {all_globs, 1, AUTH_PULL, 0, 0, 0},
};
static struct auth_rule gc_rules[] = {
        {NULL, 0, 0, 0, 1, 0}, /* gc */
};
/* One rule with everything: repositories, catalog and gc. */
static struct auth_rule ops_rules[] = {
        {all_globs, 1, AUTH_ALL, 1, 1, 0},
};
static struct auth_rule anon_rules[] = {
        {public_globs, 1, AUTH_PULL, 0, 0, 0},
        {shared_globs, 1, AUTH_PULL | AUTH_PUSH, 0, 0, 0},
};
static struct auth_user grant_users[] = {
        {"ci", "", 0, ci_rules, 3},         {"dev", "", 0, dev_rules, 1},
        {"reader", "", 0, reader_rules, 1}, {"gc", "", 0, gc_rules, 1},
        {"ops", "", 0, ops_rules, 1},
};

static struct auth
grant_config(void)
{
	struct auth a;

	memset(&a, 0, sizeof(a));
	a.users = grant_users;
	a.nusers = sizeof(grant_users) / sizeof(grant_users[0]);
	a.anon = anon_rules;
	a.nanon = 2;
	return a;
}

/* Grants the scopes in asked (strings) to user and formats the result as
 * one space-separated string in out. */
static size_t
grant(const struct auth *a, const char *user, const char *const *asked,
      size_t n, char *out, size_t outlen)
{
	struct auth_scope in[8], got[8];
	size_t k, used = 0;

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		in[i] = parsed(asked[i]);
	memset(got, 0, sizeof(got));
	k = auth_grant(a, user, in, n, got);
	assert_true(k <= n);
	out[0] = '\0';
	for (size_t i = 0; i < k; i++) {
		int len;

		if (i > 0)
			out[used++] = ' ';
		len = auth_scope_format(&got[i], out + used, outlen - used);
		assert_true(len > 0);
		used += (size_t)len;
	}
	return k;
}

static void
test_grant_intersection(void **state)
{
	struct auth a = grant_config();
	const char *asked[] = {"repository:review-1/app:pull,push"};
	const char *asked_all[] = {"repository:review-1/app:*"};
	const char *asked_dev[] = {"repository:team/x/y:delete,pull"};
	char out[512];

	assert_int_equal(grant(&a, "ci", asked, 1, out, sizeof(out)), 1);
	assert_string_equal(out, "repository:review-1/app:pull,push");
	/* Union of ci's first two rules. */
	assert_int_equal(grant(&a, "ci", asked_all, 1, out, sizeof(out)), 1);
	assert_string_equal(out, "repository:review-1/app:pull,push,delete");
	/* Only what was asked, although dev may do everything. */
	assert_int_equal(grant(&a, "dev", asked_dev, 1, out, sizeof(out)), 1);
	assert_string_equal(out, "repository:team/x/y:pull,delete");
	/* reader may only pull anything. */
	assert_int_equal(grant(&a, "reader", asked_all, 1, out, sizeof(out)),
	                 1);
	assert_string_equal(out, "repository:review-1/app:pull");
}

static void
test_grant_rules_and_anonymous(void **state)
{
	struct auth a = grant_config();
	const char *asked[] = {
	        "repository:tools/lint:pull,push,delete",
	        "repository:public-nginx:pull,push",
	        "repository:shared/cache:pull,push,delete",
	};
	char out[512];

	/* ci: delete from its second rule on tools/lint, pull from the
	 * anonymous rules on the others. */
	assert_int_equal(grant(&a, "ci", asked, 3, out, sizeof(out)), 3);
	assert_string_equal(out, "repository:tools/lint:delete "
	                         "repository:public-nginx:pull "
	                         "repository:shared/cache:pull,push");
	/* dev has no rule there: anonymous rules only. */
	assert_int_equal(grant(&a, "dev", asked, 3, out, sizeof(out)), 2);
	assert_string_equal(out, "repository:public-nginx:pull "
	                         "repository:shared/cache:pull,push");
}

static void
test_grant_anonymous(void **state)
{
	struct auth a = grant_config();
	const char *asked[] = {
	        "repository:review-1/app:pull",
	        "repository:public-nginx:pull,push",
	        "repository:team/x:pull",
	        "repository:public-a/b:pull",
	};
	char out[512];

	assert_int_equal(grant(&a, NULL, asked, 4, out, sizeof(out)), 1);
	assert_string_equal(out, "repository:public-nginx:pull");
	assert_int_equal(grant(&a, "", asked, 4, out, sizeof(out)), 1);
	assert_string_equal(out, "repository:public-nginx:pull");
	/* An unknown user is anonymous. */
	assert_int_equal(grant(&a, "ghost", asked, 4, out, sizeof(out)), 1);
	assert_string_equal(out, "repository:public-nginx:pull");
	/* Without anonymous rules, nothing. */
	a.nanon = 0;
	assert_int_equal(grant(&a, NULL, asked, 4, out, sizeof(out)), 0);
	assert_int_equal(grant(&a, "ghost", asked, 4, out, sizeof(out)), 0);
	assert_int_equal(grant(&a, "reader", asked, 4, out, sizeof(out)), 4);
}

static void
test_grant_catalog(void **state)
{
	struct auth a = grant_config();
	const char *asked[] = {"registry:catalog:*"};
	char out[512];
	static struct auth_rule anon_catalog[] = {{NULL, 0, 0, 1, 0, 0}};

	assert_int_equal(grant(&a, "ci", asked, 1, out, sizeof(out)), 1);
	assert_string_equal(out, "registry:catalog:*");
	/* "**" on repositories does not include the catalog. */
	assert_int_equal(grant(&a, "reader", asked, 1, out, sizeof(out)), 0);
	assert_int_equal(grant(&a, "dev", asked, 1, out, sizeof(out)), 0);
	assert_int_equal(grant(&a, NULL, asked, 1, out, sizeof(out)), 0);
	/* An anonymous catalog rule opens it to everyone. */
	a.anon = anon_catalog;
	a.nanon = 1;
	assert_int_equal(grant(&a, NULL, asked, 1, out, sizeof(out)), 1);
	assert_int_equal(grant(&a, "dev", asked, 1, out, sizeof(out)), 1);
	assert_string_equal(out, "registry:catalog:*");
	/* A catalog rule grants no repository. */
	{
		const char *repo[] = {"repository:catalog:pull"};

		assert_int_equal(grant(&a, NULL, repo, 1, out, sizeof(out)), 0);
	}
}

static void
test_grant_gc(void **state)
{
	struct auth a = grant_config();
	const char *gc[] = {"registry:gc:*"};
	const char *gc_pull[] = {"registry:gc:pull"};
	const char *cat[] = {"registry:catalog:*"};
	const char *both[] = {"registry:catalog:*", "registry:gc:*",
	                      "repository:x/y:pull"};
	static struct auth_rule anon_gc[] = {{NULL, 0, 0, 0, 1, 0}};
	char out[512];

	/* Only the explicit gc rule grants it, and as "*". */
	assert_int_equal(grant(&a, "gc", gc, 1, out, sizeof(out)), 1);
	assert_string_equal(out, "registry:gc:*");
	assert_int_equal(grant(&a, "gc", gc_pull, 1, out, sizeof(out)), 1);
	assert_string_equal(out, "registry:gc:*");
	/* A catalog rule does not give gc; a gc rule does not give the
	 * catalog nor any repository. */
	assert_int_equal(grant(&a, "ci", gc, 1, out, sizeof(out)), 0);
	assert_int_equal(grant(&a, "gc", cat, 1, out, sizeof(out)), 0);
	assert_int_equal(grant(&a, "gc", both, 3, out, sizeof(out)), 1);
	assert_string_equal(out, "registry:gc:*");
	assert_int_equal(grant(&a, "ci", both, 3, out, sizeof(out)), 1);
	assert_string_equal(out, "registry:catalog:*");
	/* "**" with every action is not gc. */
	assert_int_equal(grant(&a, "dev", gc, 1, out, sizeof(out)), 0);
	assert_int_equal(grant(&a, "reader", gc, 1, out, sizeof(out)), 0);
	assert_int_equal(grant(&a, NULL, gc, 1, out, sizeof(out)), 0);
	assert_int_equal(grant(&a, "ghost", gc, 1, out, sizeof(out)), 0);
	/* One rule holding repositories, catalog and gc gives all three. */
	assert_int_equal(grant(&a, "ops", both, 3, out, sizeof(out)), 3);
	assert_string_equal(out, "registry:catalog:* registry:gc:* "
	                         "repository:x/y:pull");
	/* An anonymous gc rule opens it to everyone (and only gc). */
	a.anon = anon_gc;
	a.nanon = 1;
	assert_int_equal(grant(&a, NULL, both, 3, out, sizeof(out)), 1);
	assert_string_equal(out, "registry:gc:*");
	assert_int_equal(grant(&a, "dev", gc, 1, out, sizeof(out)), 1);
}

static void
test_grant_drops_and_order(void **state)
{
	struct auth a = grant_config();
	const char *asked[] = {
	        "repository:shared/z:push",
	        "repository:prod/db:pull",
	        "repository:review-9/a:pull",
	        "registry:catalog:*",
	        "repository:review-9/a:metadata-read",
	        "repository:public-b:pull",
	        "repository:tools/x:pull",
	};
	char out[512];

	/* prod/db: nothing; catalog: ci's rule; metadata-read: no action
	 * left; tools/x: ci may only delete there. */
	assert_int_equal(grant(&a, "ci", asked, 7, out, sizeof(out)), 4);
	assert_string_equal(out, "repository:shared/z:push "
	                         "repository:review-9/a:pull "
	                         "registry:catalog:* "
	                         "repository:public-b:pull");
	assert_int_equal(grant(&a, "ci", asked, 0, out, sizeof(out)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_repository),
	        cmocka_unit_test(test_parse_host_port),
	        cmocka_unit_test(test_parse_class),
	        cmocka_unit_test(test_parse_catalog),
	        cmocka_unit_test(test_parse_gc),
	        cmocka_unit_test(test_parse_unknown_actions),
	        cmocka_unit_test(test_parse_name_length),
	        cmocka_unit_test(test_parse_malformed),
	        cmocka_unit_test(test_format),
	        cmocka_unit_test(test_format_too_small),
	        cmocka_unit_test(test_format_round_trip),
	        cmocka_unit_test(test_grant_intersection),
	        cmocka_unit_test(test_grant_rules_and_anonymous),
	        cmocka_unit_test(test_grant_anonymous),
	        cmocka_unit_test(test_grant_catalog),
	        cmocka_unit_test(test_grant_gc),
	        cmocka_unit_test(test_grant_drops_and_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
