/* Manifest parsing and validation.
 *
 * Decisions recorded here because they shape what the registry accepts:
 *
 * - Duplicate object keys are rejected (JSON_REJECT_DUPLICATES). JSON leaves
 *   their meaning open: one parser keeps the first value, another the last.
 *   If berth read a different "layers" than the client that later pulls the
 *   manifest, the children berth refcounts would not be the blobs the image
 *   uses, and garbage collection could delete content that is still in use.
 *   No conforming client emits duplicate keys.
 * - A document must not be both an index and an image manifest
 *   (CVE-2021-41190, "ambiguous manifests"): an index type with "config" or
 *   "layers", or an image manifest type with "manifests", is refused, and an
 *   unknown type is classified by its shape only when that shape is
 *   unambiguous.
 * - Non-distributable ("foreign") layers, recognised by a layer mediaType
 *   containing "nondistributable" or "foreign", are validated but are not
 *   children: their bytes usually live elsewhere (the descriptor's "urls"), so
 *   the registry neither requires nor keeps them. Their digest only needs to
 *   be well-formed, since berth never stores it. This applies to entries of
 *   "layers" only; config, index entries and subject are always children
 *   (or the subject link) and need a storable digest. A client that pushed
 *   such a layer anyway finds it collected after the grace period, as
 *   nothing references it.
 * - Every other descriptor digest must be a sha256 digest: berth addresses
 *   content by sha256 only, so a well-formed sha512 child could never be
 *   linked and is refused with a clear message.
 * - Two descriptors naming the same digest with different sizes are refused:
 *   one of them is wrong, and berth cannot know which.
 * - Content-Type and a body mediaType are compared case-insensitively (media
 *   types are case-insensitive by RFC 6838); the body's spelling is stored.
 */
#include "storage/manifest.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/rc.h"

enum shape {
	SHAPE_NONE,
	SHAPE_IMAGE,
	SHAPE_INDEX,
};

/* A descriptor after validation; strings point into the JSON document. */
struct desc {
	const char *media_type;
	const char *digest;
	int64_t size;
	int foreign; /* a non-distributable layer: not a child */
};

struct parse_ctx {
	char *err;
	size_t errlen;
	struct manifest_child *kids;
	size_t n_kids;
	size_t cap_kids;
	struct manifest_info *mi;
};

static void __attribute__((format(printf, 2, 3)))
ctx_err(struct parse_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err == NULL || c->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	/* Values quoted from the request must not break the line. */
	for (char *p = c->err; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

static int
is_alpha_digit(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9');
}

/* restricted-name of RFC 6838 section 4.2 over [s, e). */
static int
restricted_name_is_valid(const char *s, const char *e)
{
	if (e <= s || e - s > 127 || !is_alpha_digit(*s))
		return 0;
	for (const char *p = s + 1; p < e; p++)
		if (!is_alpha_digit(*p) && strchr("!#$&-^_.+", *p) == NULL)
			return 0;
	return 1;
}

/* type "/" subtype, each a restricted-name, short enough to store. */
static int
media_type_is_valid(const char *s)
{
	const char *slash;
	size_t len;

	if (s == NULL)
		return 0;
	len = strlen(s);
	if (len == 0 || len >= MEDIA_TYPE_BUF)
		return 0;
	slash = strchr(s, '/');
	if (slash == NULL)
		return 0;
	return restricted_name_is_valid(s, slash) &&
	       restricted_name_is_valid(slash + 1, s + len);
}

static int
is_schema1_type(const char *mt)
{
	return strcasecmp(mt, MT_DOCKER_SCHEMA1) == 0 ||
	       strcasecmp(mt, MT_DOCKER_SCHEMA1_SIGNED) == 0;
}

static int
is_nondistributable(const char *mt)
{
	return strcasestr(mt, "nondistributable") != NULL ||
	       strcasestr(mt, "foreign") != NULL;
}

/* Copies the media type of a Content-Type header into out: parameters and
 * surrounding whitespace dropped; "" when absent. */
static int
content_type_strip(struct parse_ctx *c, const char *ct,
                   char out[MEDIA_TYPE_BUF])
{
	const char *s, *e;

	out[0] = '\0';
	if (ct == NULL)
		return RC_OK;
	s = ct;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s;
	while (*e != '\0' && *e != ';')
		e++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if ((size_t)(e - s) >= MEDIA_TYPE_BUF) {
		ctx_err(c, "content type is too long");
		return RC_MANIFEST_INVALID;
	}
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
	return RC_OK;
}

/* 1 if v is an object whose values are all strings. */
static int
is_string_map(json_t *v)
{
	const char *k;
	json_t *x;

	if (!json_is_object(v))
		return 0;
	json_object_foreach(v, k, x)
	{
		if (!json_is_string(x))
			return 0;
	}
	return 1;
}

static int
is_string_array(json_t *v)
{
	size_t i;
	json_t *x;

	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, x)
	{
		if (!json_is_string(x))
			return 0;
	}
	return 1;
}

/* Validates one descriptor; where names it in messages ("config",
 * "layers[2]"). foreign_ok: the descriptor may be a non-distributable
 * layer, whose digest need only be well-formed; any other digest must be
 * one berth can store. */
static int
desc_parse(struct parse_ctx *c, json_t *d, const char *where, int foreign_ok,
           struct desc *out)
{
	json_t *mt, *dg, *sz, *x;
	int foreign, rc;

	if (!json_is_object(d)) {
		ctx_err(c, "%s: descriptor must be an object", where);
		return RC_MANIFEST_INVALID;
	}
	mt = json_object_get(d, "mediaType");
	if (!json_is_string(mt) ||
	    !media_type_is_valid(json_string_value(mt))) {
		ctx_err(c, "%s: mediaType missing or invalid", where);
		return RC_MANIFEST_INVALID;
	}
	dg = json_object_get(d, "digest");
	if (!json_is_string(dg) ||
	    !digest_is_wellformed(json_string_value(dg))) {
		ctx_err(c, "%s: descriptor digest missing or malformed", where);
		return RC_MANIFEST_INVALID;
	}
	foreign = foreign_ok && is_nondistributable(json_string_value(mt));
	if (!foreign) {
		rc = digest_check(json_string_value(dg));
		if (rc == RC_UNSUPPORTED) {
			ctx_err(c, "%s: unsupported digest %.80s (sha256 only)",
			        where, json_string_value(dg));
			return RC_MANIFEST_INVALID;
		}
		if (rc != RC_OK) {
			ctx_err(c,
			        "%s: digest %.80s is not a valid sha256 digest",
			        where, json_string_value(dg));
			return RC_MANIFEST_INVALID;
		}
	}
	sz = json_object_get(d, "size");
	if (!json_is_integer(sz) || json_integer_value(sz) < 0) {
		ctx_err(c, "%s: size must be a non-negative integer", where);
		return RC_MANIFEST_INVALID;
	}
	x = json_object_get(d, "urls");
	if (x != NULL && !is_string_array(x)) {
		ctx_err(c, "%s: descriptor urls must be an array of strings",
		        where);
		return RC_MANIFEST_INVALID;
	}
	x = json_object_get(d, "annotations");
	if (x != NULL && !is_string_map(x)) {
		ctx_err(c, "%s: annotations must map strings to strings",
		        where);
		return RC_MANIFEST_INVALID;
	}
	x = json_object_get(d, "data");
	if (x != NULL && !json_is_string(x)) {
		ctx_err(c, "%s: descriptor data must be a string", where);
		return RC_MANIFEST_INVALID;
	}
	x = json_object_get(d, "artifactType");
	if (x != NULL && !(json_is_string(x) &&
	                   (json_string_length(x) == 0 ||
	                    media_type_is_valid(json_string_value(x))))) {
		ctx_err(c,
		        "%s: descriptor artifactType is not a valid media type",
		        where);
		return RC_MANIFEST_INVALID;
	}
	out->media_type = json_string_value(mt);
	out->digest = json_string_value(dg);
	out->size = (int64_t)json_integer_value(sz);
	out->foreign = foreign;
	return RC_OK;
}

static int
kid_add(struct parse_ctx *c, const struct desc *d, int is_manifest)
{
	struct manifest_child *k;

	/* Callers pass descriptors checked by desc_parse; refuse anything
	 * else rather than store a truncated digest. */
	if (digest_check(d->digest) != RC_OK) {
		ctx_err(c, "digest %.80s cannot be stored", d->digest);
		return RC_MANIFEST_INVALID;
	}
	if (c->n_kids == c->cap_kids) {
		size_t cap = c->cap_kids ? c->cap_kids * 2 : 8;
		struct manifest_child *n = realloc(c->kids, cap * sizeof(*n));
		if (n == NULL) {
			ctx_err(c, "out of memory");
			return -ENOMEM;
		}
		c->kids = n;
		c->cap_kids = cap;
	}
	k = &c->kids[c->n_kids++];
	memset(k, 0, sizeof(*k));
	memcpy(k->digest, d->digest, DIGEST_STR_LEN);
	k->digest[DIGEST_STR_LEN] = '\0';
	k->is_manifest = is_manifest;
	k->size = d->size;
	return RC_OK;
}

/* Descriptors of an array member (key) added as children. */
static int
desc_array_parse(struct parse_ctx *c, json_t *root, const char *key,
                 int required, int is_manifest)
{
	json_t *arr = json_object_get(root, key), *d;
	char where[48];
	struct desc de;
	size_t i;
	int rc;

	if (arr == NULL) {
		if (!required)
			return RC_OK;
		ctx_err(c, "%s is required", key);
		return RC_MANIFEST_INVALID;
	}
	if (!json_is_array(arr)) {
		ctx_err(c, "%s must be an array", key);
		return RC_MANIFEST_INVALID;
	}
	json_array_foreach(arr, i, d)
	{
		snprintf(where, sizeof(where), "%s[%zu]", key, i);
		rc = desc_parse(c, d, where, !is_manifest, &de);
		if (rc != RC_OK)
			return rc;
		if (de.foreign)
			continue;
		rc = kid_add(c, &de, is_manifest);
		if (rc != RC_OK)
			return rc;
	}
	return RC_OK;
}

static int
kid_cmp(const void *a, const void *b)
{
	const struct manifest_child *const *x = a, *const *y = b;
	int r = strcmp((*x)->digest, (*y)->digest);

	if (r != 0)
		return r;
	return *x < *y ? -1 : *x > *y;
}

/* Keeps the first occurrence of each digest, in document order. Sorting
 * pointers keeps this O(n log n) for manifests with many descriptors. */
static int
kids_dedup(struct parse_ctx *c)
{
	struct manifest_child **ord;
	unsigned char *drop;
	size_t i, w;

	if (c->n_kids < 2)
		return RC_OK;
	ord = malloc(c->n_kids * sizeof(*ord));
	drop = calloc(c->n_kids, 1);
	if (ord == NULL || drop == NULL) {
		free(ord);
		free(drop);
		ctx_err(c, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < c->n_kids; i++)
		ord[i] = &c->kids[i];
	qsort(ord, c->n_kids, sizeof(*ord), kid_cmp);
	for (i = 1; i < c->n_kids; i++) {
		if (strcmp(ord[i]->digest, ord[i - 1]->digest) != 0)
			continue;
		if (ord[i]->size != ord[i - 1]->size) {
			ctx_err(c, "descriptors of %s disagree on size",
			        ord[i]->digest);
			free(ord);
			free(drop);
			return RC_MANIFEST_INVALID;
		}
		drop[ord[i] - c->kids] = 1;
	}
	for (i = 0, w = 0; i < c->n_kids; i++)
		if (!drop[i])
			c->kids[w++] = c->kids[i];
	c->n_kids = w;
	free(ord);
	free(drop);
	return RC_OK;
}

/* Picks the stored media type and the shape of the document. */
static int
classify(struct parse_ctx *c, json_t *root, const char *body_mt, const char *ct,
         char mt_out[MEDIA_TYPE_BUF], enum shape *shape)
{
	int has_manifests = json_object_get(root, "manifests") != NULL;
	int has_config = json_object_get(root, "config") != NULL;
	int has_layers = json_object_get(root, "layers") != NULL;
	const char *mt = body_mt[0] ? body_mt : ct;
	enum shape sh = SHAPE_NONE;

	if (mt[0] == '\0') {
		if (has_manifests && !has_config && !has_layers)
			mt = MT_OCI_INDEX;
		else if (has_config && !has_manifests)
			mt = MT_OCI_MANIFEST;
		else {
			ctx_err(c, "no media type and no manifests or config");
			return RC_MANIFEST_INVALID;
		}
	}
	if (!media_type_is_valid(mt)) {
		ctx_err(c, "media type %.80s is not valid", mt);
		return RC_MANIFEST_INVALID;
	}
	if (strcasecmp(mt, MT_OCI_INDEX) == 0 ||
	    strcasecmp(mt, MT_DOCKER_LIST) == 0)
		sh = SHAPE_INDEX;
	else if (strcasecmp(mt, MT_OCI_MANIFEST) == 0 ||
	         strcasecmp(mt, MT_DOCKER_MANIFEST) == 0)
		sh = SHAPE_IMAGE;
	else if (has_manifests && !has_config && !has_layers)
		sh = SHAPE_INDEX;
	else if (has_config && !has_manifests)
		sh = SHAPE_IMAGE;
	if (sh == SHAPE_NONE) {
		ctx_err(c, "%.80s: body has neither manifests nor config", mt);
		return RC_MANIFEST_INVALID;
	}
	if (sh == SHAPE_INDEX && (has_config || has_layers)) {
		ctx_err(c, "index %.80s must not contain config or layers", mt);
		return RC_MANIFEST_INVALID;
	}
	if (sh == SHAPE_IMAGE && has_manifests) {
		ctx_err(c, "image manifest %.80s must not contain manifests",
		        mt);
		return RC_MANIFEST_INVALID;
	}
	snprintf(mt_out, MEDIA_TYPE_BUF, "%s", mt);
	*shape = sh;
	return RC_OK;
}

/* Header fields: schema1 detection, schemaVersion, mediaType agreement. */
static int
check_header(struct parse_ctx *c, json_t *root, const char *ct,
             char body_mt[MEDIA_TYPE_BUF])
{
	json_t *mt = json_object_get(root, "mediaType");
	json_t *sv = json_object_get(root, "schemaVersion");

	body_mt[0] = '\0';
	if (json_is_string(mt) && is_schema1_type(json_string_value(mt))) {
		ctx_err(c, "docker schema1 manifests are not supported");
		return RC_SCHEMA1;
	}
	if (json_is_integer(sv) && json_integer_value(sv) == 1) {
		ctx_err(c, "schemaVersion 1 (docker schema1) is not supported");
		return RC_SCHEMA1;
	}
	if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
		ctx_err(c, "schemaVersion must be the integer 2");
		return RC_MANIFEST_INVALID;
	}
	if (mt != NULL) {
		if (!json_is_string(mt) ||
		    !media_type_is_valid(json_string_value(mt))) {
			ctx_err(c, "mediaType must be a valid media type");
			return RC_MANIFEST_INVALID;
		}
		snprintf(body_mt, MEDIA_TYPE_BUF, "%s", json_string_value(mt));
	}
	if (body_mt[0] != '\0' && ct[0] != '\0' &&
	    strcasecmp(ct, body_mt) != 0) {
		ctx_err(c, "content type %.80s does not match mediaType %.80s",
		        ct, body_mt);
		return RC_MANIFEST_INVALID;
	}
	return RC_OK;
}

/* subject, artifactType and annotations into mi. */
static int
parse_extras(struct parse_ctx *c, json_t *root, enum shape sh,
             struct manifest_info *mi)
{
	json_t *x;
	struct desc de;
	int rc;

	x = json_object_get(root, "subject");
	if (x != NULL) {
		rc = desc_parse(c, x, "subject", 0, &de);
		if (rc != RC_OK)
			return rc;
		snprintf(mi->subject, sizeof(mi->subject), "%s", de.digest);
	}

	x = json_object_get(root, "artifactType");
	if (x != NULL && !json_is_string(x)) {
		ctx_err(c, "artifactType must be a string");
		return RC_MANIFEST_INVALID;
	}
	if (x != NULL && json_string_length(x) > 0) {
		if (!media_type_is_valid(json_string_value(x))) {
			ctx_err(c, "artifactType is not a valid media type");
			return RC_MANIFEST_INVALID;
		}
		snprintf(mi->artifact_type, sizeof(mi->artifact_type), "%s",
		         json_string_value(x));
	} else if (sh == SHAPE_IMAGE) {
		/* config was validated by desc_parse: a valid media type. */
		x = json_object_get(json_object_get(root, "config"),
		                    "mediaType");
		snprintf(mi->artifact_type, sizeof(mi->artifact_type), "%s",
		         json_string_value(x));
	}

	x = json_object_get(root, "annotations");
	if (x != NULL) {
		if (!is_string_map(x)) {
			ctx_err(c, "annotations must map strings to strings");
			return RC_MANIFEST_INVALID;
		}
		mi->annotations_json = json_dumps(x, JSON_COMPACT);
		if (mi->annotations_json == NULL) {
			ctx_err(c, "out of memory");
			return -ENOMEM;
		}
	}
	return RC_OK;
}

static int
parse_children(struct parse_ctx *c, json_t *root, const char *mt, enum shape sh)
{
	struct desc de;
	int rc;

	if (sh == SHAPE_INDEX)
		return desc_array_parse(c, root, "manifests", 1, 1);
	if (json_object_get(root, "config") == NULL) {
		ctx_err(c, "config is required in %.80s", mt);
		return RC_MANIFEST_INVALID;
	}
	rc = desc_parse(c, json_object_get(root, "config"), "config", 0, &de);
	if (rc != RC_OK)
		return rc;
	rc = kid_add(c, &de, 0);
	if (rc != RC_OK)
		return rc;
	snprintf(c->mi->config_digest, sizeof(c->mi->config_digest), "%s",
	         de.digest);
	snprintf(c->mi->config_media_type, sizeof(c->mi->config_media_type),
	         "%s", de.media_type);
	/* Docker schema2 requires layers; OCI lets an image manifest (an
	 * artifact) carry none. */
	return desc_array_parse(c, root, "layers",
	                        strcasecmp(mt, MT_DOCKER_MANIFEST) == 0, 0);
}

int
manifest_parse(const void *body, size_t len, const char *content_type,
               struct manifest_info **out, char *err, size_t errlen)
{
	struct parse_ctx c = {.err = err, .errlen = errlen};
	struct manifest_info *mi = NULL;
	char ct[MEDIA_TYPE_BUF], body_mt[MEDIA_TYPE_BUF];
	json_t *root = NULL;
	json_error_t jerr;
	enum shape sh = SHAPE_NONE;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > MANIFEST_MAX_BYTES) {
		ctx_err(&c, "manifest is larger than %u bytes",
		        MANIFEST_MAX_BYTES);
		return RC_TOO_LARGE;
	}
	if (body == NULL && len > 0) {
		ctx_err(&c, "no manifest body");
		return RC_MANIFEST_INVALID;
	}
	rc = content_type_strip(&c, content_type, ct);
	if (rc != RC_OK)
		return rc;
	if (is_schema1_type(ct)) {
		ctx_err(&c, "docker schema1 manifests are not supported");
		return RC_SCHEMA1;
	}
	root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		ctx_err(&c, "manifest is not valid JSON: line %d column %d: %s",
		        jerr.line, jerr.column, jerr.text);
		return RC_MANIFEST_INVALID;
	}
	if (!json_is_object(root)) {
		ctx_err(&c, "manifest is not a JSON object");
		rc = RC_MANIFEST_INVALID;
		goto fail;
	}
	mi = calloc(1, sizeof(*mi));
	c.mi = mi;
	if (mi == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = check_header(&c, root, ct, body_mt)) != RC_OK ||
	    (rc = classify(&c, root, body_mt, ct, mi->media_type, &sh)) !=
	            RC_OK ||
	    (rc = parse_children(&c, root, mi->media_type, sh)) != RC_OK ||
	    (rc = parse_extras(&c, root, sh, mi)) != RC_OK ||
	    (rc = kids_dedup(&c)) != RC_OK)
		goto fail;
	mi->is_index = sh == SHAPE_INDEX;
	if (c.n_kids > 0) {
		mi->children = c.kids;
		mi->n_children = c.n_kids;
	} else {
		free(c.kids);
	}
	json_decref(root);
	*out = mi;
	return RC_OK;

fail:
	free(c.kids);
	manifest_info_free(mi);
	json_decref(root);
	return rc;
}

void
manifest_info_free(struct manifest_info *mi)
{
	if (mi == NULL)
		return;
	free(mi->annotations_json);
	free(mi->children);
	free(mi);
}
