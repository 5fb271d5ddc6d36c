/* Manifest endpoints: GET/HEAD/PUT/DELETE /v2/<name>/manifests/<ref>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "common/rc.h"
#include "gc/gc.h"
#include "registry/http.h"
#include "storage/blob.h"
#include "storage/manifest.h"
#include "storage/meta.h"

#define MT_OCI_CONFIG    "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define CONFIG_MAX       (4u * 1024u * 1024u) /* config read for labels */

static int
ref_is_digest(const struct req *r)
{
	return strchr(r->ref, ':') != NULL;
}

static ssize_t
no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* A response of a known size whose body is never produced (HEAD). */
struct MHD_Response *
head_response(uint64_t size)
{
	return MHD_create_response_from_callback(size, 4096, no_body, NULL,
	                                         NULL);
}

void
h_manifest_get(struct req *r)
{
	struct meta_manifest mm;
	struct MHD_Response *resp;
	int rc;

	rc = meta_manifest_read(r->app->meta, r->name, r->ref, !r->is_head,
	                        now_s(), &mm);
	if (rc != RC_OK) {
		reply_error(r, rc, NULL);
		return;
	}
	if (r->is_head) {
		resp = head_response(mm.size);
	} else {
		resp = MHD_create_response_from_buffer(mm.size, mm.body,
		                                       MHD_RESPMEM_MUST_FREE);
		if (resp == NULL)
			free(mm.body);
		r->bytes_out = mm.size;
	}
	if (resp) {
		MHD_add_response_header(resp, "Content-Type", mm.media_type);
		MHD_add_response_header(resp, "Docker-Content-Digest",
		                        mm.digest);
		req_add_header(r, "ETag", "\"%s\"", mm.digest);
	}
	reply(r, 200, resp);
}

/* A Content-Length over the limit was refused from the headers
 * (server.c); a body without one is cut at the limit here. */
void
h_manifest_put_start(struct req *r)
{
	r->limit = MANIFEST_MAX_BYTES;
}

int
h_manifest_put_body(struct req *r, const char *data, size_t len)
{
	if (len == 0 || r->too_large)
		return RC_OK;
	if (r->len + len > r->limit) {
		r->too_large = 1;
		r->err_rc = RC_TOO_LARGE;
		snprintf(r->err_detail, sizeof(r->err_detail),
		         "manifest over %zu bytes", r->limit);
		return RC_OK;
	}
	if (r->len + len > r->cap) {
		size_t cap = r->cap ? r->cap : 16384;
		char *nb;
		while (cap < r->len + len)
			cap *= 2;
		nb = realloc(r->buf, cap);
		if (nb == NULL) {
			r->err_rc = -12; /* ENOMEM */
			return r->err_rc;
		}
		r->buf = nb;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return RC_OK;
}

/* The TTL label of a pushed manifest: its annotations, else the labels of
 * an image's config (read from the blob store; a config too large to read
 * here or unreadable carries none). */
static int
ttl_of(struct req *r, const struct manifest_info *mi, uint64_t *ttl,
       const char **label, char *err, size_t errlen)
{
	char *cfg = NULL;
	size_t len = 0;
	int rc;

	if (mi->config_digest[0] != '\0' &&
	    (strcmp(mi->config_media_type, MT_OCI_CONFIG) == 0 ||
	     strcmp(mi->config_media_type, MT_DOCKER_CONFIG) == 0) &&
	    blob_read(r->app->blobs, mi->config_digest, CONFIG_MAX, &cfg,
	              &len) != RC_OK)
		cfg = NULL;
	rc = gc_ttl_of(mi->annotations_json, cfg, cfg != NULL ? len : 0, ttl,
	               label, err, errlen);
	free(cfg);
	return rc;
}

void
h_manifest_put_finish(struct req *r)
{
	struct manifest_info *mi = NULL;
	struct meta_manifest_put p;
	char digest[DIGEST_BUF], missing[DIGEST_BUF] = "", err[256] = "";
	const char *ttl_label = NULL;
	uint64_t ttl = 0;
	int rc;

	rc = manifest_parse(r->buf ? r->buf : "", r->len,
	                    req_header(r, "Content-Type"), &mi, err,
	                    sizeof(err));
	if (rc != RC_OK) {
		reply_error(r, rc, err);
		return;
	}
	digest_of_buf(r->buf ? r->buf : "", r->len, digest);
	if (ref_is_digest(r) && strcmp(digest, r->ref) != 0) {
		manifest_info_free(mi);
		reply_error(
		        r, RC_DIGEST_INVALID,
		        "the manifest's digest does not match the reference");
		return;
	}
	rc = ttl_of(r, mi, &ttl, &ttl_label, err, sizeof(err));
	if (rc != RC_OK) {
		manifest_info_free(mi);
		reply_error(r, rc, err);
		return;
	}
	p = (struct meta_manifest_put){
	        .repo = r->name,
	        .digest = digest,
	        .tag = ref_is_digest(r) ? NULL : r->ref,
	        .ttl = ttl,
	        .ttl_source = ttl_label,
	        .body = r->buf ? r->buf : "",
	        .body_len = r->len,
	        .info = mi,
	};
	rc = meta_manifest_put(r->app->meta, &p, now_s(), missing);
	if (rc == RC_OK) {
		req_add_header(r, "Location", "/v2/%s/manifests/%s", r->name,
		               digest);
		req_add_header(r, "Docker-Content-Digest", "%s", digest);
		if (mi->subject[0])
			req_add_header(r, "OCI-Subject", "%s", mi->subject);
		reply_empty(r, 201);
	} else {
		reply_error(r, rc, missing[0] ? missing : NULL);
	}
	manifest_info_free(mi);
}

/* A delete of what the cluster runs is refused: the pins of the last
 * collection run name it (a tag, or a manifest by digest). */
static int
delete_pinned(struct req *r)
{
	struct gc_pins *pins = NULL;
	const char *pin;
	int rc = stored_pins(r->app->meta, &pins);

	if (rc != RC_OK)
		return rc;
	pin = ref_is_digest(r) ? gc_pins_manifest(pins, r->name, r->ref)
	                       : gc_pins_tag(pins, r->name, r->ref);
	if (pin != NULL) {
		snprintf(r->err_detail, sizeof(r->err_detail),
		         "in use by the cluster (pin %.200s)", pin);
		rc = RC_DENIED;
	}
	gc_pins_free(pins);
	return rc;
}

void
h_manifest_delete(struct req *r)
{
	int rc = delete_pinned(r);

	if (rc != RC_OK) {
		reply_error(r, rc, rc == RC_DENIED ? r->err_detail : NULL);
		return;
	}
	if (ref_is_digest(r))
		rc = meta_manifest_delete(r->app->meta, r->name, r->ref,
		                          now_s());
	else
		rc = meta_tag_delete(r->app->meta, r->name, r->ref, now_s());
	if (rc != RC_OK)
		reply_error(r, rc, NULL);
	else
		reply_empty(r, 202);
}
