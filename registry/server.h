#ifndef BERTH_REGISTRY_SERVER_H
#define BERTH_REGISTRY_SERVER_H

#include "registry/http.h"

struct server_opts {
	unsigned threads;
	unsigned conn_limit;       /* more connections are closed at once */
	unsigned idle_timeout_s;   /* MHD's timeout: no byte either way */
	unsigned header_timeout_s; /* a request head must be complete within
	                              it; 0: no limit */
};

/* Starts the MHD daemon on an already listening socket, and the thread
 * that enforces the header timeout. NULL on failure. */
struct MHD_Daemon *server_start(struct app *app, int listen_fd,
                                const struct server_opts *o);
/* Stops the daemon (NULL is fine) and that thread. */
void server_stop(struct MHD_Daemon *d);
/* Connections closed over the limit / for a late request head so far. */
void server_guard_counts(unsigned long *refused, unsigned long *cut);

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.1.0"
#endif

/* Subcommands (cli_<name>.c); each returns the process's exit status. */
int cli_serve(int argc, char **argv);
int cli_auth(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_gc(int argc, char **argv);
int cli_rm(int argc, char **argv);
int cli_ls(int argc, char **argv);
int cli_backup(int argc, char **argv);
int cli_restore(int argc, char **argv);

/* The data-directory lock (storage's DATA/lock) for a subcommand: taken
 * once, released at exit or by cli_data_unlock. When another berth process
 * holds it, says so on stderr ("…in use by another berth process (pid N)",
 * then "; " and hint when not NULL) and returns 2, the exit status; 0 when
 * taken. */
int cli_data_lock(const char *datadir, const char *hint);
void cli_data_unlock(void);

#endif
