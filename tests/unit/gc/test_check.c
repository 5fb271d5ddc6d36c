/* `berth check` (gc/check.c) on a real LMDB index and blob directory: a
 * registry built through meta_ and blob_ checks clean; then each kind of
 * damage, made by direct writes, is found, repaired when it can be (and a
 * second check is clean), and reported again when it cannot. */
#include "test_gc_util.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

#define GRACE_S 3600
#define OLD     (2 * GRACE_S) /* seconds: older than the grace */

struct cfx {
	struct gfx g; /* no collector */
	uint64_t now;
	/* the registry built by setup */
	char cfg[DIGEST_BUF], l1[DIGEST_BUF], l2[DIGEST_BUF], lone[DIGEST_BUF];
	char m1[DIGEST_BUF], m2[DIGEST_BUF], idx[DIGEST_BUF], sig[DIGEST_BUF],
	        m3[DIGEST_BUF];
	char upload[BLOB_UUID_BUF];
	/* the lines of the last run: "P ", "N " or "R " + line + "\n" */
	char *out;
	size_t len, cap;
	struct gc_check_report r;
};

/* ---- building the registry ---- */

/* A blob file with no index row (a crash between rename and commit). */
static void
orphan_file(struct cfx *x, const char *content, char digest[DIGEST_BUF],
            int64_t age)
{
	char path[256];
	struct timespec ts[2];

	blob_file(&x->g, content, digest);
	OK(blob_path(x->g.bs, digest, path, sizeof(path)));
	ts[0].tv_sec = ts[1].tv_sec = (time_t)((int64_t)x->now - age);
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void
age_path(const char *path, int64_t age)
{
	struct timespec ts[2];

	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* app: cfg, l1, l2, lone (unreferenced); m1 = (cfg, l1) tag v1,
 * m2 = (cfg, l2) tag v2, idx = (m1, m2) tag latest, sig = artifact of
 * m1 with child cfg. other: cfg, l1 mounted; m1 tag v1 (a second holder of
 * its body), m3 = (cfg, l1) pushed by digest (queued). One upload in
 * progress. */
static void
build(struct cfx *x)
{
	struct fx *f = &x->g.base;
	uint64_t size;
	struct mi a;
	int64_t scfg, s1, s2;

	push_blob(&x->g, "app", "{\"config\":1}", x->now, x->cfg);
	push_blob(&x->g, "app", "layer one", x->now, x->l1);
	push_blob(&x->g, "app", "layer two!", x->now, x->l2);
	push_blob(&x->g, "app", "nobody uses me", x->now, x->lone);
	scfg = blob_size(f, x->cfg);
	s1 = blob_size(f, x->l1);
	s2 = blob_size(f, x->l2);
	dg(x->m1, 101);
	dg(x->m2, 102);
	dg(x->idx, 103);
	dg(x->sig, 104);
	dg(x->m3, 105);
	OK(put(f, "app", x->m1, "v1",
	       mk_info(&a, MT_OCI_MANIFEST, NULL, NULL, 2, x->cfg, scfg, x->l1,
	               s1),
	       x->now, NULL));
	OK(put(f, "app", x->m2, "v2",
	       mk_info(&a, MT_OCI_MANIFEST, NULL, NULL, 2, x->cfg, scfg, x->l2,
	               s2),
	       x->now, NULL));
	{
		char k1[DIGEST_BUF + 2], k2[DIGEST_BUF + 2];

		snprintf(k1, sizeof(k1), "m:%s", x->m1);
		snprintf(k2, sizeof(k2), "m:%s", x->m2);
		OK(put(f, "app", x->idx, "latest",
		       mk_info(&a, MT_OCI_INDEX, NULL, NULL, 2, k1,
		               (int64_t)strlen(x->m1), k2,
		               (int64_t)strlen(x->m2)),
		       x->now, NULL));
	}
	OK(put(f, "app", x->sig, NULL,
	       mk_info(&a, MT_OCI_MANIFEST, x->m1, "application/x-sig", 1,
	               x->cfg, scfg),
	       x->now, NULL));
	OK(meta_blob_mount(f->m, "other", x->cfg, "app", x->now, &size));
	OK(meta_blob_mount(f->m, "other", x->l1, "app", x->now, &size));
	OK(put(f, "other", x->m1, "v1",
	       mk_info(&a, MT_OCI_MANIFEST, NULL, NULL, 2, x->cfg, scfg, x->l1,
	               s1),
	       x->now, NULL));
	OK(put(f, "other", x->m3, NULL,
	       mk_info(&a, MT_OCI_MANIFEST, NULL, NULL, 2, x->cfg, scfg, x->l1,
	               s1),
	       x->now, NULL));
	OK(blob_upload_create(x->g.bs, x->upload));
	OK(meta_upload_put(f->m, x->upload, "app", x->now));
}

static int
setup(void **state)
{
	struct cfx *x = calloc(1, sizeof(*x));

	if (x == NULL ||
	    gc_fx_open(&x->g, "/tmp/berth-check-XXXXXX", GRACE_S, 0) != 0) {
		free(x);
		return -1;
	}
	x->now = (uint64_t)time(NULL);
	build(x);
	*state = x;
	return 0;
}

static int
teardown(void **state)
{
	struct cfx *x = *state;

	gc_fx_close(&x->g);
	free(x->out);
	free(x);
	return 0;
}

/* ---- running the check ---- */

static void
collect(enum gc_check_line what, const char *line, void *arg)
{
	struct cfx *x = arg;
	size_t n = strlen(line) + 3;

	if (x->len + n + 1 > x->cap) {
		x->cap = (x->len + n + 1) * 2;
		x->out = realloc(x->out, x->cap);
		assert_non_null(x->out);
	}
	x->out[x->len++] = what == GC_CHECK_PROBLEM ? 'P'
	                   : what == GC_CHECK_NOTE  ? 'N'
	                                            : 'R';
	x->out[x->len++] = ' ';
	memcpy(x->out + x->len, line, n - 3);
	x->len += n - 3;
	x->out[x->len++] = '\n';
	x->out[x->len] = '\0';
}

/* Runs a check (or a repair) and returns its problems (or what is left). */
static uint64_t
run(struct cfx *x, int repair, int deep)
{
	struct gc_check_options o = {x->now, GRACE_S, deep, repair};

	x->len = 0;
	if (x->out != NULL)
		x->out[0] = '\0';
	OK(gc_check_run(x->g.base.m, x->g.bs, &o, collect, x, &x->r));
	return repair ? x->r.left : x->r.problems;
}

/* A line of the last run of that type ('P', 'N', 'R') containing every
 * given fragment (NULL-terminated). */
static int __attribute__((sentinel)) has(struct cfx *x, int type, ...)
{
	const char *line = x->out != NULL ? x->out : "";

	while (*line != '\0') {
		const char *end = strchr(line, '\n'), *frag;
		size_t n = (size_t)(end - line);
		char buf[2048];
		int all = line[0] == type;
		va_list ap;

		snprintf(buf, sizeof(buf), "%.*s", (int)n, line);
		va_start(ap, type);
		while (all && (frag = va_arg(ap, const char *)) != NULL)
			all = strstr(buf, frag) != NULL;
		va_end(ap);
		if (all)
			return 1;
		line = end + 1;
	}
	return 0;
}

#define HAS(x, type, ...)                                                      \
	do {                                                                   \
		if (!has((x), (type), __VA_ARGS__, NULL))                      \
			fail_msg("no %c line with " #__VA_ARGS__ " in:\n%s",   \
			         (type), (x)->out ? (x)->out : "");            \
	} while (0)

/* Repairs, expects want left, then a plain check finding exactly left. */
static void
repair_then_check(struct cfx *x, uint64_t left)
{
	if (run(x, 1, 0) != left)
		fail_msg("left %" PRIu64 " after repair:\n%s", x->r.left,
		         x->out);
	if (run(x, 0, 0) != left)
		fail_msg("second check:\n%s", x->out);
}

static void
expect_clean(struct cfx *x)
{
	if (run(x, 0, 0) != 0)
		fail_msg("not clean:\n%s", x->out);
}

static void
free_out(struct cfx *x)
{
	free(x->out);
	x->out = NULL;
	x->len = x->cap = 0;
}

/* ---- raw damage ---- */

static void
raw(struct cfx *x, const char *db, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	OK(meta_debug_put_raw(x->g.base.m, db, k, klen, v, vlen));
}

/* Key a\0b (a\0b\0c when c is set). */
static size_t
key_of(char *buf, const char *a, const char *b, const char *c)
{
	size_t n = 0;

	n += (size_t)sprintf(buf + n, "%s", a) + 1;
	n += (size_t)sprintf(buf + n, "%s", b);
	if (c != NULL)
		n += (size_t)sprintf(buf + n + 1, "%s", c) + 1;
	return n;
}

static size_t
gcq_key(unsigned char *buf, uint64_t due, int kind, const char *digest)
{
	size_t n = 0;

	for (int i = 7; i >= 0; i--)
		buf[n++] = (unsigned char)(due >> (8 * i));
	buf[n++] = 0;
	buf[n++] = (unsigned char)kind;
	buf[n++] = 0;
	memcpy(buf + n, digest, strlen(digest));
	return n + strlen(digest);
}

static void
u64le(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- tests ---- */

static void
test_clean(void **state)
{
	struct cfx *x = *state;

	assert_int_equal(run(x, 0, 1), 0);
	assert_int_equal(x->r.blobs, 4);
	assert_int_equal(x->r.manifests, 6);
	assert_int_equal(x->r.tags, 4);
	assert_int_equal(x->r.uploads, 1);
	assert_int_equal(x->r.files, 4);
	assert_int_equal(x->r.pending, 0);
	assert_int_equal(x->len, 0);
	/* A repair of a clean registry changes nothing. */
	assert_int_equal(run(x, 1, 0), 0);
	assert_int_equal(x->r.repaired, 0);
	assert_int_equal(x->len, 0);
	assert_int_equal(blob_q(&x->g.base, x->lone), x->now + GRACE_S);
	free_out(x);
}

static void
test_blob_count(void **state)
{
	struct cfx *x = *state;
	uint64_t was = blob_rc(&x->g.base, x->l1);
	char want[64];

	assert_int_equal(was, 3); /* app m1, other m1, other m3 */
	OK(meta_debug_set_count(x->g.base.m, META_GC_BLOB, NULL, x->l1, 7, 0));
	assert_int_equal(run(x, 0, 0), 1);
	snprintf(want, sizeof(want), ": refcount 7, expected %" PRIu64, was);
	HAS(x, 'P', "blob ", x->l1, want);
	assert_int_equal(run(x, 1, 0), 0);
	HAS(x, 'R', "blob ", x->l1, want);
	assert_int_equal(x->r.repaired, 1);
	assert_int_equal(blob_rc(&x->g.base, x->l1), was);
	expect_clean(x);
	free_out(x);
}

/* The running total of blob bytes (metrics) against the blob rows. */
static void
test_blob_bytes(void **state)
{
	struct cfx *x = *state;
	unsigned char v[8];

	u64le(v, 12345);
	raw(x, "meta", "blob_bytes", 10, v, sizeof(v));
	assert_int_equal(run(x, 0, 0), 1);
	HAS(x, 'P', "storage total : 12345 blob bytes recorded");
	assert_int_equal(run(x, 1, 0), 0);
	assert_int_equal(x->r.repaired, 1);
	expect_clean(x);
	free_out(x);
}

static void
test_manifest_count(void **state)
{
	struct cfx *x = *state;
	uint64_t was = mf_rc(&x->g.base, "app", x->m1);
	char item[128];

	assert_int_equal(was, 2); /* tag v1 + idx */
	assert_int_equal(mf_rc(&x->g.base, "app", x->sig), 1); /* its subject */
	OK(meta_debug_set_count(x->g.base.m, META_GC_MANIFEST, "app", x->m1, 1,
	                        0));
	OK(meta_debug_set_count(x->g.base.m, META_GC_MANIFEST, "app", x->sig, 0,
	                        0));
	assert_true(run(x, 0, 0) >= 2);
	snprintf(item, sizeof(item), "manifest app@%s", x->m1);
	HAS(x, 'P', item, ": refcount 1, expected 2");
	snprintf(item, sizeof(item), "manifest app@%s", x->sig);
	HAS(x, 'P', item, ": refcount 0, expected 1");
	repair_then_check(x, 0);
	assert_int_equal(mf_rc(&x->g.base, "app", x->m1), 2);
	assert_int_equal(mf_rc(&x->g.base, "app", x->sig), 1);
	free_out(x);
}

static void
test_missing_file(void **state)
{
	struct cfx *x = *state;

	OK(blob_remove(x->g.bs, x->l2));
	assert_int_equal(run(x, 0, 0), 1);
	HAS(x, 'P', "blob ", x->l2, ": file missing");
	/* Nothing can bring the content back: it stays an error. */
	assert_int_equal(run(x, 1, 0), 1);
	HAS(x, 'P', x->l2, "file missing (cannot be repaired)");
	assert_int_equal(x->r.repaired, 0);
	assert_int_equal(run(x, 0, 0), 1);
	HAS(x, 'P', x->l2, ": file missing");
	free_out(x);
}

static void
test_wrong_size(void **state)
{
	struct cfx *x = *state;
	char path[256];
	int fd;

	OK(blob_path(x->g.bs, x->l2, path, sizeof(path)));
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "+", 1), 1);
	close(fd);
	assert_int_equal(run(x, 0, 0), 1);
	HAS(x, 'P', "blob ", x->l2, ": file size 11, expected 10");
	assert_int_equal(run(x, 1, 0), 1); /* not repairable */
	assert_true(file_exists(&x->g, x->l2));
	free_out(x);
}

static void
test_wrong_content(void **state)
{
	struct cfx *x = *state;
	char path[256];
	int fd;

	OK(blob_path(x->g.bs, x->l1, path, sizeof(path)));
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "L", 1, 0), 1); /* same size */
	close(fd);
	assert_int_equal(run(x, 0, 0), 0); /* sizes agree */
	assert_int_equal(run(x, 0, 1), 1);
	HAS(x, 'P', "blob ", x->l1, ": content does not match its digest");
	assert_int_equal(run(x, 1, 1), 1); /* still there after a repair */
	free_out(x);
}

static void
test_orphan_file(void **state)
{
	struct cfx *x = *state;
	char old[DIGEST_BUF], young[DIGEST_BUF];

	orphan_file(x, "crashed before its commit", old, OLD);
	orphan_file(x, "just renamed", young, 10);
	assert_int_equal(run(x, 0, 0), 2);
	HAS(x, 'P', "blob ", old, ": orphan file (no index row)");
	HAS(x, 'P', "blob ", young, ": orphan file (no index row), 10 s old");
	/* The old one goes, the young one is kept (and still a problem). */
	assert_int_equal(run(x, 1, 0), 1);
	HAS(x, 'R', "removed orphan file", old + 7);
	HAS(x, 'N', "kept 1 leftover(s) younger than the grace");
	assert_false(file_exists(&x->g, old));
	assert_true(file_exists(&x->g, young));
	assert_int_equal(run(x, 0, 0), 1);
	HAS(x, 'P', young, "orphan file");
	free_out(x);
}

static void
test_dangling_tag(void **state)
{
	struct cfx *x = *state;
	unsigned char val[24 + DIGEST_BUF];
	char k[64], ghost[DIGEST_BUF];
	struct meta_manifest mm;

	dg(ghost, 999);
	memset(val, 0, sizeof(val));
	u64le(val, x->now);
	memcpy(val + 24, ghost, strlen(ghost) + 1);
	raw(x, "tags", k, key_of(k, "app", "ghost", NULL), val,
	    24 + strlen(ghost) + 1);
	assert_int_equal(run(x, 0, 0), 1);
	HAS(x, 'P', "tag app:ghost : points at missing manifest", ghost);
	assert_int_equal(run(x, 1, 0), 0);
	HAS(x, 'R', "tag app:ghost : points at missing manifest", ghost);
	expect_clean(x);
	RC(RC_MANIFEST_UNKNOWN,
	   meta_manifest_get(x->g.base.m, "app", "ghost", 0, &mm));
	free_out(x);
}

static void
test_queued_referenced(void **state)
{
	struct cfx *x = *state;
	unsigned char k[128];

	raw(x, "gcq", k, gcq_key(k, x->now + 5, META_GC_BLOB, x->l1), "", 0);
	assert_int_equal(blob_q(&x->g.base, x->l1), x->now + 5);
	assert_int_equal(run(x, 0, 0), 1);
	HAS(x, 'P', "blob ", x->l1, "queued (due", "with 3 references");
	repair_then_check(x, 0);
	assert_int_equal(blob_q(&x->g.base, x->l1), 0);
	free_out(x);
}

static void
test_not_queued(void **state)
{
	struct cfx *x = *state;
	uint64_t due = blob_q(&x->g.base, x->lone);
	unsigned char k[128];

	assert_true(due != 0);
	raw(x, "gcq", k, gcq_key(k, due, META_GC_BLOB, x->lone), NULL, 0);
	assert_int_equal(blob_q(&x->g.base, x->lone), 0);
	assert_int_equal(run(x, 0, 0), 1);
	HAS(x, 'P', "blob ", x->lone, ": refcount 0, not queued");
	x->now += 50; /* the repair queues at its now + grace */
	repair_then_check(x, 0);
	assert_int_equal(blob_q(&x->g.base, x->lone), x->now + GRACE_S);
	/* An untagged manifest dropped from the queue, its row's gc_due
	 * cleared too: queued again. */
	due = mf_q(&x->g.base, "other", x->m3);
	assert_true(due != 0);
	OK(meta_debug_set_count(x->g.base.m, META_GC_MANIFEST, "other", x->m3,
	                        0, 0));
	assert_int_equal(run(x, 0, 0), 1);
	HAS(x, 'P', "manifest other@", x->m3, "queued at", "gc_due is 0");
	repair_then_check(x, 0);
	assert_int_equal(mf_q(&x->g.base, "other", x->m3), due); /* kept */
	free_out(x);
}

static void
test_upload_leftovers(void **state)
{
	struct cfx *x = *state;
	const char *ghost = "0f0e0d0c-0b0a-4908-8706-050403020100";
	char uuid[BLOB_UUID_BUF], young[BLOB_UUID_BUF], path[256];
	struct blob_upload *up;

	OK(meta_upload_put(x->g.base.m, ghost, "app", x->now - OLD));
	OK(blob_upload_create(x->g.bs, uuid));
	snprintf(path, sizeof(path), "%s/uploads/%s", x->g.data, uuid);
	age_path(path, OLD);
	OK(blob_upload_create(x->g.bs, young));
	assert_int_equal(run(x, 0, 0), 3);
	HAS(x, 'P', "upload ", ghost, ": row without file");
	HAS(x, 'P', "upload ", uuid, ": file without row");
	HAS(x, 'P', "upload ", young, ": file without row");
	assert_int_equal(run(x, 1, 0), 1); /* the young file stays */
	HAS(x, 'R', "removed upload row", ghost);
	HAS(x, 'R', "removed upload file", uuid);
	RC(RC_UPLOAD_UNKNOWN, meta_upload_check(x->g.base.m, ghost, "app"));
	RC(RC_UPLOAD_UNKNOWN, blob_upload_acquire(x->g.bs, uuid, &up));
	/* The session in progress is untouched. */
	OK(meta_upload_check(x->g.base.m, x->upload, "app"));
	OK(blob_upload_acquire(x->g.bs, x->upload, &up));
	blob_upload_release(up);
	OK(blob_upload_delete(x->g.bs, young));
	expect_clean(x);
	free_out(x);
}

static void
test_pending_intent(void **state)
{
	struct cfx *x = *state;
	unsigned char size[8];
	char gone[DIGEST_BUF];

	/* A collector run committed the removal of a blob's rows and died
	 * before the unlink; and one whose blob was pushed again since. */
	orphan_file(x, "collected but not unlinked", gone, 10);
	u64le(size, 26);
	raw(x, "intents", gone, strlen(gone), size, 8);
	u64le(size, 9);
	raw(x, "intents", x->l1, strlen(x->l1), size, 8);
	assert_int_equal(run(x, 0, 0), 0); /* not damage */
	assert_int_equal(x->r.pending, 2);
	HAS(x, 'N', "blob ", gone, ": pending unlink");
	HAS(x, 'N', "blob ", x->l1, "indexed again");
	assert_int_equal(run(x, 1, 0), 0);
	HAS(x, 'R', "finished the pending unlink of blob", gone);
	HAS(x, 'R', "dropped the pending unlink of blob", x->l1);
	assert_false(file_exists(&x->g, gone));
	assert_true(file_exists(&x->g, x->l1));
	assert_int_equal(run(x, 0, 1), 0);
	assert_int_equal(x->r.pending, 0);
	free_out(x);
}

/* The index's other invariants: links/blinks twins, bodies, bodyrefs,
 * children rows, referrers entries, queue keys without a row. */
static void
test_index_damage(void **state)
{
	struct cfx *x = *state;
	char k[256], ghost[DIGEST_BUF], orphan[DIGEST_BUF];
	unsigned char q[128], v[9];

	dg(ghost, 555);
	dg(orphan, 777);
	raw(x, "blinks", k, key_of(k, x->l1, "app", NULL), NULL, 0);
	raw(x, "blinks", k, key_of(k, x->lone, "nowhere", NULL), "", 0);
	raw(x, "links", k, key_of(k, "lost", ghost, NULL), "12345678", 8);
	raw(x, "bodies", orphan, strlen(orphan), "{}", 2);
	v[0] = 'b';
	u64le(v + 1, 9);
	raw(x, "children", k, key_of(k, orphan, x->l1, NULL), v, 9);
	u64le(v, 5);
	raw(x, "bodyrefs", x->m1, strlen(x->m1), v, 8);
	raw(x, "referrers", k, key_of(k, "app", x->m2, x->sig), "", 0);
	raw(x, "gcq", q, gcq_key(q, x->now, META_GC_BLOB, ghost), "", 0);
	assert_int_equal(run(x, 0, 0), 8);
	HAS(x, 'P', "link app@", x->l1, "blinks twin missing");
	HAS(x, 'P', "link nowhere@", x->lone, "without links row");
	HAS(x, 'P', "link lost@", ghost, "blob has no row");
	HAS(x, 'P', "body ", orphan, "held by no repository");
	HAS(x, 'P', "children of ", orphan);
	HAS(x, 'P', "body ", x->m1, "bodyrefs 5, expected 2");
	HAS(x, 'P', "referrers entry app@", x->m2, x->sig);
	HAS(x, 'P', "queue entry blob ", ghost, "no row");
	repair_then_check(x, 0);
	assert_int_equal(x->r.blobs, 4);
	assert_int_equal(x->r.manifests, 6);
	free_out(x);
}

/* What the repair cannot fix stays reported; the rest is fixed anyway. */
static void
test_unrepairable(void **state)
{
	struct cfx *x = *state;
	char k[256], missing[DIGEST_BUF];
	unsigned char v[9];

	dg(missing, 888);
	v[0] = 'b';
	u64le(v + 1, 3);
	raw(x, "children", k, key_of(k, x->m2, missing, NULL), v, 9);
	raw(x, "blobs", "sha256:bad", 10, "short", 5);
	OK(meta_debug_set_count(x->g.base.m, META_GC_BLOB, NULL, x->l2, 9, 0));
	assert_int_equal(run(x, 0, 0), 3);
	HAS(x, 'P', "manifest app@", x->m2, "child blob", missing, "missing");
	HAS(x, 'P', "row blobs sha256:bad : does not decode");
	assert_int_equal(run(x, 1, 0), 2);
	HAS(x, 'P', missing, "(cannot be repaired)");
	HAS(x, 'R', "blob ", x->l2, "refcount 9, expected 1");
	assert_int_equal(blob_rc(&x->g.base, x->l2), 1);
	free_out(x);
}

static void
test_summary(void **state)
{
	struct gc_check_report r;
	char buf[256];

	(void)state;
	memset(&r, 0, sizeof(r));
	r.blobs = 1234;
	r.manifests = 567;
	r.tags = 89;
	r.problems = 2;
	gc_check_summary(&r, buf, sizeof(buf));
	assert_string_equal(buf, "check: 1234 blobs, 567 manifests, 89 tags: 2 "
	                         "problems");
	r.problems = 1;
	r.pending = 1;
	r.repair = 1;
	r.repaired = 1;
	gc_check_summary(&r, buf, sizeof(buf));
	assert_string_equal(buf,
	                    "check: 1234 blobs, 567 manifests, 89 tags: 1 "
	                    "problem, 1 pending unlink, 1 repaired, 0 left");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	        T(test_clean),          T(test_blob_count),
	        T(test_blob_bytes),     T(test_manifest_count),
	        T(test_missing_file),   T(test_wrong_size),
	        T(test_wrong_content),  T(test_orphan_file),
	        T(test_dangling_tag),   T(test_queued_referenced),
	        T(test_not_queued),     T(test_upload_leftovers),
	        T(test_pending_intent), T(test_index_damage),
	        T(test_unrepairable),   cmocka_unit_test(test_summary),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
