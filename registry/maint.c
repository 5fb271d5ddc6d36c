/* The maintenance thread: runs collections (asked for by POST
 * /v2/_berth/gc, whose connection is suspended meanwhile so the HTTP
 * worker thread goes on serving its other connections, or every
 * --gc-interval seconds), and writes remembered reads into the index when
 * the table fills up and every minute. One thread: runs never overlap. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common/rc.h"
#include "gc/gc.h"
#include "storage/meta.h"
#include "registry/http.h"
#include "registry/tls.h"

/* Last-pull times and reads go into the index this often (one write txn
 * when there were any). */
#define FLUSH_EVERY_S 5
/* How often the files that reload (policy, users, TLS pair) are looked
 * at. */
#define CONFIG_POLL_S 1

struct maint {
	struct gc *gc;
	struct meta *meta;
	struct policy_holder *policy;
	struct auth_holder *auth; /* the users file, NULL: no --auth */
	struct tls *tls;          /* the HTTPS pair, NULL: plain HTTP */
	uint64_t interval;
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct gc_job *head, *tail; /* waiting requests */
	int stop;
};

static void
log_expired(const struct gc_expired *e, void *arg)
{
	int dry = arg != NULL && *(const int *)arg;

	log_fields("info", dry ? "tag would expire" : "tag expired",
	           json_pack("{s:s,s:s,s:s,s:s,s:I}", "repository", e->repo,
	                     "tag", e->tag, "digest", e->digest, "reason",
	                     e->reason, "bytes", (json_int_t)e->bytes));
}

static void
log_kept(const struct gc_report *rep)
{
	for (size_t i = 0; i < rep->n_kept; i++) {
		const struct gc_kept *k = &rep->kept[i];
		log_fields("info", "kept by pin",
		           json_pack("{s:s,s:s,s:s,s:s,s:s}", "repository",
		                     k->repo, "tag", k->tag, "digest",
		                     k->digest, "pin", k->pin, "kept_from",
		                     k->reason));
	}
}

/* The pins of this run: sent with it (stored for the next runs unless it
 * is a dry run), or the stored ones. */
static int
run_pins(struct maint *mt, const struct gc_job *job, struct gc_pins **out)
{
	struct meta_list stored = {0};
	char err[512];
	int rc;

	if (job != NULL && job->has_pins) {
		rc = gc_pins_parse(job->pins, job->n_pins, out, err,
		                   sizeof(err));
		if (rc == RC_OK && !job->dry_run &&
		    (rc = meta_pins_put(mt->meta, job->pins, job->n_pins)) !=
		            RC_OK)
			gc_pins_free(*out);
		return rc;
	}
	rc = meta_pins_get(mt->meta, &stored);
	if (rc != RC_OK)
		return rc;
	rc = gc_pins_parse(stored.items, stored.count, out, err, sizeof(err));
	meta_list_free(&stored);
	return rc;
}

/* One run with the policy in force and the pins; trigger names it in the
 * log. */
static int
run(struct maint *mt, const struct gc_job *job, const char *trigger,
    struct gc_report *rep)
{
	struct gc_run_options o = {0};
	struct policy_ref *pol = policy_get(mt->policy);
	struct gc_pins *pins = NULL;
	int dry = job != NULL && job->dry_run;
	int rc = run_pins(mt, job, &pins);

	if (rc == RC_OK) {
		o.dry_run = dry;
		o.policy = policy_of(pol);
		o.pins = pins;
		o.item = gc_log_item;
		o.expired = log_expired;
		o.arg = &dry;
		rc = gc_run_with(mt->gc, &o, now_s(), rep);
	}
	gc_pins_free(pins);
	policy_put(pol);
	if (rc == RC_OK) {
		log_kept(rep);
		gc_log_summary(rep, trigger);
	} else {
		log_msg("error", "gc run failed", "trigger", trigger, "error",
		        rc_str(rc), NULL);
	}
	return rc;
}

/* Runs one job and hands the answer back to its (suspended) request. */
static void
job_run(struct maint *mt, struct gc_job *job)
{
	struct gc_report rep;

	job->rc = run(mt, job, "api", &rep);
	if (job->rc == RC_OK) {
		job->json = gc_report_json(&rep);
		if (job->json == NULL)
			job->rc = -ENOMEM;
		gc_report_free(&rep);
	}
	atomic_store(&job->done, 1);
	/* Last: the request may be freed as soon as it runs again. */
	MHD_resume_connection(job->conn);
}

static void
interval_run(struct maint *mt)
{
	struct gc_report rep;

	if (run(mt, NULL, "interval", &rep) == RC_OK)
		gc_report_free(&rep);
}

static void *
maint_main(void *arg)
{
	struct maint *mt = arg;
	uint64_t last_flush = now_s(), last_run = now_s();
	uint64_t last_poll = now_s();

	pthread_mutex_lock(&mt->lock);
	for (;;) {
		struct gc_job *job = mt->head;
		uint64_t now;

		if (job != NULL) { /* before stopping: nobody waits forever */
			mt->head = job->next;
			if (mt->head == NULL)
				mt->tail = NULL;
			pthread_mutex_unlock(&mt->lock);
			job_run(mt, job);
			last_flush = now_s();
			pthread_mutex_lock(&mt->lock);
			continue;
		}
		if (mt->stop)
			break;
		{
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&mt->wake, &mt->lock, &ts);
		}
		if (mt->head != NULL || mt->stop)
			continue;
		pthread_mutex_unlock(&mt->lock);
		now = now_s();
		if (now >= last_poll + CONFIG_POLL_S) {
			(void)policy_reload(mt->policy, 0); /* NULL: none */
			(void)authhold_reload(mt->auth, 0); /* NULL: none */
			(void)tls_reload(mt->tls, 0);       /* NULL: none */
			last_poll = now;
		}
		if (mt->interval > 0 && now >= last_run + mt->interval) {
			interval_run(mt);
			last_run = last_flush = now_s();
		} else if (gc_access_flush_due(mt->gc) ||
		           now >= last_flush + FLUSH_EVERY_S) {
			int rc = gc_flush(mt->gc);
			if (rc != RC_OK)
				log_msg("warn", "could not record reads",
				        "error", rc_str(rc), NULL);
			last_flush = now;
		}
		pthread_mutex_lock(&mt->lock);
	}
	pthread_mutex_unlock(&mt->lock);
	return NULL;
}

int
maint_start(struct app *app, uint64_t interval, struct maint **out)
{
	struct maint *mt = calloc(1, sizeof(*mt));

	if (mt == NULL)
		return -ENOMEM;
	mt->gc = app->gc;
	mt->meta = app->meta;
	mt->policy = app->policy;
	mt->auth = app->auth_holder;
	mt->tls = app->tls;
	mt->interval = interval;
	pthread_mutex_init(&mt->lock, NULL);
	pthread_cond_init(&mt->wake, NULL);
	if (pthread_create(&mt->th, NULL, maint_main, mt) != 0) {
		pthread_cond_destroy(&mt->wake);
		pthread_mutex_destroy(&mt->lock);
		free(mt);
		return -EAGAIN;
	}
	*out = mt;
	return 0;
}

int
maint_submit(struct maint *mt, struct gc_job *job)
{
	if (mt == NULL)
		return RC_UNSUPPORTED;
	job->next = NULL;
	pthread_mutex_lock(&mt->lock);
	if (mt->tail != NULL)
		mt->tail->next = job;
	else
		mt->head = job;
	mt->tail = job;
	pthread_cond_signal(&mt->wake);
	pthread_mutex_unlock(&mt->lock);
	return 0;
}

void
maint_stop(struct maint *mt)
{
	if (mt == NULL)
		return;
	pthread_mutex_lock(&mt->lock);
	mt->stop = 1;
	pthread_cond_signal(&mt->wake);
	pthread_mutex_unlock(&mt->lock);
	pthread_join(mt->th, NULL);
	pthread_cond_destroy(&mt->wake);
	pthread_mutex_destroy(&mt->lock);
	free(mt);
}
