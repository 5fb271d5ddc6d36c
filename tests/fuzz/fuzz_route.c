/* libFuzzer harness for the URL grammar: path_unescape() (the path's
 * percent-decoding route_unescape() gives libmicrohttpd), route_parse()
 * and route_find() (registry/routes.c, compiled into this file with
 * #include: it is not in libberth; the handlers its table names are stubs
 * here) and the validators they call, name_is_valid(), tag_is_valid(),
 * digest_is_wellformed() and digest_check() (common/). Built by `make
 * fuzz` (tests/fuzz/run.sh runs it).
 *
 * Input: a request target's path as sent (a NUL ends it, as in the C
 * string libmicrohttpd passes on). It goes to route_parse() as it is (a
 * path already decoded) and after path_unescape().
 *
 * Promises checked, besides crashes and sanitizer reports:
 *   - a route that parses puts back together into the same URL
 *     ("/v2/" name "/manifests/" ref...), its name passes name_is_valid()
 *     (a repository prefix: the name before its "/" and two stars), a
 *     blob or referrers ref passes digest_check(), a manifest ref is a valid
 * tag or digest, an upload ref is a lower-case UUID, and the route table has
 * the kind;
 *   - a refusal is one of the codes the server maps to an answer;
 *   - path_unescape() never makes a path longer, never decodes %00 or %2F
 *     (no NUL, as many '/' as before), returns the decoded length, and
 *     decodes everything else exactly as MHD_http_unescape() does;
 *   - a digest that passes digest_check() re-formats to the same string
 *     (hex -> 32 bytes -> digest_from_raw());
 *   - name_is_valid(), tag_is_valid() and digest_is_wellformed() agree
 *     with the regular expressions of the OCI distribution spec (POSIX
 *     ERE, compiled once) on the input, on each of its path components
 *     and on what follows its last '/'. */
#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/routes.c"

/* routes.c's table names every handler: none is called here. */
#define STUB(f)                                                                \
	void f(struct req *r)                                                  \
	{                                                                      \
		abort();                                                       \
	}
#define STUB_BODY(f)                                                           \
	int f(struct req *r, const char *data, size_t len)                     \
	{                                                                      \
		abort();                                                       \
	}
STUB(h_base)
STUB(h_catalog)
STUB(h_tags)
STUB(h_referrers)
STUB(h_manifest_get)
STUB(h_manifest_put_start)
STUB_BODY(h_manifest_put_body)
STUB(h_manifest_put_finish)
STUB(h_manifest_delete)
STUB(h_blob_get)
STUB(h_blob_delete)
STUB(h_uploads_post_start)
STUB(h_upload_patch_start)
STUB(h_upload_put_start)
STUB_BODY(h_upload_body)
STUB(h_upload_patch_finish)
STUB(h_upload_put_finish)
STUB(h_upload_get)
STUB(h_upload_delete)
STUB(h_healthz)
STUB(h_readyz)
STUB(h_metrics)
STUB(h_token_get)
STUB(h_token_post_start)
STUB_BODY(h_token_post_body)
STUB(h_token_post_finish)
STUB(h_gc_start)
STUB_BODY(h_gc_body)
STUB(h_gc_finish)
STUB(h_admin_tags)
STUB(h_backup)
STUB(h_admin_repo_delete)

#define MAX_URL 2048

/* The spec's grammars (distribution-spec, "Pulling manifests"; the
 * image-spec's digest grammar). */
#define COMP      "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*"
#define NAME_RE   "^" COMP "(/" COMP ")*$"
#define TAG_RE    "^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$"
#define DIGEST_RE "^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"

static regex_t name_re, tag_re, digest_re;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (regcomp(&name_re, NAME_RE, REG_EXTENDED | REG_NOSUB) != 0 ||
	    regcomp(&tag_re, TAG_RE, REG_EXTENDED | REG_NOSUB) != 0 ||
	    regcomp(&digest_re, DIGEST_RE, REG_EXTENDED | REG_NOSUB) != 0)
		abort();
	return 0;
}

static int
matches(const regex_t *re, const char *s)
{
	return regexec(re, s, 0, NULL, 0) == 0;
}

static void
check_grammars(const char *s)
{
	size_t len = strlen(s);

	/* The length limits are berth's, not the expressions'. */
	if (name_is_valid(s) != (len <= NAME_MAX_LEN && matches(&name_re, s)))
		abort();
	if (tag_is_valid(s) != matches(&tag_re, s))
		abort();
	if (digest_is_wellformed(s) != matches(&digest_re, s))
		abort();
	if (digest_check(s) == RC_OK) {
		unsigned char raw[32];
		char again[DIGEST_BUF];

		if (!digest_is_wellformed(s) || len != DIGEST_STR_LEN)
			abort();
		for (int i = 0; i < 32; i++) {
			char hex[3] = {s[7 + 2 * i], s[8 + 2 * i], '\0'};
			raw[i] = (unsigned char)strtoul(hex, NULL, 16);
		}
		digest_from_raw(raw, again);
		if (strcmp(again, s) != 0)
			abort();
	}
}

static int
is_lower_uuid(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-'
		         : !((s[i] >= '0' && s[i] <= '9') ||
		             (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

/* url == "/v2/" name mid ref */
static void
check_rebuilt(const char *url, const char *name, const char *mid,
              const char *ref)
{
	size_t nl = strlen(name), ml = strlen(mid);

	if (strncmp(url, "/v2/", 4) != 0 || strncmp(url + 4, name, nl) != 0 ||
	    strncmp(url + 4 + nl, mid, ml) != 0 ||
	    strcmp(url + 4 + nl + ml, ref) != 0)
		abort();
}

static void
check_route(const char *url, enum route_kind kind, const char *name,
            const char *ref)
{
	int allowed = 0;

	if (kind <= R_NONE || kind >= R_KIND_COUNT || kind == R_TOKEN)
		abort();
	(void)route_find(kind, "GET", &allowed);
	if (!allowed)
		abort();
	switch (kind) {
	case R_TAGS:
	case R_MANIFEST:
	case R_BLOB:
	case R_UPLOADS:
	case R_UPLOAD:
	case R_REFERRERS:
		if (!name_is_valid(name) || !matches(&name_re, name))
			abort();
		break;
	case R_ADMIN_REPO: {
		size_t nl = strlen(name);
		char base[NAME_MAX_LEN + 1];

		if (nl > 3 && strcmp(name + nl - 3, "/**") == 0) {
			memcpy(base, name, nl - 3);
			base[nl - 3] = '\0';
			if (!name_is_valid(base) ||
			    strncmp(url + 20 + 4, base, nl - 3) != 0 ||
			    strcmp(url + 24 + nl - 3, "/") != 0)
				abort();
		} else if (!name_is_valid(name) ||
		           strcmp(url + 24, name) != 0) {
			abort();
		}
		if (ref[0] != '\0')
			abort();
		return;
	}
	default:
		if (name[0] != '\0' || ref[0] != '\0')
			abort();
		return;
	}
	switch (kind) {
	case R_TAGS:
		if (ref[0] != '\0')
			abort();
		check_rebuilt(url, name, "/tags/list", "");
		break;
	case R_MANIFEST:
		if (!tag_is_valid(ref) && digest_check(ref) != RC_OK)
			abort();
		check_rebuilt(url, name, "/manifests/", ref);
		break;
	case R_BLOB:
		if (digest_check(ref) != RC_OK)
			abort();
		check_rebuilt(url, name, "/blobs/", ref);
		break;
	case R_REFERRERS:
		if (digest_check(ref) != RC_OK)
			abort();
		check_rebuilt(url, name, "/referrers/", ref);
		break;
	case R_UPLOADS:
		if (ref[0] != '\0')
			abort();
		check_rebuilt(url, name, "/blobs/uploads/", "");
		break;
	case R_UPLOAD:
		if (!is_lower_uuid(ref))
			abort();
		check_rebuilt(url, name, "/blobs/uploads/", ref);
		break;
	default: abort();
	}
}

static void
parse(const char *url)
{
	/* The sizes of struct req's buffers, as server.c passes them. */
	char name[sizeof(((struct req *)0)->name)],
	        ref[sizeof(((struct req *)0)->ref)];
	enum route_kind kind = R_NONE;
	int rc = route_parse(url, &kind, name, sizeof(name), ref, sizeof(ref));

	if (rc == RC_OK)
		check_route(url, kind, name, ref);
	else if (rc != RC_NOT_FOUND && rc != RC_NAME_INVALID &&
	         rc != RC_TAG_INVALID && rc != RC_DIGEST_INVALID &&
	         rc != RC_UNSUPPORTED && rc != RC_UPLOAD_UNKNOWN)
		abort();
}

static size_t
count(const char *s, char c)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == c;
	return n;
}

static void
check_unescape(const char *url)
{
	char ours[MAX_URL + 1], mhd[MAX_URL + 1];
	size_t n;

	strcpy(ours, url);
	strcpy(mhd, url);
	n = path_unescape(ours);
	if (n != strlen(ours) || n > strlen(url) ||
	    count(ours, '/') != count(url, '/'))
		abort();
	if (strstr(url, "%00") == NULL && strcasestr(url, "%2f") == NULL &&
	    (MHD_http_unescape(mhd) != n || strcmp(mhd, ours) != 0))
		abort();
	parse(ours);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char url[MAX_URL + 1], *p, *slash;

	if (size > MAX_URL)
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	parse(url);
	check_unescape(url);
	check_grammars(url);
	if ((slash = strrchr(url, '/')) != NULL)
		check_grammars(slash + 1);
	/* each path component */
	for (p = url; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
		*slash = '\0';
		check_grammars(p);
	}
	check_grammars(p);
	return 0;
}
