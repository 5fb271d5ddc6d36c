/* libFuzzer harness for the Range header of blob GETs and the
 * Content-Range / Content-Length headers of upload chunks: parse_range()
 * and upload_resume(), static functions of registry/handlers_blob.c, which
 * this file compiles into itself (#include) with the request helpers of
 * tests/fuzz/fake_req.h. The storage calls upload_resume() makes are
 * replaced at link time (fuzz_range.ldflags: -Wl,--wrap) so that the
 * session exists and sits at the offset the input chooses. Built by
 * `make fuzz`.
 *
 * Input: one byte choosing the blob size and the upload offset (from a
 * table of edge values, or raw 8-byte values that follow), then up to
 * three lines: the Range header, the Content-Range header, the
 * Content-Length header (a missing line: no such header).
 *
 * Promises checked, besides crashes and sanitizer reports:
 *   - parse_range() answers exactly what a reference parser of its
 *     contract answers (RFC 9110 single byte range: 1 and the same
 *     [off, off + len) inside the blob, 0 to ignore the header, -1
 *     unsatisfiable), numbers of any length included;
 *   - upload_resume() accepts a chunk only when the range starts at the
 *     session's offset, is not empty, and has the Content-Length it
 *     announces: r->range_end, the end the body is held to, lies past the
 *     offset and equals offset + Content-Length. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/handlers_blob.c"

#include "tests/fuzz/fake_req.h"

/* ---- what handlers_blob.c needs from other registry/ files ---- */

struct MHD_Response *
head_response(uint64_t size)
{
	abort();
}

int
gate_may_pull(struct req *r, const char *name)
{
	return 1;
}

/* ---- the session, through -Wl,--wrap ---- */

static uint64_t session_offset;
static struct blob_upload *const fake_up = (struct blob_upload *)&fake_up;

int __wrap_meta_upload_check(struct meta *m, const char *uuid,
                             const char *repo);
int __wrap_blob_upload_acquire(struct blob_store *bs, const char *uuid,
                               struct blob_upload **out);
uint64_t __wrap_blob_upload_offset(const struct blob_upload *up);

int
__wrap_meta_upload_check(struct meta *m, const char *uuid, const char *repo)
{
	return RC_OK;
}

int
__wrap_blob_upload_acquire(struct blob_store *bs, const char *uuid,
                           struct blob_upload **out)
{
	*out = fake_up;
	return RC_OK;
}

uint64_t
__wrap_blob_upload_offset(const struct blob_upload *up)
{
	if (up != fake_up)
		abort();
	return session_offset;
}

/* ---- the reference parser ---- */

/* Decimal digits at *p, saturating at UINT64_MAX (as strtoull does). */
static uint64_t
digits(const char **p)
{
	uint64_t v = 0;

	for (; **p >= '0' && **p <= '9'; (*p)++) {
		unsigned d = (unsigned)(**p - '0');
		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
	}
	return v;
}

static int
ref_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
	uint64_t a, b;

	if (h == NULL || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 0;
	h += 6;
	if (*h == '-') { /* suffix: the last b bytes */
		h++;
		if (*h < '0' || *h > '9')
			return 0;
		b = digits(&h);
		if (*h != '\0')
			return 0;
		if (b == 0 || size == 0)
			return -1;
		*len = b < size ? b : size;
		*off = size - *len;
		return 1;
	}
	if (*h < '0' || *h > '9')
		return 0;
	a = digits(&h);
	if (*h++ != '-')
		return 0;
	if (*h == '\0') {
		b = UINT64_MAX;
	} else {
		if (*h < '0' || *h > '9')
			return 0;
		b = digits(&h);
		if (*h != '\0' || b < a)
			return 0;
	}
	if (a >= size)
		return -1;
	if (b > size - 1)
		b = size - 1;
	*off = a;
	*len = b - a + 1;
	return 1;
}

/* ---- the harness ---- */

static const uint64_t edges[] = {
        0,
        1,
        2,
        10,
        100,
        1023,
        4096,
        1 << 20,
        UINT64_C(1) << 32,
        UINT64_C(1) << 53,
        INT64_MAX,
        (uint64_t)INT64_MAX + 1,
        UINT64_MAX - 1,
        UINT64_MAX,
};

#define N_EDGES (sizeof(edges) / sizeof(edges[0]))

/* An edge value by index, or (index >= N_EDGES) 8 raw bytes of input. */
static uint64_t
pick(unsigned sel, const uint8_t **data, size_t *size)
{
	uint64_t v = 0;

	if (sel < N_EDGES)
		return edges[sel];
	for (int i = 0; i < 8 && *size > 0; i++, (*data)++, (*size)--)
		v = v << 8 | **data;
	return v;
}

/* The next '\n'-terminated line of the input, copied, or NULL at the end. */
static char *
line(const uint8_t **data, size_t *size)
{
	const uint8_t *nl;
	size_t n;
	char *s;

	if (*size == 0)
		return NULL;
	nl = memchr(*data, '\n', *size);
	n = nl != NULL ? (size_t)(nl - *data) : *size;
	if ((s = malloc(n + 1)) == NULL)
		abort();
	memcpy(s, *data, n);
	s[n] = '\0';
	*data += n + (nl != NULL);
	*size -= n + (nl != NULL);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct app app = {0};
	struct req r = {.app = &app};
	uint64_t bsize, off = 0, len = 0, roff = 0, rlen = 0;
	char *range, *cr, *cl;
	int got, want, rc;
	unsigned sel;

	if (size == 0)
		return 0;
	sel = data[0];
	data++, size--;
	bsize = pick(sel & 15, &data, &size);
	session_offset = pick(sel >> 4, &data, &size);
	range = line(&data, &size);
	cr = line(&data, &size);
	cl = line(&data, &size);

	got = parse_range(range, bsize, &off, &len);
	want = ref_range(range, bsize, &roff, &rlen);
	if (got != want || (got == 1 && (off != roff || len != rlen)))
		abort();
	if (got == 1 && (len == 0 || off >= bsize || len > bsize - off))
		abort();

	fake_reset();
	if (cr != NULL && cr[0] != '\0')
		fake_header("Content-Range", cr);
	if (cl != NULL && cl[0] != '\0')
		fake_header("Content-Length", cl);
	strcpy(r.uuid, "0b3e2a6c-61b8-4a4c-9a5b-3c1f0e2d4b6a");
	strcpy(r.name, "review/app");
	rc = upload_resume(&r);
	if (rc != RC_OK && rc != RC_RANGE_INVALID)
		abort();
	if (r.up != fake_up)
		abort();
	if (rc == RC_OK && req_header(&r, "Content-Range") != NULL) {
		if (r.range_end <= session_offset)
			abort(); /* an empty or wrapped range was taken */
		if (cl != NULL && cl[0] != '\0' &&
		    strtoull(cl, NULL, 10) != r.range_end - session_offset)
			abort();
	}
	if (rc == RC_OK && req_header(&r, "Content-Range") == NULL &&
	    r.range_end != 0)
		abort();
	free(range);
	free(cr);
	free(cl);
	return 0;
}
