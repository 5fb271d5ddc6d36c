/* The index side of a backup and of a restore (see meta.h): a snapshot of
 * the rows a backup carries, taken in ONE read txn and written to an
 * unlinked file next to the index, with the list of the blobs those rows
 * reference; and the loading of such rows into a new, empty index.
 *
 * The rows file: "BRTHROW1", the schema version (u32), then one record
 * per row: database id (u8), key length (u32), value length (u32), key,
 * value; then a 0 id and the number of records (u64). Integers are
 * little-endian. Rows are copied as stored: a restore needs the schema
 * they were written with. */
#include "storage/meta_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rc.h"

#define ROWS_MAGIC     "BRTHROW1"
#define ROWS_MAGIC_LEN 8
#define ROWS_BUF       (256u * 1024u)
#define ROW_VAL_MAX    (64u << 20) /* larger than any row berth writes */
#define RESTORE_BATCH  20000u      /* rows per write txn of a restore */

/* The databases a backup carries, by their id in the rows file. The gc
 * queue, the intents and upload sessions are not carried, nor of the
 * "meta" database anything but the cluster's pins: a restore rebuilds the
 * queue and the byte total, has nothing to unlink nor any upload, and
 * makes its own schema row and instance id. The pins are carried so that
 * a collection run of the restored server, before the CronJob sends them
 * again, keeps what the cluster runs. */
#define PINS_KEY "pins" /* as storage/meta_retention.c stores them */
enum row_db {
	DB_END = 0,
	DB_BLOBS,
	DB_LINKS,
	DB_MANIFESTS,
	DB_BODIES,
	DB_BODYREFS,
	DB_CHILDREN,
	DB_TAGS,
	DB_REFERRERS,
	DB_BLINKS,
	DB_INFO, /* the "pins" row only */
	DB_COUNT
};

static MDB_dbi
row_dbi(const struct meta *m, unsigned id)
{
	switch (id) {
	case DB_BLOBS: return m->blobs;
	case DB_LINKS: return m->links;
	case DB_MANIFESTS: return m->manifests;
	case DB_BODIES: return m->bodies;
	case DB_BODYREFS: return m->bodyrefs;
	case DB_CHILDREN: return m->children;
	case DB_TAGS: return m->tags;
	case DB_REFERRERS: return m->referrers;
	case DB_BLINKS: return m->blinks;
	case DB_INFO: return m->info;
	}
	return 0;
}

/* ---- writing the rows file ---- */

struct rows_out {
	int fd;
	unsigned char *buf;
	size_t len;
	uint64_t total; /* bytes written to fd */
	uint64_t records;
	int err;
};

static void
out_flush(struct rows_out *o)
{
	size_t off = 0;

	while (o->err == 0 && off < o->len) {
		ssize_t n = write(o->fd, o->buf + off, o->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			o->err = n < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)n;
		o->total += (uint64_t)n;
	}
	o->len = 0;
}

static void
out_bytes(struct rows_out *o, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (o->err == 0 && n > 0) {
		size_t room = ROWS_BUF - o->len, k = n < room ? n : room;
		memcpy(o->buf + o->len, s, k);
		o->len += k;
		s += k;
		n -= k;
		if (o->len == ROWS_BUF)
			out_flush(o);
	}
}

static void
out_le(struct rows_out *o, uint64_t v, unsigned width)
{
	unsigned char b[8];

	for (unsigned i = 0; i < width; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	out_bytes(o, b, width);
}

static void
out_row(struct rows_out *o, unsigned db, const MDB_val *k, const MDB_val *v)
{
	unsigned char id = (unsigned char)db;

	out_bytes(o, &id, 1);
	out_le(o, k->mv_size, 4);
	out_le(o, v->mv_size, 4);
	out_bytes(o, k->mv_data, k->mv_size);
	out_bytes(o, v->mv_data, v->mv_size);
	o->records++;
}

/* An unlinked file in dir (the index's directory: same volume, private). */
static int
tmp_open(const char *dir)
{
	char path[4096];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (snprintf(path, sizeof(path), "%s/backup.XXXXXX", dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

/* ---- the snapshot ---- */

struct digests {
	char (*v)[DIGEST_BUF];
	size_t n, cap;
};

static int
digests_add(struct digests *d, const char *s, size_t len)
{
	if (len >= DIGEST_BUF)
		return RC_CORRUPT;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		char(*nv)[DIGEST_BUF] = realloc(d->v, cap * DIGEST_BUF);
		if (nv == NULL)
			return -ENOMEM;
		d->v = nv;
		d->cap = cap;
	}
	memcpy(d->v[d->n], s, len);
	d->v[d->n][len] = '\0';
	d->n++;
	return 0;
}

static int
digest_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
digests_sort_unique(struct digests *d)
{
	size_t k = 0;

	if (d->n == 0)
		return;
	qsort(d->v, d->n, DIGEST_BUF, digest_cmp);
	for (size_t i = 1; i < d->n; i++)
		if (strcmp(d->v[i], d->v[k]) != 0)
			memcpy(d->v[++k], d->v[i], DIGEST_BUF);
	d->n = k + 1;
}

struct snap {
	struct txn *t;
	struct rows_out *o;
	int (*want)(const char *repo, void *arg);
	void *arg;
	struct digests manifests, blobs;
	struct meta_backup *b;
	char last_repo[256];
	int last_wanted;
};

/* The repository of a key (the bytes before its first NUL), whether the
 * caller wants it; repos counted as they come (keys are in order). */
static int
key_repo_wanted(struct snap *s, const MDB_val *k, int count)
{
	const char *p = k->mv_data, *nul = memchr(p, '\0', k->mv_size);
	size_t len = nul != NULL ? (size_t)(nul - p) : 0;

	if (nul == NULL || len >= sizeof(s->last_repo)) {
		meta_txn_fail(s->t, RC_CORRUPT);
		return 0;
	}
	if (strlen(s->last_repo) == len && memcmp(s->last_repo, p, len) == 0)
		return s->last_wanted;
	memcpy(s->last_repo, p, len);
	s->last_repo[len] = '\0';
	s->last_wanted = s->want == NULL || s->want(s->last_repo, s->arg);
	if (s->last_wanted && count)
		s->b->repositories++;
	return s->last_wanted;
}

static void
dump_manifests(struct snap *s)
{
	struct key all;
	struct scan sc;

	meta_key_init(&all);
	s->last_repo[0] = '\0';
	s->last_wanted = -1;
	meta_scan_open(s->t, &sc, s->t->m->manifests, &all, NULL);
	while (meta_scan_next(&sc)) {
		size_t rl;
		int rc;

		if (!key_repo_wanted(s, &sc.k, 1))
			continue;
		rl = strlen(s->last_repo) + 1;
		rc = digests_add(&s->manifests, (const char *)sc.k.mv_data + rl,
		                 sc.k.mv_size - rl);
		if (rc != 0) {
			meta_txn_fail(s->t, rc);
			break;
		}
		out_row(s->o, DB_MANIFESTS, &sc.k, &sc.v);
		s->b->manifests++;
	}
	meta_scan_close(&sc);
}

/* Rows of a repo-keyed database (tags, referrers) of the wanted repos. */
static void
dump_repo_rows(struct snap *s, MDB_dbi dbi, unsigned id, uint64_t *count)
{
	struct key all;
	struct scan sc;

	meta_key_init(&all);
	s->last_repo[0] = '\0';
	s->last_wanted = -1;
	meta_scan_open(s->t, &sc, dbi, &all, NULL);
	while (meta_scan_next(&sc)) {
		if (!key_repo_wanted(s, &sc.k, 0))
			continue;
		out_row(s->o, id, &sc.k, &sc.v);
		if (count != NULL)
			(*count)++;
	}
	meta_scan_close(&sc);
}

/* Body, bodyrefs and children of every manifest taken; the blob children
 * go into the blob list. */
static void
dump_manifest_parts(struct snap *s)
{
	for (size_t i = 0; i < s->manifests.n && s->t->rc == 0; i++) {
		const char *d = s->manifests.v[i];
		struct key k, prefix;
		struct scan sc;
		MDB_val v, kv;

		meta_key_of(&k, d, NULL);
		kv = (MDB_val){k.len, k.b};
		if (meta_txn_get(s->t, s->t->m->bodies, &k, &v))
			out_row(s->o, DB_BODIES, &kv, &v);
		if (meta_txn_get(s->t, s->t->m->bodyrefs, &k, &v))
			out_row(s->o, DB_BODYREFS, &kv, &v);
		meta_key_of(&prefix, d, "", NULL);
		meta_scan_open(s->t, &sc, s->t->m->children, &prefix, NULL);
		while (meta_scan_next(&sc)) {
			int rc;

			out_row(s->o, DB_CHILDREN, &sc.k, &sc.v);
			if (sc.v.mv_size < 1 ||
			    *(const char *)sc.v.mv_data == 'm')
				continue;
			rc = digests_add(&s->blobs,
			                 (const char *)sc.k.mv_data +
			                         prefix.len,
			                 sc.k.mv_size - prefix.len);
			if (rc != 0) {
				meta_txn_fail(s->t, rc);
				break;
			}
		}
		meta_scan_close(&sc);
	}
}

/* Blob rows of the list, and their links (both twins) in wanted repos. */
static void
dump_blobs(struct snap *s)
{
	struct meta_backup *b = s->b;

	b->blobs = calloc(s->blobs.n ? s->blobs.n : 1, sizeof(*b->blobs));
	if (b->blobs == NULL) {
		meta_txn_fail(s->t, -ENOMEM);
		return;
	}
	for (size_t i = 0; i < s->blobs.n && s->t->rc == 0; i++) {
		const char *d = s->blobs.v[i];
		struct blob_row r;
		struct key k, prefix;
		struct scan sc;
		MDB_val v, kv;

		meta_key_of(&k, d, NULL);
		kv = (MDB_val){k.len, k.b};
		if (!meta_txn_get(s->t, s->t->m->blobs, &k, &v) ||
		    !meta_blob_row_get(s->t, d, &r)) {
			/* a referenced blob without its row: damage */
			meta_txn_fail(s->t, RC_CORRUPT);
			break;
		}
		out_row(s->o, DB_BLOBS, &kv, &v);
		memcpy(b->blobs[b->n_blobs].digest, d, DIGEST_BUF);
		b->blobs[b->n_blobs++].size = r.size;
		b->blob_bytes += r.size;
		meta_key_of(&prefix, d, "", NULL);
		meta_scan_open(s->t, &sc, s->t->m->blinks, &prefix, NULL);
		while (meta_scan_next(&sc)) {
			char repo[256];
			size_t rl = sc.k.mv_size - prefix.len;
			struct key lk;
			MDB_val lv, lkv;

			if (rl >= sizeof(repo)) {
				meta_txn_fail(s->t, RC_CORRUPT);
				break;
			}
			memcpy(repo, (const char *)sc.k.mv_data + prefix.len,
			       rl);
			repo[rl] = '\0';
			if (s->want != NULL && !s->want(repo, s->arg))
				continue;
			meta_key_of(&lk, repo, d, NULL);
			lkv = (MDB_val){lk.len, lk.b};
			if (!meta_txn_get(s->t, s->t->m->links, &lk, &lv))
				continue; /* a lone twin: not carried */
			out_row(s->o, DB_BLINKS, &sc.k, &sc.v);
			out_row(s->o, DB_LINKS, &lkv, &lv);
		}
		meta_scan_close(&sc);
	}
}

/* The cluster's pins as the last collection run stored them. */
static void
dump_pins(struct snap *s)
{
	struct key k;
	MDB_val v, kv;

	meta_key_of(&k, PINS_KEY, NULL);
	kv = (MDB_val){k.len, k.b};
	if (meta_txn_get(s->t, s->t->m->info, &k, &v))
		out_row(s->o, DB_INFO, &kv, &v);
}

int
meta_backup_snapshot(struct meta *m, int (*want)(const char *repo, void *arg),
                     void *arg, struct meta_backup *out)
{
	struct meta_backup b;
	struct rows_out o = {.fd = -1};
	struct snap s;
	struct txn t;
	const char *dir = NULL;
	int rc;

	memset(&b, 0, sizeof(b));
	memset(&s, 0, sizeof(s));
	b.fd = -1;
	b.schema = META_SCHEMA_VERSION;
	if (mdb_env_get_path(m->env, &dir) != MDB_SUCCESS || dir == NULL)
		return RC_DB;
	if ((o.fd = tmp_open(dir)) < 0)
		return o.fd;
	if ((o.buf = malloc(ROWS_BUF)) == NULL) {
		close(o.fd);
		return -ENOMEM;
	}
	out_bytes(&o, ROWS_MAGIC, ROWS_MAGIC_LEN);
	out_le(&o, META_SCHEMA_VERSION, 4);
	s = (struct snap){.t = &t, .o = &o, .want = want, .arg = arg, .b = &b};
	if (meta_txn_begin(m, &t, 0) != 0) {
		rc = t.rc;
		goto fail;
	}
	dump_manifests(&s);
	dump_repo_rows(&s, m->tags, DB_TAGS, &b.tags);
	dump_repo_rows(&s, m->referrers, DB_REFERRERS, NULL);
	digests_sort_unique(&s.manifests);
	dump_manifest_parts(&s);
	digests_sort_unique(&s.blobs);
	dump_blobs(&s);
	dump_pins(&s);
	rc = meta_txn_end(&t);
	if (rc == 0 && o.err == 0) {
		out_le(&o, DB_END, 1);
		out_le(&o, o.records, 8);
		out_flush(&o);
	}
	if (rc == 0)
		rc = o.err;
	if (rc == 0 && lseek(o.fd, 0, SEEK_SET) != 0)
		rc = -errno;
	if (rc != 0)
		goto fail;
	b.fd = o.fd;
	b.rows_len = o.total;
	b.rows = o.records;
	free(o.buf);
	free(s.manifests.v);
	free(s.blobs.v);
	*out = b;
	return 0;
fail:
	close(o.fd);
	free(o.buf);
	free(s.manifests.v);
	free(s.blobs.v);
	free(b.blobs);
	return rc;
}

void
meta_backup_free(struct meta_backup *b)
{
	if (b == NULL)
		return;
	if (b->fd >= 0)
		close(b->fd);
	free(b->blobs);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}

/* ---- loading rows into a new index ---- */

struct meta_restore {
	struct meta *m;
	struct txn t;
	int open;              /* t is a write txn in progress */
	unsigned char hdr[12]; /* magic + schema, or a record's head */
	size_t hlen;
	int state; /* 0 magic, 1 record head, 2 key+value, 3 count, 4 done */
	unsigned db;
	uint32_t klen, vlen;
	unsigned char *kv;
	size_t kvlen, kvcap;
	uint64_t records, in_txn;
	int rc; /* sticks */
};

int
meta_restore_open(struct meta *m, struct meta_restore **out)
{
	struct meta_restore *r;
	struct meta_gc_state st;
	int rc;

	/* Only into an empty index: rows are put as they come. */
	if ((rc = meta_gc_state_get(m, 0, &st)) != 0)
		return rc;
	if (st.blobs != 0 || st.manifests != 0)
		return RC_BUSY;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->m = m;
	*out = r;
	return 0;
}

static uint64_t
le_get(const unsigned char *p, unsigned width)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < width; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int
restore_put(struct meta_restore *r)
{
	MDB_dbi dbi = row_dbi(r->m, r->db);
	struct key k;

	if (r->klen == 0 || r->klen > META_KEY_MAX)
		return RC_CORRUPT;
	if (r->db == DB_INFO && (r->klen != strlen(PINS_KEY) ||
	                         memcmp(r->kv, PINS_KEY, r->klen) != 0))
		return RC_CORRUPT; /* only the pins: never the schema row */
	if (!r->open) {
		if (meta_txn_begin(r->m, &r->t, 1) != 0)
			return r->t.rc;
		r->open = 1;
		r->in_txn = 0;
	}
	meta_key_init(&k);
	meta_key_bytes(&k, r->kv, r->klen);
	meta_txn_put(&r->t, dbi, &k, r->kv + r->klen, r->vlen);
	r->records++;
	if (++r->in_txn >= RESTORE_BATCH) {
		r->open = 0;
		return meta_txn_commit(&r->t);
	}
	return r->t.rc;
}

/* Takes up to want - have bytes of *p into buf; 1 when buf is full. */
static int
take(unsigned char *buf, size_t *have, size_t want, const unsigned char **p,
     size_t *n)
{
	size_t k = want - *have < *n ? want - *have : *n;

	memcpy(buf + *have, *p, k);
	*have += k;
	*p += k;
	*n -= k;
	return *have == want;
}

int
meta_restore_feed(struct meta_restore *r, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (r->rc == 0 && len > 0) {
		switch (r->state) {
		case 0:
			if (!take(r->hdr, &r->hlen, 12, &p, &len))
				break;
			if (memcmp(r->hdr, ROWS_MAGIC, ROWS_MAGIC_LEN) != 0) {
				r->rc = RC_CORRUPT;
				break;
			}
			if (le_get(r->hdr + 8, 4) != META_SCHEMA_VERSION) {
				r->rc = RC_UNSUPPORTED;
				break;
			}
			r->hlen = 0;
			r->state = 1;
			break;
		case 1:
			if (r->hlen == 0 && *p == DB_END) {
				p++;
				len--;
				r->state = 3;
				break;
			}
			if (!take(r->hdr, &r->hlen, 9, &p, &len))
				break;
			r->db = r->hdr[0];
			r->klen = (uint32_t)le_get(r->hdr + 1, 4);
			r->vlen = (uint32_t)le_get(r->hdr + 5, 4);
			r->hlen = 0;
			if (r->db >= DB_COUNT || r->klen == 0 ||
			    r->klen > META_KEY_MAX || r->vlen > ROW_VAL_MAX) {
				r->rc = RC_CORRUPT;
				break;
			}
			r->kvlen = 0;
			if ((size_t)r->klen + r->vlen > r->kvcap) {
				size_t cap = (size_t)r->klen + r->vlen;
				unsigned char *nb = realloc(r->kv, cap);
				if (nb == NULL) {
					r->rc = -ENOMEM;
					break;
				}
				r->kv = nb;
				r->kvcap = cap;
			}
			r->state = 2; /* klen > 0: bytes follow */
			break;
		case 2:
			if (!take(r->kv, &r->kvlen, (size_t)r->klen + r->vlen,
			          &p, &len))
				break;
			r->rc = restore_put(r);
			r->state = 1;
			break;
		case 3:
			if (!take(r->hdr, &r->hlen, 8, &p, &len))
				break;
			r->rc = le_get(r->hdr, 8) == r->records ? 0
			                                        : RC_CORRUPT;
			r->state = 4;
			break;
		default: r->rc = RC_CORRUPT; /* bytes after the end */
		}
	}
	return r->rc;
}

int
meta_restore_finish(struct meta_restore *r, struct meta_backup *out)
{
	struct meta_backup b;
	struct key all;
	struct scan sc;
	size_t cap = 0;
	int rc = r->rc;

	if (rc == 0 && r->state != 4)
		rc = RC_CORRUPT; /* the rows end early */
	if (r->open) {
		r->open = 0;
		if (rc == 0)
			rc = meta_txn_commit(&r->t);
		else
			meta_txn_abort(&r->t);
	}
	if (rc != 0)
		return r->rc = rc;
	/* The blobs the rows name: what the archive must have brought. */
	memset(&b, 0, sizeof(b));
	b.fd = -1;
	b.schema = META_SCHEMA_VERSION;
	b.rows = r->records;
	if (meta_txn_begin(r->m, &r->t, 0) != 0)
		return r->t.rc;
	meta_key_init(&all);
	meta_scan_open(&r->t, &sc, r->m->blobs, &all, NULL);
	while (meta_scan_next(&sc)) {
		struct dec d;

		if (b.n_blobs == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct meta_backup_blob *nb =
			        realloc(b.blobs, nc * sizeof(*nb));
			if (nb == NULL) {
				meta_txn_fail(&r->t, -ENOMEM);
				break;
			}
			b.blobs = nb;
			cap = nc;
		}
		if (sc.k.mv_size >= DIGEST_BUF) {
			meta_txn_fail(&r->t, RC_CORRUPT);
			break;
		}
		memcpy(b.blobs[b.n_blobs].digest, sc.k.mv_data, sc.k.mv_size);
		b.blobs[b.n_blobs].digest[sc.k.mv_size] = '\0';
		meta_dec_init(&d, &sc.v);
		b.blobs[b.n_blobs].size = meta_dec_u64(&d);
		if (d.err || digest_check(b.blobs[b.n_blobs].digest) != 0) {
			meta_txn_fail(&r->t, RC_CORRUPT);
			break;
		}
		b.blob_bytes += b.blobs[b.n_blobs++].size;
	}
	meta_scan_close(&sc);
	if ((rc = meta_txn_end(&r->t)) != 0) {
		free(b.blobs);
		return rc;
	}
	*out = b;
	return 0;
}

void
meta_restore_free(struct meta_restore *r)
{
	if (r == NULL)
		return;
	if (r->open)
		meta_txn_abort(&r->t);
	free(r->kv);
	free(r);
}
