/* The admin API of the review-app lifecycle:
 *   GET /v2/_berth/tags?repository=GLOB&expired=BOOL&idle_for=DUR&n=&last=
 *       the cleanup query: every tag with its times, expiry, pin and
 *       sizes (rows limited to the repositories the token may pull);
 *   DELETE /v2/_berth/repositories/<name>
 *   DELETE /v2/_berth/repositories/<prefix>/?prefix=true
 *       every tag, manifest and blob link of one repository, or of every
 *       repository under a prefix, except what the cluster's pins keep. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/duration.h"
#include "common/rc.h"
#include "gc/gc.h"
#include "registry/http.h"
#include "storage/meta.h"

#define QUERY_N_DEFAULT 1000
#define QUERY_N_MAX     10000

static json_t *
utc_or_null(uint64_t s)
{
	char buf[32];
	time_t t = (time_t)s;
	struct tm tm;

	if (s == 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(buf);
}

/* The pins stored by the last collection run that sent some. */
int
stored_pins(struct meta *m, struct gc_pins **out)
{
	struct meta_list l = {0};
	char err[256];
	int rc = meta_pins_get(m, &l);

	if (rc != RC_OK)
		return rc;
	rc = gc_pins_parse(l.items, l.count, out, err, sizeof(err));
	meta_list_free(&l);
	return rc;
}

/* ---- the cleanup query ---- */

static int
may_list(const char *repo, void *arg)
{
	return gate_may_list(arg, repo);
}

/* A repository glob: name characters, '/', and '*'. */
static int
glob_ok(const char *g)
{
	if (g[0] == '\0' || strlen(g) > 255)
		return 0;
	for (const char *p = g; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      strchr("._-/*", *p) != NULL))
			return 0;
	return 1;
}

static json_t *
row_json(const struct gc_tag_row *row)
{
	const struct meta_tag_info *ti = &row->info;
	json_t *o = json_pack(
	        "{s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:b,s:I,s:I}", "repository",
	        ti->repo, "tag", ti->tag, "digest", ti->digest, "media_type",
	        ti->media_type, "pushed", utc_or_null(ti->pushed),
	        "last_pulled", utc_or_null(ti->last_pulled), "expires",
	        utc_or_null(row->expires), "expires_by",
	        row->expires_by[0] ? json_string(row->expires_by) : json_null(),
	        "pinned", row->pin != NULL, "size", (json_int_t)ti->size,
	        "unique_size", (json_int_t)ti->unique);

	if (o != NULL && row->pin != NULL)
		json_object_set_new(o, "pin", json_string(row->pin));
	return o;
}

void
h_admin_tags(struct req *r)
{
	struct gc_tags_query q = {.expired = -1, .n = QUERY_N_DEFAULT};
	struct gc_tag_rows rows = {0};
	struct gc_pins *pins = NULL;
	struct policy_ref *pol;
	const char *v;
	json_t *root, *arr;
	char *body, *end;
	int rc;

	if ((v = req_query(r, "repository")) != NULL && v[0] != '\0') {
		if (!glob_ok(v)) {
			reply_error(r, RC_BAD_REQUEST,
			            "repository must be a repository name or "
			            "a glob with * and **");
			return;
		}
		q.repository = v;
	}
	if ((v = req_query(r, "expired")) != NULL && v[0] != '\0') {
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
			reply_error(r, RC_BAD_REQUEST,
			            "expired must be true or false");
			return;
		}
		q.expired = strcmp(v, "true") == 0;
	}
	if ((v = req_query(r, "idle_for")) != NULL && v[0] != '\0' &&
	    duration_parse(v, &q.idle_for) != RC_OK) {
		reply_error(r, RC_BAD_REQUEST,
		            "idle_for must be a duration like 90m, 12h, 3d or "
		            "2w");
		return;
	}
	if ((v = req_query(r, "n")) != NULL && v[0] != '\0') {
		unsigned long n;
		errno = 0;
		n = strtoul(v, &end, 10);
		if (*end != '\0' || errno != 0 || n < 1 || n > QUERY_N_MAX ||
		    v[0] < '0' || v[0] > '9') {
			reply_error(r, RC_BAD_REQUEST,
			            "n must be a number from 1 to 10000");
			return;
		}
		q.n = n;
	}
	q.last = req_query(r, "last");
	if (r->auth != NULL) {
		q.may_list = may_list;
		q.arg = r;
	}
	if ((rc = stored_pins(r->app->meta, &pins)) != RC_OK) {
		reply_error(r, rc, NULL);
		return;
	}
	pol = policy_get(r->app->policy);
	rc = gc_tags_query(r->app->meta, policy_of(pol), pins, &q, now_s(),
	                   &rows);
	policy_put(pol);
	if (rc != RC_OK) {
		gc_pins_free(pins);
		reply_error(r, rc,
		            rc == RC_BAD_REQUEST
		                    ? "last must be a cursor like repo:tag"
		                    : NULL);
		return;
	}
	root = json_object();
	arr = json_array();
	for (size_t i = 0; i < rows.n; i++)
		json_array_append_new(arr, row_json(&rows.v[i]));
	json_object_set_new(root, "tags", arr);
	if (rows.more && rows.n > 0) {
		const struct meta_tag_info *l = &rows.v[rows.n - 1].info;
		char next[400];
		snprintf(next, sizeof(next), "%s:%s", l->repo, l->tag);
		json_object_set_new(root, "next", json_string(next));
		req_add_header(r, "Link",
		               "</v2/_berth/tags?n=%zu&last=%s>; rel=\"next\"",
		               q.n, next);
	}
	gc_tag_rows_free(&rows);
	gc_pins_free(pins);
	body = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (body == NULL)
		reply_error(r, -ENOMEM, NULL);
	else
		reply_json(r, 200, body);
}

/* ---- repository deletes ---- */

struct totals {
	uint64_t tags, manifests, links, kept, bytes;
};

static void
log_repo(const struct gc_repo_result *res)
{
	for (size_t i = 0; i < res->n_tags; i++) {
		const struct gc_expired *e = &res->tags[i];
		log_fields("info", "tag expired",
		           json_pack("{s:s,s:s,s:s,s:s}", "repository", e->repo,
		                     "tag", e->tag, "digest", e->digest,
		                     "reason", e->reason));
	}
	for (size_t i = 0; i < res->d.n_kept; i++)
		log_fields("info", "kept by pin",
		           json_pack("{s:s,s:s,s:s,s:s}", "repository",
		                     res->repo, "digest", res->d.kept[i].digest,
		                     "pin", res->pins[i], "kept_from",
		                     "repository delete"));
	log_fields("info", "repository deleted",
	           json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "repository",
	                     res->repo, "tags", (json_int_t)res->d.tags,
	                     "manifests", (json_int_t)res->d.manifests, "links",
	                     (json_int_t)res->d.links, "kept",
	                     (json_int_t)res->d.n_kept, "bytes",
	                     (json_int_t)res->d.bytes));
}

static json_t *
repo_json(const struct gc_repo_result *res, struct totals *t)
{
	json_t *kept = json_array();

	for (size_t i = 0; i < res->d.n_kept; i++) {
		const struct meta_repo_kept *k = &res->d.kept[i];
		json_t *tags = json_array();
		for (size_t j = 0; j < k->tags.count; j++)
			json_array_append_new(tags,
			                      json_string(k->tags.items[j]));
		json_array_append_new(
		        kept, json_pack("{s:s,s:o,s:[s]}", "digest", k->digest,
		                        "tags", tags, "pins", res->pins[i]));
	}
	t->tags += res->d.tags;
	t->manifests += res->d.manifests;
	t->links += res->d.links;
	t->kept += res->d.n_kept;
	t->bytes += res->d.bytes;
	return json_pack("{s:s,s:I,s:I,s:I,s:I,s:o}", "repository", res->repo,
	                 "tags", (json_int_t)res->d.tags, "manifests",
	                 (json_int_t)res->d.manifests, "links",
	                 (json_int_t)res->d.links, "bytes",
	                 (json_int_t)res->d.bytes, "kept", kept);
}

void
h_admin_repo_delete(struct req *r)
{
	const char *pq = req_query(r, "prefix");
	size_t len = strlen(r->name);
	int is_prefix = len > 3 && strcmp(r->name + len - 3, "/**") == 0;
	int want_prefix = pq != NULL && strcmp(pq, "true") == 0;
	struct meta_list repos = {0};
	struct gc_pins *pins = NULL;
	struct totals t = {0};
	json_t *arr, *root;
	char *body;
	int rc;

	if (pq != NULL && !want_prefix && strcmp(pq, "false") != 0) {
		reply_error(r, RC_BAD_REQUEST, "prefix must be true or false");
		return;
	}
	if (is_prefix != want_prefix) {
		reply_error(r, RC_BAD_REQUEST,
		            is_prefix
		                    ? "a path ending in / deletes every "
		                      "repository under it: add "
		                      "?prefix=true to mean it"
		                    : "?prefix=true needs a path ending in /");
		return;
	}
	if ((rc = stored_pins(r->app->meta, &pins)) != RC_OK) {
		reply_error(r, rc, NULL);
		return;
	}
	if (is_prefix) {
		char prefix[260];
		/* the name "a/b/" + two stars is the prefix "a/b/" */
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(len - 2),
		         r->name);
		rc = meta_repos_list(r->app->meta, prefix, &repos);
	} else {
		rc = meta_repos_list(r->app->meta, r->name, &repos);
		/* exactly this one, not the names it begins */
		for (size_t i = 0; rc == RC_OK && i < repos.count; i++)
			if (strcmp(repos.items[i], r->name) != 0) {
				free(repos.items[i]);
				repos.items[i--] = repos.items[--repos.count];
			}
	}
	if (rc == RC_OK && repos.count == 0)
		rc = RC_NAME_UNKNOWN;
	arr = json_array();
	for (size_t i = 0; rc == RC_OK && i < repos.count; i++) {
		struct gc_repo_result res;
		rc = gc_repo_delete(r->app->meta, pins, repos.items[i], now_s(),
		                    &res);
		if (rc == RC_NAME_UNKNOWN) { /* emptied meanwhile */
			rc = RC_OK;
			continue;
		}
		if (rc != RC_OK)
			break;
		log_repo(&res);
		json_array_append_new(arr, repo_json(&res, &t));
		gc_repo_result_free(&res);
	}
	meta_list_free(&repos);
	gc_pins_free(pins);
	if (rc != RC_OK) {
		json_decref(arr);
		reply_error(r, rc, NULL);
		return;
	}
	root = json_pack("{s:o,s:I,s:I,s:I,s:I,s:I}", "repositories", arr,
	                 "tags", (json_int_t)t.tags, "manifests",
	                 (json_int_t)t.manifests, "links", (json_int_t)t.links,
	                 "kept", (json_int_t)t.kept, "bytes",
	                 (json_int_t)t.bytes);
	body = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (body == NULL)
		reply_error(r, -ENOMEM, NULL);
	else
		reply_json(r, 200, body);
}
