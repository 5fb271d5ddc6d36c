/* Unit tests for storage/manifest.c: every accepted manifest family and the
 * reasons a manifest is refused.
 *
 * The manifests below are JSON built from string macros; laid out by hand
 * they read as JSON, while clang-format breaks them at arbitrary tokens, so
 * formatting is off for this file. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/rc.h"
#include "storage/manifest.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define HEX_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define DA "sha256:" HEX_A
#define DB "sha256:" HEX_B
#define DC "sha256:" HEX_C
#define DD "sha256:" HEX_D
/* sha256 of the two bytes "{}" */
#define D_EMPTY "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_EMPTY "application/vnd.oci.empty.v1+json"
#define MT_DCONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DLAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"

#define DESC(mt, dg, sz) "{\"mediaType\":\"" mt "\",\"digest\":\"" dg "\",\"size\":" #sz "}"

#define OCI_MANIFEST                                                          \
	"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","         \
	"\"config\":" DESC(MT_CONFIG, DA, 1469) ","                           \
	"\"layers\":[" DESC(MT_LAYER, DB, 5312) "," DESC(MT_LAYER, DC, 77) "]}"

#define OCI_INDEX                                                             \
	"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\","            \
	"\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" DA \
	"\",\"size\":7143,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}," \
	"{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" DB             \
	"\",\"size\":7682,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}}]}"

static char errbuf[256];

static int
parse(const char *json, const char *ct, struct manifest_info **mi)
{
	memset(errbuf, 0, sizeof(errbuf));
	return manifest_parse(json, strlen(json), ct, mi, errbuf, sizeof(errbuf));
}

/* Asserts that json is refused with want, that out stays untouched and that
 * the reason is one non-empty line. */
static void
expect_fail(const char *json, const char *ct, int want)
{
	struct manifest_info *mi = (struct manifest_info *)0x1;
	int rc = parse(json, ct, &mi);

	if (rc != want)
		print_error("parse(%s) = %d (%s), want %d\n", json, rc, errbuf, want);
	assert_int_equal(rc, want);
	assert_ptr_equal(mi, (struct manifest_info *)0x1);
	assert_true(errbuf[0] != '\0');
	assert_null(strchr(errbuf, '\n'));
}

static struct manifest_info *
expect_ok(const char *json, const char *ct)
{
	struct manifest_info *mi = NULL;
	int rc = parse(json, ct, &mi);

	if (rc != RC_OK)
		print_error("parse(%s) = %d: %s\n", json, rc, errbuf);
	assert_int_equal(rc, RC_OK);
	assert_non_null(mi);
	return mi;
}

static void
test_oci_manifest(void **state)
{
	struct manifest_info *mi = expect_ok(OCI_MANIFEST, MT_OCI_MANIFEST);

	assert_string_equal(mi->media_type, MT_OCI_MANIFEST);
	assert_int_equal(mi->is_index, 0);
	assert_int_equal(mi->n_children, 3);
	assert_string_equal(mi->children[0].digest, DA);
	assert_int_equal(mi->children[0].size, 1469);
	assert_int_equal(mi->children[0].is_manifest, 0);
	assert_string_equal(mi->children[1].digest, DB);
	assert_int_equal(mi->children[1].size, 5312);
	assert_string_equal(mi->children[2].digest, DC);
	assert_int_equal(mi->children[2].is_manifest, 0);
	assert_string_equal(mi->subject, "");
	assert_string_equal(mi->artifact_type, MT_CONFIG);
	assert_null(mi->annotations_json);
	manifest_info_free(mi);
}

static void
test_oci_index(void **state)
{
	struct manifest_info *mi = expect_ok(OCI_INDEX, MT_OCI_INDEX);

	assert_string_equal(mi->media_type, MT_OCI_INDEX);
	assert_int_equal(mi->is_index, 1);
	assert_int_equal(mi->n_children, 2);
	assert_string_equal(mi->children[0].digest, DA);
	assert_int_equal(mi->children[0].is_manifest, 1);
	assert_int_equal(mi->children[0].size, 7143);
	assert_string_equal(mi->children[1].digest, DB);
	assert_int_equal(mi->children[1].is_manifest, 1);
	assert_string_equal(mi->artifact_type, "");
	manifest_info_free(mi);
}

static void
test_oci_index_empty_and_artifact_type(void **state)
{
	struct manifest_info *mi = expect_ok(
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\","
		"\"artifactType\":\"application/vnd.example.sbom\",\"manifests\":[]}",
		NULL);

	assert_int_equal(mi->is_index, 1);
	assert_int_equal(mi->n_children, 0);
	assert_null(mi->children);
	assert_string_equal(mi->artifact_type, "application/vnd.example.sbom");
	manifest_info_free(mi);
}

static void
test_docker_schema2(void **state)
{
	struct manifest_info *mi = expect_ok(
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
		"\"config\":" DESC(MT_DCONFIG, DA, 7023) ","
		"\"layers\":[" DESC(MT_DLAYER, DB, 32654) "," DESC(MT_DLAYER, DC, 16724) "]}",
		MT_DOCKER_MANIFEST);

	assert_string_equal(mi->media_type, MT_DOCKER_MANIFEST);
	assert_int_equal(mi->is_index, 0);
	assert_int_equal(mi->n_children, 3);
	assert_string_equal(mi->children[0].digest, DA);
	assert_string_equal(mi->children[2].digest, DC);
	assert_int_equal(mi->children[2].size, 16724);
	assert_string_equal(mi->artifact_type, MT_DCONFIG);
	manifest_info_free(mi);
}

static void
test_docker_list(void **state)
{
	struct manifest_info *mi = expect_ok(
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_LIST "\","
		"\"manifests\":[{\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"size\":7143,"
		"\"digest\":\"" DC "\",\"platform\":{\"architecture\":\"ppc64le\","
		"\"os\":\"linux\"}}]}",
		MT_DOCKER_LIST);

	assert_string_equal(mi->media_type, MT_DOCKER_LIST);
	assert_int_equal(mi->is_index, 1);
	assert_int_equal(mi->n_children, 1);
	assert_string_equal(mi->children[0].digest, DC);
	assert_int_equal(mi->children[0].is_manifest, 1);
	manifest_info_free(mi);
}

static void
test_artifact_empty_config(void **state)
{
	/* The image-spec's artifact guidance: empty config, and the empty
	 * descriptor again as the only layer. */
	struct manifest_info *mi = expect_ok(
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
		"\"artifactType\":\"application/vnd.example+type\","
		"\"config\":{\"mediaType\":\"" MT_EMPTY "\",\"digest\":\"" D_EMPTY
		"\",\"size\":2,\"data\":\"e30=\"},"
		"\"layers\":[" DESC(MT_EMPTY, D_EMPTY, 2) "]}",
		MT_OCI_MANIFEST);

	assert_string_equal(mi->artifact_type, "application/vnd.example+type");
	assert_int_equal(mi->n_children, 1);
	assert_string_equal(mi->children[0].digest, D_EMPTY);
	assert_int_equal(mi->children[0].size, 2);
	manifest_info_free(mi);
}

static void
test_artifact_unknown_media_types(void **state)
{
	struct manifest_info *mi;

	/* Unknown top-level type shaped like an image manifest. */
	mi = expect_ok("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example.thing.v1+json\","
		       "\"config\":" DESC("application/vnd.example.config", DA, 3) ","
		       "\"layers\":[" DESC("application/x-anything", DB, 9) "]}",
		       "application/vnd.example.thing.v1+json");
	assert_string_equal(mi->media_type, "application/vnd.example.thing.v1+json");
	assert_int_equal(mi->is_index, 0);
	assert_int_equal(mi->n_children, 2);
	assert_string_equal(mi->artifact_type, "application/vnd.example.config");
	manifest_info_free(mi);

	/* Unknown top-level type shaped like an index. */
	mi = expect_ok("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example.list\","
		       "\"manifests\":[" DESC(MT_OCI_MANIFEST, DC, 10) "]}",
		       NULL);
	assert_int_equal(mi->is_index, 1);
	assert_int_equal(mi->children[0].is_manifest, 1);
	manifest_info_free(mi);

	/* Unknown type shaped like neither. */
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example.x\"}",
		    NULL, RC_MANIFEST_INVALID);
}

static void
test_empty_artifact_type_falls_back(void **state)
{
	struct manifest_info *mi = expect_ok(
		"{\"schemaVersion\":2,\"artifactType\":\"\","
		"\"config\":" DESC("application/vnd.cncf.helm.config.v1+json", DA, 3) "}",
		NULL);

	assert_string_equal(mi->artifact_type, "application/vnd.cncf.helm.config.v1+json");
	assert_int_equal(mi->n_children, 1);
	manifest_info_free(mi);
}

static void
test_subject(void **state)
{
	struct manifest_info *mi = expect_ok(
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
		"\"artifactType\":\"application/vnd.example.signature\","
		"\"config\":" DESC(MT_EMPTY, D_EMPTY, 2) ","
		"\"layers\":[" DESC("application/vnd.example.sig", DB, 120) "],"
		"\"subject\":" DESC(MT_OCI_MANIFEST, DD, 7682) "}",
		NULL);

	assert_string_equal(mi->subject, DD);
	/* The subject is a weak link, not a child. */
	assert_int_equal(mi->n_children, 2);
	assert_string_not_equal(mi->children[0].digest, DD);
	assert_string_not_equal(mi->children[1].digest, DD);
	manifest_info_free(mi);

	mi = expect_ok("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\","
		       "\"manifests\":[],\"subject\":" DESC(MT_OCI_INDEX, DA, 50) "}",
		       NULL);
	assert_string_equal(mi->subject, DA);
	manifest_info_free(mi);

	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 1)
		    ",\"subject\":\"" DD "\"}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 1)
		    ",\"subject\":" DESC(MT_OCI_MANIFEST, "sha256:1234", 1) "}",
		    NULL, RC_MANIFEST_INVALID);
}

static void
test_annotations(void **state)
{
	struct manifest_info *mi = expect_ok(
		"{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 1) ","
		"\"annotations\": {\"org.opencontainers.image.created\" : "
		"\"2024-01-02T03:04:05Z\", \"berth.expires-after\": \"2d\"}}",
		NULL);

	assert_non_null(mi->annotations_json);
	assert_string_equal(mi->annotations_json,
			    "{\"org.opencontainers.image.created\":\"2024-01-02T03:04:05Z\","
			    "\"berth.expires-after\":\"2d\"}");
	manifest_info_free(mi);

	mi = expect_ok("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 1)
		       ",\"annotations\":{}}",
		       NULL);
	assert_string_equal(mi->annotations_json, "{}");
	manifest_info_free(mi);

	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 1)
		    ",\"annotations\":{\"a\":1}}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 1)
		    ",\"annotations\":[\"a\"]}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 1)
		    ",\"annotations\":null}",
		    NULL, RC_MANIFEST_INVALID);
	/* Descriptor annotations follow the same rule. */
	expect_fail("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_CONFIG
		    "\",\"digest\":\"" DA "\",\"size\":1,\"annotations\":{\"a\":true}}}",
		    NULL, RC_MANIFEST_INVALID);
}

static void
test_duplicate_children(void **state)
{
	struct manifest_info *mi = expect_ok(
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
		"\"config\":" DESC(MT_CONFIG, DC, 10) ","
		"\"layers\":[" DESC(MT_LAYER, DB, 5) "," DESC(MT_LAYER, DA, 6) ","
		DESC(MT_LAYER, DB, 5) "," DESC(MT_LAYER, DC, 10) ","
		DESC(MT_LAYER, DA, 6) "]}",
		NULL);

	assert_int_equal(mi->n_children, 3);
	assert_string_equal(mi->children[0].digest, DC);
	assert_string_equal(mi->children[1].digest, DB);
	assert_string_equal(mi->children[2].digest, DA);
	manifest_info_free(mi);

	mi = expect_ok("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\","
		       "\"manifests\":[" DESC(MT_OCI_MANIFEST, DA, 1) ","
		       DESC(MT_OCI_MANIFEST, DA, 1) "]}",
		       NULL);
	assert_int_equal(mi->n_children, 1);
	manifest_info_free(mi);

	/* The same digest cannot have two sizes. */
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DC, 10) ","
		    "\"layers\":[" DESC(MT_LAYER, DC, 11) "]}",
		    NULL, RC_MANIFEST_INVALID);
}

static void
test_many_children(void **state)
{
	/* Large manifests are handled without quadratic behaviour; every
	 * other layer repeats so half of them are dropped. */
	enum { N = 20000 };
	size_t cap = 200 + (size_t)N * 192, off = 0;
	char *buf = malloc(cap);
	struct manifest_info *mi;

	assert_non_null(buf);
	off += (size_t)snprintf(buf + off, cap - off,
				"{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 1)
				",\"layers\":[");
	for (int i = 0; i < N; i++)
		off += (size_t)snprintf(buf + off, cap - off,
					"%s{\"mediaType\":\"" MT_LAYER "\",\"digest\":"
					"\"sha256:%064x\",\"size\":%d}",
					i ? "," : "", i / 2 + 1, i / 2);
	assert_true(off < cap);
	off += (size_t)snprintf(buf + off, cap - off, "]}");
	assert_true(off < cap);
	mi = expect_ok(buf, NULL);
	assert_int_equal(mi->n_children, 1 + N / 2);
	assert_string_equal(mi->children[1].digest,
			    "sha256:0000000000000000000000000000000000000000000000000000000000000001");
	assert_int_equal(mi->children[N / 2].size, N / 2 - 1);
	manifest_info_free(mi);
	free(buf);
}

static void
test_schema1(void **state)
{
	const char *s1 = "{\"schemaVersion\":1,\"name\":\"library/x\",\"tag\":\"latest\","
			 "\"architecture\":\"amd64\",\"fsLayers\":[{\"blobSum\":\"" DA "\"}],"
			 "\"history\":[]}";

	expect_fail(s1, NULL, RC_SCHEMA1);
	expect_fail(s1, MT_DOCKER_SCHEMA1, RC_SCHEMA1);
	expect_fail(s1, MT_DOCKER_SCHEMA1_SIGNED, RC_SCHEMA1);
	expect_fail("{\"schemaVersion\":1,\"mediaType\":\"" MT_DOCKER_SCHEMA1 "\"}",
		    NULL, RC_SCHEMA1);
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_SCHEMA1_SIGNED "\"}",
		    NULL, RC_SCHEMA1);
	/* Content-Type alone is enough, even before the body parses. */
	expect_fail("not json", MT_DOCKER_SCHEMA1_SIGNED "; charset=utf-8", RC_SCHEMA1);
}

static void
test_content_type_mismatch(void **state)
{
	expect_fail(OCI_MANIFEST, MT_OCI_INDEX, RC_MANIFEST_INVALID);
	assert_non_null(strstr(errbuf, "does not match"));
	expect_fail(OCI_MANIFEST, "application/json", RC_MANIFEST_INVALID);
	expect_fail(OCI_INDEX, MT_DOCKER_LIST, RC_MANIFEST_INVALID);
}

static void
test_content_type_parameters(void **state)
{
	struct manifest_info *mi;

	mi = expect_ok(OCI_MANIFEST, MT_OCI_MANIFEST "; charset=utf-8");
	assert_string_equal(mi->media_type, MT_OCI_MANIFEST);
	manifest_info_free(mi);
	mi = expect_ok(OCI_MANIFEST, "  " MT_OCI_MANIFEST " ;q=1");
	assert_string_equal(mi->media_type, MT_OCI_MANIFEST);
	manifest_info_free(mi);
	/* Empty or parameter-only headers count as absent. */
	mi = expect_ok(OCI_INDEX, "");
	assert_string_equal(mi->media_type, MT_OCI_INDEX);
	manifest_info_free(mi);
	mi = expect_ok(OCI_INDEX, " ; x=y");
	assert_string_equal(mi->media_type, MT_OCI_INDEX);
	manifest_info_free(mi);
}

static void
test_no_media_type_uses_content_type(void **state)
{
	const char *body = "{\"schemaVersion\":2,\"config\":" DESC(MT_DCONFIG, DA, 5) ","
			   "\"layers\":[" DESC(MT_DLAYER, DB, 6) "]}";
	struct manifest_info *mi;

	mi = expect_ok(body, MT_DOCKER_MANIFEST);
	assert_string_equal(mi->media_type, MT_DOCKER_MANIFEST);
	assert_int_equal(mi->n_children, 2);
	manifest_info_free(mi);

	mi = expect_ok(body, "application/vnd.example.artifact.v1+json; v=2");
	assert_string_equal(mi->media_type, "application/vnd.example.artifact.v1+json");
	manifest_info_free(mi);

	/* The Content-Type decides the shape, and the body must fit it. */
	expect_fail(body, MT_OCI_INDEX, RC_MANIFEST_INVALID);
	expect_fail(body, "not a media type", RC_MANIFEST_INVALID);
}

static void
test_inferred(void **state)
{
	struct manifest_info *mi;

	mi = expect_ok("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 5)
		       ",\"layers\":[]}",
		       NULL);
	assert_string_equal(mi->media_type, MT_OCI_MANIFEST);
	assert_int_equal(mi->is_index, 0);
	assert_int_equal(mi->n_children, 1);
	manifest_info_free(mi);

	mi = expect_ok("{\"schemaVersion\":2,\"manifests\":[" DESC(MT_OCI_MANIFEST, DB, 5) "]}",
		       "");
	assert_string_equal(mi->media_type, MT_OCI_INDEX);
	assert_int_equal(mi->is_index, 1);
	manifest_info_free(mi);

	expect_fail("{\"schemaVersion\":2}", NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"layers\":[]}", NULL, RC_MANIFEST_INVALID);
}

static void
test_ambiguous(void **state)
{
	/* CVE-2021-41190: a document must not read as both kinds. */
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 5) ","
		    "\"manifests\":[" DESC(MT_OCI_MANIFEST, DB, 5) "]}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\","
		    "\"manifests\":[],\"layers\":[" DESC(MT_LAYER, DB, 5) "]}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
		    "\"config\":" DESC(MT_CONFIG, DA, 5) ",\"manifests\":[]}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.x.y\","
		    "\"manifests\":[],\"layers\":[]}",
		    NULL, RC_MANIFEST_INVALID);
	/* Duplicate keys could be read differently by another parser. */
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 5) ","
		    "\"layers\":[],\"layers\":[" DESC(MT_LAYER, DB, 5) "]}",
		    NULL, RC_MANIFEST_INVALID);
}

static void
test_bad_json(void **state)
{
	struct manifest_info *mi = (struct manifest_info *)0x1;

	expect_fail("", NULL, RC_MANIFEST_INVALID);
	expect_fail("{", NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,}", NULL, RC_MANIFEST_INVALID);
	expect_fail("[]", NULL, RC_MANIFEST_INVALID);
	expect_fail("null", NULL, RC_MANIFEST_INVALID);
	expect_fail("2", NULL, RC_MANIFEST_INVALID);
	expect_fail(OCI_MANIFEST " trailing", NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\\u0000\","
		    "\"digest\":\"" DA "\",\"size\":1}}",
		    NULL, RC_MANIFEST_INVALID);
	/* Embedded NUL in the body. */
	assert_int_equal(manifest_parse("{\"schemaVersion\":2}\0{}", 22, NULL, &mi,
					errbuf, sizeof(errbuf)),
			 RC_MANIFEST_INVALID);
	assert_int_equal(manifest_parse(NULL, 0, NULL, &mi, errbuf, sizeof(errbuf)),
			 RC_MANIFEST_INVALID);
	assert_ptr_equal(mi, (struct manifest_info *)0x1);
}

static void
test_schema_version(void **state)
{
	expect_fail("{\"schemaVersion\":3,\"config\":" DESC(MT_CONFIG, DA, 5) "}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":\"2\",\"config\":" DESC(MT_CONFIG, DA, 5) "}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2.0,\"config\":" DESC(MT_CONFIG, DA, 5) "}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"config\":" DESC(MT_CONFIG, DA, 5) "}", NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":0,\"manifests\":[]}", NULL, RC_MANIFEST_INVALID);
	assert_non_null(strstr(errbuf, "schemaVersion"));
}

static void
test_bad_media_type(void **state)
{
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"\",\"manifests\":[]}", NULL,
		    RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"mediaType\":5,\"manifests\":[]}", NULL,
		    RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"noslash\",\"manifests\":[]}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC("application/", DA, 5) "}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC("a/b/c", DA, 5) "}", NULL,
		    RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC("a /b", DA, 5) "}", NULL,
		    RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(".a/b", DA, 5) "}", NULL,
		    RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":{\"digest\":\"" DA "\",\"size\":5}}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"artifactType\":\"x\","
		    "\"config\":" DESC(MT_CONFIG, DA, 5) "}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"artifactType\":7,"
		    "\"config\":" DESC(MT_CONFIG, DA, 5) "}",
		    NULL, RC_MANIFEST_INVALID);
}

static void
test_bad_digest(void **state)
{
	static const char *bad[] = {
		"sha256:" HEX_A "a",
		"sha256:aaaa",
		"sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		HEX_A,
		"sha256:../../../../etc/passwd",
		"",
		"sha512:" HEX_A HEX_A,
		"multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
	};
	char buf[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf),
			 "{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 5) ","
			 "\"layers\":[{\"mediaType\":\"" MT_LAYER "\",\"digest\":\"%s\","
			 "\"size\":1}]}",
			 bad[i]);
		expect_fail(buf, NULL, RC_MANIFEST_INVALID);
		snprintf(buf, sizeof(buf),
			 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\""
			 MT_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":1}]}",
			 bad[i]);
		expect_fail(buf, NULL, RC_MANIFEST_INVALID);
	}
	snprintf(buf, sizeof(buf),
		 "{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, "sha512:" HEX_A HEX_A, 5) "}");
	expect_fail(buf, NULL, RC_MANIFEST_INVALID);
	assert_non_null(strstr(errbuf, "sha256"));
	expect_fail("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_CONFIG
		    "\",\"digest\":7,\"size\":5}}",
		    NULL, RC_MANIFEST_INVALID);
}

static void
test_bad_size(void **state)
{
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, -1) "}", NULL,
		    RC_MANIFEST_INVALID);
	assert_non_null(strstr(errbuf, "size"));
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, "5") "}", NULL,
		    RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 5.5) "}", NULL,
		    RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_CONFIG
		    "\",\"digest\":\"" DA "\"}}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"manifests\":[" DESC(MT_OCI_MANIFEST, DA, -7) "]}",
		    NULL, RC_MANIFEST_INVALID);
	/* Beyond int64: jansson refuses the number. */
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 99999999999999999999) "}",
		    NULL, RC_MANIFEST_INVALID);
}

static void
test_missing_parts(void **state)
{
	struct manifest_info *mi;

	/* Docker schema2 needs config and layers. */
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
		    "\"layers\":[" DESC(MT_DLAYER, DB, 6) "]}",
		    NULL, RC_MANIFEST_INVALID);
	assert_non_null(strstr(errbuf, "config"));
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
		    "\"config\":" DESC(MT_DCONFIG, DA, 5) "}",
		    NULL, RC_MANIFEST_INVALID);
	assert_non_null(strstr(errbuf, "layers"));
	/* An OCI manifest needs config; layers may be absent. */
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
		    "\"layers\":[" DESC(MT_LAYER, DB, 6) "]}",
		    NULL, RC_MANIFEST_INVALID);
	mi = expect_ok("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
		       "\"config\":" DESC(MT_CONFIG, DA, 5) "}",
		       NULL);
	assert_int_equal(mi->n_children, 1);
	manifest_info_free(mi);
	/* Indexes need a manifests array. */
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\"}", NULL,
		    RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\","
		    "\"manifests\":{}}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"manifests\":[5]}", NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 5)
		    ",\"layers\":" DESC(MT_LAYER, DB, 5) "}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":[]}", NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":null}", NULL, RC_MANIFEST_INVALID);
}

static void
test_nondistributable(void **state)
{
	struct manifest_info *mi = expect_ok(
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
		"\"config\":" DESC(MT_DCONFIG, DA, 5) ",\"layers\":["
		"{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\","
		"\"digest\":\"" DB "\",\"size\":1000,\"urls\":[\"https://example.com/l\"]},"
		"{\"mediaType\":\"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip\","
		"\"digest\":\"sha512:" HEX_C HEX_C "\",\"size\":9},"
		DESC(MT_DLAYER, DD, 6) "]}",
		NULL);

	assert_int_equal(mi->n_children, 2);
	assert_string_equal(mi->children[0].digest, DA);
	assert_string_equal(mi->children[1].digest, DD);
	manifest_info_free(mi);

	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 5) ",\"layers\":["
		    "{\"mediaType\":\"" MT_LAYER "\",\"digest\":\"" DB "\",\"size\":1,"
		    "\"urls\":[1]}]}",
		    NULL, RC_MANIFEST_INVALID);
	/* Only layers can be foreign: index entries, config and subject must
	 * name storable content whatever their mediaType says (found by
	 * fuzzing: a sha512 index entry used to slip through). */
	expect_fail("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
		    "\"application/vnd.x.nondistributable+json\",\"digest\":"
		    "\"sha512:" HEX_A HEX_A "\",\"size\":1}]}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":{\"mediaType\":"
		    "\"application/vnd.x.foreign\",\"digest\":\"sha1:abc\",\"size\":1}}",
		    NULL, RC_MANIFEST_INVALID);
	expect_fail("{\"schemaVersion\":2,\"config\":" DESC(MT_CONFIG, DA, 5) ","
		    "\"subject\":{\"mediaType\":\"application/vnd.x.foreign\","
		    "\"digest\":\"sha1:abc\",\"size\":1}}",
		    NULL, RC_MANIFEST_INVALID);
	mi = expect_ok("{\"schemaVersion\":2,\"manifests\":["
		       DESC("application/vnd.x.nondistributable+json", DB, 1) "]}",
		       NULL);
	assert_int_equal(mi->n_children, 1);
	assert_string_equal(mi->children[0].digest, DB);
	manifest_info_free(mi);
}

static void
test_too_large(void **state)
{
	size_t len = MANIFEST_MAX_BYTES + 1;
	char *buf = malloc(len);
	struct manifest_info *mi = NULL;

	assert_non_null(buf);
	memset(buf, ' ', len);
	memcpy(buf, OCI_MANIFEST, strlen(OCI_MANIFEST));
	assert_int_equal(manifest_parse(buf, len, NULL, &mi, errbuf, sizeof(errbuf)),
			 RC_TOO_LARGE);
	assert_null(mi);
	assert_true(errbuf[0] != '\0');
	/* Exactly the limit is accepted (trailing whitespace is valid JSON). */
	assert_int_equal(manifest_parse(buf, len - 1, NULL, &mi, errbuf, sizeof(errbuf)),
			 RC_OK);
	manifest_info_free(mi);
	free(buf);
}

static void
test_err_buffer(void **state)
{
	struct manifest_info *mi = NULL;
	char small[8];

	/* errlen 0 and a NULL err are fine. */
	assert_int_equal(manifest_parse("{", 1, NULL, &mi, NULL, 0), RC_MANIFEST_INVALID);
	memset(small, 'x', sizeof(small));
	assert_int_equal(manifest_parse("{", 1, NULL, &mi, small, 0), RC_MANIFEST_INVALID);
	assert_int_equal(small[0], 'x');
	/* A short buffer is truncated and terminated. */
	assert_int_equal(manifest_parse("{", 1, NULL, &mi, small, sizeof(small)),
			 RC_MANIFEST_INVALID);
	assert_true(strlen(small) == sizeof(small) - 1);
	/* Control characters from the request do not break the line. */
	expect_fail(OCI_MANIFEST, "application/x\r\ny", RC_MANIFEST_INVALID);
	assert_null(strchr(errbuf, '\r'));
	/* Success clears a stale message. */
	strcpy(errbuf, "stale");
	assert_int_equal(manifest_parse(OCI_INDEX, strlen(OCI_INDEX), NULL, &mi, errbuf,
					sizeof(errbuf)),
			 RC_OK);
	assert_string_equal(errbuf, "");
	manifest_info_free(mi);
	manifest_info_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oci_manifest),
		cmocka_unit_test(test_oci_index),
		cmocka_unit_test(test_oci_index_empty_and_artifact_type),
		cmocka_unit_test(test_docker_schema2),
		cmocka_unit_test(test_docker_list),
		cmocka_unit_test(test_artifact_empty_config),
		cmocka_unit_test(test_artifact_unknown_media_types),
		cmocka_unit_test(test_empty_artifact_type_falls_back),
		cmocka_unit_test(test_subject),
		cmocka_unit_test(test_annotations),
		cmocka_unit_test(test_duplicate_children),
		cmocka_unit_test(test_many_children),
		cmocka_unit_test(test_schema1),
		cmocka_unit_test(test_content_type_mismatch),
		cmocka_unit_test(test_content_type_parameters),
		cmocka_unit_test(test_no_media_type_uses_content_type),
		cmocka_unit_test(test_inferred),
		cmocka_unit_test(test_ambiguous),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_schema_version),
		cmocka_unit_test(test_bad_media_type),
		cmocka_unit_test(test_bad_digest),
		cmocka_unit_test(test_bad_size),
		cmocka_unit_test(test_missing_parts),
		cmocka_unit_test(test_nondistributable),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_err_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
/* clang-format on */
