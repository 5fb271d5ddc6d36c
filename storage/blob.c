/* Content-addressed blob files and upload sessions. See blob.h for the
 * layout on disk and the write order of a blob.
 *
 * Open uploads live in an in-memory table guarded by one mutex: an entry is
 * either acquired (on the busy list, owned by exactly one request) or idle
 * (on the LRU list, its fd and hash state kept for the next request). The
 * mutex only guards the lists; it is never held across disk I/O. An entry
 * being loaded from disk, committed or deleted sits on the busy list, so a
 * concurrent request for the same uuid gets RC_BUSY instead of racing it. */
#include "storage/blob.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/rc.h"
#include "storage/blob_internal.h"

#define BLOB_IDLE_MAX      256 /* idle uploads kept open */
#define BLOB_CREATE_TRIES  4   /* uuid collisions tolerated */
#define BLOB_PATH_OVERHEAD 96  /* longest suffix added to datadir */

/* ---- lists (caller holds bs->lock) ---- */

static void
list_remove(struct upload_list *l, struct blob_upload *up)
{
	if (up->prev != NULL)
		up->prev->next = up->next;
	else
		l->head = up->next;
	if (up->next != NULL)
		up->next->prev = up->prev;
	else
		l->tail = up->prev;
	up->prev = up->next = NULL;
	l->n--;
}

static void
list_push_front(struct upload_list *l, struct blob_upload *up)
{
	up->prev = NULL;
	up->next = l->head;
	if (l->head != NULL)
		l->head->prev = up;
	else
		l->tail = up;
	l->head = up;
	l->n++;
}

static struct blob_upload *
list_find(const struct upload_list *l, const char *uuid)
{
	for (struct blob_upload *up = l->head; up != NULL; up = up->next)
		if (memcmp(up->uuid, uuid, BLOB_UUID_BUF) == 0)
			return up;
	return NULL;
}

/* Moves idle entries beyond BLOB_IDLE_MAX onto *victims (singly linked
 * through next) so the caller can close them after unlocking. */
static void
idle_trim(struct blob_store *bs, struct blob_upload **victims)
{
	while (bs->idle.n > BLOB_IDLE_MAX) {
		struct blob_upload *up = bs->idle.tail;
		list_remove(&bs->idle, up);
		up->next = *victims;
		*victims = up;
	}
}

/* ---- entries ---- */

static struct blob_upload *
upload_new(struct blob_store *bs, const char *uuid)
{
	struct blob_upload *up = calloc(1, sizeof(*up));

	if (up == NULL)
		return NULL;
	up->bs = bs;
	up->fd = -1;
	memcpy(up->uuid, uuid, BLOB_UUID_BUF);
	return up;
}

static void
upload_free(struct blob_upload *up)
{
	if (up == NULL)
		return;
	(void)blob_upload_wait(up, 1); /* nothing may use the fd after close */
	if (up->fd >= 0)
		close(up->fd);
	EVP_MD_CTX_free(up->ctx);
	free(up);
}

static void
upload_free_chain(struct blob_upload *up)
{
	while (up != NULL) {
		struct blob_upload *next = up->next;
		upload_free(up);
		up = next;
	}
}

/* ---- names and paths ---- */

static int
is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* 1 for xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx in lower-case hex. */
int
blob_uuid_valid(const char *s)
{
	if (s == NULL)
		return 0;
	for (int i = 0; i < BLOB_UUID_BUF - 1; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!is_lower_hex(s[i])) {
			return 0;
		}
	}
	if (s[BLOB_UUID_BUF - 1] != '\0' || s[14] != '4')
		return 0;
	return strchr("89ab", s[19]) != NULL;
}

int
blob_hex_name(const char *s, size_t n)
{
	if (strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_hex(s[i]))
			return 0;
	return 1;
}

static int
upload_path(const struct blob_store *bs, const char *uuid, char *buf,
            size_t len)
{
	int n = snprintf(buf, len, "%s/%s", bs->uploads, uuid);

	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

/* DATA/blobs/sha256/<2 hex> into dir (may be NULL), the file into file.
 * The digest must have passed digest_check(). */
static int
blob_paths(const struct blob_store *bs, const char *digest, char *dir,
           size_t dirlen, char *file, size_t filelen)
{
	const char *hex = digest + 7;
	int n;

	if (dir != NULL) {
		n = snprintf(dir, dirlen, "%s/%.2s", bs->blobs, hex);
		if (n < 0 || (size_t)n >= dirlen)
			return -ENAMETOOLONG;
	}
	n = snprintf(file, filelen, "%s/%.2s/%s", bs->blobs, hex, hex);
	if (n < 0 || (size_t)n >= filelen)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- small syscall helpers ---- */

/* mkdir that accepts an existing directory; sets *created when it made
 * one. */
static int
mkdir_one(const char *path, int *created)
{
	struct stat st;
	int err;

	if (mkdir(path, 0755) == 0) {
		if (created != NULL)
			*created = 1;
		return 0;
	}
	err = errno;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if (err == EEXIST)
		err = ENOTDIR;
	return -err;
}

static int
mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	int rc;

	if (len == 0 || len >= sizeof(tmp))
		return len == 0 ? -EINVAL : -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		rc = mkdir_one(tmp, NULL);
		*p = '/';
		if (rc < 0)
			return rc;
	}
	return mkdir_one(tmp, NULL);
}

static int
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Proves the directory accepts new files (root ignores mode bits, so
 * access(W_OK) is not enough; a read-only mount is caught too). */
static int
probe_writable(const char *dir)
{
	char path[PATH_MAX];
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/.probe-XXXXXX", dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	close(fd);
	if (unlink(path) < 0)
		return -errno;
	return 0;
}

/* ---- store ---- */

int
blob_store_open(const char *datadir, struct blob_store **out)
{
	struct blob_store *bs = NULL;
	char path[PATH_MAX];
	int rc;

	if (datadir == NULL || *datadir == '\0' || out == NULL)
		return -EINVAL;
	if (strlen(datadir) + BLOB_PATH_OVERHEAD >= PATH_MAX)
		return -ENAMETOOLONG;
	bs = calloc(1, sizeof(*bs));
	if (bs == NULL)
		return -ENOMEM;
	snprintf(bs->blobs, sizeof(bs->blobs), "%s/blobs/sha256", datadir);
	snprintf(bs->uploads, sizeof(bs->uploads), "%s/uploads", datadir);
	snprintf(path, sizeof(path), "%s/blobs", datadir);
	if ((rc = mkdir_p(datadir)) < 0 || (rc = mkdir_one(path, NULL)) < 0 ||
	    (rc = mkdir_one(bs->blobs, NULL)) < 0 ||
	    (rc = mkdir_one(bs->uploads, NULL)) < 0 ||
	    (rc = probe_writable(bs->uploads)) < 0 ||
	    (rc = probe_writable(bs->blobs)) < 0)
		goto fail;
	bs->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (bs->md == NULL) {
		rc = -ENOSYS;
		goto fail;
	}
	if ((rc = -pthread_mutex_init(&bs->lock, NULL)) < 0)
		goto fail;
	for (int i = 0; i < BLOB_DIGEST_LOCKS; i++)
		pthread_mutex_init(&bs->dlock[i], NULL);
	if ((rc = -pthread_mutex_init(&bs->wlock, NULL)) < 0)
		goto fail_lock;
	if ((rc = -pthread_cond_init(&bs->wwork, NULL)) < 0)
		goto fail_wlock;
	if ((rc = -pthread_cond_init(&bs->wdone, NULL)) < 0)
		goto fail_wwork;
	/* Without writer threads, submitted batches are written inline. */
	blob_writers_start(bs);
	*out = bs;
	return 0;
fail_wwork:
	pthread_cond_destroy(&bs->wwork);
fail_wlock:
	pthread_mutex_destroy(&bs->wlock);
fail_lock:
	pthread_mutex_destroy(&bs->lock);
fail:
	EVP_MD_free(bs->md);
	free(bs);
	return rc;
}

/* Every upload must have been released (or committed) before. */
void
blob_store_close(struct blob_store *bs)
{
	if (bs == NULL)
		return;
	upload_free_chain(bs->idle.head);
	upload_free_chain(bs->busy.head);
	blob_writers_stop(bs);
	pthread_cond_destroy(&bs->wdone);
	pthread_cond_destroy(&bs->wwork);
	pthread_mutex_destroy(&bs->wlock);
	pthread_mutex_destroy(&bs->lock);
	for (int i = 0; i < BLOB_DIGEST_LOCKS; i++)
		pthread_mutex_destroy(&bs->dlock[i]);
	EVP_MD_free(bs->md);
	free(bs);
}

/* ---- stored blobs ---- */

int
blob_path(struct blob_store *bs, const char *digest, char *buf, size_t len)
{
	int rc = digest_check(digest);

	if (rc < 0)
		return rc;
	return blob_paths(bs, digest, NULL, 0, buf, len);
}

int
blob_stat(struct blob_store *bs, const char *digest, uint64_t *size)
{
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if ((rc = blob_path(bs, digest, path, sizeof(path))) < 0)
		return rc;
	if (stat(path, &st) < 0)
		return (errno == ENOENT || errno == ENOTDIR) ? RC_BLOB_UNKNOWN
		                                             : -errno;
	if (!S_ISREG(st.st_mode))
		return RC_CORRUPT;
	*size = (uint64_t)st.st_size;
	return 0;
}

int
blob_open(struct blob_store *bs, const char *digest, int *fd, uint64_t *size)
{
	char path[PATH_MAX];
	struct stat st;
	int rc, f;

	if ((rc = blob_path(bs, digest, path, sizeof(path))) < 0)
		return rc;
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return (errno == ENOENT || errno == ENOTDIR) ? RC_BLOB_UNKNOWN
		                                             : -errno;
	if (fstat(f, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = RC_CORRUPT;
		goto fail;
	}
	*fd = f;
	*size = (uint64_t)st.st_size;
	return 0;
fail:
	close(f);
	return rc;
}

int
blob_remove(struct blob_store *bs, const char *digest)
{
	char path[PATH_MAX];
	int rc;

	if ((rc = blob_path(bs, digest, path, sizeof(path))) < 0)
		return rc;
	if (unlink(path) < 0)
		return (errno == ENOENT || errno == ENOTDIR) ? RC_BLOB_UNKNOWN
		                                             : -errno;
	return 0;
}

static pthread_mutex_t *
digest_lock_of(struct blob_store *bs, const char *digest)
{
	unsigned h = 0;

	for (const char *p = digest; *p; p++)
		h = h * 31u + (unsigned char)*p;
	return &bs->dlock[h % BLOB_DIGEST_LOCKS];
}

void
blob_digest_lock(struct blob_store *bs, const char *digest)
{
	pthread_mutex_lock(digest_lock_of(bs, digest));
}

void
blob_digest_unlock(struct blob_store *bs, const char *digest)
{
	pthread_mutex_unlock(digest_lock_of(bs, digest));
}

/* ---- uploads: table ---- */

/* Puts the upload for uuid on the busy list. Returns 0 with *out set (its
 * fd is -1 when it was not cached), RC_BUSY, or -ENOMEM. */
static int
upload_claim(struct blob_store *bs, const char *uuid, struct blob_upload **out)
{
	struct blob_upload *up = NULL;
	int rc = 0;

	pthread_mutex_lock(&bs->lock);
	if (list_find(&bs->busy, uuid) != NULL) {
		rc = RC_BUSY;
	} else if ((up = list_find(&bs->idle, uuid)) != NULL) {
		list_remove(&bs->idle, up);
	} else if ((up = upload_new(bs, uuid)) == NULL) {
		rc = -ENOMEM;
	}
	if (rc == 0) {
		list_push_front(&bs->busy, up);
		*out = up;
	}
	pthread_mutex_unlock(&bs->lock);
	return rc;
}

/* Takes a claimed upload off the table; the caller frees it. */
static void
upload_unclaim(struct blob_upload *up)
{
	struct blob_store *bs = up->bs;

	pthread_mutex_lock(&bs->lock);
	list_remove(&bs->busy, up);
	pthread_mutex_unlock(&bs->lock);
}

/* Opens the upload file and hashes what it holds (one sequential read). */
static int
upload_load(struct blob_upload *up)
{
	char path[PATH_MAX];
	unsigned char *buf = NULL;
	uint64_t off = 0;
	int rc, eintr = 0;

	if ((rc = upload_path(up->bs, up->uuid, path, sizeof(path))) < 0)
		return rc;
	up->fd = open(path, O_RDWR | O_CLOEXEC);
	if (up->fd < 0) {
		rc = (errno == ENOENT || errno == ENOTDIR) ? RC_UPLOAD_UNKNOWN
		                                           : -errno;
		goto fail;
	}
	up->ctx = EVP_MD_CTX_new();
	buf = malloc(BLOB_READ_CHUNK);
	if (up->ctx == NULL || buf == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if (!EVP_DigestInit_ex(up->ctx, up->bs->md, NULL)) {
		rc = -EIO;
		goto fail;
	}
	for (;;) {
		ssize_t n = pread(up->fd, buf, BLOB_READ_CHUNK, (off_t)off);
		if (n < 0 && errno == EINTR && eintr++ < BLOB_EINTR_MAX)
			continue;
		if (n < 0) {
			rc = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		if (!EVP_DigestUpdate(up->ctx, buf, (size_t)n)) {
			rc = -EIO;
			goto fail;
		}
		off += (uint64_t)n;
	}
	up->offset = off;
	free(buf);
	return 0;
fail:
	free(buf);
	if (up->fd >= 0)
		close(up->fd);
	up->fd = -1;
	EVP_MD_CTX_free(up->ctx);
	up->ctx = NULL;
	return rc;
}

/* ---- uploads: public ---- */

int
blob_upload_create(struct blob_store *bs, char uuid[BLOB_UUID_BUF])
{
	struct blob_upload *up = NULL, *victims = NULL;
	char id[BLOB_UUID_BUF], path[PATH_MAX];
	unsigned char r[16];
	int fd = -1, rc;

	for (int tries = 0; fd < 0 && tries < BLOB_CREATE_TRIES; tries++) {
		if (RAND_bytes(r, sizeof(r)) != 1)
			return -EIO;
		r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
		r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
		snprintf(id, sizeof(id),
		         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		         "%02x%02x%02x%02x%02x%02x",
		         r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
		         r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
		if ((rc = upload_path(bs, id, path, sizeof(path))) < 0)
			return rc;
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 && errno != EEXIST)
			return -errno;
	}
	if (fd < 0)
		return -EEXIST;

	/* Cache the fresh upload so its first request skips open + rebuild;
	 * without memory it is simply loaded from disk later. */
	up = upload_new(bs, id);
	if (up != NULL)
		up->ctx = EVP_MD_CTX_new();
	if (up == NULL || up->ctx == NULL ||
	    !EVP_DigestInit_ex(up->ctx, bs->md, NULL)) {
		upload_free(up);
		close(fd);
	} else {
		up->fd = fd;
		pthread_mutex_lock(&bs->lock);
		list_push_front(&bs->idle, up);
		idle_trim(bs, &victims);
		pthread_mutex_unlock(&bs->lock);
		upload_free_chain(victims);
	}
	memcpy(uuid, id, BLOB_UUID_BUF);
	return 0;
}

int
blob_upload_acquire(struct blob_store *bs, const char *uuid,
                    struct blob_upload **out)
{
	struct blob_upload *up;
	int rc;

	if (!blob_uuid_valid(uuid))
		return RC_UPLOAD_UNKNOWN;
	if ((rc = upload_claim(bs, uuid, &up)) < 0)
		return rc;
	if (up->fd < 0 && (rc = upload_load(up)) < 0) {
		upload_unclaim(up);
		upload_free(up);
		return rc;
	}
	*out = up;
	return 0;
}

void
blob_upload_release(struct blob_upload *up)
{
	struct blob_store *bs;
	struct blob_upload *victims = NULL;

	if (up == NULL)
		return;
	bs = up->bs;
	(void)blob_upload_wait(up, 1); /* a failure marks it broken */
	pthread_mutex_lock(&bs->lock);
	list_remove(&bs->busy, up);
	if (up->broken) {
		victims = up;
	} else {
		list_push_front(&bs->idle, up);
		idle_trim(bs, &victims);
	}
	pthread_mutex_unlock(&bs->lock);
	upload_free_chain(victims);
}

uint64_t
blob_upload_offset(const struct blob_upload *up)
{
	return up->offset;
}
/* Puts a verified upload file at its final path. */
static int
commit_move(struct blob_upload *up, const char *digest)
{
	struct blob_store *bs = up->bs;
	char dir[PATH_MAX], final[PATH_MAX], src[PATH_MAX];
	struct stat st;
	int rc, created = 0;

	if ((rc = blob_paths(bs, digest, dir, sizeof(dir), final,
	                     sizeof(final))) < 0 ||
	    (rc = upload_path(bs, up->uuid, src, sizeof(src))) < 0)
		return rc;
	if ((rc = mkdir_one(dir, &created)) < 0)
		return rc;
	if (created && (rc = fsync_dir(bs->blobs)) < 0) {
		/* Remove it again so a retry creates and syncs it anew (a
		 * concurrent commit may already use it: then it stays). */
		(void)rmdir(dir);
		return rc;
	}

	/* Content-addressed: an existing file of the right size holds the
	 * same bytes (it was verified and fsynced before its own rename), so
	 * the upload is a duplicate. Anything else there is replaced. */
	if (stat(final, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size == up->offset) {
		if (unlink(src) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	if (rename(src, final) < 0)
		return -errno;
	if ((rc = fsync_dir(dir)) < 0) {
		/* Not durable: take the blob back out of sight so the upload
		 * stays as it was and the commit can be retried. If even that
		 * fails the file stays at its final path; its content is
		 * verified, and a retry finds it there as a duplicate. */
		(void)rename(final, src);
		return rc;
	}
	return 0;
}

int
blob_upload_commit(struct blob_upload *up, const char *expected_digest,
                   uint64_t *size)
{
	unsigned char raw[EVP_MAX_MD_SIZE];
	char actual[DIGEST_BUF];
	EVP_MD_CTX *fin = NULL;
	struct stat st;
	unsigned int n = 0;
	int rc;

	if ((rc = digest_check(expected_digest)) < 0)
		return rc;
	if ((rc = blob_upload_wait(up, 1)) < 0 ||
	    (rc = blob_upload_sync(up)) < 0)
		return rc;

	/* A failed truncate in blob_upload_write may have left bytes past
	 * the offset; they are not part of the upload. */
	if (fstat(up->fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size != up->offset &&
	    ftruncate(up->fd, (off_t)up->offset) < 0)
		return -errno;

	/* Finalize a copy so a mismatch leaves the upload resumable. */
	fin = EVP_MD_CTX_new();
	if (fin == NULL)
		return -ENOMEM;
	if (!EVP_MD_CTX_copy_ex(fin, up->ctx) ||
	    !EVP_DigestFinal_ex(fin, raw, &n) || n != 32) {
		rc = -EIO;
		goto fail;
	}
	digest_from_raw(raw, actual);
	if (strcmp(actual, expected_digest) != 0) {
		rc = RC_DIGEST_INVALID;
		goto fail;
	}
	if (fsync(up->fd) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = commit_move(up, expected_digest)) < 0)
		goto fail;

	EVP_MD_CTX_free(fin);
	*size = up->offset;
	upload_unclaim(up);
	upload_free(up);
	return 0;
fail:
	EVP_MD_CTX_free(fin);
	return rc;
}

int
blob_upload_busy(struct blob_store *bs, const char *uuid)
{
	int busy;

	pthread_mutex_lock(&bs->lock);
	busy = list_find(&bs->busy, uuid) != NULL;
	pthread_mutex_unlock(&bs->lock);
	return busy;
}

int
blob_upload_stat(struct blob_store *bs, const char *uuid, uint64_t *size,
                 uint64_t *mtime)
{
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if (!blob_uuid_valid(uuid))
		return RC_UPLOAD_UNKNOWN;
	if ((rc = upload_path(bs, uuid, path, sizeof(path))) < 0)
		return rc;
	if (stat(path, &st) < 0)
		return (errno == ENOENT || errno == ENOTDIR) ? RC_UPLOAD_UNKNOWN
		                                             : -errno;
	*size = (uint64_t)st.st_size;
	*mtime = (uint64_t)st.st_mtim.tv_sec;
	return 0;
}

int
blob_upload_stored(struct blob_store *bs, const char *uuid, uint64_t *size)
{
	struct blob_upload *up;
	uint64_t mtime;
	int found = 0;

	if (!blob_uuid_valid(uuid))
		return RC_UPLOAD_UNKNOWN;
	pthread_mutex_lock(&bs->lock);
	if ((up = list_find(&bs->idle, uuid)) != NULL) {
		*size = up->offset;
		found = 1;
	}
	pthread_mutex_unlock(&bs->lock);
	return found ? 0 : blob_upload_stat(bs, uuid, size, &mtime);
}

int
blob_upload_delete(struct blob_store *bs, const char *uuid)
{
	struct blob_upload *up;
	char path[PATH_MAX];
	int rc;

	if (!blob_uuid_valid(uuid))
		return RC_UPLOAD_UNKNOWN;
	if ((rc = upload_path(bs, uuid, path, sizeof(path))) < 0)
		return rc;
	/* Claiming keeps concurrent acquires out while the file goes. */
	if ((rc = upload_claim(bs, uuid, &up)) < 0)
		return rc;
	if (unlink(path) < 0)
		rc = (errno == ENOENT || errno == ENOTDIR) ? RC_UPLOAD_UNKNOWN
		                                           : -errno;
	upload_unclaim(up);
	upload_free(up);
	return rc;
}

int
blob_read(struct blob_store *bs, const char *digest, size_t max, char **out,
          size_t *len)
{
	uint64_t size;
	size_t got = 0;
	char *buf;
	int fd, rc = blob_open(bs, digest, &fd, &size);

	if (rc != RC_OK)
		return rc;
	if (size > max || (buf = malloc(size > 0 ? size : 1)) == NULL) {
		close(fd);
		return RC_TOO_LARGE;
	}
	while (got < size) {
		ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			close(fd);
			return -EIO;
		}
		got += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = got;
	return RC_OK;
}
