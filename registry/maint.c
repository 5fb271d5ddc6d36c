/* The maintenance thread: runs collections (asked for by POST
 * /v2/_berth/gc, whose connection is suspended meanwhile so the HTTP
 * worker thread goes on serving its other connections, or every
 * --gc-interval seconds), and writes remembered reads into the index when
 * the table fills up and every minute. One thread: runs never overlap. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common/rc.h"
#include "gc/gc.h"
#include "registry/http.h"

#define FLUSH_EVERY_S 60

struct maint {
	struct gc *gc;
	uint64_t interval;
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct gc_job *head, *tail; /* waiting requests */
	int stop;
};

/* Runs one job and hands the answer back to its (suspended) request. */
static void
job_run(struct maint *mt, struct gc_job *job)
{
	struct gc_report rep;
	int dry = job->dry_run;

	job->rc = gc_run(mt->gc, dry, now_s(), gc_log_item, &dry, &rep);
	if (job->rc == RC_OK) {
		gc_log_summary(&rep, "api");
		job->json = gc_report_json(&rep);
		if (job->json == NULL)
			job->rc = -ENOMEM;
		gc_report_free(&rep);
	} else {
		log_msg("error", "gc run failed", "error", rc_str(job->rc),
		        NULL);
	}
	atomic_store(&job->done, 1);
	/* Last: the request may be freed as soon as it runs again. */
	MHD_resume_connection(job->conn);
}

static void
interval_run(struct maint *mt)
{
	struct gc_report rep;
	int dry = 0, rc;

	rc = gc_run(mt->gc, 0, now_s(), gc_log_item, &dry, &rep);
	if (rc == RC_OK) {
		gc_log_summary(&rep, "interval");
		gc_report_free(&rep);
	} else {
		log_msg("error", "gc run failed", "error", rc_str(rc), NULL);
	}
}

static void *
maint_main(void *arg)
{
	struct maint *mt = arg;
	uint64_t last_flush = now_s(), last_run = now_s();

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
maint_start(struct gc *gc, uint64_t interval, struct maint **out)
{
	struct maint *mt = calloc(1, sizeof(*mt));

	if (mt == NULL)
		return -ENOMEM;
	mt->gc = gc;
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
