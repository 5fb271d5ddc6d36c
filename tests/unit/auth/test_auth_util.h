/* Helpers shared by the auth unit tests (test_config.c, test_jwt.c,
 * test_keys.c): a temp directory, files and PEM keys in it, and a
 * base64url encoder written apart from auth/b64.c so tests can build and
 * check tokens independently. Each test file is its own executable. */
#ifndef BERTH_TEST_AUTH_UTIL_H
#define BERTH_TEST_AUTH_UTIL_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

static char dir[64]; /* the test's temp directory */

static inline int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* dir/name, in a static buffer. */
static inline const char *
tmp(const char *name)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

/* Writes k as PEM to dir/name: its public half when pub. */
static inline int
write_key(EVP_PKEY *k, const char *name, int pub)
{
	FILE *f = fopen(tmp(name), "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = pub ? PEM_write_PUBKEY(f, k)
	         : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

/* base64url without padding, bit by bit. */
static inline void
b64url(const unsigned char *in, size_t n, char *out)
{
	static const char t[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
	        "wxyz0123456789-_";
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = t[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = t[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

#endif
