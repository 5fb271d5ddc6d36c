/* The one HTTP client (libcurl) of the commands that talk to a running
 * server: `berth gc`, `rm`, `ls`, later `backup`. Generic: a method,
 * a path under the server's URL, an optional JSON body; back come the
 * status and the body.
 *
 * Authentication is the Docker token dance: a request answered 401 with
 * `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` gets a token
 * from the realm (GET realm?service=…&scope=…, with HTTP Basic when a user
 * is set, anonymously otherwise; from the token URL instead of the realm
 * when one is set) and is sent once more with
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

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

struct client;

#define CLIENT_CONNECT_TIMEOUT 10  /* seconds to connect */
#define CLIENT_TIMEOUT         300 /* default seconds for one request */

struct client_options {
	const char *server;    /* "http(s)://host[:port][/prefix]" */
	const char *user;      /* Basic credentials for the realm, or NULL */
	const char *password;  /* with user */
	const char *token;     /* preset bearer token (instead of a user) */
	const char *token_url; /* get tokens here, not from the challenge's
	                        * realm (same query, same credentials); or
	                        * NULL */
	long timeout_s;        /* whole request incl. the token dance; 0:
	                        * CLIENT_TIMEOUT */
	const char *ca_file;   /* PEM CA certificates to trust for https
	                        * (the server and the token realm) instead
	                        * of the system's; or NULL */
};

/* A response: status and body (NUL-terminated, len bytes before it). */
struct client_reply {
	long status;
	char *body;
	size_t len;
};

/* Checks the options and copies them (secrets are wiped on close).
 * RC_BAD_REQUEST with a line in err for a server URL that is not
 * http(s)://, holds credentials, a query or a fragment, or a token URL
 * that is not http(s):// or holds credentials or a fragment (a query is
 * fine: service= and scope= are appended with '&'). */
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

/* Takes n bytes of a streamed answer: 0, or non-zero to stop it. */
typedef int (*client_sink_fn)(const void *p, size_t n, void *arg);

/* The code client_request_sink returns when the sink stopped it. */
#define RC_SINK (-EPIPE)

/* client_request for an answer of any size: the body of a 2xx answer goes
 * to sink as it arrives (out->body is then empty), any other answer is
 * kept in out as client_request keeps it. Beyond client_request's codes:
 * RC_SINK when the sink refused bytes, and -EIO (or -ETIMEDOUT) with
 * "the answer of … broke off: …" when a 2xx answer did not end
 * properly (what the sink got is then incomplete). */
int client_request_sink(struct client *c, const char *method, const char *path,
                        client_sink_fn sink, void *arg,
                        struct client_reply *out, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* RC_OK for a 2xx reply. Otherwise the rc of the status (RC_UNAUTHORIZED
 * for 401, RC_DENIED for 403, RC_NOT_FOUND for 404, RC_BAD_REQUEST for
 * another 4xx, RC_UNSUPPORTED for the rest) and its line in err. */
int client_reply_error(const struct client *c, const struct client_reply *r,
                       char *err, size_t errlen);

void client_reply_free(struct client_reply *r);

/* The code of an OCI error body ("MANIFEST_UNKNOWN") into code; 0 when
 * the body is one, -1 otherwise (code is then ""). */
int client_reply_oci_code(const struct client_reply *r, char *code, size_t len);

/* The body of a reply as JSON: RC_OK and *out (json_decref it), or
 * RC_UNSUPPORTED and "the server's answer (HTTP N) is not WHAT" in err
 * when it is no JSON at all. */
int client_reply_json(const struct client_reply *r, const char *what,
                      json_t **out, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* That line alone, for an answer that is JSON of the wrong shape. */
void client_reply_invalid(const struct client_reply *r, const char *what,
                          char *err, size_t errlen);

/* s percent-encoded for a query value or a path segment (all but
 * A-Z a-z 0-9 - . _ ~), malloc'ed; NULL when out of memory. */
char *client_escape(const char *s) __attribute__((warn_unused_result));

/* ---- pieces of any libcurl transfer (the client's above, kube.c's) ---- */

/* What a transfer has received so far: buf is NULL until the first byte,
 * then NUL-terminated (len bytes before it); free(buf) when done. A body
 * past the limit stops the transfer (curl_easy_perform fails) with
 * too_large set. */
struct client_buf {
	char *buf;
	size_t len, cap;
	size_t limit;
	int too_large;
};

/* Empties b and points cu's write callback at it, to keep at most limit
 * bytes. */
void client_curl_body(CURL *cu, struct client_buf *b, size_t limit);

/* The monotonic clock in ms, for the deadline of a series of transfers. */
long client_ms_now(void);

/* Gives cu's next transfer left_ms (> 0) in all, and at most
 * CLIENT_CONNECT_TIMEOUT of that to connect. */
void client_curl_timeouts(CURL *cu, long left_ms);

/* Appends text from elsewhere (a server, curl) to the message dst of len
 * bytes: control characters become '?', so that the line stays one line
 * and a terminal stays sane. */
void client_msg_cat(char *dst, size_t len, const char *src);

/* ---- the command line of the commands built on this client ----
 * (client_cli.c; the HTTP client above is client.c)
 *
 * Every such command (gc, rm, ls, …) takes the same flags to reach the
 * server: --server URL, --user NAME with --password-file FILE, or
 * --token-file FILE, --token-url URL, --ca-file FILE and --timeout
 * SECONDS; what no flag sets comes from the environment (BERTH_SERVER,
 * BERTH_USER, BERTH_PASSWORD_FILE, BERTH_TOKEN_FILE, BERTH_TOKEN_URL,
 * BERTH_CA_FILE). A sign-in
 * given by flags (user and password, or token) wins over the other one
 * given by the environment. Secrets are read from files (a trailing
 * newline dropped, at most 64 KiB) and wiped once the client holds its
 * copy.
 *
 * Messages are one line on stderr, "berth CMD: …"; usage errors end with
 * " (berth CMD --help)" and mean exit status 2, other failures 1.
 *
 *	struct client_cli cli;
 *	client_cli_init(&cli, "rm");
 *	for (i = 0; i < argc; i++) {
 *		if ((rc = client_cli_option(&cli, argc, argv, &i)) == 1)
 *			continue;
 *		if (rc != 0)
 *			return rc; (-1 for --help: usage, exit 0)
 *		… the command's own flags (client_cli_value for a value) …
 *	}
 *	if ((rc = client_cli_finish(&cli)) != 0 ||
 *	    (rc = client_cli_open(&cli, &c)) != 0)
 *		return rc;
 */

#define CLIENT_TIMEOUT_MAX 86400         /* largest --timeout */
#define CLIENT_SECRET_MAX  (64u * 1024u) /* largest secret file */

/* Their lines in a command's --help (no '%': part of a format is fine). */
#define CLIENT_CLI_HELP_SYNOPSIS                                               \
	"                [--user NAME --password-file FILE | "                 \
	"--token-file FILE]\n"                                                 \
	"                [--token-url URL] [--ca-file FILE]\n"
#define CLIENT_CLI_HELP_SERVER                                                 \
	"  --server URL          the registry, http(s)://host:port "           \
	"(env BERTH_SERVER)\n"
#define CLIENT_CLI_HELP_SIGNIN                                                 \
	"  --user NAME           sign in as NAME at the server's "             \
	"token endpoint\n"                                                     \
	"                        (env BERTH_USER)\n"                           \
	"  --password-file FILE  NAME's password: the content of FILE, "       \
	"a trailing\n"                                                         \
	"                        newline dropped (env "                        \
	"BERTH_PASSWORD_FILE)\n"                                               \
	"  --token-file FILE     a bearer token to send as is, from "          \
	"FILE likewise\n"                                                      \
	"                        (env BERTH_TOKEN_FILE)\n"                     \
	"  --token-url URL       get tokens from URL instead of the realm "    \
	"the server\n"                                                         \
	"                        names, e.g. its in-cluster address when "     \
	"only that\n"                                                          \
	"                        is reachable (env BERTH_TOKEN_URL)\n"         \
	"  --ca-file FILE        trust the CA certificates in FILE (PEM) "     \
	"for https\n"                                                          \
	"                        instead of the system's (env "                \
	"BERTH_CA_FILE)\n"

struct client_cli {
	const char *cmd; /* "rm": messages say "berth rm: …" */
	/* Set by client_cli_finish: */
	const char *server;
	const char *user, *password_file; /* both or neither */
	const char *token_file;           /* or NULL */
	const char *token_url;            /* or NULL */
	const char *ca_file;              /* or NULL */
	long timeout_s;
	/* The flags as given (NULL when absent): */
	const char *flag_server, *flag_user, *flag_password_file;
	const char *flag_token_file, *flag_token_url, *flag_timeout;
	const char *flag_ca_file;
};

void client_cli_init(struct client_cli *cli, const char *cmd);

/* Looks at argv[*i]: 1 when it is one of the flags above (taken, with its
 * value; *i then points at the value), 0 when it is not, 2 when its value
 * is missing (message printed), -1 when it is --help or -h. */
int client_cli_option(struct client_cli *cli, int argc, char **argv, int *i)
        __attribute__((warn_unused_result));

/* The value of the flag argv[*i] (the next argument, not empty) into
 * *val; *i then points at it. 0, or 2 (message printed). For the
 * command's own flags that take a value. */
int client_cli_value(const struct client_cli *cli, int argc, char **argv,
                     int *i, const char **val)
        __attribute__((warn_unused_result));

/* After the flags: the environment for what no flag set, then the rules
 * (a server is needed; user and password go together; they and a token
 * exclude each other; a timeout from 1 to CLIENT_TIMEOUT_MAX seconds).
 * 0, or 2 (message printed). */
int client_cli_finish(struct client_cli *cli)
        __attribute__((warn_unused_result));

/* Reads the secret files and opens the client. 0 and *out, or 1 (a file
 * unreadable, out of memory) or 2 (a server URL, token URL or user name
 * client_open refuses), the message printed. */
int client_cli_open(const struct client_cli *cli, struct client **out)
        __attribute__((warn_unused_result));

/* Prints "berth CMD: MESSAGE (berth CMD --help)" and returns 2. */
int client_cli_usage(const struct client_cli *cli, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Prints "berth CMD: MESSAGE" and returns 1. */
int client_cli_fail(const struct client_cli *cli, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* ---- reading and printing the server's reports ---- */

/* The member key of obj when it is an integer >= 0: 0 and *out (out may
 * be NULL), or -1. */
int client_json_count(json_t *obj, const char *key, uint64_t *out);

/* one when n is 1, many otherwise. */
const char *client_plural(uint64_t n, const char *one, const char *many);

/* "512 B", "12.4 MiB": binary units, one decimal from KiB on. */
void client_human_bytes(uint64_t b, char *buf, size_t len);

#endif
