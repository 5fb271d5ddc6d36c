/* libFuzzer harness for the retention policy file (gc/policy.c, with
 * common/duration.c, common/glob.c and common/jsonline.c's located error
 * messages): gc_policy_parse() from a buffer, then gc_policy_eval() and
 * gc_policy_reason() on a fixed set of repositories and tags. Built by
 * `make fuzz`.
 *
 * Input: the policy file.
 *
 * Promises checked, besides crashes and sanitizer reports:
 *   - a refusal is RC_BAD_REQUEST with one line in err starting with the
 *     file name, and *out untouched;
 *   - parsing is deterministic (same answer, rule count, untagged_after
 *     and message the second time);
 *   - every evaluated tag is consistent: its rule is 0 or a rule of the
 *     policy; protected and unexpiring tags have no expiry time, the
 *     others one that their reason explains (the TTL label's time,
 *     pushed + expire_after > pushed, the last pull or push + idle_after,
 *     now for keep_last) and that is the earliest of them; with no policy
 *     only TTL labels apply; the reason formats to a non-empty line. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/rc.h"
#include "gc/gc.h"

#define POLICY_MAX (64 * 1024)
#define NOW        1767225600ull
#define DAY        86400ull

static const char *const repos[] = {"review/app", "review-1/web", "apps/web",
                                    "scratch-1",  "team/a/b",     "x"};

static const struct {
	const char *tag;
	uint64_t pushed, last_pulled, ttl;
} tags[] = {
        {"pr-1", NOW - 30 * DAY, 0, 0},
        {"pr-2", NOW - 8 * DAY, NOW - 1 * DAY, 0},
        {"pr-3", NOW - 1 * DAY, 0, NOW + DAY},
        {"pr-4", NOW - 3600, NOW - 60, NOW - 10},
        {"main", NOW - 400 * DAY, NOW - 1, 0},
        {"latest", NOW - 2 * DAY, 0, 0},
        {"v1.2.3", NOW - 100 * DAY, 0, 0},
        {"v2", NOW - 1, 0, 0},
        {"sha-0123abcd", NOW - 8 * DAY, 0, NOW - 5 * DAY},
        {"nightly-2025-12-31", NOW - DAY, 0, 0},
        {"a", NOW - 9 * DAY, NOW - 9 * DAY, 0},
        {"b", NOW - 9 * DAY, NOW - 9 * DAY, 0},
};
#define N_TAGS (sizeof(tags) / sizeof(tags[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_eval(const struct gc_policy *p, const char *repo)
{
	struct gc_policy_tag t[N_TAGS];
	size_t nrules = gc_policy_rules(p);
	char why[256];

	memset(t, 0, sizeof(t));
	for (size_t i = 0; i < N_TAGS; i++) {
		t[i].tag = tags[i].tag;
		t[i].pushed = tags[i].pushed;
		t[i].last_pulled = tags[i].last_pulled;
		t[i].ttl_expires = tags[i].ttl;
		t[i].expires = 12345;
		t[i].reason = 99;
	}
	if (gc_policy_eval(p, repo, t, N_TAGS, NOW) != RC_OK)
		abort();
	for (size_t i = 0; i < N_TAGS; i++) {
		const struct gc_policy_tag *x = &t[i];

		if (x->rule > nrules || (p == NULL && x->rule != 0))
			abort();
		switch (x->reason) {
		case GC_EXPIRY_NONE:
			if (x->expires != 0 || x->ttl_expires != 0)
				abort();
			break;
		case GC_EXPIRY_PROTECTED:
			if (x->expires != 0 || x->rule == 0)
				abort();
			break;
		case GC_EXPIRY_TTL:
			if (x->expires != x->ttl_expires || x->expires == 0)
				abort();
			break;
		case GC_EXPIRY_EXPIRE_AFTER:
			if (x->rule == 0 || x->expires <= x->pushed)
				abort();
			break;
		case GC_EXPIRY_IDLE_AFTER:
			if (x->rule == 0 ||
			    x->expires <= (x->last_pulled > x->pushed
			                           ? x->last_pulled
			                           : x->pushed))
				abort();
			break;
		case GC_EXPIRY_KEEP_LAST:
			if (x->rule == 0 || x->expires != NOW)
				abort();
			break;
		default: abort();
		}
		/* the earliest: a TTL label never expires later than this */
		if (x->reason != GC_EXPIRY_PROTECTED && x->ttl_expires != 0 &&
		    x->expires > x->ttl_expires)
			abort();
		if (p == NULL && x->reason != GC_EXPIRY_NONE &&
		    x->reason != GC_EXPIRY_TTL)
			abort();
		why[0] = '\0';
		gc_policy_reason(p, x, why, sizeof(why));
		if (why[0] == '\0' || strchr(why, '\n') != NULL)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gc_policy *p = NULL, *q = NULL;
	char err[512], err2[512];
	int rc, rc2;

	if (size > POLICY_MAX)
		return 0;
	err[0] = err2[0] = '\0';
	rc = gc_policy_parse((const char *)data, size, "policy.json", &p, err,
	                     sizeof(err));
	rc2 = gc_policy_parse((const char *)data, size, "policy.json", &q, err2,
	                      sizeof(err2));
	if (rc != rc2)
		abort();
	if (rc != RC_OK) {
		if (rc != RC_BAD_REQUEST || p != NULL || q != NULL ||
		    strncmp(err, "policy.json", 11) != 0 ||
		    strchr(err, '\n') != NULL || strcmp(err, err2) != 0)
			abort();
		return 0;
	}
	if (p == NULL || q == NULL ||
	    gc_policy_rules(p) != gc_policy_rules(q) ||
	    gc_policy_untagged_after(p) != gc_policy_untagged_after(q))
		abort();
	for (size_t i = 0; i < sizeof(repos) / sizeof(repos[0]); i++)
		check_eval(p, repos[i]);
	check_eval(NULL, repos[0]);
	gc_policy_free(p);
	gc_policy_free(q);
	return 0;
}
