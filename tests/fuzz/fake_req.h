/* A request without libmicrohttpd, for harnesses that compile a
 * registry/handlers_*.c file into themselves (#include) to reach its static
 * parsers: the helpers of registry/reply.c and registry/log.c that the
 * handlers call, answering from a table of headers and query arguments the
 * harness fills, and recording the reply instead of sending it.
 *
 * Include it once, after registry/http.h, in a harness that does not link
 * reply.c or log.c (none does: they are not in libberth). */
#ifndef BERTH_FUZZ_FAKE_REQ_H
#define BERTH_FUZZ_FAKE_REQ_H

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry/http.h"

#define FAKE_MAX 8

struct fake_kv {
	const char *key, *val;
};

static struct fake_kv fake_headers[FAKE_MAX], fake_args[FAKE_MAX];
static size_t fake_nheaders, fake_nargs;
static unsigned fake_status; /* last reply's status, 0: none */

static inline void
fake_reset(void)
{
	fake_nheaders = fake_nargs = 0;
	fake_status = 0;
}

static inline void
fake_header(const char *key, const char *val)
{
	if (fake_nheaders < FAKE_MAX)
		fake_headers[fake_nheaders++] = (struct fake_kv){key, val};
}

static inline void
fake_arg(const char *key, const char *val)
{
	if (fake_nargs < FAKE_MAX)
		fake_args[fake_nargs++] = (struct fake_kv){key, val};
}

/* Header names are case-insensitive (MHD_lookup_connection_value). */
const char *
req_header(struct req *r, const char *name)
{
	for (size_t i = 0; i < fake_nheaders; i++)
		if (strcasecmp(fake_headers[i].key, name) == 0)
			return fake_headers[i].val;
	return NULL;
}

const char *
req_query(struct req *r, const char *name)
{
	for (size_t i = 0; i < fake_nargs; i++)
		if (strcmp(fake_args[i].key, name) == 0)
			return fake_args[i].val;
	return NULL;
}

void
req_add_header(struct req *r, const char *key, const char *fmt, ...)
{
	char buf[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
}

void
reply(struct req *r, unsigned status, struct MHD_Response *resp)
{
	fake_status = status;
	r->replied = 1;
	if (resp != NULL)
		MHD_destroy_response(resp);
}

void
reply_error(struct req *r, int rc, const char *detail)
{
	fake_status = 400; /* any error */
	r->replied = 1;
}

void
reply_json(struct req *r, unsigned status, char *json_owned)
{
	fake_status = status;
	r->replied = 1;
	free(json_owned);
}

void
reply_empty(struct req *r, unsigned status)
{
	fake_status = status;
	r->replied = 1;
}

uint64_t
now_s(void)
{
	return 1767225600; /* 2026-01-01T00:00:00Z */
}

void
log_msg(const char *level, const char *msg, ...)
{
}

void
log_fields(const char *level, const char *msg, json_t *fields)
{
	json_decref(fields);
}

#endif
