/* The collector's transactions: drain due items of the gc queue, intent
 * rows for blob files to unlink, queue and storage totals, and the walk of
 * upload sessions. The decisions of what and when are gc/'s; the rule that
 * makes a deletion safe is checked here, inside the txn that deletes. */
#include "storage/meta_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/rc.h"

#define DRAIN_CHUNK 64 /* queue keys read at a time */

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void
meta_gc_batch_free(struct meta_gc_batch *b)
{
	free(b->items);
	free(b->kept);
	memset(b, 0, sizeof(*b));
}

static void
batch_add(struct txn *t, struct meta_gc_batch *b, enum meta_gc_kind kind,
          const char *digest, const char *repo, uint64_t size)
{
	struct meta_gc_deleted *d;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct meta_gc_deleted *ni =
		        realloc(b->items, cap * sizeof(*ni));
		if (ni == NULL) {
			meta_txn_fail(t, -ENOMEM);
			return;
		}
		b->items = ni;
		b->cap = cap;
	}
	d = &b->items[b->n++];
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	snprintf(d->digest, sizeof(d->digest), "%s", digest);
	snprintf(d->repo, sizeof(d->repo), "%s", repo ? repo : "");
	d->size = size;
}

static void
kept_add(struct txn *t, struct meta_gc_batch *b, const struct meta_gc_item *it,
         uint64_t size)
{
	struct meta_gc_deleted *d;

	if (b->n_kept == b->cap_kept) {
		size_t cap = b->cap_kept ? b->cap_kept * 2 : 16;
		struct meta_gc_deleted *ni =
		        realloc(b->kept, cap * sizeof(*ni));
		if (ni == NULL) {
			meta_txn_fail(t, -ENOMEM);
			return;
		}
		b->kept = ni;
		b->cap_kept = cap;
	}
	d = &b->kept[b->n_kept++];
	memset(d, 0, sizeof(*d));
	d->kind = it->kind;
	snprintf(d->digest, sizeof(d->digest), "%s", it->digest);
	snprintf(d->repo, sizeof(d->repo), "%s", it->repo);
	d->size = size;
}

/* ---- the running total of blob bytes (in the "meta" database) ---- */

uint64_t
meta_bytes_get(struct txn *t)
{
	struct key k;
	struct dec d;
	MDB_val v;
	uint64_t n = 0;

	meta_key_of(&k, "blob_bytes", NULL);
	if (meta_txn_get(t, t->m->info, &k, &v)) {
		meta_dec_init(&d, &v);
		n = meta_dec_u64(&d);
		if (d.err)
			meta_txn_fail(t, d.err);
	}
	return n;
}

void
meta_bytes_add(struct txn *t, uint64_t add, uint64_t sub)
{
	struct key k;
	struct enc e;
	uint64_t n = meta_bytes_get(t) + add;

	n = n > sub ? n - sub : 0;
	meta_key_of(&k, "blob_bytes", NULL);
	meta_enc_init(&e);
	meta_enc_u64(&e, n);
	meta_txn_put_enc(t, t->m->info, &k, &e);
	meta_enc_free(&e);
}

/* Sums every blob row into the running total (schema upgrade). */
void
meta_bytes_rebuild(struct txn *t)
{
	struct key prefix, k;
	struct scan s;
	struct enc e;
	struct dec d;
	uint64_t n = 0;

	meta_key_init(&prefix);
	meta_scan_open(t, &s, t->m->blobs, &prefix, NULL);
	while (meta_scan_next(&s)) {
		meta_dec_init(&d, &s.v);
		n += meta_dec_u64(&d);
		if (d.err) {
			meta_txn_fail(t, d.err);
			break;
		}
	}
	meta_scan_close(&s);
	meta_key_of(&k, "blob_bytes", NULL);
	meta_enc_init(&e);
	meta_enc_u64(&e, n);
	meta_txn_put_enc(t, t->m->info, &k, &e);
	meta_enc_free(&e);
}

/* ---- one item ---- */

/* A blob whose count is 0 and whose grace is over: its row, its links in
 * every repository, and an intent row for its file. */
static void
blob_collect(struct txn *t, const char *digest, const struct blob_row *r,
             uint64_t due, struct meta_gc_batch *b)
{
	struct key prefix, k;
	struct scan s;
	struct enc e;
	char repo[256];

	meta_gcq_remove(t, META_GC_BLOB, digest, NULL, due);
	meta_key_of(&k, digest, NULL);
	meta_txn_del(t, t->m->blobs, &k);
	meta_key_of(&prefix, digest, "", NULL);
	meta_scan_open(t, &s, t->m->blinks, &prefix, NULL);
	while (meta_scan_next(&s)) {
		size_t n = s.k.mv_size - prefix.len;
		if (n == 0 || n >= sizeof(repo)) {
			meta_txn_fail(t, RC_CORRUPT);
			break;
		}
		memcpy(repo, (const char *)s.k.mv_data + prefix.len, n);
		repo[n] = '\0';
		meta_key_of(&k, repo, digest, NULL);
		meta_txn_del(t, t->m->links, &k);
		meta_scan_del(&s);
	}
	meta_scan_close(&s);
	meta_key_of(&k, digest, NULL);
	meta_enc_init(&e);
	meta_enc_u64(&e, r->size);
	meta_txn_put_enc(t, t->m->intents, &k, &e);
	meta_enc_free(&e);
	meta_bytes_add(t, 0, r->size);
	batch_add(t, b, META_GC_BLOB, digest, NULL, r->size);
}

/* Moves a queue entry whose item was touched within the grace to its new
 * due time. */
static void
requeue(struct txn *t, const struct meta_gc_item *it, uint64_t *gc_due,
        uint64_t due)
{
	meta_gcq_remove(t, it->kind, it->digest, it->repo, it->due);
	meta_gcq_add(t, it->kind, it->digest, it->repo, due);
	*gc_due = due;
}

/* Applies the safety rule to one queue entry and collects the item when it
 * holds. Returns 1 when something was deleted. */
static int
item_process(struct txn *t, const struct meta_gc_item *it, uint64_t now,
             const struct meta_keep *keep, struct meta_gc_batch *b)
{
	struct meta *m = t->m;
	uint64_t last, due;

	if (it->kind == META_GC_BLOB) {
		struct blob_row r;
		int found = meta_blob_row_get(t, it->digest, &r);
		if (!found || r.refcount > 0 || r.gc_due != it->due) {
			/* A stale entry: the row is gone, referenced again
			 * or queued under another due time. */
			meta_gcq_remove(t, it->kind, it->digest, NULL, it->due);
			if (found && r.refcount > 0 && r.gc_due == it->due) {
				r.gc_due = 0;
				meta_blob_row_put(t, it->digest, &r);
			}
			return 0;
		}
		last = meta_item_last(m, META_GC_BLOB, NULL, it->digest,
		                      r.touched);
		due = meta_free_after(m, last);
		if (due >= now) {
			requeue(t, it, &r.gc_due, due);
			meta_blob_row_put(t, it->digest, &r);
			b->requeued++;
			return 0;
		}
		blob_collect(t, it->digest, &r, it->due, b);
		return 1;
	} else {
		struct manifest_row r;
		int found = meta_manifest_row_get(t, it->repo, it->digest, &r);
		if (!found || r.refcount > 0 || r.gc_due != it->due) {
			meta_gcq_remove(t, it->kind, it->digest, it->repo,
			                it->due);
			if (found && r.refcount > 0 && r.gc_due == it->due) {
				r.gc_due = 0;
				meta_manifest_row_put(t, it->repo, it->digest,
				                      &r);
			}
			return 0;
		}
		last = meta_item_last(m, META_GC_MANIFEST, it->repo, it->digest,
		                      r.touched);
		due = meta_free_after(m, last);
		if (keep != NULL && keep->untagged_after > m->grace)
			due = last > UINT64_MAX - keep->untagged_after
			              ? UINT64_MAX
			              : last + keep->untagged_after;
		if (due < now && keep != NULL && keep->manifest != NULL &&
		    keep->manifest(it->repo, it->digest, keep->arg)) {
			/* In use by the cluster: looked at again later. */
			due = meta_due(m, now);
			kept_add(t, b, it, r.size);
		}
		if (due >= now) {
			requeue(t, it, &r.gc_due, due);
			meta_manifest_row_put(t, it->repo, it->digest, &r);
			b->requeued++;
			return 0;
		}
		/* Count 0: no tag, no index and no subject hold it. */
		meta_manifest_remove(t, it->repo, it->digest, &r, now);
		batch_add(t, b, META_GC_MANIFEST, it->digest, it->repo, r.size);
		return 1;
	}
}

/* Reads up to max queue entries due at now, in due order. */
static size_t
due_entries(struct txn *t, uint64_t now, struct meta_gc_item *out, size_t max)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	MDB_cursor_op op = MDB_FIRST;
	size_t n = 0;
	int rc;

	rc = mdb_cursor_open(t->txn, t->m->gcq, &c);
	if (rc != MDB_SUCCESS) {
		meta_txn_fail(t, meta_rc(rc));
		return 0;
	}
	while (n < max) {
		rc = mdb_cursor_get(c, &k, &v, op);
		op = MDB_NEXT;
		if (rc == MDB_NOTFOUND)
			break;
		if (rc != MDB_SUCCESS) {
			meta_txn_fail(t, meta_rc(rc));
			break;
		}
		rc = meta_gcq_decode(&k, &out[n]);
		if (rc != 0) {
			meta_txn_fail(t, rc);
			break;
		}
		if (out[n].due >= now)
			break; /* due seconds are over only after them */
		n++;
	}
	mdb_cursor_close(c);
	return n;
}

/* 1 when a read remembered since the checks of this batch now keeps one
 * of its deleted items. */
static int
batch_raced(struct meta *m, const struct meta_gc_batch *b, uint64_t now)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct meta_gc_deleted *d = &b->items[i];
		uint64_t a = meta_access_last(m, d->kind, d->repo, d->digest);
		if (meta_free_after(m, a) >= now)
			return 1;
	}
	return 0;
}

int
meta_gc_step(struct meta *m, uint64_t now, size_t max_items, uint64_t max_ns,
             int dry_run, const struct meta_keep *keep, struct meta_gc_batch *b)
{
	struct meta_gc_item due[DRAIN_CHUNK];
	uint64_t t0 = mono_ns();
	size_t got, done = 0;
	struct txn t;
	int rc;

	b->n = 0;
	b->n_kept = 0;
	b->more = 0;
	b->conflict = 0;
	b->requeued = 0;
	if (max_items == 0)
		max_items = 256;
	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (dry_run && keep != NULL && keep->n_expire > 0)
		meta_tags_expire_txn(&t, keep->expire, keep->n_expire, now);
	for (;;) {
		size_t want = DRAIN_CHUNK;
		if (!dry_run && max_items - done < want)
			want = max_items - done;
		got = due_entries(&t, now, due, want);
		for (size_t i = 0; i < got && t.rc == 0; i++)
			(void)item_process(&t, &due[i], now, keep, b);
		done += got;
		if (t.rc != 0 || got == 0)
			break;
		if (!dry_run && (done >= max_items ||
		                 (max_ns != 0 && mono_ns() - t0 >= max_ns))) {
			/* Anything left? */
			b->more = due_entries(&t, now, due, 1) > 0;
			break;
		}
	}
	if (t.rc != 0 || dry_run) {
		rc = t.rc;
		meta_txn_abort(&t);
		return rc;
	}
	if (b->n == 0)
		return meta_txn_commit(&t);
	/* The items are decided: a read of one of them that comes now either
	 * sees it gone (it waits for the counter) or is seen here; reads of
	 * anything else go on. */
	meta_gc_doom(m, b->items, b->n);
	meta_gc_gen_odd(m);
	if (batch_raced(m, b, now)) {
		meta_txn_abort(&t);
		meta_gc_gen_even(m);
		b->n = 0;
		b->more = 1;
		b->conflict = 1;
		return 0;
	}
	rc = meta_txn_commit(&t);
	meta_gc_gen_even(m);
	if (rc != 0)
		b->n = 0;
	return rc;
}

/* ---- intents ---- */

int
meta_gc_intents(struct meta *m, char (**out)[DIGEST_BUF], size_t *n)
{
	char(*list)[DIGEST_BUF] = NULL;
	size_t len = 0, cap = 0;
	struct key prefix;
	struct scan s;
	struct txn t;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	meta_key_init(&prefix);
	meta_scan_open(&t, &s, m->intents, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (s.k.mv_size == 0 || s.k.mv_size >= DIGEST_BUF) {
			meta_txn_fail(&t, RC_CORRUPT);
			break;
		}
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char(*nl)[DIGEST_BUF] = realloc(list, nc * sizeof(*nl));
			if (nl == NULL) {
				meta_txn_fail(&t, -ENOMEM);
				break;
			}
			list = nl;
			cap = nc;
		}
		memcpy(list[len], s.k.mv_data, s.k.mv_size);
		list[len][s.k.mv_size] = '\0';
		len++;
	}
	meta_scan_close(&s);
	if (meta_txn_end(&t) != 0) {
		free(list);
		return t.rc;
	}
	*out = list;
	*n = len;
	return 0;
}

int
meta_gc_intents_done(struct meta *m, char (*digests)[DIGEST_BUF], size_t n)
{
	struct txn t;
	struct key k;

	if (n == 0)
		return 0;
	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	for (size_t i = 0; i < n; i++) {
		meta_key_of(&k, digests[i], NULL);
		meta_txn_del(&t, m->intents, &k);
	}
	return meta_txn_commit(&t);
}

int
meta_blob_indexed(struct meta *m, const char *digest)
{
	uint64_t size;
	int rc = meta_blob_exists(m, digest, &size);

	if (rc == RC_BLOB_UNKNOWN)
		return 0;
	return rc == 0 ? 1 : rc;
}

/* ---- totals ---- */

int
meta_gc_state_get(struct meta *m, uint64_t now, struct meta_gc_state *out)
{
	struct meta_gc_state st;
	struct meta_gc_item it;
	MDB_cursor *c = NULL;
	MDB_stat ms;
	MDB_val k, v;
	struct txn t;
	int rc;

	memset(&st, 0, sizeof(st));
	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	if ((rc = mdb_stat(t.txn, m->gcq, &ms)) == MDB_SUCCESS)
		st.queue_len = ms.ms_entries;
	if (rc == MDB_SUCCESS &&
	    (rc = mdb_stat(t.txn, m->blobs, &ms)) == MDB_SUCCESS)
		st.blobs = ms.ms_entries;
	if (rc == MDB_SUCCESS &&
	    (rc = mdb_stat(t.txn, m->manifests, &ms)) == MDB_SUCCESS)
		st.manifests = ms.ms_entries;
	if (rc != MDB_SUCCESS)
		meta_txn_fail(&t, meta_rc(rc));
	st.blob_bytes = meta_bytes_get(&t);
	/* Due entries come first: count them up to the first one that is
	 * not (a run leaves none due, so this walk is short). */
	if (t.rc == 0 &&
	    (rc = mdb_cursor_open(t.txn, m->gcq, &c)) != MDB_SUCCESS)
		meta_txn_fail(&t, meta_rc(rc));
	for (MDB_cursor_op op = MDB_FIRST; t.rc == 0; op = MDB_NEXT) {
		rc = mdb_cursor_get(c, &k, &v, op);
		if (rc == MDB_NOTFOUND)
			break;
		if (rc != MDB_SUCCESS || meta_gcq_decode(&k, &it) != 0) {
			meta_txn_fail(&t, rc != MDB_SUCCESS ? meta_rc(rc)
			                                    : RC_CORRUPT);
			break;
		}
		if (it.due >= now) {
			st.next_due = it.due;
			break;
		}
		st.due++;
	}
	if (c != NULL)
		mdb_cursor_close(c);
	if (meta_txn_end(&t) != 0)
		return t.rc;
	*out = st;
	return 0;
}

/* ---- upload sessions ---- */

int
meta_upload_walk(struct meta *m,
                 int (*fn)(const struct meta_upload *u, void *arg), void *arg)
{
	struct meta_upload u;
	struct key prefix;
	struct scan s;
	struct dec d;
	struct txn t;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	meta_key_init(&prefix);
	meta_scan_open(&t, &s, m->uploads, &prefix, NULL);
	while (meta_scan_next(&s)) {
		memset(&u, 0, sizeof(u));
		if (s.k.mv_size == 0 || s.k.mv_size >= sizeof(u.uuid)) {
			meta_txn_fail(&t, RC_CORRUPT);
			break;
		}
		memcpy(u.uuid, s.k.mv_data, s.k.mv_size);
		meta_dec_init(&d, &s.v);
		u.started = meta_dec_u64(&d);
		meta_dec_str(&d, u.repo, sizeof(u.repo));
		if (d.err) {
			meta_txn_fail(&t, d.err);
			break;
		}
		if (fn(&u, arg) != 0)
			break;
	}
	meta_scan_close(&s);
	return meta_txn_end(&t);
}

int
meta_upload_exists(struct meta *m, const char *uuid)
{
	struct txn t;
	struct key k;
	MDB_val v;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	meta_key_of(&k, uuid, NULL);
	if (!meta_txn_get(&t, m->uploads, &k, &v))
		meta_txn_fail(&t, RC_UPLOAD_UNKNOWN);
	return meta_txn_end(&t);
}
