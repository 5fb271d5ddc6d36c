/* Manifests, tags, bodies, children and referrers rows, and the manifest
 * reference counts that tie them together. */
#include "storage/meta_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/rc.h"

#define CHILD_BLOB     'b'
#define CHILD_MANIFEST 'm'

static void
copy_str(char *dst, size_t dstsz, const char *src)
{
	size_t n = src != NULL ? strnlen(src, dstsz - 1) : 0;

	memcpy(dst, src != NULL ? src : "", n);
	dst[n] = '\0';
}

/* Copies the key's tail after a prefix of plen bytes into out (a digest);
 * RC_CORRUPT when it does not fit. */
static void
key_tail(struct txn *t, const MDB_val *k, size_t plen, char out[DIGEST_BUF])
{
	size_t n;

	if (k->mv_size <= plen || k->mv_size - plen >= DIGEST_BUF) {
		meta_txn_fail(t, RC_CORRUPT);
		out[0] = '\0';
		return;
	}
	n = k->mv_size - plen;
	memcpy(out, (const char *)k->mv_data + plen, n);
	out[n] = '\0';
	if (memchr(out, 0, n) != NULL)
		meta_txn_fail(t, RC_CORRUPT);
}

static int
fail_child(struct txn *t, int rc, const char *digest, char *missing)
{
	if (t->rc == 0 && missing != NULL)
		copy_str(missing, DIGEST_BUF, digest);
	return meta_txn_fail(t, rc);
}

/* Every blob child must be linked in repo and every manifest child must
 * exist in repo, with the size its descriptor claims. */
static int
check_children(struct txn *t, const char *repo, const struct manifest_info *mi,
               char *missing)
{
	for (size_t i = 0; i < mi->n_children && t->rc == 0; i++) {
		const struct manifest_child *c = &mi->children[i];
		struct manifest_row mr;
		struct blob_row br;
		uint64_t stored;

		if (c->is_manifest) {
			if (!meta_manifest_row_get(t, repo, c->digest, &mr))
				return fail_child(t, RC_MANIFEST_BLOB_UNKNOWN,
				                  c->digest, missing);
			stored = mr.size;
		} else {
			if (!meta_link_exists(t, repo, c->digest) ||
			    !meta_blob_row_get(t, c->digest, &br))
				return fail_child(t, RC_MANIFEST_BLOB_UNKNOWN,
				                  c->digest, missing);
			stored = br.size;
		}
		if (c->size < 0 || (uint64_t)c->size != stored)
			return fail_child(t, RC_MANIFEST_INVALID, c->digest,
			                  missing);
	}
	return t->rc;
}

/* 1 when an earlier child has the same digest (each counts once). */
static int
child_repeated(const struct manifest_info *mi, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (strcmp(mi->children[j].digest, mi->children[i].digest) == 0)
			return 1;
	return 0;
}

/* Adds delta to the number of repositories holding body digest; returns the
 * new number. */
static uint64_t
bodyref_add(struct txn *t, const char *digest, int delta)
{
	struct key k;
	struct enc e;
	struct dec d;
	MDB_val v;
	uint64_t n = 0;

	meta_key_of(&k, digest, NULL);
	if (meta_txn_get(t, t->m->bodyrefs, &k, &v)) {
		meta_dec_init(&d, &v);
		n = meta_dec_u64(&d);
		if (d.err)
			meta_txn_fail(t, d.err);
	}
	if (delta < 0)
		n = n > 0 ? n - 1 : 0;
	else
		n++;
	if (n == 0) {
		meta_txn_del(t, t->m->bodyrefs, &k);
		return 0;
	}
	meta_enc_init(&e);
	meta_enc_u64(&e, n);
	meta_txn_put_enc(t, t->m->bodyrefs, &k, &e);
	meta_enc_free(&e);
	return n;
}

static void
referrer_put(struct txn *t, const struct meta_manifest_put *p)
{
	const struct manifest_info *mi = p->info;
	struct key k;
	struct enc e;

	meta_key_of(&k, p->repo, mi->subject, p->digest, NULL);
	meta_enc_init(&e);
	meta_enc_u64(&e, p->body_len);
	meta_enc_str(&e, mi->media_type);
	meta_enc_str(&e, mi->artifact_type);
	meta_enc_str(&e, mi->annotations_json);
	meta_txn_put_enc(t, t->m->referrers, &k, &e);
	meta_enc_free(&e);
}

/* Adds delta to the count of every manifest of repo whose subject is
 * digest. */
static void
referrers_ref_add(struct txn *t, const char *repo, const char *digest,
                  int delta, uint64_t now)
{
	struct key prefix;
	struct scan s;
	char ref[DIGEST_BUF];

	meta_key_of(&prefix, repo, digest, "", NULL);
	meta_scan_open(t, &s, t->m->referrers, &prefix, NULL);
	while (meta_scan_next(&s)) {
		key_tail(t, &s.k, prefix.len, ref);
		meta_manifest_ref_add(t, repo, ref, delta, now);
	}
	meta_scan_close(&s);
}

/* Stores a manifest new to repo: row, body, children, referrers entry and
 * the counts it gives and receives. */
static void
manifest_insert(struct txn *t, const struct meta_manifest_put *p, uint64_t now)
{
	const struct manifest_info *mi = p->info;
	struct manifest_row r, sr;
	struct key k;
	struct enc e;
	MDB_val v;

	memset(&r, 0, sizeof(r));
	r.size = p->body_len;
	r.created = now;
	r.touched = now;
	copy_str(r.media_type, sizeof(r.media_type), mi->media_type);
	copy_str(r.subject, sizeof(r.subject), mi->subject);
	copy_str(r.artifact_type, sizeof(r.artifact_type), mi->artifact_type);
	if (r.subject[0] != '\0' &&
	    meta_manifest_row_get(t, p->repo, r.subject, &sr))
		r.refcount = 1;
	meta_manifest_row_put(t, p->repo, p->digest, &r);

	meta_key_of(&k, p->digest, NULL);
	if (!meta_txn_get(t, t->m->bodies, &k, &v))
		meta_txn_put(t, t->m->bodies, &k, p->body, p->body_len);
	bodyref_add(t, p->digest, 1);

	for (size_t i = 0; i < mi->n_children && t->rc == 0; i++) {
		const struct manifest_child *c = &mi->children[i];
		unsigned char kind;

		if (child_repeated(mi, i))
			continue;
		kind = c->is_manifest ? CHILD_MANIFEST : CHILD_BLOB;
		meta_key_of(&k, p->digest, c->digest, NULL);
		meta_enc_init(&e);
		meta_enc_bytes(&e, &kind, 1);
		meta_enc_u64(&e, (uint64_t)c->size);
		meta_txn_put_enc(t, t->m->children, &k, &e);
		meta_enc_free(&e);
		if (c->is_manifest)
			meta_manifest_ref_add(t, p->repo, c->digest, 1, now);
		else
			meta_blob_ref_add(t, c->digest, 1, now);
	}
	if (r.subject[0] != '\0')
		referrer_put(t, p);
	referrers_ref_add(t, p->repo, p->digest, 1, now);
}

/* Sets the expiry a push gives a tag: now + ttl, or none. */
static void
tag_ttl(struct tag_row *tr, const struct meta_manifest_put *p, uint64_t now)
{
	tr->expires = 0;
	tr->source[0] = '\0';
	if (p->ttl == 0)
		return;
	tr->expires = now > UINT64_MAX - p->ttl ? UINT64_MAX : now + p->ttl;
	copy_str(tr->source, sizeof(tr->source), p->ttl_source);
}

/* Points the tag at the pushed digest, moving one count from the old
 * target; the push resets its expiry. */
static void
tag_move(struct txn *t, const struct meta_manifest_put *p, uint64_t now)
{
	struct tag_row tr;
	int had = meta_tag_row_get(t, p->repo, p->tag, &tr);

	if (t->rc != 0)
		return;
	if (had && strcmp(tr.digest, p->digest) == 0) {
		tr.pushed = now;
		tag_ttl(&tr, p, now);
		meta_tag_row_put(t, p->repo, p->tag, &tr);
		return;
	}
	if (had)
		meta_manifest_ref_add(t, p->repo, tr.digest, -1, now);
	memset(&tr, 0, sizeof(tr));
	tr.pushed = now;
	tag_ttl(&tr, p, now);
	copy_str(tr.digest, sizeof(tr.digest), p->digest);
	meta_tag_row_put(t, p->repo, p->tag, &tr);
	meta_manifest_ref_add(t, p->repo, p->digest, 1, now);
}

int
meta_manifest_put(struct meta *m, const struct meta_manifest_put *p,
                  uint64_t now, char missing[DIGEST_BUF])
{
	struct manifest_row r;
	struct txn t;
	int existed;

	if (p->info == NULL || strlen(p->digest) >= DIGEST_BUF)
		return RC_MANIFEST_INVALID;
	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (meta_reserve_guard(&t) != 0)
		return meta_txn_commit(&t);
	if (check_children(&t, p->repo, p->info, missing) != 0)
		return meta_txn_commit(&t);
	existed = meta_manifest_row_get(&t, p->repo, p->digest, &r);
	if (!existed) {
		manifest_insert(&t, p, now);
	} else if (t.rc == 0) { /* a push is an access */
		r.touched = now;
		meta_manifest_row_touch(&t, p->repo, p->digest, &r, now);
		meta_manifest_row_put(&t, p->repo, p->digest, &r);
	}
	if (p->tag != NULL)
		tag_move(&t, p, now);
	/* Pushed by digest and referenced by nothing: collectable. */
	if (!existed && meta_manifest_row_get(&t, p->repo, p->digest, &r) &&
	    r.refcount == 0 && r.gc_due == 0) {
		r.gc_due = meta_due(m, now);
		meta_gcq_add(&t, META_GC_MANIFEST, p->digest, p->repo,
		             r.gc_due);
		meta_manifest_row_put(&t, p->repo, p->digest, &r);
	}
	return meta_txn_commit(&t);
}

int
meta_manifest_get(struct meta *m, const char *repo, const char *ref,
                  int want_body, struct meta_manifest *out)
{
	struct meta_manifest res;
	struct manifest_row r;
	struct tag_row tr;
	struct txn t;
	struct key k;
	MDB_val v;
	const char *digest = ref;

	memset(&res, 0, sizeof(res));
	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	if (strchr(ref, ':') == NULL) {
		if (!meta_tag_row_get(&t, repo, ref, &tr))
			goto unknown;
		digest = tr.digest;
	}
	if (strlen(digest) >= sizeof(res.digest) ||
	    !meta_manifest_row_get(&t, repo, digest, &r))
		goto unknown;
	copy_str(res.digest, sizeof(res.digest), digest);
	copy_str(res.media_type, sizeof(res.media_type), r.media_type);
	res.size = r.size;
	res.queued = r.gc_due != 0;
	if (want_body) {
		meta_key_of(&k, digest, NULL);
		if (!meta_txn_get(&t, m->bodies, &k, &v)) {
			meta_txn_fail(&t, RC_CORRUPT);
		} else {
			res.body = malloc(v.mv_size > 0 ? v.mv_size : 1);
			if (res.body == NULL)
				meta_txn_fail(&t, -ENOMEM);
			else
				memcpy(res.body, v.mv_data, v.mv_size);
		}
	}
	if (meta_txn_end(&t) != 0) {
		free(res.body);
		return t.rc;
	}
	*out = res;
	return 0;
unknown:
	meta_txn_fail(&t, RC_MANIFEST_UNKNOWN);
	return meta_txn_end(&t);
}

int
meta_touch_manifest(struct meta *m, const char *repo, const char *digest,
                    uint64_t now)
{
	struct manifest_row r;
	struct txn t;

	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (!meta_manifest_row_get(&t, repo, digest, &r)) {
		meta_txn_fail(&t, RC_MANIFEST_UNKNOWN);
		return meta_txn_end(&t);
	}
	if (r.gc_due == 0)
		return meta_txn_end(&t); /* nothing to move: no write */
	meta_manifest_row_touch(&t, repo, digest, &r, now);
	return meta_txn_commit(&t);
}

/* Removes every tag of repo that points at digest. */
static void
tags_drop(struct txn *t, const char *repo, const char *digest)
{
	struct key prefix;
	struct scan s;
	struct tag_row tr;

	meta_key_of(&prefix, repo, "", NULL);
	meta_scan_open(t, &s, t->m->tags, &prefix, NULL);
	while (meta_scan_next(&s)) {
		meta_tag_row_decode(t, &s.v, &tr);
		if (t->rc == 0 && strcmp(tr.digest, digest) == 0)
			meta_scan_del(&s);
	}
	meta_scan_close(&s);
}

/* Takes back the counts a manifest of repo gave its children; removes the
 * children rows too when drop is set (no repo holds the manifest). */
static void
children_release(struct txn *t, const char *repo, const char *digest, int drop,
                 uint64_t now)
{
	struct key prefix;
	struct scan s;
	char child[DIGEST_BUF];
	int is_manifest;

	meta_key_of(&prefix, digest, "", NULL);
	meta_scan_open(t, &s, t->m->children, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (s.v.mv_size < 1) {
			meta_txn_fail(t, RC_CORRUPT);
			break;
		}
		is_manifest = *(const char *)s.v.mv_data == CHILD_MANIFEST;
		key_tail(t, &s.k, prefix.len, child);
		if (drop)
			meta_scan_del(&s);
		if (is_manifest)
			meta_manifest_ref_add(t, repo, child, -1, now);
		else
			meta_blob_ref_add(t, child, -1, now);
	}
	meta_scan_close(&s);
}

int
meta_manifest_delete(struct meta *m, const char *repo, const char *digest,
                     uint64_t now)
{
	struct manifest_row r;
	struct txn t;

	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (!meta_manifest_row_get(&t, repo, digest, &r)) {
		meta_txn_fail(&t, RC_MANIFEST_UNKNOWN);
		return meta_txn_commit(&t);
	}
	tags_drop(&t, repo, digest);
	meta_manifest_remove(&t, repo, digest, &r, now);
	return meta_txn_commit(&t);
}

void
meta_manifest_remove(struct txn *t, const char *repo, const char *digest,
                     const struct manifest_row *r, uint64_t now)
{
	struct key k;
	int last;

	meta_key_of(&k, repo, digest, NULL);
	meta_txn_del(t, t->m->manifests, &k);
	if (r->gc_due != 0)
		meta_gcq_remove(t, META_GC_MANIFEST, digest, repo, r->gc_due);
	if (r->subject[0] != '\0') {
		meta_key_of(&k, repo, r->subject, digest, NULL);
		meta_txn_del(t, t->m->referrers, &k);
	}
	last = bodyref_add(t, digest, -1) == 0;
	children_release(t, repo, digest, last, now);
	referrers_ref_add(t, repo, digest, -1, now);
	if (last) {
		meta_key_of(&k, digest, NULL);
		meta_txn_del(t, t->m->bodies, &k);
	}
}

int
meta_tag_delete(struct meta *m, const char *repo, const char *tag, uint64_t now)
{
	struct tag_row tr;
	struct txn t;
	struct key k;

	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (!meta_tag_row_get(&t, repo, tag, &tr)) {
		meta_txn_fail(&t, RC_MANIFEST_UNKNOWN);
		return meta_txn_commit(&t);
	}
	meta_key_of(&k, repo, tag, NULL);
	meta_txn_del(&t, m->tags, &k);
	meta_manifest_ref_add(&t, repo, tr.digest, -1, now);
	return meta_txn_commit(&t);
}

int
meta_manifest_refcount(struct meta *m, const char *repo, const char *digest,
                       uint64_t *refcount)
{
	struct manifest_row r;
	struct txn t;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	if (!meta_manifest_row_get(&t, repo, digest, &r))
		meta_txn_fail(&t, RC_MANIFEST_UNKNOWN);
	if (meta_txn_end(&t) != 0)
		return t.rc;
	*refcount = r.refcount;
	return 0;
}
