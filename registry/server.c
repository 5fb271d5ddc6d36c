/* The MHD access handler: route, validate, stream the body into the
 * route's sink, reply, log. */
#include <errno.h>
#include <linux/tcp.h> /* tcp_info with tcpi_bytes_received */
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "auth/auth.h"
#include "common/rc.h"
#include "registry/http.h"
#include "registry/server.h"
#include "registry/tls.h"
#include "storage/blob.h"
#include "storage/manifest.h"

static struct req *
req_new(struct app *app, struct MHD_Connection *conn, const char *method)
{
	struct req *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->app = app;
	/* The users file in force now serves the whole request. */
	r->auth_ref = authhold_get(app->auth_holder);
	r->auth = authhold_of(r->auth_ref);
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
	if (r->held != NULL)
		MHD_destroy_response(r->held);
	free(r->buf);
	free(r->buf2);
	authhold_put(r->auth_ref);
	atomic_fetch_sub(&r->app->inflight, 1);
	free(r);
}

/* ---- the connection guard: request-head deadline, connection limit ----
 *
 * MHD's connection timeout (--idle-timeout) restarts with every byte, so a
 * client sending its request head one byte a second would hold its
 * connection for ever, and a few hundred of them fill --max-connections.
 * Every connection therefore has a record (hung on routes.c's socket
 * context) on one list, and a guard thread closes (shutdown(), MHD then
 * cleans up) any connection whose request head is not complete within
 * --header-timeout:
 *   - the first request's head is timed from the accept (a connection that
 *     sends nothing is closed as well);
 *   - on a kept-alive connection, from the first byte after the previous
 *     response: a connection idle between requests is left to the idle
 *     timeout (clients keep pools of them), and the guard sees the next
 *     request begin by the socket's received-byte count (TCP_INFO).
 * The head is complete at the access handler's first callback; the body
 * and the response are timed by MHD's idle timeout alone.
 *
 * At the limit MHD stops accepting, so new clients wait in the listen
 * backlog until a connection closes. Instead MHD's own limit is set out of
 * reach and an accept policy closes a connection over --max-connections at
 * once (concurrent accepts on several workers may overshoot by a few). */
enum { PH_HEAD, PH_REQUEST };

struct conn_rec {
	struct conn_rec *prev, *next; /* under guard.mu */
	int fd;
	int cut;                 /* shut down by the guard (guard thread) */
	atomic_int phase;        /* PH_HEAD: waiting for a complete head */
	atomic_uint_fast64_t t0; /* ns the head began; 0: not yet (idle) */
	atomic_uint_fast64_t rx; /* bytes received when t0 was reset */
};

static struct guard {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int running, stop;
	struct conn_rec list; /* sentinel */
	atomic_uint open;     /* connections MHD holds */
	unsigned max_conn;
	uint64_t header_ns; /* 0: no head deadline */
	uint64_t tick_ns;
	atomic_ulong refused, cut;
} guard = {
        .mu = PTHREAD_MUTEX_INITIALIZER,
        .cv = PTHREAD_COND_INITIALIZER,
        .list = {.prev = &guard.list, .next = &guard.list},
};

/* Bytes the kernel received on fd so far; 0 when it cannot tell. */
static uint64_t
tcp_received(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) +
	                    sizeof(ti.tcpi_bytes_received))
		return 0;
	return ti.tcpi_bytes_received;
}

/* Bytes of ours the peer acknowledged on the connection so far; 0 when
 * the kernel cannot tell (before Linux 4.1, or not TCP). */
static uint64_t
tcp_acked(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
	        conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (ci == NULL ||
	    getsockopt(ci->connect_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_acked) +
	                    sizeof(ti.tcpi_bytes_acked))
		return 0;
	return ti.tcpi_bytes_acked;
}

static struct conn_rec *
conn_rec_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
	        conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	void **slot = route_conn_slot(ci != NULL ? ci->socket_context : NULL);

	return slot != NULL ? *slot : NULL;
}

/* MHD_OPTION_NOTIFY_CONNECTION: routes.c's record, then ours in it. */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
	struct guard *g = cls;
	struct conn_rec *c;
	void **slot;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci;

		atomic_fetch_add(&g->open, 1);
		route_conn_notify(NULL, conn, socket_context, toe);
		slot = route_conn_slot(*socket_context);
		ci = MHD_get_connection_info(conn,
		                             MHD_CONNECTION_INFO_CONNECTION_FD);
		if (slot == NULL || ci == NULL ||
		    (c = calloc(1, sizeof(*c))) == NULL)
			return; /* no deadline for this one */
		c->fd = ci->connect_fd;
		atomic_init(&c->phase, PH_HEAD);
		atomic_init(&c->t0, now_ns());
		atomic_init(&c->rx, 0);
		pthread_mutex_lock(&g->mu);
		c->next = &g->list;
		c->prev = g->list.prev;
		c->prev->next = c;
		g->list.prev = c;
		pthread_mutex_unlock(&g->mu);
		*slot = c;
		return;
	}
	/* Closed: before MHD closes the socket, so the guard never shuts
	 * down a descriptor number already reused. */
	slot = route_conn_slot(*socket_context);
	c = slot != NULL ? *slot : NULL;
	if (c != NULL) {
		pthread_mutex_lock(&g->mu);
		c->prev->next = c->next;
		c->next->prev = c->prev;
		pthread_mutex_unlock(&g->mu);
		free(c);
		*slot = NULL;
	}
	tls_conn_closed(conn); /* before MHD frees its TLS session */
	route_conn_notify(NULL, conn, socket_context, toe);
	atomic_fetch_sub(&g->open, 1);
}

/* MHD_OPTION_ACCEPT_POLICY: over the limit, closed at once. */
static enum MHD_Result
on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct guard *g = cls;

	(void)addr;
	(void)addrlen;
	if (atomic_load(&g->open) < g->max_conn)
		return MHD_YES;
	atomic_fetch_add(&g->refused, 1);
	return MHD_NO;
}

/* One pass of the guard over every connection. */
static void
guard_scan(struct guard *g, uint64_t now)
{
	for (struct conn_rec *c = g->list.next; c != &g->list; c = c->next) {
		uint64_t t0;

		if (c->cut || atomic_load(&c->phase) != PH_HEAD)
			continue;
		t0 = atomic_load(&c->t0);
		if (t0 == 0) {
			/* kept alive: has the next request begun? */
			uint64_t rx = tcp_received(c->fd);
			uint_fast64_t zero = 0;
			if (rx != 0 && rx != atomic_load(&c->rx))
				atomic_compare_exchange_strong(&c->t0, &zero,
				                               now);
			continue;
		}
		if (now - t0 < g->header_ns)
			continue;
		/* MHD sees the end of the stream and closes it */
		(void)shutdown(c->fd, SHUT_RDWR);
		c->cut = 1;
		atomic_fetch_add(&g->cut, 1);
	}
}

static void *
guard_main(void *arg)
{
	struct guard *g = arg;

	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		struct timespec ts;
		uint64_t at;

		clock_gettime(CLOCK_REALTIME, &ts);
		at = (uint64_t)ts.tv_sec * 1000000000ull +
		     (uint64_t)ts.tv_nsec + g->tick_ns;
		ts.tv_sec = (time_t)(at / 1000000000ull);
		ts.tv_nsec = (long)(at % 1000000000ull);
		(void)pthread_cond_timedwait(&g->cv, &g->mu, &ts);
		if (!g->stop)
			guard_scan(g, now_ns());
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

/* The head of a request is complete (the access handler's first call). */
static void
conn_head_done(struct MHD_Connection *conn)
{
	struct conn_rec *c = conn_rec_of(conn);

	if (c != NULL)
		atomic_store(&c->phase, PH_REQUEST);
}

/* A response is done: the next head is timed from its first byte. */
static void
conn_request_done(struct MHD_Connection *conn)
{
	struct conn_rec *c = conn_rec_of(conn);

	if (c == NULL)
		return;
	atomic_store(&c->t0, 0);
	atomic_store(&c->rx, tcp_received(c->fd));
	atomic_store(&c->phase, PH_HEAD);
}

void
server_guard_counts(unsigned long *refused, unsigned long *cut)
{
	*refused = atomic_load(&guard.refused);
	*cut = atomic_load(&guard.cut);
}

/* First callback of a request: find the route and validate the URL. */
static void
req_start(struct req *r, const char *url, const char *version)
{
	int rc, allowed = 0;

	if (r->auth != NULL && strcmp(url, auth_realm_path(r->auth)) == 0) {
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

/* 1 when the request's Transfer-Encoding is not MHD's one coding,
 * "chunked": MHD would then read the body until the client closes. Such a
 * request is refused from its headers (400, connection closed), as RFC
 * 9112 asks of a body whose length cannot be known. */
static int
coding_unknown(struct req *r)
{
	const char *te = req_header(r, "Transfer-Encoding");

	if (te == NULL || strcasecmp(te, "chunked") == 0)
		return 0;
	r->err_rc = RC_BAD_REQUEST;
	snprintf(r->err_detail, sizeof(r->err_detail),
	         "Transfer-Encoding other than chunked");
	return 1;
}

/* 1 for a request with `Expect: 100-continue` (or any expectation) but no
 * body to continue with. It is answered from its headers: MHD would send
 * the 100 and then might take a request pipelined behind it for its body,
 * refuse the answer, and call again without end. MHD closes the
 * connection after an answer from the headers, which such a client cannot
 * mind. Not a collection run: it suspends its connection meanwhile. */
static int
expect_without_body(const struct req *r)
{
	const char *cl;

	if (r->kind == R_GC)
		return 0;
	if (MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Expect") ==
	            NULL ||
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                "Transfer-Encoding") != NULL)
		return 0;
	cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                 "Content-Length");
	return cl == NULL || strcmp(cl, "0") == 0;
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
		conn_head_done(conn);
		r = req_new(app, conn, method);
		if (r == NULL)
			return MHD_NO;
		r->acked0 = tcp_acked(conn);
		*con_cls = r;
		req_start(r, url, version);
		if (r->err_rc == RC_SPACE_LOW || coding_unknown(r) ||
		    body_over_limit(r)) {
			/* Refused before any byte of the body: the route's
			 * start never runs, its body never comes (a layer
			 * refused for --min-free is not uploaded first). */
			r->started = 1;
			req_answer(r);
		} else if (expect_without_body(r)) {
			r->started = 1;
			if (r->err_rc == RC_OK)
				r->route->start(r);
			if (r->err_rc == RC_OK && !r->replied &&
			    r->route->body != NULL)
				(void)r->route->body(r, NULL, 0);
			if (!r->replied)
				req_answer(r);
		}
		return MHD_YES;
	}
	/* While body bytes are handed over MHD refuses a response: one made
	 * then (a route that takes no body answers in its start step) is
	 * held until the body is in. */
	r->in_body = *upload_data_size > 0;
	if (!r->started) {
		r->started = 1;
		if (r->err_rc == RC_OK && r->route)
			r->route->start(r);
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		r->bytes_in += n;
		if (!r->replied && r->err_rc == RC_OK && r->route != NULL &&
		    r->route->body != NULL)
			(void)r->route->body(r, upload_data, n);
		r->in_body = 0;
		return MHD_YES; /* else discarded */
	}
	r->in_body = 0;
	if (r->queue_failed)
		return MHD_NO; /* see the end of this function */
	if (r->held != NULL) {
		if (MHD_queue_response(conn, r->held_status, r->held) !=
		    MHD_YES) {
			log_msg("error", "queue response failed", "path",
			        r->name, NULL);
			r->queue_failed = 1;
		}
		MHD_destroy_response(r->held);
		r->held = NULL;
		return r->queue_failed ? MHD_NO : MHD_YES;
	}
	if (r->replied)
		return MHD_YES;
	r->suspended = 0; /* resumed: the handler answers now */
	if (r->err_rc == RC_OK && r->route && r->route->body)
		(void)r->route->body(r, NULL, 0);
	req_answer(r);
	/* MHD refused the answer (a state it allows none in, e.g. a body-less
	 * request with `Expect: 100-continue` and the next request pipelined
	 * behind it): it would call again and again without end; close. */
	return r->queue_failed ? MHD_NO : MHD_YES;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	conn_request_done(conn);
	if (r == NULL)
		return;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		uint64_t acked = tcp_acked(conn);

		r->aborted = 1;
		if (r->status == 0)
			r->status = 499; /* went away before the answer */
		/* Cut off in the middle of the answer: count what the client
		 * acknowledged (the answer's headers included), not the size
		 * it was promised. */
		if (acked >= r->acked0 && acked - r->acked0 < r->bytes_out)
			r->bytes_out = acked - r->acked0;
	}
	metrics_count(r->kind, r->method, r->status, r->bytes_in, r->bytes_out,
	              now_ns() - r->t0_ns, r->aborted);
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
	/* MHD's words for any failed TLS handshake: a client that does not
	 * trust the certificate, offers only old protocols or ciphers, or
	 * speaks plain HTTP to the HTTPS port. The client's problem. */
	if (strstr(buf, "handshake message out of context") != NULL) {
		log_msg("info", "tls handshake failed", NULL);
		return;
	}
	log_msg("warn", "http server", "detail", buf, NULL);
}

struct MHD_Daemon *
server_start(struct app *app, int listen_fd, const struct server_opts *o)
{
	/* Suspend/resume: a collection runs on the maintenance thread while
	 * its request's connection waits, suspended. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                 MHD_USE_ITC | MHD_USE_ERROR_LOG |
	                 MHD_ALLOW_SUSPEND_RESUME;
	/* MHD splits its limit between the workers: each one may hold up to
	 * all of ours, so only the accept policy ever refuses. */
	uint64_t mhd_limit = ((uint64_t)o->conn_limit + 1) * o->threads;
	struct MHD_Daemon *d;
	struct guard *g = &guard;
	/* HTTPS (tls.c): the certificate comes from a callback, so a new
	 * pair serves new handshakes without restarting the daemon. */
	struct MHD_OptionItem tls_opts[] = {
	        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)tls_priorities()},
	        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)tls_cert_callback},
	        {MHD_OPTION_END, 0, NULL},
	};

	if (mhd_limit > 1u << 30)
		mhd_limit = 1u << 30;
	g->max_conn = o->conn_limit;
	g->header_ns = (uint64_t)o->header_timeout_s * 1000000000ull;
	g->tick_ns = g->header_ns / 4;
	if (g->tick_ns < 100000000ull)
		g->tick_ns = 100000000ull;
	if (g->tick_ns > 1000000000ull)
		g->tick_ns = 1000000000ull;
	if (app->tls != NULL)
		flags |= MHD_USE_TLS;
	else
		tls_opts[0].option = MHD_OPTION_END;
	d = MHD_start_daemon(
	        flags, 0, on_accept, g, on_request, app,
	        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	        MHD_OPTION_LISTEN_SOCKET, listen_fd,
	        MHD_OPTION_THREAD_POOL_SIZE, o->threads,
	        MHD_OPTION_CONNECTION_LIMIT, (unsigned)mhd_limit,
	        MHD_OPTION_CONNECTION_TIMEOUT, o->idle_timeout_s,
	        /* MHD clears a connection's whole pool for every request and
	         * maps it for every connection: 32 KiB (its default) measured
	         * 1.5x the requests/s of 256 KiB and a pull storm 3x faster,
	         * while uploads stay disk-bound either way. */
	        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
	        MHD_OPTION_NOTIFY_COMPLETED, on_completed, app,
	        /* routes.c's record of the request line (route_conn_notify),
	         * then the guard's */
	        MHD_OPTION_NOTIFY_CONNECTION, on_connection, g,
	        MHD_OPTION_URI_LOG_CALLBACK, route_uri_log, NULL,
	        MHD_OPTION_UNESCAPE_CALLBACK, route_unescape, NULL,
	        MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
	if (d == NULL || g->header_ns == 0)
		return d;
	g->stop = 0;
	if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
		MHD_stop_daemon(d);
		return NULL;
	}
	g->running = 1;
	return d;
}

void
server_stop(struct MHD_Daemon *d)
{
	struct guard *g = &guard;

	if (d != NULL)
		MHD_stop_daemon(d);
	if (!g->running)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = 1;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
	g->running = 0;
}
