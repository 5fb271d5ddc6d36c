/* Shared between the files of auth/ only: the loaded configuration and
 * the functions one file provides to another. Nothing outside auth/ (and
 * its unit tests) includes this. */
#ifndef BERTH_AUTH_INTERNAL_H
#define BERTH_AUTH_INTERNAL_H

#include <openssl/evp.h>

#include "auth/auth.h"

#define AUTH_KID_BUF 64

/* A key that verifies tokens (and, for the signing key, signs them). */
struct auth_key {
	EVP_PKEY *pkey;
	char kid[AUTH_KID_BUF];      /* RFC 7638 JWK thumbprint, base64url */
	char trustkid[AUTH_KID_BUF]; /* "ABCD:EFGH:…" (libtrust) form that
	                              * older token servers put in kid */
	char *issuer;                /* the iss its tokens must carry */
	int rsa;                     /* RSA key: RS256/384/512 */
	int curve_bits;              /* EC key: 256, 384 or 521 */
};

/* One rule: actions on repositories matching any glob, and/or the
 * registry scopes it names explicitly. */
struct auth_rule {
	char **repos; /* globs */
	size_t nrepos;
	unsigned actions; /* AUTH_* bits */
	int catalog;      /* allows registry:catalog:* */
	int gc;           /* allows registry:gc:* */
	int backup;       /* allows registry:backup:* */
};

struct auth_user {
	char *name;
	char *hash;     /* encoded password hash */
	time_t expires; /* 0: never */
	struct auth_rule *rules;
	size_t nrules;
};

struct auth_creds;  /* password.c: verified-credential cache */
struct auth_tokens; /* jwt.c: verified-token cache */

struct auth {
	char *service, *issuer, *realm, *realm_path;
	int ttl;
	struct auth_key signing; /* private key; its public half is keys[0] */
	struct auth_key *keys;   /* every key that verifies tokens */
	size_t nkeys;
	struct auth_user *users;
	size_t nusers;
	struct auth_rule *anon;
	size_t nanon;
	struct auth_creds *creds;
	struct auth_tokens *tokens;
};

/* ---- b64.c ---- */
enum auth_b64 { AUTH_B64_STD = 0, AUTH_B64_URL = 1 };
/* Characters of the unpadded encoding of n bytes. */
size_t auth_b64_len(size_t n);
/* Writes auth_b64_len(n) characters and a NUL (no padding). */
void auth_b64_encode(enum auth_b64 alpha, const unsigned char *in, size_t n,
                     char *out);
/* Decodes len characters (no padding) into out, which has room for max
 * bytes. Returns the byte count, or -1 for anything but a canonical
 * encoding that fits. */
long auth_b64_decode(enum auth_b64 alpha, const char *in, size_t len,
                     unsigned char *out, size_t max);

/* ---- scope.c ---- */
/* Bits of one action word ("pull", "push", "delete", "*"); 0 if unknown. */
unsigned auth_action_bits(const char *word, size_t len);
/* The resource of a registry-wide scope type ("catalog", "gc"); NULL
 * for a repository. */
const char *auth_registry_name(enum auth_type type);
/* The type of the registry resource name[0..len), 0 when unknown. */
enum auth_type auth_registry_type(const char *name, size_t len);
/* The actions (AUTH_* bits) one rule allows on (type, name). */
unsigned auth_rule_allows(const struct auth_rule *r, enum auth_type type,
                          const char *name);
/* The user of that name in the users file, or NULL. */
const struct auth_user *auth_user_find(const struct auth *a, const char *name);

/* A token's view of the repositories (auth_view_open in jwt.c builds it,
 * auth_view_allows in scope.c decides). One allocation holds the struct,
 * the grants and their names. */
struct auth_view_grant {
	unsigned actions;
	size_t nlen;
	const char *name; /* not NUL-terminated */
};

struct auth_view {
	const struct auth *a;
	const struct auth_user *user; /* NULL: anonymous, another issuer's
	                               * token, or a user gone or expired */
	size_t ngrants;
	struct auth_view_grant *grants; /* the token's repository entries */
};

/* ---- password.c ---- */
struct auth_creds *auth_creds_new(void);
void auth_creds_free(struct auth_creds *c);
/* 0 when encoded is a hash auth_password_verify can read with at least
 * AUTH_PBKDF2_MIN iterations; else RC_BAD_REQUEST and a reason in why. */
int auth_password_encoding_check(const char *encoded, const char **why);

/* ---- jwt.c ---- */
struct auth_tokens *auth_tokens_new(void);
void auth_tokens_free(struct auth_tokens *t);

/* ---- keys.c ---- */
/* Loads a PEM key (private or public) and fills kid, trustkid, rsa and
 * curve_bits; issuer is left NULL. want_private: refuse a public key. */
int auth_key_load(const char *path, int want_private, struct auth_key *out,
                  const char **why);
/* Copies the public half of a private key (for keys[0]). */
int auth_key_public(const struct auth_key *priv, struct auth_key *out);
void auth_key_clear(struct auth_key *k);

#endif
