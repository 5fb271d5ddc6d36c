/* Internals of `berth check`, index side, shared by storage/meta_check.c
 * (the walks that recompute every count and report the problems) and
 * storage/meta_check_repair.c (the repair that applies the fixes the walks
 * collected). Nothing outside storage/meta_check*.c may include this
 * file. */
#ifndef BERTH_STORAGE_META_CHECK_INTERNAL_H
#define BERTH_STORAGE_META_CHECK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "storage/meta_internal.h"

/* ---- items: what the counts are recomputed for ---- */

enum item_type { IT_BLOB = 1, IT_MANIFEST = 2, IT_BODY = 3 };

struct item {
	unsigned char type;
	unsigned char has_refs; /* bodies: a bodyrefs row exists */
	unsigned char fix;      /* repair: rewrite the row and its queue keys */
	char *repo;             /* manifests; NULL otherwise */
	char digest[DIGEST_BUF];
	char subject[DIGEST_BUF]; /* manifests */
	uint64_t stored;          /* refcount in the row; bodies: bodyrefs */
	uint64_t want;            /* recomputed; bodies: repositories */
	uint64_t gc_due;
	uint64_t *dues; /* queue keys found for the item */
	size_t nq, capq;
};

struct table {
	struct item **slot;
	size_t cap, n; /* cap is a power of two, n < cap / 2 */
};

/* ---- the state of one check or repair ---- */

/* A fix of a row that is not an item's own (those are item.fix). */
struct fix {
	enum meta_check_code code;
	enum meta_gc_kind kind;
	char *repo, *name;
	char digest[DIGEST_BUF];
	uint64_t got, want;
};

struct ck {
	struct txn *t;
	struct table tb;
	const struct meta_check_cb *cb; /* check */
	struct meta_check_stats st;
	/* repair */
	int repair;
	const struct meta_check_fix *fx;
	meta_check_fn fixed_fn;
	void *fixed_arg;
	uint64_t fixed;
	struct fix *fixes;
	size_t nfix, capfix;
	uint64_t bytes; /* sum of the blob rows' sizes */
};

/* Walks every database into c->tb and evaluates every item: problems go to
 * the check's callback or (repair) become fixes in c->fixes and item.fix. */
void meta_check_analyze(struct ck *c);
void meta_check_table_free(struct table *tb);
/* 1 when a queue key of the item has due time due. */
int meta_check_item_queued(const struct item *it, uint64_t due);

#endif
