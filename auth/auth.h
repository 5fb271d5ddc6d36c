/* Token authentication and authorization (the Docker registry token spec):
 * the users file, password hashes, repository rules with globs, scope
 * parsing, ES256 token signing and verification. Plain strings in,
 * decisions out: no HTTP, no storage, no logging. OpenSSL errors stay in
 * this module; callers see codes from common/rc.h.
 *
 * A loaded configuration (struct auth) is immutable and shared by every
 * thread; the credential and token caches inside it have their own locks.
 *
 * The users file (JSON):
 *
 *   {
 *     "service": "registry.example",        token audience (required)
 *     "issuer": "berth",                    token issuer (required)
 *     "realm": "https://registry.example/auth/token",   absolute URL
 *     "token_ttl": 300,                     seconds, >= 60 (default 300)
 *     "signing_key": "key.pem",             ES256 (P-256) private key, PEM
 *     "previous_keys": ["old.pem"],         still accepted for verification
 *     "trusted_issuers": [                  tokens of another token server
 *       {"issuer": "corp-auth", "keys": ["corp.pub.pem"]}
 *     ],
 *     "users": [
 *       {"name": "ci-review",
 *        "password_hash": "$pbkdf2-sha256$i=600000$<salt>$<hash>",
 *        "expires": "2027-06-30T00:00:00Z",   optional
 *        "rules": [
 *          {"repositories": ["review-**"], "actions": ["pull", "push"]},
 *          {"catalog": true}
 *        ]},
 *       {"name": "gc-cronjob",
 *        "password_hash": "…",
 *        "rules": [{"gc": true}]}
 *     ],
 *     "anonymous": [{"repositories": ["public-*"], "actions": ["pull"]}]
 *   }
 *
 * Key paths are relative to the file's directory. In a repository glob,
 * `*` matches within one path component and `**` across components (the
 * glob "review/" followed by `**` matches "review/a" and "review/a/b", not
 * "review"). Actions are "pull", "push", "delete" and "*" (all three).
 * A rule holds repositories with actions, "catalog": true (the scope
 * registry:catalog:*), "gc": true (registry:gc:*, the collector endpoint
 * POST /v2/_berth/gc), "backup": true (registry:backup:*, the backup
 * endpoint GET /v2/_berth/backup), or any combination of them; the
 * registry scopes come from those explicit rules only, never from a
 * repository glob. Anonymous rules apply to every client, signed in or not. */
#ifndef BERTH_AUTH_AUTH_H
#define BERTH_AUTH_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct auth;

/* Actions, as a bit set. */
#define AUTH_PULL   1u
#define AUTH_PUSH   2u
#define AUTH_DELETE 4u
#define AUTH_ALL    (AUTH_PULL | AUTH_PUSH | AUTH_DELETE)

/* Resource types a scope names. */
enum auth_type {
	AUTH_TYPE_REPOSITORY = 1, /* "repository", "repository(plugin)" */
	AUTH_TYPE_CATALOG = 2,    /* "registry:catalog:*" */
	AUTH_TYPE_GC = 3,         /* "registry:gc:*" (POST /v2/_berth/gc) */
	AUTH_TYPE_BACKUP = 4,     /* "registry:backup:*" (GET
	                             /v2/_berth/backup) */
};

#define AUTH_NAME_MAX    255 /* longest resource name kept */
#define AUTH_TOKEN_TTL   300 /* default token lifetime, seconds */
#define AUTH_TTL_MIN     60
#define AUTH_LEEWAY      60     /* clock skew tolerated on exp/nbf/iat */
#define AUTH_HASH_BUF    160    /* room for an encoded password hash */
#define AUTH_PBKDF2_ITER 600000 /* iterations of a new hash */
#define AUTH_PBKDF2_MIN  210000 /* fewest iterations a file may use */
#define AUTH_CRED_TTL    300    /* a verified password is trusted this long */

/* One requested or granted access: a resource and its actions. */
struct auth_scope {
	enum auth_type type;
	char name[AUTH_NAME_MAX + 1]; /* "" for the registry scopes */
	unsigned actions;             /* AUTH_* bits */
};

/* ---- configuration ---- */

/* Loads and checks the users file and the keys it names. On failure
 * returns RC_BAD_REQUEST (or a negative errno for I/O) and writes one line
 * to err: where (line:column for JSON syntax, else the JSON path such as
 * users[2].rules[0].actions, or the key file) and why. */
int auth_load(const char *path, struct auth **out, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* auth_load, telling seen(file, arg) about every file just before it is
 * read, the load failing or not: the users file, then each key file it
 * names (as opened: relative names joined to the file's directory). What
 * a reloader watches for changes. */
typedef void (*auth_file_fn)(const char *file, void *arg);
int auth_load_watched(const char *path, auth_file_fn seen, void *arg,
                      struct auth **out, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* Frees the configuration, wiping key material and caches. NULL is fine. */
void auth_free(struct auth *a);

const char *auth_service(const struct auth *a);
const char *auth_realm(const struct auth *a);
/* Path part of the realm ("/auth/token"): where the registry serves the
 * token endpoint. */
const char *auth_realm_path(const struct auth *a);
int auth_token_ttl(const struct auth *a);

/* ---- scopes ---- */

/* Parses one scope ("repository:host:5000/a/b:pull,push",
 * "repository(plugin):a:pull", "registry:catalog:*", "registry:gc:*").
 * The name may hold a ':' (host:port), so actions are taken from the
 * right. Unknown actions are dropped; unknown resource types, unknown
 * registry resources and malformed scopes give RC_BAD_REQUEST (a token
 * endpoint ignores such a scope). */
int auth_scope_parse(const char *s, struct auth_scope *out)
        __attribute__((warn_unused_result));

/* Formats a scope for a challenge ("repository:a/b:pull,push",
 * "registry:gc:*"). Returns the length, or RC_TOO_LARGE when buf is too
 * small. */
int auth_scope_format(const struct auth_scope *sc, char *buf, size_t len)
        __attribute__((warn_unused_result));

/* ---- passwords ---- */

/* Hashes a password for the users file: PBKDF2-HMAC-SHA256 with
 * AUTH_PBKDF2_ITER iterations and a random 16-byte salt, encoded as
 * "$pbkdf2-sha256$i=<n>$<salt b64>$<hash b64>". */
int auth_password_hash(const char *password, char *out, size_t outlen)
        __attribute__((warn_unused_result));

/* 0 when password matches encoded (constant-time compare), RC_UNAUTHORIZED
 * when not, RC_BAD_REQUEST for an encoding that cannot be read. */
int auth_password_verify(const char *password, const char *encoded)
        __attribute__((warn_unused_result));

/* ---- sign-in and tokens ---- */

/* Checks a user's password at time now. 0 when it matches a user that has
 * not expired; RC_UNAUTHORIZED otherwise (unknown user, wrong password and
 * expired user look the same). A success is remembered for AUTH_CRED_TTL
 * seconds under a keyed hash of name and password, so a pull storm that
 * signs in again and again costs one slow hash per credential. */
int auth_login(struct auth *a, const char *user, const char *password,
               time_t now) __attribute__((warn_unused_result));

/* Whether a user of that name exists and has not expired at now (for
 * `berth auth token`, which signs without a password). */
int auth_user_active(const struct auth *a, const char *user, time_t now);

/* Narrows each requested scope to what user (NULL: anonymous) may do:
 * the intersection with the union of the user's rules and the anonymous
 * rules. Scopes left with no action are dropped. Returns the number of
 * scopes written to granted (at most n). */
size_t auth_grant(const struct auth *a, const char *user,
                  const struct auth_scope *asked, size_t n,
                  struct auth_scope *granted);

/* Signs a token for user (NULL or "": anonymous, empty subject) holding
 * the granted scopes, valid from now for the configured lifetime. *out is
 * malloc'ed (the caller frees it). */
int auth_token_sign(struct auth *a, const char *user,
                    const struct auth_scope *granted, size_t n, time_t now,
                    char **out) __attribute__((warn_unused_result));

/* Checks a bearer token at time now and whether it holds `actions` on
 * (type, name). 0 when it does; RC_UNAUTHORIZED when the token is not
 * acceptable (signature, key, algorithm, issuer, audience, times);
 * RC_DENIED when it is valid but lacks an action. Verified tokens are
 * cached, so a client reusing one token costs a lookup, not an ECDSA
 * verification. */
int auth_token_check(struct auth *a, const char *token, time_t now,
                     enum auth_type type, const char *name, unsigned actions)
        __attribute__((warn_unused_result));

/* The user a valid token of this registry's own issuer was signed for, ""
 * for an anonymous token or another issuer's (their rules are not ours).
 * 0, or RC_UNAUTHORIZED for a token that is not acceptable at now. */
int auth_token_user(struct auth *a, const char *token, time_t now, char *user,
                    size_t len) __attribute__((warn_unused_result));

/* What a token's holder may see of the repositories, for the listings
 * (the catalog, the cleanup query): the repository grants the token holds,
 * plus what the users file's rules let its user do (a token of this
 * registry's issuer whose subject is a user that exists and has not
 * expired at now) and the anonymous rules. The token is checked once, at
 * open; the view then decides name after name without the token cache.
 * 0, RC_UNAUTHORIZED for a token that is not acceptable at now, or
 * -ENOMEM. The view must not outlive a. */
struct auth_view;
int auth_view_open(struct auth *a, const char *token, time_t now,
                   struct auth_view **out) __attribute__((warn_unused_result));
/* 1 when the view allows every action in `actions` on repository name. */
int auth_view_allows(const struct auth_view *v, const char *name,
                     unsigned actions);
void auth_view_free(struct auth_view *v);

/* Splits the value of an "Authorization: Basic <base64>" header into user
 * and password (NUL-terminated; the password may contain ':'). 0, or
 * RC_BAD_REQUEST when it is not Basic, not base64, has no ':' or does not
 * fit. The caller wipes pass after use. */
int auth_basic_decode(const char *header, char *user, size_t ulen, char *pass,
                      size_t plen) __attribute__((warn_unused_result));

/* ---- keys ---- */

/* Writes a new P-256 private key as PEM to path (mode 0600, refuses to
 * overwrite an existing file). */
int auth_keygen(const char *path) __attribute__((warn_unused_result));

#endif
