/* The collector against a real LMDB index and blob directory: the safety
 * rule in each ordering, cascades, shared layers, intents after a crash
 * between commit and unlink, upload purge, dry runs and restarts. */
#include "test_gc_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

/* Failure injection: blob_remove fails while fail_remove is set. */
int __real_blob_remove(struct blob_store *bs, const char *digest);
static int fail_remove;
int
__wrap_blob_remove(struct blob_store *bs, const char *digest)
{
	if (fail_remove)
		return -EIO;
	return __real_blob_remove(bs, digest);
}

/* Failure injection: a write txn collecting more than nospace_above items
 * fails as one outgrowing the index's head room on a full volume does
 * (0: off). The sizes asked are kept. */
int __real_meta_gc_step(struct meta *m, uint64_t now, size_t max_items,
                        uint64_t max_ns, int dry_run,
                        const struct meta_keep *keep, struct meta_gc_batch *b);
static size_t nospace_above, steps_seen[64], n_steps;
static int nospace_all; /* every write txn fails so */
int
__wrap_meta_gc_step(struct meta *m, uint64_t now, size_t max_items,
                    uint64_t max_ns, int dry_run, const struct meta_keep *keep,
                    struct meta_gc_batch *b)
{
	if (n_steps < 64)
		steps_seen[n_steps++] = max_items;
	if (!dry_run &&
	    (nospace_all || (nospace_above != 0 && max_items > nospace_above)))
		return -ENOSPC;
	return __real_meta_gc_step(m, now, max_items, max_ns, dry_run, keep, b);
}

static int
setup(void **state)
{
	fail_remove = 0;
	nospace_above = 0;
	nospace_all = 0;
	n_steps = 0;
	return gc_fx_setup(state);
}

/* Reopens the index (a restart) with reads floored at floor. */
static void
restart(struct gfx *x, uint64_t floor)
{
	gc_close(x->g);
	meta_close(x->base.m);
	x->base.opt.access_floor = floor;
	OK(meta_open(x->base.dir, &x->base.opt, &x->base.m));
	OK(gc_open(x->base.m, x->bs, NULL, &x->g));
}

static void
image(struct gfx *x, const char *repo, unsigned n, const char *tag,
      const char *b1, const char *b2, uint64_t now, char m[DIGEST_BUF])
{
	put_image(&x->base, repo, dg(m, n), tag, b1, b2, now);
}

static struct gc_report
run(struct gfx *x, uint64_t now, int dry)
{
	struct gc_report r;

	OK(gc_run(x->g, dry, now, NULL, NULL, &r));
	return r;
}

/* A HEAD of a referenced layer, then its last reference goes: the layer
 * stays for the grace after the HEAD, and a manifest relying on it goes
 * in. */
static void
test_head_then_last_reference(void **state)
{
	struct gfx *x = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF];
	struct gc_report r;
	uint64_t size;

	push_blob(x, "r", "layer one", T0, b1);
	push_blob(x, "r", "layer two", T0, b2);
	image(x, "r", 100, "t", b1, b2, T0, m1);
	/* Long after the push, a client checks that b1 exists. */
	OK(meta_blob_read(x->base.m, "r", b1, T0 + 500, &size));
	assert_int_equal(size, 9);
	OK(meta_tag_delete(x->base.m, "r", "t", T0 + 510));
	r = run(x, T0 + 520, 0);
	assert_true(listed(&r, GC_MANIFEST, m1));
	assert_true(listed(&r, GC_BLOB, b2)); /* nobody touched it */
	assert_false(listed(&r, GC_BLOB, b1));
	assert_int_equal(r.count[GC_MANIFEST], 1);
	assert_int_equal(r.count[GC_BLOB], 1);
	assert_int_equal(r.bytes_freed, 9);
	assert_int_equal(r.waiting, 1); /* b1, until T0 + 600 */
	assert_int_equal(r.next_due, T0 + 600);
	gc_report_free(&r);
	assert_true(file_exists(x, b1));
	assert_false(file_exists(x, b2));
	/* The client's manifest that relies on b1 goes in. */
	push_blob(x, "r", "layer two", T0 + 530, b2);
	image(x, "r", 101, "u", b1, b2, T0 + 530, m2);
	r = run(x, T0 + 700, 0);
	assert_int_equal(r.n_items, 0);
	gc_report_free(&r);
	assert_true(file_exists(x, b1));
}

/* A read of the manifest keeps it, and so its layers, through the grace;
 * after it everything goes in one run. */
static void
test_manifest_read_keeps_image(void **state)
{
	struct gfx *x = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF];
	struct meta_manifest mm;
	struct gc_report r;

	push_blob(x, "r", "a", T0, b1);
	push_blob(x, "r", "b", T0, b2);
	image(x, "r", 100, "t", b1, b2, T0, m1);
	OK(meta_manifest_read(x->base.m, "r", "t", 0, T0 + 500, &mm));
	OK(meta_tag_delete(x->base.m, "r", "t", T0 + 501));
	r = run(x, T0 + 550, 0);
	assert_int_equal(r.n_items, 0);
	gc_report_free(&r);
	/* Read in second T0+500 (up to T0+500.999), grace 100: kept
	 * through second T0+600, gone at T0+601. */
	r = run(x, T0 + 600, 0);
	assert_int_equal(r.n_items, 0);
	gc_report_free(&r);
	r = run(x, T0 + 601, 0);
	assert_int_equal(r.count[GC_MANIFEST], 1);
	assert_int_equal(r.count[GC_BLOB], 2);
	assert_int_equal(r.bytes[GC_BLOB], 2);
	gc_report_free(&r);
	assert_false(file_exists(x, b1));
	RC(RC_BLOB_UNKNOWN, meta_blob_read(x->base.m, "r", b1, T0 + 601, NULL));
}

/* A mount of a queued blob keeps it for the grace after the mount; then
 * it goes with the links of both repositories. */
static void
test_mount_of_queued_blob(void **state)
{
	struct gfx *x = *state;
	char b[DIGEST_BUF];
	struct gc_report r;
	uint64_t size;

	push_blob(x, "r", "lonely", T0, b);
	OK(meta_blob_mount(x->base.m, "s", b, "r", T0 + 150, &size));
	r = run(x, T0 + 200, 0);
	assert_int_equal(r.n_items, 0);
	assert_int_equal(r.waiting, 1);
	gc_report_free(&r);
	assert_true(file_exists(x, b));
	r = run(x, T0 + 250, 0); /* the second of the mount + grace */
	assert_int_equal(r.n_items, 0);
	gc_report_free(&r);
	r = run(x, T0 + 251, 0);
	assert_true(listed(&r, GC_BLOB, b));
	gc_report_free(&r);
	assert_false(file_exists(x, b));
	RC(RC_BLOB_UNKNOWN, meta_blob_get(x->base.m, "r", b, &size, NULL));
	RC(RC_BLOB_UNKNOWN, meta_blob_get(x->base.m, "s", b, &size, NULL));
	/* Pushed again: a new blob, new file. */
	push_blob(x, "s", "lonely", T0 + 260, b);
	assert_true(file_exists(x, b));
	OK(meta_blob_get(x->base.m, "s", b, &size, NULL));
}

/* Re-pushing a queued manifest (by digest) is an access; pushing it with
 * a tag references it. */
static void
test_repush_of_queued_manifest(void **state)
{
	struct gfx *x = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF];
	struct gc_report r;

	push_blob(x, "r", "1", T0, b1);
	push_blob(x, "r", "2", T0, b2);
	image(x, "r", 100, NULL, b1, b2, T0, m1);
	image(x, "r", 101, NULL, b1, b2, T0, m2);
	image(x, "r", 100, NULL, b1, b2, T0 + 150, m1); /* by digest again */
	image(x, "r", 101, "t", b1, b2, T0 + 150, m2);  /* with a tag */
	r = run(x, T0 + 200, 0);
	assert_int_equal(r.n_items, 0);
	gc_report_free(&r);
	r = run(x, T0 + 251, 0);
	assert_int_equal(r.count[GC_MANIFEST], 1);
	assert_true(listed(&r, GC_MANIFEST, m1));
	assert_int_equal(r.count[GC_BLOB], 0); /* m2 holds them */
	gc_report_free(&r);
	assert_int_equal(mf_rc(&x->base, "r", m2), 1);
	assert_true(file_exists(x, b1));
}

/* A tag moved away and back before the old target was due. */
static void
test_tag_moved_back(void **state)
{
	struct gfx *x = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF], m1[DIGEST_BUF], m2[DIGEST_BUF];
	struct gc_report r;

	push_blob(x, "r", "1", T0, b1);
	push_blob(x, "r", "2", T0, b2);
	image(x, "r", 100, "t", b1, b2, T0, m1);
	image(x, "r", 101, "t", b2, b1, T0 + 10, m2); /* m1 falls to 0 */
	assert_int_equal(mf_q(&x->base, "r", m1), T0 + GRACE);
	image(x, "r", 100, "t", b1, b2, T0 + 50, m1); /* back */
	assert_int_equal(mf_q(&x->base, "r", m1), 0);
	r = run(x, T0 + 200, 0);
	assert_int_equal(r.n_items, 1);
	assert_true(listed(&r, GC_MANIFEST, m2));
	gc_report_free(&r);
	assert_int_equal(mf_rc(&x->base, "r", m1), 1);
	assert_true(file_exists(x, b1) && file_exists(x, b2));
}

/* An index, its manifests and their layers go in one run. */
static void
test_cascade_through_index(void **state)
{
	struct gfx *x = *state;
	char l1[DIGEST_BUF], l2[DIGEST_BUF], l3[DIGEST_BUF];
	char m1[DIGEST_BUF], m2[DIGEST_BUF], i1[DIGEST_BUF];
	char mc[DIGEST_BUF + 2];
	struct gc_report r, dry;
	struct mi mx;

	push_blob(x, "r", "l1", T0, l1);
	push_blob(x, "r", "l2", T0, l2);
	push_blob(x, "r", "l3", T0, l3);
	image(x, "r", 100, NULL, l1, l2, T0, m1);
	image(x, "r", 101, NULL, l1, l3, T0, m2);
	snprintf(mc, sizeof(mc), "m:%s", m1);
	{
		char mc2[DIGEST_BUF + 2];
		snprintf(mc2, sizeof(mc2), "m:%s", m2);
		OK(put(&x->base, "r", dg(i1, 200), "t",
		       mk_info(&mx, MT_OCI_INDEX, NULL, NULL, 2, mc,
		               (int64_t)strlen(m1), mc2, (int64_t)strlen(m2)),
		       T0, NULL));
	}
	OK(meta_tag_delete(x->base.m, "r", "t", T0 + 500));
	dry = run(x, T0 + 500, 1);
	assert_int_equal(dry.count[GC_MANIFEST], 3);
	assert_int_equal(dry.count[GC_BLOB], 3);
	assert_true(dry.dry_run);
	assert_true(file_exists(x, l1)); /* nothing deleted */
	assert_int_equal(mf_rc(&x->base, "r", m1), 1);
	r = run(x, T0 + 500, 0);
	assert_int_equal(r.count[GC_MANIFEST], 3);
	assert_int_equal(r.count[GC_BLOB], 3);
	assert_int_equal(r.bytes_freed, dry.bytes_freed);
	assert_int_equal(r.bytes_freed, 6);
	for (size_t i = 0; i < dry.n_items; i++)
		assert_true(listed(&r, dry.items[i].kind, dry.items[i].digest));
	assert_int_equal(r.queue_len, 0);
	gc_report_free(&r);
	gc_report_free(&dry);
	assert_false(file_exists(x, l1) || file_exists(x, l2) ||
	             file_exists(x, l3));
	assert_int_equal(gcq_len(&x->base), 0);
}

/* A layer shared by two repositories' manifests counts once per manifest:
 * deleting one image keeps it for the other. */
static void
test_shared_layers(void **state)
{
	struct gfx *x = *state;
	char base[DIGEST_BUF], a[DIGEST_BUF], b[DIGEST_BUF];
	char ma[DIGEST_BUF], mb[DIGEST_BUF];
	struct gc_report r;
	uint64_t size;

	push_blob(x, "a", "base layer", T0, base);
	push_blob(x, "b", "base layer", T0, base);
	push_blob(x, "a", "app a", T0, a);
	push_blob(x, "b", "app b", T0, b);
	image(x, "a", 100, "v1", base, a, T0, ma);
	image(x, "b", 101, "v1", base, b, T0, mb);
	assert_int_equal(blob_rc(&x->base, base), 2);
	OK(meta_tag_delete(x->base.m, "a", "v1", T0 + 500));
	r = run(x, T0 + 500, 0);
	assert_int_equal(r.count[GC_MANIFEST], 1);
	assert_int_equal(r.count[GC_BLOB], 1);
	assert_true(listed(&r, GC_BLOB, a));
	gc_report_free(&r);
	assert_int_equal(blob_rc(&x->base, base), 1);
	OK(meta_blob_read(x->base.m, "b", base, T0 + 501, &size));
	assert_true(file_exists(x, base));
	assert_true(file_exists(x, b));
}

/* The process dies between the commit that removed a blob's rows and the
 * unlink: the intent row finishes the unlink later, unless the same
 * content was pushed again meanwhile. */
static void
test_intents_after_crash(void **state)
{
	struct gfx *x = *state;
	char b1[DIGEST_BUF], b2[DIGEST_BUF];
	char(*list)[DIGEST_BUF] = NULL;
	struct meta_gc_batch bt;
	struct gc_report r;
	uint64_t done = 0;
	size_t n = 0;

	push_blob(x, "r", "gone", T0, b1);
	push_blob(x, "r", "back", T0, b2);
	/* Step 1 of a run, then "crash": the rows are gone, files stay. */
	memset(&bt, 0, sizeof(bt));
	OK(meta_gc_step(x->base.m, T0 + 500, 256, 0, 0, NULL, &bt));
	assert_int_equal(bt.n, 2);
	meta_gc_batch_free(&bt);
	assert_true(file_exists(x, b1) && file_exists(x, b2));
	OK(meta_gc_intents(x->base.m, &list, &n));
	assert_int_equal(n, 2);
	free(list);
	/* Meanwhile b2 is pushed again (its file was still in place). */
	push_blob(x, "r", "back", T0 + 510, b2);
	restart(x, T0 + 520);
	OK(gc_finish_intents(x->g, &done));
	assert_int_equal(done, 2);
	assert_false(file_exists(x, b1));
	assert_true(file_exists(x, b2)); /* indexed again: kept */
	OK(meta_gc_intents(x->base.m, &list, &n));
	assert_int_equal(n, 0);
	free(list);

	/* An unlink that fails keeps its intent for the next run. */
	OK(meta_blob_unlink(x->base.m, "r", b2, T0 + 530));
	fail_remove = 1;
	r = run(x, T0 + 1000, 0);
	assert_true(listed(&r, GC_BLOB, b2));
	gc_report_free(&r);
	assert_true(file_exists(x, b2));
	OK(meta_gc_intents(x->base.m, &list, &n));
	assert_int_equal(n, 1);
	free(list);
	fail_remove = 0;
	r = run(x, T0 + 1001, 0);
	assert_int_equal(r.n_items, 0);
	gc_report_free(&r);
	assert_false(file_exists(x, b2));
	OK(meta_gc_intents(x->base.m, &list, &n));
	assert_int_equal(n, 0);
	free(list);
}

/* Upload sessions with no byte for the TTL go (file and row); a fresh one
 * and one in use by a request stay. */
static void
test_upload_purge(void **state)
{
	struct gfx *x = *state;
	char old[BLOB_UUID_BUF], fresh[BLOB_UUID_BUF], busy[BLOB_UUID_BUF];
	char path[512];
	struct timespec ts[2];
	struct blob_upload *up, *held;
	struct gc_options o = {.upload_ttl = 3600};
	struct gc_report r;
	uint64_t now = (uint64_t)time(NULL), size, mtime;
	const char *rowonly = "0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b";

	gc_close(x->g);
	OK(gc_open(x->base.m, x->bs, &o, &x->g));
	OK(blob_upload_create(x->bs, old));
	OK(blob_upload_acquire(x->bs, old, &up));
	OK(blob_upload_write(up, "12345", 5));
	blob_upload_release(up);
	OK(meta_upload_put(x->base.m, old, "r", now - 7200));
	OK(blob_upload_create(x->bs, fresh));
	OK(meta_upload_put(x->base.m, fresh, "r", now - 7200));
	OK(blob_upload_create(x->bs, busy));
	OK(meta_upload_put(x->base.m, busy, "r", now - 7200));
	OK(meta_upload_put(x->base.m, rowonly, "r", now - 7200));
	/* old and busy: last byte two hours ago. */
	ts[0].tv_sec = ts[1].tv_sec = (time_t)(now - 7200);
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	snprintf(path, sizeof(path), "%s/uploads/%s", x->data, old);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	snprintf(path, sizeof(path), "%s/uploads/%s", x->data, busy);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	OK(blob_upload_acquire(x->bs, busy, &held));

	r = run(x, now, 1); /* dry: listed, kept */
	assert_int_equal(r.count[GC_UPLOAD], 2);
	gc_report_free(&r);
	OK(blob_upload_stat(x->bs, old, &size, &mtime));
	r = run(x, now, 0);
	assert_int_equal(r.count[GC_UPLOAD], 2);
	assert_true(listed(&r, GC_UPLOAD, old));
	assert_true(listed(&r, GC_UPLOAD, rowonly));
	assert_int_equal(r.bytes[GC_UPLOAD], 5);
	gc_report_free(&r);
	RC(RC_UPLOAD_UNKNOWN, blob_upload_stat(x->bs, old, &size, &mtime));
	RC(RC_UPLOAD_UNKNOWN, meta_upload_check(x->base.m, old, "r"));
	RC(RC_UPLOAD_UNKNOWN, meta_upload_check(x->base.m, rowonly, "r"));
	OK(meta_upload_check(x->base.m, fresh, "r"));
	OK(meta_upload_check(x->base.m, busy, "r"));
	blob_upload_release(held);
}

/* Sets the mtime of DATA/uploads/<name> to t. */
static void
upload_age(struct gfx *x, const char *name, uint64_t t)
{
	struct timespec ts[2] = {{(time_t)t, 0}, {(time_t)t, 0}};
	char path[512];

	snprintf(path, sizeof(path), "%s/uploads/%s", x->data, name);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* An upload file without a row, of len bytes, last written at mtime. */
static void
orphan_file(struct gfx *x, const char *uuid, size_t len, uint64_t mtime)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/uploads/%s", x->data, uuid);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	upload_age(x, uuid, mtime);
}

static int
upload_file_exists(struct gfx *x, const char *uuid)
{
	uint64_t size, mtime;

	return blob_upload_stat(x->bs, uuid, &size, &mtime) == 0;
}

/* Files in uploads/ that no session owns go once older than the TTL, and
 * never younger than GC_ORPHAN_MIN_AGE (a session's file exists before its
 * row is committed); a session's file, one held by a request, and what
 * berth never writes stay. Orphans count as uploads in the report. */
static void
test_upload_orphans(void **state)
{
	struct gfx *x = *state;
	const char *old = "0a0a0a0a-0a0a-4a0a-8a0a-0a0a0a0a0a0a";
	const char *young = "0c0c0c0c-0c0c-4c0c-8c0c-0c0c0c0c0c0c";
	const char *held_o = "0d0d0d0d-0d0d-4d0d-8d0d-0d0d0d0d0d0d";
	const char *dir_o = "0e0e0e0e-0e0e-4e0e-8e0e-0e0e0e0e0e0e";
	char stale[BLOB_UUID_BUF], owned[BLOB_UUID_BUF], path[512];
	struct blob_upload *up, *held_s, *held_f;
	struct gc_options o = {.upload_ttl = 600};
	struct gc_report r;
	uint64_t now = (uint64_t)time(NULL);
	int fd;

	assert_int_equal(gc_orphan_age(1), GC_ORPHAN_MIN_AGE);
	assert_int_equal(gc_orphan_age(86400), 86400);
	gc_close(x->g);
	OK(gc_open(x->base.m, x->bs, &o, &x->g));
	/* Without rows: two hours old, half an hour old (past the TTL but
	 * under the floor), two hours old but held by a request. */
	orphan_file(x, old, 7, now - 7200);
	orphan_file(x, young, 3, now - 1800);
	orphan_file(x, held_o, 2, now - 7200);
	OK(blob_upload_acquire(x->bs, held_o, &held_f));
	/* Sessions, two hours without a byte: one abandoned, one held. */
	OK(blob_upload_create(x->bs, stale));
	OK(blob_upload_acquire(x->bs, stale, &up));
	OK(blob_upload_write(up, "12345", 5));
	blob_upload_release(up);
	OK(meta_upload_put(x->base.m, stale, "r", now - 7200));
	upload_age(x, stale, now - 7200);
	OK(blob_upload_create(x->bs, owned));
	OK(meta_upload_put(x->base.m, owned, "r", now - 7200));
	upload_age(x, owned, now - 7200);
	OK(blob_upload_acquire(x->bs, owned, &held_s));
	/* Not berth's: an old file of another name, a directory. */
	snprintf(path, sizeof(path), "%s/uploads/notes.txt", x->data);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	upload_age(x, "notes.txt", now - 7200);
	snprintf(path, sizeof(path), "%s/uploads/%s", x->data, dir_o);
	assert_int_equal(mkdir(path, 0755), 0);
	upload_age(x, dir_o, now - 7200);

	/* Dry run: the abandoned session once (its row owns the file), the
	 * old orphan; nothing removed. */
	r = run(x, now, 1);
	assert_int_equal(r.count[GC_UPLOAD], 2);
	assert_int_equal(r.n_items, 2);
	assert_true(listed(&r, GC_UPLOAD, stale));
	assert_true(listed(&r, GC_UPLOAD, old));
	assert_int_equal(r.bytes[GC_UPLOAD], 5 + 7);
	gc_report_free(&r);
	assert_true(upload_file_exists(x, old));
	assert_true(upload_file_exists(x, stale));

	r = run(x, now, 0);
	assert_int_equal(r.count[GC_UPLOAD], 2);
	assert_true(listed(&r, GC_UPLOAD, stale));
	assert_true(listed(&r, GC_UPLOAD, old));
	for (size_t i = 0; i < r.n_items; i++) {
		if (strcmp(r.items[i].digest, old) != 0)
			continue;
		assert_string_equal(r.items[i].reason, "orphan");
		assert_string_equal(r.items[i].repo, "");
		assert_int_equal(r.items[i].size, 7);
	}
	assert_int_equal(r.bytes[GC_UPLOAD], 5 + 7);
	gc_report_free(&r);
	assert_false(upload_file_exists(x, old));
	assert_false(upload_file_exists(x, stale));
	assert_true(upload_file_exists(x, young));
	assert_true(upload_file_exists(x, held_o));
	assert_true(upload_file_exists(x, owned));
	OK(meta_upload_check(x->base.m, owned, "r"));
	snprintf(path, sizeof(path), "%s/uploads/notes.txt", x->data);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/uploads/%s", x->data, dir_o);
	assert_int_equal(access(path, F_OK), 0);

	/* Released, the held orphan goes; the young one once past the
	 * floor, not a second before. */
	blob_upload_release(held_f);
	r = run(x, now, 0);
	assert_int_equal(r.count[GC_UPLOAD], 1);
	assert_true(listed(&r, GC_UPLOAD, held_o));
	gc_report_free(&r);
	r = run(x, now - 1800 + GC_ORPHAN_MIN_AGE - 1, 0);
	assert_int_equal(r.count[GC_UPLOAD], 0);
	gc_report_free(&r);
	r = run(x, now - 1800 + GC_ORPHAN_MIN_AGE, 0);
	assert_int_equal(r.count[GC_UPLOAD], 1);
	assert_true(listed(&r, GC_UPLOAD, young));
	gc_report_free(&r);
	/* The held session was never taken for an orphan (its row owns it);
	 * released, the session rule takes file and row. */
	blob_upload_release(held_s);
	r = run(x, now, 0);
	assert_int_equal(r.count[GC_UPLOAD], 1);
	assert_true(listed(&r, GC_UPLOAD, owned));
	assert_string_equal(r.items[0].reason, "abandoned");
	gc_report_free(&r);
	assert_false(upload_file_exists(x, owned));
	RC(RC_UPLOAD_UNKNOWN, meta_upload_check(x->base.m, owned, "r"));
}

/* With a TTL above the floor, an orphan waits for the TTL. */
static void
test_upload_orphans_long_ttl(void **state)
{
	struct gfx *x = *state;
	const char *o1 = "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f";
	struct gc_options o = {.upload_ttl = 3 * 86400};
	struct gc_report r;
	uint64_t now = (uint64_t)time(NULL);

	gc_close(x->g);
	OK(gc_open(x->base.m, x->bs, &o, &x->g));
	orphan_file(x, o1, 1, now - 2 * 86400);
	r = run(x, now, 0);
	assert_int_equal(r.count[GC_UPLOAD], 0);
	gc_report_free(&r);
	assert_true(upload_file_exists(x, o1));
	r = run(x, now + 86400, 0);
	assert_int_equal(r.count[GC_UPLOAD], 1);
	assert_true(listed(&r, GC_UPLOAD, o1));
	gc_report_free(&r);
	assert_false(upload_file_exists(x, o1));
}

/* After a restart every item counts as read at start: nothing goes before
 * start + grace. */
static void
test_restart_floor(void **state)
{
	struct gfx *x = *state;
	char b[DIGEST_BUF];
	struct gc_report r;

	push_blob(x, "r", "old", T0, b);
	restart(x, T0 + 500);
	r = run(x, T0 + 550, 0);
	assert_int_equal(r.n_items, 0);
	assert_int_equal(r.next_due, T0 + 600);
	gc_report_free(&r);
	r = run(x, T0 + 600, 0);
	assert_int_equal(r.n_items, 0);
	gc_report_free(&r);
	r = run(x, T0 + 601, 0);
	assert_true(listed(&r, GC_BLOB, b));
	gc_report_free(&r);
}

/* Reads flushed into the rows keep counting; a batch of one item per txn
 * drains the same as one big txn. */
static void
test_flush_and_small_batches(void **state)
{
	struct gfx *x = *state;
	struct gc_options o = {.batch_items = 1};
	char b[8][DIGEST_BUF], kept[DIGEST_BUF];
	struct gc_report r;
	uint64_t size;
	size_t flushed = 0;
	char s[32];

	gc_close(x->g);
	OK(gc_open(x->base.m, x->bs, &o, &x->g));
	for (int i = 0; i < 8; i++) {
		snprintf(s, sizeof(s), "blob %d", i);
		push_blob(x, "r", s, T0, b[i]);
	}
	push_blob(x, "r", "kept", T0, kept);
	OK(meta_blob_read(x->base.m, "r", kept, T0 + 450, &size));
	OK(meta_access_flush(x->base.m, &flushed));
	assert_int_equal(flushed, 1);
	assert_int_equal(blob_q(&x->base, kept), T0 + 550);
	r = run(x, T0 + 500, 0);
	assert_int_equal(r.count[GC_BLOB], 8);
	assert_int_equal(r.waiting, 1);
	gc_report_free(&r);
	assert_true(file_exists(x, kept));
	for (int i = 0; i < 8; i++)
		assert_false(file_exists(x, b[i]));
}

/* A full volume: txns of the default size fail for the index's head
 * room; the run goes on in smaller ones (256, 32, 4 items) and collects
 * everything. When even one item cannot commit, the run fails and loses
 * nothing: a later run collects it all. */
static void
test_nospace_smaller_batches(void **state)
{
	struct gfx *x = *state;
	char b[40][DIGEST_BUF], s[32];
	struct gc_report r;
	int saw256 = 0, saw32 = 0, saw4 = 0;

	for (int i = 0; i < 40; i++) {
		snprintf(s, sizeof(s), "full volume %d", i);
		push_blob(x, "r", s, T0, b[i]);
	}
	nospace_above = 4;
	r = run(x, T0 + 500, 0);
	assert_int_equal(r.count[GC_BLOB], 40);
	gc_report_free(&r);
	for (int i = 0; i < 40; i++)
		assert_false(file_exists(x, b[i]));
	for (size_t i = 0; i < n_steps; i++) {
		saw256 |= steps_seen[i] == 256;
		saw32 |= steps_seen[i] == 32;
		saw4 |= steps_seen[i] == 4;
		assert_true(steps_seen[i] == 256 || steps_seen[i] == 32 ||
		            steps_seen[i] == 4);
	}
	assert_true(saw256 && saw32 && saw4);
	/* 40 items in txns of 4: about 10 of them after the two refusals */
	assert_in_range(n_steps, 12, 14);

	/* not even one item fits: the run fails, nothing is lost */
	for (int i = 0; i < 5; i++) {
		snprintf(s, sizeof(s), "no room at all %d", i);
		push_blob(x, "r", s, T0 + 600, b[i]);
	}
	nospace_above = 0;
	nospace_all = 1;
	n_steps = 0;
	assert_int_equal(gc_run(x->g, 0, T0 + 1100, NULL, NULL, &r), -ENOSPC);
	assert_int_equal(n_steps, 4); /* 256, 32, 4, 1 */
	assert_int_equal(steps_seen[3], 1);
	for (int i = 0; i < 5; i++)
		assert_true(file_exists(x, b[i]));
	nospace_all = 0;
	r = run(x, T0 + 1100, 0);
	assert_int_equal(r.count[GC_BLOB], 5);
	gc_report_free(&r);
	for (int i = 0; i < 5; i++)
		assert_false(file_exists(x, b[i]));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_head_then_last_reference,
	                                        setup, gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_manifest_read_keeps_image,
	                                        setup, gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_mount_of_queued_blob,
	                                        setup, gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_repush_of_queued_manifest,
	                                        setup, gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_tag_moved_back, setup,
	                                        gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_cascade_through_index,
	                                        setup, gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_shared_layers, setup,
	                                        gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_intents_after_crash, setup,
	                                        gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_upload_purge, setup,
	                                        gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_upload_orphans, setup,
	                                        gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_upload_orphans_long_ttl,
	                                        setup, gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_restart_floor, setup,
	                                        gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_flush_and_small_batches,
	                                        setup, gc_fx_teardown),
	        cmocka_unit_test_setup_teardown(test_nospace_smaller_batches,
	                                        setup, gc_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
