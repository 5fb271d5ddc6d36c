/* Password hashes for the users file, and sign-in with a cache of verified
 * credentials.
 *
 * Encoding (the PHC string format with PBKDF2-HMAC-SHA256):
 *
 *   $pbkdf2-sha256$i=<iterations>$<salt>$<hash>
 *
 * iterations: decimal, no sign, no leading zero, from AUTH_PBKDF2_MIN to
 * ITER_MAX. salt and hash: standard base64 (A-Z a-z 0-9 + /) without '='
 * padding, canonical (unused low bits zero). The salt is 16 to 64 bytes
 * (new hashes use 16), the hash exactly 32 bytes. Nothing else is read:
 * no other parameters, no other alphabet.
 *
 * The credential cache remembers a success for AUTH_CRED_TTL seconds. Its
 * key is HMAC-SHA256 under a random per-cache key of user, a 0 byte and
 * the password, so the table never holds a password or a plain hash of
 * one. Failures are never cached: every wrong password costs a full
 * PBKDF2, which is what slows down guessing. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth/auth_internal.h"
#include "common/rc.h"

#define PREFIX      "$pbkdf2-sha256$i="
#define ITER_MAX    10000000UL
#define SALT_NEW    16
#define SALT_MIN    16
#define SALT_MAX    64
#define HASH_LEN    32
#define MAC_LEN     32
#define CACHE_SLOTS 1024 /* power of two */
#define ITER_DIGITS 8    /* digits of ITER_MAX */
#define B64_LEN(n)  (((n)*4 + 2) / 3)

/* A decoded hash. */
struct pbkdf2 {
	unsigned long iter;
	unsigned char salt[SALT_MAX];
	size_t saltlen;
	unsigned char hash[HASH_LEN];
};

struct cred_slot {
	unsigned char mac[MAC_LEN];
	size_t user;    /* index into auth->users */
	time_t expires; /* 0: empty */
};

struct auth_creds {
	pthread_mutex_t lock;
	EVP_MAC *hmac;
	unsigned char key[32];
	struct cred_slot slots[CACHE_SLOTS];
};

/* ---- the encoding ---- */

static int
enc_parse(const char *s, struct pbkdf2 *out, const char **why)
{
	const char *p, *end;
	unsigned long iter = 0;
	size_t n;
	long dl;

	if (s == NULL || strncmp(s, PREFIX, strlen(PREFIX)) != 0) {
		*why = "not a $pbkdf2-sha256$i=... hash";
		return RC_BAD_REQUEST;
	}
	p = s + strlen(PREFIX);
	n = strspn(p, "0123456789");
	if (n == 0 || p[n] != '$' || (p[0] == '0')) {
		*why = "iterations are not a decimal number";
		return RC_BAD_REQUEST;
	}
	if (n > ITER_DIGITS) {
		*why = "too many iterations";
		return RC_BAD_REQUEST;
	}
	for (size_t i = 0; i < n; i++)
		iter = iter * 10 + (unsigned long)(p[i] - '0');
	if (iter < AUTH_PBKDF2_MIN) {
		*why = "too few iterations";
		return RC_BAD_REQUEST;
	}
	if (iter > ITER_MAX) {
		*why = "too many iterations";
		return RC_BAD_REQUEST;
	}
	out->iter = iter;
	p += n + 1;
	end = strchr(p, '$');
	if (end == NULL) {
		*why = "hash missing";
		return RC_BAD_REQUEST;
	}
	dl = auth_b64_decode(AUTH_B64_STD, p, (size_t)(end - p), out->salt,
	                     SALT_MAX);
	if (dl < SALT_MIN) {
		*why = "salt is not 16 to 64 bytes of unpadded base64";
		return RC_BAD_REQUEST;
	}
	out->saltlen = (size_t)dl;
	p = end + 1;
	if (auth_b64_decode(AUTH_B64_STD, p, strlen(p), out->hash, HASH_LEN) !=
	    HASH_LEN) {
		*why = "hash is not 32 bytes of unpadded base64";
		return RC_BAD_REQUEST;
	}
	return RC_OK;
}

static int
pbkdf2(const char *password, const unsigned char *salt, size_t saltlen,
       unsigned long iter, unsigned char *out)
{
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt,
	                      (int)saltlen, (int)iter, EVP_sha256(), HASH_LEN,
	                      out) != 1)
		return -ENOMEM;
	return RC_OK;
}

int
auth_password_hash(const char *password, char *out, size_t outlen)
{
	unsigned char salt[SALT_NEW], hash[HASH_LEN];
	char salt64[B64_LEN(SALT_NEW) + 1], hash64[B64_LEN(HASH_LEN) + 1];
	char buf[AUTH_HASH_BUF];
	int rc, n;

	if (password == NULL)
		return RC_BAD_REQUEST;
	/* The length is known before the slow part. */
	n = snprintf(NULL, 0, PREFIX "%lu$", (unsigned long)AUTH_PBKDF2_ITER);
	if (n < 0 || (size_t)n + sizeof(salt64) + sizeof(hash64) > outlen)
		return RC_TOO_LARGE;
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -EIO;
	if ((rc = pbkdf2(password, salt, sizeof(salt), AUTH_PBKDF2_ITER,
	                 hash)) < 0)
		goto fail;
	auth_b64_encode(AUTH_B64_STD, salt, sizeof(salt), salt64);
	auth_b64_encode(AUTH_B64_STD, hash, sizeof(hash), hash64);
	n = snprintf(buf, sizeof(buf), PREFIX "%lu$%s$%s",
	             (unsigned long)AUTH_PBKDF2_ITER, salt64, hash64);
	if (n < 0 || (size_t)n >= sizeof(buf) || (size_t)n >= outlen) {
		rc = RC_TOO_LARGE;
		goto fail;
	}
	memcpy(out, buf, (size_t)n + 1);
	rc = RC_OK;
fail:
	OPENSSL_cleanse(hash, sizeof(hash));
	OPENSSL_cleanse(hash64, sizeof(hash64));
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

int
auth_password_verify(const char *password, const char *encoded)
{
	struct pbkdf2 enc;
	unsigned char hash[HASH_LEN];
	const char *why;
	int rc;

	if (password == NULL)
		return RC_BAD_REQUEST;
	if ((rc = enc_parse(encoded, &enc, &why)) < 0)
		goto fail;
	if ((rc = pbkdf2(password, enc.salt, enc.saltlen, enc.iter, hash)) < 0)
		goto fail;
	rc = CRYPTO_memcmp(hash, enc.hash, HASH_LEN) == 0 ? RC_OK
	                                                  : RC_UNAUTHORIZED;
fail:
	OPENSSL_cleanse(hash, sizeof(hash));
	OPENSSL_cleanse(&enc, sizeof(enc));
	return rc;
}

int
auth_password_encoding_check(const char *encoded, const char **why)
{
	struct pbkdf2 enc;
	const char *reason = NULL;
	int rc = enc_parse(encoded, &enc, &reason);

	OPENSSL_cleanse(&enc, sizeof(enc));
	if (rc < 0 && why != NULL)
		*why = reason;
	return rc;
}

/* ---- the credential cache ---- */

struct auth_creds *
auth_creds_new(void)
{
	struct auth_creds *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return NULL;
	}
	c->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (c->hmac == NULL || RAND_bytes(c->key, sizeof(c->key)) != 1) {
		auth_creds_free(c);
		return NULL;
	}
	return c;
}

void
auth_creds_free(struct auth_creds *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->lock);
	EVP_MAC_free(c->hmac);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

/* HMAC-SHA256(key, user || 0x00 || password). */
static int
cred_mac(struct auth_creds *c, const char *user, const char *password,
         unsigned char mac[MAC_LEN])
{
	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	                                         (char *)"SHA256", 0),
	        OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(c->hmac);
	size_t n = 0;
	int rc = -ENOMEM;

	if (ctx == NULL)
		return -ENOMEM;
	if (EVP_MAC_init(ctx, c->key, sizeof(c->key), params) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)user,
	                   strlen(user) + 1) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)password,
	                   strlen(password)) != 1 ||
	    EVP_MAC_final(ctx, mac, &n, MAC_LEN) != 1 || n != MAC_LEN)
		goto fail;
	rc = RC_OK;
fail:
	EVP_MAC_CTX_free(ctx);
	return rc;
}

static struct cred_slot *
cred_slot(struct auth_creds *c, const unsigned char mac[MAC_LEN])
{
	size_t i = ((size_t)mac[0] << 8 | mac[1]) & (CACHE_SLOTS - 1);

	return &c->slots[i];
}

static int
cred_cached(struct auth_creds *c, const unsigned char mac[MAC_LEN], size_t user,
            time_t now)
{
	struct cred_slot *s = cred_slot(c, mac);
	int hit;

	pthread_mutex_lock(&c->lock);
	hit = s->expires != 0 && now < s->expires && s->user == user &&
	      CRYPTO_memcmp(s->mac, mac, MAC_LEN) == 0;
	pthread_mutex_unlock(&c->lock);
	return hit;
}

static void
cred_remember(struct auth_creds *c, const unsigned char mac[MAC_LEN],
              size_t user, time_t now)
{
	struct cred_slot *s = cred_slot(c, mac);

	pthread_mutex_lock(&c->lock);
	memcpy(s->mac, mac, MAC_LEN);
	s->user = user;
	s->expires = now + AUTH_CRED_TTL;
	pthread_mutex_unlock(&c->lock);
}

/* Spends about what checking a password against a real user costs: a
 * PBKDF2 with as many iterations as the first user's hash (new hashes all
 * use AUTH_PBKDF2_ITER), so an unknown name does not answer faster. */
static void
burn(const struct auth *a, const char *password)
{
	static const unsigned char salt[SALT_NEW] = "berth-no-user...";
	unsigned char hash[HASH_LEN];
	unsigned long iter = AUTH_PBKDF2_ITER;
	struct pbkdf2 enc;
	const char *why;

	for (size_t i = 0; i < a->nusers; i++) {
		if (enc_parse(a->users[i].hash, &enc, &why) == RC_OK) {
			iter = enc.iter;
			break;
		}
	}
	OPENSSL_cleanse(&enc, sizeof(enc));
	(void)pbkdf2(password, salt, sizeof(salt), iter, hash);
	OPENSSL_cleanse(hash, sizeof(hash));
}

int
auth_login(struct auth *a, const char *user, const char *password, time_t now)
{
	const struct auth_user *u = NULL;
	unsigned char mac[MAC_LEN];
	int cached = 0, have_mac = 0, rc;
	size_t idx;

	if (a == NULL || user == NULL || password == NULL)
		return RC_UNAUTHORIZED;
	for (idx = 0; idx < a->nusers; idx++) {
		if (strcmp(a->users[idx].name, user) == 0) {
			u = &a->users[idx];
			break;
		}
	}
	if (u == NULL) {
		burn(a, password);
		return RC_UNAUTHORIZED;
	}
	/* The lock is held only around the table, never over the PBKDF2. */
	if (a->creds != NULL && cred_mac(a->creds, user, password, mac) == 0) {
		have_mac = 1;
		cached = cred_cached(a->creds, mac, idx, now);
	}
	if (!cached) {
		rc = auth_password_verify(password, u->hash);
		if (rc != RC_OK) {
			rc = RC_UNAUTHORIZED;
			goto fail;
		}
	}
	/* Checked on every sign-in, cached or not; an expired user with the
	 * right password paid for the hash above like any other. */
	if (u->expires != 0 && now >= u->expires) {
		rc = RC_UNAUTHORIZED;
		goto fail;
	}
	if (!cached && have_mac)
		cred_remember(a->creds, mac, idx, now);
	rc = RC_OK;
fail:
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}
