/* Where in a JSON text a value is: jansson keeps no positions for parsed
 * values, so an error found after parsing ("users[2].rules[0].actions:
 * unknown action") is located by walking the text once more, tracking the
 * path of every value. The text has already been parsed successfully. */
#include <stdio.h>
#include <string.h>

#include "common/jsonline.h"

#define SCAN_DEPTH 64
#define SCAN_PATH  256

struct scan {
	const char *t;
	size_t n, i;
	int line;
	const char *want;
	char cur[SCAN_PATH];
	int found; /* line of the wanted value, once seen */
};

static void
skip_ws(struct scan *s)
{
	while (s->i < s->n && strchr(" \t\r\n", s->t[s->i]) != NULL) {
		if (s->t[s->i] == '\n')
			s->line++;
		s->i++;
	}
}

/* Skips a string starting at its opening quote; copies up to cap-1 bytes
 * of its raw content into out when out is not NULL. */
static void
skip_string(struct scan *s, char *out, size_t cap)
{
	size_t o = 0;

	s->i++; /* opening quote */
	while (s->i < s->n && s->t[s->i] != '"') {
		if (s->t[s->i] == '\\' && s->i + 1 < s->n) {
			if (out != NULL && o + 1 < cap)
				out[o++] = s->t[s->i];
			s->i++;
		}
		if (out != NULL && o + 1 < cap)
			out[o++] = s->t[s->i];
		s->i++;
	}
	s->i++; /* closing quote */
	if (out != NULL)
		out[o] = '\0';
}

/* Walks one value whose path is cur[0..len); stops once the wanted path
 * is seen. */
static void
walk(struct scan *s, size_t len, int depth)
{
	char key[SCAN_PATH];
	int idx = 0;

	skip_ws(s);
	s->cur[len] = '\0';
	if (strcmp(s->cur, s->want) == 0) {
		s->found = s->line;
		return;
	}
	if (s->i >= s->n || depth > SCAN_DEPTH)
		return;
	if (s->t[s->i] == '"') {
		skip_string(s, NULL, 0);
		return;
	}
	if (s->t[s->i] != '{' && s->t[s->i] != '[') {
		while (s->i < s->n && strchr(",}] \t\r\n", s->t[s->i]) == NULL)
			s->i++;
		return;
	}
	if (s->t[s->i++] == '{') {
		for (;;) {
			int k;

			skip_ws(s);
			if (s->i >= s->n || s->t[s->i] != '"')
				break; /* '}' of an empty object */
			skip_string(s, key, sizeof(key));
			k = snprintf(s->cur + len, sizeof(s->cur) - len, "%s%s",
			             len ? "." : "", key);
			skip_ws(s);
			s->i++; /* ':' */
			if (k < 0 || (size_t)k >= sizeof(s->cur) - len)
				return;
			walk(s, len + (size_t)k, depth + 1);
			if (s->found)
				return;
			skip_ws(s);
			if (s->i >= s->n || s->t[s->i] != ',')
				break;
			s->i++;
		}
	} else {
		for (;;) {
			int k;

			skip_ws(s);
			if (s->i >= s->n || s->t[s->i] == ']')
				break;
			k = snprintf(s->cur + len, sizeof(s->cur) - len, "[%d]",
			             idx++);
			if (k < 0 || (size_t)k >= sizeof(s->cur) - len)
				return;
			walk(s, len + (size_t)k, depth + 1);
			if (s->found)
				return;
			skip_ws(s);
			if (s->i >= s->n || s->t[s->i] != ',')
				break;
			s->i++;
		}
	}
	skip_ws(s);
	s->i++; /* '}' or ']' */
}

int
json_line_of(const char *text, size_t len, const char *path)
{
	char want[SCAN_PATH];
	size_t n;

	if (text == NULL || path == NULL || strlen(path) >= sizeof(want))
		return 0;
	strcpy(want, path);
	/* A missing member is reported at its parent. */
	while ((n = strlen(want)) > 0) {
		struct scan s = {.t = text, .n = len, .line = 1, .want = want};
		char *cut;

		walk(&s, 0, 0);
		if (s.found)
			return s.found;
		cut = strrchr(want, '.');
		if (want[n - 1] == ']' &&
		    (cut == NULL || strrchr(want, '[') > cut))
			cut = strrchr(want, '[');
		if (cut == NULL)
			break;
		*cut = '\0';
	}
	return 0;
}
