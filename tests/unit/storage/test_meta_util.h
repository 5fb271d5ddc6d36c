/* Fixture and helpers shared by the metadata index tests (test_meta.c,
 * test_meta_manifest.c): a real LMDB environment in a temp directory per
 * test. Everything is static inline: each test file is its own executable
 * and includes this header. */
#ifndef BERTH_TEST_META_UTIL_H
#define BERTH_TEST_META_UTIL_H

#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
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

static inline int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Removes the temp directory that holds the environment directory. */
static inline int
rm_tree(struct fx *f)
{
	char *slash = strrchr(f->dir, '/');

	*slash = '\0';
	return nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* An environment in a new temp directory, with the given index head room
 * (meta_options.map_reserve; 0: the default). */
static inline int
meta_fx_setup_reserve(void **state, uint64_t reserve)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/berth-meta-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	f->opt.map_size = 64u << 20;
	f->opt.gc_grace = GRACE;
	f->opt.map_reserve = reserve;
	/* The environment lives in a subdirectory that meta_open creates. */
	strcat(f->dir, "/meta");
	if (meta_open(f->dir, &f->opt, &f->m) != 0) {
		rm_tree(f);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static inline int
meta_fx_setup(void **state)
{
	return meta_fx_setup_reserve(state, 0);
}

static inline int
meta_fx_teardown(void **state)
{
	struct fx *f = *state;

	meta_close(f->m);
	rm_tree(f);
	free(f);
	return 0;
}

static inline void
reopen(struct fx *f)
{
	meta_close(f->m);
	f->m = NULL;
	OK(meta_open(f->dir, &f->opt, &f->m));
}

/* A distinct well-formed digest per number. */
static inline const char *
dg(char buf[DIGEST_BUF], unsigned n)
{
	snprintf(buf, DIGEST_BUF, "sha256:%064x", n);
	return buf;
}

static inline uint64_t
blob_rc(struct fx *f, const char *d)
{
	uint64_t n = 999;

	OK(meta_blob_refcount(f->m, d, &n));
	return n;
}

static inline uint64_t
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

static inline int
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
static inline uint64_t
queued(struct fx *f, enum meta_gc_kind kind, const char *digest,
       const char *repo)
{
	struct find q = {kind, digest, repo != NULL ? repo : "", 0, 0};

	OK(meta_gcq_walk(f->m, UINT64_MAX, find_fn, &q));
	assert_true(q.found <= 1);
	return q.found ? q.due : 0;
}

static inline uint64_t
blob_q(struct fx *f, const char *d)
{
	return queued(f, META_GC_BLOB, d, NULL);
}

static inline uint64_t
mf_q(struct fx *f, const char *repo, const char *d)
{
	return queued(f, META_GC_MANIFEST, d, repo);
}

static inline int
count_fn(const struct meta_gc_item *it, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static inline int
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

static inline struct manifest_info *
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
static inline int
put(struct fx *f, const char *repo, const char *digest, const char *tag,
    const struct manifest_info *info, uint64_t now, char *missing)
{
	struct meta_manifest_put p = {.repo = repo,
	                              .digest = digest,
	                              .tag = tag,
	                              .body = digest,
	                              .body_len = strlen(digest),
	                              .info = info};

	return meta_manifest_put(f->m, &p, now, missing);
}

static inline int64_t
blob_size(struct fx *f, const char *d)
{
	uint64_t size = 0;

	OK(meta_blob_exists(f->m, d, &size));
	return (int64_t)size;
}

/* A plain image manifest of two blobs (with their stored sizes). */
static inline void
put_image(struct fx *f, const char *repo, const char *digest, const char *tag,
          const char *b1, const char *b2, uint64_t now)
{
	struct mi x;

	OK(put(f, repo, digest, tag,
	       mk_info(&x, MT_OCI_MANIFEST, NULL, NULL, 2, b1, blob_size(f, b1),
	               b2, blob_size(f, b2)),
	       now, NULL));
}

static inline void
two_blobs(struct fx *f, const char *repo, char b1[DIGEST_BUF],
          char b2[DIGEST_BUF])
{
	OK(meta_blob_commit(f->m, repo, dg(b1, 1), 10, NULL, T0));
	OK(meta_blob_commit(f->m, repo, dg(b2, 2), 20, NULL, T0));
}

/* Looks a key up in one named database with plain LMDB (meta closed). */
static inline int
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

static inline int
body_stored(struct fx *f, const char *digest)
{
	return raw_has(f, "bodies", digest, strlen(digest));
}

static inline int
child_row(struct fx *f, const char *parent, const char *child)
{
	char k[2 * DIGEST_BUF];
	size_t n = strlen(parent);

	memcpy(k, parent, n + 1);
	memcpy(k + n + 1, child, strlen(child));
	return raw_has(f, "children", k, n + 1 + strlen(child));
}

/* Checks a listing's `more` flag and its items, in order. */
static inline void
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

#endif
