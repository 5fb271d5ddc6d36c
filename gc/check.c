/* `berth check`: the index (meta_check_run, one read txn) compared with
 * the blob and upload files, problems put into words, and the repair:
 * unlinks pending intents, fixes the index in one write txn, removes old
 * leftovers, then checks again to count what is left. No LMDB, no HTTP:
 * storage does the walking, the caller prints. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rc.h"
#include "gc/gc.h"
#include "storage/blob.h"
#include "storage/meta.h"

/* A file found on disk, by id (a digest or an upload uuid). */
struct file {
	char id[DIGEST_BUF];
	uint64_t size;
	int64_t mtime;
	unsigned char regular, seen, intent;
};

struct files {
	struct file *v;
	size_t n, cap;
};

/* A list of ids (digests, uuids). */
struct ids {
	char (*v)[DIGEST_BUF];
	size_t n, cap;
};

/* One pass of the check. */
struct pass {
	struct meta *m;
	struct blob_store *bs;
	const struct gc_check_options *o;
	gc_check_fn fn;
	void *arg;
	int quiet; /* the pass after a repair: count only */
	struct files blobs, uploads;
	struct meta_check_stats st;
	uint64_t problems, pending, deep_bad;
	/* what the repair may do, found by the first pass */
	struct ids hash;        /* blob files to hash (deep) */
	struct ids orphans;     /* blob files without row, older than grace */
	struct ids up_files;    /* upload files without row, idem */
	struct ids up_rows;     /* upload rows without file, idem */
	struct ids unlink;      /* intents without blob row: unlink, drop */
	struct ids intents_row; /* intents whose blob has a row: drop */
};

static int
ids_add(struct ids *l, const char *id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		char(*nv)[DIGEST_BUF] = realloc(l->v, cap * sizeof(*nv));

		if (nv == NULL)
			return -ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	snprintf(l->v[l->n++], DIGEST_BUF, "%s", id);
	return 0;
}

static void
ids_free(struct ids *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int
file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct file *)a)->id,
	              ((const struct file *)b)->id);
}

static struct file *
files_find(const struct files *fs, const char *id)
{
	struct file key;

	if (fs->n == 0 || strlen(id) >= sizeof(key.id))
		return NULL;
	memset(&key, 0, sizeof(key));
	snprintf(key.id, sizeof(key.id), "%s", id);
	return bsearch(&key, fs->v, fs->n, sizeof(*fs->v), file_cmp);
}

static void
pass_free(struct pass *p)
{
	free(p->blobs.v);
	free(p->uploads.v);
	ids_free(&p->hash);
	ids_free(&p->orphans);
	ids_free(&p->up_files);
	ids_free(&p->up_rows);
	ids_free(&p->unlink);
	ids_free(&p->intents_row);
}

static void __attribute__((format(printf, 3, 4)))
emit(struct pass *p, enum gc_check_line what, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (what == GC_CHECK_PROBLEM)
		p->problems++;
	if (p->quiet || p->fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	p->fn(what, line, p->arg);
}

static uint64_t
age_of(const struct pass *p, int64_t t)
{
	return t > 0 && (uint64_t)t < p->o->now ? p->o->now - (uint64_t)t : 0;
}

/* ---- the files ---- */

static int
file_add(struct files *fs, const struct blob_entry *e)
{
	struct file *f;

	if (fs->n == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 256;
		struct file *nv = realloc(fs->v, cap * sizeof(*nv));

		if (nv == NULL)
			return -ENOMEM;
		fs->v = nv;
		fs->cap = cap;
	}
	f = &fs->v[fs->n++];
	memset(f, 0, sizeof(*f));
	snprintf(f->id, sizeof(f->id), "%s", e->id);
	f->size = e->size;
	f->mtime = e->mtime;
	f->regular = (unsigned char)e->regular;
	return 0;
}

static int
on_blob_file(const struct blob_entry *e, void *arg)
{
	struct pass *p = arg;

	if (e->id == NULL) {
		emit(p, GC_CHECK_PROBLEM,
		     "file %s : not a blob of berth's (left alone)", e->path);
		return 0;
	}
	return file_add(&p->blobs, e);
}

static int
on_upload_file(const struct blob_entry *e, void *arg)
{
	struct pass *p = arg;

	if (e->id == NULL || !e->regular) {
		emit(p, GC_CHECK_PROBLEM,
		     "file %s : not an upload of berth's (left alone)",
		     e->path);
		return 0;
	}
	return file_add(&p->uploads, e);
}

/* ---- the index, row by row ---- */

/* "blob sha256:…" or "manifest repo@sha256:…" */
static void
item_name(char *buf, size_t len, enum meta_gc_kind kind, const char *repo,
          const char *digest)
{
	if (kind == META_GC_MANIFEST)
		snprintf(buf, len, "manifest %s@%s", repo, digest);
	else
		snprintf(buf, len, "blob %s", digest);
}

/* One line for a problem of the index. */
static void
problem_text(const struct meta_check_problem *q, char *buf, size_t len)
{
	char it[512];

	item_name(it, sizeof(it), q->kind, q->repo, q->digest);
	switch (q->code) {
	case META_CHECK_ROW_CORRUPT:
		snprintf(buf, len, "row %s %s : does not decode", q->name,
		         q->digest);
		break;
	case META_CHECK_REFCOUNT:
		snprintf(buf, len,
		         "%s : refcount %" PRIu64 ", expected %" PRIu64, it,
		         q->got, q->want);
		break;
	case META_CHECK_QUEUED_REFERENCED:
		snprintf(buf, len,
		         "%s : queued (due %" PRIu64 ") with %" PRIu64
		         " references",
		         it, q->got, q->want);
		break;
	case META_CHECK_DUE_STALE:
		snprintf(buf, len,
		         "%s : gc_due %" PRIu64 " set with %" PRIu64
		         " references",
		         it, q->got, q->want);
		break;
	case META_CHECK_NOT_QUEUED:
		snprintf(buf, len, "%s : refcount 0, not queued", it);
		break;
	case META_CHECK_QUEUE_DUE:
		snprintf(buf, len,
		         "%s : queued at %" PRIu64 ", gc_due is %" PRIu64, it,
		         q->got, q->want);
		break;
	case META_CHECK_QUEUE_ORPHAN:
		snprintf(buf, len, "queue entry %s (due %" PRIu64 ") : no row",
		         it, q->got);
		break;
	case META_CHECK_TAG_DANGLING:
		snprintf(buf, len, "tag %s:%s : points at missing manifest %s",
		         q->repo, q->name, q->digest);
		break;
	case META_CHECK_CHILD_MISSING:
		snprintf(buf, len, "manifest %s@%s : child %s %s missing",
		         q->repo, q->digest,
		         q->kind == META_GC_MANIFEST ? "manifest" : "blob",
		         q->name);
		break;
	case META_CHECK_BODY_MISSING:
		snprintf(buf, len, "manifest %s@%s : body missing", q->repo,
		         q->digest);
		break;
	case META_CHECK_BODY_ORPHAN:
		snprintf(buf, len, "body %s : held by no repository",
		         q->digest);
		break;
	case META_CHECK_BODYREFS:
		snprintf(buf, len,
		         "body %s : bodyrefs %" PRIu64 ", expected %" PRIu64,
		         q->digest, q->got, q->want);
		break;
	case META_CHECK_CHILDREN_ORPHAN:
		snprintf(buf, len,
		         "children of %s : rows of a manifest no repository "
		         "holds",
		         q->digest);
		break;
	case META_CHECK_LINK_TWIN:
		snprintf(buf, len, "link %s@%s : blinks twin missing", q->repo,
		         q->digest);
		break;
	case META_CHECK_BLINK_TWIN:
		snprintf(buf, len, "link %s@%s : blinks row without links row",
		         q->repo, q->digest);
		break;
	case META_CHECK_LINK_DANGLING:
		snprintf(buf, len, "link %s@%s : blob has no row", q->repo,
		         q->digest);
		break;
	case META_CHECK_REFERRER_MISSING:
		snprintf(
		        buf, len,
		        "manifest %s@%s : no referrers entry under its subject "
		        "%s",
		        q->repo, q->digest, q->name);
		break;
	case META_CHECK_REFERRER_STALE:
		snprintf(buf, len,
		         "referrers entry %s@%s -> %s : no such manifest with "
		         "that subject",
		         q->repo, q->name, q->digest);
		break;
	case META_CHECK_BLOB_BYTES:
		snprintf(buf, len,
		         "storage total : %" PRIu64 " blob bytes recorded, "
		         "%" PRIu64 " in the blob rows",
		         q->got, q->want);
		break;
	default:
		snprintf(buf, len, "%s : unknown problem %d", it, (int)q->code);
		break;
	}
}

/* The suffix of a problem the repair leaves, in a repair's output. */
static const char *
stays(const struct pass *p)
{
	return p->o->repair ? " (cannot be repaired)" : "";
}

static void
on_problem(const struct meta_check_problem *q, void *arg)
{
	struct pass *p = arg;
	char line[1024];

	problem_text(q, line, sizeof(line));
	emit(p, GC_CHECK_PROBLEM, "%s%s", line, q->repairable ? "" : stays(p));
}

static int
on_blob_row(const char *digest, uint64_t size, void *arg)
{
	struct pass *p = arg;
	struct file *f = files_find(&p->blobs, digest);

	if (f == NULL) {
		emit(p, GC_CHECK_PROBLEM, "blob %s : file missing%s", digest,
		     stays(p));
		return 0;
	}
	f->seen = 1;
	if (!f->regular)
		emit(p, GC_CHECK_PROBLEM, "blob %s : not a regular file%s",
		     digest, stays(p));
	else if (f->size != size)
		emit(p, GC_CHECK_PROBLEM,
		     "blob %s : file size %" PRIu64 ", expected %" PRIu64 "%s",
		     digest, f->size, size, stays(p));
	else if (p->o->deep && !p->quiet)
		return ids_add(&p->hash, digest);
	return 0;
}

static int
on_upload_row(const char *uuid, const char *repo, uint64_t started, void *arg)
{
	struct pass *p = arg;
	struct file *f = files_find(&p->uploads, uuid);
	uint64_t age = age_of(p, (int64_t)started);

	if (f != NULL) {
		f->seen = 1;
		return 0;
	}
	emit(p, GC_CHECK_PROBLEM,
	     "upload %s (%s) : row without file, %" PRIu64 " s old", uuid, repo,
	     age);
	if (age >= p->o->grace)
		return ids_add(&p->up_rows, uuid);
	return 0;
}

static int
on_intent(const char *digest, uint64_t size, int has_row, void *arg)
{
	struct pass *p = arg;
	struct file *f = files_find(&p->blobs, digest);

	p->pending++;
	if (f != NULL)
		f->intent = 1;
	if (has_row) {
		emit(p, GC_CHECK_NOTE,
		     "blob %s : pending unlink of a blob indexed again (the "
		     "file stays)",
		     digest);
		return ids_add(&p->intents_row, digest);
	}
	emit(p, GC_CHECK_NOTE, "blob %s : pending unlink%s", digest,
	     f == NULL ? " (file already gone)" : "");
	return ids_add(&p->unlink, digest);
}

/* Files that no row claims. */
static int
leftovers(struct pass *p)
{
	int rc;

	for (size_t i = 0; i < p->blobs.n; i++) {
		const struct file *f = &p->blobs.v[i];
		uint64_t age = age_of(p, f->mtime);

		if (f->seen || f->intent)
			continue;
		emit(p, GC_CHECK_PROBLEM,
		     "blob %s : orphan file (no index row), %" PRIu64 " s old",
		     f->id, age);
		if (f->regular && age >= p->o->grace &&
		    (rc = ids_add(&p->orphans, f->id)) < 0)
			return rc;
	}
	for (size_t i = 0; i < p->uploads.n; i++) {
		const struct file *f = &p->uploads.v[i];
		uint64_t age = age_of(p, f->mtime);

		if (f->seen)
			continue;
		emit(p, GC_CHECK_PROBLEM,
		     "upload %s : file without row, %" PRIu64 " s old", f->id,
		     age);
		if (age >= p->o->grace &&
		    (rc = ids_add(&p->up_files, f->id)) < 0)
			return rc;
	}
	return 0;
}

static void
deep_hash(struct pass *p)
{
	char got[DIGEST_BUF];
	int rc;

	for (size_t i = 0; i < p->hash.n; i++) {
		rc = blob_file_hash(p->bs, p->hash.v[i], got);
		if (rc == 0 && strcmp(got, p->hash.v[i]) == 0)
			continue;
		p->deep_bad++;
		if (rc == 0)
			emit(p, GC_CHECK_PROBLEM,
			     "blob %s : content does not match its digest "
			     "(hashes to %s)%s",
			     p->hash.v[i], got, stays(p));
		else
			emit(p, GC_CHECK_PROBLEM, "blob %s : cannot read: %s",
			     p->hash.v[i], rc_str(rc));
	}
}

/* Walks the files, then the index, and compares. */
static int
pass_run(struct pass *p)
{
	struct meta_check_cb cb = {on_problem, on_blob_row, on_upload_row,
	                           on_intent, p};
	int rc;

	if ((rc = blob_files_walk(p->bs, on_blob_file, p)) != 0 ||
	    (rc = blob_uploads_walk(p->bs, on_upload_file, p)) != 0)
		return rc;
	if (p->blobs.n > 1) /* qsort wants a non-NULL base even for 0 */
		qsort(p->blobs.v, p->blobs.n, sizeof(*p->blobs.v), file_cmp);
	if (p->uploads.n > 1)
		qsort(p->uploads.v, p->uploads.n, sizeof(*p->uploads.v),
		      file_cmp);
	if ((rc = meta_check_run(p->m, &cb, &p->st)) != 0)
		return rc;
	if ((rc = leftovers(p)) != 0)
		return rc;
	deep_hash(p);
	return 0;
}

/* ---- repair ---- */

struct lines {
	char **v;
	size_t n, cap;
	int err;
};

/* Index fixes are told only once their txn committed: kept until then. */
static void
on_fixed(const struct meta_check_problem *q, void *arg)
{
	struct lines *l = arg;
	char line[1024], *copy;

	problem_text(q, line, sizeof(line));
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		char **nv = realloc(l->v, cap * sizeof(*nv));

		if (nv == NULL) {
			l->err = -ENOMEM;
			return;
		}
		l->v = nv;
		l->cap = cap;
	}
	if ((copy = strdup(line)) == NULL) {
		l->err = -ENOMEM;
		return;
	}
	l->v[l->n++] = copy;
}

static void
lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* Unlinks the files of pending intents whose blob has no row (the rows
 * are dropped by the index repair that follows). An unlink that fails
 * keeps its intent. */
static void
repair_intents(struct pass *p, uint64_t *repaired)
{
	size_t keep = 0;

	for (size_t i = 0; i < p->unlink.n; i++) {
		int rc = blob_remove(p->bs, p->unlink.v[i]);

		if (rc != 0 && rc != RC_BLOB_UNKNOWN) {
			emit(p, GC_CHECK_PROBLEM,
			     "blob %s : pending unlink failed: %s",
			     p->unlink.v[i], rc_str(rc));
			continue;
		}
		emit(p, GC_CHECK_REPAIRED,
		     "finished the pending unlink of blob %s", p->unlink.v[i]);
		(*repaired)++;
		memmove(p->unlink.v[keep++], p->unlink.v[i], DIGEST_BUF);
	}
	p->unlink.n = keep;
	for (size_t i = 0; i < p->intents_row.n; i++) {
		emit(p, GC_CHECK_REPAIRED,
		     "dropped the pending unlink of blob %s (indexed again)",
		     p->intents_row.v[i]);
		(*repaired)++;
	}
}

/* The index in one write txn: everything meta_check_repair fixes, the
 * upload rows without file and the intents finished above. */
static int
repair_index(struct pass *p, uint64_t *repaired)
{
	const char **ups = NULL, **ins = NULL;
	struct meta_check_fix fx;
	struct lines l = {NULL, 0, 0, 0};
	uint64_t fixed = 0;
	size_t n_ins = p->unlink.n + p->intents_row.n;
	int rc = -ENOMEM;

	ups = calloc(p->up_rows.n + 1, sizeof(*ups));
	ins = calloc(n_ins + 1, sizeof(*ins));
	if (ups == NULL || ins == NULL)
		goto out;
	for (size_t i = 0; i < p->up_rows.n; i++)
		ups[i] = p->up_rows.v[i];
	for (size_t i = 0; i < p->unlink.n; i++)
		ins[i] = p->unlink.v[i];
	for (size_t i = 0; i < p->intents_row.n; i++)
		ins[p->unlink.n + i] = p->intents_row.v[i];
	memset(&fx, 0, sizeof(fx));
	fx.due = p->o->now + (p->o->grace > 0 ? p->o->grace : 1);
	fx.uploads = ups;
	fx.n_uploads = p->up_rows.n;
	fx.intents = ins;
	fx.n_intents = n_ins;
	rc = meta_check_repair(p->m, &fx, on_fixed, &l, &fixed);
	if (rc == 0 && l.err != 0)
		rc = l.err; /* committed, but the lines are lost */
	if (rc != 0)
		goto out;
	for (size_t i = 0; i < l.n; i++)
		emit(p, GC_CHECK_REPAIRED, "%s", l.v[i]);
	for (size_t i = 0; i < p->up_rows.n; i++)
		emit(p, GC_CHECK_REPAIRED, "removed upload row %s (no file)",
		     p->up_rows.v[i]);
	*repaired += fixed + p->up_rows.n;
out:
	lines_free(&l);
	free(ups);
	free(ins);
	return rc;
}

/* Orphan blob files and upload files without row, older than the grace. */
static void
repair_files(struct pass *p, uint64_t *repaired)
{
	char path[4096];
	int rc;

	for (size_t i = 0; i < p->orphans.n; i++) {
		rc = blob_remove(p->bs, p->orphans.v[i]);
		if (blob_path(p->bs, p->orphans.v[i], path, sizeof(path)) != 0)
			snprintf(path, sizeof(path), "%s", p->orphans.v[i]);
		if (rc != 0 && rc != RC_BLOB_UNKNOWN) {
			emit(p, GC_CHECK_PROBLEM, "blob %s : cannot remove: %s",
			     p->orphans.v[i], rc_str(rc));
			continue;
		}
		emit(p, GC_CHECK_REPAIRED, "removed orphan file %s", path);
		(*repaired)++;
	}
	for (size_t i = 0; i < p->up_files.n; i++) {
		rc = blob_upload_delete(p->bs, p->up_files.v[i]);
		if (rc != 0 && rc != RC_UPLOAD_UNKNOWN) {
			emit(p, GC_CHECK_PROBLEM,
			     "upload %s : cannot remove: %s", p->up_files.v[i],
			     rc_str(rc));
			continue;
		}
		emit(p, GC_CHECK_REPAIRED, "removed upload file %s (no row)",
		     p->up_files.v[i]);
		(*repaired)++;
	}
}

/* Says which leftovers the repair keeps because they are too young. */
static void
note_kept(struct pass *p)
{
	uint64_t young = 0;

	for (size_t i = 0; i < p->blobs.n; i++) {
		const struct file *f = &p->blobs.v[i];

		if (!f->seen && !f->intent && f->regular &&
		    age_of(p, f->mtime) < p->o->grace)
			young++;
	}
	for (size_t i = 0; i < p->uploads.n; i++)
		if (!p->uploads.v[i].seen &&
		    age_of(p, p->uploads.v[i].mtime) < p->o->grace)
			young++;
	if (young > 0)
		emit(p, GC_CHECK_NOTE,
		     "kept %" PRIu64 " leftover(s) younger than the grace "
		     "(%" PRIu64 " s)",
		     young, p->o->grace);
}

int
gc_check_run(struct meta *m, struct blob_store *bs,
             const struct gc_check_options *o, gc_check_fn fn, void *arg,
             struct gc_check_report *out)
{
	struct gc_check_report r;
	struct pass p, again;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&p, 0, sizeof(p));
	p.m = m;
	p.bs = bs;
	p.o = o;
	p.fn = fn;
	p.arg = arg;
	if ((rc = pass_run(&p)) != 0)
		goto out;
	r.blobs = p.st.blobs;
	r.manifests = p.st.manifests;
	r.tags = p.st.tags;
	r.uploads = p.st.uploads;
	r.files = p.blobs.n;
	r.problems = p.problems;
	r.pending = p.pending;
	if (!o->repair)
		goto out;

	r.repair = 1;
	repair_intents(&p, &r.repaired);
	if ((rc = repair_index(&p, &r.repaired)) != 0)
		goto out;
	repair_files(&p, &r.repaired);
	note_kept(&p);

	/* What is left: a plain pass (the deep mismatches found above are
	 * never repaired and still count). */
	memset(&again, 0, sizeof(again));
	again.m = m;
	again.bs = bs;
	again.o = o;
	again.quiet = 1;
	rc = pass_run(&again);
	r.left = again.problems + p.deep_bad;
	pass_free(&again);
out:
	pass_free(&p);
	if (rc == 0 && out != NULL)
		*out = r;
	return rc;
}

void
gc_check_summary(const struct gc_check_report *r, char *buf, size_t len)
{
	int n = snprintf(buf, len,
	                 "check: %" PRIu64 " blobs, %" PRIu64
	                 " manifests, %" PRIu64 " tags: %" PRIu64 " problem%s",
	                 r->blobs, r->manifests, r->tags, r->problems,
	                 r->problems == 1 ? "" : "s");

	if (n < 0 || (size_t)n >= len)
		return;
	if (r->pending > 0)
		n += snprintf(buf + n, len - (size_t)n,
		              ", %" PRIu64 " pending unlink%s", r->pending,
		              r->pending == 1 ? "" : "s");
	if (n < 0 || (size_t)n >= len || !r->repair)
		return;
	snprintf(buf + n, len - (size_t)n,
	         ", %" PRIu64 " repaired, %" PRIu64 " left", r->repaired,
	         r->left);
}
