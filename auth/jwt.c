/* Bearer tokens (JWS compact serialization, the Docker token spec): ES256
 * signing with the configured key, verification against every trusted key
 * (ES256/384/512, RS256/384/512), and a cache of verified tokens so that a
 * client reusing a token costs a hash lookup and a memcmp. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth/auth_internal.h"
#include "common/rc.h"

#define TOKEN_MAX  8192 /* longest token looked at */
#define ACCESS_MAX 64   /* most access entries in one token */
#define SIG_MAX    2048 /* bytes of the largest signature (RSA 16384) */
#define SLOTS      256  /* token cache slots (a power of two) */
#define TIME_LIMIT (INT64_C(1) << 53) /* |claim time| accepted */

/* ---- algorithms and signatures ---- */

/* The digest alg names with key k, or NULL when k does not do alg. */
static const EVP_MD *
alg_md(const struct auth_key *k, const char *alg)
{
	if (k->rsa) {
		if (strcmp(alg, "RS256") == 0)
			return EVP_sha256();
		if (strcmp(alg, "RS384") == 0)
			return EVP_sha384();
		if (strcmp(alg, "RS512") == 0)
			return EVP_sha512();
		return NULL;
	}
	if (k->curve_bits == 256 && strcmp(alg, "ES256") == 0)
		return EVP_sha256();
	if (k->curve_bits == 384 && strcmp(alg, "ES384") == 0)
		return EVP_sha384();
	if (k->curve_bits == 521 && strcmp(alg, "ES512") == 0)
		return EVP_sha512();
	return NULL;
}

/* Signs with an ES256 key; sig receives the JWS form r || s (64 bytes). */
static int
sig_make(const struct auth_key *k, const char *in, size_t len,
         unsigned char sig[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[128];
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *es = NULL;
	size_t dlen = sizeof(der);
	int rc = RC_UNSUPPORTED;

	if (ctx == NULL ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, der, &dlen, (const unsigned char *)in, len) !=
	            1)
		goto fail;
	if ((es = d2i_ECDSA_SIG(NULL, &p, (long)dlen)) == NULL)
		goto fail;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, 32) != 32 ||
	    BN_bn2binpad(s, sig + 32, 32) != 32)
		goto fail;
	rc = RC_OK;
fail:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

/* 1 when sig (JWS form: r || s for EC) is k's signature of in. */
static int
sig_ok(const struct auth_key *k, const EVP_MD *md, const char *in, size_t len,
       const unsigned char *sig, size_t slen)
{
	EVP_MD_CTX *ctx = NULL;
	unsigned char *der = NULL;
	const unsigned char *vsig = sig;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	int dlen, ok = 0;

	if (!k->rsa) {
		size_t coord = ((size_t)k->curve_bits + 7) / 8;

		if (slen != 2 * coord)
			goto fail;
		if ((es = ECDSA_SIG_new()) == NULL ||
		    (r = BN_bin2bn(sig, (int)coord, NULL)) == NULL ||
		    (s = BN_bin2bn(sig + coord, (int)coord, NULL)) == NULL ||
		    !ECDSA_SIG_set0(es, r, s))
			goto fail;
		r = s = NULL;
		if ((dlen = i2d_ECDSA_SIG(es, &der)) <= 0)
			goto fail;
		vsig = der;
		slen = (size_t)dlen;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(ctx, NULL, md, NULL, k->pkey) != 1)
		goto fail;
	ok = EVP_DigestVerify(ctx, vsig, slen, (const unsigned char *)in,
	                      len) == 1;
fail:
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	BN_free(r);
	BN_free(s);
	ERR_clear_error();
	return ok;
}

/* ---- signing ---- */

static json_t *
access_json(const struct auth_scope *granted, size_t n)
{
	json_t *arr = json_array(), *acts, *ent;

	for (size_t i = 0; arr != NULL && i < n; i++) {
		const char *res = auth_registry_name(granted[i].type);

		if (res != NULL) {
			ent = json_pack("{s:s,s:s,s:[s]}", "type", "registry",
			                "name", res, "actions", "*");
		} else {
			acts = json_array();
			if (acts != NULL && (granted[i].actions & AUTH_PULL))
				json_array_append_new(acts,
				                      json_string("pull"));
			if (acts != NULL && (granted[i].actions & AUTH_PUSH))
				json_array_append_new(acts,
				                      json_string("push"));
			if (acts != NULL && (granted[i].actions & AUTH_DELETE))
				json_array_append_new(acts,
				                      json_string("delete"));
			ent = json_pack("{s:s,s:s,s:o}", "type", "repository",
			                "name", granted[i].name, "actions",
			                acts);
		}
		if (ent == NULL || json_array_append_new(arr, ent) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* "<b64url(json)>" appended at out + *off (room checked by the caller). */
static void
part_append(const char *json, char *out, size_t *off)
{
	size_t n = strlen(json);

	auth_b64_encode(AUTH_B64_URL, (const unsigned char *)json, n,
	                out + *off);
	*off += auth_b64_len(n);
}

int
auth_token_sign(struct auth *a, const char *user,
                const struct auth_scope *granted, size_t n, time_t now,
                char **out)
{
	unsigned char jti[16], sig[64];
	char jti_s[32], *hs = NULL, *cs = NULL, *tok = NULL;
	json_t *head = NULL, *claims = NULL, *acc;
	size_t off = 0, cap;
	int rc = -ENOMEM;

	if (a->signing.pkey == NULL || a->signing.rsa ||
	    a->signing.curve_bits != 256)
		return RC_UNSUPPORTED;
	if (RAND_bytes(jti, sizeof(jti)) != 1)
		return RC_UNSUPPORTED;
	auth_b64_encode(AUTH_B64_URL, jti, sizeof(jti), jti_s);
	/* jansson refuses strings that are not UTF-8: a user or repository
	 * name from a request can be anything. */
	if ((acc = access_json(granted, n)) == NULL)
		return RC_BAD_REQUEST;
	head = json_pack("{s:s,s:s,s:s}", "typ", "JWT", "alg", "ES256", "kid",
	                 a->signing.kid);
	claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:o}", "iss",
	                   a->issuer, "sub", user != NULL ? user : "", "aud",
	                   a->service, "exp", (json_int_t)(now + a->ttl), "nbf",
	                   (json_int_t)now, "iat", (json_int_t)now, "jti",
	                   jti_s, "access", acc);
	if (head == NULL || claims == NULL) {
		rc = claims == NULL ? RC_BAD_REQUEST : -ENOMEM;
		goto fail;
	}
	if ((hs = json_dumps(head, JSON_COMPACT | JSON_PRESERVE_ORDER)) ==
	            NULL ||
	    (cs = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER)) ==
	            NULL)
		goto fail;
	cap = auth_b64_len(strlen(hs)) + auth_b64_len(strlen(cs)) +
	      auth_b64_len(sizeof(sig)) + 3;
	if ((tok = malloc(cap)) == NULL)
		goto fail;
	part_append(hs, tok, &off);
	tok[off++] = '.';
	part_append(cs, tok, &off);
	if ((rc = sig_make(&a->signing, tok, off, sig)) < 0)
		goto fail;
	tok[off++] = '.';
	auth_b64_encode(AUTH_B64_URL, sig, sizeof(sig), tok + off);
	*out = tok;
	tok = NULL;
	rc = RC_OK;
fail:
	free(tok);
	free(hs);
	free(cs);
	json_decref(head);
	json_decref(claims);
	return rc;
}

/* ---- the cache of verified tokens ---- */

/* One access entry of a verified token. */
struct tok_access {
	enum auth_type type;
	unsigned actions;
	size_t nlen;
	const char *name;
};

/* A verified token: valid while from <= now < until. One allocation
 * holds the struct, the access entries, the names and the token. */
struct tok_entry {
	size_t len;
	const char *token;
	int64_t from, until;
	/* the subject of a token signed by this registry's own issuer, ""
	 * for anonymous ones and other issuers' */
	char user[AUTH_NAME_MAX + 1];
	size_t nacc;
	struct tok_access *acc;
};

/* A slot per cache line, so that threads on different slots do not
 * share one. */
struct tok_slot {
	_Alignas(64) pthread_mutex_t mu;
	struct tok_entry *e;
};

struct auth_tokens {
	struct tok_slot slot[SLOTS];
};

struct auth_tokens *
auth_tokens_new(void)
{
	struct auth_tokens *t = aligned_alloc(64, sizeof(*t));

	if (t == NULL)
		return NULL;
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < SLOTS; i++)
		pthread_mutex_init(&t->slot[i].mu, NULL);
	return t;
}

void
auth_tokens_free(struct auth_tokens *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < SLOTS; i++) {
		free(t->slot[i].e);
		pthread_mutex_destroy(&t->slot[i].mu);
	}
	free(t);
}

/* FNV-1a over the tail of the token: the signature, which differs from
 * token to token. */
static size_t
tok_hash(const char *tok, size_t len)
{
	const unsigned char *p = (const unsigned char *)tok;
	uint64_t h = UINT64_C(0xcbf29ce484222325) ^ len;
	size_t i = len > 32 ? len - 32 : 0;

	for (; i < len; i++)
		h = (h ^ p[i]) * UINT64_C(0x100000001b3);
	return (size_t)(h ^ (h >> 32)) & (SLOTS - 1);
}

static int
tok_decide(const struct tok_entry *e, time_t now, enum auth_type type,
           const char *name, size_t nlen, unsigned actions)
{
	unsigned have = 0;

	if ((int64_t)now < e->from || (int64_t)now >= e->until)
		return RC_UNAUTHORIZED;
	for (size_t i = 0; i < e->nacc; i++) {
		const struct tok_access *ac = &e->acc[i];

		if (ac->type != type)
			continue;
		if (type != AUTH_TYPE_REPOSITORY ||
		    (ac->nlen == nlen && memcmp(ac->name, name, nlen) == 0))
			have |= ac->actions;
	}
	return (have & actions) == actions ? RC_OK : RC_DENIED;
}

/* ---- verification ---- */

/* A claim time as int64 within TIME_LIMIT; 0 ok, -1 malformed. */
static int
claim_time(const json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		json_int_t t = json_integer_value(v);

		if (t <= -TIME_LIMIT || t >= TIME_LIMIT)
			return -1;
		*out = (int64_t)t;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);

		if (!isfinite(d) || d <= -(double)TIME_LIMIT ||
		    d >= (double)TIME_LIMIT)
			return -1;
		*out = (int64_t)d;
		return 0;
	}
	return -1;
}

static int
aud_ok(const json_t *aud, const char *service)
{
	size_t i;
	json_t *v;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), service) == 0;
	json_array_foreach(aud, i, v) if (json_is_string(v) &&
	                                  strcmp(json_string_value(v),
	                                         service) == 0) return 1;
	return 0;
}

/* Actions of one access entry; the type and name go to *type and *name. */
static unsigned
access_parse(json_t *ent, enum auth_type *type, const char **name, size_t *nlen)
{
	const char *t = json_string_value(json_object_get(ent, "type"));
	const char *n = json_string_value(json_object_get(ent, "name"));
	json_t *acts = json_object_get(ent, "actions"), *v;
	unsigned bits = 0;
	size_t i;

	if (t == NULL || n == NULL || !json_is_array(acts))
		return 0;
	json_array_foreach(acts, i, v)
	{
		const char *w = json_string_value(v);

		if (w != NULL)
			bits |= auth_action_bits(w, strlen(w));
	}
	*name = n;
	*nlen = strlen(n);
	if (strcmp(t, "repository") == 0) {
		*type = AUTH_TYPE_REPOSITORY;
		return *nlen > 0 && *nlen <= AUTH_NAME_MAX ? bits : 0;
	}
	if (strcmp(t, "registry") == 0 &&
	    (*type = auth_registry_type(n, *nlen)) != 0) {
		/* Only "*" grants a registry resource (catalog, gc). */
		*nlen = 0;
		return bits == AUTH_ALL ? AUTH_ALL : 0;
	}
	return 0;
}

/* Builds the cache entry of a verified token from its claims. */
static int
entry_build(const char *tok, size_t len, json_t *claims, int own, int64_t from,
            int64_t until, struct tok_entry **out)
{
	const char *sub = json_string_value(json_object_get(claims, "sub"));
	json_t *access = json_object_get(claims, "access"), *ent;
	size_t i, n = 0, names = 0, nlen;
	struct tok_entry *e;
	enum auth_type type;
	const char *name;
	char *p;

	if (access != NULL && !json_is_array(access))
		return RC_UNAUTHORIZED;
	if (json_array_size(access) > ACCESS_MAX)
		return RC_UNAUTHORIZED;
	json_array_foreach(access, i, ent)
	{
		if (access_parse(ent, &type, &name, &nlen) != 0) {
			n++;
			names += nlen;
		}
	}
	e = malloc(sizeof(*e) + n * sizeof(e->acc[0]) + names + len + 1);
	if (e == NULL)
		return -ENOMEM;
	e->acc = (struct tok_access *)(e + 1);
	p = (char *)(e->acc + n);
	e->nacc = 0;
	json_array_foreach(access, i, ent)
	{
		unsigned bits = access_parse(ent, &type, &name, &nlen);

		if (bits == 0)
			continue;
		e->acc[e->nacc].type = type;
		e->acc[e->nacc].actions = bits;
		e->acc[e->nacc].nlen = nlen;
		e->acc[e->nacc].name = p;
		memcpy(p, name, nlen);
		p += nlen;
		e->nacc++;
	}
	memcpy(p, tok, len);
	p[len] = '\0';
	e->token = p;
	e->len = len;
	e->from = from;
	e->until = until;
	e->user[0] = '\0';
	if (own && sub != NULL && strlen(sub) < sizeof(e->user))
		memcpy(e->user, sub, strlen(sub) + 1);
	*out = e;
	return RC_OK;
}

static const struct auth_key *
key_find(const struct auth *a, const char *kid)
{
	for (size_t i = 0; i < a->nkeys; i++)
		if (strcmp(a->keys[i].kid, kid) == 0 ||
		    strcmp(a->keys[i].trustkid, kid) == 0)
			return &a->keys[i];
	return NULL;
}

/* Decodes one base64url part as a JSON object (buf holds max bytes). */
static json_t *
part_json(const char *s, size_t len, unsigned char *buf, size_t max)
{
	long n = auth_b64_decode(AUTH_B64_URL, s, len, buf, max);
	json_t *j;

	if (n <= 0)
		return NULL;
	j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES,
	               NULL);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* The header: the key named by kid, and the digest of an algorithm that
 * key does. */
static int
head_check(const struct auth *a, json_t *head, const struct auth_key **key,
           const EVP_MD **md)
{
	const char *alg = json_string_value(json_object_get(head, "alg"));
	const char *kid = json_string_value(json_object_get(head, "kid"));

	/* Extensions we would have to understand ("crit") are refused; typ
	 * is advisory and ignored. */
	if (alg == NULL || kid == NULL || json_object_get(head, "crit") != NULL)
		return RC_UNAUTHORIZED;
	if ((*key = key_find(a, kid)) == NULL)
		return RC_UNAUTHORIZED;
	if ((*md = alg_md(*key, alg)) == NULL)
		return RC_UNAUTHORIZED;
	return RC_OK;
}

/* The claims of a correctly signed token: issuer, audience, times. */
static int
claims_check(const struct auth *a, const struct auth_key *key, json_t *claims,
             time_t now, int64_t *from, int64_t *until)
{
	const char *iss = json_string_value(json_object_get(claims, "iss"));
	json_t *nbf = json_object_get(claims, "nbf");
	json_t *iat = json_object_get(claims, "iat");
	int64_t exp, t, lo = -TIME_LIMIT;

	if (iss == NULL || key->issuer == NULL || strcmp(iss, key->issuer) != 0)
		return RC_UNAUTHORIZED;
	if (!aud_ok(json_object_get(claims, "aud"), a->service))
		return RC_UNAUTHORIZED;
	if (claim_time(json_object_get(claims, "exp"), &exp) < 0)
		return RC_UNAUTHORIZED;
	if (nbf != NULL) {
		if (claim_time(nbf, &t) < 0)
			return RC_UNAUTHORIZED;
		lo = t;
	}
	if (iat != NULL) {
		if (claim_time(iat, &t) < 0)
			return RC_UNAUTHORIZED;
		if (t > lo)
			lo = t;
	}
	*from = lo - AUTH_LEEWAY;
	*until = exp + AUTH_LEEWAY;
	if ((int64_t)now < *from || (int64_t)now >= *until)
		return RC_UNAUTHORIZED;
	return RC_OK;
}

/* Verifies a token that is not in the cache and builds its entry. */
static int
tok_verify(const struct auth *a, const char *tok, size_t len, time_t now,
           struct tok_entry **out)
{
	const char *d1 = memchr(tok, '.', len), *d2, *sig_s;
	unsigned char *buf = NULL;
	const struct auth_key *key;
	json_t *head = NULL, *claims = NULL;
	const EVP_MD *md;
	int64_t from, until;
	size_t slen;
	long n;
	int rc = RC_UNAUTHORIZED;

	if (d1 == NULL ||
	    (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok))) == NULL)
		return RC_UNAUTHORIZED;
	sig_s = d2 + 1;
	slen = len - (size_t)(sig_s - tok);
	if (memchr(sig_s, '.', slen) != NULL || slen == 0 ||
	    slen > auth_b64_len(SIG_MAX))
		return RC_UNAUTHORIZED;
	if ((buf = malloc(len)) == NULL)
		return -ENOMEM;
	if ((head = part_json(tok, (size_t)(d1 - tok), buf, len)) == NULL ||
	    head_check(a, head, &key, &md) < 0)
		goto fail;
	if ((n = auth_b64_decode(AUTH_B64_URL, sig_s, slen, buf, len)) <= 0 ||
	    !sig_ok(key, md, tok, (size_t)(d2 - tok), buf, (size_t)n))
		goto fail;
	if ((claims = part_json(d1 + 1, (size_t)(d2 - d1 - 1), buf, len)) ==
	            NULL ||
	    claims_check(a, key, claims, now, &from, &until) < 0)
		goto fail;
	rc = entry_build(tok, len, claims,
	                 key->issuer != NULL && a->issuer != NULL &&
	                         strcmp(key->issuer, a->issuer) == 0,
	                 from, until, out);
fail:
	json_decref(head);
	json_decref(claims);
	free(buf);
	return rc;
}

/* What a caller wants of a token's entry (under its cache slot's lock,
 * or on a freshly verified entry before it takes the slot). */
typedef int (*tok_use_fn)(const struct tok_entry *e, time_t now, void *arg);

/* Finds token's entry in the cache, else verifies it and caches it, and
 * answers what use says of it. */
static int
tok_use(struct auth *a, const char *token, time_t now, tok_use_fn use,
        void *arg)
{
	size_t len;
	struct tok_slot *slot = NULL;
	struct tok_entry *e = NULL, *old;
	int rc = RC_UNAUTHORIZED, hit = 0;

	if (token == NULL || (len = strnlen(token, TOKEN_MAX + 1)) == 0 ||
	    len > TOKEN_MAX)
		return RC_UNAUTHORIZED;
	if (a->tokens != NULL) {
		slot = &a->tokens->slot[tok_hash(token, len)];
		pthread_mutex_lock(&slot->mu);
		e = slot->e;
		if (e != NULL && e->len == len &&
		    memcmp(e->token, token, len) == 0) {
			rc = use(e, now, arg);
			hit = 1;
		}
		pthread_mutex_unlock(&slot->mu);
		if (hit)
			return rc;
	}
	if ((rc = tok_verify(a, token, len, now, &e)) < 0)
		return rc;
	rc = use(e, now, arg);
	if (slot == NULL) {
		free(e);
		return rc;
	}
	pthread_mutex_lock(&slot->mu);
	old = slot->e;
	slot->e = e;
	pthread_mutex_unlock(&slot->mu);
	free(old);
	return rc;
}

struct check_arg {
	enum auth_type type;
	const char *name;
	size_t nlen;
	unsigned actions;
};

static int
check_use(const struct tok_entry *e, time_t now, void *arg)
{
	const struct check_arg *c = arg;

	return tok_decide(e, now, c->type, c->name, c->nlen, c->actions);
}

int
auth_token_check(struct auth *a, const char *token, time_t now,
                 enum auth_type type, const char *name, unsigned actions)
{
	struct check_arg c = {type, name, name != NULL ? strlen(name) : 0,
	                      actions};

	return tok_use(a, token, now, check_use, &c);
}

int
auth_token_user(struct auth *a, const char *token, time_t now, char *user,
                size_t len)
{
	size_t tlen;
	struct tok_entry *e = NULL;
	int rc;

	if (len == 0)
		return RC_BAD_REQUEST;
	user[0] = '\0';
	if (token == NULL || (tlen = strnlen(token, TOKEN_MAX + 1)) == 0 ||
	    tlen > TOKEN_MAX)
		return RC_UNAUTHORIZED;
	if (a->tokens != NULL) {
		struct tok_slot *slot = &a->tokens->slot[tok_hash(token, tlen)];
		int hit = 0;

		pthread_mutex_lock(&slot->mu);
		e = slot->e;
		if (e != NULL && e->len == tlen &&
		    memcmp(e->token, token, tlen) == 0) {
			hit = 1;
			rc = (int64_t)now < e->from || (int64_t)now >= e->until
			             ? RC_UNAUTHORIZED
			             : RC_OK;
			if (rc == RC_OK)
				snprintf(user, len, "%s", e->user);
		}
		pthread_mutex_unlock(&slot->mu);
		if (hit)
			return rc;
	}
	if ((rc = tok_verify(a, token, tlen, now, &e)) < 0)
		return rc;
	snprintf(user, len, "%s", e->user);
	free(e);
	return RC_OK;
}

/* The view of a verified token's entry at now (see auth_view_open). */
static int
view_build(const struct auth *a, const struct tok_entry *e, time_t now,
           struct auth_view **out)
{
	size_t n = 0, names = 0;
	struct auth_view *v;
	char *p;

	for (size_t i = 0; i < e->nacc; i++)
		if (e->acc[i].type == AUTH_TYPE_REPOSITORY) {
			n++;
			names += e->acc[i].nlen;
		}
	v = malloc(sizeof(*v) + n * sizeof(v->grants[0]) + names);
	if (v == NULL)
		return -ENOMEM;
	v->a = a;
	v->user = e->user[0] != '\0' ? auth_user_find(a, e->user) : NULL;
	if (v->user != NULL && v->user->expires != 0 && now >= v->user->expires)
		v->user = NULL;
	v->grants = (struct auth_view_grant *)(v + 1);
	v->ngrants = 0;
	p = (char *)(v->grants + n);
	for (size_t i = 0; i < e->nacc; i++) {
		const struct tok_access *ac = &e->acc[i];

		if (ac->type != AUTH_TYPE_REPOSITORY)
			continue;
		memcpy(p, ac->name, ac->nlen);
		v->grants[v->ngrants].actions = ac->actions;
		v->grants[v->ngrants].nlen = ac->nlen;
		v->grants[v->ngrants].name = p;
		v->ngrants++;
		p += ac->nlen;
	}
	*out = v;
	return RC_OK;
}

struct view_arg {
	const struct auth *a;
	struct auth_view **out;
};

static int
view_use(const struct tok_entry *e, time_t now, void *arg)
{
	const struct view_arg *v = arg;

	if ((int64_t)now < e->from || (int64_t)now >= e->until)
		return RC_UNAUTHORIZED;
	return view_build(v->a, e, now, v->out);
}

int
auth_view_open(struct auth *a, const char *token, time_t now,
               struct auth_view **out)
{
	struct view_arg v = {a, out};

	return tok_use(a, token, now, view_use, &v);
}
