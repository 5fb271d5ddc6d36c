/* The users file (format in auth.h): parsed with jansson, checked field by
 * field, unknown keys refused so that a typo is an error rather than a
 * silently ignored rule. Every error names the line (jansson's for syntax
 * errors, common/jsonline.c's for the rest), the JSON path and the reason. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "auth/auth_internal.h"
#include "common/jsonline.h"
#include "common/rc.h"

#define TTL_MAX   86400  /* longest token lifetime, seconds */
#define USERS_MAX 100000 /* users in one file */
#define RULES_MAX 1000   /* rules of one user, or anonymous */
#define KEYS_MAX  64     /* keys of every kind together */
#define USER_MAX  255    /* longest user name */

#define FILE_MAX (64u << 20) /* largest users file read */

struct cfg {
	struct json_file jf; /* the users file, for messages */
	char *dir;           /* its directory: base of relative key paths */
	auth_file_fn seen;   /* told every file before it is read */
	void *seen_arg;
};

/* A string member: *out is NULL when absent and not required. */
static int
str_get(struct cfg *c, const char *path, json_t *obj, const char *key,
        int required, const char **out)
{
	json_t *v = json_object_get(obj, key);
	char sub[JSON_PATH_BUF];

	json_path_key(sub, path, key);
	*out = NULL;
	if (v == NULL)
		return required ? json_file_error(&c->jf, sub, "missing")
		                : RC_OK;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return json_file_error(&c->jf, sub,
		                       "must be a non-empty string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return json_file_error(&c->jf, sub,
		                       "must not contain a NUL character");
	*out = json_string_value(v);
	return RC_OK;
}

/* ---- keys ---- */

static int
key_add(struct cfg *c, const char *path, struct auth *a, struct auth_key *k)
{
	struct auth_key *keys;

	for (size_t i = 0; i < a->nkeys; i++) {
		if (strcmp(a->keys[i].kid, k->kid) == 0) {
			auth_key_clear(k);
			return json_file_error(&c->jf, path,
			                       "the same key is listed twice");
		}
	}
	if (a->nkeys >= KEYS_MAX) {
		auth_key_clear(k);
		return json_file_error(&c->jf, path, "more than %d keys",
		                       KEYS_MAX);
	}
	keys = realloc(a->keys, (a->nkeys + 1) * sizeof(*keys));
	if (keys == NULL) {
		auth_key_clear(k);
		return -ENOMEM;
	}
	a->keys = keys;
	a->keys[a->nkeys++] = *k;
	memset(k, 0, sizeof(*k));
	return RC_OK;
}

/* Loads the key file rel (relative to the users file) for issuer. */
static int
key_open(struct cfg *c, const char *path, const char *rel, int want_private,
         const char *issuer, struct auth_key *out)
{
	struct auth_key k;
	const char *why = "cannot be loaded";
	char *full;
	int rc;

	if (rel[0] == '/')
		full = strdup(rel);
	else if (asprintf(&full, "%s/%s", c->dir, rel) < 0)
		full = NULL;
	if (full == NULL)
		return -ENOMEM;
	if (c->seen != NULL)
		c->seen(full, c->seen_arg);
	rc = auth_key_load(full, want_private, &k, &why);
	free(full);
	if (rc < 0)
		return json_file_error(&c->jf, path, "%s: %s", rel, why);
	if ((k.issuer = strdup(issuer)) == NULL) {
		auth_key_clear(&k);
		return -ENOMEM;
	}
	*out = k;
	return RC_OK;
}

static int
signing_load(struct cfg *c, json_t *root, struct auth *a)
{
	struct auth_key pub;
	const char *rel;
	int rc;

	if ((rc = str_get(c, "", root, "signing_key", 1, &rel)) < 0)
		return rc;
	if ((rc = key_open(c, "signing_key", rel, 1, a->issuer, &a->signing)) <
	    0)
		return rc;
	if (a->signing.rsa || a->signing.curve_bits != 256)
		return json_file_error(&c->jf, "signing_key",
		                       "%s: must be an EC P-256 key (ES256)",
		                       rel);
	if ((rc = auth_key_public(&a->signing, &pub)) < 0)
		return rc;
	return key_add(c, "signing_key", a, &pub);
}

/* An array of key file names, each added to a->keys for issuer. */
static int
keys_load(struct cfg *c, const char *path, json_t *arr, const char *issuer,
          struct auth *a)
{
	char sub[JSON_PATH_BUF];
	struct auth_key k;
	size_t i;
	json_t *v;
	int rc;

	if (!json_is_array(arr))
		return json_file_error(&c->jf, path,
		                       "must be an array of key file names");
	json_array_foreach(arr, i, v)
	{
		json_path(sub, "%s[%zu]", path, i);
		if (!json_is_string(v) || json_string_length(v) == 0)
			return json_file_error(&c->jf, sub,
			                       "must be a non-empty string");
		if ((rc = key_open(c, sub, json_string_value(v), 0, issuer,
		                   &k)) < 0 ||
		    (rc = key_add(c, sub, a, &k)) < 0)
			return rc;
	}
	return RC_OK;
}

static int
trusted_load(struct cfg *c, json_t *arr, struct auth *a)
{
	static const char *const known[] = {"issuer", "keys", NULL};
	char path[JSON_PATH_BUF], sub[JSON_PATH_BUF];
	const char *issuer;
	json_t *v, *keys;
	size_t i;
	int rc;

	if (!json_is_array(arr))
		return json_file_error(&c->jf, "trusted_issuers",
		                       "must be an array");
	json_array_foreach(arr, i, v)
	{
		json_path(path, "trusted_issuers[%zu]", i);
		if (!json_is_object(v))
			return json_file_error(&c->jf, path,
			                       "must be an object");
		if ((rc = json_file_keys_check(&c->jf, path, v, known)) < 0 ||
		    (rc = str_get(c, path, v, "issuer", 1, &issuer)) < 0)
			return rc;
		json_path(sub, "%s.keys", path);
		keys = json_object_get(v, "keys");
		if (json_array_size(keys) == 0)
			return json_file_error(
			        &c->jf, sub,
			        "must be a non-empty array of key "
			        "file names");
		if ((rc = keys_load(c, sub, keys, issuer, a)) < 0)
			return rc;
	}
	return RC_OK;
}

/* ---- rules ---- */

static void
rule_clear(struct auth_rule *r)
{
	for (size_t i = 0; i < r->nrepos; i++)
		free(r->repos[i]);
	free(r->repos);
	memset(r, 0, sizeof(*r));
}

static void
rules_free(struct auth_rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rule_clear(&rules[i]);
	free(rules);
}

static int
actions_parse(struct cfg *c, const char *path, json_t *arr, unsigned *out)
{
	char sub[JSON_PATH_BUF];
	unsigned bits = 0, b;
	size_t i;
	json_t *v;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return json_file_error(&c->jf, path,
		                       "must be a non-empty array of actions "
		                       "(pull, push, delete, *)");
	json_array_foreach(arr, i, v)
	{
		const char *w = json_string_value(v);

		json_path(sub, "%s[%zu]", path, i);
		if (w == NULL)
			return json_file_error(&c->jf, sub, "must be a string");
		if ((b = auth_action_bits(w, strlen(w))) == 0)
			return json_file_error(&c->jf, path,
			                       "unknown action \"%.32s\"", w);
		bits |= b;
	}
	*out = bits;
	return RC_OK;
}

static int
repos_parse(struct cfg *c, const char *path, json_t *arr, struct auth_rule *r)
{
	char sub[JSON_PATH_BUF];
	size_t i;
	json_t *v;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return json_file_error(&c->jf, path,
		                       "must be a non-empty array of globs");
	if ((r->repos = calloc(json_array_size(arr), sizeof(char *))) == NULL)
		return -ENOMEM;
	json_array_foreach(arr, i, v)
	{
		const char *g = json_string_value(v);

		json_path(sub, "%s[%zu]", path, i);
		if (g == NULL || *g == '\0' ||
		    json_string_length(v) > AUTH_NAME_MAX)
			return json_file_error(&c->jf, sub,
			                       "must be a glob of 1 to %d "
			                       "characters",
			                       AUTH_NAME_MAX);
		for (const char *p = g; *p; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == ':')
				return json_file_error(&c->jf, sub,
				                       "space, ':' or control "
				                       "character in a glob");
		if ((r->repos[i] = strdup(g)) == NULL)
			return -ENOMEM;
		r->nrepos++;
	}
	return RC_OK;
}

/* An optional boolean member of a rule ("catalog", "gc", "backup"). */
static int
flag_get(struct cfg *c, const char *path, json_t *obj, const char *key,
         int *out)
{
	json_t *v = json_object_get(obj, key);
	char sub[JSON_PATH_BUF];

	if (v != NULL && !json_is_boolean(v)) {
		json_path_key(sub, path, key);
		return json_file_error(&c->jf, sub, "must be true or false");
	}
	*out = json_is_true(v);
	return RC_OK;
}

static int
rule_parse(struct cfg *c, const char *path, json_t *obj, struct auth_rule *r)
{
	static const char *const known[] = {
	        "repositories", "actions", "catalog", "gc", "backup", NULL};
	json_t *repos = json_object_get(obj, "repositories");
	json_t *acts = json_object_get(obj, "actions");
	char sub[JSON_PATH_BUF];
	int rc;

	if (!json_is_object(obj))
		return json_file_error(&c->jf, path, "must be an object");
	if ((rc = json_file_keys_check(&c->jf, path, obj, known)) < 0 ||
	    (rc = flag_get(c, path, obj, "catalog", &r->catalog)) < 0 ||
	    (rc = flag_get(c, path, obj, "gc", &r->gc)) < 0 ||
	    (rc = flag_get(c, path, obj, "backup", &r->backup)) < 0)
		return rc;
	if (repos == NULL && acts != NULL)
		return json_file_error(&c->jf, path,
		                       "actions without repositories");
	if (repos == NULL && !r->catalog && !r->gc && !r->backup)
		return json_file_error(
		        &c->jf, path,
		        "needs \"repositories\" and \"actions\", "
		        "\"catalog\": true, \"gc\": true or \"backup\": true");
	if (repos == NULL)
		return RC_OK;
	json_path(sub, "%s.repositories", path);
	if ((rc = repos_parse(c, sub, repos, r)) < 0)
		return rc;
	json_path(sub, "%s.actions", path);
	if (acts == NULL)
		return json_file_error(&c->jf, sub, "missing");
	return actions_parse(c, sub, acts, &r->actions);
}

static int
rules_parse(struct cfg *c, const char *path, json_t *arr,
            struct auth_rule **out, size_t *nout)
{
	char sub[JSON_PATH_BUF];
	struct auth_rule *rules;
	size_t i, n = json_array_size(arr);
	json_t *v;
	int rc;

	if (!json_is_array(arr))
		return json_file_error(&c->jf, path,
		                       "must be an array of rules");
	if (n > RULES_MAX)
		return json_file_error(&c->jf, path, "more than %d rules",
		                       RULES_MAX);
	if ((rules = calloc(n + 1, sizeof(*rules))) == NULL)
		return -ENOMEM;
	json_array_foreach(arr, i, v)
	{
		json_path(sub, "%s[%zu]", path, i);
		if ((rc = rule_parse(c, sub, v, &rules[i])) < 0) {
			rules_free(rules, i + 1);
			return rc;
		}
	}
	*out = rules;
	*nout = n;
	return RC_OK;
}

/* ---- users ---- */

/* "YYYY-MM-DDTHH:MM:SSZ" (RFC 3339, UTC) to a time_t; -1 if malformed. */
static int
time_parse(const char *s, time_t *out)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	struct tm tm = {0}, back;
	time_t t;

	if (strlen(s) != sizeof(shape) - 1)
		return -1;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9')
		                    : s[i] != shape[i])
			return -1;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon,
	           &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	back = tm;
	if ((t = timegm(&tm)) == (time_t)-1 || gmtime_r(&t, &tm) == NULL)
		return -1;
	/* timegm normalizes Feb 30 to Mar 2; refuse what it had to fix. */
	if (tm.tm_year != back.tm_year || tm.tm_mon != back.tm_mon ||
	    tm.tm_mday != back.tm_mday || tm.tm_hour != back.tm_hour ||
	    tm.tm_min != back.tm_min || tm.tm_sec != back.tm_sec)
		return -1;
	*out = t;
	return 0;
}

static void
user_clear(struct auth_user *u)
{
	free(u->name);
	if (u->hash != NULL) {
		OPENSSL_cleanse(u->hash, strlen(u->hash));
		free(u->hash);
	}
	rules_free(u->rules, u->nrules);
	memset(u, 0, sizeof(*u));
}

static int
user_parse(struct cfg *c, const char *path, json_t *obj, const struct auth *a,
           struct auth_user *u)
{
	static const char *const known[] = {"name", "password_hash", "expires",
	                                    "rules", NULL};
	const char *name, *hash, *exp, *why = "unreadable";
	char sub[JSON_PATH_BUF];
	json_t *rules;
	int rc;

	if (!json_is_object(obj))
		return json_file_error(&c->jf, path, "must be an object");
	if ((rc = json_file_keys_check(&c->jf, path, obj, known)) < 0 ||
	    (rc = str_get(c, path, obj, "name", 1, &name)) < 0 ||
	    (rc = str_get(c, path, obj, "password_hash", 1, &hash)) < 0 ||
	    (rc = str_get(c, path, obj, "expires", 0, &exp)) < 0)
		return rc;
	json_path(sub, "%s.name", path);
	if (strlen(name) > USER_MAX)
		return json_file_error(&c->jf, sub, "longer than %d characters",
		                       USER_MAX);
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f || *p == ':')
			return json_file_error(&c->jf, sub,
			                       "':' or control character in a "
			                       "user name");
	for (size_t i = 0; i < a->nusers; i++)
		if (strcmp(a->users[i].name, name) == 0)
			return json_file_error(&c->jf, sub,
			                       "duplicate user \"%s\"", name);
	json_path(sub, "%s.password_hash", path);
	if (auth_password_encoding_check(hash, &why) < 0)
		return json_file_error(&c->jf, sub, "%s", why);
	json_path(sub, "%s.expires", path);
	if (exp != NULL && time_parse(exp, &u->expires) < 0)
		return json_file_error(&c->jf, sub,
		                       "must be a UTC time like "
		                       "\"2027-06-30T00:00:00Z\"");
	if ((rules = json_object_get(obj, "rules")) != NULL) {
		json_path(sub, "%s.rules", path);
		if ((rc = rules_parse(c, sub, rules, &u->rules, &u->nrules)) <
		    0)
			return rc;
	}
	if ((u->name = strdup(name)) == NULL ||
	    (u->hash = strdup(hash)) == NULL)
		return -ENOMEM;
	return RC_OK;
}

static int
users_load(struct cfg *c, json_t *arr, struct auth *a)
{
	char path[JSON_PATH_BUF];
	size_t i, n = json_array_size(arr);
	json_t *v;
	int rc;

	if (!json_is_array(arr))
		return json_file_error(&c->jf, "users", "must be an array");
	if (n > USERS_MAX)
		return json_file_error(&c->jf, "users", "more than %d users",
		                       USERS_MAX);
	if ((a->users = calloc(n + 1, sizeof(*a->users))) == NULL)
		return -ENOMEM;
	json_array_foreach(arr, i, v)
	{
		json_path(path, "users[%zu]", i);
		if ((rc = user_parse(c, path, v, a, &a->users[i])) < 0) {
			user_clear(&a->users[i]);
			return rc;
		}
		a->nusers++;
	}
	return RC_OK;
}

/* ---- the file ---- */

/* The realm: an absolute http(s) URL whose path is the token endpoint. */
static int
realm_check(struct cfg *c, struct auth *a)
{
	const char *u = a->realm, *host, *slash;
	size_t plen;

	if (strncmp(u, "https://", 8) == 0)
		host = u + 8;
	else if (strncmp(u, "http://", 7) == 0)
		host = u + 7;
	else
		return json_file_error(&c->jf, "realm",
		                       "must be an absolute http:// or "
		                       "https:// URL");
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '"' ||
		    *p == '\\' || *p == '#')
			return json_file_error(&c->jf, "realm",
			                       "space, quote, '#' or control "
			                       "character in the URL");
	slash = strchr(host, '/');
	if (slash == host || *host == '\0' || *host == '?')
		return json_file_error(&c->jf, "realm", "has no host");
	plen = slash != NULL ? strcspn(slash, "?") : 0;
	if (plen <= 1)
		return json_file_error(&c->jf, "realm",
		                       "needs a path, such as /auth/token");
	if ((a->realm_path = strndup(slash, plen)) == NULL)
		return -ENOMEM;
	return RC_OK;
}

static int
ttl_get(struct cfg *c, json_t *root, struct auth *a)
{
	json_t *v = json_object_get(root, "token_ttl");
	json_int_t t;

	a->ttl = AUTH_TOKEN_TTL;
	if (v == NULL)
		return RC_OK;
	if (!json_is_integer(v))
		return json_file_error(&c->jf, "token_ttl",
		                       "must be an integer (seconds)");
	t = json_integer_value(v);
	if (t < AUTH_TTL_MIN || t > TTL_MAX)
		return json_file_error(&c->jf, "token_ttl",
		                       "must be between %d and %d seconds",
		                       AUTH_TTL_MIN, TTL_MAX);
	a->ttl = (int)t;
	return RC_OK;
}

static int
strings_get(struct cfg *c, json_t *root, struct auth *a)
{
	const char *service, *issuer, *realm;
	int rc;

	if ((rc = str_get(c, "", root, "service", 1, &service)) < 0 ||
	    (rc = str_get(c, "", root, "issuer", 1, &issuer)) < 0 ||
	    (rc = str_get(c, "", root, "realm", 1, &realm)) < 0)
		return rc;
	if ((a->service = strdup(service)) == NULL ||
	    (a->issuer = strdup(issuer)) == NULL ||
	    (a->realm = strdup(realm)) == NULL)
		return -ENOMEM;
	return RC_OK;
}

static int
root_load(struct cfg *c, json_t *root, struct auth *a)
{
	static const char *const known[] = {"service",         "issuer",
	                                    "realm",           "token_ttl",
	                                    "signing_key",     "previous_keys",
	                                    "trusted_issuers", "users",
	                                    "anonymous",       NULL};
	json_t *v;
	int rc;

	if (!json_is_object(root))
		return json_file_error(&c->jf, "", "must be a JSON object");
	if ((rc = json_file_keys_check(&c->jf, "", root, known)) < 0 ||
	    (rc = strings_get(c, root, a)) < 0 ||
	    (rc = realm_check(c, a)) < 0 || (rc = ttl_get(c, root, a)) < 0 ||
	    (rc = signing_load(c, root, a)) < 0)
		return rc;
	if ((v = json_object_get(root, "previous_keys")) != NULL &&
	    (rc = keys_load(c, "previous_keys", v, a->issuer, a)) < 0)
		return rc;
	if ((v = json_object_get(root, "trusted_issuers")) != NULL &&
	    (rc = trusted_load(c, v, a)) < 0)
		return rc;
	if ((v = json_object_get(root, "users")) != NULL &&
	    (rc = users_load(c, v, a)) < 0)
		return rc;
	if ((v = json_object_get(root, "anonymous")) != NULL &&
	    (rc = rules_parse(c, "anonymous", v, &a->anon, &a->nanon)) < 0)
		return rc;
	return RC_OK;
}

int
auth_load(const char *path, struct auth **out, char *err, size_t errlen)
{
	return auth_load_watched(path, NULL, NULL, out, err, errlen);
}

int
auth_load_watched(const char *path, auth_file_fn seen, void *arg,
                  struct auth **out, char *err, size_t errlen)
{
	struct cfg c = {.jf = {.name = path, .err = err, .errlen = errlen},
	                .seen = seen,
	                .seen_arg = arg};
	const char *slash = strrchr(path, '/');
	struct auth *a = NULL;
	json_t *root = NULL;
	char *text = NULL;
	int rc = -ENOMEM;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (slash == NULL)
		c.dir = strdup(".");
	else
		c.dir = strndup(path,
		                slash == path ? 1 : (size_t)(slash - path));
	if (c.dir == NULL || (a = calloc(1, sizeof(*a))) == NULL)
		goto fail;
	if (seen != NULL)
		seen(path, arg);
	if ((rc = json_file_read(path, FILE_MAX, &text, &c.jf.len, err,
	                         errlen)) < 0)
		goto fail;
	c.jf.text = text;
	if ((rc = json_file_parse(&c.jf, &root)) < 0 ||
	    (rc = root_load(&c, root, a)) < 0)
		goto fail;
	rc = -ENOMEM;
	if ((a->creds = auth_creds_new()) == NULL ||
	    (a->tokens = auth_tokens_new()) == NULL)
		goto fail;
	*out = a;
	a = NULL;
	rc = RC_OK;
fail:
	if (rc == -ENOMEM && err != NULL && errlen > 0 && err[0] == '\0')
		snprintf(err, errlen, "%s: out of memory", path);
	json_decref(root);
	if (text != NULL) {
		OPENSSL_cleanse(text, c.jf.len); /* password hashes */
		free(text);
	}
	free(c.dir);
	auth_free(a);
	return rc;
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->nusers; i++)
		user_clear(&a->users[i]);
	free(a->users);
	rules_free(a->anon, a->nanon);
	for (size_t i = 0; i < a->nkeys; i++)
		auth_key_clear(&a->keys[i]);
	free(a->keys);
	auth_key_clear(&a->signing);
	auth_creds_free(a->creds);
	auth_tokens_free(a->tokens);
	free(a->service);
	free(a->issuer);
	free(a->realm);
	free(a->realm_path);
	free(a);
}

const char *
auth_service(const struct auth *a)
{
	return a->service;
}

const char *
auth_realm(const struct auth *a)
{
	return a->realm;
}

const char *
auth_realm_path(const struct auth *a)
{
	return a->realm_path;
}

int
auth_token_ttl(const struct auth *a)
{
	return a->ttl;
}
