/* Unit tests for auth/b64.c: RFC 4648 vectors in both alphabets without
 * padding, and the strict decoder's refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth_internal.h"

/* RFC 4648 section 10, padding removed. */
static const struct {
	const char *raw, *enc;
} vectors[] = {
        {"", ""},
        {"f", "Zg"},
        {"fo", "Zm8"},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg"},
        {"fooba", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy"},
};

static void
test_rfc4648_vectors(void **state)
{
	char enc[32];
	unsigned char dec[32];

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		size_t n = strlen(vectors[i].raw);

		assert_int_equal(auth_b64_len(n), strlen(vectors[i].enc));
		auth_b64_encode(AUTH_B64_STD,
		                (const unsigned char *)vectors[i].raw, n, enc);
		assert_string_equal(enc, vectors[i].enc);
		assert_int_equal(auth_b64_decode(AUTH_B64_STD, enc, strlen(enc),
		                                 dec, sizeof(dec)),
		                 (long)n);
		assert_memory_equal(dec, vectors[i].raw, n);
	}
}

/* The two alphabets differ in the last two characters only. */
static void
test_alphabets(void **state)
{
	const unsigned char raw[] = {0xfb, 0xff, 0xbf};
	unsigned char dec[8];
	char enc[8];

	auth_b64_encode(AUTH_B64_STD, raw, sizeof(raw), enc);
	assert_string_equal(enc, "+/+/");
	auth_b64_encode(AUTH_B64_URL, raw, sizeof(raw), enc);
	assert_string_equal(enc, "-_-_");
	assert_int_equal(auth_b64_decode(AUTH_B64_URL, "-_-_", 4, dec, 8), 3);
	assert_memory_equal(dec, raw, 3);
	assert_int_equal(auth_b64_decode(AUTH_B64_STD, "-_-_", 4, dec, 8), -1);
	assert_int_equal(auth_b64_decode(AUTH_B64_URL, "+/+/", 4, dec, 8), -1);
}

static void
test_refusals(void **state)
{
	unsigned char dec[16];

	/* padding, other characters, impossible length */
	assert_int_equal(auth_b64_decode(AUTH_B64_STD, "Zg==", 4, dec, 16), -1);
	assert_int_equal(auth_b64_decode(AUTH_B64_STD, "Zm 9v", 5, dec, 16),
	                 -1);
	assert_int_equal(auth_b64_decode(AUTH_B64_STD, "Zm9vY", 5, dec, 16),
	                 -1);
	/* non-zero unused bits: "Zh" would also decode to "f" loosely */
	assert_int_equal(auth_b64_decode(AUTH_B64_STD, "Zh", 2, dec, 16), -1);
	/* does not fit */
	assert_int_equal(auth_b64_decode(AUTH_B64_STD, "Zm9vYmFy", 8, dec, 5),
	                 -1);
	assert_int_equal(auth_b64_decode(AUTH_B64_STD, "Zm9vYmFy", 8, dec, 6),
	                 6);
	/* a NUL inside the given length is not skipped */
	assert_int_equal(auth_b64_decode(AUTH_B64_STD, "Zm\0v", 4, dec, 16),
	                 -1);
}

static void
test_all_bytes_round_trip(void **state)
{
	unsigned char raw[256], dec[256];
	char enc[400];

	for (int i = 0; i < 256; i++)
		raw[i] = (unsigned char)i;
	for (size_t n = 0; n <= sizeof(raw); n += 37) {
		for (int a = AUTH_B64_STD; a <= AUTH_B64_URL; a++) {
			auth_b64_encode(a, raw, n, enc);
			assert_int_equal(strlen(enc), auth_b64_len(n));
			assert_int_equal(auth_b64_decode(a, enc, strlen(enc),
			                                 dec, sizeof(dec)),
			                 (long)n);
			assert_memory_equal(dec, raw, n);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rfc4648_vectors),
	        cmocka_unit_test(test_alphabets),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_all_bytes_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
