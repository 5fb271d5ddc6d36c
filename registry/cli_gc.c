/* `berth gc`: asks a running server to collect garbage now (POST
 * /v2/_berth/gc) and prints its report: one summary line, or the JSON as
 * received. Made for a Kubernetes CronJob: settings also come from the
 * environment, secrets from files (mounted Secrets), exit 0 on success, 1
 * with one line on stderr on any failure, 2 on bad usage.
 *
 * Pins: with --pins-from-kubernetes (registry/kube.h) and/or --pins-file
 * the body carries "pins": the image references in use, which the server
 * never expires or collects; the list replaces the one it kept from the
 * previous run. Gathering them is all or nothing: when it fails, nothing
 * is sent. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/rc.h"
#include "registry/client.h"
#include "registry/kube.h"
#include "registry/server.h"

#define GC_WHAT     "a gc report"
#define PINFILE_MAX (1024u * 1024u) /* largest --pins-file */
#define PINLINE_MAX 4096            /* longest reference in it */

static void
gc_usage(FILE *f)
{
	fprintf(f,
	        "usage: berth gc --server URL [--dry-run] "
	        "[--json]\n" CLIENT_CLI_HELP_SYNOPSIS
	        "                [--pins-from-kubernetes] [--pins-file FILE]\n"
	        "                [--registry-host NAME[:PORT]]... "
	        "[--timeout SECONDS]\n\n"
	        "Runs the garbage collector of a running berth now (POST "
	        "/v2/_berth/gc) and\n"
	        "prints what it deleted. With token auth the user needs "
	        "{\"gc\": true} in the\n"
	        "users file.\n\n"
	        "options:\n" CLIENT_CLI_HELP_SERVER
	        "  --dry-run             report what would be deleted, "
	        "delete nothing\n"
	        "  --json                print the server's JSON report "
	        "instead of one line\n" CLIENT_CLI_HELP_SIGNIN
	        "  --timeout SECONDS     give up after this long, default "
	        "%d (connecting: %d);\n"
	        "                        listing the pins gets as long "
	        "again\n"
	        "  --help                this text\n\n"
	        "pins (images in use: never expired or collected):\n"
	        "  --pins-from-kubernetes\n"
	        "                        pin the images the cluster uses, "
	        "read from inside a\n"
	        "                        pod through the Kubernetes API with "
	        "its service\n"
	        "                        account, in all namespaces: pods "
	        "(images and the\n"
	        "                        imageIDs pulled) and the pod "
	        "templates of deployments,\n"
	        "                        replicasets, statefulsets, "
	        "daemonsets, jobs and\n"
	        "                        cronjobs, also when scaled to zero; "
	        "the account needs\n"
	        "                        a ClusterRole with list on those\n"
	        "  --pins-file FILE      pin the references in FILE, one a "
	        "line (host/repo:tag\n"
	        "                        or host/repo@sha256:...; blank "
	        "lines and # comments\n"
	        "                        skipped; at most 1 MiB)\n"
	        "  --registry-host NAME[:PORT]\n"
	        "                        a host name the cluster pulls this "
	        "registry by;\n"
	        "                        repeatable (env "
	        "BERTH_REGISTRY_HOSTS, comma-separated),\n"
	        "                        default the host[:port] of --server. "
	        "Only references\n"
	        "                        from these hosts are pinned (the "
	        "port must match);\n"
	        "                        file lines without a host are kept\n\n"
	        "Both pin options may be combined. With either, the list "
	        "sent (even empty)\n"
	        "replaces the pins the server keeps; without, it keeps those "
	        "of the last run.\n"
	        "If the pins cannot be listed, nothing is sent and the exit "
	        "status is 1.\n\n"
	        "exit status: 0 done, 1 failed (one line on stderr), 2 bad "
	        "usage\n",
	        CLIENT_TIMEOUT, CLIENT_CONNECT_TIMEOUT);
}

struct gc_args {
	struct client_cli cli;
	const char *pins_file;
	const char **hosts; /* --registry-host values (into argv) */
	size_t n_hosts;
	int dry_run, json, pins_kube;
};

/* Returns -1 for --help, 0, or 2 (message printed); a->hosts is
 * malloc'ed in any case (free it). */
static int
args_parse(int argc, char **argv, struct gc_args *a)
{
	int rc;

	memset(a, 0, sizeof(*a));
	client_cli_init(&a->cli, "gc");
	if ((a->hosts = calloc((size_t)argc + 1, sizeof(*a->hosts))) == NULL)
		return client_cli_usage(&a->cli, "out of memory");
	for (int i = 0; i < argc; i++) {
		const char *f = argv[i];

		if ((rc = client_cli_option(&a->cli, argc, argv, &i)) == 1)
			continue;
		if (rc != 0)
			return rc;
		if (strcmp(f, "--dry-run") == 0)
			a->dry_run = 1;
		else if (strcmp(f, "--json") == 0)
			a->json = 1;
		else if (strcmp(f, "--pins-from-kubernetes") == 0)
			a->pins_kube = 1;
		else if (strcmp(f, "--pins-file") == 0)
			rc = client_cli_value(&a->cli, argc, argv, &i,
			                      &a->pins_file);
		else if (strcmp(f, "--registry-host") == 0)
			rc = client_cli_value(&a->cli, argc, argv, &i,
			                      &a->hosts[a->n_hosts++]);
		else
			return client_cli_usage(&a->cli, "unknown option '%s'",
			                        f);
		if (rc != 0)
			return rc;
	}
	return client_cli_finish(&a->cli);
}

/* ---- pins ---- */

/* Strings owned. */
struct strs {
	char **v;
	size_t n, cap;
};

static int
strs_add(struct strs *s, const char *p, size_t len)
{
	char **nv;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;

		if ((nv = realloc(s->v, cap * sizeof(*nv))) == NULL)
			return -1;
		s->v = nv;
		s->cap = cap;
	}
	if ((s->v[s->n] = strndup(p, len)) == NULL)
		return -1;
	s->n++;
	return 0;
}

static void
strs_free(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, without duplicates. */
static void
strs_uniq(struct strs *s)
{
	size_t w = 0;

	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), str_cmp);
	for (size_t i = 0; i < s->n; i++) {
		if (w > 0 && strcmp(s->v[w - 1], s->v[i]) == 0)
			free(s->v[i]);
		else
			s->v[w++] = s->v[i];
	}
	s->n = w;
}

/* A registry host as given: NAME[:PORT], no URL, no list. */
static int
host_ok(const char *h, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)h[i] <= ' ' || (unsigned char)h[i] >= 0x7f ||
		    strchr("/@?#,", h[i]) != NULL)
			return 0;
	return 1;
}

/* The registry hosts: --registry-host, else BERTH_REGISTRY_HOSTS, else
 * the host[:port] of the server URL (checked by client_open). 0, or 1 or
 * 2 (message printed). */
static int
hosts_get(const struct gc_args *a, struct strs *hosts)
{
	const char *env = getenv("BERTH_REGISTRY_HOSTS"), *p, *auth;
	const struct client_cli *cli = &a->cli;

	for (size_t i = 0; i < a->n_hosts; i++) {
		if (!host_ok(a->hosts[i], strlen(a->hosts[i])))
			return client_cli_usage(
			        cli,
			        "--registry-host takes NAME[:PORT], "
			        "not '%s'",
			        a->hosts[i]);
		if (strs_add(hosts, a->hosts[i], strlen(a->hosts[i])) < 0)
			return client_cli_fail(cli, "out of memory");
	}
	for (p = a->n_hosts == 0 ? env : NULL; p != NULL && *p != '\0';) {
		size_t len = strcspn(p, ","), b = 0, e = len;

		while (b < e && (p[b] == ' ' || p[b] == '\t'))
			b++;
		while (e > b && (p[e - 1] == ' ' || p[e - 1] == '\t'))
			e--;
		if (e > b && !host_ok(p + b, e - b))
			return client_cli_usage(cli,
			                        "BERTH_REGISTRY_HOSTS takes "
			                        "NAME[:PORT],... not '%.*s'",
			                        (int)(e - b), p + b);
		if (e > b && strs_add(hosts, p + b, e - b) < 0)
			return client_cli_fail(cli, "out of memory");
		p += len + (p[len] == ',');
	}
	if (hosts->n == 0) {
		auth = strstr(cli->server, "://");
		auth = auth != NULL ? auth + 3 : cli->server;
		if (strs_add(hosts, auth, strcspn(auth, "/")) < 0)
			return client_cli_fail(cli, "out of memory");
	}
	return 0;
}

/* The references of a --pins-file, those from other registries dropped.
 * 0, or 1 (message printed). */
static int
pins_file_read(const struct client_cli *cli, const char *path,
               const struct strs *hosts, struct strs *pins)
{
	FILE *f = fopen(path, "re");
	char *buf, *line, *next;
	size_t n, lineno = 0;
	int rc = 0;

	if (f == NULL)
		return client_cli_fail(cli, "cannot read the pins file %s: %s",
		                       path, strerror(errno));
	if ((buf = malloc(PINFILE_MAX + 1)) == NULL) {
		fclose(f);
		return client_cli_fail(cli, "out of memory");
	}
	n = fread(buf, 1, PINFILE_MAX + 1, f);
	if (ferror(f) || n > PINFILE_MAX) {
		rc = client_cli_fail(
		        cli, "cannot read the pins file %s: %s", path,
		        ferror(f) ? strerror(errno) : "larger than 1 MiB");
		goto done;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', n) != NULL) {
		rc = client_cli_fail(cli, "the pins file %s holds a NUL byte",
		                     path);
		goto done;
	}
	for (line = buf; line != NULL && rc == 0; line = next) {
		size_t len;

		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		len = strlen(line);
		while (len > 0 &&
		       (line[len - 1] == ' ' || line[len - 1] == '\t' ||
		        line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		for (size_t i = 0; i < len && rc == 0; i++)
			if ((unsigned char)line[i] <= ' ' ||
			    (unsigned char)line[i] >= 0x7f)
				rc = client_cli_fail(
				        cli,
				        "%s:%zu: not an image reference "
				        "(a space, control character or "
				        "non-ASCII byte)",
				        path, lineno);
		if (rc == 0 && len > PINLINE_MAX)
			rc = client_cli_fail(cli,
			                     "%s:%zu: longer than %d bytes",
			                     path, lineno, PINLINE_MAX);
		if (rc == 0 &&
		    kube_ref_host(line, (const char *const *)hosts->v,
		                  hosts->n) != KUBE_REF_OTHER &&
		    strs_add(pins, line, len) < 0)
			rc = client_cli_fail(cli, "out of memory");
	}
done:
	fclose(f);
	free(buf);
	return rc;
}

/* "a, b and c" of the hosts, for a message. */
static void
hosts_line(const struct strs *hosts, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < hosts->n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s",
		                      i == 0              ? ""
		                      : i + 1 == hosts->n ? " or "
		                                          : ", ",
		                      hosts->v[i]);
}

/* The "pins" array of the body: the union of both sources, sorted. 0, or
 * 1 (message printed, nothing to send). */
static int
pins_gather(const struct gc_args *a, const struct strs *hosts, json_t **out)
{
	struct kube_options ko = {.hosts = (const char *const *)hosts->v,
	                          .n_hosts = hosts->n,
	                          .timeout_s = a->cli.timeout_s};
	struct strs pins = {0};
	char err[1024], names[512], **kr = NULL;
	size_t kn = 0;
	json_t *arr = NULL;
	int rc = 0;

	if (a->pins_file != NULL &&
	    (rc = pins_file_read(&a->cli, a->pins_file, hosts, &pins)) != 0)
		goto done;
	if (a->pins_kube) {
		if (kube_pins(&ko, &kr, &kn, err, sizeof(err)) != RC_OK) {
			rc = client_cli_fail(&a->cli, "%s", err);
			goto done;
		}
		if (kn == 0) {
			hosts_line(hosts, names, sizeof(names));
			fprintf(stderr,
			        "berth gc: warning: no image in use in the "
			        "cluster is from %s (--registry-host?)\n",
			        names);
		}
		for (size_t i = 0; i < kn && rc == 0; i++)
			if (strs_add(&pins, kr[i], strlen(kr[i])) < 0)
				rc = client_cli_fail(&a->cli, "out of memory");
		kube_pins_free(kr, kn);
		if (rc != 0)
			goto done;
	}
	strs_uniq(&pins);
	if ((arr = json_array()) == NULL) {
		rc = client_cli_fail(&a->cli, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < pins.n && rc == 0; i++)
		if (json_array_append_new(arr, json_string(pins.v[i])) != 0)
			rc = client_cli_fail(
			        &a->cli,
			        "a pinned reference is not UTF-8, or out "
			        "of memory");
	if (rc == 0) {
		*out = arr;
		arr = NULL;
	}
done:
	json_decref(arr);
	strs_free(&pins);
	return rc;
}

/* {"dry_run": bool[, "pins": [...]]}, malloc'ed; NULL on ENOMEM. */
static char *
body_make(const struct gc_args *a, json_t *pins)
{
	json_t *b = json_object();
	char *s = NULL;

	if (b != NULL &&
	    json_object_set_new(b, "dry_run", json_boolean(a->dry_run)) == 0 &&
	    (pins == NULL || json_object_set(b, "pins", pins) == 0))
		s = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	return s;
}

/* ---- the report ---- */

struct summary {
	int dry_run;
	uint64_t manifests, blobs, blob_bytes, uploads, freed, waiting;
	double duration_ms;
	const char *next_due; /* NULL when none (points into the JSON) */
	/* Newer servers: tags the retention policy expired, and those it
	 * kept because they are pinned (-1 when the report has no such
	 * array). */
	long long expired, kept;
};

/* The length of an optional array member: -1 when absent (or null), -2
 * when not an array. */
static long long
array_len(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return -1;
	return json_is_array(v) ? (long long)json_array_size(v) : -2;
}

/* The fields of the report (gc/gc.h, gc_report_json) the line needs. */
static int
summary_read(json_t *root, struct summary *s)
{
	json_t *dry = json_object_get(root, "dry_run");
	json_t *dur = json_object_get(root, "duration_ms");
	json_t *wait = json_object_get(root, "waiting");
	json_t *next = json_object_get(wait, "next_due");

	memset(s, 0, sizeof(*s));
	if (!json_is_object(root) || !json_is_boolean(dry) ||
	    !json_is_number(dur) || !json_is_object(wait))
		return -1;
	if (client_json_count(json_object_get(root, "manifests"), "deleted",
	                      &s->manifests) < 0 ||
	    client_json_count(json_object_get(root, "blobs"), "deleted",
	                      &s->blobs) < 0 ||
	    client_json_count(json_object_get(root, "blobs"), "bytes",
	                      &s->blob_bytes) < 0 ||
	    client_json_count(json_object_get(root, "uploads"), "deleted",
	                      &s->uploads) < 0 ||
	    client_json_count(root, "bytes_freed", &s->freed) < 0 ||
	    client_json_count(wait, "count", &s->waiting) < 0)
		return -1;
	if (next != NULL && !json_is_null(next) && !json_is_string(next))
		return -1;
	if ((s->expired = array_len(root, "tags_expired")) == -2 ||
	    (s->kept = array_len(root, "kept_by_pins")) == -2)
		return -1;
	s->dry_run = json_is_true(dry);
	s->duration_ms = json_number_value(dur);
	s->next_due = json_string_value(next);
	return 0;
}

static void
human_ms(double ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%.1f ms", ms);
	else
		snprintf(buf, len, "%.1f s", ms / 1000);
}

static void
summary_print(const struct summary *s)
{
	char blob_b[32], freed[32], dur[32];

	client_human_bytes(s->blob_bytes, blob_b, sizeof(blob_b));
	client_human_bytes(s->freed, freed, sizeof(freed));
	human_ms(s->duration_ms, dur, sizeof(dur));
	printf("%s %" PRIu64 " %s, %" PRIu64 " %s (%s), %" PRIu64
	       " %s; %s %s in %s; %" PRIu64 " waiting",
	       s->dry_run ? "gc (dry run): would delete" : "gc: deleted",
	       s->manifests,
	       client_plural(s->manifests, "manifest", "manifests"), s->blobs,
	       client_plural(s->blobs, "blob", "blobs"), blob_b, s->uploads,
	       client_plural(s->uploads, "upload", "uploads"),
	       s->dry_run ? "would free" : "freed", freed, dur, s->waiting);
	if (s->next_due != NULL) {
		/* A time stamp from the server: printable characters only. */
		printf(" (next due ");
		for (const char *p = s->next_due; *p && p - s->next_due < 64;
		     p++)
			putchar((unsigned char)*p < 0x20 || *p == 0x7f ? '?'
			                                               : *p);
		printf(")");
	}
	/* Only what happened: a registry without a retention policy keeps
	 * the line it always had. */
	if (s->expired > 0)
		printf("; %lld %s %s", s->expired,
		       client_plural((uint64_t)s->expired, "tag", "tags"),
		       s->dry_run ? "would expire" : "expired");
	if (s->kept > 0)
		printf("%s%lld kept by pins", s->expired > 0 ? ", " : "; ",
		       s->kept);
	printf("\n");
}

/* Prints the reply (line or JSON) and checks it is the report of the run
 * asked for. */
static int
report_print(const struct gc_args *a, const struct client_reply *r)
{
	struct summary s;
	json_t *root = NULL;
	char err[256];
	int rc = 0;

	if (client_reply_json(r, GC_WHAT, &root, err, sizeof(err)) != RC_OK ||
	    summary_read(root, &s) < 0) {
		if (root != NULL)
			client_reply_invalid(r, GC_WHAT, err, sizeof(err));
		json_decref(root);
		return client_cli_fail(&a->cli, "%s", err);
	}
	if (a->json)
		printf("%s%s", r->body,
		       r->len > 0 && r->body[r->len - 1] == '\n' ? "" : "\n");
	else
		summary_print(&s);
	if (fflush(stdout) != 0)
		rc = client_cli_fail(&a->cli, "cannot write the report: %s",
		                     strerror(errno));
	else if (s.dry_run != a->dry_run)
		rc = client_cli_fail(
		        &a->cli,
		        a->dry_run ? "asked for a dry run, but the server "
		                     "ran a real collection"
		                   : "asked for a collection, but the "
		                     "server only made a dry run");
	json_decref(root);
	return rc;
}

/* Signs in, sends the body, prints the report. */
static int
gc_post(const struct gc_args *a, struct client *c, const char *body)
{
	struct client_reply r = {0};
	char err[512];
	int rc;

	if (client_request(c, "POST", "/v2/_berth/gc", body, &r, err,
	                   sizeof(err)) != RC_OK)
		return client_cli_fail(&a->cli, "%s", err);
	if (client_reply_error(c, &r, err, sizeof(err)) != RC_OK)
		rc = client_cli_fail(&a->cli, "%s", err);
	else
		rc = report_print(a, &r);
	client_reply_free(&r);
	return rc;
}

int
cli_gc(int argc, char **argv)
{
	struct client *c = NULL;
	struct strs hosts = {0};
	struct gc_args a;
	json_t *pins = NULL;
	char *body = NULL;
	int rc;

	if ((rc = args_parse(argc, argv, &a)) != 0) {
		free(a.hosts);
		if (rc > 0)
			return rc;
		gc_usage(stdout);
		return 0;
	}
	if ((rc = client_cli_open(&a.cli, &c)) != 0)
		goto done;
	/* Everything that can fail before the request does so now: the
	 * server gets a body with every pin, or nothing. */
	if ((rc = hosts_get(&a, &hosts)) != 0 ||
	    ((a.pins_kube || a.pins_file != NULL) &&
	     (rc = pins_gather(&a, &hosts, &pins)) != 0))
		goto done;
	if ((body = body_make(&a, pins)) == NULL)
		rc = client_cli_fail(&a.cli, "out of memory");
	else
		rc = gc_post(&a, c, body);
done:
	free(body);
	json_decref(pins);
	strs_free(&hosts);
	client_close(c);
	free(a.hosts);
	return rc;
}
