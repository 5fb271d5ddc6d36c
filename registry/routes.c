/* URL grammar and the route table. Every name, tag, digest and upload id is
 * validated here, before a handler or storage sees it. So is what the
 * request line carried that a C string cannot show: a NUL byte, sent raw or
 * as %00, which would end a name, tag, digest or query value early and so
 * name another one, and an encoded '/' in the path. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "common/names.h"
#include "common/rc.h"
#include "registry/http.h"

/* The table: method x endpoint -> handler steps and the access it needs. */
static const struct route routes[] = {
        {"GET", R_BASE, h_base, NULL, NULL, A_BASE},
        {"HEAD", R_BASE, h_base, NULL, NULL, A_BASE},
        {"GET", R_CATALOG, h_catalog, NULL, NULL, A_CATALOG},
        {"GET", R_TAGS, h_tags, NULL, NULL, A_PULL},
        {"GET", R_REFERRERS, h_referrers, NULL, NULL, A_PULL},
        {"GET", R_MANIFEST, h_manifest_get, NULL, NULL, A_PULL},
        {"HEAD", R_MANIFEST, h_manifest_get, NULL, NULL, A_PULL},
        {"PUT", R_MANIFEST, h_manifest_put_start, h_manifest_put_body,
         h_manifest_put_finish, A_PUSH},
        {"DELETE", R_MANIFEST, h_manifest_delete, NULL, NULL, A_DELETE},
        {"GET", R_BLOB, h_blob_get, NULL, NULL, A_PULL},
        {"HEAD", R_BLOB, h_blob_get, NULL, NULL, A_PULL},
        {"DELETE", R_BLOB, h_blob_delete, NULL, NULL, A_DELETE},
        {"POST", R_UPLOADS, h_uploads_post_start, h_upload_body,
         h_upload_put_finish, A_PUSH},
        {"PATCH", R_UPLOAD, h_upload_patch_start, h_upload_body,
         h_upload_patch_finish, A_PUSH},
        {"PUT", R_UPLOAD, h_upload_put_start, h_upload_body,
         h_upload_put_finish, A_PUSH},
        {"GET", R_UPLOAD, h_upload_get, NULL, NULL, A_PUSH},
        {"DELETE", R_UPLOAD, h_upload_delete, NULL, NULL, A_PUSH},
        {"GET", R_HEALTHZ, h_healthz, NULL, NULL, A_NONE},
        {"HEAD", R_HEALTHZ, h_healthz, NULL, NULL, A_NONE},
        {"GET", R_READYZ, h_readyz, NULL, NULL, A_NONE},
        {"HEAD", R_READYZ, h_readyz, NULL, NULL, A_NONE},
        {"GET", R_METRICS, h_metrics, NULL, NULL, A_NONE},
        {"GET", R_TOKEN, h_token_get, NULL, NULL, A_NONE},
        {"POST", R_TOKEN, h_token_post_start, h_token_post_body,
         h_token_post_finish, A_NONE},
        {"POST", R_GC, h_gc_start, h_gc_body, h_gc_finish, A_GC},
        /* rows are limited to what the token may pull */
        {"GET", R_ADMIN_TAGS, h_admin_tags, NULL, NULL, A_BASE},
        {"DELETE", R_ADMIN_REPO, h_admin_repo_delete, NULL, NULL, A_DELETE},
        {"GET", R_BACKUP, h_backup, NULL, NULL, A_BACKUP},
};

const struct route *
route_find(enum route_kind kind, const char *method, int *method_allowed)
{
	*method_allowed = 0;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (routes[i].kind != kind)
			continue;
		*method_allowed = 1;
		if (strcmp(routes[i].method, method) == 0)
			return &routes[i];
	}
	return NULL;
}

static int
is_uuid(const char *s)
{
	static const int dash[] = {8, 13, 18, 23};
	size_t n = strlen(s);

	if (n != 36)
		return 0;
	for (size_t i = 0, d = 0; i < n; i++) {
		if (d < 4 && (int)i == dash[d]) {
			if (s[i] != '-')
				return 0;
			d++;
		} else if (!((s[i] >= '0' && s[i] <= '9') ||
		             (s[i] >= 'a' && s[i] <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

/* A manifest reference with ':' is a digest. One of a known algorithm that
 * fails is a bad digest (or an unsupported algorithm); anything else was
 * meant as a tag and is not a valid one. */
static int
manifest_ref_error(const char *ref, int rc)
{
	static const char *const known[] = {
	        "sha256:", "sha384:", "sha512:", "blake3:"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strncmp(ref, known[i], strlen(known[i])) == 0)
			return rc;
	return RC_TAG_INVALID;
}

/* The rightmost occurrence of marker in path whose remainder holds no '/'. */
static const char *
find_suffix(const char *path, const char *marker)
{
	const char *best = NULL;
	size_t ml = strlen(marker);

	for (const char *p = strstr(path, marker); p; p = strstr(p + 1, marker))
		if (strchr(p + ml, '/') == NULL)
			best = p;
	return best;
}

static int
copy_part(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

int
route_parse(const char *url, enum route_kind *kind, char *name, size_t namelen,
            char *ref, size_t reflen)
{
	static const struct {
		const char *marker;
		enum route_kind kind;
	} marks[] = {
	        {"/blobs/uploads/", R_UPLOAD},
	        {"/manifests/", R_MANIFEST},
	        {"/blobs/", R_BLOB},
	        {"/referrers/", R_REFERRERS},
	};
	const char *path, *best = NULL, *rest;
	enum route_kind k = R_NONE;
	size_t best_len = 0;

	name[0] = ref[0] = '\0';
	if (strcmp(url, "/healthz") == 0) {
		*kind = R_HEALTHZ;
		return RC_OK;
	}
	if (strcmp(url, "/readyz") == 0) {
		*kind = R_READYZ;
		return RC_OK;
	}
	if (strcmp(url, "/metrics") == 0) {
		*kind = R_METRICS;
		return RC_OK;
	}
	if (strcmp(url, "/v2/") == 0 || strcmp(url, "/v2") == 0) {
		*kind = R_BASE;
		return RC_OK;
	}
	if (strncmp(url, "/v2/", 4) != 0)
		return RC_NOT_FOUND;
	path = url + 4;
	if (strcmp(path, "_catalog") == 0) {
		*kind = R_CATALOG;
		return RC_OK;
	}
	if (strcmp(path, "_berth/gc") == 0) {
		*kind = R_GC;
		return RC_OK;
	}
	if (strcmp(path, "_berth/tags") == 0) {
		*kind = R_ADMIN_TAGS;
		return RC_OK;
	}
	if (strcmp(path, "_berth/backup") == 0) {
		*kind = R_BACKUP;
		return RC_OK;
	}
	if (strncmp(path, "_berth/repositories/", 20) == 0) {
		/* A name, or a prefix ending in '/': the prefix "a/b/" is
		 * named "a/b/" followed by `**`, the scope a delete of every
		 * repository under it needs. */
		const char *n = path + 20;
		size_t len = strlen(n);
		int prefix = len > 0 && n[len - 1] == '/';
		if (prefix)
			len--;
		if (copy_part(name, namelen, n, len) != 0 ||
		    !name_is_valid(name) || len + 4 > namelen)
			return RC_NAME_INVALID;
		if (prefix)
			strcat(name, "/**");
		*kind = R_ADMIN_REPO;
		return RC_OK;
	}
	{
		size_t pl = strlen(path);
		const char *tl = "/tags/list";
		if (pl > strlen(tl) &&
		    strcmp(path + pl - strlen(tl), tl) == 0) {
			best = path + pl - strlen(tl);
			best_len = strlen(tl);
			k = R_TAGS;
		}
	}
	for (size_t i = 0; k == R_NONE && i < sizeof(marks) / sizeof(marks[0]);
	     i++) {
		const char *p = find_suffix(path, marks[i].marker);
		if (p && (best == NULL || p > best)) {
			best = p;
			best_len = strlen(marks[i].marker);
			k = marks[i].kind;
		}
	}
	if (k == R_NONE)
		return RC_NOT_FOUND;
	if (copy_part(name, namelen, path, (size_t)(best - path)) != 0 ||
	    !name_is_valid(name))
		return RC_NAME_INVALID;
	rest = best + best_len;
	switch (k) {
	case R_TAGS: break;
	case R_UPLOAD:
		if (*rest == '\0') {
			k = R_UPLOADS;
			break;
		}
		if (!is_uuid(rest))
			return RC_UPLOAD_UNKNOWN;
		if (copy_part(ref, reflen, rest, strlen(rest)) != 0)
			return RC_UPLOAD_UNKNOWN;
		break;
	case R_MANIFEST:
		if (strchr(rest, ':') != NULL) {
			int rc = digest_check(rest);
			if (rc != RC_OK)
				return manifest_ref_error(rest, rc);
		} else if (!tag_is_valid(rest)) {
			return RC_TAG_INVALID;
		}
		if (copy_part(ref, reflen, rest, strlen(rest)) != 0)
			return RC_TAG_INVALID;
		break;
	case R_BLOB:
	case R_REFERRERS: {
		int rc = digest_check(rest);
		if (rc != RC_OK)
			return rc;
		if (copy_part(ref, reflen, rest, strlen(rest)) != 0)
			return RC_DIGEST_INVALID;
		break;
	}
	default: return RC_NOT_FOUND;
	}
	*kind = k;
	return RC_OK;
}

/* ---- the request line as sent ----
 *
 * libmicrohttpd hands the access handler the path percent-decoded, ended by
 * its first NUL, and the query as key/value pairs decoded the same way. The
 * three callbacks below (installed by server.c) keep what that loses:
 *   - the path is decoded by route_unescape(), which leaves %00 and %2F as
 *     sent: the '%' then makes the name, tag or digest they are in invalid
 *     (route_parse), where a NUL would have cut it short and a '/' would have
 *     moved the boundary between name and reference;
 *   - query values are decoded as MHD does, and MHD keeps their decoded
 *     length: route_check_line() compares it with the C string's;
 *   - a raw NUL in the request line ends the C string MHD passes on: the URI
 *     log callback sees the request target before MHD splits it, and
 *     records where its C string ends. Without a raw NUL that is the space
 *     MHD replaced before the HTTP version, right before the version string
 *     the access handler gets. The record is per connection (the socket
 *     context of MHD_OPTION_NOTIFY_CONNECTION), as requests on one
 *     connection come one after another. */
struct raw_line {
	const char *uri;   /* the request target, as MHD holds it */
	const char *end;   /* its first NUL when the URI log callback ran */
	const char *query; /* its '?' before end, or NULL */
	void *server;      /* server.c's record of the connection */
};

void
route_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	(void)conn;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = calloc(1, sizeof(struct raw_line));
	} else {
		free(*socket_context);
		*socket_context = NULL;
	}
}

void **
route_conn_slot(void *socket_context)
{
	struct raw_line *rl = socket_context;

	return rl != NULL ? &rl->server : NULL;
}

static struct raw_line *
raw_line_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
	        conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

void *
route_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct raw_line *rl = raw_line_of(conn);

	(void)cls;
	if (rl != NULL) {
		rl->uri = uri;
		rl->end = uri != NULL ? uri + strlen(uri) : NULL;
		rl->query = uri != NULL ? strchr(uri, '?') : NULL;
	}
	return NULL; /* no request state yet: server.c makes it */
}

/* MHD_http_unescape() of the path, but %00 and %2F (%2f) stay as sent. */
static size_t
path_unescape(char *s)
{
	char *w = s;
	const char *p = s;

	while (*p != '\0') {
		int hi = -1, lo = -1;

		if (*p == '%' && (hi = hex_digit(p[1])) >= 0 &&
		    (lo = hex_digit(p[2])) >= 0 && hi * 16 + lo != 0 &&
		    hi * 16 + lo != '/') {
			*w++ = (char)(hi * 16 + lo);
			p += 3;
		} else {
			*w++ = *p++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

size_t
route_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	const struct raw_line *rl = raw_line_of(conn);

	(void)cls;
	/* MHD decodes the query's keys and values first, the path last. */
	if (rl != NULL && s == rl->uri)
		return path_unescape(s);
	return MHD_http_unescape(s);
}

/* The error a bad value of a query parameter gets on a route: the one its
 * handler answers for a malformed value. */
static const struct {
	enum route_kind kind;
	const char *key;
	int rc;
} query_params[] = {
        {R_UPLOADS, "digest", RC_DIGEST_INVALID},
        {R_UPLOADS, "mount", RC_DIGEST_INVALID},
        {R_UPLOADS, "from", RC_NAME_INVALID},
        {R_UPLOAD, "digest", RC_DIGEST_INVALID},
};

static int
query_param_error(struct req *r, const char *key)
{
	char shown[64];

	text_printable(shown, sizeof(shown), key != NULL ? key : "");
	snprintf(r->err_detail, sizeof(r->err_detail),
	         "%s: the query value has a NUL byte", shown);
	if (key == NULL)
		return RC_BAD_REQUEST;
	for (size_t i = 0; i < sizeof(query_params) / sizeof(query_params[0]);
	     i++)
		if (query_params[i].kind == r->kind &&
		    strcmp(query_params[i].key, key) == 0)
			return query_params[i].rc;
	return RC_BAD_REQUEST;
}

struct arg_scan {
	const char *nul_key; /* first key whose key or value has a NUL */
	const char *last;    /* the last key */
};

static enum MHD_Result
scan_arg(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
         const char *value, size_t value_size)
{
	struct arg_scan *as = cls;

	(void)kind;
	as->last = key;
	if (as->nul_key == NULL &&
	    (strlen(key) != key_size ||
	     (value != NULL && strlen(value) != value_size)))
		as->nul_key = key;
	return MHD_YES;
}

/* A raw NUL in the path: the answer is route_parse's for the path with the
 * NUL shown as %00 (and, after it, what the request target holds up to its
 * next NUL), so the name, tag or digest it is in is the one refused. */
static int
raw_nul_in_path(struct req *r, const char *url, const char *after)
{
	size_t n = strlen(url) + strlen(after) + 4;
	char *path = malloc(n), name[sizeof(r->name)], ref[sizeof(r->ref)];
	enum route_kind kind = R_NONE;
	int rc;

	if (path == NULL)
		return -ENOMEM;
	snprintf(path, n, "%s%%00%s", url, after);
	rc = route_parse(path, &kind, name, sizeof(name), ref, sizeof(ref));
	free(path);
	r->kind = R_NONE;
	snprintf(r->err_detail, sizeof(r->err_detail),
	         "the path has a NUL byte");
	return rc != RC_OK ? rc : RC_BAD_REQUEST;
}

int
route_check_line(struct req *r, const char *url, const char *version, int rc)
{
	const struct raw_line *rl = raw_line_of(r->conn);
	struct arg_scan as = {NULL, NULL};

	if (rl == NULL) /* no memory for it when the connection came */
		return -ENOMEM;
	if (rl->uri == NULL || url != rl->uri) {
		/* not the request line the URI log callback saw */
		snprintf(r->err_detail, sizeof(r->err_detail),
		         "request line not understood");
		return RC_BAD_REQUEST;
	}
	if (rl->end + 1 != version) {
		/* a raw NUL: in the path, or in the query after its '?' */
		if (rl->query == NULL)
			return raw_nul_in_path(r, url, rl->end + 1);
		if (rc != RC_OK)
			return rc;
		MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND,
		                            scan_arg, &as);
		return query_param_error(r, as.last);
	}
	if (rc != RC_OK) {
		if (strstr(url, "%00") != NULL)
			snprintf(r->err_detail, sizeof(r->err_detail),
			         "the path has %%00, a NUL byte");
		else if (strcasestr(url, "%2f") != NULL)
			snprintf(r->err_detail, sizeof(r->err_detail),
			         "the path has %%2F: an encoded '/' separates "
			         "nothing and is not allowed");
		return rc;
	}
	MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, scan_arg,
	                            &as);
	return as.nul_key != NULL ? query_param_error(r, as.nul_key) : RC_OK;
}
