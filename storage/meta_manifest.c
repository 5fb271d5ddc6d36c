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
		txn_fail(t, RC_CORRUPT);
		out[0] = '\0';
		return;
	}
	n = k->mv_size - plen;
	memcpy(out, (const char *)k->mv_data + plen, n);
	out[n] = '\0';
	if (memchr(out, 0, n) != NULL)
		txn_fail(t, RC_CORRUPT);
}

static int
fail_child(struct txn *t, int rc, const char *digest, char *missing)
{
	if (t->rc == 0 && missing != NULL)
		copy_str(missing, DIGEST_BUF, digest);
	return txn_fail(t, rc);
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
			if (!manifest_row_get(t, repo, c->digest, &mr))
				return fail_child(t, RC_MANIFEST_BLOB_UNKNOWN,
				                  c->digest, missing);
			stored = mr.size;
		} else {
			if (!link_exists(t, repo, c->digest) ||
			    !blob_row_get(t, c->digest, &br))
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

	key_of(&k, digest, NULL);
	if (txn_get(t, t->m->bodyrefs, &k, &v)) {
		dec_init(&d, &v);
		n = dec_u64(&d);
		if (d.err)
			txn_fail(t, d.err);
	}
	if (delta < 0)
		n = n > 0 ? n - 1 : 0;
	else
		n++;
	if (n == 0) {
		txn_del(t, t->m->bodyrefs, &k);
		return 0;
	}
	enc_init(&e);
	enc_u64(&e, n);
	txn_put_enc(t, t->m->bodyrefs, &k, &e);
	enc_free(&e);
	return n;
}

static void
referrer_put(struct txn *t, const struct meta_manifest_put *p)
{
	const struct manifest_info *mi = p->info;
	struct key k;
	struct enc e;

	key_of(&k, p->repo, mi->subject, p->digest, NULL);
	enc_init(&e);
	enc_u64(&e, p->body_len);
	enc_str(&e, mi->media_type);
	enc_str(&e, mi->artifact_type);
	enc_str(&e, mi->annotations_json);
	txn_put_enc(t, t->m->referrers, &k, &e);
	enc_free(&e);
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

	key_of(&prefix, repo, digest, "", NULL);
	scan_open(t, &s, t->m->referrers, &prefix, NULL);
	while (scan_next(&s)) {
		key_tail(t, &s.k, prefix.len, ref);
		manifest_ref_add(t, repo, ref, delta, now);
	}
	scan_close(&s);
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
	copy_str(r.media_type, sizeof(r.media_type), mi->media_type);
	copy_str(r.subject, sizeof(r.subject), mi->subject);
	copy_str(r.artifact_type, sizeof(r.artifact_type), mi->artifact_type);
	if (r.subject[0] != '\0' &&
	    manifest_row_get(t, p->repo, r.subject, &sr))
		r.refcount = 1;
	manifest_row_put(t, p->repo, p->digest, &r);

	key_of(&k, p->digest, NULL);
	if (!txn_get(t, t->m->bodies, &k, &v))
		txn_put(t, t->m->bodies, &k, p->body, p->body_len);
	bodyref_add(t, p->digest, 1);

	for (size_t i = 0; i < mi->n_children && t->rc == 0; i++) {
		const struct manifest_child *c = &mi->children[i];
		unsigned char kind;

		if (child_repeated(mi, i))
			continue;
		kind = c->is_manifest ? CHILD_MANIFEST : CHILD_BLOB;
		key_of(&k, p->digest, c->digest, NULL);
		enc_init(&e);
		enc_bytes(&e, &kind, 1);
		enc_u64(&e, (uint64_t)c->size);
		txn_put_enc(t, t->m->children, &k, &e);
		enc_free(&e);
		if (c->is_manifest)
			manifest_ref_add(t, p->repo, c->digest, 1, now);
		else
			blob_ref_add(t, c->digest, 1, now);
	}
	if (r.subject[0] != '\0')
		referrer_put(t, p);
	referrers_ref_add(t, p->repo, p->digest, 1, now);
}

/* Points tag at digest, moving one count from the old target. */
static void
tag_move(struct txn *t, const char *repo, const char *tag, const char *digest,
         uint64_t now)
{
	struct tag_row tr;
	int had = tag_row_get(t, repo, tag, &tr);

	if (t->rc != 0)
		return;
	if (had && strcmp(tr.digest, digest) == 0) {
		tr.pushed = now;
		tag_row_put(t, repo, tag, &tr);
		return;
	}
	if (had)
		manifest_ref_add(t, repo, tr.digest, -1, now);
	memset(&tr, 0, sizeof(tr));
	tr.pushed = now;
	copy_str(tr.digest, sizeof(tr.digest), digest);
	tag_row_put(t, repo, tag, &tr);
	manifest_ref_add(t, repo, digest, 1, now);
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
	if (txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (check_children(&t, p->repo, p->info, missing) != 0)
		return txn_commit(&t);
	existed = manifest_row_get(&t, p->repo, p->digest, &r);
	if (!existed)
		manifest_insert(&t, p, now);
	if (p->tag != NULL)
		tag_move(&t, p->repo, p->tag, p->digest, now);
	/* Pushed by digest and referenced by nothing: collectable. */
	if (!existed && manifest_row_get(&t, p->repo, p->digest, &r) &&
	    r.refcount == 0 && r.gc_due == 0) {
		r.gc_due = meta_due(m, now);
		gcq_add(&t, META_GC_MANIFEST, p->digest, p->repo, r.gc_due);
		manifest_row_put(&t, p->repo, p->digest, &r);
	}
	return txn_commit(&t);
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
	if (txn_begin(m, &t, 0) != 0)
		return t.rc;
	if (strchr(ref, ':') == NULL) {
		if (!tag_row_get(&t, repo, ref, &tr))
			goto unknown;
		digest = tr.digest;
	}
	if (strlen(digest) >= sizeof(res.digest) ||
	    !manifest_row_get(&t, repo, digest, &r))
		goto unknown;
	copy_str(res.digest, sizeof(res.digest), digest);
	copy_str(res.media_type, sizeof(res.media_type), r.media_type);
	res.size = r.size;
	res.queued = r.gc_due != 0;
	if (want_body) {
		key_of(&k, digest, NULL);
		if (!txn_get(&t, m->bodies, &k, &v)) {
			txn_fail(&t, RC_CORRUPT);
		} else {
			res.body = malloc(v.mv_size > 0 ? v.mv_size : 1);
			if (res.body == NULL)
				txn_fail(&t, -ENOMEM);
			else
				memcpy(res.body, v.mv_data, v.mv_size);
		}
	}
	if (txn_end(&t) != 0) {
		free(res.body);
		return t.rc;
	}
	*out = res;
	return 0;
unknown:
	txn_fail(&t, RC_MANIFEST_UNKNOWN);
	return txn_end(&t);
}

int
meta_touch_manifest(struct meta *m, const char *repo, const char *digest,
                    uint64_t now)
{
	struct manifest_row r;
	struct txn t;

	if (txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (!manifest_row_get(&t, repo, digest, &r)) {
		txn_fail(&t, RC_MANIFEST_UNKNOWN);
		return txn_end(&t);
	}
	if (r.gc_due == 0)
		return txn_end(&t); /* nothing to move: no write */
	manifest_row_touch(&t, repo, digest, &r, now);
	return txn_commit(&t);
}

/* Removes every tag of repo that points at digest. */
static void
tags_drop(struct txn *t, const char *repo, const char *digest)
{
	struct key prefix;
	struct scan s;
	struct tag_row tr;

	key_of(&prefix, repo, "", NULL);
	scan_open(t, &s, t->m->tags, &prefix, NULL);
	while (scan_next(&s)) {
		tag_row_decode(t, &s.v, &tr);
		if (t->rc == 0 && strcmp(tr.digest, digest) == 0)
			scan_del(&s);
	}
	scan_close(&s);
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

	key_of(&prefix, digest, "", NULL);
	scan_open(t, &s, t->m->children, &prefix, NULL);
	while (scan_next(&s)) {
		if (s.v.mv_size < 1) {
			txn_fail(t, RC_CORRUPT);
			break;
		}
		is_manifest = *(const char *)s.v.mv_data == CHILD_MANIFEST;
		key_tail(t, &s.k, prefix.len, child);
		if (drop)
			scan_del(&s);
		if (is_manifest)
			manifest_ref_add(t, repo, child, -1, now);
		else
			blob_ref_add(t, child, -1, now);
	}
	scan_close(&s);
}

int
meta_manifest_delete(struct meta *m, const char *repo, const char *digest,
                     uint64_t now)
{
	struct manifest_row r;
	struct txn t;
	struct key k;
	int last;

	if (txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (!manifest_row_get(&t, repo, digest, &r)) {
		txn_fail(&t, RC_MANIFEST_UNKNOWN);
		return txn_commit(&t);
	}
	tags_drop(&t, repo, digest);
	key_of(&k, repo, digest, NULL);
	txn_del(&t, m->manifests, &k);
	if (r.gc_due != 0)
		gcq_remove(&t, META_GC_MANIFEST, digest, repo, r.gc_due);
	if (r.subject[0] != '\0') {
		key_of(&k, repo, r.subject, digest, NULL);
		txn_del(&t, m->referrers, &k);
	}
	last = bodyref_add(&t, digest, -1) == 0;
	children_release(&t, repo, digest, last, now);
	referrers_ref_add(&t, repo, digest, -1, now);
	if (last) {
		key_of(&k, digest, NULL);
		txn_del(&t, m->bodies, &k);
	}
	return txn_commit(&t);
}

int
meta_tag_delete(struct meta *m, const char *repo, const char *tag, uint64_t now)
{
	struct tag_row tr;
	struct txn t;
	struct key k;

	if (txn_begin(m, &t, 1) != 0)
		return t.rc;
	if (!tag_row_get(&t, repo, tag, &tr)) {
		txn_fail(&t, RC_MANIFEST_UNKNOWN);
		return txn_commit(&t);
	}
	key_of(&k, repo, tag, NULL);
	txn_del(&t, m->tags, &k);
	manifest_ref_add(&t, repo, tr.digest, -1, now);
	return txn_commit(&t);
}

int
meta_manifest_refcount(struct meta *m, const char *repo, const char *digest,
                       uint64_t *refcount)
{
	struct manifest_row r;
	struct txn t;

	if (txn_begin(m, &t, 0) != 0)
		return t.rc;
	if (!manifest_row_get(&t, repo, digest, &r))
		txn_fail(&t, RC_MANIFEST_UNKNOWN);
	if (txn_end(&t) != 0)
		return t.rc;
	*refcount = r.refcount;
	return 0;
}
