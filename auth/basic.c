/* HTTP Basic credentials ("Authorization: Basic base64(user:password)"). */
#include <openssl/crypto.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_internal.h"
#include "common/rc.h"

#define BASIC_MAX 1024 /* longest base64 credential accepted */

int
auth_basic_decode(const char *header, char *user, size_t ulen, char *pass,
                  size_t plen)
{
	unsigned char raw[BASIC_MAX];
	const char *b64, *colon;
	size_t n, ul, pl;
	long len;
	int rc = RC_BAD_REQUEST;

	if (header == NULL || strncasecmp(header, "Basic ", 6) != 0)
		return RC_BAD_REQUEST;
	b64 = header + 6;
	while (*b64 == ' ')
		b64++;
	n = strlen(b64);
	while (n > 0 && b64[n - 1] == ' ')
		n--;
	if (n == 0 || n > BASIC_MAX)
		return RC_BAD_REQUEST;
	/* Padding is optional on the wire; the decoder takes none. */
	if (b64[n - 1] == '=')
		n--;
	if (n > 0 && b64[n - 1] == '=')
		n--;
	len = auth_b64_decode(AUTH_B64_STD, b64, n, raw, sizeof(raw));
	if (len < 0)
		goto out;
	colon = memchr(raw, ':', (size_t)len);
	if (colon == NULL || memchr(raw, '\0', (size_t)len) != NULL)
		goto out;
	ul = (size_t)(colon - (const char *)raw);
	pl = (size_t)len - ul - 1;
	if (ul == 0 || ul >= ulen || pl >= plen)
		goto out;
	memcpy(user, raw, ul);
	user[ul] = '\0';
	memcpy(pass, colon + 1, pl);
	pass[pl] = '\0';
	rc = RC_OK;
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}
