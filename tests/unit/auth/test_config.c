/* Unit tests for auth/config.c: a complete users file loads with every
 * field where it belongs, and each kind of mistake is refused with
 * RC_BAD_REQUEST and a message naming the place (line:column or JSON
 * path) and the reason. Files and keys live in a temp dir. */
#include <errno.h>
#include <ftw.h>
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
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/auth_internal.h"
#include "common/rc.h"
#include "test_auth_util.h"

#define NOW 1700000000L

static char hash[AUTH_HASH_BUF];

static int
setup(void **state)
{
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *corp = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	FILE *f;
	EVP_PKEY *sign;
	int rc = -1;

	strcpy(dir, "/tmp/berth-test-config-XXXXXX");
	if (mkdtemp(dir) == NULL || mkdir(tmp("keys"), 0700) != 0)
		goto fail;
	if (auth_keygen(tmp("keys/sign.pem")) != 0 ||
	    auth_keygen(tmp("keys/old.pem")) != 0 ||
	    write_key(p384, "keys/p384.pem", 0) != 0 ||
	    write_key(corp, "keys/corp.pub.pem", 1) != 0)
		goto fail;
	/* The public half of the signing key, to misuse as a signing key. */
	if ((f = fopen(tmp("keys/sign.pem"), "r")) == NULL)
		goto fail;
	sign = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (sign == NULL)
		goto fail;
	rc = write_key(sign, "keys/sign.pub.pem", 1);
	EVP_PKEY_free(sign);
	if (rc != 0 || auth_password_hash("s3cret", hash, sizeof(hash)) != 0)
		rc = -1;
fail:
	EVP_PKEY_free(p384);
	EVP_PKEY_free(corp);
	return rc;
}

static int
teardown(void **state)
{
	return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Writes text as auth.json, every "@H" replaced by a valid hash. */
static void
write_config(const char *text)
{
	FILE *f = fopen(tmp("auth.json"), "w");

	assert_non_null(f);
	for (const char *p = text; *p; p++) {
		if (p[0] == '@' && p[1] == 'H') {
			fputs(hash, f);
			p++;
		} else {
			fputc(*p, f);
		}
	}
	assert_int_equal(fclose(f), 0);
}

#define HEAD                                                                   \
	"{\"service\": \"registry.test\", \"issuer\": \"berth\",\n"            \
	" \"realm\": \"https://registry.test/auth/token\",\n"                  \
	" \"signing_key\": \"keys/sign.pem\""

static const char good[] =
        HEAD ",\n"
             " \"token_ttl\": 600,\n"
             " \"previous_keys\": [\"keys/old.pem\"],\n"
             " \"trusted_issuers\": [{\"issuer\": \"corp\",\n"
             "                        \"keys\": [\"keys/corp.pub.pem\"]}],\n"
             " \"users\": [\n"
             "  {\"name\": \"ci\", \"password_hash\": \"@H\",\n"
             "   \"expires\": \"2027-06-30T00:00:00Z\",\n"
             "   \"rules\": [{\"repositories\": [\"review-**\", \"team/*\"],\n"
             "              \"actions\": [\"pull\", \"push\"]},\n"
             "             {\"catalog\": true}]},\n"
             "  {\"name\": \"admin\", \"password_hash\": \"@H\",\n"
             "   \"rules\": [{\"repositories\": [\"**\"], \"actions\": "
             "[\"*\"]}]}\n"
             " ],\n"
             " \"anonymous\": [{\"repositories\": [\"public-*\"], "
             "\"actions\": [\"pull\"]}]\n"
             "}\n";

static void
check_good(struct auth *a)
{
	struct auth_scope ask[3] =
	        {
	                {.type = AUTH_TYPE_REPOSITORY,
	                 .name = "review-1/app",
	                 .actions = AUTH_ALL},
	                {.type = AUTH_TYPE_REPOSITORY,
	                 .name = "public-x",
	                 .actions = AUTH_PULL | AUTH_PUSH},
	                {.type = AUTH_TYPE_CATALOG,
	                 .name = "",
	                 .actions = AUTH_ALL},
	        },
	                  got[3];
	char *tok = NULL;

	assert_string_equal(auth_service(a), "registry.test");
	assert_string_equal(auth_realm(a), "https://registry.test/auth/token");
	assert_string_equal(auth_realm_path(a), "/auth/token");
	assert_int_equal(auth_token_ttl(a), 600);
	assert_string_equal(a->issuer, "berth");

	/* Keys: the signing key's public half first, then the rest. */
	assert_int_equal(a->nkeys, 3);
	assert_string_equal(a->keys[0].kid, a->signing.kid);
	assert_string_equal(a->keys[0].issuer, "berth");
	assert_string_equal(a->keys[1].issuer, "berth");
	assert_string_equal(a->keys[2].issuer, "corp");
	assert_string_equal(a->signing.issuer, "berth");

	assert_int_equal(a->nusers, 2);
	assert_string_equal(a->users[0].name, "ci");
	assert_string_equal(a->users[0].hash, hash);
	assert_int_equal(a->users[0].expires, 1814313600); /* 2027-06-30 */
	assert_int_equal(a->users[0].nrules, 2);
	assert_int_equal(a->users[0].rules[0].nrepos, 2);
	assert_string_equal(a->users[0].rules[0].repos[1], "team/*");
	assert_int_equal(a->users[0].rules[0].actions, AUTH_PULL | AUTH_PUSH);
	assert_int_equal(a->users[0].rules[1].catalog, 1);
	assert_int_equal(a->users[1].expires, 0);
	assert_int_equal(a->users[1].rules[0].actions, AUTH_ALL);
	assert_int_equal(a->nanon, 1);
	assert_true(auth_user_active(a, "admin", time(NULL)));
	assert_false(auth_user_active(a, "nobody", time(NULL)));
	/* the first user expires at 2027-06-30T00:00:00Z */
	assert_true(auth_user_active(a, a->users[0].name, 1814313599));
	assert_false(auth_user_active(a, a->users[0].name, 1814313600));

	assert_int_equal(auth_grant(a, "ci", ask, 3, got), 3);
	assert_int_equal(got[0].actions, AUTH_PULL | AUTH_PUSH);
	assert_int_equal(got[1].actions, AUTH_PULL);
	assert_int_equal(auth_grant(a, NULL, ask, 3, got), 1);
	assert_string_equal(got[0].name, "public-x");

	assert_int_equal(auth_token_sign(a, "ci", ask, 1, NOW, &tok), 0);
	assert_int_equal(auth_token_check(a, tok, NOW, AUTH_TYPE_REPOSITORY,
	                                  "review-1/app", AUTH_ALL),
	                 0);
	free(tok);
}

static void
test_good(void **state)
{
	char err[256] = "x", cwd[512];
	struct auth *a = NULL;

	write_config(good);
	assert_int_equal(auth_load(tmp("auth.json"), &a, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	check_good(a);
	assert_int_equal(auth_login(a, "ci", "s3cret", NOW), 0);
	assert_int_equal(auth_login(a, "ci", "wrong", NOW), RC_UNAUTHORIZED);
	auth_free(a);
	auth_free(NULL);

	/* A file name without a directory: keys relative to the cwd. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	a = NULL;
	assert_int_equal(auth_load("auth.json", &a, err, sizeof(err)), 0);
	assert_int_equal(chdir(cwd), 0);
	check_good(a);
	auth_free(a);
}

/* Rules holding gc alone, catalog alone, and everything at once; what
 * each grants, and what the signed token then allows. */
static const char gc_users[] =
        HEAD ",\n"
             " \"users\": [\n"
             "  {\"name\": \"gc\", \"password_hash\": \"@H\",\n"
             "   \"rules\": [{\"gc\": true}]},\n"
             "  {\"name\": \"cat\", \"password_hash\": \"@H\",\n"
             "   \"rules\": [{\"catalog\": true, \"gc\": false}]},\n"
             "  {\"name\": \"ops\", \"password_hash\": \"@H\",\n"
             "   \"rules\": [{\"repositories\": [\"**\"], \"actions\": "
             "[\"*\"],\n"
             "              \"catalog\": true, \"gc\": true}]},\n"
             "  {\"name\": \"admin\", \"password_hash\": \"@H\",\n"
             "   \"rules\": [{\"repositories\": [\"**\"], \"actions\": "
             "[\"*\"]},\n"
             "             {\"catalog\": true}]}\n"
             " ]}\n";

/* 1 when user's grant of registry:<res>:* yields a token that passes the
 * check of that type; 0 when nothing is granted. */
static int
registry_grant(struct auth *a, const char *user, enum auth_type type)
{
	struct auth_scope ask = {.type = type, .name = "", .actions = AUTH_ALL};
	struct auth_scope got;
	char *tok = NULL;
	size_t n = auth_grant(a, user, &ask, 1, &got);
	int other = type == AUTH_TYPE_GC ? AUTH_TYPE_CATALOG : AUTH_TYPE_GC;

	if (n == 0)
		return 0;
	assert_int_equal(got.type, type);
	assert_int_equal(got.actions, AUTH_ALL);
	assert_int_equal(auth_token_sign(a, user, &got, 1, NOW, &tok), 0);
	assert_int_equal(auth_token_check(a, tok, NOW, type, NULL, AUTH_ALL),
	                 0);
	/* The one registry scope never stands for the other. */
	assert_int_equal(auth_token_check(a, tok, NOW, (enum auth_type)other,
	                                  NULL, AUTH_ALL),
	                 RC_DENIED);
	free(tok);
	return 1;
}

static void
test_gc_rules(void **state)
{
	char err[256];
	struct auth *a = NULL;

	write_config(gc_users);
	assert_int_equal(auth_load(tmp("auth.json"), &a, err, sizeof(err)), 0);
	assert_int_equal(a->nusers, 4);
	assert_int_equal(a->users[0].nrules, 1);
	assert_int_equal(a->users[0].rules[0].gc, 1);
	assert_int_equal(a->users[0].rules[0].catalog, 0);
	assert_int_equal(a->users[0].rules[0].nrepos, 0);
	assert_int_equal(a->users[1].rules[0].gc, 0);
	assert_int_equal(a->users[1].rules[0].catalog, 1);
	assert_int_equal(a->users[2].rules[0].gc, 1);
	assert_int_equal(a->users[2].rules[0].catalog, 1);
	assert_int_equal(a->users[2].rules[0].nrepos, 1);
	assert_int_equal(a->users[2].rules[0].actions, AUTH_ALL);
	assert_int_equal(a->users[3].rules[0].gc, 0);
	assert_int_equal(a->users[3].rules[1].gc, 0);

	assert_int_equal(registry_grant(a, "gc", AUTH_TYPE_GC), 1);
	assert_int_equal(registry_grant(a, "gc", AUTH_TYPE_CATALOG), 0);
	assert_int_equal(registry_grant(a, "cat", AUTH_TYPE_GC), 0);
	assert_int_equal(registry_grant(a, "cat", AUTH_TYPE_CATALOG), 1);
	assert_int_equal(registry_grant(a, "ops", AUTH_TYPE_GC), 1);
	assert_int_equal(registry_grant(a, "ops", AUTH_TYPE_CATALOG), 1);
	/* Every repository and action, and the catalog: still no gc. */
	assert_int_equal(registry_grant(a, "admin", AUTH_TYPE_GC), 0);
	assert_int_equal(registry_grant(a, "admin", AUTH_TYPE_CATALOG), 1);
	assert_int_equal(registry_grant(a, NULL, AUTH_TYPE_GC), 0);
	{
		/* The gc user may touch no repository. */
		struct auth_scope ask = {.type = AUTH_TYPE_REPOSITORY,
		                         .name = "a",
		                         .actions = AUTH_PULL},
		                  got;

		assert_int_equal(auth_grant(a, "gc", &ask, 1, &got), 0);
		assert_int_equal(auth_grant(a, "ops", &ask, 1, &got), 1);
	}
	auth_free(a);
}

static void
test_defaults(void **state)
{
	char err[256];
	struct auth *a = NULL;

	/* The smallest file: no users, nobody may do anything. */
	write_config(HEAD "}");
	assert_int_equal(auth_load(tmp("auth.json"), &a, err, sizeof(err)), 0);
	assert_int_equal(auth_token_ttl(a), AUTH_TOKEN_TTL);
	assert_int_equal(a->nkeys, 1);
	assert_int_equal(a->nusers, 0);
	assert_int_equal(a->nanon, 0);
	assert_non_null(a->creds);
	assert_non_null(a->tokens);
	auth_free(a);

	assert_int_equal(auth_load(tmp("missing.json"), &a, err, sizeof(err)),
	                 -ENOENT);
	assert_non_null(strstr(err, "missing.json"));
}

static const struct {
	const char *json, *want;
} bad[] = {
        /* JSON syntax: line and column. */
        {"{\"service\": \"s\",\n \"issuer\": \"i\"\n \"realm\": \"x\"}",
         "auth.json:3:"},
        {"{\"service\": \"s\",\n\n \"service\": \"t\"}", "auth.json:3:"},
        {"", "auth.json:"},
        {"[]", "must be a JSON object"},
        /* Unknown keys, anywhere. */
        {HEAD ", \"sevrice\": \"x\"}", "auth.json:3: sevrice: unknown key"},
        /* The line of a value found after parsing; of its parent when it
         * is missing. */
        {HEAD
         ",\n \"users\": [\n  {\"name\": \"u\", \"password_hash\": \"@H\",\n"
         "   \"rules\": [{\"repositories\": [\"a\"], \"actions\": "
         "[\"pull\"]},\n"
         "             {\"repositories\": [\"b\"],\n"
         "              \"actions\": [\"pul\"]}]}]}",
         "auth.json:8: users[0].rules[1].actions: unknown action \"pul\""},
        {HEAD ",\n \"users\": [\n  {\"name\": \"u\"}]}",
         "auth.json:5: users[0].password_hash: missing"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"pasword_hash\": \"@H\"}]}",
         "users[0].pasword_hash: unknown key"},
        {HEAD ", \"anonymous\": [{\"repositories\": [\"a\"], "
              "\"actions\": [\"pull\"], \"action\": [\"push\"]}]}",
         "anonymous[0].action: unknown key"},
        {HEAD ", \"trusted_issuers\": [{\"issuer\": \"c\", \"keys\": "
              "[\"keys/corp.pub.pem\"], \"kid\": \"x\"}]}",
         "trusted_issuers[0].kid: unknown key"},
        /* The required strings. */
        {"{\"issuer\": \"i\", \"realm\": \"https://r/t\", "
         "\"signing_key\": \"keys/sign.pem\"}",
         "service: missing"},
        {"{\"service\": \"\", \"issuer\": \"i\", \"realm\": \"https://r/t\", "
         "\"signing_key\": \"keys/sign.pem\"}",
         "service: must be a non-empty string"},
        {"{\"service\": \"s\", \"issuer\": 7, \"realm\": \"https://r/t\", "
         "\"signing_key\": \"keys/sign.pem\"}",
         "issuer: must be a non-empty string"},
        {"{\"service\": \"s\", \"issuer\": \"i\", "
         "\"signing_key\": \"keys/sign.pem\"}",
         "realm: missing"},
        /* The realm. */
        {"{\"service\": \"s\", \"issuer\": \"i\", \"realm\": \"/auth/token\", "
         "\"signing_key\": \"keys/sign.pem\"}",
         "realm: must be an absolute"},
        {"{\"service\": \"s\", \"issuer\": \"i\", "
         "\"realm\": \"ftp://r/auth\", \"signing_key\": \"keys/sign.pem\"}",
         "realm: must be an absolute"},
        {"{\"service\": \"s\", \"issuer\": \"i\", "
         "\"realm\": \"https://r\", \"signing_key\": \"keys/sign.pem\"}",
         "realm: needs a path"},
        {"{\"service\": \"s\", \"issuer\": \"i\", "
         "\"realm\": \"https:///auth\", \"signing_key\": \"keys/sign.pem\"}",
         "realm: has no host"},
        {"{\"service\": \"s\", \"issuer\": \"i\", "
         "\"realm\": \"https://r/a\\\"b\", \"signing_key\": \"keys/sign.pem\"}",
         "realm: space, quote"},
        /* The lifetime. */
        {HEAD ", \"token_ttl\": 30}", "token_ttl: must be between 60"},
        {HEAD ", \"token_ttl\": \"300\"}", "token_ttl: must be an integer"},
        {HEAD ", \"token_ttl\": 300.5}", "token_ttl: must be an integer"},
        /* Keys. */
        {"{\"service\": \"s\", \"issuer\": \"i\", \"realm\": \"https://r/t\"}",
         "signing_key: missing"},
        {"{\"service\": \"s\", \"issuer\": \"i\", \"realm\": \"https://r/t\", "
         "\"signing_key\": \"keys/nope.pem\"}",
         "signing_key: keys/nope.pem: No such file"},
        {"{\"service\": \"s\", \"issuer\": \"i\", \"realm\": \"https://r/t\", "
         "\"signing_key\": \"keys/sign.pub.pem\"}",
         "signing_key: keys/sign.pub.pem: not a PEM private key"},
        {"{\"service\": \"s\", \"issuer\": \"i\", \"realm\": \"https://r/t\", "
         "\"signing_key\": \"keys/p384.pem\"}",
         "signing_key: keys/p384.pem: must be an EC P-256 key"},
        {HEAD ", \"previous_keys\": [\"keys/old.pem\", \"keys/x.pem\"]}",
         "previous_keys[1]: keys/x.pem: No such file"},
        {HEAD ", \"previous_keys\": [\"keys/sign.pub.pem\"]}",
         "previous_keys[0]: the same key is listed twice"},
        {HEAD ", \"previous_keys\": \"keys/old.pem\"}",
         "previous_keys: must be an array"},
        {HEAD ", \"trusted_issuers\": [{\"issuer\": \"c\"}]}",
         "trusted_issuers[0].keys: must be a non-empty array"},
        {HEAD ", \"trusted_issuers\": [{\"keys\": [\"keys/corp.pub.pem\"]}]}",
         "trusted_issuers[0].issuer: missing"},
        /* Users. */
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\"}, "
              "{\"name\": \"u\", \"password_hash\": \"@H\"}]}",
         "users[1].name: duplicate user \"u\""},
        {HEAD ", \"users\": [{\"name\": \"\", \"password_hash\": \"@H\"}]}",
         "users[0].name: must be a non-empty string"},
        {HEAD ", \"users\": [{\"name\": \"a:b\", \"password_hash\": \"@H\"}]}",
         "users[0].name: ':'"},
        {HEAD ", \"users\": [{\"name\": \"u\"}]}",
         "users[0].password_hash: missing"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": "
              "\"secret\"}]}",
         "users[0].password_hash: "},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": "
              "\"$pbkdf2-sha256$i=1000$c2FsdHNhbHRzYWx0c2FsdA$"
              "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g\"}]}",
         "users[0].password_hash: "},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"expires\": \"2027-02-30T00:00:00Z\"}]}",
         "users[0].expires: must be a UTC time"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"expires\": \"2027-06-30\"}]}",
         "users[0].expires: must be a UTC time"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"expires\": \"2027-06-30T00:00:00+02:00\"}]}",
         "users[0].expires: must be a UTC time"},
        {HEAD ", \"users\": {\"name\": \"u\"}}", "users: must be an array"},
        /* Rules. */
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"repositories\": [\"a\"], "
              "\"actions\": [\"pul\"]}]}]}",
         "users[0].rules[0].actions: unknown action \"pul\""},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"catalog\": true}, {}]}]}",
         "users[0].rules[1]: needs \"repositories\""},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"catalog\": false}]}]}",
         "users[0].rules[0]: needs \"repositories\""},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"repositories\": [\"a\"], \"actions\": []}]}]}",
         "users[0].rules[0].actions: must be a non-empty array"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"repositories\": [\"a\"]}]}]}",
         "users[0].rules[0].actions: missing"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"actions\": [\"pull\"]}]}]}",
         "users[0].rules[0]: actions without repositories"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"repositories\": [], \"actions\": [\"pull\"]}]}]}",
         "users[0].rules[0].repositories: must be a non-empty array"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"repositories\": [\"a\", \"\"], "
              "\"actions\": [\"pull\"]}]}]}",
         "users[0].rules[0].repositories[1]: must be a glob"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"catalog\": \"yes\"}]}]}",
         "users[0].rules[0].catalog: must be true or false"},
        /* The gc rule: a boolean, named by line; alone or with others. */
        {HEAD ",\n \"users\": [\n  {\"name\": \"u\", \"password_hash\": "
              "\"@H\",\n"
              "   \"rules\": [{\"catalog\": true},\n"
              "             {\"gc\": \"yes\"}]}]}",
         "auth.json:7: users[0].rules[1].gc: must be true or false"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"gc\": 1}]}]}",
         "users[0].rules[0].gc: must be true or false"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"gc\": false}]}]}",
         "users[0].rules[0]: needs \"repositories\" and \"actions\", "
         "\"catalog\": true, \"gc\": true or \"backup\": true"},
        /* The backup rule: a boolean likewise. */
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"backup\": \"yes\"}]}]}",
         "users[0].rules[0].backup: must be true or false"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"gc\": true, \"actions\": [\"pull\"]}]}]}",
         "users[0].rules[0]: actions without repositories"},
        {HEAD ", \"users\": [{\"name\": \"u\", \"password_hash\": \"@H\", "
              "\"rules\": [{\"gc\": true, \"repositories\": [\"a\"]}]}]}",
         "users[0].rules[0].actions: missing"},
        {HEAD ",\n \"anonymous\": [{\"repositories\": [\"a\"], "
              "\"actions\": [\"pull\"]},\n"
              "  {\"Gc\": true}]}",
         "auth.json:5: anonymous[1].Gc: unknown key"},
        {HEAD ", \"anonymous\": [{\"repositories\": [\"a\"], "
              "\"actions\": [\"pull\", \"write\"]}]}",
         "anonymous[0].actions: unknown action \"write\""},
        {HEAD ", \"anonymous\": {\"repositories\": [\"a\"]}}",
         "anonymous: must be an array"},
};

static void
test_bad(void **state)
{
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct auth *a = NULL;
		int rc;

		write_config(bad[i].json);
		err[0] = '\0';
		rc = auth_load(tmp("auth.json"), &a, err, sizeof(err));
		if (rc != RC_BAD_REQUEST || strstr(err, bad[i].want) == NULL ||
		    strstr(err, tmp("auth.json")) != err)
			fail_msg("case %zu: rc %d, err \"%s\", want \"%s\"", i,
			         rc, err, bad[i].want);
		assert_null(a);
	}
}

static void
test_err_buffer(void **state)
{
	char err[8];
	struct auth *a = NULL;

	/* A short or missing message buffer is fine. */
	write_config(HEAD ", \"token_ttl\": 30}");
	assert_int_equal(auth_load(tmp("auth.json"), &a, err, sizeof(err)),
	                 RC_BAD_REQUEST);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(auth_load(tmp("auth.json"), &a, NULL, 0),
	                 RC_BAD_REQUEST);
	assert_null(a);
}

/* The files a load reads, as a reloader watches them. */
struct seen {
	char names[8][128];
	int n;
};

static void
note(const char *file, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8)
		snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", file);
}

static void
test_watched(void **state)
{
	struct seen s = {.n = 0};
	struct auth *a = NULL;
	char err[256], want[4][128];

	/* Every file, in the order read, with its directory. */
	write_config(good);
	assert_int_equal(auth_load_watched(tmp("auth.json"), note, &s, &a, err,
	                                   sizeof(err)),
	                 0);
	snprintf(want[0], sizeof(want[0]), "%s", tmp("auth.json"));
	snprintf(want[1], sizeof(want[1]), "%s", tmp("keys/sign.pem"));
	snprintf(want[2], sizeof(want[2]), "%s", tmp("keys/old.pem"));
	snprintf(want[3], sizeof(want[3]), "%s", tmp("keys/corp.pub.pem"));
	assert_int_equal(s.n, 4);
	for (int i = 0; i < 4; i++)
		assert_string_equal(s.names[i], want[i]);
	auth_free(a);

	/* A key file that is not there is named too (its arrival is a
	 * change), and the load fails as auth_load does. */
	s.n = 0;
	a = NULL;
	write_config("{\"service\": \"s\", \"issuer\": \"i\",\n"
	             " \"realm\": \"https://r.test/auth/token\",\n"
	             " \"signing_key\": \"keys/next.pem\"}\n");
	assert_int_equal(auth_load_watched(tmp("auth.json"), note, &s, &a, err,
	                                   sizeof(err)),
	                 RC_BAD_REQUEST);
	assert_null(a);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[1], tmp("keys/next.pem"));
	assert_non_null(strstr(err, "auth.json:3: signing_key: keys/next.pem"));

	/* A file that does not parse: only the users file. */
	s.n = 0;
	write_config("{\"service\": ");
	assert_int_equal(auth_load_watched(tmp("auth.json"), note, &s, &a, err,
	                                   sizeof(err)),
	                 RC_BAD_REQUEST);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.names[0], tmp("auth.json"));
	assert_null(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_good),
	        cmocka_unit_test(test_gc_rules),
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_bad),
	        cmocka_unit_test(test_err_buffer),
	        cmocka_unit_test(test_watched),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
