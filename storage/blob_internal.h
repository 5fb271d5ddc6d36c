/* Internals of the blob store shared by storage/blob*.c: the store and
 * upload structs, the constants they need, and the few functions one file
 * calls in another. Nothing outside storage/blob*.c may include this file.
 *
 *   blob.c         the store, stored blobs, the upload table and the
 *                  uploads' life cycle (create, acquire, release, commit)
 *   blob_writer.c  an upload's bytes on their way to disk: the write path
 *                  (O_DIRECT or the page cache) and the writer threads
 *   blob_files.c   the data-directory lock, walks of the files for
 *                  `berth check`, and the hash of a stored file */
#ifndef BERTH_STORAGE_BLOB_INTERNAL_H
#define BERTH_STORAGE_BLOB_INTERNAL_H

#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/blob.h"

#define BLOB_READ_CHUNK (1u << 20) /* buffer for hash rebuilds */
#define BLOB_EINTR_MAX  1000       /* bound on retries after EINTR */
#define BLOB_WRITERS    4          /* threads writing submitted batches */

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

/* ---- names (blob.c) ---- */

/* 1 for xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx in lower-case hex. */
int blob_uuid_valid(const char *s);
/* 1 when s is exactly n lower-case hex characters. */
int blob_hex_name(const char *s, size_t n);

/* ---- writer threads (blob_writer.c) ---- */

/* Starts the writer threads; without them, submitted batches are written
 * inline. */
void blob_writers_start(struct blob_store *bs);
/* Stops them once their queues are drained. */
void blob_writers_stop(struct blob_store *bs);
/* Waits for the upload's submitted write and, with all, for its flush; a
 * failure marks the upload broken (see blob_writer.c). */
int blob_upload_wait(struct blob_upload *up, int all);

#endif
