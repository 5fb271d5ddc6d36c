/* The admin API's collector endpoint: POST /v2/_berth/gc runs one
 * collection (optional body {"dry_run": true}) and answers with its report;
 * every deletion is logged as one JSON line. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rc.h"
#include "gc/gc.h"
#include "registry/http.h"

#define PINS_MAX 200000

void
gc_log_item(const struct gc_item *it, void *arg)
{
	int dry = arg != NULL && *(const int *)arg;

	log_fields("info", dry ? "gc would delete" : "gc deleted",
	           json_pack("{s:s,s:s,s:s,s:I,s:s}", "kind",
	                     gc_kind_name(it->kind), "repository", it->repo,
	                     it->kind == GC_UPLOAD ? "upload" : "digest",
	                     it->digest, "size", (json_int_t)it->size, "reason",
	                     it->reason));
}

void
gc_log_summary(const struct gc_report *rep, const char *trigger)
{
	log_fields("info", "gc run",
	           json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:f}", "trigger",
	                     trigger, "dry_run", rep->dry_run, "manifests",
	                     (json_int_t)rep->count[GC_MANIFEST], "blobs",
	                     (json_int_t)rep->count[GC_BLOB], "uploads",
	                     (json_int_t)rep->count[GC_UPLOAD], "bytes_freed",
	                     (json_int_t)rep->bytes_freed, "waiting",
	                     (json_int_t)rep->waiting, "duration_ms",
	                     (double)(rep->duration_ns / 1000) / 1e3));
}

void
h_gc_start(struct req *r)
{
	r->limit = GC_BODY_MAX;
}

int
h_gc_body(struct req *r, const char *data, size_t len)
{
	char *nb;

	if (len == 0 || r->too_large)
		return RC_OK;
	if (r->len + len > r->limit) {
		r->too_large = 1;
		r->err_rc = RC_BAD_REQUEST;
		snprintf(r->err_detail, sizeof(r->err_detail),
		         "body over %u bytes", GC_BODY_MAX);
		return RC_OK;
	}
	nb = realloc(r->buf, r->len + len + 1);
	if (nb == NULL) {
		r->err_rc = -ENOMEM;
		return r->err_rc;
	}
	r->buf = nb;
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return RC_OK;
}

/* The "pins" member: an array of strings, copied into the job. */
static int
pins_take(struct req *r, json_t *v, struct gc_job *job)
{
	struct gc_pins *ps = NULL;
	size_t i, n = json_array_size(v);
	json_t *x;
	char err[256];
	int rc;

	if (!json_is_array(v) || n > PINS_MAX) {
		snprintf(r->err_detail, sizeof(r->err_detail),
		         "pins must be an array of at most %d image references",
		         PINS_MAX);
		return RC_BAD_REQUEST;
	}
	job->has_pins = 1;
	if (n > 0 && (job->pins = calloc(n, sizeof(*job->pins))) == NULL)
		return -ENOMEM;
	json_array_foreach(v, i, x)
	{
		if (!json_is_string(x)) {
			snprintf(r->err_detail, sizeof(r->err_detail),
			         "pins[%zu] is not a string", i);
			return RC_BAD_REQUEST;
		}
		if ((job->pins[i] = strdup(json_string_value(x))) == NULL)
			return -ENOMEM;
		job->n_pins++;
	}
	/* Refused here, before the run: a bad pin deletes nothing. */
	rc = gc_pins_parse(job->pins, job->n_pins, &ps, err, sizeof(err));
	gc_pins_free(ps);
	if (rc == RC_BAD_REQUEST)
		snprintf(r->err_detail, sizeof(r->err_detail), "%s", err);
	return rc;
}

/* {"dry_run": bool, "pins": [...]}, empty, or nothing at all. */
static int
parse_body(struct req *r, struct gc_job *job)
{
	json_error_t err;
	json_t *root, *v;
	const char *key;
	int rc = RC_OK;

	if (r->len == 0)
		return RC_OK;
	root = json_loadb(r->buf, r->len, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL || !json_is_object(root)) {
		snprintf(r->err_detail, sizeof(r->err_detail),
		         "body must be a JSON object like {\"dry_run\": true, "
		         "\"pins\": [\"host/repo:tag\"]}");
		json_decref(root);
		return RC_BAD_REQUEST;
	}
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "dry_run") == 0 && json_is_boolean(v)) {
			job->dry_run = json_is_true(v);
			continue;
		}
		if (strcmp(key, "pins") == 0) {
			if ((rc = pins_take(r, v, job)) != RC_OK)
				break;
			continue;
		}
		snprintf(r->err_detail, sizeof(r->err_detail),
		         strcmp(key, "dry_run") == 0
		                 ? "dry_run must be true or false"
		                 : "unknown key %s",
		         key);
		rc = RC_BAD_REQUEST;
		break;
	}
	json_decref(root);
	return rc;
}

/* First call: hand the run to the maintenance thread and suspend this
 * connection (the worker thread goes on with its other connections).
 * Second call, once resumed: answer with the report. */
void
h_gc_finish(struct req *r)
{
	struct gc_job *job = r->job;
	int rc;

	if (job != NULL && atomic_load(&job->done)) {
		if (job->rc != RC_OK) {
			reply_error(r, job->rc, "collection failed");
			return;
		}
		reply_json(r, 200, job->json);
		job->json = NULL;
		return;
	}
	if (r->app->maint == NULL) {
		reply_error(r, RC_UNSUPPORTED, "the collector is not running");
		return;
	}
	job = calloc(1, sizeof(*job));
	if (job == NULL) {
		reply_error(r, -ENOMEM, NULL);
		return;
	}
	r->job = job; /* freed with the request */
	rc = parse_body(r, job);
	if (rc != RC_OK) {
		r->job = NULL;
		for (size_t i = 0; i < job->n_pins; i++)
			free(job->pins[i]);
		free(job->pins);
		free(job);
		reply_error(r, rc, r->err_detail[0] ? r->err_detail : NULL);
		return;
	}
	job->conn = r->conn;
	r->suspended = 1;
	/* Suspended before the thread can resume it. */
	MHD_suspend_connection(r->conn);
	(void)maint_submit(r->app->maint, job);
}
