/* The certificate and key berth serves over HTTPS, and their rotation.
 *
 * A pair is loaded into a "generation": the chain (leaf first, then the
 * intermediates, as cert-manager writes tls.crt) and the private key,
 * parsed and the key checked against the leaf before the generation may
 * be used. Loaded at start, loaded again on SIGHUP and when either file
 * changes (a Secret update swaps the `..data` symlink: stat() follows it
 * and sees another inode). A pair that fails to load is logged and the
 * generation in force stays.
 *
 * Lifetime. GnuTLS asks for the certificate through the retrieve callback
 * once per handshake and keeps the pointers it is given (pcert list and
 * private key) in the session without copying them: with
 * gnutls_certificate_set_retrieve_function2 it never frees them (it
 * assumes the callback's flags are 0, not GNUTLS_CERT_RETR_DEINIT_ALL) and
 * reads them while the handshake runs, which is within the session's life.
 * So every session holds a reference on the generation it was given, from
 * the callback until its connection closes: MHD calls the connection's
 * CLOSED notification (tls_conn_closed) before gnutls_deinit, and after it
 * no handshake step runs on that session any more. The holder's "current"
 * pointer is one more reference. A reload swaps the current pointer under
 * the lock and drops the holder's reference; the old generation is freed
 * when its last connection closes, never while a session may read it.
 * Sessions are found by their gnutls_session_t in a small table (the
 * session's own user pointer belongs to MHD). A session asking twice (a
 * second handshake on one connection) is given the generation it holds. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/rc.h"
#include "registry/http.h"
#include "registry/tls.h"

#define TLS_FILE_MAX  (1024 * 1024) /* a PEM chain or key is far smaller */
#define TLS_CHAIN_MAX 16
#define TLS_BUCKETS   64

/* TLS 1.3 and 1.2 only; AEAD ciphers only (no CBC, no SHA-1 MAC); ECDHE
 * key exchange only (forward secrecy, no static RSA or DHE); no SHA-1
 * signatures. The server's order of preference wins. */
static const char priorities[] =
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"
        "-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:"
        "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"
        "-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1:"
        "%SERVER_PRECEDENCE";

struct tls_gen {
	int refs; /* under tls.lock */
	gnutls_pcert_st *pcerts;
	unsigned n;
	gnutls_privkey_t key;
};

struct tls_hold {
	struct tls_hold *next;
	gnutls_session_t session;
	struct tls_gen *gen;
};

struct tls {
	char *cert_path, *key_path;
	pthread_mutex_t lock;   /* cur, refs, sessions, seen */
	pthread_mutex_t reload; /* one reload at a time */
	struct tls_gen *cur;
	struct stat seen[2];
	int have_seen[2];
	struct tls_hold *sessions[TLS_BUCKETS];
};

/* The pair the handshake callback serves (it gets no argument of ours). */
static struct tls *active;

static void
gen_free(struct tls_gen *g)
{
	if (g == NULL)
		return;
	for (unsigned i = 0; i < g->n; i++)
		gnutls_pcert_deinit(&g->pcerts[i]);
	free(g->pcerts);
	if (g->key != NULL)
		gnutls_privkey_deinit(g->key);
	free(g);
}

/* Drops one reference; t->lock held. Returns the generation to free
 * (outside the lock) when it was the last. */
static struct tls_gen *
gen_unref(struct tls_gen *g)
{
	if (g == NULL || --g->refs > 0)
		return NULL;
	return g;
}

/* The whole of a small regular file; *len bytes in *out (malloc'd). */
static int
slurp(const char *path, unsigned char **out, size_t *len, char *err,
      size_t errlen)
{
	struct stat st;
	unsigned char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > TLS_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file under 1 MiB",
		         path);
		close(fd);
		return RC_BAD_REQUEST;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: %s", path,
			         n < 0 ? strerror(errno) : "file shrank");
			gnutls_memset(buf, 0, got);
			free(buf);
			close(fd);
			return RC_BAD_REQUEST;
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return RC_OK;
}

/* The chain in cert_path as pcerts; the leaf's public key id (SHA-256
 * of its SubjectPublicKeyInfo) and certificate fingerprint. */
static int
load_chain(const char *path, struct tls_gen *g, unsigned char *keyid,
           size_t *keyid_len, char *fp_hex, time_t *not_after, char *err,
           size_t errlen)
{
	gnutls_x509_crt_t *crts = NULL;
	unsigned n = 0, np;
	unsigned char *pem, fp[32];
	size_t len, fplen = sizeof(fp);
	gnutls_datum_t d;
	int rc = slurp(path, &pem, &len, err, errlen), ret;

	if (rc != RC_OK)
		return rc;
	d.data = pem;
	d.size = (unsigned)len;
	ret = gnutls_x509_crt_list_import2(
	        &crts, &n, &d, GNUTLS_X509_FMT_PEM,
	        GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
	free(pem);
	if (ret == GNUTLS_E_CERTIFICATE_LIST_UNSORTED) {
		snprintf(err, errlen,
		         "%s: the chain is out of order (want the leaf first, "
		         "then each issuer)",
		         path);
		return RC_BAD_REQUEST;
	}
	if (ret < 0 || n == 0) {
		if (ret >= 0)
			gnutls_free(crts);
		snprintf(
		        err, errlen, "%s: no PEM certificate (%s)", path,
		        gnutls_strerror(
		                ret < 0 ? ret : GNUTLS_E_NO_CERTIFICATE_FOUND));
		return RC_BAD_REQUEST;
	}
	rc = RC_BAD_REQUEST;
	if (n > TLS_CHAIN_MAX) {
		snprintf(err, errlen, "%s: more than %d certificates", path,
		         TLS_CHAIN_MAX);
		goto out;
	}
	if (gnutls_x509_crt_get_key_id(crts[0], GNUTLS_KEYID_USE_SHA256, keyid,
	                               keyid_len) < 0 ||
	    gnutls_x509_crt_get_fingerprint(crts[0], GNUTLS_DIG_SHA256, fp,
	                                    &fplen) < 0) {
		snprintf(err, errlen, "%s: unreadable certificate", path);
		goto out;
	}
	for (size_t i = 0; i < fplen; i++)
		snprintf(fp_hex + 2 * i, 3, "%02x", fp[i]);
	*not_after = gnutls_x509_crt_get_expiration_time(crts[0]);
	g->pcerts = calloc(n, sizeof(*g->pcerts));
	if (g->pcerts == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	np = n; /* not sorted (flags 0): stays n */
	ret = gnutls_pcert_import_x509_list(g->pcerts, crts, &np, 0);
	if (ret < 0 || np != n) {
		snprintf(err, errlen, "%s: %s", path,
		         gnutls_strerror(ret < 0 ? ret
		                                 : GNUTLS_E_INTERNAL_ERROR));
		for (unsigned i = 0; ret >= 0 && i < np; i++)
			gnutls_pcert_deinit(&g->pcerts[i]);
		free(g->pcerts);
		g->pcerts = NULL;
		goto out;
	}
	g->n = n;
	rc = RC_OK;
out:
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	return rc;
}

/* The private key in key_path, and its public key id. */
static int
load_key(const char *path, struct tls_gen *g, unsigned char *keyid,
         size_t *keyid_len, char *err, size_t errlen)
{
	unsigned char *pem;
	size_t len;
	gnutls_datum_t d;
	gnutls_pubkey_t pub = NULL;
	int rc = slurp(path, &pem, &len, err, errlen), ret;

	if (rc != RC_OK)
		return rc;
	d.data = pem;
	d.size = (unsigned)len;
	ret = gnutls_privkey_init(&g->key);
	if (ret >= 0)
		ret = gnutls_privkey_import_x509_raw(
		        g->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_memset(pem, 0, len); /* a secret */
	free(pem);
	if (ret < 0) {
		snprintf(err, errlen, "%s: no PEM private key (%s)", path,
		         gnutls_strerror(ret));
		return RC_BAD_REQUEST;
	}
	if (gnutls_pubkey_init(&pub) < 0 ||
	    gnutls_pubkey_import_privkey(pub, g->key, 0, 0) < 0 ||
	    gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, keyid,
	                             keyid_len) < 0) {
		snprintf(err, errlen, "%s: unusable private key", path);
		rc = RC_BAD_REQUEST;
	}
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	return rc;
}

/* A complete generation from the two files, or an error naming the file
 * and the reason. fp_hex gets the leaf's SHA-256 fingerprint. */
static int
gen_load(const char *cert_path, const char *key_path, struct tls_gen **out,
         char *fp_hex, time_t *not_after, char *err, size_t errlen)
{
	struct tls_gen *g = calloc(1, sizeof(*g));
	unsigned char cid[64], kid[64];
	size_t clen = sizeof(cid), klen = sizeof(kid);
	int rc;

	if (g == NULL)
		return -ENOMEM;
	rc = load_chain(cert_path, g, cid, &clen, fp_hex, not_after, err,
	                errlen);
	if (rc == RC_OK)
		rc = load_key(key_path, g, kid, &klen, err, errlen);
	if (rc == RC_OK && (clen != klen || memcmp(cid, kid, clen) != 0)) {
		snprintf(err, errlen,
		         "%s: the key does not match the certificate in %s",
		         key_path, cert_path);
		rc = RC_BAD_REQUEST;
	}
	if (rc != RC_OK) {
		if (rc == -ENOMEM && err[0] == '\0')
			snprintf(err, errlen, "out of memory");
		gen_free(g);
		return rc;
	}
	g->refs = 1;
	*out = g;
	return RC_OK;
}

/* Loads both files; on success the new generation is in force. */
static int
load(struct tls *t, char *fp_hex, time_t *not_after, char *err, size_t errlen)
{
	struct stat st[2];
	int have[2];
	struct tls_gen *g = NULL, *old;
	int rc;

	/* Looked at before reading: a file replaced meanwhile differs from
	 * what is recorded, and the next poll loads it again. */
	have[0] = stat(t->cert_path, &st[0]) == 0;
	have[1] = stat(t->key_path, &st[1]) == 0;
	rc = gen_load(t->cert_path, t->key_path, &g, fp_hex, not_after, err,
	              errlen);
	pthread_mutex_lock(&t->lock);
	/* Seen even when it failed: a broken pair is not read again every
	 * few seconds, only once a file changes. */
	for (int i = 0; i < 2; i++) {
		t->have_seen[i] = have[i];
		if (have[i])
			t->seen[i] = st[i];
	}
	if (rc != RC_OK) {
		pthread_mutex_unlock(&t->lock);
		return rc;
	}
	old = gen_unref(t->cur);
	t->cur = g;
	pthread_mutex_unlock(&t->lock);
	gen_free(old);
	return RC_OK;
}

static void
fmt_time(time_t when, char *buf, size_t len)
{
	struct tm tm;

	if (when == (time_t)-1 || gmtime_r(&when, &tm) == NULL)
		snprintf(buf, len, "unknown");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
log_loaded(struct tls *t, const char *msg, const char *fp, time_t not_after)
{
	char na[32];

	fmt_time(not_after, na, sizeof(na));
	log_msg("info", msg, "cert", t->cert_path, "key", t->key_path, "sha256",
	        fp, "not_after", na, NULL);
	if (not_after != (time_t)-1 && not_after < time(NULL))
		log_msg("warn", "the tls certificate has expired", "cert",
		        t->cert_path, "not_after", na, NULL);
}

int
tls_open(const char *cert_path, const char *key_path, struct tls **out,
         char *err, size_t errlen)
{
	struct tls *t;
	char fp[65] = "";
	time_t not_after = (time_t)-1;
	int rc;

	err[0] = '\0';
	if (active != NULL) {
		snprintf(err, errlen, "one certificate per process");
		return RC_BAD_REQUEST;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL || (t->cert_path = strdup(cert_path)) == NULL ||
	    (t->key_path = strdup(key_path)) == NULL) {
		if (t != NULL)
			free(t->cert_path);
		free(t);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->reload, NULL);
	rc = load(t, fp, &not_after, err, errlen);
	if (rc != RC_OK) {
		tls_close(t);
		return rc;
	}
	log_loaded(t, "tls certificate loaded", fp, not_after);
	active = t;
	*out = t;
	return RC_OK;
}

void
tls_close(struct tls *t)
{
	unsigned long left = 0;

	if (t == NULL)
		return;
	if (active == t)
		active = NULL;
	/* The daemon has stopped: every connection has closed and dropped
	 * its reference; what is left is the holder's (and any session the
	 * daemon never reported closed: counted, freed all the same). */
	for (int i = 0; i < TLS_BUCKETS; i++) {
		while (t->sessions[i] != NULL) {
			struct tls_hold *h = t->sessions[i];
			t->sessions[i] = h->next;
			gen_free(gen_unref(h->gen));
			free(h);
			left++;
		}
	}
	if (left > 0) {
		char n[24];
		snprintf(n, sizeof(n), "%lu", left);
		log_msg("warn", "tls sessions never reported closed", "count",
		        n, NULL);
	}
	gen_free(gen_unref(t->cur));
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->reload);
	free(t->cert_path);
	free(t->key_path);
	free(t);
}

int
tls_reload(struct tls *t, int force)
{
	struct stat st;
	char err[512] = "", fp[65] = "";
	time_t not_after = (time_t)-1;
	int changed = 0, rc;
	const char *paths[2];

	if (t == NULL)
		return 0;
	paths[0] = t->cert_path;
	paths[1] = t->key_path;
	pthread_mutex_lock(&t->reload);
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < 2; i++) {
		if (stat(paths[i], &st) != 0)
			changed |= t->have_seen[i]; /* gone: say so once */
		else
			changed |= !t->have_seen[i] ||
			           !stat_same_file(&st, &t->seen[i]);
	}
	pthread_mutex_unlock(&t->lock);
	if (!changed && !force) {
		pthread_mutex_unlock(&t->reload);
		return 0;
	}
	rc = load(t, fp, &not_after, err, sizeof(err));
	if (rc == RC_OK) {
		metrics_reload("tls", 1);
		log_loaded(t, "tls certificate reloaded", fp, not_after);
	} else {
		metrics_reload("tls", 0);
		log_msg("error",
		        "tls reload failed, the previous certificate stays",
		        "error", err[0] ? err : rc_str(rc), NULL);
	}
	pthread_mutex_unlock(&t->reload);
	return rc == RC_OK ? 1 : rc;
}

const char *
tls_priorities(void)
{
	return priorities;
}

static unsigned
bucket_of(gnutls_session_t s)
{
	uintptr_t k = (uintptr_t)s;

	return (unsigned)((k >> 4) ^ (k >> 12)) % TLS_BUCKETS;
}

int
tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca,
                  int nreqs, const gnutls_pk_algorithm_t *pk_algos, int n_algos,
                  gnutls_pcert_st **pcert, unsigned int *pcert_length,
                  gnutls_privkey_t *pkey)
{
	struct tls *t = active;
	struct tls_hold *h;
	struct tls_gen *g;
	unsigned b = bucket_of(session);

	(void)req_ca;
	(void)nreqs;
	(void)pk_algos;
	(void)n_algos;
	if (t == NULL)
		return -1; /* ends the handshake */
	pthread_mutex_lock(&t->lock);
	for (h = t->sessions[b]; h != NULL; h = h->next)
		if (h->session == session)
			break;
	if (h == NULL) {
		h = malloc(sizeof(*h));
		if (h == NULL || t->cur == NULL) {
			pthread_mutex_unlock(&t->lock);
			free(h);
			return -1;
		}
		h->session = session;
		h->gen = t->cur;
		h->gen->refs++;
		h->next = t->sessions[b];
		t->sessions[b] = h;
	}
	g = h->gen;
	pthread_mutex_unlock(&t->lock);
	*pcert = g->pcerts;
	*pcert_length = g->n;
	*pkey = g->key;
	return 0;
}

void
tls_conn_closed(struct MHD_Connection *conn)
{
	struct tls *t = active;
	const union MHD_ConnectionInfo *ci;
	struct tls_hold **pp, *h = NULL;
	struct tls_gen *dead = NULL;

	if (t == NULL)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	for (pp = &t->sessions[bucket_of(ci->tls_session)]; *pp != NULL;
	     pp = &(*pp)->next) {
		if ((*pp)->session == ci->tls_session) {
			h = *pp;
			*pp = h->next;
			dead = gen_unref(h->gen);
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	free(h);
	gen_free(dead);
}
