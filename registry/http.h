/* Internal interface of the HTTP shell (registry/). Only this directory
 * knows HTTP and writes logs. */
#ifndef BERTH_REGISTRY_HTTP_H
#define BERTH_REGISTRY_HTTP_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "common/names.h"

struct auth;
struct auth_holder;
struct auth_ref;
struct blob_store;
struct gc;
struct maint;
struct meta;
struct tls;

struct app {
	struct blob_store *blobs;
	struct meta *meta;
	/* The users file in force, NULL: no authentication. A request uses
	 * the generation it took at its start (req.auth), never this. */
	struct auth_holder *auth_holder;
	struct gc *gc;                /* the collector (one run at a time) */
	struct maint *maint;          /* the thread that runs it (maint.c) */
	struct policy_holder *policy; /* retention policy, NULL: none */
	struct tls *tls;              /* HTTPS certificate, NULL: plain HTTP */
	struct space *space;          /* data volume: free space, ready */
	int access_log;
	atomic_long inflight;
};

enum route_kind {
	R_NONE = 0,
	R_BASE,       /* /v2/ */
	R_CATALOG,    /* /v2/_catalog */
	R_TAGS,       /* /v2/<name>/tags/list */
	R_MANIFEST,   /* /v2/<name>/manifests/<ref> */
	R_BLOB,       /* /v2/<name>/blobs/<digest> */
	R_UPLOADS,    /* /v2/<name>/blobs/uploads/ */
	R_UPLOAD,     /* /v2/<name>/blobs/uploads/<uuid> */
	R_REFERRERS,  /* /v2/<name>/referrers/<digest> */
	R_HEALTHZ,    /* /healthz */
	R_READYZ,     /* /readyz */
	R_METRICS,    /* /metrics */
	R_TOKEN,      /* the token endpoint (the realm's path) */
	R_GC,         /* /v2/_berth/gc */
	R_ADMIN_TAGS, /* /v2/_berth/tags (the cleanup query) */
	R_ADMIN_REPO, /* /v2/_berth/repositories/<name>[/] */
	R_BACKUP,     /* /v2/_berth/backup */
	R_KIND_COUNT
};

/* What an endpoint needs from a token. A_BASE: any valid token (the
 * version check a client makes to find out how to authenticate). */
enum route_action {
	A_NONE = 0,
	A_BASE,
	A_PULL,
	A_PUSH,
	A_DELETE,
	A_CATALOG,
	A_GC,    /* registry:gc:* */
	A_BACKUP /* registry:backup:* */
};

struct req;

/* Bodies read into memory whole, and their hard limits: a request that
 * announces more is refused from its headers (server.c), one that sends
 * more without announcing it is cut by the route's sink. The manifest
 * limit is MANIFEST_MAX_BYTES (storage/manifest.h). */
#define GC_BODY_MAX    (16u * 1024u * 1024u) /* a cluster's pins fit */
#define TOKEN_BODY_MAX (16u * 1024u)         /* a POST form */

/* Body streaming: called for every chunk of the request body, then once
 * with len == 0 at the end (before the handler's reply step). */
typedef int (*body_fn)(struct req *r, const char *data, size_t len);
typedef void (*handler_fn)(struct req *r);

struct route {
	const char *method;
	enum route_kind kind;
	handler_fn start;  /* first call: validate, set up (may reply) */
	body_fn body;      /* NULL: the body is discarded */
	handler_fn finish; /* after the body: reply (NULL: start replied) */
	enum route_action action;
};

/* Per-request state; allocated on the first callback, freed when MHD says
 * the request completed. */
struct req {
	struct app *app;
	/* The users file as the request began (NULL: no authentication),
	 * held until it ends: a reload never changes it under the request. */
	struct auth *auth;
	struct auth_ref *auth_ref;
	struct MHD_Connection *conn;
	const struct route *route;
	const char *method;
	enum route_kind kind;
	char name[NAME_MAX_LEN + 1];
	char ref[DIGEST_BUF > TAG_MAX_LEN + 1 ? DIGEST_BUF : TAG_MAX_LEN + 1];
	char uuid[40];
	int is_head;
	int started; /* the route's start step ran */
	int replied; /* a response was queued (or is held) */
	/* A response made while body bytes are being handed over (MHD
	 * refuses to queue one then): held until the body is in. */
	int in_body;
	struct MHD_Response *held;
	unsigned held_status;
	int queue_failed; /* MHD refused the answer: close the connection */
	int suspended;    /* waiting for the maintenance thread (gc) */
	struct gc_job *job;
	int err_rc; /* deferred error: body is discarded, then replied */
	const char *bearer; /* token from Authorization (MHD's memory) */
	char www_auth[768]; /* WWW-Authenticate of a 401, "" if none */
	char err_detail[256];
	/* body sinks */
	struct blob_upload *up;
	uint64_t range_end; /* end (exclusive) of a chunk's Content-Range */
	int one_shot;       /* monolithic POST: its session dies with it */
	char *buf;
	char *buf2; /* uploads: the batch being written while buf fills */
	size_t len, cap, cap2, limit;
	int too_large;
	/* extra response headers, added by reply() */
	struct {
		const char *key;
		char val[320];
	} xh[4];
	int nxh;
	/* bookkeeping for logs and metrics */
	uint64_t t0_ns;
	unsigned status;
	uint64_t bytes_in;  /* body bytes received */
	uint64_t bytes_out; /* body bytes; sent ones when cut off */
	uint64_t acked0;    /* the connection's acked bytes at the start */
	int aborted;        /* the client went away before the end */
};

/* ---- routes.c ---- */
/* Splits url into route kind, name and ref; on a syntax error returns the
 * rc to answer with (RC_NAME_INVALID, RC_NOT_FOUND...). */
int route_parse(const char *url, enum route_kind *kind, char *name,
                size_t namelen, char *ref, size_t reflen);
const struct route *route_find(enum route_kind kind, const char *method,
                               int *method_allowed);
/* MHD callbacks that keep what the request line held (a NUL, an encoded
 * '/') for route_check_line(): MHD_OPTION_NOTIFY_CONNECTION,
 * MHD_OPTION_URI_LOG_CALLBACK and MHD_OPTION_UNESCAPE_CALLBACK, all with a
 * NULL closure. */
void route_conn_notify(void *cls, struct MHD_Connection *conn,
                       void **socket_context,
                       enum MHD_ConnectionNotificationCode toe);
void *route_uri_log(void *cls, const char *uri, struct MHD_Connection *conn);
/* In a socket context made by route_conn_notify: a pointer server.c keeps
 * its own per-connection record in (NULL when socket_context is NULL). */
void **route_conn_slot(void *socket_context);
size_t route_unescape(void *cls, struct MHD_Connection *conn, char *s);
/* After route_parse() answered rc for url: the rc to answer, refusing a
 * NUL byte (raw or %00) in the path or the query (r->err_detail says
 * which). url and version: as the access handler got them. */
int route_check_line(struct req *r, const char *url, const char *version,
                     int rc);

/* ---- reply.c ---- */
/* Queues resp with status, adding the common headers; destroys resp. */
void reply(struct req *r, unsigned status, struct MHD_Response *resp);
/* Adds a header to whatever response this request sends. */
void req_add_header(struct req *r, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Replies with the OCI error JSON for rc (status from the one table). */
void reply_error(struct req *r, int rc, const char *detail);
/* Replies with a static or malloc'd body of a given content type. */
void reply_json(struct req *r, unsigned status, char *json_owned);
void reply_empty(struct req *r, unsigned status);
/* Header helpers: value of a request header / query argument or NULL. */
const char *req_header(struct req *r, const char *name);
const char *req_query(struct req *r, const char *name);
/* Status for rc from the error table. */
unsigned rc_http_status(int rc);
uint64_t now_s(void);
uint64_t now_ns(void);

/* ---- handlers ---- */
struct MHD_Response *head_response(uint64_t size);
void h_base(struct req *r);
void h_catalog(struct req *r);
void h_tags(struct req *r);
void h_referrers(struct req *r);
void h_manifest_get(struct req *r);
void h_manifest_put_start(struct req *r);
int h_manifest_put_body(struct req *r, const char *data, size_t len);
void h_manifest_put_finish(struct req *r);
void h_manifest_delete(struct req *r);
void h_blob_get(struct req *r);
void h_blob_delete(struct req *r);
void h_uploads_post_start(struct req *r);
void h_upload_patch_start(struct req *r);
void h_upload_put_start(struct req *r);
int h_upload_body(struct req *r, const char *data, size_t len);
void h_upload_patch_finish(struct req *r);
void h_upload_put_finish(struct req *r);
void h_upload_get(struct req *r);
void h_upload_delete(struct req *r);
/* Removes the session of a monolithic upload that did not complete. */
void upload_abandon(struct req *r);
void h_healthz(struct req *r);
/* ---- handlers_gc.c ---- */
void h_gc_start(struct req *r);
int h_gc_body(struct req *r, const char *data, size_t len);
void h_gc_finish(struct req *r);
/* ---- handlers_backup.c ---- */
void h_backup(struct req *r);
/* The log lines of a collection: one per deleted item (arg: pointer to
 * the run's dry_run flag), one summary per run. */
struct gc_item;
struct gc_report;
void gc_log_item(const struct gc_item *it, void *arg);
void gc_log_summary(const struct gc_report *rep, const char *trigger);
void h_metrics(struct req *r);
/* handlers_retention.c */
struct gc_pins;
struct meta;
/* The pins stored by the last collection run that sent some. */
int stored_pins(struct meta *m, struct gc_pins **out)
        __attribute__((warn_unused_result));
void h_admin_tags(struct req *r);
void h_admin_repo_delete(struct req *r);

/* ---- gate.c ---- */
/* Checks the request's token against what its route needs (auth on).
 * RC_OK, or RC_UNAUTHORIZED with the challenge set in r->www_auth. Then,
 * for a route that adds data, the free space (--min-free): RC_SPACE_LOW
 * with the figures in r->err_detail. */
int gate_check(struct req *r);
/* Whether the request's token may pull from repository name (always true
 * without auth). */
int gate_may_pull(struct req *r, const char *name);
/* Whether a listing may show repository name: the token holds pull on
 * it, or the users file lets the token's user (or anyone) pull it. */
int gate_may_list(struct req *r, const char *name);

/* ---- handlers_auth.c ---- */
void h_token_get(struct req *r);
void h_token_post_start(struct req *r);
int h_token_post_body(struct req *r, const char *data, size_t len);
void h_token_post_finish(struct req *r);

/* ---- maint.c ---- */
/* A collection asked for by a request: the maintenance thread runs it,
 * fills rc and json (malloc'd report), sets done and resumes conn. */
struct gc_job {
	int dry_run;
	int has_pins; /* the body sent pins: they replace the stored ones */
	char **pins;
	size_t n_pins;
	struct MHD_Connection *conn;
	atomic_int done;
	int rc;
	char *json;
	struct gc_job *next;
};
int maint_start(struct app *app, uint64_t interval, struct maint **out);
/* Queues a job; the caller then suspends the job's connection. */
int maint_submit(struct maint *mt, struct gc_job *job);
/* Runs the jobs still queued, then stops the thread. */
void maint_stop(struct maint *mt);

/* ---- policy.c: the retention policy in force ---- */
struct policy_holder;
struct policy_ref;
struct gc_policy;
/* Loads the file (RC_BAD_REQUEST with "FILE:LINE: path: reason" in err). */
int policy_open(const char *path, struct policy_holder **out, char *err,
                size_t errlen) __attribute__((warn_unused_result));
void policy_close(struct policy_holder *ph);
/* A reference to the policy in force (NULL when none); put it back. */
struct policy_ref *policy_get(struct policy_holder *ph);
const struct gc_policy *policy_of(const struct policy_ref *r);
void policy_put(struct policy_ref *r);
/* Loads the file again when it changed (or always, with force): 1
 * reloaded, 0 unchanged, < 0 failed (the previous policy stays; logged). */
int policy_reload(struct policy_holder *ph, int force);
void policy_stats(struct policy_holder *ph, unsigned long *reloads,
                  unsigned long *failures);

/* ---- authhold.c: the users file in force (--auth) ---- */
/* Loads the users file and its keys (err: auth_load's located message). */
int authhold_open(const char *path, struct auth_holder **out, char *err,
                  size_t errlen) __attribute__((warn_unused_result));
void authhold_close(struct auth_holder *h);
/* A reference to the generation in force (NULL when h is NULL), without
 * a lock; put it back. authhold_of: its configuration (NULL for NULL). */
struct auth_ref *authhold_get(struct auth_holder *h);
struct auth *authhold_of(const struct auth_ref *r);
void authhold_put(struct auth_ref *r);
/* Loads the users file again when it or a key file it names changed (or
 * always, with force): 1 reloaded, 0 unchanged, < 0 failed (the previous
 * generation stays; logged and counted in berth_reload_total). */
int authhold_reload(struct auth_holder *h, int force);

/* ---- metrics.c ---- */
/* One request, counted lock-free and without allocation (after a thread's
 * first): bytes_in the body bytes received, bytes_out the body bytes sent
 * (for an aborted one, what the client acknowledged), ns from the complete
 * head to the end of the answer; aborted when the client went away before
 * the end. */
void metrics_count(enum route_kind kind, const char *method, unsigned status,
                   uint64_t bytes_in, uint64_t bytes_out, uint64_t ns,
                   int aborted);
/* A reload of a configuration file: file_kind "users", "policy" or "tls"
 * (others are ignored), ok non-zero when the new file is in force. Feeds
 * berth_reload_total and berth_reload_last_success_timestamp_seconds. */
void metrics_reload(const char *file_kind, int ok);
/* Whether two stat() results are the same version of a file (policy.c). */
struct stat;
int stat_same_file(const struct stat *a, const struct stat *b);
/* The Prometheus text of /metrics (malloc'd), NULL when out of memory. */
char *metrics_render(struct app *app);
/* Short name of a route kind ("manifest", "token"…) for logs and metrics. */
const char *route_kind_name(enum route_kind kind);

/* ---- log.c ---- */
/* One JSON object per line on stderr: static msg, then key/value pairs
 * (strings) terminated by NULL. */
void log_msg(const char *level, const char *msg, ...) __attribute__((sentinel));
void log_access(struct req *r);
/* Like log_msg with typed fields (a JSON object, consumed). */
typedef struct json_t json_t;
void log_fields(const char *level, const char *msg, json_t *fields);

/* ---- catalog filter, free-space guard, readiness (gate.c,
 * handlers_list.c; storage/space.h) ---- */
struct auth_view;
/* The view of the request's token for a listing: *out NULL without auth.
 * RC_OK, or RC_UNAUTHORIZED (the gate let the token through: it expired
 * meanwhile). */
int gate_view_open(struct req *r, struct auth_view **out);
/* A meta_catalog_filter callback: 1 when the view (arg) may pull name. */
int gate_view_may_pull(const char *name, void *arg);
void gate_view_close(struct auth_view *v);
/* /readyz: 200 while the data directory is usable, else 503. */
void h_readyz(struct req *r);

#endif
