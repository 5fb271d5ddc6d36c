/* The admin API's collector endpoint: POST /v2/_berth/gc. */
#include "common/rc.h"
#include "registry/http.h"

void
h_gc_start(struct req *r)
{
	(void)r;
}

int
h_gc_body(struct req *r, const char *data, size_t len)
{
	(void)r;
	(void)data;
	(void)len;
	return 0;
}

void
h_gc_finish(struct req *r)
{
	reply_error(r, RC_UNSUPPORTED, "not yet");
}
