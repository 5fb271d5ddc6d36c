/* The retention policy in force: loaded at start, loaded again on SIGHUP
 * and when its file changes (a ConfigMap update swaps a symlink: stat()
 * follows it and sees another inode). A reload that fails keeps the
 * previous policy and says why in the log. Readers (a collection run, the
 * cleanup query) hold a reference, so a reload never frees a policy in
 * use. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/rc.h"
#include "gc/gc.h"
#include "registry/http.h"

struct policy_ref {
	struct gc_policy *p;
	atomic_int refs;
};

struct policy_holder {
	char *path;
	pthread_mutex_t lock;   /* cur and the file's identity */
	pthread_mutex_t reload; /* one reload at a time */
	struct policy_ref *cur;
	struct stat seen;
	int have_seen;
	atomic_ulong reloads, failures;
};

static void
held_put(struct policy_ref *h)
{
	if (h != NULL && atomic_fetch_sub(&h->refs, 1) == 1) {
		gc_policy_free(h->p);
		free(h);
	}
}

/* Whether two stat() results are the same version of a file: the same
 * inode (a `..data` symlink swap gives another) with the same size and
 * times. The users file, the policy and the TLS pair are polled so. */
int
stat_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Loads the file; on success it becomes the policy in force. */
static int
load(struct policy_holder *ph, char *err, size_t errlen)
{
	struct policy_ref *h, *old;
	struct stat st;
	int have = stat(ph->path, &st) == 0;
	int rc;

	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	atomic_init(&h->refs, 1);
	rc = gc_policy_load(ph->path, &h->p, err, errlen);
	pthread_mutex_lock(&ph->lock);
	/* Seen even when it failed: the same broken file is not read again
	 * every few seconds, only once it changes. */
	ph->have_seen = have;
	if (have)
		ph->seen = st;
	if (rc != RC_OK) {
		pthread_mutex_unlock(&ph->lock);
		free(h);
		return rc;
	}
	old = ph->cur;
	ph->cur = h;
	pthread_mutex_unlock(&ph->lock);
	held_put(old);
	return RC_OK;
}

int
policy_open(const char *path, struct policy_holder **out, char *err,
            size_t errlen)
{
	struct policy_holder *ph = calloc(1, sizeof(*ph));
	int rc;

	if (ph == NULL || (ph->path = strdup(path)) == NULL) {
		free(ph);
		return -ENOMEM;
	}
	pthread_mutex_init(&ph->lock, NULL);
	pthread_mutex_init(&ph->reload, NULL);
	rc = load(ph, err, errlen);
	if (rc != RC_OK) {
		policy_close(ph);
		return rc;
	}
	*out = ph;
	return RC_OK;
}

void
policy_close(struct policy_holder *ph)
{
	if (ph == NULL)
		return;
	held_put(ph->cur);
	pthread_mutex_destroy(&ph->lock);
	pthread_mutex_destroy(&ph->reload);
	free(ph->path);
	free(ph);
}

struct policy_ref *
policy_get(struct policy_holder *ph)
{
	struct policy_ref *h;

	if (ph == NULL)
		return NULL;
	pthread_mutex_lock(&ph->lock);
	h = ph->cur;
	if (h != NULL)
		atomic_fetch_add(&h->refs, 1);
	pthread_mutex_unlock(&ph->lock);
	return h;
}

const struct gc_policy *
policy_of(const struct policy_ref *r)
{
	return r != NULL ? r->p : NULL;
}

void
policy_put(struct policy_ref *r)
{
	held_put(r);
}

int
policy_reload(struct policy_holder *ph, int force)
{
	struct stat st;
	char err[512] = "";
	int changed, rc;

	if (ph == NULL)
		return 0;
	pthread_mutex_lock(&ph->reload);
	pthread_mutex_lock(&ph->lock);
	if (stat(ph->path, &st) != 0)
		changed = ph->have_seen; /* gone: say so once */
	else
		changed = !ph->have_seen || !stat_same_file(&st, &ph->seen);
	pthread_mutex_unlock(&ph->lock);
	if (!changed && !force) {
		pthread_mutex_unlock(&ph->reload);
		return 0;
	}
	rc = load(ph, err, sizeof(err));
	if (rc == RC_OK) {
		struct policy_ref *p = policy_get(ph);
		char rules[32];
		snprintf(rules, sizeof(rules), "%zu",
		         gc_policy_rules(policy_of(p)));
		policy_put(p);
		atomic_fetch_add(&ph->reloads, 1);
		metrics_reload("policy", 1);
		log_msg("info", "policy reloaded", "file", ph->path, "rules",
		        rules, NULL);
	} else {
		atomic_fetch_add(&ph->failures, 1);
		metrics_reload("policy", 0);
		log_msg("error", "policy reload failed, the previous one stays",
		        "file", ph->path, "error", err[0] ? err : rc_str(rc),
		        NULL);
	}
	pthread_mutex_unlock(&ph->reload);
	return rc == RC_OK ? 1 : rc;
}

void
policy_stats(struct policy_holder *ph, unsigned long *reloads,
             unsigned long *failures)
{
	*reloads = ph != NULL ? atomic_load(&ph->reloads) : 0;
	*failures = ph != NULL ? atomic_load(&ph->failures) : 0;
}
