/* Unit tests for storage/blob.c on real temp directories: the store's
 * layout, uploads, commits, bad names and removal. Failure injection,
 * volume and thread tests are in test_blob_faults.c. */
#include <dirent.h>

#include "test_blob_util.h"

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

/* The status of an upload, taken or not, without taking it. */
static void
test_upload_stored(void **state)
{
	struct fx *fx = *state;
	char uuid[BLOB_UUID_BUF], other[BLOB_UUID_BUF];
	struct blob_upload *up = start_upload(fx->bs, "x", uuid), *up2 = NULL;
	uint64_t size = 99;

	/* held by a request: what its file holds */
	assert_int_equal(blob_upload_stored(fx->bs, uuid, &size), 0);
	assert_int_equal(size, 1);
	assert_int_equal(blob_upload_write(up, "yz", 2), 0);
	assert_int_equal(blob_upload_stored(fx->bs, uuid, &size), 0);
	assert_int_equal(size, 3);
	blob_upload_release(up);

	/* idle in memory: its offset, and it stays free to take */
	size = 99;
	assert_int_equal(blob_upload_stored(fx->bs, uuid, &size), 0);
	assert_int_equal(size, 3);
	assert_int_equal(blob_upload_acquire(fx->bs, uuid, &up2), 0);
	blob_upload_release(up2);

	/* not in memory (a restart): the file's size */
	blob_store_close(fx->bs);
	assert_int_equal(blob_store_open(fx->data, &fx->bs), 0);
	size = 99;
	assert_int_equal(blob_upload_stored(fx->bs, uuid, &size), 0);
	assert_int_equal(size, 3);

	/* unknown and malformed ids */
	assert_int_equal(blob_upload_create(fx->bs, other), 0);
	assert_int_equal(blob_upload_delete(fx->bs, other), 0);
	assert_int_equal(blob_upload_stored(fx->bs, other, &size),
	                 RC_UPLOAD_UNKNOWN);
	assert_int_equal(blob_upload_stored(fx->bs, "../etc", &size),
	                 RC_UPLOAD_UNKNOWN);
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

/* ---- the data-directory lock ---- */

static void
test_data_lock(void **state)
{
	struct fx *fx = *state;
	char path[PATH_MAX + 64], buf[32];
	int fd = -1, fd2 = -1;
	long pid = 0;

	assert_int_equal(blob_data_lock_owner(fx->data, &pid), RC_NOT_FOUND);
	assert_int_equal(blob_data_lock(fx->data, &fd), 0);
	assert_true(fd >= 0);
	snprintf(path, sizeof(path), "%s/lock", fx->data);
	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	assert_file_is(path, buf, strlen(buf));
	/* A second open file description is refused, as another process
	 * would be (flock locks belong to the open file). */
	assert_int_equal(blob_data_lock(fx->data, &fd2), RC_BUSY);
	assert_int_equal(fd2, -1);
	assert_int_equal(blob_data_lock_owner(fx->data, &pid), 0);
	assert_int_equal(pid, (long)getpid());
	blob_data_unlock(fd);
	assert_int_equal(path_size(path), 0);
	assert_int_equal(blob_data_lock_owner(fx->data, &pid), RC_NOT_FOUND);
	assert_int_equal(blob_data_lock(fx->data, &fd2), 0);
	blob_data_unlock(fd2);
	blob_data_unlock(-1); /* fine */
	assert_int_equal(blob_data_lock("/nonexistent/berth/data", &fd),
	                 -ENOENT);
}

/* ---- walks and hashes ---- */

struct seen {
	char ids[8][80];
	char odd[8][128];
	int n, n_odd;
	uint64_t size[8];
	int regular[8];
};

static int
seen_fn(const struct blob_entry *e, void *arg)
{
	struct seen *s = arg;

	if (e->id == NULL) {
		assert_true(s->n_odd < 8);
		snprintf(s->odd[s->n_odd++], sizeof(s->odd[0]), "%s", e->path);
		return 0;
	}
	assert_true(s->n < 8);
	snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", e->id);
	s->size[s->n] = e->size;
	s->regular[s->n] = e->regular;
	assert_true(e->mtime > 0);
	s->n++;
	return 0;
}

static int
stop_fn(const struct blob_entry *e, void *arg)
{
	(*(int *)arg)++;
	return 42;
}

static void
test_files_walk(void **state)
{
	struct fx *fx = *state;
	char d1[DIGEST_BUF], path[PATH_MAX + 128], uuid[BLOB_UUID_BUF];
	struct seen s;
	int calls = 0, fd;

	memset(&s, 0, sizeof(s));
	put_blob(fx->bs, "walk me", 7, d1);
	/* Not berth's: a stray file, a file in the wrong directory, a
	 * directory where a blob belongs. */
	snprintf(path, sizeof(path), "%s/blobs/sha256/stray", fx->data);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s/%s.tmp", fx->data,
	         d1 + 7, d1 + 7);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/blobs/sha256/00", fx->data);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/blobs/sha256/00/%064d", fx->data, 0);
	assert_int_equal(mkdir(path, 0755), 0);

	assert_int_equal(blob_files_walk(fx->bs, seen_fn, &s), 0);
	assert_int_equal(s.n_odd, 2);
	assert_int_equal(s.n, 2);
	for (int i = 0; i < s.n; i++) {
		if (strcmp(s.ids[i], d1) == 0) {
			assert_int_equal(s.size[i], 7);
			assert_true(s.regular[i]);
		} else {
			assert_string_equal(s.ids[i] + 7,
			                    path + strlen(path) - 64);
			assert_false(s.regular[i]);
		}
	}
	assert_true(strcmp(s.odd[0], "blobs/sha256/stray") == 0 ||
	            strcmp(s.odd[1], "blobs/sha256/stray") == 0);

	memset(&s, 0, sizeof(s));
	assert_int_equal(blob_upload_create(fx->bs, uuid), 0);
	snprintf(path, sizeof(path), "%s/uploads/not-a-uuid", fx->data);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(blob_uploads_walk(fx->bs, seen_fn, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.ids[0], uuid);
	assert_int_equal(s.n_odd, 1);
	assert_string_equal(s.odd[0], "uploads/not-a-uuid");

	/* A callback's non-zero return stops the walk and is returned. */
	assert_int_equal(blob_uploads_walk(fx->bs, stop_fn, &calls), 42);
	assert_int_equal(calls, 1);
}

static void
test_file_hash(void **state)
{
	struct fx *fx = *state;
	char d1[DIGEST_BUF], got[DIGEST_BUF], path[PATH_MAX + 128];
	int fd;

	put_blob(fx->bs, "hash me", 7, d1);
	assert_int_equal(blob_file_hash(fx->bs, d1, got), 0);
	assert_string_equal(got, d1);
	final_path(fx, d1, path, sizeof(path));
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "H", 1, 0), 1);
	close(fd);
	assert_int_equal(blob_file_hash(fx->bs, d1, got), 0);
	assert_string_not_equal(got, d1);
	assert_int_equal(blob_remove(fx->bs, d1), 0);
	assert_int_equal(blob_file_hash(fx->bs, d1, got), RC_BLOB_UNKNOWN);
}

/* A small blob read whole (an image config for its labels). */
static void
test_read_small(void **state)
{
	struct fx *fx = *state;
	const char data[] = "{\"config\":{\"Labels\":{\"a\":\"b\"}}}";
	char d[DIGEST_BUF], other[DIGEST_BUF], *buf = NULL;
	size_t len = 0;

	put_blob(fx->bs, data, sizeof(data) - 1, d);
	assert_int_equal(blob_read(fx->bs, d, 1024, &buf, &len), 0);
	assert_int_equal(len, sizeof(data) - 1);
	assert_memory_equal(buf, data, len);
	free(buf);
	buf = NULL;
	assert_int_equal(blob_read(fx->bs, d, sizeof(data) - 2, &buf, &len),
	                 RC_TOO_LARGE);
	assert_null(buf);
	digest_of_buf("absent", 6, other);
	assert_int_equal(blob_read(fx->bs, other, 1024, &buf, &len),
	                 RC_BLOB_UNKNOWN);
	assert_null(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, blob_fx_setup, blob_fx_teardown)
	        T(test_open_creates_layout),
	        T(test_open_unwritable),
	        T(test_upload_commit),
	        T(test_empty_blob),
	        T(test_commit_wrong_digest),
	        T(test_commit_duplicate),
	        T(test_commit_replaces_damaged_file),
	        T(test_upload_survives_restart),
	        T(test_acquire_busy),
	        T(test_upload_stored),
	        T(test_bad_uuid),
	        T(test_bad_digest),
	        T(test_upload_delete),
	        T(test_read_small),
	        T(test_blob_remove),
	        T(test_data_lock),
	        T(test_files_walk),
	        T(test_file_hash),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
