/* Blob endpoints: GET/HEAD/DELETE /v2/<name>/blobs/<digest>, and the upload
 * session endpoints under /v2/<name>/blobs/uploads/. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/names.h"
#include "common/rc.h"
#include "registry/http.h"
#include "storage/blob.h"
#include "storage/meta.h"

/* Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range against size.
 * Returns 1 with [*off, *off + *len) for a satisfiable range, 0 to serve the
 * whole blob (no header, a multi-range or a malformed one: RFC 9110 lets us
 * ignore it), -1 when unsatisfiable. */
static int
parse_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
	char *end;
	uint64_t a, b;

	if (h == NULL || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
		return 0;
	h += 6;
	if (*h == '-') {
		if (h[1] < '0' || h[1] > '9')
			return 0;
		b = strtoull(h + 1, &end, 10);
		if (*end != '\0')
			return 0;
		if (b == 0 || size == 0)
			return -1;
		if (b > size)
			b = size;
		*off = size - b;
		*len = b;
		return 1;
	}
	if (*h < '0' || *h > '9')
		return 0;
	a = strtoull(h, &end, 10);
	if (*end != '-')
		return 0;
	h = end + 1;
	if (*h == '\0') {
		b = size ? size - 1 : 0;
	} else {
		if (*h < '0' || *h > '9')
			return 0;
		b = strtoull(h, &end, 10);
		if (*end != '\0' || b < a)
			return 0;
		if (b >= size)
			b = size ? size - 1 : 0;
	}
	if (a >= size)
		return -1;
	*off = a;
	*len = b - a + 1;
	return 1;
}

/* Over TLS, libmicrohttpd reads a file response 4 KiB at a time (one
 * pread, one record, one send per 4 KiB: twenty times the CPU per GB of
 * plain HTTP's sendfile). A callback response lets it take TLS_BLOCK
 * bytes per read instead, at the price of that much memory per TLS
 * download in flight. */
#define TLS_BLOCK (128 * 1024)

struct file_part {
	int fd;
	uint64_t off;
};

static ssize_t
file_part_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct file_part *fp = cls;
	ssize_t n;

	do
		n = pread(fp->fd, buf, max, (off_t)(fp->off + pos));
	while (n < 0 && errno == EINTR);
	/* A short file (it cannot be: blob files are complete before they
	 * are named) ends the response as an error, never as a hang. */
	return n > 0 ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void
file_part_free(void *cls)
{
	struct file_part *fp = cls;

	close(fp->fd);
	free(fp);
}

static struct MHD_Response *
file_response(struct req *r, int fd, uint64_t off, uint64_t len)
{
	struct MHD_Response *resp;
	struct file_part *fp;

	if (r->app->tls == NULL || len == 0)
		return MHD_create_response_from_fd_at_offset64(len, fd,
		                                               (int64_t)off);
	if ((fp = malloc(sizeof(*fp))) == NULL)
		return NULL;
	fp->fd = fd;
	fp->off = off;
	resp = MHD_create_response_from_callback(len, TLS_BLOCK, file_part_read,
	                                         fp, file_part_free);
	if (resp == NULL)
		free(fp);
	return resp;
}

void
h_blob_get(struct req *r)
{
	struct MHD_Response *resp;
	uint64_t size, off = 0, len;
	int fd = -1, rc, ranged = 0;
	unsigned status = 200;

	/* The read is remembered in memory: the collector keeps what was
	 * read within the grace period. */
	rc = meta_blob_read(r->app->meta, r->name, r->ref, now_s(), &size);
	if (rc != RC_OK) {
		reply_error(r, rc, NULL);
		return;
	}
	len = size;
	if (!r->is_head)
		ranged = parse_range(req_header(r, "Range"), size, &off, &len);
	if (ranged < 0) {
		req_add_header(r, "Content-Range", "bytes */%" PRIu64, size);
		reply_error(r, RC_RANGE_INVALID,
		            "requested range not satisfiable");
		return;
	}
	if (r->is_head) {
		resp = head_response(size);
	} else {
		uint64_t fsize;
		rc = blob_open(r->app->blobs, r->ref, &fd, &fsize);
		if (rc != RC_OK) {
			log_msg("error", "indexed blob has no file", "digest",
			        r->ref, NULL);
			reply_error(r, RC_BLOB_UNKNOWN, NULL);
			return;
		}
		resp = file_response(r, fd, off, len);
		if (resp == NULL)
			close(fd);
		r->bytes_out = len;
		if (ranged) {
			status = 206;
			req_add_header(r, "Content-Range",
			               "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
			               off, off + len - 1, size);
		}
	}
	if (resp) {
		MHD_add_response_header(resp, "Content-Type",
		                        "application/octet-stream");
		MHD_add_response_header(resp, "Docker-Content-Digest", r->ref);
		MHD_add_response_header(resp, "Accept-Ranges", "bytes");
		MHD_add_response_header(resp, "Cache-Control",
		                        "max-age=31536000, immutable");
		req_add_header(r, "ETag", "\"%s\"", r->ref);
	}
	reply(r, status, resp);
}

void
h_blob_delete(struct req *r)
{
	int rc = meta_blob_unlink(r->app->meta, r->name, r->ref, now_s());

	if (rc != RC_OK)
		reply_error(r, rc, NULL);
	else
		reply_empty(r, 202);
}

/* ---- uploads ---- */

static void
add_upload_headers(struct req *r, uint64_t offset)
{
	req_add_header(r, "Location", "/v2/%s/blobs/uploads/%s", r->name,
	               r->uuid);
	req_add_header(r, "Docker-Upload-UUID", "%s", r->uuid);
	req_add_header(r, "Range", "0-%" PRIu64, offset ? offset - 1 : 0);
}

static void
reply_blob_created(struct req *r, const char *digest)
{
	req_add_header(r, "Location", "/v2/%s/blobs/%s", r->name, digest);
	req_add_header(r, "Docker-Content-Digest", "%s", digest);
	reply_empty(r, 201);
}

/* Creates a new upload session for r->name and checks it out. */
static int
upload_begin(struct req *r)
{
	int rc = blob_upload_create(r->app->blobs, r->uuid);

	if (rc != RC_OK)
		return rc;
	rc = meta_upload_put(r->app->meta, r->uuid, r->name, now_s());
	if (rc == RC_OK)
		rc = blob_upload_acquire(r->app->blobs, r->uuid, &r->up);
	if (rc != RC_OK && blob_upload_delete(r->app->blobs, r->uuid) != RC_OK)
		log_msg("warn", "could not remove upload", "uuid", r->uuid,
		        NULL);
	return rc;
}

/* Validates the "digest" query parameter into r->ref. */
static int
take_digest_param(struct req *r)
{
	const char *d = req_query(r, "digest");
	int rc;

	if (d == NULL)
		return RC_DIGEST_INVALID;
	rc = digest_check(d);
	if (rc != RC_OK)
		return rc;
	memcpy(r->ref, d, DIGEST_BUF);
	return RC_OK;
}

/* The parameters of a cross-repository mount: RC_OK, or the error with a
 * detail naming the parameter at fault. */
static int
mount_params_check(const char *mount, const char *from, char *detail,
                   size_t len)
{
	char shown[128];
	int rc = digest_check(mount);

	if (rc != RC_OK) {
		text_printable(shown, sizeof(shown), mount);
		snprintf(detail, len, "mount: \"%s\" is not a digest%s", shown,
		         rc == RC_UNSUPPORTED ? " of a supported algorithm"
		                              : "");
		return rc;
	}
	if (from != NULL && !name_is_valid(from)) {
		text_printable(shown, sizeof(shown), from);
		snprintf(detail, len, "from: \"%s\" is not a repository name",
		         shown);
		return RC_NAME_INVALID;
	}
	return RC_OK;
}

void
h_uploads_post_start(struct req *r)
{
	const char *mount = req_query(r, "mount");
	const char *from = req_query(r, "from");
	const char *digest = req_query(r, "digest");
	uint64_t size;
	int rc;

	if (mount != NULL) {
		char detail[256];
		rc = mount_params_check(mount, from, detail, sizeof(detail));
		if (rc != RC_OK) {
			reply_error(r, rc, detail);
			return;
		}
		/* With auth, only from a repository the token may pull
		 * from: without `from` or without pull there it is a plain
		 * upload, and the client learns nothing about the blob. */
		if (r->auth != NULL &&
		    (from == NULL || !gate_may_pull(r, from)))
			rc = RC_BLOB_UNKNOWN;
		else
			rc = meta_blob_mount(r->app->meta, r->name, mount, from,
			                     now_s(), &size);
		if (rc == RC_OK) {
			reply_blob_created(r, mount);
			return;
		}
		if (rc != RC_BLOB_UNKNOWN) {
			reply_error(r, rc, NULL);
			return;
		}
		/* not mountable: fall back to a plain upload session */
		digest = NULL;
	}
	if (digest != NULL) {
		rc = take_digest_param(r);
		if (rc == RC_OK)
			rc = upload_begin(r);
		if (rc != RC_OK)
			r->err_rc = rc;
		else
			r->one_shot =
			        1; /* no session to resume: drop on failure */
		return; /* body streams in, h_upload_put_finish commits */
	}
	rc = upload_begin(r);
	if (rc != RC_OK) {
		reply_error(r, rc, NULL);
		return;
	}
	add_upload_headers(r, 0);
	reply_empty(r, 202);
}

/* A byte offset: decimal digits only, at most 2^63 - 1 (what distribution
 * and the clients' int64 offsets can hold). Advances *p past it. */
static int
parse_offset(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > ((uint64_t)INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

/* The Content-Range of an upload chunk: "<start>-<end>", both inclusive,
 * the spec's ^[0-9]+-[0-9]+$ (what docker, go-containerregistry and the
 * conformance suite send), or the same after "bytes=" (accepted since the
 * first release). Nothing else: no sign, space, "bytes " or "/<size>"
 * (a response's Content-Range), empty number, end before start or number
 * over 2^63 - 1. 0, or -1 when malformed. */
static int
parse_content_range(const char *h, uint64_t *start, uint64_t *end)
{
	if (strncmp(h, "bytes=", 6) == 0)
		h += 6;
	if (parse_offset(&h, start) != 0 || *h != '-')
		return -1;
	h++;
	if (parse_offset(&h, end) != 0 || *h != '\0' || *end < *start)
		return -1;
	return 0;
}

/* Checks out the session named in the URL and the Content-Range (if any)
 * against its offset. */
static int
upload_resume(struct req *r)
{
	const char *cr = req_header(r, "Content-Range");
	const char *cl = req_header(r, "Content-Length");
	int rc;

	rc = meta_upload_check(r->app->meta, r->uuid, r->name);
	if (rc == RC_OK)
		rc = blob_upload_acquire(r->app->blobs, r->uuid, &r->up);
	if (rc != RC_OK)
		return rc;
	if (cr != NULL) {
		uint64_t a, b;
		if (parse_content_range(cr, &a, &b) != 0 ||
		    a != blob_upload_offset(r->up))
			return RC_RANGE_INVALID;
		/* The chunk must be exactly the range it claims. */
		if (cl != NULL && strtoull(cl, NULL, 10) != b - a + 1)
			return RC_RANGE_INVALID;
		r->range_end = b + 1;
	}
	return RC_OK;
}

/* Bytes of an upload stored so far, without taking it from a request
 * that holds it: what a request going on after that one resumes from. */
static int
upload_stored(struct req *r, uint64_t *size)
{
	return blob_upload_stored(r->app->blobs, r->uuid, size);
}

static void
upload_fail(struct req *r, int rc)
{
	uint64_t size;

	r->err_rc = rc;
	if (rc == RC_RANGE_INVALID && r->up != NULL)
		add_upload_headers(r, blob_upload_offset(r->up));
	else if (rc == RC_BUSY && upload_stored(r, &size) == RC_OK)
		add_upload_headers(r, size); /* still refused: in use */
}

void
h_upload_patch_start(struct req *r)
{
	int rc = upload_resume(r);

	if (rc != RC_OK)
		upload_fail(r, rc);
}

void
h_upload_put_start(struct req *r)
{
	int rc = take_digest_param(r);

	if (rc == RC_OK)
		rc = upload_resume(r);
	if (rc != RC_OK)
		upload_fail(r, rc);
}

/* Request bodies arrive in pieces of MHD's read buffer (16 KiB or less with
 * chunked transfer); they are gathered into batches so the file and the
 * hash see few large writes. A batch is handed to the blob store's writer
 * threads and the next one fills a second buffer meanwhile, so receiving
 * and hashing overlap the disk. The first batch is small (most blobs are);
 * a body that goes on gets two large buffers: each hand-over between the
 * threads costs wake-ups, so a 256 MiB layer wants few of them. Buffers
 * are aligned and every batch ends on a BLOB_WRITE_ALIGN boundary of the
 * file, so full batches go to the disk without a page-cache copy. */
#define UPLOAD_BATCH     (256u * 1024u)
#define UPLOAD_BATCH_BIG (1024u * 1024u)

static int
flush_failed(struct req *r, int rc)
{
	r->err_rc = rc;
	return rc;
}

/* Hands the batch to the writer threads. more: the body goes on. */
static int
upload_flush(struct req *r, int more)
{
	void *p;
	char *t;
	size_t c;
	int rc;

	if (r->len == 0)
		return RC_OK;
	/* waits for the write of the other buffer first */
	rc = blob_upload_submit(r->up, r->buf, r->len);
	r->len = 0;
	if (rc != RC_OK)
		return flush_failed(r, rc);
	if (!more)
		return RC_OK; /* finish or release waits for the write */
	if (r->cap2 < UPLOAD_BATCH_BIG) {
		free(r->buf2);
		r->buf2 = NULL;
		r->cap2 = 0;
		if (posix_memalign(&p, BLOB_WRITE_ALIGN, UPLOAD_BATCH_BIG) ==
		    0) {
			r->buf2 = p;
			r->cap2 = UPLOAD_BATCH_BIG;
		}
	}
	if (r->buf2 == NULL) {
		/* one buffer: it is free once its write is done */
		rc = blob_upload_sync(r->up);
		return rc == RC_OK ? RC_OK : flush_failed(r, rc);
	}
	t = r->buf;
	r->buf = r->buf2;
	r->buf2 = t;
	c = r->cap;
	r->cap = r->cap2;
	r->cap2 = c;
	return RC_OK;
}

/* Size of the batch being filled: whatever brings the file to the next
 * boundary, plus whole aligned blocks up to the capacity. */
static size_t
batch_size(const struct req *r)
{
	return r->cap - (size_t)(blob_upload_offset(r->up) % BLOB_WRITE_ALIGN);
}

int
h_upload_body(struct req *r, const char *data, size_t len)
{
	if (r->up == NULL)
		return RC_OK;
	if (len == 0)
		return upload_flush(r, 0);
	if (r->range_end != 0 &&
	    blob_upload_offset(r->up) + r->len + len > r->range_end) {
		/* more bytes than the Content-Range announced */
		r->len = 0;
		upload_fail(r, RC_RANGE_INVALID);
		return RC_RANGE_INVALID;
	}
	if (r->buf == NULL) {
		void *p = NULL;

		if (posix_memalign(&p, BLOB_WRITE_ALIGN, UPLOAD_BATCH) != 0) {
			int rc = blob_upload_write(r->up, data, len);
			if (rc != RC_OK)
				r->err_rc = rc;
			return rc;
		}
		r->buf = p;
		r->cap = UPLOAD_BATCH;
	}
	while (len > 0) {
		size_t room = batch_size(r) - r->len;
		size_t n = len < room ? len : room;

		memcpy(r->buf + r->len, data, n);
		r->len += n;
		data += n;
		len -= n;
		if (n == room && upload_flush(r, 1) != RC_OK)
			return r->err_rc;
	}
	return RC_OK;
}

void
h_upload_patch_finish(struct req *r)
{
	int rc = blob_upload_sync(r->up);

	if (rc != RC_OK) {
		reply_error(r, rc, NULL);
		return;
	}
	add_upload_headers(r, blob_upload_offset(r->up));
	reply_empty(r, 202);
}

void
h_upload_put_finish(struct req *r)
{
	uint64_t size;
	int rc;

	/* The file and its index entry appear together for the collector:
	 * it never unlinks a file this commit found in place. */
	blob_digest_lock(r->app->blobs, r->ref);
	rc = blob_upload_commit(r->up, r->ref, &size);
	if (rc != RC_OK) {
		blob_digest_unlock(r->app->blobs, r->ref);
		reply_error(r, rc, NULL);
		return;
	}
	r->up = NULL; /* freed by a successful commit */
	r->one_shot = 0;
	rc = meta_blob_commit(r->app->meta, r->name, r->ref, size, r->uuid,
	                      now_s());
	if (rc != RC_OK && meta_blob_indexed(r->app->meta, r->ref) == 0) {
		/* The index refused it (a full volume): its file, in place
		 * and without a row, would stay until `check --repair`.
		 * With no row no repository links it, and the digest lock
		 * keeps other commits of it out meanwhile. */
		if (blob_remove(r->app->blobs, r->ref) != RC_OK) {
			/* left to `berth check --repair` */
		}
	}
	blob_digest_unlock(r->app->blobs, r->ref);
	if (rc != RC_OK) {
		reply_error(r, rc, NULL);
		return;
	}
	reply_blob_created(r, r->ref);
}

/* The status never takes the session: a PATCH arriving at the same
 * moment would be refused as "in use" (and learn it only after sending its
 * whole body), and taking an upload not in memory hashes its file. */
void
h_upload_get(struct req *r)
{
	int rc = meta_upload_check(r->app->meta, r->uuid, r->name);
	uint64_t size = 0;

	if (rc == RC_OK)
		rc = upload_stored(r, &size);
	if (rc != RC_OK) {
		reply_error(r, rc, NULL);
		return;
	}
	add_upload_headers(r, size);
	reply_empty(r, 204);
}

void
h_upload_delete(struct req *r)
{
	int rc = meta_upload_check(r->app->meta, r->uuid, r->name);

	if (rc == RC_OK)
		rc = blob_upload_delete(r->app->blobs, r->uuid);
	if (rc == RC_OK || rc == RC_UPLOAD_UNKNOWN) {
		int mrc = meta_upload_delete(r->app->meta, r->uuid);
		if (rc == RC_OK)
			rc = mrc;
	}
	if (rc != RC_OK)
		reply_error(r, rc, NULL);
	else
		reply_empty(r, 204);
}

void
upload_abandon(struct req *r)
{
	if (!r->one_shot || r->uuid[0] == '\0')
		return;
	blob_upload_release(r->up);
	r->up = NULL;
	if (blob_upload_delete(r->app->blobs, r->uuid) != RC_OK ||
	    meta_upload_delete(r->app->meta, r->uuid) != RC_OK)
		log_msg("warn", "could not remove a failed upload", "upload",
		        r->uuid, NULL);
}
