/* `berth gc`: asks a running server to collect garbage now (POST
 * /v2/_berth/gc) and prints its report: one summary line, or the JSON as
 * received. Made for a Kubernetes CronJob: settings also come from the
 * environment, secrets from files (mounted Secrets), exit 0 on success, 1
 * with one line on stderr on any failure, 2 on bad usage. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/rc.h"
#include "registry/client.h"
#include "registry/server.h"

#define SECRET_MAX  (64u * 1024u) /* largest password or token file */
#define TIMEOUT_MAX 86400

static void
gc_usage(FILE *f)
{
	fprintf(f,
	        "usage: berth gc --server URL [--dry-run] [--json]\n"
	        "                [--user NAME --password-file FILE | "
	        "--token-file FILE]\n"
	        "                [--timeout SECONDS]\n\n"
	        "Runs the garbage collector of a running berth now (POST "
	        "/v2/_berth/gc) and\n"
	        "prints what it deleted. With token auth the user needs "
	        "{\"gc\": true} in the\n"
	        "users file.\n\n"
	        "options:\n"
	        "  --server URL          the registry, http(s)://host:port "
	        "(env BERTH_SERVER)\n"
	        "  --dry-run             report what would be deleted, "
	        "delete nothing\n"
	        "  --json                print the server's JSON report "
	        "instead of one line\n"
	        "  --user NAME           sign in as NAME at the server's "
	        "token endpoint\n"
	        "                        (env BERTH_USER)\n"
	        "  --password-file FILE  NAME's password: the content of FILE, "
	        "a trailing\n"
	        "                        newline dropped (env "
	        "BERTH_PASSWORD_FILE)\n"
	        "  --token-file FILE     a bearer token to send as is, from "
	        "FILE likewise\n"
	        "                        (env BERTH_TOKEN_FILE)\n"
	        "  --timeout SECONDS     give up after this long, default "
	        "%d (connecting: %d)\n"
	        "  --help                this text\n\n"
	        "exit status: 0 done, 1 failed (one line on stderr), 2 bad "
	        "usage\n",
	        CLIENT_TIMEOUT, CLIENT_CONNECT_TIMEOUT);
}

struct gc_args {
	const char *server, *user, *password_file, *token_file;
	int dry_run, json;
	long timeout;
};

static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "berth gc: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (berth gc --help)\n");
	return 2;
}

static int __attribute__((format(printf, 1, 2))) failure(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "berth gc: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return 1;
}

/* Flags, then the environment for what no flag set. A sign-in given by
 * flags (user and password, or token) wins over the other one given by
 * the environment. Returns -1 for --help, 0, or 2 (message printed). */
static int
args_parse(int argc, char **argv, struct gc_args *a)
{
	const char *fuser = NULL, *fpass = NULL, *ftok = NULL, *ftime = NULL;
	char *end;
	int by_flag_user, by_flag_tok;

	memset(a, 0, sizeof(*a));
	for (int i = 0; i < argc; i++) {
		const char *f = argv[i];
		const char **val = NULL;

		if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0)
			return -1;
		if (strcmp(f, "--dry-run") == 0)
			a->dry_run = 1;
		else if (strcmp(f, "--json") == 0)
			a->json = 1;
		else if (strcmp(f, "--server") == 0)
			val = &a->server;
		else if (strcmp(f, "--user") == 0)
			val = &fuser;
		else if (strcmp(f, "--password-file") == 0)
			val = &fpass;
		else if (strcmp(f, "--token-file") == 0)
			val = &ftok;
		else if (strcmp(f, "--timeout") == 0)
			val = &ftime;
		else
			return usage_error("unknown option '%s'", f);
		if (val == NULL)
			continue;
		if (i + 1 >= argc || argv[i + 1][0] == '\0')
			return usage_error("%s needs a value", f);
		*val = argv[++i];
	}
	if (a->server == NULL)
		a->server = getenv("BERTH_SERVER");
	if (a->server == NULL || a->server[0] == '\0')
		return usage_error("--server URL (or BERTH_SERVER) is needed");
	by_flag_user = fuser != NULL || fpass != NULL;
	by_flag_tok = ftok != NULL;
	if (by_flag_user && by_flag_tok)
		return usage_error(
		        "--user and --token-file exclude each other");
	a->user = fuser;
	a->password_file = fpass;
	a->token_file = ftok;
	if (!by_flag_tok) {
		if (a->user == NULL)
			a->user = getenv("BERTH_USER");
		if (a->password_file == NULL)
			a->password_file = getenv("BERTH_PASSWORD_FILE");
	}
	if (!by_flag_user && a->token_file == NULL)
		a->token_file = getenv("BERTH_TOKEN_FILE");
	if (a->user != NULL && a->user[0] == '\0')
		a->user = NULL;
	if (a->password_file != NULL && a->password_file[0] == '\0')
		a->password_file = NULL;
	if (a->token_file != NULL && a->token_file[0] == '\0')
		a->token_file = NULL;
	if ((a->user != NULL || a->password_file != NULL) &&
	    a->token_file != NULL)
		return usage_error("BERTH_USER/BERTH_PASSWORD_FILE and "
		                   "BERTH_TOKEN_FILE exclude each other");
	if (a->user != NULL && a->password_file == NULL)
		return usage_error("--user needs --password-file (or "
		                   "BERTH_PASSWORD_FILE)");
	if (a->user == NULL && a->password_file != NULL)
		return usage_error("--password-file needs --user (or "
		                   "BERTH_USER)");
	a->timeout = CLIENT_TIMEOUT;
	if (ftime != NULL) {
		errno = 0;
		a->timeout = strtol(ftime, &end, 10);
		if (*end != '\0' || errno != 0 || a->timeout < 1 ||
		    a->timeout > TIMEOUT_MAX)
			return usage_error("--timeout needs seconds from 1 to "
			                   "%d, not '%s'",
			                   TIMEOUT_MAX, ftime);
	}
	return 0;
}

/* Reads a secret file whole, without its trailing newline; *out is
 * malloc'ed (the caller wipes and frees it). 0, or 1 (message printed). */
static int
secret_read(const char *path, const char *what, char **out)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL)
		return failure("cannot read the %s file %s: %s", what, path,
		               strerror(errno));
	if ((buf = malloc(SECRET_MAX + 1)) == NULL) {
		fclose(f);
		return failure("out of memory");
	}
	n = fread(buf, 1, SECRET_MAX + 1, f);
	if (ferror(f) || n > SECRET_MAX) {
		int e = ferror(f) ? errno : EFBIG;

		fclose(f);
		explicit_bzero(buf, SECRET_MAX + 1);
		free(buf);
		return failure("cannot read the %s file %s: %s", what, path,
		               e == EFBIG ? "larger than 64 KiB" : strerror(e));
	}
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (n == 0 || memchr(buf, '\0', n) != NULL) {
		explicit_bzero(buf, SECRET_MAX + 1);
		free(buf);
		return failure("the %s file %s is empty or holds a NUL byte",
		               what, path);
	}
	*out = buf;
	return 0;
}

static void
secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* ---- the report ---- */

struct summary {
	int dry_run;
	uint64_t manifests, blobs, blob_bytes, uploads, freed, waiting;
	double duration_ms;
	const char *next_due; /* NULL when none (points into the JSON) */
};

/* A count: a non-negative integer member. */
static int
count_get(json_t *obj, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
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
	if (count_get(json_object_get(root, "manifests"), "deleted",
	              &s->manifests) < 0 ||
	    count_get(json_object_get(root, "blobs"), "deleted", &s->blobs) <
	            0 ||
	    count_get(json_object_get(root, "blobs"), "bytes", &s->blob_bytes) <
	            0 ||
	    count_get(json_object_get(root, "uploads"), "deleted",
	              &s->uploads) < 0 ||
	    count_get(root, "bytes_freed", &s->freed) < 0 ||
	    count_get(wait, "count", &s->waiting) < 0)
		return -1;
	if (next != NULL && !json_is_null(next) && !json_is_string(next))
		return -1;
	s->dry_run = json_is_true(dry);
	s->duration_ms = json_number_value(dur);
	s->next_due = json_string_value(next);
	return 0;
}

/* "512 B", "12.4 MiB". */
static void
human_bytes(uint64_t b, char *buf, size_t len)
{
	static const char *const unit[] = {"B",   "KiB", "MiB", "GiB",
	                                   "TiB", "PiB", "EiB"};
	double v = (double)b;
	int i = 0;

	if (b < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", b);
		return;
	}
	while (v >= 1024 && i < 6) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[i]);
}

static void
human_ms(double ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%.1f ms", ms);
	else
		snprintf(buf, len, "%.1f s", ms / 1000);
}

static const char *
plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static void
summary_print(const struct summary *s)
{
	char blob_b[32], freed[32], dur[32];

	human_bytes(s->blob_bytes, blob_b, sizeof(blob_b));
	human_bytes(s->freed, freed, sizeof(freed));
	human_ms(s->duration_ms, dur, sizeof(dur));
	printf("%s %" PRIu64 " %s, %" PRIu64 " %s (%s), %" PRIu64
	       " %s; %s %s in %s; %" PRIu64 " waiting",
	       s->dry_run ? "gc (dry run): would delete" : "gc: deleted",
	       s->manifests, plural(s->manifests, "manifest", "manifests"),
	       s->blobs, plural(s->blobs, "blob", "blobs"), blob_b, s->uploads,
	       plural(s->uploads, "upload", "uploads"),
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
	printf("\n");
}

/* Prints the reply (line or JSON) and checks it is the report of the run
 * asked for. */
static int
report_print(const struct gc_args *a, const struct client_reply *r)
{
	struct summary s;
	json_t *root = json_loadb(r->body, r->len, 0, NULL);
	int rc = 0;

	if (root == NULL || summary_read(root, &s) < 0) {
		json_decref(root);
		return failure("the server's answer (HTTP %ld) is not a gc "
		               "report",
		               r->status);
	}
	if (a->json)
		printf("%s%s", r->body,
		       r->len > 0 && r->body[r->len - 1] == '\n' ? "" : "\n");
	else
		summary_print(&s);
	if (fflush(stdout) != 0)
		rc = failure("cannot write the report: %s", strerror(errno));
	else if (s.dry_run != a->dry_run)
		rc = failure(a->dry_run ? "asked for a dry run, but the server "
		                          "ran a real collection"
		                        : "asked for a collection, but the "
		                          "server only made a dry run");
	json_decref(root);
	return rc;
}

int
cli_gc(int argc, char **argv)
{
	struct client_options o = {0};
	struct client_reply r = {0};
	struct client *c = NULL;
	struct gc_args a;
	char err[512], *password = NULL, *token = NULL;
	int rc;

	if ((rc = args_parse(argc, argv, &a)) != 0) {
		if (rc > 0)
			return rc;
		gc_usage(stdout);
		return 0;
	}
	if (a.password_file != NULL &&
	    secret_read(a.password_file, "password", &password) != 0)
		return 1;
	if (a.token_file != NULL &&
	    secret_read(a.token_file, "token", &token) != 0)
		return 1;
	o.server = a.server;
	o.user = a.user;
	o.password = password;
	o.token = token;
	o.timeout_s = a.timeout;
	rc = client_open(&o, &c, err, sizeof(err));
	secret_free(password);
	secret_free(token);
	if (rc != RC_OK)
		return rc == RC_BAD_REQUEST ? usage_error("%s", err)
		                            : failure("%s", err);
	if (client_request(c, "POST", "/v2/_berth/gc",
	                   a.dry_run ? "{\"dry_run\":true}"
	                             : "{\"dry_run\":false}",
	                   &r, err, sizeof(err)) != RC_OK) {
		client_close(c);
		return failure("%s", err);
	}
	if (client_reply_error(c, &r, err, sizeof(err)) != RC_OK)
		rc = failure("%s", err);
	else
		rc = report_print(&a, &r);
	client_reply_free(&r);
	client_close(c);
	return rc;
}
