/* Pins: the image references a cluster uses, as `berth gc` sends them
 * ("registry.example:5000/review/web:pr-42",
 * "registry.example/review/web@sha256:…", a bare "sha256:…"). Parsed once
 * per run into (repository, tag) and (repository, digest) pairs, and
 * digests that count in every repository. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "common/names.h"
#include "common/rc.h"
#include "gc/gc.h"

struct pin {
	char *repo;      /* NULL: the digest counts in every repository */
	char *tag;       /* NULL when none */
	char *digest;    /* NULL when none */
	const char *ref; /* as sent */
};

struct gc_pins {
	struct pin *v;
	size_t n;
	char **refs; /* copies of what was sent */
};

/* 1 when the first path component of ref names a registry host (docker's
 * rule: it holds a '.' or a ':', or is "localhost"). */
static int
has_host(const char *ref, size_t first_len)
{
	return memchr(ref, '.', first_len) != NULL ||
	       memchr(ref, ':', first_len) != NULL ||
	       (first_len == 9 && memcmp(ref, "localhost", 9) == 0);
}

static int
pin_parse(const char *ref, struct pin *p, char *err, size_t errlen)
{
	const char *s = ref, *slash, *at, *colon;
	char *name = NULL;
	size_t len;

	memset(p, 0, sizeof(*p));
	p->ref = ref;
	if (strncmp(s, "docker-pullable://", 18) == 0)
		s += 18;
	if (digest_check(s) == RC_OK) { /* a bare digest */
		p->digest = strdup(s);
		return p->digest != NULL ? 0 : -ENOMEM;
	}
	if (strchr(s, '/') == NULL &&
	    (strncmp(s, "sha256:", 7) == 0 || strncmp(s, "sha512:", 7) == 0))
		goto bad; /* meant as a digest, and not a valid one */
	slash = strchr(s, '/');
	if (slash != NULL && has_host(s, (size_t)(slash - s)))
		s = slash + 1;
	at = strchr(s, '@');
	len = at != NULL ? (size_t)(at - s) : strlen(s);
	if (at != NULL && digest_check(at + 1) != RC_OK)
		goto bad;
	/* A tag follows the last ':' after the last '/'. */
	colon = memrchr(s, ':', len);
	slash = memrchr(s, '/', len);
	if (colon != NULL && (slash == NULL || colon > slash)) {
		p->tag = strndup(colon + 1, len - (size_t)(colon + 1 - s));
		len = (size_t)(colon - s);
		if (p->tag == NULL)
			return -ENOMEM;
		if (!tag_is_valid(p->tag))
			goto bad;
	}
	/* a name alone pins nothing: say so */
	if (p->tag == NULL && at == NULL)
		goto bad;
	name = strndup(s, len);
	if (name == NULL)
		return -ENOMEM;
	if (!name_is_valid(name))
		goto bad;
	p->repo = name;
	if (at != NULL && (p->digest = strdup(at + 1)) == NULL)
		return -ENOMEM;
	return 0;
bad:
	free(name);
	free(p->tag);
	p->tag = NULL;
	snprintf(err, errlen,
	         "pin \"%.200s\" is not an image reference "
	         "([host/]repository:tag, [host/]repository@digest or a "
	         "digest)",
	         ref);
	return RC_BAD_REQUEST;
}

void
gc_pins_free(struct gc_pins *ps)
{
	if (ps == NULL)
		return;
	for (size_t i = 0; i < ps->n; i++) {
		free(ps->v[i].repo);
		free(ps->v[i].tag);
		free(ps->v[i].digest);
		free(ps->refs[i]);
	}
	free(ps->v);
	free(ps->refs);
	free(ps);
}

int
gc_pins_parse(char *const *refs, size_t n, struct gc_pins **out, char *err,
              size_t errlen)
{
	struct gc_pins *ps = calloc(1, sizeof(*ps));
	int rc = 0;

	if (ps == NULL ||
	    (n > 0 && ((ps->v = calloc(n, sizeof(*ps->v))) == NULL ||
	               (ps->refs = calloc(n, sizeof(char *))) == NULL))) {
		gc_pins_free(ps);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		if ((ps->refs[i] = strdup(refs[i])) == NULL) {
			rc = -ENOMEM;
			break;
		}
		ps->n++;
		rc = pin_parse(ps->refs[i], &ps->v[i], err, errlen);
	}
	if (rc != 0) {
		gc_pins_free(ps);
		return rc;
	}
	*out = ps;
	return 0;
}

size_t
gc_pins_count(const struct gc_pins *ps)
{
	return ps != NULL ? ps->n : 0;
}

const char *const *
gc_pins_refs(const struct gc_pins *ps)
{
	return ps != NULL ? (const char *const *)ps->refs : NULL;
}

const char *
gc_pins_tag(const struct gc_pins *ps, const char *repo, const char *tag)
{
	for (size_t i = 0; ps != NULL && i < ps->n; i++) {
		const struct pin *p = &ps->v[i];
		if (p->repo != NULL && p->tag != NULL &&
		    strcmp(p->repo, repo) == 0 && strcmp(p->tag, tag) == 0)
			return p->ref;
	}
	return NULL;
}

const char *
gc_pins_manifest(const struct gc_pins *ps, const char *repo, const char *digest)
{
	for (size_t i = 0; ps != NULL && i < ps->n; i++) {
		const struct pin *p = &ps->v[i];
		if (p->digest != NULL && strcmp(p->digest, digest) == 0 &&
		    (p->repo == NULL || strcmp(p->repo, repo) == 0))
			return p->ref;
	}
	return NULL;
}
