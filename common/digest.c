#include "common/digest.h"

#include <openssl/evp.h>
#include <string.h>

#include "common/rc.h"

static int
is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* algorithm := component (separator component)*
 * component := [a-z0-9]+ ; separator := [+._-]
 * encoded := [a-zA-Z0-9=_-]+ */
int
digest_is_wellformed(const char *s)
{
	const char *p = s;
	int need_comp = 1;

	if (s == NULL)
		return 0;
	for (; *p != ':'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
			need_comp = 0;
		} else if (strchr("+._-", *p) != NULL && *p != '\0') {
			if (need_comp)
				return 0;
			need_comp = 1;
		} else {
			return 0;
		}
	}
	if (need_comp || p == s)
		return 0;
	p++;
	if (*p == '\0')
		return 0;
	for (; *p != '\0'; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '=' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

int
digest_check(const char *s)
{
	if (!digest_is_wellformed(s))
		return RC_DIGEST_INVALID;
	if (strncmp(s, "sha256:", 7) != 0)
		return RC_UNSUPPORTED;
	if (strlen(s) != DIGEST_STR_LEN)
		return RC_DIGEST_INVALID;
	for (int i = 7; i < DIGEST_STR_LEN; i++)
		if (!is_lower_hex(s[i]))
			return RC_DIGEST_INVALID;
	return RC_OK;
}

void
digest_from_raw(const unsigned char raw[32], char out[DIGEST_BUF])
{
	static const char hex[] = "0123456789abcdef";

	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[raw[i] >> 4];
		out[8 + 2 * i] = hex[raw[i] & 15];
	}
	out[DIGEST_STR_LEN] = '\0';
}

void
digest_of_buf(const void *buf, size_t len, char out[DIGEST_BUF])
{
	unsigned char raw[32];
	unsigned int n = 0;

	EVP_Digest(buf, len, raw, &n, EVP_sha256(), NULL);
	digest_from_raw(raw, out);
}
