/* Recent reads kept in memory: a HEAD or GET of a blob or manifest records
 * its time here instead of writing LMDB, and the collector consults the
 * table inside its write txn (the safety rule: nothing touched within the
 * grace period is deleted). The table is sharded (one mutex per shard, no
 * global lock on the read path) and bounded; a flush moves its entries into
 * the rows' touched column in one write txn.
 *
 * A read and a collector commit are ordered by a sequence counter (gen):
 * the collector makes it odd, re-checks this table for the items of its
 * batch, commits, and makes it even again; a read that saw gen change
 * around its snapshot and its record reads again. So a read either sees
 * the item gone, or the collector sees the read and keeps the item. */
#include "storage/meta_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <time.h>

#include "common/digest.h"
#include "common/rc.h"

#define ACC_SHARDS 64u
#define ACC_SLOTS  512u /* per shard; a flush is wanted past half of it */

struct acc_slot {
	uint64_t h; /* 0 = empty */
	uint64_t t;
	unsigned char kind;
	unsigned char digest[32];
	char *repo; /* manifests only (malloc'd) */
};

struct acc_shard {
	pthread_mutex_t lock;
	unsigned n;
	struct acc_slot s[ACC_SLOTS];
} __attribute__((aligned(64)));

struct meta_access {
	struct acc_shard shard[ACC_SHARDS];
};

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* sha256:<64 hex> -> 32 bytes; -1 for anything else (not tracked). */
static int
digest_raw(const char *digest, unsigned char out[32])
{
	if (strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71)
		return -1;
	for (int i = 0; i < 32; i++) {
		int hi = hexval(digest[7 + 2 * i]),
		    lo = hexval(digest[8 + 2 * i]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static uint64_t
key_hash(unsigned char kind, const unsigned char d[32], const char *repo)
{
	uint64_t h = 1469598103934665603ull;

	h = (h ^ kind) * 1099511628211ull;
	for (int i = 0; i < 32; i++)
		h = (h ^ d[i]) * 1099511628211ull;
	if (repo != NULL)
		for (const char *p = repo; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h | 1; /* never 0: 0 marks an empty slot */
}

static int
slot_is(const struct acc_slot *s, uint64_t h, unsigned char kind,
        const unsigned char d[32], const char *repo)
{
	if (s->h != h || s->kind != kind || memcmp(s->digest, d, 32) != 0)
		return 0;
	if (kind == META_GC_MANIFEST)
		return s->repo != NULL && strcmp(s->repo, repo) == 0;
	return 1;
}

int
meta_access_init(struct meta *m)
{
	/* Zero pages from the kernel, mapped on first touch (the table is
	 * 2 MiB, mostly never used), page-aligned: shards are cache-line
	 * aligned, no false sharing between them. */
	void *p = mmap(NULL, sizeof(*m->acc), PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	m->acc = p;
	for (unsigned i = 0; i < ACC_SHARDS; i++)
		pthread_mutex_init(&m->acc->shard[i].lock, NULL);
	return 0;
}

void
meta_access_free(struct meta *m)
{
	if (m->acc == NULL)
		return;
	for (unsigned i = 0; i < ACC_SHARDS; i++) {
		struct acc_shard *sh = &m->acc->shard[i];
		for (unsigned j = 0; j < ACC_SLOTS; j++)
			free(sh->s[j].repo);
		pthread_mutex_destroy(&sh->lock);
	}
	munmap(m->acc, sizeof(*m->acc));
	m->acc = NULL;
}

static void
floor_raise(struct meta *m, uint64_t t)
{
	uint64_t cur = atomic_load(&m->acc_floor);

	while (cur < t && !atomic_compare_exchange_weak(&m->acc_floor, &cur, t))
		;
}

static void
record(struct meta *m, unsigned char kind, const char *repo, const char *digest,
       uint64_t now)
{
	unsigned char d[32];
	struct acc_shard *sh;
	uint64_t h;
	unsigned i;
	int lost = 1;

	if (!m->track_reads) { /* no per-item times: all read now */
		floor_raise(m, now);
		return;
	}
	if (digest_raw(digest, d) != 0)
		return;
	h = key_hash(kind, d, kind == META_GC_MANIFEST ? repo : NULL);
	sh = &m->acc->shard[(h >> 32) % ACC_SHARDS];
	pthread_mutex_lock(&sh->lock);
	for (i = 0; i < ACC_SLOTS; i++) {
		struct acc_slot *s = &sh->s[(h + i) % ACC_SLOTS];
		if (s->h == 0) {
			char *r = NULL;
			if (kind == META_GC_MANIFEST &&
			    (r = strdup(repo)) == NULL)
				break;
			s->h = h;
			s->kind = kind;
			memcpy(s->digest, d, 32);
			s->repo = r;
			s->t = now;
			if (++sh->n > ACC_SLOTS / 2)
				atomic_store(&m->acc_flush_wanted, 1);
			lost = 0;
			break;
		}
		if (slot_is(s, h, kind, d, repo)) {
			if (now > s->t)
				s->t = now;
			lost = 0;
			break;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	/* Full (the flush is late) or out of memory: forget nothing, treat
	 * everything as read now. Safe, only later. */
	if (lost)
		floor_raise(m, now);
}

uint64_t
meta_access_last(struct meta *m, enum meta_gc_kind kind, const char *repo,
                 const char *digest)
{
	unsigned char d[32];
	struct acc_shard *sh;
	uint64_t h, t = atomic_load(&m->acc_floor);

	if (digest_raw(digest, d) != 0)
		return UINT64_MAX; /* untracked: never old */
	h = key_hash((unsigned char)kind, d,
	             kind == META_GC_MANIFEST ? repo : NULL);
	sh = &m->acc->shard[(h >> 32) % ACC_SHARDS];
	pthread_mutex_lock(&sh->lock);
	for (unsigned i = 0; i < ACC_SLOTS; i++) {
		const struct acc_slot *s = &sh->s[(h + i) % ACC_SLOTS];
		if (s->h == 0)
			break;
		if (slot_is(s, h, (unsigned char)kind, d, repo)) {
			if (s->t > t)
				t = s->t;
			break;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	return t;
}

/* ---- the read side of the sequence counter ---- */

static uint64_t
item_hash(enum meta_gc_kind kind, const char *repo, const char *digest)
{
	unsigned char d[32];

	if (digest_raw(digest, d) != 0)
		return 0;
	return key_hash((unsigned char)kind, d,
	                kind == META_GC_MANIFEST ? repo : NULL);
}

/* 1 when the commit of counter value g may delete the item. */
static int
is_doomed(struct meta *m, enum meta_gc_kind kind, const char *repo,
          const char *digest)
{
	size_t n = atomic_load(&m->n_doomed);
	uint64_t h = item_hash(kind, repo, digest);

	if (n > META_DOOMED_MAX || h == 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (atomic_load_explicit(&m->doomed[i], memory_order_acquire) ==
		    h)
			return 1;
	return 0;
}

/* After a read that found an item and recorded it: 0 when the answer
 * stands, 1 when the read must be done again. It stands when no collector
 * commit began or ended around it (then the collector's last check sees
 * the record, or the read saw the commit), or when the commit in flight
 * does not delete this item. Otherwise it waits for that commit. */
static int
read_retry(struct meta *m, uint64_t g, enum meta_gc_kind kind, const char *repo,
           const char *digest)
{
	struct timespec ts = {0, 50 * 1000};

	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&m->gc_gen) != g)
		return 1;
	if ((g & 1) == 0)
		return 0;
	/* The set read must be this commit's: the collector writes the next
	 * one (release) only after the counter moved on. */
	if (!is_doomed(m, kind, repo, digest) && atomic_load(&m->gc_gen) == g)
		return 0;
	while (atomic_load(&m->gc_gen) == g)
		nanosleep(&ts, NULL);
	return 1;
}

int
meta_blob_read(struct meta *m, const char *repo, const char *digest,
               uint64_t now, uint64_t *size)
{
	for (;;) {
		uint64_t g = atomic_load(&m->gc_gen), sz = 0;
		int rc = meta_blob_get(m, repo, digest, &sz, NULL);

		if (rc != 0)
			return rc; /* absent in any snapshot order: 404 */
		record(m, META_GC_BLOB, NULL, digest, now);
		if (read_retry(m, g, META_GC_BLOB, NULL, digest))
			continue;
		*size = sz;
		return 0;
	}
}

int
meta_manifest_read(struct meta *m, const char *repo, const char *ref,
                   int want_body, uint64_t now, struct meta_manifest *out)
{
	for (;;) {
		uint64_t g = atomic_load(&m->gc_gen);
		struct meta_manifest mm;
		int rc = meta_manifest_get(m, repo, ref, want_body, &mm);

		if (rc != 0)
			return rc;
		record(m, META_GC_MANIFEST, repo, mm.digest, now);
		if (read_retry(m, g, META_GC_MANIFEST, repo, mm.digest)) {
			free(mm.body);
			continue;
		}
		*out = mm;
		return 0;
	}
}

/* ---- the collector side ---- */

void
meta_gc_doom(struct meta *m, const struct meta_gc_deleted *items, size_t n)
{
	if (n > META_DOOMED_MAX) {
		atomic_store(&m->n_doomed, SIZE_MAX);
		return;
	}
	for (size_t i = 0; i < n; i++)
		atomic_store_explicit(&m->doomed[i],
		                      item_hash(items[i].kind, items[i].repo,
		                                items[i].digest),
		                      memory_order_release);
	atomic_store(&m->n_doomed, n);
}

void
meta_gc_gen_odd(struct meta *m)
{
	atomic_fetch_add(&m->gc_gen, 1);
	atomic_thread_fence(memory_order_seq_cst);
}

void
meta_gc_gen_even(struct meta *m)
{
	atomic_fetch_add(&m->gc_gen, 1);
}

/* ---- flush into the rows ---- */

/* Applies one read to its row: touched moves forward, and a queued item's
 * due time becomes at least touched + grace. */
static void
flush_one(struct txn *t, const struct acc_slot *s)
{
	char digest[DIGEST_BUF];

	digest_from_raw(s->digest, digest);
	if (s->kind == META_GC_BLOB) {
		struct blob_row r;
		if (!meta_blob_row_get(t, digest, &r) || r.touched >= s->t)
			return;
		r.touched = s->t;
		meta_blob_row_touch(t, digest, &r, s->t);
		meta_blob_row_put(t, digest, &r);
	} else {
		struct manifest_row r;
		if (!meta_manifest_row_get(t, s->repo, digest, &r) ||
		    (r.touched >= s->t && r.pulled >= s->t))
			return;
		if (r.pulled < s->t) /* a manifest read is a pull */
			r.pulled = s->t;
		if (r.touched < s->t) {
			r.touched = s->t;
			meta_manifest_row_touch(t, s->repo, digest, &r, s->t);
		}
		meta_manifest_row_put(t, s->repo, digest, &r);
	}
}

/* 1 when some shard holds a read (a read arriving after this is flushed
 * next time). */
static int
access_pending(struct meta *m)
{
	for (unsigned i = 0; i < ACC_SHARDS; i++) {
		struct acc_shard *sh = &m->acc->shard[i];
		size_t n;
		pthread_mutex_lock(&sh->lock);
		n = sh->n;
		pthread_mutex_unlock(&sh->lock);
		if (n > 0)
			return 1;
	}
	return 0;
}

int
meta_access_flush(struct meta *m, size_t *flushed)
{
	struct acc_slot *out = NULL;
	size_t n = 0, cap = 0;
	uint64_t newest = 0;
	struct txn t;
	int rc;

	atomic_store(&m->acc_flush_wanted, 0);
	if (!access_pending(m)) { /* no write txn for nothing */
		if (flushed != NULL)
			*flushed = 0;
		return 0;
	}
	/* The write txn first: no other write (a delete computing a due
	 * time from this table) sees the entries neither here nor there. */
	if (meta_txn_begin(m, &t, 1) != 0)
		return t.rc;
	for (unsigned i = 0; i < ACC_SHARDS; i++) {
		struct acc_shard *sh = &m->acc->shard[i];
		pthread_mutex_lock(&sh->lock);
		if (sh->n > 0 && n + sh->n > cap) {
			size_t nc = cap + ACC_SLOTS;
			struct acc_slot *no = realloc(out, nc * sizeof(*no));
			if (no == NULL) {
				pthread_mutex_unlock(&sh->lock);
				meta_txn_fail(&t, -ENOMEM);
				break;
			}
			out = no;
			cap = nc;
		}
		for (unsigned j = 0; j < ACC_SLOTS && sh->n > 0; j++) {
			if (sh->s[j].h == 0)
				continue;
			out[n++] = sh->s[j];
			if (sh->s[j].t > newest)
				newest = sh->s[j].t;
			memset(&sh->s[j], 0, sizeof(sh->s[j]));
		}
		sh->n = 0;
		pthread_mutex_unlock(&sh->lock);
	}
	for (size_t i = 0; i < n && t.rc == 0; i++)
		flush_one(&t, &out[i]);
	rc = meta_txn_commit(&t);
	if (rc == 0)
		atomic_fetch_add_explicit(&m->flush_txns, 1,
		                          memory_order_relaxed);
	if (rc != 0 && newest != 0)
		floor_raise(m,
		            newest); /* the reads are lost: assume them all */
	for (size_t i = 0; i < n; i++)
		free(out[i].repo);
	free(out);
	if (rc == 0 && flushed != NULL)
		*flushed = n;
	return rc;
}

int
meta_access_flush_wanted(struct meta *m)
{
	return atomic_load(&m->acc_flush_wanted);
}

void
meta_access_floor(struct meta *m, uint64_t t)
{
	floor_raise(m, t);
}
