/* The blob store's files seen from outside an upload: the data-directory
 * lock (one berth process per DATA), the walks of blobs/ and uploads/ for
 * `berth check`, and the hash of a stored blob file read back. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/rc.h"
#include "storage/blob_internal.h"

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
	 * directory taken; the flock alone is the lock. On a full volume
	 * the file stays empty: a server must start there, since deletes
	 * and collection runs are how space comes back. */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0) {
		rc = -errno;
	} else {
		ssize_t w = pwrite(fd, pid, (size_t)n, 0);
		rc = w == n ? 0 : w < 0 ? -errno : -EIO;
	}
	if (rc != 0 && rc != -ENOSPC && rc != -EDQUOT) {
		close(fd);
		return rc;
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

/* The next entry of d other than "." and "..": 1 with *de set, 0 at the
 * end, a negative errno on error. */
static int
dir_next(DIR *d, struct dirent **de)
{
	for (;;) {
		errno = 0;
		*de = readdir(d);
		if (*de == NULL)
			return errno != 0 ? -errno : 0;
		if (strcmp((*de)->d_name, ".") != 0 &&
		    strcmp((*de)->d_name, "..") != 0)
			return 1;
	}
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
	while ((rc = dir_next(d, &de)) > 0) {
		int ok;

		if ((rc = walk_join(rel, sizeof(rel), reldir, de->d_name)) < 0)
			break;
		ok = blob_hex_name(de->d_name, DIGEST_HEX_LEN) &&
		     memcmp(de->d_name, sub, 2) == 0;
		if (ok) {
			memcpy(id, "sha256:", 7);
			memcpy(id + 7, de->d_name, DIGEST_HEX_LEN + 1);
		}
		if ((rc = walk_emit(d, de->d_name, rel, ok ? id : NULL, fn,
		                    arg)) != 0)
			break;
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
	while ((rc = dir_next(d, &de)) > 0) {
		if (blob_hex_name(de->d_name, 2) &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		            0 &&
		    S_ISDIR(st.st_mode)) {
			if ((rc = walk_blob_dir(bs, de->d_name, fn, arg)) != 0)
				break;
			continue;
		}
		if ((rc = walk_join(rel, sizeof(rel), "blobs/sha256",
		                    de->d_name)) < 0)
			break;
		if ((rc = walk_emit(d, de->d_name, rel, NULL, fn, arg)) != 0)
			break;
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
	while ((rc = dir_next(d, &de)) > 0) {
		if ((rc = walk_join(rel, sizeof(rel), "uploads", de->d_name)) <
		    0)
			break;
		if ((rc = walk_emit(d, de->d_name, rel,
		                    blob_uuid_valid(de->d_name) ? de->d_name
		                                                : NULL,
		                    fn, arg)) != 0)
			break;
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
