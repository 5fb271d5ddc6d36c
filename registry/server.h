#ifndef BERTH_REGISTRY_SERVER_H
#define BERTH_REGISTRY_SERVER_H

#include "registry/http.h"

/* Starts the MHD daemon on an already listening socket. NULL on failure. */
struct MHD_Daemon *server_start(struct app *app, int listen_fd,
                                unsigned threads, unsigned conn_limit,
                                unsigned timeout_s);

/* `berth auth …` (cli_auth.c); returns the exit status. */
int cli_auth(int argc, char **argv);

#endif
