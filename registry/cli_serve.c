/* `berth serve`: settings (flag > environment > config file > default),
 * the data directory, the HTTP server and the process lifecycle. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "common/rc.h"
#include "gc/gc.h"
#include "registry/http.h"
#include "registry/server.h"
#include "registry/tls.h"
#include "storage/blob.h"
#include "storage/meta.h"
#include "storage/space.h"

/* Every setting of `berth serve`: flag, environment variable, config-file
 * key, default and help. Precedence: flag > environment > file > default. */
enum opt_id {
	O_LISTEN,
	O_DATA,
	O_CONFIG,
	O_THREADS,
	O_MAX_CONN,
	O_ACCESS_LOG,
	O_GC_GRACE,
	O_SHUTDOWN,
	O_IDLE_TIMEOUT,
	O_HEADER_TIMEOUT,
	O_AUTH,
	O_GC_INTERVAL,
	O_UPLOAD_TTL,
	O_POLICY,
	O_PULL_TRACKING,
	O_MIN_FREE,
	O_TLS_CERT,
	O_TLS_KEY,
	O_COUNT
};

static const struct opt {
	const char *flag, *env, *key, *dflt, *help;
} opts[O_COUNT] = {
        [O_LISTEN] = {"--listen", "BERTH_LISTEN", "listen", "127.0.0.1:5000",
                      "address to listen on: HOST:PORT, [IPv6]:PORT or :PORT "
                      "(all interfaces)"},
        [O_DATA] = {"--data", "BERTH_DATA", "data", "./data",
                    "data directory (blobs/, uploads/, meta/); created if "
                    "missing"},
        [O_CONFIG] = {"--config", "BERTH_CONFIG", NULL, NULL,
                      "JSON file with any of the settings below, keyed by the "
                      "name after --"},
        [O_THREADS] = {"--threads", "BERTH_THREADS", "threads", "0",
                       "HTTP worker threads; 0 = 2 per CPU (at least 4)"},
        [O_MAX_CONN] = {"--max-connections", "BERTH_MAX_CONNECTIONS",
                        "max_connections", "4096",
                        "concurrent client connections accepted"},
        [O_ACCESS_LOG] = {"--access-log", "BERTH_ACCESS_LOG", "access_log",
                          "on", "one JSON line per request on stderr: on|off"},
        [O_GC_GRACE] = {"--gc-grace", "BERTH_GC_GRACE", "gc_grace", "3600",
                        "seconds an unreferenced blob or manifest is kept "
                        "before the collector may remove it"},
        [O_SHUTDOWN] = {"--shutdown-timeout", "BERTH_SHUTDOWN_TIMEOUT",
                        "shutdown_timeout", "25",
                        "seconds to let requests in flight finish on "
                        "SIGTERM/SIGINT"},
        [O_IDLE_TIMEOUT] = {"--idle-timeout", "BERTH_IDLE_TIMEOUT",
                            "idle_timeout", "120",
                            "seconds before an idle connection is closed "
                            "(no byte received or sent: also a stalled "
                            "body)"},
        [O_HEADER_TIMEOUT] = {"--header-timeout", "BERTH_HEADER_TIMEOUT",
                              "header_timeout", "30",
                              "seconds a request line and headers may take, "
                              "from the accept or the request's first "
                              "byte; later the connection is closed; 0 = "
                              "no limit"},
        [O_AUTH] = {"--auth", "BERTH_AUTH", "auth", NULL,
                    "users file (JSON): token auth with users, robots and "
                    "per-repository rules; reloaded with its keys on "
                    "SIGHUP and when they change; without it the "
                    "registry is open"},
        [O_GC_INTERVAL] = {"--gc-interval", "BERTH_GC_INTERVAL", "gc_interval",
                           "0",
                           "seconds between collection runs inside the "
                           "server; 0 = only on POST /v2/_berth/gc (berth "
                           "gc)"},
        [O_UPLOAD_TTL] = {"--upload-ttl", "BERTH_UPLOAD_TTL", "upload_ttl",
                          "86400",
                          "seconds without a byte received after which the "
                          "collector removes an upload session"},
        [O_POLICY] = {"--policy", "BERTH_POLICY", "policy", NULL,
                      "retention policy file (JSON): which tags expire; "
                      "reloaded on SIGHUP and when the file changes"},
        [O_PULL_TRACKING] = {"--pull-tracking", "BERTH_PULL_TRACKING",
                             "pull_tracking", "on",
                             "on|off: remember each read (last-pull times "
                             "for idle_after and the query); off only for "
                             "comparisons: the collector then waits until "
                             "no read happened for the grace"},
        [O_MIN_FREE] = {"--min-free", "BERTH_MIN_FREE", "min_free",
                        SPACE_MIN_DEFAULT,
                        "free space pushes must leave on the data volume: "
                        "a size (500M, 2G: powers of 1024), a share of "
                        "the volume (5%), or both (the larger counts); "
                        "below it pushes get 507; 0 = no guard"},
        [O_TLS_CERT] = {"--tls-cert", "BERTH_TLS_CERT", "tls_cert", NULL,
                        "certificate chain (PEM, leaf first): serve HTTPS "
                        "(TLS 1.2/1.3) instead of HTTP; with --tls-key; "
                        "reloaded on SIGHUP and when either file "
                        "changes"},
        [O_TLS_KEY] = {"--tls-key", "BERTH_TLS_KEY", "tls_key", NULL,
                       "private key (PEM) of --tls-cert"},
};

static void
serve_usage(FILE *f)
{
	fprintf(f, "usage: berth serve [options]\n\noptions:\n");
	for (int i = 0; i < O_COUNT; i++)
		fprintf(f, "  %-20s %s\n  %-20s env %s%s%s\n", opts[i].flag,
		        opts[i].help, "", opts[i].env,
		        opts[i].dflt ? ", default " : "",
		        opts[i].dflt ? opts[i].dflt : "");
	fprintf(f, "  %-20s this text\n", "--help");
}

static int
fail_msg(const char *what, const char *detail)
{
	fprintf(stderr, "berth: %s%s%s\n", what, detail ? ": " : "",
	        detail ? detail : "");
	return 2;
}

/* Reads the config file into vals[] for settings not already set. */
static int
load_config(const char *path, char **vals)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr);
	const char *key;
	json_t *v;

	if (root == NULL) {
		fprintf(stderr, "berth: config %s:%d: %s\n", path, jerr.line,
		        jerr.text);
		return -1;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return fail_msg("config must be a JSON object", path), -1;
	}
	json_object_foreach(root, key, v)
	{
		int i, found = 0;
		char num[32];
		for (i = 0; i < O_COUNT; i++) {
			if (opts[i].key == NULL ||
			    strcmp(opts[i].key, key) != 0)
				continue;
			found = 1;
			if (vals[i] != NULL)
				break; /* flag or env wins */
			if (json_is_string(v)) {
				vals[i] = strdup(json_string_value(v));
			} else if (json_is_integer(v)) {
				snprintf(num, sizeof(num), "%lld",
				         (long long)json_integer_value(v));
				vals[i] = strdup(num);
			} else if (json_is_boolean(v)) {
				vals[i] =
				        strdup(json_is_true(v) ? "on" : "off");
			} else {
				fprintf(stderr,
				        "berth: config %s: %s has the wrong "
				        "type\n",
				        path, key);
				json_decref(root);
				return -1;
			}
			break;
		}
		if (!found) {
			fprintf(stderr,
			        "berth: config %s: unknown setting %s\n", path,
			        key);
			json_decref(root);
			return -1;
		}
	}
	json_decref(root);
	return 0;
}

static int
parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Creates, binds and listens on addr ("host:port", "[v6]:port", ":port"). */
static int
listen_on(const char *addr, int *out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[128];
	const char *colon = strrchr(addr, ':');
	unsigned long long port;
	int fd, one = 1;
	size_t hl;

	memset(&ss, 0, sizeof(ss));
	if (colon == NULL || parse_uint(colon + 1, 65535, &port) != 0)
		return fail_msg("bad listen address (want HOST:PORT)", addr);
	hl = (size_t)(colon - addr);
	if (hl >= sizeof(host))
		return fail_msg("bad listen address", addr);
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return fail_msg("bad IPv6 listen address", addr);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (hl == 0 || strcmp(host, "0.0.0.0") == 0)
			s4->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (strcmp(host, "localhost") == 0)
			s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return fail_msg("bad IPv4 listen address", addr);
		sl = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail_msg("socket", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
	    listen(fd, 1024) != 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "cannot listen on %s: %s", addr,
		         strerror(errno));
		close(fd);
		return fail_msg(msg, NULL);
	}
	*out = fd;
	return 0;
}

/* Each connection, blob being served and upload in progress holds a file
 * descriptor: raise the soft limit towards what max_connections needs. */
static void
raise_fd_limit(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want
	                      ? want
	                      : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_msg("warn", "could not raise the open file limit", NULL);
}

/* Whether requests other than the one that may have started a collection
 * are being served: the collector then paces itself. */
static int
serving_requests(void *arg)
{
	struct app *app = arg;

	return atomic_load(&app->inflight) > 1;
}

int
cli_serve(int argc, char **argv)
{
	char *vals[O_COUNT] = {0};
	unsigned long long threads, max_conn, grace, shutdown_s, idle;
	unsigned long long gc_interval, upload_ttl, header_to;
	struct server_opts so = {0};
	struct gc_options go = {0};
	struct app app = {0};
	struct meta_options mo = {0};
	struct space_min min_free;
	struct MHD_Daemon *d = NULL;
	char metadir[4096];
	sigset_t sigs, oldsigs;
	int rc, sig, fd = -1, status = 2;

	for (int i = 0; i < argc; i++) {
		int j, matched = 0;
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			serve_usage(stdout);
			return 0;
		}
		for (j = 0; j < O_COUNT; j++) {
			size_t fl = strlen(opts[j].flag);
			if (strncmp(argv[i], opts[j].flag, fl) != 0)
				continue;
			if (argv[i][fl] == '=') {
				free(vals[j]);
				vals[j] = strdup(argv[i] + fl + 1);
			} else if (argv[i][fl] == '\0' && i + 1 < argc) {
				free(vals[j]);
				vals[j] = strdup(argv[++i]);
			} else if (argv[i][fl] == '\0') {
				fprintf(stderr, "berth: %s needs a value\n",
				        opts[j].flag);
				goto out;
			} else {
				continue;
			}
			matched = 1;
			break;
		}
		if (!matched) {
			fprintf(stderr,
			        "berth: unknown option '%s' (berth serve "
			        "--help)\n",
			        argv[i]);
			goto out;
		}
	}
	for (int j = 0; j < O_COUNT; j++)
		if (vals[j] == NULL && getenv(opts[j].env) != NULL)
			vals[j] = strdup(getenv(opts[j].env));
	if (vals[O_CONFIG] && load_config(vals[O_CONFIG], vals) != 0)
		goto out;
	for (int j = 0; j < O_COUNT; j++)
		if (vals[j] == NULL && opts[j].dflt != NULL)
			vals[j] = strdup(opts[j].dflt);

	if (parse_uint(vals[O_THREADS], 1024, &threads) != 0) {
		fail_msg("--threads must be a number from 0 to 1024",
		         vals[O_THREADS]);
		goto out;
	}
	if (parse_uint(vals[O_MAX_CONN], 1000000, &max_conn) != 0 ||
	    max_conn == 0) {
		fail_msg("--max-connections must be a positive number",
		         vals[O_MAX_CONN]);
		goto out;
	}
	if (parse_uint(vals[O_GC_GRACE], 365ull * 86400, &grace) != 0) {
		fail_msg("--gc-grace must be seconds", vals[O_GC_GRACE]);
		goto out;
	}
	if (parse_uint(vals[O_SHUTDOWN], 3600, &shutdown_s) != 0) {
		fail_msg("--shutdown-timeout must be seconds",
		         vals[O_SHUTDOWN]);
		goto out;
	}
	if (parse_uint(vals[O_IDLE_TIMEOUT], 86400, &idle) != 0) {
		fail_msg("--idle-timeout must be seconds",
		         vals[O_IDLE_TIMEOUT]);
		goto out;
	}
	if (parse_uint(vals[O_HEADER_TIMEOUT], 86400, &header_to) != 0) {
		fail_msg("--header-timeout must be seconds",
		         vals[O_HEADER_TIMEOUT]);
		goto out;
	}
	if (parse_uint(vals[O_GC_INTERVAL], 365ull * 86400, &gc_interval) !=
	    0) {
		fail_msg("--gc-interval must be seconds", vals[O_GC_INTERVAL]);
		goto out;
	}
	if (parse_uint(vals[O_UPLOAD_TTL], 365ull * 86400, &upload_ttl) != 0 ||
	    upload_ttl == 0) {
		fail_msg("--upload-ttl must be a positive number of seconds",
		         vals[O_UPLOAD_TTL]);
		goto out;
	}
	if (strcmp(vals[O_ACCESS_LOG], "on") == 0) {
		app.access_log = 1;
	} else if (strcmp(vals[O_ACCESS_LOG], "off") != 0) {
		fail_msg("--access-log must be on or off", vals[O_ACCESS_LOG]);
		goto out;
	}
	if (strcmp(vals[O_PULL_TRACKING], "on") != 0 &&
	    strcmp(vals[O_PULL_TRACKING], "off") != 0) {
		fail_msg("--pull-tracking must be on or off",
		         vals[O_PULL_TRACKING]);
		goto out;
	}
	if (space_min_parse(vals[O_MIN_FREE], &min_free) != RC_OK) {
		fail_msg("--min-free must be a size (500M, 2G), a percentage "
		         "(5%), both (1G,2%) or 0",
		         vals[O_MIN_FREE]);
		goto out;
	}
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 2 ? (unsigned long long)n * 2 : 4;
	}

	if (vals[O_AUTH] != NULL && vals[O_AUTH][0] != '\0') {
		char err[512];
		rc = authhold_open(vals[O_AUTH], &app.auth_holder, err,
		                   sizeof(err));
		if (rc != RC_OK) {
			fprintf(stderr, "berth: auth: %s\n", err);
			goto out;
		}
	}

	if (vals[O_POLICY] != NULL && vals[O_POLICY][0] != '\0') {
		char err[512];
		rc = policy_open(vals[O_POLICY], &app.policy, err, sizeof(err));
		if (rc != RC_OK) {
			fprintf(stderr, "berth: policy: %s\n",
			        err[0] ? err : rc_str(rc));
			goto out;
		}
	}

	{
		const char *c = vals[O_TLS_CERT], *k = vals[O_TLS_KEY];
		int hc = c != NULL && c[0] != '\0';
		int hk = k != NULL && k[0] != '\0';
		char err[768];

		if (hc != hk) {
			fail_msg(hc ? "--tls-cert needs --tls-key"
			            : "--tls-key needs --tls-cert",
			         NULL);
			goto out;
		}
		if (hc && tls_open(c, k, &app.tls, err, sizeof(err)) != RC_OK) {
			fprintf(stderr, "berth: tls: %s\n", err);
			goto out;
		}
	}

	raise_fd_limit((rlim_t)max_conn * 2 + 512);
	if (listen_on(vals[O_LISTEN], &fd) != 0)
		goto out;
	/* The blob store starts its writer threads: they must never take
	 * SIGTERM, SIGINT or SIGHUP (the default action would end the
	 * process when one arrives while the main thread is not in sigwait,
	 * e.g. during a reload), so they start with them blocked; the main
	 * thread keeps the default actions until the server runs. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, &oldsigs);
	rc = blob_store_open(vals[O_DATA], &app.blobs);
	pthread_sigmask(SIG_SETMASK, &oldsigs, NULL);
	if (rc != RC_OK) {
		char msg[256];
		snprintf(msg, sizeof(msg), "data directory %s is not usable",
		         vals[O_DATA]);
		fail_msg(msg, rc_str(rc));
		goto out;
	}
	/* One berth process per data directory; released at exit. */
	if (cli_data_lock(vals[O_DATA], NULL) != 0)
		goto out;
	snprintf(metadir, sizeof(metadir), "%s/meta", vals[O_DATA]);
	mo.gc_grace = grace ? grace : 1;
	/* Reads before this start are not remembered: the collector treats
	 * every item as read now. */
	mo.access_floor = now_s();
	mo.no_read_tracking = strcmp(vals[O_PULL_TRACKING], "off") == 0;
	rc = meta_open(metadir, &mo, &app.meta);
	if (rc != RC_OK) {
		fail_msg("cannot open the metadata index", rc_str(rc));
		goto out;
	}
	/* What /readyz compares with, and the --min-free guard. */
	rc = space_open(vals[O_DATA], &min_free, &app.space);
	if (rc != RC_OK) {
		fail_msg("cannot watch the data directory", rc_str(rc));
		goto out;
	}
	{
		uint64_t avail, need;
		char a[24], n[24];

		if (space_check(app.space, &avail, &need) == RC_SPACE_LOW) {
			snprintf(a, sizeof(a), "%" PRIu64, avail);
			snprintf(n, sizeof(n), "%" PRIu64, need);
			log_msg("warn",
			        "free space on the data volume is below "
			        "--min-free: pushes are refused until space "
			        "comes back",
			        "bytes_free", a, "bytes_required", n, NULL);
		}
	}
	go.upload_ttl = upload_ttl;
	go.busy = serving_requests;
	go.busy_arg = &app;
	if (gc_open(app.meta, app.blobs, &go, &app.gc) != RC_OK) {
		fail_msg("cannot start the collector", NULL);
		goto out;
	}
	{
		uint64_t n = 0;
		rc = gc_finish_intents(app.gc, &n);
		if (rc != RC_OK)
			log_msg("warn",
			        "unfinished blob unlinks left for later",
			        "error", rc_str(rc), NULL);
		else if (n > 0)
			log_msg("info",
			        "finished blob unlinks of an interrupted "
			        "collection",
			        NULL);
	}

	/* Signals go to the main thread only: block them before MHD starts
	 * its threads, then wait for them here. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	so.threads = (unsigned)threads;
	so.conn_limit = (unsigned)max_conn;
	so.idle_timeout_s = (unsigned)idle;
	so.header_timeout_s = (unsigned)header_to;
	d = server_start(&app, fd, &so);
	if (d != NULL && maint_start(&app, gc_interval, &app.maint) != 0) {
		fail_msg("cannot start the maintenance thread", NULL);
		goto out;
	}
	if (d == NULL) {
		fail_msg("cannot start the HTTP server", NULL);
		goto out;
	}
	log_msg("info", "listening", "address", vals[O_LISTEN], "scheme",
	        app.tls != NULL ? "https" : "http", "data", vals[O_DATA],
	        "min_free", vals[O_MIN_FREE], "version", BERTH_VERSION, NULL);
	if (app.auth_holder == NULL) {
		log_msg("warn",
		        "authentication is off: anyone who can reach this "
		        "address can push, pull and delete (berth serve "
		        "--auth)",
		        NULL);
	} else {
		struct auth_ref *ar = authhold_get(app.auth_holder);
		log_msg("info", "token auth on", "realm",
		        auth_realm(authhold_of(ar)), "service",
		        auth_service(authhold_of(ar)), NULL);
		authhold_put(ar);
	}

	/* SIGHUP: the files that reload (policy, users, TLS pair) are read
	 * again; the others stop. */
	while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
		if (app.policy != NULL)
			(void)policy_reload(app.policy, 1);
		else
			log_msg("info", "SIGHUP: no policy file to reload",
			        NULL);
		(void)authhold_reload(app.auth_holder, 1); /* NULL: no --auth */
		(void)tls_reload(app.tls, 1); /* NULL: plain HTTP */
	}
	log_msg("info", "shutting down", "signal",
	        sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
	{
		int lfd = MHD_quiesce_daemon(d);
		struct timespec ts = {0, 50 * 1000 * 1000};
		uint64_t deadline = now_ns() + shutdown_s * 1000000000ull;
		if (lfd >= 0) {
			close(lfd);
			fd = -1;
		}
		while (atomic_load(&app.inflight) > 0 && now_ns() < deadline)
			nanosleep(&ts, NULL);
		if (atomic_load(&app.inflight) > 0)
			log_msg("warn", "requests still in flight at shutdown",
			        NULL);
	}
	status = 0;
out:
	/* After the drain: a collection a request is waiting for finishes
	 * and answers first. */
	maint_stop(app.maint);
	app.maint = NULL;
	server_stop(d);
	if (fd >= 0 && d == NULL)
		close(fd);
	if (app.gc != NULL) {
		/* Flush what was read so the rows carry it over a restart. */
		if (gc_flush(app.gc) != RC_OK)
			log_msg("warn", "could not record reads at exit", NULL);
	}
	gc_close(app.gc);
	meta_close(app.meta);
	space_close(app.space);
	blob_store_close(app.blobs);
	authhold_close(app.auth_holder);
	policy_close(app.policy);
	tls_close(app.tls); /* after server_stop: no handshake left */
	if (status == 0)
		log_msg("info", "stopped", NULL);
	for (int j = 0; j < O_COUNT; j++)
		free(vals[j]);
	return status;
}
