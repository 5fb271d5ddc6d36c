/* Unit tests for the token views of auth/jwt.c and auth/scope.c: what a
 * listing may show a token's holder (the token's own repository grants,
 * its user's rules, the anonymous rules), decided after one check of the
 * token, from the cache or not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth_internal.h"
#include "common/rc.h"
#include "test_auth_util.h"

#define NOW 1700000000L
#define R   AUTH_TYPE_REPOSITORY

static struct auth *A;

static int
setup(void **state)
{
	char hash[AUTH_HASH_BUF], err[256];
	FILE *f;

	strcpy(dir, "/tmp/berth-test-view-XXXXXX");
	if (mkdtemp(dir) == NULL || auth_keygen(tmp("sign.pem")) != 0 ||
	    auth_password_hash("s3cret", hash, sizeof(hash)) != 0)
		return -1;
	if ((f = fopen(tmp("auth.json"), "w")) == NULL)
		return -1;
	fprintf(f,
	        "{\"service\": \"registry.test\", \"issuer\": \"berth\",\n"
	        " \"realm\": \"https://registry.test/auth/token\",\n"
	        " \"signing_key\": \"sign.pem\",\n"
	        " \"users\": [\n"
	        "  {\"name\": \"team-a\", \"password_hash\": \"%s\",\n"
	        "   \"rules\": [{\"repositories\": [\"team-a/**\"],\n"
	        "               \"actions\": [\"pull\"]},\n"
	        "              {\"catalog\": true}]},\n"
	        "  {\"name\": \"team-b\", \"password_hash\": \"%s\",\n"
	        "   \"rules\": [{\"repositories\": [\"team-b/*\"],\n"
	        "               \"actions\": [\"pull\", \"push\"]}]},\n"
	        "  {\"name\": \"gone\", \"password_hash\": \"%s\",\n"
	        "   \"expires\": \"2020-01-01T00:00:00Z\",\n"
	        "   \"rules\": [{\"repositories\": [\"**\"],\n"
	        "               \"actions\": [\"pull\"]}]}],\n"
	        " \"anonymous\": [{\"repositories\": [\"public/**\"],\n"
	        "                  \"actions\": [\"pull\"]}]}\n",
	        hash, hash, hash);
	if (fclose(f) != 0)
		return -1;
	if (auth_load(tmp("auth.json"), &A, err, sizeof(err)) != 0) {
		fprintf(stderr, "auth_load: %s\n", err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	auth_free(A);
	return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* A token for user (NULL: anonymous) holding the given grants. */
static char *
token(const char *user, const struct auth_scope *granted, size_t n)
{
	char *tok = NULL;

	assert_int_equal(auth_token_sign(A, user, granted, n, NOW, &tok), 0);
	return tok;
}

static struct auth_view *
view(const char *tok, time_t now)
{
	struct auth_view *v = NULL;

	assert_int_equal(auth_view_open(A, tok, now, &v), 0);
	assert_non_null(v);
	return v;
}

/* A user's rules count, though the token (asked for the catalog only)
 * names no repository; so do the anonymous rules. */
static void
test_user_rules(void **state)
{
	struct auth_scope cat = {.type = AUTH_TYPE_CATALOG,
	                         .actions = AUTH_ALL};
	char *tok = token("team-a", &cat, 1);

	(void)state;
	/* twice: verified, then from the token cache */
	for (int i = 0; i < 2; i++) {
		struct auth_view *v = view(tok, NOW + 10);

		assert_true(auth_view_allows(v, "team-a/app", AUTH_PULL));
		assert_true(auth_view_allows(v, "team-a/x/y", AUTH_PULL));
		assert_false(auth_view_allows(v, "team-a/app", AUTH_PUSH));
		assert_false(auth_view_allows(v, "team-a/app",
		                              AUTH_PULL | AUTH_PUSH));
		assert_false(auth_view_allows(v, "team-a", AUTH_PULL));
		assert_false(auth_view_allows(v, "team-b/app", AUTH_PULL));
		assert_false(auth_view_allows(v, "team-ab/app", AUTH_PULL));
		assert_true(auth_view_allows(v, "public/base", AUTH_PULL));
		assert_false(auth_view_allows(v, "other", AUTH_PULL));
		auth_view_free(v);
	}
	free(tok);

	tok = token("team-b", NULL, 0);
	{
		struct auth_view *v = view(tok, NOW);

		assert_true(auth_view_allows(v, "team-b/app",
		                             AUTH_PULL | AUTH_PUSH));
		/* one component only: team-b/ and one star */
		assert_false(auth_view_allows(v, "team-b/x/y", AUTH_PULL));
		assert_false(auth_view_allows(v, "team-a/app", AUTH_PULL));
		auth_view_free(v);
	}
	free(tok);
}

/* The token's own repository grants count, exactly by name: a token
 * signed for a user the file does not (or no longer) hold, an expired
 * user's, an anonymous one. */
static void
test_token_grants(void **state)
{
	struct auth_scope g[2] = {
	        {.type = R, .name = "team-b/one", .actions = AUTH_PULL},
	        {.type = R, .name = "x/y", .actions = AUTH_PULL | AUTH_DELETE},
	};
	const char *users[] = {"team-a", "ghost", "gone", NULL};

	(void)state;
	for (int u = 0; u < 4; u++) {
		char *tok = token(users[u], g, 2);
		struct auth_view *v = view(tok, NOW);

		assert_true(auth_view_allows(v, "team-b/one", AUTH_PULL));
		assert_false(auth_view_allows(v, "team-b/one", AUTH_PUSH));
		assert_false(auth_view_allows(v, "team-b/on", AUTH_PULL));
		assert_false(auth_view_allows(v, "team-b/one/x", AUTH_PULL));
		assert_false(auth_view_allows(v, "team-b/two", AUTH_PULL));
		assert_true(
		        auth_view_allows(v, "x/y", AUTH_PULL | AUTH_DELETE));
		assert_true(auth_view_allows(v, "public/base", AUTH_PULL));
		/* only team-a's rules reach team-a/; the expired user's
		 * "**" gives nothing */
		assert_int_equal(auth_view_allows(v, "team-a/app", AUTH_PULL),
		                 u == 0);
		assert_false(auth_view_allows(v, "anything", AUTH_PULL));
		auth_view_free(v);
		free(tok);
	}
}

/* A token that is not acceptable opens no view; nothing is allowed
 * without one. */
static void
test_refused(void **state)
{
	char *tok = token("team-a", NULL, 0);
	struct auth_view *v = NULL;

	(void)state;
	assert_int_equal(auth_view_open(A, tok,
	                                NOW + AUTH_TOKEN_TTL + AUTH_LEEWAY + 1,
	                                &v),
	                 RC_UNAUTHORIZED);
	assert_null(v);
	/* valid now (and cached), expired later: the cache refuses too */
	v = view(tok, NOW);
	auth_view_free(v);
	v = NULL;
	assert_int_equal(auth_view_open(A, tok,
	                                NOW + AUTH_TOKEN_TTL + AUTH_LEEWAY + 1,
	                                &v),
	                 RC_UNAUTHORIZED);
	assert_null(v);
	tok[strlen(tok) - 2] ^= 1;
	assert_int_equal(auth_view_open(A, tok, NOW, &v), RC_UNAUTHORIZED);
	assert_int_equal(auth_view_open(A, "a.b.c", NOW, &v), RC_UNAUTHORIZED);
	assert_int_equal(auth_view_open(A, "", NOW, &v), RC_UNAUTHORIZED);
	assert_int_equal(auth_view_open(A, NULL, NOW, &v), RC_UNAUTHORIZED);
	assert_null(v);
	assert_false(auth_view_allows(NULL, "public/base", AUTH_PULL));
	auth_view_free(NULL);
	free(tok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_user_rules),
	        cmocka_unit_test(test_token_grants),
	        cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
