/* Content digests. berth stores and verifies sha256 digests; their text form
 * is "sha256:" followed by 64 lower-case hex characters. */
#ifndef BERTH_COMMON_DIGEST_H
#define BERTH_COMMON_DIGEST_H

#include <stddef.h>

#define DIGEST_HEX_LEN 64
#define DIGEST_STR_LEN 71 /* "sha256:" + 64 */
#define DIGEST_BUF     72 /* DIGEST_STR_LEN + NUL */

/* 1 if s is a well-formed digest by the OCI grammar
 * (algorithm ":" encoded), 0 otherwise. */
int digest_is_wellformed(const char *s);

/* 0 if s is a sha256 digest berth can store (exactly "sha256:" + 64 lower
 * hex); RC_DIGEST_INVALID if malformed; RC_UNSUPPORTED for another
 * well-formed algorithm. */
int digest_check(const char *s) __attribute__((warn_unused_result));

/* Writes "sha256:<hex>" of buf into out. */
void digest_of_buf(const void *buf, size_t len, char out[DIGEST_BUF]);

/* Formats 32 raw bytes as "sha256:<hex>". */
void digest_from_raw(const unsigned char raw[32], char out[DIGEST_BUF]);

#endif
