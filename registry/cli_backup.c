/* `berth backup`: streams a consistent online backup of a running server
 * (GET /v2/_berth/backup) to stdout or a file, as one tar.zst archive.
 * Exit 0 when the archive arrived whole, 1 on any failure (one line on
 * stderr), 2 on bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rc.h"
#include "registry/client.h"
#include "registry/server.h"
#include "storage/backup.h"

#define GLOBS_MAX 64

static void
backup_usage(FILE *f)
{
	fprintf(f, "usage: berth backup --server URL [--repositories GLOB...] "
	           "[--level N]\n"
	           "                [--output FILE]\n" CLIENT_CLI_HELP_SYNOPSIS
	           "                [--timeout SECONDS] > berth.tar.zst\n\n"
	           "Streams a consistent backup of a running registry: the "
	           "server takes one\n"
	           "snapshot of its index and sends it with every blob it "
	           "references, as\n"
	           "one tar archive compressed with zstd. Pushes, deletes and "
	           "collection\n"
	           "runs go on meanwhile. Restore it with berth restore.\n\n"
	           "options:\n" CLIENT_CLI_HELP_SERVER
	           "  --repositories GLOB   back up only the repositories "
	           "matching GLOB (`*`\n"
	           "                        within a path component, `**` "
	           "across); repeat the\n"
	           "                        flag or list several globs after "
	           "it; default all\n"
	           "  --level N             zstd level, 1 to 19 (default 3); "
	           "layers are mostly\n"
	           "                        compressed already\n"
	           "  --output FILE         write FILE (through FILE.part, "
	           "renamed when whole)\n"
	           "                        instead of stdout\n"
	           "  --timeout SECONDS     for the whole transfer (default "
	           "86400)\n" CLIENT_CLI_HELP_SIGNIN
	           "  --help                this text\n\n"
	           "The user needs {\"backup\": true} in the users file.\n");
}

struct backup_args {
	struct client_cli cli;
	const char *globs[GLOBS_MAX];
	size_t n_globs;
	const char *level, *output;
};

struct sink {
	int fd;
	uint64_t bytes;
	int err; /* errno of a failed write */
};

static int
sink_write(const void *p, size_t n, void *arg)
{
	struct sink *s = arg;
	const char *b = p;

	while (n > 0) {
		ssize_t w = write(s->fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			s->err = w < 0 ? errno : EIO;
			return -1;
		}
		b += w;
		n -= (size_t)w;
		s->bytes += (uint64_t)w;
	}
	return 0;
}

static int
args_parse(int argc, char **argv, struct backup_args *a)
{
	int rc;

	memset(a, 0, sizeof(*a));
	client_cli_init(&a->cli, "backup");
	for (int i = 0; i < argc; i++) {
		const char *f = argv[i];

		if ((rc = client_cli_option(&a->cli, argc, argv, &i)) == 1)
			continue;
		if (rc != 0)
			return rc;
		if (strcmp(f, "--repositories") == 0 ||
		    strcmp(f, "--repository") == 0) {
			const char *g;
			if ((rc = client_cli_value(&a->cli, argc, argv, &i,
			                           &g)) != 0)
				return rc;
			for (;;) {
				if (a->n_globs == GLOBS_MAX)
					return client_cli_usage(
					        &a->cli,
					        "at most %d repository globs",
					        GLOBS_MAX);
				a->globs[a->n_globs++] = g;
				if (i + 1 >= argc ||
				    strncmp(argv[i + 1], "--", 2) == 0)
					break;
				g = argv[++i];
			}
		} else if (strcmp(f, "--level") == 0) {
			rc = client_cli_value(&a->cli, argc, argv, &i,
			                      &a->level);
		} else if (strcmp(f, "--output") == 0) {
			rc = client_cli_value(&a->cli, argc, argv, &i,
			                      &a->output);
		} else {
			return client_cli_usage(&a->cli, "unknown option '%s'",
			                        f);
		}
		if (rc != 0)
			return rc;
	}
	if (a->level != NULL) {
		char *end;
		long n = strtol(a->level, &end, 10);
		if (*end != '\0' || n < BACKUP_LEVEL_MIN ||
		    n > BACKUP_LEVEL_MAX)
			return client_cli_usage(
			        &a->cli,
			        "--level needs a number from %d "
			        "to %d, not '%s'",
			        BACKUP_LEVEL_MIN, BACKUP_LEVEL_MAX, a->level);
	}
	if ((rc = client_cli_finish(&a->cli)) != 0)
		return rc;
	if (a->cli.flag_timeout == NULL)
		a->cli.timeout_s = CLIENT_TIMEOUT_MAX;
	return 0;
}

/* "/v2/_berth/backup?level=N&repository=G&…", malloc'd. */
static char *
path_make(const struct backup_args *a)
{
	size_t cap = 64 + (a->level ? strlen(a->level) : 0);
	char *p, *e;

	for (size_t i = 0; i < a->n_globs; i++)
		cap += 12 + 3 * strlen(a->globs[i]);
	if ((p = malloc(cap)) == NULL)
		return NULL;
	snprintf(p, cap, "/v2/_berth/backup?level=%s",
	         a->level ? a->level : "3");
	for (size_t i = 0; i < a->n_globs; i++) {
		if ((e = client_escape(a->globs[i])) == NULL) {
			free(p);
			return NULL;
		}
		strcat(p, "&repository=");
		strcat(p, e);
		free(e);
	}
	return p;
}

static int
fetch(struct backup_args *a, struct client *c, struct sink *s)
{
	struct client_reply r = {0};
	char err[512], *path = path_make(a);
	int rc;

	if (path == NULL)
		return client_cli_fail(&a->cli, "out of memory");
	rc = client_request_sink(c, "GET", path, sink_write, s, &r, err,
	                         sizeof(err));
	free(path);
	if (rc == RC_SINK)
		return client_cli_fail(&a->cli, "cannot write the backup: %s",
		                       strerror(s->err));
	if (rc != RC_OK)
		return client_cli_fail(
		        &a->cli, "%s%s", err,
		        s->bytes > 0 ? " (the backup is incomplete)" : "");
	if (client_reply_error(c, &r, err, sizeof(err)) != RC_OK)
		rc = client_cli_fail(&a->cli, "%s", err);
	client_reply_free(&r);
	return rc;
}

int
cli_backup(int argc, char **argv)
{
	struct backup_args a;
	struct client *c = NULL;
	struct sink s = {.fd = STDOUT_FILENO};
	char *part = NULL, human[32];
	int rc;

	if ((rc = args_parse(argc, argv, &a)) != 0) {
		if (rc > 0)
			return rc;
		backup_usage(stdout);
		return 0;
	}
	if (a.output == NULL && isatty(STDOUT_FILENO))
		return client_cli_usage(&a.cli, "stdout is a terminal: "
		                                "redirect it or use --output");
	if ((rc = client_cli_open(&a.cli, &c)) != 0)
		return rc;
	if (a.output != NULL) {
		if (asprintf(&part, "%s.part", a.output) < 0) {
			client_close(c);
			return client_cli_fail(&a.cli, "out of memory");
		}
		s.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		            0600);
		if (s.fd < 0) {
			rc = client_cli_fail(&a.cli, "cannot create %s: %s",
			                     part, strerror(errno));
			goto done;
		}
	}
	rc = fetch(&a, c, &s);
	if (rc == 0 && a.output != NULL &&
	    (fsync(s.fd) != 0 || close(s.fd) != 0 ||
	     rename(part, a.output) != 0)) {
		s.fd = -1;
		rc = client_cli_fail(&a.cli, "cannot write %s: %s", a.output,
		                     strerror(errno));
	} else if (a.output != NULL) {
		if (rc != 0)
			close(s.fd);
		s.fd = -1;
	}
	if (rc != 0 && part != NULL)
		unlink(part);
	if (rc == 0) {
		client_human_bytes(s.bytes, human, sizeof(human));
		fprintf(stderr, "berth backup: %s written\n", human);
	}
done:
	free(part);
	client_close(c);
	return rc;
}
