/* Internals of the metadata index shared by storage/meta*.c: the handle,
 * the transaction wrapper whose error sticks, key builders, value codecs
 * and the refcount / gc queue helpers. Nothing outside storage/meta*.c may
 * include this file: LMDB stays behind meta.h. */
#ifndef BERTH_STORAGE_META_INTERNAL_H
#define BERTH_STORAGE_META_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/meta.h"

#define META_SCHEMA_VERSION 2u  /* 2: blinks and intents */
#define META_KEY_MAX        511 /* LMDB's default maximum key size */
#define META_DOOMED_MAX     1024

struct meta {
	MDB_env *env;
	uint64_t grace;
	MDB_dbi blobs;
	MDB_dbi links;
	MDB_dbi manifests;
	MDB_dbi bodies;
	MDB_dbi bodyrefs; /* digest -> number of repos holding a manifests row
	                   */
	MDB_dbi children;
	MDB_dbi tags;
	MDB_dbi referrers;
	MDB_dbi uploads;
	MDB_dbi gcq;
	MDB_dbi blinks;  /* digest\0repo -> empty: the links of a blob */
	MDB_dbi intents; /* digest -> size: blob files to unlink */
	MDB_dbi info;    /* the "meta" database */
	/* Read txns kept reset between uses, one per thread, so a read
	 * renews its own reader slot instead of taking LMDB's reader-table
	 * lock. All are listed here so meta_close can free them. */
	uint64_t id;
	/* Recent reads (meta_access.c) and the collector's commit counter. */
	struct meta_access *acc;
	atomic_uint_fast64_t acc_floor; /* every item counts as read then */
	atomic_int acc_flush_wanted;
	atomic_uint_fast64_t gc_gen; /* odd while a collector commits */
	/* What that commit deletes (key hashes of the access table), set
	 * while gc_gen is even: a read of anything else need not wait. */
	atomic_uint_fast64_t doomed[META_DOOMED_MAX];
	atomic_size_t n_doomed; /* SIZE_MAX: everything (too many) */
	int track_reads; /* 0: reads only raise the floor (no last pulls) */
	atomic_uint_fast64_t write_txns; /* committed, since open */
	atomic_uint_fast64_t flush_txns; /* of those, read flushes */

	pthread_mutex_t readers_lock;
	MDB_txn **readers;
	size_t n_readers, cap_readers;

	/* Head room of the data file (meta_reserve.c): map_alloc and
	 * reserve change only under LMDB's writer lock. */
	int map_fd;                    /* LMDB's, -1 when unknown */
	uint64_t psize;                /* LMDB page size */
	uint64_t reserve;              /* bytes kept allocated past the last
	                                  page; 0: none */
	uint64_t map_alloc;            /* end of the allocated part */
	atomic_uint_fast64_t map_room; /* map_alloc - used, last seen */
};

/* ---- keys ---- */

struct key {
	unsigned char b[META_KEY_MAX];
	size_t len;
	int bad; /* set when a part did not fit */
};

void meta_key_init(struct key *k);
void meta_key_str(struct key *k, const char *s); /* bytes without the NUL */
void meta_key_sep(struct key *k);                /* one NUL */
void meta_key_byte(struct key *k, unsigned char c);
void meta_key_bytes(struct key *k, const void *b, size_t n);
void meta_key_u64be(struct key *k, uint64_t v);
/* meta_key_init + the given strings separated by NULs (NULL ends the list). */
void meta_key_of(struct key *k, const char *first, ...)
        __attribute__((sentinel));

/* ---- values ---- */

struct enc {
	unsigned char *p;
	size_t len, cap;
	int err;
	unsigned char small[1024];
};

void meta_enc_init(struct enc *e);
void meta_enc_free(struct enc *e);
void meta_enc_u64(struct enc *e, uint64_t v);
void meta_enc_str(struct enc *e, const char *s); /* with its NUL; NULL -> "" */
void meta_enc_bytes(struct enc *e, const void *b, size_t n);

struct dec {
	const unsigned char *p;
	size_t len, off;
	int err;
};

void meta_dec_init(struct dec *d, const MDB_val *v);
uint64_t meta_dec_u64(struct dec *d);
/* Copies a NUL-terminated string into out (outsz bytes). */
void meta_dec_str(struct dec *d, char *out, size_t outsz);
/* Returns the next NUL-terminated string in place (valid only while the
 * txn lives) and its length; NULL on error. */
const char *meta_dec_strp(struct dec *d, size_t *len);

/* ---- transactions: the first error sticks ---- */

struct txn {
	struct meta *m;
	MDB_txn *txn;
	int rc;
	int cached; /* txn is this thread's cached reader: reset, not abort */
};

int meta_rc(int mdb_rc);
/* The cache of read txns (meta.c) as meta_open and meta_close (meta_env.c)
 * set it up and tear it down: init gives m an id of its own and the lock
 * of its reader list; close aborts every thread's cached reader of m and
 * forgets this thread's (the environment must still be open). */
void meta_readers_init(struct meta *m);
void meta_readers_close(struct meta *m);
int meta_txn_begin(struct meta *m, struct txn *t, int write);
/* Records rc as the txn's error unless one is already recorded; returns the
 * recorded error. */
int meta_txn_fail(struct txn *t, int rc);
/* 1 when the key exists (v filled), 0 when absent or after an error. */
int meta_txn_get(struct txn *t, MDB_dbi dbi, const struct key *k, MDB_val *v);
void meta_txn_put(struct txn *t, MDB_dbi dbi, const struct key *k,
                  const void *v, size_t vlen);
void meta_txn_put_enc(struct txn *t, MDB_dbi dbi, const struct key *k,
                      const struct enc *e);
/* Deleting an absent key is not an error. */
void meta_txn_del(struct txn *t, MDB_dbi dbi, const struct key *k);
/* Commits (or aborts when an error was recorded); returns the error. */
int meta_txn_commit(struct txn *t);
void meta_txn_abort(struct txn *t);
/* Ends a read txn; returns its recorded error. */
int meta_txn_end(struct txn *t);

/* A forward walk over the keys that start with a prefix. */
struct scan {
	struct txn *t;
	MDB_cursor *c;
	unsigned char prefix[META_KEY_MAX];
	size_t plen;
	MDB_val k, v;
	int state; /* 0 not started, 1 positioned, 2 done */
	struct key from;
};

/* Starts at the first key >= from (NULL: the prefix itself). */
void meta_scan_open(struct txn *t, struct scan *s, MDB_dbi dbi,
                    const struct key *prefix, const struct key *from);
/* 1 when positioned on a key with the prefix (s->k, s->v), else 0. */
int meta_scan_next(struct scan *s);
/* Deletes the current item; the next meta_scan_next returns its successor. */
void meta_scan_del(struct scan *s);
void meta_scan_close(struct scan *s);

/* ---- head room of the data file (meta_reserve.c) ---- */

/* Sets it up once the environment is open (reserve as in meta_options). */
void meta_reserve_init(struct meta *m, uint64_t reserve);
/* Tops the head room up; the caller holds LMDB's writer lock (a write
 * txn has begun). Failures are silent: the next write txn tries again. */
void meta_reserve_keep(struct meta *m);
/* For writes that add to the registry (a new upload, a manifest, a
 * mount): -ENOSPC recorded in t when the head room is below half and
 * could not be topped up (the volume is full), so what is left of it
 * stays for deletes and collection runs. Returns t->rc. */
int meta_reserve_guard(struct txn *t);
/* The error of a failed commit: EIO with the volume (nearly) full is the
 * short write of a full volume, -ENOSPC. */
int meta_commit_rc(struct meta *m, int rc);

/* ---- rows ---- */

struct blob_row {
	uint64_t size, created, touched, refcount, gc_due;
};

struct manifest_row {
	uint64_t size, created, refcount, gc_due;
	uint64_t touched; /* last push or flushed access; rows of schema 1
	                     lack it and read as created */
	uint64_t pulled;  /* last flushed read (GET/HEAD), 0: never; older
	                     rows lack it and read as 0 */
	char media_type[MEDIA_TYPE_BUF];
	char subject[DIGEST_BUF];
	char artifact_type[MEDIA_TYPE_BUF];
};

struct tag_row {
	uint64_t pushed, last_pulled, expires;
	char digest[DIGEST_BUF];
	char source[META_TTL_SOURCE_BUF]; /* what set expires ("" none) */
};

int meta_blob_row_get(struct txn *t, const char *digest, struct blob_row *r);
void meta_blob_row_put(struct txn *t, const char *digest,
                       const struct blob_row *r);
int meta_manifest_row_get(struct txn *t, const char *repo, const char *digest,
                          struct manifest_row *r);
void meta_manifest_row_put(struct txn *t, const char *repo, const char *digest,
                           const struct manifest_row *r);
int meta_tag_row_get(struct txn *t, const char *repo, const char *tag,
                     struct tag_row *r);
void meta_tag_row_decode(struct txn *t, const MDB_val *v, struct tag_row *r);
void meta_tag_row_put(struct txn *t, const char *repo, const char *tag,
                      const struct tag_row *r);
/* 1 when repo may serve the blob. */
int meta_link_exists(struct txn *t, const char *repo, const char *digest);
/* Adds / removes a links row and its blinks twin. */
void meta_link_put(struct txn *t, const char *repo, const char *digest,
                   uint64_t now);
void meta_link_del(struct txn *t, const char *repo, const char *digest);
/* 1 when any key of dbi starts with repo\0. */
int meta_repo_has_rows(struct txn *t, MDB_dbi dbi, const char *repo);

/* Removes a manifest row of repo and what hangs off it (queue entry,
 * referrers entry, body and children when it was the last holder) and
 * takes back the counts it gave; tags are the caller's business. */
void meta_manifest_remove(struct txn *t, const char *repo, const char *digest,
                          const struct manifest_row *r, uint64_t now);

/* ---- refcounts and the gc queue ---- */

uint64_t meta_due(const struct meta *m, uint64_t now);
void meta_gcq_add(struct txn *t, enum meta_gc_kind kind, const char *digest,
                  const char *repo, uint64_t due);
void meta_gcq_remove(struct txn *t, enum meta_gc_kind kind, const char *digest,
                     const char *repo, uint64_t due);
/* Adds delta to a count; a count reaching 0 queues the item at now+grace,
 * a count leaving 0 dequeues it. A missing row is ignored for decrements
 * and is RC_CORRUPT for increments. */
void meta_blob_ref_add(struct txn *t, const char *digest, int delta,
                       uint64_t now);
void meta_manifest_ref_add(struct txn *t, const char *repo, const char *digest,
                           int delta, uint64_t now);
/* Moves a queued item's due time to now + grace (never backwards). */
void meta_blob_row_touch(struct txn *t, const char *digest, struct blob_row *r,
                         uint64_t now);
void meta_manifest_row_touch(struct txn *t, const char *repo,
                             const char *digest, struct manifest_row *r,
                             uint64_t now);

/* ---- recent reads (meta_access.c) ---- */
int meta_access_init(struct meta *m);
void meta_access_free(struct meta *m);
/* Time of the last read of an item that this process still remembers (or
 * the floor), 0 when none. */
uint64_t meta_access_last(struct meta *m, enum meta_gc_kind kind,
                          const char *repo, const char *digest);
/* The collector's side of the read/commit ordering: the items the commit
 * deletes, then odd (before the last check and the commit), then even. */
void meta_gc_doom(struct meta *m, const struct meta_gc_deleted *items,
                  size_t n);
void meta_gc_gen_odd(struct meta *m);
void meta_gc_gen_even(struct meta *m);
/* Last access of an item: its row's touched time, a remembered read, or
 * the floor, whichever is latest. */
uint64_t meta_item_last(struct meta *m, enum meta_gc_kind kind,
                        const char *repo, const char *digest, uint64_t touched);
/* Times are whole seconds, rounded down: an item whose last access is
 * second `last` (any instant in it) may go only once the second
 * last + grace is over, i.e. at a run whose now is greater. The gc queue
 * is keyed by that second; a run takes the entries due before its now. */
uint64_t meta_free_after(const struct meta *m, uint64_t last);

/* A gc queue key into an item; RC_CORRUPT when malformed. */
int meta_gcq_decode(const MDB_val *k, struct meta_gc_item *it);
/* The running total of blob bytes: add and subtract; recount all. */
void meta_bytes_add(struct txn *t, uint64_t add, uint64_t sub);
uint64_t meta_bytes_get(struct txn *t);
void meta_bytes_rebuild(struct txn *t);

/* Appends a copy of n bytes of s to l (*cap: its allocated items). */
int meta_list_add(struct meta_list *l, size_t *cap, const char *s, size_t n);
/* The repositories of one database (the key part before the first NUL) in
 * byte order: starting with prefix, strictly after `after` (NULL: from the
 * first), at most n (l->more set when one follows), appended to l. */
void meta_repo_names(struct txn *t, MDB_dbi dbi, const char *prefix,
                     const char *after, size_t n, struct meta_list *l,
                     size_t *cap);
/* The rest of the keys of repo's rows in one database (after repo\0: a
 * tag, a digest) in byte order: strictly after `after` (NULL: from the
 * first), at most n (l->more set when one follows), appended to l. */
void meta_repo_keys(struct txn *t, MDB_dbi dbi, const char *repo,
                    const char *after, size_t n, struct meta_list *l,
                    size_t *cap);

/* meta_tags_expire inside a txn (a dry run's, which is aborted). */
void meta_tags_expire_txn(struct txn *t, struct meta_tag_expire *items,
                          size_t n, uint64_t now);

/* strdup that returns NULL on NULL. */
char *meta_strndup(const char *s, size_t n);

#endif
