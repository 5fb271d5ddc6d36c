/* Unit tests for gc/ttl.c: the TTL a pushed manifest asks for its tag,
 * from its annotations or from the config.Labels of its image config
 * (docker and OCI shapes), which label wins, and every bad value refused
 * with a message naming the label and where it was found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/rc.h"
#include "gc/gc.h"

#define H 3600ull
#define D 86400ull

struct ttl_out {
	int rc;
	uint64_t ttl;
	const char *label;
	char err[256];
};

/* gc_ttl_of with a config given as a C string (NULL: none). */
static struct ttl_out
ttl_of(const char *annotations, const char *config)
{
	struct ttl_out o;

	memset(&o, 0, sizeof(o));
	o.ttl = 12345; /* canaries: both are always set */
	o.label = "canary";
	o.rc = gc_ttl_of(annotations, config,
	                 config != NULL ? strlen(config) : 0, &o.ttl, &o.label,
	                 o.err, sizeof(o.err));
	return o;
}

static void
expect_ttl(struct ttl_out o, uint64_t ttl, const char *label)
{
	if (o.rc != RC_OK)
		fail_msg("refused (%d): %s", o.rc, o.err);
	assert_int_equal(o.ttl, ttl);
	if (label == NULL) {
		assert_null(o.label);
	} else {
		assert_non_null(o.label);
		assert_string_equal(o.label, label);
	}
}

/* Refused with RC_MANIFEST_INVALID and a message that names where, the
 * label and the value. */
static void
expect_refused(struct ttl_out o, const char *where, const char *label,
               const char *value)
{
	char head[128];

	if (o.rc != RC_MANIFEST_INVALID)
		fail_msg("rc %d, want RC_MANIFEST_INVALID; err \"%s\"", o.rc,
		         o.err);
	snprintf(head, sizeof(head), "%s %s: ", where, label);
	if (strncmp(o.err, head, strlen(head)) != 0)
		fail_msg("err \"%s\" does not start with \"%s\"", o.err, head);
	if (strstr(o.err, value) == NULL)
		fail_msg("err \"%s\" does not show %s", o.err, value);
	if (strstr(o.err, "not a duration") == NULL)
		fail_msg("err \"%s\" does not say why", o.err);
}

/* A docker image config (what `docker build --label` writes). */
static char *
docker_config(const char *labels_json)
{
	char *s = NULL;

	assert_true(
	        asprintf(&s,
	                 "{\"architecture\":\"amd64\",\"os\":\"linux\","
	                 "\"config\":{\"Env\":[\"PATH=/usr/bin\"],"
	                 "\"Cmd\":[\"/bin/sh\"],\"Labels\":%s},"
	                 "\"container_config\":{\"Labels\":null},"
	                 "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
	                 labels_json) > 0);
	return s;
}

/* An OCI image config (buildah, kaniko). */
static char *
oci_config(const char *labels_json)
{
	char *s = NULL;

	assert_true(asprintf(&s,
	                     "{\"created\":\"2026-01-01T00:00:00Z\","
	                     "\"architecture\":\"arm64\",\"os\":\"linux\","
	                     "\"config\":{\"Labels\":%s,"
	                     "\"WorkingDir\":\"/app\"},"
	                     "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":"
	                     "[\"sha256:"
	                     "00000000000000000000000000000000000000000000000"
	                     "00000000000000000\"]},\"history\":[]}",
	                     labels_json) > 0);
	return s;
}

/* ---- annotations ---- */

static void
test_annotation_berth(void **state)
{
	expect_ttl(ttl_of("{\"berth.expires-after\":\"3d\"}", NULL), 3 * D,
	           GC_TTL_LABEL);
	expect_ttl(ttl_of("{\"org.opencontainers.image.source\":\"x\","
	                  "\"berth.expires-after\":\"90m\"}",
	                  NULL),
	           90 * 60, GC_TTL_LABEL);
}

static void
test_annotation_quay(void **state)
{
	expect_ttl(ttl_of("{\"quay.expires-after\":\"2w\"}", NULL), 14 * D,
	           GC_TTL_LABEL_QUAY);
	expect_ttl(ttl_of("{\"quay.expires-after\":\"45s\"}", NULL), 45,
	           GC_TTL_LABEL_QUAY);
}

/* Both present: berth's own label wins, whatever the key order. */
static void
test_annotation_berth_wins(void **state)
{
	expect_ttl(ttl_of("{\"quay.expires-after\":\"1d\","
	                  "\"berth.expires-after\":\"2h\"}",
	                  NULL),
	           2 * H, GC_TTL_LABEL);
	expect_ttl(ttl_of("{\"berth.expires-after\":\"2h\","
	                  "\"quay.expires-after\":\"1d\"}",
	                  NULL),
	           2 * H, GC_TTL_LABEL);
	/* berth's is the one read: a bad one is refused even when quay's
	 * would do. */
	expect_refused(ttl_of("{\"quay.expires-after\":\"1d\","
	                      "\"berth.expires-after\":\"soon\"}",
	                      NULL),
	               "annotation", GC_TTL_LABEL, "\"soon\"");
}

/* ---- config labels ---- */

static void
test_config_label_docker(void **state)
{
	char *c = docker_config("{\"maintainer\":\"me\","
	                        "\"berth.expires-after\":\"12h\"}");

	expect_ttl(ttl_of(NULL, c), 12 * H, GC_TTL_LABEL);
	free(c);
	c = docker_config("{\"quay.expires-after\":\"1w\"}");
	expect_ttl(ttl_of(NULL, c), 7 * D, GC_TTL_LABEL_QUAY);
	free(c);
	c = docker_config("{\"quay.expires-after\":\"1w\","
	                  "\"berth.expires-after\":\"1d\"}");
	expect_ttl(ttl_of(NULL, c), D, GC_TTL_LABEL);
	free(c);
}

static void
test_config_label_oci(void **state)
{
	char *c = oci_config("{\"berth.expires-after\":\"7d\"}");

	expect_ttl(ttl_of(NULL, c), 7 * D, GC_TTL_LABEL);
	free(c);
	c = oci_config("{\"quay.expires-after\":\"30m\"}");
	expect_ttl(ttl_of(NULL, c), 30 * 60, GC_TTL_LABEL_QUAY);
	free(c);
}

/* The config is given by length, not as a C string: bytes after it are
 * not read. */
static void
test_config_by_length(void **state)
{
	char *c = docker_config("{\"berth.expires-after\":\"5d\"}");
	size_t len = strlen(c);
	char *padded = malloc(len + 16);
	uint64_t ttl = 0;
	const char *label = NULL;
	char err[128] = "";

	assert_non_null(padded);
	memcpy(padded, c, len);
	memcpy(padded + len, "garbage{{{{{{{{", 16);
	assert_int_equal(
	        gc_ttl_of(NULL, padded, len, &ttl, &label, err, sizeof(err)),
	        RC_OK);
	assert_int_equal(ttl, 5 * D);
	assert_string_equal(label, GC_TTL_LABEL);
	/* config_len 0: no config. */
	assert_int_equal(
	        gc_ttl_of(NULL, padded, 0, &ttl, &label, err, sizeof(err)),
	        RC_OK);
	assert_int_equal(ttl, 0);
	assert_null(label);
	free(padded);
	free(c);
}

/* Labels only count in config.Labels: not at the top, not in
 * container_config, not in an annotation-like "annotations" member. */
static void
test_config_label_elsewhere_ignored(void **state)
{
	expect_ttl(
	        ttl_of(NULL, "{\"Labels\":{\"berth.expires-after\":\"1d\"}}"),
	        0, NULL);
	expect_ttl(ttl_of(NULL, "{\"berth.expires-after\":\"1d\"}"), 0, NULL);
	expect_ttl(ttl_of(NULL,
	                  "{\"config\":{},\"container_config\":"
	                  "{\"Labels\":{\"berth.expires-after\":\"1d\"}}}"),
	           0, NULL);
	expect_ttl(ttl_of(NULL, "{\"config\":{\"Labels\":null}}"), 0, NULL);
	expect_ttl(ttl_of(NULL, "{\"config\":{\"Labels\":[\"berth.expires-"
	                        "after\"]}}"),
	           0, NULL);
	expect_ttl(ttl_of(NULL, "{\"config\":null}"), 0, NULL);
}

/* An annotation wins over a config label, even over a bad one. */
static void
test_annotation_wins_over_label(void **state)
{
	char *c = docker_config("{\"berth.expires-after\":\"1d\"}");

	expect_ttl(ttl_of("{\"berth.expires-after\":\"6h\"}", c), 6 * H,
	           GC_TTL_LABEL);
	expect_ttl(ttl_of("{\"quay.expires-after\":\"6h\"}", c), 6 * H,
	           GC_TTL_LABEL_QUAY);
	free(c);
	c = docker_config("{\"berth.expires-after\":\"bad\"}");
	expect_ttl(ttl_of("{\"berth.expires-after\":\"6h\"}", c), 6 * H,
	           GC_TTL_LABEL);
	free(c);
	/* Annotations without the labels: the config's label applies. */
	c = oci_config("{\"quay.expires-after\":\"2d\"}");
	expect_ttl(ttl_of("{\"org.opencontainers.image.title\":\"web\"}", c),
	           2 * D, GC_TTL_LABEL_QUAY);
	expect_ttl(ttl_of("{}", c), 2 * D, GC_TTL_LABEL_QUAY);
	free(c);
}

/* ---- bad values ---- */

static void
test_bad_annotation_values(void **state)
{
	expect_refused(ttl_of("{\"berth.expires-after\":\"3x\"}", NULL),
	               "annotation", GC_TTL_LABEL, "\"3x\"");
	expect_refused(ttl_of("{\"berth.expires-after\":\"\"}", NULL),
	               "annotation", GC_TTL_LABEL, "\"\"");
	expect_refused(ttl_of("{\"berth.expires-after\":\"-1d\"}", NULL),
	               "annotation", GC_TTL_LABEL, "\"-1d\"");
	expect_refused(ttl_of("{\"quay.expires-after\":\"0d\"}", NULL),
	               "annotation", GC_TTL_LABEL_QUAY, "\"0d\"");
	expect_refused(ttl_of("{\"quay.expires-after\":\"1.5d\"}", NULL),
	               "annotation", GC_TTL_LABEL_QUAY, "\"1.5d\"");
	expect_refused(ttl_of("{\"berth.expires-after\":\"3651d\"}", NULL),
	               "annotation", GC_TTL_LABEL, "\"3651d\"");
	/* A number instead of a string. */
	expect_refused(ttl_of("{\"berth.expires-after\":3}", NULL),
	               "annotation", GC_TTL_LABEL, "not a string");
	expect_refused(ttl_of("{\"quay.expires-after\":null}", NULL),
	               "annotation", GC_TTL_LABEL_QUAY, "not a string");
}

static void
test_bad_label_values(void **state)
{
	static const char *const bad[] = {"3x", "", "-1d", "d", " 1d"};
	char *c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char labels[128], shown[32];

		snprintf(labels, sizeof(labels),
		         "{\"berth.expires-after\":\"%s\"}", bad[i]);
		snprintf(shown, sizeof(shown), "\"%s\"", bad[i]);
		c = docker_config(labels);
		expect_refused(ttl_of(NULL, c), "label", GC_TTL_LABEL, shown);
		free(c);
	}
	c = oci_config("{\"quay.expires-after\":7}");
	expect_refused(ttl_of(NULL, c), "label", GC_TTL_LABEL_QUAY,
	               "not a string");
	free(c);
	c = oci_config("{\"quay.expires-after\":{\"d\":1}}");
	expect_refused(ttl_of(NULL, c), "label", GC_TTL_LABEL_QUAY,
	               "not a string");
	free(c);
}

/* A refusal fills err even when it is short, NUL-terminated; errlen 0
 * writes nothing. */
static void
test_err_truncated(void **state)
{
	char err[8];
	uint64_t ttl;
	const char *label;

	memset(err, 'x', sizeof(err));
	assert_int_equal(gc_ttl_of("{\"berth.expires-after\":\"3x\"}", NULL, 0,
	                           &ttl, &label, err, sizeof(err)),
	                 RC_MANIFEST_INVALID);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_memory_equal(err, "annotat", 7);
	memset(err, 'x', sizeof(err));
	assert_int_equal(gc_ttl_of("{\"berth.expires-after\":\"3x\"}", NULL, 0,
	                           &ttl, &label, err, 0),
	                 RC_MANIFEST_INVALID);
	assert_int_equal(err[0], 'x');
}

/* ---- nothing asked ---- */

static void
test_no_labels(void **state)
{
	char *c = docker_config("{\"maintainer\":\"me\"}");

	expect_ttl(ttl_of(NULL, NULL), 0, NULL);
	expect_ttl(ttl_of("{}", NULL), 0, NULL);
	expect_ttl(ttl_of("{\"a\":\"b\"}", c), 0, NULL);
	expect_ttl(ttl_of(NULL, c), 0, NULL);
	free(c);
	c = docker_config("{}");
	expect_ttl(ttl_of(NULL, c), 0, NULL);
	free(c);
	/* Label names are exact. */
	expect_ttl(ttl_of("{\"Berth.expires-after\":\"1d\","
	                  "\"berth.expires_after\":\"1d\","
	                  "\"expires-after\":\"1d\"}",
	                  NULL),
	           0, NULL);
}

/* An artifact's config is not JSON (or not an object): no TTL, no
 * error. */
static void
test_config_not_json(void **state)
{
	expect_ttl(ttl_of(NULL, "\x89PNG\r\n\x1a\n"), 0, NULL);
	expect_ttl(ttl_of(NULL, "berth.expires-after: 1d"), 0, NULL);
	expect_ttl(ttl_of(NULL, "{\"config\":{\"Labels\":{\"berth.expires-"
	                        "after\":\"1d\"}}"), /* truncated */
	           0, NULL);
	expect_ttl(ttl_of(NULL, "[1,2,3]"), 0, NULL);
	expect_ttl(ttl_of(NULL, "\"berth.expires-after\""), 0, NULL);
	/* Not-JSON annotations are skipped too: the config still counts. */
	{
		char *c = docker_config("{\"berth.expires-after\":\"4h\"}");
		expect_ttl(ttl_of("not json", c), 4 * H, GC_TTL_LABEL);
		free(c);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_annotation_berth),
	        cmocka_unit_test(test_annotation_quay),
	        cmocka_unit_test(test_annotation_berth_wins),
	        cmocka_unit_test(test_config_label_docker),
	        cmocka_unit_test(test_config_label_oci),
	        cmocka_unit_test(test_config_by_length),
	        cmocka_unit_test(test_config_label_elsewhere_ignored),
	        cmocka_unit_test(test_annotation_wins_over_label),
	        cmocka_unit_test(test_bad_annotation_values),
	        cmocka_unit_test(test_bad_label_values),
	        cmocka_unit_test(test_err_truncated),
	        cmocka_unit_test(test_no_labels),
	        cmocka_unit_test(test_config_not_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
