/* Unit tests for auth/password.c: the PBKDF2 hash encoding, verification,
 * and sign-in with its cache of verified credentials.
 *
 * The configuration is built by hand (struct auth from auth_internal.h),
 * so these tests do not depend on the users-file loader. The reference
 * encodings below were computed outside berth, with
 * `openssl kdf -keylen 32 -kdfopt digest:SHA256 ... PBKDF2` and base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "auth/auth_internal.h"
#include "common/rc.h"

/* "correct horse battery staple", salt "berth-test-salt!", 210000 rounds. */
#define KNOWN_PW   "correct horse battery staple"
#define KNOWN_SALT "YmVydGgtdGVzdC1zYWx0IQ"
#define KNOWN_HASH "bcTTfJfieJtqbZbHX/gRbNrFPxb3OQtwmddFndDxGdI"
#define KNOWN      "$pbkdf2-sha256$i=210000$" KNOWN_SALT "$" KNOWN_HASH

#define T0 1700000000 /* a fixed "now" for sign-in tests */

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Standard base64 of n bytes without '=' padding, built with OpenSSL's
 * encoder rather than password.c's. */
static void
b64_nopad(const unsigned char *in, size_t n, char *out)
{
	int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);

	while (len > 0 && out[len - 1] == '=')
		out[--len] = '\0';
}

/* An encoding in berth's format, made directly from PKCS5_PBKDF2_HMAC. */
static void
encoding_build(const char *pw, const unsigned char *salt, size_t saltlen,
               int iter, char *out, size_t outlen)
{
	unsigned char dk[32];
	char s64[128], h64[64];
	int n;

	assert_int_equal(PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt,
	                                   (int)saltlen, iter, EVP_sha256(),
	                                   sizeof(dk), dk),
	                 1);
	b64_nopad(salt, saltlen, s64);
	b64_nopad(dk, sizeof(dk), h64);
	n = snprintf(out, outlen, "$pbkdf2-sha256$i=%d$%s$%s", iter, s64, h64);
	assert_true(n > 0 && (size_t)n < outlen);
}

static int
in_alphabet(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxy"
		           "z"
		           "0123456789+/",
		           s[i]) == NULL ||
		    s[i] == '\0')
			return 0;
	return 1;
}

/* ---- the hash ---- */

static void
test_vector_pbkdf2(void **state)
{
	/* The usual PBKDF2-HMAC-SHA256 vectors ("password"/"salt", 1 and
	 * 4096 rounds) and RFC 7914 section 11 ("passwd"/"salt", 1 round,
	 * 64 bytes): the primitive is the one we think it is. */
	static const unsigned char one[32] = {
	        0x12, 0x0f, 0xb6, 0xcf, 0xfc, 0xf8, 0xb3, 0x2c,
	        0x43, 0xe7, 0x22, 0x52, 0x56, 0xc4, 0xf8, 0x37,
	        0xa8, 0x65, 0x48, 0xc9, 0x2c, 0xcc, 0x35, 0x48,
	        0x08, 0x05, 0x98, 0x7c, 0xb7, 0x0b, 0xe1, 0x7b};
	static const unsigned char many[32] = {
	        0xc5, 0xe4, 0x78, 0xd5, 0x92, 0x88, 0xc8, 0x41,
	        0xaa, 0x53, 0x0d, 0xb6, 0x84, 0x5c, 0x4c, 0x8d,
	        0x96, 0x28, 0x93, 0xa0, 0x01, 0xce, 0x4e, 0x11,
	        0xa4, 0x96, 0x38, 0x73, 0xaa, 0x98, 0x13, 0x4a};
	static const unsigned char rfc7914[64] = {
	        0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16,
	        0x91, 0xc2, 0x25, 0x44, 0xb6, 0x05, 0xf9, 0x41, 0x85, 0x21,
	        0x6d, 0xde, 0x04, 0x65, 0xe6, 0x8b, 0x9d, 0x57, 0xc2, 0x0d,
	        0xac, 0xbc, 0x49, 0xca, 0x9c, 0xcc, 0xf1, 0x79, 0xb6, 0x45,
	        0x99, 0x16, 0x64, 0xb3, 0x9d, 0x77, 0xef, 0x31, 0x7c, 0x71,
	        0xb8, 0x45, 0xb1, 0xe3, 0x0b, 0xd5, 0x09, 0x11, 0x20, 0x41,
	        0xd3, 0xa1, 0x97, 0x83};
	unsigned char dk[64];

	assert_int_equal(PKCS5_PBKDF2_HMAC("password", 8,
	                                   (const unsigned char *)"salt", 4, 1,
	                                   EVP_sha256(), 32, dk),
	                 1);
	assert_memory_equal(dk, one, 32);
	assert_int_equal(PKCS5_PBKDF2_HMAC("password", 8,
	                                   (const unsigned char *)"salt", 4,
	                                   4096, EVP_sha256(), 32, dk),
	                 1);
	assert_memory_equal(dk, many, 32);
	assert_int_equal(PKCS5_PBKDF2_HMAC("passwd", 6,
	                                   (const unsigned char *)"salt", 4, 1,
	                                   EVP_sha256(), 64, dk),
	                 1);
	assert_memory_equal(dk, rfc7914, 64);
}

static void
test_known_encoding(void **state)
{
	const char *why = "unset";

	/* Computed by the openssl command line, not by berth. */
	assert_int_equal(auth_password_verify(KNOWN_PW, KNOWN), RC_OK);
	assert_int_equal(
	        auth_password_verify("correct horse battery stapl", KNOWN),
	        RC_UNAUTHORIZED);
	assert_int_equal(auth_password_encoding_check(KNOWN, &why), RC_OK);
	assert_string_equal(why, "unset"); /* untouched on success */
}

static void
test_built_encoding(void **state)
{
	static const unsigned char salt[16] = "0123456789abcdef";
	static const unsigned char salt64[64] = "a longer salt of sixty-four "
	                                        "bytes, which is the most we "
	                                        "read";
	char enc[AUTH_HASH_BUF];

	encoding_build("s3cret", salt, sizeof(salt), AUTH_PBKDF2_MIN, enc,
	               sizeof(enc));
	assert_int_equal(auth_password_verify("s3cret", enc), RC_OK);
	assert_int_equal(auth_password_verify("s3cre", enc), RC_UNAUTHORIZED);
	assert_int_equal(auth_password_verify("s3cret ", enc), RC_UNAUTHORIZED);
	assert_int_equal(auth_password_verify("", enc), RC_UNAUTHORIZED);

	encoding_build("s3cret", salt64, sizeof(salt64), AUTH_PBKDF2_MIN, enc,
	               sizeof(enc));
	assert_int_equal(auth_password_verify("s3cret", enc), RC_OK);
}

static void
test_hash_format(void **state)
{
	char enc[AUTH_HASH_BUF];
	const char *p, *salt, *hash;
	char head[64];

	assert_int_equal(auth_password_hash("hunter2", enc, sizeof(enc)),
	                 RC_OK);
	snprintf(head, sizeof(head), "$pbkdf2-sha256$i=%d$", AUTH_PBKDF2_ITER);
	assert_int_equal(strncmp(enc, head, strlen(head)), 0);
	salt = enc + strlen(head);
	p = strchr(salt, '$');
	assert_non_null(p);
	assert_int_equal(p - salt, 22); /* 16 bytes, unpadded */
	assert_true(in_alphabet(salt, 22));
	hash = p + 1;
	assert_int_equal(strlen(hash), 43); /* 32 bytes, unpadded */
	assert_true(in_alphabet(hash, 43));
	assert_int_equal(strlen(enc), strlen(head) + 22 + 1 + 43);

	assert_int_equal(auth_password_encoding_check(enc, NULL), RC_OK);
	assert_int_equal(auth_password_verify("hunter2", enc), RC_OK);
	assert_int_equal(auth_password_verify("hunter3", enc), RC_UNAUTHORIZED);
	assert_int_equal(auth_password_verify("Hunter2", enc), RC_UNAUTHORIZED);
}

static void
test_hash_unicode_and_long(void **state)
{
	char enc[AUTH_HASH_BUF], pw[2048];

	assert_int_equal(auth_password_hash("pässwörd ✓", enc, sizeof(enc)),
	                 RC_OK);
	assert_int_equal(auth_password_verify("pässwörd ✓", enc), RC_OK);
	assert_int_equal(auth_password_verify("passwurd ✓", enc),
	                 RC_UNAUTHORIZED);

	memset(pw, 'x', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	assert_int_equal(auth_password_hash(pw, enc, sizeof(enc)), RC_OK);
	assert_int_equal(auth_password_verify(pw, enc), RC_OK);
	pw[1000] = 'y';
	assert_int_equal(auth_password_verify(pw, enc), RC_UNAUTHORIZED);
}

static void
test_hash_buffer_too_small(void **state)
{
	char enc[AUTH_HASH_BUF];
	size_t need;

	assert_int_equal(auth_password_hash("pw", enc, sizeof(enc)), RC_OK);
	need = strlen(enc) + 1;
	memset(enc, '#', sizeof(enc));
	assert_int_equal(auth_password_hash("pw", enc, need - 1), RC_TOO_LARGE);
	assert_int_equal(enc[0], '#'); /* nothing written on failure */
	assert_int_equal(auth_password_hash("pw", enc, 0), RC_TOO_LARGE);
	assert_int_equal(auth_password_hash("pw", enc, need), RC_OK);
	assert_int_equal(strlen(enc) + 1, need);
}

static void
test_salt_differs(void **state)
{
	char a[AUTH_HASH_BUF], b[AUTH_HASH_BUF];

	assert_int_equal(auth_password_hash("same", a, sizeof(a)), RC_OK);
	assert_int_equal(auth_password_hash("same", b, sizeof(b)), RC_OK);
	assert_string_not_equal(a, b);
	/* Different salts, so different hashes too. */
	assert_string_not_equal(strrchr(a, '$'), strrchr(b, '$'));
	assert_int_equal(auth_password_verify("same", a), RC_OK);
	assert_int_equal(auth_password_verify("same", b), RC_OK);
}

/* Replaces the character at off in KNOWN with c. */
static void
tamper(char *out, size_t off, char c)
{
	strcpy(out, KNOWN);
	assert_true(out[off] != c);
	out[off] = c;
}

static void
test_tampered(void **state)
{
	const size_t salt = strlen("$pbkdf2-sha256$i=210000$");
	const size_t hash = salt + strlen(KNOWN_SALT) + 1;
	char enc[sizeof(KNOWN)];

	tamper(enc, salt, 'Z'); /* first salt character */
	assert_int_equal(auth_password_verify(KNOWN_PW, enc), RC_UNAUTHORIZED);
	tamper(enc, salt + 10, 'A');
	assert_int_equal(auth_password_verify(KNOWN_PW, enc), RC_UNAUTHORIZED);
	tamper(enc, hash, 'c'); /* first hash character */
	assert_int_equal(auth_password_verify(KNOWN_PW, enc), RC_UNAUTHORIZED);
	tamper(enc, hash + 41, 'x');
	assert_int_equal(auth_password_verify(KNOWN_PW, enc), RC_UNAUTHORIZED);
	/* One iteration more: a valid encoding that no longer matches. */
	tamper(enc, strlen("$pbkdf2-sha256$i=21000"), '1');
	assert_int_equal(auth_password_encoding_check(enc, NULL), RC_OK);
	assert_int_equal(auth_password_verify(KNOWN_PW, enc), RC_UNAUTHORIZED);
	/* Last hash character with its two unused bits set: not canonical. */
	tamper(enc, hash + 42, 'J');
	assert_int_equal(auth_password_verify(KNOWN_PW, enc), RC_BAD_REQUEST);
}

static void
test_iterations_bounds(void **state)
{
	static const unsigned char salt[16] = "fedcba9876543210";
	char enc[AUTH_HASH_BUF];
	const char *why = NULL;

	/* A correct hash, but with one iteration fewer than allowed. */
	encoding_build("pw", salt, sizeof(salt), AUTH_PBKDF2_MIN - 1, enc,
	               sizeof(enc));
	assert_int_equal(auth_password_verify("pw", enc), RC_BAD_REQUEST);
	assert_int_equal(auth_password_encoding_check(enc, &why),
	                 RC_BAD_REQUEST);
	assert_non_null(why);
	assert_non_null(strstr(why, "iterations"));

	encoding_build("pw", salt, sizeof(salt), 1, enc, sizeof(enc));
	assert_int_equal(auth_password_verify("pw", enc), RC_BAD_REQUEST);

	/* Absurdly many: refused before any work is done. */
	why = NULL;
	assert_int_equal(auth_password_encoding_check(
	                         "$pbkdf2-sha256$i=10000001$" KNOWN_SALT
	                         "$" KNOWN_HASH,
	                         &why),
	                 RC_BAD_REQUEST);
	assert_non_null(why);
	assert_int_equal(
	        auth_password_verify(KNOWN_PW,
	                             "$pbkdf2-sha256$i=4000000000$" KNOWN_SALT
	                             "$" KNOWN_HASH),
	        RC_BAD_REQUEST);
	assert_int_equal(auth_password_encoding_check(
	                         "$pbkdf2-sha256$i=10000000$" KNOWN_SALT
	                         "$" KNOWN_HASH,
	                         NULL),
	                 RC_OK);
}

static void
test_garbage(void **state)
{
	static const char *bad[] = {
	        NULL,
	        "",
	        "$",
	        "$pbkdf2-sha256$",
	        "$pbkdf2-sha256$i=",
	        "$pbkdf2-sha256$i=210000",
	        "$pbkdf2-sha256$i=210000$",
	        "$pbkdf2-sha256$i=210000$" KNOWN_SALT,
	        "$pbkdf2-sha256$i=210000$" KNOWN_SALT "$",
	        "$pbkdf2-sha256$i=210000$$" KNOWN_HASH,
	        "pbkdf2-sha256$i=210000$" KNOWN_SALT "$" KNOWN_HASH,
	        "$pbkdf2-sha512$i=210000$" KNOWN_SALT "$" KNOWN_HASH,
	        "$PBKDF2-SHA256$i=210000$" KNOWN_SALT "$" KNOWN_HASH,
	        "$pbkdf2-sha256$210000$" KNOWN_SALT "$" KNOWN_HASH,
	        "$pbkdf2-sha256$rounds=210000$" KNOWN_SALT "$" KNOWN_HASH,
	        "$pbkdf2-sha256$i=-210000$" KNOWN_SALT "$" KNOWN_HASH,
	        "$pbkdf2-sha256$i=+210000$" KNOWN_SALT "$" KNOWN_HASH,
	        "$pbkdf2-sha256$i=0210000$" KNOWN_SALT "$" KNOWN_HASH,
	        "$pbkdf2-sha256$i= 210000$" KNOWN_SALT "$" KNOWN_HASH,
	        "$pbkdf2-sha256$i=210000 $" KNOWN_SALT "$" KNOWN_HASH,
	        "$pbkdf2-sha256$i=0x33450$" KNOWN_SALT "$" KNOWN_HASH,
	        "$pbkdf2-sha256$i=210000,l=32$" KNOWN_SALT "$" KNOWN_HASH,
	        "$pbkdf2-sha256$i=18446744073709551617$" KNOWN_SALT
	        "$" KNOWN_HASH,
	        "$pbkdf2-sha256$i=210000$" KNOWN_SALT "==$" KNOWN_HASH,
	        "$pbkdf2-sha256$i=210000$" KNOWN_SALT "$" KNOWN_HASH "=",
	        "$pbkdf2-sha256$i=210000$" KNOWN_SALT "$" KNOWN_HASH "$",
	        "$pbkdf2-sha256$i=210000$" KNOWN_SALT "$" KNOWN_HASH "\n",
	        "$pbkdf2-sha256$i=210000$" KNOWN_SALT "$" KNOWN_HASH "A",
	        "$pbkdf2-sha256$i=210000$" KNOWN_SALT "$" KNOWN_HASH "AAAA",
	        "$pbkdf2-sha256$i=210000$" KNOWN_SALT "$"
	        "bcTTfJfieJtqbZbHX/gRbNrFPxb3OQtwmddFndDxGd",
	        /* URL-safe alphabet is not ours. */
	        "$pbkdf2-sha256$i=210000$" KNOWN_SALT "$"
	        "bcTTfJfieJtqbZbHX_gRbNrFPxb3OQtwmddFndDxGdI",
	        "$pbkdf2-sha256$i=210000$YmVydGgtdGVzdC1zYWx0I-$" KNOWN_HASH,
	        "$pbkdf2-sha256$i=210000$YmVydGgt dGVzdC1zYWx0IQ$" KNOWN_HASH,
	        /* Salt of 8 bytes (too short) and of 65 bytes (too long). */
	        "$pbkdf2-sha256$i=210000$YmVydGgtdGU$" KNOWN_HASH,
	        "$pbkdf2-sha256$i=210000$"
	        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE$" KNOWN_HASH,
	        /* Hash of 33 bytes. */
	        "$pbkdf2-sha256$i=210000$" KNOWN_SALT "$"
	        "bcTTfJfieJtqbZbHX/gRbNrFPxb3OQtwmddFndDxGdIA",
	        "$pbkdf2-sha256$i=210000$" KNOWN_SALT "$" KNOWN_HASH
	        "$" KNOWN_HASH,
	        " $pbkdf2-sha256$i=210000$" KNOWN_SALT "$" KNOWN_HASH,
	        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
	        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;
		int rc = auth_password_encoding_check(bad[i], &why);

		if (rc != RC_BAD_REQUEST)
			print_error("accepted: %s\n",
			            bad[i] ? bad[i] : "(null)");
		assert_int_equal(rc, RC_BAD_REQUEST);
		assert_non_null(why);
		assert_true(strlen(why) > 0);
		assert_int_equal(auth_password_verify(KNOWN_PW, bad[i]),
		                 RC_BAD_REQUEST);
	}
	assert_int_equal(auth_password_verify(NULL, KNOWN), RC_BAD_REQUEST);
	assert_int_equal(auth_password_hash(NULL, (char[AUTH_HASH_BUF]){0},
	                                    AUTH_HASH_BUF),
	                 RC_BAD_REQUEST);
}

/* ---- sign-in ---- */

enum { ALICE, BOB, CAROL, DAVE, NUSERS };

static const char *const names[NUSERS] = {"alice", "bob", "carol", "dave"};
static const char *const passwords[NUSERS] = {"alice-pw", "bob-pw", "carol-pw",
                                              "dave-pw"};
static char hashes[NUSERS][AUTH_HASH_BUF];
static char other_hash[AUTH_HASH_BUF]; /* of "changed-pw" */
static struct auth_user users[NUSERS];
static struct auth cfg;

/* The users' hashes use the fewest iterations allowed, to keep the test
 * short; auth_password_hash's own output is tested above. */
static int
group_setup(void **state)
{
	static const unsigned char salt[16] = "salt for testing";

	for (int i = 0; i < NUSERS; i++)
		encoding_build(passwords[i], salt, sizeof(salt),
		               AUTH_PBKDF2_MIN, hashes[i], sizeof(hashes[i]));
	encoding_build("changed-pw", salt, sizeof(salt), AUTH_PBKDF2_MIN,
	               other_hash, sizeof(other_hash));
	return 0;
}

/* A fresh configuration and cache for each test. bob expires at
 * T0 + 1000; dave expired before T0. */
static int
login_setup(void **state)
{
	memset(users, 0, sizeof(users));
	for (int i = 0; i < NUSERS; i++) {
		users[i].name = (char *)names[i];
		users[i].hash = hashes[i];
	}
	users[BOB].expires = T0 + 1000;
	users[DAVE].expires = T0 - 1;
	memset(&cfg, 0, sizeof(cfg));
	cfg.users = users;
	cfg.nusers = NUSERS;
	cfg.creds = auth_creds_new();
	return cfg.creds == NULL ? -1 : 0;
}

static int
login_teardown(void **state)
{
	auth_creds_free(cfg.creds);
	cfg.creds = NULL;
	return 0;
}

static void
test_login_ok(void **state)
{
	assert_int_equal(auth_login(&cfg, "alice", "alice-pw", T0), RC_OK);
	assert_int_equal(auth_login(&cfg, "bob", "bob-pw", T0), RC_OK);
	assert_int_equal(auth_login(&cfg, "carol", "carol-pw", T0), RC_OK);
	/* Again, from the cache. */
	assert_int_equal(auth_login(&cfg, "alice", "alice-pw", T0 + 1), RC_OK);
}

static void
test_login_wrong(void **state)
{
	assert_int_equal(auth_login(&cfg, "alice", "alice-pW", T0),
	                 RC_UNAUTHORIZED);
	assert_int_equal(auth_login(&cfg, "alice", "", T0), RC_UNAUTHORIZED);
	assert_int_equal(auth_login(&cfg, "alice", NULL, T0), RC_UNAUTHORIZED);
	/* Another user's password. */
	assert_int_equal(auth_login(&cfg, "alice", "bob-pw", T0),
	                 RC_UNAUTHORIZED);
	/* Still unknown once bob's credential is cached. */
	assert_int_equal(auth_login(&cfg, "bob", "bob-pw", T0), RC_OK);
	assert_int_equal(auth_login(&cfg, "alice", "bob-pw", T0),
	                 RC_UNAUTHORIZED);
}

static void
test_login_unknown(void **state)
{
	double t, wrong = 1e9, unknown = 1e9;

	assert_int_equal(auth_login(&cfg, "mallory", "alice-pw", T0),
	                 RC_UNAUTHORIZED);
	assert_int_equal(auth_login(&cfg, "Alice", "alice-pw", T0),
	                 RC_UNAUTHORIZED);
	assert_int_equal(auth_login(&cfg, "alice ", "alice-pw", T0),
	                 RC_UNAUTHORIZED);
	assert_int_equal(auth_login(&cfg, "", "", T0), RC_UNAUTHORIZED);
	assert_int_equal(auth_login(&cfg, NULL, "alice-pw", T0),
	                 RC_UNAUTHORIZED);

	/* An unknown name costs about as much as a wrong password (fastest
	 * of two runs each, a factor 4 of slack). */
	for (int i = 0; i < 2; i++) {
		t = seconds();
		assert_int_equal(auth_login(&cfg, "carol", "nope", T0),
		                 RC_UNAUTHORIZED);
		t = seconds() - t;
		wrong = t < wrong ? t : wrong;
		t = seconds();
		assert_int_equal(auth_login(&cfg, "nobody", "nope", T0),
		                 RC_UNAUTHORIZED);
		t = seconds() - t;
		unknown = t < unknown ? t : unknown;
	}
	if (unknown < wrong / 4)
		print_error("unknown %.4fs, wrong password %.4fs\n", unknown,
		            wrong);
	assert_true(unknown >= wrong / 4);
}

static void
test_login_expired(void **state)
{
	/* dave expired before T0: refused even with the right password. */
	assert_int_equal(auth_login(&cfg, "dave", "dave-pw", T0),
	                 RC_UNAUTHORIZED);
	assert_int_equal(auth_login(&cfg, "dave", "dave-pw", T0 - 2), RC_OK);

	/* bob is cached while valid, then refused at and after expiry. */
	assert_int_equal(auth_login(&cfg, "bob", "bob-pw", T0 + 999), RC_OK);
	assert_int_equal(auth_login(&cfg, "bob", "bob-pw", T0 + 1000),
	                 RC_UNAUTHORIZED);
	assert_int_equal(auth_login(&cfg, "bob", "bob-pw", T0 + 1001),
	                 RC_UNAUTHORIZED);
	assert_int_equal(auth_login(&cfg, "bob", "wrong", T0 + 1001),
	                 RC_UNAUTHORIZED);
}

static void
test_login_cache_fast(void **state)
{
	double first, second;

	first = seconds();
	assert_int_equal(auth_login(&cfg, "carol", "carol-pw", T0), RC_OK);
	first = seconds() - first;
	second = seconds();
	assert_int_equal(auth_login(&cfg, "carol", "carol-pw", T0 + 10), RC_OK);
	second = seconds() - second;
	if (second >= first / 20)
		print_error("first %.6fs, cached %.6fs\n", first, second);
	assert_true(second < first / 20);
}

static void
test_login_cache_ttl(void **state)
{
	/* The cache is observed by changing alice's hash behind its back:
	 * while her old credential is cached it still signs in; once the
	 * entry expires the password is checked against the new hash. */
	assert_int_equal(auth_login(&cfg, "alice", "alice-pw", T0), RC_OK);
	users[ALICE].hash = other_hash;
	assert_int_equal(
	        auth_login(&cfg, "alice", "alice-pw", T0 + AUTH_CRED_TTL - 1),
	        RC_OK);
	assert_int_equal(
	        auth_login(&cfg, "alice", "alice-pw", T0 + AUTH_CRED_TTL),
	        RC_UNAUTHORIZED);
	assert_int_equal(
	        auth_login(&cfg, "alice", "changed-pw", T0 + AUTH_CRED_TTL),
	        RC_OK);
}

static void
test_login_wrong_after_cached(void **state)
{
	assert_int_equal(auth_login(&cfg, "alice", "alice-pw", T0), RC_OK);
	assert_int_equal(auth_login(&cfg, "alice", "alice-px", T0 + 1),
	                 RC_UNAUTHORIZED);
	assert_int_equal(auth_login(&cfg, "alice", "alice-p", T0 + 1),
	                 RC_UNAUTHORIZED);
	assert_int_equal(auth_login(&cfg, "alice", "alice-pw", T0 + 2), RC_OK);
	/* The user name is part of the key: "alice" + "alice-pw" cached
	 * does not let another name in with that password. */
	assert_int_equal(auth_login(&cfg, "carol", "alice-pw", T0 + 2),
	                 RC_UNAUTHORIZED);
}

static void
test_login_without_cache(void **state)
{
	struct auth_creds *c = cfg.creds;

	cfg.creds = NULL;
	assert_int_equal(auth_login(&cfg, "alice", "alice-pw", T0), RC_OK);
	assert_int_equal(auth_login(&cfg, "alice", "x", T0), RC_UNAUTHORIZED);
	cfg.creds = c;
	auth_creds_free(NULL);
}

/* ---- many threads at once ---- */

#define THREADS 8
#define ROUNDS  40

static pthread_barrier_t start;
static atomic_int wrong_answers, logins;

static void *
storm(void *arg)
{
	int id = (int)(intptr_t)arg;
	int who = id % 3; /* alice, bob or carol */

	pthread_barrier_wait(&start);
	for (int r = 0; r < ROUNDS; r++) {
		const char *user = names[who], *pw = passwords[who];
		int want = RC_OK;

		/* Mostly the right password (cache hits after the first);
		 * a few wrong ones, unknown users and an expired one. */
		if (r == 3 && id % 2 == 0) {
			pw = passwords[(who + 1) % 3];
			want = RC_UNAUTHORIZED;
		} else if (r == 7 && id % 2 == 1) {
			user = "nobody";
			want = RC_UNAUTHORIZED;
		} else if (r == 11 && id % 4 == 0) {
			user = "dave";
			pw = "dave-pw";
			want = RC_UNAUTHORIZED;
		} else if (r == 20 && id % 4 == 1) {
			pw = "";
			want = RC_UNAUTHORIZED;
		}
		if (auth_login(&cfg, user, pw, T0 + r) != want)
			atomic_fetch_add(&wrong_answers, 1);
		atomic_fetch_add(&logins, 1);
	}
	return NULL;
}

static void
test_login_threads(void **state)
{
	pthread_t t[THREADS];

	atomic_store(&wrong_answers, 0);
	atomic_store(&logins, 0);
	assert_int_equal(pthread_barrier_init(&start, NULL, THREADS), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(
		        pthread_create(&t[i], NULL, storm, (void *)(intptr_t)i),
		        0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
	assert_int_equal(atomic_load(&logins), THREADS * ROUNDS);
	assert_int_equal(atomic_load(&wrong_answers), 0);
	/* And the cache still answers right afterwards. */
	assert_int_equal(auth_login(&cfg, "alice", "alice-pw", T0 + 50), RC_OK);
	assert_int_equal(auth_login(&cfg, "alice", "bob-pw", T0 + 50),
	                 RC_UNAUTHORIZED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_vector_pbkdf2),
	        cmocka_unit_test(test_known_encoding),
	        cmocka_unit_test(test_built_encoding),
	        cmocka_unit_test(test_hash_format),
	        cmocka_unit_test(test_hash_unicode_and_long),
	        cmocka_unit_test(test_hash_buffer_too_small),
	        cmocka_unit_test(test_salt_differs),
	        cmocka_unit_test(test_tampered),
	        cmocka_unit_test(test_iterations_bounds),
	        cmocka_unit_test(test_garbage),
	        cmocka_unit_test_setup_teardown(test_login_ok, login_setup,
	                                        login_teardown),
	        cmocka_unit_test_setup_teardown(test_login_wrong, login_setup,
	                                        login_teardown),
	        cmocka_unit_test_setup_teardown(test_login_unknown, login_setup,
	                                        login_teardown),
	        cmocka_unit_test_setup_teardown(test_login_expired, login_setup,
	                                        login_teardown),
	        cmocka_unit_test_setup_teardown(test_login_cache_fast,
	                                        login_setup, login_teardown),
	        cmocka_unit_test_setup_teardown(test_login_cache_ttl,
	                                        login_setup, login_teardown),
	        cmocka_unit_test_setup_teardown(test_login_wrong_after_cached,
	                                        login_setup, login_teardown),
	        cmocka_unit_test_setup_teardown(test_login_without_cache,
	                                        login_setup, login_teardown),
	        cmocka_unit_test_setup_teardown(test_login_threads, login_setup,
	                                        login_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
