/* Head room for the metadata index on a full volume. LMDB writes every
 * txn copy-on-write: even a delete writes new pages, either pages of its
 * freelist (inside the data file) or new ones past the last page, which
 * grow the file. On a volume with no byte free that growth fails, and
 * LMDB reports a short write as EIO. So the data file is kept allocated
 * (fallocate, not sparse) `reserve` bytes past its last page: a commit
 * that grows the index writes into blocks it already owns, and deletes
 * and collection runs go through on a full volume. The head room is
 * topped up at the start of write txns (under LMDB's writer lock) once
 * half of it is used, and is LMDB's alone: a blob upload cannot take it. */
#include "storage/meta_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "common/rc.h"

#define DEFAULT_RESERVE (8ull << 20)

void
meta_reserve_init(struct meta *m, uint64_t reserve)
{
	MDB_stat st;
	int fd = -1;

	m->map_fd = -1;
	m->map_alloc = 0;
	m->reserve = reserve != 0 ? reserve : DEFAULT_RESERVE;
	if (reserve == META_RESERVE_NONE)
		m->reserve = 0;
	if (mdb_env_stat(m->env, &st) != MDB_SUCCESS ||
	    mdb_env_get_fd(m->env, &fd) != MDB_SUCCESS || fd < 0)
		return;
	m->psize = st.ms_psize;
	m->map_fd = fd;
	if (m->reserve < m->psize)
		m->reserve = 0;
}

/* Allocates [off, off + len) of the data file; on failure the part a
 * filesystem may have allocated (i_size moved) still counts. */
static int
allocate(struct meta *m, uint64_t off, uint64_t len)
{
	struct stat st;
	int rc;

	do
		rc = fallocate(m->map_fd, 0, (off_t)off, (off_t)len);
	while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		if (off + len > m->map_alloc)
			m->map_alloc = off + len;
		return 0;
	}
	rc = -errno;
	if (fstat(m->map_fd, &st) == 0 && (uint64_t)st.st_size > m->map_alloc)
		m->map_alloc = (uint64_t)st.st_size;
	return rc;
}

void
meta_reserve_keep(struct meta *m)
{
	MDB_envinfo info;
	uint64_t used;

	if (m->reserve == 0 || m->map_fd < 0)
		return;
	if (mdb_env_info(m->env, &info) != MDB_SUCCESS)
		return;
	used = ((uint64_t)info.me_last_pgno + 1) * m->psize;
	if (m->map_alloc >= used + m->reserve / 2) {
		atomic_store(&m->map_room, m->map_alloc - used);
		return;
	}
	/* The whole head room, else as much of it as the volume has left
	 * (a full volume gives its last blocks to the index first). */
	for (uint64_t len = m->reserve; len >= m->psize; len /= 2) {
		int rc;

		if (used + len <= m->map_alloc)
			break;
		rc = allocate(m, used, len);
		if (rc == 0)
			break;
		if (rc == -EOPNOTSUPP || rc == -ENOSYS) {
			/* no preallocation on this filesystem: LMDB grows
			 * the file as it writes, as without head room */
			m->reserve = 0;
			break;
		}
		if (rc != -ENOSPC && rc != -EDQUOT && rc != -EFBIG)
			break;
	}
	atomic_store(&m->map_room,
	             m->map_alloc > used ? m->map_alloc - used : 0);
}

int
meta_reserve_guard(struct txn *t)
{
	struct meta *m = t->m;

	if (t->rc == 0 && m->reserve != 0 &&
	    atomic_load(&m->map_room) < m->reserve / 2)
		meta_txn_fail(t, -ENOSPC);
	return t->rc;
}

int
meta_commit_rc(struct meta *m, int rc)
{
	struct statvfs sv;
	uint64_t avail, low;

	/* LMDB turns a short write (the volume filled up in the middle of
	 * a page write) into EIO: tell it from a failing device by the
	 * space left. */
	if (rc != -EIO || m->map_fd < 0 || fstatvfs(m->map_fd, &sv) != 0)
		return rc;
	avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	low = m->reserve > (1u << 20) ? m->reserve : (1u << 20);
	return avail < low ? -ENOSPC : rc;
}

uint64_t
meta_reserve_room(struct meta *m)
{
	return atomic_load(&m->map_room);
}
