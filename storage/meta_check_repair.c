/* `berth check --repair`, index side: the fixes the walks of meta_check.c
 * collected, applied in the same write transaction once every walk is done;
 * and, for tests only, the helpers that damage an index on purpose. */
#include "storage/meta_check_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/rc.h"

/* ---- repair ---- */

static void
fixes_free(struct ck *c)
{
	for (size_t i = 0; i < c->nfix; i++) {
		free(c->fixes[i].repo);
		free(c->fixes[i].name);
	}
	free(c->fixes);
	c->fixes = NULL;
	c->nfix = c->capfix = 0;
}

/* The gc_due an item must have: 0 when referenced; else its own when a
 * queue key matches it, else the latest of its queue keys, else a new
 * one. */
static uint64_t
item_due(const struct item *it, uint64_t fresh)
{
	uint64_t due = 0;

	if (it->want > 0)
		return 0;
	if (it->gc_due != 0 && meta_check_item_queued(it, it->gc_due))
		return it->gc_due;
	for (size_t i = 0; i < it->nq; i++)
		if (it->dues[i] > due)
			due = it->dues[i];
	return due != 0 ? due : fresh;
}

static void
item_apply(struct ck *c, struct item *it)
{
	struct txn *t = c->t;
	enum meta_gc_kind kind =
	        it->type == IT_BLOB ? META_GC_BLOB : META_GC_MANIFEST;
	uint64_t due = item_due(it, c->fx->due);
	struct manifest_row mr;
	struct blob_row br;

	for (size_t i = 0; i < it->nq; i++)
		if (it->dues[i] != due)
			meta_gcq_remove(t, kind, it->digest, it->repo,
			                it->dues[i]);
	if (due != 0 && !meta_check_item_queued(it, due))
		meta_gcq_add(t, kind, it->digest, it->repo, due);
	if (it->type == IT_BLOB && meta_blob_row_get(t, it->digest, &br)) {
		br.refcount = it->want;
		br.gc_due = due;
		meta_blob_row_put(t, it->digest, &br);
	} else if (it->type == IT_MANIFEST &&
	           meta_manifest_row_get(t, it->repo, it->digest, &mr)) {
		mr.refcount = it->want;
		mr.gc_due = due;
		meta_manifest_row_put(t, it->repo, it->digest, &mr);
	}
}

static void
children_drop(struct txn *t, const char *parent)
{
	struct key prefix;
	struct scan s;

	meta_key_of(&prefix, parent, "", NULL);
	meta_scan_open(t, &s, t->m->children, &prefix, NULL);
	while (meta_scan_next(&s))
		meta_scan_del(&s);
	meta_scan_close(&s);
}

static void
fix_apply(struct ck *c, const struct fix *f)
{
	struct txn *t = c->t;
	struct meta *m = t->m;
	struct key k;
	struct enc e;

	switch (f->code) {
	case META_CHECK_TAG_DANGLING:
		meta_key_of(&k, f->repo, f->name, NULL);
		meta_txn_del(t, m->tags, &k);
		break;
	case META_CHECK_QUEUE_ORPHAN:
		meta_gcq_remove(t, f->kind, f->digest, f->repo, f->got);
		break;
	case META_CHECK_BODYREFS:
		meta_key_of(&k, f->digest, NULL);
		if (f->want == 0) {
			meta_txn_del(t, m->bodyrefs, &k);
			break;
		}
		meta_enc_init(&e);
		meta_enc_u64(&e, f->want);
		meta_txn_put_enc(t, m->bodyrefs, &k, &e);
		meta_enc_free(&e);
		break;
	case META_CHECK_BODY_ORPHAN:
		meta_key_of(&k, f->digest, NULL);
		meta_txn_del(t, m->bodies, &k);
		break;
	case META_CHECK_CHILDREN_ORPHAN: children_drop(t, f->digest); break;
	case META_CHECK_LINK_TWIN:
		meta_key_of(&k, f->digest, f->repo, NULL);
		meta_txn_put(t, m->blinks, &k, "", 0);
		break;
	case META_CHECK_LINK_DANGLING:
	case META_CHECK_BLINK_TWIN: meta_link_del(t, f->repo, f->digest); break;
	case META_CHECK_REFERRER_STALE:
		meta_key_of(&k, f->repo, f->name, f->digest, NULL);
		meta_txn_del(t, m->referrers, &k);
		break;
	case META_CHECK_BLOB_BYTES: meta_bytes_rebuild(t); break;
	default: break; /* item problems: item_apply */
	}
}

int
meta_check_repair(struct meta *m, const struct meta_check_fix *fx,
                  meta_check_fn fn, void *arg, uint64_t *fixed)
{
	struct txn t;
	struct ck c;
	struct key k;
	int rc;

	memset(&c, 0, sizeof(c));
	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	c.t = &t;
	c.repair = 1;
	c.fx = fx;
	c.fixed_fn = fn;
	c.fixed_arg = arg;
	meta_check_analyze(&c);
	for (size_t i = 0; i < c.nfix && t.rc == 0; i++)
		fix_apply(&c, &c.fixes[i]);
	for (size_t i = 0; i < c.tb.cap && t.rc == 0; i++)
		if (c.tb.slot[i] != NULL && c.tb.slot[i]->fix)
			item_apply(&c, c.tb.slot[i]);
	for (size_t i = 0; i < fx->n_uploads; i++) {
		meta_key_of(&k, fx->uploads[i], NULL);
		meta_txn_del(&t, m->uploads, &k);
	}
	for (size_t i = 0; i < fx->n_intents; i++) {
		meta_key_of(&k, fx->intents[i], NULL);
		meta_txn_del(&t, m->intents, &k);
	}
	rc = meta_txn_commit(&t);
	meta_check_table_free(&c.tb);
	fixes_free(&c);
	if (rc == 0 && fixed != NULL)
		*fixed = c.fixed;
	return rc;
}

/* ---- FOR TESTS ONLY: damage on purpose ---- */

int
meta_debug_set_count(struct meta *m, enum meta_gc_kind kind, const char *repo,
                     const char *digest, uint64_t refcount, uint64_t gc_due)
{
	struct manifest_row mr;
	struct blob_row br;
	struct txn t;

	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (kind == META_GC_BLOB && meta_blob_row_get(&t, digest, &br)) {
		br.refcount = refcount;
		br.gc_due = gc_due;
		meta_blob_row_put(&t, digest, &br);
	} else if (kind == META_GC_MANIFEST &&
	           meta_manifest_row_get(&t, repo, digest, &mr)) {
		mr.refcount = refcount;
		mr.gc_due = gc_due;
		meta_manifest_row_put(&t, repo, digest, &mr);
	} else {
		meta_txn_fail(&t, kind == META_GC_BLOB ? RC_BLOB_UNKNOWN
		                                       : RC_MANIFEST_UNKNOWN);
	}
	return meta_txn_commit(&t);
}

int
meta_debug_put_raw(struct meta *m, const char *db, const void *key, size_t klen,
                   const void *val, size_t vlen)
{
	static const struct {
		const char *name;
		size_t off;
	} dbs[] = {
	        {"blobs", offsetof(struct meta, blobs)},
	        {"links", offsetof(struct meta, links)},
	        {"manifests", offsetof(struct meta, manifests)},
	        {"bodies", offsetof(struct meta, bodies)},
	        {"bodyrefs", offsetof(struct meta, bodyrefs)},
	        {"children", offsetof(struct meta, children)},
	        {"tags", offsetof(struct meta, tags)},
	        {"referrers", offsetof(struct meta, referrers)},
	        {"uploads", offsetof(struct meta, uploads)},
	        {"gcq", offsetof(struct meta, gcq)},
	        {"blinks", offsetof(struct meta, blinks)},
	        {"intents", offsetof(struct meta, intents)},
	        {"meta", offsetof(struct meta, info)},
	};
	struct txn t;
	struct key k;
	MDB_dbi dbi = 0;
	int found = 0;

	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		if (strcmp(dbs[i].name, db) == 0) {
			dbi = *(const MDB_dbi *)((const char *)m + dbs[i].off);
			found = 1;
		}
	}
	if (!found)
		return RC_BAD_REQUEST;
	meta_key_init(&k);
	meta_key_bytes(&k, key, klen);
	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (val == NULL)
		meta_txn_del(&t, dbi, &k);
	else
		meta_txn_put(&t, dbi, &k, val, vlen);
	return meta_txn_commit(&t);
}
