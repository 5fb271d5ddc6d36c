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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/rc.h"

#define BLOB_IDLE_MAX      256        /* idle uploads kept open */
#define BLOB_READ_CHUNK    (1u << 20) /* buffer for hash rebuilds */
#define BLOB_EINTR_MAX     1000       /* bound on retries after EINTR */
#define BLOB_CREATE_TRIES  4          /* uuid collisions tolerated */
#define BLOB_PATH_OVERHEAD 96         /* longest suffix added to datadir */
#define BLOB_WRITERS       4          /* threads writing submitted batches */
#define BLOB_WRITER_STACK  (64u * 1024u)

struct blob_upload {
	struct blob_store *bs;
	struct blob_upload *prev, *next; /* busy list or idle LRU list */
	char uuid[BLOB_UUID_BUF];
	int fd;          /* -1 while not loaded */
	EVP_MD_CTX *ctx; /* hash of bytes [0, offset) */
	uint64_t offset;
	uint64_t kicked; /* writeback started for bytes [0, kicked) */
	int broken;      /* hash state unusable: drop it on release */
	int direct;      /* fd currently has O_DIRECT set */
	/* The write handed to the writer threads (blob_upload_submit); at
	 * most one per upload. Guarded by bs->wlock. */
	struct blob_upload *wnext; /* writer queue */
	const unsigned char *wbuf;
	size_t wlen;
	uint64_t woff;
	int wpending; /* queued or being written */
	int wrc;      /* outcome of the last finished write, until synced */
	/* fdatasync started by a writer every BLOB_FLUSH_BYTES, so the
	 * commit's fsync has only the tail left to flush. Also bs->wlock. */
	struct blob_upload *fnext; /* flush queue */
	uint64_t flushed;          /* a flush covered bytes [0, flushed) */
	int fpending;
	int frc; /* a flush failed: the upload's bytes are not trusted */
};

/* Writeback of an upload is started every BLOB_KICK_BYTES while it is still
 * arriving, so the fsync at commit waits for the last few MiB instead of
 * the whole blob: receiving and writing to disk overlap. */
#define BLOB_KICK_BYTES (8u << 20)

/* Aligned writes of at least this size skip the page cache (O_DIRECT): a
 * pushed layer is read back rarely soon, and copying it into fresh cache
 * pages cost more CPU than hashing it. */
#define BLOB_DIRECT_MIN (64u * 1024u)

/* While a large upload arrives, a writer thread flushes it to stable storage
 * every BLOB_FLUSH_BYTES, alongside the next writes: the device's flush
 * cost grows with the data not yet flushed, and this keeps it off the
 * commit's critical path. */
#define BLOB_FLUSH_BYTES (32u << 20)

struct upload_list {
	struct blob_upload *head, *tail;
	size_t n;
};

struct blob_store {
	char blobs[PATH_MAX];   /* DATA/blobs/sha256 */
	char uploads[PATH_MAX]; /* DATA/uploads */
	EVP_MD *md;
	pthread_mutex_t lock;
	/* Striped by digest: a blob file's last unlink and a commit of the
	 * same content exclude each other (blob_digest_lock). */
	pthread_mutex_t dlock[BLOB_DIGEST_LOCKS];
	struct upload_list busy;
	struct upload_list idle; /* head = most recently released */
	atomic_int no_direct;    /* the filesystem refused O_DIRECT */
	/* Writer threads: they do the pwrite of submitted batches so a
	 * request's next batch is received and hashed while the previous one
	 * goes to disk. */
	pthread_mutex_t wlock;
	pthread_cond_t wwork, wdone;
	struct blob_upload *whead, *wtail;
	struct blob_upload *fhead, *ftail;
	pthread_t writers[BLOB_WRITERS];
	int nwriters, wstop;
};

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

static int upload_wait(struct blob_upload *up, int all);
static void writers_start(struct blob_store *bs);
static void writers_stop(struct blob_store *bs);

static void
upload_free(struct blob_upload *up)
{
	if (up == NULL)
		return;
	(void)upload_wait(up, 1); /* nothing may use the fd after close */
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
static int
uuid_valid(const char *s)
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
	writers_start(bs);
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
	writers_stop(bs);
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

	if (!uuid_valid(uuid))
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
	(void)upload_wait(up, 1); /* a failure marks it broken */
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

/* Sets or clears O_DIRECT on the upload's fd. */
static int
set_direct(struct blob_upload *up, int on)
{
	int fl;

	if (up->direct == on)
		return 0;
	fl = fcntl(up->fd, F_GETFL);
	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_DIRECT) : (fl & ~O_DIRECT);
	if (fcntl(up->fd, F_SETFL, fl) < 0)
		return -errno;
	up->direct = on;
	return 0;
}

/* Whether bytes at p (file offset off, len long) may bypass the page cache:
 * every one of them aligned, and enough of them to be worth a device
 * write of their own. */
static int
direct_ok(const struct blob_upload *up, const unsigned char *p, size_t len,
          uint64_t off)
{
	return !atomic_load_explicit(&up->bs->no_direct,
	                             memory_order_relaxed) &&
	       len >= BLOB_DIRECT_MIN && len % BLOB_WRITE_ALIGN == 0 &&
	       off % BLOB_WRITE_ALIGN == 0 &&
	       (uintptr_t)p % BLOB_WRITE_ALIGN == 0;
}

/* Chooses the write path for the next pwrite: O_DIRECT when direct_ok,
 * else the page cache. A filesystem that refuses O_DIRECT turns it off for
 * the whole store. */
static int
choose_path(struct blob_upload *up, const unsigned char *p, size_t len,
            uint64_t off)
{
	if (direct_ok(up, p, len, off)) {
		if (set_direct(up, 1) == 0)
			return 0;
		atomic_store(&up->bs->no_direct, 1);
	}
	return set_direct(up, 0);
}

/* Writes len bytes at off, all of them or an error; *done says how many
 * reached the file. */
static int
write_at(struct blob_upload *up, const unsigned char *p, size_t len,
         uint64_t off, size_t *done)
{
	int rc, eintr = 0;

	*done = 0;
	while (*done < len) {
		ssize_t n;

		if ((rc = choose_path(up, p + *done, len - *done,
		                      off + *done)) < 0)
			return rc;
		n = pwrite(up->fd, p + *done, len - *done,
		           (off_t)(off + *done));
		if (n < 0 && errno == EINTR && eintr++ < BLOB_EINTR_MAX)
			continue;
		if (n < 0 && errno == EINVAL && up->direct) {
			/* O_DIRECT accepted by fcntl, refused by the
			 * filesystem's write path: stay with the cache. */
			atomic_store(&up->bs->no_direct, 1);
			continue;
		}
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		*done += (size_t)n;
	}
	return 0;
}

/* Starts writeback of what the page cache holds of the upload every
 * BLOB_KICK_BYTES. Only a hint: a failure shows up at the commit's fsync;
 * ranges written with O_DIRECT have no dirty pages to start. */
static void
kick_writeback(struct blob_upload *up, uint64_t end)
{
	if (end - up->kicked < BLOB_KICK_BYTES)
		return;
	(void)sync_file_range(up->fd, (off_t)up->kicked,
	                      (off_t)(end - up->kicked), SYNC_FILE_RANGE_WRITE);
	up->kicked = end;
}

int
blob_upload_write(struct blob_upload *up, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t done = 0;
	int rc;

	if ((rc = upload_wait(up, 0)) < 0)
		return rc;
	if (up->broken)
		return -EIO;
	rc = write_at(up, p, len, up->offset, &done);
	if (rc == 0 && !EVP_DigestUpdate(up->ctx, p, len)) {
		/* The hash may have absorbed part of buf: rebuild it from
		 * the file on the next acquire. */
		rc = -EIO;
		up->broken = 1;
	}
	if (rc < 0) {
		/* Drop whatever part of buf reached the file. Should this
		 * fail too, commit trims the file to the offset again. */
		if (done > 0 && ftruncate(up->fd, (off_t)up->offset) < 0) {
			/* commit trims the file before it hashes anything */
		}
		return rc;
	}
	up->offset += len;
	kick_writeback(up, up->offset);
	return 0;
}

/* ---- writer threads ---- */

/* Queues a flush of up (caller holds bs->wlock) unless one is pending. */
static void
flush_queue(struct blob_store *bs, struct blob_upload *up)
{
	if (up->fpending)
		return;
	up->fpending = 1;
	up->fnext = NULL;
	if (bs->ftail != NULL)
		bs->ftail->fnext = up;
	else
		bs->fhead = up;
	bs->ftail = up;
	pthread_cond_signal(&bs->wwork);
}

static void
run_write(struct blob_store *bs, struct blob_upload *up)
{
	size_t done;
	int rc;

	/* The request that submitted waits for this write before it touches
	 * the fd or up's offsets again. */
	rc = write_at(up, up->wbuf, up->wlen, up->woff, &done);
	if (rc == 0)
		kick_writeback(up, up->woff + up->wlen);
	pthread_mutex_lock(&bs->wlock);
	up->wrc = rc;
	up->wpending = 0;
	if (rc == 0 && up->woff + up->wlen - up->flushed >= BLOB_FLUSH_BYTES)
		flush_queue(bs, up);
	pthread_cond_broadcast(&bs->wdone);
	pthread_mutex_unlock(&bs->wlock);
}

static void
run_flush(struct blob_store *bs, struct blob_upload *up)
{
	uint64_t end;
	int rc;

	/* Bytes handed to the kernel before now are covered. */
	pthread_mutex_lock(&bs->wlock);
	end = up->wpending ? up->woff : up->woff + up->wlen;
	pthread_mutex_unlock(&bs->wlock);
	rc = fdatasync(up->fd) < 0 ? -errno : 0;
	pthread_mutex_lock(&bs->wlock);
	if (rc < 0)
		up->frc = rc;
	else if (end > up->flushed)
		up->flushed = end;
	up->fpending = 0;
	pthread_cond_broadcast(&bs->wdone);
	pthread_mutex_unlock(&bs->wlock);
}

static void *
writer_main(void *arg)
{
	struct blob_store *bs = arg;

	pthread_mutex_lock(&bs->wlock);
	for (;;) {
		struct blob_upload *up;

		while (bs->whead == NULL && bs->fhead == NULL && !bs->wstop)
			pthread_cond_wait(&bs->wwork, &bs->wlock);
		if (bs->whead != NULL) {
			up = bs->whead;
			bs->whead = up->wnext;
			if (bs->whead == NULL)
				bs->wtail = NULL;
			pthread_mutex_unlock(&bs->wlock);
			run_write(bs, up);
		} else if (bs->fhead != NULL) {
			up = bs->fhead;
			bs->fhead = up->fnext;
			if (bs->fhead == NULL)
				bs->ftail = NULL;
			pthread_mutex_unlock(&bs->wlock);
			run_flush(bs, up);
		} else {
			break; /* stopping, queues drained */
		}
		pthread_mutex_lock(&bs->wlock);
	}
	pthread_mutex_unlock(&bs->wlock);
	return NULL;
}

static void
writers_start(struct blob_store *bs)
{
	pthread_attr_t attr;

	if (pthread_attr_init(&attr) != 0)
		return;
	(void)pthread_attr_setstacksize(&attr, BLOB_WRITER_STACK);
	while (bs->nwriters < BLOB_WRITERS &&
	       pthread_create(&bs->writers[bs->nwriters], &attr, writer_main,
	                      bs) == 0)
		bs->nwriters++;
	pthread_attr_destroy(&attr);
}

static void
writers_stop(struct blob_store *bs)
{
	pthread_mutex_lock(&bs->wlock);
	bs->wstop = 1;
	pthread_cond_broadcast(&bs->wwork);
	pthread_mutex_unlock(&bs->wlock);
	while (bs->nwriters > 0)
		pthread_join(bs->writers[--bs->nwriters], NULL);
}

/* Waits for the upload's submitted write and, with all, for its flush.
 * If the write failed, the file is cut back to where that write began and
 * the upload is marked broken: its hash already holds the lost bytes, so
 * it is rebuilt from the file by the next acquire. If a flush failed, the
 * kernel may have dropped bytes it could not write and a later fsync need
 * not say so again: the upload starts over from zero. */
static int
upload_wait(struct blob_upload *up, int all)
{
	struct blob_store *bs = up->bs;
	int rc, frc = 0;

	pthread_mutex_lock(&bs->wlock);
	while (up->wpending || (all && up->fpending))
		pthread_cond_wait(&bs->wdone, &bs->wlock);
	rc = up->wrc;
	up->wrc = 0;
	if (all) {
		frc = up->frc;
		up->frc = 0;
	}
	pthread_mutex_unlock(&bs->wlock);
	if (rc < 0) {
		up->offset = up->woff;
		up->broken = 1;
		if (ftruncate(up->fd, (off_t)up->woff) < 0) {
			/* commit trims the file before it hashes anything */
		}
	}
	if (frc < 0) {
		up->offset = 0;
		up->broken = 1;
		if (ftruncate(up->fd, 0) < 0) {
			/* the upload stays broken; commit refuses it */
		}
		rc = frc;
	}
	return rc;
}

int
blob_upload_submit(struct blob_upload *up, const void *buf, size_t len)
{
	struct blob_store *bs = up->bs;
	int rc;

	if ((rc = upload_wait(up, 0)) < 0)
		return rc;
	if (up->broken)
		return -EIO;
	if (bs->nwriters == 0)
		return blob_upload_write(up, buf, len);
	if (len == 0)
		return 0;
	if (!EVP_DigestUpdate(up->ctx, buf, len)) {
		up->broken = 1;
		return -EIO;
	}
	pthread_mutex_lock(&bs->wlock);
	up->wbuf = buf;
	up->wlen = len;
	up->woff = up->offset;
	up->offset += len;
	up->wpending = 1;
	up->wnext = NULL;
	if (bs->wtail != NULL)
		bs->wtail->wnext = up;
	else
		bs->whead = up;
	bs->wtail = up;
	pthread_cond_signal(&bs->wwork);
	pthread_mutex_unlock(&bs->wlock);
	return 0;
}

int
blob_upload_sync(struct blob_upload *up)
{
	int rc = upload_wait(up, 0);

	if (rc == 0 && up->broken)
		rc = -EIO;
	return rc;
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
	if ((rc = upload_wait(up, 1)) < 0 || (rc = blob_upload_sync(up)) < 0)
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

	if (!uuid_valid(uuid))
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
blob_upload_delete(struct blob_store *bs, const char *uuid)
{
	struct blob_upload *up;
	char path[PATH_MAX];
	int rc;

	if (!uuid_valid(uuid))
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

/* ---- the data-directory lock ---- */

static int
lock_path(const char *datadir, char *buf, size_t len)
{
	int n;

	if (datadir == NULL || *datadir == '\0')
		return -EINVAL;
	n = snprintf(buf, len, "%s/lock", datadir);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int
blob_data_lock(const char *datadir, int *fd_out)
{
	char path[PATH_MAX], pid[32];
	int fd, rc, n, eintr = 0;

	if ((rc = lock_path(datadir, path, sizeof(path))) < 0)
		return rc;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR && eintr++ < BLOB_EINTR_MAX)
			continue;
		rc = errno == EWOULDBLOCK ? RC_BUSY : -errno;
		close(fd);
		return rc;
	}
	/* The pid is for the message of the next process that finds the
	 * directory taken; the flock alone is the lock. */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		rc = -errno;
		close(fd);
		return rc != 0 ? rc : -EIO;
	}
	*fd_out = fd;
	return 0;
}

void
blob_data_unlock(int fd)
{
	if (fd < 0)
		return;
	/* Empty the file first: a pid left behind would name a process
	 * that no longer holds anything. */
	if (ftruncate(fd, 0) < 0) {
		/* harmless: the next holder rewrites it */
	}
	close(fd); /* releases the flock */
}

int
blob_data_lock_owner(const char *datadir, long *pid)
{
	char path[PATH_MAX], buf[32], *end;
	ssize_t n;
	long v;
	int fd, rc;

	if ((rc = lock_path(datadir, path, sizeof(path))) < 0)
		return rc;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? RC_NOT_FOUND : -errno;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc < 0)
		return rc;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (end == buf || (*end != '\n' && *end != '\0') || errno != 0 ||
	    v <= 0)
		return RC_NOT_FOUND;
	*pid = v;
	return 0;
}

/* ---- walks of the files ---- */

/* dir/name into out. */
static int
walk_join(char *out, size_t len, const char *dir, const char *name)
{
	int n = snprintf(out, len, "%s/%s", dir, name);

	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

/* Stats name inside d (never following a symlink) and hands it to fn.
 * An entry gone since readdir is skipped. */
static int
walk_emit(DIR *d, const char *name, const char *rel, const char *id,
          blob_entry_fn fn, void *arg)
{
	struct blob_entry e;
	struct stat st;

	if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	e.path = rel;
	e.id = id;
	e.regular = S_ISREG(st.st_mode);
	e.size = e.regular ? (uint64_t)st.st_size : 0;
	e.mtime = (int64_t)st.st_mtim.tv_sec;
	return fn(&e, arg);
}

static int
is_hex_name(const char *s, size_t n)
{
	if (strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_hex(s[i]))
			return 0;
	return 1;
}

/* The files of one DATA/blobs/sha256/<2 hex> directory. */
static int
walk_blob_dir(struct blob_store *bs, const char *sub, blob_entry_fn fn,
              void *arg)
{
	char dir[PATH_MAX], rel[PATH_MAX], reldir[64], id[DIGEST_BUF];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(reldir, sizeof(reldir), "blobs/sha256/%.2s", sub);
	if ((rc = walk_join(dir, sizeof(dir), bs->blobs, sub)) < 0)
		return rc;
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	while (rc == 0) {
		int ok;

		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			rc = errno != 0 ? -errno : 0;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((rc = walk_join(rel, sizeof(rel), reldir, de->d_name)) < 0)
			break;
		ok = is_hex_name(de->d_name, DIGEST_HEX_LEN) &&
		     memcmp(de->d_name, sub, 2) == 0;
		if (ok) {
			memcpy(id, "sha256:", 7);
			memcpy(id + 7, de->d_name, DIGEST_HEX_LEN + 1);
		}
		rc = walk_emit(d, de->d_name, rel, ok ? id : NULL, fn, arg);
	}
	closedir(d);
	return rc;
}

int
blob_files_walk(struct blob_store *bs, blob_entry_fn fn, void *arg)
{
	char rel[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = 0;

	d = opendir(bs->blobs);
	if (d == NULL)
		return -errno;
	while (rc == 0) {
		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			rc = errno != 0 ? -errno : 0;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (is_hex_name(de->d_name, 2) &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		            0 &&
		    S_ISDIR(st.st_mode)) {
			rc = walk_blob_dir(bs, de->d_name, fn, arg);
			continue;
		}
		if ((rc = walk_join(rel, sizeof(rel), "blobs/sha256",
		                    de->d_name)) < 0)
			break;
		rc = walk_emit(d, de->d_name, rel, NULL, fn, arg);
	}
	closedir(d);
	return rc;
}

int
blob_uploads_walk(struct blob_store *bs, blob_entry_fn fn, void *arg)
{
	char rel[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	d = opendir(bs->uploads);
	if (d == NULL)
		return -errno;
	while (rc == 0) {
		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			rc = errno != 0 ? -errno : 0;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((rc = walk_join(rel, sizeof(rel), "uploads", de->d_name)) <
		    0)
			break;
		rc = walk_emit(d, de->d_name, rel,
		               uuid_valid(de->d_name) ? de->d_name : NULL, fn,
		               arg);
	}
	closedir(d);
	return rc;
}

int
blob_file_hash(struct blob_store *bs, const char *digest, char out[DIGEST_BUF])
{
	unsigned char raw[EVP_MAX_MD_SIZE], *buf = NULL;
	EVP_MD_CTX *ctx = NULL;
	unsigned int n = 0;
	uint64_t size;
	int fd = -1, rc, eintr = 0;

	if ((rc = blob_open(bs, digest, &fd, &size)) < 0)
		return rc;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	ctx = EVP_MD_CTX_new();
	buf = malloc(BLOB_READ_CHUNK);
	if (ctx == NULL || buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (!EVP_DigestInit_ex(ctx, bs->md, NULL)) {
		rc = -EIO;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf, BLOB_READ_CHUNK);

		if (r < 0 && errno == EINTR && eintr++ < BLOB_EINTR_MAX)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		if (!EVP_DigestUpdate(ctx, buf, (size_t)r)) {
			rc = -EIO;
			goto out;
		}
	}
	if (!EVP_DigestFinal_ex(ctx, raw, &n) || n != 32) {
		rc = -EIO;
		goto out;
	}
	digest_from_raw(raw, out);
	rc = 0;
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	close(fd);
	return rc;
}
