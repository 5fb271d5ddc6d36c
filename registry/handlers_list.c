/* Listing endpoints (/v2/, tags, catalog, referrers) and the operational
 * ones (/healthz, /readyz, /metrics). */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"
#include "common/rc.h"
#include "registry/http.h"
#include "storage/manifest.h"
#include "storage/meta.h"
#include "storage/space.h"

#define CATALOG_DEFAULT_PAGE 1000
/* Repository names one filtered catalog page looks at, at most, once it
 * holds a name: a caller who sees few of many repositories gets shorter
 * pages (the Link goes on after the last), not one long walk. */
#define CATALOG_SCAN_BUDGET 10000

void
h_base(struct req *r)
{
	reply_json(r, 200, strdup("{}"));
}

void
h_healthz(struct req *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	        3, "ok\n", MHD_RESPMEM_PERSISTENT);

	if (resp)
		MHD_add_response_header(resp, "Content-Type", "text/plain");
	reply(r, 200, resp);
}

/* Readiness (the kubelet's readinessProbe): 503 with the reason while
 * the data directory cannot serve, so the Service stops sending clients
 * here; liveness (/healthz) stays 200, a restart would not bring the
 * volume back. A change either way is logged once. */
void
h_readyz(struct req *r)
{
	struct MHD_Response *resp;
	char why[256], *text;
	int changed = 0, n;
	int rc = space_ready(r->app->space, why, sizeof(why), &changed);

	if (rc == RC_OK) {
		if (changed)
			log_msg("info", "data directory usable again", NULL);
		h_healthz(r);
		return;
	}
	if (changed)
		log_msg("error", "data directory not usable, not ready",
		        "reason", why, NULL);
	n = asprintf(&text, "not ready: %s\n", why);
	if (n < 0) {
		reply(r, 503, NULL);
		return;
	}
	resp = MHD_create_response_from_buffer((size_t)n, text,
	                                       MHD_RESPMEM_MUST_FREE);
	if (resp == NULL)
		free(text);
	else
		MHD_add_response_header(resp, "Content-Type", "text/plain");
	r->bytes_out = (uint64_t)n;
	reply(r, 503, resp);
}

void
h_metrics(struct req *r)
{
	char *text = metrics_render(r->app);
	struct MHD_Response *resp;

	if (text == NULL) {
		reply_error(r, -ENOMEM, NULL);
		return;
	}
	resp = MHD_create_response_from_buffer(strlen(text), text,
	                                       MHD_RESPMEM_MUST_FREE);
	if (resp == NULL)
		free(text);
	else
		MHD_add_response_header(resp, "Content-Type",
		                        "text/plain; version=0.0.4");
	reply(r, 200, resp);
}

/* Reads the paging parameters n and last. */
static int
page_params(struct req *r, size_t dflt, size_t *n, const char **last)
{
	const char *ns = req_query(r, "n");
	char *end;
	unsigned long long v;

	*last = req_query(r, "last");
	if (*last && **last == '\0')
		*last = NULL;
	if (ns == NULL || *ns == '\0') {
		*n = dflt;
		return RC_OK;
	}
	errno = 0;
	v = strtoull(ns, &end, 10);
	if (*end != '\0' || errno != 0 || ns[0] == '-')
		return RC_BAD_REQUEST;
	*n = (size_t)v;
	return RC_OK;
}

/* Replies with {key: [items]} and a Link header when more remain. */
static void
reply_page(struct req *r, const char *path, const char *key,
           struct meta_list *l, size_t n)
{
	json_t *root = json_object(), *arr = json_array();
	char *body;

	if (strcmp(key, "tags") == 0)
		json_object_set_new(root, "name", json_string(r->name));
	for (size_t i = 0; i < l->count; i++)
		json_array_append_new(arr, json_string(l->items[i]));
	json_object_set_new(root, key, arr);
	if (l->more && l->count > 0)
		req_add_header(r, "Link", "<%s?n=%zu&last=%s>; rel=\"next\"",
		               path, n, l->items[l->count - 1]);
	body = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (body == NULL)
		reply_error(r, -ENOMEM, NULL);
	else
		reply_json(r, 200, body);
}

void
h_tags(struct req *r)
{
	struct meta_list l;
	const char *last;
	char path[NAME_MAX_LEN + 32];
	size_t n;
	int rc = page_params(r, SIZE_MAX, &n, &last);

	if (rc == RC_OK)
		rc = meta_tags_list(r->app->meta, r->name, last, n, &l);
	if (rc != RC_OK) {
		reply_error(r, rc, NULL);
		return;
	}
	snprintf(path, sizeof(path), "/v2/%s/tags/list", r->name);
	reply_page(r, path, "tags", &l, n);
	meta_list_free(&l);
}

/* With auth, the catalog lists only what the caller may pull: the walk
 * skips the other names, a page holds up to n visible ones and its Link
 * names the last of them. */
void
h_catalog(struct req *r)
{
	struct auth_view *v = NULL;
	struct meta_list l;
	const char *last;
	size_t n;
	int rc = page_params(r, CATALOG_DEFAULT_PAGE, &n, &last);

	if (rc == RC_OK)
		rc = gate_view_open(r, &v);
	if (rc == RC_OK && v == NULL)
		rc = meta_catalog_list(r->app->meta, last, n, &l);
	else if (rc == RC_OK)
		rc = meta_catalog_filter(r->app->meta, last, n,
		                         gate_view_may_pull, v,
		                         CATALOG_SCAN_BUDGET, &l);
	gate_view_close(v);
	if (rc != RC_OK) {
		reply_error(r, rc, NULL);
		return;
	}
	reply_page(r, "/v2/_catalog", "repositories", &l, n);
	meta_list_free(&l);
}

void
h_referrers(struct req *r)
{
	const char *q = req_query(r, "artifactType");
	char filter_buf[MEDIA_TYPE_BUF];
	const char *filter = NULL;
	struct meta_referrers refs;
	json_t *root, *arr;
	char *body;
	struct MHD_Response *resp;
	int rc;

	if (q != NULL && *q != '\0') {
		/* A raw '+' in a query decodes to a space; media types have no
		 * spaces, so an unencoded "+json" suffix still matches. */
		snprintf(filter_buf, sizeof(filter_buf), "%s", q);
		for (char *p = filter_buf; *p; p++)
			if (*p == ' ')
				*p = '+';
		filter = filter_buf;
	}
	rc = meta_referrers_list(r->app->meta, r->name, r->ref, filter, &refs);
	if (rc != RC_OK) {
		reply_error(r, rc, NULL);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < refs.count; i++) {
		const struct meta_referrer *it = &refs.items[i];
		json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType",
		                      it->media_type, "digest", it->digest,
		                      "size", (json_int_t)it->size);
		if (d == NULL)
			continue;
		if (it->artifact_type[0])
			json_object_set_new(d, "artifactType",
			                    json_string(it->artifact_type));
		if (it->annotations_json) {
			json_t *a = json_loads(it->annotations_json, 0, NULL);
			if (a)
				json_object_set_new(d, "annotations", a);
		}
		json_array_append_new(arr, d);
	}
	meta_referrers_free(&refs);
	root = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType",
	                 MT_OCI_INDEX, "manifests", arr);
	body = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (body == NULL) {
		reply_error(r, -ENOMEM, NULL);
		return;
	}
	resp = MHD_create_response_from_buffer(strlen(body), body,
	                                       MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
	} else {
		MHD_add_response_header(resp, "Content-Type", MT_OCI_INDEX);
		if (filter)
			MHD_add_response_header(resp, "OCI-Filters-Applied",
			                        "artifactType");
	}
	reply(r, 200, resp);
}
