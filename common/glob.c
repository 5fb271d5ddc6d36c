/* Glob matching with `*` (within a component) and `**` (across them),
 * semantics in glob.h. */
#include <stddef.h>

#include "common/glob.h"

/* Iterative with one backtrack point per kind of star: on a mismatch the
 * innermost `*` swallows one more byte (never a '/'); when it cannot, the
 * last `**` does, and the `*` after it starts over. */
int
glob_match(const char *glob, const char *name)
{
	const char *g = glob, *n = name;
	const char *star_g = NULL, *star_n = NULL;   /* last `*` */
	const char *dstar_g = NULL, *dstar_n = NULL; /* last `**` */

	while (*n != '\0') {
		if (g[0] == '*' && g[1] == '*') {
			while (*g == '*')
				g++;
			dstar_g = g;
			dstar_n = n;
			star_g = NULL;
			continue;
		}
		if (*g == '*') {
			g++;
			star_g = g;
			star_n = n;
			continue;
		}
		if (*g == *n) {
			g++;
			n++;
			continue;
		}
		if (star_g != NULL && *star_n != '/') {
			g = star_g;
			n = ++star_n;
			continue;
		}
		if (dstar_g != NULL) {
			star_g = NULL;
			g = dstar_g;
			n = ++dstar_n;
			continue;
		}
		return 0;
	}
	while (*g == '*')
		g++;
	return *g == '\0';
}
