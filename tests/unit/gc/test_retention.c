/* Retention runs (gc_run_with) against a real LMDB index and blob
 * directory: tags expired by TTL label and by policy, what pins keep from
 * expiry and collection, dry runs, the cleanup query (gc_tags_query) and
 * repository deletes (gc_repo_delete). */
#include "test_gc_util.h"

#include <sys/stat.h>

/* An image of two blobs, tagged (tag may be NULL) with a TTL label (ttl 0:
 * none). */
static void
image(struct gfx *x, const char *repo, unsigned n, const char *tag,
      const char *b1, const char *b2, uint64_t ttl, const char *label,
      uint64_t now, char m[DIGEST_BUF])
{
	struct mi mx;
	struct meta_manifest_put p = {
	        .repo = repo,
	        .digest = dg(m, n),
	        .tag = tag,
	        .body = m,
	        .body_len = strlen(m),
	        .info = mk_info(&mx, MT_OCI_MANIFEST, NULL, NULL, 2, b1,
	                        blob_size(&x->base, b1), b2,
	                        blob_size(&x->base, b2)),
	        .ttl = ttl,
	        .ttl_source = label};

	OK(meta_manifest_put(x->base.m, &p, now, NULL));
}

static void
index_of(struct gfx *x, const char *repo, unsigned n, const char *tag,
         const char *c1, const char *c2, uint64_t ttl, uint64_t now,
         char ix[DIGEST_BUF])
{
	char k1[DIGEST_BUF + 2], k2[DIGEST_BUF + 2];
	struct mi mx;
	struct meta_manifest_put p;

	snprintf(k1, sizeof(k1), "m:%s", c1);
	snprintf(k2, sizeof(k2), "m:%s", c2);
	memset(&p, 0, sizeof(p));
	p.repo = repo;
	p.digest = dg(ix, n);
	p.tag = tag;
	p.body = ix;
	p.body_len = strlen(ix);
	p.info = mk_info(&mx, MT_OCI_INDEX, NULL, NULL, 2, k1,
	                 (int64_t)strlen(c1), k2, (int64_t)strlen(c2));
	p.ttl = ttl;
	p.ttl_source = ttl ? GC_TTL_LABEL : NULL;
	OK(meta_manifest_put(x->base.m, &p, now, NULL));
}

static struct gc_policy *
policy(const char *text)
{
	struct gc_policy *p = NULL;
	char err[256];
	int rc = gc_policy_parse(text, strlen(text), "policy.json", &p, err,
	                         sizeof(err));

	if (rc != 0)
		fail_msg("policy refused: %s", err);
	return p;
}

/* Pins from n references (n may be 0). */
static struct gc_pins *
pins(size_t n, ...)
{
	char *refs[8];
	struct gc_pins *p = NULL;
	char err[256];
	va_list ap;

	assert_true(n <= 8);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		refs[i] = va_arg(ap, char *);
	va_end(ap);
	if (gc_pins_parse(refs, n, &p, err, sizeof(err)) != 0)
		fail_msg("pins refused: %s", err);
	return p;
}

struct seen {
	int expired, items;
	char last_tag[129];
};

static void
on_expired(const struct gc_expired *e, void *arg)
{
	struct seen *s = arg;

	s->expired++;
	snprintf(s->last_tag, sizeof(s->last_tag), "%s", e->tag);
}

static void
on_item(const struct gc_item *it, void *arg)
{
	((struct seen *)arg)->items++;
}

static struct gc_report
run_with(struct gfx *x, uint64_t now, int dry, const struct gc_policy *pol,
         const struct gc_pins *ps, struct seen *seen)
{
	struct gc_run_options o = {.dry_run = dry,
	                           .policy = pol,
	                           .pins = ps,
	                           .item = seen ? on_item : NULL,
	                           .expired = seen ? on_expired : NULL,
	                           .arg = seen};
	struct gc_report r;

	OK(gc_run_with(x->g, &o, now, &r));
	return r;
}

static const struct gc_expired *
expired_of(const struct gc_report *r, const char *repo, const char *tag)
{
	for (size_t i = 0; i < r->n_expired; i++)
		if (strcmp(r->expired[i].repo, repo) == 0 &&
		    strcmp(r->expired[i].tag, tag) == 0)
			return &r->expired[i];
	return NULL;
}

/* The tags of repo as "a,b,c" ("" when none, "-" for an unknown repo). */
static const char *
tags_of(struct gfx *x, const char *repo)
{
	static char buf[512];
	struct meta_list l;
	size_t len = 0;
	int rc = meta_tags_list(x->base.m, repo, NULL, SIZE_MAX, &l);

	if (rc == RC_NAME_UNKNOWN)
		return "-";
	OK(rc);
	buf[0] = '\0';
	for (size_t i = 0; i < l.count; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
		                        i ? "," : "", l.items[i]);
	meta_list_free(&l);
	return buf;
}

static void
on_problem(const struct meta_check_problem *p, void *arg)
{
	(*(int *)arg)++;
	print_error("check problem %d: repo \"%s\" digest %s name \"%s\"\n",
	            p->code, p->repo, p->digest, p->name);
}

static void
assert_consistent(struct gfx *x)
{
	struct meta_check_cb cb = {.problem = on_problem};
	int n = 0;

	cb.arg = &n;
	OK(meta_check_run(x->base.m, &cb, NULL));
	if (n != 0)
		fail_msg("meta_check_run found %d problems", n);
}

/* ---- TTL labels ---- */

/* A tag past its TTL is expired and reported; its manifest is queued
 * like after any tag delete and goes with the bytes only it held. */
static void
test_ttl_expiry(void **state)
{
	struct gfx *x = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF];
	const struct gc_expired *e;
	struct seen seen = {0};
	struct gc_report r;

	push_blob(x, "r", "shared base", T0, b1);
	push_blob(x, "r", "own layer", T0, b2);
	image(x, "r", 100, "pr-1", b1, b2, 50, GC_TTL_LABEL, T0, m1);
	image(x, "r", 101, "main", b1, b1, 0, NULL, T0, m2);

	r = run_with(x, T0 + 49, 0, NULL, NULL, &seen);
	assert_int_equal(r.n_expired, 0);
	assert_int_equal(seen.expired, 0);
	gc_report_free(&r);
	assert_string_equal(tags_of(x, "r"), "main,pr-1");

	r = run_with(x, T0 + 50, 0, NULL, NULL, &seen);
	assert_int_equal(r.n_expired, 1);
	e = expired_of(&r, "r", "pr-1");
	assert_non_null(e);
	assert_string_equal(e->digest, m1);
	assert_string_equal(e->reason, "ttl label " GC_TTL_LABEL);
	assert_int_equal(e->expires, T0 + 50);
	assert_int_equal(e->pushed, T0);
	assert_int_equal(e->bytes, strlen("own layer"));
	assert_int_equal(seen.expired, 1);
	assert_string_equal(seen.last_tag, "pr-1");
	assert_int_equal(r.n_kept, 0);
	assert_int_equal(r.pins, 0);
	/* Pushed at T0: its manifest waits for the grace. */
	assert_int_equal(r.n_items, 0);
	assert_int_equal(mf_q(&x->base, "r", m1), T0 + GRACE);
	gc_report_free(&r);
	assert_string_equal(tags_of(x, "r"), "main");
	assert_consistent(x);

	r = run_with(x, T0 + GRACE + 1, 0, NULL, NULL, &seen);
	assert_int_equal(r.n_expired, 0);
	assert_true(listed(&r, GC_MANIFEST, m1));
	assert_true(listed(&r, GC_BLOB, b2));
	assert_false(listed(&r, GC_BLOB, b1));
	assert_int_equal(r.bytes_freed, strlen("own layer"));
	assert_int_equal(seen.items, 2);
	gc_report_free(&r);
	assert_false(file_exists(x, b2));
	assert_true(file_exists(x, b1));
	assert_consistent(x);
}

/* Quay's label, and a tag pushed again without the label never
 * expires. */
static void
test_ttl_quay_and_repush(void **state)
{
	struct gfx *x = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF];
	struct gc_report r;

	push_blob(x, "r", "1", T0, b1);
	push_blob(x, "r", "2", T0, b2);
	image(x, "r", 100, "q", b1, b2, 10, GC_TTL_LABEL_QUAY, T0, m1);
	image(x, "r", 101, "again", b2, b1, 10, GC_TTL_LABEL, T0, m2);
	image(x, "r", 101, "again", b2, b1, 0, NULL, T0 + 5, m2);
	r = run_with(x, T0 + 1000, 0, NULL, NULL, NULL);
	assert_int_equal(r.n_expired, 1);
	assert_string_equal(r.expired[0].tag, "q");
	assert_string_equal(r.expired[0].reason,
	                    "ttl label " GC_TTL_LABEL_QUAY);
	gc_report_free(&r);
	assert_string_equal(tags_of(x, "r"), "again");
}

/* ---- policy ---- */

static void
test_policy_keep_last(void **state)
{
	struct gfx *x = *state;
	struct gc_policy *p =
	        policy("{\"rules\": [{\"repositories\": [\"review/**\"], "
	               "\"tags\": [\"pr-*\"], \"keep_last\": 2}]}");
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[4][DIGEST_BUF];
	const struct gc_expired *e;
	struct gc_report r;

	push_blob(x, "review/web", "1", T0, b1);
	push_blob(x, "review/web", "2", T0, b2);
	image(x, "review/web", 100, "pr-1", b1, b2, 0, NULL, T0, m[0]);
	image(x, "review/web", 101, "pr-2", b1, b2, 0, NULL, T0 + 1, m[1]);
	image(x, "review/web", 102, "pr-3", b1, b2, 0, NULL, T0 + 2, m[2]);
	image(x, "review/web", 103, "main", b1, b2, 0, NULL, T0, m[3]);
	r = run_with(x, T0 + 10, 0, p, NULL, NULL);
	assert_int_equal(r.n_expired, 1);
	e = expired_of(&r, "review/web", "pr-1");
	assert_non_null(e);
	assert_string_equal(e->reason, "policy rule 1 (keep_last 2)");
	assert_int_equal(e->expires, T0 + 10);
	assert_string_equal(e->digest, m[0]);
	gc_report_free(&r);
	assert_string_equal(tags_of(x, "review/web"), "main,pr-2,pr-3");
	/* The next run finds nothing more. */
	r = run_with(x, T0 + 20, 0, p, NULL, NULL);
	assert_int_equal(r.n_expired, 0);
	gc_report_free(&r);
	/* A run without the policy would expire nothing either. */
	image(x, "review/web", 104, "pr-4", b1, b2, 0, NULL, T0 + 30, m[0]);
	r = run_with(x, T0 + 40, 0, NULL, NULL, NULL);
	assert_int_equal(r.n_expired, 0);
	gc_report_free(&r);
	r = run_with(x, T0 + 40, 0, p, NULL, NULL);
	assert_int_equal(r.n_expired, 1);
	assert_string_equal(r.expired[0].tag, "pr-2");
	gc_report_free(&r);
	gc_policy_free(p);
	assert_consistent(x);
}

/* untagged_after: an unreferenced manifest stays that long after its
 * last access (longer than the grace). */
static void
test_policy_untagged_after(void **state)
{
	struct gfx *x = *state;
	struct gc_policy *p =
	        policy("{\"untagged_after\": \"1h\", \"rules\": []}");
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF];
	struct gc_report r;

	push_blob(x, "r", "1", T0, b1);
	push_blob(x, "r", "2", T0, b2);
	image(x, "r", 100, NULL, b1, b2, 0, NULL, T0, m1);
	r = run_with(x, T0 + 200, 0, p, NULL, NULL);
	assert_int_equal(r.n_items, 0);
	assert_int_equal(r.waiting, 1);
	gc_report_free(&r);
	r = run_with(x, T0 + 3600, 0, p, NULL, NULL);
	assert_int_equal(r.n_items, 0);
	gc_report_free(&r);
	r = run_with(x, T0 + 3601, 0, p, NULL, NULL);
	assert_true(listed(&r, GC_MANIFEST, m1));
	assert_int_equal(r.count[GC_BLOB], 2);
	gc_report_free(&r);
	gc_policy_free(p);
	assert_false(file_exists(x, b1));
}

/* ---- pins ---- */

/* A pinned tag past its expiry is kept and listed in report.kept, by a
 * tag pin and by a digest pin; without pins it goes. */
static void
test_pinned_tag_kept(void **state)
{
	struct gfx *x = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF];
	char ref[128];
	struct gc_pins *ps = pins(1, "registry.example:5000/r:t");
	struct gc_pins *pd;
	struct gc_report r;

	push_blob(x, "r", "1", T0, b1);
	push_blob(x, "r", "2", T0, b2);
	image(x, "r", 100, "t", b1, b2, 10, GC_TTL_LABEL, T0, m1);
	image(x, "r", 101, "u", b2, b1, 10, GC_TTL_LABEL, T0, m2);
	snprintf(ref, sizeof(ref), "r@%s", m2);
	pd = pins(1, ref);

	r = run_with(x, T0 + 500, 0, NULL, ps, NULL);
	assert_int_equal(r.pins, 1);
	assert_int_equal(r.n_expired, 1); /* u */
	assert_string_equal(r.expired[0].tag, "u");
	assert_int_equal(r.n_kept, 1);
	assert_string_equal(r.kept[0].repo, "r");
	assert_string_equal(r.kept[0].tag, "t");
	assert_string_equal(r.kept[0].digest, m1);
	assert_string_equal(r.kept[0].pin, "registry.example:5000/r:t");
	assert_string_equal(r.kept[0].reason, "ttl label " GC_TTL_LABEL);
	gc_report_free(&r);
	assert_string_equal(tags_of(x, "r"), "t");
	assert_int_equal(mf_rc(&x->base, "r", m1), 1);

	/* Pinned by digest: the same. */
	r = run_with(x, T0 + 600, 0, NULL, pd, NULL);
	assert_int_equal(r.n_expired, 1);
	assert_string_equal(r.expired[0].tag, "t");
	gc_report_free(&r);
	/* m1 and m2 went with their layers: pushed again. */
	push_blob(x, "r", "1", T0 + 600, b1);
	push_blob(x, "r", "2", T0 + 600, b2);
	image(x, "r", 101, "u", b2, b1, 10, GC_TTL_LABEL, T0 + 600, m2);
	r = run_with(x, T0 + 700, 0, NULL, pd, NULL);
	assert_int_equal(r.n_expired, 0);
	assert_int_equal(r.n_kept, 1);
	assert_string_equal(r.kept[0].tag, "u");
	assert_string_equal(r.kept[0].pin, ref);
	gc_report_free(&r);
	assert_string_equal(tags_of(x, "r"), "u");
	gc_pins_free(ps);
	gc_pins_free(pd);
	assert_consistent(x);
}

/* A pinned index without tags is not collected, and neither are its
 * children and layers, however long past the grace; once the pins are
 * gone, everything goes. */
static void
test_pinned_index_children(void **state)
{
	struct gfx *x = *state;
	char l1[DIGEST_BUF], l2[DIGEST_BUF], l3[DIGEST_BUF];
	char m1[DIGEST_BUF], m2[DIGEST_BUF], ix[DIGEST_BUF], ref[128];
	struct gc_pins *ps;
	struct gc_report r;

	push_blob(x, "r", "l1", T0, l1);
	push_blob(x, "r", "l2", T0, l2);
	push_blob(x, "r", "l3", T0, l3);
	image(x, "r", 100, NULL, l1, l2, 0, NULL, T0, m1);
	image(x, "r", 101, NULL, l1, l3, 0, NULL, T0, m2);
	index_of(x, "r", 200, "t", m1, m2, 10, T0, ix);
	snprintf(ref, sizeof(ref), "docker-pullable://registry.example/r@%s",
	         ix);
	ps = pins(1, ref);

	/* Expired (the tag alone is not pinned: the pin is on the digest,
	 * which also keeps the tag). */
	r = run_with(x, T0 + 20, 0, NULL, ps, NULL);
	assert_int_equal(r.n_expired, 0);
	assert_int_equal(r.n_kept, 1);
	assert_string_equal(r.kept[0].tag, "t");
	gc_report_free(&r);
	OK(meta_tag_delete(x->base.m, "r", "t", T0 + 20));

	r = run_with(x, T0 + 500, 0, NULL, ps, NULL);
	assert_int_equal(r.n_items, 0);
	assert_int_equal(r.n_kept, 1);
	assert_string_equal(r.kept[0].repo, "r");
	assert_string_equal(r.kept[0].tag, "");
	assert_string_equal(r.kept[0].digest, ix);
	assert_string_equal(r.kept[0].pin, ref);
	gc_report_free(&r);
	r = run_with(x, T0 + 5000, 0, NULL, ps, NULL);
	assert_int_equal(r.n_items, 0);
	gc_report_free(&r);
	/* A dry run says the same and deletes nothing. */
	r = run_with(x, T0 + 9000, 1, NULL, ps, NULL);
	assert_int_equal(r.n_items, 0);
	assert_int_equal(r.n_kept, 1);
	gc_report_free(&r);
	assert_true(file_exists(x, l1) && file_exists(x, l2) &&
	            file_exists(x, l3));
	assert_int_equal(mf_rc(&x->base, "r", m1), 1);
	assert_consistent(x);

	/* Pins gone: the index, both children and three layers. */
	r = run_with(x, T0 + 9000, 0, NULL, NULL, NULL);
	assert_int_equal(r.n_kept, 0);
	assert_int_equal(r.count[GC_MANIFEST], 3);
	assert_int_equal(r.count[GC_BLOB], 3);
	gc_report_free(&r);
	assert_false(file_exists(x, l1) || file_exists(x, l2) ||
	             file_exists(x, l3));
	assert_string_equal(tags_of(x, "r"), "-");
	gc_pins_free(ps);
	assert_consistent(x);
}

/* A pin on a child manifest keeps that child (and its layers) when the
 * index goes. */
static void
test_pinned_child(void **state)
{
	struct gfx *x = *state;
	char l1[DIGEST_BUF], l2[DIGEST_BUF], l3[DIGEST_BUF];
	char m1[DIGEST_BUF], m2[DIGEST_BUF], ix[DIGEST_BUF];
	struct gc_pins *ps;
	struct gc_report r;

	push_blob(x, "r", "l1", T0, l1);
	push_blob(x, "r", "l2", T0, l2);
	push_blob(x, "r", "l3", T0, l3);
	image(x, "r", 100, NULL, l1, l2, 0, NULL, T0, m1);
	image(x, "r", 101, NULL, l1, l3, 0, NULL, T0, m2);
	index_of(x, "r", 200, "t", m1, m2, 10, T0, ix);
	ps = pins(1, m1); /* a bare digest */
	r = run_with(x, T0 + 500, 0, NULL, ps, NULL);
	assert_int_equal(r.n_expired, 1);
	assert_true(listed(&r, GC_MANIFEST, ix));
	assert_true(listed(&r, GC_MANIFEST, m2));
	assert_false(listed(&r, GC_MANIFEST, m1));
	assert_true(listed(&r, GC_BLOB, l3));
	assert_false(listed(&r, GC_BLOB, l1));
	assert_false(listed(&r, GC_BLOB, l2));
	assert_int_equal(r.n_kept, 1);
	assert_string_equal(r.kept[0].digest, m1);
	assert_string_equal(r.kept[0].pin, m1);
	gc_report_free(&r);
	assert_true(file_exists(x, l1) && file_exists(x, l2));
	gc_pins_free(ps);
	assert_consistent(x);
}

/* ---- dry runs ---- */

static void
test_dry_run(void **state)
{
	struct gfx *x = *state;
	struct gc_policy *p = policy("{\"rules\": [{\"repositories\": [\"r\"], "
	                             "\"expire_after\": \"5m\"}]}");
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF];
	struct seen seen = {0};
	struct gc_report r;
	uint64_t w0;

	push_blob(x, "r", "1", T0, b1);
	push_blob(x, "r", "2", T0, b2);
	image(x, "r", 100, "t", b1, b2, 10, GC_TTL_LABEL, T0, m1);
	image(x, "r", 101, "u", b2, b1, 0, NULL, T0 + 100, m2);
	w0 = 0;
	{
		struct meta_stats st;
		meta_stats_get(x->base.m, &st);
		w0 = st.write_txns;
	}
	r = run_with(x, T0 + 400, 1, p, NULL, &seen);
	assert_true(r.dry_run);
	assert_int_equal(r.n_expired, 2);
	assert_string_equal(expired_of(&r, "r", "t")->reason,
	                    "ttl label " GC_TTL_LABEL);
	assert_int_equal(expired_of(&r, "r", "t")->expires, T0 + 10);
	assert_string_equal(expired_of(&r, "r", "u")->reason,
	                    "policy rule 1 (expire_after 5m)");
	assert_int_equal(expired_of(&r, "r", "u")->expires, T0 + 400);
	assert_int_equal(seen.expired, 2);
	gc_report_free(&r);
	{
		struct meta_stats st;
		meta_stats_get(x->base.m, &st);
		assert_int_equal(st.write_txns, w0); /* nothing written */
	}
	/* Nothing changed. */
	assert_string_equal(tags_of(x, "r"), "t,u");
	assert_int_equal(mf_rc(&x->base, "r", m1), 1);
	assert_int_equal(mf_q(&x->base, "r", m1), 0);
	assert_true(file_exists(x, b1) && file_exists(x, b2));
	/* The real run does it. */
	r = run_with(x, T0 + 400, 0, p, NULL, NULL);
	assert_false(r.dry_run);
	assert_int_equal(r.n_expired, 2);
	assert_int_equal(r.count[GC_MANIFEST], 2);
	gc_report_free(&r);
	assert_string_equal(tags_of(x, "r"), "-");
	gc_policy_free(p);
}

/* A dry run reports what a run at the same moment would delete: with
 * expired tags whose images nobody touched within the grace, that is
 * their manifests and layers too. */
static void
test_dry_run_matches_run(void **state)
{
	struct gfx *x = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF];
	struct gc_report dry, r;
	uint64_t dry_m, dry_b, dry_e, run_m, run_b, run_e;

	push_blob(x, "r", "1", T0, b1);
	push_blob(x, "r", "2", T0, b2);
	image(x, "r", 100, "t", b1, b2, 10, GC_TTL_LABEL, T0, m1);
	dry = run_with(x, T0 + 400, 1, NULL, NULL, NULL);
	dry_m = dry.count[GC_MANIFEST];
	dry_b = dry.count[GC_BLOB];
	dry_e = dry.n_expired;
	gc_report_free(&dry);
	r = run_with(x, T0 + 400, 0, NULL, NULL, NULL);
	run_m = r.count[GC_MANIFEST];
	run_b = r.count[GC_BLOB];
	run_e = r.n_expired;
	gc_report_free(&r);
	assert_int_equal(run_e, 1);
	assert_int_equal(dry_e, run_e);
	/* The run deletes the image at once (last access T0, grace
	 * over). */
	assert_int_equal(run_m, 1);
	assert_int_equal(run_b, 2);
	if (dry_m != run_m || dry_b != run_b)
		fail_msg("dry run reports %llu manifests, %llu blobs; the run "
		         "at the same moment deletes %llu, %llu",
		         (unsigned long long)dry_m, (unsigned long long)dry_b,
		         (unsigned long long)run_m, (unsigned long long)run_b);
}

/* ---- the cleanup query ---- */

/* a: x (TTL passed), y; b/c: z (pulled lately); b/d: w; e/f: v. */
static void
query_fill(struct gfx *x)
{
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m[DIGEST_BUF];
	struct meta_manifest mm;
	const char *repos[] = {"a", "b/c", "b/d", "e/f"};
	uint64_t sz;

	push_blob(x, "a", "1", T0, b1);
	push_blob(x, "a", "22", T0, b2);
	for (int i = 1; i < 4; i++) {
		OK(meta_blob_mount(x->base.m, repos[i], b1, "a", T0, &sz));
		OK(meta_blob_mount(x->base.m, repos[i], b2, "a", T0, &sz));
	}
	image(x, "a", 100, "x", b1, b2, 10, GC_TTL_LABEL, T0, m);
	image(x, "a", 101, "y", b2, b1, 0, NULL, T0, m);
	image(x, "b/c", 102, "z", b1, b2, 0, NULL, T0, m);
	image(x, "b/d", 103, "w", b1, b2, 0, NULL, T0, m);
	image(x, "e/f", 104, "v", b1, b2, 0, NULL, T0 + 300, m);
	OK(meta_manifest_read(x->base.m, "b/c", "z", 0, T0 + 500, &mm));
}

static struct gc_tag_rows
query(struct gfx *x, const struct gc_pins *ps, const char *glob, int expired,
      uint64_t idle_for, size_t n, const char *last)
{
	struct gc_tags_query q = {glob, expired, idle_for, n, last, NULL, NULL};
	struct gc_tag_rows rows;

	OK(gc_tags_query(x->base.m, NULL, ps, &q, T0 + 600, &rows));
	return rows;
}

/* The rows as "repo:tag,…". */
static const char *
rows_text(const struct gc_tag_rows *rows)
{
	static char buf[1024];
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < rows->n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s:%s",
		                        i ? "," : "", rows->v[i].info.repo,
		                        rows->v[i].info.tag);
	return buf;
}

static void
expect_rows(struct gc_tag_rows rows, const char *want, int more)
{
	assert_string_equal(rows_text(&rows), want);
	assert_int_equal(rows.more, more);
	gc_tag_rows_free(&rows);
}

static void
test_query_all(void **state)
{
	struct gfx *x = *state;
	struct gc_pins *ps = pins(1, "b/d:w");
	struct gc_tag_rows rows;

	query_fill(x);
	rows = query(x, ps, NULL, -1, 0, 100, NULL);
	assert_string_equal(rows_text(&rows), "a:x,a:y,b/c:z,b/d:w,e/f:v");
	assert_int_equal(rows.more, 0);
	assert_int_equal(rows.v[0].expires, T0 + 10);
	assert_string_equal(rows.v[0].expires_by, "ttl label " GC_TTL_LABEL);
	assert_null(rows.v[0].pin);
	assert_int_equal(rows.v[1].expires, 0);
	assert_string_equal(rows.v[1].expires_by, "");
	assert_int_equal(rows.v[2].info.last_pulled, T0 + 500);
	assert_string_equal(rows.v[3].pin, "b/d:w");
	/* Sizes: the manifest and two blobs; the blobs are shared by
	 * every image. */
	assert_int_equal(rows.v[3].info.size, DIGEST_STR_LEN + 1 + 2);
	assert_int_equal(rows.v[3].info.unique, 0);
	gc_tag_rows_free(&rows);
	gc_pins_free(ps);
}

static void
test_query_filters(void **state)
{
	struct gfx *x = *state;

	query_fill(x);
	expect_rows(query(x, NULL, NULL, 1, 0, 100, NULL), "a:x", 0);
	expect_rows(query(x, NULL, NULL, 0, 0, 100, NULL),
	            "a:y,b/c:z,b/d:w,e/f:v", 0);
	/* Idle: not pulled or pushed for 200 s at T0 + 600. */
	expect_rows(query(x, NULL, NULL, -1, 200, 100, NULL),
	            "a:x,a:y,b/d:w,e/f:v", 0);
	expect_rows(query(x, NULL, NULL, -1, 300, 100, NULL),
	            "a:x,a:y,b/d:w,e/f:v", 0);
	expect_rows(query(x, NULL, NULL, -1, 301, 100, NULL), "a:x,a:y,b/d:w",
	            0);
	expect_rows(query(x, NULL, NULL, -1, 600, 100, NULL), "a:x,a:y,b/d:w",
	            0);
	expect_rows(query(x, NULL, NULL, -1, 601, 100, NULL), "", 0);
	expect_rows(query(x, NULL, NULL, 0, 301, 100, NULL), "a:y,b/d:w", 0);
	/* Globs on the repository. */
	expect_rows(query(x, NULL, "b/*", -1, 0, 100, NULL), "b/c:z,b/d:w", 0);
	expect_rows(query(x, NULL, "b/**", -1, 0, 100, NULL), "b/c:z,b/d:w", 0);
	expect_rows(query(x, NULL, "*", -1, 0, 100, NULL), "a:x,a:y", 0);
	expect_rows(query(x, NULL, "**", -1, 0, 100, NULL),
	            "a:x,a:y,b/c:z,b/d:w,e/f:v", 0);
	expect_rows(query(x, NULL, "*/f", -1, 0, 100, NULL), "e/f:v", 0);
	expect_rows(query(x, NULL, "b/d", -1, 0, 100, NULL), "b/d:w", 0);
	expect_rows(query(x, NULL, "b", -1, 0, 100, NULL), "", 0);
	expect_rows(query(x, NULL, "zz/*", -1, 0, 100, NULL), "", 0);
}

static void
test_query_paging(void **state)
{
	struct gfx *x = *state;

	query_fill(x);
	expect_rows(query(x, NULL, NULL, -1, 0, 2, NULL), "a:x,a:y", 1);
	expect_rows(query(x, NULL, NULL, -1, 0, 2, "a:y"), "b/c:z,b/d:w", 1);
	expect_rows(query(x, NULL, NULL, -1, 0, 2, "b/d:w"), "e/f:v", 0);
	expect_rows(query(x, NULL, NULL, -1, 0, 1, "a:x"), "a:y", 1);
	expect_rows(query(x, NULL, NULL, -1, 0, 1, "e/f:v"), "", 0);
	/* Exactly n left: no more. */
	expect_rows(query(x, NULL, NULL, -1, 0, 3, "a:y"), "b/c:z,b/d:w,e/f:v",
	            0);
	/* A cursor between rows, or at a repository without rows. */
	expect_rows(query(x, NULL, NULL, -1, 0, 1, "a:xa"), "a:y", 1);
	expect_rows(query(x, NULL, NULL, -1, 0, 1, "b:zzz"), "b/c:z", 1);
	/* With a filter: pages of the filtered rows. */
	expect_rows(query(x, NULL, "b/*", -1, 0, 1, NULL), "b/c:z", 1);
	expect_rows(query(x, NULL, "b/*", -1, 0, 1, "b/c:z"), "b/d:w", 0);
	expect_rows(query(x, NULL, NULL, 0, 200, 1, "a:y"), "b/d:w", 1);
	expect_rows(query(x, NULL, NULL, 0, 301, 1, "a:y"), "b/d:w", 0);
}

static void
test_query_bad_cursor(void **state)
{
	struct gfx *x = *state;
	struct gc_tags_query q = {NULL, -1, 0, 10, NULL, NULL, NULL};
	const char *bad[] = {"nocolon", ":x", "a:"};
	struct gc_tag_rows rows;

	query_fill(x);
	for (size_t i = 0; i < 3; i++) {
		q.last = bad[i];
		memset(&rows, 0, sizeof(rows));
		RC(RC_BAD_REQUEST,
		   gc_tags_query(x->base.m, NULL, NULL, &q, T0 + 600, &rows));
		gc_tag_rows_free(&rows);
	}
	q.last = ""; /* empty: from the start */
	OK(gc_tags_query(x->base.m, NULL, NULL, &q, T0 + 600, &rows));
	assert_int_equal(rows.n, 5);
	gc_tag_rows_free(&rows);
}

static int
only_b_d(const char *repo, void *arg)
{
	(*(int *)arg)++;
	return strcmp(repo, "b/d") == 0;
}

static void
test_query_may_list_and_policy(void **state)
{
	struct gfx *x = *state;
	struct gc_policy *p = policy(
	        "{\"rules\": [{\"repositories\": [\"b/*\"], \"protect\": "
	        "[\"z\"], \"idle_after\": \"1m\"}]}");
	int calls = 0;
	struct gc_tags_query q = {NULL, -1, 0, 10, NULL, only_b_d, &calls};
	struct gc_tag_rows rows;

	query_fill(x);
	OK(gc_tags_query(x->base.m, NULL, NULL, &q, T0 + 600, &rows));
	assert_true(calls >= 4);
	assert_string_equal(rows_text(&rows), "b/d:w");
	gc_tag_rows_free(&rows);
	/* Under the policy: b/c:z protected, b/d:w idle since T0. */
	q.may_list = NULL;
	q.repository = "b/*";
	OK(gc_tags_query(x->base.m, p, NULL, &q, T0 + 600, &rows));
	assert_string_equal(rows_text(&rows), "b/c:z,b/d:w");
	assert_int_equal(rows.v[0].expires, 0);
	assert_string_equal(rows.v[0].expires_by, "");
	assert_int_equal(rows.v[1].expires, T0 + 60);
	assert_string_equal(rows.v[1].expires_by,
	                    "policy rule 1 (idle_after 1m)");
	gc_tag_rows_free(&rows);
	q.expired = 1;
	q.repository = NULL;
	OK(gc_tags_query(x->base.m, p, NULL, &q, T0 + 600, &rows));
	assert_string_equal(rows_text(&rows), "a:x,b/d:w");
	gc_tag_rows_free(&rows);
	gc_policy_free(p);
}

/* ---- repository deletes ---- */

static void
test_repo_delete(void **state)
{
	struct gfx *x = *state;
	char l[4][DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF], m3[DIGEST_BUF];
	char ix[DIGEST_BUF], ref[128];
	struct gc_repo_result res;
	struct gc_pins *ps;
	struct gc_report r;
	int seen_keep = 0, seen_ix = 0;

	push_blob(x, "r", "l0", T0, l[0]);
	push_blob(x, "r", "l1", T0, l[1]);
	push_blob(x, "r", "l2", T0, l[2]);
	push_blob(x, "r", "l3-gone", T0, l[3]);
	image(x, "r", 100, "keep", l[0], l[1], 0, NULL, T0, m1);
	image(x, "r", 101, NULL, l[0], l[2], 0, NULL, T0, m2);
	image(x, "r", 102, "gone", l[3], l[3], 0, NULL, T0, m3);
	image(x, "r", 100, "old", l[0], l[1], 0, NULL, T0, m1);
	index_of(x, "r", 200, "idx", m1, m2, 0, T0, ix);
	snprintf(ref, sizeof(ref), "registry.example/r@%s", ix);
	ps = pins(2, "registry.example/r:keep", ref);

	OK(gc_repo_delete(x->base.m, ps, "r", T0 + 10, &res));
	assert_string_equal(res.repo, "r");
	assert_int_equal(res.d.n_kept, 2);
	assert_non_null(res.pins);
	for (size_t i = 0; i < res.d.n_kept; i++) {
		if (strcmp(res.d.kept[i].digest, m1) == 0) {
			seen_keep++;
			assert_string_equal(res.pins[i],
			                    "registry.example/r:keep");
			expect_list(&res.d.kept[i].tags, 0, 1, "keep");
		} else if (strcmp(res.d.kept[i].digest, ix) == 0) {
			seen_ix++;
			assert_string_equal(res.pins[i], ref);
		}
	}
	assert_int_equal(seen_keep, 1);
	assert_int_equal(seen_ix, 1);
	/* Deleted tags: gone, idx, old. */
	assert_int_equal(res.n_tags, 3);
	assert_int_equal(res.d.tags, 3);
	assert_string_equal(res.tags[0].tag, "gone");
	assert_string_equal(res.tags[0].digest, m3);
	assert_string_equal(res.tags[0].repo, "r");
	assert_string_equal(res.tags[0].reason, "repository delete");
	assert_string_equal(res.tags[1].tag, "idx");
	assert_string_equal(res.tags[2].tag, "old");
	assert_int_equal(res.tags[2].expires, 0);
	assert_int_equal(res.d.manifests, 1); /* m3 */
	assert_int_equal(res.d.links, 1);     /* l3 */
	assert_int_equal(res.d.bytes, strlen("l3-gone"));
	gc_repo_result_free(&res);
	assert_string_equal(tags_of(x, "r"), "keep");
	assert_consistent(x);

	/* The collector frees what the delete left unreferenced. */
	r = run_with(x, T0 + 1000, 0, NULL, ps, NULL);
	assert_int_equal(r.count[GC_MANIFEST], 0); /* ix is pinned */
	assert_true(listed(&r, GC_BLOB, l[3]));
	assert_int_equal(r.count[GC_BLOB], 1);
	gc_report_free(&r);
	assert_true(file_exists(x, l[2]));

	/* Without pins: everything. */
	OK(gc_repo_delete(x->base.m, NULL, "r", T0 + 1000, &res));
	assert_int_equal(res.d.n_kept, 0);
	assert_null(res.pins);
	assert_int_equal(res.n_tags, 1);
	assert_string_equal(res.tags[0].tag, "keep");
	assert_int_equal(res.d.manifests, 3);
	gc_repo_result_free(&res);
	assert_consistent(x);
	assert_string_equal(tags_of(x, "r"), "-");
	RC(RC_NAME_UNKNOWN, gc_repo_delete(x->base.m, ps, "r", T0, &res));
	RC(RC_NAME_UNKNOWN, gc_repo_delete(x->base.m, NULL, "nope", T0, &res));
	gc_pins_free(ps);
	r = run_with(x, T0 + 2000, 0, NULL, NULL, NULL);
	assert_int_equal(r.count[GC_BLOB], 3);
	gc_report_free(&r);
	assert_false(file_exists(x, l[0]));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, gc_fx_setup, gc_fx_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_ttl_expiry),          T(test_ttl_quay_and_repush),
	        T(test_policy_keep_last),    T(test_policy_untagged_after),
	        T(test_pinned_tag_kept),     T(test_pinned_index_children),
	        T(test_pinned_child),        T(test_dry_run),
	        T(test_dry_run_matches_run), T(test_query_all),
	        T(test_query_filters),       T(test_query_paging),
	        T(test_query_bad_cursor),    T(test_query_may_list_and_policy),
	        T(test_repo_delete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
