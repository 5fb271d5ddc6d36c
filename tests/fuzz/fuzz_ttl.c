/* libFuzzer harness for TTL labels and durations: gc_ttl_of() (gc/ttl.c)
 * on what a client pushes, a manifest's annotations (compact JSON, as
 * manifest_parse() hands them over) or an image config blob (its
 * config.Labels, what `docker build --label` writes), and
 * duration_parse() / duration_format() (common/duration.c), which read
 * the label's value. Built by `make fuzz`.
 *
 * Input: a mode byte, then 0 the annotations JSON, 1 the config blob,
 * 2 a duration string.
 *
 * Promises checked, besides crashes and sanitizer reports:
 *   - gc_ttl_of() answers 0 or RC_MANIFEST_INVALID (with one line in err
 *     naming the label); 0 with a label gives a TTL from 1 s to
 *     DURATION_MAX, the label one of the two names, and the value found
 *     there (read again with jansson) parses to the same TTL; 0 without a
 *     label gives a TTL of 0;
 *   - duration_parse() accepts exactly [1-9][0-9]* and one unit of
 *     s, m, h, d, w, at most DURATION_MAX seconds, with the value a
 *     reference computation gives (digits of any length), and
 *     duration_format() of the result parses back to the same value. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/rc.h"
#include "gc/gc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reference: 0 and *out, or -1. */
static int
ref_duration(const char *s, uint64_t *out)
{
	static const char units[] = "smhdw";
	static const uint64_t secs[] = {1, 60, 3600, 86400, 7 * 86400};
	uint64_t v = 0;
	const char *u;

	if (*s < '1' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > DURATION_MAX)
			continue; /* already too long */
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '\0' || s[1] != '\0' || (u = strchr(units, *s)) == NULL)
		return -1;
	if (v > DURATION_MAX || v * secs[u - units] > DURATION_MAX)
		return -1;
	*out = v * secs[u - units];
	return 0;
}

static void
check_duration(const char *s)
{
	uint64_t got = 12345, want = 0, again = 0;
	char buf[DURATION_BUF];
	int rc = duration_parse(s, &got);

	if ((rc == RC_OK) != (ref_duration(s, &want) == 0))
		abort();
	if (rc != RC_OK) {
		if (rc != RC_BAD_REQUEST || got != 12345)
			abort();
		return;
	}
	if (got != want || got == 0 || got > DURATION_MAX)
		abort();
	duration_format(got, buf, sizeof(buf));
	if (duration_parse(buf, &again) != RC_OK || again != got)
		abort();
}

static void
check_ttl(const char *ann, const void *config, size_t len)
{
	const char *label = (const char *)1;
	uint64_t ttl = 1, again;
	char err[256];
	json_t *root, *obj;
	const char *v;
	int rc;

	err[0] = '\0';
	rc = gc_ttl_of(ann, config, len, &ttl, &label, err, sizeof(err));
	if (rc == RC_MANIFEST_INVALID) {
		if (err[0] == '\0' || strchr(err, '\n') != NULL ||
		    (strstr(err, GC_TTL_LABEL) == NULL &&
		     strstr(err, GC_TTL_LABEL_QUAY) == NULL))
			abort();
		return;
	}
	if (rc != RC_OK)
		abort();
	if (label == NULL) {
		if (ttl != 0)
			abort();
		return;
	}
	if ((strcmp(label, GC_TTL_LABEL) != 0 &&
	     strcmp(label, GC_TTL_LABEL_QUAY) != 0) ||
	    ttl == 0 || ttl > DURATION_MAX)
		abort();
	/* the value where it was found */
	root = ann != NULL ? json_loads(ann, 0, NULL)
	                   : json_loadb(config, len, 0, NULL);
	obj = ann != NULL ? root
	                  : json_object_get(json_object_get(root, "config"),
	                                    "Labels");
	v = json_string_value(json_object_get(obj, label));
	if (v == NULL || duration_parse(v, &again) != RC_OK || again != ttl)
		abort();
	json_decref(root);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size == 0 || size > 64 * 1024)
		return 0;
	if ((s = strndup((const char *)data + 1, size - 1)) == NULL)
		abort();
	switch (data[0] % 3) {
	case 0: check_ttl(s, NULL, 0); break;
	case 1: check_ttl(NULL, data + 1, size - 1); break;
	default: check_duration(s); break;
	}
	free(s);
	return 0;
}
