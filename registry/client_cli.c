/* The command line shared by the commands built on the HTTP client
 * (client.h; `berth gc`, `rm`, `ls`): the flags that reach the server,
 * their environment fallbacks and rules, the secret files, the one-line
 * messages and exit statuses; and what those commands need to read and
 * print the server's reports. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/rc.h"
#include "registry/client.h"

/* ---- messages ---- */

static void
cli_vline(const struct client_cli *cli, const char *tail, const char *fmt,
          va_list ap)
{
	fprintf(stderr, "berth %s: ", cli->cmd);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "%s\n", tail);
}

int
client_cli_usage(const struct client_cli *cli, const char *fmt, ...)
{
	char tail[64];
	va_list ap;

	snprintf(tail, sizeof(tail), " (berth %s --help)", cli->cmd);
	va_start(ap, fmt);
	cli_vline(cli, tail, fmt, ap);
	va_end(ap);
	return 2;
}

int
client_cli_fail(const struct client_cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vline(cli, "", fmt, ap);
	va_end(ap);
	return 1;
}

/* ---- flags and environment ---- */

void
client_cli_init(struct client_cli *cli, const char *cmd)
{
	memset(cli, 0, sizeof(*cli));
	cli->cmd = cmd;
}

int
client_cli_option(struct client_cli *cli, int argc, char **argv, int *i)
{
	const struct {
		const char *name;
		const char **val;
	} flags[] = {
	        {"--server", &cli->flag_server},
	        {"--user", &cli->flag_user},
	        {"--password-file", &cli->flag_password_file},
	        {"--token-file", &cli->flag_token_file},
	        {"--token-url", &cli->flag_token_url},
	        {"--ca-file", &cli->flag_ca_file},
	        {"--timeout", &cli->flag_timeout},
	};
	const char *f = argv[*i];

	if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0)
		return -1;
	for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
		if (strcmp(f, flags[k].name) != 0)
			continue;
		if (client_cli_value(cli, argc, argv, i, flags[k].val) != 0)
			return 2;
		return 1;
	}
	return 0;
}

int
client_cli_value(const struct client_cli *cli, int argc, char **argv, int *i,
                 const char **val)
{
	if (*i + 1 >= argc || argv[*i + 1][0] == '\0')
		return client_cli_usage(cli, "%s needs a value", argv[*i]);
	*val = argv[++*i];
	return 0;
}

/* s, or NULL when it is empty. */
static const char *
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

int
client_cli_finish(struct client_cli *cli)
{
	int by_flag_user, by_flag_tok;
	char *end;

	cli->server = cli->flag_server;
	if (cli->server == NULL)
		cli->server = getenv("BERTH_SERVER");
	if (cli->server == NULL || cli->server[0] == '\0')
		return client_cli_usage(
		        cli, "--server URL (or BERTH_SERVER) is needed");
	by_flag_user =
	        cli->flag_user != NULL || cli->flag_password_file != NULL;
	by_flag_tok = cli->flag_token_file != NULL;
	if (by_flag_user && by_flag_tok)
		return client_cli_usage(
		        cli, "--user and --token-file exclude each other");
	cli->user = cli->flag_user;
	cli->password_file = cli->flag_password_file;
	cli->token_file = cli->flag_token_file;
	if (!by_flag_tok) {
		if (cli->user == NULL)
			cli->user = getenv("BERTH_USER");
		if (cli->password_file == NULL)
			cli->password_file = getenv("BERTH_PASSWORD_FILE");
	}
	if (!by_flag_user && cli->token_file == NULL)
		cli->token_file = getenv("BERTH_TOKEN_FILE");
	cli->user = nonempty(cli->user);
	cli->password_file = nonempty(cli->password_file);
	cli->token_file = nonempty(cli->token_file);
	if ((cli->user != NULL || cli->password_file != NULL) &&
	    cli->token_file != NULL)
		return client_cli_usage(cli, "BERTH_USER/BERTH_PASSWORD_FILE "
		                             "and BERTH_TOKEN_FILE exclude "
		                             "each other");
	if (cli->user != NULL && cli->password_file == NULL)
		return client_cli_usage(cli, "--user needs --password-file "
		                             "(or BERTH_PASSWORD_FILE)");
	if (cli->user == NULL && cli->password_file != NULL)
		return client_cli_usage(cli, "--password-file needs --user "
		                             "(or BERTH_USER)");
	cli->token_url = cli->flag_token_url;
	if (cli->token_url == NULL)
		cli->token_url = nonempty(getenv("BERTH_TOKEN_URL"));
	cli->ca_file = cli->flag_ca_file;
	if (cli->ca_file == NULL)
		cli->ca_file = nonempty(getenv("BERTH_CA_FILE"));
	if (cli->ca_file != NULL && access(cli->ca_file, R_OK) != 0)
		return client_cli_usage(cli, "--ca-file %s: %s", cli->ca_file,
		                        strerror(errno));
	cli->timeout_s = CLIENT_TIMEOUT;
	if (cli->flag_timeout != NULL) {
		errno = 0;
		cli->timeout_s = strtol(cli->flag_timeout, &end, 10);
		if (*end != '\0' || errno != 0 || cli->timeout_s < 1 ||
		    cli->timeout_s > CLIENT_TIMEOUT_MAX)
			return client_cli_usage(cli,
			                        "--timeout needs seconds from "
			                        "1 to %d, not '%s'",
			                        CLIENT_TIMEOUT_MAX,
			                        cli->flag_timeout);
	}
	return 0;
}

/* ---- secrets and the client ---- */

/* Reads a secret file whole, without its trailing newline; *out is
 * malloc'ed (the caller wipes and frees it). 0, or 1 (message printed). */
static int
secret_read(const struct client_cli *cli, const char *path, const char *what,
            char **out)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL)
		return client_cli_fail(cli, "cannot read the %s file %s: %s",
		                       what, path, strerror(errno));
	if ((buf = malloc(CLIENT_SECRET_MAX + 1)) == NULL) {
		fclose(f);
		return client_cli_fail(cli, "out of memory");
	}
	n = fread(buf, 1, CLIENT_SECRET_MAX + 1, f);
	if (ferror(f) || n > CLIENT_SECRET_MAX) {
		int e = ferror(f) ? errno : EFBIG;

		fclose(f);
		explicit_bzero(buf, CLIENT_SECRET_MAX + 1);
		free(buf);
		return client_cli_fail(
		        cli, "cannot read the %s file %s: %s", what, path,
		        e == EFBIG ? "larger than 64 KiB" : strerror(e));
	}
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (n == 0 || memchr(buf, '\0', n) != NULL) {
		explicit_bzero(buf, CLIENT_SECRET_MAX + 1);
		free(buf);
		return client_cli_fail(cli,
		                       "the %s file %s is empty or holds a NUL "
		                       "byte",
		                       what, path);
	}
	*out = buf;
	return 0;
}

/* Wipes and frees a buffer of secret_read. NULL is fine. */
static void
secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, CLIENT_SECRET_MAX + 1);
	free(s);
}

int
client_cli_open(const struct client_cli *cli, struct client **out)
{
	struct client_options o = {0};
	char err[512], *password = NULL, *token = NULL;
	int rc;

	if (cli->password_file != NULL &&
	    secret_read(cli, cli->password_file, "password", &password) != 0)
		return 1;
	if (cli->token_file != NULL &&
	    secret_read(cli, cli->token_file, "token", &token) != 0) {
		secret_free(password);
		return 1;
	}
	o.server = cli->server;
	o.user = cli->user;
	o.password = password;
	o.token = token;
	o.token_url = cli->token_url;
	o.ca_file = cli->ca_file;
	o.timeout_s = cli->timeout_s;
	rc = client_open(&o, out, err, sizeof(err));
	secret_free(password);
	secret_free(token);
	if (rc != RC_OK)
		return rc == RC_BAD_REQUEST ? client_cli_usage(cli, "%s", err)
		                            : client_cli_fail(cli, "%s", err);
	return 0;
}

/* ---- reading and printing the server's reports ---- */

int
client_json_count(json_t *obj, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	if (out != NULL)
		*out = (uint64_t)json_integer_value(v);
	return 0;
}

const char *
client_plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

void
client_human_bytes(uint64_t b, char *buf, size_t len)
{
	static const char *const unit[] = {"B",   "KiB", "MiB", "GiB",
	                                   "TiB", "PiB", "EiB"};
	double v = (double)b;
	int i = 0;

	if (b < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", b);
		return;
	}
	while (v >= 1024 && i < 6) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[i]);
}
