/* Unit tests of the metadata index on a real LMDB environment in a temp
 * directory. mdb_txn_commit is wrapped (test_meta.ldflags) so a test can make
 * one commit fail. */
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
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
#include "storage/meta.h"

#define GRACE 100
#define T0    1000000

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

/* ---- helpers ---- */

#define OK(expr)                                                               \
	do {                                                                   \
		int rc_ = (expr);                                              \
		if (rc_ != 0)                                                  \
			fail_msg("%s: %s (%d)", #expr, rc_str(rc_), rc_);      \
	} while (0)

#define RC(want, expr)                                                         \
	do {                                                                   \
		int rc_ = (expr), want_ = (want);                              \
		if (rc_ != want_)                                              \
			fail_msg("%s: got %s (%d), want %s (%d)", #expr,       \
			         rc_str(rc_), rc_, rc_str(want_), want_);      \
	} while (0)

struct fx {
	char dir[64];
	struct meta *m;
	struct meta_options opt;
};

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/berth-meta-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->opt.map_size = 64u << 20;
	f->opt.gc_grace = GRACE;
	/* The environment lives in a subdirectory that meta_open creates. */
	strcat(f->dir, "/meta");
	if (meta_open(f->dir, &f->opt, &f->m) != 0)
		return -1;
	fail_commits = 0;
	fail_code = MDB_MAP_FULL;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char *slash;

	meta_close(f->m);
	slash = strrchr(f->dir, '/');
	*slash = '\0';
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void
reopen(struct fx *f)
{
	meta_close(f->m);
	f->m = NULL;
	OK(meta_open(f->dir, &f->opt, &f->m));
}

/* A distinct well-formed digest per number. */
static const char *
dg(char buf[DIGEST_BUF], unsigned n)
{
	snprintf(buf, DIGEST_BUF, "sha256:%064x", n);
	return buf;
}

static uint64_t
blob_rc(struct fx *f, const char *d)
{
	uint64_t n = 999;

	OK(meta_blob_refcount(f->m, d, &n));
	return n;
}

static uint64_t
mf_rc(struct fx *f, const char *repo, const char *d)
{
	uint64_t n = 999;

	OK(meta_manifest_refcount(f->m, repo, d, &n));
	return n;
}

struct find {
	enum meta_gc_kind kind;
	const char *digest;
	const char *repo;
	int found;
	uint64_t due;
};

static int
find_fn(const struct meta_gc_item *it, void *arg)
{
	struct find *q = arg;

	if (it->kind == q->kind && strcmp(it->digest, q->digest) == 0 &&
	    strcmp(it->repo, q->repo) == 0) {
		q->found++;
		q->due = it->due;
	}
	return 0;
}

/* Due time of the queued item, 0 when not queued; fails on duplicates. */
static uint64_t
queued(struct fx *f, enum meta_gc_kind kind, const char *digest,
       const char *repo)
{
	struct find q = {kind, digest, repo != NULL ? repo : "", 0, 0};

	OK(meta_gcq_walk(f->m, UINT64_MAX, find_fn, &q));
	assert_true(q.found <= 1);
	return q.found ? q.due : 0;
}

static uint64_t
blob_q(struct fx *f, const char *d)
{
	return queued(f, META_GC_BLOB, d, NULL);
}

static uint64_t
mf_q(struct fx *f, const char *repo, const char *d)
{
	return queued(f, META_GC_MANIFEST, d, repo);
}

static int
count_fn(const struct meta_gc_item *it, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int
gcq_len(struct fx *f)
{
	int n = 0;

	OK(meta_gcq_walk(f->m, UINT64_MAX, count_fn, &n));
	return n;
}

/* A manifest_info with up to 4 children; a child string "m:<digest>" is a
 * manifest child, anything else a blob. */
struct mi {
	struct manifest_info info;
	struct manifest_child kids[4];
};

static struct manifest_info *
mk_info(struct mi *x, const char *media_type, const char *subject,
        const char *artifact_type, int n, ...)
{
	va_list ap;

	memset(x, 0, sizeof(*x));
	snprintf(x->info.media_type, sizeof(x->info.media_type), "%s",
	         media_type);
	snprintf(x->info.subject, sizeof(x->info.subject), "%s",
	         subject != NULL ? subject : "");
	snprintf(x->info.artifact_type, sizeof(x->info.artifact_type), "%s",
	         artifact_type != NULL ? artifact_type : "");
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *d = va_arg(ap, const char *);
		int64_t size = va_arg(ap, int64_t);
		int is_manifest = strncmp(d, "m:", 2) == 0;

		snprintf(x->kids[i].digest, DIGEST_BUF, "%s",
		         is_manifest ? d + 2 : d);
		x->kids[i].is_manifest = is_manifest;
		x->kids[i].size = size;
	}
	va_end(ap);
	x->info.children = x->kids;
	x->info.n_children = (size_t)n;
	x->info.is_index = strcmp(media_type, MT_OCI_INDEX) == 0;
	return &x->info;
}

/* The body of a test manifest is its digest text (meta never hashes). */
static int
put(struct fx *f, const char *repo, const char *digest, const char *tag,
    const struct manifest_info *info, uint64_t now, char *missing)
{
	struct meta_manifest_put p = {repo,   digest,         tag,
	                              digest, strlen(digest), info};

	return meta_manifest_put(f->m, &p, now, missing);
}

static int64_t
blob_size(struct fx *f, const char *d)
{
	uint64_t size = 0;

	OK(meta_blob_exists(f->m, d, &size));
	return (int64_t)size;
}

/* A plain image manifest of two blobs (with their stored sizes). */
static void
put_image(struct fx *f, const char *repo, const char *digest, const char *tag,
          const char *b1, const char *b2, uint64_t now)
{
	struct mi x;

	OK(put(f, repo, digest, tag,
	       mk_info(&x, MT_OCI_MANIFEST, NULL, NULL, 2, b1, blob_size(f, b1),
	               b2, blob_size(f, b2)),
	       now, NULL));
}

static void
two_blobs(struct fx *f, const char *repo, char b1[DIGEST_BUF],
          char b2[DIGEST_BUF])
{
	OK(meta_blob_commit(f->m, repo, dg(b1, 1), 10, NULL, T0));
	OK(meta_blob_commit(f->m, repo, dg(b2, 2), 20, NULL, T0));
}

/* Looks a key up in one named database with plain LMDB (meta closed). */
static int
raw_has(struct fx *f, const char *db, const void *key, size_t klen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {klen, (void *)key}, v;
	int found;

	meta_close(f->m);
	f->m = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, f->dir, MDB_RDONLY, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	found = mdb_get(txn, dbi, &k, &v) == 0;
	mdb_txn_abort(txn);
	mdb_env_close(env);
	OK(meta_open(f->dir, &f->opt, &f->m));
	return found;
}

static int
body_stored(struct fx *f, const char *digest)
{
	return raw_has(f, "bodies", digest, strlen(digest));
}

static int
child_row(struct fx *f, const char *parent, const char *child)
{
	char k[2 * DIGEST_BUF];
	size_t n = strlen(parent);

	memcpy(k, parent, n + 1);
	memcpy(k + n + 1, child, strlen(child));
	return raw_has(f, "children", k, n + 1 + strlen(child));
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
	assert_int_equal(mf_q(f, "r", ma), T0 + 7 + GRACE);
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
	assert_int_equal(mf_q(f, "r", mb), T0 + 8 + GRACE);
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
	assert_int_equal(mf_q(f, "r", m1), T0 + 3 + GRACE);
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
	assert_int_equal(mf_q(f, "r", c1), T0 + 2 + GRACE);
	assert_int_equal(mf_q(f, "r", c2), T0 + 2 + GRACE);
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
	assert_int_equal(blob_q(f, b1), T0 + 6 + GRACE);
	assert_int_equal(blob_q(f, b2), T0 + 6 + GRACE);
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
	assert_int_equal(mf_q(f, "r", r1), T0 + 2 + GRACE);
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
expect_list(const struct meta_list *l, int more, int n, ...)
{
	va_list ap;

	assert_int_equal(l->count, n);
	assert_int_equal(l->more, more);
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(l->items[i], va_arg(ap, const char *));
	va_end(ap);
}

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
	        cmocka_unit_test_setup_teardown(test_blob_commit, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_blob_mount_unlink, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_manifest_put_get, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_manifest_second_repo,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_manifest_missing_blob,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_manifest_size_mismatch,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_retag, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_two_tags, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_index, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_manifest_delete, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_referrers, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_tags_list, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_catalog, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_touch_and_walk, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_uploads, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_persistence, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_commit_failure, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_concurrency, setup,
	                                        teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
