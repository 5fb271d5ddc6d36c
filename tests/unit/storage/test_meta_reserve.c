/* Unit tests of the index's head room on a full volume (meta_reserve.c):
 * the data file is allocated ahead of its last page, commits that grow the
 * index write into that room when the file cannot grow (a child process
 * with RLIMIT_FSIZE at the file's size stands for a full volume), adding
 * writes are refused once the room is low and cannot be topped up, and
 * LMDB's EIO for a short write on a full volume comes back as -ENOSPC.
 * fallocate, fstatvfs and mdb_txn_commit are wrapped
 * (test_meta_reserve.ldflags). */
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "test_meta_util.h"

/* ---- failure injection ---- */

int __real_fallocate(int fd, int mode, off_t off, off_t len);
int __wrap_fallocate(int fd, int mode, off_t off, off_t len);
int __real_fstatvfs(int fd, struct statvfs *sv);
int __wrap_fstatvfs(int fd, struct statvfs *sv);
int __real_mdb_txn_commit(MDB_txn *txn);
int __wrap_mdb_txn_commit(MDB_txn *txn);

static int falloc_errno;   /* fallocate fails with it when set */
static int falloc_calls;   /* calls seen */
static int commit_fail;    /* next commit fails with it when set */
static uint64_t vfs_avail; /* bytes fstatvfs reports free */

int
__wrap_fallocate(int fd, int mode, off_t off, off_t len)
{
	falloc_calls++;
	if (falloc_errno != 0) {
		errno = falloc_errno;
		return -1;
	}
	return __real_fallocate(fd, mode, off, len);
}

int
__wrap_fstatvfs(int fd, struct statvfs *sv)
{
	int rc = __real_fstatvfs(fd, sv);

	if (rc == 0) {
		sv->f_frsize = 4096;
		sv->f_bavail = vfs_avail / 4096;
	}
	return rc;
}

int
__wrap_mdb_txn_commit(MDB_txn *txn)
{
	if (commit_fail != 0) {
		int rc = commit_fail;

		commit_fail = 0;
		mdb_txn_abort(txn);
		return rc;
	}
	return __real_mdb_txn_commit(txn);
}

/* ---- fixture ---- */

/* An environment created with the given head room (0: the default). */
static int
open_with(void **state, uint64_t reserve)
{
	falloc_errno = 0;
	falloc_calls = 0;
	commit_fail = 0;
	vfs_avail = 1ull << 40;
	return meta_fx_setup_reserve(state, reserve);
}

static int
setup(void **state)
{
	return open_with(state, 0);
}

static int
setup_small(void **state)
{
	return open_with(state, 64u << 10);
}

static int
setup_none(void **state)
{
	return open_with(state, META_RESERVE_NONE);
}

static int
teardown(void **state)
{
	return meta_fx_teardown(state);
}

static void
data_stat(struct fx *f, struct stat *st)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
	assert_int_equal(stat(path, st), 0);
}

/* One manifest of two blobs with n tags: deleting it rewrites many more
 * pages than LMDB's freelist holds, so its commit needs new pages. */
static void
populate(struct fx *f, char m1[DIGEST_BUF], int n)
{
	char b1[DIGEST_BUF], b2[DIGEST_BUF], tag[32];

	two_blobs(f, "r", b1, b2);
	dg(m1, 100);
	for (int i = 0; i < n; i++) {
		snprintf(tag, sizeof(tag), "tag-%05d", i);
		put_image(f, "r", m1, tag, b1, b2, T0);
	}
}

/* Closes the index, deletes m1 in a child process whose files cannot
 * grow past the data file's current size (a full volume), reopens.
 * Returns the child's meta_manifest_delete result. */
static int
delete_on_full_volume(struct fx *f, const char *m1)
{
	struct stat st;
	int pipefd[2], status, rc = 1;
	pid_t pid;

	meta_close(f->m);
	f->m = NULL;
	data_stat(f, &st);
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {(rlim_t)st.st_size, RLIM_INFINITY};
		struct meta *m = NULL;

		close(pipefd[0]);
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(3);
		rc = meta_open(f->dir, &f->opt, &m);
		if (rc == 0)
			rc = meta_manifest_delete(m, "r", m1, T0 + 1);
		meta_close(m);
		if (write(pipefd[1], &rc, sizeof(rc)) != (ssize_t)sizeof(rc))
			_exit(4);
		_exit(0);
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &rc, sizeof(rc)), (ssize_t)sizeof(rc));
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	OK(meta_open(f->dir, &f->opt, &f->m));
	return rc;
}

/* ---- tests ---- */

static void
test_room_allocated_at_open(void **state)
{
	struct fx *f = *state;
	struct stat st;

	assert_true(meta_reserve_room(f->m) >= (8u << 20));
	data_stat(f, &st);
	/* allocated, not a sparse tail */
	assert_true((uint64_t)st.st_size >= (8u << 20));
	assert_true((uint64_t)st.st_blocks * 512u >= (8u << 20));
}

static void
test_delete_uses_room_on_full_volume(void **state)
{
	struct fx *f = *state;
	char m1[DIGEST_BUF];
	struct meta_manifest mm;

	populate(f, m1, 1500);
	OK(delete_on_full_volume(f, m1));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", m1, 0, &mm));
	RC(RC_MANIFEST_UNKNOWN,
	   meta_manifest_get(f->m, "r", "tag-00000", 0, &mm));
}

/* The defect without head room: the same delete cannot commit. */
static void
test_delete_fails_without_room(void **state)
{
	struct fx *f = *state;
	char m1[DIGEST_BUF];
	struct meta_manifest mm;
	int rc;

	assert_int_equal(meta_reserve_room(f->m), 0);
	populate(f, m1, 1500);
	rc = delete_on_full_volume(f, m1);
	assert_int_not_equal(rc, 0);
	OK(meta_manifest_get(f->m, "r", "tag-00000", 0, &mm));
}

static void
test_adding_refused_when_room_low(void **state)
{
	struct fx *f = *state;
	char uuid[40], m1[DIGEST_BUF], b1[DIGEST_BUF], b2[DIGEST_BUF];
	struct mi x;
	uint64_t sz = 0;
	int i, rc = 0;

	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(m1, 100), "keep", b1, b2, T0);
	/* the volume is full: the room cannot be topped up */
	falloc_errno = ENOSPC;
	for (i = 0; i < 20000; i++) {
		snprintf(uuid, sizeof(uuid), "upload-%06d", i);
		rc = meta_upload_put(f->m, uuid, "r", T0);
		if (rc != 0)
			break;
	}
	RC(-ENOSPC, rc);
	assert_true(falloc_calls > 0);
	assert_true(meta_reserve_room(f->m) < (32u << 10));
	/* every adding write is refused ... */
	RC(-ENOSPC, meta_upload_put(f->m, "another", "r", T0));
	RC(-ENOSPC, put(f, "r", dg(m1, 101), "new",
	                mk_info(&x, MT_OCI_MANIFEST, NULL, NULL, 2, b1,
	                        (int64_t)10, b2, (int64_t)20),
	                T0, NULL));
	RC(-ENOSPC, meta_blob_mount(f->m, "other", b1, "r", T0, &sz));
	/* ... deletes go through */
	for (int j = 0; j < i; j++) {
		snprintf(uuid, sizeof(uuid), "upload-%06d", j);
		OK(meta_upload_delete(f->m, uuid));
	}
	OK(meta_tag_delete(f->m, "r", "keep", T0));
	/* space comes back: the room is topped up, pushes work again */
	falloc_errno = 0;
	OK(meta_upload_put(f->m, "after", "r", T0));
	assert_true(meta_reserve_room(f->m) >= (32u << 10));
	OK(meta_upload_put(f->m, "after-2", "r", T0));
}

static void
test_short_write_on_full_volume_is_nospace(void **state)
{
	struct fx *f = *state;

	/* LMDB's short write (EIO) with the volume full: no space */
	vfs_avail = 0;
	commit_fail = EIO;
	RC(-ENOSPC, meta_upload_put(f->m, "u1", "r", T0));
	/* with room left on the volume, EIO is a failing device */
	vfs_avail = 1ull << 30;
	commit_fail = EIO;
	RC(-EIO, meta_upload_put(f->m, "u1", "r", T0));
	/* an ENOSPC stays what it is */
	commit_fail = ENOSPC;
	RC(-ENOSPC, meta_upload_put(f->m, "u1", "r", T0));
	OK(meta_upload_put(f->m, "u1", "r", T0));
	OK(meta_upload_check(f->m, "u1", "r"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_room_allocated_at_open,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_delete_uses_room_on_full_volume, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_delete_fails_without_room,
	                                        setup_none, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_adding_refused_when_room_low, setup_small,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_short_write_on_full_volume_is_nospace, setup,
	                teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
