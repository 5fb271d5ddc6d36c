/* Unit tests for auth/jwt.c: tokens signed by berth round-trip, and every
 * way a token must be refused. Tokens of other issuers and hostile tokens
 * are built by hand here (base64url, the signature, r || s) so that the
 * code under test does not check its own output. Keys are generated in C
 * into a temp dir with a users file naming them. */
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
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "auth/auth_internal.h"
#include "common/rc.h"
#include "test_auth_util.h"

#define NOW     1700000000L
#define SERVICE "registry.test"
#define ISSUER  "berth-test"
#define R       AUTH_TYPE_REPOSITORY
#define C       AUTH_TYPE_CATALOG
#define G       AUTH_TYPE_GC

static struct auth *A;
static EVP_PKEY *old_key, *corp_ec, *corp_rsa;
static char pub_pem[512]; /* the signing key's public PEM */

static int
write_file(const char *name, const char *text)
{
	FILE *f = fopen(tmp(name), "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int
setup(void **state)
{
	char err[256];
	FILE *f;
	size_t n;

	strcpy(dir, "/tmp/berth-test-jwt-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	old_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	corp_ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	corp_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (old_key == NULL || corp_ec == NULL || corp_rsa == NULL)
		return -1;
	if (auth_keygen(tmp("sign.pem")) != 0 ||
	    write_key(old_key, "old.pem", 0) != 0 ||
	    write_key(corp_ec, "corp-ec.pub.pem", 1) != 0 ||
	    write_key(corp_rsa, "corp-rsa.pub.pem", 1) != 0)
		return -1;
	if (write_file("auth.json",
	               "{\"service\": \"" SERVICE "\", \"issuer\": \"" ISSUER
	               "\",\n"
	               " \"realm\": \"https://registry.test/auth/token\",\n"
	               " \"signing_key\": \"sign.pem\",\n"
	               " \"previous_keys\": [\"old.pem\"],\n"
	               " \"trusted_issuers\": [{\"issuer\": \"corp\",\n"
	               "   \"keys\": [\"corp-ec.pub.pem\", "
	               "\"corp-rsa.pub.pem\"]}]}\n") != 0)
		return -1;
	if (auth_load(tmp("auth.json"), &A, err, sizeof(err)) != 0) {
		fprintf(stderr, "auth_load: %s\n", err);
		return -1;
	}
	/* The signing key's public PEM: an HS256 secret an attacker has. */
	f = fopen(tmp("sign.pub.pem"), "w+");
	if (f == NULL || PEM_write_PUBKEY(f, A->keys[0].pkey) != 1)
		return -1;
	rewind(f);
	n = fread(pub_pem, 1, sizeof(pub_pem) - 1, f);
	pub_pem[n] = '\0';
	fclose(f);
	return 0;
}

static int
teardown(void **state)
{
	auth_free(A);
	EVP_PKEY_free(old_key);
	EVP_PKEY_free(corp_ec);
	EVP_PKEY_free(corp_rsa);
	return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- building tokens by hand ---- */

static size_t
unb64url(const char *in, size_t len, unsigned char *out)
{
	static const char t[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
	        "wxyz0123456789-_";
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		acc = acc << 6 | (uint32_t)(strchr(t, in[i]) - t);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return o;
}

/* Signs "b64(head).b64(claims)" with key k under alg (ES256/384/512,
 * RS256, HS256 with secret, or "none"); returns a static buffer. */
static const char *
forge(EVP_PKEY *k, const char *alg, const char *head, const char *claims,
      const char *secret)
{
	static char tok[8192];
	unsigned char sig[1024], raw[132];
	size_t slen = sizeof(sig), off;
	const EVP_MD *md = EVP_sha256();
	unsigned int hlen;

	b64url((const unsigned char *)head, strlen(head), tok);
	off = strlen(tok);
	tok[off++] = '.';
	b64url((const unsigned char *)claims, strlen(claims), tok + off);
	off = strlen(tok);
	if (strcmp(alg, "none") == 0) {
		strcpy(tok + off, ".");
		return tok;
	}
	if (strcmp(alg, "HS256") == 0) {
		assert_non_null(HMAC(md, secret, (int)strlen(secret),
		                     (unsigned char *)tok, off, sig, &hlen));
		tok[off++] = '.';
		b64url(sig, hlen, tok + off);
		return tok;
	}
	if (strcmp(alg + 2, "384") == 0)
		md = EVP_sha384();
	else if (strcmp(alg + 2, "512") == 0)
		md = EVP_sha512();
	{
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, k), 1);
		assert_int_equal(EVP_DigestSign(ctx, sig, &slen,
		                                (unsigned char *)tok, off),
		                 1);
		EVP_MD_CTX_free(ctx);
	}
	tok[off++] = '.';
	if (alg[0] == 'E') {
		/* DER to the JWS form: r and s, each padded to the curve. */
		int coord = (EVP_PKEY_get_bits(k) + 7) / 8;
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
		const BIGNUM *r, *s;

		assert_non_null(es);
		ECDSA_SIG_get0(es, &r, &s);
		assert_int_equal(BN_bn2binpad(r, raw, coord), coord);
		assert_int_equal(BN_bn2binpad(s, raw + coord, coord), coord);
		ECDSA_SIG_free(es);
		b64url(raw, 2 * (size_t)coord, tok + off);
	} else {
		b64url(sig, slen, tok + off);
	}
	return tok;
}

static const char *
head(const char *alg, const char *kid)
{
	static char buf[256];

	snprintf(buf, sizeof(buf),
	         "{\"typ\":\"JWT\",\"alg\":\"%s\",\"kid\":\"%s\"}", alg, kid);
	return buf;
}

/* Claims for repository a/b with pull,push; extra is spliced in first
 * (a later duplicate would be refused, so the fields it sets are left
 * out here by passing them as NULL). */
static const char *
claims(const char *iss, const char *aud, long exp, const char *extra)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf),
	         "{%s%s\"iss\":\"%s\",\"sub\":\"ci\",\"aud\":%s,\"exp\":%ld,"
	         "\"iat\":%ld,\"jti\":\"x\",\"access\":[{\"type\":\"repository"
	         "\",\"name\":\"a/b\",\"actions\":[\"pull\",\"push\"]}]}",
	         extra ? extra : "", extra ? "," : "", iss, aud, exp, NOW);
	return buf;
}

static const char *
signkid(void)
{
	return A->signing.kid;
}

static const struct auth_key *
key_of(EVP_PKEY *pkey)
{
	for (size_t i = 0; i < A->nkeys; i++)
		if (EVP_PKEY_eq(A->keys[i].pkey, pkey) == 1)
			return &A->keys[i];
	fail_msg("key not loaded");
	return NULL;
}

/* ---- tests ---- */

static void
test_round_trip(void **state)
{
	struct auth_scope sc[2] = {
	        {.type = R,
	         .name = "team/app",
	         .actions = AUTH_PULL | AUTH_PUSH},
	        {.type = C, .name = "", .actions = AUTH_ALL},
	};
	char *tok = NULL, *d1, *d2, want[256];
	unsigned char buf[2048];
	size_t n;

	assert_int_equal(auth_token_sign(A, "ci", sc, 2, NOW, &tok), 0);
	d1 = strchr(tok, '.');
	d2 = strchr(d1 + 1, '.');
	assert_non_null(d2);
	assert_null(strchr(d2 + 1, '.'));
	assert_null(strchr(tok, '='));

	n = unb64url(tok, (size_t)(d1 - tok), buf);
	buf[n] = '\0';
	snprintf(want, sizeof(want),
	         "{\"typ\":\"JWT\",\"alg\":\"ES256\",\"kid\":\"%s\"}",
	         signkid());
	assert_string_equal((char *)buf, want);
	n = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), buf);
	buf[n] = '\0';
	assert_non_null(strstr((char *)buf, "\"iss\":\"" ISSUER "\""));
	assert_non_null(strstr((char *)buf, "\"sub\":\"ci\""));
	assert_non_null(strstr((char *)buf, "\"aud\":\"" SERVICE "\""));
	assert_non_null(strstr((char *)buf, "\"exp\":1700000300"));
	assert_non_null(strstr((char *)buf, "\"nbf\":1700000000"));
	assert_non_null(strstr((char *)buf, "\"iat\":1700000000"));
	assert_non_null(strstr((char *)buf, "\"jti\":\""));
	assert_non_null(strstr((char *)buf,
	                       "{\"type\":\"registry\",\"name\":\"catalog\","
	                       "\"actions\":[\"*\"]}"));
	assert_non_null(strstr((char *)buf,
	                       "{\"type\":\"repository\",\"name\":\"team/app\","
	                       "\"actions\":[\"pull\",\"push\"]}"));
	assert_int_equal(strlen(d2 + 1), 86); /* 64 bytes: r || s */

	assert_int_equal(
	        auth_token_check(A, tok, NOW, R, "team/app", AUTH_PULL), 0);
	assert_int_equal(auth_token_check(A, tok, NOW, R, "team/app",
	                                  AUTH_PULL | AUTH_PUSH),
	                 0);
	assert_int_equal(auth_token_check(A, tok, NOW, C, NULL, AUTH_ALL), 0);
	assert_int_equal(auth_token_check(A, tok, NOW, R, "team/app", 0), 0);
	free(tok);

	/* Anonymous: an empty subject, no access. */
	assert_int_equal(auth_token_sign(A, NULL, NULL, 0, NOW, &tok), 0);
	d1 = strchr(tok, '.');
	d2 = strchr(d1 + 1, '.');
	n = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), buf);
	buf[n] = '\0';
	assert_non_null(strstr((char *)buf, "\"sub\":\"\""));
	assert_non_null(strstr((char *)buf, "\"access\":[]"));
	assert_int_equal(auth_token_check(A, tok, NOW, R, "a", 0), 0);
	assert_int_equal(auth_token_check(A, tok, NOW, R, "a", AUTH_PULL),
	                 RC_DENIED);
	assert_int_equal(auth_token_check(A, tok, NOW, C, NULL, AUTH_ALL),
	                 RC_DENIED);
	free(tok);

	/* Names that are not UTF-8 cannot go into a token. */
	tok = NULL;
	assert_int_equal(auth_token_sign(A, "ci\xff", NULL, 0, NOW, &tok),
	                 RC_BAD_REQUEST);
	{
		struct auth_scope bad = {
		        .type = R, .name = "a\xc3(", .actions = AUTH_PULL};

		assert_int_equal(auth_token_sign(A, "ci", &bad, 1, NOW, &tok),
		                 RC_BAD_REQUEST);
	}
	assert_null(tok);
}

static void
test_denied(void **state)
{
	struct auth_scope sc = {.type = R, .name = "a", .actions = AUTH_PULL};
	char *tok = NULL;

	assert_int_equal(auth_token_sign(A, "ci", &sc, 1, NOW, &tok), 0);
	assert_int_equal(auth_token_check(A, tok, NOW, R, "a", AUTH_PULL), 0);
	/* Another repository, a prefix, a longer name: denied. */
	assert_int_equal(auth_token_check(A, tok, NOW, R, "b", AUTH_PULL),
	                 RC_DENIED);
	assert_int_equal(auth_token_check(A, tok, NOW, R, "a/b", AUTH_PULL),
	                 RC_DENIED);
	assert_int_equal(auth_token_check(A, tok, NOW, R, "", AUTH_PULL),
	                 RC_DENIED);
	/* A missing action: denied. */
	assert_int_equal(auth_token_check(A, tok, NOW, R, "a", AUTH_PUSH),
	                 RC_DENIED);
	assert_int_equal(
	        auth_token_check(A, tok, NOW, R, "a", AUTH_PULL | AUTH_DELETE),
	        RC_DENIED);
	assert_int_equal(auth_token_check(A, tok, NOW, C, NULL, AUTH_ALL),
	                 RC_DENIED);
	free(tok);
}

static void
test_times(void **state)
{
	struct auth_scope sc = {.type = R, .name = "a", .actions = AUTH_PULL};
	long exp = NOW + AUTH_TOKEN_TTL;
	char *tok = NULL;

	/* Two tokens at different times, to check the cache too. */
	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(
		        auth_token_sign(A, "ci", &sc, 1, NOW + pass, &tok), 0);
		/* Checked the first time within the leeway, then beyond. */
		assert_int_equal(auth_token_check(A, tok,
		                                  exp + pass + AUTH_LEEWAY - 1,
		                                  R, "a", AUTH_PULL),
		                 0);
		assert_int_equal(auth_token_check(A, tok,
		                                  exp + pass + AUTH_LEEWAY, R,
		                                  "a", AUTH_PULL),
		                 RC_UNAUTHORIZED);
		/* Issued in the future (iat, nbf) beyond the leeway. */
		assert_int_equal(auth_token_check(A, tok,
		                                  NOW + pass - AUTH_LEEWAY - 1,
		                                  R, "a", AUTH_PULL),
		                 RC_UNAUTHORIZED);
		assert_int_equal(auth_token_check(A, tok,
		                                  NOW + pass - AUTH_LEEWAY, R,
		                                  "a", AUTH_PULL),
		                 0);
		free(tok);
		tok = NULL;
	}

	/* An expired token never seen before. */
	assert_int_equal(
	        auth_token_check(A,
	                         forge(A->signing.pkey, "ES256",
	                               head("ES256", signkid()),
	                               claims(ISSUER, "\"" SERVICE "\"",
	                                      NOW - AUTH_LEEWAY - 1, NULL),
	                               NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(A->signing.pkey, "ES256",
	                               head("ES256", signkid()),
	                               claims(ISSUER, "\"" SERVICE "\"",
	                                      NOW - AUTH_LEEWAY + 1, NULL),
	                               NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        0);
	/* nbf in the future. */
	assert_int_equal(
	        auth_token_check(A,
	                         forge(A->signing.pkey, "ES256",
	                               head("ES256", signkid()),
	                               claims(ISSUER, "\"" SERVICE "\"",
	                                      NOW + 600, "\"nbf\":1700000120"),
	                               NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	/* exp missing, or not a number. */
	assert_int_equal(auth_token_check(A,
	                                  forge(A->signing.pkey, "ES256",
	                                        head("ES256", signkid()),
	                                        "{\"iss\":\"" ISSUER
	                                        "\",\"aud\":\"" SERVICE
	                                        "\",\"access\":[]}",
	                                        NULL),
	                                  NOW, R, "a/b", 0),
	                 RC_UNAUTHORIZED);
	assert_int_equal(auth_token_check(A,
	                                  forge(A->signing.pkey, "ES256",
	                                        head("ES256", signkid()),
	                                        "{\"iss\":\"" ISSUER
	                                        "\",\"aud\":\"" SERVICE
	                                        "\",\"exp\":\"1800000000\"}",
	                                        NULL),
	                                  NOW, R, "a/b", 0),
	                 RC_UNAUTHORIZED);
}

static void
test_algorithms(void **state)
{
	char c[1024];

	strcpy(c, claims(ISSUER, "\"" SERVICE "\"", NOW + 300, NULL));
	/* The control: a hand-made ES256 token of the signing key. */
	assert_int_equal(
	        auth_token_check(A,
	                         forge(A->signing.pkey, "ES256",
	                               head("ES256", signkid()), c, NULL),
	                         NOW, R, "a/b", AUTH_PULL | AUTH_PUSH),
	        0);
	/* alg none, with or without a signature. */
	assert_int_equal(
	        auth_token_check(
	                A,
	                forge(NULL, "none", head("none", signkid()), c, NULL),
	                NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	assert_int_equal(auth_token_check(A,
	                                  forge(NULL, "none",
	                                        "{\"alg\":\"none\"}", c, NULL),
	                                  NOW, R, "a/b", AUTH_PULL),
	                 RC_UNAUTHORIZED);
	/* HS256 keyed with the public key (the algorithm confusion). */
	assert_int_equal(
	        auth_token_check(A,
	                         forge(NULL, "HS256", head("HS256", signkid()),
	                               c, pub_pem),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	/* ES384 claimed for a P-256 key, signed as ES256 or really with
	 * SHA-384; ES512 likewise. */
	assert_int_equal(
	        auth_token_check(A,
	                         forge(A->signing.pkey, "ES256",
	                               head("ES384", signkid()), c, NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(A->signing.pkey, "ES384",
	                               head("ES384", signkid()), c, NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(A->signing.pkey, "ES512",
	                               head("ES512", signkid()), c, NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	/* No alg, no kid, an unknown kid. */
	assert_int_equal(
	        auth_token_check(A,
	                         forge(A->signing.pkey, "ES256",
	                               "{\"typ\":\"JWT\",\"kid\":\"x\"}", c,
	                               NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(A->signing.pkey, "ES256",
	                               "{\"typ\":\"JWT\",\"alg\":\"ES256\"}", c,
	                               NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(A->signing.pkey, "ES256",
	                               head("ES256", "ABCD:EFGH"), c, NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	/* A key nobody configured, claiming the signing key's kid. */
	{
		EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

		assert_int_equal(
		        auth_token_check(A,
		                         forge(other, "ES256",
		                               head("ES256", signkid()), c,
		                               NULL),
		                         NOW, R, "a/b", AUTH_PULL),
		        RC_UNAUTHORIZED);
		EVP_PKEY_free(other);
	}
}

static void
test_claims(void **state)
{
	EVP_PKEY *k = A->signing.pkey;
	const char *h = head("ES256", signkid());

	/* Wrong audience; the audience in an array. */
	assert_int_equal(auth_token_check(A,
	                                  forge(k, "ES256", h,
	                                        claims(ISSUER, "\"other\"",
	                                               NOW + 300, NULL),
	                                        NULL),
	                                  NOW, R, "a/b", AUTH_PULL),
	                 RC_UNAUTHORIZED);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(k, "ES256", h,
	                               claims(ISSUER, "[\"x\",\"" SERVICE "\"]",
	                                      NOW + 300, NULL),
	                               NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        0);
	assert_int_equal(
	        auth_token_check(
	                A,
	                forge(k, "ES256", h,
	                      claims(ISSUER, "[\"x\"]", NOW + 300, NULL), NULL),
	                NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	/* Wrong issuer for the key. */
	assert_int_equal(
	        auth_token_check(A,
	                         forge(k, "ES256", h,
	                               claims("corp", "\"" SERVICE "\"",
	                                      NOW + 300, NULL),
	                               NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	/* The previous key still verifies, under its own kid. */
	assert_int_equal(
	        auth_token_check(A,
	                         forge(old_key, "ES256",
	                               head("ES256", key_of(old_key)->kid),
	                               claims(ISSUER, "\"" SERVICE "\"",
	                                      NOW + 300, NULL),
	                               NULL),
	                         NOW, R, "a/b", AUTH_PUSH),
	        0);
}

static void
test_trusted_issuer(void **state)
{
	const struct auth_key *ec = key_of(corp_ec), *rsa = key_of(corp_rsa);
	char c[1024], ours[1024];

	strcpy(ours, claims(ISSUER, "\"" SERVICE "\"", NOW + 300, NULL));
	strcpy(c, claims("corp", "\"" SERVICE "\"", NOW + 300, NULL));
	assert_int_equal(ec->curve_bits, 384);
	/* ES384 under the libtrust kid, RS256 and RS512 under the
	 * thumbprint. */
	assert_int_equal(
	        auth_token_check(A,
	                         forge(corp_ec, "ES384",
	                               head("ES384", ec->trustkid), c, NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        0);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(corp_ec, "ES384", head("ES384", ec->kid),
	                               c, NULL),
	                         NOW, R, "a/b", AUTH_PUSH),
	        0);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(corp_rsa, "RS256",
	                               head("RS256", rsa->kid), c, NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        0);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(corp_rsa, "RS512",
	                               head("RS512", rsa->trustkid), c, NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        0);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(corp_rsa, "RS256",
	                               head("RS256", rsa->kid), c, NULL),
	                         NOW, R, "a/c", AUTH_PULL),
	        RC_DENIED);
	/* The same keys with our issuer, or with another one: refused. */
	assert_int_equal(
	        auth_token_check(A,
	                         forge(corp_ec, "ES384",
	                               head("ES384", ec->trustkid), ours, NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(corp_rsa, "RS256",
	                               head("RS256", rsa->kid),
	                               claims("corp2", "\"" SERVICE "\"",
	                                      NOW + 300, NULL),
	                               NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	/* An RSA key does not do ES256, an ES384 key not ES256. */
	assert_int_equal(
	        auth_token_check(A,
	                         forge(corp_rsa, "RS256",
	                               head("ES256", rsa->kid), c, NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(corp_ec, "ES384", head("ES256", ec->kid),
	                               c, NULL),
	                         NOW, R, "a/b", AUTH_PULL),
	        RC_UNAUTHORIZED);
}

static void
test_tampered(void **state)
{
	struct auth_scope sc = {.type = R, .name = "a", .actions = AUTH_PULL};
	char *tok = NULL, *bad, *d2;
	size_t len;

	assert_int_equal(auth_token_sign(A, "ci", &sc, 1, NOW, &tok), 0);
	len = strlen(tok);
	bad = strdup(tok);
	d2 = strrchr(bad, '.');

	/* One flipped character in the signature, then in the claims. */
	d2[20] = d2[20] == 'A' ? 'B' : 'A';
	assert_int_equal(auth_token_check(A, bad, NOW, R, "a", AUTH_PULL),
	                 RC_UNAUTHORIZED);
	strcpy(bad, tok);
	bad[strchr(bad, '.') - bad + 10] ^= 1;
	assert_int_equal(auth_token_check(A, bad, NOW, R, "a", AUTH_PULL),
	                 RC_UNAUTHORIZED);
	/* The claims of one token with the signature of another. */
	{
		char *other = NULL, *mix;

		sc.actions = AUTH_ALL;
		assert_int_equal(auth_token_sign(A, "ci", &sc, 1, NOW, &other),
		                 0);
		mix = malloc(strlen(other) + 100);
		memcpy(mix, other, (size_t)(strrchr(other, '.') - other));
		strcpy(mix + (strrchr(other, '.') - other), strrchr(tok, '.'));
		assert_int_equal(
		        auth_token_check(A, mix, NOW, R, "a", AUTH_PULL),
		        RC_UNAUTHORIZED);
		free(mix);
		free(other);
	}
	/* Truncated: by a few characters, to two parts, to one. */
	strcpy(bad, tok);
	bad[len - 3] = '\0';
	assert_int_equal(auth_token_check(A, bad, NOW, R, "a", AUTH_PULL),
	                 RC_UNAUTHORIZED);
	strcpy(bad, tok);
	*strrchr(bad, '.') = '\0';
	assert_int_equal(auth_token_check(A, bad, NOW, R, "a", AUTH_PULL),
	                 RC_UNAUTHORIZED);
	strcpy(bad, tok);
	bad[len - 86] = '\0'; /* ends with the dot */
	assert_int_equal(auth_token_check(A, bad, NOW, R, "a", AUTH_PULL),
	                 RC_UNAUTHORIZED);
	*strchr(bad, '.') = '\0';
	assert_int_equal(auth_token_check(A, bad, NOW, R, "a", AUTH_PULL),
	                 RC_UNAUTHORIZED);
	/* Padding added, a fourth part. */
	snprintf(bad, len + 1, "%s", tok);
	{
		char *pad = malloc(len + 8);

		snprintf(pad, len + 8, "%s==", tok);
		assert_int_equal(
		        auth_token_check(A, pad, NOW, R, "a", AUTH_PULL),
		        RC_UNAUTHORIZED);
		snprintf(pad, len + 8, "%s.e30", tok);
		assert_int_equal(
		        auth_token_check(A, pad, NOW, R, "a", AUTH_PULL),
		        RC_UNAUTHORIZED);
		free(pad);
	}
	/* The original is still good. */
	assert_int_equal(auth_token_check(A, tok, NOW, R, "a", AUTH_PULL), 0);
	free(bad);
	free(tok);
}

static void
test_garbage(void **state)
{
	static const char *junk[] = {
	        "",
	        ".",
	        "..",
	        "...",
	        "a.b",
	        "a.b.c",
	        "a.b.c.d",
	        "e30.e30.e30",
	        "e30.e30.",
	        "W10.e30.AAAA",             /* header [] */
	        "bnVsbA.e30.AAAA",          /* header null */
	        "eyJhbGciOiJFUzI1NiJ9.e30", /* {"alg":"ES256"} */
	        "!!!.???.***",
	        "Bearer abc",
	};
	char *big = malloc(20000);

	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		assert_int_equal(auth_token_check(A, junk[i], NOW, R, "a", 0),
		                 RC_UNAUTHORIZED);
	assert_int_equal(auth_token_check(A, NULL, NOW, R, "a", 0),
	                 RC_UNAUTHORIZED);
	memset(big, 'A', 19999);
	big[19999] = '\0';
	big[100] = '.';
	big[200] = '.';
	assert_int_equal(auth_token_check(A, big, NOW, R, "a", 0),
	                 RC_UNAUTHORIZED);
	free(big);
}

static void
test_access_entries(void **state)
{
	EVP_PKEY *k = A->signing.pkey;
	const char *h = head("ES256", signkid());
	char c[8192];
	size_t off;

	/* Catalog only with "*"; unknown types and bad entries grant
	 * nothing; actions merge across entries of one repository. */
	snprintf(c, sizeof(c),
	         "{\"iss\":\"" ISSUER "\",\"aud\":\"" SERVICE "\",\"exp\":%ld,"
	         "\"access\":["
	         "{\"type\":\"registry\",\"name\":\"catalog\",\"actions\":"
	         "[\"pull\"]},"
	         "{\"type\":\"repo\",\"name\":\"x\",\"actions\":[\"*\"]},"
	         "{\"type\":\"repository\",\"name\":\"y\",\"actions\":\"*\"},"
	         "{\"type\":\"repository\",\"name\":\"z\",\"actions\":["
	         "\"pull\"]},"
	         "{\"type\":\"repository\",\"name\":\"z\",\"actions\":"
	         "[\"delete\",\"fly\",1]}"
	         "]}",
	         NOW + 300);
	assert_int_equal(auth_token_check(A, forge(k, "ES256", h, c, NULL), NOW,
	                                  C, NULL, AUTH_ALL),
	                 RC_DENIED);
	assert_int_equal(auth_token_check(A, forge(k, "ES256", h, c, NULL), NOW,
	                                  R, "x", AUTH_PULL),
	                 RC_DENIED);
	assert_int_equal(auth_token_check(A, forge(k, "ES256", h, c, NULL), NOW,
	                                  R, "y", AUTH_PULL),
	                 RC_DENIED);
	assert_int_equal(auth_token_check(A, forge(k, "ES256", h, c, NULL), NOW,
	                                  R, "z", AUTH_PULL | AUTH_DELETE),
	                 0);
	assert_int_equal(auth_token_check(A, forge(k, "ES256", h, c, NULL), NOW,
	                                  R, "z", AUTH_PUSH),
	                 RC_DENIED);

	/* Too many access entries: the token is refused. */
	off = (size_t)snprintf(c, sizeof(c),
	                       "{\"iss\":\"" ISSUER "\",\"aud\":\"" SERVICE
	                       "\",\"exp\":%ld,\"access\":[",
	                       NOW + 300);
	for (int i = 0; i < 70; i++)
		off += (size_t)snprintf(c + off, sizeof(c) - off,
		                        "%s{\"type\":\"repository\",\"name\":"
		                        "\"r%d\",\"actions\":[\"pull\"]}",
		                        i ? "," : "", i);
	snprintf(c + off, sizeof(c) - off, "]}");
	assert_int_equal(auth_token_check(A, forge(k, "ES256", h, c, NULL), NOW,
	                                  R, "r1", AUTH_PULL),
	                 RC_UNAUTHORIZED);
}

static void
test_gc_scope(void **state)
{
	struct auth_scope gc = {.type = G, .name = "", .actions = AUTH_ALL};
	struct auth_scope cat = {.type = C, .name = "", .actions = AUTH_ALL};
	EVP_PKEY *k = A->signing.pkey;
	const char *h = head("ES256", signkid());
	char *tok = NULL, *d1, *d2, c[1024];
	unsigned char buf[2048];
	size_t n;

	/* Signed: the access claim names registry gc with "*". */
	assert_int_equal(auth_token_sign(A, "gc", &gc, 1, NOW, &tok), 0);
	d1 = strchr(tok, '.');
	d2 = strchr(d1 + 1, '.');
	n = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), buf);
	buf[n] = '\0';
	assert_non_null(strstr((char *)buf,
	                       "\"access\":[{\"type\":\"registry\",\"name\":"
	                       "\"gc\",\"actions\":[\"*\"]}]"));
	assert_int_equal(auth_token_check(A, tok, NOW, G, NULL, AUTH_ALL), 0);
	assert_int_equal(auth_token_check(A, tok, NOW, G, "", AUTH_ALL), 0);
	/* gc is not the catalog, nor any repository. */
	assert_int_equal(auth_token_check(A, tok, NOW, C, NULL, AUTH_ALL),
	                 RC_DENIED);
	assert_int_equal(auth_token_check(A, tok, NOW, R, "gc", AUTH_PULL),
	                 RC_DENIED);
	free(tok);

	/* A catalog token does not hold gc. */
	assert_int_equal(auth_token_sign(A, "ci", &cat, 1, NOW, &tok), 0);
	assert_int_equal(auth_token_check(A, tok, NOW, C, NULL, AUTH_ALL), 0);
	assert_int_equal(auth_token_check(A, tok, NOW, G, NULL, AUTH_ALL),
	                 RC_DENIED);
	free(tok);

	/* Built by hand: gc only with "*"; a repository named gc, or a
	 * registry resource of another name, is not gc. */
	snprintf(c, sizeof(c),
	         "{\"iss\":\"" ISSUER "\",\"aud\":\"" SERVICE "\",\"exp\":%ld,"
	         "\"access\":["
	         "{\"type\":\"registry\",\"name\":\"gc\",\"actions\":"
	         "[\"pull\"]},"
	         "{\"type\":\"repository\",\"name\":\"gc\",\"actions\":"
	         "[\"*\"]},"
	         "{\"type\":\"registry\",\"name\":\"gcx\",\"actions\":[\"*\"]}"
	         "]}",
	         NOW + 300);
	assert_int_equal(auth_token_check(A, forge(k, "ES256", h, c, NULL), NOW,
	                                  G, NULL, AUTH_ALL),
	                 RC_DENIED);
	assert_int_equal(auth_token_check(A, forge(k, "ES256", h, c, NULL), NOW,
	                                  R, "gc", AUTH_ALL),
	                 0);
	snprintf(c, sizeof(c),
	         "{\"iss\":\"corp\",\"aud\":\"" SERVICE "\",\"exp\":%ld,"
	         "\"access\":[{\"type\":\"registry\",\"name\":\"gc\","
	         "\"actions\":[\"*\"]}]}",
	         NOW + 300);
	/* Another trusted issuer's token may grant gc too. */
	assert_int_equal(
	        auth_token_check(A,
	                         forge(corp_ec, "ES384",
	                               head("ES384", key_of(corp_ec)->kid), c,
	                               NULL),
	                         NOW, G, NULL, AUTH_ALL),
	        0);
	assert_int_equal(
	        auth_token_check(A,
	                         forge(corp_ec, "ES384",
	                               head("ES384", key_of(corp_ec)->kid), c,
	                               NULL),
	                         NOW, C, NULL, AUTH_ALL),
	        RC_DENIED);
}

static void
test_cache(void **state)
{
	struct auth_scope sc[2] = {
	        {.type = R, .name = "c/one", .actions = AUTH_PULL},
	        {.type = R, .name = "c/two", .actions = AUTH_ALL},
	};
	char *tok[40];

	/* Many tokens, each checked several times in a mixed order: the
	 * answers never change, whether they come from a verification or
	 * from the cache. */
	for (int i = 0; i < 40; i++)
		assert_int_equal(
		        auth_token_sign(A, "ci", sc, 2, NOW + i, &tok[i]), 0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 40; i++) {
			assert_int_equal(auth_token_check(A, tok[i], NOW + 50,
			                                  R, "c/one",
			                                  AUTH_PULL),
			                 0);
			assert_int_equal(auth_token_check(A, tok[i], NOW + 50,
			                                  R, "c/one",
			                                  AUTH_PUSH),
			                 RC_DENIED);
			assert_int_equal(auth_token_check(A, tok[i], NOW + 50,
			                                  R, "c/two", AUTH_ALL),
			                 0);
			assert_int_equal(auth_token_check(A, tok[i], NOW + 50,
			                                  R, "c/three",
			                                  AUTH_PULL),
			                 RC_DENIED);
			assert_int_equal(auth_token_check(A, tok[i], NOW + 50,
			                                  C, NULL, AUTH_ALL),
			                 RC_DENIED);
		}
	}
	/* A cached token expires like any other. */
	for (int i = 0; i < 40; i++) {
		assert_int_equal(
		        auth_token_check(A, tok[i],
		                         NOW + i + AUTH_TOKEN_TTL + AUTH_LEEWAY,
		                         R, "c/one", AUTH_PULL),
		        RC_UNAUTHORIZED);
		assert_int_equal(auth_token_check(A, tok[i], NOW + 50, R,
		                                  "c/one", AUTH_PULL),
		                 0);
		free(tok[i]);
	}
}

/* The user of a token for the listings: ours carry it, another issuer's
 * (whose subjects are not our users) and anonymous ones do not. */
static void
test_token_user(void **state)
{
	const struct auth_key *ec = key_of(corp_ec);
	char user[64], c[1024], *tok = NULL;

	(void)state;
	assert_int_equal(auth_token_sign(A, "ci", NULL, 0, NOW, &tok), 0);
	/* twice: verified, then from the cache */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(
		        auth_token_user(A, tok, NOW, user, sizeof(user)), 0);
		assert_string_equal(user, "ci");
	}
	assert_int_equal(
	        auth_token_user(A, tok, NOW + 100000, user, sizeof(user)),
	        RC_UNAUTHORIZED);
	free(tok);
	assert_int_equal(auth_token_sign(A, NULL, NULL, 0, NOW, &tok), 0);
	assert_int_equal(auth_token_user(A, tok, NOW, user, sizeof(user)), 0);
	assert_string_equal(user, "");
	free(tok);
	/* corp's token says sub "ci" too: not our user ci */
	strcpy(c, claims("corp", "\"" SERVICE "\"", NOW + 300, NULL));
	assert_int_equal(auth_token_user(A,
	                                 forge(corp_ec, "ES384",
	                                       head("ES384", ec->kid), c, NULL),
	                                 NOW, user, sizeof(user)),
	                 0);
	assert_string_equal(user, "");
	assert_int_equal(
	        auth_token_user(A, "not.a.token", NOW, user, sizeof(user)),
	        RC_UNAUTHORIZED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_denied),
	        cmocka_unit_test(test_times),
	        cmocka_unit_test(test_algorithms),
	        cmocka_unit_test(test_claims),
	        cmocka_unit_test(test_trusted_issuer),
	        cmocka_unit_test(test_tampered),
	        cmocka_unit_test(test_garbage),
	        cmocka_unit_test(test_access_entries),
	        cmocka_unit_test(test_gc_scope),
	        cmocka_unit_test(test_cache),
	        cmocka_unit_test(test_token_user),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
