/* The data volume as a running server sees it: --min-free and readiness
 * (see space.h). */
#include "storage/space.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/rc.h"

struct space {
	char dir[PATH_MAX];
	char index[PATH_MAX];   /* DATA/meta/data.mdb */
	char uploads[PATH_MAX]; /* DATA/uploads */
	char blobs[PATH_MAX];   /* DATA/blobs/sha256 */
	struct space_min min;
	dev_t dir_dev, index_dev;
	ino_t dir_ino, index_ino;
	atomic_int ready; /* the last answer of space_ready */
};

/* ---- --min-free ---- */

/* Decimal digits at *p into *v (no sign, at least one digit, no
 * overflow); advances *p. */
static int
digits(const char **p, uint64_t *v)
{
	const char *s = *p;

	*v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (*v > (UINT64_MAX - d) / 10)
			return -1;
		*v = *v * 10 + d;
	}
	*p = s;
	return 0;
}

/* "5", "5.2", "5.25" percent, at most 100: hundredths of a percent. */
static int
percent(const char *s, const char *end, unsigned *bp)
{
	uint64_t whole, frac = 0;
	size_t nfrac = 0;

	if (digits(&s, &whole) != 0 || whole > 100)
		return -1;
	if (s < end && *s == '.') {
		for (s++; s < end && *s >= '0' && *s <= '9'; s++, nfrac++)
			frac = frac * 10 + (uint64_t)(*s - '0');
		if (nfrac == 0 || nfrac > 2)
			return -1;
		if (nfrac == 1)
			frac *= 10;
	}
	if (s != end || whole * 100 + frac > 10000)
		return -1;
	*bp = (unsigned)(whole * 100 + frac);
	return 0;
}

/* One part of a --min-free value, s[0..len): a percentage into *bp or a
 * size into *bytes; *is_pct says which. */
static int
min_part(const char *s, size_t len, uint64_t *bytes, unsigned *bp, int *is_pct)
{
	static const char units[] = "KMGT";
	const char *p = s, *end = s + len, *u;
	uint64_t v;

	if (len == 0)
		return -1;
	*is_pct = s[len - 1] == '%';
	if (*is_pct)
		return percent(s, end - 1, bp);
	if (digits(&p, &v) != 0 || p > end)
		return -1;
	if (p < end) {
		char c = *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;

		if ((u = strchr(units, c)) == NULL || c == '\0')
			return -1;
		p++;
		if (p < end && *p == 'i')
			p++;
		if (p != end)
			return -1;
		for (long i = 0; i <= u - units; i++) {
			if (v > UINT64_MAX / 1024)
				return -1;
			v *= 1024;
		}
	}
	*bytes = v;
	return 0;
}

int
space_min_parse(const char *s, struct space_min *out)
{
	struct space_min m = {0, 0};
	const char *comma;
	size_t len;
	int pct1, pct2;

	if (s == NULL)
		return RC_BAD_REQUEST;
	len = strlen(s);
	comma = strchr(s, ',');
	if (min_part(s, comma != NULL ? (size_t)(comma - s) : len, &m.bytes,
	             &m.bp, &pct1) != 0)
		return RC_BAD_REQUEST;
	/* a size and a share, in either order: the larger counts */
	if (comma != NULL && (min_part(comma + 1, len - (size_t)(comma + 1 - s),
	                               &m.bytes, &m.bp, &pct2) != 0 ||
	                      pct1 == pct2))
		return RC_BAD_REQUEST;
	*out = m;
	return RC_OK;
}

uint64_t
space_min_bytes(const struct space_min *min, uint64_t total)
{
	unsigned __int128 share = (unsigned __int128)total * min->bp / 10000;

	return share > min->bytes ? (uint64_t)share : min->bytes;
}

/* ---- the volume ---- */

int
space_open(const char *dir, const struct space_min *min, struct space **out)
{
	struct space *sp = calloc(1, sizeof(*sp));
	struct stat st;

	if (sp == NULL)
		return -ENOMEM;
	if ((size_t)snprintf(sp->dir, sizeof(sp->dir), "%s", dir) >=
	            sizeof(sp->dir) ||
	    (size_t)snprintf(sp->index, sizeof(sp->index), "%s/meta/data.mdb",
	                     dir) >= sizeof(sp->index) ||
	    (size_t)snprintf(sp->uploads, sizeof(sp->uploads), "%s/uploads",
	                     dir) >= sizeof(sp->uploads) ||
	    (size_t)snprintf(sp->blobs, sizeof(sp->blobs), "%s/blobs/sha256",
	                     dir) >= sizeof(sp->blobs)) {
		free(sp);
		return -ENAMETOOLONG;
	}
	if (stat(sp->dir, &st) != 0)
		goto fail;
	sp->dir_dev = st.st_dev;
	sp->dir_ino = st.st_ino;
	if (stat(sp->index, &st) != 0)
		goto fail;
	sp->index_dev = st.st_dev;
	sp->index_ino = st.st_ino;
	sp->min = *min;
	atomic_init(&sp->ready, 1);
	*out = sp;
	return RC_OK;
fail:
	free(sp);
	return -errno;
}

void
space_close(struct space *sp)
{
	free(sp);
}

int
space_check(struct space *sp, uint64_t *avail, uint64_t *need)
{
	struct statvfs vfs;

	if (sp == NULL || (sp->min.bytes == 0 && sp->min.bp == 0))
		return RC_OK;
	if (statvfs(sp->dir, &vfs) != 0)
		return RC_OK;
	*avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	*need = space_min_bytes(&sp->min,
	                        (uint64_t)vfs.f_blocks * vfs.f_frsize);
	return *avail < *need ? RC_SPACE_LOW : RC_OK;
}

/* Whether path is still the file or directory (dev, ino) it was. */
static int
same_file(const char *path, dev_t dev, ino_t ino, const char *what, char *why,
          size_t len)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		int e = errno;

		snprintf(why, len, "%s %s", what,
		         e == ENOENT ? "is gone" : strerror(e));
		return -e;
	}
	if (st.st_dev != dev || st.st_ino != ino) {
		snprintf(why, len, "%s is not the one opened at start", what);
		return -ESTALE;
	}
	return RC_OK;
}

/* Whether new files could be made in dir (access(2): permissions, and
 * EROFS on a read-only volume). */
static int
writable(const char *dir, const char *what, char *why, size_t len)
{
	int e;

	if (access(dir, W_OK | X_OK) == 0)
		return RC_OK;
	e = errno;
	snprintf(why, len, "%s is not writable (%s)", what, strerror(e));
	return -e;
}

int
space_ready(struct space *sp, char *why, size_t len, int *changed)
{
	int rc;

	*changed = 0;
	if (sp == NULL)
		return RC_OK;
	rc = same_file(sp->dir, sp->dir_dev, sp->dir_ino, "data directory", why,
	               len);
	if (rc == RC_OK)
		rc = same_file(sp->index, sp->index_dev, sp->index_ino,
		               "index file meta/data.mdb", why, len);
	if (rc == RC_OK)
		rc = writable(sp->uploads, "uploads/", why, len);
	if (rc == RC_OK)
		rc = writable(sp->blobs, "blobs/sha256/", why, len);
	if (rc == RC_OK && len > 0)
		why[0] = '\0';
	*changed = atomic_exchange(&sp->ready, rc == RC_OK) != (rc == RC_OK);
	return rc;
}
