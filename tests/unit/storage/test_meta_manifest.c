/* Unit tests of the metadata index on a real LMDB environment in a temp
 * directory: manifests, tags, indexes, referrers and the tag and catalog
 * listings. */
#include "test_meta_util.h"

/* ---- manifests ---- */

static void
test_manifest_put_get(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF];
	struct meta_manifest mm;

	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(m1, 100), "latest", b1, b2, T0);
	assert_int_equal(blob_rc(f, b1), 1);
	assert_int_equal(blob_rc(f, b2), 1);
	assert_int_equal(blob_q(f, b1), 0);
	assert_int_equal(blob_q(f, b2), 0);
	assert_int_equal(mf_rc(f, "r", m1), 1);
	assert_int_equal(mf_q(f, "r", m1), 0);
	assert_int_equal(gcq_len(f), 0);

	OK(meta_manifest_get(f->m, "r", "latest", 1, &mm));
	assert_string_equal(mm.digest, m1);
	assert_string_equal(mm.media_type, MT_OCI_MANIFEST);
	assert_int_equal(mm.size, strlen(m1));
	assert_memory_equal(mm.body, m1, strlen(m1));
	assert_int_equal(mm.queued, 0);
	free(mm.body);
	OK(meta_manifest_get(f->m, "r", m1, 0, &mm));
	assert_null(mm.body);
	assert_string_equal(mm.digest, m1);
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", "nope", 1, &mm));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "x", m1, 1, &mm));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", b1, 1, &mm));

	/* Putting it again changes no count; a new tag adds one. */
	put_image(f, "r", m1, NULL, b1, b2, T0);
	put_image(f, "r", m1, "latest", b1, b2, T0);
	assert_int_equal(blob_rc(f, b1), 1);
	assert_int_equal(mf_rc(f, "r", m1), 1);
	put_image(f, "r", m1, "v1", b1, b2, T0);
	assert_int_equal(mf_rc(f, "r", m1), 2);
	assert_int_equal(blob_rc(f, b1), 1);

	/* A blob listed twice by one manifest counts once. */
	put_image(f, "r", dg(m1, 101), "twice", b1, b1, T0);
	assert_int_equal(blob_rc(f, b1), 2);
	OK(meta_manifest_delete(f->m, "r", m1, T0));
	assert_int_equal(blob_rc(f, b1), 1);
}

static void
test_manifest_second_repo(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF];
	uint64_t size;
	struct meta_manifest mm;

	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(m1, 100), "latest", b1, b2, T0);
	OK(meta_blob_mount(f->m, "s", b1, "r", T0, &size));
	OK(meta_blob_mount(f->m, "s", b2, "r", T0, &size));
	put_image(f, "s", m1, "v", b1, b2, T0);
	assert_int_equal(blob_rc(f, b1), 2);
	assert_int_equal(blob_rc(f, b2), 2);
	assert_int_equal(mf_rc(f, "s", m1), 1);
	OK(meta_manifest_get(f->m, "s", "v", 1, &mm));
	free(mm.body);
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "s", "latest", 0, &mm));
}

static void
test_manifest_missing_blob(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], b3[DIGEST_BUF], m1[DIGEST_BUF];
	char missing[DIGEST_BUF] = "";
	struct meta_manifest mm;
	struct meta_list l;
	struct mi x;

	two_blobs(f, "r", b1, b2);
	RC(RC_MANIFEST_BLOB_UNKNOWN,
	   put(f, "r", dg(m1, 100), "t",
	       mk_info(&x, MT_OCI_MANIFEST, NULL, NULL, 2, b1, (int64_t)10,
	               dg(b3, 3), (int64_t)5),
	       T0, missing));
	assert_string_equal(missing, b3);
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", m1, 0, &mm));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", "t", 0, &mm));
	assert_int_equal(blob_rc(f, b1), 0);
	assert_int_equal(blob_q(f, b1), T0 + GRACE);
	OK(meta_tags_list(f->m, "r", NULL, SIZE_MAX, &l));
	assert_int_equal(l.count, 0);
	meta_list_free(&l);

	/* Known blob, but not linked in this repository. */
	OK(meta_blob_commit(f->m, "other", b3, 5, NULL, T0));
	missing[0] = '\0';
	RC(RC_MANIFEST_BLOB_UNKNOWN,
	   put(f, "r", m1, NULL,
	       mk_info(&x, MT_OCI_MANIFEST, NULL, NULL, 2, b1, (int64_t)10, b3,
	               (int64_t)5),
	       T0, missing));
	assert_string_equal(missing, b3);
	/* missing may be NULL. */
	RC(RC_MANIFEST_BLOB_UNKNOWN,
	   put(f, "r", m1, NULL,
	       mk_info(&x, MT_OCI_MANIFEST, NULL, NULL, 1, b3, (int64_t)5), T0,
	       NULL));
	assert_int_equal(blob_rc(f, b3), 0);
	assert_int_equal(gcq_len(f), 3);
}

static void
test_manifest_size_mismatch(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF], i1[DIGEST_BUF];
	char missing[DIGEST_BUF] = "", kid[DIGEST_BUF + 2];
	struct meta_manifest mm;
	struct mi x;

	two_blobs(f, "r", b1, b2);
	RC(RC_MANIFEST_INVALID, put(f, "r", dg(m1, 100), "t",
	                            mk_info(&x, MT_OCI_MANIFEST, NULL, NULL, 2,
	                                    b1, (int64_t)10, b2, (int64_t)21),
	                            T0, missing));
	assert_string_equal(missing, b2);
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", m1, 0, &mm));
	assert_int_equal(blob_rc(f, b1), 0);

	/* A manifest child's size is the stored body's size. */
	put_image(f, "r", m1, NULL, b1, b2, T0);
	snprintf(kid, sizeof(kid), "m:%s", m1);
	missing[0] = '\0';
	RC(RC_MANIFEST_INVALID, put(f, "r", dg(i1, 200), "t",
	                            mk_info(&x, MT_OCI_INDEX, NULL, NULL, 1,
	                                    kid, (int64_t)strlen(m1) + 1),
	                            T0, missing));
	assert_string_equal(missing, m1);
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", "t", 0, &mm));
	OK(put(f, "r", i1, "t",
	       mk_info(&x, MT_OCI_INDEX, NULL, NULL, 1, kid,
	               (int64_t)strlen(m1)),
	       T0, missing));
	assert_int_equal(mf_rc(f, "r", m1), 1);
	/* A negative descriptor size never matches. */
	RC(RC_MANIFEST_INVALID,
	   put(f, "r", dg(i1, 201), NULL,
	       mk_info(&x, MT_OCI_MANIFEST, NULL, NULL, 1, b1, (int64_t)-1), T0,
	       NULL));
}

static void
test_retag(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], ma[DIGEST_BUF], mb[DIGEST_BUF];
	struct meta_manifest mm;

	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(ma, 100), "t", b1, b2, T0);
	put_image(f, "r", dg(mb, 101), "t", b2, b1, T0 + 7);
	assert_int_equal(mf_rc(f, "r", ma), 0);
	assert_int_equal(mf_q(f, "r", ma),
	                 T0 + GRACE); /* pushed at T0, not read since */
	assert_int_equal(mf_rc(f, "r", mb), 1);
	assert_int_equal(mf_q(f, "r", mb), 0);
	assert_int_equal(blob_rc(f, b1), 2);
	OK(meta_manifest_get(f->m, "r", "t", 0, &mm));
	assert_string_equal(mm.digest, mb);
	OK(meta_manifest_get(f->m, "r", ma, 0, &mm));
	assert_int_equal(mm.queued, 1);

	/* Moving it back takes A off the queue again. */
	put_image(f, "r", ma, "t", b1, b2, T0 + 8);
	assert_int_equal(mf_rc(f, "r", ma), 1);
	assert_int_equal(mf_q(f, "r", ma), 0);
	assert_int_equal(mf_rc(f, "r", mb), 0);
	assert_int_equal(mf_q(f, "r", mb), T0 + 7 + GRACE);
}

static void
test_two_tags(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF];
	struct meta_manifest mm;

	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(m1, 100), "a", b1, b2, T0);
	put_image(f, "r", m1, "b", b1, b2, T0);
	assert_int_equal(mf_rc(f, "r", m1), 2);
	OK(meta_tag_delete(f->m, "r", "a", T0));
	assert_int_equal(mf_rc(f, "r", m1), 1);
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", "a", 0, &mm));
	RC(RC_MANIFEST_UNKNOWN, meta_tag_delete(f->m, "r", "a", T0));
	RC(RC_MANIFEST_UNKNOWN, meta_tag_delete(f->m, "zz", "b", T0));
	OK(meta_tag_delete(f->m, "r", "b", T0 + 3));
	assert_int_equal(mf_rc(f, "r", m1), 0);
	assert_int_equal(mf_q(f, "r", m1), T0 + GRACE);
	assert_int_equal(blob_rc(f, b1), 1); /* the manifest still exists */
	OK(meta_manifest_get(f->m, "r", m1, 0, &mm));
	assert_int_equal(mm.queued, 1);
}

static void
test_index(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], c1[DIGEST_BUF], c2[DIGEST_BUF];
	char i1[DIGEST_BUF], k1[DIGEST_BUF + 2], k2[DIGEST_BUF + 2];
	char missing[DIGEST_BUF] = "";
	struct meta_manifest mm;
	struct mi x;
	int64_t len;

	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(c1, 100), NULL, b1, b2, T0);
	put_image(f, "r", dg(c2, 101), NULL, b2, b1, T0);
	assert_int_equal(mf_rc(f, "r", c1), 0);
	assert_int_equal(mf_q(f, "r", c1), T0 + GRACE);
	assert_int_equal(mf_q(f, "r", c2), T0 + GRACE);
	len = (int64_t)strlen(c1);
	snprintf(k1, sizeof(k1), "m:%s", c1);
	snprintf(k2, sizeof(k2), "m:%s", c2);

	/* A child manifest unknown in this repository. */
	RC(RC_MANIFEST_BLOB_UNKNOWN,
	   put(f, "other", dg(i1, 200), "t",
	       mk_info(&x, MT_OCI_INDEX, NULL, NULL, 2, k1, len, k2, len), T0,
	       missing));
	assert_string_equal(missing, c1);

	OK(put(f, "r", i1, "t",
	       mk_info(&x, MT_OCI_INDEX, NULL, NULL, 2, k1, len, k2, len),
	       T0 + 1, missing));
	assert_int_equal(mf_rc(f, "r", c1), 1);
	assert_int_equal(mf_rc(f, "r", c2), 1);
	assert_int_equal(mf_q(f, "r", c1), 0);
	assert_int_equal(mf_q(f, "r", c2), 0);
	assert_int_equal(mf_rc(f, "r", i1), 1);
	assert_int_equal(blob_rc(f, b1), 2);
	assert_int_equal(gcq_len(f), 0);

	OK(meta_manifest_delete(f->m, "r", i1, T0 + 2));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", "t", 0, &mm));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", i1, 0, &mm));
	assert_int_equal(mf_rc(f, "r", c1), 0);
	assert_int_equal(mf_rc(f, "r", c2), 0);
	assert_int_equal(mf_q(f, "r", c1), T0 + GRACE);
	assert_int_equal(mf_q(f, "r", c2), T0 + GRACE);
	/* Children are queued, not deleted: their blobs keep their counts. */
	OK(meta_manifest_get(f->m, "r", c1, 0, &mm));
	assert_int_equal(blob_rc(f, b1), 2);
	assert_false(body_stored(f, i1));
	assert_false(child_row(f, i1, c1));
	assert_true(body_stored(f, c1));
	assert_true(child_row(f, c1, b1));
}

static void
test_manifest_delete(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF];
	struct meta_manifest mm;
	struct meta_list l;
	uint64_t size;

	two_blobs(f, "r", b1, b2);
	OK(meta_blob_mount(f->m, "s", b1, "r", T0, &size));
	OK(meta_blob_mount(f->m, "s", b2, "r", T0, &size));
	put_image(f, "r", dg(m1, 100), "a", b1, b2, T0);
	put_image(f, "r", m1, "b", b1, b2, T0);
	put_image(f, "r", dg(m2, 101), "b2", b2, b1, T0);
	put_image(f, "r", m1, "c", b1, b2, T0);
	put_image(f, "s", m1, "a", b1, b2, T0);
	assert_int_equal(blob_rc(f, b1), 3);
	assert_int_equal(mf_rc(f, "r", m1), 3);

	RC(RC_MANIFEST_UNKNOWN, meta_manifest_delete(f->m, "r", b1, T0));
	OK(meta_manifest_delete(f->m, "r", m1, T0 + 4));
	OK(meta_tags_list(f->m, "r", NULL, SIZE_MAX, &l));
	assert_int_equal(l.count, 1);
	assert_string_equal(l.items[0], "b2");
	meta_list_free(&l);
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_get(f->m, "r", m1, 0, &mm));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_refcount(f->m, "r", m1, &size));
	assert_int_equal(blob_rc(f, b1), 2);
	/* Repository s still holds the body. */
	OK(meta_manifest_get(f->m, "s", "a", 1, &mm));
	assert_memory_equal(mm.body, m1, strlen(m1));
	free(mm.body);
	assert_true(body_stored(f, m1));
	assert_true(child_row(f, m1, b1));

	OK(meta_manifest_delete(f->m, "s", m1, T0 + 5));
	OK(meta_manifest_delete(f->m, "r", m2, T0 + 6));
	assert_int_equal(blob_rc(f, b1), 0);
	assert_int_equal(blob_q(f, b1), T0 + GRACE);
	assert_int_equal(blob_q(f, b2), T0 + GRACE);
	assert_false(body_stored(f, m1));
	assert_false(body_stored(f, m2));
	assert_false(child_row(f, m1, b1));
	assert_false(child_row(f, m2, b2));
	RC(RC_MANIFEST_UNKNOWN, meta_manifest_delete(f->m, "r", m1, T0));

	/* A queued manifest leaves the queue with its row. */
	put_image(f, "r", m1, NULL, b1, b2, T0 + 7);
	assert_int_equal(mf_q(f, "r", m1), T0 + 7 + GRACE);
	OK(meta_manifest_delete(f->m, "r", m1, T0 + 8));
	assert_int_equal(mf_q(f, "r", m1), 0);
	assert_int_equal(gcq_len(f), 2); /* the two blobs */
}

static void
test_referrers(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], s1[DIGEST_BUF], s2[DIGEST_BUF];
	char r1[DIGEST_BUF], r0[DIGEST_BUF], r2[DIGEST_BUF];
	struct meta_referrers rl;
	struct mi x;

	two_blobs(f, "r", b1, b2);
	put_image(f, "r", dg(s1, 100), "v1", b1, b2, T0);

	/* Artifact pushed after its subject: +1 from the subject. */
	x.info.annotations_json = NULL;
	mk_info(&x, "application/vnd.test.sig", s1, "application/x-sig", 1, b1,
	        (int64_t)10);
	x.info.annotations_json = "{\"k\":\"v\"}";
	OK(put(f, "r", dg(r1, 300), NULL, &x.info, T0, NULL));
	assert_int_equal(mf_rc(f, "r", r1), 1);
	assert_int_equal(mf_q(f, "r", r1), 0);
	mk_info(&x, "application/vnd.test.sbom", s1, "application/x-sbom", 1,
	        b2, (int64_t)20);
	OK(put(f, "r", dg(r2, 302), NULL, &x.info, T0, NULL));

	OK(meta_referrers_list(f->m, "r", s1, NULL, &rl));
	assert_int_equal(rl.count, 2);
	assert_string_equal(rl.items[0].digest, r1);
	assert_string_equal(rl.items[0].media_type, "application/vnd.test.sig");
	assert_string_equal(rl.items[0].artifact_type, "application/x-sig");
	assert_string_equal(rl.items[0].annotations_json, "{\"k\":\"v\"}");
	assert_int_equal(rl.items[0].size, strlen(r1));
	assert_null(rl.items[1].annotations_json);
	meta_referrers_free(&rl);
	OK(meta_referrers_list(f->m, "r", s1, "application/x-sbom", &rl));
	assert_int_equal(rl.count, 1);
	assert_string_equal(rl.items[0].digest, r2);
	meta_referrers_free(&rl);
	OK(meta_referrers_list(f->m, "r", s1, "application/none", &rl));
	assert_int_equal(rl.count, 0);
	meta_referrers_free(&rl);
	OK(meta_referrers_list(f->m, "r", b1, NULL, &rl));
	assert_int_equal(rl.count, 0);
	meta_referrers_free(&rl);
	OK(meta_referrers_list(f->m, "other", s1, NULL, &rl));
	assert_int_equal(rl.count, 0);
	meta_referrers_free(&rl);

	/* Artifact pushed before its subject: queued, then kept alive. */
	mk_info(&x, "application/vnd.test.sig", dg(s2, 101),
	        "application/x-sig", 1, b1, (int64_t)10);
	OK(put(f, "r", dg(r0, 301), NULL, &x.info, T0, NULL));
	assert_int_equal(mf_rc(f, "r", r0), 0);
	assert_int_equal(mf_q(f, "r", r0), T0 + GRACE);
	OK(meta_referrers_list(f->m, "r", s2, NULL, &rl));
	assert_int_equal(rl.count, 1);
	assert_string_equal(rl.items[0].digest, r0);
	meta_referrers_free(&rl);
	put_image(f, "r", s2, NULL, b2, b1, T0 + 1);
	assert_int_equal(mf_rc(f, "r", r0), 1);
	assert_int_equal(mf_q(f, "r", r0), 0);
	assert_int_equal(mf_rc(f, "r", s2), 0); /* referrers give no count */

	/* Subject deleted: its referrers lose the count it gave. */
	OK(meta_manifest_delete(f->m, "r", s1, T0 + 2));
	assert_int_equal(mf_rc(f, "r", r1), 0);
	assert_int_equal(mf_q(f, "r", r1), T0 + GRACE);
	assert_int_equal(mf_rc(f, "r", r2), 0);
	/* Referrer deleted: it leaves the list. */
	OK(meta_manifest_delete(f->m, "r", r1, T0 + 3));
	OK(meta_referrers_list(f->m, "r", s1, NULL, &rl));
	assert_int_equal(rl.count, 1);
	assert_string_equal(rl.items[0].digest, r2);
	meta_referrers_free(&rl);
	/* The subject pushed again gives the count back. */
	put_image(f, "r", s1, "v1", b1, b2, T0 + 4);
	assert_int_equal(mf_rc(f, "r", r2), 1);
	assert_int_equal(mf_q(f, "r", r2), 0);
}

/* ---- listings ---- */
static void
test_tags_list(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF];
	const char *tags[] = {"e", "a", "c", "b", "d", "C"};
	struct meta_list l;
	uint64_t size;

	two_blobs(f, "r", b1, b2);
	for (size_t i = 0; i < 6; i++)
		put_image(f, "r", dg(m1, 100), tags[i], b1, b2, T0);
	OK(meta_blob_mount(f->m, "r/x", b1, "r", T0, &size));
	put_image(f, "r/x", dg(m1, 101), "zz", b1, b1, T0);
	OK(meta_blob_mount(f->m, "ra", b1, "r", T0, &size));
	put_image(f, "ra", m1, "aa", b1, b1, T0);

	OK(meta_tags_list(f->m, "r", NULL, 2, &l));
	expect_list(&l, 1, 2, "C", "a");
	meta_list_free(&l);
	OK(meta_tags_list(f->m, "r", "a", 2, &l));
	expect_list(&l, 1, 2, "b", "c");
	meta_list_free(&l);
	OK(meta_tags_list(f->m, "r", "c", 2, &l));
	expect_list(&l, 0, 2, "d", "e");
	meta_list_free(&l);
	OK(meta_tags_list(f->m, "r", "bb", 1, &l)); /* last need not exist */
	expect_list(&l, 1, 1, "c");
	meta_list_free(&l);
	OK(meta_tags_list(f->m, "r", "e", 5, &l));
	expect_list(&l, 0, 0);
	meta_list_free(&l);
	OK(meta_tags_list(f->m, "r", NULL, SIZE_MAX, &l));
	expect_list(&l, 0, 6, "C", "a", "b", "c", "d", "e");
	meta_list_free(&l);
	OK(meta_tags_list(f->m, "r", NULL, 6, &l));
	expect_list(&l, 0, 6, "C", "a", "b", "c", "d", "e");
	meta_list_free(&l);
	OK(meta_tags_list(f->m, "r", NULL, 0, &l));
	expect_list(&l, 0, 0);
	meta_list_free(&l);
	OK(meta_tags_list(f->m, "r/x", NULL, 10, &l));
	expect_list(&l, 0, 1, "zz");
	meta_list_free(&l);

	RC(RC_NAME_UNKNOWN, meta_tags_list(f->m, "nope", NULL, 10, &l));
	RC(RC_NAME_UNKNOWN, meta_tags_list(f->m, "r/", NULL, 10, &l));
	/* A repository with only a blob link, or only an untagged manifest,
	 * is known and has no tags. */
	OK(meta_blob_commit(f->m, "onlyblob", b1, 10, NULL, T0));
	OK(meta_tags_list(f->m, "onlyblob", NULL, 10, &l));
	expect_list(&l, 0, 0);
	meta_list_free(&l);
	OK(meta_blob_unlink(f->m, "onlyblob", b1, T0));
	RC(RC_NAME_UNKNOWN, meta_tags_list(f->m, "onlyblob", NULL, 10, &l));
	OK(meta_blob_mount(f->m, "untagged", b1, NULL, T0, &size));
	put_image(f, "untagged", m1, NULL, b1, b1, T0);
	OK(meta_blob_unlink(f->m, "untagged", b1, T0));
	OK(meta_tags_list(f->m, "untagged", NULL, 10, &l));
	expect_list(&l, 0, 0);
	meta_list_free(&l);
}

static void
test_catalog(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF];
	const char *repos[] = {"b", "ab", "a/b", "a", "a"};
	struct meta_list l;
	uint64_t size;

	OK(meta_catalog_list(f->m, NULL, 10, &l));
	expect_list(&l, 0, 0);
	meta_list_free(&l);
	two_blobs(f, "seed", b1, b2);
	for (unsigned i = 0; i < 5; i++) {
		OK(meta_blob_mount(f->m, repos[i], b1, NULL, T0, &size));
		OK(meta_blob_mount(f->m, repos[i], b2, NULL, T0, &size));
		put_image(f, repos[i], dg(m, 100 + i), NULL, b1, b2, T0);
	}
	/* "seed" has links but no manifest: not in the catalog. */
	OK(meta_catalog_list(f->m, NULL, SIZE_MAX, &l));
	expect_list(&l, 0, 4, "a", "a/b", "ab", "b");
	meta_list_free(&l);
	OK(meta_catalog_list(f->m, NULL, 2, &l));
	expect_list(&l, 1, 2, "a", "a/b");
	meta_list_free(&l);
	OK(meta_catalog_list(f->m, "a/b", 2, &l));
	expect_list(&l, 0, 2, "ab", "b");
	meta_list_free(&l);
	OK(meta_catalog_list(f->m, "a", 1, &l));
	expect_list(&l, 1, 1, "a/b");
	meta_list_free(&l);
	OK(meta_catalog_list(f->m, "aa", 10, &l));
	expect_list(&l, 0, 2, "ab", "b");
	meta_list_free(&l);
	OK(meta_catalog_list(f->m, "b", 10, &l));
	expect_list(&l, 0, 0);
	meta_list_free(&l);
	OK(meta_catalog_list(f->m, NULL, 0, &l));
	expect_list(&l, 0, 0);
	meta_list_free(&l);
	OK(meta_catalog_list(f->m, NULL, 4, &l));
	expect_list(&l, 0, 4, "a", "a/b", "ab", "b");
	meta_list_free(&l);
}

/* A filter for the catalog: names starting with one of the prefixes in
 * arg (a NULL-terminated array), counting how often it was asked. */
static unsigned filter_calls;

static int
starts_with_one(const char *name, void *arg)
{
	const char *const *p = arg;

	filter_calls++;
	for (; *p != NULL; p++)
		if (strncmp(name, *p, strlen(*p)) == 0)
			return 1;
	return 0;
}

static void
test_catalog_filter(void **state)
{
	struct fx *f = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF];
	const char *repos[] = {"a/1", "a/2", "b/1", "b/2", "b/3",
	                       "c/1", "c/2", "c/3", "c/4", "d/1"};
	const char *ad[] = {"a/", "d/", NULL}, *b[] = {"b/", NULL};
	const char *a[] = {"a/", NULL};
	const char *none[] = {NULL}, *d[] = {"d/", NULL};
	struct meta_list l;
	uint64_t size;

	two_blobs(f, "seed", b1, b2);
	for (unsigned i = 0; i < 10; i++) {
		OK(meta_blob_mount(f->m, repos[i], b1, NULL, T0, &size));
		OK(meta_blob_mount(f->m, repos[i], b2, NULL, T0, &size));
		put_image(f, repos[i], dg(m, 200 + i), "t", b1, b2, T0);
	}
	/* Without a bound: only the visible names; a page holds n of
	 * them and says more only when another visible one follows. */
	OK(meta_catalog_filter(f->m, NULL, 10, starts_with_one, ad, 0, &l));
	expect_list(&l, 0, 3, "a/1", "a/2", "d/1");
	meta_list_free(&l);
	OK(meta_catalog_filter(f->m, NULL, 2, starts_with_one, ad, 0, &l));
	expect_list(&l, 1, 2, "a/1", "a/2");
	meta_list_free(&l);
	OK(meta_catalog_filter(f->m, "a/2", 2, starts_with_one, ad, 0, &l));
	expect_list(&l, 0, 1, "d/1");
	meta_list_free(&l);
	/* the last visible name: no more, though names follow it */
	OK(meta_catalog_filter(f->m, NULL, 3, starts_with_one, b, 0, &l));
	expect_list(&l, 0, 3, "b/1", "b/2", "b/3");
	meta_list_free(&l);
	OK(meta_catalog_filter(f->m, "b/1", 1, starts_with_one, b, 0, &l));
	expect_list(&l, 1, 1, "b/2");
	meta_list_free(&l);
	/* a `last` the caller cannot see: the walk starts after it */
	OK(meta_catalog_filter(f->m, "c/2", 5, starts_with_one, ad, 0, &l));
	expect_list(&l, 0, 1, "d/1");
	meta_list_free(&l);
	OK(meta_catalog_filter(f->m, NULL, 5, starts_with_one, none, 0, &l));
	expect_list(&l, 0, 0);
	meta_list_free(&l);
	OK(meta_catalog_filter(f->m, NULL, 0, starts_with_one, ad, 0, &l));
	expect_list(&l, 0, 0);
	meta_list_free(&l);

	/* A budget of 3 names examined: a page that has a name ends
	 * there, cut short, with more set... */
	filter_calls = 0;
	OK(meta_catalog_filter(f->m, NULL, 10, starts_with_one, ad, 3, &l));
	expect_list(&l, 1, 2, "a/1", "a/2");
	assert_int_equal(filter_calls, 3);
	meta_list_free(&l);
	/* ... and the next page goes on after its last name. One with no
	 * name yet walks on to the first visible one (never a name the
	 * caller cannot see as the page's last). */
	filter_calls = 0;
	OK(meta_catalog_filter(f->m, "a/2", 10, starts_with_one, ad, 3, &l));
	expect_list(&l, 0, 1, "d/1");
	assert_int_equal(filter_calls, 8);
	meta_list_free(&l);
	OK(meta_catalog_filter(f->m, NULL, 10, starts_with_one, d, 3, &l));
	expect_list(&l, 0, 1, "d/1");
	meta_list_free(&l);
	/* The look-ahead that decides `more` is bounded too: with the
	 * budget spent before another visible name turned up, more is set
	 * though none follows, and the next page is empty (the cost). */
	OK(meta_catalog_filter(f->m, NULL, 1, starts_with_one, a, 4, &l));
	expect_list(&l, 1, 1, "a/1"); /* a/2 seen: more */
	meta_list_free(&l);
	filter_calls = 0;
	OK(meta_catalog_filter(f->m, "a/1", 1, starts_with_one, a, 4, &l));
	expect_list(&l, 1, 1, "a/2"); /* b/1, b/2, b/3: budget spent */
	assert_int_equal(filter_calls, 4);
	meta_list_free(&l);
	OK(meta_catalog_filter(f->m, "a/2", 1, starts_with_one, a, 4, &l));
	expect_list(&l, 0, 0);
	meta_list_free(&l);
	/* No filter: meta_catalog_list, every name. */
	OK(meta_catalog_filter(f->m, "c/3", 10, NULL, NULL, 1, &l));
	expect_list(&l, 0, 2, "c/4", "d/1");
	meta_list_free(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, meta_fx_setup, meta_fx_teardown)
	        T(test_manifest_put_get),
	        T(test_manifest_second_repo),
	        T(test_manifest_missing_blob),
	        T(test_manifest_size_mismatch),
	        T(test_retag),
	        T(test_two_tags),
	        T(test_index),
	        T(test_manifest_delete),
	        T(test_referrers),
	        T(test_tags_list),
	        T(test_catalog),
	        T(test_catalog_filter),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
