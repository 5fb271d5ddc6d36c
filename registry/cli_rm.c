/* `berth rm`: deletes tags, manifests, whole repositories or every
 * repository under a prefix on a running server. Made for the CI job that
 * runs when a pull request closes, and may run twice: what is already gone
 * is "not found, nothing to delete", not a failure (unless --strict). Each
 * argument is tried on its own; a failure is one line on stderr and the
 * exit status 1 at the end. Malformed arguments are refused before any
 * request (exit 2). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/digest.h"
#include "common/names.h"
#include "common/rc.h"
#include "registry/client.h"
#include "registry/server.h"

#define REPORT_WHAT "a repository deletion report"

static void
rm_usage(FILE *f)
{
	fprintf(f,
	        "usage: berth rm --server URL [--json] [--strict] "
	        "REPO[:TAG|@DIGEST]...\n"
	        "       berth rm --server URL [--json] [--strict] --prefix "
	        "PREFIX/ [REF...]\n" CLIENT_CLI_HELP_SYNOPSIS
	        "                [--timeout SECONDS]\n\n"
	        "Deletes on a running berth: REPO:TAG a tag, REPO@DIGEST a "
	        "manifest, REPO a\n"
	        "whole repository, --prefix PREFIX/ every repository under "
	        "PREFIX/ (e.g. the\n"
	        "review apps of a pull request). Manifests the cluster uses "
	        "(pins) are kept\n"
	        "and listed. Blobs are freed by the next garbage "
	        "collection. What is already\n"
	        "gone is reported as \"not found, nothing to delete\" and is "
	        "no failure, so the\n"
	        "job may run twice.\n\n"
	        "options:\n" CLIENT_CLI_HELP_SERVER
	        "  --prefix PREFIX/      delete every repository under "
	        "PREFIX/ (once; the\n"
	        "                        trailing '/' is required)\n"
	        "  --strict              what is not found is a failure "
	        "(exit 1)\n"
	        "  --json                one JSON object per argument and "
	        "line: the server's\n"
	        "                        report for a repository or prefix; "
	        "for a tag or\n"
	        "                        manifest {\"repository\", "
	        "\"tag\" or \"digest\",\n"
	        "                        \"deleted\": true}, or "
	        "\"deleted\": false and \"error\"\n"
	        "                        when it was not "
	        "found\n" CLIENT_CLI_HELP_SIGNIN
	        "  --timeout SECONDS     give up on a request after this "
	        "long, default %d\n"
	        "                        (connecting: %d)\n"
	        "  --help                this text\n\n"
	        "exit status: 0 done (or nothing to delete), 1 some argument "
	        "failed (one line\n"
	        "on stderr each, the others still done), 2 bad usage\n",
	        CLIENT_TIMEOUT, CLIENT_CONNECT_TIMEOUT);
}

enum ref_kind { REF_TAG, REF_DIGEST, REF_REPO, REF_PREFIX };

/* One thing to delete. */
struct ref {
	const char *arg; /* as given: the name in messages */
	enum ref_kind kind;
	char repo[NAME_MAX_LEN + 2]; /* repository, or prefix with its '/' */
	const char *ref;             /* tag or digest (into arg), or NULL */
};

struct rm_args {
	struct client_cli cli;
	int json, strict;
	struct ref *refs;
	int n;
};

static int
repo_copy(const struct client_cli *cli, struct ref *r, const char *s,
          size_t len)
{
	if (len > NAME_MAX_LEN) {
		return client_cli_usage(cli,
		                        "%s: the repository name is longer "
		                        "than %d bytes",
		                        r->arg, NAME_MAX_LEN);
	}
	memcpy(r->repo, s, len);
	r->repo[len] = '\0';
	if (!name_is_valid(r->repo))
		return client_cli_usage(cli,
		                        "%s: '%s' is not a valid repository "
		                        "name (lower-case letters, digits and "
		                        "'._-' between '/')",
		                        r->arg, r->repo);
	return 0;
}

/* REPO:TAG (the last ':' after the last '/'), REPO@DIGEST or REPO. 0, or
 * 2 (message printed). */
static int
ref_parse(const struct client_cli *cli, const char *arg, struct ref *r)
{
	const char *at = strchr(arg, '@'), *slash, *colon;
	size_t len;
	int rc;

	memset(r, 0, sizeof(*r));
	r->arg = arg;
	len = at != NULL ? (size_t)(at - arg) : strlen(arg);
	slash = memrchr(arg, '/', len);
	colon = memrchr(slash ? slash : arg, ':',
	                len - (slash ? slash - arg : 0));
	if (at != NULL && colon != NULL)
		return client_cli_usage(cli,
		                        "%s: give REPO:TAG or REPO@DIGEST, not "
		                        "both",
		                        arg);
	if (at != NULL) {
		r->kind = REF_DIGEST;
		r->ref = at + 1;
		if ((rc = repo_copy(cli, r, arg, len)) != 0)
			return rc;
		if (digest_check(r->ref) == RC_DIGEST_INVALID)
			return client_cli_usage(
			        cli,
			        "%s: '%s' is not a valid digest "
			        "(sha256:<64 hex>)",
			        arg, r->ref);
		return 0;
	}
	if (colon != NULL) {
		r->kind = REF_TAG;
		r->ref = colon + 1;
		if ((rc = repo_copy(cli, r, arg, (size_t)(colon - arg))) != 0)
			return rc;
		if (!tag_is_valid(r->ref))
			return client_cli_usage(
			        cli,
			        "%s: '%s' is not a valid tag "
			        "([A-Za-z0-9_][A-Za-z0-9._-], at "
			        "most %d)",
			        arg, r->ref, TAG_MAX_LEN);
		return 0;
	}
	r->kind = REF_REPO;
	return repo_copy(cli, r, arg, len);
}

/* PREFIX/: a repository name and a trailing '/'. */
static int
prefix_parse(const struct client_cli *cli, const char *arg, struct ref *r)
{
	size_t len = strlen(arg);
	int rc;

	memset(r, 0, sizeof(*r));
	r->arg = arg;
	r->kind = REF_PREFIX;
	if (len == 0 || arg[len - 1] != '/')
		return client_cli_usage(cli,
		                        "--prefix '%s' must end with '/' (to "
		                        "delete one repository, name it "
		                        "without --prefix)",
		                        arg);
	if ((rc = repo_copy(cli, r, arg, len - 1)) != 0)
		return rc;
	r->repo[len - 1] = '/';
	r->repo[len] = '\0';
	return 0;
}

/* Returns -1 for --help, 0, or 2 (message printed). a->refs is
 * malloc'ed (argc entries at most). */
static int
args_parse(int argc, char **argv, struct rm_args *a)
{
	const char *prefix;
	int rc, prefixes = 0, dashdash = 0;

	memset(a, 0, sizeof(*a));
	client_cli_init(&a->cli, "rm");
	if ((a->refs = calloc((size_t)argc + 1, sizeof(*a->refs))) == NULL)
		return client_cli_fail(&a->cli, "out of memory");
	for (int i = 0; i < argc; i++) {
		const char *f = argv[i];

		if (!dashdash && f[0] == '-') {
			if ((rc = client_cli_option(&a->cli, argc, argv, &i)) ==
			    1)
				continue;
			if (rc != 0)
				return rc;
			if (strcmp(f, "--json") == 0) {
				a->json = 1;
			} else if (strcmp(f, "--strict") == 0) {
				a->strict = 1;
			} else if (strcmp(f, "--") == 0) {
				dashdash = 1;
			} else if (strcmp(f, "--prefix") == 0) {
				if ((rc = client_cli_value(&a->cli, argc, argv,
				                           &i, &prefix)) != 0)
					return rc;
				if (prefixes++ > 0)
					return client_cli_usage(
					        &a->cli,
					        "--prefix may be given once");
				if ((rc = prefix_parse(&a->cli, prefix,
				                       &a->refs[a->n++])) != 0)
					return rc;
			} else {
				return client_cli_usage(
				        &a->cli, "unknown option '%s'", f);
			}
			continue;
		}
		if ((rc = ref_parse(&a->cli, f, &a->refs[a->n++])) != 0)
			return rc;
	}
	if (a->n == 0)
		return client_cli_usage(&a->cli, "nothing to delete: name "
		                                 "REPO[:TAG|@DIGEST] or "
		                                 "--prefix PREFIX/");
	return client_cli_finish(&a->cli);
}

/* ---- output ---- */

/* Prints text from the server: control characters become '?'. */
static void
put_clean(const char *s)
{
	for (; *s != '\0'; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* An array of strings, or absent. */
static int
strings_ok(json_t *v)
{
	size_t i;
	json_t *s;

	if (v == NULL)
		return 1;
	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, s)
	{
		if (!json_is_string(s))
			return 0;
	}
	return 1;
}

/* The reply of a repository delete (see the usage): 0 when it has the
 * shape the lines need. */
static int
report_check(json_t *root)
{
	json_t *repos = json_object_get(root, "repositories"), *e, *k, *kept;
	size_t i, j;

	if (!json_is_array(repos) ||
	    client_json_count(root, "tags", NULL) < 0 ||
	    client_json_count(root, "manifests", NULL) < 0 ||
	    client_json_count(root, "bytes", NULL) < 0)
		return -1;
	json_array_foreach(repos, i, e)
	{
		if (!json_is_string(json_object_get(e, "repository")) ||
		    client_json_count(e, "tags", NULL) < 0 ||
		    client_json_count(e, "manifests", NULL) < 0)
			return -1;
		kept = json_object_get(e, "kept");
		if (kept != NULL && !json_is_array(kept))
			return -1;
		json_array_foreach(kept, j, k)
		{
			if (!json_is_string(json_object_get(k, "digest")) ||
			    !strings_ok(json_object_get(k, "tags")) ||
			    !strings_ok(json_object_get(k, "pins")))
				return -1;
		}
	}
	return 0;
}

/* "a, b". */
static void
put_list(json_t *arr)
{
	size_t i;
	json_t *s;

	json_array_foreach(arr, i, s)
	{
		fputs(i == 0 ? "" : ", ", stdout);
		put_clean(json_string_value(s));
	}
}

static void
kept_print(json_t *repo)
{
	json_t *k, *tags, *pins;
	size_t i;

	json_array_foreach(json_object_get(repo, "kept"), i, k)
	{
		tags = json_object_get(k, "tags");
		pins = json_object_get(k, "pins");
		printf("kept ");
		put_clean(json_string_value(json_object_get(k, "digest")));
		if (json_array_size(tags) > 0) {
			printf(" (tags ");
			put_list(tags);
			printf(")");
		}
		printf(" in ");
		put_clean(
		        json_string_value(json_object_get(repo, "repository")));
		printf(": in use");
		if (json_array_size(pins) > 0) {
			printf(" (%s ", client_plural(json_array_size(pins),
			                              "pin", "pins"));
			put_list(pins);
			printf(")");
		}
		printf("\n");
	}
}

/* "N tags, M manifests" of an object. */
static void
counts_print(json_t *obj)
{
	uint64_t t = 0, m = 0;

	(void)client_json_count(obj, "tags", &t);
	(void)client_json_count(obj, "manifests", &m);
	printf("%" PRIu64 " %s, %" PRIu64 " %s", t,
	       client_plural(t, "tag", "tags"), m,
	       client_plural(m, "manifest", "manifests"));
}

static void
report_print(const struct ref *r, json_t *root)
{
	json_t *repos = json_object_get(root, "repositories"), *e;
	size_t i, n = json_array_size(repos);
	uint64_t bytes = 0;
	char freed[32];

	(void)client_json_count(root, "bytes", &bytes);
	client_human_bytes(bytes, freed, sizeof(freed));
	json_array_foreach(repos, i, e)
	{
		printf("deleted repository ");
		put_clean(json_string_value(json_object_get(e, "repository")));
		printf(": ");
		counts_print(e);
		if (r->kind == REF_REPO && n == 1)
			printf("; frees %s at the next collection", freed);
		printf("\n");
		kept_print(e);
	}
	if (r->kind == REF_REPO && n == 1)
		return;
	printf("deleted %zu %s %s %s: ", n,
	       client_plural(n, "repository", "repositories"),
	       r->kind == REF_PREFIX ? "under" : "named", r->repo);
	counts_print(root);
	printf("; frees %s at the next collection\n", freed);
}

/* The JSON line of a tag or manifest delete, or of anything not found. */
static void
json_line(const struct ref *r, int deleted, const char *code)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, r->kind == REF_PREFIX ? "prefix" : "repository",
	                    json_string(r->repo));
	if (r->kind == REF_TAG || r->kind == REF_DIGEST)
		json_object_set_new(o, r->kind == REF_TAG ? "tag" : "digest",
		                    json_string(r->ref));
	json_object_set_new(o, "deleted", json_boolean(deleted));
	if (!deleted)
		json_object_set_new(o, "error", json_string(code));
	if ((s = json_dumps(o, JSON_COMPACT)) != NULL)
		printf("%s\n", s);
	free(s);
	json_decref(o);
}

/* ---- one argument ---- */

static int
rm_path(const struct ref *r, char **out)
{
	switch (r->kind) {
	case REF_TAG:
	case REF_DIGEST:
		return asprintf(out, "/v2/%s/manifests/%s", r->repo, r->ref);
	case REF_REPO:
		return asprintf(out, "/v2/_berth/repositories/%s", r->repo);
	case REF_PREFIX:
	default:
		return asprintf(out, "/v2/_berth/repositories/%s?prefix=true",
		                r->repo);
	}
}

/* A 404 that says the thing is absent; any other 404 (no such route: an
 * old server, or a wrong --server path) stays a failure. */
static int
is_absent(const struct client_reply *rep, char *code, size_t len)
{
	return rep->status == 404 &&
	       client_reply_oci_code(rep, code, len) == 0 &&
	       (strcmp(code, "MANIFEST_UNKNOWN") == 0 ||
	        strcmp(code, "NAME_UNKNOWN") == 0);
}

/* Deletes what r names and prints the outcome. 0, or 1 (line printed). */
static int
rm_one(const struct rm_args *a, struct client *c, const struct ref *r)
{
	struct client_reply rep = {0};
	json_t *root = NULL;
	char err[512], code[64], *path = NULL;
	int rc = 0;

	if (rm_path(r, &path) < 0)
		return client_cli_fail(&a->cli, "%s: out of memory", r->arg);
	if (client_request(c, "DELETE", path, NULL, &rep, err, sizeof(err)) !=
	    RC_OK) {
		free(path);
		return client_cli_fail(&a->cli, "%s: %s", r->arg, err);
	}
	free(path);
	if (!a->strict && is_absent(&rep, code, sizeof(code))) {
		if (a->json)
			json_line(r, 0, code);
		else
			printf("%s: not found, nothing to delete\n", r->arg);
	} else if (client_reply_error(c, &rep, err, sizeof(err)) != RC_OK) {
		rc = client_cli_fail(&a->cli, "%s: %s", r->arg, err);
	} else if (r->kind == REF_TAG || r->kind == REF_DIGEST) {
		if (a->json)
			json_line(r, 1, NULL);
		else
			printf("deleted %s %s\n",
			       r->kind == REF_TAG ? "tag" : "manifest", r->arg);
	} else if (client_reply_json(&rep, REPORT_WHAT, &root, err,
	                             sizeof(err)) != RC_OK ||
	           report_check(root) < 0) {
		if (root != NULL)
			client_reply_invalid(&rep, REPORT_WHAT, err,
			                     sizeof(err));
		rc = client_cli_fail(&a->cli, "%s: %s", r->arg, err);
	} else if (a->json) {
		char *s = json_dumps(root, JSON_COMPACT);

		if (s == NULL)
			rc = client_cli_fail(&a->cli, "%s: out of memory",
			                     r->arg);
		else
			printf("%s\n", s);
		free(s);
	} else {
		report_print(r, root);
	}
	json_decref(root);
	client_reply_free(&rep);
	/* Lines on stdout and stderr stay in order when both are a log. */
	fflush(stdout);
	return rc;
}

int
cli_rm(int argc, char **argv)
{
	struct client *c = NULL;
	struct rm_args a;
	int rc, failed = 0;

	if ((rc = args_parse(argc, argv, &a)) != 0) {
		free(a.refs);
		if (rc > 0)
			return rc;
		rm_usage(stdout);
		return 0;
	}
	if ((rc = client_cli_open(&a.cli, &c)) != 0) {
		free(a.refs);
		return rc;
	}
	for (int i = 0; i < a.n; i++)
		if (rm_one(&a, c, &a.refs[i]) != 0)
			failed = 1;
	client_close(c);
	free(a.refs);
	if (fflush(stdout) != 0 || ferror(stdout))
		return client_cli_fail(&a.cli, "cannot write the output: %s",
		                       strerror(errno));
	return failed;
}
