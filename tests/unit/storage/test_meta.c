/* Unit tests of the metadata index on a real LMDB environment in a temp
 * directory: blobs, the gc queue, uploads, persistence, failed commits and
 * concurrency. mdb_txn_commit is wrapped (test_meta.ldflags) so a test can
 * make one commit fail. Manifests, referrers and listings are tested in
 * test_meta_manifest.c. */
#include <pthread.h>

#include "test_meta_util.h"

/* ---- failure injection ---- */

int __real_mdb_txn_commit(MDB_txn *txn);
int __wrap_mdb_txn_commit(MDB_txn *txn);

static int fail_commits; /* number of next commits to fail */
static int fail_code = MDB_MAP_FULL;

int
__wrap_mdb_txn_commit(MDB_txn *txn)
{
	if (fail_commits > 0) {
		fail_commits--;
		mdb_txn_abort(txn);
		return fail_code;
	}
	return __real_mdb_txn_commit(txn);
}

/* ---- fixture ---- */

/* The shared fixture, with no commit failure armed. */
static int
setup(void **state)
{
	fail_commits = 0;
	fail_code = MDB_MAP_FULL;
	return meta_fx_setup(state);
}

static int
teardown(void **state)
{
	return meta_fx_teardown(state);
}

/* ---- blobs ---- */

static void
test_blob_commit(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF];
	uint64_t size = 0;
	int q = 0;

	OK(meta_upload_put(f->m, "u-1", "r", T0));
	OK(meta_blob_commit(f->m, "r", dg(b1, 1), 10, "u-1", T0));
	assert_int_equal(blob_rc(f, b1), 0);
	assert_int_equal(blob_q(f, b1), T0 + GRACE);
	OK(meta_blob_get(f->m, "r", b1, &size, &q));
	assert_int_equal(size, 10);
	assert_int_equal(q, 1);
	OK(meta_blob_get(f->m, "r", b1, &size, NULL));
	RC(RC_BLOB_UNKNOWN, meta_blob_get(f->m, "other", b1, &size, &q));
	RC(RC_UPLOAD_UNKNOWN, meta_upload_check(f->m, "u-1", "r"));
	OK(meta_blob_exists(f->m, b1, &size));
	RC(RC_BLOB_UNKNOWN, meta_blob_exists(f->m, dg(b1, 9), &size));
	RC(RC_BLOB_UNKNOWN, meta_blob_refcount(f->m, b1, &size));

	/* Committed again into another repo: one blob, one queue entry. */
	OK(meta_blob_commit(f->m, "s", dg(b1, 1), 10, NULL, T0 + 5));
	assert_int_equal(blob_rc(f, b1), 0);
	assert_int_equal(blob_q(f, b1), T0 + 5 + GRACE);
	assert_int_equal(gcq_len(f), 1);
	OK(meta_blob_get(f->m, "s", b1, &size, &q));
	RC(RC_SIZE_INVALID, meta_blob_commit(f->m, "s", b1, 11, NULL, T0));
}

static void
test_blob_mount_unlink(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF];
	uint64_t size = 0;

	two_blobs(f, "a", b1, b2);
	RC(RC_BLOB_UNKNOWN,
	   meta_blob_mount(f->m, "b", b1, "nowhere", T0, &size));
	RC(RC_BLOB_UNKNOWN,
	   meta_blob_mount(f->m, "b", dg(m1, 77), NULL, T0, &size));
	RC(RC_BLOB_UNKNOWN, meta_blob_get(f->m, "b", b1, &size, NULL));
	OK(meta_blob_mount(f->m, "b", b1, "a", T0 + 10, &size));
	assert_int_equal(size, 10);
	assert_int_equal(blob_q(f, b1), T0 + 10 + GRACE); /* touched */
	OK(meta_blob_mount(f->m, "c", b2, NULL, T0, &size));
	assert_int_equal(size, 20);
	OK(meta_blob_get(f->m, "c", b2, &size, NULL));

	/* A link removed: the repo no longer serves it, the blob stays. */
	put_image(f, "b", dg(m1, 100), "t", b1, b1, T0);
	assert_int_equal(blob_rc(f, b1), 1);
	OK(meta_blob_unlink(f->m, "b", b1, T0));
	RC(RC_BLOB_UNKNOWN, meta_blob_get(f->m, "b", b1, &size, NULL));
	RC(RC_BLOB_UNKNOWN, meta_blob_unlink(f->m, "b", b1, T0));
	assert_int_equal(blob_rc(f, b1), 1);
	OK(meta_blob_get(f->m, "a", b1, &size, NULL));
}
/* ---- gc queue ---- */

static int
collect_fn(const struct meta_gc_item *it, void *arg)
{
	struct meta_gc_item *out = arg;
	int i = 0;

	while (out[i].due != 0)
		i++;
	out[i] = *it;
	return i + 1 >= 3; /* stop after three */
}

static int
touch_fn(const struct meta_gc_item *it, void *arg)
{
	struct meta *m = arg;

	/* Writing from inside the walk's read txn. */
	return meta_touch_blob(m, it->digest, T0 + 500);
}

static void
test_touch_and_walk(void **state)
{
	struct fx *f = *state;
	char d3[DIGEST_BUF], d4[DIGEST_BUF], d5[DIGEST_BUF], m1[DIGEST_BUF];
	char b1[DIGEST_BUF], b2[DIGEST_BUF];
	struct meta_gc_item items[8];
	struct meta_manifest mm;
	int n;

	OK(meta_blob_commit(f->m, "r", dg(d5, 5), 1, NULL, T0 + 30));
	OK(meta_blob_commit(f->m, "r", dg(d4, 4), 1, NULL, T0 + 20));
	OK(meta_blob_commit(f->m, "r", dg(d3, 3), 1, NULL, T0));
	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(m1, 100), NULL, b1, b2, T0 + 10);

	/* Due order: d3 (T0), m1 (T0+10), d4 (T0+20), d5 (T0+30). */
	memset(items, 0, sizeof(items));
	OK(meta_gcq_walk(f->m, UINT64_MAX, collect_fn, items));
	assert_int_equal(items[0].due, T0 + GRACE);
	assert_int_equal(items[0].kind, META_GC_BLOB);
	assert_string_equal(items[0].digest, d3);
	assert_string_equal(items[0].repo, "");
	assert_int_equal(items[1].due, T0 + 10 + GRACE);
	assert_int_equal(items[1].kind, META_GC_MANIFEST);
	assert_string_equal(items[1].digest, m1);
	assert_string_equal(items[1].repo, "r");
	assert_string_equal(items[2].digest, d4);
	assert_int_equal(items[3].due, 0); /* stopped after three */
	n = 0;
	OK(meta_gcq_walk(f->m, T0 + 20 + GRACE, count_fn, &n));
	assert_int_equal(n, 3);
	n = 0;
	OK(meta_gcq_walk(f->m, T0 + GRACE - 1, count_fn, &n));
	assert_int_equal(n, 0);

	/* Touch moves the entry forward, never back. */
	OK(meta_touch_blob(f->m, d4, T0 + 50));
	assert_int_equal(blob_q(f, d4), T0 + 50 + GRACE);
	OK(meta_touch_blob(f->m, d4, T0 + 40));
	assert_int_equal(blob_q(f, d4), T0 + 50 + GRACE);
	OK(meta_touch_blob(f->m, b1, T0 + 40)); /* not queued: no-op */
	assert_int_equal(blob_q(f, b1), 0);
	RC(RC_BLOB_UNKNOWN, meta_touch_blob(f->m, dg(d3, 99), T0));
	dg(d3, 3);
	OK(meta_touch_manifest(f->m, "r", m1, T0 + 60));
	assert_int_equal(mf_q(f, "r", m1), T0 + 60 + GRACE);
	OK(meta_manifest_get(f->m, "r", m1, 0, &mm));
	assert_int_equal(mm.queued, 1);
	RC(RC_MANIFEST_UNKNOWN, meta_touch_manifest(f->m, "x", m1, T0));
	put_image(f, "r", m1, "t", b1, b2, T0);
	OK(meta_touch_manifest(f->m, "r", m1, T0 + 70)); /* not queued */
	assert_int_equal(mf_q(f, "r", m1), 0);
	OK(meta_manifest_get(f->m, "r", "t", 0, &mm));
	assert_int_equal(mm.queued, 0);
	assert_int_equal(gcq_len(f), 3);

	/* A walk that writes: every item visited once, from one snapshot. */
	OK(meta_gcq_walk(f->m, UINT64_MAX, touch_fn, f->m));
	assert_int_equal(blob_q(f, d3), T0 + 500 + GRACE);
	assert_int_equal(blob_q(f, d4), T0 + 500 + GRACE);
	assert_int_equal(blob_q(f, d5), T0 + 500 + GRACE);
	assert_int_equal(gcq_len(f), 3);
}

/* ---- uploads ---- */

static void
test_uploads(void **state)
{
	struct fx *f = *state;

	RC(RC_UPLOAD_UNKNOWN, meta_upload_check(f->m, "u1", "r"));
	OK(meta_upload_put(f->m, "u1", "r", T0));
	OK(meta_upload_put(f->m, "u2", "r/s", T0));
	OK(meta_upload_check(f->m, "u1", "r"));
	OK(meta_upload_check(f->m, "u2", "r/s"));
	RC(RC_UPLOAD_UNKNOWN, meta_upload_check(f->m, "u1", "r/s"));
	RC(RC_UPLOAD_UNKNOWN, meta_upload_check(f->m, "u1", "rr"));
	RC(RC_UPLOAD_UNKNOWN, meta_upload_check(f->m, "u2", "r"));
	OK(meta_upload_delete(f->m, "u1"));
	RC(RC_UPLOAD_UNKNOWN, meta_upload_check(f->m, "u1", "r"));
	RC(RC_UPLOAD_UNKNOWN, meta_upload_delete(f->m, "u1"));
	OK(meta_upload_check(f->m, "u2", "r/s"));
}

/* ---- persistence and failures ---- */

static void
test_persistence(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF];
	struct meta_manifest mm;
	struct meta_list l;

	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(m1, 100), "t", b1, b2, T0);
	put_image(f, "r", dg(m2, 101), NULL, b2, b1, T0);
	OK(meta_upload_put(f->m, "u", "r", T0));
	reopen(f);
	OK(meta_manifest_get(f->m, "r", "t", 1, &mm));
	assert_string_equal(mm.digest, m1);
	assert_memory_equal(mm.body, m1, strlen(m1));
	free(mm.body);
	assert_int_equal(blob_rc(f, b1), 2);
	assert_int_equal(mf_rc(f, "r", m1), 1);
	assert_int_equal(mf_q(f, "r", m2), T0 + GRACE);
	OK(meta_upload_check(f->m, "u", "r"));
	OK(meta_catalog_list(f->m, NULL, 10, &l));
	expect_list(&l, 0, 1, "r");
	meta_list_free(&l);

	/* Defaults (no options) open the same environment too. */
	meta_close(f->m);
	f->m = NULL;
	OK(meta_open(f->dir, NULL, &f->m));
	assert_int_equal(blob_rc(f, b1), 2);
}

static void
test_commit_failure(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], b3[DIGEST_BUF], m1[DIGEST_BUF];
	char m2[DIGEST_BUF];
	struct meta_manifest mm;
	struct meta_list l;
	uint64_t size;

	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(m1, 100), "t", b1, b2, T0);

	/* A push that fails to commit leaves no trace. */
	fail_commits = 1;
	fail_code = MDB_MAP_FULL;
	{
		struct mi x;

		RC(RC_FULL, put(f, "r", dg(m2, 101), "t",
		                mk_info(&x, MT_OCI_MANIFEST, NULL, NULL, 2, b1,
		                        (int64_t)10, b2, (int64_t)20),
		                T0 + 1, NULL));
	}
	assert_int_equal(fail_commits, 0);
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", m2, 0, &mm));
	OK(meta_manifest_get(f->m, "r", "t", 0, &mm));
	assert_string_equal(mm.digest, m1);
	assert_int_equal(mf_rc(f, "r", m1), 1);
	assert_int_equal(mf_q(f, "r", m1), 0);
	assert_int_equal(blob_rc(f, b1), 1);
	assert_int_equal(gcq_len(f), 0);

	/* A delete that fails to commit deletes nothing. */
	fail_commits = 1;
	fail_code = EIO;
	RC(-EIO, meta_manifest_delete(f->m, "r", m1, T0 + 2));
	OK(meta_manifest_get(f->m, "r", "t", 0, &mm));
	assert_int_equal(blob_rc(f, b1), 1);
	assert_int_equal(gcq_len(f), 0);

	/* A blob commit that fails records nothing. */
	fail_commits = 1;
	fail_code = MDB_TXN_FULL;
	RC(RC_FULL, meta_blob_commit(f->m, "r", dg(b3, 7), 1, NULL, T0));
	RC(RC_BLOB_UNKNOWN, meta_blob_exists(f->m, b3, &size));
	assert_int_equal(gcq_len(f), 0);
	fail_commits = 1;
	fail_code = MDB_BAD_TXN;
	RC(RC_DB, meta_blob_mount(f->m, "q", b1, NULL, T0, &size));
	RC(RC_NAME_UNKNOWN, meta_tags_list(f->m, "q", NULL, 1, &l));

	/* The next push works. */
	put_image(f, "r", m2, "t", b1, b2, T0 + 3);
	assert_int_equal(mf_rc(f, "r", m2), 1);
	assert_int_equal(mf_rc(f, "r", m1), 0);
}

/* ---- concurrency ---- */

#define READERS    4
#define READ_ITERS 2000
#define WRITES     200

struct shared {
	struct meta *m;
	char b1[DIGEST_BUF], b2[DIGEST_BUF];
	int errors;
	pthread_mutex_t mu;
};

static void
count_error(struct shared *s)
{
	pthread_mutex_lock(&s->mu);
	s->errors++;
	pthread_mutex_unlock(&s->mu);
}

static void *
reader(void *arg)
{
	struct shared *s = arg;

	for (int i = 0; i < READ_ITERS; i++) {
		struct meta_manifest mm;
		struct meta_list l;
		uint64_t size;

		if (meta_manifest_get(s->m, "r", "t", 1, &mm) != 0) {
			count_error(s);
		} else {
			if (mm.body == NULL ||
			    strcmp(mm.media_type, MT_OCI_MANIFEST) != 0 ||
			    mm.size != strlen(mm.digest) ||
			    memcmp(mm.body, mm.digest, mm.size) != 0)
				count_error(s);
			free(mm.body);
		}
		if (meta_blob_get(s->m, "r", s->b1, &size, NULL) != 0 ||
		    size != 10)
			count_error(s);
		if (meta_tags_list(s->m, "r", NULL, SIZE_MAX, &l) != 0 ||
		    l.count != 1)
			count_error(s);
		else
			meta_list_free(&l);
	}
	return NULL;
}

static void *
writer(void *arg)
{
	struct shared *s = arg;
	char d[DIGEST_BUF];

	for (unsigned i = 0; i < WRITES; i++) {
		struct mi x;
		struct meta_manifest_put p;

		p.repo = "r";
		p.digest = dg(d, 1000 + i);
		p.tag = "t";
		p.body = d;
		p.body_len = strlen(d);
		p.info = mk_info(&x, MT_OCI_MANIFEST, NULL, NULL, 2, s->b1,
		                 (int64_t)10, s->b2, (int64_t)20);
		if (meta_manifest_put(s->m, &p, T0 + i, NULL) != 0)
			count_error(s);
	}
	return NULL;
}

static void
test_concurrency(void **state)
{
	struct fx *f = *state;
	struct shared s;
	pthread_t th[READERS + 1];
	char m1[DIGEST_BUF];

	memset(&s, 0, sizeof(s));
	s.m = f->m;
	pthread_mutex_init(&s.mu, NULL);
	two_blobs(f, "r", s.b1, s.b2);
	put_image(f, "r", dg(m1, 100), "t", s.b1, s.b2, T0);
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &s), 0);
	assert_int_equal(pthread_create(&th[READERS], NULL, writer, &s), 0);
	for (int i = 0; i <= READERS; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&s.mu);
	assert_int_equal(s.errors, 0);
	/* Every replaced manifest is queued; the last one is tagged. */
	assert_int_equal(gcq_len(f), WRITES);
	assert_int_equal(blob_rc(f, s.b1), WRITES + 1);
	assert_int_equal(mf_rc(f, "r", dg(m1, 1000 + WRITES - 1)), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	        /* blobs */
	        T(test_blob_commit),
	        T(test_blob_mount_unlink),
	        /* gc queue, uploads */
	        T(test_touch_and_walk),
	        T(test_uploads),
	        /* persistence and failures */
	        T(test_persistence),
	        T(test_commit_failure),
	        /* concurrency */
	        T(test_concurrency),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
