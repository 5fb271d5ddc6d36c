/* What retention reads and changes in the index: every tag of a repository
 * with its times and sizes, expiring tags that did not change since they
 * were judged, deleting whole repositories, and the stored pins. gc/
 * decides; these functions only carry the decisions out. */
#include "storage/meta_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/rc.h"

#define CLOSURE_MAX 4096 /* manifests and blobs under one tag */
#define PINS_KEY    "pins"

static void
copy_str(char *dst, size_t dstsz, const char *src, size_t n)
{
	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- the closure of a manifest: sizes and what only it holds ---- */

struct node {
	char digest[DIGEST_BUF];
	int is_blob;
	uint64_t size, refcount;
	int exclusive; /* manifests: held only from inside the closure */
	size_t first_edge, n_edges;
};

struct closure {
	struct node *n;
	size_t len, cap;
	size_t *edge; /* children of node i: edge[first_edge .. +n_edges] */
	size_t n_edge, cap_edge;
	int overflow;
};

static void
closure_free(struct closure *c)
{
	free(c->n);
	free(c->edge);
	memset(c, 0, sizeof(*c));
}

static size_t
closure_find(const struct closure *c, const char *digest, int is_blob)
{
	for (size_t i = 0; i < c->len; i++)
		if (c->n[i].is_blob == is_blob &&
		    strcmp(c->n[i].digest, digest) == 0)
			return i;
	return SIZE_MAX;
}

static size_t
closure_add(struct txn *t, struct closure *c, const char *repo,
            const char *digest, int is_blob)
{
	struct node *nd;
	size_t i = closure_find(c, digest, is_blob);

	if (i != SIZE_MAX)
		return i;
	if (c->len >= CLOSURE_MAX) {
		c->overflow = 1;
		return SIZE_MAX;
	}
	if (c->len == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 16;
		struct node *nn = realloc(c->n, nc * sizeof(*nn));
		if (nn == NULL) {
			meta_txn_fail(t, -ENOMEM);
			return SIZE_MAX;
		}
		c->n = nn;
		c->cap = nc;
	}
	nd = &c->n[c->len];
	memset(nd, 0, sizeof(*nd));
	copy_str(nd->digest, sizeof(nd->digest), digest, strlen(digest));
	nd->is_blob = is_blob;
	if (is_blob) {
		struct blob_row br;
		if (meta_blob_row_get(t, digest, &br)) {
			nd->size = br.size;
			nd->refcount = br.refcount;
		}
	} else {
		struct manifest_row mr;
		if (meta_manifest_row_get(t, repo, digest, &mr)) {
			nd->size = mr.size;
			nd->refcount = mr.refcount;
		}
	}
	return c->len++;
}

static void
edge_add(struct txn *t, struct closure *c, size_t child)
{
	if (c->n_edge == c->cap_edge) {
		size_t nc = c->cap_edge ? c->cap_edge * 2 : 32;
		size_t *ne = realloc(c->edge, nc * sizeof(*ne));
		if (ne == NULL) {
			meta_txn_fail(t, -ENOMEM);
			return;
		}
		c->edge = ne;
		c->cap_edge = nc;
	}
	c->edge[c->n_edge++] = child;
}

/* Walks the manifests and blobs under digest (in repo), breadth first. */
static void
closure_build(struct txn *t, struct closure *c, const char *repo,
              const char *digest)
{
	(void)closure_add(t, c, repo, digest, 0);
	for (size_t i = 0; i < c->len && t->rc == 0 && !c->overflow; i++) {
		struct key prefix;
		struct scan s;
		char child[DIGEST_BUF];

		if (c->n[i].is_blob)
			continue;
		c->n[i].first_edge = c->n_edge;
		meta_key_of(&prefix, c->n[i].digest, "", NULL);
		meta_scan_open(t, &s, t->m->children, &prefix, NULL);
		while (meta_scan_next(&s)) {
			size_t n = s.k.mv_size - prefix.len, j;
			int is_blob;
			if (s.v.mv_size < 1 || n == 0 || n >= DIGEST_BUF) {
				meta_txn_fail(t, RC_CORRUPT);
				break;
			}
			copy_str(child, sizeof(child),
			         (const char *)s.k.mv_data + prefix.len, n);
			is_blob = *(const char *)s.v.mv_data != 'm';
			j = closure_add(t, c, repo, child, is_blob);
			if (j == SIZE_MAX)
				break;
			edge_add(t, c, j);
			c->n[i].n_edges++;
		}
		meta_scan_close(&s);
	}
}

/* How many exclusive manifests of the closure list node j. */
static uint64_t
exclusive_parents(const struct closure *c, size_t j)
{
	uint64_t n = 0;

	for (size_t i = 0; i < c->len; i++) {
		if (c->n[i].is_blob || !c->n[i].exclusive)
			continue;
		for (size_t e = 0; e < c->n[i].n_edges; e++)
			if (c->edge[c->n[i].first_edge + e] == j)
				n++;
	}
	return n;
}

/* size: the manifests and blobs under the top; unique: the bytes of the
 * blob files that go when the top's holders (holders references, e.g. the
 * one tag) go: a manifest is exclusive when every reference it has comes
 * from those holders or from exclusive manifests above it; a blob is freed
 * when every reference it has comes from exclusive manifests. */
static void
closure_sizes(struct closure *c, uint64_t holders, uint64_t *size,
              uint64_t *unique)
{
	int changed = 1;

	*size = 0;
	*unique = 0;
	if (c->len == 0 || c->overflow)
		goto sum;
	c->n[0].exclusive = c->n[0].refcount == holders;
	while (changed) {
		changed = 0;
		for (size_t j = 1; j < c->len; j++) {
			if (c->n[j].is_blob || c->n[j].exclusive)
				continue;
			if (c->n[j].refcount > 0 &&
			    exclusive_parents(c, j) == c->n[j].refcount) {
				c->n[j].exclusive = 1;
				changed = 1;
			}
		}
	}
	for (size_t j = 0; j < c->len; j++)
		if (c->n[j].is_blob && c->n[j].refcount > 0 &&
		    exclusive_parents(c, j) == c->n[j].refcount)
			*unique += c->n[j].size;
sum:
	for (size_t j = 0; j < c->len; j++)
		*size += c->n[j].size;
}

/* ---- every tag of a repository ---- */

struct tags_buf {
	struct meta_tag_info *v;
	size_t n, cap;
};

static struct meta_tag_info *
tags_push(struct txn *t, struct tags_buf *b)
{
	if (b->n == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 64;
		struct meta_tag_info *nv = realloc(b->v, nc * sizeof(*nv));
		if (nv == NULL) {
			meta_txn_fail(t, -ENOMEM);
			return NULL;
		}
		b->v = nv;
		b->cap = nc;
	}
	memset(&b->v[b->n], 0, sizeof(b->v[b->n]));
	return &b->v[b->n++];
}

/* Fills ti from a tag row of repo (and its manifest row). */
static void
tag_info_fill(struct txn *t, const char *repo, const char *tag, size_t taglen,
              const MDB_val *v, int want_sizes, struct meta_tag_info *ti)
{
	struct tag_row tr;
	struct manifest_row mr;

	meta_tag_row_decode(t, v, &tr);
	if (t->rc != 0)
		return;
	copy_str(ti->repo, sizeof(ti->repo), repo, strlen(repo));
	copy_str(ti->tag, sizeof(ti->tag), tag, taglen);
	copy_str(ti->digest, sizeof(ti->digest), tr.digest, strlen(tr.digest));
	copy_str(ti->source, sizeof(ti->source), tr.source, strlen(tr.source));
	ti->pushed = tr.pushed;
	ti->last_pulled = tr.last_pulled;
	ti->expires = tr.expires;
	if (meta_manifest_row_get(t, repo, tr.digest, &mr)) {
		copy_str(ti->media_type, sizeof(ti->media_type), mr.media_type,
		         strlen(mr.media_type));
		if (mr.pulled > ti->last_pulled)
			ti->last_pulled = mr.pulled;
		/* a pull remembered in memory, not flushed yet */
		uint64_t a = meta_access_last(t->m, META_GC_MANIFEST, repo,
		                              tr.digest);
		if (a > ti->last_pulled && a > atomic_load(&t->m->acc_floor))
			ti->last_pulled = a;
	}
	if (want_sizes) {
		struct closure c = {0};
		closure_build(t, &c, repo, tr.digest);
		closure_sizes(&c, 1, &ti->size, &ti->unique);
		closure_free(&c);
	}
}

int
meta_repo_tags_walk(struct meta *m, const char *prefix, const char *from,
                    int want_sizes, meta_repo_tags_fn fn, void *arg)
{
	struct tags_buf b = {0};
	char repo[256] = "";
	struct key seek;
	struct txn t;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rc, stop = 0;

	meta_key_init(&seek);
	if (from != NULL && (prefix == NULL || strcmp(from, prefix) > 0))
		meta_key_str(&seek, from);
	else if (prefix != NULL)
		meta_key_str(&seek, prefix);
	if (seek.bad)
		return RC_BAD_REQUEST;
	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	rc = mdb_cursor_open(t.txn, m->tags, &c);
	if (rc != MDB_SUCCESS) {
		c = NULL;
		meta_txn_fail(&t, meta_rc(rc));
	}
	if (seek.len == 0)
		op = MDB_FIRST;
	k.mv_data = seek.b;
	k.mv_size = seek.len;
	while (t.rc == 0 && !stop) {
		const char *name, *nul;
		size_t rlen;
		struct meta_tag_info *ti;

		rc = mdb_cursor_get(c, &k, &v, op);
		op = MDB_NEXT;
		if (rc == MDB_NOTFOUND)
			break;
		if (rc != MDB_SUCCESS) {
			meta_txn_fail(&t, meta_rc(rc));
			break;
		}
		name = k.mv_data;
		nul = memchr(name, 0, k.mv_size);
		if (nul == NULL || (size_t)(nul - name) >= sizeof(repo)) {
			meta_txn_fail(&t, RC_CORRUPT);
			break;
		}
		rlen = (size_t)(nul - name);
		if (prefix != NULL &&
		    (rlen < strlen(prefix) ||
		     memcmp(name, prefix, strlen(prefix)) != 0))
			break; /* past the prefix */
		if (b.n > 0 &&
		    (strlen(repo) != rlen || memcmp(repo, name, rlen) != 0)) {
			stop = fn(repo, b.v, b.n, arg);
			b.n = 0;
			if (stop)
				break;
		}
		copy_str(repo, sizeof(repo), name, rlen);
		if ((ti = tags_push(&t, &b)) == NULL)
			break;
		tag_info_fill(&t, repo, nul + 1, k.mv_size - rlen - 1, &v,
		              want_sizes, ti);
	}
	if (t.rc == 0 && !stop && b.n > 0)
		(void)fn(repo, b.v, b.n, arg);
	if (c != NULL)
		mdb_cursor_close(c);
	free(b.v);
	return meta_txn_end(&t);
}

void
meta_tags_expire_txn(struct txn *t, struct meta_tag_expire *items, size_t n,
                     uint64_t now)
{
	for (size_t i = 0; i < n && t->rc == 0; i++) {
		struct meta_tag_expire *x = &items[i];
		struct tag_row tr;
		struct key k;

		/* Judged on a row that has changed since (a push moved or
		 * renewed the tag): left alone. */
		x->done = 0;
		if (!meta_tag_row_get(t, x->repo, x->tag, &tr) ||
		    strcmp(tr.digest, x->digest) != 0 || tr.pushed != x->pushed)
			continue;
		meta_key_of(&k, x->repo, x->tag, NULL);
		meta_txn_del(t, t->m->tags, &k);
		meta_manifest_ref_add(t, x->repo, tr.digest, -1, now);
		x->done = 1;
	}
}

int
meta_tags_expire(struct meta *m, struct meta_tag_expire *items, size_t n,
                 uint64_t now)
{
	struct txn t;

	for (size_t i = 0; i < n; i++)
		items[i].done = 0;
	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	meta_tags_expire_txn(&t, items, n, now);
	if (t.rc != 0)
		for (size_t i = 0; i < n; i++)
			items[i].done = 0;
	return meta_txn_commit(&t);
}

/* ---- whole repositories ---- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
meta_repos_list(struct meta *m, const char *prefix, struct meta_list *out)
{
	struct meta_list res = {NULL, 0, 0};
	MDB_dbi dbs[3] = {m->manifests, m->tags, m->links};
	size_t cap = 0, w = 0;
	struct txn t;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	for (int d = 0; d < 3; d++)
		meta_repo_names(&t, dbs[d], prefix, NULL, SIZE_MAX, &res, &cap);
	if (meta_txn_end(&t) != 0) {
		meta_list_free(&res);
		return t.rc;
	}
	/* one name per repository, in order */
	if (res.count > 1) /* qsort wants a non-NULL base even for 0 */
		qsort(res.items, res.count, sizeof(*res.items), cmp_str);
	for (size_t i = 0; i < res.count; i++) {
		if (w > 0 && strcmp(res.items[w - 1], res.items[i]) == 0)
			free(res.items[i]);
		else
			res.items[w++] = res.items[i];
	}
	res.count = w;
	*out = res;
	return 0;
}

void
meta_repo_deleted_free(struct meta_repo_deleted *d)
{
	for (size_t i = 0; i < d->n_kept; i++)
		meta_list_free(&d->kept[i].tags);
	free(d->kept);
	free(d->tag_list);
	memset(d, 0, sizeof(*d));
}

static int
kept_add(struct txn *t, struct meta_repo_deleted *d, const char *digest)
{
	struct meta_repo_kept *nk;

	for (size_t i = 0; i < d->n_kept; i++)
		if (strcmp(d->kept[i].digest, digest) == 0)
			return (int)i;
	nk = realloc(d->kept, (d->n_kept + 1) * sizeof(*nk));
	if (nk == NULL) {
		meta_txn_fail(t, -ENOMEM);
		return -1;
	}
	d->kept = nk;
	memset(&d->kept[d->n_kept], 0, sizeof(d->kept[0]));
	copy_str(d->kept[d->n_kept].digest, DIGEST_BUF, digest, strlen(digest));
	return (int)d->n_kept++;
}

static int
list_add_str(struct meta_list *l, const char *s)
{
	char **ni = realloc(l->items, (l->count + 1) * sizeof(*ni));

	if (ni == NULL)
		return -ENOMEM;
	l->items = ni;
	if ((l->items[l->count] = strdup(s)) == NULL)
		return -ENOMEM;
	l->count++;
	return 0;
}

static int
in_sorted(char **v, size_t n, const char *s)
{
	return n > 0 && bsearch(&s, v, n, sizeof(*v), cmp_str) != NULL;
}

int
meta_repo_delete(struct meta *m, const char *repo, const struct meta_keep *keep,
                 uint64_t now, struct meta_repo_deleted *out)
{
	struct meta_repo_deleted d;
	struct meta_list tags = {0}, mans = {0}, links = {0};
	char **keep_m = NULL, **keep_b = NULL;
	size_t n_keep_m = 0, n_keep_b = 0, cap_t = 0, cap_m = 0, cap_l = 0;
	struct txn t;
	struct key k;

	memset(&d, 0, sizeof(d));
	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	meta_repo_keys(&t, m->tags, repo, NULL, SIZE_MAX, &tags, &cap_t);
	meta_repo_keys(&t, m->manifests, repo, NULL, SIZE_MAX, &mans, &cap_m);
	meta_repo_keys(&t, m->links, repo, NULL, SIZE_MAX, &links, &cap_l);
	if (t.rc == 0 && tags.count == 0 && mans.count == 0 && links.count == 0)
		meta_txn_fail(&t, RC_NAME_UNKNOWN);
	d.tag_list = calloc(tags.count + 1, sizeof(*d.tag_list));
	if (d.tag_list == NULL)
		meta_txn_fail(&t, -ENOMEM);
	keep_m = calloc(mans.count + 1, sizeof(*keep_m));
	keep_b = calloc(links.count + 1, sizeof(*keep_b));
	if (keep_m == NULL || keep_b == NULL)
		meta_txn_fail(&t, -ENOMEM);

	/* What the pins keep: pinned tags (and their targets), pinned
	 * manifests, and everything under them. */
	for (size_t i = 0; i < tags.count && t.rc == 0 && keep != NULL; i++) {
		struct tag_row tr;
		int j;
		if (keep->tag == NULL ||
		    !keep->tag(repo, tags.items[i], keep->arg) ||
		    !meta_tag_row_get(&t, repo, tags.items[i], &tr))
			continue;
		if ((j = kept_add(&t, &d, tr.digest)) >= 0 &&
		    list_add_str(&d.kept[j].tags, tags.items[i]) != 0)
			meta_txn_fail(&t, -ENOMEM);
	}
	for (size_t i = 0; i < mans.count && t.rc == 0 && keep != NULL; i++)
		if (keep->manifest != NULL &&
		    keep->manifest(repo, mans.items[i], keep->arg))
			(void)kept_add(&t, &d, mans.items[i]);
	for (size_t i = 0; i < d.n_kept && t.rc == 0; i++) {
		struct closure c = {0};
		closure_build(&t, &c, repo, d.kept[i].digest);
		for (size_t j = 0; j < c.len; j++) {
			char ***set = c.n[j].is_blob ? &keep_b : &keep_m;
			size_t *n = c.n[j].is_blob ? &n_keep_b : &n_keep_m;
			size_t lim = c.n[j].is_blob ? links.count : mans.count;
			int dup = 0;
			for (size_t x = 0; x < *n; x++)
				dup |= strcmp((*set)[x], c.n[j].digest) == 0;
			if (!dup && *n < lim)
				(*set)[(*n)++] = strdup(c.n[j].digest);
		}
		closure_free(&c);
	}
	for (size_t i = 0; i < n_keep_m; i++)
		if (keep_m[i] == NULL)
			meta_txn_fail(&t, -ENOMEM);
	for (size_t i = 0; i < n_keep_b; i++)
		if (keep_b[i] == NULL)
			meta_txn_fail(&t, -ENOMEM);
	if (t.rc == 0) {
		qsort(keep_m, n_keep_m, sizeof(*keep_m), cmp_str);
		qsort(keep_b, n_keep_b, sizeof(*keep_b), cmp_str);
	}

	/* Tags first (their counts go), then manifests, then links. */
	for (size_t i = 0; i < tags.count && t.rc == 0; i++) {
		struct tag_row tr;
		int kept = 0;
		if (!meta_tag_row_get(&t, repo, tags.items[i], &tr))
			continue;
		for (size_t j = 0; j < d.n_kept && !kept; j++)
			for (size_t x = 0; x < d.kept[j].tags.count; x++)
				kept |= strcmp(d.kept[j].tags.items[x],
				               tags.items[i]) == 0;
		if (kept)
			continue;
		meta_key_of(&k, repo, tags.items[i], NULL);
		meta_txn_del(&t, m->tags, &k);
		meta_manifest_ref_add(&t, repo, tr.digest, -1, now);
		copy_str(d.tag_list[d.tags].tag, sizeof(d.tag_list[0].tag),
		         tags.items[i], strlen(tags.items[i]));
		copy_str(d.tag_list[d.tags].digest, DIGEST_BUF, tr.digest,
		         strlen(tr.digest));
		d.tags++;
	}
	for (size_t i = 0; i < mans.count && t.rc == 0; i++) {
		struct manifest_row r;
		if (in_sorted(keep_m, n_keep_m, mans.items[i]) ||
		    !meta_manifest_row_get(&t, repo, mans.items[i], &r))
			continue;
		meta_manifest_remove(&t, repo, mans.items[i], &r, now);
		d.manifests++;
	}
	for (size_t i = 0; i < links.count && t.rc == 0; i++) {
		struct blob_row br;
		if (in_sorted(keep_b, n_keep_b, links.items[i]))
			continue;
		meta_link_del(&t, repo, links.items[i]);
		d.links++;
		/* A blob nothing references any more goes at the next
		 * collection past the grace. */
		if (meta_blob_row_get(&t, links.items[i], &br) &&
		    br.refcount == 0)
			d.bytes += br.size;
	}
	for (size_t i = 0; i < n_keep_m; i++)
		free(keep_m[i]);
	for (size_t i = 0; i < n_keep_b; i++)
		free(keep_b[i]);
	free(keep_m);
	free(keep_b);
	meta_list_free(&tags);
	meta_list_free(&mans);
	meta_list_free(&links);
	if (meta_txn_commit(&t) != 0) {
		meta_repo_deleted_free(&d);
		return t.rc;
	}
	*out = d;
	return 0;
}

/* ---- pins ---- */

int
meta_pins_put(struct meta *m, char *const *refs, size_t n)
{
	struct txn t;
	struct key k;
	struct enc e;

	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	meta_key_of(&k, PINS_KEY, NULL);
	meta_enc_init(&e);
	meta_enc_u64(&e, n);
	for (size_t i = 0; i < n; i++)
		meta_enc_str(&e, refs[i]);
	if (e.err)
		meta_txn_fail(&t, e.err);
	else
		meta_txn_put_enc(&t, m->info, &k, &e);
	meta_enc_free(&e);
	return meta_txn_commit(&t);
}

int
meta_pins_get(struct meta *m, struct meta_list *out)
{
	struct meta_list res = {NULL, 0, 0};
	struct txn t;
	struct key k;
	struct dec d;
	MDB_val v;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	meta_key_of(&k, PINS_KEY, NULL);
	if (meta_txn_get(&t, m->info, &k, &v)) {
		uint64_t n;
		meta_dec_init(&d, &v);
		n = meta_dec_u64(&d);
		if (!d.err && n > v.mv_size)
			d.err = RC_CORRUPT;
		if (!d.err && n > 0 &&
		    (res.items = calloc(n, sizeof(*res.items))) == NULL)
			d.err = -ENOMEM;
		for (uint64_t i = 0; i < n && !d.err; i++) {
			size_t len;
			const char *s = meta_dec_strp(&d, &len);
			if (s == NULL)
				break;
			if ((res.items[i] = meta_strndup(s, len)) == NULL)
				d.err = -ENOMEM;
			else
				res.count++;
		}
		if (d.err)
			meta_txn_fail(&t, d.err);
	}
	if (meta_txn_end(&t) != 0) {
		meta_list_free(&res);
		return t.rc;
	}
	*out = res;
	return 0;
}

int
meta_tag_sizes(struct meta *m, const char *repo, const char *digest,
               uint64_t *size, uint64_t *unique)
{
	struct closure c = {0};
	struct txn t;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	closure_build(&t, &c, repo, digest);
	closure_sizes(&c, 1, size, unique);
	closure_free(&c);
	return meta_txn_end(&t);
}

/* ---- figures ---- */

void
meta_stats_get(struct meta *m, struct meta_stats *out)
{
	out->write_txns = atomic_load(&m->write_txns);
	out->flush_txns = atomic_load(&m->flush_txns);
}
