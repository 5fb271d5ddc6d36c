/* The line of a value in a JSON text, by its path, for error messages of
 * configuration files ("users.json:12: users[2].rules[0].actions: unknown
 * action"): jansson keeps no positions for parsed values. */
#ifndef BERTH_COMMON_JSONLINE_H
#define BERTH_COMMON_JSONLINE_H

#include <stddef.h>

/* 1-based line where the value at path starts in the JSON text
 * text[0..len), or where its closest existing ancestor starts when it is
 * missing; 0 when neither is found. A path names object members with '.'
 * and array elements with [i]: "users[2].rules[0].actions"; "" is the
 * root, which has no line (0). Keys are compared with their raw text
 * (escapes as written). The text must be valid JSON (parsed before). */
int json_line_of(const char *text, size_t len, const char *path);

#endif
