/* Parsing and validation of manifests: OCI image manifest and index, Docker
 * schema2 manifest and manifest list, and artifacts. Pure functions over
 * bytes: no storage, no HTTP. */
#ifndef BERTH_STORAGE_MANIFEST_H
#define BERTH_STORAGE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

#define MANIFEST_MAX_BYTES (4u * 1024u * 1024u)
#define MEDIA_TYPE_BUF     256

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX    "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST                                                     \
	"application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST                                                         \
	"application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_SCHEMA1_SIGNED                                               \
	"application/vnd.docker.distribution.manifest.v1+prettyjws"

/* Something a manifest references. */
struct manifest_child {
	char digest[DIGEST_BUF];
	int is_manifest; /* 1: entry of an index/list; 0: config or layer blob
	                  */
	int64_t size;    /* size from the descriptor */
};

struct manifest_info {
	char media_type[MEDIA_TYPE_BUF];    /* the type stored and served */
	char subject[DIGEST_BUF];           /* "" when no subject */
	char artifact_type[MEDIA_TYPE_BUF]; /* for referrers: artifactType, else
	                                       config.mediaType of an image
	                                       manifest, else "" */
	char *annotations_json;             /* compact JSON object or NULL */
	struct manifest_child *children;    /* unique by digest, in order */
	size_t n_children;
	int is_index; /* OCI index or docker list */
	/* An image manifest's config descriptor ("" for an index). */
	char config_digest[DIGEST_BUF];
	char config_media_type[MEDIA_TYPE_BUF];
};

/* Parses body (len bytes). content_type is the request's Content-Type
 * (parameters ignored; NULL or "" when absent). The media type is taken from
 * the body's mediaType, else from content_type, else inferred (manifests[]
 * -> OCI index, config -> OCI manifest). Errors:
 *   RC_TOO_LARGE         len > MANIFEST_MAX_BYTES
 *   RC_SCHEMA1           docker schema1 (any form)
 *   RC_MANIFEST_INVALID  not JSON, wrong schemaVersion, Content-Type and
 *                        mediaType disagree, malformed descriptor (digest
 *                        syntax, negative size, missing mediaType), layers
 *                        or manifests not arrays, ...
 * On error a one-line reason is written into err (errlen bytes, may be 0).
 * Unknown media types with a valid descriptor structure are accepted
 * (artifacts). */
int manifest_parse(const void *body, size_t len, const char *content_type,
                   struct manifest_info **out, char *err, size_t errlen)
        __attribute__((warn_unused_result));

void manifest_info_free(struct manifest_info *mi);

#endif
