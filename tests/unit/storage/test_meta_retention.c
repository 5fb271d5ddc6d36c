/* Unit tests of storage/meta_retention.c (and the flush of last-pull times
 * in meta_access.c) on a real LMDB environment in a temp directory: the
 * walk of every repository's tags with their times and sizes, expiring
 * tags judged earlier, deleting whole repositories (with what pins keep),
 * the stored pins and the write-txn counters. Every change is followed by
 * meta_check_run: the counts must stay consistent. */
#include "test_meta_util.h"

/* ---- helpers ---- */

#define MAX_TAGS  64
#define MAX_REPOS 16

/* What a walk saw: the repositories in call order, every tag copied. */
struct walk {
	char repos[MAX_REPOS][256];
	size_t first[MAX_REPOS], count[MAX_REPOS];
	size_t n_repos;
	struct meta_tag_info v[MAX_TAGS];
	size_t n;
	size_t stop_after; /* non-zero: stop after that many repositories */
};

static int
walk_fn(const char *repo, struct meta_tag_info *tags, size_t n, void *arg)
{
	struct walk *w = arg;

	assert_true(w->n_repos < MAX_REPOS);
	assert_true(n > 0);
	assert_true(w->n + n <= MAX_TAGS);
	snprintf(w->repos[w->n_repos], sizeof(w->repos[0]), "%s", repo);
	w->first[w->n_repos] = w->n;
	w->count[w->n_repos] = n;
	w->n_repos++;
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(tags[i].repo, repo);
		if (i > 0) /* tag order */
			assert_true(strcmp(tags[i - 1].tag, tags[i].tag) < 0);
		w->v[w->n++] = tags[i];
	}
	return w->stop_after != 0 && w->n_repos == w->stop_after;
}

static struct walk *
walk(struct fx *f, const char *prefix, const char *from, int want_sizes)
{
	static struct walk w;

	memset(&w, 0, sizeof(w));
	OK(meta_repo_tags_walk(f->m, prefix, from, want_sizes, walk_fn, &w));
	return &w;
}

/* The repositories a walk saw, as "a,b,c". */
static const char *
walk_repos(const struct walk *w)
{
	static char buf[1024];
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < w->n_repos; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
		                        i ? "," : "", w->repos[i]);
	return buf;
}

static const struct meta_tag_info *
tag_of(const struct walk *w, const char *repo, const char *tag)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->v[i].repo, repo) == 0 &&
		    strcmp(w->v[i].tag, tag) == 0)
			return &w->v[i];
	fail_msg("the walk did not report %s:%s", repo, tag);
	return NULL;
}

/* The last pull of r:tag that a walk reports. */
static uint64_t
last_pulled(struct fx *f, const char *tag)
{
	return tag_of(walk(f, NULL, NULL, 0), "r", tag)->last_pulled;
}

/* The sizes a walk reports for repo:tag: all of it, and its own. */
static void
expect_sizes(const struct walk *w, const char *repo, const char *tag,
             uint64_t size, uint64_t unique)
{
	const struct meta_tag_info *t = tag_of(w, repo, tag);

	assert_int_equal(t->size, size);
	assert_int_equal(t->unique, unique);
}

/* A blob of the given size linked in repo. */
static const char *
blob(struct fx *f, const char *repo, char d[DIGEST_BUF], unsigned n,
     uint64_t size)
{
	OK(meta_blob_commit(f->m, repo, dg(d, n), size, NULL, T0));
	return d;
}

/* n blobs linked in repo, numbered from 1, of 1, 20, 300, 4000 and 50000
 * bytes: a sum of sizes tells which ones it counts. */
static void
blobs(struct fx *f, const char *repo, char b[][DIGEST_BUF], unsigned n)
{
	uint64_t unit = 1;

	assert_true(n <= 5);
	for (unsigned i = 0; i < n; i++, unit *= 10)
		blob(f, repo, b[i], i + 1, (i + 1) * unit);
}

/* Repo r: blobs of 1000 and 20 bytes and an image of them tagged t. */
static void
image_1020(struct fx *f, char b1[DIGEST_BUF], char b2[DIGEST_BUF],
           char m[DIGEST_BUF])
{
	blob(f, "r", b1, 1, 1000);
	blob(f, "r", b2, 2, 20);
	put_image(f, "r", dg(m, 100), "t", b1, b2, T0);
}

/* An index in repo over two manifests (children of that repo). */
static void
put_index(struct fx *f, const char *repo, const char *digest, const char *tag,
          const char *c1, const char *c2, uint64_t now)
{
	char k1[DIGEST_BUF + 2], k2[DIGEST_BUF + 2];
	struct mi x;

	snprintf(k1, sizeof(k1), "m:%s", c1);
	snprintf(k2, sizeof(k2), "m:%s", c2);
	OK(put(f, repo, digest, tag,
	       mk_info(&x, MT_OCI_INDEX, NULL, NULL, 2, k1, (int64_t)strlen(c1),
	               k2, (int64_t)strlen(c2)),
	       now, NULL));
}

/* A tag put with a TTL label. */
static void
put_ttl(struct fx *f, const char *repo, const char *digest, const char *tag,
        const char *b1, const char *b2, uint64_t ttl, const char *label,
        uint64_t now)
{
	struct mi x;
	struct meta_manifest_put p = {
	        .repo = repo,
	        .digest = digest,
	        .tag = tag,
	        .body = digest,
	        .body_len = strlen(digest),
	        .info = mk_info(&x, MT_OCI_MANIFEST, NULL, NULL, 2, b1,
	                        blob_size(f, b1), b2, blob_size(f, b2)),
	        .ttl = ttl,
	        .ttl_source = label};

	OK(meta_manifest_put(f->m, &p, now, NULL));
}

static void
on_problem(const struct meta_check_problem *p, void *arg)
{
	(*(int *)arg)++;
	print_error("check problem %d: kind %d repo \"%s\" digest %s name "
	            "\"%s\" got %llu want %llu\n",
	            p->code, p->kind, p->repo, p->digest, p->name,
	            (unsigned long long)p->got, (unsigned long long)p->want);
}

/* The index is consistent: every count and queue entry as recomputed. */
static void
assert_consistent(struct fx *f)
{
	struct meta_check_cb cb = {.problem = on_problem};
	int n = 0;

	cb.arg = &n;
	OK(meta_check_run(f->m, &cb, NULL));
	if (n != 0)
		fail_msg("meta_check_run found %d problems", n);
}

static uint64_t
write_txns(struct fx *f)
{
	struct meta_stats st;

	meta_stats_get(f->m, &st);
	return st.write_txns;
}

static uint64_t
flush_txns(struct fx *f)
{
	struct meta_stats st;

	meta_stats_get(f->m, &st);
	return st.flush_txns;
}

#define MSZ ((uint64_t)DIGEST_STR_LEN) /* a test manifest's body size */

/* ---- the walk ---- */

/* Repositories come in byte order, once each with all their tags in
 * order; repositories without tags are not visited. */
static void
test_walk_groups_repos(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF], m2[DIGEST_BUF];
	const char *repos[] = {"b", "ab", "a/b", "a"};
	struct walk *w;

	for (size_t i = 0; i < 4; i++) {
		two_blobs(f, repos[i], b1, b2);
		put_image(f, repos[i], dg(m, 100), "t2", b1, b2, T0);
		put_image(f, repos[i], dg(m2, 101), "t1", b2, b1, T0 + 1);
		put_image(f, repos[i], m2, "t3", b2, b1, T0 + 2);
	}
	two_blobs(f, "c", b1, b2); /* only an untagged manifest */
	put_image(f, "c", dg(m, 100), NULL, b1, b2, T0);
	two_blobs(f, "d", b1, b2); /* only blob links */

	w = walk(f, NULL, NULL, 0);
	assert_string_equal(walk_repos(w), "a,a/b,ab,b");
	for (size_t r = 0; r < w->n_repos; r++) {
		assert_int_equal(w->count[r], 3);
		assert_string_equal(w->v[w->first[r]].tag, "t1");
		assert_string_equal(w->v[w->first[r] + 2].tag, "t3");
	}
	{
		const struct meta_tag_info *t = tag_of(w, "a/b", "t2");
		assert_string_equal(t->digest, m);
		assert_string_equal(t->media_type, MT_OCI_MANIFEST);
		assert_int_equal(t->pushed, T0);
		assert_int_equal(t->last_pulled, 0);
		assert_int_equal(t->expires, 0);
		assert_string_equal(t->source, "");
		assert_int_equal(t->size, 0); /* not asked */
		assert_int_equal(t->unique, 0);
		t = tag_of(w, "ab", "t3");
		assert_string_equal(t->digest, m2);
		assert_int_equal(t->pushed, T0 + 2);
	}
}

static void
test_walk_prefix_and_from(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF];
	const char *repos[] = {"a", "a/b", "a/c", "ab", "b", "ba"};
	struct walk *w;

	for (size_t i = 0; i < 6; i++) {
		two_blobs(f, repos[i], b1, b2);
		put_image(f, repos[i], dg(m, 100), "t", b1, b2, T0);
	}
	assert_string_equal(walk_repos(walk(f, "a", NULL, 0)), "a,a/b,a/c,ab");
	assert_string_equal(walk_repos(walk(f, "a/", NULL, 0)), "a/b,a/c");
	assert_string_equal(walk_repos(walk(f, "b", NULL, 0)), "b,ba");
	assert_string_equal(walk_repos(walk(f, "ba", NULL, 0)), "ba");
	assert_string_equal(walk_repos(walk(f, "zz", NULL, 0)), "");
	assert_string_equal(walk_repos(walk(f, "", NULL, 0)),
	                    "a,a/b,a/c,ab,b,ba");
	/* From a repository on (included), alone and under a prefix. */
	assert_string_equal(walk_repos(walk(f, NULL, "a/c", 0)), "a/c,ab,b,ba");
	assert_string_equal(walk_repos(walk(f, NULL, "a/bb", 0)),
	                    "a/c,ab,b,ba"); /* not a repository */
	assert_string_equal(walk_repos(walk(f, "a", "a/c", 0)), "a/c,ab");
	assert_string_equal(walk_repos(walk(f, "b", "a", 0)), "b,ba");
	assert_string_equal(walk_repos(walk(f, "a", "c", 0)), "");
	/* fn returning non-zero stops the walk. */
	w = walk(f, NULL, NULL, 0);
	memset(w, 0, sizeof(*w));
	w->stop_after = 2;
	OK(meta_repo_tags_walk(f->m, NULL, NULL, 0, walk_fn, w));
	assert_string_equal(walk_repos(w), "a,a/b");
}

/* A TTL label at push sets expires and source; a push without clears
 * them. */
static void
test_walk_ttl(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF];
	const struct meta_tag_info *t;

	two_blobs(f, "r", b1, b2);
	put_ttl(f, "r", dg(m, 100), "t", b1, b2, 50, "quay.expires-after", T0);
	t = tag_of(walk(f, NULL, NULL, 0), "r", "t");
	assert_int_equal(t->expires, T0 + 50);
	assert_string_equal(t->source, "quay.expires-after");
	put_ttl(f, "r", m, "t", b1, b2, 0, NULL, T0 + 10);
	t = tag_of(walk(f, NULL, NULL, 0), "r", "t");
	assert_int_equal(t->expires, 0);
	assert_string_equal(t->source, "");
	assert_int_equal(t->pushed, T0 + 10);
}

/* ---- sizes ---- */

/* An image alone: everything under it is its own. */
static void
test_sizes_image_alone(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF];
	uint64_t size = 0, unique = 0;

	image_1020(f, b1, b2, m);
	expect_sizes(walk(f, NULL, NULL, 1), "r", "t", MSZ + 1020, 1020);
	OK(meta_tag_sizes(f->m, "r", m, &size, &unique));
	assert_int_equal(size, MSZ + 1020);
	assert_int_equal(unique, 1020);
}

/* Two tags on one manifest: deleting either frees nothing. */
static void
test_sizes_two_tags(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF];
	struct walk *w;

	image_1020(f, b1, b2, m);
	put_image(f, "r", m, "u", b1, b2, T0);
	w = walk(f, NULL, NULL, 1);
	expect_sizes(w, "r", "t", MSZ + 1020, 0);
	expect_sizes(w, "r", "u", MSZ + 1020, 0);
}

/* Two images sharing a layer: the shared layer is nobody's own. */
static void
test_sizes_shared_layer(void **state)
{
	struct fx *f = *state;
	char base[DIGEST_BUF], l1[DIGEST_BUF], l2[DIGEST_BUF];
	char m1[DIGEST_BUF], m2[DIGEST_BUF];
	struct walk *w;

	blob(f, "r", base, 1, 5000);
	blob(f, "r", l1, 2, 30);
	blob(f, "r", l2, 3, 400);
	put_image(f, "r", dg(m1, 100), "one", base, l1, T0);
	put_image(f, "r", dg(m2, 101), "two", base, l2, T0);
	w = walk(f, NULL, NULL, 1);
	expect_sizes(w, "r", "one", MSZ + 5030, 30);
	expect_sizes(w, "r", "two", MSZ + 5400, 400);
}

/* The same image in two repositories: its layers are held twice. */
static void
test_sizes_other_repo(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF];
	struct walk *w;
	uint64_t sz;

	image_1020(f, b1, b2, m);
	OK(meta_blob_mount(f->m, "s", b1, "r", T0, &sz));
	OK(meta_blob_mount(f->m, "s", b2, "r", T0, &sz));
	put_image(f, "s", m, "t", b1, b2, T0);
	w = walk(f, NULL, NULL, 1);
	expect_sizes(w, "r", "t", MSZ + 1020, 0);
	expect_sizes(w, "s", "t", MSZ + 1020, 0);
}

/* An index: its children and their layers are its own when only it
 * holds them; a layer shared by two children of it counts once. */
static void
test_sizes_index(void **state)
{
	struct fx *f = *state;
	char b[4][DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF], ix[DIGEST_BUF];
	struct walk *w;

	blobs(f, "r", b, 4);
	put_image(f, "r", dg(m1, 100), NULL, b[0], b[1], T0);
	put_image(f, "r", dg(m2, 101), NULL, b[0], b[2], T0); /* b0 twice */
	put_index(f, "r", dg(ix, 50), "idx", m1, m2, T0);
	w = walk(f, NULL, NULL, 1);
	expect_sizes(w, "r", "idx", 3 * MSZ + 321, 321);
	assert_string_equal(tag_of(w, "r", "idx")->media_type, MT_OCI_INDEX);
}

/* A child of the index also tagged on its own: deleting the index's tag
 * does not free that child's layers (only the other child's); deleting
 * the child's tag frees nothing. */
static void
test_sizes_index_child_tagged(void **state)
{
	struct fx *f = *state;
	char b[4][DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF], ix[DIGEST_BUF];
	struct walk *w;

	blobs(f, "r", b, 4);
	put_image(f, "r", dg(m1, 100), "amd64", b[0], b[1], T0);
	put_image(f, "r", dg(m2, 101), NULL, b[2], b[3], T0);
	put_index(f, "r", dg(ix, 200), "idx", m1, m2, T0);
	w = walk(f, NULL, NULL, 1);
	expect_sizes(w, "r", "idx", 3 * MSZ + 4321, 4300);
	expect_sizes(w, "r", "amd64", MSZ + 21, 0);
}

/* ---- expiring tags ---- */

static void
test_tags_expire(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF],
	        m3[DIGEST_BUF];
	struct meta_tag_expire x[5];
	struct meta_list l;
	uint64_t w0;

	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(m1, 100), "old", b1, b2, T0);
	put_image(f, "r", dg(m2, 101), "renewed", b2, b1, T0);
	put_image(f, "r", dg(m3, 102), "moved", b1, b1, T0);
	put_image(f, "r", m1, "also", b1, b2, T0 + 1);
	/* Judged at T0; then renewed is pushed again (same digest) and
	 * moved is pushed to another digest. */
	put_image(f, "r", m2, "renewed", b2, b1, T0 + 20);
	put_image(f, "r", m1, "moved", b1, b2, T0 + 1);
	assert_int_equal(mf_rc(f, "r", m3), 0);

	x[0] = (struct meta_tag_expire){"r", "old", m1, T0, 7};
	x[1] = (struct meta_tag_expire){"r", "renewed", m2, T0, 7};
	x[2] = (struct meta_tag_expire){"r", "moved", m3, T0, 7};
	x[3] = (struct meta_tag_expire){"r", "gone", m1, T0, 7};
	x[4] = (struct meta_tag_expire){"s", "old", m1, T0, 7};
	w0 = write_txns(f);
	OK(meta_tags_expire(f->m, x, 5, T0 + 30));
	assert_int_equal(write_txns(f), w0 + 1); /* one txn */
	assert_int_equal(x[0].done, 1);
	assert_int_equal(x[1].done, 0);
	assert_int_equal(x[2].done, 0);
	assert_int_equal(x[3].done, 0);
	assert_int_equal(x[4].done, 0);
	OK(meta_tags_list(f->m, "r", NULL, SIZE_MAX, &l));
	expect_list(&l, 0, 3, "also", "moved", "renewed");
	meta_list_free(&l);
	/* m1 keeps "also" and "moved". */
	assert_int_equal(mf_rc(f, "r", m1), 2);
	assert_int_equal(mf_q(f, "r", m1), 0);
	assert_consistent(f);

	/* The last tag of m1 that was judged unchanged: m1 goes to the
	 * queue, due at its last access + grace. */
	x[0] = (struct meta_tag_expire){"r", "also", m1, T0 + 1, 0};
	x[1] = (struct meta_tag_expire){"r", "moved", m1, T0 + 1, 0};
	OK(meta_tags_expire(f->m, x, 2, T0 + 40));
	assert_true(x[0].done && x[1].done);
	assert_int_equal(mf_rc(f, "r", m1), 0);
	assert_int_equal(mf_q(f, "r", m1), T0 + 1 + GRACE);
	assert_int_equal(blob_rc(f, b1), 3); /* m1 still holds its blobs */
	assert_consistent(f);
	/* Nothing at all: no error. */
	OK(meta_tags_expire(f->m, x, 0, T0 + 50));
}

/* ---- repository deletes ---- */

/* Repo r: images, an index over one of them, an untagged manifest, a
 * blob link nothing uses; b1 is also used by repo s. */
struct repo_fx {
	char b[6][DIGEST_BUF];
	char m1[DIGEST_BUF], m2[DIGEST_BUF], m3[DIGEST_BUF];
	char ix[DIGEST_BUF], ix2[DIGEST_BUF], s1[DIGEST_BUF];
};

static void
repo_fill(struct fx *f, struct repo_fx *r)
{
	uint64_t sz;

	blobs(f, "r", r->b, 5); /* b3 linked, never used; b4 only m3's */
	blob(f, "s", r->b[5], 6, 6);
	put_image(f, "r", dg(r->m1, 100), "a", r->b[0], r->b[1], T0);
	put_image(f, "r", dg(r->m2, 101), "b", r->b[0], r->b[2], T0);
	put_image(f, "r", r->m2, "c", r->b[0], r->b[2], T0);
	put_image(f, "r", dg(r->m3, 102), NULL, r->b[4], r->b[4], T0);
	/* An index before its children in key order, one after. */
	put_index(f, "r", dg(r->ix, 50), "idx", r->m1, r->m2, T0);
	put_index(f, "r", dg(r->ix2, 300), "idx2", r->m1, r->m2, T0);
	OK(meta_blob_mount(f->m, "s", r->b[0], "r", T0, &sz));
	put_image(f, "s", dg(r->s1, 400), "keep", r->b[0], r->b[5], T0);
	assert_consistent(f);
}

/* What a repository delete reports: tags, manifests and blob links
 * deleted, and the bytes nothing references any more. */
static void
expect_deleted(const struct meta_repo_deleted *d, uint64_t tags,
               uint64_t manifests, uint64_t links, uint64_t bytes)
{
	assert_int_equal(d->tags, tags);
	assert_int_equal(d->manifests, manifests);
	assert_int_equal(d->links, links);
	assert_int_equal(d->bytes, bytes);
}

static void
test_repo_delete_all(void **state)
{
	struct fx *f = *state;
	struct meta_repo_deleted d;
	struct meta_manifest mm;
	struct meta_list l;
	struct repo_fx r;
	uint64_t sz;

	repo_fill(f, &r);
	OK(meta_repo_delete(f->m, "r", NULL, T0 + 10, &d));
	/* b1 is still used by s: not counted. */
	expect_deleted(&d, 5, 5, 5, 20 + 300 + 4000 + 50000);
	assert_int_equal(d.n_kept, 0);
	assert_non_null(d.tag_list);
	assert_string_equal(d.tag_list[0].tag, "a");
	assert_string_equal(d.tag_list[0].digest, r.m1);
	assert_string_equal(d.tag_list[1].tag, "b");
	assert_string_equal(d.tag_list[2].tag, "c");
	assert_string_equal(d.tag_list[2].digest, r.m2);
	assert_string_equal(d.tag_list[3].tag, "idx");
	assert_string_equal(d.tag_list[3].digest, r.ix);
	assert_string_equal(d.tag_list[4].tag, "idx2");
	meta_repo_deleted_free(&d);

	RC(RC_NAME_UNKNOWN, meta_tags_list(f->m, "r", NULL, SIZE_MAX, &l));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", r.m1, 0, &mm));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", r.ix, 0, &mm));
	for (int i = 0; i < 5; i++)
		RC(RC_BLOB_UNKNOWN,
		   meta_blob_get(f->m, "r", r.b[i], &sz, NULL));
	assert_int_equal(blob_rc(f, r.b[0]), 1); /* s's image */
	assert_int_equal(blob_q(f, r.b[0]), 0);
	for (int i = 1; i < 5; i++) {
		assert_int_equal(blob_rc(f, r.b[i]), 0);
		assert_true(blob_q(f, r.b[i]) != 0);
	}
	/* s untouched. */
	OK(meta_manifest_get(f->m, "s", "keep", 0, &mm));
	OK(meta_blob_get(f->m, "s", r.b[0], &sz, NULL));
	OK(meta_repos_list(f->m, "", &l));
	expect_list(&l, 0, 1, "s");
	meta_list_free(&l);
	assert_consistent(f);
	/* Again: nothing left. */
	RC(RC_NAME_UNKNOWN, meta_repo_delete(f->m, "r", NULL, T0 + 20, &d));
}

struct keep_ctx {
	const char *manifest; /* digest kept, NULL none */
	const char *tag;      /* tag kept, NULL none */
	int calls;
};

static int
keep_manifest(const char *repo, const char *digest, void *arg)
{
	struct keep_ctx *k = arg;

	k->calls++;
	assert_string_equal(repo, "r");
	return k->manifest != NULL && strcmp(digest, k->manifest) == 0;
}

static int
keep_tag(const char *repo, const char *tag, void *arg)
{
	struct keep_ctx *k = arg;

	k->calls++;
	assert_string_equal(repo, "r");
	return k->tag != NULL && strcmp(tag, k->tag) == 0;
}

/* Deletes repo r at T0 + 10, keeping the manifest digest and the tag
 * (either NULL) as pins would; the keep callbacks must be asked. */
static void
delete_keeping(struct fx *f, const char *manifest, const char *tag,
               struct meta_repo_deleted *d)
{
	struct keep_ctx kc = {manifest, tag, 0};
	struct meta_keep keep = {
	        .manifest = keep_manifest, .tag = keep_tag, .arg = &kc};

	OK(meta_repo_delete(f->m, "r", &keep, T0 + 10, d));
	assert_true(kc.calls > 0);
}

/* A pinned index keeps its child manifests and their blob links. */
static void
test_repo_delete_keeps_pinned_index(void **state)
{
	struct fx *f = *state;
	struct repo_fx r;
	struct meta_repo_deleted d;
	struct meta_manifest mm;
	struct meta_list l;
	uint64_t sz;

	repo_fill(f, &r);
	delete_keeping(f, r.ix, NULL, &d);
	assert_int_equal(d.n_kept, 1);
	assert_string_equal(d.kept[0].digest, r.ix);
	assert_int_equal(d.kept[0].tags.count, 0);
	/* All 5 tags go (the pin holds the index); manifests m3 and ix2,
	 * links b4 and b5. */
	expect_deleted(&d, 5, 2, 2, 4000 + 50000);
	meta_repo_deleted_free(&d);

	OK(meta_manifest_get(f->m, "r", r.ix, 0, &mm));
	OK(meta_manifest_get(f->m, "r", r.m1, 0, &mm));
	OK(meta_manifest_get(f->m, "r", r.m2, 0, &mm));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", r.m3, 0, &mm));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", r.ix2, 0, &mm));
	for (int i = 0; i < 3; i++)
		OK(meta_blob_get(f->m, "r", r.b[i], &sz, NULL));
	RC(RC_BLOB_UNKNOWN, meta_blob_get(f->m, "r", r.b[3], &sz, NULL));
	RC(RC_BLOB_UNKNOWN, meta_blob_get(f->m, "r", r.b[4], &sz, NULL));
	/* No tag left: the index is queued, its children held by it. */
	RC(RC_OK, meta_tags_list(f->m, "r", NULL, SIZE_MAX, &l));
	expect_list(&l, 0, 0);
	meta_list_free(&l);
	assert_int_equal(mf_rc(f, "r", r.ix), 0);
	assert_true(mf_q(f, "r", r.ix) != 0);
	assert_int_equal(mf_rc(f, "r", r.m1), 1);
	assert_int_equal(mf_rc(f, "r", r.m2), 1);
	assert_int_equal(blob_rc(f, r.b[1]), 1);
	assert_consistent(f);
}

/* A pinned tag is kept with its manifest; the other tags on that manifest
 * go. */
static void
test_repo_delete_keeps_pinned_tag(void **state)
{
	struct fx *f = *state;
	struct repo_fx r;
	struct meta_repo_deleted d;
	struct meta_manifest mm;
	struct meta_list l;
	uint64_t sz;

	repo_fill(f, &r);
	delete_keeping(f, NULL, "c", &d);
	assert_int_equal(d.n_kept, 1);
	assert_string_equal(d.kept[0].digest, r.m2);
	expect_list(&d.kept[0].tags, 0, 1, "c");
	/* Manifests: all but m2; links b2, b4, b5. */
	expect_deleted(&d, 4, 4, 3, 20 + 4000 + 50000);
	for (size_t i = 0; i < d.tags; i++)
		assert_string_not_equal(d.tag_list[i].tag, "c");
	meta_repo_deleted_free(&d);
	OK(meta_tags_list(f->m, "r", NULL, SIZE_MAX, &l));
	expect_list(&l, 0, 1, "c");
	meta_list_free(&l);
	OK(meta_manifest_get(f->m, "r", "c", 0, &mm));
	assert_string_equal(mm.digest, r.m2);
	assert_int_equal(mf_rc(f, "r", r.m2), 1);
	OK(meta_blob_get(f->m, "r", r.b[0], &sz, NULL));
	OK(meta_blob_get(f->m, "r", r.b[2], &sz, NULL));
	RC(RC_BLOB_UNKNOWN, meta_blob_get(f->m, "r", r.b[1], &sz, NULL));
	assert_consistent(f);
}

/* A keep that keeps nothing deletes everything. */
static void
test_repo_delete_keep_nothing(void **state)
{
	struct fx *f = *state;
	struct repo_fx r;
	struct meta_repo_deleted d;

	repo_fill(f, &r);
	delete_keeping(f, NULL, NULL, &d);
	assert_int_equal(d.n_kept, 0);
	expect_deleted(&d, 5, 5, 5, 20 + 300 + 4000 + 50000);
	meta_repo_deleted_free(&d);
	assert_consistent(f);
}

/* Referrers (signatures) of the repository: gone with it, or kept by a
 * pin of their own while their subject goes; the counts stay right. */
static void
test_repo_delete_referrers(void **state)
{
	struct fx *f = *state;
	char b[3][DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF];
	char s1[DIGEST_BUF], s2[DIGEST_BUF];
	struct meta_repo_deleted d;
	struct meta_referrers refs;
	struct meta_manifest mm;
	struct mi x;

	blobs(f, "r", b, 3);
	put_image(f, "r", dg(m1, 100), "a", b[0], b[1], T0);
	put_image(f, "r", dg(m2, 101), "b", b[1], b[0], T0);
	OK(put(f, "r", dg(s1, 200), NULL,
	       mk_info(&x, MT_OCI_MANIFEST, m1, "application/x.sig", 1, b[2],
	               (int64_t)300),
	       T0, NULL));
	OK(put(f, "r", dg(s2, 201), NULL,
	       mk_info(&x, MT_OCI_MANIFEST, m2, "application/x.sig", 1, b[2],
	               (int64_t)300),
	       T0, NULL));
	assert_int_equal(mf_rc(f, "r", s1), 1); /* its subject holds it */
	assert_consistent(f);

	/* The signature s1 pinned, its subject not: links b0, b1 go (b2 is
	 * s1's). */
	delete_keeping(f, s1, NULL, &d);
	assert_int_equal(d.n_kept, 1);
	assert_string_equal(d.kept[0].digest, s1);
	expect_deleted(&d, 2, 3, 2, 21);
	meta_repo_deleted_free(&d);
	OK(meta_manifest_get(f->m, "r", s1, 0, &mm));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", s2, 0, &mm));
	assert_int_equal(mf_rc(f, "r", s1), 0);
	assert_true(mf_q(f, "r", s1) != 0);
	OK(meta_referrers_list(f->m, "r", m2, NULL, &refs));
	assert_int_equal(refs.count, 0);
	meta_referrers_free(&refs);
	assert_consistent(f);
	/* Then the rest. */
	OK(meta_repo_delete(f->m, "r", NULL, T0 + 20, &d));
	expect_deleted(&d, 0, 1, 1, 300);
	meta_repo_deleted_free(&d);
	assert_consistent(f);
}

static void
test_repo_delete_unknown(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF];
	struct meta_repo_deleted d;
	uint64_t w0;

	memset(&d, 0x5a, sizeof(d));
	RC(RC_NAME_UNKNOWN, meta_repo_delete(f->m, "nope", NULL, T0, &d));
	two_blobs(f, "r2", b1, b2);
	put_image(f, "r2", dg(m, 100), "t", b1, b2, T0);
	w0 = write_txns(f);
	/* "r" is not "r2" */
	RC(RC_NAME_UNKNOWN, meta_repo_delete(f->m, "r", NULL, T0, &d));
	assert_int_equal(write_txns(f), w0); /* aborted */
	{
		unsigned char canary[sizeof(d)];
		memset(canary, 0x5a, sizeof(canary));
		assert_memory_equal(&d, canary, sizeof(d)); /* out untouched */
	}
}

/* A repository of blob links only. */
static void
test_repo_delete_links_only(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF];
	struct meta_repo_deleted d;

	two_blobs(f, "r", b1, b2);
	OK(meta_repo_delete(f->m, "r", NULL, T0 + 5, &d));
	expect_deleted(&d, 0, 0, 2, 30);
	meta_repo_deleted_free(&d);
	assert_consistent(f);
}

/* ---- pins ---- */

static void
test_pins_round_trip(void **state)
{
	struct fx *f = *state;
	char *three[] = {"registry.example/review/web:pr-1",
	                 "review/api@sha256:"
	                 "1111111111111111111111111111111111111111111111111111"
	                 "111111111111",
	                 ""};
	char *two[] = {"x:1", "y:2"};
	struct meta_list l;

	OK(meta_pins_get(f->m, &l)); /* never put */
	expect_list(&l, 0, 0);
	meta_list_free(&l);
	OK(meta_pins_put(f->m, three, 3));
	OK(meta_pins_get(f->m, &l));
	expect_list(&l, 0, 3, three[0], three[1], "");
	meta_list_free(&l);
	reopen(f);
	OK(meta_pins_get(f->m, &l));
	expect_list(&l, 0, 3, three[0], three[1], "");
	meta_list_free(&l);
	/* Replaced whole. */
	OK(meta_pins_put(f->m, two, 2));
	OK(meta_pins_get(f->m, &l));
	expect_list(&l, 0, 2, "x:1", "y:2");
	meta_list_free(&l);
	/* An empty list. */
	OK(meta_pins_put(f->m, NULL, 0));
	OK(meta_pins_get(f->m, &l));
	expect_list(&l, 0, 0);
	meta_list_free(&l);
}

/* ---- counters ---- */

static void
test_stats_write_txns(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF], miss[DIGEST_BUF];
	struct meta_manifest mm;
	struct meta_list l;
	struct mi x;
	uint64_t w0 = write_txns(f);

	assert_int_equal(flush_txns(f), 0);
	two_blobs(f, "r", b1, b2);
	assert_int_equal(write_txns(f), w0 + 2);
	put_image(f, "r", dg(m, 100), "t", b1, b2, T0);
	assert_int_equal(write_txns(f), w0 + 3);
	/* Reads and refused writes commit nothing. */
	OK(meta_manifest_get(f->m, "r", "t", 0, &mm));
	OK(meta_tags_list(f->m, "r", NULL, 10, &l));
	meta_list_free(&l);
	(void)walk(f, NULL, NULL, 1);
	RC(RC_MANIFEST_UNKNOWN, meta_tag_delete(f->m, "r", "nope", T0));
	RC(RC_MANIFEST_BLOB_UNKNOWN,
	   put(f, "r", dg(m, 101), "u",
	       mk_info(&x, MT_OCI_MANIFEST, NULL, NULL, 1, dg(miss, 9),
	               (int64_t)1),
	       T0, NULL));
	assert_int_equal(write_txns(f), w0 + 3);
	OK(meta_pins_put(f->m, NULL, 0));
	assert_int_equal(write_txns(f), w0 + 4);
	assert_int_equal(flush_txns(f), 0);
}

/* ---- last pulls ---- */

/* A pull by tag is seen by the walk at once (from memory), is written by
 * the flush into the manifest row, and is still there after a restart. */
static void
test_flush_last_pulled(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF], m2[DIGEST_BUF];
	struct meta_manifest mm;
	struct walk *w;
	uint64_t w0, f0;
	size_t flushed = 99;

	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(m, 100), "t", b1, b2, T0);
	put_image(f, "r", m, "u", b1, b2, T0);
	put_image(f, "r", dg(m2, 101), "v", b2, b1, T0);
	assert_int_equal(last_pulled(f, "t"), 0);
	OK(meta_manifest_read(f->m, "r", "t", 1, T0 + 50, &mm));
	free(mm.body);
	w = walk(f, NULL, NULL, 0);
	assert_int_equal(tag_of(w, "r", "t")->last_pulled, T0 + 50);
	assert_int_equal(tag_of(w, "r", "u")->last_pulled, T0 + 50);
	assert_int_equal(tag_of(w, "r", "v")->last_pulled, 0);

	w0 = write_txns(f);
	f0 = flush_txns(f);
	OK(meta_access_flush(f->m, &flushed));
	assert_int_equal(flushed, 1);
	assert_int_equal(write_txns(f), w0 + 1);
	assert_int_equal(flush_txns(f), f0 + 1);
	assert_int_equal(last_pulled(f, "t"), T0 + 50);
	/* After a restart (nothing in memory, reads floored later): the
	 * row's time, not the floor. */
	f->opt.access_floor = T0 + 70;
	reopen(f);
	w = walk(f, NULL, NULL, 0);
	assert_int_equal(tag_of(w, "r", "t")->last_pulled, T0 + 50);
	assert_int_equal(tag_of(w, "r", "v")->last_pulled, 0);
	/* A pull by digest counts for the tags on it. */
	OK(meta_manifest_read(f->m, "r", m2, 0, T0 + 80, &mm));
	assert_int_equal(last_pulled(f, "v"), T0 + 80);
	OK(meta_access_flush(f->m, &flushed));
	assert_int_equal(flushed, 1);
	reopen(f);
	assert_int_equal(last_pulled(f, "v"), T0 + 80);
	/* An older pull flushed later does not move it back. */
	OK(meta_manifest_read(f->m, "r", m2, 0, T0 + 75, &mm));
	OK(meta_access_flush(f->m, &flushed));
	assert_int_equal(last_pulled(f, "v"), T0 + 80);
	assert_consistent(f);
}

/* Many reads: one flush txn. */
static void
test_flush_many_reads_one_txn(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF];
	struct meta_manifest mm;
	char tag[16];
	uint64_t w0, f0, size;
	size_t flushed = 0;
	struct walk *w;

	two_blobs(f, "r", b1, b2);
	for (unsigned i = 0; i < 20; i++) {
		snprintf(tag, sizeof(tag), "t%02u", i);
		put_image(f, "r", dg(m, 100 + i), tag, b1, b2, T0);
	}
	w0 = write_txns(f);
	f0 = flush_txns(f);
	for (unsigned round = 0; round < 3; round++)
		for (unsigned i = 0; i < 20; i++) {
			snprintf(tag, sizeof(tag), "t%02u", i);
			OK(meta_manifest_read(f->m, "r", tag, 0,
			                      T0 + 10 + round + i, &mm));
		}
	OK(meta_blob_read(f->m, "r", b1, T0 + 40, &size));
	assert_int_equal(write_txns(f), w0); /* reads write nothing */
	OK(meta_access_flush(f->m, &flushed));
	assert_int_equal(flushed, 21); /* 20 manifests, 1 blob */
	assert_int_equal(write_txns(f), w0 + 1);
	assert_int_equal(flush_txns(f), f0 + 1);
	w = walk(f, NULL, NULL, 0);
	for (unsigned i = 0; i < 20; i++) {
		snprintf(tag, sizeof(tag), "t%02u", i);
		assert_int_equal(tag_of(w, "r", tag)->last_pulled, T0 + 12 + i);
	}
	/* Flushed: the next flush has nothing and writes nothing. */
	OK(meta_access_flush(f->m, &flushed));
	assert_int_equal(flushed, 0);
	assert_int_equal(write_txns(f), w0 + 1);
	assert_int_equal(flush_txns(f), f0 + 1);
}

/* A flush with nothing read adds no write txn. */
static void
test_flush_nothing(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF];
	size_t flushed = 99;
	uint64_t w0 = write_txns(f);

	OK(meta_access_flush(f->m, &flushed));
	assert_int_equal(flushed, 0);
	assert_int_equal(write_txns(f), w0);
	assert_int_equal(flush_txns(f), 0);
	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(m, 100), "t", b1, b2, T0);
	w0 = write_txns(f);
	OK(meta_access_flush(f->m, NULL));
	assert_int_equal(write_txns(f), w0);
	assert_int_equal(flush_txns(f), 0);
}

/* Without read tracking no last pull is remembered, and a flush has
 * nothing to write. */
static void
test_no_read_tracking(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF];
	struct meta_manifest mm;
	size_t flushed = 99;
	uint64_t w0;

	f->opt.no_read_tracking = 1;
	reopen(f);
	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(m, 100), "t", b1, b2, T0);
	OK(meta_manifest_read(f->m, "r", "t", 0, T0 + 50, &mm));
	assert_int_equal(last_pulled(f, "t"), 0);
	w0 = write_txns(f);
	OK(meta_access_flush(f->m, &flushed));
	assert_int_equal(flushed, 0);
	assert_int_equal(write_txns(f), w0);
}

#define T(fn)                                                                  \
	cmocka_unit_test_setup_teardown(fn, meta_fx_setup, meta_fx_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_walk_groups_repos),
	        T(test_walk_prefix_and_from),
	        T(test_walk_ttl),
	        T(test_sizes_image_alone),
	        T(test_sizes_two_tags),
	        T(test_sizes_shared_layer),
	        T(test_sizes_other_repo),
	        T(test_sizes_index),
	        T(test_sizes_index_child_tagged),
	        T(test_tags_expire),
	        T(test_repo_delete_all),
	        T(test_repo_delete_keeps_pinned_index),
	        T(test_repo_delete_keeps_pinned_tag),
	        T(test_repo_delete_keep_nothing),
	        T(test_repo_delete_referrers),
	        T(test_repo_delete_unknown),
	        T(test_repo_delete_links_only),
	        T(test_pins_round_trip),
	        T(test_stats_write_txns),
	        T(test_flush_last_pulled),
	        T(test_flush_many_reads_one_txn),
	        T(test_flush_nothing),
	        T(test_no_read_tracking),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
