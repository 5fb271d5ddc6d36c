/* The one HTTP client (libcurl) of the commands that talk to a running
 * server: `berth gc` now, later `rm`, `ls`, `backup`. Generic: a method,
 * a path under the server's URL, an optional JSON body; back come the
 * status and the body.
 *
 * Authentication is the Docker token dance: a request answered 401 with
 * `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` gets a token
 * from the realm (GET realm?service=…&scope=…, with HTTP Basic when a user
 * is set, anonymously otherwise) and is sent once more with
 * `Authorization: Bearer …`. A preset token is sent from the first request
 * on and never replaced. A token obtained is kept for the next requests
 * of the same client.
 *
 * Failures are one line for the user (err), never holding a password or
 * a token: the server unreachable (curl's message), a 401 left after the
 * dance (with what the users file must allow), an OCI error body
 * ("CODE: message (detail)"), any other status ("HTTP N"). */
#ifndef BERTH_REGISTRY_CLIENT_H
#define BERTH_REGISTRY_CLIENT_H

#include <stddef.h>

struct client;

#define CLIENT_CONNECT_TIMEOUT 10  /* seconds to connect */
#define CLIENT_TIMEOUT         300 /* default seconds for one request */

struct client_options {
	const char *server;   /* "http(s)://host[:port][/prefix]" */
	const char *user;     /* Basic credentials for the realm, or NULL */
	const char *password; /* with user */
	const char *token;    /* preset bearer token (instead of a user) */
	long timeout_s;       /* whole request incl. the token dance; 0:
	                       * CLIENT_TIMEOUT */
};

/* A response: status and body (NUL-terminated, len bytes before it). */
struct client_reply {
	long status;
	char *body;
	size_t len;
};

/* Checks the options and copies them (secrets are wiped on close).
 * RC_BAD_REQUEST with a line in err for a server URL that is not
 * http(s)://, holds credentials, a query or a fragment. */
int client_open(const struct client_options *o, struct client **out, char *err,
                size_t errlen) __attribute__((warn_unused_result));

/* Wipes the secrets and frees. NULL is fine. */
void client_close(struct client *c);

/* Sends method path (starting with '/') with json as the body when not
 * NULL, through the token dance. RC_OK when a response arrived, whatever
 * its status: *out holds it (free it with client_reply_free). Otherwise
 * an rc and one line in err: a negative errno for a transport failure
 * (-ETIMEDOUT past the timeout, -ECONNREFUSED, -EHOSTUNREACH for a name
 * that does not resolve, -EIO for the rest), RC_TOO_LARGE for a body over
 * 64 MiB, RC_UNAUTHORIZED when the token server refused or failed. */
int client_request(struct client *c, const char *method, const char *path,
                   const char *json, struct client_reply *out, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

/* RC_OK for a 2xx reply. Otherwise the rc of the status (RC_UNAUTHORIZED
 * for 401, RC_DENIED for 403, RC_NOT_FOUND for 404, RC_BAD_REQUEST for
 * another 4xx, RC_UNSUPPORTED for the rest) and its line in err. */
int client_reply_error(const struct client *c, const struct client_reply *r,
                       char *err, size_t errlen);

void client_reply_free(struct client_reply *r);

#endif
