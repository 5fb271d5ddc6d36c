/* The data volume as a running server sees it: the free-space guard that
 * refuses pushes before the volume is full (`--min-free`), and the
 * readiness check of the data directory (`/readyz`). Both only look:
 * statvfs, stat and access, never a write. */
#ifndef BERTH_STORAGE_SPACE_H
#define BERTH_STORAGE_SPACE_H

#include <stddef.h>
#include <stdint.h>

/* A minimum of free space: the larger of `bytes` and `bp` hundredths of a
 * percent of the volume's size. Both 0: no minimum. */
struct space_min {
	uint64_t bytes;
	unsigned bp; /* 0 to 10000 */
};

/* The default, "1G,2%": the larger of 1 GiB and 2% of the volume. */
#define SPACE_MIN_DEFAULT "1G,2%"

/* Parses a --min-free value: "0" (no minimum); a size, whole bytes with an
 * optional K, M, G or T (powers of 1024, case-insensitive, "Ki"... too):
 * "1073741824", "500M", "2G", "2Gi"; a share of the volume's size, up to
 * two decimals: "5%", "2.5%", at most "100%"; or one of each separated by
 * a comma, the larger counting: "1G,2%" (the default). 0, or
 * RC_BAD_REQUEST (out untouched). */
int space_min_parse(const char *s, struct space_min *out)
        __attribute__((warn_unused_result));

/* The bytes min stands for on a volume of total bytes. */
uint64_t space_min_bytes(const struct space_min *min, uint64_t total);

struct space;

/* Watches the data directory dir, which blob_store_open and meta_open
 * have made usable: remembers which directory and which index file
 * (DATA/meta/data.mdb) the server opened. 0, or an rc when dir or the
 * index cannot be looked at. */
int space_open(const char *dir, const struct space_min *min, struct space **out)
        __attribute__((warn_unused_result));
void space_close(struct space *sp);

/* Whether a request may add data: RC_OK, or RC_SPACE_LOW when the space
 * an unprivileged writer may still use on the volume (statvfs f_bavail)
 * is below the minimum; *avail and *need then say how much is free and
 * how much is required. One statvfs per call, no cache: the answer
 * follows a collection at once. A volume statvfs cannot read lets the
 * request go (it fails on its own if it must). NULL sp: no guard. */
int space_check(struct space *sp, uint64_t *avail, uint64_t *need);

/* Whether the data directory can still serve: the directory and its index
 * file are the ones opened at start (not gone, renamed away, or hidden by
 * a mount), and uploads/ and blobs/ accept new files as far as access(2)
 * tells (a volume remounted read-only fails). RC_OK, or an rc with a
 * short reason in why. *changed is set to 1 when the answer differs from
 * the previous call's (the first call compares with "ready"). */
int space_ready(struct space *sp, char *why, size_t len, int *changed);

#endif
