/* `berth restore`: rebuilds a data directory from a `berth backup`
 * archive while no server runs on it. Everything is written into
 * DIR/.restore-tmp first: the blobs through the store's upload path (each
 * one's digest verified as it is written), the index from the archive's
 * rows, then the counts and the gc queue rebuilt and the whole checked as
 * `berth check` does. Only a complete, verified restore is moved into
 * place, the index last; a damaged or truncated archive leaves DIR as it
 * was. Exit 0 when restored, 1 when refused or failed, 2 on bad usage. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/rc.h"
#include "gc/gc.h"
#include "registry/client.h"
#include "registry/server.h"
#include "storage/backup.h"
#include "storage/blob.h"
#include "storage/meta.h"

#define STAGE_NAME    ".restore-tmp"
#define OLD_NAME      ".restore-old"
#define JSON_MAX      (1u << 20)
#define GRACE_DEFAULT 3600ull

static void
restore_usage(FILE *f)
{
	fprintf(f, "usage: berth restore [--data DIR] [--force] [--input FILE] "
	           "< berth.tar.zst\n\n"
	           "Restores a `berth backup` archive into a data directory "
	           "while no server\n"
	           "runs on it. Every blob's digest is verified as it is "
	           "written, the\n"
	           "reference counts and the gc queue are rebuilt, and the "
	           "result is checked\n"
	           "as `berth check` does before it is moved into place. A "
	           "damaged or\n"
	           "truncated archive is refused and leaves DIR as it was.\n\n"
	           "options:\n"
	           "  --data DIR      data directory (env BERTH_DATA, default "
	           "./data); created\n"
	           "                  when missing; must hold no registry "
	           "unless --force\n"
	           "  --force         replace the registry DIR holds (only "
	           "once the archive\n"
	           "                  has been read and verified whole)\n"
	           "  --input FILE    read FILE instead of stdin\n"
	           "  --help          this text\n");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "berth restore: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* ---- the directory ---- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 &&
	                       errno != ENOENT
	               ? -1
	               : 0;
}

/* rm -rf path; 0 when gone. */
static int
rm_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The first entry of dir that makes it hold a registry (or anything of
 * someone's), "" when none: berth's lock file, a restore's leftovers and
 * a volume's lost+found do not count. */
static int
dir_first_entry(const char *dir, char *name, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	name[0] = '\0';
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
		    strcmp(n, "lock") == 0 || strcmp(n, STAGE_NAME) == 0 ||
		    strcmp(n, OLD_NAME) == 0 || strcmp(n, "lost+found") == 0)
			continue;
		snprintf(name, len, "%s", n);
		break;
	}
	closedir(d);
	return 0;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* ---- reading the archive into the staging directory ---- */

enum member { M_HEADER, M_ROWS, M_BLOB, M_END, M_JSON_END };

struct restore {
	struct blob_store *bs;
	struct meta *m;
	struct meta_restore *mr;
	struct meta_backup want; /* the blobs the rows name */
	int step;                /* 0 header, 1 rows, 2 blobs, 3 end, 4 done */
	enum member cur;
	char *json; /* header or end member */
	size_t json_len;
	uint64_t size;
	size_t next_blob;
	struct blob_upload *up;
	uint64_t blob_bytes;
	json_t *header;
	char err[512];
};

static int bad(struct restore *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static int
bad(struct restore *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return RC_CORRUPT;
}

static int
member_begin(void *arg, const char *name, uint64_t size)
{
	struct restore *r = arg;
	char uuid[BLOB_UUID_BUF];
	int rc;

	r->size = size;
	r->json_len = 0;
	if (r->step == 0) {
		if (strcmp(name, BACKUP_HEADER_NAME) != 0 || size > JSON_MAX)
			return bad(r,
			           "not a berth backup: it starts with %.100s "
			           "instead of " BACKUP_HEADER_NAME,
			           name);
		r->cur = M_HEADER;
	} else if (r->step == 1) {
		if (strcmp(name, BACKUP_ROWS_NAME) != 0)
			return bad(r,
			           "%.100s where " BACKUP_ROWS_NAME
			           " was expected",
			           name);
		if ((rc = meta_restore_open(r->m, &r->mr)) != 0)
			return bad(r, "cannot load the index: %s", rc_str(rc));
		r->cur = M_ROWS;
	} else if (r->step == 2 && strncmp(name, BACKUP_BLOB_PREFIX,
	                                   strlen(BACKUP_BLOB_PREFIX)) == 0) {
		const struct meta_backup_blob *b;
		if (r->next_blob >= r->want.n_blobs)
			return bad(r,
			           "blob %.100s is not in the backup's index",
			           name);
		b = &r->want.blobs[r->next_blob];
		if (strcmp(name + strlen(BACKUP_BLOB_PREFIX), b->digest + 7) !=
		    0)
			return bad(r, "blob %.100s where %s was expected", name,
			           b->digest);
		if (size != b->size)
			return bad(r,
			           "blob %s has %llu bytes, its index row says "
			           "%llu",
			           b->digest, (unsigned long long)size,
			           (unsigned long long)b->size);
		if ((rc = blob_upload_create(r->bs, uuid)) != 0 ||
		    (rc = blob_upload_acquire(r->bs, uuid, &r->up)) != 0)
			return bad(r, "cannot write blob %s: %s", b->digest,
			           rc_str(rc));
		r->cur = M_BLOB;
	} else if (r->step == 2 && strcmp(name, BACKUP_END_NAME) == 0) {
		if (size > JSON_MAX)
			return bad(r, "the end member is too large");
		if (r->next_blob != r->want.n_blobs)
			return bad(r,
			           "the archive ends after %zu of its %zu "
			           "blobs",
			           r->next_blob, r->want.n_blobs);
		r->cur = M_JSON_END;
	} else {
		return bad(r, "unexpected member %.100s", name);
	}
	return 0;
}

static int
member_data(void *arg, const void *p, size_t n)
{
	struct restore *r = arg;
	int rc;

	switch (r->cur) {
	case M_HEADER:
	case M_JSON_END:
		if (r->json == NULL && (r->json = malloc(JSON_MAX + 1)) == NULL)
			return bad(r, "out of memory");
		memcpy(r->json + r->json_len, p, n);
		r->json_len += n;
		return 0;
	case M_ROWS:
		rc = meta_restore_feed(r->mr, p, n);
		if (rc != 0)
			return bad(r, "the index rows are %s: %s",
			           rc == RC_UNSUPPORTED ? "of another schema"
			                                : "damaged",
			           rc_str(rc));
		return 0;
	case M_BLOB:
		if ((rc = blob_upload_write(r->up, p, n)) != 0)
			return bad(r, "cannot write blob %s: %s",
			           r->want.blobs[r->next_blob].digest,
			           rc_str(rc));
		return 0;
	default: return bad(r, "data outside a member");
	}
}

static int
header_check(struct restore *r)
{
	json_error_t je;
	json_t *f, *v, *s;

	r->header = json_loadb(r->json, r->json_len, 0, &je);
	f = json_object_get(r->header, "format");
	v = json_object_get(r->header, "version");
	s = json_object_get(r->header, "schema");
	if (!json_is_object(r->header) || !json_is_string(f) ||
	    strcmp(json_string_value(f), BACKUP_FORMAT) != 0)
		return bad(r, "not a berth backup (" BACKUP_HEADER_NAME
		              " says otherwise)");
	if (!json_is_integer(v) || json_integer_value(v) != BACKUP_VERSION)
		return bad(r,
		           "backup format version %lld is not supported "
		           "(this berth reads version %d)",
		           json_is_integer(v) ? (long long)json_integer_value(v)
		                              : -1LL,
		           BACKUP_VERSION);
	(void)s; /* the rows carry the schema and are checked against it */
	return 0;
}

static int
member_end(void *arg)
{
	struct restore *r = arg;
	const struct meta_backup_blob *b;
	uint64_t size = 0;
	int rc;

	switch (r->cur) {
	case M_HEADER:
		if ((rc = header_check(r)) != 0)
			return rc;
		r->step = 1;
		return 0;
	case M_ROWS:
		rc = meta_restore_finish(r->mr, &r->want);
		meta_restore_free(r->mr);
		r->mr = NULL;
		if (rc != 0)
			return bad(r, "the index rows are damaged: %s",
			           rc_str(rc));
		r->step = 2;
		return 0;
	case M_BLOB:
		b = &r->want.blobs[r->next_blob];
		rc = blob_upload_commit(r->up, b->digest, &size);
		if (rc != 0) {
			blob_upload_release(r->up);
			r->up = NULL;
			if (rc == RC_DIGEST_INVALID)
				return bad(r,
				           "blob %s does not match its "
				           "digest: the archive is corrupt",
				           b->digest);
			return bad(r, "cannot write blob %s: %s", b->digest,
			           rc_str(rc));
		}
		r->up = NULL;
		r->blob_bytes += size;
		r->next_blob++;
		return 0;
	case M_JSON_END: r->step = 4; return 0;
	default: return bad(r, "member end outside a member");
	}
}

struct lines {
	uint64_t n;
	char first[256];
};

static void
count_line(enum gc_check_line what, const char *line, void *arg)
{
	struct lines *l = arg;

	if (what == GC_CHECK_NOTE)
		return;
	if (l->n++ == 0)
		snprintf(l->first, sizeof(l->first), "%s", line);
}

/* Rebuilds the counts and the queue, then checks everything. */
static int
rebuild_and_check(struct restore *r, struct gc_check_report *out)
{
	struct gc_check_options o = {.now = (uint64_t)time(NULL),
	                             .grace = GRACE_DEFAULT,
	                             .repair = 1};
	struct gc_check_report rep;
	struct lines rebuilt = {0}, left = {0};
	int rc;

	if ((rc = gc_check_run(r->m, r->bs, &o, count_line, &rebuilt, &rep)) !=
	    0)
		return fail("cannot rebuild the index: %s", rc_str(rc));
	o.repair = 0;
	if ((rc = gc_check_run(r->m, r->bs, &o, count_line, &left, &rep)) != 0)
		return fail("cannot check the restored data: %s", rc_str(rc));
	if (rep.problems > 0)
		return fail("the restored data fails its check (%llu "
		            "problems, first: %s)",
		            (unsigned long long)rep.problems, left.first);
	*out = rep;
	return 0;
}

/* ---- moving into place ---- */

static int
path_of(char *buf, size_t len, const char *a, const char *b)
{
	return snprintf(buf, len, "%s/%s", a, b) >= (int)len ? -1 : 0;
}

/* Moves DIR's meta, blobs and uploads aside (the index first), then the
 * staged ones in (the index last: before it lands, DIR holds no
 * registry). */
static int
swap_in(const char *data, const char *stage)
{
	static const char *const parts[] = {"meta", "blobs", "uploads"};
	static const char *const in_order[] = {"blobs", "uploads", "meta"};
	char old[4096], from[4096], to[4096];
	struct stat st;

	if (path_of(old, sizeof(old), data, OLD_NAME) != 0)
		return fail("path too long");
	for (size_t i = 0; i < 3; i++) {
		if (path_of(from, sizeof(from), data, parts[i]) != 0 ||
		    path_of(to, sizeof(to), old, parts[i]) != 0)
			return fail("path too long");
		if (lstat(from, &st) != 0)
			continue;
		if (mkdir(old, 0700) != 0 && errno != EEXIST)
			return fail("cannot create %s: %s", old,
			            strerror(errno));
		if (rename(from, to) != 0)
			return fail("cannot move %s aside: %s", from,
			            strerror(errno));
	}
	for (size_t i = 0; i < 3; i++) {
		if (path_of(from, sizeof(from), stage, in_order[i]) != 0 ||
		    path_of(to, sizeof(to), data, in_order[i]) != 0)
			return fail("path too long");
		if (rename(from, to) != 0)
			return fail("cannot move %s into place: %s", from,
			            strerror(errno));
	}
	if (fsync_dir(data) != 0)
		return fail("cannot sync %s: %s", data, strerror(errno));
	if (rm_tree(old) != 0)
		fprintf(stderr,
		        "berth restore: note: could not remove %s (the "
		        "replaced data); remove it by hand\n",
		        old);
	rmdir(stage);
	return 0;
}

struct restore_args {
	const char *data, *input;
	int force;
};

static int
args_parse(int argc, char **argv, struct restore_args *a)
{
	memset(a, 0, sizeof(*a));
	a->data = getenv("BERTH_DATA");
	for (int i = 0; i < argc; i++) {
		const char *f = argv[i];
		const char **val = NULL;

		if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0)
			return -1;
		if (strcmp(f, "--force") == 0) {
			a->force = 1;
			continue;
		}
		if (strcmp(f, "--data") == 0)
			val = &a->data;
		else if (strcmp(f, "--input") == 0)
			val = &a->input;
		if (val == NULL) {
			fprintf(stderr,
			        "berth restore: unknown option '%s' (berth "
			        "restore --help)\n",
			        f);
			return 2;
		}
		if (i + 1 >= argc || argv[i + 1][0] == '\0') {
			fprintf(stderr,
			        "berth restore: %s needs a value (berth "
			        "restore --help)\n",
			        f);
			return 2;
		}
		*val = argv[++i];
	}
	if (a->data == NULL || a->data[0] == '\0')
		a->data = "./data";
	return 0;
}

/* Reads the archive into stage; 0 when it is whole and verified. */
static int
stage_fill(struct restore *r, const char *stage, int in)
{
	struct backup_reader_cb cb = {member_begin, member_data, member_end, r};
	struct meta_options mo = {.gc_grace = GRACE_DEFAULT};
	struct gc_check_report rep = {0};
	char metadir[4096], line[600], human[32];
	int rc;

	if ((rc = blob_store_open(stage, &r->bs)) != 0)
		return fail("cannot create %s: %s", stage, rc_str(rc));
	if (path_of(metadir, sizeof(metadir), stage, "meta") != 0)
		return fail("path too long");
	if ((rc = meta_open(metadir, &mo, &r->m)) != 0)
		return fail("cannot create the index: %s", rc_str(rc));
	rc = backup_read(in, &cb, line, sizeof(line));
	if (rc != 0)
		return fail("%s; nothing was restored", r->err[0] ? r->err
		                                        : line[0] ? line
		                                                  : rc_str(rc));
	if (r->step != 4)
		return fail("the archive ends early (no %s member); nothing "
		            "was restored",
		            r->step == 2 ? BACKUP_END_NAME : BACKUP_ROWS_NAME);
	if ((rc = rebuild_and_check(r, &rep)) != 0)
		return rc;
	client_human_bytes(r->blob_bytes, human, sizeof(human));
	fprintf(stderr,
	        "berth restore: %llu manifests, %llu tags, %llu blobs (%s), "
	        "digests verified, check clean\n",
	        (unsigned long long)rep.manifests, (unsigned long long)rep.tags,
	        (unsigned long long)rep.blobs, human);
	return 0;
}

static void
restore_free(struct restore *r)
{
	if (r->up != NULL)
		blob_upload_release(r->up);
	meta_restore_free(r->mr);
	meta_backup_free(&r->want);
	meta_close(r->m);
	blob_store_close(r->bs);
	json_decref(r->header);
	free(r->json);
	memset(r, 0, sizeof(*r));
}

int
cli_restore(int argc, char **argv)
{
	struct restore_args a;
	struct restore r;
	char stage[4096], old[4096], first[256];
	struct stat st;
	int in = STDIN_FILENO, rc;

	if ((rc = args_parse(argc, argv, &a)) != 0) {
		if (rc > 0)
			return rc;
		restore_usage(stdout);
		return 0;
	}
	if (a.input == NULL && isatty(STDIN_FILENO)) {
		fprintf(stderr, "berth restore: stdin is a terminal: give the "
		                "archive on stdin or with --input (berth "
		                "restore --help)\n");
		return 2;
	}
	if (a.input != NULL && (in = open(a.input, O_RDONLY | O_CLOEXEC)) < 0)
		return fail("cannot open %s: %s", a.input, strerror(errno));
	if (mkdir(a.data, 0700) != 0 && errno != EEXIST)
		return fail("cannot create %s: %s", a.data, strerror(errno));
	if (cli_data_lock(a.data, "stop it before berth restore") != 0)
		return 1;
	if (dir_first_entry(a.data, first, sizeof(first)) != 0)
		return fail("cannot read %s: %s", a.data, strerror(errno));
	if (first[0] != '\0' && !a.force)
		return fail("%s is not empty (it holds %s): restore into an "
		            "empty directory, or give --force to replace what "
		            "it holds",
		            a.data, first);
	if (path_of(stage, sizeof(stage), a.data, STAGE_NAME) != 0 ||
	    path_of(old, sizeof(old), a.data, OLD_NAME) != 0)
		return fail("path too long");
	if (lstat(old, &st) == 0)
		return fail(
		        "%s exists (what an earlier restore replaced, kept "
		        "because it did not finish): move or remove it first",
		        old);
	if (rm_tree(stage) != 0)
		return fail("cannot remove the leftovers in %s: %s", stage,
		            strerror(errno));
	memset(&r, 0, sizeof(r));
	rc = stage_fill(&r, stage, in);
	restore_free(&r);
	if (a.input != NULL)
		close(in);
	if (rc == 0)
		rc = swap_in(a.data, stage);
	if (rc != 0) {
		rm_tree(stage);
		return rc;
	}
	fprintf(stderr, "berth restore: restored into %s\n", a.data);
	return 0;
}
