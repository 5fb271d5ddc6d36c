/* The metadata index's environment: the LMDB environment and its named
 * databases opened once, the schema recorded on first open and upgraded
 * from schema 1, and the close that frees it all. */
#include "storage/meta_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "common/rc.h"

#define DEFAULT_MAP_SIZE (64ull << 30)
#define DEFAULT_READERS  1024u
#define DEFAULT_GRACE    3600u
#define MAX_DBS          16

static int
mkdir_p(const char *dir)
{
	char path[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return -errno;
		path[i] = dir[i];
	}
	return 0;
}

static void
open_db(struct txn *t, const char *name, MDB_dbi *dbi)
{
	int rc;

	if (t->rc != 0)
		return;
	rc = mdb_dbi_open(t->txn, name, MDB_CREATE, dbi);
	if (rc != MDB_SUCCESS)
		meta_txn_fail(t, meta_rc(rc));
}

/* Schema 1 -> 2: the blinks twin of every links row. */
static void
migrate_v1(struct txn *t)
{
	struct key prefix, k;
	struct scan s;
	const char *repo, *digest;
	size_t rl;

	meta_key_init(&prefix);
	meta_scan_open(t, &s, t->m->links, &prefix, NULL);
	while (meta_scan_next(&s)) {
		repo = s.k.mv_data;
		rl = strnlen(repo, s.k.mv_size);
		if (rl + 1 >= s.k.mv_size) {
			meta_txn_fail(t, RC_CORRUPT);
			break;
		}
		digest = repo + rl + 1;
		meta_key_init(&k);
		meta_key_bytes(&k, digest, s.k.mv_size - rl - 1);
		meta_key_sep(&k);
		meta_key_bytes(&k, repo, rl);
		meta_txn_put(t, t->m->blinks, &k, "", 0);
	}
	meta_scan_close(&s);
}

/* Records the schema version and an instance id on first open, upgrades
 * schema 1, and refuses an environment written by another schema. */
static void
init_info(struct txn *t)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[16];
	char id[2 * sizeof(raw) + 1];
	struct key k;
	struct enc e;
	struct dec d;
	MDB_val v;

	meta_key_of(&k, "schema", NULL);
	if (meta_txn_get(t, t->m->info, &k, &v)) {
		uint64_t ver;

		meta_dec_init(&d, &v);
		ver = meta_dec_u64(&d);
		if (d.err || (ver != META_SCHEMA_VERSION && ver != 1)) {
			meta_txn_fail(t, RC_UNSUPPORTED);
			return;
		}
		if (ver == META_SCHEMA_VERSION)
			return;
		migrate_v1(t);
		meta_bytes_rebuild(t);
		meta_enc_init(&e);
		meta_enc_u64(&e, META_SCHEMA_VERSION);
		meta_txn_put_enc(t, t->m->info, &k, &e);
		meta_enc_free(&e);
		return;
	}
	if (t->rc != 0)
		return;
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		meta_txn_fail(t, -EIO);
		return;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		id[2 * i] = hex[raw[i] >> 4];
		id[2 * i + 1] = hex[raw[i] & 15];
	}
	id[sizeof(id) - 1] = '\0';
	meta_enc_init(&e);
	meta_enc_u64(&e, META_SCHEMA_VERSION);
	meta_txn_put_enc(t, t->m->info, &k, &e);
	meta_enc_free(&e);
	meta_bytes_rebuild(t); /* 0 */
	meta_key_of(&k, "instance", NULL);
	meta_txn_put(t, t->m->info, &k, id, sizeof(id));
}

int
meta_open(const char *dir, const struct meta_options *opt, struct meta **out)
{
	struct meta *m;
	struct txn t;
	uint64_t map_size = DEFAULT_MAP_SIZE;
	unsigned readers = DEFAULT_READERS;
	int rc, dead;

	if (opt != NULL && opt->map_size != 0)
		map_size = opt->map_size;
	if (opt != NULL && opt->max_readers != 0)
		readers = opt->max_readers;
	rc = mkdir_p(dir);
	if (rc != 0)
		return rc;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->map_fd = -1;
	meta_readers_init(m);
	m->track_reads = opt == NULL || !opt->no_read_tracking;
	m->grace = opt != NULL && opt->gc_grace != 0 ? opt->gc_grace
	                                             : DEFAULT_GRACE;
	if (meta_access_init(m) != 0) {
		meta_close(m);
		return -ENOMEM;
	}
	if (opt != NULL)
		atomic_store(&m->acc_floor, opt->access_floor);
	rc = mdb_env_create(&m->env);
	if (rc != MDB_SUCCESS) {
		m->env = NULL;
		goto fail;
	}
	if ((rc = mdb_env_set_maxdbs(m->env, MAX_DBS)) != MDB_SUCCESS ||
	    (rc = mdb_env_set_mapsize(m->env, (size_t)map_size)) !=
	            MDB_SUCCESS ||
	    (rc = mdb_env_set_maxreaders(m->env, readers)) != MDB_SUCCESS ||
	    (rc = mdb_env_open(m->env, dir, MDB_NOTLS, 0600)) != MDB_SUCCESS)
		goto fail;
	/* Slots left behind by a process that died inside a read txn. */
	(void)mdb_reader_check(m->env, &dead);
	meta_reserve_init(m, opt != NULL ? opt->map_reserve : 0);

	rc = meta_txn_begin(m, &t, 1);
	if (rc != 0) {
		meta_close(m);
		return rc;
	}
	open_db(&t, "blobs", &m->blobs);
	open_db(&t, "links", &m->links);
	open_db(&t, "manifests", &m->manifests);
	open_db(&t, "bodies", &m->bodies);
	open_db(&t, "bodyrefs", &m->bodyrefs);
	open_db(&t, "children", &m->children);
	open_db(&t, "tags", &m->tags);
	open_db(&t, "referrers", &m->referrers);
	open_db(&t, "uploads", &m->uploads);
	open_db(&t, "gcq", &m->gcq);
	open_db(&t, "blinks", &m->blinks);
	open_db(&t, "intents", &m->intents);
	open_db(&t, "meta", &m->info);
	init_info(&t);
	rc = meta_txn_commit(&t);
	if (rc != 0) {
		meta_close(m);
		return rc;
	}
	*out = m;
	return 0;
fail:
	meta_close(m);
	return meta_rc(rc);
}

void
meta_close(struct meta *m)
{
	if (m == NULL)
		return;
	meta_readers_close(m);
	if (m->env != NULL)
		mdb_env_close(m->env);
	meta_access_free(m);
	free(m);
}
