/* Backup archives: one tar stream (ustar, with a pax extended header for
 * a member ustar cannot describe) compressed as one zstd frame with its
 * content checksum, written and read in bounded memory whatever its size.
 *
 * A berth backup holds, in this order:
 *   berth-backup.json       what it is: format, version, the index schema,
 *                           when, which repositories, the counts
 *   index.rows              the index rows of the snapshot
 *                           (meta_backup_snapshot)
 *   blobs/sha256/<hex>      every blob those rows reference, digest order
 *   berth-backup.end        the counts again: the archive is complete
 * A reader accepts a member only after its tar checksum, the archive only
 * with its end blocks and the whole zstd frame (checksum included). */
#ifndef BERTH_STORAGE_BACKUP_H
#define BERTH_STORAGE_BACKUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct blob_store;
struct meta;

#define BACKUP_HEADER_NAME   "berth-backup.json"
#define BACKUP_ROWS_NAME     "index.rows"
#define BACKUP_END_NAME      "berth-backup.end"
#define BACKUP_BLOB_PREFIX   "blobs/sha256/"
#define BACKUP_FORMAT        "berth-backup"
#define BACKUP_VERSION       1
#define BACKUP_LEVEL_MIN     1
#define BACKUP_LEVEL_MAX     19
#define BACKUP_LEVEL_DEFAULT 3
#define BACKUP_NAME_MAX      100 /* longest member name */

/* ---- the archive writer ---- */

/* A member to write: size bytes from data, or (data NULL) read from fd. */
struct backup_member {
	const char *name;
	uint64_t size;
	const void *data;
	int fd;
};

/* Yields the next member into *m: 1 a member, 0 no more, < 0 an error
 * (the stream ends there, incomplete). m's data, fd and name stay valid
 * until the next call. */
typedef int (*backup_next_fn)(void *arg, struct backup_member *m);

struct backup_writer;

/* level: zstd's (BACKUP_LEVEL_MIN..MAX); workers: zstd's compression
 * threads, 0 for none (a library without them compresses in the
 * caller's thread). */
int backup_writer_open(int level, int workers, backup_next_fn next, void *arg,
                       struct backup_writer **out)
        __attribute__((warn_unused_result));
/* Up to max bytes of the compressed stream into buf: the number of bytes,
 * 0 once it is complete, or < 0 an error (from next, a read, zstd). */
ssize_t backup_writer_read(struct backup_writer *w, void *buf, size_t max);
/* Archive bytes before and after compression so far. */
void backup_writer_counts(const struct backup_writer *w, uint64_t *tar_bytes,
                          uint64_t *zst_bytes);
void backup_writer_close(struct backup_writer *w);

/* ---- the archive reader ---- */

/* Called per member: begin (name, size), data in pieces, end. A non-zero
 * return stops the read and is returned by it. */
struct backup_reader_cb {
	int (*begin)(void *arg, const char *name, uint64_t size);
	int (*data)(void *arg, const void *p, size_t n);
	int (*end)(void *arg);
	void *arg;
};

/* Reads an archive from fd to its end. RC_OK when it is complete and
 * sound; RC_CORRUPT with one line in err for damage (a zstd error, the
 * frame's checksum, a tar header's checksum, bytes after the end),
 * RC_SIZE_INVALID with a line when it ends early (truncated), a callback's
 * code as it returned it (err untouched), -errno for a read error. */
int backup_read(int fd, const struct backup_reader_cb *cb, char *err,
                size_t errlen) __attribute__((warn_unused_result));

/* ---- a berth backup ---- */

struct backup_stream;

struct backup_stream_options {
	const char *const *repos; /* repository globs; n_repos 0: all */
	size_t n_repos;
	int level, workers; /* as for backup_writer_open */
	uint64_t now;       /* seconds, for the header */
	/* Test hook: when not NULL, the stream creates HOLD.snap once its
	 * snapshot is taken and, before its first blob, waits while HOLD
	 * exists (60 s at most). */
	const char *test_hold;
};

/* Takes the snapshot (meta_backup_snapshot) and sets up the archive of
 * it. The caller keeps the collector from unlinking blob files (gc_hold)
 * from before this call until the stream is closed. */
int backup_stream_open(struct meta *m, struct blob_store *bs,
                       const struct backup_stream_options *o,
                       struct backup_stream **out)
        __attribute__((warn_unused_result));
/* As backup_writer_read. */
ssize_t backup_stream_read(struct backup_stream *s, void *buf, size_t max);

struct backup_stream_stats {
	uint64_t repositories, manifests, tags, blobs, blob_bytes;
	uint64_t tar_bytes, zst_bytes; /* so far */
	uint64_t blobs_sent;
};
void backup_stream_stats(struct backup_stream *s,
                         struct backup_stream_stats *out);
void backup_stream_close(struct backup_stream *s);

#endif
