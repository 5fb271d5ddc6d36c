/* The HTTP client of the commands that talk to a running server (see
 * client.h): libcurl for the transfers, jansson for the token and error
 * bodies, the Docker token dance in between. The command line those
 * commands share (flags, environment, secret files, messages) is in
 * client_cli.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/rc.h"
#include "registry/client.h"
#include "registry/server.h"

#define BODY_MAX  (64u << 20) /* largest response body kept */
#define PARAM_MAX 1024        /* longest challenge parameter kept */

struct client {
	char *base;      /* the server's URL, no trailing '/' */
	char *token_url; /* where to get tokens instead of the realm, or NULL */
	char *ca_file;   /* CA certificates for https, or NULL: the system's */
	char *user, *password;
	char *token; /* preset, or from the last token dance */
	int preset;  /* token came from the options: never replaced */
	long timeout_ms;
	CURL *curl;
	/* What the last 401 said, for client_reply_error. */
	int challenged;  /* a Bearer challenge was seen */
	char scope[512]; /* its scope="…" ("" when none) */
	char error[64];  /* its error="…" ("" when none) */
};

/* A WWW-Authenticate challenge of the Bearer scheme. */
struct challenge {
	char realm[PARAM_MAX];
	char service[256];
	char scope[512];
	char error[64];
};

static void
wipe_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static size_t
body_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct client_buf *b = arg;
	size_t n = size * nmemb, cap;
	char *nb;

	if (n > b->limit - b->len) {
		b->too_large = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((nb = realloc(b->buf, cap)) == NULL)
			return 0;
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	b->buf[b->len] = '\0';
	return n;
}

void
client_curl_body(CURL *cu, struct client_buf *b, size_t limit)
{
	*b = (struct client_buf){.limit = limit};
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, b);
}

long
client_ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
client_curl_timeouts(CURL *cu, long left_ms)
{
	curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS,
	                 left_ms < CLIENT_CONNECT_TIMEOUT * 1000L
	                         ? left_ms
	                         : CLIENT_CONNECT_TIMEOUT * 1000L);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, left_ms);
}

void
client_msg_cat(char *dst, size_t len, const char *src)
{
	size_t n = strlen(dst);

	for (; *src != '\0' && n + 1 < len; src++)
		dst[n++] = ((unsigned char)*src < 0x20 || *src == 0x7f) ? '?'
		                                                        : *src;
	dst[n] = '\0';
}

/* ---- options ---- */

/* An http(s)://authority[/path] URL with no credentials or fragment (nor
 * a space or control character); a query only when query is set (the
 * token URL), never for the server URL. */
static int
url_check(const char *url, int query, const char **why)
{
	const char *auth, *end;

	if (strncasecmp(url, "http://", 7) == 0)
		auth = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		auth = url + 8;
	else
		return *why = "must start with http:// or https://",
		       RC_BAD_REQUEST;
	end = auth + strcspn(auth, query ? "/?#" : "/");
	if (end == auth)
		return *why = "has no host", RC_BAD_REQUEST;
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL)
		return *why = "must not hold credentials (use --user and "
		              "--password-file, or --token-file)",
		       RC_BAD_REQUEST;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#' ||
		    (!query && *p == '?'))
			return *why = query ? "holds a space, control "
			                      "character or fragment"
			                    : "holds a space, control "
			                      "character, query or fragment",
			       RC_BAD_REQUEST;
	return RC_OK;
}

/* A token goes into a header: visible ASCII only. */
static int
token_ok(const char *t)
{
	if (*t == '\0')
		return 0;
	for (; *t; t++)
		if ((unsigned char)*t <= ' ' || (unsigned char)*t >= 0x7f)
			return 0;
	return 1;
}

int
client_open(const struct client_options *o, struct client **out, char *err,
            size_t errlen)
{
	const char *why = NULL;
	struct client *c;
	size_t n;

	if (o->server == NULL || url_check(o->server, 0, &why) != RC_OK) {
		snprintf(err, errlen, "the server URL %s",
		         why ? why : "is missing");
		return RC_BAD_REQUEST;
	}
	if (o->token_url != NULL && url_check(o->token_url, 1, &why) != RC_OK) {
		snprintf(err, errlen, "the token URL %s", why);
		return RC_BAD_REQUEST;
	}
	if (o->user != NULL && strchr(o->user, ':') != NULL) {
		snprintf(err, errlen, "a user name cannot hold ':'");
		return RC_BAD_REQUEST;
	}
	if (o->token != NULL && !token_ok(o->token)) {
		snprintf(err, errlen,
		         "the token is empty or holds a space or control "
		         "character");
		return RC_BAD_REQUEST;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "cannot start libcurl");
		return -ENOMEM;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto nomem;
	c->base = strdup(o->server);
	c->curl = curl_easy_init();
	if (c->base == NULL || c->curl == NULL)
		goto nomem;
	n = strlen(c->base);
	while (n > 0 && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	if ((o->token_url != NULL &&
	     (c->token_url = strdup(o->token_url)) == NULL) ||
	    (o->ca_file != NULL && (c->ca_file = strdup(o->ca_file)) == NULL) ||
	    (o->user != NULL && (c->user = strdup(o->user)) == NULL) ||
	    (o->password != NULL &&
	     (c->password = strdup(o->password)) == NULL) ||
	    (o->token != NULL && (c->token = strdup(o->token)) == NULL))
		goto nomem;
	c->preset = o->token != NULL;
	c->timeout_ms =
	        (o->timeout_s > 0 ? o->timeout_s : CLIENT_TIMEOUT) * 1000L;
	*out = c;
	return RC_OK;
nomem:
	client_close(c);
	if (c == NULL)
		curl_global_cleanup();
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

void
client_close(struct client *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	free(c->base);
	free(c->token_url);
	free(c->ca_file);
	free(c->user);
	wipe_free(c->password);
	wipe_free(c->token);
	free(c);
	curl_global_cleanup();
}

void
client_reply_free(struct client_reply *r)
{
	if (r == NULL)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* ---- one transfer ---- */

struct xfer {
	const char *method, *url, *json;
	const char *token;           /* Authorization: Bearer, or NULL */
	const char *user, *password; /* Basic, or NULL */
	long deadline;               /* client_ms_now() value */
	client_sink_fn sink;         /* a 2xx body goes here, or NULL */
	void *sink_arg;
};

/* Where a body goes when a sink is set: to the sink once the status says
 * 2xx, into the buffer otherwise (an error body, a 401 challenge). */
struct sink_write {
	const struct xfer *x;
	struct client_buf *s;
	CURL *cu;
	int decided, to_sink, failed;
};

static size_t
sink_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink_write *w = arg;
	size_t n = size * nmemb;

	if (!w->decided) {
		long status = 0;
		curl_easy_getinfo(w->cu, CURLINFO_RESPONSE_CODE, &status);
		w->decided = 1;
		w->to_sink = status / 100 == 2;
	}
	if (!w->to_sink)
		return body_write(data, size, nmemb, w->s);
	if (w->x->sink(data, n, w->x->sink_arg) != 0) {
		w->failed = 1;
		return 0;
	}
	return n;
}

static int
hdr_add(struct curl_slist **hs, const char *h)
{
	struct curl_slist *n = curl_slist_append(*hs, h);

	if (n == NULL)
		return -1;
	*hs = n;
	return 0;
}

/* Frees a header list, wiping it first (it may hold a token). */
static void
hdr_free(struct curl_slist *hs)
{
	for (struct curl_slist *h = hs; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(hs);
}

/* A transport failure as an rc and a line. */
static int
xfer_fail(CURLcode cc, const struct client_buf *s, const char *errbuf,
          const char *what, char *err, size_t errlen)
{
	const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(cc);

	if (s->too_large) {
		snprintf(err, errlen, "the answer of %s is larger than %u MiB",
		         what, BODY_MAX >> 20);
		return RC_TOO_LARGE;
	}
	snprintf(err, errlen, "cannot reach %s: ", what);
	client_msg_cat(err, errlen, msg);
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY: return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	default: return -EIO;
	}
}

/* Sends one request; what names the peer in messages. */
static int
xfer_run(struct client *c, const struct xfer *x, const char *what,
         struct client_reply *out, char *err, size_t errlen)
{
	char errbuf[CURL_ERROR_SIZE] = "", authz[64 + 8192];
	struct curl_slist *hs = NULL;
	struct client_buf s = {0};
	struct sink_write sw = {.x = x, .s = &s, .cu = c->curl};
	CURL *cu = c->curl;
	long left = x->deadline - client_ms_now(), status = 0;
	int has_body = x->json != NULL || strcmp(x->method, "POST") == 0 ||
	               strcmp(x->method, "PUT") == 0 ||
	               strcmp(x->method, "PATCH") == 0;
	CURLcode cc;

	if (left <= 0) {
		snprintf(err, errlen, "cannot reach %s: timed out", what);
		return -ETIMEDOUT;
	}
	authz[0] = '\0';
	if (x->token != NULL) {
		if (strlen(x->token) > 8192) {
			snprintf(err, errlen, "the token is too long");
			return RC_TOO_LARGE;
		}
		snprintf(authz, sizeof(authz), "Authorization: Bearer %s",
		         x->token);
	}
	curl_easy_reset(cu);
	if (hdr_add(&hs, "Accept: application/json") < 0 ||
	    (x->json != NULL &&
	     hdr_add(&hs, "Content-Type: application/json") < 0) ||
	    (has_body && hdr_add(&hs, "Expect:") < 0) ||
	    (authz[0] && hdr_add(&hs, authz) < 0)) {
		explicit_bzero(authz, sizeof(authz));
		hdr_free(hs);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	explicit_bzero(authz, sizeof(authz));
	curl_easy_setopt(cu, CURLOPT_URL, x->url);
	if (c->ca_file != NULL)
		curl_easy_setopt(cu, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
	client_curl_timeouts(cu, left);
	curl_easy_setopt(cu, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, errbuf);
	client_curl_body(cu, &s, BODY_MAX);
	if (x->sink != NULL) {
		curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, sink_write);
		curl_easy_setopt(cu, CURLOPT_WRITEDATA, &sw);
		/* a long stream: fewer, larger reads and writes */
		curl_easy_setopt(cu, CURLOPT_BUFFERSIZE, 512L * 1024L);
	}
	if (x->user != NULL) {
		curl_easy_setopt(cu, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(cu, CURLOPT_USERNAME, x->user);
		curl_easy_setopt(cu, CURLOPT_PASSWORD,
		                 x->password ? x->password : "");
	}
	if (strcmp(x->method, "HEAD") == 0) {
		curl_easy_setopt(cu, CURLOPT_NOBODY, 1L);
	} else if (has_body) {
		curl_easy_setopt(cu, CURLOPT_POSTFIELDS,
		                 x->json ? x->json : "");
		curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE,
		                 (long)(x->json ? strlen(x->json) : 0));
		if (strcmp(x->method, "POST") != 0)
			curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, x->method);
	} else if (strcmp(x->method, "GET") != 0) {
		curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, x->method);
	}
	cc = curl_easy_perform(cu);
	hdr_free(hs);
	if (cc != CURLE_OK && sw.failed) {
		free(s.buf);
		snprintf(err, errlen, "cannot write the answer of %s", what);
		return RC_SINK;
	}
	if (cc != CURLE_OK && sw.to_sink) {
		free(s.buf);
		snprintf(err, errlen, "the answer of %s broke off: ", what);
		client_msg_cat(err, errlen,
		               errbuf[0] ? errbuf : curl_easy_strerror(cc));
		return cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	if (cc != CURLE_OK) {
		free(s.buf);
		return xfer_fail(cc, &s, errbuf, what, err, errlen);
	}
	curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
	if (s.buf == NULL && (s.buf = calloc(1, 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	out->status = status;
	out->body = s.buf;
	out->len = s.len;
	return RC_OK;
}

/* ---- the token dance ---- */

/* Reads one auth-param value (token or quoted-string) at *p into buf;
 * -1 when it does not fit or is malformed. */
static int
param_value(const char **p, char *buf, size_t len)
{
	const char *s = *p;
	size_t n = 0;

	if (*s == '"') {
		for (s++; *s != '"'; s++) {
			if (*s == '\0')
				return -1;
			if (*s == '\\' && s[1] != '\0')
				s++;
			if (n + 1 >= len)
				return -1;
			buf[n++] = *s;
		}
		s++;
	} else {
		for (; *s != '\0' && *s != ',' && *s != ' ' && *s != '\t';
		     s++) {
			if (n + 1 >= len)
				return -1;
			buf[n++] = *s;
		}
	}
	buf[n] = '\0';
	*p = s;
	return 0;
}

/* Parses `Bearer k="v",k=v,…`; 0 when it is a Bearer challenge. */
static int
challenge_parse(const char *h, struct challenge *ch)
{
	char key[32], val[PARAM_MAX];

	memset(ch, 0, sizeof(*ch));
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "Bearer", 6) != 0 ||
	    (h[6] != ' ' && h[6] != '\t' && h[6] != '\0'))
		return -1;
	h += 6;
	for (;;) {
		size_t kl;

		while (*h == ' ' || *h == '\t' || *h == ',')
			h++;
		if (*h == '\0')
			break;
		kl = strcspn(h, "= \t,");
		if (kl == 0 || kl >= sizeof(key))
			return -1;
		memcpy(key, h, kl);
		key[kl] = '\0';
		h += kl;
		while (*h == ' ' || *h == '\t')
			h++;
		if (*h++ != '=')
			return -1;
		while (*h == ' ' || *h == '\t')
			h++;
		if (param_value(&h, val, sizeof(val)) < 0)
			return -1;
		if (strcasecmp(key, "realm") == 0)
			snprintf(ch->realm, sizeof(ch->realm), "%s", val);
		else if (strcasecmp(key, "service") == 0 &&
		         strlen(val) < sizeof(ch->service))
			strcpy(ch->service, val);
		else if (strcasecmp(key, "scope") == 0 &&
		         strlen(val) < sizeof(ch->scope))
			strcpy(ch->scope, val);
		else if (strcasecmp(key, "error") == 0 &&
		         strlen(val) < sizeof(ch->error))
			strcpy(ch->error, val);
	}
	return 0;
}

/* The first Bearer challenge of the last response; 0 when there is one
 * with a realm. */
static int
challenge_get(CURL *cu, struct challenge *ch)
{
	struct curl_header *h;
	size_t i = 0, amount = 1;

	for (; i < amount; i++) {
		if (curl_easy_header(cu, "WWW-Authenticate", i, CURLH_HEADER,
		                     -1, &h) != CURLHE_OK)
			return -1;
		amount = h->amount;
		if (challenge_parse(h->value, ch) == 0)
			return ch->realm[0] ? 0 : -1;
	}
	return -1;
}

/* Keeps what a 401 said, for the message of client_reply_error. */
static void
challenge_note(struct client *c, const struct challenge *ch)
{
	c->challenged = 1;
	if (ch->scope[0] || !c->scope[0])
		snprintf(c->scope, sizeof(c->scope), "%s", ch->scope);
	snprintf(c->error, sizeof(c->error), "%s", ch->error);
}

/* base?service=…&scope=… (base: the realm, or --token-url; '&' when it
 * holds a query already); NULL on ENOMEM. */
static char *
token_url(CURL *cu, const char *base, const struct challenge *ch)
{
	char *svc = curl_easy_escape(cu, ch->service, 0);
	char *scp = curl_easy_escape(cu, ch->scope, 0);
	int has_svc = ch->service[0] != '\0', has_scp = ch->scope[0] != '\0';
	char *url = NULL;

	if (svc != NULL && scp != NULL &&
	    asprintf(&url, "%s%s%s%s%s%s%s", base,
	             strchr(base, '?') ? "&" : "?", has_svc ? "service=" : "",
	             has_svc ? svc : "", has_svc && has_scp ? "&" : "",
	             has_scp ? "scope=" : "", has_scp ? scp : "") < 0)
		url = NULL;
	curl_free(svc);
	curl_free(scp);
	return url;
}

/* The token from a token server's JSON answer ("token", or OAuth2's
 * "access_token"), malloc'ed; NULL when there is none. */
static char *
token_from_body(const struct client_reply *r)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	const char *t = json_string_value(json_object_get(j, "token"));
	char *out = NULL;

	if (t == NULL || *t == '\0')
		t = json_string_value(json_object_get(j, "access_token"));
	if (t != NULL && token_ok(t))
		out = strdup(t);
	json_decref(j);
	return out;
}

/* Gets a token from the challenge's realm (or from c->token_url, when
 * set, for the challenge's service and scope) into c->token. */
static int
token_fetch(struct client *c, const struct challenge *ch, long deadline,
            char *err, size_t errlen)
{
	struct client_reply r = {0};
	struct xfer x = {.method = "GET",
	                 .user = c->user,
	                 .password = c->password,
	                 .deadline = deadline};
	char *url, *tok, line[256];
	int rc;

	if (c->token_url == NULL && strncasecmp(ch->realm, "http://", 7) != 0 &&
	    strncasecmp(ch->realm, "https://", 8) != 0) {
		snprintf(err, errlen,
		         "unauthorized: the server's token realm "
		         "is not an http(s) URL");
		return RC_UNAUTHORIZED;
	}
	if ((url = token_url(c->curl, c->token_url ? c->token_url : ch->realm,
	                     ch)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	x.url = url;
	rc = xfer_run(c, &x, "the token server", &r, err, errlen);
	free(url);
	if (rc != RC_OK)
		return rc;
	if (r.status == 401) {
		if (c->user != NULL) {
			snprintf(
			        err, errlen,
			        "unauthorized: the token server refused user ");
			client_msg_cat(err, errlen, c->user);
			client_msg_cat(err, errlen,
			               " (wrong password, or an unknown or "
			               "expired user)");
		} else {
			snprintf(err, errlen,
			         "unauthorized: the token server refused "
			         "anonymous access");
		}
		client_reply_free(&r);
		return RC_UNAUTHORIZED;
	}
	if (r.status / 100 != 2) {
		client_reply_error(c, &r, line, sizeof(line));
		snprintf(err, errlen, "token server: %s", line);
		client_reply_free(&r);
		return RC_UNAUTHORIZED;
	}
	tok = token_from_body(&r);
	if (r.body != NULL)
		explicit_bzero(r.body, r.len);
	client_reply_free(&r);
	if (tok == NULL) {
		snprintf(err, errlen,
		         "token server: no token in its answer (HTTP 200)");
		return RC_UNAUTHORIZED;
	}
	wipe_free(c->token);
	c->token = tok;
	return RC_OK;
}

static int
request_run(struct client *c, const char *method, const char *path,
            const char *json, client_sink_fn sink, void *sink_arg,
            struct client_reply *out, char *err, size_t errlen)
{
	struct client_reply r = {0};
	struct challenge ch;
	struct xfer x = {.method = method,
	                 .json = json,
	                 .deadline = client_ms_now() + c->timeout_ms,
	                 .sink = sink,
	                 .sink_arg = sink_arg};
	char *url = NULL;
	int rc;

	if (asprintf(&url, "%s%s", c->base, path) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	x.url = url;
	c->challenged = 0;
	c->scope[0] = c->error[0] = '\0';
	x.token = c->token;
	rc = xfer_run(c, &x, c->base, &r, err, errlen);
	if (rc == RC_OK && r.status == 401 &&
	    challenge_get(c->curl, &ch) == 0) {
		challenge_note(c, &ch);
		/* A preset token is what the user gave: no dance. */
		if (!c->preset) {
			client_reply_free(&r);
			rc = token_fetch(c, &ch, x.deadline, err, errlen);
			x.token = c->token;
			if (rc == RC_OK)
				rc = xfer_run(c, &x, c->base, &r, err, errlen);
			if (rc == RC_OK && r.status == 401 &&
			    challenge_get(c->curl, &ch) == 0)
				challenge_note(c, &ch);
		}
	}
	free(url);
	if (rc != RC_OK)
		return rc;
	*out = r;
	return RC_OK;
}

int
client_request(struct client *c, const char *method, const char *path,
               const char *json, struct client_reply *out, char *err,
               size_t errlen)
{
	return request_run(c, method, path, json, NULL, NULL, out, err, errlen);
}

int
client_request_sink(struct client *c, const char *method, const char *path,
                    client_sink_fn sink, void *arg, struct client_reply *out,
                    char *err, size_t errlen)
{
	return request_run(c, method, path, NULL, sink, arg, out, err, errlen);
}

/* ---- errors ---- */

/* What the users file must allow for a scope, as a hint ("" when the
 * scope says nothing known). */
static void
scope_hint(const char *scope, char *buf, size_t len)
{
	const char *last = strrchr(scope, ':');

	if (strcmp(scope, "registry:gc:*") == 0)
		snprintf(buf, len,
		         "the user needs {\"gc\": true} in the users file");
	else if (strcmp(scope, "registry:backup:*") == 0)
		snprintf(buf, len,
		         "the user needs {\"backup\": true} in the users file");
	else if (strcmp(scope, "registry:catalog:*") == 0)
		snprintf(
		        buf, len,
		        "the user needs {\"catalog\": true} in the users file");
	else if (strncmp(scope, "repository:", 11) == 0 && last != NULL &&
	         last > scope + 11)
		snprintf(buf, len,
		         "the user needs a rule allowing %s on %.*s in the "
		         "users file",
		         last + 1, (int)(last - scope - 11), scope + 11);
	else
		buf[0] = '\0';
}

static void
unauthorized_line(const struct client *c, char *err, size_t errlen)
{
	char hint[sizeof(c->scope) + 96], scope[sizeof(c->scope)];
	const char *what;
	size_t n;

	scope[0] = '\0';
	client_msg_cat(scope, sizeof(scope), c->scope);
	scope_hint(scope, hint, sizeof(hint));
	what = scope[0] ? scope : "this request";
	if (!c->challenged) {
		snprintf(err, errlen,
		         "unauthorized: HTTP 401 without a Bearer challenge");
	} else if (strcmp(c->error, "invalid_token") == 0) {
		snprintf(err, errlen,
		         "unauthorized: the token was refused (expired, or "
		         "signed by a key the server does not trust)");
	} else if (c->preset) {
		snprintf(err, errlen,
		         "unauthorized: the token does not grant %s%s%s%s",
		         what, hint[0] ? " (" : "", hint, hint[0] ? ")" : "");
	} else if (c->user == NULL) {
		snprintf(err, errlen,
		         "unauthorized: %s needs a signed-in user (--user with "
		         "--password-file, or --token-file)%s%s",
		         what, hint[0] ? "; " : "", hint);
	} else {
		snprintf(err, errlen, "unauthorized: user ");
		client_msg_cat(err, errlen, c->user);
		n = strlen(err);
		snprintf(err + n, errlen - n, " may not use %s%s%s%s", what,
		         hint[0] ? " (" : "", hint, hint[0] ? ")" : "");
	}
}

/* "CODE: message (detail)" of an OCI error body; 0 when it is one. */
static int
oci_line(const struct client_reply *r, char *err, size_t errlen)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	json_t *errors = json_object_get(j, "errors");
	json_t *e = json_array_get(errors, 0);
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *detail = json_string_value(json_object_get(e, "detail"));
	size_t more = json_array_size(errors);

	if (code == NULL) {
		json_decref(j);
		return -1;
	}
	err[0] = '\0';
	client_msg_cat(err, errlen, code);
	if (msg != NULL && *msg) {
		client_msg_cat(err, errlen, ": ");
		client_msg_cat(err, errlen, msg);
	}
	if (detail != NULL && *detail) {
		client_msg_cat(err, errlen, " (");
		client_msg_cat(err, errlen, detail);
		client_msg_cat(err, errlen, ")");
	}
	if (more > 1) {
		char tail[48];

		snprintf(tail, sizeof(tail), " (and %zu more)", more - 1);
		client_msg_cat(err, errlen, tail);
	}
	json_decref(j);
	return 0;
}

int
client_reply_error(const struct client *c, const struct client_reply *r,
                   char *err, size_t errlen)
{
	long s = r->status;

	if (s / 100 == 2)
		return RC_OK;
	if (s == 401)
		unauthorized_line(c, err, errlen);
	else if (oci_line(r, err, errlen) != 0)
		snprintf(err, errlen, "HTTP %ld", s);
	if (s == 401)
		return RC_UNAUTHORIZED;
	if (s == 403)
		return RC_DENIED;
	if (s == 404)
		return RC_NOT_FOUND;
	return s / 100 == 4 ? RC_BAD_REQUEST : RC_UNSUPPORTED;
}

int
client_reply_oci_code(const struct client_reply *r, char *code, size_t len)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	json_t *e = json_array_get(json_object_get(j, "errors"), 0);
	const char *c = json_string_value(json_object_get(e, "code"));
	int rc = -1;

	if (len > 0)
		code[0] = '\0';
	if (c != NULL && len > 0) {
		client_msg_cat(code, len, c);
		rc = 0;
	}
	json_decref(j);
	return rc;
}

void
client_reply_invalid(const struct client_reply *r, const char *what, char *err,
                     size_t errlen)
{
	snprintf(err, errlen, "the server's answer (HTTP %ld) is not %s",
	         r->status, what);
}

int
client_reply_json(const struct client_reply *r, const char *what, json_t **out,
                  char *err, size_t errlen)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);

	if (j == NULL) {
		client_reply_invalid(r, what, err, errlen);
		return RC_UNSUPPORTED;
	}
	*out = j;
	return RC_OK;
}

char *
client_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(s) * 3 + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch) != NULL) {
			*o++ = (char)ch;
		} else {
			*o++ = '%';
			*o++ = hex[ch >> 4];
			*o++ = hex[ch & 15];
		}
	}
	*o = '\0';
	return out;
}
