/* A berth backup as a stream (backup.h): the snapshot of the index and
 * the members of its archive. A producer thread reads the files and
 * compresses (zstd's workers beside it) into a small ring of chunks; the
 * reader (the HTTP server's thread) only copies chunks out and sends
 * them, so reading, compressing and sending overlap. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/glob.h"
#include "common/rc.h"
#include "storage/backup.h"
#include "storage/blob.h"
#include "storage/meta.h"

#define HOLD_WAIT_MS 60000
#define RING_N       4
#define RING_CHUNK   (1u << 20)

struct chunk {
	unsigned char *p;
	size_t len, off;
};

enum part { P_HEADER, P_ROWS, P_BLOBS, P_END, P_DONE };

struct backup_stream {
	struct blob_store *bs;
	struct meta_backup snap;
	struct backup_writer *w;
	char **repos;
	size_t n_repos;
	enum part part;
	size_t next_blob;
	int blob_fd;
	char *header, *end;
	char name[BACKUP_NAME_MAX];
	const char *test_hold;
	uint64_t blobs_sent;
	/* the ring, under mu: the producer fills chunk tail, the reader
	 * empties chunk head */
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct chunk ring[RING_N];
	size_t head, tail, count;
	int done;
	atomic_int stop; /* read by the producer outside mu too */
	int err;         /* the producer's error, once done */
	struct backup_stream_stats seen; /* counts as of the last chunk */
};

static int
want_repo(const char *repo, void *arg)
{
	const struct backup_stream *s = arg;

	for (size_t i = 0; i < s->n_repos; i++)
		if (glob_match(s->repos[i], repo))
			return 1;
	return 0;
}

static char *
header_json(const struct backup_stream *s, uint64_t now)
{
	json_t *repos = json_array(), *o;
	char *text;

	for (size_t i = 0; i < s->n_repos; i++)
		json_array_append_new(repos, json_string(s->repos[i]));
	o = json_pack(
	        "{s:s,s:i,s:i,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I}", "format",
	        BACKUP_FORMAT, "version", BACKUP_VERSION, "schema",
	        (int)s->snap.schema, "created", (json_int_t)now, "repositories",
	        repos, "repository_count", (json_int_t)s->snap.repositories,
	        "manifests", (json_int_t)s->snap.manifests, "tags",
	        (json_int_t)s->snap.tags, "blobs", (json_int_t)s->snap.n_blobs,
	        "blob_bytes", (json_int_t)s->snap.blob_bytes, "rows",
	        (json_int_t)s->snap.rows);
	if (o == NULL)
		return NULL;
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

static char *
end_json(const struct backup_stream *s)
{
	json_t *o =
	        json_pack("{s:I,s:I,s:I}", "blobs", (json_int_t)s->snap.n_blobs,
	                  "blob_bytes", (json_int_t)s->snap.blob_bytes, "rows",
	                  (json_int_t)s->snap.rows);
	char *text;

	if (o == NULL)
		return NULL;
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

/* The test hook: says the snapshot is taken, then waits while the hold
 * file exists. */
static void
hold_mark(const char *hold)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s.snap", hold) >= (int)sizeof(path))
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

static void
hold_wait(struct backup_stream *s)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	struct stat st;

	for (int i = 0;
	     i < HOLD_WAIT_MS / 10 && !s->stop && stat(s->test_hold, &st) == 0;
	     i++)
		nanosleep(&ts, NULL);
}

static int
next_member(void *arg, struct backup_member *m)
{
	struct backup_stream *s = arg;

	if (s->blob_fd >= 0) {
		close(s->blob_fd);
		s->blob_fd = -1;
	}
	switch (s->part) {
	case P_HEADER:
		m->name = BACKUP_HEADER_NAME;
		m->data = s->header;
		m->size = strlen(s->header);
		s->part = P_ROWS;
		return 1;
	case P_ROWS:
		m->name = BACKUP_ROWS_NAME;
		m->fd = s->snap.fd;
		m->size = s->snap.rows_len;
		s->part = P_BLOBS;
		return 1;
	case P_BLOBS:
		if (s->next_blob == 0 && s->test_hold != NULL)
			hold_wait(s);
		if (s->next_blob < s->snap.n_blobs && !s->stop) {
			const struct meta_backup_blob *b =
			        &s->snap.blobs[s->next_blob++];
			uint64_t size = 0;
			int rc =
			        blob_open(s->bs, b->digest, &s->blob_fd, &size);

			if (rc != 0)
				return rc;
			if (size != b->size)
				return RC_CORRUPT;
			(void)posix_fadvise(s->blob_fd, 0, 0,
			                    POSIX_FADV_SEQUENTIAL);
			snprintf(s->name, sizeof(s->name), "%s%s",
			         BACKUP_BLOB_PREFIX, b->digest + 7);
			m->name = s->name;
			m->fd = s->blob_fd;
			m->size = b->size;
			s->blobs_sent++;
			return 1;
		}
		s->part = P_END;
		/* fall through */
	case P_END:
		m->name = BACKUP_END_NAME;
		m->data = s->end;
		m->size = strlen(s->end);
		s->part = P_DONE;
		return 1;
	case P_DONE: break;
	}
	return 0;
}

static void *producer(void *arg);

int
backup_stream_open(struct meta *m, struct blob_store *bs,
                   const struct backup_stream_options *o,
                   struct backup_stream **out)
{
	struct backup_stream *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->bs = bs;
	s->blob_fd = -1;
	s->snap.fd = -1;
	s->test_hold = o->test_hold;
	if (o->n_repos > 0 &&
	    (s->repos = calloc(o->n_repos, sizeof(*s->repos))) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < o->n_repos; i++) {
		if ((s->repos[i] = strdup(o->repos[i])) == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		s->n_repos++;
	}
	rc = meta_backup_snapshot(m, o->n_repos > 0 ? want_repo : NULL, s,
	                          &s->snap);
	if (rc != 0)
		goto fail;
	if (o->test_hold != NULL)
		hold_mark(o->test_hold);
	if ((s->header = header_json(s, o->now)) == NULL ||
	    (s->end = end_json(s)) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = backup_writer_open(o->level, o->workers, next_member, s, &s->w);
	if (rc != 0)
		goto fail;
	for (size_t i = 0; i < RING_N; i++)
		if ((s->ring[i].p = malloc(RING_CHUNK)) == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
	if (pthread_create(&s->thread, NULL, producer, s) != 0) {
		rc = -EAGAIN;
		goto fail;
	}
	s->started = 1;
	*out = s;
	return 0;
fail:
	backup_stream_close(s);
	return rc;
}

static void
seen_update(struct backup_stream *s)
{
	s->seen.blobs_sent = s->blobs_sent;
	backup_writer_counts(s->w, &s->seen.tar_bytes, &s->seen.zst_bytes);
}

static void *
producer(void *arg)
{
	struct backup_stream *s = arg;
	ssize_t n = 1;

	while (n > 0) {
		struct chunk *c;

		pthread_mutex_lock(&s->mu);
		while (s->count == RING_N && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stop) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		c = &s->ring[s->tail];
		pthread_mutex_unlock(&s->mu);
		/* a chunk not yet published is the producer's alone */
		c->len = c->off = 0;
		while (c->len < RING_CHUNK &&
		       (n = backup_writer_read(s->w, c->p + c->len,
		                               RING_CHUNK - c->len)) > 0)
			c->len += (size_t)n;
		pthread_mutex_lock(&s->mu);
		if (c->len > 0) {
			s->tail = (s->tail + 1) % RING_N;
			s->count++;
		}
		if (n <= 0) {
			s->done = 1;
			s->err = (int)n;
		}
		seen_update(s);
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

ssize_t
backup_stream_read(struct backup_stream *s, void *buf, size_t max)
{
	struct chunk *c;
	size_t k;

	pthread_mutex_lock(&s->mu);
	while (s->count == 0 && !s->done)
		pthread_cond_wait(&s->cv, &s->mu);
	if (s->count == 0) {
		int err = s->err;
		pthread_mutex_unlock(&s->mu);
		return err;
	}
	c = &s->ring[s->head];
	pthread_mutex_unlock(&s->mu);
	/* a published chunk is the reader's alone until it is released */
	k = c->len - c->off < max ? c->len - c->off : max;
	memcpy(buf, c->p + c->off, k);
	c->off += k;
	if (c->off == c->len) {
		pthread_mutex_lock(&s->mu);
		s->head = (s->head + 1) % RING_N;
		s->count--;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	return (ssize_t)k;
}

void
backup_stream_stats(struct backup_stream *s, struct backup_stream_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->mu);
	*out = s->seen;
	pthread_mutex_unlock(&s->mu);
	out->repositories = s->snap.repositories;
	out->manifests = s->snap.manifests;
	out->tags = s->snap.tags;
	out->blobs = s->snap.n_blobs;
	out->blob_bytes = s->snap.blob_bytes;
}

void
backup_stream_close(struct backup_stream *s)
{
	if (s == NULL)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
	}
	for (size_t i = 0; i < RING_N; i++)
		free(s->ring[i].p);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	backup_writer_close(s->w);
	if (s->blob_fd >= 0)
		close(s->blob_fd);
	meta_backup_free(&s->snap);
	for (size_t i = 0; i < s->n_repos; i++)
		free(s->repos[i]);
	free(s->repos);
	free(s->header);
	free(s->end);
	free(s);
}
