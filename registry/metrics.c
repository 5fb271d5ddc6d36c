/* Prometheus text for /metrics.
 *
 * Per-request figures are counted without a lock or a shared cache line:
 * each HTTP worker thread owns a shard (allocated on its first request,
 * never freed) where it alone writes, with relaxed atomic loads and
 * stores, so the counting costs a few plain adds. A scrape sums the
 * shards; each cell only grows, so every sum only grows. A thread that
 * could not get a shard of its own counts in the shared shard, with
 * atomic adds. Histogram buckets are kept per bucket and made cumulative
 * by the scrape, whose +Inf bucket is the sum of the same cells as its
 * _count: the two always agree. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gc/gc.h"
#include "registry/http.h"
#include "registry/server.h"
#include "storage/meta.h"

static const char *const kind_names[R_KIND_COUNT] = {
        "none",      "base",    "catalog",    "tags",
        "manifest",  "blob",    "uploads",    "upload",
        "referrers", "healthz", "readyz",     "metrics",
        "token",     "gc",      "admin_tags", "admin_repository",
        "backup",
};
const char *
route_kind_name(enum route_kind kind)
{
	return (unsigned)kind < R_KIND_COUNT ? kind_names[kind] : "none";
}

static const char *const methods[] = {"GET",   "HEAD",   "PUT",  "POST",
                                      "PATCH", "DELETE", "OTHER"};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))
#define N_CLASSES 6 /* 1xx..5xx, and 0 for dropped */

/* Upper bounds of the latency buckets: a manifest or HEAD answered from
 * the index takes well under a millisecond, a layer pull or push seconds
 * to a minute. */
#define N_BUCKETS 12
static const uint64_t bucket_ns[N_BUCKETS] = {
        500000ull,     1000000ull,    2500000ull,     5000000ull,
        10000000ull,   25000000ull,   100000000ull,   250000000ull,
        1000000000ull, 5000000000ull, 15000000000ull, 60000000000ull,
};
static const char *const bucket_le[N_BUCKETS] = {
        "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
        "0.1",    "0.25",  "1",      "5",     "15",   "60",
};

typedef _Atomic uint64_t cell_t;

/* What one route and method counted: the cells a request touches are
 * side by side. */
struct route_cells {
	cell_t requests[N_CLASSES];
	cell_t bucket[N_BUCKETS + 1]; /* last: over the last bound */
	cell_t ns;
};

struct shard {
	struct shard *next; /* set before the shard is published */
	int shared;         /* written by several threads: atomic adds */
	struct route_cells cells[R_KIND_COUNT][N_METHODS];
	cell_t bytes_in[R_KIND_COUNT];
	cell_t bytes_out[R_KIND_COUNT];
	cell_t aborted[R_KIND_COUNT];
};

static struct shard shared_shard = {.shared = 1};
static _Atomic(struct shard *) shards = &shared_shard;
static _Thread_local struct shard *my_shard;

/* The calling thread's shard: allocated once per thread. */
static struct shard *
shard_mine(void)
{
	struct shard *s = my_shard;

	if (s != NULL)
		return s;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		my_shard = &shared_shard;
		return my_shard;
	}
	s->next = atomic_load(&shards);
	while (!atomic_compare_exchange_weak(&shards, &s->next, s))
		;
	my_shard = s;
	return s;
}

static inline void
cell_add(cell_t *c, uint64_t v, int shared)
{
	if (shared)
		atomic_fetch_add_explicit(c, v, memory_order_relaxed);
	else /* this thread is the only writer */
		atomic_store_explicit(
		        c, atomic_load_explicit(c, memory_order_relaxed) + v,
		        memory_order_relaxed);
}

static size_t
method_index(const char *m)
{
	for (size_t i = 0; i + 1 < N_METHODS; i++)
		if (strcmp(methods[i], m) == 0)
			return i;
	return N_METHODS - 1;
}

void
metrics_count(enum route_kind kind, const char *method, unsigned status,
              uint64_t bytes_in, uint64_t bytes_out, uint64_t ns, int aborted)
{
	struct shard *s = shard_mine();
	struct route_cells *rc;
	size_t cls = status / 100, b = 0;

	if ((unsigned)kind >= R_KIND_COUNT)
		kind = R_NONE;
	if (cls >= N_CLASSES)
		cls = 0;
	while (b < N_BUCKETS && ns > bucket_ns[b])
		b++;
	rc = &s->cells[kind][method_index(method)];
	cell_add(&rc->requests[cls], 1, s->shared);
	cell_add(&rc->bucket[b], 1, s->shared);
	cell_add(&rc->ns, ns, s->shared);
	if (bytes_in != 0)
		cell_add(&s->bytes_in[kind], bytes_in, s->shared);
	if (bytes_out != 0)
		cell_add(&s->bytes_out[kind], bytes_out, s->shared);
	if (aborted)
		cell_add(&s->aborted[kind], 1, s->shared);
}

/* ---- reloads of configuration files ---- */

static const char *const reload_kinds[] = {"users", "policy", "tls"};
#define N_RELOAD_KINDS (sizeof(reload_kinds) / sizeof(reload_kinds[0]))

static struct {
	atomic_ulong ok, failed;
	_Atomic uint64_t last_ok_ms; /* wall clock; 0: none since start */
} reloads[N_RELOAD_KINDS];

void
metrics_reload(const char *file_kind, int ok)
{
	struct timespec ts;

	for (size_t i = 0; file_kind != NULL && i < N_RELOAD_KINDS; i++) {
		if (strcmp(reload_kinds[i], file_kind) != 0)
			continue;
		if (!ok) {
			atomic_fetch_add(&reloads[i].failed, 1);
			return;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		atomic_store(&reloads[i].last_ok_ms,
		             (uint64_t)ts.tv_sec * 1000u +
		                     (uint64_t)ts.tv_nsec / 1000000u);
		atomic_fetch_add(&reloads[i].ok, 1);
		return;
	}
}

/* ---- rendering ---- */

static void
family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The sum of every shard. */
struct totals {
	uint64_t requests[R_KIND_COUNT][N_METHODS][N_CLASSES];
	uint64_t bucket[R_KIND_COUNT][N_METHODS][N_BUCKETS + 1];
	uint64_t ns[R_KIND_COUNT][N_METHODS];
	uint64_t bytes_in[R_KIND_COUNT], bytes_out[R_KIND_COUNT];
	uint64_t aborted[R_KIND_COUNT];
};

static uint64_t
cell_get(cell_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void
totals_sum(struct totals *t)
{
	for (struct shard *s = atomic_load(&shards); s != NULL; s = s->next)
		for (size_t k = 0; k < R_KIND_COUNT; k++) {
			for (size_t m = 0; m < N_METHODS; m++) {
				struct route_cells *rc = &s->cells[k][m];
				for (size_t c = 0; c < N_CLASSES; c++)
					t->requests[k][m][c] +=
					        cell_get(&rc->requests[c]);
				for (size_t b = 0; b <= N_BUCKETS; b++)
					t->bucket[k][m][b] +=
					        cell_get(&rc->bucket[b]);
				t->ns[k][m] += cell_get(&rc->ns);
			}
			t->bytes_in[k] += cell_get(&s->bytes_in[k]);
			t->bytes_out[k] += cell_get(&s->bytes_out[k]);
			t->aborted[k] += cell_get(&s->aborted[k]);
		}
}

/* The latency histogram: the routes and methods that saw requests. */
static void
metrics_histogram(FILE *f, const struct totals *t)
{
	family(f, "berth_http_request_duration_seconds", "histogram",
	       "Time from a request's complete head to the end of its "
	       "answer, by route and method.");
	for (size_t k = 0; k < R_KIND_COUNT; k++)
		for (size_t m = 0; m < N_METHODS; m++) {
			const uint64_t *bk = t->bucket[k][m];
			uint64_t cum = 0;
			char lbl[64];

			for (size_t b = 0; b <= N_BUCKETS; b++)
				cum += bk[b];
			if (cum == 0)
				continue;
			snprintf(lbl, sizeof(lbl), "route=\"%s\",method=\"%s\"",
			         kind_names[k], methods[m]);
			cum = 0;
			for (size_t b = 0; b < N_BUCKETS; b++) {
				cum += bk[b];
				fprintf(f,
				        "berth_http_request_duration_seconds_"
				        "bucket{%s,le=\"%s\"} %" PRIu64 "\n",
				        lbl, bucket_le[b], cum);
			}
			cum += bk[N_BUCKETS];
			fprintf(f,
			        "berth_http_request_duration_seconds_bucket{%s,"
			        "le=\"+Inf\"} %" PRIu64 "\n"
			        "berth_http_request_duration_seconds_sum{%s} "
			        "%.9f\n"
			        "berth_http_request_duration_seconds_count{%s} "
			        "%" PRIu64 "\n",
			        lbl, cum, lbl, (double)t->ns[k][m] / 1e9, lbl,
			        cum);
		}
}

/* A counter family with one sample per route. */
static void
per_route(FILE *f, const char *name, const char *help, const uint64_t *v)
{
	family(f, name, "counter", help);
	for (size_t k = 0; k < R_KIND_COUNT; k++)
		fprintf(f, "%s{route=\"%s\"} %" PRIu64 "\n", name,
		        kind_names[k], v[k]);
}

static void
metrics_http(FILE *f, struct app *app, const struct totals *t)
{
	uint64_t secs_ns[R_KIND_COUNT] = {0};
	unsigned long refused, cut;

	family(f, "berth_http_requests_total", "counter",
	       "HTTP requests by route, method and status class.");
	for (size_t k = 0; k < R_KIND_COUNT; k++)
		for (size_t m = 0; m < N_METHODS; m++)
			for (size_t c = 0; c < N_CLASSES; c++) {
				uint64_t v = t->requests[k][m][c];
				if (v == 0)
					continue;
				fprintf(f,
				        "berth_http_requests_total{route=\"%"
				        "s\",method=\"%s\",code=\"%zuxx\"} "
				        "%" PRIu64 "\n",
				        kind_names[k], methods[m], c, v);
			}
	metrics_histogram(f, t);
	per_route(f, "berth_http_request_bytes_total",
	          "Bytes received in request bodies.", t->bytes_in);
	per_route(f, "berth_http_response_bytes_total",
	          "Bytes sent in response bodies (of a cut-off answer, those "
	          "the client acknowledged).",
	          t->bytes_out);
	per_route(f, "berth_http_requests_aborted_total",
	          "Requests whose client went away before the end of the "
	          "answer (their bytes count what was acknowledged).",
	          t->aborted);
	family(f, "berth_http_request_seconds_total", "counter",
	       "Time spent serving requests (the duration histogram's sum, "
	       "all methods together).");
	for (size_t k = 0; k < R_KIND_COUNT; k++) {
		for (size_t m = 0; m < N_METHODS; m++)
			secs_ns[k] += t->ns[k][m];
		fprintf(f,
		        "berth_http_request_seconds_total{route=\"%s\"} %.9f\n",
		        kind_names[k], (double)secs_ns[k] / 1e9);
	}
	family(f, "berth_http_requests_in_flight", "gauge",
	       "Requests being served.");
	fprintf(f, "berth_http_requests_in_flight %ld\n",
	        atomic_load(&app->inflight));
	server_guard_counts(&refused, &cut);
	family(f, "berth_http_connections_closed_total", "counter",
	       "Connections the server closed unserved: over "
	       "--max-connections (limit), request head not complete within "
	       "--header-timeout (header_timeout).");
	fprintf(f,
	        "berth_http_connections_closed_total{reason=\"limit\"} %lu\n"
	        "berth_http_connections_closed_total{reason=\"header_"
	        "timeout\"} %lu\n",
	        refused, cut);
}

/* What the index holds and the gc queue: mdb_stat counts and a running
 * byte total, plus the (short) walk over queue entries already due. */
static void
metrics_storage(FILE *f, struct app *app)
{
	struct meta_gc_state st;

	if (meta_gc_state_get(app->meta, now_s(), &st) != 0)
		return;
	family(f, "berth_storage_blobs", "gauge", "Blobs stored.");
	fprintf(f, "berth_storage_blobs %" PRIu64 "\n", st.blobs);
	family(f, "berth_storage_blob_bytes", "gauge",
	       "Bytes of the blobs stored.");
	fprintf(f, "berth_storage_blob_bytes %" PRIu64 "\n", st.blob_bytes);
	family(f, "berth_storage_manifests", "gauge",
	       "Manifests stored (one per repository holding it).");
	fprintf(f, "berth_storage_manifests %" PRIu64 "\n", st.manifests);
	family(f, "berth_gc_queue_items", "gauge",
	       "Unreferenced items on the gc queue.");
	fprintf(f, "berth_gc_queue_items %" PRIu64 "\n", st.queue_len);
	family(f, "berth_gc_waiting_items", "gauge",
	       "Queued items still in their grace period.");
	fprintf(f, "berth_gc_waiting_items %" PRIu64 "\n",
	        st.queue_len - st.due);
}

/* The collector's totals since start. */
static void
metrics_gc(FILE *f, struct app *app)
{
	static const enum gc_kind kinds[] = {GC_MANIFEST, GC_BLOB, GC_UPLOAD};
	struct gc_stats gs;

	if (app->gc == NULL)
		return;
	gc_stats_get(app->gc, &gs);
	family(f, "berth_gc_runs_total", "counter",
	       "Collection runs, by result.");
	fprintf(f,
	        "berth_gc_runs_total{result=\"ok\"} %" PRIu64 "\n"
	        "berth_gc_runs_total{result=\"error\"} %" PRIu64 "\n",
	        gs.runs, gs.failed_runs);
	family(f, "berth_gc_deleted_total", "counter",
	       "Items deleted by the collector.");
	for (size_t i = 0; i < 3; i++)
		fprintf(f, "berth_gc_deleted_total{kind=\"%s\"} %" PRIu64 "\n",
		        gc_kind_name(kinds[i]), gs.items[kinds[i]]);
	family(f, "berth_gc_deleted_bytes_total", "counter",
	       "Bytes of the items deleted by the collector.");
	for (size_t i = 0; i < 3; i++)
		fprintf(f,
		        "berth_gc_deleted_bytes_total{kind=\"%s\"} %" PRIu64
		        "\n",
		        gc_kind_name(kinds[i]), gs.bytes[kinds[i]]);
	family(f, "berth_gc_unlink_failures_total", "counter",
	       "Blob files the collector failed to remove (left for a later "
	       "run).");
	fprintf(f, "berth_gc_unlink_failures_total %" PRIu64 "\n",
	        gs.unlink_failures);
	family(f, "berth_gc_tags_expired_total", "counter",
	       "Tags a run expired (TTL label or policy).");
	fprintf(f, "berth_gc_tags_expired_total %" PRIu64 "\n",
	        gs.tags_expired);
	family(f, "berth_gc_kept_by_pins_total", "counter",
	       "Tags and manifests a run kept because the cluster uses them.");
	fprintf(f, "berth_gc_kept_by_pins_total %" PRIu64 "\n",
	        gs.kept_by_pins);
	family(f, "berth_gc_run_seconds_total", "counter",
	       "Time spent in collection runs.");
	fprintf(f, "berth_gc_run_seconds_total %.9f\n",
	        (double)gs.total_duration_ns / 1e9);
	family(f, "berth_gc_last_run_seconds", "gauge",
	       "Duration of the last run.");
	fprintf(f, "berth_gc_last_run_seconds %.9f\n",
	        (double)gs.last_duration_ns / 1e9);
}

/* Index writes (the pull path makes none: reads are flushed in
 * batches) and reloads of configuration files. */
static void
metrics_index(FILE *f, struct app *app)
{
	struct meta_stats ms;
	unsigned long ok, bad;

	meta_stats_get(app->meta, &ms);
	family(f, "berth_index_write_txns_total", "counter",
	       "Write transactions committed to the index.");
	fprintf(f, "berth_index_write_txns_total %" PRIu64 "\n", ms.write_txns);
	family(f, "berth_index_flush_txns_total", "counter",
	       "Of those, batches of reads and last-pull times written.");
	fprintf(f, "berth_index_flush_txns_total %" PRIu64 "\n", ms.flush_txns);
	policy_stats(app->policy, &ok, &bad);
	family(f, "berth_policy_reloads_total", "counter",
	       "Reloads of the retention policy file by result.");
	fprintf(f,
	        "berth_policy_reloads_total{result=\"ok\"} %lu\n"
	        "berth_policy_reloads_total{result=\"failed\"} %lu\n",
	        ok, bad);
}

static void
metrics_reloads(FILE *f)
{
	family(f, "berth_reload_total", "counter",
	       "Reloads of a configuration file, by file and result.");
	for (size_t i = 0; i < N_RELOAD_KINDS; i++)
		fprintf(f,
		        "berth_reload_total{file=\"%s\",result=\"ok\"} %lu\n"
		        "berth_reload_total{file=\"%s\",result=\"failed\"} "
		        "%lu\n",
		        reload_kinds[i], atomic_load(&reloads[i].ok),
		        reload_kinds[i], atomic_load(&reloads[i].failed));
	family(f, "berth_reload_last_success_timestamp_seconds", "gauge",
	       "Unix time of the last successful reload of a configuration "
	       "file (0: none since start).");
	for (size_t i = 0; i < N_RELOAD_KINDS; i++)
		fprintf(f,
		        "berth_reload_last_success_timestamp_seconds{file=\"%"
		        "s\"} %.3f\n",
		        reload_kinds[i],
		        (double)atomic_load(&reloads[i].last_ok_ms) / 1e3);
}

/* ---- the process ---- */

/* The fields of /proc/self/stat the process figures need. */
struct proc_stat {
	uint64_t utime, stime; /* clock ticks */
	uint64_t starttime;    /* clock ticks after boot */
	uint64_t vsize;        /* bytes */
	uint64_t rss;          /* pages */
};

static int
proc_stat_read(struct proc_stat *ps)
{
	char buf[1024], *p, *save = NULL;
	uint64_t v[22];
	ssize_t n;
	size_t i = 0;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command name (field 2) is in parentheses and may hold any
	 * byte; the fields from 3 on follow the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	for (p = strtok_r(p + 1, " ", &save); p != NULL && i < 22;
	     p = strtok_r(NULL, " ", &save))
		v[i++] = strtoull(p, NULL, 10);
	if (i < 22)
		return -1;
	/* v[0] is field 3: utime is 14, stime 15, starttime 22, vsize 23,
	 * rss 24 */
	ps->utime = v[11];
	ps->stime = v[12];
	ps->starttime = v[19];
	ps->vsize = v[20];
	ps->rss = v[21];
	return 0;
}

/* Descriptors open: since Linux 6.2 the size of /proc/self/fd says, else
 * they are counted (the directory's own descriptor left out). */
static long
open_fds(void)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	long n = 0;

	if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0)
		return (long)st.st_size;
	d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* Start time, computed once: the wall clock minus the time since boot
 * and plus the process's start after boot. */
static pthread_once_t start_once = PTHREAD_ONCE_INIT;
static double start_time_s;

static void
start_time_init(void)
{
	struct proc_stat ps;
	struct timespec real, boot;
	long tck = sysconf(_SC_CLK_TCK);

	if (proc_stat_read(&ps) != 0 || tck <= 0 ||
	    clock_gettime(CLOCK_REALTIME, &real) != 0 ||
	    clock_gettime(CLOCK_BOOTTIME, &boot) != 0)
		return;
	start_time_s = (double)real.tv_sec + (double)real.tv_nsec / 1e9 -
	               ((double)boot.tv_sec + (double)boot.tv_nsec / 1e9) +
	               (double)ps.starttime / (double)tck;
}

static void
metrics_process(FILE *f)
{
	struct proc_stat ps;
	struct rlimit rl;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	long fds = open_fds();

	if (proc_stat_read(&ps) == 0 && tck > 0 && page > 0) {
		family(f, "process_cpu_seconds_total", "counter",
		       "User and system CPU time spent.");
		fprintf(f, "process_cpu_seconds_total %.2f\n",
		        (double)(ps.utime + ps.stime) / (double)tck);
		family(f, "process_resident_memory_bytes", "gauge",
		       "Resident memory size.");
		fprintf(f, "process_resident_memory_bytes %" PRIu64 "\n",
		        ps.rss * (uint64_t)page);
		family(f, "process_virtual_memory_bytes", "gauge",
		       "Virtual memory size.");
		fprintf(f, "process_virtual_memory_bytes %" PRIu64 "\n",
		        ps.vsize);
	}
	pthread_once(&start_once, start_time_init);
	if (start_time_s > 0) {
		family(f, "process_start_time_seconds", "gauge",
		       "Start time of the process since the Unix epoch.");
		fprintf(f, "process_start_time_seconds %.2f\n", start_time_s);
	}
	if (fds >= 0) {
		family(f, "process_open_fds", "gauge",
		       "Open file descriptors.");
		fprintf(f, "process_open_fds %ld\n", fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		family(f, "process_max_fds", "gauge",
		       "Limit on open file descriptors.");
		fprintf(f, "process_max_fds %llu\n",
		        (unsigned long long)rl.rlim_cur);
	}
}

char *
metrics_render(struct app *app)
{
	struct totals *t = calloc(1, sizeof(*t));
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (t == NULL)
		return NULL;
	f = open_memstream(&buf, &len);
	if (f == NULL) {
		free(t);
		return NULL;
	}
	totals_sum(t);
	metrics_http(f, app, t);
	free(t);
	metrics_storage(f, app);
	metrics_gc(f, app);
	metrics_index(f, app);
	metrics_reloads(f);
	metrics_process(f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
