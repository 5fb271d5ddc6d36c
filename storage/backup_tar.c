/* The archive format of backups (backup.h): tar members compressed into
 * one zstd frame as they are pulled, and read back the same way. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "common/rc.h"
#include "storage/backup.h"

#define TAR_BLOCK   512u
#define IN_BUF      (1u << 20) /* tar bytes handed to zstd at once */
#define USTAR_MAXSZ 077777777777ull
#define PAX_NAME    "././@PaxHeader"
#define READ_BUF    (1u << 20)

/* ---- writing ---- */

enum wstate { W_NEXT, W_DATA, W_PAD, W_TRAILER, W_DONE };

struct backup_writer {
	ZSTD_CCtx *cc;
	backup_next_fn next;
	void *arg;
	enum wstate st;
	struct backup_member m;
	uint64_t left; /* bytes of the member still to copy */
	unsigned char *in;
	size_t in_len, in_pos;
	int ending, finished;
	int rc; /* sticks */
	uint64_t tar_bytes, zst_bytes;
};

int
backup_writer_open(int level, int workers, backup_next_fn next, void *arg,
                   struct backup_writer **out)
{
	struct backup_writer *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return -ENOMEM;
	w->next = next;
	w->arg = arg;
	w->cc = ZSTD_createCCtx();
	w->in = malloc(IN_BUF);
	if (w->cc == NULL || w->in == NULL) {
		backup_writer_close(w);
		return -ENOMEM;
	}
	if (ZSTD_isError(ZSTD_CCtx_setParameter(w->cc, ZSTD_c_compressionLevel,
	                                        level)) ||
	    ZSTD_isError(
	            ZSTD_CCtx_setParameter(w->cc, ZSTD_c_checksumFlag, 1))) {
		backup_writer_close(w);
		return RC_BAD_REQUEST;
	}
	/* Fails on a library built without threads: one thread then. */
	if (workers > 0)
		(void)ZSTD_CCtx_setParameter(w->cc, ZSTD_c_nbWorkers, workers);
	*out = w;
	return 0;
}

void
backup_writer_close(struct backup_writer *w)
{
	if (w == NULL)
		return;
	ZSTD_freeCCtx(w->cc);
	free(w->in);
	free(w);
}

void
backup_writer_counts(const struct backup_writer *w, uint64_t *tar_bytes,
                     uint64_t *zst_bytes)
{
	*tar_bytes = w->tar_bytes;
	*zst_bytes = w->zst_bytes;
}

static void
octal(char *dst, size_t width, uint64_t v)
{
	/* width - 1 digits and a NUL */
	snprintf(dst, width, "%0*" PRIo64, (int)(width - 1), v);
}

static void
header_sum(unsigned char *h)
{
	unsigned sum = 0;

	memset(h + 148, ' ', 8);
	for (unsigned i = 0; i < TAR_BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

static void
header_make(unsigned char *h, const char *name, uint64_t size, char type)
{
	memset(h, 0, TAR_BLOCK);
	snprintf((char *)h, 100, "%s", name);
	octal((char *)h + 100, 8, 0644);
	octal((char *)h + 108, 8, 0);
	octal((char *)h + 116, 8, 0);
	octal((char *)h + 124, 12, size <= USTAR_MAXSZ ? size : 0);
	octal((char *)h + 136, 12, 0);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	header_sum(h);
}

/* The member's header (a pax header before it when ustar cannot hold its
 * size or name) into the input buffer; the caller made room for 3
 * blocks. */
static int
member_header(struct backup_writer *w)
{
	size_t nlen = strlen(w->m.name);
	unsigned char *h = w->in + w->in_len;

	if (nlen == 0 || nlen >= BACKUP_NAME_MAX)
		return RC_BAD_REQUEST;
	if (w->m.size > USTAR_MAXSZ) {
		char rec[64];
		int n = snprintf(rec, sizeof(rec), "size=%" PRIu64 "\n",
		                 w->m.size);
		/* "LEN size=N\n", LEN counting itself */
		int len = n + 3;
		if (len >= 100)
			len++;
		header_make(h, PAX_NAME, (uint64_t)(len), 'x');
		memset(h + TAR_BLOCK, 0, TAR_BLOCK);
		snprintf((char *)h + TAR_BLOCK, TAR_BLOCK, "%d %s", len, rec);
		h += 2 * TAR_BLOCK;
		w->in_len += 2 * TAR_BLOCK;
	}
	header_make(h, w->m.name, w->m.size, '0');
	w->in_len += TAR_BLOCK;
	return 0;
}

/* Appends the next tar bytes to the input buffer, up to its end. */
static int
fill(struct backup_writer *w)
{
	while (w->in_len < IN_BUF && w->st != W_DONE) {
		size_t room = IN_BUF - w->in_len;

		switch (w->st) {
		case W_NEXT: {
			int r;
			if (room < 3 * TAR_BLOCK)
				return 0;
			memset(&w->m, 0, sizeof(w->m));
			w->m.fd = -1;
			r = w->next(w->arg, &w->m);
			if (r < 0)
				return r;
			if (r == 0) {
				w->st = W_TRAILER;
				break;
			}
			if ((r = member_header(w)) != 0)
				return r;
			w->left = w->m.size;
			w->st = W_DATA;
			break;
		}
		case W_DATA: {
			size_t k = w->left < room ? (size_t)w->left : room;
			if (k == 0) {
				w->st = W_PAD;
				break;
			}
			if (w->m.data != NULL) {
				memcpy(w->in + w->in_len,
				       (const unsigned char *)w->m.data +
				               (w->m.size - w->left),
				       k);
			} else {
				ssize_t n = read(w->m.fd, w->in + w->in_len, k);
				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0)
					return -errno;
				if (n == 0)
					return RC_CORRUPT; /* shorter */
				k = (size_t)n;
			}
			w->in_len += k;
			w->left -= k;
			break;
		}
		case W_PAD: {
			size_t pad =
			        (TAR_BLOCK - w->m.size % TAR_BLOCK) % TAR_BLOCK;
			if (room < pad)
				return 0;
			memset(w->in + w->in_len, 0, pad);
			w->in_len += pad;
			w->st = W_NEXT;
			break;
		}
		case W_TRAILER:
			if (room < 2 * TAR_BLOCK)
				return 0;
			memset(w->in + w->in_len, 0, 2 * TAR_BLOCK);
			w->in_len += 2 * TAR_BLOCK;
			w->st = W_DONE;
			break;
		case W_DONE: break;
		}
	}
	return 0;
}

ssize_t
backup_writer_read(struct backup_writer *w, void *buf, size_t max)
{
	/* zstd writes straight into the caller's buffer: no copy of the
	 * compressed stream. */
	while (w->rc == 0 && !w->finished) {
		ZSTD_inBuffer in;
		ZSTD_outBuffer out = {buf, max, 0};
		size_t r;

		if (w->in_pos == w->in_len && !w->ending) {
			w->in_pos = w->in_len = 0;
			if ((w->rc = fill(w)) != 0)
				break;
			w->tar_bytes += w->in_len;
			if (w->st == W_DONE)
				w->ending = 1;
		}
		in = (ZSTD_inBuffer){w->in, w->in_len, w->in_pos};
		r = ZSTD_compressStream2(w->cc, &out, &in,
		                         w->ending ? ZSTD_e_end
		                                   : ZSTD_e_continue);
		if (ZSTD_isError(r)) {
			w->rc = RC_UNSUPPORTED;
			break;
		}
		w->in_pos = in.pos;
		if (w->ending && r == 0)
			w->finished = 1;
		if (out.pos > 0) {
			w->zst_bytes += out.pos;
			return (ssize_t)out.pos;
		}
	}
	return w->rc;
}

/* ---- reading ---- */

enum rstate { R_HEADER, R_PAX, R_DATA, R_PAD, R_END2, R_TAIL };

struct reader {
	const struct backup_reader_cb *cb;
	char *err;
	size_t errlen;
	enum rstate st;
	unsigned char blk[TAR_BLOCK];
	size_t blen;
	char pax[TAR_BLOCK];
	size_t paxlen;
	uint64_t pax_size; /* from a pax header, UINT64_MAX none */
	uint64_t size, left, pad;
	uint64_t at; /* tar offset, for messages */
	int rc;
};

static int
parse_octal(const unsigned char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < n && p[i] == ' ')
		i++;
	if (i == n || p[i] < '0' || p[i] > '7')
		return -1;
	for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
		if (v >> 61)
			return -1;
		v = v * 8 + (uint64_t)(p[i] - '0');
	}
	for (; i < n; i++)
		if (p[i] != '\0' && p[i] != ' ')
			return -1;
	*out = v;
	return 0;
}

static int
bad(struct reader *r, const char *what)
{
	snprintf(r->err, r->errlen,
	         "the archive is corrupt: %s at byte %" PRIu64
	         " of the tar stream",
	         what, r->at);
	return RC_CORRUPT;
}

static int
block_zero(const unsigned char *b)
{
	for (unsigned i = 0; i < TAR_BLOCK; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

static int
header_take(struct reader *r)
{
	unsigned char *h = r->blk;
	unsigned sum = 0;
	uint64_t want, size;
	char name[101];
	int rc;

	if (block_zero(h)) {
		r->st = R_END2;
		return 0;
	}
	if (parse_octal(h + 148, 8, &want) != 0)
		return bad(r, "a tar header without checksum");
	for (unsigned i = 0; i < TAR_BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	if (sum != want)
		return bad(r, "a tar header checksum mismatch");
	if (memcmp(h + 257, "ustar", 5) != 0)
		return bad(r, "a tar header that is not ustar");
	if (parse_octal(h + 124, 12, &size) != 0)
		return bad(r, "a tar header with a bad size");
	if (h[156] == 'x') {
		if (size == 0 || size >= sizeof(r->pax))
			return bad(r, "a pax header of an unexpected size");
		r->size = r->left = size;
		r->paxlen = 0;
		r->st = R_PAX;
		return 0;
	}
	if (h[156] != '0' && h[156] != '\0')
		return bad(r, "a tar member that is not a file");
	memcpy(name, h, 100);
	name[100] = '\0';
	if (r->pax_size != UINT64_MAX)
		size = r->pax_size;
	r->pax_size = UINT64_MAX;
	r->size = r->left = size;
	r->pad = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
	if ((rc = r->cb->begin(r->cb->arg, name, size)) != 0)
		return rc;
	r->st = R_DATA;
	if (size == 0) {
		if ((rc = r->cb->end(r->cb->arg)) != 0)
			return rc;
		r->st = R_HEADER;
	}
	return 0;
}

static int
pax_take(struct reader *r)
{
	const char *p = strstr(r->pax, " size=");
	char *end;
	unsigned long long v;

	if (p == NULL)
		return bad(r, "a pax header without size");
	errno = 0;
	v = strtoull(p + 6, &end, 10);
	if (errno != 0 || end == p + 6 || *end != '\n')
		return bad(r, "a pax header with a bad size");
	r->pax_size = v;
	return 0;
}

/* Takes n bytes of the tar stream. */
static int
tar_feed(struct reader *r, const unsigned char *p, size_t n)
{
	int rc;

	while (n > 0) {
		size_t k;

		switch (r->st) {
		case R_HEADER:
		case R_END2:
		case R_PAD:
			if (r->st == R_PAD) {
				k = r->pad < n ? (size_t)r->pad : n;
				for (size_t i = 0; i < k; i++)
					if (p[i] != 0)
						return bad(
						        r,
						        "padding that is not "
						        "zero");
				r->pad -= k;
				p += k;
				n -= k;
				r->at += k;
				if (r->pad == 0)
					r->st = R_HEADER;
				break;
			}
			k = TAR_BLOCK - r->blen < n ? TAR_BLOCK - r->blen : n;
			memcpy(r->blk + r->blen, p, k);
			r->blen += k;
			p += k;
			n -= k;
			if (r->blen < TAR_BLOCK)
				break;
			r->blen = 0;
			if (r->st == R_END2) {
				if (!block_zero(r->blk))
					return bad(r, "a member after an end "
					              "block");
				r->st = R_TAIL;
			} else if ((rc = header_take(r)) != 0) {
				return rc;
			}
			r->at += TAR_BLOCK;
			break;
		case R_PAX:
		case R_DATA:
			k = r->left < n ? (size_t)r->left : n;
			if (r->st == R_PAX) {
				memcpy(r->pax + r->paxlen, p, k);
				r->paxlen += k;
				r->pax[r->paxlen] = '\0';
			} else if ((rc = r->cb->data(r->cb->arg, p, k)) != 0) {
				return rc;
			}
			r->left -= k;
			p += k;
			n -= k;
			r->at += k;
			if (r->left > 0)
				break;
			r->pad = (TAR_BLOCK - r->size % TAR_BLOCK) % TAR_BLOCK;
			if (r->st == R_PAX) {
				if ((rc = pax_take(r)) != 0)
					return rc;
			} else if ((rc = r->cb->end(r->cb->arg)) != 0) {
				return rc;
			}
			r->st = r->pad > 0 ? R_PAD : R_HEADER;
			break;
		case R_TAIL:
			/* zero records after the end blocks are fine */
			for (size_t i = 0; i < n; i++)
				if (p[i] != 0)
					return bad(r, "data after the end of "
					              "the archive");
			r->at += n;
			n = 0;
			break;
		}
	}
	return 0;
}

int
backup_read(int fd, const struct backup_reader_cb *cb, char *err, size_t errlen)
{
	struct reader r = {.cb = cb, .err = err, .errlen = errlen};
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	size_t out_cap = ZSTD_DStreamOutSize();
	unsigned char *in = malloc(READ_BUF), *out = malloc(out_cap);
	size_t frame_left = 0; /* ZSTD's hint: 0 when a frame is complete */
	uint64_t zin = 0;
	int rc = 0, any = 0;

	err[0] = '\0';
	r.pax_size = UINT64_MAX;
	if (dc == NULL || in == NULL || out == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, in, READ_BUF);
		ZSTD_inBuffer ib;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot read the archive: %s",
			         strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		any = 1;
		ib = (ZSTD_inBuffer){in, (size_t)n, 0};
		while (ib.pos < ib.size) {
			ZSTD_outBuffer ob = {out, out_cap, 0};
			size_t z = ZSTD_decompressStream(dc, &ob, &ib);
			if (ZSTD_isError(z)) {
				snprintf(err, errlen,
				         "the archive is corrupt: zstd: %s (in "
				         "its first %" PRIu64 " bytes)",
				         ZSTD_getErrorName(z), zin + ib.size);
				rc = RC_CORRUPT;
				goto out;
			}
			frame_left = z;
			if (ob.pos > 0 && (rc = tar_feed(&r, out, ob.pos)) != 0)
				goto out;
		}
		/* flush what the decoder still holds for this input */
		for (;;) {
			ZSTD_outBuffer ob = {out, out_cap, 0};
			size_t z;

			if (frame_left == 0)
				break;
			z = ZSTD_decompressStream(dc, &ob, &ib);
			if (ZSTD_isError(z)) {
				snprintf(err, errlen,
				         "the archive is corrupt: zstd: %s",
				         ZSTD_getErrorName(z));
				rc = RC_CORRUPT;
				goto out;
			}
			frame_left = z;
			if (ob.pos == 0)
				break;
			if ((rc = tar_feed(&r, out, ob.pos)) != 0)
				goto out;
		}
		zin += (uint64_t)n;
	}
	if (!any) {
		snprintf(err, errlen, "the archive is empty");
		rc = RC_SIZE_INVALID;
	} else if (frame_left != 0) {
		snprintf(err, errlen,
		         "the archive is truncated: its zstd data ends after "
		         "%" PRIu64 " bytes, inside a frame",
		         zin);
		rc = RC_SIZE_INVALID;
	} else if (r.st != R_TAIL) {
		snprintf(err, errlen,
		         "the archive is truncated: the tar stream ends after "
		         "%" PRIu64 " bytes, without its end blocks",
		         r.at);
		rc = RC_SIZE_INVALID;
	}
out:
	ZSTD_freeDCtx(dc);
	free(in);
	free(out);
	return rc;
}
