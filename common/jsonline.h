/* JSON files with located errors: the line of a value by its path, since
 * jansson keeps no positions for parsed values, and what the parsers of
 * configuration files (auth/config.c, gc/policy.c) share to refuse a
 * value with one line such as "users.json:12: users[2].rules[0].actions:
 * unknown action": reading the file, parsing it, building JSON paths,
 * refusing unknown keys and writing the message. */
#ifndef BERTH_COMMON_JSONLINE_H
#define BERTH_COMMON_JSONLINE_H

#include <stddef.h>

#include <jansson.h>

#define JSON_PATH_BUF 96 /* a JSON path in a message */
#define JSON_SHOW_BUF 48 /* a value from the file quoted in a message */

/* 1-based line where the value at path starts in the JSON text
 * text[0..len), or where its closest existing ancestor starts when it is
 * missing; 0 when neither is found. A path names object members with '.'
 * and array elements with [i]: "users[2].rules[0].actions"; "" is the
 * root, which has no line (0). Keys are compared with their raw text
 * (escapes as written). The text must be valid JSON (parsed before). */
int json_line_of(const char *text, size_t len, const char *path);

/* A JSON file being checked: its name and text, to say where an error
 * is, and the caller's buffer for the message (err NULL or errlen 0: no
 * message). Filled in by the caller; nothing in it is owned. */
struct json_file {
	const char *name; /* for messages */
	const char *text; /* text[0..len), to find an error's line */
	size_t len;
	char *err;
	size_t errlen;
};

/* Reads the file at path whole into a malloc'ed buffer, NUL-terminated
 * (*out, *len without the NUL): at most max bytes. Else returns a
 * negative errno (-EISDIR for a directory) or RC_TOO_LARGE and writes
 * "PATH: why" to err when errlen > 0 ("PATH: No such file or directory",
 * "PATH: larger than 1 MiB"). Buffers it lets go of are wiped first: the
 * file may hold secrets. max is at most SIZE_MAX / 2 (else -EINVAL). */
int json_file_read(const char *path, size_t max, char **out, size_t *len,
                   char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* Parses f->text[0..f->len) refusing duplicate keys: 0 and *out (the
 * caller json_decref's it), or RC_BAD_REQUEST with "NAME:LINE:COLUMN:
 * why" in f->err. */
int json_file_parse(const struct json_file *f, json_t **out)
        __attribute__((warn_unused_result));

/* Writes "NAME:LINE: PATH: why" to f->err, why from fmt; "NAME: PATH:
 * why" when the line is not found and "NAME: why" for the root (path "").
 * Control characters become '?': always one line. Returns RC_BAD_REQUEST,
 * for `return json_file_error(...)`. */
int json_file_error(const struct json_file *f, const char *path,
                    const char *fmt, ...)
        __attribute__((format(printf, 3, 4), warn_unused_result));

/* Refuses the first member of the object obj (at path) whose key is not
 * in known (NULL-terminated) with "PATH.KEY: unknown key", the key shown
 * as json_show does. 0 or RC_BAD_REQUEST. */
int json_file_keys_check(const struct json_file *f, const char *path,
                         json_t *obj, const char *const *known)
        __attribute__((warn_unused_result));

/* Writes a JSON path ("users[2].rules[0]") into buf, printf-like,
 * truncated to fit. */
void json_path(char buf[JSON_PATH_BUF], const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* The path of member key of the object at path: "path.key", or "key" at
 * the root (path ""). */
void json_path_key(char buf[JSON_PATH_BUF], const char *path, const char *key);

/* s fit to be quoted in a one-line message, written to buf: at most
 * JSON_SHOW_BUF - 4 bytes of it, then "..." if cut; control characters,
 * quotes and backslashes as '?'. Returns buf. */
const char *json_show(const char *s, char buf[JSON_SHOW_BUF]);

#endif
