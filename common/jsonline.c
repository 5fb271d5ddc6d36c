/* JSON files with located errors. Where in a JSON text a value is:
 * jansson keeps no positions for parsed values, so an error found after
 * parsing ("users[2].rules[0].actions: unknown action") is located by
 * walking the text once more, tracking the path of every value. The text
 * has already been parsed successfully. Then the rest a configuration
 * file parser needs to report it: reading, parsing, paths, messages. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/jsonline.h"
#include "common/rc.h"

#define MIB (1u << 20)

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

/* ---- the file ---- */

/* Lets go of a buffer that may hold secrets (a users file's hashes). */
static void
wipe_free(char *buf, size_t len)
{
	if (buf == NULL)
		return;
	explicit_bzero(buf, len);
	free(buf);
}

static int
file_read(const char *path, size_t max, char **out, size_t *len)
{
	size_t cap, n = 0;
	char *buf = NULL, *nb;
	struct stat st;
	int fd, rc;

	if (max > SIZE_MAX / 2)
		return -EINVAL; /* max + 1 and doubling must not wrap */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		goto fail;
	}
	if (st.st_size > 0 && (uint64_t)st.st_size > max) {
		rc = RC_TOO_LARGE;
		goto fail;
	}
	/* Room for one byte more than expected (and the NUL), to see the end
	 * at once; a file that grows (or a pipe, st_size 0) is read on up to
	 * max + 1 bytes. */
	cap = (size_t)st.st_size + 1 < 4096 ? 4096 : (size_t)st.st_size + 1;
	if (cap > max + 1)
		cap = max + 1;
	rc = -ENOMEM;
	if ((buf = malloc(cap + 1)) == NULL)
		goto fail;
	for (;;) {
		ssize_t got;

		if (n == cap) {
			rc = RC_TOO_LARGE;
			if (cap > max)
				goto fail;
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			/* Not realloc: the old buffer is wiped before free. */
			rc = -ENOMEM;
			if ((nb = malloc(cap + 1)) == NULL)
				goto fail;
			memcpy(nb, buf, n);
			wipe_free(buf, n);
			buf = nb;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			goto fail;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return RC_OK;
fail:
	wipe_free(buf, n);
	close(fd);
	return rc;
}

int
json_file_read(const char *path, size_t max, char **out, size_t *len, char *err,
               size_t errlen)
{
	int rc = file_read(path, max, out, len);

	if (rc == RC_OK || err == NULL || errlen == 0)
		return rc;
	if (rc == RC_TOO_LARGE && max % MIB == 0)
		snprintf(err, errlen, "%s: larger than %zu MiB", path,
		         max / MIB);
	else if (rc == RC_TOO_LARGE)
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
	else
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	return rc;
}

int
json_file_parse(const struct json_file *f, json_t **out)
{
	json_error_t jerr;
	json_t *root;

	if (f->text == NULL && f->len > 0)
		return RC_BAD_REQUEST;
	root = json_loadb(f->text != NULL ? f->text : "", f->len,
	                  JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (f->err != NULL && f->errlen > 0) {
			/* jansson quotes the input near the error, control
			 * characters included: the message stays one line. */
			for (char *c = jerr.text; *c != '\0'; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					*c = ' ';
			snprintf(f->err, f->errlen, "%s:%d:%d: %s", f->name,
			         jerr.line, jerr.column, jerr.text);
		}
		return RC_BAD_REQUEST;
	}
	*out = root;
	return RC_OK;
}

/* ---- messages ---- */

int
json_file_error(const struct json_file *f, const char *path, const char *fmt,
                ...)
{
	va_list ap;
	int n, line;

	if (f->err == NULL || f->errlen == 0)
		return RC_BAD_REQUEST;
	line = json_line_of(f->text, f->len, path);
	if (line > 0)
		n = snprintf(f->err, f->errlen, "%s:%d: %s%s", f->name, line,
		             path, *path ? ": " : "");
	else
		n = snprintf(f->err, f->errlen, "%s: %s%s", f->name, path,
		             *path ? ": " : "");
	if (n >= 0 && (size_t)n < f->errlen) {
		va_start(ap, fmt);
		vsnprintf(f->err + n, f->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	/* One line, whatever the names in it hold (a key file's name from
	 * the file itself may carry a newline). */
	for (char *p = f->err; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return RC_BAD_REQUEST;
}

int
json_file_keys_check(const struct json_file *f, const char *path, json_t *obj,
                     const char *const *known)
{
	char sub[JSON_PATH_BUF], shown[JSON_SHOW_BUF];
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v)
	{
		size_t i;

		for (i = 0; known[i] != NULL && strcmp(known[i], k) != 0; i++)
			;
		if (known[i] != NULL)
			continue;
		json_path_key(sub, path, json_show(k, shown));
		return json_file_error(f, sub, "unknown key");
	}
	return RC_OK;
}

void
json_path(char buf[JSON_PATH_BUF], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, JSON_PATH_BUF, fmt, ap);
	va_end(ap);
}

void
json_path_key(char buf[JSON_PATH_BUF], const char *path, const char *key)
{
	json_path(buf, "%s%s%s", path, *path ? "." : "", key);
}

const char *
json_show(const char *s, char buf[JSON_SHOW_BUF])
{
	size_t i;

	for (i = 0; i < JSON_SHOW_BUF - 4 && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = (c < ' ' || c == 0x7f || c == '"' || c == '\\')
		                 ? '?'
		                 : (char)c;
	}
	buf[i] = '\0';
	if (s[i] != '\0')
		strcpy(buf + i, "...");
	return buf;
}
