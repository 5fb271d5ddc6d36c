/* libFuzzer harness for scopes (auth/scope.c): auth_scope_parse(),
 * auth_scope_format() and auth_grant() against the rules of the test users
 * file (tests/fuzz/keys/users.json). Built by `make fuzz`.
 *
 * Input: one scope as a client sends it in ?scope= or the form's scope
 * field ("repository:host:5000/a/b:pull,push", "registry:catalog:*"); a
 * NUL ends it.
 *
 * Promises checked, besides crashes and sanitizer reports:
 *   - a parsed scope has a known type; a repository scope a non-empty
 *     name of printable characters without ',' and only known action
 *     bits; a registry scope an empty name;
 *   - it formats into what auth_scope_format() returns as length, and
 *     that text parses back to the same type and name (and, for a
 *     repository, the same actions; a registry scope formats as "*");
 *   - a buffer one byte too small gives RC_TOO_LARGE;
 *   - auth_grant() grants, for anonymous and every user of the file, a
 *     subset of what was asked: the same type and name, actions within
 *     the asked ones (a registry scope: all or nothing), never more than
 *     asked; and a user no rule names gets what anonymous gets. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "common/rc.h"
#include "tests/fuzz/fixture.h"

#define MAX_SCOPE 1024

static struct auth *A;
static const char *const users[] = {NULL,  "ci",         "admin",  "kubelet",
                                    "old", "gc-cronjob", "nobody", ""};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	A = fixture_auth();
	return 0;
}

static void
check_scope(const struct auth_scope *sc)
{
	size_t n = strnlen(sc->name, sizeof(sc->name));

	if (n == sizeof(sc->name) || (sc->actions & ~AUTH_ALL) != 0)
		abort();
	switch (sc->type) {
	case AUTH_TYPE_REPOSITORY:
		if (n == 0)
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)sc->name[i] <= ' ' ||
			    (unsigned char)sc->name[i] >= 0x7f ||
			    sc->name[i] == ',')
				abort();
		break;
	case AUTH_TYPE_CATALOG:
	case AUTH_TYPE_GC:
		if (n != 0)
			abort();
		break;
	default: abort();
	}
}

static void
check_grant(const struct auth_scope *asked)
{
	struct auth_scope granted[1], anon[1];
	size_t nanon = auth_grant(A, NULL, asked, 1, anon);

	if (nanon > 1)
		abort();
	for (size_t u = 0; u < sizeof(users) / sizeof(users[0]); u++) {
		size_t ng = auth_grant(A, users[u], asked, 1, granted);

		if (ng > 1)
			abort();
		if (ng == 0)
			continue;
		if (granted[0].type != asked->type ||
		    strcmp(granted[0].name, asked->name) != 0 ||
		    granted[0].actions == 0)
			abort();
		if (asked->type == AUTH_TYPE_REPOSITORY
		            ? (granted[0].actions & ~asked->actions) != 0
		            : granted[0].actions != AUTH_ALL)
			abort();
		/* The anonymous rules apply to everyone. */
		if (nanon == 1 && (anon[0].actions & ~granted[0].actions) != 0)
			abort();
	}
	/* Unknown and empty user names are anonymous. */
	for (size_t u = 6; u < sizeof(users) / sizeof(users[0]); u++) {
		size_t ng = auth_grant(A, users[u], asked, 1, granted);
		if (ng != nanon ||
		    (ng == 1 && granted[0].actions != anon[0].actions))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[MAX_SCOPE + 1], buf[AUTH_NAME_MAX + 64];
	struct auth_scope sc, again;
	int n;

	if (size > MAX_SCOPE)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(&sc, 0xa5, sizeof(sc));
	if (auth_scope_parse(s, &sc) != RC_OK)
		return 0;
	check_scope(&sc);
	n = auth_scope_format(&sc, buf, sizeof(buf));
	if (n < 0 || (size_t)n != strlen(buf))
		abort();
	if (auth_scope_parse(buf, &again) != RC_OK || again.type != sc.type ||
	    strcmp(again.name, sc.name) != 0)
		abort();
	if (sc.type == AUTH_TYPE_REPOSITORY ? again.actions != sc.actions
	                                    : again.actions != AUTH_ALL)
		abort();
	if (auth_scope_format(&sc, buf, (size_t)n) != RC_TOO_LARGE)
		abort();
	check_grant(&sc);
	return 0;
}
