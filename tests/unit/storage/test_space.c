/* Unit tests for storage/space.c: --min-free values (what is accepted and
 * what it stands for), the guard against a real statvfs, and readiness
 * of a data directory in a temp directory that the tests rename away,
 * replace and make read-only. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/rc.h"
#include "storage/space.h"

#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)

/* ---- parsing ---- */

static void
expect_min(const char *s, uint64_t bytes, unsigned bp)
{
	struct space_min m = {12345, 678};

	if (space_min_parse(s, &m) != RC_OK)
		fail_msg("refused: \"%s\"", s);
	if (m.bytes != bytes || m.bp != bp)
		fail_msg("\"%s\": got %llu bytes, %u bp; want %llu, %u", s,
		         (unsigned long long)m.bytes, m.bp,
		         (unsigned long long)bytes, bp);
}

static void
test_parse_good(void **state)
{
	(void)state;
	expect_min("0", 0, 0);
	expect_min("0%", 0, 0);
	expect_min("0G", 0, 0);
	expect_min("1", 1, 0);
	expect_min("1073741824", GiB, 0);
	expect_min("500M", 500 * MiB, 0);
	expect_min("500m", 500 * MiB, 0);
	expect_min("500Mi", 500 * MiB, 0);
	expect_min("2G", 2 * GiB, 0);
	expect_min("2Gi", 2 * GiB, 0);
	expect_min("64K", 64 * 1024, 0);
	expect_min("3T", 3 * 1024 * GiB, 0);
	expect_min("24M", 24 * MiB, 0);
	expect_min("5%", 0, 500);
	expect_min("2.5%", 0, 250);
	expect_min("0.25%", 0, 25);
	expect_min("0.5%", 0, 50);
	expect_min("100%", 0, 10000);
	expect_min("100.00%", 0, 10000);
	expect_min("18446744073709551615", UINT64_MAX, 0);
	expect_min("16777215T", UINT64_C(16777215) << 40, 0);
	/* a size and a share: the larger counts */
	expect_min("1G,2%", GiB, 200);
	expect_min("2%,1G", GiB, 200);
	expect_min(SPACE_MIN_DEFAULT, GiB, 200);
	expect_min("0,0%", 0, 0);
	expect_min("1,5%", 1, 500);
	expect_min("500m,0.5%", 500 * MiB, 50);
}

static void
test_parse_bad(void **state)
{
	static const char *const bad[] = {
	        "",
	        " ",
	        "-1",
	        "+1",
	        "1 ",
	        " 1",
	        "1.5",
	        "1.5G",
	        "1e9",
	        "0x10",
	        "G",
	        "1GB",
	        "1Gib",
	        "1iG",
	        "1i",
	        "1P",
	        "1k ",
	        "%",
	        "5%%",
	        "-5%",
	        "101%",
	        "100.01%",
	        "1.234%",
	        ".5%",
	        "5 %",
	        "5%M",
	        "7.%",
	        "2G%",
	        "18446744073709551616",
	        "16777216T",
	        "99999999999999999999%",
	        ",",
	        "1G,",
	        ",2%",
	        "1G,2G",
	        "2%,3%",
	        "1G,2%,3%",
	        "1G, 2%",
	        "1G;2%",
	        "1G,2%,",
	};
	struct space_min m = {12345, 678};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (space_min_parse(bad[i], &m) != RC_BAD_REQUEST)
			fail_msg("accepted: \"%s\"", bad[i]);
		assert_int_equal(m.bytes, 12345);
		assert_int_equal(m.bp, 678);
	}
	assert_int_equal(space_min_parse(NULL, &m), RC_BAD_REQUEST);
}

static void
test_min_bytes(void **state)
{
	struct space_min dflt, pct = {0, 250}, size = {500 * MiB, 0};

	(void)state;
	assert_int_equal(space_min_parse(SPACE_MIN_DEFAULT, &dflt), RC_OK);
	/* the default: 1 GiB up to a 50 GiB volume, 2% above */
	assert_int_equal(space_min_bytes(&dflt, 10 * GiB), GiB);
	assert_int_equal(space_min_bytes(&dflt, 50 * GiB), GiB);
	assert_int_equal(space_min_bytes(&dflt, 500 * GiB), 10 * GiB);
	assert_int_equal(space_min_bytes(&dflt, 0), GiB);
	assert_int_equal(space_min_bytes(&pct, 1000 * MiB), 25 * MiB);
	assert_int_equal(space_min_bytes(&pct, 0), 0);
	assert_int_equal(space_min_bytes(&size, 100 * GiB), 500 * MiB);
	/* no overflow on the largest volume */
	pct.bp = 10000;
	assert_int_equal(space_min_bytes(&pct, UINT64_MAX), UINT64_MAX);
	pct.bp = 5000;
	assert_int_equal(space_min_bytes(&pct, UINT64_MAX), UINT64_MAX / 2);
}

/* ---- a data directory ---- */

static char root[64], data[128];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static const char *
at(const char *rel)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", data, rel);
	return buf[i];
}

static int
setup(void **state)
{
	int fd;

	strcpy(root, "/tmp/berth-test-space-XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	snprintf(data, sizeof(data), "%s/data", root);
	if (mkdir(data, 0700) != 0 || mkdir(at("meta"), 0700) != 0 ||
	    mkdir(at("uploads"), 0700) != 0 || mkdir(at("blobs"), 0700) != 0 ||
	    mkdir(at("blobs/sha256"), 0700) != 0)
		return -1;
	fd = open(at("meta/data.mdb"), O_CREAT | O_WRONLY, 0600);
	return fd < 0 ? -1 : close(fd);
}

static int
teardown(void **state)
{
	return nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void
test_guard(void **state)
{
	struct space_min m = {0, 0};
	struct space *sp = NULL;
	struct statvfs vfs;
	uint64_t avail = 0, need = 0;

	(void)state;
	assert_int_equal(space_check(NULL, &avail, &need), RC_OK);
	assert_int_equal(space_open(data, &m, &sp), RC_OK);
	assert_int_equal(space_check(sp, &avail, &need), RC_OK); /* off */
	space_close(sp);

	m.bytes = UINT64_MAX;
	assert_int_equal(space_open(data, &m, &sp), RC_OK);
	assert_int_equal(space_check(sp, &avail, &need), RC_SPACE_LOW);
	assert_int_equal(need, UINT64_MAX);
	assert_int_equal(statvfs(data, &vfs), 0);
	/* what statvfs says, give or take what others write meanwhile */
	assert_true(avail <= (uint64_t)vfs.f_blocks * vfs.f_frsize);
	assert_true(avail > 0);
	space_close(sp);

	m.bytes = 1;
	assert_int_equal(space_open(data, &m, &sp), RC_OK);
	assert_int_equal(space_check(sp, &avail, &need), RC_OK);
	space_close(sp);

	/* a percentage of the volume: 100% is never free on a volume that
	 * holds this test's files */
	m = (struct space_min){0, 10000};
	assert_int_equal(space_open(data, &m, &sp), RC_OK);
	assert_int_equal(space_check(sp, &avail, &need), RC_SPACE_LOW);
	assert_int_equal(need, (uint64_t)vfs.f_blocks * vfs.f_frsize);
	space_close(sp);
	space_close(NULL);
}

/* One readiness probe: its rc, reason and change flag. */
static int
probe(struct space *sp, char *why, size_t len, int want_changed)
{
	int changed = -1, rc = space_ready(sp, why, len, &changed);

	assert_int_equal(changed, want_changed);
	return rc;
}

static void
test_ready(void **state)
{
	struct space_min m = {0, 0};
	struct space *sp = NULL;
	char why[256], away[160];
	int fd;

	(void)state;
	assert_int_not_equal(space_open(at("nope"), &m, &sp), RC_OK);
	assert_int_equal(space_open(data, &m, &sp), RC_OK);
	assert_int_equal(probe(sp, why, sizeof(why), 0), RC_OK);
	assert_string_equal(why, "");
	assert_int_equal(probe(sp, why, sizeof(why), 0), RC_OK);

	/* renamed away: gone; back: ready again */
	snprintf(away, sizeof(away), "%s/away", root);
	assert_int_equal(rename(data, away), 0);
	assert_int_equal(probe(sp, why, sizeof(why), 1), -ENOENT);
	assert_string_equal(why, "data directory is gone");
	assert_int_equal(probe(sp, why, sizeof(why), 0), -ENOENT);
	/* an empty directory in its place (or a volume mounted over it)
	 * is not the one the server opened */
	assert_int_equal(mkdir(data, 0700), 0);
	assert_int_equal(probe(sp, why, sizeof(why), 0), -ESTALE);
	assert_string_equal(why,
	                    "data directory is not the one opened at start");
	assert_int_equal(rmdir(data), 0);
	assert_int_equal(rename(away, data), 0);
	assert_int_equal(probe(sp, why, sizeof(why), 1), RC_OK);

	/* the index file replaced */
	assert_int_equal(rename(at("meta/data.mdb"), at("meta/old.mdb")), 0);
	assert_int_equal(probe(sp, why, sizeof(why), 1), -ENOENT);
	assert_string_equal(why, "index file meta/data.mdb is gone");
	fd = open(at("meta/data.mdb"), O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(probe(sp, why, sizeof(why), 0), -ESTALE);
	assert_int_equal(rename(at("meta/old.mdb"), at("meta/data.mdb")), 0);
	assert_int_equal(probe(sp, why, sizeof(why), 1), RC_OK);

	/* uploads/ gone: nothing could be pushed */
	assert_int_equal(rmdir(at("uploads")), 0);
	assert_int_equal(probe(sp, why, sizeof(why), 1), -ENOENT);
	assert_non_null(strstr(why, "uploads/ is not writable"));
	assert_int_equal(mkdir(at("uploads"), 0700), 0);
	assert_int_equal(probe(sp, why, sizeof(why), 1), RC_OK);
	/* not writable by this user (root writes anyway: access says so) */
	assert_int_equal(chmod(at("blobs/sha256"), 0500), 0);
	if (geteuid() != 0) {
		assert_int_equal(probe(sp, why, sizeof(why), 1), -EACCES);
		assert_non_null(strstr(why, "blobs/sha256/ is not writable"));
		assert_int_equal(chmod(at("blobs/sha256"), 0700), 0);
		assert_int_equal(probe(sp, why, sizeof(why), 1), RC_OK);
	} else {
		assert_int_equal(probe(sp, why, sizeof(why), 0), RC_OK);
		assert_int_equal(chmod(at("blobs/sha256"), 0700), 0);
	}
	space_close(sp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_good),
	        cmocka_unit_test(test_parse_bad),
	        cmocka_unit_test(test_min_bytes),
	        cmocka_unit_test(test_guard),
	        cmocka_unit_test(test_ready),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
