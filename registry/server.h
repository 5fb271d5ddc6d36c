#ifndef BERTH_REGISTRY_SERVER_H
#define BERTH_REGISTRY_SERVER_H

#include "registry/http.h"

/* Starts the MHD daemon on an already listening socket. NULL on failure. */
struct MHD_Daemon *server_start(struct app *app, int listen_fd,
                                unsigned threads, unsigned conn_limit,
                                unsigned timeout_s);

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.1.0"
#endif

/* Subcommands (cli_<name>.c); each returns the process's exit status. */
int cli_serve(int argc, char **argv);
int cli_auth(int argc, char **argv);

#endif
