/* `berth auth …`: keys, password hashes, tokens for scripts, and a check
 * of a users file, for operators setting up token auth. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "common/rc.h"
#include "registry/server.h"

#define CLI_SCOPES_MAX 16

static void
auth_usage(FILE *f)
{
	fprintf(f,
	        "usage: berth auth <command>\n\n"
	        "commands:\n"
	        "  keygen --out FILE     write a new ES256 (P-256) signing key "
	        "(PEM, mode 0600)\n"
	        "  hash                  read a password on stdin, print its "
	        "hash for the users file\n"
	        "  token --auth FILE --user NAME --scope SCOPE... [--at TIME]\n"
	        "                        print a token for NAME holding what "
	        "the rules allow\n"
	        "                        of the scopes (e.g. "
	        "repository:apps/web:pull); the\n"
	        "                        users file may also come from "
	        "BERTH_AUTH; --at signs\n"
	        "                        as of a UNIX time (clock-skew "
	        "checks, tests)\n"
	        "  check FILE            validate a users file and the keys it "
	        "names\n");
}

static int
cmd_keygen(int argc, char **argv)
{
	const char *out = NULL;
	int rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else
			return auth_usage(stderr), 2;
	}
	if (out == NULL) {
		fprintf(stderr, "berth: auth keygen needs --out FILE\n");
		return 2;
	}
	rc = auth_keygen(out);
	if (rc != RC_OK) {
		fprintf(stderr, "berth: cannot write a key to %s: %s\n", out,
		        rc_str(rc));
		return 1;
	}
	return 0;
}

/* Reads one line from stdin without echo when it is a terminal. */
static int
read_password(char *buf, size_t len)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	size_t n;

	if (tty) {
		fprintf(stderr, "password: ");
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	if (fgets(buf, (int)len, stdin) == NULL)
		buf[0] = '\0';
	if (tty) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	n = strlen(buf);
	if (n + 1 == len && buf[n - 1] != '\n')
		return -1; /* longer than the buffer */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return n > 0 ? 0 : -1;
}

static int
cmd_hash(void)
{
	char pass[512], out[AUTH_HASH_BUF];
	int rc;

	if (read_password(pass, sizeof(pass)) != 0) {
		explicit_bzero(pass, sizeof(pass));
		fprintf(stderr, "berth: no password on stdin (one line, at "
		                "most 510 bytes)\n");
		return 2;
	}
	rc = auth_password_hash(pass, out, sizeof(out));
	explicit_bzero(pass, sizeof(pass));
	if (rc != RC_OK) {
		fprintf(stderr, "berth: cannot hash: %s\n", rc_str(rc));
		return 1;
	}
	printf("%s\n", out);
	return 0;
}

static int
load(const char *path, struct auth **a)
{
	char err[512];

	if (auth_load(path, a, err, sizeof(err)) != RC_OK) {
		fprintf(stderr, "berth: auth: %s\n", err);
		return -1;
	}
	return 0;
}

static int
cmd_token(int argc, char **argv)
{
	struct auth_scope asked[CLI_SCOPES_MAX], granted[CLI_SCOPES_MAX];
	const char *file = getenv("BERTH_AUTH"), *user = NULL;
	struct auth *a = NULL;
	char *token = NULL, *end;
	time_t at = time(NULL);
	size_t n = 0, ng;
	int rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--auth") == 0 && i + 1 < argc) {
			file = argv[++i];
		} else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
			user = argv[++i];
		} else if (strcmp(argv[i], "--at") == 0 && i + 1 < argc) {
			long long v = strtoll(argv[++i], &end, 10);
			if (*argv[i] == '\0' || *end != '\0' || v <= 0) {
				fprintf(stderr,
				        "berth: --at needs a UNIX time\n");
				return 2;
			}
			at = (time_t)v;
		} else if (strcmp(argv[i], "--scope") == 0 && i + 1 < argc) {
			if (n == CLI_SCOPES_MAX ||
			    auth_scope_parse(argv[++i], &asked[n]) != RC_OK) {
				fprintf(stderr,
				        "berth: bad or too many scopes: "
				        "%s\n",
				        argv[i]);
				return 2;
			}
			n++;
		} else {
			return auth_usage(stderr), 2;
		}
	}
	if (file == NULL || user == NULL) {
		fprintf(stderr, "berth: auth token needs --auth FILE (or "
		                "BERTH_AUTH) and --user NAME\n");
		return 2;
	}
	if (load(file, &a) != 0)
		return 1;
	if (!auth_user_active(a, user, at)) {
		fprintf(stderr, "berth: no user %s in %s (or expired)\n", user,
		        file);
		auth_free(a);
		return 1;
	}
	ng = auth_grant(a, user, asked, n, granted);
	rc = auth_token_sign(a, user, granted, ng, at, &token);
	auth_free(a);
	if (rc != RC_OK) {
		fprintf(stderr, "berth: cannot sign: %s\n", rc_str(rc));
		return 1;
	}
	if (ng < n)
		fprintf(stderr,
		        "berth: %zu of %zu scopes granted (the rules "
		        "allow no more)\n",
		        ng, n);
	printf("%s\n", token);
	free(token);
	return 0;
}

static int
cmd_check(int argc, char **argv)
{
	struct auth *a = NULL;

	if (argc != 1)
		return auth_usage(stderr), 2;
	if (load(argv[0], &a) != 0)
		return 1;
	printf("%s: ok (realm %s, service %s)\n", argv[0], auth_realm(a),
	       auth_service(a));
	auth_free(a);
	return 0;
}

int
cli_auth(int argc, char **argv)
{
	if (argc < 1) {
		auth_usage(stderr);
		return 2;
	}
	if (strcmp(argv[0], "keygen") == 0)
		return cmd_keygen(argc - 1, argv + 1);
	if (strcmp(argv[0], "hash") == 0 && argc == 1)
		return cmd_hash();
	if (strcmp(argv[0], "token") == 0)
		return cmd_token(argc - 1, argv + 1);
	if (strcmp(argv[0], "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0) {
		auth_usage(stdout);
		return 0;
	}
	auth_usage(stderr);
	return 2;
}
