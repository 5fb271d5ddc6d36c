/* Unit tests for the asynchronous write path of storage/blob_writer.c:
 * blob_upload_submit/blob_upload_sync, the writer threads, O_DIRECT for
 * aligned batches, and the flushes started while an upload arrives.
 * pwrite and fdatasync are wrapped (see test_blob_async.ldflags) so a test
 * can make the writer threads' calls fail. */
#include <pthread.h>
#include <stdatomic.h>

#include "test_blob_util.h"

#define ALIGN BLOB_WRITE_ALIGN
#define MIB   ((size_t)1 << 20)

int __real_fdatasync(int fd);
ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
int __wrap_fdatasync(int fd);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);

/* Faults, armed by the test, hit by whichever thread calls. */
static atomic_int pwrite_fail_after = -1; /* calls to let through, -1 off */
static atomic_int pwrite_errno;
static atomic_int fdatasync_fail;      /* next fdatasync fails with EIO */
static atomic_int refuse_direct;       /* O_DIRECT writes fail EINVAL */
static atomic_int direct_writes;       /* pwrites made with O_DIRECT */
static atomic_int cached_after_refuse; /* cached pwrites once refused */
static atomic_int fdatasyncs;

static void
faults_clear(void)
{
	atomic_store(&pwrite_fail_after, -1);
	atomic_store(&fdatasync_fail, 0);
	atomic_store(&refuse_direct, 0);
	atomic_store(&direct_writes, 0);
	atomic_store(&cached_after_refuse, 0);
	atomic_store(&fdatasyncs, 0);
}

ssize_t
__wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	int fl = fcntl(fd, F_GETFL);
	int left = atomic_load(&pwrite_fail_after);

	if (fl >= 0 && (fl & O_DIRECT)) {
		if (atomic_load(&refuse_direct)) {
			errno = EINVAL;
			return -1;
		}
		atomic_fetch_add(&direct_writes, 1);
	} else if (atomic_load(&refuse_direct)) {
		atomic_fetch_add(&cached_after_refuse, 1);
	}
	if (left == 0) {
		atomic_store(&pwrite_fail_after, -1);
		errno = atomic_load(&pwrite_errno);
		return -1;
	}
	if (left > 0)
		atomic_fetch_sub(&pwrite_fail_after, 1);
	return __real_pwrite(fd, buf, n, off);
}

int
__wrap_fdatasync(int fd)
{
	atomic_fetch_add(&fdatasyncs, 1);
	if (atomic_exchange(&fdatasync_fail, 0)) {
		errno = EIO;
		return -1;
	}
	return __real_fdatasync(fd);
}

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

/* Whether the filesystem under dir takes O_DIRECT writes (tmpfs before
 * Linux 6.6 does not); tests assert the direct path only where it can be
 * taken. */
static int
dir_takes_direct(const char *dir)
{
	char path[PATH_MAX];
	void *p = NULL;
	int fd, ok = 0;

	snprintf(path, sizeof(path), "%s/direct-probe", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	if (posix_memalign(&p, ALIGN, ALIGN) == 0) {
		memset(p, 0, ALIGN);
		ok = __real_pwrite(fd, p, ALIGN, 0) == (ssize_t)ALIGN;
		free(p);
	}
	close(fd);
	unlink(path);
	return ok;
}

/* Deterministic content: byte i of the stream. */
static unsigned char
byte_at(size_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

static void
fill(unsigned char *buf, size_t from, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = byte_at(from + i);
}

static unsigned char *
aligned_buf(size_t len)
{
	void *p = NULL;

	assert_int_equal(posix_memalign(&p, ALIGN, len), 0);
	return p;
}

static void
digest_of_stream(size_t len, char digest[DIGEST_BUF])
{
	unsigned char *all = malloc(len ? len : 1);

	assert_non_null(all);
	fill(all, 0, len);
	digest_of_buf(all, len, digest);
	free(all);
}

/* Streams bytes [from, to) of the deterministic content through submit,
 * the way the registry does: two aligned buffers, batches of `batch` bytes
 * ending on an ALIGN boundary of the file, the second buffer filled while
 * the first is written. Returns the first error. */
static int
stream(struct blob_upload *up, size_t from, size_t to, size_t batch)
{
	unsigned char *b[2] = {aligned_buf(batch), aligned_buf(batch)};
	size_t pos = from;
	int i = 0, rc = 0;

	while (pos < to && rc == 0) {
		size_t n = batch - (size_t)(blob_upload_offset(up) % ALIGN);

		if (n > to - pos)
			n = to - pos;
		fill(b[i], pos, n);
		rc = blob_upload_submit(up, b[i], n);
		pos += n;
		i ^= 1;
	}
	if (rc == 0)
		rc = blob_upload_sync(up);
	free(b[0]);
	free(b[1]);
	return rc;
}

/* ---- tests ---- */

/* Aligned batches after an unaligned start, a synchronous write in the
 * middle, an odd tail: the committed file is the stream, byte for byte. */
static void
test_submit_roundtrip(void **state)
{
	struct fx *fx = *state;
	const size_t total = 5 * MIB + 12345;
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF], path[PATH_MAX + 128];
	unsigned char head[1000], *all;
	struct blob_upload *up;
	uint64_t size = 0;
	size_t got;

	assert_int_equal(blob_upload_create(fx->bs, uuid), 0);
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	fill(head, 0, sizeof(head));
	assert_int_equal(blob_upload_write(up, head, sizeof(head)), 0);
	assert_int_equal(stream(up, sizeof(head), 2 * MIB, 256 * 1024), 0);
	assert_int_equal(blob_upload_offset(up), 2 * MIB);
	assert_int_equal(stream(up, 2 * MIB, total, MIB), 0);
	assert_int_equal(blob_upload_offset(up), total);

	digest_of_stream(total, digest);
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, total);
	final_path(fx, digest, path, sizeof(path));
	all = slurp(path, &got);
	assert_int_equal(got, total);
	for (size_t i = 0; i < total; i += 4093)
		assert_int_equal(all[i], byte_at(i));
	assert_int_equal(all[total - 1], byte_at(total - 1));
	free(all);

	if (dir_takes_direct(fx->data))
		assert_true(atomic_load(&direct_writes) >= 4);
}

/* A batch whose write fails on the writer thread: the error comes back on
 * the next call, the file and offset are where that batch began, and the
 * upload, acquired again, continues from there to a good commit. */
static void
test_submit_write_fails(void **state)
{
	struct fx *fx = *state;
	const size_t batch = 256 * 1024, total = 3 * MIB;
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF], path[PATH_MAX + 128];
	unsigned char *b[2] = {aligned_buf(batch), aligned_buf(batch)};
	struct blob_upload *up;
	uint64_t size = 0;
	int rc = 0, i;

	assert_int_equal(blob_upload_create(fx->bs, uuid), 0);
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	upload_file(fx, uuid, path, sizeof(path));

	atomic_store(&pwrite_errno, ENOSPC);
	atomic_store(&pwrite_fail_after, 2); /* the third batch fails */
	for (i = 0; i < 4 && rc == 0; i++) {
		/* a buffer is refilled only after the next submit */
		fill(b[i & 1], (size_t)i * batch, batch);
		rc = blob_upload_submit(up, b[i & 1], batch);
	}
	/* The failure of batch 3 (index 2) shows on the submit of batch 4,
	 * which itself was not taken. */
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(i, 4);
	assert_int_equal(blob_upload_offset(up), 2 * batch);
	assert_int_equal(path_size(path), (int64_t)(2 * batch));
	/* the hash holds the lost batch: the upload refuses more bytes */
	assert_int_equal(blob_upload_submit(up, b[0], batch), -EIO);
	blob_upload_release(up);

	/* Acquired again, the hash is rebuilt from the file. */
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	assert_int_equal(blob_upload_offset(up), 2 * batch);
	assert_int_equal(stream(up, 2 * batch, total, batch), 0);
	digest_of_stream(total, digest);
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, total);
	free(b[0]);
	free(b[1]);
}

/* A flush that fails while the upload arrives: the kernel may have lost
 * bytes, so the commit fails and the upload starts over from zero. */
static void
test_flush_fails(void **state)
{
	struct fx *fx = *state;
	const size_t total = 40 * MIB; /* past one flush interval */
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF], path[PATH_MAX + 128];
	struct blob_upload *up;
	uint64_t size = 0;

	assert_int_equal(blob_upload_create(fx->bs, uuid), 0);
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	upload_file(fx, uuid, path, sizeof(path));
	digest_of_stream(total, digest);

	atomic_store(&fdatasync_fail, 1);
	assert_int_equal(stream(up, 0, total, MIB), 0);
	assert_true(atomic_load(&fdatasyncs) >= 1);
	assert_int_equal(blob_upload_commit(up, digest, &size), -EIO);
	assert_int_equal(blob_upload_offset(up), 0);
	assert_int_equal(path_size(path), 0);
	blob_upload_release(up);

	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	assert_int_equal(blob_upload_offset(up), 0);
	assert_int_equal(stream(up, 0, total, MIB), 0);
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, total);
}

/* A filesystem that takes O_DIRECT in fcntl but refuses the write: the
 * store goes back to the page cache for good, and nothing is lost. */
static void
test_direct_refused(void **state)
{
	struct fx *fx = *state;
	const size_t total = 2 * MIB;
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF], path[PATH_MAX + 128];
	struct blob_upload *up;
	uint64_t size = 0;

	if (!dir_takes_direct(fx->data))
		skip();
	atomic_store(&refuse_direct, 1);
	assert_int_equal(blob_upload_create(fx->bs, uuid), 0);
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	assert_int_equal(stream(up, 0, total, 256 * 1024), 0);
	digest_of_stream(total, digest);
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, total);
	assert_int_equal(atomic_load(&direct_writes), 0);
	assert_true(atomic_load(&cached_after_refuse) >= 8);
	final_path(fx, digest, path, sizeof(path));
	assert_int_equal(path_size(path), (int64_t)total);
}

/* Release right after a submit waits for the write: the next request on
 * the upload sees every byte. */
static void
test_release_waits(void **state)
{
	struct fx *fx = *state;
	const size_t batch = MIB;
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF], path[PATH_MAX + 128];
	unsigned char *b = aligned_buf(batch);
	struct blob_upload *up;
	uint64_t size = 0;

	assert_int_equal(blob_upload_create(fx->bs, uuid), 0);
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	upload_file(fx, uuid, path, sizeof(path));
	fill(b, 0, batch);
	assert_int_equal(blob_upload_submit(up, b, batch), 0);
	blob_upload_release(up);
	memset(b, 0, batch); /* the store must be done with it */
	assert_int_equal(path_size(path), (int64_t)batch);

	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	assert_int_equal(blob_upload_offset(up), batch);
	digest_of_stream(batch, digest);
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, batch);
	free(b);
}

/* Several uploads stream at once through the shared writer threads. */
struct job {
	struct blob_store *bs;
	size_t total;
	int rc;
};

static void *
job_main(void *arg)
{
	struct job *j = arg;
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF];
	struct blob_upload *up;
	uint64_t size = 0;

	j->rc = blob_upload_create(j->bs, uuid);
	if (j->rc == 0)
		j->rc = blob_upload_acquire(j->bs, uuid, &up);
	if (j->rc != 0)
		return NULL;
	j->rc = stream(up, 0, j->total, 256 * 1024);
	digest_of_stream(j->total, digest);
	if (j->rc == 0)
		j->rc = blob_upload_commit(up, digest, &size);
	if (j->rc != 0)
		blob_upload_release(up);
	else if (size != j->total)
		j->rc = -1;
	return NULL;
}

static void
test_concurrent_streams(void **state)
{
	struct fx *fx = *state;
	enum { N = 8 };
	pthread_t th[N];
	struct job jobs[N];

	for (int i = 0; i < N; i++) {
		/* different sizes: different blobs */
		jobs[i] = (struct job){fx->bs, MIB + (size_t)i * 70001, -1};
		assert_int_equal(
		        pthread_create(&th[i], NULL, job_main, &jobs[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(jobs[i].rc, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_submit_roundtrip, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_submit_write_fails, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_flush_fails, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_direct_refused, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_release_waits, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_concurrent_streams, setup,
	                                        teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
