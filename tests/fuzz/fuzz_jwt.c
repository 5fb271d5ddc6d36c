/* libFuzzer harness for bearer-token verification (auth/jwt.c, with
 * auth/b64.c and auth/scope.c under it): auth_token_check() and
 * auth_token_user() with the test key set of tests/fuzz/keys/users.json
 * (signing key ES256, a previous ES256 key, and issuer "corp" with an
 * ES384 and an RS256 key). Built by `make fuzz`.
 *
 * Input: a mode byte, then
 *   0  [query][clock] token: the token as a client sends it after
 *      "Bearer ";
 *   1  [query][clock][signer] header JSON '\n' claims JSON: the harness
 *      base64url-encodes both and signs them with one of the four private
 *      keys (or appends a zero signature), so that mutated headers and
 *      claims get past the signature to the checks behind it;
 *   2  [user] scopes separated by ' ': a round trip through auth_grant()
 *      and auth_token_sign() for one of the users of the file.
 * [query] picks the access asked for (a repository and actions, the
 * catalog, gc), [clock] the time of the check around FUZZ_NOW, the time
 * the seed tokens were signed for.
 *
 * Promises checked, besides crashes and sanitizer reports:
 *   - the answer is 0, RC_UNAUTHORIZED or RC_DENIED, the same when asked
 *     again (then from the cache), and auth_token_user() agrees on whether
 *     the token is acceptable;
 *   - mode 1: a token is acceptable only when its header names the key
 *     that signed it (kid: its thumbprint or libtrust id) with that key's
 *     algorithm (no "none", no HS256 with a public key, no ES256/RS256
 *     swap), its claims name that key's issuer and this service, and the
 *     clock lies within its lifetime give or take the leeway; the user
 *     is the subject for our own issuer's tokens, "" for another's;
 *   - mode 2: a token berth signs grants exactly what auth_grant() gave
 *     (each granted scope checks out, an ungranted repository is denied),
 *     names the user, and expires after the lifetime plus leeway. */
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_internal.h"
#include "common/rc.h"
#include "tests/fuzz/fixture.h"

#define FUZZ_NOW    1767225600L /* 2026-01-01T00:00:00Z */
#define TOKEN_LIMIT 8192        /* jwt.c's TOKEN_MAX */
#define SERVICE     "registry.test"
#define OWN_ISSUER  "berth-fuzz"

static struct auth *A;

/* The private keys, and which of A->keys each one's public half is. */
static const struct {
	const char *file, *alg, *issuer;
	const EVP_MD *(*md)(void);
	size_t coord; /* EC: bytes of r and s; 0: RSA */
} signer_def[] = {
        {"sign.pem", "ES256", OWN_ISSUER, EVP_sha256, 32},
        {"old.pem", "ES256", OWN_ISSUER, EVP_sha256, 32},
        {"corp-ec.pem", "ES384", "corp", EVP_sha384, 48},
        {"corp-rsa.pem", "RS256", "corp", EVP_sha256, 0},
};
#define N_SIGNERS (sizeof(signer_def) / sizeof(signer_def[0]))
static EVP_PKEY *signer[N_SIGNERS];
static const struct auth_key *signer_key[N_SIGNERS];

static const struct {
	enum auth_type type;
	const char *name;
	unsigned actions;
} queries[] = {
        {AUTH_TYPE_REPOSITORY, "review/app", AUTH_PULL},
        {AUTH_TYPE_REPOSITORY, "review/app", AUTH_PULL | AUTH_PUSH},
        {AUTH_TYPE_REPOSITORY, "apps/web", AUTH_PULL},
        {AUTH_TYPE_REPOSITORY, "public/base", AUTH_PULL},
        {AUTH_TYPE_REPOSITORY, "review/app", AUTH_DELETE},
        {AUTH_TYPE_REPOSITORY, "review/**", AUTH_DELETE},
        {AUTH_TYPE_CATALOG, "", AUTH_ALL},
        {AUTH_TYPE_GC, "", AUTH_ALL},
};
#define N_QUERIES (sizeof(queries) / sizeof(queries[0]))

static const long clocks[] = {0, -30, 240, 329, 331, 400, -91, -89, -100000};
#define N_CLOCKS (sizeof(clocks) / sizeof(clocks[0]))

static const char *const users[] = {NULL,  "ci",         "admin", "kubelet",
                                    "old", "gc-cronjob", "nobody"};
#define N_USERS (sizeof(users) / sizeof(users[0]))

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	A = fixture_auth();
	for (size_t i = 0; i < N_SIGNERS; i++) {
		FILE *f = fopen(fixture_path(signer_def[i].file), "r");

		if (f == NULL || (signer[i] = PEM_read_PrivateKey(
		                          f, NULL, NULL, NULL)) == NULL) {
			fprintf(stderr, "fuzz_jwt: cannot read %s\n",
			        signer_def[i].file);
			exit(2);
		}
		fclose(f);
		for (size_t k = 0; k < A->nkeys; k++)
			if (EVP_PKEY_eq(A->keys[k].pkey, signer[i]) == 1)
				signer_key[i] = &A->keys[k];
		if (signer_key[i] == NULL) {
			fprintf(stderr, "fuzz_jwt: %s is not in users.json\n",
			        signer_def[i].file);
			exit(2);
		}
	}
	return 0;
}

static char *
b64url(const void *in, size_t n)
{
	char *out = malloc(auth_b64_len(n) + 1);

	if (out == NULL)
		abort();
	auth_b64_encode(AUTH_B64_URL, in, n, out);
	return out;
}

/* The JWS signature of in by signer s (r || s for EC), or NULL. */
static unsigned char *
sign(size_t s, const char *in, size_t *slen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[1024], *out = NULL;
	size_t dlen = sizeof(der);

	if (ctx == NULL ||
	    EVP_DigestSignInit(ctx, NULL, signer_def[s].md(), NULL,
	                       signer[s]) != 1 ||
	    EVP_DigestSign(ctx, der, &dlen, (const unsigned char *)in,
	                   strlen(in)) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
	if (signer_def[s].coord == 0) {
		if ((out = malloc(dlen)) == NULL)
			abort();
		memcpy(out, der, dlen);
		*slen = dlen;
	} else {
		const unsigned char *p = der;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
		size_t c = signer_def[s].coord;

		if (es == NULL || (out = malloc(2 * c)) == NULL ||
		    BN_bn2binpad(ECDSA_SIG_get0_r(es), out, (int)c) != (int)c ||
		    BN_bn2binpad(ECDSA_SIG_get0_s(es), out + c, (int)c) !=
		            (int)c)
			abort();
		ECDSA_SIG_free(es);
		*slen = 2 * c;
	}
	return out;
}

/* Checks the token with query q at clock t; returns the answer after
 * the common promises. user: what auth_token_user() said. */
static int
check(const char *tok, size_t q, time_t t, char user[AUTH_NAME_MAX + 1])
{
	int rc = auth_token_check(A, tok, t, queries[q].type, queries[q].name,
	                          queries[q].actions);
	int urc;

	if (rc != RC_OK && rc != RC_UNAUTHORIZED && rc != RC_DENIED)
		abort();
	if (auth_token_check(A, tok, t, queries[q].type, queries[q].name,
	                     queries[q].actions) != rc)
		abort();
	urc = auth_token_user(A, tok, t, user, AUTH_NAME_MAX + 1);
	if (urc != (rc == RC_UNAUTHORIZED ? RC_UNAUTHORIZED : RC_OK))
		abort();
	if (strlen(user) > AUTH_NAME_MAX)
		abort();
	return rc;
}

static int
json_num(json_t *o, const char *key, double *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_number(v))
		return 0;
	*out = json_number_value(v);
	return 1;
}

static void
check_signed(const char *head, const char *claims, size_t s, size_t q, time_t t,
             int rc, const char *user)
{
	json_t *h = json_loads(head, JSON_REJECT_DUPLICATES, NULL);
	json_t *c = json_loads(claims, JSON_REJECT_DUPLICATES, NULL);
	const char *alg = json_string_value(json_object_get(h, "alg"));
	const char *kid = json_string_value(json_object_get(h, "kid"));
	const char *iss = json_string_value(json_object_get(c, "iss"));
	const char *sub = json_string_value(json_object_get(c, "sub"));
	json_t *aud = json_object_get(c, "aud");
	double exp, lo = -1e300, x;

	if (rc == RC_UNAUTHORIZED)
		goto out;
	/* signed by s, announced as s */
	if (s >= N_SIGNERS || alg == NULL || kid == NULL ||
	    strcmp(alg, signer_def[s].alg) != 0 ||
	    (strcmp(kid, signer_key[s]->kid) != 0 &&
	     strcmp(kid, signer_key[s]->trustkid) != 0))
		abort();
	if (iss == NULL || strcmp(iss, signer_def[s].issuer) != 0)
		abort();
	if (!(json_is_string(aud) &&
	      strcmp(json_string_value(aud), SERVICE) == 0) &&
	    !json_is_array(aud))
		abort();
	if (!json_num(c, "exp", &exp))
		abort();
	if (json_num(c, "nbf", &x) && x > lo)
		lo = x;
	if (json_num(c, "iat", &x) && x > lo)
		lo = x;
	if ((double)t < lo - AUTH_LEEWAY - 1 ||
	    (double)t >= exp + AUTH_LEEWAY + 1)
		abort();
	if (strcmp(signer_def[s].issuer, OWN_ISSUER) == 0 && sub != NULL &&
	    strlen(sub) <= AUTH_NAME_MAX) {
		if (strcmp(user, sub) != 0)
			abort();
	} else if (user[0] != '\0') {
		abort();
	}
out:
	json_decref(h);
	json_decref(c);
}

static void
fuzz_raw(const uint8_t *data, size_t size)
{
	char user[AUTH_NAME_MAX + 1], *tok;

	if (size < 2 || size - 2 > TOKEN_LIMIT + 16)
		return;
	if ((tok = strndup((const char *)data + 2, size - 2)) == NULL)
		abort();
	check(tok, data[0] % N_QUERIES,
	      (time_t)(FUZZ_NOW + clocks[data[1] % N_CLOCKS]), user);
	free(tok);
}

static void
fuzz_signed(const uint8_t *data, size_t size)
{
	char user[AUTH_NAME_MAX + 1], *head, *claims, *nl, *hb, *cb, *sb, *tok;
	unsigned char *sig, zero[64] = {0};
	size_t q, s, slen = sizeof(zero), n;
	time_t t;
	int rc;

	if (size < 3 || size - 3 > TOKEN_LIMIT)
		return;
	q = data[0] % N_QUERIES;
	t = (time_t)(FUZZ_NOW + clocks[data[1] % N_CLOCKS]);
	s = data[2] % (N_SIGNERS + 1);
	if ((head = strndup((const char *)data + 3, size - 3)) == NULL)
		abort();
	claims = (nl = strchr(head, '\n')) != NULL ? nl + 1 : "";
	if (nl != NULL)
		*nl = '\0';
	hb = b64url(head, strlen(head));
	cb = b64url(claims, strlen(claims));
	n = strlen(hb) + 1 + strlen(cb);
	if ((tok = malloc(n + 1 + auth_b64_len(1024) + 1)) == NULL)
		abort();
	snprintf(tok, n + 1, "%s.%s", hb, cb);
	sig = s < N_SIGNERS ? sign(s, tok, &slen) : zero;
	sb = b64url(sig, slen);
	tok[n] = '.';
	strcpy(tok + n + 1, sb);
	rc = check(tok, q, t, user);
	check_signed(head, claims, s, q, t, rc, user);
	if (sig != zero)
		free(sig);
	free(hb);
	free(cb);
	free(sb);
	free(tok);
	free(head);
}

static void
fuzz_roundtrip(const uint8_t *data, size_t size)
{
	struct auth_scope asked[16], granted[16];
	const char *user;
	char *list, *save = NULL, *tok = NULL, got[AUTH_NAME_MAX + 1];
	size_t n = 0, ng;

	if (size < 1 || size > 4096)
		return;
	user = users[data[0] % N_USERS];
	if ((list = strndup((const char *)data + 1, size - 1)) == NULL)
		abort();
	for (char *w = strtok_r(list, " ", &save); w != NULL && n < 16;
	     w = strtok_r(NULL, " ", &save))
		if (auth_scope_parse(w, &asked[n]) == RC_OK)
			n++;
	ng = auth_grant(A, user, asked, n, granted);
	if (ng > n ||
	    auth_token_sign(A, user, granted, ng, FUZZ_NOW, &tok) != RC_OK)
		abort();
	for (size_t i = 0; i < ng; i++)
		if (auth_token_check(A, tok, FUZZ_NOW, granted[i].type,
		                     granted[i].name,
		                     granted[i].actions) != RC_OK)
			abort();
	if (auth_token_user(A, tok, FUZZ_NOW, got, sizeof(got)) != RC_OK ||
	    strcmp(got, user != NULL ? user : "") != 0)
		abort();
	{
		int other = 1;
		for (size_t i = 0; i < ng; i++)
			if (granted[i].type == AUTH_TYPE_REPOSITORY &&
			    strcmp(granted[i].name, "zz/not-asked") == 0)
				other = 0;
		if (other &&
		    auth_token_check(A, tok, FUZZ_NOW, AUTH_TYPE_REPOSITORY,
		                     "zz/not-asked", AUTH_PULL) != RC_DENIED)
			abort();
	}
	if (auth_token_check(A, tok, FUZZ_NOW + auth_token_ttl(A) + AUTH_LEEWAY,
	                     AUTH_TYPE_REPOSITORY, "review/app",
	                     AUTH_PULL) != RC_UNAUTHORIZED)
		abort();
	free(tok);
	free(list);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0: fuzz_raw(data + 1, size - 1); break;
	case 1: fuzz_signed(data + 1, size - 1); break;
	default: fuzz_roundtrip(data + 1, size - 1); break;
	}
	ERR_clear_error();
	return 0;
}
