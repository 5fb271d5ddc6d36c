/* The retention policy (format and semantics in gc.h): parsed with
 * jansson and checked field by field, unknown keys refused so that a typo
 * is an error rather than a rule that silently never applies. Every error
 * names the line (jansson's for syntax errors, common/jsonline.c's for
 * the rest), the JSON path and the reason, as the users file does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/duration.h"
#include "common/glob.h"
#include "common/jsonline.h"
#include "common/rc.h"
#include "gc/gc.h"

#define FILE_MAX      (1u << 20) /* largest policy file read */
#define RULES_MAX     1000       /* rules in one policy */
#define GLOBS_MAX     1000       /* globs in one array */
#define GLOB_MAX      255        /* longest glob */
#define KEEP_LAST_MAX 100000

struct globs {
	char **v;
	size_t n;
};

struct rule {
	struct globs repos;
	struct globs tags;    /* n 0: every tag */
	struct globs protect; /* the matched tags that are protected */
	int protect_all;      /* "protect": true */
	uint64_t expire_after, idle_after; /* seconds, 0: not set */
	unsigned keep_last;                /* 0: not set */
	/* the durations as written, for reasons */
	char expire_text[DURATION_BUF], idle_text[DURATION_BUF];
};

struct gc_policy {
	uint64_t untagged_after; /* 0: not set */
	struct rule *rules;
	size_t nrules;
};

/* ---- values ---- */

/* An optional duration member: *out stays 0 when absent; text gets the
 * duration as written. */
static int
duration_get(const struct json_file *jf, const char *path, json_t *obj,
             const char *key, uint64_t *out, char text[DURATION_BUF])
{
	json_t *v = json_object_get(obj, key);
	char sub[JSON_PATH_BUF], shown[JSON_SHOW_BUF];
	const char *s;
	size_t digits;

	if (v == NULL)
		return RC_OK;
	json_path_key(sub, path, key);
	if (!json_is_string(v))
		return json_file_error(
		        jf, sub, "must be a duration string such as \"7d\"");
	s = json_string_value(v);
	if (strlen(s) == json_string_length(v) && duration_parse(s, out) == 0) {
		if (text != NULL)
			snprintf(text, DURATION_BUF, "%s", s);
		return RC_OK;
	}
	/* Well formed but too long, or not a duration at all. */
	digits = strspn(s, "0123456789");
	if (s[0] >= '1' && s[0] <= '9' && s[digits] != '\0' &&
	    strchr("smhdw", s[digits]) != NULL && s[digits + 1] == '\0')
		return json_file_error(jf, sub,
		                       "\"%s\" is longer than 10 years",
		                       json_show(s, shown));
	return json_file_error(
	        jf, sub,
	        "\"%s\" is not a duration (a number and one of s, m, h, "
	        "d, w)",
	        json_show(s, shown));
}

static void
globs_clear(struct globs *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i]);
	free(g->v);
	g->v = NULL;
	g->n = 0;
}

/* A non-empty array of globs; tag globs hold no '/'. what names the
 * array in the message ("globs", "tag globs"). */
static int
globs_get(const struct json_file *jf, const char *path, json_t *arr, int tag,
          struct globs *out)
{
	const char *what = tag ? "tag globs" : "globs";
	char sub[JSON_PATH_BUF];
	size_t i;
	json_t *v;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return json_file_error(jf, path,
		                       "must be a non-empty array of %s", what);
	if (json_array_size(arr) > GLOBS_MAX)
		return json_file_error(jf, path, "more than %d %s", GLOBS_MAX,
		                       what);
	if ((out->v = calloc(json_array_size(arr), sizeof(char *))) == NULL)
		return -ENOMEM;
	json_array_foreach(arr, i, v)
	{
		const char *g = json_string_value(v);

		json_path(sub, "%s[%zu]", path, i);
		if (g == NULL || *g == '\0' ||
		    json_string_length(v) > GLOB_MAX ||
		    strlen(g) != json_string_length(v))
			return json_file_error(
			        jf, sub, "must be a glob of 1 to %d characters",
			        GLOB_MAX);
		for (const char *c = g; *c; c++) {
			if ((unsigned char)*c <= ' ' || *c == 0x7f)
				return json_file_error(
				        jf, sub,
				        "space or control character in a "
				        "glob");
			if (tag && *c == '/')
				return json_file_error(
				        jf, sub,
				        "a tag holds no '/', so this glob "
				        "would never match");
		}
		if ((out->v[i] = strdup(g)) == NULL)
			return -ENOMEM;
		out->n++;
	}
	return RC_OK;
}

static int
globs_match(const struct globs *g, const char *name)
{
	for (size_t i = 0; i < g->n; i++)
		if (glob_match(g->v[i], name))
			return 1;
	return 0;
}

/* ---- rules ---- */

static int
keep_last_get(const struct json_file *jf, const char *path, json_t *obj,
              unsigned *out)
{
	json_t *v = json_object_get(obj, "keep_last");
	char sub[JSON_PATH_BUF];
	json_int_t n;

	if (v == NULL)
		return RC_OK;
	json_path(sub, "%s.keep_last", path);
	n = json_is_integer(v) ? json_integer_value(v) : 0;
	if (n < 1 || n > KEEP_LAST_MAX)
		return json_file_error(jf, sub,
		                       "must be an integer from 1 to %d",
		                       KEEP_LAST_MAX);
	*out = (unsigned)n;
	return RC_OK;
}

static int
protect_get(const struct json_file *jf, const char *path, json_t *obj,
            struct rule *r)
{
	json_t *v = json_object_get(obj, "protect");
	char sub[JSON_PATH_BUF];

	json_path(sub, "%s.protect", path);
	if (v == NULL || json_is_false(v))
		return RC_OK;
	if (json_is_true(v)) {
		r->protect_all = 1;
		return RC_OK;
	}
	if (!json_is_array(v) || json_array_size(v) == 0)
		return json_file_error(
		        jf, sub,
		        "must be true or a non-empty array of tag globs");
	return globs_get(jf, sub, v, 1, &r->protect);
}

/* At least one criterion, and none that can never apply. */
static int
criteria_check(const struct json_file *jf, const char *path, json_t *obj,
               const struct rule *r)
{
	const char *dead = r->expire_after ? "expire_after"
	                   : r->idle_after ? "idle_after"
	                   : r->keep_last  ? "keep_last"
	                                   : NULL;
	char sub[JSON_PATH_BUF];

	json_path(sub, "%s.protect", path);
	if (r->protect_all && dead != NULL)
		return json_file_error(
		        jf, sub,
		        "true protects every tag of the rule, so its %s "
		        "would never apply",
		        dead);
	if (dead != NULL || r->protect_all || r->protect.n > 0)
		return RC_OK;
	if (json_object_get(obj, "protect") != NULL)
		return json_file_error(
		        jf, sub,
		        "false protects nothing, and the rule has no "
		        "expire_after, idle_after or keep_last");
	return json_file_error(
	        jf, path,
	        "needs at least one of expire_after, idle_after, "
	        "keep_last, protect");
}

static int
rule_parse(const struct json_file *jf, const char *path, json_t *obj,
           struct rule *r)
{
	static const char *const known[] = {"repositories",
	                                    "tags",
	                                    "expire_after",
	                                    "idle_after",
	                                    "keep_last",
	                                    "protect",
	                                    NULL};
	json_t *v;
	char sub[JSON_PATH_BUF];
	int rc;

	if (!json_is_object(obj))
		return json_file_error(jf, path, "must be an object");
	if ((rc = json_file_keys_check(jf, path, obj, known)) < 0)
		return rc;
	json_path(sub, "%s.repositories", path);
	if ((v = json_object_get(obj, "repositories")) == NULL)
		return json_file_error(jf, sub, "missing (an array of globs)");
	if ((rc = globs_get(jf, sub, v, 0, &r->repos)) < 0)
		return rc;
	json_path(sub, "%s.tags", path);
	if ((v = json_object_get(obj, "tags")) != NULL &&
	    (rc = globs_get(jf, sub, v, 1, &r->tags)) < 0)
		return rc;
	if ((rc = duration_get(jf, path, obj, "expire_after", &r->expire_after,
	                       r->expire_text)) < 0 ||
	    (rc = duration_get(jf, path, obj, "idle_after", &r->idle_after,
	                       r->idle_text)) < 0 ||
	    (rc = keep_last_get(jf, path, obj, &r->keep_last)) < 0 ||
	    (rc = protect_get(jf, path, obj, r)) < 0)
		return rc;
	return criteria_check(jf, path, obj, r);
}

static int
rules_parse(const struct json_file *jf, json_t *arr, struct gc_policy *p)
{
	char path[JSON_PATH_BUF];
	size_t i, n = json_array_size(arr);
	json_t *v;
	int rc;

	if (!json_is_array(arr))
		return json_file_error(jf, "rules",
		                       "must be an array of rules");
	if (n > RULES_MAX)
		return json_file_error(jf, "rules", "more than %d rules",
		                       RULES_MAX);
	if ((p->rules = calloc(n + 1, sizeof(*p->rules))) == NULL)
		return -ENOMEM;
	json_array_foreach(arr, i, v)
	{
		json_path(path, "rules[%zu]", i);
		p->nrules = i + 1; /* freed by gc_policy_free if it fails */
		if ((rc = rule_parse(jf, path, v, &p->rules[i])) < 0)
			return rc;
	}
	return RC_OK;
}

static int
root_parse(const struct json_file *jf, json_t *root, struct gc_policy *p)
{
	static const char *const known[] = {"untagged_after", "rules", NULL};
	json_t *v;
	int rc;

	if (!json_is_object(root))
		return json_file_error(jf, "", "must be a JSON object");
	if ((rc = json_file_keys_check(jf, "", root, known)) < 0 ||
	    (rc = duration_get(jf, "", root, "untagged_after",
	                       &p->untagged_after, NULL)) < 0)
		return rc;
	if ((v = json_object_get(root, "rules")) != NULL &&
	    (rc = rules_parse(jf, v, p)) < 0)
		return rc;
	return RC_OK;
}

int
gc_policy_parse(const char *text, size_t len, const char *file,
                struct gc_policy **out, char *err, size_t errlen)
{
	struct json_file jf = {.name = file != NULL ? file : "policy",
	                       .text = text,
	                       .len = len,
	                       .err = err,
	                       .errlen = errlen};
	struct gc_policy *p;
	json_t *root;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if ((rc = json_file_parse(&jf, &root)) < 0)
		return rc;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		rc = -ENOMEM;
	else
		rc = root_parse(&jf, root, p);
	json_decref(root);
	if (rc < 0) {
		if (rc == -ENOMEM && err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: out of memory", jf.name);
		gc_policy_free(p);
		return rc;
	}
	*out = p;
	return RC_OK;
}

int
gc_policy_load(const char *path, struct gc_policy **out, char *err,
               size_t errlen)
{
	size_t len = 0;
	char *text = NULL;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if ((rc = json_file_read(path, FILE_MAX, &text, &len, err, errlen)) < 0)
		return rc;
	rc = gc_policy_parse(text, len, path, out, err, errlen);
	free(text);
	return rc;
}

void
gc_policy_free(struct gc_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nrules; i++) {
		globs_clear(&p->rules[i].repos);
		globs_clear(&p->rules[i].tags);
		globs_clear(&p->rules[i].protect);
	}
	free(p->rules);
	free(p);
}

size_t
gc_policy_rules(const struct gc_policy *p)
{
	return p != NULL ? p->nrules : 0;
}

uint64_t
gc_policy_untagged_after(const struct gc_policy *p)
{
	return p != NULL ? p->untagged_after : 0;
}

/* ---- evaluation ---- */

static uint64_t
add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Takes when (0: none) if it is earlier than what t has: candidates are
 * offered in the order that wins ties. */
static void
earliest(struct gc_policy_tag *t, uint64_t when, enum gc_expiry_reason why)
{
	if (when == 0 || (t->expires != 0 && t->expires <= when))
		return;
	t->expires = when;
	t->reason = why;
}

/* keep_last order: by rule, then newest push first, then tag name. */
static int
rank_cmp(const void *a, const void *b)
{
	const struct gc_policy_tag *x = *(const struct gc_policy_tag *const *)a;
	const struct gc_policy_tag *y = *(const struct gc_policy_tag *const *)b;

	if (x->rule != y->rule)
		return x->rule < y->rule ? -1 : 1;
	if (x->pushed != y->pushed)
		return x->pushed > y->pushed ? -1 : 1;
	return strcmp(x->tag, y->tag);
}

/* The first rule whose globs match repo and tag (1-based), 0 if none;
 * repo_ok[r]: rule r matches the repository. */
static unsigned
rule_of(const struct gc_policy *p, const unsigned char *repo_ok,
        const char *tag)
{
	for (size_t r = 0; r < p->nrules; r++)
		if (repo_ok[r] && (p->rules[r].tags.n == 0 ||
		                   globs_match(&p->rules[r].tags, tag)))
			return (unsigned)r + 1;
	return 0;
}

/* Marks the tags of each keep_last rule beyond its newest N. */
static int
keep_last_apply(const struct gc_policy *p, struct gc_policy_tag *tags, size_t n,
                size_t nranked, uint64_t now)
{
	struct gc_policy_tag **ranked;
	size_t k = 0, pos = 0;

	if (nranked == 0)
		return RC_OK;
	if ((ranked = malloc(nranked * sizeof(*ranked))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (tags[i].rule != 0 &&
		    tags[i].reason != GC_EXPIRY_PROTECTED &&
		    p->rules[tags[i].rule - 1].keep_last != 0)
			ranked[k++] = &tags[i];
	qsort(ranked, k, sizeof(*ranked), rank_cmp);
	for (size_t i = 0; i < k; i++) {
		if (i > 0 && ranked[i]->rule != ranked[i - 1]->rule)
			pos = 0;
		if (pos++ >= p->rules[ranked[i]->rule - 1].keep_last)
			earliest(ranked[i], now, GC_EXPIRY_KEEP_LAST);
	}
	free(ranked);
	return RC_OK;
}

int
gc_policy_eval(const struct gc_policy *p, const char *repo,
               struct gc_policy_tag *tags, size_t n, uint64_t now)
{
	unsigned char repo_ok[RULES_MAX];
	size_t nrules = p != NULL ? p->nrules : 0, nranked = 0;

	if (repo == NULL || (tags == NULL && n > 0))
		return RC_BAD_REQUEST;
	for (size_t i = 0; i < n; i++)
		if (tags[i].tag == NULL)
			return RC_BAD_REQUEST;
	for (size_t r = 0; r < nrules; r++)
		repo_ok[r] =
		        (unsigned char)globs_match(&p->rules[r].repos, repo);
	for (size_t i = 0; i < n; i++) {
		struct gc_policy_tag *t = &tags[i];
		const struct rule *r;

		t->expires = 0;
		t->reason = GC_EXPIRY_NONE;
		t->rule = nrules > 0 ? rule_of(p, repo_ok, t->tag) : 0;
		r = t->rule != 0 ? &p->rules[t->rule - 1] : NULL;
		if (r != NULL &&
		    (r->protect_all || globs_match(&r->protect, t->tag))) {
			t->reason = GC_EXPIRY_PROTECTED;
			continue;
		}
		earliest(t, t->ttl_expires, GC_EXPIRY_TTL);
		if (r == NULL)
			continue;
		if (r->expire_after != 0)
			earliest(t, add_sat(t->pushed, r->expire_after),
			         GC_EXPIRY_EXPIRE_AFTER);
		if (r->idle_after != 0)
			earliest(t,
			         add_sat(t->last_pulled > t->pushed
			                         ? t->last_pulled
			                         : t->pushed,
			                 r->idle_after),
			         GC_EXPIRY_IDLE_AFTER);
		if (r->keep_last != 0)
			nranked++;
	}
	return keep_last_apply(p, tags, n, nranked, now);
}

void
gc_policy_reason(const struct gc_policy *p, const struct gc_policy_tag *t,
                 char *buf, size_t len)
{
	const struct rule *r = NULL;

	if (buf == NULL || len == 0)
		return;
	if (p != NULL && t->rule >= 1 && t->rule <= p->nrules)
		r = &p->rules[t->rule - 1];
	switch (t->reason) {
	case GC_EXPIRY_NONE: snprintf(buf, len, "no expiry"); break;
	case GC_EXPIRY_TTL: snprintf(buf, len, "ttl label"); break;
	case GC_EXPIRY_PROTECTED:
		snprintf(buf, len, "protected by policy rule %u", t->rule);
		break;
	case GC_EXPIRY_EXPIRE_AFTER:
		if (r == NULL)
			goto rule_only;
		snprintf(buf, len, "policy rule %u (expire_after %s)", t->rule,
		         r->expire_text);
		break;
	case GC_EXPIRY_IDLE_AFTER:
		if (r == NULL)
			goto rule_only;
		snprintf(buf, len, "policy rule %u (idle_after %s)", t->rule,
		         r->idle_text);
		break;
	case GC_EXPIRY_KEEP_LAST:
		if (r == NULL)
			goto rule_only;
		snprintf(buf, len, "policy rule %u (keep_last %u)", t->rule,
		         r->keep_last);
		break;
	default:
	rule_only:
		snprintf(buf, len, "policy rule %u", t->rule);
		break;
	}
}
