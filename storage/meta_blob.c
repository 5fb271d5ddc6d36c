/* Blobs, repository links, upload sessions and blob counts. */
#include "storage/meta_internal.h"

#include <string.h>

#include "common/rc.h"

void
meta_link_put(struct txn *t, const char *repo, const char *digest, uint64_t now)
{
	struct key k;
	struct enc e;

	meta_key_of(&k, repo, digest, NULL);
	meta_enc_init(&e);
	meta_enc_u64(&e, now);
	meta_txn_put_enc(t, t->m->links, &k, &e);
	meta_enc_free(&e);
	meta_key_of(&k, digest, repo, NULL);
	meta_txn_put(t, t->m->blinks, &k, "", 0);
}

void
meta_link_del(struct txn *t, const char *repo, const char *digest)
{
	struct key k;

	meta_key_of(&k, repo, digest, NULL);
	meta_txn_del(t, t->m->links, &k);
	meta_key_of(&k, digest, repo, NULL);
	meta_txn_del(t, t->m->blinks, &k);
}

int
meta_blob_commit(struct meta *m, const char *repo, const char *digest,
                 uint64_t size, const char *upload_uuid, uint64_t now)
{
	struct blob_row r;
	struct txn t;
	struct key k;

	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (meta_blob_row_get(&t, digest, &r)) {
		if (r.size != size) {
			meta_txn_fail(&t, RC_SIZE_INVALID);
		} else {
			r.touched = now;
			meta_blob_row_touch(&t, digest, &r, now);
			meta_blob_row_put(&t, digest, &r);
		}
	} else if (t.rc == 0) {
		memset(&r, 0, sizeof(r));
		r.size = size;
		r.created = now;
		r.touched = now;
		r.gc_due = meta_due(m, now);
		meta_blob_row_put(&t, digest, &r);
		meta_gcq_add(&t, META_GC_BLOB, digest, NULL, r.gc_due);
		meta_bytes_add(&t, size, 0);
	}
	meta_link_put(&t, repo, digest, now);
	if (upload_uuid != NULL) {
		meta_key_of(&k, upload_uuid, NULL);
		meta_txn_del(&t, m->uploads, &k);
	}
	return meta_txn_commit(&t);
}

int
meta_blob_get(struct meta *m, const char *repo, const char *digest,
              uint64_t *size, int *queued)
{
	struct blob_row r;
	struct txn t;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	if (!meta_link_exists(&t, repo, digest) ||
	    !meta_blob_row_get(&t, digest, &r))
		meta_txn_fail(&t, RC_BLOB_UNKNOWN);
	if (meta_txn_end(&t) != 0)
		return t.rc;
	*size = r.size;
	if (queued != NULL)
		*queued = r.gc_due != 0;
	return 0;
}

/* The blobs row of digest, read in a txn of its own. */
static int
blob_row_read(struct meta *m, const char *digest, struct blob_row *r)
{
	struct txn t;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	if (!meta_blob_row_get(&t, digest, r))
		meta_txn_fail(&t, RC_BLOB_UNKNOWN);
	return meta_txn_end(&t);
}

int
meta_blob_exists(struct meta *m, const char *digest, uint64_t *size)
{
	struct blob_row r;
	int rc = blob_row_read(m, digest, &r);

	if (rc == 0)
		*size = r.size;
	return rc;
}

int
meta_blob_mount(struct meta *m, const char *repo, const char *digest,
                const char *from, uint64_t now, uint64_t *size)
{
	struct blob_row r;
	struct txn t;

	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (meta_reserve_guard(&t) != 0)
		return meta_txn_commit(&t);
	if (from != NULL && !meta_link_exists(&t, from, digest))
		meta_txn_fail(&t, RC_BLOB_UNKNOWN);
	if (!meta_blob_row_get(&t, digest, &r))
		meta_txn_fail(&t, RC_BLOB_UNKNOWN);
	meta_link_put(&t, repo, digest, now);
	if (t.rc == 0) { /* a mount is an access */
		r.touched = now;
		meta_blob_row_touch(&t, digest, &r, now);
		meta_blob_row_put(&t, digest, &r);
	}
	if (meta_txn_commit(&t) != 0)
		return t.rc;
	*size = r.size;
	return 0;
}

int
meta_blob_unlink(struct meta *m, const char *repo, const char *digest,
                 uint64_t now)
{
	struct txn t;

	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (!meta_link_exists(&t, repo, digest))
		meta_txn_fail(&t, RC_BLOB_UNKNOWN);
	meta_link_del(&t, repo, digest);
	return meta_txn_commit(&t);
}

int
meta_touch_blob(struct meta *m, const char *digest, uint64_t now)
{
	struct blob_row r;
	struct txn t;

	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (!meta_blob_row_get(&t, digest, &r)) {
		meta_txn_fail(&t, RC_BLOB_UNKNOWN);
		return meta_txn_end(&t);
	}
	if (r.gc_due == 0)
		return meta_txn_end(&t); /* nothing to move: no write */
	meta_blob_row_touch(&t, digest, &r, now);
	return meta_txn_commit(&t);
}

int
meta_blob_refcount(struct meta *m, const char *digest, uint64_t *refcount)
{
	struct blob_row r;
	int rc = blob_row_read(m, digest, &r);

	if (rc == 0)
		*refcount = r.refcount;
	return rc;
}

/* ---- upload sessions ---- */

int
meta_upload_put(struct meta *m, const char *uuid, const char *repo,
                uint64_t now)
{
	struct txn t;
	struct key k;
	struct enc e;

	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (meta_reserve_guard(&t) != 0)
		return meta_txn_commit(&t);
	meta_key_of(&k, uuid, NULL);
	meta_enc_init(&e);
	meta_enc_u64(&e, now);
	meta_enc_str(&e, repo);
	meta_txn_put_enc(&t, m->uploads, &k, &e);
	meta_enc_free(&e);
	return meta_txn_commit(&t);
}

int
meta_upload_check(struct meta *m, const char *uuid, const char *repo)
{
	struct txn t;
	struct key k;
	struct dec d;
	MDB_val v;
	const char *r;
	size_t n = 0;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	meta_key_of(&k, uuid, NULL);
	if (!meta_txn_get(&t, m->uploads, &k, &v)) {
		meta_txn_fail(&t, RC_UPLOAD_UNKNOWN);
		return meta_txn_end(&t);
	}
	meta_dec_init(&d, &v);
	(void)meta_dec_u64(&d);
	r = meta_dec_strp(&d, &n);
	if (d.err)
		meta_txn_fail(&t, d.err);
	else if (n != strlen(repo) || memcmp(r, repo, n) != 0)
		meta_txn_fail(&t, RC_UPLOAD_UNKNOWN);
	return meta_txn_end(&t);
}

int
meta_upload_delete(struct meta *m, const char *uuid)
{
	struct txn t;
	struct key k;
	MDB_val v;

	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	meta_key_of(&k, uuid, NULL);
	if (!meta_txn_get(&t, m->uploads, &k, &v))
		meta_txn_fail(&t, RC_UPLOAD_UNKNOWN);
	meta_txn_del(&t, m->uploads, &k);
	return meta_txn_commit(&t);
}
