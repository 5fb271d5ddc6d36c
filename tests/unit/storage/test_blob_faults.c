/* Unit tests for storage/blob.c under failure and load: fsync, rename and
 * pwrite are wrapped (see test_blob_faults.ldflags) so a test can make one
 * call fail with a chosen errno; then a 64 MiB stream, the bounded fd cache
 * and threads sharing a store. */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>

#include <openssl/evp.h>

#include "test_blob_util.h"

/* ---- failure injection ---- */

/* After `skip` calls that go through, `times` calls fail with `err`. For
 * pwrite, `partial` > 0 first lets one call write that many bytes (a short
 * write), then the failures follow. */
struct fault {
	int skip;
	int times;
	int err;
	size_t partial;
	int calls;
};

static struct fault f_fsync, f_rename, f_pwrite;
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;

int __real_fsync(int fd);
int __real_rename(const char *from, const char *to);
ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);

int __wrap_fsync(int fd);
int __wrap_rename(const char *from, const char *to);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);

/* 1 when this call must fail (errno set), 0 to pass through. */
static int
fault_hit(struct fault *f)
{
	int hit = 0;

	pthread_mutex_lock(&fault_lock);
	f->calls++;
	if (f->times > 0) {
		if (f->skip > 0) {
			f->skip--;
		} else {
			f->times--;
			errno = f->err;
			hit = 1;
		}
	}
	pthread_mutex_unlock(&fault_lock);
	return hit;
}

int
__wrap_fsync(int fd)
{
	if (fault_hit(&f_fsync))
		return -1;
	return __real_fsync(fd);
}

int
__wrap_rename(const char *from, const char *to)
{
	if (fault_hit(&f_rename))
		return -1;
	return __real_rename(from, to);
}

ssize_t
__wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	size_t part = 0;

	pthread_mutex_lock(&fault_lock);
	if (f_pwrite.times > 0 && f_pwrite.skip == 0 && f_pwrite.partial > 0) {
		part = f_pwrite.partial < n ? f_pwrite.partial : n;
		f_pwrite.partial = 0;
	}
	pthread_mutex_unlock(&fault_lock);
	if (part > 0)
		return __real_pwrite(fd, buf, part, off);
	if (fault_hit(&f_pwrite))
		return -1;
	return __real_pwrite(fd, buf, n, off);
}

static void
faults_clear(void)
{
	pthread_mutex_lock(&fault_lock);
	memset(&f_fsync, 0, sizeof(f_fsync));
	memset(&f_rename, 0, sizeof(f_rename));
	memset(&f_pwrite, 0, sizeof(f_pwrite));
	pthread_mutex_unlock(&fault_lock);
}

static void
fault_arm(struct fault *f, int skip, int times, int err)
{
	pthread_mutex_lock(&fault_lock);
	memset(f, 0, sizeof(*f));
	f->skip = skip;
	f->times = times;
	f->err = err;
	pthread_mutex_unlock(&fault_lock);
}

/* ---- fixture ---- */

/* The shared fixture, with no fault armed before or after a test. */
static int
setup(void **state)
{
	faults_clear();
	return blob_fx_setup(state);
}

static int
teardown(void **state)
{
	faults_clear();
	return blob_fx_teardown(state);
}

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* ---- failed commits and writes ---- */

/* Checks that a failed commit left the upload as it was, then retries. */
static void
assert_commit_retry(struct fx *fx, struct blob_upload *up, const char *uuid,
                    const char *data)
{
	char digest[DIGEST_BUF], path[PATH_MAX + 128];
	uint64_t size = 0;

	digest_of_buf(data, strlen(data), digest);
	final_path(fx, digest, path, sizeof(path));
	assert_false(path_exists(path));
	upload_file(fx, uuid, path, sizeof(path));
	assert_int_equal(path_size(path), (int64_t)strlen(data));
	assert_int_equal(blob_upload_offset(up), strlen(data));

	faults_clear();
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, strlen(data));
	assert_false(path_exists(path));
	final_path(fx, digest, path, sizeof(path));
	assert_file_is(path, data, strlen(data));
}

static void
test_fsync_file_fails(void **state)
{
	struct fx *fx = *state;
	const char *data = "fsync of the file fails";
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF];
	struct blob_upload *up = start_upload(fx->bs, data, uuid);
	uint64_t size = 0;

	digest_of_buf(data, strlen(data), digest);
	fault_arm(&f_fsync, 0, 1, EIO);
	assert_int_equal(blob_upload_commit(up, digest, &size), -EIO);
	assert_int_equal(f_fsync.calls, 1);
	assert_int_equal(f_rename.calls, 0);
	assert_commit_retry(fx, up, uuid, data);
}

static void
test_fsync_new_dir_fails(void **state)
{
	struct fx *fx = *state;
	const char *data = "fsync of blobs/sha256 fails";
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF], dir[PATH_MAX + 128];
	struct blob_upload *up = start_upload(fx->bs, data, uuid);
	uint64_t size = 0;

	/* file fsync passes, the one making the new 2-hex dir durable fails;
	 * the dir is removed so that the retry syncs it again */
	digest_of_buf(data, strlen(data), digest);
	snprintf(dir, sizeof(dir), "%s/blobs/sha256/%.2s", fx->data,
	         digest + 7);
	fault_arm(&f_fsync, 1, 1, EIO);
	assert_int_equal(blob_upload_commit(up, digest, &size), -EIO);
	assert_false(path_exists(dir));
	assert_int_equal(f_rename.calls, 0);
	assert_commit_retry(fx, up, uuid, data);
	assert_int_equal(f_fsync.calls, 3);
}

static void
test_fsync_blob_dir_fails(void **state)
{
	struct fx *fx = *state;
	const char *data = "fsync of the blob's dir fails";
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF], dir[PATH_MAX + 128];
	struct blob_upload *up = start_upload(fx->bs, data, uuid);
	uint64_t size = 0;

	digest_of_buf(data, strlen(data), digest);
	snprintf(dir, sizeof(dir), "%s/blobs/sha256/%.2s", fx->data,
	         digest + 7);
	assert_int_equal(mkdir(dir, 0755), 0);
	/* file fsync passes, directory fsync after the rename fails: the
	 * blob is moved back out of sight */
	fault_arm(&f_fsync, 1, 1, EIO);
	assert_int_equal(blob_upload_commit(up, digest, &size), -EIO);
	assert_int_equal(f_fsync.calls, 2);
	assert_int_equal(f_rename.calls, 2);
	assert_commit_retry(fx, up, uuid, data);
}

static void
test_fsync_dir_and_rename_back_fail(void **state)
{
	struct fx *fx = *state;
	const char *data = "the blob stays where it is";
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF], dir[PATH_MAX + 128];
	char path[PATH_MAX + 128], upath[PATH_MAX + 128];
	struct blob_upload *up = start_upload(fx->bs, data, uuid);
	uint64_t size = 0;

	digest_of_buf(data, strlen(data), digest);
	snprintf(dir, sizeof(dir), "%s/blobs/sha256/%.2s", fx->data,
	         digest + 7);
	assert_int_equal(mkdir(dir, 0755), 0);
	fault_arm(&f_fsync, 1, 1, EIO);
	fault_arm(&f_rename, 1, 1, EIO);
	assert_int_equal(blob_upload_commit(up, digest, &size), -EIO);
	/* documented outcome: the verified file stays at its final path */
	final_path(fx, digest, path, sizeof(path));
	assert_file_is(path, data, strlen(data));
	upload_file(fx, uuid, upath, sizeof(upath));
	assert_false(path_exists(upath));
	/* and a retry completes as a duplicate */
	faults_clear();
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, strlen(data));
	assert_file_is(path, data, strlen(data));
}

static void
test_rename_fails(void **state)
{
	struct fx *fx = *state;
	const char *data = "rename fails";
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF];
	struct blob_upload *up = start_upload(fx->bs, data, uuid);
	uint64_t size = 0;

	digest_of_buf(data, strlen(data), digest);
	fault_arm(&f_rename, 0, 1, EXDEV);
	assert_int_equal(blob_upload_commit(up, digest, &size), -EXDEV);
	assert_int_equal(size, 0);
	assert_commit_retry(fx, up, uuid, data);
}

static void
test_rename_fails_after_release(void **state)
{
	struct fx *fx = *state;
	const char *data = "rename fails, client comes back later";
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF];
	struct blob_upload *up = start_upload(fx->bs, data, uuid);
	uint64_t size = 0;

	digest_of_buf(data, strlen(data), digest);
	fault_arm(&f_rename, 0, 1, EIO);
	assert_int_equal(blob_upload_commit(up, digest, &size), -EIO);
	blob_upload_release(up);
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	assert_commit_retry(fx, up, uuid, data);
}

static void
test_write_enospc(void **state)
{
	struct fx *fx = *state;
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF], path[PATH_MAX + 128];
	char big[100];
	struct blob_upload *up = start_upload(fx->bs, "0123456789", uuid);
	uint64_t size = 0;

	upload_file(fx, uuid, path, sizeof(path));
	memset(big, 'z', sizeof(big));

	/* a short write of 40 bytes, then the disk is full */
	fault_arm(&f_pwrite, 0, 1, ENOSPC);
	f_pwrite.partial = 40;
	assert_int_equal(blob_upload_write(up, big, sizeof(big)), -ENOSPC);
	assert_int_equal(f_pwrite.calls, 1); /* the failing one */
	assert_int_equal(blob_upload_offset(up), 10);
	assert_int_equal(path_size(path), 10);

	/* full from the first byte */
	fault_arm(&f_pwrite, 0, 1, ENOSPC);
	assert_int_equal(blob_upload_write(up, big, sizeof(big)), -ENOSPC);
	assert_int_equal(blob_upload_offset(up), 10);
	assert_int_equal(path_size(path), 10);

	/* interrupted calls are retried */
	fault_arm(&f_pwrite, 0, 3, EINTR);
	assert_int_equal(blob_upload_write(up, "abc", 3), 0);
	assert_int_equal(f_pwrite.calls, 4);
	assert_int_equal(blob_upload_offset(up), 13);

	faults_clear();
	assert_int_equal(blob_upload_write(up, "def", 3), 0);
	digest_of_buf("0123456789abcdef", 16, digest);
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, 16);
	final_path(fx, digest, path, sizeof(path));
	assert_file_is(path, "0123456789abcdef", 16);
}

/* ---- volume, cache, threads ---- */

static void
test_stream_64mib(void **state)
{
	struct fx *fx = *state;
	const size_t total = (size_t)64 << 20;
	unsigned char *data = malloc(total), raw[32];
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF], path[PATH_MAX + 128];
	struct blob_upload *up = NULL;
	uint64_t x = 0x9e3779b97f4a7c15ull, size = 0;
	unsigned int rawlen = 0;
	size_t off = 0, got = 0;
	unsigned char *back;
	int chunks = 0;

	assert_non_null(data);
	for (size_t i = 0; i < total; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(data + i, &x, 8);
	}
	assert_int_equal(
	        EVP_Digest(data, total, raw, &rawlen, EVP_sha256(), NULL), 1);
	assert_int_equal(rawlen, 32);
	digest_from_raw(raw, digest);

	assert_int_equal(blob_upload_create(fx->bs, uuid), 0);
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	while (off < total) {
		/* odd chunk sizes, a request boundary now and then, and one
		 * restart half-way that forces a hash rebuild from disk */
		size_t n = ((size_t)1 << 20) + (size_t)(chunks * 4099) % 65521;
		if (n > total - off)
			n = total - off;
		assert_int_equal(blob_upload_write(up, data + off, n), 0);
		off += n;
		chunks++;
		if (chunks % 7 == 0) {
			blob_upload_release(up);
			if (chunks == 28) {
				blob_store_close(fx->bs);
				fx->bs = NULL;
				assert_int_equal(
				        blob_store_open(fx->data, &fx->bs), 0);
			}
			assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up),
			                 0);
			assert_int_equal(blob_upload_offset(up), off);
		}
	}
	assert_true(chunks > 28);
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, total);

	final_path(fx, digest, path, sizeof(path));
	back = slurp(path, &got);
	assert_int_equal(got, total);
	assert_true(memcmp(back, data, total) == 0);
	free(back);
	free(data);
}

static void
test_cache_bounded(void **state)
{
	struct fx *fx = *state;
	enum { N = 300 };
	char(*uuids)[BLOB_UUID_BUF] = calloc(N, BLOB_UUID_BUF);
	char digest[DIGEST_BUF];
	struct blob_upload *up = NULL;
	uint64_t size = 0;
	int base = count_fds(), n;

	assert_non_null(uuids);
	for (int i = 0; i < N; i++) {
		up = start_upload(fx->bs, "u", uuids[i]);
		blob_upload_release(up);
	}
	n = count_fds();
	assert_true(n > base);
	assert_true(n <= base + 256);

	/* the oldest was evicted: it comes back from disk */
	assert_int_equal(blob_upload_acquire(fx->bs, uuids[0], &up), 0);
	assert_int_equal(blob_upload_offset(up), 1);
	assert_int_equal(blob_upload_write(up, "v", 1), 0);
	digest_of_buf("uv", 2, digest);
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, 2);
	assert_true(count_fds() <= base + 256);

	blob_store_close(fx->bs);
	fx->bs = NULL;
	assert_int_equal(count_fds(), base);
	assert_int_equal(blob_store_open(fx->data, &fx->bs), 0);
	free(uuids);
}

struct thread_arg {
	struct blob_store *bs;
	int id;
	const char *uuid;
	atomic_int *holders;
	atomic_int *violations;
	atomic_int *errors;
	atomic_int *wins;
};

enum { THREADS = 8, ROUNDS = 25, TRIES = 300 };

static void *
distinct_worker(void *p)
{
	struct thread_arg *a = p;
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF], body[128];
	struct blob_upload *up;
	uint64_t size;

	for (int r = 0; r < ROUNDS; r++) {
		int len = snprintf(body, sizeof(body),
		                   "thread %d round %d: some bytes", a->id, r);
		/* every thread also pushes the same blob, racing itself */
		if (r % 5 == 0)
			len = snprintf(body, sizeof(body), "shared blob");
		digest_of_buf(body, (size_t)len, digest);
		if (blob_upload_create(a->bs, uuid) != 0 ||
		    blob_upload_acquire(a->bs, uuid, &up) != 0) {
			atomic_fetch_add(a->errors, 1);
			continue;
		}
		if (blob_upload_write(up, body, 5) != 0)
			atomic_fetch_add(a->errors, 1);
		blob_upload_release(up);
		if (blob_upload_acquire(a->bs, uuid, &up) != 0) {
			atomic_fetch_add(a->errors, 1);
			continue;
		}
		if (blob_upload_write(up, body + 5, (size_t)len - 5) != 0 ||
		    blob_upload_commit(up, digest, &size) != 0 ||
		    size != (uint64_t)len) {
			atomic_fetch_add(a->errors, 1);
			blob_upload_release(up);
		}
	}
	return NULL;
}

static void
test_threads_distinct_uploads(void **state)
{
	struct fx *fx = *state;
	pthread_t th[THREADS];
	struct thread_arg args[THREADS];
	atomic_int errors = 0;
	char digest[DIGEST_BUF], body[128];
	uint64_t size;

	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){
		        .bs = fx->bs, .id = i, .errors = &errors};
		assert_int_equal(
		        pthread_create(&th[i], NULL, distinct_worker, &args[i]),
		        0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&errors), 0);
	for (int i = 0; i < THREADS; i++) {
		for (int r = 1; r < ROUNDS; r += 5) {
			int len = snprintf(body, sizeof(body),
			                   "thread %d round %d: some bytes", i,
			                   r);
			digest_of_buf(body, (size_t)len, digest);
			assert_int_equal(blob_stat(fx->bs, digest, &size), 0);
			assert_int_equal(size, len);
		}
	}
	digest_of_buf("shared blob", 11, digest);
	assert_int_equal(blob_stat(fx->bs, digest, &size), 0);
	assert_int_equal(size, 11);
}

static void *
contend_worker(void *p)
{
	struct thread_arg *a = p;
	struct blob_upload *up;

	for (int i = 0; i < TRIES; i++) {
		int rc = blob_upload_acquire(a->bs, a->uuid, &up);
		if (rc == RC_BUSY)
			continue;
		if (rc != 0) {
			atomic_fetch_add(a->errors, 1);
			continue;
		}
		if (atomic_fetch_add(a->holders, 1) != 0)
			atomic_fetch_add(a->violations, 1);
		if (blob_upload_write(up, "!", 1) != 0)
			atomic_fetch_add(a->errors, 1);
		atomic_fetch_add(a->wins, 1);
		atomic_fetch_sub(a->holders, 1);
		blob_upload_release(up);
	}
	return NULL;
}

static void
test_threads_same_upload(void **state)
{
	struct fx *fx = *state;
	pthread_t th[THREADS];
	struct thread_arg args[THREADS];
	atomic_int holders = 0, violations = 0, errors = 0, wins = 0;
	char uuid[BLOB_UUID_BUF], path[PATH_MAX + 128];
	struct blob_upload *up;

	assert_int_equal(blob_upload_create(fx->bs, uuid), 0);
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){.bs = fx->bs,
		                              .id = i,
		                              .uuid = uuid,
		                              .holders = &holders,
		                              .violations = &violations,
		                              .errors = &errors,
		                              .wins = &wins};
		assert_int_equal(
		        pthread_create(&th[i], NULL, contend_worker, &args[i]),
		        0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&violations), 0);
	assert_int_equal(atomic_load(&errors), 0);
	assert_true(atomic_load(&wins) > 0);
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	assert_int_equal(blob_upload_offset(up), atomic_load(&wins));
	blob_upload_release(up);
	upload_file(fx, uuid, path, sizeof(path));
	assert_int_equal(path_size(path), atomic_load(&wins));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	        T(test_fsync_file_fails),
	        T(test_fsync_new_dir_fails),
	        T(test_fsync_blob_dir_fails),
	        T(test_fsync_dir_and_rename_back_fail),
	        T(test_rename_fails),
	        T(test_rename_fails_after_release),
	        T(test_write_enospc),
	        T(test_stream_64mib),
	        T(test_cache_bounded),
	        T(test_threads_distinct_uploads),
	        T(test_threads_same_upload),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
