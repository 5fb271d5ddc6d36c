/* The test key set of the harnesses (tests/fuzz/keys/, see its README):
 * where it is, and the users file loaded once. The Makefile passes
 * FUZZ_ROOT (the repository root); BERTH_FUZZ_ROOT overrides it, for a
 * harness binary run from elsewhere. */
#ifndef BERTH_FUZZ_FIXTURE_H
#define BERTH_FUZZ_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "auth/auth.h"

#ifndef FUZZ_ROOT
#define FUZZ_ROOT "."
#endif

/* "<root>/tests/fuzz/keys/<file>" in a static buffer. */
static inline const char *
fixture_path(const char *file)
{
	static char buf[4096];
	const char *root = getenv("BERTH_FUZZ_ROOT");

	snprintf(buf, sizeof(buf), "%s/tests/fuzz/keys/%s",
	         root != NULL ? root : FUZZ_ROOT, file);
	return buf;
}

/* tests/fuzz/keys/users.json, loaded; exits when it cannot be. */
static inline struct auth *
fixture_auth(void)
{
	struct auth *a = NULL;
	char err[512];

	if (auth_load(fixture_path("users.json"), &a, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz: cannot load the test key set: %s\n",
		        err);
		exit(2);
	}
	return a;
}

#endif
