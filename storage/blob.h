/* Content-addressed blob files and upload sessions on the local filesystem.
 * No LMDB and no HTTP here: the registry commits the index entry (meta.h)
 * after blob_upload_commit() has made the file durable.
 *
 *   DATA/blobs/sha256/<2 hex>/<64 hex>   immutable content, written once
 *   DATA/uploads/<uuid>                  bytes of an upload in progress
 *
 * Write order of a blob: append to uploads/<uuid> while hashing -> fsync ->
 * verify digest and size -> rename() into blobs/ (skipped when the blob is
 * already there) -> fsync the directory. A crash can leave an orphan file,
 * never a visible blob with wrong content. */
#ifndef BERTH_STORAGE_BLOB_H
#define BERTH_STORAGE_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

#define BLOB_UUID_BUF 37 /* 36 chars of a v4 UUID + NUL */

struct blob_store;
struct blob_upload;

/* Opens (creating when missing) DATA/blobs and DATA/uploads under datadir.
 * Fails with a negative errno when the directory is not writable. */
int blob_store_open(const char *datadir, struct blob_store **out)
        __attribute__((warn_unused_result));
void blob_store_close(struct blob_store *bs);

/* Size of a stored blob; RC_BLOB_UNKNOWN when its file is missing. */
int blob_stat(struct blob_store *bs, const char *digest, uint64_t *size)
        __attribute__((warn_unused_result));

/* Opens a stored blob read-only; the caller owns *fd. */
int blob_open(struct blob_store *bs, const char *digest, int *fd,
              uint64_t *size) __attribute__((warn_unused_result));

/* Reads a stored blob whole into *out (malloc'd, len bytes; free it):
 * RC_BLOB_UNKNOWN when absent, RC_TOO_LARGE above max bytes, -EIO. For
 * small blobs such as an image config. */
int blob_read(struct blob_store *bs, const char *digest, size_t max, char **out,
              size_t *len) __attribute__((warn_unused_result));

/* Unlinks a stored blob file: the collector's and check's, and a push's
 * whose index entry could not be written. RC_BLOB_UNKNOWN if absent. */
int blob_remove(struct blob_store *bs, const char *digest)
        __attribute__((warn_unused_result));

/* Serialises, per digest, the collector's last unlink of a blob file with a
 * commit of the same content: the committer holds it from
 * blob_upload_commit until its index entry is written, the collector from
 * its check that no index entry exists until the unlink. */
#define BLOB_DIGEST_LOCKS 64
void blob_digest_lock(struct blob_store *bs, const char *digest);
void blob_digest_unlock(struct blob_store *bs, const char *digest);

/* Path of a blob file, for diagnostics and `berth check`. */
int blob_path(struct blob_store *bs, const char *digest, char *buf, size_t len)
        __attribute__((warn_unused_result));

/* Creates an empty upload file with a fresh random v4 UUID. */
int blob_upload_create(struct blob_store *bs, char uuid[BLOB_UUID_BUF])
        __attribute__((warn_unused_result));

/* Checks an upload out for exclusive use by one request. An upload kept
 * open since its last request resumes its hash state; otherwise (new
 * process, evicted) the hash is rebuilt by reading the file once.
 * RC_UPLOAD_UNKNOWN when no such upload, RC_BUSY when another request holds
 * it. The uuid is validated here (only a v4-shaped UUID is accepted). */
int blob_upload_acquire(struct blob_store *bs, const char *uuid,
                        struct blob_upload **out)
        __attribute__((warn_unused_result));

/* Gives the upload back; its hash state is kept in memory for the next
 * request (bounded cache, least recently used evicted). NULL is fine. */
void blob_upload_release(struct blob_upload *up);

/* Bytes received so far. */
uint64_t blob_upload_offset(const struct blob_upload *up);

/* Appends len bytes and updates the hash. On a write error (ENOSPC...) the
 * file is truncated back to the offset before this call, so the upload stays
 * consistent and can be retried. A large write whose buffer address, length
 * and file offset are multiples of BLOB_WRITE_ALIGN goes to the disk around
 * the page cache (O_DIRECT, where the filesystem allows it); callers that
 * batch should allocate aligned buffers and end batches on that boundary. */
#define BLOB_WRITE_ALIGN 4096u

int blob_upload_write(struct blob_upload *up, const void *buf, size_t len)
        __attribute__((warn_unused_result));

/* Like blob_upload_write, but the write to disk happens on a writer thread
 * while the caller goes on (receiving and hashing the next batch): the
 * offset advances at once, and buf must stay unchanged until the next call
 * of submit, sync, commit or release on this upload, each of which waits
 * for the write first. A failed write surfaces as the error of that next
 * call; the file is then cut back to where the write began and the upload
 * is dropped from the cache on release (its hash is rebuilt from the file
 * by the next acquire). */
int blob_upload_submit(struct blob_upload *up, const void *buf, size_t len)
        __attribute__((warn_unused_result));

/* Waits for a submitted write; 0 when everything submitted is in the
 * file. */
int blob_upload_sync(struct blob_upload *up)
        __attribute__((warn_unused_result));

/* Finishes an upload: fsync, compare the content's digest with
 * expected_digest (RC_DIGEST_INVALID on mismatch, upload kept so the client
 * may retry), rename into blobs/ (or drop the duplicate when the blob
 * exists), fsync the directory. On success the upload is gone, *size holds
 * the blob's size, and up is freed (do not release it). On failure up stays
 * acquired and must still be released. */
int blob_upload_commit(struct blob_upload *up, const char *expected_digest,
                       uint64_t *size) __attribute__((warn_unused_result));

/* 1 when a request holds the upload right now. */
int blob_upload_busy(struct blob_store *bs, const char *uuid);

/* Size and last modification (a byte received) of an upload's file.
 * RC_UPLOAD_UNKNOWN when absent. */
int blob_upload_stat(struct blob_store *bs, const char *uuid, uint64_t *size,
                     uint64_t *mtime) __attribute__((warn_unused_result));

/* Bytes an upload holds, for its status, without taking it: a request
 * that holds it meanwhile (say a PATCH whose body stalled) keeps it, and
 * nothing is hashed. An idle upload in memory answers its offset; any
 * other, its file's size: what is written there is what a request that
 * goes on after the holder resumes from (the holder's unwritten batch is
 * dropped when it is cut). RC_UPLOAD_UNKNOWN when absent. */
int blob_upload_stored(struct blob_store *bs, const char *uuid, uint64_t *size)
        __attribute__((warn_unused_result));

/* Deletes an upload's file (and its cached state). RC_UPLOAD_UNKNOWN when
 * absent, RC_BUSY when acquired by a request. */
int blob_upload_delete(struct blob_store *bs, const char *uuid)
        __attribute__((warn_unused_result));

/* ---- the data-directory lock ---- */

/* Takes DATA/lock (created with mode 0600 when missing) with an exclusive,
 * non-blocking flock and writes this process's pid into it, so that two
 * berth processes (two servers, a server and `berth check`) never work on
 * one data directory. *fd_out holds the lock until blob_data_unlock (or the
 * process's exit). RC_BUSY when another process holds it: its pid is then
 * readable with blob_data_lock_owner. */
int blob_data_lock(const char *datadir, int *fd_out)
        __attribute__((warn_unused_result));
void blob_data_unlock(int fd);

/* The pid the holder of DATA/lock wrote into it. RC_NOT_FOUND when the file
 * holds none (not locked, or the holder has not written it yet). */
int blob_data_lock_owner(const char *datadir, long *pid)
        __attribute__((warn_unused_result));

/* ---- walks of the files, for `berth check` ---- */

struct blob_entry {
	const char *path; /* relative to DATA: "blobs/sha256/ab/ab…",
	                     "uploads/<uuid>" */
	const char *id;   /* the digest "sha256:<hex>" of a blob file at its
	                     digest's place, the uuid of an upload file; NULL
	                     for any other entry */
	uint64_t size;
	int64_t mtime; /* seconds since the epoch */
	int regular;   /* 0: a directory, symlink or other special file */
};

/* Called for every entry found; a non-zero return stops the walk and is
 * returned by it. The entry is valid during the call only. */
typedef int (*blob_entry_fn)(const struct blob_entry *e, void *arg);

/* Every entry under DATA/blobs/sha256: the files of the two-hex-digit
 * directories, and anything else found there (not descended into). */
int blob_files_walk(struct blob_store *bs, blob_entry_fn fn, void *arg)
        __attribute__((warn_unused_result));

/* Every entry of DATA/uploads. */
int blob_uploads_walk(struct blob_store *bs, blob_entry_fn fn, void *arg)
        __attribute__((warn_unused_result));

/* SHA-256 of a stored blob file's content ("sha256:<hex>" into out), read
 * once. RC_BLOB_UNKNOWN when the file is missing. */
int blob_file_hash(struct blob_store *bs, const char *digest,
                   char out[DIGEST_BUF]) __attribute__((warn_unused_result));

#endif
