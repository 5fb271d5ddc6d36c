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
	out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return out;
}
