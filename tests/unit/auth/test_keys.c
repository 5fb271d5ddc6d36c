/* Unit tests for auth/keys.c: loading PEM keys, the RFC 7638 thumbprint
 * (checked against the RFC's own example and against an independent
 * computation), the libtrust key ID, and key generation. Keys are made in
 * C at test time, in a temp dir. */
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
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "auth/auth_internal.h"
#include "common/rc.h"
#include "test_auth_util.h"

/* RFC 7638 section 3.1: an RSA public key and its JWK thumbprint. */
static const char rfc_n[] =
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1R"
        "K7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9"
        "yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZg"
        "nYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6We"
        "Zu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDK"
        "gw";
static const char rfc_kid[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

static int
setup(void **state)
{
	strcpy(dir, "/tmp/berth-test-keys-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static size_t
unb64url(const char *in, unsigned char *out)
{
	static const char t[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
	        "wxyz0123456789-_";
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (; *in; in++) {
		acc = acc << 6 | (uint32_t)(strchr(t, *in) - t);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return o;
}

static void
write_pub(EVP_PKEY *k, const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_PUBKEY(f, k), 1);
	assert_int_equal(fclose(f), 0);
}

static void
write_priv(EVP_PKEY *k, const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL),
	                 1);
	assert_int_equal(fclose(f), 0);
}

static void
test_rfc7638_example(void **state)
{
	unsigned char n[512], e[] = {1, 0, 1};
	size_t nlen = unb64url(rfc_n, n);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL);
	BIGNUM *be = BN_bin2bn(e, 3, NULL);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM *params;
	struct auth_key k;
	const char *why = NULL;

	assert_int_equal(nlen, 256);
	assert_true(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn));
	assert_true(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be));
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_non_null(params);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(
	        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
	write_pub(pkey, tmp("rfc.pub.pem"));

	assert_int_equal(auth_key_load(tmp("rfc.pub.pem"), 0, &k, &why), 0);
	assert_string_equal(k.kid, rfc_kid);
	assert_int_equal(k.rsa, 1);
	assert_int_equal(k.curve_bits, 0);
	assert_null(k.issuer);
	/* A public key is not a signing key. */
	assert_int_equal(auth_key_load(tmp("rfc.pub.pem"), 1, &k, &why),
	                 RC_BAD_REQUEST);
	assert_non_null(why);
	auth_key_clear(&k);
	auth_key_clear(&k); /* cleared keys may be cleared again */

	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
}

/* The thumbprint of an EC key, computed from the encoded public point
 * (0x04 || x || y) rather than from the coordinates as numbers. */
static void
expected_ec_kid(EVP_PKEY *pkey, const char *crv, size_t coord, char *out)
{
	unsigned char pt[1 + 2 * 66], md[32];
	char x[128], y[128], json[512];
	size_t len = 0;

	assert_int_equal(EVP_PKEY_get_octet_string_param(
	                         pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
	                         sizeof(pt), &len),
	                 1);
	assert_int_equal(len, 1 + 2 * coord);
	assert_int_equal(pt[0], 4);
	b64url(pt + 1, coord, x);
	b64url(pt + 1 + coord, coord, y);
	snprintf(json, sizeof(json),
	         "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
	         crv, x, y);
	SHA256((unsigned char *)json, strlen(json), md);
	b64url(md, sizeof(md), out);
}

/* The libtrust key ID computed here with a plain 5-bytes-to-8-characters
 * base32 loop. */
static void
expected_trustkid(EVP_PKEY *pkey, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	unsigned char *der = NULL, md[32];
	int len = i2d_PUBKEY(pkey, &der);
	char b32[49];
	size_t o = 0;

	assert_true(len > 0);
	SHA256(der, (size_t)len, md);
	OPENSSL_free(der);
	for (size_t i = 0; i < 30; i += 5) {
		uint64_t v = 0;

		for (size_t j = 0; j < 5; j++)
			v = v << 8 | md[i + j];
		for (int j = 7; j >= 0; j--)
			b32[o++] = a[(v >> (5 * j)) & 31];
	}
	b32[48] = '\0';
	o = 0;
	for (size_t i = 0; i < 48; i++) {
		if (i > 0 && i % 4 == 0)
			out[o++] = ':';
		out[o++] = b32[i];
	}
	out[o] = '\0';
}

static void
check_ec(const char *curve, const char *crv, size_t coord, int bits)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
	char want[64], want_trust[64], file[64];
	struct auth_key k, pub;
	const char *why = NULL;

	assert_non_null(pkey);
	snprintf(file, sizeof(file), "ec-%d.pem", bits);
	write_priv(pkey, tmp(file));
	expected_ec_kid(pkey, crv, coord, want);
	expected_trustkid(pkey, want_trust);

	assert_int_equal(auth_key_load(tmp(file), 1, &k, &why), 0);
	assert_string_equal(k.kid, want);
	assert_string_equal(k.trustkid, want_trust);
	assert_int_equal(k.curve_bits, bits);
	assert_int_equal(k.rsa, 0);

	/* The public half: same IDs, no private part. */
	assert_int_equal(auth_key_public(&k, &pub), 0);
	assert_string_equal(pub.kid, want);
	assert_string_equal(pub.trustkid, want_trust);
	assert_int_equal(pub.curve_bits, bits);
	{
		BIGNUM *priv = NULL;

		assert_int_equal(EVP_PKEY_get_bn_param(pub.pkey,
		                                       OSSL_PKEY_PARAM_PRIV_KEY,
		                                       &priv),
		                 0);
		BN_free(priv);
	}
	auth_key_clear(&pub);
	auth_key_clear(&k);

	/* The same key from a public PEM file has the same IDs. */
	snprintf(file, sizeof(file), "ec-%d.pub.pem", bits);
	write_pub(pkey, tmp(file));
	assert_int_equal(auth_key_load(tmp(file), 0, &k, &why), 0);
	assert_string_equal(k.kid, want);
	assert_string_equal(k.trustkid, want_trust);
	auth_key_clear(&k);
	EVP_PKEY_free(pkey);
}

static void
test_ec_thumbprints(void **state)
{
	check_ec("P-256", "P-256", 32, 256);
	check_ec("P-384", "P-384", 48, 384);
	check_ec("P-521", "P-521", 66, 521);
}

static void
test_trustkid_shape(void **state)
{
	struct auth_key k;
	const char *why = NULL;

	assert_int_equal(auth_keygen(tmp("shape.pem")), 0);
	assert_int_equal(auth_key_load(tmp("shape.pem"), 1, &k, &why), 0);
	assert_int_equal(strlen(k.trustkid), 59);
	for (size_t i = 0; i < 59; i++) {
		char ch = k.trustkid[i];

		if (i % 5 == 4)
			assert_int_equal(ch, ':');
		else
			assert_true((ch >= 'A' && ch <= 'Z') ||
			            (ch >= '2' && ch <= '7'));
	}
	/* The thumbprint: 43 base64url characters, no padding. */
	assert_int_equal(strlen(k.kid), 43);
	assert_int_equal(strspn(k.kid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk"
	                               "lmnopqrstuvwxyz0123456789-_"),
	                 43);
	auth_key_clear(&k);
}

static void
test_keygen(void **state)
{
	struct auth_key k1, k2;
	const char *why = NULL;
	struct stat st;

	assert_int_equal(auth_keygen(tmp("gen.pem")), 0);
	assert_int_equal(stat(tmp("gen.pem"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(auth_key_load(tmp("gen.pem"), 1, &k1, &why), 0);
	assert_int_equal(k1.curve_bits, 256);

	/* A second run refuses to overwrite, and the key is unchanged. */
	assert_int_equal(auth_keygen(tmp("gen.pem")), -EEXIST);
	assert_int_equal(auth_key_load(tmp("gen.pem"), 1, &k2, &why), 0);
	assert_string_equal(k1.kid, k2.kid);
	auth_key_clear(&k1);
	auth_key_clear(&k2);

	/* Two keys differ. */
	assert_int_equal(auth_keygen(tmp("gen2.pem")), 0);
	assert_int_equal(auth_key_load(tmp("gen.pem"), 1, &k1, &why), 0);
	assert_int_equal(auth_key_load(tmp("gen2.pem"), 1, &k2, &why), 0);
	assert_string_not_equal(k1.kid, k2.kid);
	auth_key_clear(&k1);
	auth_key_clear(&k2);

	/* No such directory: an errno, and nothing left behind. */
	assert_int_equal(auth_keygen(tmp("none/key.pem")), -ENOENT);
}

static void
test_rsa(void **state)
{
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *big = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	struct auth_key k;
	const char *why = NULL;

	assert_non_null(small);
	assert_non_null(big);
	write_priv(small, tmp("rsa1024.pem"));
	write_pub(small, tmp("rsa1024.pub.pem"));
	write_priv(big, tmp("rsa2048.pem"));

	assert_int_equal(auth_key_load(tmp("rsa1024.pem"), 1, &k, &why),
	                 RC_BAD_REQUEST);
	assert_non_null(strstr(why, "2048"));
	why = NULL;
	assert_int_equal(auth_key_load(tmp("rsa1024.pub.pem"), 0, &k, &why),
	                 RC_BAD_REQUEST);
	assert_non_null(why);

	assert_int_equal(auth_key_load(tmp("rsa2048.pem"), 1, &k, &why), 0);
	assert_int_equal(k.rsa, 1);
	assert_int_equal(strlen(k.kid), 43);
	assert_int_equal(strlen(k.trustkid), 59);
	auth_key_clear(&k);
	EVP_PKEY_free(small);
	EVP_PKEY_free(big);
}

static void
test_refused(void **state)
{
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	struct auth_key k;
	const char *why = NULL;
	FILE *f;

	assert_non_null(ed);
	assert_non_null(k1);
	write_priv(ed, tmp("ed.pem"));
	write_priv(k1, tmp("k1.pem"));
	assert_int_equal(auth_key_load(tmp("ed.pem"), 1, &k, &why),
	                 RC_BAD_REQUEST);
	assert_non_null(why);
	why = NULL;
	assert_int_equal(auth_key_load(tmp("k1.pem"), 1, &k, &why),
	                 RC_BAD_REQUEST);
	assert_non_null(why);

	f = fopen(tmp("junk.pem"), "w");
	assert_non_null(f);
	fputs("-----BEGIN PRIVATE KEY-----\nnot base64\n"
	      "-----END PRIVATE KEY-----\n",
	      f);
	fclose(f);
	assert_int_equal(auth_key_load(tmp("junk.pem"), 0, &k, &why),
	                 RC_BAD_REQUEST);
	assert_int_equal(auth_key_load(tmp("missing.pem"), 0, &k, &why),
	                 -ENOENT);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(k1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rfc7638_example),
	        cmocka_unit_test(test_ec_thumbprints),
	        cmocka_unit_test(test_trustkid_shape),
	        cmocka_unit_test(test_keygen),
	        cmocka_unit_test(test_rsa),
	        cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
