/* Responses: the one table from a return code to HTTP status and OCI error
 * code, the common headers, and small reply helpers. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/rc.h"
#include "registry/http.h"
#include "storage/blob.h"

#define NO_SPACE_MSG "insufficient storage"

/* message NULL: rc_str(rc); detail NULL: the caller's detail. */
static const struct {
	int rc;
	unsigned status;
	const char *code;
	const char *message, *detail;
} error_table[] = {
        {RC_BLOB_UNKNOWN, 404, "BLOB_UNKNOWN", NULL, NULL},
        {RC_UPLOAD_UNKNOWN, 404, "BLOB_UPLOAD_UNKNOWN", NULL, NULL},
        {RC_UPLOAD_INVALID, 400, "BLOB_UPLOAD_INVALID", NULL, NULL},
        {RC_DIGEST_INVALID, 400, "DIGEST_INVALID", NULL, NULL},
        {RC_SIZE_INVALID, 400, "SIZE_INVALID", NULL, NULL},
        {RC_MANIFEST_UNKNOWN, 404, "MANIFEST_UNKNOWN", NULL, NULL},
        {RC_MANIFEST_INVALID, 400, "MANIFEST_INVALID", NULL, NULL},
        {RC_MANIFEST_BLOB_UNKNOWN, 400, "MANIFEST_BLOB_UNKNOWN", NULL, NULL},
        {RC_NAME_INVALID, 400, "NAME_INVALID", NULL, NULL},
        {RC_NAME_UNKNOWN, 404, "NAME_UNKNOWN", NULL, NULL},
        {RC_TAG_INVALID, 400, "TAG_INVALID", NULL, NULL},
        {RC_RANGE_INVALID, 416, "BLOB_UPLOAD_INVALID", NULL, NULL},
        {RC_UNSUPPORTED, 400, "UNSUPPORTED", NULL, NULL},
        {RC_TOO_LARGE, 413, "MANIFEST_INVALID", NULL, NULL},
        {RC_SCHEMA1, 400, "MANIFEST_INVALID", NULL, NULL},
        {RC_BUSY, 400, "BLOB_UPLOAD_INVALID", NULL, NULL},
        {RC_BAD_REQUEST, 400, "UNSUPPORTED", NULL, NULL},
        {RC_METHOD, 405, "UNSUPPORTED", NULL, NULL},
        {RC_NOT_FOUND, 404, "UNSUPPORTED", NULL, NULL},
        {RC_DENIED, 403, "DENIED", NULL, NULL},
        {RC_UNAUTHORIZED, 401, "UNAUTHORIZED", NULL, NULL},
        /* The spec has no code for a full volume: DENIED (the request
         * is refused, nothing was stored) with 507 and a detail that
         * says why, never the errno text. */
        {-ENOSPC, 507, "DENIED", NO_SPACE_MSG,
         "no space left on the data volume"},
        {-EDQUOT, 507, "DENIED", NO_SPACE_MSG,
         "no space left on the data volume (quota exceeded)"},
        {RC_FULL, 507, "DENIED", NO_SPACE_MSG, "the metadata index is full"},
        /* --min-free: refused before the volume is full; the caller's
         * detail gives the figures. */
        {RC_SPACE_LOW, 507, "DENIED", NO_SPACE_MSG, NULL},
};

/* Anything else is the server's fault (EIO, ENOMEM, a corrupt or failing
 * index): 500 UNKNOWN with neutral words; what failed goes to the log. */
#define INTERNAL_MSG    "internal server error"
#define INTERNAL_DETAIL "the registry could not complete the request"

static size_t
error_index(int rc)
{
	for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]);
	     i++)
		if (error_table[i].rc == rc)
			return i;
	return SIZE_MAX;
}

unsigned
rc_http_status(int rc)
{
	size_t i = error_index(rc);
	return i == SIZE_MAX ? 500 : error_table[i].status;
}

uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
now_s(void)
{
	return (uint64_t)time(NULL);
}

const char *
req_header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
req_query(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND,
	                                   name);
}

void
reply(struct req *r, unsigned status, struct MHD_Response *resp)
{
	/* The client may send its next request on this upload (on another
	 * connection) as soon as it reads the answer: give the upload back
	 * before the answer can leave. */
	blob_upload_release(r->up);
	r->up = NULL;
	if (resp == NULL) {
		/* Out of memory building a response: drop the connection. */
		r->replied = 1;
		r->status = 500;
		return;
	}
	MHD_add_response_header(resp, "Docker-Distribution-API-Version",
	                        "registry/2.0");
	for (int i = 0; i < r->nxh; i++)
		MHD_add_response_header(resp, r->xh[i].key, r->xh[i].val);
	if (r->www_auth[0] != '\0')
		MHD_add_response_header(resp, "WWW-Authenticate", r->www_auth);
	r->replied = 1;
	r->status = status;
	if (r->in_body) {
		/* the rest of the body is discarded, then this goes */
		r->held = resp;
		r->held_status = status;
		return;
	}
	if (MHD_queue_response(r->conn, status, resp) != MHD_YES) {
		log_msg("error", "queue response failed", "path", r->name,
		        NULL);
		r->queue_failed = 1; /* the connection is closed */
	}
	MHD_destroy_response(resp);
}

void
req_add_header(struct req *r, const char *key, const char *fmt, ...)
{
	va_list ap;

	if (r->nxh >= (int)(sizeof(r->xh) / sizeof(r->xh[0])))
		return;
	va_start(ap, fmt);
	vsnprintf(r->xh[r->nxh].val, sizeof(r->xh[0].val), fmt, ap);
	va_end(ap);
	r->xh[r->nxh++].key = key;
}

void
reply_json(struct req *r, unsigned status, char *json_owned)
{
	size_t n = json_owned ? strlen(json_owned) : 0;
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	        n, json_owned, MHD_RESPMEM_MUST_FREE);

	if (resp == NULL)
		free(json_owned);
	else
		MHD_add_response_header(resp, "Content-Type",
		                        "application/json");
	r->bytes_out += n;
	reply(r, status, resp);
}

void
reply_empty(struct req *r, unsigned status)
{
	reply(r, status,
	      MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}

void
reply_error(struct req *r, int rc, const char *detail)
{
	size_t i = error_index(rc);
	unsigned status = i == SIZE_MAX ? 500 : error_table[i].status;
	const char *code = i == SIZE_MAX ? "UNKNOWN" : error_table[i].code;
	const char *message = rc_str(rc);
	json_t *err, *root;
	char *body;

	if (status >= 500)
		log_msg("error", "request failed", "method", r->method, "name",
		        r->name, "error", rc_str(rc), "detail",
		        detail ? detail : "", NULL);
	if (i == SIZE_MAX) {
		message = INTERNAL_MSG;
		if (detail == NULL || *detail == '\0')
			detail = INTERNAL_DETAIL;
	} else if (error_table[i].message != NULL) {
		message = error_table[i].message;
		if (error_table[i].detail != NULL)
			detail = error_table[i].detail;
	}
	err = json_pack("{s:s, s:s}", "code", code, "message", message);
	if (err && detail && *detail)
		json_object_set_new(err, "detail", json_string(detail));
	else if (err)
		json_object_set_new(err, "detail", json_null());
	root = json_pack("{s:[o]}", "errors", err);
	body = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (body == NULL) {
		reply_empty(r, status);
		return;
	}
	reply_json(r, status, body);
}
