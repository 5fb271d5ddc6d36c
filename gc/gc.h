/* The collector: drains the gc queue of the metadata index through meta_
 * and blob_, in short write transactions, and purges abandoned uploads.
 * Decides and orchestrates only: no LMDB, no HTTP, no logging (the caller
 * gets every deletion through a callback and logs it).
 *
 * Safety rule, re-checked inside the write txn that deletes an item: its
 * reference count is 0, it is due, and no request touched it (push, mount,
 * HEAD, GET) within the grace period. Blob files are unlinked only after
 * the txn that removed their rows committed, through an intent row that a
 * later run (or the next start) finishes if the process dies in between. */
#ifndef BERTH_GC_GC_H
#define BERTH_GC_GC_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "storage/meta.h"

struct blob_store;
struct meta;
struct gc;

struct gc_options {
	/* Seconds without a byte before an upload session goes; 0 = default
	 * 86400. A file in uploads/ that no session owns goes after
	 * gc_orphan_age(upload_ttl). */
	uint64_t upload_ttl;
	size_t batch_items; /* items per write txn; 0 = default 256 */
	uint64_t batch_ns;  /* time per write txn; 0 = default 5 ms */
	/* While busy(busy_arg) says requests are being served, the collector
	 * paces itself to use at most busy_share percent of the time (it
	 * sleeps between its txns), so pulls keep their throughput; idle, it
	 * runs flat out. busy NULL: never paced. busy_share 0 = default 10. */
	int (*busy)(void *busy_arg);
	void *busy_arg;
	unsigned busy_share;
};

/* A file in uploads/ without a session row is removed once no byte was
 * written to it for max(upload_ttl, GC_ORPHAN_MIN_AGE): a session's file
 * exists a moment before its row is committed, and the floor keeps such a
 * file whatever --upload-ttl says. */
#define GC_ORPHAN_MIN_AGE 3600u
uint64_t gc_orphan_age(uint64_t upload_ttl);

enum gc_kind { GC_MANIFEST = 1, GC_BLOB = 2, GC_UPLOAD = 3 };

struct gc_item {
	enum gc_kind kind;
	char repo[256];          /* manifests and uploads; "" for blobs and
	                            orphan upload files */
	char digest[DIGEST_BUF]; /* manifests and blobs; the id for uploads */
	uint64_t size;
	const char *reason; /* static string: "unreferenced", "abandoned",
	                       "orphan" (an upload file without session) */
};

/* A tag that expired (or, in a dry run, would). */
struct gc_expired {
	char repo[256];
	char tag[129];
	char digest[DIGEST_BUF];
	char reason[128]; /* "ttl label quay.expires-after", "policy rule 2
	                     (keep_last 2)", "repository delete" */
	uint64_t pushed;  /* its push time as judged */
	uint64_t expires; /* when it expired (s), 0 for a delete */
	uint64_t bytes;   /* blob bytes only it held: freed past the grace */
};

/* A tag or a manifest that a pin kept from expiring or being collected. */
struct gc_kept {
	char repo[256];
	char tag[129]; /* "" for a manifest */
	char digest[DIGEST_BUF];
	char pin[512];    /* the reference that pinned it */
	char reason[128]; /* what it was kept from */
};

struct gc_report {
	uint64_t started_ns; /* CLOCK_REALTIME */
	uint64_t duration_ns;
	int dry_run;
	uint64_t count[4]; /* by enum gc_kind */
	uint64_t bytes[4];
	uint64_t bytes_freed; /* blob files and upload files */
	uint64_t waiting;     /* items queued but not yet due */
	uint64_t next_due;    /* earliest due time of those (s), 0 if none */
	uint64_t queue_len;   /* gc queue length after the run */
	struct gc_item *items;
	size_t n_items, cap_items;
	/* Retention (gc_run_with): tags expired, and what pins kept. */
	struct gc_expired *expired;
	size_t n_expired, cap_expired;
	struct gc_kept *kept;
	size_t n_kept, cap_kept;
	uint64_t pins; /* pins in force during the run */
};

/* Totals since start, for metrics. */
struct gc_stats {
	uint64_t runs, failed_runs;
	uint64_t items[4], bytes[4];
	uint64_t last_duration_ns, total_duration_ns;
	uint64_t queue_len, waiting;
	uint64_t unlink_failures; /* blob files left for a later run */
	uint64_t tags_expired;    /* by TTL label or policy */
	uint64_t kept_by_pins;    /* tags and manifests a pin kept */
};

int gc_open(struct meta *m, struct blob_store *bs, const struct gc_options *o,
            struct gc **out) __attribute__((warn_unused_result));
void gc_close(struct gc *g);

/* Called for every item deleted (or, in a dry run, that would be). */
typedef void (*gc_item_fn)(const struct gc_item *it, void *arg);

/* One collection at time now (seconds). A run started while another is in
 * progress waits for it: runs never overlap. A dry run deletes nothing and
 * reports what a run at the same moment would delete. On success *out
 * holds the report (free it with gc_report_free). */
int gc_run(struct gc *g, int dry_run, uint64_t now, gc_item_fn fn, void *arg,
           struct gc_report *out) __attribute__((warn_unused_result));
void gc_report_free(struct gc_report *r);

/* The report as JSON (malloc'd, NUL-terminated), or NULL on ENOMEM:
 *   {"started": "2026-12-02T22:00:00Z", "duration_ms": 1.25,
 *    "dry_run": false,
 *    "manifests": {"deleted": N, "bytes": B},
 *    "blobs": {"deleted": N, "bytes": B},
 *    "uploads": {"deleted": N, "bytes": B},
 *    "bytes_freed": B,
 *    "waiting": {"count": N, "next_due": "…Z" | null},
 *    "queue": N,
 *    "deleted": [{"kind": "manifest"|"blob"|"upload",
 *                 "repository": "…", "digest": "…" | "upload": "<uuid>",
 *                 "size": N, "reason": "…"}, …],
 *    "tags_expired": [{"repository", "tag", "digest", "reason",
 *                      "expired": "…Z" | null, "bytes": N}, …],
 *    "kept_by_pins": [{"repository", "tag" (tags only), "digest", "pin",
 *                      "kept_from": the expiry or "unreferenced"}, …],
 *    "pins": N} */
char *gc_report_json(const struct gc_report *r);

/* Finishes unlinks left by a run that died between commit and unlink
 * (also done at the start of every run). Returns how many were done. */
int gc_finish_intents(struct gc *g, uint64_t *done)
        __attribute__((warn_unused_result));

/* A backup's hold on the blob files: while one is held, a run still
 * deletes rows (in its txns, as ever) but leaves the files of the blobs
 * it removed on disk, their intent rows kept; the first run after the
 * last hold is released unlinks them. A backup takes its hold before its
 * snapshot's read txn begins, so a blob that snapshot lists was removed
 * by a commit after the hold was taken, and its file stays until the
 * backup releases it. Cheap (an atomic count); holds nest. */
void gc_hold(struct gc *g);
void gc_release(struct gc *g);
/* Holds taken and not yet released. */
unsigned gc_holds(struct gc *g);

/* Writes the reads remembered in memory into the index (between runs,
 * when the table fills up or on a timer). */
int gc_flush(struct gc *g) __attribute__((warn_unused_result));
/* 1 when the table of remembered reads asks for a flush. */
int gc_access_flush_due(struct gc *g);

void gc_stats_get(struct gc *g, struct gc_stats *out);

const char *gc_kind_name(enum gc_kind k);

/* ---- retention policy ----
 *
 * Which tags expire, from a policy file (JSON, at most 1 MiB):
 *
 *   {
 *     "untagged_after": "6h",
 *     "rules": [
 *       {"repositories": ["review-**"], "tags": ["pr-*"],
 *        "expire_after": "7d", "idle_after": "2d", "keep_last": 2,
 *        "protect": ["main", "v*"]},
 *       {"repositories": ["apps-**"], "tags": ["main", "latest", "v*"],
 *        "protect": true},
 *       {"repositories": ["scratch-*"], "expire_after": "12h"}
 *     ]
 *   }
 *
 * Durations are an integer and one unit of s, m, h, d, w, at most 10
 * years (common/duration.h). "untagged_after" (optional) is how long a
 * manifest that no tag points to is kept; the policy only carries it.
 * "rules" (optional, may be empty) is an array of rules, each with:
 *   repositories  required, non-empty array of globs on the repository
 *                 name (common/glob.h: `*` within a component, `**`
 *                 across components, so "review/" followed by `**` is
 *                 every repository under review/);
 *   tags          optional, non-empty array of globs on the tag (default:
 *                 every tag); a tag glob holds no '/';
 *   and at least one of:
 *   expire_after  the tag expires this long after its push;
 *   idle_after    ... this long after its last pull (its push if it was
 *                 never pulled, or pushed again since);
 *   keep_last     1 to 100000: only the N most recently pushed tags the
 *                 rule governs are kept;
 *   protect       true: every tag the rule matches is protected; or a
 *                 non-empty array of tag globs: the matched tags that also
 *                 match one of them are. "protect": true with another
 *                 criterion is refused (it would never apply), and so is
 *                 "protect": false as the only criterion.
 * Unknown keys, wrong types, bad durations and empty arrays are errors.
 *
 * Evaluation, per tag: the rules are tried in order and the first whose
 * repository glob and tag glob both match governs the tag; a tag no rule
 * matches never expires by policy (its TTL label, if any, still applies).
 * A protected tag never expires, not even by its TTL label: protect wins.
 * Any other governed tag expires at the earliest of
 *   - its TTL label (ttl_expires),
 *   - pushed + expire_after,
 *   - max(pushed, last_pulled) + idle_after,
 *   - now, when it is not among the keep_last newest: keep_last ranks the
 *     unprotected tags of the repository governed by this same rule by
 *     push time, newest first (ties: tag name ascending); protected tags
 *     and tags governed by another rule are not counted.
 * The reason is whichever gives that time; on a tie the TTL label wins,
 * then expire_after, idle_after, keep_last. A tag is expired at now when
 * expires != 0 && expires <= now. */

struct gc_policy;

/* Parses a policy text text[0..len); file names it in messages. 0 and
 * *out, or RC_BAD_REQUEST with one line in err (when errlen > 0):
 * "FILE:LINE:COLUMN: why" for JSON syntax, else "FILE:LINE: PATH: why",
 * such as `policy.json:7: rules[1].expire_after: "3x" is not a duration
 * (a number and one of s, m, h, d, w)`; -ENOMEM. */
int gc_policy_parse(const char *text, size_t len, const char *file,
                    struct gc_policy **out, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* Reads and parses the file at path, named by path in messages. As
 * gc_policy_parse, plus a negative errno ("PATH: No such file or
 * directory") or RC_TOO_LARGE ("PATH: larger than 1 MiB"). */
int gc_policy_load(const char *path, struct gc_policy **out, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

/* NULL is fine. */
void gc_policy_free(struct gc_policy *p);

/* Number of rules. */
size_t gc_policy_rules(const struct gc_policy *p);

/* "untagged_after" in seconds, 0 when not set. */
uint64_t gc_policy_untagged_after(const struct gc_policy *p);

enum gc_expiry_reason {
	GC_EXPIRY_NONE = 0,     /* does not expire */
	GC_EXPIRY_PROTECTED,    /* a rule protects it */
	GC_EXPIRY_TTL,          /* its TTL label */
	GC_EXPIRY_EXPIRE_AFTER, /* pushed + expire_after */
	GC_EXPIRY_IDLE_AFTER,   /* last pull (or push) + idle_after */
	GC_EXPIRY_KEEP_LAST,    /* beyond the keep_last newest */
};

/* One tag of the repository being evaluated. */
struct gc_policy_tag {
	/* in */
	const char *tag;
	uint64_t pushed;      /* seconds since the epoch */
	uint64_t last_pulled; /* 0: never pulled */
	uint64_t ttl_expires; /* from a TTL label at push, 0: none */
	/* out */
	uint64_t expires;             /* 0: never */
	enum gc_expiry_reason reason; /* what gives expires (or PROTECTED,
	                                 NONE) */
	unsigned rule; /* 1-based index of the governing (first matching)
	                  rule, 0: none */
};

/* Evaluates every tag of ONE repository at time now (all its tags, in
 * any order, names unique: keep_last ranks them against each other) and
 * fills their out fields. p NULL: no policy, only TTL labels apply.
 * 0, RC_BAD_REQUEST for a NULL repo or tag, -ENOMEM. */
int gc_policy_eval(const struct gc_policy *p, const char *repo,
                   struct gc_policy_tag *tags, size_t n, uint64_t now)
        __attribute__((warn_unused_result));

/* The reason of an evaluated tag as text, into buf: "ttl label", "policy
 * rule 2 (expire_after 7d)", "policy rule 3 (idle_after 2d)", "policy
 * rule 1 (keep_last 2)", "protected by policy rule 2", "no expiry".
 * Durations are shown as written in the policy file. */
void gc_policy_reason(const struct gc_policy *p, const struct gc_policy_tag *t,
                      char *buf, size_t len);

/* ---- TTL labels ---- */

#define GC_TTL_LABEL      "berth.expires-after"
#define GC_TTL_LABEL_QUAY "quay.expires-after"

/* The TTL a pushed manifest asks for its tag: GC_TTL_LABEL (or, else,
 * GC_TTL_LABEL_QUAY) among the manifest's (or index's) annotations
 * (compact JSON or NULL), else among the config.Labels of an image's
 * config blob (config_len bytes, NULL when none). *ttl = 0 and *label =
 * NULL when none; RC_MANIFEST_INVALID with a line in err naming the label
 * for a value that is not a duration. */
int gc_ttl_of(const char *annotations_json, const void *config,
              size_t config_len, uint64_t *ttl, const char **label, char *err,
              size_t errlen) __attribute__((warn_unused_result));

/* ---- pins and retention runs ---- */

struct gc_pins;

/* Parses image references in use ("host[:port]/repo:tag",
 * "host/repo@sha256:…", "repo:tag@sha256:…", a bare "sha256:…"; a first
 * component with '.' or ':' or "localhost" is the host and is dropped).
 * RC_BAD_REQUEST with a line naming the reference for anything else. */
int gc_pins_parse(char *const *refs, size_t n, struct gc_pins **out, char *err,
                  size_t errlen) __attribute__((warn_unused_result));
void gc_pins_free(struct gc_pins *p);
size_t gc_pins_count(const struct gc_pins *p);
const char *const *gc_pins_refs(const struct gc_pins *p);
/* The reference that pins (repo, tag) / (repo, digest), NULL when none. */
const char *gc_pins_tag(const struct gc_pins *p, const char *repo,
                        const char *tag);
const char *gc_pins_manifest(const struct gc_pins *p, const char *repo,
                             const char *digest);

typedef void (*gc_expired_fn)(const struct gc_expired *e, void *arg);

struct gc_run_options {
	int dry_run;
	const struct gc_policy *policy; /* NULL: TTL labels only */
	const struct gc_pins *pins;     /* NULL: none */
	gc_item_fn item;                /* every item deleted, may be NULL */
	gc_expired_fn expired;          /* every tag expired, may be NULL */
	void *arg;
};

/* One run: the tags that expired by TTL label or policy at now (pinned
 * ones excepted) are deleted, then the collector drains the queue, never
 * deleting a pinned manifest (nor, through it, what it references).
 * An expired tag's manifest is queued like after any tag delete, at its
 * last access (pull, push, server start) + grace: an image nobody read
 * within the grace goes in the same run, one read recently at the first
 * run past the grace. A dry run changes nothing and reports what would expire
 * and be deleted. gc_run is this without policy and pins. */
int gc_run_with(struct gc *g, const struct gc_run_options *o, uint64_t now,
                struct gc_report *out) __attribute__((warn_unused_result));

/* One row of the cleanup query. */
struct gc_tag_row {
	struct meta_tag_info info;
	uint64_t expires;     /* when it expires (or expired), 0: never */
	char expires_by[128]; /* the label or rule that sets it, "" when none */
	const char *pin;      /* the pin that holds it, NULL: none (valid
	                         while the pins passed live) */
};

struct gc_tags_query {
	const char *repository; /* glob, NULL: every repository */
	int expired;            /* -1 any, 0 not expired, 1 expired at now */
	uint64_t idle_for;      /* only tags not pulled (or pushed) for this
	                           long, 0: any */
	size_t n;               /* rows at most */
	const char *last;       /* "repo:tag" cursor: rows after it */
	/* Only repositories this says may be listed (NULL: all). */
	int (*may_list)(const char *repo, void *arg);
	void *arg;
};

struct gc_tag_rows {
	struct gc_tag_row *v;
	size_t n, cap;
	int more; /* rows exist after the last one */
};
void gc_tag_rows_free(struct gc_tag_rows *r);

/* The tags matching q, in repository then tag order, with their expiry
 * under the policy and TTL labels at now, their pin and their sizes. */
int gc_tags_query(struct meta *m, const struct gc_policy *policy,
                  const struct gc_pins *pins, const struct gc_tags_query *q,
                  uint64_t now, struct gc_tag_rows *out)
        __attribute__((warn_unused_result));

/* What a repository delete did, for the answer and the log. */
struct gc_repo_result {
	char repo[256];
	struct meta_repo_deleted d;
	char (*pins)[512];       /* the pin of each kept manifest (d.kept[i]) */
	struct gc_expired *tags; /* the tags deleted */
	size_t n_tags;
};
void gc_repo_result_free(struct gc_repo_result *r);

/* Deletes a repository (every tag, manifest and blob link) except what a
 * pin keeps. RC_NAME_UNKNOWN when it holds nothing. */
int gc_repo_delete(struct meta *m, const struct gc_pins *pins, const char *repo,
                   uint64_t now, struct gc_repo_result *out)
        __attribute__((warn_unused_result));

/* ---- check: the index and the files verified from scratch ----
 *
 * `berth check`, with the server stopped: the index walked in one read txn
 * (meta_check_run) and compared with a walk of the blob and upload files;
 * with deep, every blob file hashed. A repair fixes what it safely can:
 * the index in one write txn (meta_check_repair), then the files. */

struct gc_check_options {
	uint64_t now;   /* seconds since the epoch */
	uint64_t grace; /* seconds: the repair removes orphan files and upload
	                   leftovers older than this, and queues items at
	                   now + grace */
	int deep;       /* hash every blob file */
	int repair;
};

enum gc_check_line {
	GC_CHECK_PROBLEM = 1, /* damage */
	GC_CHECK_NOTE,        /* not damage: a pending unlink, a leftover
	                         kept because it is younger than the grace */
	GC_CHECK_REPAIRED,    /* what the repair did */
};

/* Gets every line of the check, one problem, note or repair each, without
 * a newline. */
typedef void (*gc_check_fn)(enum gc_check_line what, const char *line,
                            void *arg);

struct gc_check_report {
	/* index rows */
	uint64_t blobs, manifests, tags, uploads;
	uint64_t files;    /* blob files */
	uint64_t problems; /* found */
	uint64_t pending;  /* pending unlinks (not problems) */
	int repair;        /* the fields below are set */
	uint64_t repaired; /* fixes made */
	uint64_t left;     /* problems a check after the repair still finds */
};

/* Runs the check (and the repair); *out gets the counts. 0 when it ran
 * (whatever it found), else an error code and nothing more was done. */
int gc_check_run(struct meta *m, struct blob_store *bs,
                 const struct gc_check_options *o, gc_check_fn fn, void *arg,
                 struct gc_check_report *out)
        __attribute__((warn_unused_result));

/* The summary line: "check: 1234 blobs, 567 manifests, 89 tags: 2
 * problems" (after a repair: "…: 2 problems, 2 repaired, 0 left"). */
void gc_check_summary(const struct gc_check_report *r, char *buf, size_t len);

#endif
