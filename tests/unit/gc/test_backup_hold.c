/* A backup against the collector, on a real index and blob directory: a
 * snapshot taken under a hold lists an image that is then deleted and
 * collected; its files stay (intents kept) until the last hold goes, and
 * the next run unlinks them. Also the snapshot's rows loaded into a new
 * index in small pieces: a partial one (one repository, a layer shared
 * with another) whose counts the repair sets right, after which the check
 * is clean, with the cluster's pins; rows with a bad magic, of another schema
 * or cut short are refused. */
#include "test_gc_util.h"

#include <sys/stat.h>

static int
only_a(const char *repo, void *arg)
{
	(void)arg;
	return strcmp(repo, "a") == 0;
}

static int
intents_count(struct gfx *x)
{
	char(*list)[DIGEST_BUF] = NULL;
	size_t n = 0;

	OK(meta_gc_intents(x->base.m, &list, &n));
	free(list);
	return (int)n;
}

static void
test_hold_keeps_files(void **state)
{
	struct gfx *x = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF];
	struct meta_backup snap;
	struct gc_report r;
	int found = 0;

	push_blob(x, "a", "layer one of a", T0, b1);
	push_blob(x, "a", "config of a", T0, b2);
	put_image(&x->base, "a", dg(m1, 100), "v1", b1, b2, T0);
	/* The backup: hold first, then its snapshot. */
	gc_hold(x->g);
	gc_hold(x->g); /* a second backup */
	assert_int_equal(gc_holds(x->g), 2);
	OK(meta_backup_snapshot(x->base.m, NULL, NULL, &snap));
	for (size_t i = 0; i < snap.n_blobs; i++)
		found += strcmp(snap.blobs[i].digest, b1) == 0;
	assert_int_equal(found, 1);
	/* Then the image goes and the collector takes its rows. */
	OK(meta_tag_delete(x->base.m, "a", "v1", T0 + 10));
	OK(gc_run(x->g, 0, T0 + 10 * GRACE, NULL, NULL, &r));
	assert_true(listed(&r, GC_BLOB, b1));
	assert_true(listed(&r, GC_BLOB, b2));
	gc_report_free(&r);
	RC(RC_BLOB_UNKNOWN, meta_blob_exists(x->base.m, b1, &(uint64_t){0}));
	/* The files the snapshot lists are still there, intents kept. */
	assert_true(file_exists(x, b1));
	assert_true(file_exists(x, b2));
	assert_int_equal(intents_count(x), 2);
	/* One backup ends: still held. */
	gc_release(x->g);
	OK(gc_finish_intents(x->g, NULL));
	assert_true(file_exists(x, b1));
	/* The last one ends: the next run unlinks them. */
	gc_release(x->g);
	assert_int_equal(gc_holds(x->g), 0);
	OK(gc_run(x->g, 0, T0 + 20 * GRACE, NULL, NULL, &r));
	gc_report_free(&r);
	assert_false(file_exists(x, b1));
	assert_false(file_exists(x, b2));
	assert_int_equal(intents_count(x), 0);
	meta_backup_free(&snap);
}

/* Reads the rows file whole. */
static void
rows_of(const struct meta_backup *b, char **out)
{
	char *buf = malloc(b->rows_len + 1);

	assert_non_null(buf);
	assert_int_equal(pread(b->fd, buf, b->rows_len, 0),
	                 (ssize_t)b->rows_len);
	*out = buf;
}

static uint64_t problems;
static void
count_problem(enum gc_check_line what, const char *line, void *arg)
{
	(void)arg;
	if (what == GC_CHECK_PROBLEM) {
		problems++;
		print_message("problem: %s\n", line);
	}
}

/* Loads rows into the index of y in pieces of 7 bytes. */
static void
load(struct gfx *y, const struct meta_backup *b, struct meta_backup *got)
{
	struct meta_restore *mr = NULL;
	char *rows;

	rows_of(b, &rows);
	OK(meta_restore_open(y->base.m, &mr));
	for (uint64_t off = 0; off < b->rows_len; off += 7)
		OK(meta_restore_feed(mr, rows + off,
		                     b->rows_len - off < 7 ? b->rows_len - off
		                                           : 7));
	OK(meta_restore_finish(mr, got));
	meta_restore_free(mr);
	free(rows);
}

static void
test_rows_round_trip(void **state)
{
	struct gfx *x = *state, y = {0};
	char b1[DIGEST_BUF], b2[DIGEST_BUF], b3[DIGEST_BUF], m1[DIGEST_BUF],
	        m2[DIGEST_BUF];
	struct meta_backup part, full, got;
	struct gc_check_options o = {.now = T0 + 50, .grace = GRACE};
	struct gc_check_report rep;
	struct meta_restore *mr = NULL;
	char *rows;

	/* b1 is shared by a and b: its count is 2 at the source. */
	push_blob(x, "a", "shared layer", T0, b1);
	push_blob(x, "a", "config of a", T0, b2);
	push_blob(x, "b", "config of b", T0, b3);
	OK(meta_blob_mount(x->base.m, "b", b1, "a", T0, &(uint64_t){0}));
	put_image(&x->base, "a", dg(m1, 100), "v1", b1, b2, T0);
	put_image(&x->base, "b", dg(m2, 200), "v1", b1, b3, T0);
	{
		char *pins[] = {"registry.example/a:v1"};
		OK(meta_pins_put(x->base.m, pins, 1));
	}
	OK(meta_backup_snapshot(x->base.m, only_a, NULL, &part));
	assert_int_equal(part.repositories, 1);
	assert_int_equal(part.manifests, 1);
	assert_int_equal(part.tags, 1);
	assert_int_equal(part.n_blobs, 2);
	OK(meta_backup_snapshot(x->base.m, NULL, NULL, &full));
	assert_int_equal(full.repositories, 2);
	assert_int_equal(full.n_blobs, 3);

	/* A partial snapshot: the repair fixes b1's count, then clean. */
	assert_int_equal(gc_fx_open(&y, "/tmp/berth-gc-XXXXXX", GRACE, 0), 0);
	load(&y, &part, &got);
	assert_int_equal(got.n_blobs, 2);
	for (size_t i = 0; i < got.n_blobs; i++) {
		char d[DIGEST_BUF];
		blob_file(&y,
		          strcmp(got.blobs[i].digest, b1) == 0 ? "shared layer"
		                                               : "config of a",
		          d);
		assert_string_equal(d, got.blobs[i].digest);
	}
	meta_backup_free(&got);
	o.repair = 1;
	OK(gc_check_run(y.base.m, y.bs, &o, NULL, NULL, &rep));
	assert_true(rep.problems > 0); /* b1's count of 2, the byte total */
	o.repair = 0;
	problems = 0;
	OK(gc_check_run(y.base.m, y.bs, &o, count_problem, NULL, &rep));
	assert_int_equal(problems, 0);
	assert_int_equal(rep.manifests, 1);
	assert_int_equal(rep.tags, 1);
	{ /* the cluster's pins came along */
		struct meta_list pins = {0};
		OK(meta_pins_get(y.base.m, &pins));
		assert_int_equal(pins.count, 1);
		assert_string_equal(pins.items[0], "registry.example/a:v1");
		meta_list_free(&pins);
	}
	/* Rows go only into an empty index. */
	RC(RC_BUSY, meta_restore_open(y.base.m, &mr));
	gc_fx_close(&y);

	/* A damaged rows file is refused. */
	memset(&y, 0, sizeof(y));
	assert_int_equal(gc_fx_open(&y, "/tmp/berth-gc-XXXXXX", GRACE, 0), 0);
	rows_of(&full, &rows);
	OK(meta_restore_open(y.base.m, &mr));
	RC(RC_CORRUPT, meta_restore_feed(mr, "BRTHROWX\2\0\0\0", 12));
	meta_restore_free(mr);
	/* rows of another schema are not converted: refused */
	OK(meta_restore_open(y.base.m, &mr));
	RC(RC_UNSUPPORTED, meta_restore_feed(mr, "BRTHROW1\x63\0\0\0", 12));
	meta_restore_free(mr);
	OK(meta_restore_open(y.base.m, &mr));
	OK(meta_restore_feed(mr, rows, full.rows_len - 3)); /* cut short */
	RC(RC_CORRUPT, meta_restore_finish(mr, &got));
	meta_restore_free(mr);
	free(rows);
	gc_fx_close(&y);
	meta_backup_free(&part);
	meta_backup_free(&full);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_hold_keeps_files,
	                                        gc_fx_setup, gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_rows_round_trip,
	                                        gc_fx_setup, gc_fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
