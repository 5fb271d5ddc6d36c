/* The collector: one run drains everything due from the gc queue in short
 * write txns (meta_gc_step), unlinks the blob files those txns removed,
 * purges abandoned upload sessions and upload files no session owns, and
 * reports. Runs never overlap. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/rc.h"
#include "gc/gc.h"
#include "gc/gc_internal.h"
#include "storage/blob.h"
#include "storage/meta.h"

#define DEFAULT_UPLOAD_TTL  86400u
#define DEFAULT_BATCH_ITEMS 256u
#define DEFAULT_BATCH_NS    (5u * 1000u * 1000u)
#define DEFAULT_BUSY_SHARE  10u
#define PACE_MAX_NS         (100u * 1000u * 1000u)

struct gc {
	struct meta *m;
	struct blob_store *bs;
	struct gc_options o;
	pthread_mutex_t run; /* one run (or flush) at a time */
	pthread_mutex_t stats_lock;
	struct gc_stats stats;
	uint64_t unlink_failures; /* under run */
	atomic_uint holds;        /* backups running (gc_hold) */
};

static uint64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *
gc_kind_name(enum gc_kind k)
{
	switch (k) {
	case GC_MANIFEST: return "manifest";
	case GC_BLOB: return "blob";
	case GC_UPLOAD: return "upload";
	}
	return "unknown";
}

int
gc_open(struct meta *m, struct blob_store *bs, const struct gc_options *o,
        struct gc **out)
{
	struct gc *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return -ENOMEM;
	g->m = m;
	g->bs = bs;
	if (o != NULL)
		g->o = *o;
	if (g->o.upload_ttl == 0)
		g->o.upload_ttl = DEFAULT_UPLOAD_TTL;
	if (g->o.batch_items == 0)
		g->o.batch_items = DEFAULT_BATCH_ITEMS;
	if (g->o.batch_ns == 0)
		g->o.batch_ns = DEFAULT_BATCH_NS;
	if (g->o.busy_share == 0 || g->o.busy_share > 100)
		g->o.busy_share = DEFAULT_BUSY_SHARE;
	pthread_mutex_init(&g->run, NULL);
	pthread_mutex_init(&g->stats_lock, NULL);
	*out = g;
	return 0;
}

void
gc_close(struct gc *g)
{
	if (g == NULL)
		return;
	pthread_mutex_destroy(&g->run);
	pthread_mutex_destroy(&g->stats_lock);
	free(g);
}

void
gc_report_free(struct gc_report *r)
{
	free(r->items);
	free(r->expired);
	free(r->kept);
	memset(r, 0, sizeof(*r));
}

static int
report_add(struct gc_report *r, enum gc_kind kind, const char *repo,
           const char *digest, uint64_t size, const char *reason)
{
	struct gc_item *it;

	if (r->n_items == r->cap_items) {
		size_t cap = r->cap_items ? r->cap_items * 2 : 32;
		struct gc_item *ni = realloc(r->items, cap * sizeof(*ni));
		if (ni == NULL)
			return -ENOMEM;
		r->items = ni;
		r->cap_items = cap;
	}
	it = &r->items[r->n_items++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	snprintf(it->repo, sizeof(it->repo), "%s", repo ? repo : "");
	snprintf(it->digest, sizeof(it->digest), "%s", digest);
	it->size = size;
	it->reason = reason;
	r->count[kind]++;
	r->bytes[kind] += size;
	if (kind != GC_MANIFEST)
		r->bytes_freed += size;
	return 0;
}

/* Unlinks the files of blobs whose rows are gone, unless the same content
 * was pushed again since (its row is back): the digest lock keeps such a
 * commit out between the check and the unlink. Then drops the intents. */
static int
unlink_blobs(struct gc *g, char (*digests)[DIGEST_BUF], size_t n)
{
	size_t done = 0;
	int rc = 0;

	/* A backup may still send them: the intents stay for later. */
	if (atomic_load(&g->holds) > 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int indexed, r;

		blob_digest_lock(g->bs, digests[i]);
		indexed = meta_blob_indexed(g->m, digests[i]);
		r = indexed == 0 ? blob_remove(g->bs, digests[i]) : 0;
		blob_digest_unlock(g->bs, digests[i]);
		if (indexed < 0 || (r != 0 && r != RC_BLOB_UNKNOWN)) {
			/* Keep its intent: the next run (or start) tries
			 * again. The rows are gone either way. */
			g->unlink_failures++;
			continue;
		}
		if (done != i)
			memcpy(digests[done], digests[i], DIGEST_BUF);
		done++;
	}
	if (done > 0) {
		int r = meta_gc_intents_done(g->m, digests, done);
		if (rc == 0)
			rc = r;
	}
	return rc;
}

static int
finish_intents_locked(struct gc *g, uint64_t *done)
{
	char(*list)[DIGEST_BUF] = NULL;
	size_t n = 0;
	int rc = meta_gc_intents(g->m, &list, &n);

	if (rc != 0)
		return rc;
	rc = unlink_blobs(g, list, n);
	free(list);
	if (done != NULL)
		*done = n;
	return rc;
}

int
gc_finish_intents(struct gc *g, uint64_t *done)
{
	int rc;

	pthread_mutex_lock(&g->run);
	rc = finish_intents_locked(g, done);
	pthread_mutex_unlock(&g->run);
	return rc;
}

void
gc_hold(struct gc *g)
{
	atomic_fetch_add(&g->holds, 1);
}

void
gc_release(struct gc *g)
{
	atomic_fetch_sub(&g->holds, 1);
}

unsigned
gc_holds(struct gc *g)
{
	return atomic_load(&g->holds);
}

int
gc_flush(struct gc *g)
{
	int rc;

	pthread_mutex_lock(&g->run);
	rc = meta_access_flush(g->m, NULL);
	pthread_mutex_unlock(&g->run);
	return rc;
}

int
gc_access_flush_due(struct gc *g)
{
	return meta_access_flush_wanted(g->m);
}

static int
batch_report(struct gc_report *r, const struct meta_gc_batch *b,
             const struct gc_pins *pins, gc_item_fn fn, void *arg)
{
	for (size_t i = 0; i < b->n_kept; i++) {
		const struct meta_gc_deleted *d = &b->kept[i];
		if (gc_report_kept(r, d->repo, "", d->digest,
		                   gc_pins_manifest(pins, d->repo, d->digest),
		                   "unreferenced") != 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < b->n; i++) {
		const struct meta_gc_deleted *d = &b->items[i];
		enum gc_kind k =
		        d->kind == META_GC_BLOB ? GC_BLOB : GC_MANIFEST;
		if (report_add(r, k, d->repo, d->digest, d->size,
		               "unreferenced") != 0)
			return -ENOMEM;
		if (fn != NULL)
			fn(&r->items[r->n_items - 1], arg);
	}
	return 0;
}

/* The blob digests of a batch, for the unlinks. */
static int
batch_blobs(const struct meta_gc_batch *b, char (**out)[DIGEST_BUF], size_t *n)
{
	char(*list)[DIGEST_BUF] = malloc((b->n ? b->n : 1) * DIGEST_BUF);
	size_t k = 0;

	if (list == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < b->n; i++)
		if (b->items[i].kind == META_GC_BLOB)
			memcpy(list[k++], b->items[i].digest, DIGEST_BUF);
	*out = list;
	*n = k;
	return 0;
}

/* Between two txns of a run: while the server is serving requests, sleep
 * so that the collector's share of the time stays at busy_share percent. */
static void
pace(struct gc *g, uint64_t spent_ns)
{
	uint64_t ns;
	struct timespec ts;

	if (g->o.busy == NULL || !g->o.busy(g->o.busy_arg))
		return;
	ns = spent_ns * (100u - g->o.busy_share) / g->o.busy_share;
	if (ns > PACE_MAX_NS)
		ns = PACE_MAX_NS;
	ts.tv_sec = (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	nanosleep(&ts, NULL);
}

static int
collect(struct gc *g, const struct gc_run_options *o, uint64_t now,
        struct gc_report *r)
{
	struct meta_gc_batch b;
	struct meta_keep keep;
	int rc = 0, conflicts = 0, dry_run = o->dry_run;
	size_t items = g->o.batch_items;
	gc_item_fn fn = o->item;
	void *arg = o->arg;

	memset(&b, 0, sizeof(b));
	gc_keep_init(&keep, o->policy, o->pins);
	if (dry_run) {
		/* what the run would expire first, in the same txn */
		struct meta_tag_expire *x = NULL;
		if (r->n_expired > 0 &&
		    (x = calloc(r->n_expired, sizeof(*x))) == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < r->n_expired; i++)
			x[i] = (struct meta_tag_expire){
			        r->expired[i].repo, r->expired[i].tag,
			        r->expired[i].digest, r->expired[i].pushed, 0};
		keep.expire = x;
		keep.n_expire = r->n_expired;
		rc = meta_gc_step(g->m, now, 0, 0, 1, &keep, &b);
		free(x);
		if (rc == 0)
			rc = batch_report(r, &b, o->pins, fn, arg);
		meta_gc_batch_free(&b);
		return rc;
	}
	do {
		char(*blobs)[DIGEST_BUF] = NULL;
		size_t nb = 0;
		uint64_t t0 = clock_ns(CLOCK_MONOTONIC);

		rc = meta_gc_step(g->m, now, items, g->o.batch_ns, 0, &keep,
		                  &b);
		if (rc_is_nospace(rc) && items > 1) {
			/* A full volume, and a txn that outgrew the index's
			 * head room: smaller txns, down to one item, so the
			 * files that free the space still go. */
			items = items > 8 ? items / 8 : 1;
			b.more = 1;
			continue;
		}
		if (rc != 0)
			break;
		if (b.conflict && ++conflicts > 1000) {
			rc = RC_BUSY; /* reads keep racing: stop here */
			break;
		}
		if ((rc = batch_blobs(&b, &blobs, &nb)) != 0)
			break;
		/* Committed: the files go now, the report says so. */
		rc = unlink_blobs(g, blobs, nb);
		free(blobs);
		if (rc != 0)
			break;
		if ((rc = batch_report(r, &b, o->pins, fn, arg)) != 0)
			break;
		if (b.more)
			pace(g, clock_ns(CLOCK_MONOTONIC) - t0);
	} while (b.more);
	meta_gc_batch_free(&b);
	return rc;
}

struct upload_ctx {
	struct gc *g;
	uint64_t now;
	int dry_run;
	struct gc_report *r;
	gc_item_fn fn;
	void *arg;
	struct meta_upload *stale;
	size_t n, cap;
	int err;
};

static int
upload_visit(const struct meta_upload *u, void *arg)
{
	struct upload_ctx *c = arg;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct meta_upload *ns = realloc(c->stale, cap * sizeof(*ns));
		if (ns == NULL) {
			c->err = -ENOMEM;
			return 1;
		}
		c->stale = ns;
		c->cap = cap;
	}
	c->stale[c->n++] = *u;
	return 0;
}

/* Upload sessions with no byte received for upload_ttl: file and row. A
 * session in use by a request (RC_BUSY) is left alone. */
static int
purge_uploads(struct gc *g, int dry_run, uint64_t now, gc_item_fn fn, void *arg,
              struct gc_report *r)
{
	struct upload_ctx c;
	int rc;

	memset(&c, 0, sizeof(c));
	rc = meta_upload_walk(g->m, upload_visit, &c);
	if (rc == 0)
		rc = c.err;
	for (size_t i = 0; i < c.n && rc == 0; i++) {
		const struct meta_upload *u = &c.stale[i];
		uint64_t size = 0, mtime = u->started;
		int st = blob_upload_stat(g->bs, u->uuid, &size, &mtime);

		if (st != 0 && st != RC_UPLOAD_UNKNOWN) {
			rc = st;
			break;
		}
		/* A row without a file: nothing was ever kept, age from the
		 * session's start. */
		if (mtime + g->o.upload_ttl > now ||
		    blob_upload_busy(g->bs, u->uuid))
			continue; /* a request holds it right now */
		if (!dry_run) {
			int d = st == 0 ? blob_upload_delete(g->bs, u->uuid)
			                : RC_UPLOAD_UNKNOWN;
			if (d == RC_BUSY)
				continue; /* a request holds it right now */
			if (d != 0 && d != RC_UPLOAD_UNKNOWN) {
				rc = d;
				break;
			}
			d = meta_upload_delete(g->m, u->uuid);
			if (d != 0 && d != RC_UPLOAD_UNKNOWN) {
				rc = d;
				break;
			}
		}
		if (report_add(r, GC_UPLOAD, u->repo, u->uuid, size,
		               "abandoned") != 0) {
			rc = -ENOMEM;
			break;
		}
		if (fn != NULL)
			fn(&r->items[r->n_items - 1], arg);
	}
	free(c.stale);
	return rc;
}

/* An upload file that no session owns, old enough to go. */
struct orphan {
	char uuid[BLOB_UUID_BUF];
	uint64_t size;
};

struct orphan_ctx {
	uint64_t before; /* files last written before this (s) */
	struct orphan *v;
	size_t n, cap;
	int err;
};

static int
orphan_visit(const struct blob_entry *e, void *arg)
{
	struct orphan_ctx *c = arg;

	/* Only files berth writes: anything else is left for a person. */
	if (e->id == NULL || !e->regular || e->mtime < 0 ||
	    (uint64_t)e->mtime >= c->before)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct orphan *nv = realloc(c->v, cap * sizeof(*nv));
		if (nv == NULL) {
			c->err = -ENOMEM;
			return 1;
		}
		c->v = nv;
		c->cap = cap;
	}
	snprintf(c->v[c->n].uuid, sizeof(c->v[c->n].uuid), "%s", e->id);
	c->v[c->n++].size = e->size;
	return 0;
}

uint64_t
gc_orphan_age(uint64_t upload_ttl)
{
	return upload_ttl > GC_ORPHAN_MIN_AGE ? upload_ttl : GC_ORPHAN_MIN_AGE;
}

/* Files in uploads/ that no session owns (a crash between the file's
 * creation and its row's commit, a cleanup that failed half-way), once
 * no byte was written to them for gc_orphan_age(upload_ttl). A session
 * creates its file before its row: a young file without a row may be one
 * whose row is being committed, and the age keeps it (the floor holds
 * even with a short --upload-ttl). The row is looked up again just before
 * each unlink, and a file a request holds is left alone. */
static int
purge_orphans(struct gc *g, int dry_run, uint64_t now, gc_item_fn fn, void *arg,
              struct gc_report *r)
{
	struct orphan_ctx c;
	uint64_t age = gc_orphan_age(g->o.upload_ttl);
	int rc;

	if (now < age)
		return 0;
	memset(&c, 0, sizeof(c));
	c.before = now - age + 1; /* mtime + age <= now, as for sessions */
	rc = blob_uploads_walk(g->bs, orphan_visit, &c);
	if (rc == 0)
		rc = c.err;
	for (size_t i = 0; i < c.n && rc == 0; i++) {
		const struct orphan *o = &c.v[i];
		int d = meta_upload_exists(g->m, o->uuid);

		if (d == RC_OK)
			continue; /* a session's: the rule above decides */
		if (d != RC_UPLOAD_UNKNOWN) {
			rc = d;
			break;
		}
		if (blob_upload_busy(g->bs, o->uuid))
			continue; /* a request holds it right now */
		if (!dry_run) {
			d = blob_upload_delete(g->bs, o->uuid);
			if (d == RC_BUSY || d == RC_UPLOAD_UNKNOWN)
				continue; /* held by a request, or gone */
			if (d != 0) {
				rc = d;
				break;
			}
		}
		if (report_add(r, GC_UPLOAD, "", o->uuid, o->size, "orphan") !=
		    0) {
			rc = -ENOMEM;
			break;
		}
		if (fn != NULL)
			fn(&r->items[r->n_items - 1], arg);
	}
	free(c.v);
	return rc;
}

int
gc_run(struct gc *g, int dry_run, uint64_t now, gc_item_fn fn, void *arg,
       struct gc_report *out)
{
	struct gc_run_options o = {.dry_run = dry_run, .item = fn, .arg = arg};

	return gc_run_with(g, &o, now, out);
}

int
gc_run_with(struct gc *g, const struct gc_run_options *o, uint64_t now,
            struct gc_report *out)
{
	struct gc_report r;
	struct meta_gc_state st;
	uint64_t t0;
	int rc, dry_run = o->dry_run;
	gc_item_fn fn = o->item;
	void *arg = o->arg;

	memset(&r, 0, sizeof(r));
	r.dry_run = dry_run;
	pthread_mutex_lock(&g->run);
	r.started_ns = clock_ns(CLOCK_REALTIME);
	t0 = clock_ns(CLOCK_MONOTONIC);
	/* Unlinks a run that died left behind (not in a dry run: it
	 * deletes nothing). */
	rc = dry_run ? 0 : finish_intents_locked(g, NULL);
	/* The reads remembered so far go into the rows first, so the
	 * memory table starts empty-ish and the rows carry the times. */
	if (rc == 0)
		rc = meta_access_flush(g->m, NULL);
	/* Tags that expired go first: the collection below then sees
	 * their manifests queued (due past the grace). */
	if (rc == 0)
		rc = gc_retention_expire(g->m, o, now, &r);
	if (rc == 0)
		rc = collect(g, o, now, &r);
	if (rc == 0)
		rc = purge_uploads(g, dry_run, now, fn, arg, &r);
	if (rc == 0)
		rc = purge_orphans(g, dry_run, now, fn, arg, &r);
	if (rc == 0 && (rc = meta_gc_state_get(g->m, now, &st)) == 0) {
		r.queue_len = st.queue_len;
		r.waiting = st.queue_len - st.due;
		r.next_due = st.next_due;
	}
	r.duration_ns = clock_ns(CLOCK_MONOTONIC) - t0;
	pthread_mutex_lock(&g->stats_lock);
	if (rc == 0) {
		g->stats.runs++;
		if (!dry_run)
			for (int k = 1; k < 4; k++) {
				g->stats.items[k] += r.count[k];
				g->stats.bytes[k] += r.bytes[k];
			}
		if (!dry_run) {
			g->stats.tags_expired += r.n_expired;
			g->stats.kept_by_pins += r.n_kept;
		}
		g->stats.queue_len = r.queue_len;
		g->stats.unlink_failures = g->unlink_failures;
		g->stats.waiting = r.waiting;
	} else {
		g->stats.failed_runs++;
	}
	g->stats.last_duration_ns = r.duration_ns;
	g->stats.total_duration_ns += r.duration_ns;
	pthread_mutex_unlock(&g->stats_lock);
	pthread_mutex_unlock(&g->run);
	if (rc != 0) {
		gc_report_free(&r);
		return rc;
	}
	*out = r;
	return 0;
}

void
gc_stats_get(struct gc *g, struct gc_stats *out)
{
	pthread_mutex_lock(&g->stats_lock);
	*out = g->stats;
	pthread_mutex_unlock(&g->stats_lock);
}
