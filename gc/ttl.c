/* TTL labels: a pushed manifest asks for its tag to expire with
 * "berth.expires-after" or Quay's "quay.expires-after", as an annotation
 * of the manifest or index, or as a label in an image's config
 * (config.Labels, what `docker build --label` writes). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/duration.h"
#include "common/rc.h"
#include "gc/gc.h"

static const char *const labels[] = {GC_TTL_LABEL, GC_TTL_LABEL_QUAY};

/* Looks for the labels in a JSON object of strings: 0 when none, 1 when
 * found (*ttl, *label set), RC_MANIFEST_INVALID for a bad value. */
static int
find(json_t *obj, const char *where, uint64_t *ttl, const char **label,
     char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		json_t *v = json_object_get(obj, labels[i]);
		const char *s = json_string_value(v);

		if (v == NULL)
			continue;
		if (s == NULL || duration_parse(s, ttl) != RC_OK) {
			snprintf(err, errlen,
			         "%s %s: \"%.40s\" is not a duration (a "
			         "number and one of s, m, h, d, w, e.g. 3d)",
			         where, labels[i],
			         s != NULL ? s : "(not a string)");
			return RC_MANIFEST_INVALID;
		}
		*label = labels[i];
		return 1;
	}
	return 0;
}

int
gc_ttl_of(const char *annotations_json, const void *config, size_t config_len,
          uint64_t *ttl, const char **label, char *err, size_t errlen)
{
	json_t *root;
	int rc = 0;

	*ttl = 0;
	*label = NULL;
	if (annotations_json != NULL) {
		root = json_loads(annotations_json, 0, NULL);
		if (root != NULL)
			rc = find(root, "annotation", ttl, label, err, errlen);
		json_decref(root);
		if (rc != 0)
			return rc < 0 ? rc : RC_OK;
	}
	if (config == NULL || config_len == 0)
		return RC_OK;
	root = json_loadb(config, config_len, 0, NULL);
	/* A config that is not JSON (an artifact's) carries no labels. */
	if (root != NULL) {
		json_t *lab = json_object_get(json_object_get(root, "config"),
		                              "Labels");
		if (json_is_object(lab))
			rc = find(lab, "label", ttl, label, err, errlen);
	}
	json_decref(root);
	return rc < 0 ? rc : RC_OK;
}
