/* Logging: one JSON object per line on stderr, a static message and one
 * field per value. Never given an Authorization header, token or key. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "registry/http.h"

static void
emit(json_t *o)
{
	char *line = json_dumps(o, JSON_COMPACT);

	if (line) {
		fprintf(stderr, "%s\n", line);
		free(line);
	}
	json_decref(o);
}

static void
add_time(json_t *o)
{
	struct timespec ts;
	struct tm tm;
	char buf[96];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	json_object_set_new(o, "time", json_string(buf));
}

void
log_msg(const char *level, const char *msg, ...)
{
	json_t *o = json_object();
	va_list ap;
	const char *k;

	if (o == NULL)
		return;
	add_time(o);
	json_object_set_new(o, "level", json_string(level));
	json_object_set_new(o, "msg", json_string(msg));
	va_start(ap, msg);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		json_object_set_new(o, k, v ? json_string(v) : json_null());
	}
	va_end(ap);
	emit(o);
}

void
log_fields(const char *level, const char *msg, json_t *fields)
{
	json_t *o = json_object();

	if (o == NULL) {
		json_decref(fields);
		return;
	}
	add_time(o);
	json_object_set_new(o, "level", json_string(level));
	json_object_set_new(o, "msg", json_string(msg));
	if (fields != NULL)
		json_object_update(o, fields);
	json_decref(fields);
	emit(o);
}

void
log_access(struct req *r)
{
	json_t *o = json_object();
	const char *ua = req_header(r, "User-Agent");

	if (o == NULL)
		return;
	add_time(o);
	json_object_set_new(o, "level", json_string("info"));
	json_object_set_new(o, "msg", json_string("request"));
	json_object_set_new(o, "method", json_string(r->method));
	json_object_set_new(o, "route", json_string(route_kind_name(r->kind)));
	if (r->name[0])
		json_object_set_new(o, "name", json_string(r->name));
	if (r->ref[0])
		json_object_set_new(o, "ref", json_string(r->ref));
	if (r->uuid[0])
		json_object_set_new(o, "upload", json_string(r->uuid));
	json_object_set_new(o, "status", json_integer(r->status));
	json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes_out));
	if (r->aborted)
		json_object_set_new(o, "aborted", json_true());
	json_object_set_new(
	        o, "us",
	        json_integer((json_int_t)((now_ns() - r->t0_ns) / 1000)));
	if (ua)
		json_object_set_new(o, "agent", json_string(ua));
	emit(o);
}
