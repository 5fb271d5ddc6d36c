/* The metadata index: transaction wrapper, codecs, rows and the refcount /
 * gc queue bookkeeping shared by the meta_*.c files. The environment is
 * opened and closed in meta_env.c. */
#include "storage/meta_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/rc.h"

/* ---- keys ---- */

void
meta_key_init(struct key *k)
{
	k->len = 0;
	k->bad = 0;
}

void
meta_key_bytes(struct key *k, const void *b, size_t n)
{
	if (k->bad || n > sizeof(k->b) - k->len) {
		k->bad = 1;
		return;
	}
	memcpy(k->b + k->len, b, n);
	k->len += n;
}

void
meta_key_str(struct key *k, const char *s)
{
	meta_key_bytes(k, s, strlen(s));
}

void
meta_key_sep(struct key *k)
{
	meta_key_byte(k, 0);
}

void
meta_key_byte(struct key *k, unsigned char c)
{
	meta_key_bytes(k, &c, 1);
}

void
meta_key_u64be(struct key *k, uint64_t v)
{
	unsigned char b[8];

	for (int i = 7; i >= 0; i--) {
		b[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	meta_key_bytes(k, b, sizeof(b));
}

void
meta_key_of(struct key *k, const char *first, ...)
{
	va_list ap;
	const char *s;

	meta_key_init(k);
	meta_key_str(k, first);
	va_start(ap, first);
	while ((s = va_arg(ap, const char *)) != NULL) {
		meta_key_sep(k);
		meta_key_str(k, s);
	}
	va_end(ap);
}

/* ---- values ---- */

void
meta_enc_init(struct enc *e)
{
	e->p = e->small;
	e->len = 0;
	e->cap = sizeof(e->small);
	e->err = 0;
}

void
meta_enc_free(struct enc *e)
{
	if (e->p != e->small)
		free(e->p);
	e->p = e->small;
	e->len = 0;
	e->cap = sizeof(e->small);
}

void
meta_enc_bytes(struct enc *e, const void *b, size_t n)
{
	if (e->err)
		return;
	if (n > e->cap - e->len) {
		size_t cap = e->cap;
		unsigned char *p;

		while (n > cap - e->len) {
			if (cap > SIZE_MAX / 2) {
				e->err = -ENOMEM;
				return;
			}
			cap *= 2;
		}
		p = malloc(cap);
		if (p == NULL) {
			e->err = -ENOMEM;
			return;
		}
		memcpy(p, e->p, e->len);
		if (e->p != e->small)
			free(e->p);
		e->p = p;
		e->cap = cap;
	}
	memcpy(e->p + e->len, b, n);
	e->len += n;
}

void
meta_enc_u64(struct enc *e, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++) {
		b[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	meta_enc_bytes(e, b, sizeof(b));
}

void
meta_enc_str(struct enc *e, const char *s)
{
	if (s == NULL)
		s = "";
	meta_enc_bytes(e, s, strlen(s) + 1);
}

void
meta_dec_init(struct dec *d, const MDB_val *v)
{
	d->p = v->mv_data;
	d->len = v->mv_size;
	d->off = 0;
	d->err = 0;
}

uint64_t
meta_dec_u64(struct dec *d)
{
	uint64_t v = 0;

	if (d->err || d->len - d->off < 8) {
		d->err = RC_CORRUPT;
		return 0;
	}
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | d->p[d->off + (size_t)i];
	d->off += 8;
	return v;
}

const char *
meta_dec_strp(struct dec *d, size_t *len)
{
	const unsigned char *s, *nul;

	if (d->err || d->off >= d->len) {
		d->err = RC_CORRUPT;
		return NULL;
	}
	s = d->p + d->off;
	nul = memchr(s, 0, d->len - d->off);
	if (nul == NULL) {
		d->err = RC_CORRUPT;
		return NULL;
	}
	*len = (size_t)(nul - s);
	d->off += *len + 1;
	return (const char *)s;
}

void
meta_dec_str(struct dec *d, char *out, size_t outsz)
{
	size_t n;
	const char *s = meta_dec_strp(d, &n);

	if (s == NULL || n >= outsz) {
		d->err = RC_CORRUPT;
		if (outsz > 0)
			out[0] = '\0';
		return;
	}
	memcpy(out, s, n + 1);
}

char *
meta_strndup(const char *s, size_t n)
{
	char *p;

	if (s == NULL)
		return NULL;
	p = malloc(n + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ---- transactions ---- */

int
meta_rc(int mdb_rc)
{
	switch (mdb_rc) {
	case MDB_SUCCESS: return RC_OK;
	case MDB_MAP_FULL:
	case MDB_READERS_FULL:
	case MDB_TXN_FULL:
	case MDB_DBS_FULL: return RC_FULL;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH: return RC_CORRUPT;
	default: break;
	}
	if (mdb_rc > 0 && mdb_rc < 4096)
		return -mdb_rc; /* an errno from the system */
	return RC_DB;
}

/* This thread's cached read txn: which environment it belongs to (meta ids
 * are never reused, so a stale entry is recognised and dropped) and whether
 * it is in use (a read nested in another read gets a txn of its own). */
static __thread struct {
	uint64_t meta_id;
	MDB_txn *txn;
	int busy;
} tls_reader;

static atomic_uint_fast64_t next_meta_id = 1;

/* Beyond this many cached readers (threads), reads fall back to plain
 * begin/abort so the reader table is never exhausted by caching. */
#define MAX_CACHED_READERS 256

static int
reader_begin(struct meta *m, struct txn *t)
{
	int rc;

	if (tls_reader.meta_id == m->id && tls_reader.txn != NULL &&
	    !tls_reader.busy) {
		rc = mdb_txn_renew(tls_reader.txn);
		if (rc == MDB_SUCCESS) {
			t->txn = tls_reader.txn;
			t->cached = 1;
			tls_reader.busy = 1;
			return MDB_SUCCESS;
		}
		tls_reader.txn = NULL; /* freed by meta_close */
	}
	rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, &t->txn);
	if (rc != MDB_SUCCESS || tls_reader.busy ||
	    (tls_reader.meta_id == m->id && tls_reader.txn != NULL))
		return rc;
	pthread_mutex_lock(&m->readers_lock);
	if (m->n_readers < MAX_CACHED_READERS) {
		if (m->n_readers == m->cap_readers) {
			size_t cap = m->cap_readers ? m->cap_readers * 2 : 16;
			MDB_txn **nr = realloc(m->readers, cap * sizeof(*nr));
			if (nr != NULL) {
				m->readers = nr;
				m->cap_readers = cap;
			}
		}
		if (m->n_readers < m->cap_readers) {
			m->readers[m->n_readers++] = t->txn;
			tls_reader.meta_id = m->id;
			tls_reader.txn = t->txn;
			tls_reader.busy = 1;
			t->cached = 1;
		}
	}
	pthread_mutex_unlock(&m->readers_lock);
	return MDB_SUCCESS;
}

void
meta_readers_init(struct meta *m)
{
	m->id = atomic_fetch_add(&next_meta_id, 1);
	pthread_mutex_init(&m->readers_lock, NULL);
}

void
meta_readers_close(struct meta *m)
{
	for (size_t i = 0; i < m->n_readers; i++)
		mdb_txn_abort(m->readers[i]);
	free(m->readers);
	if (tls_reader.meta_id == m->id)
		tls_reader.txn = NULL;
	pthread_mutex_destroy(&m->readers_lock);
}

int
meta_txn_begin(struct meta *m, struct txn *t, int write)
{
	int rc;

	t->m = m;
	t->txn = NULL;
	t->cached = 0;
	if (write)
		rc = mdb_txn_begin(m->env, NULL, 0, &t->txn);
	else
		rc = reader_begin(m, t);
	t->rc = meta_rc(rc);
	if (rc != MDB_SUCCESS)
		t->txn = NULL;
	else if (write)
		meta_reserve_keep(m);
	return t->rc;
}

int
meta_txn_fail(struct txn *t, int rc)
{
	if (t->rc == 0)
		t->rc = rc;
	return t->rc;
}

static int
key_ok(struct txn *t, const struct key *k)
{
	if (t->rc != 0)
		return 0;
	if (k->bad || k->len == 0) {
		meta_txn_fail(t, RC_BAD_REQUEST);
		return 0;
	}
	return 1;
}

int
meta_txn_get(struct txn *t, MDB_dbi dbi, const struct key *k, MDB_val *v)
{
	MDB_val kv;
	int rc;

	if (!key_ok(t, k))
		return 0;
	kv.mv_data = (void *)k->b;
	kv.mv_size = k->len;
	rc = mdb_get(t->txn, dbi, &kv, v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != MDB_SUCCESS) {
		meta_txn_fail(t, meta_rc(rc));
		return 0;
	}
	return 1;
}

void
meta_txn_put(struct txn *t, MDB_dbi dbi, const struct key *k, const void *v,
             size_t vlen)
{
	MDB_val kv, vv;
	int rc;

	if (!key_ok(t, k))
		return;
	kv.mv_data = (void *)k->b;
	kv.mv_size = k->len;
	vv.mv_data = (void *)v;
	vv.mv_size = vlen;
	rc = mdb_put(t->txn, dbi, &kv, &vv, 0);
	if (rc != MDB_SUCCESS)
		meta_txn_fail(t, meta_rc(rc));
}

void
meta_txn_put_enc(struct txn *t, MDB_dbi dbi, const struct key *k,
                 const struct enc *e)
{
	if (e->err) {
		meta_txn_fail(t, e->err);
		return;
	}
	meta_txn_put(t, dbi, k, e->p, e->len);
}

void
meta_txn_del(struct txn *t, MDB_dbi dbi, const struct key *k)
{
	MDB_val kv;
	int rc;

	if (!key_ok(t, k))
		return;
	kv.mv_data = (void *)k->b;
	kv.mv_size = k->len;
	rc = mdb_del(t->txn, dbi, &kv, NULL);
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		meta_txn_fail(t, meta_rc(rc));
}

int
meta_txn_commit(struct txn *t)
{
	int rc;

	if (t->txn == NULL)
		return t->rc;
	if (t->cached) { /* a read txn: nothing to commit */
		meta_txn_abort(t);
		return t->rc;
	}
	if (t->rc != 0) {
		mdb_txn_abort(t->txn);
		t->txn = NULL;
		return t->rc;
	}
	rc = mdb_txn_commit(t->txn);
	t->txn = NULL;
	t->rc = meta_commit_rc(t->m, meta_rc(rc));
	if (t->rc == 0)
		atomic_fetch_add_explicit(&t->m->write_txns, 1,
		                          memory_order_relaxed);
	return t->rc;
}

void
meta_txn_abort(struct txn *t)
{
	if (t->txn != NULL && t->cached) {
		mdb_txn_reset(t->txn);
		tls_reader.busy = 0;
	} else if (t->txn != NULL) {
		mdb_txn_abort(t->txn);
	}
	t->txn = NULL;
	t->cached = 0;
}

int
meta_txn_end(struct txn *t)
{
	meta_txn_abort(t);
	return t->rc;
}

/* ---- prefix scans ---- */

void
meta_scan_open(struct txn *t, struct scan *s, MDB_dbi dbi,
               const struct key *prefix, const struct key *from)
{
	int rc;

	s->t = t;
	s->c = NULL;
	s->state = 2;
	s->plen = 0;
	if (t->rc != 0)
		return;
	if (prefix->bad) { /* an empty prefix walks the whole database */
		meta_txn_fail(t, RC_BAD_REQUEST);
		return;
	}
	if (from != NULL && !key_ok(t, from))
		return;
	memcpy(s->prefix, prefix->b, prefix->len);
	s->plen = prefix->len;
	s->from = from != NULL ? *from : *prefix;
	rc = mdb_cursor_open(t->txn, dbi, &s->c);
	if (rc != MDB_SUCCESS) {
		s->c = NULL;
		meta_txn_fail(t, meta_rc(rc));
		return;
	}
	s->state = 0;
}

int
meta_scan_next(struct scan *s)
{
	int rc;

	if (s->state == 2 || s->t->rc != 0) {
		s->state = 2;
		return 0;
	}
	if (s->state == 0 && s->from.len == 0) {
		rc = mdb_cursor_get(s->c, &s->k, &s->v, MDB_FIRST);
	} else if (s->state == 0) {
		s->k.mv_data = s->from.b;
		s->k.mv_size = s->from.len;
		rc = mdb_cursor_get(s->c, &s->k, &s->v, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(s->c, &s->k, &s->v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND) {
		s->state = 2;
		return 0;
	}
	if (rc != MDB_SUCCESS) {
		meta_txn_fail(s->t, meta_rc(rc));
		s->state = 2;
		return 0;
	}
	if (s->k.mv_size < s->plen ||
	    memcmp(s->k.mv_data, s->prefix, s->plen) != 0) {
		s->state = 2;
		return 0;
	}
	s->state = 1;
	return 1;
}

void
meta_scan_del(struct scan *s)
{
	int rc;

	if (s->state != 1 || s->t->rc != 0)
		return;
	rc = mdb_cursor_del(s->c, 0);
	if (rc != MDB_SUCCESS)
		meta_txn_fail(s->t, meta_rc(rc));
}

void
meta_scan_close(struct scan *s)
{
	if (s->c != NULL)
		mdb_cursor_close(s->c);
	s->c = NULL;
	s->state = 2;
}

int
meta_repo_has_rows(struct txn *t, MDB_dbi dbi, const char *repo)
{
	struct key prefix;
	struct scan s;
	int found;

	meta_key_of(&prefix, repo, "", NULL);
	meta_scan_open(t, &s, dbi, &prefix, NULL);
	found = meta_scan_next(&s);
	meta_scan_close(&s);
	return found;
}

/* ---- rows ---- */

int
meta_link_exists(struct txn *t, const char *repo, const char *digest)
{
	struct key k;
	MDB_val v;

	meta_key_of(&k, repo, digest, NULL);
	return meta_txn_get(t, t->m->links, &k, &v);
}

int
meta_blob_row_get(struct txn *t, const char *digest, struct blob_row *r)
{
	struct key k;
	struct dec d;
	MDB_val v;

	meta_key_of(&k, digest, NULL);
	if (!meta_txn_get(t, t->m->blobs, &k, &v))
		return 0;
	meta_dec_init(&d, &v);
	r->size = meta_dec_u64(&d);
	r->created = meta_dec_u64(&d);
	r->touched = meta_dec_u64(&d);
	r->refcount = meta_dec_u64(&d);
	r->gc_due = meta_dec_u64(&d);
	if (d.err) {
		meta_txn_fail(t, d.err);
		return 0;
	}
	return 1;
}

void
meta_blob_row_put(struct txn *t, const char *digest, const struct blob_row *r)
{
	struct key k;
	struct enc e;

	meta_key_of(&k, digest, NULL);
	meta_enc_init(&e);
	meta_enc_u64(&e, r->size);
	meta_enc_u64(&e, r->created);
	meta_enc_u64(&e, r->touched);
	meta_enc_u64(&e, r->refcount);
	meta_enc_u64(&e, r->gc_due);
	meta_txn_put_enc(t, t->m->blobs, &k, &e);
	meta_enc_free(&e);
}

int
meta_manifest_row_get(struct txn *t, const char *repo, const char *digest,
                      struct manifest_row *r)
{
	struct key k;
	struct dec d;
	MDB_val v;

	meta_key_of(&k, repo, digest, NULL);
	if (!meta_txn_get(t, t->m->manifests, &k, &v))
		return 0;
	meta_dec_init(&d, &v);
	r->size = meta_dec_u64(&d);
	r->created = meta_dec_u64(&d);
	r->refcount = meta_dec_u64(&d);
	r->gc_due = meta_dec_u64(&d);
	meta_dec_str(&d, r->media_type, sizeof(r->media_type));
	meta_dec_str(&d, r->subject, sizeof(r->subject));
	meta_dec_str(&d, r->artifact_type, sizeof(r->artifact_type));
	r->touched = d.off < d.len ? meta_dec_u64(&d) : r->created;
	r->pulled = d.off < d.len ? meta_dec_u64(&d) : 0;
	if (d.err) {
		meta_txn_fail(t, d.err);
		return 0;
	}
	return 1;
}

void
meta_manifest_row_put(struct txn *t, const char *repo, const char *digest,
                      const struct manifest_row *r)
{
	struct key k;
	struct enc e;

	meta_key_of(&k, repo, digest, NULL);
	meta_enc_init(&e);
	meta_enc_u64(&e, r->size);
	meta_enc_u64(&e, r->created);
	meta_enc_u64(&e, r->refcount);
	meta_enc_u64(&e, r->gc_due);
	meta_enc_str(&e, r->media_type);
	meta_enc_str(&e, r->subject);
	meta_enc_str(&e, r->artifact_type);
	meta_enc_u64(&e, r->touched);
	meta_enc_u64(&e, r->pulled);
	meta_txn_put_enc(t, t->m->manifests, &k, &e);
	meta_enc_free(&e);
}

void
meta_tag_row_decode(struct txn *t, const MDB_val *v, struct tag_row *r)
{
	struct dec d;

	meta_dec_init(&d, v);
	r->pushed = meta_dec_u64(&d);
	r->last_pulled = meta_dec_u64(&d);
	r->expires = meta_dec_u64(&d);
	meta_dec_str(&d, r->digest, sizeof(r->digest));
	r->source[0] = '\0';
	if (d.off < d.len) /* rows before TTL labels end here */
		meta_dec_str(&d, r->source, sizeof(r->source));
	if (d.err)
		meta_txn_fail(t, d.err);
}

int
meta_tag_row_get(struct txn *t, const char *repo, const char *tag,
                 struct tag_row *r)
{
	struct key k;
	MDB_val v;

	meta_key_of(&k, repo, tag, NULL);
	if (!meta_txn_get(t, t->m->tags, &k, &v))
		return 0;
	meta_tag_row_decode(t, &v, r);
	return t->rc == 0;
}

void
meta_tag_row_put(struct txn *t, const char *repo, const char *tag,
                 const struct tag_row *r)
{
	struct key k;
	struct enc e;

	meta_key_of(&k, repo, tag, NULL);
	meta_enc_init(&e);
	meta_enc_u64(&e, r->pushed);
	meta_enc_u64(&e, r->last_pulled);
	meta_enc_u64(&e, r->expires);
	meta_enc_str(&e, r->digest);
	meta_enc_str(&e, r->source);
	meta_txn_put_enc(t, t->m->tags, &k, &e);
	meta_enc_free(&e);
}

/* ---- refcounts and the gc queue ---- */

uint64_t
meta_due(const struct meta *m, uint64_t now)
{
	if (now > UINT64_MAX - m->grace)
		return UINT64_MAX;
	return now + m->grace;
}

uint64_t
meta_free_after(const struct meta *m, uint64_t last)
{
	return last > UINT64_MAX - m->grace ? UINT64_MAX : last + m->grace;
}

uint64_t
meta_item_last(struct meta *m, enum meta_gc_kind kind, const char *repo,
               const char *digest, uint64_t touched)
{
	uint64_t a = meta_access_last(m, kind, repo, digest);

	return a > touched ? a : touched;
}

static void
gcq_key(struct key *k, uint64_t due, enum meta_gc_kind kind, const char *digest,
        const char *repo)
{
	meta_key_init(k);
	meta_key_u64be(k, due);
	meta_key_sep(k);
	meta_key_byte(k, (unsigned char)kind);
	meta_key_sep(k);
	meta_key_str(k, digest);
	if (kind == META_GC_MANIFEST) {
		meta_key_sep(k);
		meta_key_str(k, repo);
	}
}

void
meta_gcq_add(struct txn *t, enum meta_gc_kind kind, const char *digest,
             const char *repo, uint64_t due)
{
	struct key k;

	gcq_key(&k, due, kind, digest, repo);
	meta_txn_put(t, t->m->gcq, &k, "", 0);
}

void
meta_gcq_remove(struct txn *t, enum meta_gc_kind kind, const char *digest,
                const char *repo, uint64_t due)
{
	struct key k;

	gcq_key(&k, due, kind, digest, repo);
	meta_txn_del(t, t->m->gcq, &k);
}

/* Applies delta to *count and keeps *gc_due and the queue in step. */
static void
count_apply(struct txn *t, enum meta_gc_kind kind, const char *digest,
            const char *repo, uint64_t *count, uint64_t *gc_due,
            uint64_t touched, int delta, uint64_t now)
{
	if (delta < 0) {
		uint64_t d = (uint64_t)(-(int64_t)delta);

		*count = *count > d ? *count - d : 0;
	} else {
		*count += (uint64_t)delta;
	}
	if (*count == 0 && *gc_due == 0) {
		/* Due when the grace since its last access is over: an image
		 * nobody read for the grace period goes in the run that takes
		 * its manifest, one read within it keeps it. */
		*gc_due =
		        meta_free_after(t->m, meta_item_last(t->m, kind, repo,
		                                             digest, touched));
		meta_gcq_add(t, kind, digest, repo, *gc_due);
	} else if (*count > 0 && *gc_due != 0) {
		meta_gcq_remove(t, kind, digest, repo, *gc_due);
		*gc_due = 0;
	}
}

void
meta_blob_ref_add(struct txn *t, const char *digest, int delta, uint64_t now)
{
	struct blob_row r;

	if (!meta_blob_row_get(t, digest, &r)) {
		if (delta > 0)
			meta_txn_fail(t, RC_CORRUPT);
		return;
	}
	count_apply(t, META_GC_BLOB, digest, NULL, &r.refcount, &r.gc_due,
	            r.touched, delta, now);
	meta_blob_row_put(t, digest, &r);
}

void
meta_manifest_ref_add(struct txn *t, const char *repo, const char *digest,
                      int delta, uint64_t now)
{
	struct manifest_row r;

	if (!meta_manifest_row_get(t, repo, digest, &r)) {
		if (delta > 0)
			meta_txn_fail(t, RC_CORRUPT);
		return;
	}
	count_apply(t, META_GC_MANIFEST, digest, repo, &r.refcount, &r.gc_due,
	            r.touched, delta, now);
	meta_manifest_row_put(t, repo, digest, &r);
}

/* Moves *gc_due to now + grace when queued; returns 1 when it changed. */
static int
due_push(struct txn *t, enum meta_gc_kind kind, const char *digest,
         const char *repo, uint64_t *gc_due, uint64_t now)
{
	uint64_t due = meta_due(t->m, now);

	if (*gc_due == 0 || due <= *gc_due)
		return 0;
	meta_gcq_remove(t, kind, digest, repo, *gc_due);
	meta_gcq_add(t, kind, digest, repo, due);
	*gc_due = due;
	return 1;
}

void
meta_blob_row_touch(struct txn *t, const char *digest, struct blob_row *r,
                    uint64_t now)
{
	if (due_push(t, META_GC_BLOB, digest, NULL, &r->gc_due, now))
		meta_blob_row_put(t, digest, r);
}

void
meta_manifest_row_touch(struct txn *t, const char *repo, const char *digest,
                        struct manifest_row *r, uint64_t now)
{
	if (due_push(t, META_GC_MANIFEST, digest, repo, &r->gc_due, now))
		meta_manifest_row_put(t, repo, digest, r);
}
