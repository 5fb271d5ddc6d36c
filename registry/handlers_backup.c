/* The backup endpoint: GET /v2/_berth/backup[?level=N][&repository=GLOB…]
 * answers with the backup as one tar.zst stream (storage/backup.h), made
 * while it is sent: a snapshot of the index, then the blobs it references.
 * The collector keeps the files of blobs it deletes meanwhile until the
 * stream ends (gc_hold). Pushes, deletes and collection runs go on. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rc.h"
#include "gc/gc.h"
#include "registry/http.h"
#include "storage/backup.h"

#define BACKUP_GLOBS_MAX   64
#define BACKUP_GLOB_LEN    255
#define BACKUP_BLOCK       (256u * 1024u)
#define BACKUP_WORKERS_MAX 8

struct backup_req {
	struct backup_stream *s;
	struct gc *gc; /* its hold is released with the stream */
	uint64_t t0_ns;
	int failed, complete;
};

struct query {
	const char *globs[BACKUP_GLOBS_MAX];
	size_t n;
	int bad; /* 1 too many, 2 empty or too long */
};

static enum MHD_Result
query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
          const char *value)
{
	struct query *q = cls;

	(void)kind;
	if (strcmp(key, "repository") != 0)
		return MHD_YES;
	if (value == NULL || *value == '\0' ||
	    strlen(value) > BACKUP_GLOB_LEN) {
		q->bad = 2;
	} else if (q->n == BACKUP_GLOBS_MAX) {
		q->bad = 1;
	} else {
		q->globs[q->n++] = value;
	}
	return MHD_YES;
}

static ssize_t
backup_read_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct backup_req *b = cls;
	ssize_t n = backup_stream_read(b->s, buf, max);

	(void)pos;
	if (n > 0)
		return n;
	if (n == 0) {
		b->complete = 1;
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	/* Cut short: the client sees a transfer that did not end. */
	b->failed = 1;
	log_msg("error", "backup failed", "error", rc_str((int)n), NULL);
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void
backup_free_cb(void *cls)
{
	struct backup_req *b = cls;
	struct backup_stream_stats st;

	backup_stream_stats(b->s, &st);
	log_fields(b->complete ? "info" : "warn",
	           b->complete ? "backup sent" : "backup not completed",
	           json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "blobs",
	                     (json_int_t)st.blobs, "blobs_sent",
	                     (json_int_t)st.blobs_sent, "blob_bytes",
	                     (json_int_t)st.blob_bytes, "tar_bytes",
	                     (json_int_t)st.tar_bytes, "zst_bytes",
	                     (json_int_t)st.zst_bytes, "tags",
	                     (json_int_t)st.tags, "duration_ms",
	                     (double)(now_ns() - b->t0_ns) / 1e6));
	backup_stream_close(b->s);
	if (b->gc != NULL)
		gc_release(b->gc);
	free(b);
}

/* zstd worker threads: BERTH_BACKUP_WORKERS (0 to 8) when set; else none
 * up to level 3 (the producer thread compresses: on layers, which are
 * compressed already, one zstd thread outruns what the stream carries and
 * workers only add copies), one per online CPU (at most 8) above. */
static int
workers(int level)
{
	const char *v = getenv("BERTH_BACKUP_WORKERS");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	char *end;

	if (v != NULL && *v >= '0' && *v <= '9') {
		long n = strtol(v, &end, 10);
		if (*end == '\0' && n <= BACKUP_WORKERS_MAX)
			return (int)n;
	}
	if (level <= BACKUP_LEVEL_DEFAULT)
		return 0;
	if (cpus < 1)
		return 1;
	return cpus > BACKUP_WORKERS_MAX ? BACKUP_WORKERS_MAX : (int)cpus;
}

/* ?level=N: 1 to 19, default 3. */
static int
level_of(struct req *r, int *level)
{
	const char *v = req_query(r, "level");
	char *end;
	long n;

	*level = BACKUP_LEVEL_DEFAULT;
	if (v == NULL)
		return RC_OK;
	n = strtol(v, &end, 10);
	if (*v < '0' || *v > '9' || *end != '\0' || n < BACKUP_LEVEL_MIN ||
	    n > BACKUP_LEVEL_MAX) {
		snprintf(r->err_detail, sizeof(r->err_detail),
		         "level must be a number from %d to %d",
		         BACKUP_LEVEL_MIN, BACKUP_LEVEL_MAX);
		return RC_BAD_REQUEST;
	}
	*level = (int)n;
	return RC_OK;
}

/* "backup started": what the snapshot holds and how long it took. */
static void
log_start(const struct backup_req *b, const struct backup_stream_options *o)
{
	struct backup_stream_stats st;
	json_t *f;

	backup_stream_stats(b->s, &st);
	f = json_pack("{s:I,s:I,s:I,s:I,s:I}", "repositories",
	              (json_int_t)st.repositories, "manifests",
	              (json_int_t)st.manifests, "tags", (json_int_t)st.tags,
	              "blobs", (json_int_t)st.blobs, "blob_bytes",
	              (json_int_t)st.blob_bytes);
	json_object_set_new(f, "zstd_level", json_integer(o->level));
	json_object_set_new(f, "workers", json_integer(o->workers));
	json_object_set_new(f, "snapshot_ms",
	                    json_real((double)(now_ns() - b->t0_ns) / 1e6));
	log_fields("info", "backup started", f);
}

void
h_backup(struct req *r)
{
	struct backup_stream_options o = {0};
	struct query q = {0};
	struct backup_req *b;
	struct MHD_Response *resp;
	int rc;

	if ((rc = level_of(r, &o.level)) != RC_OK) {
		reply_error(r, rc, r->err_detail);
		return;
	}
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_arg,
	                          &q);
	if (q.bad) {
		reply_error(r, RC_BAD_REQUEST,
		            q.bad == 1 ? "at most 64 repository globs"
		                       : "a repository glob is empty or longer "
		                         "than 255 bytes");
		return;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		reply_error(r, -ENOMEM, NULL);
		return;
	}
	o.repos = q.globs;
	o.n_repos = q.n;
	o.workers = workers(o.level);
	o.now = now_s();
	o.test_hold = getenv("BERTH_BACKUP_TEST_HOLD");
	b->t0_ns = now_ns();
	/* Before the snapshot: what it lists stays on disk. */
	b->gc = r->app->gc;
	if (b->gc != NULL)
		gc_hold(b->gc);
	rc = backup_stream_open(r->app->meta, r->app->blobs, &o, &b->s);
	if (rc != RC_OK) {
		if (b->gc != NULL)
			gc_release(b->gc);
		free(b);
		log_msg("error", "backup snapshot failed", "error", rc_str(rc),
		        NULL);
		reply_error(r, rc, "backup snapshot failed");
		return;
	}
	log_start(b, &o);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, BACKUP_BLOCK,
	                                         backup_read_cb, b,
	                                         backup_free_cb);
	if (resp == NULL) {
		backup_free_cb(b);
		reply_error(r, -ENOMEM, NULL);
		return;
	}
	MHD_add_response_header(resp, "Content-Type", "application/zstd");
	MHD_add_response_header(resp, "Content-Disposition",
	                        "attachment; filename=\"berth.tar.zst\"");
	reply(r, 200, resp);
}
