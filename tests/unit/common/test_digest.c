/* Unit tests for common/digest.c against the digest grammar of the OCI
 * image-spec (descriptor.md) and the sha256 rules of berth.
 *
 * Test vectors are whole 71-character digests kept on one line each so they
 * can be compared by eye; clang-format would split them, so it is off here. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/digest.h"
#include "common/rc.h"

#define HEX64 "6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"

static void
test_check_valid(void **state)
{
	assert_int_equal(digest_check("sha256:" HEX64), RC_OK);
	assert_int_equal(digest_check("sha256:"
				      "0000000000000000000000000000000000000000000000000000000000000000"),
			 RC_OK);
	assert_int_equal(digest_check("sha256:"
				      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
			 RC_OK);
}

static void
test_check_invalid(void **state)
{
	static const char *bad[] = {
		NULL,
		"",
		"sha256:",
		"sha256",
		HEX64,                        /* prefix missing */
		":" HEX64,                    /* algorithm missing */
		"sha256:" HEX64 "0",          /* 65 hex */
		"sha256:" HEX64 "\n",         /* trailing newline */
		"sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3",
		"sha256:6C3C624B58DBBCD3C0DD82B4C53F04194D1247C6EEBDAAB7C610CF7D66709B3B",
		"sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3B",
		"sha256:gc3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
		"sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d6670_b3b",
		"sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d6670-b3b",
		"SHA256:" HEX64,
		"sha256::" HEX64,
		" sha256:" HEX64,
		"sha256 :" HEX64,
		"sha256:../../../../../../../../../../../../../../../../etc/passwd",
		"sha256:../" HEX64,
		"sha256:/" HEX64,
		"sha256:" HEX64 "/..",
		"sha256:%2e%2e%2f",
		"../sha256:" HEX64,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (digest_check(bad[i]) != RC_DIGEST_INVALID)
			print_error("accepted or misclassified: %s\n",
				    bad[i] ? bad[i] : "(null)");
		assert_int_equal(digest_check(bad[i]), RC_DIGEST_INVALID);
	}
}

static void
test_check_other_algorithms(void **state)
{
	/* Well-formed but not sha256: unsupported, not malformed. */
	assert_int_equal(digest_check("sha512:" HEX64 HEX64), RC_UNSUPPORTED);
	assert_int_equal(digest_check("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"),
			 RC_UNSUPPORTED);
	assert_int_equal(digest_check("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"),
			 RC_UNSUPPORTED);
	assert_int_equal(digest_check("sha2567:" HEX64), RC_UNSUPPORTED);
}

static void
test_wellformed(void **state)
{
	static const char *good[] = {
		"sha256:" HEX64,
		"sha512:" HEX64 HEX64,
		"multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
		"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
		"a:b",
		"0:0",
		"a.b_c-d+e:x",
		"sha256:ABC=",
		"sha256:-",
		"sha256:=_-",
	};
	static const char *bad[] = {
		NULL,
		"",
		"sha256",
		":abc",
		"SHA256:abc",
		"Sha256:abc",
		"sha256:",
		":",
		"sha256+:abc",
		"+sha256:abc",
		"sha256..b:abc",
		"sha.:abc",
		"sha256:ab:c",
		"sha256:ab/c",
		"sha256:ab.c",
		"sha256:ab c",
		"sha256:ab+c",
		"sha256:../x",
		"sha 256:abc",
		"sha256:abc\n",
		"sha256:\xc3\xa9",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!digest_is_wellformed(good[i]))
			print_error("rejected: %s\n", good[i]);
		assert_true(digest_is_wellformed(good[i]));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (digest_is_wellformed(bad[i]))
			print_error("accepted: %s\n", bad[i]);
		assert_false(digest_is_wellformed(bad[i]));
	}
}

static void
test_of_buf(void **state)
{
	char out[DIGEST_BUF];

	digest_of_buf("", 0, out);
	assert_string_equal(out, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(digest_check(out), RC_OK);
	digest_of_buf("abc", 3, out);
	assert_string_equal(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	digest_of_buf("{}", 2, out);
	assert_string_equal(out, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
	/* Bytes after a NUL count. */
	digest_of_buf("a\0b", 3, out);
	assert_string_not_equal(out, "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
	assert_int_equal(strlen(out), DIGEST_STR_LEN);
}

static void
test_from_raw(void **state)
{
	unsigned char raw[32];
	char out[DIGEST_BUF];

	for (int i = 0; i < 32; i++)
		raw[i] = (unsigned char)(i * 8 + 7);
	memset(out, 'x', sizeof(out));
	digest_from_raw(raw, out);
	assert_string_equal(out, "sha256:070f171f272f373f474f575f676f777f878f979fa7afb7bfc7cfd7dfe7eff7ff");
	memset(raw, 0xff, sizeof(raw));
	digest_from_raw(raw, out);
	assert_string_equal(out, "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
	assert_int_equal(digest_check(out), RC_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_valid),
		cmocka_unit_test(test_check_invalid),
		cmocka_unit_test(test_check_other_algorithms),
		cmocka_unit_test(test_wellformed),
		cmocka_unit_test(test_of_buf),
		cmocka_unit_test(test_from_raw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
/* clang-format on */
