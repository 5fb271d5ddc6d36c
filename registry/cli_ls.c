/* `berth ls`: the tags of a running server (GET /v2/_berth/tags, page by
 * page) as a table for humans and ChatOps: where each tag points, when it
 * was pushed and last pulled, when and why it expires, whether the
 * cluster pins it, what it weighs and what deleting it would free. Or all
 * rows as one JSON object. Exit 0, 1 with one line on stderr, 2 on bad
 * usage; nothing is printed unless every page arrived. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/duration.h"
#include "common/rc.h"
#include "registry/client.h"
#include "registry/server.h"

#define LS_PAGE   1000 /* rows asked for per request */
#define LS_WHAT   "a tag list"
#define LIMIT_MAX 100000000L

static void
ls_usage(FILE *f)
{
	fprintf(f,
	        "usage: berth ls --server URL [--repository GLOB] "
	        "[--expired | --not-expired]\n"
	        "                [--idle-for DURATION] [--limit N] "
	        "[--json]\n" CLIENT_CLI_HELP_SYNOPSIS
	        "                [--timeout SECONDS]\n\n"
	        "Lists the tags of a running berth (GET /v2/_berth/tags): "
	        "repository, tag,\n"
	        "digest, when pushed and last pulled, when it expires and "
	        "by which rule,\n"
	        "whether the cluster pins it, its size and the bytes only it "
	        "holds (what\n"
	        "deleting it frees), then a line of totals.\n\n"
	        "options:\n" CLIENT_CLI_HELP_SERVER
	        "  --repository GLOB     only repositories matching GLOB "
	        "('*' within a path\n"
	        "                        segment, '**' across them)\n"
	        "  --expired             only tags past their expiry\n"
	        "  --not-expired         only tags not past it\n"
	        "  --idle-for DURATION   only tags not pulled for DURATION "
	        "(e.g. 30m, 12h, 7d,\n"
	        "                        2w)\n"
	        "  --limit N             stop after N tags\n"
	        "  --json                print {\"tags\": [...]} with the "
	        "server's rows instead\n" CLIENT_CLI_HELP_SIGNIN
	        "  --timeout SECONDS     give up on a request after this "
	        "long, default %d\n"
	        "                        (connecting: %d)\n"
	        "  --help                this text\n\n"
	        "exit status: 0 done, 1 failed (one line on stderr), 2 bad "
	        "usage\n",
	        CLIENT_TIMEOUT, CLIENT_CONNECT_TIMEOUT);
}

struct ls_args {
	struct client_cli cli;
	const char *repository, *idle_for;
	int expired; /* -1: both, 0: not expired, 1: expired */
	int json;
	long limit; /* 0: all */
};

/* Returns -1 for --help, 0, or 2 (message printed). */
static int
args_parse(int argc, char **argv, struct ls_args *a)
{
	const char *limit = NULL;
	uint64_t secs;
	char *end;
	int rc;

	memset(a, 0, sizeof(*a));
	client_cli_init(&a->cli, "ls");
	a->expired = -1;
	for (int i = 0; i < argc; i++) {
		const char *f = argv[i];

		if ((rc = client_cli_option(&a->cli, argc, argv, &i)) == 1)
			continue;
		if (rc != 0)
			return rc;
		if (strcmp(f, "--json") == 0)
			a->json = 1;
		else if (strcmp(f, "--expired") == 0 ||
		         strcmp(f, "--not-expired") == 0) {
			int want = f[2] == 'e';

			if (a->expired >= 0 && a->expired != want)
				return client_cli_usage(&a->cli,
				                        "--expired and "
				                        "--not-expired exclude "
				                        "each other");
			a->expired = want;
		} else if (strcmp(f, "--repository") == 0)
			rc = client_cli_value(&a->cli, argc, argv, &i,
			                      &a->repository);
		else if (strcmp(f, "--idle-for") == 0)
			rc = client_cli_value(&a->cli, argc, argv, &i,
			                      &a->idle_for);
		else if (strcmp(f, "--limit") == 0)
			rc = client_cli_value(&a->cli, argc, argv, &i, &limit);
		else
			return client_cli_usage(&a->cli, "unknown option '%s'",
			                        f);
		if (rc != 0)
			return rc;
	}
	if (a->idle_for != NULL && duration_parse(a->idle_for, &secs) != RC_OK)
		return client_cli_usage(&a->cli,
		                        "--idle-for needs a number and one of "
		                        "s, m, h, d, w (e.g. 7d), not '%s'",
		                        a->idle_for);
	if (a->repository != NULL)
		for (const char *p = a->repository; *p; p++)
			if ((unsigned char)*p < ' ' || *p == 0x7f)
				return client_cli_usage(&a->cli,
				                        "--repository holds a "
				                        "control character");
	if (limit != NULL) {
		errno = 0;
		a->limit = strtol(limit, &end, 10);
		if (*end != '\0' || errno != 0 || a->limit < 1 ||
		    a->limit > LIMIT_MAX)
			return client_cli_usage(&a->cli,
			                        "--limit needs a number from 1 "
			                        "to %ld, not '%s'",
			                        LIMIT_MAX, limit);
	}
	return client_cli_finish(&a->cli);
}

/* ---- fetching ---- */

/* The path of one page; NULL when out of memory. */
static char *
page_path(const struct ls_args *a, const char *cursor, long n)
{
	char *repo = a->repository ? client_escape(a->repository) : NULL;
	char *idle = a->idle_for ? client_escape(a->idle_for) : NULL;
	char *last = cursor ? client_escape(cursor) : NULL;
	char *path = NULL;

	if ((a->repository == NULL || repo != NULL) &&
	    (a->idle_for == NULL || idle != NULL) &&
	    (cursor == NULL || last != NULL) &&
	    asprintf(&path, "/v2/_berth/tags?n=%ld%s%s%s%s%s%s%s", n,
	             repo ? "&repository=" : "", repo ? repo : "",
	             a->expired < 0    ? ""
	             : a->expired == 1 ? "&expired=true"
	                               : "&expired=false",
	             idle ? "&idle_for=" : "", idle ? idle : "",
	             last ? "&last=" : "", last ? last : "") < 0)
		path = NULL;
	free(repo);
	free(idle);
	free(last);
	return path;
}

/* A string, or null or absent. */
static int
opt_string_ok(json_t *v)
{
	return v == NULL || json_is_null(v) || json_is_string(v);
}

/* One row of the list: the members the table needs. */
static int
row_ok(json_t *r)
{
	return json_is_string(json_object_get(r, "repository")) &&
	       json_is_string(json_object_get(r, "tag")) &&
	       json_is_string(json_object_get(r, "digest")) &&
	       json_is_string(json_object_get(r, "pushed")) &&
	       opt_string_ok(json_object_get(r, "last_pulled")) &&
	       opt_string_ok(json_object_get(r, "expires")) &&
	       opt_string_ok(json_object_get(r, "expires_by")) &&
	       json_is_boolean(json_object_get(r, "pinned")) &&
	       client_json_count(r, "size", NULL) == 0 &&
	       client_json_count(r, "unique_size", NULL) == 0;
}

/* Adds the rows of one page to rows (up to the limit) and sets *next to
 * the cursor of the next page (malloc'ed; NULL on the last). 0, or 1
 * (line printed). */
static int
page_take(const struct ls_args *a, const struct client_reply *rep, json_t *rows,
          char **next)
{
	json_t *root = NULL, *tags, *nx, *r;
	char err[256];
	size_t i;
	int rc = 0;

	*next = NULL;
	if (client_reply_json(rep, LS_WHAT, &root, err, sizeof(err)) != RC_OK)
		return client_cli_fail(&a->cli, "%s", err);
	tags = json_object_get(root, "tags");
	nx = json_object_get(root, "next");
	if (!json_is_array(tags) || !opt_string_ok(nx))
		goto invalid;
	json_array_foreach(tags, i, r)
	{
		if (!row_ok(r))
			goto invalid;
	}
	json_array_foreach(tags, i, r)
	{
		if (a->limit > 0 && (long)json_array_size(rows) >= a->limit)
			break;
		if (json_array_append(rows, r) < 0) {
			rc = client_cli_fail(&a->cli, "out of memory");
			goto out;
		}
	}
	if (json_string_length(nx) > 0 &&
	    (*next = strdup(json_string_value(nx))) == NULL)
		rc = client_cli_fail(&a->cli, "out of memory");
	goto out;
invalid:
	client_reply_invalid(rep, LS_WHAT, err, sizeof(err));
	rc = client_cli_fail(&a->cli, "%s", err);
out:
	json_decref(root);
	return rc;
}

/* Every page into rows. 0, or 1 (line printed). */
static int
rows_fetch(const struct ls_args *a, struct client *c, json_t *rows)
{
	struct client_reply rep = {0};
	char err[512], *cursor = NULL, *next = NULL, *path;
	long n;
	int rc = 0;

	for (;;) {
		n = LS_PAGE;
		if (a->limit > 0 &&
		    a->limit - (long)json_array_size(rows) < LS_PAGE)
			n = a->limit - (long)json_array_size(rows);
		if ((path = page_path(a, cursor, n)) == NULL) {
			rc = client_cli_fail(&a->cli, "out of memory");
			break;
		}
		rc = client_request(c, "GET", path, NULL, &rep, err,
		                    sizeof(err));
		free(path);
		if (rc != RC_OK) {
			rc = client_cli_fail(&a->cli, "%s", err);
			break;
		}
		if (client_reply_error(c, &rep, err, sizeof(err)) != RC_OK)
			rc = client_cli_fail(&a->cli, "%s", err);
		else
			rc = page_take(a, &rep, rows, &next);
		client_reply_free(&rep);
		if (rc != 0 || next == NULL ||
		    (a->limit > 0 && (long)json_array_size(rows) >= a->limit))
			break;
		if (cursor != NULL && strcmp(cursor, next) == 0) {
			rc = client_cli_fail(&a->cli,
			                     "the server's answer (HTTP 200) "
			                     "repeats the page cursor");
			break;
		}
		free(cursor);
		cursor = next;
		next = NULL;
	}
	free(cursor);
	free(next);
	return rc;
}

/* ---- the table ---- */

enum col {
	C_REPO,
	C_TAG,
	C_DIGEST,
	C_PUSHED,
	C_PULLED,
	C_EXPIRES,
	C_PINNED,
	C_SIZE,
	C_UNIQUE,
	NCOL
};

static const char *const col_name[NCOL] = {
        "REPOSITORY", "TAG",    "DIGEST", "PUSHED", "LAST PULLED",
        "EXPIRES",    "PINNED", "SIZE",   "UNIQUE"};

/* Text from the server for a cell: control characters become '?'. */
static char *
cell_clean(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *out = malloc(n + 1);

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		out[i] =
		        (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	out[n] = '\0';
	return out;
}

static char *__attribute__((format(printf, 1, 2)))
cell_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

/* Columns on a terminal: UTF-8 continuation bytes take none. */
static size_t
width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

/* "2026-12-01T10:00:00Z", with optional fractions and a ±hh:mm offset
 * instead of Z. 0 and *out, or -1. */
static int
time_parse(const char *s, time_t *out)
{
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	long off = 0;
	time_t t;

	if (p == NULL)
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int hh, mm;

		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
			return -1;
		off = (hh * 60L + mm) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	}
	if (*p != '\0' || (t = timegm(&tm)) == (time_t)-1)
		return -1;
	*out = t - off;
	return 0;
}

/* "40s", "3m", "5h", "2d". */
static void
span(long long s, char *buf, size_t len)
{
	if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm", s / 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh", s / 3600);
	else
		snprintf(buf, len, "%lldd", s / 86400);
}

/* A time stamp relative to now: "2d ago", "in 5h" ("expired 2h ago" with
 * expiry); the text as received when it does not parse. */
static char *
cell_time(json_t *v, time_t now, int expiry)
{
	const char *s = json_string_value(v);
	char sp[32];
	time_t t;

	if (s == NULL)
		return strdup("never");
	if (time_parse(s, &t) < 0)
		return cell_clean(s, 64);
	if (t > now) {
		span((long long)(t - now), sp, sizeof(sp));
		return cell_fmt("in %s", sp);
	}
	span((long long)(now - t), sp, sizeof(sp));
	return cell_fmt("%s%s ago", expiry ? "expired " : "", sp);
}

static char *
cell_expires(json_t *row, time_t now)
{
	const char *by = json_string_value(json_object_get(row, "expires_by"));
	char *when = cell_time(json_object_get(row, "expires"), now, 1);
	char *why, *out;

	if (when == NULL || by == NULL || *by == '\0')
		return when;
	why = cell_clean(by, 200);
	out = why ? cell_fmt("%s (%s)", when, why) : NULL;
	free(when);
	free(why);
	return out;
}

static char *
cell_digest(const char *d)
{
	const char *colon = strchr(d, ':');

	return cell_clean(colon ? colon + 1 : d, 12);
}

static char *
cell_bytes(json_t *v)
{
	char buf[32];

	client_human_bytes((uint64_t)json_integer_value(v), buf, sizeof(buf));
	return strdup(buf);
}

/* The cells of one row into cells[NCOL]; -1 when out of memory. */
static int
row_cells(json_t *r, time_t now, char **cells)
{
	cells[C_REPO] = cell_clean(
	        json_string_value(json_object_get(r, "repository")), 1024);
	cells[C_TAG] =
	        cell_clean(json_string_value(json_object_get(r, "tag")), 256);
	cells[C_DIGEST] =
	        cell_digest(json_string_value(json_object_get(r, "digest")));
	cells[C_PUSHED] = cell_time(json_object_get(r, "pushed"), now, 0);
	cells[C_PULLED] = cell_time(json_object_get(r, "last_pulled"), now, 0);
	cells[C_EXPIRES] = cell_expires(r, now);
	cells[C_PINNED] = strdup(
	        json_is_true(json_object_get(r, "pinned")) ? "yes" : "no");
	cells[C_SIZE] = cell_bytes(json_object_get(r, "size"));
	cells[C_UNIQUE] = cell_bytes(json_object_get(r, "unique_size"));
	for (int i = 0; i < NCOL; i++)
		if (cells[i] == NULL)
			return -1;
	return 0;
}

/* One line: left-aligned text, right-aligned sizes, two spaces apart. */
static void
line_print(char *const *cells, const size_t *w)
{
	for (int i = 0; i < NCOL; i++) {
		size_t pad = w[i] - width(cells[i]);
		int right = i == C_SIZE || i == C_UNIQUE;

		if (right)
			printf("%*s", (int)pad, "");
		fputs(cells[i], stdout);
		if (!right && i + 1 < NCOL)
			printf("%*s", (int)pad, "");
		if (i + 1 < NCOL)
			fputs("  ", stdout);
	}
	putchar('\n');
}

static int
table_print(const struct ls_args *a, json_t *rows)
{
	size_t n = json_array_size(rows), w[NCOL], i;
	uint64_t total = 0, unique = 0;
	char **cells = calloc(n * NCOL + 1, sizeof(*cells)), tb[32], ub[32];
	time_t now = time(NULL);
	json_t *r;
	int rc = 0;

	if (cells == NULL)
		return client_cli_fail(&a->cli, "out of memory");
	for (int c = 0; c < NCOL; c++)
		w[c] = width(col_name[c]);
	json_array_foreach(rows, i, r)
	{
		if (row_cells(r, now, cells + i * NCOL) < 0) {
			rc = client_cli_fail(&a->cli, "out of memory");
			goto out;
		}
		for (int c = 0; c < NCOL; c++)
			if (width(cells[i * NCOL + c]) > w[c])
				w[c] = width(cells[i * NCOL + c]);
		total += (uint64_t)json_integer_value(
		        json_object_get(r, "size"));
		unique += (uint64_t)json_integer_value(
		        json_object_get(r, "unique_size"));
	}
	if (n > 0) {
		line_print((char *const *)col_name, w);
		for (i = 0; i < n; i++)
			line_print(cells + i * NCOL, w);
	}
	client_human_bytes(total, tb, sizeof(tb));
	client_human_bytes(unique, ub, sizeof(ub));
	printf("%zu %s, %s total, %s unique\n", n, n == 1 ? "tag" : "tags", tb,
	       ub);
out:
	for (i = 0; i < n * NCOL; i++)
		free(cells[i]);
	free(cells);
	return rc;
}

static int
json_print(const struct ls_args *a, json_t *rows)
{
	json_t *o = json_pack("{sO}", "tags", rows);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (s == NULL)
		return client_cli_fail(&a->cli, "out of memory");
	printf("%s\n", s);
	free(s);
	return 0;
}

int
cli_ls(int argc, char **argv)
{
	struct client *c = NULL;
	struct ls_args a;
	json_t *rows;
	int rc;

	if ((rc = args_parse(argc, argv, &a)) != 0) {
		if (rc > 0)
			return rc;
		ls_usage(stdout);
		return 0;
	}
	if ((rc = client_cli_open(&a.cli, &c)) != 0)
		return rc;
	if ((rows = json_array()) == NULL) {
		client_close(c);
		return client_cli_fail(&a.cli, "out of memory");
	}
	rc = rows_fetch(&a, c, rows);
	client_close(c);
	if (rc == 0)
		rc = a.json ? json_print(&a, rows) : table_print(&a, rows);
	json_decref(rows);
	if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
		rc = client_cli_fail(&a.cli, "cannot write the list: %s",
		                     strerror(errno));
	return rc;
}
