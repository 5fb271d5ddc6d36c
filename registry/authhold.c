/* The users file in force (--auth) and the key files it names: loaded at
 * start, loaded again on SIGHUP and when any of those files changes. A
 * Kubernetes Secret update swaps the `..data` symlink: stat() follows the
 * path and sees another inode, where an inotify watch on the file would
 * stay on the old one. A reload that fails keeps the previous generation
 * and says why in the log.
 *
 * Every request holds a reference to the generation it began with
 * (server.c), so a reload never frees a configuration in use, and the
 * caches of verified passwords and tokens, which belong to a generation,
 * go with it. Taking a reference takes no lock: a reader announces itself
 * in `pinning` while it loads the pointer and counts its reference; the
 * reloader swaps the pointer, then waits until no reader is between those
 * two steps before it drops the old generation's own reference (a second
 * at most: past that the old generation is left allocated). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/auth.h"
#include "common/rc.h"
#include "registry/http.h"

#define WATCH_MAX   256 /* files remembered per load (auth allows 64 keys) */
#define PIN_WAIT_NS 1000000000ull /* longest wait for readers to pass */

struct auth_ref {
	struct auth *a;
	atomic_long refs;
};

/* A file a load read, as stat() saw it just before. */
struct watched {
	char *path;
	struct stat st;
	int have; /* stat() succeeded */
};

struct watch {
	struct watched *f;
	size_t n, cap;
};

struct auth_holder {
	char *path;
	pthread_mutex_t reload; /* one load at a time; guards files */
	_Atomic(struct auth_ref *) cur;
	atomic_long pinning; /* readers between loading cur and counting */
	struct watch files;  /* what the last load read (failed or not) */
};

static void
ref_put(struct auth_ref *r)
{
	if (r != NULL && atomic_fetch_sub(&r->refs, 1) == 1) {
		auth_free(r->a);
		free(r);
	}
}

static void
watch_clear(struct watch *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->f[i].path);
	free(w->f);
	memset(w, 0, sizeof(*w));
}

/* auth_load_watched's callback: remembers file as it is now. A file
 * that cannot be remembered (no memory) is simply not watched; SIGHUP
 * still reloads. */
static void
watch_add(const char *file, void *arg)
{
	struct watch *w = arg;
	struct watched *f;

	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		if (cap > WATCH_MAX ||
		    (f = realloc(w->f, cap * sizeof(*f))) == NULL)
			return;
		w->f = f;
		w->cap = cap;
	}
	f = &w->f[w->n];
	if ((f->path = strdup(file)) == NULL)
		return;
	f->have = stat(file, &f->st) == 0;
	w->n++;
}

/* Whether a file the last load read is not what it was (changed, gone,
 * or there now). */
static int
watch_changed(const struct watch *w)
{
	struct stat st;

	for (size_t i = 0; i < w->n; i++) {
		int have = stat(w->f[i].path, &st) == 0;
		if (have != w->f[i].have ||
		    (have && !stat_same_file(&st, &w->f[i].st)))
			return 1;
	}
	return w->n == 0;
}

/* Loads the users file (under the reload lock); on success the result is
 * the generation in force. What it read is watched from now on, even
 * when it failed: the same broken files are not read again every few
 * seconds, only once one of them changes. */
static int
load(struct auth_holder *h, char *err, size_t errlen)
{
	struct watch seen = {0};
	struct auth_ref *r, *old;
	int rc;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	atomic_init(&r->refs, 1);
	rc = auth_load_watched(h->path, watch_add, &seen, &r->a, err, errlen);
	watch_clear(&h->files);
	h->files = seen;
	if (rc != RC_OK) {
		free(r);
		return rc;
	}
	old = atomic_exchange(&h->cur, r);
	/* A reader that loaded old before the swap counts its reference
	 * before it leaves `pinning`: once that is 0, old's own reference
	 * may go. The window is a few instructions long; should readers
	 * keep it occupied for a whole second (never seen), old is left
	 * allocated rather than freed under one of them. */
	for (uint64_t end = now_ns() + PIN_WAIT_NS;
	     atomic_load(&h->pinning) != 0;) {
		if (now_ns() > end) {
			log_msg("warn",
			        "previous users file left in memory: requests "
			        "kept taking it",
			        NULL);
			return RC_OK;
		}
		sched_yield();
	}
	ref_put(old);
	return RC_OK;
}

int
authhold_open(const char *path, struct auth_holder **out, char *err,
              size_t errlen)
{
	struct auth_holder *h = calloc(1, sizeof(*h));
	int rc;

	if (h == NULL || (h->path = strdup(path)) == NULL) {
		free(h);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	pthread_mutex_init(&h->reload, NULL);
	atomic_init(&h->cur, NULL);
	atomic_init(&h->pinning, 0);
	pthread_mutex_lock(&h->reload);
	rc = load(h, err, errlen);
	pthread_mutex_unlock(&h->reload);
	if (rc != RC_OK) {
		authhold_close(h);
		return rc;
	}
	*out = h;
	return RC_OK;
}

void
authhold_close(struct auth_holder *h)
{
	if (h == NULL)
		return;
	ref_put(atomic_load(&h->cur));
	watch_clear(&h->files);
	pthread_mutex_destroy(&h->reload);
	free(h->path);
	free(h);
}

struct auth_ref *
authhold_get(struct auth_holder *h)
{
	struct auth_ref *r;

	if (h == NULL)
		return NULL;
	atomic_fetch_add(&h->pinning, 1);
	r = atomic_load(&h->cur);
	atomic_fetch_add(&r->refs, 1);
	atomic_fetch_sub(&h->pinning, 1);
	return r;
}

struct auth *
authhold_of(const struct auth_ref *r)
{
	return r != NULL ? r->a : NULL;
}

void
authhold_put(struct auth_ref *r)
{
	ref_put(r);
}

int
authhold_reload(struct auth_holder *h, int force)
{
	char err[512] = "";
	int rc;

	if (h == NULL)
		return 0;
	pthread_mutex_lock(&h->reload);
	if (!force && !watch_changed(&h->files)) {
		pthread_mutex_unlock(&h->reload);
		return 0;
	}
	rc = load(h, err, sizeof(err));
	if (rc == RC_OK) {
		char files[16];
		snprintf(files, sizeof(files), "%zu", h->files.n);
		metrics_reload("users", 1);
		log_msg("info", "users file reloaded", "file", h->path,
		        "files_read", files, NULL);
	} else {
		metrics_reload("users", 0);
		log_msg("error",
		        "users file reload failed, the previous one stays",
		        "file", h->path, "error", err[0] ? err : rc_str(rc),
		        NULL);
	}
	pthread_mutex_unlock(&h->reload);
	return rc == RC_OK ? 1 : rc;
}
