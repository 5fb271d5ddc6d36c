/* An upload's bytes on their way to disk: the write path (O_DIRECT for
 * large aligned batches, the page cache otherwise, writeback started while
 * the upload arrives), blob_upload_write, and the writer threads that do
 * the pwrite of submitted batches (blob_upload_submit) and the periodic
 * flushes of large uploads. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "storage/blob_internal.h"

#define BLOB_WRITER_STACK (64u * 1024u)

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

/* ---- the write path ---- */

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

	if ((rc = blob_upload_wait(up, 0)) < 0)
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

void
blob_writers_start(struct blob_store *bs)
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

void
blob_writers_stop(struct blob_store *bs)
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
int
blob_upload_wait(struct blob_upload *up, int all)
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

	if ((rc = blob_upload_wait(up, 0)) < 0)
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
	int rc = blob_upload_wait(up, 0);

	if (rc == 0 && up->broken)
		rc = -EIO;
	return rc;
}
