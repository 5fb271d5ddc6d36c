/* Base64 without padding, in both alphabets the auth module meets: the
 * standard one (password hashes, Basic credentials) and the URL-safe one
 * (JWT parts, key thumbprints). Decoding is strict: only the alphabet's
 * characters, no length that no encoding has, unused bits zero. */
#include <stdint.h>

#include "auth/auth_internal.h"

static const char alphabets[2][65] = {
        [AUTH_B64_STD] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "abcdefghijklmnopqrstuvwxyz0123456789+/",
        [AUTH_B64_URL] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "abcdefghijklmnopqrstuvwxyz0123456789-_",
};

size_t
auth_b64_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

void
auth_b64_encode(enum auth_b64 alpha, const unsigned char *in, size_t n,
                char *out)
{
	const char *tab = alphabets[alpha];
	size_t i, o = 0;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		             in[i + 2];

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		out[o++] = tab[in[i] >> 2];
		out[o++] = tab[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

		out[o++] = tab[v >> 10];
		out[o++] = tab[(v >> 4) & 63];
		out[o++] = tab[(v & 15) << 2];
	}
	out[o] = '\0';
}

static int
value_of(enum auth_b64 alpha, unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (alpha == AUTH_B64_URL ? '-' : '+'))
		return 62;
	if (c == (alpha == AUTH_B64_URL ? '_' : '/'))
		return 63;
	return -1;
}

long
auth_b64_decode(enum auth_b64 alpha, const char *in, size_t len,
                unsigned char *out, size_t max)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > max)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = value_of(alpha, (unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = ((acc << 6) | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (acc & ((1u << bits) - 1))
		return -1;
	return (long)o;
}
