/* HTTPS: the certificate and key berth serves (tls.c). */
#ifndef BERTH_REGISTRY_TLS_H
#define BERTH_REGISTRY_TLS_H

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <microhttpd.h>
#include <stddef.h>

struct tls;

/* Loads the pair (PEM: the certificate file may hold the chain after the
 * leaf; the key must match the leaf). On failure err holds one line
 * "FILE: reason" and the result is < 0. One pair per process: the
 * handshake callback has no argument of its own to find it by. */
int tls_open(const char *cert_path, const char *key_path, struct tls **out,
             char *err, size_t errlen) __attribute__((warn_unused_result));
/* After the daemon has stopped (no handshake can be running). */
void tls_close(struct tls *t);
/* Loads the pair again when either file changed (or always, with force):
 * 1 reloaded, 0 unchanged, < 0 failed (the previous pair stays; logged,
 * counted in berth_reload_total{file="tls"}). */
int tls_reload(struct tls *t, int force);

/* The GnuTLS priority string: TLS 1.3 and 1.2, AEAD ciphers, ECDHE. */
const char *tls_priorities(void);
/* MHD_OPTION_HTTPS_CERT_CALLBACK: the pair in force when the handshake
 * asks, held by the connection until tls_conn_closed. Declared with
 * GnuTLS's own type, so the definition is checked against it. */
gnutls_certificate_retrieve_function2 tls_cert_callback;
/* A connection closes (MHD_CONNECTION_NOTIFY_CLOSED, before MHD frees its
 * TLS session): it lets go of the pair it was given. */
void tls_conn_closed(struct MHD_Connection *conn);

#endif
