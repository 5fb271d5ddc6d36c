/* Read-only listings: tags, catalog, referrers and the gc queue. */
#include "storage/meta_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"
#include "common/rc.h"

int
meta_list_add(struct meta_list *l, size_t *cap, const char *s, size_t n)
{
	char *copy;

	if (l->count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		char **items = realloc(l->items, ncap * sizeof(*items));

		if (items == NULL)
			return -ENOMEM;
		l->items = items;
		*cap = ncap;
	}
	copy = meta_strndup(s, n);
	if (copy == NULL)
		return -ENOMEM;
	l->items[l->count++] = copy;
	return 0;
}

void
meta_list_free(struct meta_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
	l->more = 0;
}

int
meta_tags_list(struct meta *m, const char *repo, const char *last, size_t n,
               struct meta_list *out)
{
	struct meta_list res = {NULL, 0, 0};
	struct txn t;
	size_t cap = 0;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	if (!meta_repo_has_rows(&t, m->tags, repo) &&
	    !meta_repo_has_rows(&t, m->manifests, repo) &&
	    !meta_repo_has_rows(&t, m->links, repo))
		meta_txn_fail(&t, RC_NAME_UNKNOWN);
	meta_repo_keys(&t, m->tags, repo, last, n, &res, &cap);
	if (meta_txn_end(&t) != 0) {
		meta_list_free(&res);
		return t.rc;
	}
	*out = res;
	return 0;
}

/* The key tails after repo\0 of one database's rows of repo in byte
 * order: strictly after `after` (NULL: from the first), at most n of them
 * (more set when one follows), appended to l. */
void
meta_repo_keys(struct txn *t, MDB_dbi dbi, const char *repo, const char *after,
               size_t n, struct meta_list *l, size_t *cap)
{
	struct key prefix, from;
	struct scan s;
	size_t got = 0;

	meta_key_of(&prefix, repo, "", NULL);
	if (after != NULL)
		meta_key_of(&from, repo, after, NULL);
	meta_scan_open(t, &s, dbi, &prefix, after != NULL ? &from : NULL);
	while (n > 0 && meta_scan_next(&s)) {
		const char *tail = (const char *)s.k.mv_data + prefix.len;
		size_t len = s.k.mv_size - prefix.len;

		if (after != NULL && len == strlen(after) &&
		    memcmp(tail, after, len) == 0)
			continue;
		if (got == n) {
			l->more = 1;
			break;
		}
		if (meta_list_add(l, cap, tail, len) != 0) {
			meta_txn_fail(t, -ENOMEM);
			break;
		}
		got++;
	}
	meta_scan_close(&s);
}

/* Which names a walk of repositories takes: NULL takes every one. */
struct names_filter {
	int (*visible)(const char *name, void *arg);
	void *arg;
	size_t budget; /* names examined before a page holding one ends */
};

/* The repositories (key prefixes before the first NUL) of one database
 * in byte order: only names starting with prefix, strictly after `after`
 * (NULL: from the first), at most n of them that nf takes (more set when
 * one follows), appended to l. One cursor seek per repository: each jumps
 * over the repository's keys. With a budget, a walk that has examined that
 * many names and taken one stops there (more set: the page is cut short);
 * one that has taken none goes on, so the page's last name, which the
 * next page starts after, is always one the filter took. */
static void
repo_names_walk(struct txn *t, MDB_dbi dbi, const char *prefix,
                const char *after, size_t n, const struct names_filter *nf,
                struct meta_list *l, size_t *cap)
{
	size_t plen = strlen(prefix), got = 0, seen = 0;
	char name[NAME_MAX_LEN + 1];
	MDB_cursor *c = NULL;
	struct key seek;
	MDB_val k, v;
	int rc;

	if (t->rc != 0 || n == 0)
		return;
	rc = mdb_cursor_open(t->txn, dbi, &c);
	if (rc != MDB_SUCCESS) {
		meta_txn_fail(t, meta_rc(rc));
		return;
	}
	meta_key_init(&seek);
	if (after != NULL && strcmp(after, prefix) >= 0) {
		meta_key_str(&seek, after);
		meta_key_byte(&seek, 1); /* just past every key of after */
	} else {
		meta_key_str(&seek, prefix);
	}
	if (seek.bad)
		meta_txn_fail(t, RC_BAD_REQUEST);
	while (t->rc == 0) {
		const char *nul;
		size_t len;

		k.mv_data = seek.b;
		k.mv_size = seek.len;
		rc = mdb_cursor_get(c, &k, &v,
		                    seek.len > 0 ? MDB_SET_RANGE : MDB_FIRST);
		if (rc == MDB_NOTFOUND)
			break;
		if (rc != MDB_SUCCESS) {
			meta_txn_fail(t, meta_rc(rc));
			break;
		}
		nul = memchr(k.mv_data, 0, k.mv_size);
		if (nul == NULL ||
		    nul - (const char *)k.mv_data > (ptrdiff_t)NAME_MAX_LEN) {
			meta_txn_fail(t, RC_CORRUPT);
			break;
		}
		len = (size_t)(nul - (const char *)k.mv_data);
		memcpy(name, k.mv_data, len);
		name[len] = '\0';
		if (len < plen || memcmp(name, prefix, plen) != 0)
			break; /* past the prefix */
		if (nf != NULL && nf->budget > 0 && seen >= nf->budget &&
		    got > 0) {
			l->more = 1;
			break;
		}
		seen++;
		if (nf == NULL || nf->visible(name, nf->arg)) {
			if (got == n) {
				l->more = 1;
				break;
			}
			if (meta_list_add(l, cap, name, len) != 0) {
				meta_txn_fail(t, -ENOMEM);
				break;
			}
			got++;
		}
		meta_key_init(&seek);
		meta_key_bytes(&seek, name, len);
		meta_key_byte(&seek, 1);
	}
	mdb_cursor_close(c);
}

void
meta_repo_names(struct txn *t, MDB_dbi dbi, const char *prefix,
                const char *after, size_t n, struct meta_list *l, size_t *cap)
{
	repo_names_walk(t, dbi, prefix, after, n, NULL, l, cap);
}

int
meta_catalog_list(struct meta *m, const char *last, size_t n,
                  struct meta_list *out)
{
	return meta_catalog_filter(m, last, n, NULL, NULL, 0, out);
}

int
meta_catalog_filter(struct meta *m, const char *last, size_t n,
                    int (*visible)(const char *name, void *arg), void *arg,
                    size_t budget, struct meta_list *out)
{
	struct names_filter nf = {visible, arg, budget};
	struct meta_list res = {NULL, 0, 0};
	struct txn t;
	size_t cap = 0;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	repo_names_walk(&t, m->manifests, "", last, n,
	                visible != NULL ? &nf : NULL, &res, &cap);
	if (meta_txn_end(&t) != 0) {
		meta_list_free(&res);
		return t.rc;
	}
	*out = res;
	return 0;
}

void
meta_referrers_free(struct meta_referrers *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->count; i++)
		free(r->items[i].annotations_json);
	free(r->items);
	r->items = NULL;
	r->count = 0;
}

/* Decodes one referrers row into it; 1 when it passes the filter. */
static int
referrer_decode(struct txn *t, const struct scan *s, size_t plen,
                const char *artifact_type, struct meta_referrer *it)
{
	struct dec d;
	const char *ann;
	size_t n = 0, dlen = s->k.mv_size - plen;

	memset(it, 0, sizeof(*it));
	if (dlen == 0 || dlen >= sizeof(it->digest)) {
		meta_txn_fail(t, RC_CORRUPT);
		return 0;
	}
	memcpy(it->digest, (const char *)s->k.mv_data + plen, dlen);
	meta_dec_init(&d, &s->v);
	it->size = meta_dec_u64(&d);
	meta_dec_str(&d, it->media_type, sizeof(it->media_type));
	meta_dec_str(&d, it->artifact_type, sizeof(it->artifact_type));
	ann = meta_dec_strp(&d, &n);
	if (d.err) {
		meta_txn_fail(t, d.err);
		return 0;
	}
	if (artifact_type != NULL && strcmp(artifact_type, it->artifact_type))
		return 0;
	if (n > 0) {
		it->annotations_json = meta_strndup(ann, n);
		if (it->annotations_json == NULL) {
			meta_txn_fail(t, -ENOMEM);
			return 0;
		}
	}
	return 1;
}

int
meta_referrers_list(struct meta *m, const char *repo, const char *subject,
                    const char *artifact_type, struct meta_referrers *out)
{
	struct meta_referrers res = {NULL, 0};
	struct meta_referrer it;
	struct key prefix;
	struct scan s;
	struct txn t;
	size_t cap = 0;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	meta_key_of(&prefix, repo, subject, "", NULL);
	meta_scan_open(&t, &s, m->referrers, &prefix, NULL);
	while (meta_scan_next(&s)) {
		if (!referrer_decode(&t, &s, prefix.len, artifact_type, &it))
			continue;
		if (res.count == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct meta_referrer *items =
			        realloc(res.items, ncap * sizeof(*items));

			if (items == NULL) {
				free(it.annotations_json);
				meta_txn_fail(&t, -ENOMEM);
				break;
			}
			res.items = items;
			cap = ncap;
		}
		res.items[res.count++] = it;
	}
	meta_scan_close(&s);
	if (meta_txn_end(&t) != 0) {
		meta_referrers_free(&res);
		return t.rc;
	}
	*out = res;
	return 0;
}

/* Decodes due(8, big-endian) \0 kind \0 digest [\0 repo]. */
int
meta_gcq_decode(const MDB_val *k, struct meta_gc_item *it)
{
	const unsigned char *p = k->mv_data;
	const char *digest, *sep;
	size_t n = k->mv_size, dlen;

	memset(it, 0, sizeof(*it));
	if (n < 12 || p[8] != 0 || p[10] != 0)
		return RC_CORRUPT;
	for (int i = 0; i < 8; i++)
		it->due = (it->due << 8) | p[i];
	it->kind = (enum meta_gc_kind)p[9];
	if (it->kind != META_GC_BLOB && it->kind != META_GC_MANIFEST)
		return RC_CORRUPT;
	digest = (const char *)p + 11;
	n -= 11;
	sep = memchr(digest, 0, n);
	dlen = sep != NULL ? (size_t)(sep - digest) : n;
	if (dlen == 0 || dlen >= sizeof(it->digest))
		return RC_CORRUPT;
	memcpy(it->digest, digest, dlen);
	if (it->kind == META_GC_MANIFEST) {
		if (sep == NULL || n - dlen - 1 == 0 ||
		    n - dlen - 1 >= sizeof(it->repo))
			return RC_CORRUPT;
		memcpy(it->repo, sep + 1, n - dlen - 1);
	} else if (sep != NULL) {
		return RC_CORRUPT;
	}
	return 0;
}

int
meta_gcq_walk(struct meta *m, uint64_t until,
              int (*fn)(const struct meta_gc_item *it, void *arg), void *arg)
{
	struct meta_gc_item it;
	MDB_cursor *c = NULL;
	struct txn t;
	MDB_val k, v;
	MDB_cursor_op op = MDB_FIRST;
	int rc, stop = 0;

	if (meta_txn_begin(m, &t, 0) != 0)
		return t.rc;
	rc = mdb_cursor_open(t.txn, m->gcq, &c);
	if (rc != MDB_SUCCESS) {
		c = NULL;
		meta_txn_fail(&t, meta_rc(rc));
	}
	while (t.rc == 0 && !stop) {
		rc = mdb_cursor_get(c, &k, &v, op);
		op = MDB_NEXT;
		if (rc == MDB_NOTFOUND)
			break;
		if (rc != MDB_SUCCESS) {
			meta_txn_fail(&t, meta_rc(rc));
			break;
		}
		rc = meta_gcq_decode(&k, &it);
		if (rc != 0) {
			meta_txn_fail(&t, rc);
			break;
		}
		if (it.due > until)
			break;
		stop = fn(&it, arg);
		if (stop < 0)
			meta_txn_fail(&t, stop);
	}
	if (c != NULL)
		mdb_cursor_close(c);
	return meta_txn_end(&t);
}
