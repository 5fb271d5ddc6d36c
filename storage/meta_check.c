/* `berth check`, index side: every invariant of the metadata index
 * verified from scratch in one transaction, and the repair of what can be
 * repaired in one write transaction (see meta.h; applied in
 * meta_check_repair.c).
 *
 * The counts are recomputed into a hash table of items (blobs, manifests
 * of a repository, manifest bodies) filled by a walk of every database;
 * the walks never write, so the repair collects its fixes while walking
 * and applies them once every walk is done. */
#include "storage/meta_check_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rc.h"

/* The kind byte of a children row, as meta_manifest.c writes it. */
#define CHILD_BLOB     'b'
#define CHILD_MANIFEST 'm'

#define REPO_BUF 256
#define NAME_BUF 256

/* ---- items: the table they are recomputed in ---- */

static uint64_t
item_hash(int type, const char *repo, const char *digest)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)type;

	for (const char *p = repo != NULL ? repo : ""; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (const char *p = digest; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h;
}

static int
item_is(const struct item *it, int type, const char *repo, const char *digest)
{
	return it->type == type && strcmp(it->digest, digest) == 0 &&
	       strcmp(it->repo != NULL ? it->repo : "",
	              repo != NULL ? repo : "") == 0;
}

/* The slot of the item, or of the empty slot where it would go. */
static size_t
table_pos(const struct table *tb, int type, const char *repo,
          const char *digest)
{
	size_t i = (size_t)item_hash(type, repo, digest) & (tb->cap - 1);

	while (tb->slot[i] != NULL && !item_is(tb->slot[i], type, repo, digest))
		i = (i + 1) & (tb->cap - 1);
	return i;
}

static struct item *
item_find(const struct table *tb, int type, const char *repo,
          const char *digest)
{
	if (tb->cap == 0)
		return NULL;
	return tb->slot[table_pos(tb, type, repo, digest)];
}

static int
table_grow(struct table *tb)
{
	struct table nt;

	nt.cap = tb->cap ? tb->cap * 2 : 1024;
	nt.n = tb->n;
	nt.slot = calloc(nt.cap, sizeof(*nt.slot));
	if (nt.slot == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < tb->cap; i++) {
		struct item *it = tb->slot[i];

		if (it != NULL)
			nt.slot[table_pos(&nt, it->type, it->repo,
			                  it->digest)] = it;
	}
	free(tb->slot);
	*tb = nt;
	return 0;
}

/* The item, added when new. NULL on ENOMEM. */
static struct item *
item_add(struct table *tb, int type, const char *repo, const char *digest)
{
	struct item *it;
	size_t pos;

	if ((tb->n + 1) * 2 > tb->cap && table_grow(tb) != 0)
		return NULL;
	pos = table_pos(tb, type, repo, digest);
	if (tb->slot[pos] != NULL)
		return tb->slot[pos];
	it = calloc(1, sizeof(*it));
	if (it == NULL)
		return NULL;
	it->type = (unsigned char)type;
	snprintf(it->digest, sizeof(it->digest), "%s", digest);
	if (repo != NULL && (it->repo = strdup(repo)) == NULL) {
		free(it);
		return NULL;
	}
	tb->slot[pos] = it;
	tb->n++;
	return it;
}

void
meta_check_table_free(struct table *tb)
{
	for (size_t i = 0; i < tb->cap; i++) {
		if (tb->slot[i] == NULL)
			continue;
		free(tb->slot[i]->repo);
		free(tb->slot[i]->dues);
		free(tb->slot[i]);
	}
	free(tb->slot);
	memset(tb, 0, sizeof(*tb));
}

static int
item_cmp(const void *a, const void *b)
{
	const struct item *x = *(struct item *const *)a;
	const struct item *y = *(struct item *const *)b;
	int c;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	c = strcmp(x->repo != NULL ? x->repo : "",
	           y->repo != NULL ? y->repo : "");
	return c != 0 ? c : strcmp(x->digest, y->digest);
}

/* ---- the state of one check or repair ---- */

static int
fix_add(struct ck *c, const struct meta_check_problem *p)
{
	struct fix *f;

	if (c->nfix == c->capfix) {
		size_t cap = c->capfix ? c->capfix * 2 : 64;
		struct fix *nf = realloc(c->fixes, cap * sizeof(*nf));

		if (nf == NULL)
			return -ENOMEM;
		c->fixes = nf;
		c->capfix = cap;
	}
	f = &c->fixes[c->nfix];
	memset(f, 0, sizeof(*f));
	f->code = p->code;
	f->kind = p->kind;
	f->got = p->got;
	f->want = p->want;
	snprintf(f->digest, sizeof(f->digest), "%s", p->digest);
	f->repo = strdup(p->repo);
	f->name = strdup(p->name);
	if (f->repo == NULL || f->name == NULL) {
		free(f->repo);
		free(f->name);
		return -ENOMEM;
	}
	c->nfix++;
	return 0;
}

/* Whether the repair fixes a problem. */
static int
code_repairable(enum meta_check_code code)
{
	switch (code) {
	case META_CHECK_ROW_CORRUPT:
	case META_CHECK_CHILD_MISSING:
	case META_CHECK_BODY_MISSING:
	case META_CHECK_REFERRER_MISSING: return 0;
	default: return 1;
	}
}

/* Whether a problem is one of an item's own (its count, its gc_due, its
 * queue keys), fixed through item.fix rather than a fix record. */
static int
code_of_item(enum meta_check_code code)
{
	switch (code) {
	case META_CHECK_REFCOUNT:
	case META_CHECK_QUEUED_REFERENCED:
	case META_CHECK_DUE_STALE:
	case META_CHECK_NOT_QUEUED:
	case META_CHECK_QUEUE_DUE: return 1;
	default: return 0;
	}
}

/* Reports a problem: to the check's callback, or (repair) records its fix
 * when it has one. An item's own problems are fixed through item.fix,
 * which the caller sets. */
static void
report(struct ck *c, enum meta_check_code code, enum meta_gc_kind kind,
       const char *repo, const char *digest, const char *name, uint64_t got,
       uint64_t want)
{
	int repairable = code_repairable(code);
	struct meta_check_problem p = {code,
	                               kind,
	                               repo != NULL ? repo : "",
	                               digest,
	                               name != NULL ? name : "",
	                               got,
	                               want,
	                               repairable};

	if (!c->repair) {
		if (c->cb != NULL && c->cb->problem != NULL)
			c->cb->problem(&p, c->cb->arg);
		return;
	}
	if (!repairable)
		return;
	if (!code_of_item(code) && fix_add(c, &p) != 0) {
		meta_txn_fail(c->t, -ENOMEM);
		return;
	}
	c->fixed++;
	if (c->fixed_fn != NULL)
		c->fixed_fn(&p, c->fixed_arg);
}

/* The printable form of a key, for a row that fails to decode. */
static void
key_print(const MDB_val *k, char *out, size_t outsz)
{
	const unsigned char *p = k->mv_data;
	size_t n = 0;

	for (size_t i = 0; i < k->mv_size && n + 1 < outsz; i++) {
		unsigned char ch = p[i];

		out[n++] = ch == 0                 ? '|'
		           : (ch < 32 || ch > 126) ? '?'
		                                   : (char)ch;
	}
	out[n] = '\0';
}

static void
corrupt(struct ck *c, const char *db, const MDB_val *k)
{
	char key[NAME_BUF];

	key_print(k, key, sizeof(key));
	report(c, META_CHECK_ROW_CORRUPT, 0, NULL, key, db, 0, 0);
}

/* Copies a whole key (one string) into out; 0 when it does not fit or
 * holds a NUL. */
static int
key_one(const MDB_val *k, char *out, size_t outsz)
{
	if (k->mv_size == 0 || k->mv_size >= outsz ||
	    memchr(k->mv_data, 0, k->mv_size) != NULL)
		return 0;
	memcpy(out, k->mv_data, k->mv_size);
	out[k->mv_size] = '\0';
	return 1;
}

/* Splits a key a\0b (b may hold further NULs when rest is set); 0 when
 * malformed. */
static int
key_two(const MDB_val *k, char *a, size_t an, char *b, size_t bn)
{
	const char *p = k->mv_data, *nul = memchr(p, 0, k->mv_size);
	size_t la, lb;

	if (nul == NULL)
		return 0;
	la = (size_t)(nul - p);
	lb = k->mv_size - la - 1;
	if (la == 0 || la >= an || lb == 0 || lb >= bn ||
	    memchr(nul + 1, 0, lb) != NULL)
		return 0;
	memcpy(a, p, la);
	a[la] = '\0';
	memcpy(b, nul + 1, lb);
	b[lb] = '\0';
	return 1;
}

static int
key_three(const MDB_val *k, char *a, size_t an, char *b, size_t bn, char *c,
          size_t cn)
{
	const char *p = k->mv_data, *nul = memchr(p, 0, k->mv_size);
	MDB_val rest;
	size_t la;

	if (nul == NULL)
		return 0;
	la = (size_t)(nul - p);
	if (la == 0 || la >= an)
		return 0;
	memcpy(a, p, la);
	a[la] = '\0';
	rest.mv_data = (void *)(nul + 1);
	rest.mv_size = k->mv_size - la - 1;
	return key_two(&rest, b, bn, c, cn);
}

/* A row read through the shared row codecs on a copy of the txn, so that a
 * row failing to decode is reported rather than ending the check. 1: read,
 * 0: absent or corrupt (reported). */
static int
blob_row_read(struct ck *c, const MDB_val *k, const char *digest,
              struct blob_row *r)
{
	struct txn tmp = *c->t;
	int found = meta_blob_row_get(&tmp, digest, r);

	if (tmp.rc == RC_CORRUPT)
		corrupt(c, "blobs", k);
	else if (tmp.rc != 0)
		meta_txn_fail(c->t, tmp.rc);
	return found && tmp.rc == 0;
}

static int
manifest_row_read(struct ck *c, const MDB_val *k, const char *repo,
                  const char *digest, struct manifest_row *r)
{
	struct txn tmp = *c->t;
	int found = meta_manifest_row_get(&tmp, repo, digest, r);

	if (tmp.rc == RC_CORRUPT)
		corrupt(c, "manifests", k);
	else if (tmp.rc != 0)
		meta_txn_fail(c->t, tmp.rc);
	return found && tmp.rc == 0;
}

static int
u64_read(struct ck *c, const char *db, const MDB_val *k, const MDB_val *v,
         uint64_t *out)
{
	struct dec d;

	meta_dec_init(&d, v);
	*out = meta_dec_u64(&d);
	if (d.err) {
		corrupt(c, db, k);
		return 0;
	}
	return 1;
}

static int
has_key(struct ck *c, MDB_dbi dbi, const struct key *k)
{
	MDB_val v;

	return meta_txn_get(c->t, dbi, k, &v);
}

/* Calls a check callback; its non-zero return ends the check. */
static void
cb_result(struct ck *c, int rc)
{
	if (rc != 0)
		meta_txn_fail(c->t, rc);
}

/* ---- the walks ---- */

static void
walk_blobs(struct ck *c)
{
	char digest[DIGEST_BUF];
	struct blob_row r;
	struct key prefix;
	struct scan s;
	struct item *it;

	meta_key_init(&prefix);
	meta_scan_open(c->t, &s, c->t->m->blobs, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (!key_one(&s.k, digest, sizeof(digest))) {
			corrupt(c, "blobs", &s.k);
			continue;
		}
		if (!blob_row_read(c, &s.k, digest, &r))
			continue;
		if ((it = item_add(&c->tb, IT_BLOB, NULL, digest)) == NULL) {
			meta_txn_fail(c->t, -ENOMEM);
			break;
		}
		it->stored = r.refcount;
		it->gc_due = r.gc_due;
		c->st.blobs++;
		c->bytes += r.size;
		if (c->cb != NULL && c->cb->blob != NULL)
			cb_result(c, c->cb->blob(digest, r.size, c->cb->arg));
	}
	meta_scan_close(&s);
}

/* Manifest rows: items, the repositories holding each body, bodies. */
static void
walk_manifests(struct ck *c)
{
	char repo[REPO_BUF], digest[DIGEST_BUF];
	struct manifest_row r;
	struct key prefix, k;
	struct scan s;
	struct item *it, *body;

	meta_key_init(&prefix);
	meta_scan_open(c->t, &s, c->t->m->manifests, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (!key_two(&s.k, repo, sizeof(repo), digest,
		             sizeof(digest))) {
			corrupt(c, "manifests", &s.k);
			continue;
		}
		if (!manifest_row_read(c, &s.k, repo, digest, &r))
			continue;
		it = item_add(&c->tb, IT_MANIFEST, repo, digest);
		body = item_add(&c->tb, IT_BODY, NULL, digest);
		if (it == NULL || body == NULL) {
			meta_txn_fail(c->t, -ENOMEM);
			break;
		}
		it->stored = r.refcount;
		it->gc_due = r.gc_due;
		memcpy(it->subject, r.subject, sizeof(it->subject));
		body->want++;
		c->st.manifests++;
		meta_key_of(&k, digest, NULL);
		if (!has_key(c, c->t->m->bodies, &k))
			report(c, META_CHECK_BODY_MISSING, 0, repo, digest,
			       NULL, 0, 0);
	}
	meta_scan_close(&s);
}

/* The references a manifest row of repo gives: to its children (each
 * children row of its digest) and to itself from its subject. */
static void
count_manifest(struct ck *c, struct item *m)
{
	char child[DIGEST_BUF];
	struct key prefix, k;
	struct scan s;
	struct item *it;

	meta_key_of(&prefix, m->digest, "", NULL);
	meta_scan_open(c->t, &s, c->t->m->children, &prefix, NULL);
	while (meta_scan_next(&s)) {
		MDB_val tail = {s.k.mv_size - prefix.len,
		                (char *)s.k.mv_data + prefix.len};
		char kind = s.v.mv_size >= 1 ? *(const char *)s.v.mv_data : 0;

		if (!key_one(&tail, child, sizeof(child)) ||
		    (kind != CHILD_BLOB && kind != CHILD_MANIFEST)) {
			corrupt(c, "children", &s.k);
			continue;
		}
		if (kind == CHILD_BLOB)
			it = item_find(&c->tb, IT_BLOB, NULL, child);
		else
			it = item_find(&c->tb, IT_MANIFEST, m->repo, child);
		if (it != NULL)
			it->want++;
		else
			report(c, META_CHECK_CHILD_MISSING,
			       kind == CHILD_BLOB ? META_GC_BLOB
			                          : META_GC_MANIFEST,
			       m->repo, m->digest, child, 0, 0);
	}
	meta_scan_close(&s);
	if (m->subject[0] == '\0')
		return;
	if (item_find(&c->tb, IT_MANIFEST, m->repo, m->subject) != NULL)
		m->want++;
	meta_key_of(&k, m->repo, m->subject, m->digest, NULL);
	if (!has_key(c, c->t->m->referrers, &k))
		report(c, META_CHECK_REFERRER_MISSING, 0, m->repo, m->digest,
		       m->subject, 0, 0);
}

/* In key order, so that problems come out sorted. */
static void
walk_references(struct ck *c)
{
	char repo[REPO_BUF], digest[DIGEST_BUF];
	struct key prefix;
	struct scan s;
	struct item *it;

	meta_key_init(&prefix);
	meta_scan_open(c->t, &s, c->t->m->manifests, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (key_two(&s.k, repo, sizeof(repo), digest, sizeof(digest)) &&
		    (it = item_find(&c->tb, IT_MANIFEST, repo, digest)) != NULL)
			count_manifest(c, it);
	}
	meta_scan_close(&s);
}

static void
walk_tags(struct ck *c)
{
	char repo[REPO_BUF], tag[NAME_BUF];
	struct tag_row r;
	struct key prefix;
	struct scan s;
	struct item *it;

	meta_key_init(&prefix);
	meta_scan_open(c->t, &s, c->t->m->tags, &prefix, NULL);
	while (meta_scan_next(&s)) {
		struct txn tmp = *c->t;

		if (!key_two(&s.k, repo, sizeof(repo), tag, sizeof(tag))) {
			corrupt(c, "tags", &s.k);
			continue;
		}
		meta_tag_row_decode(&tmp, &s.v, &r);
		if (tmp.rc != 0) {
			corrupt(c, "tags", &s.k);
			continue;
		}
		c->st.tags++;
		it = item_find(&c->tb, IT_MANIFEST, repo, r.digest);
		if (it != NULL)
			it->want++;
		else
			report(c, META_CHECK_TAG_DANGLING, 0, repo, r.digest,
			       tag, 0, 0);
	}
	meta_scan_close(&s);
}

static void
walk_queue(struct ck *c)
{
	struct meta_gc_item q;
	struct key prefix;
	struct scan s;
	struct item *it;

	meta_key_init(&prefix);
	meta_scan_open(c->t, &s, c->t->m->gcq, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (meta_gcq_decode(&s.k, &q) != 0) {
			corrupt(c, "gcq", &s.k);
			continue;
		}
		c->st.queued++;
		if (q.kind == META_GC_BLOB)
			it = item_find(&c->tb, IT_BLOB, NULL, q.digest);
		else
			it = item_find(&c->tb, IT_MANIFEST, q.repo, q.digest);
		if (it == NULL) {
			report(c, META_CHECK_QUEUE_ORPHAN, q.kind, q.repo,
			       q.digest, NULL, q.due, 0);
			continue;
		}
		if (it->nq == it->capq) {
			size_t cap = it->capq ? it->capq * 2 : 2;
			uint64_t *nd = realloc(it->dues, cap * sizeof(*nd));

			if (nd == NULL) {
				meta_txn_fail(c->t, -ENOMEM);
				break;
			}
			it->dues = nd;
			it->capq = cap;
		}
		it->dues[it->nq++] = q.due;
	}
	meta_scan_close(&s);
}

static void
walk_bodyrefs(struct ck *c)
{
	char digest[DIGEST_BUF];
	struct key prefix;
	struct scan s;
	struct item *it;
	uint64_t n;

	meta_key_init(&prefix);
	meta_scan_open(c->t, &s, c->t->m->bodyrefs, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (!key_one(&s.k, digest, sizeof(digest))) {
			corrupt(c, "bodyrefs", &s.k);
			continue;
		}
		if (!u64_read(c, "bodyrefs", &s.k, &s.v, &n))
			continue;
		it = item_find(&c->tb, IT_BODY, NULL, digest);
		if (it != NULL) {
			it->has_refs = 1;
			it->stored = n;
		} else {
			report(c, META_CHECK_BODYREFS, 0, NULL, digest, NULL, n,
			       0);
		}
	}
	meta_scan_close(&s);
}

static void
walk_bodies(struct ck *c)
{
	char digest[DIGEST_BUF];
	struct key prefix;
	struct scan s;

	meta_key_init(&prefix);
	meta_scan_open(c->t, &s, c->t->m->bodies, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (!key_one(&s.k, digest, sizeof(digest))) {
			corrupt(c, "bodies", &s.k);
			continue;
		}
		if (item_find(&c->tb, IT_BODY, NULL, digest) == NULL)
			report(c, META_CHECK_BODY_ORPHAN, 0, NULL, digest, NULL,
			       0, 0);
	}
	meta_scan_close(&s);
}

static void
walk_children(struct ck *c)
{
	char parent[DIGEST_BUF], child[DIGEST_BUF], last[DIGEST_BUF] = "";
	struct key prefix;
	struct scan s;

	meta_key_init(&prefix);
	meta_scan_open(c->t, &s, c->t->m->children, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (!key_two(&s.k, parent, sizeof(parent), child,
		             sizeof(child))) {
			corrupt(c, "children", &s.k);
			continue;
		}
		/* Keys are sorted: a parent's rows are consecutive. */
		if (strcmp(parent, last) == 0 ||
		    item_find(&c->tb, IT_BODY, NULL, parent) != NULL)
			continue;
		memcpy(last, parent, sizeof(last));
		report(c, META_CHECK_CHILDREN_ORPHAN, 0, NULL, parent, NULL, 0,
		       0);
	}
	meta_scan_close(&s);
}

static void
walk_links(struct ck *c)
{
	char repo[REPO_BUF], digest[DIGEST_BUF];
	struct key prefix, k;
	struct scan s;

	meta_key_init(&prefix);
	meta_scan_open(c->t, &s, c->t->m->links, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (!key_two(&s.k, repo, sizeof(repo), digest,
		             sizeof(digest))) {
			corrupt(c, "links", &s.k);
			continue;
		}
		if (item_find(&c->tb, IT_BLOB, NULL, digest) == NULL) {
			report(c, META_CHECK_LINK_DANGLING, 0, repo, digest,
			       NULL, 0, 0);
			continue;
		}
		meta_key_of(&k, digest, repo, NULL);
		if (!has_key(c, c->t->m->blinks, &k))
			report(c, META_CHECK_LINK_TWIN, 0, repo, digest, NULL,
			       0, 0);
	}
	meta_scan_close(&s);

	meta_scan_open(c->t, &s, c->t->m->blinks, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (!key_two(&s.k, digest, sizeof(digest), repo,
		             sizeof(repo))) {
			corrupt(c, "blinks", &s.k);
			continue;
		}
		meta_key_of(&k, repo, digest, NULL);
		if (!has_key(c, c->t->m->links, &k))
			report(c, META_CHECK_BLINK_TWIN, 0, repo, digest, NULL,
			       0, 0);
	}
	meta_scan_close(&s);
}

static void
walk_referrers(struct ck *c)
{
	char repo[REPO_BUF], subject[DIGEST_BUF], digest[DIGEST_BUF];
	struct key prefix;
	struct scan s;
	struct item *it;

	meta_key_init(&prefix);
	meta_scan_open(c->t, &s, c->t->m->referrers, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (!key_three(&s.k, repo, sizeof(repo), subject,
		               sizeof(subject), digest, sizeof(digest))) {
			corrupt(c, "referrers", &s.k);
			continue;
		}
		it = item_find(&c->tb, IT_MANIFEST, repo, digest);
		if (it == NULL || strcmp(it->subject, subject) != 0)
			report(c, META_CHECK_REFERRER_STALE, 0, repo, digest,
			       subject, 0, 0);
	}
	meta_scan_close(&s);
}

/* Upload session and intents rows, handed to the caller (who compares
 * them with the files). */
static void
walk_uploads_intents(struct ck *c)
{
	char uuid[NAME_BUF], repo[REPO_BUF], digest[DIGEST_BUF];
	struct key prefix;
	struct scan s;
	struct dec d;
	uint64_t started, size;

	meta_key_init(&prefix);
	meta_scan_open(c->t, &s, c->t->m->uploads, &prefix, NULL);
	while (meta_scan_next(&s)) {
		meta_dec_init(&d, &s.v);
		started = meta_dec_u64(&d);
		meta_dec_str(&d, repo, sizeof(repo));
		if (!key_one(&s.k, uuid, sizeof(uuid)) || d.err) {
			corrupt(c, "uploads", &s.k);
			continue;
		}
		c->st.uploads++;
		if (c->cb != NULL && c->cb->upload != NULL)
			cb_result(c, c->cb->upload(uuid, repo, started,
			                           c->cb->arg));
	}
	meta_scan_close(&s);

	meta_scan_open(c->t, &s, c->t->m->intents, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (!key_one(&s.k, digest, sizeof(digest))) {
			corrupt(c, "intents", &s.k);
			continue;
		}
		if (!u64_read(c, "intents", &s.k, &s.v, &size))
			continue;
		c->st.intents++;
		if (c->cb != NULL && c->cb->intent != NULL)
			cb_result(c,
			          c->cb->intent(digest, size,
			                        item_find(&c->tb, IT_BLOB, NULL,
			                                  digest) != NULL,
			                        c->cb->arg));
	}
	meta_scan_close(&s);
}

/* ---- per item: counts and the queue ---- */

int
meta_check_item_queued(const struct item *it, uint64_t due)
{
	for (size_t i = 0; i < it->nq; i++)
		if (it->dues[i] == due)
			return 1;
	return 0;
}

static void
item_eval(struct ck *c, struct item *it)
{
	enum meta_gc_kind kind =
	        it->type == IT_BLOB ? META_GC_BLOB : META_GC_MANIFEST;
	const char *repo = it->repo;
	size_t before = (size_t)c->fixed;

	if (it->type == IT_BODY) {
		if (!it->has_refs || it->stored != it->want)
			report(c, META_CHECK_BODYREFS, 0, NULL, it->digest,
			       NULL, it->has_refs ? it->stored : 0, it->want);
		return;
	}
	if (it->stored != it->want)
		report(c, META_CHECK_REFCOUNT, kind, repo, it->digest, NULL,
		       it->stored, it->want);
	if (it->want > 0) {
		if (it->nq > 0)
			report(c, META_CHECK_QUEUED_REFERENCED, kind, repo,
			       it->digest, NULL, it->dues[0], it->want);
		else if (it->gc_due != 0)
			report(c, META_CHECK_DUE_STALE, kind, repo, it->digest,
			       NULL, it->gc_due, it->want);
	} else if (it->nq == 0) {
		report(c, META_CHECK_NOT_QUEUED, kind, repo, it->digest, NULL,
		       it->gc_due, 0);
	} else {
		for (size_t i = 0; i < it->nq; i++)
			if (it->dues[i] != it->gc_due)
				report(c, META_CHECK_QUEUE_DUE, kind, repo,
				       it->digest, NULL, it->dues[i],
				       it->gc_due);
	}
	if (c->repair && (size_t)c->fixed != before)
		it->fix = 1;
}

/* Evaluates every item in a stable order (blobs, manifests by repository,
 * bodies), so problems come out sorted. */
static void
eval_items(struct ck *c)
{
	struct item **v;
	size_t n = 0;

	if (c->tb.n == 0)
		return;
	v = malloc(c->tb.n * sizeof(*v));
	if (v == NULL) {
		meta_txn_fail(c->t, -ENOMEM);
		return;
	}
	for (size_t i = 0; i < c->tb.cap; i++)
		if (c->tb.slot[i] != NULL)
			v[n++] = c->tb.slot[i];
	qsort(v, n, sizeof(*v), item_cmp);
	for (size_t i = 0; i < n && c->t->rc == 0; i++)
		item_eval(c, v[i]);
	free(v);
}

void
meta_check_analyze(struct ck *c)
{
	walk_blobs(c);
	walk_manifests(c);
	walk_references(c);
	walk_tags(c);
	walk_queue(c);
	walk_bodyrefs(c);
	walk_bodies(c);
	walk_children(c);
	walk_links(c);
	walk_referrers(c);
	walk_uploads_intents(c);
	if (c->t->rc == 0)
		eval_items(c);
	if (c->t->rc == 0 && meta_bytes_get(c->t) != c->bytes)
		report(c, META_CHECK_BLOB_BYTES, 0, NULL, "", NULL,
		       meta_bytes_get(c->t), c->bytes);
}

int
meta_check_run(struct meta *m, const struct meta_check_cb *cb,
               struct meta_check_stats *out)
{
	struct txn t;
	struct ck c;
	int rc;

	memset(&c, 0, sizeof(c));
	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	c.t = &t;
	c.cb = cb;
	meta_check_analyze(&c);
	rc = meta_txn_end(&t);
	meta_check_table_free(&c.tb);
	if (rc == 0 && out != NULL)
		*out = c.st;
	return rc;
}
