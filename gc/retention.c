/* Retention: which tags expire (TTL labels and the policy), which pins
 * keep what, the cleanup query and repository deletes. Decides here;
 * reads and writes through meta_. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/glob.h"
#include "common/rc.h"
#include "gc/gc.h"
#include "gc/gc_internal.h"

#define EXPIRE_BATCH 256

static void
copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src != NULL ? src : "");
}

/* ---- one repository's tags judged ---- */

struct judged {
	struct gc_policy_tag *pt;
	size_t cap;
};

/* Runs the policy over one repository's tags: pt[i] matches tags[i]. */
static int
judge(struct judged *j, const struct gc_policy *policy, const char *repo,
      const struct meta_tag_info *tags, size_t n, uint64_t now)
{
	if (n > j->cap) {
		struct gc_policy_tag *np = realloc(j->pt, n * sizeof(*np));
		if (np == NULL)
			return -ENOMEM;
		j->pt = np;
		j->cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		memset(&j->pt[i], 0, sizeof(j->pt[i]));
		j->pt[i].tag = tags[i].tag;
		j->pt[i].pushed = tags[i].pushed;
		j->pt[i].last_pulled = tags[i].last_pulled;
		j->pt[i].ttl_expires = tags[i].expires;
	}
	return gc_policy_eval(policy, repo, j->pt, n, now);
}

/* "ttl label quay.expires-after" or the policy's reason. */
static void
reason_text(const struct gc_policy *policy, const struct meta_tag_info *ti,
            const struct gc_policy_tag *pt, char *buf, size_t len)
{
	if (pt->reason == GC_EXPIRY_TTL) {
		snprintf(buf, len, "ttl label%s%s", ti->source[0] ? " " : "",
		         ti->source);
		return;
	}
	if (pt->reason == GC_EXPIRY_NONE || pt->reason == GC_EXPIRY_PROTECTED) {
		buf[0] = '\0';
		return;
	}
	gc_policy_reason(policy, pt, buf, len);
}

/* ---- a run's expiry step ---- */

struct expire_ctx {
	const struct gc_run_options *o;
	struct gc_report *r;
	uint64_t now;
	struct judged j;
	int err;
};

int
gc_report_kept(struct gc_report *r, const char *repo, const char *tag,
               const char *digest, const char *pin, const char *reason)
{
	struct gc_kept *k;

	if (r->n_kept == r->cap_kept) {
		size_t nc = r->cap_kept ? r->cap_kept * 2 : 16;
		struct gc_kept *nk = realloc(r->kept, nc * sizeof(*nk));
		if (nk == NULL)
			return -ENOMEM;
		r->kept = nk;
		r->cap_kept = nc;
	}
	k = &r->kept[r->n_kept++];
	memset(k, 0, sizeof(*k));
	copy(k->repo, sizeof(k->repo), repo);
	copy(k->tag, sizeof(k->tag), tag);
	copy(k->digest, sizeof(k->digest), digest);
	copy(k->pin, sizeof(k->pin), pin);
	copy(k->reason, sizeof(k->reason), reason);
	return 0;
}

static struct gc_expired *
expired_push(struct gc_report *r)
{
	if (r->n_expired == r->cap_expired) {
		size_t nc = r->cap_expired ? r->cap_expired * 2 : 64;
		struct gc_expired *ne = realloc(r->expired, nc * sizeof(*ne));
		if (ne == NULL)
			return NULL;
		r->expired = ne;
		r->cap_expired = nc;
	}
	memset(&r->expired[r->n_expired], 0, sizeof(r->expired[0]));
	return &r->expired[r->n_expired++];
}

static int
expire_visit(const char *repo, struct meta_tag_info *tags, size_t n, void *arg)
{
	struct expire_ctx *c = arg;
	int rc = judge(&c->j, c->o->policy, repo, tags, n, c->now);

	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct gc_policy_tag *pt = &c->j.pt[i];
		struct gc_expired *e;
		const char *pin;
		char why[128];

		if (pt->expires == 0 || pt->expires > c->now)
			continue;
		reason_text(c->o->policy, &tags[i], pt, why, sizeof(why));
		pin = gc_pins_tag(c->o->pins, repo, tags[i].tag);
		if (pin == NULL)
			pin = gc_pins_manifest(c->o->pins, repo,
			                       tags[i].digest);
		if (pin != NULL) {
			rc = gc_report_kept(c->r, repo, tags[i].tag,
			                    tags[i].digest, pin, why);
			continue;
		}
		if ((e = expired_push(c->r)) == NULL) {
			rc = -ENOMEM;
			break;
		}
		copy(e->repo, sizeof(e->repo), repo);
		copy(e->tag, sizeof(e->tag), tags[i].tag);
		copy(e->digest, sizeof(e->digest), tags[i].digest);
		copy(e->reason, sizeof(e->reason), why);
		e->expires = pt->expires;
		e->pushed = tags[i].pushed;
	}
	c->err = rc;
	return rc != 0;
}

/* Deletes the judged tags (each only if unchanged since), in batches;
 * drops from the report the ones a push changed meanwhile. */
static int
expire_apply(struct meta *m, struct gc_report *r, size_t from, uint64_t now)
{
	struct meta_tag_expire x[EXPIRE_BATCH];
	size_t w = from;

	for (size_t i = from; i < r->n_expired; i += EXPIRE_BATCH) {
		size_t n = r->n_expired - i < EXPIRE_BATCH ? r->n_expired - i
		                                           : EXPIRE_BATCH;
		int rc;

		for (size_t k = 0; k < n; k++) {
			const struct gc_expired *e = &r->expired[i + k];
			x[k] = (struct meta_tag_expire){
			        e->repo, e->tag, e->digest, e->pushed, 0};
		}
		rc = meta_tags_expire(m, x, n, now);
		if (rc != 0) {
			r->n_expired = w;
			return rc;
		}
		for (size_t k = 0; k < n; k++)
			if (x[k].done)
				r->expired[w++] = r->expired[i + k];
	}
	r->n_expired = w;
	return 0;
}

/* The bytes each expired tag frees (what only it holds), read before the
 * delete. */
static void
expire_sizes(struct meta *m, struct gc_report *r, size_t from)
{
	for (size_t i = from; i < r->n_expired; i++) {
		uint64_t size = 0, unique = 0;
		struct gc_expired *e = &r->expired[i];
		if (meta_tag_sizes(m, e->repo, e->digest, &size, &unique) != 0)
			unique = 0;
		e->bytes = unique;
	}
}

int
gc_retention_expire(struct meta *m, const struct gc_run_options *o,
                    uint64_t now, struct gc_report *r)
{
	struct expire_ctx c = {o, r, now, {NULL, 0}, 0};
	size_t from = r->n_expired;
	int rc;

	r->pins = gc_pins_count(o->pins);
	rc = meta_repo_tags_walk(m, NULL, NULL, 0, expire_visit, &c);
	free(c.j.pt);
	if (rc == 0)
		rc = c.err;
	if (rc != 0)
		return rc;
	expire_sizes(m, r, from);
	if (!o->dry_run && (rc = expire_apply(m, r, from, now)) != 0)
		return rc;
	for (size_t i = from; o->expired != NULL && i < r->n_expired; i++)
		o->expired(&r->expired[i], o->arg);
	return 0;
}

/* ---- what pins keep, for meta_ ---- */

static int
keep_manifest(const char *repo, const char *digest, void *arg)
{
	return gc_pins_manifest(arg, repo, digest) != NULL;
}

static int
keep_tag(const char *repo, const char *tag, void *arg)
{
	return gc_pins_tag(arg, repo, tag) != NULL;
}

void
gc_keep_init(struct meta_keep *k, const struct gc_policy *policy,
             const struct gc_pins *pins)
{
	memset(k, 0, sizeof(*k));
	if (pins != NULL && gc_pins_count(pins) > 0) {
		k->manifest = keep_manifest;
		k->tag = keep_tag;
		k->arg = (void *)(uintptr_t)pins;
	}
	k->untagged_after =
	        policy != NULL ? gc_policy_untagged_after(policy) : 0;
}

/* ---- the cleanup query ---- */

struct query_ctx {
	const struct gc_policy *policy;
	const struct gc_pins *pins;
	const struct gc_tags_query *q;
	uint64_t now;
	const char *last_repo, *last_tag; /* cursor, NULL: none */
	struct gc_tag_rows *out;
	struct judged j;
	int err;
};

void
gc_tag_rows_free(struct gc_tag_rows *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static int
row_matches(const struct query_ctx *c, const struct meta_tag_info *ti,
            const struct gc_policy_tag *pt)
{
	const struct gc_tags_query *q = c->q;
	int expired = pt->expires != 0 && pt->expires <= c->now;
	uint64_t idle_since =
	        ti->last_pulled > ti->pushed ? ti->last_pulled : ti->pushed;

	if (c->last_repo != NULL && strcmp(ti->repo, c->last_repo) == 0 &&
	    strcmp(ti->tag, c->last_tag) <= 0)
		return 0;
	if (q->expired >= 0 && expired != q->expired)
		return 0;
	if (q->idle_for > 0 &&
	    (idle_since > c->now || c->now - idle_since < q->idle_for))
		return 0;
	return 1;
}

static int
query_visit(const char *repo, struct meta_tag_info *tags, size_t n, void *arg)
{
	struct query_ctx *c = arg;
	const struct gc_tags_query *q = c->q;
	int rc;

	if (q->repository != NULL && !glob_match(q->repository, repo))
		return 0;
	if (q->may_list != NULL && !q->may_list(repo, q->arg))
		return 0;
	rc = judge(&c->j, c->policy, repo, tags, n, c->now);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct gc_policy_tag *pt = &c->j.pt[i];
		struct gc_tag_row *row;

		if (!row_matches(c, &tags[i], pt))
			continue;
		if (c->out->n == q->n) {
			c->out->more = 1;
			return 1;
		}
		if (c->out->n == c->out->cap) {
			size_t nc = c->out->cap ? c->out->cap * 2 : 64;
			struct gc_tag_row *nv =
			        realloc(c->out->v, nc * sizeof(*nv));
			if (nv == NULL) {
				rc = -ENOMEM;
				break;
			}
			c->out->v = nv;
			c->out->cap = nc;
		}
		row = &c->out->v[c->out->n++];
		memset(row, 0, sizeof(*row));
		row->info = tags[i];
		row->expires = pt->expires;
		reason_text(c->policy, &tags[i], pt, row->expires_by,
		            sizeof(row->expires_by));
		row->pin = gc_pins_tag(c->pins, repo, tags[i].tag);
		if (row->pin == NULL)
			row->pin =
			        gc_pins_manifest(c->pins, repo, tags[i].digest);
	}
	c->err = rc;
	return rc != 0;
}

/* The literal start of a glob: the walk only visits names under it. */
static char *
glob_prefix(const char *glob)
{
	size_t n = strcspn(glob, "*?[");

	return strndup(glob, n);
}

int
gc_tags_query(struct meta *m, const struct gc_policy *policy,
              const struct gc_pins *pins, const struct gc_tags_query *q,
              uint64_t now, struct gc_tag_rows *out)
{
	struct query_ctx c = {policy, pins, q,         now, NULL,
	                      NULL,   out,  {NULL, 0}, 0};
	char *cursor = NULL, *prefix = NULL, *colon;
	int rc;

	memset(out, 0, sizeof(*out));
	if (q->last != NULL && q->last[0] != '\0') {
		cursor = strdup(q->last);
		if (cursor == NULL)
			return -ENOMEM;
		colon = strrchr(cursor, ':');
		if (colon == NULL || colon == cursor || colon[1] == '\0') {
			free(cursor);
			return RC_BAD_REQUEST;
		}
		*colon = '\0';
		c.last_repo = cursor;
		c.last_tag = colon + 1;
	}
	if (q->repository != NULL &&
	    (prefix = glob_prefix(q->repository)) == NULL) {
		free(cursor);
		return -ENOMEM;
	}
	rc = meta_repo_tags_walk(m, prefix, c.last_repo, 0, query_visit, &c);
	if (rc == 0)
		rc = c.err;
	/* Sizes for the rows of this page only (each its own read). */
	for (size_t i = 0; rc == 0 && i < out->n; i++) {
		struct meta_tag_info *ti = &out->v[i].info;
		rc = meta_tag_sizes(m, ti->repo, ti->digest, &ti->size,
		                    &ti->unique);
	}
	free(c.j.pt);
	free(prefix);
	free(cursor);
	if (rc != 0)
		gc_tag_rows_free(out);
	return rc;
}

/* ---- repository deletes ---- */

void
gc_repo_result_free(struct gc_repo_result *r)
{
	meta_repo_deleted_free(&r->d);
	free(r->pins);
	free(r->tags);
	memset(r, 0, sizeof(*r));
}

int
gc_repo_delete(struct meta *m, const struct gc_pins *pins, const char *repo,
               uint64_t now, struct gc_repo_result *out)
{
	struct gc_repo_result res;
	struct meta_keep keep;
	int rc;

	memset(&res, 0, sizeof(res));
	copy(res.repo, sizeof(res.repo), repo);
	gc_keep_init(&keep, NULL, pins);
	rc = meta_repo_delete(m, repo, &keep, now, &res.d);
	if (rc != 0)
		return rc;
	if (res.d.n_kept > 0 &&
	    (res.pins = calloc(res.d.n_kept, sizeof(*res.pins))) == NULL)
		goto nomem;
	for (size_t i = 0; i < res.d.n_kept; i++) {
		const struct meta_repo_kept *k = &res.d.kept[i];
		const char *pin = gc_pins_manifest(pins, repo, k->digest);
		for (size_t j = 0; pin == NULL && j < k->tags.count; j++)
			pin = gc_pins_tag(pins, repo, k->tags.items[j]);
		copy(res.pins[i], sizeof(res.pins[i]), pin);
	}
	if (res.d.tags > 0 &&
	    (res.tags = calloc(res.d.tags, sizeof(*res.tags))) == NULL)
		goto nomem;
	for (size_t i = 0; i < res.d.tags; i++) {
		struct gc_expired *e = &res.tags[i];
		copy(e->repo, sizeof(e->repo), repo);
		copy(e->tag, sizeof(e->tag), res.d.tag_list[i].tag);
		copy(e->digest, sizeof(e->digest), res.d.tag_list[i].digest);
		copy(e->reason, sizeof(e->reason), "repository delete");
	}
	res.n_tags = res.d.tags;
	*out = res;
	return 0;
nomem:
	gc_repo_result_free(&res);
	return -ENOMEM;
}
