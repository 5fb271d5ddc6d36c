/* libFuzzer harness for the users file (auth/config.c, with auth/keys.c,
 * auth/password.c's hash-encoding check and common/jsonline.c's located
 * error messages): auth_load(), the only entry point, reads a file, so
 * each input is written to users.json in a temp directory that holds the
 * test keys (tests/fuzz/keys/) under the names the repository's users
 * files use (sign.pem, old.pem, key.pem, keys/sign.pem, keys/old.pem,
 * keys/corp.pub.pem, keys/p384.pem, keys/sign.pub.pem, corp-ec.pub.pem,
 * corp-rsa.pub.pem). Built by `make fuzz`.
 *
 * Input: the users file. Inputs that could name a file outside the temp
 * directory as a key (a string starting with '/', "..", '/' or '.'
 * escaped as \u002x) are skipped: a FIFO or a device there could block
 * or read without end, and operators, not clients, write this file.
 *
 * Promises checked, besides crashes and sanitizer reports:
 *   - a refusal is RC_BAD_REQUEST or a negative errno, with one line in
 *     err that starts with the file it is about;
 *   - a loaded file has a service, an issuer, a realm whose path starts
 *     with '/', a token lifetime of at least AUTH_TTL_MIN, a signing key
 *     whose public half is the first verification key, every user has a
 *     name and a hash, every rule something to allow;
 *   - loading the same bytes again gives the same answer. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/pem.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth_internal.h"
#include "common/rc.h"
#include "tests/fuzz/fixture.h"

#define USERS_MAX (64 * 1024)

static char dir[64], users_path[96], users_real[PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
cleanup(void)
{
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void
link_key(const char *name, const char *target)
{
	char path[160];
	char *src = strdup(fixture_path(target));

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (src == NULL || symlink(src, path) != 0) {
		perror(path);
		exit(2);
	}
	free(src);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char path[160];
	EVP_PKEY *k;
	FILE *f;

	/* Each input is written to a file: on tmpfs that is six times
	 * faster than on a disk's file system. */
	if (tmp == NULL && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	snprintf(dir, sizeof(dir), "%s/berth-fuzz-users-XXXXXX",
	         tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
	snprintf(path, sizeof(path), "%s/keys", dir);
	if (mkdtemp(dir) == NULL ||
	    (snprintf(path, sizeof(path), "%s/keys", dir), mkdir(path, 0700)) !=
	            0) {
		perror("fuzz_users: temp dir");
		exit(2);
	}
	atexit(cleanup);
	snprintf(users_path, sizeof(users_path), "%s/users.json", dir);
	if ((f = fopen(users_path, "w")) == NULL || fclose(f) != 0 ||
	    realpath(users_path, users_real) == NULL) {
		perror(users_path);
		exit(2);
	}
	link_key("sign.pem", "sign.pem");
	link_key("old.pem", "old.pem");
	link_key("key.pem", "sign.pem");
	link_key("corp-ec.pub.pem", "corp-ec.pub.pem");
	link_key("corp-rsa.pub.pem", "corp-rsa.pub.pem");
	link_key("keys/sign.pem", "sign.pem");
	link_key("keys/old.pem", "old.pem");
	link_key("keys/corp.pub.pem", "corp-ec.pub.pem");
	link_key("keys/p384.pem", "corp-ec.pem");
	/* the signing key's public half, refused as a signing key */
	if ((f = fopen(fixture_path("sign.pem"), "r")) == NULL ||
	    (k = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
		exit(2);
	fclose(f);
	snprintf(path, sizeof(path), "%s/keys/sign.pub.pem", dir);
	if ((f = fopen(path, "w")) == NULL || PEM_write_PUBKEY(f, k) != 1)
		exit(2);
	fclose(f);
	EVP_PKEY_free(k);
	return 0;
}

/* auth_key_load() and auth_key_public() are wrapped (fuzz_users.ldflags)
 * with a cache keyed by the file's real path: the keys are fixed files
 * the fuzzer never changes, and OpenSSL's PEM and DER decoders cost
 * about twenty times the rest of a load. The first load of each path
 * and mode goes to the real function, so its answers are the real ones. */
int __real_auth_key_load(const char *path, int want_private,
                         struct auth_key *out, const char **why);
int __wrap_auth_key_load(const char *path, int want_private,
                         struct auth_key *out, const char **why);
int __real_auth_key_public(const struct auth_key *priv, struct auth_key *out);
int __wrap_auth_key_public(const struct auth_key *priv, struct auth_key *out);

#define KEY_CACHE 32
static struct {
	char path[PATH_MAX];
	int want_private, rc;
	const char *why;
	struct auth_key key, pub;
	int pub_rc, pub_done;
} cache[KEY_CACHE];
static size_t ncache;

static int
key_copy(const struct auth_key *from, struct auth_key *to)
{
	*to = *from;
	to->issuer = NULL;
	if (from->issuer != NULL && (to->issuer = strdup(from->issuer)) == NULL)
		abort();
	if (to->pkey != NULL && EVP_PKEY_up_ref(to->pkey) != 1)
		abort();
	return RC_OK;
}

int
__wrap_auth_key_load(const char *path, int want_private, struct auth_key *out,
                     const char **why)
{
	char real[PATH_MAX];
	int rc;

	/* Missing files, and the users file itself (rewritten for each
	 * input): the real thing, every time. */
	if (realpath(path, real) == NULL || strcmp(real, users_real) == 0)
		return __real_auth_key_load(path, want_private, out, why);
	for (size_t i = 0; i < ncache; i++)
		if (cache[i].want_private == want_private &&
		    strcmp(cache[i].path, real) == 0) {
			*why = cache[i].why;
			return cache[i].rc < 0 ? cache[i].rc
			                       : key_copy(&cache[i].key, out);
		}
	rc = __real_auth_key_load(path, want_private, out, why);
	if (ncache < KEY_CACHE) {
		snprintf(cache[ncache].path, sizeof(cache[ncache].path), "%s",
		         real);
		cache[ncache].want_private = want_private;
		cache[ncache].rc = rc;
		cache[ncache].why = rc < 0 ? *why : NULL;
		if (rc == RC_OK)
			key_copy(out, &cache[ncache].key);
		ncache++;
	}
	return rc;
}

int
__wrap_auth_key_public(const struct auth_key *priv, struct auth_key *out)
{
	for (size_t i = 0; i < ncache; i++)
		if (cache[i].rc == RC_OK && cache[i].key.pkey == priv->pkey) {
			if (!cache[i].pub_done) {
				cache[i].pub_rc = __real_auth_key_public(
				        priv, &cache[i].pub);
				cache[i].pub_done = 1;
			}
			if (cache[i].pub_rc < 0)
				return cache[i].pub_rc;
			key_copy(&cache[i].pub, out);
			free(out->issuer);
			out->issuer = NULL;
			if (priv->issuer != NULL &&
			    (out->issuer = strdup(priv->issuer)) == NULL)
				return -ENOMEM;
			return RC_OK;
		}
	return __real_auth_key_public(priv, out);
}

static int
unsafe(const uint8_t *data, size_t size)
{
	static const char *const bad[] = {"\"/", "\"\\/", "..", "\\u002"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (memmem(data, size, bad[i], strlen(bad[i])) != NULL)
			return 1;
	return 0;
}

static int
load(const uint8_t *data, size_t size, struct auth **a, char *err,
     size_t errlen)
{
	FILE *f = fopen(users_path, "w");

	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	return auth_load(users_path, a, err, errlen);
}

static void
check_rule(const struct auth_rule *r)
{
	if (r->nrepos == 0 && !r->catalog && !r->gc && !r->backup)
		abort();
	if (r->nrepos > 0 && (r->actions == 0 || r->repos == NULL))
		abort();
	if ((r->actions & ~AUTH_ALL) != 0)
		abort();
	for (size_t i = 0; i < r->nrepos; i++)
		if (r->repos[i] == NULL || r->repos[i][0] == '\0')
			abort();
}

static void
check_auth(const struct auth *a)
{
	if (auth_service(a) == NULL || auth_service(a)[0] == '\0' ||
	    a->issuer == NULL || a->issuer[0] == '\0' ||
	    auth_realm(a) == NULL || auth_realm_path(a) == NULL ||
	    auth_realm_path(a)[0] != '/' || auth_token_ttl(a) < AUTH_TTL_MIN)
		abort();
	if (a->signing.pkey == NULL || a->nkeys == 0 ||
	    EVP_PKEY_eq(a->keys[0].pkey, a->signing.pkey) != 1 ||
	    strcmp(a->keys[0].kid, a->signing.kid) != 0)
		abort();
	for (size_t i = 0; i < a->nkeys; i++)
		if (a->keys[i].pkey == NULL || a->keys[i].kid[0] == '\0' ||
		    a->keys[i].issuer == NULL)
			abort();
	for (size_t i = 0; i < a->nusers; i++) {
		const struct auth_user *u = &a->users[i];
		if (u->name == NULL || u->name[0] == '\0' || u->hash == NULL)
			abort();
		for (size_t j = 0; j < u->nrules; j++)
			check_rule(&u->rules[j]);
	}
	for (size_t j = 0; j < a->nanon; j++)
		check_rule(&a->anon[j]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth *a = NULL, *b = NULL;
	char err[512], err2[512];
	int rc, rc2;

	if (size > USERS_MAX || unsafe(data, size))
		return 0;
	memset(err, 'x', sizeof(err));
	rc = load(data, size, &a, err, sizeof(err));
	if (rc == RC_OK) {
		if (a == NULL)
			abort();
		check_auth(a);
	} else {
		/* RC_BAD_REQUEST, RC_TOO_LARGE or a negative errno */
		if (a != NULL || (rc != RC_BAD_REQUEST && rc != RC_TOO_LARGE &&
		                  !(rc < 0 && rc > -200)))
			abort();
		if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0' ||
		    strchr(err, '\n') != NULL || strncmp(err, dir, strlen(dir)))
			abort();
	}
	rc2 = load(data, size, &b, err2, sizeof(err2));
	if (rc2 != rc || (rc != RC_OK && strcmp(err, err2) != 0))
		abort();
	auth_free(a);
	auth_free(b);
	return 0;
}
