/* Fixture and helpers shared by the blob store tests (test_blob.c,
 * test_blob_faults.c). Everything is static inline: each test file is its
 * own executable and includes this header. */
#ifndef BERTH_TEST_BLOB_UTIL_H
#define BERTH_TEST_BLOB_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/digest.h"
#include "common/rc.h"
#include "storage/blob.h"

/* A fresh store in a temp directory per test. */
struct fx {
	char tmp[64];
	char data[PATH_MAX];
	struct blob_store *bs;
};

static inline int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static inline void
rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates the temp directory and opens a store in <tmp>/data. */
static inline int
blob_fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	strcpy(fx->tmp, "/tmp/berth-test-blob-XXXXXX");
	if (mkdtemp(fx->tmp) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->data, sizeof(fx->data), "%s/data", fx->tmp);
	if (blob_store_open(fx->data, &fx->bs) != 0) {
		rm_rf(fx->tmp);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static inline int
blob_fx_teardown(void **state)
{
	struct fx *fx = *state;

	blob_store_close(fx->bs);
	rm_rf(fx->tmp);
	free(fx);
	return 0;
}

static inline int
path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static inline int64_t
path_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static inline void
final_path(struct fx *fx, const char *digest, char *buf, size_t len)
{
	snprintf(buf, len, "%s/blobs/sha256/%.2s/%s", fx->data, digest + 7,
	         digest + 7);
}

static inline void
upload_file(struct fx *fx, const char *uuid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/uploads/%s", fx->data, uuid);
}

/* Reads a whole file into a malloc'ed buffer. */
static inline unsigned char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

static inline void
assert_file_is(const char *path, const void *data, size_t len)
{
	size_t got;
	unsigned char *buf = slurp(path, &got);

	assert_int_equal(got, len);
	assert_memory_equal(buf, data, len);
	free(buf);
}

/* Uploads data in one write and commits it; returns its digest. */
static inline void
put_blob(struct blob_store *bs, const void *data, size_t len,
         char digest[DIGEST_BUF])
{
	char uuid[BLOB_UUID_BUF];
	struct blob_upload *up;
	uint64_t size = 0;

	digest_of_buf(data, len, digest);
	assert_int_equal(blob_upload_create(bs, uuid), 0);
	assert_int_equal(blob_upload_acquire(bs, uuid, &up), 0);
	assert_int_equal(blob_upload_write(up, data, len), 0);
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, len);
}

/* Creates an upload holding data, acquired. */
static inline struct blob_upload *
start_upload(struct blob_store *bs, const char *data, char uuid[BLOB_UUID_BUF])
{
	struct blob_upload *up = NULL;

	assert_int_equal(blob_upload_create(bs, uuid), 0);
	assert_int_equal(blob_upload_acquire(bs, uuid, &up), 0);
	assert_int_equal(blob_upload_write(up, data, strlen(data)), 0);
	return up;
}

#endif
