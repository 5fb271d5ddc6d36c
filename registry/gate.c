/* The gate: before a route runs, the request's bearer token must hold
 * what the route needs (otherwise a 401 with a challenge that tells the
 * client where to get a token and for which scope), and a route that adds
 * data needs the free space --min-free asks for. Also what the listings
 * may show a token's holder. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/auth.h"
#include "common/rc.h"
#include "registry/http.h"
#include "storage/space.h"

/* The token from "Authorization: Bearer <token>", or NULL. */
static const char *
bearer_of(struct req *r)
{
	const char *h = req_header(r, "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return *h ? h : NULL;
}

/* The scope a route needs: what a client asks the token endpoint for. */
static void
route_scope(const struct req *r, struct auth_scope *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->type = AUTH_TYPE_REPOSITORY;
	switch (r->route->action) {
	case A_CATALOG:
		sc->type = AUTH_TYPE_CATALOG;
		sc->actions = AUTH_ALL;
		return;
	case A_GC:
		/* registry:gc:*, from an explicit {"gc": true} rule only */
		sc->type = AUTH_TYPE_GC;
		sc->actions = AUTH_ALL;
		return;
	case A_BACKUP:
		/* registry:backup:*, from an explicit {"backup": true} rule */
		sc->type = AUTH_TYPE_BACKUP;
		sc->actions = AUTH_ALL;
		return;
	case A_PULL: sc->actions = AUTH_PULL; break;
	case A_PUSH:
		/* a push reads too: mounts, HEAD before upload */
		sc->actions = AUTH_PULL | AUTH_PUSH;
		break;
	case A_DELETE: sc->actions = AUTH_DELETE; break;
	default: return;
	}
	snprintf(sc->name, sizeof(sc->name), "%s", r->name);
}

/* Fills r->www_auth: Bearer realm and service, the scope unless the route
 * is the version check, and error= when a token was presented. */
static void
challenge(struct req *r, const struct auth_scope *sc, int rc, int had_token)
{
	struct auth *a = r->auth;
	char scope[AUTH_NAME_MAX + 64] = "";
	int n;

	if (r->route->action != A_BASE &&
	    auth_scope_format(sc, scope, sizeof(scope)) < 0)
		scope[0] = '\0';
	n = snprintf(r->www_auth, sizeof(r->www_auth),
	             "Bearer realm=\"%s\",service=\"%s\"", auth_realm(a),
	             auth_service(a));
	if (n > 0 && (size_t)n < sizeof(r->www_auth) && scope[0] != '\0')
		n += snprintf(r->www_auth + n, sizeof(r->www_auth) - (size_t)n,
		              ",scope=\"%s\"", scope);
	if (n > 0 && (size_t)n < sizeof(r->www_auth) && had_token)
		snprintf(r->www_auth + n, sizeof(r->www_auth) - (size_t)n,
		         ",error=\"%s\"",
		         rc == RC_DENIED ? "insufficient_scope"
		                         : "invalid_token");
}

/* A route that adds data (an upload's start, chunk or end, a mount, a
 * manifest) is refused while the data volume has less free space than
 * --min-free asks for. Reads, deletes, an upload's status and cancel, and
 * collection runs go on: they are how space comes back. */
static int
room_check(struct req *r)
{
	uint64_t avail = 0, need = 0;
	int rc;

	if (r->app->space == NULL || r->route->action != A_PUSH ||
	    strcmp(r->method, "GET") == 0 || strcmp(r->method, "DELETE") == 0)
		return RC_OK;
	rc = space_check(r->app->space, &avail, &need);
	if (rc == RC_SPACE_LOW)
		snprintf(r->err_detail, sizeof(r->err_detail),
		         "free space on the data volume is below --min-free "
		         "(%" PRIu64 " bytes free, %" PRIu64 " required)",
		         avail, need);
	return rc;
}

int
gate_check(struct req *r)
{
	struct auth *a = r->auth;
	struct auth_scope sc;
	int rc;

	if (r->route == NULL || r->route->action == A_NONE)
		return RC_OK;
	if (a == NULL)
		return room_check(r);
	route_scope(r, &sc);
	r->bearer = bearer_of(r);
	if (r->bearer == NULL) {
		challenge(r, &sc, RC_UNAUTHORIZED, 0);
		return RC_UNAUTHORIZED;
	}
	/* The version check needs a valid token, whatever it holds. */
	rc = auth_token_check(a, r->bearer, time(NULL), sc.type, sc.name,
	                      r->route->action == A_BASE ? 0 : sc.actions);
	if (rc == RC_OK)
		return room_check(r);
	challenge(r, &sc, rc, 1);
	return RC_UNAUTHORIZED;
}

int
gate_may_pull(struct req *r, const char *name)
{
	struct auth *a = r->auth;

	if (a == NULL)
		return 1;
	return r->bearer != NULL &&
	       auth_token_check(a, r->bearer, time(NULL), AUTH_TYPE_REPOSITORY,
	                        name, AUTH_PULL) == RC_OK;
}

int
gate_view_open(struct req *r, struct auth_view **out)
{
	*out = NULL;
	if (r->auth == NULL)
		return RC_OK;
	if (r->bearer == NULL)
		return RC_UNAUTHORIZED;
	return auth_view_open(r->auth, r->bearer, time(NULL), out);
}

int
gate_view_may_pull(const char *name, void *arg)
{
	return auth_view_allows(arg, name, AUTH_PULL);
}

void
gate_view_close(struct auth_view *v)
{
	auth_view_free(v);
}

int
gate_may_list(struct req *r, const char *name)
{
	struct auth_view *v;
	int ok;

	if (r->auth == NULL)
		return 1;
	if (gate_view_open(r, &v) != RC_OK)
		return 0;
	ok = auth_view_allows(v, name, AUTH_PULL);
	auth_view_free(v);
	return ok;
}
