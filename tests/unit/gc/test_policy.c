/* Unit tests for gc/policy.c: the retention policy file (every refusal
 * with its exact line, path and reason), loading from a real temp dir,
 * and the evaluation of the tags of a repository (first match, globs,
 * protect, TTL labels, expire_after, idle_after, keep_last ranking). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/rc.h"
#include "gc/gc.h"

#define H 3600ull
#define D 86400ull

/* 2026-01-01T00:00:00Z: "now" of most evaluations. */
#define NOW 1767225600ull

static const char example[] =
        "{\n"
        "  \"untagged_after\": \"6h\",\n"
        "  \"rules\": [\n"
        "    {\"repositories\": [\"review/**\"], \"tags\": [\"pr-*\"],\n"
        "     \"expire_after\": \"7d\", \"idle_after\": \"2d\",\n"
        "     \"keep_last\": 2, \"protect\": [\"main\", \"v*\"]},\n"
        "    {\"repositories\": [\"apps/**\"],\n"
        "     \"tags\": [\"main\", \"latest\", \"v*\"], \"protect\": true},\n"
        "    {\"repositories\": [\"scratch/*\"], \"expire_after\": \"12h\"}\n"
        "  ]\n"
        "}\n";

static struct gc_policy *
parsed(const char *text)
{
	struct gc_policy *p = NULL;
	char err[256];
	int rc = gc_policy_parse(text, strlen(text), "policy.json", &p, err,
	                         sizeof(err));

	if (rc != RC_OK)
		fail_msg("refused (%d): %s\n%s", rc, err, text);
	assert_non_null(p);
	return p;
}

/* The text is refused with exactly the message want, and *out is left
 * alone. */
static void
refused(const char *text, const char *want)
{
	struct gc_policy *p = (struct gc_policy *)&p; /* a canary */
	char err[256];
	int rc;

	memset(err, 'x', sizeof(err));
	rc = gc_policy_parse(text, strlen(text), "policy.json", &p, err,
	                     sizeof(err));
	if (rc != RC_BAD_REQUEST || strcmp(err, want) != 0)
		print_error("text:\n%s\nrc %d\ngot:  %s\nwant: %s\n", text, rc,
		            err, want);
	assert_int_equal(rc, RC_BAD_REQUEST);
	assert_string_equal(err, want);
	assert_ptr_equal(p, (struct gc_policy *)&p);
}

/* ---- parsing ---- */

static void
test_parse_example(void **state)
{
	struct gc_policy *p = parsed(example);

	assert_int_equal(gc_policy_rules(p), 3);
	assert_int_equal(gc_policy_untagged_after(p), 6 * H);
	gc_policy_free(p);

	p = parsed("{}");
	assert_int_equal(gc_policy_rules(p), 0);
	assert_int_equal(gc_policy_untagged_after(p), 0);
	gc_policy_free(p);

	p = parsed("{\"rules\": []}");
	assert_int_equal(gc_policy_rules(p), 0);
	gc_policy_free(p);

	p = parsed("{\"untagged_after\": \"90m\"}");
	assert_int_equal(gc_policy_untagged_after(p), 5400);
	gc_policy_free(p);

	/* protect: false next to a real criterion is just "no protection";
	 * a protect array alone is a rule too. */
	p = parsed("{\"rules\": [{\"repositories\": [\"a\"], "
	           "\"keep_last\": 100000, \"protect\": false}, "
	           "{\"repositories\": [\"b\"], \"protect\": [\"v*\"]}, "
	           "{\"repositories\": [\"c\"], \"idle_after\": \"3650d\"}]}");
	assert_int_equal(gc_policy_rules(p), 3);
	gc_policy_free(p);

	gc_policy_free(NULL);
	assert_int_equal(gc_policy_rules(NULL), 0);
	assert_int_equal(gc_policy_untagged_after(NULL), 0);
}

static void
test_parse_syntax(void **state)
{
	refused("{\n"
	        "  \"rules\": [\n"
	        "    {\"repositories\": [\"a\"],, \"keep_last\": 1}\n"
	        "  ]\n"
	        "}\n",
	        "policy.json:3:28: string or '}' expected near ','");
	refused("", "policy.json:1:0: '[' or '{' expected near end of file");
	refused("{\"rules\": []} x",
	        "policy.json:1:15: end of file expected near 'x'");
	refused("{\"rules\": [],\n \"rules\": []}",
	        "policy.json:2:8: duplicate object key near '\"rules\"'");
}

static void
test_parse_top_level(void **state)
{
	refused("[]", "policy.json: must be a JSON object");
	refused("{\n  \"untagged_after\": \"6h\",\n  \"rule\": []\n}\n",
	        "policy.json:3: rule: unknown key");
	refused("{\n  \"untagged_after\": 6\n}\n",
	        "policy.json:2: untagged_after: must be a duration string "
	        "such as \"7d\"");
	refused("{\n  \"untagged_after\": \"6 h\"\n}\n",
	        "policy.json:2: untagged_after: \"6 h\" is not a duration "
	        "(a number and one of s, m, h, d, w)");
	refused("{\n  \"rules\": {}\n}\n",
	        "policy.json:2: rules: must be an array of rules");
	refused("{\n  \"rules\": [\n    \"a\"\n  ]\n}\n",
	        "policy.json:3: rules[0]: must be an object");
}

static void
test_parse_rule_keys(void **state)
{
	refused("{\n"
	        "  \"rules\": [\n"
	        "    {\"repositories\": [\"a\"], \"keep_last\": 1},\n"
	        "    {\"repositories\": [\"a\"],\n"
	        "     \"expire\": \"7d\"}\n"
	        "  ]\n"
	        "}\n",
	        "policy.json:5: rules[1].expire: unknown key");
	/* A key holding a control character is shown without it. */
	refused("{\"rules\": [{\"repositories\": [\"a\"], \"keep_last\": 1, "
	        "\"a\\nb\": 1}]}",
	        "policy.json:1: rules[0].a?b: unknown key");
	refused("{\n  \"rules\": [\n    {\"keep_last\": 1}\n  ]\n}\n",
	        "policy.json:3: rules[0].repositories: missing (an array of "
	        "globs)");
}

static void
test_parse_repositories(void **state)
{
	refused("{\n  \"rules\": [\n    {\"keep_last\": 1,\n"
	        "     \"repositories\": []}\n  ]\n}\n",
	        "policy.json:4: rules[0].repositories: must be a non-empty "
	        "array of globs");
	refused("{\"rules\": [{\"keep_last\": 1, \"repositories\": \"a/*\"}]}",
	        "policy.json:1: rules[0].repositories: must be a non-empty "
	        "array of globs");
	refused("{\n  \"rules\": [\n    {\"keep_last\": 1,\n"
	        "     \"repositories\": [\"a\",\n"
	        "                      7]}\n  ]\n}\n",
	        "policy.json:5: rules[0].repositories[1]: must be a glob of "
	        "1 to 255 characters");
	refused("{\"rules\": [{\"keep_last\": 1, \"repositories\": [\"\"]}]}",
	        "policy.json:1: rules[0].repositories[0]: must be a glob of "
	        "1 to 255 characters");
	refused("{\"rules\": [{\"keep_last\": 1, \"repositories\": "
	        "[\"a b\"]}]}",
	        "policy.json:1: rules[0].repositories[0]: space or control "
	        "character in a glob");
}

static void
test_parse_tags(void **state)
{
	refused("{\"rules\": [{\"repositories\": [\"a\"], \"keep_last\": 1,\n"
	        "  \"tags\": []}]}",
	        "policy.json:2: rules[0].tags: must be a non-empty array of "
	        "tag globs");
	refused("{\"rules\": [{\"repositories\": [\"a\"], \"keep_last\": 1,\n"
	        "  \"tags\": [\"pr-*\",\n   \"x/y\"]}]}",
	        "policy.json:3: rules[0].tags[1]: a tag holds no '/', so "
	        "this glob would never match");
}

static void
test_parse_durations(void **state)
{
	/* The message of the brief, on line 7. */
	refused("{\n"
	        "  \"untagged_after\": \"6h\",\n"
	        "  \"rules\": [\n"
	        "    {\"repositories\": [\"a/**\"],\n"
	        "     \"expire_after\": \"7d\"},\n"
	        "    {\"repositories\": [\"b/**\"],\n"
	        "     \"expire_after\": \"3x\"}\n"
	        "  ]\n"
	        "}\n",
	        "policy.json:7: rules[1].expire_after: \"3x\" is not a "
	        "duration (a number and one of s, m, h, d, w)");
	refused("{\"rules\": [{\"repositories\": [\"a\"],\n"
	        "  \"idle_after\": \"3651d\"}]}",
	        "policy.json:2: rules[0].idle_after: \"3651d\" is longer than "
	        "10 years");
	refused("{\"rules\": [{\"repositories\": [\"a\"],\n"
	        "  \"idle_after\": \"99999999999999999999d\"}]}",
	        "policy.json:2: rules[0].idle_after: \"99999999999999999999d\""
	        " is longer than 10 years");
	refused("{\"rules\": [{\"repositories\": [\"a\"],\n"
	        "  \"expire_after\": 604800}]}",
	        "policy.json:2: rules[0].expire_after: must be a duration "
	        "string such as \"7d\"");
	refused("{\"rules\": [{\"repositories\": [\"a\"],\n"
	        "  \"expire_after\": \"0d\"}]}",
	        "policy.json:2: rules[0].expire_after: \"0d\" is not a "
	        "duration (a number and one of s, m, h, d, w)");
	refused("{\"rules\": [{\"repositories\": [\"a\"],\n"
	        "  \"expire_after\": \"1.5d\"}]}",
	        "policy.json:2: rules[0].expire_after: \"1.5d\" is not a "
	        "duration (a number and one of s, m, h, d, w)");
	/* A long value is cut, a quote in it does not end the message's
	 * quotes. */
	refused("{\"rules\": [{\"repositories\": [\"a\"],\n"
	        "  \"expire_after\": "
	        "\"\\\"01234567890123456789012345678901234567890123456789\"}]}",
	        "policy.json:2: rules[0].expire_after: "
	        "\"?0123456789012345678901234567890123456789012...\" is not a "
	        "duration (a number and one of s, m, h, d, w)");
}

static void
test_parse_keep_last(void **state)
{
	static const char *values[] = {"0",   "-1",   "1.5",    "\"2\"",
	                               "1e2", "true", "100001", "null"};
	const char *want = "policy.json:3: rules[0].keep_last: must be an "
	                   "integer from 1 to 100000";
	char text[256];

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		snprintf(text, sizeof(text),
		         "{\"rules\": [\n"
		         "  {\"repositories\": [\"a\"],\n"
		         "   \"keep_last\": %s}\n"
		         "]}\n",
		         values[i]);
		refused(text, want);
	}
}

static void
test_parse_protect(void **state)
{
	refused("{\"rules\": [\n"
	        "  {\"repositories\": [\"a\"],\n"
	        "   \"protect\": false}\n"
	        "]}\n",
	        "policy.json:3: rules[0].protect: false protects nothing, "
	        "and the rule has no expire_after, idle_after or keep_last");
	refused("{\"rules\": [\n"
	        "  {\"repositories\": [\"a\"], \"idle_after\": \"1d\",\n"
	        "   \"protect\": true}\n"
	        "]}\n",
	        "policy.json:3: rules[0].protect: true protects every tag of "
	        "the rule, so its idle_after would never apply");
	refused("{\"rules\": [\n"
	        "  {\"repositories\": [\"a\"], \"keep_last\": 3,\n"
	        "   \"protect\": \"main\"}\n"
	        "]}\n",
	        "policy.json:3: rules[0].protect: must be true or a non-empty "
	        "array of tag globs");
	refused("{\"rules\": [\n"
	        "  {\"repositories\": [\"a\"], \"keep_last\": 3,\n"
	        "   \"protect\": []}\n"
	        "]}\n",
	        "policy.json:3: rules[0].protect: must be true or a non-empty "
	        "array of tag globs");
	refused("{\"rules\": [\n"
	        "  {\"repositories\": [\"a\"], \"keep_last\": 3,\n"
	        "   \"protect\": [\"v*\", null]}\n"
	        "]}\n",
	        "policy.json:3: rules[0].protect[1]: must be a glob of 1 to "
	        "255 characters");
}

static void
test_parse_no_criterion(void **state)
{
	refused("{\"rules\": [\n"
	        "  {\"repositories\": [\"a\"]},\n"
	        "  {\"repositories\": [\"b\"],\n"
	        "   \"tags\": [\"x\"]}\n"
	        "]}\n",
	        "policy.json:2: rules[0]: needs at least one of expire_after, "
	        "idle_after, keep_last, protect");
}

static void
test_parse_errors_small_buffer(void **state)
{
	struct gc_policy *p = NULL;
	char err[16];

	/* Truncated, still a string; no buffer at all is fine too. */
	assert_int_equal(
	        gc_policy_parse("[]", 2, "policy.json", &p, err, sizeof(err)),
	        RC_BAD_REQUEST);
	assert_string_equal(err, "policy.json: mu");
	assert_int_equal(gc_policy_parse("[]", 2, "policy.json", &p, NULL, 0),
	                 RC_BAD_REQUEST);
	assert_int_equal(gc_policy_parse("{", 1, "policy.json", &p, NULL, 0),
	                 RC_BAD_REQUEST);
	assert_null(p);
}

/* ---- loading ---- */

struct tmp {
	char dir[64];
	char path[128];
};

static void
tmp_write(struct tmp *t, const char *text, size_t len)
{
	FILE *f;

	snprintf(t->dir, sizeof(t->dir), "/tmp/berth-policy-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/policy.json", t->dir);
	assert_non_null(f = fopen(t->path, "w"));
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
tmp_remove(struct tmp *t)
{
	unlink(t->path);
	assert_int_equal(rmdir(t->dir), 0);
}

static void
test_load(void **state)
{
	struct gc_policy *p = NULL;
	struct tmp t;
	char err[256], want[256];

	tmp_write(&t, example, strlen(example));
	assert_int_equal(gc_policy_load(t.path, &p, err, sizeof(err)), RC_OK);
	assert_int_equal(gc_policy_rules(p), 3);
	gc_policy_free(p);
	tmp_remove(&t);

	/* Errors are named by the path. */
	tmp_write(&t, "{\n  \"rules\": 1\n}\n",
	          strlen("{\n  \"rules\": 1\n}\n"));
	p = NULL;
	assert_int_equal(gc_policy_load(t.path, &p, err, sizeof(err)),
	                 RC_BAD_REQUEST);
	snprintf(want, sizeof(want), "%s:2: rules: must be an array of rules",
	         t.path);
	assert_string_equal(err, want);
	assert_null(p);
	tmp_remove(&t);
}

static void
test_load_not_found(void **state)
{
	struct gc_policy *p = NULL;
	char err[256];

	assert_int_equal(gc_policy_load("/nonexistent/berth/policy.json", &p,
	                                err, sizeof(err)),
	                 -ENOENT);
	assert_string_equal(err, "/nonexistent/berth/policy.json: No such "
	                         "file or directory");
	assert_null(p);
	assert_int_equal(gc_policy_load("/tmp", &p, err, sizeof(err)), -EISDIR);
	assert_string_equal(err, "/tmp: Is a directory");
	assert_null(p);
}

static void
test_load_size_limit(void **state)
{
	size_t max = 1u << 20;
	char *text = malloc(max + 1);
	struct gc_policy *p = NULL;
	struct tmp t;
	char err[256], want[256];

	assert_non_null(text);
	/* Exactly 1 MiB (a policy padded with spaces) loads. */
	memset(text, ' ', max + 1);
	memcpy(text, example, strlen(example));
	tmp_write(&t, text, max);
	assert_int_equal(gc_policy_load(t.path, &p, err, sizeof(err)), RC_OK);
	assert_int_equal(gc_policy_rules(p), 3);
	gc_policy_free(p);
	tmp_remove(&t);

	/* One byte more does not. */
	p = NULL;
	tmp_write(&t, text, max + 1);
	assert_int_equal(gc_policy_load(t.path, &p, err, sizeof(err)),
	                 RC_TOO_LARGE);
	snprintf(want, sizeof(want), "%s: larger than 1 MiB", t.path);
	assert_string_equal(err, want);
	assert_null(p);
	tmp_remove(&t);
	free(text);
}

/* ---- evaluation ---- */

static struct gc_policy_tag
tag(const char *name, uint64_t pushed, uint64_t last_pulled,
    uint64_t ttl_expires)
{
	struct gc_policy_tag t;

	memset(&t, 0x5a, sizeof(t)); /* the out fields are always written */
	t.tag = name;
	t.pushed = pushed;
	t.last_pulled = last_pulled;
	t.ttl_expires = ttl_expires;
	return t;
}

static void
eval(const struct gc_policy *p, const char *repo, struct gc_policy_tag *t,
     size_t n, uint64_t now)
{
	assert_int_equal(gc_policy_eval(p, repo, t, n, now), RC_OK);
}

static void
want(const struct gc_policy *p, const struct gc_policy_tag *t, uint64_t expires,
     enum gc_expiry_reason reason, unsigned rule, const char *text)
{
	char buf[128];

	gc_policy_reason(p, t, buf, sizeof(buf));
	if (t->expires != expires || t->reason != reason || t->rule != rule ||
	    strcmp(buf, text) != 0)
		print_error("tag %s: expires %llu reason %d rule %u \"%s\"; "
		            "want %llu %d %u \"%s\"\n",
		            t->tag, (unsigned long long)t->expires, t->reason,
		            t->rule, buf, (unsigned long long)expires, reason,
		            rule, text);
	assert_true(t->expires == expires);
	assert_int_equal(t->reason, reason);
	assert_int_equal(t->rule, rule);
	assert_string_equal(buf, text);
}

static int
expired(const struct gc_policy_tag *t, uint64_t now)
{
	return t->expires != 0 && t->expires <= now;
}

static void
test_eval_first_match(void **state)
{
	struct gc_policy *p = parsed(
	        "{\"rules\": ["
	        "{\"repositories\": [\"review/**\"], \"tags\": [\"pr-*\"], "
	        "\"expire_after\": \"7d\"},"
	        "{\"repositories\": [\"review/**\", \"other\"], "
	        "\"expire_after\": \"1d\"},"
	        "{\"repositories\": [\"**\"], \"tags\": [\"pr-*\"], "
	        "\"expire_after\": \"1h\"}]}");
	struct gc_policy_tag t[3];

	t[0] = tag("pr-1", NOW - 2 * D, 0, 0);
	t[1] = tag("main", NOW - 2 * D, 0, 0);
	t[2] = tag("xpr-1", NOW - 2 * D, 0, 0);
	eval(p, "review/a/b", t, 3, NOW);
	/* pr-1 matches rules 1, 2 and 3: the first one wins. */
	want(p, &t[0], NOW + 5 * D, GC_EXPIRY_EXPIRE_AFTER, 1,
	     "policy rule 1 (expire_after 7d)");
	assert_false(expired(&t[0], NOW));
	want(p, &t[1], NOW - D, GC_EXPIRY_EXPIRE_AFTER, 2,
	     "policy rule 2 (expire_after 1d)");
	assert_true(expired(&t[1], NOW));
	want(p, &t[2], NOW - D, GC_EXPIRY_EXPIRE_AFTER, 2,
	     "policy rule 2 (expire_after 1d)");

	/* "review" itself is not under review/: rules 1 and 2 do not
	 * match, rule 3 does for pr-* only. */
	t[0] = tag("pr-1", NOW - 2 * H, 0, 0);
	t[1] = tag("main", NOW - 2 * H, 0, 0);
	eval(p, "review", t, 2, NOW);
	want(p, &t[0], NOW - H, GC_EXPIRY_EXPIRE_AFTER, 3,
	     "policy rule 3 (expire_after 1h)");
	want(p, &t[1], 0, GC_EXPIRY_NONE, 0, "no expiry");
	assert_false(expired(&t[1], NOW));
	eval(p, "other", t, 2, NOW);
	assert_int_equal(t[0].rule, 2);
	assert_int_equal(t[1].rule, 2);
	eval(p, "other/x", t, 2, NOW);
	assert_int_equal(t[0].rule, 3);
	assert_int_equal(t[1].rule, 0);
	gc_policy_free(p);
}

static void
test_eval_globs(void **state)
{
	struct gc_policy *p =
	        parsed("{\"rules\": ["
	               "{\"repositories\": [\"scratch/*\"], \"expire_after\": "
	               "\"12h\"},"
	               "{\"repositories\": [\"team/**/cache\"], "
	               "\"tags\": [\"v*\", \"*-rc\", \"latest\"], "
	               "\"expire_after\": \"1d\"}]}");
	struct gc_policy_tag t[5];

	t[0] = tag("a", NOW, 0, 0);
	eval(p, "scratch/x", t, 1, NOW);
	assert_int_equal(t[0].rule, 1);
	eval(p, "scratch/x/y", t, 1, NOW);
	assert_int_equal(t[0].rule, 0);
	eval(p, "scratch", t, 1, NOW);
	assert_int_equal(t[0].rule, 0);

	t[0] = tag("v1.2", NOW, 0, 0);
	t[1] = tag("1.0-rc", NOW, 0, 0);
	t[2] = tag("latest", NOW, 0, 0);
	t[3] = tag("latest2", NOW, 0, 0);
	t[4] = tag("V1", NOW, 0, 0);
	eval(p, "team/a/b/cache", t, 5, NOW);
	assert_int_equal(t[0].rule, 2);
	assert_int_equal(t[1].rule, 2);
	assert_int_equal(t[2].rule, 2);
	assert_int_equal(t[3].rule, 0);
	assert_int_equal(t[4].rule, 0); /* globs are case-sensitive */
	eval(p, "team/cache", t, 5, NOW);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(t[i].rule, 0);
	gc_policy_free(p);
}

static void
test_eval_protect(void **state)
{
	struct gc_policy *p = parsed(example);
	struct gc_policy_tag t[4];

	/* Under apps/: rule 2 protects, even against a TTL label that
	 * passed. */
	t[0] = tag("v1", NOW - 400 * D, 0, NOW - D);
	t[1] = tag("latest", NOW - 400 * D, 0, 0);
	t[2] = tag("pr-3", NOW - 400 * D, 0, NOW - D);
	eval(p, "apps/web", t, 3, NOW);
	want(p, &t[0], 0, GC_EXPIRY_PROTECTED, 2, "protected by policy rule 2");
	assert_false(expired(&t[0], NOW));
	want(p, &t[1], 0, GC_EXPIRY_PROTECTED, 2, "protected by policy rule 2");
	/* not matched by rule 2's tags: only its TTL label */
	want(p, &t[2], NOW - D, GC_EXPIRY_TTL, 0, "ttl label");
	assert_true(expired(&t[2], NOW));

	/* A protect array: the governed tags that match it are protected,
	 * the others expire as usual. */
	gc_policy_free(p);
	p = parsed("{\"rules\": [{\"repositories\": [\"r\"], "
	           "\"expire_after\": \"1d\", \"protect\": [\"v*\", "
	           "\"main\"]}]}");
	t[0] = tag("v2", NOW - 9 * D, 0, NOW - D);
	t[1] = tag("main", NOW - 9 * D, 0, 0);
	t[2] = tag("mainline", NOW - 9 * D, 0, 0);
	t[3] = tag("dev", NOW - 9 * D, 0, NOW - 8 * D - H);
	eval(p, "r", t, 4, NOW);
	want(p, &t[0], 0, GC_EXPIRY_PROTECTED, 1, "protected by policy rule 1");
	want(p, &t[1], 0, GC_EXPIRY_PROTECTED, 1, "protected by policy rule 1");
	want(p, &t[2], NOW - 8 * D, GC_EXPIRY_EXPIRE_AFTER, 1,
	     "policy rule 1 (expire_after 1d)");
	want(p, &t[3], NOW - 8 * D - H, GC_EXPIRY_TTL, 1, "ttl label");
	gc_policy_free(p);
}

static void
test_eval_keep_last(void **state)
{
	struct gc_policy *p =
	        parsed("{\"rules\": ["
	               "{\"repositories\": [\"r\"], \"tags\": [\"pr-*\"], "
	               "\"keep_last\": 2, \"protect\": [\"pr-keep*\"]},"
	               "{\"repositories\": [\"r\"], \"keep_last\": 1}]}");
	struct gc_policy_tag t[8];

	/* Given in no particular order. */
	t[0] = tag("pr-old", NOW - 5 * D, 0, 0);
	t[1] = tag("pr-b", NOW - D, 0, 0);     /* tie with pr-a */
	t[2] = tag("pr-keep1", NOW, 0, 0);     /* newest, protected */
	t[3] = tag("pr-a", NOW - D, 0, 0);     /* tie: a before b */
	t[4] = tag("pr-new", NOW - H, 0, 0);   /* newest unprotected */
	t[5] = tag("main", NOW - 9 * D, 0, 0); /* rule 2, newest */
	t[6] = tag("dev", NOW - 10 * D, 0, 0); /* rule 2, second */
	t[7] = tag("pr-keep2", NOW - 20 * D, 0, 0);
	eval(p, "r", t, 8, NOW);
	/* Rule 1 keeps pr-new and pr-a (the tie goes by name); the
	 * protected ones are not counted among the 2. The tags of rule 2
	 * are ranked on their own. */
	want(p, &t[4], 0, GC_EXPIRY_NONE, 1, "no expiry");
	want(p, &t[3], 0, GC_EXPIRY_NONE, 1, "no expiry");
	want(p, &t[1], NOW, GC_EXPIRY_KEEP_LAST, 1,
	     "policy rule 1 (keep_last 2)");
	assert_true(expired(&t[1], NOW));
	want(p, &t[0], NOW, GC_EXPIRY_KEEP_LAST, 1,
	     "policy rule 1 (keep_last 2)");
	want(p, &t[2], 0, GC_EXPIRY_PROTECTED, 1, "protected by policy rule 1");
	want(p, &t[7], 0, GC_EXPIRY_PROTECTED, 1, "protected by policy rule 1");
	want(p, &t[5], 0, GC_EXPIRY_NONE, 2, "no expiry");
	want(p, &t[6], NOW, GC_EXPIRY_KEEP_LAST, 2,
	     "policy rule 2 (keep_last 1)");

	/* The same tags in reverse order give the same answers. */
	for (size_t i = 0; i < 4; i++) {
		struct gc_policy_tag x = t[i];

		t[i] = t[7 - i];
		t[7 - i] = x;
	}
	eval(p, "r", t, 8, NOW);
	for (size_t i = 0; i < 8; i++) {
		int kept = !strcmp(t[i].tag, "pr-new") ||
		           !strcmp(t[i].tag, "pr-a") ||
		           !strcmp(t[i].tag, "main") ||
		           !strncmp(t[i].tag, "pr-keep", 7);

		assert_int_equal(expired(&t[i], NOW), !kept);
	}

	/* Fewer tags than keep_last: nothing goes. */
	t[0] = tag("pr-1", NOW - 30 * D, 0, 0);
	t[1] = tag("pr-2", NOW - 40 * D, 0, 0);
	eval(p, "r", t, 2, NOW);
	want(p, &t[0], 0, GC_EXPIRY_NONE, 1, "no expiry");
	want(p, &t[1], 0, GC_EXPIRY_NONE, 1, "no expiry");
	/* Another repository: no rule, nothing counted. */
	eval(p, "s", t, 2, NOW);
	want(p, &t[0], 0, GC_EXPIRY_NONE, 0, "no expiry");
	eval(p, "r", t, 0, NOW);
	eval(p, "r", NULL, 0, NOW);
	gc_policy_free(p);
}

static void
test_eval_keep_last_with_others(void **state)
{
	struct gc_policy *p = parsed(
	        "{\"rules\": [{\"repositories\": [\"r\"], \"keep_last\": 1, "
	        "\"expire_after\": \"7d\", \"idle_after\": \"2d\"}]}");
	struct gc_policy_tag t[3];

	/* The second newest goes now by keep_last unless something earlier
	 * already took it. */
	t[0] = tag("new", NOW - H, 0, 0);
	t[1] = tag("mid", NOW - D, NOW - H, 0);         /* keep_last: now */
	t[2] = tag("old", NOW - 3 * D, NOW - 3 * D, 0); /* idle: now - 1d */
	eval(p, "r", t, 3, NOW);
	want(p, &t[0], NOW - H + 2 * D, GC_EXPIRY_IDLE_AFTER, 1,
	     "policy rule 1 (idle_after 2d)");
	want(p, &t[1], NOW, GC_EXPIRY_KEEP_LAST, 1,
	     "policy rule 1 (keep_last 1)");
	want(p, &t[2], NOW - D, GC_EXPIRY_IDLE_AFTER, 1,
	     "policy rule 1 (idle_after 2d)");
	/* An idle expiry at exactly now ties with keep_last: idle wins. */
	t[1] = tag("mid", NOW - 2 * D, 0, 0);
	eval(p, "r", t, 2, NOW);
	want(p, &t[1], NOW, GC_EXPIRY_IDLE_AFTER, 1,
	     "policy rule 1 (idle_after 2d)");
	gc_policy_free(p);
}

static void
test_eval_ttl_vs_policy(void **state)
{
	struct gc_policy *p =
	        parsed("{\"rules\": [{\"repositories\": [\"r\"], "
	               "\"expire_after\": \"7d\", \"idle_after\": \"7d\"}]}");
	struct gc_policy_tag t[4];

	t[0] = tag("ttl-first", NOW, 0, NOW + D);
	t[1] = tag("policy-first", NOW, 0, NOW + 30 * D);
	t[2] = tag("tie", NOW, 0, NOW + 7 * D);
	t[3] = tag("no-label", NOW, 0, 0);
	eval(p, "r", t, 4, NOW);
	want(p, &t[0], NOW + D, GC_EXPIRY_TTL, 1, "ttl label");
	want(p, &t[1], NOW + 7 * D, GC_EXPIRY_EXPIRE_AFTER, 1,
	     "policy rule 1 (expire_after 7d)");
	/* TTL, expire_after and idle_after all say now + 7d: TTL wins. */
	want(p, &t[2], NOW + 7 * D, GC_EXPIRY_TTL, 1, "ttl label");
	/* expire_after and idle_after tie: expire_after wins. */
	want(p, &t[3], NOW + 7 * D, GC_EXPIRY_EXPIRE_AFTER, 1,
	     "policy rule 1 (expire_after 7d)");
	/* expired exactly at its time, not a second before */
	assert_false(expired(&t[0], NOW + D - 1));
	assert_true(expired(&t[0], NOW + D));
	gc_policy_free(p);
}

static void
test_eval_idle(void **state)
{
	struct gc_policy *p = parsed("{\"rules\": [{\"repositories\": [\"r\"], "
	                             "\"idle_after\": \"2d\"}]}");
	struct gc_policy_tag t[3];

	t[0] = tag("never-pulled", NOW - 3 * D, 0, 0);
	t[1] = tag("pulled", NOW - 3 * D, NOW - H, 0);
	/* pushed again after its last pull: idle since the push */
	t[2] = tag("repushed", NOW - H, NOW - 5 * D, 0);
	eval(p, "r", t, 3, NOW);
	want(p, &t[0], NOW - D, GC_EXPIRY_IDLE_AFTER, 1,
	     "policy rule 1 (idle_after 2d)");
	assert_true(expired(&t[0], NOW));
	want(p, &t[1], NOW - H + 2 * D, GC_EXPIRY_IDLE_AFTER, 1,
	     "policy rule 1 (idle_after 2d)");
	assert_false(expired(&t[1], NOW));
	want(p, &t[2], NOW - H + 2 * D, GC_EXPIRY_IDLE_AFTER, 1,
	     "policy rule 1 (idle_after 2d)");
	gc_policy_free(p);
}

static void
test_eval_no_policy(void **state)
{
	struct gc_policy *p = parsed("{\"untagged_after\": \"1h\"}");
	struct gc_policy_tag t[2];

	t[0] = tag("labelled", NOW - D, 0, NOW - H);
	t[1] = tag("plain", NOW - 900 * D, 0, 0);
	eval(NULL, "anything", t, 2, NOW);
	want(NULL, &t[0], NOW - H, GC_EXPIRY_TTL, 0, "ttl label");
	assert_true(expired(&t[0], NOW));
	want(NULL, &t[1], 0, GC_EXPIRY_NONE, 0, "no expiry");
	/* A policy without rules is the same. */
	eval(p, "anything", t, 2, NOW);
	want(p, &t[0], NOW - H, GC_EXPIRY_TTL, 0, "ttl label");
	want(p, &t[1], 0, GC_EXPIRY_NONE, 0, "no expiry");
	gc_policy_free(p);
}

static void
test_eval_bad_input(void **state)
{
	struct gc_policy_tag t[1];
	char buf[8];

	t[0] = tag(NULL, NOW, 0, 0);
	assert_int_equal(gc_policy_eval(NULL, "r", t, 1, NOW), RC_BAD_REQUEST);
	t[0] = tag("a", NOW, 0, 0);
	assert_int_equal(gc_policy_eval(NULL, NULL, t, 1, NOW), RC_BAD_REQUEST);
	assert_int_equal(gc_policy_eval(NULL, "r", NULL, 1, NOW),
	                 RC_BAD_REQUEST);
	/* A reason that does not fit is cut. */
	eval(NULL, "r", t, 1, NOW);
	gc_policy_reason(NULL, &t[0], buf, sizeof(buf));
	assert_string_equal(buf, "no expi");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_example),
	        cmocka_unit_test(test_parse_syntax),
	        cmocka_unit_test(test_parse_top_level),
	        cmocka_unit_test(test_parse_rule_keys),
	        cmocka_unit_test(test_parse_repositories),
	        cmocka_unit_test(test_parse_tags),
	        cmocka_unit_test(test_parse_durations),
	        cmocka_unit_test(test_parse_keep_last),
	        cmocka_unit_test(test_parse_protect),
	        cmocka_unit_test(test_parse_no_criterion),
	        cmocka_unit_test(test_parse_errors_small_buffer),
	        cmocka_unit_test(test_load),
	        cmocka_unit_test(test_load_not_found),
	        cmocka_unit_test(test_load_size_limit),
	        cmocka_unit_test(test_eval_first_match),
	        cmocka_unit_test(test_eval_globs),
	        cmocka_unit_test(test_eval_protect),
	        cmocka_unit_test(test_eval_keep_last),
	        cmocka_unit_test(test_eval_keep_last_with_others),
	        cmocka_unit_test(test_eval_ttl_vs_policy),
	        cmocka_unit_test(test_eval_idle),
	        cmocka_unit_test(test_eval_no_policy),
	        cmocka_unit_test(test_eval_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
