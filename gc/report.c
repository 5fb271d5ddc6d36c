/* A collection report as JSON (the body of POST /v2/_berth/gc and of
 * `berth gc --json`). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gc/gc.h"

static json_t *
utc(uint64_t s)
{
	char buf[32];
	time_t t = (time_t)s;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(buf);
}

static json_t *
kind_totals(const struct gc_report *r, enum gc_kind k)
{
	return json_pack("{s:I,s:I}", "deleted", (json_int_t)r->count[k],
	                 "bytes", (json_int_t)r->bytes[k]);
}

/* "tags_expired", "kept_by_pins" and "pins" of a run with retention. */
static int
retention_add(json_t *root, const struct gc_report *r)
{
	json_t *exp = json_array(), *kept = json_array();

	if (exp == NULL || kept == NULL)
		goto fail;
	for (size_t i = 0; i < r->n_expired; i++) {
		const struct gc_expired *e = &r->expired[i];
		if (json_array_append_new(
		            exp,
		            json_pack("{s:s,s:s,s:s,s:s,s:o,s:I}", "repository",
		                      e->repo, "tag", e->tag, "digest",
		                      e->digest, "reason", e->reason, "expired",
		                      e->expires ? utc(e->expires)
		                                 : json_null(),
		                      "bytes", (json_int_t)e->bytes)) != 0)
			goto fail;
	}
	for (size_t i = 0; i < r->n_kept; i++) {
		const struct gc_kept *k = &r->kept[i];
		json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "repository",
		                      k->repo, "digest", k->digest, "pin",
		                      k->pin, "kept_from", k->reason);
		if (o != NULL && k->tag[0] != '\0' &&
		    json_object_set_new(o, "tag", json_string(k->tag)) != 0) {
			json_decref(o);
			o = NULL;
		}
		if (json_array_append_new(kept, o) != 0)
			goto fail;
	}
	if (json_object_set_new(root, "tags_expired", exp) != 0) {
		exp = NULL;
		goto fail;
	}
	exp = NULL;
	if (json_object_set_new(root, "kept_by_pins", kept) != 0) {
		kept = NULL;
		goto fail;
	}
	kept = NULL;
	if (json_object_set_new(root, "pins",
	                        json_integer((json_int_t)r->pins)) != 0)
		goto fail;
	return 0;
fail:
	json_decref(exp);
	json_decref(kept);
	return -1;
}

char *
gc_report_json(const struct gc_report *r)
{
	json_t *root, *items;
	char *out;

	items = json_array();
	if (items == NULL)
		return NULL;
	for (size_t i = 0; i < r->n_items; i++) {
		const struct gc_item *it = &r->items[i];
		json_t *o = json_pack(
		        "{s:s,s:s,s:s,s:I,s:s}", "kind", gc_kind_name(it->kind),
		        "repository", it->repo,
		        it->kind == GC_UPLOAD ? "upload" : "digest", it->digest,
		        "size", (json_int_t)it->size, "reason", it->reason);
		if (o == NULL || json_array_append_new(items, o) != 0) {
			json_decref(items);
			return NULL;
		}
	}
	root = json_pack(
	        "{s:o,s:f,s:b,s:o,s:o,s:o,s:I,s:{s:I,s:o},s:I,s:o}", "started",
	        utc(r->started_ns / 1000000000ull), "duration_ms",
	        (double)(r->duration_ns / 1000) / 1e3, "dry_run", r->dry_run,
	        "manifests", kind_totals(r, GC_MANIFEST), "blobs",
	        kind_totals(r, GC_BLOB), "uploads", kind_totals(r, GC_UPLOAD),
	        "bytes_freed", (json_int_t)r->bytes_freed, "waiting", "count",
	        (json_int_t)r->waiting, "next_due",
	        r->next_due ? utc(r->next_due) : json_null(), "queue",
	        (json_int_t)r->queue_len, "deleted", items);
	if (root == NULL)
		return NULL;
	if (retention_add(root, r) != 0) {
		json_decref(root);
		return NULL;
	}
	out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return out;
}
