/* The MHD access handler: route, validate, stream the body into the
 * route's sink, reply, log. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "common/rc.h"
#include "registry/http.h"
#include "registry/server.h"
#include "storage/blob.h"
#include "storage/manifest.h"

static struct req *
req_new(struct app *app, struct MHD_Connection *conn, const char *method)
{
	struct req *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->app = app;
	r->conn = conn;
	r->method = method;
	r->is_head = strcmp(method, "HEAD") == 0;
	r->t0_ns = now_ns();
	atomic_fetch_add(&app->inflight, 1);
	return r;
}

static void
req_free(struct req *r)
{
	if (r == NULL)
		return;
	upload_abandon(r);
	if (r->job != NULL) {
		free(r->job->json);
		for (size_t i = 0; i < r->job->n_pins; i++)
			free(r->job->pins[i]);
		free(r->job->pins);
		free(r->job);
	}
	blob_upload_release(r->up); /* waits for writes from buf/buf2 */
	free(r->buf);
	free(r->buf2);
	atomic_fetch_sub(&r->app->inflight, 1);
	free(r);
}

/* First callback of a request: find the route and validate the URL. */
static void
req_start(struct req *r, const char *url, const char *version)
{
	int rc, allowed = 0;

	if (r->app->auth != NULL &&
	    strcmp(url, auth_realm_path(r->app->auth)) == 0) {
		r->kind = R_TOKEN;
		rc = RC_OK;
	} else {
		rc = route_parse(url, &r->kind, r->name, sizeof(r->name),
		                 r->ref, sizeof(r->ref));
	}
	rc = route_check_line(r, url, version, rc); /* NUL bytes */
	/* route_parse answers RC_TAG_INVALID only for a manifest reference
	 * that is neither a digest nor a valid tag. Such a tag can name no
	 * manifest, so to a read or a delete it is simply unknown (what the
	 * OCI conformance suite asks for); a push is told its tag is bad.
	 * A NUL or an encoded slash (route_check_line set a detail) is
	 * refused whatever the method: it is an attack, not a typo. */
	if (rc == RC_TAG_INVALID && r->err_detail[0] == '\0' &&
	    (strcmp(r->method, "GET") == 0 || r->is_head ||
	     strcmp(r->method, "DELETE") == 0))
		rc = RC_MANIFEST_UNKNOWN;
	if (rc == RC_OK && r->kind == R_UPLOAD) {
		memcpy(r->uuid, r->ref, sizeof(r->uuid) - 1);
		r->uuid[sizeof(r->uuid) - 1] = '\0';
	}
	if (rc != RC_OK) {
		r->err_rc = rc;
		return;
	}
	r->route = route_find(r->kind, r->method, &allowed);
	if (r->route == NULL) {
		r->err_rc = allowed ? RC_METHOD : RC_NOT_FOUND;
		return;
	}
	/* Before any handler: a body sent without the right token is
	 * discarded, and the answer is the challenge. */
	r->err_rc = gate_check(r);
}

/* Routes that read their body into memory, up to a hard limit. A request
 * that announces more in Content-Length is refused from its headers, in
 * the first callback: MHD then sends no `100 Continue`, reads none of the
 * body and closes the connection after the answer (the one case where
 * closing is wanted). A body without Content-Length (chunked) is cut at
 * the limit by the route's sink and answered the same way at the end. */
static const struct body_limit {
	enum route_kind kind;
	const char *method;
	uint64_t max;
	int rc; /* the error answered; RC_OK: the route's finish answers
	           r->too_large itself (the token endpoint's OAuth error) */
	const char *what;
} body_limits[] = {
        {R_MANIFEST, "PUT", MANIFEST_MAX_BYTES, RC_TOO_LARGE, "manifest"},
        {R_GC, "POST", GC_BODY_MAX, RC_BAD_REQUEST, "body"},
        {R_TOKEN, "POST", TOKEN_BODY_MAX, RC_OK, "form"},
};

/* The limit of r's route, or NULL when it streams or has no body. */
static const struct body_limit *
body_limit_of(const struct req *r)
{
	for (size_t i = 0; i < sizeof(body_limits) / sizeof(body_limits[0]);
	     i++)
		if (body_limits[i].kind == r->kind &&
		    strcmp(body_limits[i].method, r->method) == 0)
			return &body_limits[i];
	return NULL;
}

/* 1 when the request announces a body over its route's limit; the error
 * is then set up as the route's sink would have (r->too_large...). */
static int
body_over_limit(struct req *r)
{
	const struct body_limit *bl = body_limit_of(r);
	const char *cl, *te;
	unsigned long long n;
	char *end;

	if (bl == NULL || r->err_rc != RC_OK || r->route == NULL)
		return 0;
	/* With Transfer-Encoding the body's length is not Content-Length. */
	te = req_header(r, "Transfer-Encoding");
	cl = req_header(r, "Content-Length");
	if (te != NULL || cl == NULL)
		return 0;
	errno = 0;
	n = strtoull(cl, &end, 10);
	if (end == cl || (n <= bl->max && errno == 0))
		return 0; /* MHD refuses a malformed one before us */
	r->too_large = 1;
	r->err_rc = bl->rc;
	if (bl->rc != RC_OK)
		snprintf(r->err_detail, sizeof(r->err_detail),
		         "%s over %llu bytes", bl->what,
		         (unsigned long long)bl->max);
	return 1;
}

/* The route's answer once the body is in (or refused). */
static void
req_answer(struct req *r)
{
	if (r->err_rc != RC_OK)
		reply_error(r, r->err_rc, r->err_detail);
	else if (r->route && r->route->finish)
		r->route->finish(r);
	if (!r->replied && !r->suspended)
		reply_error(r, RC_DB, "handler gave no response");
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
           const char *method, const char *version, const char *upload_data,
           size_t *upload_data_size, void **con_cls)
{
	struct app *app = cls;
	struct req *r = *con_cls;

	if (r == NULL) {
		/* Headers only so far. Replying now would make MHD close the
		 * connection, so the route runs from the next callback on
		 * (but a body over the route's limit is refused now). */
		r = req_new(app, conn, method);
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		req_start(r, url, version);
		if (body_over_limit(r)) {
			/* Refused before any byte of the body: the route's
			 * start never runs, its body never comes. */
			r->started = 1;
			req_answer(r);
		}
		return MHD_YES;
	}
	if (!r->started) {
		r->started = 1;
		if (r->err_rc == RC_OK && r->route)
			r->route->start(r);
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->replied || r->err_rc != RC_OK || r->route == NULL ||
		    r->route->body == NULL)
			return MHD_YES; /* discard */
		(void)r->route->body(r, upload_data, n);
		return MHD_YES;
	}
	if (r->replied)
		return MHD_YES;
	r->suspended = 0; /* resumed: the handler answers now */
	if (r->err_rc == RC_OK && r->route && r->route->body)
		(void)r->route->body(r, NULL, 0);
	req_answer(r);
	return MHD_YES;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)conn;
	if (r == NULL)
		return;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->status == 0)
		r->status = 499; /* client went away */
	metrics_count(r->kind, r->method, r->status, r->bytes_out,
	              now_ns() - r->t0_ns);
	if (r->app->access_log)
		log_access(r);
	req_free(r);
	*con_cls = NULL;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	/* A TLS handshake on the plain port (clients probing HTTPS before
	 * falling back) is answered 400 and closed: not worth a warning. */
	if (strstr(buf, "HTTP response code is 400") != NULL)
		return;
	log_msg("warn", "http server", "detail", buf, NULL);
}

struct MHD_Daemon *
server_start(struct app *app, int listen_fd, unsigned threads,
             unsigned conn_limit, unsigned timeout_s)
{
	/* Suspend/resume: a collection runs on the maintenance thread while
	 * its request's connection waits, suspended. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                 MHD_USE_ITC | MHD_USE_ERROR_LOG |
	                 MHD_ALLOW_SUSPEND_RESUME;

	return MHD_start_daemon(
	        flags, 0, NULL, NULL, on_request, app,
	        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	        MHD_OPTION_LISTEN_SOCKET, listen_fd,
	        MHD_OPTION_THREAD_POOL_SIZE, threads,
	        MHD_OPTION_CONNECTION_LIMIT, conn_limit,
	        MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
	        /* MHD clears a connection's whole pool for every request and
	         * maps it for every connection: 32 KiB (its default) measured
	         * 1.5x the requests/s of 256 KiB and a pull storm 3x faster,
	         * while uploads stay disk-bound either way. */
	        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
	        MHD_OPTION_NOTIFY_COMPLETED, on_completed, app,
	        /* routes.c: what the request line held that MHD decodes */
	        MHD_OPTION_NOTIFY_CONNECTION, route_conn_notify, NULL,
	        MHD_OPTION_URI_LOG_CALLBACK, route_uri_log, NULL,
	        MHD_OPTION_UNESCAPE_CALLBACK, route_unescape, NULL,
	        MHD_OPTION_END);
}
