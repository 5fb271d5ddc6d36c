/* Unit tests for storage/backup_tar.c: archives written member by member
 * (from memory and from files, pulled in small pieces) read back the same;
 * every truncation and a flipped byte are refused; errors of a member's
 * source and of a reader's callback end the stream. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/rc.h"
#include "storage/backup.h"

#define BIG (3u * 1024u * 1024u + 17u) /* crosses the writer's buffer */

struct src {
	unsigned char *big;
	int fd; /* a file holding big */
	size_t i;
	int fail_at;      /* member index whose next() fails, -1 none */
	uint64_t fd_size; /* size announced for the file member */
};

static const char small[] = "{\"format\":\"test\"}";
static unsigned char block[512];

static int
next(void *arg, struct backup_member *m)
{
	struct src *s = arg;
	size_t i = s->i++;

	if ((int)i == s->fail_at)
		return -EIO;
	switch (i) {
	case 0:
		m->name = "header.json";
		m->data = small;
		m->size = strlen(small);
		return 1;
	case 1:
		m->name = "empty";
		m->data = "";
		m->size = 0;
		return 1;
	case 2:
		m->name = "one-block";
		m->data = block;
		m->size = sizeof(block);
		return 1;
	case 3:
		m->name = "blobs/sha256/big";
		m->fd = s->fd;
		m->size = s->fd_size;
		return 1;
	}
	return 0;
}

static int
write_archive(struct src *s, int level, int workers, size_t piece, int out)
{
	struct backup_writer *w = NULL;
	unsigned char *buf = malloc(piece);
	ssize_t n;
	int rc;

	assert_non_null(buf);
	assert_int_equal(lseek(s->fd, 0, SEEK_SET), 0);
	assert_int_equal(backup_writer_open(level, workers, next, s, &w), 0);
	while ((n = backup_writer_read(w, buf, piece)) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	rc = (int)n;
	backup_writer_close(w);
	free(buf);
	return rc;
}

struct got {
	char names[8][128];
	uint64_t sizes[8];
	unsigned char *big; /* the data of member 3 */
	size_t big_len;
	int n, ended, stop_at;
};

static int
g_begin(void *arg, const char *name, uint64_t size)
{
	struct got *g = arg;

	if (g->n == g->stop_at)
		return 42;
	assert_true(g->n < 8);
	snprintf(g->names[g->n], sizeof(g->names[0]), "%s", name);
	g->sizes[g->n] = size;
	return 0;
}

static int
g_data(void *arg, const void *p, size_t n)
{
	struct got *g = arg;

	if (g->n == 3) {
		assert_true(g->big_len + n <= BIG);
		memcpy(g->big + g->big_len, p, n);
		g->big_len += n;
	}
	return 0;
}

static int
g_end(void *arg)
{
	struct got *g = arg;

	g->n++;
	g->ended++;
	return 0;
}

static int
tmpfd(void)
{
	char path[] = "/tmp/berth-unit-tar.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

static struct src
src_make(void)
{
	struct src s = {.fail_at = -1, .fd_size = BIG};

	s.big = malloc(BIG);
	assert_non_null(s.big);
	for (size_t i = 0; i < BIG; i++) /* some of it compressible */
		s.big[i] =
		        (unsigned char)(i < BIG / 2 ? (size_t)rand() : i % 7);
	memset(block, 'b', sizeof(block));
	s.fd = tmpfd();
	assert_int_equal(write(s.fd, s.big, BIG), (ssize_t)BIG);
	return s;
}

static void
src_free(struct src *s)
{
	close(s->fd);
	free(s->big);
}

static int
read_fd(int fd, struct got *g, char *err, size_t errlen)
{
	struct backup_reader_cb cb = {g_begin, g_data, g_end, g};

	memset(g->names, 0, sizeof(g->names));
	g->n = g->ended = 0;
	g->big_len = 0;
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return backup_read(fd, &cb, err, errlen);
}

static void
test_round_trip(void **state)
{
	struct src s = src_make();
	struct got g = {.stop_at = -1};
	char err[256];
	int out = tmpfd();

	(void)state;
	g.big = malloc(BIG);
	assert_int_equal(write_archive(&s, 3, 2, 1000, out), 0);
	assert_int_equal(read_fd(out, &g, err, sizeof(err)), 0);
	assert_int_equal(g.n, 4);
	assert_string_equal(g.names[0], "header.json");
	assert_int_equal(g.sizes[0], strlen(small));
	assert_string_equal(g.names[1], "empty");
	assert_int_equal(g.sizes[1], 0);
	assert_string_equal(g.names[2], "one-block");
	assert_int_equal(g.sizes[2], 512);
	assert_string_equal(g.names[3], "blobs/sha256/big");
	assert_int_equal(g.big_len, BIG);
	assert_memory_equal(g.big, s.big, BIG);
	/* level 19 and no worker threads read the same */
	close(out);
	out = tmpfd();
	s.i = 0;
	assert_int_equal(write_archive(&s, 19, 0, 65536, out), 0);
	assert_int_equal(read_fd(out, &g, err, sizeof(err)), 0);
	assert_int_equal(g.n, 4);
	assert_memory_equal(g.big, s.big, BIG);
	close(out);
	free(g.big);
	src_free(&s);
}

/* Copies the first len bytes of fd into a new file. */
static int
prefix_of(int fd, off_t len)
{
	int out = tmpfd();
	unsigned char *buf = malloc((size_t)len + 1);

	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)len, 0), len);
	assert_int_equal(write(out, buf, (size_t)len), len);
	free(buf);
	return out;
}

static void
test_truncated_and_corrupt(void **state)
{
	struct src s = src_make();
	struct got g = {.stop_at = -1};
	char err[256];
	int out = tmpfd(), rc;
	off_t size;

	(void)state;
	g.big = malloc(BIG);
	assert_int_equal(write_archive(&s, 3, 0, 4096, out), 0);
	size = lseek(out, 0, SEEK_END);
	assert_true(size > 1000);
	/* every cut: refused, never accepted */
	for (int k = 0; k < 40; k++) {
		off_t cut = k == 39 ? size - 1 : (size * k) / 39;
		int p = prefix_of(out, cut);
		rc = read_fd(p, &g, err, sizeof(err));
		if (rc == 0)
			fail_msg("a cut at %lld of %lld bytes was accepted",
			         (long long)cut, (long long)size);
		assert_true(rc == RC_SIZE_INVALID || rc == RC_CORRUPT);
		assert_true(strstr(err, "truncated") != NULL ||
		            strstr(err, "empty") != NULL ||
		            strstr(err, "corrupt") != NULL);
		close(p);
	}
	/* one byte changed in the middle */
	{
		unsigned char c;
		assert_int_equal(pread(out, &c, 1, size / 2), 1);
		c ^= 0x20;
		assert_int_equal(pwrite(out, &c, 1, size / 2), 1);
		rc = read_fd(out, &g, err, sizeof(err));
		assert_int_equal(rc, RC_CORRUPT);
		assert_non_null(strstr(err, "corrupt"));
	}
	/* data after the end: refused too */
	{
		int p = prefix_of(out, size);
		unsigned char junk[4] = {0x28, 0xb5, 0x2f, 0x00};
		assert_int_equal(write(p, junk, 4), 4);
		assert_true(read_fd(p, &g, err, sizeof(err)) != 0);
		close(p);
	}
	close(out);
	free(g.big);
	src_free(&s);
}

static void
test_errors_end_the_stream(void **state)
{
	struct src s = src_make();
	struct got g = {.stop_at = 2};
	char err[256];
	int out = tmpfd();

	(void)state;
	g.big = malloc(BIG);
	/* a source that fails: the writer says so */
	s.fail_at = 2;
	assert_int_equal(write_archive(&s, 3, 0, 4096, out), -EIO);
	/* a file shorter than announced */
	s.i = 0;
	s.fail_at = -1;
	s.fd_size = BIG + 1;
	close(out);
	out = tmpfd();
	assert_int_equal(write_archive(&s, 3, 0, 4096, out), RC_CORRUPT);
	/* a callback's code comes back as it returned it */
	s.i = 0;
	s.fd_size = BIG;
	close(out);
	out = tmpfd();
	assert_int_equal(write_archive(&s, 3, 0, 4096, out), 0);
	assert_int_equal(read_fd(out, &g, err, sizeof(err)), 42);
	assert_int_equal(g.n, 2);
	close(out);
	free(g.big);
	src_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_truncated_and_corrupt),
	        cmocka_unit_test(test_errors_end_the_stream),
	};

	srand(7);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
