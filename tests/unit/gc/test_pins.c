/* Unit tests for gc/pins.c: the image references a cluster uses, parsed
 * into (repository, tag) and (repository, digest) pins: host forms,
 * tags, digests, both, bare digests, the docker-pullable:// prefix,
 * refusals naming the reference, and exact matching. Refusals run in a
 * child process, so a crash in the parser is a failed test, not a dead
 * suite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/rc.h"
#include "gc/gc.h"

#define D1                                                                     \
	"sha256:"                                                              \
	"1111111111111111111111111111111111111111111111111111111111111111"
#define D2                                                                     \
	"sha256:"                                                              \
	"2222222222222222222222222222222222222222222222222222222222222222"
#define D3                                                                     \
	"sha256:"                                                              \
	"3333333333333333333333333333333333333333333333333333333333333333"

/* Parses n references (must succeed). */
static struct gc_pins *
pins_of(size_t n, ...)
{
	char *refs[16];
	char err[512] = "";
	struct gc_pins *p = NULL;
	va_list ap;
	int rc;

	assert_true(n <= 16);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		refs[i] = va_arg(ap, char *);
	va_end(ap);
	rc = gc_pins_parse(refs, n, &p, err, sizeof(err));
	if (rc != 0)
		fail_msg("gc_pins_parse refused (%d): %s", rc, err);
	assert_non_null(p);
	assert_int_equal(gc_pins_count(p), n);
	return p;
}

/* The pin of ref alone pins exactly (repo, tag) and/or (repo, digest):
 * tag or digest NULL when it pins none. */
static void
pins_exactly(const char *ref, const char *repo, const char *tag,
             const char *digest)
{
	struct gc_pins *p = pins_of(1, ref);
	const char *t = gc_pins_tag(p, repo, tag != NULL ? tag : "latest");
	const char *d = gc_pins_manifest(p, repo, digest != NULL ? digest : D3);
	int t_ok = tag != NULL ? t != NULL && strcmp(t, ref) == 0 : t == NULL;
	int d_ok =
	        digest != NULL ? d != NULL && strcmp(d, ref) == 0 : d == NULL;

	gc_pins_free(p); /* before any failure: no leak under ASan */
	if (!t_ok && tag != NULL)
		fail_msg("\"%s\" does not pin %s:%s", ref, repo, tag);
	if (!t_ok)
		fail_msg("\"%s\" pins tag %s:latest", ref, repo);
	if (!d_ok && digest != NULL)
		fail_msg("\"%s\" does not pin %s@%s", ref, repo, digest);
	if (!d_ok)
		fail_msg("\"%s\" pins a manifest of %s", ref, repo);
}

/* ---- refusals, in a child ---- */

enum {
	CHILD_OK = 0,
	CHILD_ACCEPTED = 10, /* rc 0 */
	CHILD_WRONG_RC,      /* not RC_BAD_REQUEST */
	CHILD_ERR_NO_REF,    /* err does not name the reference */
	CHILD_OUT_SET,       /* *out changed */
};

static int
refuse_child(char *const *refs, size_t n, const char *named)
{
	struct gc_pins *p = (struct gc_pins *)&p; /* a canary */
	char err[512] = "";
	char want[300];
	int rc = gc_pins_parse(refs, n, &p, err, sizeof(err));

	if (rc == 0)
		return CHILD_ACCEPTED;
	if (rc != RC_BAD_REQUEST)
		return CHILD_WRONG_RC;
	snprintf(want, sizeof(want), "\"%s\"", named);
	if (strstr(err, want) == NULL) {
		fprintf(stderr, "err: %s\n", err);
		return CHILD_ERR_NO_REF;
	}
	if (p != (struct gc_pins *)&p)
		return CHILD_OUT_SET;
	return CHILD_OK;
}

/* refs[0..n) are refused with RC_BAD_REQUEST, err naming `named`, *out
 * untouched, and nothing crashes (the parse runs in a child). */
static void
refused_list(char *const *refs, size_t n, const char *named)
{
	pid_t pid;
	int st = 0;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(refuse_child(refs, n, named));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("gc_pins_parse of \"%s\" crashed: signal %d (%s)",
		         named, WTERMSIG(st), strsignal(WTERMSIG(st)));
	assert_true(WIFEXITED(st));
	switch (WEXITSTATUS(st)) {
	case CHILD_OK: return;
	case CHILD_ACCEPTED: fail_msg("\"%s\" was accepted", named); break;
	case CHILD_WRONG_RC:
		fail_msg("\"%s\": rc is not RC_BAD_REQUEST", named);
		break;
	case CHILD_ERR_NO_REF:
		fail_msg("\"%s\": the message does not name it", named);
		break;
	case CHILD_OUT_SET: fail_msg("\"%s\": *out was set", named); break;
	default:
		fail_msg("gc_pins_parse of \"%s\": child exit %d (a crash "
		         "caught by a sanitizer?)",
		         named, WEXITSTATUS(st));
	}
}

static void
refused(const char *ref)
{
	char *refs[1] = {(char *)ref};

	refused_list(refs, 1, ref);
}

/* ---- host forms ---- */

static void
test_host_forms(void **state)
{
	pins_exactly("registry.example:5000/review/web:pr-1", "review/web",
	             "pr-1", NULL);
	pins_exactly("registry.example/review/web:pr-1", "review/web", "pr-1",
	             NULL);
	pins_exactly("localhost/review/web:pr-1", "review/web", "pr-1", NULL);
	pins_exactly("localhost:5000/web:v1", "web", "v1", NULL);
	pins_exactly("10.0.0.1/review/web:pr-1", "review/web", "pr-1", NULL);
	pins_exactly("10.0.0.1:5000/review/web:pr-1", "review/web", "pr-1",
	             NULL);
	pins_exactly("[::1]:5000/review/web:pr-1", "review/web", "pr-1", NULL);
	pins_exactly("docker.io/library/nginx:1.25", "library/nginx", "1.25",
	             NULL);
}

/* No host: "review" has no '.' or ':' and is not localhost, so it is
 * the first component of the repository. */
static void
test_no_host(void **state)
{
	struct gc_pins *p;

	pins_exactly("review/web:pr-1", "review/web", "pr-1", NULL);
	pins_exactly("a/b/c:t", "a/b/c", "t", NULL);
	pins_exactly("localhostx/web:t", "localhostx/web", "t", NULL);
	p = pins_of(1, "review/web:pr-1");
	assert_null(gc_pins_tag(p, "web", "pr-1"));
	gc_pins_free(p);
}

/* A one-component repository with a tag, as pods name most images
 * ("redis:7", "busybox:latest"). */
static void
test_single_component_repo(void **state)
{
	pins_exactly("web:pr-1.2", "web", "pr-1.2", NULL);
	pins_exactly("redis:7", "redis", "7", NULL);
	pins_exactly("busybox:latest", "busybox", "latest", NULL);
	pins_exactly("web:v1", "web", "v1", NULL);
}

/* ---- tags and digests ---- */

static void
test_repo_digest(void **state)
{
	pins_exactly("review/web@" D1, "review/web", NULL, D1);
	pins_exactly("registry.example:5000/review/web@" D1, "review/web", NULL,
	             D1);
	pins_exactly("web@" D2, "web", NULL, D2);
}

/* repo:tag@digest pins both the tag and the manifest. */
static void
test_tag_and_digest(void **state)
{
	struct gc_pins *p;

	pins_exactly("review/web:pr-1@" D1, "review/web", "pr-1", D1);
	pins_exactly("registry.example:5000/review/web:pr-1@" D1, "review/web",
	             "pr-1", D1);
	p = pins_of(1, "review/web:pr-1@" D1);
	/* Another digest of the repository is not pinned. */
	assert_null(gc_pins_manifest(p, "review/web", D2));
	gc_pins_free(p);
}

/* A bare digest counts in every repository, and pins no tag. */
static void
test_bare_digest(void **state)
{
	struct gc_pins *p = pins_of(1, D1);

	assert_string_equal(gc_pins_manifest(p, "review/web", D1), D1);
	assert_string_equal(gc_pins_manifest(p, "other", D1), D1);
	assert_string_equal(gc_pins_manifest(p, "a/b/c", D1), D1);
	assert_null(gc_pins_manifest(p, "review/web", D2));
	assert_null(gc_pins_tag(p, "review/web", "latest"));
	assert_null(gc_pins_tag(p, "sha256", D1 + 7));
	gc_pins_free(p);
}

/* What the kubelet reports as imageID. */
static void
test_docker_pullable(void **state)
{
	struct gc_pins *p;

	pins_exactly("docker-pullable://registry.example:5000/review/web@" D1,
	             "review/web", NULL, D1);
	pins_exactly("docker-pullable://review/web@" D2, "review/web", NULL,
	             D2);
	p = pins_of(1, "docker-pullable://" D3);
	assert_string_equal(gc_pins_manifest(p, "any/repo", D3),
	                    "docker-pullable://" D3);
	gc_pins_free(p);
}

/* Several pins: each found by its own reference as sent; refs are
 * copies. */
static void
test_several_and_refs(void **state)
{
	char a[] = "registry.example/review/web:pr-1";
	char b[] = "review/api@" D2;
	char c[] = D3;
	char *refs[] = {a, b, c};
	const char *const *got;
	struct gc_pins *p = NULL;
	char err[256];

	assert_int_equal(gc_pins_parse(refs, 3, &p, err, sizeof(err)), 0);
	memset(a, 'x', sizeof(a) - 1); /* the caller's buffers may go */
	memset(b, 'x', sizeof(b) - 1);
	assert_int_equal(gc_pins_count(p), 3);
	got = gc_pins_refs(p);
	assert_non_null(got);
	assert_string_equal(got[0], "registry.example/review/web:pr-1");
	assert_string_equal(got[1], "review/api@" D2);
	assert_string_equal(got[2], D3);
	assert_string_equal(gc_pins_tag(p, "review/web", "pr-1"),
	                    "registry.example/review/web:pr-1");
	assert_string_equal(gc_pins_manifest(p, "review/api", D2),
	                    "review/api@" D2);
	assert_string_equal(gc_pins_manifest(p, "review/web", D3), D3);
	assert_null(gc_pins_manifest(p, "review/web", D2));
	gc_pins_free(p);
}

/* No pins, and NULL pins: nothing is pinned. */
static void
test_empty_and_null(void **state)
{
	struct gc_pins *p = NULL;
	char err[64];

	assert_int_equal(gc_pins_parse(NULL, 0, &p, err, sizeof(err)), 0);
	assert_non_null(p);
	assert_int_equal(gc_pins_count(p), 0);
	assert_null(gc_pins_tag(p, "r", "t"));
	assert_null(gc_pins_manifest(p, "r", D1));
	gc_pins_free(p);
	assert_int_equal(gc_pins_count(NULL), 0);
	assert_null(gc_pins_refs(NULL));
	assert_null(gc_pins_tag(NULL, "r", "t"));
	assert_null(gc_pins_manifest(NULL, "r", D1));
	gc_pins_free(NULL);
}

/* ---- matching is exact ---- */

static void
test_exact_matching(void **state)
{
	struct gc_pins *p = pins_of(2, "review/web:pr-1", "review/api@" D1);

	assert_non_null(gc_pins_tag(p, "review/web", "pr-1"));
	assert_null(gc_pins_tag(p, "review/web2", "pr-1"));
	assert_null(gc_pins_tag(p, "review", "pr-1"));
	assert_null(gc_pins_tag(p, "web", "pr-1"));
	assert_null(gc_pins_tag(p, "review/web/x", "pr-1"));
	assert_null(gc_pins_tag(p, "review/web", "pr-10"));
	assert_null(gc_pins_tag(p, "review/web", "pr-"));
	assert_null(gc_pins_tag(p, "review/web", "PR-1"));
	assert_null(gc_pins_manifest(p, "review/web", D1));
	assert_null(gc_pins_manifest(p, "review/api2", D1));
	assert_null(gc_pins_manifest(p, "review", D1));
	assert_non_null(gc_pins_manifest(p, "review/api", D1));
	/* A tag pin does not pin a digest, nor a digest pin a tag. */
	assert_null(gc_pins_tag(p, "review/api", "latest"));
	gc_pins_free(p);
}

/* ---- refusals ---- */

static void
test_refused_malformed(void **state)
{
	refused("");
	refused("Review/web:pr-1");               /* uppercase repository */
	refused("registry.example/Review/web:t"); /* ... after the host */
	refused("review/web:");                   /* empty tag */
	refused("review/web:-bad");               /* bad tag */
	refused("review//web:t");
	refused("review/web@");
	refused("review/web@not a digest");
	refused("review/web:pr-1@");
	refused("docker-pullable://");
	refused("registry.example:5000/");
}

/* A digest must be a digest: sha256 and 64 lower-case hex. */
static void
test_refused_bad_digest(void **state)
{
	refused("review/web@sha256:1234");
	refused("review/web@sha256:"
	        "ZZZZ1111111111111111111111111111111111111111111111111111111111"
	        "11");
	refused("sha256:1234");
}

/* A name alone pins nothing: refused, with or without a host. */
static void
test_refused_name_alone(void **state)
{
	refused("repo");
	refused("review/web");
	refused("registry.example:5000/review/web");
}

/* One bad reference among good ones refuses the lot, naming it. */
static void
test_refused_among_good(void **state)
{
	char *refs[] = {"review/web:pr-1", "review/api@" D1, "Bad/Ref:x", D2};

	refused_list(refs, 4, "Bad/Ref:x");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_host_forms),
	        cmocka_unit_test(test_no_host),
	        cmocka_unit_test(test_single_component_repo),
	        cmocka_unit_test(test_repo_digest),
	        cmocka_unit_test(test_tag_and_digest),
	        cmocka_unit_test(test_bare_digest),
	        cmocka_unit_test(test_docker_pullable),
	        cmocka_unit_test(test_several_and_refs),
	        cmocka_unit_test(test_empty_and_null),
	        cmocka_unit_test(test_exact_matching),
	        cmocka_unit_test(test_refused_malformed),
	        cmocka_unit_test(test_refused_bad_digest),
	        cmocka_unit_test(test_refused_name_alone),
	        cmocka_unit_test(test_refused_among_good),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
