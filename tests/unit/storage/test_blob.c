/* Unit tests for storage/blob.c on real temp directories. fsync, rename and
 * pwrite are wrapped (see test_blob.ldflags) so a test can make one call
 * fail with a chosen errno. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "common/digest.h"
#include "common/rc.h"
#include "storage/blob.h"

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

/* ---- fixture and helpers ---- */

struct fx {
	char tmp[64];
	char data[PATH_MAX];
	struct blob_store *bs;
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	faults_clear();
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

static int
teardown(void **state)
{
	struct fx *fx = *state;

	faults_clear();
	blob_store_close(fx->bs);
	rm_rf(fx->tmp);
	free(fx);
	return 0;
}

static int
path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static int64_t
path_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void
final_path(struct fx *fx, const char *digest, char *buf, size_t len)
{
	snprintf(buf, len, "%s/blobs/sha256/%.2s/%s", fx->data, digest + 7,
	         digest + 7);
}

static void
upload_file(struct fx *fx, const char *uuid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/uploads/%s", fx->data, uuid);
}

/* Reads a whole file into a malloc'ed buffer. */
static unsigned char *
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

static void
assert_file_is(const char *path, const void *data, size_t len)
{
	size_t got;
	unsigned char *buf = slurp(path, &got);

	assert_int_equal(got, len);
	assert_memory_equal(buf, data, len);
	free(buf);
}

/* Uploads data in one write and commits it; returns its digest. */
static void
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
static struct blob_upload *
start_upload(struct blob_store *bs, const char *data, char uuid[BLOB_UUID_BUF])
{
	struct blob_upload *up = NULL;

	assert_int_equal(blob_upload_create(bs, uuid), 0);
	assert_int_equal(blob_upload_acquire(bs, uuid, &up), 0);
	assert_int_equal(blob_upload_write(up, data, strlen(data)), 0);
	return up;
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

/* ---- store ---- */

static void
test_open_creates_layout(void **state)
{
	struct fx *fx = *state;
	struct blob_store *bs2 = NULL;
	char path[PATH_MAX + 64];
	struct stat st;
	DIR *d;
	struct dirent *e;
	int entries = 0;

	snprintf(path, sizeof(path), "%s/blobs/sha256", fx->data);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(path, sizeof(path), "%s/uploads", fx->data);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));

	/* the writability probe leaves nothing behind */
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			entries++;
	closedir(d);
	assert_int_equal(entries, 0);

	/* reopening an existing store works; so does a deep new path */
	assert_int_equal(blob_store_open(fx->data, &bs2), 0);
	blob_store_close(bs2);
	snprintf(path, sizeof(path), "%s/a/b/c/", fx->tmp);
	assert_int_equal(blob_store_open(path, &bs2), 0);
	blob_store_close(bs2);
	snprintf(path, sizeof(path), "%s/a/b/c/blobs/sha256", fx->tmp);
	assert_true(path_exists(path));
	blob_store_close(NULL);
}

static void
test_open_unwritable(void **state)
{
	struct fx *fx = *state;
	struct blob_store *bs2 = NULL;
	char path[PATH_MAX + 64];
	int fd, rc;

	/* a component of the path is a regular file */
	snprintf(path, sizeof(path), "%s/file", fx->tmp);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/file/data", fx->tmp);
	assert_int_equal(blob_store_open(path, &bs2), -ENOTDIR);
	assert_null(bs2);

	/* uploads/ exists but is a file */
	snprintf(path, sizeof(path), "%s/d2", fx->tmp);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/d2/uploads", fx->tmp);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/d2", fx->tmp);
	assert_int_equal(blob_store_open(path, &bs2), -ENOTDIR);

	/* procfs accepts no new directories */
	rc = blob_store_open("/proc/berth-test-nowhere/data", &bs2);
	assert_true(rc < 0 && rc > -1000);
	assert_null(bs2);

	/* without root, mode bits deny writing (root bypasses them) */
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "%s/ro", fx->tmp);
		assert_int_equal(mkdir(path, 0555), 0);
		snprintf(path, sizeof(path), "%s/ro/data", fx->tmp);
		assert_int_equal(blob_store_open(path, &bs2), -EACCES);
	}
}

/* ---- uploads ---- */

static void
test_upload_commit(void **state)
{
	struct fx *fx = *state;
	static const char *parts[] = {"hello ", "berth, ", "", "world\n"};
	const char *all = "hello berth, world\n";
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF];
	char path[PATH_MAX + 128], want[PATH_MAX + 128];
	struct blob_upload *up = NULL;
	uint64_t size = 0;
	unsigned char back[64];
	int fd = -1;

	assert_int_equal(blob_upload_create(fx->bs, uuid), 0);
	assert_int_equal(strlen(uuid), 36);
	assert_int_equal(uuid[14], '4');
	upload_file(fx, uuid, path, sizeof(path));
	assert_int_equal(path_size(path), 0);

	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	assert_int_equal(blob_upload_offset(up), 0);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		assert_int_equal(
		        blob_upload_write(up, parts[i], strlen(parts[i])), 0);
	assert_int_equal(blob_upload_offset(up), strlen(all));
	/* the upload survives a release between requests */
	blob_upload_release(up);
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	assert_int_equal(blob_upload_offset(up), strlen(all));

	digest_of_buf(all, strlen(all), digest);
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, strlen(all));

	final_path(fx, digest, want, sizeof(want));
	assert_file_is(want, all, strlen(all));
	assert_false(path_exists(path));
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up),
	                 RC_UPLOAD_UNKNOWN);

	assert_int_equal(blob_path(fx->bs, digest, path, sizeof(path)), 0);
	assert_string_equal(path, want);
	assert_int_equal(blob_path(fx->bs, digest, path, 20), -ENAMETOOLONG);

	size = 0;
	assert_int_equal(blob_stat(fx->bs, digest, &size), 0);
	assert_int_equal(size, strlen(all));
	size = 0;
	assert_int_equal(blob_open(fx->bs, digest, &fd, &size), 0);
	assert_int_equal(size, strlen(all));
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(read(fd, back, sizeof(back)), (ssize_t)strlen(all));
	assert_memory_equal(back, all, strlen(all));
	close(fd);
}

static void
test_empty_blob(void **state)
{
	struct fx *fx = *state;
	char digest[DIGEST_BUF], path[PATH_MAX + 128];
	uint64_t size = 1;

	put_blob(fx->bs, "", 0, digest);
	assert_string_equal(digest, "sha256:e3b0c44298fc1c149afbf4c8996fb924"
	                            "27ae41e4649b934ca495991b7852b855");
	assert_int_equal(blob_stat(fx->bs, digest, &size), 0);
	assert_int_equal(size, 0);
	final_path(fx, digest, path, sizeof(path));
	assert_int_equal(path_size(path), 0);
}

static void
test_commit_wrong_digest(void **state)
{
	struct fx *fx = *state;
	char uuid[BLOB_UUID_BUF], wrong[DIGEST_BUF], right[DIGEST_BUF];
	char path[PATH_MAX + 128], sha512[8 + 128 + 1];
	struct blob_upload *up = start_upload(fx->bs, "abc", uuid);
	uint64_t size = 7;

	digest_of_buf("abd", 3, wrong);
	digest_of_buf("abc", 3, right);
	assert_int_equal(blob_upload_commit(up, wrong, &size),
	                 RC_DIGEST_INVALID);
	assert_int_equal(size, 7);
	final_path(fx, wrong, path, sizeof(path));
	assert_false(path_exists(path));
	final_path(fx, right, path, sizeof(path));
	assert_false(path_exists(path));

	/* malformed or unsupported expectations change nothing either */
	assert_int_equal(blob_upload_commit(up, "sha256:xyz", &size),
	                 RC_DIGEST_INVALID);
	assert_int_equal(blob_upload_commit(up, "", &size), RC_DIGEST_INVALID);
	snprintf(sha512, sizeof(sha512), "sha512:%0128d", 0);
	assert_int_equal(blob_upload_commit(up, sha512, &size), RC_UNSUPPORTED);
	assert_int_equal(blob_upload_offset(up), 3);

	/* the upload goes on and commits with the digest of everything */
	assert_int_equal(blob_upload_write(up, "def", 3), 0);
	digest_of_buf("abcdef", 6, right);
	assert_int_equal(blob_upload_commit(up, right, &size), 0);
	assert_int_equal(size, 6);
	final_path(fx, right, path, sizeof(path));
	assert_file_is(path, "abcdef", 6);
}

static void
test_commit_duplicate(void **state)
{
	struct fx *fx = *state;
	const char *data = "same bytes twice";
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF];
	char path[PATH_MAX + 128], upath[PATH_MAX + 128];
	struct blob_upload *up;
	struct stat before, after;
	uint64_t size = 0;

	put_blob(fx->bs, data, strlen(data), digest);
	final_path(fx, digest, path, sizeof(path));
	assert_int_equal(stat(path, &before), 0);

	up = start_upload(fx->bs, data, uuid);
	upload_file(fx, uuid, upath, sizeof(upath));
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, strlen(data));
	assert_false(path_exists(upath));
	/* the stored file was left alone */
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	assert_file_is(path, data, strlen(data));
}

static void
test_commit_replaces_damaged_file(void **state)
{
	struct fx *fx = *state;
	const char *data = "the real content";
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF];
	char dir[PATH_MAX + 128], path[PATH_MAX + 128];
	struct blob_upload *up;
	uint64_t size = 0;
	int fd;

	digest_of_buf(data, strlen(data), digest);
	snprintf(dir, sizeof(dir), "%s/blobs/sha256/%.2s", fx->data,
	         digest + 7);
	assert_int_equal(mkdir(dir, 0755), 0);
	final_path(fx, digest, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "trunc", 5), 5);
	close(fd);

	up = start_upload(fx->bs, data, uuid);
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_file_is(path, data, strlen(data));
}

static void
test_upload_survives_restart(void **state)
{
	struct fx *fx = *state;
	const char *one = "first request; ", *two = "after a restart";
	char uuid[BLOB_UUID_BUF], digest[DIGEST_BUF], all[64];
	char path[PATH_MAX + 128];
	struct blob_upload *up = start_upload(fx->bs, one, uuid);
	uint64_t size = 0;

	blob_upload_release(up);
	blob_store_close(fx->bs);
	fx->bs = NULL;
	assert_int_equal(blob_store_open(fx->data, &fx->bs), 0);

	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	assert_int_equal(blob_upload_offset(up), strlen(one));
	assert_int_equal(blob_upload_write(up, two, strlen(two)), 0);
	snprintf(all, sizeof(all), "%s%s", one, two);
	digest_of_buf(all, strlen(all), digest);
	assert_int_equal(blob_upload_commit(up, digest, &size), 0);
	assert_int_equal(size, strlen(all));
	final_path(fx, digest, path, sizeof(path));
	assert_file_is(path, all, strlen(all));
}

static void
test_acquire_busy(void **state)
{
	struct fx *fx = *state;
	char uuid[BLOB_UUID_BUF];
	struct blob_upload *up = start_upload(fx->bs, "x", uuid), *up2 = NULL;

	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up2), RC_BUSY);
	assert_null(up2);
	assert_int_equal(blob_upload_delete(fx->bs, uuid), RC_BUSY);
	blob_upload_release(up);
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up2), 0);
	assert_int_equal(blob_upload_offset(up2), 1);
	blob_upload_release(up2);
	blob_upload_release(NULL);
}

static void
test_bad_uuid(void **state)
{
	struct fx *fx = *state;
	char uuid[BLOB_UUID_BUF], upper[BLOB_UUID_BUF], path[PATH_MAX + 128];
	char longer[BLOB_UUID_BUF + 1];
	struct blob_upload *up = NULL;
	int fd;

	assert_int_equal(blob_upload_create(fx->bs, uuid), 0);
	for (int i = 0; i < BLOB_UUID_BUF; i++)
		upper[i] = (char)(uuid[i] >= 'a' && uuid[i] <= 'f'
		                          ? uuid[i] - 'a' + 'A'
		                          : uuid[i]);
	snprintf(longer, sizeof(longer), "%s0", uuid);

	/* files that an unchecked name would reach */
	snprintf(path, sizeof(path), "%s/evil", fx->data);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	upload_file(fx, upper, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	upload_file(fx, longer, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);

	const char *bad[] = {
	        "../evil",
	        "",
	        upper,
	        longer,
	        "../../../../../../etc/passwd",
	        "0000000-0000-4000-8000-0000000000000",
	        "00000000-0000-1000-8000-000000000000", /* version 1 */
	        "00000000-0000-4000-c000-000000000000", /* wrong variant */
	        "00000000/000-4000-8000-000000000000",
	        NULL,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(blob_upload_acquire(fx->bs, bad[i], &up),
		                 RC_UPLOAD_UNKNOWN);
		assert_null(up);
		assert_int_equal(blob_upload_delete(fx->bs, bad[i]),
		                 RC_UPLOAD_UNKNOWN);
	}
	/* well-formed but never created */
	assert_int_equal(
	        blob_upload_acquire(
	                fx->bs, "00000000-0000-4000-8000-000000000000", &up),
	        RC_UPLOAD_UNKNOWN);
	snprintf(path, sizeof(path), "%s/evil", fx->data);
	assert_true(path_exists(path));
	/* the real one is fine */
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up), 0);
	blob_upload_release(up);
}

static void
test_bad_digest(void **state)
{
	struct fx *fx = *state;
	char upper[DIGEST_BUF], dir[PATH_MAX + 128], path[PATH_MAX + 256];
	char sha512[8 + 128 + 1], digest[DIGEST_BUF];
	uint64_t size = 42;
	int fd = -1;

	/* a file where an unchecked upper-case digest would lead */
	digest_of_buf("x", 1, digest);
	strcpy(upper, digest);
	for (int i = 7; i < DIGEST_STR_LEN; i++)
		if (upper[i] >= 'a' && upper[i] <= 'f')
			upper[i] = (char)(upper[i] - 'a' + 'A');
	snprintf(dir, sizeof(dir), "%s/blobs/sha256/%.2s", fx->data, upper + 7);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, upper + 7);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	fd = -1;

	const char *bad[] = {
	        "sha256:../../etc",
	        "sha256:../../../../../../../../../../../../../../etc/passwd",
	        "sha256:abc",
	        upper,
	        "sha256",
	        "",
	        NULL,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(blob_stat(fx->bs, bad[i], &size),
		                 RC_DIGEST_INVALID);
		assert_int_equal(blob_open(fx->bs, bad[i], &fd, &size),
		                 RC_DIGEST_INVALID);
		assert_int_equal(blob_remove(fx->bs, bad[i]),
		                 RC_DIGEST_INVALID);
		assert_int_equal(blob_path(fx->bs, bad[i], dir, sizeof(dir)),
		                 RC_DIGEST_INVALID);
	}
	assert_int_equal(size, 42);
	assert_int_equal(fd, -1);
	assert_true(path_exists(path));

	snprintf(sha512, sizeof(sha512), "sha512:%0128d", 0);
	assert_int_equal(blob_stat(fx->bs, sha512, &size), RC_UNSUPPORTED);
	assert_int_equal(blob_open(fx->bs, sha512, &fd, &size), RC_UNSUPPORTED);

	/* well-formed, not stored */
	assert_int_equal(blob_stat(fx->bs, digest, &size), RC_BLOB_UNKNOWN);
	assert_int_equal(blob_open(fx->bs, digest, &fd, &size),
	                 RC_BLOB_UNKNOWN);
	assert_int_equal(blob_remove(fx->bs, digest), RC_BLOB_UNKNOWN);
	assert_int_equal(size, 42);
	assert_int_equal(fd, -1);
}

static void
test_upload_delete(void **state)
{
	struct fx *fx = *state;
	char uuid[BLOB_UUID_BUF], uuid2[BLOB_UUID_BUF], path[PATH_MAX + 128];
	struct blob_upload *up = start_upload(fx->bs, "doomed", uuid);

	blob_upload_release(up);
	upload_file(fx, uuid, path, sizeof(path));
	assert_true(path_exists(path));
	assert_int_equal(blob_upload_delete(fx->bs, uuid), 0);
	assert_false(path_exists(path));
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up),
	                 RC_UPLOAD_UNKNOWN);
	assert_int_equal(blob_upload_delete(fx->bs, uuid), RC_UPLOAD_UNKNOWN);

	/* an upload that is not in memory (new process) */
	up = start_upload(fx->bs, "left over", uuid2);
	blob_upload_release(up);
	blob_store_close(fx->bs);
	fx->bs = NULL;
	assert_int_equal(blob_store_open(fx->data, &fx->bs), 0);
	assert_int_equal(blob_upload_delete(fx->bs, uuid2), 0);
	upload_file(fx, uuid2, path, sizeof(path));
	assert_false(path_exists(path));
}

static void
test_blob_remove(void **state)
{
	struct fx *fx = *state;
	char digest[DIGEST_BUF], path[PATH_MAX + 128];
	uint64_t size;

	put_blob(fx->bs, "short-lived", 11, digest);
	assert_int_equal(blob_remove(fx->bs, digest), 0);
	final_path(fx, digest, path, sizeof(path));
	assert_false(path_exists(path));
	assert_int_equal(blob_stat(fx->bs, digest, &size), RC_BLOB_UNKNOWN);
	assert_int_equal(blob_remove(fx->bs, digest), RC_BLOB_UNKNOWN);
}

/* ---- failure injection ---- */

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
	        T(test_open_creates_layout),
	        T(test_open_unwritable),
	        T(test_upload_commit),
	        T(test_empty_blob),
	        T(test_commit_wrong_digest),
	        T(test_commit_duplicate),
	        T(test_commit_replaces_damaged_file),
	        T(test_upload_survives_restart),
	        T(test_acquire_busy),
	        T(test_bad_uuid),
	        T(test_bad_digest),
	        T(test_upload_delete),
	        T(test_blob_remove),
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
