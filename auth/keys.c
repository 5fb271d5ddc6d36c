/* Signing and verification keys: loading PEM files, the two key IDs a
 * token header may carry (the RFC 7638 JWK thumbprint that berth writes,
 * and the libtrust form older token servers write), and key generation. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth/auth_internal.h"
#include "common/rc.h"

#define RSA_MIN_BITS 2048
#define COORD_MAX    66 /* bytes of a P-521 coordinate */
#define RSA_MAX_BYTE 2048

/* Never ask for a passphrase: berth's keys are not encrypted. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int
curve_of(EVP_PKEY *pkey, int *bits, const char **crv)
{
	static const struct {
		const char *name, *nist, *crv;
		int bits;
	} curves[] = {
	        {"prime256v1", "P-256", "P-256", 256},
	        {"secp384r1", "P-384", "P-384", 384},
	        {"secp521r1", "P-521", "P-521", 521},
	};
	char group[64];
	size_t glen = 0;

	if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
	                                    group, sizeof(group), &glen))
		return RC_UNSUPPORTED;
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
		if (strcmp(group, curves[i].name) == 0 ||
		    strcmp(group, curves[i].nist) == 0) {
			*bits = curves[i].bits;
			*crv = curves[i].crv;
			return RC_OK;
		}
	}
	return RC_UNSUPPORTED;
}

/* Big-endian bytes of a key parameter, left-padded to pad bytes (or
 * minimal when pad is 0). Returns the length or a negative code. */
static int
param_bytes(EVP_PKEY *pkey, const char *name, unsigned char *out, size_t outlen,
            size_t pad)
{
	BIGNUM *bn = NULL;
	int n;

	if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
		return RC_UNSUPPORTED;
	if (pad > 0)
		n = pad <= outlen ? BN_bn2binpad(bn, out, (int)pad) : -1;
	else
		n = (size_t)BN_num_bytes(bn) <= outlen ? BN_bn2bin(bn, out)
		                                       : -1;
	BN_free(bn);
	return n < 0 ? RC_UNSUPPORTED : n;
}

/* RFC 7638: SHA-256 over the required members of the JWK in lexical
 * order, without white space. */
static int
thumbprint(EVP_PKEY *pkey, int rsa, int bits, const char *crv, char *kid)
{
	unsigned char a[RSA_MAX_BYTE], b[RSA_MAX_BYTE], md[32];
	char ea[RSA_MAX_BYTE * 4 / 3 + 4], eb[RSA_MAX_BYTE * 4 / 3 + 4];
	char *json;
	int na, nb, len;

	if (rsa) {
		na = param_bytes(pkey, OSSL_PKEY_PARAM_RSA_E, a, sizeof(a), 0);
		nb = param_bytes(pkey, OSSL_PKEY_PARAM_RSA_N, b, sizeof(b), 0);
	} else {
		size_t size = ((size_t)bits + 7) / 8;

		na = param_bytes(pkey, OSSL_PKEY_PARAM_EC_PUB_X, a, sizeof(a),
		                 size);
		nb = param_bytes(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, b, sizeof(b),
		                 size);
	}
	if (na < 0 || nb < 0)
		return RC_UNSUPPORTED;
	auth_b64_encode(AUTH_B64_URL, a, (size_t)na, ea);
	auth_b64_encode(AUTH_B64_URL, b, (size_t)nb, eb);
	if (rsa)
		len = asprintf(&json,
		               "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
		               ea, eb);
	else
		len = asprintf(&json,
		               "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\","
		               "\"y\":\"%s\"}",
		               crv, ea, eb);
	if (len < 0)
		return -ENOMEM;
	if (!EVP_Digest(json, (size_t)len, md, NULL, EVP_sha256(), NULL)) {
		free(json);
		return RC_UNSUPPORTED;
	}
	free(json);
	auth_b64_encode(AUTH_B64_URL, md, sizeof(md), kid);
	return RC_OK;
}

/* libtrust key ID: the first 240 bits of SHA-256 over the DER
 * SubjectPublicKeyInfo, base32 (RFC 4648, no padding), in groups of four
 * characters joined by ':'. */
static int
trust_key_id(EVP_PKEY *pkey, char *out)
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	unsigned char *der = NULL, md[32];
	int dlen = i2d_PUBKEY(pkey, &der);
	unsigned acc = 0, nbits = 0;
	size_t o = 0, chars = 0;

	if (dlen <= 0)
		return RC_UNSUPPORTED;
	if (!EVP_Digest(der, (size_t)dlen, md, NULL, EVP_sha256(), NULL)) {
		OPENSSL_free(der);
		return RC_UNSUPPORTED;
	}
	OPENSSL_free(der);
	/* 30 bytes are 240 bits: exactly 48 base32 characters. */
	for (size_t i = 0; i < 30; i++) {
		acc = (acc << 8) | md[i];
		nbits += 8;
		while (nbits >= 5) {
			nbits -= 5;
			if (chars > 0 && chars % 4 == 0)
				out[o++] = ':';
			out[o++] = b32[(acc >> nbits) & 31];
			chars++;
		}
	}
	out[o] = '\0';
	return RC_OK;
}

/* Classifies pkey and fills every field of k but issuer. */
static int
key_fill(EVP_PKEY *pkey, struct auth_key *k, const char **why)
{
	const char *crv = NULL;
	int rc;

	memset(k, 0, sizeof(*k));
	if (EVP_PKEY_is_a(pkey, "EC")) {
		if (curve_of(pkey, &k->curve_bits, &crv) < 0) {
			*why = "EC key on a curve other than P-256, P-384, "
			       "P-521";
			return RC_UNSUPPORTED;
		}
	} else if (EVP_PKEY_is_a(pkey, "RSA")) {
		if (EVP_PKEY_get_bits(pkey) < RSA_MIN_BITS) {
			*why = "RSA key shorter than 2048 bits";
			return RC_UNSUPPORTED;
		}
		if (EVP_PKEY_get_bits(pkey) > RSA_MAX_BYTE * 8) {
			*why = "RSA key longer than 16384 bits";
			return RC_UNSUPPORTED;
		}
		k->rsa = 1;
	} else {
		*why = "not an EC or RSA key";
		return RC_UNSUPPORTED;
	}
	if ((rc = thumbprint(pkey, k->rsa, k->curve_bits, crv, k->kid)) < 0 ||
	    (rc = trust_key_id(pkey, k->trustkid)) < 0) {
		*why = "cannot compute the key ID";
		memset(k, 0, sizeof(*k));
		return rc;
	}
	k->pkey = pkey;
	return RC_OK;
}

int
auth_key_load(const char *path, int want_private, struct auth_key *out,
              const char **why)
{
	struct auth_key k;
	EVP_PKEY *pkey;
	FILE *f;
	int rc;

	if ((f = fopen(path, "re")) == NULL) {
		rc = -errno;
		*why = strerror(errno);
		return rc;
	}
	pkey = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	if (pkey == NULL && !want_private) {
		rewind(f);
		pkey = PEM_read_PUBKEY(f, NULL, no_passphrase, NULL);
	}
	fclose(f);
	/* Leave no stale OpenSSL error behind for an unrelated caller. */
	ERR_clear_error();
	if (pkey == NULL) {
		*why = want_private ? "not a PEM private key (or encrypted)"
		                    : "not a PEM private or public key";
		return RC_BAD_REQUEST;
	}
	if ((rc = key_fill(pkey, &k, why)) < 0) {
		EVP_PKEY_free(pkey);
		return rc == RC_UNSUPPORTED ? RC_BAD_REQUEST : rc;
	}
	*out = k;
	return RC_OK;
}

int
auth_key_public(const struct auth_key *priv, struct auth_key *out)
{
	struct auth_key k = *priv;
	unsigned char *der = NULL;
	const unsigned char *p;
	int len = i2d_PUBKEY(priv->pkey, &der);

	if (len <= 0)
		return RC_UNSUPPORTED;
	p = der;
	k.pkey = d2i_PUBKEY(NULL, &p, len);
	OPENSSL_free(der);
	if (k.pkey == NULL)
		return RC_UNSUPPORTED;
	k.issuer = NULL;
	if (priv->issuer != NULL && (k.issuer = strdup(priv->issuer)) == NULL) {
		EVP_PKEY_free(k.pkey);
		return -ENOMEM;
	}
	*out = k;
	return RC_OK;
}

void
auth_key_clear(struct auth_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->issuer);
	memset(k, 0, sizeof(*k));
}

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return RC_OK;
}

int
auth_keygen(const char *path)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	BIO *mem = NULL;
	char *pem;
	long len;
	int fd = -1, created = 0, rc = RC_UNSUPPORTED;

	if (pkey == NULL)
		goto fail;
	if ((mem = BIO_new(BIO_s_secmem())) == NULL ||
	    !PEM_write_bio_PrivateKey(mem, pkey, NULL, NULL, 0, NULL, NULL) ||
	    (len = BIO_get_mem_data(mem, &pem)) <= 0)
		goto fail;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	          0600);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	created = 1;
	if ((rc = write_all(fd, pem, (size_t)len)) < 0)
		goto fail;
	if (fsync(fd) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = close(fd) < 0 ? -errno : RC_OK;
	fd = -1;
fail:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && created)
		unlink(path);
	BIO_free(mem);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return rc;
}
