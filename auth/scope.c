/* Scopes ("repository:name:pull,push") and the grant: what a user may do
 * out of what a client asked for (repository globs: common/glob.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_internal.h"
#include "common/glob.h"
#include "common/rc.h"

unsigned
auth_action_bits(const char *word, size_t len)
{
	static const struct {
		const char *word;
		unsigned bits;
	} words[] = {
	        {"pull", AUTH_PULL},
	        {"push", AUTH_PUSH},
	        {"delete", AUTH_DELETE},
	        {"*", AUTH_ALL},
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == len &&
		    memcmp(words[i].word, word, len) == 0)
			return words[i].bits;
	return 0;
}

/* The registry-wide resources: "registry:<name>:*", granted only by a
 * rule that names them ({"catalog": true}, {"gc": true},
 * {"backup": true}). */
static const struct {
	const char *name;
	enum auth_type type;
} registry_resources[] = {
        {"catalog", AUTH_TYPE_CATALOG},
        {"gc", AUTH_TYPE_GC},
        {"backup", AUTH_TYPE_BACKUP},
};

const char *
auth_registry_name(enum auth_type type)
{
	for (size_t i = 0;
	     i < sizeof(registry_resources) / sizeof(registry_resources[0]);
	     i++)
		if (registry_resources[i].type == type)
			return registry_resources[i].name;
	return NULL;
}

enum auth_type
auth_registry_type(const char *name, size_t len)
{
	for (size_t i = 0;
	     i < sizeof(registry_resources) / sizeof(registry_resources[0]);
	     i++)
		if (strlen(registry_resources[i].name) == len &&
		    memcmp(registry_resources[i].name, name, len) == 0)
			return registry_resources[i].type;
	return 0;
}

/* A resource type: a lower-case word, optionally with a "(class)" that the
 * spec deprecates and that is ignored. *registry: the type is "registry"
 * (the name then says which resource). */
static int
type_parse(const char *s, size_t len, int *registry)
{
	const char *paren = memchr(s, '(', len);

	if (paren != NULL) {
		if (s[len - 1] != ')' || paren == s)
			return RC_BAD_REQUEST;
		len = (size_t)(paren - s);
	}
	if (len == 10 && memcmp(s, "repository", 10) == 0) {
		*registry = 0;
		return RC_OK;
	}
	if (len == 8 && memcmp(s, "registry", 8) == 0) {
		*registry = 1;
		return RC_OK;
	}
	return RC_BAD_REQUEST;
}

int
auth_scope_parse(const char *s, struct auth_scope *out)
{
	const char *first, *last, *p, *name;
	struct auth_scope sc = {0};
	size_t nlen;
	int rc, registry;

	if (s == NULL || (first = strchr(s, ':')) == NULL ||
	    (last = strrchr(s, ':')) == first)
		return RC_BAD_REQUEST;
	if ((rc = type_parse(s, (size_t)(first - s), &registry)) < 0)
		return rc;
	name = first + 1;
	nlen = (size_t)(last - name);
	if (nlen == 0 || nlen > AUTH_NAME_MAX)
		return RC_BAD_REQUEST;
	for (p = name; p < last; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f ||
		    *p == ',')
			return RC_BAD_REQUEST;
	if (registry) {
		if ((sc.type = auth_registry_type(name, nlen)) == 0)
			return RC_BAD_REQUEST;
	} else {
		sc.type = AUTH_TYPE_REPOSITORY;
		memcpy(sc.name, name, nlen);
		sc.name[nlen] = '\0';
	}
	for (p = last + 1; *p != '\0';) {
		size_t len = strcspn(p, ",");

		sc.actions |= auth_action_bits(p, len);
		p += len;
		if (*p == ',')
			p++;
	}
	*out = sc;
	return RC_OK;
}

int
auth_scope_format(const struct auth_scope *sc, char *buf, size_t len)
{
	const char *res = auth_registry_name(sc->type);
	char acts[32] = "";
	int n;

	if (res != NULL) {
		n = snprintf(buf, len, "registry:%s:*", res);
	} else {
		if (sc->actions & AUTH_PULL)
			strcat(acts, ",pull");
		if (sc->actions & AUTH_PUSH)
			strcat(acts, ",push");
		if (sc->actions & AUTH_DELETE)
			strcat(acts, ",delete");
		n = snprintf(buf, len, "repository:%s:%s", sc->name,
		             acts[0] ? acts + 1 : "");
	}
	if (n < 0 || (size_t)n >= len)
		return RC_TOO_LARGE;
	return n;
}

/* A name "a/b/" followed by two stars stands for every repository under
 * a/b/ (a delete of a whole prefix asks for it). */
static int
prefix_scope(const char *name)
{
	size_t n = strlen(name);

	return n > 3 && strcmp(name + n - 3, "/**") == 0;
}

/* Only a glob that covers every name under the prefix grants it: one that
 * ends in two stars and matches the prefix followed by a byte no name or
 * glob holds (so only a wildcard can take it). A glob for one level
 * ("a/b/" and one star) or for some names below does not. */
static unsigned
prefix_allows(const struct auth_rule *r, const char *name)
{
	char probe[AUTH_NAME_MAX + 2];
	size_t n = strlen(name) - 2; /* without the stars */

	if (n + 2 > sizeof(probe))
		return 0;
	memcpy(probe, name, n);
	probe[n] = '\x01';
	probe[n + 1] = '\0';
	for (size_t i = 0; i < r->nrepos; i++) {
		size_t gl = strlen(r->repos[i]);
		if (gl >= 2 && strcmp(r->repos[i] + gl - 2, "**") == 0 &&
		    glob_match(r->repos[i], probe))
			return r->actions;
	}
	return 0;
}

unsigned
auth_rule_allows(const struct auth_rule *r, enum auth_type type,
                 const char *name)
{
	if (type == AUTH_TYPE_CATALOG)
		return r->catalog ? AUTH_ALL : 0;
	if (type == AUTH_TYPE_GC)
		return r->gc ? AUTH_ALL : 0;
	if (type == AUTH_TYPE_BACKUP)
		return r->backup ? AUTH_ALL : 0;
	if (prefix_scope(name))
		return prefix_allows(r, name);
	for (size_t i = 0; i < r->nrepos; i++)
		if (glob_match(r->repos[i], name))
			return r->actions;
	return 0;
}

const struct auth_user *
auth_user_find(const struct auth *a, const char *name)
{
	for (size_t i = 0; i < a->nusers; i++)
		if (strcmp(a->users[i].name, name) == 0)
			return &a->users[i];
	return NULL;
}

int
auth_user_active(const struct auth *a, const char *user, time_t now)
{
	const struct auth_user *u =
	        user != NULL ? auth_user_find(a, user) : NULL;

	return u != NULL && (u->expires == 0 || now < u->expires);
}

size_t
auth_grant(const struct auth *a, const char *user,
           const struct auth_scope *asked, size_t n, struct auth_scope *granted)
{
	const struct auth_user *u = (user != NULL && *user != '\0')
	                                    ? auth_user_find(a, user)
	                                    : NULL;
	size_t out = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned allowed = 0;

		for (size_t j = 0; j < a->nanon; j++)
			allowed |= auth_rule_allows(&a->anon[j], asked[i].type,
			                            asked[i].name);
		for (size_t j = 0; u != NULL && j < u->nrules; j++)
			allowed |= auth_rule_allows(&u->rules[j], asked[i].type,
			                            asked[i].name);
		/* A registry scope is all or nothing: "*". */
		if (auth_registry_name(asked[i].type) != NULL)
			allowed = allowed ? AUTH_ALL : 0;
		else
			allowed &= asked[i].actions;
		if (allowed == 0)
			continue;
		granted[out] = asked[i];
		granted[out].actions = allowed;
		out++;
	}
	return out;
}

int
auth_view_allows(const struct auth_view *v, const char *name, unsigned actions)
{
	size_t nlen = strlen(name);
	unsigned have = 0;

	if (v == NULL)
		return 0;
	for (size_t i = 0; i < v->ngrants; i++)
		if (v->grants[i].nlen == nlen &&
		    memcmp(v->grants[i].name, name, nlen) == 0)
			have |= v->grants[i].actions;
	for (size_t j = 0; j < v->a->nanon && (have & actions) != actions; j++)
		have |= auth_rule_allows(&v->a->anon[j], AUTH_TYPE_REPOSITORY,
		                         name);
	for (size_t j = 0; v->user != NULL && j < v->user->nrules &&
	                   (have & actions) != actions;
	     j++)
		have |= auth_rule_allows(&v->user->rules[j],
		                         AUTH_TYPE_REPOSITORY, name);
	return (have & actions) == actions;
}

void
auth_view_free(struct auth_view *v)
{
	free(v);
}
