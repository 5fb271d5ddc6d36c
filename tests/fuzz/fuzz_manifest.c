/* libFuzzer harness for manifest_parse(). Not part of `make all`.
 *
 * Build and run (from the repository root, clang installed):
 *
 *   mkdir -p build/fuzz corpus/manifest
 *   clang -std=gnu11 -D_GNU_SOURCE -I. -g -O1 \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     tests/fuzz/fuzz_manifest.c storage/manifest.c common/digest.c \
 *     common/rc.c $(pkg-config --cflags --libs jansson libcrypto) \
 *     -o build/fuzz/fuzz_manifest
 *   build/fuzz/fuzz_manifest -max_total_time=60 -max_len=65536 \
 *     corpus/manifest
 *
 * Seed the corpus with real manifests (a byte selecting the Content-Type,
 * then the body), e.g. from `skopeo inspect --raw`.
 *
 * Input layout: the first byte picks the Content-Type from a fixed list
 * (absent, empty, each known type, schema1, an artifact type with
 * parameters); the remaining bytes are the body. Besides crashes and
 * sanitizer reports, the harness aborts when a successful parse breaks a
 * promise of storage/manifest.h: children unique and storable, a valid
 * subject, a media type set, annotations a JSON object, and the same
 * result when the same input is parsed twice. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/rc.h"
#include "storage/manifest.h"

static const char *const content_types[] = {
        NULL,
        "",
        MT_OCI_MANIFEST,
        MT_OCI_INDEX,
        MT_DOCKER_MANIFEST,
        MT_DOCKER_LIST,
        MT_DOCKER_SCHEMA1_SIGNED,
        "application/vnd.example.artifact+json; charset=utf-8",
};

#define N_CT (sizeof(content_types) / sizeof(content_types[0]))

static void
check_info(const struct manifest_info *mi)
{
	if (mi->media_type[0] == '\0' || mi->is_index < 0 || mi->is_index > 1)
		abort();
	if ((mi->n_children == 0) != (mi->children == NULL))
		abort();
	if (mi->subject[0] != '\0' && digest_check(mi->subject) != RC_OK)
		abort();
	for (size_t i = 0; i < mi->n_children; i++) {
		const struct manifest_child *k = &mi->children[i];
		if (digest_check(k->digest) != RC_OK || k->size < 0 ||
		    k->is_manifest != mi->is_index)
			abort();
		/* Quadratic, but fuzz inputs are small. */
		for (size_t j = 0; j < i; j++)
			if (strcmp(mi->children[j].digest, k->digest) == 0)
				abort();
	}
	if (mi->annotations_json != NULL) {
		json_t *a = json_loads(mi->annotations_json, 0, NULL);
		if (!json_is_object(a))
			abort();
		json_decref(a);
	}
}

static int
same_info(const struct manifest_info *a, const struct manifest_info *b)
{
	if (strcmp(a->media_type, b->media_type) != 0 ||
	    strcmp(a->subject, b->subject) != 0 ||
	    strcmp(a->artifact_type, b->artifact_type) != 0 ||
	    a->is_index != b->is_index || a->n_children != b->n_children)
		return 0;
	if ((a->annotations_json == NULL) != (b->annotations_json == NULL))
		return 0;
	if (a->annotations_json != NULL &&
	    strcmp(a->annotations_json, b->annotations_json) != 0)
		return 0;
	for (size_t i = 0; i < a->n_children; i++)
		if (strcmp(a->children[i].digest, b->children[i].digest) != 0 ||
		    a->children[i].size != b->children[i].size ||
		    a->children[i].is_manifest != b->children[i].is_manifest)
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_info *mi = NULL, *again = NULL;
	const char *ct;
	char err[128];
	int rc;

	if (size == 0)
		return 0;
	ct = content_types[data[0] % N_CT];
	rc = manifest_parse(data + 1, size - 1, ct, &mi, err, sizeof(err));
	if (rc != RC_OK) {
		if (mi != NULL || err[0] == '\0' ||
		    memchr(err, '\n', strlen(err)) != NULL)
			abort();
		if (rc != RC_MANIFEST_INVALID && rc != RC_SCHEMA1 &&
		    rc != RC_TOO_LARGE)
			abort();
		return 0;
	}
	check_info(mi);
	if (manifest_parse(data + 1, size - 1, ct, &again, NULL, 0) != RC_OK ||
	    !same_info(mi, again))
		abort();
	manifest_info_free(again);
	manifest_info_free(mi);
	return 0;
}
