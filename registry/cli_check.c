/* `berth check`: verifies a stopped registry's data directory from scratch
 * (the index against itself and against the files), and with --repair
 * fixes what is safe to fix. Exit 0 when clean, 1 when problems are found
 * (or, after --repair, left), 2 when the check could not run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/rc.h"
#include "gc/gc.h"
#include "registry/server.h"
#include "storage/blob.h"
#include "storage/meta.h"

#define CHECK_GRACE_DEFAULT 3600ull

static void
check_usage(FILE *f)
{
	fprintf(f,
	        "usage: berth check [--data DIR] [--repair] [--deep] "
	        "[--grace SECONDS]\n\n"
	        "Verifies a data directory while no server runs on it: every\n"
	        "blob row has its file, every file a row, reference counts\n"
	        "and the gc queue recomputed from scratch, tags, manifests,\n"
	        "links and upload sessions. One line per problem, then a\n"
	        "summary; exit 0 when clean, 1 when not, 2 on error.\n\n"
	        "options:\n"
	        "  %-18s data directory (env BERTH_DATA, default ./data)\n"
	        "  %-18s fix what is safe: counts, queue, dangling tags,\n"
	        "  %-18s orphan files and upload leftovers older than the\n"
	        "  %-18s grace, pending unlinks\n"
	        "  %-18s also hash every blob file\n"
	        "  %-18s age of leftovers the repair removes, and delay of\n"
	        "  %-18s items it queues (default %llu)\n"
	        "  %-18s this text\n",
	        "--data DIR", "--repair", "", "", "--deep", "--grace SECONDS",
	        "", CHECK_GRACE_DEFAULT, "--help");
}

static void
print_line(enum gc_check_line what, const char *line, void *arg)
{
	(void)arg;
	switch (what) {
	case GC_CHECK_PROBLEM: printf("%s\n", line); break;
	case GC_CHECK_NOTE: printf("note: %s\n", line); break;
	case GC_CHECK_REPAIRED: printf("repaired: %s\n", line); break;
	}
}

/* --name VALUE or --name=VALUE at argv[*i]; NULL when not this flag. */
static const char *
flag_value(int argc, char **argv, int *i, const char *name, int *missing)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	return argv[++*i];
}

static int
parse_seconds(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || v > 100ull * 365 * 86400)
		return -1;
	*out = v;
	return 0;
}

/* A data directory berth has served from: its index exists. */
static int
is_data_dir(const char *data)
{
	char path[4096];
	struct stat st;
	int n = snprintf(path, sizeof(path), "%s/meta/data.mdb", data);

	return n > 0 && (size_t)n < sizeof(path) && stat(path, &st) == 0 &&
	       S_ISREG(st.st_mode);
}

int
cli_check(int argc, char **argv)
{
	struct gc_check_options o = {0};
	struct gc_check_report r;
	struct meta_options mo = {0};
	struct blob_store *bs = NULL;
	struct meta *m = NULL;
	const char *data = getenv("BERTH_DATA"), *v;
	char metadir[4096], summary[256];
	int rc, status = 2;

	o.grace = CHECK_GRACE_DEFAULT;
	for (int i = 0; i < argc; i++) {
		int missing = 0;

		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			check_usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--repair") == 0) {
			o.repair = 1;
		} else if (strcmp(argv[i], "--deep") == 0) {
			o.deep = 1;
		} else if ((v = flag_value(argc, argv, &i, "--data",
		                           &missing)) != NULL) {
			data = v;
		} else if ((v = flag_value(argc, argv, &i, "--grace",
		                           &missing)) != NULL) {
			if (parse_seconds(v, &o.grace) != 0) {
				fprintf(stderr,
				        "berth: --grace must be seconds: %s\n",
				        v);
				return 2;
			}
		} else {
			fprintf(stderr,
			        missing ? "berth: %s needs a value\n"
			                : "berth: unknown option '%s' (berth "
			                  "check --help)\n",
			        argv[i]);
			return 2;
		}
	}
	if (data == NULL || *data == '\0')
		data = "./data";
	if (!is_data_dir(data)) {
		fprintf(stderr,
		        "berth: %s is not a berth data directory (no "
		        "meta/data.mdb)\n",
		        data);
		return 2;
	}
	if (cli_data_lock(data, "stop it before running berth check") != 0)
		return 2;
	rc = blob_store_open(data, &bs);
	if (rc != RC_OK) {
		fprintf(stderr, "berth: data directory %s is not usable: %s\n",
		        data, rc_str(rc));
		goto out;
	}
	snprintf(metadir, sizeof(metadir), "%s/meta", data);
	mo.gc_grace = o.grace > 0 ? o.grace : 1;
	rc = meta_open(metadir, &mo, &m);
	if (rc != RC_OK) {
		fprintf(stderr, "berth: cannot open the metadata index: %s\n",
		        rc_str(rc));
		goto out;
	}
	o.now = (uint64_t)time(NULL);
	rc = gc_check_run(m, bs, &o, print_line, NULL, &r);
	if (rc != RC_OK) {
		fflush(stdout);
		fprintf(stderr, "berth: check failed: %s\n", rc_str(rc));
		goto out;
	}
	gc_check_summary(&r, summary, sizeof(summary));
	printf("%s\n", summary);
	status = (o.repair ? r.left : r.problems) > 0 ? 1 : 0;
out:
	meta_close(m);
	blob_store_close(bs);
	cli_data_unlock();
	return status;
}
