/* The auth gate: before a route runs, the request's bearer token must hold
 * what the route needs; otherwise a 401 with a challenge that tells the
 * client where to get a token and for which scope. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/auth.h"
#include "common/rc.h"
#include "registry/http.h"

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
	struct auth *a = r->app->auth;
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

int
gate_check(struct req *r)
{
	struct auth *a = r->app->auth;
	struct auth_scope sc;
	int rc;

	if (a == NULL || r->route == NULL || r->route->action == A_NONE)
		return RC_OK;
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
		return RC_OK;
	challenge(r, &sc, rc, 1);
	return RC_UNAUTHORIZED;
}

int
gate_may_pull(struct req *r, const char *name)
{
	struct auth *a = r->app->auth;

	if (a == NULL)
		return 1;
	return r->bearer != NULL &&
	       auth_token_check(a, r->bearer, time(NULL), AUTH_TYPE_REPOSITORY,
	                        name, AUTH_PULL) == RC_OK;
}

int
gate_may_list(struct req *r, const char *name)
{
	struct auth *a = r->app->auth;
	struct auth_scope asked, granted;
	char user[AUTH_NAME_MAX + 1];

	if (a == NULL)
		return 1;
	if (gate_may_pull(r, name))
		return 1;
	/* Not in the token: what the users file lets its user (or anyone,
	 * for an anonymous token) pull now. */
	if (r->bearer == NULL || auth_token_user(a, r->bearer, time(NULL), user,
	                                         sizeof(user)) != RC_OK)
		return 0;
	memset(&asked, 0, sizeof(asked));
	asked.type = AUTH_TYPE_REPOSITORY;
	asked.actions = AUTH_PULL;
	snprintf(asked.name, sizeof(asked.name), "%s", name);
	return auth_grant(a, user[0] ? user : NULL, &asked, 1, &granted) == 1;
}
