/* HTTP Basic credentials ("Authorization: Basic base64(user:password)"). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
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
	size_t n, pad = 0, ul, pl;
	int len, rc = RC_BAD_REQUEST;

	if (header == NULL || strncasecmp(header, "Basic ", 6) != 0)
		return RC_BAD_REQUEST;
	b64 = header + 6;
	while (*b64 == ' ')
		b64++;
	n = strlen(b64);
	while (n > 0 && b64[n - 1] == ' ')
		n--;
	if (n == 0 || n % 4 != 0 || n > BASIC_MAX)
		return RC_BAD_REQUEST;
	/* EVP_DecodeBlock keeps the padding's zero bytes: count them. */
	if (b64[n - 1] == '=')
		pad++;
	if (n > 1 && b64[n - 2] == '=')
		pad++;
	len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (len < 0 || (size_t)len < pad)
		goto out;
	len -= (int)pad;
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
