/* URL grammar and the route table. Every name, tag, digest and upload id is
 * validated here, before a handler or storage sees it. */
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
        {"GET", R_READYZ, h_healthz, NULL, NULL, A_NONE},
        {"HEAD", R_READYZ, h_healthz, NULL, NULL, A_NONE},
        {"GET", R_METRICS, h_metrics, NULL, NULL, A_NONE},
        {"GET", R_TOKEN, h_token_get, NULL, NULL, A_NONE},
        {"POST", R_TOKEN, h_token_post_start, h_token_post_body,
         h_token_post_finish, A_NONE},
        {"POST", R_GC, h_gc_start, h_gc_body, h_gc_finish, A_GC},
        /* rows are limited to what the token may pull */
        {"GET", R_ADMIN_TAGS, h_admin_tags, NULL, NULL, A_BASE},
        {"DELETE", R_ADMIN_REPO, h_admin_repo_delete, NULL, NULL, A_DELETE},
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
