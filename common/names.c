#include "common/names.h"

#include <string.h>

static int
is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* over [s, e). */
static int
component_is_valid(const char *s, const char *e)
{
	const char *p = s;

	if (p == e || !is_alnum_lower(*p))
		return 0;
	while (p < e) {
		while (p < e && is_alnum_lower(*p))
			p++;
		if (p == e)
			return 1;
		if (*p == '.') {
			p++;
		} else if (*p == '_') {
			p++;
			if (p < e && *p == '_')
				p++;
		} else if (*p == '-') {
			while (p < e && *p == '-')
				p++;
		} else {
			return 0;
		}
		if (p == e || !is_alnum_lower(*p))
			return 0;
	}
	return 1;
}

int
name_is_valid(const char *name)
{
	const char *s = name;
	size_t len;

	if (name == NULL)
		return 0;
	len = strlen(name);
	if (len == 0 || len > NAME_MAX_LEN)
		return 0;
	for (;;) {
		const char *slash = strchr(s, '/');
		const char *e = slash ? slash : name + len;
		if (!component_is_valid(s, e))
			return 0;
		if (slash == NULL)
			return 1;
		s = slash + 1;
	}
}

int
tag_is_valid(const char *tag)
{
	size_t len;

	if (tag == NULL)
		return 0;
	len = strlen(tag);
	if (len == 0 || len > TAG_MAX_LEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = tag[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		         (c >= '0' && c <= '9') || c == '_' ||
		         (i > 0 && (c == '.' || c == '-'));
		if (!ok)
			return 0;
	}
	return 1;
}

void
text_printable(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	for (; src[n] != '\0' && n + 1 < cap; n++)
		dst[n] = src[n] >= 0x20 && src[n] < 0x7f ? src[n] : '?';
	if (src[n] != '\0')
		memcpy(dst + cap - 4, "...", 3);
	dst[n] = '\0';
}

int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
