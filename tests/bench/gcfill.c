/*
 * gcfill: fills a berth data directory offline (no server running) for the
 * garbage-collection benchmarks, through berth's own storage API, and can
 * write the same images in CNCF distribution's filesystem layout.
 *
 *   gcfill --data DIR --images N [--delete K] [--first I] [--repos R]
 *          [--grace S] [--seed X] [--dist ROOT] [--list FILE] [--jobs J]
 *          [--ttl K] [--ttl-seconds S] [--policy-tags K] [--sync]
 *
 * Image i (i = first .. first+N-1) has a config blob and two layer blobs of
 * 64..512 bytes each whose content is unique to (seed, i) and an OCI image
 * manifest naming them, tagged t<i> in repository bench/r<i % R>. Every blob
 * goes through blob_upload_create / acquire / write / commit (so its file
 * holds exactly the bytes of its SHA-256) and meta_blob_commit; the manifest
 * is parsed by manifest_parse and stored with meta_manifest_put, at
 * now = time(NULL) as a server would. --delete K then deletes the tags of
 * the last K images (meta_tag_delete), which leaves those manifests and
 * their blobs unreferenced: garbage due after --grace seconds (the grace
 * the server will run with; 1 by default).
 *
 * For the retention benchmarks, --ttl K gives the K images before the
 * deleted ones (the last K when nothing is deleted) the TTL label
 * berth.expires-after = --ttl-seconds S (1) in their manifest's annotations,
 * and the tag's expiry comes from that label through gc_ttl_of as in a
 * push; --policy-tags K tags the K images before those p<i> instead of
 * t<i>, for a policy rule on "p*". The images are assigned from the end:
 * [..., policy-tags K, ttl K, delete K].
 *
 * --dist ROOT writes the same images under ROOT/docker/registry/v2 the way
 * distribution's filesystem driver lays them out; the K deleted images are
 * written untagged (revision link, no tag directory), which is what
 * `docker-registry garbage-collect --delete-untagged` collects.
 *
 * A fill is disposable, so by default the per-file fsync and the per-commit
 * syncs of the index are skipped (this program's own fsync, fdatasync and
 * open interpose those of libc for the storage library and liblmdb) and ONE
 * syncfs at the end makes everything durable before a measurement starts:
 * 100,000 images take tens of seconds instead of many minutes. --sync keeps
 * every sync, as the server does.
 *
 * --jobs J (2) fills with J threads, each taking the next image in turn
 * (the storage API is thread-safe; LMDB serialises the index writes, the
 * files are written side by side).
 *
 * --list FILE writes what the deleted, TTL and policy-tagged images (the
 * last delete + ttl + policy-tags ones) consist of, one line each:
 * "manifest <repo> <digest>" and "blob <repo> <digest>" (for checking that
 * a collector removed exactly those).
 *
 * Prints one line of key=value pairs on stdout, progress on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/rc.h"
#include "gc/gc.h"
#include "storage/blob.h"
#include "storage/manifest.h"
#include "storage/meta.h"

#define MIN_BLOB 64
#define MAX_BLOB 512
#define PATH_BUF 4096
#define MAX_JOBS 16

/* ---- durability switch ----
 * These definitions interpose libc's for the storage library and for
 * liblmdb (which also opens its meta page with O_DSYNC: a synchronous write
 * per commit). With skip_sync they do nothing durable; main() ends with
 * one syncfs instead. */

static int skip_sync = 1;

int
open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (skip_sync)
		flags &= ~(O_SYNC | O_DSYNC);
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

int
fsync(int fd)
{
	return skip_sync ? 0 : (int)syscall(SYS_fsync, fd);
}

int
fdatasync(int fd)
{
	return skip_sync ? 0 : (int)syscall(SYS_fdatasync, fd);
}

/* ---- options ---- */

struct opts {
	const char *data;
	const char *dist;
	const char *list;
	uint64_t images, del, first, repos, grace, seed;
	uint64_t ttl, ttl_seconds, policy_tags;
	unsigned jobs;
};

static void
usage(void)
{
	fprintf(stderr,
	        "usage: gcfill --data DIR --images N [--delete K] [--first I]\n"
	        "              [--repos R] [--grace S] [--seed X] [--dist "
	        "ROOT]\n"
	        "              [--list FILE] [--jobs J] [--ttl K]\n"
	        "              [--ttl-seconds S] [--policy-tags K] [--sync]\n");
	exit(2);
}

static uint64_t
num_arg(const char *name, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
		fprintf(stderr, "gcfill: %s: not a number: %s\n", name, s);
		exit(2);
	}
	return v;
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
	int i;

	*o = (struct opts){.repos = 100,
	                   .grace = 1,
	                   .seed = 1,
	                   .jobs = 2,
	                   .ttl_seconds = 1};
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--sync") == 0) {
			skip_sync = 0;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--data") == 0)
			o->data = v;
		else if (strcmp(a, "--dist") == 0)
			o->dist = v;
		else if (strcmp(a, "--list") == 0)
			o->list = v;
		else if (strcmp(a, "--images") == 0)
			o->images = num_arg(a, v);
		else if (strcmp(a, "--delete") == 0)
			o->del = num_arg(a, v);
		else if (strcmp(a, "--first") == 0)
			o->first = num_arg(a, v);
		else if (strcmp(a, "--repos") == 0)
			o->repos = num_arg(a, v);
		else if (strcmp(a, "--grace") == 0)
			o->grace = num_arg(a, v);
		else if (strcmp(a, "--seed") == 0)
			o->seed = num_arg(a, v);
		else if (strcmp(a, "--jobs") == 0)
			o->jobs = (unsigned)num_arg(a, v);
		else if (strcmp(a, "--ttl") == 0)
			o->ttl = num_arg(a, v);
		else if (strcmp(a, "--ttl-seconds") == 0)
			o->ttl_seconds = num_arg(a, v);
		else if (strcmp(a, "--policy-tags") == 0)
			o->policy_tags = num_arg(a, v);
		else
			usage();
	}
	if ((o->data == NULL && o->dist == NULL) || o->images == 0 ||
	    o->repos == 0 || o->grace == 0 || o->del > o->images ||
	    o->ttl > o->images - o->del ||
	    o->policy_tags > o->images - o->del - o->ttl ||
	    o->ttl_seconds == 0 || o->ttl_seconds > 365ull * 86400 ||
	    o->jobs == 0 || o->jobs > MAX_JOBS)
		usage();
}

/* ---- content ---- */

static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

struct blob {
	unsigned char buf[MAX_BLOB];
	size_t len;
	char digest[DIGEST_BUF];
};

struct image {
	uint64_t index;
	char repo[32], tag[32];
	struct blob config, layer[2];
	char manifest[2048];
	size_t manifest_len;
	char digest[DIGEST_BUF];
};

/* A layer: a text header naming it (unique), then pseudo-random bytes. */
static void
make_layer(struct blob *b, uint64_t seed, uint64_t i, unsigned k)
{
	uint64_t s = mix64(seed ^ mix64(i * 4 + k));
	size_t n;

	b->len = MIN_BLOB + (size_t)(s % (MAX_BLOB - MIN_BLOB + 1));
	n = (size_t)snprintf((char *)b->buf, sizeof(b->buf),
	                     "gcfill seed=%" PRIu64 " image=%" PRIu64
	                     " layer=%u\n",
	                     seed, i, k);
	for (; n < b->len; n++) {
		s = mix64(s);
		b->buf[n] = (unsigned char)s;
	}
	digest_of_buf(b->buf, b->len, b->digest);
}

/* The config: a small image config JSON naming the image. */
static void
make_config(struct blob *b, uint64_t seed, uint64_t i)
{
	int n = snprintf((char *)b->buf, sizeof(b->buf),
	                 "{\"architecture\":\"amd64\",\"os\":\"linux\","
	                 "\"config\":{\"Labels\":{\"bench.gcfill\":"
	                 "\"seed %" PRIu64 " image %" PRIu64 "\"}},"
	                 "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
	                 seed, i);

	b->len = (size_t)n;
	digest_of_buf(b->buf, b->len, b->digest);
}

/* Where image i falls, counting from the end: [..., policy-tags, ttl,
 * delete]. */
enum role { ROLE_PLAIN, ROLE_POLICY, ROLE_TTL, ROLE_DELETE };

static enum role
role_of(const struct opts *o, uint64_t i)
{
	uint64_t last = o->first + o->images;

	if (i >= last - o->del)
		return ROLE_DELETE;
	if (i >= last - o->del - o->ttl)
		return ROLE_TTL;
	if (i >= last - o->del - o->ttl - o->policy_tags)
		return ROLE_POLICY;
	return ROLE_PLAIN;
}

static void
make_image(struct image *im, const struct opts *o, uint64_t i)
{
	enum role role = role_of(o, i);
	char annotations[128] = "";
	int n;

	im->index = i;
	snprintf(im->repo, sizeof(im->repo), "bench/r%" PRIu64, i % o->repos);
	snprintf(im->tag, sizeof(im->tag), "%s%" PRIu64,
	         role == ROLE_POLICY ? "p" : "t", i);
	if (role == ROLE_TTL)
		snprintf(annotations, sizeof(annotations),
		         ",\"annotations\":{\"%s\":\"%" PRIu64 "s\"}",
		         GC_TTL_LABEL, o->ttl_seconds);
	make_config(&im->config, o->seed, i);
	make_layer(&im->layer[0], o->seed, i, 1);
	make_layer(&im->layer[1], o->seed, i, 2);
	n = snprintf(im->manifest, sizeof(im->manifest),
	             "{\"schemaVersion\":2,\"mediaType\":\"%s\","
	             "\"config\":{\"mediaType\":"
	             "\"application/vnd.oci.image.config.v1+json\","
	             "\"digest\":\"%s\",\"size\":%zu},\"layers\":["
	             "{\"mediaType\":"
	             "\"application/vnd.oci.image.layer.v1.tar+gzip\","
	             "\"digest\":\"%s\",\"size\":%zu},"
	             "{\"mediaType\":"
	             "\"application/vnd.oci.image.layer.v1.tar+gzip\","
	             "\"digest\":\"%s\",\"size\":%zu}]%s}",
	             MT_OCI_MANIFEST, im->config.digest, im->config.len,
	             im->layer[0].digest, im->layer[0].len, im->layer[1].digest,
	             im->layer[1].len, annotations);
	im->manifest_len = (size_t)n;
	digest_of_buf(im->manifest, im->manifest_len, im->digest);
}

/* ---- berth, through its storage API ---- */

struct berth {
	struct blob_store *bs;
	struct meta *m;
	int lock_fd;
};

static int
berth_open(struct berth *b, const struct opts *o)
{
	struct meta_options mo = {.gc_grace = o->grace};
	char dir[PATH_BUF];
	int rc;

	b->bs = NULL;
	b->m = NULL;
	b->lock_fd = -1;
	if (mkdir(o->data, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "gcfill: mkdir %s: %s\n", o->data,
		        strerror(errno));
		return -1;
	}
	rc = blob_data_lock(o->data, &b->lock_fd);
	if (rc != RC_OK) {
		fprintf(stderr, "gcfill: %s is in use (a server?): %s\n",
		        o->data, rc_str(rc));
		return -1;
	}
	rc = blob_store_open(o->data, &b->bs);
	if (rc == RC_OK) {
		snprintf(dir, sizeof(dir), "%s/meta", o->data);
		rc = meta_open(dir, &mo, &b->m);
	}
	if (rc != RC_OK) {
		fprintf(stderr, "gcfill: cannot open %s: %s\n", o->data,
		        rc_str(rc));
		return -1;
	}
	return 0;
}

static void
berth_close(struct berth *b)
{
	if (b->m != NULL)
		meta_close(b->m);
	if (b->bs != NULL)
		blob_store_close(b->bs);
	if (b->lock_fd >= 0)
		blob_data_unlock(b->lock_fd);
}

/* One blob as a push does it: upload, commit the file, index it. */
static int
berth_blob(struct berth *b, const char *repo, const struct blob *bl)
{
	struct blob_upload *up;
	char uuid[BLOB_UUID_BUF];
	uint64_t size;
	int rc;

	rc = blob_upload_create(b->bs, uuid);
	if (rc != RC_OK)
		goto fail;
	rc = blob_upload_acquire(b->bs, uuid, &up);
	if (rc != RC_OK)
		goto fail;
	rc = blob_upload_write(up, bl->buf, bl->len);
	if (rc != RC_OK) {
		blob_upload_release(up);
		goto fail;
	}
	blob_digest_lock(b->bs, bl->digest);
	rc = blob_upload_commit(up, bl->digest, &size);
	if (rc != RC_OK) {
		blob_digest_unlock(b->bs, bl->digest);
		blob_upload_release(up);
		goto fail;
	}
	rc = meta_blob_commit(b->m, repo, bl->digest, size, NULL, time(NULL));
	blob_digest_unlock(b->bs, bl->digest);
	if (rc != RC_OK)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "gcfill: blob %s: %s\n", bl->digest, rc_str(rc));
	return -1;
}

static int
berth_image(struct berth *b, const struct image *im)
{
	struct manifest_info *info = NULL;
	struct meta_manifest_put p;
	char err[256], missing[DIGEST_BUF];
	const char *label = NULL;
	uint64_t ttl = 0;
	int rc;

	if (berth_blob(b, im->repo, &im->config) != 0 ||
	    berth_blob(b, im->repo, &im->layer[0]) != 0 ||
	    berth_blob(b, im->repo, &im->layer[1]) != 0)
		return -1;
	rc = manifest_parse(im->manifest, im->manifest_len, MT_OCI_MANIFEST,
	                    &info, err, sizeof(err));
	if (rc != RC_OK) {
		fprintf(stderr, "gcfill: manifest of image %" PRIu64 ": %s\n",
		        im->index, err);
		return -1;
	}
	/* The TTL label, as a push reads it (annotations first). */
	rc = gc_ttl_of(info->annotations_json, im->config.buf, im->config.len,
	               &ttl, &label, err, sizeof(err));
	if (rc != RC_OK) {
		fprintf(stderr, "gcfill: ttl of image %" PRIu64 ": %s\n",
		        im->index, err);
		manifest_info_free(info);
		return -1;
	}
	p = (struct meta_manifest_put){
	        .repo = im->repo,
	        .digest = im->digest,
	        .tag = im->tag,
	        .body = im->manifest,
	        .body_len = im->manifest_len,
	        .info = info,
	        .ttl = ttl,
	        .ttl_source = label,
	};
	rc = meta_manifest_put(b->m, &p, time(NULL), missing);
	manifest_info_free(info);
	if (rc != RC_OK) {
		fprintf(stderr, "gcfill: manifest put %s:%s: %s\n", im->repo,
		        im->tag, rc_str(rc));
		return -1;
	}
	return 0;
}

/* ---- distribution's filesystem layout ----
 *
 *   ROOT/docker/registry/v2/
 *     blobs/sha256/<2 hex>/<64 hex>/data          every blob and manifest
 *     repositories/<repo>/
 *       _layers/sha256/<hex>/link                 config and layers
 *       _manifests/revisions/sha256/<hex>/link    every manifest
 *       _manifests/tags/<tag>/current/link        tag -> manifest
 *       _manifests/tags/<tag>/index/sha256/<hex>/link
 *
 * A link file holds the digest "sha256:<hex>" without a newline. */

static int
mkdirs(char *path)
{
	char *p;

	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return mkdir(path, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* Writes len bytes to the file DIR/NAME, creating DIR. */
static int
put_file(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[PATH_BUF];
	int fd;
	ssize_t w;

	snprintf(path, sizeof(path), "%s", dir);
	if (mkdirs(path) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	w = write(fd, buf, len);
	if (close(fd) < 0 || w != (ssize_t)len)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "gcfill: write %s/%s: %s\n", dir, name,
	        strerror(errno));
	return -1;
}

static const char *
hex_of(const char *digest)
{
	return digest + strlen("sha256:");
}

static int
dist_blob(const char *root, const void *buf, size_t len, const char *digest)
{
	char dir[PATH_BUF];
	const char *h = hex_of(digest);

	snprintf(dir, sizeof(dir), "%s/docker/registry/v2/blobs/sha256/%.2s/%s",
	         root, h, h);
	return put_file(dir, "data", buf, len);
}

static int
dist_link(const char *root, const char *repo, const char *what,
          const char *digest)
{
	char dir[PATH_BUF];

	snprintf(dir, sizeof(dir),
	         "%s/docker/registry/v2/repositories/%s/%s/sha256/%s", root,
	         repo, what, hex_of(digest));
	return put_file(dir, "link", digest, strlen(digest));
}

static int
dist_image(const char *root, const struct image *im, int tagged)
{
	const struct blob *bl[3] = {&im->config, &im->layer[0], &im->layer[1]};
	char dir[PATH_BUF], what[64];
	int k;

	for (k = 0; k < 3; k++)
		if (dist_blob(root, bl[k]->buf, bl[k]->len, bl[k]->digest) !=
		            0 ||
		    dist_link(root, im->repo, "_layers", bl[k]->digest) != 0)
			return -1;
	if (dist_blob(root, im->manifest, im->manifest_len, im->digest) != 0 ||
	    dist_link(root, im->repo, "_manifests/revisions", im->digest) != 0)
		return -1;
	if (!tagged)
		return 0;
	snprintf(dir, sizeof(dir),
	         "%s/docker/registry/v2/repositories/%s/_manifests/tags/%s/"
	         "current",
	         root, im->repo, im->tag);
	if (put_file(dir, "link", im->digest, strlen(im->digest)) != 0)
		return -1;
	snprintf(what, sizeof(what), "_manifests/tags/%s/index", im->tag);
	return dist_link(root, im->repo, what, im->digest);
}

/* ---- main ---- */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Makes everything written under path durable with one syncfs. */
static int
sync_tree(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = syncfs(fd);
	close(fd);
	return rc;
}

/* Deletes the tags of the last K images, as DELETE /v2/<repo>/manifests/
 * <tag> would: their manifests and then their blobs become garbage. */
static int
delete_tags(struct berth *b, const struct opts *o, struct image *im)
{
	uint64_t i, last = o->first + o->images;
	int rc;

	for (i = last - o->del; i < last; i++) {
		make_image(im, o, i);
		rc = meta_tag_delete(b->m, im->repo, im->tag, time(NULL));
		if (rc != RC_OK) {
			fprintf(stderr, "gcfill: tag delete %s:%s: %s\n",
			        im->repo, im->tag, rc_str(rc));
			return -1;
		}
	}
	return 0;
}

static int
write_list(const struct opts *o, struct image *im)
{
	uint64_t i, last = o->first + o->images;
	FILE *f = fopen(o->list, "w");

	if (f == NULL)
		goto fail;
	for (i = last - o->del - o->ttl - o->policy_tags; i < last; i++) {
		make_image(im, o, i);
		fprintf(f, "manifest %s %s\n", im->repo, im->digest);
		fprintf(f, "blob %s %s\n", im->repo, im->config.digest);
		fprintf(f, "blob %s %s\n", im->repo, im->layer[0].digest);
		fprintf(f, "blob %s %s\n", im->repo, im->layer[1].digest);
	}
	if (fclose(f) != 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "gcfill: %s: %s\n", o->list, strerror(errno));
	return -1;
}

/* ---- the fill: jobs threads take the next image index in turn ---- */

struct fill {
	const struct opts *o;
	struct berth *b;
	_Atomic uint64_t next, done;
	_Atomic int failed;
	double t0;
};

static void *
fill_worker(void *arg)
{
	struct fill *f = arg;
	const struct opts *o = f->o;
	uint64_t last = o->first + o->images, i, n;
	struct image *im = malloc(sizeof(*im));

	if (im == NULL) {
		atomic_store(&f->failed, 1);
		return NULL;
	}
	while (!atomic_load(&f->failed) &&
	       (i = atomic_fetch_add(&f->next, 1)) < last) {
		make_image(im, o, i);
		if ((o->data != NULL && berth_image(f->b, im) != 0) ||
		    (o->dist != NULL &&
		     dist_image(o->dist, im, i < last - o->del) != 0)) {
			atomic_store(&f->failed, 1);
			break;
		}
		n = atomic_fetch_add(&f->done, 1) + 1;
		if (n % 10000 == 0)
			fprintf(stderr, "gcfill: %" PRIu64 " images, %.1f s\n",
			        n, now_s() - f->t0);
	}
	free(im);
	return NULL;
}

/* Fills with o->jobs threads (the storage API is thread-safe: a server
 * calls it from all its request threads). 0 when every image is in. */
static int
fill_run(const struct opts *o, struct berth *b)
{
	pthread_t th[MAX_JOBS];
	struct fill f = {.o = o, .b = b, .t0 = now_s()};
	unsigned k, started = 0;

	atomic_store(&f.next, o->first);
	for (k = 0; k < o->jobs; k++) {
		if (pthread_create(&th[k], NULL, fill_worker, &f) != 0) {
			atomic_store(&f.failed, 1);
			break;
		}
		started++;
	}
	for (k = 0; k < started; k++)
		pthread_join(th[k], NULL);
	return atomic_load(&f.failed) || atomic_load(&f.done) != o->images ? -1
	                                                                   : 0;
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct berth b = {.lock_fd = -1};
	struct image *im = NULL;
	double t0, t_fill, t_del = 0, t_sync;
	int rc = 1;

	parse_args(argc, argv, &o);
	if (o.data != NULL && berth_open(&b, &o) != 0)
		goto out;
	im = malloc(sizeof(*im));
	if (im == NULL)
		goto out;
	t0 = now_s();
	if (fill_run(&o, &b) != 0)
		goto out;
	t_fill = now_s() - t0;
	if (o.data != NULL) {
		t0 = now_s();
		if (delete_tags(&b, &o, im) != 0)
			goto out;
		t_del = now_s() - t0;
	}
	if (o.list != NULL && write_list(&o, im) != 0)
		goto out;
	t0 = now_s();
	if ((o.data != NULL && sync_tree(o.data) != 0) ||
	    (o.dist != NULL && sync_tree(o.dist) != 0)) {
		fprintf(stderr, "gcfill: syncfs: %s\n", strerror(errno));
		goto out;
	}
	t_sync = now_s() - t0;
	printf("images=%" PRIu64 " blobs=%" PRIu64 " deleted=%" PRIu64
	       " ttl=%" PRIu64 " policy_tags=%" PRIu64 " first=%" PRIu64
	       " jobs=%u fill_s=%.3f images_per_s=%.0f"
	       " delete_s=%.3f sync_s=%.3f per_file_sync=%d berth=%d dist=%d\n",
	       o.images, o.images * 3, o.del, o.ttl, o.policy_tags, o.first,
	       o.jobs, t_fill, t_fill > 0 ? (double)o.images / t_fill : 0.0,
	       t_del, t_sync, !skip_sync, o.data != NULL, o.dist != NULL);
	rc = 0;
out:
	free(im);
	berth_close(&b);
	return rc;
}
