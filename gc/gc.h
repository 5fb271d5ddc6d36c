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

struct blob_store;
struct meta;
struct gc;

struct gc_options {
	uint64_t upload_ttl; /* seconds without a byte; 0 = default 86400 */
	size_t batch_items;  /* items per write txn; 0 = default 256 */
	uint64_t batch_ns;   /* time per write txn; 0 = default 5 ms */
	/* While busy(busy_arg) says requests are being served, the collector
	 * paces itself to use at most busy_share percent of the time (it
	 * sleeps between its txns), so pulls keep their throughput; idle, it
	 * runs flat out. busy NULL: never paced. busy_share 0 = default 20. */
	int (*busy)(void *busy_arg);
	void *busy_arg;
	unsigned busy_share;
};

enum gc_kind { GC_MANIFEST = 1, GC_BLOB = 2, GC_UPLOAD = 3 };

struct gc_item {
	enum gc_kind kind;
	char repo[256];          /* manifests and uploads; "" for blobs */
	char digest[DIGEST_BUF]; /* manifests and blobs; the id for uploads */
	uint64_t size;
	const char *reason; /* static string: "unreferenced", "abandoned" */
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
};

/* Totals since start, for metrics. */
struct gc_stats {
	uint64_t runs, failed_runs;
	uint64_t items[4], bytes[4];
	uint64_t last_duration_ns, total_duration_ns;
	uint64_t queue_len, waiting;
	uint64_t unlink_failures; /* blob files left for a later run */
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
 *                 "size": N, "reason": "…"}, …]} */
char *gc_report_json(const struct gc_report *r);

/* Finishes unlinks left by a run that died between commit and unlink
 * (also done at the start of every run). Returns how many were done. */
int gc_finish_intents(struct gc *g, uint64_t *done)
        __attribute__((warn_unused_result));

/* Writes the reads remembered in memory into the index (between runs,
 * when the table fills up or on a timer). */
int gc_flush(struct gc *g) __attribute__((warn_unused_result));
/* 1 when the table of remembered reads asks for a flush. */
int gc_access_flush_due(struct gc *g);

void gc_stats_get(struct gc *g, struct gc_stats *out);

const char *gc_kind_name(enum gc_kind k);

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
