/* Fixture and helpers shared by the collector tests (test_collect.c,
 * test_retention.c, test_check.c): a data directory in /tmp per test with
 * a blob store and, in DATA/meta, the metadata index (test_meta_util.h's
 * struct fx), and a collector on them when asked. Everything is static
 * inline: each test file is its own executable and includes this header. */
#ifndef BERTH_TEST_GC_UTIL_H
#define BERTH_TEST_GC_UTIL_H

#include "../storage/test_meta_util.h"

#include "common/digest.h"
#include "gc/gc.h"
#include "storage/blob.h"

struct gfx {
	struct fx base; /* base.dir = DATA/meta */
	char data[64];
	struct blob_store *bs;
	struct gc *g; /* NULL unless gc_fx_open was asked for one */
};

static inline void
gc_fx_close(struct gfx *x)
{
	gc_close(x->g);
	meta_close(x->base.m);
	blob_store_close(x->bs);
	rm_tree(&x->base); /* x->data */
}

/* Makes DATA from the mkdtemp template tmpl (at most 58 bytes: DATA/meta
 * fits in 64), opens the blob store and the index with grace seconds of
 * grace, and a collector when with_gc. 0, or -1 with nothing left. */
static inline int
gc_fx_open(struct gfx *x, const char *tmpl, uint64_t grace, int with_gc)
{
	strcpy(x->data, tmpl);
	if (mkdtemp(x->data) == NULL)
		return -1;
	strcpy(x->base.dir, x->data);
	strcat(x->base.dir, "/meta");
	x->base.opt.map_size = 64u << 20;
	x->base.opt.gc_grace = grace;
	if (blob_store_open(x->data, &x->bs) != 0 ||
	    meta_open(x->base.dir, &x->base.opt, &x->base.m) != 0 ||
	    (with_gc && gc_open(x->base.m, x->bs, NULL, &x->g) != 0)) {
		gc_fx_close(x);
		return -1;
	}
	return 0;
}

/* The usual fixture: a collector, a grace of GRACE. */
static inline int
gc_fx_setup(void **state)
{
	struct gfx *x = calloc(1, sizeof(*x));

	if (x == NULL || gc_fx_open(x, "/tmp/berth-gc-XXXXXX", GRACE, 1) != 0) {
		free(x);
		return -1;
	}
	*state = x;
	return 0;
}

static inline int
gc_fx_teardown(void **state)
{
	gc_fx_close(*state);
	free(*state);
	return 0;
}

/* A blob file with content s, through an upload, and no index row. */
static inline void
blob_file(struct gfx *x, const char *s, char digest[DIGEST_BUF])
{
	char uuid[BLOB_UUID_BUF];
	struct blob_upload *up;
	uint64_t size = 0;

	digest_of_buf(s, strlen(s), digest);
	OK(blob_upload_create(x->bs, uuid));
	OK(blob_upload_acquire(x->bs, uuid, &up));
	OK(blob_upload_write(up, s, strlen(s)));
	OK(blob_upload_commit(up, digest, &size));
}

/* A blob with content s: its file, then its index entry in repo. */
static inline void
push_blob(struct gfx *x, const char *repo, const char *s, uint64_t now,
          char digest[DIGEST_BUF])
{
	blob_file(x, s, digest);
	OK(meta_blob_commit(x->base.m, repo, digest, strlen(s), NULL, now));
}

static inline int
file_exists(struct gfx *x, const char *digest)
{
	uint64_t size;

	return blob_stat(x->bs, digest, &size) == 0;
}

/* 1 when the report lists the item. */
static inline int
listed(const struct gc_report *r, enum gc_kind k, const char *digest)
{
	for (size_t i = 0; i < r->n_items; i++)
		if (r->items[i].kind == k &&
		    strcmp(r->items[i].digest, digest) == 0)
			return 1;
	return 0;
}

#endif
