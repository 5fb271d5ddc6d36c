/* The metadata index: the ONLY code that calls LMDB. One environment in
 * DATA/meta with these named databases (keys are byte strings; "\0" is a
 * NUL separator; integers are little-endian fixed width):
 *
 *   blobs      digest -> size, created, last_touched, refcount, gc_due
 *   links      repo\0digest -> linked_at        (repo may serve the blob)
 *   manifests  repo\0digest -> size, created, refcount, gc_due, media
 *                              type, subject, artifactType, touched
 *   bodies     digest -> manifest bytes
 *   bodyrefs   digest -> number of repos holding a manifests row for it
 *              (the last holder's delete removes body and children)
 *   children   parent\0child -> kind (blob|manifest), size
 *   tags       repo\0tag -> pushed, last_pulled, expires, digest,
 *                             source (the TTL label that set expires)
 *   referrers  repo\0subject\0referrer -> media type, size, artifactType,
 *                                         annotations JSON
 *   uploads    uuid -> repo, started
 *   gcq        due_time(8 bytes big-endian)\0kind\0digest[\0repo] -> empty
 *   blinks     digest\0repo -> empty       (the links of a blob, so the
 *                                           collector drops them without
 *                                           a scan)
 *   intents    digest -> size               (blob files whose rows a
 *                                           committed gc txn removed and
 *                                           that are still to unlink)
 *   meta       "schema" -> version, "instance" -> random id
 *
 * Reference counts (kept in the same write txn as every change):
 *   blob refcount     = number of (repo, manifest) rows whose manifest lists
 *                       the blob as config/layer (each manifest counts a
 *                       distinct child once).
 *   manifest refcount (per repo) = tags pointing at it + index/list rows of
 *                       the same repo listing it as a child + 1 when its
 *                       subject manifest exists in the same repo.
 * A blob created unreferenced, or a manifest pushed by digest without a
 * tag, goes on gcq with due time now + grace; an item whose count falls to
 * 0 goes on it at its last access (row touched, remembered read, floor) +
 * grace (meta_free_after). A count rising above 0 takes it off the queue;
 * a read of a queued item pushes its due time to now + grace.
 *
 * Functions never return pointers into LMDB memory; output parameters are
 * set only on success. All times are seconds since the epoch. */
#ifndef BERTH_STORAGE_META_H
#define BERTH_STORAGE_META_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "storage/manifest.h"

struct meta;

struct meta_options {
	uint64_t map_size;    /* bytes; 0 = default (64 GiB, sparse) */
	unsigned max_readers; /* 0 = default (1024) */
	uint64_t gc_grace;    /* seconds; 0 = default (3600) */
	/* Every item counts as read at this time (the server passes its
	 * start: reads before a restart are not remembered). 0 = none. */
	uint64_t access_floor;
	/* 1: reads are not remembered one by one (no last-pull times;
	 * idle_after sees push times): every read only makes every item
	 * count as read at that time, which keeps the collector safe and
	 * makes it wait while anything is being read. For benchmarks. */
	int no_read_tracking;
	/* Bytes of the index's data file kept allocated past its last page,
	 * so commits (a delete, a collection) need no free block on a full
	 * volume. 0 = default (8 MiB); META_RESERVE_NONE = none. */
	uint64_t map_reserve;
};

#define META_RESERVE_NONE UINT64_MAX

int meta_open(const char *dir, const struct meta_options *opt,
              struct meta **out) __attribute__((warn_unused_result));
void meta_close(struct meta *m);

/* ---- blobs and links ---- */

/* Records a blob that blob_upload_commit() made durable, links it into repo,
 * and (when upload_uuid is not NULL) deletes that upload session, all in one
 * txn. A new blob starts with refcount 0 and is queued. */
int meta_blob_commit(struct meta *m, const char *repo, const char *digest,
                     uint64_t size, const char *upload_uuid, uint64_t now)
        __attribute__((warn_unused_result));

/* Size of a blob linked in repo. RC_BLOB_UNKNOWN when the blob is unknown or
 * not linked in repo. *queued is set to 1 when the blob sits on gcq (the
 * caller should then call meta_touch_blob). queued may be NULL. */
int meta_blob_get(struct meta *m, const char *repo, const char *digest,
                  uint64_t *size, int *queued)
        __attribute__((warn_unused_result));

/* Size of a blob regardless of links (mount without "from"). */
int meta_blob_exists(struct meta *m, const char *digest, uint64_t *size)
        __attribute__((warn_unused_result));

/* Links a blob into repo. With from != NULL the blob must be linked in
 * from; with from == NULL it must merely exist. RC_BLOB_UNKNOWN otherwise.
 * Pushes a queued blob's due time forward. *size set on success. */
int meta_blob_mount(struct meta *m, const char *repo, const char *digest,
                    const char *from, uint64_t now, uint64_t *size)
        __attribute__((warn_unused_result));

/* Removes repo's link to a blob (DELETE blob). RC_BLOB_UNKNOWN when not
 * linked. A blob with refcount 0 stays queued. */
int meta_blob_unlink(struct meta *m, const char *repo, const char *digest,
                     uint64_t now) __attribute__((warn_unused_result));

/* Pushes a queued blob's due time to now + grace (no-op if not queued). */
int meta_touch_blob(struct meta *m, const char *digest, uint64_t now)
        __attribute__((warn_unused_result));

/* ---- manifests and tags ---- */

#define META_TTL_SOURCE_BUF 64

struct meta_manifest_put {
	const char *repo;
	const char *digest; /* digest of body */
	const char *tag;    /* NULL when pushed by digest */
	const void *body;
	size_t body_len;
	const struct manifest_info *info;
	/* With a tag: seconds until the tag expires (a TTL label), 0 none;
	 * the label's name. Every push of the tag sets (or clears) it. */
	uint64_t ttl;
	const char *ttl_source;
};

/* Stores a manifest in ONE write txn: every blob child must be linked in
 * repo and every manifest child must exist in repo (else
 * RC_MANIFEST_BLOB_UNKNOWN, with the missing digest copied to missing when
 * not NULL); a child's descriptor size must equal the stored size (else
 * RC_MANIFEST_INVALID, digest copied to missing). Then stores the row, body,
 * children and referrers entry, updates refcounts, moves the tag. Putting an
 * existing (repo, digest) again only moves the tag. */
int meta_manifest_put(struct meta *m, const struct meta_manifest_put *p,
                      uint64_t now, char missing[DIGEST_BUF])
        __attribute__((warn_unused_result));

struct meta_manifest {
	char digest[DIGEST_BUF];
	char media_type[MEDIA_TYPE_BUF];
	uint64_t size;
	void *body; /* malloc'd copy when asked for, else NULL; caller frees */
	int queued; /* 1 when on gcq: caller should meta_touch_manifest */
};

/* Resolves ref (a tag, or a digest when ref contains ':') in repo, in one
 * read txn. With want_body the body is copied out. RC_MANIFEST_UNKNOWN when
 * absent. */
int meta_manifest_get(struct meta *m, const char *repo, const char *ref,
                      int want_body, struct meta_manifest *out)
        __attribute__((warn_unused_result));

int meta_touch_manifest(struct meta *m, const char *repo, const char *digest,
                        uint64_t now) __attribute__((warn_unused_result));

/* Deletes a manifest from repo (DELETE by digest): its tags, its row, its
 * referrers entry, decrements what it referenced (children and the +1 it
 * gave its referrers); when no repo holds the digest any more its body and
 * children rows go too. RC_MANIFEST_UNKNOWN when absent. */
int meta_manifest_delete(struct meta *m, const char *repo, const char *digest,
                         uint64_t now) __attribute__((warn_unused_result));

/* Deletes one tag (DELETE by tag). RC_MANIFEST_UNKNOWN when absent. */
int meta_tag_delete(struct meta *m, const char *repo, const char *tag,
                    uint64_t now) __attribute__((warn_unused_result));

/* A page of names: tags of a repo, or repositories of the catalog. */
struct meta_list {
	char **items;
	size_t count;
	int more; /* 1 when items exist after the last one returned */
};
void meta_list_free(struct meta_list *l);

/* Tags of repo in byte order (which is lexical order for the tag grammar's
 * ASCII), starting strictly after last (NULL = from the start), at most n
 * (n == SIZE_MAX: no limit). RC_NAME_UNKNOWN when repo has no manifests,
 * tags nor blob links. */
int meta_tags_list(struct meta *m, const char *repo, const char *last, size_t n,
                   struct meta_list *out) __attribute__((warn_unused_result));

/* Repositories holding at least one manifest, same paging rules. */
int meta_catalog_list(struct meta *m, const char *last, size_t n,
                      struct meta_list *out)
        __attribute__((warn_unused_result));

/* The catalog as one caller may see it: the repositories `visible`
 * accepts (called in order, inside the read txn, with a copy of each
 * name), at most n of them, strictly after last. more is set when another
 * visible name follows, or when the walk stopped after examining `budget`
 * names (0: no bound) with at least one taken: the page is then shorter
 * than n and the next one goes on after its last name. A page that has
 * taken nothing walks on past the budget, so its last name, the only
 * continuation a client is given, is always one the caller may see. */
int meta_catalog_filter(struct meta *m, const char *last, size_t n,
                        int (*visible)(const char *name, void *arg), void *arg,
                        size_t budget, struct meta_list *out)
        __attribute__((warn_unused_result));

/* ---- referrers ---- */

struct meta_referrer {
	char digest[DIGEST_BUF];
	char media_type[MEDIA_TYPE_BUF];
	uint64_t size;
	char artifact_type[MEDIA_TYPE_BUF]; /* "" when none */
	char *annotations_json; /* NULL when none; freed by list_free */
};

struct meta_referrers {
	struct meta_referrer *items;
	size_t count;
};
void meta_referrers_free(struct meta_referrers *r);

/* Manifests of repo whose subject is subject, optionally only those whose
 * artifactType equals artifact_type (NULL = no filter). Empty list (not an
 * error) when none. */
int meta_referrers_list(struct meta *m, const char *repo, const char *subject,
                        const char *artifact_type, struct meta_referrers *out)
        __attribute__((warn_unused_result));

/* ---- upload sessions ---- */

int meta_upload_put(struct meta *m, const char *uuid, const char *repo,
                    uint64_t now) __attribute__((warn_unused_result));
/* RC_UPLOAD_UNKNOWN unless uuid is a session of repo. */
int meta_upload_check(struct meta *m, const char *uuid, const char *repo)
        __attribute__((warn_unused_result));
int meta_upload_delete(struct meta *m, const char *uuid)
        __attribute__((warn_unused_result));

/* ---- counts and the gc queue (for the collector and tests) ---- */

int meta_blob_refcount(struct meta *m, const char *digest, uint64_t *refcount)
        __attribute__((warn_unused_result));
int meta_manifest_refcount(struct meta *m, const char *repo, const char *digest,
                           uint64_t *refcount)
        __attribute__((warn_unused_result));

enum meta_gc_kind { META_GC_BLOB = 1, META_GC_MANIFEST = 2 };

struct meta_gc_item {
	uint64_t due;
	enum meta_gc_kind kind;
	char digest[DIGEST_BUF];
	char repo[256]; /* "" for blobs */
};

/* ---- reads on the request path ---- */

/* Like meta_blob_get / meta_manifest_get, and the read is remembered (in
 * memory, no LMDB write) so the collector keeps the item for the grace
 * period after it. Ordered with collector commits: a read never answers
 * for an item that a collection running at the same time deletes. */
int meta_blob_read(struct meta *m, const char *repo, const char *digest,
                   uint64_t now, uint64_t *size)
        __attribute__((warn_unused_result));
int meta_manifest_read(struct meta *m, const char *repo, const char *ref,
                       int want_body, uint64_t now, struct meta_manifest *out)
        __attribute__((warn_unused_result));

/* Writes the remembered reads into the rows (touched, and a later due time
 * for queued items) in one write txn and forgets them. *flushed (may be
 * NULL) gets how many. */
int meta_access_flush(struct meta *m, size_t *flushed)
        __attribute__((warn_unused_result));
/* 1 when the table of remembered reads is filling up. */
int meta_access_flush_wanted(struct meta *m);
/* Every item counts as read at time t (or later, as it was). */
void meta_access_floor(struct meta *m, uint64_t t);

/* ---- the collector's steps (gc/ drives them) ---- */

struct meta_gc_deleted {
	enum meta_gc_kind kind;
	char digest[DIGEST_BUF];
	char repo[256]; /* "" for blobs */
	uint64_t size;  /* blob size, or manifest body size */
};

struct meta_keep;

struct meta_gc_batch {
	struct meta_gc_deleted *items;
	size_t n, cap;
	/* unreferenced manifests kept because keep says they are pinned
	 * (queued again at now + grace) */
	struct meta_gc_deleted *kept;
	size_t n_kept, cap_kept;
	int more;          /* items still due (call again) */
	int conflict;      /* a read raced the commit: nothing done, again */
	uint64_t requeued; /* read within the grace: given a later due time */
};
void meta_gc_batch_free(struct meta_gc_batch *b);

/* Collects due items in ONE write txn, at most max_items of them or for
 * max_ns: re-checks for each that its count is 0, it is due and no read,
 * push or mount touched it within the grace (else it is queued again at
 * last access + grace), deletes its rows, takes back the counts a manifest
 * gave (a child falling to 0 is queued by the same rule), and records an
 * intent row for every blob file to unlink. The caller unlinks the files
 * after this returns, then calls meta_gc_intents_done. With dry_run,
 * everything due (cascades included) is collected in one txn that is then
 * aborted: b lists what a run would delete, and nothing changes. b is
 * reset first. With keep (may be NULL), a manifest keep->manifest says is
 * pinned is not deleted but queued again and listed in b->kept, and an
 * unreferenced manifest stays for keep->untagged_after when that is longer
 * than the grace. */
int meta_gc_step(struct meta *m, uint64_t now, size_t max_items,
                 uint64_t max_ns, int dry_run, const struct meta_keep *keep,
                 struct meta_gc_batch *b) __attribute__((warn_unused_result));

/* Blob files still to unlink (a run died between its commit and the
 * unlink): *out is malloc'd (free it), *n its length. */
int meta_gc_intents(struct meta *m, char (**out)[DIGEST_BUF], size_t *n)
        __attribute__((warn_unused_result));
/* Drops intent rows whose unlink is done (or no longer needed). */
int meta_gc_intents_done(struct meta *m, char (*digests)[DIGEST_BUF], size_t n)
        __attribute__((warn_unused_result));
/* 1 when the blob has an index entry, 0 when not, < 0 on error. */
int meta_blob_indexed(struct meta *m, const char *digest);

struct meta_gc_state {
	uint64_t queue_len; /* items on the gc queue */
	uint64_t due;       /* of those, due at now */
	uint64_t next_due;  /* earliest due time after now, 0 when none */
	uint64_t blobs, blob_bytes; /* blobs indexed and their bytes */
	uint64_t manifests;         /* (repo, manifest) rows */
};
int meta_gc_state_get(struct meta *m, uint64_t now, struct meta_gc_state *out)
        __attribute__((warn_unused_result));

struct meta_upload {
	char uuid[40];
	char repo[256];
	uint64_t started;
};
/* Calls fn for every upload session (from one read txn); fn returning
 * non-zero stops the walk. */
int meta_upload_walk(struct meta *m,
                     int (*fn)(const struct meta_upload *u, void *arg),
                     void *arg) __attribute__((warn_unused_result));
/* RC_OK when a session row exists for uuid (whatever its repository),
 * RC_UPLOAD_UNKNOWN when none. */
int meta_upload_exists(struct meta *m, const char *uuid)
        __attribute__((warn_unused_result));

/* Calls fn for every queued item with due <= until (UINT64_MAX: all), in due
 * order, from one read txn. fn returning non-zero stops the walk. */
int meta_gcq_walk(struct meta *m, uint64_t until,
                  int (*fn)(const struct meta_gc_item *it, void *arg),
                  void *arg) __attribute__((warn_unused_result));

/* ---- retention: gc/ decides, these carry it out ---- */

struct meta_tag_expire;

/* What a run must keep whatever the counts say (the cluster's pins), and
 * how long an untagged manifest stays. Either function may be NULL. */
struct meta_keep {
	int (*manifest)(const char *repo, const char *digest, void *arg);
	int (*tag)(const char *repo, const char *tag, void *arg);
	void *arg;
	/* seconds an unreferenced manifest stays after its last access,
	 * when longer than the grace; 0: the grace */
	uint64_t untagged_after;
	/* A dry run deletes these tags first, inside its aborted txn, so it
	 * reports what a run that expires them would collect. */
	struct meta_tag_expire *expire;
	size_t n_expire;
};

struct meta_tag_info {
	char repo[256];
	char tag[129];
	char digest[DIGEST_BUF];
	char media_type[MEDIA_TYPE_BUF];
	uint64_t pushed;
	uint64_t last_pulled; /* last read of its manifest, 0: never */
	uint64_t expires;     /* from a TTL label, 0: none */
	char source[META_TTL_SOURCE_BUF]; /* that label */
	/* With want_sizes: the manifests and blobs under the tag, and the
	 * bytes of the blob files that would go with it (held by nothing
	 * else). */
	uint64_t size, unique;
};

typedef int (*meta_repo_tags_fn)(const char *repo, struct meta_tag_info *tags,
                                 size_t n, void *arg);

/* Calls fn once per repository that has tags, with all of them (tag
 * order), repositories in byte order: only those starting with prefix
 * (NULL: all), from repository `from` on (NULL: the first). From one read
 * txn; fn returning non-zero stops the walk. */
int meta_repo_tags_walk(struct meta *m, const char *prefix, const char *from,
                        int want_sizes, meta_repo_tags_fn fn, void *arg)
        __attribute__((warn_unused_result));

/* size and unique of struct meta_tag_info for one manifest of repo held
 * by one reference. */
int meta_tag_sizes(struct meta *m, const char *repo, const char *digest,
                   uint64_t *size, uint64_t *unique)
        __attribute__((warn_unused_result));

struct meta_tag_expire {
	const char *repo, *tag, *digest;
	uint64_t pushed; /* as judged */
	int done;        /* out: 1 deleted; 0 the tag changed since */
};

/* Deletes the tags in ONE write txn, each only if it still points at the
 * digest with the same push time (a push since wins). */
int meta_tags_expire(struct meta *m, struct meta_tag_expire *items, size_t n,
                     uint64_t now) __attribute__((warn_unused_result));

/* Repositories (with manifests, tags or blob links) whose name starts with
 * prefix, in byte order. */
int meta_repos_list(struct meta *m, const char *prefix, struct meta_list *out)
        __attribute__((warn_unused_result));

struct meta_repo_kept {
	char digest[DIGEST_BUF];
	struct meta_list tags; /* the pinned tags kept on it */
};

struct meta_repo_tag {
	char tag[129];
	char digest[DIGEST_BUF];
};

struct meta_repo_deleted {
	uint64_t tags, manifests, links;
	struct meta_repo_tag *tag_list; /* the tags deleted (tags of them) */
	uint64_t bytes; /* blob bytes nothing references any more: what the
	                   collector frees past the grace */
	struct meta_repo_kept *kept; /* pinned manifests kept */
	size_t n_kept;
};
void meta_repo_deleted_free(struct meta_repo_deleted *d);

/* Deletes every tag, manifest and blob link of repo in ONE write txn,
 * except what keep says is pinned (a pinned tag, its manifest, a pinned
 * manifest, and the manifests and blob links under them).
 * RC_NAME_UNKNOWN when repo has nothing. */
int meta_repo_delete(struct meta *m, const char *repo,
                     const struct meta_keep *keep, uint64_t now,
                     struct meta_repo_deleted *out)
        __attribute__((warn_unused_result));

/* The pins of the last collection run that sent some (references as
 * sent), replaced whole. */
int meta_pins_put(struct meta *m, char *const *refs, size_t n)
        __attribute__((warn_unused_result));
int meta_pins_get(struct meta *m, struct meta_list *out)
        __attribute__((warn_unused_result));

struct meta_stats {
	uint64_t write_txns; /* committed since open */
	uint64_t flush_txns; /* of those, flushes of remembered reads */
};
void meta_stats_get(struct meta *m, struct meta_stats *out);

/* Bytes of the data file allocated past the index's last page when the
 * last write txn began (the head room a full volume leaves commits). */
uint64_t meta_reserve_room(struct meta *m);

/* ---- backup and restore ---- */

struct meta_backup_blob {
	char digest[DIGEST_BUF];
	uint64_t size;
};

/* What a backup carries from the index. */
struct meta_backup {
	int fd;            /* the rows file, read from offset 0; -1 none */
	uint64_t rows_len; /* its bytes */
	uint64_t rows;     /* rows in it */
	unsigned schema;   /* the index schema the rows are in */
	/* the blobs the rows reference, in digest order */
	struct meta_backup_blob *blobs;
	size_t n_blobs;
	uint64_t blob_bytes;
	uint64_t repositories, manifests, tags;
};

/* Takes a backup's snapshot of the index in ONE read txn, held only while
 * the rows are copied out: of every repository want accepts (want NULL:
 * all), its manifests, tags, referrers entries and blob links, the bodies
 * and children rows of those manifests, and the rows of the blobs they
 * reference (listed in out->blobs), and the cluster's pins (meta_pins_put)
 * as stored. The rows go to an unlinked file in the
 * index's directory (out->fd). Rows are copied as stored (the counts of a
 * partial backup are recomputed by the restore). Free with
 * meta_backup_free. */
int meta_backup_snapshot(struct meta *m,
                         int (*want)(const char *repo, void *arg), void *arg,
                         struct meta_backup *out)
        __attribute__((warn_unused_result));
void meta_backup_free(struct meta_backup *b);

/* Loads the rows file of a backup into an index that holds no blob and no
 * manifest yet (RC_BUSY otherwise), fed in pieces of any size, in write
 * txns of a bounded number of rows. RC_CORRUPT for a malformed rows file
 * (also when it ends early: see finish), RC_UNSUPPORTED when it was
 * written with another schema. Finish commits the last rows and lists the
 * blobs the rows name (out->blobs; out->fd is -1); free out with
 * meta_backup_free. The counts, the gc queue and the byte total are then
 * still as the source had them: meta_check_repair sets them right. */
struct meta_restore;
int meta_restore_open(struct meta *m, struct meta_restore **out)
        __attribute__((warn_unused_result));
int meta_restore_feed(struct meta_restore *r, const void *data, size_t len)
        __attribute__((warn_unused_result));
int meta_restore_finish(struct meta_restore *r, struct meta_backup *out)
        __attribute__((warn_unused_result));
void meta_restore_free(struct meta_restore *r);

/* ---- consistency check (`berth check`) ---- */

/* What meta_check_run finds wrong in the index, and the fields of a
 * problem each code fills in. */
enum meta_check_code {
	META_CHECK_ROW_CORRUPT = 1,   /* name: database, digest: the key in
	                                 printable form; the row fails to
	                                 decode */
	META_CHECK_REFCOUNT,          /* kind, repo, digest: stored count got,
	                                 recomputed count want */
	META_CHECK_QUEUED_REFERENCED, /* kind, repo, digest: queue key at got
	                                 while want references exist */
	META_CHECK_DUE_STALE,         /* kind, repo, digest: gc_due got set in
	                                 the row, want references, no queue
	                                 key */
	META_CHECK_NOT_QUEUED,        /* kind, repo, digest: no references,
	                                 not queued (row's gc_due got) */
	META_CHECK_QUEUE_DUE,         /* kind, repo, digest: a queue key at got
	                                 where the row's gc_due is want */
	META_CHECK_QUEUE_ORPHAN,      /* kind, repo, digest: a queue key at got
	                                 for a row that does not exist */
	META_CHECK_TAG_DANGLING,      /* repo, name: the tag, digest: its
	                                 target, which has no row in repo */
	META_CHECK_CHILD_MISSING,     /* kind: the child's, repo, digest: the
	                                 manifest, name: the missing child */
	META_CHECK_BODY_MISSING,      /* repo, digest: a manifest row without
	                                 its body */
	META_CHECK_BODY_ORPHAN,       /* digest: a body no repository holds */
	META_CHECK_BODYREFS,          /* digest: stored bodyrefs got,
	                                 repositories holding it want */
	META_CHECK_CHILDREN_ORPHAN,   /* digest: children rows of a manifest
	                                 no repository holds */
	META_CHECK_LINK_TWIN,         /* repo, digest: links row without its
	                                 blinks twin */
	META_CHECK_BLINK_TWIN,        /* repo, digest: blinks row without its
	                                 links twin */
	META_CHECK_LINK_DANGLING,     /* repo, digest: a link to a blob that
	                                 has no row */
	META_CHECK_REFERRER_MISSING,  /* repo, digest: a manifest whose subject
	                                 (name) has no referrers entry for it */
	META_CHECK_REFERRER_STALE,    /* repo, digest: a referrers entry under
	                                 subject name without such a
	                                 manifest */
	META_CHECK_BLOB_BYTES,        /* the running total of blob bytes got,
	                                 the sum of the blob rows want */
};

struct meta_check_problem {
	enum meta_check_code code;
	enum meta_gc_kind kind; /* where an item's kind applies, else 0 */
	const char *repo;       /* "" when none */
	const char *digest;
	const char *name; /* "" when none */
	uint64_t got, want;
	int repairable; /* meta_check_repair fixes it */
};

/* Everything a check reports; any function may be NULL. The strings are
 * valid during the call only. A non-zero return of blob, upload or intent
 * ends the check, which returns that value. */
typedef void (*meta_check_fn)(const struct meta_check_problem *p, void *arg);

struct meta_check_cb {
	meta_check_fn problem;
	/* every blob row */
	int (*blob)(const char *digest, uint64_t size, void *arg);
	/* every upload session row */
	int (*upload)(const char *uuid, const char *repo, uint64_t started,
	              void *arg);
	/* every intents row: a blob file a committed gc txn left to unlink;
	 * has_row: the blob has a row (again) */
	int (*intent)(const char *digest, uint64_t size, int has_row,
	              void *arg);
	void *arg;
};

struct meta_check_stats {
	uint64_t blobs, manifests, tags, uploads, intents, queued;
};

/* Verifies every invariant of the index from scratch in ONE read txn: the
 * reference counts recomputed by the rules at the top of this file; the
 * queue against those counts and the rows' gc_due (every count-0 item
 * queued exactly once at its gc_due, nothing else queued); tags point at
 * manifest rows of their repository; manifests have their body and their
 * children rows name existing blobs / manifests of the repository;
 * bodyrefs equals the repositories holding a digest, and no body or
 * children row outlives its last holder; links and blinks are twins and
 * name existing blobs; referrers entries match manifest subjects. Problems
 * and rows go to cb; *out (may be NULL) gets the counts. */
int meta_check_run(struct meta *m, const struct meta_check_cb *cb,
                   struct meta_check_stats *out)
        __attribute__((warn_unused_result));

struct meta_check_fix {
	uint64_t due;               /* due time of items the repair queues */
	const char *const *uploads; /* upload session rows to delete */
	size_t n_uploads;
	const char *const *intents; /* intents rows to delete */
	size_t n_intents;
};

/* Finds the problems again and fixes every repairable one, in ONE write
 * txn: counts set to the recomputed ones; the queue made to match them
 * (count-0 items not queued are queued at fx->due, a wrong gc_due is set
 * to the item's queue key, referenced items and keys without a row are
 * dequeued); dangling tags, stale referrers entries, orphan bodies and
 * children rows, links to missing blobs and blinks without twin deleted;
 * missing blinks added; bodyrefs recounted. Deletes the listed upload and
 * intent rows too. fn (may be NULL) gets every problem fixed, *fixed (may
 * be NULL) their number; they are fixed only when this returns 0. */
int meta_check_repair(struct meta *m, const struct meta_check_fix *fx,
                      meta_check_fn fn, void *arg, uint64_t *fixed)
        __attribute__((warn_unused_result));

/* FOR TESTS ONLY (they damage the index on purpose): sets a blob's or a
 * manifest's stored count and gc_due without touching the queue; puts a
 * raw key/value into a database by name ("blobs", "gcq", "tags", …), or
 * deletes the key when val is NULL. */
int meta_debug_set_count(struct meta *m, enum meta_gc_kind kind,
                         const char *repo, const char *digest,
                         uint64_t refcount, uint64_t gc_due)
        __attribute__((warn_unused_result));
int meta_debug_put_raw(struct meta *m, const char *db, const void *key,
                       size_t klen, const void *val, size_t vlen)
        __attribute__((warn_unused_result));

#endif
