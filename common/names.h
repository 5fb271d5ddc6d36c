/* Grammars of the OCI distribution spec for repository names and tags.
 * Validation happens before any value reaches storage, so path traversal
 * ("..", "%2e%2e", absolute paths) cannot be expressed. */
#ifndef BERTH_COMMON_NAMES_H
#define BERTH_COMMON_NAMES_H

#include <stddef.h>

#define NAME_MAX_LEN 255
#define TAG_MAX_LEN  128

/* 1 if name matches
 * [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 * and is at most NAME_MAX_LEN bytes, else 0. */
int name_is_valid(const char *name);

/* 1 if tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}, else 0. */
int tag_is_valid(const char *tag);

/* The value of the hex digit c (either case), or -1. */
int hex_digit(char c);

/* Copies untrusted text (a query value, a path part) into dst for an error
 * message: printable ASCII is kept, any other byte becomes '?', and text
 * that does not fit is cut, ending in "...". cap must be at least 4. */
void text_printable(char *dst, size_t cap, const char *src);

#endif
