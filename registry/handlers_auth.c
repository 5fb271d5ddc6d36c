/* The token endpoint at the realm's path: GET with Basic credentials or
 * none (docker, podman, skopeo), POST with an OAuth2 password grant
 * (containerd). Both answer {"token","access_token","expires_in",
 * "issued_at"}; what is granted is what was asked and the rules allow, an
 * empty grant included; only bad credentials get a 401. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "common/names.h"
#include "common/rc.h"
#include "registry/http.h"

#define TOKEN_SCOPES_MAX 16
#define TOKEN_USER_MAX   256
#define TOKEN_PASS_MAX   512

struct scopes {
	struct auth_scope asked[TOKEN_SCOPES_MAX];
	size_t n;
};

/* Adds every scope in a space-separated list; malformed ones are ignored
 * (they grant nothing), extra ones beyond the cap too. */
static void
scopes_add(struct scopes *sc, const char *list)
{
	char one[AUTH_NAME_MAX + 64];

	if (list == NULL)
		return;
	while (*list != '\0') {
		size_t len = strcspn(list, " ");

		if (len > 0 && len < sizeof(one) && sc->n < TOKEN_SCOPES_MAX) {
			memcpy(one, list, len);
			one[len] = '\0';
			if (auth_scope_parse(one, &sc->asked[sc->n]) == RC_OK)
				sc->n++;
		}
		list += len;
		while (*list == ' ')
			list++;
	}
}

static enum MHD_Result
scope_arg(void *cls, enum MHD_ValueKind kind, const char *key,
          const char *value)
{
	if (key != NULL && strcmp(key, "scope") == 0)
		scopes_add(cls, value);
	return MHD_YES;
}

/* An OAuth2 error (RFC 6749 section 5.2) for the POST form. */
static void
reply_oauth_error(struct req *r, unsigned status, const char *error,
                  const char *description)
{
	char *body = NULL;

	if (asprintf(&body, "{\"error\":\"%s\",\"error_description\":\"%s\"}",
	             error, description) < 0)
		body = NULL;
	reply_json(r, status, body);
}

static void
reply_unauthorized(struct req *r, int oauth)
{
	snprintf(r->www_auth, sizeof(r->www_auth), "Basic realm=\"%s\"",
	         auth_service(r->auth));
	if (oauth)
		reply_oauth_error(r, 401, "invalid_grant",
		                  "incorrect username or password");
	else
		reply_error(r, RC_UNAUTHORIZED,
		            "incorrect username or password");
}

/* Signs in (user NULL: anonymous), grants and answers. */
static void
token_issue(struct req *r, const char *user, const char *pass,
            const char *service, const struct scopes *sc, int oauth)
{
	struct auth *a = r->auth;
	struct auth_scope granted[TOKEN_SCOPES_MAX];
	char issued[32], *token = NULL, *body = NULL;
	time_t now = time(NULL);
	struct tm tm;
	size_t ng;
	int rc;

	if (service != NULL && strcmp(service, auth_service(a)) != 0) {
		if (oauth)
			reply_oauth_error(r, 400, "invalid_request",
			                  "unknown service");
		else
			reply_error(r, RC_BAD_REQUEST, "unknown service");
		return;
	}
	if (user != NULL && auth_login(a, user, pass, now) != RC_OK) {
		log_msg("warn", "sign-in refused", "user", user, NULL);
		reply_unauthorized(r, oauth);
		return;
	}
	ng = auth_grant(a, user, sc->asked, sc->n, granted);
	rc = auth_token_sign(a, user, granted, ng, now, &token);
	if (rc != RC_OK) {
		reply_error(r, rc, "token");
		return;
	}
	gmtime_r(&now, &tm);
	strftime(issued, sizeof(issued), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (asprintf(&body,
	             "{\"token\":\"%s\",\"access_token\":\"%s\","
	             "\"expires_in\":%d,\"issued_at\":\"%s\"}",
	             token, token, auth_token_ttl(a), issued) < 0)
		body = NULL;
	free(token);
	req_add_header(r, "Cache-Control", "no-store");
	reply_json(r, 200, body);
}

void
h_token_get(struct req *r)
{
	char user[TOKEN_USER_MAX], pass[TOKEN_PASS_MAX];
	const char *authz = req_header(r, "Authorization");
	struct scopes sc = {.n = 0};

	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, scope_arg,
	                          &sc);
	if (authz == NULL) {
		token_issue(r, NULL, NULL, req_query(r, "service"), &sc, 0);
		return;
	}
	if (auth_basic_decode(authz, user, sizeof(user), pass, sizeof(pass)) !=
	    RC_OK) {
		reply_unauthorized(r, 0);
		return;
	}
	token_issue(r, user, pass, req_query(r, "service"), &sc, 0);
	explicit_bzero(pass, sizeof(pass));
}

void
h_token_post_start(struct req *r)
{
	r->limit = TOKEN_BODY_MAX;
}

int
h_token_post_body(struct req *r, const char *data, size_t len)
{
	char *nb;

	if (len == 0 || r->too_large)
		return RC_OK;
	if (r->len + len > r->limit) {
		r->too_large = 1;
		return RC_OK;
	}
	if (r->len + len + 1 > r->cap) {
		nb = realloc(r->buf, r->limit + 1);
		if (nb == NULL) {
			r->err_rc = -ENOMEM;
			return r->err_rc;
		}
		r->buf = nb;
		r->cap = r->limit + 1;
	}
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	r->buf[r->len] = '\0';
	return RC_OK;
}

/* Decodes application/x-www-form-urlencoded in place. */
static void
form_decode(char *s)
{
	char *out = s;

	for (; *s != '\0'; s++) {
		if (*s == '+') {
			*out++ = ' ';
		} else if (*s == '%' && hex_digit(s[1]) >= 0 &&
		           hex_digit(s[2]) >= 0) {
			*out++ = (char)(hex_digit(s[1]) * 16 + hex_digit(s[2]));
			s += 2;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* Field `name` of the decoded-in-place form, or NULL. */
struct form {
	const char *grant_type, *username, *password, *service, *scope;
};

static void
form_parse(char *body, struct form *f)
{
	char *save = NULL;

	for (char *kv = strtok_r(body, "&", &save); kv != NULL;
	     kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		const char **slot = NULL;

		if (eq == NULL)
			continue;
		*eq = '\0';
		form_decode(kv);
		form_decode(eq + 1);
		if (strcmp(kv, "grant_type") == 0)
			slot = &f->grant_type;
		else if (strcmp(kv, "username") == 0)
			slot = &f->username;
		else if (strcmp(kv, "password") == 0)
			slot = &f->password;
		else if (strcmp(kv, "service") == 0)
			slot = &f->service;
		else if (strcmp(kv, "scope") == 0)
			slot = &f->scope;
		if (slot != NULL)
			*slot = eq + 1;
	}
}

void
h_token_post_finish(struct req *r)
{
	struct form f = {0};
	struct scopes sc = {.n = 0};

	if (r->too_large) {
		reply_oauth_error(r, 400, "invalid_request", "form too large");
		goto out;
	}
	if (r->buf != NULL)
		form_parse(r->buf, &f);
	if (f.grant_type == NULL) {
		reply_oauth_error(r, 400, "invalid_request",
		                  "grant_type is required");
	} else if (strcmp(f.grant_type, "password") != 0) {
		/* no refresh tokens are ever issued */
		reply_oauth_error(r, 400, "unsupported_grant_type",
		                  "only the password grant is supported");
	} else if (f.username == NULL || f.password == NULL ||
	           f.username[0] == '\0') {
		reply_oauth_error(r, 400, "invalid_request",
		                  "username and password are required");
	} else {
		scopes_add(&sc, f.scope);
		token_issue(r, f.username, f.password, f.service, &sc, 1);
	}
out:
	if (r->buf != NULL)
		explicit_bzero(r->buf, r->cap); /* the password */
}
