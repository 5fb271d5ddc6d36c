/* The data-directory lock as the command line takes it: one berth process
 * per data directory (`berth serve`, `berth check`), with a message naming
 * the holder when another one has it. */
#include <stdio.h>
#include <stdlib.h>

#include "common/rc.h"
#include "registry/server.h"
#include "storage/blob.h"

static int lock_fd = -1;

void
cli_data_unlock(void)
{
	blob_data_unlock(lock_fd);
	lock_fd = -1;
}

int
cli_data_lock(const char *datadir, const char *hint)
{
	static int registered;
	char who[48] = "pid unknown";
	long pid;
	int rc;

	if (lock_fd >= 0)
		return 0;
	rc = blob_data_lock(datadir, &lock_fd);
	if (rc == RC_BUSY) {
		if (blob_data_lock_owner(datadir, &pid) == 0)
			snprintf(who, sizeof(who), "pid %ld", pid);
		fprintf(stderr,
		        "berth: data directory %s is in use by another berth "
		        "process (%s)%s%s\n",
		        datadir, who, hint != NULL ? "; " : "",
		        hint != NULL ? hint : "");
		return 2;
	}
	if (rc != 0) {
		fprintf(stderr, "berth: cannot lock data directory %s: %s\n",
		        datadir, rc_str(rc));
		return 2;
	}
	/* Released after everything else at exit: LMDB is closed by then. */
	if (!registered && atexit(cli_data_unlock) == 0)
		registered = 1;
	return 0;
}
