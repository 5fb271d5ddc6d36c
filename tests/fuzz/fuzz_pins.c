/* libFuzzer harness for pins, the image references `berth gc` sends in
 * the body of POST /v2/_berth/gc: the body as registry/handlers_gc.c
 * takes it (h_gc_start(), h_gc_body() in chunks, h_gc_finish() with its
 * static parse_body() and pins_take(); the file is compiled into this one
 * with #include, maint_submit() is a stub here and MHD_suspend_connection()
 * is wrapped, fuzz_pins.ldflags), and gc_pins_parse() (gc/pins.c) on
 * single references. Built by `make fuzz`.
 *
 * Input: a mode byte, then
 *   0  the request body ({"dry_run": true, "pins": [...]}), split into
 *      chunks at each 0xff byte;
 *   1  references, one a line, straight to gc_pins_parse().
 *
 * Promises checked, besides crashes and sanitizer reports:
 *   - a body is either refused with an error reply (and an error detail)
 *     or handed to the collector as a job whose pins gc_pins_parse()
 *     accepts, as many as the body's array holds;
 *   - an accepted reference is found again: a bare digest pins that
 *     manifest in any repository, [host/]repo:tag pins (repo, tag),
 *     [host/]repo@digest pins (repo, digest), with the host dropped by
 *     docker's rule, the repository a valid name and the tag a valid tag;
 *     and gc_pins_refs() gives back the references as sent. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/handlers_gc.c"

#include "common/digest.h"
#include "common/names.h"
#include "tests/fuzz/fake_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the maintenance thread and libmicrohttpd ---- */

static struct gc_job *submitted;

int
maint_submit(struct maint *mt, struct gc_job *job)
{
	submitted = job;
	return RC_OK;
}

enum MHD_Result __wrap_MHD_suspend_connection(struct MHD_Connection *c);

enum MHD_Result
__wrap_MHD_suspend_connection(struct MHD_Connection *c)
{
	return MHD_YES;
}

/* ---- pins ---- */

/* The (repo, tag, digest) a reference names, by docker's rules. */
static void
check_found(const struct gc_pins *ps, const char *ref)
{
	const char *s = ref, *slash, *at, *colon;
	char *repo, *tag = NULL, *digest = NULL;
	size_t len;

	if (strncmp(s, "docker-pullable://", 18) == 0)
		s += 18;
	if (digest_check(s) == RC_OK) {
		if (gc_pins_manifest(ps, "any/repo", s) == NULL)
			abort();
		return;
	}
	slash = strchr(s, '/');
	if (slash != NULL &&
	    (memchr(s, '.', (size_t)(slash - s)) != NULL ||
	     memchr(s, ':', (size_t)(slash - s)) != NULL ||
	     ((size_t)(slash - s) == 9 && strncmp(s, "localhost", 9) == 0)))
		s = slash + 1;
	at = strchr(s, '@');
	len = at != NULL ? (size_t)(at - s) : strlen(s);
	if (at != NULL && (digest = strdup(at + 1)) == NULL)
		abort();
	colon = memrchr(s, ':', len);
	slash = memrchr(s, '/', len);
	if (colon != NULL && (slash == NULL || colon > slash)) {
		if ((tag = strndup(colon + 1, len - (size_t)(colon + 1 - s))) ==
		    NULL)
			abort();
		len = (size_t)(colon - s);
	}
	if ((repo = strndup(s, len)) == NULL)
		abort();
	if (!name_is_valid(repo) || (tag == NULL && digest == NULL) ||
	    (tag != NULL && !tag_is_valid(tag)) ||
	    (digest != NULL && digest_check(digest) != RC_OK))
		abort();
	if (tag != NULL && gc_pins_tag(ps, repo, tag) == NULL)
		abort();
	if (digest != NULL && gc_pins_manifest(ps, repo, digest) == NULL)
		abort();
	free(repo);
	free(tag);
	free(digest);
}

static void
fuzz_refs(const uint8_t *data, size_t size)
{
	char *text = strndup((const char *)data, size), *save = NULL;
	char *refs[64];
	size_t n = 0;
	struct gc_pins *ps = NULL;
	char err[512];

	if (text == NULL)
		abort();
	for (char *l = strtok_r(text, "\n", &save); l != NULL && n < 64;
	     l = strtok_r(NULL, "\n", &save))
		refs[n++] = l;
	/* each alone, then all together */
	for (size_t i = 0; i < n; i++) {
		err[0] = '\0';
		int rc = gc_pins_parse(&refs[i], 1, &ps, err, sizeof(err));
		if (rc == RC_OK) {
			if (gc_pins_count(ps) != 1 ||
			    strcmp(gc_pins_refs(ps)[0], refs[i]) != 0)
				abort();
			check_found(ps, refs[i]);
			gc_pins_free(ps);
		} else if (rc != RC_BAD_REQUEST || err[0] == '\0' ||
		           strchr(err, '\n') != NULL) {
			abort();
		}
		ps = NULL;
	}
	if (gc_pins_parse(refs, n, &ps, err, sizeof(err)) == RC_OK) {
		if (gc_pins_count(ps) != n)
			abort();
		for (size_t i = 0; i < n; i++)
			check_found(ps, refs[i]);
		gc_pins_free(ps);
	}
	free(text);
}

static void
fuzz_body(const uint8_t *data, size_t size)
{
	struct maint *fake_maint = (struct maint *)&fake_maint;
	struct app app = {.maint = fake_maint};
	struct req r = {.app = &app};
	struct gc_pins *ps = NULL;
	char err[512];

	fake_reset();
	submitted = NULL;
	h_gc_start(&r);
	while (size > 0) {
		const uint8_t *cut = memchr(data, 0xff, size);
		size_t n = cut != NULL ? (size_t)(cut - data) : size;

		if (n > 0 && h_gc_body(&r, (const char *)data, n) != RC_OK)
			abort();
		data += n + (cut != NULL);
		size -= n + (cut != NULL);
	}
	if (h_gc_body(&r, NULL, 0) != RC_OK)
		abort();
	if (r.err_rc != 0)
		goto out; /* server.c answers with it */
	h_gc_finish(&r);
	if ((submitted == NULL) == (fake_status == 0))
		abort(); /* exactly one of: a job, an error reply */
	if (submitted == NULL) {
		if (fake_status < 400 || r.job != NULL)
			abort();
		goto out;
	}
	if (r.job != submitted || !r.suspended)
		abort();
	if (submitted->n_pins > 0 &&
	    (gc_pins_parse(submitted->pins, submitted->n_pins, &ps, err,
	                   sizeof(err)) != RC_OK ||
	     gc_pins_count(ps) != submitted->n_pins))
		abort();
	if (!submitted->has_pins && submitted->n_pins != 0)
		abort();
	gc_pins_free(ps);
	for (size_t i = 0; i < submitted->n_pins; i++)
		free(submitted->pins[i]);
	free(submitted->pins);
	free(submitted);
out:
	free(r.buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 256 * 1024)
		return 0;
	if (data[0] % 2 == 0)
		fuzz_body(data + 1, size - 1);
	else
		fuzz_refs(data + 1, size - 1);
	return 0;
}
