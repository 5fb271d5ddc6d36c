/* Globs over names made of '/'-separated components: repository names in
 * the users file and the retention policy, tags in the policy. */
#ifndef BERTH_COMMON_GLOB_H
#define BERTH_COMMON_GLOB_H

/* 1 when glob matches the whole of name, else 0. `*` matches any run of
 * bytes without a '/' (within one component), `**` (two or more stars)
 * any run of bytes including '/' (across components); every other byte
 * matches itself, case-sensitively. So "review/" followed by `**` matches
 * "review/a" and "review/a/b" but not "review", and "pr-*" matches
 * "pr-12" and "pr-". The work is linear-ish in the lengths (one backtrack
 * point per kind of star), so a hostile glob cannot make it
 * exponential. */
int glob_match(const char *glob, const char *name);

#endif
